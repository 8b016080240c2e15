//! `/apps/{app}/dynos`: what runs now, read from the runtime.

use crate::http::{ApiResult, AppState, Json};
use axum::extract::{Path, State};
use axum::routing::get;
use paas_wire::Dyno;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/dynos", get(list))
}

async fn list(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Dyno>>> {
    let app = state.app(&app).await?;
    let mut dynos: Vec<Dyno> = state
        .scheduler
        .dynos(&app.name)
        .await?
        .into_iter()
        .map(|d| Dyno {
            name: d.name(),
            process_type: d.process_type,
            release_version: d.release_version,
            state: d.state,
            command: d.command,
            container_id: d.container_id[..12.min(d.container_id.len())].to_owned(),
        })
        .collect();
    dynos.sort_by(|a, b| (&a.process_type, a.name.len(), &a.name).cmp(&(&b.process_type, b.name.len(), &b.name)));
    Ok(Json(dynos))
}
