//! Unit tests of the follower on temp files, driven through `start`,
//! `resume`, `scan` and `pass` directly (no binary, no waiting): what SPEC §6
//! says a follower of files survives, one behaviour per test.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::source::FieldError;

/// Each record is `{"timestamp": BASE + id, "n": 1}`; lines over 200 bytes
/// are too long.
const CONFIG: &str = "[input]\nmax_line_bytes = 200\n[[monitor]]\nmetric = \"n\"\ndetector = \"threshold\"\nparams = { window = 1, above = -1.0 }\n";
const BASE: i64 = 1_700_000_000;

fn line(id: u64) -> String {
    format!("{{\"timestamp\":{},\"n\":1}}\n", BASE + id as i64)
}

fn lines(ids: std::ops::Range<u64>) -> String {
    ids.map(line).collect()
}

/// What a pass handed to its sink, reduced to what the tests check.
#[derive(Debug, PartialEq)]
enum Got {
    /// A record: its id and its 1-based line in its file.
    Record {
        id: u64,
        line: u64,
    },
    /// A line longer than `max_line_bytes`.
    TooLong {
        line: u64,
        len: u64,
    },
    Bad {
        line: u64,
    },
}

/// A temp folder with the files being followed.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        Scene {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: impl AsRef<[u8]>) {
        std::fs::write(self.path(name), text).expect("write");
    }

    fn append(&self, name: &str, text: impl AsRef<[u8]>) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .expect("open for append");
        f.write_all(text.as_ref()).expect("append");
    }

    fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.path(from), self.path(to)).expect("rename");
    }

    /// A follower of `patterns` (names in the scene's folder).
    fn follower(&self, patterns: &[&str]) -> Follower {
        self.follower_with(patterns, 64)
    }

    fn follower_with(&self, patterns: &[&str], max_open: usize) -> Follower {
        let config = Config::parse(CONFIG, "mmon.toml").expect("config");
        let patterns = patterns
            .iter()
            .map(|p| self.path(p).to_string_lossy().into_owned())
            .collect();
        Follower::new(patterns, None, Arc::new(config.schema()), max_open)
    }
}

/// One pass: every item it handed over.
fn pass(f: &mut Follower) -> Vec<Got> {
    let mut got = Vec::new();
    let (read, flow) = f
        .pass(&mut |item| {
            got.push(match item {
                Item::Record(r) => Got::Record {
                    id: (r.time_ns / 1_000_000_000 - BASE) as u64,
                    line: r.pos.line,
                },
                Item::Bad(b) => match b.error {
                    FieldError::TooLong { len, .. } => Got::TooLong {
                        line: b.pos.line,
                        len,
                    },
                    _ => Got::Bad { line: b.pos.line },
                },
            });
            Ok(Flow::Continue)
        })
        .expect("pass");
    assert!(matches!(flow, Flow::Continue));
    // A blank line is read but hands nothing over; an item is always read.
    assert!(read || got.is_empty(), "pass says whether it read anything");
    got
}

/// A scan, then a pass: what the watch loop does after each wake-up.
fn scan_and_pass(f: &mut Follower) -> Vec<Got> {
    f.scan().expect("scan");
    pass(f)
}

/// The record ids among `got`, in the order they came.
fn ids(got: &[Got]) -> Vec<u64> {
    got.iter()
        .filter_map(|g| match g {
            Got::Record { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

/// The saved state of the followed file at `path`.
fn state_of<'a>(states: &'a [FileState], path: &Path) -> &'a FileState {
    let path = path.to_string_lossy();
    states
        .iter()
        .find(|s| s.path == path)
        .unwrap_or_else(|| panic!("no state for {path} in {states:?}"))
}

#[test]
fn globs_match_names_that_are_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"a-\xff.jsonl");
    std::fs::write(dir.path().join(odd), "").unwrap();
    std::fs::write(dir.path().join("b.jsonl"), "").unwrap();
    std::fs::write(dir.path().join("c.txt"), "").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/d.jsonl"), "").unwrap();
    let root = dir.path().to_string_lossy();
    let got = expand(&format!("{root}/*.jsonl"));
    assert_eq!(got, vec![dir.path().join(odd), dir.path().join("b.jsonl")]);
    let nested = expand(&format!("{root}/s*/*.jsonl"));
    assert_eq!(nested, vec![dir.path().join("sub/d.jsonl")]);
}

