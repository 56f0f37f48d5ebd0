//! Logging values that came from the network or from disk.
//!
//! With tracing's text formatter a field recorded with `%` (Display) is
//! written as is: a feature name or an event id holding a newline would
//! start a line of its own, and could pass for a log line telespool never
//! wrote (`a\nlevel=ERROR forged`). Every untrusted value in a log line is
//! therefore recorded escaped:
//!
//! - strings with `?` (Debug: quoted, `\n` written as `\n`), or as a `&str`
//!   field value, which tracing records the same way;
//! - errors and other values whose text may quote input with `%`
//!   [`Escaped`], which writes their Display with control characters (and
//!   Unicode line separators and bidirectional overrides) escaped.
//!
//! Never interpolate untrusted text into the message itself
//! (`"bad feature {feature}"`): the message is written raw.

use std::fmt::{self, Write};

/// Display of `T` with control characters escaped (`\n`, `\u{1b}`, ...),
/// so that it stays on one log line whatever it holds.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

/// Whether `c` must not reach a log line raw.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(needs_escape) {
            let (clean, tail) = rest.split_at(i);
            self.0.write_str(clean)?;
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                for e in c.escape_default() {
                    self.0.write_char(e)?;
                }
            }
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_line_separators_are_escaped() {
        assert_eq!(
            Escaped("a\nlevel=ERROR forged\r\t\u{1b}[31m\u{2028}é").to_string(),
            "a\\nlevel=ERROR forged\\r\\t\\u{1b}[31m\\u{2028}é"
        );
        assert_eq!(Escaped("plain text").to_string(), "plain text");
    }
}
