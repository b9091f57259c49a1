//! `mmon watch` under fault injection (issue 10): rotations racing a start,
//! rotated names no pattern covers, deleted generations, descriptor limits,
//! memory with many files, checkpoints that cannot be written, unreadable
//! and odd paths. Each test is named after what broke.
//!
//! Tests that need `ulimit`, root (a tmpfs) or a user other than root skip
//! with a message when they cannot run.

use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Live, Scene, TIMEOUT, counts, exactly_once, line, lines};
use crate::{Mmon, Running};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn skip(why: &str) {
    eprintln!("skipped: {why}");
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `sh -c 'PRELUDE && exec mmon watch ARGS'`.
fn under_sh(prelude: &str) -> [&str; 3] {
    ["sh", "-c", prelude]
}

// Item 3: a rotation between identifying a file and reading it must not
// swap the file under the follower. mmon pauses right after it identified
// its files (a test hook); the test rotates there.
fn resume_racing_a_rotation_reads_no_generation_twice(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..100));
    let mut seen = s.once(&["--from-start", "app.jsonl"]);
    s.append("app.jsonl", lines(100..150));
    let hook = s.path("hook");
    std::fs::create_dir(&hook).unwrap();
    let running = s
        .watch(&["--once", "--state", "state.json", "app.jsonl"])
        .env(
            "MMON_TEST_PAUSE_AT",
            &format!("identified:{}", hook.display()),
        )
        .expect_code(0)
        .spawn();
    wait_for("identification", || hook.join("identified").exists());
    std::fs::rename(s.path("app.jsonl"), s.path("app.jsonl.1")).unwrap();
    s.write("app.jsonl", lines(150..200));
    std::fs::write(hook.join("go"), b"").unwrap();
    seen.push_str(&running.wait().stdout);
    seen.push_str(&s.once(&["app.jsonl"]));
    exactly_once(&counts(&seen), 0..200);
}
both!(resume_racing_a_rotation_reads_no_generation_twice);

// Item 4: logrotate's dateext renames `app.jsonl` to a name the pattern does
// not cover; its unread rest is found by device and inode.
fn dateext_rotation_while_stopped_is_read_to_its_end(poll: bool) {
    for pattern in ["app.jsonl", "*.jsonl"] {
        let s = Scene::new(poll);
        s.write("app.jsonl", lines(0..150));
        let mut seen = s.once(&["--from-start", pattern]);
        s.append("app.jsonl", lines(150..350));
        std::fs::rename(s.path("app.jsonl"), s.path("app.jsonl-20240301")).unwrap();
        s.write("app.jsonl", lines(350..400));
        seen.push_str(&s.once(&[pattern]));
        seen.push_str(&s.once(&[pattern]));
        exactly_once(&counts(&seen), 0..400);
    }
}
both!(dateext_rotation_while_stopped_is_read_to_its_end);

