//! End to end, on the real Docker engine with real `git push` and real HTTP
//! through the router: the walking skeleton's whole path.

use crate::harness::*;
use std::time::Duration;

#[test]
fn git_push_deploys_configures_rolls_back_and_scales() {
    let mut p = Platform::start();
    let app = unique_app("e2e");
    p.track(&app);
    let repo = dockerfile_repo(&p, "main", "one");
    let dir = repo.path();

    // login reads the token from standard input (never argv) and stores it
    // where git finds it (~/.netrc), as with Heroku; files that were there
    // with wider modes are made 0600.
    let token = p.token.clone();
    let netrc = p.home.path().join(".netrc");
    std::fs::write(&netrc, "machine other.example login x password y
").unwrap();
    std::process::Command::new("chmod").arg("644").arg(&netrc).status().unwrap();
    let mut login = p.paas_cmd(dir, &["login", "--api-url", &p.api_url()]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(login.stdin.as_mut().unwrap(), format!("{token}\n").as_bytes()).unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Logged in"), "{out:?}");
    use std::os::unix::fs::PermissionsExt;
    for file in [netrc.clone(), p.home.path().join(".config/paas/credentials.json")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    assert!(std::fs::read_to_string(&netrc).unwrap().contains("machine other.example"), "other entries are kept");
    let created = p.paas_ok(dir, &["apps:create", &app]);
    assert!(created.contains(&format!("Creating {app}... done")), "{created}");
    assert!(p.git_ok(dir, &["remote", "get-url", "paas"]).contains(&format!("/{app}.git")));

    // Push: the build streams back as remote: lines, and the page answers.
    let pushed = p.git_ok(dir, &["push", "paas", "main"]);
    assert!(pushed.contains("remote: -----> Building"), "{pushed}");
    assert!(pushed.contains("Step 1/"), "docker build output streams to the pusher: {pushed}");
    assert!(pushed.contains("deployed to paas as v1"), "{pushed}");
    let page = p.wait_for_page(&app, "marker: one");
    assert!(page.contains("greeting: </p>"), "{page}");
    assert!(page.contains("Procfile") && !page.contains("secret.txt"), ".dockerignore is honoured: {page}");

    // Config change: a new release, dynos rolled, the page shows the value.
    p.paas_ok(dir, &["config:set", "GREETING=hi"]);
    p.wait_for_page(&app, "greeting: hi</p>");
    assert_eq!(p.paas_ok(dir, &["config:get", "GREETING"]).trim(), "hi");

    // Roll back to v1: the old (unset) value is back, as a new release v3.
    let rolled = p.paas_ok(dir, &["releases:rollback", "v1"]);
    assert!(rolled.contains("done, v3"), "{rolled}");
    p.wait_for_page(&app, "greeting: </p>");
    let releases: serde_json::Value =
        serde_json::from_str(&p.paas_ok(dir, &["releases", "--json"])).unwrap();
    let descriptions: Vec<&str> = releases.as_array().unwrap().iter().map(|r| r["description"].as_str().unwrap()).collect();
    assert_eq!(descriptions[..2], ["Rollback to v1", "Set GREETING config vars"]);
    assert!(descriptions[2].starts_with("Deploy "));

    // A broken build rejects the push; the running release keeps serving.
    std::fs::write(dir.join("Dockerfile"), format!("FROM {BASE_IMAGE}\nRUN echo about to fail && exit 3\n")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "broken"]);
    let out = p.git(dir, &["push", "paas", "main"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "a failing build must reject the push: {said}");
    assert!(said.contains("about to fail") && said.contains("Push rejected"), "{said}");
    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("marker: one"), "{body}");
    let builds: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["builds", "--json"])).unwrap();
    assert_eq!(builds[0]["status"], "failed");
    assert_eq!(builds[1]["status"], "succeeded");

    // Scale web=2: two containers serve, round-robin.
    p.paas_ok(dir, &["ps:scale", "web=2"]);
    poll(Duration::from_secs(60), "two web dynos", || (p.running(&app, "web").len() == 2).then_some(()));
    let mut hosts = std::collections::BTreeSet::new();
    poll(Duration::from_secs(30), "responses from two different dynos", || {
        let (_, body) = p.get(&app, "/")?;
        let host = body.split("host: ").nth(1)?.split('<').next()?.to_owned();
        hosts.insert(host);
        (hosts.len() == 2).then_some(())
    });
    let ps = p.paas_ok(dir, &["ps"]);
    assert!(ps.contains("web.1") && ps.contains("web.2"), "{ps}");

    // Destroy removes the dynos.
    let refused = p.paas(dir, &["apps:destroy"]);
    assert!(!refused.status.success(), "destroy needs --confirm");
    p.paas_ok(dir, &["apps:destroy", "--confirm", &app]);
    poll(Duration::from_secs(30), "dynos of the destroyed app to go", || {
        p.running(&app, "web").is_empty().then_some(())
    });
}

