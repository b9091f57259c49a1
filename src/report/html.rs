//! The `html` report: one self-contained page a person understands at a
//! glance, with hand-written inline SVG.
//!
//! It needs no network, no JavaScript and no fonts, and renders under a
//! strict Content-Security-Policy (`default-src 'none'; style-src 'self'`,
//! Jenkins' default): there is no `<style>` element and no `style`
//! attribute, every visual property is an SVG or HTML presentation
//! attribute, and tooltips are native `<title>` elements. Its size is
//! bounded whatever the input (the levels are at most 1,024 buckets per
//! stream, panels and table rows are capped), and identical runs give
//! identical bytes: nothing depends on the clock or on hash order.
//!
//! Top to bottom: what was read and the verdict in words; the windows
//! table; a sparkline per model × metric; a panel per stream with a window
//! (its level per bucket with the 95% interval of the bucket's mean, windows shaded
//! red for drift and amber hatched for warnings, the detection marked, the
//! before and after levels drawn, version changes marked, time and value
//! axes); the effective configuration.

use std::fmt::Write as _;

use super::levels::{Bucket, Series};
use super::view::{self, RunView};
use crate::window::{Severity, Window};

/// The page never exceeds this, whatever the input.
pub const MAX_BYTES: usize = 1024 * 1024;
const MAX_TABLE_ROWS: usize = 200;
const MAX_SPARKLINES: usize = 300;
const MAX_PANELS: usize = 40;
const PANEL_POINTS: usize = 200;

const W: f64 = 900.0;
const H: f64 = 270.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 62.0;

const LEVEL: &str = "#1f5fa8";
const DRIFT: &str = "#c62828";
const WARNING: &str = "#e69500";
const INK: &str = "#222222";
const MUTED: &str = "#6b6b6b";
const GRID: &str = "#e4e4e4";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One decimal: enough for a pixel, short enough to keep the page small.
fn px(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn unit_of(metric: &str) -> &'static str {
    if metric.ends_with("_ms") {
        " (ms)"
    } else if metric.ends_with("_s") || metric.ends_with("_seconds") {
        " (s)"
    } else {
        ""
    }
}

pub fn render(v: &RunView) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let verdict = v.verdict();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>mmon report: {}</title>\n</head>\n<body>\n<h1>mmon report</h1>\n",
        esc(&verdict)
    );
    let colour = if v.count(Severity::Drift) > 0 {
        DRIFT
    } else if v.count(Severity::Warning) > 0 {
        WARNING
    } else {
        "#2e7d32"
    };
    let _ = writeln!(
        out,
        "<p><font color=\"{colour}\"><b>{}.</b></font></p>\n<p>Read {}. Configuration: {}.</p>",
        esc(&verdict),
        esc(&v.what_was_read()),
        esc(v.config_source)
    );
    windows_table(&mut out, v);
    sparklines(&mut out, v);
    panels(&mut out, v);
    config(&mut out, v);
    out.push_str("</body>\n</html>\n");
    out
}

fn windows_table(out: &mut String, v: &RunView) {
    out.push_str("<h2>Windows</h2>\n");
    if v.windows.is_empty() {
        out.push_str("<p>No window: no detector found a change.</p>\n");
        return;
    }
    out.push_str(
        "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr><th>severity</th><th>model</th>\
         <th>version</th><th>metric</th><th>detector</th><th>before \u{2192} after</th>\
         <th>started</th><th>detected</th><th>end</th><th>state</th></tr>\n",
    );
    for w in v.windows.iter().take(MAX_TABLE_ROWS) {
        let colour = if w.severity == Severity::Drift {
            DRIFT
        } else {
            WARNING
        };
        let _ = writeln!(
            out,
            "<tr><td><font color=\"{colour}\"><b>{}</b></font></td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}<br>{}</td><td>{}<br>{}</td><td>{}<br>{}</td><td>{}</td></tr>",
            view::severity_word(w.severity),
            esc(&w.model_id),
            esc(w.model_version.as_deref().unwrap_or("-")),
            esc(&w.metric),
            esc(&w.detector.name),
            esc(&view::change(w)),
            esc(&view::when(&w.start)),
            esc(&view::place(&w.start)),
            esc(&view::when(&w.detected)),
            esc(&view::place(&w.detected)),
            esc(&view::when(&w.end)),
            esc(&view::place(&w.end)),
            esc(&view::end_state(w)),
        );
    }
    out.push_str("</table>\n");
    if v.windows.len() > MAX_TABLE_ROWS {
        let _ = writeln!(
            out,
            "<p>{} more windows are not listed here; the JSON report has every one.</p>",
            v.windows.len() - MAX_TABLE_ROWS
        );
    }
}

