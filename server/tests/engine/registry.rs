//! The registry a cluster's nodes pull release images from: the engine
//! beside the server pushes an image to Debian's docker-registry (with
//! htpasswd auth, on loopback) and names it by digest, and the registry
//! serves exactly that manifest under that digest.

use crate::harness::*;
use paas_server::runtime::{DockerRuntime, DynoAddress, ImageBuilder, RegistryAuth};

#[test]
fn an_image_pushed_to_the_registry_is_named_by_digest_and_served_under_it() {
    ensure_base_image();
    let registry = Registry::start(Some(("paas", "s3cret")));
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
