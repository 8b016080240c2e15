//! `/apps/{app}/config-vars`: read, and change with a PATCH in which `null`
//! unsets a key. Every change appends a release and rolls the dynos.

use super::error::Json;
use super::{ApiError, ApiResult, AppState};
use crate::store::NewRelease;
use axum::extract::{Path, State};
use axum::routing::get;
use paas_wire::{ConfigKey, ConfigPatch, ConfigVars};
use std::collections::BTreeMap;
use tracing::info;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/apps/{app}/config-vars", get(show).patch(update))
}

async fn show(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<ConfigVars>> {
    let app = state.app(&app).await?;
    let vars = match state.store.current_release(&app.id).await? {
        Some(r) => state.cipher.open(&r.config)?,
        None => BTreeMap::new(),
    };
    Ok(Json(vars))
}

async fn update(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Json(patch): Json<ConfigPatch>,
) -> ApiResult<Json<ConfigVars>> {
    let app = state.app(&app).await?;
    if patch.is_empty() {
        return Err(ApiError::bad_request("no config vars given: send an object like {\"KEY\": \"value\"}, with null to unset"));
    }
    for (key, value) in &patch {
        ConfigKey::parse(key)?;
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::unprocessable("invalid_value", format!("the value of {key} contains a NUL byte")));
        }
    }
    let current = state.store.current_release(&app.id).await?;
    let mut vars = match &current {
        Some(r) => state.cipher.open(&r.config)?,
        None => BTreeMap::new(),
    };
    let before = vars.clone();
    let (mut set, mut unset) = (Vec::new(), Vec::new());
    for (key, value) in patch {
        match value {
            Some(v) => {
                set.push(key.clone());
                vars.insert(key, v);
            }
            None => {
                if vars.remove(&key).is_some() {
                    unset.push(key);
                }
            }
        }
    }
    if vars == before {
        return Ok(Json(vars));
    }
    let mut description = Vec::new();
    if !set.is_empty() {
        description.push(format!("Set {} config vars", set.join(", ")));
    }
    if !unset.is_empty() {
        description.push(format!("Remove {} config vars", unset.join(", ")));
    }
    let new = NewRelease {
        build_id: current.as_ref().and_then(|r| r.build_id.clone()),
        image: current.as_ref().and_then(|r| r.image.clone()),
        process_types: match &current {
            Some(r) => r.process_types()?,
            None => BTreeMap::new(),
        },
        sealed_config: state.cipher.seal(&vars),
        description: description.join("; "),
        health_path: current.as_ref().and_then(|r| r.health_path.clone()),
    };
    state
        .builder
        .release_phase_before(&app, &new, &vars)
        .await
        .map_err(|e| ApiError::unprocessable("release_failed", format!("config not changed: {e:#}")))?;
    let release = state.store.append_release(&app.id, &new).await?;
    info!(app = %app.name, release = release.version, "config changed");
    state.scheduler.kick(app);
    Ok(Json(vars))
}
