//! What the API and the git receiver share: the request state, the token
//! check every route but the hook's sits behind, and the error type
//! ([`error`]). Both depend on this module and never on each other; the
//! server wires their routers together.

pub mod access;
pub mod error;
pub mod extract;
pub mod session;

use paas_wire::ErrorId;
use crate::builder::Builder;
use crate::crypto;
use crate::release::ReleaseService;
use crate::scheduler::Scheduler;
use crate::settings::Settings;
use crate::store::Store;
use crate::actor::Actor;
use access::{audit::Event, limits, Principal};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
pub use error::{ApiError, ApiResult, Json};
pub use extract::AppPath;
use std::sync::Arc;

/// Everything a handler needs, cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Add-ons (PostgreSQL, Redis), their attachments and backups.
    pub addons: crate::addons::Addons,
    pub releases: ReleaseService,
    pub scheduler: Scheduler,
    /// One-off dynos (`paas run`).
    pub one_offs: crate::oneoff::OneOffs,
    /// app.json `cron` entries, run on their schedules.
    pub cron: crate::cron::CronService,
    pub builder: Builder,
    pub logs: crate::logs::LogRouter,
    /// Requests and dynos' memory and CPU by minute (`paas metrics`).
    pub metrics: crate::metrics::Metrics,
    /// Custom domains, as the router reads them.
    pub domains: crate::router::DomainTable,
    /// Certificates of custom domains, as the HTTPS listener reads them.
    pub certs: crate::tls::CertTable,
    /// Seals the certificates' private keys (as config vars).
    pub cipher: crate::crypto::ConfigCipher,
    /// Automatic certificates.
    pub acme: crate::acme::Acme,
    pub settings: Arc<Settings>,
    /// Dashboard sessions.
    pub sessions: Arc<session::Sessions>,
    /// The secret the pre-receive hook presents; new on every server start.
    pub hook_token: Arc<String>,
    /// When tokens were last recorded as used.
    pub token_uses: Arc<TokenUses>,
    /// Failed sign-ins and token checks, per address and per user.
    pub failures: Arc<limits::Failures>,
    /// Who changed what.
    pub audit: Arc<access::audit::AuditLog>,
    /// Who made each push under way.
    pub pushes: Arc<crate::actor::Pushes>,
    /// The cap on attached `paas run` sessions (upgraded connections, which
    /// the listener's connection cap no longer counts), and how long one
    /// may carry nothing either way (`PAAS_RUN_IDLE_SECONDS`).
    pub run_sessions: crate::listen::Upgrades,
}

impl AppState {
    pub fn web_url(&self, app: &str) -> String {
        web_url(&self.settings, app)
    }

    pub fn git_url(&self, app: &str) -> String {
        format!("{}/{app}.git", self.settings.api_url())
    }

    /// Constant-time check of the hook secret.
    pub fn hook_token_ok(&self, presented: &str) -> bool {
        crypto::constant_time_eq(presented, &self.hook_token)
    }
}

pub fn web_url(settings: &Settings, app: &str) -> String {
    match settings.router.listen.port() {
        80 => format!("http://{app}.{}/", settings.server.domain),
        port => format!("http://{app}.{}:{port}/", settings.server.domain),
    }
}

/// The token from `Authorization: Bearer T` or `Basic base64(user:T)`.
pub fn token_from_header(value: &str) -> Option<String> {
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some(t.trim().to_owned());
    }
    let b64 = value.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let pair = String::from_utf8(raw).ok()?;
    let (_, password) = pair.split_once(':')?;
    Some(password.to_owned())
}

/// Middleware of the API's and git's routes: the request must carry a
/// valid token (a user's or a deploy token), and its user may do what the
/// route needs on its app ([`crate::http::access::check`]). Failed token checks
/// are counted per address; past `PAAS_AUTH_FAILURES` the address gets a
/// 429 until its window ends.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let address = access::client_address(&state, req.headers(), peer);
    let addr_key = limits::address_key(address);
    if let Some(seconds) = state.failures.refused(&[&addr_key]) {
        return Err(ApiError::rate_limited(seconds));
    }
    let token = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(token_from_header);
    let Some(token) = token else { return Err(ApiError::unauthorized()) };
    let Some(principal) = access::principal_of_token(&state, &token).await? else {
        let detail = format!("{} {}: a token that is not valid", req.method(), req.uri().path());
        failed_attempt(&state, address, &[&addr_key], None, detail).await;
        return Err(ApiError::unauthorized());
    };
    if let Some(t) = &principal.token {
        state.token_uses.record(&state.store, &t.id).await;
    }
    Ok(admit(&state, principal, address, req, next, IntoResponse::into_response).await)
}

/// Records a failed sign-in or token check under `keys` (and in the audit
/// log), and the limit tripping when this failure is the one that trips it.
pub async fn failed_attempt(state: &AppState, address: Option<std::net::IpAddr>, keys: &[&str], user: Option<&str>, detail: String) {
    state.failures.record(keys, std::time::Instant::now());
    let event = |action: &str, detail: String, status: u16| Event {
        actor: user.unwrap_or("anonymous").to_owned(),
        address,
        action: action.to_owned(),
        detail,
        status,
        ..Event::default()
    };
    state.audit.record(event("auth.failed", detail, 401)).await;
    if let Some(seconds) = state.failures.refused(keys) {
        state.audit.record(event("auth.rate_limited", format!("refused for {seconds} s after {} failures", state.settings.access.failures), 429)).await;
    }
}

