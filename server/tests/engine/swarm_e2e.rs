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
    // config and exit code, reaching a web dyno by its address.
    let web_addr = p.docker().args(["service", "ls", "-q", "--filter"]).arg(format!("label=paas.app={app}")).output().unwrap();
    assert!(!text(&web_addr.stdout).trim().is_empty());
    let out = p.paas(dir, &["run", "-a", &app, "--", "sh", "-c", "echo run sees $GREETING; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("run sees hello-swarm"), "{}", text(&out.stdout));

    p.paas_ok(dir, &["apps:destroy", "-a", &app, "--confirm", &app]);
    poll(Duration::from_secs(60), "the app's services gone", || {
        let out = p.docker().args(["service", "ls", "-q", "--filter"]).arg(format!("label=paas.app={app}")).output().ok()?;
        text(&out.stdout).trim().is_empty().then_some(())
    });
}
