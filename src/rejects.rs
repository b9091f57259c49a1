//! Bad records: counted, shown, kept, never dropped silently (SPEC §2).
//!
//! The first few are printed to stderr as `file:line: what is wrong`; every
//! one goes to the `--rejects` file as a JSONL object with the raw line; under
//! `--on-bad-record fail` the first one stops the run with exit code 3.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::exit_code::{ExitCode, Failure};
use crate::source::BadRecord;

/// How many bad records are printed before only counting.
pub const SHOWN: u64 = 10;

/// What to do with a bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnBadRecord {
    Skip,
    Fail,
}

#[derive(Serialize)]
struct RejectLine<'a> {
    file: &'a str,
    line: u64,
    offset: u64,
    error: String,
    raw: std::borrow::Cow<'a, str>,
}

pub struct Rejects {
    mode: OnBadRecord,
    file: Option<(BufWriter<File>, String)>,
    count: u64,
    /// How many were printed to stderr.
    shown: u64,
    quiet: bool,
}

impl Rejects {
    pub fn new(mode: OnBadRecord, path: Option<&Path>, quiet: bool) -> anyhow::Result<Rejects> {
        let file = match path {
            None => None,
            Some(p) => {
                let f = File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open rejects file {}", p.display()))?;
                Some((BufWriter::new(f), p.display().to_string()))
            }
        };
        Ok(Rejects {
            mode,
            file,
            count: 0,
            shown: 0,
            quiet,
        })
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Records one bad line; an error under `--on-bad-record fail`.
    pub fn add(&mut self, bad: &BadRecord) -> anyhow::Result<()> {
        self.count += 1;
        if let Some((out, name)) = &mut self.file {
            let line = RejectLine {
                file: &bad.pos.file,
                line: bad.pos.line,
                offset: bad.pos.offset,
                error: bad.error.to_string(),
                raw: String::from_utf8_lossy(&bad.raw),
            };
            serde_json::to_writer(&mut *out, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .with_context(|| format!("cannot write rejects file {name}"))?;
        }
        if self.mode == OnBadRecord::Fail {
            self.flush()?;
            return Err(Failure::new(
                ExitCode::Input,
                anyhow::anyhow!("{bad} (--on-bad-record fail)"),
            )
            .into());
        }
        // The lines under a refused CSV header repeat its error: it is shown once.
        let repeat = matches!(bad.error, crate::source::FieldError::NoHeader(_));
        if self.shown < SHOWN && !self.quiet && !repeat {
            self.shown += 1;
            eprintln!("{bad}");
        }
        Ok(())
    }

    /// Flushes the rejects file and says how many were not shown.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if self.count > self.shown && !self.quiet {
            let hint = match &self.file {
                Some((_, name)) => format!("all are in {name}"),
                None => "use --rejects FILE to keep them all".to_string(),
            };
            eprintln!(
                "mmon: {} more bad records not shown ({} in all; {hint})",
                self.count - self.shown,
                self.count
            );
        }
        self.flush()
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some((out, name)) = &mut self.file {
            out.flush()
                .with_context(|| format!("cannot write rejects file {name}"))?;
        }
        Ok(())
    }
}
