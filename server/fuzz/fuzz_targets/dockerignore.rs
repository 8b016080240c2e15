//! .dockerignore: any pattern file, then paths matched against it.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: (&str, Vec<&str>)| {
    let (patterns, paths) = input;
    if let Ok(ignore) = paas_server::dockerignore::DockerIgnore::parse(patterns) {
        for path in paths.iter().take(64) {
            let _ = ignore.is_excluded(path);
        }
    }
});
