//! `mmon watch`: the acceptance scenarios of `acceptance/watch.md`.
//!
//! Every record is `{"timestamp": ID, "n": 1}` and the config makes each one
//! open its own window (`threshold` with `above = -1`, `merge_gap = 0`), so
//! the `opened` events on stdout say exactly which records reached the
//! pipeline, and how often. Each scenario runs twice: with file-system events
//! and with `--poll`. Tests wait for what they expect with a bounded timeout;
//! none sleeps for a fixed time to pass.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Mmon, Outcome, Running};

const CONFIG: &str = "[[monitor]]\nmetric = \"n\"\ndetector = \"threshold\"\nparams = { window = 1, above = -1.0 }\n[report]\nmerge_gap = 0\n";
const BASE: i64 = 1_700_000_000;
const TIMEOUT: Duration = Duration::from_secs(15);

fn line(id: u64) -> String {
    format!("{{\"timestamp\":{},\"n\":1}}\n", BASE + id as i64)
}

fn lines(ids: std::ops::Range<u64>) -> String {
    ids.map(line).collect()
}

fn id_of(event: &Value) -> u64 {
    let ts = event["detected"]["timestamp"].as_str().expect("timestamp");
    let ns = mmon::timestamp::parse_str(ts).expect("parse");
    (ns / 1_000_000_000 - BASE) as u64
}

/// How many times each record id was opened, from `--format jsonl` lines.
fn counts(stdout: &str) -> BTreeMap<u64, u32> {
    let mut seen = BTreeMap::new();
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        if v["event"] == "opened" {
            *seen.entry(id_of(&v)).or_insert(0) += 1;
        }
    }
    seen
}

fn exactly_once(seen: &BTreeMap<u64, u32>, ids: impl IntoIterator<Item = u64>) {
    let want: BTreeMap<u64, u32> = ids.into_iter().map(|i| (i, 1)).collect();
    if *seen != want {
        let dup: Vec<_> = seen
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(i, _)| i)
            .take(10)
            .collect();
        let missing: Vec<_> = want
            .keys()
            .filter(|i| !seen.contains_key(i))
            .take(10)
            .collect();
        let extra: Vec<_> = seen
            .keys()
            .filter(|i| !want.contains_key(i))
            .take(10)
            .collect();
        panic!("not exactly once: duplicated {dup:?}, missing {missing:?}, unexpected {extra:?}");
    }
}

/// A temp directory with the config, for runs of `mmon watch`.
struct Scene {
    dir: tempfile::TempDir,
    poll: bool,
}

impl Scene {
    fn new(poll: bool) -> Scene {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("mmon.toml"), CONFIG).expect("config");
        Scene { dir, poll }
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

    /// `mmon watch ARGS` in the scene (`--format jsonl` unless given, and
    /// `--poll` in polling mode).
    fn watch(&self, args: &[&str]) -> Mmon {
        let mut mmon = Mmon::in_dir(self.dir.path(), &["watch"]).timeout(TIMEOUT);
        if !args.contains(&"--format") {
            mmon = mmon.args(&["--format", "jsonl"]);
        }
        mmon = mmon.args(args);
        if self.poll {
            mmon = mmon.args(&["--poll"]);
        }
        mmon
    }

    /// Runs to the end (`--once` runs): (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        parts(self.watch(args).run())
    }

    /// Runs `mmon watch ARGS` by `program` (its name and first arguments),
    /// such as `sh -c 'ulimit -n 256 && exec "$0" "$@"'`, to the end.
    fn run_under(&self, program: &[&str], args: &[&str]) -> (i32, String, String) {
        parts(self.watch(args).under(program).run())
    }

    fn once(&self, args: &[&str]) -> String {
        let mut all = vec!["--once", "--state", "state.json"];
        all.extend_from_slice(args);
        self.watch(&all).expect_code(0).run().stdout
    }

    /// Starts a running watch and waits until it follows its files.
    fn spawn(&self, args: &[&str]) -> Running {
        self.live(self.watch(args))
    }

    fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut mmon = self.watch(args);
        for (k, v) in env {
            mmon = mmon.env(k, v);
        }
        self.live(mmon)
    }

    /// Starts `mmon` (a running watch, from [`Scene::watch`]) and waits
    /// until it follows its files.
    fn live(&self, mmon: Mmon) -> Running {
        let live = mmon.args(&["-v"]).spawn();
        live.wait_stderr("watching");
        live
    }
}

