//! A newcomer's first hour (issue 11): each rough edge they hit, through
//! the real binary.

use serde_json::Value;

use crate::{Mmon, accuracy_log};

/// The decay rule with a short window, so small logs drift.
const DECAY: &str = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\nparams = { window = 50, threshold = 0.05 }\n";

/// 400 records of model `m` whose accuracy drops from 0.95 to 0.80 at 200.
fn drop_log() -> String {
    accuracy_log(400, |i| if i < 200 { 0.95 } else { 0.80 })
}

/// Bytes that look like /dev/urandom's, the same on every run.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

// ---- 1. nothing usable is an input error -----------------------------------

#[test]
fn replay_of_garbage_exits_3_instead_of_passing() {
    let out = Mmon::new(&["replay", "noise.bin", "--format", "json"])
        .file("noise.bin", noise(20_000))
        .run();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("mmon: no usable record in noise.bin: all "),
        "{}",
        out.stderr
    );
    // The report is still written, and says what happened.
    assert_eq!(out.json()["summary"]["records"], 0);
    assert!(out.json()["summary"]["rejected"].as_u64() > Some(0));

    let bad = "{\"timestamp\":\"yesterday\",\"accuracy\":0.9}\n".repeat(5);
    let out = Mmon::new(&["replay", "bad.jsonl"])
        .file("bad.jsonl", bad)
        .run();
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .ends_with("mmon: no usable record in bad.jsonl: all 5 records were rejected (the first are shown above)\n"),
        "{}",
        out.stderr
    );

    let out = Mmon::new(&["replay", "empty.jsonl", "-"])
        .file("empty.jsonl", "")
        .stdin("\n\n")
        .run();
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .ends_with("mmon: no record in 2 files: nothing to monitor\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn watch_once_that_read_only_bad_lines_exits_3_and_an_empty_increment_exits_0() {
    let run = Mmon::new(&[
        "watch",
        "--once",
        "--from-start",
        "--state",
        "s.ckpt",
        "app.jsonl",
        "--format",
        "json",
    ])
    .file("app.jsonl", "not json\nnor this\n");
    let out = run.run();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no usable record in app.jsonl: all 2 records were rejected"),
        "{}",
        out.stderr
    );
    // The next cron run finds nothing new: that is normal, not an error.
    out.then(&["watch", "--once", "--state", "s.ckpt", "app.jsonl"])
        .args(&["--format", "json"])
        .expect_code(0)
        .run();
}

// ---- 2. what no record carried is warned about and listed ------------------

