//! `--report KIND=PATH`: the HTML page, JUnit, markdown and GitHub
//! annotations, and the §5 formats as files, from one run.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{Mmon, Outcome};

const ALL: [&str; 8] = [
    "html=r.html",
    "junit=r.xml",
    "markdown=r.md",
    "github=r.gh",
    "json=r.json",
    "jsonl=r.jsonl",
    "csv=r.csv",
    "table=r.txt",
];

fn replay_with(reports: &[&str], extra: &[&str]) -> Outcome {
    let mut args = vec!["replay", "metrics.jsonl", "--format", "json"];
    for r in reports {
        args.push("--report");
        args.push(r);
    }
    args.extend_from_slice(extra);
    let out = Mmon::new(&args).fixture("metrics.jsonl").run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out
}

fn without_timing(mut v: Value) -> Value {
    v["summary"]["elapsed_s"] = Value::Null;
    v["summary"]["records_per_s"] = Value::Null;
    v
}

/// The three windows of the fixture: churn's `correct` and `accuracy`, fraud's latency.
fn fixture_streams() -> BTreeSet<(String, String)> {
    [
        ("churn", "accuracy"),
        ("churn", "correct"),
        ("fraud", "latency_ms"),
    ]
    .iter()
    .map(|(m, x)| (m.to_string(), x.to_string()))
    .collect()
}

#[test]
fn one_replay_writes_every_report_kind_and_the_json_matches_stdout() {
    let out = replay_with(&ALL, &[]);
    for name in [
        "r.html", "r.xml", "r.md", "r.gh", "r.json", "r.jsonl", "r.csv", "r.txt",
    ] {
        assert!(out.path(name).is_file(), "{name} was not written");
    }
    let file: Value = serde_json::from_str(&out.read("r.json")).unwrap();
    assert_eq!(without_timing(file), without_timing(out.json()));
    let windows = out.windows().len();
    assert_eq!(windows, 3);
    // jsonl: an opened and a closed line per window.
    let lines: Vec<Value> = out
        .read("r.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 * windows);
    assert_eq!(
        lines.iter().filter(|l| l["event"] == "closed").count(),
        windows
    );
    assert_eq!(out.read("r.csv").lines().count(), windows + 1);
    // No temp file is left beside the reports.
    let leftovers: Vec<String> = std::fs::read_dir(out.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_html_page_needs_no_script_style_or_network_and_shades_every_window() {
    let out = replay_with(&["html=r.html"], &[]);
    let html = out.read("r.html");
    assert!(html.len() <= 1024 * 1024);
    for banned in [
        "<script", "<style", "style=", "<link", "@import", "<img", "<iframe",
    ] {
        assert!(!html.contains(banned), "the page has {banned}");
    }
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !without_ns.contains("http"),
        "the page refers to the network"
    );
    // Every shape says how it is filled (no CSS default is relied on).
    for shape in [
        "<rect",
        "<polygon",
        "<polyline",
        "<line",
        "<path",
        "<circle",
    ] {
        for (at, _) in html.match_indices(shape) {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            assert!(tag.contains(" fill="), "a shape without a fill: {tag}");
        }
    }
    // One panel per stream with a window, and each window shaded in it and
    // listed in the table.
    let panels: BTreeSet<String> = html
        .match_indices("<h3 id=\"panel-")
        .map(|(at, _)| html[at + 8..at + html[at..].find("\">").unwrap()].to_string())
        .collect();
    let expected: BTreeSet<String> = fixture_streams()
        .iter()
        .map(|(m, x)| format!("panel-{m}-{}", x.replace('_', "-")))
        .collect();
    assert_eq!(panels, expected);
    let shaded = html
        .matches("fill=\"#c62828\" fill-opacity=\"0.14\" stroke=\"#c62828\" stroke-opacity")
        .count();
    assert_eq!(shaded, 3);
    assert_eq!(
        html.matches("<tr><td><font color=\"#c62828\"><b>drift</b>")
            .count(),
        3
    );
    // A person reads the windows in words too.
    assert!(
        html.contains("<desc id=\"d0\">drift window from "),
        "{html}"
    );
    assert!(html.contains(
        "Drift: 3 drift windows in models (churn, fraud); 3 still degraded at the end of the input."
    ));
}

#[test]
fn the_html_page_is_byte_identical_for_identical_input() {
    let a = replay_with(&["html=r.html"], &[]).read("r.html");
    let b = replay_with(&["html=r.html"], &[]).read("r.html");
    assert!(a == b, "two runs drew different pages");
}

#[test]
fn junit_has_one_stable_case_per_model_metric_detector_and_fails_exactly_the_drifted_streams() {
    let out = replay_with(&["junit=r.xml"], &[]);
    let xml = out.read("r.xml");
    let report = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit parses back");
    let mut names = BTreeSet::new();
    let mut failing = BTreeSet::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let classname = case.classname.as_ref().unwrap().as_str().to_string();
            assert!(classname.starts_with(&format!("{}.", suite.name.as_str())));
            assert!(
                names.insert((classname.clone(), case.name.as_str().to_string())),
                "duplicate case {classname} {}",
                case.name.as_str()
            );
            if matches!(case.status, quick_junit::TestCaseStatus::NonSuccess { .. }) {
                let (model, metric) = classname.split_once('.').unwrap();
                failing.insert((model.to_string(), metric.to_string()));
            }
        }
    }
    // 3 models × 3 monitors.
    assert_eq!(names.len(), 9);
    assert_eq!(failing, fixture_streams());
    // --fail-on none: nothing fails, the windows go to system-out.
    let quiet = replay_with(&["junit=r.xml"], &["--fail-on", "none"]).read("r.xml");
    assert!(!quiet.contains("<failure"), "{quiet}");
    assert_eq!(quiet.matches("<system-out>").count(), 3);
}

