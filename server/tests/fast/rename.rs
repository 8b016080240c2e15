//! `paas apps:rename` through the real CLI, a real git repo, real pushes,
//! real HTTP and a real syslog drain, over the fake runtime: the new name
//! serves (its router host, custom domain, git remote, log history and
//! drain follow it) and the old one answers nothing.

use crate::harness::Fast;
use crate::logs::wait_until;
use crate::pushes::{dockerfile_repo, git, ok};
use crate::shared::receivers::syslog_receiver;
use crate::shared::text;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

impl Fast {
    /// GET / through the router until it answers `status` (bounded).
    async fn page_becomes(&self, app: &str, status: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (now, body) = self.page(app).await;
            if now == status {
                return body;
            }
            assert!(Instant::now() < deadline, "{app} answers {now}, not {status}: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_app_serves_under_its_new_name_and_the_old_name_answers_nothing() {
    let f = Fast::start().await;
    let repo = dockerfile_repo();
    let in_repo = |args: &[&str]| {
        let mut c = f.cli(args);
        c.current_dir(repo.path());
        Fast::finish(c, b"")
    };
    ok(&in_repo(&["apps:create", "ren-old"]).await);
    let (pushed, said) = f.push(repo.path(), "ren-old").await;
    assert!(pushed, "{said}");
    f.page_becomes("ren-old", 200).await;
    let id = f.p().store.app(&paas_wire::AppName::parse("ren-old").unwrap()).await.unwrap().id;
    ok(&f.paas(&["domains:add", "www.ren.test", "-a", "ren-old"], b"").await);
    ok(&f.paas(&["config:set", "NOTE=kept", "-a", "ren-old"], b"").await);
    let (syslog_port, syslog) = syslog_receiver().await;
    ok(&f.paas(&["drains:add", &format!("syslog://127.0.0.1:{syslog_port}"), "-a", "ren-old"], b"").await);
    f.fake.write_output("ren-old", "web.1", "said before the rename", false);
    wait_until("the line before", || syslog.lock().unwrap().iter().any(|m| m.contains("said before the rename"))).await;
    let releases: Vec<serde_json::Value> = f.send(Method::GET, "/apps/ren-old/releases", json!({})).await.json().await.unwrap();

    // Bad input says what to do, and changes nothing.
    ok(&f.paas(&["apps:create", "ren-taken"], b"").await);
    let out = f.paas(&["apps:rename", "ren-taken", "-a", "ren-old"], b"").await;
    assert!(!out.status.success() && text(&out.stderr).contains("already exists: choose another name"), "{}", text(&out.stderr));
    let out = f.paas(&["apps:rename", "Not_A_Name", "-a", "ren-old"], b"").await;
    assert!(!out.status.success() && text(&out.stderr).contains("Not_A_Name"), "{}", text(&out.stderr));
    let r = f.send(Method::PATCH, "/apps/ren-old", json!({ "name": "ren-old" })).await;
    assert_eq!(r.status().as_u16(), 422, "already its name");
    assert_eq!(f.page("ren-old").await.0, 200);

    // Renamed in the repo: its remote follows.
    let said = ok(&in_repo(&["apps:rename", "ren-new", "-a", "ren-old"]).await);
    assert!(said.contains("Renaming ren-old to ren-new... done") && said.contains("Git remote paas updated"), "{said}");
    let remote = text(&git(repo.path(), &["remote", "get-url", "paas"]).stdout);
    assert!(remote.trim().ends_with("/ren-new.git"), "{remote}");

    // The new name serves from its own dynos; the old answers nothing.
    assert!(f.page_becomes("ren-new", 200).await.starts_with("ren-new v"), "dynos of the new name");
    let (status, body) = f.page("ren-old").await;
    assert_eq!(status, 404, "{body}");
    f.wait_for_dynos("ren-old", &[]).await;
    let r = f.http().get(format!("http://{}/", f.p().router_addr)).header("Host", "www.ren.test").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "its domain follows");
    assert!(r.text().await.unwrap().starts_with("ren-new v"));
    assert_eq!(f.send(Method::GET, "/apps/ren-old", json!({})).await.status().as_u16(), 404);
    let app: serde_json::Value = f.send(Method::GET, "/apps/ren-new", json!({})).await.json().await.unwrap();
    assert_eq!(app["id"], id.as_str(), "the same app");
    let config: serde_json::Value = f.send(Method::GET, "/apps/ren-new/config-vars", json!({})).await.json().await.unwrap();
    assert_eq!(config["NOTE"], "kept");
    let after: Vec<serde_json::Value> = f.send(Method::GET, "/apps/ren-new/releases", json!({})).await.json().await.unwrap();
    assert_eq!(after[0]["id"], releases[0]["id"], "no release is made");

    // Its log: the history before, the rename, and what its dynos say now (to the drain too).
    let log = ok(&f.paas(&["logs", "-a", "ren-new", "-n", "500"], b"").await);
    assert!(log.contains("said before the rename") && log.contains("Renamed from ren-old to ren-new"), "{log}");
    f.fake.write_output("ren-new", "web.1", "said after the rename", false);
    wait_until("the line after", || syslog.lock().unwrap().iter().any(|m| m.contains("said after the rename") && m.contains(" ren-new "))).await;

    // The repo moved with it: a push to the new name builds on the old history.
    assert!(f.settings.repo_path("ren-new").exists() && !f.settings.repo_path("ren-old").exists());
    std::fs::write(repo.path().join("NEW"), "x").unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "after the rename"]);
    let (pushed, said) = f.push(repo.path(), "ren-new").await;
    assert!(pushed, "{said}");
    let (pushed, said) = f.push(repo.path(), "ren-old").await;
    assert!(!pushed, "the old name takes no push: {said}");

    // The old name is free: an app made with it starts with nothing of the renamed one's.
    ok(&f.paas(&["apps:create", "ren-old"], b"").await);
    let log = ok(&f.paas(&["logs", "-a", "ren-old", "-n", "500"], b"").await);
    assert!(!log.contains("said before the rename"), "{log}");
}
