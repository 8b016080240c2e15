//! The router: serves apps by `Host: <app>.<domain>` on its own port,
//! round-robin over the healthy web dynos of the current release, with
//! `X-Forwarded-For/Proto/Host` and `X-Request-Id`, and a 503 page when no
//! dyno is up. The scheduler alone decides what is in the route table.
//! `Upgrade` requests (WebSocket) pass through both ways once the dyno
//! answers 101. Each request leaves an access record in the app's log (`paas[router]`),
//! in Heroku's words, once its response body is done.

use crate::listen::Conn;
use crate::logs::LogRouter;
use crate::runtime::Endpoint;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::borrow::Cow;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use tracing::debug;
use upstream::{DynoBody, Upstream};

mod upstream;

/// App name -> healthy web dyno addresses, shared with the scheduler.
#[derive(Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<crate::FastMap<String, Arc<Backends>>>>,
    /// Backend address -> dyno name (`web.1`), for access records.
    names: Arc<RwLock<crate::FastMap<Endpoint, Arc<str>>>>,
    /// Backend address -> requests being served by it, so a dyno leaving
    /// the rotation is stopped only once they are done.
    in_flight: Arc<std::sync::Mutex<crate::FastMap<Endpoint, usize>>>,
    /// Apps whose plain HTTP requests are redirected to HTTPS (their
    /// release's `FORCE_HTTPS` config var).
    https_only: Arc<RwLock<std::collections::HashSet<String>>>,
    /// Backend address -> when its dyno was last lost (its node is
    /// down): requests waiting on it that can be sent again go elsewhere.
    lost: Arc<std::sync::Mutex<crate::FastMap<Endpoint, std::time::Instant>>>,
    /// Apps in maintenance mode: their web requests get a 503 page.
    maintenance: Arc<RwLock<std::collections::HashSet<String>>>,
    /// Apps' own maintenance pages.
    maintenance_pages: Arc<RwLock<crate::FastMap<String, MaintenancePage>>>,
}

/// An app's own maintenance page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenancePage {
    /// Its `MAINTENANCE_PAGE_URL`, shown in a frame (as Heroku does).
    Url(String),
    /// The `maintenance.html` its build holds, served as it is.
    Html(bytes::Bytes),
}

/// One request on its way to a backend; counted until dropped (when the
/// response body is done).
pub struct InFlight {
    table: Arc<std::sync::Mutex<crate::FastMap<Endpoint, usize>>>,
    addr: Endpoint,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut table = self.table.lock().expect("in-flight poisoned");
        if let Some(n) = table.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.addr);
            }
        }
    }
}

struct Backends {
    addrs: Vec<Endpoint>,
    next: AtomicUsize,
}

impl RouteTable {
    pub fn set(&self, app: &str, addrs: Vec<Endpoint>) {
        let mut map = self.inner.write().expect("route table poisoned");
        if addrs.is_empty() {
            map.remove(app);
        } else {
            map.insert(app.to_owned(), Arc::new(Backends { addrs, next: AtomicUsize::new(0) }));
        }
        let mut names = self.names.write().expect("route names poisoned");
        names.retain(|addr, _| map.values().any(|b| b.addrs.contains(addr)));
        // Only requests that wait on a dyno ask whether it was lost.
        let in_flight = self.in_flight.lock().expect("in-flight poisoned");
        self.lost.lock().expect("lost poisoned").retain(|addr, _| in_flight.contains_key(addr));
    }

    /// The app's rotation and switches go by `new` from now on
    /// (`apps:rename`): its dynos serve the new name until the new name's
    /// own dynos replace them; the old name has none.
    pub fn rename(&self, old: &str, new: &str) {
        {
            let mut map = self.inner.write().expect("route table poisoned");
            if let Some(backends) = map.remove(old) {
                map.insert(new.to_owned(), backends);
            }
        }
        for set in [&self.https_only, &self.maintenance] {
            let mut set = set.write().expect("route table poisoned");
            if set.remove(old) {
                set.insert(new.to_owned());
            }
        }
        let mut pages = self.maintenance_pages.write().expect("route table poisoned");
        if let Some(page) = pages.remove(old) {
            pages.insert(new.to_owned(), page);
        }
    }

    /// Says which dyno serves at `addr`, for access records.
    pub fn name(&self, addr: Endpoint, dyno: &str) {
        self.names.write().expect("route names poisoned").insert(addr, Arc::from(dyno));
    }

    fn name_of(&self, addr: Endpoint) -> Arc<str> {
        self.names.read().expect("route names poisoned").get(&addr).cloned().unwrap_or_else(|| Arc::from("web"))
    }

    /// Takes one dyno out of an app's rotation.
    pub fn remove(&self, app: &str, addr: Endpoint) {
        let mut addrs = self.get(app);
        addrs.retain(|a| *a != addr);
        self.set(app, addrs);
    }

    /// Puts `new` in the rotation in place of `old` (a restarted dyno).
    pub fn replace(&self, app: &str, old: Endpoint, new: Endpoint) {
        let mut addrs = self.get(app);
        addrs.retain(|a| *a != old);
        addrs.push(new);
        addrs.sort();
        self.set(app, addrs);
    }

    pub fn get(&self, app: &str) -> Vec<Endpoint> {
        let map = self.inner.read().expect("route table poisoned");
        map.get(app).map(|b| b.addrs.clone()).unwrap_or_default()
    }

    /// Whether plain HTTP requests to `app` are redirected to HTTPS.
    pub fn set_https_only(&self, app: &str, on: bool) {
        let mut set = self.https_only.write().expect("route table poisoned");
        if on {
            set.insert(app.to_owned());
        } else {
            set.remove(app);
        }
    }

