//! The scheduler: a level-triggered reconcile loop. Desired state is the
//! current release × the formation; actual state is the containers carrying
//! the paas labels. Each pass starts what is missing (new dynos first), waits
//! for new web dynos to answer, points the router at the healthy ones, and
//! only then stops what is no longer desired.
//!
//! It talks to Docker only through [`Runtime`] and never touches SQL directly.
//! It never makes releases: the release service does, then asks it to
//! converge. It also runs a release's one-off `release` command for the
//! release service.

use crate::crypto::ConfigCipher;
use crate::output::Output;
use crate::router::RouteTable;
use crate::runtime::{Dyno, DynoSpec, Runtime, TaskSpec, DYNO_PORT};
use crate::store::{AppRow, ReleaseRow, Store};
use anyhow::{bail, Context, Result};
use crate::locks::KeyedLocks;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

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
    /// One reconcile at a time per app.
    locks: KeyedLocks,
}

/// What one reconcile pass did, for the pusher and the logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub started: Vec<String>,
    pub stopped: usize,
    /// New web dynos that did not answer within the boot timeout.
    pub unhealthy: Vec<String>,
    /// No new web dyno answered, so the previous ones still serve.
    pub previous_serving: bool,
    /// Dynos the runtime could not start, with the reason.
    pub failed_to_start: Vec<String>,
    /// The release this pass converged to, if any.
    pub release_version: Option<i64>,
    /// How many web dynos the router sends traffic to after the pass.
    pub routed: usize,
}

/// The desired scale of each process type of a release: what was set with
/// `ps:scale`, else web=1 and every other type 0, as on Heroku. The `release`
/// type is not a dyno.
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

