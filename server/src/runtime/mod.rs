//! The runtime: the seam between the scheduler and whatever runs containers.
//! `docker` is the local backend and the only module that talks to bollard;
//! a second backend (Docker Swarm, for more than one host) fits beside it.
//!
//! The runtime knows nothing of releases' storage or of HTTP: it starts,
//! lists and stops labelled containers and builds images.

mod docker;
/// In memory, for tests only: compiled for the crate's unit tests and, by
/// the `fake` feature the integration tests turn on (a dev-dependency of
/// the crate on itself), never into a release build.
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod sockets;

pub use docker::{isolation, swarm, Constraint, DockerRuntime, SwarmRuntime, SwarmSettings};
#[cfg(any(test, feature = "fake"))]
pub use fake::FakeRuntime;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Port every web dyno listens on inside its container (`$PORT`).
pub const DYNO_PORT: u16 = 5000;

/// Container labels that carry a dyno's identity; the scheduler reads actual
/// state from them alone, so a restarted server adopts what runs.
pub mod labels {
    /// The platform installation that owns the container.
    pub const INSTANCE: &str = "paas.instance";
    pub const APP: &str = "paas.app";
    pub const RELEASE: &str = "paas.release";
    pub const VERSION: &str = "paas.version";
    pub const PROCESS: &str = "paas.process";
    pub const INDEX: &str = "paas.index";
    /// What the container is: `dyno`, `task` (build, release phase, stack
    /// step) or `layer`. Set explicitly on every container, so an image's own
    /// labels can never make a task pass for a dyno.
    pub const KIND: &str = "paas.kind";
    /// The size (memory limit) a dyno runs with, e.g. `512M`.
    pub const SIZE: &str = "paas.size";
    /// A one-off dyno's command line, as the user gave it.
    pub const COMMAND: &str = "paas.command";
    /// An attached one-off dyno: the server run (boot) holding its client.
    /// Empty for a detached one.
    pub const SESSION: &str = "paas.session";
    /// When a one-off dyno is stopped at the latest (Unix seconds).
    pub const EXPIRES: &str = "paas.expires";
}