fn sparklines(out: &mut String, v: &RunView) {
    let streams = v.levels.streams();
    if streams.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Streams</h2>\n<table border=\"0\" cellpadding=\"3\" cellspacing=\"0\">\n\
         <tr><th align=\"left\">model</th><th align=\"left\">metric</th><th align=\"right\">records</th>\
         <th>level over time</th><th align=\"right\">min</th><th align=\"right\">max</th><th>windows</th></tr>\n",
    );
    for ((model, metric), series) in streams.iter().take(MAX_SPARKLINES) {
        let buckets = series.downsample(60);
        let lo = buckets
            .iter()
            .map(|b| b.mean())
            .fold(f64::INFINITY, f64::min);
        let hi = buckets
            .iter()
            .map(|b| b.mean())
            .fold(f64::NEG_INFINITY, f64::max);
        let (sw, sh) = (160.0, 24.0);
        let n = buckets.len().max(2) - 1;
        let points: Vec<String> = buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let y = if hi > lo {
                    sh - 2.0 - (b.mean() - lo) / (hi - lo) * (sh - 4.0)
                } else {
                    sh / 2.0
                };
                format!("{},{}", px(i as f64 * sw / n as f64), px(y))
            })
            .collect();
        let windows: Vec<&Window> = v
            .windows
            .iter()
            .filter(|w| &*w.model_id == *model && &*w.metric == *metric)
            .collect();
        let label = if windows.is_empty() {
            "-".to_string()
        } else {
            format!(
                "<a href=\"#{}\">{}</a>",
                anchor(model, metric),
                windows.len()
            )
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td align=\"right\">{}</td><td><svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"{sw}\" height=\"{sh}\" viewBox=\"0 0 {sw} {sh}\" role=\"img\"><title>{} {}: from {} to {}</title>\
             <rect x=\"0\" y=\"0\" width=\"{sw}\" height=\"{sh}\" fill=\"#f7f7f7\"/>\
             <polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.2\"/></svg></td>\
             <td align=\"right\">{}</td><td align=\"right\">{}</td><td align=\"center\">{label}</td></tr>",
            esc(model),
            esc(metric),
            view::thousands(series.count),
            esc(model),
            esc(metric),
            view::level(buckets.first().map_or(f64::NAN, Bucket::mean)),
            view::level(buckets.last().map_or(f64::NAN, Bucket::mean)),
            points.join(" "),
            if windows.is_empty() { LEVEL } else { DRIFT },
            view::level(lo),
            view::level(hi),
        );
    }
    out.push_str("</table>\n");
    if streams.len() > MAX_SPARKLINES {
        let _ = writeln!(
            out,
            "<p>{} more streams are not drawn.</p>",
            streams.len() - MAX_SPARKLINES
        );
    }
}

fn anchor(model: &str, metric: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    format!("panel-{}-{}", clean(model), clean(metric))
}

fn panels(out: &mut String, v: &RunView) {
    let streams = v.levels.streams();
    let with_windows: Vec<_> = streams
        .iter()
        .filter(|((model, metric), _)| {
            v.windows
                .iter()
                .any(|w| &*w.model_id == *model && &*w.metric == *metric)
        })
        .collect();
    if with_windows.is_empty() {
        return;
    }
    out.push_str("<h2>Streams with a window</h2>\n");
    for (k, ((model, metric), series)) in with_windows.iter().enumerate() {
        let windows: Vec<&Window> = v
            .windows
            .iter()
            .filter(|w| &*w.model_id == *model && &*w.metric == *metric)
            .collect();
        let mut panel = String::new();
        let _ = writeln!(
            panel,
            "<h3 id=\"{}\">{} \u{b7} {}</h3>",
            anchor(model, metric),
            esc(model),
            esc(metric)
        );
        draw(&mut panel, k, model, metric, series, &windows, v);
        if k >= MAX_PANELS || out.len() + panel.len() + 64 * 1024 > MAX_BYTES {
            let _ = writeln!(
                out,
                "<p>{} more streams with a window are not drawn, to keep this page small; the table above lists their windows.</p>",
                with_windows.len() - k
            );
            return;
        }
        out.push_str(&panel);
    }
}

