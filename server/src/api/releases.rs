//! `/apps/{app}/releases`: the append-only release history, and rollback
//! (`POST` naming an earlier release), which the release service turns into
//! a new release carrying that release's build and config.

use super::WaitQuery;
use crate::http::{ApiResult, AppState, Json};
use crate::store::ReleaseRow;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use paas_wire::{ChangeResult, Release, ReleaseCreate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/releases", get(list).post(rollback))
        .route("/apps/{app}/releases/{release}", get(show))
}

pub(crate) fn to_wire(r: &ReleaseRow, current: bool) -> ApiResult<Release> {
    Ok(Release {
        id: r.id.clone(),
        version: r.version,
        description: r.description.clone(),
        build_id: r.build_id.clone(),
        image: r.image.clone(),
        process_types: r.process_types()?,
        created_at: r.created_at.clone(),
        current,
        health_path: r.health_path.clone(),
    })
}

async fn list(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Release>>> {
    let app = state.app(&app).await?;
    let rows = state.store.list_releases(&app.id).await?;
    let out = rows.iter().enumerate().map(|(i, r)| to_wire(r, i == 0)).collect::<ApiResult<_>>()?;
    Ok(Json(out))
}

async fn show(State(state): State<AppState>, Path((app, which)): Path<(String, String)>) -> ApiResult<Json<Release>> {
    let app = state.app(&app).await?;
    let r = state.releases.find(&app, &which).await?;
    let current = state.store.current_release(&app.id).await?.is_some_and(|c| c.id == r.id);
    Ok(Json(to_wire(&r, current)?))
}

async fn rollback(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(wait): Query<WaitQuery>,
    Json(body): Json<ReleaseCreate>,
) -> ApiResult<Response> {
    let app = state.app(&app).await?;
    let release = state.releases.rollback(&app, &body.release).await?;
    let deploy = state.releases.converge(&app, Some(release.version), wait.duration()).await;
    let release = to_wire(&release, true)?;
    if wait.duration().is_none() {
        return Ok((StatusCode::CREATED, Json(release)).into_response());
    }
    Ok((StatusCode::CREATED, Json(ChangeResult { release: Some(release), config_vars: None, formation: None, deploy }))
        .into_response())
}
