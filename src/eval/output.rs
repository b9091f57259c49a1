//! The four renderings of an evaluation: `table` (for a person),
//! `markdown` (the same tables, GitHub-flavoured), `csv` (one row per
//! monitor, total and baseline of every run) and `json` (`mmon.eval/1`).

use std::io::{self, Write};

use serde::Serialize;

use super::grid::Axis;
use super::score::{Score, Spread};
use super::truth::TruthFormat;
use super::{Format, MonitorScore, Run, SCHEMA, Scored};

/// Everything an evaluation report shows.
pub struct View<'a> {
    pub logs: &'a [String],
    pub records: u64,
    pub rejected: u64,
    pub truth_file: &'a str,
    pub truth_format: TruthFormat,
    /// Changes in the truth file, and (change, stream) pairs located.
    pub truth_changes: usize,
    pub located: usize,
    pub max_delay: u64,
    pub axes: &'a [Axis],
    pub runs: &'a [Run],
    pub scored: &'a [Scored],
    /// Run numbers, best first.
    pub order: &'a [usize],
    pub elapsed_s: f64,
}

pub fn write(format: Format, view: &View<'_>, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => json(view, out),
        Format::Csv => csv(view, out),
        Format::Table => text(view, out, false),
        Format::Markdown => text(view, out, true),
    }
}

fn label(run: &Run) -> String {
    let mut s = run.config.source.clone();
    for (path, value) in &run.point {
        s.push_str(&format!(" {path}={}", super::grid::inline(value)));
    }
    s
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".to_string(), |x| format!("{x:.digits$}"))
}

fn spread(s: Option<Spread>) -> String {
    s.map_or_else(
        || "–".to_string(),
        |s| format!("{:.0}/{:.0}", s.median, s.p90),
    )
}

fn levels(s: &Score) -> String {
    let pct = |x: Option<Spread>| {
        x.map_or_else(|| "–".to_string(), |x| format!("{:.1}%", x.median * 100.0))
    };
    if s.level_error_before.is_none() && s.level_error_after.is_none() {
        return "–".into();
    }
    format!("{}/{}", pct(s.level_error_before), pct(s.level_error_after))
}

const DETAIL: [&str; 14] = [
    "monitor",
    "changes",
    "hit",
    "missed",
    "dup",
    "FA",
    "FA/100k",
    "delay p50/p90",
    "onset p50/p90",
    "level b/a",
    "P",
    "R",
    "F1",
    "F1 TCPD",
];

fn detail_cells(name: String, s: &Score) -> Vec<String> {
    vec![
        name,
        s.changes.to_string(),
        s.detected.to_string(),
        s.missed.to_string(),
        s.duplicates.to_string(),
        s.false_alarms.to_string(),
        opt(s.false_alarms_per_100k, 2),
        spread(s.delay),
        spread(s.onset_error),
        levels(s),
        opt(s.precision, 3),
        opt(s.recall, 3),
        opt(s.f1, 3),
        opt(s.f1_tcpd, 3),
    ]
}

fn detail_rows(s: &Scored, max_delay: u64) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = s
        .monitors
        .iter()
        .map(|m| {
            detail_cells(
                format!("{} {} {}", m.monitor, m.metric, m.detector),
                &m.score,
            )
        })
        .collect();
    rows.push(detail_cells("total".into(), &s.total));
    rows.push(detail_cells("baseline: none".into(), &s.none));
    rows.push(detail_cells(
        format!("baseline: every {max_delay}"),
        &s.periodic,
    ));
    rows
}

fn ranking(view: &View<'_>) -> (Vec<String>, Vec<Vec<String>>, usize) {
    let configs = {
        let mut c: Vec<&str> = view.runs.iter().map(|r| r.config.source.as_str()).collect();
        c.dedup();
        c.len()
    };
    let mut header = vec!["rank".to_string()];
    if configs > 1 {
        header.push("config".into());
    }
    header.extend(view.axes.iter().map(|a| a.path.clone()));
    let text_columns = header.len();
    header.extend(
        [
            "hit/changes",
            "FA",
            "delay p50/p90",
            "onset p50/p90",
            "P",
            "R",
            "F1",
            "F1 TCPD",
        ]
        .map(String::from),
    );
    let cells = |s: &Score| {
        vec![
            format!("{}/{}", s.detected, s.changes),
            s.false_alarms.to_string(),
            spread(s.delay),
            spread(s.onset_error),
            opt(s.precision, 3),
            opt(s.recall, 3),
            opt(s.f1, 3),
            opt(s.f1_tcpd, 3),
        ]
    };
    let mut rows = Vec::new();
    for (rank, &i) in view.order.iter().enumerate() {
        let run = &view.runs[i];
        let mut row = vec![(rank + 1).to_string()];
        if configs > 1 {
            row.push(run.config.source.clone());
        }
        row.extend(run.point.iter().map(|(_, v)| super::grid::inline(v)));
        row.extend(cells(&view.scored[i].total));
        rows.push(row);
    }
    if let Some(&best) = view.order.first() {
        let s = &view.scored[best];
        for (name, score) in [
            ("baseline: none".to_string(), &s.none),
            (format!("baseline: every {}", view.max_delay), &s.periodic),
        ] {
            // The name where the point would be: a rank would mislead.
            let mut row = vec![String::new(); text_columns];
            row[0] = "–".into();
            row[text_columns.min(2) - 1] = name;
            row.extend(cells(score));
            rows.push(row);
        }
    }
    (header, rows, text_columns)
}

