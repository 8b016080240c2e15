//! The log router: every line an app makes or the platform says about it,
//! in one ordered stream per app. Dynos' stdout and stderr come in through
//! [`ingest`] (followers of each container's output), build and release
//! output through `Output`, router access records and platform events
//! through [`LogRouter::event`]. Each line gets a sequence number, a
//! timestamp, a source (`app` or `paas`) and a dyno (`web.1`, `router`,
//! `build`, `api`).
//!
//! Out of it: a bounded history per app (a ring in memory, kept on disk by
//! [`journal`] so a restart loses and repeats nothing), live tails (each a
//! broadcast receiver: a reader that falls behind loses lines and is told
//! how many, and never slows the ingest or anyone else) and [`drain`]s.

pub mod drain;
mod ingest;
mod journal;

use crate::runtime::Runtime;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Lines kept per app when `PAAS_LOG_LINES` does not say.
pub const DEFAULT_HISTORY: usize = 1500;
/// Longest line kept, in bytes, as Heroku's 10 KB; longer ones are cut.
pub const MAX_LINE_BYTES: usize = 10_000;
/// Batches a live tail may fall behind before it loses lines. A batch is
/// one line, or up to [`GROUP`] that came in together.
const TAIL_BUFFER: usize = 256;
/// Most lines one batch takes from a dyno's output: a burst goes to the
/// tails and drains in batches this big, each encoded once for all of them.
/// With [`TAIL_BUFFER`], it bounds what a stalled reader keeps in memory:
/// 32k lines of a burst (about 17 MB of 100-byte lines with their
/// encodings), 256 lines of a quiet app's one-line batches.
pub(crate) const GROUP: usize = 128;

/// Who wrote a line: the app (a dyno's output) or the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    App,
    Paas,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::App => "app",
            Source::Paas => "paas",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "app" => Some(Source::App),
            "paas" | "heroku" => Some(Source::Paas),
            _ => None,
        }
    }
}

/// One line of an app's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Per app, one more than the line before; survives restarts. Streams
    /// resume by it (`Last-Event-ID`). 0 for notices made for one reader.
    pub seq: u64,
    /// Nanoseconds since the Unix epoch.
    pub at_ns: i64,
    pub source: Source,
    pub dyno: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stderr: bool,
    /// The line's encodings, made once however many readers get it.
    #[serde(skip)]
    pub cache: LineCache,
}

/// A line as Heroku prints it and as drains send it, each made on first
/// use and then shared by every reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineCache {
    heroku: std::sync::OnceLock<String>,
    /// The app's name, and the RFC 5424 message for it.
    syslog: std::sync::OnceLock<(String, String)>,
}

impl LogLine {
    /// `2026-11-22T10:00:00.000000+00:00`, as Heroku prints.
    pub fn time(&self) -> String {
        chrono::DateTime::from_timestamp_nanos(self.at_ns).format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }

    /// `TIME app[web.1]: text`, Heroku's format.
    pub fn heroku(&self) -> &str {
        self.cache.heroku.get_or_init(|| format!("{} {}[{}]: {}", self.time(), self.source.as_str(), self.dyno, self.text))
    }

    /// The line as an RFC 5424 message from `app`, for drains (made once
    /// for every drain of the app).
    pub fn syslog(&self, app: &str) -> std::borrow::Cow<'_, str> {
        let (cached_app, message) = self.cache.syslog.get_or_init(|| (app.to_owned(), drain::rfc5424(app, self)));
        if cached_app == app {
            std::borrow::Cow::Borrowed(message)
        } else {
            std::borrow::Cow::Owned(drain::rfc5424(app, self)) // renamed meanwhile
        }
    }
}

/// Lines that entered an app's log together, as tails and drains get them:
/// one broadcast slot, and one encoding in Heroku's format shared by every
/// plain-text tail (each writes the same bytes).
#[derive(Debug)]
pub struct Batch {
    /// Never empty; numbered one after the other.
    pub lines: Vec<Arc<LogLine>>,
    text: std::sync::OnceLock<bytes::Bytes>,
    /// The lines each filter passes, encoded, for the first few filters
    /// readers asked with (`paas logs -t -p worker` in many terminals).
    filtered: Mutex<Vec<(Filter, bytes::Bytes)>>,
}

