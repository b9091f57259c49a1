//! Following files by name like `tail -F`: finding them, telling rotation,
//! truncation and deletion apart from `stat`, and reading whole new lines.
//!
//! Each followed file keeps its descriptor open, so a file renamed or
//! deleted under it is drained to its end before it is closed. Every pass
//! stats the candidates (the paths and globs given, plus rotated siblings
//! `NAME.<suffix>` of them) and matches them to followed files by device and
//! inode; the head of the content settles inode reuse, copies made by
//! copy-truncate and generations compressed to `.gz`. Lines go through the
//! same [`LineReader`] and [`Decoder`] as replay.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::identity::{self, dev_ino};
use crate::checkpoint::{FileState, sha256_hex};
use crate::record::Schema;
use crate::source::lines::{Line, LineReader};
use crate::source::{Decoder, FileStats, Format, Item};

/// Heads shorter than this never identify a copy or a compressed generation:
/// files sharing a CSV header would otherwise look alike.
const MIN_CONTENT_MATCH: u64 = 64;

/// One file being followed.
struct Followed {
    name: Arc<str>,
    path: PathBuf,
    dev: u64,
    ino: u64,
    gz: bool,
    /// The first bytes of the content up to the offset (at most 4 KiB).
    head: Vec<u8>,
    /// The file this one is a copy of (copy-truncate).
    copy_of: Option<(u64, u64)>,
    /// Head, offset and line before the last truncation, so a copy noticed
    /// after the truncation (copy-truncate) is still known as one.
    before_truncation: Option<(Vec<u8>, u64, u64)>,
    /// Truncated since copies of it were last looked for.
    fresh_truncation: bool,
    file: File,
    lines: LineReader<Box<dyn Read + Send>>,
    decoder: Decoder,
    offset: u64,
    line: u64,
    /// Size at the last stat, for the bytes lost to a truncation.
    size: u64,
    /// No longer found under any candidate name: drain, then close.
    gone: bool,
    stats: FileStats,
}

/// Where to start a file that is opened.
#[derive(Debug, Clone, Copy)]
enum Start {
    At { offset: u64, line: u64 },
    End,
}

/// What the caller does with each item.
pub enum Flow {
    Continue,
    Stop,
}

pub struct Follower {
    patterns: Vec<String>,
    forced: Option<Format>,
    schema: Arc<Schema>,
    followed: Vec<Followed>,
    /// Per-file stats of files closed during the run, for the summary.
    closed: Vec<FileStats>,
    /// Names from the checkpoint, whose rotated siblings are candidates
    /// while resuming (the live name may be gone, e.g. from a glob).
    remembered: Vec<PathBuf>,
    /// Copies (copy-truncate) waiting for their original to be drained:
    /// they start where the original's reading ends.
    pending_copies: Vec<(PathBuf, (u64, u64))>,
    pub truncations: u64,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The rotation generation in a name (`app.jsonl.2.gz` → 2), for reading
/// the oldest generation first.
fn generation(name: &str) -> u64 {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

fn is_sibling(name: &str, of: &str) -> bool {
    name.len() > of.len() + 1 && name.starts_with(of) && name.as_bytes()[of.len()] == b'.'
}

/// A candidate file: its path and whether it is a sibling only (a rotated
/// generation of a followed name, not matched by the user's patterns).
struct Candidate {
    path: PathBuf,
    meta: std::fs::Metadata,
    sibling_only: bool,
}

impl Follower {
    pub fn new(patterns: Vec<String>, forced: Option<Format>, schema: Arc<Schema>) -> Follower {
        Follower {
            patterns,
            forced,
            schema,
            followed: Vec::new(),
            closed: Vec::new(),
            remembered: Vec::new(),
            pending_copies: Vec::new(),
            truncations: 0,
        }
    }

    /// The directories whose events should wake the follower.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut add = |p: &Path| {
            let d = p.parent().map(Path::to_path_buf).unwrap_or_default();
            if !dirs.contains(&d) && !has_glob(&d.to_string_lossy()) {
                dirs.push(d);
            }
        };
        for p in &self.patterns {
            add(Path::new(p));
        }
        for f in &self.followed {
            add(&f.path);
        }
        dirs
    }

