//! `mmon generate`: byte-identical logs for identical arguments, a truth that
//! points at the right lines, and flag mistakes as usage errors.

use serde_json::Value;

use crate::Mmon;

fn generate(args: &[&str]) -> (Vec<u8>, Value) {
    let mut argv = vec!["generate", "--out", "log.jsonl"];
    argv.extend_from_slice(args);
    let out = Mmon::new(&argv).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = std::fs::read(out.path("log.jsonl")).unwrap();
    let truth = serde_json::from_str(&out.read("log.jsonl.truth.json")).unwrap();
    (log, truth)
}

#[test]
fn identical_arguments_give_byte_identical_logs_and_truth() {
    let args = [
        "--events",
        "20000",
        "--seed",
        "9",
        "--malformed-rate",
        "0.01",
        "--canary",
        "churn:1.5.0:0.1",
        "--recover-after",
        "3000",
    ];
    let (a, ta) = generate(&args);
    let (b, tb) = generate(&args);
    assert!(a == b, "two runs with the same arguments differ");
    assert_eq!(ta, tb);
    let (c, _) = generate(&["--events", "20000", "--seed", "10"]);
    assert!(a != c);
    assert_eq!(ta["schema"], "mmon.truth/1");
    assert_eq!(ta["events"], 20000);
}

#[test]
fn stdout_and_a_file_hold_the_same_log() {
    let (file, _) = generate(&["--events", "3000", "--format", "csv"]);
    let out = Mmon::new(&["generate", "--events", "3000", "--format", "csv"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.as_bytes() == file.as_slice());
    assert!(out.stdout.starts_with("timestamp,model_id,model_version,"));
}

#[test]
fn the_truth_gives_the_line_index_and_rates_of_each_drift() {
    let (log, truth) = generate(&[
        "--events",
        "10000",
        "--drift-at",
        "0.4",
        "--drift-models",
        "fraud",
        "--drop",
        "0.1",
        "--latency-factor",
        "2",
        "--recover-after",
        "2000",
    ]);
    let text = String::from_utf8(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let drift = &truth["drifts"][0];
    assert_eq!(drift["model_id"], "fraud");
    assert_eq!(drift["p_correct_before"], 0.87);
    assert_eq!(drift["p_correct_after"], 0.77);
    assert_eq!(drift["latency_median_after_ms"], 24.0);
    assert_eq!(drift["recover_index"], 6000);
    for key in ["first_affected", "recovered"] {
        let at = &drift[key];
        let line = lines[at["line"].as_u64().unwrap() as usize - 1];
        let record: Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["model_id"], "fraud", "{key}");
        assert_eq!(record["timestamp"], at["timestamp"], "{key}");
        let earlier = lines[..at["line"].as_u64().unwrap() as usize - 1]
            .iter()
            .filter(|l| l.contains("\"model_id\":\"fraud\""))
            .count() as u64;
        assert_eq!(earlier, at["model_event_index"].as_u64().unwrap(), "{key}");
        assert!(
            at["event_index"].as_u64().unwrap() >= if key == "recovered" { 6000 } else { 4000 }
        );
    }
}

#[test]
fn malformed_lines_are_listed_in_the_truth_and_rejected_by_replay() {
    let out = Mmon::new(&[
        "generate",
        "--events",
        "5000",
        "--malformed-rate",
        "0.02",
        "--out",
        "bad.jsonl",
    ])
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let truth: Value = serde_json::from_str(&out.read("bad.jsonl.truth.json")).unwrap();
    let lines = truth["malformed"]["lines"].as_array().unwrap();
    let count = |f: &dyn Fn(&Value) -> bool| lines.iter().filter(|m| f(m)).count() as u64;
    let listed = count(&|_| true);
    assert_eq!(truth["malformed"]["count"].as_u64().unwrap(), listed);
    assert!(listed > 50, "{listed}");
    // Blank lines are skipped, and a line that lacks only a metric or the
    // model id is still a record; every other malformed line is a bad record.
    let blank = count(&|m| m["kind"] == "empty_line");
    let still_records = count(&|m| m["kind"] == "missing_field" && m["field"] != "timestamp");
    let log = out.path("bad.jsonl");
    let replay = Mmon::new(&["replay", log.to_str().unwrap(), "--format", "json"]).run();
    assert!(replay.code == 0 || replay.code == 1, "{}", replay.stderr);
    let summary = &replay.json()["summary"];
    assert_eq!(summary["records"].as_u64().unwrap(), 5000 + still_records);
    assert_eq!(
        summary["rejected"].as_u64().unwrap(),
        listed - blank - still_records
    );
}

#[test]
fn a_bad_flag_value_is_a_usage_error_naming_the_flag() {
    for (args, needle) in [
        (vec!["--drift-models", "nope"], "--drift-models"),
        (vec!["--drop", "0.1,0.2,0.3"], "--drop"),
        (vec!["--canary", "churn:1.5.0"], "--canary"),
        (vec!["--drift-at", "1.5"], "--drift-at"),
        (vec!["--start", "yesterday"], "--start"),
    ] {
        let mut argv = vec!["generate", "--events", "10"];
        argv.extend(args);
        let out = Mmon::new(&argv).run();
        assert_eq!(out.code, 2, "{argv:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{argv:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_documents_every_option() {
    let out = Mmon::new(&["generate", "--help"]).run();
    assert_eq!(out.code, 0);
    for flag in [
        "--events",
        "--format",
        "--out",
        "--truth",
        "--seed",
        "--models",
        "--drift-at",
        "--drift-models",
        "--drop",
        "--latency-factor",
        "--drift-width",
        "--recover-after",
        "--canary",
        "--acc-window",
        "--start",
        "--interval-ms",
        "--jitter-ms",
        "--malformed-rate",
    ] {
        assert!(out.stdout.contains(flag), "{flag} missing from --help");
    }
}
