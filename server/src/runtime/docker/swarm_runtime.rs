//! The swarm backend (`PAAS_RUNTIME=swarm`): dynos across the nodes of a
//! Docker Swarm, through the manager's API only (`DOCKER_HOST` is the
//! manager; paas never reaches a worker's engine).
//!
//! - Images are built on the manager, as on one engine, then pushed to
//!   the registry every node pulls from (`PAAS_REGISTRY`), once per image,
//!   and dynos run them by digest: a rollback or a redeploy runs exactly
//!   that image on every node.
//! - A dyno is one single-replica service that Swarm never restarts (see
//!   `swarm.rs`); paas places it: the ready, active node within the
//!   constraints with the fewest dynos of the app's process type (not
//!   counting the one of the same number it replaces; then the fewest of
//!   the app, then of all), pinned by `node.id`. Swarm's own spread counts
//!   every task on a node, whoever's, so it would put two web dynos of an
//!   app on one node while a third node has none.
//! - A web dyno is reached at its node's address and the port the engine
//!   published for it in host mode.
//! - Output is followed through the manager (`swarm_follow`).
//! - One-off dynos are containers on the manager's engine, attached to the
//!   app's attachable overlay: TTY, signals and attach as on one engine.

use super::swarm::NodeSeen;
use super::DockerRuntime;
use crate::runtime::{
    Attachment, BuildLimits, Dyno, DynoId, DynoSpec, Exit, ImageBuilder, Node, OneOff, OneOffAttach, OneOffSpec, OutputFollower, OutputLine,
    Placement, RegistryAuth, Runtime, TaskResult, TaskSpec,
};
use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the swarm backend is told (`PAAS_REGISTRY`, `PAAS_NODE_CONSTRAINTS`, ...).
#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// `HOST:PORT` of the registry every node pulls release images from.
    pub registry: String,
    pub auth: Option<RegistryAuth>,
    /// Placement constraints every dyno keeps to.
    pub constraints: Vec<String>,
    /// SIGTERM-to-SIGKILL grace of a dyno's task.
    pub stop_grace: Duration,
    /// How long a new dyno may take to be placed, pulled and started.
    pub start_timeout: Duration,
}

#[derive(Clone)]
pub struct SwarmRuntime {
    engine: DockerRuntime,
    settings: Arc<SwarmSettings>,
    /// A local image's id -> that image in the registry, by digest.
    pinned: Arc<tokio::sync::Mutex<HashMap<String, String>>>,
    /// A local image's id -> its own command, when it has a `/bin/sh` to
    /// watch it under (`own_command_under_sh`).
    own_commands: Arc<tokio::sync::Mutex<HashMap<String, Option<Vec<String>>>>>,
    /// Held while a dyno's node is chosen and its service made, so dynos
    /// started at once each see the others' choices.
    placing: Arc<tokio::sync::Mutex<()>>,
    /// Service id -> the node (host name) it was placed on, for services
    /// whose task the manager has not assigned yet.
    placed: Arc<std::sync::Mutex<HashMap<String, String>>>,
}

impl SwarmRuntime {
    /// The swarm backend over `engine`, which must be a swarm manager.
    pub async fn connect(engine: DockerRuntime, settings: SwarmSettings) -> Result<Self> {
        for c in &settings.constraints {
            Constraint::parse(c).map_err(|e| anyhow!("PAAS_NODE_CONSTRAINTS: {e}"))?;
        }
        let info = engine.docker.info().await.context("cannot ask the Docker engine what it is")?;
        let manager = info.swarm.as_ref().and_then(|s| s.control_available).unwrap_or(false);
        if !manager {
            anyhow::bail!(
                "PAAS_RUNTIME=swarm needs DOCKER_HOST to be a swarm manager, and this engine is not one: run `docker swarm init` on it (or join it to a swarm as a manager), or unset PAAS_RUNTIME"
            );
        }
        Ok(Self {
            engine: engine.on_swarm(),
            settings: Arc::new(settings),
            pinned: Default::default(),
            own_commands: Default::default(),
            placing: Default::default(),
            placed: Default::default(),
        })
    }

