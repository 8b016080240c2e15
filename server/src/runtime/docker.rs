//! The local Docker backend. The only module in paas that talks to bollard
//! (and, for the one call bollard 0.18 cannot stream, to the engine's socket
//! directly: image builds, whose context can be hundreds of MB).

use super::{labels, Dyno, DynoAddress, DynoSpec, Runtime, TaskResult, TaskSpec, DYNO_PORT};
use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use bollard::container::{
    Config, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};
use bollard::container::{DownloadFromContainerOptions, LogOutput, LogsOptions, UploadToContainerOptions, WaitContainerOptions};
use bollard::image::{CommitContainerOptions, CreateImageOptions, RemoveImageOptions};
use bollard::models::{ContainerSummary, HostConfig, Mount, MountTypeEnum, PortBinding};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

mod spares;

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
    /// Web dynos are reached at their container address, not the published
    /// port (`PAAS_DYNO_ADDRESS`).
    via_container: bool,
    /// CPUs each dyno, one-off dyno and build may use (`PAAS_DYNO_CPUS`),
    /// in the engine's billionths of a CPU; None: no limit.
    nano_cpus: Option<i64>,
}

impl DockerRuntime {
    /// Limits every container this runtime starts (dynos, one-off dynos,
    /// build and release-phase containers, Dockerfile `RUN` steps) to
    /// `cpus` CPUs.
    pub fn limit_cpus(mut self, cpus: f64) -> Self {
        self.nano_cpus = Some((cpus * 1e9) as i64).filter(|n| *n > 0);
        self
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
                let rootless = info.security_options.unwrap_or_default().iter().any(|o| o.contains("rootless"));
                local && !rootless
            }
        };
        let me = Self {
            docker,
            host: host.map(str::to_owned),
            instance: instance.to_owned(),
            spares: Default::default(),
            via_container,
            nano_cpus: None,
        };
        // Spares of an earlier run of this server: never used, not known now.
        for c in me.labelled([format!("{}=1", spares::SPARE_LABEL)]).await.unwrap_or_default() {
            if let Some(id) = c.id {
                me.remove_now(&id).await;
            }
        }
        Ok(me)
    }

    /// Removes a container of ours that is not a dyno (a task's, a spare,
    /// a layer's, one that failed to start), whatever state it is in; a
    /// failure is only logged.
    async fn remove_now(&self, id: &str) {
        let options = RemoveContainerOptions { force: true, v: false, ..Default::default() };
        if let Err(e) = self.docker.remove_container(id, Some(options)).await {
            if !is_not_found(&e) {
                tracing::warn!(container = id, error = %e, "cannot remove a container");
            }
        }
    }

    /// [`Self::remove_now`] off the caller's path.
    fn remove_later(&self, id: &str) {
        let (me, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move { me.remove_now(&id).await });
    }

    fn instance_label(&self) -> String {
        format!("{}={}", labels::INSTANCE, self.instance)
    }

    /// The container as a dyno of `kind` (`dyno`, or `run` for one-off
    /// dynos); None for any other container.
    fn dyno_from_summary(&self, c: &ContainerSummary, kind: &str) -> Option<Dyno> {
        let l = c.labels.as_ref()?;
        // Every container paas makes says what it is, explicitly (images
        // may carry paas labels of their own, e.g. committed ones). Dynos
        // made before `paas.kind` existed have none and still count.
        let own = l.get(labels::KIND).map_or(super::KIND_DYNO, String::as_str);
        if own != kind {
            return None;
        }
        let port = c.ports.as_ref().and_then(|ports| {
            ports.iter().find(|p| p.private_port == DYNO_PORT && p.public_port.is_some())
                .and_then(|p| p.public_port)
        });
        let running = c.state.as_deref() == Some("running");
        let ip: Option<std::net::IpAddr> = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.values().find_map(|e| e.ip_address.as_deref()?.parse().ok()));
        let addr = port.filter(|_| running).map(|p| match ip {
            Some(ip) if self.via_container => SocketAddr::new(ip, DYNO_PORT),
            _ => SocketAddr::from(([127, 0, 0, 1], p)),
        });
        Some(Dyno {
            container_id: c.id.clone()?,
            app: l.get(labels::APP)?.clone(),
            release_id: l.get(labels::RELEASE)?.clone(),
            release_version: l.get(labels::VERSION)?.parse().ok()?,
            process_type: l.get(labels::PROCESS)?.clone(),
            index: l.get(labels::INDEX)?.parse().ok()?,
            running,
            state: c.state.clone().unwrap_or_default(),
            command: c.command.clone().unwrap_or_default(),
            addr,
            created: c.created.unwrap_or_default(),
            memory: l.get(labels::SIZE).and_then(|m| m.parse().ok()),
            ip,
        })
    }

    /// Every container of this instance (running or not) that carries all
    /// of `labels` (`key=value`, or `key` for any value).
    async fn labelled(&self, labels: impl IntoIterator<Item = String>) -> Result<Vec<ContainerSummary>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_owned(), std::iter::once(self.instance_label()).chain(labels).collect::<Vec<_>>());
        self.docker
            .list_containers(Some(ListContainersOptions { all: true, filters, ..Default::default() }))
            .await
            .context("cannot list containers")
    }

    /// One container as the engine lists it (labels, ports, state).
    async fn listed(&self, container_id: &str) -> Result<Vec<ContainerSummary>> {
        let mut filters = HashMap::new();
        filters.insert("id".to_owned(), vec![container_id.to_owned()]);
        Ok(self.docker.list_containers(Some(ListContainersOptions { all: true, filters, ..Default::default() })).await?)
    }

    async fn dyno(&self, container_id: &str) -> Result<Dyno> {
        self.listed(container_id)
            .await?
            .iter()
            .find_map(|c| self.dyno_from_summary(c, super::KIND_DYNO))
            .ok_or_else(|| anyhow!("container {container_id} vanished right after it started"))
    }
}

