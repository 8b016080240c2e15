//! Apps: list, create, show, destroy (through the release service, then
//! the app's domains, certificates and git repo).

use paas_wire::ErrorId;
use crate::http::{ApiError, ApiResult, AppState};
use crate::store::{AppRow, StoreError};
use axum::http::StatusCode;
use paas_wire::{App, AppName};
use tracing::{info, warn};

pub async fn to_wire(state: &AppState, app: &AppRow) -> ApiResult<App> {
    let current = state.store.current_release(&app.id).await?;
    Ok(App {
        id: app.id.clone(),
        name: app.name.clone(),
        created_at: app.created_at.clone(),
        web_url: state.web_url(&app.name),
        git_url: state.git_url(&app.name),
        current_release: current.map(|r| r.version),
        destroyed: Vec::new(),
        disk: None,
    })
}

/// The app as `GET /apps/{app}` shows it: with the disk it uses.
pub async fn info(state: &AppState, app: &AppRow) -> ApiResult<App> {
    let mut wire = to_wire(state, app).await?;
    let runtime = state.scheduler.runtime();
    let removed = state.store.removed_images().await?;
    let mut images: Vec<String> = state.store.list_releases(&app.id).await?.into_iter().filter_map(|r| r.image).filter(|i| !removed.contains(i)).collect();
    images.sort();
    images.dedup();
    let mut disk = paas_wire::AppDisk::default();
    for image in &images {
        if let Ok(Some(size)) = runtime.image_size(image).await {
            disk.images += size;
            disk.image_count += 1;
        }
    }
    disk.build_cache = runtime.volume_size(&crate::runtime::build_cache_volume(&app.name)).await.ok().flatten();
    let (repo, logs, name) = (state.settings.repo_path(&app.name), state.logs.clone(), app.name.clone());
    (disk.repo, disk.logs) =
        tokio::task::spawn_blocking(move || (crate::du::bytes(&repo) as i64, logs.journal_bytes(&name) as i64)).await.unwrap_or_default();
    wire.disk = Some(disk);
    Ok(wire)
}

/// The apps `principal` has a role on (all, for a platform admin).
pub async fn list(state: &AppState, principal: &crate::http::access::Principal) -> ApiResult<Vec<App>> {
    let mut out = Vec::new();
    for app in super::access::visible_apps(state, principal).await? {
        out.push(to_wire(state, &app).await?);
    }
    Ok(out)
}

/// Creates an app; its creator is its admin.
pub async fn create(state: &AppState, name: &str, creator: &crate::http::access::Principal) -> ApiResult<App> {
    let name = AppName::parse(name)?;
    let app = match state.store.create_app(&name).await {
        Ok(app) => app,
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(StatusCode::CONFLICT, ErrorId::NameTaken, format!("app {name} already exists: choose another name")))
        }
        Err(e) => return Err(e.into()),
    };
    state.store.set_app_role(&app.id, &creator.user.id, crate::http::access::Role::Admin.as_str()).await?;
    // A journal left on disk under this name (by an app of the same name
    // destroyed while the server was down) is not this app's history.
    state.logs.forget_app(name.as_str());
    info!(app = %name, "app created");
    to_wire(state, &app).await
}

/// Destroys the app; answers what it was.
pub async fn destroy(state: &AppState, app: &AppRow) -> ApiResult<App> {
    let mut wire = to_wire(state, app).await?;
    let domains = state.store.domains(&app.id).await?;
    // Refused while an add-on it owns serves another app; else they go first
    // (their containers leave the app's network before it is removed).
    wire.destroyed = state.addons.remove_app(app).await?;
    state.releases.destroy(app).await?;
    state.builder.forget(&app.name);
    state.metrics.remove_app(&app.name);
    // Its domains answer 404 from now on, and are free for another app.
    for (hostname, _) in domains {
        if let Ok(h) = paas_wire::Hostname::parse(&hostname) {
            state.domains.remove(&h);
            state.certs.remove(h.as_str());
        }
    }
    // The git receiver makes the repo again at the next push to this name.
    let repo = state.settings.repo_path(&app.name);
    if let Err(e) = std::fs::remove_dir_all(&repo) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(app = %app.name, error = %e, "cannot remove the git repo");
        }
    }
    Ok(wire)
}

