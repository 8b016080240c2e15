//! The local Docker backend: the only folder in paas that talks to the
//! engine, through bollard or (`engine.rs`) its HTTP API directly. One file
//! a concern: `dynos.rs` (dyno containers, networks, exits), `output.rs`
//! (a dyno's output), `oneoffs.rs` (`paas run`'s containers), `tasks.rs`
//! (build and release-phase containers), `spares.rs` (started task
//! containers kept ready), `images.rs` (builds and images), `engine.rs`
//! (raw engine HTTP: streamed builds, attach), `isolation.rs` (the host
//! firewall chain that keeps apps' networks apart). This file holds the
//! connection, what every container gets ([`locked_down`], labels), and
//! the [`Runtime`] trait's implementation, which only points at them.

use super::{labels, Dyno, DynoAddress, DynoSpec, TaskResult, TaskSpec};
use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use bollard::container::{Config, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions};
use bollard::models::{ContainerSummary, HostConfig};
use bollard::Docker;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

mod addons;
mod dynos;
mod engine;
mod images;
pub mod isolation;
mod oneoffs;
pub mod swarm;
mod swarm_runtime;
pub use swarm_runtime::{Constraint, SwarmRuntime, SwarmSettings};
mod holders;
mod output;
mod spares;
mod tasks;

