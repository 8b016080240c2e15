//! The engine tests' harness, by concern: [`platform`] (a real server
//! process and its clients), [`fixtures`] (the apps pushed), [`load`]
//! (traffic during a change), [`terminal`] (tmux), [`swarm`] (the
//! three-node test bed), [`registry`] (a registry on loopback).

pub mod fixtures;
pub mod load;
pub mod platform;
pub mod registry;
pub mod swarm;
pub mod terminal;

pub use crate::shared::*;
pub use fixtures::*;
pub use load::*;
pub use platform::*;
pub use registry::*;
pub use swarm::*;
pub use terminal::*;