/// The labels every dyno carries (a container on one engine, a service
/// on a swarm): what it is and whose, so a restarted server knows it from
/// the engine alone.
pub fn dyno_labels(spec: &DynoSpec, instance: &str, kind: &str) -> std::collections::HashMap<String, String> {
    [
        (labels::INSTANCE, instance.to_owned()),
        (labels::KIND, kind.to_owned()),
        (labels::SIZE, spec.memory.map_or_else(String::new, |m| m.to_string())),
        (labels::APP, spec.app.clone()),
        (labels::RELEASE, spec.release_id.clone()),
        (labels::VERSION, spec.release_version.to_string()),
        (labels::PROCESS, spec.process_type.clone()),
        (labels::INDEX, spec.index.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// What a dyno's labels ([`dyno_labels`]) say of it.
pub struct DynoIdentity {
    pub app: String,
    pub release_id: String,
    pub release_version: i64,
    pub process_type: String,
    pub index: u32,
    pub memory: Option<i64>,
}

/// A dyno's id as its runtime knows it: a container's on one engine, a
/// service's on a swarm. Opaque outside the runtime: only the backend that
/// made it reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DynoId(String);

impl DynoId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its first 12 characters, as `docker ps` and `paas ps` show ids.
    pub fn short(&self) -> String {
        self.0.chars().take(12).collect()
    }
}

impl std::fmt::Display for DynoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for DynoId {
    fn from(id: &str) -> Self {
        DynoId(id.to_owned())
    }
}

impl From<String> for DynoId {
    fn from(id: String) -> Self {
        DynoId(id)
    }
}

impl std::borrow::Borrow<str> for DynoId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Where the router reaches a web dyno: the container's address on its
/// bridge, a port published on this host, or a swarm node's address and
/// the dyno's host-mode port. Made only by the runtime that runs the dyno;
/// the router dials it and the scheduler compares them, nothing else looks
/// inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint(SocketAddr);

impl Endpoint {
    pub fn new(addr: SocketAddr) -> Self {
        Self(addr)
    }

    /// The address to connect to.
    pub fn socket_addr(self) -> SocketAddr {
        self.0
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a backend observes of a dyno besides its labels.
pub struct DynoObserved {
    pub id: DynoId,
    pub running: bool,
    pub state: String,
    pub command: String,
    pub addr: Option<Endpoint>,
    pub created: i64,
    pub ip: Option<std::net::IpAddr>,
    /// The host name of the node it runs on (a swarm's); None on one engine.
    pub node: Option<String>,
}

impl DynoIdentity {
    pub fn dyno(self, seen: DynoObserved) -> Dyno {
        Dyno {
            id: seen.id,
            app: self.app,
            release_id: self.release_id,
            release_version: self.release_version,
            process_type: self.process_type,
            index: self.index,
            running: seen.running,
            state: seen.state,
            command: seen.command,
            addr: seen.addr,
            created: seen.created,
            memory: self.memory,
            ip: seen.ip,
            node: seen.node,
        }
    }
}

/// Reads [`dyno_labels`] back; `None` when one is missing or damaged.
pub fn dyno_identity(l: &std::collections::HashMap<String, String>) -> Option<DynoIdentity> {
    Some(DynoIdentity {
        app: l.get(labels::APP)?.clone(),
        release_id: l.get(labels::RELEASE)?.clone(),
        release_version: l.get(labels::VERSION)?.parse().ok()?,
        process_type: l.get(labels::PROCESS)?.clone(),
        index: l.get(labels::INDEX)?.parse().ok()?,
        memory: l.get(labels::SIZE).and_then(|m| m.parse().ok()),
    })
}

/// `paas.kind` of the dynos of the formation.
pub const KIND_DYNO: &str = "dyno";
/// `paas.kind` of one-off dynos (`paas run`): the scheduler never counts,
/// restarts or stops them.
pub const KIND_RUN: &str = "run";

/// Capabilities dynos and task containers never need (raw sockets for
/// spoofing and sniffing, device nodes, audit, file capabilities, chroot).
pub const DROPPED_CAPABILITIES: &[&str] = &["NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP", "SYS_CHROOT"];
/// Processes one container may run (fork bombs stop here).
pub const PIDS_LIMIT: i64 = 1024;

/// A task's `download` was over its `download_limit` (bytes).
#[derive(Debug, thiserror::Error)]
#[error("the build's output is over {} MiB", .0 >> 20)]
pub struct OutputTooLarge(pub u64);

/// The longest line of build or task output passed on, in bytes (as the log
/// router's); the rest of a longer line is dropped and the line says so.
pub const MAX_OUTPUT_LINE: usize = 10_000;

/// Splits output bytes into lines (`\n` or `\r` ends one; blank ones are
/// skipped) of at most [`MAX_OUTPUT_LINE`] bytes, holding at most that much
/// of a line that has not ended: a program printing gigabytes without a
/// newline costs no memory.
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// The line being read was cut: drop bytes until it ends.
    skipping: bool,
}

impl LineSplitter {
    /// Takes `bytes` in and returns the lines they completed (or cut).
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            match bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(pos) => {
                    if !self.skipping {
                        self.take(&bytes[..pos], &mut lines);
                    }
                    self.skipping = false;
                    self.partial.clear();
                    bytes = &bytes[pos + 1..];
                }
                None => {
                    if !self.skipping {
                        self.partial.extend_from_slice(bytes);
                        if self.partial.len() > MAX_OUTPUT_LINE {
                            let mut cut = std::mem::take(&mut self.partial);
                            cut.truncate(MAX_OUTPUT_LINE);
                            let text = String::from_utf8_lossy(&cut);
                            lines.push(format!("{} [line cut: over {MAX_OUTPUT_LINE} bytes]", text.trim_end_matches('\u{FFFD}')));
                            self.skipping = true;
                        }
                    }
                    bytes = &[];
                }
            }
        }
        lines
    }

    fn take(&mut self, tail: &[u8], lines: &mut Vec<String>) {
        self.partial.extend_from_slice(tail);
        if self.partial.len() > MAX_OUTPUT_LINE {
            self.partial.truncate(MAX_OUTPUT_LINE);
            let text = String::from_utf8_lossy(&self.partial);
            lines.push(format!("{} [line cut: over {MAX_OUTPUT_LINE} bytes]", text.trim_end_matches('\u{FFFD}')));
        } else {
            let line = String::from_utf8_lossy(&self.partial);
            if !line.trim().is_empty() {
                lines.push(line.into_owned());
            }
        }
    }

    /// The last line, when the output ended without a newline.
    pub fn finish(mut self) -> Option<String> {
        let mut lines = Vec::new();
        if !self.skipping && !self.partial.is_empty() {
            self.take(&[], &mut lines);
        }
        lines.pop()
    }
}

