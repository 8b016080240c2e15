//! paas-server as a library: `main.rs` parses the command line and calls in
//! here, and the integration tests use the same entry points.

pub mod crypto;
pub mod settings;
pub mod store;
pub mod runtime;
pub mod dockerignore;
pub mod procfile;
pub mod router;
pub mod scheduler;
pub mod builder;
pub mod api;
pub mod git;
pub mod hook;
pub mod locks;
pub mod server;
pub mod stack;
pub mod appjson;
pub mod buildpack;
