//! The swarm backend (#21, being built; the server does not use it yet;
//! Swarm mode is the same engine API, so it lives with the engine's code).
//! Its translations: a dyno as a Swarm service, and a service with its task back as a
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
    TaskSpecContainerSpec, TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The service that runs `spec`: `image` is the release's image by digest
/// (`registry/repo@sha256:…`), `network` the app's overlay.
pub fn service_spec(spec: &DynoSpec, instance: &str, image: &str, network: &str, stop_grace: Duration) -> ServiceSpec {
    let labels = crate::runtime::dyno_labels(spec, instance, KIND_DYNO);
    let command = (!spec.command.is_empty()).then(|| vec!["/bin/sh".to_owned(), "-c".to_owned(), spec.command.clone()]);
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
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit { memory_bytes: spec.memory, ..Default::default() }),
                ..Default::default()
            }),
            // paas restarts crashed dynos, with its backoff and records.
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig { target: Some(network.to_owned()), ..Default::default() }]),
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

/// The dyno a service of ours runs, with the task that runs it (the newest
/// one; none yet while Swarm places it) and the address of the node the
/// task is on. `None` for services that are not dynos.
pub fn dyno_from(service: &Service, task: Option<&Task>, node_addr: Option<IpAddr>) -> Option<Dyno> {
    let spec = service.spec.as_ref()?;
    let l = spec.labels.as_ref()?;
    if l.get(labels::KIND).map(String::as_str) != Some(KIND_DYNO) {
        return None;
    }
    let status = task.and_then(|t| t.status.as_ref());
    let state = status.and_then(|s| s.state).unwrap_or(TaskState::PENDING);
    let running = state == TaskState::RUNNING;
    let port = status
        .and_then(|s| s.port_status.as_ref())
        .and_then(|p| p.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.target_port == Some(i64::from(DYNO_PORT)))?.published_port)
        .and_then(|p| u16::try_from(p).ok());
    let addr = match (running, node_addr, port) {
        (true, Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        _ => None,
    };
    let container = spec.task_template.as_ref().and_then(|t| t.container_spec.as_ref());
    let command = container.and_then(|c| c.command.as_ref()).and_then(|c| c.last().cloned()).unwrap_or_default();
    let seen = DynoObserved {
        id: service.id.clone()?,
        running,
        state: state.to_string(),
        command,
        addr,
        created: service
            .created_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp()),
        ip: node_addr,
    };
    Some(crate::runtime::dyno_identity(l)?.dyno(seen))
}

/// Whether a dyno's task still runs, and how it ended when it does not:
/// its container's exit code, or Swarm's error (an image it could not
/// pull, a node that was lost). Not known here: whether the kernel killed
/// it for memory (the worker's engine knows, and paas never asks a worker).
pub fn exit_of(task: &Task) -> (bool, Exit) {
    let Some(status) = task.status.as_ref() else { return (true, Exit::default()) };
    let state = status.state.unwrap_or(TaskState::PENDING);
    let ended = matches!(
        state,
        TaskState::COMPLETE | TaskState::SHUTDOWN | TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED | TaskState::REMOVE
    );
    let exit_code = status.container_status.as_ref().and_then(|c| c.exit_code).filter(|_| ended);
    let error = match (ended, exit_code, status.err.as_deref()) {
        (true, None, Some(err)) => Some(err.to_owned()),
        (true, None, None) => Some(format!("its task ended {state} without an exit code")),
        _ => None,
    };
    (!ended, Exit { exit_code, oom_killed: false, error })
}

/// The manager's side: the calls a swarm backend makes, over this
/// engine's connection (paas talks to the manager only, never to a
/// worker's engine). Used by the test bed's test so far, not by the server.
impl super::DockerRuntime {
    /// The app's network on a swarm: an attachable overlay of the same name
    /// as on one host, so one-off containers on the manager join it.
    pub async fn swarm_network(&self, app: &str) -> anyhow::Result<String> {
        self.ensure_network_of(app, "overlay", true).await
    }

