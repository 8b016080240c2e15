//! Add-ons of an app (see [`crate::addons`]): list, show, create, attach,
//! detach, destroy, upgrade; backups: list, capture, restore (from a backup
//! or an uploaded archive), schedule. Changes that make a release on an
//! app converge it as a config change does, waiting up to `wait`.

use crate::addons::backups::{backup_id, RestoreSource};
use crate::http::access::{self, Principal, Role};
use crate::http::{ApiError, ApiResult, AppState};
use crate::store::{AddonRow, AppRow, BackupRow, ReleaseRow};
use paas_wire::{Addon, AddonAttachment, AddonChange, Backup, BackupSchedule, Restore};
use std::time::Duration;

pub fn backup_to_wire(b: &BackupRow) -> Backup {
    Backup {
        id: backup_id(b.number),
        kind: b.kind.clone(),
        state: b.state.clone(),
        reason: b.reason.clone(),
        size: b.size,
        sha256: b.sha256.clone(),
        started_at: b.started_at.clone(),
        finished_at: b.finished_at.clone(),
    }
}

pub async fn to_wire(state: &AppState, addon: &AddonRow) -> ApiResult<Addon> {
    let store = &state.store;
    let owner = store.app_by_id(&addon.app_id).await?.map(|a| a.name).unwrap_or_default();
    let attachments = store
        .attachments_of_addon(&addon.id)
        .await?
        .into_iter()
        .map(|t| AddonAttachment { config_var: format!("{}_URL", t.name), app: t.app_name, name: t.name })
        .collect();
    let backups = store.backups(&addon.id).await?;
    let last_good = backups.iter().find(|b| b.state == "succeeded");
    // A failure newer than the last good backup stays in sight.
    let last_failed = backups.iter().find(|b| b.state != "running").filter(|b| b.state == "failed");
    Ok(Addon {
        name: addon.name.clone(),
        service: addon.service.clone(),
        version: addon.major.clone(),
        state: addon.state.clone(),
        reason: addon.reason.clone(),
        app: owner,
        attachments,
        created_at: addon.created_at.clone(),
        last_good_backup: last_good.map(backup_to_wire),
        last_failed_backup: last_failed.map(backup_to_wire),
        backup_schedule: match (&addon.backup_at, addon.backup_retain) {
            (Some(at), Some(retain)) => Some(BackupSchedule { at: at.clone(), retain }),
            _ => None,
        },
    })
}

pub async fn list(state: &AppState, app: &AppRow) -> ApiResult<Vec<Addon>> {
    let mut out = Vec::new();
    for addon in state.store.app_addons(&app.id).await? {
        out.push(to_wire(state, &addon).await?);
    }
    Ok(out)
}

pub async fn show(state: &AppState, app: &AppRow, name: &str) -> ApiResult<Addon> {
    to_wire(state, &state.addons.find_for(app, name).await?).await
}

/// The add-on as it now is, the release the change made on `app` and,
/// with one, whether its dynos serve it (waiting up to `wait`).
async fn change(state: &AppState, app: &AppRow, addon: &AddonRow, release: Option<ReleaseRow>, wait: Option<Duration>, messages: Vec<String>) -> ApiResult<AddonChange> {
    let deploy = match &release {
        Some(r) => Some(state.releases.converge(app, Some(r.version), wait).await),
        None => None,
    };
    let release = match release {
        Some(r) => Some(super::releases::to_wire(&r, true)?),
        None => None,
    };
    Ok(AddonChange { addon: to_wire(state, addon).await?, release, deploy, messages })
}

pub async fn create(state: &AppState, app: &AppRow, body: &paas_wire::AddonCreate, wait: Option<Duration>) -> ApiResult<AddonChange> {
    let (addon, release) = state.addons.create(app, &body.service, body.as_name.as_deref(), body.name.as_deref()).await?;
    change(state, app, &addon, release, wait, Vec::new()).await
}

