//! The web dashboard on the API listener at `/`: server-rendered pages
//! (askama templates in `web/templates`) over the API's own handlers, so no
//! rule is written twice: a form post calls the same function the JSON
//! route does (`api::config_vars::update`, `api::formation::update`, ...)
//! and shows its outcome or its error message.
//!
//! Safety: every page and stream needs a session (made by signing in with
//! an API token; the cookie is HttpOnly, SameSite=Strict, Secure when the
//! browser came over TLS (a trusted proxy's `X-Forwarded-Proto`), and
//! expires); every POST carries the session's CSRF
//! token (sign-in, a double-submit token); templates escape every value;
//! a strict Content-Security-Policy allows only the dashboard's own script
//! and stylesheet. Everything works without JavaScript but live logs.

use crate::api;
use crate::http::session::Session;
use crate::http::{ApiError, ApiResult, AppState, Json};
use askama::Template;
use axum::extract::{Form, Path, Query, Request, State};
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
const CHANGE_WAIT: u64 = 30;

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
        .route("/app/{app}/builds/{build}", get(build_page))
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
        || peer.is_some_and(|p| state.settings.trusted_proxies.contains(&p.ip()))
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

/// Middleware: a live session, or the browser goes to sign in.
async fn require_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match cookie_value(req.headers(), COOKIE).and_then(|id| state.sessions.get(&id)) {
        Some(session) => {
            req.extensions_mut().insert(session);
            next.run(req).await
        }
        None => {
            if req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream")) {
                return (StatusCode::UNAUTHORIZED, "sign in again").into_response();
            }
            Redirect::to("/login").into_response()
        }
    }
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

/// Checks a form's CSRF token against the session's.
fn csrf_ok(session: &Session, given: &str) -> bool {
    crate::crypto::constant_time_eq(given, &session.csrf)
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
    login_form(&state, &headers, secure, Vec::new(), StatusCode::OK)
}

fn login_form(state: &AppState, headers: &HeaderMap, secure: bool, flashes: Vec<(String, String)>, status: StatusCode) -> Response {
    if cookie_value(headers, COOKIE).and_then(|id| state.sessions.get(&id)).is_some() {
        return Redirect::to("/").into_response();
    }
    let login_csrf = hex::encode(crate::crypto::random_bytes::<16>());
    let mut response = render(&LoginPage { csrf: String::new(), flashes, login_csrf: login_csrf.clone() }, status);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(secure, LOGIN_COOKIE, &login_csrf, "/login", 3600));
    response
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    login_csrf: String,
}

