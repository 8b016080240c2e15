//! Add-ons end to end: a real `paas-server`, the real CLI, real PostgreSQL
//! 17 and Redis 8 in containers from the images `paas-server addons:build`
//! makes from Debian packages, a Python app (psycopg from PyPI, built by
//! the buildpack) writing rows through `DATABASE_URL`, backups downloaded,
//! and restores from a backup and from an uploaded file.

use crate::harness::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The add-on's service container, running or not.
fn service_container(addon: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=paas.addon={addon}"), "--filter", "label=paas.kind=addon"])
        .output()
        .unwrap();
    text(&out.stdout).lines().next().map(str::to_owned)
}

fn docker_ok(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?} failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The app's config vars.
fn config(p: &Platform, dir: &Path, app: &str) -> serde_json::Value {
    serde_json::from_str(&p.paas_ok(dir, &["config", "-a", app, "--json"])).unwrap()
}

/// `paas` expected to fail: its exit code and everything it said.
fn paas_fails(p: &Platform, dir: &Path, args: &[&str]) -> (i32, String) {
    let out = p.paas(dir, args);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "paas {args:?} succeeded:\n{said}");
    (out.status.code().unwrap_or(-1), said)
}

/// `redis-cli` in the add-on's own container, with the password from the
/// app's `REDIS_URL` (in the environment, never argv).
fn redis(addon: &str, url: &str, args: &[&str]) -> String {
    let password = url.split("://default:").nth(1).unwrap().split('@').next().unwrap();
    let c = service_container(addon).expect("the redis container");
    let mut cmd = vec!["exec", "-e"];
    let auth = format!("REDISCLI_AUTH={password}");
    cmd.push(&auth);
    cmd.push(&c);
    cmd.push("redis-cli");
    cmd.extend_from_slice(args);
    docker_ok(&cmd).trim().to_owned()
}

/// Waits until the app's `/dump` answers 200, and returns it.
fn dump(p: &Platform, app: &str) -> String {
    poll(Duration::from_secs(60), "the app to read its rows", || p.get(app, "/dump").filter(|(s, _)| *s == 200).map(|(_, b)| b))
}

