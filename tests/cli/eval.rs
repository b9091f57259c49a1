//! `mmon eval`: the embedded default scored on generated logs, hand-written
//! truths of every kind, grids ranked into a TOML block, and the mistakes
//! that are usage (2) or input (3) errors.

use std::path::Path;

use serde_json::Value;

use crate::{Mmon, accuracy_log};

/// `mmon generate --events N` into `dir`; returns the log and truth paths.
fn generate(dir: &Path, name: &str, events: &str, args: &[&str]) -> (String, String) {
    let log = dir.join(format!("{name}.jsonl")).display().to_string();
    let truth = format!("{log}.truth.json");
    let mut argv = vec!["generate", "--events", events, "--out", &log];
    argv.extend_from_slice(args);
    let out = Mmon::new(&argv).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    (log, truth)
}

fn eval(args: &[&str]) -> Value {
    let mut argv = vec!["eval"];
    argv.extend_from_slice(args);
    argv.extend(["--format", "json"]);
    let out = Mmon::new(&argv).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["schema"], "mmon.eval/1");
    doc
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_default_finds_every_generated_drift_without_a_false_alarm_and_beats_the_periodic_baseline() {
    let dir = tempfile::tempdir().unwrap();
    for seed in ["31", "32"] {
        let (log, truth) = generate(dir.path(), seed, "300000", &["--seed", seed]);
        let doc = eval(&[&log, "--truth", &truth]);
        assert_eq!(doc["records"], 300_000);
        assert_eq!(doc["truth"]["format"], "generated");
        let run = &doc["runs"][0];
        assert_eq!(run["config"], "<embedded default>");
        let monitors = run["monitors"].as_array().unwrap();
        assert_eq!(monitors.len(), 3);
        for m in monitors {
            let what = format!("seed {seed}: {} ({})", m["metric"], m["detector"]);
            // Two drifts, each a change of every metric of its model.
            assert_eq!(m["changes"], 2, "{what}");
            assert_eq!(f(&m["recall"]), 1.0, "{what}: {m:#}");
            assert_eq!(m["false_alarms"], 0, "{what}: {m:#}");
            assert!(f(&m["delay"]["p90"]) <= 2000.0, "{what}");
        }
        let total = f(&run["total"]["f1"]);
        let periodic = &run["baselines"]["periodic"];
        assert_eq!(total, 1.0);
        assert_eq!(f(&periodic["recall"]), 1.0, "fires every 2000: finds all");
        assert!(f(&periodic["f1"]) < total, "{periodic:#}");
        assert!(periodic["false_alarms"].as_u64().unwrap() > 100);
        let none = &run["baselines"]["none"];
        assert_eq!((&none["detected"], f(&none["f1"])), (&Value::from(0), 0.0));
    }
}

/// `mmon eval m.jsonl --config decay.toml ARGS` on a log whose accuracy
/// drops from 0.9 to 0.6 at record 2000 (line 2001, 2024-03-01T00:33:20Z),
/// a decay monitor that sees it within 50, and `truth` as t.jsonl.
fn eval_drop(truth: &str, args: &[&str]) -> crate::Outcome {
    let mut argv = vec!["eval", "m.jsonl", "--config", "decay.toml"];
    argv.extend_from_slice(args);
    Mmon::new(&argv)
        .file("m.jsonl", accuracy_log(4000, |i| if i < 2000 { 0.9 } else { 0.6 }))
        .file(
            "decay.toml",
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = { window = 50, threshold = 0.1 }\n",
        )
        .file("t.jsonl", truth)
        .run()
}

#[test]
fn a_hand_written_change_by_index_line_or_timestamp_scores_the_same() {
    let mut scores = Vec::new();
    for at in [
        "\"index\":2000",
        "\"line\":2001",
        "\"timestamp\":\"2024-03-01T00:33:20Z\"",
        "\"timestamp\":1709253200",
    ] {
        let truth = format!(
            "{{\"model_id\":\"m\",\"metric\":\"accuracy\",{at},\"before\":0.9,\"after\":0.6}}\n"
        );
        let out = eval_drop(&truth, &["--truth", "t.jsonl", "--format", "json"]);
        assert_eq!(out.code, 0, "{at}: {}", out.stderr);
        let doc = out.json();
        assert_eq!(doc["truth"]["format"], "jsonl");
        let m = doc["runs"][0]["monitors"][0].clone();
        assert_eq!(
            (&m["detected"], &m["false_alarms"]),
            (&Value::from(1), &Value::from(0)),
            "{at}: {m:#}"
        );
        assert!(f(&m["delay"]["median"]) < 50.0, "{at}: {m:#}");
        // The levels are the window's (decay's current window is still
        // mixed at its detection); that they are scored is what counts here.
        assert!(m["level_error_after"]["median"].is_number(), "{at}: {m:#}");
        scores.push(m);
    }
    assert!(scores.windows(2).all(|w| w[0] == w[1]), "{scores:#?}");
}