    /// Every candidate path now, matched by the patterns or a rotated sibling.
    fn candidates(&self) -> Vec<Candidate> {
        let mut paths: Vec<(PathBuf, bool)> = Vec::new();
        let mut bases: Vec<PathBuf> = Vec::new();
        for p in &self.patterns {
            if has_glob(p) {
                if let Ok(found) = glob::glob(p) {
                    for path in found.flatten() {
                        bases.push(path.clone());
                        paths.push((path, false));
                    }
                }
            } else {
                bases.push(PathBuf::from(p));
                paths.push((PathBuf::from(p), false));
            }
        }
        for f in &self.followed {
            bases.push(PathBuf::from(&*f.name));
            bases.push(f.path.clone());
        }
        bases.extend(self.remembered.iter().cloned());
        // Per directory, the names whose rotated siblings are candidates.
        let mut dirs: HashMap<PathBuf, HashSet<String>> = HashMap::new();
        for b in &bases {
            let dir = b.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = b.file_name().unwrap_or_default().to_string_lossy();
            dirs.entry(dir).or_default().insert(name.into_owned());
        }
        for (dir, names) in dirs {
            let read = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &dir
            };
            let Ok(entries) = std::fs::read_dir(read) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                // `NAME.<suffix>`: try every prefix that ends before a dot.
                let sibling = name
                    .match_indices('.')
                    .any(|(i, _)| i + 1 < name.len() && names.contains(&name[..i]));
                if sibling {
                    paths.push((dir.join(&*name), true));
                }
            }
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        // Pattern matches first, so a path matched both ways is not sibling-only.
        paths.sort_by_key(|(_, s)| *s);
        for (path, sibling_only) in paths {
            if !seen.insert(path.clone()) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_file() {
                out.push(Candidate {
                    path,
                    meta,
                    sibling_only,
                });
            }
        }
        out
    }

    /// Opens a file at a start and adds it to the followed set.
    fn open(&mut self, path: &Path, start: Start, name: Option<&str>) -> anyhow::Result<()> {
        let name: Arc<str> = Arc::from(
            name.map_or_else(|| path.to_string_lossy(), Into::into)
                .as_ref(),
        );
        let (offset, line) = match start {
            Start::At { offset, line } => (offset, line),
            Start::End => {
                let (mut r, _, _) = identity::open_at(path, 0)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                identity::scan_to_last_newline(&mut r)
                    .with_context(|| format!("cannot read {}", path.display()))?
            }
        };
        let (reader, file, gz) = identity::open_at(path, offset)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let head = identity::head_of(&file).unwrap_or_default();
        let format = self
            .forced
            .or_else(|| Format::from_path(&name))
            .unwrap_or_else(|| Format::sniff(&head));
        let mut decoder = Decoder::new(name.clone(), format);
        if format == Format::Csv && offset > 0 {
            // Resuming inside a CSV file: its header gives the columns.
            let (r, _, _) = identity::open_at(path, 0)?;
            let mut header = LineReader::new(r, self.schema.max_line_bytes, 0, 1);
            while let Some(l) = header.next_line()? {
                let blank = matches!(&l, Line::Text { bytes, .. } if bytes.iter().all(u8::is_ascii_whitespace));
                let _ = decoder.decode(l, &self.schema);
                if !blank {
                    break;
                }
            }
        }
        let meta = file.metadata()?;
        let (dev, ino) = dev_ino(&meta);
        log::info!(
            "following {} from byte {offset} (line {line})",
            path.display()
        );
        self.followed.push(Followed {
            name: name.clone(),
            path: path.to_path_buf(),
            dev,
            ino,
            gz,
            head: head[..head.len().min(offset as usize)].to_vec(),
            copy_of: None,
            before_truncation: None,
            fresh_truncation: false,
            file,
            lines: LineReader::new(reader, self.schema.max_line_bytes, offset, line)
                .hold_partial_line(),
            decoder,
            offset,
            line,
            size: meta.len(),
            gone: false,
            stats: FileStats {
                path: name.to_string(),
                offset: Some(offset),
                ..FileStats::default()
            },
        });
        Ok(())
    }

    /// The first scan without a checkpoint: existing files from their end
    /// (or start), compressed siblings ignored.
    pub fn start(&mut self, from_start: bool) -> anyhow::Result<()> {
        for c in self.candidates() {
            if c.sibling_only && is_gz_name(&c.path) {
                continue;
            }
            let start = if from_start {
                Start::At { offset: 0, line: 1 }
            } else {
                Start::End
            };
            self.open(&c.path, start, None)?;
        }
        Ok(())
    }

    /// The first scan from a checkpoint: each saved file is found again by
    /// inode and head, or as a compressed or copied generation by its head;
    /// files it does not know are read from their start.
    pub fn resume(&mut self, saved: &[FileState]) -> anyhow::Result<()> {
        self.remembered = saved
            .iter()
            .flat_map(|s| [PathBuf::from(&s.name), PathBuf::from(&s.path)])
            .collect();
        let candidates = self.candidates();
        self.remembered.clear();
        let mut claimed = vec![false; candidates.len()];
        let heads: Vec<Vec<u8>> = candidates
            .iter()
            .map(|c| {
                File::open(&c.path)
                    .and_then(|f| identity::head_of(&f))
                    .unwrap_or_default()
            })
            .collect();
        let mut unresolved = Vec::new();
        for s in saved {
            let found = candidates.iter().enumerate().position(|(i, c)| {
                !claimed[i]
                    && dev_ino(&c.meta) == (s.dev, s.ino)
                    && identity::head_matches(&heads[i], s.head_len, &s.head_sha256)
            });
            match found {
                Some(i) => {
                    claimed[i] = true;
                    let start = self.check_saved(&candidates[i], s);
                    self.open_or_warn(&candidates[i].path, start, Some(&s.name));
                }
                None => unresolved.push(s),
            }
        }
        for s in unresolved {
            let base = |p: &str| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let bases = [base(&s.name), base(&s.path)];
            let found = candidates.iter().enumerate().position(|(i, c)| {
                let name = c.path.file_name().unwrap_or_default().to_string_lossy();
                !claimed[i]
                    && s.head_len >= MIN_CONTENT_MATCH
                    && bases.iter().any(|b| is_sibling(&name, b))
                    && identity::head_matches(&heads[i], s.head_len, &s.head_sha256)
            });
            match found {
                Some(i) => {
                    claimed[i] = true;
                    log::info!("{} continues as {}", s.path, candidates[i].path.display());
                    let start = Start::At {
                        offset: s.offset,
                        line: s.line,
                    };
                    self.open_or_warn(&candidates[i].path, start, Some(&s.name));
                }
                None => log::info!("{} is gone since the last run", s.path),
            }
        }
        for (i, c) in candidates.iter().enumerate() {
            if claimed[i] || (c.sibling_only && is_gz_name(&c.path)) {
                continue;
            }
            self.open_or_warn(&c.path, Start::At { offset: 0, line: 1 }, None);
        }
        Ok(())
    }

    /// Opens a file found on resume; one that cannot be read is skipped
    /// with a warning rather than failing every later cron run.
    fn open_or_warn(&mut self, path: &Path, start: Start, name: Option<&str>) {
        if let Err(e) = self.open(path, start, name) {
            log::warn!("{e:#}; skipped");
        }
    }

    /// Where to resume a saved file found again by its inode: at the saved
    /// offset, or from the start if it was truncated while mmon was stopped.
    fn check_saved(&mut self, c: &Candidate, s: &FileState) -> Start {
        let resume = Start::At {
            offset: s.offset,
            line: s.line,
        };
        if is_gz_name(&c.path) {
            return resume;
        }
        if c.meta.len() < s.offset {
            self.truncations += 1;
            log::warn!(
                "{}: truncated while stopped ({} bytes, was read to {}); reading it from the start",
                c.path.display(),
                c.meta.len(),
                s.offset
            );
            return Start::At { offset: 0, line: 1 };
        }
        let same = File::open(&c.path)
            .and_then(|f| identity::guard(&f, s.offset))
            .is_ok_and(|(len, sha)| len == s.guard_len && sha == s.guard_sha256);
        if !same {
            self.truncations += 1;
            log::warn!(
                "{}: rewritten while stopped (the bytes before offset {} changed); reading it from the start",
                c.path.display(),
                s.offset
            );
            return Start::At { offset: 0, line: 1 };
        }
        resume
    }

    /// Looks for new, renamed, truncated, copied and deleted files.
    pub fn scan(&mut self) -> anyhow::Result<()> {
        let candidates = self.candidates();
        let mut present: HashSet<(u64, u64)> = HashSet::new();
        for c in &candidates {
            let id = dev_ino(&c.meta);
            present.insert(id);
            if let Some(f) = self.followed.iter_mut().find(|f| (f.dev, f.ino) == id) {
                f.path = c.path.clone();
                f.gone = false;
                continue;
            }
            if is_gz_name(&c.path) && c.sibling_only {
                // A compressed generation of a file still open (and drained).
                continue;
            }
            // A copy of a followed file (copy-truncate) continues from where
            // that file was read; anything else is new and read from its start.
            let head = File::open(&c.path)
                .and_then(|f| identity::head_of(&f))
                .unwrap_or_default();
            let name = c.path.file_name().unwrap_or_default().to_string_lossy();
            // What was read of each followed file: now, and before its last
            // truncation (the copy may be noticed only after that).
            let read = self.followed.iter().flat_map(|f| {
                let now = (f, f.head.as_slice(), None);
                let before = f
                    .before_truncation
                    .as_ref()
                    .map(|(h, o, l)| (f, h.as_slice(), Some((*o, *l))));
                std::iter::once(now).chain(before)
            });
            let copy_of = read
                .filter(|(f, h, _)| {
                    let base = f.path.file_name().unwrap_or_default().to_string_lossy();
                    !f.gz
                        && h.len() as u64 >= MIN_CONTENT_MATCH
                        && is_sibling(&name, &base)
                        && h.starts_with(&head[..head.len().min(h.len())])
                })
                .max_by_key(|(_, h, _)| h.len());
            let mut copy = None;
            let start = match copy_of {
                // A prefix of what was read: a copy still being written, or
                // one with nothing new; look again at the next scan.
                Some((_, h, _)) if head.len() < h.len() => continue,
                // Copied before the truncation was seen: it goes on from
                // where the original was read before that.
                Some((f, _, Some((offset, line)))) => {
                    log::info!(
                        "{} is a copy of {}; continuing it from byte {offset}",
                        c.path.display(),
                        f.path.display(),
                    );
                    copy = Some((f.dev, f.ino));
                    Start::At { offset, line }
                }
                // The original may still grow or be truncated: decide where
                // the copy starts once the original is drained.
                Some((f, _, None)) => {
                    let id = (f.dev, f.ino);
                    if !self.pending_copies.iter().any(|(p, _)| *p == c.path) {
                        self.pending_copies.push((c.path.clone(), id));
                    }
                    continue;
                }
                None => Start::At { offset: 0, line: 1 },
            };
            if let Err(e) = self.open(&c.path, start, None) {
                log::warn!("{e:#}");
                continue;
            }
            if let Some(g) = self.followed.last_mut() {
                g.copy_of = copy;
            }
        }
        for f in &mut self.followed {
            if !present.contains(&(f.dev, f.ino)) {
                f.gone = true;
            }
        }
        Ok(())
    }

    /// Reads every followed file to its last whole line, oldest generation
    /// first, handing each item to `sink`; returns whether anything was read.
    pub fn pass(
        &mut self,
        sink: &mut dyn FnMut(Item) -> anyhow::Result<Flow>,
    ) -> anyhow::Result<(bool, Flow)> {
        self.followed.sort_by(|a, b| {
            generation(&b.path.to_string_lossy())
                .cmp(&generation(&a.path.to_string_lossy()))
                .then_with(|| a.path.cmp(&b.path))
        });
        let mut any = false;
        let mut i = 0;
        while i < self.followed.len() {
            self.check_truncated(i)?;
            let f = &mut self.followed[i];
            loop {
                let line = f
                    .lines
                    .next_line()
                    .with_context(|| format!("cannot read {}", f.path.display()))?;
                let Some(line) = line else { break };
                any = true;
                let item = f.decoder.decode(line, &self.schema);
                let before = f.offset;
                f.offset = f.lines.offset();
                f.line = f.lines.next_number();
                f.stats.bytes += f.offset - before;
                f.stats.offset = Some(f.offset);
                let Some(item) = item else { continue };
                match &item {
                    Item::Record(_) => f.stats.records += 1,
                    Item::Bad(_) => f.stats.rejected += 1,
                }
                if let Flow::Stop = sink(item)? {
                    return Ok((any, Flow::Stop));
                }
            }
            if f.head.len() < identity::HEAD && (f.head.len() as u64) < f.offset {
                // The file may have been truncated and rewritten since the
                // lines were read: keep the head only if it extends the one
                // already known and the file still reaches the offset, or a
                // copy of what was read would not be recognised.
                let head = identity::head_of(&f.file).unwrap_or_default();
                let size = f.file.metadata().map(|m| m.len()).unwrap_or(0);
                if head.starts_with(&f.head) && size >= f.offset {
                    f.head = head[..head.len().min(f.offset as usize)].to_vec();
                }
            }
            let id = (f.dev, f.ino);
            if self.pending_copies.iter().any(|(_, of)| *of == id) {
                self.open_copies(i);
            }
            let f = &mut self.followed[i];
            let deleted = f.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
            if f.gone || deleted {
                log::info!(
                    "{} is gone; closed after reading it to its end",
                    f.path.display()
                );
                let f = self.followed.remove(i);
                self.closed.push(f.stats);
                continue;
            }
            i += 1;
        }
        Ok((any, Flow::Continue))
    }

    /// Opens the pending copies of the drained file `i`: from where its
    /// reading ended, or ended before a truncation seen since.
    fn open_copies(&mut self, i: usize) {
        let f = &mut self.followed[i];
        let id = (f.dev, f.ino);
        let (offset, line) = match (&f.before_truncation, f.fresh_truncation) {
            (Some((_, o, l)), true) => (*o, *l),
            _ => (f.offset, f.line),
        };
        f.fresh_truncation = false;
        let original = f.path.display().to_string();
        let (copies, rest) = std::mem::take(&mut self.pending_copies)
            .into_iter()
            .partition(|(_, of)| *of == id);
        self.pending_copies = rest;
        for (path, _) in copies {
            log::info!(
                "{} is a copy of {original}; continuing it from byte {offset}",
                path.display()
            );
            match self.open(&path, Start::At { offset, line }, None) {
                Ok(()) => {
                    if let Some(g) = self.followed.last_mut() {
                        g.copy_of = Some(id);
                    }
                }
                Err(e) => log::warn!("{e:#}"),
            }
        }
    }

    /// Restarts a file from its start if it shrank below the read offset.
    fn check_truncated(&mut self, i: usize) -> anyhow::Result<()> {
        let f = &mut self.followed[i];
        // A copy may be shorter than the offset it continues from (the
        // original was read further): nothing to read, not a truncation.
        if f.gz || f.copy_of.is_some() {
            return Ok(());
        }
        let size = f.file.metadata().map(|m| m.len()).unwrap_or(0);
        if size >= f.offset {
            f.size = size;
            return Ok(());
        }
        self.truncations += 1;
        let id = (f.dev, f.ino);
        // Bytes past the offset that a copy (copy-truncate) holds were not lost.
        let copied = self
            .followed
            .iter()
            .filter(|g| g.copy_of == Some(id))
            .filter_map(|g| g.file.metadata().ok().map(|m| m.len()))
            .chain(
                self.pending_copies
                    .iter()
                    .filter(|(_, of)| *of == id)
                    .filter_map(|(p, _)| std::fs::metadata(p).ok().map(|m| m.len())),
            )
            .max()
            .unwrap_or(0);
        let f = &self.followed[i];
        let lost = f.size.saturating_sub(f.offset.max(copied));
        if lost > 0 {
            log::warn!(
                "{}: truncated; {lost} bytes written before the truncation were never read",
                f.path.display()
            );
        } else {
            log::warn!("{}: truncated; reading it from the start", f.path.display());
        }
        let f = self.followed.remove(i);
        let (name, path, mut stats) = (f.name.clone(), f.path.clone(), f.stats);
        let before = (f.head, f.offset, f.line);
        drop(f.file);
        match self.open(&path, Start::At { offset: 0, line: 1 }, Some(&name)) {
            Ok(()) => {
                let last = self.followed.len() - 1;
                self.followed.swap(i, last);
                stats.offset = Some(0);
                self.followed[i].stats = stats;
                self.followed[i].before_truncation = Some(before);
                self.followed[i].fresh_truncation = true;
            }
            Err(e) => {
                log::warn!("{e:#}");
                self.closed.push(stats);
            }
        }
        Ok(())
    }

    /// The checkpoint's view of every followed file.
    pub fn states(&self) -> Vec<FileState> {
        self.followed
            .iter()
            .map(|f| {
                let head = &f.head;
                // A copy shorter than its offset has nothing left to read.
                let offset = match f.copy_of {
                    Some(_) => f
                        .offset
                        .min(f.file.metadata().map_or(f.offset, |m| m.len())),
                    None => f.offset,
                };
                let (guard_len, guard_sha256) = if f.gz {
                    (0, sha256_hex(b""))
                } else {
                    identity::guard(&f.file, offset).unwrap_or((0, sha256_hex(b"")))
                };
                FileState {
                    name: f.name.to_string(),
                    path: f.path.to_string_lossy().into_owned(),
                    dev: f.dev,
                    ino: f.ino,
                    head_len: head.len() as u64,
                    head_sha256: sha256_hex(head),
                    offset,
                    line: f.line,
                    guard_len,
                    guard_sha256,
                }
            })
            .collect()
    }

    /// Per-file counts of this run and final offsets, for the summary.
    pub fn stats(&self) -> Vec<FileStats> {
        let mut all: Vec<FileStats> = self.closed.clone();
        all.extend(self.followed.iter().map(|f| f.stats.clone()));
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }

    /// How many files are open.
    pub fn open_count(&self) -> usize {
        self.followed.len()
    }
}

fn is_gz_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}
