//! Background tasks of the sidecar (tokio; the sync core is reached through
//! `spawn_blocking`): maintenance and queue metrics every second, cleanup
//! every cleanup interval.

use crate::clock::Clock;
use crate::config::ServeConfig;
use crate::event_logs::store::EventLogStore;
use crate::export::config::CleanupConfig;
use crate::queue::Queue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Metric: records removed with purged segments (Sourcegraph's name).
pub const EVENTS_PRUNED: &str = "src_telemetrygatewayexporter_events_pruned";
/// Metric: seconds since the oldest unresolved record was appended (Sourcegraph's name).
pub const OLDEST_UNEXPORTED: &str = "src_telemetrygatewayexporter_oldest_unexported_event";
/// Metric: unresolved records in the queue (Sourcegraph's name).
pub const QUEUE_SIZE: &str = "src_telemetrygatewayexporter_queue_size";
/// Metric: bytes of unresolved records.
pub const BACKLOG_BYTES: &str = "telespool_queue_backlog_bytes";
/// Metric: bytes of the queue's segment files.
pub const DISK_BYTES: &str = "telespool_queue_disk_bytes";
/// Metric: segment files of the queue.
pub const SEGMENTS: &str = "telespool_queue_segments";

/// How often maintenance runs.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

/// Fraction of the quota past which `serve` warns that the queue is filling.
pub const QUOTA_WARNING: f64 = 0.8;

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// Rolls aged segments, flushes the index, publishes queue gauges, warns
/// past 80 % of the quota.
pub async fn maintenance(queue: Arc<Queue>, config: ServeConfig, mut stop: watch::Receiver<bool>) {
    let mut warned = false;
    loop {
        if sleep_or_stop(MAINTENANCE_INTERVAL, &mut stop).await {
            return;
        }
        let q = queue.clone();
        let r = tokio::task::spawn_blocking(move || {
            let tick = q.tick();
            (tick, q.backlog())
        })
        .await;
        let Ok((tick, backlog)) = r else { continue };
        if let Err(e) = tick {
            tracing::warn!(error = %e, "queue maintenance failed");
        }
        let now = crate::clock::SystemClock.now();
        metrics::gauge!(QUEUE_SIZE).set(backlog.records as f64);
        metrics::gauge!(OLDEST_UNEXPORTED).set(
            backlog
                .oldest_append
                .map_or(0.0, |t| now.since(t).as_secs_f64()),
        );
        metrics::gauge!(DISK_BYTES).set(backlog.disk_bytes as f64);
        metrics::gauge!(SEGMENTS).set(backlog.segments as f64);
        metrics::gauge!(BACKLOG_BYTES).set(backlog.bytes as f64);
        let used = backlog.disk_bytes as f64 / config.queue.quota_bytes.max(1) as f64;
        if used >= QUOTA_WARNING && !warned {
            warned = true;
            if config.export.addr.is_none() {
                tracing::warn!(
                    used_percent = (used * 100.0) as u64,
                    "export queue past 80% of its quota and export is off (no --export-addr): new events will be refused when it is full"
                );
            } else {
                tracing::warn!(
                    used_percent = (used * 100.0) as u64,
                    "export queue past 80% of its quota: the gateway is not keeping up"
                );
            }
        } else if used < QUOTA_WARNING * 0.9 {
            warned = false;
        }
    }
}

/// Purges fully exported segments past their retention and expires
/// event_logs rows past theirs.
pub async fn cleanup(
    queue: Arc<Queue>,
    event_logs: Arc<EventLogStore>,
    clock: Arc<dyn Clock>,
    config: CleanupConfig,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if sleep_or_stop(config.interval, &mut stop).await {
            return;
        }
        let q = queue.clone();
        let el = event_logs.clone();
        let retention = config.exported_retention;
        let now = clock.now();
        let r = tokio::task::spawn_blocking(move || (q.purge(retention), el.expire(now))).await;
        match r {
            Ok((Ok(p), Ok(expired))) => {
                metrics::counter!(EVENTS_PRUNED).increment(p.records);
                if p.segments > 0 || expired > 0 {
                    tracing::info!(
                        segments = p.segments,
                        records = p.records,
                        event_logs_rows = expired,
                        "cleanup purged exported segments and expired event_logs rows"
                    );
                }
            }
            Ok((p, e)) => {
                if let Err(err) = p {
                    tracing::warn!(error = %err, "queue cleanup failed");
                }
                if let Err(err) = e {
                    tracing::warn!(error = %err, "event_logs expiry failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cleanup task failed"),
        }
    }
}
