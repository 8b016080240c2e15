//! Metrics on the real engine: a dyno that allocates memory shows it in
//! `paas ps` and Prometheus's `/metrics` within two samples of having it; a
//! dyno that keeps hitting its limit gets R14 in the app's log; a burst of
//! requests with known statuses (busybox httpd's 200s and 404s, maintenance
//! mode's 503s) shows in `paas metrics` with the right counts.

use crate::harness::*;
use std::time::{Duration, Instant};

/// Seconds between samples in this test.
const EVERY: u64 = 2;

fn summary(p: &Platform, dir: &std::path::Path, app: &str) -> (u64, u64, u64) {
    let m: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["metrics", "-a", app, "--json", "--since", "1h"])).unwrap();
    let s = &m["summary"];
    (s["requests"].as_u64().unwrap(), s["client_errors"].as_u64().unwrap(), s["server_errors"].as_u64().unwrap())
}

#[test]
fn memory_r14_and_request_statuses_show_where_people_look() {
    let mut p = Platform::start_with(&[("PAAS_METRICS_EVERY_SECONDS", "2")]);
    let app = unique_app("metrics");
    let repo = dockerfile_repo(&p, "main", "metrics");
    let dir = repo.path();
    std::fs::write(
        dir.join("Procfile"),
        "web: echo ok > /www/index.html; exec httpd -f -p $PORT -h /www\n\
         hog: x=$(head -c 40000000 /dev/zero | tr '\\0' a); echo allocated; while true; do sleep 1; done\n\
         filler: while true; do dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>/dev/null; sleep 1; done\n",
    )
    .unwrap();
    p.git_ok(dir, &["commit", "-qam", "a hog and a filler"]);
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "ok");
    p.paas_ok(dir, &["ps:scale", "hog=1:128M", "filler=1:64M", "-a", &app]);

    // The hog's memory, once it has it, within two samples (and the time
    // the engine takes to answer them).
    let allocated = poll(Duration::from_secs(60), "the hog to allocate", || {
        p.paas_ok(dir, &["logs", "-a", &app, "-n", "300"]).contains("allocated").then(Instant::now)
    });
    let ps = poll(Duration::from_secs(2 * EVERY + 5), "ps to show the hog's memory", || {
        let dynos: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["ps", "-a", &app, "--json"])).unwrap();
        let hog = dynos.as_array().unwrap().iter().find(|d| d["name"] == "hog.1")?.clone();
        (hog["memory_bytes"].as_u64()? >= 40_000_000).then_some(hog)
    });
    eprintln!("ps showed the hog's memory {:?} after it allocated", allocated.elapsed());
    assert_eq!(ps["memory_limit_bytes"].as_u64(), Some(128 << 20), "{ps}");
    let text = p.paas_ok(dir, &["ps", "-a", &app]);
    assert!(text.contains("Memory") && text.contains("CPU"), "{text}");
    let scraped = p.api().get(p.url("/metrics")).send().unwrap().text().unwrap();
    let line = format!("paas_dyno_memory_bytes{{app=\"{app}\",process=\"hog\",dyno=\"hog.1\"}} ");
    let bytes: u64 = scraped.lines().find_map(|l| l.strip_prefix(&line)).unwrap_or_else(|| panic!("{line} not in:\n{scraped}")).parse().unwrap();
    assert!(bytes >= 40_000_000, "{bytes}");

    // The filler fills its 64M with page cache again and again: R14.
    let log = poll(Duration::from_secs(60), "R14 in the app's log", || {
        let log = p.paas_ok(dir, &["logs", "-a", &app, "-n", "500"]);
        log.contains("Error R14 (Memory quota exceeded): filler.1").then_some(log)
    });
    assert!(log.lines().any(|l| l.contains("Error R14") && l.contains("filler.1 is at its 64M limit")), "{log}");

    // A burst with known statuses, counted on top of what came before.
    let before = summary(&p, dir, &app);
    for _ in 0..6 {
        assert_eq!(p.get(&app, "/").unwrap().0, 200);
    }
    for _ in 0..4 {
        assert_eq!(p.get(&app, "/missing").unwrap().0, 404);
    }
    p.paas_ok(dir, &["maintenance:on", "-a", &app]);
    for _ in 0..2 {
        assert_eq!(p.get(&app, "/").unwrap().0, 503);
    }
    let after = poll(Duration::from_secs(10), "the burst counted", || {
        let s = summary(&p, dir, &app);
        (s.0 >= before.0 + 12).then_some(s)
    });
    assert_eq!((after.0 - before.0, after.1 - before.1, after.2 - before.2), (12, 4, 2));
    let text = p.paas_ok(dir, &["metrics", "-a", &app]);
    assert!(text.contains("hog memory") && text.contains("filler cpu") && text.contains("of 128 MiB"), "{text}");
    p.paas_ok(dir, &["maintenance:off", "-a", &app]);
}
