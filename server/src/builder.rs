//! The builder: turns a pushed commit's tree (a tar from `git archive`) into
//! an image, records the build, appends a release pairing that image with the
//! app's current config, and has the scheduler roll the dynos. Output goes to
//! the pusher line by line, Heroku style (`-----> ` headings, 7-space body).
//!
//! An app with a `Dockerfile` is built by Docker; any other app by
//! buildpacks ([`crate::buildpack`]). A `release` process type then runs once
//! in a one-off container from the new image, before any dyno switches.

use crate::appjson::{self, AppJson};
use crate::buildpack::BuildpackBuilder;
use crate::crypto::ConfigCipher;
use crate::dockerignore::DockerIgnore;
use crate::procfile;
use crate::runtime::{Runtime, TaskSpec};
use crate::scheduler::Scheduler;
use crate::store::{AppRow, BuildStatus, NewRelease, ReleaseRow, Store};
use anyhow::{anyhow, bail, Context, Result};
use crate::locks::KeyedLocks;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::info;

/// A build's output: each line goes to the pusher and into the stored log.
#[derive(Clone)]
pub struct Output {
    tx: mpsc::Sender<String>,
    log: Arc<Mutex<String>>,
}

impl Output {
    pub fn new(tx: mpsc::Sender<String>) -> Self {
        Self { tx, log: Arc::default() }
    }

    pub async fn line(&self, line: impl Into<String>) {
        let line = line.into();
        {
            let mut log = self.log.lock().expect("build log poisoned");
            log.push_str(&line);
            log.push('\n');
        }
        // A pusher that hung up must not stop the build.
        let _ = self.tx.send(line).await;
    }

    pub async fn heading(&self, text: impl AsRef<str>) {
        self.line(format!("-----> {}", text.as_ref())).await;
    }

    pub async fn body(&self, text: impl AsRef<str>) {
        self.line(format!("       {}", text.as_ref())).await;
    }

    pub fn text(&self) -> String {
        self.log.lock().expect("build log poisoned").clone()
    }

    /// A channel whose lines are added to this output, as 7-space-indented
    /// body lines or as they are; `Sink::close` waits until all are in.
    pub fn sink(&self, indent: bool) -> Sink {
        let (tx, mut rx) = mpsc::channel::<String>(256);
        let out = self.clone();
        let task = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if indent {
                    out.body(line).await;
                } else {
                    out.line(line).await;
                }
            }
        });
        Sink { tx, task }
    }
}

/// See [`Output::sink`].
pub struct Sink {
    pub tx: mpsc::Sender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// What the pushed tree holds that the builder needs to look at.
#[derive(Debug, Default)]
pub struct SourceTree {
    /// The Docker build context, `.dockerignore` applied.
    pub context: Vec<u8>,
    pub has_dockerfile: bool,
    pub procfile: Option<String>,
    pub app_json: Option<String>,
}

/// What a successful build hands to the release.
struct Built {
    image: String,
    types: BTreeMap<String, String>,
    app_json: AppJson,
}

#[derive(Clone)]
pub struct Builder {
    store: Store,
    runtime: Arc<dyn Runtime>,
    cipher: ConfigCipher,
    scheduler: Scheduler,
    buildpacks: BuildpackBuilder,
    web_url: Arc<dyn Fn(&str) -> String + Send + Sync>,
    locks: KeyedLocks,
}

impl Builder {
    pub fn new(
        store: Store,
        runtime: Arc<dyn Runtime>,
        cipher: ConfigCipher,
        scheduler: Scheduler,
        buildpacks: BuildpackBuilder,
        web_url: Arc<dyn Fn(&str) -> String + Send + Sync>,
    ) -> Self {
        Self { store, runtime, cipher, scheduler, buildpacks, web_url, locks: KeyedLocks::default() }
    }

