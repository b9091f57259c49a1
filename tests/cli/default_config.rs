//! The embedded default configuration meets its two criteria on logs of
//! `mmon generate`: no drift window on stationary logs, and
//! every injected drift found by every default monitor within 2,000 of that
//! model's records. The 1M-record version of this is `bench/defaults.sh`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Mmon;

const EVENTS: &str = "300000";

/// Generates each log with `mmon generate` (in parallel, two at a time on
/// two cores); returns the log and truth paths.
fn generate(dir: &Path, runs: &[(&str, Vec<&str>)]) -> Vec<(PathBuf, PathBuf)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(name, args)| {
                let log = dir.join(format!("{name}.jsonl"));
                let truth = dir.join(format!("{name}.truth.json"));
                let mut argv = vec!["generate", "--events", EVENTS, "--out"];
                argv.push(log.to_str().unwrap());
                argv.push("--truth");
                argv.push(truth.to_str().unwrap());
                argv.extend(args.iter().copied());
                let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
                scope.spawn(move || {
                    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                    let out = Mmon::new(&argv).run();
                    assert_eq!(out.code, 0, "{}", out.stderr);
                    (log, truth)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn replay(log: &Path) -> Value {
    let out = Mmon::new(&["replay", log.to_str().unwrap(), "--format", "json"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

#[test]
fn stationary_logs_raise_no_window() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<(&str, Vec<&str>)> = ["11", "12", "13"]
        .iter()
        .map(|s| (*s, vec!["--drift-at", "none", "--seed", s]))
        .collect();
    for (log, _) in generate(dir.path(), &runs) {
        let report = replay(&log);
        let windows = report["windows"].as_array().unwrap();
        assert!(
            windows.iter().all(|w| w["severity"] != "drift"),
            "{}: {windows:#?}",
            log.display()
        );
    }
}

#[test]
fn every_default_drift_is_found_by_every_monitor_within_2000_records() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<(&str, Vec<&str>)> =
        vec![("d21", vec!["--seed", "21"]), ("d22", vec!["--seed", "22"])];
    let monitors = mmon::config::Config::embedded().monitors;
    for (log, truth) in generate(dir.path(), &runs) {
        let report = replay(&log);
        let windows = report["windows"].as_array().unwrap();
        let truth: Value = serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
        for drift in truth["drifts"].as_array().unwrap() {
            let model = drift["model_id"].as_str().unwrap();
            let first = drift["first_affected"]["model_event_index"]
                .as_u64()
                .unwrap();
            for m in &monitors {
                let delay = windows
                    .iter()
                    .filter(|w| {
                        w["model_id"] == model
                            && w["metric"] == m.metric.as_str()
                            && w["severity"] == "drift"
                    })
                    .filter_map(|w| w["detected"]["index"].as_u64())
                    .filter(|&d| d >= first)
                    .map(|d| d - first)
                    .min();
                assert!(
                    delay.is_some_and(|d| d <= 2000),
                    "{}: drift of {model} at its record {first}: {} ({}) found after {delay:?}",
                    log.display(),
                    m.metric,
                    m.detector.name()
                );
            }
            // Nothing fires on the model before its drift starts.
            let early: Vec<&Value> = windows
                .iter()
                .filter(|w| w["model_id"] == model && w["severity"] == "drift")
                .filter(|w| w["detected"]["index"].as_u64().unwrap() < first)
                .collect();
            let earlier_drifts = truth["drifts"].as_array().unwrap().iter().any(|d| {
                d["model_id"] == model
                    && d["first_affected"]["model_event_index"].as_u64().unwrap() < first
            });
            assert!(
                early.is_empty() || earlier_drifts,
                "false alarm before the drift: {early:#?}"
            );
        }
    }
}
