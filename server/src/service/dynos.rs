//! Dynos: what runs now and how it fares, as the scheduler sees it, with
//! each dyno's command as the Procfile gives it (and one-off dynos with the
//! command the user gave); restart (all, a type, or one dyno, rolling) and
//! stop.

use paas_wire::ErrorId;
use crate::http::{ApiError, ApiResult, AppState};
use crate::store::AppRow;
use paas_wire::{Dyno, DynoRestart};
use std::collections::HashMap;

pub async fn list(state: &AppState, app: &AppRow) -> ApiResult<Vec<Dyno>> {
    let mut commands: HashMap<(i64, String), String> = HashMap::new();
    for r in state.store.list_releases(&app.id).await? {
        for (t, c) in r.process_types()? {
            commands.insert((r.version, t), c);
        }
    }
    let samples = state.metrics.dynos(&app.name);
    let mut dynos: Vec<Dyno> = state
        .scheduler
        .ps(app)
        .await?
        .into_iter()
        .map(|d| Dyno {
            memory_bytes: samples.get(&d.name).map(|s| s.memory),
            memory_limit_bytes: samples.get(&d.name).map(|s| s.limit),
            cpu_percent: samples.get(&d.name).and_then(|s| s.cpu),
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
            node: d.node,
        })
        .collect();
    dynos.extend(state.one_offs.list(app).await?.iter().map(one_off_to_wire));
    dynos.sort_by(|a, b| (&a.process_type, a.name.len(), &a.name).cmp(&(&b.process_type, b.name.len(), &b.name)));
    Ok(dynos)
}

/// A one-off dyno (`run.3`) as `paas ps` shows it: up, with the command
/// the user gave.
pub fn one_off_to_wire(o: &crate::runtime::OneOff) -> Dyno {
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
        container_id: o.dyno.id.short(),
        node: o.dyno.node.clone(),
        memory_bytes: None,
        memory_limit_bytes: None,
        cpu_percent: None,
    }
}

/// `web` or `web.1`: a process type, optionally with a dyno number (the
/// dynos to restart or stop, the logs to show).
pub fn parse_target(target: &str) -> ApiResult<()> {
    let (ptype, index) = match target.split_once('.') {
        Some((t, i)) => (t, Some(i)),
        None => (target, None),
    };
    paas_wire::ProcessType::parse(ptype)?;
    if index.is_some_and(|i| i.parse::<u32>().is_err()) {
        return Err(ApiError::unprocessable(
            ErrorId::InvalidDyno,
            format!("{target:?} is not a process type or a dyno: write it like `web` or `web.1`"),
        ));
    }
    Ok(())
}

/// Restarts the app's dynos, those of a type, or one (`target`), rolling.
pub async fn restart(state: &AppState, app: &AppRow, target: Option<&str>) -> ApiResult<DynoRestart> {
    if let Some(t) = target {
        parse_target(t)?;
    }
    let (restarted, failed) = state.scheduler.restart(app, target).await?;
    if restarted.is_empty() && failed.is_empty() {
        let what = target.map_or_else(|| "no dynos".to_owned(), |t| format!("no dyno {t}"));
        return Err(ApiError::not_found(format!("{} has {what} running: see `paas ps -a {}`", app.name, app.name)));
    }
    Ok(DynoRestart { restarted, failures: failed.iter().map(|f| f.to_string()).collect() })
}

/// Stops one dyno; a dyno of the formation comes back, as on Heroku.
pub async fn stop(state: &AppState, app: &AppRow, dyno: &str) -> ApiResult<()> {
    parse_target(dyno)?;
    // One-off dynos first: `run.N` (a reserved type) and the cron
    // service's `scheduler.1001` and up are named like no formation dyno.
    if dyno.contains('.') && state.one_offs.stop(app, dyno).await? {
        return Ok(());
    }
    if !state.scheduler.stop_dyno(app, dyno).await? {
        return Err(ApiError::not_found(format!("{} has no dyno {dyno} running: see `paas ps -a {}`", app.name, app.name)));
    }
    state.scheduler.request(app.clone());
    Ok(())
}
