//! API tokens: `tokens`, `tokens:create`, `tokens:revoke`.

use super::Ctx;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{Token, TokenCreate, TokenCreated};

#[derive(Subcommand)]
pub enum Cmd {
    /// List API tokens: description, created, last used, expiry, state (never their values).
    Tokens,
    /// Make an API token (shown once): for CI, a colleague's machine, a script.
    #[command(name = "tokens:create")]
    TokensCreate {
        /// What it is for, as `paas tokens` lists it.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// How long it works: 90s, 15m, 12h, 30d (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// `deploy`, with -a APP: a deploy token, for CI, that may only push
        /// to that app and read its releases and builds.
        #[arg(long, value_name = "ROLE")]
        role: Option<String>,
    },
    /// Revoke a token by its id: every request with it is refused from now on.
    #[command(name = "tokens:revoke")]
    TokensRevoke { id: String },
}

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let json = ctx.json;
    match cmd {
        Cmd::Tokens => {
            let tokens: Vec<Token> = ctx.client()?.get(&["tokens"])?;
            if json {
                output::json(&tokens);
            } else {
                output::heading("API tokens");
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.description.clone(),
                            match &t.app {
                                Some(app) => format!("deploy {app}"),
                                None => "user".into(),
                            },
                            t.owner.clone(),
                            t.state.clone(),
                            t.created_at.clone(),
                            t.last_used_at.clone().unwrap_or_else(|| "never".into()),
                            t.expires_at.clone().unwrap_or_else(|| "never".into()),
                        ]
                    })
                    .collect();
                output::table(&["Id", "Description", "Kind", "Owner", "State", "Created", "Last used", "Expires"], &rows);
            }
        }
        Cmd::TokensCreate { description, expires, role } => {
            let app = match (&role, ctx.app_flag()) {
                (Some(_), _) => Some(ctx.app()?),
                (None, Some(app)) => crate::exit::bail_usage!("a token for one app is a deploy token: add --role deploy (`paas tokens:create -a {app} --role deploy`)"),
                (None, None) => None,
            };
            let body = TokenCreate { description, expires_in: expires, app, role };
            let made: TokenCreated = ctx.client()?.post(&["tokens"], &[], &body)?;
            if json {
                output::json(&made);
            } else {
                let kind = made.token.app.as_deref().map(|a| format!(", a deploy token of {a}")).unwrap_or_default();
                println!("Created token {} ({}{kind}){}", made.token.id, made.token.description, made.token.expires_at.as_deref().map(|e| format!(", expires {e}")).unwrap_or_default());
                println!("{}", made.value);
                eprintln!("This is the only time it is shown: keep it now. `paas tokens:revoke {}` revokes it.", made.token.id);
            }
        }
        Cmd::TokensRevoke { id } => {
            let id = super::id_segment(&id)?;
            let t: Token = ctx.client()?.delete(&["tokens", id])?;
            if json {
                output::json(&t);
            } else {
                println!("Revoked {} ({}): requests with it are refused from now on", t.id, t.description);
            }
        }
    }
    Ok(0)
}
