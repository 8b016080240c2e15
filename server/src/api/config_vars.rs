//! `/apps/{app}/config-vars`: read, and change with a PATCH in which `null`
//! unsets a key. Every change is a new release, made by the release service.

use super::WaitQuery;
use crate::http::{ApiResult, AppState, Json};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use paas_wire::{ChangeResult, ConfigPatch, ConfigVars};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/config-vars", get(show).patch(update))
}

pub(crate) async fn show(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<ConfigVars>> {
    let app = state.app(&app).await?;
    Ok(Json(state.releases.config(&app).await?))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(wait): Query<WaitQuery>,
    Json(patch): Json<ConfigPatch>,
) -> ApiResult<Response> {
    let app = state.app(&app).await?;
    let (release, vars) = state.releases.set_config(&app, patch).await?;
    let version = match &release {
        Some(r) => Some(r.version),
        None => state.store.current_release(&app.id).await?.map(|r| r.version),
    };
    let deploy = state.releases.converge(&app, version, wait.duration()).await;
    if wait.duration().is_none() {
        let mut headers = HeaderMap::new();
        if let Some(r) = &release {
            headers.insert("paas-release", r.version.into());
        }
        return Ok((headers, Json(vars)).into_response());
    }
    let release = match release {
        Some(r) => Some(super::releases::to_wire(&r, true)?),
        None => None,
    };
    Ok(Json(ChangeResult { release, config_vars: Some(vars), formation: None, deploy }).into_response())
}
