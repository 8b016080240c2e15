//! `/apps/{app}/logs` (history and live tail as chunked plain text, for
//! the CLI and curl), `/apps/{app}/log-stream` (Server-Sent Events for
//! browsers, resuming from `Last-Event-ID`) and `/apps/{app}/log-drains`.
//! Both streams sit behind the token check like every route; the log
//! router does the rest.

use paas_wire::ErrorId;
use crate::http::{AppPath, ApiError, ApiResult, AppState, Json};
use crate::logs::{drain, LogLine};
use crate::service::logs::LogQuery;
use crate::store::StoreError;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use futures_util::StreamExt;
use paas_wire::{LogDrain, LogDrainCreate, LogEvent};
use std::sync::Arc;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/logs", get(logs))
        .route("/apps/{app}/log-stream", get(stream))
        .route("/apps/{app}/log-drains", get(list_drains).post(add_drain))
        .route("/apps/{app}/log-drains/{drain}", delete(remove_drain))
}

/// The app's recent lines as plain text, one a line, as `paas logs`
/// prints them; with `tail=true` the response stays open for new ones.
pub(crate) async fn logs(State(state): State<AppState>, app: AppPath, Query(q): Query<LogQuery>) -> ApiResult<Response> {
    let filter = q.filter()?;
    let tail = state.logs.tail(&app.name, filter, q.lines(), None, q.tail);
    let body = tail.into_chunks(512).map(Ok::<_, std::convert::Infallible>);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        Body::from_stream(body),
    )
        .into_response())
}

fn event_of(line: &LogLine) -> LogEvent {
    LogEvent {
        seq: line.seq,
        time: line.time(),
        source: line.source.as_str().to_owned(),
        dyno: line.dyno.clone(),
        text: line.text.clone(),
        line: line.heroku().to_owned(),
    }
}

/// Server-Sent Events: the recent lines, then new ones as they come. Each
/// event's id is the line's number, so a browser that reconnects with
/// `Last-Event-ID` gets what it missed (what is still held) and no repeats.
pub(crate) async fn stream(
    State(state): State<AppState>,
    app: AppPath,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let filter = q.filter()?;
    let after = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        None | Some("") => None,
        Some(id) => Some(id.trim().parse::<u64>().map_err(|_| ApiError::bad_request("Last-Event-ID must be a line number"))?),
    };
    let tail = state.logs.tail(&app.name, filter, q.lines(), after, true);
    let events = tail.into_stream().map(|line: Arc<LogLine>| {
        let data = serde_json::to_string(&event_of(&line)).unwrap_or_default();
        let event = if line.seq > 0 { Event::default().id(line.seq.to_string()) } else { Event::default() };
        Ok::<_, std::convert::Infallible>(event.event("line").data(data))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// A drain as the API shows it: its URL opened and redacted.
fn drain_to_wire(state: &AppState, d: &crate::store::DrainRow) -> ApiResult<LogDrain> {
    let url = state.cipher.open_str(&crate::crypto::drain_owner(&d.app_id), &d.url)?;
    Ok(LogDrain { id: d.id.clone(), url: paas_wire::redact_url(&url), token: d.token.clone(), created_at: d.created_at.clone() })
}

pub(crate) async fn list_drains(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<LogDrain>>> {
    let drains = state.store.drains(&app.id).await?;
    Ok(Json(drains.iter().map(|d| drain_to_wire(&state, d)).collect::<ApiResult<_>>()?))
}

pub(crate) async fn add_drain(
    State(state): State<AppState>,
    app: AppPath,
    Json(body): Json<LogDrainCreate>,
) -> ApiResult<(StatusCode, Json<LogDrain>)> {
    let target = drain::parse_url(&body.url).map_err(|e| ApiError::unprocessable(ErrorId::InvalidDrain, e))?;
    // Refused now with the reason, not later at every delivery. A name that
    // does not resolve yet is taken (delivery retries); every delivery
    // checks again.
    let (host, port) = match &target {
        drain::Target::Syslog { host, port, .. } => (host.clone(), *port),
        drain::Target::Https { url } => {
            let parsed = reqwest::Url::parse(url).map_err(|e| ApiError::unprocessable(ErrorId::InvalidDrain, e.to_string()))?;
            (parsed.host_str().unwrap_or_default().to_owned(), parsed.port_or_known_default().unwrap_or(443))
        }
    };
    if let Err(crate::outbound::Refusal::Private) = state.settings.server.outbound.resolve(&host, port).await {
        return Err(ApiError::unprocessable(
            ErrorId::DrainRefused,
            format!(
                "drain {} points to a loopback, link-local or private address: drains go to public addresses unless the server's operator allows the range in PAAS_OUTBOUND_ALLOW",
                paas_wire::redact_url(&body.url)
            ),
        ));
    }
    let owner = crate::crypto::drain_owner(&app.id);
    let (sealed, digest) = (state.cipher.seal_str(&owner, &body.url), state.cipher.digest(&owner, &body.url));
    let row = match state.store.add_drain(&app.id, &sealed, &digest).await {
        Ok(row) => row,
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorId::DrainExists,
                format!("{} already drains to {}: see `paas drains -a {}`", app.name, paas_wire::redact_url(&body.url), app.name),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    state.logs.start_drain(drain::DrainSpec { id: row.id.clone(), app: app.name.clone(), url: body.url.clone(), token: row.token.clone() });
    tracing::info!(app = %app.name, drain = %paas_wire::redact_url(&body.url), "drain added");
    Ok((StatusCode::CREATED, Json(drain_to_wire(&state, &row)?)))
}

/// Removes a drain named by its id or its URL (URL-encoded in the path).
pub(crate) async fn remove_drain(State(state): State<AppState>, app: AppPath, Path((_, drain)): Path<(String, String)>) -> ApiResult<Json<LogDrain>> {
    let digest = state.cipher.digest(&crate::crypto::drain_owner(&app.id), &drain);
    match state.store.remove_drain(&app.id, &drain, &digest).await? {
        Some(row) => {
            state.logs.stop_drain(&row.id);
            let shown = drain_to_wire(&state, &row)?;
            tracing::info!(app = %app.name, drain = %shown.url, "drain removed");
            Ok(Json(shown))
        }
        None => Err(ApiError::not_found(format!(
            "{} has no drain {}: see `paas drains -a {}`",
            app.name,
            paas_wire::redact_url(&drain),
            app.name
        ))),
    }
}
