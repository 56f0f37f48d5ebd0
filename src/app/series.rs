//! The sidecar's metric series, registered at start
//! ([`crate::prometheus::register`]). Each name is a constant next to the
//! code that emits it; a test in [`crate::prometheus`] scans `src/` so that
//! nothing is emitted without being listed here (or in the gateway's and
//! the listeners' lists).

use crate::prometheus::{Kind, Series};

/// The sidecar's series: name, kind, help. Registered at start (counters
/// at 0) so that a scrape sees every series before its first event.
pub const SIDECAR_SERIES: &[Series] = &[
    (
        crate::tasks::QUEUE_SIZE,
        Kind::Gauge,
        "Records in the export queue not yet resolved (exported, dead-lettered, lost or dropped)",
    ),
    (
        crate::tasks::OLDEST_UNEXPORTED,
        Kind::Gauge,
        "Seconds since the oldest unresolved record was appended (0 when none)",
    ),
    (
        crate::export::exporter::BATCH_SIZE,
        Kind::Histogram,
        "Events per exported payload",
    ),
    (
        crate::export::exporter::EXPORTED_EVENTS,
        Kind::Counter,
        "Events the gateway acknowledged",
    ),
    (
        crate::tasks::EVENTS_PRUNED,
        Kind::Counter,
        "Records removed with purged segments",
    ),
    (
        crate::tasks::DISK_BYTES,
        Kind::Gauge,
        "Bytes of the queue's segment files",
    ),
    (
        crate::tasks::SEGMENTS,
        Kind::Gauge,
        "Segment files of the queue",
    ),
    (
        crate::tasks::BACKLOG_BYTES,
        Kind::Gauge,
        "Bytes of unresolved records",
    ),
    (
        crate::log::metric_names::APPENDED_RECORDS,
        Kind::Counter,
        "Records made durable in the queue",
    ),
    (
        crate::log::metric_names::FSYNC_SECONDS,
        Kind::Histogram,
        "fdatasync time of one group commit",
    ),
    (
        crate::queue::metric_names::REFUSED,
        Kind::Counter,
        "Appends refused because the queue was full (policy refuse)",
    ),
    (
        crate::queue::metric_names::DROPPED,
        Kind::Counter,
        "Oldest records dropped to make room (policy drop-oldest)",
    ),
    (
        crate::queue::metric_names::LOST_RECORDS,
        Kind::Counter,
        "Records lost to corruption or missing files, resolved as lost",
    ),
    (
        crate::queue::metric_names::TRUNCATED_BYTES,
        Kind::Counter,
        "Torn-tail bytes truncated on open",
    ),
    (
        crate::log::metric_names::POISONED,
        Kind::Counter,
        "Times the writer was poisoned by a failed fsync or write",
    ),
    (
        crate::log::metric_names::WRITE_ERRORS,
        Kind::Counter,
        "Failed segment writes",
    ),
    (
        crate::queue::metric_names::PURGED_SEGMENTS,
        Kind::Counter,
        "Segments purged after their retention",
    ),
    (
        crate::queue::metric_names::PURGED_RECORDS,
        Kind::Counter,
        "Records in purged segments",
    ),
    (
        crate::ingest::grpc::EVENTS,
        Kind::Counter,
        "Events received, by transport",
    ),
    (
        crate::tee::store::INVALID_EVENTS,
        Kind::Counter,
        "Events refused by validation",
    ),
    (
        crate::tee::mirror::COMMIT_SECONDS,
        Kind::Histogram,
        "Time of one event_logs mirror group commit",
    ),
    (
        crate::ingest::grpc::RECORD_SECONDS,
        Kind::Histogram,
        "Time from a decoded ingest request or payload to its events being durable (validation, redaction, queue group commit and mirror flush)",
    ),
    (
        crate::export::exporter::ROUNDTRIP_SECONDS,
        Kind::Histogram,
        "Time from sending a payload to the gateway's answer",
    ),
    (
        crate::export::exporter::ERRORS,
        Kind::Counter,
        "Export failures, by kind",
    ),
    (
        crate::export::exporter::UNKNOWN_IDS,
        Kind::Counter,
        "Acknowledged ids that matched no in-flight record",
    ),
    (
        crate::export::exporter::DEAD_LETTERED,
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
        crate::export::channel::TLS_RELOADS,
        Kind::LabeledCounter,
        "Reloads of the export TLS files on SIGHUP, by result (ok, error)",
    ),
    (
        crate::grpc_limits::budget::SIDECAR_BUDGET.in_use_gauge,
        Kind::Gauge,
        "Bytes of gRPC messages being received, decoded or held (the decode budget in use)",
    ),
    (
        crate::grpc_limits::budget::SIDECAR_BUDGET.refused_counter,
        Kind::Counter,
        "gRPC messages refused with RESOURCE_EXHAUSTED because the decode budget was full",
    ),
    (
        crate::export::ack_flush::ACK_FLUSHES,
        Kind::Counter,
        "Index flushes made ~20 ms after the gateway's answers, so that acknowledgements survive a crash",
    ),
    (
        crate::export::exporter::GOAWAY_RETRIES,
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
    (
        crate::queue::metric_names::RESOLVED,
        Kind::LabeledCounter,
        "Records resolved, by how (acked, dead_lettered, lost, dropped)",
    ),
    (
        crate::ingest::http::HTTP_BUSY,
        Kind::Counter,
        "HTTP ingest requests answered 503 because the in-flight budget stayed full (--max-ingest-in-flight)",
    ),
    (
        crate::ingest::guard::CROSS_SITE_REFUSED,
        Kind::Counter,
        "State-changing admin requests refused as cross-site (a browser page on another origin)",
    ),
];
