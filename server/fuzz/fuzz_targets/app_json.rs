//! app.json: any text parses or is refused, and what parses gives its
//! health checks without a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Ok((app, _)) = paas_server::appjson::parse(text) {
        let _ = app.checks();
        let _ = app.web_health_path();
    }
    let _ = paas_server::appjson::checks_from_json(Some(text));
});
