//! Builds: the history, one build with its output, and clearing the app's
//! build cache (the volume buildpacks keep dependencies in).

use paas_wire::ErrorId;
use crate::http::{ApiError, ApiResult, AppState};
use crate::store::{AppRow, BuildRow, StoreError};
use axum::http::StatusCode;
use paas_wire::{Build, BuildOutput};

fn to_wire(b: &BuildRow) -> Build {
    Build {
        id: b.id.clone(),
        status: b.status.clone(),
        commit: b.commit_sha.clone(),
        image: b.image.clone(),
        created_at: b.created_at.clone(),
    }
}

pub async fn list(state: &AppState, app: &AppRow) -> ApiResult<Vec<Build>> {
    Ok(state.store.list_builds(&app.id).await?.iter().map(to_wire).collect())
}

pub async fn show(state: &AppState, app: &AppRow, build: &str) -> ApiResult<BuildOutput> {
    match state.store.build(&app.id, build).await {
        Ok(b) => Ok(BuildOutput { build: to_wire(&b), output: b.output.clone() }),
        Err(StoreError::NotFound) => {
            Err(ApiError::not_found(format!("build {build} of {} does not exist: see `paas builds -a {}`", app.name, app.name)))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn clear_cache(state: &AppState, app: &AppRow) -> ApiResult<()> {
    let volume = crate::runtime::build_cache_volume(&app.name);
    state.scheduler.runtime().remove_volume(&volume).await.map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorId::CacheBusy,
            format!("cannot clear the build cache of {} now (a build may be running): {e:#}", app.name),
        )
    })?;
    tracing::info!(app = %app.name, "build cache cleared");
    Ok(())
}
