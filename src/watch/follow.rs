//! Following files by name like `tail -F`: finding them, telling rotation,
//! truncation and deletion apart from `stat`, and reading whole new lines.
//!
//! A file is opened once and identified through that descriptor (`fstat`
//! and its head), and that descriptor is the one read, so a rotation
//! between looking and reading never swaps the file (SPEC §6). A followed
//! file keeps its descriptor while it is live, so a file renamed or deleted
//! under it is drained to its end before it is closed; a drained rotated
//! generation is closed ("parked"), and beyond a bound (from the open-file
//! limit) the least recently read files are parked too. A parked file is
//! reopened by identity: its path if the inode there is still its own,
//! else the entry of its folder with its device and inode. What cannot be
//! found again is counted as lost, with a warning, never silently.
//!
//! Every pass stats the candidates (the paths and globs given, plus rotated
//! siblings `NAME.<suffix>` of them) and matches them to followed files by
//! device and inode; the head of the content settles inode reuse, copies
//! made by copy-truncate and generations compressed to `.gz`. Lines go
//! through the same [`LineReader`] and [`Decoder`] as replay.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::identity::{self, At, Opened, dev_ino};
use crate::checkpoint::{FileState, sha256_hex};
use crate::record::{Name, Schema};
use crate::source::lines::{Line, LineReader};
use crate::source::{Decoder, FileStats, Format, Item};

/// Heads shorter than this never identify a copy or a compressed generation:
/// files sharing a CSV header would otherwise look alike.
const MIN_CONTENT_MATCH: u64 = 64;

/// The descriptor and reader of a followed file that is open.
struct Open {
    file: Arc<File>,
    lines: LineReader<Box<dyn Read + Send>>,
}

/// One file being followed.
struct Followed {
    name: Name,
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
    /// `None` while parked: closed, to be reopened by identity.
    open: Option<Open>,
    /// A CSV file resumed inside: its header is read when it is opened.
    needs_header: bool,
    format: Format,
    decoder: Decoder,
    offset: u64,
    line: u64,
    /// Size at the last `fstat` while open, for the bytes lost to a truncation.
    size: u64,
    /// Size when parked after being read to its end (`None`: parked with
    /// lines still to read), and at the last scan; when they differ it is
    /// read again.
    parked_size: Option<u64>,
    seen_size: u64,
    /// The size it had when it was last read to its end (the stream
    /// position where reading stopped; `None` since it was opened).
    drained_at: Option<u64>,
    /// The guard over the bytes before the offset, kept while parked.
    guard: (u64, String),
    /// No longer found under any candidate name: drain, then close.
    gone: bool,
    /// A rotated generation (not matched by the patterns): parked once drained.
    rotated: bool,
    /// The pass that last read it, for choosing what to park.
    used: u64,
    stats: FileStats,
}

impl Followed {
    fn meta(&self) -> Option<std::fs::Metadata> {
        self.open.as_ref().and_then(|o| o.file.metadata().ok())
    }

    /// Whether a parked file has to be opened again: parked before it was
    /// drained, seen with another size, or no longer under its names.
    fn wants_reading(&self) -> bool {
        self.gone || self.parked_size != Some(self.seen_size)
    }
}

/// Where to start a file that is opened.
#[derive(Debug, Clone, Copy)]
enum Start {
    At { offset: u64, line: u64 },
    End,
}

/// Device and inode, and the head of the content, as one descriptor saw them.
type Identity = ((u64, u64), Vec<u8>);

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
    /// At most this many followed files hold a descriptor.
    max_open: usize,
    /// Passes so far, for [`Followed::used`].
    tick: u64,
    /// Files that could not be opened, warned about once each.
    unreadable: HashSet<PathBuf>,
    /// How many files the patterns matched at the first scan.
    pub matched: usize,
    pub truncations: u64,
    /// Bytes that could never be read (deleted or not found again).
    pub lost_bytes: u64,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The paths a pattern matches now. Names are matched in their lossy UTF-8
