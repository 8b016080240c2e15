//! The scheduler's decisions, apart from the clock, the engine and the
//! store: the formation a release wants, the backoff of a crashing slot,
//! the spec of a dyno to start, and [`decide`]: given what is desired, what
//! runs, the slots waiting out a crash and now, which dynos to keep, which
//! slots to start, which dynos to retire and when to look again.

use crate::runtime::{Dyno, DynoSpec, DYNO_PORT};
use crate::store::ReleaseRow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

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

/// The longest wait between restarts of a crashing dyno.
const BACKOFF_CAP: Duration = Duration::from_secs(300);

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
        constraints: Vec::new(),
    }
}

/// What a release wants run: how many dynos of each type, and each type's
/// memory limit in bytes.
#[derive(Debug, Clone)]
pub struct Desired<'a> {
    pub release_id: &'a str,
    pub formation: BTreeMap<String, u32>,
    pub memory: BTreeMap<String, i64>,
}

/// What a pass does about the dynos, before it starts, probes or stops any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Running dynos that fill a wanted slot as they are.
    pub keep: Vec<Dyno>,
    /// Slots (type, index) to start a dyno in now.
    pub start: Vec<(String, u32)>,
    /// Running dynos no slot wants as they are (another release's, another
    /// size's, scaled away): they go once the new ones serve.
    pub retire: Vec<Dyno>,
    /// Every slot the release wants.
    pub wanted: HashSet<(String, u32)>,
    /// When a slot waiting out a crash may start: look again then.
    pub look_again_at: Option<Instant>,
}

/// The decision of a pass. `running`: the app's running dynos (not those
/// being stopped); `waiting`: slots whose dyno crashed, with when each may
/// start again; no `desired` release: everything retires.
pub fn decide(desired: Option<&Desired>, running: &[Dyno], waiting: &HashMap<(String, u32), Instant>, now: Instant) -> Decision {
    let mut keep: Vec<Dyno> = Vec::new();
    let mut start = Vec::new();
    let mut wanted = HashSet::new();
    let mut look_again_at: Option<Instant> = None;
    if let Some(desired) = desired {
        for (ptype, &quantity) in &desired.formation {
            let memory = desired.memory.get(ptype).copied();
            for index in 1..=quantity {
                wanted.insert((ptype.clone(), index));
                // A dyno of the wrong size is replaced, new one first.
                let fits = running.iter().find(|d| {
                    d.release_id == desired.release_id
                        && d.process_type == *ptype
                        && d.index == index
                        && d.memory == memory
                        && !keep.iter().any(|k| k.id == d.id)
                });
                if let Some(d) = fits {
                    keep.push(d.clone());
                    continue;
                }
                match waiting.get(&(ptype.clone(), index)).filter(|at| **at > now) {
                    Some(at) => look_again_at = Some(look_again_at.map_or(*at, |n| n.min(*at))),
                    None => start.push((ptype.clone(), index)),
                }
            }
        }
    }
    let retire = running.iter().filter(|d| !keep.iter().any(|k| k.id == d.id)).cloned().collect();
    Decision { keep, start, retire, wanted, look_again_at }
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

    fn dyno(release: &str, ptype: &str, index: u32, memory: i64, id: &str) -> Dyno {
        Dyno {
            id: id.into(),
            app: "a".into(),
            release_id: release.into(),
            release_version: 1,
            process_type: ptype.into(),
            index,
            running: true,
            state: "running".into(),
            command: String::new(),
            addr: None,
            created: 0,
            memory: Some(memory),
            ip: None,
            node: None,
        }
    }

    fn desired(release: &'static str, formation: &[(&str, u32)]) -> Desired<'static> {
        Desired {
            release_id: release,
            formation: formation.iter().map(|(t, q)| (t.to_string(), *q)).collect(),
            memory: formation.iter().map(|(t, _)| (t.to_string(), 512)).collect(),
        }
    }

    fn ids(dynos: &[Dyno]) -> Vec<&str> {
        dynos.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn dynos_that_fit_are_kept_and_missing_slots_start() {
        let running = [dyno("r2", "web", 1, 512, "w1"), dyno("r2", "worker", 1, 512, "k1")];
        let d = decide(Some(&desired("r2", &[("web", 2), ("worker", 1)])), &running, &HashMap::new(), Instant::now());
        assert_eq!(ids(&d.keep), ["w1", "k1"]);
        assert_eq!(d.start, [("web".to_owned(), 2)]);
        assert!(d.retire.is_empty());
        assert_eq!(d.wanted.len(), 3);
        assert_eq!(d.look_again_at, None);
    }

    #[test]
    fn another_release_another_size_or_a_slot_scaled_away_retires_and_is_replaced() {
        let running = [
            dyno("r1", "web", 1, 512, "old-release"),
            dyno("r2", "worker", 1, 1024, "old-size"),
            dyno("r2", "worker", 2, 512, "scaled-away"),
            dyno("r2", "clock", 1, 512, "type-gone"),
        ];
        let d = decide(Some(&desired("r2", &[("web", 1), ("worker", 1)])), &running, &HashMap::new(), Instant::now());
        assert!(d.keep.is_empty());
        assert_eq!(d.start, [("web".to_owned(), 1), ("worker".to_owned(), 1)]);
        assert_eq!(ids(&d.retire), ["old-release", "old-size", "scaled-away", "type-gone"]);
        // No release wanted (none yet, or the app is going): all retire.
        let d = decide(None, &running, &HashMap::new(), Instant::now());
        assert_eq!((d.keep.len(), d.start.len(), d.retire.len()), (0, 0, 4));
    }

    #[test]
    fn a_slot_waiting_out_its_backoff_is_not_started_and_the_pass_looks_again_then() {
        let now = Instant::now();
        let waiting = HashMap::from([
            (("worker".to_owned(), 1), now + Duration::from_secs(8)),
            (("worker".to_owned(), 2), now + Duration::from_secs(2)),
            // Its wait is over: it starts now.
            (("web".to_owned(), 1), now - Duration::from_secs(1)),
        ]);
        let d = decide(Some(&desired("r", &[("web", 1), ("worker", 2)])), &[], &waiting, now);
        assert_eq!(d.start, [("web".to_owned(), 1)]);
        assert_eq!(d.look_again_at, Some(now + Duration::from_secs(2)));
        // Two dynos in one slot (a pass raced a restart): one is kept.
        let twice = [dyno("r", "web", 1, 512, "a"), dyno("r", "web", 1, 512, "b")];
        let d = decide(Some(&desired("r", &[("web", 1)])), &twice, &HashMap::new(), now);
        assert_eq!((ids(&d.keep), ids(&d.retire)), (vec!["a"], vec!["b"]));
    }
}
