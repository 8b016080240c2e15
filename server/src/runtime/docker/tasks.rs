//! Tasks: a command in a throwaway container (buildpack builds, the release
//! phase, stack steps), with files copied in and out, its output as lines,
//! a timeout, and its exit (OOM told apart); in a spare when one is ready.

use super::{is_not_found, locked_down, spares, DockerRuntime};
use crate::runtime::{TaskResult, TaskSpec};
use anyhow::{anyhow, Context, Result};
use bollard::container::Config;
use bollard::container::{DownloadFromContainerOptions, LogOutput, WaitContainerOptions};
use bollard::image::CommitContainerOptions;
use bollard::models::{HostConfig, Mount, MountTypeEnum, MountVolumeOptions};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

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
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn task_env(spec: &TaskSpec) -> Vec<String> {
    spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Sends a container's output (logs or an exec's stream) on as lines,
/// skipping blank ones; `\r` ends a line too (progress bars); long lines
/// are cut ([`crate::runtime::LineSplitter`]).
async fn forward_lines<S>(mut stream: S, output: &mpsc::Sender<String>)
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut lines = crate::runtime::LineSplitter::default();
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

/// What a spare runs its task's command in (`sh -c`, fixed text; the
/// task's values come as arguments): the first `$1` bytes of stdin are the
/// task's `upload` tar, unpacked at `/`; the command's output goes to
/// stderr; after it exits 0, the folder `$3` under `$2` goes to stdout as a
/// tar. Copying in and out through the engine (`PUT` and `GET
/// /containers/{id}/archive`) cost 40-50 ms each on a warm build, mostly the
/// engine starting a copy of itself to unpack or pack in the container's
/// root; this costs the spare a `head` and a `tar`.
const SPARE_WRAPPER: &str = r#"n=$1 dir=$2 base=$3; shift 3
if [ "$n" != 0 ]; then head -c "$n" | tar -xf - -C / || { echo " !     cannot unpack the build's files in the build container" >&2; exit 125; }; fi
"$@" </dev/null >&2 || exit
[ -z "$base" ] || exec tar -cf - -C "$dir" "$base""#;

/// The task's one `download` path, as (host file, its folder, its name),
/// when it has exactly one: a spare sends that back on its stdout.
fn streamed_download(spec: &TaskSpec) -> Option<(&std::path::Path, String, String)> {
    let [(path, host_file)] = spec.download.as_slice() else {
        return None;
    };
    let path = std::path::Path::new(path);
    let dir = path.parent()?.to_str()?.to_owned();
    let base = path.file_name()?.to_str()?.to_owned();
    Some((host_file.as_path(), if dir.is_empty() { "/".into() } else { dir }, base))
}

/// [`forward_lines`] for stderr, and stdout (a tar of the task's
/// `download` folder) written to `host_file`, at most `limit` bytes.
async fn forward_with_download<S>(mut stream: S, output: &mpsc::Sender<String>, host_file: &std::path::Path, limit: Option<u64>) -> Result<()>
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let mut file = tokio::io::BufWriter::new(
        tokio::fs::File::create(host_file)
            .await
            .with_context(|| format!("cannot create {}", host_file.display()))?,
    );
    let mut copied = 0u64;
    let mut lines = crate::runtime::LineSplitter::default();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(LogOutput::StdOut { message }) => {
                copied += message.len() as u64;
                if let Some(limit) = limit.filter(|l| copied > *l) {
                    drop(file);
                    let _ = tokio::fs::remove_file(host_file).await;
                    return Err(crate::runtime::OutputTooLarge(limit).into());
                }
                file.write_all(&message).await?;
            }
            Ok(LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                for line in lines.push(&message) {
                    let _ = output.send(line).await;
                }
            }
            Ok(_) => continue,
            Err(e) => return Err(anyhow!(e).context("lost the build container's output")),
        }
    }
    if let Some(line) = lines.finish() {
        let _ = output.send(line).await;
    }
    file.flush().await?;
    Ok(())
}

