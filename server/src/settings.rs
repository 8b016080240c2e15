//! The platform's configuration, read only from environment variables (the
//! platform is itself twelve-factor). Nothing else in the server reads the
//! environment for configuration.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `PAAS_DATA_DIR`: git repos, the SQLite file, the generated secret key.
    pub data_dir: PathBuf,
    /// `PAAS_LISTEN` (or `PORT`): the API and git receiver.
    pub listen: SocketAddr,
    /// `PAAS_ROUTER_LISTEN`: the app router.
    pub router_listen: SocketAddr,
    /// `PAAS_DOMAIN`: apps answer at `<app>.<domain>`.
    pub domain: String,
    /// `DATABASE_URL`: SQLite in the data dir unless it says otherwise.
    pub database_url: String,
    /// `PAAS_SECRET_KEY`: encrypts config vars at rest. When unset, a key is
    /// generated once and kept in `<data dir>/secret.key`.
    pub secret_key: Option<String>,
    /// `PAAS_STOP_GRACE_SECONDS`: SIGTERM-to-SIGKILL grace for old dynos.
    pub stop_grace_secs: u64,
    /// `PAAS_BOOT_TIMEOUT_SECONDS`: how long a new web dyno may take to answer.
    pub boot_timeout_secs: u64,
    /// The `paas-server` executable that git hooks call back into.
    pub hook_exe: PathBuf,
    /// `PAAS_BUILDPACKS_DIR`: the built-in buildpacks (default: the source
    /// tree's `buildpacks/`).
    pub buildpacks_dir: PathBuf,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn env_num(name: &str, default: u64) -> Result<u64> {
    env_or(name, &default.to_string())
        .parse()
        .with_context(|| format!("{name} must be a whole number of seconds"))
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        let data_dir = PathBuf::from(env_or("PAAS_DATA_DIR", "./data"));
        let listen = match std::env::var("PAAS_LISTEN").ok().filter(|v| !v.is_empty()) {
            Some(v) => v,
            None => match std::env::var("PORT").ok().filter(|v| !v.is_empty()) {
                Some(port) => format!("0.0.0.0:{port}"),
                None => "127.0.0.1:5000".to_owned(),
            },
        };
        let listen = listen
            .parse()
            .with_context(|| format!("PAAS_LISTEN {listen:?} is not an address like 127.0.0.1:5000"))?;
        let router_listen = env_or("PAAS_ROUTER_LISTEN", "0.0.0.0:8080");
        let router_listen = router_listen.parse().with_context(|| {
            format!("PAAS_ROUTER_LISTEN {router_listen:?} is not an address like 0.0.0.0:8080")
        })?;
        let database_url = match std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()) {
            Some(url) => url,
            None => format!("sqlite://{}?mode=rwc", data_dir.join("paas.db").display()),
        };
        let hook_exe = std::env::current_exe().context("cannot find the paas-server executable")?;
        Ok(Self {
            data_dir,
            listen,
            router_listen,
            domain: env_or("PAAS_DOMAIN", "localhost"),
            database_url,
            secret_key: std::env::var("PAAS_SECRET_KEY").ok().filter(|v| !v.is_empty()),
            stop_grace_secs: env_num("PAAS_STOP_GRACE_SECONDS", 30)?,
            boot_timeout_secs: env_num("PAAS_BOOT_TIMEOUT_SECONDS", 60)?,
            hook_exe,
            buildpacks_dir: PathBuf::from(env_or(
                "PAAS_BUILDPACKS_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../buildpacks"),
            )),
        })
    }

    /// Where this machine reaches the API (and git): a wildcard listen
    /// address is reached on 127.0.0.1.
    pub fn api_url(&self) -> String {
        let l = self.listen;
        let host = if l.ip().is_unspecified() { "127.0.0.1".to_owned() } else { l.ip().to_string() };
        format!("http://{host}:{}", l.port())
    }

    pub fn repos_dir(&self) -> PathBuf {
        self.data_dir.join("repos")
    }
}
