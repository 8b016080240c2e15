//! Extractors every app route shares. [`AppPath`] is the app the route's
//! `{app}` segment (or git's `{repo}`, `APP.git`) names: the one the access
//! check found and allowed ([`crate::http::access::AppAccess`]), or, on the hook's
//! route, which no user calls, found here by name.

use super::{ApiError, AppState};
use crate::store::{AppRow, StoreError};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use paas_wire::AppName;

/// The app the route's `{app}` names, found in the store.
#[derive(Debug, Clone)]
pub struct AppPath(pub AppRow);

impl std::ops::Deref for AppPath {
    type Target = AppRow;
    fn deref(&self) -> &AppRow {
        &self.0
    }
}

impl FromRequestParts<AppState> for AppPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(access) = parts.extensions.get::<crate::http::access::AppAccess>() {
            return Ok(AppPath(access.app.clone()));
        }
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let name = params
            .iter()
            .find_map(|(k, v)| match k {
                "app" => Some(v),
                "repo" => Some(v.strip_suffix(".git").unwrap_or(v)),
                _ => None,
            })
            .ok_or_else(|| ApiError::internal("AppPath on a route without {app} or {repo}"))?;
        find_app(state, name).await.map(AppPath)
    }
}

/// Looks an app up by a name from a request, with errors that say what to do.
pub async fn find_app(state: &AppState, name: &str) -> Result<AppRow, ApiError> {
    let name = AppName::parse(name)?;
    match state.store.app(&name).await {
        Ok(app) => Ok(app),
        Err(StoreError::NotFound) => Err(crate::http::access::no_such_app(name.as_str())),
        Err(e) => Err(e.into()),
    }
}
