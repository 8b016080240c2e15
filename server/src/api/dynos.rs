//! `/apps/{app}/dynos`: what runs now and how it fares, as the scheduler
//! sees it, with each dyno's command as the Procfile gives it; restart (all,
//! a type, or one dyno, rolling) and stop, after Heroku's Platform API.

use crate::http::{ApiError, ApiResult, AppState, Json};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use super::parse_target;
use paas_wire::{Dyno, DynoRestart};
use std::collections::HashMap;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/dynos", get(list).delete(restart_all).post(super::run::create_detached))
        .route("/apps/{app}/dynos/{target}", delete(restart_one))
        .route("/apps/{app}/dynos/{dyno}/actions/stop", post(stop))
}

pub(crate) async fn list(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<Vec<Dyno>>> {
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
            size: d.size,
            container_id: d.container_id,
        })
        .collect();
    dynos.extend(state.one_offs.list(&app).await?.iter().map(one_off_to_wire));
    dynos.sort_by(|a, b| (&a.process_type, a.name.len(), &a.name).cmp(&(&b.process_type, b.name.len(), &b.name)));
    Ok(Json(dynos))
}

/// A one-off dyno (`run.3`) as `paas ps` shows it: up, with the command
/// the user gave.
pub(crate) fn one_off_to_wire(o: &crate::runtime::OneOff) -> Dyno {
    Dyno {
        name: o.dyno.name(),
        process_type: o.dyno.process_type.clone(),
        release_version: o.dyno.release_version,
        state: "up".into(),
        since: chrono::DateTime::from_timestamp(o.dyno.created, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        restarts: 0,
        exit_code: None,
        command: o.command.clone(),
        size: o.dyno.size(),
        container_id: o.dyno.container_id.chars().take(12).collect(),
    }
}

pub(crate) async fn restart(state: &AppState, app: &str, target: Option<&str>) -> ApiResult<Json<DynoRestart>> {
    let app = state.app(app).await?;
    if let Some(t) = target {
        parse_target(t)?;
    }
    let (restarted, failed) = state.scheduler.restart(&app, target).await?;
    if restarted.is_empty() && failed.is_empty() {
        let what = target.map_or_else(|| "no dynos".to_owned(), |t| format!("no dyno {t}"));
        return Err(ApiError::not_found(format!("{} has {what} running: see `paas ps -a {}`", app.name, app.name)));
    }
    Ok(Json(DynoRestart { restarted, failures: failed.iter().map(|f| f.to_string()).collect() }))
}

pub(crate) async fn restart_all(State(state): State<AppState>, Path(app): Path<String>) -> ApiResult<Json<DynoRestart>> {
    restart(&state, &app, None).await
}

pub(crate) async fn restart_one(
    State(state): State<AppState>,
    Path((app, target)): Path<(String, String)>,
) -> ApiResult<Json<DynoRestart>> {
    restart(&state, &app, Some(&target)).await
}

pub(crate) async fn stop(State(state): State<AppState>, Path((app, dyno)): Path<(String, String)>) -> ApiResult<StatusCode> {
    let app = state.app(&app).await?;
    parse_target(&dyno)?;
    if dyno.starts_with("run.") && state.one_offs.stop(&app, &dyno).await? {
        return Ok(StatusCode::ACCEPTED);
    }
    if !state.scheduler.stop_dyno(&app, &dyno).await? {
        return Err(ApiError::not_found(format!("{} has no dyno {dyno} running: see `paas ps -a {}`", app.name, app.name)));
    }
    // A dyno of the formation comes back, as on Heroku.
    state.scheduler.request(app);
    Ok(StatusCode::ACCEPTED)
}
