//! Automatic certificates end to end against a real ACME server: Debian's
//! pebble (a test CA) on loopback, with pebble-challtestsrv as its DNS
//! (every name is 127.0.0.1). pebble validates HTTP-01 by connecting to the
//! platform's real router; the certificate it issues is then served by the
//! router's HTTPS listener and checked against pebble's own root.

use crate::harness::Fast;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Child processes killed when the test ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_auto_gets_a_certificate_from_pebble_over_http_01_through_the_router() {
    let dir = tempfile::tempdir().unwrap();
    // pebble's own HTTPS certificate, which the platform's ACME client trusts.
    let own = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("pebble.pem"), dir.path().join("pebble.key"));
    std::fs::write(&cert_file, own.cert.pem()).unwrap();
    std::fs::write(&key_file, own.key_pair.serialize_pem()).unwrap();
    let (acme_port, mgmt_port, dns_port, dns_mgmt_port) = (free_port(), free_port(), free_port(), free_port());

    let ca = cert_file.clone();
    let f = Fast::start_with(move |s| {
        s.router.tls_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        s.certs.acme_directory = format!("https://127.0.0.1:{acme_port}/dir");
        s.certs.acme_ca_file = Some(ca);
        // Every automatic certificate is due for renewal at once.
        s.certs.acme_renew = Duration::ZERO;
    })
    .await;
    let app = f.app("acme-app").await;
    f.deploy(&app, "img-a").await;

    // pebble checks HTTP-01 on the router's port.
    let config = json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
        "certificate": cert_file, "privateKey": key_file,
        "httpPort": f.p().router_addr.port(), "tlsPort": free_port(),
        "ocspResponderURL": "", "externalAccountBindingRequired": false
    }});
    let config_file = dir.path().join("pebble.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    let _children = Children(vec![
        Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}"), "-management", &format!("127.0.0.1:{dns_mgmt_port}")])
            .stdout(Stdio::from(log("challtestsrv.log")))
            .stderr(Stdio::from(log("challtestsrv.err")))
            .spawn()
            .expect("pebble-challtestsrv (Debian's pebble package; scripts/ensure-deps installs it)"),
        Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::from(log("pebble.log")))
            .stderr(Stdio::from(log("pebble.err")))
            .spawn()
            .expect("pebble (scripts/ensure-deps installs it)"),
    ]);
    let trusting_pebble = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(own.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while trusting_pebble.get(format!("https://127.0.0.1:{acme_port}/dir")).send().await.is_err() {
        assert!(Instant::now() < deadline, "pebble did not start: {}", std::fs::read_to_string(dir.path().join("pebble.err")).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let r = f.send(reqwest::Method::POST, "/apps/acme-app/domains", json!({ "hostname": "www.acme.test" })).await;
    assert_eq!(r.status(), 201);
    let r = f.send(reqwest::Method::POST, "/apps/acme-app/certs/auto", json!({})).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 201, "{body}\npebble said:\n{}", std::fs::read_to_string(dir.path().join("pebble.log")).unwrap_or_default());
    let certs: Vec<paas_wire::Cert> = serde_json::from_str(&body).unwrap();
    assert_eq!(certs.iter().map(|c| c.hostname.as_str()).collect::<Vec<_>>(), ["www.acme.test"]);

    // Served over HTTPS, and valid under pebble's root.
    let root = trusting_pebble.get(format!("https://127.0.0.1:{mgmt_port}/roots/0")).send().await.unwrap().text().await.unwrap();
    let tls = f.p().tls_addr.unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve("www.acme.test", tls)
        .build()
        .unwrap();
    let r = client.get(format!("https://www.acme.test:{}/", tls.port())).send().await.expect("a certificate pebble issued");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("acme-app v1"));

    // Renewal: due (PAAS_ACME_RENEW_DAYS=0 here), so the next pass gets a
    // new certificate from pebble and serves it.
    let served_ok = |client: reqwest::Client| async move {
        let r = client.get(format!("https://www.acme.test:{}/", tls.port())).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };
    served_ok(client.clone()).await;
    let before = f.p().store.certs(&app.id).await.unwrap()[0].chain_pem.clone();
    let r = f.send(reqwest::Method::POST, "/apps/acme-app/certs/auto", json!({})).await;
    assert_eq!(r.status(), 201);
    let after = f.p().store.certs(&app.id).await.unwrap()[0].chain_pem.clone();
    assert_ne!(before, after, "a new certificate was issued");
    served_ok(client).await;
}

