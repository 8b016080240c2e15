//! `/apps`: create, list, info, destroy.

use super::error::Json;
use super::{ApiError, ApiResult, AppState};
use crate::store::{AppRow, StoreError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use paas_wire::{App, AppCreate, AppName};
use tracing::{info, warn};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps", get(list).post(create))
        .route("/apps/{app}", get(show).delete(destroy))
}

async fn to_wire(state: &AppState, app: &AppRow) -> ApiResult<App> {
    let current = state.store.current_release(&app.id).await?;
    Ok(App {
        id: app.id.clone(),
        name: app.name.clone(),
        created_at: app.created_at.clone(),
        web_url: state.web_url(&app.name),
        git_url: state.git_url(&app.name),
        current_release: current.map(|r| r.version),
    })
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<App>>> {
    let mut out = Vec::new();
    for app in state.store.list_apps().await? {
        out.push(to_wire(&state, &app).await?);
    }
    Ok(Json(out))
}

async fn create(State(state): State<AppState>, Json(body): Json<AppCreate>) -> ApiResult<(StatusCode, Json<App>)> {
    let name = AppName::parse(&body.name)?;
    let app = match state.store.create_app(&name).await {
        Ok(app) => app,
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "name_taken",
                format!("app {name} already exists: choose another name"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    crate::git::ensure_repo(&state.settings, &name).map_err(ApiError::internal)?;
    info!(app = %name, "app created");
    Ok((StatusCode::CREATED, Json(to_wire(&state, &app).await?)))
}

async fn show(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<App>> {
    let app = state.app(&app).await?;
    Ok(Json(to_wire(&state, &app).await?))
}

async fn destroy(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<App>> {
    let app = state.app(&app).await?;
    let wire = to_wire(&state, &app).await?;
    state.scheduler.remove_app(&app.name).await?;
    let images: Vec<String> = state.store.list_releases(&app.id).await?.into_iter().filter_map(|r| r.image).collect();
    state.store.delete_app(&app.id).await?;
    let repo = state.settings.repos_dir().join(format!("{}.git", app.name));
    if let Err(e) = std::fs::remove_dir_all(&repo) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(app = %app.name, error = %e, "cannot remove the git repo");
        }
    }
    let runtime = state.scheduler.runtime().clone();
    if let Err(e) = runtime.remove_volume(&crate::buildpack::cache_volume(&app.name)).await {
        warn!(app = %app.name, error = %format!("{e:#}"), "cannot remove the build cache");
    }
    let kept = state.store.referenced_images().await?;
    tokio::spawn(async move {
        for image in images.into_iter().filter(|i| !kept.contains(i)) {
            if let Err(e) = runtime.remove_image(&image).await {
                warn!(error = %format!("{e:#}"), "cannot remove image of a destroyed app");
            }
        }
    });
    info!(app = %app.name, "app destroyed");
    Ok(Json(wire))
}