/// What to run: one dyno of one process type of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynoSpec {
    pub app: String,
    pub release_id: String,
    pub release_version: i64,
    pub process_type: String,
    pub index: u32,
    pub image: String,
    /// Run with `/bin/sh -c`; empty means the image's own entrypoint and command.
    pub command: String,
    pub env: BTreeMap<String, String>,
    /// Whether to publish `$PORT` for the router.
    pub web: bool,
    /// Memory limit in bytes; None: no limit.
    pub memory: Option<i64>,
    /// Swarm placement constraints of the app (`paas apps:constraints`);
    /// the single engine has one place and ignores them.
    pub constraints: Vec<String>,
}

/// What runs: a container that carries the paas labels.
/// Where web dynos are reached from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynoAddress {
    /// The container's address on its app's bridge network, `$PORT` there:
    /// no Docker port proxy in the way (about 40 µs of CPU less per
    /// request, and a refused connect is a real refusal). Needs the bridge
    /// to be routable from the server, as it is for a local rootful engine.
    Container,
    /// `$PORT` as published on the host's 127.0.0.1 by Docker's port proxy:
    /// works wherever the engine's host is this machine, rootless included.
    Published,
    /// `Container` when the engine is local (a Unix socket) and not
    /// rootless, else `Published`.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dyno {
    /// Its runtime's id for it.
    pub id: DynoId,
    pub app: String,
    pub release_id: String,
    pub release_version: i64,
    pub process_type: String,
    pub index: u32,
    pub running: bool,
    /// Docker's word for its state: `running`, `exited`, `created`, ...
    pub state: String,
    pub command: String,
    /// Where the router reaches it, for a running web dyno.
    pub addr: Option<Endpoint>,
    /// When the container was made (Unix seconds); dynos are started right
    /// after, and a restart makes a new container.
    pub created: i64,
    /// Its memory limit in bytes, from its `paas.size` label.
    pub memory: Option<i64>,
    /// Its address on its app's network, reachable from the host (health
    /// checks on other ports than a web dyno's published `$PORT`).
    pub ip: Option<std::net::IpAddr>,
    /// The host name of the swarm node it runs on; None on one engine.
    pub node: Option<String>,
}

/// A machine dynos run on: the one engine, or a node of a swarm (its
/// `dynos` are left for the caller to fill in).
pub use paas_wire::Node;

/// How a dyno's container ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exit {
    pub exit_code: Option<i64>,
    /// Killed by the kernel for exceeding its memory limit.
    pub oom_killed: bool,
    /// The engine's own error, e.g. an entrypoint that does not exist.
    pub error: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.oom_killed {
            write!(f, "was killed for using more memory than its limit (out of memory)")?;
        } else {
            match self.exit_code {
                Some(code) => write!(f, "exited with status {code}")?,
                None => write!(f, "stopped")?,
            }
        }
        if let Some(e) = self.error.as_deref().filter(|e| !e.is_empty()) {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

/// One line a dyno wrote, as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// When the engine took it in, in nanoseconds since the Unix epoch: a
    /// container's lines are in this order, and a follower that resumes
    /// skips what it has seen by it.
    pub at_ns: i64,
    pub stderr: bool,
    pub text: String,
}

impl Dyno {
    pub fn name(&self) -> String {
        format!("{}.{}", self.process_type, self.index)
    }

    /// Its memory limit as people write it (`512M`); empty without one.
    pub fn size(&self) -> String {
        self.memory.map_or_else(String::new, |m| paas_wire::DynoSize::from_bytes(m).to_string())
    }
}