#[test]
fn push_to_another_branch_is_refused_with_a_hint() {
    let mut p = Platform::start();
    let app = unique_app("e2e-branch");
    let repo = dockerfile_repo(&p, "feature", "branch");
    let dir = repo.path();
    p.create_app(dir, &app);
    let url = format!("http://git:{}@127.0.0.1:{}/{app}.git", p.token, p.api_port);
    let out = p.git(dir, &["push", &url, "feature"]);
    let said = text(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("only main or master deploy"), "{said}");
    let releases = p.paas_ok(dir, &["releases", "-a", &app]);
    assert!(releases.contains("no releases yet"), "{releases}");
    // A wrong token is refused before git sees anything.
    let bad = format!("http://git:wrong@127.0.0.1:{}/{app}.git", p.api_port);
    let out = p.git(dir, &["push", &bad, "feature:main"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("Authentication failed") || text(&out.stderr).contains("401"), "{}", text(&out.stderr));
}

#[test]
fn a_restarted_server_adopts_running_dynos() {
    let mut p = Platform::start();
    let app = unique_app("e2e-adopt");
    let repo = dockerfile_repo(&p, "main", "adopt");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: adopt");
    let before = p.running(&app, "web");
    assert_eq!(before.len(), 1);

    p.kill();
    p.boot();
    p.wait_for_page(&app, "marker: adopt");
    assert_eq!(p.running(&app, "web"), before, "the same container serves: no duplicate, no restart");
}

#[test]
fn a_release_whose_web_never_answers_leaves_the_old_dynos_serving() {
    let mut p = Platform::start_with(&[("PAAS_BOOT_TIMEOUT_SECONDS", "3")]);
    let app = unique_app("e2e-hold");
    let repo = dockerfile_repo(&p, "main", "good");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: good");
    let before = p.running(&app, "web");

    std::fs::write(dir.join("Procfile"), "web: echo listening soon; exec sleep 100000\n").unwrap();
    p.git_ok(dir, &["commit", "-qam", "a web process that never listens"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "a release whose web never answers rejects the push: {said}");
    assert!(said.contains("did not answer on $PORT in time"), "{said}");
    assert!(said.contains("previous release's web dynos keep serving"), "{said}");
    assert!(said.contains("listening soon"), "the dyno's output is shown: {said}");
    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("marker: good"), "{body}");
    let now = p.running(&app, "web");
    assert!(before.iter().all(|id| now.contains(id)), "the old dyno still runs: {before:?} {now:?}");
    let releases = p.paas_ok(dir, &["releases", "-a", &app]);
    assert!(releases.contains("failed") && releases.contains("succeeded"), "{releases}");
}

#[test]
fn a_dyno_that_crashes_at_boot_shows_its_exit_code_and_output_and_is_restarted_with_backoff() {
    let mut p = Platform::start_with(&[("PAAS_BOOT_TIMEOUT_SECONDS", "10")]);
    let app = unique_app("e2e-crash");
    let repo = dockerfile_repo(&p, "main", "crash");
    let dir = repo.path();
    // A first deploy whose web process dies at once, saying why.
    std::fs::write(dir.join("Procfile"), "web: echo 'ImportError: No module named flask' >&2; exit 3\n").unwrap();
    p.git_ok(dir, &["commit", "-qam", "crashes at boot"]);
    p.create_app(dir, &app);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("web.1 exited with status 3"), "{said}");
    assert!(said.contains("ImportError: No module named flask"), "{said}");
    let info = p.paas_ok(dir, &["releases:info", "v1", "-a", &app]);
    assert!(info.contains("failed") && info.contains("exited with status 3"), "{info}");

    // A worker that crashes after a good deploy is restarted, with backoff,
    // and `paas ps` says so.
    write_fixture_app(dir, "crash");
    let procfile = std::fs::read_to_string(dir.join("Procfile")).unwrap();
    std::fs::write(dir.join("Procfile"), procfile.replace("worker: exec sleep 100000", "worker: sleep 4; exit 5")).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "good web, crashing worker"]);
    p.push_ok(dir, &app);
    p.paas_ok(dir, &["ps:scale", "worker=1", "-a", &app]);
    let ps = poll(Duration::from_secs(60), "the worker to crash twice", || {
        let ps = p.paas_ok(dir, &["ps", "-a", &app, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&ps).unwrap();
        let w = v.as_array().unwrap().iter().find(|d| d["name"] == "worker.1")?.clone();
        (w["restarts"].as_u64()? >= 2 && w["exit_code"] == 5).then_some(w)
    });
    assert_eq!(ps["command"], "sleep 4; exit 5", "the Procfile command, not /bin/sh -c: {ps}");
    let table = p.paas_ok(dir, &["ps", "-a", &app]);
    assert!(table.contains("worker.1") && table.contains("Restarts"), "{table}");
}

#[test]
fn an_app_json_health_check_path_gates_traffic() {
    let mut p = Platform::start_with(&[("PAAS_BOOT_TIMEOUT_SECONDS", "3")]);
    let app = unique_app("e2e-health");
    let repo = dockerfile_repo(&p, "main", "good");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: good");

    // /health answers 404: the new dyno gets no traffic.
    std::fs::write(dir.join("app.json"), "{\"healthchecks\": {\"web\": [{\"type\": \"startup\", \"path\": \"/health\"}]}}\n").unwrap();
    write_fixture_app(dir, "two");
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "health check without a health page"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("did not pass its startup check (GET /health on $PORT)"), "{said}");
    let (_, body) = p.get(&app, "/").unwrap();
    assert!(body.contains("marker: good"), "{body}");

    // With a /health page the new release takes over.
    write_fixture_app(dir, "three");
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap() + "RUN mkdir -p /www && echo ok > /www/health\n";
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    p.git_ok(dir, &["commit", "-qam", "a health page"]);
    let said = p.push_ok(dir, &app);
    assert!(!said.contains("did not answer"), "{said}");
    p.wait_for_page(&app, "marker: three");
    let info = p.paas_ok(dir, &["releases:info", "v3", "-a", &app, "--json"]);
    assert!(info.contains("\"health_path\": \"/health\""), "{info}");
}

