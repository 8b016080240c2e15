//! The one HTTP error type of the API, the dashboard and the git receiver.
//!
//! # Error policy
//!
//! Which layer uses which error type:
//! - **Infrastructure** (the store's driver, the engine, the filesystem,
//!   host processes) returns `anyhow::Error` with `.context(...)` saying
//!   what was being done; those never reach a client as text.
//! - **Domain modules** return an error enum of their own when a caller
//!   must tell cases apart: [`StoreError`] (not found, conflict, other),
//!   [`ReleaseError`] (no build, invalid input with its [`ErrorId`], the
//!   release phase failed, ...), [`paas_wire::NameError`] for names. Their
//!   messages are written for the user: what was wrong and what to do.
//! - **HTTP** (`api/`, `service/`, `dashboard.rs`, `git.rs`) turns every
//!   error into an [`ApiError`] (`From` impls below): a status, an
//!   [`ErrorId`] from the one enum in `paas-wire`, and the message.
//!
//! What a client sees: `{"id", "message"}` with a 4xx for anything the
//! request can fix, the message naming the fix (`paas apps:create NAME`,
//! `give 0 to 100`); a 5xx only for the server's own failures, whose body
//! is the same generic `internal_error` message. What is logged: every 5xx
//! with its whole cause chain (`{e:#}`) at `error`; 4xx are not logged (the
//! client has the message). The dashboard shows the same message, as a
//! page or a flash. Clients match ids ([`ErrorId`]), never message text.

use crate::release::ReleaseError;
use crate::store::StoreError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use paas_wire::{ErrorBody, ErrorId, NameError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub id: ErrorId,
    pub message: String,
    /// Seconds a 429's client should wait (`Retry-After`).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, id: ErrorId, message: impl Into<String>) -> Self {
        Self { status, id, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorId::BadRequest, message)
    }

    pub fn unprocessable(id: ErrorId, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, id, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorId::NotFound, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorId::Unauthorized,
            "a valid API token is required: run `paas login`, or send it as a Bearer token or as the Basic auth password",
        )
    }

    /// Refused by the caller's role (or, with no role on an app, a 404
    /// from [`crate::http::access`] instead, as if the app did not exist).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorId::Forbidden, message)
    }

    /// Too many failed sign-ins or token checks: wait `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorId::RateLimited,
            format!("too many failed sign-ins or token checks from this address or for this user: try again in {seconds} s"),
        );
        e.retry_after = Some(seconds);
        e
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorId::InternalError,
            "the server hit an internal error; the details are in its log",
        )
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        Self::unprocessable(ErrorId::InvalidName, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("not found"),
            StoreError::Conflict => Self::new(StatusCode::CONFLICT, ErrorId::Conflict, "that name is already taken"),
            e => Self::internal(e),
        }
    }
}

impl From<ReleaseError> for ApiError {
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::NoImage(m) => Self::unprocessable(ErrorId::NoBuild, m),
            ReleaseError::NotFound(m) => Self::not_found(m),
            ReleaseError::Invalid(ErrorId::BadRequest, m) => Self::bad_request(m),
            ReleaseError::Invalid(id @ (ErrorId::CronRunning | ErrorId::AttachedVar), m) => Self::new(StatusCode::CONFLICT, id, m),
            ReleaseError::Invalid(id, m) => Self::unprocessable(id, m),
            ReleaseError::ReleasePhase(m) => Self::unprocessable(ErrorId::ReleaseFailed, m),
            ReleaseError::Name(e) => e.into(),
            ReleaseError::Store(e) => e.into(),
            ReleaseError::Other(e) => e.into(),
        }
    }
}

impl From<crate::addons::AddonError> for ApiError {
    fn from(e: crate::addons::AddonError) -> Self {
        use crate::addons::AddonError;
        match e {
            AddonError::NotFound(m) => Self::not_found(m),
            AddonError::Refused(id @ (ErrorId::BadRequest | ErrorId::ConfirmMismatch), m) => Self::new(StatusCode::BAD_REQUEST, id, m),
            AddonError::Refused(
                id @ (ErrorId::Conflict | ErrorId::AttachmentTaken | ErrorId::AddonAttached | ErrorId::AddonNotRunning),
                m,
            ) => Self::new(StatusCode::CONFLICT, id, m),
            AddonError::Refused(id, m) => Self::unprocessable(id, m),
            AddonError::Failed(m) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorId::AddonFailed, m),
            AddonError::Release(e) => e.into(),
            AddonError::Store(e) => e.into(),
            AddonError::Other(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self::bad_request(format!("the request body is not what this endpoint takes: {}", e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let body = ErrorBody { id: self.id, message: self.message };
        // No `WWW-Authenticate` here: a browser answers a Basic challenge
        // by remembering the credentials and sending them on to any later
        // request, including ones other sites' pages make. Only git's
        // routes ask for them ([`crate::http::basic_challenge`]).
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
