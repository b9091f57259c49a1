//! `events.jsonl`: the audit log of a model, and its cooldown memory.
//!
//! One JSON object per line, appended: `published`, `failed`, `promoted`,
//! `removed`. Every line has `at` (wall time); the lines of a retrain also
//! have `trigger_time`, the event time of the drift that started it, which is
//! what cooldown compares against in replay (wall time `at` in watch). A line
//! that does not parse (a torn write after a crash) is skipped, never fatal.

use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::durable;

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    pub at: DateTime<Utc>,
    pub model_id: String,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// A version was published.
    Published {
        version: String,
        run_id: String,
        trigger_time: Option<DateTime<Utc>>,
        parent: Option<String>,
        trial: u32,
        value: Option<f64>,
    },
    /// A trial failed (`trial` set), or a whole retrain did (`trial` null).
    Failed {
        version: String,
        run_id: String,
        trigger_time: Option<DateTime<Utc>>,
        trial: Option<u32>,
        reason: String,
    },
    /// An alias was pointed at a version.
    Promoted {
        alias: String,
        version: String,
        previous: Option<String>,
    },
    /// gc removed a version.
    Removed { version: String },
}

/// Appends one event.
pub fn append(path: &Path, line: &EventLine) -> io::Result<()> {
    durable::append_line(
        path,
        &serde_json::to_string(line).expect("event serialises"),
    )
}

/// Every readable event, in file order; a missing file has none.
pub fn read(path: &Path) -> io::Result<Vec<EventLine>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// When the last retrain started, for cooldown: the latest `trigger_time`
/// (event time) and the latest `at` (wall time) of retrain events.
pub fn last_retrain(events: &[EventLine]) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut event_time = None;
    let mut wall = None;
    for line in events {
        let trigger = match &line.event {
            Event::Published { trigger_time, .. } => trigger_time,
            Event::Failed { trigger_time, .. } => trigger_time,
            _ => continue,
        };
        event_time = event_time.max(*trigger);
        wall = wall.max(Some(line.at));
    }
    (event_time, wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let line = EventLine {
            at: t("2024-05-01T12:00:00Z"),
            model_id: "m".into(),
            event: Event::Failed {
                version: "1.0.1".into(),
                run_id: "r".into(),
                trigger_time: Some(t("2024-04-01T00:00:00Z")),
                trial: None,
                reason: "exit status 1".into(),
            },
        };
        append(&path, &line).unwrap();
        fs::write(
            &path,
            format!("{}{{\"at\":", fs::read_to_string(&path).unwrap()),
        )
        .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "{\"at\":\"2024-05-01T12:00:00Z\",\"model_id\":\"m\",\"event\":\"failed\""
        ));
        assert_eq!(read(&path).unwrap(), vec![line.clone()]);
        let (event, wall) = last_retrain(&[line]);
        assert_eq!(event, Some(t("2024-04-01T00:00:00Z")));
        assert_eq!(wall, Some(t("2024-05-01T12:00:00Z")));
    }
}
