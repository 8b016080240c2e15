//! The platform's configuration, declared once: each setting is a clap
//! argument with its environment variable, default and meaning, grouped by
//! the component it configures, and parsed into its type (durations as
//! [`Duration`], sizes in bytes, addresses, paths) before anything starts.
//! `paas-server serve --help` lists them all; the README's settings table
//! is [`markdown_table`]'s output, and a test keeps the two equal.
//!
//! The platform is itself twelve-factor: settings come from the environment
//! (or `serve`'s flags). Nothing else in the server reads the environment:
//! the tidy test fails on any other `std::env::var` in `server/src`.

use crate::runtime::DynoAddress;
use anyhow::{Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Let's Encrypt's ACME directory, the default for automatic certificates.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

// The default stack images. The tag carries the stack's revision: change the
// package lists in stack.rs and bump it, so hosts that have the old images
// build the new ones.
pub const DEFAULT_BASE: &str = "paas/stack-base:trixie";
pub const DEFAULT_BUILD: &str = "paas/stack-build:trixie-2";
pub const DEFAULT_RUN: &str = "paas/stack-run:trixie-2";
/// The Debian release and mirror `stack:build` uses by default.
pub const DEFAULT_SUITE: &str = "trixie";
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// Every setting of the server, by component.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub server: Server,
    #[command(flatten)]
    pub listeners: Listeners,
    #[command(flatten)]
    pub router: Router,
    #[command(flatten)]
    pub builds: Builds,
    #[command(flatten)]
    pub dynos: Dynos,
    #[command(flatten)]
    pub logs: Logs,
    #[command(flatten)]
    pub certs: Certs,
    #[command(flatten)]
    pub stack: Stack,
    #[command(flatten)]
    pub hosts: Hosts,
    #[command(flatten)]
    pub metrics: Metrics,
    #[command(flatten)]
    pub access: Access,
    /// The `paas-server` executable that git hooks call back into.
    #[arg(skip = PathBuf::from("/nonexistent/paas-server"))]
    pub hook_exe: PathBuf,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct Server {
    /// Git repos, the SQLite database, the generated secret key, logs and temporary files.
    #[arg(long, env = "PAAS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The API and git listener [default: `127.0.0.1:5000`, or `0.0.0.0:$PORT` when `PORT` is set].
    #[arg(long, env = "PAAS_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The API's port on all addresses, when PAAS_LISTEN is not set (as platforms that run paas itself set it).
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// Apps answer at `http://APP.PAAS_DOMAIN:PORT/`.
    #[arg(long, env = "PAAS_DOMAIN", default_value = "localhost")]
    pub domain: String,
    /// The database: `postgres://user@host/db`, or SQLite [default: SQLite in the data dir].
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Encrypts config vars, certificate keys and drain URLs (32+ random characters; shorter is refused) [default: generated into PAAS_DATA_DIR/secret.key].
    #[arg(long, env = "PAAS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The Docker engine [default: the local socket].
    #[arg(long, env = "DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,
    /// On SIGTERM, how long open requests (pushes, waiting changes, streams) may take, in seconds.
    #[arg(long = "shutdown-grace-seconds", env = "PAAS_SHUTDOWN_GRACE_SECONDS", default_value = "30", value_parser = seconds, value_name = "SECONDS")]
    pub shutdown_grace: Duration,
    /// PEM certificate chain: with PAAS_TLS_KEY, the API and git listener speaks HTTPS only.
    #[arg(long, env = "PAAS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The key of PAAS_TLS_CERT (PEM).
    #[arg(long, env = "PAAS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How long a dashboard sign-in lasts, in hours.
    #[arg(long = "session-hours", env = "PAAS_SESSION_HOURS", default_value = "12", value_parser = hours, value_name = "HOURS")]
    pub session: Duration,
    /// Comma-separated addresses of proxies in front of the router and API whose `X-Forwarded-*` headers are kept (else set from the peer) [default: none].
    #[arg(long, env = "PAAS_TRUSTED_PROXIES", value_delimiter = ',', value_name = "IPS")]
    pub trusted_proxies: Vec<IpAddr>,
    /// Comma-separated ranges (`10.1.0.0/16`) or addresses that log drains and custom buildpack URLs may reach besides public addresses [default: none].
    #[arg(long = "outbound-allow", env = "PAAS_OUTBOUND_ALLOW", default_value = "", hide_default_value = true, value_parser = outbound, value_name = "RANGES")]
    pub outbound: crate::outbound::OutboundPolicy,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Listeners")]
pub struct Listeners {
    /// Longest a client may take to send a request's headers, or leave a keep-alive connection idle, in seconds (either listener).
    #[arg(long = "header-timeout-seconds", env = "PAAS_HEADER_TIMEOUT_SECONDS", default_value = "15", value_parser = seconds, value_name = "SECONDS")]
    pub header_timeout: Duration,
    /// Largest request head accepted, in bytes (431 beyond).
    #[arg(long, env = "PAAS_MAX_HEADER_BYTES", default_value = "65536", value_name = "BYTES")]
    pub max_header_bytes: usize,
    /// Open connections to the router; more wait.
    #[arg(long, env = "PAAS_ROUTER_MAX_CONNECTIONS", default_value = "8192", value_parser = at_least_one, value_name = "N")]
    pub router_max_connections: usize,
    /// Open connections to the API; more wait.
    #[arg(long, env = "PAAS_API_MAX_CONNECTIONS", default_value = "1024", value_parser = at_least_one, value_name = "N")]
    pub api_max_connections: usize,
    /// WebSocket connections through the router at once; more get a 503.
    #[arg(long, env = "PAAS_ROUTER_MAX_UPGRADED", default_value = "4096", value_parser = at_least_one, value_name = "N")]
    pub router_max_upgraded: usize,
    /// Attached `paas run` sessions at once; more get a 503.
    #[arg(long, env = "PAAS_API_MAX_UPGRADED", default_value = "256", value_parser = at_least_one, value_name = "N")]
    pub api_max_upgraded: usize,
    /// A WebSocket through the router with nothing sent either way this long is closed, in seconds (Heroku's 55 s).
    #[arg(long = "upgrade-idle-seconds", env = "PAAS_UPGRADE_IDLE_SECONDS", default_value = "55", value_parser = seconds_at_least_one, value_name = "SECONDS")]
    pub upgrade_idle: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Router")]
pub struct Router {
    /// The app router: apps by `Host: APP.PAAS_DOMAIN` or their custom domains.
    #[arg(id = "router_listen", long = "router-listen", env = "PAAS_ROUTER_LISTEN", default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The router's HTTPS listener (certificates from `paas certs:add` or ACME, by SNI) [default: none].
    #[arg(long = "router-tls-listen", env = "PAAS_ROUTER_TLS_LISTEN", value_name = "ADDR")]
    pub tls_listen: Option<SocketAddr>,
    /// Longest a dyno may take to answer a request through the router before a 503, in seconds (Heroku's H12).
    #[arg(id = "router_timeout", long = "router-timeout-seconds", env = "PAAS_ROUTER_TIMEOUT_SECONDS", default_value = "30", value_parser = seconds_at_least_one, value_name = "SECONDS")]
    pub timeout: Duration,
    /// Where the router reaches web dynos: `container` (their address on the app's network), `published` (the port Docker publishes on 127.0.0.1; rootless or remote engines), `auto` (`container` for a local rootful engine).
    #[arg(long, env = "PAAS_DYNO_ADDRESS", default_value = "auto", value_parser = dyno_address, value_name = "HOW")]
    pub dyno_address: DynoAddress,
}

/// Where dynos run: the one engine, or a swarm's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// The Docker engine of DOCKER_HOST.
    Engine,
    /// The nodes of the swarm whose manager is DOCKER_HOST's engine.
    Swarm,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Several hosts")]
pub struct Hosts {
    /// Where dynos run: `engine` (the Docker engine of DOCKER_HOST) or `swarm` (the nodes of the swarm DOCKER_HOST's engine manages; see the README's "Several hosts").
    #[arg(long = "runtime", env = "PAAS_RUNTIME", default_value = "engine", value_enum, value_name = "KIND")]
    pub runtime: RuntimeKind,
    /// The registry every swarm node pulls release images from, `HOST:PORT` (the manager's private address and `docker-registry`'s port) [default: none; required with PAAS_RUNTIME=swarm].
    #[arg(long, env = "PAAS_REGISTRY", value_name = "HOST:PORT")]
    pub registry: Option<String>,
    /// The registry's user, when it asks for one (with PAAS_REGISTRY_PASSWORD) [default: none].
    #[arg(long, env = "PAAS_REGISTRY_USER", requires = "registry_password", value_name = "USER")]
    pub registry_user: Option<String>,
    /// The registry user's password.
    #[arg(long, env = "PAAS_REGISTRY_PASSWORD", requires = "registry_user", hide_env_values = true, value_name = "PASSWORD")]
    pub registry_password: Option<String>,
    /// Comma-separated Swarm placement constraints every dyno keeps to, e.g. `node.labels.paas==apps` [default: any node].
    #[arg(long = "node-constraints", env = "PAAS_NODE_CONSTRAINTS", value_delimiter = ',', value_name = "CONSTRAINTS")]
    pub node_constraints: Vec<String>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Builds")]
pub struct Builds {
    /// Builds that run at once across all apps (builds of one app always queue) [default: the number of cores].
    #[arg(long, env = "PAAS_MAX_BUILDS", value_parser = at_least_one, value_name = "N")]
    max_builds: Option<usize>,
    /// The largest push (git's pack) and pushed tree accepted, in MiB.
    #[arg(long = "max-push-mb", env = "PAAS_MAX_PUSH_MB", default_value = "1024", value_parser = mebibytes, value_name = "MIB")]
    pub max_push_bytes: u64,
    /// The most a buildpack build may hand back (`/app` and its dependencies), in MiB.
    #[arg(long = "max-slug-mb", env = "PAAS_MAX_SLUG_MB", default_value = "2048", value_parser = mebibytes, value_name = "MIB")]
    pub max_slug_bytes: u64,
    /// Longest a build may run, in seconds (Heroku's 15 minutes); over it the push fails saying so.
    #[arg(id = "build_timeout", long = "build-timeout-seconds", env = "PAAS_BUILD_TIMEOUT_SECONDS", default_value = "900", value_parser = seconds, value_name = "SECONDS")]
    pub timeout: Duration,
    /// Memory limit of build steps (Dockerfile `RUN`s, buildpack containers).
    #[arg(long = "build-memory", env = "PAAS_BUILD_MEMORY", default_value = "4G", value_parser = size, value_name = "SIZE")]
    pub memory: paas_wire::DynoSize,
    /// Builds are refused while the data directory's disk, or the engine's data root on this host, has less free space than this, in MiB (0: never).
    #[arg(long = "min-free-disk-mb", env = "PAAS_MIN_FREE_DISK_MB", default_value = "2048", value_parser = mebibytes_or_zero, value_name = "MIB")]
    pub min_free_disk: u64,
    /// Releases per app whose images are kept (the running one's too); older releases' images are removed after each deploy.
    #[arg(long = "keep-releases", env = "PAAS_KEEP_RELEASES", default_value = "10", value_parser = at_least_one, value_name = "N")]
    pub keep_releases: usize,
    /// The built-in buildpacks [default: the source tree's `buildpacks/`].
    #[arg(long, env = "PAAS_BUILDPACKS_DIR", value_name = "DIR")]
    buildpacks_dir: Option<PathBuf>,
    /// Server folders (colon-separated) custom buildpacks may be used from, by path or `file://` [default: none].
    #[arg(long, env = "PAAS_BUILDPACK_DIRS", value_delimiter = ':', value_name = "DIRS")]
    pub buildpack_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Dynos")]
pub struct Dynos {
    /// SIGTERM-to-SIGKILL grace for dynos being stopped, in seconds.
    #[arg(long = "stop-grace-seconds", env = "PAAS_STOP_GRACE_SECONDS", default_value = "30", value_parser = seconds, value_name = "SECONDS")]
    pub stop_grace: Duration,
    /// How long a new web dyno may take to answer, in seconds.
    #[arg(long = "boot-timeout-seconds", env = "PAAS_BOOT_TIMEOUT_SECONDS", default_value = "60", value_parser = seconds, value_name = "SECONDS")]
    pub boot_timeout: Duration,
    /// Memory limit of dynos whose type was not resized (Heroku's standard dyno).
    #[arg(long = "dyno-size", env = "PAAS_DYNO_SIZE", default_value = "512M", value_parser = size, value_name = "SIZE")]
    pub size: paas_wire::DynoSize,
    /// CPUs each dyno, one-off dyno, build container and Dockerfile `RUN` step may use (fractions allowed) [default: the number of cores].
    #[arg(long = "dyno-cpus", env = "PAAS_DYNO_CPUS", value_parser = cpus, value_name = "CPUS")]
    cpus: Option<f64>,
    /// Dynos one app may run at once, all types together.
    #[arg(long, env = "PAAS_MAX_DYNOS", default_value = "100", value_parser = clap::value_parser!(u32).range(1..=10_000), value_name = "N")]
    pub max_dynos: u32,
    /// The longest a one-off dyno (`paas run`) may run, in seconds (a day, as on Heroku).
    #[arg(long = "run-max-seconds", env = "PAAS_RUN_MAX_SECONDS", default_value = "86400", value_parser = seconds, value_name = "SECONDS")]
    pub run_max: Duration,
    /// An attached `paas run` session with nothing sent either way this long is ended, in seconds (Heroku's hour).
    #[arg(long = "run-idle-seconds", env = "PAAS_RUN_IDLE_SECONDS", default_value = "3600", value_parser = seconds_at_least_one, value_name = "SECONDS")]
    pub run_idle: Duration,
    /// Twelve-factor observation (`paas 12factor`): `on` (builds scanned, dynos' sockets, boots, stops and disks observed) or `off`.
    #[arg(long = "observe", env = "PAAS_OBSERVE", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set, value_name = "on|off")]
    pub observe: bool,
    /// How often each running dyno's disk is sampled for the twelve-factor report (one engine call per dyno), in seconds.
    #[arg(long = "observe-every-seconds", env = "PAAS_OBSERVE_EVERY_SECONDS", default_value = "60", value_parser = seconds_at_least_one, value_name = "SECONDS")]
    pub observe_every: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Metrics")]
pub struct Metrics {
    /// Metrics (`paas metrics`, memory and CPU in `paas ps`, `/metrics`, R14): `on` or `off` (the router then counts nothing and no dyno is sampled).
    #[arg(long = "metrics", env = "PAAS_METRICS", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set, value_name = "on|off")]
    pub metrics_on: bool,
    /// How often each running dyno's memory and CPU are read from the engine (one call per dyno), in seconds (Heroku's 20).
    #[arg(long = "metrics-every-seconds", env = "PAAS_METRICS_EVERY_SECONDS", default_value = "20", value_parser = seconds_at_least_one, value_name = "SECONDS")]
    pub metrics_every: Duration,
    /// A listener of its own for Prometheus's `/metrics`, without a credential (e.g. 127.0.0.1:9100); unset: only the API's `/metrics`, which needs a platform admin's token.
    #[arg(long = "metrics-listen", env = "PAAS_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logs")]
pub struct Logs {
    /// The server's own log: a tracing filter such as `info` or `paas_server=debug`.
    #[arg(long = "log", env = "PAAS_LOG", default_value = "info", value_name = "FILTER")]
    pub filter: String,
    /// The server's own log format: `text`, or `json` for machine-readable lines.
    #[arg(long = "log-format", env = "PAAS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Lines of log history kept per app.
    #[arg(long = "log-lines", env = "PAAS_LOG_LINES", default_value = "1500", value_parser = at_least_one, value_name = "N")]
    pub lines: usize,
    /// Lines a log drain holds while its receiver is down; older ones are dropped and counted.
    #[arg(long = "drain-buffer", env = "PAAS_DRAIN_BUFFER", default_value = "10000", value_parser = at_least_one, value_name = "N")]
    pub drain_buffer: usize,
    /// PEM file of CAs that `syslog+tls://` and `https://` drains trust besides the host's bundle [default: none].
    #[arg(long = "drain-ca-file", env = "PAAS_DRAIN_CA_FILE", value_name = "FILE")]
    pub drain_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Certificates")]
pub struct Certs {
    /// The ACME server of `certs:auto:enable` [default: Let's Encrypt].
    #[arg(long = "acme-directory", env = "PAAS_ACME_DIRECTORY", default_value = LETS_ENCRYPT, hide_default_value = true, value_name = "URL")]
    pub acme_directory: String,
    /// A PEM root the ACME server's own HTTPS is checked against (a test CA such as pebble) [default: none].
    #[arg(long = "acme-ca-file", env = "PAAS_ACME_CA_FILE", value_name = "FILE")]
    pub acme_ca_file: Option<PathBuf>,
    /// Automatic certificates older than this are renewed, in days (two thirds of Let's Encrypt's 90).
    #[arg(long = "acme-renew-days", env = "PAAS_ACME_RENEW_DAYS", default_value = "60", value_parser = days, value_name = "DAYS")]
    pub acme_renew: Duration,
}

/// People, their sign-ins, and the record of what they did.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Access")]
pub struct Access {
    /// The first platform admin, made at the first start when there are no users; the admin token belongs to them.
    #[arg(long = "admin-email", env = "PAAS_ADMIN_EMAIL", default_value = "admin@localhost", value_name = "EMAIL")]
    pub admin_email: String,
    /// The audit log keeps events this many days.
    #[arg(long = "audit-days", env = "PAAS_AUDIT_DAYS", default_value = "365", value_parser = days, value_name = "DAYS")]
    pub audit_kept: Duration,
    /// Failed sign-ins and token checks allowed per address (and per user) in PAAS_AUTH_WINDOW_SECONDS before a 429.
    #[arg(long = "auth-failures", env = "PAAS_AUTH_FAILURES", default_value = "10", value_parser = at_least_one, value_name = "N")]
    pub failures: usize,
    /// The window failed sign-ins are counted in, in seconds; a 429's Retry-After is what is left of it.
    #[arg(long = "auth-window-seconds", env = "PAAS_AUTH_WINDOW_SECONDS", default_value = "300", value_parser = seconds_at_least_one, value_name = "SECONDS")]
    pub window: Duration,
}

/// The stack's images and what `stack:build` needs to make them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Stack")]
pub struct Stack {
    /// The stack's base image: a registry's instead of the one `stack:build` bootstraps with mmdebstrap.
    #[arg(long = "stack-image", env = "PAAS_STACK_IMAGE", default_value = DEFAULT_BASE, value_name = "IMAGE")]
    pub base: String,
    /// A ready build image instead of `stack:build`'s.
    #[arg(long = "stack-build-image", env = "PAAS_STACK_BUILD_IMAGE", default_value = DEFAULT_BUILD, value_name = "IMAGE")]
    pub build: String,
    /// A ready run image instead of `stack:build`'s.
    #[arg(long = "stack-run-image", env = "PAAS_STACK_RUN_IMAGE", default_value = DEFAULT_RUN, value_name = "IMAGE")]
    pub run: String,
    /// Where `stack:build` gets Debian packages.
    #[arg(long = "debian-mirror", env = "PAAS_DEBIAN_MIRROR", default_value = DEFAULT_MIRROR, value_name = "URL")]
    pub mirror: String,
    /// The Debian release `stack:build` bootstraps.
    #[arg(long = "debian-suite", env = "PAAS_DEBIAN_SUITE", default_value = DEFAULT_SUITE)]
    pub suite: String,
    /// The CA bundle build containers get, when the file exists.
    #[arg(long = "ca-bundle", env = "PAAS_CA_BUNDLE", default_value = "/etc/ssl/certs/ca-certificates.crt", value_name = "FILE")]
    ca_bundle_file: PathBuf,
}

impl Stack {
    /// The CA bundle build containers get, if the host has that file.
    pub fn ca_bundle(&self) -> Option<PathBuf> {
        self.ca_bundle_file.is_file().then(|| self.ca_bundle_file.clone())
    }

    /// No CA bundle for build containers.
    pub fn without_ca_bundle(mut self) -> Self {
        self.ca_bundle_file = PathBuf::new();
        self
    }
}

impl Server {
    /// Where the API and git listen.
    pub fn listen(&self) -> SocketAddr {
        match (self.listen, self.port) {
            (Some(addr), _) => addr,
            (None, Some(port)) => SocketAddr::from(([0, 0, 0, 0], port)),
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 5000)),
        }
    }

    pub fn set_listen(&mut self, addr: SocketAddr) {
        self.listen = Some(addr);
    }

    /// The database's URL: `DATABASE_URL`, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!("sqlite://{}?mode=rwc", self.data_dir.join("paas.db").display()),
        }
    }

    pub fn set_database_url(&mut self, url: String) {
        self.database_url = Some(url);
    }

    /// The API listener's certificate and key, when it speaks HTTPS.
    pub fn api_tls(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.tls_cert.clone()?, self.tls_key.clone()?))
    }
}

impl Builds {
    pub fn max_builds(&self) -> usize {
        self.max_builds.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }


    /// The built-in buildpacks.
    pub fn buildpacks_dir(&self) -> PathBuf {
        self.buildpacks_dir.clone().unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../buildpacks")))
    }
}

impl Dynos {
    /// CPUs each container may use: the setting, or the host's cores.
    pub fn cpus(&self) -> f64 {
        self.cpus.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as f64)
    }
}

/// `paas-server` with nothing but the settings, to parse them alone.
#[derive(Parser)]
#[command(name = "paas-server")]
struct Only {
    #[command(flatten)]
    settings: Settings,
}

impl Settings {
    /// The settings from the environment (and nothing else), as every
    /// subcommand but `serve` takes them.
    pub fn from_env() -> Result<Self> {
        Self::parse(true)?.resolved()
    }

    /// Fills in what the parse cannot know: the executable git hooks call.
    pub fn resolved(mut self) -> Result<Self> {
        self.hook_exe = std::env::current_exe().context("cannot find the paas-server executable")?;
        Ok(self)
    }

    fn parse(env: bool) -> Result<Self> {
        let cmd = if env { empty_variables_unset(Only::command()) } else { Only::command().mut_args(|a| a.env(None)) };
        let matches = cmd.clone().try_get_matches_from(["paas-server"]).map_err(|e| from_variable(&cmd, &e))?;
        Ok(Only::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!("{e}"))?.settings)
    }

    /// Settings for a platform in this process, as the fast tests start it:
    /// every default, the data (and SQLite database) in `data_dir`, both
    /// listeners on free loopback ports, short grace periods, and drains and
    /// buildpack URLs allowed to loopback (where the tests' receivers are).
    /// Reads no environment.
    pub fn local(data_dir: &std::path::Path) -> Self {
        let mut s = Self::parse(false).expect("the defaults parse");
        s.server.data_dir = data_dir.to_path_buf();
        s.server.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        s.router.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        s.server.shutdown_grace = Duration::from_secs(5);
        s.server.outbound = crate::outbound::OutboundPolicy::parse("127.0.0.0/8,::1").expect("valid ranges");
        s.dynos.stop_grace = Duration::from_secs(1);
        s.dynos.boot_timeout = Duration::from_secs(5);
        s.builds.max_builds = Some(2);
        s.stack = s.stack.without_ca_bundle();
        s
    }

    /// The log router's settings: journals under the data dir; drains trust
    /// the host's CA bundle and `PAAS_DRAIN_CA_FILE`.
    /// What the swarm backend is told; PAAS_REGISTRY is required for it.
    pub fn swarm(&self) -> Result<crate::runtime::SwarmSettings> {
        let registry = self.hosts.registry.clone().filter(|r| !r.is_empty()).ok_or_else(|| {
            anyhow::anyhow!(
                "PAAS_RUNTIME=swarm needs PAAS_REGISTRY, the registry every node pulls release images from (e.g. 10.0.0.1:5000 for docker-registry on the manager): see the README's \"Several hosts\""
            )
        })?;
        if registry.contains('/') || !registry.contains(':') {
            anyhow::bail!("PAAS_REGISTRY {registry:?} is not HOST:PORT (e.g. 10.0.0.1:5000): give the registry's address without a scheme or path");
        }
        let auth = match (&self.hosts.registry_user, &self.hosts.registry_password) {
            (Some(username), Some(password)) => Some(crate::runtime::RegistryAuth { username: username.clone(), password: password.clone() }),
            _ => None,
        };
        Ok(crate::runtime::SwarmSettings {
            registry,
            auth,
            constraints: self.hosts.node_constraints.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect(),
            stop_grace: self.dynos.stop_grace,
            // Placing, pulling (a first pull of a large image) and starting.
            start_timeout: self.dynos.boot_timeout.max(Duration::from_secs(120)),
        })
    }

    pub fn log_config(&self) -> crate::logs::LogConfig {
        let mut roots: Vec<PathBuf> = self.stack.ca_bundle().into_iter().collect();
        roots.extend(self.logs.drain_ca_file.iter().cloned());
        crate::logs::LogConfig {
            dir: self.server.data_dir.join("logs"),
            history: self.logs.lines,
            drain_buffer: self.logs.drain_buffer,
            drain_roots: roots,
            outbound: self.server.outbound.clone(),
        }
    }

    /// Where this machine reaches the API (and git): a wildcard listen
    /// address is reached on 127.0.0.1.
    pub fn api_url(&self) -> String {
        let l = self.server.listen();
        let host = if l.ip().is_unspecified() { "127.0.0.1".to_owned() } else { l.ip().to_string() };
        let scheme = if self.server.api_tls().is_some() { "https" } else { "http" };
        format!("{scheme}://{host}:{}", l.port())
    }


    pub fn repos_dir(&self) -> PathBuf {
        self.server.data_dir.join("repos")
    }

    /// The bare git repository of an app.
    pub fn repo_path(&self, app: &str) -> PathBuf {
        self.repos_dir().join(format!("{app}.git"))
    }

    /// Where builds keep their temporary files (the pushed tree, the build
    /// context, `/app` copied out of a build container): under the data
    /// dir, as /tmp may be a small tmpfs.
    pub fn scratch_dir(&self) -> PathBuf {
        self.server.data_dir.join("tmp")
    }
}

