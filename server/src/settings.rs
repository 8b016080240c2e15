//! The platform's configuration, read only from environment variables (the
//! platform is itself twelve-factor). Nothing else in the server reads the
//! environment: the tidy test (`tests/tidy.rs`) fails on any other
//! `std::env::var` in `server/src`.

use anyhow::{bail, Context, Result};
use crate::runtime::DynoAddress;
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
    /// `PAAS_SHUTDOWN_GRACE_SECONDS`: on SIGTERM, how long open requests
    /// (pushes, waiting changes, streams) may take to finish.
    pub shutdown_grace_secs: u64,
    /// The `paas-server` executable that git hooks call back into.
    pub hook_exe: PathBuf,
    /// `PAAS_BUILDPACKS_DIR`: the built-in buildpacks (default: the source
    /// tree's `buildpacks/`).
    pub buildpacks_dir: PathBuf,
    /// The stack images and the CA bundle (`PAAS_STACK_*`, `PAAS_CA_BUNDLE`,
    /// `PAAS_DEBIAN_*`).
    pub stack: Stack,
    /// `PAAS_MAX_BUILDS`: builds that run at once across all apps (default:
    /// the number of cores). Builds of one app always queue.
    pub max_builds: usize,
    /// `PAAS_MAX_PUSH_MB`: the largest pushed tree accepted, in MiB.
    pub max_push_bytes: u64,
    /// `PAAS_MAX_SLUG_MB`: the most a buildpack build may hand back (the
    /// built `/app` and its dependencies), in MiB (default 2048).
    pub max_slug_bytes: u64,
    /// `PAAS_DYNO_CPUS`: CPUs each dyno, one-off dyno and build may use
    /// (default: the host's cores; fractions allowed).
    pub dyno_cpus: f64,
    /// `PAAS_MAX_DYNOS`: dynos one app may run at once, all types together
    /// (default 100).
    pub max_dynos: u32,
    /// `DOCKER_HOST`: the Docker engine (default: the local socket).
    pub docker_host: Option<String>,
    /// `PAAS_DYNO_ADDRESS`: where the router and health checks reach web
    /// dynos (default `auto`).
    pub dyno_address: DynoAddress,
    /// `PAAS_TRUSTED_PROXIES`: comma-separated addresses of proxies in front
    /// of the router whose `X-Forwarded-For` is kept; none by default.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `PAAS_BUILD_TIMEOUT_SECONDS`: longest a build may run (default 900,
    /// as Heroku's slug compile).
    pub build_timeout_secs: u64,
    /// `PAAS_BUILD_MEMORY`: memory limit of build containers (default 4G).
    pub build_memory: paas_wire::DynoSize,
    /// `PAAS_BUILDPACK_DIRS`: server folders (colon-separated) that custom
    /// buildpacks may be taken from by path or `file://` URL; none by default.
    pub buildpack_dirs: Vec<PathBuf>,
    /// `PAAS_DYNO_SIZE`: the memory limit of dynos whose type has not been
    /// resized (default 512M, as Heroku's standard dyno).
    pub dyno_size: paas_wire::DynoSize,
    /// `PAAS_LOG_LINES`: lines of log history kept per app (default 1500).
    pub log_lines: usize,
    /// `PAAS_SESSION_HOURS`: how long a dashboard sign-in lasts (default 12).
    pub session_hours: u64,
    /// `PAAS_RUN_MAX_SECONDS`: the longest a one-off dyno (`paas run`) may
    /// run before it is stopped (default 86400, a day, as on Heroku).
    pub run_max_secs: u64,
    /// `PAAS_RUN_IDLE_SECONDS`: an attached one-off dyno whose session
    /// carried nothing either way this long is ended (default 3600, as
    /// Heroku's hour of inactivity).
    pub run_idle_secs: u64,
    /// `PAAS_DRAIN_BUFFER`: lines a log drain holds while its receiver is
    /// down (default 10000); older ones are dropped and counted.
    pub drain_buffer: usize,
    /// `PAAS_OUTBOUND_ALLOW`: comma-separated ranges (or addresses) that log
    /// drains and custom buildpack URLs may reach besides public addresses;
    /// none by default, so loopback, link-local and private addresses are
    /// refused.
    pub outbound: crate::outbound::OutboundPolicy,
    /// `PAAS_DRAIN_CA_FILE`: a PEM file of CAs that `syslog+tls://` and
    /// `https://` drains trust besides the host's bundle.
    pub drain_ca_file: Option<PathBuf>,
    /// `PAAS_ROUTER_TIMEOUT_SECONDS`: longest a dyno may take to answer a
    /// request through the router before it gets a 503 (default 30, as
    /// Heroku's H12).
    pub router_timeout_secs: u64,
    /// `PAAS_HEADER_TIMEOUT_SECONDS`: longest a client may take to send a
    /// request's headers, and may leave a keep-alive connection idle, on
    /// either listener (default 15).
    pub header_timeout_secs: u64,
    /// `PAAS_MAX_HEADER_BYTES`: largest request head accepted (default 65536).
    pub max_header_bytes: usize,
    /// `PAAS_ROUTER_MAX_CONNECTIONS` (default 8192) and
    /// `PAAS_API_MAX_CONNECTIONS` (default 1024): open connections per
    /// listener; more wait.
    pub router_max_connections: usize,
    pub api_max_connections: usize,
    /// `PAAS_ROUTER_MAX_UPGRADED` (default 4096) and `PAAS_API_MAX_UPGRADED`
    /// (default 256): upgraded connections (WebSocket through the router;
    /// `paas run` sessions on the API) open at once, each counted apart from
    /// the listener's connections; more are refused with a 503.
    pub router_max_upgraded: usize,
    pub api_max_upgraded: usize,
    /// `PAAS_UPGRADE_IDLE_SECONDS`: an upgraded connection through the router
    /// on which neither side sent anything this long is closed (default 55,
    /// as Heroku's router).
    pub upgrade_idle_secs: u64,
    /// `PAAS_TLS_CERT` and `PAAS_TLS_KEY`: PEM files of a certificate chain
    /// and its key; with both, the API (and git) listener speaks HTTPS only,
    /// so a remote CLI never sends its token in clear text.
    pub api_tls: Option<(PathBuf, PathBuf)>,
    /// `PAAS_ROUTER_TLS_LISTEN`: the router's HTTPS listener (e.g.
    /// `0.0.0.0:8443`), serving the certificates added with `certs:add` by
    /// SNI; none by default.
    pub router_tls_listen: Option<SocketAddr>,
    /// `PAAS_ACME_DIRECTORY`: the ACME server of `certs:auto:enable`
    /// (default Let's Encrypt's).
    pub acme_directory: String,
    /// `PAAS_ACME_CA_FILE`: a PEM root the ACME server's own HTTPS is
    /// checked against, for a test CA such as pebble; none by default.
    pub acme_ca_file: Option<PathBuf>,
    /// `PAAS_ACME_RENEW_DAYS`: automatic certificates older than this are
    /// renewed (default 60, two thirds of Let's Encrypt's 90 days).
    pub acme_renew_days: u64,
}

