//! Parsing on every core: the files cut into chunks of whole lines, each
//! chunk parsed by whichever thread is free, the chunks handed to the
//! pipeline in file order.
//!
//! One reader at a time (a lock) reads the next [`CHUNK`] bytes of the
//! stream (plain file, gzip or stdin: the same sequential `read`) and cuts
//! them after their last newline; the rest starts the next chunk. The
//! thread that read a chunk then parses it, outside the lock, with its own
//! [`Decoder`] (model ids and versions are interned [`Name`]s, so the same
//! name is the same pointer on every thread). Line numbers are counted
//! within the chunk and made absolute, in order, by the consumer: a prefix
//! sum over chunk line counts. A CSV file's chunks are parsed under the lock, in order,
//! until its header is known; every later line decodes alone.
//!
//! Inflating gzip is the slowest part of reading it and only one thread at
//! a time can do it, so a worker that read a gzip chunk hands it to the
//! consumer unparsed and goes back to reading, as long as the consumer is
//! keeping up (few chunks in flight); the inflater then seldom waits and
//! replay runs near the speed of inflation alone. When the pipeline is the
//! slower side, chunks pile up and the worker parses them itself.
//!
//! Lines are cut exactly as [`super::lines::LineReader`] cuts them (BOM,
//! CRLF, lines over `max_line_bytes` kept as their first bytes, an
//! unterminated last line), so items, their order and their messages are
//! those of the serial [`super::FileSource`]; the tests compare the two.
//!
//! At most `DEPTH` chunks are read ahead of the consumer, so memory is
//! bounded. Spent item vectors and byte buffers go back to the workers.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::lines::{HEAD_BYTES, Line};
use super::{Decoder, FileStats, Format, Item};
use crate::record::{Name, Schema};

/// Bytes read per chunk (more when a line is longer).
pub const CHUNK: usize = 1 << 20;
/// Chunks read but not yet taken by the consumer, per worker.
const DEPTH_PER_WORKER: usize = 3;
/// At least this many chunks may be in flight.
const DEPTH: usize = 4;
/// A gzip chunk is handed to the consumer unparsed while no more than this
/// many chunks are in flight (the consumer is keeping up).
const HANDOFF_AHEAD: usize = 2;

/// One piece of a stream, cut at line starts.
enum Piece {
    /// Whole lines from stream offset `base`; the last one may lack its
    /// newline only when `last`.
    Lines { data: Vec<u8>, base: u64 },
    /// A line longer than `max_line_bytes`, skipped while reading.
    /// `end` is the stream offset after it.
    Long {
        head: Vec<u8>,
        len: u64,
        offset: u64,
        end: u64,
    },
}

/// The file a piece belongs to.
struct FileMeta {
    index: usize,
    name: Name,
    /// Reading it is costly (gzip inflation, one thread at a time): its
    /// reader hands pieces to the consumer to parse while the consumer
    /// keeps up, and goes on reading.
    handoff: bool,
    /// A decoder to fork for this file's pieces (once it is stateless).
    template: Decoder,
}

/// A chunk parsed: its items with line numbers counted from the chunk.
#[derive(Default)]
struct Parsed {
    file: usize,
    items: Vec<Item>,
    lines: u64,
    /// Stream offset just past the chunk.
    end: u64,
    records: u64,
    rejected: u64,
    /// The source stopped here: `true` if the file could not be opened.
    failed: Option<(anyhow::Error, bool)>,
    /// The last chunk of all.
    done: bool,
    /// Read but left for the consumer to parse (see [`FileMeta::handoff`]).
    unparsed: Option<(Arc<FileMeta>, Piece)>,
}

/// What the reader hands out.
enum Task {
    Parse(Arc<FileMeta>, Piece),
    Parsed(Box<Parsed>),
}

/// A file being read.
struct Open {
    meta: Arc<FileMeta>,
    inner: Box<dyn Read + Send>,
    /// Bytes read and not yet cut off; `buf[0]` is at stream offset `base`.
    buf: Vec<u8>,
    base: u64,
    at_start: bool,
    eof: bool,
    emitted: bool,
    /// The decoder of a file whose lines depend on those before (a CSV
    /// file before its header): its pieces are parsed here, in order.
    serial: Option<Decoder>,
}

