//! Sources: log files in, records (or bad records) out, in file order.
//!
//! A source knows files, formats and compression; the pipeline only sees
//! [`Record`]s carrying their [`Position`]. [`FileSource`] reads a list of
//! files (or stdin) to their end for `replay`; the file follower of `watch`
//! reuses [`Decoder`] on the bytes it reads, so both parse identically.

pub mod chunks;
pub mod csv;
pub mod inputs;
pub mod jsonl;
pub mod lines;
#[cfg(feature = "nats")]
pub mod nats;
pub mod read_ahead;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::record::{Interner, Name, Position, Record, Schema, Values};
use lines::{Line, LineReader};

/// What the parsers expect of a timestamp string.
pub const TIMESTAMP_EXPECTED: &str = crate::timestamp::EXPECTED;

/// The input format of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    /// By extension (after any `.gz`): `.jsonl`, `.ndjson`, `.json` or `.csv`.
    pub fn from_path(path: &str) -> Option<Format> {
        let name = path
            .strip_suffix(".gz")
            .unwrap_or(path)
            .to_ascii_lowercase();
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
            Some(Format::Jsonl)
        } else if name.ends_with(".csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }

    /// By content: a first non-blank byte of `{` is JSONL, anything else CSV.
    pub fn sniff(head: &[u8]) -> Format {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Format::Jsonl,
            _ => Format::Csv,
        }
    }
}

/// The fields of one record as the parsers find them.
#[derive(Debug, Default)]
pub struct Fields {
    pub time: Option<i64>,
    model: Option<Name>,
    version: Option<Name>,
    pub values: Values,
    /// Model ids and versions apart, so each lookup scans only its kind.
    models: Interner,
    versions: Interner,
    keys: jsonl::KeyCache,
    last_date: crate::timestamp::LastDate,
}

impl Fields {
    fn reset(&mut self, metrics: usize) {
        self.time = None;
        self.model = None;
        self.version = None;
        self.values.clear();
        self.values.resize(metrics, f64::NAN);
    }

    /// Reads a timestamp string, reusing the previous line's day number.
    fn time_of(&mut self, text: &[u8], unit: crate::timestamp::Unit) -> Result<i64, String> {
        crate::timestamp::parse_text(text, unit, &mut self.last_date)
    }

    /// Sets the model id from a string's UTF-8 bytes.
    fn set_model(&mut self, s: &[u8]) {
        self.model = if s.is_empty() {
            None
        } else {
            Some(self.models.get(s))
        };
    }

    /// Sets the model version from a string's UTF-8 bytes.
    fn set_version(&mut self, s: &[u8]) {
        self.version = if s.is_empty() {
            None
        } else {
            Some(self.versions.get(s))
        };
    }

    #[inline]
    fn set_metric(&mut self, schema: &Schema, slot: usize, x: f64) -> Result<(), FieldError> {
        debug_assert!(slot < self.values.len(), "reset sizes values to the schema");
        let in_range = x.is_finite()
            && match schema.ranges.get(slot) {
                Some(Some((lo, hi))) => (*lo..=*hi).contains(&x),
                _ => true,
            };
        match self.values.get_mut(slot) {
            Some(value) if in_range => {
                *value = x;
                Ok(())
            }
            _ => Err(bad_metric(schema, slot, x)),
        }
    }
}

/// Why a monitored metric's value is refused.
#[cold]
fn bad_metric(schema: &Schema, slot: usize, x: f64) -> FieldError {
    let name = schema.metrics.get(slot).map_or("", String::as_str);
    let expected = match schema.ranges.get(slot) {
        Some(Some((lo, hi))) if x.is_finite() => format!("a number in [{lo}, {hi}]"),
        _ => "a finite number".to_string(),
    };
    FieldError::bad(name, expected, x.to_string())
}

/// What is wrong with a bad line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("expected {expected} columns, found {found}")]
    Columns { expected: usize, found: usize },
    #[error("field {field:?}: expected {expected}, found {found}")]
    Bad {
        field: String,
        expected: String,
        found: String,
    },
    #[error("field {0:?}: missing (every record needs a timestamp)")]
    MissingTimestamp(String),
    #[error("invalid UTF-8 at byte {0} of the line")]
    Utf8(usize),
    #[error("line of {len} bytes is longer than max_line_bytes ({max})")]
    TooLong { len: u64, max: usize },
    #[error("bad CSV header: {0}")]
    Header(String),
    /// A line of a CSV file whose header was refused: shown once, as the
    /// header's own error, so these are counted and kept but not printed.
    #[error("no usable CSV header (line {0} was refused)")]
    NoHeader(u64),
}

