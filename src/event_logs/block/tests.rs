//! Round trips, corruption and bloom checks of the block format.

use std::collections::HashSet;

use super::event_ids::{parse_canonical_uuid, render_uuid};
use super::hash::bloom_build;
use super::*;
use crate::event_logs::EventLogRow;
use crate::event_logs::codec;
use crate::event_logs::hll::NoHash;
use crate::event_logs::key::{EventTime, render_timestamp};
use proptest::prelude::*;

/// Encodes rows into one block and decodes every row back.
pub(crate) fn round_trip(rows: &[EventLogRow]) -> Vec<EventLogRow> {
    let values: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            let mut v = Vec::new();
            codec::encode(r, &mut v).unwrap();
            v
        })
        .collect();
    let ins: Vec<RowIn<'_>> = rows
        .iter()
        .zip(&values)
        .map(|(r, v)| {
            let time = crate::event_logs::key::parse_timestamp(&r.timestamp).unwrap();
            RowIn {
                id: r.event_id.as_bytes(),
                time,
                ts_text: (render_timestamp(time) != r.timestamp).then_some(r.timestamp.as_bytes()),
                f: codec::decode_fields(v).unwrap().0,
            }
        })
        .collect();
    let mut b = BlockBuilder::default();
    for r in &ins {
        b.push(r);
    }
    let mut interner = Interner::default();
    let built = b.finish(7, 9, None, &mut Compressor::new(), &mut interner);
    let payload = check_frame(&built.frame).unwrap();
    let meta = parse_payload(payload, 0, &mut interner).unwrap();
    assert_eq!(meta.summary, built.meta.summary);
    let ids = Ids::decode(payload, &meta).unwrap();
    let head = Head::decode(payload, &meta).unwrap();
    let rest = Rest::decode(payload, &meta).unwrap();
    (0..head.len())
        .map(|i| {
            codec::row_from_fields(&ids.get(i), &head.timestamp(i), &rest.fields(&head, i)).unwrap()
        })
        .collect()
}

fn arb_str() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z.]{1,12}",
        "\\PC{0,20}",
        Just("VSCODE".to_owned()),
    ]
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e300f64..1e300).prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-zA-Z.]{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

prop_compose! {
    fn arb_row()(
        uuid in any::<[u8; 16]>(),
        use_uuid in any::<bool>(),
        text_id in "[A-Za-z0-9-]{1,40}",
        name in arb_str(),
        url in arb_str(),
        user_id in prop_oneof![Just(0i64), any::<i64>(), 1i64..5],
        anonymous_user_id in arb_str(),
        source in arb_str(),
        argument in arb_json(),
        public_argument in arb_json(),
        version in arb_str(),
        secs in -62_135_596_800i64..253_402_300_799,
        nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
        padded in any::<bool>(),
        flags in proptest::collection::btree_map("[a-z-]{0,6}", any::<bool>(), 0..3),
        opts in proptest::collection::vec(proptest::option::of(arb_str()), 9),
    ) -> EventLogRow {
        let time = EventTime { seconds: secs, nanos };
        let mut timestamp = render_timestamp(time);
        if padded && nanos != 0 && nanos % 10 == 0 {
            // A non-canonical (zero-padded) fraction: kept as written.
            timestamp = timestamp.replace('Z', "0Z");
        }
        EventLogRow {
            event_id: if use_uuid { render_uuid(&uuid) } else { text_id },
            name, url, user_id, anonymous_user_id, source, argument, public_argument, version,
            timestamp,
            feature_flags: flags,
            cohort_id: opts[0].clone(),
            first_source_url: opts[1].clone(),
            last_source_url: opts[2].clone(),
            referrer: opts[3].clone(),
            device_id: opts[4].clone(),
            insert_id: opts[5].clone(),
            billing_product_category: opts[6].clone(),
            billing_event_id: opts[7].clone(),
            client: opts[8].clone(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_columnar_block_codec_round_trips_arbitrary_rows(rows in proptest::collection::vec(arb_row(), 1..40)) {
        let back = round_trip(&rows);
        prop_assert_eq!(back, rows);
    }

    #[test]
    fn any_flipped_byte_of_a_frame_is_caught_by_its_crc(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let rows = [EventLogRow {
            event_id: "e1".into(),
            name: "search.view".into(),
            url: String::new(),
            user_id: 5,
            anonymous_user_id: "a".into(),
            source: "BACKEND".into(),
            argument: serde_json::json!({"private": "x"}),
            public_argument: serde_json::json!({"n": 1}),
            version: "6.0.0".into(),
            timestamp: "2024-03-01T10:00:00Z".into(),
            feature_flags: Default::default(),
            cohort_id: None,
            first_source_url: None,
            last_source_url: None,
            referrer: None,
            device_id: None,
            insert_id: None,
            billing_product_category: None,
            billing_event_id: None,
            client: None,
        }];
        let values = {
            let mut v = Vec::new();
            codec::encode(&rows[0], &mut v).unwrap();
            v
        };
        let mut b = BlockBuilder::default();
        b.push(&RowIn {
            id: b"e1",
            time: crate::event_logs::key::parse_timestamp(&rows[0].timestamp).unwrap(),
            ts_text: None,
            f: codec::decode_fields(&values).unwrap().0,
        });
        let mut built = b.finish(1, 1, None, &mut Compressor::new(), &mut Interner::default());
        let i = pos.index(built.frame.len());
        built.frame[i] ^= 1 << bit;
        prop_assert!(check_frame(&built.frame).is_err());
    }
}

#[test]
fn canonical_uuids_round_trip_and_others_are_text() {
    let u = uuid::Uuid::new_v4();
    let s = u.to_string();
    assert_eq!(parse_canonical_uuid(s.as_bytes()), Some(*u.as_bytes()));
    assert_eq!(render_uuid(u.as_bytes()), s);
    assert_eq!(parse_canonical_uuid(s.to_uppercase().as_bytes()), None);
    assert_eq!(
        parse_canonical_uuid(u.simple().to_string().as_bytes()),
        None
    );
    assert_eq!(parse_canonical_uuid(b"e1"), None);
}

#[test]
fn the_bloom_finds_every_key_it_holds() {
    let keys: HashSet<u64, NoHash> = (0..500u64).map(|i| user_id_hash(i as i64)).collect();
    let bloom = bloom_build(&keys);
    for &k in &keys {
        assert!(bloom_may_contain(&bloom, k));
    }
    let fp = (10_000..20_000)
        .filter(|&i| bloom_may_contain(&bloom, user_id_hash(i)))
        .count();
    assert!(fp < 500, "{fp} false positives of 10,000");
}
