//! Config vars: read them, and change them (a patch in which `None` unsets
//! a key); every change is a new release, made by the release service.

use crate::http::{ApiResult, AppState};
use crate::store::AppRow;
use paas_wire::{ChangeResult, ConfigPatch, ConfigVars};
use std::time::Duration;

pub async fn show(state: &AppState, app: &AppRow) -> ApiResult<ConfigVars> {
    Ok(state.releases.config(app).await?)
}

/// The config as `access` may see it: a viewer gets the names, each
/// value None.
pub async fn show_to(state: &AppState, access: &crate::http::access::AppAccess) -> ApiResult<std::collections::BTreeMap<String, Option<String>>> {
    let vars = show(state, &access.app).await?;
    let sees = access.sees_values();
    Ok(vars.into_iter().map(|(k, v)| (k, sees.then_some(v))).collect())
}

/// Applies `patch`; waits up to `wait` for the dynos to serve it. The
/// result has the release made (None when nothing changed) and the vars.
pub async fn set(state: &AppState, app: &AppRow, patch: ConfigPatch, wait: Option<Duration>) -> ApiResult<ChangeResult> {
    let (release, vars) = state.releases.set_config(app, patch).await?;
    let version = match &release {
        Some(r) => Some(r.version),
        None => state.store.current_release(&app.id).await?.map(|r| r.version),
    };
    let deploy = state.releases.converge(app, version, wait).await;
    let release = match release {
        Some(r) => Some(super::releases::to_wire(&r, true)?),
        None => None,
    };
    Ok(ChangeResult { release, config_vars: Some(vars), formation: None, deploy })
}
