//! Pipelines and maintenance mode: `pipelines`, `pipelines:create`,
//! `pipelines:info`, `pipelines:add`, `pipelines:remove`,
//! `pipelines:destroy`, `pipelines:promote`, `pipelines:diff`;
//! `maintenance`, `maintenance:on`, `maintenance:off`.

use super::Ctx;
use crate::client::app_path;
use crate::exit;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{Coupling, CouplingCreate, DeployState, Maintenance, Pipeline, PipelineCreate, PipelineDiff, Promotion, PromotionCreate};

#[derive(Subcommand)]
pub enum Cmd {
    /// List the pipelines you can see.
    Pipelines,
    /// Make a pipeline.
    #[command(name = "pipelines:create")]
    PipelinesCreate { name: String },
    /// Show a pipeline's apps by stage, with their releases and commits.
    #[command(name = "pipelines:info")]
    PipelinesInfo { pipeline: String },
    /// Put the app (-a) in a pipeline at a stage.
    #[command(name = "pipelines:add")]
    PipelinesAdd {
        pipeline: String,
        /// development, staging or production.
        #[arg(short, long, value_name = "STAGE")]
        stage: String,
    },
    /// Take the app (-a) out of its pipeline.
    #[command(name = "pipelines:remove")]
    PipelinesRemove,
    /// Destroy a pipeline (its apps stay).
    #[command(name = "pipelines:destroy")]
    PipelinesDestroy { pipeline: String },
    /// Release the app's (-a) current build in the next stage's apps (or those --to names), with their own config: nothing is rebuilt.
    #[command(name = "pipelines:promote")]
    PipelinesPromote {
        /// Comma-separated apps to promote to (default: every app of the next stage).
        #[arg(long, value_delimiter = ',', value_name = "APPS")]
        to: Vec<String>,
        /// Seconds to wait for each target's dynos to serve.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// The commits the app's (-a) build has that the next stage's apps' builds lack.
    #[command(name = "pipelines:diff")]
    PipelinesDiff,
    /// Whether the app is in maintenance mode.
    Maintenance,
    /// Serve a 503 maintenance page for the app's web requests (dynos and `paas run` keep working).
    #[command(name = "maintenance:on")]
    MaintenanceOn,
    /// Serve the app's web dynos again.
    #[command(name = "maintenance:off")]
    MaintenanceOff,
}

fn print_pipeline(p: &Pipeline) {
    output::heading(&format!("Pipeline {}", p.name));
    let rows: Vec<Vec<String>> = p
        .apps
        .iter()
        .map(|a| {
            vec![
                a.stage.clone(),
                a.app.clone(),
                a.release.map(|v| format!("v{v}")).unwrap_or_else(|| "none".into()),
                a.commit.as_deref().map(|c| c.chars().take(7).collect()).unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["Stage", "App", "Release", "Commit"], &rows);
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let json = ctx.json;
    match cmd {
        Cmd::Pipelines => {
            let list: Vec<Pipeline> = ctx.client()?.get(&["pipelines"])?;
            if json {
                output::json(&list);
            } else if list.is_empty() {
                println!("No pipelines. Make one with `paas pipelines:create NAME`.");
            } else {
                output::heading("Pipelines");
                let rows: Vec<Vec<String>> = list.iter().map(|p| vec![p.name.clone(), p.apps.iter().map(|a| format!("{} ({})", a.app, a.stage)).collect::<Vec<_>>().join(", ")]).collect();
                output::table(&["Pipeline", "Apps"], &rows);
            }
        }
        Cmd::PipelinesCreate { name } => {
            let p: Pipeline = ctx.client()?.post(&["pipelines"], &[], &PipelineCreate { name })?;
            if json {
                output::json(&p);
            } else {
                println!("Created pipeline {}. Add apps with `paas pipelines:add {} -a APP --stage staging`.", p.name, p.name);
            }
        }
        Cmd::PipelinesInfo { pipeline } => {
            let p: Pipeline = ctx.client()?.get(&["pipelines", &pipeline])?;
            if json {
                output::json(&p);
            } else {
                print_pipeline(&p);
            }
        }
        Cmd::PipelinesAdd { pipeline, stage } => {
            let app = ctx.app()?;
            let c: Coupling = ctx.client()?.post(&["pipeline-couplings"], &[], &CouplingCreate { pipeline, app, stage })?;
            if json {
                output::json(&c);
            } else {
                println!("Added {} to {} at {}", c.app, c.pipeline, c.stage);
            }
        }
        Cmd::PipelinesRemove => {
            let app = ctx.app()?;
            let c: Coupling = ctx.client()?.delete(&app_path(&app, &["pipeline-couplings"]))?;
            if json {
                output::json(&c);
            } else {
                println!("Removed {} from {}", c.app, c.pipeline);
            }
        }
        Cmd::PipelinesDestroy { pipeline } => {
            let p: Pipeline = ctx.client()?.delete(&["pipelines", &pipeline])?;
            if json {
                output::json(&p);
            } else {
                println!("Destroyed pipeline {} (its apps stay)", p.name);
            }
        }
        Cmd::PipelinesPromote { to, wait } => {
            let source = ctx.app()?;
            let body = PromotionCreate { source: source.clone(), targets: to };
            let promotion: Promotion = {
                let _spinner = (!json).then(|| output::Spinner::start(&format!("Promoting {source}")));
                ctx.client()?.post(&["pipeline-promotions"], &[("wait", wait.to_string())], &body)?
            };
            if json {
                output::json(&promotion);
            }
            let mut failed = false;
            for t in &promotion.targets {
                let line = match (&t.release, &t.deploy, &t.error) {
                    (_, _, Some(why)) => {
                        failed = true;
                        format!("{}: not promoted: {why}", t.app)
                    }
                    (Some(r), Some(d), _) => {
                        failed |= d.state == DeployState::Failed;
                        format!("{}: v{}, {}", t.app, r.version, d.message)
                    }
                    _ => format!("{}: released", t.app),
                };
                if !json {
                    println!("{line}");
                }
            }
            if !json {
                println!("Promoted {} v{} to {} app(s) of {}", promotion.source, promotion.source_release, promotion.targets.len(), promotion.pipeline);
            }
            return Ok(if failed { exit::FAILED } else { 0 });
        }
        Cmd::PipelinesDiff => {
            let app = ctx.app()?;
            let diff: PipelineDiff = ctx.client()?.get(&app_path(&app, &["pipeline-diff"]))?;
            if json {
                output::json(&diff);
            } else {
                for d in &diff.downstream {
                    match (&d.note, d.commits.is_empty()) {
                        (Some(note), _) => println!("{} and {}: {note}", diff.app, d.app),
                        (None, true) => println!("{} is up to date with {}", d.app, diff.app),
                        (None, false) => {
                            println!("{} is ahead of {} by {} commit(s):", diff.app, d.app, d.commits.len());
                            for c in &d.commits {
                                println!("  {c}");
                            }
                        }
                    }
                }
                if diff.downstream.is_empty() {
                    println!("{} has no app downstream of it", diff.app);
                }
            }
        }
        Cmd::Maintenance | Cmd::MaintenanceOn | Cmd::MaintenanceOff => {
            let app = ctx.app()?;
            let path = app_path(&app, &["maintenance"]);
            let m: Maintenance = match cmd {
                Cmd::MaintenanceOn => ctx.client()?.patch(&path, &[], &Maintenance { maintenance: true })?,
                Cmd::MaintenanceOff => ctx.client()?.patch(&path, &[], &Maintenance { maintenance: false })?,
                _ => ctx.client()?.get(&path)?,
            };
            if json {
                output::json(&m);
            } else {
                println!("{app}: maintenance mode is {}", if m.maintenance { "on" } else { "off" });
            }
        }
    }
    Ok(0)
}