/// The settings as the README's table: a row per environment variable,
/// grouped by component, with its default and meaning, as `--help` has
/// them.
pub fn markdown_table() -> String {
    let cmd = Only::command();
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    let mut heading = None;
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        if arg.get_help_heading() != heading {
            heading = arg.get_help_heading();
            out.push_str(&format!("| **{}** | | |\n", heading.unwrap_or("Other")));
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let (meaning, default) = match help.rsplit_once(" [default: ") {
            Some((m, d)) => (m.to_owned(), d.trim_end_matches(']').to_owned()),
            None => {
                let d: Vec<String> = arg.get_default_values().iter().map(|v| format!("`{}`", v.to_string_lossy())).collect();
                (help.clone(), if d.is_empty() || arg.is_hide_default_value_set() { "none".to_owned() } else { d.join(", ") })
            }
        };
        out.push_str(&format!("| `{}` | {} | {} |\n", env.to_string_lossy(), default, meaning.replace('|', "\\|")));
    }
    out
}

/// `cmd` (and its subcommands, `serve` among them) reading an empty
/// variable as unset (`PAAS_TRUSTED_PROXIES=` means none), as shells and
/// compose files write them.
pub fn empty_variables_unset(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    let cmd = cmd.mut_args(|a| {
        let set = a.get_env().and_then(std::env::var_os).is_some_and(|v| !v.is_empty());
        if set {
            a
        } else {
            a.env(None)
        }
    });
    names.iter().fold(cmd, |cmd, name| cmd.mut_subcommand(name, empty_variables_unset))
}