// The default stack images. The tag carries the stack's revision: change the
// package lists in stack.rs and bump it, so hosts that have the old images
// build the new ones.
/// Let's Encrypt's ACME directory, the default for automatic certificates.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

pub const DEFAULT_BASE: &str = "paas/stack-base:trixie";
pub const DEFAULT_BUILD: &str = "paas/stack-build:trixie-2";
pub const DEFAULT_RUN: &str = "paas/stack-run:trixie-2";

/// The stack's images and what `stack:build` needs to make them.
#[derive(Debug, Clone)]
pub struct Stack {
    pub base: String,
    pub build: String,
    pub run: String,
    pub mirror: String,
    pub suite: String,
    /// `PAAS_CA_BUNDLE`: the host file mounted into build containers, when
    /// it exists.
    pub ca_bundle: Option<PathBuf>,
}

impl Stack {
    pub fn from_env() -> Self {
        let ca = PathBuf::from(env_or("PAAS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"));
        Self {
            base: env_or("PAAS_STACK_IMAGE", DEFAULT_BASE),
            build: env_or("PAAS_STACK_BUILD_IMAGE", DEFAULT_BUILD),
            run: env_or("PAAS_STACK_RUN_IMAGE", DEFAULT_RUN),
            mirror: env_or("PAAS_DEBIAN_MIRROR", "http://deb.debian.org/debian"),
            suite: env_or("PAAS_DEBIAN_SUITE", "trixie"),
            ca_bundle: ca.is_file().then_some(ca),
        }
    }
}

