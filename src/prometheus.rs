//! The process-wide Prometheus recorder of the `metrics` crate, shared by
//! the sidecar and the gateway (and by both when tests run them in one
//! process), rendered as Prometheus text on each `/metrics`.
//!
//! Histograms are real Prometheus histograms (`_bucket`, `_sum`, `_count`),
//! so they aggregate across instances, with fixed buckets:
//!
//! | metrics | buckets |
//! |---|---|
//! | every name ending in `_seconds` (fsync, mirror commit, export round trip, gateway publish and sync) | 100 µs to 10 s |
//! | `src_telemetrygatewayexporter_batch_size` (events per exported payload), `telespool_gateway_payload_events` | 1 to 50,000 events |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Buckets of every `*_seconds` histogram.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of the events-per-payload histograms.
pub const EVENTS_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0,
];

/// Histograms counting events per payload.
pub const EVENT_COUNT_HISTOGRAMS: &[&str] = &[
    "src_telemetrygatewayexporter_batch_size",
    "telespool_gateway_payload_events",
];

/// Why the recorder could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("installing the Prometheus recorder: {reason}")]
pub struct InstallError {
    /// The exporter's complaint (another recorder already installed, say).
    pub reason: String,
}

/// Installs the recorder on first call and returns its handle (later calls
/// return the same handle, or the same error).
pub fn install() -> Result<PrometheusHandle, InstallError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, InstallError>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS);
            for name in EVENT_COUNT_HISTOGRAMS {
                builder = builder.and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), EVENTS_BUCKETS)
                });
            }
            let builder = builder.map_err(|e| InstallError {
                reason: e.to_string(),
            })?;
            builder.install_recorder().map_err(|e| InstallError {
                reason: e.to_string(),
            })
        })
        .clone()
}

