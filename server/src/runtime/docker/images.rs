//! Images: Dockerfile builds over the engine's HTTP API (the context file
//! streamed as the body, which bollard 0.18 cannot do), importing a root
//! filesystem, a base image plus one layer of files (loaded as an image
//! archive), inspecting and removing.

use super::{is_not_found, DockerRuntime};
use anyhow::{anyhow, Context, Result};
use bollard::container::Config;
use bollard::image::RemoveImageOptions;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::path::Path;
use tokio::sync::mpsc;

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

impl DockerRuntime {
    pub(super) async fn build_streamed(
        &self,
        context: &Path,
        tag: &str,
        args: &std::collections::BTreeMap<String, String>,
        memory: Option<i64>,
        output: &mpsc::Sender<String>,
    ) -> Result<String> {
        let mut body = self.post_build(context, tag, args, memory).await?;
        let mut pending = Vec::new();
        let mut lines = crate::runtime::LineSplitter::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the build's answer ended early")?;
            let Ok(data) = frame.into_data() else { continue };
            pending.extend_from_slice(&data);
            // The engine sends output in messages of a few KiB; one that
            // does not end is not the engine's.
            if pending.len() > MAX_ENGINE_MESSAGE && !pending.contains(&b'\n') {
                return Err(anyhow!(
                    "the Docker engine sent a build message over {} MiB",
                    MAX_ENGINE_MESSAGE >> 20
                ));
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
    pub(super) async fn post_build(
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
        let file = tokio::fs::File::open(context)
            .await
            .with_context(|| format!("cannot open {}", context.display()))?;
        let frames =
            tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(|chunk| chunk.map(hyper::body::Frame::data));
        let body = http_body_util::StreamBody::new(frames);
        let request = hyper::Request::post(uri)
            .header(hyper::header::HOST, "docker")
            .header(hyper::header::CONTENT_TYPE, "application/x-tar")
            .body(body)
            .context("cannot make the build request")?;
        let response = self
            .engine_request(request)
            .await
            .context("the Docker engine did not take the build")?;
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

    pub(super) async fn build_image(
        &self,
        context: &Path,
        tag: &str,
        args: &std::collections::BTreeMap<String, String>,
        limits: crate::runtime::BuildLimits,
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

    pub(super) async fn remove_image(&self, image: &str) -> Result<()> {
        // By ID, the engine deletes an image that one tag still names (it
        // refuses only for two or more): an image given to `deploy
        // --image`, say, which is not the platform's to delete. So an ID
        // still named by any tag is kept here.
        if image.starts_with("sha256:") {
            match self.docker.inspect_image(image).await {
                Ok(i) if i.repo_tags.as_ref().is_some_and(|t| !t.is_empty()) => {
                    tracing::debug!(image, "image kept: still named elsewhere");
                    return Ok(());
                }
                Err(e) if is_not_found(&e) => return Ok(()),
                _ => {}
            }
        }
        match self
            .docker
            .remove_image(
                image,
                // Not forced: an image another tag still names (another
                // app's identical build, made by this server or another on
                // the same engine) or a container still uses is kept.
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                }),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message }) => {
                tracing::debug!(image, reason = %message, "image kept: still named or used elsewhere");
                Ok(())
            }
            Err(e) => Err(anyhow!(e).context(format!("cannot remove image {image}"))),
        }
    }

