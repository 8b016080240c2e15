//! `paas login`: checks an API URL and token, saves them for later
//! commands, and sets the one `~/.netrc` entry git uses to push.

use super::Ctx;
use crate::client::{self, Client, Credentials};
use crate::exit::bail_usage;
use anyhow::{Context, Result};
use clap::Subcommand;
use paas_wire::App;
use std::io::{BufRead, IsTerminal, Write};

#[derive(Subcommand)]
pub enum Cmd {
    /// Save an API URL and token for later commands (and for git, in its ~/.netrc entry).
    Login {
        #[arg(long, env = "PAAS_API_URL")]
        api_url: String,
        /// The API token. Better left out: then it is asked for without
        /// echo, or read from standard input (`paas login <token-file`),
        /// and never shows in process listings or shell history.
        #[arg(long)]
        token: Option<String>,
    },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let Cmd::Login { api_url, token } = cmd;
    let token = match token {
        Some(t) => t,
        None if std::io::stdin().is_terminal() => rpassword::prompt_password("API token: ")?.trim().to_owned(),
        None => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    if token.is_empty() {
        bail_usage!("no token given: pass --token, or type the token that `paas-server token:create NAME` printed");
    }
    let api = Client::with(&api_url, &token)?;
    let _: Vec<App> = api.get(&["apps"]).context("the token did not work")?;
    let creds = Credentials { api_url: api.base().as_str().trim_end_matches('/').to_owned(), token: token.clone() };
    write_private(&client::credentials_path()?, &serde_json::to_string_pretty(&creds)?)?;
    if let Some(host) = api.base().host_str() {
        let path = dirs::home_dir().context("cannot find the home directory")?.join(".netrc");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        write_private(&path, &crate::netrc::with_machine(&old, host, &token))?;
    }
    if ctx.json {
        crate::output::json(&serde_json::json!({ "api_url": creds.api_url }));
    } else {
        println!("Logged in to {}", creds.api_url);
    }
    Ok(0)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // The mode above applies to a new file only: one that existed with
    // wider permissions is narrowed before the secret is written.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
