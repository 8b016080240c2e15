//! The log router end to end on the real Docker engine: a real server
//! process, real `git push`, real dynos writing to stdout, the real `paas
//! logs -t`, the SSE stream, a syslog and an HTTPS receiver on loopback, a
//! reader that stalls, a server restart, and a dyno that crashes.

use crate::harness::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Lines from a reader, on a thread, so a test can wait for them bounded.
fn line_channel(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Receives lines until one contains `needle` (bounded); returns them all.
fn until(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {needle:?} within {timeout:?}; the last ones:\n{}", seen[seen.len().saturating_sub(20)..].join("\n")),
        }
    }
}

/// The app: the fixture's web process, and a worker that counts.
fn ticking_repo(p: &Platform, worker: &str) -> tempfile::TempDir {
    let repo = dockerfile_repo(p, "main", "logs");
    let procfile = std::fs::read_to_string(repo.path().join("Procfile")).unwrap();
    std::fs::write(repo.path().join("Procfile"), procfile.replace("worker: exec sleep 100000", &format!("worker: {worker}"))).unwrap();
    p.git_ok(repo.path(), &["commit", "-qam", "a worker that logs"]);
    repo
}

const TICK: &str = "i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done";

#[test]
fn a_dynos_lines_reach_the_cli_tail_sse_and_drains_and_a_restart_neither_repeats_nor_loses_any() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (https_port, ca, posts) = rt.block_on(receivers::https_receiver(certs.path()));
    let (syslog_port, syslog) = rt.block_on(receivers::syslog_receiver());
    let mut p = Platform::start_with(&[("PAAS_DRAIN_CA_FILE", ca.to_str().unwrap())]);
    let app = unique_app("e2e-logs");
    let repo = ticking_repo(&p, TICK);
    let dir = repo.path();
    p.create_app(dir, &app);
    p.paas_ok(dir, &["drains:add", &format!("syslog://127.0.0.1:{syslog_port}"), "-a", &app]);
    p.paas_ok(dir, &["drains:add", &format!("https://localhost:{https_port}/drain"), "-a", &app]);
    let drains = p.paas_ok(dir, &["drains", "-a", &app]);
    assert!(drains.contains(&format!("syslog://127.0.0.1:{syslog_port}")), "{drains}");
    p.push_ok(dir, &app);
    p.paas_ok(dir, &["ps:scale", "worker=1", "-a", &app]);

    // `paas logs -t`, the real CLI.
    let mut cli = p.paas_cmd(dir, &["logs", "-t", "-a", &app]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let tail = line_channel(cli.stdout.take().unwrap());
    let seen = until(&tail, "app[worker.1]: tick 3", Duration::from_secs(60));
    let _ = cli.kill();
    let _ = cli.wait();
    let tick = seen.iter().find(|l| l.contains("app[worker.1]: tick 3")).unwrap();
    assert!(!tick.contains('\x1b'), "no colour when stdout is not a terminal: {tick:?}");
    let history = p.paas_ok(dir, &["logs", "-n", "1500", "-a", &app]);
    for want in ["paas[build]: ", "paas[api]: Release v1 created: Deploy ", "paas[worker.1]: Starting process with command", "paas[web.1]: State changed from starting to up"] {
        assert!(history.contains(want), "no {want:?} in the history:\n{history}");
    }

    // The event stream a browser reads.
    let sse = p.api().get(p.url(&format!("/apps/{app}/log-stream?ps=worker&source=app"))).send().unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let events = line_channel(sse);
    let got = until(&events, "\"text\":\"tick", Duration::from_secs(30));
    assert!(got.iter().any(|l| l.starts_with("id: ")), "{got:?}");

    // Both drains get the dyno's lines, framed as Logplex frames them.
    poll(Duration::from_secs(30), "the syslog drain to get ticks", || {
        syslog.lock().unwrap().iter().any(|m| m.starts_with("<190>1 ") && m.contains(&format!(" {app} app worker.1 - - tick "))).then_some(())
    });
    poll(Duration::from_secs(30), "the HTTPS drain to get ticks", || {
        posts.lock().unwrap().iter().any(|(h, b)| h["content-type"] == "application/logplex-1" && b.contains(" app worker.1 - - tick ")).then_some(())
    });

    // A restart: the worker goes on counting while the server is down.
    p.terminate(Duration::from_secs(30));
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(1) {
        std::thread::yield_now();
    }
    p.boot();
    let numbers = poll(Duration::from_secs(30), "ticks after the restart", || {
        let text = p.paas_ok(dir, &["logs", "-n", "1500", "-p", "worker.1", "-s", "app", "-a", &app]);
        let n: Vec<u64> = text.lines().filter_map(|l| l.split("app[worker.1]: tick ").nth(1)?.parse().ok()).collect();
        (n.len() > 60).then_some(n)
    });
    let first = numbers[0];
    let expected: Vec<u64> = (first..first + numbers.len() as u64).collect();
    assert_eq!(numbers, expected, "every tick once, in order, across the restart");
    let history = p.paas_ok(dir, &["logs", "-n", "1500", "-a", &app]);
    assert!(history.contains("paas[api]: Release v1 created"), "history survives the restart");
}

