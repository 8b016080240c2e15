//! Fast tests of the release service's and the scheduler's decisions: a
//! real platform in this process (store, release service, scheduler, API
//! and router on port 0, real HTTP) over the fake runtime, whose web dynos
//! are real loopback listeners. Milliseconds each; the end-to-end tests in
//! `e2e.rs` on the real Docker engine stay the proof that it works.
//!
//! The concurrency test runs on SQLite and on PostgreSQL; the PostgreSQL
//! run needs `PAAS_TEST_POSTGRES_URL` (scripts/test sets it) and is skipped
//! with a message without it.

use paas_server::runtime::Endpoint;
use crate::harness::Fast;
use crate::pushes::{dockerfile_repo, git};
use paas_server::release::ReleaseError;
use paas_server::runtime::{Placement, Runtime};
use paas_server::store::AppRow;
use paas_wire::{ChangeResult, DeployState};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_serves_before_converge_returns() {
    let f = Fast::start().await;
    let app = f.app("fast-deploy").await;
    let d = f.deploy(&app, "img-a").await;
    assert_eq!(d.state, DeployState::Serving, "{d:?}");
    // (The periodic pass may have started it first: either pass routes it.)
    assert_eq!(f.running_names("fast-deploy").await, ["web.1 v1"]);
    // Routed before converge returned: the very next request is served.
    let (status, body) = f.page("fast-deploy").await;
    assert_eq!(status, 200);
    assert!(body.contains("fast-deploy v1 web"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_with_wait_returns_when_the_new_value_serves() {
    let f = Fast::start().await;
    let app = f.app("fast-config").await;
    f.deploy(&app, "img-a").await;
    let r = f.send(reqwest::Method::PATCH, "/apps/fast-config/config-vars?wait=10", json!({"GREETING": "hi"})).await;
    assert_eq!(r.status(), 200);
    let change: ChangeResult = r.json().await.unwrap();
    assert_eq!(change.deploy.state, DeployState::Serving, "{:?}", change.deploy);
    assert_eq!(change.release.as_ref().unwrap().version, 2);
    assert_eq!(change.config_vars.unwrap()["GREETING"], "hi");
    // No window where the old value is still served.
    let (_, body) = f.page("fast-config").await;
    assert!(body.contains("GREETING=hi") && body.contains(" v2 "), "{body}");

    // Without wait: Heroku's shape, the release's version in a header.
    let r = f.send(reqwest::Method::PATCH, "/apps/fast-config/config-vars", json!({"OTHER": "x"})).await;
    assert_eq!(r.headers()["paas-release"], "3");
    let vars: BTreeMap<String, String> = r.json().await.unwrap();
    assert_eq!(vars.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_a_new_release_with_the_old_build_and_config() {
    let f = Fast::start().await;
    let app = f.app("fast-rollback").await;
    let rel = &f.p().releases;
    f.deploy(&app, "img-a").await;
    let mut patch = BTreeMap::new();
    patch.insert("A".to_owned(), Some("1".to_owned()));
    rel.set_config(&app, patch).await.unwrap();
    f.deploy(&app, "img-b").await;

    let r = rel.rollback(&app, "v1").await.unwrap();
    assert_eq!((r.version, r.image.as_deref(), r.description.as_str()), (4, Some("img-a"), "Rollback to v1"));
    let d = rel.converge(&app, Some(4), Some(Duration::from_secs(10))).await;
    assert_eq!(d.state, DeployState::Serving, "{d:?}");
    f.wait_for_dynos("fast-rollback", &["web.1 v4"]).await;
    let env = f.fake.env_of("fast-rollback", "web.1").unwrap();
    assert_eq!(env.get("PAAS_RELEASE").map(String::as_str), Some("v4"));
    assert!(!env.contains_key("A"), "v1's config had no A: {env:?}");

    // Rolling back to the current release, or to a missing one, is refused.
    assert!(matches!(rel.rollback(&app, "v4").await, Err(ReleaseError::Invalid(paas_wire::ErrorId::NotEarlier, _))));
    assert!(matches!(rel.rollback(&app, "v99").await, Err(ReleaseError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_to_a_release_without_a_build_is_refused_and_nothing_stops() {
    let f = Fast::start().await;
    let app = f.app("fast-nobuild").await;
    // v1: config set before the first push, so it has no image.
    let r = f.send(reqwest::Method::PATCH, "/apps/fast-nobuild/config-vars", json!({"A": "1"})).await;
    assert_eq!(r.status(), 200);
    f.deploy(&app, "img-a").await;
    let r = f.send(reqwest::Method::POST, "/apps/fast-nobuild/releases?wait=5", json!({"release": "v1"})).await;
    assert_eq!(r.status(), 422);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["id"], "no_build");
    assert!(e["message"].as_str().unwrap().contains("push first"), "{e}");
    // Nothing was appended and the dyno still serves.
    assert_eq!(f.p().store.current_release(&app.id).await.unwrap().unwrap().version, 2);
    assert_eq!(f.page("fast-nobuild").await.0, 200);
    // Scaling before any build says to push first.
    let bare = f.app("fast-bare").await;
    let err = f.p().releases.scale(&bare, &[scale_of("web", Some(2), None)]).await.unwrap_err();
    assert!(err.to_string().contains("git push paas main"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_web_dynos_that_never_answer_leave_the_old_ones_serving() {
    let f = Fast::start().await;
    let app = f.app("fast-hold").await;
    f.deploy(&app, "img-good").await;
    f.fake.break_image("img-broken");
    let d = f.deploy(&app, "img-broken").await;
    assert_eq!(d.state, DeployState::Failed, "{d:?}");
    assert!(d.previous_serving, "{d:?}");
    assert!(d.message.contains("v2 was made") && d.message.contains("previous release's web dynos keep serving"), "{}", d.message);
    let (status, body) = f.page("fast-hold").await;
    assert_eq!(status, 200);
    assert!(body.contains("fast-hold v1 web"), "the old dyno serves: {body}");
    // v2 is marked failed, so v1 stays desired: v2's dyno goes, v1's stays,
    // and later passes do not try v2 again.
    f.wait_for_dynos("fast-hold", &["web.1 v1"]).await;
    let statuses = f.p().store.release_statuses(&app.id).await.unwrap();
    let v2 = f.p().store.release_by_version(&app.id, 2).await.unwrap();
    assert_eq!(statuses[&v2.id].0, "failed");
    let started = f.fake.started_count();
    f.p().releases.converge(&app, None, Some(Duration::from_secs(10))).await;
    assert_eq!(f.fake.started_count(), started, "the failed release is not retried");

    // Scaling acts on the release that runs (v1), not on the failed v2.
    f.p().releases.scale(&app, &[scale_of("web", Some(2), None)]).await.unwrap();
    let d = f.p().releases.converge_current(&app, 1, Some(Duration::from_secs(10))).await;
    assert_eq!(d.state, DeployState::Serving, "{d:?}");
    f.wait_for_dynos("fast-hold", &["web.1 v1", "web.2 v1"]).await;

    // The next good release takes over, and the held and broken dynos go.
    let d = f.deploy(&app, "img-fixed").await;
    assert_eq!(d.state, DeployState::Serving, "{d:?}");
    assert!(f.page("fast-hold").await.1.contains("fast-hold v3 web"));
    f.wait_for_dynos("fast-hold", &["web.1 v3", "web.2 v3"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_release_phase_makes_no_release() {
    let f = Fast::start().await;
    let app = f.app("fast-phase").await;
    f.deploy(&app, "img-a").await;
    f.fake.fail_tasks_containing("migrate");
    let mut built = Fast::built("img-b");
    built.process_types.insert("release".into(), "./migrate".into());
    let out = paas_server::output::Output::collect();
    let err = f.p().releases.deploy(&app, built, &out).await.unwrap_err();
    assert!(matches!(err, ReleaseError::ReleasePhase(_)), "{err}");
    assert!(err.to_string().contains("no release was made"), "{err}");
    assert_eq!(f.p().store.list_releases(&app.id).await.unwrap().len(), 1);
    assert!(f.fake.tasks().iter().any(|t| t.image == "img-b"), "the release command ran in the new image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_and_down() {
    let f = Fast::start().await;
    let app = f.app("fast-scale").await;
    f.deploy(&app, "img-a").await;
    let r = f.send(reqwest::Method::PATCH, "/apps/fast-scale/formation?wait=10", json!({"updates": [{"type": "web", "quantity": 3}, {"type": "worker", "quantity": 1}]})).await;
    assert_eq!(r.status(), 200);
    let change: ChangeResult = r.json().await.unwrap();
    assert_eq!(change.deploy.state, DeployState::Serving, "{:?}", change.deploy);
    assert_eq!(f.p().routes.get("fast-scale").len(), 3);
    f.wait_for_dynos("fast-scale", &["web.1 v1", "web.2 v1", "web.3 v1", "worker.1 v1"]).await;

    f.p().releases.scale(&app, &[scale_of("web", Some(1), None), scale_of("worker", Some(0), None)]).await.unwrap();
    f.p().releases.converge(&app, Some(1), Some(Duration::from_secs(10))).await;
    f.wait_for_dynos("fast-scale", &["web.1 v1"]).await;
    assert_eq!(f.p().routes.get("fast-scale").len(), 1);

    for (updates, want) in [
        (json!([{"type": "web", "quantity": 101}]), "out of range"),
        (json!([{"type": "nope", "quantity": 1}]), "no process type nope"),
        (json!([{"type": "web", "size": "3T"}]), "dyno size \"3T\" is invalid"),
        (json!([{"type": "web"}]), "no updates given"),
        (json!([]), "no updates given"),
    ] {
        let r = f.send(reqwest::Method::PATCH, "/apps/fast-scale/formation", json!({ "updates": updates })).await;
        assert!(r.status().is_client_error(), "{updates}");
        let e: serde_json::Value = r.json().await.unwrap();
        assert!(e["message"].as_str().unwrap().contains(want), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_adopts_its_dynos() {
    let mut f = Fast::start().await;
    let app = f.app("fast-adopt").await;
    f.deploy(&app, "img-a").await;
    let started = f.fake.started_count();
    f.restart().await;
    assert_eq!(f.fake.started_count(), started, "no dyno was started again");
    assert_eq!(f.running_names("fast-adopt").await, ["web.1 v1"]);
    let (status, body) = f.page("fast-adopt").await;
    assert_eq!(status, 200, "the new server routes to the adopted dyno: {body}");
}

/// Eight concurrent config changes of different keys and a push of the same
/// app, over real HTTP (the push through the release service, as the git
/// receiver calls it): every key lands and versions count up with no gap.
async fn concurrent_changes_all_land(f: Fast) {
    let app = f.app("fast-race").await;
    f.deploy(&app, "img-a").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (http, url, token) = (f.http(), f.url("/apps/fast-race/config-vars?wait=10"), f.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = http.patch(url).bearer_auth(token).json(&json!({ format!("KEY_{i}"): i.to_string() })).send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }));
    }
    let releases = f.p().releases.clone();
    let pushed = app.clone();
    tasks.push(tokio::spawn(async move {
        let out = paas_server::output::Output::collect();
        releases.deploy(&pushed, Fast::built("img-pushed"), &out).await.unwrap();
    }));
    for t in tasks {
        t.await.unwrap();
    }
    let all = f.p().store.list_releases(&app.id).await.unwrap();
    let versions: Vec<i64> = all.iter().rev().map(|r| r.version).collect();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>(), "strictly increasing, no gap, no duplicate");
    let current = &all[0];
    let config = f.p().releases.config(&app).await.unwrap();
    for i in 0..8 {
        assert_eq!(config.get(&format!("KEY_{i}")), Some(&i.to_string()), "KEY_{i} was lost: {config:?}");
    }
    assert!(all.iter().any(|r| r.image.as_deref() == Some("img-pushed")), "the push landed");
    assert!(current.image.is_some());
    let d = f.p().releases.converge(&app, Some(current.version), Some(Duration::from_secs(10))).await;
    assert_eq!(d.state, DeployState::Serving, "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_all_land_on_sqlite() {
    concurrent_changes_all_land(Fast::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_all_land_on_postgres() {
    let Some(url) = postgres_database().await else { return };
    concurrent_changes_all_land(Fast::start_on(Some(url)).await).await;
}

/// A new database on the test PostgreSQL server, or None (with a message)
/// when none is named.
async fn postgres_database() -> Option<String> {
    let admin = paas_server::settings::test_postgres_url()?;
    Some(paas_server::store::create_test_database(&admin).await.unwrap())
}

fn scale_of(t: &str, quantity: Option<i64>, size: Option<&str>) -> paas_wire::FormationChange {
    paas_wire::FormationChange { process_type: t.into(), quantity, size: size.map(str::to_owned) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_sets_memory_limits_and_replaces_dynos_new_first() {
    let f = Fast::start().await;
    let app = f.app("fast-resize").await;
    f.deploy(&app, "img-a").await;
    let before = f.fake.list_dynos(Some("fast-resize")).await.unwrap();
    assert_eq!(before[0].memory, Some(512 << 20), "the default size is 512M");
    f.p().releases.scale(&app, &[scale_of("web", None, Some("1G"))]).await.unwrap();
    let d = f.p().releases.converge(&app, Some(1), Some(Duration::from_secs(10))).await;
    assert_eq!(d.state, DeployState::Serving, "{d:?}");
    f.wait_for_dynos("fast-resize", &["web.1 v1"]).await;
    let after = f.fake.list_dynos(Some("fast-resize")).await.unwrap();
    assert_eq!(after[0].memory, Some(1 << 30));
    assert_ne!(after[0].id, before[0].id);
    let r = f.http().get(f.url("/apps/fast-resize/formation")).bearer_auth(&f.token).send().await.unwrap();
    let formation: Vec<paas_wire::Formation> = r.json().await.unwrap();
    assert_eq!(formation.iter().find(|x| x.process_type == "web").unwrap().size, "1G");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rolls_web_dynos_one_at_a_time_and_stop_brings_a_dyno_back() {
    let f = Fast::start().await;
    let app = f.app("fast-restart").await;
    f.deploy(&app, "img-a").await;
    f.p().releases.scale(&app, &[scale_of("web", Some(2), None)]).await.unwrap();
    f.p().releases.converge(&app, Some(1), Some(Duration::from_secs(10))).await;
    f.wait_for_dynos("fast-restart", &["web.1 v1", "web.2 v1"]).await;
    let before: Vec<String> = f.fake.list_dynos(Some("fast-restart")).await.unwrap().into_iter().map(|d| d.id.to_string()).collect();

    let r = f.http().delete(f.url("/apps/fast-restart/dynos/web")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let restart: paas_wire::DynoRestart = r.json().await.unwrap();
    assert_eq!(restart.restarted, ["web.1", "web.2"]);
    assert!(restart.failures.is_empty());
    f.wait_for_dynos("fast-restart", &["web.1 v1", "web.2 v1"]).await;
    let after: Vec<String> = f.fake.list_dynos(Some("fast-restart")).await.unwrap().into_iter().map(|d| d.id.to_string()).collect();
    assert!(after.iter().all(|id| !before.contains(id)), "every dyno is new: {before:?} {after:?}");
    assert_eq!(f.p().routes.get("fast-restart").len(), 2);
    assert_eq!(f.page("fast-restart").await.0, 200);

    // A restart whose replacement would not come up keeps the old dyno.
    let r = f.http().delete(f.url("/apps/fast-restart/dynos/nope.1")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let r = f.http().post(f.url("/apps/fast-restart/dynos/web.2/actions/stop")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 202);
    f.wait_for_dynos("fast-restart", &["web.1 v1", "web.2 v1"]).await;
    let now: Vec<String> = f.fake.list_dynos(Some("fast-restart")).await.unwrap().into_iter().map(|d| d.id.to_string()).collect();
    assert_ne!(now, after, "web.2 was replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_killed_from_outside_is_replaced_at_once_then_with_backoff() {
    let f = Fast::start().await;
    let app = f.app("fast-killed").await;
    f.deploy(&app, "img-a").await;
    // The exit event queues a pass: the first restart is immediate.
    f.fake.kill("fast-killed", "web.1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.page("fast-killed").await.0 != 200 || f.fake.started_count() < 2 {
        assert!(Instant::now() < deadline, "not restarted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The second crash waits: `paas ps` says it is restarting.
    f.fake.kill("fast-killed", "web.1");
    let deadline = Instant::now() + Duration::from_secs(5);
    let view = loop {
        let r = f.http().get(f.url("/apps/fast-killed/dynos")).bearer_auth(&f.token).send().await.unwrap();
        let dynos: Vec<paas_wire::Dyno> = r.json().await.unwrap();
        if let Some(d) = dynos.into_iter().find(|d| d.state.starts_with("restarting in")) {
            break d;
        }
        assert!(Instant::now() < deadline, "no backoff shown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((view.restarts, view.exit_code), (2, Some(137)), "{view:?}");
    // And it comes back after the backoff (2 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.page("fast-killed").await.0 != 200 {
        assert!(Instant::now() < deadline, "not restarted after the backoff");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_does_not_delay_another_apps_restart() {
    let f = Fast::start().await;
    let (slow, quick) = (f.app("fast-slow").await, f.app("fast-quick").await);
    f.deploy(&quick, "img-q").await;
    // The slow app's new web dyno never answers: its pass probes for the
    // whole boot timeout (1 s here, 60 s by default).
    f.fake.break_image("img-slow");
    let out = paas_server::output::Output::collect();
    let r = f.p().releases.deploy(&slow, Fast::built("img-slow"), &out).await.unwrap();
    let releases = f.p().releases.clone();
    let probing = tokio::spawn(async move { releases.converge(&slow, Some(r.version), Some(Duration::from_secs(10))).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    f.fake.kill("fast-quick", "web.1");
    while f.page("fast-quick").await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "the quick app waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!probing.is_finished(), "the quick app was back before the slow app's probe ended");
    assert_eq!(probing.await.unwrap().state, DeployState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_json_formation_sizes_types_nobody_has_sized() {
    let f = Fast::start().await;
    let app = f.app("fast-sizes").await;
    let mut built = Fast::built("img-sizes");
    built.initial_formation = BTreeMap::from([("worker".to_owned(), 1)]);
    built.initial_sizes = BTreeMap::from([("worker".to_owned(), "1G".to_owned()), ("web".to_owned(), "256M".to_owned())]);
    let out = paas_server::output::Output::collect();
    let r = f.p().releases.deploy(&app, built.clone(), &out).await.unwrap();
    f.p().releases.converge(&app, Some(r.version), Some(Duration::from_secs(10))).await;
    let sizes = f.p().store.sizes(&app.id).await.unwrap();
    assert_eq!((sizes["worker"].as_str(), sizes["web"].as_str()), ("1G", "256M"));
    let formation: serde_json::Value = f.send(reqwest::Method::GET, "/apps/fast-sizes/formation", json!(null)).await.json().await.unwrap();
    let worker = formation.as_array().unwrap().iter().find(|x| x["type"] == "worker").cloned().unwrap();
    assert_eq!(worker["size"], "1G", "{formation}");

    // Resized by hand, a later deploy leaves it as it is.
    let change = paas_wire::FormationChange { process_type: "worker".into(), quantity: None, size: Some("512M".into()) };
    f.p().releases.scale(&app, &[change]).await.unwrap();
    f.p().releases.deploy(&app, built, &out).await.unwrap();
    assert_eq!(f.p().store.sizes(&app.id).await.unwrap()["worker"], "512M");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_json_env_entries_that_sync_are_set_on_every_deploy() {
    let f = Fast::start().await;
    let app = f.app("fast-sync").await;
    let out = paas_server::output::Output::collect();
    let mut built = Fast::built("img-sync");
    built.env = serde_json::from_value(json!({
        "SYNCED": {"value": "from-app-json", "sync": true},
        "ONCE": {"value": "first"}
    }))
    .unwrap();
    f.p().releases.deploy(&app, built.clone(), &out).await.unwrap();
    let mut patch = BTreeMap::new();
    patch.insert("SYNCED".to_owned(), Some("changed".to_owned()));
    patch.insert("ONCE".to_owned(), Some("changed".to_owned()));
    f.p().releases.set_config(&app, patch).await.unwrap();
    f.p().releases.deploy(&app, built, &out).await.unwrap();
    let config = f.p().releases.config(&app).await.unwrap();
    assert_eq!((config["SYNCED"].as_str(), config["ONCE"].as_str()), ("from-app-json", "changed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_json_env_is_set_up_on_the_first_deploy_only() {
    let f = Fast::start().await;
    let app = f.app("fast-env").await;
    let out = paas_server::output::Output::collect();
    let env: BTreeMap<String, paas_server::appjson::EnvEntry> = serde_json::from_value(json!({
        "GREETING": "hello",
        "SECRET_KEY_BASE": {"generator": "secret"},
        "API_KEY": {"description": "the vendor's key", "required": true},
        "OPTIONAL": {"required": false}
    }))
    .unwrap();
    let mut built = Fast::built("img-a");
    built.env = env.clone();
    // API_KEY is required and not set: the first deploy is refused, naming it.
    let err = f.p().releases.deploy(&app, built.clone(), &out).await.unwrap_err();
    assert!(err.to_string().contains("app.json requires API_KEY") && err.to_string().contains("paas config:set API_KEY="), "{err}");
    assert!(f.p().store.list_releases(&app.id).await.unwrap().is_empty());

    let mut patch = BTreeMap::new();
    patch.insert("API_KEY".to_owned(), Some("k".to_owned()));
    patch.insert("GREETING".to_owned(), Some("mine".to_owned()));
    f.p().releases.set_config(&app, patch).await.unwrap();
    f.p().releases.deploy(&app, built.clone(), &out).await.unwrap();
    let config = f.p().releases.config(&app).await.unwrap();
    assert_eq!(config["GREETING"], "mine", "a var already set wins");
    assert_eq!(config["SECRET_KEY_BASE"].len(), 64);
    assert!(config["SECRET_KEY_BASE"].bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!config.contains_key("OPTIONAL"));

    // Later deploys leave the config alone.
    let mut patch = BTreeMap::new();
    patch.insert("SECRET_KEY_BASE".to_owned(), None);
    f.p().releases.set_config(&app, patch).await.unwrap();
    f.p().releases.deploy(&app, built, &out).await.unwrap();
    assert!(!f.p().releases.config(&app).await.unwrap().contains_key("SECRET_KEY_BASE"));
}

fn checks(json: serde_json::Value) -> paas_server::appjson::Checks {
    serde_json::from_value(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_failing_its_liveness_check_leaves_the_rotation_and_is_restarted() {
    let f = Fast::start().await;
    let app = f.app("fast-live").await;
    let mut built = Fast::built("img-a");
    built.healthchecks = checks(json!({"web": [{"type": "liveness", "path": "/", "attempts": 2}]}));
    let out = paas_server::output::Output::collect();
    let r = f.p().releases.deploy(&app, built, &out).await.unwrap();
    f.p().releases.converge(&app, Some(r.version), Some(Duration::from_secs(10))).await;
    let before = f.fake.list_dynos(Some("fast-live")).await.unwrap()[0].id.clone();
    f.fake.hang("fast-live", "web.1");
    // Two failed checks in a row (one per pass), then a new dyno.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        f.p().releases.converge(&app, Some(1), Some(Duration::from_secs(10))).await;
        let now = f.fake.list_dynos(Some("fast-live")).await.unwrap();
        if now.iter().any(|d| d.running && d.id != before) && f.page("fast-live").await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the hung dyno was not replaced");
    }
    let r = f.http().get(f.url("/apps/fast-live/dynos")).bearer_auth(&f.token).send().await.unwrap();
    let dynos: Vec<paas_wire::Dyno> = r.json().await.unwrap();
    assert_eq!(dynos[0].restarts, 1, "{dynos:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_checks_use_their_path_content_and_attempts() {
    let f = Fast::start().await;
    let app = f.app("fast-startup").await;
    let out = paas_server::output::Output::collect();
    let mut good = Fast::built("img-a");
    good.healthchecks = checks(json!({"web": [{"type": "startup", "path": "/ready", "content": "v1 web", "attempts": 3, "wait": 0}]}));
    let r = f.p().releases.deploy(&app, good, &out).await.unwrap();
    let d = f.p().releases.converge(&app, Some(r.version), Some(Duration::from_secs(10))).await;
    assert_eq!(d.state, DeployState::Serving, "{d:?}");

    let mut bad = Fast::built("img-b");
    bad.healthchecks = checks(json!({"web": [{"type": "startup", "path": "/ready", "content": "nope", "attempts": 2, "wait": 0}]}));
    let r = f.p().releases.deploy(&app, bad, &out).await.unwrap();
    let d = f.p().releases.converge(&app, Some(r.version), Some(Duration::from_secs(10))).await;
    assert_eq!(d.state, DeployState::Failed, "{d:?}");
    assert!(d.message.contains("did not pass its startup check (GET /ready on $PORT"), "{}", d.message);
    assert!(d.message.contains("answer containing \"nope\") after 2 attempts"), "{}", d.message);
    assert!(f.page("fast-startup").await.1.contains("v1 web"), "v1 keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_push_builds_releases_and_serves() {
    let f = Fast::start().await;
    f.app("fast-push").await;
    let repo = dockerfile_repo();
    let (ok, said) = f.push(repo.path(), "fast-push").await;
    assert!(ok, "{said}");
    assert!(said.contains("remote: -----> Building with the Dockerfile"), "{said}");
    assert!(said.contains("deployed to paas as v1"), "{said}");
    assert_eq!(f.page("fast-push").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converge_error_after_the_release_is_made_accepts_the_push_and_says_so() {
    let f = Fast::start().await;
    let app = f.app("fast-converr").await;
    let repo = dockerfile_repo();
    f.fake.fail_listing(true);
    let (ok, said) = f.push(repo.path(), "fast-converr").await;
    // The release exists, so the push is accepted, and the pusher is told
    // that its dynos are not up yet, and why.
    assert!(ok, "{said}");
    assert!(said.contains("v1 was made, but its dynos could not be updated"), "{said}");
    assert!(said.contains("the fake engine does not answer"), "{said}");
    assert_eq!(f.p().store.current_release(&app.id).await.unwrap().unwrap().version, 1);
    // Once the engine answers, the scheduler converges on its own.
    f.fake.fail_listing(false);
    let deadline = Instant::now() + Duration::from_secs(15);
    while f.page("fast-converr").await.0 != 200 {
        assert!(Instant::now() < deadline, "the periodic reconcile did not bring v1 up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_of_one_app_queue_and_a_global_limit_caps_builds() {
    use paas_server::builder::Builder;
    use paas_server::buildpack::BuildpackBuilder;
    use paas_server::output::Output;
    use paas_server::source::SourceFile;
    let f = Fast::start().await;
    let (a, b) = (f.app("fast-queue-a").await, f.app("fast-queue-b").await);
    let runtime = Arc::new(f.fake.clone()) as Arc<dyn Runtime>;
    let scratch = f.settings.scratch_dir();
    let builder = Builder::new(
        f.p().store.clone(),
        runtime.clone(),
        BuildpackBuilder::new(runtime, f.settings.stack.clone(), f.settings.builds.buildpacks_dir().clone(), Vec::new()),
        1,
        scratch.clone(),
        paas_server::runtime::BuildLimits { timeout: Duration::from_secs(60), ..Default::default() },
    );
    let tree = {
        let mut t = tar::Builder::new(Vec::new());
        for (path, body) in [("Dockerfile", "FROM scratch\n"), ("Procfile", "web: serve\n")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            t.append_data(&mut h, path, body.as_bytes()).unwrap();
        }
        t.into_inner().unwrap()
    };
    let gate = f.fake.gate_builds();
    let start = |app: AppRow, out: Output| {
        let (builder, source) = (builder.clone(), SourceFile::from_bytes(&scratch, &tree).unwrap());
        tokio::spawn(async move { builder.build(&app, &"a".repeat(40), source, &BTreeMap::new(), &out).await })
    };
    let first = start(a.clone(), Output::collect());
    while f.fake.builds_started() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another app's build waits for the one slot; the same app's waits in its queue.
    let (tx_b, mut rx_b) = tokio::sync::mpsc::channel(64);
    let second = start(b, Output::new(tx_b));
    let (tx_a, mut rx_a) = tokio::sync::mpsc::channel(64);
    let third = start(a, Output::new(tx_a));
    async fn wait_for(rx: &mut tokio::sync::mpsc::Receiver<String>, want: &str) {
        while let Some(line) = rx.recv().await {
            if line.contains(want) {
                return;
            }
        }
        panic!("no line containing {want:?}");
    }
    tokio::time::timeout(Duration::from_secs(10), wait_for(&mut rx_b, "Waiting for a build slot (1 builds run at once"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), wait_for(&mut rx_a, "Waiting for the build already running for fast-queue-a"))
        .await
        .unwrap();
    assert_eq!(f.fake.builds_started(), 1, "only one build runs at a time");
    gate.add_permits(3);
    for build in [first, second, third] {
        let built = build.await.unwrap().unwrap();
        assert!(built.image.starts_with("sha256:paas/fast-queue-"), "{built:?}");
    }
    assert_eq!(f.fake.builds_started(), 3);
}

/// Reads an HTTP head (up to the blank line) from a stream.
async fn read_head(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await.unwrap().unwrap();
        assert_eq!(n, 1, "the connection closed in the head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_passes_through_the_router_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fast::start().await;
    // A dyno that agrees to the upgrade, speaks first, then echoes.
    let dyno = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dyno.local_addr().unwrap();
    let seen = tokio::spawn(async move {
        let (mut s, _) = dyno.accept().await.unwrap();
        let head = read_head(&mut s).await;
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            .await
            .unwrap();
        s.write_all(b"hello from the dyno").await.unwrap();
        let mut buf = [0u8; 256];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.unwrap();
        }
        head
    });
    // An app only the route table knows: no pass touches its routes.
    f.route_only("ws-only-routed");
    f.p().routes.set("ws-only-routed", vec![Endpoint::new(addr)]);
    let mut client = tokio::net::TcpStream::connect(f.p().router_addr).await.unwrap();
    client
        .write_all(
            b"GET /chat HTTP/1.1\r\nHost: ws-only-routed.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
    let mut first = [0u8; 19];
    tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut first)).await.unwrap().unwrap();
    assert_eq!(&first, b"hello from the dyno", "the dyno can speak first");
    let frame: Vec<u8> = (0..=255u8).collect();
    client.write_all(&frame).await.unwrap();
    let mut echoed = vec![0u8; frame.len()];
    tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut echoed)).await.unwrap().unwrap();
    assert_eq!(echoed, frame, "bytes go both ways unchanged");
    drop(client);
    let dyno_head = tokio::time::timeout(Duration::from_secs(10), seen).await.unwrap().unwrap().to_ascii_lowercase();
    assert!(dyno_head.contains("upgrade: websocket") && dyno_head.contains("connection: upgrade"), "{dyno_head}");
    assert!(dyno_head.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="), "{dyno_head}");
    assert!(dyno_head.contains("x-forwarded-for: 127.0.0.1"), "{dyno_head}");
}

/// Opens `n` connections to `addr`; half send nothing, half send a request
/// head slowly (a line, then nothing: slowloris).
async fn hold_connections(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: slow.localhost\r\nX-Slow: 1").await.unwrap();
        }
        held.push(s);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_hold_up_neither_requests_nor_pushes_and_are_closed() {
    use tokio::io::AsyncReadExt;
    let f = Fast::start_with(|s| s.listeners.header_timeout = Duration::from_secs(3)).await;
    let app = f.app("edge-slow").await;
    f.deploy(&app, "img-a").await;
    f.app("edge-slow-push").await;
    let mut router_held = hold_connections(f.p().router_addr, 1000).await;
    let api_held = hold_connections(f.p().api_addr, 200).await;

    // With all of them open: the app answers, the API answers, a push works.
    let (status, body) = f.page("edge-slow").await;
    assert_eq!((status, body.starts_with("edge-slow v1")), (200, true), "{body}");
    let r = f.http().get(f.url("/apps")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let repo = dockerfile_repo();
    let (ok, said) = f.push(repo.path(), "edge-slow-push").await;
    assert!(ok, "{said}");

    // The header timeout closes each of them (bounded wait, no fixed sleep).
    let mut buf = [0u8; 512];
    for s in router_held.iter_mut().step_by(50) {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.expect("closed by the header timeout");
        let got = String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).to_string();
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    }
    drop(api_held);
}

/// A dyno on loopback that answers every request `good`; its address.
async fn good_dyno() -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let good_addr = good.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = good.accept().await else { return };
            tokio::spawn(async move {
                let _ = read_head(&mut s).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngood").await;
            });
        }
    });
    good_addr
}

/// A dyno on a node that is lost takes the request and never answers nor
/// closes: once the scheduler says it is lost, the waiting GET goes to
/// another dyno, and a POST (not sent twice) gets the router's 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_on_a_lost_dyno_go_to_another() {
    let f = Fast::start_with(|s| s.router.timeout = Duration::from_secs(20)).await;
    let good_addr = good_dyno().await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let (took_tx, mut took) = tokio::sync::mpsc::unbounded_channel();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
            let _ = took_tx.send(());
        }
    });
    f.route_only("edge-lost");
    for method in ["GET", "POST"] {
        // Only the silent dyno, so the request surely waits on it.
        f.p().routes.set("edge-lost", vec![Endpoint::new(silent_addr)]);
        let http = f.http();
        let url = format!("http://{}/", f.p().router_addr);
        let request = tokio::spawn(async move {
            let r = http.request(method.parse().unwrap(), url).header("Host", "edge-lost.localhost").send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
        tokio::time::timeout(Duration::from_secs(10), took.recv()).await.expect("the silent dyno took the request");
        // It left the rotation before it was known lost (a new connection
        // to it failed): the request waiting on it is still sent elsewhere.
        f.p().routes.set("edge-lost", vec![Endpoint::new(good_addr)]);
        let started = std::time::Instant::now();
        f.p().routes.lose("edge-lost", Endpoint::new(silent_addr));
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), request).await.expect("answered once lost").unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{method} answered at once, not at the timeout");
        match method {
            "GET" => assert_eq!((status, body.as_str()), (200, "good")),
            _ => assert!(status == 502 && body.contains("was lost"), "{status} {body}"),
        }
        assert_eq!(f.p().routes.get("edge-lost"), vec![Endpoint::new(good_addr)], "the lost dyno left the rotation");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_dyno_leaves_the_rotation_a_silent_one_times_out_and_huge_heads_are_refused() {
    let f = Fast::start_with(|s| s.router.timeout = Duration::from_secs(1)).await;
    // One dyno that answers, one whose port is closed: every request is
    // served, and the closed one leaves the rotation.
    let good_addr = good_dyno().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    f.route_only("edge-retry");
    f.p().routes.set("edge-retry", vec![Endpoint::new(closed), Endpoint::new(good_addr)]);
    for _ in 0..6 {
        let (status, body) = f.page("edge-retry").await;
        assert_eq!((status, body.as_str()), (200, "good"));
    }
    assert_eq!(f.p().routes.get("edge-retry"), vec![Endpoint::new(good_addr)], "the refusing dyno left the rotation");

    // A dyno that takes the request and never answers: 503 after the timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    f.route_only("edge-silent");
    f.p().routes.set("edge-silent", vec![Endpoint::new(silent_addr)]);
    let (status, body) = f.page("edge-silent").await;
    assert_eq!(status, 503);
    assert!(body.contains("Request timeout") && body.contains("PAAS_ROUTER_TIMEOUT_SECONDS"), "{body}");

    // A request head over the limit is refused, not buffered.
    let r = f
        .http()
        .get(format!("http://{}/", f.p().router_addr))
        .header("Host", "edge-retry.localhost")
        .header("X-Huge", "x".repeat(100 * 1024))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.to_string().contains("closed"), "{e}"),
    }
}

impl Fast {
    /// Makes `app` known to the router (as an app that exists) without
    /// making it in the store, so no reconcile pass ever touches the routes
    /// the test sets for it (a stored app with no release would have them
    /// cleared by the next pass).
    fn route_only(&self, app: &str) {
        self.p().store.known_apps().insert(app);
    }

    /// GET / through the router with this `Host`.
    async fn get_host(&self, host: &str) -> (u16, String) {
        let r = self.http().get(format!("http://{}/", self.p().router_addr)).header("Host", host).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn add_domain(&self, app: &str, host: &str) -> reqwest::Response {
        self.send(reqwest::Method::POST, &format!("/apps/{app}/domains"), json!({ "hostname": host })).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_and_wildcard_domains_route_to_their_app_and_belong_to_one() {
    let mut f = Fast::start().await;
    let shop = f.app("dom-shop").await;
    let blog = f.app("dom-blog").await;
    f.deploy(&shop, "img-a").await;
    f.deploy(&blog, "img-a").await;
    let (status, body) = f.get_host("www.shop.test").await;
    assert_eq!(status, 404, "unknown hosts get the 404 page");
    assert!(body.contains("No app answers at www.shop.test") && body.contains("domains:add"), "{body}");

    assert_eq!(f.add_domain("dom-shop", "www.shop.test").await.status(), 201);
    assert_eq!(f.add_domain("dom-blog", "*.blog.test").await.status(), 201);
    let taken = f.add_domain("dom-blog", "www.shop.test").await;
    assert_eq!(taken.status(), 409, "a domain belongs to one app");
    assert!(taken.text().await.unwrap().contains("belongs to another app (dom-shop)"));
    for (bad, status) in [("http://x.test/", 422), ("localhost", 422), ("x.localhost", 422), ("*.localhost", 422), ("10.0.0.1", 422)] {
        let r = f.add_domain("dom-shop", bad).await;
        assert_eq!(r.status(), status, "{bad}");
    }

    let (status, body) = f.get_host("www.shop.test").await;
    assert_eq!((status, body.starts_with("dom-shop v1")), (200, true), "{body}");
    let (status, body) = f.get_host("anything.blog.test:8080").await;
    assert_eq!((status, body.starts_with("dom-blog v1")), (200, true), "{body}");
    assert_eq!(f.get_host("a.b.blog.test").await.0, 404, "a wildcard covers one level");
    let listed: Vec<paas_wire::Domain> =
        f.http().get(f.url("/apps/dom-shop/domains")).bearer_auth(&f.token).send().await.unwrap().json().await.unwrap();
    let names: Vec<(&str, &str)> = listed.iter().map(|d| (d.hostname.as_str(), d.kind.as_str())).collect();
    assert_eq!(names, [("dom-shop.localhost", "paas"), ("www.shop.test", "custom")]);

    // Domains survive a restart; removed ones answer 404 again.
    f.restart().await;
    assert_eq!(f.get_host("www.shop.test").await.0, 200);
    let r = f.http().delete(f.url("/apps/dom-shop/domains/www.shop.test")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(f.get_host("www.shop.test").await.0, 404);
    // A destroyed app's domains are free again.
    let r = f.http().delete(f.url("/apps/dom-blog")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(f.get_host("x.blog.test").await.0, 404);
    assert_eq!(f.add_domain("dom-shop", "*.blog.test").await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_listener_serves_added_certificates_by_sni() {
    let mut f = Fast::start_with(|s| s.router.tls_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))).await;
    let app = f.app("tls-app").await;
    f.deploy(&app, "img-a").await;
    assert_eq!(f.add_domain("tls-app", "www.tls.test").await.status(), 201);
    let cert = rcgen::generate_simple_self_signed(vec!["www.tls.test".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_owned()]).unwrap();
    let add = |chain: String, key: String| {
        f.send(reqwest::Method::POST, "/apps/tls-app/certs", json!({ "certificate_chain": chain, "private_key": key }))
    };
    let r = add(cert.cert.pem(), other.key_pair.serialize_pem()).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("does not belong"));
    let r = add(other.cert.pem(), other.key_pair.serialize_pem()).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("valid for none of tls-app's domains (www.tls.test)"));
    let r = add("not a certificate".into(), "nor a key".into()).await;
    assert_eq!(r.status(), 422);
    let r = add(cert.cert.pem(), cert.key_pair.serialize_pem()).await;
    assert_eq!(r.status(), 201);
    let added: Vec<paas_wire::Cert> = r.json().await.unwrap();
    assert_eq!(added[0].hostname, "www.tls.test");

    let https_get = |f: &Fast, name: &'static str| {
        let tls = f.p().tls_addr.expect("an HTTPS listener");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
            .resolve(name, tls)
            .build()
            .unwrap();
        async move { client.get(format!("https://{name}:{}/", tls.port())).send().await }
    };
    let r = https_get(&f, "www.tls.test").await.expect("served over TLS");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("tls-app v1"));
    assert!(https_get(&f, "unknown.tls.test").await.is_err(), "no certificate, no handshake");

    // FORCE_HTTPS sends plain HTTP to HTTPS.
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get_plain = || plain.get(format!("http://{}/x?y=1", f.p().router_addr)).header("Host", "www.tls.test").send();
    assert_eq!(get_plain().await.unwrap().status(), 200, "plain HTTP serves until asked otherwise");
    let r = f.send(reqwest::Method::PATCH, "/apps/tls-app/config-vars?wait=10", json!({ "FORCE_HTTPS": "true" })).await;
    assert_eq!(r.status(), 200);
    let r = get_plain().await.unwrap();
    assert_eq!(r.status(), 308);
    let tls_port = f.p().tls_addr.unwrap().port();
    assert_eq!(r.headers()["location"], format!("https://www.tls.test:{tls_port}/x?y=1").as_str());

    // The key is kept sealed and comes back after a restart.
    f.restart().await;
    let r = https_get(&f, "www.tls.test").await.expect("served after a restart");
    assert_eq!(r.status(), 200);
}

/// Open descriptors and resident memory of this process (the server runs
/// in it).
fn fds_and_rss() -> (usize, u64) {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss_kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    (fds, rss_kb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_cost_nothing_and_plant_no_history() {
    let f = Fast::start().await;
    let app = f.app("flood-real").await;
    f.deploy(&app, "img-a").await;
    let logs_dir = f.settings.server.data_dir.join("logs");
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&logs_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    // One keep-alive connection for the whole flood, so the client's own
    // descriptors do not move.
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let get = |host: String| {
        let client = client.clone();
        let url = format!("http://{}/", f.p().router_addr);
        async move { client.get(url).header("Host", host).send().await.unwrap().status().as_u16() }
    };
    // Warm up (the connection, the allocator), then measure.
    for i in 0..200 {
        assert_eq!(get(format!("warm{i}.localhost")).await, 404);
    }
    let before_files = listing();
    let (fds_before, rss_before) = fds_and_rss();
    for i in 0..20_000 {
        assert_eq!(get(format!("ghost{i}.localhost")).await, 404);
    }
    // A scheduler pass may hold a probe's connection for a moment: the
    // count must come back, within a few seconds.
    let settle = std::time::Instant::now() + Duration::from_secs(3);
    let (fds_after, rss_after) = loop {
        let (fds, rss) = fds_and_rss();
        if fds <= fds_before + 2 || std::time::Instant::now() > settle {
            break (fds, rss);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(listing(), before_files, "no journal for unknown apps");
    assert!(fds_after <= fds_before + 2, "descriptors {fds_before} -> {fds_after}");
    assert!(rss_after < rss_before + 16 * 1024, "RSS {rss_before} kB -> {rss_after} kB");
    // The real app still answers, and its log has no record of the flood.
    assert_eq!(get("flood-real.localhost".into()).await, 200);
    let logs = f.http().get(f.url("/apps/flood-real/logs?lines=1500")).bearer_auth(&f.token).send().await.unwrap().text().await.unwrap();
    assert!(!logs.contains("ghost"), "{logs}");

    // An app made later under a flooded name starts with an empty log.
    let r = f.send(reqwest::Method::POST, "/apps", json!({ "name": "ghost1" })).await;
    assert_eq!(r.status(), 201);
    let logs = f.http().get(f.url("/apps/ghost1/logs?lines=1500")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(logs.status(), 200);
    assert_eq!(logs.text().await.unwrap(), "", "a new app's log is empty");

    // A Host that tries to write fields into a wildcard domain's access
    // records is no host name, and answers 404.
    assert_eq!(f.add_domain("flood-real", "*.blog.test").await.status(), 201);
    assert_eq!(get("x status=200 dyno=web9 a.blog.test".into()).await, 404);
    assert_eq!(get("www.blog.test".into()).await, 200);
    let logs = f.http().get(f.url("/apps/flood-real/logs?lines=1500")).bearer_auth(&f.token).send().await.unwrap().text().await.unwrap();
    assert!(logs.contains("host=\"www.blog.test\"") && !logs.contains("dyno=web9"), "{logs}");
}

/// Sends a raw request head to `addr` and returns the answer's status line
/// and headers.
async fn raw_head(addr: std::net::SocketAddr, head: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), read_head(&mut s)).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_token_cannot_be_used_from_another_site() {
    use base64::Engine;
    let f = Fast::start().await;
    let app = f.app("xsite").await;
    f.deploy(&app, "img-a").await;
    // The API never asks a browser for Basic credentials; git's routes do.
    let r = f.http().get(f.url("/apps")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_none(), "the API sends no Basic challenge");
    let r = f.http().get(f.url("/xsite.git/info/refs?service=git-receive-pack")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"paas\"");

    // The cross-origin WebSocket upgrade to `run`, with the token as the
    // Basic password, is refused; the same upgrade without a foreign
    // Origin (the CLI's) is answered 101.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{}", f.token));
    let spec = "%7B%22command%22%3A%22sh%22%7D";
    let upgrade = |origin: &str| {
        format!(
            "GET /apps/xsite/run?spec={spec} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\n{origin}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            f.p().api_addr
        )
    };
    let answer = raw_head(f.p().api_addr, &upgrade("Origin: http://evil.test\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let answer = raw_head(f.p().api_addr, &upgrade(&format!("Origin: http://{}\r\n", f.p().api_addr))).await;
    assert!(answer.starts_with("HTTP/1.1 101"), "the dashboard's own origin may: {answer}");
    let answer = raw_head(f.p().api_addr, &upgrade("")).await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");

    // State-changing requests from another site's page are refused; reads
    // are not (the browser keeps their answers from the page anyway).
    let r = f.http().post(f.url("/apps")).bearer_auth(&f.token).header("Origin", "http://evil.test").json(&json!({"name": "xsite-two"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("another site"));
    let r = f.http().post(f.url("/apps")).bearer_auth(&f.token).header("Origin", "null").json(&json!({"name": "xsite-two"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = f.http().get(f.url("/apps")).bearer_auth(&f.token).header("Origin", "http://evil.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // X-Forwarded-Host counts only from a trusted proxy.
    let r = f
        .http()
        .post(f.url("/apps"))
        .bearer_auth(&f.token)
        .header("Origin", "https://paas.example.com")
        .header("X-Forwarded-Host", "paas.example.com")
        .json(&json!({"name": "xsite-three"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no proxy is trusted here");

    // A pack posted by a form or a script (not git's content type) is refused.
    let r = f
        .http()
        .post(f.url("/xsite.git/git-receive-pack"))
        .basic_auth("x", Some(&f.token))
        .header("Content-Type", "text/plain")
        .body("0000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("git push"));

    // Behind a trusted proxy, the host the browser used is X-Forwarded-Host.
    let proxied = Fast::start_with(|s| s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let r = proxied
        .http()
        .post(proxied.url("/apps"))
        .bearer_auth(&proxied.token)
        .header("Origin", "https://paas.example.com")
        .header("X-Forwarded-Host", "paas.example.com")
        .json(&json!({"name": "xsite-proxied"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = proxied
        .http()
        .post(proxied.url("/apps"))
        .bearer_auth(&proxied.token)
        .header("Origin", "https://evil.test")
        .header("X-Forwarded-Host", "paas.example.com")
        .json(&json!({"name": "xsite-evil"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_connections_are_capped_and_closed_when_idle() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fast::start_with(|s| {
        s.listeners.router_max_upgraded = 20;
        s.listeners.upgrade_idle = Duration::from_secs(2);
    })
    .await;
    // A dyno that agrees to every upgrade and then echoes, and answers
    // plain requests with 200.
    let dyno = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dyno.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = dyno.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut s).await.to_ascii_lowercase();
                if !head.contains("upgrade: websocket") {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nplain").await;
                    return;
                }
                let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").await;
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    f.route_only("ws-capped");
    f.p().routes.set("ws-capped", vec![Endpoint::new(addr)]);
    let upgrade = b"GET /ws HTTP/1.1\r\nHost: ws-capped.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut c = tokio::net::TcpStream::connect(f.p().router_addr).await.unwrap();
        c.write_all(upgrade).await.unwrap();
        let head = read_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        held.push(c);
    }
    // The cap is full: one more is refused, the app and the API answer.
    let mut extra = tokio::net::TcpStream::connect(f.p().router_addr).await.unwrap();
    extra.write_all(upgrade).await.unwrap();
    let head = read_head(&mut extra).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let (status, body) = f.page("ws-capped").await;
    assert_eq!((status, body.as_str()), (200, "plain"));
    let r = f.http().get(f.url("/apps")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A connection in use stays open past the idle timeout.
    let busy = held.pop().unwrap();
    let keep_busy = tokio::spawn(async move {
        let mut busy = busy;
        let mut buf = [0u8; 1];
        for _ in 0..6 {
            busy.write_all(b"k").await.unwrap();
            busy.read_exact(&mut buf).await.unwrap();
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        busy
    });
    // The idle ones are closed after the timeout (bounded wait).
    let mut buf = [0u8; 16];
    for c in held.iter_mut() {
        let n = tokio::time::timeout(Duration::from_secs(15), c.read(&mut buf)).await.expect("closed when idle");
        assert_eq!(n.unwrap_or(0), 0);
    }
    let mut busy = keep_busy.await.unwrap();
    busy.write_all(b"z").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), busy.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"z", "a busy connection outlived the idle timeout");
    // Their slots are free again.
    let mut again = tokio::net::TcpStream::connect(f.p().router_addr).await.unwrap();
    again.write_all(upgrade).await.unwrap();
    assert!(read_head(&mut again).await.starts_with("HTTP/1.1 101"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_sizes_have_limits_with_clear_errors() {
    let f = Fast::start_with(|s| {
        s.builds.max_push_bytes = 256 * 1024;
        s.dynos.max_dynos = 5;
    })
    .await;
    let app = f.app("limits").await;
    f.deploy(&app, "img-a").await;

    // Config: 32 kB at most, all vars together; what is there stays.
    let r = f.send(reqwest::Method::PATCH, "/apps/limits/config-vars", json!({ "BIG": "x".repeat(20_000) })).await;
    assert_eq!(r.status(), 200);
    let r = f.send(reqwest::Method::PATCH, "/apps/limits/config-vars", json!({ "BIGGER": "y".repeat(20_000) })).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("over the 32 kB an app may have"));
    let vars: BTreeMap<String, String> = f.http().get(f.url("/apps/limits/config-vars")).bearer_auth(&f.token).send().await.unwrap().json().await.unwrap();
    assert!(vars.contains_key("BIG") && !vars.contains_key("BIGGER"));
    // Shrinking an app over the limit is always allowed.
    let r = f.send(reqwest::Method::PATCH, "/apps/limits/config-vars", json!({ "BIG": null })).await;
    assert_eq!(r.status(), 200);

    // Dynos: PAAS_MAX_DYNOS across all types.
    let r = f.send(reqwest::Method::PATCH, "/apps/limits/formation", json!({ "updates": [{ "type": "web", "quantity": 3 }, { "type": "worker", "quantity": 2 }] })).await;
    assert_eq!(r.status(), 200);
    let r = f.send(reqwest::Method::PATCH, "/apps/limits/formation", json!({ "updates": [{ "type": "worker", "quantity": 3 }] })).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("6 dynos of limits, over the 5 one app may run (PAAS_MAX_DYNOS"));

    // A push over PAAS_MAX_PUSH_MB is refused by git itself; nothing is made.
    f.app("limits-push").await;
    let repo = dockerfile_repo();
    // Random bytes, so the pack is as large as the file.
    let mut noise = vec![0u8; 600_000];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut noise).unwrap();
    std::fs::write(repo.path().join("noise.bin"), noise).unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "noise"]);
    let (ok, said) = f.push(repo.path(), "limits-push").await;
    assert!(!ok, "{said}");
    assert!(said.contains("maximum allowed size"), "{said}");
    let releases = f.http().get(f.url("/apps/limits-push/releases")).bearer_auth(&f.token).send().await.unwrap().text().await.unwrap();
    assert_eq!(releases, "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_can_speak_tls_so_tokens_never_travel_in_clear() {
    let certs = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (certs.path().join("api.crt"), certs.path().join("api.key"));
    std::fs::write(&cert_file, ca.cert.pem()).unwrap();
    std::fs::write(&key_file, ca.key_pair.serialize_pem()).unwrap();
    let f = Fast::start_with(|s| { s.server.tls_cert = Some(cert_file.clone()); s.server.tls_key = Some(key_file.clone()); }).await;
    f.app("tls-api").await;
    let port = f.p().api_addr.port();

    // Plain HTTP gets no API answer; HTTPS with the CA does.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/apps")).bearer_auth(&f.token).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200, "no API over plain HTTP");
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = https.get(format!("https://localhost:{port}/apps")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // The CLI (PAAS_CA_FILE) and a real git push (its hook calls back over
    // HTTPS) work against it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paas-server").replace("paas-server", "paas"))
        .args(["apps", "--json"])
        .env("PAAS_API_URL", format!("https://localhost:{port}"))
        .env("PAAS_TOKEN", &f.token)
        .env("PAAS_CA_FILE", &cert_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tls-api"));
    let repo = dockerfile_repo();
    let url = format!("https://git:{}@localhost:{port}/tls-api.git", f.token);
    let dir = repo.path().to_path_buf();
    let ca_file = cert_file.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("git")
            .args(["push", &url, "HEAD:main"])
            .env("GIT_SSL_CAINFO", &ca_file)
            .current_dir(&dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert!(said.contains("deployed to paas as v1"), "{said}");

    // `paas run`'s WebSocket over HTTPS, trusting PAAS_CA_FILE too.
    let cli = env!("CARGO_BIN_EXE_paas-server").replace("paas-server", "paas");
    let (token, ca) = (f.token.clone(), cert_file.clone());
    let out = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(cli)
            .args(["run", "-a", "tls-api", "cat"])
            .env("PAAS_API_URL", format!("https://localhost:{port}"))
            .env("PAAS_TOKEN", token)
            .env("PAAS_CA_FILE", ca)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"over tls\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over tls\n", "{}", String::from_utf8_lossy(&out.stderr));
}

/// An app's placement constraints are checked before they are kept: a
/// bad one is refused naming the keys Swarm knows, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_constraints_are_checked_then_kept() {
    let f = Fast::start().await;
    let out = f.paas(&["apps:create", "edge-place"], b"").await;
    assert_eq!(out.status.code().unwrap_or(-1), 0, "{}", crate::shared::text(&out.stderr));
    let bad = f.paas(&["apps:constraints:set", "-a", "edge-place", "node.labels.pool==web", "pool=web"], b"").await;
    assert_ne!(bad.status.code().unwrap_or(-1), 0);
    assert!(crate::shared::text(&bad.stderr).contains("is not a constraint") && crate::shared::text(&bad.stderr).contains("node.labels.NAME"), "{}", crate::shared::text(&bad.stderr));
    let none = f.paas(&["apps:constraints", "-a", "edge-place"], b"").await;
    assert!(crate::shared::text(&none.stdout).contains("no placement constraints"), "nothing stored: {}", crate::shared::text(&none.stdout));
    let set = f.paas(&["apps:constraints:set", "-a", "edge-place", "node.labels.pool==web", "node.role!=manager"], b"").await;
    assert_eq!(set.status.code().unwrap_or(-1), 0, "{}", crate::shared::text(&set.stderr));
    let shown = f.paas(&["apps:constraints", "-a", "edge-place", "--json"], b"").await;
    let c: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(c["constraints"], serde_json::json!(["node.labels.pool==web", "node.role!=manager"]));
    // The single engine is one node, listed with its dynos.
    let nodes = f.paas(&["nodes", "--json"], b"").await;
    let n: serde_json::Value = serde_json::from_slice(&nodes.stdout).unwrap();
    assert_eq!(n.as_array().unwrap().len(), 1, "{n}");
}

/// A dyno on loopback for the router's client: it reads each request (a
/// body by its length or in chunks) and answers by path: `/echo` the body
/// back with a length, `/chunked` in chunks with a trailer, `/close` until
/// it closes, `/empty` 204, `/early` 413 before reading the body,
/// `/idle-close` an answer after which it closes as a keep-alive timeout
/// would (no `Connection: close`), `/then-drop` an answer after which it
/// closes the connection on the next request without answering it (its
/// keep-alive timeout as that request came). Its address and a count of
/// the connections it took.
async fn scripted_dyno() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = taken.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut s = tokio::io::BufReader::new(s);
                let mut drop_next = false;
                loop {
                    let mut line = String::new();
                    if s.read_line(&mut line).await.unwrap_or(0) == 0 || drop_next {
                        return;
                    }
                    let (method, path) = {
                        let mut parts = line.split_whitespace();
                        (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned())
                    };
                    let (mut length, mut chunked) = (0usize, false);
                    loop {
                        let mut h = String::new();
                        s.read_line(&mut h).await.unwrap();
                        let h = h.trim_end().to_ascii_lowercase();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("content-length: ") {
                            length = v.parse().unwrap();
                        }
                        chunked |= h == "transfer-encoding: chunked";
                    }
                    if path == "/early" {
                        let _ = s.get_mut().write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope").await;
                        // A lingering close, as servers do: closing with the
                        // body unread would reset the connection, and the
                        // answer with it.
                        let _ = s.get_mut().shutdown().await;
                        let mut sink = vec![0u8; 64 * 1024];
                        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), s.read(&mut sink)).await {
                            if n == 0 {
                                break;
                            }
                        }
                        return;
                    }
                    let mut body = vec![0u8; length];
                    s.read_exact(&mut body).await.unwrap();
                    while chunked {
                        let mut size = String::new();
                        s.read_line(&mut size).await.unwrap();
                        let n = usize::from_str_radix(size.trim_end(), 16).unwrap();
                        let mut chunk = vec![0u8; n + 2];
                        s.read_exact(&mut chunk).await.unwrap();
                        body.extend_from_slice(&chunk[..n]);
                        chunked = n > 0;
                    }
                    drop_next = path == "/then-drop";
                    let w = s.get_mut();
                    let head_only = method == "HEAD";
                    let _ = match path.as_str() {
                        "/chunked" => w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;x=y\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 1\r\n\r\n").await,
                        "/close" => {
                            let _ = w.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil ").await;
                            let _ = w.write_all(b"close").await;
                            return;
                        }
                        "/empty" => w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await,
                        "/idle-close" => {
                            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye").await;
                            return;
                        }
                        _ => {
                            let mut answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                            if !head_only {
                                answer.extend_from_slice(&body);
                            }
                            w.write_all(&answer).await
                        }
                    };
                }
            });
        }
    });
    (addr, taken)
}

/// The router's own client to dynos: bodies by length, in chunks, until
/// the close, none; a dyno that answers before it reads the body; kept
/// connections reused, and one the dyno closed meanwhile replaced without
/// the request failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_frames_every_kind_of_body_and_keeps_its_connections_to_a_dyno() {
    let f = Fast::start().await;
    let (addr, taken) = scripted_dyno().await;
    f.route_only("edge-client");
    f.p().routes.set("edge-client", vec![Endpoint::new(addr)]);
    let http = f.http();
    let url = |path: &str| format!("http://{}{path}", f.p().router_addr);
    let host = "edge-client.localhost";
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();

    // A body with a length, and one streamed (chunked to the router, and
    // from it to the dyno), come back whole.
    let r = http.post(url("/echo")).header("Host", host).body(big.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), big.as_slice(), "a body with a length, echoed");
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(70_000).map(|c| Ok(c.to_vec())).collect();
    let r = http.post(url("/echo")).header("Host", host).body(reqwest::Body::wrap_stream(futures_util::stream::iter(pieces))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), big.as_slice(), "a streamed body, echoed");

    // Answers in chunks (their extension and trailer dropped), until the
    // close, and without a body.
    let r = http.get(url("/chunked")).header("Host", host).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "hello world".to_owned()));
    let r = http.get(url("/close")).header("Host", host).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "until close".to_owned()));
    let r = http.get(url("/empty")).header("Host", host).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (204, String::new()));
    let r = http.head(url("/echo")).header("Host", host).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "0");

    // A dyno that answers before it has read a large body: its answer.
    let r = http.post(url("/early")).header("Host", host).body(vec![b'x'; 4 << 20]).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (413, "nope".to_owned()));

    // Kept connections carry request after request.
    let before = taken.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..30 {
        let r = http.get(url("/echo")).header("Host", host).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
    }
    let opened = taken.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(opened <= 2, "30 requests in a row opened {opened} connections to the dyno");

    // The dyno closes a connection after its answer, as its keep-alive
    // timeout would: the next requests, on the one dyno, are all served.
    for i in 0..10 {
        let r = http.get(url("/idle-close")).header("Host", host).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "bye".to_owned()), "request {i}");
        let r = http.get(url("/echo")).header("Host", host).send().await.unwrap();
        assert_eq!(r.status(), 200, "the request after close {i}");
    }
    // The dyno closes a kept connection as a request comes on it: a GET
    // is sent again (to the same dyno: there is no other); a POST, which
    // may have been acted on, is answered 502.
    for i in 0..5 {
        let r = http.get(url("/then-drop")).header("Host", host).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        let r = http.get(url("/echo")).header("Host", host).send().await.unwrap();
        assert_eq!(r.status(), 200, "the GET the dyno dropped {i}");
    }
    let r = http.get(url("/then-drop")).header("Host", host).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.post(url("/echo")).header("Host", host).body("once").send().await.unwrap();
    assert_eq!(r.status(), 502, "a POST is not sent twice");
    assert_eq!(f.p().routes.get("edge-client"), vec![Endpoint::new(addr)], "the dyno stayed in the rotation");
}