async fn login(State(state): State<AppState>, peer: Peer, tls: Tls, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let secure = secure_of(&state, &headers, &peer, &tls);
    let expected = cookie_value(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !crate::crypto::constant_time_eq(&form.login_csrf, &expected) {
        return forbidden();
    }
    match state.store.verify_token(form.token.trim()).await {
        Ok(Some(name)) => {
            let id = state.sessions.create();
            tracing::info!(token = %name, "dashboard sign-in");
            let mut response = Redirect::to("/").into_response();
            let h = response.headers_mut();
            h.append(header::SET_COOKIE, set_cookie(secure, COOKIE, &id, "/", state.sessions.ttl().as_secs()));
            h.append(header::SET_COOKIE, set_cookie(secure, LOGIN_COOKIE, "", "/login", 0));
            response
        }
        Ok(None) => {
            let flash = vec![("error".to_owned(), "That token is not valid: use one that `paas-server token:create NAME` printed.".to_owned())];
            login_form(&state, &headers, secure, flash, StatusCode::UNAUTHORIZED)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    peer: Peer,
    tls: Tls,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !csrf_ok(&session, &form.csrf) {
        return forbidden();
    }
    state.sessions.remove(&session.key);
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
}

/// An app's state in a word: deploying (a release not yet up, or dynos
/// starting), crashed, up, or no dynos.
async fn app_state(state: &AppState, app: &paas_wire::App) -> ApiResult<String> {
    let dynos = api::dynos::list(State(state.clone()), Path(app.name.clone())).await?.0;
    // The newest release is pending while no status is recorded for it.
    let row = state.app(&app.name).await?;
    let newest = state.store.current_release(&row.id).await?;
    let statuses = state.store.release_statuses(&row.id).await?;
    let newest_pending = newest.is_some_and(|r| r.build_id.is_some() && !statuses.contains_key(&r.id));
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

async fn apps_page(State(state): State<AppState>, Extension(session): Extension<Session>) -> Response {
    let result: ApiResult<Vec<AppSummary>> = async {
        let mut out = Vec::new();
        for app in api::apps::list(State(state.clone())).await?.0 {
            let word = app_state(&state, &app).await?;
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
        Ok(apps) => render(&AppsPage { csrf: session.csrf.clone(), flashes: state.sessions.take_flashes(&session.key), apps }, StatusCode::OK),
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
    config: BTreeMap<String, String>,
    releases: Vec<paas_wire::Release>,
    builds: Vec<BuildSummary>,
    domains: Vec<paas_wire::Domain>,
    log_lines: Vec<String>,
    log_ps: String,
    log_source: String,
    log_stream: String,
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
    Path(name): Path<String>,
    Query(filter): Query<LogFilter>,
) -> Response {
    let result: ApiResult<AppPage> = async {
        let s = || State(state.clone());
        let p = || Path(name.clone());
        let app = api::apps::show(s(), p()).await?.0;
        let releases = api::releases::list(s(), p()).await?.0;
        let builds = api::builds::list(s(), p()).await?.0;
        let query = api::logs::LogQuery {
            lines: Some(LOG_LINES),
            tail: false,
            ps: Some(filter.ps.clone()).filter(|p| !p.is_empty()),
            source: Some(filter.source.clone()).filter(|s| !s.is_empty()),
        };
        let log_lines = api::logs::history(&state, &app.name, &query)?;
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
            formation: api::formation::show(s(), p()).await?.0,
            dynos: api::dynos::list(s(), p()).await?.0,
            config: api::config_vars::show(s(), p()).await?.0,
            builds: builds
                .into_iter()
                .map(|b| BuildSummary { short_commit: b.commit.chars().take(7).collect(), id: b.id, status: b.status, created_at: b.created_at })
                .collect(),
            domains: api::domains::list(s(), p()).await?.0,
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
    Path((app, build)): Path<(String, String)>,
) -> Response {
    match api::builds::show(State(state.clone()), Path((app.clone(), build))).await {
        Ok(Json(b)) => {
            let page = BuildPage { csrf: session.csrf.clone(), flashes: Vec::new(), app, build: b.build, output: b.output };
            render(&page, StatusCode::OK)
        }
        Err(e) => error_page(&session, e),
    }
}

// ---- changes: each calls the API's handler and shows its outcome

/// Runs a change for `app` after the CSRF check; its message (or the
/// error's) is shown on the page the browser is sent back to.
async fn change<F>(state: &AppState, session: &Session, csrf: &str, back: String, f: F) -> Response
where
    F: std::future::Future<Output = ApiResult<String>>,
{
    if !csrf_ok(session, csrf) {
        return forbidden();
    }
    match f.await {
        Ok(message) => state.sessions.flash(&session.key, "ok", message),
        Err(e) => state.sessions.flash(&session.key, "error", e.message),
    }
    Redirect::to(&back).into_response()
}

/// What a `?wait=` change says happened on the dynos.
async fn outcome(response: ApiResult<Response>, doing: &str) -> ApiResult<String> {
    let response = response?;
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.map_err(ApiError::internal)?;
    let result: ChangeResult = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    let version = result.release.as_ref().map(|r| format!(" (v{})", r.version)).unwrap_or_default();
    let how = match result.deploy.state {
        DeployState::Serving => "done",
        DeployState::Pending => "still starting",
        DeployState::Superseded => "overtaken by a newer change",
        DeployState::Failed => "failed",
    };
    Ok(format!("{doing}{version}: {how}. {}", result.deploy.message))
}

fn wait() -> Query<api::WaitQuery> {
    Query(api::WaitQuery { wait: Some(CHANGE_WAIT) })
}

fn app_url(app: &str) -> String {
    format!("/app/{app}")
}

#[derive(serde::Deserialize)]
struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn create_app(State(state): State<AppState>, Extension(session): Extension<Session>, Form(form): Form<NameForm>) -> Response {
    if !csrf_ok(&session, &form.csrf) {
        return forbidden();
    }
    let body = paas_wire::AppCreate { name: form.name.trim().to_owned() };
    match api::apps::create(State(state.clone()), Json(body)).await {
        Ok((_, Json(app))) => {
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
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

async fn set_config(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<ConfigForm>,
) -> Response {
    let patch = BTreeMap::from([(form.key.trim().to_owned(), Some(form.value))]);
    let doing = format!("Setting {}", form.key.trim());
    let run = api::config_vars::update(State(state.clone()), Path(app.clone()), wait(), Json(patch));
    change(&state, &session, &form.csrf, app_url(&app), async { outcome(run.await, &doing).await }).await
}

async fn unset_config(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<ConfigForm>,
) -> Response {
    let key = form.key.trim();
    let patch = BTreeMap::from([(key.to_owned(), None)]);
    let doing = format!("Removing {key}");
    let run = api::config_vars::update(State(state.clone()), Path(app.clone()), wait(), Json(patch));
    change(&state, &session, &form.csrf, app_url(&app), async { outcome(run.await, &doing).await }).await
}

#[derive(serde::Deserialize)]
struct ScaleForm {
    #[serde(default)]
    csrf: String,
    process_type: String,
    quantity: String,
    #[serde(default)]
    size: String,
}

async fn scale(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<ScaleForm>,
) -> Response {
    let back = app_url(&app);
    let doing = format!("Scaling {} to {}", form.process_type, form.quantity);
    let work = async {
        let quantity = form.quantity.trim().parse::<i64>().map_err(|_| {
            ApiError::unprocessable("invalid_quantity", format!("{:?} is not a number of dynos: give 0 to 100", form.quantity))
        })?;
        let size = Some(form.size.trim().to_owned()).filter(|s| !s.is_empty());
        let change = paas_wire::FormationChange { process_type: form.process_type.clone(), quantity: Some(quantity), size };
        let body = paas_wire::FormationUpdate { updates: vec![change] };
        outcome(api::formation::update(State(state.clone()), Path(app.clone()), wait(), Json(body)).await, &doing).await
    };
    change(&state, &session, &form.csrf, back, work).await
}

#[derive(serde::Deserialize)]
struct RestartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
}

async fn restart(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<RestartForm>,
) -> Response {
    let work = async {
        let s = State(state.clone());
        let done = match form.target.trim() {
            "" => api::dynos::restart_all(s, Path(app.clone())).await?,
            t => api::dynos::restart_one(s, Path((app.clone(), t.to_owned()))).await?,
        }
        .0;
        if done.failures.is_empty() {
            Ok(format!("Restarted {}.", done.restarted.join(", ")))
        } else {
            Err(ApiError::unprocessable("restart_failed", format!("Some replacements did not come up (the old dynos keep running): {}", done.failures.join("; "))))
        }
    };
    change(&state, &session, &form.csrf, app_url(&app), work).await
}

#[derive(serde::Deserialize)]
struct RollbackForm {
    #[serde(default)]
    csrf: String,
    release: String,
}

async fn rollback(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<RollbackForm>,
) -> Response {
    let doing = format!("Rolling back to {}", form.release);
    let body = paas_wire::ReleaseCreate { release: form.release.clone() };
    let run = api::releases::rollback(State(state.clone()), Path(app.clone()), wait(), Json(body));
    change(&state, &session, &form.csrf, app_url(&app), async { outcome(run.await, &doing).await }).await
}

#[derive(serde::Deserialize)]
struct DomainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hostname: String,
}

async fn add_domain(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<DomainForm>,
) -> Response {
    let body = paas_wire::DomainCreate { hostname: form.hostname.trim().to_owned() };
    let work = async {
        let (_, Json(d)) = api::domains::add(State(state.clone()), Path(app.clone()), Json(body)).await?;
        Ok(format!("Added {}: point its DNS at this server.", d.hostname))
    };
    change(&state, &session, &form.csrf, app_url(&app), work).await
}

async fn remove_domain(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<DomainForm>,
) -> Response {
    let work = async {
        let Json(d) = api::domains::remove(State(state.clone()), Path((app.clone(), form.hostname.clone()))).await?;
        Ok(format!("Removed {}.", d.hostname))
    };
    change(&state, &session, &form.csrf, app_url(&app), work).await
}

#[derive(serde::Deserialize)]
struct DestroyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn destroy(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(app): Path<String>,
    Form(form): Form<DestroyForm>,
) -> Response {
    if !csrf_ok(&session, &form.csrf) {
        return forbidden();
    }
    if form.confirm.trim() != app {
        state.sessions.flash(&session.key, "error", format!("Type the app's name, {app}, to destroy it."));
        return Redirect::to(&app_url(&app)).into_response();
    }
    match api::apps::destroy(State(state.clone()), Path(app.clone())).await {
        Ok(_) => {
            state.sessions.flash(&session.key, "ok", format!("Destroyed {app}."));
            Redirect::to("/").into_response()
        }
        Err(e) => {
            state.sessions.flash(&session.key, "error", e.message);
            Redirect::to(&app_url(&app)).into_response()
        }
    }
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
