//! What the API and the git receiver share: the request state, the token
//! check every route but the hook's sits behind, and the error type
//! ([`error`]). Both depend on this module and never on each other; the
//! server wires their routers together.

pub mod error;
pub mod session;

use crate::builder::Builder;
use crate::crypto;
use crate::release::ReleaseService;
use crate::scheduler::Scheduler;
use crate::settings::Settings;
use crate::store::{AppRow, Store};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
pub use error::{ApiError, ApiResult, Json};
use paas_wire::AppName;
use std::sync::Arc;

/// Everything a handler needs, cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub releases: ReleaseService,
    pub scheduler: Scheduler,
    /// One-off dynos (`paas run`).
    pub one_offs: crate::oneoff::OneOffs,
    pub builder: Builder,
    pub logs: crate::logs::LogRouter,
    /// Custom domains, as the router reads them.
    pub domains: crate::router::DomainTable,
    /// Certificates of custom domains, as the HTTPS listener reads them.
    pub certs: crate::tls::CertTable,
    /// Seals the certificates' private keys (as config vars).
    pub cipher: crate::crypto::ConfigCipher,
    /// Automatic certificates.
    pub acme: crate::acme::Acme,
    pub settings: Arc<Settings>,
    /// Dashboard sessions.
    pub sessions: Arc<session::Sessions>,
    /// The secret the pre-receive hook presents; new on every server start.
    pub hook_token: Arc<String>,
}

impl AppState {
    /// Looks an app up by a name from the URL, with errors that say what to do.
    pub async fn app(&self, name: &str) -> ApiResult<AppRow> {
        let name = AppName::parse(name)?;
        match self.store.app(&name).await {
            Ok(app) => Ok(app),
            Err(crate::store::StoreError::NotFound) => Err(ApiError::not_found(format!(
                "app {name} does not exist: see `paas apps` for the apps there are, or create it with `paas apps:create {name}`"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub fn web_url(&self, app: &str) -> String {
        web_url(&self.settings, app)
    }

    pub fn git_url(&self, app: &str) -> String {
        format!("{}/{app}.git", self.settings.api_url())
    }

    /// Constant-time check of the hook secret.
    pub fn hook_token_ok(&self, presented: &str) -> bool {
        crypto::constant_time_eq(presented, &self.hook_token)
    }
}

pub fn web_url(settings: &Settings, app: &str) -> String {
    match settings.router_listen.port() {
        80 => format!("http://{app}.{}/", settings.domain),
        port => format!("http://{app}.{}:{port}/", settings.domain),
    }
}

/// The token from `Authorization: Bearer T` or `Basic base64(user:T)`.
pub fn token_from_header(value: &str) -> Option<String> {
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some(t.trim().to_owned());
    }
    let b64 = value.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let pair = String::from_utf8(raw).ok()?;
    let (_, password) = pair.split_once(':')?;
    Some(password.to_owned())
}

/// Middleware: the request must carry a valid API token.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(token_from_header)
        .ok_or_else(ApiError::unauthorized)?;
    match state.store.verify_token(&token).await? {
        Some(_) => Ok(next.run(req).await),
        None => Err(ApiError::unauthorized()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_headers() {
        assert_eq!(token_from_header("Bearer abc").as_deref(), Some("abc"));
        let basic = base64::engine::general_purpose::STANDARD.encode("git:tok:en");
        assert_eq!(token_from_header(&format!("Basic {basic}")).as_deref(), Some("tok:en"));
        assert_eq!(token_from_header("Digest x"), None);
        assert_eq!(token_from_header("Basic !!!"), None);
    }
}
