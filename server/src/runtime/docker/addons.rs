//! Add-ons' containers: one service container per add-on (its named
//! volume, its own network where it answers to its name, a restart policy
//! so an engine restart brings it back), joined to attached apps' networks
//! under their alias; and the short-lived client containers beside it that
//! checks, backups, restores and consoles run in.

use super::{is_not_found, locked_down, DockerRuntime};
use crate::runtime::{labels, AddonClientSpec, AddonSpec, AddonStatus, Attachment, DynoId, Exit, ADDON_LABEL, KIND_ADDON, KIND_ADDON_CLIENT};
use anyhow::{anyhow, Context, Result};
use bollard::container::{Config, StopContainerOptions};
use bollard::models::{EndpointSettings, HostConfig, Mount, MountTypeEnum, RestartPolicy, RestartPolicyNameEnum};
use std::collections::HashMap;
use std::time::Duration;

impl DockerRuntime {
    /// The add-on's container, volume and own network share this name.
    fn addon_object(&self, name: &str) -> String {
        format!("paas-{}-addon-{name}", self.instance.chars().take(8).collect::<String>())
    }

    fn addon_labels(&self, name: &str, kind: &str) -> HashMap<String, String> {
        let mut l = self.not_a_dyno(kind);
        l.insert(ADDON_LABEL.to_owned(), name.to_owned());
        l
    }

    /// The add-on's own network (a bridge; clients on this engine join it).
    async fn ensure_addon_network(&self, name: &str) -> Result<String> {
        let net = self.addon_object(name);
        let _one_at_a_time = self.networks.lock().await;
        if self.docker.inspect_network::<String>(&net, None).await.is_ok() {
            return Ok(net);
        }
        let options = bollard::network::CreateNetworkOptions {
            name: net.clone(),
            driver: "bridge".to_owned(),
            check_duplicate: true,
            labels: self.addon_labels(name, KIND_ADDON),
            ..Default::default()
        };
        match self.docker.create_network(options).await {
            Ok(_) => Ok(net),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => Ok(net),
            Err(e) => Err(anyhow!(e).context(format!("cannot create the network of add-on {name}"))),
        }
    }

    pub(super) async fn run_addon(&self, spec: &AddonSpec) -> Result<()> {
        let container = self.addon_object(&spec.name);
        if let Some(status) = self.addon_status(&spec.name).await? {
            if status.image == spec.image {
                if !status.running {
                    self.docker
                        .start_container::<String>(&container, None)
                        .await
                        .with_context(|| format!("cannot start add-on {}", spec.name))?;
                }
                return Ok(());
            }
            // Another image (an upgrade): the container goes, the volume stays.
            self.stop_addon(&spec.name, spec.stop_grace).await?;
            self.remove_now(&container).await;
        }
        let net = self.ensure_addon_network(&spec.name).await?;
        // Labelled, so `docker volume ls --filter label=paas.addon` finds the
        // data of every add-on; creating one that exists changes nothing.
        self.docker
            .create_volume(bollard::volume::CreateVolumeOptions {
                name: container.clone(),
                driver: "local".to_owned(),
                labels: self.addon_labels(&spec.name, KIND_ADDON),
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create the volume of add-on {}", spec.name))?;
        let mut endpoints = HashMap::new();
        endpoints.insert(net.clone(), EndpointSettings { aliases: Some(vec![spec.name.clone()]), ..Default::default() });
        let host = locked_down(HostConfig {
            network_mode: Some(net),
            mounts: Some(vec![Mount {
                target: Some(spec.data_path.clone()),
                source: Some(container.clone()),
                typ: Some(MountTypeEnum::VOLUME),
                ..Default::default()
            }]),
            restart_policy: Some(RestartPolicy { name: Some(RestartPolicyNameEnum::UNLESS_STOPPED), maximum_retry_count: None }),
            nano_cpus: self.nano_cpus,
            ..Default::default()
        });
        let config = Config {
            image: Some(spec.image.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(self.addon_labels(&spec.name, KIND_ADDON)),
            hostname: Some(spec.name.clone()),
            stop_signal: Some(spec.stop_signal.clone()),
            stop_timeout: Some(spec.stop_grace.as_secs().max(1) as i64),
            host_config: Some(host),
            networking_config: Some(bollard::container::NetworkingConfig { endpoints_config: endpoints }),
            ..Default::default()
        };
        let what = format!("add-on {}", spec.name);
        let id = self.create(&container, config, &what).await?;
        self.start_created(&id, &what).await
    }

    pub(super) async fn addon_status(&self, name: &str) -> Result<Option<AddonStatus>> {
        let c = match self.docker.inspect_container(&self.addon_object(name), None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(anyhow!(e).context(format!("cannot inspect add-on {name}"))),
        };
        let restarts = c.restart_count.unwrap_or(0);
        let state = c.state.unwrap_or_default();
        let running = state.running.unwrap_or(false) && !state.restarting.unwrap_or(false);
        Ok(Some(AddonStatus {
            running,
            restarts,
            image: c.config.and_then(|c| c.image).unwrap_or_default(),
            exit: (!running).then(|| Exit {
                exit_code: state.exit_code,
                oom_killed: state.oom_killed.unwrap_or(false),
                error: state.error.filter(|e| !e.is_empty()),
            }),
        }))
    }

    pub(super) async fn stop_addon(&self, name: &str, grace: Duration) -> Result<()> {
        let options = StopContainerOptions { t: grace.as_secs().max(1) as i64 };
        match self.docker.stop_container(&self.addon_object(name), Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304 | 404, .. }) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot stop add-on {name}"))),
        }
    }

    pub(super) async fn remove_addon(&self, name: &str, data: bool) -> Result<()> {
        let object = self.addon_object(name);
        self.remove_now(&object).await;
        match self.docker.remove_network(&object).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(anyhow!(e).context(format!("cannot remove the network of add-on {name}"))),
        }
        if data {
            self.remove_volume(&object).await?;
        }
        Ok(())
    }

