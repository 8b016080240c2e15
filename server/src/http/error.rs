//! The one HTTP error type of the API and the git receiver. Every variant
//! maps to a status and a JSON body `{"id", "message"}` whose message says
//! what was wrong and what to do. The cause of a 5xx is logged, never sent
//! to the client.

use crate::release::ReleaseError;
use crate::store::StoreError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use paas_wire::{ErrorBody, NameError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub id: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> Self {
        Self { status, id, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unprocessable(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, id, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API token is required: run `paas login`, or send it as a Bearer token or as the Basic auth password",
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server hit an internal error; the details are in its log",
        )
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        Self::unprocessable("invalid_name", e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("not found"),
            StoreError::Conflict => Self::new(StatusCode::CONFLICT, "conflict", "that name is already taken"),
            e => Self::internal(e),
        }
    }
}

impl From<ReleaseError> for ApiError {
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::NoImage(m) => Self::unprocessable("no_build", m),
            ReleaseError::NotFound(m) => Self::not_found(m),
            ReleaseError::Invalid("bad_request", m) => Self::bad_request(m),
            ReleaseError::Invalid(id, m) => Self::unprocessable(id, m),
            ReleaseError::ReleasePhase(m) => Self::unprocessable("release_failed", m),
            ReleaseError::Name(e) => e.into(),
            ReleaseError::Store(e) => e.into(),
            ReleaseError::Other(e) => e.into(),
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
        let body = ErrorBody { id: self.id.to_owned(), message: self.message };
        // No `WWW-Authenticate` here: a browser answers a Basic challenge
        // by remembering the credentials and sending them on to any later
        // request, including ones other sites' pages make. Only git's
        // routes ask for them ([`crate::http::basic_challenge`]).
        (self.status, axum::Json(body)).into_response()
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
