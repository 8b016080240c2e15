//! `paas metrics` and `/metrics`: the metrics module's minutes of an app
//! shaped for the API (percentiles read from the histograms, merged over the
//! window), and Prometheus's text with the scheduler's restart counts.

use crate::http::{ApiError, ApiResult, AppState};
use crate::metrics::series::{Histogram, Minute};
use crate::store::AppRow;
use paas_wire::{AppMetrics, DynoUse, MetricsMinute, MetricsSummary, ProcessUse};

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn summary(requests: u64, client_errors: u64, server_errors: u64, h: &Histogram) -> MetricsSummary {
    let round = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
    MetricsSummary {
        requests,
        client_errors,
        server_errors,
        p50_ms: round(h.quantile(0.50)),
        p95_ms: round(h.quantile(0.95)),
        p99_ms: round(h.quantile(0.99)),
    }
}

fn minute(m: &Minute) -> MetricsMinute {
    MetricsMinute {
        at: rfc3339(m.at),
        requests: summary(m.requests, m.client_errors, m.server_errors, &m.service),
        processes: m
            .dynos
            .iter()
            .map(|(t, u)| (t.clone(), ProcessUse { memory_max_bytes: u.memory_max, memory_limit_bytes: u.memory_limit, cpu_percent: u.cpu() }))
            .collect(),
    }
}

/// The app's metrics over the last `window` (e.g. `1h`; at most a day).
pub fn app(state: &AppState, app: &AppRow, window: &str) -> ApiResult<AppMetrics> {
    if !state.metrics.on() {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            paas_wire::ErrorId::MetricsOff,
            "metrics are off on this server (PAAS_METRICS=off): ask its operator to turn them on",
        ));
    }
    let seconds = paas_wire::parse_window(window).map_err(ApiError::bad_request)?;
    let now = chrono::Utc::now().timestamp();
    let since = crate::metrics::series::minute_of(now - seconds as i64);
    let minutes = state.metrics.minutes(&app.name, since);
    let mut all = Histogram::default();
    let (mut requests, mut client_errors, mut server_errors) = (0, 0, 0);
    for m in &minutes {
        all.merge(&m.service);
        requests += m.requests;
        client_errors += m.client_errors;
        server_errors += m.server_errors;
    }
    let dynos = state
        .metrics
        .dynos(&app.name)
        .into_iter()
        .map(|(name, d)| DynoUse {
            name,
            process_type: d.process_type,
            memory_bytes: d.memory,
            memory_limit_bytes: d.limit,
            cpu_percent: d.cpu.map(|c| (c * 10.0).round() / 10.0),
            sampled_at: rfc3339(d.at),
        })
        .collect();
    Ok(AppMetrics {
        app: app.name.clone(),
        since: rfc3339(since),
        summary: summary(requests, client_errors, server_errors, &all),
        minutes: minutes.iter().map(minute).collect(),
        dynos,
    })
}

/// Prometheus's text exposition of every app.
pub fn prometheus(state: &AppState) -> String {
    crate::metrics::prom::render(&state.metrics, &state.scheduler.restarts())
}
