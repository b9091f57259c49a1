//! Retraining from replay and the `mmon registry` commands (SPEC §7).

use std::path::Path;

use serde_json::Value;

use crate::Mmon;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The README's walkthrough, laid out as in the repository.
fn walkthrough(args: &[&str]) -> Mmon {
    let run = Mmon::new(args);
    let dir = run_dir(&run);
    for (from, to) in [
        ("examples/train/train.py", "examples/train/train.py"),
        ("examples/retrain.toml", "examples/retrain.toml"),
        ("fixtures/train/dataset.csv", "fixtures/train/dataset.csv"),
        ("fixtures/metrics.jsonl", "fixtures/metrics.jsonl"),
    ] {
        let to = dir.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(ROOT).join(from), to).unwrap();
    }
    run
}

fn run_dir(run: &Mmon) -> std::path::PathBuf {
    run.dir.path().to_path_buf()
}

#[test]
fn readme_walkthrough_publishes_a_patch_version_of_the_decayed_model() {
    let out = walkthrough(&[
        "replay",
        "fixtures/metrics.jsonl",
        "--config",
        "examples/retrain.toml",
        "--retrain",
        "--format",
        "json",
    ])
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(
        report["summary"]["retrains"],
        serde_json::json!({"ok": 2, "failed": 0})
    );
    // Two models drift: churn (its correct field first, then its accuracy,
    // which is within the cooldown) and fraud's latency.
    assert_eq!(report["windows"][1]["retrain"]["status"], "skipped");
    assert_eq!(report["windows"][2]["retrain"]["version"], "3.0.2");
    let window = &report["windows"][0];
    assert_eq!(window["retrain"]["status"], "published");
    assert_eq!(window["retrain"]["version"], "1.4.3");
    assert_eq!(window["retrain"]["parent"], "1.4.2");

    let version = out.path("registry/churn/1.4.3");
    let mut files: Vec<String> = std::fs::read_dir(&version)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "manifest.json",
            "metrics.json",
            "model.json",
            "params.json",
            "train.log"
        ]
    );
    assert_eq!(out.read("registry/churn/LATEST").trim(), "1.4.3");
    let manifest: Value =
        serde_json::from_str(&out.read("registry/churn/1.4.3/manifest.json")).unwrap();
    assert_eq!(manifest["schema"], "mmon.manifest/1");
    assert_eq!(manifest["parent"], "1.4.2");
    assert_eq!(manifest["trigger"]["detected"]["index"], 2495);
    assert_eq!(manifest["trigger"]["metric"], "correct");
    assert_eq!(manifest["trigger"]["model_id"], "churn");
    assert_eq!(manifest["trials"].as_array().unwrap().len(), 2);

    let show = Mmon::in_dir(out.dir.path(), &["registry", "show", "churn"])
        .expect_code(0)
        .run()
        .stdout;
    assert!(show.contains("version       1.4.3"), "{show}");
    assert!(show.contains("parent        1.4.2"), "{show}");
    let list = Mmon::in_dir(out.dir.path(), &["registry", "list", "--format", "json"])
        .expect_code(0)
        .run()
        .json();
    assert_eq!(list["models"][0]["latest"], "1.4.3");
    Mmon::in_dir(out.dir.path(), &["registry", "verify"])
        .expect_code(0)
        .run();

    // Replaying the same log again is within the cooldown: nothing new.
    let report = Mmon::in_dir(
        out.dir.path(),
        &[
            "replay",
            "fixtures/metrics.jsonl",
            "--config",
            "examples/retrain.toml",
            "--retrain",
            "--format",
            "json",
        ],
    )
    .expect_code(0)
    .run()
    .json();
    assert_eq!(report["windows"][0]["retrain"]["status"], "skipped");
    assert!(!out.path("registry/churn/1.4.4").exists());

    // A tampered file is found by verify: exit 4.
    std::fs::write(version.join("model.json"), "{}").unwrap();
    Mmon::in_dir(out.dir.path(), &["registry", "verify"])
        .expect_code(4)
        .run();
}