// Item 4: a generation deleted before its rest was read is a warning with
// the file and the byte count, and `lost_bytes` in the summary.
fn a_deleted_generation_is_a_warning_and_lost_bytes(poll: bool) {
    let s = Scene::new(poll);
    // The run ends inside a line being written: the checkpoint knows the
    // file is longer than what was read.
    let partial = "{\"timestamp\":1700000150,";
    s.write("app.jsonl", format!("{}{partial}", lines(0..150)));
    s.once(&["--from-start", "app.jsonl"]);
    std::fs::remove_file(s.path("app.jsonl")).unwrap();
    s.write("app.jsonl", lines(200..210));
    let (code, stdout, stderr) = s.run(&[
        "--once",
        "--state",
        "state.json",
        "app.jsonl",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let warning = format!("{} bytes after byte {}", partial.len(), 150 * line(0).len());
    assert!(
        stderr.contains("app.jsonl") && stderr.contains(&warning),
        "{stderr}"
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let lost: u64 = doc["summary"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["lost_bytes"].as_u64())
        .sum();
    assert_eq!(lost, partial.len() as u64, "{stdout}");
}
both!(a_deleted_generation_is_a_warning_and_lost_bytes);

// Item 7: 600 files under `ulimit -n 256` broke the first run and the
// checkpoint of the next.
fn six_hundred_files_under_ulimit_256(poll: bool) {
    let s = Scene::new(poll);
    std::fs::create_dir(s.path("logs")).unwrap();
    for i in 0..600 {
        s.write(&format!("logs/{i:03}.jsonl"), line(10_000 + i));
    }
    let sh = under_sh("ulimit -n 256 && exec \"$0\" \"$@\"");
    let once = ["--once", "--state", "state.json", "logs/*.jsonl"];
    let (code, _, stderr) = s.run_under(&sh, &once);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    for i in 0..600 {
        s.append(&format!("logs/{i:03}.jsonl"), line(i));
    }
    let (code, stdout, stderr) = s.run_under(&sh, &once);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    exactly_once(&counts(&stdout), 0..600);
    // A running watch follows all of them, within the limit.
    let watch = s.watch(&["--state", "state.json", "logs/*.jsonl"]);
    let live = s.live(watch.under(&sh).env("RUST_LOG", "info"));
    for i in 0..600 {
        s.append(&format!("logs/{i:03}.jsonl"), line(600 + i));
    }
    live.wait_records(600);
    let fds = std::fs::read_dir(format!("/proc/{}/fd", live.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(fds <= 256, "{fds} descriptors");
    let (_, stdout, stderr) = live.stop();
    exactly_once(&counts(&stdout), 600..1200);
    assert!(!stderr.contains("Too many open files"), "{stderr}");
}
both!(six_hundred_files_under_ulimit_256);

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

// Item 8: every file kept a line buffer as large as its longest line (up to
// max_line_bytes) after catching up: files × max_line_bytes resident.
#[test]
fn idle_memory_does_not_grow_with_files_times_max_line_bytes() {
    let s = Scene::new(true);
    std::fs::create_dir(s.path("logs")).unwrap();
    let pad = "x".repeat(900_000);
    for i in 0..120u64 {
        let long = format!(
            "{{\"timestamp\":{},\"n\":1,\"pad\":\"{pad}\"}}\n",
            super::BASE + 2 * i as i64
        );
        s.write(
            &format!("logs/{i:03}.jsonl"),
            format!("{long}{}", line(2 * i + 1)),
        );
    }
    let live = s.spawn(&["--from-start", "logs/*.jsonl"]);
    live.wait_records(240);
    let resident = rss(live.pid());
    let (_, stdout, _) = live.stop();
    exactly_once(&counts(&stdout), 0..240);
    assert!(
        resident < 48 << 20,
        "{} MiB resident while idle after 120 lines of 900 kB",
        resident >> 20
    );
}

/// Makes every checkpoint write fail while it exists: a directory where the
/// temp file of process `$$` goes (`sh` then `exec`s mmon, keeping its pid).
const BLOCK_SAVES: &str = "mkdir state.json.tmp.$$ && exec \"$0\" \"$@\"";

// Item 9: a failed checkpoint write ended watch at once with exit 5 and
// printed the OS error twice.
fn a_failed_checkpoint_write_is_retried_and_watch_keeps_following(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let args = [
        "app.jsonl",
        "--state",
        "state.json",
        "--checkpoint-interval",
        "20ms",
    ];
    let live = s.live(s.watch(&args).under(&under_sh(BLOCK_SAVES)));
    s.append("app.jsonl", lines(0..10));
    live.wait_records(10);
    live.wait_stderr("cannot write checkpoint");
    s.append("app.jsonl", lines(10..20));
    live.wait_records(20);
    let blocker = std::fs::read_dir(s.dir.path())
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.tmp.")
        })
        .expect("the blocking directory");
    std::fs::remove_dir(blocker.path()).unwrap();
    live.wait_stderr("checkpoint written again");
    let (code, _, stderr) = live.stop();
    assert_eq!(code, 143, "{stderr}");
    for l in stderr
        .lines()
        .filter(|l| l.contains("cannot write checkpoint"))
    {
        assert_eq!(l.matches("os error").count(), 1, "{l}");
        assert!(l.contains("state.json"), "{l}");
    }
    let state = std::fs::read_to_string(s.path("state.json")).unwrap();
    assert!(state.contains(&format!("\"offset\":{}", 20 * line(0).len())));
}
both!(a_failed_checkpoint_write_is_retried_and_watch_keeps_following);

// Item 9: after `--checkpoint-failures` failed writes in a row, exit 4 (an
// output error, not 5), naming the path and the OS error once.
fn consecutive_checkpoint_failures_exit_4(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", lines(0..3));
    let args = [
        "app.jsonl",
        "--state",
        "state.json",
        "--from-start",
        "--checkpoint-interval",
        "10ms",
        "--checkpoint-failures",
        "3",
    ];
    let (code, _, stderr) = s.run_under(&under_sh(BLOCK_SAVES), &args);
    assert_eq!(code, 4, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("mmon: cannot write checkpoint state.json"),
        "{stderr}"
    );
    assert!(last.contains("3 consecutive"), "{last}");
    assert_eq!(last.matches("os error").count(), 1, "{last}");
    // A cron run that cannot write its checkpoint: exit 4 at once.
    let mut once = vec!["--once"];
    once.extend_from_slice(&args);
    let (code, _, stderr) = s.run_under(&under_sh(BLOCK_SAVES), &once);
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}
both!(consecutive_checkpoint_failures_exit_4);

// Item 9: temp files of killed runs piled up beside the checkpoint.
#[test]
fn temp_files_of_killed_runs_are_removed() {
    let s = Scene::new(true);
    s.write("app.jsonl", lines(0..3));
    s.write("state.json.tmp.4242", "half a checkpoint");
    s.write("state.json.prev.tmp.4243", "half a checkpoint");
    s.write("state.json.tmp.notes", "not ours");
    s.once(&["--from-start", "app.jsonl"]);
    assert!(!s.path("state.json.tmp.4242").exists());
    assert!(!s.path("state.json.prev.tmp.4243").exists());
    assert!(s.path("state.json.tmp.notes").exists());
}

/// A small tmpfs on `dir`, unmounted on drop; `None` when mounting is not
/// allowed (not root, or no mount in this container).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            return None;
        }
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    /// Read-only through a read-only bind mount over the folder (a tmpfs
    /// with a file open for writing, the lock, cannot be remounted).
    fn read_only(&self) {
        let run = |args: &[&str]| {
            let ok = Command::new("mount")
                .args(args)
                .arg(&self.0)
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mount {args:?}");
        };
        run(&["--bind"]);
        let ok = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount ro");
    }

    fn writable(&self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "umount the read-only bind");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

// Item 9 with real faults: a full disk and a read-only folder (root: a
// tmpfs; otherwise chmod for read-only, and no full disk).
fn checkpoint_on_a_full_disk_or_read_only_folder_is_retried(poll: bool) {
    let s = Scene::new(poll);
    s.write("app.jsonl", "");
    let fs = Tmpfs::mount(&s.path("st"), "256k");
    if fs.is_none() {
        if is_root() {
            return skip("cannot mount a tmpfs here");
        }
        std::fs::create_dir(s.path("st")).unwrap();
    }
    let live = s.spawn(&[
        "app.jsonl",
        "--state",
        "st/state.json",
        "--checkpoint-interval",
        "20ms",
    ]);
    let mut next = 0;
    let mut step = |live: &Running| {
        s.append("app.jsonl", lines(next..next + 5));
        next += 5;
        live.wait_records(next as usize);
    };
    step(&live);
    wait_for("a first checkpoint", || s.path("st/state.json").exists());
    // Read-only.
    match &fs {
        Some(fs) => fs.read_only(),
        None => {
            use std::os::unix::fs::PermissionsExt;
            let ro = std::fs::Permissions::from_mode(0o555);
            std::fs::set_permissions(s.path("st"), ro).unwrap();
        }
    }
    step(&live);
    live.wait_stderr("cannot write checkpoint st/state.json");
    step(&live);
    match &fs {
        Some(fs) => fs.writable(),
        None => {
            use std::os::unix::fs::PermissionsExt;
            let rw = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(s.path("st"), rw).unwrap();
        }
    }
    live.wait_stderr("checkpoint written again");
    // Full: fill the tmpfs, then free it.
    if fs.is_some() {
        let fill = s.path("st/fill");
        let _ = std::fs::write(&fill, vec![0u8; 512 << 10]);
        let before = live.stderr().matches("No space left").count();
        step(&live);
        wait_for("a disk-full warning", || {
            live.stderr().matches("No space left").count() > before
        });
        std::fs::remove_file(&fill).unwrap();
        let again = live.stderr().matches("checkpoint written again").count();
        wait_for("recovery", || {
            live.stderr().matches("checkpoint written again").count() > again
        });
    }
    let (code, stdout, stderr) = live.stop();
    assert_eq!(code, 143, "{stderr}");
    exactly_once(&counts(&stdout), 0..next);
    let state = std::fs::read_to_string(s.path("st/state.json")).unwrap();
    assert!(state.contains(&format!("\"offset\":{}", next as usize * line(0).len())));
}
both!(checkpoint_on_a_full_disk_or_read_only_folder_is_retried);

/// Runs `mmon watch` as an unprivileged user when the tests run as root
/// (root reads every file), in a scene everyone may use.
fn unprivileged(s: &Scene) -> Option<Vec<&'static str>> {
    use std::os::unix::fs::PermissionsExt;
    if !is_root() {
        return Some(Vec::new());
    }
    let setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let mut p = vec!["setpriv"];
    p.extend(setpriv);
    let works = Mmon::in_dir(s.dir.path(), &["--version"])
        .under(&p)
        .try_spawn()
        .is_ok_and(|r| r.wait().code == 0);
    if !works {
        return None;
    }
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o777)).ok()?;
    for e in std::fs::read_dir(s.dir.path()).ok()?.flatten() {
        let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o666));
    }
    Some(p)
}

