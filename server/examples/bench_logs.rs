//! The log benchmark's reader (scripts/bench-logs runs it): follows one
//! burst of `LINES` lines (`line 1` .. `line N`) from a dyno, either through
//! paas (`paas URL TOKEN APP CLIENTS`: that many live tails of
//! `/apps/APP/logs`) or straight from the Docker engine (`docker APP`:
//! `docker logs -f` over the socket of the same worker container, the
//! ceiling; or `stdin`: the lines of `docker logs -f --timestamps`, the
//! Docker CLI as the reader), and prints one JSON line:
//! lines/s (first to last line, the slowest client), per-line latency p50
//! and p99 (arrival minus the engine's timestamp of the line), lines lost,
//! and paas-server's CPU while it ran (`PID` from `BENCH_SERVER_PID`).

use bollard::container::{ListContainersOptions, LogOutput, LogsOptions};
use std::collections::HashMap;
use futures_util::StreamExt;
use std::time::{Duration, Instant, SystemTime};

fn now_ns() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// What one reader saw.
#[derive(Default)]
struct Seen {
    count: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    latencies_us: Vec<i64>,
    dropped: u64,
}

impl Seen {
    /// Takes one line that arrived `at`; true when it was the burst's last.
    fn take(&mut self, stamp: &str, text: &str, total: u64, sample: u64, at: Instant) -> bool {
        if let Some(rest) = text.strip_prefix("Error L10 (output buffer overflow): ") {
            self.dropped += rest.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            return false;
        }
        let Some(n) = text.strip_prefix("line ").and_then(|n| n.trim().parse::<u64>().ok()) else { return false };
        self.first.get_or_insert(at);
        self.last = Some(at);
        self.count += 1;
        if n % sample == 0 {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(stamp) {
                self.latencies_us.push((now_ns() - t.timestamp_nanos_opt().unwrap_or(0)) / 1000);
            }
        }
        n == total
    }
}

fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

async fn paas_reader(url: String, token: String, total: u64, sample: u64, ready: tokio::sync::mpsc::Sender<()>) -> Seen {
    let client = reqwest::Client::new();
    let resp = client.get(url).bearer_auth(token).send().await.expect("the tail request");
    assert!(resp.status().is_success(), "{}", resp.status());
    let _ = ready.send(()).await;
    let mut seen = Seen::default();
    let mut stream = resp.bytes_stream();
    // A line cut between two chunks, kept until its end comes.
    let mut partial: Vec<u8> = Vec::new();
    // TIME SRC[DYNO]: TEXT
    let line_of = |seen: &mut Seen, line: &[u8], at: Instant| {
        let line = std::str::from_utf8(line).unwrap_or_default();
        let (stamp, rest) = line.split_once(' ').unwrap_or_default();
        let text = rest.split_once("]: ").map_or("", |(_, t)| t);
        seen.take(stamp, text, total, sample, at)
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("the stream");
        // A chunk's lines all arrived now.
        let at = Instant::now();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &chunk) {
            let done = if partial.is_empty() {
                line_of(&mut seen, &chunk[start..end], at)
            } else {
                partial.extend_from_slice(&chunk[start..end]);
                let line = std::mem::take(&mut partial);
                line_of(&mut seen, &line, at)
            };
            if done {
                return seen;
            }
            start = end + 1;
        }
        partial.extend_from_slice(&chunk[start..]);
    }
    seen
}

async fn docker_reader(app: &str, total: u64, sample: u64) -> Seen {
    let docker = bollard::Docker::connect_with_defaults().unwrap().negotiate_version().await.unwrap();
    // The app's worker dyno, started after this reader: the same container
    // paas follows, so both read the same burst.
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let mut filters = HashMap::new();
        filters.insert("label".to_owned(), vec![format!("paas.app={app}"), "paas.process=worker".to_owned()]);
        let list = docker.list_containers(Some(ListContainersOptions { filters, ..Default::default() })).await.unwrap();
        if let Some(id) = list.first().and_then(|c| c.id.clone()) {
            break id;
        }
        assert!(Instant::now() < deadline, "no worker container");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let options = LogsOptions::<String> { follow: true, stdout: true, stderr: true, timestamps: true, tail: "all".into(), ..Default::default() };
    let mut logs = docker.logs(&id, Some(options));
    let mut seen = Seen::default();
    while let Some(frame) = logs.next().await {
        let Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message }) = frame else { continue };
        let line = String::from_utf8_lossy(&message);
        let (stamp, text) = line.split_once(' ').unwrap_or_default();
        if seen.take(stamp, text.trim_end(), total, sample, Instant::now()) {
            break;
        }
    }
    seen
}

/// `docker logs -f --timestamps` piped in: the Docker CLI as the reader.
async fn stdin_reader(total: u64, sample: u64) -> Seen {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::with_capacity(1 << 16, tokio::io::stdin()).lines();
    let mut seen = Seen::default();
    while let Ok(Some(line)) = lines.next_line().await {
        let (stamp, text) = line.split_once(' ').unwrap_or_default();
        if seen.take(stamp, text, total, sample, Instant::now()) {
            break;
        }
    }
    seen
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: u64 = std::env::var("LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let pid = std::env::var("BENCH_SERVER_PID").unwrap_or_default();
    let cpu_before = cpu_ticks(&pid);
    let started = Instant::now();
    let results: Vec<Seen> = match args.first().map(String::as_str) {
        Some("docker") => vec![docker_reader(&args[1], total, 10).await],
        Some("stdin") => vec![stdin_reader(total, 10).await],
        Some("paas") => {
            let (url, token, app, clients) = (&args[1], &args[2], &args[3], args[4].parse::<usize>().unwrap());
            let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(clients);
            let sample = if clients > 10 { 100 } else { 10 };
            let tasks: Vec<_> = (0..clients)
                .map(|_| {
                    let url = format!("{url}/apps/{app}/logs?tail=true&lines=0");
                    tokio::spawn(paas_reader(url, token.clone(), total, sample, ready_tx.clone()))
                })
                .collect();
            for _ in 0..clients {
                ready_rx.recv().await;
            }
            println!("ready");
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
        _ => panic!("usage: bench_logs paas URL TOKEN APP CLIENTS | bench_logs docker APP | bench_logs stdin"),
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, cpu_ticks(&pid)) {
        (Some(a), Some(b)) => (b - a) as f64 / 100.0,
        _ => f64::NAN,
    };
    let rate = results
        .iter()
        .map(|s| match (s.first, s.last) {
            (Some(a), Some(b)) if b > a => s.count as f64 / (b - a).as_secs_f64(),
            _ => 0.0,
        })
        .fold(f64::INFINITY, f64::min);
    let mut lat: Vec<i64> = results.iter().flat_map(|s| s.latencies_us.iter().copied()).collect();
    lat.sort_unstable();
    let lost: u64 = results.iter().map(|s| total.saturating_sub(s.count)).sum();
    let dropped: u64 = results.iter().map(|s| s.dropped).sum();
    println!(
        "{{\"clients\":{},\"lines_per_s\":{rate:.0},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"lost\":{lost},\"told_dropped\":{dropped},\"server_cpu_s\":{cpu:.2},\"wall_s\":{wall:.2}}}",
        results.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}
