//! Pipelines: apps in stages (development, staging, production), and
//! promotion, which releases the exact build an app runs in the apps of
//! the next stage with their own config (nothing is rebuilt). Who may do
//! what: a pipeline is seen by its maker, platform admins and anyone with a
//! role on one of its apps; coupling an app, or promoting into it, needs a
//! developer's role there.

use crate::http::access::{self, Principal, Role};
use crate::http::{ApiError, ApiResult, AppState};
use crate::output::Output;
use crate::store::{AppRow, CouplingRow, PipelineRow, StoreError};
use axum::http::StatusCode;
use paas_wire::{AppName, Coupling, DownstreamDiff, ErrorId, Pipeline, PipelineApp, PipelineDiff, Promotion, PromotionTarget};
use std::time::Duration;

/// The stages, in the order builds move through them.
pub const STAGES: [&str; 3] = ["development", "staging", "production"];

fn stage_rank(stage: &str) -> ApiResult<usize> {
    STAGES.iter().position(|s| *s == stage.trim()).ok_or_else(|| {
        ApiError::unprocessable(ErrorId::InvalidValue, format!("{stage:?} is not a stage: give development, staging or production"))
    })
}

fn no_pipeline(name: &str) -> ApiError {
    ApiError::not_found(format!("there is no pipeline {name:?}: `paas pipelines` lists them, `paas pipelines:create {name}` makes one"))
}

/// The caller's role on `app` (none: they may not see it).
async fn role_on(state: &AppState, principal: &Principal, app: &AppRow) -> ApiResult<Option<Role>> {
    Ok(access::standing(state, principal, app).await?.role())
}

/// Requires a developer's role on `app`; an app without a role is one
/// that does not exist.
async fn require_developer(state: &AppState, principal: &Principal, app: &AppRow, doing: &str) -> ApiResult<()> {
    match role_on(state, principal, app).await? {
        Some(r) if r >= Role::Developer => Ok(()),
        Some(r) => Err(ApiError::forbidden(format!("{doing} {} needs a developer's role there, and you are a {r}", app.name))),
        None => Err(access::no_such_app(&app.name)),
    }
}

async fn app_named(state: &AppState, name: &str) -> ApiResult<AppRow> {
    crate::http::extract::find_app(state, name).await
}

/// The pipeline by name (or id), if the caller may see it.
async fn visible(state: &AppState, principal: &Principal, name: &str) -> ApiResult<(PipelineRow, Vec<CouplingRow>)> {
    let row = state.store.pipeline(name).await?.ok_or_else(|| no_pipeline(name))?;
    let couplings = state.store.couplings(&row.id).await?;
    if may_see(state, principal, &row, &couplings).await? {
        Ok((row, couplings))
    } else {
        Err(no_pipeline(name))
    }
}