fn parts(out: Outcome) -> (i32, String, String) {
    (out.code, out.stdout, out.stderr)
}

/// What the scenarios wait for and how they end a running watch.
trait Live {
    /// Waits until `n` distinct records were opened; returns how long it took.
    fn wait_records(&self, n: usize) -> Duration;
    /// SIGTERM, then the exit code, stdout and stderr.
    fn stop(self) -> (i32, String, String);
}

impl Live for Running {
    fn wait_records(&self, n: usize) -> Duration {
        let start = Instant::now();
        self.wait_for(&format!("{n} records"), |l| counts(&l.stdout()).len() >= n);
        start.elapsed()
    }

    fn stop(self) -> (i32, String, String) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        parts(self.wait())
    }
}

/// One test per mode for each scenario.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn events() {
                super::$name(false)
            }
            #[test]
            fn poll() {
                super::$name(true)
            }
        }
    };
}

mod faults;

// 1. Rename and create while writing.
fn rename_and_create_while_writing(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let live = s.spawn(&["app.jsonl"]);
    let mut old = std::fs::OpenOptions::new()
        .append(true)
        .open(s.path("app.jsonl"))
        .unwrap();
    for i in 0..6000 {
        old.write_all(line(i).as_bytes()).unwrap();
    }
    std::fs::rename(s.path("app.jsonl"), s.path("app.jsonl.1")).unwrap();
    for i in 6000..8000 {
        old.write_all(line(i).as_bytes()).unwrap();
    }
    s.append("app.jsonl", lines(8000..10000));
    live.wait_records(10000);
    let (code, stdout, stderr) = live.stop();
    assert_eq!(code, 143, "{stderr}");
    exactly_once(&counts(&stdout), 0..10000);
}
both!(rename_and_create_while_writing);

// 2. Rotation while stopped (cron), oldest generation first.
fn rotation_while_stopped(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..10));
    assert!(counts(&s.once(&["--from-start", "app.jsonl"])).len() == 10);
    s.append("app.jsonl", lines(10..20));
    std::fs::rename(s.path("app.jsonl"), s.path("app.jsonl.1")).unwrap();
    s.write("app.jsonl", lines(20..30));
    std::fs::rename(s.path("app.jsonl.1"), s.path("app.jsonl.2")).unwrap();
    std::fs::rename(s.path("app.jsonl"), s.path("app.jsonl.1")).unwrap();
    s.append("app.jsonl.1", lines(30..40));
    s.write("app.jsonl", lines(40..50));
    let out = s.once(&["app.jsonl"]);
    exactly_once(&counts(&out), 10..50);
    let order: Vec<u64> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "opened")
        .map(|v| id_of(&v))
        .collect();
    assert_eq!(
        order,
        (10..50).collect::<Vec<_>>(),
        "oldest generation first"
    );
    assert!(counts(&s.once(&["app.jsonl"])).is_empty());
}
both!(rotation_while_stopped);

// 3. Rotation to .gz while stopped: resumed inside the decompressed stream.
fn rotation_to_gz_while_stopped(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..100));
    s.once(&["--from-start", "app.jsonl"]);
    s.append("app.jsonl", lines(100..150));
    let text = std::fs::read(s.path("app.jsonl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(s.path("app.jsonl.1.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&text).unwrap();
    gz.finish().unwrap();
    std::fs::remove_file(s.path("app.jsonl")).unwrap();
    s.write("app.jsonl", lines(150..160));
    exactly_once(&counts(&s.once(&["app.jsonl"])), 100..160);
}
both!(rotation_to_gz_while_stopped);

// 2b. Rotated away under a glob while stopped, no new file yet.
fn rotated_under_a_glob_while_stopped(poll: bool) {
    let s = Scene::new(poll);
    std::fs::create_dir(s.path("logs")).unwrap();
    s.write("logs/a.jsonl", lines(0..100));
    s.once(&["--from-start", "logs/*.jsonl"]);
    s.append("logs/a.jsonl", lines(100..150));
    std::fs::rename(s.path("logs/a.jsonl"), s.path("logs/a.jsonl.1")).unwrap();
    exactly_once(&counts(&s.once(&["logs/*.jsonl"])), 100..150);
}
both!(rotated_under_a_glob_while_stopped);

