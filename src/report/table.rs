//! The `table` report: one aligned line per window, then the summary, for a
//! person at a terminal.

use std::io::{self, Write};

use super::Summary;
use crate::window::{Point, Window};

fn at(p: &Point) -> String {
    match (p.file.as_deref(), p.line) {
        (Some(file), Some(line)) => format!("#{} {}:{}", p.index, short(file), line),
        _ => format!("#{}", p.index),
    }
}

/// The file name without its folders, to keep the table narrow.
fn short(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

fn num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

pub fn write<W: Write>(mut out: W, windows: &[Window], s: &Summary) -> io::Result<()> {
    let header = [
        "SEVERITY", "MODEL", "VERSION", "METRIC", "DETECTOR", "START", "DETECTED", "END", "BEFORE",
        "AFTER", "CHANGE",
    ];
    let rows: Vec<[String; 11]> = windows
        .iter()
        .map(|w| {
            let end_reason = w
                .end_reason
                .map(|r| format!(" ({})", json_word(&r)))
                .unwrap_or_default();
            [
                json_word(&w.severity),
                w.model_id.to_string(),
                w.model_version.as_deref().unwrap_or("-").to_string(),
                w.metric.to_string(),
                w.detector.name.clone(),
                at(&w.start),
                at(&w.detected),
                format!("{}{end_reason}", at(&w.end)),
                num(w.before),
                num(w.after),
                format!("{:+.4}", w.change),
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(out, "no drift windows")?;
    } else {
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        writeln!(out, "{}", line(&header.map(String::from)))?;
        for r in &rows {
            writeln!(out, "{}", line(r))?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} records from {} file{} ({:.1} MB) in {:.2} s, {:.0} records/s",
        s.records,
        s.files,
        if s.files == 1 { "" } else { "s" },
        s.bytes as f64 / 1e6,
        s.elapsed_s,
        s.records_per_s
    )?;
    writeln!(
        out,
        "{} rejected, {} out of order, {} streams; windows: {} drift, {} warning; retrains: {} ok, {} failed",
        s.rejected,
        s.out_of_order,
        s.streams,
        s.windows.drift,
        s.windows.warning,
        s.retrains.ok,
        s.retrains.failed
    )?;
    if !s.unseen.is_empty() {
        let quoted = |v: &[String]| {
            v.iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !s.unseen.metrics.is_empty() {
            parts.push(format!("metrics {}", quoted(&s.unseen.metrics)));
        }
        if !s.unseen.fields.is_empty() {
            parts.push(format!("fields {}", quoted(&s.unseen.fields)));
        }
        writeln!(out, "in no record: {}", parts.join("; "))?;
    }
    if let Some(signal) = s.interrupted {
        writeln!(
            out,
            "interrupted by {signal}: this report covers what was read before it"
        )?;
    }
    Ok(())
}

fn json_word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
