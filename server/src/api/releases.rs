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

/// A release as the API shows it; `status` is the newest status record's
/// (`pending` without one).
pub(crate) fn to_wire(r: &ReleaseRow, current: bool) -> ApiResult<Release> {
    with_status(r, current, None)
}

fn with_status(r: &ReleaseRow, current: bool, status: Option<&(String, String)>) -> ApiResult<Release> {
    Ok(Release {
        status: status.map_or_else(|| "pending".to_owned(), |s| s.0.clone()),
        status_detail: status.map(|s| s.1.clone()).unwrap_or_default(),
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

/// The release the dynos run: the newest with a build that has not failed.
pub(crate) async fn running_release_id(state: &AppState, app: &crate::store::AppRow) -> ApiResult<Option<String>> {
    Ok(state.store.desired_release(&app.id).await?.map(|r| r.id))
}

pub(crate) async fn list(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Release>>> {
    let app = state.app(&app).await?;
    let rows = state.store.list_releases(&app.id).await?;
    let statuses = state.store.release_statuses(&app.id).await?;
    let current = running_release_id(&state, &app).await?;
    let out = rows
        .iter()
        .enumerate()
        .map(|(i, r)| with_status(r, current.as_ref().map_or(i == 0, |c| *c == r.id), statuses.get(&r.id)))
        .collect::<ApiResult<_>>()?;
    Ok(Json(out))
}

pub(crate) async fn show(State(state): State<AppState>, Path((app, which)): Path<(String, String)>) -> ApiResult<Json<Release>> {
    let app = state.app(&app).await?;
    let r = state.releases.find(&app, &which).await?;
    let current = match running_release_id(&state, &app).await? {
        Some(id) => id == r.id,
        None => state.store.current_release(&app.id).await?.is_some_and(|c| c.id == r.id),
    };
    let statuses = state.store.release_statuses(&app.id).await?;
    Ok(Json(with_status(&r, current, statuses.get(&r.id))?))
}

pub(crate) async fn rollback(
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
