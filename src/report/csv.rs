//! The `csv` report: one row per window, nested fields flattened.

use std::io::{self, Write};

use crate::window::{Point, Window};

const POINTS: [&str; 4] = ["start", "detected", "warned", "end"];

fn header() -> Vec<String> {
    let mut h: Vec<String> = [
        "model_id",
        "model_version",
        "metric",
        "detector",
        "params",
        "direction",
        "severity",
    ]
    .map(String::from)
    .into();
    for p in POINTS {
        for f in ["index", "file", "line", "timestamp"] {
            h.push(format!("{p}_{f}"));
        }
    }
    h.extend(
        [
            "end_reason",
            "before",
            "after",
            "change",
            "levels",
            "detections",
            "events",
            "reason",
            "retrain",
        ]
        .map(String::from),
    );
    h
}

fn point_fields(p: Option<&Point>) -> [String; 4] {
    match p {
        None => Default::default(),
        Some(p) => [
            p.index.to_string(),
            p.file.as_deref().unwrap_or_default().to_string(),
            p.line.map(|l| l.to_string()).unwrap_or_default(),
            p.timestamp
                .map(crate::timestamp::format)
                .unwrap_or_default(),
        ],
    }
}

fn json_field<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) => String::new(),
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub fn write<W: Write>(out: W, windows: &[Window]) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(header())?;
    for win in windows {
        let mut row = vec![
            win.model_id.to_string(),
            win.model_version.as_deref().unwrap_or_default().to_string(),
            win.metric.to_string(),
            win.detector.name.clone(),
            win.detector.params.to_string(),
            win.direction.as_str().to_string(),
            json_field(&win.severity),
        ];
        for p in [
            Some(&win.start),
            Some(&win.detected),
            win.warned.as_ref(),
            Some(&win.end),
        ] {
            row.extend(point_fields(p));
        }
        row.extend([
            json_field(&win.end_reason),
            json_field(&win.before),
            json_field(&win.after),
            json_field(&win.change),
            json_field(&win.levels),
            win.detections.to_string(),
            win.events.to_string(),
            win.reason.clone(),
            json_field(&win.retrain),
        ]);
        w.write_record(row)?;
    }
    w.flush()
}