/// One frame of `docker logs --timestamps`: `2026-11-22T10:00:00.123456789Z text`.
fn parse_output_frame(message: &[u8], stderr: bool) -> Option<super::OutputLine> {
    let text = String::from_utf8_lossy(message);
    let (stamp, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    let at_ns = at.timestamp_nanos_opt()?;
    let rest = rest.strip_suffix('\n').unwrap_or(rest);
    let rest = rest.strip_suffix('\r').unwrap_or(rest);
    Some(super::OutputLine { at_ns, stderr, text: rest.to_owned() })
}

/// What every container paas starts gets: an init as PID 1 (it forwards
/// SIGTERM, so containers stop promptly), no privileges and no privilege
/// escalation, the capabilities apps do not need dropped, a pids limit and
/// a cap on its kept log. Callers add only ports, a network, a memory limit
/// or named volumes; app containers never get host mounts or the Docker
/// socket.
fn locked_down(host: HostConfig) -> HostConfig {
    let mut log = HashMap::new();
    log.insert("max-size".to_owned(), "10m".to_owned());
    log.insert("max-file".to_owned(), "3".to_owned());
    HostConfig {
        init: Some(true),
        privileged: Some(false),
        security_opt: Some(vec!["no-new-privileges".into()]),
        cap_drop: Some(super::DROPPED_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
        pids_limit: Some(super::PIDS_LIMIT),
        log_config: Some(bollard::models::HostConfigLogConfig { typ: Some("json-file".into()), config: Some(log) }),
        ..host
    }
}

impl DockerRuntime {
    /// Labels that override any `paas.*` label an image brings: a task or
    /// layer container never passes for a dyno of any app.
    fn not_a_dyno(&self, kind: &str) -> HashMap<String, String> {
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

    /// A dyno container's name and config: labels (all `paas.*` set
    /// explicitly, `kind` among them, plus `extra`), env, command, network,
    /// memory, and for a web dyno `$PORT` published on loopback.
    async fn dyno_config(&self, spec: &DynoSpec, kind: &str, extra: &[(&str, String)]) -> Result<(String, Config<String>)> {
        let name = format!(
            "paas-{}-{}.{}-v{}-{}",
            spec.app,
            spec.process_type,
            spec.index,
            spec.release_version,
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let network = self.ensure_network(&spec.app).await?;
        let labels: HashMap<String, String> = [
            (labels::INSTANCE, self.instance.clone()),
            (labels::KIND, kind.to_owned()),
            (labels::SIZE, spec.memory.map_or_else(String::new, |m| m.to_string())),
            (labels::APP, spec.app.clone()),
            (labels::RELEASE, spec.release_id.clone()),
            (labels::VERSION, spec.release_version.to_string()),
            (labels::PROCESS, spec.process_type.clone()),
            (labels::INDEX, spec.index.to_string()),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let port_key = format!("{DYNO_PORT}/tcp");
        let (exposed, bindings) = if spec.web {
            let mut exposed = HashMap::new();
            exposed.insert(port_key.clone(), HashMap::new());
            let mut bindings = HashMap::new();
            // Published on loopback only, on a port Docker picks: the router
            // is the only way in from outside.
            bindings.insert(
                port_key,
                Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]),
            );
            (Some(exposed), Some(bindings))
        } else {
            (None, None)
        };
        let cmd = (!spec.command.is_empty())
            .then(|| vec!["/bin/sh".to_owned(), "-c".to_owned(), spec.command.clone()]);
        let config = Config {
            image: Some(spec.image.clone()),
            cmd,
            env: Some(env),
            labels: Some(labels),
            exposed_ports: exposed,
            host_config: Some(locked_down(HostConfig {
                port_bindings: bindings,
                network_mode: Some(network),
                memory: spec.memory,
                // No swap beyond the limit: the limit is the limit.
                memory_swap: spec.memory,
                nano_cpus: self.nano_cpus,
                ..Default::default()
            })),
            ..Default::default()
        };
        Ok((name, config))
    }

    /// Creates a container; returns its id.
    async fn create(&self, name: &str, config: Config<String>, what: &str) -> Result<String> {
        let created = self
            .docker
            .create_container(Some(CreateContainerOptions { name, platform: None }), config)
            .await
            .with_context(|| format!("cannot create container for {what}"))?;
        Ok(created.id)
    }

    /// Starts a created container; one that cannot start is removed.
    async fn start_created(&self, id: &str, what: &str) -> Result<()> {
        if let Err(e) = self.docker.start_container::<String>(id, None).await {
            self.remove_now(id).await;
            return Err(anyhow!(e).context(format!("cannot start {what}")));
        }
        Ok(())
    }

    /// The app's own bridge network: its dynos reach each other and the
    /// internet, but no other app's dynos.
    fn network_name(&self, app: &str) -> String {
        format!("paas-{}-{app}", self.instance.chars().take(8).collect::<String>())
    }

    /// Creates the app's network when missing. Idempotent, and safe when two
    /// dynos start at once.
    async fn ensure_network(&self, app: &str) -> Result<String> {
        let name = self.network_name(app);
        if self.docker.inspect_network::<String>(&name, None).await.is_ok() {
            return Ok(name);
        }
        let mut net_labels = HashMap::new();
        net_labels.insert(labels::INSTANCE.to_owned(), self.instance.clone());
        net_labels.insert(labels::APP.to_owned(), app.to_owned());
        let options = bollard::network::CreateNetworkOptions {
            name: name.clone(),
            driver: "bridge".to_owned(),
            check_duplicate: true,
            labels: net_labels,
            ..Default::default()
        };
        match self.docker.create_network(options).await {
            Ok(_) => Ok(name),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => Ok(name),
            Err(e) => Err(anyhow!(e).context(format!("cannot create the network of {app}"))),
        }
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn list_dynos(&self, app: Option<&str>) -> Result<Vec<Dyno>> {
        let label = match app {
            Some(app) => format!("{}={app}", labels::APP),
            None => labels::APP.to_owned(),
        };
        let list = self.labelled([label]).await?;
        Ok(list.iter().filter_map(|c| self.dyno_from_summary(c, super::KIND_DYNO)).collect())
    }

    async fn start_dyno(&self, spec: &DynoSpec) -> Result<Dyno> {
        let (name, config) = self.dyno_config(spec, super::KIND_DYNO, &[]).await?;
        let what = format!("{}.{}", spec.process_type, spec.index);
        let id = self.create(&name, config, &what).await?;
        self.start_created(&id, &what).await?;
        self.dyno(&id).await
    }

    async fn halt_dyno(&self, container_id: &str, grace: Duration) -> Result<()> {
        let t = grace.as_secs().try_into().unwrap_or(i64::MAX);
        match self.docker.stop_container(container_id, Some(StopContainerOptions { t })).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot stop container {container_id}"))),
        }
    }

    async fn stop_dyno(&self, container_id: &str, grace: Duration) -> Result<()> {
        self.halt_dyno(container_id, grace).await?;
        match self
            .docker
            .remove_container(container_id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove container {container_id}"))),
        }
    }

    async fn build_image(
        &self,
        context: &Path,
        tag: &str,
        args: &std::collections::BTreeMap<String, String>,
        limits: super::BuildLimits,
        output: &mpsc::Sender<String>,
    ) -> Result<String> {
        match tokio::time::timeout(limits.timeout, self.build_streamed(context, tag, args, limits.memory, output)).await {
            Ok(built) => built,
            // Dropping the request closes the connection, which cancels the
            // engine's build.
            Err(_) => Err(anyhow!(
                "the build took longer than {} s, the build timeout: make it faster, or raise PAAS_BUILD_TIMEOUT_SECONDS on the server",
                limits.timeout.as_secs()
            )),
        }
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        match self
            .docker
            .remove_image(image, Some(RemoveImageOptions { force: true, noprune: false }), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove image {image}"))),
        }
    }

    async fn image_exists(&self, image: &str) -> Result<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(anyhow!(e).context(format!("cannot inspect image {image}"))),
        }
    }

    async fn import_rootfs(&self, rootfs: Vec<u8>, tag: &str) -> Result<()> {
        let (repo, tag) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
        let options = CreateImageOptions { from_src: "-", repo, tag, ..Default::default() };
        let mut stream = self.docker.create_image(Some(options), Some(rootfs.into()), None);
        while let Some(item) = stream.next().await {
            let info = item.context("docker import failed")?;
            if let Some(err) = info.error {
                return Err(anyhow!("docker import failed: {err}"));
            }
        }
        Ok(())
    }

    fn prepare_task(&self, spec: &TaskSpec) {
        if spec.spare {
            self.prepare_spare(spec);
        }
    }

    async fn remove_spares(&self) {
        self.remove_all_spares().await;
    }

    async fn run_task(&self, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Result<TaskResult> {
        let spare = if spec.spare { self.take_running_spare(spec).await } else { None };
        let in_spare = match spare {
            Some(id) => match self.run_in_spare(&id, spec, output).await {
                Some(result) => Some((id, result)),
                None => {
                    self.remove_now(&id).await;
                    None
                }
            },
            None => None,
        };
        let (id, result) = match in_spare {
            Some(ran) => ran,
            None => {
                let name = format!("paas-task-{}-{}", spec.name, &uuid::Uuid::new_v4().simple().to_string()[..8]);
                let extra: &[(&str, &str)] = if spec.spare { &[(spares::SPARE_LABEL, "1")] } else { &[] };
                let created = self
                    .docker
                    .create_container(Some(CreateContainerOptions { name: name.as_str(), platform: None }), self.task_config(spec, extra))
                    .await
                    .with_context(|| format!("cannot create the {} container from {}", spec.name, spec.image))?;
                let result = self.run_created_task(&created.id, spec, output).await;
                (created.id, result)
            }
        };
        // A successful build's container goes after the deploy; any other
        // goes now, before its caller answers (a failed push then leaves
        // nothing behind).
        match &result {
            Ok(r) if r.exit_code == 0 && spec.spare => self.retire(spec, &id),
            _ => self.remove_now(&id).await,
        }
        result
    }

    async fn image_label(&self, image: &str, label: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.config.and_then(|c| c.labels).and_then(|mut l| l.remove(label))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot inspect image {image}"))),
        }
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot inspect image {image}"))),
        }
    }

    async fn image_from_files(&self, base: &str, tar: &Path, tag: &str, label: Option<(&str, &str)>) -> Result<String> {
        let name = format!("paas-layer-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let config =
            Config::<String> { image: Some(base.to_owned()), labels: Some(self.not_a_dyno("layer")), ..Default::default() };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptions { name: name.as_str(), platform: None }), config)
            .await
            .with_context(|| format!("cannot create a container from {base}"))?;
        let result = async {
            self.docker
                .upload_to_container_streaming(
                    &created.id,
                    Some(UploadToContainerOptions { path: "/", ..Default::default() }),
                    file_stream(tar).await?,
                )
                .await
                .context("cannot copy the built app into the image")?;
            let (repo, tag) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
            let options = CommitContainerOptions { container: created.id.as_str(), repo, tag, pause: false, ..Default::default() };
            // Fields left unset keep the base image's entrypoint, env and
            // workdir; the labels are only ours.
            let config = Config::<String> {
                labels: label.map(|(k, v)| HashMap::from([(k.to_owned(), v.to_owned())])),
                ..Default::default()
            };
            self.docker.commit_container(options, config).await.context("cannot commit the release image")?;
            // bollard 0.18 reads the commit answer's `Id` into a model that
            // expects `ID`: ask for the image instead.
            let image = self.docker.inspect_image(&format!("{repo}:{tag}")).await.context("the commit made no image")?;
            image.id.ok_or_else(|| anyhow!("the committed image has no ID"))
        }
        .await;
        self.remove_now(&created.id).await;
        result
    }

    async fn remove_app_network(&self, app: &str) -> Result<()> {
        match self.docker.remove_network(&self.network_name(app)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove the network of {app}"))),
        }
    }

    async fn prune_networks(&self, apps: &std::collections::HashSet<&str>) -> Result<()> {
        let mut filters = HashMap::new();
        filters.insert("label".to_owned(), vec![self.instance_label(), labels::APP.to_owned()]);
        let networks = self
            .docker
            .list_networks(Some(bollard::network::ListNetworksOptions { filters }))
            .await
            .context("cannot list networks")?;
        for net in networks {
            let app = net.labels.as_ref().and_then(|l| l.get(labels::APP)).cloned().unwrap_or_default();
            if let (false, Some(name)) = (apps.contains(app.as_str()), net.name) {
                // In use (a dyno still stopping): a later pass removes it.
                let _ = self.docker.remove_network(&name).await;
            }
        }
        Ok(())
    }

    async fn exit_of(&self, container_id: &str) -> Result<(bool, super::Exit)> {
        let c = self.docker.inspect_container(container_id, None).await.context("cannot inspect the dyno")?;
        let state = c.state.unwrap_or_default();
        let exit = super::Exit {
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.filter(|e| !e.is_empty()),
        };
        Ok((state.running.unwrap_or(false), exit))
    }

    async fn output_tail(&self, container_id: &str, lines: usize) -> Result<Vec<String>> {
        let mut logs = self.docker.logs(
            container_id,
            Some(LogsOptions::<String> { stdout: true, stderr: true, tail: lines.to_string(), ..Default::default() }),
        );
        let mut text = Vec::new();
        while let Some(chunk) = logs.next().await {
            match chunk {
                Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                    text.extend_from_slice(&message)
                }
                Ok(_) => {}
                Err(e) => return Err(anyhow!(e).context("cannot read the dyno's output")),
            }
        }
        let text = String::from_utf8_lossy(&text);
        let all: Vec<String> = text.lines().map(str::to_owned).collect();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }

    fn follow_output(&self, container_id: &str, since: i64) -> mpsc::Receiver<Result<super::OutputLine>> {
        let (tx, rx) = mpsc::channel(1024);
        let docker = self.docker.clone();
        let id = container_id.to_owned();
        tokio::spawn(async move {
            let options = LogsOptions::<String> {
                follow: true,
                stdout: true,
                stderr: true,
                timestamps: true,
                since,
                tail: "all".into(),
                ..Default::default()
            };
            let mut logs = docker.logs(&id, Some(options));
            // The engine splits lines over 16 KiB into frames; a frame that
            // does not end in a newline continues in the next.
            let mut partial: Option<super::OutputLine> = None;
            while let Some(frame) = logs.next().await {
                let (stderr, message) = match frame {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => (false, message),
                    Ok(LogOutput::StdErr { message }) => (true, message),
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow!(e).context("the dyno's output stream broke"))).await;
                        return;
                    }
                };
                let Some(line) = parse_output_frame(&message, stderr) else { continue };
                let ends = message.ends_with(b"\n");
                let line = match partial.take() {
                    Some(mut head) => {
                        head.text.push_str(&line.text);
                        head
                    }
                    None => line,
                };
                if !ends {
                    partial = Some(line);
                    continue;
                }
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
            if let Some(line) = partial {
                let _ = tx.send(Ok(line)).await;
            }
        });
        rx
    }

    fn watch_exits(&self) -> mpsc::Receiver<(String, String)> {
        let (tx, rx) = mpsc::channel(256);
        let docker = self.docker.clone();
        let instance = self.instance_label();
        tokio::spawn(async move {
            while !tx.is_closed() {
                let mut filters = HashMap::new();
                filters.insert("type".to_owned(), vec!["container".to_owned()]);
                filters.insert("event".to_owned(), vec!["die".to_owned()]);
                filters.insert("label".to_owned(), vec![instance.clone(), labels::APP.to_owned()]);
                let mut events = docker.events(Some(bollard::system::EventsOptions::<String> { filters, ..Default::default() }));
                while let Some(event) = events.next().await {
                    let event = match event {
                        Ok(event) => event,
                        Err(e) => {
                            tracing::warn!(error = %e, "the engine's event stream broke; reconnecting");
                            break;
                        }
                    };
                    let Some(actor) = event.actor else { continue };
                    let app = actor.attributes.and_then(|mut a| a.remove(labels::APP));
                    if let (Some(app), Some(id)) = (app, actor.id) {
                        if tx.send((app, id)).await.is_err() {
                            return;
                        }
                    }
                }
                // The engine went away (a restart): try again shortly.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        rx
    }

    async fn start_one_off(&self, spec: &super::OneOffSpec) -> Result<(super::OneOff, Option<super::Attachment>)> {
        let d = &spec.dyno;
        let extra = [
            (labels::COMMAND, d.command.clone()),
            (labels::SESSION, spec.session.clone().unwrap_or_default()),
            (labels::EXPIRES, spec.expires_at.to_string()),
        ];
        let (name, mut config) = self.dyno_config(d, super::KIND_RUN, &extra).await?;
        let attached = spec.session.is_some();
        config.tty = Some(spec.tty.is_some());
        config.open_stdin = Some(attached);
        config.stdin_once = Some(attached);
        config.attach_stdin = Some(attached);
        config.attach_stdout = Some(attached);
        config.attach_stderr = Some(attached);
        let what = format!("{}.{}", d.process_type, d.index);
        let id = self.create(&name, config, &what).await?;
        let attachment = if attached {
            match self.attach(&id, spec.tty.is_some()).await {
                Ok(a) => Some(a),
                Err(e) => {
                    let _ = self.stop_dyno(&id, Duration::ZERO).await;
                    return Err(e);
                }
            }
        } else {
            None
        };
        self.start_created(&id, &what).await?;
        if let Some((cols, rows)) = spec.tty {
            // The engine (API 1.41) takes a size only once the process
            // runs, as `docker run -t` does it.
            if let Err(e) = self.resize_tty(&id, cols, rows).await {
                tracing::debug!(error = %format!("{e:#}"), "cannot size the terminal");
            }
        }
        let one_off = self
            .listed(&id)
            .await?
            .iter()
            .find_map(|c| self.one_off_from_summary(c))
            .ok_or_else(|| anyhow!("one-off dyno {what} vanished right after it started"))?;
        Ok((one_off, attachment))
    }

    async fn list_app(&self, app: &str) -> Result<(Vec<Dyno>, Vec<super::OneOff>)> {
        let list = self.labelled([format!("{}={app}", labels::APP)]).await?;
        let dynos = list.iter().filter_map(|c| self.dyno_from_summary(c, super::KIND_DYNO)).collect();
        Ok((dynos, list.iter().filter_map(|c| self.one_off_from_summary(c)).collect()))
    }

    async fn list_one_offs(&self, app: Option<&str>) -> Result<Vec<super::OneOff>> {
        let kind = format!("{}={}", labels::KIND, super::KIND_RUN);
        let list = self.labelled(std::iter::once(kind).chain(app.map(|app| format!("{}={app}", labels::APP)))).await?;
        Ok(list.iter().filter_map(|c| self.one_off_from_summary(c)).collect())
    }

    async fn resize_tty(&self, container_id: &str, cols: u16, rows: u16) -> Result<()> {
        let size = bollard::container::ResizeContainerTtyOptions { width: cols, height: rows };
        self.docker.resize_container_tty(container_id, size).await.context("cannot resize the terminal")
    }

    async fn signal(&self, container_id: &str, signal: &str) -> Result<()> {
        let options = bollard::container::KillContainerOptions { signal: format!("SIG{signal}") };
        match self.docker.kill_container(container_id, Some(options)).await {
            Ok(()) => Ok(()),
            // Not running (409) or gone (404): nothing to signal.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. }) => Ok(()),
            Err(e) => Err(anyhow!(e).context("cannot signal the process")),
        }
    }

    async fn wait_exit(&self, container_id: &str) -> Result<super::Exit> {
        let mut wait = self.docker.wait_container(container_id, None::<WaitContainerOptions<String>>);
        match wait.next().await {
            Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {}
            Some(Err(e)) if is_not_found(&e) => anyhow::bail!("the container is gone"),
            Some(Err(e)) => return Err(anyhow!(e).context("cannot wait for the container")),
            None => {}
        }
        Ok(self.exit_of(container_id).await?.1)
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.drop_spares_of(name).await;
        match self.docker.remove_volume(name, None).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove volume {name}"))),
        }
    }
}

impl DockerRuntime {
    /// The container a task runs in; `extra` labels on top of the task's.
    fn task_config(&self, spec: &TaskSpec, extra: &[(&str, &str)]) -> Config<String> {
        let mut mounts: Vec<Mount> = spec
            .volumes
            .iter()
            .map(|(volume, target)| Mount {
                typ: Some(MountTypeEnum::VOLUME),
                source: Some(volume.clone()),
                target: Some(target.clone()),
                ..Default::default()
            })
            .collect();
        if let Some((host, target)) = &spec.ca_bundle {
            mounts.push(Mount {
                typ: Some(MountTypeEnum::BIND),
                source: Some(host.display().to_string()),
                target: Some(target.clone()),
                read_only: Some(true),
                ..Default::default()
            });
        }
        let mut task_labels = HashMap::new();
        task_labels.insert("paas.task".to_owned(), spec.name.clone());
        task_labels.extend(self.not_a_dyno("task"));
        task_labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let host = locked_down(HostConfig {
            mounts: Some(mounts),
            memory: spec.memory,
            memory_swap: spec.memory,
            nano_cpus: if spec.platform_step { None } else { self.nano_cpus },
            ..Default::default()
        });
        Config {
            image: Some(spec.image.clone()),
            cmd: Some(spec.cmd.clone()),
            env: Some(task_env(spec)),
            labels: Some(task_labels),
            host_config: Some(if spec.platform_step { HostConfig { cap_drop: None, ..host } } else { host }),
            ..Default::default()
        }
    }

    async fn upload_task_files(&self, id: &str, spec: &TaskSpec) -> Result<()> {
        if let Some(tar) = &spec.upload {
            self.docker
                .upload_to_container_streaming(
                    id,
                    Some(UploadToContainerOptions { path: "/", ..Default::default() }),
                    file_stream(tar).await?,
                )
                .await
                .context("cannot copy files into the task container")?;
        }
        Ok(())
    }

    /// Copies each of the task's `download` paths out of the container.
    async fn download_task_files(&self, id: &str, spec: &TaskSpec) -> Result<()> {
        let mut copied = 0u64;
        for (path, host_file) in &spec.download {
            let mut stream = self.docker.download_from_container(id, Some(DownloadFromContainerOptions { path: path.as_str() }));
            let mut file =
                tokio::fs::File::create(host_file).await.with_context(|| format!("cannot create {}", host_file.display()))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.with_context(|| format!("cannot copy {path} out of the task container"))?;
                copied += chunk.len() as u64;
                if let Some(limit) = spec.download_limit.filter(|l| copied > *l) {
                    drop(file);
                    let _ = tokio::fs::remove_file(host_file).await;
                    return Err(super::OutputTooLarge(limit).into());
                }
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
        }
        Ok(())
    }

    /// Runs the task in a started spare: its files go in, its command runs
    /// with `exec`, its output and exit code come back as a fresh
    /// container's would. None when the spare could not take the task
    /// (it stopped since it was checked): nothing of the task ran, so a
    /// fresh container can run it instead.
    async fn run_in_spare(&self, id: &str, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Option<Result<TaskResult>> {
        let since = unix_now();
        let started = async {
            self.upload_task_files(id, spec).await?;
            let options = bollard::exec::CreateExecOptions::<String> {
                cmd: Some(spec.cmd.clone()),
                env: Some(task_env(spec)),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            };
            let exec = self.docker.create_exec(id, options).await?;
            let attached = self.docker.start_exec(&exec.id, None).await?;
            Ok::<_, anyhow::Error>((exec, attached))
        };
        let (exec, attached) = match started.await {
            Ok(started) => started,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "a spare build container could not take the build: using a fresh one");
                return None;
            }
        };
        Some(self.finish_in_spare(id, spec, output, since, exec.id, attached).await)
    }

    async fn finish_in_spare(
        &self,
        id: &str,
        spec: &TaskSpec,
        output: &mpsc::Sender<String>,
        since: f64,
        exec: String,
        attached: bollard::exec::StartExecResults,
    ) -> Result<TaskResult> {
        let run = async {
            match attached {
                bollard::exec::StartExecResults::Attached { output: stream, .. } => forward_lines(stream, output).await,
                bollard::exec::StartExecResults::Detached => anyhow::bail!("the engine ran {} detached", spec.name),
            }
            let inspect = self.docker.inspect_exec(&exec).await.with_context(|| format!("cannot read how {} ended", spec.name))?;
            Ok::<_, anyhow::Error>(inspect.exit_code.unwrap_or(-1))
        };
        let exit_code = within_timeout(spec, run).await?;
        if exit_code == 0 {
            self.download_task_files(id, spec).await?;
        }
        // The engine marks a container, not an exec, as killed for memory:
        // ask its event log whether the container's memory ran out (the
        // process killed may be a child, the exit then any non-zero code).
        let oom_killed = exit_code != 0 && self.had_oom(id, since).await;
        Ok(TaskResult { exit_code, oom_killed })
    }

    /// Whether the engine logged an out-of-memory kill in the container
    /// since `since` (Unix seconds); waits up to a second for a late event
    /// (the engine may log it after the exec's exit under load), so a
    /// failed build in a spare reports a second later.
    async fn had_oom(&self, id: &str, since: f64) -> bool {
        let mut filters = HashMap::new();
        filters.insert("container".to_owned(), vec![id.to_owned()]);
        filters.insert("event".to_owned(), vec!["oom".to_owned()]);
        let options = bollard::system::EventsOptions::<String> {
            since: Some(format!("{since:.6}")),
            until: Some(format!("{:.6}", unix_now() + 1.0)),
            filters,
        };
        let mut events = self.docker.events(Some(options));
        matches!(tokio::time::timeout(Duration::from_secs(3), events.next()).await, Ok(Some(Ok(_))))
    }

    async fn run_created_task(&self, id: &str, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Result<TaskResult> {
        self.upload_task_files(id, spec).await?;
        // Attached before it starts, so all its output comes over the
        // connection: followed from the log files instead, a build printing
        // more than their cap lost lines to the files' rotation.
        let attached = self
            .docker
            .attach_container(
                id,
                Some(bollard::container::AttachContainerOptions::<String> {
                    stdout: Some(true),
                    stderr: Some(true),
                    stream: Some(true),
                    logs: Some(true),
                    ..Default::default()
                }),
            )
            .await
            .context("cannot attach to the task container")?;
        self.docker.start_container::<String>(id, None).await.context("cannot start the task container")?;
        let follow = async {
            forward_lines(attached.output, output).await;
            let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions<String>>);
            match wait.next().await {
                Some(Ok(r)) => Ok(r.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(e)) => Err(anyhow!(e).context("cannot wait for the task container")),
                None => Err(anyhow!("the task container vanished")),
            }
        };
        let exit_code = within_timeout(spec, follow).await?;
        if exit_code == 0 {
            self.download_task_files(id, spec).await?;
            if let Some(c) = &spec.commit {
                let (repo, tag) = c.tag.rsplit_once(':').unwrap_or((c.tag.as_str(), "latest"));
                let options = CommitContainerOptions { container: id, repo, tag, pause: false, ..Default::default() };
                let config = Config::<String> {
                    entrypoint: c.entrypoint.clone(),
                    working_dir: c.working_dir.clone(),
                    env: Some(c.env.clone()),
                    cmd: Some(Vec::new()),
                    ..Default::default()
                };
                self.docker.commit_container(options, config).await.context("cannot commit the stack image")?;
            }
        }
        let oom_killed = exit_code != 0
            && self.docker.inspect_container(id, None).await.ok().and_then(|c| c.state?.oom_killed).unwrap_or(false);
        Ok(TaskResult { exit_code, oom_killed })
    }
}