    /// Turns the app's maintenance mode on or off.
    pub fn set_maintenance(&self, app: &str, on: bool) {
        let mut set = self.maintenance.write().expect("route table poisoned");
        if on {
            set.insert(app.to_owned());
        } else {
            set.remove(app);
        }
    }

    /// Whether the app is in maintenance mode.
    pub fn in_maintenance(&self, app: &str) -> bool {
        self.maintenance.read().expect("route table poisoned").contains(app)
    }

    /// The app's own maintenance page, if any.
    pub fn set_maintenance_page(&self, app: &str, page: Option<MaintenancePage>) {
        let mut pages = self.maintenance_pages.write().expect("route table poisoned");
        match page {
            Some(u) => pages.insert(app.to_owned(), u),
            None => pages.remove(app),
        };
    }

    /// None when the app serves; else its own maintenance page, if any.
    fn maintenance(&self, app: &str) -> Option<Option<MaintenancePage>> {
        if !self.maintenance.read().expect("route table poisoned").contains(app) {
            return None;
        }
        Some(self.maintenance_pages.read().expect("route table poisoned").get(app).cloned())
    }

    fn https_only(&self, app: &str) -> bool {
        self.https_only.read().expect("route table poisoned").contains(app)
    }

    /// The next backend for an app, round-robin, skipping those in `tried`
    /// while others remain (a retry goes elsewhere even when other requests
    /// moved the turn on), with the request counted as in flight on it
    /// until the guard is dropped.
    pub fn pick_counted(&self, app: &str, tried: &[Endpoint]) -> Option<(Endpoint, InFlight)> {
        let map = self.inner.read().expect("route table poisoned");
        let addr = {
            let b = map.get(app)?;
            // `set` keeps no empty list, so there is always a turn.
            let (i, n) = (b.next.fetch_add(1, Ordering::Relaxed), b.addrs.len());
            let turn = |k: usize| b.addrs[(i + k) % n];
            (0..n).map(turn).find(|a| !tried.contains(a)).unwrap_or_else(|| turn(0))
        };
        // Counted before the table's lock is let go: a dyno taken out of
        // the rotation after this sees the request.
        *self.in_flight.lock().expect("in-flight poisoned").entry(addr).or_default() += 1;
        Some((addr, InFlight { table: self.in_flight.clone(), addr }))
    }

    /// Takes a lost dyno (its node is down, or it ended) out of the
    /// rotation, and marks it lost: requests waiting on it that can be
    /// sent again (no body, idempotent) go to other dynos (see
    /// [`wait_on`]): a connection to a lost machine neither answers nor
    /// closes.
    pub fn lose(&self, app: &str, addr: Endpoint) {
        self.lost.lock().expect("lost poisoned").insert(addr, std::time::Instant::now());
        self.remove(app, addr);
    }

    /// Whether the dyno at `addr` was lost at or after `since`.
    fn lost_since(&self, addr: Endpoint, since: std::time::Instant) -> bool {
        self.lost.lock().expect("lost poisoned").get(&addr).is_some_and(|at| *at >= since)
    }