#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    /// `DOCKER_HOST`, for the streamed build request.
    host: Option<String>,
    /// Every container this runtime starts carries `paas.instance=<this>`,
    /// and it lists and touches only those.
    instance: String,
    /// Started task containers waiting for their task (see `spares`).
    spares: std::sync::Arc<std::sync::Mutex<spares::Spares>>,
    /// Containers holding a place on apps' networks for their next dynos
    /// (see `holders`).
    holders: std::sync::Arc<std::sync::Mutex<holders::Holders>>,
    /// The image holders are made from; None: no holders.
    holder_image: Option<String>,
    /// Web dynos are reached at their container address, not the published
    /// port (`PAAS_DYNO_ADDRESS`).
    via_container: bool,
    /// CPUs each dyno, one-off dyno and build may use (`PAAS_DYNO_CPUS`),
    /// in the engine's billionths of a CPU; None: no limit.
    nano_cpus: Option<i64>,
    /// The engine is a swarm's manager: apps' networks are attachable
    /// overlays, so one-off dynos on the manager join them.
    overlay: bool,
    /// Held while an app's network is looked for and made: dynos started
    /// at once would each make one (the engine takes two of one name).
    networks: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl DockerRuntime {
    /// Limits every container this runtime starts (dynos, one-off dynos,
    /// build and release-phase containers, Dockerfile `RUN` steps) to
    /// `cpus` CPUs.
    pub fn limit_cpus(mut self, cpus: f64) -> Self {
        self.nano_cpus = Some((cpus * 1e9) as i64).filter(|n| *n > 0);
        self
    }

    /// Dynos may join network holders made from `image` (the stack's run
    /// image: anything with `sleep`; see `holders`).
    pub fn hold_with(mut self, image: &str) -> Self {
        self.holder_image = Some(image.to_owned());
        self
    }

    /// Apps' networks become attachable overlays (the engine is a swarm's
    /// manager; see `swarm_runtime`).
    pub fn on_swarm(mut self) -> Self {
        self.overlay = true;
        self
    }

    /// The engine as the one node dynos run on (`paas nodes`).
    async fn engine_node(&self) -> Result<Vec<super::Node>> {
        let info = self.docker.info().await.context("cannot ask the Docker engine what it is")?;
        Ok(vec![super::Node {
            id: info.id.unwrap_or_default(),
            hostname: info.name.unwrap_or_default(),
            state: "ready".into(),
            availability: "active".into(),
            role: "engine".into(),
            address: None,
            labels: Default::default(),
            dynos: Vec::new(),
        }])
    }

    /// Connects by `DOCKER_HOST` (or the local socket) and negotiates the API
    /// version down to what the engine speaks (1.41 for Debian's docker.io).
    pub async fn connect(instance: &str, host: Option<&str>, address: DynoAddress) -> Result<Self> {
        let docker = Docker::connect_with_defaults().context("cannot reach the Docker engine: is dockerd running?")?;
        let docker = docker
            .negotiate_version()
            .await
            .context("cannot reach the Docker engine: is dockerd running and DOCKER_HOST right?")?;
        let via_container = match address {
            DynoAddress::Container => true,
            DynoAddress::Published => false,
            // A local rootful engine's bridges are routable from this host;
            // a remote or rootless engine's are not.
            DynoAddress::Auto => {
                let local = host.is_none_or(|h| h.starts_with("unix://"));
                let info = docker.info().await.context("cannot ask the Docker engine what it is")?;
                let rootless = info
                    .security_options
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o.contains("rootless"));
                local && !rootless
            }
        };
        let me = Self {
            docker,
            host: host.map(str::to_owned),
            instance: instance.to_owned(),
            spares: Default::default(),
            holders: Default::default(),
            holder_image: None,
            via_container,
            nano_cpus: None,
            overlay: false,
            networks: Default::default(),
        };
        // Spares of an earlier run of this server: never used, not known now.
        for c in me.labelled([format!("{}=1", spares::SPARE_LABEL)]).await.unwrap_or_default() {
            if let Some(id) = c.id {
                me.remove_now(&id).await;
            }
        }
        me.remove_addon_clients().await;
        me.remove_unused_holders().await;
        Ok(me)
    }

    /// Removes a container of ours that is not a dyno (a task's, a spare,
    /// a layer's, one that failed to start), whatever state it is in; a
    /// failure is only logged.
    pub(super) async fn remove_now(&self, id: &str) {
        if let Err(e) = self.remove_container(id).await {
            tracing::warn!(container = id, error = %format!("{e:#}"), "cannot remove a container");
        }
    }

    /// Removes a container, whatever state it is in; one already gone (or
    /// going) is not an error.
    pub(super) async fn remove_container(&self, container_id: &str) -> Result<()> {
        let options = RemoveContainerOptions { force: true, ..Default::default() };
        match self.docker.remove_container(container_id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove container {container_id}"))),
        }
    }

    /// [`Self::remove_now`] off the caller's path.
    pub(super) fn remove_later(&self, id: &str) {
        let (me, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move { me.remove_now(&id).await });
    }

    pub(super) fn instance_label(&self) -> String {
        format!("{}={}", labels::INSTANCE, self.instance)
    }

    /// Every container of this instance (running or not) that carries all
    /// of `labels` (`key=value`, or `key` for any value).
    pub(super) async fn labelled(&self, labels: impl IntoIterator<Item = String>) -> Result<Vec<ContainerSummary>> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_owned(),
            std::iter::once(self.instance_label()).chain(labels).collect::<Vec<_>>(),
        );
        self.docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await
            .context("cannot list containers")
    }

    /// One container as the engine lists it (labels, ports, state).
    pub(super) async fn listed(&self, container_id: &str) -> Result<Vec<ContainerSummary>> {
        let mut filters = HashMap::new();
        filters.insert("id".to_owned(), vec![container_id.to_owned()]);
        Ok(self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await?)
    }

    /// Labels that override any `paas.*` label an image brings: a task or
    /// layer container never passes for a dyno of any app.
    pub(super) fn not_a_dyno(&self, kind: &str) -> HashMap<String, String> {
        [
            (labels::INSTANCE, self.instance.as_str()),
            (labels::KIND, kind),
            (labels::APP, ""),
            (labels::RELEASE, ""),
            (labels::VERSION, ""),
            (labels::PROCESS, ""),
            (labels::INDEX, ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Unpacks the tar file at `tar` into the container's root, streamed.
    pub(super) async fn upload_tar(&self, id: &str, tar: &Path) -> Result<()> {
        let options = bollard::container::UploadToContainerOptions { path: "/", ..Default::default() };
        self.docker.upload_to_container_streaming(id, Some(options), file_stream(tar).await?).await?;
        Ok(())
    }

    /// Creates a container; returns its id.
    pub(super) async fn create(&self, name: &str, config: Config<String>, what: &str) -> Result<String> {
        let created = self
            .docker
            .create_container(Some(CreateContainerOptions { name, platform: None }), config)
            .await
            .with_context(|| format!("cannot create container for {what}"))?;
        Ok(created.id)
    }

    /// Starts a created container; one that cannot start is removed.
    pub(super) async fn start_created(&self, id: &str, what: &str) -> Result<()> {
        if let Err(e) = self.docker.start_container::<String>(id, None).await {
            self.remove_now(id).await;
            return Err(anyhow!(e).context(format!("cannot start {what}")));
        }
        Ok(())
    }
}

/// What every container paas starts gets: an init as PID 1 (it forwards
/// SIGTERM, so containers stop promptly), no privileges and no privilege
/// escalation, the capabilities apps do not need dropped, a pids limit and
/// a cap on its kept log. Callers add only ports, a network, a memory limit
/// or named volumes; app containers never get host mounts or the Docker
/// socket.
pub(super) fn locked_down(host: HostConfig) -> HostConfig {
    HostConfig {
        init: Some(true),
        privileged: Some(false),
        security_opt: Some(vec!["no-new-privileges".into()]),
        cap_drop: Some(super::DROPPED_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
        pids_limit: Some(super::PIDS_LIMIT),
        log_config: Some(bollard::models::HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(capped_log()),
        }),
        ..host
    }
}

/// The `json-file` log driver's options every app container gets: what the
/// engine keeps of its output is capped (30 MB).
pub(super) fn capped_log() -> HashMap<String, String> {
    HashMap::from([("max-size".to_owned(), "10m".to_owned()), ("max-file".to_owned(), "3".to_owned())])
}

pub(super) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// A file as a stream of chunks, for bollard's streamed uploads. A read
/// error ends the stream early, which the engine reports as a bad tar.
async fn file_stream(path: &Path) -> Result<impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok(tokio_stream::StreamExt::map_while(chunks, |chunk| match chunk {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a file being uploaded to the engine");
            None
        }
    }))
}

