//! The HTTP API on `PAAS_LISTEN`: JSON resources after Heroku's Platform
//! API, one `router()` per resource module, merged here. Handlers parse and
//! answer; every change goes through the release service, and nothing here
//! holds release logic. The server puts the token check in front.
//!
//! Release-making endpoints take `?wait=SECONDS`: with it they answer a
//! [`paas_wire::ChangeResult`] once the change serves, fails or the wait
//! ends; without it, the resource as Heroku shapes it, at once.

mod access;
pub(crate) mod addons;
mod apps;
mod builds;
mod certs;
mod config_vars;
mod cron;
mod domains;
mod dynos;
mod formation;
pub(crate) mod logs;
mod nodes;
mod pipelines;
mod releases;
mod run;
mod tokens;
mod metrics;
mod twelve;
mod version;

use crate::http::AppState;
use std::time::Duration;

/// The longest `?wait=` honoured.
const MAX_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, serde::Deserialize)]
pub(crate) struct WaitQuery {
    /// Seconds to wait for the change to serve; absent: answer at once with
    /// the Heroku-shaped resource.
    pub(crate) wait: Option<u64>,
}

impl WaitQuery {
    pub(crate) fn duration(&self) -> Option<Duration> {
        self.wait.map(|s| Duration::from_secs(s).min(MAX_WAIT))
    }
}

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .merge(apps::router())
        .merge(addons::router())
        .merge(config_vars::router())
        .merge(releases::router())
        .merge(formation::router())
        .merge(builds::router())
        .merge(dynos::router())
        .merge(logs::router())
        .merge(domains::router())
        .merge(certs::router())
        .merge(run::router())
        .merge(cron::router())
        .merge(nodes::router())
        .merge(tokens::router())
        .merge(access::router())
        .merge(pipelines::router())
        .merge(twelve::router())
        .merge(metrics::router())
        .merge(version::router())
}

/// Prometheus's `/metrics` on `PAAS_METRICS_LISTEN`, a listener of its own
/// without a credential.
pub fn metrics_listener(state: AppState) -> axum::Router {
    metrics::listener(state)
}

/// The routes that need no credential (signing in).
pub fn public_router() -> axum::Router<AppState> {
    access::public_router()
}