/// A one-off dyno to start (`paas run`): a dyno of process type `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOffSpec {
    /// Its image, command, env and memory; `process_type` is `run`.
    pub dyno: DynoSpec,
    /// A pseudo-terminal, with its size at start.
    pub tty: Option<(u16, u16)>,
    /// Attached: the server run holding its client (its stdin is open and
    /// its streams are handed back). None: detached.
    pub session: Option<String>,
    /// When it is stopped at the latest (Unix seconds).
    pub expires_at: i64,
}

/// A one-off dyno as it runs (or ended, not yet removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOff {
    pub dyno: Dyno,
    /// The command line the user gave.
    pub command: String,
    /// The server run holding its client; None: detached.
    pub session: Option<String>,
    pub expires_at: i64,
}

/// Output of an attached one-off dyno, as it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stderr: bool,
    pub data: bytes::Bytes,
}

/// The streams of an attached one-off dyno. Shutting `input` down is the
/// end of its stdin; `output` ends when the process does.
pub struct Attachment {
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    pub output: mpsc::Receiver<anyhow::Result<OutputChunk>>,
}

/// A one-off container that runs to completion: a buildpack build, a
/// release-phase command, a stack image step.
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    /// Part of the container name, for people reading `docker ps`.
    pub name: String,
    pub image: String,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// A tar file unpacked at `/` before the container starts; streamed,
    /// never read whole into memory.
    pub upload: Option<PathBuf>,
    /// Named volumes: (volume, path in the container).
    pub volumes: Vec<(String, String)>,
    /// The host's CA bundle, bind-mounted read-only: (host file, container path).
    pub ca_bundle: Option<(std::path::PathBuf, String)>,
    /// After a successful exit, each container path is copied out as a tar
    /// into the host file beside it, streamed.
    pub download: Vec<(String, PathBuf)>,
    /// The most bytes `download` copies out, all paths together; past it the
    /// task fails with [`OutputTooLarge`].
    pub download_limit: Option<u64>,
    /// Commit the finished container as an image.
    pub commit: Option<CommitSpec>,
    /// Longest the task may run before it is killed.
    pub timeout: Option<Duration>,
    /// A step of the platform's own (a stack image's apt install), not app
    /// code: it keeps the capabilities package scripts may need.
    pub platform_step: bool,
    /// Memory limit in bytes (no swap beyond it).
    pub memory: Option<i64>,
    /// Keep a started container of this task ready for its next run (same
    /// name, image, env, mounts and limits), which then runs with `exec`
    /// in it: for builds, whose container start is on a push's path.
    pub spare: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CommitSpec {
    pub tag: String,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub env: Vec<String>,
    /// The user the image's processes run as; None: root.
    pub user: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TaskResult {
    pub exit_code: i64,
    /// Killed for exceeding its memory limit.
    pub oom_killed: bool,
}

/// Limits on an image build: how long, and how much memory each build step
/// may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildLimits {
    pub timeout: Duration,
    pub memory: Option<i64>,
    /// The most a build may hand back (`/app` and its dependencies, as tars),
    /// in bytes: `PAAS_MAX_SLUG_MB`.
    pub output: u64,
}

/// A registry's user and password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryAuth({}, password hidden)", self.username)
    }
}

/// `paas.kind` of an add-on's service container.
pub const KIND_ADDON: &str = "addon";
/// `paas.kind` of the short-lived client containers an add-on's checks,
/// backups, restores and consoles run in.
pub const KIND_ADDON_CLIENT: &str = "addon-client";
/// The label naming the add-on a service or client container belongs to.
pub const ADDON_LABEL: &str = "paas.addon";

/// An add-on's service to run: a platform-built image (`addons::catalog`)
/// with a data volume the platform owns, on a network of its own where it
/// answers to its name; attached apps' networks are joined by
/// [`AddonHost::connect_addon`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonSpec {
    /// The add-on's name (`postgresql-amber-4821`): its containers', volume's
    /// and network's names derive from it, and it is the service's host name.
    pub name: String,
    pub image: String,
    /// The service's settings, credentials among them (never in its argv).
    pub env: BTreeMap<String, String>,
    /// Where the image keeps its data: the volume is mounted there.
    pub data_path: String,
    /// The signal that stops it gracefully (PostgreSQL's fast shutdown is
    /// SIGINT) and how long it has before it is killed.
    pub stop_signal: String,
    pub stop_grace: Duration,
}

