//! `--report KIND=PATH`: any number of report files from one run.
//!
//! A checkpointed `watch --once` cannot run twice, so one run must be able
//! to write the HTML page, the JUnit file, the step summary and the JSON at
//! once. [`ReportFiles`] observes the records (for the pictures' levels) and
//! the window events, and [`ReportFiles::write`] renders every requested
//! kind and replaces each file atomically (temp file beside it, fsync,
//! rename), so a reader, or a run that fails halfway, never sees half a
//! report. `watch` calls it at every checkpoint and at exit.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;

use super::levels::Levels;
use super::view::RunView;
use super::{EventLine, Format, Reporter, Summary};
use crate::config::{Config, FailOn};
use crate::exit_code::{ExitCode, Failure};
use crate::record::Record;
use crate::window::{Event, EventKind, Window};

/// The kinds `--report` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Html,
    Junit,
    Markdown,
    Github,
    Json,
    Jsonl,
    Csv,
    Table,
}

impl Kind {
    const ALL: [(&'static str, Kind); 8] = [
        ("html", Kind::Html),
        ("junit", Kind::Junit),
        ("markdown", Kind::Markdown),
        ("github", Kind::Github),
        ("json", Kind::Json),
        ("jsonl", Kind::Jsonl),
        ("csv", Kind::Csv),
        ("table", Kind::Table),
    ];

    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("report", |(n, _)| *n)
    }

    fn needs_levels(self) -> bool {
        matches!(self, Kind::Html | Kind::Junit | Kind::Markdown)
    }
}

/// One `--report KIND=PATH`; `-` is stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    pub kind: Kind,
    pub path: String,
}

impl FromStr for ReportSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<ReportSpec, String> {
        let names: Vec<&str> = Kind::ALL.iter().map(|(n, _)| *n).collect();
        let (kind, path) = s
            .split_once('=')
            .ok_or_else(|| format!("expected KIND=PATH (KIND one of {})", names.join(", ")))?;
        let kind = Kind::ALL
            .iter()
            .find(|(n, _)| *n == kind)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                format!(
                    "unknown report kind {kind:?}: expected one of {}",
                    names.join(", ")
                )
            })?;
        if path.is_empty() {
            return Err("the PATH after '=' is empty ('-' is stdout)".into());
        }
        Ok(ReportSpec {
            kind,
            path: path.to_string(),
        })
    }
}

/// The report files of one run and what they need to be drawn.
pub struct ReportFiles {
    specs: Vec<ReportSpec>,
    levels: Option<Levels>,
    closed: Vec<Window>,
    open: BTreeMap<u64, Window>,
    /// The `jsonl` lines so far, for `jsonl` report files.
    events: Vec<u8>,
    monitors: Vec<crate::config::Monitor>,
    config_source: String,
    fail_on: FailOn,
    junit_fail_on: FailOn,
}

impl ReportFiles {
    /// `fail_on` says which windows fail the run; `junit_fail_on` which
    /// fail a JUnit test case (both resolved in [`crate::settings`]).
    pub fn new(
        specs: &[ReportSpec],
        config: &Config,
        fail_on: FailOn,
        junit_fail_on: FailOn,
    ) -> ReportFiles {
        let levels = specs
            .iter()
            .any(|s| s.kind.needs_levels())
            .then(|| Levels::new(&config.schema().metrics));
        ReportFiles {
            specs: specs.to_vec(),
            levels,
            closed: Vec::new(),
            open: BTreeMap::new(),
            events: Vec::new(),
            monitors: config.monitors.clone(),
            config_source: config.source.clone(),
            fail_on,
            junit_fail_on,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    #[inline]
    pub fn observe(&mut self, record: &Record) {
        if let Some(levels) = &mut self.levels {
            levels.observe(record);
        }
    }

    pub fn event(&mut self, event: &Event) {
        if self.specs.is_empty() {
            return;
        }
        if self.specs.iter().any(|s| s.kind == Kind::Jsonl) {
            let line = EventLine {
                event: event.kind,
                window: &event.window,
            };
            if serde_json::to_writer(&mut self.events, &line).is_ok() {
                self.events.push(b'\n');
            }
        }
        match event.kind {
            EventKind::Opened | EventKind::Escalated => {
                self.open.insert(event.window.id, event.window.clone());
            }
            EventKind::Closed => {
                self.open.remove(&event.window.id);
                self.closed.push(event.window.clone());
            }
        }
    }

    /// Renders every report and replaces its file.
    pub fn write(&self, summary: &Summary, interrupted: bool) -> anyhow::Result<()> {
        if self.specs.is_empty() {
            return Ok(());
        }
        let mut windows: Vec<Window> = self.closed.clone();
        windows.extend(self.open.values().cloned());
        windows.sort_by_key(|w| w.id);
        let empty = Levels::default();
        let view = |fail_on: FailOn| RunView {
            windows: &windows,
            summary,
            levels: self.levels.as_ref().unwrap_or(&empty),
            monitors: &self.monitors,
            config_source: &self.config_source,
            fail_on,
            interrupted,
        };
        for spec in &self.specs {
            let bytes: Vec<u8> = match spec.kind {
                Kind::Html => super::html::render(&view(self.fail_on)).into_bytes(),
                Kind::Markdown => super::markdown::render(&view(self.fail_on)).into_bytes(),
                Kind::Github => super::github::render(&view(self.fail_on)).into_bytes(),
                Kind::Junit => super::junit::render(&view(self.junit_fail_on))?.into_bytes(),
                Kind::Jsonl => self.events.clone(),
                Kind::Json | Kind::Csv | Kind::Table => {
                    let format = match spec.kind {
                        Kind::Json => Format::Json,
                        Kind::Csv => Format::Csv,
                        _ => Format::Table,
                    };
                    let mut reporter = Reporter::new(format, Vec::new(), false);
                    for w in &windows {
                        reporter.event(&Event {
                            kind: EventKind::Closed,
                            window: w.clone(),
                        })?;
                    }
                    reporter.finish(summary)?
                }
            };
            if spec.path == "-" {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)?;
                out.flush()?;
            } else {
                let path = PathBuf::from(&spec.path);
                crate::durable::write_atomic(&path, &bytes)
                    .with_context(|| {
                        format!(
                            "cannot write the {} report {}",
                            spec.kind.name(),
                            path.display()
                        )
                    })
                    .map_err(|e| Failure::new(ExitCode::Training, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_specs_name_the_kind_and_the_path() {
        let spec: ReportSpec = "html=out/r.html".parse().unwrap();
        assert_eq!(spec.kind, Kind::Html);
        assert_eq!(spec.path, "out/r.html");
        let err = "pdf=x".parse::<ReportSpec>().unwrap_err();
        assert!(err.contains("unknown report kind \"pdf\""), "{err}");
        assert!("html".parse::<ReportSpec>().is_err());
        assert!("html=".parse::<ReportSpec>().is_err());
    }
}