// 4. copytruncate: nothing twice.
fn copytruncate(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let live = s.spawn(&["app.jsonl*", "--state", "state.json"]);
    s.append("app.jsonl", lines(0..100));
    live.wait_records(100);
    s.append("app.jsonl", lines(100..120));
    std::fs::copy(s.path("app.jsonl"), s.path("app.jsonl.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("app.jsonl"))
        .unwrap()
        .set_len(0)
        .unwrap();
    s.append("app.jsonl", lines(120..130));
    live.wait_records(130);
    let (_, stdout, stderr) = live.stop();
    exactly_once(&counts(&stdout), 0..130);
    // The copy and the live file resume without repeating anything.
    s.append("app.jsonl", lines(130..135));
    exactly_once(&counts(&s.once(&["app.jsonl*"])), 130..135);
    assert!(!stderr.contains("never read"), "{stderr}");
}
both!(copytruncate);

// 5. Truncate in place while running.
fn truncate_while_running(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..100));
    let live = s.spawn(&["app.jsonl", "--from-start"]);
    live.wait_records(100);
    std::fs::write(s.path("app.jsonl"), "").unwrap();
    s.append("app.jsonl", lines(100..103));
    let took = live.wait_records(103);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (_, stdout, stderr) = live.stop();
    exactly_once(&counts(&stdout), 0..103);
    assert!(stderr.contains("truncated"), "{stderr}");
}
both!(truncate_while_running);

// 6. Truncated and regrown past the offset while stopped: the guard sees it.
fn truncate_and_regrow_while_stopped(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..200));
    s.once(&["--from-start", "app.jsonl"]);
    // Same first 4 KiB (the identity), different bytes before the offset.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("app.jsonl"))
        .unwrap();
    f.set_len(0).unwrap();
    drop(f);
    s.append("app.jsonl", lines(0..150));
    s.append("app.jsonl", lines(1000..1100));
    let (code, stdout, stderr) = s.run(&["--once", "--state", "state.json", "app.jsonl"]);
    assert_eq!(code, 0, "{stderr}");
    exactly_once(&counts(&stdout), (0..150).chain(1000..1100));
    assert!(stderr.contains("rewritten while stopped"), "{stderr}");
}
both!(truncate_and_regrow_while_stopped);

// 7. Inode reuse: a new file is never resumed at an old file's offset.
fn inode_reuse(poll: bool) {
    let s = Scene::new(poll);
    s.write("a.jsonl", lines(0..50));
    s.once(&["--from-start", "*.jsonl"]);
    std::fs::remove_file(s.path("a.jsonl")).unwrap();
    s.write("b.jsonl", lines(100..160));
    exactly_once(&counts(&s.once(&["*.jsonl"])), 100..160);
}
both!(inode_reuse);

// 8. 50 CSV files with the same header, tracked independently.
fn identical_csv_headers(poll: bool) {
    let s = Scene::new(poll);
    let live = s.spawn(&["metrics-*.csv"]);
    for k in 0..50u64 {
        let rows: String = (0..4)
            .map(|i| format!("{},1\n", BASE + (k * 4 + i) as i64))
            .collect();
        s.write(&format!("metrics-{k}.csv"), format!("timestamp,n\n{rows}"));
    }
    live.wait_records(200);
    let (_, stdout, _) = live.stop();
    exactly_once(&counts(&stdout), 0..200);
}
both!(identical_csv_headers);

// 9. A tiny file, read at once and resumed after it grows.
fn tiny_file(poll: bool) {
    let s = Scene::new(poll);
    s.write("t.jsonl", line(0));
    exactly_once(&counts(&s.once(&["--from-start", "t.jsonl"])), [0]);
    s.append("t.jsonl", line(1));
    exactly_once(&counts(&s.once(&["t.jsonl"])), [1]);
}
both!(tiny_file);

// 10. A partial last line while running.
fn partial_line_while_running(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let live = s.spawn(&["app.jsonl", "--state", "state.json"]);
    let full = line(1);
    let (a, b) = full.split_at(20);
    s.append("app.jsonl", format!("{}{a}", line(0)));
    live.wait_records(1);
    s.append("app.jsonl", b);
    live.wait_records(2);
    let (_, stdout, _) = live.stop();
    exactly_once(&counts(&stdout), 0..2);
    let state = std::fs::read_to_string(s.path("state.json")).unwrap();
    assert!(
        state.contains(&format!("\"offset\":{}", 2 * full.len())),
        "{state}"
    );
}
both!(partial_line_while_running);