/// form and kept as they are, so a name that is not UTF-8 is still found.
fn expand(pattern: &str) -> Vec<PathBuf> {
    use std::path::Component;
    let options = glob::MatchOptions::new();
    let mut found = vec![PathBuf::new()];
    let components: Vec<Component> = Path::new(pattern).components().collect();
    for (k, c) in components.iter().enumerate() {
        let last = k + 1 == components.len();
        let part = c.as_os_str();
        let text = part.to_string_lossy();
        let pat = match c {
            Component::Normal(_) if has_glob(&text) => glob::Pattern::new(&text).ok(),
            _ => None,
        };
        let Some(pat) = pat else {
            found.iter_mut().for_each(|p| p.push(part));
            continue;
        };
        let mut next = Vec::new();
        for base in &found {
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<_> = entries
                .flatten()
                .filter(|e| last || e.file_type().is_ok_and(|t| t.is_dir() || t.is_symlink()))
                .map(|e| e.file_name())
                .filter(|n| pat.matches_with(&n.to_string_lossy(), options))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    found
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

fn file_name(p: &Path) -> std::borrow::Cow<'_, str> {
    p.file_name().unwrap_or_default().to_string_lossy()
}

/// A candidate file: its path and whether it is a sibling only (a rotated
/// generation of a followed name, not matched by the user's patterns).
struct Candidate {
    path: PathBuf,
    meta: std::fs::Metadata,
    sibling_only: bool,
}

/// How many descriptors followed files may hold under the soft open-file
/// limit, leaving room for the checkpoint, reports, events and training.
/// `MMON_MAX_OPEN` lowers it (for tests and tuning).
pub fn max_open_for(soft_limit: u64) -> usize {
    let room = if soft_limit > 128 {
        soft_limit - 64
    } else {
        soft_limit / 2
    };
    let room = usize::try_from(room).unwrap_or(usize::MAX).max(4);
    std::env::var("MMON_MAX_OPEN")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(room, |n| n.clamp(1, room))
}

/// Waits at a point tests name, so a test can rotate files exactly there
/// (`MMON_TEST_PAUSE_AT=POINT:DIR`): mmon creates `DIR/POINT` and goes on
/// when `DIR/go` exists (at most 30 s).
fn test_pause(point: &str) {
    let Ok(spec) = std::env::var("MMON_TEST_PAUSE_AT") else {
        return;
    };
    let Some((at, dir)) = spec.split_once(':') else {
        return;
    };
    if at != point {
        return;
    }
    let dir = Path::new(dir);
    let _ = std::fs::write(dir.join(point), b"");
    let start = std::time::Instant::now();
    while !dir.join("go").exists() && start.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

impl Follower {
    pub fn new(
        patterns: Vec<String>,
        forced: Option<Format>,
        schema: Arc<Schema>,
        max_open: usize,
    ) -> Follower {
        Follower {
            patterns,
            forced,
            schema,
            followed: Vec::new(),
            closed: Vec::new(),
            remembered: Vec::new(),
            pending_copies: Vec::new(),
            max_open: max_open.max(1),
            tick: 0,
            unreadable: HashSet::new(),
            matched: 0,
            truncations: 0,
            lost_bytes: 0,
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
                for path in expand(p) {
                    bases.push(path.clone());
                    paths.push((path, false));
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
            dirs.entry(dir)
                .or_default()
                .insert(file_name(b).into_owned());
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
                let os_name = e.file_name();
                let name = os_name.to_string_lossy();
                // `NAME.<suffix>`: try every prefix that ends before a dot.
                let sibling = name
                    .match_indices('.')
                    .any(|(i, _)| i + 1 < name.len() && names.contains(&name[..i]));
                if sibling {
                    paths.push((dir.join(&os_name), true));
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

    /// Opens a candidate, warning once per path when it cannot be read.
    fn identify(&mut self, path: &Path) -> Option<Opened> {
        match identity::open_identified(path) {
            Ok(o) => {
                self.unreadable.remove(path);
                Some(o)
            }
            Err(e) => {
                if self.unreadable.insert(path.to_path_buf()) {
                    log::warn!(
                        "cannot open {}: {e}; skipped (mmon tries again when it changes)",
                        path.display()
                    );
                }
                None
            }
        }
    }

    /// Adds a file opened as `o` to the followed set, reading from `start`.
    fn follow(
        &mut self,
        path: &Path,
        o: Opened,
        start: Start,
        name: Option<&str>,
        rotated: bool,
    ) -> anyhow::Result<()> {
        let name = Name::new(
            name.map_or_else(|| path.to_string_lossy(), Into::into)
                .as_ref(),
        );
        let (offset, line) = match start {
            Start::At { offset, line } => (offset, line),
            Start::End if identity::is_gzip(&o.file) => {
                let (mut r, _) = identity::reader_at(&o.file, 0)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                identity::scan_to_last_newline(&mut r)
                    .with_context(|| format!("cannot read {}", path.display()))?
            }
            Start::End => identity::scan_to_last_newline(&mut At::new(&o.file, 0))
                .with_context(|| format!("cannot read {}", path.display()))?,
        };
        let format = self
            .forced
            .or_else(|| Format::from_path(&name))
            .unwrap_or_else(|| Format::sniff(&o.head));
        let (dev, ino) = o.dev_ino();
        log::info!(
            "following {} from byte {offset} (line {line})",
            path.display()
        );
        self.followed.push(Followed {
            name,
            path: path.to_path_buf(),
            dev,
            ino,
            gz: identity::is_gzip(&o.file),
            head: o.head[..o.head.len().min(offset as usize)].to_vec(),
            copy_of: None,
            before_truncation: None,
            fresh_truncation: false,
            open: None,
            needs_header: format == Format::Csv && offset > 0,
            format,
            decoder: Decoder::new(name, format),
            offset,
            line,
            size: o.meta.len(),
            parked_size: None,
            seen_size: o.meta.len(),
            drained_at: None,
            guard: (0, sha256_hex(b"")),
            gone: false,
            rotated,
            used: self.tick,
            stats: FileStats {
                path: name.to_string(),
                offset: Some(offset),
                ..FileStats::default()
            },
        });
        let i = self.followed.len() - 1;
        if let Err(e) = self.attach(i, &o) {
            self.followed.pop();
            return Err(e);
        }
        self.bound(i);
        Ok(())
    }

    /// Sets up the reader of followed file `i` on the descriptor `o`.
    fn attach(&mut self, i: usize, o: &Opened) -> anyhow::Result<()> {
        let max = self.schema.max_line_bytes;
        let f = &mut self.followed[i];
        if f.needs_header {
            // Resuming inside a CSV file: its header gives the columns.
            let mut header = LineReader::following(At::new(&o.file, 0), max, 0, 1);
            while let Some(l) = header.next_line()? {
                let blank = matches!(&l, Line::Text { bytes, .. } if bytes.iter().all(u8::is_ascii_whitespace));
                let _ = f.decoder.decode(l, &self.schema);
                if !blank {
                    break;
                }
            }
            f.needs_header = false;
        }
        let (reader, _) = identity::reader_at(&o.file, f.offset)
            .with_context(|| format!("cannot open {}", f.path.display()))?;
        f.open = Some(Open {
            file: o.file.clone(),
            lines: LineReader::following(reader, max, f.offset, f.line),
        });
        f.parked_size = None;
        f.drained_at = None;
        f.size = o.meta.len();
        Ok(())
    }

    /// Closes followed file `i`, keeping what is needed to find it again.
    fn park(&mut self, i: usize) {
        let f = &mut self.followed[i];
        let Some(open) = f.open.take() else { return };
        let size = open.file.metadata().map_or(f.size, |m| m.len());
        f.guard = if f.gz {
            (0, sha256_hex(b""))
        } else {
            identity::guard(&open.file, f.offset).unwrap_or((0, sha256_hex(b"")))
        };
        f.size = size;
        f.seen_size = size;
        // Grown since it was drained: the next pass reads it again.
        f.parked_size = f.drained_at;
        log::debug!("closed {} until it changes", f.path.display());
    }

    /// Parks the least useful open files until at most `max_open` are open,
    /// never `keep`: first those already read in this pass, then the least
    /// recently read.
    fn bound(&mut self, keep: usize) {
        let mut open = self.followed.iter().filter(|f| f.open.is_some()).count();
        while open > self.max_open {
            let tick = self.tick;
            let victim = self
                .followed
                .iter()
                .enumerate()
                .filter(|(j, f)| *j != keep && f.open.is_some())
                .min_by_key(|(_, f)| (f.used != tick, f.used))
                .map(|(j, _)| j);
            let Some(j) = victim else { break };
            self.park(j);
            open -= 1;
        }
    }

    /// Finds followed file `i` again by its identity and opens it: at its
    /// path if the inode there is still its own, else among its folder's
    /// entries. `false` when it is nowhere.
    fn reopen(&mut self, i: usize) -> anyhow::Result<bool> {
        let f = &self.followed[i];
        let id = (f.dev, f.ino);
        let head = f.head.clone();
        let gz = f.gz;
        // The content still starts with what was read (a reused inode does not).
        let same = move |o: &Opened| gz || o.head.starts_with(&head);
        let found = match identity::open_identified(&f.path) {
            Ok(o) if o.dev_ino() == id && same(&o) => Some((f.path.clone(), o)),
            _ => f
                .path
                .parent()
                .and_then(|dir| identity::find_in_dir(dir, id, &same)),
        };
        let Some((path, o)) = found else {
            return Ok(false);
        };
        if path != self.followed[i].path {
            log::info!(
                "{} continues as {}",
                self.followed[i].path.display(),
                path.display()
            );
            self.followed[i].path = path;
        }
        self.bound_for_one_more(i);
        self.attach(i, &o)?;
        Ok(true)
    }

    /// Makes room for one more open file, never parking `keep`.
    fn bound_for_one_more(&mut self, keep: usize) {
        self.max_open -= 1;
        self.bound(keep);
        self.max_open += 1;
    }

    /// Counts the unread rest of a file that cannot be found as lost.
    fn lose(&mut self, what: &str, path: &str, offset: u64, size: u64, stats: &mut FileStats) {
        let lost = size.saturating_sub(offset);
        if lost == 0 {
            log::info!("{path} is {what}; it had been read to its end");
            return;
        }
        log::warn!(
            "{path} is {what} before it was read to its end: {lost} bytes after byte {offset} were never read"
        );
        self.lost_bytes += lost;
        stats.lost_bytes += lost;
    }

    /// The first scan without a checkpoint: existing files from their end
    /// (or start), compressed siblings ignored. A file that cannot be read
    /// is warned about and skipped.
    pub fn start(&mut self, from_start: bool) -> anyhow::Result<()> {
        let candidates = self.candidates();
        self.matched = candidates.iter().filter(|c| !c.sibling_only).count();
        for c in candidates {
            if c.sibling_only && is_gz_name(&c.path) {
                continue;
            }
            let start = if from_start {
                Start::At { offset: 0, line: 1 }
            } else {
                Start::End
            };
            let Some(o) = self.identify(&c.path) else {
                continue;
            };
            if let Err(e) = self.follow(&c.path, o, start, None, c.sibling_only) {
                log::warn!("{e:#}; skipped");
            }
        }
        Ok(())
    }

    /// The first scan from a checkpoint: each saved file is found again by
    /// inode and head, or as a compressed or copied generation by its head,
    /// or among its folder's entries by inode (any rotated name); files it
    /// does not know are read from their start. Each candidate is opened
    /// once, identified through that descriptor and read through it.
    pub fn resume(&mut self, saved: &[FileState]) -> anyhow::Result<()> {
        self.remembered = saved
            .iter()
            .flat_map(|s| [PathBuf::from(&s.name), PathBuf::from(&s.path)])
            .collect();
        let candidates = self.candidates();
        self.remembered.clear();
        self.matched = candidates.iter().filter(|c| !c.sibling_only).count();
        // Identify every candidate through its own descriptor, keeping the
        // descriptors the bound allows (the rest are found again by identity).
        let mut ids: Vec<Option<Identity>> = Vec::with_capacity(candidates.len());
        // Held and followed descriptors share the bound while resuming.
        let max_open = self.max_open;
        let max_held = max_open / 2;
        self.max_open = (max_open - max_held).max(1);
        let mut held: Vec<Option<Opened>> = Vec::with_capacity(candidates.len());
        let mut holding = 0;
        for c in &candidates {
            let o = self.identify(&c.path);
            ids.push(o.as_ref().map(|o| (o.dev_ino(), o.head.clone())));
            let keep = holding < max_held;
            holding += usize::from(keep && o.is_some());
            held.push(o.filter(|_| keep));
        }
        test_pause("identified");
        let mut claimed: Vec<bool> = ids.iter().map(Option::is_none).collect();
        let mut unresolved = Vec::new();
        for s in saved {
            let found = (0..candidates.len()).find(|&i| {
                !claimed[i]
                    && ids[i].as_ref().is_some_and(|(id, head)| {
                        *id == (s.dev, s.ino)
                            && identity::head_matches(head, s.head_len, &s.head_sha256)
                    })
            });
            match found {
                Some(i) => {
                    claimed[i] = true;
                    self.resume_one(&candidates[i], held[i].take(), s, true);
                }
                None => unresolved.push(s),
            }
        }
        for s in unresolved {
            let bases = [file_name(Path::new(&s.name)), file_name(Path::new(&s.path))];
            let found = (0..candidates.len()).find(|&i| {
                let name = file_name(&candidates[i].path);
                !claimed[i]
                    && s.head_len >= MIN_CONTENT_MATCH
                    && bases.iter().any(|b| is_sibling(&name, b))
                    && ids[i].as_ref().is_some_and(|(_, head)| {
                        identity::head_matches(head, s.head_len, &s.head_sha256)
                    })
            });
            if let Some(i) = found {
                claimed[i] = true;
                log::info!("{} continues as {}", s.path, candidates[i].path.display());
                self.resume_one(&candidates[i], held[i].take(), s, false);
                continue;
            }
            // Renamed to a name no pattern covers (logrotate's dateext).
            let same = |o: &Opened| identity::head_matches(&o.head, s.head_len, &s.head_sha256);
            let elsewhere = [&s.path, &s.name].into_iter().find_map(|p| {
                let dir = Path::new(p).parent()?;
                identity::find_in_dir(dir, (s.dev, s.ino), &same)
            });
            match elsewhere {
                Some((path, o)) => {
                    log::info!("{} continues as {}", s.path, path.display());
                    let c = Candidate {
                        path,
                        meta: o.meta.clone(),
                        sibling_only: true,
                    };
                    let before = self.followed.len();
                    self.resume_one(&c, Some(o), s, true);
                    // Outside the patterns: drained, then closed.
                    if self.followed.len() > before
                        && let Some(f) = self.followed.last_mut()
                    {
                        f.gone = true;
                    }
                }
                None => {
                    let mut stats = FileStats {
                        path: s.name.clone(),
                        offset: Some(s.offset),
                        ..FileStats::default()
                    };
                    self.lose(
                        "gone since the last run",
                        &s.path,
                        s.offset,
                        s.size,
                        &mut stats,
                    );
                    if stats.lost_bytes > 0 {
                        self.closed.push(stats);
                    }
                }
            }
        }
        for (i, c) in candidates.iter().enumerate() {
            if claimed[i] || (c.sibling_only && is_gz_name(&c.path)) {
                continue;
            }
            let o = held[i].take().or_else(|| self.identify(&c.path));
            if let Some(o) = o
                && let Err(e) = self.follow(
                    &c.path,
                    o,
                    Start::At { offset: 0, line: 1 },
                    None,
                    c.sibling_only,
                )
            {
                log::warn!("{e:#}; skipped");
            }
        }
        self.max_open = max_open;
        Ok(())
    }

    /// Follows a saved file found again as candidate `c` (opened as `o`, or
    /// to be opened again and checked by identity).
    fn resume_one(&mut self, c: &Candidate, o: Option<Opened>, s: &FileState, same_inode: bool) {
        let id = if same_inode {
            (s.dev, s.ino)
        } else {
            dev_ino(&c.meta)
        };
        let o = o.or_else(|| {
            let ok = |o: &Opened| identity::head_matches(&o.head, s.head_len, &s.head_sha256);
            match identity::open_identified(&c.path) {
                Ok(o) if ok(&o) && (!same_inode || o.dev_ino() == id) => Some(o),
                _ => c
                    .path
                    .parent()
                    .and_then(|d| identity::find_in_dir(d, id, &ok))
                    .map(|(_, o)| o),
            }
        });
        let Some(o) = o else {
            log::warn!(
                "{}: changed while mmon was starting; skipped",
                c.path.display()
            );
            return;
        };
        let start = if same_inode {
            self.check_saved(&c.path, &o, s)
        } else {
            Start::At {
                offset: s.offset,
                line: s.line,
            }
        };
        if let Err(e) = self.follow(&c.path, o, start, Some(&s.name), c.sibling_only) {
            log::warn!("{e:#}; skipped");
        }
    }

    /// Where to resume a saved file found again by its inode: at the saved
    /// offset, or from the start if it was truncated while mmon was stopped.
    fn check_saved(&mut self, path: &Path, o: &Opened, s: &FileState) -> Start {
        let resume = Start::At {
            offset: s.offset,
            line: s.line,
        };
        if is_gz_name(path) || identity::is_gzip(&o.file) {
            return resume;
        }
        if o.meta.len() < s.offset {
            self.truncations += 1;
            log::warn!(
                "{}: truncated while stopped ({} bytes, was read to {}); reading it from the start",
                path.display(),
                o.meta.len(),
                s.offset
            );
            return Start::At { offset: 0, line: 1 };
        }
        let same = identity::guard(&o.file, s.offset)
            .is_ok_and(|(len, sha)| len == s.guard_len && sha == s.guard_sha256);
        if !same {
            self.truncations += 1;
            log::warn!(
                "{}: rewritten while stopped (the bytes before offset {} changed); reading it from the start",
                path.display(),
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
                f.rotated = c.sibling_only;
                f.seen_size = c.meta.len();
                continue;
            }
            if is_gz_name(&c.path) && c.sibling_only {
                // A compressed generation of a file still open (and drained).
                continue;
            }
            let Some(o) = self.identify(&c.path) else {
                continue;
            };
            let id = o.dev_ino();
            if self.followed.iter().any(|f| (f.dev, f.ino) == id) {
                // Renamed between the stat and the open: the next scan sees it.
                continue;
            }
            // A copy of a followed file (copy-truncate) continues from where
            // that file was read; anything else is new and read from its start.
            let head = &o.head;
            let name = file_name(&c.path);
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
                    let base = file_name(&f.path);
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
            if let Err(e) = self.follow(&c.path, o, start, None, c.sibling_only) {
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
        self.tick += 1;
        self.followed.sort_by(|a, b| {
            generation(&b.path.to_string_lossy())
                .cmp(&generation(&a.path.to_string_lossy()))
                .then_with(|| a.path.cmp(&b.path))
        });
        let mut any = false;
        let mut i = 0;
        while i < self.followed.len() {
            if self.followed[i].open.is_none() {
                if !self.followed[i].wants_reading() {
                    i += 1;
                    continue;
                }
                if !self.reopen(i)? {
                    let f = self.followed.remove(i);
                    let mut stats = f.stats;
                    let what = if f.gone {
                        "gone (deleted, or renamed out of its folder)"
                    } else {
                        "no longer the same file"
                    };
                    self.lose(
                        what,
                        &f.path.to_string_lossy(),
                        f.offset,
                        f.seen_size.max(f.size),
                        &mut stats,
                    );
                    self.closed.push(stats);
                    continue;
                }
            }
            self.check_truncated(i)?;
            let tick = self.tick;
            let f = &mut self.followed[i];
            f.used = tick;
            let Some(open) = f.open.as_mut() else {
                i += 1;
                continue;
            };
            loop {
                let line = open
                    .lines
                    .next_line()
                    .with_context(|| format!("cannot read {}", f.path.display()))?;
                let Some(line) = line else { break };
                any = true;
                let item = f.decoder.decode(line, &self.schema);
                let before = f.offset;
                f.offset = open.lines.offset();
                f.line = open.lines.next_number();
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
            // Drained: hold no more memory than an unterminated line needs.
            open.lines.release();
            f.drained_at = Some(if f.gz {
                open.file.metadata().map_or(0, |m| m.len())
            } else {
                open.lines.stream_position()
            });
            if f.head.len() < identity::HEAD && (f.head.len() as u64) < f.offset {
                // The file may have been truncated and rewritten since the
                // lines were read: keep the head only if it extends the one
                // already known and the file still reaches the offset, or a
                // copy of what was read would not be recognised.
                let head = identity::head_of(&open.file).unwrap_or_default();
                let size = open.file.metadata().map(|m| m.len()).unwrap_or(0);
                if head.starts_with(&f.head) && size >= f.offset {
                    f.head = head[..head.len().min(f.offset as usize)].to_vec();
                }
            }
            let deleted = open.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
            let id = (f.dev, f.ino);
            if self.pending_copies.iter().any(|(_, of)| *of == id) {
                self.open_copies(i);
            }
            let f = &mut self.followed[i];
            if f.gone || deleted {
                log::info!(
                    "{} is gone; closed after reading it to its end",
                    f.path.display()
                );
                let f = self.followed.remove(i);
                self.closed.push(f.stats);
                continue;
            }
            if f.rotated && f.copy_of.is_none() {
                // A drained rotated generation: found again if it grows.
                self.park(i);
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
            let Some(o) = self.identify(&path) else {
                continue;
            };
            match self.follow(&path, o, Start::At { offset, line }, None, false) {
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
        let Some(meta) = f.meta() else {
            return Ok(());
        };
        let size = meta.len();
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
            .map(|g| g.meta().map_or(g.seen_size, |m| m.len()))
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
        let f = &mut self.followed[i];
        let Some(open) = f.open.take() else {
            return Ok(());
        };
        f.before_truncation = Some((std::mem::take(&mut f.head), f.offset, f.line));
        f.fresh_truncation = true;
        f.offset = 0;
        f.line = 1;
        f.stats.offset = Some(0);
        f.needs_header = false;
        f.decoder = Decoder::new(f.name, f.format);
        let o = Opened {
            meta,
            head: Vec::new(),
            file: open.file,
        };
        drop(open.lines);
        self.attach(i, &o)?;
        Ok(())
    }

    /// The checkpoint's view of every followed file.
    pub fn states(&self) -> Vec<FileState> {
        self.followed
            .iter()
            .map(|f| {
                let head = &f.head;
                let meta = f.meta();
                let size = meta.as_ref().map_or(f.seen_size, |m| m.len());
                // A copy shorter than its offset has nothing left to read.
                let offset = match f.copy_of {
                    Some(_) => f.offset.min(size),
                    None => f.offset,
                };
                let (guard_len, guard_sha256) = match &f.open {
                    _ if f.gz => (0, sha256_hex(b"")),
                    Some(o) => identity::guard(&o.file, offset).unwrap_or((0, sha256_hex(b""))),
                    None => f.guard.clone(),
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
                    size,
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

    /// How many files are followed (open or parked).
    pub fn open_count(&self) -> usize {
        self.followed.len()
    }

    /// How many descriptors followed files hold now.
    pub fn descriptors(&self) -> usize {
        self.followed.iter().filter(|f| f.open.is_some()).count()
    }
}

fn is_gz_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
