//! Pipelines after Heroku's Platform API: `/pipelines`,
//! `/pipeline-couplings` (and an app's own, under the app),
//! `/pipeline-promotions` (with `?wait=`), and `/apps/{app}/pipeline-diff`.
//! What each caller may do is decided in [`crate::service::pipelines`].

use super::WaitQuery;
use crate::http::access::Principal;
use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::pipelines as service;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Extension;
use paas_wire::{Coupling, CouplingCreate, Pipeline, PipelineCreate, PipelineDiff, Promotion, PromotionCreate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/pipelines", get(list).post(create))
        .route("/pipelines/{pipeline}", get(info).delete(destroy))
        .route("/pipeline-couplings", post(couple))
        .route("/apps/{app}/pipeline-couplings", get(coupling).delete(uncouple))
        .route("/pipeline-promotions", post(promote))
        .route("/apps/{app}/pipeline-diff", get(diff))
}

async fn list(State(state): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Vec<Pipeline>>> {
    Ok(Json(service::list(&state, &p).await?))
}

async fn create(State(state): State<AppState>, Extension(p): Extension<Principal>, Json(body): Json<PipelineCreate>) -> ApiResult<(StatusCode, Json<Pipeline>)> {
    Ok((StatusCode::CREATED, Json(service::create(&state, &p, &body.name).await?)))
}

async fn info(State(state): State<AppState>, Extension(p): Extension<Principal>, Path(name): Path<String>) -> ApiResult<Json<Pipeline>> {
    Ok(Json(service::info(&state, &p, &name).await?))
}

async fn destroy(State(state): State<AppState>, Extension(p): Extension<Principal>, Path(name): Path<String>) -> ApiResult<Json<Pipeline>> {
    Ok(Json(service::destroy(&state, &p, &name).await?))
}

async fn couple(State(state): State<AppState>, Extension(p): Extension<Principal>, Json(body): Json<CouplingCreate>) -> ApiResult<(StatusCode, Json<Coupling>)> {
    Ok((StatusCode::CREATED, Json(service::couple(&state, &p, &body.pipeline, &body.app, &body.stage).await?)))
}

async fn coupling(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Coupling>> {
    Ok(Json(service::coupling(&state, &app).await?))
}

async fn uncouple(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Coupling>> {
    Ok(Json(service::uncouple(&state, &app).await?))
}

async fn promote(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(wait): Query<WaitQuery>,
    Json(body): Json<PromotionCreate>,
) -> ApiResult<(StatusCode, Json<Promotion>)> {
    Ok((StatusCode::CREATED, Json(service::promote(&state, &p, &body.source, &body.targets, wait.duration()).await?)))
}

async fn diff(State(state): State<AppState>, Extension(p): Extension<Principal>, app: AppPath) -> ApiResult<Json<PipelineDiff>> {
    Ok(Json(service::diff(&state, &p, &app).await?))
}
