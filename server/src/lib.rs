//! paas-server as a library: `main.rs` parses the command line and calls in
//! here, and the integration tests use the same entry points. ARCHITECTURE.md
//! maps the modules; the flow is one way: git receiver → builder → release
//! service → scheduler → runtime.

pub mod acme;
pub mod actor;
pub mod addons;
pub mod api;
pub mod appjson;
pub mod backup;
pub mod builder;
pub mod buildpack;
pub mod cron;
pub mod crypto;
pub mod dashboard;
pub mod dockerignore;
pub mod du;
pub mod gc;
pub mod git;
pub mod hook;
pub mod known;
pub mod http;
pub mod listen;
pub mod locks;
pub mod logs;
pub mod metrics;
pub mod oneoff;
pub mod outbound;
pub mod output;
pub mod procfile;
pub mod release;
pub mod router;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod settings;
pub mod source;
pub mod stack;
pub mod store;
pub mod tls;
pub mod tools;
pub mod twelve;

/// Whole seconds since the Unix epoch, now (0 if the clock is before it).
pub fn unix_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
