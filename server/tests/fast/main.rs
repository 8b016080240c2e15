//! The fast tests, in one binary: a real server in this process over the
//! fake runtime ([`harness`]), with real HTTP, real git pushes, the real
//! CLI and real drain receivers; and `tidy`, the architecture's rules read
//! from the source. No Docker engine needed.

#[path = "../shared/mod.rs"]
mod shared;

mod harness;
mod pushes;

mod access;
mod acme;
mod conventions;
mod decisions;
mod deploys;
mod logs;
mod metrics;
mod people;
mod pipelines;
mod rename;
mod run;
mod tidy;
mod tokens;
mod twelve;
