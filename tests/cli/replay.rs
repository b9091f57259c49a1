//! `mmon replay`, `init`, `completions` and `man`.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::{FIXTURES, Mmon, accuracy_log, point};

// ---- replay on the shipped fixtures -------------------------------------

#[test]
fn replay_finds_the_churn_decay_and_the_fraud_latency_rise_at_exact_positions() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--format", "json"])
        .fixture("metrics.jsonl")
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let windows = out.windows();
    // In the order they opened: churn's correct (ADWIN) and accuracy
    // (decay) windows, then fraud's latency (CUSUM).
    let what: Vec<(&str, &str)> = windows
        .iter()
        .map(|w| {
            (
                w["model_id"].as_str().unwrap(),
                w["metric"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        what,
        [
            ("churn", "correct"),
            ("churn", "accuracy"),
            ("fraud", "latency_ms")
        ]
    );
    // The drop hits churn at its record 1622 (truth file). ADWIN on the 0/1
    // field cuts its window at 2495 (the window it keeps starts at 256); the
    // change point of the values is 1584, and churn stays down to the end.
    let w = &windows[0];
    assert_eq!(w["detector"]["name"], "adwin");
    assert_eq!(w["start"]["index"], 1584);
    assert_eq!(w["end_reason"], "eof");
    assert_eq!(w["end"]["index"], 4025);
    assert_eq!(
        w["detected"],
        point(2495, "metrics.jsonl", 4885, "2024-03-01T00:08:06.555Z")
    );
    // The truth: 0.91 and 0.81.
    assert!((w["before"].as_f64().unwrap() - 0.924).abs() < 1e-3);
    assert!((w["after"].as_f64().unwrap() - 0.818).abs() < 1e-3);
    let w = &windows[1];
    assert_eq!(w["model_id"], "churn");
    assert_eq!(w["model_version"], "1.4.2");
    assert_eq!(w["metric"], "accuracy");
    assert_eq!(w["severity"], "drift");
    assert_eq!(
        w["detector"],
        serde_json::json!({"name": "decay", "params": {"window": 1500, "threshold": 0.05}})
    );
    // The logged rolling accuracy's change point, 18 records after the
    // drop: decay's own estimate (the first value of its window) was 999.
    assert_eq!(
        w["start"],
        point(1640, "metrics.jsonl", 3242, "2024-03-01T00:05:22.671Z")
    );
    assert_eq!(
        w["detected"],
        point(2498, "metrics.jsonl", 4900, "2024-03-01T00:08:08.090Z")
    );
    assert_eq!(
        w["end"],
        point(4025, "metrics.jsonl", 8000, "2024-03-01T00:13:16.925Z")
    );
    assert_eq!(w["end_reason"], "eof");
    assert_eq!(w["events"], 2386);
    assert_eq!(w["detections"], 1);
    assert_eq!(w["levels"], "mean");
    assert!((w["change"].as_f64().unwrap() + 0.1053).abs() < 1e-4);
    // The fixture's latency rise hits fraud at its record 1830 (truth file):
    // CUSUM on log latency sees it 34 records later and puts the start at 1834.
    let w = &windows[2];
    assert_eq!(
        (w["model_id"].as_str(), w["metric"].as_str()),
        (Some("fraud"), Some("latency_ms"))
    );
    assert_eq!(w["detector"]["name"], "cusum");
    assert_eq!(
        w["start"],
        point(1834, "metrics.jsonl", 5612, "2024-03-01T00:09:19.655Z")
    );
    assert_eq!(
        w["detected"],
        point(1864, "metrics.jsonl", 5684, "2024-03-01T00:09:26.851Z")
    );
    // Geometric means of the latencies: the truth's medians are 12 and 21.6.
    assert_eq!(w["levels"], "geometric_mean");
    assert!((w["before"].as_f64().unwrap() - 12.06).abs() < 0.01);
    assert!((w["after"].as_f64().unwrap() - 21.44).abs() < 0.01);
    let s = &out.json()["summary"];
    let counts = (
        s["records"].as_u64(),
        s["rejected"].as_u64(),
        s["streams"].as_u64(),
    );
    assert_eq!(counts, (Some(8000), Some(0), Some(9)));
    assert_eq!(s["windows"], serde_json::json!({"warning": 0, "drift": 3}));
}

#[test]
fn jsonl_csv_gzip_and_stdin_give_the_same_windows() {
    let key = |w: &Value, line_shift: u64| {
        let p = |p: &Value| {
            (
                p["index"].as_u64(),
                p["line"].as_u64().map(|l| l - line_shift),
                p["timestamp"].clone(),
            )
        };
        (
            w["model_id"].clone(),
            w["severity"].clone(),
            p(&w["start"]),
            p(&w["detected"]),
            p(&w["end"]),
            w["before"].clone(),
            w["after"].clone(),
        )
    };
    let jsonl = Mmon::new(&["replay", "metrics.jsonl"])
        .fixture("metrics.jsonl")
        .run();
    let expected: Vec<_> = jsonl.windows().iter().map(|w| key(w, 0)).collect();
    assert!(!expected.is_empty());

    let csv = Mmon::new(&["replay", "metrics.csv"])
        .fixture("metrics.csv")
        .run();
    // CSV lines are one further down: the header is line 1.
    assert_eq!(
        csv.windows().iter().map(|w| key(w, 1)).collect::<Vec<_>>(),
        expected
    );

    let raw = std::fs::read(Path::new(FIXTURES).join("metrics.jsonl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let gzipped = Mmon::new(&["replay", "metrics.jsonl.gz"])
        .file("metrics.jsonl.gz", &gz)
        .run();
    assert_eq!(
        gzipped
            .windows()
            .iter()
            .map(|w| key(w, 0))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(gzipped.windows()[0]["detected"]["file"], "metrics.jsonl.gz");

    let stdin = Mmon::new(&["replay", "-"]).stdin(raw).run();
    assert_eq!(
        stdin
            .windows()
            .iter()
            .map(|w| key(w, 0))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(stdin.windows()[0]["detected"]["file"], "<stdin>");

    let gz_stdin = Mmon::new(&["replay", "-"]).stdin(gz).run();
    assert_eq!(
        gz_stdin
            .windows()
            .iter()
            .map(|w| key(w, 0))
            .collect::<Vec<_>>(),
        expected
    );
}

#[test]
fn stationary_log_is_quiet_and_exits_zero_even_with_fail_on() {
    let out = Mmon::new(&["replay", "stationary.jsonl", "--fail-on", "warning"])
        .fixture("stationary.jsonl")
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.windows().is_empty());
    assert_eq!(out.stderr, "");
}

#[test]
fn fail_on_drift_exits_one_and_the_config_can_say_so_too() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--fail-on", "drift"])
        .fixture("metrics.jsonl")
        .run();
    assert_eq!(out.code, 1);
    let config =
        mmon::config::DEFAULT_TOML.replace("fail_on   = \"none\"", "fail_on   = \"drift\"");
    let out = Mmon::new(&["replay", "metrics.jsonl"])
        .fixture("metrics.jsonl")
        .file("mmon.toml", config)
        .run();
    assert_eq!(out.code, 1);
    let out = Mmon::new(&["replay", "metrics.jsonl", "--fail-on", "none"])
        .fixture("metrics.jsonl")
        .file(
            "mmon.toml",
            mmon::config::DEFAULT_TOML.replace("\"none\"", "\"drift\""),
        )
        .run();
    assert_eq!(out.code, 0, "the flag overrides the file");
}

// ---- the original decay scenario ----------------------------------------

/// Accuracy 0.95 falling by 0.002 per record, with decay's own defaults
/// (window 50, threshold 0.05). The reference is the mean of values 0..=49;
/// at index i the current mean is 0.002 * (i - 49) lower, which reaches 0.05
/// at i = 74, so the first detection is at 74 with the change starting at the
/// first value of that window, 25. The reference is then learned again from
/// 75..=124 and the next detection is at 149, and so on every 75 records
/// until the input ends at index 299 (detections 74, 149, 224, 299), all in
/// one episode that never recovers. Its start is where the values 0..=74
/// split best into two levels: 38, the middle of the ramp, with 0.913 the
/// mean before it.
#[test]
fn linear_accuracy_decay_gives_one_window_where_the_rule_says() {
    let config = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n";
    let out = Mmon::new(&[
        "replay",
        "acc.jsonl",
        "--config",
        "decay.toml",
        "--fail-on",
        "drift",
    ])
    .file("acc.jsonl", accuracy_log(300, |i| 0.95 - 0.002 * i as f64))
    .file("decay.toml", config)
    .run();
    assert_eq!(out.code, 1);
    let windows = out.windows();
    assert_eq!(windows.len(), 1);
    let w = &windows[0];
    assert_eq!(
        w["start"],
        point(38, "acc.jsonl", 39, "2024-03-01T00:00:38Z")
    );
    assert_eq!(
        w["detected"],
        point(74, "acc.jsonl", 75, "2024-03-01T00:01:14Z")
    );
    assert_eq!(w["end"]["index"], 299);
    assert_eq!(w["end_reason"], "eof");
    assert_eq!(w["detections"], 4);
    assert_eq!(w["events"], 262);
    assert!((w["before"].as_f64().unwrap() - 0.913).abs() < 1e-9);
    assert!((w["after"].as_f64().unwrap() - 0.613).abs() < 1e-9);
}

#[test]
fn merge_gap_zero_makes_every_detection_its_own_window() {
    let config =
        "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n[report]\nmerge_gap = 0\n";
    let out = Mmon::new(&["replay", "acc.jsonl", "--config", "decay.toml"])
        .file("acc.jsonl", accuracy_log(300, |i| 0.95 - 0.002 * i as f64))
        .file("decay.toml", config)
        .run();
    let detected: Vec<u64> = out
        .windows()
        .iter()
        .map(|w| w["detected"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(detected, vec![74, 149, 224, 299]);
    let reasons: Vec<String> = out
        .windows()
        .iter()
        .map(|w| w["end_reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, vec!["quiet", "quiet", "quiet", "eof"]);
}

#[test]
fn a_retired_version_closes_its_window_with_reset() {
    let mut log = accuracy_log(100, |i| 0.95 - 0.002 * i as f64);
    log.push_str("{\"timestamp\":1709251300,\"model_id\":\"m\",\"model_version\":\"1.0.1\",\"accuracy\":0.9}\n");
    // A version is retired after `version_idle` records of its model
    // without one of its own; until then its window stays open.
    for (idle, reason) in [(1, "reset"), (2, "eof")] {
        let config = format!(
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n[report]\nversion_idle = {idle}\n"
        );
        let out = Mmon::new(&["replay", "acc.jsonl", "--config", "d.toml"])
            .file("acc.jsonl", &log)
            .file("d.toml", config)
            .run();
        let w = &out.windows()[0];
        assert_eq!(w["end_reason"], reason);
        assert_eq!(w["model_version"], "1.0.0");
        let versions = &out.json()["summary"]["versions"];
        assert_eq!(versions[0]["records"], 100);
        assert_eq!(versions[1]["model_version"], "1.0.1");
        assert_eq!(versions[1]["first"]["line"], 101);
    }
}

// ---- output formats ------------------------------------------------------

#[test]
fn json_report_matches_its_snapshot() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--format", "json"])
        .fixture("metrics.jsonl")
        .run();
    // The document as written, key order included; timing fields masked.
    let masked: Vec<String> = out
        .stdout
        .lines()
        .map(|l| match l.trim_start().split_once(": ") {
            Some(("\"elapsed_s\"" | "\"records_per_s\"", _)) => {
                format!("{}: [timing],", l.split_once(':').unwrap().0)
            }
            _ => l.to_string(),
        })
        .collect();
    insta::assert_snapshot!("report_metrics_jsonl", masked.join("\n"));
}

#[test]
fn jsonl_streams_events_and_puts_the_summary_on_stderr() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--format", "jsonl"])
        .fixture("metrics.jsonl")
        .run();
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    // Three episodes, each still open at the end of the fixture.
    assert_eq!(
        events,
        vec!["opened", "opened", "opened", "closed", "closed", "closed"]
    );
    assert_eq!(lines[0]["end_reason"], Value::Null);
    assert_eq!(lines[3]["end_reason"], "eof");
    assert_eq!(lines[0]["metric"], lines[3]["metric"]);
    let summary: Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert_eq!(summary["summary"]["records"], 8000);
}

#[test]
fn csv_and_table_formats_render_the_window() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--format", "csv"])
        .fixture("metrics.jsonl")
        .run();
    let mut rows = csv::Reader::from_reader(out.stdout.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().nth(1).unwrap().unwrap();
    let get = |name: &str| row[headers.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(get("start_index"), "1640");
    assert_eq!(get("detected_line"), "4900");
    assert_eq!(get("detected_timestamp"), "2024-03-01T00:08:08.090Z");
    assert_eq!(get("end_reason"), "eof");
    assert_eq!(get("levels"), "mean");

    let out = Mmon::new(&["replay", "metrics.jsonl", "--format", "table"])
        .fixture("metrics.jsonl")
        .run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "start times in UTC on 2024-03-01");
    assert_eq!(
        lines[3],
        "O churn 1.4.2  accuracy    0.923 → 0.818 (−11.4%)   00:05:22  metrics.jsonl:3242"
    );
    assert_eq!(
        lines[4],
        "O fraud 3.0.1  latency_ms  12.06 → 21.44* (+77.8%)  00:09:19  metrics.jsonl:5612"
    );
    // Every line fits an 80-column terminal, and the legend explains the
    // state letters and the star.
    assert!(
        lines.iter().all(|l| l.chars().count() <= 80),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("O open (still changed at the end of input)")
    );
    assert!(out.stdout.contains("* geometric means"));
    assert!(out.stdout.contains("8000 records from 1 file"));
}

#[test]
fn output_flag_writes_the_report_to_a_file_and_nothing_to_stdout() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--output", "report.json"])
        .fixture("metrics.jsonl")
        .run();
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "");
    let report: Value = serde_json::from_str(&out.read("report.json")).unwrap();
    assert_eq!(report["schema"], "mmon.report/1");
}

// ---- bad records ---------------------------------------------------------

#[test]
fn every_bad_record_is_counted_shown_and_kept_with_its_raw_line() {
    let out = Mmon::new(&[
        "replay",
        "bad.jsonl",
        "bad.csv",
        "--rejects",
        "rejects.jsonl",
    ])
    .fixture("bad.jsonl")
    .fixture("bad.csv")
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rejects: Vec<Value> = out
        .read("rejects.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let found: Vec<(String, u64, String)> = rejects
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["line"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        (
            "bad.jsonl",
            2,
            "not a JSON object: expected ident at line 1 column 2",
        ),
        (
            "bad.jsonl",
            3,
            "field \"accuracy\": expected a finite number, found \"n/a\"",
        ),
        (
            "bad.jsonl",
            4,
            "not a JSON object: expected value at line 1 column 63",
        ),
        (
            "bad.jsonl",
            5,
            "field \"timestamp\": missing (every record needs a timestamp)",
        ),
        (
            "bad.jsonl",
            6,
            "field \"timestamp\": expected an RFC 3339 timestamp, \"YYYY-MM-DD HH:MM:SS\" or epoch seconds, found \"2024-13-45T25:61:00.000Z\"",
        ),
        (
            "bad.jsonl",
            7,
            "field \"accuracy\": expected a number in [0, 1], found 1.37",
        ),
        ("bad.jsonl", 8, "invalid UTF-8 at byte 49 of the line"),
        (
            "bad.jsonl",
            9,
            "not a JSON object: EOF while parsing an object at line 1 column 65",
        ),
        (
            "bad.jsonl",
            10,
            "not a JSON object: invalid type: sequence, expected a JSON object at line 1 column 0",
        ),
        (
            "bad.jsonl",
            15,
            "field \"model_id\": expected a string, found 7",
        ),
        ("bad.csv", 3, "expected 4 columns, found 3"),
        (
            "bad.csv",
            4,
            "field \"accuracy\": expected a finite number, found \"n/a\"",
        ),
        ("bad.csv", 5, "expected 4 columns, found 5"),
        (
            "bad.csv",
            6,
            "field \"timestamp\": missing (every record needs a timestamp)",
        ),
        (
            "bad.csv",
            7,
            "field \"timestamp\": expected an RFC 3339 timestamp, \"YYYY-MM-DD HH:MM:SS\" or epoch seconds, found \"01/03/2024 00:00:04\"",
        ),
    ];
    let expect: Vec<(String, u64, String)> = expect
        .iter()
        .map(|(f, l, e)| (f.to_string(), *l, e.to_string()))
        .collect();
    assert_eq!(found, expect);
    assert_eq!(rejects[0]["raw"], "not json at all");
    assert_eq!(rejects[0]["offset"], 70);
    // The first ten on stderr, then a count.
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "bad.jsonl:2: not a JSON object: expected ident at line 1 column 2"
    );
    assert_eq!(lines.len(), 13, "{}", out.stderr);
    assert_eq!(
        lines[10],
        "mmon: 5 more bad records not shown (15 in all; all are in rejects.jsonl)"
    );
    // Then the end-of-run warnings: the two files overlap in time, and no
    // record has the default config's `correct`.
    assert!(
        lines[11].ends_with("bad.csv overlaps bad.jsonl in time: 2 of its records are older than the last record of their model in bad.jsonl (counted as out of order)"),
        "{}",
        lines[11]
    );
    assert!(
        lines[12].contains("no record had the monitored metric \"correct\""),
        "{}",
        lines[12]
    );
    let s = &out.json()["summary"];
    // Good records: BOM line, CRLF line, no-accuracy line, epoch+bool line and
    // the unterminated last line of bad.jsonl; two rows of bad.csv.
    assert_eq!(
        (s["records"].as_u64(), s["rejected"].as_u64()),
        (Some(7), Some(15))
    );
    assert_eq!(
        s["inputs"][0],
        serde_json::json!({"path": "bad.jsonl", "bytes": 861, "records": 5, "rejected": 10})
    );
}

#[test]
fn on_bad_record_fail_stops_at_the_first_with_exit_3() {
    let out = Mmon::new(&[
        "replay",
        "bad.jsonl",
        "--on-bad-record",
        "fail",
        "--rejects",
        "r.jsonl",
    ])
    .fixture("bad.jsonl")
    .run();
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "mmon: bad.jsonl:2: not a JSON object: expected ident at line 1 column 2 (--on-bad-record fail)\n"
    );
    assert_eq!(out.read("r.jsonl").lines().count(), 1);
}

#[test]
fn an_overlong_line_is_rejected_without_stopping_the_file() {
    let mut log = accuracy_log(3, |_| 0.9);
    log.push_str(&format!(
        "{{\"timestamp\":1,\"pad\":\"{}\"}}\n",
        "x".repeat(5000)
    ));
    log.push_str(&accuracy_log(2, |_| 0.9));
    let config = "[input]\nmax_line_bytes = 1024\n[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n";
    let out = Mmon::new(&[
        "replay",
        "a.jsonl",
        "--config",
        "c.toml",
        "--rejects",
        "r.jsonl",
    ])
    .file("a.jsonl", log)
    .file("c.toml", config)
    .run();
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stderr,
        "a.jsonl:4: line of 5024 bytes is longer than max_line_bytes (1024)\n"
    );
    let reject: Value = serde_json::from_str(out.read("r.jsonl").trim()).unwrap();
    assert_eq!(
        reject["raw"].as_str().unwrap().len(),
        200,
        "only the head of the line is kept"
    );
    assert_eq!(out.json()["summary"]["records"], 5);
}

#[test]
fn a_metric_that_is_not_monitored_may_hold_anything() {
    let log = "{\"timestamp\":\"2024-03-01T00:00:00Z\",\"accuracy\":0.9,\"note\":\"n/a\",\"tags\":[1,{\"a\":null}]}\n";
    let out = Mmon::new(&["replay", "a.jsonl"]).file("a.jsonl", log).run();
    assert_eq!(out.json()["summary"]["rejected"], 0);
    assert_eq!(out.json()["summary"]["records"], 1);
}

// ---- exit codes and errors -----------------------------------------------

#[test]
fn a_missing_file_is_exit_3_before_anything_is_written() {
    let out = Mmon::new(&[
        "replay",
        "metrics.jsonl",
        "nope.jsonl",
        "--output",
        "r.json",
    ])
    .fixture("metrics.jsonl")
    .run();
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .starts_with("mmon: cannot open nope.jsonl: No such file"),
        "{}",
        out.stderr
    );
    assert!(!out.path("r.json").exists());
}

#[test]
fn config_errors_are_exit_2_and_name_the_key() {
    let config =
        "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = { threshold = -1 }\n";
    let out = Mmon::new(&["replay", "metrics.jsonl", "--config", "bad.toml"])
        .fixture("metrics.jsonl")
        .file("bad.toml", config)
        .run();
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "mmon: bad.toml: monitor[0].params.threshold: must be > 0, got -1\n"
    );
    assert_eq!(out.stdout, "");

    let out = Mmon::new(&["replay", "metrics.jsonl"])
        .fixture("metrics.jsonl")
        .file(
            "mmon.toml",
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n[report]\nmerge_gapp = 3\n",
        )
        .run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("mmon: mmon.toml: report.merge_gapp: unknown key"),
        "{}",
        out.stderr
    );

    let out = Mmon::new(&["replay", "metrics.jsonl"])
        .fixture("metrics.jsonl")
        .file(
            "mmon.toml",
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n[report]\nhistory = 8\n",
        )
        .run();
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "mmon: mmon.toml: report.history: must be from 16 to 65536, got 8\n"
    );

    let out = Mmon::new(&["replay", "metrics.jsonl"])
        .fixture("metrics.jsonl")
        .env("MMON_CONFIG", "missing.toml")
        .run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot read config missing.toml"),
        "{}",
        out.stderr
    );

    let out = Mmon::new(&["replay", "--format", "xml", "metrics.jsonl"]).run();
    assert_eq!(out.code, 2, "clap usage errors are exit 2 too");
}

