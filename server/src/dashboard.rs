//! The web dashboard on the API listener at `/`: server-rendered pages
//! (askama templates in `web/templates`) over the same typed functions the
//! API's JSON routes call ([`crate::service`]), so no rule is written twice:
//! a form post calls `service::config::set`, `service::formation::update`,
//! ... and shows the [`ChangeResult`] or the error's message. [`PageApp`]
//! finds the app once per request (as the API's [`AppPath`] does, whose
//! errors it shows as a page), and [`CsrfForm`] checks every form's CSRF
//! token before a handler runs.
//!
//! Safety: every page and stream needs a session (made by signing in with
//! an API token; the cookie is HttpOnly, SameSite=Strict, Secure when the
//! browser came over TLS (a trusted proxy's `X-Forwarded-Proto`), and
//! expires); every POST carries the session's CSRF
//! token (sign-in, a double-submit token); templates escape every value;
//! a strict Content-Security-Policy allows only the dashboard's own script
//! and stylesheet. Everything works without JavaScript but live logs.

use paas_wire::ErrorId;
use crate::api;
use crate::http::access::{AppAccess, Principal, Role};
use crate::http::session::Session;
use crate::http::{ApiError, ApiResult, AppPath, AppState};
use crate::service;
use crate::store::AppRow;
use askama::Template;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Extension;
use paas_wire::{ChangeResult, DeployState};
use std::collections::BTreeMap;

const COOKIE: &str = "paas_session";
const LOGIN_COOKIE: &str = "paas_login";
/// Log lines the app page shows (and the live view starts from).
const LOG_LINES: usize = 200;
/// How long a change's form waits for its dynos before answering.
const CHANGE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes. Pages behind the session check; sign-in and the
/// static files without.
pub fn router(state: AppState) -> axum::Router<AppState> {
    let signed_in = axum::Router::new()
        .route("/", get(apps_page))
        .route("/app", post(create_app))
        .route("/app/{app}", get(app_page))
        .route("/app/{app}/config", post(set_config))
        .route("/app/{app}/config/unset", post(unset_config))
        .route("/app/{app}/formation", post(scale))
        .route("/app/{app}/restart", post(restart))
        .route("/app/{app}/rollback", post(rollback))
        .route("/app/{app}/domains", post(add_domain))
        .route("/app/{app}/domains/remove", post(remove_domain))
        .route("/app/{app}/destroy", post(destroy))
        .route("/app/{app}/addons", post(create_addon))
        .route("/app/{app}/addons/{addon}/backups", post(capture_backup))
        .route("/app/{app}/addons/{addon}/backups/{backup}", get(download_backup))
        .route("/app/{app}/builds/{build}", get(build_page))
        .route("/app/{app}/access", get(access_page).post(set_access))
        .route("/app/{app}/access/remove", post(remove_access))
        .route("/admin/users", get(users_page).post(create_user))
        .route("/admin/users/remove", post(remove_user))
        // The API's own event stream, behind the session instead of a token.
        .route("/app/{app}/log-stream", get(api::logs::stream))
        .route("/logout", post(logout))
        .route_layer(axum::middleware::from_fn_with_state(state, require_session));
    axum::Router::new()
        .merge(signed_in)
        .route("/login", get(login_page).post(login))
        .route("/static/dashboard.css", get(css))
        .route("/static/dashboard.js", get(js))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// Whether the browser reached us over TLS: the router's HTTPS listener,
/// or a trusted proxy (`PAAS_TRUSTED_PROXIES`) that says so.
fn over_tls(state: &AppState, headers: &HeaderMap, https: bool, peer: Option<std::net::SocketAddr>) -> bool {
    https
        || peer.is_some_and(|p| state.settings.server.trusted_proxies.contains(&p.ip()))
            && headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Where the request came from and how, for the cookies' Secure flag.
type Peer = Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;
type Tls = Option<Extension<crate::listen::Https>>;

fn secure_of(state: &AppState, headers: &HeaderMap, peer: &Peer, tls: &Tls) -> bool {
    over_tls(state, headers, tls.is_some(), peer.as_ref().map(|Extension(c)| c.0))
}

fn set_cookie(secure: bool, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Middleware: a live session, or the browser goes to sign in; then the
/// same access check as the API's (an app the user has no role on is a
/// "not found" page; a control their role may not use, a 403 page).
async fn require_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let stream = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"));
    let session = match cookie_value(req.headers(), COOKIE) {
        Some(id) => state.sessions.get(&state.store, &id).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read a session");
            None
        }),
        None => None,
    };
    let signed_in = match session {
        Some(s) => match session_principal(&state, &s).await {
            Some(p) => Some((s, p)),
            // Its user removed, or its token revoked or expired since: it ends.
            None => {
                let _ = state.sessions.remove(&state.store, &s.key).await;
                None
            }
        },
        None => None,
    };
    let Some((session, principal)) = signed_in else {
        if stream {
            return (StatusCode::UNAUTHORIZED, "sign in again").into_response();
        }
        return Redirect::to("/login").into_response();
    };
    req.extensions_mut().insert(session.clone());
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let address = crate::http::access::client_address(&state, req.headers(), peer);
    let refuse = move |e: ApiError| if stream { e.into_response() } else { error_page(&session, e) };
    crate::http::admit(&state, principal, address, req, next, refuse).await
}

