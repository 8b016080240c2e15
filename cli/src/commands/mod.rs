//! The command line, cargo-style: [`Cli`] holds the global flags and the
//! verbs, which each resource module declares and runs (`apps`, `config`,
//! `releases`, `ps`, `run`, `cron`, `logs`, `domains`, `certs`, `drains`,
//! `addons` (and `pg:`/`redis:` backups), `tokens`, `builds`, `login`, `people`
//! (users, access, audit), `pipelines` (and maintenance mode), `twelve` (`12factor`), `metrics`); [`Ctx`] is what every verb gets: the app (from
//! `-a`, `PAAS_APP` or the git remote `-r` names), whether to print JSON,
//! and one API client.

mod addons;
mod apps;
mod builds;
mod certs;
mod config;
mod cron;
mod deploy;
mod domains;
mod drains;
mod login;
mod logs;
mod people;
mod pipelines;
mod ps;
mod releases;
mod run;
mod tokens;
mod metrics;
mod twelve;

use crate::client::Client;
use crate::exit::{self, bail_usage};
use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use paas_wire::{AppName, ChangeResult, DeployState};
use std::process::Command as Process;

#[derive(Parser)]
#[command(name = "paas", version, about = "Deploy and run apps on a paas server", after_help = exit::HELP)]
pub struct Cli {
    /// The app (default: PAAS_APP, else the app behind the git remote --remote names).
    #[arg(short, long, global = true)]
    app: Option<String>,
    /// The git remote whose app to act on (and that `git:remote` and `apps:create` set).
    #[arg(short, long, global = true, default_value = "paas", value_name = "NAME")]
    remote: String,
    /// Print machine-readable JSON (every verb that prints; the others say they do not).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Login(login::Cmd),
    #[command(flatten)]
    Apps(apps::Cmd),
    #[command(flatten)]
    Config(config::Cmd),
    #[command(flatten)]
    Releases(releases::Cmd),
    #[command(flatten)]
    Ps(ps::Cmd),
    #[command(flatten)]
    Run(run::Cmd),
    #[command(flatten)]
    Cron(cron::Cmd),
    #[command(flatten)]
    Builds(builds::Cmd),
    #[command(flatten)]
    Deploy(deploy::Cmd),
    #[command(flatten)]
    Logs(logs::Cmd),
    #[command(flatten)]
    Domains(domains::Cmd),
    #[command(flatten)]
    Certs(certs::Cmd),
    #[command(flatten)]
    Drains(drains::Cmd),
    #[command(flatten)]
    Addons(addons::Cmd),
    #[command(flatten)]
    Tokens(tokens::Cmd),
    #[command(flatten)]
    People(people::Cmd),
    #[command(flatten)]
    Pipelines(pipelines::Cmd),
    #[command(flatten)]
    TwelveFactor(twelve::Cmd),
    #[command(flatten)]
    Metrics(metrics::Cmd),
    /// Print a shell completion script: `paas completions bash > /etc/bash_completion.d/paas`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every verb gets.
pub struct Ctx {
    app: Option<String>,
    remote: String,
    pub json: bool,
    client: Option<Client>,
}

impl Ctx {
    /// The app: `-a`, else `PAAS_APP`, else the app behind the git remote.
    pub fn app(&self) -> Result<String> {
        let name = match self.app.clone().or_else(|| std::env::var("PAAS_APP").ok().filter(|v| !v.is_empty())) {
            Some(n) => n,
            None => {
                let remote = &self.remote;
                let out = Process::new("git").args(["remote", "get-url", remote]).output();
                let url = match out {
                    Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                    _ => bail_usage!(
                        "no app given: use -a APP, or run inside a repo with a git remote named {remote} (`paas git:remote -a APP -r {remote}`)"
                    ),
                };
                app_from_remote(&url).with_context(|| format!("the git remote {remote} ({url}) does not name an app"))?
            }
        };
        Ok(AppName::parse(&name)?.to_string())
    }

    /// The app given with `-a`, if any (`apps:create` takes it as the name).
    pub fn app_flag(&self) -> Option<&str> {
        self.app.as_deref()
    }

    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// The API client, made on first use.
    pub fn client(&mut self) -> Result<&Client> {
        if self.client.is_none() {
            self.client = Some(Client::new()?);
        }
        Ok(self.client.as_ref().expect("just made"))
    }

