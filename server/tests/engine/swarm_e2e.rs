//! The swarm suite: a real `paas-server` with `PAAS_RUNTIME=swarm` on the
//! three-node test bed (`scripts/swarm-testbed`), driven by the real CLI,
//! real `git push` and real HTTP through the router. Its tests run one at
//! a time (a nextest test group): one of them stops a node.

use crate::harness::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `paas ps --json` of the app: name -> (state, node).
fn dynos(p: &Platform, dir: &Path, app: &str) -> BTreeMap<String, (String, String)> {
    let out = p.paas_ok(dir, &["ps", "-a", app, "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    list.iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (s("name"), (s("state"), s("node")))
        })
        .collect()
}

/// The app's web dynos up, one per node; their nodes.
/// Waits until the manager's engine keeps no tag paas gave an app's images
/// to push them (`REGISTRY/paas/APP:…`): a destroyed app's images go.
fn no_pushed_tags_left(p: &Platform, app: &str) {
    poll(Duration::from_secs(60), "the app's pushed image tags gone from the manager", || {
        let out = p.docker().args(["images", "-q", "--filter", &format!("reference={REGISTRY}/paas/{app}")]).output().ok()?;
        text(&out.stdout).trim().is_empty().then_some(())
    });
}

/// The registry copies (`REGISTRY/paas/APP@sha256:…`) of the app's
/// images, as the manager's engine knows them; each is in the registry.
fn pushed_copies(p: &Platform, app: &str) -> Vec<String> {
    let ids = p.docker().args(["images", "-q", "--filter", &format!("reference={REGISTRY}/paas/{app}")]).output().unwrap();
    let mut copies = Vec::new();
    for id in text(&ids.stdout).split_whitespace() {
        let digests = p.docker().args(["image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", id]).output().unwrap();
        copies.extend(text(&digests.stdout).lines().filter(|d| d.starts_with(&format!("{REGISTRY}/paas/"))).map(str::to_owned));
    }
    copies.sort();
    copies.dedup();
    assert!(!copies.is_empty(), "{app}'s images were pushed to the registry");
    for copy in &copies {
        assert_eq!(registry_manifest_status(copy), "200", "{copy} is in the registry");
    }
    copies
}

/// Waits until the registry no longer serves any of `copies`.
fn no_copies_left_in_the_registry(copies: &[String]) {
    for copy in copies {
        poll(Duration::from_secs(60), "the destroyed app's image gone from the registry", || {
            (registry_manifest_status(copy) == "404").then_some(())
        });
    }
}

/// The registry's answer to GET of a copy's manifest (`REGISTRY/REPO@DIGEST`).
fn registry_manifest_status(copy: &str) -> String {
    let (repository, digest) = copy.strip_prefix(&format!("{REGISTRY}/")).and_then(|r| r.split_once('@')).expect("a copy in the registry");
    let auth = registry_auth();
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert"])
        .arg(format!("/etc/docker/certs.d/{REGISTRY}/ca.crt"))
        .args(["-u", &format!("{}:{}", auth.username, auth.password)])
        .args(["-H", "Accept: application/vnd.docker.distribution.manifest.v2+json"])
        .arg(format!("https://{REGISTRY}/v2/{repository}/manifests/{digest}"))
        .output()
        .unwrap();
    text(&out.stdout).trim().to_owned()
}

fn web_up_on_three_nodes(p: &Platform, dir: &Path, app: &str) -> BTreeMap<String, String> {
    poll(Duration::from_secs(120), "web.1-3 up on three nodes", || {
        let d = dynos(p, dir, app);
        let web: BTreeMap<String, String> =
            d.iter().filter(|(n, (s, _))| n.starts_with("web.") && s == "up").map(|(n, (_, node))| (n.clone(), node.clone())).collect();
        let nodes: std::collections::BTreeSet<&String> = web.values().collect();
        (web.len() == 3 && nodes.len() == 3).then_some(web)
    })
}

/// A worker that says where it runs, every 200 ms.
const SAYS_WHERE: &str = "i=0; while true; do i=$((i+1)); echo \"$DYNO on $(hostname) says $i\"; sleep 0.2; done";

