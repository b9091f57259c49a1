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

/// Runs a second command in the directory of a finished run.
fn again(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmon"))
        .args(args)
        .current_dir(dir)
        .env_remove("MMON_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

    let (code, show, _) = again(out.dir.path(), &["registry", "show", "churn"]);
    assert_eq!(code, 0);
    assert!(show.contains("version       1.4.3"), "{show}");
    assert!(show.contains("parent        1.4.2"), "{show}");
    let (code, list, _) = again(out.dir.path(), &["registry", "list", "--format", "json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["models"][0]["latest"], "1.4.3");
    let (code, _, _) = again(out.dir.path(), &["registry", "verify"]);
    assert_eq!(code, 0);

    // Replaying the same log again is within the cooldown: nothing new.
    let (code, report, _) = again(
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
    );
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["windows"][0]["retrain"]["status"], "skipped");
    assert!(!out.path("registry/churn/1.4.4").exists());

    // A tampered file is found by verify: exit 4.
    std::fs::write(version.join("model.json"), "{}").unwrap();
    let (code, verify, _) = again(out.dir.path(), &["registry", "verify"]);
    assert_eq!(code, 4, "{verify}");
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
