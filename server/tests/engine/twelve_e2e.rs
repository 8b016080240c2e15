//! The twelve-factor report on the real engine: fixture apps that each
//! depart from one factor, pushed with real `git push`, each showing its
//! finding with the evidence (the build's warning, the deploy's failure,
//! the app's log, `paas 12factor`), and a clean app that shows none.

use crate::harness::*;
use std::path::Path;
use std::time::Duration;

/// `paas 12factor --json`: numeral -> (status, messages).
fn report(p: &Platform, dir: &Path, app: &str) -> std::collections::BTreeMap<String, (String, Vec<String>)> {
    let out: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["12factor", "-a", app, "--json"])).unwrap();
    out["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let messages = f["observations"].as_array().unwrap().iter().map(|o| o["message"].as_str().unwrap().to_owned()).collect();
            (f["numeral"].as_str().unwrap().to_owned(), (f["status"].as_str().unwrap().to_owned(), messages))
        })
        .collect()
}

fn commit_all(p: &Platform, dir: &Path, message: &str) {
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", message]);
}

/// A new app (named from `prefix`) of the Dockerfile fixture with this
/// Procfile, created with its remote; not pushed.
fn app_with(p: &mut Platform, prefix: &str, procfile: &str) -> (tempfile::TempDir, String) {
    let app = unique_app(prefix);
    let repo = dockerfile_repo(p, "main", prefix);
    std::fs::write(repo.path().join("Procfile"), procfile).unwrap();
    commit_all(p, repo.path(), procfile);
    p.create_app(repo.path(), &app);
    (repo, app)
}