fn make_unreadable(s: &Scene, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.path(name), std::fs::Permissions::from_mode(0o000)).unwrap();
}

// Item 11: an unreadable file was warned about on every poll.
fn an_unreadable_file_is_warned_about_once(poll: bool) {
    let s = Scene::new(poll);
    s.write("a.jsonl", "");
    s.write("secret.jsonl", lines(100..103));
    let Some(under) = unprivileged(&s) else {
        return skip("running as root without setpriv: every file is readable");
    };
    make_unreadable(&s, "secret.jsonl");
    let live = s.live(
        s.watch(&["*.jsonl", "--poll-interval", "20ms"])
            .under(&under),
    );
    // Many polls go by while records arrive.
    for i in 0..20 {
        s.append("a.jsonl", line(i));
        live.wait_records(i as usize + 1);
    }
    let (_, stdout, stderr) = live.stop();
    exactly_once(&counts(&stdout), 0..20);
    assert_eq!(stderr.matches("cannot open").count(), 1, "{stderr}");
    assert!(stderr.contains("secret.jsonl"), "{stderr}");
}
both!(an_unreadable_file_is_warned_about_once);

// Item 11: on a first run, one unreadable file in a glob failed the run.
fn one_unreadable_file_in_a_glob_does_not_fail_the_first_run(poll: bool) {
    let s = Scene::new(poll);
    s.write("a.jsonl", lines(0..5));
    s.write("secret.jsonl", lines(100..103));
    let Some(under) = unprivileged(&s) else {
        return skip("running as root without setpriv: every file is readable");
    };
    make_unreadable(&s, "secret.jsonl");
    let args = ["--once", "--state", "state.json", "--from-start", "*.jsonl"];
    let (code, stdout, stderr) = s.run_under(&under, &args);
    assert_eq!(code, 0, "{stderr}");
    exactly_once(&counts(&stdout), 0..5);
    assert_eq!(stderr.matches("cannot open").count(), 1, "{stderr}");
}
both!(one_unreadable_file_in_a_glob_does_not_fail_the_first_run);

