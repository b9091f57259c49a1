//! The `table` report, for a person at an 80-column terminal: one line per
//! window (state, model and version, metric, the change as `before → after
//! (±x%)`, when it started and where), a legend for the state letters, then
//! the summary. `watch` prints each event's line as it happens.

use std::io::{self, Write};

use super::Summary;
use crate::window::{EndReason, EventKind, Point, Severity, Window};

/// The state letter of a window: upper case a drift, lower case a warning.
fn state(w: &Window) -> char {
    let c = match w.end_reason {
        None | Some(EndReason::Eof) => 'O',
        Some(EndReason::Recovered) => 'R',
        Some(EndReason::Reset) => 'X',
        Some(EndReason::Quiet) => 'Q',
    };
    match w.severity {
        Severity::Drift => c,
        Severity::Warning => c.to_ascii_lowercase(),
    }
}

const LEGEND: &str = "O open (still changed at the end of input)  R recovered  X version retired\n\
Q quiet (merge_gap passed)  lower case: a warning  * geometric means";

/// The date and the time of day (UTC) of a point.
fn when(p: &Point) -> (String, String) {
    match p.timestamp {
        Some(ns) => {
            let t = crate::timestamp::format(ns);
            (t[..10].to_string(), t.get(11..19).unwrap_or("").to_string())
        }
        None => (String::new(), "?".to_string()),
    }
}

/// `file:line` with the path as given, or `#index` when it is not known.
fn place(p: &Point) -> String {
    match (p.file.as_deref(), p.line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        _ => format!("#{}", p.index),
    }
}

/// The cells of a window's line; the start time with its date when `dated`.
fn cells(w: &Window, dated: bool) -> [String; 6] {
    let (date, time) = when(&w.start);
    let version = w.model_version.as_deref().unwrap_or("-");
    [
        state(w).to_string(),
        format!("{} {version}", w.model_id),
        w.metric.to_string(),
        super::view::change(w),
        if dated {
            format!("{date} {time}")
        } else {
            time
        },
        place(&w.start),
    ]
}

fn join(cells: &[String], widths: &[usize]) -> String {
    let parts: Vec<String> = cells
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (c, &w))| {
            let pad = w.saturating_sub(c.chars().count());
            // The state letter is followed by one space, the rest by two.
            let gap = if i == 0 { 1 } else { 2 };
            format!("{c}{}", " ".repeat(pad + gap))
        })
        .collect();
    parts.concat().trim_end().to_string()
}

const HEADER: [&str; 6] = ["", "MODEL", "METRIC", "CHANGE", "START", "WHERE"];

pub fn write<W: Write>(mut out: W, windows: &[Window], s: &Summary) -> io::Result<()> {
    if windows.is_empty() {
        writeln!(out, "no drift windows")?;
    } else {
        let dates: Vec<String> = windows.iter().map(|w| when(&w.start).0).collect();
        let one_date = dates.iter().all(|d| *d == dates[0]) && !dates[0].is_empty();
        let rows: Vec<[String; 6]> = windows.iter().map(|w| cells(w, !one_date)).collect();
        let mut widths = HEADER.map(|h| h.chars().count());
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let title = if one_date {
            format!("start times in UTC on {}", dates[0])
        } else {
            "start times in UTC".to_string()
        };
        writeln!(out, "{title}")?;
        writeln!(out, "{}", join(&HEADER.map(String::from), &widths))?;
        for r in &rows {
            writeln!(out, "{}", join(r, &widths))?;
        }
        writeln!(out, "{LEGEND}")?;
    }
    write_summary(&mut out, s)
}

/// Widths of the live lines of `watch`, which cannot wait for every row.
const LIVE: [usize; 6] = [1, 14, 10, 24, 19, 0];

/// One line for a window event as it happens (`watch --format table`):
/// `+` opened, `^` escalated, else the state letter of the closed window.
pub fn write_event<W: Write>(mut out: W, kind: EventKind, w: &Window) -> io::Result<()> {
    let mut c = cells(w, true);
    c[0] = match kind {
        EventKind::Opened => "+".to_string(),
        EventKind::Escalated => "^".to_string(),
        EventKind::Closed => c[0].clone(),
    };
    writeln!(out, "{}", join(&c, &LIVE))
}

/// The legend of the live lines, printed before the first.
pub fn live_legend<W: Write>(mut out: W) -> io::Result<()> {
    writeln!(
        out,
        "+ opened  ^ escalated to a drift; closed: {LEGEND}\nstart times in UTC"
    )
}

pub fn write_summary<W: Write>(mut out: W, s: &Summary) -> io::Result<()> {
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
        "{} rejected, {} out of order, {} streams; windows: {} drift, {} warning",
        s.rejected, s.out_of_order, s.streams, s.windows.drift, s.windows.warning,
    )?;
    writeln!(
        out,
        "retrains: {} ok, {} failed; versions: {}",
        s.retrains.ok,
        s.retrains.failed,
        s.versions
            .iter()
            .map(|v| format!(
                "{} {}",
                v.model_id,
                v.model_version.as_deref().unwrap_or("-")
            ))
            .collect::<Vec<_>>()
            .join(", ")
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
