//! paas-server as a library: `command` parses the command line and calls in
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
pub mod command;
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

/// A map looked up on every routed request, keyed by app names and dyno
/// addresses: hashed with foldhash (seeded per process) instead of
/// SipHash, which cost about 3 % of the router's instructions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// See [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Whole seconds since the Unix epoch, now (0 if the clock is before it).
pub fn unix_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
