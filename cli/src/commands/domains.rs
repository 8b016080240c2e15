//! Domains: `domains`, `domains:add`, `domains:remove`.

use super::Ctx;
use crate::client::app_path;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{Domain, DomainCreate, Hostname};

#[derive(Subcommand)]
pub enum Cmd {
    /// List the app's domains.
    Domains,
    /// Send a domain's requests to the app: www.example.com, or *.example.com.
    #[command(name = "domains:add")]
    DomainsAdd { hostname: String },
    /// Stop sending a domain's requests to the app.
    #[command(name = "domains:remove")]
    DomainsRemove { hostname: String },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let json = ctx.json;
    match cmd {
        Cmd::Domains => {
            let domains: Vec<Domain> = ctx.client()?.get(&app_path(&name, &["domains"]))?;
            if json {
                output::json(&domains);
            } else {
                output::heading(&format!("{name} Domains"));
                let rows: Vec<Vec<String>> = domains.iter().map(|d| vec![d.hostname.clone(), d.kind.clone()]).collect();
                output::table(&["Domain", "Kind"], &rows);
            }
        }
        Cmd::DomainsAdd { hostname } => {
            Hostname::parse(&hostname)?;
            let d: Domain = ctx.client()?.post(&app_path(&name, &["domains"]), &[], &DomainCreate { hostname })?;
            if json {
                output::json(&d);
            } else {
                println!("Adding {} to {name}... done", d.hostname);
                println!("Point its DNS at this server; requests for it go to {name}.");
            }
        }
        Cmd::DomainsRemove { hostname } => {
            let h = Hostname::parse(&hostname)?;
            let d: Domain = ctx.client()?.delete(&app_path(&name, &["domains", h.as_str()]))?;
            if json {
                output::json(&d);
            } else {
                println!("Removing {h} from {name}... done");
            }
        }
    }
    Ok(0)
}
