//! The name validators: what they accept is exactly what the rules allow,
//! and accepting is stable (the accepted text parses again to itself).
#![no_main]
use paas_wire::{AppName, ConfigKey, DynoSize, Hostname, ProcessType};

libfuzzer_sys::fuzz_target!(|s: &str| {
    if let Ok(a) = AppName::parse(s) {
        let b = a.as_str().as_bytes();
        assert!((3..=30).contains(&b.len()) && b[0].is_ascii_lowercase());
        assert!(b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-'));
    }
    if let Ok(k) = ConfigKey::parse(s) {
        assert!(!k.as_str().starts_with("PAAS_") && k.as_str() != "PORT");
        assert!(k.as_str().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
    }
    if let Ok(t) = ProcessType::parse(s) {
        assert!(!t.as_str().is_empty() && t.as_str().len() <= 63);
    }
    if let Ok(h) = Hostname::parse(s) {
        assert_eq!(Hostname::parse(&h.to_string()).map(|x| x.to_string()).ok(), Some(h.to_string()));
        assert!(!s.contains(char::is_whitespace));
    }
    if let Ok(size) = DynoSize::parse(s) {
        assert_eq!(DynoSize::parse(&size.to_string()).map(|x| x.bytes()).ok(), Some(size.bytes()));
    }
    let _ = paas_wire::redact_url(s);
    let _ = paas_server::logs::drain::parse_url(s);
    let _ = paas_server::buildpack::classify(s, &[]);
});