/// `apps:rename`: the app goes by `new` from now on. Its id, releases,
/// config, add-ons, domains, people, tokens and pipeline stay; its router
/// host, git repo, log (history, tails and drains), images' tags and dynos
/// follow the name, and the old name answers nothing. Dynos are started
/// under the new name (as Heroku restarts them) before the old ones stop;
/// one-off dynos of the old name stop. Refused while a build runs.
pub async fn rename(state: &AppState, app: &AppRow, new: &str) -> ApiResult<App> {
    let new = AppName::parse(new)?;
    if new.as_str() == app.name {
        return Err(ApiError::unprocessable(ErrorId::NameTaken, format!("{} is already called {new}", app.name)));
    }
    let Some(_builds) = state.builder.idle(app) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorId::AppBusy,
            format!("a build of {} is running: rename it once the build is done (see `paas builds -a {}`)", app.name, app.name),
        ));
    };
    let _releases = state.releases.hold(app).await;
    let old = app.name.clone();
    let renamed = match state.store.rename_app(app, &new).await {
        Ok(a) => a,
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(StatusCode::CONFLICT, ErrorId::NameTaken, format!("app {new} already exists: choose another name")))
        }
        Err(e) => return Err(e.into()),
    };
    // The store names the app `new` now; what follows moves what is kept
    // by name. A step that fails is logged: the app serves under the new
    // name regardless, and a restart's first pass clears the old dynos.
    let (from, to) = (state.settings.repo_path(&old), state.settings.repo_path(&renamed.name));
    if let Err(e) = std::fs::rename(&from, &to) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(app = %renamed.name, error = %e, "cannot move the git repo: the next push starts a new one");
        }
    }
    state.logs.rename_app(&old, &renamed.name);
    state.metrics.rename_app(&old, &renamed.name);
    for drain in state.store.drains(&app.id).await? {
        match state.cipher.open_str(&crate::crypto::drain_owner(&app.id), &drain.url) {
            Ok(url) => state.logs.start_drain(crate::logs::drain::DrainSpec { id: drain.id, app: renamed.name.clone(), url, token: drain.token }),
            Err(e) => warn!(app = %renamed.name, drain = %drain.id, error = %format!("{e:#}"), "drain not started"),
        }
    }
    state.scheduler.routes().rename(&old, &renamed.name);
    for (hostname, _) in state.store.domains(&app.id).await? {
        if let Ok(h) = paas_wire::Hostname::parse(&hostname) {
            state.domains.set(&h, &renamed.name);
        }
    }
    // Builds are tagged by app name (what destroy removes by name).
    let runtime = state.scheduler.runtime().clone();
    for build in crate::release::tagged_builds(&state.store, &app.id).await? {
        if let Err(e) = runtime.retag_image(&crate::runtime::build_image(&old, &build), &crate::runtime::build_image(&renamed.name, &build)).await {
            warn!(app = %renamed.name, error = %format!("{e:#}"), "cannot retag a build's image");
        }
    }
    // The build cache is a volume, which has no rename: the next build
    // fills a new one.
    if let Err(e) = runtime.retag_image(&crate::runtime::deps_image(&old), &crate::runtime::deps_image(&renamed.name)).await {
        warn!(app = %renamed.name, error = %format!("{e:#}"), "cannot retag the dependency image");
    }
    if let Err(e) = runtime.remove_volume(&crate::runtime::build_cache_volume(&old)).await {
        warn!(app = %renamed.name, error = %format!("{e:#}"), "cannot remove the old build cache");
    }
    state.builder.forget(&old);
    // Add-ons join the new name's network before its dynos start.
    state.addons.follow_rename(&renamed, &old, false).await?;
    state.logs.event(&renamed.name, "api", format!("Renamed from {old} to {}", renamed.name));
    let wait = state.settings.dynos.boot_timeout * 2 + std::time::Duration::from_secs(60);
    let deploy = state.releases.converge(&renamed, None, Some(wait)).await;
    info!(app = %renamed.name, from = %old, state = ?deploy.state, "app renamed");
    // The old dynos serve no more (the new name's pass routed its own):
    // the add-ons leave their network, then they stop and it goes.
    if let Err(e) = state.addons.follow_rename(&renamed, &old, true).await {
        warn!(app = %renamed.name, error = %e, "add-ons cannot leave the old name's network");
    }
    if let Err(e) = state.scheduler.remove_app(&old).await {
        warn!(app = %renamed.name, error = %format!("{e:#}"), "cannot stop the old name's dynos");
    }
    to_wire(state, &renamed).await
}

/// The app's own Swarm placement constraints.
pub async fn constraints(state: &AppState, app: &AppRow) -> ApiResult<paas_wire::Constraints> {
    Ok(paas_wire::Constraints { constraints: state.store.app_constraints(&app.id).await? })
}

/// Replaces the app's placement constraints, each checked first; dynos
/// started from now on keep to them (`paas ps:restart` moves running ones).
pub async fn set_constraints(state: &AppState, app: &AppRow, constraints: &[String]) -> ApiResult<paas_wire::Constraints> {
    let constraints: Vec<String> = constraints.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
    for c in &constraints {
        crate::runtime::Constraint::parse(c).map_err(|e| ApiError::unprocessable(ErrorId::BadRequest, e))?;
    }
    state.store.set_app_constraints(&app.id, &constraints).await?;
    info!(app = %app.name, constraints = ?constraints, "placement constraints set");
    Ok(paas_wire::Constraints { constraints })
}

/// Whether the app is in maintenance mode.
pub async fn maintenance(state: &AppState, app: &AppRow) -> ApiResult<bool> {
    Ok(state.store.in_maintenance(&app.id).await?)
}

/// Turns maintenance mode on or off: at once on the router, and kept in the
/// store for the next start. Dynos and one-off dynos run on.
pub async fn set_maintenance(state: &AppState, app: &AppRow, on: bool) -> ApiResult<bool> {
    state.store.set_maintenance(&app.id, on).await?;
    state.scheduler.routes().set_maintenance(&app.name, on);
    if on {
        if let Err(e) = state.scheduler.refresh_maintenance_page(app).await {
            warn!(app = %app.name, error = %format!("{e:#}"), "cannot load the app's own maintenance page: the platform's shows");
        }
    }
    let word = if on { "on" } else { "off" };
    state.logs.event(&app.name, "api", format!("Maintenance mode {word}"));
    info!(app = %app.name, on, "maintenance mode");
    Ok(on)
}
