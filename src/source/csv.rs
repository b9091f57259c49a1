//! CSV records: a header line, then one record per line.
//!
//! Each line is split by `csv-core` (quotes and escaped quotes as RFC 4180)
//! into reused buffers. A record spans exactly one line: a quoted field with
//! an embedded newline is not supported, because line-at-a-time reading is
//! what lets `watch` resume at a byte offset. The header maps columns to the
//! schema once per file. The separator is `[input] delimiter` (`,` unless
//! set; `"\t"` reads TSV).

use super::{FieldError, Fields};
use crate::record::Schema;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    Timestamp,
    Model,
    Version,
    Metric(usize),
    Other,
}

/// The column layout of one CSV file, from its header.
#[derive(Debug)]
pub struct Layout {
    columns: Vec<Column>,
    delimiter: u8,
    reader: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Where each field of the line being parsed is.
    spans: Vec<(usize, usize)>,
}

/// A copy for another thread: the same columns, a fresh splitter (a cloned
/// `csv_core::Reader` does not split as the original does).
impl Clone for Layout {
    fn clone(&self) -> Layout {
        Layout {
            columns: self.columns.clone(),
            delimiter: self.delimiter,
            reader: csv_core::ReaderBuilder::new()
                .delimiter(self.delimiter)
                .build(),
            out: vec![0; self.out.len()],
            ends: vec![0; self.ends.len()],
            spans: Vec::new(),
        }
    }
}

