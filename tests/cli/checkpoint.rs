//! A checkpoint whose checksum is right but whose content is not a state
//! this configuration can have is corrupt: exit 5, never a panic (SPEC §6).

use serde_json::{Value, json};

use crate::{Mmon, Outcome, accuracy_log};

const CONFIG: &str = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"threshold\"\n\
                      params = { statistic = \"p90\", window = 20, above = 2.0 }\n\
                      [[monitor]]\nmetric = \"accuracy\"\ndetector = \"kswin\"\n\
                      params = { window_size = 40, stat_size = 10 }\n";

/// A first `watch --once` that leaves a checkpoint of both detectors.
fn first_run() -> Outcome {
    let out = Mmon::new(&[
        "watch",
        "app.jsonl",
        "--once",
        "--from-start",
        "--state",
        "state.json",
        "--config",
        "c.toml",
        "--format",
        "jsonl",
    ])
    .file(
        "app.jsonl",
        accuracy_log(100, |i| 0.8 + (i % 7) as f64 / 100.0),
    )
    .file("c.toml", CONFIG)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out
}

/// Edits the checkpoint's body with `edit` and signs it again, as its
/// checksum is computed (sha256 of the body's compact, sorted JSON).
fn tamper(out: &Outcome, edit: impl FnOnce(&mut Value)) {
    let mut doc: Value = serde_json::from_str(&out.read("state.json")).unwrap();
    edit(&mut doc["body"]);
    let signed = mmon::checkpoint::sha256_hex(doc["body"].to_string().as_bytes());
    doc["sha256"] = signed.into();
    std::fs::write(out.path("state.json"), doc.to_string()).unwrap();
}

fn again(out: Outcome) -> Outcome {
    out.then(&[
        "watch",
        "app.jsonl",
        "--once",
        "--state",
        "state.json",
        "--config",
        "c.toml",
        "--format",
        "jsonl",
    ])
    .run()
}

/// The saved fields of monitor `k`'s detector, tagged with its name.
fn monitor(body: &mut Value, k: usize) -> &mut Value {
    let name = ["threshold", "kswin"][k];
    &mut body["pipeline"]["models"][0]["versions"][0]["monitors"][k]["detector"][name]
}

#[test]
fn a_resigned_checkpoint_with_a_threshold_window_that_does_not_fit_is_exit_5_not_a_panic() {
    let out = first_run();
    tamper(&out, |body| monitor(body, 0)["sorted"] = json!([0.5]));
    let out = again(out);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains("state.json: not an mmon checkpoint")
            && out.stderr.contains("monitor[0] (threshold on accuracy)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn a_resigned_checkpoint_with_a_kswin_window_longer_than_configured_is_exit_5() {
    let out = first_run();
    tamper(&out, |body| {
        monitor(body, 1)["window"] = json!(vec![0.5; 500])
    });
    let out = again(out);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("monitor[1] (kswin on accuracy): 500 values in a window of 40"),
        "{}",
        out.stderr
    );
}

#[test]
fn saved_detector_parameters_do_not_override_the_configuration() {
    // Once "capacity overflow": stat_size > window_size in the checkpoint.
    let out = first_run();
    tamper(&out, |body| {
        monitor(body, 1)["config"]["stat_size"] = json!(200);
        monitor(body, 1)["config"]["window_size"] = json!(100);
    });
    std::fs::OpenOptions::new()
        .append(true)
        .open(out.path("app.jsonl"))
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(accuracy_log(200, |_| 0.8).as_bytes())
        })
        .unwrap();
    let out = again(out);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.read("state.json")).unwrap();
    let kswin =
        &doc["body"]["pipeline"]["models"][0]["versions"][0]["monitors"][1]["detector"]["kswin"];
    assert_eq!(kswin["config"]["stat_size"], 10, "{kswin}");
}

#[test]
fn a_resigned_checkpoint_with_impossible_counts_is_exit_5() {
    let out = first_run();
    tamper(&out, |body| {
        body["pipeline"]["counts"]["records"] = json!(u64::MAX)
    });
    let out = again(out);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("beyond any log"), "{}", out.stderr);
}

/// A checkpoint file as an mmon of another version wrote it: `schema` and
/// a `body` whose pipeline is a format-2 state (detector fields untagged),
/// signed as mmon signs, so that only the version stands in the way.
fn old_checkpoint(schema: &str) -> String {
    let body = json!({
        "config": "written by an older mmon",
        "files": [],
        "pipeline": {
            "format": 2,
            "next_window": 0,
            "counts": {"records": 5, "out_of_order": 0, "windows_warning": 0, "windows_drift": 0},
            "retired_streams": 0,
            "files": ["app.jsonl"],
            "models": [{
                "id": "default",
                "last_time": 0,
                "records": 5,
                "current": 0,
                "seen_current": 0,
                "seen": [],
                "versions": [{
                    "version": null,
                    "last_record": 5,
                    "metrics": [[5, []]],
                    "monitors": [{
                        "detector": {"config": {"window": 20}, "values": [0.8], "sorted": [0.8]},
                        "open": null,
                        "segment": {},
                        "episode": null
                    }]
                }]
            }]
        }
    });
    let sha256 = mmon::checkpoint::sha256_hex(body.to_string().as_bytes());
    json!({"schema": schema, "sha256": sha256, "body": body}).to_string()
}

/// Runs `watch --once` on a checkpoint of another version, which must be
/// refused (exit 5) with `what` and the way out, and left as it was; then
/// with `--reset-state`, which starts afresh and writes the current schema.
fn refused_with_the_way_out(schema: &str, what: &str) {
    let old = old_checkpoint(schema);
    let out = Mmon::new(&[
        "watch",
        "app.jsonl",
        "--once",
        "--from-start",
        "--state",
        "state.json",
        "--config",
        "c.toml",
        "--format",
        "jsonl",
    ])
    .file("app.jsonl", accuracy_log(30, |_| 0.8))
    .file("c.toml", CONFIG)
    .file("state.json", &old)
    .run();
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains(what) && out.stderr.contains("pass --reset-state"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(out.read("state.json"), old);
    let out = out
        .then(&[
            "watch",
            "app.jsonl",
            "--once",
            "--from-start",
            "--state",
            "state.json",
            "--reset-state",
            "--config",
            "c.toml",
            "--format",
            "jsonl",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.read("state.json")).unwrap();
    assert_eq!(doc["schema"], mmon::checkpoint::SCHEMA);
    assert_eq!(
        doc["body"]["pipeline"]["format"],
        mmon::pipeline::STATE_FORMAT
    );
}

#[test]
fn a_checkpoint_of_schema_1_is_exit_5_with_the_way_out() {
    refused_with_the_way_out(
        "mmon.checkpoint/1",
        "state.json: checkpoint format \"mmon.checkpoint/1\" is not supported (expected \"mmon.checkpoint/2\")",
    );
}

#[test]
fn a_current_envelope_around_a_pipeline_of_format_2_is_exit_5_with_the_way_out() {
    refused_with_the_way_out(
        mmon::checkpoint::SCHEMA,
        "state.json: pipeline state format 2 is not this mmon's (3)",
    );
}