/// A parse error that names the environment variable it came from, not
/// only the flag (a server is configured by its environment).
fn from_variable(cmd: &clap::Command, e: &clap::Error) -> anyhow::Error {
    use clap::error::{ContextKind, ContextValue};
    let text = e.to_string();
    let said: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    let said = said.join(" ").trim_start_matches("error: ").to_owned();
    let args: Vec<String> = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(s)) => s.clone(),
        _ => Vec::new(),
    };
    let variables: Vec<String> = args
        .iter()
        .filter_map(|given| {
            let arg = cmd.get_arguments().find(|a| a.get_long().is_some_and(|l| given.starts_with(&format!("--{l}"))))?;
            Some(arg.get_env()?.to_string_lossy().into_owned())
        })
        .collect();
    if variables.is_empty() {
        anyhow::anyhow!("{said}")
    } else {
        anyhow::anyhow!("{}: {said}", variables.join(", "))
    }
}

/// What `git receive-pack` hands the pre-receive hook through its
/// environment: where the server is, the per-start secret, the app.
#[derive(Debug, Clone)]
pub struct HookEnv {
    pub url: String,
    pub token: String,
    pub app: String,
    /// Names the push to the server, which knows who made it.
    pub push: String,
}

impl HookEnv {
    pub fn from_env() -> Result<Self> {
        let get = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set: this hook runs only under paas-server"));
        Ok(Self { url: get("PAAS_HOOK_URL")?, token: get("PAAS_HOOK_TOKEN")?, app: get("PAAS_HOOK_APP")?, push: get("PAAS_HOOK_PUSH")? })
    }
}