    /// The registry's copy of `image`, by digest: pushed the first time a
    /// dyno of it starts, then remembered; and the image's id.
    async fn pinned(&self, app: &str, image: &str) -> Result<(String, String)> {
        let id = self
            .engine
            .image_id(image)
            .await?
            .ok_or_else(|| anyhow!("image {image} is not on the manager: push the app again to build it"))?;
        let mut pinned = self.pinned.lock().await;
        if let Some(by_digest) = pinned.get(&id) {
            return Ok((by_digest.clone(), id));
        }
        let tag: String = id.trim_start_matches("sha256:").chars().take(20).collect();
        let repository = format!("{}/paas/{app}", self.settings.registry);
        let by_digest = self
            .engine
            .push_image(image, &repository, &tag, self.settings.auth.as_ref())
            .await
            .with_context(|| format!("cannot push the release's image to the registry {} (PAAS_REGISTRY)", self.settings.registry))?;
        pinned.insert(id.clone(), by_digest.clone());
        Ok((by_digest, id))
    }

    /// Deletes `copy` (`REGISTRY/REPOSITORY@sha256:…`) from the registry:
    /// its manifest, over the registry's HTTP API (`DELETE
    /// /v2/REPOSITORY/manifests/DIGEST`, with the pull credentials; the
    /// registry needs `storage.delete.enabled`, which `scripts/swarm-registry`
    /// sets). Its layers' space comes back when the registry's garbage
    /// collection runs (the README's "Several hosts"). A registry with a
    /// certificate of the platform CA is trusted as the manager's engine
    /// trusts it, by `/etc/docker/certs.d/REGISTRY/ca.crt`.
    async fn delete_from_registry(&self, copy: &str) -> Result<()> {
        let registry = &self.settings.registry;
        let Some((repository, digest)) = copy.strip_prefix(&format!("{registry}/")).and_then(|r| r.split_once('@')) else {
            anyhow::bail!("{copy} is not an image of the registry {registry}");
        };
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let ca = Path::new("/etc/docker/certs.d").join(registry).join("ca.crt");
        if let Ok(pem) = tokio::fs::read(&ca).await {
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).with_context(|| format!("{} is not a PEM certificate", ca.display()))?);
        }
        let mut request = client.build()?.delete(format!("https://{registry}/v2/{repository}/manifests/{digest}"));
        if let Some(auth) = &self.settings.auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        let answer = request.send().await.with_context(|| format!("cannot reach the registry {registry}"))?;
        match answer.status() {
            s if s.is_success() || s == reqwest::StatusCode::NOT_FOUND => Ok(()),
            reqwest::StatusCode::METHOD_NOT_ALLOWED => {
                anyhow::bail!("the registry {registry} does not delete images: set storage.delete.enabled: true in its config")
            }
            s => anyhow::bail!("the registry {registry} answered {s} to deleting {repository}@{digest}"),
        }
    }

    /// What a dyno without a command of its own runs under `OOM_WATCH`:
    /// its image's command (image `id`), when that image has a `/bin/sh`;
    /// asked once per image.
    async fn own_command(&self, id: &str, image: &str) -> Result<Option<Vec<String>>> {
        let mut own = self.own_commands.lock().await;
        if let Some(command) = own.get(id) {
            return Ok(command.clone());
        }
        let command = self.engine.own_command_under_sh(image).await?;
        own.insert(id.to_owned(), command.clone());
        Ok(command)
    }

    /// The node a new dyno of `spec` goes to (see the module's text): its
    /// id and host name.
    async fn choose_node(&self, spec: &DynoSpec) -> Result<(String, String)> {
        let nodes = self.engine.swarm_nodes().await?;
        let constraints: Vec<Constraint> = self
            .settings
            .constraints
            .iter()
            .chain(&spec.constraints)
            .map(|c| Constraint::parse(c).map_err(|e| anyhow!("{e}")))
            .collect::<Result<_>>()?;
        let dynos = self.engine.swarm_dynos_on(None, &nodes).await?;
        // Where each dyno is: its task's node, or where it was placed while
        // the manager has not assigned its task yet.
        let node_of = {
            let mut placed = self.placed.lock().expect("placed poisoned");
            placed.retain(|id, _| dynos.iter().any(|d| d.id.as_str() == id && d.node.is_none()));
            let placed = placed.clone();
            move |d: &Dyno| d.node.clone().or_else(|| placed.get(d.id.as_str()).cloned())
        };
        let mut eligible: Vec<(usize, usize, usize, String, String)> = Vec::new();
        for n in &nodes {
            let Some(seen) = NodeSeen::from_node(n) else { continue };
            let active = n.spec.as_ref().and_then(|s| s.availability) == Some(bollard::models::NodeSpecAvailabilityEnum::ACTIVE);
            if !seen.ready || !active || !constraints.iter().all(|c| c.matches(n)) {
                continue;
            }
            let here: Vec<&Dyno> = dynos.iter().filter(|d| d.running && node_of(d).as_deref() == Some(&seen.hostname)).collect();
            let of_app = here.iter().filter(|d| d.app == spec.app);
            // The dyno this one replaces (a deploy's, a restart's) is leaving.
            let same_type = of_app.clone().filter(|d| d.process_type == spec.process_type && d.index != spec.index).count();
            eligible.push((same_type, of_app.count(), here.len(), seen.hostname, seen.id));
        }
        eligible.sort();
        eligible.into_iter().next().map(|(.., hostname, id)| (id, hostname)).ok_or_else(|| {
            let all: Vec<String> = self.settings.constraints.iter().chain(&spec.constraints).cloned().collect();
            anyhow!(
                "no ready, active node of the swarm {}: see `paas nodes`",
                if all.is_empty() { "can take it".to_owned() } else { format!("matches the constraints {}", all.join(", ")) }
            )
        })
    }

    /// Waits until a new dyno's task runs (a web one with its published
    /// port) or ended, within the start timeout; one that never starts is
    /// removed.
    async fn started(&self, service_id: &str, spec: &DynoSpec) -> Result<Dyno> {
        let deadline = tokio::time::Instant::now() + self.settings.start_timeout;
        loop {
            if let Some(d) = self.engine.swarm_dyno(service_id).await? {
                let up = d.state == "running" && (!spec.web || d.addr.is_some());
                if up || !d.running {
                    return Ok(d);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self.engine.swarm_remove(service_id).await;
                anyhow::bail!(
                    "no node of the swarm started {}.{} within {} s (its image could not be pulled, or no node can take it: see `paas nodes`)",
                    spec.process_type,
                    spec.index,
                    self.settings.start_timeout.as_secs()
                );
            }
            // The manager is near (its socket): asking often costs little,
            // and a dyno's start is on a deploy's path.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A Swarm placement constraint (`node.labels.pool==web`,
/// `node.role!=manager`), read so paas can choose among the nodes that
/// keep to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    key: String,
    equal: bool,
    value: String,
}

/// The keys a constraint may test, as a bad one's error lists them.
const KEYS: &str = "the keys are node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.NAME and engine.labels.NAME";

impl Constraint {
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let (key, equal, value) = match (text.split_once("!="), text.split_once("==")) {
            (Some((k, v)), _) => (k, false, v),
            (None, Some((k, v))) => (k, true, v),
            (None, None) => return Err(format!("{text:?} is not a constraint: write KEY==VALUE or KEY!=VALUE, e.g. node.labels.pool==web ({KEYS})")),
        };
        let (key, value) = (key.trim(), value.trim());
        let known = matches!(key, "node.id" | "node.hostname" | "node.role" | "node.platform.os" | "node.platform.arch")
            || key.strip_prefix("node.labels.").is_some_and(|l| !l.is_empty())
            || key.strip_prefix("engine.labels.").is_some_and(|l| !l.is_empty());
        if !known || value.is_empty() {
            return Err(format!("{text:?} is not a constraint paas knows: {KEYS}, with a value"));
        }
        Ok(Constraint { key: key.to_owned(), equal, value: value.to_owned() })
    }

    /// Whether `node` keeps to it (as Swarm decides: a label the node
    /// lacks is not equal to anything).
    pub fn matches(&self, node: &bollard::models::Node) -> bool {
        let description = node.description.as_ref();
        let spec = node.spec.as_ref();
        let actual: Option<String> = match self.key.as_str() {
            "node.id" => node.id.clone(),
            "node.hostname" => description.and_then(|d| d.hostname.clone()),
            "node.role" => spec.and_then(|s| s.role).map(|r| r.to_string()),
            "node.platform.os" => description.and_then(|d| d.platform.as_ref()?.os.clone()),
            "node.platform.arch" => description.and_then(|d| d.platform.as_ref()?.architecture.clone()),
            key => match (key.strip_prefix("node.labels."), key.strip_prefix("engine.labels.")) {
                (Some(label), _) => spec.and_then(|s| s.labels.as_ref()?.get(label).cloned()),
                (_, Some(label)) => description.and_then(|d| d.engine.as_ref()?.labels.as_ref()?.get(label).cloned()),
                _ => None,
            },
        };
        let same = actual.is_some_and(|a| a.eq_ignore_ascii_case(&self.value));
        same == self.equal
    }
}

#[async_trait]
impl Placement for SwarmRuntime {
    async fn list_dynos(&self, app: Option<&str>) -> Result<Vec<Dyno>> {
        self.engine.swarm_dynos(app).await
    }

    async fn start_dyno(&self, spec: &DynoSpec) -> Result<Dyno> {
        let t0 = std::time::Instant::now();
        let (image, image_id) = self.pinned(&spec.app, &spec.image).await?;
        let pinned = t0.elapsed();
        let own_command = if spec.command.is_empty() { self.own_command(&image_id, &spec.image).await? } else { None };
        let id = {
            let _placing = self.placing.lock().await;
            let (node, hostname) = self.choose_node(spec).await?;
            let mut constraints = self.settings.constraints.clone();
            constraints.extend(spec.constraints.iter().cloned());
            constraints.push(format!("node.id=={node}"));
            let id = self
                .engine
                .swarm_start(spec, &image, self.settings.stop_grace, &constraints, own_command.as_deref(), self.settings.auth.as_ref())
                .await?;
            self.placed.lock().expect("placed poisoned").insert(id.clone(), hostname);
            id
        };
        let created = t0.elapsed();
        let dyno = self.started(&id, spec).await;
        // Where a start's time goes (the registry push, placing and the
        // service's creation, Swarm starting its task).
        tracing::debug!(
            app = %spec.app,
            dyno = %format!("{}.{}", spec.process_type, spec.index),
            pinned_ms = pinned.as_millis() as u64,
            created_ms = created.as_millis() as u64,
            running_ms = t0.elapsed().as_millis() as u64,
            "swarm dyno start"
        );
        dyno
    }

    async fn halt_dyno(&self, id: &DynoId, grace: Duration) -> Result<()> {
        let id = id.as_str();
        self.engine.swarm_halt(id).await?;
        // As on one engine: back once the task ended (SIGKILL after the
        // grace), or a little later at most.
        let deadline = tokio::time::Instant::now() + grace + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if !matches!(self.engine.swarm_exit(id).await, Ok((true, _))) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn stop_dyno(&self, id: &DynoId, _grace: Duration) -> Result<()> {
        self.engine.swarm_remove(id.as_str()).await
    }

    async fn remove_app_network(&self, app: &str) -> Result<()> {
        Placement::remove_app_network(&self.engine, app).await
    }

    async fn prune_networks(&self, apps: &HashSet<&str>) -> Result<()> {
        Placement::prune_networks(&self.engine, apps).await
    }

    async fn exit_of(&self, id: &DynoId) -> Result<(bool, Exit)> {
        self.engine.swarm_exit(id.as_str()).await
    }

    /// The manager sends no event when a task ends: its dynos are listed
    /// every second, and one that ran and no longer does is reported.
    fn watch_exits(&self) -> mpsc::Receiver<(String, DynoId)> {
        let (tx, rx) = mpsc::channel(256);
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let mut running: HashMap<DynoId, String> = HashMap::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !tx.is_closed() {
                tick.tick().await;
                let Ok(dynos) = engine.swarm_dynos(None).await else { continue };
                let now: HashMap<DynoId, String> = dynos.iter().filter(|d| d.running).map(|d| (d.id.clone(), d.app.clone())).collect();
                for (id, app) in &running {
                    let ended = dynos.iter().any(|d| &d.id == id && !d.running);
                    if ended && tx.send((app.clone(), id.clone())).await.is_err() {
                        return;
                    }
                }
                running = now;
            }
        });
        rx
    }

    async fn nodes(&self) -> Result<Vec<Node>> {
        let nodes = self.engine.swarm_nodes().await?;
        Ok(nodes
            .iter()
            .filter_map(|n| {
                let seen = NodeSeen::from_node(n)?;
                let status = n.status.as_ref();
                let spec = n.spec.as_ref();
                Some(Node {
                    id: seen.id,
                    hostname: seen.hostname,
                    state: status.and_then(|s| s.state).map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
                    availability: spec.and_then(|s| s.availability).map_or_else(|| "active".to_owned(), |a| a.to_string()),
                    role: spec.and_then(|s| s.role).map_or_else(|| "worker".to_owned(), |r| r.to_string()),
                    address: seen.addr.map(|a| a.to_string()),
                    labels: spec.and_then(|s| s.labels.clone()).unwrap_or_default().into_iter().collect(),
                    dynos: Vec::new(),
                })
            })
            .collect())
    }
}

