//! Dynos on the engine: the labelled container of each (its name, config
//! and the app's network), listing them back from the engine's labels, and
//! stopping, removing and waiting for them; the engine's exit events.

use super::{holders, is_not_found, locked_down, DockerRuntime};
use crate::runtime::{labels, Dyno, DynoSpec, DYNO_PORT};
use anyhow::{anyhow, Context, Result};
use bollard::container::WaitContainerOptions;
use bollard::container::{Config, StopContainerOptions};
use bollard::models::{ContainerSummary, HostConfig, PortBinding};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

impl DockerRuntime {
    /// The container as a dyno of `kind` (`dyno`, or `run` for one-off
    /// dynos); None for any other container. With `holders` (the running
    /// network holders, listed with it), a dyno whose holder is not among
    /// them is not running: its network went with the holder.
    pub(super) fn dyno_from_summary(&self, c: &ContainerSummary, kind: &str, holders: Option<&HashSet<&str>>) -> Option<Dyno> {
        let l = c.labels.as_ref()?;
        // Every container paas makes says what it is, explicitly (images
        // may carry paas labels of their own, e.g. committed ones). Dynos
        // made before `paas.kind` existed have none and still count.
        let own = l.get(labels::KIND).map_or(crate::runtime::KIND_DYNO, String::as_str);
        if own != kind {
            return None;
        }
        let port = c.ports.as_ref().and_then(|ports| {
            ports
                .iter()
                .find(|p| p.private_port == DYNO_PORT && p.public_port.is_some())
                .and_then(|p| p.public_port)
        });
        let holder = l.get(holders::HOLDER_LABEL);
        let held = holder.is_none_or(|h| holders.is_none_or(|running| running.contains(h.as_str())));
        let running = c.state.as_deref() == Some("running") && held;
        // A dyno in a holder's network has the holder's address.
        let held_ip: Option<std::net::IpAddr> = l.get(holders::IP_LABEL).and_then(|ip| ip.parse().ok());
        let ip = held_ip.or_else(|| {
            c.network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .and_then(|n| n.values().find_map(|e| e.ip_address.as_deref()?.parse().ok()))
        });
        let addr = match (held_ip, l.get(holders::WEB_LABEL)) {
            (Some(ip), Some(_)) => running.then(|| SocketAddr::new(ip, DYNO_PORT)),
            (Some(_), None) => None,
            (None, _) => port.filter(|_| running).map(|p| match ip {
                Some(ip) if self.via_container => SocketAddr::new(ip, DYNO_PORT),
                _ => SocketAddr::from(([127, 0, 0, 1], p)),
            }),
        };
        let seen = crate::runtime::DynoObserved {
            id: c.id.clone()?.into(),
            running,
            state: c.state.clone().unwrap_or_default(),
            command: c.command.clone().unwrap_or_default(),
            addr: addr.map(crate::runtime::Endpoint::new),
            created: c.created.unwrap_or_default(),
            ip,
            node: None,
        };
        Some(crate::runtime::dyno_identity(l)?.dyno(seen))
    }

    pub(super) async fn dyno(&self, container_id: &str) -> Result<Dyno> {
        self.listed(container_id)
            .await?
            .iter()
            .find_map(|c| self.dyno_from_summary(c, crate::runtime::KIND_DYNO, None))
            .ok_or_else(|| anyhow!("container {container_id} vanished right after it started"))
    }

    /// A dyno container's name and config: labels (all `paas.*` set
    /// explicitly, `kind` among them, plus `extra`), env, command, network,
    /// memory, and for a web dyno `$PORT` published on loopback.
    pub(super) async fn dyno_config(
        &self,
        spec: &DynoSpec,
        kind: &str,
        extra: &[(&str, String)],
    ) -> Result<(String, Config<String>)> {
        let name = format!(
            "paas-{}-{}.{}-v{}-{}",
            spec.app,
            spec.process_type,
            spec.index,
            spec.release_version,
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let network = self.ensure_network(&spec.app).await?;
        let mut labels = crate::runtime::dyno_labels(spec, &self.instance, kind);
        labels.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
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
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            );
            (Some(exposed), Some(bindings))
        } else {
            (None, None)
        };
        let cmd = (!spec.command.is_empty()).then(|| vec!["/bin/sh".to_owned(), "-c".to_owned(), spec.command.clone()]);
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

