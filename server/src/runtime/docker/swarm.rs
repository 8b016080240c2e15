//! The swarm backend's calls to the manager (Swarm mode is the same engine
//! API, so it lives with the engine's code; `swarm_runtime.rs` puts them
//! together as `PAAS_RUNTIME=swarm`). Its translations: a dyno as a Swarm service, and a service with its task back as a
//! dyno. One single-replica service per dyno, which Swarm never restarts
//! (paas reconciles, as on one host: see ARCHITECTURE.md), with `dnsrr`
//! (no virtual IP: this kernel has no IPVS), `$PORT` published in host
//! mode on a port the engine chooses, the app's attachable overlay, and
//! the image by digest. A web dyno is reached at its node's address and the
//! port in its task's `PortStatus`. They are pure, so the mapping is
//! unit-tested. Below them, the manager's calls (network, start, list,
//! exit, output, remove), tested on the three-node test bed.

use crate::runtime::{labels, Dyno, DynoObserved, DynoSpec, Exit, DYNO_PORT, KIND_DYNO};
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointPortConfigProtocolEnum, EndpointSpec, EndpointSpecModeEnum,
    Limit, NetworkAttachmentConfig, Service, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, Task, TaskSpec,
    TaskSpecContainerSpec, TaskSpecLogDriver, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The service that runs `spec`: `image` is the release's image by digest
/// (`registry/repo@sha256:…`), `network` the app's overlay.
/// `constraints` are Swarm placement constraints (`node.id==…`,
/// `node.labels.pool==web`). `own_command` is the image's own ENTRYPOINT
/// and CMD, for a spec without a command, when the image has a `/bin/sh`
/// to run `OOM_WATCH` (`DockerRuntime::own_command_under_sh`); without
/// either, the image's command runs unwatched. `nano_cpus` is the CPU
/// limit (`PAAS_DYNO_CPUS`).
#[allow(clippy::too_many_arguments)]
pub fn service_spec(
    spec: &DynoSpec,
    instance: &str,
    image: &str,
    network: &str,
    stop_grace: Duration,
    constraints: &[String],
    own_command: Option<&[String]>,
    nano_cpus: Option<i64>,
) -> ServiceSpec {
    let labels = crate::runtime::dyno_labels(spec, instance, KIND_DYNO);
    let argv = if spec.command.is_empty() {
        own_command.map(<[String]>::to_vec)
    } else {
        Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), spec.command.clone()])
    };
    let command = argv.map(|argv| {
        let mut command = vec!["/bin/sh".to_owned(), "-c".to_owned(), OOM_WATCH.to_owned(), WATCHED.to_owned()];
        command.extend(argv);
        command
    });
    let ports = spec.web.then(|| {
        vec![EndpointPortConfig {
            target_port: Some(i64::from(DYNO_PORT)),
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            ..Default::default()
        }]
    });
    ServiceSpec {
        name: Some(format!(
            "paas-{}-{}-{}-v{}-{}",
            spec.app,
            spec.process_type,
            spec.index,
            spec.release_version,
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        )),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_owned()),
                labels: Some(labels),
                command,
                env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                stop_grace_period: Some(stop_grace.as_nanos() as i64),
                init: Some(true),
                // Locked down as on one engine (`locked_down`), as far as
                // the services API of Docker 20.10 (1.41) goes: it has no
                // `no-new-privileges` (the nodes' daemon.json can set it).
                capability_drop: Some(crate::runtime::DROPPED_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit { memory_bytes: spec.memory, nano_cpus, pids: Some(crate::runtime::PIDS_LIMIT) }),
                ..Default::default()
            }),
            log_driver: Some(TaskSpecLogDriver { name: Some("json-file".to_owned()), options: Some(super::capped_log()) }),
            // paas restarts crashed dynos, with its backoff and records.
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig { target: Some(network.to_owned()), ..Default::default() }]),
            placement: (!constraints.is_empty()).then(|| TaskSpecPlacement { constraints: Some(constraints.to_vec()), ..Default::default() }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec { mode: Some(EndpointSpecModeEnum::DNSRR), ports }),
        ..Default::default()
    }
}

/// How long a followed stream may stay silent before it is made again.
pub const SILENT_FOLLOW: Duration = Duration::from_secs(30);

/// A node as a dyno's reading needs it: where it is and whether the
/// manager hears from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSeen {
    pub id: String,
    pub hostname: String,
    pub addr: Option<IpAddr>,
    /// The manager hears from it (`ready`); a `down` node's tasks are lost.
    pub ready: bool,
}