/// Filters a batch keeps the encoding of; readers with yet another filter
/// encode for themselves.
const FILTERED_KEPT: usize = 8;

impl Batch {
    fn new(lines: Vec<Arc<LogLine>>) -> Self {
        Self { lines, text: Default::default(), filtered: Mutex::default() }
    }

    /// The lines `filter` passes in Heroku's format: made by the first
    /// reader with that filter, then shared.
    pub fn text_for(&self, filter: &Filter) -> bytes::Bytes {
        if filter.is_all() {
            return self.text().clone();
        }
        let mut kept = self.filtered.lock().expect("batch encodings poisoned");
        if let Some((_, text)) = kept.iter().find(|(f, _)| f == filter) {
            return text.clone();
        }
        let text = encode(self.lines.iter().map(|l| l.as_ref()).filter(|l| filter.matches(l)));
        if kept.len() < FILTERED_KEPT {
            kept.push((filter.clone(), text.clone()));
        }
        text
    }

    fn first_seq(&self) -> u64 {
        self.lines.first().map_or(0, |l| l.seq)
    }

    fn last_seq(&self) -> u64 {
        self.lines.last().map_or(0, |l| l.seq)
    }

    /// The batch as a reader that has had every line up to number `seen`
    /// gets it: how many lines it lost before the batch (a gap in the
    /// numbers, from falling behind), and the lines it has not had.
    fn after(&self, seen: u64) -> (u64, &[Arc<LogLine>]) {
        let first = self.first_seq();
        let lost = first.saturating_sub(seen + 1);
        let had = usize::try_from((seen + 1).saturating_sub(first)).unwrap_or(usize::MAX).min(self.lines.len());
        (lost, &self.lines[had..])
    }

    /// The lines in Heroku's format, a line each: made by the first reader
    /// that asks, then shared.
    pub fn text(&self) -> &bytes::Bytes {
        self.text.get_or_init(|| encode(self.lines.iter().map(|l| l.as_ref())))
    }
}

/// Lines in Heroku's format, one a line.
fn encode<'a>(lines: impl Iterator<Item = &'a LogLine> + Clone) -> bytes::Bytes {
    let mut chunk = String::with_capacity(lines.clone().map(|l| l.heroku().len() + 1).sum());
    for line in lines {
        chunk.push_str(line.heroku());
        chunk.push('\n');
    }
    bytes::Bytes::from(chunk)
}

/// Which lines a reader wants: `ps` is a process type (`web`) or a dyno
/// (`web.1`); `source` is `app` or `paas`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub ps: Option<String>,
    pub source: Option<Source>,
}

impl Filter {
    /// Whether every line passes.
    pub fn is_all(&self) -> bool {
        self.ps.is_none() && self.source.is_none()
    }

    pub fn matches(&self, line: &LogLine) -> bool {
        if line.seq == 0 {
            return true; // notices to this reader
        }
        if self.source.is_some_and(|s| s != line.source) {
            return false;
        }
        match self.ps.as_deref() {
            None => true,
            Some(ps) if ps.contains('.') => line.dyno == ps,
            Some(ps) => line.dyno == ps || line.dyno.strip_prefix(ps).is_some_and(|rest| rest.starts_with('.')),
        }
    }
}

/// The log router's settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Where the journals live (`PAAS_DATA_DIR/logs`).
    pub dir: PathBuf,
    /// `PAAS_LOG_LINES`: lines of history per app.
    pub history: usize,
    /// `PAAS_DRAIN_BUFFER`: lines a drain holds while its receiver is down.
    pub drain_buffer: usize,
    /// PEM files of the CAs drains trust (the host's bundle, and
    /// `PAAS_DRAIN_CA_FILE`).
    pub drain_roots: Vec<PathBuf>,
    /// Where drains may connect (`PAAS_OUTBOUND_ALLOW`).
    pub outbound: crate::outbound::OutboundPolicy,
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct LogRouter {
    inner: Arc<Inner>,
}