/// Who a session is: its user, and the token it was signed in with if
/// that is still valid.
async fn session_principal(state: &AppState, s: &Session) -> Option<Principal> {
    let user = state.store.user(&s.user_id).await.ok()??;
    let token = match &s.token_id {
        Some(id) => Some(state.store.token(id).await.ok()??).filter(|t| t.active_at(&crate::store::now()))?.into(),
        None => None,
    };
    Some(Principal { user, token })
}

fn render(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    csrf: String,
    flashes: Vec<(String, String)>,
    title: String,
    message: String,
}

/// An API error as a page (GET) with the API's own message.
fn error_page(session: &Session, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Not found".to_owned(),
        s if s.is_server_error() => "Something went wrong".to_owned(),
        _ => "That did not work".to_owned(),
    };
    let page = ErrorPage { csrf: session.csrf.clone(), flashes: Vec::new(), title, message: e.message };
    render(&page, e.status)
}

/// The largest form the dashboard takes.
const MAX_FORM: usize = 64 * 1024;

/// A dashboard form of type `T` whose `csrf` field matched the session's
/// token (checked in constant time), with the session. A form without it,
/// or with another, is answered 403 before any handler runs.
pub struct CsrfForm<T> {
    pub session: Session,
    pub form: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let Some(session) = req.extensions().get::<Session>().cloned() else {
            return Err(Redirect::to("/login").into_response());
        };
        let body = axum::body::Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        if body.len() > MAX_FORM {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "That form is too large.").into_response());
        }
        let given = serde_urlencoded::from_bytes::<CsrfField>(&body).map(|f| f.csrf).unwrap_or_default();
        if !crate::crypto::constant_time_eq(&given, &session.csrf) {
            return Err(forbidden());
        }
        let form = serde_urlencoded::from_bytes::<T>(&body)
            .map_err(|e| error_page(&session, ApiError::bad_request(format!("the form is not what this page takes: {e}"))))?;
        Ok(CsrfForm { session, form })
    }
}

/// The app a dashboard route names, found once per request as the API's
/// [`AppPath`] finds it; an unknown app is an error page, not JSON.
pub struct PageApp(pub AppRow);

impl FromRequestParts<AppState> for PageApp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        match AppPath::from_request_parts(parts, state).await {
            Ok(AppPath(app)) => Ok(PageApp(app)),
            Err(e) => match parts.extensions.get::<Session>() {
                Some(session) => Err(error_page(session, e)),
                None => Err(e.into_response()),
            },
        }
    }
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "The form's CSRF token is missing or wrong: reload the page and try again.")
        .into_response()
}

// ---- sign in and out

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    flashes: Vec<(String, String)>,
    login_csrf: String,
}

async fn login_page(State(state): State<AppState>, peer: Peer, tls: Tls, headers: HeaderMap) -> Response {
    let secure = secure_of(&state, &headers, &peer, &tls);
    if let Some(id) = cookie_value(&headers, COOKIE) {
        if let Ok(Some(_)) = state.sessions.get(&state.store, &id).await {
            return Redirect::to("/").into_response();
        }
    }
    login_form(secure, Vec::new(), StatusCode::OK)
}

