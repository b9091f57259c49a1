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

fn monitor(body: &mut Value, k: usize) -> &mut Value {
    &mut body["pipeline"]["models"][0]["versions"][0]["monitors"][k]["detector"]
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
    let kswin = &doc["body"]["pipeline"]["models"][0]["versions"][0]["monitors"][1]["detector"];
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