    /// Waits (up to `limit`) until no request is in flight on `addr`: the
    /// drain before a dyno that left the rotation gets SIGTERM.
    pub async fn drained(&self, addr: Endpoint, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.lock().expect("in-flight poisoned").contains_key(&addr) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

#[derive(Clone)]
pub struct RouterState {
    pub routes: RouteTable,
    pub domain: String,
    /// `PAAS_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is kept.
    trusted: Arc<Vec<IpAddr>>,
    /// The port the router listens on, for `X-Forwarded-Port`.
    port_header: HeaderValue,
    logs: LogRouter,
    /// How long a dyno may take to answer (to its response's headers).
    timeout: std::time::Duration,
    domains: DomainTable,
    /// The router's HTTPS port, when it has one (for redirects).
    pub tls_port: Option<u16>,
    /// ACME HTTP-01 answers, on any host.
    pub challenges: crate::tls::Challenges,
    /// The cap on WebSocket (upgraded) connections and their idle timeout.
    pub upgrades: crate::listen::Upgrades,
    /// Requests counted by app and minute (`paas metrics`).
    pub metrics: crate::metrics::Metrics,
}

impl RouterState {
    pub fn new(
        routes: RouteTable,
        domain: String,
        trusted: Vec<IpAddr>,
        port: u16,
        logs: LogRouter,
        timeout: std::time::Duration,
        domains: DomainTable,
    ) -> Self {
        let upgrades = crate::listen::Upgrades::new(4096, std::time::Duration::from_secs(55));
        let port_header = HeaderValue::from(port);
        Self { routes, domain, trusted: Arc::new(trusted), port_header, logs, timeout, domains, tls_port: None, challenges: Default::default(), upgrades, metrics: crate::metrics::Metrics::new(false) }
    }
}

/// One request's access record, written to the app's log when dropped:
/// after the response body is done (or the client went away). What the
/// request carried is copied into its line at once (one allocation, where
/// shared header values cost one each the first time they are cloned).
struct Access {
    state: Arc<RouterState>,
    app: String,
    /// `at=info` or `at=error code=H13 desc="..."`.
    at: Cow<'static, str>,
    /// ` method=GET path="/" host="..." request_id=... fwd="..."`, with
    /// room for the rest of the line.
    line: String,
    /// The dyno that answered (`web.1`), once there is one.
    dyno: Option<Arc<str>>,
    connect_ms: u128,
    service_ms: u128,
    status: u16,
    bytes: u64,
    /// The request counted on its backend until the response is done.
    in_flight: Option<InFlight>,
}

/// Room in an access record's line for its `at=` and what comes after the
/// request's own fields.
const ACCESS_ROOM: usize = 192;

impl Access {
    /// The record of a request with these `method`, `path`, `Host`,
    /// request id and `X-Forwarded-For` (the values were checked as text,
    /// visible ASCII, or made by the router).
    fn new(state: Arc<RouterState>, app: String, method: &Method, path: &str, host: &str, request_id: &str, fwd: &str) -> Self {
        // Pieces pushed, not `write!`: formatting machinery was 4 % of the
        // router's instructions.
        let mut line = String::with_capacity(ACCESS_ROOM + path.len() + host.len() + request_id.len() + fwd.len());
        for piece in [" method=", method.as_str(), " path=\""] {
            line.push_str(piece);
        }
        quote_into(&mut line, path);
        line.push_str("\" host=\"");
        quote_into(&mut line, host);
        for piece in ["\" request_id=", request_id, " fwd=\""] {
            line.push_str(piece);
        }
        quote_into(&mut line, fwd);
        line.push('"');
        Self { state, app, at: Cow::Borrowed("at=info"), line, dyno: None, connect_ms: 0, service_ms: 0, status: 0, bytes: 0, in_flight: None }
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        self.state.metrics.request(&self.app, self.status, u64::try_from(self.service_ms).unwrap_or(u64::MAX));
        let mut line = std::mem::take(&mut self.line);
        line.insert_str(0, &self.at);
        let mut n = itoa::Buffer::new();
        line.push_str(" dyno=");
        line.push_str(self.dyno.as_deref().unwrap_or(""));
        line.push_str(" connect=");
        line.push_str(n.format(self.connect_ms));
        line.push_str("ms service=");
        line.push_str(n.format(self.service_ms));
        line.push_str("ms status=");
        line.push_str(n.format(self.status));
        line.push_str(" bytes=");
        line.push_str(n.format(self.bytes));
        line.push_str(" protocol=http");
        self.state.logs.event(&self.app, "router", line);
    }
}

/// A header value as text: the router's are visible ASCII (checked, or
/// made by it).
fn text(v: &HeaderValue) -> &str {
    std::str::from_utf8(v.as_bytes()).unwrap_or("?")
}

/// `s` with `\` and `"` escaped, appended to `out`.
fn quote_into(out: &mut String, mut s: &str) {
    // A run at a time: most values have nothing to escape.
    while let Some(at) = s.bytes().position(|b| b == b'\\' || b == b'"') {
        out.push_str(&s[..at]);
        out.push('\\');
        out.push_str(&s[at..=at]);
        s = &s[at + 1..];
    }
    out.push_str(s);
}

/// A response's body on its way to the client: a dyno's, which drives the
/// connection it comes on (see [`Upstream`]) and gives that connection
/// back for the client's next request once it is done; or a page of the
/// router's own. The request's access record is written when it is dropped.
pub struct RouterBody {
    inner: Inner,
    access: Option<Access>,
    /// Told the response is done when dropped (see [`crate::listen::TimesHeads`]).
    clock: Option<crate::listen::HeadClock>,
}

enum Inner {
    Page(Option<Bytes>),
    Dyno(DynoBody),
    /// The dyno's answer to an `Upgrade` request (on hyper's client).
    Upgraded(Incoming),
}

impl RouterBody {
    fn page(bytes: Bytes) -> Self {
        Self { inner: Inner::Page(Some(bytes)), access: None, clock: None }
    }

    /// The body, telling `clock` when it is done.
    fn timing(mut self, clock: crate::listen::HeadClock) -> Self {
        self.clock = Some(clock);
        self
    }
}

impl Drop for RouterBody {
    fn drop(&mut self) {
        if let Some(clock) = &self.clock {
            clock.waiting();
        }
    }
}

impl hyper::body::Body for RouterBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Page(page) => Poll::Ready(page.take().map(|b| Ok(hyper::body::Frame::data(b)))),
            Inner::Dyno(body) => Pin::new(body).poll_frame(cx),
            Inner::Upgraded(body) => Pin::new(body).poll_frame(cx).map(|f| f.map(|r| r.map_err(Into::into))),
        };
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let (Some(data), Some(access)) = (frame.data_ref(), this.access.as_mut()) {
                access.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Page(page) => page.is_none(),
            Inner::Dyno(body) => body.is_end_stream(),
            Inner::Upgraded(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match &self.inner {
            Inner::Page(page) => hyper::body::SizeHint::with_exact(page.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Dyno(body) => body.size_hint(),
            Inner::Upgraded(body) => body.size_hint(),
        }
    }
}

/// The response with its access record, written when its body is dropped.
fn recorded(resp: Response<RouterBody>, access: Access) -> Response<RouterBody> {
    resp.map(|mut body| {
        body.access = Some(access);
        body
    })
}

/// A request's body on its way to a dyno: the client's, or none (a
/// request without one, sent again).
type ToDyno = Either<Incoming, Empty<Bytes>>;

/// What went wrong on the way to a dyno.
enum Failure {
    /// No connection: the request was not sent.
    Refused(std::io::Error),
    /// The connection failed or closed before an answer.
    Closed(String),
}

/// Sends an `Upgrade` request on a connection of its own, which goes on
/// in a task of its own to hand over the upgraded stream.
async fn exchange_upgrade(addr: Endpoint, parts: &axum::http::request::Parts, set: &Forwarded, body: ToDyno) -> Result<Response<Incoming>, Failure> {
    let stream = Upstream::open(addr).await.map_err(Failure::Refused)?;
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.headers_mut() = parts.headers.clone();
    set.insert_into(req.headers_mut());
    let (mut send, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| Failure::Closed(e.to_string()))?;
    tokio::spawn(conn.with_upgrades());
    send.send_request(req).await.map_err(|e| Failure::Closed(e.to_string()))
}

/// Headers that belong to one connection, never forwarded (RFC 9110 7.6.1).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A request id worth keeping: 20 to 200 of `[A-Za-z0-9+=/-]`, as Heroku's
/// router accepts.
fn valid_request_id(id: &str) -> bool {
    (20..=200).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=/-".contains(&b))
}

/// The headers the router sets, named once (a name given as a string is
/// copied into a new allocation on every insert).
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The headers the router sets: a client's own are dropped.
static SET_BY_ROUTER: [&HeaderName; 6] = [&X_FORWARDED_FOR, &X_FORWARDED_PROTO, &X_FORWARDED_HOST, &X_FORWARDED_PORT, &X_REQUEST_ID, &X_REQUEST_START];

/// A client connection's peer, with its address as a header value made
/// once for all the requests on the connection.
#[derive(Debug, Clone)]
pub struct Peer {
    ip: IpAddr,
    header: HeaderValue,
}

impl Peer {
    pub fn new(ip: IpAddr) -> Self {
        let header = HeaderValue::from_str(&ip.to_string()).expect("an address is a valid header value");
        Self { ip, header }
    }
}

/// What the router sets on a request for its dyno (see [`forwarded`]):
/// written after the request's own headers by the router's client, or put
/// in its header map ([`Forwarded::insert_into`]) for hyper's (upgrades).
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// `X-Forwarded-For` (none when a trusted proxy's chain made an
    /// invalid one).
    pub for_: Option<HeaderValue>,
    pub proto: HeaderValue,
    pub host: HeaderValue,
    pub port: HeaderValue,
    pub request_id: HeaderValue,
    pub start: HeaderValue,
}

impl Forwarded {
    /// The headers, named as in [`SET_BY_ROUTER`] (the one list of them,
    /// so what is written is what a client's own are dropped for).
    pub fn fields(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> + '_ {
        let values = [self.for_.as_ref(), Some(&self.proto), Some(&self.host), Some(&self.port), Some(&self.request_id), Some(&self.start)];
        SET_BY_ROUTER.iter().zip(values).filter_map(|(name, value)| Some((*name, value?)))
    }

