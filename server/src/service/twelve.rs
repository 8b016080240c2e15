//! The twelve-factor report of an app's running release: what the builder
//! and the scheduler recorded of its build and its dynos
//! (`crate::twelve::Observer`), and what its config, formation and
//! pipeline show now.

use crate::http::{ApiResult, AppState};
use crate::store::{AppRow, FindingRow};
use crate::twelve::{loopback_config, Factor, Finding};
use paas_wire::{FactorReport, Observation, TwelveFactorReport};
use std::collections::BTreeMap;

fn from_row(r: &FindingRow) -> Observation {
    Observation { ok: r.ok != 0, message: r.message.clone(), fix: (!r.fix.is_empty()).then(|| r.fix.clone()), seen_at: Some(r.last_seen.clone()) }
}

fn from_finding(f: &Finding) -> Observation {
    Observation { ok: f.ok, message: f.message.clone(), fix: (!f.fix.is_empty()).then(|| f.fix.clone()), seen_at: None }
}

pub async fn report(state: &AppState, app: &AppRow) -> ApiResult<TwelveFactorReport> {
    let mut seen: BTreeMap<Factor, Vec<Observation>> = BTreeMap::new();
    // The newest release: the one that runs, or the one that just failed
    // to (whose dynos said why).
    let release = state.store.current_release(&app.id).await?;
    if let Some(release) = &release {
        let mut scopes = vec![release.id.as_str()];
        if let Some(build) = &release.build_id {
            scopes.push(build);
        }
        // Config and the pipeline are read now (the pass recorded them
        // to tell the log).
        for row in state.store.findings(&app.id, &scopes).await?.iter().filter(|r| !crate::twelve::READ_NOW.contains(&r.code.as_str())) {
            if let Some(f) = Factor::from_number(row.factor) {
                seen.entry(f).or_default().push(from_row(row));
            }
        }
        let build = match &release.build_id {
            Some(id) => state.store.build_by_id(id).await?,
            None => None,
        };
        let mut now = Vec::new();
        // I and V: one build, released with config, by the platform.
        if let Some(b) = &build {
            let short = &b.commit_sha[..b.commit_sha.len().min(7)];
            now.push(Finding::good(Factor::Codebase, "build", "", format!("v{} runs build {} of {short}, made from this app's own source", release.version, &b.id[..8])));
            now.push(Finding::good(
                Factor::BuildReleaseRun,
                "release",
                "",
                format!("v{} pairs that build with its config; every change makes a new release, and rollbacks go back to one", release.version),
            ));
        }
        // III/IV: config read now; never a value.
        let config = state.cipher.open(&crate::crypto::config_owner(&app.id), &release.config)?;
        let loopback = loopback_config(&config);
        if loopback.is_empty() {
            now.push(Finding::good(Factor::BackingServices, "loopback", "", format!("none of its {} config vars points at the dyno's loopback", config.len())));
        }
        now.extend(loopback);
        // VIII: its process types, scaled by the platform.
        let types = release.process_types().unwrap_or_default();
        if !types.is_empty() {
            let formation = state.store.formation(&app.id).await?;
            let scale: Vec<String> = types
                .keys()
                .filter(|t| *t != "release")
                .map(|t| format!("{t}={}", formation.get(t).copied().unwrap_or(i64::from(t == "web"))))
                .collect();
            now.push(Finding::good(Factor::Concurrency, "formation", "", format!("process types {} scale out with `paas ps:scale`", scale.join(", "))));
        }
        // XII: the release phase ran as a one-off process.
        if let Some(cmd) = types.get("release") {
            now.push(Finding::good(Factor::AdminProcesses, "release", "", format!("its release phase (`{cmd}`) runs as a one-off process of each release")));
        }
        // XI: its dynos write to stdout, which the platform collects.
        let filter = crate::logs::Filter { source: Some(crate::logs::Source::App), ..Default::default() };
        let lines = state.logs.history(&app.name, &filter, 1000).len();
        if lines > 0 {
            now.push(Finding::good(Factor::Logs, "stdout", "", format!("its dynos write their logs to stdout ({lines} recent lines in `paas logs`)")));
        }
        // X: every stage of its pipeline runs the same build.
        now.extend(crate::twelve::parity(&state.store, app, release.build_id.as_deref()).await?);
        for f in &now {
            seen.entry(f.factor).or_default().push(from_finding(f));
        }
    }
    let factors = Factor::ALL
        .iter()
        .map(|f| {
            let mut observations = seen.remove(f).unwrap_or_default();
            observations.sort_by_key(|o| o.ok);
            let status = match observations.first() {
                None => "not_observed",
                Some(o) if !o.ok => "finding",
                Some(_) => "ok",
            };
            FactorReport { number: f.number(), numeral: f.numeral().to_owned(), name: f.title().to_owned(), status: status.to_owned(), observations }
        })
        .collect();
    Ok(TwelveFactorReport { app: app.name.clone(), release: release.map(|r| r.version), factors })
}