    pub(super) async fn connect_addon(&self, name: &str, app: &str, alias: &str) -> Result<()> {
        let net = self.ensure_network(app).await?;
        let options = bollard::network::ConnectNetworkOptions {
            container: self.addon_object(name),
            endpoint_config: EndpointSettings { aliases: Some(vec![alias.to_owned()]), ..Default::default() },
        };
        match self.docker.connect_network(&net, options).await {
            Ok(()) => Ok(()),
            // Already on it (the engine says 403 "already exists").
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 403 | 409, message })
                if message.contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!(e).context(format!("cannot connect add-on {name} to {app}'s network"))),
        }
    }

    pub(super) async fn disconnect_addon(&self, name: &str, app: &str) -> Result<()> {
        let net = self.network_name(app);
        let options = bollard::network::DisconnectNetworkOptions { container: self.addon_object(name), force: true };
        match self.docker.disconnect_network(&net, options).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Not connected to it.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 403 | 500, message })
                if message.contains("is not connected") =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!(e).context(format!("cannot disconnect add-on {name} from {app}'s network"))),
        }
    }

    pub(super) async fn addon_output_tail(&self, name: &str, lines: usize) -> Result<Vec<String>> {
        self.output_tail(&self.addon_object(name), lines).await
    }

    pub(super) async fn start_addon_client(&self, spec: &AddonClientSpec) -> Result<(DynoId, Attachment)> {
        let net = self.ensure_addon_network(&spec.addon).await?;
        let mounts = spec.data_path.as_ref().map(|path| {
            vec![Mount {
                target: Some(path.clone()),
                source: Some(self.addon_object(&spec.addon)),
                typ: Some(MountTypeEnum::VOLUME),
                ..Default::default()
            }]
        });
        let mut host = locked_down(HostConfig { network_mode: Some(net), mounts, nano_cpus: self.nano_cpus, ..Default::default() });
        // Its output is the attach stream's (a dump of gigabytes): the engine
        // keeps no log file of it, which would cost a JSON encoding of every
        // byte, and the disk.
        host.log_config = Some(bollard::models::HostConfigLogConfig { typ: Some("none".into()), config: None });
        let config = Config {
            image: Some(spec.image.clone()),
            entrypoint: Some(spec.cmd.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(self.addon_labels(&spec.addon, KIND_ADDON_CLIENT)),
            tty: Some(spec.tty.is_some()),
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(host),
            ..Default::default()
        };
        let name = format!("{}-client-{}", self.addon_object(&spec.addon), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let what = format!("a client of add-on {}", spec.addon);
        let id = self.create(&name, config, &what).await?;
        let attachment = match self.attach(&id, spec.tty.is_some()).await {
            Ok(a) => a,
            Err(e) => {
                self.remove_now(&id).await;
                return Err(e);
            }
        };
        self.start_created(&id, &what).await?;
        if let Some((cols, rows)) = spec.tty {
            if let Err(e) = self.resize_tty(&id, cols, rows).await {
                tracing::debug!(error = %format!("{e:#}"), "cannot size the terminal");
            }
        }
        Ok((DynoId::from(id), attachment))
    }

    pub(super) async fn finish_addon_client(&self, id: &str) -> Result<Exit> {
        let exit = self.wait_exit(id).await;
        self.remove_now(id).await;
        exit
    }

    /// Runs `cmd` in the add-on's service container (as its user, with
    /// `env`), attached: checks and dumps that need no container of their
    /// own.
    pub(super) async fn exec_in_addon(&self, name: &str, cmd: &[String], env: &std::collections::BTreeMap<String, String>) -> Result<(DynoId, Attachment)> {
        let options = bollard::exec::CreateExecOptions::<String> {
            cmd: Some(cmd.to_vec()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(&self.addon_object(name), options)
            .await
            .with_context(|| format!("cannot run a command in add-on {name}: is it running?"))?;
        let attachment = self.start_exec_attached(&exec.id).await?;
        Ok((DynoId::from(exec.id), attachment))
    }

    /// How an exec ended, once it has (its output ended first).
    pub(super) async fn finish_addon_exec(&self, exec: &str) -> Result<Exit> {
        for _ in 0..200 {
            let inspect = self.docker.inspect_exec(exec).await.context("cannot read how the command ended")?;
            if !inspect.running.unwrap_or(false) {
                return Ok(Exit { exit_code: inspect.exit_code, oom_killed: false, error: None });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the command still runs 10 s after its output ended")
    }

    /// Client containers of add-ons left by an earlier run of the server.
    pub(super) async fn remove_addon_clients(&self) {
        let kind = format!("{}={KIND_ADDON_CLIENT}", labels::KIND);
        for c in self.labelled([kind]).await.unwrap_or_default() {
            if let Some(id) = c.id {
                self.remove_now(&id).await;
            }
        }
    }
}
