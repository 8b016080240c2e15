//! `/apps/{app}/domains`: the app's own `APP.PAAS_DOMAIN` and its custom
//! domains (see [`crate::service::domains`]).

use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::domains;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use paas_wire::{Domain, DomainCreate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/domains", get(list).post(add))
        .route("/apps/{app}/domains/{hostname}", delete(remove))
}

async fn list(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<Domain>>> {
    Ok(Json(domains::list(&state, &app).await?))
}

async fn add(State(state): State<AppState>, app: AppPath, Json(body): Json<DomainCreate>) -> ApiResult<(StatusCode, Json<Domain>)> {
    Ok((StatusCode::CREATED, Json(domains::add(&state, &app, &body.hostname).await?)))
}

async fn remove(State(state): State<AppState>, app: AppPath, Path((_, hostname)): Path<(String, String)>) -> ApiResult<Json<Domain>> {
    Ok(Json(domains::remove(&state, &app, &hostname).await?))
}
