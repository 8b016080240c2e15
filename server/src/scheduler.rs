//! The scheduler: a level-triggered reconcile loop. Desired state is the
//! newest release with a build that has not failed × the formation; actual
//! state is the containers carrying the paas labels. Each pass records and
//! clears dynos that exited (their exit code and last output kept for the
//! user), starts what is missing (new dynos first; a crashed dyno again at
//! once the first time, then with exponential backoff), waits for new dynos
//! to come up, points the router at the healthy web dynos, and only then
//! stops what is no longer desired. A release whose new dynos never come up
//! gets a `failed` status record, so the previous release stays desired and
//! is not retried forever.
//!
//! Passes run per app, at most one at a time and one queued, triggered by
//! the release service, by the engine's exit events and by a periodic tick,
//! so one slow or crashing app never delays another.
//!
//! It talks to Docker only through [`Runtime`] and never touches SQL
//! directly. It never makes releases: the release service does, then asks
//! it to converge. It also runs a release's one-off `release` command for
//! the release service.

use crate::appjson::{self, HealthCheck};
use crate::crypto::ConfigCipher;
use crate::logs::LogRouter;
use crate::output::Output;
use crate::router::RouteTable;
use crate::runtime::{Dyno, DynoSpec, Exit, Runtime, TaskSpec, DYNO_PORT};
use crate::store::{AppRow, ReleaseRow, ReleaseStatus, Store};
use paas_wire::DynoSize;
use anyhow::{bail, Context, Result};
use crate::locks::KeyedLocks;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

/// Lines of a failed dyno's output shown to the user.
pub const OUTPUT_TAIL_LINES: usize = 30;
/// How long a new non-web dyno must keep running to count as up.
const SETTLE: Duration = Duration::from_secs(3);
/// The longest wait between restarts of a crashing dyno.
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// A dyno that has run this long resets its crash count.
const RESET_AFTER: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    runtime: Arc<dyn Runtime>,
    cipher: ConfigCipher,
    routes: RouteTable,
    stop_grace: Duration,
    boot_timeout: Duration,
    /// The size of dynos whose type was not resized.
    default_size: DynoSize,
    /// One pass at a time per app.
    locks: KeyedLocks,
    /// Apps with a pass queued behind the running one.
    queued: Mutex<HashSet<String>>,
    /// Crashes per dyno slot (app, type, index).
    crashes: Mutex<HashMap<Slot, Crash>>,
    /// Liveness checks failed in a row, per container.
    liveness_failures: Mutex<HashMap<String, u32>>,
    /// Containers the platform is stopping on purpose: their exit is no crash.
    stopping: Mutex<HashSet<String>>,
    /// Dynos' output and the scheduler's events about them go here.
    logs: LogRouter,
}

type Slot = (String, String, u32);

/// A dyno slot's crash history within one release.
#[derive(Debug, Clone)]
pub struct Crash {
    pub release_id: String,
    /// Crashes so far; the restart after the first is immediate.
    pub count: u32,
    pub exit: Exit,
    /// The container whose exit was counted last: each counts once.
    pub container_id: String,
    pub at: SystemTime,
    /// No restart before this.
    pub next_at: Instant,
}

/// Why a new dyno did not come up: what the user is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynoFailure {
    /// `web.1`
    pub name: String,
    /// "exited with status 1", "did not answer on $PORT in time (60 s)", ...
    pub reason: String,
    /// Its last lines of output.
    pub output: Vec<String>,
}

impl std::fmt::Display for DynoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.reason)?;
        if self.output.is_empty() {
            write!(f, "; it printed nothing")
        } else {
            write!(f, "; its last output:")?;
            for line in &self.output {
                write!(f, "\n    {line}")?;
            }
            Ok(())
        }
    }
}

/// What one reconcile pass did, for the pusher and the logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub started: Vec<String>,
    pub stopped: usize,
    /// New dynos that exited or never passed their health check.
    pub failures: Vec<DynoFailure>,
    /// No new web dyno answered, so the previous ones still serve.
    pub previous_serving: bool,
    /// Dynos the runtime could not start, with the reason.
    pub failed_to_start: Vec<String>,
    /// The release this pass converged to, if any.
    pub release_version: Option<i64>,
    /// How many web dynos the router sends traffic to after the pass.
    pub routed: usize,
    /// This pass marked the release failed.
    pub release_failed: bool,
}

/// A dyno as `paas ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynoView {
    pub name: String,
    pub process_type: String,
    pub release_version: i64,
    /// `starting`, `up`, `crashed`, `restarting in 4s`.
    pub state: String,
    /// Since when it is in that state (RFC 3339).
    pub since: String,
    pub restarts: u32,
    pub exit_code: Option<i64>,
    /// Its memory limit, e.g. `512M`.
    pub size: String,
    pub container_id: String,
}

pub fn desired_formation(
    process_types: &BTreeMap<String, String>,
    scaled: &BTreeMap<String, i64>,
) -> BTreeMap<String, u32> {
    process_types
        .keys()
        // `release` runs once per release, never as a dyno.
        .filter(|t| t.as_str() != "release")
        .map(|t| {
            let default = if t == "web" { 1 } else { 0 };
            let q = scaled.get(t).copied().unwrap_or(default).clamp(0, 100);
            (t.clone(), q as u32)
        })
        .collect()
}

/// The wait before restarting a dyno that has crashed `count` times in a
/// row: none the first time, then 2 s, 4 s, 8 s ... up to [`BACKOFF_CAP`].
pub fn backoff(count: u32) -> Duration {
    if count <= 1 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << (count - 1).min(20)).min(BACKOFF_CAP)
}

