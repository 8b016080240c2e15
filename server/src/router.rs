//! The router: serves apps by `Host: <app>.<domain>` on its own port,
//! round-robin over the healthy web dynos of the current release, with
//! `X-Forwarded-For/Proto/Host` and `X-Request-Id`, and a 503 page when no
//! dyno is up. The scheduler alone decides what is in the route table.
//! `Upgrade` requests (WebSocket) pass through both ways once the dyno
//! answers 101. Each request leaves an access record in the app's log (`paas[router]`),
//! in Heroku's words, once its response body is done.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use crate::runtime::Endpoint;
use std::net::{IpAddr, SocketAddr};
use crate::logs::LogRouter;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tracing::debug;

/// App name -> healthy web dyno addresses, shared with the scheduler.
#[derive(Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<HashMap<String, Arc<Backends>>>>,
    /// Backend address -> dyno name (`web.1`), for access records.
    names: Arc<RwLock<HashMap<Endpoint, String>>>,
    /// Backend address -> requests being served by it, so a dyno leaving
    /// the rotation is stopped only once they are done.
    in_flight: Arc<std::sync::Mutex<HashMap<Endpoint, usize>>>,
    /// Apps whose plain HTTP requests are redirected to HTTPS (their
    /// release's `FORCE_HTTPS` config var).
    https_only: Arc<RwLock<std::collections::HashSet<String>>>,
    /// Backend address -> cancelled when its dyno is lost (its node is
    /// down): requests waiting on it that can be sent again go elsewhere.
    lost: Arc<std::sync::Mutex<HashMap<Endpoint, tokio_util::sync::CancellationToken>>>,
    /// Apps in maintenance mode: their web requests get a 503 page.
    maintenance: Arc<RwLock<std::collections::HashSet<String>>>,
    /// Apps' own maintenance pages.
    maintenance_pages: Arc<RwLock<HashMap<String, MaintenancePage>>>,
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
    table: Arc<std::sync::Mutex<HashMap<Endpoint, usize>>>,
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
        // A dyno out of every rotation with no request waiting on it
        // needs no signal kept for it (one that left the rotation keeps
        // its signal while requests wait on it: it may be lost yet).
        let in_flight = self.in_flight.lock().expect("in-flight poisoned");
        self.lost
            .lock()
            .expect("lost poisoned")
            .retain(|addr, _| in_flight.contains_key(addr) || map.values().any(|b| b.addrs.contains(addr)));
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
        self.names.write().expect("route names poisoned").insert(addr, dyno.to_owned());
    }

    fn name_of(&self, addr: Endpoint) -> String {
        self.names.read().expect("route names poisoned").get(&addr).cloned().unwrap_or_else(|| "web".to_owned())
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
    /// rotation, and sends the requests waiting on it that can be sent
    /// again (no body, idempotent) to other dynos: a connection to a lost
    /// machine neither answers nor closes.
    pub fn lose(&self, app: &str, addr: Endpoint) {
        let token = self.lost.lock().expect("lost poisoned").remove(&addr);
        self.remove(app, addr);
        if let Some(token) = token {
            token.cancel();
        }
    }

    /// Cancelled when the dyno at `addr` is lost (see [`Self::lose`]).
    fn lost_signal(&self, addr: Endpoint) -> tokio_util::sync::CancellationToken {
        self.lost.lock().expect("lost poisoned").entry(addr).or_default().clone()
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
    port: u16,
    client: Client<HttpConnector, Body>,
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
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        // Keep-alive connections to dynos are pooled and reused.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector);
        let upgrades = crate::listen::Upgrades::new(4096, std::time::Duration::from_secs(55));
        Self { routes, domain, trusted: Arc::new(trusted), port, client, logs, timeout, domains, tls_port: None, challenges: Default::default(), upgrades, metrics: crate::metrics::Metrics::new(false) }
    }
}

/// One request's access record, written to the app's log when dropped:
/// after the response body is done (or the client went away).
struct Access {
    logs: LogRouter,
    metrics: crate::metrics::Metrics,
    app: String,
    /// `at=info` or `at=error code=H13 desc="..."`.
    at: String,
    method: String,
    path: String,
    host: String,
    request_id: String,
    fwd: String,
    dyno: String,
    connect_ms: u128,
    service_ms: u128,
    status: u16,
    bytes: Arc<AtomicU64>,
    /// The request counted on its backend until the response is done.
    in_flight: Option<InFlight>,
}

