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
//! the release service, by the engine's exit events, by a periodic tick and
//! by the loop's wakeups (a crashed slot's backoff ending), so one slow or
//! crashing app never delays another.
//!
//! The files: `decide.rs` the decisions apart from clock and engine (what
//! a pass keeps, starts and retires, and when to look again; the formation;
//! the backoff; a dyno's spec), `crashes.rs` crash records, `health.rs`
//! startup and liveness checks, `phases.rs` the commands around a deploy,
//! `views.rs` `paas ps`; this file the passes and the loop.
//!
//! It talks to Docker only through [`Runtime`] and never touches SQL
//! directly. It never makes releases: the release service does, then asks
//! it to converge. It also runs a release's one-off `release` command for
//! the release service.

mod crashes;
mod decide;
mod health;
mod phases;
mod views;

pub use crashes::Crash;
pub use decide::{backoff, decide, desired_formation, spec_for, Decision, Desired};
pub use health::DynoFailure;
pub use phases::Phase;
pub use views::DynoView;

use crate::appjson;
use crate::crypto::ConfigCipher;
use crate::locks::KeyedLocks;
use crate::logs::LogRouter;
use crate::router::{MaintenancePage, RouteTable};
use crate::runtime::{Dyno, DynoSpec, Exit, Runtime};
use crate::store::{AppRow, ReleaseRow, ReleaseStatus, Store};
use crate::twelve::{Factor, Finding};
use anyhow::{Context, Result};
use health::startup_check;
use paas_wire::DynoSize;
use std::collections::{BTreeMap, HashMap, HashSet};
use crate::runtime::Endpoint;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Lines of a failed dyno's output shown to the user.
pub const OUTPUT_TAIL_LINES: usize = 30;

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
    /// Records twelve-factor observations; None with PAAS_OBSERVE=off.
    observer: Option<crate::twelve::Observer>,
    /// The size of dynos whose type was not resized.
    default_size: DynoSize,
    /// One pass at a time per app.
    locks: KeyedLocks,
    /// Apps with a pass queued behind the running one.
    queued: Mutex<HashSet<String>>,
    /// Apps to look at again at a time of their own (a slot waiting out its
    /// backoff), the earliest per app; the loop requeues them when due.
    wakeups: Mutex<HashMap<String, (Instant, AppRow)>>,
    /// Tells the loop a wakeup was added.
    wake: tokio::sync::Notify,
    /// Crashes per dyno slot (app, type, index).
    crashes: Mutex<HashMap<Slot, Crash>>,
    /// Liveness checks failed in a row, per container.
    liveness_failures: Mutex<HashMap<crate::runtime::DynoId, u32>>,
    /// Containers the platform is stopping on purpose: their exit is no crash.
    stopping: Mutex<HashSet<crate::runtime::DynoId>>,
    /// Dynos' output and the scheduler's events about them go here.
    logs: LogRouter,
}

type Slot = (String, String, u32);

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

/// A formation dyno that exits 0 sooner than this after it started most
/// likely daemonized.
const DAEMON_EXIT: Duration = Duration::from_secs(10);

/// What a dyno that came up after `boot` shows: it bound `$PORT` (a web
/// dyno) and how long it took to boot.
fn came_up(d: &Dyno, boot: Duration) -> Vec<Finding> {
    let mut out = vec![Finding::good(Factor::Disposability, "boot", &d.process_type, format!("{} came up in {:.1} s", d.name(), boot.as_secs_f64()))];
    if d.process_type == "web" {
        out.push(Finding::good(Factor::PortBinding, "port", "web", format!("{} answered HTTP on $PORT ({})", d.name(), crate::runtime::DYNO_PORT)));
    }
    out
}