/// Renders rows under `header`; the first `text` columns are left-aligned.
fn grid_text(
    out: &mut dyn Write,
    header: &[String],
    rows: &[Vec<String>],
    text: usize,
    markdown: bool,
) -> io::Result<()> {
    let n = header.len();
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count())
            .chain([header[c].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..n).map(width).collect();
    let pad = |s: &str, c: usize| {
        let fill = " ".repeat(widths[c].saturating_sub(s.chars().count()));
        if c < text {
            format!("{s}{fill}")
        } else {
            format!("{fill}{s}")
        }
    };
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().enumerate().map(|(c, s)| pad(s, c)).collect();
        if markdown {
            format!("| {} |", cells.join(" | "))
        } else {
            cells.join("  ").trim_end().to_string()
        }
    };
    writeln!(out, "{}", line(header))?;
    if markdown {
        let rule: Vec<String> = (0..n)
            .map(|c| {
                let dashes = "-".repeat(widths[c].max(3));
                if c < text {
                    dashes
                } else {
                    format!("{}:", &dashes[1..])
                }
            })
            .collect();
        writeln!(out, "| {} |", rule.join(" | "))?;
    }
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

fn text(view: &View<'_>, out: &mut dyn Write, markdown: bool) -> io::Result<()> {
    let heading = |out: &mut dyn Write, level: usize, s: &str| -> io::Result<()> {
        if markdown {
            writeln!(out, "{} {s}\n", "#".repeat(level))
        } else {
            writeln!(out, "{s}")
        }
    };
    heading(out, 2, "mmon eval")?;
    writeln!(
        out,
        "{} record{} of {} ({} rejected); truth {}: {} change{}, {} in monitored streams; a detection counts within {} records of its change.",
        view.records,
        if view.records == 1 { "" } else { "s" },
        view.logs.join(", "),
        view.rejected,
        view.truth_file,
        view.truth_changes,
        if view.truth_changes == 1 { "" } else { "s" },
        view.located,
        view.max_delay
    )?;
    writeln!(out)?;
    if view.runs.len() > 1 {
        heading(out, 3, &format!("Ranking of {} runs", view.runs.len()))?;
        let (header, rows, text_cols) = ranking(view);
        grid_text(out, &header, &rows, text_cols, markdown)?;
        writeln!(out)?;
    }
    if let Some(&best) = view.order.first() {
        let title = if view.runs.len() > 1 {
            format!("Best: {}", label(&view.runs[best]))
        } else {
            label(&view.runs[best])
        };
        heading(out, 3, &title)?;
        let header: Vec<String> = DETAIL.map(String::from).into();
        grid_text(
            out,
            &header,
            &detail_rows(&view.scored[best], view.max_delay),
            1,
            markdown,
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "hit: changes detected within {} records; dup: further detections of a detected change; FA: false alarms; delay and onset error (|start − change|) in the stream's records; level b/a: median error of before/after relative to the true level; F1 TCPD: margin 5, index 0 added, mean over streams.",
            view.max_delay
        )?;
        if let Some(block) = &view.runs[best].block {
            writeln!(out)?;
            heading(out, 3, "The best point as configuration")?;
            if markdown {
                writeln!(out, "```toml\n{block}```")?;
            } else {
                write!(out, "{block}")?;
            }
        }
    }
    Ok(())
}

const CSV_HEADER: [&str; 29] = [
    "rank",
    "config",
    "point",
    "row",
    "monitor",
    "metric",
    "detector",
    "params",
    "direction",
    "streams",
    "records",
    "changes",
    "detected",
    "missed",
    "duplicates",
    "false_alarms",
    "false_alarms_per_100k",
    "delay_median",
    "delay_p90",
    "onset_error_median",
    "onset_error_p90",
    "level_error_before_median",
    "level_error_before_p90",
    "level_error_after_median",
    "level_error_after_p90",
    "precision",
    "recall",
    "f1",
    "f1_tcpd",
];

