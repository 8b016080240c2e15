//! `GET /apps/{app}/twelve-factor`: the twelve-factor report of the app's
//! running release (see [`crate::service::twelve`]).

use crate::http::{ApiResult, AppPath, AppState, Json};
use axum::extract::State;
use axum::routing::get;
use paas_wire::TwelveFactorReport;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/twelve-factor", get(report))
}

async fn report(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<TwelveFactorReport>> {
    Ok(Json(crate::service::twelve::report(&state, &app).await?))
}