#[test]
fn mmon_config_names_the_file_when_no_flag_is_given() {
    let config = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n";
    let out = Mmon::new(&["replay", "acc.jsonl"])
        .file("acc.jsonl", accuracy_log(100, |i| 0.95 - 0.002 * i as f64))
        .file("elsewhere.toml", config)
        .env("MMON_CONFIG", "elsewhere.toml")
        .run();
    assert_eq!(out.windows()[0]["detected"]["index"], 74);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let run = Mmon::new(&["replay", "metrics.jsonl", "--format", "jsonl", "--config", "c.toml"])
        .fixture("metrics.jsonl")
        .file("c.toml", "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = { window = 5, threshold = 0.001 }\n[report]\nmerge_gap = 0\n");
    let mut child = run
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

// ---- init, completions, man ----------------------------------------------

#[test]
fn init_writes_the_embedded_default_which_loads_back_unchanged() {
    let out = Mmon::new(&["init"]).run();
    assert_eq!(out.code, 0);
    let written = out.read("mmon.toml");
    assert_eq!(written, mmon::config::DEFAULT_TOML);
    let loaded = mmon::config::Config::parse(&written, "mmon.toml").unwrap();
    let embedded = mmon::config::Config::embedded();
    assert_eq!(loaded.monitors, embedded.monitors);
    assert_eq!(
        (loaded.input, loaded.report),
        (embedded.input, embedded.report)
    );
    assert!(written.contains("# [retrain]"));

    let again = Mmon::new(&["init"]).file("mmon.toml", "keep me").run();
    assert_eq!(again.code, 2);
    assert_eq!(again.read("mmon.toml"), "keep me");
}

#[test]
fn completions_and_man_page_come_from_the_same_command() {
    let bash = Mmon::new(&["completions", "bash"]).run();
    assert_eq!(bash.code, 0);
    assert!(bash.stdout.contains("--on-bad-record"));
    let man = Mmon::new(&["man"]).run();
    assert!(man.stdout.contains(".TH mmon"));
    let help = Mmon::new(&["replay", "--help"]).run();
    assert!(help.stdout.contains("130  interrupted by SIGINT"));
}

/// The first CPU this process may run on (Linux's /proc).
fn first_allowed_cpu() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    Some(list.trim().split([',', '-']).next()?.to_string())
}

