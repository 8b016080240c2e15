//! `/apps`: create, list, info, destroy (see [`crate::service::apps`]).

use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::apps;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use paas_wire::{App, AppCreate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps", get(list).post(create))
        .route("/apps/{app}", get(show).delete(destroy))
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<App>>> {
    Ok(Json(apps::list(&state).await?))
}

async fn create(State(state): State<AppState>, Json(body): Json<AppCreate>) -> ApiResult<(StatusCode, Json<App>)> {
    Ok((StatusCode::CREATED, Json(apps::create(&state, &body.name).await?)))
}

async fn show(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<App>> {
    Ok(Json(apps::to_wire(&state, &app).await?))
}

async fn destroy(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<App>> {
    Ok(Json(apps::destroy(&state, &app).await?))
}