/// Whether the caller may see a pipeline: its maker, a platform admin, or
/// someone with a role on one of its apps.
async fn may_see(state: &AppState, principal: &Principal, row: &PipelineRow, couplings: &[CouplingRow]) -> ApiResult<bool> {
    if principal.is_admin() || row.created_by.as_deref() == Some(principal.user.id.as_str()) {
        return Ok(true);
    }
    for c in couplings {
        if let Some(app) = state.store.app_by_id(&c.app_id).await? {
            if role_on(state, principal, &app).await?.is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The app's current release number and its build's commit.
async fn current_build(state: &AppState, app_id: &str) -> ApiResult<(Option<i64>, Option<String>)> {
    let Some(release) = state.store.current_release(app_id).await? else { return Ok((None, None)) };
    let commit = match &release.build_id {
        Some(id) => state.store.build_by_id(id).await?.map(|b| b.commit_sha),
        None => None,
    };
    Ok((Some(release.version), commit))
}

async fn to_wire(state: &AppState, principal: &Principal, row: &PipelineRow, couplings: &[CouplingRow]) -> ApiResult<Pipeline> {
    let mut apps = Vec::new();
    for c in couplings {
        let Some(app) = state.store.app_by_id(&c.app_id).await? else { continue };
        if role_on(state, principal, &app).await?.is_none() {
            continue;
        }
        let (release, commit) = current_build(state, &c.app_id).await?;
        apps.push(PipelineApp { app: c.app_name.clone(), stage: c.stage.clone(), release, commit });
    }
    apps.sort_by_key(|a| (stage_rank(&a.stage).unwrap_or(usize::MAX), a.app.clone()));
    Ok(Pipeline { id: row.id.clone(), name: row.name.clone(), created_at: row.created_at.clone(), apps })
}

pub async fn create(state: &AppState, principal: &Principal, name: &str) -> ApiResult<Pipeline> {
    let name = AppName::parse(name)
        .map_err(|_| ApiError::unprocessable(ErrorId::InvalidName, format!("{name:?} is not a pipeline name: 3 to 30 lowercase letters, digits and dashes, starting with a letter")))?;
    match state.store.create_pipeline(name.as_str(), &principal.user.id).await {
        Ok(row) => to_wire(state, principal, &row, &[]).await,
        Err(StoreError::Conflict) => Err(ApiError::new(StatusCode::CONFLICT, ErrorId::NameTaken, format!("there is a pipeline {name} already: choose another name"))),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(state: &AppState, principal: &Principal) -> ApiResult<Vec<Pipeline>> {
    let mut out = Vec::new();
    for row in state.store.pipelines().await? {
        let couplings = state.store.couplings(&row.id).await?;
        if may_see(state, principal, &row, &couplings).await? {
            out.push(to_wire(state, principal, &row, &couplings).await?);
        }
    }
    Ok(out)
}

pub async fn info(state: &AppState, principal: &Principal, name: &str) -> ApiResult<Pipeline> {
    let (row, couplings) = visible(state, principal, name).await?;
    to_wire(state, principal, &row, &couplings).await
}

/// Destroys a pipeline (its apps stay): its maker, a platform admin, or an
/// admin of every app in it.
pub async fn destroy(state: &AppState, principal: &Principal, name: &str) -> ApiResult<Pipeline> {
    let (row, couplings) = visible(state, principal, name).await?;
    let wire = to_wire(state, principal, &row, &couplings).await?;
    let mut may = principal.is_admin() || row.created_by.as_deref() == Some(principal.user.id.as_str());
    if !may && !couplings.is_empty() {
        may = true;
        for c in &couplings {
            let app = state.store.app_by_id(&c.app_id).await?;
            let role = match &app {
                Some(app) => role_on(state, principal, app).await?,
                None => None,
            };
            may &= role == Some(Role::Admin);
        }
    }
    if !may {
        return Err(ApiError::forbidden(format!("only the maker of {}, a platform admin or an admin of each of its apps may destroy it", row.name)));
    }
    state.store.delete_pipeline(&row.id).await?;
    Ok(wire)
}

fn coupling_to_wire(pipeline: &str, c: &CouplingRow) -> Coupling {
    Coupling { id: c.id.clone(), pipeline: pipeline.to_owned(), app: c.app_name.clone(), stage: c.stage.clone() }
}

/// Puts an app in a pipeline at a stage.
pub async fn couple(state: &AppState, principal: &Principal, pipeline: &str, app: &str, stage: &str) -> ApiResult<Coupling> {
    stage_rank(stage)?;
    let (row, _) = visible(state, principal, pipeline).await?;
    let app = app_named(state, app).await?;
    require_developer(state, principal, &app, "adding to a pipeline").await?;
    if let Some(c) = state.store.coupling_of(&app.id).await? {
        let other = state.store.pipeline(&c.pipeline_id).await?.map(|p| p.name).unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorId::Conflict,
            format!("{} is in pipeline {other} already, at {}: `paas pipelines:remove -a {}` takes it out first", app.name, c.stage, app.name),
        ));
    }
    state.store.couple(&row.id, &app.id, stage.trim()).await?;
    let c = state.store.coupling_of(&app.id).await?.ok_or_else(|| ApiError::internal("a coupling just made is gone"))?;
    Ok(coupling_to_wire(&row.name, &c))
}

/// The app's coupling (404 when it is in no pipeline).
pub async fn coupling(state: &AppState, app: &AppRow) -> ApiResult<Coupling> {
    let c = state.store.coupling_of(&app.id).await?.ok_or_else(|| {
        ApiError::not_found(format!("{} is in no pipeline: `paas pipelines:add PIPELINE -a {} --stage STAGE` adds it", app.name, app.name))
    })?;
    let pipeline = state.store.pipeline(&c.pipeline_id).await?.map(|p| p.name).unwrap_or_default();
    Ok(coupling_to_wire(&pipeline, &c))
}

pub async fn uncouple(state: &AppState, app: &AppRow) -> ApiResult<Coupling> {
    let c = coupling(state, app).await?;
    state.store.uncouple(&app.id).await?;
    Ok(c)
}

/// Releases the source app's current build in each target (given, else
/// every app of the next stage that has any), with the target's config;
/// waits up to `wait` for each target's dynos.
pub async fn promote(state: &AppState, principal: &Principal, source: &str, targets: &[String], wait: Option<Duration>) -> ApiResult<Promotion> {
    let source_app = app_named(state, source).await?;
    if role_on(state, principal, &source_app).await?.is_none() {
        return Err(access::no_such_app(&source_app.name));
    }
    let coupling = state.store.coupling_of(&source_app.id).await?.ok_or_else(|| {
        ApiError::unprocessable(
            ErrorId::InvalidValue,
            format!("{} is in no pipeline, so there is nowhere to promote to: `paas pipelines:add PIPELINE -a {} --stage staging`", source_app.name, source_app.name),
        )
    })?;
    let pipeline = state.store.pipeline(&coupling.pipeline_id).await?.ok_or_else(|| ApiError::internal("a coupling without its pipeline"))?;
    let couplings = state.store.couplings(&pipeline.id).await?;
    let rank = stage_rank(&coupling.stage)?;
    let chosen: Vec<&CouplingRow> = if targets.is_empty() {
        let next = couplings.iter().filter_map(|c| stage_rank(&c.stage).ok()).filter(|r| *r > rank).min();
        couplings.iter().filter(|c| next.is_some_and(|n| stage_rank(&c.stage).ok() == Some(n))).collect()
    } else {
        let mut chosen = Vec::new();
        for t in targets {
            let c = couplings.iter().find(|c| c.app_name == t.trim()).ok_or_else(|| {
                ApiError::unprocessable(ErrorId::InvalidValue, format!("{t} is not in pipeline {}: `paas pipelines:info {}` lists its apps", pipeline.name, pipeline.name))
            })?;
            if c.app_id == source_app.id {
                return Err(ApiError::unprocessable(ErrorId::InvalidValue, format!("{t} is the source: promote to another app")));
            }
            chosen.push(c);
        }
        chosen
    };
    if chosen.is_empty() {
        return Err(ApiError::unprocessable(
            ErrorId::InvalidValue,
            format!("no app of {} is at a stage after {} ({}): add one with `paas pipelines:add {} -a APP --stage production`", pipeline.name, source_app.name, coupling.stage, pipeline.name),
        ));
    }
    let source_release = state.store.current_release(&source_app.id).await?.filter(|r| r.image.is_some()).ok_or_else(|| {
        ApiError::unprocessable(ErrorId::NoBuild, format!("{} has no build to promote: push to it first", source_app.name))
    })?;
    // Every target is checked before any release is made.
    let mut apps = Vec::new();
    for c in &chosen {
        let app = state.store.app_by_id(&c.app_id).await?.ok_or_else(|| access::no_such_app(&c.app_name))?;
        require_developer(state, principal, &app, "promoting to").await?;
        apps.push(app);
    }
    let mut out = Vec::new();
    for app in apps {
        let output = Output::collect();
        match state.releases.promote(&app, &source_app.name, &source_release, &output).await {
            Ok(release) => {
                let deploy = state.releases.converge(&app, Some(release.version), wait).await;
                out.push(PromotionTarget { app: app.name.clone(), release: Some(super::releases::to_wire(&release, true)?), deploy: Some(deploy), error: None });
            }
            Err(e) => {
                let e = ApiError::from(e);
                if e.status.is_server_error() {
                    return Err(e);
                }
                out.push(PromotionTarget { app: app.name.clone(), release: None, deploy: None, error: Some(e.message) });
            }
        }
    }
    Ok(Promotion { pipeline: pipeline.name, source: source_app.name, source_release: source_release.version, targets: out })
}

/// The commits the app's build has that each app of the next stage's
/// build lacks, read from the app's repository.
pub async fn diff(state: &AppState, principal: &Principal, app: &AppRow) -> ApiResult<PipelineDiff> {
    let c = state.store.coupling_of(&app.id).await?.ok_or_else(|| {
        ApiError::unprocessable(ErrorId::InvalidValue, format!("{} is in no pipeline: `paas pipelines:add PIPELINE -a {}` adds it", app.name, app.name))
    })?;
    let rank = stage_rank(&c.stage)?;
    let couplings = state.store.couplings(&c.pipeline_id).await?;
    let next = couplings.iter().filter_map(|d| stage_rank(&d.stage).ok()).filter(|r| *r > rank).min();
    let (_, commit) = current_build(state, &app.id).await?;
    let repo = state.settings.repo_path(&app.name);
    let mut downstream = Vec::new();
    for d in couplings.iter().filter(|d| next.is_some_and(|n| stage_rank(&d.stage).ok() == Some(n))) {
        let Some(other) = state.store.app_by_id(&d.app_id).await? else { continue };
        if role_on(state, principal, &other).await?.is_none() {
            continue;
        }
        let (_, theirs) = current_build(state, &d.app_id).await?;
        let (commits, note) = match (&commit, &theirs) {
            (Some(ours), Some(theirs)) => {
                let (repo, ours, theirs) = (repo.clone(), ours.clone(), theirs.clone());
                match tokio::task::spawn_blocking(move || crate::git::commits_between(&repo, &ours, &theirs)).await.map_err(ApiError::internal)? {
                    Ok(list) => (list, None),
                    Err(why) => (Vec::new(), Some(why)),
                }
            }
            (None, _) => (Vec::new(), Some(format!("{} has no build yet", app.name))),
            (_, None) => (Vec::new(), Some(format!("{} has no build yet: promote to it", other.name))),
        };
        downstream.push(DownstreamDiff { app: other.name, commit: theirs, commits, note });
    }
    Ok(PipelineDiff { app: app.name.clone(), commit, downstream })
}
