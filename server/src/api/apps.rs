//! `/apps`: create, list, info, destroy, and an app's placement
//! constraints on a swarm (see [`crate::service::apps`]).

use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::apps;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Extension;
use crate::http::access::Principal;
use paas_wire::{App, AppCreate, AppUpdate, Constraints, Maintenance};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps", get(list).post(create))
        .route("/apps/{app}", get(show).patch(update).delete(destroy))
        .route("/apps/{app}/constraints", get(constraints).put(set_constraints))
        .route("/apps/{app}/maintenance", get(maintenance).patch(set_maintenance))
}

async fn list(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> ApiResult<Json<Vec<App>>> {
    Ok(Json(apps::list(&state, &principal).await?))
}

async fn create(State(state): State<AppState>, Extension(principal): Extension<Principal>, Json(body): Json<AppCreate>) -> ApiResult<(StatusCode, Json<App>)> {
    Ok((StatusCode::CREATED, Json(apps::create(&state, &body.name, &principal).await?)))
}

async fn show(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<App>> {
    Ok(Json(apps::info(&state, &app).await?))
}

/// `PATCH /apps/{app}` with `{"name": NEW}`: `apps:rename` (Heroku's shape).
async fn update(State(state): State<AppState>, app: AppPath, Json(body): Json<AppUpdate>) -> ApiResult<Json<App>> {
    Ok(Json(apps::rename(&state, &app, &body.name).await?))
}

async fn destroy(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<App>> {
    Ok(Json(apps::destroy(&state, &app).await?))
}

async fn constraints(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Constraints>> {
    Ok(Json(apps::constraints(&state, &app).await?))
}

async fn set_constraints(State(state): State<AppState>, app: AppPath, Json(body): Json<Constraints>) -> ApiResult<Json<Constraints>> {
    Ok(Json(apps::set_constraints(&state, &app, &body.constraints).await?))
}

async fn maintenance(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Maintenance>> {
    Ok(Json(Maintenance { maintenance: apps::maintenance(&state, &app).await? }))
}

async fn set_maintenance(State(state): State<AppState>, app: AppPath, Json(body): Json<Maintenance>) -> ApiResult<Json<Maintenance>> {
    Ok(Json(Maintenance { maintenance: apps::set_maintenance(&state, &app, body.maintenance).await? }))
}