#[test]
fn the_descriptor_bound_leaves_room_below_the_limit() {
    assert_eq!(max_open_for(1024), 960);
    assert_eq!(max_open_for(256), 192);
    assert_eq!(max_open_for(64), 32);
    assert_eq!(max_open_for(2), 4);
}

#[test]
fn rotation_generations_and_siblings_are_told_from_the_name() {
    assert_eq!(generation("app.jsonl"), 0);
    assert_eq!(generation("app.jsonl.1"), 1);
    assert_eq!(generation("app.jsonl.2.gz"), 2);
    assert_eq!(generation("app.jsonl-20240301"), 0);
    assert!(is_sibling("app.jsonl.1", "app.jsonl"));
    assert!(is_sibling("app.jsonl.1.gz", "app.jsonl"));
    assert!(!is_sibling("app.jsonl", "app.jsonl"));
    assert!(!is_sibling("app.jsonl.", "app.jsonl"));
    assert!(!is_sibling("app.jsonlx", "app.jsonl"));
}

#[test]
fn start_without_from_start_reads_only_what_is_appended() {
    let s = Scene::new();
    s.write("app.jsonl", lines(0..3));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(false).unwrap();
    assert_eq!(f.matched, 1);
    assert!(pass(&mut f).is_empty());
    s.append("app.jsonl", lines(3..5));
    assert_eq!(
        scan_and_pass(&mut f),
        vec![
            Got::Record { id: 3, line: 4 },
            Got::Record { id: 4, line: 5 }
        ]
    );
}

#[test]
fn start_from_the_end_stops_before_an_unterminated_last_line() {
    // The line being written when mmon starts is read once it is whole.
    let s = Scene::new();
    let full = line(3);
    let (a, b) = full.split_at(10);
    s.write("app.jsonl", format!("{}{a}", lines(0..3)));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(false).unwrap();
    assert!(pass(&mut f).is_empty());
    s.append("app.jsonl", b);
    assert_eq!(scan_and_pass(&mut f), vec![Got::Record { id: 3, line: 4 }]);
}

#[test]
fn rename_and_create_drains_the_old_file_before_the_new_one() {
    let s = Scene::new();
    s.write("app.jsonl", lines(0..3));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    assert_eq!(ids(&pass(&mut f)), vec![0, 1, 2]);
    // The writer keeps its descriptor across the rename, as loggers do.
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(s.path("app.jsonl"))
        .unwrap();
    writer.write_all(lines(3..5).as_bytes()).unwrap();
    s.rename("app.jsonl", "app.jsonl.1");
    writer.write_all(line(5).as_bytes()).unwrap();
    s.write("app.jsonl", lines(6..8));
    let got = scan_and_pass(&mut f);
    assert_eq!(
        got,
        vec![
            Got::Record { id: 3, line: 4 },
            Got::Record { id: 4, line: 5 },
            Got::Record { id: 5, line: 6 },
            Got::Record { id: 6, line: 1 },
            Got::Record { id: 7, line: 2 },
        ],
        "the old file to its end first, then the new one from its start"
    );
    assert!(scan_and_pass(&mut f).is_empty());
    // The drained generation is parked; a late write to it is still read.
    writer.write_all(line(8).as_bytes()).unwrap();
    assert_eq!(scan_and_pass(&mut f), vec![Got::Record { id: 8, line: 7 }]);
    assert_eq!(f.truncations, 0);
    assert_eq!(f.lost_bytes, 0);
}

#[test]
fn truncated_in_place_restarts_at_zero_and_counts_a_truncation() {
    let s = Scene::new();
    s.write("app.jsonl", lines(0..5));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    assert_eq!(ids(&pass(&mut f)), vec![0, 1, 2, 3, 4]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("app.jsonl"))
        .unwrap()
        .set_len(0)
        .unwrap();
    s.append("app.jsonl", lines(5..7));
    assert_eq!(
        scan_and_pass(&mut f),
        vec![
            Got::Record { id: 5, line: 1 },
            Got::Record { id: 6, line: 2 }
        ]
    );
    assert_eq!(f.truncations, 1);
    let states = f.states();
    assert_eq!(
        state_of(&states, &s.path("app.jsonl")).offset,
        2 * line(0).len() as u64
    );
    assert!(scan_and_pass(&mut f).is_empty());
    assert_eq!(f.truncations, 1, "counted once");
}