/// With one CPU (here `taskset -c N`) replay parses in place instead of on
/// a second thread, and reports exactly the same windows and counts.
#[test]
fn one_cpu_parses_in_place_and_reports_the_same() {
    let taskset = std::process::Command::new("taskset").arg("-V").output();
    let (Ok(_), Some(cpu)) = (taskset, first_allowed_cpu()) else {
        eprintln!("no taskset or no CPU list: skipping the one-CPU run");
        return;
    };
    let run = |pinned: bool| {
        let args = [
            "replay",
            "metrics.jsonl",
            "bad.jsonl",
            "metrics.csv",
            "--format",
            "json",
            "-v",
        ];
        let mut mmon = Mmon::new(&args)
            .fixture("metrics.jsonl")
            .fixture("bad.jsonl")
            .fixture("metrics.csv");
        if pinned {
            mmon = mmon.under(&["taskset", "-c", &cpu]);
        }
        let out = mmon.run();
        let mut report = out.json();
        for timing in ["elapsed_s", "records_per_s"] {
            report["summary"][timing] = Value::Null;
        }
        (out.code, report, out.stderr)
    };
    let (code, report, stderr) = run(true);
    assert!(
        stderr.contains("one CPU: parsing chunks on the pipeline's thread"),
        "{stderr}"
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(report["summary"]["rejected"].as_u64() > Some(0));
    let (threaded_code, threaded, stderr) = run(false);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus > 1 {
        assert!(stderr.contains("parsing chunks on"), "{stderr}");
    }
    assert_eq!((code, report), (threaded_code, threaded));
}