/// Images are built on the manager, as on one engine.
#[async_trait]
impl ImageBuilder for SwarmRuntime {
    async fn build_image(
        &self,
        context: &Path,
        tag: &str,
        args: &BTreeMap<String, String>,
        limits: BuildLimits,
        output: &mpsc::Sender<String>,
    ) -> Result<String> {
        self.engine.build_image(context, tag, args, limits, output).await
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        // The tags this runtime gave the image to push it
        // (`REGISTRY/paas/APP:ID`) name it too, and an image still named
        // is kept: without this the manager would keep every release's
        // image. They go first (the registry keeps its copy, by digest,
        // for dynos still running it).
        let prefix = format!("{}/paas/", self.settings.registry);
        let Some(inspected) = self.engine.inspected(image).await? else { return Ok(()) };
        let id = inspected.id.unwrap_or_default();
        // Its copies in the registry (`REGISTRY/paas/APP@sha256:…`), read
        // now: the engine forgets them with the tags.
        let mut copies: Vec<String> = inspected.repo_digests.unwrap_or_default().into_iter().filter(|d| d.starts_with(&prefix)).collect();
        if let Some(pinned) = self.pinned.lock().await.get(&id) {
            if !copies.contains(pinned) {
                copies.push(pinned.clone());
            }
        }
        for tag in inspected.repo_tags.unwrap_or_default().into_iter().filter(|t| t.starts_with(&prefix)) {
            self.engine.remove_image(&tag).await?;
        }
        self.engine.remove_image(image).await?;
        // By its id, an image is removed when no release needs it any more
        // (an image given to `deploy --image` stays on the manager, its
        // owner's); by a tag, when that was its last. Either way its
        // registry copies go too, and what is remembered of it.
        let gone = !self.engine.image_exists(&id).await?;
        if gone || image == id {
            self.pinned.lock().await.remove(&id);
            self.own_commands.lock().await.remove(&id);
            for copy in copies {
                if let Err(e) = self.delete_from_registry(&copy).await {
                    tracing::warn!(image = %copy, error = %format!("{e:#}"), "cannot delete an old release's image from the registry");
                }
            }
        }
        Ok(())
    }

