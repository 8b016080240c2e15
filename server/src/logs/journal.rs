//! An app's log history on disk, so a restarted server has the history it
//! had and its followers resume where they stopped. One file per app
//! (`PAAS_DATA_DIR/logs/APP.log`), a JSON record a line: each log line with
//! the container it came from, so the file says both what was taken in and
//! how far each container's output was read; the two never disagree. When
//! the file holds as many lines as the history, it becomes the previous
//! segment (`APP.log.1`, replacing the one before) and a new file starts
//! with a cursor record, so the two hold the history and stay bounded, and
//! no line is written twice. Writes are buffered and flushed
//! every 200 ms and at shutdown; a crash loses at most that much, which the
//! followers then read again from the engine.

use super::LogLine;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A record as written: borrowed, so a line is not copied to be written.
#[derive(Serialize, Default)]
struct RecordOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a LogLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursors: Option<&'a HashMap<String, i64>>,
}

/// `{"line":{...},"from":"..."}`, the JSON serde_json makes of a
/// [`RecordOut`] holding a line (and no cursors), with strings escaped a
/// run of plain bytes at a time (serde_json's byte-at-a-time escaping was
/// 5 % of the router's instructions, the record being its access lines).
fn write_line_record(out: &mut impl Write, line: &LogLine, from: Option<&str>) -> std::io::Result<()> {
    let mut n = itoa::Buffer::new();
    out.write_all(b"{\"line\":{\"seq\":")?;
    out.write_all(n.format(line.seq).as_bytes())?;
    out.write_all(b",\"at_ns\":")?;
    out.write_all(n.format(line.at_ns).as_bytes())?;
    out.write_all(b",\"source\":\"")?;
    out.write_all(line.source.as_str().as_bytes())?;
    out.write_all(b"\",\"dyno\":")?;
    write_json_str(out, &line.dyno)?;
    out.write_all(b",\"text\":")?;
    write_json_str(out, &line.text)?;
    if line.stderr {
        out.write_all(b",\"stderr\":true")?;
    }
    out.write_all(b"}")?;
    if let Some(from) = from {
        out.write_all(b",\"from\":")?;
        write_json_str(out, from)?;
    }
    out.write_all(b"}")
}

/// `s` as a JSON string, escaped as serde_json escapes (`"`, `\\` and
/// control characters; everything else as it is).
fn write_json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    let bytes = s.as_bytes();
    out.write_all(b"\"")?;
    let mut start = 0;
    while let Some(at) = to_escape(bytes, start) {
        out.write_all(&bytes[start..at])?;
        match bytes[at] {
            b'"' => out.write_all(b"\\\"")?,
            b'\\' => out.write_all(b"\\\\")?,
            b'\n' => out.write_all(b"\\n")?,
            b'\r' => out.write_all(b"\\r")?,
            b'\t' => out.write_all(b"\\t")?,
            0x08 => out.write_all(b"\\b")?,
            0x0c => out.write_all(b"\\f")?,
            c => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.write_all(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]])?;
            }
        }
        start = at + 1;
    }
    out.write_all(&bytes[start..])?;
    out.write_all(b"\"")
}

/// The first byte from `from` on that JSON escapes: eight bytes at a time
/// while none of them is one (most text has a few `"` and nothing else).
fn to_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Whether a word has a zero byte, or one below 0x20 (the classic bit
    // tricks; exact when answered false, which is all they are used for).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let mut at = from;
    while let Some(word) = bytes.get(at..at + 8) {
        let w = u64::from_ne_bytes(word.try_into().expect("eight bytes"));
        if has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\'))) || w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0 {
            break;
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\').map(|i| at + i)
}

/// A record as read back.
#[derive(Deserialize, Default)]
struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line: Option<LogLine>,
    /// The container the line came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    /// Written first in a rewritten file: how far each container was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursors: Option<HashMap<String, i64>>,
}

pub(super) struct Journal {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    /// Lines in the file (the current segment).
    records: usize,
    /// Lines of history kept; the file becomes the previous segment at this.
    history: usize,
    last_seq: u64,
    dirty: bool,
}

fn move_file(from: &Path, to: &Path) {
    if let Err(e) = std::fs::rename(from, to) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(from = %from.display(), to = %to.display(), error = %e, "cannot move the log journal: it starts afresh under the new name");
        }
    }
}

fn path_of(dir: &Path, app: &str) -> PathBuf {
    dir.join(format!("{app}.log"))
}

/// The segment before the current one.
fn previous_of(path: &Path) -> PathBuf {
    path.with_extension("log.1")
}

/// What opening a journal gives back: the journal, the newest lines, and
/// each container's cursor.
pub type Opened = (Journal, VecDeque<Arc<LogLine>>, HashMap<String, i64>);