#[test]
fn postgresql_rows_a_python_dyno_writes_come_back_from_backups_byte_for_byte() {
    let mut p = Platform::start();
    let app = unique_app("addon-pg");
    let addon = format!("{app}-db");
    p.track_addon(&addon);
    let repo = fixture_repo(&p, "python-postgres");
    let dir = repo.path();
    p.create_app(dir, &app);

    // Created before the first push, as on Heroku: the app's config has
    // DATABASE_URL in a release of its own, pointing at the add-on by name.
    let said = p.paas_ok(dir, &["addons:create", "heroku-postgresql:essential-0", "--name", &addon, "-a", &app]);
    assert!(said.contains(&format!("Creating {addon} on {app}... done, v1")) && said.contains("DATABASE_URL"), "{said}");
    let url = config(&p, dir, &app)["DATABASE_URL"].as_str().unwrap().to_owned();
    assert!(url.starts_with("postgres://") && url.contains(&format!("@{addon}:5432/")), "{url}");
    let listed = p.paas_ok(dir, &["addons", "-a", &app]);
    assert!(listed.contains(&addon) && listed.contains("postgresql 17") && listed.contains("provisioned"), "{listed}");
    // Reachable from the app's network only: no port on the host.
    let c = service_container(&addon).unwrap();
    assert_eq!(docker_ok(&["port", &c]).trim(), "", "no published port");
    // The password is in no process's command line.
    let password = url.split(':').nth(2).unwrap().split('@').next().unwrap().to_owned();
    let ps = docker_ok(&["top", &c, "-eo", "pid,args"]);
    assert!(!ps.contains(&password), "the password is in a command line:\n{ps}");

    p.push_ok(dir, &app);
    assert_eq!(p.get(&app, "/write?n=200"), Some((200, "wrote 200".to_owned())));
    let before = dump(&p, &app);
    assert!(before.contains("ünïcødé") && before.len() > 10_000, "{}", &before[..before.len().min(300)]);

    // A backup, verified; downloaded, its SHA-256 checked by the CLI.
    let said = p.paas_ok(dir, &["pg:backups:capture", "-a", &app]);
    assert!(said.contains("done, b001") && said.contains("verified"), "{said}");
    let file = p.data.path().join("b001.dump");
    let out = p.paas_cmd(dir, &["pg:backups:download", "b001", "-a", &app]).stdout(std::fs::File::create(&file).unwrap()).output().unwrap();
    assert!(out.status.success(), "download: {}", text(&out.stderr));
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"PGDMP"), "a pg_dump custom-format archive");
    let listed: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["pg:backups", "-a", &app, "--json"])).unwrap();
    assert_eq!(listed[0]["size"].as_u64(), Some(bytes.len() as u64));

    // The table dropped; restored from the backup: the rows are back, byte for byte.
    assert_eq!(p.get(&app, "/drop").map(|(s, _)| s), Some(200));
    assert!(p.get(&app, "/dump").is_some_and(|(s, b)| s == 500 && b.contains("notes")), "the table is gone");
    let (code, said) = paas_fails(&p, dir, &["pg:backups:restore", "b001", "-a", &app]);
    assert_eq!(code, 2, "no --confirm is a usage error: {said}");
    let said = p.paas_ok(dir, &["pg:backups:restore", "b001", "-a", &app, "--confirm", &app]);
    assert!(said.contains("safety backup b002"), "{said}");
    assert_eq!(dump(&p, &app), before, "restored byte for byte from b001");

    // And from the downloaded file, uploaded.
    assert_eq!(p.get(&app, "/drop").map(|(s, _)| s), Some(200));
    p.paas_ok(dir, &["pg:backups:restore", file.to_str().unwrap(), "-a", &app, "--confirm", &app]);
    assert_eq!(dump(&p, &app), before, "restored byte for byte from the uploaded file");

    // Bad archives are refused before anything is touched.
    let empty = p.data.path().join("empty.dump");
    std::fs::write(&empty, b"").unwrap();
    let (_, said) = paas_fails(&p, dir, &["pg:backups:restore", empty.to_str().unwrap(), "-a", &app, "--confirm", &app]);
    assert!(said.contains("empty"), "{said}");
    let garbage = p.data.path().join("garbage.dump");
    std::fs::write(&garbage, b"PGDMP but not really an archive").unwrap();
    let (_, said) = paas_fails(&p, dir, &["pg:backups:restore", garbage.to_str().unwrap(), "-a", &app, "--confirm", &app]);
    assert!(said.contains("does not read back as a PostgreSQL archive"), "{said}");
    // A real archive cut short: its table of contents reads, its data not.
    let cut = p.data.path().join("cut.dump");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (_, said) = paas_fails(&p, dir, &["pg:backups:restore", cut.to_str().unwrap(), "-a", &app, "--confirm", &app]);
    assert!(said.contains("does not read back as a PostgreSQL archive"), "{said}");
    assert_eq!(dump(&p, &app), before, "nothing changed");

    // The attachment's var is the add-on's, not config:set's.
    let (_, said) = paas_fails(&p, dir, &["config:set", "DATABASE_URL=postgres://elsewhere/db", "-a", &app]);
    assert!(said.contains(&addon) && said.contains("addons:detach"), "{said}");
    let (_, said) = paas_fails(&p, dir, &["config:unset", "DATABASE_URL", "-a", &app]);
    assert!(said.contains(&addon), "{said}");

    // An upgrade within the major recreates the service on the same data.
    let said = p.paas_ok(dir, &["addons:upgrade", &addon, "-a", &app]);
    assert!(said.contains("done") && said.contains("same data"), "{said}");
    assert_ne!(service_container(&addon).unwrap(), c, "a new container");
    assert_eq!(dump(&p, &app), before, "the data survived the upgrade");
    let (_, said) = paas_fails(&p, dir, &["addons:upgrade", &addon, "--version", "18", "-a", &app]);
    assert!(said.contains("addons:create postgresql:18") && said.contains("backups:restore"), "the steps are given: {said}");

    // The server killed and started again: the add-on is as it was.
    p.kill();
    p.boot();
    assert_eq!(dump(&p, &app), before, "after a server restart");

    // A backup of a stopped service fails loudly, and stays in sight.
    docker_ok(&["stop", &service_container(&addon).unwrap()]);
    let (code, said) = paas_fails(&p, dir, &["pg:backups:capture", "-a", &app]);
    assert_eq!(code, 4, "refused: {said}");
    assert!(said.contains("not running"), "{said}");
    let listed = p.paas_ok(dir, &["addons", "-a", &app]);
    assert!(listed.contains("FAILED") && listed.contains("not running"), "{listed}");
    let backups: Vec<serde_json::Value> = serde_json::from_str(&p.paas_ok(dir, &["pg:backups", "-a", &app, "--json"])).unwrap();
    assert_eq!(backups[0]["state"], "failed", "{backups:?}");
    let failed = backups[0]["id"].as_str().unwrap();
    let kept: Vec<String> = std::fs::read_dir(p.data.path().join("addons").join(&addon).join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!kept.iter().any(|f| f.starts_with(failed)), "no file for a failed backup: {kept:?}");
    // Refused restores left no safety backups behind: b001, and one for each of the two restores.
    assert_eq!(backups.iter().filter(|b| b["state"] == "succeeded").count(), 3, "{backups:?}");
    // A server start brings a stopped service back.
    p.kill();
    p.boot();
    assert_eq!(dump(&p, &app), before);

    // Destroying needs the owner's name, and takes data and backups.
    let (_, said) = paas_fails(&p, dir, &["addons:destroy", &addon, "-a", &app]);
    assert!(said.contains("--confirm"), "{said}");
    let said = p.paas_ok(dir, &["addons:destroy", &addon, "-a", &app, "--confirm", &app]);
    assert!(said.contains("removed the postgresql service and its data") && said.contains("backups"), "{said}");
    assert!(service_container(&addon).is_none());
    assert_eq!(docker_ok(&["volume", "ls", "-q", "--filter", &format!("label=paas.addon={addon}")]).trim(), "");
    assert!(config(&p, dir, &app).get("DATABASE_URL").is_none(), "detached");
}

