//! Fast tests of the log router through the real API (in-process server,
//! fake runtime, real HTTP, real syslog and HTTPS receivers on loopback):
//! tails, SSE with resume, filters, a stalled reader, a restart, drains and
//! their drop notices. `e2e.rs` proves the same on the real Docker engine.

use crate::harness::Fast;
use crate::shared::receivers::{https_receiver, syslog_receiver};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Lines of a streamed response, as they arrive.
struct Lines {
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: Vec<u8>,
}

impl Lines {
    fn new(resp: reqwest::Response) -> Self {
        assert!(resp.status().is_success(), "{}", resp.status());
        Self { stream: Box::pin(resp.bytes_stream()), buf: Vec::new() }
    }

    /// The next line, waiting up to 10 s.
    async fn next(&mut self) -> Option<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// Reads until a line contains `needle`; every line read on the way.
    async fn until(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(line) = self.next().await {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return seen;
            }
        }
        panic!("no line with {needle:?} within 10 s; saw:\n{}", seen.join("\n"));
    }
}

impl Fast {
    async fn get_lines(&self, path: &str) -> Lines {
        Lines::new(self.http().get(self.url(path)).bearer_auth(&self.token).send().await.unwrap())
    }

    async fn history(&self, path: &str) -> Vec<String> {
        let r = self.http().get(self.url(path)).bearer_auth(&self.token).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.text().await.unwrap().lines().map(str::to_owned).collect()
    }

