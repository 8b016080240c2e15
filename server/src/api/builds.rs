//! `/apps/{app}/builds`: the build history and each build's output.

use crate::http::{ApiError, ApiResult, AppState, Json};
use crate::store::{BuildRow, StoreError};
use axum::extract::{Path, State};
use axum::routing::get;
use paas_wire::{Build, BuildOutput};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/builds", get(list))
        .route("/apps/{app}/builds/{build}", get(show))
        .route("/apps/{app}/build-cache", axum::routing::delete(clear_cache))
}

fn to_wire(b: &BuildRow) -> Build {
    Build {
        id: b.id.clone(),
        status: b.status.clone(),
        commit: b.commit_sha.clone(),
        image: b.image.clone(),
        created_at: b.created_at.clone(),
    }
}

pub(crate) async fn list(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Build>>> {
    let app = state.app(&app).await?;
    Ok(Json(state.store.list_builds(&app.id).await?.iter().map(to_wire).collect()))
}

pub(crate) async fn show(State(state): State<AppState>, Path((app, build)): Path<(String, String)>) -> ApiResult<Json<BuildOutput>> {
    let app = state.app(&app).await?;
    match state.store.build(&app.id, &build).await {
        Ok(b) => Ok(Json(BuildOutput { build: to_wire(&b), output: b.output.clone() })),
        Err(StoreError::NotFound) => Err(ApiError::not_found(format!(
            "build {build} of {} does not exist: see `paas builds -a {}`",
            app.name, app.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Empties the app's build cache (the volume buildpacks keep dependencies in).
pub(crate) async fn clear_cache(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<axum::http::StatusCode> {
    let app = state.app(&app).await?;
    let volume = crate::runtime::build_cache_volume(&app.name);
    state.scheduler.runtime().remove_volume(&volume).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "cache_busy",
            format!("cannot clear the build cache of {} now (a build may be running): {e:#}", app.name),
        )
    })?;
    tracing::info!(app = %app.name, "build cache cleared");
    Ok(axum::http::StatusCode::NO_CONTENT)
}
