//! The retrain and registry API end to end: the original scenario with the
//! real example trainer, a real SIGKILL at every step of publication, and
//! two processes retraining the same model at once.
//!
//! The crash and lock tests re-run this test binary as a helper process
//! (`helper_*` tests that do nothing unless their environment variable is
//! set), so the process that dies or holds the lock is a real, separate one.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mmon::registry::{Manifest, PublishStep, Registry, VerifyReport};
use mmon::retrain::{
    ClockMode, FakeRunner, FakeTrial, ProcessRunner, RetrainConfig, RetrainOutcome, Retrainer, Skip,
};
use serde_json::{Value, json};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn config(text: &str) -> RetrainConfig {
    RetrainConfig::from_toml(&text.parse().unwrap(), "mmon.toml").unwrap()
}

fn verify(root: &Path) -> VerifyReport {
    let mut report = VerifyReport::default();
    for m in Registry::new(root).models().unwrap() {
        m.verify(&mut report).unwrap();
    }
    report
}

fn versions(root: &Path, model: &str) -> Vec<String> {
    Registry::new(root)
        .model(model)
        .unwrap()
        .versions()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A drift window as the pipeline reports it (SPEC §5).
fn decay_window() -> Value {
    json!({
        "model_id": "churn",
        "model_version": "1.4.2",
        "metric": "accuracy",
        "detector": {"name": "decay", "params": {"window": 50, "threshold": 0.05}},
        "severity": "drift",
        "start": {"index": 1200, "file": "metrics.jsonl", "line": 1201, "timestamp": "2024-05-01T10:00:00Z"},
        "detected": {"index": 1260, "file": "metrics.jsonl", "line": 1261, "timestamp": "2024-05-01T10:10:00Z"},
        "end": {"index": 1260, "file": "metrics.jsonl", "line": 1261, "timestamp": "2024-05-01T10:10:00Z"},
        "end_reason": "eof",
        "before": 0.91,
        "after": 0.84,
        "change": -0.07,
        "detections": 1,
        "events": 61,
        "reason": "accuracy fell from 0.91 to 0.84 (decay, threshold 0.05)"
    })
}

fn helper(test: &str, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn decay_trigger_trains_the_example_and_publishes_a_patch_version() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        r#"
        command  = ["python3", "examples/train/train.py", "--lr", "{{learning_rate}}", "--epochs", "{{epochs}}", "--out", "{{output_dir}}"]
        workdir  = "{}"
        timeout  = "60s"
        trials   = 2
        select   = {{ metric = "val_accuracy", goal = "max" }}
        [search]
        seed = 7
        learning_rate = {{ log_uniform = [0.05, 0.5] }}
        epochs = 4
        "#,
        repo.display()
    ));
    let mut r = Retrainer::new(
        cfg,
        dir.path(),
        Box::new(ProcessRunner::new()),
        ClockMode::Replay,
    );
    let window = decay_window();
    let o = r.on_drift("churn", Some("1.4.2"), &window, t("2024-05-01T10:10:00Z"));
    let RetrainOutcome::Published(p) = &o else {
        panic!("{o:?}")
    };
    assert_eq!(p.version, "1.4.3");
    assert_eq!(o.to_json()["status"], "published");
    let manifest = Manifest::read(&p.path).unwrap();
    assert_eq!(manifest.trigger, window);
    assert_eq!(manifest.parent.as_deref(), Some("1.4.2"));
    assert_eq!(manifest.trials.len(), 2);
    let acc = manifest.metrics.as_ref().unwrap()["val_accuracy"]
        .as_f64()
        .unwrap();
    assert!(acc > 0.85, "val_accuracy {acc}");
    assert_eq!(manifest.selected.value, Some(acc));
    let best = manifest
        .trials
        .iter()
        .filter_map(|t| t.value)
        .fold(f64::MIN, f64::max);
    assert_eq!(acc, best);
    let files: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        files,
        ["metrics.json", "model.json", "params.json", "train.log"]
    );
    let log = std::fs::read_to_string(p.path.join("train.log")).unwrap();
    assert!(log.contains("val accuracy"), "{log}");
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["params"]["epochs"], 4);
    assert!(verify(dir.path()).is_clean());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("churn/LATEST")).unwrap(),
        "1.4.3\n"
    );
}

/// Publishes with a fake runner and SIGKILLs itself at the publish step
/// named by `MMON_TEST_CRASH_STEP`.
#[test]
fn helper_crash() {
    let (Ok(root), Ok(step)) = (
        std::env::var("MMON_TEST_CRASH_ROOT"),
        std::env::var("MMON_TEST_CRASH_STEP"),
    ) else {
        return;
    };
    let step: usize = step.parse().unwrap();
    let cfg = config("command = [\"train\"]\ncooldown = \"0s\"");
    let mut r = Retrainer::new(
        cfg,
        Path::new(&root),
        Box::new(FakeRunner::new(vec![FakeTrial::Ok(None)], "x")),
        ClockMode::Replay,
    )
    .with_publish_hook(Box::new(move |s| {
        if s == PublishStep::ALL[step] {
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL).unwrap();
        }
        Ok(())
    }));
    r.on_drift("m", None, &json!({}), t("2024-05-02T00:00:00Z"));
    unreachable!("the hook kills this process");
}

