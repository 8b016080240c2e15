//! What a release runs besides its dynos, end to end with real pushes:
//! app.json `cron` entries on their schedules (`paas cron`, `cron:run`),
//! and the deploy scripts Dokku and Heroku write in app.json.

use crate::harness::*;
use std::path::Path;
use std::time::Duration;

/// A repo of the Dockerfile fixture app with `app_json` as its app.json.
fn repo_with(p: &Platform, marker: &str, app_json: &str, procfile_extra: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    p.git_ok(dir, &["init", "-q", "-b", "main"]);
    write_fixture_app(dir, marker);
    let procfile = std::fs::read_to_string(dir.join("Procfile")).unwrap();
    std::fs::write(dir.join("Procfile"), format!("{procfile}{procfile_extra}")).unwrap();
    std::fs::write(dir.join("app.json"), app_json).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "first"]);
    repo
}

fn commit(p: &Platform, dir: &Path, message: &str) {
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", message]);
}

/// Where `needle` first is in `text`, failing with the text when absent.
fn at(text: &str, needle: &str) -> usize {
    text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
}

#[test]
fn dokku_and_heroku_deploy_scripts_run_in_order_and_a_failing_predeploy_keeps_the_old_release() {
    let mut p = Platform::start();
    let app = unique_app("tasks-scripts");
    // As Dokku's own test apps write it: comments and trailing commas.
    let app_json = r#"{
  // Dokku's deployment tasks
  "scripts": {
    "dokku": {
      "predeploy": "echo predeploy-ran-for-$PAAS_APP; test \"$FAIL_PREDEPLOY\" != yes",
      "postdeploy": "echo dokku-postdeploy-ran-$DYNO",
    },
    /* Heroku's: once, after the first deploy */
    "postdeploy": "echo heroku-postdeploy-ran",
  },
}
"#;
    let repo = repo_with(&p, "one", app_json, "release: echo release-phase-ran\n");
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    assert!(!said.contains("paas ignores"), "every key is used: {said}");
    // predeploy, the release command, the dynos, Heroku's postdeploy, Dokku's.
    let order = ["predeploy-ran-for-", "release-phase-ran", "Launching", "heroku-postdeploy-ran", "dokku-postdeploy-ran-postdeploy.1"];
    let places: Vec<usize> = order.iter().map(|n| at(&said, n)).collect();
    assert!(places.windows(2).all(|w| w[0] < w[1]), "out of order {places:?}:\n{said}");
    p.wait_for_page(&app, "marker: one");
    // Their output is in the app's log too.
    poll(Duration::from_secs(20), "the scripts' output in the log", || {
        let logs = p.paas_ok(dir, &["logs", "-a", &app, "-n", "500"]);
        (logs.contains(&format!("predeploy-ran-for-{app}")) && logs.contains("dokku-postdeploy-ran")).then_some(())
    });

    // The second deploy: Dokku's scripts again, Heroku's once only.
    std::fs::write(dir.join("Dockerfile"), std::fs::read_to_string(dir.join("Dockerfile")).unwrap().replace("one", "two")).unwrap();
    commit(&p, dir, "two");
    let said = p.push_ok(dir, &app);
    at(&said, "predeploy-ran-for-");
    at(&said, "dokku-postdeploy-ran");
    assert!(!said.contains("heroku-postdeploy-ran"), "Heroku's postdeploy runs once:\n{said}");
    p.wait_for_page(&app, "marker: two");

    // A failing predeploy fails the push like a failing release command:
    // no release, and the old one keeps serving.
    let releases = p.paas_ok(dir, &["releases", "-a", &app, "--json"]);
    let json = app_json.replace("test \\\"$FAIL_PREDEPLOY\\\" != yes", "exit 7");
    assert_ne!(json, app_json);
    std::fs::write(dir.join("app.json"), json).unwrap();
    std::fs::write(dir.join("Dockerfile"), std::fs::read_to_string(dir.join("Dockerfile")).unwrap().replace("two", "three")).unwrap();
    commit(&p, dir, "three, with a failing predeploy");
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("the predeploy command exited with status 7") && said.contains("no release was made"), "{said}");
    assert!(!said.contains("release-phase-ran"), "the release command runs after predeploy, so not at all:\n{said}");
    assert_eq!(p.paas_ok(dir, &["releases", "-a", &app, "--json"]), releases, "no release was made");
    assert!(p.wait_for_page(&app, "marker:").contains("marker: two"));
}

/// `paas cron --json` of the app, parsed.
fn cron(p: &Platform, dir: &Path, app: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&p.paas_ok(dir, &["cron", "-a", app, "--json"])).unwrap()
}

