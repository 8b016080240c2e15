//! The registry a cluster's nodes pull release images from: the engine
//! beside the server pushes an image to Debian's docker-registry (with
//! htpasswd auth, on loopback) and names it by digest, and the registry
//! serves exactly that manifest under that digest.

use crate::harness::*;
use paas_server::runtime::{DockerRuntime, DynoAddress, ImageBuilder, RegistryAuth};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A docker-registry on 127.0.0.1 that only `user` with `password` may use;
/// killed (and its storage removed) when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let hash = bcrypt::hash(password, 4).unwrap();
        std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: paas\n    path: {root}/htpasswd\n",
            root = dir.path().display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian's package; scripts/ensure-deps installs it)");
        let registry = Registry { child, port, _dir: dir };
        // Up once it asks for credentials.
        poll(Duration::from_secs(20), "the registry to answer", || {
            let answer = reqwest::blocking::get(registry.url("/v2/")).ok()?;
            (answer.status() == 401).then_some(())
        });
        registry
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

#[test]
fn an_image_pushed_to_the_registry_is_named_by_digest_and_served_under_it() {
    ensure_base_image();
    let registry = Registry::start("paas", "s3cret");
    let name = format!("paas-test/pushed-{}", unique_app("img"));
    let repository = format!("127.0.0.1:{}/{name}", registry.port);
    let auth = RegistryAuth { username: "paas".into(), password: "s3cret".into() };
    let wrong = RegistryAuth { username: "paas".into(), password: "guess".into() };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (pinned, refused, unreachable) = rt.block_on(async {
        let engine = DockerRuntime::connect("registry-test", None, DynoAddress::Published).await.unwrap();
        let pinned = engine.push_image(BASE_IMAGE, &repository, "v1", Some(&auth)).await;
        let refused = engine.push_image(BASE_IMAGE, &repository, "v2", Some(&wrong)).await;
        let unreachable = engine.push_image(BASE_IMAGE, "127.0.0.1:9/paas-test/nowhere", "v1", Some(&auth)).await;
        for tag in [format!("{repository}:v1"), format!("{repository}:v2"), "127.0.0.1:9/paas-test/nowhere:v1".into()] {
            let _ = engine.remove_image(&tag).await;
        }
        (pinned, refused, unreachable)
    });
    let pinned = pinned.unwrap();
    let digest = pinned.strip_prefix(&format!("{repository}@")).unwrap_or_else(|| panic!("{pinned} is not {repository}@DIGEST"));
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{pinned}");
    let refused = format!("{:#}", refused.unwrap_err());
    assert!(refused.contains("refused the credentials"), "{refused}");
    let unreachable = format!("{:#}", unreachable.unwrap_err());
    assert!(unreachable.contains("check that the registry at 127.0.0.1:9 runs"), "{unreachable}");

    // The registry serves the manifest under that digest, and only with
    // the credentials.
    let manifest = |auth: Option<(&str, &str)>| {
        let mut request = reqwest::blocking::Client::new()
            .get(registry.url(&format!("/v2/{name}/manifests/{digest}")))
            .header("Accept", "application/vnd.docker.distribution.manifest.v2+json");
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send().unwrap()
    };
    let served = manifest(Some(("paas", "s3cret")));
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["docker-content-digest"].to_str().unwrap(), digest);
    assert_eq!(manifest(None).status(), 401);
}