// Item 11 and issue 11: a directory or FIFO given as a path exited 0 with
// no message, or waited forever without a word.
#[test]
fn a_directory_or_fifo_given_as_a_path_is_one_clear_message() {
    let s = Scene::new(true);
    s.write("app.jsonl", lines(0..3));
    // Running (no --once): refused at once, not waiting forever.
    let (code, _, stderr) = s.run(&["."]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(". is a directory"), "{stderr}");
    assert!(stderr.contains("*.jsonl"), "{stderr}");
    nix::unistd::mkfifo(&s.path("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (code, stdout, stderr) = s.run(&[
        "--once",
        "--state",
        "state.json",
        "--from-start",
        "pipe",
        "app.jsonl",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("pipe is a FIFO").count(), 1, "{stderr}");
    exactly_once(&counts(&stdout), 0..3);
}

// Item 11: file names that are not UTF-8 were never matched by a glob.
#[test]
fn non_utf8_file_names_are_matched() {
    let s = Scene::new(true);
    let name = std::ffi::OsStr::from_bytes(b"app-\xff.jsonl");
    std::fs::write(s.dir.path().join(name), lines(0..4)).unwrap();
    s.write("b.jsonl", lines(4..6));
    let seen = s.once(&["--from-start", "*.jsonl"]);
    exactly_once(&counts(&seen), 0..6);
    s.append("b.jsonl", line(6));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(s.dir.path().join(name))
        .unwrap();
    std::io::Write::write_all(&mut f, line(7).as_bytes()).unwrap();
    exactly_once(&counts(&s.once(&["*.jsonl"])), 6..8);
}

// Issue 11 item 5: `--once` without `--state` read nothing and exited 0.
#[test]
fn once_without_state_is_a_usage_error() {
    let s = Scene::new(true);
    s.write("app.jsonl", lines(0..3));
    let (code, stdout, stderr) = s.run(&["--once", "app.jsonl"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("add --state"), "{stderr}");
    assert!(stdout.is_empty());
}

// Issue 11 item 5: `--once 'nomatch*'` exited 0.
#[test]
fn once_with_a_glob_that_matches_nothing_exits_3() {
    let s = Scene::new(true);
    s.watch(&["--once", "--state", "state.json", "nomatch*"])
        .expect_code(3)
        .stderr_contains("no file matches nomatch*")
        .run();
}