impl Scheduler {
    /// A scheduler over `runtime`, with the dyno settings it keeps to (the
    /// stop grace, the boot timeout, the default size).
    pub fn new(store: Store, runtime: Arc<dyn Runtime>, cipher: ConfigCipher, routes: RouteTable, logs: LogRouter, dynos: &crate::settings::Dynos) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                cipher,
                routes,
                stop_grace: dynos.stop_grace,
                boot_timeout: dynos.boot_timeout,
                default_size: dynos.size,
                locks: KeyedLocks::default(),
                queued: Mutex::default(),
                crashes: Mutex::default(),
                liveness_failures: Mutex::default(),
                stopping: Mutex::default(),
                logs,
            }),
        }
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    /// The log router the scheduler writes dynos' output and events to.
    pub fn logs(&self) -> &LogRouter {
        &self.inner.logs
    }

    /// Queues a pass for the app, unless one is queued already.
    pub fn request(&self, app: AppRow) {
        if !self.inner.queued.lock().expect("queue poisoned").insert(app.name.clone()) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.reconcile(&app).await {
                warn!(app = %app.name, error = %format!("{e:#}"), "reconcile failed");
            }
        });
    }

    /// Queues a pass for the app at `at`.
    fn request_at(&self, app: &AppRow, at: Instant) {
        let (this, app) = (self.clone(), app.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            this.request(app);
        });
    }

    /// Reconciles every app, each in a task of its own so that one slow app
    /// never delays another, and removes dynos of apps that no longer exist.
    /// Returns when every app's pass is done (the server's first pass).
    pub async fn reconcile_all(&self) -> Result<()> {
        let apps = self.remove_orphans().await?;
        let passes = apps.into_iter().map(|app| {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.reconcile(&app).await {
                    warn!(app = %app.name, error = %format!("{e:#}"), "reconcile failed");
                }
            })
        });
        futures_util::future::join_all(passes).await;
        Ok(())
    }

    /// Stops dynos of apps that no longer exist; returns the apps that do.
    async fn remove_orphans(&self) -> Result<Vec<AppRow>> {
        let apps = self.inner.store.list_apps().await?;
        let known: HashSet<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        for dyno in self.inner.runtime.list_dynos(None).await? {
            if !known.contains(dyno.app.as_str()) {
                info!(app = %dyno.app, dyno = %dyno.name(), "removing dyno of a deleted app");
                self.stop_later(dyno);
            }
        }
        if let Err(e) = self.inner.runtime.prune_networks(&known).await {
            warn!(error = %format!("{e:#}"), "cannot prune networks of deleted apps");
        }
        Ok(apps)
    }

    /// Stops every dyno of an app and forgets its routes and crashes (app
    /// destroy).
    pub async fn remove_app(&self, app: &str) -> Result<()> {
        let lock = self.inner.locks.get(app);
        let _guard = lock.lock().await;
        self.inner.routes.set(app, Vec::new());
        self.inner.crashes.lock().expect("crashes poisoned").retain(|slot, _| slot.0 != app);
        let (dynos, one_offs) = self.inner.runtime.list_app(app).await?;
        for dyno in dynos.iter().chain(one_offs.iter().map(|o| &o.dyno)) {
            self.inner.runtime.stop_dyno(&dyno.container_id, Duration::from_secs(5)).await?;
        }
        if let Err(e) = self.inner.runtime.remove_app_network(app).await {
            warn!(app, error = %format!("{e:#}"), "cannot remove the app's network");
        }
        Ok(())
    }

    /// Runs a command around a deploy (the `release` command, or an
    /// app.json script) once in a container from `image` with `env`, its
    /// output into `out`. A non-zero exit is an error.
    pub async fn run_phase(
        &self,
        app: &str,
        image: &str,
        phase: Phase,
        command: &str,
        env: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<()> {
        let what = phase.as_str();
        out.heading(format!("Running {what} command: {command}")).await;
        let mut env = env.clone();
        env.insert("PAAS_APP".into(), app.to_owned());
        env.insert("DYNO".into(), format!("{what}.1"));
        let spec = TaskSpec {
            name: format!("{what}-{app}"),
            image: image.to_owned(),
            cmd: vec!["/bin/sh".into(), "-c".into(), command.to_owned()],
            env,
            timeout: Some(Duration::from_secs(30 * 60)),
            ..Default::default()
        };
        let sink = out.sink(true);
        let result = self.inner.runtime.run_task(&spec, &sink.tx).await;
        sink.close().await;
        let code = result?.exit_code;
        if code != 0 {
            bail!("the {what} command exited with status {code}");
        }
        Ok(())
    }

    /// One reconcile pass for one app, after any pass already running.
    pub async fn reconcile(&self, app: &AppRow) -> Result<Outcome> {
        let lock = self.inner.locks.get(&app.name);
        let _guard = lock.lock().await;
        // This pass sees the state anyone who queued one wanted seen.
        self.inner.queued.lock().expect("queue poisoned").remove(&app.name);
        let outcome = self.pass(app).await?;
        if outcome.release_failed {
            // The previous release is desired again: bring it back now.
            self.request(app.clone());
        }
        Ok(outcome)
    }

    async fn pass(&self, app: &AppRow) -> Result<Outcome> {
        let inner = &self.inner;
        let release = inner.store.desired_release(&app.id).await?;
        let pending = match &release {
            Some(r) => !inner.store.release_statuses(&app.id).await?.contains_key(&r.id),
            None => false,
        };
        let scaled = inner.store.formation(&app.id).await?;
        let sizes = self.sizes(app).await?;
        let (listed, one_offs) = inner.runtime.list_app(&app.name).await?;
        // Detached one-off dynos' output goes to the log too (attached
        // ones' goes to their client only).
        let mut followed = listed.clone();
        followed.extend(one_offs.into_iter().filter(|o| o.session.is_none()).map(|o| o.dyno));
        inner.logs.sync(&app.name, &followed);
        let mut outcome = Outcome { release_version: release.as_ref().map(|r| r.version), ..Default::default() };

        // Dynos that exited: remember how, then clear them away.
        let mut actual = Vec::new();
        for d in listed {
            let on_purpose = self.inner.stopping.lock().expect("stopping poisoned").contains(&d.container_id);
            if on_purpose {
                // Already on its way out: neither kept (a scale-up right
                // after a scale-down starts a fresh dyno) nor stopped again.
                continue;
            }
            if d.running {
                actual.push(d);
                continue;
            }
            if release.as_ref().is_some_and(|r| r.id == d.release_id) {
                let exit = self.exit_of(&d).await;
                warn!(app = %app.name, dyno = %d.name(), exit = %exit, "dyno exited");
                if self.record_crash(&d, exit.clone()) {
                    self.crash_events(&d, &exit);
                }
            }
            self.stop_later(d);
        }
        let checks = appjson::checks_from_json(release.as_ref().and_then(|r| r.healthchecks.as_deref()));
        if let Some(release) = &release {
            actual = self.liveness(app, release, &checks, actual).await;
        }

        let mut keep: Vec<Dyno> = Vec::new();
        let mut to_start: Vec<DynoSpec> = Vec::new();
        let mut next_restart: Option<Instant> = None;
        let mut desired_slots: HashSet<(String, u32)> = HashSet::new();
        if let Some(release) = &release {
            let types = release.process_types()?;
            let env = inner.cipher.open(&crate::crypto::config_owner(&release.app_id), &release.config)?;
            // `FORCE_HTTPS` asks the router to send plain HTTP to HTTPS.
            let force = env.get("FORCE_HTTPS").is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
            inner.routes.set_https_only(&app.name, force);
            let now = Instant::now();
            for (ptype, quantity) in desired_formation(&types, &scaled) {
                let memory = self.size_of(&sizes, &ptype).bytes();
                for index in 1..=quantity {
                    desired_slots.insert((ptype.clone(), index));
                    // A dyno of the wrong size is replaced, new one first.
                    let existing = actual.iter().find(|d| {
                        d.release_id == release.id
                            && d.process_type == ptype
                            && d.index == index
                            && d.memory == Some(memory)
                            && !keep.iter().any(|k| k.container_id == d.container_id)
                    });
                    if let Some(d) = existing {
                        keep.push(d.clone());
                        continue;
                    }
                    let slot = (app.name.clone(), ptype.clone(), index);
                    let wait_until = self.crash_of(&slot, &release.id).map(|c| c.next_at).filter(|at| *at > now);
                    match wait_until {
                        Some(at) => next_restart = Some(next_restart.map_or(at, |n| n.min(at))),
                        None => to_start.push(spec_for(&app.name, release, &ptype, index, &types[&ptype], &env, memory)),
                    }
                }
            }
        }
        self.forget_crashes(app, release.as_ref(), &keep, &desired_slots);

        let mut started = Vec::new();
        for spec in &to_start {
            match inner.runtime.start_dyno(spec).await {
                Ok(d) => {
                    info!(app = %app.name, dyno = %d.name(), release = d.release_version, "dyno started");
                    self.started_events(&d, spec);
                    outcome.started.push(d.name());
                    started.push(d);
                }
                Err(e) => {
                    warn!(app = %app.name, error = %format!("{e:#}"), "dyno failed to start");
                    outcome.failed_to_start.push(format!("{}.{}: {e:#}", spec.process_type, spec.index));
                }
            }
        }

        // New dynos must come up: web ones answer HTTP (then get traffic),
        // others keep running for a few seconds. Routed dynos stay routed;
        // adopted web dynos that are not routed yet are probed too. A dyno
        // started now is always probed: it may have been given the address
        // of a dead dyno that is still in the table (container addresses
        // are reused at once).
        let routed: HashSet<SocketAddr> = inner.routes.get(&app.name).into_iter().collect();
        let mut probing: Vec<&Dyno> = started.iter().collect();
        let mut healthy: Vec<SocketAddr> = Vec::new();
        for d in keep.iter().filter(|d| d.process_type == "web") {
            match d.addr {
                Some(addr) if routed.contains(&addr) => healthy.push(addr),
                _ => probing.push(d),
            }
        }
        let path = release.as_ref().and_then(|r| r.health_path.as_deref());
        let results = futures_util::future::join_all(
            probing.iter().map(|d| self.comes_up(d, path, startup_check(&checks, &d.process_type))),
        )
        .await;
        // Web dynos of this release already routed (a pass that routed them
        // ended before recording the status) count as up.
        let mut new_web_up = keep.iter().any(|d| d.process_type == "web" && d.addr.is_some_and(|a| routed.contains(&a)));
        let mut checked_web = 0;
        for (d, result) in probing.iter().zip(results) {
            let web = d.process_type == "web";
            checked_web += usize::from(web);
            match result {
                Ok(()) => {
                    inner.logs.event(&app.name, &d.name(), "State changed from starting to up");
                    if let (true, Some(addr)) = (web, d.addr) {
                        healthy.push(addr);
                        new_web_up = true;
                    }
                }
                Err(failure) => {
                    warn!(app = %app.name, dyno = %failure.name, reason = %failure.reason, "dyno did not come up");
                    inner.logs.event(&app.name, &failure.name, format!("Error: the dyno {}", failure.reason));
                    outcome.failures.push(failure);
                }
            }
        }

        // When web dynos are wanted but none of them answers, the web dynos
        // that served until now keep running and serving.
        let mut held: Vec<&Dyno> = Vec::new();
        let wants_web = keep.iter().chain(started.iter()).any(|d| d.process_type == "web");
        if healthy.is_empty() && wants_web {
            held = actual
                .iter()
                .filter(|d| d.process_type == "web" && d.addr.is_some_and(|a| routed.contains(&a)))
                .filter(|d| !keep.iter().chain(started.iter()).any(|k| k.container_id == d.container_id))
                .collect();
            if !held.is_empty() {
                warn!(app = %app.name, kept = held.len(), "no new web dyno answers: the previous web dynos keep serving");
                healthy = held.iter().filter_map(|d| d.addr).collect();
                outcome.previous_serving = true;
            }
        }

        // A pending release fails when its web dynos (or, without web, its
        // other new dynos) do not come up; it succeeds when they do.
        if let (true, Some(release)) = (pending, &release) {
            let failed = if wants_web || checked_web > 0 {
                !new_web_up && (checked_web > 0 || !outcome.failed_to_start.is_empty())
            } else {
                !outcome.failures.is_empty() || !outcome.failed_to_start.is_empty()
            };
            let succeeded = if wants_web { new_web_up } else { !failed };
            if failed {
                let mut detail: Vec<String> = outcome.failures.iter().map(|f| f.to_string()).collect();
                detail.extend(outcome.failed_to_start.iter().map(|f| format!("could not start {f}")));
                inner.store.record_release_status(release, ReleaseStatus::Failed, &detail.join("\n")).await?;
                inner.logs.event(
                    &app.name,
                    "api",
                    format!("Release v{} failed: its dynos did not come up; the previous release keeps running", release.version),
                );
                warn!(app = %app.name, release = release.version, "release failed: its dynos did not come up");
                outcome.release_failed = true;
            } else if succeeded {
                inner.store.record_release_status(release, ReleaseStatus::Succeeded, "").await?;
            }
        }

        healthy.sort();
        outcome.routed = healthy.len();
        for d in actual.iter().chain(started.iter()) {
            if let Some(addr) = d.addr.filter(|a| healthy.contains(a)) {
                inner.routes.name(addr, &d.name());
            }
        }
        inner.routes.set(&app.name, healthy);

        // Only now, with the new dynos serving, do the old ones go; the dynos
        // of a release that just failed go too.
        let mut wanted: HashSet<String> = held.iter().map(|d| d.container_id.clone()).collect();
        if !outcome.release_failed {
            wanted.extend(keep.iter().chain(started.iter()).map(|d| d.container_id.clone()));
        }
        for d in actual.into_iter().chain(started).filter(|d| !wanted.contains(d.container_id.as_str())) {
            outcome.stopped += 1;
            self.stop_later(d);
        }
        if let Some(at) = next_restart {
            self.request_at(app, at);
        }
        Ok(outcome)
    }

    /// Whether a new dyno comes up. With an app.json startup check for its
    /// type: that check passes (its `initialDelay`, `attempts`, `wait`,
    /// `timeout`, `port`, `path`, `content`). Without one: a web dyno
    /// answers HTTP on `$PORT` within the boot timeout (2xx/3xx on the
    /// release's health path when it has one), another keeps running for
    /// [`SETTLE`]. Either way it fails at once when the dyno exits, with its
    /// exit and last output.
    async fn comes_up(&self, d: &Dyno, path: Option<&str>, check: Option<&HealthCheck>) -> Result<(), DynoFailure> {
        let web = d.process_type == "web";
        let started = Instant::now();
        let boot = self.inner.boot_timeout;
        let target = check.and_then(|c| check_target(d, c)).or(if web { d.addr } else { None });
        let (path, content) = match check {
            Some(c) => (c.path.as_ref().map(|p| p.0.as_str()), c.content.as_deref()),
            None => (path, None),
        };
        let initial = Duration::from_secs(check.and_then(|c| c.initial_delay).unwrap_or(0).into());
        let attempts = check.and_then(|c| c.attempts);
        let wait = check.and_then(|c| c.wait).map(|w| Duration::from_secs(w.into()));
        let timeout = Duration::from_secs(check.and_then(|c| c.timeout).unwrap_or(5).into());
        // Without an HTTP target the dyno only has to keep running.
        let deadline = started + initial + if target.is_some() { boot } else { SETTLE.min(boot) };
        let mut tries = 0u32;
        // Probing a loopback port is cheap, asking the engine whether the
        // dyno still runs less so: the probe backs off to 100 ms, the engine
        // is asked at most every 200 ms.
        let mut delay = Duration::from_millis(20);
        let mut exit_checked: Option<Instant> = None;
        loop {
            let due = started.elapsed() >= initial;
            if let (true, Some(addr)) = (due, target) {
                tries += 1;
                if http_check(addr, path, content, timeout).await.unwrap_or(false) {
                    return Ok(());
                }
            }
            let check_exit = exit_checked.is_none_or(|at| at.elapsed() >= Duration::from_millis(200));
            if check_exit {
                exit_checked = Some(Instant::now());
            }
            if check_exit && !matches!(self.inner.runtime.exit_of(&d.container_id).await, Ok((true, _))) {
                let exit = self.exit_of(d).await;
                let output = self.inner.runtime.output_tail(&d.container_id, OUTPUT_TAIL_LINES).await.unwrap_or_default();
                if self.record_crash(d, exit.clone()) {
                    self.crash_events(d, &exit);
                }
                return Err(DynoFailure { name: d.name(), reason: exit.to_string(), output });
            }
            let out_of_tries = attempts.is_some_and(|a| tries >= a);
            if Instant::now() >= deadline || out_of_tries {
                if target.is_none() {
                    return Ok(());
                }
                let port = check.and_then(|c| c.port).map_or_else(|| "$PORT".to_owned(), |p| format!("port {p}"));
                let output = self.inner.runtime.output_tail(&d.container_id, OUTPUT_TAIL_LINES).await.unwrap_or_default();
                let what = match (check, path) {
                    (Some(_), _) => format!(
                        "did not pass its startup check (GET {} on {port}{}) after {tries} attempts",
                        path.unwrap_or("/"),
                        content.map_or_else(String::new, |c| format!(", answer containing {c:?}"))
                    ),
                    (None, Some(p)) => format!("did not answer {p} with 2xx/3xx on $PORT in time"),
                    (None, None) => "did not answer on $PORT in time".to_owned(),
                };
                return Err(DynoFailure {
                    name: d.name(),
                    reason: format!("{what} ({} s): check that the process listens on that port", started.elapsed().as_secs()),
                    output,
                });
            }
            let pause = wait.unwrap_or(delay);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    /// Liveness: every running dyno of the release whose type has a
    /// liveness check is probed once per pass (after its `initialDelay`); one
    /// that fails `attempts` (default 3) in a row leaves the rotation, counts
    /// as a crash and is stopped, so this pass starts it again (or after the
    /// backoff). Returns the dynos that stay.
    async fn liveness(&self, app: &AppRow, release: &ReleaseRow, checks: &appjson::Checks, actual: Vec<Dyno>) -> Vec<Dyno> {
        let now = crate::unix_secs();
        let due: Vec<(&Dyno, &HealthCheck, SocketAddr)> = actual
            .iter()
            .filter(|d| d.release_id == release.id)
            .filter_map(|d| {
                let check = checks.get(&d.process_type)?.iter().find(|c| c.kind == appjson::CheckKind::Liveness)?;
                let addr = check_target(d, check).or(d.addr)?;
                (now - d.created >= i64::from(check.initial_delay.unwrap_or(0))).then_some((d, check, addr))
            })
            .collect();
        if due.is_empty() {
            return actual;
        }
        let results = futures_util::future::join_all(due.iter().map(|(_, c, addr)| {
            let timeout = Duration::from_secs(c.timeout.unwrap_or(5).into());
            http_check(*addr, c.path.as_ref().map(|p| p.0.as_str()), c.content.as_deref(), timeout)
        }))
        .await;
        let mut failed = HashSet::new();
        {
            let mut failures = self.inner.liveness_failures.lock().expect("liveness poisoned");
            for ((d, c, _), ok) in due.iter().zip(results) {
                if ok.unwrap_or(false) {
                    failures.remove(&d.container_id);
                    continue;
                }
                let n = failures.entry(d.container_id.clone()).or_default();
                *n += 1;
                if *n >= c.attempts.unwrap_or(3) {
                    failures.remove(&d.container_id);
                    failed.insert(d.container_id.clone());
                }
            }
        }
        let mut stay = Vec::new();
        for d in actual {
            if !failed.contains(&d.container_id) {
                stay.push(d);
                continue;
            }
            warn!(app = %app.name, dyno = %d.name(), "dyno failed its liveness check: restarting it");
            self.inner.logs.event(&app.name, &d.name(), "Error: failed its liveness check; restarting it");
            if let Some(addr) = d.addr {
                self.inner.routes.remove(&app.name, addr);
            }
            let _ = self.record_crash(&d, Exit { error: Some("failed its liveness check".into()), ..Default::default() });
            self.stop_later(d);
        }
        stay
    }

    /// How a dyno ended (an engine error, if it cannot say).
    async fn exit_of(&self, d: &Dyno) -> Exit {
        match self.inner.runtime.exit_of(&d.container_id).await {
            Ok((_, exit)) => exit,
            Err(e) => Exit { error: Some(format!("{e:#}")), ..Default::default() },
        }
    }

    /// The log's word on a dyno that exited by itself, as Heroku's.
    fn crash_events(&self, d: &Dyno, exit: &Exit) {
        let (app, name) = (&d.app, d.name());
        if exit.oom_killed {
            let limit = d.memory.map_or_else(|| "its limit".to_owned(), |m| DynoSize::from_bytes(m).to_string());
            self.inner.logs.event(app, &name, format!("Error R15 (Memory quota vastly exceeded): killed for using more than {limit}"));
        }
        self.inner.logs.event(app, &name, format!("Process {exit}"));
        self.inner.logs.event(app, &name, "State changed from up to crashed");
    }

    /// The log's word on a dyno just started, and its output followed.
    fn started_events(&self, d: &Dyno, spec: &DynoSpec) {
        self.inner.logs.follow(d);
        let command = if spec.command.is_empty() { "the image's own command".to_owned() } else { format!("`{}`", spec.command) };
        self.inner.logs.event(&d.app, &d.name(), format!("Starting process with command {command}"));
    }

    /// Counts a crash of the dyno's slot (once per container); false when
    /// this container's crash was counted already.
    fn record_crash(&self, d: &Dyno, exit: Exit) -> bool {
        let slot = (d.app.clone(), d.process_type.clone(), d.index);
        let mut crashes = self.inner.crashes.lock().expect("crashes poisoned");
        let fresh = || Crash {
            release_id: d.release_id.clone(),
            count: 0,
            exit: Exit::default(),
            container_id: String::new(),
            at: SystemTime::now(),
            next_at: Instant::now(),
        };
        let crash = crashes.entry(slot).or_insert_with(fresh);
        if crash.release_id != d.release_id {
            *crash = fresh();
        }
        if crash.container_id == d.container_id {
            return false;
        }
        crash.count += 1;
        crash.exit = exit;
        crash.container_id = d.container_id.clone();
        crash.at = SystemTime::now();
        crash.next_at = Instant::now() + backoff(crash.count);
        true
    }

    fn crash_of(&self, slot: &Slot, release_id: &str) -> Option<Crash> {
        let crashes = self.inner.crashes.lock().expect("crashes poisoned");
        crashes.get(slot).filter(|c| c.release_id == release_id).cloned()
    }

    /// Forgets the crashes of slots of other releases, of slots no longer
    /// wanted (scaled down), and of dynos that have run long enough to count
    /// as healthy again.
    fn forget_crashes(&self, app: &AppRow, release: Option<&ReleaseRow>, running: &[Dyno], wanted: &HashSet<(String, u32)>) {
        let now = crate::unix_secs();
        let mut crashes = self.inner.crashes.lock().expect("crashes poisoned");
        crashes.retain(|slot, crash| {
            if slot.0 != app.name {
                return true;
            }
            if release.is_none_or(|r| r.id != crash.release_id) || !wanted.contains(&(slot.1.clone(), slot.2)) {
                return false;
            }
            !running.iter().any(|d| {
                d.process_type == slot.1 && d.index == slot.2 && now - d.created >= RESET_AFTER.as_secs() as i64
            })
        });
    }

    /// Each process type's size: what `ps:resize` set, else the default.
    pub async fn sizes(&self, app: &AppRow) -> Result<BTreeMap<String, DynoSize>> {
        let mut sizes = BTreeMap::new();
        for (t, s) in self.inner.store.sizes(&app.id).await? {
            sizes.insert(t, DynoSize::parse(&s).context("a stored dyno size is damaged")?);
        }
        Ok(sizes)
    }

    /// A process type's size: what `ps:resize` set (in `sizes`, from
    /// [`Self::sizes`]), else the default.
    pub fn size_of(&self, sizes: &BTreeMap<String, DynoSize>, process_type: &str) -> DynoSize {
        sizes.get(process_type).copied().unwrap_or(self.inner.default_size)
    }

    /// Restarts the app's dynos that `target` names (all, a type such as
    /// `web`, or one dyno such as `web.1`), one at a time: a fresh dyno
    /// first, and for web dynos traffic moves only once it answers, so a
    /// web restart drops no request. Crash counts start afresh. Returns the
    /// dynos restarted and those that did not come up.
    pub async fn restart(&self, app: &AppRow, target: Option<&str>) -> Result<(Vec<String>, Vec<DynoFailure>)> {
        let lock = self.inner.locks.get(&app.name);
        let _guard = lock.lock().await;
        let inner = &self.inner;
        inner.crashes.lock().expect("crashes poisoned").retain(|slot, _| {
            slot.0 != app.name || target.is_some_and(|t| t != slot.1 && t != format!("{}.{}", slot.1, slot.2))
        });
        let Some(release) = inner.store.desired_release(&app.id).await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let types = release.process_types()?;
        let env = inner.cipher.open(&crate::crypto::config_owner(&release.app_id), &release.config)?;
        let sizes = self.sizes(app).await?;
        let checks = appjson::checks_from_json(release.healthchecks.as_deref());
        let mut dynos: Vec<Dyno> = inner.runtime.list_dynos(Some(&app.name)).await?;
        let stopping = inner.stopping.lock().expect("stopping poisoned").clone();
        dynos.retain(|d| {
            d.running && !stopping.contains(&d.container_id) && target.is_none_or(|t| t == d.process_type || t == d.name())
        });
        dynos.sort_by(|a, b| (&a.process_type, a.index).cmp(&(&b.process_type, b.index)));
        let (mut restarted, mut failed) = (Vec::new(), Vec::new());
        for old in dynos {
            let Some(command) = types.get(&old.process_type) else { continue };
            let memory = self.size_of(&sizes, &old.process_type).bytes();
            let spec = spec_for(&app.name, &release, &old.process_type, old.index, command, &env, memory);
            let new = match inner.runtime.start_dyno(&spec).await {
                Ok(d) => {
                    inner.logs.event(&app.name, &old.name(), "Restarting");
                    self.started_events(&d, &spec);
                    d
                }
                Err(e) => {
                    failed.push(DynoFailure { name: old.name(), reason: format!("could not start: {e:#}"), output: Vec::new() });
                    continue;
                }
            };
            match self.comes_up(&new, release.health_path.as_deref(), startup_check(&checks, &new.process_type)).await {
                Ok(()) => {
                    if let (Some(new_addr), Some(old_addr)) = (new.addr, old.addr) {
                        inner.routes.name(new_addr, &new.name());
                        inner.routes.replace(&app.name, old_addr, new_addr);
                    }
                    info!(app = %app.name, dyno = %old.name(), "dyno restarted");
                    restarted.push(old.name());
                    self.stop_later(old);
                }
                Err(f) => {
                    // The old dyno keeps its place; the new one goes.
                    failed.push(f);
                    self.stop_later(new);
                }
            }
        }
        Ok((restarted, failed))
    }

    /// Stops one dyno (`web.2`) now. A dyno of the formation is started
    /// again by the next pass, as on Heroku.
    pub async fn stop_dyno(&self, app: &AppRow, name: &str) -> Result<bool> {
        let dynos = self.inner.runtime.list_dynos(Some(&app.name)).await?;
        let Some(d) = dynos.into_iter().find(|d| d.running && d.name() == name) else {
            return Ok(false);
        };
        if let Some(addr) = d.addr {
            self.inner.routes.remove(&app.name, addr);
        }
        self.stop_now(&d, self.inner.stop_grace).await;
        info!(app = %app.name, dyno = %name, "dyno stopped");
        Ok(true)
    }

    /// The app's dynos as `paas ps` shows them: running ones, and slots
    /// whose dyno crashed and waits to restart.
    pub async fn ps(&self, app: &AppRow) -> Result<Vec<DynoView>> {
        let dynos = self.inner.runtime.list_dynos(Some(&app.name)).await?;
        let routed: HashSet<SocketAddr> = self.inner.routes.get(&app.name).into_iter().collect();
        let crashes: Vec<(Slot, Crash)> = {
            let crashes = self.inner.crashes.lock().expect("crashes poisoned");
            crashes.iter().filter(|(s, _)| s.0 == app.name).map(|(s, c)| (s.clone(), c.clone())).collect()
        };
        let crash_for = |d: &Dyno| crashes.iter().find(|(s, c)| s.1 == d.process_type && s.2 == d.index && c.release_id == d.release_id);
        let mut views = Vec::new();
        for d in dynos.iter().filter(|d| d.running) {
            let crash = crash_for(d).map(|(_, c)| c);
            let stopping = self.inner.stopping.lock().expect("stopping poisoned").contains(&d.container_id);
            let state = if stopping {
                "stopping"
            } else if d.process_type == "web" && !d.addr.is_some_and(|a| routed.contains(&a)) {
                "starting"
            } else {
                "up"
            };
            views.push(DynoView {
                name: d.name(),
                process_type: d.process_type.clone(),
                release_version: d.release_version,
                state: state.into(),
                since: rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(d.created.max(0) as u64)),
                restarts: crash.map_or(0, |c| c.count),
                exit_code: crash.and_then(|c| c.exit.exit_code),
                size: d.size(),
                container_id: d.container_id.chars().take(12).collect(),
            });
        }
        let now = Instant::now();
        for (slot, crash) in &crashes {
            if dynos.iter().any(|d| d.running && d.process_type == slot.1 && d.index == slot.2) {
                continue;
            }
            let version = dynos.iter().find(|d| d.release_id == crash.release_id).map(|d| d.release_version);
            let state = if crash.next_at > now {
                format!("restarting in {}s", (crash.next_at - now).as_secs().max(1))
            } else if crash.exit.oom_killed {
                "crashed (out of memory)".to_owned()
            } else {
                "crashed".to_owned()
            };
            views.push(DynoView {
                name: format!("{}.{}", slot.1, slot.2),
                process_type: slot.1.clone(),
                release_version: version.unwrap_or_default(),
                state,
                since: rfc3339(crash.at),
                restarts: crash.count,
                exit_code: crash.exit.exit_code,
                size: String::new(),
                container_id: String::new(),
            });
        }
        Ok(views)
    }

    fn stop_later(&self, dyno: Dyno) {
        let this = self.clone();
        let grace = self.inner.stop_grace;
        tokio::spawn(async move { this.stop_now(&dyno, grace).await });
    }

    /// Stops and removes a dyno on purpose: its exit counts as no crash.
    async fn stop_now(&self, dyno: &Dyno, grace: Duration) {
        let id = dyno.container_id.clone();
        if !self.inner.stopping.lock().expect("stopping poisoned").insert(id.clone()) {
            return; // another stop of it is under way
        }
        if dyno.running {
            // Out of the rotation already: the requests it serves finish first.
            if let Some(addr) = dyno.addr {
                self.inner.routes.drained(addr, grace).await;
            }
            self.inner.logs.event(&dyno.app, &dyno.name(), "Stopping process with SIGTERM");
            match self.inner.runtime.halt_dyno(&id, grace).await {
                Ok(()) => {
                    let exit = self.exit_of(dyno).await;
                    self.inner.logs.event(&dyno.app, &dyno.name(), format!("Process {exit}"));
                    self.inner.logs.event(&dyno.app, &dyno.name(), "State changed from up to down");
                }
                Err(e) => warn!(app = %dyno.app, dyno = %dyno.name(), error = %format!("{e:#}"), "cannot stop dyno"),
            }
        }
        // Its last lines are taken in before the container goes.
        self.inner.logs.drained(&id, Duration::from_secs(2)).await;
        if let Err(e) = self.inner.runtime.stop_dyno(&id, grace).await {
            warn!(app = %dyno.app, dyno = %dyno.name(), error = %format!("{e:#}"), "cannot stop dyno");
        }
        self.inner.stopping.lock().expect("stopping poisoned").remove(&id);
    }

    /// The periodic loop and the exit watcher: every `every`, and whenever a
    /// dyno exits, a pass is queued for its app.
    pub fn spawn_loop(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let mut exits = self.inner.runtime.watch_exits();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => match this.remove_orphans().await {
                        Ok(apps) => apps.into_iter().for_each(|app| this.request(app)),
                        Err(e) => warn!(error = %format!("{e:#}"), "reconcile loop failed"),
                    },
                    Some((app, container)) = exits.recv() => {
                        let Ok(name) = paas_wire::AppName::parse(&app) else { continue };
                        let Ok(row) = this.inner.store.app(&name).await else { continue };
                        // The engine sends `die` a moment before it lists the
                        // container as exited: wait for that (bounded), so
                        // the pass sees the exit.
                        let this = this.clone();
                        tokio::spawn(async move {
                            let deadline = Instant::now() + Duration::from_secs(2);
                            while Instant::now() < deadline {
                                match this.inner.runtime.exit_of(&container).await {
                                    Ok((true, _)) => tokio::time::sleep(Duration::from_millis(10)).await,
                                    _ => break,
                                }
                            }
                            this.request(row);
                        });
                    }
                }
            }
        })
    }
}

