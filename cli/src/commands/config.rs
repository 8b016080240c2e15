//! Config vars: `config`, `config:get`, `config:set`, `config:unset`.

use super::{change, Ctx, WaitArgs};
use crate::client::app_path;
use crate::exit::bail_usage;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use paas_wire::{ConfigKey, ConfigPatch};

#[derive(Subcommand)]
pub enum Cmd {
    /// Show config vars.
    Config {
        /// Print as KEY=value lines, for a shell or a .env file.
        #[arg(long)]
        shell: bool,
    },
    /// Show one config var.
    #[command(name = "config:get")]
    ConfigGet { key: String },
    /// Set config vars (KEY=value ...); makes a new release and restarts dynos.
    #[command(name = "config:set")]
    ConfigSet {
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Unset config vars; makes a new release and restarts dynos.
    #[command(name = "config:unset")]
    ConfigUnset {
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// The config as the API shows it: a viewer gets each value as null.
type Shown = std::collections::BTreeMap<String, Option<String>>;

pub fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<i32> {
    let name = ctx.app()?;
    let path = app_path(&name, &["config-vars"]);
    match cmd {
        Cmd::Config { shell } => {
            let vars: Shown = ctx.client()?.get(&path)?;
            if ctx.json {
                output::json(&vars);
            } else if shell {
                if vars.values().any(Option::is_none) {
                    return Err(crate::exit::refused(format!("a viewer of {name} sees config names, not values: ask one of its admins for a developer's role")));
                }
                for (k, v) in &vars {
                    println!("{k}={}", shell_quote(v.as_deref().unwrap_or_default()));
                }
            } else {
                output::heading(&format!("{name} Config Vars"));
                output::pairs(&vars.into_iter().map(|(k, v)| (k, v.unwrap_or_else(|| "(hidden from viewers)".into()))).collect::<Vec<_>>());
            }
            Ok(0)
        }
        Cmd::ConfigGet { key } => {
            let vars: Shown = ctx.client()?.get(&path)?;
            match vars.get(&key) {
                Some(Some(v)) if ctx.json => output::json(v),
                Some(Some(v)) => println!("{v}"),
                Some(None) => return Err(crate::exit::refused(format!("{key} is set on {name}, but a viewer sees names, not values"))),
                None => return Err(crate::exit::refused(format!("{key} is not set on {name}"))),
            }
            Ok(0)
        }
        Cmd::ConfigSet { pairs, wait } => {
            let mut patch = ConfigPatch::new();
            for pair in &pairs {
                let Some((k, v)) = pair.split_once('=') else {
                    bail_usage!("{pair:?} is not KEY=value: write it as `paas config:set {pair}=VALUE`");
                };
                ConfigKey::parse(k)?;
                patch.insert(k.to_owned(), Some(v.to_owned()));
            }
            let keys: Vec<&str> = patch.keys().map(String::as_str).collect();
            let doing = format!("Setting {} and restarting {name}", keys.join(", "));
            let json = ctx.json;
            let client = ctx.client()?;
            let shown: Vec<(String, String)> = patch.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
            change(json, &doing, || client.patch(&path, &wait.query(), &patch), |_| output::pairs(&shown))
        }
        Cmd::ConfigUnset { keys, wait } => {
            let patch: ConfigPatch = keys.iter().map(|k| (k.clone(), None)).collect();
            let doing = format!("Unsetting {} and restarting {name}", keys.join(", "));
            let json = ctx.json;
            let client = ctx.client()?;
            change(json, &doing, || client.patch(&path, &wait.query(), &patch), |_| {})
        }
    }
}

fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_quoting() {
        assert_eq!(super::shell_quote("it's"), "'it'\\''s'");
    }
}