// 11. A partial last line across cron runs.
fn partial_line_across_runs(poll: bool) {
    let s = Scene::new(poll);
    let full = line(1);
    let (a, b) = full.split_at(20);
    s.write("app.jsonl", format!("{}{a}", line(0)));
    exactly_once(&counts(&s.once(&["--from-start", "app.jsonl"])), [0]);
    s.append("app.jsonl", b);
    exactly_once(&counts(&s.once(&["app.jsonl"])), [1]);
}
both!(partial_line_across_runs);

// 13. A 50 MiB line: rejected with bounded memory, later lines still flow.
fn huge_line(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let live = s.spawn(&["app.jsonl", "--rejects", "rejects.jsonl"]);
    s.append("app.jsonl", line(0));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(s.path("app.jsonl"))
        .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..50 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n").unwrap();
    s.append("app.jsonl", line(1));
    live.wait_records(2);
    let status = std::fs::read_to_string(format!("/proc/{}/status", live.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        peak_kib < 40 * 1024,
        "peak memory {peak_kib} KiB for a 50 MiB line"
    );
    let (_, stdout, stderr) = live.stop();
    exactly_once(&counts(&stdout), 0..2);
    let rejects = std::fs::read_to_string(s.path("rejects.jsonl")).unwrap();
    let r: Value = serde_json::from_str(rejects.trim()).unwrap();
    assert_eq!(
        (r["line"].as_u64(), r["offset"].as_u64()),
        (Some(2), Some(line(0).len() as u64))
    );
    assert!(r["raw"].as_str().unwrap().starts_with("xxxx"));
    assert!(stderr.contains("longer than max_line_bytes"), "{stderr}");
}
both!(huge_line);

// 14. CRLF, a BOM and a line of invalid UTF-8.
fn crlf_bom_invalid_utf8(poll: bool) {
    let s = Scene::new(poll);
    let mut text = b"\xEF\xBB\xBF".to_vec();
    text.extend(line(0).replace('\n', "\r\n").as_bytes());
    text.extend(b"{\"timestamp\":1,\"n\":\xff}\n");
    text.extend(line(1).as_bytes());
    s.write("app.jsonl", text);
    let (code, stdout, stderr) = s.run(&[
        "--once",
        "--state",
        "state.json",
        "--from-start",
        "app.jsonl",
    ]);
    assert_eq!(code, 0);
    exactly_once(&counts(&stdout), 0..2);
    assert!(stderr.contains("app.jsonl:2: invalid UTF-8"), "{stderr}");
}
both!(crlf_bom_invalid_utf8);

// 15. A new file matching the glob is read from its start; others ignored.
fn new_file_matching_the_glob(poll: bool) {
    let s = Scene::new(poll);
    s.write("a.jsonl", lines(0..5));
    let live = s.spawn(&["*.jsonl"]);
    s.write("other.txt", lines(500..505));
    s.write("b.jsonl", lines(10..15));
    let took = live.wait_records(5);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (_, stdout, _) = live.stop();
    exactly_once(&counts(&stdout), 10..15);
}
both!(new_file_matching_the_glob);

// 16. Deleted while open with unread data: drained, then closed.
fn deleted_while_open(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let live = s.spawn(&["app.jsonl"]);
    s.append("app.jsonl", lines(0..1000));
    std::fs::remove_file(s.path("app.jsonl")).unwrap();
    live.wait_records(1000);
    live.wait_stderr("is gone; closed");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", live.pid())).unwrap();
    for fd in fds.flatten() {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert!(
            !target.to_string_lossy().contains("(deleted)"),
            "{target:?}"
        );
    }
    let (_, stdout, _) = live.stop();
    exactly_once(&counts(&stdout), 0..1000);
}
both!(deleted_while_open);

// 17. Directory removed and recreated.
fn directory_recreated(poll: bool) {
    let s = Scene::new(poll);
    std::fs::create_dir(s.path("logs")).unwrap();
    s.write("logs/app.jsonl", "");
    let live = s.spawn(&["logs/app.jsonl"]);
    s.append("logs/app.jsonl", lines(0..5));
    live.wait_records(5);
    std::fs::remove_dir_all(s.path("logs")).unwrap();
    std::fs::create_dir(s.path("logs")).unwrap();
    s.write("logs/app.jsonl", lines(5..10));
    live.wait_records(10);
    let (_, stdout, _) = live.stop();
    exactly_once(&counts(&stdout), 0..10);
}
both!(directory_recreated);

// 18 and 20. Lines appended right after start-up arrive without a later write,
// and within the latency bound.
fn appended_right_after_startup(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..3));
    let live = s.spawn(&["app.jsonl"]);
    s.append("app.jsonl", line(3));
    let took = live.wait_records(1);
    assert!(
        took < Duration::from_millis(if poll { 1000 } else { 500 }),
        "{took:?}"
    );
    let (_, stdout, _) = live.stop();
    exactly_once(&counts(&stdout), [3]);
}
both!(appended_right_after_startup);

