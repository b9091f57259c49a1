//! What the `--report` renderers are given: one run's windows, summary,
//! levels and monitors, with the words and numbers they share.
//!
//! Every renderer is a pure function of a [`RunView`], so each format is
//! tested on its own and identical runs give identical bytes.

use crate::config::{FailOn, Monitor};
use crate::window::{Point, Severity, Window};

use super::Summary;
use super::levels::Levels;

pub struct RunView<'a> {
    /// Closed windows, then (in `watch`) the still-open ones, in opening order.
    pub windows: &'a [Window],
    pub summary: &'a Summary,
    pub levels: &'a Levels,
    pub monitors: &'a [Monitor],
    /// Where the configuration came from.
    pub config_source: &'a str,
    /// The level at which a window fails the run (`--fail-on`).
    pub fail_on: FailOn,
    /// The run was stopped by a signal before the end of its input.
    pub interrupted: bool,
}

impl RunView<'_> {
    pub fn count(&self, severity: Severity) -> usize {
        self.windows
            .iter()
            .filter(|w| w.severity == severity)
            .count()
    }

    /// The verdict in words, for a headline.
    pub fn verdict(&self) -> String {
        let drift = self.count(Severity::Drift);
        let warning = self.count(Severity::Warning);
        let open = self
            .windows
            .iter()
            .filter(|w| w.severity == Severity::Drift && is_open(w))
            .count();
        let mut s = match (drift, warning) {
            (0, 0) => "No drift: no window was found".to_string(),
            (0, w) => format!("No drift; {w} warning window{}", plural(w)),
            (d, w) => {
                let models: std::collections::BTreeSet<&str> = self
                    .windows
                    .iter()
                    .filter(|x| x.severity == Severity::Drift)
                    .map(|x| &*x.model_id)
                    .collect();
                let models: Vec<&str> = models.into_iter().collect();
                format!(
                    "Drift: {d} drift window{} in {} ({})",
                    plural(d),
                    if models.len() == 1 { "model" } else { "models" },
                    models.join(", ")
                ) + &if w > 0 {
                    format!(", and {w} warning window{}", plural(w))
                } else {
                    String::new()
                }
            }
        };
        if open > 0 {
            s += &format!("; {open} still degraded at the end of the input");
        }
        if self.interrupted {
            s += " (interrupted before the end of the input)";
        }
        s
    }

    /// Whether the window is at or above the `--fail-on` level.
    pub fn fails(&self, w: &Window) -> bool {
        match self.fail_on {
            FailOn::None => false,
            FailOn::Warning => true,
            FailOn::Drift => w.severity == Severity::Drift,
        }
    }

    /// `files, records (rejected), time range` in one sentence.
    pub fn what_was_read(&self) -> String {
        let s = self.summary;
        let range = self
            .levels
            .time_range()
            .map(|(a, b)| format!(", from {} to {}", time(a), time(b)))
            .unwrap_or_default();
        format!(
            "{} file{}, {} records ({} rejected){range}",
            s.files,
            plural(s.files as usize),
            thousands(s.records),
            thousands(s.rejected)
        )
    }
}

pub fn is_open(w: &Window) -> bool {
    matches!(w.end_reason, None | Some(crate::window::EndReason::Eof))
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// RFC 3339, seconds precision: what a person reads.
pub fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp(ns.div_euclid(1_000_000_000), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ns.to_string())
}

/// `file:line` of a point, or `#index` when it is not known.
pub fn place(p: &Point) -> String {
    match (p.file.as_deref(), p.line) {
        (Some(f), Some(l)) => format!("{f}:{l}"),
        _ => format!("#{}", p.index),
    }
}

pub fn when(p: &Point) -> String {
    p.timestamp.map(time).unwrap_or_else(|| "-".to_string())
}

/// A level in about four significant digits (`-` when not a number).
pub fn level(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "-".into()
    } else if a < 10.0 {
        format!("{x:.3}")
    } else if a < 100.0 {
        format!("{x:.2}")
    } else if a < 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// `0.924 → 0.808 (−12.6%)`, with a true minus sign; `*` marks geometric
/// means.
pub fn change(w: &Window) -> String {
    let mark = if w.levels == crate::window::Levels::GeometricMean {
        "*"
    } else {
        ""
    };
    let mut s = format!("{} → {}{mark}", level(w.before), level(w.after));
    if w.before != 0.0 && w.before.is_finite() && w.after.is_finite() {
        let pct = (w.after - w.before) / w.before.abs() * 100.0;
        let sign = if pct < 0.0 { '−' } else { '+' };
        s.push_str(&format!(" ({sign}{:.1}%)", pct.abs()));
    }
    s
}

pub fn end_state(w: &Window) -> String {
    match w.end_reason {
        None => "open".into(),
        Some(r) => {
            let word = serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if word == "eof" {
                "open at end of input".into()
            } else {
                word
            }
        }
    }
}

pub fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Drift => "drift",
        Severity::Warning => "warning",
    }
}

/// A Unicode sparkline of bucket means.
pub fn sparkline(means: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    means
        .iter()
        .map(|&m| {
            if hi <= lo || hi.is_nan() || lo.is_nan() {
                BARS[3]
            } else {
                BARS[(((m - lo) / (hi - lo)) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(level(0.92431), "0.924");
        assert_eq!(level(57.04), "57.04");
        assert_eq!(sparkline(&[0.0, 0.5, 1.0]), "▁▅█");
        assert_eq!(sparkline(&[2.0, 2.0]), "▄▄");
    }
}
