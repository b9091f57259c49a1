//! Bad records: counted, shown, kept, never dropped silently (SPEC §2).
//!
//! The first few are printed to stderr as `file:line: what is wrong`; every
//! one goes to the `--rejects` file as a JSONL object with the raw line; under
//! `--on-bad-record fail` the first one stops the run with exit code 3.
//!
//! The `--rejects` file is an append log written like every other output
//! (SPEC §1): the run copies what the file already holds into a temp file
//! beside it, appends its rejects there, and renames it into place when the
//! run ends (also when a bad record stops it under `--on-bad-record fail`,
//! or a signal does). A run that fails on an input or an output error
//! leaves the file as it was. A file that cannot be written is exit 4.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::durable::AtomicFile;
use crate::exit_code::{ExitCode, Failure};
use crate::output::{output_failure, path_error};
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
    file: Option<(BufWriter<AtomicFile>, PathBuf)>,
    count: u64,
    /// How many were printed to stderr.
    shown: u64,
    quiet: bool,
}

/// A rejects file error: exit 4, naming the file.
fn rejects_failure(what: &str, path: &Path, e: io::Error) -> anyhow::Error {
    output_failure(path_error(what, path, e))
}

/// The temp file of `path`, holding what `path` already holds.
fn continue_log(path: &Path) -> io::Result<BufWriter<AtomicFile>> {
    let mut out = BufWriter::with_capacity(64 * 1024, AtomicFile::create(path)?);
    match File::open(path) {
        Ok(mut old) => {
            io::copy(&mut old, &mut out)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

impl Rejects {
    pub fn new(mode: OnBadRecord, path: Option<&Path>, quiet: bool) -> anyhow::Result<Rejects> {
        let file = match path {
            None => None,
            Some(p) => {
                let out =
                    continue_log(p).map_err(|e| rejects_failure("write rejects file", p, e))?;
                Some((out, p.to_path_buf()))
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
                .map_err(|e| rejects_failure("write rejects file", name, e))?;
        }
        if self.mode == OnBadRecord::Fail {
            self.commit()?;
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

    /// Puts the rejects file in place and says how many were not shown.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if self.count > self.shown && !self.quiet {
            let hint = match &self.file {
                Some((_, name)) => format!("all are in {}", name.display()),
                None => "use --rejects FILE to keep them all".to_string(),
            };
            eprintln!(
                "mmon: {} more bad records not shown ({} in all; {hint})",
                self.count - self.shown,
                self.count
            );
        }
        self.commit()
    }

    /// Renames the complete rejects file into place; later calls do nothing.
    fn commit(&mut self) -> anyhow::Result<()> {
        if let Some((out, name)) = self.file.take() {
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(AtomicFile::commit)
                .map_err(|e| rejects_failure("write rejects file", &name, e))?;
        }
        Ok(())
    }
}
