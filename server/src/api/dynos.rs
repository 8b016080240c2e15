//! `/apps/{app}/dynos`: list, restart (all, a type, or one dyno, rolling)
//! and stop, after Heroku's Platform API (see [`crate::service::dynos`]);
//! `POST` starts a detached one-off dyno ([`super::run`]).

use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::dynos;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use paas_wire::{Dyno, DynoRestart};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/dynos", get(list).delete(restart_all).post(super::run::create_detached))
        .route("/apps/{app}/dynos/{target}", delete(restart_one))
        .route("/apps/{app}/dynos/{dyno}/actions/stop", post(stop))
}

async fn list(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<Dyno>>> {
    Ok(Json(dynos::list(&state, &app).await?))
}

async fn restart_all(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<DynoRestart>> {
    Ok(Json(dynos::restart(&state, &app, None).await?))
}

async fn restart_one(State(state): State<AppState>, app: AppPath, Path((_, target)): Path<(String, String)>) -> ApiResult<Json<DynoRestart>> {
    Ok(Json(dynos::restart(&state, &app, Some(&target)).await?))
}

async fn stop(State(state): State<AppState>, app: AppPath, Path((_, dyno)): Path<(String, String)>) -> ApiResult<StatusCode> {
    dynos::stop(&state, &app, &dyno).await?;
    Ok(StatusCode::ACCEPTED)
}