/// The type's startup check, if app.json gives one.
fn startup_check<'a>(checks: &'a appjson::Checks, process_type: &str) -> Option<&'a HealthCheck> {
    checks.get(process_type)?.iter().find(|c| c.is_startup())
}

/// Where a check connects: the dyno's network address and the check's port;
/// a web dyno's check without a port uses its published `$PORT`.
fn check_target(d: &Dyno, check: &HealthCheck) -> Option<SocketAddr> {
    match check.port {
        Some(port) if !(d.process_type == "web" && port == DYNO_PORT) => d.ip.map(|ip| SocketAddr::new(ip, port)),
        _ => d.addr,
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A command run around a deploy, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// app.json `scripts.dokku.predeploy`: before the release is made.
    Predeploy,
    /// The Procfile's `release` command: before the release is made.
    Release,
    /// app.json `scripts.postdeploy` (Heroku's, once per app): after the
    /// first deploy whose dynos came up.
    FirstPostdeploy,
    /// app.json `scripts.dokku.postdeploy`: after each deploy whose dynos
    /// came up.
    Postdeploy,
}

impl Phase {
    /// Its name in the output, in `DYNO` and in the task container's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Predeploy => "predeploy",
            Phase::Release => "release",
            Phase::FirstPostdeploy => "first-postdeploy",
            Phase::Postdeploy => "postdeploy",
        }
    }
}

