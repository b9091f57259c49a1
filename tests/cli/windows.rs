//! Drift windows against the truth of `mmon generate` logs (SPEC §3, §5):
//! version streams, onsets, levels, episodes and their ends.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Mmon;

/// Generates a log with `mmon generate ARGS` into `dir`; returns the log
/// path and its truth.
fn generate(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, Value) {
    let log = dir.join(format!("{name}.jsonl"));
    let mut argv = vec!["generate", "--out", log.to_str().unwrap()];
    argv.extend_from_slice(args);
    let out = Mmon::new(&argv).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let truth = std::fs::read_to_string(dir.join(format!("{name}.jsonl.truth.json"))).unwrap();
    (log, serde_json::from_str(&truth).unwrap())
}

fn replay(log: &Path, extra: &[&str]) -> Value {
    let mut argv = vec!["replay", log.to_str().unwrap(), "--format", "json"];
    argv.extend_from_slice(extra);
    let out = Mmon::new(&argv).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

/// The drift windows of `model`'s `version` on `metric`.
fn windows<'a>(report: &'a Value, model: &str, version: &str, metric: &str) -> Vec<&'a Value> {
    report["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| {
            w["model_id"] == model
                && w["model_version"] == version
                && w["metric"] == metric
                && w["severity"] == "drift"
        })
        .collect()
}

#[test]
fn a_canary_keeps_its_own_streams_and_the_stable_drift_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth) = generate(
        dir.path(),
        "canary",
        &[
            "--events",
            "120000",
            "--seed",
            "5",
            "--drift-at",
            "0.5",
            "--drift-models",
            "churn",
            "--canary",
            "churn:1.5.0:0.1",
        ],
    );
    let report = replay(&log, &[]);
    let drift = &truth["drifts"][0];
    let first = drift["first_affected"]["version_event_index"]
        .as_u64()
        .unwrap();
    for metric in ["correct", "latency_ms"] {
        let found = windows(&report, "churn", "1.4.2", metric);
        assert!(
            found.iter().any(|w| {
                let d = w["detected"]["index"].as_u64().unwrap();
                d >= first && d - first <= 2000
            }),
            "{metric}: {found:#?}"
        );
    }
    let all = report["windows"].as_array().unwrap();
    let reset: Vec<&Value> = all.iter().filter(|w| w["end_reason"] == "reset").collect();
    assert!(reset.is_empty(), "{reset:#?}");
    // The summary lists both versions of churn, each with its first line.
    let versions = report["summary"]["versions"].as_array().unwrap();
    let churn: Vec<&Value> = versions
        .iter()
        .filter(|v| v["model_id"] == "churn")
        .collect();
    assert_eq!(churn.len(), 2, "{versions:#?}");
    let counts = &truth["models"][0]["versions"];
    for (seen, want) in churn.iter().zip(counts.as_array().unwrap()) {
        assert_eq!(seen["model_version"], want["model_version"]);
        assert_eq!(seen["records"], want["events"]);
        assert!(seen["first"]["line"].as_u64() < seen["last"]["line"].as_u64());
    }
    // 3 models × 3 metrics, and churn's canary has its own 3.
    assert_eq!(report["summary"]["streams"], 12);
}