// 19. Watch limits exhausted: polling takes over, logged, nothing lost.
fn watch_limit_falls_back_to_polling(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let live = s.spawn_env(&["app.jsonl"], &[("MMON_MAX_WATCHES", "0")]);
    s.append("app.jsonl", lines(0..50));
    live.wait_records(50);
    let (_, stdout, stderr) = live.stop();
    exactly_once(&counts(&stdout), 0..50);
    if !poll {
        assert!(stderr.contains("falling back to polling"), "{stderr}");
    }
}
both!(watch_limit_falls_back_to_polling);

// 21. kill -9 at random moments: the checkpoint is always whole, nothing lost.
fn kill_9_loop(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let mut all = String::new();
    let mut next = 0u64;
    for round in 0..6u64 {
        let live = s.spawn(&[
            "app.jsonl",
            "--state",
            "state.json",
            "--from-start",
            "--checkpoint-interval",
            "5ms",
        ]);
        s.append("app.jsonl", lines(next..next + 300));
        next += 300;
        std::thread::sleep(Duration::from_millis(37 * round));
        all.push_str(&live.kill().stdout);
        let text = std::fs::read(s.path("state.json")).unwrap_or_default();
        if !text.is_empty() {
            assert!(
                serde_json::from_slice::<Value>(&text).is_ok(),
                "torn checkpoint"
            );
        }
    }
    all.push_str(&s.once(&["app.jsonl"]));
    let seen = counts(&all);
    for i in 0..next {
        assert!(seen.contains_key(&i), "lost record {i}");
    }
    // Output after the last checkpoint may repeat, the pipeline state never:
    // it has seen each record exactly once.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("state.json")).unwrap()).unwrap();
    assert_eq!(state["body"]["pipeline"]["counts"]["records"], next);
}
both!(kill_9_loop);

// 22. Corrupt or foreign checkpoint: exit 5 unless --reset-state.
fn corrupt_checkpoint(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..3));
    s.once(&["--from-start", "app.jsonl"]);
    let good = std::fs::read_to_string(s.path("state.json")).unwrap();
    for (bad, what) in [
        ("garbage\n".to_string(), "not JSON"),
        (
            good.replace(mmon::checkpoint::SCHEMA, "mmon.checkpoint/7"),
            "not supported",
        ),
        (good.replace("\"line\":4", "\"line\":5"), "checksum"),
        (
            "{\"schema\":\"other\"}".to_string(),
            "not an mmon checkpoint",
        ),
    ] {
        s.write("state.json", &bad);
        let (code, _, stderr) = s.run(&["--once", "--state", "state.json", "app.jsonl"]);
        assert_eq!(code, 5, "{stderr}");
        assert!(stderr.contains(what), "{stderr}");
        assert_eq!(std::fs::read_to_string(s.path("state.json")).unwrap(), bad);
    }
    let (code, _, _) = s.run(&[
        "--once",
        "--state",
        "state.json",
        "--reset-state",
        "app.jsonl",
    ]);
    assert_eq!(code, 0);
}
both!(corrupt_checkpoint);

// 23. Two overlapping runs on one checkpoint: the second exits 5 naming the holder.
fn overlapping_runs(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..3));
    let live = s.spawn(&["app.jsonl", "--state", "state.json"]);
    let (code, stdout, stderr) = s.run(&["--once", "--state", "state.json", "app.jsonl"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains(&format!("pid {}", live.pid())), "{stderr}");
    assert!(stdout.is_empty());
    live.stop();
}
both!(overlapping_runs);