    async fn retag_image(&self, from: &str, to: &str) -> Result<()> {
        self.engine.retag_image(from, to).await
    }

    async fn tag_image(&self, image: &str, to: &str) -> Result<()> {
        self.engine.tag_image(image, to).await.map(drop)
    }

    async fn data_root(&self) -> Result<Option<std::path::PathBuf>> {
        self.engine.data_root().await
    }

    async fn image_size(&self, image: &str) -> Result<Option<i64>> {
        self.engine.image_size(image).await
    }

    async fn build_caches(&self) -> Result<Vec<String>> {
        self.engine.build_caches().await
    }

    async fn leftovers(&self, age: Duration) -> Result<crate::runtime::Leftovers> {
        self.engine.leftovers(age).await
    }

    async fn volume_size(&self, name: &str) -> Result<Option<i64>> {
        self.engine.volume_size(name).await
    }

    async fn image_exists(&self, image: &str) -> Result<bool> {
        self.engine.image_exists(image).await
    }


    async fn run_task(&self, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Result<TaskResult> {
        self.engine.run_task(spec, output).await
    }

    fn prepare_task(&self, spec: &TaskSpec) {
        self.engine.prepare_task(spec)
    }

    async fn remove_spares(&self) {
        self.engine.remove_spares().await
    }

    async fn image_from_files(&self, base: &str, tar: &Path, tag: &str, label: Option<(&str, &str)>) -> Result<String> {
        self.engine.image_from_files(base, tar, tag, label).await
    }

    async fn image_label(&self, image: &str, label: &str) -> Result<Option<String>> {
        self.engine.image_label(image, label).await
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        self.engine.image_id(image).await
    }

    async fn pull_image(&self, reference: &str) -> Result<()> {
        self.engine.pull_image(reference).await
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.engine.remove_volume(name).await
    }

    async fn push_image(&self, image: &str, repository: &str, tag: &str, auth: Option<&RegistryAuth>) -> Result<String> {
        self.engine.push_image(image, repository, tag, auth).await
    }
}

/// Dynos' output, through the manager.
#[async_trait]
impl OutputFollower for SwarmRuntime {
    async fn output_tail(&self, id: &DynoId, lines: usize) -> Result<Vec<String>> {
        if self.engine.swarm_dyno(id.as_str()).await?.is_none() {
            // A one-off dyno: a container on the manager.
            return OutputFollower::output_tail(&self.engine, id, lines).await;
        }
        self.engine.swarm_output_tail(id.as_str(), lines, Duration::from_secs(10)).await
    }