fn login_form(secure: bool, flashes: Vec<(String, String)>, status: StatusCode) -> Response {
    let login_csrf = hex::encode(crate::crypto::random_bytes::<16>());
    let mut response = render(&LoginPage { csrf: String::new(), flashes, login_csrf: login_csrf.clone() }, status);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(secure, LOGIN_COOKIE, &login_csrf, "/login", 3600));
    response
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    login_csrf: String,
}

/// Signs in with an email and password, or (for automation) an API token.
async fn login(State(state): State<AppState>, peer: Peer, tls: Tls, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let secure = secure_of(&state, &headers, &peer, &tls);
    let expected = cookie_value(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !crate::crypto::constant_time_eq(&form.login_csrf, &expected) {
        return forbidden();
    }
    let address = crate::http::access::client_address(&state, &headers, peer.as_ref().map(|Extension(c)| c.0));
    let signed_in: ApiResult<(crate::store::UserRow, Option<String>)> = async {
        if form.token.trim().is_empty() {
            let user = service::access::sign_in(&state, &form.email, &form.password, address).await?;
            return Ok((user, None));
        }
        let key = crate::http::access::limits::address_key(address);
        if let Some(seconds) = state.failures.refused(&[&key]) {
            return Err(ApiError::rate_limited(seconds));
        }
        match crate::http::access::principal_of_token(&state, form.token.trim()).await? {
            Some(p) if p.deploy_app().is_none() => Ok((p.user, p.token.map(|t| t.id))),
            Some(_) => Err(ApiError::forbidden("a deploy token cannot sign in to the dashboard: use your email and password, or your own token")),
            None => {
                crate::http::failed_attempt(&state, address, &[&key], None, "dashboard sign-in with a token that is not valid".into()).await;
                Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorId::Unauthorized, "That token is not valid: use one that `paas tokens:create` or `paas-server token:create NAME` printed."))
            }
        }
    }
    .await;
    let (user, token_id) = match signed_in {
        Ok(who) => who,
        Err(e) => {
            let retry = e.retry_after;
            let mut response = login_form(secure, vec![("error".to_owned(), e.message)], e.status);
            if let Some(seconds) = retry {
                response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            }
            return response;
        }
    };
    let id = match state.sessions.create(&state.store, &user.id, token_id.as_deref()).await {
        Ok(id) => id,
        Err(e) => return ApiError::from(e).into_response(),
    };
    tracing::info!(user = %user.email, "dashboard sign-in");
    let how = if token_id.is_some() { "dashboard, with a token" } else { "dashboard, with a password" };
    state.audit.record(crate::http::access::audit::Event::login(&user, address, how, 303)).await;
    let mut response = Redirect::to("/").into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(secure, COOKIE, &id, "/", state.sessions.ttl().as_secs()));
    h.append(header::SET_COOKIE, set_cookie(secure, LOGIN_COOKIE, "", "/login", 0));
    response
}

/// A form with nothing but its CSRF token.
#[derive(serde::Deserialize)]
struct Empty {}

async fn logout(State(state): State<AppState>, peer: Peer, tls: Tls, headers: HeaderMap, form: CsrfForm<Empty>) -> Response {
    if let Err(e) = state.sessions.remove(&state.store, &form.session.key).await {
        return ApiError::from(e).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    let secure = secure_of(&state, &headers, &peer, &tls);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(secure, COOKIE, "", "/", 0));
    response
}

// ---- pages

struct AppSummary {
    name: String,
    state: String,
    state_class: String,
    release: Option<i64>,
    web_url: String,
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    csrf: String,
    flashes: Vec<(String, String)>,
    apps: Vec<AppSummary>,
    /// A platform admin: the users page is linked.
    admin: bool,
    email: String,
}

/// An app's state in a word: deploying (a release not yet up, or dynos
/// starting), crashed, up, or no dynos.
async fn app_state(state: &AppState, app: &AppRow) -> ApiResult<String> {
    let dynos = service::dynos::list(state, app).await?;
    // The newest release is pending while no status is recorded for it.
    let newest_pending = service::releases::newest_pending(state, app).await?;
    Ok(if newest_pending || dynos.iter().any(|d| d.state == "starting") {
        "deploying"
    } else if dynos.iter().any(|d| d.state.starts_with("crashed") || d.state.starts_with("restarting")) {
        "crashed"
    } else if dynos.iter().any(|d| d.state == "up") {
        "up"
    } else {
        "no dynos"
    }
    .to_owned())
}