#[test]
fn the_example_config_monitors_what_the_default_does() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("examples/retrain.toml")).unwrap();
    let example = mmon::config::Config::parse(&text, "examples/retrain.toml").unwrap();
    let default = mmon::config::Config::embedded();
    assert_eq!(example.monitors, default.monitors);
    assert_eq!(
        (example.input, example.report),
        (default.input, default.report)
    );
}

#[test]
fn dry_run_prints_the_argv_and_environment_and_runs_nothing() {
    let out = walkthrough(&[
        "replay",
        "fixtures/metrics.jsonl",
        "--config",
        "examples/retrain.toml",
        "--dry-run",
        "--format",
        "json",
    ])
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("{\"dry_run\""))
        .expect("a dry-run line on stderr");
    let plan: Value = serde_json::from_str(line).unwrap();
    let trial = &plan["dry_run"]["trials"][0];
    assert_eq!(trial["argv"][0], "python3");
    assert_eq!(trial["argv"][1], "examples/train/train.py");
    assert_eq!(trial["env"]["MMON_MODEL_ID"], "churn");
    assert_eq!(trial["env"]["MMON_PARENT_VERSION"], "1.4.2");
    assert!(!out.path("registry/churn/1.4.3").exists());
}

#[test]
fn a_failed_training_is_reported_and_exits_4() {
    let out = walkthrough(&[
        "replay",
        "fixtures/metrics.jsonl",
        "--config",
        "examples/retrain.toml",
        "--retrain",
        "--fake-training",
        "exit=3",
        "--format",
        "json",
    ])
    .run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    let report = out.json();
    assert_eq!(
        report["summary"]["retrains"],
        serde_json::json!({"ok": 0, "failed": 2})
    );
    assert_eq!(report["windows"][0]["retrain"]["status"], "failed");
    assert!(!out.path("registry/churn/1.4.3").exists());
    assert!(out.path("registry/churn/.failed").is_dir());
}