/// Attaches an add-on to `app`; `by` must be a developer of the app that
/// owns it too (its URL is that app's data), else it does not exist for them.
pub async fn attach(state: &AppState, app: &AppRow, body: &paas_wire::AttachmentCreate, by: &Principal, wait: Option<Duration>) -> ApiResult<AddonChange> {
    let addon = state.addons.find(&body.addon).await?;
    let owner = state.store.app_by_id(&addon.app_id).await?.ok_or_else(|| ApiError::internal(format!("add-on {} has no app", addon.name)))?;
    match access::standing(state, by, &owner).await?.role() {
        Some(r) if r >= Role::Developer => {}
        Some(r) => return Err(ApiError::forbidden(format!("attaching {} needs a developer's role on {}, which owns it, and you are a {r} there", addon.name, owner.name))),
        None => return Err(crate::addons::AddonError::NotFound(format!("there is no add-on {:?}: `paas addons -a APP` lists an app's add-ons", body.addon)).into()),
    }
    let (addon, release) = state.addons.attach(&addon, app, body.as_name.as_deref()).await?;
    change(state, app, &addon, release, wait, Vec::new()).await
}

pub async fn detach(state: &AppState, app: &AppRow, name: &str, wait: Option<Duration>) -> ApiResult<AddonChange> {
    let addon = state.addons.find_for(app, name).await?;
    let (addon, release) = state.addons.detach(&addon, app).await?;
    change(state, app, &addon, release, wait, Vec::new()).await
}

pub async fn destroy(state: &AppState, app: &AppRow, name: &str, confirm: Option<&str>, force: bool) -> ApiResult<AddonChange> {
    let addon = state.addons.find_owned(app, name).await?;
    let before = to_wire(state, &addon).await?;
    let messages = state.addons.destroy(&addon, confirm, force).await?;
    Ok(AddonChange { addon: Addon { state: "destroyed".into(), attachments: Vec::new(), ..before }, release: None, deploy: None, messages })
}

pub async fn upgrade(state: &AppState, app: &AppRow, name: &str, to: Option<&str>) -> ApiResult<AddonChange> {
    let addon = state.addons.find_owned(app, name).await?;
    let (addon, messages) = state.addons.upgrade(&addon, to).await?;
    change(state, app, &addon, None, None, messages).await
}

pub async fn backups(state: &AppState, app: &AppRow, name: &str) -> ApiResult<Vec<Backup>> {
    let addon = state.addons.find_for(app, name).await?;
    Ok(state.store.backups(&addon.id).await?.iter().map(backup_to_wire).collect())
}

pub async fn capture(state: &AppState, app: &AppRow, name: &str) -> ApiResult<Backup> {
    let addon = state.addons.find_for(app, name).await?;
    Ok(backup_to_wire(&state.addons.capture(&addon, "manual").await?))
}

/// A succeeded backup's record and file, for download.
pub async fn backup_file(state: &AppState, app: &AppRow, name: &str, id: &str) -> ApiResult<(Backup, std::path::PathBuf)> {
    let addon = state.addons.find_for(app, name).await?;
    let b = state.addons.find_backup(&addon, id).await?;
    if b.state != "succeeded" {
        return Err(crate::addons::AddonError::NotFound(format!("backup {} {}: it has no file to download", backup_id(b.number), b.state)).into());
    }
    Ok((backup_to_wire(&b), state.addons.backup_path(&addon, b.number)))
}

pub async fn restore(state: &AppState, app: &AppRow, name: &str, source: RestoreSource, confirm: Option<&str>) -> ApiResult<Restore> {
    let addon = state.addons.find_for(app, name).await?;
    let (from, safety) = state.addons.restore(&addon, source, confirm).await?;
    Ok(Restore { from: from.as_ref().map(backup_to_wire), safety_backup: backup_to_wire(&safety) })
}

pub async fn schedule(state: &AppState, app: &AppRow, name: &str, schedule: Option<&BackupSchedule>) -> ApiResult<Addon> {
    let addon = state.addons.find_owned(app, name).await?;
    state.addons.set_schedule(&addon, schedule.map(|s| (s.at.as_str(), s.retain))).await?;
    to_wire(state, &state.addons.find(&addon.name).await?).await
}
