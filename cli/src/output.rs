//! Terminal output: aligned tables, headings, JSON, and colour only when
//! stdout is a terminal and `NO_COLOR` is unset.

use std::io::IsTerminal;

fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

fn color_err() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

pub fn heading(text: &str) {
    if color() {
        println!("\x1b[1m=== {text}\x1b[0m");
    } else {
        println!("=== {text}");
    }
}

pub fn error(text: &str) {
    if color_err() {
        eprintln!("\x1b[31m !\x1b[0m    {text}");
    } else {
        eprintln!(" !    {text}");
    }
}

pub fn json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("API types serialize"));
}

/// Prints rows with every column padded to its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i == last { c.to_string() } else { format!("{c:<w$}", w = widths[i]) })
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    if color() {
        let s: Vec<String> = header.iter().enumerate().map(|(i, h)| format!("{h:<w$}", w = widths[i])).collect();
        println!("\x1b[1m{}\x1b[0m", s.join("  ").trim_end());
    } else {
        line(header.to_vec());
    }
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `key: value` pairs with the values aligned.
pub fn pairs(rows: &[(String, String)]) {
    let w = rows.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{:<w$} {v}", format!("{k}:"));
    }
}

/// Colours for dynos' prefixes, as Heroku's CLI picks one per dyno.
const DYNO_COLORS: &[&str] = &["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// A log line as `paas logs` prints it: on a terminal (without `NO_COLOR`)
/// the `app[web.1]:` prefix takes a colour of its dyno's own; otherwise the
/// line as it came.
pub fn log_line(line: &str, colour: bool) -> String {
    if !colour {
        return line.to_owned();
    }
    let Some((time, rest)) = line.split_once(' ') else { return line.to_owned() };
    let Some(end) = rest.find("]: ") else { return line.to_owned() };
    let prefix = &rest[..=end];
    let dyno = prefix.split_once('[').map_or(prefix, |(_, d)| d.trim_end_matches(']'));
    let code = if prefix.starts_with("paas[") && !dyno.contains('.') {
        "90"
    } else {
        let hash = dyno.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        DYNO_COLORS[hash % DYNO_COLORS.len()]
    };
    format!("\x1b[2m{time}\x1b[0m \x1b[{code}m{prefix}\x1b[0m{}", &rest[end + 1..])
}

/// Whether log lines get colour: stdout is a terminal and `NO_COLOR` unset.
pub fn log_colour() -> bool {
    color()
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