/// A task's run (to its exit code), cut off at the task's timeout.
async fn within_timeout(spec: &TaskSpec, run: impl std::future::Future<Output = Result<i64>>) -> Result<i64> {
    match spec.timeout {
        Some(t) => match tokio::time::timeout(t, run).await {
            Ok(r) => r,
            Err(_) => anyhow::bail!("{} took longer than {} s and was stopped", spec.name, t.as_secs()),
        },
        None => run.await,
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn task_env(spec: &TaskSpec) -> Vec<String> {
    spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Percent-encodes a query parameter's value (RFC 3986 unreserved kept).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The largest message of the engine's build stream held while it has
/// not ended.
const MAX_ENGINE_MESSAGE: usize = 4 << 20;

/// Sends a container's output (logs or an exec's stream) on as lines,
/// skipping blank ones; `\r` ends a line too (progress bars); long lines
/// are cut ([`super::LineSplitter`]).
async fn forward_lines<S>(mut stream: S, output: &mpsc::Sender<String>)
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut lines = super::LineSplitter::default();
    while let Some(chunk) = stream.next().await {
        let bytes = match chunk {
            Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message }) => message,
            Ok(_) => continue,
            Err(_) => break,
        };
        for line in lines.push(&bytes) {
            let _ = output.send(line).await;
        }
    }
    if let Some(line) = lines.finish() {
        let _ = output.send(line).await;
    }
}

