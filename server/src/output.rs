//! Output of a build or a release for the person who asked for it: each
//! line goes to them as it happens (the pusher's `remote:` lines) and into a
//! bounded log that is stored with the build. The log keeps its head and its
//! tail and says how much was cut between them, so a chatty build cannot
//! grow the server's memory or the database without bound.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Bytes of a log kept from its start, and again from its end.
pub const LOG_HEAD_BYTES: usize = 256 * 1024;
pub const LOG_TAIL_BYTES: usize = 256 * 1024;

/// A log that keeps the first and the last lines up to a byte budget each.
#[derive(Debug, Default)]
pub struct CappedLog {
    head: String,
    tail: VecDeque<String>,
    tail_bytes: usize,
    cut_lines: u64,
    cut_bytes: u64,
    head_full: bool,
    head_limit: usize,
    tail_limit: usize,
}

impl CappedLog {
    pub fn new(head_limit: usize, tail_limit: usize) -> Self {
        Self { head_limit, tail_limit, ..Default::default() }
    }

    pub fn push(&mut self, line: &str) {
        if !self.head_full && self.head.len() + line.len() < self.head_limit {
            self.head.push_str(line);
            self.head.push('\n');
            return;
        }
        self.head_full = true;
        self.tail_bytes += line.len() + 1;
        self.tail.push_back(line.to_owned());
        while self.tail_bytes > self.tail_limit {
            let Some(old) = self.tail.pop_front() else { break };
            self.tail_bytes -= old.len() + 1;
            self.cut_lines += 1;
            self.cut_bytes += old.len() as u64 + 1;
        }
    }

    pub fn text(&self) -> String {
        let mut text = self.head.clone();
        if self.cut_lines > 0 {
            text.push_str(&format!(
                "[... {} lines ({} bytes) of output cut here: only the first and last {} KiB are kept ...]\n",
                self.cut_lines,
                self.cut_bytes,
                self.tail_limit / 1024
            ));
        }
        for line in &self.tail {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// A build's or a release's output: each line goes to the person watching
/// and into the capped log.
#[derive(Clone)]
pub struct Output {
    tx: Option<mpsc::Sender<String>>,
    log: Arc<Mutex<CappedLog>>,
    /// The app's log, which gets each line as `paas[build]`.
    app_log: Option<(crate::logs::LogRouter, String)>,
    /// A second capped log that keeps only what is written through this
    /// clone (see [`Output::recording`]).
    part: Option<Arc<Mutex<CappedLog>>>,
}

impl Output {
    pub fn new(tx: mpsc::Sender<String>) -> Self {
        Self { tx: Some(tx), log: Arc::new(Mutex::new(CappedLog::new(LOG_HEAD_BYTES, LOG_TAIL_BYTES))), app_log: None, part: None }
    }

    /// Output nobody watches live: kept for the log (and error messages) only.
    pub fn collect() -> Self {
        Self { tx: None, log: Arc::new(Mutex::new(CappedLog::new(LOG_HEAD_BYTES, LOG_TAIL_BYTES))), app_log: None, part: None }
    }

    /// Also sends every line to `app`'s log, as `paas[build]`.
    pub fn with_app_log(mut self, logs: crate::logs::LogRouter, app: &str) -> Self {
        self.app_log = Some((logs, app.to_owned()));
        self
    }

    /// This output, which also keeps what is written through it (and
    /// its sinks) apart: [`Output::recorded`] gives that part alone (a
    /// release phase's output, within a push's).
    pub fn recording(&self) -> Self {
        Self { part: Some(Arc::new(Mutex::new(CappedLog::new(LOG_HEAD_BYTES, LOG_TAIL_BYTES)))), ..self.clone() }
    }

    /// What was written through this [`Output::recording`] (None for any other).
    pub fn recorded(&self) -> Option<String> {
        self.part.as_ref().map(|p| p.lock().expect("output log poisoned").text())
    }

    pub async fn line(&self, line: impl Into<String>) {
        let line = line.into();
        self.log.lock().expect("output log poisoned").push(&line);
        if let Some(part) = &self.part {
            part.lock().expect("output log poisoned").push(&line);
        }
        if let Some((logs, app)) = &self.app_log {
            logs.event(app, "build", line.trim_end());
        }
        if let Some(tx) = &self.tx {
            // A watcher that hung up must not stop the build.
            let _ = tx.send(line).await;
        }
    }

    pub async fn heading(&self, text: impl AsRef<str>) {
        self.line(format!("-----> {}", text.as_ref())).await;
    }

    pub async fn body(&self, text: impl AsRef<str>) {
        self.line(format!("       {}", text.as_ref())).await;
    }

    pub async fn warn(&self, text: impl AsRef<str>) {
        self.line(format!(" !     {}", text.as_ref())).await;
    }

    pub fn text(&self) -> String {
        self.log.lock().expect("output log poisoned").text()
    }

    /// The last `n` lines of the log.
    pub fn tail(&self, n: usize) -> String {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A channel whose lines are added to this output, as 7-space-indented
    /// body lines or as they are; `Sink::close` waits until all are in.
    pub fn sink(&self, indent: bool) -> Sink {
        let (tx, mut rx) = mpsc::channel::<String>(256);
        let out = self.clone();
        let task = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if indent {
                    out.body(line).await;
                } else {
                    out.line(line).await;
                }
            }
        });
        Sink { tx, task }
    }
}

/// See [`Output::sink`].
pub struct Sink {
    pub tx: mpsc::Sender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_head_and_tail_and_says_what_was_cut() {
        let mut log = CappedLog::new(100, 100);
        for i in 0..1000 {
            log.push(&format!("line {i:04}"));
        }
        let text = log.text();
        assert!(text.starts_with("line 0000\n"), "{text}");
        assert!(text.ends_with("line 0999\n"), "{text}");
        assert!(text.contains("lines (") && text.contains("cut here"), "{text}");
        assert!(text.len() < 400, "{}", text.len());
        let short = {
            let mut l = CappedLog::new(100, 100);
            l.push("only");
            l.text()
        };
        assert_eq!(short, "only\n");
    }
}
