//! `/apps/{app}/config-vars`: read, and change with a PATCH in which `null`
//! unsets a key (see [`crate::service::config`]).

use super::WaitQuery;
use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::config;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crate::http::access::AppAccess;
use axum::Extension;
use paas_wire::ConfigPatch;
use std::collections::BTreeMap;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/config-vars", get(show).patch(update))
}

/// The vars; a viewer gets each value as null (names, not values).
async fn show(State(state): State<AppState>, Extension(access): Extension<AppAccess>) -> ApiResult<Json<BTreeMap<String, Option<String>>>> {
    Ok(Json(config::show_to(&state, &access).await?))
}

async fn update(State(state): State<AppState>, app: AppPath, Query(wait): Query<WaitQuery>, Json(patch): Json<ConfigPatch>) -> ApiResult<Response> {
    let result = config::set(&state, &app, patch, wait.duration()).await?;
    if wait.duration().is_some() {
        return Ok(Json(result).into_response());
    }
    // Heroku's shape: the vars, and the release made in a header.
    let mut headers = HeaderMap::new();
    if let Some(r) = &result.release {
        headers.insert("paas-release", r.version.into());
    }
    Ok((headers, Json(result.config_vars.unwrap_or_default())).into_response())
}