    /// What the engine says of `image`; None when it has no such image.
    pub(super) async fn inspected(&self, image: &str) -> Result<Option<bollard::models::ImageInspect>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(i)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot inspect image {image}"))),
        }
    }

    pub(super) async fn image_exists(&self, image: &str) -> Result<bool> {
        Ok(self.inspected(image).await?.is_some())
    }

    pub(super) async fn image_label(&self, image: &str, label: &str) -> Result<Option<String>> {
        Ok(self.inspected(image).await?.and_then(|i| i.config?.labels?.remove(label)))
    }

    pub(super) async fn pull_image(&self, reference: &str) -> Result<()> {
        use futures_util::StreamExt;
        let options = bollard::image::CreateImageOptions { from_image: reference.to_owned(), ..Default::default() };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(step) = stream.next().await {
            step.with_context(|| format!("cannot pull {reference}"))?;
        }
        Ok(())
    }

    pub(super) async fn image_id(&self, image: &str) -> Result<Option<String>> {
        Ok(self.inspected(image).await?.and_then(|i| i.id))
    }

    /// Tags `from` as `to` (`repository:tag`), then removes the tag `from`
    /// (the image stays: the new tag names it).
    pub(super) async fn retag_image(&self, from: &str, to: &str) -> Result<()> {
        if self.tag_image(from, to).await? {
            self.remove_image(from).await?;
        }
        Ok(())
    }

    /// Names `image` also `to` (`repository:tag`); false when there is no
    /// such image.
    pub(super) async fn tag_image(&self, image: &str, to: &str) -> Result<bool> {
        let (repository, tag) = to.rsplit_once(':').unwrap_or((to, "latest"));
        match self.docker.tag_image(image, Some(bollard::image::TagImageOptions { repo: repository, tag })).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(anyhow!(e).context(format!("cannot tag {image} as {repository}:{tag}"))),
        }
    }

    /// Tags `image` as `repository:tag`, pushes it with `auth` and returns
    /// it by digest (`repository@sha256:...`), which names exactly these
    /// bytes wherever it is pulled.
    pub(super) async fn push_image(&self, image: &str, repository: &str, tag: &str, auth: Option<&crate::runtime::RegistryAuth>) -> Result<String> {
        let registry = repository.split('/').next().unwrap_or(repository);
        let tagging = bollard::image::TagImageOptions { repo: repository, tag };
        self.docker.tag_image(image, Some(tagging)).await.with_context(|| format!("cannot tag {image} as {repository}:{tag}"))?;
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(registry.to_owned()),
            ..Default::default()
        });
        let mut pushing = self.docker.push_image(repository, Some(bollard::image::PushImageOptions { tag }), credentials);
        while let Some(step) = pushing.next().await {
            if let Err(e) = step {
                let text = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                let why = if text.contains("unauthorized") || text.contains("authentication required") || text.contains("no basic auth") {
                    format!("the registry at {registry} refused the credentials ({text}): check the registry user and password")
                } else {
                    format!("cannot push {image} to {repository}:{tag} ({text}): check that the registry at {registry} runs and this engine trusts it")
                };
                return Err(anyhow!(why));
            }
        }
        let inspected = self.docker.inspect_image(&format!("{repository}:{tag}")).await.with_context(|| format!("cannot inspect {repository}:{tag}"))?;
        let prefix = format!("{repository}@");
        inspected
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.starts_with(&prefix))
            .ok_or_else(|| anyhow!("the registry at {registry} took {repository}:{tag} but the engine names no digest for it"))
    }

    /// The command `image` runs of its own (ENTRYPOINT, then CMD), when it
    /// has one and a `/bin/sh` (a file or a link) to run the swarm's
    /// `OOM_WATCH` under; None otherwise. Asked of a container made from
    /// it and never started, then removed.
    pub async fn own_command_under_sh(&self, image: &str) -> Result<Option<Vec<String>>> {
        let config = self.docker.inspect_image(image).await.with_context(|| format!("cannot inspect image {image}"))?.config.unwrap_or_default();
        let argv: Vec<String> = config.entrypoint.unwrap_or_default().into_iter().chain(config.cmd.unwrap_or_default()).collect();
        if argv.is_empty() {
            return Ok(None);
        }
        let name = format!("paas-probe-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let config = Config::<String> {
            image: Some(image.to_owned()),
            labels: Some(self.not_a_dyno("probe")),
            ..Default::default()
        };
        let created = self.create(&name, config, &format!("a look into {image}")).await?;
        let options = bollard::container::DownloadFromContainerOptions { path: "/bin/sh" };
        let found = self.docker.download_from_container(&created, Some(options)).next().await;
        self.remove_now(&created).await;
        match found {
            Some(Ok(_)) => Ok(Some(argv)),
            None => Ok(None),
            Some(Err(e)) if is_not_found(&e) => Ok(None),
            Some(Err(e)) => Err(anyhow!(e).context(format!("cannot look for /bin/sh in {image}"))),
        }
    }

    /// A new image of `base` plus one layer, the tar `tar` as it is, tagged
    /// `tag`; the base's config (entrypoint, env, workdir, labels) with
    /// `label` added. Loaded as an image archive (`POST /images/load`) that
    /// names the base's layers, which the engine has and so skips, and holds
    /// only the new one: one call, instead of a container to copy the files
    /// into, a commit that packs them again, and the container's removal
    /// (a release image 0.13 -> 0.10 s, a first dependency layer about
    /// 0.6 -> 0.3 s; BENCHMARKS.md).
    pub(super) async fn image_from_files(
        &self,
        base: &str,
        tar: &Path,
        tag: &str,
        label: Option<(&str, &str)>,
    ) -> Result<String> {
        let inspected = self.docker.inspect_image(base).await.with_context(|| format!("cannot inspect image {base}"))?;
        let mut config = inspected.config.unwrap_or_default();
        if let Some((k, v)) = label {
            config.labels.get_or_insert_with(HashMap::new).insert(k.to_owned(), v.to_owned());
        }
        let mut diff_ids = inspected.root_fs.and_then(|r| r.layers).unwrap_or_default();
        let base_layers = diff_ids.len();
        let base_history = self.docker.image_history(base).await.with_context(|| format!("cannot read the history of image {base}"))?;
        let mut history = history_of(base, base_history, base_layers);
        diff_ids.push(format!("sha256:{}", crate::crypto::sha256_of(tar).await.context("cannot read the layer's files")?));
        let added = tar.file_name().map_or_else(|| "files".to_owned(), |n| n.to_string_lossy().into_owned());
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        history.push(serde_json::json!({ "created": created, "created_by": format!("paas: {added} added") }));
        let (archive, image_id) = {
            let tar = tar.to_path_buf();
            let tag = tag.to_owned();
            let architecture = inspected.architecture.unwrap_or_else(|| "amd64".into());
            let os = inspected.os.unwrap_or_else(|| "linux".into());
            tokio::task::spawn_blocking(move || -> Result<(tempfile::NamedTempFile, String)> {
                use sha2::Digest;
                let image_config = serde_json::json!({
                    "architecture": architecture,
                    "os": os,
                    "config": config,
                    "rootfs": { "type": "layers", "diff_ids": diff_ids },
                    "created": created,
                    "history": history,
                });
                let config_bytes = serde_json::to_vec(&image_config)?;
                let config_digest = hex::encode(sha2::Sha256::digest(&config_bytes));
                // The base's layers are named but not in the archive: the
                // engine loads a layer's file only when it lacks the layer.
                let layers: Vec<String> = (0..base_layers).map(|i| format!("base-{i}/layer.tar")).chain(["new/layer.tar".to_owned()]).collect();
                let manifest = serde_json::to_vec(&serde_json::json!([{ "Config": format!("{config_digest}.json"), "RepoTags": [tag], "Layers": layers }]))?;
                let archive = tempfile::NamedTempFile::new_in(tar.parent().unwrap_or(Path::new(".")))?;
                let mut builder = tar::Builder::new(archive.as_file());
                for (name, data) in [("manifest.json".to_owned(), manifest), (format!("{config_digest}.json"), config_bytes)] {
                    let mut header = tar::Header::new_gnu();
                    header.set_size(data.len() as u64);
                    header.set_mode(0o644);
                    builder.append_data(&mut header, name, data.as_slice())?;
                }
                builder.append_path_with_name(&tar, "new/layer.tar")?;
                builder.into_inner()?;
                Ok((archive, format!("sha256:{config_digest}")))
            })
            .await??
        };
        let body = super::file_stream(archive.path()).await?;
        let mut answer = self.docker.import_image_stream(bollard::image::ImportImageOptions { quiet: true }, body, None);
        while let Some(message) = answer.next().await {
            let message = message.with_context(|| format!("cannot load the image {tag}"))?;
            if let Some(error) = message.error {
                return Err(anyhow!("the engine could not load the image {tag}: {error}"));
            }
        }
        Ok(image_id)
    }
}

