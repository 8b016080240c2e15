//! Dynos: `ps`, `ps:scale`, `ps:resize`, `ps:restart`, `ps:stop`.

use super::{change, id_segment, Ctx, WaitArgs};
use crate::client::app_path;
use crate::exit::{self, bail_usage};
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{Dyno, DynoRestart, FormationChange, FormationUpdate};

#[derive(Subcommand)]
pub enum Cmd {
    /// List dynos.
    Ps,
    /// Scale process types: `web=2 worker=1`, with a size: `web=2:1G`.
    #[command(name = "ps:scale")]
    PsScale {
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Set dyno sizes (memory limits): `web=1G worker=256M`.
    #[command(name = "ps:resize")]
    PsResize {
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Restart dynos: all, a type (`web`, rolling) or one (`web.1`).
    #[command(name = "ps:restart")]
    PsRestart { target: Option<String> },
    /// Stop a dyno (`web.2`); a dyno of the formation is started again.
    #[command(name = "ps:stop")]
    PsStop { dyno: String },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let json = ctx.json;
    match cmd {
        Cmd::Ps => {
            let dynos: Vec<Dyno> = ctx.client()?.get(&app_path(&name, &["dynos"]))?;
            if json {
                output::json(&dynos);
            } else if dynos.is_empty() {
                println!("{name} has no dynos. Deploy with `git push paas main`, or scale with `paas ps:scale web=1`.");
            } else {
                // On a swarm: which node each runs on.
                let on_nodes = dynos.iter().any(|d| d.node.is_some());
                let rows: Vec<Vec<String>> = dynos
                    .iter()
                    .map(|d| {
                        let mut row = vec![
                            d.name.clone(),
                            format!("v{}", d.release_version),
                            d.state.clone(),
                            d.since.clone(),
                            d.restarts.to_string(),
                            d.exit_code.map_or_else(String::new, |c| c.to_string()),
                            d.size.clone(),
                            memory(d),
                            d.cpu_percent.map_or_else(String::new, |c| format!("{c:.1}%")),
                        ];
                        if on_nodes {
                            row.push(d.node.clone().unwrap_or_default());
                        }
                        row.push(d.command.clone());
                        row
                    })
                    .collect();
                let mut header = vec!["Dyno", "Release", "State", "Since", "Restarts", "Last exit", "Size", "Memory", "CPU"];
                if on_nodes {
                    header.push("Node");
                }
                header.push("Command");
                output::table(&header, &rows);
            }
            Ok(0)
        }
        Cmd::PsScale { changes, wait } => {
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
                    bail_usage!("{c:?} is not TYPE=COUNT[:SIZE]: write it like `paas ps:scale web=2 worker=1:512M`");
                };
                updates.push(FormationChange { process_type, quantity: Some(quantity), size });
            }
            formation(ctx, &name, updates, wait, "Scaling")
        }
        Cmd::PsResize { changes, wait } => {
            let mut updates = Vec::new();
            for c in &changes {
                let Some((process_type, size)) = c.split_once('=') else {
                    bail_usage!("{c:?} is not TYPE=SIZE: write it like `paas ps:resize web=1G worker=256M`");
                };
                paas_wire::DynoSize::parse(size)?;
                updates.push(FormationChange { process_type: process_type.to_owned(), quantity: None, size: Some(size.to_owned()) });
            }
            formation(ctx, &name, updates, wait, "Resizing")
        }
        Cmd::PsRestart { target } => {
            let what = target.clone().unwrap_or_else(|| "all dynos".to_owned());
            let path = match &target {
                Some(t) => app_path(&name, &["dynos", id_segment(t)?]),
                None => app_path(&name, &["dynos"]),
            };
            let r: DynoRestart = {
                let _spinner = (!json).then(|| output::Spinner::start(&format!("Restarting {what} of {name}")));
                ctx.client()?.delete(&path)?
            };
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
                        output::warn(line);
                    }
                }
                output::warn("the dynos whose replacement did not come up keep running");
            }
            Ok(if r.failures.is_empty() { 0 } else { exit::FAILED })
        }
        Cmd::PsStop { dyno } => {
            ctx.client()?.empty(reqwest::Method::POST, &app_path(&name, &["dynos", id_segment(&dyno)?, "actions", "stop"]))?;
            if json {
                output::json(&serde_json::json!({ "stopped": dyno }));
            } else {
                println!("Stopping {dyno} of {name}... done");
            }
            Ok(0)
        }
    }
}

/// Sends a formation change (`ps:scale`, `ps:resize`), waits as asked, and
/// says how it went and what now runs.
fn formation(ctx: &mut Ctx, name: &str, updates: Vec<FormationChange>, wait: WaitArgs, doing: &str) -> Result<i32> {
    let json = ctx.json;
    let client = ctx.client()?;
    let body = FormationUpdate { updates };
    let send = || client.patch(&app_path(name, &["formation"]), &wait.query(), &body);
    change(json, &format!("{doing} dynos of {name}"), send, |result| {
        let now: Vec<String> =
            result.formation.iter().flatten().map(|x| format!("{}={} ({})", x.process_type, x.quantity, x.size)).collect();
        println!("Now running {}", now.join(", "));
    })
}

/// Memory in use against the dyno's size, e.g. `143M (28%)`; empty before
/// its first sample.
fn memory(d: &Dyno) -> String {
    match (d.memory_bytes, d.memory_limit_bytes) {
        (Some(m), Some(l)) if l > 0 => format!("{}M ({:.0}%)", m >> 20, m as f64 * 100.0 / l as f64),
        (Some(m), _) => format!("{}M", m >> 20),
        _ => String::new(),
    }
}