impl DockerRuntime {
    /// The container a task runs in; `extra` labels on top of the task's.
    pub(super) fn task_config(&self, spec: &TaskSpec, extra: &[(&str, &str)]) -> Config<String> {
        let mut mounts: Vec<Mount> = spec
            .volumes
            .iter()
            .map(|(volume, target)| Mount {
                typ: Some(MountTypeEnum::VOLUME),
                source: Some(volume.clone()),
                target: Some(target.clone()),
                // Labelled when the mount makes it: this instance's, so
                // `paas-server gc` may sweep it once its app is gone.
                volume_options: Some(MountVolumeOptions {
                    labels: Some(HashMap::from([(crate::runtime::labels::INSTANCE.to_owned(), self.instance.clone())])),
                    ..Default::default()
                }),
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
            host_config: Some(if spec.platform_step {
                HostConfig { cap_drop: None, ..host }
            } else {
                host
            }),
            ..Default::default()
        }
    }

    pub(super) async fn upload_task_files(&self, id: &str, spec: &TaskSpec) -> Result<()> {
        if let Some(tar) = &spec.upload {
            self.upload_tar(id, tar).await.context("cannot copy files into the task container")?;
        }
        Ok(())
    }

    /// Copies each of the task's `download` paths out of the container.
    pub(super) async fn download_task_files(&self, id: &str, spec: &TaskSpec) -> Result<()> {
        let mut copied = 0u64;
        for (path, host_file) in &spec.download {
            let mut stream = self
                .docker
                .download_from_container(id, Some(DownloadFromContainerOptions { path: path.as_str() }));
            let mut file = tokio::fs::File::create(host_file)
                .await
                .with_context(|| format!("cannot create {}", host_file.display()))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.with_context(|| format!("cannot copy {path} out of the task container"))?;
                copied += chunk.len() as u64;
                if let Some(limit) = spec.download_limit.filter(|l| copied > *l) {
                    drop(file);
                    let _ = tokio::fs::remove_file(host_file).await;
                    return Err(crate::runtime::OutputTooLarge(limit).into());
                }
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
        }
        Ok(())
    }

    /// Runs the task in a started spare: its command runs with `exec`, its
    /// files going in on the exec's stdin and its `download` folder coming
    /// back on its stdout ([`SPARE_WRAPPER`]); its output and exit code come
    /// back as a fresh container's would. None when the spare could not take
    /// the task (it stopped since it was checked): nothing of the task ran,
    /// so a fresh container can run it instead.
    pub(super) async fn run_in_spare(
        &self,
        id: &str,
        spec: &TaskSpec,
        output: &mpsc::Sender<String>,
    ) -> Option<Result<TaskResult>> {
        let since = unix_now();
        let upload_bytes = match &spec.upload {
            Some(tar) => match tokio::fs::metadata(tar).await {
                Ok(m) => m.len(),
                Err(e) => return Some(Err(anyhow!(e).context(format!("cannot read {}", tar.display())))),
            },
            None => 0,
        };
        let streamed = streamed_download(spec);
        let (dir, base) = streamed.map_or((String::new(), String::new()), |(_, dir, base)| (dir, base));
        let mut cmd = vec!["/bin/sh".to_owned(), "-c".to_owned(), SPARE_WRAPPER.to_owned(), "paas-task".to_owned()];
        cmd.extend([upload_bytes.to_string(), dir, base]);
        cmd.extend(spec.cmd.iter().cloned());
        let started = async {
            let options = bollard::exec::CreateExecOptions::<String> {
                cmd: Some(cmd),
                env: Some(task_env(spec)),
                attach_stdin: Some(upload_bytes > 0),
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

    pub(super) async fn finish_in_spare(
        &self,
        id: &str,
        spec: &TaskSpec,
        output: &mpsc::Sender<String>,
        since: f64,
        exec: String,
        attached: bollard::exec::StartExecResults,
    ) -> Result<TaskResult> {
        let streamed = streamed_download(spec);
        let run = async {
            let (stream, mut input) = match attached {
                bollard::exec::StartExecResults::Attached { output, input } => (output, input),
                bollard::exec::StartExecResults::Detached => anyhow::bail!("the engine ran {} detached", spec.name),
            };
            let send = async {
                if let Some(tar) = &spec.upload {
                    let mut file = tokio::fs::File::open(tar)
                        .await
                        .with_context(|| format!("cannot open {}", tar.display()))?;
                    tokio::io::copy(&mut file, &mut input)
                        .await
                        .context("cannot copy files into the task container")?;
                    // The wrapper reads exactly the tar's length; closing
                    // is a courtesy, and an engine may not pass it on.
                    let _ = input.shutdown().await;
                }
                Ok::<_, anyhow::Error>(())
            };
            let receive = async {
                match streamed {
                    Some((host_file, ..)) => forward_with_download(stream, output, host_file, spec.download_limit).await,
                    None => {
                        forward_lines(stream, output).await;
                        Ok(())
                    }
                }
            };
            let (sent, received) = tokio::join!(send, receive);
            sent?;
            received?;
            let inspect = self
                .docker
                .inspect_exec(&exec)
                .await
                .with_context(|| format!("cannot read how {} ended", spec.name))?;
            Ok::<_, anyhow::Error>(inspect.exit_code.unwrap_or(-1))
        };
        let exit_code = within_timeout(spec, run).await?;
        if exit_code == 0 && streamed.is_none() {
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
    pub(super) async fn had_oom(&self, id: &str, since: f64) -> bool {
        let mut filters = HashMap::new();
        filters.insert("container".to_owned(), vec![id.to_owned()]);
        filters.insert("event".to_owned(), vec!["oom".to_owned()]);
        let options = bollard::system::EventsOptions::<String> {
            since: Some(format!("{since:.6}")),
            until: Some(format!("{:.6}", unix_now() + 1.0)),
            filters,
        };
        let mut events = self.docker.events(Some(options));
        matches!(
            tokio::time::timeout(Duration::from_secs(3), events.next()).await,
            Ok(Some(Ok(_)))
        )
    }

    pub(super) async fn run_created_task(&self, id: &str, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Result<TaskResult> {
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
        self.docker
            .start_container::<String>(id, None)
            .await
            .context("cannot start the task container")?;
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
                let options = CommitContainerOptions {
                    container: id,
                    repo,
                    tag,
                    pause: false,
                    ..Default::default()
                };
                let config = Config::<String> {
                    entrypoint: c.entrypoint.clone(),
                    working_dir: c.working_dir.clone(),
                    env: Some(c.env.clone()),
                    cmd: Some(Vec::new()),
                    user: c.user.clone(),
                    ..Default::default()
                };
                self.docker
                    .commit_container(options, config)
                    .await
                    .context("cannot commit the stack image")?;
            }
        }
        let oom_killed = exit_code != 0
            && self
                .docker
                .inspect_container(id, None)
                .await
                .ok()
                .and_then(|c| c.state?.oom_killed)
                .unwrap_or(false);
        Ok(TaskResult { exit_code, oom_killed })
    }

    pub(super) fn prepare_task(&self, spec: &TaskSpec) {
        if spec.spare {
            self.prepare_spare(spec);
        }
    }

    pub(super) async fn remove_spares(&self) {
        self.close_spares().await;
        self.close_holders().await;
    }

    pub(super) async fn run_task(&self, spec: &TaskSpec, output: &mpsc::Sender<String>) -> Result<TaskResult> {
        let spare = if spec.spare {
            self.take_running_spare(spec).await
        } else {
            None
        };
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
                let created = self.create(&name, self.task_config(spec, extra), &format!("{} from {}", spec.name, spec.image)).await?;
                let result = self.run_created_task(&created, spec, output).await;
                (created, result)
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

    pub(super) async fn remove_volume(&self, name: &str) -> Result<()> {
        self.drop_spares_of(name).await;
        match self.docker.remove_volume(name, None).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("cannot remove volume {name}"))),
        }
    }
}