impl Layout {
    /// Reads the header line; fails if it lacks the timestamp column.
    pub fn from_header(line: &[u8], schema: &Schema) -> Result<Layout, FieldError> {
        let mut layout = Layout {
            columns: Vec::new(),
            delimiter: schema.delimiter,
            reader: csv_core::ReaderBuilder::new()
                .delimiter(schema.delimiter)
                .build(),
            out: vec![0; 1024],
            ends: vec![0; 32],
            spans: Vec::new(),
        };
        let n = layout.split(line);
        let mut columns = Vec::with_capacity(n);
        let mut has_time = false;
        for i in 0..n {
            let name = String::from_utf8_lossy(layout.field(i));
            let name = name.trim();
            columns.push(if name == schema.timestamp {
                has_time = true;
                Column::Timestamp
            } else if name == schema.model_id {
                Column::Model
            } else if name == schema.model_version {
                Column::Version
            } else if let Some(slot) = schema.slot(name) {
                Column::Metric(slot)
            } else {
                Column::Other
            });
        }
        if !has_time {
            let columns = (0..n)
                .map(|i| String::from_utf8_lossy(layout.field(i)).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            let hint = match separator_hint(line, schema.delimiter) {
                Some(hint) => format!("; {hint}"),
                None => "; set [input] timestamp to the column that holds the time".into(),
            };
            return Err(FieldError::Header(format!(
                "the header has no {:?} column (columns: {columns}){hint}",
                schema.timestamp,
            )));
        }
        layout.columns = columns;
        Ok(layout)
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    /// Splits one line into fields; returns how many.
    fn split(&mut self, mut line: &[u8]) -> usize {
        self.reader.reset();
        let (mut out_at, mut n) = (0, 0);
        loop {
            let (res, read, wrote, ended) =
                self.reader
                    .read_record(line, &mut self.out[out_at..], &mut self.ends[n..]);
            line = &line[read..];
            // csv-core reports field ends relative to the record's start,
            // across calls, so they index `self.out` as they are.
            out_at += wrote;
            n += ended;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    let len = self.out.len() * 2;
                    self.out.resize(len, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len() * 2;
                    self.ends.resize(len, 0);
                }
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => return n,
            }
        }
    }

    /// Parses one data line into `fields`, checking first that it is UTF-8.
    pub fn parse(
        &mut self,
        line: &[u8],
        schema: &Schema,
        fields: &mut Fields,
    ) -> Result<(), FieldError> {
        // A line without quotes (or a lone `\r`, which csv-core takes for
        // a record's end) splits on the delimiter alone, in place, in the
        // same pass that finds whether it is ASCII (then valid UTF-8).
        let split = split_plain(line, self.delimiter, &mut self.spans);
        if split != Some(true) {
            super::utf8(line)?;
        }
        self.parse_split(line, schema, fields, split.is_some())
    }

    /// [`Layout::parse`] on a line known to be UTF-8, split already into
    /// `spans` if `plain`, by csv-core otherwise.
    fn parse_split(
        &mut self,
        line: &[u8],
        schema: &Schema,
        fields: &mut Fields,
        plain: bool,
    ) -> Result<(), FieldError> {
        let src: &[u8] = if !plain {
            let n = self.split(line);
            self.spans.clear();
            for i in 0..n {
                let start = if i == 0 { 0 } else { self.ends[i - 1] };
                self.spans.push((start, self.ends[i]));
            }
            &self.out
        } else {
            line
        };
        let n = self.spans.len();
        if n != self.columns.len() {
            return Err(FieldError::Columns {
                expected: self.columns.len(),
                found: n,
            });
        }
        for (i, &(start, end)) in self.spans.iter().enumerate() {
            let column = self.columns[i];
            if column == Column::Other {
                continue;
            }
            let raw = &src[start..end];
            if fast_field(raw, column, schema, fields)? {
                continue;
            }
            let text = std::str::from_utf8(raw)
                .map_err(|e| FieldError::Utf8(e.valid_up_to()))?
                .trim();
            if text.is_empty() {
                continue;
            }
            match column {
                Column::Timestamp => {
                    let t = match text.parse::<i64>() {
                        Ok(i) => crate::timestamp::from_int(i, schema.unit),
                        Err(_) => match text.parse::<f64>() {
                            Ok(f) if looks_numeric(text) => {
                                crate::timestamp::from_number(f, schema.unit)
                            }
                            _ => fields.time_of(text.as_bytes(), schema.unit),
                        },
                    };
                    fields.time =
                        Some(t.map_err(|e| FieldError::bad(&schema.timestamp, e, quoted(text)))?);
                }
                Column::Model => fields.set_model(text.as_bytes()),
                Column::Version => fields.set_version(text.as_bytes()),
                Column::Metric(slot) => {
                    let x = match text {
                        "true" | "TRUE" | "True" => 1.0,
                        "false" | "FALSE" | "False" => 0.0,
                        _ => match text.parse::<f64>() {
                            Ok(x) if looks_numeric(text) => x,
                            _ => {
                                return Err(FieldError::bad(
                                    &schema.metrics[slot],
                                    "a finite number",
                                    quoted(text),
                                ));
                            }
                        },
                    };
                    fields.set_metric(schema, slot, x)?;
                }
                Column::Other => {}
            }
        }
        Ok(())
    }
}

use super::jsonl::fast::{HIGHS, ONES};

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of each byte of `x` that is zero, exactly (no borrows run
/// between bytes).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x) & HIGHS
}

/// Splits `line` on `delimiter` into `spans` in one pass, eight bytes at a
/// time, if it holds no `"` and no `\r` (then csv-core would split it just
/// so); returns whether it is all ASCII. `None` for a line csv-core must
/// split (or a delimiter that is itself one of those bytes).
fn split_plain(line: &[u8], delimiter: u8, spans: &mut Vec<(usize, usize)>) -> Option<bool> {
    if matches!(delimiter, b'"' | b'\r') || !delimiter.is_ascii() {
        return None;
    }
    spans.clear();
    let mut start = 0;
    let mut high = 0;
    let words = line.chunks_exact(8);
    let tail = words.remainder();
    for (w, word) in words.enumerate() {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        high |= x;
        if zero_bytes(x ^ (ONES * u64::from(b'"'))) | zero_bytes(x ^ (ONES * u64::from(b'\r'))) != 0
        {
            return None;
        }
        let mut hits = zero_bytes(x ^ (ONES * u64::from(delimiter)));
        while hits != 0 {
            let end = w * 8 + (hits.trailing_zeros() / 8) as usize;
            spans.push((start, end));
            start = end + 1;
            hits &= hits - 1;
        }
    }
    let at = line.len() - tail.len();
    for (k, &b) in tail.iter().enumerate() {
        high |= u64::from(b);
        match b {
            b'"' | b'\r' => return None,
            _ if b == delimiter => {
                spans.push((start, at + k));
                start = at + k + 1;
            }
            _ => {}
        }
    }
    if !line.is_empty() {
        spans.push((start, line.len()));
    }
    Some(high & HIGHS == 0)
}

/// Reads the common shapes of a field without validating or trimming it:
/// an ISO timestamp, a model id or version the decoder has met, a plain
/// number. Only fields that start and end with printable ASCII qualify
/// (`trim` would leave them alone); `false` leaves the field to the full
/// path, which gives every error.
#[inline]
fn fast_field(
    raw: &[u8],
    column: Column,
    schema: &Schema,
    fields: &mut Fields,
) -> Result<bool, FieldError> {
    let printable = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x7f);
    if !printable(raw.first()) || !printable(raw.last()) {
        return Ok(false);
    }
    match column {
        Column::Timestamp => match crate::timestamp::parse_fast(raw, &mut fields.last_date) {
            Some(t) => fields.time = Some(t),
            None => return Ok(false),
        },
        Column::Model => match fields.models.known(raw) {
            Some(name) => fields.model = Some(name),
            None => return Ok(false),
        },
        Column::Version => match fields.versions.known(raw) {
            Some(name) => fields.version = Some(name),
            None => return Ok(false),
        },
        Column::Metric(slot) => match super::jsonl::fast::number(raw) {
            Some(x) => fields.set_metric(schema, slot, x)?,
            None => return Ok(false),
        },
        Column::Other => {}
    }
    Ok(true)
}