impl Scheduler {
    /// A scheduler over `runtime`, with the dyno settings it keeps to (the
    /// stop grace, the boot timeout, the default size).
    pub fn new(store: Store, runtime: Arc<dyn Runtime>, cipher: ConfigCipher, routes: RouteTable, logs: LogRouter, dynos: &crate::settings::Dynos) -> Self {
        let observer = dynos.observe.then(|| crate::twelve::Observer::new(store.clone(), logs.clone()));
        Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                cipher,
                routes,
                stop_grace: dynos.stop_grace,
                boot_timeout: dynos.boot_timeout,
                observer,
                default_size: dynos.size,
                locks: KeyedLocks::default(),
                queued: Mutex::default(),
                wakeups: Mutex::default(),
                wake: tokio::sync::Notify::new(),
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

    /// The router's table the scheduler keeps (maintenance mode is set on it).
    pub fn routes(&self) -> &crate::router::RouteTable {
        &self.inner.routes
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

    /// Queues a pass for the app at `at` (the loop does it; the earliest
    /// time asked for wins).
    fn request_at(&self, app: &AppRow, at: Instant) {
        let mut wakeups = self.inner.wakeups.lock().expect("wakeups poisoned");
        let entry = wakeups.entry(app.name.clone()).or_insert_with(|| (at, app.clone()));
        entry.0 = entry.0.min(at);
        drop(wakeups);
        self.inner.wake.notify_one();
    }

    /// The apps whose wakeup is due, taken out; and the next one not due.
    fn due_wakeups(&self, now: Instant) -> (Vec<AppRow>, Option<Instant>) {
        let mut wakeups = self.inner.wakeups.lock().expect("wakeups poisoned");
        let due: Vec<String> = wakeups.iter().filter(|(_, (at, _))| *at <= now).map(|(name, _)| name.clone()).collect();
        let apps = due.iter().filter_map(|name| wakeups.remove(name)).map(|(_, app)| app).collect();
        (apps, wakeups.values().map(|(at, _)| *at).min())
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
            self.inner.runtime.stop_dyno(&dyno.id, Duration::from_secs(5)).await?;
        }
        if let Err(e) = self.inner.runtime.remove_app_network(app).await {
            warn!(app, error = %format!("{e:#}"), "cannot remove the app's network");
        }
        Ok(())
    }

    /// One reconcile pass for one app, after any pass already running.
    pub async fn reconcile(&self, app: &AppRow) -> Result<Outcome> {
        // A pass asked for under a name the app no longer has (renamed
        // since) runs under the name it has now; a destroyed app has none.
        let fresh = self.inner.store.app_by_id(&app.id).await?;
        if fresh.as_ref().is_none_or(|f| f.name != app.name) {
            self.inner.queued.lock().expect("queue poisoned").remove(&app.name);
        }
        let Some(app) = &fresh else { return Ok(Outcome::default()) };
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
            let on_purpose = self.inner.stopping.lock().expect("stopping poisoned").contains(&d.id);
            if on_purpose {
                // Already on its way out: neither kept (a scale-up right
                // after a scale-down starts a fresh dyno) nor stopped again.
                continue;
            }
            if d.running {
                actual.push(d);
                continue;
            }
            // Requests waiting on it (a lost node's dyno answers nothing,
            // and never closes) go to other dynos now.
            if let Some(addr) = d.addr {
                inner.routes.lose(&app.name, addr);
            }
            if release.as_ref().is_some_and(|r| r.id == d.release_id) {
                let exit = self.exit_of(&d).await;
                warn!(app = %app.name, dyno = %d.name(), exit = %exit, "dyno exited");
                let ran = Duration::from_secs(crate::unix_secs().saturating_sub(d.created).max(0) as u64);
                if exit.exit_code == Some(0) && ran < DAEMON_EXIT {
                    self.observe(app, vec![(d.release_id.clone(), health::daemonized(&d, ran))]);
                }
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

        let mut to_start: Vec<DynoSpec> = Vec::new();
        let decision = match &release {
            Some(release) => {
                let types = release.process_types()?;
                let env = inner.cipher.open(&crate::crypto::config_owner(&release.app_id), &release.config)?;
                // `FORCE_HTTPS` asks the router to send plain HTTP to HTTPS.
                let force = env.get("FORCE_HTTPS").is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
                inner.routes.set_https_only(&app.name, force);
                self.load_maintenance_page(app, release, &env).await?;
                // A new release's config, against IV (told in its log once).
                if pending && inner.observer.is_some() {
                    let mut seen = crate::twelve::loopback_config(&env);
                    seen.extend(crate::twelve::parity(&inner.store, app, release.build_id.as_deref()).await?.into_iter().filter(|f| !f.ok));
                    self.observe(app, seen.into_iter().map(|f| (release.id.clone(), f)).collect());
                }
                let formation = desired_formation(&types, &scaled);
                let memory = formation.keys().map(|t| (t.clone(), self.size_of(&sizes, t).bytes())).collect();
                let desired = Desired { release_id: &release.id, formation, memory };
                let decision = decide(Some(&desired), &actual, &self.waiting_slots(app, &release.id), Instant::now());
                // Read only when something starts: most passes start nothing.
                let constraints = if decision.start.is_empty() { Vec::new() } else { inner.store.app_constraints(&app.id).await? };
                for (ptype, index) in &decision.start {
                    let mut spec = spec_for(&app.name, release, ptype, *index, &types[ptype], &env, desired.memory[ptype]);
                    spec.constraints = constraints.clone();
                    to_start.push(spec);
                }
                decision
            }
            None => decide(None, &actual, &HashMap::new(), Instant::now()),
        };
        let Decision { keep, wanted: desired_slots, look_again_at: next_restart, retire, .. } = decision;
        self.forget_crashes(app, release.as_ref(), &keep, &desired_slots);

        // Started together: on a swarm each start waits for its node to
        // run it.
        let mut started = Vec::new();
        let results = futures_util::future::join_all(to_start.iter().map(|spec| inner.runtime.start_dyno(spec))).await;
        for (spec, result) in to_start.iter().zip(results) {
            match result {
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
        let routed: HashSet<Endpoint> = inner.routes.get(&app.name).into_iter().collect();
        let mut probing: Vec<&Dyno> = started.iter().collect();
        let mut healthy: Vec<Endpoint> = Vec::new();
        let mut placing = false;
        for d in keep.iter().filter(|d| d.process_type == "web") {
            match d.addr {
                Some(addr) if routed.contains(&addr) => healthy.push(addr),
                Some(_) => probing.push(d),
                // Adopted while its node starts it (a swarm's task not
                // running yet): probed once it has an address.
                None => placing = true,
            }
        }
        if placing {
            self.request_at(app, Instant::now() + Duration::from_secs(1));
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
        let mut seen: Vec<(String, Finding)> = Vec::new();
        for (d, result) in probing.iter().zip(results) {
            let web = d.process_type == "web";
            checked_web += usize::from(web);
            match result {
                Ok(boot) => {
                    seen.extend(came_up(d, boot).into_iter().map(|f| (d.release_id.clone(), f)));
                    inner.logs.event(&app.name, &d.name(), "State changed from starting to up");
                    if let (true, Some(addr)) = (web, d.addr) {
                        healthy.push(addr);
                        new_web_up = true;
                    }
                }
                Err(failure) => {
                    seen.extend(failure.finding.clone().map(|f| (d.release_id.clone(), f)));
                    warn!(app = %app.name, dyno = %failure.name, reason = %failure.reason, "dyno did not come up");
                    inner.logs.event(&app.name, &failure.name, format!("Error: the dyno {}", failure.reason));
                    outcome.failures.push(failure);
                }
            }
        }

        self.observe(app, seen);

        // When web dynos are wanted but none of them answers, the web dynos
        // that served until now keep running and serving.
        let mut held: Vec<&Dyno> = Vec::new();
        let wants_web = keep.iter().chain(started.iter()).any(|d| d.process_type == "web");
        if healthy.is_empty() && wants_web {
            held = actual
                .iter()
                .filter(|d| d.process_type == "web" && d.addr.is_some_and(|a| routed.contains(&a)))
                .filter(|d| !keep.iter().chain(started.iter()).any(|k| k.id == d.id))
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

        // Only now, with the new dynos serving, do the old ones go (but those
        // held serving); the dynos of a release that just failed go too.
        let held: HashSet<crate::runtime::DynoId> = held.iter().map(|d| d.id.clone()).collect();
        let mut going: Vec<Dyno> = retire.into_iter().filter(|d| !held.contains(&d.id)).collect();
        if outcome.release_failed {
            going.extend(keep.into_iter().chain(started));
        }
        for d in going {
            outcome.stopped += 1;
            self.stop_later(d);
        }
        if let Some(at) = next_restart {
            self.request_at(app, at);
        }
        Ok(outcome)
    }

    /// How a dyno ended (an engine error, if it cannot say).
    async fn exit_of(&self, d: &Dyno) -> Exit {
        match self.inner.runtime.exit_of(&d.id).await {
            Ok((_, exit)) => exit,
            Err(e) => Exit { error: Some(format!("{e:#}")), ..Default::default() },
        }
    }

    /// The log's word on a dyno just started, and its output followed.
    fn started_events(&self, d: &Dyno, spec: &DynoSpec) {
        self.inner.logs.follow(d);
        let command = if spec.command.is_empty() { "the image's own command".to_owned() } else { format!("`{}`", spec.command) };
        self.inner.logs.event(&d.app, &d.name(), format!("Starting process with command {command}"));
    }

    /// The app's own maintenance page, while it is in maintenance mode:
    /// its `MAINTENANCE_PAGE_URL`, else its build's `maintenance.html`.
    async fn load_maintenance_page(&self, app: &AppRow, release: &ReleaseRow, env: &BTreeMap<String, String>) -> Result<()> {
        let routes = &self.inner.routes;
        let page = match (env.get("MAINTENANCE_PAGE_URL"), &release.build_id) {
            (Some(url), _) => Some(MaintenancePage::Url(url.clone())),
            (None, Some(build)) if routes.in_maintenance(&app.name) => {
                self.inner.store.build_maintenance_page(build).await?.map(|html| MaintenancePage::Html(html.into()))
            }
            _ => None,
        };
        routes.set_maintenance_page(&app.name, page);
        Ok(())
    }

    /// Loads the app's own maintenance page now (maintenance mode was just
    /// turned on).
    pub async fn refresh_maintenance_page(&self, app: &AppRow) -> Result<()> {
        let Some(release) = self.inner.store.desired_release(&app.id).await? else { return Ok(()) };
        let env = self.inner.cipher.open(&crate::crypto::config_owner(&release.app_id), &release.config)?;
        self.load_maintenance_page(app, &release, &env).await
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
            d.running && !stopping.contains(&d.id) && target.is_none_or(|t| t == d.process_type || t == d.name())
        });
        dynos.sort_by(|a, b| (&a.process_type, a.index).cmp(&(&b.process_type, b.index)));
        let constraints = inner.store.app_constraints(&app.id).await?;
        let (mut restarted, mut failed) = (Vec::new(), Vec::new());
        for old in dynos {
            let Some(command) = types.get(&old.process_type) else { continue };
            let memory = self.size_of(&sizes, &old.process_type).bytes();
            let mut spec = spec_for(&app.name, &release, &old.process_type, old.index, command, &env, memory);
            spec.constraints = constraints.clone();
            let new = match inner.runtime.start_dyno(&spec).await {
                Ok(d) => {
                    inner.logs.event(&app.name, &old.name(), "Restarting");
                    self.started_events(&d, &spec);
                    d
                }
                Err(e) => {
                    failed.push(DynoFailure { name: old.name(), reason: format!("could not start: {e:#}"), output: Vec::new(), finding: None });
                    continue;
                }
            };
            match self.comes_up(&new, release.health_path.as_deref(), startup_check(&checks, &new.process_type)).await {
                Ok(boot) => {
                    self.observe(app, came_up(&new, boot).into_iter().map(|f| (new.release_id.clone(), f)).collect());
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

    fn stop_later(&self, dyno: Dyno) {
        let this = self.clone();
        let grace = self.inner.stop_grace;
        tokio::spawn(async move { this.stop_now(&dyno, grace).await });
    }

    /// Stops and removes a dyno on purpose: its exit counts as no crash.
    async fn stop_now(&self, dyno: &Dyno, grace: Duration) {
        let id = dyno.id.clone();
        if !self.inner.stopping.lock().expect("stopping poisoned").insert(id.clone()) {
            return; // another stop of it is under way
        }
        if dyno.running {
            // Out of the rotation already: the requests it serves finish first.
            if let Some(addr) = dyno.addr {
                self.inner.routes.drained(addr, grace).await;
            }
            self.inner.logs.event(&dyno.app, &dyno.name(), "Stopping process with SIGTERM");
            let asked = Instant::now();
            match self.inner.runtime.halt_dyno(&id, grace).await {
                Ok(()) => {
                    let took = asked.elapsed();
                    let exit = self.exit_of(dyno).await;
                    // Still running at the end of its grace: SIGKILLed (R12).
                    let killed = exit.exit_code == Some(137) && !exit.oom_killed && took + Duration::from_millis(500) >= grace;
                    if killed {
                        self.inner.logs.event(
                            &dyno.app,
                            &dyno.name(),
                            format!("Error R12 (Exit timeout) -> Process failed to exit within {} seconds of SIGTERM", grace.as_secs()),
                        );
                        self.inner.logs.event(&dyno.app, &dyno.name(), "Stopping process with SIGKILL");
                    }
                    self.inner.logs.event(&dyno.app, &dyno.name(), format!("Process {exit}"));
                    self.inner.logs.event(&dyno.app, &dyno.name(), "State changed from up to down");
                    let finding = if killed {
                        Finding::bad(
                            Factor::Disposability,
                            "shutdown",
                            &dyno.process_type,
                            format!("{} did not exit within {} s of SIGTERM and was killed (Heroku's R12)", dyno.name(), grace.as_secs()),
                            "handle SIGTERM: stop taking work, finish or hand back what is in hand, and exit",
                        )
                    } else {
                        Finding::good(
                            Factor::Disposability,
                            "shutdown",
                            &dyno.process_type,
                            format!("{} exited {:.1} s after SIGTERM", dyno.name(), took.as_secs_f64()),
                        )
                    };
                    if let Some(observer) = &self.inner.observer {
                        observer.record_for(&dyno.app, &dyno.release_id, &[finding]).await;
                    }
                }
                Err(e) => warn!(app = %dyno.app, dyno = %dyno.name(), error = %format!("{e:#}"), "cannot stop dyno"),
            }
        }
        // Its last lines are taken in before the container goes.
        self.inner.logs.drained(id.as_str(), Duration::from_secs(2)).await;
        if let Err(e) = self.inner.runtime.stop_dyno(&id, grace).await {
            warn!(app = %dyno.app, dyno = %dyno.name(), error = %format!("{e:#}"), "cannot stop dyno");
        }
        self.inner.stopping.lock().expect("stopping poisoned").remove(&id);
    }

    /// Records what dynos showed against the twelve factors, in the
    /// background: a pass never waits on it.
    fn observe(&self, app: &AppRow, seen: Vec<(String, Finding)>) {
        let Some(observer) = self.inner.observer.clone().filter(|_| !seen.is_empty()) else { return };
        let app = app.clone();
        tokio::spawn(async move {
            for (scope, f) in seen {
                observer.record(&app.id, &app.name, &scope, std::slice::from_ref(&f)).await;
            }
        });
    }

    /// The loop: every `every`, whenever a dyno exits, and when an app's
    /// wakeup (a crashed dyno's backoff ending) is due, a pass is queued for
    /// the app. No task sleeps per waiting dyno.
    pub fn spawn_loop(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let mut exits = self.inner.runtime.watch_exits();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                let (due, next) = this.due_wakeups(Instant::now());
                due.into_iter().for_each(|app| this.request(app));
                // Far enough never to come: the other branches wake it.
                let next = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => {}
                    _ = this.inner.wake.notified() => {}
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

