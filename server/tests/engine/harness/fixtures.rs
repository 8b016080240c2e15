//! The apps the engine tests push: the busybox base image (built locally,
//! no registry can be reached), the Dockerfile fixture app, and copies of
//! `server/tests/fixtures/<name>` as git repos.

use super::Platform;
use std::path::Path;
use std::process::Command;

/// The tiny base image the fixtures build `FROM`: scratch plus Debian's
/// static busybox, built locally because no registry can be reached.
pub const BASE_IMAGE: &str = "paas-test/busybox:1";

pub fn ensure_base_image() {
    let have = Command::new("docker").args(["image", "inspect", BASE_IMAGE]).output().expect("docker CLI");
    if have.status.success() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox is missing: install Debian's busybox-static (scripts/test does)");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN mkdir -p /tmp /www && chmod 1777 /tmp\n",
    )
    .unwrap();
    let out = Command::new("docker").args(["build", "-q", "-t", BASE_IMAGE]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "building {BASE_IMAGE} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Writes an app repo: a Dockerfile from the test base image and a Procfile
/// whose web process serves a page with $GREETING and the container's
/// hostname.
pub fn write_fixture_app(dir: &Path, marker: &str) {
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {BASE_IMAGE}\nCOPY . /app\nRUN echo {marker} > /app/marker\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("Procfile"),
        "# the page shows the config var and which container served it\n\
         web: echo \"<p>greeting: $GREETING</p><p>host: $(hostname)</p><p>marker: $(cat /app/marker)</p><p>files: $(ls /app | tr '\\n' ' ')</p>\" > /www/index.html; exec httpd -f -p $PORT -h /www\n\
         worker: exec sleep 100000\n",
    )
    .unwrap();
    std::fs::write(dir.join(".dockerignore"), "secret.txt\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "not for the image\n").unwrap();
}

/// A new git repo on `branch` holding the Dockerfile fixture app, one commit.
pub fn dockerfile_repo(p: &Platform, branch: &str, marker: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    p.git_ok(repo.path(), &["init", "-q", "-b", branch]);
    write_fixture_app(repo.path(), marker);
    p.git_ok(repo.path(), &["add", "-A"]);
    p.git_ok(repo.path(), &["commit", "-qm", "first"]);
    repo
}

/// Copies `server/tests/fixtures/<name>` into a new git repo with one commit.
pub fn fixture_repo(p: &Platform, name: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    copy_dir(&src, repo.path());
    p.git_ok(repo.path(), &["init", "-q", "-b", "main"]);
    p.git_ok(repo.path(), &["add", "-A"]);
    p.git_ok(repo.path(), &["commit", "-qm", "fixture"]);
    repo
}

/// The keep-alive Python fixture, built `FROM` the run image by a
/// Dockerfile (quicker than the buildpack); it answers `ok web.N GREETING`.
pub fn keepalive_repo(p: &Platform) -> tempfile::TempDir {
    let repo = fixture_repo(p, "keepalive");
    let dir = repo.path();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {}\nCOPY web.py /app/web.py\n", paas_server::settings::DEFAULT_RUN)).unwrap();
    p.git_ok(dir, &["add", "-A"]);
    p.git_ok(dir, &["commit", "-qm", "a keep-alive web app"]);
    repo
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
