//! The engine tests, in one binary: a real `paas-server` process on the
//! real Docker engine, driven by the real CLI, git, HTTP, a browser
//! (`dashboard`) and a terminal (`run_e2e`); the harness is in
//! [`harness`], split by concern.

#[path = "../shared/mod.rs"]
mod shared;

mod harness;

mod access_e2e;
mod addons_e2e;
mod api;
mod backup_e2e;
mod buildpacks;
mod dashboard;
mod deploys_e2e;
mod e2e;
mod faults;
mod logs_e2e;
mod metrics_e2e;
mod registry;
mod run_e2e;
mod swarm_e2e;
mod swarm_testbed;
mod tasks_e2e;
mod twelve_e2e;
