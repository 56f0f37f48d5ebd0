//! Errors of the record path mapped to gRPC statuses and HTTP answers, in
//! one place.

use crate::queue::{AppendError, QueueError};
use crate::tee::store::TeeError;
use axum::http::StatusCode;

/// Seconds a client should wait before retrying a full queue.
pub const RETRY_AFTER_SECS: u64 = 30;

/// Why a record call failed as a whole (nothing of it is acknowledged).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The tee refused or failed; its variants say what the client does.
    #[error(transparent)]
    Tee(#[from] TeeError),
    /// The blocking task that submitted the events near the queue's quota
    /// panicked, or was cancelled by the runtime shutting down. Nothing is
    /// acknowledged; the client retries. A panic is a bug: the operator
    /// reports it with the log.
    #[error("the record task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// The gRPC status for a failed record call.
pub fn grpc_status(e: &RecordError) -> tonic::Status {
    let msg = e.to_string();
    let e = match e {
        RecordError::Tee(e) => e,
        RecordError::Task(_) => return tonic::Status::unavailable(msg),
    };
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
        TeeError::Mirror(m) if m.is_disk_full() => tonic::Status::resource_exhausted(msg),
        TeeError::Mirror(_) => tonic::Status::unavailable(msg),
    }
}

/// The HTTP status for a failed record call, and whether to send
/// `Retry-After`.
pub fn http_status(e: &RecordError) -> (StatusCode, bool) {
    let e = match e {
        RecordError::Tee(e) => e,
        RecordError::Task(_) => return (StatusCode::SERVICE_UNAVAILABLE, true),
    };
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
        TeeError::Mirror(m) if m.is_disk_full() => (StatusCode::INSUFFICIENT_STORAGE, true),
        TeeError::Mirror(_) => (StatusCode::SERVICE_UNAVAILABLE, true),
    }
}
