//! Errors of the record path mapped to gRPC statuses and HTTP answers, in
//! one place.

use crate::log::AppendError;
use crate::queue::QueueError;
use crate::tee::store::TeeError;
use axum::http::StatusCode;

/// Seconds a client should wait before retrying a full queue.
pub const RETRY_AFTER_SECS: u64 = 30;

/// The gRPC status for a failed record call.
pub fn grpc_status(e: &TeeError) -> tonic::Status {
    let msg = e.to_string();
    match e {
        TeeError::TooMany(_) => tonic::Status::invalid_argument(msg),
        TeeError::Queue(q) => match q {
            QueueError::Full { .. } | QueueError::BatchTooLarge { .. } => {
                tonic::Status::resource_exhausted(msg)
            }
            QueueError::Append(AppendError::DiskFull { .. }) => {
                tonic::Status::resource_exhausted(msg)
            }
            QueueError::RecordTooLarge { .. } => tonic::Status::invalid_argument(msg),
            QueueError::Append(AppendError::Poisoned { .. } | AppendError::Closed) => {
                tonic::Status::unavailable(msg)
            }
            _ => tonic::Status::internal(msg),
        },
        TeeError::Mirror(_) => tonic::Status::unavailable(msg),
    }
}

/// The HTTP status for a failed record call, and whether to send
/// `Retry-After`.
pub fn http_status(e: &TeeError) -> (StatusCode, bool) {
    match e {
        TeeError::TooMany(_) => (StatusCode::PAYLOAD_TOO_LARGE, false),
        TeeError::Queue(q) => match q {
            QueueError::Full { .. } | QueueError::Append(AppendError::DiskFull { .. }) => {
                (StatusCode::INSUFFICIENT_STORAGE, true)
            }
            QueueError::BatchTooLarge { .. } | QueueError::RecordTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, false)
            }
            QueueError::Append(AppendError::Poisoned { .. } | AppendError::Closed) => {
                (StatusCode::SERVICE_UNAVAILABLE, false)
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, false),
        },
        TeeError::Mirror(_) => (StatusCode::SERVICE_UNAVAILABLE, true),
    }
}
