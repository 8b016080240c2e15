//! The twelve-factor report: where an app departs from the twelve factors,
//! from what the platform observed of its real build and release, with the
//! evidence; never a guess. The detectors are pure ([`scan`]: the pushed
//! tree at build time; [`sockets`]: a dyno's socket table); the builder and
//! the scheduler record what they observe through an [`Observer`]
//! (`store/findings.rs`), and `service::twelve` assembles the report.

pub mod disk;
pub mod scan;
pub mod sockets;

use crate::logs::LogRouter;
use crate::store::{AppRow, Store};
use serde::Serialize;

/// The twelve factors, by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Factor {
    Codebase = 1,
    Dependencies,
    Config,
    BackingServices,
    BuildReleaseRun,
    Processes,
    PortBinding,
    Concurrency,
    Disposability,
    DevProdParity,
    Logs,
    AdminProcesses,
}

impl Factor {
    pub const ALL: [Factor; 12] = [
        Factor::Codebase,
        Factor::Dependencies,
        Factor::Config,
        Factor::BackingServices,
        Factor::BuildReleaseRun,
        Factor::Processes,
        Factor::PortBinding,
        Factor::Concurrency,
        Factor::Disposability,
        Factor::DevProdParity,
        Factor::Logs,
        Factor::AdminProcesses,
    ];

    pub fn number(self) -> i64 {
        self as i64
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.get(usize::try_from(n).ok()?.checked_sub(1)?).copied()
    }

    pub fn numeral(self) -> &'static str {
        ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"][self as usize - 1]
    }

    pub fn title(self) -> &'static str {
        match self {
            Factor::Codebase => "Codebase",
            Factor::Dependencies => "Dependencies",
            Factor::Config => "Config",
            Factor::BackingServices => "Backing services",
            Factor::BuildReleaseRun => "Build, release, run",
            Factor::Processes => "Processes",
            Factor::PortBinding => "Port binding",
            Factor::Concurrency => "Concurrency",
            Factor::Disposability => "Disposability",
            Factor::DevProdParity => "Dev/prod parity",
            Factor::Logs => "Logs",
            Factor::AdminProcesses => "Admin processes",
        }
    }
}

/// One observation: a departure from a factor (`ok` false) with what was
/// seen and the fix, or evidence that the factor holds (`ok` true).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub factor: Factor,
    /// What kind of observation (`port`, `secret`, `lockfile`, ...).
    pub code: &'static str,
    /// What it is about (a file, a dyno's process type, a config key):
    /// one row per code and subject.
    pub subject: String,
    pub ok: bool,
    /// What was seen, with the evidence (never a secret's value).
    pub message: String,
    /// What to do; empty for an ok observation.
    pub fix: String,
}

impl Finding {
    pub fn bad(factor: Factor, code: &'static str, subject: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { factor, code, subject: subject.into(), ok: false, message: message.into(), fix: fix.into() }
    }

    pub fn good(factor: Factor, code: &'static str, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self { factor, code, subject: subject.into(), ok: true, message: message.into(), fix: String::new() }
    }
}

/// Records observations of an app's build or release, and tells the app's
/// log about each departure the first time it is seen.
#[derive(Clone)]
pub struct Observer {
    store: Store,
    logs: LogRouter,
}

impl Observer {
    pub fn new(store: Store, logs: LogRouter) -> Self {
        Self { store, logs }
    }

