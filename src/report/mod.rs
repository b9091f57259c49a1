//! Reports: drift windows and the run summary in four formats (SPEC §5).
//!
//! A [`Reporter`] is given window events as they happen and the summary at the
//! end, and writes to any `Write`. `jsonl` streams each event at once (what
//! `watch` users alert on); the other formats collect the closed windows and
//! render them, in the order the windows opened, when the run ends.
//!
//! `--report KIND=PATH` files ([`files::ReportFiles`]) add the formats
//! people look at (`html`, `markdown`) and the ones CI systems show
//! natively (`junit`, `github`), rendered from a [`view::RunView`].

mod csv;
pub mod files;
mod github;
mod html;
mod junit;
pub mod levels;
mod markdown;
mod table;
pub mod view;

use std::io::{self, Write};

use serde::Serialize;

use crate::source::FileStats;
use crate::window::{Event, EventKind, Window};

/// The report format names of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
}

/// The schema name and version of the JSON report.
pub const SCHEMA: &str = "mmon.report/1";

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WindowCounts {
    pub warning: u64,
    pub drift: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RetrainCounts {
    pub ok: u64,
    pub failed: u64,
}

/// What the configuration names that no record of the run carried: a
/// monitored metric (`metrics`), or a field of `[input]` (`fields`, by the
/// name the config gives it, e.g. `labels.region`). Empty when the run read
/// no record at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Unseen {
    pub metrics: Vec<String>,
    pub fields: Vec<String>,
}

impl Unseen {
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty() && self.fields.is_empty()
    }
}

/// The run summary of every format.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub records: u64,
    pub rejected: u64,
    pub out_of_order: u64,
    pub streams: u64,
    pub windows: WindowCounts,
    pub retrains: RetrainCounts,
    pub unseen: Unseen,
    /// Each model's versions with their first and latest positions.
    pub versions: Vec<crate::pipeline::VersionSpan>,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    /// The signal that stopped the run (`"SIGINT"`, `"SIGTERM"`): the report
    /// covers only what was read before it. Absent for a run that ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<&'static str>,
    /// Per input file: bytes read (the final offset), records and rejects.
    pub inputs: Vec<FileStats>,
    /// The partitions of a `nats://` source this instance owned when it
    /// stopped (absent for files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<u32>>,
}

#[derive(Serialize)]
struct Document<'a> {
    schema: &'a str,
    mmon_version: &'a str,
    summary: &'a Summary,
    windows: &'a [Window],
}

#[derive(Serialize)]
pub(crate) struct EventLine<'a> {
    pub event: EventKind,
    #[serde(flatten)]
    pub window: &'a Window,
}

/// Renders window events and the summary in one format.
pub struct Reporter<W: Write> {
    format: Format,
    out: W,
    closed: Vec<Window>,
    /// Whether the summary of a `jsonl` report goes to stderr.
    summary_to_stderr: bool,
    /// Whether a `table` prints each event as it happens (`watch`), and
    /// whether it has printed one yet.
    live: bool,
    printed: bool,
}

impl<W: Write> Reporter<W> {
    pub fn new(format: Format, out: W, summary_to_stderr: bool) -> Reporter<W> {
        Reporter {
            format,
            out,
            closed: Vec::new(),
            summary_to_stderr,
            live: false,
            printed: false,
        }
    }

    /// A `table` that prints each event's line as it happens, as `watch`
    /// does, and only the summary at the end.
    pub fn live(mut self) -> Reporter<W> {
        self.live = true;
        self
    }

    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        if self.format == Format::Jsonl {
            serde_json::to_writer(
                &mut self.out,
                &EventLine {
                    event: event.kind,
                    window: &event.window,
                },
            )?;
            self.out.write_all(b"\n")?;
            return self.out.flush();
        }
        if event.kind == EventKind::Closed {
            self.closed.push(event.window.clone());
        }
        if self.format == Format::Table && self.live {
            if !self.printed {
                table::live_legend(&mut self.out)?;
                self.printed = true;
            }
            table::write_event(&mut self.out, event.kind, &event.window)?;
            return self.out.flush();
        }
        Ok(())
    }

    pub fn finish(mut self, summary: &Summary) -> io::Result<W> {
        self.closed.sort_by_key(|w| w.id);
        match self.format {
            Format::Json => {
                let doc = Document {
                    schema: SCHEMA,
                    mmon_version: env!("CARGO_PKG_VERSION"),
                    summary,
                    windows: &self.closed,
                };
                serde_json::to_writer_pretty(&mut self.out, &doc)?;
                self.out.write_all(b"\n")?;
            }
            Format::Jsonl => {
                if self.summary_to_stderr {
                    // A struct, not `json!`, so the fields keep the report's order.
                    #[derive(Serialize)]
                    struct Line<'a> {
                        summary: &'a Summary,
                    }
                    let line = serde_json::to_string(&Line { summary })?;
                    eprintln!("{line}");
                }
            }
            Format::Csv => csv::write(&mut self.out, &self.closed)?,
            Format::Table if self.live => table::write_summary(&mut self.out, summary)?,
            Format::Table => table::write(&mut self.out, &self.closed, summary)?,
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