#[test]
fn concurrent_config_changes_and_a_push_all_land() {
    let mut p = Platform::start();
    let app = unique_app("e2e-race");
    let repo = dockerfile_repo(&p, "main", "first");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: first");
    write_fixture_app(dir, "second");
    p.git_ok(dir, &["commit", "-qam", "second"]);

    // Eight config changes of different keys over real HTTP, while a real
    // git push of the same app builds and releases.
    std::thread::scope(|s| {
        let pusher = s.spawn(|| p.push_ok(dir, &app));
        let setters: Vec<_> = (0..8)
            .map(|i| {
                let (api, url) = (p.api(), p.url(&format!("/apps/{app}/config-vars?wait=60")));
                s.spawn(move || {
                    let r = api.patch(url).json(&serde_json::json!({ format!("KEY_{i}"): i.to_string() })).send().unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
                })
            })
            .collect();
        for t in setters {
            t.join().unwrap();
        }
        pusher.join().unwrap();
    });

    let vars: serde_json::Value = p.api().get(p.url(&format!("/apps/{app}/config-vars"))).send().unwrap().json().unwrap();
    for i in 0..8 {
        assert_eq!(vars[format!("KEY_{i}")], i.to_string(), "KEY_{i} was lost: {vars}");
    }
    let releases: serde_json::Value = p.api().get(p.url(&format!("/apps/{app}/releases"))).send().unwrap().json().unwrap();
    let versions: Vec<i64> = releases.as_array().unwrap().iter().rev().map(|r| r["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>(), "strictly increasing, no gap, no duplicate");
    // The pushed build serves with every key.
    p.wait_for_page(&app, "marker: second");
    let ps = p.paas_ok(dir, &["config", "-a", &app, "--shell"]);
    assert_eq!(ps.lines().filter(|l| l.starts_with("KEY_")).count(), 8, "{ps}");
}

#[test]
fn config_changes_say_truthfully_when_they_serve_and_when_they_do_not() {
    let mut p = Platform::start_with(&[("PAAS_BOOT_TIMEOUT_SECONDS", "3")]);
    let app = unique_app("e2e-truth");
    let repo = dockerfile_repo(&p, "main", "truth");
    let dir = repo.path();
    // The web process never listens when BROKEN=1.
    let procfile = std::fs::read_to_string(dir.join("Procfile")).unwrap();
    std::fs::write(dir.join("Procfile"), procfile.replacen("web: ", "web: [ \"$BROKEN\" = 1 ] && exec sleep 100000; ", 1)).unwrap();
    p.git_ok(dir, &["commit", "-qam", "a switch to break the web process"]);
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: truth");

    // "done" means done: the very next request sees the new value.
    let said = p.paas_ok(dir, &["config:set", "GREETING=hi"]);
    assert!(said.contains("done, v2"), "{said}");
    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("greeting: hi</p>"), "served right after config:set returned: {body}");

    // New dynos that never answer: the CLI says so, and fails; the old
    // ones keep serving.
    let out = p.paas(dir, &["config:set", "BROKEN=1"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("v3 was made"), "{said}");
    assert!(said.contains("did not answer on $PORT"), "{said}");
    assert!(said.contains("previous release's web dynos keep serving"), "{said}");
    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("greeting: hi</p>"), "{body}");

    // --no-wait returns once the release is made.
    let said = p.paas_ok(dir, &["config:unset", "BROKEN", "--no-wait"]);
    assert!(said.contains("done, v4") && said.contains("background"), "{said}");
    // ... and the change lands in the background.
    poll(Duration::from_secs(60), "v4 to serve", || {
        let v: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["ps", "-a", &app, "--json"])).ok()?;
        let web = v.as_array()?.iter().find(|d| d["name"] == "web.1")?.clone();
        (web["release_version"] == 4 && web["state"] == "up").then_some(())
    });
    p.wait_for_page(&app, "greeting: hi</p>");
}

fn docker(args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker").args(args).output().unwrap()
}

#[test]
fn apps_are_isolated_from_each_other_and_locked_down() {
    let mut p = Platform::start_with(&[("PAAS_DYNO_CPUS", "0.5")]);
    let (a, b) = (unique_app("e2e-iso-a"), unique_app("e2e-iso-b"));
    let repo_b = dockerfile_repo(&p, "main", "bee");
    p.create_app(repo_b.path(), &b);
    p.push_ok(repo_b.path(), &b);
    // A's image claims, by its own labels, to be a worker of app B.
    let repo_a = dockerfile_repo(&p, "main", "ay");
    let dockerfile = std::fs::read_to_string(repo_a.path().join("Dockerfile")).unwrap();
    std::fs::write(
        repo_a.path().join("Dockerfile"),
        format!("{dockerfile}LABEL paas.app={b} paas.process=worker paas.index=7 paas.kind=task\n"),
    )
    .unwrap();
    p.git_ok(repo_a.path(), &["commit", "-qam", "labels that lie"]);
    p.create_app(repo_a.path(), &a);
    p.push_ok(repo_a.path(), &a);
    p.wait_for_page(&a, "marker: ay");
    p.wait_for_page(&b, "marker: bee");

    // The platform's labels win over the image's.
    let a_web = p.running(&a, "web");
    assert_eq!(a_web.len(), 1, "A's dyno is A's web dyno");
    assert!(p.running(&b, "worker").is_empty(), "no worker of B appeared");
    let kind = docker(&["inspect", "-f", "{{index .Config.Labels \"paas.kind\"}}", &a_web[0]]);
    assert_eq!(text(&kind.stdout).trim(), "dyno");

    // Each app has its own network: B's dyno answers on its own address,
    // but not to A's dyno.
    let b_web = p.running(&b, "web");
    let ip = docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &b_web[0]]);
    let ip = text(&ip.stdout).trim().to_owned();
    assert!(!ip.is_empty());
    // (busybox nc: the static busybox's wget crashes in these images.)
    let fetch = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 5000");
    let own = docker(&["exec", &b_web[0], "sh", "-c", &fetch]);
    assert!(text(&own.stdout).contains("marker: bee"), "B reaches itself: {}{}", text(&own.stdout), text(&own.stderr));
    // paas's own chain drops it, before Docker's rules are consulted (they
    // lapse for a moment each time the engine makes a network, as other
    // tests' apps' networks are being made now).
    let dropped = guard_drops();
    let cross = docker(&["exec", &a_web[0], "sh", "-c", &fetch]);
    assert!(!text(&cross.stdout).contains("marker: bee"), "A must not reach B's dyno: {}", text(&cross.stdout));
    assert!(guard_drops() > dropped, "paas's {} chain dropped A's attempt", paas_server::runtime::isolation::CHAIN);

    // Capabilities dropped, a pids limit, a capped log, PAAS_DYNO_CPUS.
    let host = docker(&["inspect", "-f", LOCKDOWN_FORMAT, &a_web[0]]);
    let host = text(&host.stdout);
    assert!(host.contains("NET_RAW") && host.contains("1024") && host.contains("10m"), "{host}");
    assert!(host.contains("cpus=500000000"), "half a CPU: {host}");

    // Destroying the app removes its network.
    let net = docker(&["network", "ls", "-q", "--filter", &format!("label=paas.app={a}")]);
    assert!(!text(&net.stdout).trim().is_empty(), "A has a network");
    p.paas_ok(repo_a.path(), &["apps:destroy", "-a", &a, "--confirm", &a]);
    let net = docker(&["network", "ls", "-q", "--filter", &format!("label=paas.app={a}")]);
    assert!(text(&net.stdout).trim().is_empty(), "A's network is gone");
}

