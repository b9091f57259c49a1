//! The `markdown` report: a verdict, the counts, the windows and one
//! sparkline per stream, in GitHub-flavoured markdown.
//!
//! Made for `$GITHUB_STEP_SUMMARY` (which takes at most 1 MiB per step), a
//! pull-request comment (65,536 characters) or a cron e-mail, so it never
//! exceeds [`MAX_BYTES`]: past 50 windows, or when the stream rows would not
//! fit, the rest is counted in words instead of listed.

use std::fmt::Write as _;

use super::view::{self, RunView};
use crate::window::Severity;

pub const MAX_BYTES: usize = 64 * 1024;
const MAX_WINDOWS: usize = 50;

/// Pipes and newlines would break a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub fn render(v: &RunView) -> String {
    let mut out = String::new();
    let icon = if v.count(Severity::Drift) > 0 {
        "❌"
    } else if v.count(Severity::Warning) > 0 {
        "⚠️"
    } else {
        "✅"
    };
    let _ = writeln!(out, "### {icon} mmon: {}\n", cell(&v.verdict()));
    let _ = writeln!(
        out,
        "Read {}. {} drift and {} warning window{}; {} stream{}.\n",
        v.what_was_read(),
        v.count(Severity::Drift),
        v.count(Severity::Warning),
        view::plural(v.windows.len()),
        v.summary.streams,
        view::plural(v.summary.streams as usize),
    );
    if !v.windows.is_empty() {
        out.push_str("| | model | version | metric | change | started | at | end |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        let mut order: Vec<&crate::window::Window> = v.windows.iter().collect();
        order.sort_by_key(|w| (std::cmp::Reverse(w.severity), w.id));
        for w in order.iter().take(MAX_WINDOWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | `{}` | {} |",
                view::severity_word(w.severity),
                cell(&w.model_id),
                cell(w.model_version.as_deref().unwrap_or("-")),
                cell(&w.metric),
                view::change(w),
                view::when(&w.start),
                cell(&view::place(&w.start)),
                view::end_state(w),
            );
        }
        if v.windows
            .iter()
            .any(|w| w.levels == crate::window::Levels::GeometricMean)
        {
            out.push_str("\n`*` geometric means (the median of log-normal values).\n");
        }
        if v.windows.len() > MAX_WINDOWS {
            let _ = writeln!(
                out,
                "\n{} more window{} not listed (the JSON report has every one).",
                v.windows.len() - MAX_WINDOWS,
                view::plural(v.windows.len() - MAX_WINDOWS)
            );
        }
        out.push('\n');
    }
    let streams = v.levels.streams();
    if !streams.is_empty() {
        let mut rows = String::from(
            "| model | metric | records | level over time | windows |\n| --- | --- | --- | --- | --- |\n",
        );
        let mut shown = 0;
        for ((model, metric), series) in &streams {
            let means: Vec<f64> = series.downsample(24).iter().map(|b| b.mean()).collect();
            let windows = v
                .windows
                .iter()
                .filter(|w| &*w.model_id == *model && &*w.metric == *metric)
                .count();
            let row = format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(model),
                cell(metric),
                view::thousands(series.count),
                view::sparkline(&means),
                if windows == 0 {
                    "-".to_string()
                } else {
                    windows.to_string()
                }
            );
            // Leave room for the closing line.
            if out.len() + rows.len() + row.len() + 200 > MAX_BYTES {
                break;
            }
            rows.push_str(&row);
            shown += 1;
        }
        out.push_str(&rows);
        if shown < streams.len() {
            let _ = writeln!(
                out,
                "\n{} more stream{} not shown: this summary is kept under 64 KiB.",
                streams.len() - shown,
                view::plural(streams.len() - shown)
            );
        }
    }
    if out.len() > MAX_BYTES {
        let mut cut = MAX_BYTES - 100;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n\n(truncated: this summary is kept under 64 KiB)\n");
    }
    out
}