    pub fn insert_into(&self, headers: &mut axum::http::HeaderMap) {
        for (name, value) in self.fields() {
            headers.insert(name, value.clone());
        }
    }
}

/// Readies a request's headers for the dyno: drops hop-by-hop headers
/// (and those `Connection` names) and the client's own versions of what
/// the router sets, and says what it sets: `X-Forwarded-For` from the
/// peer, keeping a client-sent chain only when the peer is a trusted
/// proxy; `X-Forwarded-Proto` (`http`), `-Host`, `-Port`; `X-Request-Id`
/// (a valid incoming one kept, else new) and `X-Request-Start` (Unix
/// milliseconds). Inserting them here cost the request's header map a
/// growth and six inserts; the router's client writes them instead.
pub fn forwarded(headers: &mut axum::http::HeaderMap, peer: &Peer, trusted: &[IpAddr], host: HeaderValue, port: HeaderValue) -> Forwarded {
    // Which hop-by-hop headers, and which of the router's, the request
    // has, in one look over its headers (most have none, or `Connection`
    // alone): only those are looked up again to go.
    let mut present = 0u16;
    let mut ours = 0u8;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present |= 1 << i;
        } else if let Some(i) = SET_BY_ROUTER.iter().position(|h| *h == name) {
            ours |= 1 << i;
        }
    }
    if present & 1 != 0 {
        // Headers `Connection` names (rare: most name none but
        // `keep-alive`, which goes anyway).
        let named: Vec<String> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty() && !HOP_BY_HOP.iter().any(|h| h.as_str().eq_ignore_ascii_case(n)))
            .map(str::to_ascii_lowercase)
            .collect();
        for name in &named {
            headers.remove(name.as_str());
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    let trusted_peer = trusted.contains(&peer.ip);
    let for_ = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) if trusted_peer => owned_header(format!("{prev}, {}", peer.ip)),
        _ => Some(peer.header.clone()),
    };
    // The other ways of naming the client are a client's word too: kept
    // only from a trusted proxy.
    if !trusted_peer {
        headers.remove(header::FORWARDED);
        headers.remove(&X_REAL_IP);
    }
    let request_id = match headers.get(&X_REQUEST_ID).filter(|v| v.to_str().is_ok_and(valid_request_id)) {
        Some(id) => id.clone(),
        None => {
            let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
            HeaderValue::from_bytes(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id).as_bytes())
                .expect("a uuid is a valid header value")
        }
    };
    // Whatever the client sent of these goes: the router's stand alone
    // (the client's, read above, went into them).
    for (i, name) in SET_BY_ROUTER.iter().enumerate() {
        if ours & (1 << i) != 0 {
            headers.remove(*name);
        }
    }
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let start = HeaderValue::from_str(itoa::Buffer::new().format(u64::try_from(start).unwrap_or(u64::MAX))).expect("digits are a valid header value");
    Forwarded { for_, proto: HeaderValue::from_static("http"), host, port, request_id, start }
}

/// [`forwarded`], inserted into the headers; the request id.
pub fn forward_headers(headers: &mut axum::http::HeaderMap, peer: &Peer, trusted: &[IpAddr], host: HeaderValue, port: HeaderValue) -> HeaderValue {
    let set = forwarded(headers, peer, trusted, host, port);
    set.insert_into(headers);
    set.request_id
}

/// A header value made from a string without copying it.
fn owned_header(s: String) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::from(s)).ok()
}

/// The router's service, one per client connection: every request goes
/// to [`proxy`], with no routing layer in front (it has one route), and
/// keep-alive connections to dynos wait in a pool between requests
/// ([`upstream`]).
pub fn router(state: RouterState) -> impl Fn(Conn) -> RouterConn + Clone + Send + 'static {
    // Shared, not cloned per connection (its tables are several reference
    // counts and a String).
    let state = Arc::new(state);
    move |conn: Conn| RouterConn { state: state.clone(), peer: Peer::new(conn.peer.ip()), conn }
}