#[test]
fn resize_restart_and_stop_on_the_real_engine() {
    let mut p = Platform::start();
    let app = unique_app("e2e-ps");
    let repo = dockerfile_repo(&p, "main", "ps");
    let dir = repo.path();
    // A worker that needs far more memory than 64M.
    let procfile = std::fs::read_to_string(dir.join("Procfile")).unwrap();
    std::fs::write(dir.join("Procfile"), procfile.replace("worker: exec sleep 100000", "worker: head -c 400000000 /dev/zero | tail")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "a hungry worker"]);
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: ps");

    // Sizes are Docker memory limits; an out-of-memory kill says so.
    let out = p.paas(dir, &["ps:scale", "worker=1:64M", "web=2", "-a", &app]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "the worker does not come up: {said}");
    assert!(said.contains("worker=1 (64M)") && said.contains("web=2 (512M)"), "{said}");
    assert!(said.contains("v1's new dynos did not come up"), "{said}");
    assert!(said.contains("worker.1 was killed for using more memory than its limit (out of memory)"), "{said}");
    let worker = poll(Duration::from_secs(60), "the worker to be killed for memory", || {
        let v: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["ps", "-a", &app, "--json"])).unwrap();
        v.as_array().unwrap().iter().find(|d| d["name"] == "worker.1" && d["exit_code"] == 137).cloned()
    });
    let limit = docker(&["inspect", "-f", "{{.HostConfig.Memory}}", &p.running(&app, "web")[0]]);
    assert_eq!(text(&limit.stdout).trim(), (512u64 << 20).to_string());
    assert!(worker["restarts"].as_u64().unwrap() >= 1, "{worker}");

    // A rolling restart of web drops no request.
    p.paas_ok(dir, &["ps:scale", "worker=0", "-a", &app]);
    let before = p.running(&app, "web");
    assert_eq!(before.len(), 2);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ok, failed) = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match p.get(&app, "/") {
                    Some((200, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        });
        let said = p.paas_ok(dir, &["ps:restart", "web", "-a", &app]);
        assert!(said.contains("web.1, web.2"), "{said}");
        // The replaced dynos, in their stop grace, say so; none is "starting".
        let v: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["ps", "-a", &app, "--json"])).unwrap();
        let states: Vec<&str> = v.as_array().unwrap().iter().map(|d| d["state"].as_str().unwrap()).collect();
        assert!(states.iter().all(|s| *s == "up" || *s == "stopping"), "{states:?}");
        assert_eq!(states.iter().filter(|s| **s == "up").count(), 2, "{states:?}");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.join().unwrap()
    });
    assert!(ok > 10 && failed.is_empty(), "{ok} answered, failed: {failed:?}");
    let after = poll(Duration::from_secs(30), "the old web dynos to go", || {
        let now = p.running(&app, "web");
        (now.len() == 2 && now.iter().all(|id| !before.contains(id))).then_some(now)
    });

    // ps:stop stops a dyno; the formation brings it back.
    p.paas_ok(dir, &["ps:stop", "web.2", "-a", &app]);
    poll(Duration::from_secs(30), "web.2 to come back", || {
        let now = p.running(&app, "web");
        (now.len() == 2 && !now.iter().all(|id| after.contains(id))).then_some(())
    });
    let bad = p.paas(dir, &["ps:stop", "web.9", "-a", &app]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("no dyno web.9"), "{}", text(&bad.stderr));
}

#[test]
fn app_json_startup_and_liveness_checks_on_the_real_engine() {
    let mut p = Platform::start();
    let app = unique_app("e2e-checks");
    let repo = dockerfile_repo(&p, "main", "checks");
    let dir = repo.path();
    let procfile = std::fs::read_to_string(dir.join("Procfile")).unwrap();
    std::fs::write(dir.join("Procfile"), procfile.replacen("web: ", "web: echo ok > /www/health; ", 1)).unwrap();
    std::fs::write(
        dir.join("app.json"),
        r#"{"healthchecks": {"web": [
            {"type": "startup", "path": "/health", "content": "ok", "attempts": 10, "wait": 1},
            {"type": "liveness", "path": "/health", "attempts": 2, "timeout": 2}
        ]}}"#,
    )
    .unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "health checks"]);
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: checks");

    // The running dyno stops passing its liveness check: it is replaced.
    let before = p.running(&app, "web");
    let rm = docker(&["exec", &before[0], "rm", "/www/health"]);
    assert!(rm.status.success());
    poll(Duration::from_secs(60), "the failing dyno to be replaced", || {
        let now = p.running(&app, "web");
        let serving = p.get(&app, "/health").is_some_and(|(s, b)| s == 200 && b.contains("ok"));
        (now.len() == 1 && now != before && serving).then_some(())
    });
    let ps: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["ps", "-a", &app, "--json"])).unwrap();
    assert_eq!(ps[0]["restarts"], 1, "{ps}");
}

