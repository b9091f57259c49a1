//! What a run writes (SPEC §1): an output never harms an input, a report
//! file is replaced only when complete, and an output that cannot be
//! written is exit 4 naming its path.

use std::io::Write;
use std::path::Path;

use crate::{FIXTURES, Mmon, accuracy_log};

fn metrics() -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join("metrics.jsonl")).unwrap()
}

#[test]
fn output_pointing_at_the_input_is_refused_and_the_input_is_kept() {
    let log = metrics();
    for (output, how) in [
        ("x.jsonl", "the same name"),
        ("link.json", "a symbolic link"),
        ("hard.json", "a hard link"),
        ("./sub/../x.jsonl", "another spelling"),
    ] {
        let run = Mmon::new(&["replay", "x.jsonl", "--output", output]).file("x.jsonl", &log);
        let dir = run.dir.path().to_path_buf();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("x.jsonl", dir.join("link.json")).unwrap();
        std::fs::hard_link(dir.join("x.jsonl"), dir.join("hard.json")).unwrap();
        let out = run.run();
        assert_eq!(out.code, 2, "{how}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("--output {output} is the input x.jsonl")),
            "{how}: {}",
            out.stderr
        );
        assert_eq!(std::fs::read(out.path("x.jsonl")).unwrap(), log, "{how}");
        let left: Vec<String> = std::fs::read_dir(out.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(left.is_empty(), "{how}: {left:?}");
    }
}

#[test]
fn rejects_pointing_at_the_input_is_refused_instead_of_appending_to_the_log() {
    let log = metrics();
    let out = Mmon::new(&["replay", "a.jsonl", "x.jsonl", "--rejects", "x.jsonl"])
        .file("a.jsonl", &log)
        .fixture("bad.jsonl")
        .file(
            "x.jsonl",
            std::fs::read(Path::new(FIXTURES).join("bad.jsonl")).unwrap(),
        )
        .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--rejects x.jsonl is the input x.jsonl"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(out.path("x.jsonl")).unwrap(),
        std::fs::read(out.path("bad.jsonl")).unwrap()
    );
}

#[test]
fn stdin_redirected_from_the_output_file_is_refused() {
    let run = Mmon::new(&["replay", "-", "--output", "x.jsonl"]).file("x.jsonl", metrics());
    let mut cmd = run.command();
    let input = std::fs::File::open(run.dir.path().join("x.jsonl")).unwrap();
    let out = cmd.stdin(input).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--output x.jsonl is the standard input"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(run.dir.path().join("x.jsonl")).unwrap(),
        metrics()
    );
}

#[test]
fn two_outputs_on_one_file_are_refused() {
    let out = Mmon::new(&[
        "replay",
        "x.jsonl",
        "--output",
        "r.json",
        "--rejects",
        "r.json",
    ])
    .file("x.jsonl", metrics())
    .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--output and --rejects both name r.json")
    );
    assert!(!out.path("r.json").exists());
}

#[test]
fn watch_output_rejects_or_state_on_a_matched_input_is_refused() {
    let log = metrics();
    for flag in ["--output", "--rejects", "--state"] {
        let mut args = vec![
            "watch",
            "logs/*.jsonl",
            "--once",
            "--from-start",
            flag,
            "logs/app.jsonl",
        ];
        if flag != "--state" {
            args.extend(["--state", "s.ckpt"]);
        }
        let out = Mmon::new(&args).file("logs/app.jsonl", &log).run();
        assert_eq!(out.code, 2, "{flag}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "{flag} logs/app.jsonl is the input logs/app.jsonl"
            )),
            "{flag}: {}",
            out.stderr
        );
        assert_eq!(std::fs::read(out.path("logs/app.jsonl")).unwrap(), log);
    }
}

/// A gzip file cut in half: its first records read, then an error.
fn truncated_gz(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    bytes[..bytes.len() / 2].to_vec()
}