/// See [`router`].
pub struct RouterConn {
    state: Arc<RouterState>,
    conn: Conn,
    peer: Peer,
}

/// Each request marks its connection busy, and its [`RouterBody`] marks it
/// waiting again when dropped.
impl crate::listen::TimesHeads for RouterConn {
    const TIMES_HEADS: bool = true;
}

impl hyper::service::Service<Request<Incoming>> for RouterConn {
    type Response = Response<RouterBody>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RouterBody>, std::convert::Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.conn.clock.busy();
        let clock = self.conn.clock.clone();
        if let Some(refused) = self.conn.refuse_large_head(&req) {
            return Box::pin(std::future::ready(Ok(refused.map(|page| RouterBody::page(page).timing(clock)))));
        }
        let (state, https, peer) = (self.state.clone(), self.conn.https, self.peer.clone());
        Box::pin(async move { Ok(proxy(state, https, peer, req).await.map(|body| body.timing(clock))) })
    }
}

/// Custom domains -> apps, shared with the API (which changes them after
/// the store has). Exact hostnames, and wildcards by the domain they cover
/// one level under (`*.example.com` is kept as `example.com`).
#[derive(Clone, Default)]
pub struct DomainTable {
    exact: Arc<RwLock<crate::FastMap<String, String>>>,
    wildcard: Arc<RwLock<crate::FastMap<String, String>>>,
}

impl DomainTable {
    pub fn set(&self, hostname: &paas_wire::Hostname, app: &str) {
        match hostname.wildcard_of() {
            Some(under) => self.wildcard.write().expect("domains poisoned").insert(under.to_owned(), app.to_owned()),
            None => self.exact.write().expect("domains poisoned").insert(hostname.to_string(), app.to_owned()),
        };
    }

    pub fn remove(&self, hostname: &paas_wire::Hostname) {
        match hostname.wildcard_of() {
            Some(under) => self.wildcard.write().expect("domains poisoned").remove(under),
            None => self.exact.write().expect("domains poisoned").remove(hostname.as_str()),
        };
    }

    /// The app a `Host` header names: a custom domain, then
    /// `<app>.<domain>`, then a wildcard custom domain.
    pub fn app_for_host(&self, host: &str, domain: &str) -> Option<String> {
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) { h } else { host }
        });
        let host = host.trim_end_matches('.');
        // Most hosts come in lower case: copied only when not.
        let host: Cow<str> = if host.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(host.to_ascii_lowercase()) } else { Cow::Borrowed(host) };
        if host.starts_with('*') {
            return None;
        }
        // An exact match is a domain that was valid when added, and
        // `<app>.<domain>` is valid when APP is an app name: only the
        // wildcard needs the whole host checked (a `Host` with spaces or
        // `=` in it must not match a wildcard from its first dot on, and
        // then carry those into the app's access records). Checked last,
        // it is off the common path (2 % of the router's instructions).
        if let Some(app) = self.exact.read().expect("domains poisoned").get(host.as_ref()) {
            return Some(app.clone());
        }
        if let Some(app) = host.strip_suffix(domain).and_then(|h| h.strip_suffix('.')) {
            return paas_wire::AppName::parse(app).ok().map(String::from);
        }
        if !paas_wire::Hostname::is_valid(&host) {
            return None;
        }
        let (_, under) = host.split_once('.')?;
        self.wildcard.read().expect("domains poisoned").get(under).cloned()
    }
}