impl NodeSeen {
    pub fn from_node(n: &bollard::models::Node) -> Option<NodeSeen> {
        let status = n.status.as_ref();
        Some(NodeSeen {
            id: n.id.clone()?,
            hostname: n.description.as_ref().and_then(|d| d.hostname.clone()).unwrap_or_default(),
            addr: status.and_then(|s| s.addr.as_deref()?.parse().ok()),
            ready: status.and_then(|s| s.state) == Some(bollard::models::NodeState::READY),
        })
    }
}

/// The dyno a service of ours runs, with the task that runs it (the newest
/// one; none yet while Swarm places it) and the node the task is on.
/// `None` for services that are not dynos. A dyno whose task is placed and
/// not ended counts as running (paas does not start it twice); it has an
/// address once its task runs on a node the manager hears from. A task on a
/// node that is down is lost: ended, so the scheduler replaces it.
pub fn dyno_from(service: &Service, task: Option<&Task>, node: Option<&NodeSeen>) -> Option<Dyno> {
    let spec = service.spec.as_ref()?;
    let l = spec.labels.as_ref()?;
    if l.get(labels::KIND).map(String::as_str) != Some(KIND_DYNO) {
        return None;
    }
    let (running, _) = task.map_or((true, Exit::default()), |t| exit_of(t, node));
    let status = task.and_then(|t| t.status.as_ref());
    let state = status.and_then(|s| s.state).unwrap_or(TaskState::PENDING);
    let port = status
        .and_then(|s| s.port_status.as_ref())
        .and_then(|p| p.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.target_port == Some(i64::from(DYNO_PORT)))?.published_port)
        .and_then(|p| u16::try_from(p).ok());
    // A lost dyno keeps its address, so the router lets go of it at once.
    let lost = !running && state == TaskState::RUNNING;
    let addr = match (running && state == TaskState::RUNNING || lost, node.and_then(|n| n.addr), port) {
        (true, Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        _ => None,
    };
    let container = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref());
    let command = container.and_then(|c| c.command.as_deref()).map(command_of).unwrap_or_default();
    let seen = DynoObserved {
        id: service.id.clone()?.into(),
        running,
        state: if running || node.is_none_or(|n| n.ready) { state.to_string() } else { "lost".to_owned() },
        command,
        addr: addr.map(crate::runtime::Endpoint::new),
        created: service
            .created_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp()),
        ip: node.and_then(|n| n.addr),
        node: node.map(|n| n.hostname.clone()),
    };
    Some(crate::runtime::dyno_identity(l)?.dyno(seen))
}

/// `$0` of `OOM_WATCH` in a service's command: what marks it as watched.
const WATCHED: &str = "paas-dyno";

/// A dyno's command as `service_spec` wrote it, back: the Procfile's (or
/// `--process`) command, or "" for the image's own, watched or not.
fn command_of(command: &[String]) -> String {
    let argv = match command {
        [sh, c, watch, watched, argv @ ..] if sh == "/bin/sh" && c == "-c" && watch == OOM_WATCH && watched == WATCHED => argv,
        argv => argv,
    };
    match argv {
        [sh, c, command] if sh == "/bin/sh" && c == "-c" => command.clone(),
        _ => String::new(),
    }
}

/// What a task's exit with status 137 is told as when the dyno's own
/// watch (`OOM_WATCH`) did not run: a dyno whose image's command runs
/// unwrapped, or the watch itself killed.
pub const SIGKILLED: &str = "killed by SIGKILL: the kernel does this to a dyno over its size, and a swarm task's status does not say whether that was why; if it uses nearly its size, give it a larger one (`paas ps:resize`)";

/// The exit status `OOM_WATCH` gives a dyno the kernel's OOM killer
/// ended, read back as 137 and out of memory. A task's status carries
/// only the exit code (moby's executor puts nothing else of the
/// container's state there), and paas asks only the manager, so the
/// container says it in the one field that reaches it. An app that exits
/// with this status of its own is told as out of memory too (a label
/// only: the code is one no signal or shell gives).
pub const OOM_EXIT: i64 = 239;

/// The swarm's dynos with a command run it under this `sh` script (as a
/// child of the engine's init, as before): it passes the usual stop and
/// control signals on, exits as the command did, and when the command was
/// SIGKILLed (137) while the container's memory cgroup counts an OOM kill
/// (`oom_kill` in cgroup v1's `memory.oom_control` or v2's
/// `memory.events`, which the engine mounts in every container), exits
/// with `OOM_EXIT` instead. Builtins only: it needs nothing of the image
/// but the `/bin/sh` such a dyno already runs under. (A command started
/// in the background has SIGINT and SIGQUIT ignored, as POSIX says; a stop
/// is SIGTERM.)
pub const OOM_WATCH: &str = r#"p=
for s in TERM INT HUP QUIT USR1 USR2; do trap "[ -n \"\$p\" ] && kill -$s \$p 2>/dev/null" $s; done
"$@" & p=$!
while :; do wait $p; c=$?; kill -0 $p 2>/dev/null || break; done
if [ $c = 137 ]; then
  n=0
  for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
    if [ -r $f ]; then while read k v; do if [ "$k" = oom_kill ]; then n=$v; fi; done <$f; fi
  done
  if [ "$n" != 0 ]; then exit 239; fi
