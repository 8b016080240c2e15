//! Fast tests of one-off dynos through the real API and the real CLI
//! (in-process server, fake runtime: a fake one-off dyno is `cat`, or
//! `exit N`): the upgrade's checks, the protocol's streams and exit codes,
//! detached runs in `ps` and `ps:stop`. `run_e2e.rs` proves it all on the
//! real Docker engine, through a real terminal.

use crate::harness::Fast;
use paas_server::runtime::{OneOffAttach, Placement};
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The status line answering a WebSocket upgrade of `path`.
async fn upgrade(f: &Fast, path: &str, token: Option<&str>) -> String {
    let mut s = tokio::net::TcpStream::connect(f.p().api_addr).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn spec(json: &str) -> String {
    json.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn the_upgrade_checks_token_app_release_and_request_before_anything_starts() {
    let f = Fast::start().await;
    let app = f.app("run-checks").await;
    let ok = spec(r#"{"command":"cat"}"#);
    let path = |s: &str| format!("/apps/run-checks/run?spec={s}");
    assert!(upgrade(&f, &path(&ok), None).await.starts_with("HTTP/1.1 401"));
    assert!(upgrade(&f, &path(&ok), Some("not-a-token")).await.starts_with("HTTP/1.1 401"));
    let answer = upgrade(&f, &format!("/apps/run-nothere/run?spec={ok}"), Some(&f.token)).await;
    assert!(answer.starts_with("HTTP/1.1 404") && answer.contains("does not exist"), "{answer}");
    let answer = upgrade(&f, &path(&ok), Some(&f.token)).await;
    assert!(answer.starts_with("HTTP/1.1 422") && answer.contains("git push paas main"), "no release yet: {answer}");

    f.deploy(&app, "img:v1").await;
    for (bad, status, says) in [
        ("not json", "400", "run request"),
        (r#"{"command":"  "}"#, "422", "give a command"),
        (r#"{"command":"cat","size":"lots"}"#, "422", "size"),
        (r#"{"command":"cat","env":{"PAAS_X":"1"}}"#, "422", "PAAS_"),
        (r#"{"command":"cat","env":{"1X":"1"}}"#, "422", "1X"),
    ] {
        let answer = upgrade(&f, &path(&spec(bad)), Some(&f.token)).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")) && answer.contains(says), "{bad}: {answer}");
    }
    assert!(upgrade(&f, &path(&ok), Some(&f.token)).await.starts_with("HTTP/1.1 101"));
    assert!(f.fake.list_dynos(Some("run-checks")).await.unwrap().iter().all(|d| d.process_type != "run"));
}

#[tokio::test]
async fn attached_runs_carry_bytes_and_exit_codes_and_detached_ones_show_in_ps() {
    let f = Fast::start().await;
    let app = f.app("run-fast").await;
    f.deploy(&app, "img:v1").await;

    let out = f.paas(&["run", "-a", "run-fast", "cat"], b"hi\n").await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let out = f.paas(&["run", "-a", "run-fast", "cat"], &blob).await;
    assert!(out.stdout == blob, "binary data round-trips byte for byte");
    let out = f.paas(&["run", "-a", "run-fast", "exit 7"], b"").await;
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));

    // Detached: listed as run.N with its command, never in the formation.
    let out = f.paas(&["run:detached", "-a", "run-fast", "--size", "1G", "-e", "K=v", "sleep 1000"], b"").await;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("up, run."), "{said}{}", String::from_utf8_lossy(&out.stderr));
    let name = said.split("up, ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    let ps = String::from_utf8_lossy(&f.paas(&["ps", "-a", "run-fast"], b"").await.stdout).into_owned();
    let line = ps.lines().find(|l| l.starts_with(&name)).unwrap_or_else(|| panic!("no {name} in:\n{ps}"));
    assert!(line.contains("1G") && line.ends_with("sleep 1000"), "{line}");
    let env = f.fake.env_of("run-fast", &name).unwrap();
    assert_eq!((env["K"].as_str(), env["DYNO"].as_str()), ("v", name.as_str()));
    let formation = f.send(reqwest::Method::GET, "/apps/run-fast/formation", serde_json::Value::Null).await.text().await.unwrap();
    assert!(!formation.contains("\"run\""), "{formation}");

    let out = f.paas(&["ps:stop", "-a", "run-fast", &name], b"").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f.fake.list_one_offs(Some("run-fast")).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the stopped run was never removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let history = f.p().logs.history("run-fast", &Default::default(), 100);
    let history: Vec<String> = history.iter().map(|l| l.heroku().to_owned()).collect();
    let history = history.join("\n");
    for want in [
        format!("paas[{name}]: Stopping process with SIGTERM: `paas ps:stop`"),
        format!("paas[{name}]: State changed from up to complete"),
        "paas[api]: Starting process with command `sleep 1000` (detached)".to_owned(),
    ] {
        assert!(history.contains(&want), "no {want:?} in:\n{history}");
    }
}

#[tokio::test]
async fn an_attached_run_that_carries_nothing_either_way_is_ended_after_the_idle_timeout() {
    let f = Fast::start_with(|s| s.dynos.run_idle = Duration::from_secs(2)).await;
    let app = f.app("run-idle").await;
    f.deploy(&app, "img:v1").await;
    // `cat` with its input held open and nothing sent: idle both ways.
    let mut command = f.cli(&["run", "-a", "run-idle", "cat"]);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        // Typed once, then nothing: the activity resets the timer.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"once\n").unwrap();
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        out
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "once\n");
    assert!(said.contains("carried nothing either way for 2 s (PAAS_RUN_IDLE_SECONDS)"), "{said}");
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(30), "ended by the idle timeout, not the test's");
}
