//! The swarm backend's calls to a real manager, below the server (whose
//! end-to-end tests are `swarm_e2e`), on the three-node swarm
//! `scripts/swarm-testbed` makes on this machine. The image goes to the
//! manager's registry and runs by digest; each dyno is a service the
//! manager runs on the node its constraint names; a web dyno answers
//! this host at its node's address.

use crate::harness::*;
use paas_server::runtime::{DockerRuntime, DynoAddress, DynoSpec, ImageBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

/// The test bed's manager, with the test image in its registry: the
/// test's tokio runtime, the engine connection, the image by digest, and
/// the services the test started (removed when it ends, failed or not, so
/// they never crowd a later test's nodes).
struct Manager {
    rt: tokio::runtime::Runtime,
    engine: DockerRuntime,
    image: String,
    started: std::cell::RefCell<Vec<(String, String)>>,
}

impl Manager {
    /// Brings the test bed up (idempotent: a few seconds when it is up),
    /// loads the test image on the manager (as a build there would make it)
    /// and pushes it to the manager's registry.
    fn up() -> Manager {
        swarm_up();
        // This test's process only: the runtime connects by DOCKER_HOST.
        std::env::set_var("DOCKER_HOST", MANAGER);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let engine = rt.block_on(DockerRuntime::connect("tb-test", Some(MANAGER), DynoAddress::Published)).unwrap().on_swarm();
        let image = rt.block_on(engine.push_image(BASE_IMAGE, &format!("{REGISTRY}/paas-test/busybox"), "1", Some(&registry_auth()))).unwrap();
        Manager { rt, engine, image, started: Default::default() }
    }

    /// Starts dyno `process.index` of `app` running `command` on node
    /// `index - 1` (Swarm's own spread counts everyone's tasks, so the
    /// test places them, as paas does); its service id.
    fn start(&self, app: &str, process: &str, index: u32, command: String) -> String {
        let web = process == "web";
        let spec = DynoSpec {
            app: app.to_owned(),
            release_id: "r1".into(),
            release_version: 1,
            process_type: process.into(),
            index,
            image: BASE_IMAGE.into(),
            command,
            env: if web { BTreeMap::from([("PORT".to_owned(), "5000".to_owned())]) } else { BTreeMap::new() },
            web,
            memory: Some(64 << 20),
            constraints: Vec::new(),
        };
        let id = self.rt.block_on(self.engine.swarm_start(&spec, &self.image, Duration::from_secs(5), &[format!("node.hostname==paas-tb-n{}", index - 1)], None, Some(&registry_auth()))).unwrap();
        self.started.borrow_mut().push((app.to_owned(), id.clone()));
        id
    }

    /// Removes the app's services and, once its last task has left it,
    /// the app's overlay.
    fn remove(&self, app: &str) {
        let ids: Vec<String> = self.started.borrow().iter().filter(|(a, _)| a == app).map(|(_, id)| id.clone()).collect();
        for id in &ids {
            self.rt.block_on(self.engine.swarm_remove(id)).unwrap();
        }
        self.started.borrow_mut().retain(|(a, _)| a != app);
        poll(Duration::from_secs(60), "the services to be gone", || {
            self.rt.block_on(self.engine.swarm_dynos(Some(app))).ok()?.is_empty().then_some(())
        });
        let network = format!("paas-tb-test-{app}");
        poll(Duration::from_secs(60), "the app's overlay to be removed", || {
            Command::new("docker").args(["-H", MANAGER, "network", "rm", &network]).output().ok()?.status.success().then_some(())
        });
    }
}

impl Drop for Manager {
    /// A test that failed before its `remove` leaves nothing on the nodes.
    fn drop(&mut self) {
        for (_, id) in self.started.take() {
            let _ = self.rt.block_on(self.engine.swarm_remove(&id));
        }
    }
}

#[test]
fn dynos_placed_through_the_manager_spread_over_the_nodes_and_answer_at_their_nodes_addresses() {
    let m = Manager::up();
    assert!(m.image.starts_with("10.231.0.10:5000/paas-test/busybox@sha256:"), "{}", m.image);
    let app = unique_app("tb");
    for index in 1..=3 {
        let command = format!("mkdir -p /tmp/www && echo web.{index} on $(hostname) > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www");
        m.start(&app, "web", index, command);
    }
    let dynos = poll(Duration::from_secs(90), "three web dynos running with addresses", || {
        let dynos = m.rt.block_on(m.engine.swarm_dynos(Some(&app))).ok()?;
        (dynos.len() == 3 && dynos.iter().all(|d| d.running && d.addr.is_some())).then_some(dynos)
    });
    let nodes: BTreeSet<_> = dynos.iter().map(|d| d.addr.unwrap().socket_addr().ip()).collect();
    assert_eq!(nodes.len(), 3, "one dyno on each node: {dynos:?}");
    for d in &dynos {
        let addr = d.addr.unwrap();
        let page = poll(Duration::from_secs(20), "the dyno to answer", || {
            reqwest::blocking::get(format!("http://{addr}/")).ok()?.text().ok()
        });
        assert!(page.starts_with(&format!("{} on ", d.name())), "{addr}: {page}");
    }
    m.remove(&app);
}

#[test]
fn dynos_on_every_node_end_with_their_exit_code_and_their_output_reaches_the_manager() {
    let m = Manager::up();
    let app = unique_app("tbexit");
    let started: Vec<(u32, String)> = (1..=3u32)
        .map(|index| {
            let command = format!("echo worker.{index} says hello on $(hostname); echo and to stderr >&2; exit {}", 10 + index);
            (index, m.start(&app, "worker", index, command))
        })
        .collect();
    // The three ran, one on each node (the manager placed them).
    let nodes = poll(Duration::from_secs(90), "three tasks placed", || {
        let dynos = m.rt.block_on(m.engine.swarm_dynos(Some(&app))).ok()?;
        let nodes: BTreeSet<_> = dynos.iter().filter_map(|d| d.ip).collect();
        (dynos.len() == 3 && nodes.len() == 3).then_some(nodes)
    });
    assert_eq!(nodes.len(), 3);
    for (index, id) in &started {
        let exit = poll(Duration::from_secs(60), "the task to end", || match m.rt.block_on(m.engine.swarm_exit(id)) {
            Ok((false, exit)) => Some(exit),
            _ => None,
        });
        assert_eq!(exit.exit_code, Some(10 + i64::from(*index)), "{exit:?}");
        let lines = poll(Duration::from_secs(30), "its output through the manager", || {
            let lines = m.rt.block_on(m.engine.swarm_output_tail(id, 10, Duration::from_secs(10))).ok()?;
            (lines.len() >= 2).then_some(lines)
        });
        assert!(lines.iter().any(|l| l.starts_with(&format!("worker.{index} says hello on "))), "{lines:?}");
        assert!(lines.iter().any(|l| l == "and to stderr"), "{lines:?}");
    }
    m.remove(&app);
}
