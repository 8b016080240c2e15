//! The builder: turns a pushed commit's tree into an image and process
//! types, and keeps the build's record and capped log. An app with a
//! `Dockerfile` is built by Docker; any other app by buildpacks
//! ([`crate::buildpack`]). Output goes to the pusher line by line, Heroku
//! style (`-----> ` headings, 7-space body).
//!
//! The builder only builds: it never reads or writes releases or config
//! (the config a build sees is handed in), never runs the `release` phase
//! and never calls the scheduler. Builds of one app queue; a global limit
//! (`PAAS_MAX_BUILDS`) caps how many run at once. The pushed tree stays in
//! a temporary file and is streamed, never held whole in memory.

use crate::appjson::{self, AppJson};
use crate::buildpack::BuildpackBuilder;
use crate::locks::KeyedLocks;
use crate::output::Output;
use crate::procfile;
use crate::runtime::{BuildLimits, Runtime};
use crate::source::{self, SourceFile};
use crate::store::{AppRow, BuildStatus, Store};
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::info;

/// What a successful build made.
#[derive(Debug, Clone)]
pub struct Built {
    pub build_id: String,
    pub commit: String,
    /// The image ID, which no later tag can move.
    pub image: String,
    pub process_types: BTreeMap<String, String>,
    pub app_json: AppJson,
    /// What the pushed tree shows against the twelve factors.
    pub findings: Vec<crate::twelve::Finding>,
}

/// What a build made, before it is recorded.
struct Ran {
    image: String,
    types: BTreeMap<String, String>,
    app_json: AppJson,
    /// Its `maintenance.html`.
    maintenance_page: Option<String>,
    findings: Vec<crate::twelve::Finding>,
}

#[derive(Clone)]
pub struct Builder {
    store: Store,
    runtime: Arc<dyn Runtime>,
    buildpacks: BuildpackBuilder,
    /// Builds of one app queue behind each other.
    queue: KeyedLocks,
    /// Builds that may run at once across all apps.
    slots: Arc<Semaphore>,
    max_builds: usize,
    /// Where temporary build files go.
    scratch: PathBuf,
    /// How long a build may take and how much memory it may use.
    limits: BuildLimits,
    /// Pushed trees are scanned (PAAS_OBSERVE).
    observe: bool,
    /// Builds are refused below this much free disk (PAAS_MIN_FREE_DISK_MB; 0: never).
    min_free_disk: u64,
}

impl Builder {
    pub fn new(
        store: Store,
        runtime: Arc<dyn Runtime>,
        buildpacks: BuildpackBuilder,
        max_builds: usize,
        scratch: PathBuf,
        limits: BuildLimits,
    ) -> Self {
        Self {
            store,
            runtime,
            buildpacks,
            queue: KeyedLocks::default(),
            slots: Arc::new(Semaphore::new(max_builds)),
            max_builds,
            scratch,
            limits,
            observe: true,
            min_free_disk: 0,
        }
    }

    /// Builds are refused while a disk they fill has less free than this.
    pub fn needing_free_disk(mut self, bytes: u64) -> Self {
        self.min_free_disk = bytes;
        self
    }

