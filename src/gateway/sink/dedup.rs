//! Effectively-once publishing: the dedup key of an event, and the file
//! sink's window of keys written.
//!
//! A sidecar sends an event again when it lost the gateway's answer (a
//! killed sidecar or gateway, a cut stream). Both sinks drop a repeat that
//! arrives within `dedup_window` (default 2 minutes) of the first copy:
//!
//! - **The key** is a hash of (instance, event id): 128 bits of SHA-256,
//!   32 hex digits ([`dedup_key`]). The instance is what the stream's
//!   identifier names (license key, instance id or managed-service id), so
//!   one instance reusing another's event id cannot suppress its event;
//!   SHA-256, so nobody can craft a collision with another's key.
//! - **JetStream** dedups by `Nats-Msg-Id` = the key, within the stream's
//!   duplicate window (set to `dedup_window` when the gateway creates it).
//! - **The file sink** keeps the keys it wrote in the last `dedup_window`
//!   ([`Window`], on its writer thread) and skips a line whose key is
//!   there, answering it as confirmed: its first copy is durable. Each line
//!   ends with its key and publish time (`"dedup_key":"…",
//!   "published_at_ms":N}`), so a restarted gateway rebuilds the window
//!   from the tail of its files ([`scan_tail`]) and a restart forgets
//!   nothing. The window holds at most `dedup_max_ids` keys (default
//!   2,000,000, ~100 MiB); past that the oldest go first, counted in
//!   `telespool_gateway_dedup_evicted_total`.
//!
//! Lines skipped are counted in `telespool_gateway_dedup_skipped_total`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Default dedup window of both sinks: JetStream's own default.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(120);
/// Default cap on the keys the file sink remembers.
pub const DEFAULT_DEDUP_MAX_IDS: usize = 2_000_000;
/// Metric: lines the file sink did not write again (a repeat within the window).
pub const SKIPPED: &str = "telespool_gateway_dedup_skipped_total";
/// Metric: keys forgotten before their window ended (over `dedup_max_ids`).
pub const EVICTED: &str = "telespool_gateway_dedup_evicted_total";

