//! Drains: an app's lines delivered to a receiver of the user's, as
//! Heroku's Logplex delivers them.
//!
//! - `syslog://host:port` and `syslog+tls://host:port`: RFC 5424 messages
//!   over TCP (or TLS), framed by RFC 6587 octet counting (`LEN SP MSG`).
//! - `https://...`: POSTs of up to [`BATCH`] messages in the same framing,
//!   `Content-Type: application/logplex-1`, with `Logplex-Msg-Count`,
//!   `Logplex-Frame-Id` (the same on a retry, so a receiver can drop a batch
//!   it has) and `Logplex-Drain-Token`.
//!
//! Each drain takes lines from the app's broadcast into a bounded queue of
//! its own and delivers from there, retrying with backoff while its
//! receiver is down. When the queue is full the oldest lines go; the count
//! goes out with the next delivery as Logplex's L10 line. A drain never
//! slows the ingest, the tails or another drain.

use super::{dropped_notice, Batch, LogLine, LogRouter};
use anyhow::{anyhow, Context, Result};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, Notify};

/// Messages in one delivery.
pub const BATCH: usize = 500;
/// Longest wait between attempts while a receiver is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest a connect or a delivery may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A drain as stored: its id, app, URL and the token sent with each batch.
#[derive(Debug, Clone)]
pub struct DrainSpec {
    pub id: String,
    pub app: String,
    pub url: String,
    pub token: String,
}

/// Where a drain delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Syslog { host: String, port: u16, tls: bool },
    Https { url: String },
}

/// Checks a drain URL, with an error that says what is accepted.
pub fn parse_url(url: &str) -> Result<Target, String> {
    const ACCEPTED: &str = "a drain URL is syslog://HOST:PORT, syslog+tls://HOST:PORT or https://HOST/PATH";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{} is not a URL: {ACCEPTED}", paas_wire::redact_url(url)));
    };
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the drain URL is too long or has spaces: {ACCEPTED}"));
    }
    match scheme {
        "syslog" | "syslog+tls" => {
            let authority = rest.trim_end_matches('/');
            if authority.contains('/') || authority.contains('@') {
                return Err(format!("{}: {ACCEPTED}, with no path or credentials", paas_wire::redact_url(url)));
            }
            let (host, port) = split_host_port(authority)
                .ok_or_else(|| format!("{} needs a port: {ACCEPTED}", paas_wire::redact_url(url)))?;
            Ok(Target::Syslog { host, port, tls: scheme == "syslog+tls" })
        }
        "https" => {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("{}: {e}: {ACCEPTED}", paas_wire::redact_url(url)))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!("{} has no host: {ACCEPTED}", paas_wire::redact_url(url)));
            }
            Ok(Target::Https { url: url.to_owned() })
        }
        other => Err(format!("drains cannot use {other}://: {ACCEPTED}")),
    }
}

fn split_host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:_".contains(c));
    valid.then(|| (host.to_owned(), port))
}

/// An RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP-NAME PROCID - - MSG`,
/// with the app as HOST, `app` or `paas` as APP-NAME and the dyno as
/// PROCID, as Logplex writes them. Facility local7; stderr is `err`,
/// anything else `info`.
pub fn rfc5424(app: &str, line: &LogLine) -> String {
    let pri = 23 * 8 + if line.stderr { 3 } else { 6 };
    let text: String = line.text.chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
    format!("<{pri}>1 {} {app} {} {} - - {text}", line.time(), line.source.as_str(), line.dyno)
}

/// RFC 6587 octet counting: the length in bytes, a space, the message. The
/// message ends in a newline, counted, as Logplex's do: octet-counting
/// receivers and line readers both read it.
pub fn octet_frame(message: &str) -> String {
    format!("{} {message}\n", message.len() + 1)
}

/// The running drains and what they share (TLS roots, an HTTP client).
pub(super) struct Drains {
    /// Drain id -> (its app, its task).
    running: Mutex<HashMap<String, (String, tokio::task::JoinHandle<()>)>>,
    tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
    buffer: usize,
    outbound: crate::outbound::OutboundPolicy,
}