#[test]
fn app_json_as_other_platforms_write_it_and_env_on_the_first_deploy() {
    let mut p = Platform::start();
    let app = unique_app("e2e-appjson");
    let repo = dockerfile_repo(&p, "main", "appjson");
    let dir = repo.path();
    std::fs::write(
        dir.join("app.json"),
        r#"{
  "name": "sample", "addons": ["heroku-postgresql"], "image": "heroku/nodejs",
  "scripts": {"acme": {"postdeploy": "./setup"}},
  "env": {"GREETING": "from app.json", "SECRET_KEY_BASE": {"generator": "secret"}}
}"#,
    )
    .unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "app.json from elsewhere"]);
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    for key in ["image", "name", "scripts.acme"] {
        assert!(said.contains(key) && said.contains("paas ignores"), "{key}: {said}");
    }
    // Heroku's add-on is made, as on Heroku (the add-on tests say more).
    assert!(said.contains("Creating postgresql 17 for app.json (attached as DATABASE_URL)"), "{said}");
    assert!(said.contains("Setting config vars from app.json: GREETING, SECRET_KEY_BASE"), "{said}");
    p.wait_for_page(&app, "greeting: from app.json</p>");
    let secret = p.paas_ok(dir, &["config:get", "SECRET_KEY_BASE", "-a", &app]).trim().to_owned();
    assert_eq!(secret.len(), 64, "{secret}");

    // Only the first deploy sets them up.
    write_fixture_app(dir, "again");
    p.git_ok(dir, &["commit", "-qam", "again"]);
    let said = p.push_ok(dir, &app);
    assert!(!said.contains("Setting config vars from app.json"), "{said}");
    assert_eq!(p.paas_ok(dir, &["config:get", "SECRET_KEY_BASE", "-a", &app]).trim(), secret);
}

#[test]
fn builds_over_their_time_or_memory_limit_fail_and_the_old_release_serves() {
    // The timeout leaves the hungry build (which the memory limit ends in
    // a second or two) room on a slow machine: at 4 s it once ran out of
    // time before memory, and was named a timeout.
    let mut p = Platform::start_with(&[("PAAS_BUILD_TIMEOUT_SECONDS", "12"), ("PAAS_BUILD_MEMORY", "64M")]);
    let app = unique_app("e2e-limits");
    let repo = dockerfile_repo(&p, "main", "limits");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: limits");
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();

    std::fs::write(dir.join("Dockerfile"), format!("{dockerfile}RUN sleep 60 # slow-build-marker\n")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "too slow"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("the build took longer than 12 s, the build timeout") && said.contains("PAAS_BUILD_TIMEOUT_SECONDS"), "{said}");

    std::fs::write(dir.join("Dockerfile"), format!("{dockerfile}RUN head -c 300000000 /dev/zero | tail\n")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "too hungry"]);
    let (ok, said) = p.push(dir, &app);
    assert!(!ok, "{said}");
    assert!(said.contains("build memory limit of 64 MiB") && said.contains("PAAS_BUILD_MEMORY"), "{said}");

    let (status, body) = p.get(&app, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("marker: limits"), "the old release serves: {body}");
    // The timed-out build's step does not keep running.
    poll(Duration::from_secs(30), "the slow build step to be gone", || {
        let out = docker(&["ps", "-q", "--filter", "status=running"]);
        let ids: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        let slow = ids.iter().any(|id| {
            let cmd = docker(&["inspect", "-f", "{{.Config.Cmd}}", id]);
            text(&cmd.stdout).contains("slow-build-marker")
        });
        (!slow).then_some(())
    });
}

#[test]
fn the_router_sets_forwarding_headers_and_a_client_cannot_forge_them() {
    let mut p = Platform::start_with(&[("PAAS_ROUTER_TLS_LISTEN", "127.0.0.1:0")]);
    let app = unique_app("e2e-headers");
    let repo = dockerfile_repo(&p, "main", "headers");
    let dir = repo.path();
    std::fs::write(
        dir.join("env.cgi"),
        "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO port=$HTTP_X_FORWARDED_PORT rid=$HTTP_X_REQUEST_ID start=$HTTP_X_REQUEST_START hop=$HTTP_X_SECRET_HOP\"\n",
    )
    .unwrap();
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("{dockerfile}RUN mkdir -p /www/cgi-bin && cp /app/env.cgi /www/cgi-bin/env && chmod +x /www/cgi-bin/env\n"),
    )
    .unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "echo headers"]);
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: headers");
    let body = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{}/cgi-bin/env", p.router_port))
        .header("Host", format!("{app}.localhost:{}", p.router_port))
        .header("X-Forwarded-For", "6.6.6.6")
        .header("Connection", "x-secret-hop")
        .header("X-Secret-Hop", "leaked")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("xff=127.0.0.1 "), "the peer, not the forged value: {body}");
    assert!(body.contains(&format!("port={} ", p.router_port)), "{body}");
    assert!(!body.contains("rid= ") && !body.contains("start= "), "{body}");
    assert!(body.contains("hop=\n") || body.trim_end().ends_with("hop="), "hop-by-hop headers are dropped: {body}");

    // A custom domain, added with the CLI, reaches the same app.
    let custom = format!("www.{app}.test");
    p.paas_ok(dir, &["domains:add", &custom, "-a", &app]);
    let listed = p.paas_ok(dir, &["domains", "-a", &app]);
    assert!(listed.contains(&custom) && listed.contains("custom"), "{listed}");
    let served = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{}/", p.router_port))
        .header("Host", &custom)
        .send()
        .unwrap();
    assert_eq!(served.status(), 200);
    assert!(served.text().unwrap().contains("marker: headers"));
    // Over HTTPS, with a certificate added with the CLI: X-Forwarded-Proto says so.
    let cert = rcgen::generate_simple_self_signed(vec![custom.clone()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    p.paas_ok(dir, &["certs:add", "cert.pem", "key.pem", "-a", &app]);
    let tls_port = p.tls_port.expect("the router's HTTPS port");
    let body = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve(&custom, std::net::SocketAddr::from(([127, 0, 0, 1], tls_port)))
        .build()
        .unwrap()
        .get(format!("https://{custom}:{tls_port}/cgi-bin/env"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("proto=https ") && body.contains(&format!("port={tls_port} ")), "{body}");
    p.paas_ok(dir, &["domains:remove", &custom, "-a", &app]);
    let gone = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{}/", p.router_port))
        .header("Host", &custom)
        .send()
        .unwrap();
    assert_eq!(gone.status(), 404);
}

/// One WebSocket frame from a client: FIN, `opcode`, masked as RFC 6455 asks.
fn ws_client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one (unmasked, short) frame from the server: (opcode, payload).
fn ws_read_frame(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let mut payload = vec![0u8; (head[1] & 0x7f) as usize];
    s.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

#[test]
fn a_websocket_app_works_through_the_router() {
    use std::io::{Read, Write};
    let mut p = Platform::start();
    let app = unique_app("e2e-ws");
    let repo = fixture_repo(&p, "websocket");
    let dir = repo.path();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {}\nCOPY ws.py /app/ws.py\n", paas_server::settings::DEFAULT_RUN)).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "a websocket echo app"]);
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "plain http");

    let mut s = std::net::TcpStream::connect(("127.0.0.1", p.router_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /socket HTTP/1.1\r\nHost: {app}.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = text(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's own example key and answer: the dyno's handshake arrives intact.
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    assert_eq!(ws_read_frame(&mut s), (1, b"hello from web.1".to_vec()), "the dyno speaks first");
    s.write_all(&ws_client_frame(1, b"ping over the router")).unwrap();
    assert_eq!(ws_read_frame(&mut s), (1, b"echo: ping over the router".to_vec()));
    s.write_all(&ws_client_frame(2, &[0, 1, 2, 254, 255])).unwrap();
    assert_eq!(ws_read_frame(&mut s), (2, b"echo: \x00\x01\x02\xfe\xff".to_vec()), "binary frames too");
    s.write_all(&ws_client_frame(8, b"")).unwrap();
    assert_eq!(ws_read_frame(&mut s).0, 8, "a close is answered");
}

#[test]
fn no_request_fails_across_deploys_config_changes_restarts_and_scaling_under_load() {
    zero_failures_under_change("container", "e2e-zero");
}

/// The same, with dynos reached at the port Docker publishes on 127.0.0.1
/// (as for a rootless or remote engine) instead of their container address.
#[test]
fn no_request_fails_under_change_through_published_ports() {
    zero_failures_under_change("published", "e2e-zero-pub");
}

/// Whether some socket on this machine has an established TCP connection to
/// `addr` (IPv4), from `/proc/net/tcp`.
fn established_to(addr: std::net::SocketAddrV4) -> bool {
    let want = format!("{:08X}:{:04X}", u32::from_le_bytes(addr.ip().octets()), addr.port());
    std::fs::read_to_string("/proc/net/tcp").unwrap().lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(2) == Some(&want.as_str()) && f.get(3) == Some(&"01")
    })
}

/// The web dyno's container address on its app network and its published
/// port on 127.0.0.1.
fn web_dyno_addresses(p: &Platform, app: &str) -> (std::net::SocketAddrV4, std::net::SocketAddrV4) {
    let ids = p.running(app, "web");
    let id = ids.first().expect("a web dyno");
    let ip = text(&docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id]).stdout);
    let port = text(&docker(&["port", id, "5000/tcp"]).stdout);
    let port: u16 = port.lines().next().and_then(|l| l.rsplit(':').next()).and_then(|p| p.trim().parse().ok()).expect("a published port");
    (std::net::SocketAddrV4::new(ip.trim().parse().expect("an IPv4 address"), 5000), std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port))
}

