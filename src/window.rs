//! Drift windows: detections of one detector on one stream (SPEC §5).
//!
//! A drift window is an episode: it opens at a detection, starts at the
//! change point located among the stream's values (`crate::episode`), is
//! extended by later detections while it is open, and closes when the stream
//! recovers, when its version is retired, or at the end of input. Warning
//! windows (and every window under `merge_gap = 0`) are the detector's view:
//! they start at its estimate, are extended by detections within `merge_gap`
//! positions and close when the gap passes quietly. A warning window that
//! gets a drift-level detection escalates: it keeps its start, records the
//! first warning as `warned`, and its `detected` moves to the first drift.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::detect::{Change, Direction};

/// A position in a stream, resolved to where it is in the input.
///
/// `file`, `line` and `timestamp` are `None` only for a change start further
/// back than the stream's position history (`[report] history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub index: u64,
    pub file: Option<Arc<str>>,
    pub line: Option<u64>,
    #[serde(with = "opt_time")]
    pub timestamp: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Drift,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndReason {
    /// `merge_gap` positions passed without a detection.
    Quiet,
    /// The stream went back toward its level before the change.
    Recovered,
    /// The model version was retired (no record for `version_idle`).
    Reset,
    /// The input ended.
    Eof,
}

/// What `before` and `after` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Levels {
    /// The detector's own estimates (warning windows, `merge_gap = 0`).
    Detector,
    /// Measured means of the stream's values.
    Mean,
    /// Measured geometric means (a detector with `log = true`).
    GeometricMean,
}

/// The detector as the report shows it: name and every parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorInfo {
    pub name: String,
    pub params: serde_json::Value,
}

/// What a window is about: the stream and the monitor watching it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub model_id: &'a Arc<str>,
    pub model_version: Option<&'a Arc<str>>,
    pub metric: &'a Arc<str>,
    pub detector: &'a Arc<DetectorInfo>,
    pub direction: Direction,
}

/// One drift or warning window, in the field order of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub model_id: Arc<str>,
    pub model_version: Option<Arc<str>>,
    pub metric: Arc<str>,
    pub detector: Arc<DetectorInfo>,
    pub direction: Direction,
    pub severity: Severity,
    pub start: Point,
    pub detected: Point,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub warned: Option<Point>,
    pub end: Point,
    pub end_reason: Option<EndReason>,
    pub before: f64,
    pub after: f64,
    pub change: f64,
    pub levels: Levels,
    pub detections: u64,
    pub events: u64,
    pub reason: String,
    /// What the window's training run came to; the run core fills it in
    /// when the window closes (the pipeline never does).
    pub retrain: Option<crate::retrain::RetrainNote>,
    /// Opening order over the whole run; orders the report.
    #[serde(skip)]
    pub id: u64,
}

impl Window {
    /// A window opened by its first detection.
    pub fn open(
        id: u64,
        subject: Subject<'_>,
        severity: Severity,
        start: Point,
        at: Point,
        change: &Change,
    ) -> Window {
        let mut w = Window {
            model_id: subject.model_id.clone(),
            model_version: subject.model_version.cloned(),
            metric: subject.metric.clone(),
            detector: subject.detector.clone(),
            direction: subject.direction,
            severity,
            start,
            detected: at.clone(),
            warned: None,
            end: at,
            end_reason: None,
            before: change.before,
            after: change.after,
            change: 0.0,
            levels: Levels::Detector,
            detections: 1,
            events: 0,
            reason: String::new(),
            retrain: None,
            id,
        };
        w.refresh();
        w
    }

    /// Adds a detection within `merge_gap`; returns true if it escalated the
    /// window from a warning to a drift.
    pub fn extend(&mut self, severity: Severity, at: Point, change: &Change) -> bool {
        let escalated = severity == Severity::Drift && self.severity == Severity::Warning;
        if escalated {
            self.severity = Severity::Drift;
            self.warned = Some(std::mem::replace(&mut self.detected, at.clone()));
        }
        self.end = at;
        self.detections += 1;
        self.after = change.after;
        self.refresh();
        escalated
    }

    /// Sets the measured levels.
    pub fn measured(&mut self, before: f64, after: f64, levels: Levels) {
        self.before = before;
        self.after = after;
        self.levels = levels;
        self.refresh();
    }

