//! What the exporter needs from encoded events without decoding them.

/// The `id` (field 1, a string) of an encoded `telemetrygateway.v1.Event`,
/// read by walking its top-level fields. `None` if the bytes do not parse
/// or carry no id. The last occurrence wins, as protobuf merging does.
pub fn event_id(bytes: &[u8]) -> Option<&str> {
    let mut pos = 0;
    let mut id = None;
    while pos < bytes.len() {
        let key = varint(bytes, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(bytes, &mut pos)?;
            }
            1 => pos = pos.checked_add(8).filter(|&p| p <= bytes.len())?,
            2 => {
                let n = usize::try_from(varint(bytes, &mut pos)?).ok()?;
                let end = pos.checked_add(n).filter(|&e| e <= bytes.len())?;
                if field == 1 {
                    id = Some(std::str::from_utf8(bytes.get(pos..end)?).ok()?);
                }
                pos = end;
            }
            5 => pos = pos.checked_add(4).filter(|&p| p <= bytes.len())?,
            _ => return None,
        }
    }
    id.filter(|s| !s.is_empty())
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::telemetrygateway::v1::Event;
    use proptest::prelude::*;
    use prost::Message;

    #[test]
    fn the_id_of_an_encoded_event_is_read_without_decoding_it() {
        let e = Event {
            id: "abc-123".into(),
            feature: "f".into(),
            action: "a".into(),
            timestamp: Some(prost_types::Timestamp {
                seconds: 5,
                nanos: 1,
            }),
            ..Default::default()
        };
        assert_eq!(event_id(&e.encode_to_vec()), Some("abc-123"));
        assert_eq!(event_id(&Event::default().encode_to_vec()), None);
        assert_eq!(event_id(&[0x0a, 0x05, b'a']), None);
    }

    proptest! {
        #[test]
        fn event_id_agrees_with_prost(id in "[a-z0-9-]{0,40}", feature in ".{0,20}", extra in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = Event { id: id.clone(), feature, ..Default::default() };
            let bytes = e.encode_to_vec();
            prop_assert_eq!(event_id(&bytes), (!id.is_empty()).then_some(id.as_str()));
            // Never panics on garbage.
            let _ = event_id(&extra);
        }
    }
}
