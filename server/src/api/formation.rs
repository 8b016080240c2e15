//! `/apps/{app}/formation`: how many dynos of each process type run.

use super::error::Json;
use super::{ApiError, ApiResult, AppState};
use crate::scheduler::desired_formation;
use crate::store::AppRow;
use axum::extract::{Path, State};
use axum::routing::get;
use paas_wire::{Formation, FormationUpdate, ProcessType};
use std::collections::BTreeMap;

/// The most dynos of one type one host runs.
const MAX_QUANTITY: i64 = 100;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/formation", get(show).patch(update))
}

async fn current(state: &AppState, app: &AppRow) -> ApiResult<Vec<Formation>> {
    let Some(release) = state.store.current_release(&app.id).await? else {
        return Ok(Vec::new());
    };
    let types = release.process_types()?;
    let scaled = state.store.formation(&app.id).await?;
    Ok(desired_formation(&types, &scaled)
        .into_iter()
        .map(|(t, q)| Formation { command: types[&t].clone(), process_type: t, quantity: q.into() })
        .collect())
}

async fn show(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Formation>>> {
    let app = state.app(&app).await?;
    Ok(Json(current(&state, &app).await?))
}

async fn update(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Json(body): Json<FormationUpdate>,
) -> ApiResult<Json<Vec<Formation>>> {
    let app = state.app(&app).await?;
    if body.updates.is_empty() {
        return Err(ApiError::bad_request("no updates given: send {\"updates\": [{\"type\": \"web\", \"quantity\": 2}]}"));
    }
    let release = state.store.current_release(&app.id).await?.ok_or_else(|| {
        ApiError::unprocessable("no_release", format!("{} has no release yet: deploy it with `git push paas main` first", app.name))
    })?;
    let types = release.process_types()?;
    let mut changes = BTreeMap::new();
    for u in body.updates {
        let t = ProcessType::parse(&u.process_type)?;
        if !types.contains_key(t.as_str()) {
            let known: Vec<&str> = types.keys().map(String::as_str).collect();
            return Err(ApiError::unprocessable(
                "unknown_process_type",
                format!(
                    "v{} of {} has no process type {t}: its types are {}",
                    release.version,
                    app.name,
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                ),
            ));
        }
        if !(0..=MAX_QUANTITY).contains(&u.quantity) {
            return Err(ApiError::unprocessable(
                "invalid_quantity",
                format!("quantity {} for {t} is out of range: use 0 to {MAX_QUANTITY}", u.quantity),
            ));
        }
        changes.insert(t.to_string(), u.quantity);
    }
    state.store.set_formation(&app.id, &changes).await?;
    let out = current(&state, &app).await?;
    state.scheduler.kick(app);
    Ok(Json(out))
}