async fn apps_page(State(state): State<AppState>, Extension(session): Extension<Session>, Extension(principal): Extension<Principal>) -> Response {
    let result: ApiResult<Vec<AppSummary>> = async {
        let mut out = Vec::new();
        for row in service::access::visible_apps(&state, &principal).await? {
            let word = app_state(&state, &row).await?;
            let app = service::apps::to_wire(&state, &row).await?;
            out.push(AppSummary {
                state_class: word.replace(' ', "-"),
                state: word,
                name: app.name,
                release: app.current_release,
                web_url: app.web_url,
            });
        }
        Ok(out)
    }
    .await;
    match result {
        Ok(apps) => {
            let page = AppsPage { csrf: session.csrf.clone(), flashes: state.sessions.take_flashes(&session.key), apps, admin: principal.is_admin(), email: principal.user.email.clone() };
            render(&page, StatusCode::OK)
        }
        Err(e) => error_page(&session, e),
    }
}

struct BuildSummary {
    id: String,
    status: String,
    short_commit: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage {
    csrf: String,
    flashes: Vec<(String, String)>,
    app: paas_wire::App,
    current: Option<paas_wire::Release>,
    formation: Vec<paas_wire::Formation>,
    dynos: Vec<paas_wire::Dyno>,
    /// A viewer's values are None: names only.
    config: BTreeMap<String, Option<String>>,
    releases: Vec<paas_wire::Release>,
    builds: Vec<BuildSummary>,
    domains: Vec<paas_wire::Domain>,
    addons: Vec<AddonView>,
    /// What the signed-in user may do here: only those controls are shown.
    can_develop: bool,
    can_admin: bool,
    log_lines: Vec<String>,
    log_ps: String,
    log_source: String,
    log_stream: String,
    twelve: paas_wire::TwelveFactorReport,
    /// The last hour's metrics: totals, and charts drawn as SVG here.
    metrics: Option<(paas_wire::MetricsSummary, Vec<String>)>,
}

/// The app page's charts of an hour of metrics: requests (5xx beside),
/// service time percentiles, and each process type's memory (with its
/// limit) and CPU.
fn metric_charts(m: &paas_wire::AppMetrics) -> Vec<String> {
    use crate::metrics::chart::{draw, Line};
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).map(|d| d.timestamp()).unwrap_or_default();
    let from = parse(&m.since);
    let count = ((chrono::Utc::now().timestamp() - from) / 60 + 1).clamp(1, 24 * 60) as usize;
    let mut minutes: Vec<Option<&paas_wire::MetricsMinute>> = vec![None; count];
    for minute in &m.minutes {
        if let Some(slot) = usize::try_from((parse(&minute.at) - from) / 60).ok().and_then(|i| minutes.get_mut(i)) {
            *slot = Some(minute);
        }
    }
    let series = |f: &dyn Fn(&paas_wire::MetricsMinute) -> Option<f64>| minutes.iter().map(|m| m.and_then(f)).collect::<Vec<_>>();
    let line = |label: &str, values, dashed| Line { label: label.to_owned(), values, dashed };
    let hhmm = |t: &str| t.get(11..16).unwrap_or_default().to_owned();
    let (first, last) = (hhmm(&m.since), hhmm(&chrono::Utc::now().to_rfc3339()));
    let per_min = |v: f64| format!("{v:.0}/min");
    let ms = |v: f64| format!("{v:.0} ms");
    let mib = |v: f64| format!("{:.0} MiB", v / f64::from(1 << 20));
    let pct = |v: f64| format!("{v:.0}%");
    let mut charts = vec![
        draw(
            "Requests per minute, and 5xx",
            &[
                line("requests", series(&|m| Some(m.requests.requests as f64)), false),
                line("5xx", series(&|m| Some(m.requests.server_errors as f64).filter(|v| *v > 0.0)), false),
            ],
            true,
            &per_min,
            &first,
            &last,
        ),
        draw(
            "Service time (p50, p95, p99)",
            &[
                line("p50", series(&|m| m.requests.p50_ms), false),
                line("p95", series(&|m| m.requests.p95_ms), false),
                line("p99", series(&|m| m.requests.p99_ms), false),
            ],
            false,
            &ms,
            &first,
            &last,
        ),
    ];
    let types: std::collections::BTreeSet<&String> = m.minutes.iter().flat_map(|m| m.processes.keys()).collect();
    for t in types {
        charts.push(draw(
            &format!("{t} memory against its limit"),
            &[
                line(&format!("{t} memory"), series(&|m| m.processes.get(t).map(|p| p.memory_max_bytes as f64)), false),
                line("limit", series(&|m| m.processes.get(t).map(|p| p.memory_limit_bytes as f64)), true),
            ],
            false,
            &mib,
            &first,
            &last,
        ));
        charts.push(draw(&format!("{t} CPU"), &[line(&format!("{t} cpu"), series(&|m| m.processes.get(t).and_then(|p| p.cpu_percent)), false)], false, &pct, &first, &last));
    }
    charts
}

