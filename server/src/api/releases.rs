//! `/apps/{app}/releases`: the append-only release history, and rollback
//! (`POST` naming an earlier release); see [`crate::service::releases`].

use super::WaitQuery;
use crate::http::{ApiError, ApiResult, AppPath, AppState, Json};
use crate::service::releases;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use paas_wire::{Release, ReleaseCreate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/releases", get(list).post(rollback))
        .route("/apps/{app}/releases/{release}", get(show))
        .route("/apps/{app}/releases/{release}/output", get(output))
}

async fn list(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<Release>>> {
    Ok(Json(releases::list(&state, &app).await?))
}

async fn show(State(state): State<AppState>, app: AppPath, Path((_, which)): Path<(String, String)>) -> ApiResult<Json<Release>> {
    Ok(Json(releases::show(&state, &app, &which).await?))
}

async fn output(State(state): State<AppState>, app: AppPath, Path((_, which)): Path<(String, String)>) -> ApiResult<Json<paas_wire::ReleaseOutput>> {
    Ok(Json(releases::output(&state, &app, &which).await?))
}

async fn rollback(State(state): State<AppState>, app: AppPath, Query(wait): Query<WaitQuery>, Json(body): Json<ReleaseCreate>) -> ApiResult<Response> {
    let result = releases::rollback(&state, &app, &body.release, wait.duration()).await?;
    if wait.duration().is_some() {
        return Ok((StatusCode::CREATED, Json(result)).into_response());
    }
    let release = result.release.ok_or_else(|| ApiError::internal("a rollback made no release"))?;
    Ok((StatusCode::CREATED, Json(release)).into_response())
}
