//! The pre-receive hook's reading of the ref lines git hands it (what a
//! push asked to update): a commit is taken only as 40 hex digits of a
//! deployable branch.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Ok(commit) = paas_server::hook::deployable_commit(&lines) {
        assert!(commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()), "{commit:?}");
    }
});