async fn proxy(state: Arc<RouterState>, https: Option<crate::listen::Https>, peer: Peer, mut req: Request<Incoming>) -> Response<RouterBody> {
    let host_header = req
        .headers()
        .get(header::HOST)
        .filter(|h| h.to_str().is_ok())
        .cloned()
        .or_else(|| req.uri().host().and_then(|h| HeaderValue::from_str(h).ok()))
        .unwrap_or_else(|| HeaderValue::from_static(""));
    let host = host_header.to_str().unwrap_or_default();
    if let Some(answer) = state.challenges.answer(req.uri().path()) {
        return Response::new(RouterBody::page(Bytes::from(answer)));
    }
    // An app that does not exist answers like a host nobody added, and
    // costs a lookup: no log, no access record, nothing kept for its name.
    let Some(app) = state.domains.app_for_host(host, &state.domain).filter(|app| state.logs.knows(app)) else {
        return page(
            StatusCode::NOT_FOUND,
            "No such app",
            &format!(
                "No app answers at {host}. Apps answer at http://APP.{}/ and at the domains added with `paas domains:add`.",
                state.domain
            ),
        );
    };
    let started = std::time::Instant::now();
    // An `Upgrade` (WebSocket, ...) is hop-by-hop, so it is dropped with the
    // rest and asked for again on the dyno's connection; the two
    // connections are joined once the dyno agrees (101).
    let upgrade = req.headers().get(header::UPGRADE).cloned().filter(|_| wants_upgrade(req.headers()));
    let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    if let (None, Some(tls_port), true) = (https, state.tls_port, state.routes.https_only(&app)) {
        let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let authority = if tls_port == 443 { bare.to_owned() } else { format!("{bare}:{tls_port}") };
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let to = format!("https://{authority}{path}");
        if let Ok(location) = HeaderValue::from_str(&to) {
            let mut resp = Response::new(RouterBody::page(Bytes::new()));
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            resp.headers_mut().insert(header::LOCATION, location);
            return resp;
        }
    }
    let port = match https {
        Some(h) => HeaderValue::from(h.port),
        None => state.port_header.clone(),
    };
    let mut set = forwarded(req.headers_mut(), &peer, &state.trusted, host_header.clone(), port);
    if https.is_some() {
        set.proto = HeaderValue::from_static("https");
    }
    if let Some(protocol) = &upgrade {
        req.headers_mut().insert(header::UPGRADE, protocol.clone());
        req.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let fwd = set.for_.as_ref().map_or("", text);
    let mut access = Access::new(state.clone(), app, req.method(), path, host, text(&set.request_id), fwd);
    // Borrowed from the record (its other fields change as the request goes).
    let app = access.app.as_str();
    // Maintenance mode: the dynos keep running, the web gets a page.
    if let Some(custom) = state.routes.maintenance(app) {
        let page = maintenance_page(app, custom);
        access.at = Cow::Borrowed("at=error code=H80 desc=\"Maintenance mode\"");
        access.status = 503;
        return recorded(page, access);
    }
    // An upgraded connection holds a slot of its own until it ends.
    let upgrade_slot = match &upgrade {
        None => None,
        Some(_) => match state.upgrades.try_take() {
            Some(slot) => Some(slot),
            None => {
                return router_error(
                    access,
                    ("H11", "Too many upgraded connections"),
                    (StatusCode::SERVICE_UNAVAILABLE, "Too many connections"),
                    "The router holds as many WebSocket connections as it allows (PAAS_ROUTER_MAX_UPGRADED). Try again later.".to_owned(),
                );
            }
        },
    };
    // Losses of the dyno picked from this moment on count for the request.
    let mut picked = std::time::Instant::now();
    let Some((mut backend, counted)) = state.routes.pick_counted(app, &[]) else {
        let message = format!("{app} has no web dyno running. Deploy it with `git push paas main`, or scale it with `paas ps:scale web=1 -a {app}`.");
        return router_error(access, ("H14", "No web processes running"), (StatusCode::SERVICE_UNAVAILABLE, "Application unavailable"), message);
    };
    access.in_flight = Some(counted);
    // A request without a body can go to another dyno when the first one
    // refuses the connection (it is stopping, or crashed a moment ago).
    let retryable = has_no_body(&req);
    let idempotent = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
    let (mut parts, body) = req.into_parts();
    // To the dyno in origin form, whatever form the client used.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        parts.uri = parts.uri.path_and_query().map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
    }
    if !parts.headers.contains_key(header::HOST) {
        parts.headers.insert(header::HOST, host_header.clone());
    }
    // The head stays here, lent to each try: only a request without a
    // body is tried again (its body is then none).
    let mut body = Some(Either::Left(body));
    let mut tried = Vec::new();
    loop {
        access.dyno = Some(state.routes.name_of(backend));
        let attempt = body.take().unwrap_or_else(|| Either::Right(Empty::new()));
        let (to, upgrading, head, set) = (backend, upgrade.is_some(), &parts, &set);
        let exchange = async move {
            match upgrading {
                false => Upstream::exchange(to, head, set, attempt).await.map(|resp| resp.map(Inner::Dyno)),
                true => Box::pin(exchange_upgrade(to, head, set, attempt)).await.map(|resp| resp.map(Inner::Upgraded)),
            }
        };
        // Pinned here and lent to `wait_on`, so the request's future holds
        // it once, not also as `wait_on`'s argument.
        tokio::pin!(exchange);
        let result = match wait_on(&state.routes, backend, picked, state.timeout, exchange).await {
            Waited::Answered(r) => Ok(r),
            Waited::TimedOut => Err(()),
            // Its dyno was lost while this waited: sent again elsewhere
            // when it can be; else answered as a dyno that closed.
            Waited::Lost => {
                tried.push(backend);
                picked = std::time::Instant::now();
                match (retryable && idempotent && tried.len() < MAX_TRIES).then(|| state.routes.pick_counted(app, &tried)).flatten() {
                    Some((next_backend, counted)) => {
                        backend = next_backend;
                        access.in_flight = Some(counted);
                        continue;
                    }
                    None => {
                        let message = format!("{app}'s dyno was lost (its node is down) before it answered. See `paas ps -a {app}`.");
                        return router_error(access, ("H13", "Connection closed without response"), (StatusCode::BAD_GATEWAY, "Bad gateway"), message);
                    }
                }
            }
        };
        access.service_ms = started.elapsed().as_millis();
        match result {
            Ok(Ok(mut resp)) => {
                debug!(app = %app, backend = %backend, status = resp.status().as_u16(), "routed");
                access.status = resp.status().as_u16();
                if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_side), Some(slot)) = (resp.status(), client_side, upgrade_slot) {
                    let dyno_side = hyper::upgrade::on(&mut resp);
                    tokio::spawn(join_upgraded(client_side, dyno_side, app.to_owned(), slot, state.upgrades.idle));
                }
                return resp.map(|inner| RouterBody { inner, access: Some(access), clock: None });
            }
            Ok(Err(failure)) => {
                // A dyno that refuses connections leaves the rotation at
                // once (the scheduler puts it back when it answers again).
                // The request goes to another dyno when it has no body and
                // was refused, or is a GET (HEAD, OPTIONS) whose connection
                // closed before an answer (a dyno stopping under it).
                let refused = match failure {
                    Failure::Refused(e) => {
                        debug!(app = %app, backend = %backend, error = %e, "dyno refused the connection");
                        state.routes.remove(app, backend);
                        true
                    }
                    Failure::Closed(e) => {
                        debug!(app = %app, backend = %backend, error = %e, "dyno did not answer");
                        false
                    }
                };
                tried.push(backend);
                let retry = retryable && (refused || idempotent) && tried.len() < MAX_TRIES;
                picked = std::time::Instant::now();
                if let Some((next_backend, counted)) = retry.then(|| state.routes.pick_counted(app, &tried)).flatten() {
                    backend = next_backend;
                    access.in_flight = Some(counted);
                    continue;
                }
                let (status, title, what, desc) = if refused {
                    (StatusCode::SERVICE_UNAVAILABLE, "Application unavailable", "dynos refused the connection", "Connection refused")
                } else {
                    (StatusCode::BAD_GATEWAY, "Bad gateway", "dyno did not answer", "Connection closed without response")
                };
                let message = format!("{app}'s {what}. See `paas ps -a {app}`.");
                return router_error(access, ("H13", desc), (status, title), message);
            }
            Err(_) => {
                let message = format!(
                    "{app}'s dyno did not answer within {} s. Long work belongs in a worker process; the limit is PAAS_ROUTER_TIMEOUT_SECONDS.",
                    state.timeout.as_secs()
                );
                return router_error(access, ("H12", "Request timeout"), (StatusCode::SERVICE_UNAVAILABLE, "Request timeout"), message);
            }
        }
    }
}