#[test]
fn redis_keys_survive_restarts_and_come_back_from_an_rdb_backup() {
    let mut p = Platform::start();
    let app = unique_app("addon-redis");
    let addon = format!("{app}-kv");
    p.track_addon(&addon);
    let dir = tempfile::tempdir().unwrap();
    p.create_app(dir.path(), &app);
    let dir = dir.path();
    let said = p.paas_ok(dir, &["addons:create", "redis", "--name", &addon, "-a", &app]);
    assert!(said.contains("REDIS_URL"), "{said}");
    let url = config(&p, dir, &app)["REDIS_URL"].as_str().unwrap().to_owned();
    assert!(url.starts_with("redis://default:") && url.ends_with(&format!("@{addon}:6379")), "{url}");
    for i in 0..50 {
        assert_eq!(redis(&addon, &url, &["set", &format!("key:{i}"), &format!("value {i} ✓")]), "OK");
    }
    // The engine restarting the container, and the server restarting.
    docker_ok(&["restart", &service_container(&addon).unwrap()]);
    poll(Duration::from_secs(30), "redis to answer after a restart", || {
        let c = service_container(&addon)?;
        let out = Command::new("docker").args(["exec", &c, "redis-cli", "--no-auth-warning", "ping"]).output().ok()?;
        (out.status.success() && !text(&out.stdout).contains("LOADING")).then_some(())
    });
    assert_eq!(redis(&addon, &url, &["dbsize"]), "50", "kept over a container restart");
    p.kill();
    p.boot();
    assert_eq!(redis(&addon, &url, &["get", "key:7"]), "value 7 ✓");

    let said = p.paas_ok(dir, &["redis:backups:capture", "-a", &app]);
    assert!(said.contains("done, b001"), "{said}");
    let file = p.data.path().join("b001.rdb");
    let out = p.paas_cmd(dir, &["redis:backups:download", "b001", "-a", &app]).stdout(std::fs::File::create(&file).unwrap()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(&file).unwrap().starts_with(b"REDIS"), "an RDB file");

    redis(&addon, &url, &["flushall"]);
    redis(&addon, &url, &["set", "after", "the backup"]);
    let said = p.paas_ok(dir, &["redis:backups:restore", "b001", "-a", &app, "--confirm", &app]);
    assert!(said.contains("safety backup b002"), "{said}");
    assert_eq!(redis(&addon, &url, &["dbsize"]), "50");
    assert_eq!(redis(&addon, &url, &["get", "key:49"]), "value 49 ✓");
    assert_eq!(redis(&addon, &url, &["exists", "after"]), "0");
    // Kept over a restart after the restore (the append-only file was made
    // again from the restored snapshot).
    docker_ok(&["restart", &service_container(&addon).unwrap()]);
    poll(Duration::from_secs(30), "redis after the restore to answer", || {
        let c = service_container(&addon)?;
        let out = Command::new("docker").args(["exec", &c, "redis-cli", "--no-auth-warning", "ping"]).output().ok()?;
        (out.status.success() && text(&out.stdout).contains("PONG") || text(&out.stdout).contains("NOAUTH")).then_some(())
    });
    assert_eq!(redis(&addon, &url, &["dbsize"]), "50");

    // A safety backup can be restored too: the state before the restore.
    p.paas_ok(dir, &["redis:backups:restore", "b002", "-a", &app, "--confirm", &app]);
    assert_eq!(redis(&addon, &url, &["get", "after"]), "the backup");

    // A garbage file is refused and the data stays.
    let garbage = p.data.path().join("garbage.rdb");
    std::fs::write(&garbage, b"REDIS0011 not really").unwrap();
    let (_, said) = paas_fails(&p, dir, &["redis:backups:restore", garbage.to_str().unwrap(), "-a", &app, "--confirm", &app]);
    assert!(said.contains("does not read back as a Redis RDB file"), "{said}");
    assert_eq!(redis(&addon, &url, &["get", "after"]), "the backup");
}

