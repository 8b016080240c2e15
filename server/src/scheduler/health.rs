//! Whether dynos are up: the startup check a new dyno must pass (an
//! app.json check, or answering HTTP on `$PORT`, or staying up for a few
//! seconds), liveness checks of running dynos, and the HTTP probe both use.

use super::{Scheduler, OUTPUT_TAIL_LINES};
use crate::appjson::{self, HealthCheck};
use crate::runtime::{Dyno, Exit, DYNO_PORT};
use crate::store::{AppRow, ReleaseRow};
use anyhow::{Context, Result};
use std::collections::HashSet;
use crate::runtime::Endpoint;
use crate::twelve::{Factor, Finding};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

impl Scheduler {
    /// Whether a new dyno comes up. With an app.json startup check for its
    /// type: that check passes (its `initialDelay`, `attempts`, `wait`,
    /// `timeout`, `port`, `path`, `content`). Without one: a web dyno
    /// answers HTTP on `$PORT` within the boot timeout (2xx/3xx on the
    /// release's health path when it has one), another keeps running for
    /// [`SETTLE`]. Either way it fails at once when the dyno exits, with its
    /// exit and last output.
    /// Answers how long it took to come up.
    pub(super) async fn comes_up(&self, d: &Dyno, path: Option<&str>, check: Option<&HealthCheck>) -> Result<Duration, DynoFailure> {
        let web = d.process_type == "web";
        let started = Instant::now();
        let boot = self.inner.boot_timeout;
        let target = check.and_then(|c| check_target(d, c)).or(if web { d.addr.map(Endpoint::socket_addr) } else { None });
        let (path, content) = match check {
            Some(c) => (c.path.as_ref().map(|p| p.0.as_str()), c.content.as_deref()),
            None => (path, None),
        };
        let initial = Duration::from_secs(check.and_then(|c| c.initial_delay).unwrap_or(0).into());
        let attempts = check.and_then(|c| c.attempts);
        let wait = check.and_then(|c| c.wait).map(|w| Duration::from_secs(w.into()));
        let timeout = Duration::from_secs(check.and_then(|c| c.timeout).unwrap_or(5).into());
        // Without an HTTP target the dyno only has to keep running.
        let deadline = started + initial + if target.is_some() { boot } else { SETTLE.min(boot) };
        let mut tries = 0u32;
        // Probing a loopback port is cheap, asking the engine whether the
        // dyno still runs less so: the probe runs every 20 ms for the first
        // second (where most apps come up: a coarser step there is time a
        // deploy waits for nothing), then backs off to 100 ms; the engine is
        // asked at most every 200 ms.
        let mut delay = Duration::from_millis(20);
        let mut exit_checked: Option<Instant> = None;
        loop {
            let due = started.elapsed() >= initial;
            if let (true, Some(addr)) = (due, target) {
                tries += 1;
                if http_check(addr, path, content, timeout).await.unwrap_or(false) {
                    return Ok(started.elapsed());
                }
            }
            let check_exit = exit_checked.is_none_or(|at| at.elapsed() >= Duration::from_millis(200));
            if check_exit {
                exit_checked = Some(Instant::now());
            }
            if check_exit && !matches!(self.inner.runtime.exit_of(&d.id).await, Ok((true, _))) {
                let exit = self.exit_of(d).await;
                let output = self.inner.runtime.output_tail(&d.id, OUTPUT_TAIL_LINES).await.unwrap_or_default();
                if self.record_crash(d, exit.clone()) {
                    self.crash_events(d, &exit);
                }
                // Exiting 0 at once: the process most likely went to the
                // background (daemonized), and the container ended with it.
                let finding = (exit.exit_code == Some(0)).then(|| daemonized(d, started.elapsed()));
                return Err(DynoFailure { name: d.name(), reason: exit.to_string(), output, finding });
            }
            let out_of_tries = attempts.is_some_and(|a| tries >= a);
            if Instant::now() >= deadline || out_of_tries {
                if target.is_none() {
                    return Ok(started.elapsed());
                }
                let port = check.and_then(|c| c.port).map_or_else(|| "$PORT".to_owned(), |p| format!("port {p}"));
                let output = self.inner.runtime.output_tail(&d.id, OUTPUT_TAIL_LINES).await.unwrap_or_default();
                let what = match (check, path) {
                    (Some(_), _) => format!(
                        "did not pass its startup check (GET {} on {port}{}) after {tries} attempts",
                        path.unwrap_or("/"),
                        content.map_or_else(String::new, |c| format!(", answer containing {c:?}"))
                    ),
                    (None, Some(p)) => format!("did not answer {p} with 2xx/3xx on $PORT in time"),
                    (None, None) => "did not answer on $PORT in time".to_owned(),
                };
                // Why, if its socket table says: another port, or loopback only.
                let bound = match (web && self.inner.observer.is_some(), check.and_then(|c| c.port)) {
                    (true, None) => match self.inner.runtime.listeners(&d.id).await {
                        Ok(Some(listening)) => crate::twelve::sockets::port_binding(&d.name(), DYNO_PORT, &listening),
                        _ => None,
                    },
                    _ => None,
                };
                let secs = started.elapsed().as_secs();
                let (reason, finding) = match bound {
                    Some(why) => (
                        why.strip_prefix(&format!("{} ", d.name())).unwrap_or(&why).to_owned(),
                        Some(Finding::bad(Factor::PortBinding, "port", &d.process_type, why, "bind the web process to the port in $PORT, on 0.0.0.0")),
                    ),
                    None => (
                        format!("{what} ({secs} s): check that the process listens on that port"),
                        Some(Finding::bad(
                            Factor::Disposability,
                            "boot",
                            &d.process_type,
                            format!("{} did not come up within the boot timeout ({secs} s; Heroku's R10)", d.name()),
                            "start faster: do slow work (migrations, caches) in the release phase or in the background",
                        )),
                    ),
                };
                return Err(DynoFailure {
                    name: d.name(),
                    reason,
                    output,
                    finding,
                });
            }
            let pause = wait.unwrap_or(delay);
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            if started.elapsed() >= Duration::from_secs(1) {
                delay = (delay * 2).min(Duration::from_millis(100));
            }
        }
    }