/// How waiting on a dyno ended.
enum Waited<T> {
    Answered(T),
    /// No answer within the router's timeout (H12).
    TimedOut,
    /// The dyno was lost (see [`RouteTable::lose`]).
    Lost,
}

/// How often a request waiting on a dyno looks whether it was lost.
const LOST_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits for `exchange` with the dyno at `addr` up to `limit`, looking
/// every [`LOST_CHECK`] whether the dyno was lost since `since`: one timer
/// for both, and nothing else registered for a request that is answered
/// sooner (most are).
async fn wait_on<F: Future>(routes: &RouteTable, addr: Endpoint, since: std::time::Instant, limit: std::time::Duration, mut exchange: Pin<&mut F>) -> Waited<F::Output> {
    let deadline = tokio::time::Instant::now() + limit;
    let check = tokio::time::sleep(LOST_CHECK.min(limit));
    tokio::pin!(check);
    loop {
        tokio::select! {
            biased;
            answered = exchange.as_mut() => return Waited::Answered(answered),
            () = &mut check => {
                if routes.lost_since(addr, since) {
                    return Waited::Lost;
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Waited::TimedOut;
                }
                check.as_mut().reset((now + LOST_CHECK).min(deadline));
            }
        }
    }
}

/// An answer of the router's own (an error page), recorded with Heroku's
/// router error code: `(code, desc)`, `(status, title)`.
fn router_error(mut access: Access, code: (&str, &str), page_of: (StatusCode, &str), message: String) -> Response<RouterBody> {
    access.at = Cow::Owned(format!("at=error code={} desc=\"{}\"", code.0, code.1));
    access.status = page_of.0.as_u16();
    recorded(page(page_of.0, page_of.1, &message), access)
}

/// Dynos a request without a body is tried on before it fails.
const MAX_TRIES: usize = 3;

/// A request that carries no body (so it can be sent again).
fn has_no_body<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    h.get(header::TRANSFER_ENCODING).is_none()
        && h.get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0")
}