/// The sidecar's series: name, kind, help. Registered at start (counters
/// at 0) so that a scrape sees every series before its first event.
pub const SIDECAR_SERIES: &[(&str, Kind, &str)] = &[
    (
        "src_telemetrygatewayexporter_queue_size",
        Kind::Gauge,
        "Records in the export queue not yet resolved (exported, dead-lettered, lost or dropped)",
    ),
    (
        "src_telemetrygatewayexporter_oldest_unexported_event",
        Kind::Gauge,
        "Seconds since the oldest unresolved record was appended (0 when none)",
    ),
    (
        "src_telemetrygatewayexporter_batch_size",
        Kind::Histogram,
        "Events per exported payload",
    ),
    (
        "src_telemetrygatewayexporter_exported_events",
        Kind::Counter,
        "Events the gateway acknowledged",
    ),
    (
        "src_telemetrygatewayexporter_events_pruned",
        Kind::Counter,
        "Records removed with purged segments",
    ),
    (
        "telespool_queue_disk_bytes",
        Kind::Gauge,
        "Bytes of the queue's segment files",
    ),
    (
        "telespool_queue_segments",
        Kind::Gauge,
        "Segment files of the queue",
    ),
    (
        "telespool_queue_backlog_bytes",
        Kind::Gauge,
        "Bytes of unresolved records",
    ),
    (
        "telespool_queue_appended_records_total",
        Kind::Counter,
        "Records made durable in the queue",
    ),
    (
        "telespool_queue_fsync_seconds",
        Kind::Histogram,
        "fdatasync time of one group commit",
    ),
    (
        "telespool_queue_refused_total",
        Kind::Counter,
        "Appends refused because the queue was full (policy refuse)",
    ),
    (
        "telespool_queue_dropped_total",
        Kind::Counter,
        "Oldest records dropped to make room (policy drop-oldest)",
    ),
    (
        "telespool_queue_lost_records_total",
        Kind::Counter,
        "Records lost to corruption or missing files, resolved as lost",
    ),
    (
        "telespool_queue_truncated_bytes_total",
        Kind::Counter,
        "Torn-tail bytes truncated on open",
    ),
    (
        "telespool_queue_poisoned_total",
        Kind::Counter,
        "Times the writer was poisoned by a failed fsync or write",
    ),
    (
        "telespool_queue_write_errors_total",
        Kind::Counter,
        "Failed segment writes",
    ),
    (
        "telespool_queue_purged_segments_total",
        Kind::Counter,
        "Segments purged after their retention",
    ),
    (
        "telespool_queue_purged_records_total",
        Kind::Counter,
        "Records in purged segments",
    ),
    (
        "telespool_ingest_events_total",
        Kind::Counter,
        "Events received, by transport",
    ),
    (
        "telespool_ingest_invalid_events_total",
        Kind::Counter,
        "Events refused by validation",
    ),
    (
        "telespool_mirror_commit_seconds",
        Kind::Histogram,
        "Time of one event_logs mirror group commit",
    ),
    (
        "telespool_ingest_record_seconds",
        Kind::Histogram,
        "Time from a decoded ingest request or payload to its events being durable (validation, redaction, queue group commit and mirror flush)",
    ),
    (
        "telespool_export_roundtrip_seconds",
        Kind::Histogram,
        "Time from sending a payload to the gateway's answer",
    ),
    (
        "telespool_export_errors_total",
        Kind::Counter,
        "Export failures, by kind",
    ),
    (
        "telespool_export_unknown_ids_total",
        Kind::Counter,
        "Acknowledged ids that matched no in-flight record",
    ),
    (
        "telespool_export_dead_lettered_total",
        Kind::Counter,
        "Events moved to the dead-letter store after too many attempts",
    ),
    (
        crate::dead_letter::store::TRIMMED_METRIC,
        Kind::Counter,
        "Dead letters removed, oldest first, to stay within the entry bound and the byte quota (--dead-letter-quota)",
    ),
    (
        crate::dead_letter::store::BYTES_METRIC,
        Kind::Gauge,
        "Bytes of the dead letters stored (headers and events), as counted against --dead-letter-quota",
    ),
    (
        "telespool_export_tls_reloads_total",
        Kind::LabeledCounter,
        "Reloads of the export TLS files on SIGHUP, by result (ok, error)",
    ),
    (
        "telespool_grpc_decode_budget_bytes_in_use",
        Kind::Gauge,
        "Bytes of gRPC messages being received, decoded or held (the decode budget in use)",
    ),
    (
        "telespool_grpc_decode_budget_refused_total",
        Kind::Counter,
        "gRPC messages refused with RESOURCE_EXHAUSTED because the decode budget was full",
    ),
    (
        "telespool_export_goaway_retries_total",
        Kind::Counter,
        "Export rounds retried at once because the gateway connection went away gracefully (GOAWAY NO_ERROR, e.g. its max connection age); not errors",
    ),
    (
        "telespool_event_logs_evicted_rows_total",
        Kind::Counter,
        "event_logs rows evicted (oldest first) to stay within --event-logs-quota",
    ),
    (
        "telespool_event_logs_damaged_blocks_total",
        Kind::Counter,
        "event_logs blocks found damaged (CRC or decoding) and skipped",
    ),
];

/// A series' kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic count.
    Counter,
    /// Monotonic count recorded only with labels: described, not
    /// registered (an unlabeled 0 beside the labeled series would mislead).
    LabeledCounter,
    /// Current value.
    Gauge,
    /// Distribution.
    Histogram,
}

/// Describes the sidecar's series and registers the unlabeled ones
/// (counters and gauges at their current value, 0 when new).
pub fn register_sidecar() {
    for &(name, kind, help) in SIDECAR_SERIES {
        match kind {
            Kind::Counter => {
                metrics::describe_counter!(name, help);
                metrics::counter!(name).increment(0);
            }
            Kind::LabeledCounter => metrics::describe_counter!(name, help),
            Kind::Gauge => {
                metrics::describe_gauge!(name, help);
                let _ = metrics::gauge!(name);
            }
            Kind::Histogram => {
                if name.ends_with("_seconds") {
                    metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
                } else {
                    metrics::describe_histogram!(name, help);
                }
                let _ = metrics::histogram!(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_with_buckets() {
        let handle = install().expect("the recorder installs");
        metrics::histogram!("telespool_test_histogram_seconds").record(0.003);
        metrics::histogram!("src_telemetrygatewayexporter_batch_size").record(700.0);
        let text = handle.render();
        assert!(
            text.contains("telespool_test_histogram_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("src_telemetrygatewayexporter_batch_size_bucket{le=\"1000\"}"),
            "{text}"
        );
    }
}