#[test]
fn a_misspelt_metric_and_an_absent_model_field_are_warned_once_and_listed_unseen() {
    let config = format!(
        "[input]\nmodel_id = \"labels.region\"\n{DECAY}\
         [[monitor]]\nmetric = \"p99_latncy\"\ndetector = \"threshold\"\nparams = {{ above = 100 }}\n"
    );
    let out = Mmon::new(&[
        "replay", "a.jsonl", "--config", "c.toml", "--format", "json",
    ])
    .file("a.jsonl", drop_log())
    .file("c.toml", config)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.json()["summary"]["unseen"],
        serde_json::json!({"metrics": ["p99_latncy"], "fields": ["labels.region"]})
    );
    assert_eq!(
        count(
            &out.stderr,
            "no record had the monitored metric \"p99_latncy\""
        ),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        count(
            &out.stderr,
            "no record had the model-id field \"labels.region\", so every record was counted as model \"default\""
        ),
        1,
        "{}",
        out.stderr
    );
    // The summary is listed in the table too.
    let out = Mmon::new(&[
        "replay", "a.jsonl", "--config", "c.toml", "--format", "table",
    ])
    .file("a.jsonl", drop_log())
    .file("c.toml", DECAY.replace("accuracy", "acuracy"))
    .run();
    assert!(
        out.stdout.contains("in no record: metrics \"acuracy\""),
        "{}",
        out.stdout
    );

    // A log that has everything the config names leaves `unseen` empty.
    let out = Mmon::new(&[
        "replay", "a.jsonl", "--config", "c.toml", "--format", "json",
    ])
    .file("a.jsonl", drop_log())
    .file("c.toml", DECAY)
    .run();
    assert_eq!(
        out.json()["summary"]["unseen"],
        serde_json::json!({"metrics": [], "fields": []})
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn a_dotted_model_id_reads_the_nested_field_instead_of_merging_every_model() {
    let log: String = (0..800)
        .map(|i| {
            let (region, k) = if i % 2 == 0 { ("eu", i / 2) } else { ("us", i / 2) };
            let acc = if region == "eu" && k >= 200 { 0.80 } else { 0.95 };
            format!(
                "{{\"timestamp\":{},\"labels\":{{\"host\":\"h{i}\",\"region\":\"{region}\"}},\"accuracy\":{acc}}}\n",
                1_709_251_200 + i
            )
        })
        .collect();
    let config = format!("[input]\nmodel_id = \"labels.region\"\n{DECAY}");
    let out = Mmon::new(&[
        "replay", "n.jsonl", "--config", "c.toml", "--format", "json",
    ])
    .file("n.jsonl", log)
    .file("c.toml", config)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = &out.json()["summary"];
    assert_eq!(s["streams"], 2);
    assert_eq!(s["unseen"]["fields"], serde_json::json!([]));
    let windows = out.windows();
    assert_eq!(windows.len(), 1, "{windows:?}");
    assert_eq!(windows[0]["model_id"], "eu");
}

// ---- 3. files are read in time order ---------------------------------------

/// The drop log cut in two at line 150: day 1 and day 2.
fn two_days() -> (String, String) {
    let log = drop_log();
    let lines: Vec<&str> = log.lines().collect();
    let day = |r: std::ops::Range<usize>| lines[r].iter().map(|l| format!("{l}\n")).collect();
    (day(0..150), day(150..400))
}

#[test]
fn files_given_newest_first_are_read_oldest_first() {
    let (day1, day2) = two_days();
    let replay = |order: &[&str], extra: &[&str]| {
        let mut args = vec!["replay"];
        args.extend_from_slice(order);
        args.extend_from_slice(&["--config", "c.toml", "--format", "json"]);
        args.extend_from_slice(extra);
        Mmon::new(&args)
            .file("day1.jsonl", &day1)
            .file("day2.jsonl", &day2)
            .file("c.toml", DECAY)
            .run()
    };
    let forward = replay(&["day1.jsonl", "day2.jsonl"], &[]);
    let backward = replay(&["day2.jsonl", "day1.jsonl"], &[]);
    assert_eq!(forward.code, 0, "{}", forward.stderr);
    assert_eq!(forward.windows().len(), 1);
    assert_eq!(backward.windows(), forward.windows());
    assert_eq!(backward.json()["summary"]["out_of_order"], 0);
    assert_eq!(backward.stderr, "");

    // --keep-order reads them as given, and says the files overlap.
    let kept = replay(&["day2.jsonl", "day1.jsonl"], &["--keep-order"]);
    assert_eq!(kept.json()["summary"]["out_of_order"], 150);
    assert!(
        kept.stderr.contains(
            "day1.jsonl overlaps day2.jsonl in time: 150 of its records are older than the last record of their model in day2.jsonl"
        ),
        "{}",
        kept.stderr
    );
}

#[test]
fn files_whose_time_ranges_overlap_are_warned_about() {
    let log = drop_log();
    let (even, odd): (Vec<&str>, Vec<&str>) = {
        let lines: Vec<&str> = log.lines().collect();
        (
            lines.iter().step_by(2).copied().collect(),
            lines.iter().skip(1).step_by(2).copied().collect(),
        )
    };
    let out = Mmon::new(&["replay", "b.jsonl", "a.jsonl", "--config", "c.toml"])
        .file("a.jsonl", even.join("\n"))
        .file("b.jsonl", odd.join("\n"))
        .file("c.toml", DECAY)
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // a.jsonl starts first, so it is read first; b.jsonl overlaps it.
    assert!(
        out.stderr
            .contains("b.jsonl overlaps a.jsonl in time: 199 of its records"),
        "{}",
        out.stderr
    );
}

// ---- 4. replay expands quoted globs ------------------------------------------

#[test]
fn replay_expands_a_quoted_glob_and_one_matching_nothing_is_exit_3() {
    let (day1, day2) = two_days();
    let out = Mmon::new(&[
        "replay",
        "logs/*.jsonl",
        "--config",
        "c.toml",
        "--format",
        "json",
    ])
    .file("c.toml", DECAY)
    .file("logs/day2.jsonl", &day2)
    .file("logs/day1.jsonl", &day1)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = &out.json()["summary"];
    assert_eq!(s["files"], 2);
    assert_eq!(s["records"], 400);
    assert_eq!(s["inputs"][0]["path"], "logs/day1.jsonl");

    let out = Mmon::new(&["replay", "logs/*.jsonl"]).run();
    assert_eq!(out.code, 3);
    assert_eq!(out.stderr, "mmon: no file matches logs/*.jsonl\n");
}

// ---- 6. messages that point to the fix ---------------------------------------

#[test]
fn epoch_milliseconds_read_as_seconds_name_timestamp_unit_ms() {
    let out = Mmon::new(&["replay", "ms.jsonl"])
        .file(
            "ms.jsonl",
            "{\"timestamp\":1709251200000,\"accuracy\":0.9}\n",
        )
        .run();
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.starts_with(
            "ms.jsonl:1: field \"timestamp\": expected epoch seconds between 1677-09-21 and 2262-04-11 \
             (this looks like epoch milliseconds: set [input] timestamp_unit = \"ms\"), found 1709251200000\n"
        ),
        "{}",
        out.stderr
    );
    let out = Mmon::new(&[
        "replay", "ms.jsonl", "--config", "c.toml", "--format", "json",
    ])
    .file(
        "ms.jsonl",
        "{\"timestamp\":1709251200000,\"accuracy\":0.9}\n",
    )
    .file(
        "c.toml",
        format!("[input]\ntimestamp_unit = \"ms\"\n{DECAY}"),
    )
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn epoch_seconds_in_a_string_and_plus_0100_offsets_are_read() {
    let log = "{\"timestamp\":\"1709251200\",\"accuracy\":0.9}\n\
               {\"timestamp\":\"2024-03-01T01:00:01+0100\",\"accuracy\":0.9}\n\
               {\"timestamp\":\"2024-03-01 00:00:02-0000\",\"accuracy\":0.9}\n";
    let out = Mmon::new(&[
        "replay", "t.jsonl", "--config", "c.toml", "--format", "json",
    ])
    .file("t.jsonl", log)
    .file("c.toml", DECAY)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = &out.json()["summary"];
    assert_eq!(
        (s["records"].as_u64(), s["rejected"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(s["out_of_order"], 0);
}

#[test]
fn a_tsv_file_says_once_that_it_looks_tab_separated_and_reads_with_the_delimiter() {
    let tsv: String = std::iter::once("timestamp\tmodel_id\taccuracy\n".to_string())
        .chain((0..400).map(|i| {
            let acc = if i < 200 { 0.95 } else { 0.80 };
            format!("{}\tm\t{acc}\n", 1_709_251_200 + i)
        }))
        .collect();
    let out = Mmon::new(&["replay", "m.tsv", "--config", "c.toml", "--format", "json"])
        .file("m.tsv", &tsv)
        .file("c.toml", DECAY)
        .run();
    assert_eq!(out.code, 3);
    assert_eq!(
        count(
            &out.stderr,
            "the header looks tab-separated; set [input] delimiter = \"\\t\""
        ),
        1,
        "{}",
        out.stderr
    );
    let about_lines = out.stderr.lines().filter(|l| l.starts_with("m.tsv:"));
    assert_eq!(
        about_lines.count(),
        1,
        "one line, not one per line: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("all 401 records were rejected"),
        "{}",
        out.stderr
    );

    let out = Mmon::new(&["replay", "m.tsv", "--config", "c.toml", "--format", "json"])
        .file("m.tsv", &tsv)
        .file("c.toml", format!("[input]\ndelimiter = \"\\t\"\n{DECAY}"))
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["summary"]["records"], 400);
    assert_eq!(out.windows().len(), 1);
}

#[test]
fn a_failed_training_prints_one_readable_line_with_its_train_log() {
    let root = env!("CARGO_MANIFEST_DIR");
    let run = Mmon::new(&[
        "replay",
        "metrics.jsonl",
        "--config",
        "retrain.toml",
        "--retrain",
        "--fake-training",
        "exit=3",
        "--format",
        "json",
    ])
    .fixture("metrics.jsonl")
    .file(
        "retrain.toml",
        std::fs::read(format!("{root}/examples/retrain.toml")).unwrap(),
    );
    let out = run.run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("retraining churn failed"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(!line.contains('{'), "not a JSON blob: {line}");
    assert!(line.contains("exited with status 3"), "{line}");
    let log = line
        .rsplit_once("log: ")
        .map(|(_, p)| p)
        .unwrap_or_default();
    assert!(log.ends_with("/train.log"), "{line}");
    assert!(out.path(log).is_file(), "{log} is not a file");
}

#[test]
fn a_missing_config_file_says_its_os_error_once() {
    let out = Mmon::new(&["replay", "x.jsonl", "--config", "nope.toml"]).run();
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "mmon: cannot read config nope.toml: No such file or directory (os error 2)\n"
    );
}

// ---- 7. completions, man pages and colour ------------------------------------

#[test]
fn completions_offer_no_hidden_flag() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Mmon::new(&["completions", shell]).run();
        assert_eq!(out.code, 0, "{shell}");
        for hidden in ["fake-training", "checkpoint-interval"] {
            assert!(!out.stdout.contains(hidden), "{shell} offers --{hidden}");
        }
        for shown in ["keep-order", "on-bad-record", "color"] {
            assert!(out.stdout.contains(shown), "{shell} lacks --{shown}");
        }
    }
}

#[test]
fn man_dir_writes_a_page_per_command_and_no_page_refers_to_a_missing_one() {
    let out = Mmon::new(&["man", "--dir", "man"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dir = out.path("man");
    let pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for page in [
        "mmon.1",
        "mmon-replay.1",
        "mmon-watch.1",
        "mmon-registry-show.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} not in {pages:?}");
    }
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(!text.contains("fake"), "{page} shows a hidden flag");
        // References look like `mmon\-replay(1)` in roff.
        for (at, _) in text.match_indices("(1)") {
            let start = text[..at]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\\'))
                .map_or(0, |i| i + 1);
            let name = text[start..at].replace("\\-", "-");
            if name.starts_with("mmon") {
                assert!(
                    pages.contains(&format!("{name}.1")),
                    "{page} refers to {name}(1)"
                );
            }
        }
    }
    let top = std::fs::read_to_string(dir.join("mmon.1")).unwrap();
    assert!(top.contains("mmon\\-replay(1)"), "{top}");
}

#[test]
fn color_always_colours_warnings_and_never_or_no_color_does_not() {
    let warn = |args: &[&str], env: Option<&str>| {
        let mut all = vec!["replay", "a.jsonl", "--config", "c.toml"];
        all.extend_from_slice(args);
        let mut run = Mmon::new(&all)
            .file("a.jsonl", drop_log())
            .file("c.toml", DECAY.replace("accuracy", "acuracy"));
        if let Some(v) = env {
            run = run.env("NO_COLOR", v);
        }
        let out = run.run();
        assert!(out.stderr.contains("acuracy"), "{}", out.stderr);
        out.stderr.contains('\x1b')
    };
    assert!(warn(&["--color", "always"], None));
    assert!(
        warn(&["--color=always"], Some("1")),
        "the flag beats NO_COLOR"
    );
    assert!(!warn(&["--color", "never"], None));
    assert!(!warn(&[], Some("1")));
    let bad = Mmon::new(&["--color", "sometimes", "init"]).run();
    assert_eq!(bad.code, 2);
}

// ---- 9. registry show includes the trigger window ----------------------------

#[test]
fn registry_show_prints_the_trigger_window_and_keeps_it_in_json() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Mmon::new(&[
        "replay",
        "metrics.jsonl",
        "--config",
        "retrain.toml",
        "--retrain",
        "--fake-training",
        "ok=0.9",
        "--format",
        "json",
    ])
    .fixture("metrics.jsonl")
    .file(
        "retrain.toml",
        std::fs::read(format!("{root}/examples/retrain.toml")).unwrap(),
    )
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let show = |format: &str| {
        Mmon::in_dir(
            out.dir.path(),
            &["registry", "show", "churn", "--format", format],
        )
        .expect_code(0)
        .run()
        .stdout
    };
    let table = show("table");
    let line = |key: &str| {
        table
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line:\n{table}"))
            .to_string()
    };
    assert!(
        line("trigger ").contains("drift of correct (version 1.4.2): 0.92"),
        "{table}"
    );
    assert!(line("trigger ").ends_with("by adwin"), "{table}");
    assert!(line("window start ").contains("metrics.jsonl:"), "{table}");
    assert!(
        line("detected ").starts_with("detected      #2495 metrics.jsonl:"),
        "{table}"
    );
    let json: Value = serde_json::from_str(&show("json")).unwrap();
    assert_eq!(json["trigger"]["detected"]["index"], 2495);
    assert_eq!(json["trigger"]["metric"], "correct");
}