#[test]
fn copy_truncate_reads_the_unread_rest_from_the_copy_and_nothing_twice() {
    let s = Scene::new();
    s.write("app.jsonl", lines(0..5));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    assert_eq!(ids(&pass(&mut f)), vec![0, 1, 2, 3, 4]);
    // Written after the last pass: only the copy still holds it.
    s.append("app.jsonl", lines(5..7));
    std::fs::copy(s.path("app.jsonl"), s.path("app.jsonl.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("app.jsonl"))
        .unwrap()
        .set_len(0)
        .unwrap();
    s.append("app.jsonl", line(7));
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(scan_and_pass(&mut f));
    }
    let mut seen = ids(&got);
    seen.sort_unstable();
    assert_eq!(seen, vec![5, 6, 7], "{got:?}");
    assert_eq!(f.truncations, 1);
    assert_eq!(f.lost_bytes, 0);
}

#[test]
fn a_partial_last_line_is_held_until_its_newline_arrives() {
    let s = Scene::new();
    let full = line(1);
    let (a, b) = full.split_at(20);
    s.write("app.jsonl", format!("{}{a}", line(0)));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    assert_eq!(pass(&mut f), vec![Got::Record { id: 0, line: 1 }]);
    let states = f.states();
    let st = state_of(&states, &s.path("app.jsonl"));
    assert_eq!(
        st.offset,
        line(0).len() as u64,
        "just past the last whole line"
    );
    assert_eq!(st.line, 2);
    assert!(pass(&mut f).is_empty(), "no newline yet");
    s.append("app.jsonl", b);
    assert_eq!(scan_and_pass(&mut f), vec![Got::Record { id: 1, line: 2 }]);
    let states = f.states();
    assert_eq!(
        state_of(&states, &s.path("app.jsonl")).offset,
        2 * full.len() as u64
    );
}

#[test]
fn a_line_longer_than_max_line_bytes_is_rejected_and_the_next_line_is_read() {
    let s = Scene::new();
    s.write(
        "app.jsonl",
        format!("{}{}\n{}", line(0), "x".repeat(1000), line(1)),
    );
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    assert_eq!(
        pass(&mut f),
        vec![
            Got::Record { id: 0, line: 1 },
            Got::TooLong { line: 2, len: 1000 },
            Got::Record { id: 1, line: 3 },
        ]
    );
    let stats = f.stats();
    assert_eq!((stats[0].records, stats[0].rejected), (2, 1));
}

#[test]
fn a_long_line_cut_by_the_end_of_the_file_is_rejected_once_it_ends() {
    // The file ends inside the overlong line: skipping goes on at the next
    // pass, and the line after it is read whole.
    let s = Scene::new();
    s.write("app.jsonl", format!("{}{}", line(0), "x".repeat(600)));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    assert_eq!(pass(&mut f), vec![Got::Record { id: 0, line: 1 }]);
    s.append("app.jsonl", "x".repeat(600));
    assert!(scan_and_pass(&mut f).is_empty());
    s.append("app.jsonl", format!("\n{}", line(1)));
    assert_eq!(
        scan_and_pass(&mut f),
        vec![
            Got::TooLong { line: 2, len: 1200 },
            Got::Record { id: 1, line: 3 },
        ]
    );
    let states = f.states();
    assert_eq!(
        state_of(&states, &s.path("app.jsonl")).offset,
        (2 * line(0).len() + 1201) as u64
    );
}

#[test]
fn resume_from_saved_states_continues_at_the_saved_offset() {
    let s = Scene::new();
    s.write("a.jsonl", lines(0..5));
    s.write("b.jsonl", lines(100..102));
    let mut first = s.follower(&["*.jsonl"]);
    first.start(true).unwrap();
    let mut seen = ids(&pass(&mut first));
    let saved = first.states();
    drop(first);
    s.append("a.jsonl", lines(5..8));
    s.append("b.jsonl", line(102));
    let mut second = s.follower(&["*.jsonl"]);
    second.resume(&saved).unwrap();
    let got = pass(&mut second);
    assert!(got.contains(&Got::Record { id: 5, line: 6 }), "{got:?}");
    assert!(got.contains(&Got::Record { id: 102, line: 3 }), "{got:?}");
    seen.extend(ids(&got));
    seen.sort_unstable();
    let want: Vec<u64> = (0..8).chain(100..103).collect();
    assert_eq!(seen, want, "no line twice, none skipped");
    assert!(scan_and_pass(&mut second).is_empty());
    assert_eq!(second.truncations, 0);
}

#[test]
fn resume_finds_a_file_rotated_while_stopped_and_reads_its_rest_first() {
    let s = Scene::new();
    s.write("app.jsonl", lines(0..5));
    let mut first = s.follower(&["app.jsonl"]);
    first.start(true).unwrap();
    assert_eq!(ids(&pass(&mut first)), (0..5).collect::<Vec<_>>());
    let saved = first.states();
    drop(first);
    s.append("app.jsonl", lines(5..7));
    s.rename("app.jsonl", "app.jsonl.1");
    s.write("app.jsonl", lines(7..9));
    let mut second = s.follower(&["app.jsonl"]);
    second.resume(&saved).unwrap();
    assert_eq!(ids(&pass(&mut second)), vec![5, 6, 7, 8]);
}

#[test]
fn a_file_rewritten_while_stopped_is_read_from_its_start() {
    // Same length and head (the first bytes), other bytes before the offset:
    // the guard sees it.
    let s = Scene::new();
    s.write("app.jsonl", lines(0..200));
    let mut first = s.follower(&["app.jsonl"]);
    first.start(true).unwrap();
    assert_eq!(pass(&mut first).len(), 200);
    let saved = first.states();
    drop(first);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("app.jsonl"))
        .unwrap();
    f.set_len(0).unwrap();
    drop(f);
    s.append("app.jsonl", lines(0..150));
    s.append("app.jsonl", lines(1000..1100));
    let mut second = s.follower(&["app.jsonl"]);
    second.resume(&saved).unwrap();
    let want: Vec<u64> = (0..150).chain(1000..1100).collect();
    assert_eq!(ids(&pass(&mut second)), want);
    assert_eq!(second.truncations, 1);
}