impl Journal {
    /// Reads an app's journal: the journal, the newest `history` lines and
    /// the containers' cursors.
    pub fn open(dir: &Path, app: &str, history: usize) -> Result<Opened> {
        let path = path_of(dir, app);
        let mut ring: VecDeque<Arc<LogLine>> = VecDeque::new();
        let mut cursors = HashMap::new();
        let mut records = 0;
        let mut last_seq = 0;
        for (segment, current) in [(previous_of(&path), false), (path.clone(), true)] {
            if !segment.exists() {
                continue;
            }
            let file = File::open(&segment).with_context(|| format!("cannot open {}", segment.display()))?;
            for raw in BufReader::new(file).lines() {
                let raw = raw?;
                // A line cut short by a crash is skipped: its container's
                // cursor did not move past it, so it is read again.
                let Ok(record) = serde_json::from_str::<Record>(&raw) else { continue };
                if current && record.line.is_some() {
                    records += 1;
                }
                if let Some(c) = record.cursors {
                    cursors.extend(c);
                }
                if let Some(line) = record.line {
                    if let Some(from) = record.from {
                        cursors.insert(from, line.at_ns);
                    }
                    last_seq = last_seq.max(line.seq);
                    ring.push_back(Arc::new(line));
                    if ring.len() > history {
                        ring.pop_front();
                    }
                }
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let journal = Self { path, file: Some(BufWriter::with_capacity(64 * 1024, file)), records, history, last_seq, dirty: false };
        Ok((journal, ring, cursors))
    }

    /// A journal that starts empty (the old one could not be read).
    pub fn fresh(dir: &Path, app: &str, history: usize) -> Self {
        let path = path_of(dir, app);
        let _ = std::fs::remove_file(previous_of(&path));
        let file = File::create(&path).ok().map(|f| BufWriter::with_capacity(64 * 1024, f));
        Self { path, file, records: 0, history, last_seq: 0, dirty: false }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Appends a line; first, when the file holds as many lines as the
    /// history, starts a new one (see the module's comment).
    pub fn append(&mut self, line: &LogLine, from: Option<&str>, cursors: &HashMap<String, i64>) {
        self.last_seq = line.seq;
        if self.records >= self.history.max(1) {
            self.next_segment(cursors);
        }
        self.write(&RecordOut { line: Some(line), from, cursors: None });
        self.records += 1;
    }

    fn write(&mut self, record: &RecordOut<'_>) {
        let Some(file) = self.file.as_mut() else { return };
        let result = match record {
            // A line's record, one per line taken in (every routed request
            // writes one): written by hand, as serde_json writes it.
            RecordOut { line: Some(line), from, cursors: None } => write_line_record(file, line, *from),
            _ => serde_json::to_writer(&mut *file, record).map_err(std::io::Error::from),
        }
        .and_then(|_| file.write_all(b"\n"));
        self.dirty = true;
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the log journal: history is kept in memory only");
            self.file = None;
        }
    }

    /// The file becomes the previous segment; a new one starts with the
    /// containers' cursors.
    fn next_segment(&mut self, cursors: &HashMap<String, i64>) {
        let started = (|| -> std::io::Result<File> {
            if let Some(mut file) = self.file.take() {
                file.flush()?;
            }
            std::fs::rename(&self.path, previous_of(&self.path))?;
            File::create(&self.path)
        })();
        match started {
            Ok(file) => {
                self.file = Some(BufWriter::with_capacity(64 * 1024, file));
                // Lines are counted, not this record: each segment holds a
                // whole history.
                self.write(&RecordOut { cursors: Some(cursors), ..Default::default() });
                self.records = 0;
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot start a new log journal segment: history is kept in memory only");
                self.file = None;
            }
        }
    }

    pub fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if let Some(file) = self.file.as_mut() {
            if let Err(e) = file.flush() {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write the log journal");
            }
        }
    }

    /// Flushes and moves the file to `app`'s name (`apps:rename`); the
    /// open file follows it.
    pub fn move_to(&mut self, dir: &Path, app: &str) {
        self.dirty = true;
        self.flush();
        Self::rename_paths(&self.path, &path_of(dir, app));
        self.path = path_of(dir, app);
    }

    /// Moves a journal not open now from `old`'s name to `new`'s.
    pub fn rename(dir: &Path, old: &str, new: &str) {
        Self::rename_paths(&path_of(dir, old), &path_of(dir, new));
    }

    fn rename_paths(from: &Path, to: &Path) {
        move_file(from, to);
        move_file(&previous_of(from), &previous_of(to));
    }

    /// The bytes of an app's journal on disk, both segments (0 without one).
    pub fn bytes(dir: &Path, app: &str) -> u64 {
        let path = path_of(dir, app);
        [previous_of(&path), path].iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum()
    }

    pub fn remove(dir: &Path, app: &str) {
        let path = path_of(dir, app);
        let _ = std::fs::remove_file(previous_of(&path));
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Source;

    /// The hand-written record is byte for byte what serde_json writes, for
    /// text with every kind of character a line can hold.
    #[test]
    fn a_line_record_is_written_as_serde_json_writes_it() {
        let texts = ["a long line of plain text that goes on for a while, past eight bytes \u{1}", "0123456789abcdef\\", "0123456789abcdef\"x", "plain", "at=info method=GET path=\"/a\\\\b\" host=\"x\"", "tab\tnl\ncr\r\u{8}\u{c}\u{1}\u{1f}\u{7f}", "ünïcödé ✓ 🚀", "\"\"\\\\"];
        for (i, text) in texts.iter().enumerate() {
            for (stderr, from) in [(false, None), (true, Some("c0ffee\"id")), (false, Some(""))] {
                let line = LogLine {
                    seq: u64::MAX - i as u64,
                    at_ns: if i % 2 == 0 { -5 } else { i64::MAX },
                    source: if stderr { Source::App } else { Source::Paas },
                    dyno: format!("web.{i}\\"),
                    text: (*text).to_owned(),
                    stderr,
                    cache: Default::default(),
                };
                let mut ours = Vec::new();
                write_line_record(&mut ours, &line, from).unwrap();
                let theirs = serde_json::to_vec(&RecordOut { line: Some(&line), from, cursors: None }).unwrap();
                assert_eq!(String::from_utf8(ours.clone()).unwrap(), String::from_utf8(theirs).unwrap());
                let back: Record = serde_json::from_slice(&ours).unwrap();
                assert_eq!(back.line.as_ref(), Some(&line));
                assert_eq!(back.from.as_deref(), from);
            }
        }
    }
}