#[derive(serde::Deserialize, Default)]
struct LogFilter {
    #[serde(default)]
    ps: String,
    #[serde(default)]
    source: String,
}

async fn app_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(access): Extension<AppAccess>,
    Query(filter): Query<LogFilter>,
) -> Response {
    let row = access.app.clone();
    let result: ApiResult<AppPage> = async {
        let app = service::apps::to_wire(&state, &row).await?;
        let releases = service::releases::list(&state, &row).await?;
        let builds = service::builds::list(&state, &row).await?;
        let query = service::logs::LogQuery {
            lines: Some(LOG_LINES),
            tail: false,
            ps: Some(filter.ps.clone()).filter(|p| !p.is_empty()),
            source: Some(filter.source.clone()).filter(|s| !s.is_empty()),
        };
        let log_lines = service::logs::history(&state, &row, &query)?;
        let mut stream = format!("/app/{}/log-stream?lines={LOG_LINES}", app.name);
        for (k, v) in [("ps", &filter.ps), ("source", &filter.source)] {
            if !v.is_empty() {
                stream.push_str(&format!("&{k}={}", v.bytes().map(|b| format!("%{b:02X}")).collect::<String>()));
            }
        }
        Ok(AppPage {
            csrf: session.csrf.clone(),
            flashes: state.sessions.take_flashes(&session.key),
            current: releases.iter().find(|r| r.current).cloned(),
            formation: service::formation::show(&state, &row).await?,
            dynos: service::dynos::list(&state, &row).await?,
            config: service::config::show_to(&state, &access).await?,
            can_develop: access.role >= Some(Role::Developer),
            can_admin: access.role >= Some(Role::Admin),
            builds: builds
                .into_iter()
                .map(|b| BuildSummary { short_commit: b.commit.chars().take(7).collect(), id: b.id, status: b.status, created_at: b.created_at })
                .collect(),
            domains: service::domains::list(&state, &row).await?,
            addons: addon_views(&state, &row).await?,
            twelve: service::twelve::report(&state, &row).await?,
            metrics: service::metrics::app(&state, &row, "1h").ok().map(|m| (m.summary.clone(), metric_charts(&m))),
            releases,
            app,
            log_lines,
            log_ps: filter.ps,
            log_source: filter.source,
            log_stream: stream,
        })
    }
    .await;
    match result {
        Ok(page) => render(&page, StatusCode::OK),
        Err(e) => error_page(&session, e),
    }
}

#[derive(Template)]
#[template(path = "build.html")]
struct BuildPage {
    csrf: String,
    flashes: Vec<(String, String)>,
    app: String,
    build: paas_wire::Build,
    output: String,
}

async fn build_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    PageApp(app): PageApp,
    Path((_, build)): Path<(String, String)>,
) -> Response {
    match service::builds::show(&state, &app, &build).await {
        Ok(b) => {
            let page = BuildPage { csrf: session.csrf.clone(), flashes: Vec::new(), app: app.name, build: b.build, output: b.output };
            render(&page, StatusCode::OK)
        }
        Err(e) => error_page(&session, e),
    }
}

// ---- changes: each calls the service and shows its outcome

/// Shows a change's message (or its error's) on the app's page, where the
/// browser is sent back to.
fn flash_back(state: &AppState, session: &Session, app: &str, result: ApiResult<String>) -> Response {
    flash_to(state, session, &app_url(app), result)
}

