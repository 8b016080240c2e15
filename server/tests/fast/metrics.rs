//! Metrics over the fake runtime with real HTTP and the real CLI: a burst
//! of requests with known statuses (dyno answers, then maintenance mode's
//! 503s) shows in `paas metrics` (text and JSON), in Prometheus's
//! `/metrics` (behind a platform admin's token, and on a listener of its
//! own), on the dashboard as SVG, and again after a restart and a rename.

use crate::harness::Fast;
use crate::pushes::ok;
use std::net::SocketAddr;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_shows_with_its_statuses_everywhere_and_survives_a_restart() {
    let mut f = Fast::start_with(|s| s.metrics.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)))).await;
    let app = f.app("metrics-fast").await;
    f.deploy(&app, "img:metrics").await;
    f.wait_for_dynos("metrics-fast", &["web.1 v1"]).await;
    for _ in 0..7 {
        assert_eq!(f.page("metrics-fast").await.0, 200);
    }
    ok(&f.paas(&["maintenance:on", "-a", "metrics-fast"], b"").await);
    for _ in 0..3 {
        assert_eq!(f.page("metrics-fast").await.0, 503);
    }

    let json: serde_json::Value = serde_json::from_str(&ok(&f.paas(&["metrics", "-a", "metrics-fast", "--json", "--since", "30m"], b"").await)).unwrap();
    let s = &json["summary"];
    assert_eq!((s["requests"].as_u64(), s["client_errors"].as_u64(), s["server_errors"].as_u64()), (Some(10), Some(0), Some(3)), "{json}");
    assert!(s["p50_ms"].as_f64().is_some() && s["p99_ms"].as_f64().is_some(), "{json}");
    let counted: u64 = json["minutes"].as_array().unwrap().iter().map(|m| m["requests"].as_u64().unwrap()).sum();
    assert_eq!(counted, 10, "the minutes add up to the summary: {json}");
    let text = ok(&f.paas(&["metrics", "-a", "metrics-fast"], b"").await);
    assert!(text.contains("requests 10   4xx 0   5xx 3") && text.contains("requests/min"), "{text}");

    // Bad windows: the CLI and the API say what to give.
    let out = f.paas(&["metrics", "-a", "metrics-fast", "--since", "2d"], b"").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("from 1s to 24h"), "{out:?}");
    let r = f.send(reqwest::Method::GET, "/apps/metrics-fast/metrics?since=soon", serde_json::json!({})).await;
    assert_eq!(r.status(), 400);

    // Prometheus: a platform admin's token on the API, nothing on its own listener.
    let want = [
        "paas_router_requests_total{app=\"metrics-fast\",status=\"2xx\"} 7",
        "paas_router_requests_total{app=\"metrics-fast\",status=\"5xx\"} 3",
        "paas_router_service_seconds_count{app=\"metrics-fast\"} 10",
    ];
    let anonymous = f.http().get(f.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let scraped = f.http().get(f.url("/metrics")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let scraped = scraped.text().await.unwrap();
    let own = f.p().metrics_addr.expect("the metrics listener is bound");
    let listener = f.http().get(format!("http://{own}/metrics")).send().await.unwrap().text().await.unwrap();
    for line in want {
        assert!(scraped.lines().any(|l| l == line), "{line} not in:\n{scraped}");
        assert!(listener.lines().any(|l| l == line), "{line} not on the listener:\n{listener}");
    }

    // The dashboard draws them, with no script.
    let signed = f.sign_in(&[("token", f.token.as_str())]).await;
    let cookie = Fast::session_cookie(&signed).unwrap();
    let html = Fast::browser().get(f.url("/app/metrics-fast")).header("cookie", cookie).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<h2>Metrics</h2>") && html.contains("10 requests, 0 4xx, 3 5xx"), "{html}");
    assert!(html.matches("<svg class=\"chart\"").count() >= 2 && html.contains("<title>Requests per minute, and 5xx</title>"), "{html}");

    // A restart keeps the minutes (written to the store as the server stops).
    f.restart().await;
    let json: serde_json::Value = serde_json::from_str(&ok(&f.paas(&["metrics", "-a", "metrics-fast", "--json"], b"").await)).unwrap();
    assert_eq!(json["summary"]["requests"].as_u64(), Some(10), "{json}");
    assert_eq!(json["summary"]["server_errors"].as_u64(), Some(3), "{json}");

    // A renamed app keeps its minutes under its new name.
    ok(&f.paas(&["apps:rename", "metrics-renamed", "-a", "metrics-fast"], b"").await);
    let json: serde_json::Value = serde_json::from_str(&ok(&f.paas(&["metrics", "-a", "metrics-renamed", "--json"], b"").await)).unwrap();
    assert_eq!(json["summary"]["requests"].as_u64(), Some(10), "{json}");
}
