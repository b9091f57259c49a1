//! What a run writes, and the two promises about it (SPEC §1): inputs are
//! never harmed, and a report file is replaced only when it is complete.
//!
//! [`refuse_inputs`] runs before anything is opened for writing: an output
//! path (`--output`, `--rejects`, `--state`) that is one of the inputs,
//! directly or through a symbolic or hard link, is a usage error naming both
//! paths. Files are compared by device and inode, as the kernel sees them,
//! never by name. [`ReportSink`] is where a report goes: stdout, or an
//! [`AtomicFile`] beside the `--output` path that is renamed over it at the
//! end of the run, so a run that fails halfway leaves the previous report
//! as it was. Every error writing an output names its path and is exit 4.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::durable::AtomicFile;
use crate::exit_code::{ExitCode, Failure};

/// One file a run will write, and the flag that named it.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    pub flag: &'static str,
    pub path: &'a Path,
}

/// The (device, inode) of what `path` names, following links; `None` if it
/// does not exist (yet).
fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Refuses, as a usage error (exit 2), an output that is one of `inputs`
/// (`-` stands for stdin, which may be redirected from a file) or that is
/// another output. Nothing has been opened for writing when this runs.
pub fn refuse_inputs(outputs: &[Output<'_>], inputs: &[PathBuf]) -> anyhow::Result<()> {
    let usage = |msg: String| Err(Failure::new(ExitCode::Usage, anyhow::anyhow!(msg)).into());
    let inputs: Vec<(&Path, Option<(u64, u64)>)> = inputs
        .iter()
        .map(|p| {
            let id = if p.as_os_str() == "-" {
                identity(Path::new("/dev/stdin")).filter(|_| is_regular("/dev/stdin"))
            } else {
                identity(p)
            };
            (p.as_path(), id)
        })
        .collect();
    for (k, out) in outputs.iter().enumerate() {
        let Some(id) = identity(out.path) else {
            continue;
        };
        if let Some((input, _)) = inputs.iter().find(|(_, i)| *i == Some(id)) {
            let input = if input.as_os_str() == "-" {
                "standard input".to_string()
            } else {
                format!("input {}", input.display())
            };
            return usage(format!(
                "{} {} is the {input} (the same file); writing it would destroy the input: choose another path",
                out.flag,
                out.path.display(),
            ));
        }
        if let Some(other) = outputs[..k].iter().find(|o| identity(o.path) == Some(id)) {
            return usage(format!(
                "{} {} and {} {} are the same file; give each its own path",
                other.flag,
                other.path.display(),
                out.flag,
                out.path.display()
            ));
        }
    }
    // Outputs that do not exist yet can still collide with each other by name.
    for (k, out) in outputs.iter().enumerate() {
        if let Some(other) = outputs[..k]
            .iter()
            .find(|o| std::path::absolute(o.path).ok() == std::path::absolute(out.path).ok())
        {
            return usage(format!(
                "{} and {} both name {}; give each its own path",
                other.flag,
                out.flag,
                out.path.display()
            ));
        }
    }
    Ok(())
}

/// The files `paths` name now: each path, or what each glob matches (for
/// `watch`, whose inputs are the files its patterns match at start).
pub fn matching(paths: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.contains(['*', '?', '[']) {
            if let Ok(found) = glob::glob(p) {
                out.extend(found.flatten());
            }
        } else {
            out.push(PathBuf::from(p));
        }
    }
    out
}

fn is_regular(path: &str) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// An error writing to an output: exit 4 (SPEC §1), except a closed stdout,
/// which `main` treats as the reader having had enough.
pub fn output_failure(error: io::Error) -> anyhow::Error {
    if error.kind() == io::ErrorKind::BrokenPipe {
        error.into()
    } else {
        Failure::output(error).into()
    }
}

/// An error on the file at `path`, saying which file and what was done.
pub fn path_error(what: &str, path: &Path, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot {what} {}: {error}", path.display()),
    )
}

/// Where the report goes: stdout, or a file replaced when the run ends.
pub enum ReportSink {
    Stdout(BufWriter<io::Stdout>),
    File(BufWriter<AtomicFile>),
}

impl ReportSink {
    /// Stdout, or the temp file beside `path` (created now, so a missing or
    /// read-only folder is found before any input is read: exit 4).
    pub fn open(path: Option<&Path>) -> anyhow::Result<ReportSink> {
        Ok(match path {
            None => ReportSink::Stdout(BufWriter::with_capacity(64 * 1024, io::stdout())),
            Some(path) => {
                let file = AtomicFile::create(path)
                    .map_err(|e| output_failure(path_error("create", path, e)))?;
                ReportSink::File(BufWriter::with_capacity(64 * 1024, file))
            }
        })
    }

    /// Puts the complete report in place (a file is renamed over its
    /// target; stdout is flushed).
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            ReportSink::Stdout(mut out) => out.flush().map_err(output_failure),
            ReportSink::File(out) => {
                let file = out.into_inner().map_err(|e| e.into_error());
                let path = match &file {
                    Ok(f) => f.target().to_path_buf(),
                    Err(_) => PathBuf::new(),
                };
                file.and_then(AtomicFile::commit)
                    .map_err(|e| output_failure(path_error("write", &path, e)))
            }
        }
    }
}

impl Write for ReportSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ReportSink::Stdout(out) => out.write(buf),
            ReportSink::File(out) => {
                let r = out.write(buf);
                r.map_err(|e| path_error("write", out.get_ref().target(), e))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ReportSink::Stdout(out) => out.flush(),
            ReportSink::File(out) => {
                let r = out.flush();
                r.map_err(|e| path_error("write", out.get_ref().target(), e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out<'a>(flag: &'static str, path: &'a Path) -> Output<'a> {
        Output { flag, path }
    }

    #[test]
    fn an_input_is_found_through_a_symlink_and_a_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("x.jsonl");
        fs::write(&input, "{}\n").unwrap();
        let sym = dir.path().join("sym.json");
        std::os::unix::fs::symlink(&input, &sym).unwrap();
        let hard = dir.path().join("hard.json");
        fs::hard_link(&input, &hard).unwrap();
        let inputs = vec![input.clone()];
        for p in [&input, &sym, &hard] {
            let err = refuse_inputs(&[out("--output", p)], &inputs).unwrap_err();
            assert_eq!(crate::exit_code::code_of(&err), ExitCode::Usage);
            let msg = format!("{err:#}");
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(msg.contains(&input.display().to_string()), "{msg}");
        }
        let fresh = dir.path().join("report.json");
        refuse_inputs(&[out("--output", &fresh)], &inputs).unwrap();
    }

    #[test]
    fn two_outputs_on_one_path_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        let err = refuse_inputs(&[out("--output", &p), out("--rejects", &p)], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("--output and --rejects"));
    }
}
