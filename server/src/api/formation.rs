//! `/apps/{app}/formation`: how many dynos of each process type run.
//! Changes go through the release service.

use super::WaitQuery;
use crate::http::{ApiResult, AppState, Json};
use crate::scheduler::desired_formation;
use crate::store::AppRow;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use paas_wire::{ChangeResult, Formation, FormationUpdate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/formation", get(show).patch(update))
}

pub(crate) async fn current(state: &AppState, app: &AppRow) -> ApiResult<Vec<Formation>> {
    let Some(release) = state.store.current_release(&app.id).await? else {
        return Ok(Vec::new());
    };
    let types = release.process_types()?;
    let scaled = state.store.formation(&app.id).await?;
    let sizes = state.scheduler.sizes(app).await?;
    Ok(desired_formation(&types, &scaled)
        .into_iter()
        .map(|(t, q)| Formation {
            command: types[&t].clone(),
            size: state.scheduler.size_of(&sizes, &t).to_string(),
            process_type: t,
            quantity: q.into(),
        })
        .collect())
}

pub(crate) async fn show(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Formation>>> {
    let app = state.app(&app).await?;
    Ok(Json(current(&state, &app).await?))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(wait): Query<WaitQuery>,
    Json(body): Json<FormationUpdate>,
) -> ApiResult<Response> {
    let app = state.app(&app).await?;
    let release = state.releases.scale(&app, &body.updates).await?;
    let deploy = state.releases.converge_current(&app, release.version, wait.duration()).await;
    let formation = current(&state, &app).await?;
    if wait.duration().is_none() {
        return Ok(Json(formation).into_response());
    }
    Ok(Json(ChangeResult { release: None, config_vars: None, formation: Some(formation), deploy }).into_response())
}