    /// Refuses a build, before it starts, while the data directory's disk
    /// or the engine's has less free space than `PAAS_MIN_FREE_DISK_MB`:
    /// better than the engine failing mid-build with a full disk.
    async fn check_free_disk(&self) -> Result<()> {
        if self.min_free_disk == 0 {
            return Ok(());
        }
        let mut disks = vec![self.scratch.clone()];
        match self.runtime.data_root().await {
            Ok(Some(root)) => disks.push(root),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "cannot tell where the engine keeps its data"),
        }
        for disk in disks {
            let Ok(stat) = rustix::fs::statvfs(&disk) else { continue };
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            if free < self.min_free_disk {
                let mib = |b: u64| b >> 20;
                tracing::warn!(disk = %disk.display(), free_mib = mib(free), "disk nearly full: builds are refused");
                return Err(anyhow!(
                    "the server's disk is nearly full: {} has {} MiB free, less than PAAS_MIN_FREE_DISK_MB ({} MiB), so builds are refused before they fill it. Free space on the server (`docker system prune`, destroy apps no one uses), then push again",
                    disk.display(),
                    mib(free),
                    mib(self.min_free_disk)
                ));
            }
        }
        Ok(())
    }

    /// Whether pushed trees are scanned for the twelve-factor report.
    pub fn observing(mut self, on: bool) -> Self {
        self.observe = on;
        self
    }

    pub fn scratch_dir(&self) -> &std::path::Path {
        &self.scratch
    }

    /// Builds `source` (a tar of the commit's tree) with `config` as the
    /// build's environment, and records the build and its output. A failed
    /// build is recorded as failed and returns the error.
    pub async fn build(
        &self,
        app: &AppRow,
        commit: &str,
        source: SourceFile,
        config: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<Built> {
        let lock = self.queue.get(&app.id);
        if lock.try_lock().is_err() {
            out.heading(format!("Waiting for the build already running for {} to finish", app.name)).await;
        }
        let _queued = lock.lock().await;
        // Renamed while it waited: the build goes by the name it has now.
        let app = &self.store.app_by_id(&app.id).await?.ok_or_else(|| anyhow!("{} was destroyed while the build waited", app.name))?;
        if let Err(e) = self.check_free_disk().await {
            out.warn(format!("{e:#}")).await;
            return Err(e);
        }
        let _slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                out.heading(format!("Waiting for a build slot ({} builds run at once on this server)", self.max_builds))
                    .await;
                self.slots.clone().acquire_owned().await.context("the build queue closed")?
            }
        };
        let build = self.store.create_build(&app.id, commit).await?;
        info!(app = %app.name, build = %build.id, commit = %commit, bytes = source.bytes, "build started");
        let short = &commit[..commit.len().min(7)];
        out.heading(format!("Building {} from commit {short}", app.name)).await;
        let result = self.run(app, &build.id, source, config, out).await;
        let (status, image, types) = match &result {
            Ok(ran) => (BuildStatus::Succeeded, Some(ran.image.as_str()), ran.types.clone()),
            Err(_) => (BuildStatus::Failed, None, BTreeMap::new()),
        };
        if let Ok(Ran { maintenance_page: Some(page), .. }) = &result {
            self.store.set_build_maintenance_page(&build.id, page).await?;
        }
        if let Err(e) = &result {
            out.warn(format!("{e:#}")).await;
            out.warn("Push rejected: the build failed, and the running release is unchanged").await;
        }
        self.store.finish_build(&build.id, status, image, &types, &out.text()).await?;
        let Ran { image, types: process_types, app_json, mut findings, .. } = result?;
        if self.observe {
            findings.extend(crate::twelve::scan::runtime_mismatches(&out.text()));
        }
        Ok(Built { build_id: build.id, commit: commit.to_owned(), image, process_types, app_json, findings })
    }

    /// An image the engine has (or pulls) as a build of `app`: `paas deploy
    /// --image`. Its process types: those `given` (a Procfile's text),
    /// else its `paas.procfile` label, else `web` running its own command.
    /// The build records the image's ID where a push records its commit.
    pub async fn adopt_image(&self, app: &AppRow, reference: &str, given: Option<&str>, out: &Output) -> Result<Built> {
        let id = match self.runtime.image_id(reference).await? {
            Some(id) => id,
            None => {
                out.heading(format!("Pulling {reference}")).await;
                self.runtime.pull_image(reference).await.map_err(|e| {
                    anyhow!("the engine has no image {reference} and cannot pull it ({e:#}): build or load it on the server's engine, or push it to a registry the engine can reach")
                })?;
                self.runtime.image_id(reference).await?.ok_or_else(|| anyhow!("{reference} was pulled, yet the engine does not have it"))?
            }
        };
        let mut types = match given {
            Some(text) => procfile::parse(text).map_err(|e| anyhow!("--process: {e}"))?,
            None => match self.runtime.image_label(&id, "paas.procfile").await? {
                Some(text) => procfile::parse(&text).map_err(|e| anyhow!("the image's paas.procfile label: {e}"))?,
                None => BTreeMap::new(),
            },
        };
        if types.is_empty() {
            out.heading("No process types given: the web process runs the image's own command").await;
            types.insert("web".to_owned(), String::new());
        }
        let digest = id.trim_start_matches("sha256:").to_owned();
        let build = self.store.create_build(&app.id, &digest).await?;
        out.heading(format!("Deploying image {reference} ({})", &digest[..digest.len().min(12)])).await;
        let names: Vec<&str> = types.keys().map(String::as_str).collect();
        out.heading(format!("Process types -> {}", names.join(", "))).await;
        self.store.finish_build(&build.id, BuildStatus::Succeeded, Some(&id), &types, &out.text()).await?;
        info!(app = %app.name, build = %build.id, image = %reference, "image adopted");
        Ok(Built { build_id: build.id, commit: digest, image: id, process_types: types, app_json: AppJson::default(), findings: Vec::new() })
    }

    /// The app's build queue, held, when no build of it runs or waits;
    /// builds of it wait while the guard lives (`apps:rename`).
    pub fn idle(&self, app: &AppRow) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.queue.get(&app.id).try_lock_owned().ok()
    }

    /// See [`BuildpackBuilder::warm_up`].
    pub fn warm_up(&self, app: &str) {
        self.buildpacks.warm_up(app);
    }

    /// See [`BuildpackBuilder::forget`].
    pub fn forget(&self, app: &str) {
        self.buildpacks.forget(app);
    }

    async fn run(
        &self,
        app: &AppRow,
        build_id: &str,
        source: SourceFile,
        config: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<Ran> {
        let source = Arc::new(source);
        let tree = {
            let source = source.clone();
            tokio::task::spawn_blocking(move || source::read_source(source.open()?))
                .await
                .context("source reader panicked")??
        };
        let mut procfile_types = match &tree.procfile {
            Some(text) => procfile::parse(text)?,
            None => BTreeMap::new(),
        };
        let app_json = match &tree.app_json {
            Some(text) => {
                let (app_json, warning) = appjson::parse(text)?;
                if let Some(w) = warning {
                    out.warn(w).await;
                }
                app_json
            }
            None => AppJson::default(),
        };
        let tag = crate::runtime::build_image(&app.name, build_id);
        let has_dockerfile = tree.has_dockerfile;
        let maintenance_page = tree.maintenance_page.clone();
        // Secrets and dependency pins, read while the image builds.
        let scanning = {
            let (source, observe) = (source.clone(), self.observe);
            tokio::task::spawn_blocking(move || if observe { source::scan_tree(source.open()?) } else { Ok(Vec::new()) })
        };
        if maintenance_page.is_some() {
            out.heading("maintenance.html: the page shown in maintenance mode").await;
        }
        let (image, mut types) = if has_dockerfile {
            out.heading("Building with the Dockerfile").await;
            // Config vars the Dockerfile declares with ARG are its build
            // arguments (as Heroku's container builds pass them).
            let args: BTreeMap<String, String> =
                tree.dockerfile_args.iter().filter_map(|n| config.get(n).map(|v| (n.clone(), v.clone()))).collect();
            let context = {
                let (source, scratch) = (source.clone(), self.scratch.clone());
                tokio::task::spawn_blocking(move || source::write_context(&source, &tree, &scratch))
                    .await
                    .context("context writer panicked")??
            };
            if !args.is_empty() {
                let names: Vec<&str> = args.keys().map(String::as_str).collect();
                out.heading(format!("Build arguments from config vars: {}", names.join(", "))).await;
            }
            let sink = out.sink(true);
            let built = self.runtime.build_image(context.path(), &tag, &args, self.limits, &sink.tx).await;
            sink.close().await;
            let image = built.map_err(|e| {
                let text = format!("{e:#}");
                // A RUN step killed by the kernel (137) most likely hit the
                // memory limit: say which, and how to raise it.
                let hint = match self.limits.memory {
                    Some(m) if text.contains("non-zero code: 137") => format!(
                        " (killed: it most likely used more than the build memory limit of {} MiB; raise PAAS_BUILD_MEMORY on the server)",
                        m >> 20
                    ),
                    _ => String::new(),
                };
                anyhow!("docker build failed: {text}{hint}")
            })?;
            (image, BTreeMap::new())
        } else {
            let chosen: Vec<String> = match config.get("BUILDPACK_URL").filter(|u| !u.trim().is_empty()) {
                Some(url) => vec![url.trim().to_owned()],
                None => app_json.buildpacks.iter().map(|b| b.url.clone()).collect(),
            };
            let built =
                self.buildpacks.build(&app.name, &tag, source, config, &chosen, &self.scratch, self.limits, out).await?;
            // The Procfile as the build left it is the one released (a
            // build may write one).
            if let Some(text) = &built.procfile {
                procfile_types = procfile::parse(text).map_err(|e| anyhow!("the Procfile the build left: {e}"))?;
            }
            (built.image, built.default_types)
        };
        types.extend(procfile_types);
        if types.is_empty() && has_dockerfile {
            out.heading("No Procfile: the web process runs the image's own command").await;
            types.insert("web".to_owned(), String::new());
        }
        if types.is_empty() {
            // As on Heroku: the build is released, and runs no dyno until a
            // Procfile (or a buildpack) names a process type.
            out.warn("No process types: the build declares none, so this release runs no dynos. Add a Procfile naming them (e.g. `web: gunicorn app:app`) and push again").await;
        } else {
            let names: Vec<&str> = types.keys().map(String::as_str).collect();
            out.heading(format!("Process types -> {}", names.join(", "))).await;
        }
        let findings = scanning.await.context("the tree scanner panicked")?.unwrap_or_else(|e| {
            tracing::warn!(app = %app.name, error = %format!("{e:#}"), "cannot scan the pushed tree");
            Vec::new()
        });
        for f in findings.iter().filter(|f| !f.ok) {
            out.warn(format!("Twelve-factor {} ({}): {}; {}", f.factor.numeral(), f.factor.title(), f.message, f.fix)).await;
        }
        Ok(Ran { image, types, app_json, maintenance_page, findings })
    }
}