/// A file as a stream of chunks, for bollard's streamed uploads. A read
/// error ends the stream early, which the engine reports as a bad tar.
async fn file_stream(path: &Path) -> Result<impl futures_util::Stream<Item = bytes::Bytes> + Send + 'static> {
    let file = tokio::fs::File::open(path).await.with_context(|| format!("cannot open {}", path.display()))?;
    let chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    Ok(tokio_stream::StreamExt::map_while(chunks, |chunk| match chunk {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a file being uploaded to the engine");
            None
        }
    }))
}

impl DockerRuntime {
    async fn build_streamed(
        &self,
        context: &Path,
        tag: &str,
        args: &std::collections::BTreeMap<String, String>,
        memory: Option<i64>,
        output: &mpsc::Sender<String>,
    ) -> Result<String> {
        let mut body = self.post_build(context, tag, args, memory).await?;
        let mut pending = Vec::new();
        let mut lines = super::LineSplitter::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the build's answer ended early")?;
            let Ok(data) = frame.into_data() else { continue };
            pending.extend_from_slice(&data);
            // The engine sends output in messages of a few KiB; one that
            // does not end is not the engine's.
            if pending.len() > MAX_ENGINE_MESSAGE && !pending.contains(&b'\n') {
                return Err(anyhow!("the Docker engine sent a build message over {} MiB", MAX_ENGINE_MESSAGE >> 20));
            }
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let info: bollard::models::BuildInfo =
                    serde_json::from_slice(&line).context("the engine answered the build with unexpected JSON")?;
                if let Some(err) = info.error {
                    return Err(anyhow!("{}", err.trim_end()));
                }
                if let Some(text) = info.stream {
                    for line in lines.push(text.as_bytes()) {
                        let _ = output.send(line.trim_end().to_owned()).await;
                    }
                }
            }
        }
        if let Some(line) = lines.finish() {
            let _ = output.send(line.trim_end().to_owned()).await;
        }
        let image = self.docker.inspect_image(tag).await.context("the build produced no image")?;
        image.id.ok_or_else(|| anyhow!("the built image has no ID"))
    }

    /// `POST /build` with the context file streamed as the body. bollard
    /// 0.18's `build_image` takes the whole context as one buffer, so this
    /// speaks HTTP to the engine's socket itself (hyper, one connection).
    async fn post_build(
        &self,
        context: &Path,
        tag: &str,
        args: &std::collections::BTreeMap<String, String>,
        memory: Option<i64>,
    ) -> Result<hyper::body::Incoming> {
        let version = self.docker.client_version();
        let mut query = format!(
            "t={}&rm=1&forcerm=1&dockerfile=Dockerfile",
            tag.replace(':', "%3A").replace('/', "%2F")
        );
        if let Some(m) = memory {
            // Each RUN step's container gets the limit, without swap.
            query.push_str(&format!("&memory={m}&memswap={m}"));
        }
        if !args.is_empty() {
            let json = serde_json::to_string(args).context("build arguments")?;
            query.push_str("&buildargs=");
            query.push_str(&url_encode(&json));
        }
        if let Some(n) = self.nano_cpus {
            // The classic builder takes CPU limits as a CFS quota per period.
            query.push_str(&format!("&cpuperiod=100000&cpuquota={}", (n / 10_000).max(1000)));
        }
        let uri = format!("/v{}.{}/build?{query}", version.major_version, version.minor_version);
        let file = tokio::fs::File::open(context).await.with_context(|| format!("cannot open {}", context.display()))?;
        let frames = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .map(|chunk| chunk.map(hyper::body::Frame::data));
        let body = http_body_util::StreamBody::new(frames);
        let request = hyper::Request::post(uri)
            .header(hyper::header::HOST, "docker")
            .header(hyper::header::CONTENT_TYPE, "application/x-tar")
            .body(body)
            .context("cannot make the build request")?;
        let response = self.engine_request(request).await.context("the Docker engine did not take the build")?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let message = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&text).into_owned());
            anyhow::bail!("docker build failed ({status}): {}", message.trim());
        }
        Ok(response.into_body())
    }
}