    /// Polls (bounded) until the history at `path` holds a line with `needle`.
    async fn wait_history(&self, path: &str, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.history(path).await;
            if lines.iter().any(|l| l.contains(needle)) {
                return lines;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in {path}:\n{}", lines.join("\n"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dyno_output_and_platform_events_reach_history_tails_and_sse() {
    let f = Fast::start().await;
    let app = f.app("logs-tail").await;
    f.deploy(&app, "img-a").await;
    let mut tail = f.get_lines("/apps/logs-tail/logs?tail=true&lines=0").await;
    let sse = f.http().get(f.url("/apps/logs-tail/log-stream?lines=0")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let mut sse = Lines::new(sse);

    f.fake.write_output("logs-tail", "web.1", "hello from web", false);
    f.fake.write_output("logs-tail", "web.1", "oops on stderr", true);
    let got = tail.until("hello from web").await;
    let line = got.last().unwrap();
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, "app[web.1]: hello from web");
    assert!(time.len() == 32 && time.ends_with("+00:00"), "Heroku's timestamp: {time}");
    tail.until("app[web.1]: oops on stderr").await;

    let events = sse.until("hello from web").await;
    let id = events.iter().rev().find_map(|l| l.strip_prefix("id: ")).expect("events carry ids").to_owned();
    let data = events.last().unwrap().strip_prefix("data: ").unwrap();
    let event: paas_wire::LogEvent = serde_json::from_str(data).unwrap();
    assert_eq!((event.source.as_str(), event.dyno.as_str(), event.text.as_str()), ("app", "web.1", "hello from web"));
    assert_eq!(event.seq.to_string(), id);

    // A browser that reconnects with Last-Event-ID gets what came after.
    let resumed = f
        .http()
        .get(f.url("/apps/logs-tail/log-stream"))
        .bearer_auth(&f.token)
        .header("Last-Event-ID", &id)
        .send()
        .await
        .unwrap();
    let mut resumed = Lines::new(resumed);
    let first_data = loop {
        let l = resumed.next().await.expect("a resumed stream");
        if let Some(d) = l.strip_prefix("data: ") {
            break d.to_owned();
        }
    };
    let first: paas_wire::LogEvent = serde_json::from_str(&first_data).unwrap();
    assert_eq!(first.text, "oops on stderr", "the next line after the last one seen, and not that one again");

    // History: the platform's events as Heroku words them, and filters.
    let all = f.wait_history("/apps/logs-tail/logs", "hello from web").await;
    for want in [
        "paas[api]: Release v1 created: Deploy 0123456",
        "paas[web.1]: Starting process with command `serve`",
        "paas[web.1]: State changed from starting to up",
    ] {
        assert!(all.iter().any(|l| l.ends_with(want)), "no {want:?} in:\n{}", all.join("\n"));
    }
    let app_only = f.history("/apps/logs-tail/logs?source=app").await;
    assert!(!app_only.is_empty() && app_only.iter().all(|l| l.contains(" app[")), "{app_only:?}");
    let worker = f.history("/apps/logs-tail/logs?ps=worker").await;
    assert!(worker.iter().all(|l| l.contains("[worker")), "{worker:?}");
    let one = f.history("/apps/logs-tail/logs?lines=1").await;
    assert_eq!(one.len(), 1);

    // Router access records.
    let (status, _) = f.page("logs-tail").await;
    assert_eq!(status, 200);
    let access = f.wait_history("/apps/logs-tail/logs?ps=router", "paas[router]").await;
    let record = access.iter().find(|l| l.contains("paas[router]")).unwrap();
    for part in ["at=info method=GET path=\"/\" host=", "fwd=\"127.0.0.1\" dyno=web.1 connect=", "ms service=", "ms status=200 bytes=", " protocol=http", "host=\"logs-tail.localhost\"", "dyno=web.1", "status=200", "request_id=", "bytes="] {
        assert!(record.contains(part), "{part:?} in {record}");
    }

    // Bad filters say what is accepted; no token, no logs.
    let bad = f.http().get(f.url("/apps/logs-tail/logs?source=nope")).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("app, paas"));
    for path in ["/apps/logs-tail/logs", "/apps/logs-tail/log-stream", "/apps/logs-tail/log-drains"] {
        let r = f.http().get(f.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_slows_nobody_and_is_told_what_it_lost() {
    let f = Fast::start().await;
    let app = f.app("logs-stall").await;
    f.deploy(&app, "img-a").await;
    // A reader that sends its request and then never reads.
    let mut stalled = tokio::net::TcpStream::connect(f.p().api_addr).await.unwrap();
    let request = format!(
        "GET /apps/logs-stall/logs?tail=true&lines=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        f.token
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    let mut reader = f.get_lines("/apps/logs-stall/logs?tail=true&lines=0").await;
    // Enough lines to fill the stalled reader's buffers many times over.
    // The producer waits for the live reader (counting lines), never for
    // the stalled one: if it slowed the ingest, the live reader would stop.
    let pad = "x".repeat(200);
    let total = 60_000;
    let mut received = 0;
    for batch in 0..(total / 1000) {
        for i in 0..1000 {
            f.fake.write_output("logs-stall", "web.1", &format!("n={} {pad}", batch * 1000 + i), false);
        }
        while received < (batch + 1) * 1000 {
            let line = reader.next().await.expect("the live reader keeps getting lines");
            if line.contains("app[web.1]: n=") {
                received += 1;
            }
        }
    }
    assert_eq!(received, total);

    // The stalled reader, reading at last, is told how many it lost.
    let mut text = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 1 << 16];
    while !String::from_utf8_lossy(&text).contains(&format!("n={} ", total - 1)) {
        assert!(Instant::now() < deadline, "the stalled reader never caught up");
        let n = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the stream ended early");
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("paas[logs]: Error L10 (output buffer overflow): "), "no drop notice");
    let lost: u64 = text.split("Error L10 (output buffer overflow): ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let kept = text.matches("app[web.1]: n=").count() as u64;
    assert!(lost > 0 && kept + lost <= total as u64 + 1, "lost {lost}, kept {kept}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_neither_repeats_nor_loses_lines() {
    let mut f = Fast::start().await;
    let app = f.app("logs-restart").await;
    f.deploy(&app, "img-a").await;
    for i in 1..=50 {
        f.fake.write_output("logs-restart", "web.1", &format!("n={i}"), false);
    }
    f.wait_history("/apps/logs-restart/logs?source=app", "n=50").await;
    f.restart().await;
    // Written while a new server starts: the engine keeps them.
    for i in 51..=100 {
        f.fake.write_output("logs-restart", "web.1", &format!("n={i}"), false);
    }
    let lines = f.wait_history("/apps/logs-restart/logs?source=app&lines=1000", "n=100").await;
    let numbers: Vec<u32> = lines.iter().filter_map(|l| l.split("app[web.1]: n=").nth(1)?.parse().ok()).collect();
    assert_eq!(numbers, (1..=100).collect::<Vec<_>>(), "each line once, in order");
    let history = f.history("/apps/logs-restart/logs?lines=1000").await;
    assert!(history.iter().any(|l| l.contains("paas[api]: Release v1 created")), "events survive a restart too");
}

pub async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_deliver_over_syslog_and_https_with_logplex_framing() {
    let certs = tempfile::tempdir().unwrap();
    let (https_port, ca, posts) = https_receiver(certs.path()).await;
    let f = Fast::start_with(|s| s.logs.drain_ca_file = Some(ca)).await;
    let app = f.app("logs-drain").await;
    f.deploy(&app, "img-a").await;
    let (syslog_port, syslog) = syslog_receiver().await;

    let add = |url: String| f.send(reqwest::Method::POST, "/apps/logs-drain/log-drains", serde_json::json!({ "url": url }));
    let r = add(format!("syslog://127.0.0.1:{syslog_port}")).await;
    assert_eq!(r.status(), 201);
    let r = add(format!("https://user:secret@localhost:{https_port}/logs")).await;
    assert_eq!(r.status(), 201);
    let https_drain: paas_wire::LogDrain = r.json().await.unwrap();
    assert_eq!(https_drain.url, format!("https://***@localhost:{https_port}/logs"), "credentials are never shown");
    let again = add(format!("syslog://127.0.0.1:{syslog_port}")).await;
    assert_eq!(again.status(), 409);
    for bad in ["file:///etc/passwd", "syslog://nohost", "http//x"] {
        let r = add(bad.to_owned()).await;
        assert_eq!(r.status(), 422, "{bad}");
        assert!(r.text().await.unwrap().contains("syslog://HOST:PORT"));
    }
    let listed: Vec<paas_wire::LogDrain> =
        f.http().get(f.url("/apps/logs-drain/log-drains")).bearer_auth(&f.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 2);

    for i in 0..20 {
        f.fake.write_output("logs-drain", "web.1", &format!("drained {i}"), i == 7);
    }
    wait_until("syslog lines", || syslog.lock().unwrap().iter().any(|m| m.contains("drained 19"))).await;
    wait_until("https lines", || posts.lock().unwrap().iter().any(|(_, b)| b.contains("drained 19"))).await;

    let msgs = syslog.lock().unwrap().clone();
    let seven = msgs.iter().find(|m| m.ends_with("drained 7\n")).expect("each line is a message");
    let parts: Vec<&str> = seven.splitn(8, ' ').collect();
    assert_eq!(parts[0], "<187>1", "local7, err for stderr: {seven}");
    assert!(parts[1].ends_with("+00:00"));
    assert_eq!(&parts[2..7], ["logs-drain", "app", "web.1", "-", "-"], "{seven}");
    assert!(msgs.iter().any(|m| m.starts_with("<190>1 ") && m.contains(" logs-drain app web.1 - - drained 8")));

    let posts = posts.lock().unwrap().clone();
    for (headers, body) in &posts {
        assert_eq!(headers["content-type"], "application/logplex-1");
        assert_eq!(headers["logplex-drain-token"], https_drain.token.as_str());
        assert!(!headers["logplex-frame-id"].is_empty());
        // The body is Logplex's: octet-counted frames, as many as the header says.
        let mut rest = body.as_str();
        let mut count = 0;
        while !rest.is_empty() {
            let (len, after) = rest.split_once(' ').unwrap();
            let len: usize = len.parse().unwrap();
            rest = &after[len..];
            count += 1;
        }
        assert_eq!(headers["logplex-msg-count"], count.to_string().as_str());
    }

    // Removed by URL: no more deliveries to it.
    let r = f
        .http()
        .delete(f.url(&format!("/apps/logs-drain/log-drains/{}", https_drain.id)))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Vec<paas_wire::LogDrain> =
        f.http().get(f.url("/apps/logs-drain/log-drains")).bearer_auth(&f.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_is_down_keeps_a_bounded_buffer_and_announces_what_it_dropped() {
    let certs = tempfile::tempdir().unwrap();
    let status = Arc::new(AtomicU16::new(503));
    let (port, ca, posts) = crate::shared::receivers::https_receiver_answering(certs.path(), status.clone()).await;
    let f = Fast::start_with(|s| {
        s.logs.drain_buffer = 50;
        s.logs.drain_ca_file = Some(ca);
    })
    .await;
    let app = f.app("logs-down").await;
    f.deploy(&app, "img-a").await;
    let r = f
        .send(reqwest::Method::POST, "/apps/logs-down/log-drains", serde_json::json!({ "url": format!("https://localhost:{port}/") }))
        .await;
    assert_eq!(r.status(), 201);
    for i in 1..=300 {
        f.fake.write_output("logs-down", "web.1", &format!("n={i}"), false);
    }
    f.wait_history("/apps/logs-down/logs?source=app", "n=300").await;
    let said = f.wait_history("/apps/logs-down/logs", "cannot deliver").await;
    assert!(said.iter().any(|l| l.contains("503")), "the drain says why: {said:?}");
    // The receiver comes back; the drain's next attempt delivers.
    status.store(200, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text: String = posts.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
        if text.contains("- - n=300\n") {
            break text;
        }
        assert!(Instant::now() < deadline, "the drain never delivered after its receiver came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(text.contains("Error L10 (output buffer overflow): "), "{text}");
    let delivered = text.matches(" app web.1 - - n=").count();
    assert!(delivered <= 50, "the buffer is bounded: {delivered}");
    assert!(!text.contains(" - - n=1\n"), "the oldest lines went");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_reach_only_public_addresses_unless_allowed_and_tell_only_the_kind_of_failure() {
    // As a server starts by default: no range allowed.
    let strict = Fast::start_with(|s| s.server.outbound = paas_server::outbound::OutboundPolicy::default()).await;
    strict.app("drain-strict").await;
    for url in [
        "syslog://127.0.0.1:514",
        "syslog+tls://localhost:6514",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:8443/",
        "https://10.1.2.3/",
        "syslog://192.168.0.10:514",
    ] {
        let r = strict.send(reqwest::Method::POST, "/apps/drain-strict/log-drains", serde_json::json!({ "url": url })).await;
        assert_eq!(r.status(), 422, "{url}");
        assert!(r.text().await.unwrap().contains("PAAS_OUTBOUND_ALLOW"), "{url}");
    }

    // With loopback allowed (as the fast tests' servers are): a receiver's
    // redirect is not followed, and a failure reaches the app's log as its
    // kind, never as an address, a port or an OS error.
    let certs = tempfile::tempdir().unwrap();
    let status = Arc::new(AtomicU16::new(302));
    let (port, ca, _posts) = crate::shared::receivers::https_receiver_answering(certs.path(), status).await;
    let f = Fast::start_with(|s| s.logs.drain_ca_file = Some(ca)).await;
    let app = f.app("drain-kinds").await;
    f.deploy(&app, "img-a").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for url in [format!("https://localhost:{port}/"), format!("syslog://127.0.0.1:{closed}")] {
        let r = f.send(reqwest::Method::POST, "/apps/drain-kinds/log-drains", serde_json::json!({ "url": url })).await;
        assert_eq!(r.status(), 201, "{url}");
    }
    f.fake.write_output("drain-kinds", "web.1", "a line to deliver", false);
    f.wait_history("/apps/drain-kinds/logs", "(cannot connect)").await;
    let said = f.wait_history("/apps/drain-kinds/logs", "(the receiver answered 302 Found)").await.join("\n");
    assert!(!said.contains("os error") && !said.contains("Connection refused"), "{said}");
}
