use super::*;
use crate::grpc_limits::budget::BudgetNames;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::BodyExt;
use proptest::prelude::*;
use std::io::Write;

const NAMES: BudgetNames = BudgetNames {
    setting: "--decode-budget (TEST)",
    in_use_gauge: "test_body_budget_in_use",
    refused_counter: "test_body_budget_refused_total",
};

fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend((message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn gzip(message: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(message).unwrap();
    e.finish().unwrap()
}

/// Feeds `chunks` through a [`BudgetBody`]; returns the bytes tonic would
/// see, the error that ended the body if any, and the queued reservations'
/// sizes.
fn run(
    chunks: Vec<Vec<u8>>,
    budget: &Arc<DecodeBudget>,
    max: usize,
    inflate: bool,
) -> (Vec<u8>, Option<Status>, Vec<u64>) {
    let frames = chunks
        .into_iter()
        .map(|c| Ok::<_, Status>(Frame::data(Bytes::from(c))));
    let inner = tonic::body::Body::new(http_body_util::StreamBody::new(futures::stream::iter(
        frames,
    )));
    let held = MessageReservations::default();
    let mut body = BudgetBody::new(inner, budget.clone(), held.clone(), max, inflate);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (out, error) = runtime.block_on(async {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => out.extend_from_slice(&f.into_data().unwrap()),
                Err(status) => return (out, Some(status)),
            }
        }
        (out, None)
    });
    let mut sizes = Vec::new();
    while let Some(r) = held.next() {
        sizes.push(r.bytes());
    }
    (out, error, sizes)
}

fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        out.push(bytes[from..p].to_vec());
        from = p;
    }
    out
}

proptest! {
    #[test]
    fn messages_split_anywhere_come_out_as_plain_frames_each_reserved(
        messages in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(0u8..4, 0..300)), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let budget = DecodeBudget::new(1 << 30, NAMES);
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (compressed, m) in &messages {
            if *compressed {
                wire.extend(frame(1, &gzip(m)));
            } else {
                wire.extend(frame(0, m));
            }
            expected.extend(frame(0, m));
        }
        let (out, error, sizes) = run(split(&wire, &cuts), &budget, 1 << 20, true);
        prop_assert!(error.is_none(), "{error:?}");
        prop_assert_eq!(out, expected);
        let want: Vec<u64> = messages
            .iter()
            .map(|(c, m)| if *c { m.len() as u64 + 5 } else { m.len() as u64 })
            .collect();
        prop_assert_eq!(sizes, want);
        prop_assert_eq!(budget.in_use(), 0, "everything is given back");
    }
}

#[test]
fn without_inflation_compressed_frames_pass_through_untouched() {
    let budget = DecodeBudget::new(1 << 20, NAMES);
    let wire = frame(1, &gzip(b"hello"));
    let (out, error, sizes) = run(vec![wire.clone()], &budget, 1 << 20, false);
    assert!(error.is_none());
    assert_eq!(out, wire);
    assert_eq!(sizes, [wire.len() as u64 - 5]);
}

#[test]
fn a_message_past_the_budget_is_refused_after_the_messages_before_it() {
    let budget = DecodeBudget::new(1000, NAMES);
    let first = frame(0, &[7; 600]);
    let second = frame(0, &[8; 600]);
    let wire = [first.clone(), second].concat();
    let (out, error, sizes) = run(vec![wire], &budget, 1 << 20, true);
    assert_eq!(
        out, first,
        "the first message is passed on, not the second header"
    );
    let status = error.unwrap();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status.message().contains("--decode-budget (TEST)") && status.message().contains("1000"),
        "{status:?}"
    );
    assert_eq!(sizes, [600]);
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn a_gzip_bomb_is_stopped_at_the_message_size_limit() {
    let budget = DecodeBudget::new(1 << 30, NAMES);
    let bomb = gzip(&vec![0u8; 4 << 20]);
    assert!(bomb.len() < 8 << 10, "{}", bomb.len());
    let (out, error, sizes) = run(vec![frame(1, &bomb)], &budget, 1 << 20, true);
    assert!(out.is_empty());
    let status = error.unwrap();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains("1048576"), "{status:?}");
    assert!(sizes.is_empty());
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn inflation_stops_when_the_budget_does() {
    let budget = DecodeBudget::new(1 << 20, NAMES);
    let bomb = gzip(&vec![0u8; 4 << 20]);
    let (_, error, _) = run(vec![frame(1, &bomb)], &budget, 16 << 20, true);
    let status = error.unwrap();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains("decode budget"), "{status:?}");
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn a_message_over_the_size_limit_is_left_to_tonic_and_not_reserved() {
    let budget = DecodeBudget::new(100, NAMES);
    let wire = frame(0, &[1; 300]);
    let (out, error, sizes) = run(vec![wire.clone()], &budget, 200, true);
    assert!(error.is_none());
    assert_eq!(out, wire);
    assert!(sizes.is_empty());
}

#[test]
fn corrupt_gzip_is_internal_and_a_stream_ending_inside_one_is_unexpected_eof() {
    let budget = DecodeBudget::new(1 << 20, NAMES);
    let (_, error, _) = run(vec![frame(1, b"not gzip")], &budget, 1 << 20, true);
    let status = error.unwrap();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(status.message().contains("decompressing"), "{status:?}");

    let whole = frame(1, &gzip(b"abc"));
    let (_, error, _) = run(vec![whole[..8].to_vec()], &budget, 1 << 20, true);
    assert_eq!(error.unwrap().message(), UNEXPECTED_EOF);
    assert_eq!(budget.in_use(), 0);
}