/// Whether the request asks to switch protocols (`Connection: upgrade`).
fn wants_upgrade(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Copies both ways between the client's and the dyno's upgraded
/// connections until both close or neither sends anything for `idle`,
/// holding its slot of the upgrade cap until then.
async fn join_upgraded(
    client: hyper::upgrade::OnUpgrade,
    dyno: hyper::upgrade::OnUpgrade,
    app: String,
    _slot: tokio::sync::OwnedSemaphorePermit,
    idle: std::time::Duration,
) {
    let (client, dyno) = match tokio::try_join!(client, dyno) {
        Ok(both) => both,
        Err(e) => {
            debug!(app = %app, error = %e, "upgrade failed");
            return;
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let mut dyno = hyper_util::rt::TokioIo::new(dyno);
    match crate::listen::join_idle(&mut client, &mut dyno, idle).await {
        Ok(true) => debug!(app = %app, idle_secs = idle.as_secs(), "upgraded connection closed: idle"),
        Ok(false) => {}
        Err(e) => debug!(app = %app, error = %e, "upgraded connection ended"),
    }
}

/// The 503 an app in maintenance mode answers: the platform's page, the
/// app's `MAINTENANCE_PAGE_URL` (an http(s) URL) in a frame, as Heroku
/// shows it, or the `maintenance.html` of its build.
fn maintenance_page(app: &str, custom: Option<MaintenancePage>) -> Response<RouterBody> {
    let html = |body: Bytes| {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(RouterBody::page(body))
            .expect("static response parts are valid")
    };
    let mut resp = match custom {
        Some(MaintenancePage::Url(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            let esc = url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
            html(Bytes::from(format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Offline for maintenance</title></head>\
                 <body style=\"margin:0\"><iframe src=\"{esc}\" title=\"Offline for maintenance\" style=\"border:0;width:100%;height:100vh\"></iframe></body></html>\n"
            )))
        }
        Some(MaintenancePage::Html(page)) => html(page),
        _ => page(StatusCode::SERVICE_UNAVAILABLE, "Offline for maintenance", &format!("{app} is offline for maintenance and will be back shortly.")),
    };
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}

fn page(status: StatusCode, title: &str, message: &str) -> Response<RouterBody> {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{t}</h1><p>{m}</p>\
         <p><small>paas router</small></p></body></html>\n",
        t = esc(title),
        m = esc(message)
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(RouterBody::page(Bytes::from(html)))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_to_app() {
        let t = DomainTable::default();
        assert_eq!(t.app_for_host("myapp.localhost:8080", "localhost").as_deref(), Some("myapp"));
        assert_eq!(t.app_for_host("MyApp.Localhost", "localhost").as_deref(), Some("myapp"));
        assert_eq!(t.app_for_host("a.b.example.com", "example.com"), None);
        assert_eq!(t.app_for_host("localhost:8080", "localhost"), None);
        assert_eq!(t.app_for_host("myapp.otherhost", "localhost"), None);
        // Not a host name: checked by the app name's rules, not looked up.
        assert_eq!(t.app_for_host("my app.localhost", "localhost"), None);
        assert_eq!(t.app_for_host("x=1 myapp.localhost", "localhost"), None);
        assert_eq!(t.app_for_host("-myapp.localhost", "localhost"), None);
        t.set(&paas_wire::Hostname::parse("www.shop.test").unwrap(), "shop");
        t.set(&paas_wire::Hostname::parse("*.blog.test").unwrap(), "blog");
        assert_eq!(t.app_for_host("WWW.Shop.Test:80", "localhost").as_deref(), Some("shop"));
        assert_eq!(t.app_for_host("www.shop.test.", "localhost").as_deref(), Some("shop"));
        assert_eq!(t.app_for_host("anything.blog.test", "localhost").as_deref(), Some("blog"));
        assert_eq!(t.app_for_host("a.b.blog.test", "localhost"), None, "one level only");
        assert_eq!(t.app_for_host("blog.test", "localhost"), None);
        // A Host that is no host name matches nothing, however it ends.
        assert_eq!(t.app_for_host("x status=200 dyno=web9 a.blog.test", "localhost"), None);
        assert_eq!(t.app_for_host("x\"y.blog.test", "localhost"), None);
        assert_eq!(t.app_for_host("*.blog.test", "localhost"), None);
        t.remove(&paas_wire::Hostname::parse("*.blog.test").unwrap());
        assert_eq!(t.app_for_host("anything.blog.test", "localhost"), None);
    }

    #[test]
    fn forwarded_headers_are_set_not_trusted() {
        use axum::http::HeaderMap;
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let proxy: IpAddr = "192.0.2.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert("connection", HeaderValue::from_static("close, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-request-id", HeaderValue::from_static("short"));
        h.insert("forwarded", HeaderValue::from_static("for=6.6.6.6"));
        h.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
        let id = forward_headers(&mut h, &Peer::new(peer), &[proxy], HeaderValue::from_static("app.localhost:8080"), HeaderValue::from(8080u16));
        assert_eq!(h["x-forwarded-for"], "192.0.2.7", "a client cannot forge its address");
        assert!(h.get("forwarded").is_none() && h.get("x-real-ip").is_none(), "nor name it another way");
        assert!(h.get("connection").is_none() && h.get("keep-alive").is_none() && h.get("x-secret-hop").is_none());
        assert_ne!(id, "short", "an invalid request id is replaced");
        assert_eq!(h["x-request-id"], id);
        assert_eq!(h["x-forwarded-port"], "8080");
        assert!(h["x-request-start"].to_str().unwrap().parse::<u128>().unwrap() > 1_700_000_000_000);

        // Behind a trusted proxy the chain is kept; a valid id too.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.insert("x-request-id", HeaderValue::from_static("abcdefghij0123456789-valid"));
        h.insert("x-real-ip", HeaderValue::from_static("203.0.113.9"));
        let id = forward_headers(&mut h, &Peer::new(proxy), &[proxy], HeaderValue::from_static("app.localhost"), HeaderValue::from(80u16));
        assert_eq!(h["x-real-ip"], "203.0.113.9", "a trusted proxy's word is kept");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 192.0.2.1");
        assert_eq!(id, "abcdefghij0123456789-valid");
    }

    /// What the router sets is written after the request's own headers:
    /// none of a client's versions may stay among those.
    #[test]
    fn a_clients_own_forwarding_headers_are_dropped_before_the_routers_are_written() {
        use axum::http::HeaderMap;
        let mut h = HeaderMap::new();
        for name in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-request-start"] {
            h.append(name, HeaderValue::from_static("forged"));
            h.append(name, HeaderValue::from_static("twice"));
        }
        h.insert("x-request-id", HeaderValue::from_static("abcdefghij0123456789-valid"));
        h.insert("x-app", HeaderValue::from_static("kept"));
        let set = forwarded(&mut h, &Peer::new("192.0.2.7".parse().unwrap()), &[], HeaderValue::from_static("a.localhost"), HeaderValue::from(80u16));
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-app"], "only the request's own headers stay");
        let fields: Vec<(String, String)> = set.fields().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned())).collect();
        assert_eq!(fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-request-id", "x-request-start"]);
        assert_eq!((fields[0].1.as_str(), fields[1].1.as_str(), fields[4].1.as_str()), ("192.0.2.7", "http", "abcdefghij0123456789-valid"));
    }

    #[test]
    fn quoted_values_escape_backslashes_and_quotes_only() {
        let mut out = String::from("x=");
        quote_into(&mut out, r#"a"b\c ü "" "#);
        assert_eq!(out, r#"x=a\"b\\c ü \"\" "#);
        quote_into(&mut out, "");
        assert_eq!(out, r#"x=a\"b\\c ü \"\" "#);
    }

    #[test]
    fn round_robin() {
        let t = RouteTable::default();
        let a = Endpoint::new("127.0.0.1:1".parse().unwrap());
        let b = Endpoint::new("127.0.0.1:2".parse().unwrap());
        t.set("x", vec![a, b]);
        let picks: Vec<_> = (0..4).map(|_| t.pick_counted("x", &[]).unwrap().0).collect();
        assert_eq!(picks, [a, b, a, b]);
        // A retry skips what it tried, whoever's turn it is; with all
        // tried, the turn decides.
        let c = Endpoint::new("127.0.0.1:3".parse().unwrap());
        t.set("x", vec![a, b, c]);
        let retries: Vec<_> = (0..3).map(|_| t.pick_counted("x", &[a, b]).unwrap().0).collect();
        assert_eq!(retries, [c, c, c]);
        assert_eq!(t.pick_counted("x", &[a, b, c]).unwrap().0, a);
        t.set("x", vec![]);
        assert!(t.pick_counted("x", &[]).is_none());
    }
}