    /// The app's own bridge network: its dynos reach each other and the
    /// internet, but no other app's dynos.
    pub(super) fn network_name(&self, app: &str) -> String {
        format!("paas-{}-{app}", self.instance.chars().take(8).collect::<String>())
    }

    /// Creates the app's network when missing. Idempotent, and safe when two
    /// dynos start at once (one at a time: the engine would make two
    /// networks of one name, and then find the name ambiguous).
    pub(super) async fn ensure_network(&self, app: &str) -> Result<String> {
        if self.overlay {
            self.ensure_network_of(app, "overlay", true).await
        } else {
            self.ensure_network_of(app, "bridge", false).await
        }
    }

    /// Creates the app's network with `driver` (`bridge` on one engine,
    /// an `attachable` `overlay` on a swarm) when missing.
    pub(super) async fn ensure_network_of(&self, app: &str, driver: &str, attachable: bool) -> Result<String> {
        let name = self.network_name(app);
        let _one_at_a_time = self.networks.lock().await;
        if self.docker.inspect_network::<String>(&name, None).await.is_ok() {
            return Ok(name);
        }
        let mut net_labels = HashMap::new();
        net_labels.insert(labels::INSTANCE.to_owned(), self.instance.clone());
        net_labels.insert(labels::APP.to_owned(), app.to_owned());
        let options = bollard::network::CreateNetworkOptions {
            name: name.clone(),
            driver: driver.to_owned(),
            attachable,
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

    /// The label filter for one app's containers or services (or every
    /// app's).
    pub(super) fn app_label(app: Option<&str>) -> String {
        match app {
            Some(app) => format!("{}={app}", labels::APP),
            None => labels::APP.to_owned(),
        }
    }

    pub(super) async fn list_dynos(&self, app: Option<&str>) -> Result<Vec<Dyno>> {
        let list = self.labelled([Self::app_label(app)]).await?;
        Ok(self.dynos_in(&list))
    }

    /// The dynos in a listing of app containers (their holders among them).
    fn dynos_in(&self, list: &[ContainerSummary]) -> Vec<Dyno> {
        let holders = Self::running_holders(list);
        list.iter()
            .filter_map(|c| self.dyno_from_summary(c, crate::runtime::KIND_DYNO, Some(&holders)))
            .collect()
    }

    /// Starts a dyno in a ready network holder of its app when there is
    /// one (see `holders`), else with an endpoint of its own.
    pub(super) async fn start_dyno(&self, spec: &DynoSpec) -> Result<Dyno> {
        let what = format!("{}.{}", spec.process_type, spec.index);
        if let Some(holder) = self.take_holder(&spec.app).await {
            match self.start_in_holder(spec, &holder, &what).await {
                Ok(dyno) => return Ok(dyno),
                Err(e) => {
                    tracing::warn!(app = %spec.app, error = %format!("{e:#}"), "cannot start a dyno in its network holder; starting it on its own");
                    self.remove_later(&holder.id);
                }
            }
        }
        let (name, config) = self.dyno_config(spec, crate::runtime::KIND_DYNO, &[]).await?;
        let id = self.create(&name, config, &what).await?;
        self.start_created(&id, &what).await?;
        self.dyno(&id).await
    }

    /// Creates and starts a dyno in `holder`'s network namespace: no
    /// network or published port of its own, its address the holder's.
    async fn start_in_holder(&self, spec: &DynoSpec, holder: &holders::Holder, what: &str) -> Result<Dyno> {
        let mut extra = vec![(holders::HOLDER_LABEL, holder.id.clone()), (holders::IP_LABEL, holder.ip.to_string())];
        if spec.web {
            extra.push((holders::WEB_LABEL, "1".to_owned()));
        }
        let (name, mut config) = self.dyno_config(spec, crate::runtime::KIND_DYNO, &extra).await?;
        config.exposed_ports = None;
        if let Some(host) = config.host_config.as_mut() {
            host.port_bindings = None;
            host.network_mode = Some(format!("container:{}", holder.id));
        }
        let id = self.create(&name, config, what).await?;
        self.start_created(&id, what).await?;
        self.dyno(&id).await
    }

    pub(super) async fn halt_dyno(&self, container_id: &str, grace: Duration) -> Result<()> {
        let t = grace.as_secs().try_into().unwrap_or(i64::MAX);
        match self
            .docker
            .stop_container(container_id, Some(StopContainerOptions { t }))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot stop container {container_id}"))),
        }
    }

    pub(super) async fn stop_dyno(&self, container_id: &str, grace: Duration) -> Result<()> {
        let holder = self.holder_of(container_id).await;
        self.halt_dyno(container_id, grace).await?;
        self.remove_container(container_id).await?;
        match holder {
            Some(holder) => self.remove_container(&holder).await,
            None => Ok(()),
        }
    }

    pub(super) async fn list_app(&self, app: &str) -> Result<(Vec<Dyno>, Vec<crate::runtime::OneOff>)> {
        let list = self.labelled([format!("{}={app}", labels::APP)]).await?;
        let dynos = self.dynos_in(&list);
        Ok((dynos, list.iter().filter_map(|c| self.one_off_from_summary(c)).collect()))
    }

    pub(super) async fn remove_app_network(&self, app: &str) -> Result<()> {
        self.remove_holders(|a| a == app).await?;
        match self.docker.remove_network(&self.network_name(app)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove the network of {app}"))),
        }
    }

    pub(super) async fn prune_networks(&self, apps: &HashSet<&str>) -> Result<()> {
        self.remove_holders(|a| !apps.contains(a)).await?;
        let mut filters = HashMap::new();
        filters.insert("label".to_owned(), vec![self.instance_label(), labels::APP.to_owned()]);
        let networks = self
            .docker
            .list_networks(Some(bollard::network::ListNetworksOptions { filters }))
            .await
            .context("cannot list networks")?;
        for net in networks {
            let app = net
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::APP))
                .cloned()
                .unwrap_or_default();
            // No app: an add-on's own network (its label says which add-on).
            if app.is_empty() {
                continue;
            }
            if let (false, Some(name)) = (apps.contains(app.as_str()), net.name) {
                // In use (a dyno still stopping): a later pass removes it.
                let _ = self.docker.remove_network(&name).await;
            }
        }
        Ok(())
    }

    pub(super) async fn exit_of(&self, container_id: &str) -> Result<(bool, crate::runtime::Exit)> {
        let c = self
            .docker
            .inspect_container(container_id, None)
            .await
            .context("cannot inspect the dyno")?;
        let state = c.state.unwrap_or_default();
        let mut exit = crate::runtime::Exit {
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.filter(|e| !e.is_empty()),
        };
        let running = state.running.unwrap_or(false);
        // Running, but off the network if its holder stopped (see
        // `dyno_from_summary`).
        let holder = c.config.and_then(|c| c.labels?.remove(holders::HOLDER_LABEL));
        if let (true, Some(holder)) = (running, holder) {
            let held = self.docker.inspect_container(&holder, None).await.ok().and_then(|h| h.state?.running);
            if held != Some(true) {
                exit.exit_code = None;
                exit.error = Some(format!("the container holding its network ({}) stopped", &holder[..holder.len().min(12)]));
                return Ok((false, exit));
            }
        }
        Ok((running, exit))
    }

    /// The addresses a dyno listens on: its socket table, read through
    /// `/proc` when this server shares the engine's process namespace
    /// (checked by the process's cgroup naming the container), else by
    /// `cat` in the container.
    pub(super) async fn listeners(&self, container_id: &str) -> Result<Vec<std::net::SocketAddr>> {
        // Docker's embedded DNS server listens in every container on a
        // user network, at 127.0.0.11: not the dyno's.
        let resolver = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11));
        Ok(self.socket_table(container_id).await?.into_iter().filter(|a| a.ip() != resolver).collect())
    }

    /// The size of a dyno's writable layer (the engine adds it up), and
    /// the layer's directory when this server can read it.
    pub(super) async fn disk_use(&self, container_id: &str) -> Result<crate::runtime::DiskUse> {
        let c = self
            .docker
            .inspect_container(container_id, Some(bollard::container::InspectContainerOptions { size: true }))
            .await
            .context("cannot inspect the dyno")?;
        let dir = c
            .graph_driver
            .and_then(|g| g.data.get("UpperDir").cloned())
            .map(std::path::PathBuf::from)
            .filter(|d| std::fs::read_dir(d).is_ok());
        Ok(crate::runtime::DiskUse { bytes: c.size_rw.unwrap_or(0), dir })
    }

    pub(super) async fn stats(&self, container_id: &str) -> Result<crate::runtime::DynoStats> {
        let options = bollard::container::StatsOptions { stream: false, one_shot: true };
        let s = self
            .docker
            .stats(container_id, Some(options))
            .next()
            .await
            .context("the engine gave no stats for the dyno")?
            .context("cannot read the dyno's stats")?;
        let m = &s.memory_stats;
        let inactive = match m.stats {
            Some(bollard::container::MemoryStatsStats::V1(v1)) => v1.total_inactive_file,
            Some(bollard::container::MemoryStatsStats::V2(v2)) => v2.inactive_file,
            None => 0,
        };
        Ok(crate::runtime::DynoStats {
            memory: m.usage.unwrap_or(0).saturating_sub(inactive),
            charged: m.usage.unwrap_or(0),
            limit: m.limit.unwrap_or(0),
            cpu_ns: s.cpu_stats.cpu_usage.total_usage,
            failcnt: m.failcnt,
        })
    }

    async fn socket_table(&self, container_id: &str) -> Result<Vec<std::net::SocketAddr>> {
        let c = self.docker.inspect_container(container_id, None).await.context("cannot inspect the dyno")?;
        let id = c.id.unwrap_or_default();
        if let Some(pid) = c.state.and_then(|s| s.pid).filter(|p| *p > 0) {
            let ours = tokio::fs::read_to_string(format!("/proc/{pid}/cgroup")).await.is_ok_and(|g| !id.is_empty() && g.contains(&id));
            if ours {
                let mut text = String::new();
                for table in ["tcp", "tcp6"] {
                    text.push_str(&tokio::fs::read_to_string(format!("/proc/{pid}/net/{table}")).await.unwrap_or_default());
                }
                return Ok(crate::runtime::sockets::listeners(&text));
            }
        }
        let options = bollard::exec::CreateExecOptions::<String> {
            cmd: Some(vec!["cat".into(), "/proc/net/tcp".into(), "/proc/net/tcp6".into()]),
            attach_stdout: Some(true),
            attach_stderr: Some(false),
            ..Default::default()
        };
        let exec = self.docker.create_exec(container_id, options).await.context("cannot look into the dyno")?;
        let mut text = String::new();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = self.docker.start_exec(&exec.id, None).await? {
            let read = async {
                while let Some(Ok(chunk)) = output.next().await {
                    if text.len() < 1 << 20 {
                        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
        }
        Ok(crate::runtime::sockets::listeners(&text))
    }

    pub(super) async fn wait_exit(&self, container_id: &str) -> Result<crate::runtime::Exit> {
        let mut wait = self.docker.wait_container(container_id, None::<WaitContainerOptions<String>>);
        match wait.next().await {
            Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {}
            Some(Err(e)) if is_not_found(&e) => anyhow::bail!("the container is gone"),
            Some(Err(e)) => return Err(anyhow!(e).context("cannot wait for the container")),
            None => {}
        }
        Ok(self.exit_of(container_id).await?.1)
    }

    pub(super) fn watch_exits(&self) -> mpsc::Receiver<(String, crate::runtime::DynoId)> {
        let (tx, rx) = mpsc::channel(256);
        let docker = self.docker.clone();
        let instance = self.instance_label();
        tokio::spawn(async move {
            while !tx.is_closed() {
                let mut filters = HashMap::new();
                filters.insert("type".to_owned(), vec!["container".to_owned()]);
                filters.insert("event".to_owned(), vec!["die".to_owned()]);
                filters.insert("label".to_owned(), vec![instance.clone(), labels::APP.to_owned()]);
                let mut events = docker.events(Some(bollard::system::EventsOptions::<String> {
                    filters,
                    ..Default::default()
                }));
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
                        if tx.send((app, id.into())).await.is_err() {
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
}