    /// Creates the service that runs `spec` (`image`: by digest); its id.
    pub async fn swarm_start(&self, spec: &DynoSpec, image: &str, stop_grace: Duration) -> anyhow::Result<String> {
        let network = self.swarm_network(&spec.app).await?;
        let service = service_spec(spec, &self.instance, image, &network, stop_grace);
        let created = self.docker.create_service(service, None).await.map_err(|e| anyhow::anyhow!("cannot create the service of {}.{}: {e}", spec.process_type, spec.index))?;
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

    /// A GET the manager answers (`/tasks`, `/nodes`, a service's logs)
    /// over the engine's HTTP API: bollard 0.18 has no task, node or
    /// service-log API.
    async fn swarm_get(&self, path: &str) -> anyhow::Result<bytes::Bytes> {
        use http_body_util::BodyExt;
        let request = hyper::Request::get(self.api_path(path))
            .header("Host", "docker")
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        let response = self.engine_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            anyhow::bail!("the manager answered {status} to GET {path}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// A list the manager keeps, as JSON (see [`Self::swarm_get`]).
    async fn swarm_list<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<Vec<T>> {
        Ok(serde_json::from_slice(&self.swarm_get(path).await?)?)
    }

    /// Whether a dyno's service still runs its task, and how the task
    /// ended when it does not (see [`exit_of`]).
    pub async fn swarm_exit(&self, service_id: &str) -> anyhow::Result<(bool, Exit)> {
        let filters = serde_json::json!({ "service": [service_id] }).to_string();
        let path = format!("/tasks?{}", serde_urlencoded::to_string([("filters", filters)])?);
        let tasks: Vec<Task> = self.swarm_list(&path).await?;
        Ok(newest_task(&tasks, service_id).map_or((true, Exit::default()), exit_of))
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

    /// The app's dynos (or every app's) as the manager sees them: each
    /// service of ours with its newest task, at its node's address.
    pub async fn swarm_dynos(&self, app: Option<&str>) -> anyhow::Result<Vec<Dyno>> {
        let filters = HashMap::from([("label".to_owned(), vec![Self::app_label(app)])]);
        let services = self
            .docker
            .list_services(Some(bollard::service::ListServicesOptions { filters, ..Default::default() }))
            .await
            .map_err(|e| anyhow::anyhow!("cannot list the swarm's services: {e}"))?;
        let tasks: Vec<Task> = self.swarm_list("/tasks").await?;
        let nodes: Vec<bollard::models::Node> = self.swarm_list("/nodes").await?;
        let node_addr = |id: &str| -> Option<IpAddr> {
            let node = nodes.iter().find(|n| n.id.as_deref() == Some(id))?;
            node.status.as_ref()?.addr.as_deref()?.parse().ok()
        };
        Ok(services
            .iter()
            .filter_map(|service| {
                let newest = newest_task(&tasks, service.id.as_deref()?);
                let addr = newest.and_then(|t| node_addr(t.node_id.as_deref()?));
                dyno_from(service, newest, addr)
            })
            .collect())
    }
}

/// A service's newest task: the one that runs its dyno now, or ran it last.
fn newest_task<'a>(tasks: &'a [Task], service_id: &str) -> Option<&'a Task> {
    tasks.iter().filter(|t| t.service_id.as_deref() == Some(service_id)).max_by(|a, b| a.created_at.cmp(&b.created_at))
}

/// The lines of a multiplexed log body (frames of an 8-byte header, the
/// stream in byte 0 and the length in bytes 4-7, then the bytes).
pub fn demultiplexed_lines(body: &[u8]) -> Vec<String> {
    let mut text = Vec::new();
    let mut at = 0;
    while at + 8 <= body.len() {
        let len = u32::from_be_bytes([body[at + 4], body[at + 5], body[at + 6], body[at + 7]]) as usize;
        let end = (at + 8 + len).min(body.len());
        text.extend_from_slice(&body[at + 8..end]);
        at = end;
    }
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
        let s = service_spec(&spec(true), "i1", "10.231.0.10:5000/paas/shop@sha256:ab", "paas-app-shop", Duration::from_secs(30));
        let t = s.task_template.as_ref().unwrap();
        let c = t.container_spec.as_ref().unwrap();
        assert_eq!(c.image.as_deref(), Some("10.231.0.10:5000/paas/shop@sha256:ab"));
        assert_eq!(c.command.as_ref().unwrap(), &["/bin/sh", "-c", "bundle exec puma"]);
        assert_eq!(c.stop_grace_period, Some(30_000_000_000));
        assert_eq!(t.restart_policy.as_ref().unwrap().condition, Some(TaskSpecRestartPolicyConditionEnum::NONE));
        assert_eq!(t.resources.as_ref().unwrap().limits.as_ref().unwrap().memory_bytes, Some(512 << 20));
        assert_eq!(s.mode.as_ref().unwrap().replicated.as_ref().unwrap().replicas, Some(1));
        let e = s.endpoint_spec.as_ref().unwrap();
        assert_eq!(e.mode, Some(EndpointSpecModeEnum::DNSRR));
        let p = &e.ports.as_ref().unwrap()[0];
        assert_eq!((p.target_port, p.publish_mode, p.published_port), (Some(i64::from(DYNO_PORT)), Some(EndpointPortConfigPublishModeEnum::HOST), None));
        assert!(s.name.as_ref().unwrap().starts_with("paas-shop-web-2-v7-"));
        // A worker publishes nothing.
        let w = service_spec(&spec(false), "i1", "img", "net", Duration::from_secs(30));
        assert_eq!(w.endpoint_spec.unwrap().ports, None);
    }

    #[test]
    fn a_service_and_its_task_read_back_as_the_dyno_at_its_nodes_address() {
        let mut service: Service = serde_json::from_value(serde_json::json!({"ID": "s1", "CreatedAt": "2026-12-06T02:00:00.5Z"})).unwrap();
        service.spec = Some(service_spec(&spec(true), "i1", "img", "net", Duration::from_secs(30)));
        let node: IpAddr = "10.231.0.11".parse().unwrap();
        let d = dyno_from(&service, Some(&task("running", None, None, Some(30001))), Some(node)).unwrap();
        assert_eq!((d.container_id.as_str(), d.name(), d.release_version, d.memory), ("s1", "web.2".to_owned(), 7, Some(512 << 20)));
        assert!(d.running);
        assert_eq!(d.addr, Some("10.231.0.11:30001".parse().unwrap()));
        assert_eq!(d.created, 1796522400);
        // Not placed yet, or ended: no address.
        assert_eq!(dyno_from(&service, None, None).unwrap().addr, None);
        let ended = dyno_from(&service, Some(&task("failed", Some(1), None, Some(30001))), Some(node)).unwrap();
        assert!(!ended.running && ended.addr.is_none());
        // Another kind of service is no dyno.
        service.spec.as_mut().unwrap().labels.as_mut().unwrap().insert(labels::KIND.into(), "run".into());
        assert!(dyno_from(&service, None, None).is_none());
    }

    #[test]
    fn a_tasks_end_is_its_exit_code_or_swarms_reason() {
        assert_eq!(exit_of(&task("running", None, None, None)), (true, Exit::default()));
        let (running, exit) = exit_of(&task("failed", Some(3), Some("task: non-zero exit (3)"), None));
        assert!(!running);
        assert_eq!((exit.exit_code, exit.error), (Some(3), None));
        let (_, exit) = exit_of(&task("rejected", None, Some("No such image: 10.231.0.10:5000/x@sha256:00"), None));
        assert_eq!(exit.error.as_deref(), Some("No such image: 10.231.0.10:5000/x@sha256:00"));
        let (_, exit) = exit_of(&task("orphaned", None, None, None));
        assert!(exit.error.unwrap().contains("orphaned"), "a lost node's task");
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
}