#[test]
fn junit_skips_a_monitored_metric_that_no_record_carried() {
    let config = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n\n[[monitor]]\nmetric = \"p99_latncy\"\ndetector = \"cusum\"\ndirection = \"increase\"\n";
    let out = Mmon::new(&[
        "replay",
        "metrics.jsonl",
        "--config",
        "mmon.toml",
        "--report",
        "junit=r.xml",
        "--output",
        "r.json",
    ])
    .fixture("metrics.jsonl")
    .file("mmon.toml", config)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = quick_junit::Report::deserialize_from_str(&out.read("r.xml")).unwrap();
    let skipped: Vec<String> = report
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .filter(|c| matches!(c.status, quick_junit::TestCaseStatus::Skipped { .. }))
        .map(|c| c.classname.as_ref().unwrap().as_str().to_string())
        .collect();
    assert_eq!(
        skipped,
        ["churn.p99_latncy", "fraud.p99_latncy", "ranker.p99_latncy"]
    );
}

/// A log of many short windows: a threshold that the rolling accuracy keeps crossing.
fn many_windows() -> Outcome {
    let config = "[report]\nmerge_gap = 0\n\n[[monitor]]\nmetric = \"accuracy\"\ndetector = \"threshold\"\nparams = { below = 0.93, window = 5 }\n";
    let out = Mmon::new(&[
        "replay",
        "metrics.jsonl",
        "--config",
        "mmon.toml",
        "--output",
        "r.json",
        "--report",
        "markdown=r.md",
        "--report",
        "github=r.gh",
        "--report",
        "html=r.html",
    ])
    .fixture("metrics.jsonl")
    .file("mmon.toml", config)
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out
}

#[test]
fn markdown_and_annotations_stay_within_their_limits_on_many_windows() {
    let out = many_windows();
    let report: Value = serde_json::from_str(&out.read("r.json")).unwrap();
    let windows = report["windows"].as_array().unwrap().len();
    assert!(windows > 100, "{windows}");
    let md = out.read("r.md");
    assert!(md.len() <= 64 * 1024, "{}", md.len());
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| drift |")).count(),
        50
    );
    assert!(
        md.contains(&format!("{} more windows not listed", windows - 50)),
        "{md}"
    );
    let gh = out.read("r.gh");
    let lines: Vec<&str> = gh.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("::error ")).count(),
        10
    );
    assert_eq!(lines.len(), 11);
    assert!(
        lines[0].starts_with("::error file=metrics.jsonl,line="),
        "{}",
        lines[0]
    );
    assert!(lines[10].starts_with("::notice title=mmon::"));
    assert!(lines[10].contains(&format!("{} more windows not annotated", windows - 10)));
    assert!(out.read("r.html").len() <= 1024 * 1024);
}

#[test]
fn snapshots_of_the_markdown_junit_and_a_panel() {
    let out = replay_with(&["markdown=r.md", "junit=r.xml", "html=r.html"], &[]);
    insta::assert_snapshot!("reports_markdown", out.read("r.md"));
    insta::assert_snapshot!("reports_junit", out.read("r.xml"));
    let html = out.read("r.html");
    let at = html.find("<h3 id=\"panel-fraud-latency-ms\">").unwrap();
    let panel = &html[at..at + html[at..].find("</svg>").unwrap() + 6];
    insta::assert_snapshot!("reports_panel_fraud_latency", panel);
}

#[test]
fn a_bad_report_flag_is_a_usage_error() {
    let out = Mmon::new(&["replay", "metrics.jsonl", "--report", "pdf=r.pdf"])
        .fixture("metrics.jsonl")
        .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown report kind \"pdf\""),
        "{}",
        out.stderr
    );
    let out = Mmon::new(&["replay", "metrics.jsonl", "--report", "markdown=-"])
        .fixture("metrics.jsonl")
        .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("both write to stdout"),
        "{}",
        out.stderr
    );
    assert!(!out.path("r.pdf").exists());
}

