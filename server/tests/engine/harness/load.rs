//! Load through the router while something changes (a deploy, a restart):
//! clients on keep-alive connections, every answer must be a 200.

use super::Platform;
use std::time::{Duration, Instant};

/// Clients sending GETs through the router as fast as they can, each on a
/// keep-alive connection, until stopped: every answer must be a 200.
pub struct Load {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<std::thread::JoinHandle<(u64, Vec<String>, Duration)>>,
}

/// What a [`Load`] saw: requests answered 200, the failures (status and
/// body, or the error), and the slowest request.
pub struct LoadResult {
    pub ok: u64,
    pub failed: Vec<String>,
    pub slowest: Duration,
}

impl Load {
    pub fn start(p: &Platform, app: &str, clients: usize) -> Self {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let (done, port, host) = (done.clone(), p.router_port, format!("{app}.localhost"));
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                    let (mut ok, mut failed, mut slowest) = (0u64, Vec::new(), Duration::ZERO);
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let started = Instant::now();
                        match http.get(format!("http://127.0.0.1:{port}/")).header("Host", &host).send() {
                            Ok(r) if r.status() == 200 => ok += 1,
                            Ok(r) => failed.push(format!("{} {}", r.status(), r.text().unwrap_or_default().chars().take(200).collect::<String>())),
                            Err(e) => failed.push(e.to_string()),
                        }
                        slowest = slowest.max(started.elapsed());
                    }
                    (ok, failed, slowest)
                })
            })
            .collect();
        Self { done, clients }
    }

    /// Stops the clients (each after its request in flight) and adds up
    /// what they saw.
    pub fn stop(self) -> LoadResult {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut result = LoadResult { ok: 0, failed: Vec::new(), slowest: Duration::ZERO };
        for c in self.clients {
            let (ok, failed, slowest) = c.join().unwrap();
            result.ok += ok;
            result.failed.extend(failed);
            result.slowest = result.slowest.max(slowest);
        }
        result
    }
}

impl LoadResult {
    /// Panics unless the load ran and nothing failed.
    pub fn assert_no_failures(&self, what: &str) {
        assert!(self.ok > 100, "the load ran: {} requests", self.ok);
        assert!(
            self.failed.is_empty(),
            "{} of {} requests failed {what}: {:?}",
            self.failed.len(),
            self.ok + self.failed.len() as u64,
            &self.failed[..self.failed.len().min(10)]
        );
    }
}
