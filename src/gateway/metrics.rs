//! The gateway's metrics, recorded with the `metrics` crate and rendered in
//! Prometheus text format on `/metrics` (see [`super::http`]).
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `telespool_gateway_events_total` | counter | `result`, `acknowledged`, `source` | events processed: `result` is `published`, `sink_failure`, `invalid`, `too_large`; `acknowledged` says whether the id went into `succeeded_events` |
//! | `telespool_gateway_events_dropped_total` | counter | `reason`, `source` | events reported as succeeded but not published (invalid or too large, from Sourcegraph instances) |
//! | `telespool_gateway_payload_events` | histogram | `result`, `source` | events per payload; `result` is `success`, `partial_failure`, `complete_failure` |
//! | `telespool_gateway_publish_seconds` | histogram | `sink` | time for the sink to confirm one batch |
//! | `telespool_gateway_sink_errors_total` | counter | `sink`, `retryable` | messages the sink failed |
//! | `telespool_gateway_file_sync_seconds` | histogram | | `fdatasync` time of one group commit |
//! | `telespool_gateway_streams_total` | counter | `result` | `RecordEvents` streams ended: `ok` or the gRPC code |
//! | `telespool_gateway_record_event_total` | counter | `result` | unary `RecordEvent` calls: `ok` or the gRPC code |
//! | `telespool_listener_*` | | `listener` (`gateway_grpc`, `gateway_http`) | open connections, accepts, the connection limit, accept errors, deadlines: see [`crate::net`] |

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

/// Events processed.
pub const EVENTS: &str = "telespool_gateway_events_total";
/// Events reported as succeeded and dropped.
pub const EVENTS_DROPPED: &str = "telespool_gateway_events_dropped_total";
/// Events per payload.
pub const PAYLOAD_EVENTS: &str = "telespool_gateway_payload_events";
/// Sink batch latency.
pub const PUBLISH_SECONDS: &str = "telespool_gateway_publish_seconds";
/// Messages failed by the sink.
pub const SINK_ERRORS: &str = "telespool_gateway_sink_errors_total";
/// File sink sync latency.
pub const FILE_SYNC_SECONDS: &str = "telespool_gateway_file_sync_seconds";
/// Streams ended.
pub const STREAMS: &str = "telespool_gateway_streams_total";
/// Unary calls.
pub const RECORD_EVENT: &str = "telespool_gateway_record_event_total";

/// Why the metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Another recorder is already installed in this process.
    #[error("installing the Prometheus recorder: {reason}")]
    Install {
        /// The exporter's complaint.
        reason: String,
    },
}

/// Installs the process-wide Prometheus recorder ([`crate::prometheus`])
/// on first call and returns its handle, with the gateway's metrics
/// described.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    static DESCRIBED: OnceLock<()> = OnceLock::new();
    let handle =
        crate::prometheus::install().map_err(|e| MetricsError::Install { reason: e.reason })?;
    DESCRIBED.get_or_init(describe);
    Ok(handle)
}

fn describe() {
    metrics::describe_counter!(
        EVENTS,
        "Events processed, by result and whether acknowledged"
    );
    metrics::describe_counter!(
        EVENTS_DROPPED,
        "Events reported as succeeded but dropped (invalid or too large)"
    );
    metrics::describe_histogram!(PAYLOAD_EVENTS, "Events per RecordEvents payload");
    metrics::describe_histogram!(
        PUBLISH_SECONDS,
        metrics::Unit::Seconds,
        "Time for the sink to confirm one batch"
    );
    metrics::describe_counter!(SINK_ERRORS, "Messages the sink failed to publish");
    metrics::describe_histogram!(
        FILE_SYNC_SECONDS,
        metrics::Unit::Seconds,
        "fdatasync time of one file-sink group commit"
    );
    metrics::describe_counter!(STREAMS, "RecordEvents streams ended, by result");
    metrics::describe_counter!(RECORD_EVENT, "RecordEvent calls, by result");
    crate::net::listener::describe_metrics();
}

/// Records one group-commit sync.
pub fn record_file_sync(took: Duration) {
    metrics::histogram!(FILE_SYNC_SECONDS).record(took.as_secs_f64());
}

/// Records how a stream or call ended (`ok` or a gRPC code name).
pub fn record_call(name: &'static str, code: tonic::Code) {
    let result = if code == tonic::Code::Ok {
        "ok".to_owned()
    } else {
        format!("{code:?}")
    };
    metrics::counter!(name, "result" => result).increment(1);
}