/// What a change says happened on the dynos.
fn outcome(result: ApiResult<ChangeResult>, doing: &str) -> ApiResult<String> {
    let result = result?;
    let version = result.release.as_ref().map(|r| format!(" (v{})", r.version)).unwrap_or_default();
    let how = match result.deploy.state {
        DeployState::Serving => "done",
        DeployState::Pending => "still starting",
        DeployState::Superseded => "overtaken by a newer change",
        DeployState::Failed => "failed",
    };
    Ok(format!("{doing}{version}: {how}. {}", result.deploy.message))
}

fn app_url(app: &str) -> String {
    format!("/app/{app}")
}

#[derive(serde::Deserialize)]
struct NameForm {
    #[serde(default)]
    name: String,
}

async fn create_app(State(state): State<AppState>, Extension(principal): Extension<Principal>, CsrfForm { session, form }: CsrfForm<NameForm>) -> Response {
    match service::apps::create(&state, form.name.trim(), &principal).await {
        Ok(app) => {
            state.sessions.flash(&session.key, "ok", format!("Created {}. Deploy it with: git remote add paas {} && git push paas main", app.name, app.git_url));
            Redirect::to(&app_url(&app.name)).into_response()
        }
        Err(e) => {
            state.sessions.flash(&session.key, "error", e.message);
            Redirect::to("/").into_response()
        }
    }
}

#[derive(serde::Deserialize)]
struct ConfigForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

async fn set_config(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<ConfigForm>) -> Response {
    let key = form.key.trim();
    let patch = BTreeMap::from([(key.to_owned(), Some(form.value.clone()))]);
    let result = service::config::set(&state, &app, patch, Some(CHANGE_WAIT)).await;
    flash_back(&state, &session, &app.name, outcome(result, &format!("Setting {key}")))
}

async fn unset_config(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<ConfigForm>) -> Response {
    let key = form.key.trim();
    let patch = BTreeMap::from([(key.to_owned(), None)]);
    let result = service::config::set(&state, &app, patch, Some(CHANGE_WAIT)).await;
    flash_back(&state, &session, &app.name, outcome(result, &format!("Removing {key}")))
}

#[derive(serde::Deserialize)]
struct ScaleForm {
    #[serde(default)]
    process_type: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    size: String,
}

async fn scale(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<ScaleForm>) -> Response {
    let doing = format!("Scaling {} to {}", form.process_type, form.quantity);
    let result = async {
        let quantity = form.quantity.trim().parse::<i64>().map_err(|_| {
            ApiError::unprocessable(ErrorId::InvalidQuantity, format!("{:?} is not a number of dynos: give 0 to 100", form.quantity))
        })?;
        let size = Some(form.size.trim().to_owned()).filter(|s| !s.is_empty());
        let change = paas_wire::FormationChange { process_type: form.process_type.clone(), quantity: Some(quantity), size };
        outcome(service::formation::update(&state, &app, &[change], Some(CHANGE_WAIT)).await, &doing)
    }
    .await;
    flash_back(&state, &session, &app.name, result)
}

#[derive(serde::Deserialize)]
struct RestartForm {
    #[serde(default)]
    target: String,
}

async fn restart(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<RestartForm>) -> Response {
    let target = Some(form.target.trim()).filter(|t| !t.is_empty());
    let result = service::dynos::restart(&state, &app, target).await.and_then(|done| {
        if done.failures.is_empty() {
            Ok(format!("Restarted {}.", done.restarted.join(", ")))
        } else {
            Err(ApiError::unprocessable(
                ErrorId::RestartFailed,
                format!("Some replacements did not come up (the old dynos keep running): {}", done.failures.join("; ")),
            ))
        }
    });
    flash_back(&state, &session, &app.name, result)
}

#[derive(serde::Deserialize)]
struct RollbackForm {
    #[serde(default)]
    release: String,
}

async fn rollback(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<RollbackForm>) -> Response {
    let result = service::releases::rollback(&state, &app, &form.release, Some(CHANGE_WAIT)).await;
    flash_back(&state, &session, &app.name, outcome(result, &format!("Rolling back to {}", form.release)))
}

#[derive(serde::Deserialize)]
struct DomainForm {
    #[serde(default)]
    hostname: String,
}