#[test]
fn swarm_push_spreads_web_over_the_nodes_routes_to_each_logs_from_all_and_runs_one_offs() {
    let mut p = swarm_platform(&[]);
    let app = unique_app("sw-spread");
    let repo = dockerfile_repo(&p, "main", "swarm");
    let procfile = std::fs::read_to_string(repo.path().join("Procfile")).unwrap();
    std::fs::write(repo.path().join("Procfile"), procfile.replace("worker: exec sleep 100000", &format!("worker: {SAYS_WHERE}"))).unwrap();
    p.git_ok(repo.path(), &["commit", "-qam", "a worker that says where it runs"]);
    let dir = repo.path();
    p.create_app(dir, &app);
    p.paas_ok(dir, &["config:set", "-a", &app, "GREETING=hello-swarm", "--no-wait"]);
    let pushed = p.push_ok(dir, &app);
    assert!(pushed.contains("deployed to paas as v2"), "{pushed}");
    p.wait_for_page(&app, "greeting: hello-swarm");

    // web=3: one on each node (paas places them; Swarm would count
    // everyone's tasks), and the router reaches each on its node.
    p.paas_ok(dir, &["ps:scale", "web=3", "worker=3", "-a", &app]);
    let web = web_up_on_three_nodes(&p, dir, &app);
    let hosts = poll(Duration::from_secs(30), "answers from the three web dynos", || {
        let mut hosts = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let (status, body) = p.get(&app, "/")?;
            assert_eq!(status, 200, "{body}");
            hosts.insert(body.split("host: ").nth(1)?.split('<').next()?.to_owned());
        }
        (hosts.len() == 3).then_some(hosts)
    });
    assert_eq!(hosts.len(), 3, "{web:?}");

    // A dyno on a worker is locked down as on one engine: capabilities
    // dropped, a pids limit, the CPU limit, a capped log. (Read from the
    // worker's own engine: the test may, paas never does.)
    let worker = std::process::Command::new("docker")
        .args(["-H", WORKER_N1, "ps", "-q", "--filter", &format!("label=paas.app={app}"), "--filter", "label=paas.process=web"])
        .output()
        .unwrap();
    let container = text(&worker.stdout).lines().next().expect("a web dyno on n1").to_owned();
    let host = std::process::Command::new("docker")
        .args(["-H", WORKER_N1, "inspect", "-f", LOCKDOWN_FORMAT, &container])
        .output()
        .unwrap();
    let host = text(&host.stdout);
    // (PAAS_DYNO_CPUS unset: the manager's cores.)
    let cpus = std::thread::available_parallelism().unwrap().get() * 1_000_000_000;
    assert!(host.contains("NET_RAW") && host.contains("1024") && host.contains("10m") && host.contains(&format!("cpus={cpus}")), "{host}");

    // `paas nodes`: the three nodes, ready, with their dynos.
    let nodes = p.paas_ok(dir, &["nodes"]);
    for n in ["paas-tb-n0", "paas-tb-n1", "paas-tb-n2"] {
        let line = nodes.lines().find(|l| l.contains(n)).unwrap_or_else(|| panic!("{n} in:\n{nodes}"));
        assert!(line.contains("ready"), "{line}");
        assert!(line.contains(&app), "{line}");
    }

    // `paas logs -t`: lines of the workers on every node.
    let mut tail = p.paas_cmd(dir, &["logs", "-t", "-a", &app, "-p", "worker"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut reader = BufReader::new(tail.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = std::collections::BTreeSet::new();
    let mut line = String::new();
    while seen.len() < 3 && Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(host) = line.split(" on ").nth(1).and_then(|r| r.split(" says ").next()) {
            seen.insert(host.to_owned());
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(seen.len(), 3, "worker lines from three nodes: {seen:?}");

    // `paas run`: a one-off on the manager, on the app's overlay, with its
    // config and exit code, reaching the web dynos on every node by their
    // overlay addresses.
    let out = p.paas(dir, &["run", "-a", &app, "--", "sh", "-c", "echo run sees $GREETING; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("run sees hello-swarm"), "{}", text(&out.stdout));
    let overlay: Vec<String> = {
        let ids = p.docker().args(["service", "ls", "-q", "--filter", &format!("label=paas.app={app}"), "--filter", "label=paas.process=web"]).output().unwrap();
        text(&ids.stdout)
            .lines()
            .map(|id| {
                let task = p.docker().args(["service", "ps", "-q", "--filter", "desired-state=running", id]).output().unwrap();
                let task = text(&task.stdout).lines().next().expect("a running task").to_owned();
                let addr = p.docker().args(["inspect", "-f", "{{range .NetworksAttachments}}{{range .Addresses}}{{.}}{{end}}{{end}}", &task]).output().unwrap();
                text(&addr.stdout).trim().split('/').next().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(overlay.len(), 3, "{overlay:?}");
    let script = overlay.iter().map(|ip| format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {ip} 5000 | tail -1;")).collect::<String>();
    let out = p.paas(dir, &["run", "-a", &app, "--", "sh", "-c", &script]);
    let pages = text(&out.stdout);
    let reached: std::collections::BTreeSet<&str> = pages.lines().filter_map(|l| l.split("host: ").nth(1)?.split('<').next()).collect();
    assert_eq!(reached.len(), 3, "the one-off reached the three web dynos: {pages}{}", text(&out.stderr));

    // The app's own constraint keeps its dynos to one node; a restart moves them.
    p.paas_ok(dir, &["apps:constraints:set", "node.hostname==paas-tb-n2", "-a", &app]);
    p.paas_ok(dir, &["ps:restart", "-a", &app]);
    poll(Duration::from_secs(90), "every dyno on paas-tb-n2", || {
        let d = dynos(&p, dir, &app);
        (d.len() == 6 && d.values().all(|(s, node)| s == "up" && node == "paas-tb-n2")).then_some(())
    });

    let copies = pushed_copies(&p, &app);
    p.paas_ok(dir, &["apps:destroy", "-a", &app, "--confirm", &app]);
    poll(Duration::from_secs(60), "the app's services gone", || {
        let out = p.docker().args(["service", "ls", "-q", "--filter"]).arg(format!("label=paas.app={app}")).output().ok()?;
        text(&out.stdout).trim().is_empty().then_some(())
    });
    no_pushed_tags_left(&p, &app);
    no_copies_left_in_the_registry(&copies);
}

/// A web app on the busybox image whose page names its dyno, pushed and
/// scaled to web=3 (one per node).
fn web_on_three_nodes(p: &mut Platform, prefix: &str) -> (tempfile::TempDir, String) {
    let app = unique_app(prefix);
    let repo = dockerfile_repo(p, "main", "swarm");
    std::fs::write(
        repo.path().join("Procfile"),
        "web: echo \"ok $DYNO $GREETING on $(hostname)\" > /www/index.html; exec httpd -f -p $PORT -h /www\n\
         worker: i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.2; done\n",
    )
    .unwrap();
    p.git_ok(repo.path(), &["commit", "-qam", "a page that names its dyno"]);
    p.create_app(repo.path(), &app);
    p.push_ok(repo.path(), &app);
    p.paas_ok(repo.path(), &["ps:scale", "web=3", "-a", &app]);
    web_up_on_three_nodes(p, repo.path(), &app);
    (repo, app)
}

#[test]
fn swarm_zero_failed_requests_through_deploy_config_restart_and_scale_across_three_nodes() {
    let mut p = swarm_platform(&[("PAAS_STOP_GRACE_SECONDS", "5")]);
    let (repo, app) = web_on_three_nodes(&mut p, "sw-zero");
    let dir = repo.path();
    let load = Load::start(&p, &app, 4);
    for change in [
        &["config:set", "GREETING=one"][..],
        &["ps:restart"],
        &["ps:scale", "web=2"],
        &["ps:scale", "web=3"],
        &["releases:rollback", "v1"],
        &["config:set", "GREETING=two"],
    ] {
        let mut args = change.to_vec();
        args.extend(["-a", &app]);
        let out = p.paas(dir, &args);
        assert!(out.status.success(), "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    }
    // And a deploy: a new build, pushed to the registry, on every node.
    std::fs::write(dir.join("new.txt"), "a new build\n").unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "a new build"]);
    p.push_ok(dir, &app);
    let result = load.stop();
    result.assert_no_failures("across the changes on the swarm");
    let (_, body) = p.get(&app, "/").unwrap();
    assert!(body.contains("two"), "{body}");
    web_up_on_three_nodes(&p, dir, &app);
}

#[test]
fn swarm_a_lost_node_fails_no_request_its_dynos_come_back_elsewhere_and_nothing_runs_twice() {
    let mut p = swarm_platform(&[("PAAS_STOP_GRACE_SECONDS", "5")]);
    let (repo, app) = web_on_three_nodes(&mut p, "sw-loss");
    let dir = repo.path();
    let before = dynos(&p, dir, &app);
    let (lost_dyno, _) = before.iter().find(|(n, (_, node))| n.starts_with("web.") && node == "paas-tb-n1").expect("a web dyno on n1");
    let lost_dyno = lost_dyno.clone();

    // The lost dyno's events, live (the history fills with access lines).
    let mut tail = p.paas_cmd(dir, &["logs", "-t", "-n", "0", "-p", &lost_dyno, "-a", &app]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let out = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let load = Load::start(&p, &app, 4);
    std::thread::sleep(Duration::from_millis(500));
    let lost_at = Instant::now();
    testbed(&["lose-node", "n1"]);
    // Replaced on the other nodes: three web dynos up, none on n1.
    let after = poll(Duration::from_secs(90), "web=3 up again without n1", || {
        let d = dynos(&p, dir, &app);
        let up: Vec<&String> = d.iter().filter(|(n, (s, _))| n.starts_with("web.") && s == "up").map(|(_, (_, node))| node).collect();
        (up.len() == 3 && up.iter().all(|n| n.as_str() != "paas-tb-n1")).then_some(d)
    });
    let replaced_in = lost_at.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let result = load.stop();
    eprintln!("replaced in {replaced_in:?}; {} requests, slowest {:?}", result.ok, result.slowest);
    result.assert_no_failures("through the loss of a node");
    assert!(after.contains_key(&lost_dyno), "{lost_dyno} is back: {after:?}");
    let reason = lines.recv_timeout(Duration::from_secs(30)).into_iter().chain(lines.try_iter()).find(|l| l.contains("paas-tb-n1 is down"));
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(reason.is_some_and(|l| l.contains("lost")), "the lost dyno's reason in its log");

    // The node comes back: what ran there is not run again, paas runs
    // exactly web=3.
    testbed(&["restore-node", "n1"]);
    poll(Duration::from_secs(90), "n1 to run none of the app's containers", || {
        let out = std::process::Command::new("docker")
            .args(["-H", WORKER_N1, "ps", "-q", "--filter", &format!("label=paas.app={app}")])
            .output()
            .ok()?;
        text(&out.stdout).trim().is_empty().then_some(())
    });
    let d = dynos(&p, dir, &app);
    let web: Vec<_> = d.keys().filter(|n| n.starts_with("web.")).collect();
    assert_eq!(web.len(), 3, "{d:?}");
    let (status, _) = p.get(&app, "/").unwrap();
    assert_eq!(status, 200);
    // And it takes dynos again: a fourth web dyno goes to it and serves
    // (restarted by the scheduler if its first start on the returning
    // node does not answer; see ARCHITECTURE.md).
    let _ = p.paas(dir, &["ps:scale", "web=4", "-a", &app]);
    poll(Duration::from_secs(180), "a web dyno up on paas-tb-n1 again", || {
        let d = dynos(&p, dir, &app);
        let up = d.iter().filter(|(n, (s, _))| n.starts_with("web.") && s == "up");
        let on_n1 = up.clone().filter(|(_, (_, node))| node == "paas-tb-n1").count();
        (up.count() == 4 && on_n1 == 1).then_some(())
    });
}

/// The app's services of release `version` on the swarm.
fn services_of_version(p: &Platform, app: &str, version: i64) -> usize {
    let out = p
        .docker()
        .args(["service", "ls", "-q", "--filter", &format!("label=paas.app={app}"), "--filter", &format!("label=paas.version={version}")])
        .output()
        .unwrap();
    text(&out.stdout).lines().count()
}

#[test]
fn swarm_server_killed_mid_deploy_adopts_every_service_and_converges() {
    let mut p = swarm_platform(&[("PAAS_STOP_GRACE_SECONDS", "3")]);
    let (repo, app) = web_on_three_nodes(&mut p, "sw-kill");
    let dir = repo.path();
    p.paas_ok(dir, &["ps:scale", "worker=1", "-a", &app]);
    // v2: web dynos that take 3 s to answer, and a worker that counts.
    std::fs::write(
        dir.join("Procfile"),
        "web: sleep 3; echo \"v2 $DYNO\" > /www/index.html; exec httpd -f -p $PORT -h /www\n\
         worker: i=0; while true; do i=$((i+1)); echo \"tock $i\"; sleep 0.2; done\n",
    )
    .unwrap();
    p.git_ok(dir, &["commit", "-qam", "v2"]);
    let mut pushing = p.push_cmd(dir, &app).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // v2's first web dyno is booting: SIGKILL the server.
    poll(Duration::from_secs(60), "v2's first service", || (services_of_version(&p, &app, 2) > 0).then_some(()));
    p.kill();
    let _ = pushing.wait();
    p.boot();
    let served = poll_quietly(Duration::from_secs(60), || p.get(&app, "/").filter(|(s, b)| *s == 200 && b.contains("v2 web.")));
    assert!(
        served.is_some(),
        "v2 serves after the restart; its releases:\n{}\nlogs:\n{}",
        p.paas_ok(dir, &["releases", "-a", &app, "--json"]),
        p.paas_ok(dir, &["logs", "-n", "1500", "-s", "paas", "-a", &app]).lines().filter(|l| !l.contains("[router]")).collect::<Vec<_>>().join("\n")
    );
    // Every service adopted: v2's web=3 and worker=1, nothing of v1, no
    // duplicate.
    poll(Duration::from_secs(120), "v2's four dynos and nothing else", || {
        (services_of_version(&p, &app, 2) == 4 && services_of_version(&p, &app, 1) == 0).then_some(())
    });
    web_up_on_three_nodes(&p, dir, &app);
    // The workers' lines (v1's ticks, v2's tocks), followed through the
    // manager across the restart: each in order, none twice.
    let out = poll(Duration::from_secs(60), "v2's worker's lines", || {
        let out = p.paas_ok(dir, &["logs", "-n", "1500", "-p", "worker.1", "-s", "app", "-a", &app]);
        (out.matches("tock ").count() >= 20).then_some(out)
    });
    for word in ["tick ", "tock "] {
        let seq: Vec<u64> = out.lines().filter_map(|l| l.rsplit(word).next().filter(|_| l.contains(word))?.trim().parse().ok()).collect();
        assert!(seq.len() >= 5, "{word}: {seq:?}");
        for pair in seq.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "{word}in order, none twice or lost: {seq:?}");
        }
    }
}

/// `f` until it gives `Some` or `timeout` passes (then `None`).
fn poll_quietly<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A follower through the manager that hears nothing for a while is made
/// again (a stalled relay looks the same as a quiet dyno): the lines after
/// the silence arrive once, and none before it comes again.
#[test]
fn swarm_a_quiet_dynos_output_is_followed_again_without_repeats() {
    let mut p = swarm_platform(&[("PAAS_LOG", "info,paas_server::logs=debug")]);
    let app = unique_app("sw-quiet");
    let repo = dockerfile_repo(&p, "main", "swarm");
    std::fs::write(
        repo.path().join("Procfile"),
        "web: echo ok > /www/index.html; exec httpd -f -p $PORT -h /www\n\
         worker: echo before the silence; sleep 40; echo after the silence; exec sleep 100000\n",
    )
    .unwrap();
    p.git_ok(repo.path(), &["commit", "-qam", "a quiet worker"]);
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    p.paas_ok(dir, &["ps:scale", "worker=1", "-a", &app]);
    let out = poll(Duration::from_secs(90), "the line after the silence", || {
        let out = p.paas_ok(dir, &["logs", "-n", "1500", "-p", "worker.1", "-s", "app", "-a", &app]);
        out.contains("after the silence").then_some(out)
    });
    assert_eq!(out.matches("before the silence").count(), 1, "{out}");
    assert_eq!(out.matches("after the silence").count(), 1, "{out}");
    let follows = p.log().lines().filter(|l| l.contains("following output") && l.contains("worker.1")).count();
    assert!(follows >= 2, "the silent stream was made again: {follows} follows");
}

/// What the app's three web dynos said of the database, by their host
/// (polled until all three answered).
fn db_by_host(p: &Platform, app: &str) -> BTreeMap<String, String> {
    poll(Duration::from_secs(60), &format!("answers from {app}'s three web dynos"), || {
        let mut seen = BTreeMap::new();
        for _ in 0..30 {
            let (status, body) = p.get(app, "/")?;
            if status != 200 {
                return None;
            }
            let host = body.split("host: ").nth(1)?.split('<').next()?.to_owned();
            let db = body.split("db: ").nth(1)?.split('<').next()?.to_owned();
            seen.insert(host, db);
        }
        (seen.len() == 3).then_some(seen)
    })
}

#[test]
fn swarm_add_on_on_the_manager_is_reached_from_dynos_on_every_node() {
    let mut p = swarm_platform(&[]);
    let app = unique_app("sw-addon");
    let addon = format!("{app}-db");
    p.track_addon(&addon);
    let repo = dockerfile_repo(&p, "main", "swarm-addon");
    // Each web dyno says, on its page, whether it reached DATABASE_URL's
    // host and port when it started.
    let procfile = std::fs::read_to_string(repo.path().join("Procfile")).unwrap();
    let probe = "h=${DATABASE_URL#*@}; h=${h%%:*}; if nc -w 3 $h 5432 </dev/null; then db=reachable; else db=unreachable; fi; ";
    std::fs::write(repo.path().join("Procfile"), procfile.replace("web: echo \"<p>greeting", &format!("web: {probe}echo \"<p>db: $db</p><p>greeting"))).unwrap();
    p.git_ok(repo.path(), &["commit", "-qam", "web says whether it reaches the database"]);
    let dir = repo.path();
    p.create_app(dir, &app);
    let said = p.paas_ok(dir, &["addons:create", "postgresql", "--name", &addon, "-a", &app]);
    assert!(said.contains("DATABASE_URL"), "{said}");
    p.push_ok(dir, &app);
    p.paas_ok(dir, &["ps:scale", "web=3", "-a", &app]);
    let web = web_up_on_three_nodes(&p, dir, &app);
    let answers = db_by_host(&p, &app);
    assert!(answers.values().all(|db| db == "reachable"), "dynos on {web:?} said {answers:?}");
    // A backup through the manager works as on one engine.
    let said = p.paas_ok(dir, &["pg:backups:capture", "-a", &app]);
    assert!(said.contains("done, b001"), "{said}");

    // Renamed: the new name's dynos, on every node, reach the database
    // through the overlay of the new name; the old name's services go.
    let renamed = unique_app("sw-renamed");
    p.track(&renamed);
    p.paas_ok(dir, &["apps:rename", &renamed, "-a", &app]);
    web_up_on_three_nodes(&p, dir, &renamed);
    let answers = db_by_host(&p, &renamed);
    assert!(answers.values().all(|db| db == "reachable"), "after the rename: {answers:?}");
    assert_eq!(p.get(&app, "/").map(|(s, _)| s), Some(404));
    poll(Duration::from_secs(60), "the old name's services gone", || {
        let out = p.docker().args(["service", "ls", "-q", "--filter"]).arg(format!("label=paas.app={app}")).output().ok()?;
        text(&out.stdout).trim().is_empty().then_some(())
    });
}

#[test]
fn swarm_an_image_deploy_reaches_every_node_through_the_registry() {
    let mut p = swarm_platform(&[]);
    let app = unique_app("sw-image");
    let here = tempfile::tempdir().unwrap();
    p.create_app(here.path(), &app);
    // Built on the manager's engine, as CI would load it there; the
    // workers have never seen it.
    let image = format!("paas-test/{app}:1");
    p.build_image(&image, &format!("FROM {BASE_IMAGE}\nRUN mkdir -p /www\nCMD echo \"<p>image on $(hostname)</p>\" > /www/index.html; exec httpd -f -p $PORT -h /www\n"));
    p.paas_ok(here.path(), &["deploy", "--image", &image, "-a", &app]);
    p.paas_ok(here.path(), &["ps:scale", "web=3", "-a", &app]);
    web_up_on_three_nodes(&p, here.path(), &app);
    let hosts = poll(Duration::from_secs(60), "answers from the three nodes", || {
        let mut hosts = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let (status, body) = p.get(&app, "/")?;
            if status != 200 {
                return None;
            }
            hosts.insert(body.split("image on ").nth(1)?.split('<').next()?.to_owned());
        }
        (hosts.len() == 3).then_some(hosts)
    });
    assert_eq!(hosts.len(), 3);
    // Each service runs the image from the registry, by digest.
    let out = p.docker().args(["service", "ls", "--format", "{{.Image}}", "--filter"]).arg(format!("label=paas.app={app}")).output().unwrap();
    let images: std::collections::BTreeSet<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert!(images.len() == 1 && images.iter().all(|i| i.starts_with(&format!("{REGISTRY}/paas/{app}@sha256:"))), "{images:?}");
    let copies = pushed_copies(&p, &app);
    p.paas_ok(here.path(), &["apps:destroy", "--confirm", &app, "-a", &app]);
    no_pushed_tags_left(&p, &app);
    // Its copy in the registry is the platform's: gone. The image it was
    // given is not: kept on the manager.
    let kept = p.docker().args(["image", "inspect", "-f", "{{.Id}}", &image]).output().unwrap();
    assert!(kept.status.success(), "{image} is kept");
    no_copies_left_in_the_registry(&copies);
    let _ = p.docker().args(["rmi", "-f", &image]).output();
}

#[test]
fn swarm_a_dyno_killed_over_its_size_is_named_out_of_memory() {
    let mut p = swarm_platform(&[]);
    let app = unique_app("sw-oom");
    let here = tempfile::tempdir().unwrap();
    p.create_app(here.path(), &app);
    let image = format!("paas-test/{app}:1");
    p.build_image(&image, &format!("FROM {BASE_IMAGE}\nRUN mkdir -p /www\nCMD exec httpd -f -p $PORT -h /www\n"));
    let hog = "worker=x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 1000";
    p.paas_ok(here.path(), &["deploy", "--image", &image, "--process", "web=exec httpd -f -p $PORT -h /www", "--process", hog, "-a", &app]);
    // The worker's task on a node says it through the manager alone: the
    // dyno's own watch saw the kernel's OOM kill in its memory cgroup.
    let out = p.paas(here.path(), &["ps:scale", "worker=1:64M", "-a", &app]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("worker.1 was killed for using more memory than its limit (out of memory)"), "{said}");
    let log = poll(Duration::from_secs(90), "the worker's OOM kill in the log", || {
        let log = p.paas_ok(here.path(), &["logs", "-a", &app, "-n", "300"]);
        log.contains("[worker.1]: Process was killed for using more memory than its limit (out of memory)").then_some(log)
    });
    assert!(!log.contains("killed by SIGKILL"), "{log}");
    // `paas ps` keeps its status as the kernel gave it.
    let worker = poll(Duration::from_secs(60), "the worker's exit in ps", || {
        let v: serde_json::Value = serde_json::from_str(&p.paas_ok(here.path(), &["ps", "-a", &app, "--json"])).unwrap();
        v.as_array().unwrap().iter().find(|d| d["name"] == "worker.1" && d["exit_code"] == 137).cloned()
    });
    assert!(worker["restarts"].as_u64().unwrap() >= 1, "{worker}");

    // A web dyno that runs its image's own CMD (no command given) is
    // watched too: it serves (and is stopped by SIGTERM) through the watch,
    // and an image whose CMD is over its size says out of memory.
    p.paas_ok(here.path(), &["ps:scale", "worker=0", "web=1:64M", "-a", &app]);
    p.paas_ok(here.path(), &["deploy", "--image", &image, "-a", &app]);
    let hog_image = format!("paas-test/{app}:hog");
    p.build_image(&hog_image, &format!("FROM {BASE_IMAGE}\nCMD x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 1000\n"));
    let out = p.paas(here.path(), &["deploy", "--image", &hog_image, "-a", &app]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("web.1 was killed for using more memory than its limit (out of memory)"), "{said}");
    p.paas_ok(here.path(), &["apps:destroy", "--confirm", &app, "-a", &app]);
    let _ = p.docker().args(["rmi", "-f", &image, &hog_image]).output();
}