/// The traits, role by role: each method is the one of the same name in
/// the file of its concern.
#[async_trait]
impl super::Placement for DockerRuntime {
    async fn list_dynos(&self, app: Option<&str>) -> Result<Vec<Dyno>> {
        DockerRuntime::list_dynos(self, app).await
    }

    async fn start_dyno(&self, spec: &DynoSpec) -> Result<Dyno> {
        DockerRuntime::start_dyno(self, spec).await
    }

    async fn halt_dyno(&self, id: &super::DynoId, grace: Duration) -> Result<()> {
        DockerRuntime::halt_dyno(self, id.as_str(), grace).await
    }

    async fn stop_dyno(&self, id: &super::DynoId, grace: Duration) -> Result<()> {
        DockerRuntime::stop_dyno(self, id.as_str(), grace).await
    }

    fn prepare_dynos(&self, app: &str, count: usize) {
        DockerRuntime::prepare_holders(self, app, count);
    }

    async fn remove_app_network(&self, app: &str) -> Result<()> {
        DockerRuntime::remove_app_network(self, app).await
    }

    async fn prune_networks(&self, apps: &std::collections::HashSet<&str>) -> Result<()> {
        DockerRuntime::prune_networks(self, apps).await
    }

    async fn exit_of(&self, id: &super::DynoId) -> Result<(bool, super::Exit)> {
        DockerRuntime::exit_of(self, id.as_str()).await
    }

    async fn listeners(&self, id: &super::DynoId) -> Result<Option<Vec<std::net::SocketAddr>>> {
        DockerRuntime::listeners(self, id.as_str()).await.map(Some)
    }

    async fn disk_use(&self, id: &super::DynoId) -> Result<Option<super::DiskUse>> {
        DockerRuntime::disk_use(self, id.as_str()).await.map(Some)
    }

    async fn stats(&self, id: &super::DynoId) -> Result<Option<super::DynoStats>> {
        DockerRuntime::stats(self, id.as_str()).await.map(Some)
    }

    fn watch_exits(&self) -> mpsc::Receiver<(String, super::DynoId)> {
        DockerRuntime::watch_exits(self)
    }

    async fn nodes(&self) -> Result<Vec<super::Node>> {
        DockerRuntime::engine_node(self).await
    }
}

