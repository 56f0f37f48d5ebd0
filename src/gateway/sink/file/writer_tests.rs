//! Tests of the file sink's writer thread: rotation, retention, permissions
//! and the dedup window.
use super::*;

fn writer(dir: &Path, rotate: u64) -> Writer {
    writer_keeping(dir, rotate, u64::from(u32::MAX), None)
}

fn writer_keeping(dir: &Path, rotate: u64, keep: u64, max_age: Option<Duration>) -> Writer {
    Writer::open(
        &dir.join("events.jsonl"),
        &FileConfig {
            rotate_bytes: rotate,
            keep,
            max_age,
            ..FileConfig::default()
        },
        Arc::new(Shared::default()),
    )
    .unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn group(batches: &[&str]) -> Vec<WaitingBatch> {
    batches
        .iter()
        .map(|b| WaitingBatch {
            lines: b.as_bytes().to_vec(),
            keys: Vec::new(),
            done: oneshot::channel().0,
        })
        .collect()
}

#[test]
fn a_partial_last_line_is_cut_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
    let w = writer(dir.path(), 1 << 20);
    assert_eq!(w.len, 8);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
    std::fs::write(&path, "no newline at all").unwrap();
    let w = writer(dir.path(), 1 << 20);
    assert_eq!(w.len, 0);
}

#[test]
fn rotation_renames_with_the_next_free_number_and_never_splits_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl.7"), "old\n").unwrap();
    let mut w = writer(dir.path(), 10);
    let results = w.commit(&group(&["aaaa\n", "bbbb\n", "cccccccc\n", "dd\n"]));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("events.jsonl.8"), "aaaa\nbbbb\n");
    assert_eq!(read("events.jsonl.9"), "cccccccc\n");
    assert_eq!(read("events.jsonl"), "dd\n");
    assert_eq!(read("events.jsonl.7"), "old\n");
}

#[test]
fn a_batch_larger_than_the_rotation_size_goes_whole_into_a_fresh_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 4);
    let results = w.commit(&group(&["0123456789\n"]));
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(w.len, 11);
}

#[test]
fn rotation_deletes_the_oldest_rotated_files_past_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer_keeping(dir.path(), 10, 2, None);
    for batch in [
        "aaaaaaaa\n",
        "bbbbbbbb\n",
        "cccccccc\n",
        "dddddddd\n",
        "eeee\n",
    ] {
        let results = w.commit(&group(&[batch]));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
    // Four rotations (.1 to .4): the two newest are kept.
    assert_eq!(
        names(dir.path()),
        ["events.jsonl", "events.jsonl.3", "events.jsonl.4"]
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("events.jsonl.4"), "dddddddd\n");
    assert_eq!(read("events.jsonl"), "eeee\n");
}

#[test]
fn retention_applies_at_start_by_count_and_by_age() {
    let dir = tempfile::tempdir().unwrap();
    for n in [1, 2, 3, 10] {
        std::fs::write(dir.path().join(format!("events.jsonl.{n}")), "old\n").unwrap();
    }
    std::fs::write(dir.path().join("events.jsonl.notanumber"), "x\n").unwrap();
    let w = writer_keeping(dir.path(), 1 << 20, 3, None);
    assert_eq!(w.next_suffix, 11);
    assert_eq!(
        names(dir.path()),
        [
            "events.jsonl",
            "events.jsonl.10",
            "events.jsonl.2",
            "events.jsonl.3",
            "events.jsonl.notanumber"
        ]
    );
    drop(w);
    // Everything rotated is older than a nanosecond by now.
    std::thread::sleep(Duration::from_millis(20));
    let _w = writer_keeping(dir.path(), 1 << 20, 3, Some(Duration::from_millis(1)));
    assert_eq!(
        names(dir.path()),
        ["events.jsonl", "events.jsonl.notanumber"]
    );
}

#[test]
fn the_events_file_is_owner_only_and_a_planted_link_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("new/dir");
    let path = nested.join("events.jsonl");
    let mut w = Writer::open(
        &path,
        &FileConfig {
            rotate_bytes: 10,
            keep: 5,
            max_age: None,
            ..FileConfig::default()
        },
        Arc::new(Shared::default()),
    )
    .unwrap();
    let results = w.commit(&group(&["aaaaaaaa\n", "bbbbbbbb\n"]));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&nested.join("events.jsonl.1")), 0o600);
    drop(w);

    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let e = Writer::open(
        &path,
        &FileConfig {
            rotate_bytes: 10,
            keep: 5,
            max_age: None,
            ..FileConfig::default()
        },
        Arc::new(Shared::default()),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// A batch of lines with dedup keys: one line per event id.
fn keyed(ids: &[&str]) -> WaitingBatch {
    let mut lines = Vec::new();
    let mut keys = Vec::new();
    for id in ids {
        let key = dedup::dedup_key("instance", id);
        lines.extend_from_slice(format!("{{\"id\":\"{id}\"").as_bytes());
        dedup::write_suffix(&key, unix_ms(), &mut lines);
        keys.push((dedup::parse_key(&key).unwrap(), lines.len()));
    }
    WaitingBatch {
        lines,
        keys,
        done: oneshot::channel().0,
    }
}

fn ids_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_repeat_within_the_window_is_answered_but_not_written_again_even_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut w = writer(dir.path(), u64::from(u32::MAX));
    // Repeats inside one batch, across batches of one group, across groups.
    let results = w.commit(&[keyed(&["a", "b", "a"]), keyed(&["b", "c"])]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let results = w.commit(&[keyed(&["c", "d"])]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(ids_in(&path), ["a", "b", "c", "d"]);
    drop(w);
    // A restarted gateway rebuilds the window from the file.
    let mut w = writer(dir.path(), u64::from(u32::MAX));
    assert_eq!(w.window.len(), 4);
    let results = w.commit(&[keyed(&["a", "e", "d"])]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(ids_in(&path), ["a", "b", "c", "d", "e"]);
}

#[test]
fn the_window_is_rebuilt_across_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    // Rotates before nearly every batch.
    let mut w = writer(dir.path(), 100);
    for id in ["a", "b", "c", "d"] {
        let results = w.commit(&[keyed(&[id])]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
    drop(w);
    let mut w = writer(dir.path(), 100);
    assert_eq!(w.window.len(), 4);
    let results = w.commit(&[keyed(&["a", "b", "z"])]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(ids_in(&path), ["z"]);
}

#[test]
fn lines_older_than_the_window_are_not_remembered_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut text = Vec::new();
    let old = dedup::dedup_key("instance", "old");
    text.extend_from_slice(b"{\"id\":\"old\"");
    dedup::write_suffix(&old, unix_ms() - 10 * 60 * 1000, &mut text);
    std::fs::write(&path, &text).unwrap();
    let mut w = writer(dir.path(), u64::from(u32::MAX));
    assert_eq!(w.window.len(), 0);
    let results = w.commit(&[keyed(&["old"])]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(ids_in(&path), ["old", "old"]);
}