#[test]
fn each_departure_shows_its_evidence_and_a_clean_app_none() {
    let mut p = Platform::start_with(&[("PAAS_BOOT_TIMEOUT_SECONDS", "8"), ("PAAS_OBSERVE_EVERY_SECONDS", "1")]);

    // A clean app: no finding at all; what was observed is ok.
    let clean = unique_app("tf-clean");
    let repo = dockerfile_repo(&p, "main", "clean");
    let dir = repo.path();
    p.create_app(dir, &clean);
    p.push_ok(dir, &clean);
    let r = poll(Duration::from_secs(30), "the clean app's dynos observed", || {
        let r = report(&p, dir, &clean);
        (r["VII"].0 == "ok" && r["IX"].0 == "ok").then_some(r)
    });
    let findings: Vec<&String> = r.iter().filter(|(_, (s, _))| s == "finding").map(|(n, _)| n).collect();
    assert!(findings.is_empty(), "a clean app has no finding: {r:?}");
    for ok in ["I", "III", "IV", "V", "VII", "VIII", "IX"] {
        assert_eq!(r[ok].0, "ok", "{ok}: {r:?}");
    }
    assert!(r["VII"].1[0].contains("answered HTTP on $PORT (5000)"), "{r:?}");
    let text_report = p.paas_ok(dir, &["12factor", "-a", &clean]);
    assert!(text_report.contains("VII. Port binding") && text_report.contains("not observed yet"), "{text_report}");

    // IV: a backing service on the dyno's own loopback, named with its key, never its value.
    p.paas_ok(dir, &["config:set", "DATABASE_URL=postgres://app:hunter2@localhost:5432/app", "-a", &clean]);
    let r = report(&p, dir, &clean);
    assert_eq!(r["IV"].0, "finding", "{r:?}");
    assert!(r["IV"].1[0].contains("DATABASE_URL points at localhost") && !r["IV"].1[0].contains("hunter2"), "{r:?}");
    poll(Duration::from_secs(30), "the finding in the app's log", || {
        let log = p.paas_ok(dir, &["logs", "-a", &clean, "-n", "300"]);
        log.contains("paas[12factor]: IV Backing services: DATABASE_URL points at localhost").then_some(())
    });

    // III and II at build time: a committed .env with an AWS-style key,
    // and a package.json with dependencies and no lockfile.
    let key = "AKIAIOSFODNN7EXAMPLE";
    let leaky = unique_app("tf-leaky");
    let repo = dockerfile_repo(&p, "main", "leaky");
    let dir = repo.path();
    std::fs::write(dir.join(".env"), format!("AWS_ACCESS_KEY_ID={key}\nAWS_REGION=eu-west-1\n")).unwrap();
    std::fs::write(dir.join("package.json"), r#"{"name": "leaky", "dependencies": {"express": "^4.19.0"}}"#).unwrap();
    commit_all(&p, dir, "keys and loose dependencies");
    p.create_app(dir, &leaky);
    let said = p.push_ok(dir, &leaky);
    assert!(said.contains("Twelve-factor III (Config): .env looks like a committed secret: an AWS access key"), "{said}");
    assert!(said.contains("Twelve-factor II (Dependencies): package.json has no lockfile"), "{said}");
    assert!(!said.contains(key), "the value is never printed: {said}");
    let r = report(&p, dir, &leaky);
    assert_eq!((r["III"].0.as_str(), r["II"].0.as_str()), ("finding", "finding"), "{r:?}");
    assert!(r.values().all(|(_, m)| m.iter().all(|m| !m.contains(key))));

    // VII: a web process on port 3000: the push fails naming it.
    let (repo, deaf) = app_with(&mut p, "tf-port", "web: mkdir -p /www && exec httpd -f -p 3000 -h /www\n");
    let dir = repo.path();
    let (pushed, said) = p.push(dir, &deaf);
    assert!(!pushed, "{said}");
    assert!(said.contains("web.1 listens on 0.0.0.0:3000, not on $PORT (5000): bind to $PORT") || said.contains("listens on [::]:3000, not on $PORT (5000)"), "{said}");
    let r = report(&p, dir, &deaf);
    assert_eq!(r["VII"].0, "finding", "{r:?}");

    // IX: a web process slower to listen than the boot timeout (R10).
    let (repo, slow) = app_with(&mut p, "tf-slow", "web: sleep 60; exec httpd -f -p $PORT -h /app\n");
    let dir = repo.path();
    let (pushed, said) = p.push(dir, &slow);
    assert!(!pushed && said.contains("did not answer on $PORT in time"), "{said}");
    let r = report(&p, dir, &slow);
    assert_eq!((r["IX"].0.as_str(), r["VII"].0.as_str()), ("finding", "not_observed"), "{r:?}");
    assert!(r["IX"].1[0].contains("web.1 did not come up within the boot timeout") && r["IX"].1[0].contains("R10"), "{r:?}");

    // VI and IX: a worker that daemonizes, a web process that ignores SIGTERM.
    let (repo, rude) = app_with(
        &mut p,
        "tf-rude",
        "web: trap '' TERM; mkdir -p /www && echo rude > /www/index.html; httpd -f -p $PORT -h /www & wait\nworker: mkdir -p /www && httpd -p 8080 -h /www\n",
    );
    let dir = repo.path();
    p.push_ok(dir, &rude);
    p.wait_for_page(&rude, "rude");
    // The scale fails: its worker ends at once.
    let out = p.paas(dir, &["ps:scale", "worker=1", "-a", &rude]);
    assert!(!out.status.success() && format!("{}{}", text(&out.stdout), text(&out.stderr)).contains("worker.1 exited with status 0"), "{}{}", text(&out.stdout), text(&out.stderr));
    let r = poll(Duration::from_secs(30), "the daemonized worker observed", || {
        let r = report(&p, dir, &rude);
        (r["VI"].0 == "finding").then_some(r)
    });
    assert!(r["VI"].1[0].contains("worker.1's main process exited with status 0"), "{r:?}");
    p.paas_ok(dir, &["ps:restart", "web", "-a", &rude]);
    let log = poll(Duration::from_secs(30), "the exit timeout in the log", || {
        let log = p.paas_ok(dir, &["logs", "-a", &rude, "-n", "300"]);
        log.contains("Error R12 (Exit timeout) -> Process failed to exit within 3 seconds of SIGTERM").then_some(log)
    });
    assert!(log.contains("Stopping process with SIGKILL"), "{log}");
    let r = poll(Duration::from_secs(30), "the exit timeout in the report", || {
        let r = report(&p, dir, &rude);
        (r["IX"].0 == "finding").then_some(r)
    });
    assert!(r["IX"].1[0].contains("did not exit within 3 s of SIGTERM"), "{r:?}");

    // XI and VI on disk: a web process that logs to a file and prints
    // nothing, a worker that keeps uploads on its disk and a PID file.
    let (repo, disky) = app_with(
        &mut p,
        "tf-disk",
        "web: mkdir -p /www /app/log && echo disk > /www/index.html && (for i in $(seq 1 24); do head -c 1048576 /dev/zero >> /app/log/production.log; sleep 0.25; done) & exec httpd -f -p $PORT -h /www\n\
         worker: mkdir -p /app/uploads /var/run && echo $$ > /var/run/worker.pid && for i in $(seq 1 24); do head -c 1048576 /dev/zero > /app/uploads/blob-$i; sleep 0.25; done; exec sleep 100000\n",
    );
    let dir = repo.path();
    p.paas_ok(dir, &["config:set", "-a", &disky, "--no-wait", "X=1"]);
    p.push_ok(dir, &disky);
    p.paas_ok(dir, &["ps:scale", "worker=1", "-a", &disky]);
    let r = poll(Duration::from_secs(60), "the disk findings", || {
        let r = report(&p, dir, &disky);
        (r["XI"].0 == "finding" && r["VI"].1.iter().any(|m| m.contains("keeps state")) && r["VI"].1.iter().any(|m| m.contains("PID file"))).then_some(r)
    });
    let xi = &r["XI"].1[0];
    assert!(xi.contains("web.1 writes its log to /app/log/production.log") && xi.contains("printed 0 lines"), "{xi}");
    let vi = r["VI"].1.iter().find(|m| m.contains("keeps state")).unwrap();
    assert!(vi.contains("/app/uploads/blob-"), "{vi}");
    assert!(r["VI"].1.iter().any(|m| m.contains("/var/run/worker.pid")), "{r:?}");
}
