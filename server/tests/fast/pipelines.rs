//! Pipelines and maintenance mode through the real CLI, real git pushes
//! and real HTTP, over the fake runtime: a staging app's build promoted to
//! production with production's own config and nothing rebuilt, rolled
//! back, the commits between stages, who may promote; and maintenance
//! mode's page, within one request and through a restart.

use crate::harness::Fast;
use crate::pushes::{dockerfile_repo, git, ok};
use crate::shared::text;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_build_is_promoted_to_production_with_its_own_config_and_nothing_rebuilt() {
    let f = Fast::start().await;
    for app in ["pipe-stage", "pipe-prod"] {
        ok(&f.paas(&["apps:create", app], b"").await);
    }
    ok(&f.paas(&["config:set", "WHERE=production", "--no-wait", "-a", "pipe-prod"], b"").await);
    ok(&f.paas(&["config:set", "WHERE=staging", "--no-wait", "-a", "pipe-stage"], b"").await);
    let out = f.paas(&["pipelines:create", "shop", "--json"], b"").await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["name"], "shop");
    ok(&f.paas(&["pipelines:add", "shop", "-a", "pipe-stage", "--stage", "staging"], b"").await);
    ok(&f.paas(&["pipelines:add", "shop", "-a", "pipe-prod", "--stage", "production"], b"").await);
    // Bad input says what to do.
    let out = f.paas(&["pipelines:add", "shop", "-a", "pipe-prod", "--stage", "qa"], b"").await;
    assert!(text(&out.stderr).contains("development, staging or production"), "{}", text(&out.stderr));
    let out = f.paas(&["pipelines:add", "shop", "-a", "pipe-prod", "--stage", "staging"], b"").await;
    assert!(text(&out.stderr).contains("pipelines:remove"), "{}", text(&out.stderr));
    let out = f.paas(&["pipelines:promote", "-a", "pipe-stage"], b"").await;
    assert!(text(&out.stderr).contains("push to it first"), "nothing to promote yet: {}", text(&out.stderr));

    // Push to staging; promote.
    let repo = dockerfile_repo();
    let (pushed, said) = f.push(repo.path(), "pipe-stage").await;
    assert!(pushed, "{said}");
    let builds_before = f.p().store.list_builds(&f.p().store.app(&paas_wire::AppName::parse("pipe-prod").unwrap()).await.unwrap().id).await.unwrap().len();
    let out = f.paas(&["pipelines:promote", "-a", "pipe-stage", "--json"], b"").await;
    let promotion: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(promotion["targets"][0]["app"], "pipe-prod");
    assert_eq!(promotion["targets"][0]["deploy"]["state"], "serving", "{promotion}");
    let stage: Vec<serde_json::Value> = f.send(Method::GET, "/apps/pipe-stage/releases", json!({})).await.json().await.unwrap();
    let prod: Vec<serde_json::Value> = f.send(Method::GET, "/apps/pipe-prod/releases", json!({})).await.json().await.unwrap();
    assert_eq!(prod[0]["image"], stage[0]["image"], "the same image");
    assert_eq!(prod[0]["build_id"], stage[0]["build_id"], "the same build");
    assert_eq!(prod[0]["description"], format!("Promote pipe-stage v{}", stage[0]["version"]));
    let prod_app = f.p().store.app(&paas_wire::AppName::parse("pipe-prod").unwrap()).await.unwrap();
    assert_eq!(f.p().store.list_builds(&prod_app.id).await.unwrap().len(), builds_before, "nothing was built for production");
    let config: serde_json::Value = f.send(Method::GET, "/apps/pipe-prod/config-vars", json!({})).await.json().await.unwrap();
    assert_eq!(config["WHERE"], "production", "production keeps its own config");
    f.wait_for_dynos("pipe-prod", &[&format!("web.1 v{}", prod[0]["version"])]).await;

    // The info and the diff: a new commit on staging is one ahead.
    let info = ok(&f.paas(&["pipelines:info", "shop"], b"").await);
    assert!(info.contains("staging") && info.contains("production") && info.contains("pipe-prod"), "{info}");
    std::fs::write(repo.path().join("NEW"), "x").unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "the second change"]);
    let (pushed, said) = f.push(repo.path(), "pipe-stage").await;
    assert!(pushed, "{said}");
    let diff = ok(&f.paas(&["pipelines:diff", "-a", "pipe-stage"], b"").await);
    assert!(diff.contains("ahead of pipe-prod by 1 commit") && diff.contains("the second change"), "{diff}");

    // The twelve-factor report: the stages run different builds (X).
    let parity = |report: serde_json::Value| report["factors"].as_array().unwrap().iter().find(|f| f["numeral"] == "X").unwrap().clone();
    let x = parity(f.send(Method::GET, "/apps/pipe-stage/twelve-factor", json!({})).await.json().await.unwrap());
    assert_eq!(x["status"], "finding", "{x}");
    assert!(x["observations"][0]["message"].as_str().unwrap().contains("pipe-prod (production) runs build"), "{x}");
    // Told in the log of the app whose deploy parted them (recorded beside the pass).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = ok(&f.paas(&["logs", "-a", "pipe-stage", "-n", "500"], b"").await);
        if log.contains("paas[12factor]: X Dev/prod parity: pipe-stage (staging) runs build") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Promote again, then roll production back: a promoted release rolls back like any other.
    ok(&f.paas(&["pipelines:promote", "-a", "pipe-stage", "--to", "pipe-prod"], b"").await);
    let x = parity(f.send(Method::GET, "/apps/pipe-prod/twelve-factor", json!({})).await.json().await.unwrap());
    assert_eq!(x["status"], "ok", "every stage runs the same build: {x}");
    let diff = ok(&f.paas(&["pipelines:diff", "-a", "pipe-stage"], b"").await);
    assert!(diff.contains("pipe-prod is up to date"), "{diff}");
    let back = prod[0]["version"].as_i64().unwrap();
    ok(&f.paas(&["releases:rollback", &format!("v{back}"), "-a", "pipe-prod"], b"").await);
    let now: Vec<serde_json::Value> = f.send(Method::GET, "/apps/pipe-prod/releases", json!({})).await.json().await.unwrap();
    assert_eq!(now[0]["image"], prod[0]["image"]);
    assert_eq!(now[0]["description"], format!("Rollback to v{back}"));

    // Who may promote: a developer of staging alone may not touch production.
    ok(&f.paas(&["users:create", "stager@example.com"], b"a long enough password\n").await);
    ok(&f.paas(&["access:add", "stager@example.com", "--role", "developer", "-a", "pipe-stage"], b"").await);
    let token = f.token_of("stager@example.com", "a long enough password").await;
    let r = f.http().post(f.url("/pipeline-promotions")).bearer_auth(&token).json(&json!({"source": "pipe-stage"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "production does not exist for them");
    let seen: serde_json::Value = f.http().get(f.url("/pipelines/shop")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(seen["apps"].as_array().unwrap().len(), 1, "they see the pipeline, and only the app they have a role on: {seen}");
    ok(&f.paas(&["access:add", "stager@example.com", "--role", "viewer", "-a", "pipe-prod"], b"").await);
    let r = f.http().post(f.url("/pipeline-promotions")).bearer_auth(&token).json(&json!({"source": "pipe-stage"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403, "a viewer of production may not promote to it");

    // Out of the pipeline; the pipeline goes, the apps stay.
    ok(&f.paas(&["pipelines:remove", "-a", "pipe-prod"], b"").await);
    ok(&f.paas(&["pipelines:destroy", "shop"], b"").await);
    let out = f.paas(&["pipelines:info", "shop"], b"").await;
    assert_eq!(out.status.code(), Some(4));
    ok(&f.paas(&["apps:info", "-a", "pipe-prod"], b"").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_mode_answers_with_a_page_at_once_and_survives_a_restart() {
    let mut f = Fast::start().await;
    let app = f.app("maint").await;
    f.deploy(&app, "img-maint").await;
    assert_eq!(f.page("maint").await.0, 200);
    ok(&f.paas(&["maintenance:on", "-a", "maint"], b"").await);
    let (status, body) = f.page("maint").await;
    assert_eq!(status, 503, "the very next request");
    assert!(body.contains("Offline for maintenance"), "{body}");
    assert_eq!(f.running_names("maint").await.len(), 1, "the dynos keep running");
    assert!(ok(&f.paas(&["maintenance", "-a", "maint"], b"").await).contains("on"));

    // The app's own page, from its config.
    ok(&f.paas(&["config:set", "MAINTENANCE_PAGE_URL=https://status.example.com/down", "-a", "maint"], b"").await);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, body) = f.page("maint").await;
        if body.contains("<iframe src=\"https://status.example.com/down\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the app's own page never showed: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A restart keeps it; off serves again.
    f.restart().await;
    assert_eq!(f.page("maint").await.0, 503, "still on after a restart");
    ok(&f.paas(&["maintenance:off", "-a", "maint"], b"").await);
    // Served again (once the restarted server has adopted the dyno).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.page("maint").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = ok(&f.paas(&["logs", "-a", "maint", "-n", "200"], b"").await);
    assert!(log.contains("Maintenance mode on") && log.contains("Maintenance mode off"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_mode_shows_the_page_the_build_holds_unless_a_url_is_set() {
    let f = Fast::start().await;
    ok(&f.paas(&["apps:create", "maint-page"], b"").await);
    let repo = dockerfile_repo();
    let html = "<!doctype html><title>Back soon</title><h1>We are moving the database</h1>\n";
    std::fs::write(repo.path().join("maintenance.html"), html).unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "our own maintenance page"]);
    let (pushed, said) = f.push(repo.path(), "maint-page").await;
    assert!(pushed && said.contains("maintenance.html: the page shown in maintenance mode"), "{said}");
    assert_eq!(f.page("maint-page").await.0, 200);
    ok(&f.paas(&["maintenance:on", "-a", "maint-page"], b"").await);
    assert_eq!(f.page("maint-page").await, (503, html.to_owned()), "the build's page, on the very next request");
    // A URL in the config wins over the file.
    ok(&f.paas(&["config:set", "MAINTENANCE_PAGE_URL=https://status.example.com/", "-a", "maint-page"], b"").await);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f.page("maint-page").await.1.contains("<iframe src=\"https://status.example.com/\"") {
        assert!(std::time::Instant::now() < deadline, "the URL's page never showed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ok(&f.paas(&["config:unset", "MAINTENANCE_PAGE_URL", "-a", "maint-page"], b"").await);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.page("maint-page").await.1 != html {
        assert!(std::time::Instant::now() < deadline, "the build's page never came back");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ok(&f.paas(&["maintenance:off", "-a", "maint-page"], b"").await);
    assert_eq!(f.page("maint-page").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_output_gives_the_build_and_the_release_phase_each_release_ran() {
    let f = Fast::start().await;
    for app in ["relout-stage", "relout-prod"] {
        ok(&f.paas(&["apps:create", app], b"").await);
    }
    let repo = dockerfile_repo();
    std::fs::write(repo.path().join("Procfile"), "web: serve\nrelease: ./migrate --to-latest\n").unwrap();
    git(repo.path(), &["commit", "-qam", "a release phase"]);
    let (pushed, said) = f.push(repo.path(), "relout-stage").await;
    assert!(pushed, "{said}");
    let v = |releases: &Vec<serde_json::Value>| format!("v{}", releases[0]["version"]);
    let stage: Vec<serde_json::Value> = f.send(Method::GET, "/apps/relout-stage/releases", json!({})).await.json().await.unwrap();
    let said = ok(&f.paas(&["releases:output", &v(&stage), "-a", "relout-stage"], b"").await);
    assert!(said.contains("Building relout-stage from commit"), "the build's output: {said}");
    assert!(said.contains("Running release command: ./migrate --to-latest") && said.contains("fake task: /bin/sh -c ./migrate --to-latest"), "the release phase's: {said}");
    let out = f.paas(&["releases:output", &v(&stage), "-a", "relout-stage", "--json"], b"").await;
    let o: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let phase = o["release_output"].as_str().unwrap();
    assert!(phase.contains("./migrate") && !phase.contains("Building"), "the phase's output alone: {phase}");

    // Promoted: the release phase ran again, in production; the build is staging's.
    ok(&f.paas(&["pipelines:create", "relout"], b"").await);
    ok(&f.paas(&["pipelines:add", "relout", "-a", "relout-stage", "--stage", "staging"], b"").await);
    ok(&f.paas(&["pipelines:add", "relout", "-a", "relout-prod", "--stage", "production"], b"").await);
    ok(&f.paas(&["pipelines:promote", "-a", "relout-stage"], b"").await);
    let prod: Vec<serde_json::Value> = f.send(Method::GET, "/apps/relout-prod/releases", json!({})).await.json().await.unwrap();
    let said = ok(&f.paas(&["releases:output", &v(&prod), "-a", "relout-prod"], b"").await);
    assert!(said.contains("runs a build of relout-stage, promoted") && said.contains("builds:output"), "{said}");
    assert!(said.contains("Running release command: ./migrate --to-latest"), "{said}");
    // A release with no release phase (none before the first build), and one that does not exist.
    ok(&f.paas(&["config:set", "K=v", "--no-wait", "-a", "relout-prod"], b"").await);
    let out = f.paas(&["releases:output", "v99", "-a", "relout-prod"], b"").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    ok(&f.paas(&["pipelines:destroy", "relout"], b"").await);
}