#[test]
fn retrain_without_a_retrain_section_is_a_usage_error() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--retrain"])
        .fixture("metrics.jsonl")
        .run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("retraining needs a [retrain] section"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_retrain_config_is_exit_2_with_the_key() {
    let config = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n[retrain]\ncommand = [\"python3\", \"{nope}\"]\n";
    let out = Mmon::new(&["replay", "metrics.jsonl", "--config", "c.toml"])
        .fixture("metrics.jsonl")
        .file("c.toml", config)
        .run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("mmon: c.toml: retrain.command"),
        "{}",
        out.stderr
    );
}

// ---- nothing left running (SPEC §6, §7) -----------------------------------

/// A config whose decay rule fires soon after record 50 of
/// [`crate::accuracy_log`], retraining with `command`.
fn sleepy_config(command: &str) -> String {
    format!(
        "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = {{ window = 5, threshold = 0.1 }}\n\
         [retrain]\ncommand = {command}\nworkdir = \".\"\nshutdown_grace = \"300ms\"\nregistry = \"registry\"\n"
    )
}

/// A trainer that records its pid, ignores SIGTERM and never ends.
const STUBBORN_TRAINER: &str = "echo $$ > trainer.pid.tmp && mv trainer.pid.tmp trainer.pid\n\
                                trap '' TERM\nwhile :; do sleep 0.1; done\n";

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_signal_during_replay_retrain_ends_the_trainer_and_reports_what_was_read() {
    use nix::sys::signal::Signal;
    for (signal, code, name) in [
        (Signal::SIGTERM, 143, "SIGTERM"),
        (Signal::SIGINT, 130, "SIGINT"),
    ] {
        let log = crate::accuracy_log(5000, |i| if i < 50 { 0.9 } else { 0.5 });
        let running = Mmon::new(&[
            "replay",
            "app.jsonl",
            "--retrain",
            "--config",
            "c.toml",
            "--format",
            "json",
        ])
        .file("app.jsonl", log)
        .file("c.toml", sleepy_config(r#"["sh", "train.sh"]"#))
        .file("train.sh", STUBBORN_TRAINER)
        .spawn();
        running.wait_for("the trainer to start", |r| r.path("trainer.pid").exists());
        let pid: i32 = std::fs::read_to_string(running.path("trainer.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(alive(pid));
        let sent = std::time::Instant::now();
        running.signal(signal);
        let out = running.wait();
        assert_eq!(out.code, code, "{name}: {}", out.stderr);
        assert!(sent.elapsed() < std::time::Duration::from_secs(10));
        assert!(!alive(pid), "{name}: trainer {pid} outlived mmon");
        let report = out.json();
        assert_eq!(report["summary"]["interrupted"], name);
        let records = report["summary"]["records"].as_u64().unwrap();
        assert!(records < 5000, "{name}: read on to {records} records");
        assert_eq!(report["windows"][0]["retrain"]["status"], "failed");
        let leftovers: Vec<_> = walk(&out.path("registry"))
            .into_iter()
            .filter(|p| p.ends_with(".mmon-pgid"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn an_earlier_runs_training_group_still_alive_is_ended_by_the_next_retrain() {
    use std::os::unix::process::CommandExt;
    let run = Mmon::new(&[
        "replay",
        "app.jsonl",
        "--retrain",
        "--config",
        "c.toml",
        "--fake-training",
        "ok=0.9",
        "--format",
        "json",
    ])
    .file(
        "app.jsonl",
        crate::accuracy_log(200, |i| if i < 50 { 0.9 } else { 0.5 }),
    )
    .file("c.toml", sleepy_config(r#"["true"]"#));
    // What a `kill -9` of an earlier mmon leaves: its trainer's group still
    // running, recorded in its staging folder.
    let mut orphan = std::process::Command::new("sh")
        .args(["-c", "trap '' TERM; while :; do sleep 0.1; done"])
        .env("MMON_RUN_ID", "20240301T000000Z-p1-1")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = orphan.id() as i32;
    let staging = run
        .dir
        .path()
        .join("registry/m/.staging/20240301T000000Z-p1-1-t1");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(
        staging.join(".mmon-pgid"),
        format!(r#"{{"pgid":{pgid},"mmon_pid":1,"run_id":"20240301T000000Z-p1-1"}}"#),
    )
    .unwrap();
    let out = run.run();
    let _ = orphan.wait();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!alive(pgid), "the orphaned trainer {pgid} is still running");
    assert!(
        out.stderr.contains(&format!(
            "m: training process group {pgid} of an earlier run (20240301T000000Z-p1-1, mmon pid 1) is still running"
        )),
        "{}",
        out.stderr
    );
    assert!(!staging.exists(), "its staging debris was not cleared");
    assert_eq!(out.json()["windows"][0]["retrain"]["status"], "published");
}

#[test]
fn a_training_outcome_kept_in_the_checkpoint_reaches_the_window_closed_next_run() {
    // The window opens (and retrains) in the first run and closes,
    // recovered, in the second: its `closed` event still says what the
    // training came to.
    let log = crate::accuracy_log(600, |i| if (50..150).contains(&i) { 0.5 } else { 0.9 });
    let (first, rest) = log.split_at(log.match_indices('\n').nth(99).unwrap().0 + 1);
    let watch = [
        "watch",
        "app.jsonl",
        "--once",
        "--state",
        "st.json",
        "--from-start",
        "--config",
        "c.toml",
        "--fake-training",
        "ok=0.9",
        "--format",
        "jsonl",
    ];
    let out = Mmon::new(&watch)
        .file("app.jsonl", first)
        .file("c.toml", sleepy_config(r#"["true"]"#))
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let opened: Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(opened["event"], "opened");
    assert_eq!(
        opened["retrain"],
        Value::Null,
        "the training ends after the event"
    );

    let dir = out.dir.path();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("app.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut file, rest.as_bytes()).unwrap();
    let stdout = Mmon::in_dir(dir, &watch).expect_code(0).run().stdout;
    let closed: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(closed["event"], "closed", "{stdout}");
    assert_eq!(closed["end_reason"], "recovered");
    assert_eq!(closed["retrain"]["status"], "published", "{closed}");
    assert_eq!(closed["retrain"]["version"], "1.0.1");
    assert!(dir.join("registry/m/1.0.1").is_dir());
}