/// An add-on's service container as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonStatus {
    /// Running, and not between two of its restart policy's restarts.
    pub running: bool,
    /// How often the engine restarted it (its restart policy).
    pub restarts: i64,
    /// The image it runs (as the spec named it).
    pub image: String,
    /// How it ended, when it is not running.
    pub exit: Option<Exit>,
}

/// A short-lived container beside an add-on: its client tools (`pg_dump`,
/// `redis-cli`, ...) against the service by name, its stdin and stdout the
/// caller's streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonClientSpec {
    pub addon: String,
    pub image: String,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Mount the add-on's data volume at the spec's data path (a restore
    /// that replaces files while the service is stopped).
    pub data_path: Option<String>,
    /// A pseudo-terminal of this size (consoles).
    pub tty: Option<(u16, u16)>,
}

/// The tag of build `build_id`'s image of `app` (`paas/APP:BUILD`, the
/// build id's first 8 characters): what a build tags, a rename moves, and
/// destroy and gc untag.
pub fn build_image(app: &str, build_id: &str) -> String {
    format!("paas/{app}:{}", &build_id[..build_id.len().min(8)])
}

/// The image holding `app`'s dependency layer (buildpack builds).
pub fn deps_image(app: &str) -> String {
    format!("paas/{app}-deps:latest")
}

const BUILD_CACHE_PREFIX: &str = "paas-cache-";

/// The named volume a buildpack build of `app` keeps its cache in.
pub fn build_cache_volume(app: &str) -> String {
    format!("{BUILD_CACHE_PREFIX}{app}")
}

/// The app whose build cache `volume` is, if it is one.
pub fn build_cache_app(volume: &str) -> Option<&str> {
    volume.strip_prefix(BUILD_CACHE_PREFIX)
}

/// Placing and observing dynos: start, stop, list, how each ended, and
/// the exits as they happen. The single engine places on itself; a
/// cluster backend places through its manager.
#[async_trait]
pub trait Placement: Send + Sync + 'static {
    /// Every paas dyno, of one app or of all.
    async fn list_dynos(&self, app: Option<&str>) -> anyhow::Result<Vec<Dyno>>;
    /// Creates and starts a dyno and returns it as it runs.
    async fn start_dyno(&self, spec: &DynoSpec) -> anyhow::Result<Dyno>;
    /// SIGTERM, SIGKILL after `grace`; the container stays, so its last
    /// output can still be read. Idempotent.
    async fn halt_dyno(&self, id: &DynoId, grace: Duration) -> anyhow::Result<()>;
    /// SIGTERM, SIGKILL after `grace`, then remove. Idempotent: a container
    /// that is already gone is not an error.
    async fn stop_dyno(&self, id: &DynoId, grace: Duration) -> anyhow::Result<()>;
    /// Makes ready, in the background, what lets the app's next `count`
    /// dynos start sooner (the engine: network holders). A hint: nothing
    /// depends on it.
    fn prepare_dynos(&self, _app: &str, _count: usize) {}
    /// Removes the app's own network (its dynos must be gone). Idempotent.
    async fn remove_app_network(&self, app: &str) -> anyhow::Result<()>;
    /// Removes the networks of apps not in `apps` (destroyed while the
    /// server was down). Networks still in use are left for a later pass.
    async fn prune_networks(&self, apps: &std::collections::HashSet<&str>) -> anyhow::Result<()>;
    /// How a dyno's container ended (or `running` still).
    async fn exit_of(&self, id: &DynoId) -> anyhow::Result<(bool, Exit)>;
    /// (app, container id) of each dyno that exits, as it exits, for as
    /// long as the receiver lives; reconnects when the engine's event stream
    /// breaks.
    fn watch_exits(&self) -> mpsc::Receiver<(String, DynoId)>;
    /// The machines dynos are placed on.
    async fn nodes(&self) -> anyhow::Result<Vec<Node>>;
    /// The TCP addresses a running dyno listens on, read from its own
    /// socket table; None where this runtime cannot look (the twelve-factor
    /// report says "not observed").
    async fn listeners(&self, _id: &DynoId) -> anyhow::Result<Option<Vec<std::net::SocketAddr>>> {
        Ok(None)
    }
    /// What a running dyno wrote to its own filesystem; None where this
    /// runtime cannot say.
    async fn disk_use(&self, _id: &DynoId) -> anyhow::Result<Option<DiskUse>> {
        Ok(None)
    }
    /// A running dyno's memory and CPU counters, one call; None where this
    /// runtime cannot say (a swarm's dynos on other nodes).
    async fn stats(&self, _id: &DynoId) -> anyhow::Result<Option<DynoStats>> {
        Ok(None)
    }
}