#[test]
fn a_change_of_a_model_the_log_lacks_is_missed_and_said_so() {
    let truth = "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"index\":2000}\n\
                 {\"model_id\":\"ghost\",\"metric\":\"accuracy\",\"index\":10}\n";
    let out = eval_drop(truth, &["--truth", "t.jsonl", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("t.jsonl:2: model \"ghost\" has no record"),
        "{}",
        out.stderr
    );
    let m = &out.json()["runs"][0]["monitors"][0];
    assert_eq!(
        (&m["changes"], &m["detected"], &m["missed"]),
        (&Value::from(2), &Value::from(1), &Value::from(1))
    );
    assert_eq!(m["streams"], 2);
    assert_eq!(f(&m["recall"]), 0.5);
}

#[test]
fn table_markdown_and_csv_show_the_monitors_and_both_baselines() {
    let truth = "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"index\":2000}\n";
    for format in ["table", "markdown", "csv"] {
        let out = eval_drop(truth, &["--truth", "t.jsonl", "--format", format]);
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);
        let text = &out.stdout;
        match format {
            "csv" => {
                let rows: Vec<&str> = text.lines().collect();
                assert!(rows[0].starts_with("rank,config,point,row,monitor,metric,"));
                assert_eq!(rows.len(), 5, "{text}");
                assert!(
                    rows[1].starts_with("1,decay.toml,,monitor,0,accuracy,decay,"),
                    "{text}"
                );
                assert!(
                    rows[3].contains(",baseline_none,") && rows[4].contains(",baseline_periodic,")
                );
            }
            _ => {
                assert!(text.contains("0 accuracy decay"), "{text}");
                assert!(
                    text.contains("baseline: none") && text.contains("baseline: every 2000"),
                    "{text}"
                );
                assert_eq!(
                    text.contains("| --- |") || text.contains("| ---"),
                    format == "markdown",
                    "{text}"
                );
            }
        }
    }
}

#[test]
fn a_grid_ranks_its_points_and_prints_the_best_as_a_monitor_block() {
    let truth = "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"index\":2000}\n";
    let out = eval_drop(
        truth,
        &[
            "--truth",
            "t.jsonl",
            "--grid",
            "monitor[0].params.threshold=0.5,0.1",
            "--grid",
            "monitor[0].params.window=400,50",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let ranks: Vec<u64> = runs.iter().map(|r| r["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, [1, 2, 3, 4]);
    // A drop of 0.3 never reaches a threshold of 0.5: those points miss.
    assert_eq!(runs[0]["point"]["monitor[0].params.threshold"], 0.1);
    assert_eq!(runs[0]["point"]["monitor[0].params.window"], 50);
    assert_eq!(f(&runs[3]["total"]["f1"]), 0.0);
    assert_eq!(
        doc["best_toml"],
        "[[monitor]]  # monitor[0]\nmetric    = \"accuracy\"\ndetector  = \"decay\"\nparams    = { threshold = 0.1, window = 50 }\n"
    );
}

#[test]
fn a_bad_grid_is_a_usage_error_naming_the_key() {
    for (grid, needle) in [
        (
            "monitor[0].params.window=50,0",
            "decay.toml: monitor[0].params.window: must be in 1..=10000000, got 0 (with --grid monitor[0].params.window=0)",
        ),
        (
            "monitor[3].params.window=50",
            "--grid \"monitor[3].params.window=50\": decay.toml: monitor[3]: the configuration has 1 [[monitor]] table (numbered from 0)",
        ),
        (
            "monitor[0].params.windw=5",
            "monitor[0].params.windw: unknown key",
        ),
        ("window", "expected PATH=V1,V2,..."),
    ] {
        let truth = "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"index\":2000}\n";
        let out = eval_drop(truth, &["--truth", "t.jsonl", "--grid", grid]);
        assert_eq!(out.code, 2, "{grid}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{grid}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_bad_truth_is_a_usage_error_naming_the_line() {
    for (truth, needle) in [
        (
            "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"index\":2000}\n{\"model_id\":\"m\",\"metric\":\"accuracy\",\"at\":5}\n",
            "t.jsonl:2: unknown key \"at\"",
        ),
        (
            "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"line\":0}\n",
            "t.jsonl:1: line: lines are numbered from 1",
        ),
        ("\n{oops\n", "t.jsonl:2: not a JSON object"),
        (
            "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"line\":5,\"file\":\"other.jsonl\"}\n",
            "t.jsonl:1: file \"other.jsonl\" is not one of the logs",
        ),
        (
            "{\"schema\":\"mmon.truth/1\",\"drifts\":{}}",
            "t.jsonl: line 1: invalid type",
        ),
    ] {
        let out = eval_drop(truth, &["--truth", "t.jsonl"]);
        assert_eq!(out.code, 2, "{truth}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{truth}: {}", out.stderr);
    }
}

#[test]
fn the_truth_of_another_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Every line of the one-model log is churn's; the other truth's drift is fraud's.
    let (log, _) = generate(dir.path(), "a", "20000", &["--models", "1"]);
    let (_, other) = generate(
        dir.path(),
        "b",
        "20000",
        &[
            "--models",
            "2",
            "--drift-at",
            "0.3",
            "--drift-models",
            "fraud",
        ],
    );
    let out = Mmon::new(&["eval", &log, "--truth", &other]).run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is this the truth of another log?"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_inputs_are_input_errors() {
    let truth = "{\"model_id\":\"m\",\"metric\":\"accuracy\",\"index\":2000}\n";
    let out = Mmon::new(&["eval", "nope.jsonl", "--truth", "t.jsonl"])
        .file("t.jsonl", truth)
        .run();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot open nope.jsonl"),
        "{}",
        out.stderr
    );
    let out = eval_drop(truth, &["--truth", "missing.jsonl"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot read the truth file missing.jsonl"),
        "{}",
        out.stderr
    );
    let out = Mmon::new(&["eval", "empty.jsonl", "--truth", "t.jsonl"])
        .file("empty.jsonl", "not a record\n")
        .file("t.jsonl", truth)
        .run();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("no usable record"), "{}", out.stderr);
}
