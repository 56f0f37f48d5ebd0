//! Event ids in canonical UUID form, stored as 16 bytes.

/// Each byte's value as a hex digit (lower case only), or `0xff`.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Where each byte's two digits start in the canonical form.
const DIGIT_PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// The 16 bytes of a UUID in canonical form (36 characters, lower-case
/// hex, hyphens at 8, 13, 18, 23), which is exactly what renders back.
/// (Table-driven: the first, per-character version was ~8% of a write.
/// The `uuid` crate is its reference in the tests.)
pub(crate) fn parse_canonical_uuid(s: &[u8]) -> Option<[u8; 16]> {
    let b: &[u8; 36] = s.try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut bad = 0u8;
    for (o, &at) in out.iter_mut().zip(&DIGIT_PAIRS) {
        let hi = HEX[usize::from(*b.get(at)?)];
        let lo = HEX[usize::from(*b.get(at + 1)?)];
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// Renders 16 bytes as a canonical UUID.
pub(crate) fn render_uuid(u: &[u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, &byte) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The reference: what the `uuid` crate parses and renders back the
    /// same (lower-case hyphenated) is what `parse_canonical_uuid` takes.
    fn reference(s: &str) -> Option<[u8; 16]> {
        let u = uuid::Uuid::try_parse(s).ok()?;
        (u.hyphenated().to_string() == s).then(|| *u.as_bytes())
    }

    proptest! {
        #[test]
        fn agrees_with_the_uuid_crate(
            bytes in any::<[u8; 16]>(),
            flip in 0usize..36,
            with in prop::sample::select(b"0123456789abcdefABCDEF-g{ /:@`".to_vec()),
            mutate in any::<bool>(),
        ) {
            let mut s = uuid::Uuid::from_bytes(bytes).hyphenated().to_string().into_bytes();
            if mutate {
                s[flip] = with;
            }
            let s = String::from_utf8(s).unwrap();
            prop_assert_eq!(parse_canonical_uuid(s.as_bytes()), reference(&s));
            if let Some(u) = parse_canonical_uuid(s.as_bytes()) {
                prop_assert_eq!(render_uuid(&u), s);
            }
        }

        #[test]
        fn any_text_agrees_with_the_uuid_crate(s in "[0-9a-fA-F-]{30,40}") {
            prop_assert_eq!(parse_canonical_uuid(s.as_bytes()), reference(&s));
        }
    }
}
