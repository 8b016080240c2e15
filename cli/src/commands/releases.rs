//! Releases: `releases`, `releases:info`, `releases:output`, `releases:rollback`.

use super::{change, id_segment, Ctx, WaitArgs};
use crate::client::app_path;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{Release, ReleaseCreate};

#[derive(Subcommand)]
pub enum Cmd {
    /// List releases, newest first.
    Releases {
        /// How many (default: all).
        #[arg(short = 'n', long, value_name = "N")]
        num: Option<usize>,
    },
    /// Show one release.
    #[command(name = "releases:info")]
    ReleasesInfo { release: String },
    /// Print the output of the build a release runs, then its release phase's.
    #[command(name = "releases:output")]
    ReleasesOutput { release: String },
    /// Roll back to an earlier release (a new release with its build and config).
    #[command(name = "releases:rollback")]
    ReleasesRollback {
        release: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let json = ctx.json;
    match cmd {
        Cmd::Releases { num } => {
            let mut releases: Vec<Release> = ctx.client()?.get(&app_path(&name, &["releases"]))?;
            if let Some(n) = num {
                releases.truncate(n);
            }
            if json {
                output::json(&releases);
            } else if releases.is_empty() {
                println!("{name} has no releases yet. Deploy with `git push paas main`.");
            } else {
                let current = releases.iter().find(|r| r.current).unwrap_or(&releases[0]);
                output::heading(&format!("{name} Releases - Current: v{}", current.version));
                let rows: Vec<Vec<String>> = releases
                    .iter()
                    .map(|r| {
                        let by = r.actor.as_deref().map(|a| format!("by {a}")).unwrap_or_default();
                        let status = if r.image_removed { format!("{} (image removed)", r.status) } else { r.status.clone() };
                        vec![format!("v{}", r.version), r.description.clone(), by, status, r.created_at.clone()]
                    })
                    .collect();
                output::table(&["Version", "Description", "By", "Status", "Created"], &rows);
            }
            Ok(0)
        }
        Cmd::ReleasesInfo { release } => {
            let r: Release = ctx.client()?.get(&app_path(&name, &["releases", id_segment(&release)?]))?;
            if json {
                output::json(&r);
            } else {
                output::heading(&format!("Release v{}", r.version));
                let types: Vec<String> = r.process_types.iter().map(|(t, c)| format!("{t}: {c}")).collect();
                output::pairs(&[
                    ("Description".into(), r.description),
                    ("By".into(), r.actor.unwrap_or_default()),
                    ("Status".into(), r.status),
                    ("Current".into(), r.current.to_string()),
                    ("Why".into(), r.status_detail),
                    ("Image".into(), r.image.unwrap_or_else(|| "none".into())),
                    ("Process types".into(), types.join("; ")),
                    ("Created".into(), r.created_at),
                    ("ID".into(), r.id),
                ]);
            }
            Ok(0)
        }
        Cmd::ReleasesOutput { release } => {
            let o: paas_wire::ReleaseOutput = ctx.client()?.get(&app_path(&name, &["releases", id_segment(&release)?, "output"]))?;
            if json {
                output::json(&o);
                return Ok(0);
            }
            match (&o.build_output, &o.built_by, &o.build_id) {
                (Some(text), _, _) => print!("{text}"),
                (None, Some(from), Some(build)) => println!(
                    "v{} of {name} runs a build of {from}, promoted: `paas builds:output {build} -a {from}` prints its output",
                    o.version
                ),
                (None, None, Some(build)) => println!("v{} of {name} runs build {build}, whose output is no longer kept", o.version),
                _ => println!("v{} of {name} has no build: it changed config before the first deploy", o.version),
            }
            if let Some(text) = &o.release_output {
                print!("{text}");
            }
            Ok(0)
        }
        Cmd::ReleasesRollback { release, wait } => {
            let client = ctx.client()?;
            let body = ReleaseCreate { release: release.clone() };
            let send = || client.post(&app_path(&name, &["releases"]), &wait.query(), &body);
            change(json, &format!("Rolling back {name} to {release}"), send, |_| {})
        }
    }
}