    /// Builds `source` (a tar of the commit's tree) and, when the build
    /// succeeds, releases and deploys it. On failure nothing changes but the
    /// failed build record: the running release keeps serving.
    pub async fn build_and_release(&self, app: &AppRow, commit: &str, source: Vec<u8>, out: &Output) -> Result<ReleaseRow> {
        let lock = self.locks.get(&app.name);
        if lock.try_lock().is_err() {
            out.heading(format!("Waiting for the build already running for {} to finish", app.name)).await;
        }
        let _guard = lock.lock().await;
        let build = self.store.create_build(&app.id, commit).await?;
        info!(app = %app.name, build = %build.id, commit = %commit, "build started");
        let short = &commit[..commit.len().min(7)];
        out.heading(format!("Building {} from commit {short}", app.name)).await;
        let current = self.store.current_release(&app.id).await?;
        let sealed_config = match &current {
            Some(r) => r.config.clone(),
            None => self.cipher.seal(&BTreeMap::new()),
        };
        let config = self.cipher.open(&sealed_config)?;
        let result = self.build(app, &build.id, source, &config, out).await;
        let (status, image, types) = match &result {
            Ok(b) => (BuildStatus::Succeeded, Some(b.image.as_str()), b.types.clone()),
            Err(_) => (BuildStatus::Failed, None, BTreeMap::new()),
        };
        if let Err(e) = &result {
            out.line(format!(" !     {e:#}")).await;
            out.line(" !     Push rejected: the build failed, and the running release is unchanged").await;
        }
        self.store.finish_build(&build.id, status, image, &types, &out.text()).await?;
        let Built { image, types, app_json } = result?;

        // app.json's formation scales process types nobody has scaled yet.
        let scaled = self.store.formation(&app.id).await?;
        let initial: BTreeMap<String, i64> = app_json
            .formation
            .iter()
            .filter(|(t, _)| types.contains_key(t.as_str()) && !scaled.contains_key(t.as_str()))
            .map(|(t, f)| (t.to_string(), f.quantity.0))
            .collect();
        if !initial.is_empty() {
            self.store.set_formation(&app.id, &initial).await?;
        }
        let release = self
            .store
            .append_release(
                &app.id,
                &NewRelease {
                    build_id: Some(build.id.clone()),
                    image: Some(image),
                    process_types: types,
                    sealed_config,
                    description: format!("Deploy {short}"),
                    health_path: app_json.web_health_path(),
                },
            )
            .await?;
        info!(app = %app.name, release = release.version, "release created");
        out.heading(format!("Releasing v{}", release.version)).await;
        out.heading("Launching...").await;
        let outcome = self.scheduler.reconcile(app).await?;
        for name in &outcome.unhealthy {
            out.line(format!(" !     {name} did not answer on $PORT in time: check that the web process listens on $PORT")).await;
        }
        if outcome.previous_serving {
            out.line(" !     the previous release's web dynos keep serving until a new one answers").await;
        }
        if !outcome.started.is_empty() {
            out.body(format!("started {}", outcome.started.join(", "))).await;
        }
        out.body(format!("{} deployed to paas as v{}", (self.web_url)(&app.name), release.version)).await;
        Ok(release)
    }