struct Inner {
    config: LogConfig,
    apps: Mutex<crate::FastMap<String, Arc<AppLog>>>,
    /// The apps that exist: a log is made for these only, so a name nobody
    /// created costs nothing here.
    known: crate::known::KnownApps,
    runtime: Arc<dyn Runtime>,
    followers: ingest::Followers,
    drains: drain::Drains,
    closing: watch::Sender<bool>,
}

/// One app's log: history, journal, and the broadcast of batches tails and
/// drains subscribe to. Lines enter under the lock, so history and
/// broadcast agree on the order and a new reader misses nothing between
/// them.
struct AppLog {
    state: Mutex<AppLogState>,
    tx: broadcast::Sender<Arc<Batch>>,
}

struct AppLogState {
    ring: VecDeque<Arc<LogLine>>,
    next_seq: u64,
    journal: journal::Journal,
    /// Container id -> time of the newest line taken in from it.
    cursors: HashMap<String, i64>,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

impl LogRouter {
    pub fn new(config: LogConfig, runtime: Arc<dyn Runtime>, known: crate::known::KnownApps) -> Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let (closing, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            drains: drain::Drains::new(&config)?,
            config,
            apps: Mutex::default(),
            known,
            runtime,
            followers: ingest::Followers::default(),
            closing,
        });
        let router = Self { inner };
        router.spawn_flusher();
        Ok(router)
    }

    /// An app's log, opened on first use; None for an app that does not
    /// exist (its lines are dropped, its readers see nothing).
    fn app(&self, app: &str) -> Option<Arc<AppLog>> {
        let mut apps = self.inner.apps.lock().expect("log apps poisoned");
        if let Some(log) = apps.get(app) {
            return Some(log.clone());
        }
        if !self.inner.known.contains(app) {
            return None;
        }
        let loaded = journal::Journal::open(&self.inner.config.dir, app, self.inner.config.history);
        let (journal, ring, cursors) = match loaded {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(app, error = %format!("{e:#}"), "cannot read the app's log journal: starting it afresh");
                (journal::Journal::fresh(&self.inner.config.dir, app, self.inner.config.history), VecDeque::new(), HashMap::new())
            }
        };
        let next_seq = ring.back().map_or(1, |l: &Arc<LogLine>| l.seq + 1).max(journal.last_seq() + 1);
        let (tx, _) = broadcast::channel(TAIL_BUFFER);
        let log = Arc::new(AppLog { state: Mutex::new(AppLogState { ring, next_seq, journal, cursors }), tx });
        apps.insert(app.to_owned(), log.clone());
        Some(log)
    }

    /// Whether `app` exists (has, or may open, a log).
    pub fn knows(&self, app: &str) -> bool {
        self.inner.known.contains(app)
    }

    /// Takes a line in: numbers it, keeps it, journals it, hands it to every
    /// tail and drain. `cursor` is the container it came from and its time
    /// there, for followers resuming after a restart.
    fn push(&self, app: &str, line: LogLine, cursor: Option<&str>) {
        self.push_lines(app, std::iter::once(line), cursor);
    }

    /// Takes lines in as [`Self::push`] does, and hands them on as one batch.
    fn push_lines<L: IntoIterator<Item = LogLine>>(&self, app: &str, lines: L, cursor: Option<&str>)
    where
        L::IntoIter: ExactSizeIterator,
    {
        let lines = lines.into_iter();
        let Some(log) = self.app(app) else { return };
        let mut state = log.state.lock().expect("app log poisoned");
        // Nobody to hand a batch to (no tail, no drain: most lines): none is
        // made. Readers subscribe under the lock held here, so none misses one.
        let handed = log.tx.receiver_count() > 0;
        let mut batch = if handed { Vec::with_capacity(lines.len()) } else { Vec::new() };
        for mut line in lines {
            if line.text.len() > MAX_LINE_BYTES {
                let mut cut = MAX_LINE_BYTES;
                while !line.text.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.text.truncate(cut);
            }
            line.seq = state.next_seq;
            state.next_seq += 1;
            if let Some(cid) = cursor {
                match state.cursors.get_mut(cid) {
                    Some(at) => *at = line.at_ns,
                    None => {
                        state.cursors.insert(cid.to_owned(), line.at_ns);
                    }
                }
            }
            let line = Arc::new(line);
            let AppLogState { journal, cursors, ring, .. } = &mut *state;
            ring.push_back(line.clone());
            while ring.len() > self.inner.config.history {
                ring.pop_front();
            }
            journal.append(&line, cursor, cursors);
            if handed {
                batch.push(line);
            }
        }
        if !batch.is_empty() {
            let _ = log.tx.send(Arc::new(Batch::new(batch)));
        }
    }

    /// A line from the platform (`paas[dyno]`), stamped now.
    pub fn event(&self, app: &str, dyno: &str, text: impl Into<String>) {
        self.say(app, Source::Paas, dyno, text);
    }

    /// A line stamped now, from either source.
    pub fn say(&self, app: &str, source: Source, dyno: &str, text: impl Into<String>) {
        let line = LogLine { seq: 0, at_ns: now_ns(), source, dyno: dyno.to_owned(), text: text.into(), stderr: false, cache: Default::default() };
        self.push(app, line, None);
    }

    /// The newest `lines` lines that pass `filter`, oldest first.
    pub fn history(&self, app: &str, filter: &Filter, lines: usize) -> Vec<Arc<LogLine>> {
        let Some(log) = self.app(app) else { return Vec::new() };
        let state = log.state.lock().expect("app log poisoned");
        newest(&state.ring, filter, lines)
    }

    /// A reader of an app's log: first the newest `lines` lines (or, with
    /// `after`, every line after that sequence number that is still held),
    /// then, when `follow`, each new line as it comes.
    pub fn tail(&self, app: &str, filter: Filter, lines: usize, after: Option<u64>, follow: bool) -> Tail {
        let mut backlog: VecDeque<Arc<LogLine>> = VecDeque::new();
        let closing = self.inner.closing.subscribe();
        let Some(log) = self.app(app) else {
            return Tail { backlog, rx: None, pending: VecDeque::new(), filter, closing, last_at: now_ns(), seen: 0 };
        };
        let state = log.state.lock().expect("app log poisoned");
        match after {
            Some(after) => {
                let first = state.ring.front().map_or(state.next_seq, |l| l.seq);
                if after + 1 < first && after + 1 < state.next_seq {
                    backlog.push_back(Arc::new(notice(format!(
                        "Error L11 (history too short): {} lines after #{after} are no longer held",
                        first - after - 1
                    ))));
                }
                backlog.extend(state.ring.iter().filter(|l| l.seq > after && filter.matches(l)).cloned());
            }
            None => backlog.extend(newest(&state.ring, &filter, lines)),
        }
        let rx = follow.then(|| log.tx.subscribe());
        let seen = state.next_seq - 1;
        drop(state);
        Tail { backlog, rx, pending: VecDeque::new(), filter, closing, last_at: now_ns(), seen }
    }

    /// Starts following a dyno's output (once; again after its stream broke
    /// while it runs).
    pub fn follow(&self, dyno: &crate::runtime::Dyno) {
        ingest::follow(self, dyno);
    }

    /// Follows every listed dyno of `app` that is not followed yet, and
    /// forgets the followers and cursors of containers that are gone.
    pub fn sync(&self, app: &str, listed: &[crate::runtime::Dyno]) {
        ingest::sync(self, app, listed);
    }

    /// Waits (up to `timeout`) until a container's output is all taken in:
    /// before an exited dyno is removed, so its last lines are not lost.
    pub async fn drained(&self, container_id: &str, timeout: Duration) {
        ingest::drained(self, container_id, timeout).await;
    }

    /// Removes an app's history, journal and drains (the app is destroyed).
    pub fn forget_app(&self, app: &str) {
        self.inner.drains.stop_app(app);
        self.inner.apps.lock().expect("log apps poisoned").remove(app);
        journal::Journal::remove(&self.inner.config.dir, app);
    }

    /// The bytes the app's journal holds on disk (`apps:info`).
    pub fn journal_bytes(&self, app: &str) -> u64 {
        journal::Journal::bytes(&self.inner.config.dir, app)
    }

    /// The app's log goes by `new` from now on (`apps:rename`): its
    /// history, journal and tails follow it; its drains stop (the caller
    /// starts them again under the new name).
    pub fn rename_app(&self, old: &str, new: &str) {
        self.inner.drains.stop_app(old);
        let mut apps = self.inner.apps.lock().expect("log apps poisoned");
        match apps.remove(old) {
            Some(log) => {
                log.state.lock().expect("app log poisoned").journal.move_to(&self.inner.config.dir, new);
                apps.insert(new.to_owned(), log);
            }
            None => {
                // Not opened since the start: its file moves, and opens on use.
                journal::Journal::rename(&self.inner.config.dir, old, new);
            }
        }
    }

    /// Starts delivering an app's lines to a drain (idempotent).
    pub fn start_drain(&self, spec: drain::DrainSpec) {
        if let Some(log) = self.app(&spec.app) {
            let state = log.state.lock().expect("app log poisoned");
            let rx = log.tx.subscribe();
            let seen = state.next_seq - 1;
            drop(state);
            self.inner.drains.start(self.clone(), spec, rx, seen);
        }
    }

    pub fn stop_drain(&self, id: &str) {
        self.inner.drains.stop(id);
    }

    /// Writes every journal out and ends every live tail (the server stops).
    pub fn close(&self) {
        let _ = self.inner.closing.send(true);
        self.flush();
    }

    fn flush(&self) {
        let apps: Vec<Arc<AppLog>> = self.inner.apps.lock().expect("log apps poisoned").values().cloned().collect();
        for log in apps {
            log.state.lock().expect("app log poisoned").journal.flush();
        }
    }

    fn spawn_flusher(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                LogRouter { inner }.flush();
            }
        });
    }

    fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    fn cursor(&self, app: &str, container_id: &str) -> Option<i64> {
        self.app(app)?.state.lock().expect("app log poisoned").cursors.get(container_id).copied()
    }

    fn forget_cursors(&self, app: &str, keep: &dyn Fn(&str) -> bool) {
        if let Some(log) = self.app(app) {
            log.state.lock().expect("app log poisoned").cursors.retain(|cid, _| keep(cid));
        }
    }
}