/// A window's time span; a start further back than the stream's position
/// history (no timestamp) is drawn from the detection.
fn span(w: &Window) -> (Option<i64>, Option<i64>) {
    (
        w.start.timestamp.or(w.detected.timestamp),
        w.end.timestamp.or(w.detected.timestamp),
    )
}

/// Maps event time and level to the panel's pixels.
struct Scale {
    t0: i64,
    t1: i64,
    y0: f64,
    y1: f64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LEFT + ((t.clamp(self.t0, self.t1) - self.t0) as f64 / span) * (W - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        let span = if self.y1 > self.y0 {
            self.y1 - self.y0
        } else {
            1.0
        };
        H - BOTTOM - ((v - self.y0) / span).clamp(0.0, 1.0) * (H - TOP - BOTTOM)
    }
}

/// The spread band of a bucket: the 95% interval of its mean (two
/// standard errors), within the bucket's range. A band of ±1 standard
/// deviation would say nothing on a 0/1 stream, where it spans most of
/// [0, 1] whatever the level.
fn band(b: &Bucket) -> (f64, f64) {
    let se = 2.0 * b.std_dev() / (b.count as f64).sqrt();
    ((b.mean() - se).max(b.min), (b.mean() + se).min(b.max))
}

/// A tick's number without trailing zeros: ticks are round numbers.
fn tick_label(t: f64) -> String {
    let s = view::level(t);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Five round numbers spanning `lo..hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi <= lo || hi.is_nan() || lo.is_nan() {
        return vec![lo];
    }
    let raw = (hi - lo) / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 12 {
        out.push(t);
        t += step;
    }
    out
}

fn draw(
    out: &mut String,
    k: usize,
    model: &str,
    metric: &str,
    series: &Series,
    windows: &[&Window],
    v: &RunView,
) {
    let buckets = series.downsample(PANEL_POINTS);
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return;
    };
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for b in &buckets {
        let (a, z) = band(b);
        lo = lo.min(a);
        hi = hi.max(z);
    }
    for w in windows {
        for x in [w.before, w.after] {
            if x.is_finite() {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
    }
    let pad = if hi > lo { (hi - lo) * 0.06 } else { 1.0 };
    let s = Scale {
        t0: first.first_ns,
        t1: last.last_ns,
        y0: lo - pad,
        y1: hi + pad,
    };
    let sentences: Vec<String> = windows
        .iter()
        .map(|w| {
            format!(
                "{} window from {} ({}) to {} ({}), {}: {}.",
                view::severity_word(w.severity),
                view::when(&w.start),
                view::place(&w.start),
                view::when(&w.end),
                view::place(&w.end),
                view::end_state(w),
                w.reason
            )
        })
        .collect();
    let title = format!(
        "{model} {metric}: {} window{} ({})",
        windows.len(),
        view::plural(windows.len()),
        windows
            .iter()
            .map(|w| format!("{} {}", view::severity_word(w.severity), view::change(w)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" aria-labelledby=\"t{k} d{k}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <title id=\"t{k}\">{}</title>\n<desc id=\"d{k}\">{}</desc>",
        esc(&title),
        esc(&sentences.join(" "))
    );
    let _ = writeln!(
        out,
        "<defs><pattern id=\"hatch{k}\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect x=\"0\" y=\"0\" width=\"8\" height=\"8\" fill=\"{WARNING}\" \
         fill-opacity=\"0.18\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"{WARNING}\" stroke-width=\"3\" \
         fill=\"none\"/></pattern></defs>\n<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>"
    );
    // Value axis and grid.
    for t in ticks(s.y0, s.y1) {
        let y = px(s.y(t));
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{GRID}\" stroke-width=\"1\" fill=\"none\"/>\
             <text x=\"{}\" y=\"{y}\" dy=\"4\" text-anchor=\"end\" fill=\"{MUTED}\">{}</text>",
            px(LEFT),
            px(W - RIGHT),
            px(LEFT - 6.0),
            tick_label(t)
        );
    }
    // Time axis: five labels.
    for i in 0..5 {
        let t = s.t0 + ((s.t1 - s.t0) as f64 * i as f64 / 4.0) as i64;
        let x = px(s.x(t));
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{MUTED}\" stroke-width=\"1\" fill=\"none\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"{MUTED}\">{}</text>",
            px(H - BOTTOM),
            px(H - BOTTOM + 5.0),
            px(H - BOTTOM + 17.0),
            view::time(t)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\" fill=\"{INK}\">{}{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\">event time (UTC)</text>",
        px((TOP + H - BOTTOM) / 2.0),
        px((TOP + H - BOTTOM) / 2.0),
        esc(metric),
        unit_of(metric),
        px((LEFT + W - RIGHT) / 2.0),
        px(H - BOTTOM + 31.0),
    );
    // Windows, under the data.
    for w in windows {
        let (Some(a), Some(b)) = span(w) else {
            continue;
        };
        let x0 = s.x(a);
        let x1 = s.x(b).max(x0 + 2.0);
        let fill = if w.severity == Severity::Drift {
            format!(
                "fill=\"{DRIFT}\" fill-opacity=\"0.14\" stroke=\"{DRIFT}\" stroke-opacity=\"0.5\""
            )
        } else {
            format!("fill=\"url(#hatch{k})\" stroke=\"{WARNING}\"")
        };
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {fill} stroke-width=\"1\"><title>{}</title></rect>",
            px(x0),
            px(TOP),
            px(x1 - x0),
            px(H - TOP - BOTTOM),
            esc(&w.reason)
        );
    }
    // Spread band and level line.
    let mut band: Vec<String> = Vec::with_capacity(2 * buckets.len());
    for b in &buckets {
        band.push(format!(
            "{},{}",
            px(s.x(b.mid_ns())),
            px(s.y(self::band(b).1))
        ));
    }
    for b in buckets.iter().rev() {
        band.push(format!(
            "{},{}",
            px(s.x(b.mid_ns())),
            px(s.y(self::band(b).0))
        ));
    }
    let line: Vec<String> = buckets
        .iter()
        .map(|b| format!("{},{}", px(s.x(b.mid_ns())), px(s.y(b.mean()))))
        .collect();
    let _ = writeln!(
        out,
        "<polygon points=\"{}\" fill=\"{LEVEL}\" fill-opacity=\"0.16\" stroke=\"none\"><title>95% interval of each bucket's mean</title></polygon>\n\
         <polyline points=\"{}\" fill=\"none\" stroke=\"{LEVEL}\" stroke-width=\"1.6\"><title>mean per bucket of {} values</title></polyline>",
        band.join(" "),
        line.join(" "),
        view::thousands(series.count / buckets.len().max(1) as u64)
    );
    // Before and after levels, detections.
    for w in windows {
        let (Some(a), Some(b)) = span(w) else {
            continue;
        };
        let colour = if w.severity == Severity::Drift {
            DRIFT
        } else {
            WARNING
        };
        let (xa, xb) = (s.x(a), s.x(b).max(s.x(a) + 2.0));
        let (yb, ya) = (s.y(w.before), s.y(w.after));
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{INK}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\" fill=\"none\"><title>before: {}</title></line>\
             <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"6 4\" fill=\"none\"><title>after: {}</title></line>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{INK}\">before {}</text>\
             <text x=\"{}\" y=\"{}\" fill=\"{colour}\">after {}</text>",
            px(s.x(s.t0).max(xa - 160.0)),
            px(yb),
            px(xa),
            px(yb),
            view::level(w.before),
            px(xa),
            px(ya),
            px(xb),
            px(ya),
            view::level(w.after),
            px(xa - 4.0),
            px(yb - 5.0),
            view::level(w.before),
            px(xa + 4.0),
            px(if ya > yb { ya + 14.0 } else { ya - 5.0 }),
            view::level(w.after),
        );
        if let Some(t) = w.detected.timestamp {
            let x = px(s.x(t));
            let _ = writeln!(
                out,
                "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{INK}\" stroke-width=\"1.5\" fill=\"none\"/>\
                 <polygon points=\"{},{} {},{} {x},{}\" fill=\"{INK}\"><title>detected {} at {}</title></polygon>",
                px(TOP),
                px(H - BOTTOM),
                px(s.x(t) - 5.0),
                px(TOP - 9.0),
                px(s.x(t) + 5.0),
                px(TOP - 9.0),
                px(TOP - 1.0),
                esc(&view::when(&w.detected)),
                esc(&view::place(&w.detected)),
            );
        }
    }
    // Version changes.
    for span in v.levels.versions(model).iter().skip(1) {
        if span.first_ns <= s.t0 || span.first_ns > s.t1 {
            continue;
        }
        let x = px(s.x(span.first_ns));
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{MUTED}\" stroke-width=\"1\" stroke-dasharray=\"2 3\" fill=\"none\"/>\
             <text x=\"{x}\" y=\"{}\" dx=\"3\" fill=\"{MUTED}\">version {}<title>version {} first seen {}</title></text>",
            px(TOP),
            px(H - BOTTOM),
            px(TOP + 11.0),
            esc(&span.version),
            esc(&span.version),
            view::time(span.first_ns)
        );
    }
    legend(out, k);
    out.push_str("</svg>\n");
}

fn legend(out: &mut String, k: usize) {
    let y = H - 14.0;
    let _ = writeln!(
        out,
        "<g font-size=\"10\">\
         <line x1=\"{x0}\" y1=\"{y}\" x2=\"{x1}\" y2=\"{y}\" stroke=\"{LEVEL}\" stroke-width=\"1.6\" fill=\"none\"/><text x=\"{t0}\" y=\"{ty}\" fill=\"{INK}\">level (bucket mean)</text>\
         <rect x=\"{x2}\" y=\"{ry}\" width=\"18\" height=\"9\" fill=\"{LEVEL}\" fill-opacity=\"0.16\"/><text x=\"{t2}\" y=\"{ty}\" fill=\"{INK}\">95% interval</text>\
         <rect x=\"{x3}\" y=\"{ry}\" width=\"18\" height=\"9\" fill=\"{DRIFT}\" fill-opacity=\"0.14\" stroke=\"{DRIFT}\" stroke-width=\"1\"/><text x=\"{t3}\" y=\"{ty}\" fill=\"{INK}\">drift window</text>\
         <rect x=\"{x4}\" y=\"{ry}\" width=\"18\" height=\"9\" fill=\"url(#hatch{k})\" stroke=\"{WARNING}\" stroke-width=\"1\"/><text x=\"{t4}\" y=\"{ty}\" fill=\"{INK}\">warning window (hatched)</text>\
         <line x1=\"{x5}\" y1=\"{y}\" x2=\"{x6}\" y2=\"{y}\" stroke=\"{INK}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\" fill=\"none\"/><text x=\"{t5}\" y=\"{ty}\" fill=\"{INK}\">before / after level</text>\
         <polygon points=\"{p0},{pa} {p1},{pa} {p2},{pb}\" fill=\"{INK}\"/><text x=\"{t6}\" y=\"{ty}\" fill=\"{INK}\">detection</text>\
         </g>",
        x0 = px(LEFT),
        x1 = px(LEFT + 18.0),
        t0 = px(LEFT + 22.0),
        x2 = px(LEFT + 130.0),
        t2 = px(LEFT + 152.0),
        x3 = px(LEFT + 235.0),
        t3 = px(LEFT + 257.0),
        x4 = px(LEFT + 335.0),
        t4 = px(LEFT + 357.0),
        x5 = px(LEFT + 495.0),
        x6 = px(LEFT + 513.0),
        t5 = px(LEFT + 517.0),
        p0 = px(LEFT + 635.0),
        p1 = px(LEFT + 645.0),
        p2 = px(LEFT + 640.0),
        pa = px(y - 5.0),
        pb = px(y + 4.0),
        t6 = px(LEFT + 651.0),
        ty = px(y + 3.5),
        ry = px(y - 4.5),
    );
}

fn config(out: &mut String, v: &RunView) {
    out.push_str("<h2>Configuration</h2>\n<pre>");
    let _ = writeln!(out, "# {}", esc(v.config_source));
    for m in v.monitors {
        let _ = writeln!(
            out,
            "[[monitor]]\nmetric    = {}\ndetector  = {}\ndirection = {}\nparams    = {}\n",
            esc(&format!("{:?}", m.metric)),
            esc(&format!("{:?}", m.detector.name())),
            esc(&serde_json::to_string(&m.direction).unwrap_or_default()),
            esc(&m.detector.params_json().to_string()),
        );
    }
    out.push_str("</pre>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let t = ticks(12.3, 87.9);
        assert_eq!(t, vec![20.0, 40.0, 60.0, 80.0]);
        assert_eq!(ticks(5.0, 5.0), vec![5.0]);
        assert_eq!(tick_label(20.0), "20");
        assert_eq!(tick_label(0.25), "0.25");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