async fn add_domain(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<DomainForm>) -> Response {
    let result = service::domains::add(&state, &app, &form.hostname).await;
    flash_back(&state, &session, &app.name, result.map(|d| format!("Added {}: point its DNS at this server.", d.hostname)))
}

async fn remove_domain(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<DomainForm>) -> Response {
    let result = service::domains::remove(&state, &app, &form.hostname).await;
    flash_back(&state, &session, &app.name, result.map(|d| format!("Removed {}.", d.hostname)))
}

/// An add-on as the app page shows it.
struct AddonView {
    name: String,
    service: String,
    state: String,
    reason: String,
    attached_as: String,
    /// `b004, 2 h ago`, or `none yet`.
    last_good: String,
    /// A failure newer than the last good backup: `b005 failed 3 min ago: why`.
    last_failed: String,
    /// The newest good backups, to download.
    backups: Vec<(String, String)>,
}

async fn addon_views(state: &AppState, app: &AppRow) -> ApiResult<Vec<AddonView>> {
    let mut out = Vec::new();
    for a in service::addons::list(state, app).await? {
        let backups = service::addons::backups(state, app, &a.name).await?;
        out.push(AddonView {
            service: format!("{} {}", a.service, a.version),
            state: a.state.clone(),
            reason: a.reason.clone().unwrap_or_default(),
            attached_as: a.attachments.iter().map(|t| format!("{} on {}", t.config_var, t.app)).collect::<Vec<_>>().join(", "),
            last_good: a
                .last_good_backup
                .as_ref()
                .map_or("none yet".to_owned(), |b| {
                    let note = b.reason.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
                    format!("{}, {}{note}", b.id, ago(b.finished_at.as_deref().unwrap_or(&b.started_at)))
                }),
            last_failed: a
                .last_failed_backup
                .as_ref()
                .map_or(String::new(), |b| format!("{} failed {}: {}", b.id, ago(&b.started_at), b.reason.as_deref().unwrap_or(""))),
            backups: backups
                .iter()
                .filter(|b| b.state == "succeeded")
                .take(5)
                .map(|b| (b.id.clone(), format!("{} {}, {} bytes, {}", b.id, b.kind, b.size.unwrap_or(0), ago(&b.started_at))))
                .collect(),
            name: a.name,
        });
    }
    Ok(out)
}

/// How long ago an RFC 3339 time was, as people say it.
fn ago(at: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) else { return at.to_owned() };
    let secs = (chrono::Utc::now() - t.to_utc()).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

#[derive(serde::Deserialize)]
struct AddonForm {
    #[serde(default)]
    service: String,
}

async fn create_addon(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<AddonForm>) -> Response {
    let body = paas_wire::AddonCreate { service: form.service.clone(), as_name: None, name: None };
    let result = service::addons::create(&state, &app, &body, None).await.map(|c| match c.addon.state.as_str() {
        "provisioned" => format!(
            "Created {} and attached it as {}.",
            c.addon.name,
            c.addon.attachments.first().map(|t| t.config_var.as_str()).unwrap_or("")
        ),
        _ => format!("{} did not come up: {}", c.addon.name, c.addon.reason.unwrap_or_default()),
    });
    flash_back(&state, &session, &app.name, result)
}

async fn capture_backup(
    State(state): State<AppState>,
    PageApp(app): PageApp,
    Path((_, addon)): Path<(String, String)>,
    CsrfForm { session, form: _ }: CsrfForm<Empty>,
) -> Response {
    let result = service::addons::capture(&state, &app, &addon).await;
    flash_back(&state, &session, &app.name, result.map(|b| format!("Backed up {addon}: {} ({} bytes, verified).", b.id, b.size.unwrap_or(0))))
}

async fn download_backup(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    PageApp(app): PageApp,
    Path((_, addon, backup)): Path<(String, String, String)>,
) -> Response {
    match api::addons::backup_download(&state, &app, &addon, &backup).await {
        Ok(r) => r,
        Err(e) => error_page(&session, e),
    }
}

#[derive(serde::Deserialize)]
struct DestroyForm {
    #[serde(default)]
    confirm: String,
}