/// An image config's `history` (oldest first) from the engine's history of
/// an image with `layers` layers (newest first), so that `docker history`
/// of an image made on top of it shows the base's steps and sizes. The
/// engine reports a step's size, not whether it made a layer: a step of
/// size 0 is taken as one that made none, and if that does not account for
/// every layer, one plain step per layer stands in for the base's.
fn history_of(base: &str, items: Vec<bollard::models::HistoryResponseItem>, layers: usize) -> Vec<serde_json::Value> {
    let made_layers = items.iter().filter(|i| i.size > 0).count();
    if made_layers != layers {
        return (0..layers).map(|i| serde_json::json!({ "created_by": format!("(layer {} of {base})", i + 1) })).collect();
    }
    items
        .into_iter()
        .rev()
        .map(|i| {
            let created = chrono::DateTime::from_timestamp(i.created, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let mut step = serde_json::json!({ "created": created, "created_by": i.created_by });
            if !i.comment.is_empty() {
                step["comment"] = i.comment.into();
            }
            if i.size == 0 {
                step["empty_layer"] = true.into();
            }
            step
        })
        .collect()
}

#[cfg(test)]
mod history_tests {
    use super::history_of;
    use bollard::models::HistoryResponseItem;

    fn item(created_by: &str, size: i64) -> HistoryResponseItem {
        HistoryResponseItem { id: "<missing>".into(), created: 1_700_000_000, created_by: created_by.into(), tags: vec![], size, comment: String::new() }
    }

    #[test]
    fn a_base_history_that_accounts_for_its_layers_is_kept_oldest_first_with_its_empty_steps() {
        let steps = history_of("run", vec![item("ENV A=1", 0), item("RUN apt", 10), item("import", 20)], 2);
        let by: Vec<&str> = steps.iter().map(|s| s["created_by"].as_str().unwrap()).collect();
        assert_eq!(by, ["import", "RUN apt", "ENV A=1"]);
        assert_eq!(steps[2]["empty_layer"], true);
        assert!(steps[0].get("empty_layer").is_none());
        assert_eq!(steps[0]["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_base_history_that_does_not_account_for_its_layers_becomes_one_step_per_layer() {
        let steps = history_of("run", vec![item("import", 20)], 3);
        assert_eq!(steps.len(), 3);
        assert!(steps.iter().all(|s| s.get("empty_layer").is_none()));
        assert_eq!(steps[2]["created_by"], "(layer 3 of run)");
    }
}
