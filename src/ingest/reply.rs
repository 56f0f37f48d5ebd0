//! The JSON error answer every route of the sidecar's HTTP server sends:
//! `{"error": "..."}` ([`crate::admin::ErrorAnswer`], which the CLI reads).

use crate::admin::ErrorAnswer;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A JSON error answer.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorAnswer {
        error: message.into(),
    };
    (status, axum::Json(body)).into_response()
}