impl FieldError {
    fn bad(field: &str, expected: impl Into<String>, found: impl Into<String>) -> FieldError {
        FieldError::Bad {
            field: field.to_string(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// A line that is not a valid record: where, what, and the raw bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{}: {error}", pos.file, pos.line)]
pub struct BadRecord {
    pub pos: Position,
    pub error: FieldError,
    /// The line as read (only its first bytes for an overlong line).
    pub raw: Vec<u8>,
}

/// What a source yields.
#[derive(Debug)]
pub enum Item {
    Record(Record),
    /// Boxed: bad records are rare, and an `Item` is then no bigger than a
    /// record (a chunk of items is written on one thread and read on
    /// another).
    Bad(Box<BadRecord>),
}

/// Turns the lines of one file into records; shared by replay and watch.
pub struct Decoder {
    file: Name,
    format: Format,
    csv: Option<csv::Layout>,
    /// The line of a refused CSV header; later lines are still tried as the
    /// header, but fail quietly.
    refused_header: Option<u64>,
    fields: Fields,
}

impl Decoder {
    pub fn new(file: Name, format: Format) -> Decoder {
        Decoder {
            file,
            format,
            csv: None,
            refused_header: None,
            fields: Fields::default(),
        }
    }

    pub fn file(&self) -> Name {
        self.file
    }

    /// Whether a line decodes the same whatever lines came before it: JSONL
    /// always, CSV once its header is known.
    pub fn stateless(&self) -> bool {
        self.format == Format::Jsonl || self.csv.is_some()
    }

    /// A decoder of the same file at a later line, for a [`stateless`]
    /// one: it carries the CSV header's layout.
    ///
    /// [`stateless`]: Decoder::stateless
    pub fn fork(&self, file: Name) -> Decoder {
        let mut d = Decoder::new(file, self.format);
        d.csv = self.csv.clone();
        d
    }

    /// Decodes one line; `None` for blank lines and the CSV header.
    pub fn decode(&mut self, line: Line<'_>, schema: &Schema) -> Option<Item> {
        let (bytes, number, offset) = match line {
            Line::Text {
                bytes,
                number,
                offset,
            } => (bytes, number, offset),
            Line::TooLong {
                head,
                len,
                number,
                offset,
            } => {
                let pos = Position {
                    file: self.file,
                    line: number,
                    offset,
                };
                let error = FieldError::TooLong {
                    len,
                    max: schema.max_line_bytes,
                };
                return Some(Item::Bad(Box::new(BadRecord {
                    pos,
                    error,
                    raw: head,
                })));
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let pos = Position {
            file: self.file,
            line: number,
            offset,
        };
        match self.parse(bytes, number, schema) {
            Ok(true) => {
                let f = &mut self.fields;
                Some(Item::Record(Record {
                    time_ns: f.time.unwrap_or_default(),
                    model_id: f.model.take(),
                    version: f.version.take(),
                    values: std::mem::take(&mut f.values),
                    pos,
                }))
            }
            Ok(false) => None,
            Err(error) => Some(Item::Bad(Box::new(BadRecord {
                pos,
                error,
                raw: bytes.to_vec(),
            }))),
        }
    }

    /// Parses line `number` into `self.fields`; `Ok(false)` for a CSV
    /// header line.
    fn parse(&mut self, bytes: &[u8], number: u64, schema: &Schema) -> Result<bool, FieldError> {
        self.fields.reset(schema.metrics.len());
        match self.format {
            Format::Jsonl => jsonl::parse(bytes, schema, &mut self.fields)?,
            Format::Csv => match &mut self.csv {
                None => {
                    utf8(bytes)?;
                    let layout = csv::Layout::from_header(bytes, schema).map_err(|e| match self
                        .refused_header
                    {
                        Some(first) => FieldError::NoHeader(first),
                        None => {
                            self.refused_header = Some(number);
                            e
                        }
                    })?;
                    self.csv = Some(layout);
                    return Ok(false);
                }
                Some(layout) => layout.parse(bytes, schema, &mut self.fields)?,
            },
        }
        if self.fields.time.is_none() {
            return Err(FieldError::MissingTimestamp(schema.timestamp.clone()));
        }
        Ok(true)
    }
}

/// The line as text, or where its UTF-8 goes wrong.
fn utf8(bytes: &[u8]) -> Result<&str, FieldError> {
    // simdutf8 validates ASCII-heavy lines several times faster than std.
    simdutf8::basic::from_utf8(bytes).map_err(|_| {
        let at = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        FieldError::Utf8(at)
    })
}

/// An input opened by [`open`].
pub struct Opened {
    /// The input's bytes, inflated if it is gzip.
    pub reader: Box<dyn Read + Send>,
    pub format: Format,
    /// Whether it is gzip (found by its magic bytes).
    pub gzip: bool,
}

/// Opens a file (or stdin for `-`), decompressing gzip found by its magic
/// bytes, and returns the reader with the format to use.
pub fn open(path: &str, forced: Option<Format>) -> anyhow::Result<Opened> {
    let raw: Box<dyn Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(Path::new(path)).with_context(|| format!("cannot open {path}"))?)
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, raw);
    let head = buffered
        .fill_buf()
        .with_context(|| format!("cannot read {path}"))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut gz =
            BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(buffered));
        let head = gz
            .fill_buf()
            .with_context(|| format!("cannot decompress {path}"))?;
        let format = forced
            .or_else(|| Format::from_path(path))
            .unwrap_or_else(|| Format::sniff(head));
        return Ok(Opened {
            reader: head_then_rest(gz),
            format,
            gzip: true,
        });
    }
    let format = forced
        .or_else(|| Format::from_path(path))
        .unwrap_or_else(|| Format::sniff(head));
    Ok(Opened {
        reader: head_then_rest(buffered),
        format,
        gzip: false,
    })
}

/// The bytes `buffered` read to sniff the format, then the rest of its
/// input unbuffered: large reads go straight into the caller's buffer, not
/// through a second copy.
fn head_then_rest<R: Read + Send + 'static>(buffered: BufReader<R>) -> Box<dyn Read + Send> {
    let head = io::Cursor::new(buffered.buffer().to_vec());
    Box::new(head.chain(buffered.into_inner()))
}

/// Per-file counters for the summary.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FileStats {
    pub path: String,
    pub bytes: u64,
    pub records: u64,
    pub rejected: u64,
    /// Where reading stopped, for `watch` (its `bytes` are this run's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Bytes `watch` could never read: the file was deleted (or could not be
    /// found again) before its rest was read.
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Reads files one after the other to their ends: the source of `replay`.
pub struct FileSource {
    paths: Vec<String>,
    next: usize,
    forced: Option<Format>,
    schema: Arc<Schema>,
    current: Option<(LineReader<Box<dyn Read + Send>>, Decoder)>,
    pub stats: Vec<FileStats>,
}

impl FileSource {
    pub fn new(paths: Vec<String>, forced: Option<Format>, schema: Arc<Schema>) -> FileSource {
        FileSource {
            paths,
            next: 0,
            forced,
            schema,
            current: None,
            stats: Vec::new(),
        }
    }