    fn follow_output(&self, id: &DynoId, since: i64) -> mpsc::Receiver<Result<OutputLine>> {
        // Service ids and container ids differ in length (25 and 64).
        if id.as_str().len() == 64 {
            return OutputFollower::follow_output(&self.engine, id, since);
        }
        self.engine.swarm_follow(id.as_str(), since)
    }
}

/// One-off dynos are containers on the manager, on the app's overlay.
#[async_trait]
impl OneOffAttach for SwarmRuntime {
    async fn start_one_off(&self, spec: &OneOffSpec) -> Result<(OneOff, Option<Attachment>)> {
        self.engine.start_one_off(spec).await
    }

    async fn list_one_offs(&self, app: Option<&str>) -> Result<Vec<OneOff>> {
        self.engine.list_one_offs(app).await
    }

    async fn resize_tty(&self, id: &DynoId, cols: u16, rows: u16) -> Result<()> {
        self.engine.resize_tty(id.as_str(), cols, rows).await
    }

    async fn signal(&self, id: &DynoId, signal: &str) -> Result<()> {
        self.engine.signal(id.as_str(), signal).await
    }

    async fn wait_exit(&self, id: &DynoId) -> Result<Exit> {
        self.engine.wait_exit(id.as_str()).await
    }
}

/// Add-ons are containers on the manager (where their data stays: the
/// node is pinned by being the manager), joined to apps' attachable
/// overlays, so dynos on every node reach them by alias.
#[async_trait]
impl crate::runtime::AddonHost for SwarmRuntime {
    async fn run_addon(&self, spec: &crate::runtime::AddonSpec) -> Result<()> {
        self.engine.run_addon(spec).await
    }

