//! Dynos' own disks, sampled: a dyno whose writable layer grows keeps
//! state on local disk (VI) or logs to files (XI, when the growing files
//! are logs and it prints little to stdout); a PID file says it manages
//! its own process (VI). One engine call per running dyno per sample (its
//! layer's size); the files are read from the layer's directory on this
//! host, never through the engine.

use super::{Factor, Finding, Observer};
use crate::logs::{Filter, LogRouter, Source};
use crate::runtime::{DiskUse, Dyno, DynoId, Runtime};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Growth of a dyno's disk since its first sample that is a finding.
pub const GROWTH_BYTES: i64 = 8 << 20;
/// Dynos sampled per round at most (engine calls per round).
pub const PER_ROUND: usize = 50;
/// Files looked at in a layer at most.
const WALK_FILES: usize = 5_000;

/// A file a dyno wrote, relative to its filesystem's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: String,
    pub bytes: u64,
}

/// The files in a writable layer (whiteouts and directories left out),
/// largest first; at most [`WALK_FILES`] looked at.
pub fn walk(dir: &Path) -> Vec<Written> {
    let mut out: Vec<Written> = crate::du::files(dir, WALK_FILES)
        .into_iter()
        .map(|(path, bytes)| Written { path: path.strip_prefix(dir).map(|p| format!("/{}", p.display())).unwrap_or_default(), bytes })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    out
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn is_log(path: &str) -> bool {
    path.ends_with(".log") || path.contains("/log/") || path.contains("/logs/") || path.ends_with(".log.1")
}

/// What a dyno's disk says: `grown` bytes since its first sample, the
/// files in its layer, and how many lines it printed to stdout.
pub fn judge(dyno: &Dyno, grown: i64, files: &[Written], printed: usize) -> Vec<Finding> {
    let name = dyno.name();
    let mut out = Vec::new();
    if let Some(pid) = files.iter().find(|f| f.path.ends_with(".pid")) {
        out.push(Finding::bad(
            Factor::Processes,
            "pidfile",
            &dyno.process_type,
            format!("{name} wrote a PID file, {}: it manages its own process", pid.path),
            "run in the foreground and leave starting, stopping and restarting it to the platform",
        ));
    }
    if grown < GROWTH_BYTES {
        out.push(Finding::good(Factor::Processes, "disk", &dyno.process_type, format!("{name}'s disk grew by {} since it started", mib(grown.max(0)))));
        return out;
    }
    let logs: Vec<&Written> = files.iter().filter(|f| is_log(&f.path)).take(3).collect();
    let log_bytes: u64 = logs.iter().map(|f| f.bytes).sum();
    if !logs.is_empty() && log_bytes as i64 * 2 >= grown {
        let shown: Vec<String> = logs.iter().map(|f| format!("{} ({})", f.path, mib(f.bytes as i64))).collect();
        out.push(Finding::bad(
            Factor::Logs,
            "logfile",
            &dyno.process_type,
            format!("{name} writes its log to {} on its own disk, and printed {printed} lines to stdout", shown.join(", ")),
            "write the log to stdout: the platform keeps it (`paas logs`) and sends it on (drains); the dyno's disk is gone at its next restart",
        ));
    } else {
        let shown: Vec<String> = files.iter().take(3).map(|f| format!("{} ({})", f.path, mib(f.bytes as i64))).collect();
        let paths = if shown.is_empty() { String::new() } else { format!(": {}", shown.join(", ")) };
        out.push(Finding::bad(
            Factor::Processes,
            "disk",
            &dyno.process_type,
            format!("{name} keeps state on its own disk, grown by {} since it started{paths}", mib(grown)),
            "keep state in a backing service (a database, object storage): a dyno's disk is gone at its next restart, and other dynos never see it",
        ));
    }
    out
}

/// Samples every running dyno's disk every `every`.
pub fn spawn(runtime: Arc<dyn Runtime>, observer: Observer, logs: LogRouter, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Each container's first sample, and whether it was told already.
        let mut first: HashMap<DynoId, (i64, bool)> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(dynos) = runtime.list_dynos(None).await else { continue };
            let running: Vec<&Dyno> = dynos.iter().filter(|d| d.running).collect();
            first.retain(|id, _| running.iter().any(|d| &d.id == id));
            for d in running.into_iter().take(PER_ROUND) {
                let Ok(Some(DiskUse { bytes, dir })) = runtime.disk_use(&d.id).await else { continue };
                let (base, told) = *first.entry(d.id.clone()).or_insert((bytes, false));
                let grown = bytes - base;
                // Once a finding was told for this container, it is not
                // looked at again; the first sample only sets the base.
                if told || (grown == 0 && dir.is_none()) {
                    continue;
                }
                let files = match dir {
                    Some(dir) => tokio::task::spawn_blocking(move || walk(&dir)).await.unwrap_or_default(),
                    None => Vec::new(),
                };
                let filter = Filter { ps: Some(d.name()), source: Some(Source::App) };
                let printed = logs.history(&d.app, &filter, 1000).len();
                let found = judge(d, grown, &files, printed);
                if found.iter().any(|f| !f.ok && f.code != "pidfile") {
                    first.insert(d.id.clone(), (base, true));
                }
                observer.record_for(&d.app, &d.release_id, &found).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dyno() -> Dyno {
        Dyno {
            id: DynoId::from("c1".to_owned()),
            app: "shop".into(),
            release_id: "r1".into(),
            release_version: 3,
            process_type: "web".into(),
            index: 1,
            running: true,
            state: "running".into(),
            command: String::new(),
            addr: None,
            created: 0,
            memory: None,
            ip: None,
            node: None,
        }
    }

    fn w(path: &str, mib: u64) -> Written {
        Written { path: path.into(), bytes: mib << 20 }
    }

    #[test]
    fn growing_logs_growing_state_and_pid_files_are_told_apart() {
        let d = dyno();
        let logs = judge(&d, 30 << 20, &[w("/app/log/production.log", 29), w("/tmp/x", 1)], 2);
        assert_eq!(logs.len(), 1);
        assert_eq!((logs[0].factor, logs[0].ok), (Factor::Logs, false));
        assert!(logs[0].message.contains("/app/log/production.log (29.0 MiB)") && logs[0].message.contains("printed 2 lines"), "{}", logs[0].message);
        let state = judge(&d, 20 << 20, &[w("/app/uploads/a.bin", 12), w("/app/uploads/b.bin", 8)], 500);
        assert_eq!((state[0].factor, state[0].code), (Factor::Processes, "disk"));
        assert!(state[0].message.contains("/app/uploads/a.bin (12.0 MiB)"), "{}", state[0].message);
        let quiet = judge(&d, 1 << 10, &[w("/var/run/app.pid", 0)], 10);
        assert_eq!(quiet.iter().map(|f| (f.code, f.ok)).collect::<Vec<_>>(), [("pidfile", false), ("disk", true)]);
    }

    #[test]
    fn a_layer_is_walked_largest_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app/log")).unwrap();
        std::fs::write(dir.path().join("app/log/a.log"), vec![0u8; 3000]).unwrap();
        std::fs::write(dir.path().join("small"), b"x").unwrap();
        let files = walk(dir.path());
        assert_eq!(files, [Written { path: "/app/log/a.log".into(), bytes: 3000 }, Written { path: "/small".into(), bytes: 1 }]);
    }
}
