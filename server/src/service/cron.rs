//! Cron: the app's scheduled commands (app.json `cron` of its current
//! release) with their next and last runs, and running one now (see
//! [`crate::cron`]).

use crate::http::{ApiResult, AppState};
use crate::store::AppRow;
use paas_wire::{CronJob, CronRun};

pub async fn list(state: &AppState, app: &AppRow) -> ApiResult<Vec<CronJob>> {
    Ok(state.cron.list(app).await?)
}

pub async fn run(state: &AppState, app: &AppRow, id: &str) -> ApiResult<CronRun> {
    Ok(state.cron.run_now(app, id).await?)
}
