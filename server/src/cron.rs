//! The cron service: app.json `cron` entries of each app's current release,
//! run on their schedules (UTC) as one-off dynos named `scheduler.N`
//! (from `scheduler.1001`).
//!
//! One loop for the platform: it keeps, per entry, the next time it is due,
//! sleeps until the earliest (or [`RELOAD_EVERY`], to see new releases),
//! and fires what is due. An entry it first sees (a new release, a server
//! start) is due next at its next occurrence after now, so runs missed
//! while the server was down are not replayed. A run is a detached one-off
//! dyno of the release current when it fired: its output goes to the app's
//! log like any detached run, and its end, heard from the one-off service,
//! is recorded in `cron_runs`. An entry whose last run still goes when the
//! next is due is skipped, and the log and `paas cron` say so, unless it
//! says `"concurrency": "allow"`.
//!
//! It must not reach the runtime but through the one-off service.

use crate::appjson::{self, Concurrency, CronEntry};
use crate::logs::LogRouter;
use crate::oneoff::OneOffs;
use crate::release::{ReleaseError, ReleaseResult};
use crate::store::{AppRow, CronRunRow, NewCronRun, Store};
use chrono::{DateTime, Utc};
use paas_wire::{CronJob, CronRun, ErrorId, RunCreate};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// The process type of cron runs: they are named `scheduler.N`, as on
/// Heroku's Scheduler, numbered above [`CRON_NUMBERED_AFTER`] so no
/// formation dyno of a Procfile's own `scheduler` type has their name.
pub const CRON_TYPE: &str = "scheduler";
pub const CRON_NUMBERED_AFTER: u32 = 1000;
/// How often the loop reads the apps' releases when nothing is due sooner.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// An entry as the loop keys it: app, entry id and schedule (a new
/// schedule under the same id starts afresh).
type Key = (String, String, String);

#[derive(Clone)]
pub struct CronService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    one_offs: OneOffs,
    logs: LogRouter,
    /// When each entry is next due.
    next: Mutex<HashMap<Key, DateTime<Utc>>>,
    /// Per app: deciding whether to run, starting the dyno and recording
    /// the run happen under its lock, so two runs of an entry never both
    /// pass the concurrency check and an end is never taken before its run
    /// is recorded.
    firing: crate::locks::KeyedLocks,
}

/// What one look at the clock decides: the entries to fire now, and when
/// to look again.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub fire: Vec<Key>,
    pub wake: DateTime<Utc>,
}

/// The decision, apart from the clock and the store: given the entries
/// there are (with their parsed schedules) and when each was next due,
/// updates `next` (new entries: their next occurrence after `now`; fired
/// ones: their next after `now`; gone ones: forgotten) and says which fire.
pub fn plan(entries: &[(Key, croner::Cron)], next: &mut HashMap<Key, DateTime<Utc>>, now: DateTime<Utc>) -> Plan {
    let after = |cron: &croner::Cron| cron.find_next_occurrence(&now, false).ok();
    next.retain(|k, _| entries.iter().any(|(e, _)| e == k));
    let mut fire = Vec::new();
    for (key, cron) in entries {
        match next.get(key) {
            Some(due) if *due <= now => {
                fire.push(key.clone());
                match after(cron) {
                    Some(t) => next.insert(key.clone(), t),
                    None => next.remove(key),
                };
            }
            Some(_) => {}
            None => {
                if let Some(t) = after(cron) {
                    next.insert(key.clone(), t);
                }
            }
        }
    }
    let reload = now + chrono::Duration::from_std(RELOAD_EVERY).expect("a few seconds");
    let wake = next.values().copied().min().map_or(reload, |t| t.min(reload));
    Plan { fire, wake }
}

impl CronService {
    pub fn new(store: Store, one_offs: OneOffs, logs: LogRouter) -> Self {
        Self { inner: Arc::new(Inner { store, one_offs, logs, next: Mutex::default(), firing: crate::locks::KeyedLocks::default() }) }
    }