fn zero_failures_under_change(dyno_address: &str, name: &str) {
    let mut p = Platform::start_with(&[("PAAS_STOP_GRACE_SECONDS", "5"), ("PAAS_DYNO_ADDRESS", dyno_address)]);
    let app = unique_app(name);
    let repo = keepalive_repo(&p);
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "ok web.1");
    // The router keeps its connection to the dyno open, at the address asked for.
    let (container, published) = web_dyno_addresses(&p, &app);
    // (Docker's port proxy itself connects to the container address, so
    // only the published port tells the two apart.)
    let via_container = dyno_address == "container";
    assert!(established_to(if via_container { container } else { published }), "the router holds a connection to the dyno");
    assert_eq!(established_to(published), !via_container, "connections to the published port {published}");

    // Four clients with keep-alive connections, as many requests as they
    // can until the changes are done; every answer must be a 200.
    let load = Load::start(&p, &app, 4);
    for change in [
        &["config:set", "GREETING=one"][..],
        &["config:set", "GREETING=two"],
        &["ps:restart"],
        &["ps:scale", "web=2"],
        &["ps:scale", "web=1"],
        &["ps:scale", "web=2"],
        &["releases:rollback", "v2"],
        &["config:set", "GREETING=three"],
    ] {
        let mut args = change.to_vec();
        args.extend(["-a", &app]);
        let out = p.paas(dir, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}\nlogs:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            p.paas_ok(dir, &["logs", "-n", "1500", "-s", "paas", "-a", &app]).lines().filter(|l| !l.contains("[router]")).collect::<Vec<_>>().join("\n")
        );
    }
    // And a deploy: a new build of the code.
    let code = std::fs::read_to_string(dir.join("web.py")).unwrap();
    std::fs::write(dir.join("web.py"), format!("{code}\n# deployed again\n")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "a new build"]);
    p.push_ok(dir, &app);
    load.stop().assert_no_failures("across the changes");
    let (_, body) = p.get(&app, "/").unwrap();
    assert!(body.contains("three"), "{body}");
}

/// Opens `n` plain connections to `port` on loopback; every other one sends
/// the start of a request head and then nothing (slowloris).
fn hold_connections(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..n)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            if i % 2 == 1 {
                s.write_all(b"GET / HTTP/1.1\r\nHost: slow.localhost\r\nX-Slow: 1").unwrap();
            }
            s
        })
        .collect()
}