impl Drains {
    pub fn new(config: &super::LogConfig) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        // No redirects (a receiver cannot send the lines elsewhere), and
        // names resolve only to addresses the outbound policy permits.
        let mut http = reqwest::Client::builder()
            .timeout(IO_TIMEOUT)
            .connect_timeout(IO_TIMEOUT)
            .user_agent("paas-logplex")
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(config.outbound.clone()));
        for file in &config.drain_roots {
            add_roots(&mut roots, file)?;
            let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("bad PEM in {}", file.display()))? {
                http = http.add_root_certificate(cert);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            running: Mutex::default(),
            tls: Arc::new(tls),
            http: http.build()?,
            buffer: config.drain_buffer.max(1),
            outbound: config.outbound.clone(),
        })
    }

    /// Starts a drain reading `rx`, subscribed when the app's newest line
    /// was number `seen`.
    pub fn start(&self, router: LogRouter, spec: DrainSpec, rx: broadcast::Receiver<Arc<Batch>>, seen: u64) {
        let mut running = self.running.lock().expect("drains poisoned");
        if running.get(&spec.id).is_some_and(|(_, t)| !t.is_finished()) {
            return;
        }
        let target = match parse_url(&spec.url) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(app = %spec.app, drain = %spec.id, error = %e, "drain not started");
                return;
            }
        };
        let sender = Sender { tls: self.tls.clone(), http: self.http.clone(), conn: None, target, outbound: self.outbound.clone() };
        let task = tokio::spawn(run(router, spec.clone(), sender, rx, seen, self.buffer));
        running.insert(spec.id, (spec.app, task));
    }

    pub fn stop(&self, id: &str) {
        if let Some((_, task)) = self.running.lock().expect("drains poisoned").remove(id) {
            task.abort();
        }
    }

    pub fn stop_app(&self, app: &str) {
        self.running.lock().expect("drains poisoned").retain(|_, (owner, task)| {
            if owner == app {
                task.abort();
            }
            owner != app
        });
    }
}

fn add_roots(roots: &mut rustls::RootCertStore, file: &PathBuf) -> Result<()> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(file)
        .with_context(|| format!("cannot read CA certificates from {}", file.display()))?;
    let certs: Vec<_> = certs.filter_map(Result::ok).collect();
    roots.add_parsable_certificates(certs);
    Ok(())
}

/// A drain's queue: lines not yet delivered, and those it had to drop.
#[derive(Default)]
struct Queue {
    lines: VecDeque<Arc<LogLine>>,
    dropped: u64,
    dropped_since: i64,
}

impl Queue {
    fn drop_some(&mut self, n: u64, at: i64) {
        if self.dropped == 0 {
            self.dropped_since = at;
        }
        self.dropped += n;
    }
}

