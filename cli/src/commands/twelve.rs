//! `12factor`: where the app's running release departs from the twelve
//! factors, from what the platform observed, one line per factor.

use super::Ctx;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::TwelveFactorReport;

#[derive(Subcommand)]
pub enum Cmd {
    /// Check the app against the twelve factors: one line per factor (ok, a finding with its evidence and fix, or not observed yet).
    #[command(name = "12factor")]
    TwelveFactor,
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let Cmd::TwelveFactor = cmd;
    let name = ctx.app()?;
    let report: TwelveFactorReport = ctx.client()?.get(&["apps", &name, "twelve-factor"])?;
    if ctx.json {
        output::json(&report);
        return Ok(0);
    }
    let Some(version) = report.release else {
        println!("{name} has no release yet: deploy it (`git push paas main`), then look again.");
        return Ok(0);
    };
    output::heading(&format!("{name} v{version} against the twelve factors"));
    for f in &report.factors {
        let head = format!("{:>4}. {}", f.numeral, f.name);
        match f.status.as_str() {
            "not_observed" => println!("{head:<26} not observed yet"),
            _ => {
                let first = &f.observations[0];
                let verdict = if first.ok { "ok" } else { "FINDING" };
                println!("{head:<26} {verdict}: {}", first.message);
                if let Some(fix) = &first.fix {
                    println!("{:<26} fix: {fix}", "");
                }
                for o in f.observations.iter().skip(1).filter(|o| !o.ok) {
                    println!("{:<26} FINDING: {}", "", o.message);
                    if let Some(fix) = &o.fix {
                        println!("{:<26} fix: {fix}", "");
                    }
                }
            }
        }
    }
    Ok(0)
}