/// Lets `principal` make the request if the route's entry allows it
/// (answering `refuse(error)` if not), with the app found left for the
/// handler and the principal as the actor; changes go to the audit log.
pub async fn admit(
    state: &AppState,
    principal: Principal,
    address: Option<std::net::IpAddr>,
    req: Request,
    next: Next,
    refuse: impl FnOnce(ApiError) -> Response,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let matched = parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let params = axum::extract::RawPathParams::from_request_parts(&mut parts, state).await.ok();
    let app = params.as_ref().and_then(|p| {
        p.iter().find_map(|(k, v)| match k {
            "app" => Some(v.to_owned()),
            "repo" => Some(v.strip_suffix(".git").unwrap_or(v).to_owned()),
            _ => None,
        })
    });
    let found = match access::check(state, &principal, &parts.method, &matched, app.as_deref()).await {
        Ok(found) => found,
        Err(e) => return refuse(e),
    };
    let audited = access::policy::find(&parts.method, &matched).filter(|r| audited(&parts.method, r.action));
    let detail = format!("{} {}", parts.method, parts.uri.path());
    if let Some(found) = found {
        parts.extensions.insert(found);
    }
    let actor = Actor { name: principal.actor(), user_id: Some(principal.user.id.clone()) };
    parts.extensions.insert(principal);
    let response = actor.clone().scope(next.run(Request::from_parts(parts, body))).await;
    if let Some(route) = audited {
        let event = Event {
            actor: actor.name,
            user_id: actor.user_id,
            address,
            action: route.action.to_owned(),
            app,
            detail,
            status: response.status().as_u16(),
        };
        state.audit.record(event).await;
    }
    response
}

/// Whether a request goes to the audit log: every change, and the reads
/// that reach into a running app or its data.
fn audited(method: &axum::http::Method, action: &str) -> bool {
    !matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD) || matches!(action, "run" | "addons.console" | "backups.download")
}

/// When each token was last recorded as used: its `last_used_at` is
/// written at most once a minute, not on every request.
#[derive(Default)]
pub struct TokenUses {
    written: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl TokenUses {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    pub async fn record(&self, store: &Store, id: &str) {
        let due = {
            let mut written = self.written.lock().expect("token uses poisoned");
            let now = std::time::Instant::now();
            match written.get(id) {
                Some(at) if now.duration_since(*at) < Self::EVERY => false,
                _ => {
                    written.insert(id.to_owned(), now);
                    true
                }
            }
        };
        if due {
            if let Err(e) = store.touch_token(id).await {
                tracing::warn!(error = %e, "cannot record a token's use");
            }
        }
    }
}

/// Middleware of git's routes: a 401 asks for Basic credentials, so git
/// prompts for them (or reads `~/.netrc`). The API's JSON routes never ask,
/// so a browser never remembers a token for them.
pub async fn basic_challenge(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"paas\""));
    }
    resp
}

/// Middleware of the whole API listener: a request that a browser made from
/// another site's page (its `Origin` names another host than the one it was
/// sent to) may read nothing that changes state and may not open a
/// WebSocket. The CLI and git send no `Origin`; the dashboard's own pages
/// send theirs, which matches. Behind a proxy in `PAAS_TRUSTED_PROXIES` the
/// host the browser used may also come as `X-Forwarded-Host`.
pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(next.run(req).await);
    };
    let safe_method = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
    let upgrade = req.headers().contains_key(header::UPGRADE);
    if safe_method && !upgrade {
        return Ok(next.run(req).await);
    }
    let origin = origin.to_str().unwrap_or("null");
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let forwarded_host = peer
        .filter(|p| state.settings.server.trusted_proxies.contains(p))
        .and_then(|_| req.headers().get("x-forwarded-host"))
        .and_then(|h| h.to_str().ok());
    if origin_matches(origin, host) || forwarded_host.is_some_and(|h| origin_matches(origin, h)) {
        Ok(next.run(req).await)
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            ErrorId::CrossOrigin,
            "this request came from another site's page and is refused: use the paas CLI, git, or the dashboard itself",
        ))
    }
}

/// Whether an `Origin` header (`scheme://host[:port]`) names `host` (the
/// request's `Host`, with its port if it has one).
fn origin_matches(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    if !matches!(scheme, "http" | "https") || host.is_empty() {
        return false;
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let norm = |a: &str| a.strip_suffix(default_port).unwrap_or(a).to_ascii_lowercase();
    norm(authority) == norm(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_headers() {
        assert_eq!(token_from_header("Bearer abc").as_deref(), Some("abc"));
        let basic = base64::engine::general_purpose::STANDARD.encode("git:tok:en");
        assert_eq!(token_from_header(&format!("Basic {basic}")).as_deref(), Some("tok:en"));
        assert_eq!(token_from_header("Digest x"), None);
        assert_eq!(token_from_header("Basic !!!"), None);
    }

    #[test]
    fn origins() {
        assert!(origin_matches("http://127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(origin_matches("https://paas.example.com", "PAAS.example.com:443"));
        assert!(origin_matches("http://paas.example.com:80", "paas.example.com"));
        assert!(!origin_matches("http://evil.test", "127.0.0.1:5000"));
        assert!(!origin_matches("http://127.0.0.1:5001", "127.0.0.1:5000"));
        assert!(!origin_matches("null", "127.0.0.1:5000"));
        assert!(!origin_matches("file://", ""));
    }
}