#[test]
fn a_file_that_appears_later_matching_a_glob_is_read_from_its_start() {
    let s = Scene::new();
    s.write("a.jsonl", lines(0..2));
    let mut f = s.follower(&["*.jsonl"]);
    f.start(false).unwrap();
    assert!(pass(&mut f).is_empty());
    s.write("b.jsonl", lines(10..12));
    s.write("other.txt", lines(50..52));
    s.append("a.jsonl", line(2));
    let mut got = ids(&scan_and_pass(&mut f));
    got.sort_unstable();
    assert_eq!(got, vec![2, 10, 11]);
    assert_eq!(f.open_count(), 2);
}

#[test]
fn a_file_unknown_to_the_checkpoint_is_read_from_its_start() {
    let s = Scene::new();
    s.write("a.jsonl", lines(0..2));
    let mut first = s.follower(&["*.jsonl"]);
    first.start(true).unwrap();
    pass(&mut first);
    let saved = first.states();
    drop(first);
    s.write("b.jsonl", lines(10..12));
    let mut second = s.follower(&["*.jsonl"]);
    second.resume(&saved).unwrap();
    assert_eq!(ids(&pass(&mut second)), vec![10, 11]);
}

#[test]
fn a_file_deleted_while_open_is_drained_then_closed() {
    let s = Scene::new();
    s.write("app.jsonl", "");
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    s.append("app.jsonl", lines(0..3));
    std::fs::remove_file(s.path("app.jsonl")).unwrap();
    assert_eq!(ids(&scan_and_pass(&mut f)), vec![0, 1, 2]);
    assert_eq!(f.open_count(), 0);
    assert_eq!(f.descriptors(), 0);
    assert_eq!(f.lost_bytes, 0);
    let stats = f.stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].records, 3);
}