impl Drop for Access {
    fn drop(&mut self) {
        self.metrics.request(&self.app, self.status, u64::try_from(self.service_ms).unwrap_or(u64::MAX));
        let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        self.logs.event(
            &self.app,
            "router",
            format!(
                "{} method={} path=\"{}\" host=\"{}\" request_id={} fwd=\"{}\" dyno={} connect={}ms service={}ms status={} bytes={} protocol=http",
                self.at,
                self.method,
                quote(&self.path),
                quote(&self.host),
                self.request_id,
                quote(&self.fwd),
                self.dyno,
                self.connect_ms,
                self.service_ms,
                self.status,
                self.bytes.load(Ordering::Relaxed),
            ),
        );
    }
}

/// The response with its body counted; the record is written when the
/// body is dropped.
fn recorded(resp: Response<Body>, access: Access) -> Response<Body> {
    let bytes = access.bytes.clone();
    resp.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _keep = &access;
            if let Some(data) = frame.data_ref() {
                bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            frame
        }))
    })
}

/// Headers that belong to one connection, never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade",
];

/// A request id worth keeping: 20 to 200 of `[A-Za-z0-9+=/-]`, as Heroku's
/// router accepts.
fn valid_request_id(id: &str) -> bool {
    (20..=200).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=/-".contains(&b))
}