impl Scheduler {
    pub fn new(
        store: Store,
        runtime: Arc<dyn Runtime>,
        cipher: ConfigCipher,
        routes: RouteTable,
        stop_grace: Duration,
        boot_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                cipher,
                routes,
                stop_grace,
                boot_timeout,
                locks: KeyedLocks::default(),
            }),
        }
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    /// What runs for an app now, read from the runtime.
    pub async fn dynos(&self, app: &str) -> Result<Vec<Dyno>> {
        self.inner.runtime.list_dynos(Some(app)).await
    }

    /// Reconciles every app, each in a task of its own so that one slow app
    /// never delays another, and removes dynos of apps that no longer exist.
    pub async fn reconcile_all(&self) -> Result<()> {
        let apps = self.inner.store.list_apps().await?;
        let known: HashSet<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        for dyno in self.inner.runtime.list_dynos(None).await? {
            if !known.contains(dyno.app.as_str()) {
                info!(app = %dyno.app, dyno = %dyno.name(), "removing dyno of a deleted app");
                self.stop_later(dyno);
            }
        }
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

    /// Runs a release's `release` command once in a one-off container from
    /// `image` with `env`, its output into `out`. A non-zero exit is an error.
    pub async fn run_release_command(
        &self,
        app: &str,
        image: &str,
        command: &str,
        env: &BTreeMap<String, String>,
        out: &Output,
    ) -> Result<()> {
        out.heading(format!("Running release command: {command}")).await;
        let mut env = env.clone();
        env.insert("PAAS_APP".into(), app.to_owned());
        env.insert("DYNO".into(), "release.1".into());
        let spec = TaskSpec {
            name: format!("release-{app}"),
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
            bail!("the release command exited with status {code}");
        }
        Ok(())
    }

    /// Stops every dyno of an app and forgets its routes (app destroy).
    pub async fn remove_app(&self, app: &str) -> Result<()> {
        let lock = self.inner.locks.get(app);
        let _guard = lock.lock().await;
        self.inner.routes.set(app, Vec::new());
        for dyno in self.inner.runtime.list_dynos(Some(app)).await? {
            self.inner.runtime.stop_dyno(&dyno.container_id, Duration::from_secs(5)).await?;
        }
        Ok(())
    }

    /// One reconcile pass for one app.
    pub async fn reconcile(&self, app: &AppRow) -> Result<Outcome> {
        let lock = self.inner.locks.get(&app.name);
        let _guard = lock.lock().await;
        let inner = &self.inner;
        let release = inner.store.current_release(&app.id).await?;
        let scaled = inner.store.formation(&app.id).await?;
        let actual = inner.runtime.list_dynos(Some(&app.name)).await?;

        let mut keep: Vec<Dyno> = Vec::new();
        let mut to_start: Vec<DynoSpec> = Vec::new();
        if let Some(release) = release.as_ref().filter(|r| r.image.is_some()) {
            let types = release.process_types()?;
            let env = inner.cipher.open(&release.config)?;
            for (ptype, quantity) in desired_formation(&types, &scaled) {
                for index in 1..=quantity {
                    let existing = actual.iter().find(|d| {
                        d.running
                            && d.release_id == release.id
                            && d.process_type == ptype
                            && d.index == index
                            && !keep.iter().any(|k| k.container_id == d.container_id)
                    });
                    match existing {
                        Some(d) => keep.push(d.clone()),
                        None => to_start.push(spec_for(&app.name, release, &ptype, index, &types[&ptype], &env)),
                    }
                }
            }
        }

        let mut outcome = Outcome { release_version: release.as_ref().map(|r| r.version), ..Default::default() };
        let mut started = Vec::new();
        for spec in &to_start {
            match inner.runtime.start_dyno(spec).await {
                Ok(d) => {
                    info!(app = %app.name, dyno = %d.name(), release = d.release_version, "dyno started");
                    outcome.started.push(d.name());
                    started.push(d);
                }
                Err(e) => {
                    warn!(app = %app.name, error = %format!("{e:#}"), "dyno failed to start");
                    outcome.failed_to_start.push(format!("{}.{}: {e:#}", spec.process_type, spec.index));
                }
            }
        }

        // Web dynos get traffic only once they answer. Dynos that were
        // already routed stay routed; new and adopted ones are probed.
        let routed: HashSet<SocketAddr> = inner.routes.get(&app.name).into_iter().collect();
        let mut candidates: Vec<&Dyno> = Vec::new();
        let mut healthy: Vec<SocketAddr> = Vec::new();
        for d in keep.iter().chain(started.iter()).filter(|d| d.process_type == "web") {
            match d.addr {
                Some(addr) if routed.contains(&addr) => healthy.push(addr),
                Some(_) => candidates.push(d),
                None => {}
            }
        }
        let path = release.as_ref().and_then(|r| r.health_path.as_deref());
        let probes =
            candidates.iter().map(|d| wait_healthy(d.addr.expect("filtered above"), path, inner.boot_timeout));
        for (d, ok) in candidates.iter().zip(futures_util::future::join_all(probes).await) {
            if ok {
                healthy.push(d.addr.expect("filtered above"));
            } else {
                warn!(app = %app.name, dyno = %d.name(), "web dyno did not answer on $PORT in time");
                outcome.unhealthy.push(d.name());
            }
        }
        // When web dynos are wanted but none of them answers, the web dynos
        // that served until now keep running and serving, so a release whose
        // web process does not come up causes no downtime. The next passes
        // probe the new dynos again.
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
        healthy.sort();
        outcome.routed = healthy.len();
        inner.routes.set(&app.name, healthy);

        // Only now, with the new dynos serving, do the old ones go.
        let wanted: HashSet<String> =
            keep.iter().chain(started.iter()).chain(held).map(|d| d.container_id.clone()).collect();
        for d in actual.into_iter().filter(|d| !wanted.contains(d.container_id.as_str())) {
            outcome.stopped += 1;
            self.stop_later(d);
        }
        Ok(outcome)
    }

    fn stop_later(&self, dyno: Dyno) {
        let runtime = self.inner.runtime.clone();
        let grace = self.inner.stop_grace;
        tokio::spawn(async move {
            if let Err(e) = runtime.stop_dyno(&dyno.container_id, grace).await {
                warn!(app = %dyno.app, dyno = %dyno.name(), error = %format!("{e:#}"), "cannot stop dyno");
            }
        });
    }

    /// The periodic loop: restarts crashed dynos, adopts what runs after a
    /// server restart, removes orphans.
    pub fn spawn_loop(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.reconcile_all().await {
                    warn!(error = %format!("{e:#}"), "reconcile loop failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

fn spec_for(
    app: &str,
    release: &ReleaseRow,
    ptype: &str,
    index: u32,
    command: &str,
    config: &BTreeMap<String, String>,
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
    }
}

/// Polls until the dyno answers an HTTP request: on `path` with a 2xx or 3xx
/// status when app.json names a health check path, else on `/` with any
/// status. A bare TCP connect is not enough: Docker's port proxy accepts
/// connections before the app listens.
pub async fn wait_healthy(addr: SocketAddr, path: Option<&str>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    while Instant::now() < deadline {
        if probe(addr, path).await.unwrap_or(false) {
            return true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
    false
}

async fn probe(addr: SocketAddr, path: Option<&str>) -> Result<bool> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: paas-health\r\nUser-Agent: paas-health\r\n\r\n",
            path.unwrap_or("/")
        );
        s.write_all(request.as_bytes()).await?;
        // "HTTP/1.1 200": the status code's first digit is byte 9.
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await?;
        let answered = buf.starts_with(b"HTTP/");
        Ok::<bool, std::io::Error>(answered && (path.is_none() || matches!(buf[9], b'2' | b'3')))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt).await.context("probe timed out")?.map_err(Into::into)
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