fi
exit $c"#;

/// Whether a dyno's task still runs, and how it ended when it does not:
/// its container's exit code, or Swarm's error (an image it could not
/// pull), or its node lost (the manager no longer hears from the node it
/// is on). Whether the kernel killed it for memory, only as the dyno's
/// own `OOM_WATCH` says it (the worker's engine knows, and paas never
/// asks a worker).
pub fn exit_of(task: &Task, node: Option<&NodeSeen>) -> (bool, Exit) {
    let Some(status) = task.status.as_ref() else { return (true, Exit::default()) };
    let state = status.state.unwrap_or(TaskState::PENDING);
    let ended = matches!(
        state,
        TaskState::COMPLETE | TaskState::SHUTDOWN | TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED | TaskState::REMOVE
    );
    if let (false, Some(node)) = (ended, node.filter(|n| !n.ready)) {
        let error = format!("its node {} is down: the dyno is lost", node.hostname);
        return (false, Exit { exit_code: None, oom_killed: false, error: Some(error) });
    }
    let exit_code = status.container_status.as_ref().and_then(|c| c.exit_code).filter(|_| ended);
    if exit_code == Some(OOM_EXIT) {
        return (false, Exit { exit_code: Some(137), oom_killed: true, error: None });
    }
    let error = match (ended, exit_code, status.err.as_deref()) {
        (true, None, Some(err)) => Some(match err.strip_prefix("No such image: ").and_then(|image| image.split_once('/')) {
            // A worker that could not pull says only this; why (an
            // untrusted certificate, the registry unreachable, the
            // credentials) is in that worker's engine log.
            Some((registry, _)) if registry.contains([':', '.']) => format!(
                "{err}: its node could not pull it from the registry {registry}; check that the node reaches {registry} and trusts its CA (/etc/docker/certs.d/{registry}/ca.crt, see the README's \"Several hosts\")"
            ),
            _ => err.to_owned(),
        }),
        (true, None, None) => Some(format!("its task ended {state} without an exit code")),
        // SIGKILL without the dyno's own watch saying it was for memory.
        (true, Some(137), _) => Some(SIGKILLED.to_owned()),
        _ => None,
    };
    (!ended, Exit { exit_code, oom_killed: false, error })
}