/// Rewrites a request's headers for the dyno: drops hop-by-hop headers
/// (and those `Connection` names); sets `X-Forwarded-For` from the peer,
/// keeping a client-sent chain only when the peer is a trusted proxy;
/// `X-Forwarded-Proto`, `-Host`, `-Port`; `X-Request-Id` (a valid incoming
/// one kept, else new) and `X-Request-Start` (Unix milliseconds). Returns
/// the request id.
pub fn forward_headers(
    headers: &mut axum::http::HeaderMap,
    peer: IpAddr,
    trusted: &[IpAddr],
    host: &str,
    port: u16,
) -> String {
    // Headers `Connection` names (rare: most requests have none, or only
    // `keep-alive`, which goes anyway), then the hop-by-hop ones.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty() && !HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(n)))
        .map(str::to_ascii_lowercase)
        .collect();
    for name in &named {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    let chain = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let trusted_peer = trusted.contains(&peer);
    let forwarded_for = match chain {
        Some(prev) if trusted_peer => format!("{prev}, {peer}"),
        _ => peer.to_string(),
    };
    // The other ways of naming the client are a client's word too: kept
    // only from a trusted proxy.
    if !trusted_peer {
        headers.remove(header::FORWARDED);
        headers.remove("x-real-ip");
    }
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    for (name, value) in [
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-proto", "http".to_owned()),
        ("x-forwarded-host", host.to_owned()),
        ("x-forwarded-port", port.to_string()),
        ("x-request-id", request_id.clone()),
        ("x-request-start", start.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    request_id
}

/// The router's service: every request goes to [`proxy`], with no routing
/// layer in front (it has one route), which saves work on every request.
pub fn router(
    state: RouterState,
) -> impl tower::Service<Request<Body>, Response = Response<Body>, Error = std::convert::Infallible, Future = impl Send> + Clone + Send + 'static {
    // Shared, not cloned per request (its client and tables are several
    // reference counts and a String).
    let state = Arc::new(state);
    tower::service_fn(move |req: Request<Body>| {
        let state = state.clone();
        async move {
            let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
            Ok::<_, std::convert::Infallible>(proxy(&state, peer, req).await)
        }
    })
}

/// Custom domains -> apps, shared with the API (which changes them after
/// the store has). Exact hostnames, and wildcards by the domain they cover
/// one level under (`*.example.com` is kept as `example.com`).
#[derive(Clone, Default)]
pub struct DomainTable {
    exact: Arc<RwLock<HashMap<String, String>>>,
    wildcard: Arc<RwLock<HashMap<String, String>>>,
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
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        // Only a valid host name is looked up: a `Host` with spaces or
        // `=` in it must not match a wildcard from its first dot on (and
        // then carry those into the app's access records).
        if host.starts_with('*') || !paas_wire::Hostname::is_valid(&host) {
            return None;
        }
        if let Some(app) = self.exact.read().expect("domains poisoned").get(&host) {
            return Some(app.clone());
        }
        if let Some(app) = host.strip_suffix(domain).and_then(|h| h.strip_suffix('.')) {
            return paas_wire::AppName::parse(app).ok().map(|a| a.to_string());
        }
        let (_, under) = host.split_once('.')?;
        self.wildcard.read().expect("domains poisoned").get(under).cloned()
    }
}

async fn proxy(state: &RouterState, peer: SocketAddr, mut req: Request<Body>) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or_default()
        .to_owned();
    if let Some(answer) = state.challenges.answer(req.uri().path()) {
        return Response::new(Body::from(answer));
    }
    // An app that does not exist answers like a host nobody added, and
    // costs a lookup: no log, no access record, nothing kept for its name.
    let Some(app) = state.domains.app_for_host(&host, &state.domain).filter(|app| state.logs.knows(app)) else {
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
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    // An `Upgrade` (WebSocket, ...) is hop-by-hop, so it is dropped with the
    // rest and asked for again on the dyno's connection; the two
    // connections are joined once the dyno agrees (101).
    let upgrade = req.headers().get(header::UPGRADE).cloned().filter(|_| wants_upgrade(req.headers()));
    let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let https = req.extensions().get::<crate::listen::Https>().copied();
    if let (None, Some(tls_port), true) = (https, state.tls_port, state.routes.https_only(&app)) {
        let bare = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let authority = if tls_port == 443 { bare.to_owned() } else { format!("{bare}:{tls_port}") };
        let to = format!("https://{authority}{path}");
        if let Ok(location) = HeaderValue::from_str(&to) {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            resp.headers_mut().insert(header::LOCATION, location);
            return resp;
        }
    }
    let request_id = forward_headers(req.headers_mut(), peer.ip(), &state.trusted, &host, https.map_or(state.port, |h| h.port));
    if https.is_some() {
        req.headers_mut().insert("x-forwarded-proto", HeaderValue::from_static("https"));
    }
    if let Some(protocol) = &upgrade {
        req.headers_mut().insert(header::UPGRADE, protocol.clone());
        req.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let mut access = Access {
        logs: state.logs.clone(),
        metrics: state.metrics.clone(),
        app: app.clone(),
        at: "at=info".into(),
        method: req.method().to_string(),
        path: path.clone(),
        host: host.clone(),
        request_id: request_id.clone(),
        fwd: req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned(),
        dyno: String::new(),
        connect_ms: 0,
        service_ms: 0,
        status: 0,
        bytes: Arc::default(),
        in_flight: None,
    };
    // Maintenance mode: the dynos keep running, the web gets a page.
    if let Some(custom) = state.routes.maintenance(&app) {
        access.at = "at=error code=H80 desc=\"Maintenance mode\"".into();
        access.status = 503;
        return recorded(maintenance_page(&app, custom), access);
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
                    "The router holds as many WebSocket connections as it allows (PAAS_ROUTER_MAX_UPGRADED). Try again later.",
                );
            }
        },
    };
    let Some((mut backend, counted)) = state.routes.pick_counted(&app, &[]) else {
        return router_error(
            access,
            ("H14", "No web processes running"),
            (StatusCode::SERVICE_UNAVAILABLE, "Application unavailable"),
            &format!("{app} has no web dyno running. Deploy it with `git push paas main`, or scale it with `paas ps:scale web=1 -a {app}`."),
        );
    };
    access.in_flight = Some(counted);
    // A request without a body can go to another dyno when the first one
    // refuses the connection (it is stopping, or crashed a moment ago).
    let retryable = has_no_body(&req);
    let idempotent = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let mut tried = Vec::new();
    loop {
        access.dyno = state.routes.name_of(backend);
        let uri: Uri = match format!("http://{backend}{path}").parse() {
            Ok(u) => u,
            Err(_) => return page(StatusCode::BAD_REQUEST, "Bad request", "The request path is not valid."),
        };
        let mut attempt = Request::from_parts(parts.clone(), body.take().unwrap_or_else(Body::empty));
        *attempt.uri_mut() = uri;
        let lost = state.routes.lost_signal(backend);
        let result = tokio::select! {
            r = tokio::time::timeout(state.timeout, state.client.request(attempt)) => r,
            // Its dyno was lost while this waited: sent again elsewhere
            // when it can be; else answered as a dyno that closed.
            _ = lost.cancelled() => {
                tried.push(backend);
                match (retryable && idempotent && tried.len() < MAX_TRIES).then(|| state.routes.pick_counted(&app, &tried)).flatten() {
                    Some((next, counted)) => {
                        backend = next;
                        access.in_flight = Some(counted);
                        continue;
                    }
                    None => return router_error(
                        access,
                        ("H13", "Connection closed without response"),
                        (StatusCode::BAD_GATEWAY, "Bad gateway"),
                        &format!("{app}'s dyno was lost (its node is down) before it answered. See `paas ps -a {app}`."),
                    ),
                }
            }
        };
        access.service_ms = started.elapsed().as_millis();
        match result {
            Ok(Ok(mut resp)) => {
                debug!(app = %app, backend = %backend, request_id = %request_id, status = resp.status().as_u16(), "routed");
                access.status = resp.status().as_u16();
                if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_side), Some(slot)) = (resp.status(), client_side, upgrade_slot) {
                    let dyno_side = hyper::upgrade::on(&mut resp);
                    tokio::spawn(join_upgraded(client_side, dyno_side, app.clone(), slot, state.upgrades.idle));
                }
                return recorded(resp.map(Body::new), access);
            }
            Ok(Err(e)) => {
                // A dyno that refuses connections leaves the rotation at
                // once (the scheduler puts it back when it answers again).
                // The request goes to another dyno when it has no body and
                // was refused, or is a GET (HEAD, OPTIONS) whose connection
                // closed before an answer (a dyno stopping under it).
                let refused = e.is_connect();
                debug!(app = %app, backend = %backend, error = %e, refused, "backend failed");
                if refused {
                    state.routes.remove(&app, backend);
                }
                tried.push(backend);
                let retry = retryable && (refused || idempotent) && tried.len() < MAX_TRIES;
                if let Some((next, counted)) = retry.then(|| state.routes.pick_counted(&app, &tried)).flatten() {
                    backend = next;
                    access.in_flight = Some(counted);
                    continue;
                }
                let (status, title, what, desc) = if refused {
                    (StatusCode::SERVICE_UNAVAILABLE, "Application unavailable", "dynos refused the connection", "Connection refused")
                } else {
                    (StatusCode::BAD_GATEWAY, "Bad gateway", "dyno did not answer", "Connection closed without response")
                };
                return router_error(access, ("H13", desc), (status, title), &format!("{app}'s {what}. See `paas ps -a {app}`."));
            }
            Err(_) => {
                return router_error(
                    access,
                    ("H12", "Request timeout"),
                    (StatusCode::SERVICE_UNAVAILABLE, "Request timeout"),
                    &format!(
                        "{app}'s dyno did not answer within {} s. Long work belongs in a worker process; the limit is PAAS_ROUTER_TIMEOUT_SECONDS.",
                        state.timeout.as_secs()
                    ),
                );
            }
        }
    }
}

