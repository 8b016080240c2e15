//! Followers: one task per dyno container reads its output from the engine
//! and hands each line to the log router as `app[web.1]`. A follower
//! resumes from its container's cursor (the time of the newest line taken
//! in, kept in the journal), so a restarted server repeats no line and
//! loses none the engine still holds. A follower that falls behind only
//! reads later: the engine keeps the dyno's output in its log file, so the
//! dyno never waits for it. Lines a follower gets again (the engine
//! replays some when it rotates a log file) are dropped by their time.

use super::{LogLine, LogRouter, Source};
use crate::runtime::Dyno;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// How long a group of lines waits for more before it goes on.
const GROUP_WAIT: Duration = Duration::from_millis(2);

/// Container id -> (its app, its follower: `true` in the watch once it
/// ended).
#[derive(Default)]
pub(super) struct Followers {
    map: Mutex<HashMap<String, (String, watch::Receiver<bool>)>>,
}

pub(super) fn follow(router: &LogRouter, dyno: &Dyno) {
    let (done_tx, done_rx) = watch::channel(false);
    {
        let mut map = router.inner.followers.map.lock().expect("followers poisoned");
        if map.get(dyno.id.as_str()).is_some_and(|(_, done)| !*done.borrow()) {
            return;
        }
        map.insert(dyno.id.to_string(), (dyno.app.clone(), done_rx));
    }
    let router = router.clone();
    let app = dyno.app.clone();
    let id = dyno.id.clone();
    let name = dyno.name();
    tokio::spawn(async move {
        let cursor = router.cursor(&app, id.as_str());
        tracing::debug!(app = %app, dyno = %name, cursor = ?cursor, "following output");
        // The engine's `since` is in whole seconds: lines of that second
        // that were taken in already are skipped by their time.
        let since = cursor.map_or(0, |ns| ns.div_euclid(1_000_000_000));
        let mut rx = router.runtime().follow_output(&id, since);
        // The newest line taken in, per stream (stdout, stderr). The engine
        // may send lines again (Docker 20.10 replays some when it rotates a
        // container's log file under a follower); their time gives them away.
        let mut newest = [cursor.unwrap_or(i64::MIN); 2];
        // Lines go on in groups, as one batch to every tail and drain: what
        // came within GROUP_WAIT of a group's first line, up to GROUP lines.
        // A busy dyno's lines then cost each reader one wakeup and one write
        // per group, not per line; a quiet one's wait GROUP_WAIT at most.
        let mut group: Vec<LogLine> = Vec::with_capacity(super::GROUP);
        let mut take = |line: crate::runtime::OutputLine, group: &mut Vec<LogLine>| {
            let stream = usize::from(line.stderr);
            if line.at_ns > newest[stream] {
                newest[stream] = line.at_ns;
                group.push(LogLine { seq: 0, at_ns: line.at_ns, source: Source::App, dyno: name.clone(), text: line.text, stderr: line.stderr, cache: Default::default() });
            }
        };
        'follow: while let Some(got) = rx.recv().await {
            let mut got = Some(got);
            let deadline = tokio::time::Instant::now() + GROUP_WAIT;
            loop {
                match got.take() {
                    Some(Ok(line)) => take(line, &mut group),
                    Some(Err(e)) => {
                        tracing::debug!(app = %app, dyno = %name, error = %format!("{e:#}"), "output stream broke");
                        break 'follow;
                    }
                    None => {}
                }
                if group.len() >= super::GROUP {
                    break;
                }
                got = match rx.try_recv() {
                    Ok(more) => Some(more),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(more)) => Some(more),
                        Ok(None) | Err(_) => break,
                    },
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
                };
            }
            if !group.is_empty() {
                router.push_lines(&app, std::mem::take(&mut group), Some(id.as_str()));
            }
        }
        if !group.is_empty() {
            router.push_lines(&app, group, Some(id.as_str()));
        }
        tracing::debug!(app = %app, dyno = %name, "output stream ended");
        let _ = done_tx.send(true);
    });
}

pub(super) fn sync(router: &LogRouter, app: &str, listed: &[Dyno]) {
    for d in listed {
        // A running dyno whose follower ended (the engine restarted) is
        // followed again; an exited one is read once to its end.
        // None: never followed; Some(true): its follower ended.
        let ended = router.inner.followers.map.lock().expect("followers poisoned").get(d.id.as_str()).map(|(_, done)| *done.borrow());
        if ended.is_none() || (d.running && ended == Some(true)) {
            follow(router, d);
        }
    }
    let present = |cid: &str| listed.iter().any(|d| d.id.as_str() == cid);
    router.forget_cursors(app, &present);
    let mut map = router.inner.followers.map.lock().expect("followers poisoned");
    map.retain(|cid, (owner, done)| owner != app || !*done.borrow() || present(cid));
}

pub(super) async fn drained(router: &LogRouter, container_id: &str, timeout: Duration) {
    let done = router.inner.followers.map.lock().expect("followers poisoned").get(container_id).map(|(_, d)| d.clone());
    if let Some(mut done) = done {
        let _ = tokio::time::timeout(timeout, done.wait_for(|d| *d)).await;
    }
}
