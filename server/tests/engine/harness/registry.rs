//! A docker-registry of a test's own on loopback (Debian's package;
//! `scripts/ensure-deps` installs it).

use super::poll;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A docker-registry on 127.0.0.1: only `user` with `password` may use it,
/// or, without them, anyone; killed (and its storage removed) when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let root = dir.path().display();
        let mut config = format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\nhttp:\n  addr: 127.0.0.1:{port}\n");
        if let Some((user, password)) = auth {
            let hash = bcrypt::hash(password, 4).unwrap();
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: paas\n    path: {root}/htpasswd\n"));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian's package; scripts/ensure-deps installs it)");
        let registry = Registry { child, port, _dir: dir };
        // Up once it answers (asking for credentials, if it has them).
        let up = if auth.is_some() { 401 } else { 200 };
        poll(Duration::from_secs(20), "the registry to answer", || {
            let answer = reqwest::blocking::get(registry.url("/v2/")).ok()?;
            (answer.status() == up).then_some(())
        });
        registry
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

