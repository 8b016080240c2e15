//! The verbs. Each one is a thin function over the API client and the
//! output helpers.

use crate::client::{self, Client, Credentials};
use crate::output;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use paas_wire::{Cert, CertCreate, Domain, DomainCreate, Hostname, LogDrain, LogDrainCreate};
use paas_wire::{App, AppCreate, AppName, Build, BuildOutput, ChangeResult, ConfigKey, ConfigPatch, ConfigVars, DeployState, Dyno, FormationChange, FormationUpdate, Release, ReleaseCreate};
use std::io::{BufRead, IsTerminal, Write};
use std::process::Command as Process;

#[derive(Parser)]
#[command(name = "paas", version, about = "Deploy and run apps on a paas server", disable_help_subcommand = true)]
pub struct Cli {
    /// The app (default: the app behind the git remote named `paas`).
    #[arg(short, long, global = true)]
    app: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// What `run` and `run:detached` take.
#[derive(clap::Args)]
struct RunArgs {
    /// Set a config var for this run only (KEY=value; repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Its memory limit, e.g. 1G (default: the server's dyno size).
    #[arg(long)]
    size: Option<String>,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// How long a change waits for its dynos.
#[derive(clap::Args, Clone, Copy)]
struct WaitArgs {
    /// Return once the release is made, without waiting for the dynos.
    #[arg(long)]
    no_wait: bool,
    /// Seconds to wait for the new dynos to serve.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

impl WaitArgs {
    fn query(self) -> String {
        format!("?wait={}", if self.no_wait { 0 } else { self.wait })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Save an API URL and token for later commands (and for git in ~/.netrc).
    Login {
        #[arg(long, env = "PAAS_API_URL")]
        api_url: String,
        /// The API token. Better left out: then it is asked for without
        /// echo, or read from standard input (`paas login <token-file`),
        /// and never shows in process listings or shell history.
        #[arg(long)]
        token: Option<String>,
    },
    /// List apps.
    Apps,
    /// Create an app.
    #[command(name = "apps:create")]
    AppsCreate { name: Option<String> },
    /// Show an app.
    #[command(name = "apps:info")]
    AppsInfo,
    /// Destroy an app, its releases and dynos.
    #[command(name = "apps:destroy")]
    AppsDestroy {
        /// The app's name again, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Add (or update) the git remote `paas` for an app in this repo.
    #[command(name = "git:remote")]
    GitRemote {
        /// The remote's name.
        #[arg(short, long, default_value = "paas")]
        remote: String,
    },
    /// Show config vars.
    Config {
        /// Print as KEY=value lines, for a shell or a .env file.
        #[arg(long)]
        shell: bool,
    },
    /// Show one config var.
    #[command(name = "config:get")]
    ConfigGet { key: String },
    /// Set config vars (KEY=value ...); makes a new release and restarts dynos.
    #[command(name = "config:set")]
    ConfigSet {
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Unset config vars; makes a new release and restarts dynos.
    #[command(name = "config:unset")]
    ConfigUnset {
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List releases, newest first.
    Releases,
    /// Show one release.
    #[command(name = "releases:info")]
    ReleasesInfo { release: String },
    /// Roll back to an earlier release (a new release with its build and config).
    #[command(name = "releases:rollback")]
    ReleasesRollback {
        release: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List dynos.
    Ps,
    /// Restart dynos: all, a type (`web`, rolling) or one (`web.1`).
    #[command(name = "ps:restart")]
    PsRestart { target: Option<String> },
    /// Stop a dyno (`web.2`); a dyno of the formation is started again.
    #[command(name = "ps:stop")]
    PsStop { dyno: String },
    /// Set dyno sizes (memory limits): `web=1G worker=256M`.
    #[command(name = "ps:resize")]
    PsResize {
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Scale process types: `web=2 worker=1`, with a size: `web=2:1G`.
    #[command(name = "ps:scale")]
    PsScale {
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Run a command in a one-off dyno (`run.N`) of the app's release, attached:
    /// a terminal when this is one, else pipes. One argument is a shell command
    /// line as it is; several are words.
    Run {
        #[command(flatten)]
        run: RunArgs,
        /// Pipes even when this is a terminal.
        #[arg(long)]
        no_tty: bool,
    },
    /// Run a command in a one-off dyno in the background; its output goes to the app's logs.
    #[command(name = "run:detached")]
    RunDetached {
        #[command(flatten)]
        run: RunArgs,
    },
    /// List builds.
    Builds,
    /// Show a build's output.
    #[command(name = "builds:output")]
    BuildsOutput { build: String },
    /// Empty the app's build cache: the next build installs dependencies afresh.
    #[command(name = "builds:cache:clear")]
    BuildsCacheClear,
    /// Show the app's logs: dynos' output, router, builds and platform events.
    Logs {
        /// Keep showing new lines as they come.
        #[arg(short, long)]
        tail: bool,
        /// Lines of history to show first.
        #[arg(short, long, default_value_t = 100)]
        num: usize,
        /// Only a process type (`web`) or a dyno (`web.1`).
        #[arg(short, long)]
        ps: Option<String>,
        /// Only lines from `app` (the dynos' output) or `paas` (the platform).
        #[arg(short, long)]
        source: Option<String>,
    },
    /// List the app's domains.
    Domains,
    /// Send a domain's requests to the app: www.example.com, or *.example.com.
    #[command(name = "domains:add")]
    DomainsAdd { hostname: String },
    /// Stop sending a domain's requests to the app.
    #[command(name = "domains:remove")]
    DomainsRemove { hostname: String },
    /// List the TLS certificates of the app's domains.
    Certs,
    /// Add a TLS certificate (PEM files) for the app's domains it is valid for.
    #[command(name = "certs:add")]
    CertsAdd { certificate: std::path::PathBuf, key: std::path::PathBuf },
    /// Remove a domain's TLS certificate.
    #[command(name = "certs:remove")]
    CertsRemove { hostname: String },
    /// Get certificates over ACME (Let's Encrypt) for the app's domains, renewed automatically.
    #[command(name = "certs:auto:enable")]
    CertsAutoEnable,
    /// Stop getting and renewing certificates automatically.
    #[command(name = "certs:auto:disable")]
    CertsAutoDisable,
    /// List log drains.
    Drains,
    /// Send the app's logs to a drain: syslog://HOST:PORT, syslog+tls://HOST:PORT or https://...
    #[command(name = "drains:add")]
    DrainsAdd { url: String },
    /// Stop sending logs to a drain (by URL or id).
    #[command(name = "drains:remove")]
    DrainsRemove { drain: String },
}

pub fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    let app = || resolve_app(cli.app.as_deref());
    match cli.command {
        Command::Login { api_url, token } => login(&api_url, token),
        Command::Apps => {
            let apps: Vec<App> = Client::new()?.get("/apps")?;
            if json {
                output::json(&apps);
            } else if apps.is_empty() {
                println!("You have no apps. Create one with `paas apps:create NAME`.");
            } else {
                output::heading("Apps");
                for a in &apps {
                    println!("{}", a.name);
                }
            }
            Ok(())
        }
        Command::AppsCreate { name } => {
            let name = match name.or(cli.app) {
                Some(n) => n,
                None => bail!("name the app: `paas apps:create NAME`"),
            };
            AppName::parse(&name)?;
            let created: App = Client::new()?.post("/apps", &AppCreate { name })?;
            if json {
                output::json(&created);
            } else {
                println!("Creating {}... done", created.name);
                println!("{} | {}", created.web_url, created.git_url);
                if in_git_repo() {
                    set_remote("paas", &created.git_url)?;
                    println!("Git remote paas added: deploy with `git push paas main`");
                }
            }
            Ok(())
        }
        Command::AppsInfo => {
            let a: App = Client::new()?.get(&format!("/apps/{}", app()?))?;
            if json {
                output::json(&a);
            } else {
                output::heading(&a.name);
                output::pairs(&[
                    ("Git URL".into(), a.git_url),
                    ("Web URL".into(), a.web_url),
                    ("Release".into(), a.current_release.map_or("none yet".into(), |v| format!("v{v}"))),
                    ("Created".into(), a.created_at),
                    ("ID".into(), a.id),
                ]);
            }
            Ok(())
        }
        Command::AppsDestroy { confirm } => {
            let name = app()?;
            if confirm.as_deref() != Some(name.as_str()) {
                bail!("this destroys {name}, its releases and its dynos for good: run `paas apps:destroy -a {name} --confirm {name}`");
            }
            let _: App = Client::new()?.delete(&format!("/apps/{name}"))?;
            println!("Destroying {name} (including all releases and dynos)... done");
            Ok(())
        }
        Command::GitRemote { remote } => {
            let name = app()?;
            let a: App = Client::new()?.get(&format!("/apps/{name}"))?;
            set_remote(&remote, &a.git_url)?;
            println!("set git remote {remote} to {}", a.git_url);
            Ok(())
        }
        Command::Config { shell } => {
            let name = app()?;
            let vars: ConfigVars = Client::new()?.get(&format!("/apps/{name}/config-vars"))?;
            if json {
                output::json(&vars);
            } else if shell {
                for (k, v) in &vars {
                    println!("{k}={}", shell_quote(v));
                }
            } else {
                output::heading(&format!("{name} Config Vars"));
                output::pairs(&vars.into_iter().collect::<Vec<_>>());
            }
            Ok(())
        }
        Command::ConfigGet { key } => {
            let name = app()?;
            let vars: ConfigVars = Client::new()?.get(&format!("/apps/{name}/config-vars"))?;
            match vars.get(&key) {
                Some(v) if json => output::json(v),
                Some(v) => println!("{v}"),
                None => bail!("{key} is not set on {name}"),
            }
            Ok(())
        }
        Command::ConfigSet { pairs, wait } => {
            let name = app()?;
            let mut patch = ConfigPatch::new();
            for pair in &pairs {
                let Some((k, v)) = pair.split_once('=') else {
                    bail!("{pair:?} is not KEY=value: write it as `paas config:set {pair}=VALUE`");
                };
                ConfigKey::parse(k)?;
                patch.insert(k.to_owned(), Some(v.to_owned()));
            }
            let keys: Vec<&str> = patch.keys().map(String::as_str).collect();
            let doing = format!("Setting {} and restarting {name}", keys.join(", "));
            let result: ChangeResult =
                Client::new()?.patch(&format!("/apps/{name}/config-vars{}", wait.query()), &patch)?;
            if json {
                output::json(&result);
            } else {
                report(&doing, &result);
                output::pairs(&patch.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect::<Vec<_>>());
            }
            outcome(&result)
        }
        Command::ConfigUnset { keys, wait } => {
            let name = app()?;
            let patch: ConfigPatch = keys.iter().map(|k| (k.clone(), None)).collect();
            let doing = format!("Unsetting {} and restarting {name}", keys.join(", "));
            let result: ChangeResult =
                Client::new()?.patch(&format!("/apps/{name}/config-vars{}", wait.query()), &patch)?;
            if json {
                output::json(&result);
            } else {
                report(&doing, &result);
            }
            outcome(&result)
        }
        Command::Releases => {
            let name = app()?;
            let releases: Vec<Release> = Client::new()?.get(&format!("/apps/{name}/releases"))?;
            if json {
                output::json(&releases);
            } else if releases.is_empty() {
                println!("{name} has no releases yet. Deploy with `git push paas main`.");
            } else {
                let current = releases.iter().find(|r| r.current).unwrap_or(&releases[0]);
                output::heading(&format!("{name} Releases - Current: v{}", current.version));
                let rows: Vec<Vec<String>> = releases
                    .iter()
                    .map(|r| vec![format!("v{}", r.version), r.description.clone(), r.status.clone(), r.created_at.clone()])
                    .collect();
                output::table(&["Version", "Description", "Status", "Created"], &rows);
            }
            Ok(())
        }
        Command::ReleasesInfo { release } => {
            let name = app()?;
            let r: Release = Client::new()?.get(&format!("/apps/{name}/releases/{}", url_segment(&release)?))?;
            if json {
                output::json(&r);
            } else {
                output::heading(&format!("Release v{}", r.version));
                let types: Vec<String> = r.process_types.iter().map(|(t, c)| format!("{t}: {c}")).collect();
                output::pairs(&[
                    ("Description".into(), r.description),
                    ("Status".into(), r.status),
                    ("Current".into(), r.current.to_string()),
                    ("Why".into(), r.status_detail),
                    ("Image".into(), r.image.unwrap_or_else(|| "none".into())),
                    ("Process types".into(), types.join("; ")),
                    ("Created".into(), r.created_at),
                    ("ID".into(), r.id),
                ]);
            }
            Ok(())
        }
        Command::ReleasesRollback { release, wait } => {
            let name = app()?;
            let result: ChangeResult = Client::new()?
                .post(&format!("/apps/{name}/releases{}", wait.query()), &ReleaseCreate { release: release.clone() })?;
            if json {
                output::json(&result);
            } else {
                report(&format!("Rolling back {name} to {release}"), &result);
            }
            outcome(&result)
        }
        Command::Ps => {
            let name = app()?;
            let dynos: Vec<Dyno> = Client::new()?.get(&format!("/apps/{name}/dynos"))?;
            if json {
                output::json(&dynos);
            } else if dynos.is_empty() {
                println!("{name} has no dynos. Deploy with `git push paas main`, or scale with `paas ps:scale web=1`.");
            } else {
                let rows: Vec<Vec<String>> = dynos
                    .iter()
                    .map(|d| {
                        vec![
                            d.name.clone(),
                            format!("v{}", d.release_version),
                            d.state.clone(),
                            d.since.clone(),
                            d.restarts.to_string(),
                            d.exit_code.map_or_else(String::new, |c| c.to_string()),
                            d.size.clone(),
                            d.command.clone(),
                        ]
                    })
                    .collect();
                output::table(&["Dyno", "Release", "State", "Since", "Restarts", "Last exit", "Size", "Command"], &rows);
            }
            Ok(())
        }
        Command::PsScale { changes, wait } => {
            let name = app()?;
            let mut updates = Vec::new();
            for c in &changes {
                let parsed = c.split_once('=').and_then(|(t, rest)| {
                    let (q, size) = match rest.split_once(':') {
                        Some((q, s)) => (q, Some(s.to_owned())),
                        None => (rest, None),
                    };
                    Some((t.to_owned(), q.parse::<i64>().ok()?, size))
                });
                let Some((process_type, quantity, size)) = parsed else {
                    bail!("{c:?} is not TYPE=COUNT[:SIZE]: write it like `paas ps:scale web=2 worker=1:512M`");
                };
                updates.push(FormationChange { process_type, quantity: Some(quantity), size });
            }
            change_formation(&name, updates, wait, json, "Scaling")
        }
        Command::PsResize { changes, wait } => {
            let name = app()?;
            let mut updates = Vec::new();
            for c in &changes {
                let Some((process_type, size)) = c.split_once('=') else {
                    bail!("{c:?} is not TYPE=SIZE: write it like `paas ps:resize web=1G worker=256M`");
                };
                paas_wire::DynoSize::parse(size)?;
                updates.push(FormationChange { process_type: process_type.to_owned(), quantity: None, size: Some(size.to_owned()) });
            }
            change_formation(&name, updates, wait, json, "Resizing")
        }
        Command::PsRestart { target } => {
            let name = app()?;
            let path = match &target {
                Some(t) => format!("/apps/{name}/dynos/{}", url_segment(t)?),
                None => format!("/apps/{name}/dynos"),
            };
            let what = target.clone().unwrap_or_else(|| "all dynos".to_owned());
            let r: paas_wire::DynoRestart = Client::new()?.delete(&path)?;
            if json {
                output::json(&r);
            } else if r.failures.is_empty() {
                println!("Restarting {what} of {name}... done ({})", r.restarted.join(", "));
            } else {
                println!("Restarting {what} of {name}... failed");
                if !r.restarted.is_empty() {
                    println!("restarted {}", r.restarted.join(", "));
                }
                for f in &r.failures {
                    for line in f.lines() {
                        eprintln!(" !    {line}");
                    }
                }
                eprintln!(" !    the dynos whose replacement did not come up keep running");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::PsStop { dyno } => {
            let name = app()?;
            Client::new()?.post_empty(&format!("/apps/{name}/dynos/{}/actions/stop", url_segment(&dyno)?))?;
            println!("Stopping {dyno} of {name}... done");
            Ok(())
        }
        Command::Run { run, no_tty } => {
            let name = app()?;
            let req = run_request(run, crate::run::wants_tty(no_tty))?;
            let code = crate::run::attached(&name, req)?;
            std::process::exit(code);
        }
        Command::RunDetached { run } => {
            let name = app()?;
            let req = run_request(run, false)?;
            let dyno: Dyno = Client::new()?.post(&format!("/apps/{name}/dynos"), &req)?;
            if json {
                output::json(&dyno);
            } else {
                println!("Running `{}` on {name}... up, {}", req.command, dyno.name);
                println!("Its output goes to the app's logs: `paas logs -a {name} -p {} -t`", dyno.name);
            }
            Ok(())
        }
        Command::Builds => {
            let name = app()?;
            let builds: Vec<Build> = Client::new()?.get(&format!("/apps/{name}/builds"))?;
            if json {
                output::json(&builds);
            } else {
                let rows: Vec<Vec<String>> = builds
                    .iter()
                    .map(|b| vec![b.id.clone(), b.status.clone(), b.commit[..b.commit.len().min(7)].to_owned(), b.created_at.clone()])
                    .collect();
                output::table(&["ID", "Status", "Commit", "Created"], &rows);
            }
            Ok(())
        }
        Command::Logs { tail, num, ps, source } => {
            let name = app()?;
            let mut query = vec![("lines", num.to_string()), ("tail", tail.to_string())];
            query.extend(ps.map(|p| ("ps", p)));
            query.extend(source.map(|s| ("source", s)));
            let reader = Client::new()?.stream(&format!("/apps/{name}/logs"), &query)?;
            let colour = output::log_colour();
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for line in reader.lines() {
                let line = line.context("the log stream broke off")?;
                // A closed pipe (`| head`) ends the command quietly.
                if writeln!(out, "{}", output::log_line(&line, colour)).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            Ok(())
        }
        Command::Domains => {
            let name = app()?;
            let domains: Vec<Domain> = Client::new()?.get(&format!("/apps/{name}/domains"))?;
            if json {
                output::json(&domains);
            } else {
                output::heading(&format!("{name} Domains"));
                let rows: Vec<Vec<String>> = domains.iter().map(|d| vec![d.hostname.clone(), d.kind.clone()]).collect();
                output::table(&["Domain", "Kind"], &rows);
            }
            Ok(())
        }
        Command::DomainsAdd { hostname } => {
            let name = app()?;
            Hostname::parse(&hostname)?;
            let d: Domain = Client::new()?.post(&format!("/apps/{name}/domains"), &DomainCreate { hostname })?;
            if json {
                output::json(&d);
            } else {
                println!("Adding {} to {name}... done", d.hostname);
                println!("Point its DNS at this server; requests for it go to {name}.");
            }
            Ok(())
        }
        Command::DomainsRemove { hostname } => {
            let name = app()?;
            let h = Hostname::parse(&hostname)?;
            let _: Domain = Client::new()?.delete(&format!("/apps/{name}/domains/{h}"))?;
            println!("Removing {h} from {name}... done");
            Ok(())
        }
        Command::Certs => {
            let name = app()?;
            let certs: Vec<Cert> = Client::new()?.get(&format!("/apps/{name}/certs"))?;
            if json {
                output::json(&certs);
            } else if certs.is_empty() {
                println!("{name} has no certificates. Add one with `paas certs:add CERT.pem KEY.pem`.");
            } else {
                output::heading(&format!("{name} Certificates"));
                let rows: Vec<Vec<String>> = certs.iter().map(|c| vec![c.hostname.clone(), c.created_at.clone()]).collect();
                output::table(&["Domain", "Added"], &rows);
            }
            Ok(())
        }
        Command::CertsAdd { certificate, key } => {
            let name = app()?;
            let read = |p: &std::path::Path| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
            let body = CertCreate { certificate_chain: read(&certificate)?, private_key: read(&key)? };
            let added: Vec<Cert> = Client::new()?.post(&format!("/apps/{name}/certs"), &body)?;
            if json {
                output::json(&added);
            } else {
                for c in &added {
                    println!("Adding the certificate for {} to {name}... done", c.hostname);
                }
            }
            Ok(())
        }
        Command::CertsRemove { hostname } => {
            let name = app()?;
            let h = Hostname::parse(&hostname)?;
            let _: Cert = Client::new()?.delete(&format!("/apps/{name}/certs/{h}"))?;
            println!("Removing the certificate for {h} from {name}... done");
            Ok(())
        }
        Command::CertsAutoEnable => {
            let name = app()?;
            let certs: Vec<Cert> = Client::new()?.post(&format!("/apps/{name}/certs/auto"), &serde_json::json!({}))?;
            if json {
                output::json(&certs);
            } else {
                println!("Automatic certificates are on for {name}; they are renewed before they expire.");
                for c in &certs {
                    println!("  {}", c.hostname);
                }
            }
            Ok(())
        }
        Command::CertsAutoDisable => {
            let name = app()?;
            Client::new()?.delete_empty(&format!("/apps/{name}/certs/auto"))?;
            println!("Automatic certificates are off for {name}; the ones it has stay until they expire or are removed.");
            Ok(())
        }
        Command::Drains => {
            let name = app()?;
            let drains: Vec<LogDrain> = Client::new()?.get(&format!("/apps/{name}/log-drains"))?;
            if json {
                output::json(&drains);
            } else if drains.is_empty() {
                println!("{name} has no drains. Add one with `paas drains:add syslog+tls://HOST:PORT`.");
            } else {
                output::heading(&format!("{name} Drains"));
                let rows: Vec<Vec<String>> = drains.iter().map(|d| vec![d.url.clone(), d.token.clone(), d.id.clone()]).collect();
                output::table(&["URL", "Token", "ID"], &rows);
            }
            Ok(())
        }
        Command::DrainsAdd { url } => {
            let name = app()?;
            let d: LogDrain = Client::new()?.post(&format!("/apps/{name}/log-drains"), &LogDrainCreate { url })?;
            if json {
                output::json(&d);
            } else {
                println!("Successfully added drain {} to {name} (token {})", d.url, d.token);
            }
            Ok(())
        }
        Command::DrainsRemove { drain } => {
            let name = app()?;
            let client = Client::new()?;
            let drains: Vec<LogDrain> = client.get(&format!("/apps/{name}/log-drains"))?;
            let shown = paas_wire::redact_url(&drain);
            let Some(found) = drains.iter().find(|d| d.id == drain || d.url == drain || d.url == shown) else {
                bail!("{name} has no drain {shown}: see `paas drains -a {name}`");
            };
            let d: LogDrain = client.delete(&format!("/apps/{name}/log-drains/{}", found.id))?;
            println!("Successfully removed drain {} from {name}", d.url);
            Ok(())
        }
        Command::BuildsCacheClear => {
            let name = app()?;
            Client::new()?.delete_empty(&format!("/apps/{name}/build-cache"))?;
            println!("Clearing the build cache of {name}... done");
            Ok(())
        }
        Command::BuildsOutput { build } => {
            let name = app()?;
            let b: BuildOutput = Client::new()?.get(&format!("/apps/{name}/builds/{}", url_segment(&build)?))?;
            if json {
                output::json(&b);
            } else {
                print!("{}", b.output);
            }
            Ok(())
        }
    }
}

/// Prints how a change went: `… done, v5` when its dynos serve, and the
/// truth when they do not.
fn report(doing: &str, result: &ChangeResult) {
    let version = result.release.as_ref().map(|r| format!(", v{}", r.version)).unwrap_or_default();
    match result.deploy.state {
        DeployState::Serving => println!("{doing}... done{version}"),
        DeployState::Pending => println!("{doing}... done{version} ({})", result.deploy.message),
        DeployState::Superseded => println!("{doing}... done{version} ({})", result.deploy.message),
        DeployState::Failed => {
            println!("{doing}... failed{version}");
            for line in result.deploy.message.lines() {
                eprintln!(" !    {line}");
            }
        }
    }
}

/// Sends a formation change (`ps:scale`, `ps:resize`), waits as asked, and
/// says how it went and what now runs.
fn change_formation(name: &str, updates: Vec<FormationChange>, wait: WaitArgs, json: bool, doing: &str) -> Result<()> {
    let result: ChangeResult =
        Client::new()?.patch(&format!("/apps/{name}/formation{}", wait.query()), &FormationUpdate { updates })?;
    if json {
        output::json(&result);
    } else {
        report(&format!("{doing} dynos of {name}"), &result);
        let now: Vec<String> =
            result.formation.iter().flatten().map(|x| format!("{}={} ({})", x.process_type, x.quantity, x.size)).collect();
        println!("Now running {}", now.join(", "));
    }
    outcome(&result)
}

/// A change whose dynos failed makes the command fail, after `report`.
fn outcome(result: &ChangeResult) -> Result<()> {
    if result.deploy.state == DeployState::Failed {
        std::process::exit(1);
    }
    Ok(())
}

/// A path segment from user input: ids, versions and dyno names only.
/// A run request from `paas run`'s arguments and flags.
fn run_request(RunArgs { env, size, command }: RunArgs, tty: bool) -> Result<paas_wire::RunCreate> {
    let mut vars = std::collections::BTreeMap::new();
    for pair in &env {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("{pair:?} is not KEY=value: write it like `paas run -e DEBUG=1 CMD`");
        };
        ConfigKey::parse(k)?;
        vars.insert(k.to_owned(), v.to_owned());
    }
    if let Some(s) = &size {
        paas_wire::DynoSize::parse(s)?;
    }
    Ok(paas_wire::RunCreate { command: crate::run::command_line(&command), env: vars, size, tty, cols: None, rows: None })
}

fn url_segment(s: &str) -> Result<&str> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') && !s.starts_with('.') {
        Ok(s)
    } else {
        bail!("{s:?} is not a release or build id: use vN or the id that `paas releases`/`paas builds` show")
    }
}

fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

fn in_git_repo() -> bool {
    Process::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn set_remote(remote: &str, url: &str) -> Result<()> {
    if !in_git_repo() {
        bail!("not in a git repository: run this inside your app's repo (or `git init` first)");
    }
    let exists = Process::new("git").args(["remote", "get-url", remote]).output()?.status.success();
    let verb = if exists { "set-url" } else { "add" };
    let status = Process::new("git").args(["remote", verb, remote, url]).status()?;
    if !status.success() {
        bail!("git remote {verb} {remote} failed");
    }
    Ok(())
}

/// The app: `-a`, else `PAAS_APP`, else the app behind the git remote `paas`.
fn resolve_app(flag: Option<&str>) -> Result<String> {
    let name = match flag.map(str::to_owned).or_else(|| std::env::var("PAAS_APP").ok().filter(|v| !v.is_empty())) {
        Some(n) => n,
        None => {
            let out = Process::new("git").args(["remote", "get-url", "paas"]).output();
            let url = match out {
                Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                _ => bail!("no app given: use -a APP, or run inside a repo with a git remote named paas (`paas git:remote -a APP`)"),
            };
            app_from_remote(&url).with_context(|| format!("the git remote paas ({url}) does not name an app"))?
        }
    };
    Ok(AppName::parse(&name)?.to_string())
}

fn app_from_remote(url: &str) -> Option<String> {
    let last = url.trim_end_matches('/').rsplit('/').next()?;
    Some(last.strip_suffix(".git").unwrap_or(last).to_owned())
}

fn login(api_url: &str, token: Option<String>) -> Result<()> {
    let token = match token {
        Some(t) => t,
        None if std::io::stdin().is_terminal() => rpassword::prompt_password("API token: ")?.trim().to_owned(),
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    if token.is_empty() {
        bail!("no token given: pass --token, or type the token that `paas-server token:create NAME` printed");
    }
    let _: Vec<App> = Client::with(api_url, &token)?.get("/apps").context("the token did not work")?;
    let creds = Credentials { api_url: api_url.trim_end_matches('/').to_owned(), token: token.clone() };
    let path = client::credentials_path()?;
    write_private(&path, &serde_json::to_string_pretty(&creds)?)?;
    if let Some(host) = reqwest::Url::parse(api_url).ok().and_then(|u| u.host_str().map(str::to_owned)) {
        update_netrc(&host, &token)?;
    }
    println!("Logged in to {}", creds.api_url);
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // The mode above applies to a new file only: one that existed with
    // wider permissions is narrowed before the secret is written.
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Puts `machine HOST login paas password TOKEN` in ~/.netrc, replacing an
/// earlier entry for the host, so `git push` authenticates as with Heroku.
fn update_netrc(host: &str, token: &str) -> Result<()> {
    let path = dirs::home_dir().context("cannot find the home directory")?.join(".netrc");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let kept = remove_netrc_machine(&old, host);
    let mut text = kept.trim_end().to_owned();
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!("machine {host}\n  login paas\n  password {token}\n"));
    write_private(&path, &text)
}

fn remove_netrc_machine(text: &str, host: &str) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "machine" && tokens.get(i + 1) == Some(&host) {
            i += 2;
            while i < tokens.len() && tokens[i] != "machine" && tokens[i] != "default" {
                i += 1;
            }
            continue;
        }
        if tokens[i] == "machine" || tokens[i] == "default" {
            out.push(format!("\n{}", tokens[i]));
        } else {
            out.push(tokens[i].to_owned());
        }
        i += 1;
    }
    out.join(" ").replace(" \n", "\n").trim().to_owned()
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_from_git_remote_url() {
        assert_eq!(app_from_remote("http://127.0.0.1:5000/myapp.git").as_deref(), Some("myapp"));
        assert_eq!(app_from_remote("http://h/myapp").as_deref(), Some("myapp"));
    }

    #[test]
    fn netrc_entry_is_replaced_not_duplicated() {
        let text = "machine a login x password 1\nmachine h login paas password old\nmachine b login y password 2\n";
        let kept = remove_netrc_machine(text, "h");
        assert!(kept.contains("machine a login x password 1"));
        assert!(kept.contains("machine b login y password 2"));
        assert!(!kept.contains("old"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
