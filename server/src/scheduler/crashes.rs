//! Crash records: per dyno slot (app, type, index) and release, how many
//! times in a row it exited, how, and when it may start again; forgotten
//! when the slot is gone, the release changes, or the dyno has run long
//! enough. What the user reads of a crash goes to the log from here.

use super::decide::backoff;
use super::Scheduler;
use crate::runtime::{Dyno, Exit};
use crate::store::{AppRow, ReleaseRow};
use paas_wire::DynoSize;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

impl Scheduler {
    /// The log's word on a dyno that exited by itself, as Heroku's.
    pub(super) fn crash_events(&self, d: &Dyno, exit: &Exit) {
        let (app, name) = (&d.app, d.name());
        if exit.oom_killed {
            let limit = d.memory.map_or_else(|| "its limit".to_owned(), |m| DynoSize::from_bytes(m).to_string());
            self.inner.logs.event(app, &name, format!("Error R15 (Memory quota vastly exceeded): killed for using more than {limit}"));
        }
        self.inner.logs.event(app, &name, format!("Process {exit}"));
        self.inner.logs.event(app, &name, "State changed from up to crashed");
    }

    /// Counts a crash of the dyno's slot (once per container); false when
    /// this container's crash was counted already.
    pub(super) fn record_crash(&self, d: &Dyno, exit: Exit) -> bool {
        let slot = (d.app.clone(), d.process_type.clone(), d.index);
        let mut crashes = self.inner.crashes.lock().expect("crashes poisoned");
        let fresh = || Crash {
            release_id: d.release_id.clone(),
            count: 0,
            exit: Exit::default(),
            dyno: Default::default(),
            at: SystemTime::now(),
            next_at: Instant::now(),
        };
        let crash = crashes.entry(slot).or_insert_with(fresh);
        if crash.release_id != d.release_id {
            *crash = fresh();
        }
        if crash.dyno == d.id {
            return false;
        }
        crash.count += 1;
        crash.exit = exit;
        crash.dyno = d.id.clone();
        crash.at = SystemTime::now();
        crash.next_at = Instant::now() + backoff(crash.count);
        true
    }

    /// The slots of `release_id` whose dyno crashed, with when each may
    /// start again (what [`super::decide`] takes).
    pub(super) fn waiting_slots(&self, app: &AppRow, release_id: &str) -> HashMap<(String, u32), Instant> {
        let crashes = self.inner.crashes.lock().expect("crashes poisoned");
        crashes
            .iter()
            .filter(|(slot, c)| slot.0 == app.name && c.release_id == release_id)
            .map(|(slot, c)| ((slot.1.clone(), slot.2), c.next_at))
            .collect()
    }

    /// Forgets the crashes of slots of other releases, of slots no longer
    /// wanted (scaled down), and of dynos that have run long enough to count
    /// as healthy again.
    pub(super) fn forget_crashes(&self, app: &AppRow, release: Option<&ReleaseRow>, running: &[Dyno], wanted: &HashSet<(String, u32)>) {
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
}

/// A dyno slot's crash history within one release.
#[derive(Debug, Clone)]
pub struct Crash {
    pub release_id: String,
    /// Crashes so far; the restart after the first is immediate.
    pub count: u32,
    pub exit: Exit,
    /// The dyno whose exit was counted last: each counts once.
    pub dyno: crate::runtime::DynoId,
    pub at: SystemTime,
    /// No restart before this.
    pub next_at: Instant,
}

/// A dyno that has run this long resets its crash count.
const RESET_AFTER: Duration = Duration::from_secs(120);
