//! Terminal output: tables (`comfy-table`), headings, JSON, pairs, the
//! spinner on stderr while dynos start (`indicatif`, terminals only), and
//! colour through `anstream`, which honours `NO_COLOR`, `CLICOLOR_FORCE`,
//! `CLICOLOR=0`, `TERM=dumb` and whether the stream is a terminal: styled
//! text is written everywhere and stripped where colour is off.

use anstyle::{AnsiColor, Style};
use std::time::Duration;

const BOLD: Style = Style::new().bold();
const RED: Style = AnsiColor::Red.on_default();
const DIM: Style = Style::new().dimmed();

/// Whether stdout gets colour.
pub fn colour() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

pub fn heading(text: &str) {
    anstream::println!("{BOLD}=== {text}{BOLD:#}");
}

pub fn error(text: &str) {
    anstream::eprintln!("{RED} !{RED:#}    {text}");
}

/// A warning line on stderr, as Heroku prints them.
pub fn warn(text: &str) {
    anstream::eprintln!(" !    {text}");
}

pub fn json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("API types serialize"));
}

/// Prints rows under a bold header, columns as wide as their widest cell,
/// no borders (as Heroku's CLI does).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| comfy_table::Cell::new(h).add_attribute(comfy_table::Attribute::Bold)));
    if !colour() {
        t.force_no_tty();
    } else {
        t.enforce_styling();
    }
    for row in rows {
        t.add_row(row);
    }
    // Two spaces between columns, none before the first.
    let columns = header.len();
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_padding((0, if i + 1 == columns { 0 } else { 2 }));
    }
    for line in t.lines() {
        anstream::println!("{}", line.trim_end());
    }
}

/// Prints `key: value` pairs with the values aligned.
pub fn pairs(rows: &[(String, String)]) {
    let w = rows.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{:<w$} {v}", format!("{k}:"));
    }
}

/// A spinner on stderr while the server works (dynos starting), shown
/// only when stderr is a terminal; cleared before the answer is printed.
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub fn start(message: &str) -> Self {
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(format!("{message}..."));
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// Colours for dynos' prefixes, as Heroku's CLI picks one per dyno.
const DYNO_COLORS: &[AnsiColor] = &[
    AnsiColor::Cyan,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::BrightCyan,
    AnsiColor::BrightYellow,
    AnsiColor::BrightGreen,
    AnsiColor::BrightMagenta,
    AnsiColor::BrightBlue,
];

/// A log line as `paas logs` prints it: with colour on, the `app[web.1]:`
/// prefix takes a colour of its dyno's own; otherwise the line as it came.
pub fn log_line(line: &str, colour: bool) -> String {
    if !colour {
        return line.to_owned();
    }
    let Some((time, rest)) = line.split_once(' ') else { return line.to_owned() };
    let Some(end) = rest.find("]: ") else { return line.to_owned() };
    let prefix = &rest[..=end];
    let dyno = prefix.split_once('[').map_or(prefix, |(_, d)| d.trim_end_matches(']'));
    let style = if prefix.starts_with("paas[") && !dyno.contains('.') {
        AnsiColor::BrightBlack.on_default()
    } else {
        let hash = dyno.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        DYNO_COLORS[hash % DYNO_COLORS.len()].on_default()
    };
    format!("{DIM}{time}{DIM:#} {style}{prefix}{style:#}{}", &rest[end + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_coloured_by_dyno_only_when_asked() {
        let line = "2026-11-22T10:00:00.000000+00:00 app[web.1]: hello [x]: y";
        assert_eq!(log_line(line, false), line);
        let c = log_line(line, true);
        assert!(c.contains("\x1b[") && c.ends_with(": hello [x]: y"), "{c:?}");
        assert_eq!(log_line(line, true), c, "the same dyno keeps its colour");
        assert_ne!(log_line(&line.replace("web.1", "worker.1"), true), c.replace("web.1", "worker.1"));
    }
}
