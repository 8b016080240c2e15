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