    /// Refuses `--json` for a verb that prints no JSON, saying why.
    pub fn no_json(&self, verb: &str, why: &str) -> Result<()> {
        if self.json {
            bail_usage!("`paas {verb}` does not print JSON: {why}");
        }
        Ok(())
    }
}

/// Runs the command line; the exit code to leave with.
pub fn run(cli: Cli) -> Result<i32> {
    let mut ctx = Ctx { app: cli.app, remote: cli.remote, json: cli.json, client: None };
    match cli.command {
        Command::Login(cmd) => login::run(cmd, &mut ctx),
        Command::Apps(cmd) => apps::run(cmd, &mut ctx),
        Command::Config(cmd) => config::run(cmd, &mut ctx),
        Command::Releases(cmd) => releases::run(cmd, &mut ctx),
        Command::Ps(cmd) => ps::run(cmd, &mut ctx),
        Command::Run(cmd) => run::run(cmd, &mut ctx),
        Command::Cron(cmd) => cron::run(cmd, &mut ctx),
        Command::Builds(cmd) => builds::run(cmd, &mut ctx),
        Command::Deploy(cmd) => deploy::run(cmd, &mut ctx),
        Command::Logs(cmd) => logs::run(cmd, &mut ctx),
        Command::Domains(cmd) => domains::run(cmd, &mut ctx),
        Command::Certs(cmd) => certs::run(cmd, &mut ctx),
        Command::Drains(cmd) => drains::run(cmd, &mut ctx),
        Command::Addons(cmd) => addons::run(cmd, &mut ctx),
        Command::Tokens(cmd) => tokens::run(cmd, &mut ctx),
        Command::People(cmd) => people::run(cmd, &mut ctx),
        Command::Pipelines(cmd) => pipelines::run(cmd, &mut ctx),
        Command::TwelveFactor(cmd) => twelve::run(cmd, &mut ctx),
        Command::Metrics(cmd) => metrics::run(cmd, &mut ctx),
        Command::Completions { shell } => {
            ctx.no_json("completions", "it prints a shell script")?;
            clap_complete::generate(shell, &mut Cli::command(), "paas", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// How long a change waits for its dynos.
#[derive(clap::Args, Clone, Copy)]
pub struct WaitArgs {
    /// Return once the release is made, without waiting for the dynos.
    #[arg(long)]
    no_wait: bool,
    /// Seconds to wait for the new dynos to serve.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

impl WaitArgs {
    pub fn query(self) -> [(&'static str, String); 1] {
        [("wait", if self.no_wait { 0 } else { self.wait }.to_string())]
    }
}

/// Sends a change that waits for its dynos, with a spinner meanwhile (on a
/// terminal); prints how it went; the exit code (1 when its dynos failed).
pub fn change(json: bool, doing: &str, send: impl FnOnce() -> Result<ChangeResult>, then: impl FnOnce(&ChangeResult)) -> Result<i32> {
    let result = {
        let _spinner = (!json).then(|| crate::output::Spinner::start(doing));
        send()?
    };
    if json {
        crate::output::json(&result);
    } else {
        report(doing, &result);
        then(&result);
    }
    Ok(if result.deploy.state == DeployState::Failed { exit::FAILED } else { 0 })
}

/// Prints how a change went: `… done, v5` when its dynos serve, and the
/// truth when they do not.
fn report(doing: &str, result: &ChangeResult) {
    let version = result.release.as_ref().map(|r| format!(", v{}", r.version)).unwrap_or_default();
    match result.deploy.state {
        DeployState::Serving => println!("{doing}... done{version}"),
        DeployState::Pending | DeployState::Superseded => println!("{doing}... done{version} ({})", result.deploy.message),
        DeployState::Failed => {
            println!("{doing}... failed{version}");
            for line in result.deploy.message.lines() {
                crate::output::warn(line);
            }
        }
    }
}

/// A path segment from user input that names a release, build or dyno.
pub fn id_segment(s: &str) -> Result<&str> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') && !s.starts_with('.') {
        Ok(s)
    } else {
        bail_usage!("{s:?} is not a release, build or dyno: use vN, web.1 or the id that `paas releases`/`paas builds` show")
    }
}

/// A line of standard input, without its line end.
pub fn read_line() -> Result<String> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// A secret (a password): typed at the terminal without echo after
/// `prompt`, or the first line of standard input; never from argv.
pub fn read_secret(prompt: &str) -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return Ok(rpassword::prompt_password(prompt)?);
    }
    read_line()
}

pub fn in_git_repo() -> bool {
    Process::new("git").args(["rev-parse", "--git-dir"]).output().is_ok_and(|o| o.status.success())
}

pub fn set_remote(remote: &str, url: &str) -> Result<()> {
    if !in_git_repo() {
        bail_usage!("not in a git repository: run this inside your app's repo (or `git init` first)");
    }
    let exists = Process::new("git").args(["remote", "get-url", remote]).output()?.status.success();
    let verb = if exists { "set-url" } else { "add" };
    let status = Process::new("git").args(["remote", verb, remote, url]).status()?;
    if !status.success() {
        anyhow::bail!("git remote {verb} {remote} failed");
    }
    Ok(())
}

/// Points every remote of this repo whose URL is `from` at `to`; answers
/// their names.
pub fn repoint_remotes(from: &str, to: &str) -> Result<Vec<String>> {
    let listed = Process::new("git").args(["remote"]).output()?;
    let mut done = Vec::new();
    for remote in String::from_utf8_lossy(&listed.stdout).lines().map(str::trim).filter(|r| !r.is_empty()) {
        let url = Process::new("git").args(["remote", "get-url", remote]).output()?;
        if String::from_utf8_lossy(&url.stdout).trim() == from {
            if !Process::new("git").args(["remote", "set-url", remote, to]).status()?.success() {
                anyhow::bail!("git remote set-url {remote} failed: set it with `git remote set-url {remote} {to}`");
            }
            done.push(remote.to_owned());
        }
    }
    Ok(done)
}

fn app_from_remote(url: &str) -> Option<String> {
    let last = url.trim_end_matches('/').rsplit('/').next()?;
    Some(last.strip_suffix(".git").unwrap_or(last).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_from_git_remote_url() {
        assert_eq!(app_from_remote("http://127.0.0.1:5000/myapp.git").as_deref(), Some("myapp"));
        assert_eq!(app_from_remote("http://h/myapp").as_deref(), Some("myapp"));
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
