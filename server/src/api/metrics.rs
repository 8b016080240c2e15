//! `GET /apps/{app}/metrics?since=1h` (see [`crate::service::metrics`]) and
//! Prometheus's `GET /metrics` (a platform admin's, or on
//! `PAAS_METRICS_LISTEN`'s listener of its own without a credential).

use crate::http::{ApiResult, AppPath, AppState, Json};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use paas_wire::AppMetrics;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/metrics", get(app)).route("/metrics", get(prometheus))
}

/// The listener of `PAAS_METRICS_LISTEN`: `/metrics` alone.
pub fn listener(state: AppState) -> axum::Router {
    axum::Router::new().route("/metrics", get(prometheus)).with_state(state)
}

#[derive(serde::Deserialize)]
struct Window {
    since: Option<String>,
}

async fn app(State(state): State<AppState>, app: AppPath, Query(w): Query<Window>) -> ApiResult<Json<AppMetrics>> {
    Ok(Json(crate::service::metrics::app(&state, &app, w.since.as_deref().unwrap_or("1h"))?))
}

async fn prometheus(State(state): State<AppState>) -> Response {
    let text = crate::service::metrics::prometheus(&state);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