    /// Starts the loop and the recorder of runs' ends.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let recorder = self.clone();
        let mut ended = self.inner.one_offs.subscribe_ended();
        let this = self.clone();
        tokio::spawn(async move {
            let record = tokio::spawn(async move {
                loop {
                    match ended.recv().await {
                        Ok(e) => recorder.record_end(&e.app, &e.container_id, &e.exit).await,
                        // Ends missed are found at the entry's next run.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    }
                }
            });
            // The recorder goes with the loop.
            let _record = tokio_util::task::AbortOnDropHandle::new(record);
            loop {
                let wake = match this.tick().await {
                    Ok(wake) => wake,
                    Err(e) => {
                        warn!(error = %format!("{e:#}"), "cron pass failed");
                        Utc::now() + chrono::Duration::from_std(RELOAD_EVERY).expect("a few seconds")
                    }
                };
                let wait = (wake - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// One look: reads every app's current cron entries, fires the due
    /// ones, and says when to look again.
    async fn tick(&self) -> anyhow::Result<DateTime<Utc>> {
        let store = &self.inner.store;
        let mut entries = Vec::new();
        let mut by_key: HashMap<Key, (AppRow, CronEntry)> = HashMap::new();
        for app in store.list_apps().await? {
            let Some(release) = store.desired_release(&app.id).await? else { continue };
            for entry in appjson::Tasks::from_json(release.tasks.as_deref()).cron {
                let Ok(cron) = appjson::parse_schedule(&entry.schedule) else { continue };
                let key = (app.id.clone(), entry.id.clone(), entry.schedule.clone());
                entries.push((key.clone(), cron));
                by_key.insert(key, (app.clone(), entry));
            }
        }
        let plan = plan(&entries, &mut self.inner.next.lock().expect("cron poisoned"), Utc::now());
        for key in plan.fire {
            let Some((app, entry)) = by_key.remove(&key) else { continue };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.fire(&app, &entry, false).await {
                    warn!(app = %app.name, entry = %entry.id, error = %format!("{e:#}"), "cron run did not start");
                    this.inner.logs.event(&app.name, CRON_TYPE, format!("Cron entry {} did not start: {e}", entry.id));
                }
            });
        }
        Ok(plan.wake)
    }

    /// Runs an entry now (on its schedule, or `manual` by `paas cron:run`):
    /// skipped (or, by hand, refused) when its last run still goes and it
    /// forbids overlap. The run recorded.
    pub async fn fire(&self, app: &AppRow, entry: &CronEntry, manual: bool) -> ReleaseResult<CronRunRow> {
        let inner = &self.inner;
        let lock = inner.firing.get(&app.name);
        let _firing = lock.lock().await;
        let store = &inner.store;
        if entry.concurrency == Concurrency::Forbid {
            if let Some(still) = self.still_running(app, &entry.id).await? {
                let dyno = still.dyno.clone().unwrap_or_default();
                let why = format!("its last run, {dyno} (started {}), still runs", still.started_at);
                if manual {
                    return Err(ReleaseError::Invalid(
                        ErrorId::CronRunning,
                        format!("cron entry {} was not run: {why}; wait for it, or stop it with `paas ps:stop {dyno} -a {}`", entry.id, app.name),
                    ));
                }
                inner.logs.event(&app.name, CRON_TYPE, format!("Skipping cron entry {} (`{}`): {why}", entry.id, entry.command));
                let version = still.release_version;
                let run = NewCronRun {
                    app_id: &app.id,
                    entry_id: &entry.id,
                    release_version: version,
                    manual,
                    outcome: "skipped",
                    dyno: None,
                    container_id: None,
                    detail: Some(&why),
                };
                return Ok(store.add_cron_run(&run).await?);
            }
        }
        let req = RunCreate { command: entry.command.clone(), ..Default::default() };
        let prepared = inner.one_offs.prepare_as(app, &req, false, CRON_TYPE, CRON_NUMBERED_AFTER).await?;
        let started = inner.one_offs.start(prepared, false).await?;
        let dyno = &started.one_off.dyno;
        let how = if manual { "by hand (`paas cron:run`)" } else { "on its schedule" };
        info!(app = %app.name, entry = %entry.id, dyno = %dyno.name(), how, "cron run started");
        inner.logs.event(
            &app.name,
            CRON_TYPE,
            format!("Running cron entry {} ({}) {how} as {}: `{}`", entry.id, entry.schedule, dyno.name(), entry.command),
        );
        let run = NewCronRun {
            app_id: &app.id,
            entry_id: &entry.id,
            release_version: dyno.release_version,
            manual,
            outcome: "running",
            dyno: Some(&dyno.name()),
            container_id: Some(dyno.id.as_str()),
            detail: None,
        };
        Ok(store.add_cron_run(&run).await?)
    }

    /// The entry's run that still goes, if one does. A run recorded as
    /// running whose dyno is gone ended unheard (the server was down):
    /// it is recorded as ended, exit unknown.
    async fn still_running(&self, app: &AppRow, entry_id: &str) -> anyhow::Result<Option<CronRunRow>> {
        let recorded: Vec<CronRunRow> =
            self.inner.store.running_cron_runs(&app.id).await?.into_iter().filter(|r| r.entry_id == entry_id).collect();
        if recorded.is_empty() {
            return Ok(None);
        }
        let live = self.inner.one_offs.list(app).await?;
        let mut still = None;
        for run in recorded {
            let id = run.container_id.clone().unwrap_or_default();
            if live.iter().any(|o| o.dyno.id.as_str() == id) {
                still = Some(run);
            } else {
                self.inner.store.finish_cron_run(&id, None, Some("it ended while the server was not watching")).await?;
            }
        }
        Ok(still)
    }

    /// A one-off dyno ended: if it was a cron run, its end is recorded.
    async fn record_end(&self, app: &str, container_id: &str, exit: &crate::runtime::Exit) {
        let detail = (exit.oom_killed || exit.error.is_some() || exit.exit_code.is_none()).then(|| exit.to_string());
        let finish = || self.inner.store.finish_cron_run(container_id, exit.exit_code, detail.as_deref());
        let recorded = match finish().await {
            // Not recorded yet, if it is a cron run that ended at once:
            // once the run that started it is recorded, try again.
            Ok(false) => {
                let lock = self.inner.firing.get(app);
                let _firing = lock.lock().await;
                finish().await
            }
            other => other,
        };
        if let Err(e) = recorded {
            warn!(container = container_id, error = %e, "cannot record how a cron run ended");
        }
    }

    /// The app's cron entries (of its current release), each with when it
    /// is next due and how its last run went.
    pub async fn list(&self, app: &AppRow) -> anyhow::Result<Vec<CronJob>> {
        let store = &self.inner.store;
        let Some(release) = store.desired_release(&app.id).await? else { return Ok(Vec::new()) };
        let last = store.last_cron_runs(&app.id).await?;
        let now = Utc::now();
        let jobs = appjson::Tasks::from_json(release.tasks.as_deref()).cron.into_iter().map(|e| {
            let key = (app.id.clone(), e.id.clone(), e.schedule.clone());
            let known = self.inner.next.lock().expect("cron poisoned").get(&key).copied();
            let next = known.or_else(|| appjson::parse_schedule(&e.schedule).ok()?.find_next_occurrence(&now, false).ok());
            CronJob {
                last_run: last.iter().find(|r| r.entry_id == e.id).map(run_to_wire),
                next_run_at: next.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                concurrency: e.concurrency.as_str().to_owned(),
                id: e.id,
                schedule: e.schedule,
                command: e.command,
            }
        });
        Ok(jobs.collect())
    }

    /// `paas cron:run ID`: the entry of the current release, run now.
    pub async fn run_now(&self, app: &AppRow, id: &str) -> ReleaseResult<CronRun> {
        let release = self.inner.store.desired_release(&app.id).await?;
        let tasks = appjson::Tasks::from_json(release.as_ref().and_then(|r| r.tasks.as_deref()));
        let entry = tasks.cron_entry(id).ok_or_else(|| {
            let ids: Vec<&str> = tasks.cron.iter().map(|e| e.id.as_str()).collect();
            ReleaseError::NotFound(if ids.is_empty() {
                format!("{} has no cron entries: add a \"cron\" list to its app.json and push", app.name)
            } else {
                format!("{} has no cron entry {id:?}: its entries are {} (see `paas cron -a {}`)", app.name, ids.join(", "), app.name)
            })
        })?;
        Ok(run_to_wire(&self.fire(app, entry, true).await?))
    }
}

pub fn run_to_wire(r: &CronRunRow) -> CronRun {
    let at = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc));
    let duration_ms = match (at(&r.started_at), r.finished_at.as_deref().and_then(at)) {
        (Some(s), Some(f)) if r.outcome == "finished" => Some((f - s).num_milliseconds().max(0)),
        _ => None,
    };
    CronRun {
        entry_id: r.entry_id.clone(),
        outcome: r.outcome.clone(),
        manual: r.manual != 0,
        release_version: r.release_version,
        dyno: r.dyno.clone(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        exit_code: r.exit_code,
        duration_ms,
        detail: r.detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn entry(app: &str, id: &str, schedule: &str) -> (Key, croner::Cron) {
        ((app.into(), id.into(), schedule.into()), appjson::parse_schedule(schedule).unwrap())
    }

    #[test]
    fn a_new_entry_waits_for_its_next_occurrence_and_missed_runs_are_not_replayed() {
        let entries = [entry("a", "every", "* * * * *"), entry("a", "hourly", "0 * * * *")];
        let mut next = HashMap::new();
        // First seen at 12:00:30: nothing fires, even though 12:00 matched.
        let p = plan(&entries, &mut next, at("2026-12-06T12:00:30Z"));
        assert!(p.fire.is_empty());
        assert_eq!(next[&entries[0].0], at("2026-12-06T12:01:00Z"));
        assert_eq!(next[&entries[1].0], at("2026-12-06T13:00:00Z"));
        // It wakes at the earliest due time, or to reload sooner.
        assert_eq!(p.wake, at("2026-12-06T12:00:35Z"));
        let p = plan(&entries, &mut next, at("2026-12-06T12:00:58Z"));
        assert_eq!(p.wake, at("2026-12-06T12:01:00Z"));
        // Due: it fires once, and is due again a minute on.
        let p = plan(&entries, &mut next, at("2026-12-06T12:01:00.004Z"));
        assert_eq!(p.fire, vec![entries[0].0.clone()]);
        assert_eq!(next[&entries[0].0], at("2026-12-06T12:02:00Z"));
        assert!(plan(&entries, &mut next, at("2026-12-06T12:01:00.9Z")).fire.is_empty());
        // Three hours pass unseen (the server was down): one run, not
        // one per missed minute or hour, and the next is after now.
        let p = plan(&entries, &mut next, at("2026-12-06T15:20:10Z"));
        assert_eq!(p.fire.len(), 2);
        assert_eq!(next[&entries[0].0], at("2026-12-06T15:21:00Z"));
        assert_eq!(next[&entries[1].0], at("2026-12-06T16:00:00Z"));
    }

    #[test]
    fn a_server_start_replays_nothing_and_gone_or_changed_entries_are_forgotten() {
        let mut next = HashMap::new();
        let old = [entry("a", "x", "*/5 * * * *")];
        plan(&old, &mut next, at("2026-12-06T12:01:00Z"));
        assert_eq!(next.len(), 1);
        // The same id with a new schedule: a new entry, due at its own next.
        let new = [entry("a", "x", "30 3 * * *")];
        let p = plan(&new, &mut next, at("2026-12-06T12:05:00Z"));
        assert!(p.fire.is_empty(), "the old schedule's 12:05 must not fire");
        assert_eq!(next.len(), 1);
        assert_eq!(next[&new[0].0], at("2026-12-07T03:30:00Z"));
        // No entries: nothing kept, and it looks again to reload.
        let p = plan(&[], &mut next, at("2026-12-06T12:06:00Z"));
        assert!(next.is_empty());
        assert_eq!(p.wake, at("2026-12-06T12:06:05Z"));
    }
}
