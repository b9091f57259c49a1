//! The `junit` report: one test case per model × metric × detector, so CI
//! systems track each stream's health from run to run.
//!
//! Names are stable across runs and versions (`classname` = `model.metric`,
//! `name` = the detector, numbered only when one metric has the same
//! detector twice), because GitLab drops duplicate names and Jenkins keeps a
//! case's history by name. A case fails when its stream has a window at or
//! above `--fail-on` (drift for this output unless the flag says otherwise):
//! the message is the first such window's sentence and the body lists every
//! window. Windows below the level go to `system-out`; a metric that no
//! record of the model carried is `skipped`. No times or timestamps are
//! written, so identical runs give identical files.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::view::{self, RunView};
use crate::config::Monitor;
use crate::window::Window;

/// The case name of each monitor: its detector, `#k` when repeated on a metric.
fn case_names(monitors: &[Monitor]) -> Vec<String> {
    monitors
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let same = |o: &Monitor| o.metric == m.metric && o.detector.name() == m.detector.name();
            let repeats = monitors.iter().filter(|o| same(o)).count();
            if repeats > 1 {
                let nth = monitors[..k].iter().filter(|o| same(o)).count() + 1;
                format!("{}#{nth}", m.detector.name())
            } else {
                m.detector.name().to_string()
            }
        })
        .collect()
}

fn belongs(w: &Window, model: &str, m: &Monitor) -> bool {
    &*w.model_id == model
        && *w.metric == *m.metric
        && w.detector.name == m.detector.name()
        && w.detector.params == m.detector.params_json()
}

fn line(w: &Window) -> String {
    format!(
        "{} {} {}: {}; started {} at {}, detected at {}, {}",
        view::severity_word(w.severity),
        w.model_version.as_deref().unwrap_or("-"),
        w.metric,
        view::change(w),
        view::when(&w.start),
        view::place(&w.start),
        view::place(&w.detected),
        view::end_state(w)
    )
}

pub fn report(v: &RunView) -> Report {
    let mut report = Report::new("mmon");
    let names = case_names(v.monitors);
    for (model, seen) in v.levels.models() {
        let mut suite = TestSuite::new(model);
        for (m, name) in v.monitors.iter().zip(&names) {
            let windows: Vec<&Window> = v.windows.iter().filter(|w| belongs(w, model, m)).collect();
            let failing: Vec<&&Window> = windows.iter().filter(|w| v.fails(w)).collect();
            let status = if let Some(first) = failing.first() {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(first.reason.as_str());
                status.set_type(view::severity_word(first.severity));
                let body: Vec<String> = windows.iter().map(|w| line(w)).collect();
                status.set_description(body.join("\n"));
                status
            } else if !seen.contains(&m.metric.as_str()) {
                let mut status = TestCaseStatus::skipped();
                status.set_message(format!(
                    "no record of model {model} carried the metric {}",
                    m.metric
                ));
                status
            } else {
                TestCaseStatus::success()
            };
            let mut case = TestCase::new(name.as_str(), status);
            case.set_classname(format!("{model}.{}", m.metric));
            let below: Vec<String> = windows
                .iter()
                .filter(|w| !v.fails(w))
                .map(|w| line(w))
                .collect();
            if !below.is_empty() {
                case.set_system_out(below.join("\n"));
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
}

pub fn render(v: &RunView) -> std::io::Result<String> {
    report(v)
        .to_string()
        .map_err(|e| std::io::Error::other(format!("cannot write JUnit XML: {e}")))
}