/// Whether the server's own log may use colour: a terminal, and no
/// `NO_COLOR`.
pub fn log_color() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none()
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
            assert!(std::env::var_os("PAAS_REQUIRE_POSTGRES").is_none(), "PAAS_REQUIRE_POSTGRES is set but PAAS_TEST_POSTGRES_URL is not");
            eprintln!("skipped: set PAAS_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres to run this on PostgreSQL (scripts/test does)");
            None
        }
    }
}

// ---- value parsers: each says what it wants

fn whole(v: &str) -> Result<u64, String> {
    v.trim().parse().map_err(|_| format!("{v:?} is not a whole number"))
}

fn seconds(v: &str) -> Result<Duration, String> {
    whole(v).map(Duration::from_secs)
}

fn on_off(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

fn seconds_at_least_one(v: &str) -> Result<Duration, String> {
    whole(v).map(|s| Duration::from_secs(s.max(1)))
}

fn hours(v: &str) -> Result<Duration, String> {
    whole(v).map(|h| Duration::from_secs(h.saturating_mul(3600)))
}

fn days(v: &str) -> Result<Duration, String> {
    whole(v).map(|d| Duration::from_secs(d.saturating_mul(24 * 3600)))
}

fn mebibytes(v: &str) -> Result<u64, String> {
    whole(v).map(|m| m.max(1).saturating_mul(1 << 20))
}

fn mebibytes_or_zero(v: &str) -> Result<u64, String> {
    whole(v).map(|m| m.saturating_mul(1 << 20))
}

fn at_least_one(v: &str) -> Result<usize, String> {
    whole(v).map(|n| (n as usize).max(1))
}

fn cpus(v: &str) -> Result<f64, String> {
    v.trim().parse::<f64>().ok().filter(|c| *c >= 0.01 && c.is_finite()).ok_or_else(|| format!("{v:?} is not a number of CPUs like 1 or 0.5"))
}

fn size(v: &str) -> Result<paas_wire::DynoSize, String> {
    paas_wire::DynoSize::parse(v).map_err(|e| e.to_string())
}

fn outbound(v: &str) -> Result<crate::outbound::OutboundPolicy, String> {
    crate::outbound::OutboundPolicy::parse(v)
}

fn dyno_address(v: &str) -> Result<DynoAddress, String> {
    match v {
        "auto" => Ok(DynoAddress::Auto),
        "container" => Ok(DynoAddress::Container),
        "published" => Ok(DynoAddress::Published),
        _ => Err(format!("{v:?} is not one of auto, container, published")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_durations_are_durations() {
        let s = Settings::local(std::path::Path::new("/tmp/x"));
        assert_eq!(s.router.timeout, Duration::from_secs(30));
        assert_eq!(s.server.session, Duration::from_secs(12 * 3600));
        assert_eq!(s.builds.max_push_bytes, 1024 << 20);
        assert_eq!(s.certs.acme_renew, Duration::from_secs(60 * 24 * 3600));
        assert!(s.server.trusted_proxies.is_empty() && s.builds.buildpack_dirs.is_empty());
        assert_eq!(s.server.database_url(), "sqlite:///tmp/x/paas.db?mode=rwc");
    }

    #[test]
    fn an_empty_variable_is_unset_in_subcommands_too() {
        // Only this test sets it; the others parse without the environment.
        std::env::set_var("PAAS_TRUSTED_PROXIES", "");
        let cmd = empty_variables_unset(clap::Command::new("paas-server").subcommand(Only::command().name("serve")));
        let matches = cmd.try_get_matches_from(["paas-server", "serve"]).expect("an empty PAAS_TRUSTED_PROXIES is no value");
        let serve = Only::from_arg_matches(matches.subcommand_matches("serve").unwrap()).unwrap();
        assert!(serve.settings.server.trusted_proxies.is_empty());
    }

    #[test]
    fn bad_values_say_what_they_want() {
        let mut cmd = Only::command().mut_args(|a| a.env(None));
        let e = cmd.try_get_matches_from_mut(["paas-server", "--stop-grace-seconds", "soon"]).unwrap_err().to_string();
        assert!(e.contains("is not a whole number"), "{e}");
        let e = cmd.try_get_matches_from_mut(["paas-server", "--dyno-address", "nearby"]).unwrap_err().to_string();
        assert!(e.contains("auto, container, published"), "{e}");
        let e = cmd.try_get_matches_from_mut(["paas-server", "--tls-cert", "/c.pem"]).unwrap_err().to_string();
        assert!(e.contains("--tls-key"), "{e}");
    }

    #[test]
    fn the_readme_table_is_the_settings() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let start = readme.find("<!-- settings:begin").expect("README.md has the settings:begin marker");
        let body = &readme[start..];
        let table = &body[body.find('\n').unwrap() + 1..body.find("<!-- settings:end -->").expect("and settings:end")];
        assert!(
            table == markdown_table(),
            "README.md's settings table is not the settings: paste `paas-server settings:markdown` between its markers.\nexpected:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn every_setting_has_an_env_var_and_a_meaning() {
        for arg in Only::command().get_arguments() {
            if arg.get_id() == "help" {
                continue;
            }
            assert!(arg.get_env().is_some(), "--{} has no environment variable", arg.get_id());
            assert!(arg.get_help().is_some(), "--{} has no meaning", arg.get_id());
        }
    }
}
