//! Releases: the append-only history with each release's status, one
//! release, and rollback (a new release with an earlier one's build and
//! config, made by the release service).

use crate::http::{ApiResult, AppState};
use crate::store::{AppRow, ReleaseRow};
use paas_wire::{ChangeResult, Release};
use std::time::Duration;

/// A release as the API shows it, `pending` (no status looked up).
pub fn to_wire(r: &ReleaseRow, current: bool) -> ApiResult<Release> {
    with_status(r, current, None, false)
}

/// A release as the API shows it; `status` is the newest status record's
/// (`pending` without one); `image_removed`, whether gc removed its image.
fn with_status(r: &ReleaseRow, current: bool, status: Option<&(String, String)>, image_removed: bool) -> ApiResult<Release> {
    Ok(Release {
        image_removed,
        status: status.map_or_else(|| "pending".to_owned(), |s| s.0.clone()),
        status_detail: status.map(|s| s.1.clone()).unwrap_or_default(),
        id: r.id.clone(),
        version: r.version,
        description: r.description.clone(),
        build_id: r.build_id.clone(),
        image: r.image.clone(),
        process_types: r.process_types()?,
        created_at: r.created_at.clone(),
        current,
        health_path: r.health_path.clone(),
        actor: r.actor.clone(),
    })
}

/// The release the dynos run: the newest with a build that has not failed.
async fn running_release_id(state: &AppState, app: &AppRow) -> ApiResult<Option<String>> {
    Ok(state.store.desired_release(&app.id).await?.map(|r| r.id))
}

pub async fn list(state: &AppState, app: &AppRow) -> ApiResult<Vec<Release>> {
    let rows = state.store.list_releases(&app.id).await?;
    let statuses = state.store.release_statuses(&app.id).await?;
    let current = running_release_id(state, app).await?;
    let removed = state.store.removed_images().await?;
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let image_removed = r.image.as_ref().is_some_and(|i| removed.contains(i));
            with_status(r, current.as_ref().map_or(i == 0, |c| *c == r.id), statuses.get(&r.id), image_removed)
        })
        .collect()
}

/// One release, by `vN`, `N` or id.
pub async fn show(state: &AppState, app: &AppRow, which: &str) -> ApiResult<Release> {
    let r = state.releases.find(app, which).await?;
    let current = match running_release_id(state, app).await? {
        Some(id) => id == r.id,
        None => state.store.current_release(&app.id).await?.is_some_and(|c| c.id == r.id),
    };
    let statuses = state.store.release_statuses(&app.id).await?;
    let image_removed = match &r.image {
        Some(image) => state.store.image_removed(image).await?,
        None => false,
    };
    with_status(&r, current, statuses.get(&r.id), image_removed)
}

/// What made release `which`: its build's output (when this app built it;
/// a promoted build names the app that did) and its release phase's.
pub async fn output(state: &AppState, app: &AppRow, which: &str) -> ApiResult<paas_wire::ReleaseOutput> {
    let r = state.releases.find(app, which).await?;
    let release_output = state.store.release_output(&r.id).await?;
    let (mut build_output, mut built_by) = (None, None);
    if let Some(id) = &r.build_id {
        match state.store.build_by_id(id).await? {
            Some(b) if b.app_id == app.id => build_output = Some(b.output),
            Some(b) => built_by = state.store.app_by_id(&b.app_id).await?.map(|a| a.name),
            None => {}
        }
    }
    Ok(paas_wire::ReleaseOutput { version: r.version, build_id: r.build_id, built_by, build_output, release_output })
}

/// Rolls back to `which`; waits up to `wait` for the dynos.
pub async fn rollback(state: &AppState, app: &AppRow, which: &str, wait: Option<Duration>) -> ApiResult<ChangeResult> {
    let release = state.releases.rollback(app, which).await?;
    let deploy = state.releases.converge(app, Some(release.version), wait).await;
    let release = to_wire(&release, true)?;
    Ok(ChangeResult { release: Some(release), config_vars: None, formation: None, deploy })
}

/// Whether the app's newest release is still waiting for its first status
/// (a deploy under way).
pub async fn newest_pending(state: &AppState, app: &AppRow) -> ApiResult<bool> {
    let newest = state.store.current_release(&app.id).await?;
    let statuses = state.store.release_statuses(&app.id).await?;
    Ok(newest.is_some_and(|r| r.build_id.is_some() && !statuses.contains_key(&r.id)))
}