/// A connection to the engine's socket, whichever kind `DOCKER_HOST` names.
trait EngineIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> EngineIo for T {}

impl DockerRuntime {
    /// Sends one request to the engine on a connection of its own (hyper),
    /// for what bollard 0.18 cannot do: a streamed build context, an attach
    /// whose stdin can be half-closed. The connection allows upgrades.
    async fn engine_request<B>(&self, request: hyper::Request<B>) -> Result<hyper::Response<hyper::body::Incoming>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use hyper_util::rt::TokioIo;
        let host = self.host.as_deref().unwrap_or("unix:///var/run/docker.sock");
        let io: Box<dyn EngineIo> = if let Some(path) = host.strip_prefix("unix://") {
            Box::new(tokio::net::UnixStream::connect(path).await.with_context(|| format!("cannot reach the Docker engine at {path}"))?)
        } else if let Some(addr) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
            Box::new(tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot reach the Docker engine at {addr}"))?)
        } else {
            anyhow::bail!("DOCKER_HOST {host} is not unix:// or tcp://");
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .context("cannot talk HTTP to the Docker engine")?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "engine connection ended");
            }
        });
        Ok(sender.send_request(request).await?)
    }

    /// The API path with the negotiated version: `/v1.41/...`.
    fn api_path(&self, path: &str) -> String {
        let version = self.docker.client_version();
        format!("/v{}.{}{path}", version.major_version, version.minor_version)
    }

    /// Attaches to a created container's stdin, stdout and stderr (`POST
    /// /containers/ID/attach`, upgraded to a raw stream). Shutting the input
    /// down half-closes the connection, which the engine passes on as the
    /// end of the process's stdin. Without a TTY the output is multiplexed
    /// (an 8-byte header per frame: stream, 0, 0, 0, length); with one it
    /// is the terminal's bytes as they come.
    async fn attach(&self, id: &str, tty: bool) -> Result<super::Attachment> {
        let uri = self.api_path(&format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1"));
        let request = hyper::Request::post(uri)
            .header(hyper::header::HOST, "docker")
            .header(hyper::header::CONNECTION, "Upgrade")
            .header(hyper::header::UPGRADE, "tcp")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .context("cannot make the attach request")?;
        let response = self.engine_request(request).await.context("cannot attach to the one-off dyno")?;
        if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS && !response.status().is_success() {
            anyhow::bail!("the Docker engine refused to attach ({})", response.status());
        }
        let upgraded = hyper::upgrade::on(response).await.context("the engine did not hand over the attach stream")?;
        let (mut read, write) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
            loop {
                if tty {
                    buf.reserve(64 * 1024);
                    match read.read_buf(&mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {
                            let data = buf.split().freeze();
                            if tx.send(Ok(super::OutputChunk { stderr: false, data })).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(anyhow!(e).context("the attach stream broke"))).await;
                            break;
                        }
                    }
                    continue;
                }
                let mut header = [0u8; 8];
                match read.read_exact(&mut header).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow!(e).context("the attach stream broke"))).await;
                        break;
                    }
                }
                let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
                let mut data = vec![0u8; len];
                if let Err(e) = read.read_exact(&mut data).await {
                    let _ = tx.send(Err(anyhow!(e).context("the attach stream broke"))).await;
                    break;
                }
                let chunk = super::OutputChunk { stderr: header[0] == 2, data: data.into() };
                if tx.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
        });
        Ok(super::Attachment { input: Box::pin(write), output: rx })
    }

    fn one_off_from_summary(&self, c: &ContainerSummary) -> Option<super::OneOff> {
        let dyno = self.dyno_from_summary(c, super::KIND_RUN)?;
        let l = c.labels.as_ref()?;
        Some(super::OneOff {
            dyno,
            command: l.get(labels::COMMAND).cloned().unwrap_or_default(),
            session: l.get(labels::SESSION).filter(|s| !s.is_empty()).cloned(),
            expires_at: l.get(labels::EXPIRES).and_then(|e| e.parse().ok()).unwrap_or(i64::MAX),
        })
    }
}