    /// Records `findings` of `app` seen on `scope` (a build's or a
    /// release's id). A failure to record is logged, never an error: an
    /// observation must not fail a deploy.
    pub async fn record(&self, app_id: &str, app: &str, scope: &str, findings: &[Finding]) {
        for f in findings {
            let row = crate::store::NewFinding {
                factor: f.factor.number(),
                code: f.code,
                subject: &f.subject,
                ok: f.ok,
                message: &f.message,
                fix: &f.fix,
            };
            match self.store.record_finding(app_id, scope, &row).await {
                Ok(true) if !f.ok => {
                    self.logs.event(app, "12factor", format!("{} {}: {} ({})", f.factor.numeral(), f.factor.title(), f.message, f.fix));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(app, code = f.code, error = %e, "cannot record a twelve-factor observation"),
            }
        }
    }

    /// [`Observer::record`] for an app known by name only (a dyno's).
    pub async fn record_for(&self, app: &str, scope: &str, findings: &[Finding]) {
        let Ok(name) = paas_wire::AppName::parse(app) else { return };
        match self.store.app(&name).await {
            Ok(row) => self.record(&row.id, app, scope, findings).await,
            Err(e) => tracing::debug!(app, error = %e, "no app to record an observation for"),
        }
    }
}

/// Observation codes the report reads afresh rather than from the store
/// (the pass records them only to tell the log when first seen).
pub const READ_NOW: [&str; 2] = ["loopback", "pipeline"];

/// Dev/prod parity: whether the apps of the app's pipeline run the build
/// it runs. Nothing when it is in no pipeline.
pub async fn parity(store: &Store, app: &AppRow, build: Option<&str>) -> crate::store::StoreResult<Vec<Finding>> {
    let Some(coupling) = store.coupling_of(&app.id).await? else { return Ok(Vec::new()) };
    let Some(pipeline) = store.pipeline(&coupling.pipeline_id).await? else { return Ok(Vec::new()) };
    let mut differ = Vec::new();
    let mut others = 0;
    for c in store.couplings(&coupling.pipeline_id).await? {
        if c.app_id == app.id {
            continue;
        }
        others += 1;
        let theirs = store.desired_release(&c.app_id).await?.and_then(|r| r.build_id);
        if theirs.as_deref() != build {
            let short = |b: Option<&str>| b.map_or_else(|| "no build".to_owned(), |b| format!("build {}", &b[..b.len().min(8)]));
            differ.push(format!("{} ({}) runs {}", c.app_name, c.stage, short(theirs.as_deref())));
        }
    }
    Ok(if differ.is_empty() {
        if others == 0 {
            Vec::new()
        } else {
            vec![Finding::good(Factor::DevProdParity, "pipeline", "", format!("every stage of pipeline {} runs the same build", pipeline.name))]
        }
    } else {
        let mine = build.map_or_else(|| "no build".to_owned(), |b| format!("build {}", &b[..b.len().min(8)]));
        vec![Finding::bad(
            Factor::DevProdParity,
            "pipeline",
            "",
            format!("{} ({}) runs {mine}, while {}", app.name, coupling.stage, differ.join(", ")),
            "promote the build that was tried (`paas pipelines:promote`) rather than building each stage on its own",
        )]
    })
}

/// Config values that point at the dyno's own loopback: a backing service
/// must be attached by URL, not local to the dyno (IV). Names the key and
/// the host, never the value.
pub fn loopback_config(config: &std::collections::BTreeMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (key, value) in config {
        let Some((scheme, rest)) = value.split_once("://") else { continue };
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) {
            continue;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if let Some(v6) = host_port.strip_prefix('[') {
            v6.split(']').next().unwrap_or_default()
        } else {
            host_port.split(':').next().unwrap_or_default()
        };
        let host = host.to_ascii_lowercase();
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
        if loopback {
            out.push(Finding::bad(
                Factor::BackingServices,
                "loopback",
                key.clone(),
                format!("{key} points at {host}, the dyno's own loopback, where no backing service runs"),
                format!("attach the service (`paas addons:create`) or set {key} to a URL the dynos reach"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_have_numbers_numerals_and_titles() {
        assert_eq!(Factor::PortBinding.number(), 7);
        assert_eq!(Factor::from_number(7), Some(Factor::PortBinding));
        assert_eq!(Factor::from_number(0), None);
        assert_eq!(Factor::from_number(13), None);
        assert_eq!(Factor::AdminProcesses.numeral(), "XII");
        assert_eq!(Factor::DevProdParity.title(), "Dev/prod parity");
    }

    #[test]
    fn loopback_urls_in_config_are_named_by_key_and_host() {
        let config = [
            ("DATABASE_URL", "postgres://u:secret@localhost:5432/db"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("V6", "http://[::1]:80/"),
            ("CACHE_URL", "redis://cache.internal:6379"),
            ("GREETING", "hello localhost"),
            ("ANY", "http://0.0.0.0:9/"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let found = loopback_config(&config);
        let keys: Vec<&str> = found.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(keys, ["ANY", "DATABASE_URL", "REDIS_URL", "V6"]);
        assert!(found.iter().all(|f| !f.message.contains("secret")), "never the value");
        assert!(found[1].message.contains("localhost"));
    }
}
