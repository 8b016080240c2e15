//! What both test binaries share: the built binaries' paths and the log
//! drain receivers ([`receivers`]).

pub mod receivers;

use std::path::PathBuf;

pub fn server_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_paas-server"))
}

pub fn cli_exe() -> PathBuf {
    let p = server_exe().with_file_name("paas");
    assert!(p.exists(), "{} is missing: build the CLI first (`cargo build --workspace`; scripts/test does)", p.display());
    p
}

/// A process's output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The add-on verbs, which need a real engine: the engine binary's
/// `addons_e2e::every_add_on_verb_prints_json_or_says_it_does_not` tries
/// each with `--json`, and the fast binary's conventions test counts them
/// as tried.
pub const ADDON_VERBS: &[&str] = &[
    "addons",
    "addons:create",
    "addons:info",
    "addons:attach",
    "addons:detach",
    "addons:upgrade",
    "addons:destroy",
    "pg:backups",
    "pg:backups:capture",
    "pg:backups:download",
    "pg:backups:restore",
    "pg:backups:schedule",
    "pg:backups:unschedule",
    "redis:backups",
    "redis:backups:capture",
    "redis:backups:download",
    "redis:backups:restore",
    "redis:backups:schedule",
    "redis:backups:unschedule",
    "pg:psql",
    "redis:cli",
];
