//! The three-node swarm `scripts/swarm-testbed` makes on this machine,
//! for the swarm suite: brought up once per test process (idempotent: a
//! few seconds when it is up), with the test base image and the
//! PostgreSQL add-on image on the manager (as a build there would make
//! them), and a platform on it.

use super::{ensure_base_image, text, Platform, BASE_IMAGE};
use std::path::Path;
use std::process::Command;
use std::sync::Once;

/// The manager's engine.
pub const MANAGER: &str = "unix:///run/paas-testbed/n0/docker.sock";
/// The first worker's engine (for tests that look at what runs there;
/// paas never does).
pub const WORKER_N1: &str = "unix:///run/paas-testbed/n1/docker.sock";
/// The registry on the manager every node pulls from.
pub const REGISTRY: &str = "10.231.0.10:5000";

/// Brings the test bed up and loads the base image on the manager.
pub fn swarm_up() {
    static UP: Once = Once::new();
    UP.call_once(|| {
        ensure_base_image();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/swarm-testbed");
        let out = Command::new(script).arg("up").output().unwrap();
        assert!(out.status.success(), "swarm-testbed up: {}{}", text(&out.stdout), text(&out.stderr));
        // The add-on images too: add-ons run on the manager (scripts/test's
        // `stack:build` made them on this host).
        let images = [BASE_IMAGE.to_owned(), paas_server::addons::catalog::POSTGRESQL.image("17")].join(" ");
        let loaded = Command::new("sh")
            .arg("-c")
            .arg(format!("docker save {images} | docker -H {MANAGER} load -q"))
            .output()
            .unwrap();
        assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    });
}

/// `scripts/swarm-testbed ARGS` (a node stopped or started).
pub fn testbed(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/swarm-testbed");
    let out = Command::new(script).args(args).output().unwrap();
    assert!(out.status.success(), "swarm-testbed {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
}

/// The test bed registry's user and password (htpasswd).
pub fn registry_auth() -> paas_server::runtime::RegistryAuth {
    let password = std::fs::read_to_string("/var/lib/paas-testbed/registry/password").expect("the test bed's registry password");
    paas_server::runtime::RegistryAuth { username: "paas".into(), password: password.trim().to_owned() }
}

/// A platform whose dynos run on the test bed's swarm, pulling from its
/// authenticated registry.
pub fn swarm_platform(extra: &[(&str, &str)]) -> Platform {
    swarm_up();
    let auth = registry_auth();
    let mut env = vec![
        ("DOCKER_HOST", MANAGER),
        ("PAAS_RUNTIME", "swarm"),
        ("PAAS_REGISTRY", REGISTRY),
        ("PAAS_REGISTRY_USER", "paas"),
        ("PAAS_REGISTRY_PASSWORD", auth.password.as_str()),
    ];
    env.extend_from_slice(extra);
    Platform::start_with(&env)
}