#[async_trait]
impl super::ImageBuilder for DockerRuntime {
    async fn build_image(
        &self,
        context: &Path,
        tag: &str,
        args: &std::collections::BTreeMap<String, String>,
        limits: super::BuildLimits,
        output: &mpsc::Sender<String>,
    ) -> Result<String> {
        DockerRuntime::build_image(self, context, tag, args, limits, output).await
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        DockerRuntime::remove_image(self, image).await
    }

    async fn retag_image(&self, from: &str, to: &str) -> Result<()> {
        DockerRuntime::retag_image(self, from, to).await
    }

    async fn tag_image(&self, image: &str, to: &str) -> Result<()> {
        DockerRuntime::tag_image(self, image, to).await.map(drop)
    }

    async fn leftovers(&self, age: std::time::Duration) -> Result<super::Leftovers> {
        let made_before = crate::unix_secs() - age.as_secs() as i64;
        let containers = self
            .labelled(["paas.task".to_owned()])
            .await?
            .into_iter()
            .filter(|c| matches!(c.state.as_deref(), Some("exited" | "created" | "dead")) && c.created.is_some_and(|t| t <= made_before))
            .filter_map(|c| Some((c.id?, c.names.and_then(|n| n.first().cloned()).unwrap_or_default().trim_start_matches('/').to_owned())))
            .collect();
        let filters = HashMap::from([("dangling".to_owned(), vec!["true".to_owned()]), ("label".to_owned(), vec!["paas.deps".to_owned()])]);
        let images = self
            .docker
            .list_images(Some(bollard::image::ListImagesOptions { all: false, filters, ..Default::default() }))
            .await
            .context("cannot list the engine's images")?
            .into_iter()
            // As old as a task container must be: a young one may be a step
            // of a build still running (the classic builder's intermediate
            // images are dangling until the next step), on this engine by
            // this server or another.
            .filter(|i| i.created <= made_before)
            .map(|i| i.id)
            .collect();
        Ok(super::Leftovers { containers, images })
    }

    async fn build_caches(&self) -> Result<Vec<String>> {
        let filters = HashMap::from([("label".to_owned(), vec![self.instance_label()])]);
        let listed = self
            .docker
            .list_volumes(Some(bollard::volume::ListVolumesOptions { filters }))
            .await
            .context("cannot list the engine's volumes")?;
        Ok(listed.volumes.unwrap_or_default().into_iter().map(|v| v.name).filter(|n| super::build_cache_app(n).is_some()).collect())
    }

    async fn image_size(&self, image: &str) -> Result<Option<i64>> {
        Ok(self.inspected(image).await?.and_then(|i| i.size))
    }

    async fn volume_size(&self, name: &str) -> Result<Option<i64>> {
        let volume = match self.docker.inspect_volume(name).await {
            Ok(v) => v,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(anyhow::anyhow!(e).context(format!("cannot inspect volume {name}"))),
        };
        let dir = std::path::PathBuf::from(volume.mountpoint);
        if !dir.is_dir() {
            return Ok(None);
        }
        Ok(tokio::task::spawn_blocking(move || crate::du::bytes(&dir) as i64).await.ok())
    }

    async fn data_root(&self) -> Result<Option<std::path::PathBuf>> {
        let info = self.docker.info().await.context("cannot ask the engine where it keeps its data")?;
        Ok(info.docker_root_dir.map(std::path::PathBuf::from).filter(|p| p.is_dir()))
    }

    async fn image_exists(&self, image: &str) -> Result<bool> {
        DockerRuntime::image_exists(self, image).await
    }


    fn prepare_task(&self, spec: &TaskSpec) {
        DockerRuntime::prepare_task(self, spec)
    }

    async fn remove_spares(&self) {
        DockerRuntime::remove_spares(self).await
    }

