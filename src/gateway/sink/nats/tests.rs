//! Unit tests of the NATS sink's parsers and ack bookkeeping.

use super::acks::{PendingBatch, parse_pub_ack, parse_reply, push_decimal};
use super::{nats_error, subject_matches};

#[test]
fn stream_subjects_with_wildcards_capture_literal_subjects() {
    assert!(subject_matches("telemetry.events", "telemetry.events"));
    assert!(subject_matches("telemetry.*", "telemetry.events"));
    assert!(subject_matches("telemetry.>", "telemetry.events.x"));
    assert!(subject_matches(">", "a"));
    assert!(!subject_matches("telemetry.*", "telemetry.events.x"));
    assert!(!subject_matches("telemetry", "telemetry.events"));
    assert!(!subject_matches("telemetry.events.x", "telemetry.events"));
}

#[test]
fn pub_acks_are_read_from_their_first_bytes_and_errors_keep_their_description() {
    assert!(parse_pub_ack(br#"{"stream":"telemetry-events","seq":7}"#).is_ok());
    assert!(
        parse_pub_ack(br#"{"stream":"error","seq":8,"duplicate":true}"#).is_ok(),
        "a duplicate is in the stream, and a stream may be named error"
    );
    assert!(parse_pub_ack(br#"{"seq":9,"stream":"s"}"#).is_ok());
    let refused =
        br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#;
    let reason = parse_pub_ack(refused).unwrap_err();
    assert!(reason.contains("maximum messages exceeded"), "{reason}");
    assert!(reason.contains("503"), "{reason}");
    assert!(parse_pub_ack(b"").is_err());
    assert!(parse_pub_ack(b"+OK").is_err());
    assert!(parse_pub_ack(b"{}").is_err());
}

#[test]
fn reply_subjects_carry_batch_and_index_and_others_are_ignored() {
    let mut reply = "_INBOX.abc.".to_owned();
    push_decimal(&mut reply, 12_345);
    reply.push('.');
    push_decimal(&mut reply, 0);
    assert_eq!(reply, "_INBOX.abc.12345.0");
    assert_eq!(parse_reply("_INBOX.abc.", &reply), Some((12_345, 0)));
    let mut max = String::new();
    push_decimal(&mut max, u64::MAX);
    assert_eq!(max, u64::MAX.to_string());
    assert_eq!(parse_reply("_INBOX.abc.", "_INBOX.xyz.1.2"), None);
    assert_eq!(parse_reply("_INBOX.abc.", "_INBOX.abc.1"), None);
    assert_eq!(parse_reply("_INBOX.abc.", "_INBOX.abc.x.2"), None);
}

#[test]
fn a_batch_wakes_once_every_slot_is_answered_and_keeps_the_first_answer() {
    let (done, mut answered) = tokio::sync::oneshot::channel();
    let mut batch = PendingBatch {
        results: vec![None, Some(Ok(())), None],
        remaining: 2,
        done: Some(done),
    };
    batch.answer(0, Ok(()));
    assert!(answered.try_recv().is_err());
    batch.answer(0, Err(nats_error("publish ack", true, "late")));
    batch.answer(9, Ok(()));
    assert!(answered.try_recv().is_err());
    batch.answer(2, Err(nats_error("publish ack", true, "refused")));
    assert!(answered.try_recv().is_ok());
    assert!(matches!(batch.results.first(), Some(Some(Ok(())))));
    assert!(matches!(batch.results.get(2), Some(Some(Err(_)))));
}