/// The manager's side: the calls the swarm backend makes, over this
/// engine's connection (paas talks to the manager only, never to a
/// worker's engine).
impl super::DockerRuntime {
    /// Creates the service that runs `spec` (`image`: by digest) within
    /// `constraints`; its id. `auth` reaches the workers that pull.
    pub async fn swarm_start(
        &self,
        spec: &DynoSpec,
        image: &str,
        stop_grace: Duration,
        constraints: &[String],
        own_command: Option<&[String]>,
        auth: Option<&crate::runtime::RegistryAuth>,
    ) -> anyhow::Result<String> {
        // The app's attachable overlay (`on_swarm`).
        let network = self.ensure_network(&spec.app).await?;
        let service = service_spec(spec, &self.instance, image, &network, stop_grace, constraints, own_command, self.nano_cpus);
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: image.split('/').next().map(str::to_owned),
            ..Default::default()
        });
        let created = self
            .docker
            .create_service(service, credentials)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the service of {}.{}: {e}", spec.process_type, spec.index))?;
        created.id.ok_or_else(|| anyhow::anyhow!("the manager made a service without an id"))
    }

    /// Removes a dyno's service (its task gets SIGTERM, then SIGKILL after
    /// its stop grace). Idempotent.
    pub async fn swarm_remove(&self, service_id: &str) -> anyhow::Result<()> {
        match self.docker.delete_service(service_id).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("cannot remove service {service_id}: {e}")),
        }
    }

    /// Stops a dyno's task and keeps its service (its output stays
    /// readable): the service scaled to no replica, so the task gets
    /// SIGTERM and SIGKILL after its stop grace. Idempotent.
    pub async fn swarm_halt(&self, service_id: &str) -> anyhow::Result<()> {
        let Some(service) = self.swarm_service(service_id).await? else { return Ok(()) };
        let (Some(mut spec), Some(version)) = (service.spec, service.version.and_then(|v| v.index)) else {
            anyhow::bail!("the manager gave service {service_id} without its spec");
        };
        spec.mode = Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(0) }),
            ..Default::default()
        });
        let options = bollard::service::UpdateServiceOptions { version, ..Default::default() };
        match self.docker.update_service(service_id, spec, options, None).await {
            Ok(_) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("cannot stop the task of service {service_id}: {e}")),
        }
    }

    /// A service as the manager keeps it; None when it is gone.
    async fn swarm_service(&self, service_id: &str) -> anyhow::Result<Option<Service>> {
        match self.docker.inspect_service(service_id, None).await {
            Ok(s) => Ok(Some(s)),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => anyhow::bail!("cannot read service {service_id}: {e}"),
        }
    }

    /// A GET the manager answers (`/tasks`, `/nodes`, a service's logs)
    /// over the engine's HTTP API: bollard 0.18 has no task, node or
    /// service-log API.
    async fn swarm_get(&self, path: &str) -> anyhow::Result<bytes::Bytes> {
        use http_body_util::BodyExt;
        let response = self.swarm_open(path).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            anyhow::bail!("the manager answered {status} to GET {path}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    async fn swarm_open(&self, path: &str) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let request = hyper::Request::get(self.api_path(path))
            .header("Host", "docker")
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        self.engine_request(request).await
    }

    /// A list the manager keeps, as JSON (see [`Self::swarm_get`]).
    async fn swarm_list<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<Vec<T>> {
        Ok(serde_json::from_slice(&self.swarm_get(path).await?)?)
    }

    /// The swarm's nodes, as the manager sees them.
    pub async fn swarm_nodes(&self) -> anyhow::Result<Vec<bollard::models::Node>> {
        self.swarm_list("/nodes").await
    }

    /// One dyno's service as the manager sees it now: its newest task on
    /// its node. None when the service is gone.
    pub async fn swarm_dyno(&self, service_id: &str) -> anyhow::Result<Option<Dyno>> {
        let Some(service) = self.swarm_service(service_id).await? else { return Ok(None) };
        let (task, node) = self.task_of(service_id).await?;
        Ok(dyno_from(&service, task.as_ref(), node.as_ref()))
    }

    /// A service's newest task and the node it is on.
    async fn task_of(&self, service_id: &str) -> anyhow::Result<(Option<Task>, Option<NodeSeen>)> {
        let filters = serde_json::json!({ "service": [service_id] }).to_string();
        let path = format!("/tasks?{}", serde_urlencoded::to_string([("filters", filters)])?);
        let tasks: Vec<Task> = self.swarm_list(&path).await?;
        let Some(task) = newest_task(&tasks, service_id).cloned() else { return Ok((None, None)) };
        let node = match task.node_id.as_deref() {
            Some(id) => {
                let node: bollard::models::Node = serde_json::from_slice(&self.swarm_get(&format!("/nodes/{id}")).await?)?;
                NodeSeen::from_node(&node)
            }
            None => None,
        };
        Ok((Some(task), node))
    }

    /// Whether a dyno's service still runs its task, and how the task
    /// ended when it does not (see [`exit_of`]). A service that is gone
    /// has ended.
    pub async fn swarm_exit(&self, service_id: &str) -> anyhow::Result<(bool, Exit)> {
        match self.task_of(service_id).await? {
            (Some(task), node) => Ok(exit_of(&task, node.as_ref())),
            (None, _) => match self.swarm_service(service_id).await {
                Ok(None) => Ok((false, Exit { error: Some("its service is gone".into()), ..Default::default() })),
                _ => Ok((true, Exit::default())),
            },
        }
    }

    /// The last `lines` lines a dyno's task wrote, through the manager
    /// (`GET /services/ID/logs`, which reaches the task's node): not
    /// followed, so it always ends, and bounded by `within`.
    pub async fn swarm_output_tail(&self, service_id: &str, lines: usize, within: Duration) -> anyhow::Result<Vec<String>> {
        let path = format!("/services/{service_id}/logs?stdout=1&stderr=1&tail={lines}");
        let body = tokio::time::timeout(within, self.swarm_get(&path))
            .await
            .map_err(|_| anyhow::anyhow!("the manager sent no logs of {service_id} within {} s", within.as_secs()))??;
        Ok(demultiplexed_lines(&body))
    }

    /// A dyno's output through the manager, from `since` (Unix seconds)
    /// and on as it is written: `GET /services/ID/logs?follow=1`, which
    /// the manager relays from the task's node. That stream does not end
    /// when the task does (nor when its node is lost), so a watch asks
    /// the manager every 2 s whether the task still runs and ends the
    /// stream a moment after it stopped; a stream silent for
    /// [`SILENT_FOLLOW`] ends too, so one that stalled is made again.
    pub fn swarm_follow(&self, service_id: &str, since: i64) -> tokio::sync::mpsc::Receiver<anyhow::Result<crate::runtime::OutputLine>> {
        use http_body_util::BodyExt;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let me = self.clone();
        let id = service_id.to_owned();
        tokio::spawn(async move {
            let path = format!("/services/{id}/logs?stdout=1&stderr=1&follow=1&timestamps=1&since={since}");
            let response = match me.swarm_open(&path).await {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => {
                    let _ = tx.send(Err(anyhow::anyhow!("the manager answered {} to the logs of {id}", r.status()))).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut body = response.into_body();
            let mut frames = Demux::default();
            let mut ended_at: Option<tokio::time::Instant> = None;
            let mut heard = tokio::time::Instant::now();
            let mut watch = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    frame = body.frame() => match frame {
                        Some(Ok(frame)) => {
                            heard = tokio::time::Instant::now();
                            let Ok(data) = frame.into_data() else { continue };
                            for (stderr, payload) in frames.push(&data) {
                                if let Some(line) = super::output::parse_output_frame(&payload, stderr) {
                                    if tx.send(Ok(line)).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(Err(anyhow::anyhow!(e).context("the dyno's output stream broke"))).await;
                            return;
                        }
                        None => return,
                    },
                    _ = watch.tick() => {
                        // A relay that stalls looks like a quiet dyno: after
                        // a silent while the stream ends, and the log router
                        // follows again from its cursor (repeating nothing).
                        if tx.is_closed() || heard.elapsed() >= SILENT_FOLLOW {
                            return;
                        }
                        match ended_at {
                            // Lines written just before the end come in a moment later.
                            Some(at) if at.elapsed() >= Duration::from_secs(2) => return,
                            Some(_) => {}
                            None => if !matches!(me.swarm_exit(&id).await, Ok((true, _))) {
                                ended_at = Some(tokio::time::Instant::now());
                            },
                        }
                    }
                }
            }
        });
        rx
    }

    /// The app's dynos (or every app's) as the manager sees them: each
    /// service of ours with its newest task, on its node.
    pub async fn swarm_dynos(&self, app: Option<&str>) -> anyhow::Result<Vec<Dyno>> {
        let nodes = self.swarm_nodes().await?;
        self.swarm_dynos_on(app, &nodes).await
    }

    /// [`Self::swarm_dynos`] with the nodes already read.
    pub async fn swarm_dynos_on(&self, app: Option<&str>, nodes: &[bollard::models::Node]) -> anyhow::Result<Vec<Dyno>> {
        let filters = HashMap::from([("label".to_owned(), vec![self.instance_label(), Self::app_label(app)])]);
        let services = self
            .docker
            .list_services(Some(bollard::service::ListServicesOptions { filters, ..Default::default() }))
            .await
            .map_err(|e| anyhow::anyhow!("cannot list the swarm's services: {e}"))?;
        let tasks: Vec<Task> = self.swarm_list("/tasks").await?;
        let nodes: Vec<NodeSeen> = nodes.iter().filter_map(NodeSeen::from_node).collect();
        Ok(services
            .iter()
            .filter_map(|service| {
                let newest = newest_task(&tasks, service.id.as_deref()?);
                let node = newest.and_then(|t| nodes.iter().find(|n| Some(n.id.as_str()) == t.node_id.as_deref()));
                dyno_from(service, newest, node)
            })
            .collect())
    }
}

/// Frames of a multiplexed stream (an 8-byte header, the stream in byte
/// 0 and the length in bytes 4-7, then the bytes) as its chunks come.
#[derive(Default)]
pub struct Demux {
    held: Vec<u8>,
}

impl Demux {
    /// The bytes so far of a frame that has not ended.
    pub fn rest(&self) -> &[u8] {
        self.held.get(8..).unwrap_or_default()
    }

    /// The frames `chunk` completes: (stderr, bytes).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<(bool, Vec<u8>)> {
        self.held.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.held.len() >= at + 8 {
            let h = &self.held[at..at + 8];
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.held.len() < at + 8 + len {
                break;
            }
            frames.push((h[0] == 2, self.held[at + 8..at + 8 + len].to_vec()));
            at += 8 + len;
        }
        self.held.drain(..at);
        frames
    }
}

/// A service's newest task: the one that runs its dyno now, or ran it last.
fn newest_task<'a>(tasks: &'a [Task], service_id: &str) -> Option<&'a Task> {
    tasks.iter().filter(|t| t.service_id.as_deref() == Some(service_id)).max_by(|a, b| a.created_at.cmp(&b.created_at))
}

