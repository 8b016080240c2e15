//! Scheduled commands (app.json `cron`): `cron` lists them with their next
//! and last runs, `cron:run ID` runs one now.

use super::Ctx;
use crate::client::app_path;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{CronJob, CronRun};

#[derive(Subcommand)]
pub enum Cmd {
    /// List the app's cron entries (app.json "cron"), with their next run and how the last one went.
    #[command(name = "cron", visible_alias = "cron:list")]
    Cron,
    /// Run a cron entry now, as a detached `scheduler.N` dyno (see `paas cron` for ids).
    #[command(name = "cron:run")]
    CronRun { id: String },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let json = ctx.json;
    match cmd {
        Cmd::Cron => {
            let jobs: Vec<CronJob> = ctx.client()?.get(&app_path(&name, &["cron"]))?;
            if json {
                output::json(&jobs);
            } else if jobs.is_empty() {
                println!("{name} has no cron entries. Add a \"cron\" list to its app.json and push: [{{\"command\": \"./report\", \"schedule\": \"0 3 * * *\"}}]");
            } else {
                output::heading(&format!("{name} Cron entries (UTC)"));
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.clone(),
                            j.schedule.clone(),
                            j.command.clone(),
                            j.next_run_at.clone().unwrap_or_else(|| "never".into()),
                            j.last_run.as_ref().map_or_else(|| "not yet".into(), last_run),
                        ]
                    })
                    .collect();
                output::table(&["ID", "Schedule", "Command", "Next run", "Last run"], &rows);
            }
        }
        Cmd::CronRun { id } => {
            let run: CronRun = ctx.client()?.post(&app_path(&name, &["cron", &id, "runs"]), &[], &serde_json::json!({}))?;
            if json {
                output::json(&run);
            } else {
                let dyno = run.dyno.as_deref().unwrap_or("?");
                println!("Running cron entry {id} of {name} as {dyno}: see its output with `paas logs -a {name} -p {dyno}`");
            }
        }
    }
    Ok(0)
}

/// How a run went, in a table cell: `2026-12-06T03:00:00Z exit 0 (1.2 s)`.
fn last_run(r: &CronRun) -> String {
    let at = &r.started_at;
    let how = match (r.outcome.as_str(), r.exit_code) {
        ("running", _) => format!("running as {}", r.dyno.as_deref().unwrap_or("?")),
        ("skipped", _) => format!("skipped: {}", r.detail.as_deref().unwrap_or("its last run still goes")),
        (_, Some(code)) => format!("exit {code}"),
        (_, None) => r.detail.clone().unwrap_or_else(|| "ended".into()),
    };
    let took = r.duration_ms.map(|ms| format!(" ({:.1} s)", ms as f64 / 1000.0)).unwrap_or_default();
    let by_hand = if r.manual { ", by hand" } else { "" };
    format!("{at} {how}{took}{by_hand}")
}