/// A dyno's counters, as the engine's stats give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DynoStats {
    /// Bytes in use: the cgroup's usage less its inactive file cache (what
    /// `docker stats` shows).
    pub memory: u64,
    /// Bytes charged against its limit, file cache included (the cgroup's
    /// usage): at the limit, the kernel takes memory back from the dyno.
    pub charged: u64,
    /// Its memory limit, in bytes.
    pub limit: u64,
    /// CPU time used since it started, in nanoseconds.
    pub cpu_ns: u64,
    /// Times its memory hit the limit and the kernel had to take some
    /// back (cgroup v1's `failcnt`), when the engine tells.
    pub failcnt: Option<u64>,
}

/// See [`ImageBuilder::leftovers`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// (id, name) of each stopped task container.
    pub containers: Vec<(String, String)>,
    /// Image IDs.
    pub images: Vec<String>,
}

/// What a dyno wrote to its own filesystem (its container's writable layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskUse {
    pub bytes: i64,
    /// The layer's directory, when this server can read it (it runs on the
    /// engine's host): which files they are.
    pub dir: Option<std::path::PathBuf>,
}

/// Building images and running build and release-phase tasks: always
/// the engine beside the server (a cluster's manager), with the build
/// cache volumes and the spare build containers.
#[async_trait]
pub trait ImageBuilder: Send + Sync + 'static {
    /// Builds an image from a tar build context file (streamed to the
    /// engine) with these build arguments, sending each output line to
    /// `output`. Returns the image ID.
    async fn build_image(
        &self,
        context: &Path,
        tag: &str,
        args: &BTreeMap<String, String>,
        limits: BuildLimits,
        output: &mpsc::Sender<String>,
    ) -> anyhow::Result<String>;
    /// What builds left behind: this instance's task containers made over
    /// `age` ago that are not running (a server that died mid-build leaves
    /// them), and dangling dependency images (replaced by a newer one)
    /// made over `age` ago too.
    async fn leftovers(&self, _age: Duration) -> anyhow::Result<Leftovers> {
        Ok(Leftovers::default())
    }
    /// This instance's build cache volumes (`paas-cache-APP`), by name.
    async fn build_caches(&self) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// An image's size in bytes, if the engine has it.
    async fn image_size(&self, _image: &str) -> anyhow::Result<Option<i64>> {
        Ok(None)
    }
    /// A named volume's size in bytes, when its directory is on this host.
    async fn volume_size(&self, _name: &str) -> anyhow::Result<Option<i64>> {
        Ok(None)
    }
    /// The engine's data root (images, containers, volumes), when it is a
    /// directory on this host.
    async fn data_root(&self) -> anyhow::Result<Option<std::path::PathBuf>> {
        Ok(None)
    }
    /// Removes an image. Idempotent.
    async fn remove_image(&self, image: &str) -> anyhow::Result<()>;
    /// Names image `from` (a tag) `to` (`repository:tag`) instead
    /// (`apps:rename`); nothing when `from` does not exist.
    async fn retag_image(&self, from: &str, to: &str) -> anyhow::Result<()>;
    /// Names `image` also `to` (`repository:tag`): a promoted build gets a
    /// tag of the app it was promoted to, so that each app's destroy
    /// removes its own tag and the image goes with the last one.
    async fn tag_image(&self, image: &str, to: &str) -> anyhow::Result<()>;
    async fn image_exists(&self, image: &str) -> anyhow::Result<bool>;
    /// Runs a task container to completion, streaming its output lines, and
    /// removes it. A `spare` task runs in the spare made by `prepare_task`
    /// when there is one (waiting for it while it is being made).
    async fn run_task(&self, spec: &TaskSpec, output: &mpsc::Sender<String>) -> anyhow::Result<TaskResult>;
    /// Makes, in the background, a started container for the next run of a
    /// `spare` task. Runtimes without spares do nothing.
    fn prepare_task(&self, _spec: &TaskSpec) {}
    /// Removes what `prepare_task` (and `Placement::prepare_dynos`) made
    /// and nothing ran in yet (a server that stops in order leaves no
    /// spare behind).
    async fn remove_spares(&self) {}
    /// Makes image `tag` from `base` plus the files of the tar file `tar`
    /// (unpacked at `/`, streamed), keeping the base's entrypoint and
    /// environment, with `label` set on it. Returns the image ID. Much faster
    /// than a `COPY` build for many small files.
    async fn image_from_files(&self, base: &str, tar: &Path, tag: &str, label: Option<(&str, &str)>)
        -> anyhow::Result<String>;
    /// An image's label, if the image exists and has it.
    async fn image_label(&self, image: &str, label: &str) -> anyhow::Result<Option<String>>;
    /// An image's ID, if it exists.
    async fn image_id(&self, image: &str) -> anyhow::Result<Option<String>>;
    /// Pulls `reference` from its registry (`paas deploy --image` of an
    /// image the engine does not have).
    async fn pull_image(&self, reference: &str) -> anyhow::Result<()>;
    /// Removes a named volume. Idempotent.
    async fn remove_volume(&self, name: &str) -> anyhow::Result<()>;
    /// Pushes `image` to a registry as `repository:tag` (`repository`
    /// starts with the registry's address) and returns it by digest,
    /// `repository@sha256:...`: what other engines pull, the same bytes
    /// on every one.
    async fn push_image(&self, image: &str, repository: &str, tag: &str, auth: Option<&RegistryAuth>) -> anyhow::Result<String>;
}

