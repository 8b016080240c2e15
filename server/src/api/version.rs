//! `GET /version`: the server's version and its store schema, so a client
//! can tell a mismatch that matters (`paas version`).

use crate::http::Json;
use axum::routing::get;
use paas_wire::ServerVersion;

pub fn router() -> axum::Router<crate::http::AppState> {
    axum::Router::new().route("/version", get(version))
}

async fn version() -> Json<ServerVersion> {
    Json(ServerVersion { version: env!("CARGO_PKG_VERSION").to_owned(), schema: crate::store::Store::schema() })
}