    async fn build(
        &self,
        app: &AppRow,
        build_id: &str,
        source: Vec<u8>,
        config: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<Built> {
        let source = Arc::new(source);
        let tree = {
            let source = source.clone();
            tokio::task::spawn_blocking(move || read_source(&source)).await.context("source reader panicked")??
        };
        let procfile_types = match &tree.procfile {
            Some(text) => procfile::parse(text)?,
            None => BTreeMap::new(),
        };
        let app_json = match &tree.app_json {
            Some(text) => appjson::parse(text)?,
            None => AppJson::default(),
        };
        let tag = format!("paas/{}:{}", app.name, &build_id[..8]);
        let (image, mut types) = if tree.has_dockerfile {
            out.heading("Building with the Dockerfile").await;
            let sink = out.sink(true);
            let built = self.runtime.build_image(tree.context, &tag, &sink.tx).await;
            sink.close().await;
            let image = built.map_err(|e| anyhow!("docker build failed: {e:#}"))?;
            (image, BTreeMap::new())
        } else {
            let chosen: Vec<String> = match config.get("BUILDPACK_URL").filter(|u| !u.trim().is_empty()) {
                Some(url) => vec![url.trim().to_owned()],
                None => app_json.buildpacks.iter().map(|b| b.url.clone()).collect(),
            };
            let built = self.buildpacks.build(&app.name, &tag, &source, config, &chosen, out).await?;
            (built.image, built.default_types)
        };
        types.extend(procfile_types);
        if types.is_empty() {
            if tree.has_dockerfile {
                out.heading("No Procfile: the web process runs the image's own command").await;
                types.insert("web".to_owned(), String::new());
            } else {
                bail!("the build declares no process types: add a Procfile, e.g. `web: python app.py`");
            }
        } else {
            let names: Vec<&str> = types.keys().map(String::as_str).collect();
            out.heading(format!("Process types -> {}", names.join(", "))).await;
        }
        if let Some(command) = types.get("release") {
            self.release_phase(app, &image, command, config, out).await?;
        }
        // The release records the image ID, which no later tag can move.
        Ok(Built { image, types, app_json })
    }

    /// The release phase for a release a config change or a rollback is about
    /// to append: runs its `release` command, if it has one, with `config`.
    /// On failure the error carries the command's last output lines, and the
    /// caller appends nothing.
    pub async fn release_phase_before(&self, app: &AppRow, new: &NewRelease, config: &BTreeMap<String, String>) -> Result<()> {
        let (Some(image), Some(command)) = (&new.image, new.process_types.get("release")) else {
            return Ok(());
        };
        // Nobody streams this output: it is kept for the error only.
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let out = Output::new(tx);
        if let Err(e) = self.release_phase(app, image, command, config, &out).await {
            let text = out.text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            bail!("{e:#}; its output ends:\n{tail}");
        }
        Ok(())
    }

    /// Runs the Procfile's `release` command once in a one-off container from
    /// the new image. A non-zero exit fails the build: no release is made.
    async fn release_phase(
        &self,
        app: &AppRow,
        image: &str,
        command: &str,
        config: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<()> {
        out.heading(format!("Running release command: {command}")).await;
        let mut env = config.clone();
        env.insert("PAAS_APP".into(), app.name.clone());
        env.insert("DYNO".into(), "release.1".into());
        let spec = TaskSpec {
            name: format!("release-{}", app.name),
            image: image.to_owned(),
            cmd: vec!["/bin/sh".into(), "-c".into(), command.to_owned()],
            env,
            timeout: Some(std::time::Duration::from_secs(30 * 60)),
            ..Default::default()
        };
        let sink = out.sink(true);
        let result = self.runtime.run_task(&spec, &sink.tx).await;
        sink.close().await;
        let code = result?.exit_code;
        if code != 0 {
            bail!("the release command exited with status {code}: the new release was not made");
        }
        Ok(())
    }
}

/// Reads a `git archive` tar: finds the Dockerfile, Procfile and
/// `.dockerignore`, and writes the Docker build context with the ignored
/// paths left out. Symlinks are copied as links, never followed.
pub fn read_source(tar_bytes: &[u8]) -> Result<SourceTree> {
    let mut tree = SourceTree::default();
    let mut ignore_text = None;
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().context("the pushed tree is not a tar")? {
        let mut entry = entry?;
        let path = entry_path(&entry)?;
        if entry.header().entry_type().is_file() {
            match path.as_str() {
                ".dockerignore" => ignore_text = Some(read_text(&mut entry, ".dockerignore")?),
                "Procfile" => tree.procfile = Some(read_text(&mut entry, "Procfile")?),
                "app.json" => tree.app_json = Some(read_text(&mut entry, "app.json")?),
                "Dockerfile" => tree.has_dockerfile = true,
                _ => {}
            }
        }
    }
    let ignore = match ignore_text {
        Some(text) => DockerIgnore::parse(&text).map_err(|e| anyhow!(e))?,
        None => DockerIgnore::empty(),
    };
    let mut context = tar::Builder::new(Vec::new());
    // Docker always sends the Dockerfile and .dockerignore themselves.
    copy_tree(tar_bytes, &mut context, "", |path| {
        !ignore.is_excluded(path) || path == "Dockerfile" || path == ".dockerignore"
    })?;
    tree.context = context.into_inner()?;
    Ok(tree)
}

/// Copies the files, folders and symlinks of a `git archive` tar into `out`,
/// each under `prefix`, where `keep(path)` says so. Symlinks are copied as
/// links, never followed; other entry kinds are left out.
pub fn copy_tree(
    tar_bytes: &[u8],
    out: &mut tar::Builder<Vec<u8>>,
    prefix: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().context("the pushed tree is not a tar")? {
        let entry = entry?;
        let path = entry_path(&entry)?;
        let kind = entry.header().entry_type();
        if path.is_empty() || !(kind.is_file() || kind.is_dir() || kind.is_symlink()) || !keep(&path) {
            continue;
        }
        let mut header = entry.header().clone();
        let target = format!("{prefix}{path}");
        if kind.is_symlink() {
            let link = entry.link_name()?.ok_or_else(|| anyhow!("symlink {path} has no target"))?;
            out.append_link(&mut header, &target, link)?;
        } else {
            out.append_data(&mut header, &target, entry)?;
        }
    }
    Ok(())
}

fn entry_path<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String> {
    let path = entry.path()?;
    let path = path.to_str().ok_or_else(|| anyhow!("a file name in the repository is not UTF-8"))?;
    Ok(path.trim_start_matches("./").trim_end_matches('/').to_owned())
}

fn read_text<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<String> {
    const LIMIT: u64 = 1 << 20;
    if entry.header().size()? > LIMIT {
        bail!("{name} is larger than 1 MiB");
    }
    let mut text = String::new();
    entry.read_to_string(&mut text).with_context(|| format!("{name} is not UTF-8 text"))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn names(context: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(context);
        a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
    }

    #[test]
    fn context_honours_dockerignore() {
        let src = tar_of(&[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "secret.txt\nlogs\nDockerfile\n"),
            ("Procfile", "web: serve\n"),
            ("secret.txt", "s3cret"),
            ("logs/a.log", "x"),
            ("src/app.sh", "echo hi"),
        ]);
        let tree = read_source(&src).unwrap();
        assert!(tree.has_dockerfile);
        assert_eq!(tree.procfile.as_deref(), Some("web: serve\n"));
        let got = names(&tree.context);
        assert_eq!(got, ["Dockerfile", ".dockerignore", "Procfile", "src/app.sh"]);
    }

    #[test]
    fn no_dockerfile_is_seen() {
        let tree = read_source(&tar_of(&[("index.html", "hi")])).unwrap();
        assert!(!tree.has_dockerfile);
        assert!(tree.procfile.is_none());
    }
}
