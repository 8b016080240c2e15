//! `GET /nodes`: the machines dynos run on (see [`crate::service::nodes`]).

use crate::http::{ApiResult, AppState, Json};
use crate::service::nodes;
use axum::extract::State;
use axum::routing::get;
use paas_wire::Node;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/nodes", get(list))
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<Node>>> {
    Ok(Json(nodes::list(&state).await?))
}
