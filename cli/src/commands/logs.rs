//! `logs`: the app's history, then (`-t`) new lines as they come, each
//! dyno's prefix in a colour of its own when colour is on.

use super::Ctx;
use crate::client::app_path;
use crate::output;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::io::{BufRead, Write};

#[derive(Subcommand)]
pub enum Cmd {
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
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let Cmd::Logs { tail, num, ps, source } = cmd;
    ctx.no_json("logs", "it prints the log's lines as they are (the API's /log-stream has them as JSON events)")?;
    let name = ctx.app()?;
    let mut query = vec![("lines", num.to_string()), ("tail", tail.to_string())];
    query.extend(ps.map(|p| ("ps", p)));
    query.extend(source.map(|s| ("source", s)));
    let reader = ctx.client()?.stream(&app_path(&name, &["logs"]), &query)?;
    let colour = output::colour();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in reader.lines() {
        let line = line.context("the log stream broke off")?;
        // A closed pipe (`| head`) ends the command quietly.
        if writeln!(out, "{}", output::log_line(&line, colour)).and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(0)
}
