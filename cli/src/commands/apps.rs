//! Apps: `apps`, `apps:create`, `apps:info`, `open`, `apps:rename`, `apps:destroy`, `git:remote`,
//! `apps:constraints` (where an app's dynos may run on a swarm), and
//! `nodes` (the machines dynos run on).

use super::{in_git_repo, repoint_remotes, set_remote, Ctx};
use crate::exit::bail_usage;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{App, AppCreate, AppName, AppUpdate, Constraints, Node};

#[derive(Subcommand)]
pub enum Cmd {
    /// List apps.
    Apps,
    /// Create an app (and the git remote --remote names, in a git repo).
    #[command(name = "apps:create")]
    AppsCreate { name: Option<String> },
    /// Show an app.
    #[command(name = "apps:info")]
    AppsInfo,
    /// Open the app's web URL in a browser (and print it).
    Open,
    /// Rename an app: its web URL, git remote (updated here, in a git repo), domains and logs follow; the old name answers nothing.
    #[command(name = "apps:rename")]
    AppsRename {
        /// The new name.
        new_name: String,
    },
    /// Destroy an app, its releases and dynos.
    #[command(name = "apps:destroy")]
    AppsDestroy {
        /// The app's name again, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Add (or update) the git remote --remote names (default paas) for an app in this repo.
    #[command(name = "git:remote")]
    GitRemote,
    /// Show the app's placement constraints on a swarm (PAAS_RUNTIME=swarm).
    #[command(name = "apps:constraints")]
    AppsConstraints,
    /// Keep the app's dynos to nodes that match, e.g. `node.labels.pool==web` (replaces the app's constraints; new dynos keep to them, `paas ps:restart` moves running ones).
    #[command(name = "apps:constraints:set")]
    AppsConstraintsSet {
        #[arg(required = true, value_name = "CONSTRAINT")]
        constraints: Vec<String>,
    },
    /// Remove the app's placement constraints.
    #[command(name = "apps:constraints:clear")]
    AppsConstraintsClear,
    /// List the machines dynos run on: the engine, or the swarm's nodes with their state, address, labels and dynos.
    Nodes,
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    match cmd {
        Cmd::Apps => {
            let apps: Vec<App> = ctx.client()?.get(&["apps"])?;
            if ctx.json {
                output::json(&apps);
            } else if apps.is_empty() {
                println!("You have no apps. Create one with `paas apps:create NAME`.");
            } else {
                output::heading("Apps");
                for a in &apps {
                    println!("{}", a.name);
                }
            }
        }
        Cmd::AppsCreate { name } => {
            let Some(name) = name.or_else(|| ctx.app_flag().map(str::to_owned)) else {
                bail_usage!("name the app: `paas apps:create NAME`");
            };
            AppName::parse(&name)?;
            let created: App = ctx.client()?.post(&["apps"], &[], &AppCreate { name })?;
            let remote = ctx.remote().to_owned();
            let with_remote = in_git_repo();
            if with_remote {
                set_remote(&remote, &created.git_url)?;
            }
            if ctx.json {
                output::json(&created);
            } else {
                println!("Creating {}... done", created.name);
                println!("{} | {}", created.web_url, created.git_url);
                if with_remote {
                    println!("Git remote {remote} added: deploy with `git push {remote} main`");
                }
            }
        }
        Cmd::AppsInfo => {
            let name = ctx.app()?;
            let a: App = ctx.client()?.get(&["apps", &name])?;
            if ctx.json {
                output::json(&a);
            } else {
                output::heading(&a.name);
                output::pairs(&[
                    ("Git URL".into(), a.git_url),
                    ("Web URL".into(), a.web_url),
                    ("Release".into(), a.current_release.map_or("none yet".into(), |v| format!("v{v}"))),
                    ("Created".into(), a.created_at),
                    ("ID".into(), a.id),
                    ("Disk".into(), a.disk.map_or_else(|| "unknown".into(), |d| {
                        let mib = |b: i64| format!("{:.1} MiB", b as f64 / 1048576.0);
                        let cache = d.build_cache.map_or_else(|| "not known here".into(), mib);
                        format!("images {} ({}), build cache {cache}, repo {}, logs {}", mib(d.images), d.image_count, mib(d.repo), mib(d.logs))
                    })),
                ]);
            }
        }
        Cmd::AppsRename { new_name } => {
            let name = ctx.app()?;
            AppName::parse(&new_name)?;
            let renamed: App = ctx.client()?.patch(&["apps", &name], &[], &AppUpdate { name: new_name })?;
            // This repo's remotes that pointed at the old name point at the new one.
            let old_url = renamed.git_url.strip_suffix(&format!("{}.git", renamed.name)).map(|base| format!("{base}{name}.git"));
            let updated = match old_url {
                Some(old_url) if in_git_repo() => repoint_remotes(&old_url, &renamed.git_url)?,
                _ => Vec::new(),
            };
            if ctx.json {
                output::json(&renamed);
            } else {
                println!("Renaming {name} to {}... done", renamed.name);
                println!("{} | {}", renamed.web_url, renamed.git_url);
                for remote in updated {
                    println!("Git remote {remote} updated");
                }
                println!("Other clones of the repo: `paas git:remote -a {}`", renamed.name);
            }
        }
        Cmd::AppsDestroy { confirm } => {
            let name = ctx.app()?;
            if confirm.as_deref() != Some(name.as_str()) {
                bail_usage!("this destroys {name}, its releases and its dynos for good: run `paas apps:destroy -a {name} --confirm {name}`");
            }
            let gone: App = ctx.client()?.delete(&["apps", &name])?;
            if ctx.json {
                output::json(&gone);
            } else {
                println!("Destroying {name} (including all releases and dynos)... done");
                for line in &gone.destroyed {
                    println!("  {line}");
                }
            }
        }
        Cmd::AppsConstraints | Cmd::AppsConstraintsSet { .. } | Cmd::AppsConstraintsClear => {
            let name = ctx.app()?;
            let c: Constraints = match cmd {
                Cmd::AppsConstraintsSet { constraints } => ctx.client()?.put(&["apps", &name, "constraints"], &Constraints { constraints })?,
                Cmd::AppsConstraintsClear => ctx.client()?.put(&["apps", &name, "constraints"], &Constraints::default())?,
                _ => ctx.client()?.get(&["apps", &name, "constraints"])?,
            };
            if ctx.json {
                output::json(&c);
            } else if c.constraints.is_empty() {
                println!("{name} has no placement constraints of its own: its dynos may run on any node (within PAAS_NODE_CONSTRAINTS).");
            } else {
                output::heading(&format!("{name} placement constraints"));
                for line in &c.constraints {
                    println!("{line}");
                }
                println!("New dynos keep to them; `paas ps:restart -a {name}` moves the running ones.");
            }
        }
        Cmd::Open => {
            let name = ctx.app()?;
            let app: App = ctx.client()?.get(&["apps", &name])?;
            if ctx.json {
                output::json(&serde_json::json!({ "web_url": app.web_url }));
            } else {
                println!("{}", app.web_url);
            }
            // A browser only for a person at a terminal with a desktop.
            if !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                for opener in ["xdg-open", "open"] {
                    if std::process::Command::new(opener).arg(&app.web_url).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().is_ok() {
                        break;
                    }
                }
            }
        }
        Cmd::Nodes => {
            let nodes: Vec<Node> = ctx.client()?.get(&["nodes"])?;
            if ctx.json {
                output::json(&nodes);
            } else {
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| {
                        let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        vec![
                            n.hostname.clone(),
                            n.role.clone(),
                            n.state.clone(),
                            n.availability.clone(),
                            n.address.clone().unwrap_or_default(),
                            labels.join(","),
                            n.dynos.join(", "),
                        ]
                    })
                    .collect();
                output::table(&["Node", "Role", "State", "Availability", "Address", "Labels", "Dynos"], &rows);
            }
        }
        Cmd::GitRemote => {
            let name = ctx.app()?;
            let a: App = ctx.client()?.get(&["apps", &name])?;
            let remote = ctx.remote().to_owned();
            set_remote(&remote, &a.git_url)?;
            if ctx.json {
                output::json(&serde_json::json!({ "remote": remote, "url": a.git_url }));
            } else {
                println!("set git remote {remote} to {}", a.git_url);
            }
        }
    }
    Ok(0)
}
