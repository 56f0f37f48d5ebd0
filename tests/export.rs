//! The exporter against an in-process fake gateway: every event is
//! eventually acknowledged exactly once in the store's view, events never
//! acknowledged are resent, watermarks only move forward, and nothing
//! reaches the dead-letter store during an outage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use prost::Message;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use telespool::config::ExportConfig;
use telespool::dead_letter::{DeadLetterConfig, DeadLetterStore};
use telespool::export::backoff::Backoff;
use telespool::export::exporter::{ExportStats, Exporter};
use telespool::proto::telemetrygateway::v1::Event;
use telespool::{Batch, Queue, QueueConfig, RecordId, SyncPolicy, SystemClock};
#[allow(dead_code)]
use testkit::fake_gateway::{Fake, Mode};
use tokio::sync::{Notify, watch};

struct Setup {
    _dir: tempfile::TempDir,
    queue: Arc<Queue>,
    dead: Arc<DeadLetterStore>,
    stats: Arc<ExportStats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    wake: Arc<Notify>,
}

fn event(i: u64) -> Vec<u8> {
    padded(i, 0)
}

/// An event with `pad` bytes of private-looking payload (numeric metadata).
fn padded(i: u64, pad: usize) -> Vec<u8> {
    let mut metadata = std::collections::BTreeMap::new();
    for k in 0..pad / 16 {
        metadata.insert(format!("k{k:06}"), k as f64);
    }
    Event {
        id: format!("ev-{i:06}"),
        parameters: Some(telespool::proto::telemetrygateway::v1::EventParameters {
            metadata,
            ..Default::default()
        }),
        feature: "cody.completion".into(),
        action: "accepted".into(),
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_700_000_000 + i as i64,
            nanos: 0,
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

async fn setup(fake: Fake, n: u64, batch_size: usize, max_attempts: u32) -> (Setup, Fake) {
    setup_padded(fake, n, 0, batch_size, max_attempts).await
}

async fn setup_padded(
    fake: Fake,
    n: u64,
    pad: usize,
    batch_size: usize,
    max_attempts: u32,
) -> (Setup, Fake) {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = Queue::open_dir(
        dir.path(),
        QueueConfig {
            sync: SyncPolicy::Never,
            segment_bytes: 64 * 1024,
            ..QueueConfig::default()
        },
    )
    .unwrap();
    let queue = Arc::new(q);
    let events: Vec<Vec<u8>> = (0..n).map(|i| padded(i, pad)).collect();
    for chunk in events.chunks(500) {
        queue.append(Batch::from_slices(chunk)).unwrap();
    }
    let dead = Arc::new(
        DeadLetterStore::open(
            &dir.path().join("dead_letters"),
            DeadLetterConfig::default(),
        )
        .unwrap(),
    );
    let addr = fake.clone().serve().await;
    let config = ExportConfig {
        addr: Some(format!("http://{addr}")),
        interval: Duration::from_millis(200),
        batch_size,
        max_attempts,
        instance_id: Some("test-instance".into()),
        license_key: None,
        external_url: "https://sg.example.com".into(),
        insecure: false,
        gzip: false,
        ca_file: None,
        client_cert: None,
        client_key: None,
    };
    let channel = telespool::export::channel::channel(&config).unwrap();
    let identifier = telespool::export::identity::identifier(&config, "test-instance");
    let stats = Arc::new(ExportStats::default());
    let wake = Arc::new(Notify::new());
    let exporter = Exporter::new(
        queue.clone(),
        dead.clone(),
        Arc::new(SystemClock),
        config,
        identifier,
        channel,
        wake.clone(),
        stats.clone(),
    )
    .with_backoff(Backoff {
        base: Duration::from_millis(10),
        max: Duration::from_millis(100),
    });
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(exporter.run(rx));
    (
        Setup {
            _dir: dir,
            queue,
            dead,
            stats,
            stop,
            task,
            wake,
        },
        fake,
    )
}

/// Watermarks of every segment, by segment id.
fn watermarks(q: &Queue) -> BTreeMap<u64, u64> {
    q.segments()
        .iter()
        .map(|s| (s.meta.id.0, s.meta.watermark.0))
        .collect()
}

/// Waits until the backlog is empty, checking watermarks never move back.
async fn drain(s: &Setup, within: Duration) {
    let start = Instant::now();
    let mut last = watermarks(&s.queue);
    loop {
        let now = watermarks(&s.queue);
        for (seg, w) in &now {
            if let Some(prev) = last.get(seg) {
                assert!(
                    w >= prev,
                    "watermark of segment {seg} moved back from {prev} to {w}"
                );
            }
        }
        last = now;
        if s.queue.backlog().records == 0 {
            return;
        }
        assert!(
            start.elapsed() < within,
            "backlog not drained: {:?}, stats {:?}",
            s.queue.backlog(),
            s.stats
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn acked_in_store(q: &Queue) -> u64 {
    q.segments().iter().map(|s| s.meta.counts.acked).sum()
}

async fn finish(s: Setup) {
    let _ = s.stop.send(true);
    tokio::time::timeout(Duration::from_secs(15), s.task)
        .await
        .unwrap()
        .unwrap();
}

async fn every_event_is_acknowledged_exactly_once(mode: Mode, n: u64) -> Fake {
    let (s, fake) = setup(Fake::new(mode), n, 1000, 1000).await;
    drain(&s, Duration::from_secs(60)).await;
    assert_eq!(
        acked_in_store(&s.queue),
        n,
        "each record resolved once, as acked"
    );
    assert_eq!(s.dead.count().unwrap(), 0);
    {
        let seen = fake.seen.lock().unwrap();
        for i in 0..n {
            assert!(
                seen.acked.contains_key(&format!("ev-{i:06}")),
                "event {i} never acknowledged by the gateway"
            );
        }
    }
    finish(s).await;
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_acknowledges_everything_drains_the_queue() {
    let fake = every_event_is_acknowledged_exactly_once(Mode::AckAll, 3000).await;
    let seen = fake.seen.lock().unwrap();
    assert_eq!(
        seen.events.len(),
        3000,
        "no resend when everything is acknowledged"
    );
    // The queued bytes go on the wire untouched.
    assert_eq!(seen.events[7].encode_to_vec(), event(7));
    assert!(
        seen.streams >= 3,
        "the batch size bounds events per stream: {} streams",
        seen.streams
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_subset_of_acknowledgements_resends_the_rest_until_all_are_acknowledged() {
    let fake = every_event_is_acknowledged_exactly_once(Mode::AckSome { percent: 60 }, 2000).await;
    let seen = fake.seen.lock().unwrap();
    assert!(
        seen.events.len() > 2000,
        "events left out were resent ({} sent)",
        seen.events.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_in_another_order_are_matched_by_id() {
    every_event_is_acknowledged_exactly_once(Mode::AckReversed, 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_in_acknowledgements_are_ignored_and_counted() {
    let (s, _fake) = setup(Fake::new(Mode::AckWithUnknown), 1500, 1000, 10).await;
    drain(&s, Duration::from_secs(30)).await;
    assert_eq!(acked_in_store(&s.queue), 1500);
    assert!(
        s.stats
            .unknown_ids
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    finish(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_mid_batch_reconnects_without_losing_anything() {
    // ~1 KiB events: a 1 MiB payload holds about a thousand, so a stream of
    // 3,000 carries several payloads and the fake breaks it after the first.
    let (s, fake) = setup_padded(Fake::new(Mode::DropAfter { n: 1 }), 3000, 1000, 3000, 1).await;
    drain(&s, Duration::from_secs(30)).await;
    assert_eq!(acked_in_store(&s.queue), 3000);
    assert_eq!(
        s.dead.count().unwrap(),
        0,
        "a broken stream is not an answered attempt"
    );
    {
        let seen = fake.seen.lock().unwrap();
        assert!(seen.streams >= 3, "{} streams", seen.streams);
        assert!(
            seen.events.len() > 3000,
            "payloads cut off by the drop were resent ({} sent)",
            seen.events.len()
        );
    }
    finish(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_never_ages_events_into_the_dead_letter_store() {
    for mode in [
        Mode::Unavailable,
        Mode::AckNothing,
        Mode::RefuseMetadata,
        Mode::DropAfter { n: 0 },
    ] {
        // One attempt would be enough to dead-letter, if outages counted.
        let (s, fake) = setup(Fake::new(mode.clone()), 500, 1000, 1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            s.queue.backlog().records,
            500,
            "{mode:?}: nothing is acknowledged during an outage"
        );
        assert_eq!(
            s.dead.count().unwrap(),
            0,
            "{mode:?}: nothing is dead-lettered during an outage"
        );
        assert!(
            s.stats.errors.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "{mode:?}"
        );
        fake.set_mode(Mode::AckAll);
        s.wake.notify_one();
        drain(&s, Duration::from_secs(30)).await;
        assert_eq!(acked_in_store(&s.queue), 500, "{mode:?}");
        assert_eq!(s.dead.count().unwrap(), 0, "{mode:?}");
        finish(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_gateway_gets_no_acknowledgement_and_nothing_is_lost() {
    let (s, fake) = setup(Fake::new(Mode::Stall), 300, 1000, 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.queue.backlog().records, 300);
    assert_eq!(s.dead.count().unwrap(), 0);
    // Shutdown while stalled returns within the grace period.
    let started = Instant::now();
    let _ = s.stop.send(true);
    tokio::time::timeout(Duration::from_secs(15), s.task)
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(12));
    drop(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_after_the_configured_answered_attempts() {
    let poison = vec!["ev-000003".to_string(), "ev-000250".to_string()];
    let (s, _fake) = setup(Fake::new(Mode::Poison(poison.clone())), 400, 1000, 3).await;
    // Traffic keeps flowing, so the poison events are retried alongside
    // events the gateway does acknowledge (an answer with no ids at all
    // would not count as an attempt).
    let q = s.queue.clone();
    let wake = s.wake.clone();
    let traffic = tokio::spawn(async move {
        for i in 0..60u64 {
            q.append(Batch::from_slices(&[event(1000 + i)])).unwrap();
            wake.notify_one();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    traffic.await.unwrap();
    drain(&s, Duration::from_secs(30)).await;
    assert_eq!(acked_in_store(&s.queue), 398 + 60);
    let dead = s.dead.list(None, 10).unwrap();
    assert_eq!(dead.len(), 2);
    for d in &dead {
        assert!(poison.contains(d.entry.event_id.as_ref().unwrap()));
        assert_eq!(d.entry.attempts, 3);
        assert!(
            d.entry.reason.contains("3 answered attempts"),
            "{}",
            d.entry.reason
        );
        // The dead letter holds the exact queued bytes.
        let n: u64 = d.entry.event_id.as_ref().unwrap()[3..].parse().unwrap();
        assert_eq!(d.entry.event, event(n));
    }
    let dl: u64 = s
        .queue
        .segments()
        .iter()
        .map(|x| x.meta.counts.dead_lettered)
        .sum();
    assert_eq!(
        dl, 2,
        "dead-lettered records are resolved and no longer pin their segment"
    );
    finish(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_appends_wake_an_idle_exporter() {
    let (s, fake) = setup(Fake::new(Mode::AckAll), 10, 1000, 10).await;
    drain(&s, Duration::from_secs(10)).await;
    s.queue.append(Batch::from_slices(&[event(99)])).unwrap();
    s.wake.notify_one();
    drain(&s, Duration::from_secs(5)).await;
    assert!(fake.seen.lock().unwrap().acked.contains_key("ev-000099"));
    assert_eq!(s.queue.get(RecordId(11)).unwrap().unwrap().event, event(99));
    finish(s).await;
}