/// Following dynos' output: the last lines of one, and one's output as
/// it is written (the log router's followers).
#[async_trait]
pub trait OutputFollower: Send + Sync + 'static {
    /// The last `lines` lines a dyno wrote to stdout and stderr.
    async fn output_tail(&self, id: &DynoId, lines: usize) -> anyhow::Result<Vec<String>>;
    /// A dyno's output from `since` (Unix seconds; 0: from its start) and
    /// on as it is written, until the container ends (or is removed) or the
    /// receiver is dropped. A slow reader slows only this follower: the
    /// engine keeps the dyno's output in its log file meanwhile.
    fn follow_output(&self, id: &DynoId, since: i64) -> mpsc::Receiver<anyhow::Result<OutputLine>>;
}

/// One-off dynos: started (attached before they start when a client
/// waits), listed, sized, signalled and waited for.
#[async_trait]
pub trait OneOffAttach: Send + Sync + 'static {
    /// Creates and starts a one-off dyno; an attached one is attached
    /// before it starts, so no output is lost.
    async fn start_one_off(&self, spec: &OneOffSpec) -> anyhow::Result<(OneOff, Option<Attachment>)>;
    /// Every one-off dyno, of one app or of all, running or ended.
    async fn list_one_offs(&self, app: Option<&str>) -> anyhow::Result<Vec<OneOff>>;
    /// Sets a one-off dyno's terminal size.
    async fn resize_tty(&self, id: &DynoId, cols: u16, rows: u16) -> anyhow::Result<()>;
    /// Sends a container's process a signal (`INT`, `TERM`, ...).
    async fn signal(&self, id: &DynoId, signal: &str) -> anyhow::Result<()>;
    /// Waits until a container ends and tells how.
    async fn wait_exit(&self, id: &DynoId) -> anyhow::Result<Exit>;
}

