//! Build output split into lines, however it is chunked: no line longer
//! than the cap (plus its note), and never more held than one line; and a
//! buildpack's bin/release YAML, parsed or refused.
#![no_main]
use paas_server::runtime::{LineSplitter, MAX_OUTPUT_LINE};

libfuzzer_sys::fuzz_target!(|input: (Vec<&[u8]>, &str)| {
    let (chunks, yaml) = input;
    let mut lines = LineSplitter::default();
    for chunk in &chunks {
        for line in lines.push(chunk) {
            assert!(line.len() <= MAX_OUTPUT_LINE + 64, "{}", line.len());
        }
    }
    if let Some(line) = lines.finish() {
        assert!(line.len() <= MAX_OUTPUT_LINE + 64);
    }
    let _ = paas_server::buildpack::parse_release_yaml(yaml);
});
