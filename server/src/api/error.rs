//! Every failure of a request becomes one [`ApiError`]: an HTTP status and
//! an [`ErrorBody`]. Handlers and extractors return it, so no request is
//! ever answered with axum's plain-text rejections.

use crate::{Refusal, StoreError};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orch_model::Problem;
use orch_wire::ErrorBody;

/// An error answer: the status and the body the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                details: Vec::new(),
            },
        }
    }

    #[must_use]
    pub fn with_details(mut self, details: Vec<Problem>) -> Self {
        self.body.details = details;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// `kind` `id` does not exist, said the way every lookup says it.
    pub fn no_such(kind: &str, id: &str) -> Self {
        Self::not_found(format!("{kind} {id:?} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// A job that failed validation, with every problem so the user can fix
    /// them all in one round.
    pub fn invalid_job(job_id: &str, problems: Vec<Problem>) -> Self {
        let n = problems.len();
        let what = if n == 1 { "problem" } else { "problems" };
        let name = if job_id.is_empty() { "(no id)" } else { job_id };
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_job",
            format!("job {name} has {n} {what}"),
        )
        .with_details(problems)
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than the server's limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let got = match got {
            Some(ct) => format!("Content-Type {ct:?}"),
            None => "no Content-Type".to_owned(),
        };
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body was sent with {got}; send JSON with Content-Type: application/json"),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(Refusal::NotFound { kind, id }) => ApiError::no_such(kind, &id),
            StoreError::Refused(Refusal::Conflict(message)) => ApiError::conflict(message),
            StoreError::Refused(Refusal::Invalid(message)) => ApiError::bad_request(message),
            // Anything else is the server's fault, not the request's: log it
            // where the operator looks, and tell the client only that much.
            other => {
                tracing::error!("state store: {other}");
                ApiError::internal(format!("the state store failed: {other}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.body.code,
            self.body.message
        )
    }
}

impl std::error::Error for ApiError {}
