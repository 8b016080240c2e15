//! Metrics people look at: each app's requests, errors and service times
//! from the router (one short lock per request, into the current minute),
//! and each running dyno's memory and CPU from the engine's stats
//! (`sampler.rs`, one call per dyno per `PAAS_METRICS_EVERY_SECONDS`). A day
//! of minutes per app is kept in memory (`series.rs`: fixed-size
//! histograms, so bounded) and written to the store each minute, so a
//! restart keeps them. `prom.rs` writes Prometheus's text format.
//! `PAAS_METRICS=off` makes every call here return at once.

pub mod chart;
pub mod prom;
pub mod sampler;
pub mod series;

use crate::store::Store;
use series::{Histogram, Minute, Series, KEEP_MINUTES};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A running dyno's newest sample.
#[derive(Debug, Clone, PartialEq)]
pub struct DynoNow {
    pub process_type: String,
    /// Bytes in use (the engine's usage less inactive file cache, as
    /// `docker stats` counts).
    pub memory: u64,
    /// Its limit, in bytes.
    pub limit: u64,
    /// Percent of one core since the sample before; None on the first.
    pub cpu: Option<f64>,
    /// When, in Unix seconds.
    pub at: i64,
}

/// Counters since the server started, for Prometheus (which wants them
/// never to go down).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Responses by status class: 1xx .. 5xx.
    pub by_class: [u64; 5],
    pub service: Histogram,
    pub service_ms_sum: u64,
}

#[derive(Default)]
struct AppMetrics {
    series: Series,
    totals: Totals,
    /// By dyno name.
    dynos: BTreeMap<String, DynoNow>,
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    on: bool,
    apps: Mutex<crate::FastMap<String, AppMetrics>>,
    /// Minutes from this one on have changed since the last flush.
    unflushed_from: Mutex<i64>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Metrics {
    pub fn new(on: bool) -> Self {
        Self { inner: Arc::new(Inner { on, apps: Mutex::default(), unflushed_from: Mutex::new(0) }) }
    }

    pub fn on(&self) -> bool {
        self.inner.on
    }

    fn with_app<T>(&self, app: &str, f: impl FnOnce(&mut AppMetrics) -> T) -> T {
        let mut apps = self.inner.apps.lock().expect("metrics poisoned");
        match apps.get_mut(app) {
            Some(a) => f(a),
            None => f(apps.entry(app.to_owned()).or_default()),
        }
    }

    /// One request the router answered for a known app.
    pub fn request(&self, app: &str, status: u16, service_ms: u64) {
        if !self.inner.on {
            return;
        }
        let now = unix_now();
        self.with_app(app, |a| {
            a.series.request(now, status, service_ms);
            let class = usize::from(status / 100).clamp(1, 5) - 1;
            a.totals.by_class[class] += 1;
            a.totals.service.add(service_ms);
            a.totals.service_ms_sum += service_ms;
        });
    }

    /// A dyno's sample from the engine.
    pub fn dyno_sample(&self, app: &str, dyno: &str, now: DynoNow) {
        if !self.inner.on {
            return;
        }
        self.with_app(app, |a| {
            a.series.sample(now.at, &now.process_type, now.memory, now.limit, now.cpu);
            a.dynos.insert(dyno.to_owned(), now);
        });
    }

    /// Forgets the newest samples of dynos that no longer run: `running`
    /// holds (app, dyno name) of every running dyno.
    pub fn keep_dynos(&self, running: &std::collections::HashSet<(String, String)>) {
        let mut apps = self.inner.apps.lock().expect("metrics poisoned");
        for (app, a) in apps.iter_mut() {
            a.dynos.retain(|name, _| running.contains(&(app.clone(), name.clone())));
        }
    }

    /// The newest sample of each of the app's running dynos, by name.
    pub fn dynos(&self, app: &str) -> BTreeMap<String, DynoNow> {
        self.inner.apps.lock().expect("metrics poisoned").get(app).map(|a| a.dynos.clone()).unwrap_or_default()
    }

    /// The app's minutes from `since` (Unix seconds) on.
    pub fn minutes(&self, app: &str, since: i64) -> Vec<Minute> {
        self.inner.apps.lock().expect("metrics poisoned").get(app).map(|a| a.series.since(since)).unwrap_or_default()
    }

    /// Every app's counters and dynos, by app name, for `/metrics`.
    pub fn everything(&self) -> BTreeMap<String, (Totals, BTreeMap<String, DynoNow>)> {
        let apps = self.inner.apps.lock().expect("metrics poisoned");
        apps.iter().map(|(name, a)| (name.clone(), (a.totals.clone(), a.dynos.clone()))).collect()
    }

    pub fn rename_app(&self, old: &str, new: &str) {
        let mut apps = self.inner.apps.lock().expect("metrics poisoned");
        if let Some(a) = apps.remove(old) {
            apps.insert(new.to_owned(), a);
        }
    }

    pub fn remove_app(&self, app: &str) {
        self.inner.apps.lock().expect("metrics poisoned").remove(app);
    }

    /// Reads the last day's minutes back from the store (at start).
    pub async fn load(&self, store: &Store) -> anyhow::Result<()> {
        if !self.inner.on {
            return Ok(());
        }
        let rows = store.metric_minutes_since(unix_now() - KEEP_MINUTES * 60).await?;
        let mut by_app: HashMap<String, Vec<Minute>> = HashMap::new();
        for (app, at, data) in rows {
            match serde_json::from_str::<Minute>(&data) {
                Ok(m) if m.at == at => by_app.entry(app).or_default().push(m),
                _ => tracing::warn!(app, at, "a stored metrics minute is damaged; left out"),
            }
        }
        let mut apps = self.inner.apps.lock().expect("metrics poisoned");
        for (app, minutes) in by_app {
            apps.entry(app).or_default().series.restore(minutes);
        }
        Ok(())
    }

    /// Writes the minutes that changed since the last flush, and removes
    /// stored ones older than a day.
    pub async fn flush(&self, store: &Store) -> anyhow::Result<()> {
        if !self.inner.on {
            return Ok(());
        }
        let now = unix_now();
        let from = *self.inner.unflushed_from.lock().expect("metrics poisoned");
        let changed: Vec<(String, Vec<(i64, String)>)> = {
            let apps = self.inner.apps.lock().expect("metrics poisoned");
            apps.iter()
                .map(|(name, a)| {
                    let minutes = a.series.since(from).into_iter().map(|m| (m.at, serde_json::to_string(&m).unwrap_or_default())).collect();
                    (name.clone(), minutes)
                })
                .filter(|(_, m): &(String, Vec<_>)| !m.is_empty())
                .collect()
        };
        if !changed.is_empty() {
            let ids: HashMap<String, String> = store.list_apps().await?.into_iter().map(|a| (a.name, a.id)).collect();
            for (app, minutes) in changed {
                if let Some(id) = ids.get(&app) {
                    store.save_metric_minutes(id, &minutes).await?;
                }
            }
        }
        *self.inner.unflushed_from.lock().expect("metrics poisoned") = series::minute_of(now);
        store.prune_metric_minutes(now - KEEP_MINUTES * 60).await?;
        Ok(())
    }

    /// Flushes every minute; `Running::stop` aborts it and flushes once
    /// more.
    pub fn spawn_flusher(&self, store: Store) -> tokio::task::JoinHandle<()> {
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = metrics.flush(&store).await {
                    tracing::warn!(error = %format!("{e:#}"), "cannot write metrics to the store; they are kept in memory and tried again next minute");
                }
            }
        })
    }
}