// 24. Exit codes in CI and the per-file summary.
fn exit_codes(poll: bool) {
    let s = Scene::new(poll);
    s.write("a.jsonl", lines(0..3));
    s.write("b.jsonl", "not json\n");
    let (code, stdout, _) = s.run(&[
        "--once",
        "--state",
        "1.json",
        "--from-start",
        "a.jsonl",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        doc["summary"]["inputs"],
        serde_json::json!([{"path": "a.jsonl", "bytes": 3 * line(0).len(), "records": 3, "rejected": 0, "offset": 3 * line(0).len()}])
    );
    let (code, _, _) = s.run(&[
        "--once",
        "--state",
        "2.json",
        "--from-start",
        "a.jsonl",
        "--fail-on",
        "drift",
    ]);
    assert_eq!(code, 1);
    let (code, _, stderr) = s.run(&["--once", "--state", "3.json", "missing.jsonl"]);
    assert_eq!(code, 3, "{stderr}");
    let (code, _, stderr) = s.run(&[
        "--once",
        "--state",
        "4.json",
        "--from-start",
        "b.jsonl",
        "--on-bad-record",
        "fail",
    ]);
    assert_eq!(code, 3, "{stderr}");
}
both!(exit_codes);

// 25. A log split at random points across --once runs gives replay's report.
fn split_runs_match_replay(poll: bool) {
    let s = Scene::new(poll);
    let config = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = { window = 20, threshold = 0.05 }\n";
    s.write("mmon.toml", config);
    // A drop, and a noisy recovery that closes the episode before the end.
    let log = crate::accuracy_log(600, |i| match i {
        0..200 => 0.9,
        200..400 => 0.8,
        _ => 0.98 - (i % 7) as f64 * 0.03,
    });
    let bytes = log.as_bytes();
    let mut cuts = vec![0, 1, 57, 1000, 4096, 9000, 9001, 20000, 30000, bytes.len()];
    cuts.retain(|&c| c <= bytes.len());
    s.write("log.jsonl", "");
    let mut watched = String::new();
    for w in cuts.windows(2) {
        s.append("log.jsonl", &bytes[w[0]..w[1]]);
        let mut args = vec!["log.jsonl"];
        if w[0] == 0 {
            args.push("--from-start");
        }
        watched.push_str(&s.once(&args));
    }
    let replay = Mmon::new(&[
        "replay",
        "log.jsonl",
        "--format",
        "jsonl",
        "--config",
        "mmon.toml",
    ])
    .file("log.jsonl", &log)
    .file("mmon.toml", config)
    .run();
    assert_eq!(replay.code, 0);
    // A run with a checkpoint does not end the input: windows still open
    // at the end carry over, so replay's "eof" closes are the only difference.
    let expected: String = replay
        .stdout
        .lines()
        .filter(|l| !l.contains("\"end_reason\":\"eof\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(expected.lines().count() >= 2, "{}", replay.stdout);
    assert_eq!(watched, expected);
}
both!(split_runs_match_replay);

#[test]
fn replay_reads_an_unterminated_last_line() {
    // Scenario 12.
    let out = Mmon::new(&["replay", "a.jsonl", "--format", "json"])
        .file("a.jsonl", format!("{}{}", line(0), line(1).trim_end()))
        .run();
    assert_eq!(out.json()["summary"]["records"], 2);
}

#[test]
fn watch_without_state_closes_windows_at_the_end_like_replay() {
    let s = Scene::new(true);
    s.write("a.jsonl", lines(0..3));
    let live = s.spawn(&["--from-start", "a.jsonl"]);
    live.wait_records(3);
    let (code, stdout, _) = live.stop();
    assert_eq!(code, 143);
    assert!(stdout.contains("\"end_reason\":\"eof\""));
}

#[test]
fn sigint_writes_the_checkpoint_and_exits_130() {
    let s = Scene::new(false);
    s.write("a.jsonl", "");
    let live = s.spawn(&["a.jsonl", "--state", "state.json"]);
    s.append("a.jsonl", lines(0..10));
    live.wait_records(10);
    live.signal(nix::sys::signal::Signal::SIGINT);
    assert_eq!(live.wait().code, 130);
    let state = std::fs::read_to_string(s.path("state.json")).unwrap();
    assert!(state.contains(&format!("\"offset\":{}", 10 * line(0).len())));
}