/// The server started under Debian's default soft open-file limit (1024):
/// it raises the limit itself, so a thousand idle or slowloris connections
/// at the router and two hundred at the API starve neither the app nor
/// `git push`, on the real engine; the header timeout then closes them.
#[test]
fn a_thousand_idle_connections_starve_neither_the_app_nor_git_push() {
    use rlimit::Resource;
    // nextest runs each test in a process of its own, and the server takes
    // this process's limits: lower the soft one for its start only.
    let (soft, hard) = Resource::NOFILE.get().unwrap();
    Resource::NOFILE.set(1024.min(hard), hard).unwrap();
    let mut p = Platform::start_with(&[("PAAS_HEADER_TIMEOUT_SECONDS", "8")]);
    Resource::NOFILE.set(soft, hard).unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.server_pid().unwrap())).unwrap();
    let server_soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .expect("the server's open-file limit");
    assert!(server_soft > 1024 || hard <= 1024, "the server raised its open-file limit: {limits}");

    let app = unique_app("e2e-idle");
    let repo = dockerfile_repo(&p, "main", "before");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: before");

    let mut router_held = hold_connections(p.router_port, 1000);
    let api_held = hold_connections(p.api_port, 200);
    // With all of them open: the app answers, the API answers, a push deploys.
    let (status, body) = p.get(&app, "/").expect("the app answers");
    assert!(status == 200 && body.contains("marker: before"), "{status} {body}");
    let r = p.api().get(p.url("/apps")).send().unwrap();
    assert_eq!(r.status(), 200);
    write_fixture_app(dir, "after");
    p.git_ok(dir, &["commit", "-qam", "after"]);
    p.push_ok(dir, &app);
    p.wait_for_page(&app, "marker: after");
    // And no connection waited for want of a file descriptor (under the
    // inherited limit of 1024, hundreds did: "accept failed ... Too many
    // open files").
    let log = p.log();
    assert!(!log.contains("accept failed"), "{}", log.lines().filter(|l| l.contains("accept failed")).take(3).collect::<Vec<_>>().join("\n"));

    // The header timeout closes them: no answer, or a 408 (bounded wait).
    use std::io::Read;
    for s in router_held.iter_mut().step_by(50) {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).expect("closed by the header timeout, not left open");
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    }
    drop(api_held);
}

#[test]
fn dockerfile_run_steps_get_no_new_privileges_and_the_cpu_limit() {
    let mut p = Platform::start_with(&[("PAAS_DYNO_CPUS", "0.5")]);
    let app = unique_app("e2e-runpriv");
    let repo = dockerfile_repo(&p, "main", "runpriv");
    let dir = repo.path();
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    // Each RUN step runs in a container of the classic builder's.
    let steps = "RUN echo \"step $(grep NoNewPrivs /proc/self/status)\"\nRUN echo \"step quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)\"\n";
    std::fs::write(dir.join("Dockerfile"), format!("{dockerfile}{steps}")).unwrap();
    p.git_ok(dir, &["commit", "-qam", "run steps"]);
    p.create_app(dir, &app);
    let said = p.push_ok(dir, &app);
    let norm = said.replace('\t', " ");
    assert!(norm.contains("step NoNewPrivs: 1"), "RUN steps cannot gain privileges: {said}");
    assert!(norm.contains("step quota=50000"), "RUN steps get PAAS_DYNO_CPUS (50 ms per 100 ms): {said}");
}

/// What the engine and the data directory hold of `app`, by kind; empty
/// kinds left out.
fn left_of(p: &Platform, app: &str) -> Vec<String> {
    let listed = |args: &[&str]| -> Vec<String> {
        let out = p.docker().args(args).output().unwrap();
        text(&out.stdout).lines().map(str::to_owned).filter(|l| !l.is_empty()).collect()
    };
    let mut left = Vec::new();
    let label = format!("label=paas.app={app}");
    for (kind, found) in [
        ("containers", listed(&["ps", "-aq", "--filter", &label])),
        ("build containers", listed(&["ps", "-aq", "--filter", &format!("label=paas.task=build-{app}")])),
        ("images", listed(&["images", "-q", &format!("paas/{app}")])),
        ("dependency image", listed(&["images", "-q", &format!("paas/{app}-deps")])),
        ("networks", listed(&["network", "ls", "-q", "--filter", &label])),
        ("build cache", listed(&["volume", "ls", "-q", "--filter", &format!("name=^paas-cache-{app}$")])),
    ] {
        if !found.is_empty() {
            left.push(format!("{kind}: {found:?}"));
        }
    }
    for (kind, path) in [("repo", format!("repos/{app}.git")), ("log journal", format!("logs/{app}.log"))] {
        if p.data.path().join(&path).exists() {
            left.push(format!("{kind}: {path}"));
        }
    }
    left
}