/// What to start for dyno `ptype.index` of `release`: its image and
/// command, its config plus `DYNO`, `PAAS_APP`, `PAAS_RELEASE` (and `PORT`
/// for web), its memory limit. One-off dynos are made the same way.
pub fn spec_for(
    app: &str,
    release: &ReleaseRow,
    ptype: &str,
    index: u32,
    command: &str,
    config: &BTreeMap<String, String>,
    memory: i64,
) -> DynoSpec {
    let mut env = config.clone();
    env.insert("DYNO".into(), format!("{ptype}.{index}"));
    env.insert("PAAS_APP".into(), app.to_owned());
    env.insert("PAAS_RELEASE".into(), format!("v{}", release.version));
    let web = ptype == "web";
    if web {
        env.insert("PORT".into(), DYNO_PORT.to_string());
    }
    DynoSpec {
        app: app.to_owned(),
        release_id: release.id.clone(),
        release_version: release.version,
        process_type: ptype.to_owned(),
        index,
        image: release.image.clone().unwrap_or_default(),
        command: command.to_owned(),
        env,
        web,
        memory: Some(memory),
    }
}

/// One HTTP check: a GET of `path` (or `/`) that must answer, and with a
/// path 2xx/3xx, and with `content` contain it in the first 64 KiB. A bare
/// TCP connect is not enough: Docker's port proxy accepts connections
/// before the app listens.
async fn http_check(addr: SocketAddr, path: Option<&str>, content: Option<&str>, timeout: Duration) -> Result<bool> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: paas-health\r\nUser-Agent: paas-health\r\n\r\n",
            path.unwrap_or("/")
        );
        s.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 || answer.len() > 64 * 1024 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            // Without content to find, the status line is enough.
            if content.is_none() && answer.len() >= 12 {
                break;
            }
        }
        // "HTTP/1.1 200": the status code's first digit is byte 9.
        let answered = answer.starts_with(b"HTTP/") && answer.len() >= 12;
        let status_ok = path.is_none() || (answered && matches!(answer[9], b'2' | b'3'));
        let content_ok = content.is_none_or(|c| String::from_utf8_lossy(&answer).contains(c));
        Ok::<bool, std::io::Error>(answered && status_ok && content_ok)
    };
    tokio::time::timeout(timeout, attempt).await.context("health check timed out")?.map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formation_defaults_web_to_one_and_others_to_zero() {
        let types = BTreeMap::from([
            ("web".to_owned(), "serve".to_owned()),
            ("worker".to_owned(), "work".to_owned()),
            ("clock".to_owned(), "tick".to_owned()),
            ("release".to_owned(), "migrate".to_owned()),
        ]);
        let scaled = BTreeMap::from([("worker".to_owned(), 2), ("gone".to_owned(), 5)]);
        let f = desired_formation(&types, &scaled);
        assert_eq!(f, BTreeMap::from([("clock".into(), 0), ("web".into(), 1), ("worker".into(), 2)]));
    }
}
