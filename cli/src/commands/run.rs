//! One-off dynos: `run` (attached: a terminal when this is one, else
//! pipes; see [`crate::attach`]) and `run:detached`.

use super::Ctx;
use crate::client::app_path;
use crate::exit::bail_usage;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{ConfigKey, Dyno, RunCreate};

/// What `run` and `run:detached` take.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Set a config var for this run only (KEY=value; repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Its memory limit, e.g. 1G (default: the server's dyno size).
    #[arg(long)]
    size: Option<String>,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run a command in a one-off dyno (`run.N`) of the app's release, attached:
    /// a terminal when this is one, else pipes. One argument is a shell command
    /// line as it is; several are words.
    Run {
        #[command(flatten)]
        run: RunArgs,
        /// Pipes even when this is a terminal.
        #[arg(long)]
        no_tty: bool,
    },
    /// Run a command in a one-off dyno in the background; its output goes to the app's logs.
    #[command(name = "run:detached")]
    RunDetached {
        #[command(flatten)]
        run: RunArgs,
    },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    if let Cmd::Run { .. } = cmd {
        ctx.no_json("run", "its output is the command's own; use `paas run:detached --json` for the dyno")?;
    }
    let name = ctx.app()?;
    match cmd {
        Cmd::Run { run, no_tty } => {
            let req = request(run, crate::attach::wants_tty(no_tty))?;
            crate::attach::attached(&name, req)
        }
        Cmd::RunDetached { run } => {
            let req = request(run, false)?;
            let json = ctx.json;
            let dyno: Dyno = ctx.client()?.post(&app_path(&name, &["dynos"]), &[], &req)?;
            if json {
                output::json(&dyno);
            } else {
                println!("Running `{}` on {name}... up, {}", req.command, dyno.name);
                println!("Its output goes to the app's logs: `paas logs -a {name} -p {} -t`", dyno.name);
            }
            Ok(0)
        }
    }
}

/// A run request from `paas run`'s arguments and flags.
fn request(RunArgs { env, size, command }: RunArgs, tty: bool) -> Result<RunCreate> {
    let mut vars = std::collections::BTreeMap::new();
    for pair in &env {
        let Some((k, v)) = pair.split_once('=') else {
            bail_usage!("{pair:?} is not KEY=value: write it like `paas run -e DEBUG=1 CMD`");
        };
        ConfigKey::parse(k)?;
        vars.insert(k.to_owned(), v.to_owned());
    }
    if let Some(s) = &size {
        paas_wire::DynoSize::parse(s)?;
    }
    Ok(RunCreate { command: crate::attach::command_line(&command), env: vars, size, tty, cols: None, rows: None })
}
