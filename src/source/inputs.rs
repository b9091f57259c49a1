//! Which files `replay` reads, and in what order (SPEC §1, §2).
//!
//! Quoted globs are expanded here, as `watch` expands them, so
//! `mmon replay 'logs/*.jsonl'` works without the shell's help; a glob that
//! matches no file is an input error naming it. Then the files are put in
//! time order by the timestamp of their first record: a shell glob over
//! rotated names (`app.log.*`) lists the newest first, and a log read out
//! of order breaks every detector's idea of "before". Ties, stdin, and
//! files with no record near their start keep their places.

use std::path::Path;

use anyhow::Context;

use super::lines::LineReader;
use super::{Decoder, Format, Item};
use crate::exit_code::{ExitCode, Failure};
use crate::record::{Name, Schema};

/// How many lines of a file are read to find its first record.
const PEEK_LINES: u64 = 1000;

/// Whether `s` is a pattern rather than a name.
fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The files named by `given`: names as they are (an existing file whose
/// name looks like a pattern included), patterns expanded in sorted order.
/// A pattern's matches that are already listed are not repeated.
pub fn expand(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut files: Vec<String> = Vec::new();
    for arg in given {
        if arg == "-" || !has_glob(arg) || Path::new(arg).exists() {
            files.push(arg.clone());
            continue;
        }
        let paths = glob::glob(arg).map_err(|e| {
            Failure::new(
                ExitCode::Usage,
                anyhow::anyhow!("{arg}: not a valid glob pattern: {e}"),
            )
        })?;
        let mut matched = 0;
        for path in paths {
            let path = path.with_context(|| format!("cannot read a folder matching {arg}"))?;
            if path.is_dir() {
                continue;
            }
            let name = path
                .to_str()
                .with_context(|| format!("{}: the file name is not UTF-8", path.display()))?
                .to_string();
            matched += 1;
            if !files.contains(&name) {
                files.push(name);
            }
        }
        if matched == 0 {
            anyhow::bail!("no file matches {arg}");
        }
    }
    Ok(files)
}

/// The timestamp of the first record among the first lines of `path`, if
/// any; `None` for stdin, which cannot be read twice.
pub fn first_time(
    path: &str,
    forced: Option<Format>,
    schema: &Schema,
) -> anyhow::Result<Option<i64>> {
    if path == "-" {
        return Ok(None);
    }
    let super::Opened { reader, format, .. } = super::open(path, forced)?;
    let mut lines = LineReader::new(reader, schema.max_line_bytes, 0, 1);
    let mut decoder = Decoder::new(Name::new(path), format);
    while let Some(line) = lines
        .next_line()
        .with_context(|| format!("cannot read {path}"))?
    {
        let number = match &line {
            super::lines::Line::Text { number, .. }
            | super::lines::Line::TooLong { number, .. } => *number,
        };
        if let Some(Item::Record(r)) = decoder.decode(line, schema) {
            return Ok(Some(r.time_ns));
        }
        if number >= PEEK_LINES {
            break;
        }
    }
    Ok(None)
}

/// `paths` with those that have a first time sorted by it (stably), in the
/// places that such paths held; the others stay where they were.
pub fn time_order(paths: Vec<String>, firsts: &[Option<i64>]) -> Vec<String> {
    let mut keyed: Vec<(i64, usize)> = firsts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.map(|t| (t, i)))
        .collect();
    let places: Vec<usize> = keyed.iter().map(|&(_, i)| i).collect();
    keyed.sort_by_key(|&(t, _)| t);
    let mut out = paths.clone();
    for (place, (_, from)) in places.into_iter().zip(keyed) {
        out[place] = paths[from].clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_are_sorted_by_first_time_and_the_rest_keep_their_places() {
        let paths = names(&["day3", "-", "day1", "empty", "day2", "day1b"]);
        let firsts = [Some(30), None, Some(10), None, Some(20), Some(10)];
        assert_eq!(
            time_order(paths, &firsts),
            names(&["day1", "-", "day1b", "empty", "day2", "day3"])
        );
    }

    #[test]
    fn a_glob_expands_sorted_and_one_that_matches_nothing_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.jsonl", "a.jsonl", "c.csv"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.jsonl")).unwrap();
        let d = dir.path().display();
        let a = format!("{d}/a.jsonl");
        let pattern = format!("{d}/*.jsonl");
        let got = expand(&[a.clone(), pattern]).unwrap();
        assert_eq!(got, [a, format!("{d}/b.jsonl")]);
        let none = format!("{d}/*.tsv");
        let e = expand(std::slice::from_ref(&none)).unwrap_err();
        assert_eq!(e.to_string(), format!("no file matches {none}"));
    }
}
