//! The Procfile parser: any text gets types or an error with a line number
//! inside the text, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    match paas_server::procfile::parse(text) {
        Ok(types) => assert!(types.len() <= paas_server::procfile::MAX_TYPES),
        Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count().max(1)),
    }
});
