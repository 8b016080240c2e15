//! The formation: how many dynos of each process type run, and their size.
//! Changes go through the release service.

use crate::http::{ApiResult, AppState};
use crate::scheduler::desired_formation;
use crate::store::AppRow;
use paas_wire::{ChangeResult, Formation, FormationChange};
use std::time::Duration;

pub async fn show(state: &AppState, app: &AppRow) -> ApiResult<Vec<Formation>> {
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

/// Scales (and sizes); waits up to `wait` for the dynos.
pub async fn update(state: &AppState, app: &AppRow, updates: &[FormationChange], wait: Option<Duration>) -> ApiResult<ChangeResult> {
    let release = state.releases.scale(app, updates).await?;
    let deploy = state.releases.converge_current(app, release.version, wait).await;
    let formation = show(state, app).await?;
    Ok(ChangeResult { release: None, config_vars: None, formation: Some(formation), deploy })
}