    /// Liveness: every running dyno of the release whose type has a
    /// liveness check is probed once per pass (after its `initialDelay`); one
    /// that fails `attempts` (default 3) in a row leaves the rotation, counts
    /// as a crash and is stopped, so this pass starts it again (or after the
    /// backoff). Returns the dynos that stay.
    pub(super) async fn liveness(&self, app: &AppRow, release: &ReleaseRow, checks: &appjson::Checks, actual: Vec<Dyno>) -> Vec<Dyno> {
        let now = crate::unix_secs();
        let due: Vec<(&Dyno, &HealthCheck, SocketAddr)> = actual
            .iter()
            .filter(|d| d.release_id == release.id)
            .filter_map(|d| {
                let check = checks.get(&d.process_type)?.iter().find(|c| c.kind == appjson::CheckKind::Liveness)?;
                let addr = check_target(d, check).or(d.addr.map(Endpoint::socket_addr))?;
                (now - d.created >= i64::from(check.initial_delay.unwrap_or(0))).then_some((d, check, addr))
            })
            .collect();
        if due.is_empty() {
            return actual;
        }
        let results = futures_util::future::join_all(due.iter().map(|(_, c, addr)| {
            let timeout = Duration::from_secs(c.timeout.unwrap_or(5).into());
            http_check(*addr, c.path.as_ref().map(|p| p.0.as_str()), c.content.as_deref(), timeout)
        }))
        .await;
        let mut failed = HashSet::new();
        {
            let mut failures = self.inner.liveness_failures.lock().expect("liveness poisoned");
            for ((d, c, _), ok) in due.iter().zip(results) {
                if ok.unwrap_or(false) {
                    failures.remove(&d.id);
                    continue;
                }
                let n = failures.entry(d.id.clone()).or_default();
                *n += 1;
                if *n >= c.attempts.unwrap_or(3) {
                    failures.remove(&d.id);
                    failed.insert(d.id.clone());
                }
            }
        }
        let mut stay = Vec::new();
        for d in actual {
            if !failed.contains(&d.id) {
                stay.push(d);
                continue;
            }
            warn!(app = %app.name, dyno = %d.name(), "dyno failed its liveness check: restarting it");
            self.inner.logs.event(&app.name, &d.name(), "Error: failed its liveness check; restarting it");
            if let Some(addr) = d.addr {
                self.inner.routes.remove(&app.name, addr);
            }
            let _ = self.record_crash(&d, Exit { error: Some("failed its liveness check".into()), ..Default::default() });
            self.stop_later(d);
        }
        stay
    }
}