fn entry<'a>(jobs: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    jobs.iter().find(|j| j["id"] == id).unwrap_or_else(|| panic!("no entry {id} in {jobs:?}"))
}

#[test]
fn cron_entries_fire_on_the_minute_record_their_exit_and_never_stack() {
    let mut p = Platform::start();
    let app = unique_app("tasks-cron");
    let app_json = r#"{"cron": [
        {"name": "tick", "command": "echo cron-tick-$DYNO-$GREETING; exit 3", "schedule": "* * * * *"},
        {"name": "long", "command": "echo long-started; exec sleep 600", "schedule": "* * * * *"}
    ]}"#;
    let repo = repo_with(&p, "cron", app_json, "");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.paas_ok(dir, &["config:set", "-a", &app, "GREETING=configured", "--no-wait"]);
    p.push_ok(dir, &app);

    let table = p.paas_ok(dir, &["cron", "-a", &app]);
    for want in ["tick", "long", "* * * * *", "echo long-started", "not yet"] {
        assert!(table.contains(want), "{want} in:\n{table}");
    }
    let jobs = cron(&p, dir, &app);
    assert_eq!(entry(&jobs, "tick")["concurrency"], "forbid");
    assert!(entry(&jobs, "tick")["next_run_at"].as_str().unwrap().ends_with(":00Z"), "{jobs:?}");

    // Run by hand, the long entry goes on as scheduler.N in `paas ps`; a
    // second run by hand is refused while it goes.
    let said = p.paas_ok(dir, &["cron:run", "-a", &app, "long"]);
    assert!(said.contains("as scheduler."), "{said}");
    let long_dyno = entry(&cron(&p, dir, &app), "long")["last_run"]["dyno"].as_str().unwrap().to_owned();
    assert!(p.paas_ok(dir, &["ps", "-a", &app]).contains(&long_dyno));
    let again = p.paas(dir, &["cron:run", "-a", &app, "long"]);
    assert_eq!(again.status.code(), Some(4), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("still runs"), "{}", text(&again.stderr));
    let unknown = p.paas(dir, &["cron:run", "-a", &app, "nope"]);
    assert!(text(&unknown.stderr).contains("its entries are tick, long") || text(&unknown.stderr).contains("its entries are long, tick"), "{}", text(&unknown.stderr));

    // At the next minute: tick runs, exits 3, and `paas cron` and the log
    // say so; long is skipped, not stacked.
    let jobs = poll(Duration::from_secs(150), "tick to run on the minute and long to be skipped", || {
        let jobs = cron(&p, dir, &app);
        let done = entry(&jobs, "tick")["last_run"]["outcome"] == "finished" && entry(&jobs, "long")["last_run"]["outcome"] == "skipped";
        done.then_some(jobs)
    });
    let tick = &entry(&jobs, "tick")["last_run"];
    assert_eq!(tick["exit_code"], 3, "{tick}");
    assert_eq!(tick["manual"], false, "{tick}");
    // On the minute: its dyno started within seconds of it.
    let started = tick["started_at"].as_str().unwrap();
    assert_eq!(&started[17..18], "0", "it fired on the minute: {tick}");
    assert!(entry(&jobs, "long")["last_run"]["detail"].as_str().unwrap().contains(&long_dyno), "{jobs:?}");
    let table = p.paas_ok(dir, &["cron", "-a", &app]);
    assert!(table.contains("exit 3") && table.contains("skipped"), "{table}");
    let logs = p.paas_ok(dir, &["logs", "-a", &app, "-n", "500"]);
    for want in ["cron-tick-scheduler.", "-configured", "Process exited with status 3", "Skipping cron entry long", "long-started"] {
        assert!(logs.contains(want), "{want} in:\n{logs}");
    }
    assert_eq!(p.paas_ok(dir, &["ps", "-a", &app]).matches("sleep 600").count(), 1, "one long run, never two");
    p.paas_ok(dir, &["ps:stop", "-a", &app, &long_dyno]);

    // A bad schedule is refused at build time, naming the entry; the
    // release that runs keeps its entries.
    std::fs::write(dir.join("app.json"), r#"{"cron": [{"name": "nightly", "command": "./x", "schedule": "61 3 * * *"}]}"#).unwrap();
    commit(&p, dir, "a bad schedule");
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("app.json cron[0] (\"nightly\"): schedule \"61 3 * * *\" is not a cron schedule"), "{said}");
    assert_eq!(cron(&p, dir, &app).len(), 2);
}
