//! `paas ps` as the scheduler sees it: each running dyno's state (starting,
//! up, stopping), and slots whose dyno crashed and waits to restart.

use super::{Crash, Scheduler, Slot};
use crate::runtime::Dyno;
use crate::store::AppRow;
use anyhow::Result;
use std::collections::HashSet;
use crate::runtime::Endpoint;
use std::time::{Duration, Instant, SystemTime};

impl Scheduler {
    /// The app's dynos as `paas ps` shows them: running ones, and slots
    /// whose dyno crashed and waits to restart.
    pub async fn ps(&self, app: &AppRow) -> Result<Vec<DynoView>> {
        let dynos = self.inner.runtime.list_dynos(Some(&app.name)).await?;
        let routed: HashSet<Endpoint> = self.inner.routes.get(&app.name).into_iter().collect();
        let crashes: Vec<(Slot, Crash)> = {
            let crashes = self.inner.crashes.lock().expect("crashes poisoned");
            crashes.iter().filter(|(s, _)| s.0 == app.name).map(|(s, c)| (s.clone(), c.clone())).collect()
        };
        let crash_for = |d: &Dyno| crashes.iter().find(|(s, c)| s.1 == d.process_type && s.2 == d.index && c.release_id == d.release_id);
        let mut views = Vec::new();
        for d in dynos.iter().filter(|d| d.running) {
            let crash = crash_for(d).map(|(_, c)| c);
            let stopping = self.inner.stopping.lock().expect("stopping poisoned").contains(&d.id);
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
                container_id: d.id.short(),
                node: d.node.clone(),
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
                node: None,
            });
        }
        Ok(views)
    }
}

impl Scheduler {
    /// Restarts after crashes of each dyno that crashed, by (app, dyno
    /// name), for `/metrics`.
    pub fn restarts(&self) -> std::collections::BTreeMap<(String, String), u32> {
        let crashes = self.inner.crashes.lock().expect("crashes poisoned");
        crashes.iter().map(|(s, c)| ((s.0.clone(), format!("{}.{}", s.1, s.2)), c.count)).collect()
    }
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
    /// The swarm node it runs on.
    pub node: Option<String>,
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
