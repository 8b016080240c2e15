//! The router's handling of a request head: any headers a client sends
//! are rewritten for the dyno (hop-by-hop dropped, forwarding headers set,
//! a request id kept only when valid), and any Host finds an app or none;
//! an app found by a wildcard is only ever found for a valid host name.
#![no_main]
use paas_server::router::{forward_headers, DomainTable, Peer};

libfuzzer_sys::fuzz_target!(|input: (Vec<(&[u8], &[u8])>, &str)| {
    let (pairs, host) = input;
    let mut headers = http::HeaderMap::new();
    for (name, value) in pairs.into_iter().take(64) {
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name), http::HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let peer = Peer::new(std::net::IpAddr::from([192, 0, 2, 7]));
    let host_header = http::HeaderValue::from_str(host).unwrap_or(http::HeaderValue::from_static(""));
    let id = forward_headers(&mut headers, &peer, &[], host_header, http::HeaderValue::from(8080u16));
    assert!(!id.is_empty());
    assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
    for hop in ["connection", "transfer-encoding", "upgrade", "forwarded", "x-real-ip"] {
        assert!(!headers.contains_key(hop), "{hop}");
    }
    let domains = DomainTable::default();
    domains.set(&paas_wire::Hostname::parse("*.blog.test").unwrap(), "blog");
    if let Some(app) = domains.app_for_host(host, "localhost") {
        assert!(paas_wire::AppName::parse(&app).is_ok(), "{app}");
        let bare = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_end_matches('.');
        assert!(!bare.contains(char::is_whitespace) && !bare.contains('"'), "{host:?}");
    }
});