    /// Adds a detection to an open episode: its end moves to it, its
    /// measured levels stay.
    pub fn extend_episode(&mut self, at: Point) {
        if at.index > self.end.index {
            self.end = at;
        }
        self.detections += 1;
        self.refresh();
    }

    pub fn close(&mut self, reason: EndReason) {
        self.end_reason = Some(reason);
        self.refresh();
    }

    /// Recomputes the derived fields.
    fn refresh(&mut self) {
        self.change = self.after - self.before;
        self.events = self.end.index.saturating_sub(self.start.index) + 1;
        self.reason = self.sentence();
    }

    fn sentence(&self) -> String {
        let verb = if self.after < self.before {
            "fell"
        } else if self.after > self.before {
            "rose"
        } else {
            "changed"
        };
        let what = match self.severity {
            Severity::Drift => "drift",
            Severity::Warning => "warning",
        };
        let levels = match self.levels {
            Levels::GeometricMean => "; geometric means",
            _ => "",
        };
        let state = match self.end_reason {
            _ if self.levels == Levels::Detector => "",
            None => "; still open",
            Some(EndReason::Eof) => "; still changed at the end of input",
            Some(EndReason::Recovered) => "; recovered",
            Some(EndReason::Reset) => "; version retired",
            Some(EndReason::Quiet) => "",
        };
        format!(
            "{} of model {} {verb} from {} to {} ({what} by {}, {} detection{} over {} records{levels}{state})",
            self.metric,
            self.model_id,
            round4(self.before),
            round4(self.after),
            self.detector.name,
            self.detections,
            if self.detections == 1 { "" } else { "s" },
            self.events,
        )
    }
}

/// Four significant decimals for sentences, not for the data fields.
fn round4(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A change in a window's life, as `--format jsonl` streams it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Opened,
    Escalated,
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub window: Window,
}

/// RFC 3339 in JSON, nanoseconds in memory.
mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(ns) => s.serialize_str(&crate::timestamp::format(*ns)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => crate::timestamp::parse_str(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: u64) -> Point {
        Point {
            index: i,
            file: Some(Arc::from("m.jsonl")),
            line: Some(i + 1),
            timestamp: Some(i as i64 * 1_000_000_000),
        }
    }

    fn window(severity: Severity) -> Window {
        let info = Arc::new(DetectorInfo {
            name: "decay".into(),
            params: serde_json::json!({}),
        });
        let (m, metric) = (Arc::from("churn"), Arc::from("accuracy"));
        let change = Change {
            lookback: 5,
            before: 0.9,
            after: 0.8,
        };
        let subject = Subject {
            model_id: &m,
            model_version: None,
            metric: &metric,
            detector: &info,
            direction: Direction::Decrease,
        };
        Window::open(0, subject, severity, point(5), point(10), &change)
    }

    #[test]
    fn escalation_keeps_the_start_and_records_the_warning() {
        let mut w = window(Severity::Warning);
        assert!(!w.extend(
            Severity::Warning,
            point(12),
            &Change {
                lookback: 0,
                before: 0.9,
                after: 0.79
            }
        ));
        assert!(w.extend(
            Severity::Drift,
            point(20),
            &Change {
                lookback: 0,
                before: 0.9,
                after: 0.7
            }
        ));
        assert_eq!(w.severity, Severity::Drift);
        assert_eq!(w.start.index, 5);
        assert_eq!(w.warned.as_ref().map(|p| p.index), Some(10));
        assert_eq!(w.detected.index, 20);
        assert_eq!(w.events, 16);
        assert_eq!(w.detections, 3);
        assert!((w.change + 0.2).abs() < 1e-12);
        assert_eq!(
            w.reason,
            "accuracy of model churn fell from 0.9 to 0.7 (drift by decay, 3 detections over 16 records)"
        );
    }

    #[test]
    fn serialises_points_with_rfc3339_timestamps() {
        let mut w = window(Severity::Drift);
        w.close(EndReason::Eof);
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["start"]["timestamp"], "1970-01-01T00:00:05Z");
        assert_eq!(v["end_reason"], "eof");
        assert!(v.get("warned").is_none());
        let back: Window = serde_json::from_value(v).unwrap();
        assert_eq!(back.end, w.end);
    }
}
