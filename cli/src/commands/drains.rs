//! Log drains: `drains`, `drains:add`, `drains:remove`.

use super::Ctx;
use crate::client::app_path;
use crate::exit;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{LogDrain, LogDrainCreate};

#[derive(Subcommand)]
pub enum Cmd {
    /// List log drains.
    Drains,
    /// Send the app's logs to a drain: syslog://HOST:PORT, syslog+tls://HOST:PORT or https://...
    #[command(name = "drains:add")]
    DrainsAdd { url: String },
    /// Stop sending logs to a drain (by URL or id).
    #[command(name = "drains:remove")]
    DrainsRemove { drain: String },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let json = ctx.json;
    let path = app_path(&name, &["log-drains"]);
    match cmd {
        Cmd::Drains => {
            let drains: Vec<LogDrain> = ctx.client()?.get(&path)?;
            if json {
                output::json(&drains);
            } else if drains.is_empty() {
                println!("{name} has no drains. Add one with `paas drains:add syslog+tls://HOST:PORT`.");
            } else {
                output::heading(&format!("{name} Drains"));
                let rows: Vec<Vec<String>> = drains.iter().map(|d| vec![d.url.clone(), d.token.clone(), d.id.clone()]).collect();
                output::table(&["URL", "Token", "ID"], &rows);
            }
        }
        Cmd::DrainsAdd { url } => {
            let d: LogDrain = ctx.client()?.post(&path, &[], &LogDrainCreate { url })?;
            if json {
                output::json(&d);
            } else {
                println!("Successfully added drain {} to {name} (token {})", d.url, d.token);
            }
        }
        Cmd::DrainsRemove { drain } => {
            let client = ctx.client()?;
            let drains: Vec<LogDrain> = client.get(&path)?;
            let shown = paas_wire::redact_url(&drain);
            let Some(found) = drains.iter().find(|d| d.id == drain || d.url == drain || d.url == shown) else {
                return Err(exit::refused(format!("{name} has no drain {shown}: see `paas drains -a {name}`")));
            };
            let d: LogDrain = client.delete(&app_path(&name, &["log-drains", &found.id]))?;
            if json {
                output::json(&d);
            } else {
                println!("Successfully removed drain {} from {name}", d.url);
            }
        }
    }
    Ok(0)
}
