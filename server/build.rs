//! Embeds the store's migrations (`migrations/*.sql`) in the server, as the
//! list (version, file name, SQL), sorted by version, that
//! `store::MIGRATIONS` includes: sqlx's `migrate!` macro did this
//! before, at the cost of compiling sqlx's drivers and SQLite's C code a
//! second time for the macro (BENCHMARKS.md, "Fresh machine").

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    // A directory: cargo looks at every file in it.
    println!("cargo:rerun-if-changed={}", dir.display());
    let names = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the migrations folder {}: {e}", dir.display()))
        .map(|entry| entry.expect("a migrations folder entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"));
    let mut migrations: Vec<(i64, String)> = names
        .map(|name| {
            let version = name.split_once('_').map(|(v, _)| v).unwrap_or_default();
            match version.parse() {
                Ok(v) if version.bytes().all(|b| b.is_ascii_digit()) => (v, name),
                _ => panic!("migrations/{name}: name it VERSION_description.sql, VERSION being digits (e.g. 20261209000022_what_it_does.sql)"),
            }
        })
        .collect();
    migrations.sort();
    let mut out = String::from("&[\n");
    for (version, name) in &migrations {
        let path = dir.join(name).canonicalize().expect("a migration's path");
        writeln!(out, "    ({version}, {name:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
    out.push_str("]\n");
    let file = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    std::fs::write(&file, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
}
