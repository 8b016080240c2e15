//! `/apps/{app}/formation`: how many dynos of each process type run (see
//! [`crate::service::formation`]).

use super::WaitQuery;
use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::formation;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use paas_wire::{Formation, FormationUpdate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/formation", get(show).patch(update))
}

async fn show(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<Formation>>> {
    Ok(Json(formation::show(&state, &app).await?))
}

async fn update(State(state): State<AppState>, app: AppPath, Query(wait): Query<WaitQuery>, Json(body): Json<FormationUpdate>) -> ApiResult<Response> {
    let result = formation::update(&state, &app, &body.updates, wait.duration()).await?;
    if wait.duration().is_some() {
        return Ok(Json(result).into_response());
    }
    Ok(Json(result.formation.unwrap_or_default()).into_response())
}
