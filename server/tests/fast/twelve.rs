//! The twelve-factor report through the real CLI, a real git push, real
//! HTTP and the dashboard, over the fake runtime: the build warns of a
//! committed secret without its value; config on loopback is a finding and
//! an event in the app's log, once; the report, its JSON and the dashboard
//! agree.

use crate::harness::Fast;
use crate::pushes::{dockerfile_repo, git, ok};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_names_each_departure_with_its_evidence_in_the_cli_the_api_and_the_dashboard() {
    let f = Fast::start().await;
    ok(&f.paas(&["apps:create", "tf-fast"], b"").await);
    let out = f.paas(&["12factor", "-a", "tf-fast"], b"").await;
    assert!(ok(&out).contains("no release yet"));

    let repo = dockerfile_repo();
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    std::fs::write(repo.path().join("deploy.sh"), format!("curl -H 'Authorization: token {token}' https://api.github.com\n")).unwrap();
    std::fs::write(repo.path().join("requirements.txt"), "flask\ngunicorn==22.0.0\n").unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "a token and a loose pin"]);
    let (pushed, said) = f.push(repo.path(), "tf-fast").await;
    assert!(pushed, "{said}");
    assert!(said.contains("Twelve-factor III (Config): deploy.sh looks like a committed secret: a GitHub token"), "{said}");
    assert!(said.contains("requirements.txt leaves flask unpinned") && !said.contains(token), "{said}");

    ok(&f.paas(&["config:set", "REDIS_URL=redis://127.0.0.1:6379", "-a", "tf-fast"], b"").await);
    let report: serde_json::Value = f.send(Method::GET, "/apps/tf-fast/twelve-factor", json!({})).await.json().await.unwrap();
    let factor = |n: &str| report["factors"].as_array().unwrap().iter().find(|f| f["numeral"] == n).unwrap().clone();
    assert_eq!(factor("III")["status"], "finding", "{report}");
    assert_eq!(factor("II")["status"], "finding", "{report}");
    assert_eq!(factor("IV")["status"], "finding", "{report}");
    assert_eq!(factor("IV")["observations"][0]["message"], "REDIS_URL points at 127.0.0.1, the dyno's own loopback, where no backing service runs");
    assert_eq!(factor("V")["status"], "ok");
    assert_eq!(factor("X")["status"], "not_observed", "in no pipeline");
    assert!(report.to_string().find(token).is_none());
    let text_report = ok(&f.paas(&["12factor", "-a", "tf-fast"], b"").await);
    assert!(text_report.contains("III. Config") && text_report.contains("FINDING: deploy.sh looks like a committed secret"), "{text_report}");
    assert!(text_report.contains("fix: attach the service"), "{text_report}");

    // Told in the app's log once (recorded beside the pass), though a
    // second config change keeps it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ok(&f.paas(&["logs", "-a", "tf-fast", "-n", "500"], b"").await).contains("IV Backing services: REDIS_URL") {
        assert!(std::time::Instant::now() < deadline, "never told in the log");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ok(&f.paas(&["config:set", "OTHER=1", "-a", "tf-fast"], b"").await);
    let log = ok(&f.paas(&["logs", "-a", "tf-fast", "-n", "500"], b"").await);
    assert_eq!(log.matches("IV Backing services: REDIS_URL points at 127.0.0.1").count(), 1, "{log}");
    assert_eq!(log.matches("III Config: deploy.sh looks like a committed secret").count(), 1, "{log}");

    // The dashboard's app page shows the same report.
    let signed = f.sign_in(&[("token", f.token.as_str())]).await;
    let cookie = Fast::session_cookie(&signed).unwrap();
    let html = Fast::browser().get(f.url("/app/tf-fast")).header("cookie", cookie).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<h2>Twelve factors</h2>") && html.contains("REDIS_URL points at 127.0.0.1"), "{html}");
}