    /// Bytes read so far over all files (decompressed).
    pub fn bytes_read(&self) -> u64 {
        self.stats.iter().map(|s| s.bytes).sum()
    }

    fn open_next(&mut self) -> anyhow::Result<bool> {
        let Some(path) = self.paths.get(self.next).cloned() else {
            return Ok(false);
        };
        self.next += 1;
        let Opened { reader, format, .. } = open(&path, self.forced)?;
        log::info!("reading {path} as {format:?}");
        let name = Name::new(if path == "-" {
            "<stdin>"
        } else {
            path.as_str()
        });
        let lines = LineReader::new(reader, self.schema.max_line_bytes, 0, 1);
        self.current = Some((lines, Decoder::new(name, format)));
        self.stats.push(FileStats {
            path,
            ..FileStats::default()
        });
        Ok(true)
    }
}

impl Iterator for FileSource {
    type Item = anyhow::Result<Item>;

    fn next(&mut self) -> Option<anyhow::Result<Item>> {
        loop {
            if self.current.is_none() {
                match self.open_next() {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => return Some(Err(e)),
                }
            }
            let (lines, decoder) = self.current.as_mut()?;
            let stats = self.stats.last_mut()?;
            match lines.next_line() {
                Ok(Some(line)) => {
                    let item = decoder.decode(line, &self.schema);
                    stats.bytes = lines.offset();
                    match item {
                        Some(Item::Record(r)) => {
                            stats.records += 1;
                            return Some(Ok(Item::Record(r)));
                        }
                        Some(Item::Bad(b)) => {
                            stats.rejected += 1;
                            return Some(Ok(Item::Bad(b)));
                        }
                        None => {}
                    }
                }
                Ok(None) => {
                    stats.bytes = lines.offset();
                    self.current = None;
                }
                Err(e) => {
                    let err =
                        anyhow::Error::new(e).context(format!("cannot read {}", decoder.file()));
                    self.current = None;
                    return Some(Err(err));
                }
            }
        }
    }
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("paths", &self.paths)
            .field("next", &self.next)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn schema() -> Schema {
        let text = "[input]\nvalid = { accuracy = [0, 1] }\nmax_line_bytes = 64\n\
                    [[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n";
        Config::parse(text, "t.toml").unwrap().schema()
    }

