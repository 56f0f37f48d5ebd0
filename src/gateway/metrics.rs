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
//! | `telespool_gateway_file_rotated_deleted_total` | counter | `reason` | rotated JSONL files deleted by the retention: `count` (past `file_keep`) or `age` (past `file_max_age`) |
//! | `telespool_gateway_streams_total` | counter | `result` | `RecordEvents` streams ended: `ok` or the gRPC code |
//! | `telespool_gateway_record_event_total` | counter | `result` | unary `RecordEvent` calls: `ok` or the gRPC code |
//! | `telespool_gateway_reloads_total` | counter | `result` | SIGHUP reloads ([`super::reload`]): `ok`, or `error` when a part kept its previous files |
//! | `telespool_gateway_tls_handshake_failures_total` | counter | `reason` | TLS handshakes of the gRPC listener that failed: `error` or `timeout` |
//! | `telespool_gateway_decode_budget_bytes_in_use` | gauge | | bytes of gRPC messages being received, decoded or held (`--decode-budget`, see [`crate::grpc_limits`]) |
//! | `telespool_gateway_decode_budget_refused_total` | counter | | messages refused with `RESOURCE_EXHAUSTED` because the decode budget was full |
//! | `telespool_listener_*` | | `listener` (`gateway_grpc`, `gateway_http`) | open connections, accepts, the connection limit, accept errors, deadlines: see [`crate::net`] |
//!
//! The `source` label is bounded ([`source_label`]): `licensed_instance`,
//! `unlicensed_instance`, `unknown`, the first [`MAX_SERVICE_LABELS`]
//! distinct managed-service ids this process sees (each at most
//! [`MAX_SERVICE_LABEL_BYTES`] bytes of `[A-Za-z0-9_.-]`), and `other` for
//! every later or unusual one. A service id is chosen by the caller (a
//! token not bound to one service accepts any), so without the bound each
//! new id would add series to `/metrics` forever.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use super::render::PublisherSource;

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
/// Rotated JSONL files deleted by the retention.
pub const FILE_ROTATED_DELETED: &str = "telespool_gateway_file_rotated_deleted_total";
/// Streams ended.
pub const STREAMS: &str = "telespool_gateway_streams_total";
/// Unary calls.
pub const RECORD_EVENT: &str = "telespool_gateway_record_event_total";
/// SIGHUP reloads.
pub const RELOADS: &str = "telespool_gateway_reloads_total";

/// Every series the gateway emits besides the listeners'
/// ([`crate::net::listener::SERIES`]), described at start: the list
/// `prometheus`'s tests check every emitter in `src/` against.
pub const GATEWAY_SERIES: &[&str] = &[
    EVENTS,
    EVENTS_DROPPED,
    PAYLOAD_EVENTS,
    PUBLISH_SECONDS,
    SINK_ERRORS,
    FILE_SYNC_SECONDS,
    FILE_ROTATED_DELETED,
    STREAMS,
    RECORD_EVENT,
    RELOADS,
    crate::tls::server::HANDSHAKE_FAILURES,
    crate::grpc_limits::budget::GATEWAY_BUDGET.in_use_gauge,
    crate::grpc_limits::budget::GATEWAY_BUDGET.refused_counter,
    crate::gateway::sink::dedup::SKIPPED,
    crate::gateway::sink::dedup::EVICTED,
];

/// Most distinct managed-service ids used as `source` label values.
pub const MAX_SERVICE_LABELS: usize = 32;
/// Longest managed-service id used as a `source` label value.
pub const MAX_SERVICE_LABEL_BYTES: usize = 64;
/// The `source` label of managed services past the bound.
pub const OTHER_SOURCE: &str = "other";

/// The `source` label value for `source` (see the module docs for the
/// bound).
pub fn source_label(source: &PublisherSource) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let PublisherSource::ManagedService { service_id } = source else {
        return source.as_str().to_owned();
    };
    let plain = !service_id.is_empty()
        && service_id.len() <= MAX_SERVICE_LABEL_BYTES
        && service_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    // Instance kinds and `other` are never service ids here.
    let reserved = matches!(
        service_id.as_str(),
        "licensed_instance" | "unlicensed_instance" | "unknown" | OTHER_SOURCE
    );
    if !plain || reserved {
        return OTHER_SOURCE.to_owned();
    }
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if seen.contains(service_id) || seen.len() < MAX_SERVICE_LABELS {
        seen.insert(service_id.clone());
        service_id.clone()
    } else {
        OTHER_SOURCE.to_owned()
    }
}

/// Why the metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Another recorder is already installed in this process. A bug in
    /// the embedding program: install one recorder only.
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
    metrics::describe_counter!(
        FILE_ROTATED_DELETED,
        "Rotated JSONL files deleted by the retention (file_keep, file_max_age)"
    );
    metrics::describe_counter!(
        crate::gateway::sink::dedup::SKIPPED,
        "Events the file sink did not write again: a repeat within dedup_window of its first copy"
    );
    metrics::describe_counter!(
        crate::gateway::sink::dedup::EVICTED,
        "Dedup keys the file sink forgot before their window ended (over dedup_max_ids)"
    );
    metrics::describe_counter!(STREAMS, "RecordEvents streams ended, by result");
    metrics::describe_counter!(RECORD_EVENT, "RecordEvent calls, by result");
    metrics::describe_counter!(
        RELOADS,
        "SIGHUP reloads of certificates, license keys and service tokens, by result"
    );
    metrics::describe_counter!(
        crate::tls::server::HANDSHAKE_FAILURES,
        "TLS handshakes of the gRPC listener that failed, by reason"
    );
    crate::net::listener::describe_metrics();
}

/// Records one SIGHUP reload.
pub fn record_reload(ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(RELOADS, "result" => result).increment(1);
}

/// Records one group-commit sync.
pub fn record_file_sync(took: Duration) {
    metrics::histogram!(FILE_SYNC_SECONDS).record(took.as_secs_f64());
}

/// Counts one rotated file deleted by the retention (`count` or `age`).
pub fn record_file_deleted(reason: &'static str) {
    metrics::counter!(FILE_ROTATED_DELETED, "reason" => reason).increment(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str) -> PublisherSource {
        PublisherSource::ManagedService {
            service_id: id.to_owned(),
        }
    }

    #[test]
    fn source_label_values_are_bounded() {
        assert_eq!(
            source_label(&PublisherSource::LicensedInstance),
            "licensed_instance"
        );
        assert_eq!(source_label(&PublisherSource::Unknown), "unknown");
        assert_eq!(source_label(&service("line\nbreak")), OTHER_SOURCE);
        assert_eq!(source_label(&service(&"x".repeat(65))), OTHER_SOURCE);
        assert_eq!(source_label(&service("licensed_instance")), OTHER_SOURCE);
        // Thousands of distinct ids yield at most the bound plus `other`
        // (other tests of this process may have used a few slots).
        let labels: HashSet<String> = (0..5_000)
            .map(|i| source_label(&service(&format!("svc-{i}"))))
            .collect();
        assert!(labels.len() <= MAX_SERVICE_LABELS + 1, "{}", labels.len());
        assert!(labels.contains(OTHER_SOURCE));
        // A label once given stays given.
        let first = labels.iter().find(|l| *l != OTHER_SOURCE).unwrap().clone();
        assert_eq!(source_label(&service(&first)), first);
    }
}