/// The newest `lines` lines of `ring` that pass `filter`, oldest first.
fn newest(ring: &VecDeque<Arc<LogLine>>, filter: &Filter, lines: usize) -> Vec<Arc<LogLine>> {
    let mut out: Vec<Arc<LogLine>> = ring.iter().rev().filter(|l| filter.matches(l)).take(lines).cloned().collect();
    out.reverse();
    out
}

/// A line for one reader only (seq 0): lines it lost, history it missed.
fn notice(text: String) -> LogLine {
    LogLine { seq: 0, at_ns: now_ns(), source: Source::Paas, dyno: "logs".into(), text, stderr: false, cache: Default::default() }
}

/// Logplex's L10, for a reader or drain that fell behind.
pub fn dropped_notice(count: u64, since_ns: i64) -> LogLine {
    let since = LogLine { at_ns: since_ns, ..notice(String::new()) }.time();
    notice(format!("Error L10 (output buffer overflow): {count} messages dropped since {since}."))
}

/// One reader of an app's log; see [`LogRouter::tail`].
pub struct Tail {
    backlog: VecDeque<Arc<LogLine>>,
    rx: Option<broadcast::Receiver<Arc<Batch>>>,
    /// Lines of the last batch not handed out yet (the line-by-line reader).
    pending: VecDeque<Arc<LogLine>>,
    filter: Filter,
    closing: watch::Receiver<bool>,
    /// When the last line reached this reader, for drop notices.
    last_at: i64,
    /// The newest line number this reader has had, or had in its backlog:
    /// a batch's lines up to it are not given again, and a gap after it is
    /// lines this reader lost by falling behind.
    seen: u64,
}