#[test]
fn add_on_bad_input_is_refused_and_says_what_to_do() {
    let mut p = Platform::start();
    let app = unique_app("addon-bad");
    let other = unique_app("addon-bad2");
    let addon = format!("{app}-db");
    p.track_addon(&addon);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    p.create_app(dir, &app);
    p.create_app(dir, &other);

    let (_, said) = paas_fails(&p, dir, &["addons:create", "mysql", "-a", &app]);
    assert!(said.contains("postgresql:17") && said.contains("redis:8"), "the offered services are listed: {said}");
    let (_, said) = paas_fails(&p, dir, &["addons:create", "postgresql:9", "-a", &app]);
    assert!(said.contains("postgresql:17"), "{said}");
    let (_, said) = paas_fails(&p, dir, &["pg:backups", "-a", &app]);
    assert!(said.contains("addons:create postgresql"), "{said}");

    p.paas_ok(dir, &["addons:create", "postgresql", "--name", &addon, "-a", &app]);
    // The name is taken, and so is DATABASE on the app.
    let (_, said) = paas_fails(&p, dir, &["addons:create", "postgresql", "--name", &addon, "-a", &other]);
    assert!(said.contains("exists already"), "{said}");
    let (_, said) = paas_fails(&p, dir, &["addons:create", "redis", "--as", "DATABASE", "-a", &app]);
    assert!(said.contains("attachment named DATABASE"), "{said}");
    let (_, said) = paas_fails(&p, dir, &["addons:attach", &addon, "-a", &app]);
    assert!(said.contains("attached to") && said.contains("already"), "{said}");

    // An admin of the other app only: the add-on does not exist for them,
    // and once attached there, it is still not theirs to destroy or upgrade.
    let stranger = format!("dev-{other}@example.com");
    p.add_user(&stranger);
    p.paas_ok(dir, &["access:add", &stranger, "--role", "admin", "-a", &other]);
    let token = p.token_of(&stranger);
    let as_stranger = |args: &[&str]| {
        let out = p.paas_cmd(dir, args).env("PAAS_TOKEN", &token).output().unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let (code, said) = as_stranger(&["addons:attach", &addon, "-a", &other]);
    assert!(code == Some(4) && said.contains("there is no add-on"), "{said}");

    // Shared with another app: destroying it, or its owner, is refused.
    let said = p.paas_ok(dir, &["addons:attach", &addon, "--as", "shared_db", "-a", &other]);
    let (code, refusal) = as_stranger(&["addons:destroy", &addon, "-a", &other, "--confirm", &app, "--force"]);
    assert!(code == Some(4) && refusal.contains(&format!("{addon} is {app}'s add-on")), "{refusal}");
    let (code, refusal) = as_stranger(&["addons:upgrade", &addon, "-a", &other]);
    assert!(code == Some(4) && refusal.contains("is done on"), "{refusal}");
    assert!(said.contains("SHARED_DB_URL"), "{said}");
    assert!(config(&p, dir, &other)["SHARED_DB_URL"].as_str().unwrap().contains(&format!("@{addon}:5432/")));
    let (_, said) = paas_fails(&p, dir, &["addons:destroy", &addon, "-a", &app, "--confirm", &app]);
    assert!(said.contains(&other) && said.contains("--force"), "{said}");
    let (_, said) = paas_fails(&p, dir, &["apps:destroy", "-a", &app, "--confirm", &app]);
    assert!(said.contains(&other) && said.contains("addons:detach"), "{said}");
    let (_, said) = paas_fails(&p, dir, &["addons:destroy", &addon, "-a", &app, "--confirm", &other]);
    assert!(said.contains(&format!("--confirm {app}")), "{said}");
    // Detached, the owner can go, and says what it took.
    p.paas_ok(dir, &["addons:detach", &addon, "-a", &other]);
    assert!(config(&p, dir, &other).get("SHARED_DB_URL").is_none());
    let said = p.paas_ok(dir, &["apps:destroy", "-a", &app, "--confirm", &app]);
    assert!(said.contains(&addon), "what it destroyed is said: {said}");
    assert!(service_container(&addon).is_none(), "the add-on went with its app");
    // Restore without anything to restore to.
    let (_, said) = paas_fails(&p, dir, &["pg:backups:restore", "b001", &addon, "-a", &other, "--confirm", &other]);
    assert!(said.contains("no add-on"), "{said}");

    // A data directory of another major is refused at start, with what to do.
    let old = format!("{other}-db");
    p.track_addon(&old);
    p.paas_ok(dir, &["addons:create", "postgresql", "--name", &old, "-a", &other]);
    let c = service_container(&old).unwrap();
    let image = docker_ok(&["inspect", "--format", "{{.Config.Image}}", &c]).trim().to_owned();
    docker_ok(&["stop", &c]);
    let volume = docker_ok(&["volume", "ls", "-q", "--filter", &format!("label=paas.addon={old}")]).trim().to_owned();
    docker_ok(&["run", "--rm", "-v", &format!("{volume}:/var/lib/paas-addon"), "--entrypoint", "sh", &image, "-c", "echo 16 > /var/lib/paas-addon/data/PG_VERSION"]);
    let (_, said) = paas_fails(&p, dir, &["addons:upgrade", &old, "-a", &other]);
    assert!(said.contains("PostgreSQL 16's") && said.contains("backup and a restore"), "{said}");
    let info = p.paas_ok(dir, &["addons:info", &old, "-a", &other]);
    assert!(info.contains("failed") && info.contains("PostgreSQL 16's"), "{info}");
}

#[test]
fn every_add_on_verb_prints_json_or_says_it_does_not() {
    let mut p = Platform::start();
    let app = unique_app("addon-json");
    let other = unique_app("addon-json2");
    let (pg, kv) = (format!("{app}-db"), format!("{app}-kv"));
    p.track_addon(&pg);
    p.track_addon(&kv);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    p.create_app(dir, &app);
    p.create_app(dir, &other);
    let backup = p.data.path().join("json.rdb");
    let prints: Vec<Vec<&str>> = vec![
        vec!["addons:create", "postgresql", "--name", &pg],
        vec!["addons:create", "redis", "--name", &kv],
        vec!["addons"],
        vec!["addons:info", &pg],
        vec!["pg:backups:capture"],
        vec!["pg:backups"],
        vec!["pg:backups:restore", "b001", "--confirm", &app],
        vec!["pg:backups:schedule", "--at", "03:00", "--retain", "2"],
        vec!["pg:backups:unschedule"],
        vec!["redis:backups:capture"],
        vec!["redis:backups"],
        vec!["redis:backups:restore", "b001", "--confirm", &app],
        vec!["redis:backups:schedule", "--at", "03:00"],
        vec!["redis:backups:unschedule"],
        vec!["addons:upgrade", &kv],
        vec!["addons:attach", &kv, "--as", "CACHE", "-a", &other],
        vec!["addons:detach", &kv, "-a", &other],
        vec!["addons:destroy", &kv, "--confirm", &app],
    ];
    let refuses: Vec<Vec<&str>> = vec![
        vec!["pg:backups:download", "b001"],
        vec!["redis:backups:download", "b001"],
        vec!["pg:psql"],
        vec!["redis:cli"],
    ];
    let mut seen = std::collections::BTreeSet::new();
    for args in &prints {
        seen.insert(args[0]);
        let out = p.paas(dir, &[&["-a", &app, "--json"], args.as_slice()].concat());
        assert!(out.status.success(), "paas {args:?} --json failed: {}", text(&out.stderr));
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&out.stdout);
        assert!(parsed.is_ok(), "paas {args:?} --json printed no JSON: {}", text(&out.stdout));
    }
    for args in &refuses {
        seen.insert(args[0]);
        let out = p.paas_cmd(dir, &[&["-a", &app, "--json"], args.as_slice()].concat()).stdout(std::fs::File::create(&backup).unwrap()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "paas {args:?} --json: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("does not print JSON"), "{}", text(&out.stderr));
    }
    let missing: Vec<&&str> = crate::shared::ADDON_VERBS.iter().filter(|v| !seen.contains(**v)).collect();
    assert!(missing.is_empty(), "add-on verbs this test does not try with --json: {missing:?}");
}

#[test]
fn consoles_open_the_services_own_clients_in_a_terminal_and_through_pipes() {
    let mut p = Platform::start();
    let app = unique_app("addon-console");
    let (pg, kv) = (format!("{app}-db"), format!("{app}-kv"));
    p.track_addon(&pg);
    p.track_addon(&kv);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    p.create_app(dir, &app);
    p.paas_ok(dir, &["addons:create", "postgresql", "--name", &pg, "-a", &app]);
    p.paas_ok(dir, &["addons:create", "redis", "--name", &kv, "-a", &app]);

    // Pipes: SQL in, rows out, psql's exit status back.
    let piped = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = p
            .paas_cmd(dir, args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = piped(&["pg:psql", "-a", &app], "CREATE TABLE t (n int); INSERT INTO t VALUES (40), (2);\nSELECT sum(n) FROM t;\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("42"), "{}", text(&out.stdout));
    let out = piped(&["pg:psql", "-a", &app], "SELECT * FROM no_such_table;\n");
    assert_eq!(out.status.code(), Some(3), "psql's ON_ERROR_STOP status: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no_such_table"), "{}", text(&out.stderr));
    let out = piped(&["redis:cli", "-a", &app], "SET greeting hello\nGET greeting\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hello"), "{}", text(&out.stdout));

    // A real terminal: psql's prompt, a query, \q.
    let env = [("PAAS_API_URL", p.api_url()), ("PAAS_TOKEN", p.token.clone()), ("HOME", p.home.path().display().to_string())];
    let cmd = format!("{} pg:psql -a {app}; echo CLI-EXIT=$?; sleep 60", cli_exe().display());
    let term = Terminal::start(&cmd, &env, 100, 30);
    // `=>`: the app's user is no superuser.
    term.wait_for("=>", Duration::from_secs(30));
    // `\g` ends the query (tmux takes a trailing `;` as its own).
    term.type_line("SELECT sum(n) * 10 AS total FROM t \\g");
    term.wait_for("420", Duration::from_secs(10));
    term.type_line("\\q");
    term.wait_for("CLI-EXIT=0", Duration::from_secs(10));
    // No client container is left behind.
    poll(Duration::from_secs(10), "the console's container to go", || {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=paas.addon={pg}"), "--filter", "label=paas.kind=addon-client"])
            .output()
            .ok()?;
        text(&out.stdout).trim().is_empty().then_some(())
    });
}

#[test]
fn app_json_add_ons_are_made_on_the_first_deploy_reached_only_from_their_apps_and_after_a_rename() {
    let mut p = Platform::start();
    let app = unique_app("addon-appjson");
    let stranger = unique_app("addon-stranger");
    let repo = dockerfile_repo(&p, "main", "appjson");
    let dir = repo.path();
    std::fs::write(dir.join("app.json"), r#"{"addons": ["heroku-postgresql", {"plan": "heroku-redis:mini", "as": "CACHE"}]}"#).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "add-ons in app.json"]);
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    let addons: Vec<serde_json::Value> = serde_json::from_str(&p.paas_ok(dir, &["addons", "-a", &app, "--json"])).unwrap();
    for a in &addons {
        p.track_addon(a["name"].as_str().unwrap());
    }
    assert!(said.contains("Creating postgresql 17 for app.json (attached as DATABASE_URL)"), "{said}");
    assert!(said.contains("Creating redis 8 for app.json (attached as CACHE_URL)"), "{said}");
    assert_eq!(addons.len(), 2, "{addons:?}");
    let config = config(&p, dir, &app);
    assert!(config["DATABASE_URL"].as_str().is_some() && config["CACHE_URL"].as_str().is_some(), "{config}");
    // The first deploy's release has them: the dynos see them.
    let env = p.paas_ok(dir, &["run", "-a", &app, "--no-tty", "env"]);
    assert!(env.contains("DATABASE_URL=postgres://") && env.contains("CACHE_URL=redis://"), "{env}");

    // A second push makes no more.
    std::fs::write(dir.join("more.txt"), "again\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "again"]);
    let said = p.push_ok(dir, &app);
    assert!(!said.contains("for app.json"), "{said}");
    let again: Vec<serde_json::Value> = serde_json::from_str(&p.paas_ok(dir, &["addons", "-a", &app, "--json"])).unwrap();
    assert_eq!(again.len(), 2);

    // The app's dynos reach Redis by its name; another app's cannot even
    // resolve it.
    let redis = addons.iter().find(|a| a["service"] == "redis").unwrap()["name"].as_str().unwrap().to_owned();
    let probe = format!("printf 'PING\\r\\n' | nc -w 3 {redis} 6379");
    let out = p.paas_ok(dir, &["run", "-a", &app, "--no-tty", "sh", "-c", &probe]);
    assert!(out.contains("NOAUTH"), "Redis answered the app's dyno (and wants its password): {out}");
    let other = dockerfile_repo(&p, "main", "stranger");
    p.create_app(other.path(), &stranger);
    p.push_ok(other.path(), &stranger);
    let out = p.paas(other.path(), &["run", "-a", &stranger, "--no-tty", "sh", "-c", &probe]);
    assert!(!text(&out.stdout).contains("NOAUTH"), "another app reached the add-on: {}", text(&out.stdout));

    // Renamed (`apps:rename`): dynos of the new name serve and reach the
    // add-ons; the old name answers nothing and its network is gone.
    let renamed = unique_app("addon-renamed");
    p.track(&renamed);
    let said = p.paas_ok(dir, &["apps:rename", &renamed, "-a", &app]);
    assert!(said.contains("Git remote paas updated"), "{said}");
    let page = p.wait_for_page(&renamed, "marker: appjson");
    let web = p.running(&renamed, "web");
    assert!(web.iter().any(|id| page.contains(&id[..12])), "a dyno of the new name serves: {page} {web:?}");
    assert!(p.running(&app, "web").is_empty(), "the old name's dynos are gone");
    assert_eq!(p.get(&app, "/").map(|(s, _)| s), Some(404));
    let out = p.paas_ok(dir, &["run", "--no-tty", "sh", "-c", &probe]);
    assert!(out.contains("NOAUTH"), "the new name's dyno (found by the updated remote) reaches Redis: {out}");
    let nets = p.docker().args(["network", "ls", "-q", "--filter"]).arg(format!("label=paas.app={app}")).output().unwrap();
    assert!(text(&nets.stdout).trim().is_empty(), "the old name's network is removed");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&p.paas_ok(dir, &["addons", "-a", &renamed, "--json"])).unwrap();
    assert_eq!(listed.len(), 2, "its add-ons stay its own");
}

#[test]
fn a_scheduled_backup_missed_while_the_server_was_down_is_taken_at_its_next_start() {
    use chrono::Timelike;
    let mut p = Platform::start();
    let app = unique_app("addon-sched");
    let addon = format!("{app}-kv");
    p.track_addon(&addon);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    p.create_app(dir, &app);
    p.paas_ok(dir, &["addons:create", "redis", "--name", &addon, "-a", &app]);
    // Due at the start of the next minute (UTC), while the server is down.
    let due = (chrono::Utc::now() + chrono::Duration::seconds(60)).with_second(0).unwrap().with_nanosecond(0).unwrap();
    let at = due.format("%H:%M").to_string();
    let said = p.paas_ok(dir, &["redis:backups:schedule", "--at", &at, "--retain", "2", "-a", &app]);
    assert!(said.contains(&format!("every day at {at} UTC")), "{said}");
    p.kill();
    // Down past its time, and past the minute the loop would have taken it in.
    poll(Duration::from_secs(150), "the scheduled time to pass", || (chrono::Utc::now() > due + chrono::Duration::seconds(62)).then_some(()));
    p.boot();
    let backups = poll(Duration::from_secs(60), "the missed backup to be taken", || {
        let list: Vec<serde_json::Value> = serde_json::from_str(&p.paas_ok(dir, &["redis:backups", "-a", &app, "--json"])).ok()?;
        list.iter().any(|b| b["kind"] == "scheduled" && b["state"] == "succeeded").then_some(list)
    });
    assert_eq!(backups.len(), 1, "one, not one per pass: {backups:?}");
    let logs = p.paas_ok(dir, &["logs", "-a", &app, "-n", "100"]);
    assert!(logs.contains(&format!("the scheduled backup of {addon} due at {at} UTC was missed")), "{logs}");
    assert!(logs.contains("scheduled backup b001") && logs.contains("verified"), "{logs}");
    let info = p.paas_ok(dir, &["addons:info", &addon, "-a", &app]);
    assert!(info.contains(&format!("daily at {at} UTC, keeping 2")) && info.contains("b001"), "{info}");
    let listed = p.paas_ok(dir, &["addons", "-a", &app]);
    assert!(listed.contains("taken late") && listed.contains("missed"), "`paas addons` says it was missed: {listed}");
}