#[test]
fn a_deleted_generation_s_unread_bytes_are_counted_in_lost_bytes() {
    // Gone while stopped, ending inside a line: what the checkpoint knew
    // was there but unread is lost, and said so.
    let s = Scene::new();
    let partial = "{\"timestamp\":1700000150,";
    s.write("app.jsonl", format!("{}{partial}", lines(0..5)));
    let mut first = s.follower(&["app.jsonl"]);
    first.start(true).unwrap();
    assert_eq!(pass(&mut first).len(), 5);
    let saved = first.states();
    drop(first);
    std::fs::remove_file(s.path("app.jsonl")).unwrap();
    s.write("app.jsonl", lines(10..12));
    let mut second = s.follower(&["app.jsonl"]);
    second.resume(&saved).unwrap();
    assert_eq!(second.lost_bytes, partial.len() as u64);
    assert_eq!(ids(&pass(&mut second)), vec![10, 11]);
    let lost: u64 = second.stats().iter().map(|st| st.lost_bytes).sum();
    assert_eq!(lost, partial.len() as u64);
}

#[test]
fn a_parked_generation_deleted_before_its_rest_was_read_counts_lost_bytes() {
    // While running: a drained rotated generation is parked (closed); it
    // grows, and is deleted before the pass that would reopen it.
    let s = Scene::new();
    s.write("app.jsonl", lines(0..2));
    let mut f = s.follower(&["app.jsonl"]);
    f.start(true).unwrap();
    assert_eq!(ids(&pass(&mut f)), vec![0, 1]);
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(s.path("app.jsonl"))
        .unwrap();
    s.rename("app.jsonl", "app.jsonl.1");
    s.write("app.jsonl", lines(10..11));
    assert_eq!(ids(&scan_and_pass(&mut f)), vec![10]);
    assert_eq!(f.descriptors(), 1, "the drained generation is closed");
    writer.write_all(line(2).as_bytes()).unwrap();
    drop(writer);
    f.scan().unwrap();
    std::fs::remove_file(s.path("app.jsonl.1")).unwrap();
    assert!(pass(&mut f).is_empty());
    assert_eq!(f.lost_bytes, line(2).len() as u64);
    let lost: u64 = f.stats().iter().map(|st| st.lost_bytes).sum();
    assert_eq!(lost, line(2).len() as u64);
}

#[test]
fn the_descriptor_bound_parks_files_and_reopens_them_by_identity() {
    let s = Scene::new();
    for k in 0..5u64 {
        s.write(&format!("{k}.jsonl"), line(10 * k));
    }
    let mut f = s.follower_with(&["*.jsonl"], 2);
    f.start(true).unwrap();
    assert!(f.descriptors() <= 2);
    assert_eq!(ids(&pass(&mut f)), vec![0, 10, 20, 30, 40]);
    for k in 0..5u64 {
        s.append(&format!("{k}.jsonl"), line(10 * k + 1));
    }
    let got = scan_and_pass(&mut f);
    assert!(f.descriptors() <= 2, "{} descriptors", f.descriptors());
    assert_eq!(ids(&got), vec![1, 11, 21, 31, 41]);
    assert_eq!(f.open_count(), 5);
    assert_eq!(f.lost_bytes, 0);
}

#[test]
fn resume_continues_inside_a_generation_compressed_to_gz() {
    let s = Scene::new();
    s.write("app.jsonl", lines(0..5));
    let mut first = s.follower(&["app.jsonl"]);
    first.start(true).unwrap();
    assert_eq!(pass(&mut first).len(), 5);
    let saved = first.states();
    drop(first);
    s.append("app.jsonl", lines(5..7));
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(s.path("app.jsonl.1.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&std::fs::read(s.path("app.jsonl")).unwrap())
        .unwrap();
    gz.finish().unwrap();
    std::fs::remove_file(s.path("app.jsonl")).unwrap();
    s.write("app.jsonl", lines(7..9));
    let mut second = s.follower(&["app.jsonl"]);
    second.resume(&saved).unwrap();
    assert_eq!(
        pass(&mut second),
        vec![
            Got::Record { id: 5, line: 6 },
            Got::Record { id: 6, line: 7 },
            Got::Record { id: 7, line: 1 },
            Got::Record { id: 8, line: 2 },
        ]
    );
    assert_eq!(second.lost_bytes, 0);
}