    async fn run_task(&self, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Result<TaskResult> {
        DockerRuntime::run_task(self, spec, output).await
    }

    async fn image_label(&self, image: &str, label: &str) -> Result<Option<String>> {
        DockerRuntime::image_label(self, image, label).await
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        DockerRuntime::image_id(self, image).await
    }

    async fn pull_image(&self, reference: &str) -> Result<()> {
        DockerRuntime::pull_image(self, reference).await
    }

    async fn image_from_files(&self, base: &str, tar: &Path, tag: &str, label: Option<(&str, &str)>) -> Result<String> {
        DockerRuntime::image_from_files(self, base, tar, tag, label).await
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        DockerRuntime::remove_volume(self, name).await
    }

    async fn push_image(&self, image: &str, repository: &str, tag: &str, auth: Option<&super::RegistryAuth>) -> Result<String> {
        DockerRuntime::push_image(self, image, repository, tag, auth).await
    }
}

#[async_trait]
impl super::OutputFollower for DockerRuntime {
    async fn output_tail(&self, id: &super::DynoId, lines: usize) -> Result<Vec<String>> {
        DockerRuntime::output_tail(self, id.as_str(), lines).await
    }

    fn follow_output(&self, id: &super::DynoId, since: i64) -> mpsc::Receiver<Result<super::OutputLine>> {
        DockerRuntime::follow_output(self, id.as_str(), since)
    }
}

#[async_trait]
impl super::OneOffAttach for DockerRuntime {
    async fn start_one_off(&self, spec: &super::OneOffSpec) -> Result<(super::OneOff, Option<super::Attachment>)> {
        DockerRuntime::start_one_off(self, spec).await
    }

    async fn list_one_offs(&self, app: Option<&str>) -> Result<Vec<super::OneOff>> {
        DockerRuntime::list_one_offs(self, app).await
    }

    async fn resize_tty(&self, id: &super::DynoId, cols: u16, rows: u16) -> Result<()> {
        DockerRuntime::resize_tty(self, id.as_str(), cols, rows).await
    }

    async fn signal(&self, id: &super::DynoId, signal: &str) -> Result<()> {
        DockerRuntime::signal(self, id.as_str(), signal).await
    }

    async fn wait_exit(&self, id: &super::DynoId) -> Result<super::Exit> {
        DockerRuntime::wait_exit(self, id.as_str()).await
    }
}

#[async_trait]
impl super::AddonHost for DockerRuntime {
    async fn run_addon(&self, spec: &super::AddonSpec) -> Result<()> {
        DockerRuntime::run_addon(self, spec).await
    }

    async fn addon_status(&self, name: &str) -> Result<Option<super::AddonStatus>> {
        DockerRuntime::addon_status(self, name).await
    }

    async fn stop_addon(&self, name: &str, grace: Duration) -> Result<()> {
        DockerRuntime::stop_addon(self, name, grace).await
    }

    async fn remove_addon(&self, name: &str, data: bool) -> Result<()> {
        DockerRuntime::remove_addon(self, name, data).await
    }

    async fn connect_addon(&self, name: &str, app: &str, alias: &str) -> Result<()> {
        DockerRuntime::connect_addon(self, name, app, alias).await
    }

    async fn disconnect_addon(&self, name: &str, app: &str) -> Result<()> {
        DockerRuntime::disconnect_addon(self, name, app).await
    }

    async fn addon_output_tail(&self, name: &str, lines: usize) -> Result<Vec<String>> {
        DockerRuntime::addon_output_tail(self, name, lines).await
    }

    async fn start_addon_client(&self, spec: &super::AddonClientSpec) -> Result<(super::DynoId, super::Attachment)> {
        DockerRuntime::start_addon_client(self, spec).await
    }

    async fn finish_addon_client(&self, id: &super::DynoId) -> Result<super::Exit> {
        DockerRuntime::finish_addon_client(self, id.as_str()).await
    }

    async fn resize_addon_client(&self, id: &super::DynoId, cols: u16, rows: u16) -> Result<()> {
        DockerRuntime::resize_tty(self, id.as_str(), cols, rows).await
    }

    async fn exec_in_addon(&self, name: &str, cmd: &[String], env: &std::collections::BTreeMap<String, String>) -> Result<(super::DynoId, super::Attachment)> {
        DockerRuntime::exec_in_addon(self, name, cmd, env).await
    }

    async fn finish_addon_exec(&self, id: &super::DynoId) -> Result<super::Exit> {
        DockerRuntime::finish_addon_exec(self, id.as_str()).await
    }
}

#[async_trait]
impl super::Runtime for DockerRuntime {
    async fn list_app(&self, app: &str) -> Result<(Vec<Dyno>, Vec<super::OneOff>)> {
        DockerRuntime::list_app(self, app).await
    }
}