/// The dedup key of event `event_id` from `instance` (see the module docs):
/// 32 lowercase hex digits.
pub fn dedup_key(instance: &str, event_id: &str) -> String {
    let mut h = Sha256::new();
    // Length-prefixed: ("ab", "c") and ("a", "bc") differ.
    h.update((instance.len() as u64).to_le_bytes());
    h.update(instance.as_bytes());
    h.update(event_id.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(32);
    for b in digest.iter().take(16) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A key as 128 bits (what the window stores), if it is 32 hex digits.
pub fn parse_key(key: &str) -> Option<u128> {
    if key.len() != 32 {
        return None;
    }
    u128::from_str_radix(key, 16).ok()
}

/// The hasher of key sets and maps: the keys are uniform (SHA-256), a
/// fast hash is enough (SipHash, the default, cost a tenth of the file
/// sink's throughput).
pub type KeyHasher = foldhash::fast::RandomState;
/// A set of keys.
pub type KeySet = HashSet<u128, KeyHasher>;

/// Keys written in the last `window`, at most `max_ids` of them.
#[derive(Debug)]
pub struct Window {
    window_ms: u64,
    max_ids: usize,
    /// Key → when it was written (Unix ms).
    seen: HashMap<u128, u64, KeyHasher>,
    /// Keys in the order written (each once: a key in `seen` is never
    /// written again).
    order: VecDeque<(u128, u64)>,
}

impl Window {
    /// An empty window.
    pub fn new(window: Duration, max_ids: usize) -> Window {
        Window {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            max_ids: max_ids.max(1),
            seen: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Whether `key` was written within the window before `now_ms`.
    pub fn contains(&self, key: u128, now_ms: u64) -> bool {
        self.seen
            .get(&key)
            .is_some_and(|&at| now_ms.saturating_sub(at) < self.window_ms)
    }

    /// Records `key` as written at `at_ms` (in non-decreasing order of
    /// time, as lines are written), forgetting what left the window and,
    /// past `max_ids`, the oldest. Returns how many keys were evicted
    /// early.
    pub fn insert(&mut self, key: u128, at_ms: u64) -> u64 {
        self.expire(at_ms);
        // A key written again after its window replaces its time: its
        // older entry in `order` no longer matches and is skipped when it
        // comes up.
        self.seen.insert(key, at_ms);
        self.order.push_back((key, at_ms));
        let mut evicted = 0;
        while self.seen.len() > self.max_ids {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
                evicted += 1;
            }
        }
        evicted
    }

    /// Forgets the keys written `window` or more before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        while let Some(&(key, at)) = self.order.front() {
            if now_ms.saturating_sub(at) < self.window_ms {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&key) == Some(&at) {
                self.seen.remove(&key);
            }
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The most keys held.
    pub fn max_ids(&self) -> usize {
        self.max_ids
    }

    /// The window's length in ms.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }
}

/// The suffix every file-sink line ends with, after the data:
/// `,"dedup_key":"<32 hex>","published_at_ms":<ms>}\n`.
pub fn write_suffix(key: &str, at_ms: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(br#","dedup_key":""#);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(br#"","published_at_ms":"#);
    out.extend_from_slice(at_ms.to_string().as_bytes());
    out.extend_from_slice(b"}\n");
}

/// The key and time of a line written by [`write_suffix`] (without its
/// `\n`); `None` for a line without them (written by an older gateway).
pub fn read_suffix(line: &[u8]) -> Option<(u128, u64)> {
    const TIME: &[u8] = br#","published_at_ms":"#;
    const KEY: &[u8] = br#","dedup_key":""#;
    let body = line.strip_suffix(b"}")?;
    let digits = body.len() - body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let at: u64 = std::str::from_utf8(body.get(digits..)?)
        .ok()?
        .parse()
        .ok()?;
    let before_time = body.get(..digits)?.strip_suffix(TIME)?;
    let before_quote = before_time.strip_suffix(b"\"")?;
    let key_start = before_quote.len().checked_sub(32)?;
    let key = std::str::from_utf8(before_quote.get(key_start..)?).ok()?;
    before_quote.get(..key_start)?.strip_suffix(KEY)?;
    Some((parse_key(key)?, at))
}

/// Reads lines backwards from the end of `path`, newest first, calling
/// `found` with each line's key and time until it returns `false`, a line
/// has no key (an older gateway wrote it), or the file's start. Reads in
/// 1 MiB chunks; a line longer than the sink's largest body is skipped.
pub fn scan_tail(path: &Path, mut found: impl FnMut(u128, u64) -> bool) -> std::io::Result<()> {
    const CHUNK: u64 = 1024 * 1024;
    let mut file = std::fs::File::open(path)?;
    let mut end = file.metadata()?.len();
    // Bytes of a line cut at the chunk's start, carried to the next read.
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let len = usize::try_from(end - start).unwrap_or(0);
        buf.clear();
        buf.resize(len, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&carry);
        carry.clear();
        // Lines end with '\n'; the file's last byte is one (a partial line
        // was cut at open).
        let mut line_end = buf.len();
        if buf.last() == Some(&b'\n') {
            line_end -= 1;
        }
        while let Some(nl) = buf
            .get(..line_end)
            .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
        {
            let line = buf.get(nl + 1..line_end).unwrap_or_default();
            match read_suffix(line) {
                Some((key, at)) => {
                    if !found(key, at) {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            }
            line_end = nl;
        }
        // What is left before the first '\n' of this chunk belongs to a line
        // that starts in an earlier chunk (or is the file's first line).
        carry.extend_from_slice(buf.get(..line_end).unwrap_or_default());
        if start == 0 && !carry.is_empty() {
            if let Some((key, at)) = read_suffix(&carry) {
                found(key, at);
            }
            return Ok(());
        }
        if carry.len() > 64 * 1024 * 1024 {
            return Ok(());
        }
        end = start;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_hex_digits_and_depend_on_both_parts() {
        let k = dedup_key("instance-a", "event-1");
        assert_eq!(k.len(), 32);
        assert!(parse_key(&k).is_some());
        assert_ne!(k, dedup_key("instance-b", "event-1"));
        assert_ne!(k, dedup_key("instance-a", "event-2"));
        assert_ne!(dedup_key("ab", "c"), dedup_key("a", "bc"));
        assert_eq!(k, dedup_key("instance-a", "event-1"));
    }

    #[test]
    fn the_window_forgets_keys_after_it_and_the_oldest_past_the_cap() {
        let mut w = Window::new(Duration::from_secs(10), 3);
        assert_eq!(w.insert(1, 1_000), 0);
        assert!(w.contains(1, 10_999));
        assert!(!w.contains(1, 11_000));
        w.insert(2, 2_000);
        w.insert(3, 3_000);
        assert_eq!(w.insert(4, 4_000), 1);
        assert!(!w.contains(1, 4_000));
        assert!(w.contains(2, 4_000) && w.contains(4, 4_000));
        w.expire(13_500);
        assert_eq!(w.len(), 1);
        assert!(w.contains(4, 13_500));
    }

    #[test]
    fn a_suffix_reads_back_and_other_lines_do_not() {
        let key = dedup_key("i", "e");
        let mut line = br#"{"attributes":{},"data":{"event":{"id":"e"}}"#.to_vec();
        write_suffix(&key, 1_764_000_000_123, &mut line);
        let text = line.strip_suffix(b"\n").unwrap();
        assert_eq!(
            read_suffix(text),
            Some((parse_key(&key).unwrap(), 1_764_000_000_123))
        );
        assert_eq!(read_suffix(br#"{"attributes":{},"data":{}}"#), None);
        assert_eq!(read_suffix(b""), None);
        assert_eq!(read_suffix(b"}"), None);
    }

    #[test]
    fn the_tail_is_scanned_newest_first_across_chunks_and_stops_at_old_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut text = b"{\"old\":1}\n".to_vec();
        let pad = "x".repeat(300_000);
        for i in 0..10u64 {
            text.extend_from_slice(format!("{{\"data\":\"{pad}\"").as_bytes());
            write_suffix(&dedup_key("i", &i.to_string()), 1_000 + i, &mut text);
        }
        std::fs::write(&path, &text).unwrap();
        let mut seen = Vec::new();
        scan_tail(&path, |_, at| {
            seen.push(at);
            true
        })
        .unwrap();
        assert_eq!(seen, (1_000..1_010).rev().collect::<Vec<_>>());
        let mut first = Vec::new();
        scan_tail(&path, |_, at| {
            first.push(at);
            first.len() < 3
        })
        .unwrap();
        assert_eq!(first, vec![1_009, 1_008, 1_007]);
    }
}