    /// Decodes `line` (after `header` for CSV) and returns the error text.
    fn reject(format: Format, header: Option<&[u8]>, line: &[u8]) -> String {
        let s = schema();
        let mut d = Decoder::new(Name::new("f"), format);
        let mut reader = LineReader::new(line, s.max_line_bytes, 0, 2);
        if let Some(h) = header {
            let header = Line::Text {
                bytes: h,
                number: 1,
                offset: 0,
            };
            assert!(d.decode(header, &s).is_none());
        }
        let line = reader.next_line().unwrap().unwrap();
        match d.decode(line, &s) {
            Some(Item::Bad(b)) => b.to_string(),
            other => panic!("not rejected: {other:?}"),
        }
    }

    const T: &str = "\"timestamp\":\"2024-03-01T00:00:00Z\"";

    #[test]
    fn not_json() {
        assert_eq!(
            reject(Format::Jsonl, None, b"{oops"),
            "f:2: not a JSON object: key must be a string at line 1 column 2"
        );
    }

    #[test]
    fn wrong_csv_column_count() {
        let got = reject(
            Format::Csv,
            Some(b"timestamp,accuracy"),
            b"2024-03-01T00:00:00Z,0.9,7",
        );
        assert_eq!(got, "f:2: expected 2 columns, found 3");
    }

    #[test]
    fn missing_timestamp() {
        assert_eq!(
            reject(Format::Jsonl, None, b"{\"accuracy\":0.9}"),
            "f:2: field \"timestamp\": missing (every record needs a timestamp)"
        );
    }

    #[test]
    fn unparsable_timestamp() {
        let got = reject(Format::Jsonl, None, b"{\"timestamp\":\"03/01/2024\"}");
        assert!(
            got.starts_with("f:2: field \"timestamp\": expected an RFC 3339 timestamp"),
            "{got}"
        );
        assert!(got.ends_with("found \"03/01/2024\""), "{got}");
    }

    #[test]
    fn monitored_metric_not_a_finite_number() {
        let line = format!("{{{T},\"accuracy\":\"n/a\"}}");
        assert_eq!(
            reject(Format::Jsonl, None, line.as_bytes()),
            "f:2: field \"accuracy\": expected a finite number, found \"n/a\""
        );
        let got = reject(
            Format::Csv,
            Some(b"timestamp,accuracy"),
            b"2024-03-01T00:00:00Z,inf",
        );
        assert_eq!(
            got,
            "f:2: field \"accuracy\": expected a finite number, found \"inf\""
        );
    }

    #[test]
    fn metric_outside_its_valid_range() {
        let line = format!("{{{T},\"accuracy\":1.5}}");
        assert_eq!(
            reject(Format::Jsonl, None, line.as_bytes()),
            "f:2: field \"accuracy\": expected a number in [0, 1], found 1.5"
        );
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(
            reject(Format::Jsonl, None, b"{\"a\":\"\xc3\x28\"}"),
            "f:2: invalid UTF-8 at byte 6 of the line"
        );
    }

    #[test]
    fn line_over_max_line_bytes() {
        let line = format!("{{{T},\"pad\":\"{}\"}}\n", "x".repeat(100));
        assert_eq!(
            reject(Format::Jsonl, None, line.as_bytes()),
            "f:2: line of 145 bytes is longer than max_line_bytes (64)"
        );
    }

    proptest::proptest! {
        /// No input makes the decoder panic: every line is a record, a bad
        /// record, or blank.
        #[test]
        fn arbitrary_lines_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), csv in proptest::prelude::any::<bool>()) {
            let s = schema();
            let format = if csv { Format::Csv } else { Format::Jsonl };
            let mut d = Decoder::new(Name::new("f"), format);
            let mut reader = LineReader::new(&bytes[..], s.max_line_bytes, 0, 1);
            while let Some(line) = reader.next_line().unwrap() {
                let _ = d.decode(line, &s);
            }
        }
    }
}