#[test]
fn a_truncated_second_input_leaves_the_previous_report_and_rejects_as_they_were() {
    let first = Mmon::new(&[
        "replay",
        "bad.jsonl",
        "--output",
        "report.json",
        "--rejects",
        "rejects.jsonl",
    ])
    .fixture("bad.jsonl")
    .file(
        "second.jsonl.gz",
        truncated_gz(&accuracy_log(20_000, |_| 0.9)),
    )
    .run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report = first.read("report.json");
    let rejects = first.read("rejects.jsonl");
    assert!(!report.is_empty() && !rejects.is_empty());

    let second = first
        .then(&[
            "replay",
            "bad.jsonl",
            "second.jsonl.gz",
            "--output",
            "report.json",
            "--rejects",
            "rejects.jsonl",
        ])
        .run();
    assert_eq!(second.code, 3, "{}", second.stderr);
    assert!(
        second.stderr.contains("second.jsonl.gz"),
        "{}",
        second.stderr
    );
    assert_eq!(second.read("report.json"), report);
    assert_eq!(second.read("rejects.jsonl"), rejects);
    let names: Vec<String> = std::fs::read_dir(second.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(names.is_empty(), "temp files left: {names:?}");
}

#[test]
fn rejects_of_a_second_run_are_appended_after_the_first_runs() {
    let first = Mmon::new(&["replay", "bad.jsonl", "--rejects", "r.jsonl", "-q"])
        .fixture("bad.jsonl")
        .run();
    let once = first.read("r.jsonl");
    let second = first
        .then(&["replay", "bad.jsonl", "--rejects", "r.jsonl", "-q"])
        .run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.read("r.jsonl"), format!("{once}{once}"));
}

#[test]
fn output_folder_missing_is_exit_4_naming_the_path_before_reading() {
    let out = Mmon::new(&["replay", "x.jsonl", "--output", "nope/report.json"])
        .file("x.jsonl", metrics())
        .run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("mmon: cannot create nope/report.json: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn rejects_folder_missing_is_exit_4_naming_the_path() {
    let out = Mmon::new(&["replay", "bad.jsonl", "--rejects", "nope/r.jsonl"])
        .fixture("bad.jsonl")
        .run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("mmon: cannot write rejects file nope/r.jsonl: "),
        "{}",
        out.stderr
    );
}

/// A 64 KiB tmpfs inside `dir`, filled up; `None` (the test is skipped) when
/// this user cannot mount one. CI runs as root, so there it runs.
fn full_disk(dir: &Path) -> Option<FullDisk> {
    let mount = dir.join("full");
    std::fs::create_dir(&mount).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mount)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return None;
    }
    let disk = FullDisk(mount);
    let mut filler = std::fs::File::create(disk.0.join("filler")).unwrap();
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    let _ = filler.sync_all();
    Some(disk)
}

struct FullDisk(std::path::PathBuf);

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_exit_4_naming_the_output_and_leaving_no_temp_file() {
    let run = Mmon::new(&["replay", "metrics.jsonl", "--output", "full/report.json"])
        .fixture("metrics.jsonl");
    let Some(disk) = full_disk(run.dir.path()) else {
        return;
    };
    let out = run.run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("full/report.json") && out.stderr.contains("No space left"),
        "{}",
        out.stderr
    );
    let names: Vec<String> = std::fs::read_dir(&disk.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["filler"]);
    drop(disk);
}

#[test]
fn a_full_disk_under_the_rejects_file_is_exit_4_naming_it() {
    let run = Mmon::new(&["replay", "bad.jsonl", "--rejects", "full/r.jsonl"]).fixture("bad.jsonl");
    let Some(disk) = full_disk(run.dir.path()) else {
        return;
    };
    let out = run.run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("full/r.jsonl") && out.stderr.contains("No space left"),
        "{}",
        out.stderr
    );
    drop(disk);
}
