//! End to end against river: `mmon replay` with one monitor per detector
//! (`merge_gap = 0`, `direction = "both"`) reports drift windows detected at
//! exactly the positions river 0.26.1 flags on the same values
//! (`fixtures/parity/*.json`, written by `tests/parity/make_expected*.py`).

use std::path::Path;

use serde_json::Value;

use crate::Mmon;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/parity")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The values of a stream: a list of numbers, or a string of digits over a
/// denominator (the 0/1 streams).
fn values(stream: &Value) -> Vec<f64> {
    match &stream["values"] {
        Value::Array(a) => a.iter().map(|v| v.as_f64().unwrap()).collect(),
        Value::String(s) => {
            let d = stream["denominator"].as_f64().unwrap_or(1.0);
            s.bytes().map(|b| f64::from(b - b'0') / d).collect()
        }
        other => panic!("unexpected values {other}"),
    }
}

fn stream<'a>(doc: &'a Value, name: &str) -> &'a Value {
    match &doc["streams"] {
        Value::Object(m) => &m[name],
        Value::Array(a) => a.iter().find(|s| s["name"] == name).unwrap(),
        _ => panic!("no streams"),
    }
}

/// Replays `values` as the metric `x` through `detector` and returns the
/// `detected.index` of every drift window.
fn detected(detector: &str, values: &[f64]) -> Vec<u64> {
    let log: String = values
        .iter()
        .enumerate()
        .map(|(i, x)| format!("{{\"timestamp\":{i},\"x\":{x}}}\n"))
        .collect();
    let config = format!(
        "[[monitor]]\nmetric = \"x\"\ndetector = \"{detector}\"\ndirection = \"both\"\n[report]\nmerge_gap = 0\n"
    );
    let out = Mmon::new(&[
        "replay", "x.jsonl", "--config", "c.toml", "--format", "json",
    ])
    .file("x.jsonl", log)
    .file("c.toml", config)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.windows()
        .iter()
        .filter(|w| w["severity"] == "drift")
        .map(|w| w["detected"]["index"].as_u64().unwrap())
        .collect()
}

/// Every case of the fixture that river ran with `params` on each stream.
fn check(file: &str, detector: &str, params: Value) {
    let doc = fixture(file);
    let mut checked = 0;
    for case in doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["params"] == params)
    {
        let name = case["stream"].as_str().unwrap();
        let values = values(stream(&doc, name));
        if values.len() > 20_000 {
            continue; // the 100k stationary stream: covered by the unit tests
        }
        let expected: Vec<u64> = case["drifts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(
            detected(detector, &values),
            expected,
            "{detector} on {name}"
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} streams checked for {detector}"
    );
}

#[test]
fn adwin_windows_are_rivers_drifts() {
    check("adwin.json", "adwin", serde_json::json!({}));
}

#[test]
fn page_hinkley_windows_are_rivers_drifts() {
    // river's default mode is "both", which is what direction "both" gives.
    check("page_hinkley.json", "page-hinkley", serde_json::json!({}));
}

#[test]
fn ddm_and_eddm_windows_are_rivers_drifts() {
    check("ddm.json", "ddm", serde_json::json!({}));
    check("eddm.json", "eddm", serde_json::json!({}));
}

#[test]
fn hddm_windows_are_rivers_two_sided_drifts() {
    // Direction "both" runs river's two-sided test.
    check(
        "hddm_a.json",
        "hddm-a",
        serde_json::json!({"two_sided_test": true}),
    );
    check(
        "hddm_w.json",
        "hddm-w",
        serde_json::json!({"two_sided_test": true}),
    );
}