/// An answer of the router's own (an error page), recorded with Heroku's
/// router error code: `(code, desc)`, `(status, title)`.
fn router_error(mut access: Access, code: (&str, &str), page_of: (StatusCode, &str), message: &str) -> Response<Body> {
    access.at = format!("at=error code={} desc=\"{}\"", code.0, code.1);
    access.status = page_of.0.as_u16();
    recorded(page(page_of.0, page_of.1, message), access)
}

/// Dynos a request without a body is tried on before it fails.
const MAX_TRIES: usize = 3;

/// A request that carries no body (so it can be sent again).
fn has_no_body(req: &Request<Body>) -> bool {
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
fn maintenance_page(app: &str, custom: Option<MaintenancePage>) -> Response<Body> {
    let html = |body: Body| {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(body)
            .expect("static response parts are valid")
    };
    let mut resp = match custom {
        Some(MaintenancePage::Url(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            let esc = url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
            html(Body::from(format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Offline for maintenance</title></head>\
                 <body style=\"margin:0\"><iframe src=\"{esc}\" title=\"Offline for maintenance\" style=\"border:0;width:100%;height:100vh\"></iframe></body></html>\n"
            )))
        }
        Some(MaintenancePage::Html(page)) => html(Body::from(page)),
        _ => page(StatusCode::SERVICE_UNAVAILABLE, "Offline for maintenance", &format!("{app} is offline for maintenance and will be back shortly.")),
    };
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}

fn page(status: StatusCode, title: &str, message: &str) -> Response<Body> {
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
        .body(Body::from(html))
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
        let id = forward_headers(&mut h, peer, &[proxy], "app.localhost:8080", 8080);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7", "a client cannot forge its address");
        assert!(h.get("forwarded").is_none() && h.get("x-real-ip").is_none(), "nor name it another way");
        assert!(h.get("connection").is_none() && h.get("keep-alive").is_none() && h.get("x-secret-hop").is_none());
        assert_ne!(id, "short", "an invalid request id is replaced");
        assert_eq!(h["x-request-id"], id.as_str());
        assert_eq!(h["x-forwarded-port"], "8080");
        assert!(h["x-request-start"].to_str().unwrap().parse::<u128>().unwrap() > 1_700_000_000_000);

        // Behind a trusted proxy the chain is kept; a valid id too.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.insert("x-request-id", HeaderValue::from_static("abcdefghij0123456789-valid"));
        h.insert("x-real-ip", HeaderValue::from_static("203.0.113.9"));
        let id = forward_headers(&mut h, proxy, &[proxy], "app.localhost", 80);
        assert_eq!(h["x-real-ip"], "203.0.113.9", "a trusted proxy's word is kept");
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 192.0.2.1");
        assert_eq!(id, "abcdefghij0123456789-valid");
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
