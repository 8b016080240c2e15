//! Builds: `builds`, `builds:output`, `builds:cache:clear`.

use super::{id_segment, Ctx};
use crate::client::app_path;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{Build, BuildOutput};

#[derive(Subcommand)]
pub enum Cmd {
    /// List builds.
    Builds,
    /// Show a build's output.
    #[command(name = "builds:output")]
    BuildsOutput { build: String },
    /// Empty the app's build cache: the next build installs dependencies afresh.
    #[command(name = "builds:cache:clear")]
    BuildsCacheClear,
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let json = ctx.json;
    match cmd {
        Cmd::Builds => {
            let builds: Vec<Build> = ctx.client()?.get(&app_path(&name, &["builds"]))?;
            if json {
                output::json(&builds);
            } else if builds.is_empty() {
                println!("{name} has no builds yet. Deploy with `git push paas main`.");
            } else {
                let rows: Vec<Vec<String>> = builds
                    .iter()
                    .map(|b| vec![b.id.clone(), b.status.clone(), b.commit.chars().take(7).collect(), b.created_at.clone()])
                    .collect();
                output::table(&["ID", "Status", "Commit", "Created"], &rows);
            }
        }
        Cmd::BuildsOutput { build } => {
            let b: BuildOutput = ctx.client()?.get(&app_path(&name, &["builds", id_segment(&build)?]))?;
            if json {
                output::json(&b);
            } else {
                print!("{}", b.output);
            }
        }
        Cmd::BuildsCacheClear => {
            ctx.client()?.empty(reqwest::Method::DELETE, &app_path(&name, &["build-cache"]))?;
            if json {
                output::json(&serde_json::json!({ "cleared": name }));
            } else {
                println!("Clearing the build cache of {name}... done");
            }
        }
    }
    Ok(0)
}