#[test]
fn sigkill_at_each_publish_step_leaves_the_old_or_the_complete_new_version() {
    for (i, step) in PublishStep::ALL.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let cfg = || config("command = [\"train\"]\ncooldown = \"0s\"");
        let fake = || Box::new(FakeRunner::new(vec![FakeTrial::Ok(None)], "x"));
        Retrainer::new(cfg(), dir.path(), fake(), ClockMode::Replay).on_drift(
            "m",
            None,
            &json!({}),
            t("2024-05-01T00:00:00Z"),
        );
        assert_eq!(versions(dir.path(), "m"), ["1.0.0"]);

        let status = helper(
            "helper_crash",
            &[
                ("MMON_TEST_CRASH_ROOT", root),
                ("MMON_TEST_CRASH_STEP", &i.to_string()),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "{step:?}: helper should die by SIGKILL, got {status:?}"
        );

        let report = verify(dir.path());
        assert!(report.is_clean(), "{step:?}: {:?}", report.findings);
        let after = versions(dir.path(), "m");
        let renamed = matches!(step, PublishStep::Renamed | PublishStep::LatestWritten);
        assert_eq!(
            after,
            if renamed {
                vec!["1.0.0", "1.0.1"]
            } else {
                vec!["1.0.0"]
            },
            "{step:?}"
        );

        // The kernel freed the train lock; the next run clears the debris.
        let o = Retrainer::new(cfg(), dir.path(), fake(), ClockMode::Replay).on_drift(
            "m",
            None,
            &json!({}),
            t("2024-05-03T00:00:00Z"),
        );
        let RetrainOutcome::Published(p) = o else {
            panic!("{step:?}: {o:?}")
        };
        assert_eq!(p.version, if renamed { "1.0.2" } else { "1.0.1" });
        let m = Registry::new(dir.path()).model("m").unwrap();
        assert!(m.debris().is_empty(), "{step:?}: {:?}", m.debris());
        let report = verify(dir.path());
        assert!(
            report.is_clean() && report.notes.is_empty(),
            "{step:?}: {report:?}"
        );
    }
}

/// Retrains model `m` with a real command that trains until
/// `MMON_TEST_STOP_FILE` exists.
#[test]
fn helper_slow_trainer() {
    let Ok(root) = std::env::var("MMON_TEST_TRAIN_ROOT") else {
        return;
    };
    let cfg = config(
        r#"command = ["sh", "-c", "echo training; while [ ! -e \"$MMON_TEST_STOP_FILE\" ]; do sleep 0.02; done; echo w > \"$MMON_OUTPUT_DIR/model.bin\""]
           timeout = "60s""#,
    );
    let mut r = Retrainer::new(
        cfg,
        Path::new(&root),
        Box::new(ProcessRunner::new()),
        ClockMode::Replay,
    );
    let o = r.on_drift("m", None, &json!({}), t("2024-05-01T00:00:00Z"));
    println!("{}", o.to_json());
    assert!(matches!(o, RetrainOutcome::Published(_)), "{o:?}");
}

#[test]
fn two_processes_retraining_one_model_train_once() {
    let dir = tempfile::tempdir().unwrap();
    let stop = dir.path().join("stop");
    let registry = dir.path().join("registry");
    let mut child = helper(
        "helper_slow_trainer",
        &[
            ("MMON_TEST_TRAIN_ROOT", registry.to_str().unwrap()),
            ("MMON_TEST_STOP_FILE", stop.to_str().unwrap()),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let staging = registry.join("m/.staging");
    let start = Instant::now();
    while !std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the helper never started training"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let fake = FakeRunner::new(vec![FakeTrial::Ok(None)], "x");
    let jobs = fake.jobs();
    let mut r = Retrainer::new(
        config("command = [\"train\"]"),
        &registry,
        Box::new(fake),
        ClockMode::Replay,
    );
    let o = r.on_drift("m", None, &json!({}), t("2024-05-01T00:00:00Z"));
    match &o {
        RetrainOutcome::Skipped(Skip::Locked { holder: Some(h) }) => assert_eq!(h.pid, child.id()),
        other => panic!("expected a skip naming the helper, got {other:?}"),
    }
    assert!(
        jobs.lock().unwrap().is_empty(),
        "the second retrainer must start nothing"
    );

    std::fs::write(&stop, "").unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    assert!(out.contains("\"status\":\"published\""), "{out}");
    assert_eq!(versions(&registry, "m"), ["1.0.0"]);
    assert!(verify(&registry).is_clean());
}
