//! `paas login`: signs in with an email and password for a token of that
//! user (or takes a token, for automation), saves the API URL and token
//! for later commands, and sets the one `~/.netrc` entry git uses to push;
//! `paas logout` revokes that token and forgets it.

use super::Ctx;
use crate::client::{self, Client, Credentials};
use crate::exit::bail_usage;
use anyhow::{Context, Result};
use clap::Subcommand;
use paas_wire::{Account, Login, TokenCreated};
use std::io::{IsTerminal, Write};

#[derive(Subcommand)]
pub enum Cmd {
    /// Sign in: asks for your email and password (or, on standard input,
    /// reads them as two lines, or a token as one), and saves a token of
    /// yours for later commands (and for git, in its ~/.netrc entry).
    Login {
        #[arg(long, env = "PAAS_API_URL")]
        api_url: String,
        /// Sign in with an API token instead (a deploy token, or the admin
        /// token). Better given without a value: then it is asked for
        /// without echo, and never shows in process listings or history.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        token: Option<String>,
    },
    /// Sign out: revoke the saved token and forget it.
    Logout,
    /// Who the saved token (or PAAS_TOKEN) is.
    Whoami,
    /// The CLI's version and the server's; warns when they differ in a way that matters.
    Version,
}

/// A token: the one given, or one made by signing in with an email and
/// password read from the terminal or standard input.
fn obtain_token(api_url: &str, token: Option<String>) -> Result<String> {
    let tty = std::io::stdin().is_terminal();
    let (email, password) = match token {
        Some(t) if !t.is_empty() => return Ok(t),
        Some(_) => return Ok(super::read_secret("API token: ")?.trim().to_owned()),
        None if tty => {
            eprint!("Email: ");
            std::io::stderr().flush()?;
            (super::read_line()?, rpassword::prompt_password("Password: ")?)
        }
        None => {
            // Standard input: an email and a password, or (as before users
            // existed) a token alone.
            let first = super::read_line()?.trim().to_owned();
            if !first.contains('@') {
                return Ok(first);
            }
            (first, super::read_line()?)
        }
    };
    if email.trim().is_empty() {
        bail_usage!("no email given: type the email a platform admin added you with (`paas users:create EMAIL`)");
    }
    let host = hostname();
    let body = Login { email: email.trim().to_owned(), password, description: Some(format!("paas login on {host}")) };
    let made: TokenCreated = Client::anonymous(api_url)?.post(&["auth", "tokens"], &[], &body)?;
    Ok(made.value)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "this machine".into())
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let (api_url, token) = match cmd {
        Cmd::Login { api_url, token } => (api_url, token),
        Cmd::Logout => return logout(ctx),
        Cmd::Whoami => return whoami(ctx),
        Cmd::Version => return version(ctx),
    };
    let token = obtain_token(&api_url, token)?;
    if token.is_empty() {
        bail_usage!("no token given: type your email and password, or a token that `paas tokens:create` printed");
    }
    let api = Client::with(&api_url, &token)?;
    let account: Account = api.get(&["account"]).context("the token did not work")?;
    let creds = Credentials { api_url: api.base().as_str().trim_end_matches('/').to_owned(), token: token.clone() };
    write_private(&client::credentials_path()?, &serde_json::to_string_pretty(&creds)?)?;
    if let Some(host) = api.base().host_str() {
        let path = dirs::home_dir().context("cannot find the home directory")?.join(".netrc");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        write_private(&path, &crate::netrc::with_machine(&old, host, &token))?;
    }
    if ctx.json {
        crate::output::json(&serde_json::json!({ "api_url": creds.api_url, "email": account.user.email }));
    } else {
        println!("Logged in to {} as {}", creds.api_url, account.user.email);
    }
    Ok(0)
}

fn version(ctx: &mut Ctx) -> Result<i32> {
    let cli = env!("CARGO_PKG_VERSION");
    let json = ctx.json;
    let client = ctx.client()?;
    let server: paas_wire::ServerVersion = client.get(&["version"])?;
    let clash = paas_wire::versions_clash(cli, &server.version);
    if json {
        crate::output::json(&serde_json::json!({ "cli": cli, "server": server, "clash": clash }));
    } else {
        println!("paas CLI {cli}");
        println!("paas-server {} at {} (store schema {})", server.version, client.base().as_str().trim_end_matches('/'), server.schema);
        if clash {
            crate::output::warn(&format!(
                "the CLI ({cli}) and the server ({}) may not agree on the API: install the CLI of the server's version",
                server.version
            ));
        }
    }
    Ok(0)
}

fn whoami(ctx: &mut Ctx) -> Result<i32> {
    let account: Account = ctx.client()?.get(&["account"])?;
    if ctx.json {
        crate::output::json(&account);
        return Ok(0);
    }
    let mut line = account.user.email.clone();
    if account.user.admin {
        line.push_str(" (platform admin)");
    }
    if let Some(app) = account.token.as_ref().and_then(|t| t.app.as_ref()) {
        line = format!("a deploy token of {app}, made by {line}");
    }
    println!("{line}");
    Ok(0)
}

fn logout(ctx: &mut Ctx) -> Result<i32> {
    ctx.no_json("logout", "it prints one line")?;
    let path = client::credentials_path()?;
    let saved: Option<Credentials> = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
    let Some(creds) = saved else {
        println!("Not logged in.");
        return Ok(0);
    };
    // Revoked first: a token forgotten here but still valid would be a leak.
    match Client::with(&creds.api_url, &creds.token)?.empty(reqwest::Method::DELETE, &["auth", "token"]) {
        Ok(()) => {}
        // Refused: the token no longer works (revoked, expired) anyway.
        Err(e) if crate::exit::code_of(&e) == crate::exit::REFUSED => {}
        Err(e) => return Err(e.context("cannot revoke the token, so it is kept: try again, or revoke it with `paas tokens:revoke`")),
    }
    std::fs::remove_file(&path)?;
    if let Some(host) = reqwest::Url::parse(&creds.api_url).ok().and_then(|u| u.host_str().map(str::to_owned)) {
        let netrc = dirs::home_dir().context("cannot find the home directory")?.join(".netrc");
        if let Ok(old) = std::fs::read_to_string(&netrc) {
            write_private(&netrc, &crate::netrc::without_machine(&old, &host))?;
        }
    }
    println!("Logged out of {}: the token is revoked", creds.api_url);
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
