//! A platform backup that restores: three apps (a Dockerfile app, a
//! buildpack app, and one with a custom domain and its certificate) backed
//! up with `paas-server backup`, the server stopped and everything it ran
//! and built removed from the engine, then `paas-server restore` into a
//! new data dir (with only the old key) and a start: every app is rebuilt
//! from its repo and serves its config, with its domain, certificate and
//! formation. Bad input to a restore changes nothing.

use crate::harness::*;
use std::time::{Duration, Instant};

#[test]
fn three_apps_come_back_from_a_backup_on_a_fresh_data_dir_and_engine() {
    let mut p = Platform::start();
    let docker = unique_app("bk-docker");
    let buildpack = unique_app("bk-bp");
    let domain_app = unique_app("bk-domain");
    let host = format!("{domain_app}.example.test");

    let repo_a = dockerfile_repo(&p, "main", "backup-a");
    p.create_app(repo_a.path(), &docker);
    p.paas_ok(repo_a.path(), &["config:set", "GREETING=from-a", "-a", &docker, "--no-wait"]);
    p.push_ok(repo_a.path(), &docker);
    p.paas_ok(repo_a.path(), &["ps:scale", "worker=1", "-a", &docker]);

    let repo_b = fixture_repo(&p, "procfile");
    p.create_app(repo_b.path(), &buildpack);
    p.paas_ok(repo_b.path(), &["config:set", "GREETING=from-b", "-a", &buildpack, "--no-wait"]);
    p.push_ok(repo_b.path(), &buildpack);

    let repo_c = dockerfile_repo(&p, "main", "backup-c");
    let dir_c = repo_c.path();
    p.create_app(dir_c, &domain_app);
    p.paas_ok(dir_c, &["config:set", "GREETING=from-c", "-a", &domain_app, "--no-wait"]);
    p.push_ok(dir_c, &domain_app);
    p.paas_ok(dir_c, &["domains:add", &host, "-a", &domain_app]);
    let cert = rcgen::generate_simple_self_signed(vec![host.clone()]).unwrap();
    std::fs::write(dir_c.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir_c.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    p.paas_ok(dir_c, &["certs:add", "cert.pem", "key.pem", "-a", &domain_app]);
    for (app, greeting) in [(&docker, "from-a"), (&buildpack, "from-b"), (&domain_app, "from-c")] {
        p.wait_for_page(app, greeting);
    }

    let keep = tempfile::tempdir().unwrap();
    let archive = keep.path().join("platform.tar.gz");
    let out = p.server_cmd().arg("backup").arg(&archive).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 apps"), "{out:?}");
    let listing = std::process::Command::new("tar").arg("tzf").arg(&archive).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for entry in ["paas-backup/manifest.json", "paas-backup/README.txt", "paas-backup/paas.db", &format!("paas-backup/repos/{docker}.git/HEAD")] {
        assert!(listing.lines().any(|l| l == entry), "{entry} not in:\n{listing}");
    }
    assert!(!listing.contains("secret.key"), "the key stays out of the backup");
    eprintln!("backup of 3 apps: {} bytes", std::fs::metadata(&archive).unwrap().len());

    // A fresh engine state for these apps: the server stopped, their dynos,
    // networks and images gone.
    p.terminate(Duration::from_secs(30));
    for app in [&docker, &buildpack, &domain_app] {
        let ids = p.containers(app);
        if !ids.is_empty() {
            p.docker().args(["rm", "-f"]).args(&ids).output().unwrap();
        }
        let images = p.docker().args(["images", "-q", &format!("paas/{app}")]).output().unwrap();
        let images: Vec<String> = String::from_utf8_lossy(&images.stdout).lines().map(str::to_owned).collect();
        if !images.is_empty() {
            p.docker().args(["rmi", "-f"]).args(&images).output().unwrap();
        }
    }

    // A new data dir holding only the old key.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(p.data.path().join("secret.key"), fresh.path().join("secret.key")).unwrap();
    let old = std::mem::replace(&mut p.data, fresh);

    // Bad input first: no file, not a backup, the wrong key, a data dir in use.
    let out = p.server_cmd().arg("restore").arg(keep.path().join("missing.tar.gz")).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cannot read"), "{out:?}");
    std::fs::write(keep.path().join("junk.tar.gz"), b"not a backup").unwrap();
    let out = p.server_cmd().arg("restore").arg(keep.path().join("junk.tar.gz")).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a paas backup"), "{out:?}");
    let out = p.server_cmd().arg("restore").arg(&archive).env("PAAS_SECRET_KEY", "0".repeat(64)).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("does not open the backup's secrets"), "{out:?}");
    let out = p.server_cmd().env("PAAS_DATA_DIR", old.path()).arg("restore").arg(&archive).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is not empty"), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(p.data.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["secret.key"], "failed restores leave nothing behind");

    let started = Instant::now();
    let out = p.server_cmd().arg("restore").arg(&archive).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("restored 3 apps"), "{out:?}");
    p.boot();
    for (app, greeting) in [(&docker, "from-a"), (&buildpack, "from-b"), (&domain_app, "from-c")] {
        p.wait_for_page(app, greeting);
    }
    eprintln!("restore to every app serving: {:?}", started.elapsed());
    let log = p.log();
    assert_eq!(log.matches("rebuilt after the restore").count(), 3, "{log}");

    // The domain answers, its certificate is there, and the formation is.
    let r = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{}/", p.router_port))
        .header("Host", &host)
        .send()
        .unwrap();
    assert!(r.text().unwrap().contains("from-c"));
    assert!(p.paas_ok(dir_c, &["certs", "-a", &domain_app]).contains(&host));
    poll(Duration::from_secs(60), "the worker back", || (p.running(&docker, "worker").len() == 1).then_some(()));
    let releases = p.paas_ok(repo_a.path(), &["releases", "-a", &docker]);
    assert!(releases.contains("v3"), "a new release of the rebuilt image: {releases}");
}