/// Why a new dyno did not come up: what the user is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynoFailure {
    /// `web.1`
    pub name: String,
    /// "exited with status 1", "did not answer on $PORT in time (60 s)", ...
    pub reason: String,
    /// Its last lines of output.
    pub output: Vec<String>,
    /// What it says against the twelve factors, when it says something.
    pub finding: Option<Finding>,
}

/// A dyno whose main process ended with status 0 soon after it started.
pub(super) fn daemonized(d: &Dyno, after: Duration) -> Finding {
    Finding::bad(
        Factor::Processes,
        "daemonized",
        &d.process_type,
        format!("{}'s main process exited with status 0 after {} s: it most likely went to the background (daemonized), so the dyno ended", d.name(), after.as_secs()),
        "run the process in the foreground (e.g. `nginx -g 'daemon off;'`, no `&` or `--daemon`); the platform runs it and restarts it",
    )
}

impl std::fmt::Display for DynoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.reason)?;
        if self.output.is_empty() {
            write!(f, "; it printed nothing")
        } else {
            write!(f, "; its last output:")?;
            for line in &self.output {
                write!(f, "\n    {line}")?;
            }
            Ok(())
        }
    }
}

/// The type's startup check, if app.json gives one.
pub(super) fn startup_check<'a>(checks: &'a appjson::Checks, process_type: &str) -> Option<&'a HealthCheck> {
    checks.get(process_type)?.iter().find(|c| c.is_startup())
}

/// Where a check connects: the dyno's network address and the check's port;
/// a web dyno's check without a port uses its published `$PORT`.
fn check_target(d: &Dyno, check: &HealthCheck) -> Option<SocketAddr> {
    match check.port {
        Some(port) if !(d.process_type == "web" && port == DYNO_PORT) => d.ip.map(|ip| SocketAddr::new(ip, port)),
        _ => d.addr.map(Endpoint::socket_addr),
    }
}

/// One HTTP check: a GET of `path` (or `/`) that must answer, and with a
/// path 2xx/3xx, and with `content` contain it in the first 64 KiB. A bare
/// TCP connect is not enough: Docker's port proxy accepts connections
/// before the app listens.
async fn http_check(addr: SocketAddr, path: Option<&str>, content: Option<&str>, timeout: Duration) -> Result<bool> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: paas-health\r\nUser-Agent: paas-health\r\n\r\n",
            path.unwrap_or("/")
        );
        s.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 || answer.len() > 64 * 1024 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            // Without content to find, the status line is enough.
            if content.is_none() && answer.len() >= 12 {
                break;
            }
        }
        // "HTTP/1.1 200": the status code's first digit is byte 9.
        let answered = answer.starts_with(b"HTTP/") && answer.len() >= 12;
        let status_ok = path.is_none() || (answered && matches!(answer[9], b'2' | b'3'));
        let content_ok = content.is_none_or(|c| String::from_utf8_lossy(&answer).contains(c));
        Ok::<bool, std::io::Error>(answered && status_ok && content_ok)
    };
    tokio::time::timeout(timeout, attempt).await.context("health check timed out")?.map_err(Into::into)
}

/// How long a new non-web dyno must keep running to count as up.
const SETTLE: Duration = Duration::from_secs(3);