/// How the server logs: `PAAS_LOG` (a tracing filter, default `info`),
/// `PAAS_LOG_FORMAT=json`, and colour only on a terminal without `NO_COLOR`.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
    pub json: bool,
    pub no_color: bool,
}

impl LogSettings {
    pub fn from_env() -> Self {
        Self {
            filter: env_or("PAAS_LOG", "info"),
            json: std::env::var("PAAS_LOG_FORMAT").is_ok_and(|f| f == "json"),
            no_color: std::env::var_os("NO_COLOR").is_some(),
        }
    }
}

/// The PostgreSQL server the tests may use: `PAAS_TEST_POSTGRES_URL` (an
/// admin URL such as `postgres://postgres@127.0.0.1:55432/postgres`), or None
/// with a message saying to set it. With `PAAS_REQUIRE_POSTGRES` set, as
/// scripts/test sets it, a missing URL panics instead: there the tests must
/// run, not skip.
pub fn test_postgres_url() -> Option<String> {
    match std::env::var("PAAS_TEST_POSTGRES_URL").ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var_os("PAAS_REQUIRE_POSTGRES").is_none(),
                "PAAS_REQUIRE_POSTGRES is set but PAAS_TEST_POSTGRES_URL is not"
            );
            eprintln!(
                "skipped: set PAAS_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run this on PostgreSQL (scripts/test does)"
            );
            None
        }
    }
}

/// What `git receive-pack` hands the pre-receive hook through its
/// environment: where the server is, the per-start secret, the app.
#[derive(Debug, Clone)]
pub struct HookEnv {
    pub url: String,
    pub token: String,
    pub app: String,
}

