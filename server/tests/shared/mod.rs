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
