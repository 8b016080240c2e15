//! `/apps/{app}/releases`: the append-only release history, and rollback
//! (`POST` naming an earlier release), which appends a new release carrying
//! that release's image and config.

use super::error::Json;
use super::{ApiError, ApiResult, AppState};
use crate::store::{AppRow, NewRelease, ReleaseRow, StoreError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use paas_wire::{Release, ReleaseCreate};
use tracing::info;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/releases", get(list).post(rollback))
        .route("/apps/{app}/releases/{release}", get(show))
}

fn to_wire(r: &ReleaseRow, current: bool) -> ApiResult<Release> {
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

/// Finds a release by UUID, `N` or `vN`.
async fn find(state: &AppState, app: &AppRow, which: &str) -> ApiResult<ReleaseRow> {
    let version = which.strip_prefix('v').unwrap_or(which).parse::<i64>().ok();
    let found = match version {
        Some(v) => state.store.release_by_version(&app.id, v).await,
        None => state.store.release_by_id(&app.id, which).await,
    };
    match found {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound) => Err(ApiError::not_found(format!(
            "release {which} of {} does not exist: see `paas releases -a {}`",
            app.name, app.name
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn show(State(state): State<AppState>, Path((app, which)): Path<(String, String)>) -> ApiResult<Json<Release>> {
    let app = state.app(&app).await?;
    let r = find(&state, &app, &which).await?;
    let current = state.store.current_release(&app.id).await?.is_some_and(|c| c.id == r.id);
    Ok(Json(to_wire(&r, current)?))
}

async fn rollback(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<ReleaseCreate>,
) -> ApiResult<(StatusCode, Json<Release>)> {
    let app = state.app(&app).await?;
    let target = find(&state, &app, body.release.trim()).await?;
    let new = NewRelease {
        build_id: target.build_id.clone(),
        image: target.image.clone(),
        process_types: target.process_types()?,
        sealed_config: target.config.clone(),
        description: format!("Rollback to v{}", target.version),
        health_path: target.health_path.clone(),
    };
    let config = state.cipher.open(&target.config)?;
    state
        .builder
        .release_phase_before(&app, &new, &config)
        .await
        .map_err(|e| ApiError::unprocessable("release_failed", format!("not rolled back: {e:#}")))?;
    let release = state.store.append_release(&app.id, &new).await?;
    info!(app = %app.name, release = release.version, to = target.version, "rolled back");
    state.scheduler.kick(app);
    Ok((StatusCode::CREATED, Json(to_wire(&release, true)?)))
}