impl Tail {
    /// The next line, or None when the history is done (not following), or
    /// the server is stopping.
    pub async fn next(&mut self) -> Option<Arc<LogLine>> {
        loop {
            if let Some(line) = self.backlog.pop_front().or_else(|| self.pending.pop_front()) {
                return Some(line);
            }
            let batch = self.recv().await?;
            let lines = self.take(&batch);
            self.pending.extend(lines);
        }
    }

    /// The next lines in Heroku's format, a line each, up to about `max`
    /// lines. A batch every line of which this reader wants is the batch's
    /// own encoding, shared with every other such reader; when several
    /// batches are waiting, their encodings are joined into one chunk (one
    /// write, not one per batch). Lines a filter leaves out, or a notice,
    /// are encoded for this reader.
    pub async fn next_chunk(&mut self, max: usize) -> Option<bytes::Bytes> {
        if !self.backlog.is_empty() || !self.pending.is_empty() {
            let n = self.backlog.len().min(max);
            let lines: Vec<Arc<LogLine>> = self.backlog.drain(..n).chain(self.pending.drain(..)).collect();
            return Some(encode(lines.iter().map(|l| l.as_ref())));
        }
        let mut first = self.recv().await?;
        loop {
            let mut chunk = self.shared_or_own(&first);
            let mut joined: Option<bytes::BytesMut> = None;
            let mut lines = first.lines.len();
            while lines < max {
                let Some(rx) = self.rx.as_mut() else { break };
                let next = match rx.try_recv() {
                    Ok(batch) => batch,
                    Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                    Err(_) => break,
                };
                lines += next.lines.len();
                let more = self.shared_or_own(&next);
                if more.is_empty() {
                    continue;
                }
                if chunk.is_empty() {
                    chunk = more;
                    continue;
                }
                joined.get_or_insert_with(|| bytes::BytesMut::from(&chunk[..])).extend_from_slice(&more);
            }
            if let Some(joined) = joined {
                return Some(joined.freeze());
            }
            if !chunk.is_empty() {
                return Some(chunk);
            }
            first = self.recv().await?;
        }
    }