/// `replay` of the fixture with one `--report`, the main report in a file.
fn refused_or_failed(report: &str) -> Outcome {
    let args = [
        "replay",
        "metrics.jsonl",
        "--output",
        "r.json",
        "--report",
        report,
    ];
    Mmon::new(&args).fixture("metrics.jsonl").run()
}

#[test]
fn a_report_path_that_is_an_input_is_refused_and_the_input_kept() {
    let out = refused_or_failed("html=metrics.jsonl");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--report metrics.jsonl"),
        "{}",
        out.stderr
    );
    let kept = std::fs::read(out.path("metrics.jsonl")).unwrap();
    assert!(
        kept == std::fs::read(std::path::Path::new(crate::FIXTURES).join("metrics.jsonl")).unwrap()
    );
}

#[test]
fn a_report_that_cannot_be_written_is_exit_4_naming_the_path() {
    let out = refused_or_failed("html=no/such/folder/r.html");
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("no/such/folder/r.html"),
        "{}",
        out.stderr
    );
}

#[test]
fn watch_once_writes_its_report_files() {
    let out = Mmon::new(&[
        "watch",
        "--once",
        "--from-start",
        "--state",
        "s.ckpt",
        "metrics.jsonl",
        "--output",
        "r.json",
        "--report",
        "markdown=r.md",
        "--report",
        "junit=r.xml",
    ])
    .fixture("metrics.jsonl")
    .run();
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    // Windows still open at the end of a checkpointed run are in the report.
    let md = out.read("r.md");
    assert!(
        md.contains("| drift | fraud | 3.0.1 | latency_ms |"),
        "{md}"
    );
    quick_junit::Report::deserialize_from_str(&out.read("r.xml")).unwrap();
}

/// The page as Chromium paints it, plain and under Jenkins' default CSP:
/// both must be the same picture, with the drift shading and the level
/// lines in it. Needs Debian's `chromium`; `.ci/run` installs it, and under
/// `CI=true` a missing browser fails the test instead of skipping it.
#[test]
fn chromium_paints_the_page_the_same_under_a_strict_csp() {
    let Some(browser) = ["chromium", "chromium-browser"].iter().find(|b| {
        std::process::Command::new("which")
            .arg(b)
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let out = replay_with(&["html=r.html"], &[]);
    let html = out.read("r.html");
    let csp = html.replacen(
        "<head>\n",
        "<head>\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self'; style-src 'self'\">\n",
        1,
    );
    std::fs::write(out.path("csp.html"), csp).unwrap();
    let shoot = |page: &str, png: &str| {
        let profile = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1000,2400",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", out.path(png).display()))
            .arg(format!("file://{}", out.path(page).display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run chromium");
        assert!(status.success());
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(out.path(png)).unwrap(),
        ));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.color_type, buf)
    };
    let (kind, plain) = shoot("r.html", "plain.png");
    let (_, strict) = shoot("csp.html", "csp.png");
    assert!(plain == strict, "the CSP changed the picture");
    let step = if kind == png::ColorType::Rgba { 4 } else { 3 };
    let near = |px: &[u8], rgb: (u8, u8, u8), tol: i32| {
        (px[0] as i32 - rgb.0 as i32).abs() <= tol
            && (px[1] as i32 - rgb.1 as i32).abs() <= tol
            && (px[2] as i32 - rgb.2 as i32).abs() <= tol
    };
    let pixels: Vec<&[u8]> = plain.chunks(step).collect();
    // The drift shading (#c62828 at 14% on white) and the level line (#1f5fa8).
    let shade = pixels
        .iter()
        .filter(|p| near(p, (247, 227, 227), 8))
        .count();
    let level = pixels.iter().filter(|p| near(p, (31, 95, 168), 40)).count();
    assert!(shade > 2_000, "drift shading: {shade} pixels");
    assert!(level > 2_000, "level lines: {level} pixels");
}

#[test]
fn the_html_page_of_a_million_records_and_hundreds_of_streams_stays_under_1_mib() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.jsonl");
    let made = Mmon::new(&[
        "generate",
        "--events",
        "1000000",
        "--models",
        "150",
        "--drift-at",
        "0.2,0.3,0.4,0.5,0.6,0.7,0.8",
        "--out",
        log.to_str().unwrap(),
    ])
    .run();
    assert_eq!(made.code, 0, "{}", made.stderr);
    let html = dir.path().join("big.html");
    let out = Mmon::new(&[
        "replay",
        log.to_str().unwrap(),
        "--output",
        dir.path().join("r.json").to_str().unwrap(),
        "--report",
        &format!("html={}", html.display()),
    ])
    .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size <= 1024 * 1024, "{size} bytes");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("more streams are not drawn"),
        "450 streams, 300 sparklines"
    );
}
