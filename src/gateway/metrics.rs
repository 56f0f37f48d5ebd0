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

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const EVENTS_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0,
];

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

/// Installs the process-wide Prometheus recorder on first call and returns
/// its handle (later calls return the same handle).
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(PAYLOAD_EVENTS.to_owned()),
                        EVENTS_BUCKETS,
                    )
                })
                .map_err(|e| e.to_string())?;
            let handle = builder.install_recorder().map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(|reason| MetricsError::Install { reason })
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