/// The lines of a multiplexed log body (frames of an 8-byte header, the
/// stream in byte 0 and the length in bytes 4-7, then the bytes).
/// A cut last frame keeps what came of it.
pub fn demultiplexed_lines(body: &[u8]) -> Vec<String> {
    let mut frames = Demux::default();
    let mut text: Vec<u8> = frames.push(body).into_iter().flat_map(|(_, bytes)| bytes).collect();
    text.extend_from_slice(frames.rest());
    String::from_utf8_lossy(&text).lines().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(web: bool) -> DynoSpec {
        DynoSpec {
            app: "shop".into(),
            release_id: "r-7".into(),
            release_version: 7,
            process_type: if web { "web" } else { "worker" }.into(),
            index: 2,
            image: "paas/shop:b1".into(),
            command: "bundle exec puma".into(),
            env: BTreeMap::from([("PORT".to_owned(), DYNO_PORT.to_string())]),
            web,
            memory: Some(512 << 20),
            constraints: Vec::new(),
        }
    }

    /// A task as `GET /tasks` gives it on the test bed.
    fn task(state: &str, exit: Option<i64>, err: Option<&str>, published: Option<i64>) -> Task {
        let json = serde_json::json!({
            "ID": "t1", "ServiceID": "s1", "NodeID": "n1",
            "Status": {
                "State": state,
                "Err": err,
                "ContainerStatus": {"ContainerID": "c1", "ExitCode": exit},
                "PortStatus": {"Ports": published.map(|p| vec![
                    serde_json::json!({"Protocol": "tcp", "TargetPort": DYNO_PORT, "PublishedPort": p, "PublishMode": "host"}),
                    serde_json::json!({"Protocol": "tcp", "TargetPort": DYNO_PORT, "PublishedPort": p, "PublishMode": "host"}),
                ])}
            }
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_dyno_is_one_service_that_swarm_never_restarts_with_its_port_published_on_its_node() {
        let s = service_spec(&spec(true), "i1", "10.231.0.10:5000/paas/shop@sha256:ab", "paas-app-shop", Duration::from_secs(30), &[], None, Some(500_000_000));
        let t = s.task_template.as_ref().unwrap();
        let c = t.container_spec.as_ref().unwrap();
        assert_eq!(c.image.as_deref(), Some("10.231.0.10:5000/paas/shop@sha256:ab"));
        assert_eq!(c.command.as_ref().unwrap(), &["/bin/sh", "-c", OOM_WATCH, "paas-dyno", "/bin/sh", "-c", "bundle exec puma"]);
        assert_eq!(c.stop_grace_period, Some(30_000_000_000));
        assert_eq!(t.restart_policy.as_ref().unwrap().condition, Some(TaskSpecRestartPolicyConditionEnum::NONE));
        assert_eq!(t.resources.as_ref().unwrap().limits.as_ref().unwrap().memory_bytes, Some(512 << 20));
        // Locked down as a dyno on one engine is.
        assert_eq!(t.resources.as_ref().unwrap().limits.as_ref().unwrap().pids, Some(crate::runtime::PIDS_LIMIT));
        assert_eq!(t.resources.as_ref().unwrap().limits.as_ref().unwrap().nano_cpus, Some(500_000_000));
        assert!(c.capability_drop.as_ref().unwrap().iter().any(|cap| cap == "NET_RAW"));
        assert_eq!(t.log_driver.as_ref().unwrap().options.as_ref().unwrap()["max-size"], "10m");
        assert_eq!(s.mode.as_ref().unwrap().replicated.as_ref().unwrap().replicas, Some(1));
        let e = s.endpoint_spec.as_ref().unwrap();
        assert_eq!(e.mode, Some(EndpointSpecModeEnum::DNSRR));
        let p = &e.ports.as_ref().unwrap()[0];
        assert_eq!((p.target_port, p.publish_mode, p.published_port), (Some(i64::from(DYNO_PORT)), Some(EndpointPortConfigPublishModeEnum::HOST), None));
        assert!(s.name.as_ref().unwrap().starts_with("paas-shop-web-2-v7-"));
        // A worker publishes nothing.
        let w = service_spec(&spec(false), "i1", "img", "net", Duration::from_secs(30), &[], None, None);
        assert_eq!(w.endpoint_spec.unwrap().ports, None);
    }

    /// A dyno without a command runs its image's own under the watch when
    /// the image has a shell, and unwatched (the image's, untouched) when
    /// not; each reads back as the command it was given.
    #[test]
    fn a_dyno_runs_its_command_or_its_images_own_under_the_watch() {
        let command_in = |s: &ServiceSpec| s.task_template.as_ref().unwrap().container_spec.as_ref().unwrap().command.clone();
        let own = ["docker-entrypoint.sh".to_owned(), "node".to_owned(), "index.js".to_owned()];
        let mut imaged = spec(true);
        imaged.command = String::new();
        let watched = service_spec(&imaged, "i1", "img", "net", Duration::from_secs(30), &[], Some(&own), None);
        assert_eq!(command_in(&watched).unwrap(), ["/bin/sh", "-c", OOM_WATCH, "paas-dyno", "docker-entrypoint.sh", "node", "index.js"]);
        let unwatched = service_spec(&imaged, "i1", "img", "net", Duration::from_secs(30), &[], None, None);
        assert_eq!(command_in(&unwatched), None);
        // A command of the dyno's own wins over the image's.
        let procfile = service_spec(&spec(true), "i1", "img", "net", Duration::from_secs(30), &[], Some(&own), None);
        assert_eq!(command_in(&procfile).unwrap()[4..], ["/bin/sh", "-c", "bundle exec puma"]);
        assert_eq!(command_of(&command_in(&procfile).unwrap()), "bundle exec puma");
        assert_eq!(command_of(&command_in(&watched).unwrap()), "");
        // Services made before the watch: `sh -c COMMAND`.
        assert_eq!(command_of(&["/bin/sh".into(), "-c".into(), "web".into()]), "web");
    }

    fn node(ready: bool) -> NodeSeen {
        NodeSeen { id: "n1".into(), hostname: "paas-tb-n1".into(), addr: Some("10.231.0.11".parse().unwrap()), ready }
    }

    #[test]
    fn a_service_and_its_task_read_back_as_the_dyno_at_its_nodes_address() {
        let mut service: Service = serde_json::from_value(serde_json::json!({"ID": "s1", "CreatedAt": "2026-12-06T02:00:00.5Z"})).unwrap();
        service.spec = Some(service_spec(&spec(true), "i1", "img", "net", Duration::from_secs(30), &[], None, None));
        let n1 = node(true);
        let d = dyno_from(&service, Some(&task("running", None, None, Some(30001))), Some(&n1)).unwrap();
        assert_eq!((d.id.as_str(), d.name(), d.release_version, d.memory), ("s1", "web.2".to_owned(), 7, Some(512 << 20)));
        assert!(d.running);
        assert_eq!(d.addr, Some(crate::runtime::Endpoint::new("10.231.0.11:30001".parse().unwrap())));
        assert_eq!(d.node.as_deref(), Some("paas-tb-n1"));
        assert_eq!(d.created, 1796522400);
        // Not placed yet, or starting: running (never started twice), no address.
        let pending = dyno_from(&service, None, None).unwrap();
        assert!(pending.running && pending.addr.is_none());
        let starting = dyno_from(&service, Some(&task("starting", None, None, None)), Some(&n1)).unwrap();
        assert!(starting.running && starting.addr.is_none() && starting.state == "starting");
        // Ended: no address.
        let ended = dyno_from(&service, Some(&task("failed", Some(1), None, Some(30001))), Some(&n1)).unwrap();
        assert!(!ended.running && ended.addr.is_none());
        // On a node that is down: lost, so replaced elsewhere.
        let lost = dyno_from(&service, Some(&task("running", None, None, Some(30001))), Some(&node(false))).unwrap();
        assert!(!lost.running && lost.state == "lost", "{lost:?}");
        assert_eq!(lost.addr, Some(crate::runtime::Endpoint::new("10.231.0.11:30001".parse().unwrap())), "the router lets go of it by its address");
        // Another kind of service is no dyno.
        service.spec.as_mut().unwrap().labels.as_mut().unwrap().insert(labels::KIND.into(), "run".into());
        assert!(dyno_from(&service, None, None).is_none());
    }

    #[test]
    fn a_tasks_end_is_its_exit_code_or_swarms_reason_or_its_lost_node() {
        assert_eq!(exit_of(&task("running", None, None, None), Some(&node(true))), (true, Exit::default()));
        let (running, exit) = exit_of(&task("failed", Some(3), Some("task: non-zero exit (3)"), None), None);
        assert!(!running);
        assert_eq!((exit.exit_code, exit.error), (Some(3), None));
        let (_, exit) = exit_of(&task("rejected", None, Some("No such image: 10.231.0.10:5000/x@sha256:00"), None), None);
        assert_eq!(
            exit.error.as_deref(),
            Some("No such image: 10.231.0.10:5000/x@sha256:00: its node could not pull it from the registry 10.231.0.10:5000; check that the node reaches 10.231.0.10:5000 and trusts its CA (/etc/docker/certs.d/10.231.0.10:5000/ca.crt, see the README's \"Several hosts\")")
        );
        let (_, exit) = exit_of(&task("rejected", None, Some("No such image: busybox@sha256:00"), None), None);
        assert_eq!(exit.error.as_deref(), Some("No such image: busybox@sha256:00"), "not from a registry: as the swarm says it");
        let (_, exit) = exit_of(&task("failed", Some(137), Some("task: non-zero exit (137)"), None), None);
        assert_eq!((exit.exit_code, exit.oom_killed, exit.error.as_deref()), (Some(137), false, Some(SIGKILLED)));
        assert!(exit.to_string().starts_with("exited with status 137 (killed by SIGKILL: the kernel does this to a dyno over its size"));
        // The dyno's own watch saw the OOM killer: 137, out of memory.
        let (running, exit) = exit_of(&task("failed", Some(OOM_EXIT), Some("task: non-zero exit (239)"), None), None);
        assert!(!running);
        assert_eq!(exit, Exit { exit_code: Some(137), oom_killed: true, error: None });
        assert_eq!(exit.to_string(), "was killed for using more memory than its limit (out of memory)");
        let (_, exit) = exit_of(&task("orphaned", None, None, None), None);
        assert!(exit.error.unwrap().contains("orphaned"), "a lost node's task");
        let (running, exit) = exit_of(&task("running", None, None, None), Some(&node(false)));
        assert!(!running);
        assert_eq!(exit.error.as_deref(), Some("its node paas-tb-n1 is down: the dyno is lost"));
    }

    #[test]
    fn frames_are_taken_whole_however_the_stream_cuts_them() {
        let mut body = Vec::new();
        for (stream, text) in [(1u8, "2026-12-06T04:00:00.1Z one\n"), (2, "2026-12-06T04:00:00.2Z two\n")] {
            body.extend_from_slice(&[stream, 0, 0, 0]);
            body.extend_from_slice(&(text.len() as u32).to_be_bytes());
            body.extend_from_slice(text.as_bytes());
        }
        let mut d = Demux::default();
        let mut frames = Vec::new();
        for chunk in body.chunks(5) {
            frames.extend(d.push(chunk));
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (false, b"2026-12-06T04:00:00.1Z one\n".to_vec()));
        assert!(frames[1].0);
    }

    #[test]
    fn a_multiplexed_log_body_reads_as_its_lines() {
        let mut body = Vec::new();
        for (stream, text) in [(1u8, "one\ntw"), (2, "o\n"), (1, "three\n")] {
            body.extend_from_slice(&[stream, 0, 0, 0]);
            body.extend_from_slice(&(text.len() as u32).to_be_bytes());
            body.extend_from_slice(text.as_bytes());
        }
        assert_eq!(demultiplexed_lines(&body), ["one", "two", "three"]);
        // A cut last frame keeps what came.
        assert_eq!(demultiplexed_lines(&body[..body.len() - 3]), ["one", "two", "thr"]);
        assert!(demultiplexed_lines(b"").is_empty());
    }

    /// `OOM_WATCH` under this machine's `sh` (dash, as Debian's images
    /// have; busybox's ash runs it the same): the command's status comes
    /// through, a stop signal reaches the command and its status is the
    /// dyno's, and the status it gives for an OOM kill is `OOM_EXIT`.
    #[test]
    fn the_swarm_dynos_watch_passes_status_and_signals_through() {
        use std::process::{Command, Stdio};
        assert!(OOM_WATCH.contains(&format!("exit {OOM_EXIT};")), "the script and OOM_EXIT agree");
        let watched = |command: &str| {
            let mut c = Command::new("/bin/sh");
            c.args(["-c", OOM_WATCH, "paas-dyno", "/bin/sh", "-c", command]).stdout(Stdio::piped());
            c
        };
        let status = watched("exit 3").status().unwrap();
        assert_eq!(status.code(), Some(3));
        let out = watched("echo $0 \"$1\"; exit 0").output().unwrap();
        assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(0), "/bin/sh"));
        // SIGTERM to the watch: the command's own handler runs and its
        // status is the dyno's.
        let mut child = watched("trap 'echo stopping; exit 7' TERM; echo up; while :; do sleep 0.05; done").spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(line.trim(), "up");
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert_eq!((status.code(), rest.trim()), (Some(7), "stopping"));
    }
}
