//! The runtime: the seam between the scheduler and whatever runs containers.
//! `docker` is the local backend and the only module that talks to bollard;
//! a second backend (Docker Swarm, for more than one host) fits beside it.
//!
//! The runtime knows nothing of releases' storage or of HTTP: it starts,
//! lists and stops labelled containers and builds images.

mod docker;

pub use docker::DockerRuntime;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// Port every web dyno listens on inside its container (`$PORT`).
pub const DYNO_PORT: u16 = 5000;

/// Container labels that carry a dyno's identity; the scheduler reads actual
/// state from them alone, so a restarted server adopts what runs.
pub mod labels {
    pub const APP: &str = "paas.app";
    pub const RELEASE: &str = "paas.release";
    pub const VERSION: &str = "paas.version";
    pub const PROCESS: &str = "paas.process";
    pub const INDEX: &str = "paas.index";
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
}

/// What runs: a container that carries the paas labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dyno {
    pub container_id: String,
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
    pub addr: Option<SocketAddr>,
}

impl Dyno {
    pub fn name(&self) -> String {
        format!("{}.{}", self.process_type, self.index)
    }
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Every paas dyno, of one app or of all.
    async fn list_dynos(&self, app: Option<&str>) -> anyhow::Result<Vec<Dyno>>;
    /// Creates and starts a dyno and returns it as it runs.
    async fn start_dyno(&self, spec: &DynoSpec) -> anyhow::Result<Dyno>;
    /// SIGTERM, SIGKILL after `grace`, then remove. Idempotent: a container
    /// that is already gone is not an error.
    async fn stop_dyno(&self, container_id: &str, grace: Duration) -> anyhow::Result<()>;
    /// Builds an image from a tar build context, sending each output line to
    /// `output`. Returns the image ID.
    async fn build_image(&self, context: Vec<u8>, tag: &str, output: &mpsc::Sender<String>) -> anyhow::Result<String>;
    /// Removes images tagged for an app that no kept release references.
    async fn remove_image(&self, image: &str) -> anyhow::Result<()>;
}
