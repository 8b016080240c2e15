//! `/apps/{app}/builds`: the build history and each build's output; the
//! build cache (see [`crate::service::builds`]).

use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::builds;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use paas_wire::{Build, BuildOutput};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/builds", get(list))
        .route("/apps/{app}/builds/{build}", get(show))
        .route("/apps/{app}/build-cache", axum::routing::delete(clear_cache))
}

async fn list(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<Build>>> {
    Ok(Json(builds::list(&state, &app).await?))
}

async fn show(State(state): State<AppState>, app: AppPath, Path((_, build)): Path<(String, String)>) -> ApiResult<Json<BuildOutput>> {
    Ok(Json(builds::show(&state, &app, &build).await?))
}

/// Empties the app's build cache (the volume buildpacks keep dependencies in).
async fn clear_cache(State(state): State<AppState>, app: AppPath) -> ApiResult<StatusCode> {
    builds::clear_cache(&state, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}
