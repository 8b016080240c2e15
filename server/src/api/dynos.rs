//! `/apps/{app}/dynos`: what runs now and how it fares, as the scheduler
//! sees it, with each dyno's command as the Procfile gives it.

use crate::http::{ApiResult, AppState, Json};
use axum::extract::{Path, State};
use axum::routing::get;
use paas_wire::Dyno;
use std::collections::HashMap;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/dynos", get(list))
}

async fn list(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Dyno>>> {
    let app = state.app(&app).await?;
    let mut commands: HashMap<(i64, String), String> = HashMap::new();
    for r in state.store.list_releases(&app.id).await? {
        for (t, c) in r.process_types()? {
            commands.insert((r.version, t), c);
        }
    }
    let mut dynos: Vec<Dyno> = state
        .scheduler
        .ps(&app)
        .await?
        .into_iter()
        .map(|d| Dyno {
            command: commands.get(&(d.release_version, d.process_type.clone())).cloned().unwrap_or_default(),
            name: d.name,
            process_type: d.process_type,
            release_version: d.release_version,
            state: d.state,
            since: d.since,
            restarts: d.restarts,
            exit_code: d.exit_code,
            container_id: d.container_id,
        })
        .collect();
    dynos.sort_by(|a, b| (&a.process_type, a.name.len(), &a.name).cmp(&(&b.process_type, b.name.len(), &b.name)));
    Ok(Json(dynos))
}