    /// `batch` for this reader: the encoding every reader with its filter
    /// shares, when it has had every line before the batch; else its own
    /// (maybe empty) one, with the notice of lines it lost.
    fn shared_or_own(&mut self, batch: &Batch) -> bytes::Bytes {
        if batch.first_seq() == self.seen + 1 {
            self.seen = batch.last_seq();
            self.last_at = batch.lines.last().map_or(self.last_at, |l| l.at_ns);
            return batch.text_for(&self.filter);
        }
        let lines = self.take(batch);
        if lines.is_empty() {
            return bytes::Bytes::new();
        }
        encode(lines.iter().map(|l| l.as_ref()))
    }

    /// The next batch from the app, None once the server stops or the log
    /// is gone. Lines lost by falling behind show as a gap in the numbers.
    async fn recv(&mut self) -> Option<Arc<Batch>> {
        let rx = self.rx.as_mut()?;
        loop {
            if *self.closing.borrow() {
                return None;
            }
            let got = tokio::select! {
                got = rx.recv() => got,
                _ = self.closing.changed() => return None,
            };
            match got {
                Ok(batch) => return Some(batch),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// What of `batch` this reader gets: a notice of the lines it lost
    /// first, then the lines it has not had that pass its filter.
    fn take(&mut self, batch: &Batch) -> Vec<Arc<LogLine>> {
        let mut lines = Vec::new();
        let (lost, fresh) = batch.after(self.seen);
        if lost > 0 {
            lines.push(Arc::new(dropped_notice(lost, self.last_at)));
        }
        for line in fresh {
            if self.filter.matches(line) {
                self.last_at = line.at_ns;
                lines.push(line.clone());
            }
        }
        self.seen = self.seen.max(batch.last_seq());
        lines
    }

    /// Lines as a stream, for response bodies.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Arc<LogLine>> + Send {
        futures_util::stream::unfold(self, |mut tail| async move { tail.next().await.map(|l| (l, tail)) })
    }

    /// Chunks of lines in Heroku's format (see [`Self::next_chunk`]) as a
    /// stream; the history goes out `max` lines at a time.
    pub fn into_chunks(self, max: usize) -> impl futures_util::Stream<Item = bytes::Bytes> + Send {
        futures_util::stream::unfold(self, move |mut tail| async move { tail.next_chunk(max).await.map(|b| (b, tail)) })
    }
}

#[cfg(test)]
mod tests;
