//! `/apps/{app}/cron`: the app's cron entries with their next and last
//! runs, and `POST /apps/{app}/cron/{id}/runs` to run one now (see
//! [`crate::service::cron`]).

use crate::http::{ApiResult, AppPath, AppState, Json};
use crate::service::cron;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use paas_wire::{CronJob, CronRun};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/cron", get(list)).route("/apps/{app}/cron/{id}/runs", post(run))
}

async fn list(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<CronJob>>> {
    Ok(Json(cron::list(&state, &app).await?))
}

async fn run(State(state): State<AppState>, app: AppPath, Path((_, id)): Path<(String, String)>) -> ApiResult<(StatusCode, Json<CronRun>)> {
    Ok((StatusCode::CREATED, Json(cron::run(&state, &app, &id).await?)))
}