/// What to set when a header that did not split holds another common
/// separator.
fn separator_hint(line: &[u8], delimiter: u8) -> Option<String> {
    let (_, name, spelt) = [
        (b'\t', "tab", "\\t"),
        (b';', "semicolon", ";"),
        (b'|', "pipe", "|"),
    ]
    .into_iter()
    .find(|(b, ..)| *b != delimiter && line.contains(b))?;
    Some(format!(
        "the header looks {name}-separated; set [input] delimiter = \"{spelt}\""
    ))
}

/// Rust's float parser also takes `inf`, `NaN` and `infinity`; a log's
/// number must start like one.
fn looks_numeric(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn schema() -> Schema {
        Config::parse(
            "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n",
            "t.toml",
        )
        .unwrap()
        .schema()
    }

    proptest::proptest! {
        /// Splitting a line without quotes on the delimiter reads what
        /// csv-core reads, errors included; a line with quotes or `\r`
        /// goes to csv-core either way.
        #[test]
        fn the_plain_split_reads_what_csv_core_reads(
            cells in proptest::collection::vec("[ a-z0-9.:TZ,;é\"\r-]{0,12}", 1..6),
        ) {
            let s = schema();
            let mut layout = Layout::from_header(b"timestamp,model_id,accuracy", &s).unwrap();
            let line = cells.join(",");
            let mut got = Vec::new();
            for one_pass in [true, false] {
                let mut f = Fields::default();
                f.reset(1);
                let r = if one_pass {
                    layout.parse(line.as_bytes(), &s, &mut f)
                } else {
                    layout.parse_split(line.as_bytes(), &s, &mut f, false)
                };
                got.push(format!("{r:?} {:?} {:?} {:?}", f.time, f.model, f.values));
            }
            proptest::prop_assert_eq!(&got[0], &got[1]);
        }

        /// The one-pass split finds every delimiter (at any place in its
        /// eight-byte words), refuses exactly the lines with `"` or `\r`,
        /// and knows an ASCII line.
        #[test]
        fn the_one_pass_split_is_a_plain_split(
            mut line in proptest::collection::vec(
                proptest::sample::select(b",;-\t a0\x80\xff\x2b".to_vec()),
                0..40,
            ),
            special in proptest::option::weighted(
                0.2,
                (0..40usize, proptest::sample::select(b"\"\r".to_vec())),
            ),
            delimiter in proptest::sample::select(b",;\t".to_vec()),
        ) {
            if let Some((at, b)) = special {
                line.insert(at.min(line.len()), b);
            }
            let mut spans = Vec::new();
            let got = split_plain(&line, delimiter, &mut spans);
            if line.iter().any(|b| matches!(b, b'"' | b'\r')) {
                proptest::prop_assert_eq!(got, None);
            } else {
                proptest::prop_assert_eq!(got, Some(line.is_ascii()));
                let mut want = Vec::new();
                let mut start = 0;
                for (i, &b) in line.iter().enumerate() {
                    if b == delimiter {
                        want.push((start, i));
                        start = i + 1;
                    }
                }
                if !line.is_empty() {
                    want.push((start, line.len()));
                }
                proptest::prop_assert_eq!(spans, want);
            }
        }

        /// The fast path's numbers are `str::parse`'s, bit for bit, and
        /// it takes every plain decimal a log writes.
        #[test]
        fn fast_numbers_are_what_str_parse_reads(
            text in "[-+]?[0-9]{0,22}(\\.[0-9]{0,22})?([eE][-+]?[0-9]{1,4})?",
            x in proptest::num::f64::ANY,
            digits in 0usize..20,
        ) {
            for t in [text, format!("{x}"), format!("{x:.digits$}"), format!("{x:e}")] {
                let fast = super::super::jsonl::fast::number(t.as_bytes());
                if let Some(y) = fast {
                    let want: f64 = t.parse().unwrap();
                    proptest::prop_assert_eq!(y.to_bits(), want.to_bits(), "{}", t);
                }
            }
            if x.is_finite() {
                let t = format!("{:.digits$}", x.abs() % 1e6);
                proptest::prop_assert!(super::super::jsonl::fast::number(t.as_bytes()).is_some(), "{}", t);
            }
        }
    }

    #[test]
    fn quoted_fields_and_column_counts() {
        let s = schema();
        let mut layout = Layout::from_header(b"timestamp,model_id,accuracy", &s).unwrap();
        let mut f = Fields::default();
        f.reset(1);
        layout
            .parse(b"2024-03-01T00:00:00Z,\"a,b\",0.5", &s, &mut f)
            .unwrap();
        assert_eq!(f.values[0], 0.5);
        assert_eq!(f.model.as_deref(), Some("a,b"));
        f.reset(1);
        let e = layout
            .parse(b"2024-03-01T00:00:00Z,m", &s, &mut f)
            .unwrap_err();
        assert_eq!(
            e,
            FieldError::Columns {
                expected: 3,
                found: 2
            }
        );
        f.reset(1);
        let e = layout
            .parse(b"2024-03-01T00:00:00Z,m,n/a", &s, &mut f)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field \"accuracy\": expected a finite number, found \"n/a\""
        );
    }

    #[test]
    fn a_tab_separated_header_names_the_delimiter_setting_and_tsv_reads_with_it() {
        let mut s = schema();
        let e = Layout::from_header(b"timestamp\tmodel_id\taccuracy", &s).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("the header looks tab-separated; set [input] delimiter = \"\\t\""),
            "{e}"
        );
        let e = Layout::from_header(b"time,accuracy", &s).unwrap_err();
        assert!(e.to_string().contains("set [input] timestamp"), "{e}");
        s.delimiter = b'\t';
        let mut layout = Layout::from_header(b"timestamp\tmodel_id\taccuracy", &s).unwrap();
        let mut f = Fields::default();
        f.reset(1);
        layout
            .parse(b"2024-03-01T00:00:00Z\ta,b\t0.5", &s, &mut f)
            .unwrap();
        assert_eq!(f.values[0], 0.5);
        assert_eq!(f.model.as_deref(), Some("a,b"));
    }
}