fn csv(view: &View<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    let num = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    for (rank, &i) in view.order.iter().enumerate() {
        let run = &view.runs[i];
        let point: Vec<String> = run
            .point
            .iter()
            .map(|(p, v)| format!("{p}={}", super::grid::inline(v)))
            .collect();
        let s = &view.scored[i];
        let mut rows: Vec<(&str, Option<&MonitorScore>, &Score)> = s
            .monitors
            .iter()
            .map(|m| ("monitor", Some(m), &m.score))
            .collect();
        rows.push(("total", None, &s.total));
        rows.push(("baseline_none", None, &s.none));
        rows.push(("baseline_periodic", None, &s.periodic));
        for (kind, m, sc) in rows {
            let mut rec = vec![
                (rank + 1).to_string(),
                run.config.source.clone(),
                point.join(";"),
                kind.to_string(),
                m.map(|m| m.monitor.to_string()).unwrap_or_default(),
                m.map(|m| m.metric.clone()).unwrap_or_default(),
                m.map(|m| m.detector.clone()).unwrap_or_default(),
                m.map(|m| m.params.to_string()).unwrap_or_default(),
                m.map(|m| m.direction.as_str().to_string())
                    .unwrap_or_default(),
            ];
            rec.extend(
                [
                    sc.streams,
                    sc.records,
                    sc.changes,
                    sc.detected,
                    sc.missed,
                    sc.duplicates,
                    sc.false_alarms,
                ]
                .map(|n| n.to_string()),
            );
            rec.push(num(sc.false_alarms_per_100k));
            for sp in [
                sc.delay,
                sc.onset_error,
                sc.level_error_before,
                sc.level_error_after,
            ] {
                rec.push(num(sp.map(|s| s.median)));
                rec.push(num(sp.map(|s| s.p90)));
            }
            rec.extend([sc.precision, sc.recall, sc.f1, sc.f1_tcpd].map(num));
            w.write_record(&rec)?;
        }
    }
    w.flush()
}

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    mmon_version: &'static str,
    logs: &'a [String],
    records: u64,
    rejected: u64,
    truth: TruthDoc<'a>,
    max_delay: u64,
    grid: Vec<AxisDoc<'a>>,
    /// Best first.
    runs: Vec<RunDoc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    best_toml: Option<&'a str>,
    elapsed_s: f64,
}

#[derive(Serialize)]
struct TruthDoc<'a> {
    file: &'a str,
    format: TruthFormat,
    changes: usize,
    located: usize,
}

#[derive(Serialize)]
struct AxisDoc<'a> {
    path: &'a str,
    values: Vec<&'a toml::Value>,
}

#[derive(Serialize)]
struct RunDoc<'a> {
    rank: usize,
    config: &'a str,
    point: serde_json::Map<String, serde_json::Value>,
    monitors: &'a [MonitorScore],
    total: &'a Score,
    baselines: Baselines<'a>,
}

#[derive(Serialize)]
struct Baselines<'a> {
    none: &'a Score,
    periodic: &'a Score,
}

fn json(view: &View<'_>, out: &mut dyn Write) -> io::Result<()> {
    let runs = view
        .order
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let run = &view.runs[i];
            let s = &view.scored[i];
            RunDoc {
                rank: rank + 1,
                config: &run.config.source,
                point: run
                    .point
                    .iter()
                    .map(|(p, v)| (p.clone(), serde_json::to_value(v).unwrap_or_default()))
                    .collect(),
                monitors: &s.monitors,
                total: &s.total,
                baselines: Baselines {
                    none: &s.none,
                    periodic: &s.periodic,
                },
            }
        })
        .collect();
    let doc = Document {
        schema: SCHEMA,
        mmon_version: env!("CARGO_PKG_VERSION"),
        logs: view.logs,
        records: view.records,
        rejected: view.rejected,
        truth: TruthDoc {
            file: view.truth_file,
            format: view.truth_format,
            changes: view.truth_changes,
            located: view.located,
        },
        max_delay: view.max_delay,
        grid: view
            .axes
            .iter()
            .map(|a| AxisDoc {
                path: &a.path,
                values: a.values.iter().map(|(_, v)| v).collect(),
            })
            .collect(),
        runs,
        best_toml: view
            .order
            .first()
            .and_then(|&b| view.runs[b].block.as_deref()),
        elapsed_s: view.elapsed_s,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