#[test]
fn a_stalled_reader_does_not_slow_another_and_is_told_what_it_lost() {
    let mut p = Platform::start();
    let app = unique_app("e2e-stall");
    // 40 bursts of 2,000 long lines: far more than a stalled reader's
    // buffers hold, in bursts a live reader keeps up with.
    let spam = "for b in $(seq 1 40); do seq $((b*2000-1999)) $((b*2000)) | sed 's/^/n=/;s/$/ padpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpadpad/'; sleep 0.3; done; echo spam-done; exec sleep 100000";
    let repo = ticking_repo(&p, spam);
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);

    // A small receive buffer, as a slow client far away has; loopback's
    // autotuned one would hold 32 MB.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut stalled = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(([127, 0, 0, 1], p.api_port).into()).await.unwrap().into_std().unwrap()
    });
    stalled.set_nonblocking(false).unwrap();
    write!(stalled, "GET /apps/{app}/logs?tail=true&lines=0&ps=worker HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", p.token).unwrap();
    let live = p.api().get(p.url(&format!("/apps/{app}/logs?tail=true&lines=0&ps=worker"))).send().unwrap();
    let live = line_channel(live);
    std::thread::sleep(Duration::from_millis(200)); // both readers are subscribed before the worker starts
    p.paas_ok(dir, &["ps:scale", "worker=1", "-a", &app]);
    let lines = until(&live, "app[worker.1]: spam-done", Duration::from_secs(120));
    let numbers: Vec<u64> =
        lines.iter().filter_map(|l| l.split("app[worker.1]: n=").nth(1)?.split(' ').next()?.parse().ok()).collect();
    let repeated: Vec<&u64> = numbers.windows(2).filter(|w| w[1] != w[0] + 1).map(|w| &w[1]).take(10).collect();
    assert_eq!(numbers.len(), 80_000, "the live reader got every line, once, while the other one stalled; out of order: {repeated:?}; other lines: {:?}", lines.iter().filter(|l| !l.contains(": n=")).take(20).collect::<Vec<_>>());
    assert!(!lines.iter().any(|l| l.contains("Error L10")), "the live reader lost nothing");

    // The stalled reader, reading at last, is told how many it lost.
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut text = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !String::from_utf8_lossy(&text).contains("app[worker.1]: spam-done") {
        let n = stalled.read(&mut buf).expect("the stalled stream goes on");
        assert!(n > 0, "the stalled stream ended early");
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("paas[logs]: Error L10 (output buffer overflow): "),
        "the stalled reader is told it lost lines; it got {} bytes, {} lines",
        text.len(),
        text.matches(": n=").count(),
    );
}

#[test]
fn a_crashing_dynos_output_and_the_crash_appear_in_the_logs() {
    let mut p = Platform::start();
    let app = unique_app("e2e-logcrash");
    let repo = ticking_repo(&p, "echo about to crash; echo on stderr too >&2; sleep 1; exit 3");
    let dir = repo.path();
    p.create_app(dir, &app);
    p.push_ok(dir, &app);
    let scaled = p.paas(dir, &["ps:scale", "worker=1", "-a", &app]);
    assert!(!scaled.status.success(), "the scale says the worker did not come up");
    let history = poll(Duration::from_secs(60), "the crash in the logs", || {
        let text = p.paas_ok(dir, &["logs", "-n", "1500", "-a", &app]);
        text.contains("paas[worker.1]: State changed from up to crashed").then_some(text)
    });
    for want in [
        "app[worker.1]: about to crash",
        "app[worker.1]: on stderr too",
        "paas[worker.1]: Process exited with status 3",
        "paas[api]: Scaled worker=1",
    ] {
        assert!(history.contains(want), "no {want:?} in:\n{history}");
    }
    // On a real terminal (tmux) each dyno's prefix is coloured; with
    // NO_COLOR it is not.
    for (no_color, coloured) in [("", true), ("1", false)] {
        let cmd = format!("{} logs -n 50 -a {app}; sleep 60", cli_exe().display());
        let env = [
            ("PAAS_API_URL", p.api_url()),
            ("PAAS_TOKEN", p.token.clone()),
            ("HOME", p.home.path().display().to_string()),
            ("NO_COLOR", no_color.to_owned()),
        ];
        let terminal = Terminal::start(&cmd, &env, 200, 50);
        terminal.wait_for("about to crash", Duration::from_secs(30));
        let screen = terminal.screen(true);
        let line = screen.lines().find(|l| l.contains("about to crash")).unwrap();
        assert_eq!(line.contains('\x1b'), coloured, "NO_COLOR={no_color:?}: {line:?}");
    }
    let crashed = history.lines().position(|l| l.contains("State changed from up to crashed")).unwrap();
    let said = history.lines().position(|l| l.contains("app[worker.1]: about to crash")).unwrap();
    assert!(said < crashed, "the dyno's own last words come before the crash:\n{history}");
}