impl HookEnv {
    pub fn from_env() -> Result<Self> {
        let get = |name: &str| {
            std::env::var(name).with_context(|| format!("{name} is not set: this hook runs only under paas-server"))
        };
        Ok(Self { url: get("PAAS_HOOK_URL")?, token: get("PAAS_HOOK_TOKEN")?, app: get("PAAS_HOOK_APP")? })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

fn env_size(name: &str, default: &str) -> Result<paas_wire::DynoSize> {
    let size = env_or(name, default);
    paas_wire::DynoSize::parse(&size).with_context(|| format!("{name} {size:?}"))
}

/// The host's cores, the default CPU limit of a dyno.
fn host_cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

fn env_num(name: &str, default: u64) -> Result<u64> {
    env_or(name, &default.to_string())
        .parse()
        .with_context(|| format!("{name} must be a whole number"))
}

fn dyno_address(v: &str) -> Result<DynoAddress> {
    match v {
        "auto" => Ok(DynoAddress::Auto),
        "container" => Ok(DynoAddress::Container),
        "published" => Ok(DynoAddress::Published),
        _ => bail!("PAAS_DYNO_ADDRESS {v:?} is not one of auto, container, published"),
    }
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
            run_max_secs: env_num("PAAS_RUN_MAX_SECONDS", 86400)?,
            run_idle_secs: env_num("PAAS_RUN_IDLE_SECONDS", 3600)?.max(1),
            session_hours: env_num("PAAS_SESSION_HOURS", 12)?,
            boot_timeout_secs: env_num("PAAS_BOOT_TIMEOUT_SECONDS", 60)?,
            shutdown_grace_secs: env_num("PAAS_SHUTDOWN_GRACE_SECONDS", 30)?,
            hook_exe,
            buildpacks_dir: PathBuf::from(env_or(
                "PAAS_BUILDPACKS_DIR",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../buildpacks"),
            )),
            stack: Stack::from_env(),
            max_builds: match std::env::var("PAAS_MAX_BUILDS").ok().filter(|v| !v.is_empty()) {
                Some(v) => v.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("PAAS_MAX_BUILDS {v:?} is not a positive whole number")
                })?,
                None => std::thread::available_parallelism().map_or(2, |n| n.get()),
            },
            max_push_bytes: env_num("PAAS_MAX_PUSH_MB", 1024)? << 20,
            max_slug_bytes: env_num("PAAS_MAX_SLUG_MB", 2048)?.max(1) << 20,
            dyno_cpus: match std::env::var("PAAS_DYNO_CPUS").ok().filter(|v| !v.is_empty()) {
                Some(v) => v.parse::<f64>().ok().filter(|c| *c >= 0.01 && c.is_finite()).with_context(|| {
                    format!("PAAS_DYNO_CPUS {v:?} is not a number of CPUs like 1 or 0.5")
                })?,
                None => host_cpus(),
            },
            max_dynos: env_num("PAAS_MAX_DYNOS", 100)?.clamp(1, 10_000) as u32,
            docker_host: std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty()),
            dyno_address: dyno_address(&env_or("PAAS_DYNO_ADDRESS", "auto"))?,
            trusted_proxies: std::env::var("PAAS_TRUSTED_PROXIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse().with_context(|| format!("PAAS_TRUSTED_PROXIES: {a:?} is not an IP address")))
                .collect::<Result<_>>()?,
            build_timeout_secs: env_num("PAAS_BUILD_TIMEOUT_SECONDS", 900)?,
            build_memory: env_size("PAAS_BUILD_MEMORY", "4G")?,
            buildpack_dirs: std::env::var("PAAS_BUILDPACK_DIRS")
                .unwrap_or_default()
                .split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect(),
            dyno_size: env_size("PAAS_DYNO_SIZE", "512M")?,
            log_lines: env_num("PAAS_LOG_LINES", crate::logs::DEFAULT_HISTORY as u64)?.max(1) as usize,
            drain_buffer: env_num("PAAS_DRAIN_BUFFER", 10_000)?.max(1) as usize,
            outbound: crate::outbound::OutboundPolicy::parse(&std::env::var("PAAS_OUTBOUND_ALLOW").unwrap_or_default())
                .map_err(anyhow::Error::msg)?,
            drain_ca_file: std::env::var("PAAS_DRAIN_CA_FILE").ok().filter(|v| !v.is_empty()).map(PathBuf::from),
            router_timeout_secs: env_num("PAAS_ROUTER_TIMEOUT_SECONDS", 30)?.max(1),
            header_timeout_secs: env_num("PAAS_HEADER_TIMEOUT_SECONDS", 15)?.max(1),
            max_header_bytes: env_num("PAAS_MAX_HEADER_BYTES", 65536)? as usize,
            router_max_connections: env_num("PAAS_ROUTER_MAX_CONNECTIONS", 8192)?.max(1) as usize,
            api_max_connections: env_num("PAAS_API_MAX_CONNECTIONS", 1024)?.max(1) as usize,
            router_max_upgraded: env_num("PAAS_ROUTER_MAX_UPGRADED", 4096)?.max(1) as usize,
            api_max_upgraded: env_num("PAAS_API_MAX_UPGRADED", 256)?.max(1) as usize,
            upgrade_idle_secs: env_num("PAAS_UPGRADE_IDLE_SECONDS", 55)?.max(1),
            api_tls: match (
                std::env::var("PAAS_TLS_CERT").ok().filter(|v| !v.is_empty()),
                std::env::var("PAAS_TLS_KEY").ok().filter(|v| !v.is_empty()),
            ) {
                (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
                (None, None) => None,
                _ => bail!("PAAS_TLS_CERT and PAAS_TLS_KEY go together: set both (the certificate chain and its key, PEM) or neither"),
            },
            router_tls_listen: match std::env::var("PAAS_ROUTER_TLS_LISTEN").ok().filter(|v| !v.is_empty()) {
                Some(v) => Some(v.parse().with_context(|| format!("PAAS_ROUTER_TLS_LISTEN {v:?} is not an address like 0.0.0.0:8443"))?),
                None => None,
            },
            acme_directory: env_or("PAAS_ACME_DIRECTORY", LETS_ENCRYPT),
            acme_ca_file: std::env::var("PAAS_ACME_CA_FILE").ok().filter(|v| !v.is_empty()).map(PathBuf::from),
            acme_renew_days: env_num("PAAS_ACME_RENEW_DAYS", 60)?,
        })
    }

    /// Settings for a platform in this process, as the fast tests start it:
    /// the data (and SQLite database) in `data_dir`, both listeners on free
    /// loopback ports, and defaults for the rest. Reads no environment.
    pub fn local(data_dir: &std::path::Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            router_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            domain: "localhost".into(),
            database_url: format!("sqlite://{}?mode=rwc", data_dir.join("paas.db").display()),
            secret_key: None,
            stop_grace_secs: 1,
            run_max_secs: 86400,
            run_idle_secs: 3600,
            session_hours: 12,
            boot_timeout_secs: 5,
            shutdown_grace_secs: 5,
            hook_exe: PathBuf::from("/nonexistent/paas-server"),
            buildpacks_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../buildpacks")),
            stack: Stack {
                base: DEFAULT_BASE.into(),
                build: DEFAULT_BUILD.into(),
                run: DEFAULT_RUN.into(),
                mirror: "http://deb.debian.org/debian".into(),
                suite: "trixie".into(),
                ca_bundle: None,
            },
            max_builds: 2,
            max_push_bytes: 1 << 30,
            max_slug_bytes: 2048 << 20,
            dyno_cpus: host_cpus(),
            max_dynos: 100,
            docker_host: None,
            dyno_address: DynoAddress::Auto,
            trusted_proxies: Vec::new(),
            build_timeout_secs: 900,
            build_memory: paas_wire::DynoSize::parse("4G").expect("a valid size"),
            buildpack_dirs: Vec::new(),
            dyno_size: paas_wire::DynoSize::parse("512M").expect("a valid size"),
            log_lines: crate::logs::DEFAULT_HISTORY,
            drain_buffer: 10_000,
            // The fast tests' drain receivers and buildpack servers are on
            // loopback.
            outbound: crate::outbound::OutboundPolicy::parse("127.0.0.0/8,::1").expect("valid ranges"),
            drain_ca_file: None,
            router_timeout_secs: 30,
            header_timeout_secs: 15,
            max_header_bytes: 65536,
            router_max_connections: 8192,
            api_max_connections: 1024,
            router_max_upgraded: 4096,
            api_max_upgraded: 256,
            upgrade_idle_secs: 55,
            api_tls: None,
            router_tls_listen: None,
            acme_directory: LETS_ENCRYPT.into(),
            acme_ca_file: None,
            acme_renew_days: 60,
        }
    }

    /// The log router's settings: journals under the data dir; drains trust
    /// the host's CA bundle and `PAAS_DRAIN_CA_FILE`.
    pub fn log_config(&self) -> crate::logs::LogConfig {
        let mut roots: Vec<PathBuf> = self.stack.ca_bundle.iter().cloned().collect();
        roots.extend(self.drain_ca_file.iter().cloned());
        crate::logs::LogConfig {
            dir: self.data_dir.join("logs"),
            history: self.log_lines,
            drain_buffer: self.drain_buffer,
            drain_roots: roots,
            outbound: self.outbound.clone(),
        }
    }

    /// Where this machine reaches the API (and git): a wildcard listen
    /// address is reached on 127.0.0.1.
    pub fn api_url(&self) -> String {
        let l = self.listen;
        let host = if l.ip().is_unspecified() { "127.0.0.1".to_owned() } else { l.ip().to_string() };
        let scheme = if self.api_tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{host}:{}", l.port())
    }

    pub fn repos_dir(&self) -> PathBuf {
        self.data_dir.join("repos")
    }

    /// The bare git repository of an app.
    pub fn repo_path(&self, app: &str) -> PathBuf {
        self.repos_dir().join(format!("{app}.git"))
    }

    /// Where builds keep their temporary files (the pushed tree, the build
    /// context, `/app` copied out of a build container): under the data
    /// dir, as /tmp may be a small tmpfs.
    pub fn scratch_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }
}
