//! Each running dyno's memory and CPU, sampled from the engine's stats every
//! `PAAS_METRICS_EVERY_SECONDS` (one call per dyno, `one-shot`, so the
//! engine does not wait a second for a second reading); CPU is the time it
//! used between two samples. A dyno at its memory limit is Heroku's R14, a
//! platform event in the app's log at each sample while it lasts.

use super::{DynoNow, Metrics};
use crate::logs::LogRouter;
use crate::runtime::{DynoId, DynoStats, Runtime};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Dynos sampled per round at most (engine calls per round).
pub const PER_ROUND: usize = 200;

/// Charged memory at this share of the limit or above is "at the limit":
/// the kernel is taking memory back from the dyno.
pub const AT_LIMIT: f64 = 0.97;

/// What a sample says of memory: R14's text when the dyno is at its limit:
/// what it holds (file cache included) is at [`AT_LIMIT`] of it, or the
/// kernel refused it memory at the limit since the sample before. With no
/// swap a dyno's own memory never passes its limit (R15 kills it there),
/// so this is Heroku's "over its quota" here.
pub fn r14(name: &str, now: &DynoStats, before: Option<&DynoStats>, limit: u64) -> Option<String> {
    if limit == 0 {
        return None;
    }
    let refused = match (now.failcnt, before.and_then(|b| b.failcnt)) {
        (Some(n), Some(b)) => n > b,
        _ => false,
    };
    let charged = now.charged.max(now.memory);
    let full = charged as f64 >= limit as f64 * AT_LIMIT;
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    (full || refused).then(|| {
        format!(
            "Error R14 (Memory quota exceeded): {name} is at its {:.0}M limit (mem={:.0}M({:.1}%) in use, {:.0}M with file cache); the kernel is taking memory back: give it a larger size (`paas ps:resize`) or use less",
            mib(limit),
            mib(now.memory),
            now.memory as f64 * 100.0 / limit as f64,
            mib(charged),
        )
    })
}

/// Percent of one core used between two samples.
pub fn cpu_percent(now: u64, before: u64, elapsed: Duration) -> Option<f64> {
    let wall = elapsed.as_nanos() as f64;
    (wall > 0.0 && now >= before).then(|| (now - before) as f64 * 100.0 / wall)
}

/// Samples every running dyno every `every`.
pub fn spawn(runtime: Arc<dyn Runtime>, metrics: Metrics, logs: LogRouter, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: HashMap<DynoId, (DynoStats, Instant)> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(dynos) = runtime.list_dynos(None).await else { continue };
            let running: Vec<_> = dynos.into_iter().filter(|d| d.running).collect();
            last.retain(|id, _| running.iter().any(|d| &d.id == id));
            metrics.keep_dynos(&running.iter().map(|d| (d.app.clone(), d.name())).collect::<HashSet<_>>());
            for d in running.iter().take(PER_ROUND) {
                let Ok(Some(stats)) = runtime.stats(&d.id).await else { continue };
                let at = Instant::now();
                let before = last.get(&d.id);
                let limit = d.memory.and_then(|m| u64::try_from(m).ok()).unwrap_or(stats.limit);
                let cpu = before.and_then(|(b, t)| cpu_percent(stats.cpu_ns, b.cpu_ns, at - *t));
                if let Some(text) = r14(&d.name(), &stats, before.map(|(b, _)| b), limit) {
                    logs.event(&d.app, &d.name(), text);
                }
                let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_secs() as i64);
                metrics.dyno_sample(&d.app, &d.name(), DynoNow { process_type: d.process_type.clone(), memory: stats.memory, limit, cpu, at: unix });
                last.insert(d.id.clone(), (stats, at));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(memory: u64, failcnt: Option<u64>) -> DynoStats {
        DynoStats { memory, charged: memory, limit: 0, cpu_ns: 0, failcnt }
    }

    #[test]
    fn r14_is_told_at_the_limit_or_when_the_kernel_reclaimed_there() {
        let limit = 64 << 20;
        assert_eq!(r14("web.1", &s(32 << 20, Some(0)), None, limit), None);
        let full = r14("web.1", &s(64 << 20, None), None, limit).unwrap();
        assert!(full.starts_with("Error R14 (Memory quota exceeded): web.1 is at its 64M limit (mem=64M(100.0%) in use"), "{full}");
        let cache = DynoStats { memory: 3 << 20, charged: 63 << 20, limit, cpu_ns: 0, failcnt: None };
        let cached = r14("worker.1", &cache, None, limit).unwrap();
        assert!(cached.contains("mem=3M(4.7%) in use, 63M with file cache"), "{cached}");
        let refused = r14("web.1", &s(40 << 20, Some(9)), Some(&s(40 << 20, Some(3))), limit).unwrap();
        assert!(refused.contains("taking memory back"), "{refused}");
        assert_eq!(r14("web.1", &s(40 << 20, Some(9)), Some(&s(40 << 20, Some(9))), limit), None);
        assert_eq!(r14("web.1", &s(40 << 20, None), None, 0), None, "no limit, no quota");
    }

    #[test]
    fn cpu_is_the_time_used_between_samples() {
        assert_eq!(cpu_percent(1_500_000_000, 1_000_000_000, Duration::from_secs(1)), Some(50.0));
        assert_eq!(cpu_percent(5, 10, Duration::from_secs(1)), None, "a restarted counter says nothing");
    }
}
