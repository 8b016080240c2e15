//! TLS certificates: `certs`, `certs:add`, `certs:remove`,
//! `certs:auto:enable`, `certs:auto:disable`.

use super::Ctx;
use crate::client::app_path;
use crate::output;
use anyhow::{Context, Result};
use clap::Subcommand;
use paas_wire::{Cert, CertCreate, Hostname};

#[derive(Subcommand)]
pub enum Cmd {
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
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let json = ctx.json;
    match cmd {
        Cmd::Certs => {
            let certs: Vec<Cert> = ctx.client()?.get(&app_path(&name, &["certs"]))?;
            if json {
                output::json(&certs);
            } else if certs.is_empty() {
                println!("{name} has no certificates. Add one with `paas certs:add CERT.pem KEY.pem`.");
            } else {
                output::heading(&format!("{name} Certificates"));
                let rows: Vec<Vec<String>> = certs.iter().map(|c| vec![c.hostname.clone(), c.created_at.clone()]).collect();
                output::table(&["Domain", "Added"], &rows);
            }
        }
        Cmd::CertsAdd { certificate, key } => {
            let read = |p: &std::path::Path| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
            let body = CertCreate { certificate_chain: read(&certificate)?, private_key: read(&key)? };
            let added: Vec<Cert> = ctx.client()?.post(&app_path(&name, &["certs"]), &[], &body)?;
            if json {
                output::json(&added);
            } else {
                for c in &added {
                    println!("Adding the certificate for {} to {name}... done", c.hostname);
                }
            }
        }
        Cmd::CertsRemove { hostname } => {
            let h = Hostname::parse(&hostname)?;
            let c: Cert = ctx.client()?.delete(&app_path(&name, &["certs", h.as_str()]))?;
            if json {
                output::json(&c);
            } else {
                println!("Removing the certificate for {h} from {name}... done");
            }
        }
        Cmd::CertsAutoEnable => {
            let certs: Vec<Cert> = ctx.client()?.post(&app_path(&name, &["certs", "auto"]), &[], &serde_json::json!({}))?;
            if json {
                output::json(&certs);
            } else {
                println!("Automatic certificates are on for {name}; they are renewed before they expire.");
                for c in &certs {
                    println!("  {}", c.hostname);
                }
            }
        }
        Cmd::CertsAutoDisable => {
            ctx.client()?.empty(reqwest::Method::DELETE, &app_path(&name, &["certs", "auto"]))?;
            if json {
                output::json(&serde_json::json!({ "auto": false }));
            } else {
                println!("Automatic certificates are off for {name}; the ones it has stay until they expire or are removed.");
            }
        }
    }
    Ok(0)
}