    async fn addon_status(&self, name: &str) -> Result<Option<crate::runtime::AddonStatus>> {
        self.engine.addon_status(name).await
    }

    async fn stop_addon(&self, name: &str, grace: Duration) -> Result<()> {
        self.engine.stop_addon(name, grace).await
    }

    async fn remove_addon(&self, name: &str, data: bool) -> Result<()> {
        self.engine.remove_addon(name, data).await
    }

    async fn connect_addon(&self, name: &str, app: &str, alias: &str) -> Result<()> {
        self.engine.connect_addon(name, app, alias).await
    }

    async fn disconnect_addon(&self, name: &str, app: &str) -> Result<()> {
        self.engine.disconnect_addon(name, app).await
    }

    async fn addon_output_tail(&self, name: &str, lines: usize) -> Result<Vec<String>> {
        self.engine.addon_output_tail(name, lines).await
    }

    async fn start_addon_client(&self, spec: &crate::runtime::AddonClientSpec) -> Result<(DynoId, Attachment)> {
        self.engine.start_addon_client(spec).await
    }

    async fn finish_addon_client(&self, id: &DynoId) -> Result<Exit> {
        self.engine.finish_addon_client(id.as_str()).await
    }

    async fn resize_addon_client(&self, id: &DynoId, cols: u16, rows: u16) -> Result<()> {
        self.engine.resize_tty(id.as_str(), cols, rows).await
    }

