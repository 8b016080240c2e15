//! paas-server as a library: `main.rs` parses the command line and calls in
//! here, and the integration tests use the same entry points.

pub mod crypto;
pub mod settings;
pub mod store;
