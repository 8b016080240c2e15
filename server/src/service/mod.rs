//! The operations of the API and the dashboard, as typed functions: each
//! takes the state and the app an [`crate::http::AppPath`] resolved, and
//! returns a wire type or a [`paas_wire::ChangeResult`] (what a change made
//! and whether its dynos serve). The API's JSON routes and the dashboard's
//! forms both call these and shape the answer for their client; neither
//! calls the other. Changes go through the release service.

pub mod access;
pub mod addons;
pub mod apps;
pub mod builds;
pub mod config;
pub mod cron;
pub mod domains;
pub mod dynos;
pub mod formation;
pub mod logs;
pub mod metrics;
pub mod nodes;
pub mod pipelines;
pub mod releases;
pub mod twelve;