async fn run(router: LogRouter, spec: DrainSpec, mut sender: Sender, mut rx: broadcast::Receiver<Arc<Batch>>, mut seen: u64, cap: usize) {
    let queue = Arc::new(Mutex::new(Queue::default()));
    let ready = Arc::new(Notify::new());
    // Taking lines in never waits for a delivery.
    let intake = {
        let (queue, ready) = (queue.clone(), ready.clone());
        tokio::spawn(async move {
            loop {
                let got = rx.recv().await;
                let mut q = queue.lock().expect("drain queue poisoned");
                match got {
                    Ok(batch) => {
                        // A gap in the numbers: batches this drain fell behind on.
                        let (lost, fresh) = batch.after(seen);
                        if lost > 0 {
                            q.drop_some(lost, super::now_ns());
                        }
                        for line in fresh {
                            if q.lines.len() >= cap {
                                let at = q.lines.pop_front().map_or(line.at_ns, |l| l.at_ns);
                                q.drop_some(1, at);
                            }
                            q.lines.push_back(line.clone());
                        }
                        seen = seen.max(batch.last_seq());
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                drop(q);
                ready.notify_one();
            }
        })
    };
    let _intake = tokio_util::task::AbortOnDropHandle::new(intake);
    let shown = paas_wire::redact_url(&spec.url);
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    let mut frame_id = uuid::Uuid::new_v4().simple().to_string();
    loop {
        let (batch, dropped, last_seq) = {
            let q = queue.lock().expect("drain queue poisoned");
            let batch: Vec<Arc<LogLine>> = q.lines.iter().take(BATCH).cloned().collect();
            let dropped = (q.dropped > 0).then(|| dropped_notice(q.dropped, q.dropped_since));
            let last_seq = batch.last().map(|l| l.seq);
            (batch, dropped.map(|n| (n, q.dropped)), last_seq)
        };
        if batch.is_empty() && dropped.is_none() {
            ready.notified().await;
            continue;
        }
        let mut messages: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(batch.len() + 1);
        if let Some((notice, _)) = &dropped {
            messages.push(rfc5424(&spec.app, notice).into());
        }
        messages.extend(batch.iter().map(|l| l.syslog(&spec.app)));
        match sender.deliver(&messages, &spec.token, &frame_id).await {
            Ok(()) => {
                let mut q = queue.lock().expect("drain queue poisoned");
                if let Some(last) = last_seq {
                    while q.lines.front().is_some_and(|l| l.seq <= last) {
                        q.lines.pop_front();
                    }
                }
                if let Some((_, n)) = dropped {
                    q.dropped -= n.min(q.dropped);
                }
                drop(q);
                frame_id = uuid::Uuid::new_v4().simple().to_string();
                backoff = Duration::from_secs(1);
                if failing {
                    failing = false;
                    router.event(&spec.app, "logs", format!("drain {shown} delivers again"));
                }
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    // The cause in full for the operator; for the app's log
                    // (and its drains) only its kind, so a drain cannot be
                    // used to learn about the platform's own network.
                    tracing::warn!(app = %spec.app, drain = %shown, error = %format!("{:#}", e.detail), "drain cannot deliver");
                    router.event(
                        &spec.app,
                        "logs",
                        format!("drain {shown} cannot deliver ({}); retrying, and keeping up to {cap} lines meanwhile", e.kind),
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Delivers batches to one target, keeping a syslog connection open.
struct Sender {
    tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
    conn: Option<Box<dyn AsyncWrite + Send + Sync + Unpin>>,
    target: Target,
    outbound: crate::outbound::OutboundPolicy,
}

/// A failed delivery: what kind of failure (all the app's log is told),
/// named where it happens, and its cause (for the server's log).
struct Failure {
    kind: String,
    detail: anyhow::Error,
}

impl Failure {
    fn new(kind: &str, detail: impl Into<anyhow::Error>) -> Self {
        Self { kind: kind.to_owned(), detail: detail.into() }
    }
}

impl From<crate::outbound::Refusal> for Failure {
    fn from(refusal: crate::outbound::Refusal) -> Self {
        Self { kind: format!("refused: {refusal}"), detail: refusal.into() }
    }
}

/// The kind of an HTTPS delivery's failure: the outbound policy's refusal
/// (from the resolver, somewhere in the error's causes), a timeout, TLS, or
/// a connection that could not be made.
fn http_failure(e: reqwest::Error) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(refusal) = c.downcast_ref::<crate::outbound::Refusal>() {
            return Failure { kind: format!("refused: {refusal}"), detail: anyhow!("{}", e.without_url()) };
        }
        cause = c.source();
    }
    let text = format!("{e:?}");
    let kind = if e.is_timeout() {
        "timed out"
    } else if text.contains("certificate") || text.contains("Tls") || text.contains("tls") {
        "TLS failed"
    } else {
        "cannot connect"
    };
    Failure::new(kind, anyhow!("{}", e.without_url()))
}

impl Sender {
    async fn deliver(&mut self, messages: &[std::borrow::Cow<'_, str>], token: &str, frame_id: &str) -> Result<(), Failure> {
        let mut body = String::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
        for m in messages {
            body.push_str(&octet_frame(m));
        }
        match self.target.clone() {
            Target::Syslog { host, port, tls } => {
                if self.conn.is_none() {
                    self.conn = Some(self.connect(&host, port, tls).await?);
                }
                let conn = self.conn.as_mut().expect("connected above");
                let written = tokio::time::timeout(IO_TIMEOUT, async {
                    conn.write_all(body.as_bytes()).await?;
                    conn.flush().await
                })
                .await;
                match written {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        self.conn = None;
                        Err(Failure::new("cannot connect", anyhow!(e).context(format!("cannot write to {host}:{port}"))))
                    }
                    Err(_) => {
                        self.conn = None;
                        Err(Failure::new("timed out", anyhow!("{host}:{port} did not take the lines within {}s", IO_TIMEOUT.as_secs())))
                    }
                }
            }
            Target::Https { url } => {
                // An address in the URL is not resolved, so it is checked here.
                let literal = reqwest::Url::parse(&url).ok().and_then(|u| {
                    u.host_str()?.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok()
                });
                if literal.is_some_and(|ip| !self.outbound.permits(ip)) {
                    return Err(crate::outbound::Refusal::Private.into());
                }
                let response = self
                    .http
                    .post(&url)
                    .header("Content-Type", "application/logplex-1")
                    .header("Logplex-Msg-Count", messages.len().to_string())
                    .header("Logplex-Frame-Id", frame_id)
                    .header("Logplex-Drain-Token", token)
                    .body(body)
                    .send()
                    .await
                    .map_err(http_failure)?;
                if !response.status().is_success() {
                    let kind = format!("the receiver answered {}", response.status());
                    return Err(Failure { detail: anyhow!("{kind}"), kind });
                }
                Ok(())
            }
        }
    }

    async fn connect(&self, host: &str, port: u16, tls: bool) -> Result<Box<dyn AsyncWrite + Send + Sync + Unpin>, Failure> {
        let addr = self.outbound.resolve(host, port).await?;
        let tcp = tokio::time::timeout(IO_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| Failure::new("timed out", anyhow!("connecting to {host}:{port} timed out")))?
            .map_err(|e| Failure::new("cannot connect", anyhow!(e).context(format!("cannot connect to {host}:{port}"))))?;
        tcp.set_nodelay(true).map_err(|e| Failure::new("cannot connect", e))?;
        if !tls {
            return Ok(Box::new(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| Failure::new("TLS failed", anyhow!("{host} is not a valid TLS server name")))?;
        let stream = tokio::time::timeout(IO_TIMEOUT, tokio_rustls::TlsConnector::from(self.tls.clone()).connect(name, tcp))
            .await
            .map_err(|_| Failure::new("timed out", anyhow!("the TLS handshake with {host}:{port} timed out")))?
            .map_err(|e| Failure::new("TLS failed", anyhow!(e).context(format!("TLS with {host}:{port} failed"))))?;
        Ok(Box::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Source;

    #[test]
    fn drain_urls_are_checked() {
        assert_eq!(
            parse_url("syslog://logs.example.com:514"),
            Ok(Target::Syslog { host: "logs.example.com".into(), port: 514, tls: false })
        );
        assert_eq!(parse_url("syslog+tls://127.0.0.1:6514/"), Ok(Target::Syslog { host: "127.0.0.1".into(), port: 6514, tls: true }));
        assert!(matches!(parse_url("https://u:p@logs.example.com/x"), Ok(Target::Https { .. })));
        for bad in ["syslog://host", "ftp://x/y", "file:///etc/passwd", "logs.example.com:514", "https://", "syslog://a b:1"] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.contains("syslog://HOST:PORT"), "{bad}: {e}");
        }
        let e = parse_url("gopher://user:secret@host/").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[tokio::test]
    async fn a_refusal_by_the_resolver_is_told_as_one() {
        let strict = crate::outbound::OutboundPolicy::default();
        let http = reqwest::Client::builder().dns_resolver(Arc::new(strict)).build().unwrap();
        let e = http.get("http://localhost:9/").send().await.unwrap_err();
        let failure = http_failure(e);
        assert!(failure.kind.starts_with("refused: it points to a loopback"), "{}", failure.kind);
    }

    #[test]
    fn messages_are_rfc5424_with_octet_counting() {
        let line = LogLine { seq: 3, at_ns: 1_790_000_000_123_456_000, source: Source::App, dyno: "web.1".into(), text: "héllo".into(), stderr: false, cache: Default::default() };
        let m = rfc5424("shop", &line);
        assert_eq!(m, format!("<190>1 {} shop app web.1 - - héllo", line.time()));
        let f = octet_frame(&m);
        let (len, rest) = f.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len(), "length counts bytes, not chars");
        assert!(rest.ends_with('\n'));
        let err = LogLine { stderr: true, ..line };
        assert!(rfc5424("shop", &err).starts_with("<187>1 "));
    }
}
