//! `paas deploy` through the real CLI and real HTTP: a directory (packed
//! honouring .gitignore and .dockerignore) and a .tar.gz build and serve as
//! a push does, with the upload's SHA-256 where a push has its commit; an
//! upload over the cap is refused with the cap named.

use crate::harness::Fast;
use crate::shared::text;
use reqwest::Method;
use serde_json::json;

fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /app\n").unwrap();
    std::fs::write(dir.path().join("Procfile"), "web: serve\n").unwrap();
    std::fs::write(dir.path().join(".gitignore"), "build/\n").unwrap();
    std::fs::create_dir(dir.path().join("build")).unwrap();
    std::fs::write(dir.path().join("build").join("big.bin"), vec![7u8; 64 * 1024]).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_and_a_tarball_deploy_as_a_push_does() {
    let f = Fast::start_with(|s| s.builds.max_push_bytes = 32 * 1024).await;
    let app = f.app("deploy-dir").await;
    let dir = app_dir();
    let out = f.paas(&["deploy", dir.path().to_str().unwrap(), "-a", "deploy-dir"], b"").await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("fake build of"), "the build's output streams back: {}", text(&out.stdout));
    let builds: Vec<serde_json::Value> = f.send(Method::GET, "/apps/deploy-dir/builds", json!({})).await.json().await.unwrap();
    let commit = builds[0]["commit"].as_str().unwrap().to_owned();
    assert_eq!(commit.len(), 64, "the upload's SHA-256: {commit}");
    let releases: Vec<serde_json::Value> = f.send(Method::GET, "/apps/deploy-dir/releases", json!({})).await.json().await.unwrap();
    assert_eq!(releases[0]["description"], format!("Deploy {}", &commit[..7]));
    f.wait_for_dynos("deploy-dir", &[&format!("web.1 v{}", releases[0]["version"])]).await;
    drop(app);

    // A .tar.gz made by tar(1).
    let tarball = tempfile::Builder::new().suffix(".tar.gz").tempfile().unwrap();
    let made = std::process::Command::new("tar")
        .args(["-czf", tarball.path().to_str().unwrap(), "-C", dir.path().to_str().unwrap(), "Dockerfile", "Procfile"])
        .status()
        .unwrap();
    assert!(made.success());
    let out = f.paas(&["deploy", tarball.path().to_str().unwrap(), "-a", "deploy-dir"], b"").await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));

    // Over the cap (the ignored 64 KiB file, no longer ignored): refused, the cap named.
    std::fs::remove_file(dir.path().join(".gitignore")).unwrap();
    let out = f.paas(&["deploy", dir.path().to_str().unwrap(), "-a", "deploy-dir"], b"").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("larger than 32 KiB"), "{}", text(&out.stderr));
    // Not a tree at all.
    let out = f.paas(&["deploy", "/etc/hostname", "-a", "deploy-dir"], b"").await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let r = f.http().post(f.url("/apps/deploy-dir/builds")).bearer_auth(&f.token).header("content-type", "application/gzip").body("not gzip").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_deploys_with_the_process_types_given() {
    let f = Fast::start().await;
    f.app("deploy-img").await;
    let out = f.paas(&["deploy", "--image", "ci/built:7", "--process", "web=serve", "--process", "worker=work", "-a", "deploy-img"], b"").await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("Process types -> web, worker"), "{}", text(&out.stdout));
    let releases: Vec<serde_json::Value> = f.send(Method::GET, "/apps/deploy-img/releases", json!({})).await.json().await.unwrap();
    assert_eq!(releases[0]["process_types"], json!({"web": "serve", "worker": "work"}));
    assert_eq!(releases[0]["image"], "sha256:ci/built:7", "released by the engine's ID for it");
    // Bad input says what to do, and releases nothing.
    let out = f.paas(&["deploy", "--image", "ci/built:7", "--process", "web", "-a", "deploy-img"], b"").await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = f.paas(&["deploy", "--image", "ci/built:7", "--process", "run=x", "-a", "deploy-img"], b"").await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let out = f.paas(&["deploy", "--image", "two words", "-a", "deploy-img"], b"").await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    // Images that are not an app's to take: the platform's own, its
    // registry's, a bare ID, a registry on a private address.
    for (image, says) in [
        ("paas/other-app:1a2b3c4d", "platform's own images"),
        ("paas/stack-run:trixie-2", "platform's own images"),
        ("sha256:0123456789abcdef", "not by a bare ID"),
        ("10.9.8.7:5000/team/app:1", "PAAS_OUTBOUND_ALLOW"),
    ] {
        let out = f.paas(&["deploy", "--image", image, "-a", "deploy-img"], b"").await;
        assert_eq!(out.status.code(), Some(4), "{image}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{image}: {}", text(&out.stderr));
    }
    let after: Vec<serde_json::Value> = f.send(Method::GET, "/apps/deploy-img/releases", json!({})).await.json().await.unwrap();
    assert_eq!(after.len(), releases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_are_refused_before_they_start_while_the_disk_is_nearly_full() {
    // More free space wanted than any disk has: every build is refused.
    let f = Fast::start_with(|s| s.builds.min_free_disk = 1 << 62).await;
    f.app("deploy-full").await;
    let repo = crate::pushes::dockerfile_repo();
    let (pushed, said) = f.push(repo.path(), "deploy-full").await;
    assert!(!pushed, "{said}");
    assert!(said.contains("the server's disk is nearly full") && said.contains("PAAS_MIN_FREE_DISK_MB") && said.contains("docker system prune"), "{said}");
    let builds: Vec<serde_json::Value> = f.send(Method::GET, "/apps/deploy-full/builds", json!({})).await.json().await.unwrap();
    assert!(builds.is_empty(), "nothing was recorded: {builds:?}");
    let releases: Vec<serde_json::Value> = f.send(Method::GET, "/apps/deploy-full/releases", json!({})).await.json().await.unwrap();
    assert!(releases.is_empty());
}