struct Reader {
    paths: Vec<String>,
    next_path: usize,
    forced: Option<Format>,
    schema: Arc<Schema>,
    open: Option<Open>,
    seq: u64,
    done: bool,
    /// Spent byte buffers, shared with the parsers, which give them back
    /// without taking the reader's lock.
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
    chunk: usize,
}

struct Shared {
    reader: Mutex<Reader>,
    /// Chunks read and not yet taken by the consumer; `usize::MAX` stops.
    ahead: Mutex<usize>,
    room: Condvar,
    depth: usize,
    /// Spent item vectors, back for reuse.
    spent: Mutex<Vec<Vec<Item>>>,
    /// The reader's spent byte buffers.
    buffers: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Shared {
    /// Whether the consumer has few chunks waiting: it has time to parse.
    fn keeping_up(&self) -> bool {
        *lock(&self.ahead) <= HANDOFF_AHEAD
    }

    /// One chunk fewer in flight: a worker may read another.
    fn release(&self) {
        let mut ahead = lock(&self.ahead);
        if *ahead != usize::MAX {
            *ahead = ahead.saturating_sub(1);
        }
        drop(ahead);
        self.room.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The files of a [`super::FileSource`] parsed on `workers` threads.
pub struct Chunked {
    shared: Arc<Shared>,
    rx: Receiver<(u64, Box<Parsed>)>,
    threads: Vec<JoinHandle<()>>,
    pending: BTreeMap<u64, Box<Parsed>>,
    next: u64,
    /// The batch last handed out.
    current: Option<Box<Parsed>>,
    paths: Vec<String>,
    stats: Vec<FileStats>,
    line_base: u64,
    bytes_before: u64,
    bytes: u64,
    finished: bool,
    helper: Worker,
}

impl Chunked {
    /// Starts `workers` threads (none: the consumer parses every chunk).
    pub fn start(
        paths: Vec<String>,
        forced: Option<Format>,
        schema: Arc<Schema>,
        workers: usize,
    ) -> Chunked {
        Chunked::sized(paths, forced, schema, workers, CHUNK)
    }

    /// [`Chunked::start`] reading `chunk` bytes at a time.
    fn sized(
        paths: Vec<String>,
        forced: Option<Format>,
        schema: Arc<Schema>,
        workers: usize,
        chunk: usize,
    ) -> Chunked {
        let buffers = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            reader: Mutex::new(Reader {
                paths: paths.clone(),
                next_path: 0,
                forced,
                schema: schema.clone(),
                open: None,
                seq: 0,
                done: false,
                spare: buffers.clone(),
                chunk: chunk.max(1),
            }),
            ahead: Mutex::new(0),
            room: Condvar::new(),
            depth: DEPTH.max(DEPTH_PER_WORKER * workers),
            spent: Mutex::new(Vec::new()),
            buffers,
        });
        let (tx, rx) = channel();
        let mut threads = Vec::new();
        for i in 0..workers {
            let shared = shared.clone();
            let tx = tx.clone();
            let mut worker = Worker::new(schema.clone());
            let started = std::thread::Builder::new()
                .name(format!("mmon-parse-{i}"))
                .spawn(move || {
                    while let Some((seq, parsed)) = worker.step(&shared, true) {
                        if tx.send((seq, parsed)).is_err() {
                            return;
                        }
                    }
                });
            match started {
                Ok(t) => threads.push(t),
                Err(e) => {
                    log::warn!("cannot start a parser thread ({e}); going on with fewer");
                    break;
                }
            }
        }
        Chunked {
            shared,
            rx,
            threads,
            pending: BTreeMap::new(),
            next: 0,
            current: None,
            paths,
            stats: Vec::new(),
            line_base: 0,
            bytes_before: 0,
            bytes: 0,
            finished: false,
            helper: Worker::new(schema),
        }
    }

    /// The next items in file order, `Ok(None)` at the end, or the error
    /// that stopped the source (after the items before it).
    pub fn next_batch(&mut self) -> anyhow::Result<Option<&[Item]>> {
        if let Some(spent) = self.current.take() {
            lock(&self.shared.spent).push(spent.items);
        }
        loop {
            if self.finished {
                return Ok(None);
            }
            let mut parsed = match self.pending.remove(&self.next) {
                Some(p) => p,
                None => {
                    self.wait()?;
                    continue;
                }
            };
            if let Some((meta, piece)) = parsed.unparsed.take() {
                let mut items = lock(&self.shared.spent).pop().unwrap_or_default();
                items.clear();
                parsed = self.helper.parse_piece(&self.shared, &meta, piece, items);
            }
            self.next += 1;
            self.shared.release();
            if parsed.done {
                self.finished = true;
                return Ok(None);
            }
            let opened = parsed.failed.as_ref().is_none_or(|(_, open)| !open);
            if opened && self.stats.len() <= parsed.file {
                self.stats.push(FileStats {
                    path: self.paths.get(parsed.file).cloned().unwrap_or_default(),
                    ..FileStats::default()
                });
                self.line_base = 0;
                self.bytes_before = self.bytes;
            }
            if let Some((e, _)) = parsed.failed.take() {
                self.finished = true;
                return Err(e);
            }
            for item in &mut parsed.items {
                match item {
                    Item::Record(r) => r.pos.line += self.line_base,
                    Item::Bad(b) => b.pos.line += self.line_base,
                }
            }
            self.line_base += parsed.lines;
            if let Some(stats) = self.stats.last_mut() {
                stats.bytes = parsed.end;
                stats.records += parsed.records;
                stats.rejected += parsed.rejected;
            }
            self.bytes = self.bytes_before + parsed.end;
            if parsed.items.is_empty() {
                lock(&self.shared.spent).push(std::mem::take(&mut parsed.items));
                continue;
            }
            let parsed = self.current.insert(parsed);
            return Ok(Some(&parsed.items));
        }
    }

    /// Waits for the next chunk, parsing one meanwhile if no worker has.
    fn wait(&mut self) -> anyhow::Result<()> {
        while let Ok((seq, parsed)) = self.rx.try_recv() {
            self.pending.insert(seq, parsed);
        }
        if self.pending.contains_key(&self.next) {
            return Ok(());
        }
        if let Some((seq, parsed)) = self.helper.step(&self.shared, false) {
            self.pending.insert(seq, parsed);
            return Ok(());
        }
        match self.rx.recv() {
            Ok((seq, parsed)) => {
                self.pending.insert(seq, parsed);
                Ok(())
            }
            // Every worker has ended, and the chunk awaited is not here.
            Err(_) => anyhow::bail!("a parser thread stopped unexpectedly (a bug)"),
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    pub fn stats(&self) -> &[FileStats] {
        &self.stats
    }
}

impl Drop for Chunked {
    fn drop(&mut self) {
        *lock(&self.shared.ahead) = usize::MAX;
        self.shared.room.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A parsing thread's own state.
struct Worker {
    schema: Arc<Schema>,
    /// The decoder of the file last parsed, by file index.
    decoder: Option<(usize, Decoder)>,
}

impl Worker {
    fn new(schema: Arc<Schema>) -> Worker {
        Worker {
            schema,
            decoder: None,
        }
    }

    /// Reads and parses the next chunk; `None` when all are out (or, if
    /// not `block`, when none can be read right now).
    fn step(&mut self, shared: &Shared, block: bool) -> Option<(u64, Box<Parsed>)> {
        {
            let mut ahead = lock(&shared.ahead);
            while *ahead >= shared.depth {
                if *ahead == usize::MAX || !block {
                    return None;
                }
                ahead = shared.room.wait(ahead).unwrap_or_else(|e| e.into_inner());
            }
            *ahead += 1;
        }
        let items = lock(&shared.spent).pop();
        let mut items = items.unwrap_or_default();
        items.clear();
        let mut reader = if block {
            lock(&shared.reader)
        } else {
            match shared.reader.try_lock() {
                Ok(r) => r,
                Err(_) => {
                    shared.release();
                    lock(&shared.spent).push(items);
                    return None;
                }
            }
        };
        let Some((seq, task)) = reader.next_task(&mut items) else {
            drop(reader);
            shared.release();
            return None;
        };
        drop(reader);
        let parsed = match task {
            Task::Parsed(p) => p,
            Task::Parse(meta, piece) if meta.handoff && block && shared.keeping_up() => {
                lock(&shared.spent).push(items);
                Box::new(Parsed {
                    file: meta.index,
                    unparsed: Some((meta, piece)),
                    ..Parsed::default()
                })
            }
            Task::Parse(meta, piece) => self.parse_piece(shared, &meta, piece, items),
        };
        Some((seq, parsed))
    }

    /// Parses one piece of `meta`'s file into `items`.
    fn parse_piece(
        &mut self,
        shared: &Shared,
        meta: &FileMeta,
        piece: Piece,
        items: Vec<Item>,
    ) -> Box<Parsed> {
        let decoder = match &mut self.decoder {
            Some((i, d)) if *i == meta.index => d,
            slot => {
                let d = meta.template.fork(meta.name);
                &mut slot.insert((meta.index, d)).1
            }
        };
        let mut p = parse(&piece, decoder, &self.schema, items);
        p.file = meta.index;
        if let Piece::Lines { data, .. } = piece {
            lock(&shared.buffers).push(data);
        }
        Box::new(p)
    }
}

/// Decodes every line of `piece`, numbering them from 1.
fn parse(piece: &Piece, decoder: &mut Decoder, schema: &Schema, mut items: Vec<Item>) -> Parsed {
    let mut p = Parsed::default();
    let mut push = |item: Option<Item>, p: &mut Parsed| match item {
        Some(item @ Item::Record(_)) => {
            p.records += 1;
            items.push(item);
        }
        Some(item @ Item::Bad(_)) => {
            p.rejected += 1;
            items.push(item);
        }
        None => {}
    };
    match piece {
        Piece::Long {
            head,
            len,
            offset,
            end,
        } => {
            p.lines = 1;
            p.end = *end;
            let line = Line::TooLong {
                head: head.clone(),
                len: *len,
                number: 1,
                offset: *offset,
            };
            push(decoder.decode(line, schema), &mut p);
        }
        Piece::Lines { data, base } => {
            let max = schema.max_line_bytes;
            let mut start = 0;
            let mut number = 0;
            let mut ends = memchr::memchr_iter(b'\n', data);
            while start < data.len() {
                number += 1;
                let end = ends.next().unwrap_or(data.len());
                let bytes = &data[start..end];
                let len = bytes.len();
                let terminated = end < data.len();
                let long = if terminated {
                    len > max && !(len == max + 1 && bytes[len - 1] == b'\r')
                } else {
                    len > max + 1
                };
                let offset = base + start as u64;
                let line = if long {
                    Line::TooLong {
                        head: bytes[..HEAD_BYTES.min(len)].to_vec(),
                        len: len as u64,
                        number,
                        offset,
                    }
                } else {
                    Line::Text {
                        bytes: bytes.strip_suffix(b"\r").unwrap_or(bytes),
                        number,
                        offset,
                    }
                };
                push(decoder.decode(line, schema), &mut p);
                start = end + 1;
            }
            p.lines = number;
            p.end = base + data.len() as u64;
        }
    }
    p.items = items;
    p
}

impl Reader {
    /// The next chunk to parse (or parsed here, for a file read in order),
    /// with its sequence number; `None` once everything is out.
    fn next_task(&mut self, items: &mut Vec<Item>) -> Option<(u64, Task)> {
        loop {
            if self.done {
                return None;
            }
            let seq = self.seq;
            if self.open.is_none() {
                let Some(path) = self.paths.get(self.next_path).cloned() else {
                    self.done = true;
                    self.seq += 1;
                    let end = Parsed {
                        done: true,
                        ..Parsed::default()
                    };
                    return Some((seq, Task::Parsed(Box::new(end))));
                };
                let index = self.next_path;
                self.next_path += 1;
                match super::open(&path, self.forced) {
                    Ok(super::Opened {
                        reader: inner,
                        format,
                        gzip,
                    }) => {
                        log::info!("reading {path} as {format:?} on every core");
                        let name = Name::new(if path == "-" {
                            "<stdin>"
                        } else {
                            path.as_str()
                        });
                        let decoder = Decoder::new(name, format);
                        let stateless = decoder.stateless();
                        self.open = Some(Open {
                            meta: Arc::new(FileMeta {
                                index,
                                name,
                                handoff: gzip,
                                template: Decoder::new(name, format),
                            }),
                            inner,
                            buf: lock(&self.spare).pop().unwrap_or_default(),
                            base: 0,
                            at_start: true,
                            eof: false,
                            emitted: false,
                            serial: (!stateless).then_some(decoder),
                        });
                        if let Some(open) = &mut self.open {
                            open.buf.clear();
                        }
                    }
                    Err(e) => {
                        self.done = true;
                        self.seq += 1;
                        let failed = Parsed {
                            file: index,
                            failed: Some((e, true)),
                            ..Parsed::default()
                        };
                        return Some((seq, Task::Parsed(Box::new(failed))));
                    }
                }
            }
            let open = self.open.as_mut()?;
            let spare = lock(&self.spare).pop().unwrap_or_default();
            match open.next_piece(self.schema.max_line_bytes, self.chunk, spare) {
                Ok(Some(piece)) => {
                    self.seq += 1;
                    let Some(decoder) = &mut open.serial else {
                        return Some((seq, Task::Parse(open.meta.clone(), piece)));
                    };
                    let mut p = parse(&piece, decoder, &self.schema, std::mem::take(items));
                    p.file = open.meta.index;
                    if decoder.stateless() {
                        let meta = &open.meta;
                        open.meta = Arc::new(FileMeta {
                            index: meta.index,
                            name: meta.name,
                            handoff: meta.handoff,
                            template: decoder.fork(meta.name),
                        });
                        open.serial = None;
                    }
                    if let Piece::Lines { data, .. } = piece {
                        lock(&self.spare).push(data);
                    }
                    return Some((seq, Task::Parsed(Box::new(p))));
                }
                Ok(None) => {
                    if let Some(open) = self.open.take() {
                        lock(&self.spare).push(open.buf);
                    }
                }
                Err(e) => {
                    let e =
                        anyhow::Error::new(e).context(format!("cannot read {}", open.meta.name));
                    self.done = true;
                    self.seq += 1;
                    let failed = Parsed {
                        file: open.meta.index,
                        failed: Some((e, false)),
                        ..Parsed::default()
                    };
                    return Some((seq, Task::Parsed(Box::new(failed))));
                }
            }
        }
    }
}

impl Open {
    /// Reads until `buf` holds `want` bytes or the stream ends.
    fn fill(&mut self, want: usize) -> std::io::Result<()> {
        if self.eof || self.buf.len() >= want {
            return Ok(());
        }
        let need = want - self.buf.len();
        self.buf.reserve(need);
        let got = (&mut self.inner)
            .take(need as u64)
            .read_to_end(&mut self.buf)?;
        if got < need {
            self.eof = true;
        }
        Ok(())
    }

    /// The next piece of the file, `None` at its end. `spare` becomes the
    /// buffer that carries the bytes after the piece.
    fn next_piece(
        &mut self,
        max: usize,
        chunk: usize,
        mut spare: Vec<u8>,
    ) -> std::io::Result<Option<Piece>> {
        let mut want = chunk;
        loop {
            self.fill(want)?;
            if self.at_start && (self.buf.len() >= 3 || self.eof) {
                self.at_start = false;
                if self.buf.starts_with(b"\xEF\xBB\xBF") {
                    self.buf.drain(..3);
                    self.base += 3;
                }
            }
            if self.buf.is_empty() && self.eof {
                if self.emitted {
                    return Ok(None);
                }
                self.emitted = true;
                spare.clear();
                return Ok(Some(Piece::Lines {
                    data: spare,
                    base: self.base,
                }));
            }
            let cut = if self.eof {
                self.buf.len()
            } else if let Some(i) = memchr::memrchr(b'\n', &self.buf) {
                i + 1
            } else if self.buf.len() > max + 1 {
                return self.skip_long_line(chunk).map(Some);
            } else {
                want = want.max(self.buf.len()).saturating_mul(2).max(max + 2);
                continue;
            };
            self.emitted = true;
            spare.clear();
            spare.extend_from_slice(&self.buf[cut..]);
            let mut data = std::mem::replace(&mut self.buf, spare);
            data.truncate(cut);
            let base = self.base;
            self.base += cut as u64;
            return Ok(Some(Piece::Lines { data, base }));
        }
    }

    /// Skips a line that has no newline within more than `max_line_bytes`,
    /// keeping only its first bytes.
    fn skip_long_line(&mut self, chunk: usize) -> std::io::Result<Piece> {
        self.emitted = true;
        let offset = self.base;
        let mut head = Vec::new();
        let mut len = 0u64;
        loop {
            let line = memchr::memchr(b'\n', &self.buf);
            let want = HEAD_BYTES.saturating_sub(head.len());
            head.extend_from_slice(&self.buf[..want.min(line.unwrap_or(self.buf.len()))]);
            if let Some(i) = line {
                len += i as u64;
                self.buf.drain(..=i);
                self.base = offset + len + 1;
                break;
            }
            len += self.buf.len() as u64;
            self.buf.clear();
            if self.eof {
                self.base = offset + len;
                break;
            }
            self.fill(chunk)?;
            if self.buf.is_empty() && self.eof {
                self.base = offset + len;
                break;
            }
        }
        Ok(Piece::Long {
            head,
            len,
            offset,
            end: self.base,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Config;
    use crate::source::FileSource;

    fn schema(max_line: usize) -> Arc<Schema> {
        let text = format!(
            "[input]\nvalid = {{ accuracy = [0, 1] }}\nmax_line_bytes = {max_line}\n\
             [[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n"
        );
        Arc::new(Config::parse(&text, "t.toml").unwrap().schema())
    }

    /// Every item with its position, then the error or the per-file counts,
    /// as text; and whether equal names are the same `Name`.
    pub(in crate::source) fn serial(paths: &[String], schema: &Arc<Schema>) -> Vec<String> {
        let mut source = FileSource::new(paths.to_vec(), None, schema.clone());
        let mut out = Vec::new();
        for item in source.by_ref() {
            match item {
                Ok(item) => out.push(format!("{item:?}")),
                Err(e) => {
                    out.push(format!("error: {e:#}"));
                    return out;
                }
            }
        }
        out.push(format!("{:?}", source.stats));
        out
    }

    fn chunked(
        paths: &[String],
        schema: &Arc<Schema>,
        workers: usize,
        chunk: usize,
    ) -> Vec<String> {
        let mut source = Chunked::sized(paths.to_vec(), None, schema.clone(), workers, chunk);
        let mut out = Vec::new();
        let mut models: Vec<Name> = Vec::new();
        loop {
            match source.next_batch() {
                Ok(Some(batch)) => {
                    for item in batch {
                        if let Item::Record(r) = item {
                            let model = r.model();
                            match models.iter().find(|m| m.as_str() == model.as_str()) {
                                Some(m) => assert_eq!(*m, model, "{m}"),
                                None => models.push(model),
                            }
                        }
                        out.push(format!("{item:?}"));
                    }
                }
                Ok(None) => {
                    out.push(format!("{:?}", source.stats()));
                    return out;
                }
                Err(e) => {
                    out.push(format!("error: {e:#}"));
                    return out;
                }
            }
        }
    }

    fn jsonl_line() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0u32..5, 0u32..100, any::<bool>()).prop_map(|(m, x, v)| {
                let version = if v { ",\"model_version\":\"v1\"" } else { "" };
                format!(
                    "{{\"timestamp\":\"2024-03-01T00:00:{:02}Z\",\"model_id\":\"m{m}\"{version},\"accuracy\":0.{x:02}}}",
                    x % 60
                )
            }),
            1 => Just("{oops".to_string()),
            1 => Just("{\"accuracy\":2}".to_string()),
            1 => Just(String::new()),
            1 => Just("   ".to_string()),
            1 => (50usize..400).prop_map(|n| format!("{{\"pad\":\"{}\"}}", "x".repeat(n))),
            1 => Just("{\"timestamp\":1700000000,\"accuracy\":\"\u{e9}\"}".to_string()),
        ]
    }

    fn csv_line() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0u32..5, 0u32..100).prop_map(|(m, x)| format!("2024-03-01T00:00:00Z,m{m},0.{x:02}")),
            1 => Just("2024-03-01T00:00:00Z,\"m,1\",0.5".to_string()),
            1 => Just("2024-03-01T00:00:00Z,m1".to_string()),
            1 => Just(String::new()),
            1 => (50usize..400).prop_map(|n| format!("2024-03-01T00:00:00Z,{},0.1", "y".repeat(n))),
        ]
    }

    /// A log from `lines`, with the given line ends, BOM and last newline.
    fn log(lines: &[String], crlf: &[bool], bom: bool, last_newline: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(b"\xEF\xBB\xBF");
        }
        for (i, line) in lines.iter().enumerate() {
            out.extend(line.as_bytes());
            if i + 1 < lines.len() || last_newline {
                if crlf.get(i).copied().unwrap_or(false) {
                    out.push(b'\r');
                }
                out.push(b'\n');
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Chunk-parallel parsing yields the serial path's items, in its
        /// order, with its line numbers, offsets, messages and counts.
        #[test]
        fn chunked_parsing_matches_the_serial_path(
            jsonl in proptest::collection::vec(jsonl_line(), 0..60),
            csv in proptest::collection::vec(csv_line(), 0..60),
            crlf in proptest::collection::vec(any::<bool>(), 60),
            bom in any::<bool>(),
            last_newline in any::<bool>(),
            header_first in any::<bool>(),
            chunk in 1usize..700,
            workers in 0usize..4,
            max_line in prop_oneof![Just(64usize), Just(150), Just(1 << 20)],
            gzip in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            // A gzip file's chunks are handed to the consumer to parse.
            let a = dir.path().join(if gzip { "a.jsonl.gz" } else { "a.jsonl" });
            let b = dir.path().join("b.csv");
            let text = log(&jsonl, &crlf, bom, last_newline);
            let bytes = if gzip {
                use std::io::Write;
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(&text).unwrap();
                z.finish().unwrap()
            } else {
                text
            };
            std::fs::write(&a, bytes).unwrap();
            let mut rows = csv.clone();
            let at = if header_first { 0 } else { rows.len().min(2) };
            rows.insert(at, "timestamp,model_id,accuracy".to_string());
            std::fs::write(&b, log(&rows, &crlf, !bom, !last_newline)).unwrap();
            let paths = vec![a.display().to_string(), b.display().to_string()];
            let schema = schema(max_line);
            let want = serial(&paths, &schema);
            prop_assert_eq!(chunked(&paths, &schema, workers, chunk), want);
        }
    }

    #[test]
    fn a_missing_file_fails_after_the_items_before_it() {
        let schema = schema(1 << 20);
        let paths = vec![
            "fixtures/bad.jsonl".to_string(),
            "fixtures/no-such-file.jsonl".to_string(),
            "fixtures/metrics.jsonl".to_string(),
        ];
        let want = serial(&paths, &schema);
        assert!(want.last().unwrap().starts_with("error: cannot open"));
        for chunk in [7, 4096, CHUNK] {
            assert_eq!(chunked(&paths, &schema, 2, chunk), want, "{chunk}");
        }
    }

    #[test]
    fn fixtures_and_gzip_parse_alike_on_every_core() {
        let schema = schema(1 << 20);
        let mut paths: Vec<String> = std::fs::read_dir("fixtures")
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .filter(|p| p.ends_with(".jsonl") || p.ends_with(".csv") || p.ends_with(".gz"))
            .collect();
        paths.sort();
        assert!(paths.len() > 2, "{paths:?}");
        for path in paths {
            let one = vec![path];
            let want = serial(&one, &schema);
            for (workers, chunk) in [(0, 100), (1, 3000), (3, CHUNK)] {
                assert_eq!(
                    chunked(&one, &schema, workers, chunk),
                    want,
                    "{one:?} {workers} {chunk}"
                );
            }
        }
    }
}