async fn destroy(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<DestroyForm>) -> Response {
    if form.confirm.trim() != app.name {
        state.sessions.flash(&session.key, "error", format!("Type the app's name, {}, to destroy it.", app.name));
        return Redirect::to(&app_url(&app.name)).into_response();
    }
    match service::apps::destroy(&state, &app).await {
        Ok(_) => {
            state.sessions.flash(&session.key, "ok", format!("Destroyed {}.", app.name));
            Redirect::to("/").into_response()
        }
        Err(e) => flash_back(&state, &session, &app.name, Err(e)),
    }
}

// ---- people

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    csrf: String,
    flashes: Vec<(String, String)>,
    app: String,
    people: Vec<paas_wire::Collaborator>,
    can_admin: bool,
}

async fn access_page(State(state): State<AppState>, Extension(session): Extension<Session>, Extension(access): Extension<AppAccess>) -> Response {
    match service::access::list(&state, &access.app).await {
        Ok(people) => {
            let page = AccessPage {
                csrf: session.csrf.clone(),
                flashes: state.sessions.take_flashes(&session.key),
                app: access.app.name.clone(),
                people,
                can_admin: access.role >= Some(Role::Admin),
            };
            render(&page, StatusCode::OK)
        }
        Err(e) => error_page(&session, e),
    }
}

#[derive(serde::Deserialize)]
struct AccessForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Gives someone a role on the app, or changes the one they have.
async fn set_access(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<AccessForm>) -> Response {
    let result = async {
        let email = crate::http::access::parse_email(&form.email)?;
        let has = match state.store.user_by_email(&email).await? {
            Some(u) => state.store.app_role(&app.id, &u.id).await?.is_some(),
            None => false,
        };
        let c = service::access::set(&state, &app, &email, &form.role, has).await?;
        Ok(format!("{} is now a {} of {}.", c.email, c.role, app.name))
    }
    .await;
    flash_to(&state, &session, &format!("/app/{}/access", app.name), result)
}

async fn remove_access(State(state): State<AppState>, PageApp(app): PageApp, CsrfForm { session, form }: CsrfForm<AccessForm>) -> Response {
    let result = service::access::remove(&state, &app, &form.email).await.map(|email| format!("{email} has no role on {} now.", app.name));
    flash_to(&state, &session, &format!("/app/{}/access", app.name), result)
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    csrf: String,
    flashes: Vec<(String, String)>,
    users: Vec<paas_wire::User>,
    min_password: usize,
}

async fn users_page(State(state): State<AppState>, Extension(session): Extension<Session>) -> Response {
    match service::access::users(&state).await {
        Ok(users) => {
            let page = UsersPage {
                csrf: session.csrf.clone(),
                flashes: state.sessions.take_flashes(&session.key),
                users,
                min_password: crate::http::access::MIN_PASSWORD,
            };
            render(&page, StatusCode::OK)
        }
        Err(e) => error_page(&session, e),
    }
}

#[derive(serde::Deserialize)]
struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    admin: Option<String>,
}

async fn create_user(State(state): State<AppState>, CsrfForm { session, form }: CsrfForm<UserForm>) -> Response {
    let result = service::access::create_user(&state, &form.email, &form.password, form.admin.is_some()).await;
    flash_to(&state, &session, "/admin/users", result.map(|u| format!("Added {}{}.", u.email, if u.admin { ", a platform admin" } else { "" })))
}

async fn remove_user(State(state): State<AppState>, CsrfForm { session, form }: CsrfForm<UserForm>) -> Response {
    let result = service::access::remove_user(&state, &form.email).await;
    flash_to(&state, &session, "/admin/users", result.map(|email| format!("Removed {email}.")))
}

/// Shows an outcome's message (or its error's) on the page at `to`.
fn flash_to(state: &AppState, session: &Session, to: &str, result: ApiResult<String>) -> Response {
    match result {
        Ok(message) => state.sessions.flash(&session.key, "ok", message),
        Err(e) => state.sessions.flash(&session.key, "error", e.message),
    }
    Redirect::to(to).into_response()
}

// ---- static files, compiled in

async fn css() -> Response {
    static_file("text/css; charset=utf-8", include_str!("../../web/static/dashboard.css"))
}

async fn js() -> Response {
    static_file("text/javascript; charset=utf-8", include_str!("../../web/static/dashboard.js"))
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}