    async fn exec_in_addon(&self, name: &str, cmd: &[String], env: &BTreeMap<String, String>) -> Result<(DynoId, Attachment)> {
        self.engine.exec_in_addon(name, cmd, env).await
    }

    async fn finish_addon_exec(&self, id: &DynoId) -> Result<Exit> {
        self.engine.finish_addon_exec(id.as_str()).await
    }
}

#[async_trait]
impl Runtime for SwarmRuntime {}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, hostname: &str, role: &str, labels: &[(&str, &str)]) -> bollard::models::Node {
        let labels: HashMap<&str, &str> = labels.iter().copied().collect();
        serde_json::from_value(serde_json::json!({
            "ID": id,
            "Description": {"Hostname": hostname, "Platform": {"OS": "linux", "Architecture": "x86_64"}, "Engine": {"Labels": {"disk": "ssd"}}},
            "Spec": {"Role": role, "Availability": "active", "Labels": labels},
            "Status": {"State": "ready", "Addr": "10.231.0.11"}
        }))
        .unwrap()
    }

    #[test]
    fn constraints_read_as_swarm_reads_them() {
        let n1 = node("n1", "paas-tb-n1", "worker", &[("pool", "web")]);
        let n0 = node("n0", "paas-tb-n0", "manager", &[]);
        let c = |s: &str| Constraint::parse(s).unwrap();
        assert!(c("node.labels.pool==web").matches(&n1) && !c("node.labels.pool==web").matches(&n0));
        // A label the node lacks is unequal to anything.
        assert!(c("node.labels.pool!=web").matches(&n0) && !c("node.labels.pool!=web").matches(&n1));
        assert!(c("node.role!=manager").matches(&n1) && !c("node.role!=manager").matches(&n0));
        assert!(c("node.hostname==paas-tb-n1").matches(&n1) && c("node.id==n0").matches(&n0));
        assert!(c("engine.labels.disk==ssd").matches(&n0) && c("node.platform.os==linux").matches(&n0));
        assert!(c(" node.labels.pool == WEB ").matches(&n1), "spaces and case as Swarm takes them");
        for bad in ["pool=web", "node.labels.==x", "node.colour==red", "node.role=="] {
            let e = Constraint::parse(bad).unwrap_err();
            assert!(e.contains("node.labels"), "{bad}: {e}");
        }
    }
}