#[test]
fn a_destroyed_app_leaves_no_image_volume_network_repo_or_log_behind() {
    let mut p = Platform::start();
    // A Dockerfile app with three releases, renamed once on the way.
    let first = unique_app("gone-docker");
    let repo = dockerfile_repo(&p, "main", "one");
    let dir = repo.path();
    p.create_app(dir, &first);
    p.push_ok(dir, &first);
    std::fs::write(dir.join("more.txt"), "two\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "two"]);
    p.push_ok(dir, &first);
    p.paas_ok(dir, &["config:set", "GREETING=three", "-a", &first]);
    let docker_app = unique_app("gone-renamed");
    p.track(&docker_app);
    p.paas_ok(dir, &["apps:rename", &docker_app, "-a", &first]);
    p.wait_for_page(&docker_app, "greeting: three");
    // A buildpack app with two builds (a build cache volume, a dependency layer).
    let bp_app = unique_app("gone-static");
    let bp = fixture_repo(&p, "static");
    p.create_app(bp.path(), &bp_app);
    p.push_ok(bp.path(), &bp_app);
    std::fs::write(bp.path().join("extra.html"), "<p>more</p>\n").unwrap();
    p.git_ok(bp.path(), &["add", "-A"]);
    p.git_ok(bp.path(), &["commit", "-qm", "more"]);
    p.push_ok(bp.path(), &bp_app);
    p.wait_for_page(&bp_app, "static ok");
    assert!(!left_of(&p, &docker_app).is_empty() && !left_of(&p, &bp_app).is_empty(), "the apps have things to leave");
    // `apps:info` says what they use.
    let disk = |dir: &std::path::Path, app: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&p.paas_ok(dir, &["apps:info", "-a", app, "--json"])).unwrap()["disk"].clone()
    };
    let d = disk(dir, &docker_app);
    assert_eq!(d["image_count"], 2, "two builds' images (the config release shares one): {d}");
    assert!(d["images"].as_i64().unwrap() > 0 && d["repo"].as_i64().unwrap() > 0, "{d}");
    let d = disk(bp.path(), &bp_app);
    assert!(d["build_cache"].as_i64().is_some() && d["images"].as_i64().unwrap() > 0, "the cache volume was read (the static buildpack caches nothing): {d}");
    let label = p.docker().args(["volume", "inspect", "-f", "{{index .Labels \"paas.instance\"}}", &format!("paas-cache-{bp_app}")]).output().unwrap();
    assert!(!text(&label.stdout).trim().is_empty(), "the build cache carries its instance, for gc: {}", text(&label.stderr));
    let info = p.paas_ok(bp.path(), &["apps:info", "-a", &bp_app]);
    assert!(info.contains("Disk") && info.contains("build cache"), "{info}");

    for (dir, app) in [(dir, docker_app.as_str()), (bp.path(), bp_app.as_str())] {
        p.paas_ok(dir, &["apps:destroy", "--confirm", app, "-a", app]);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for app in [&first, &docker_app, &bp_app] {
        loop {
            let left = left_of(&p, app);
            if left.is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{app} left behind {left:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn old_release_images_go_and_a_rollback_to_one_says_what_to_do() {
    let mut p = Platform::start_with(&[("PAAS_KEEP_RELEASES", "2")]);
    let app = unique_app("keep2");
    let repo = dockerfile_repo(&p, "main", "keep");
    let dir = repo.path();
    p.create_app(dir, &app);
    let mut images = Vec::new();
    for n in 1..=3 {
        std::fs::write(dir.join("n.txt"), format!("{n}\n")).unwrap();
        p.git_ok(dir, &["add", "-A"]);
        p.git_ok(dir, &["commit", "-qm", &format!("change {n}")]);
        p.push_ok(dir, &app);
        let releases: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["releases", "--json"])).unwrap();
        images.push(releases[0]["image"].as_str().unwrap().to_owned());
    }
    // The third push removed the first release's image; the newest two stay.
    let releases = poll(Duration::from_secs(30), "v1's image to go", || {
        let releases: serde_json::Value = serde_json::from_str(&p.paas_ok(dir, &["releases", "--json"])).ok()?;
        (releases[2]["image_removed"] == true).then_some(releases)
    });
    assert!(releases[0].get("image_removed").is_none() && releases[1].get("image_removed").is_none(), "{releases}");
    let gone = |image: &str| !p.docker().args(["image", "inspect", image]).output().unwrap().status.success();
    assert!(gone(&images[0]) && !gone(&images[1]) && !gone(&images[2]));
    assert!(p.paas_ok(dir, &["releases"]).contains("(image removed)"));
    // A rollback to it says how to get it back, and changes nothing.
    let out = p.paas(dir, &["releases:rollback", "v1"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success() && said.contains("was removed to free disk") && said.contains("git push paas"), "{said}");
    // `paas-server gc --dry-run` lists what would go and removes nothing.
    let out = p.server_cmd().args(["gc", "--dry-run", "--keep", "1"]).output().unwrap();
    let said = text(&out.stdout);
    assert!(out.status.success() && said.contains(&format!("would remove {} ({app} v2)", images[1])), "{said}{}", text(&out.stderr));
    assert!(!gone(&images[1]), "a dry run removes nothing");
    p.wait_for_page(&app, "marker: keep");

    // A build cache of this instance whose app is gone is swept; one of
    // another instance on the same engine is not.
    let web = p.running(&app, "web");
    let instance = text(&p.docker().args(["inspect", "-f", "{{index .Config.Labels \"paas.instance\"}}", &web[0]]).output().unwrap().stdout).trim().to_owned();
    let (ours, theirs) = (format!("paas-cache-{}", unique_app("ghost")), format!("paas-cache-{}", unique_app("other")));
    for (volume, owner) in [(&ours, instance.as_str()), (&theirs, "another-instance")] {
        let made = p.docker().args(["volume", "create", "--label", &format!("paas.instance={owner}"), volume]).output().unwrap();
        assert!(made.status.success(), "{}", text(&made.stderr));
    }
    // What a build left behind: a stopped task container of this
    // instance, and a dependency image replaced by a newer one (dangling).
    let task = unique_app("task");
    let made = p.docker().args(["create", "--name", &task, "--label", &format!("paas.instance={instance}"), "--label", "paas.task=build-ghost", BASE_IMAGE, "true"]).output().unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let deps = format!("paas-test/{}-deps:latest", unique_app("ghost"));
    for n in [1, 2] {
        p.build_image(&deps, &format!("FROM {BASE_IMAGE}\nLABEL paas.deps=ghost-{n}\nRUN echo {n} > /n\n"));
    }
    let dangling = text(&p.docker().args(["images", "-q", "--no-trunc", "--filter", "dangling=true", "--filter", "label=paas.deps=ghost-1"]).output().unwrap().stdout).trim().to_owned();
    assert!(dangling.starts_with("sha256:"), "the first build of {deps} is dangling: {dangling:?}");
    let out = p.server_cmd().args(["gc", "--dry-run", "--leftovers-after", "0"]).output().unwrap();
    let said = text(&out.stdout);
    assert!(said.contains(&format!("would remove build cache {ours}")) && !said.contains(&theirs), "{said}");
    assert!(said.contains(&format!("would remove stopped task container {task}")) && said.contains(&format!("would remove dangling dependency image {dangling}")), "{said}");
    let out = p.server_cmd().args(["gc", "--leftovers-after", "0"]).output().unwrap();
    let said = text(&out.stdout);
    assert!(said.contains(&format!("removed build cache {ours}")) && said.contains(&format!("removed stopped task container {task}")), "{said}");
    let exists = |kind: &str, v: &str| p.docker().args([kind, "inspect", v]).output().unwrap().status.success();
    assert!(!exists("volume", &ours) && exists("volume", &theirs));
    assert!(!exists("container", &task) && !exists("image", &dangling) && exists("image", &deps));
    let _ = p.docker().args(["volume", "rm", &theirs]).output();
    let _ = p.docker().args(["rmi", &deps]).output();
}

/// How many packets paas's isolation chain has dropped, over every rule.
fn guard_drops() -> u64 {
    let out = std::process::Command::new("iptables")
        .args(["-w", "-t", "mangle", "-L", paas_server::runtime::isolation::CHAIN, "-v", "-n", "-x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "paas-server made its isolation chain: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}