/// The platform's own services beside apps: add-ons (PostgreSQL, Redis).
/// Each runs as one container on the engine beside the server (on a swarm,
/// the manager's, which pins the add-on to the node holding its data) and
/// is reached by apps over their networks, never a host port.
#[async_trait]
pub trait AddonHost: Send + Sync + 'static {
    /// Creates the add-on's volume, network and container when missing (a
    /// container of another image is replaced, the volume kept), and starts
    /// it. Idempotent.
    async fn run_addon(&self, spec: &AddonSpec) -> anyhow::Result<()>;
    /// Its container's state; None when there is none.
    async fn addon_status(&self, name: &str) -> anyhow::Result<Option<AddonStatus>>;
    /// Stops it with its stop signal, then SIGKILL after `grace`; it stays
    /// stopped (also across engine restarts) until `run_addon`.
    async fn stop_addon(&self, name: &str, grace: Duration) -> anyhow::Result<()>;
    /// Removes its container and network, and with `data` its volume.
    async fn remove_addon(&self, name: &str, data: bool) -> anyhow::Result<()>;
    /// Joins `app`'s network, answering there to `alias`. Idempotent.
    async fn connect_addon(&self, name: &str, app: &str, alias: &str) -> anyhow::Result<()>;
    /// Leaves `app`'s network. Idempotent.
    async fn disconnect_addon(&self, name: &str, app: &str) -> anyhow::Result<()>;
    /// The last lines its service wrote (why it failed to start).
    async fn addon_output_tail(&self, name: &str, lines: usize) -> anyhow::Result<Vec<String>>;
    /// Starts a client container beside it, attached.
    async fn start_addon_client(&self, spec: &AddonClientSpec) -> anyhow::Result<(DynoId, Attachment)>;
    /// Waits for a client container to end, removes it and says how.
    async fn finish_addon_client(&self, id: &DynoId) -> anyhow::Result<Exit>;
    /// Resizes a client container's terminal.
    async fn resize_addon_client(&self, id: &DynoId, cols: u16, rows: u16) -> anyhow::Result<()>;
    /// Runs a command in the add-on's service container, attached (no
    /// terminal); the id is the command's.
    async fn exec_in_addon(&self, name: &str, cmd: &[String], env: &BTreeMap<String, String>) -> anyhow::Result<(DynoId, Attachment)>;
    /// How a command run by `exec_in_addon` ended, once its output has.
    async fn finish_addon_exec(&self, id: &DynoId) -> anyhow::Result<Exit>;
}

/// A runtime: every role, from one backend. The server holds one as
/// `Arc<dyn Runtime>`; each consumer calls the role it needs.
#[async_trait]
pub trait Runtime: Placement + ImageBuilder + OutputFollower + OneOffAttach + AddonHost {
    /// An app's dynos and one-off dynos, as [`Runtime::list_dynos`] and
    /// [`Runtime::list_one_offs`] give them; a runtime that can list both
    /// at once (the engine: one request) does.
    async fn list_app(&self, app: &str) -> anyhow::Result<(Vec<Dyno>, Vec<OneOff>)> {
        Ok((self.list_dynos(Some(app)).await?, self.list_one_offs(Some(app)).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_are_split_and_cut_without_holding_more_than_a_line() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"one\ntw"), ["one"]);
        assert_eq!(s.push(b"o\r\n\nthree"), ["two"]);
        assert_eq!(s.finish().as_deref(), Some("three"));

        // 20 MB without a newline: one cut line, nothing held, and the
        // next line comes through whole.
        let mut s = LineSplitter::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut got = Vec::new();
        for _ in 0..320 {
            got.extend(s.push(&chunk));
            assert!(s.partial.len() <= MAX_OUTPUT_LINE);
        }
        got.extend(s.push(b"still cut\nnext line\n"));
        assert_eq!(got.len(), 2, "{:?}", got.iter().map(|l| l.len()).collect::<Vec<_>>());
        assert!(got[0].starts_with("xxx") && got[0].ends_with(&format!("[line cut: over {MAX_OUTPUT_LINE} bytes]")));
        assert_eq!(got[0].len(), MAX_OUTPUT_LINE + " [line cut: over 10000 bytes]".len());
        assert_eq!(got[1], "next line");
        // A long line that ends in the same chunk is cut too.
        let mut long = vec![b'y'; MAX_OUTPUT_LINE + 5];
        long.push(b'\n');
        let got = LineSplitter::default().push(&long);
        assert!(got[0].ends_with("bytes]") && got[0].len() < MAX_OUTPUT_LINE + 40);
    }
}
