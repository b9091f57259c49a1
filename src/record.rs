//! One metric record and where it came from.
//!
//! A record holds only what the pipeline needs: event time, model, version,
//! and the values of the monitored metrics in the order of
//! [`Schema::metrics`] (`NaN` where the record lacks the metric). Fields that
//! no monitor reads are skipped while parsing, never stored. Every record
//! carries its [`Position`], so windows can point at file and line and a
//! checkpoint can say how far a file was read.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::timestamp::Unit;

/// Where a record (or a bad line) is: the file as the user named it, the
/// 1-based line, and the byte offset of the line's start (in the decompressed
/// stream for `.gz` files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub file: Name,
    pub line: u64,
    pub offset: u64,
}

/// The values of the monitored metrics, `NaN` for absent ones.
pub type Values = SmallVec<[f64; 4]>;

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Event time, UTC nanoseconds since the epoch.
    pub time_ns: i64,
    /// The record's model id, `None` if it had none: it then belongs to
    /// [`DEFAULT_MODEL`] (see [`Record::model`]), and the summary can still
    /// say that no record carried the field.
    pub model_id: Option<Name>,
    pub version: Option<Name>,
    pub values: Values,
    pub pos: Position,
}

impl Record {
    /// The model the record belongs to.
    #[inline]
    pub fn model(&self) -> Name {
        self.model_id.unwrap_or_else(default_model)
    }
}

/// The model id of records that carry none (SPEC §2).
pub const DEFAULT_MODEL: &str = "default";

/// [`DEFAULT_MODEL`] as a name.
pub fn default_model() -> Name {
    static NAME: std::sync::OnceLock<Name> = std::sync::OnceLock::new();
    *NAME.get_or_init(|| Name::new(DEFAULT_MODEL))
}

/// What the parsers look for in a record: the field names of `[input]` and
/// the monitored metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub timestamp: String,
    pub model_id: String,
    pub model_version: String,
    pub unit: Unit,
    /// Distinct monitored metric names; a record's `values` follow this order.
    pub metrics: Vec<String>,
    /// Accepted range of each metric, where the config sets one.
    pub ranges: Vec<Option<(f64, f64)>>,
    pub max_line_bytes: usize,
    /// The CSV field separator.
    pub delimiter: u8,
    /// Every proper prefix of a dotted field name (`labels` for
    /// `model_id = "labels.region"`): JSON objects to look inside.
    pub parents: Vec<String>,
}

impl Schema {
    /// Fills [`Schema::parents`] from the field names.
    pub fn with_parents(mut self) -> Schema {
        let mut parents: Vec<String> = Vec::new();
        let names = [&self.timestamp, &self.model_id, &self.model_version]
            .into_iter()
            .chain(&self.metrics);
        for name in names {
            for (at, _) in name.match_indices('.') {
                let parent = &name[..at];
                if !parent.is_empty() && !parents.iter().any(|p| p == parent) {
                    parents.push(parent.to_string());
                }
            }
        }
        self.parents = parents;
        self
    }

    /// The slot of a metric name in `values`, if it is monitored.
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m == name)
    }
}

/// Byte equality without a `memcmp` call for the short names that field
/// keys, model ids and versions usually are: every key of every record is
/// compared with the schema, so this is on the hot path.
#[inline]
pub fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or([0; 4]));
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

/// A model id, version or file name, interned for the life of the process.
///
/// A record carries its names as `Name`s: copying one touches no reference
/// count, so records cross threads without the cache-line traffic an `Arc`
/// would cost, and two names are equal exactly when they are the same
/// pointer. Names are never freed; the pipeline keeps every name it meets
/// (for the summary) anyway. Hashing is by pointer: a `Name` is not
/// `Borrow<str>`.
///
/// It interns a `String`, not a `str`, so that it is one thin pointer (8
/// bytes, not 16): a record holds three.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(internment::Intern<String>);

impl Name {
    pub fn new(text: &str) -> Name {
        Name(internment::Intern::from_ref(text))
    }

    pub fn as_str(&self) -> &'static str {
        let text: &'static String = self.0.as_ref();
        text.as_str()
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Name::new(&text))
    }
}

/// Finds the [`Name`] spelt by a field's bytes without taking the global
/// interner's lock: one per parser, per kind of name.
///
/// Unbounded and hashed: a log of a thousand models looks each name up in
/// the global table once per parser. The names most recently used are
/// checked first by a short linear scan (logs interleave a handful of
/// models).
#[derive(Debug, Default)]
pub struct Interner {
    recent: Recent,
    names: foldhash::HashMap<Box<[u8]>, Name>,
}

/// How many names the linear scan looks at.
const RECENT: usize = 8;

/// The names of the linear scan, newest first, with the first eight bytes
/// and the length of each beside it. The scan compares all of them at once,
/// without a branch per name (which of a few interleaved models a line
/// names is a coin toss to the branch predictor) and without following a
/// pointer: a name of up to eight bytes is settled by its head and length.
#[derive(Debug)]
struct Recent {
    heads: [u64; RECENT],
    /// `usize::MAX` for an empty place, which no name matches.
    lens: [usize; RECENT],
    names: [Option<Name>; RECENT],
}

/// The first eight bytes of `s`, zero-padded.
#[inline]
fn head_of(s: &[u8]) -> u64 {
    // Built in a register: bytes copied to the stack and loaded back as a
    // word stall store forwarding.
    match s.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word),
        None => s
            .iter()
            .enumerate()
            .fold(0, |h, (i, &b)| h | u64::from(b) << (8 * i)),
    }
}

impl Recent {
    #[inline]
    fn find(&self, s: &[u8]) -> Option<Name> {
        let (head, len) = (head_of(s), s.len());
        let mut hits = 0u32;
        for i in 0..RECENT {
            hits |= u32::from((self.lens[i] == len) & (self.heads[i] == head)) << i;
        }
        while hits != 0 {
            let name = self.names[hits.trailing_zeros() as usize]?;
            if len <= 8 || short_eq(name.as_bytes(), s) {
                return Some(name);
            }
            hits &= hits - 1;
        }
        None
    }

    /// Puts `name` first; the oldest falls out.
    fn push(&mut self, name: Name) {
        self.heads.copy_within(..RECENT - 1, 1);
        self.lens.copy_within(..RECENT - 1, 1);
        self.names.copy_within(..RECENT - 1, 1);
        self.heads[0] = head_of(name.as_bytes());
        self.lens[0] = name.len();
        self.names[0] = Some(name);
    }
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            heads: [0; RECENT],
            lens: [usize::MAX; RECENT],
            names: [None; RECENT],
        }
    }
}

impl Interner {
    /// The name spelt by `s`, which the caller has found to be UTF-8 (other
    /// bytes are replaced, and such a name is not kept).
    #[inline]
    pub fn get(&mut self, s: &[u8]) -> Name {
        if let Some(found) = self.known(s) {
            return found;
        }
        let Ok(text) = std::str::from_utf8(s) else {
            return Name::new(&String::from_utf8_lossy(s));
        };
        let name = Name::new(text);
        self.names.insert(Box::from(s), name);
        self.recent.push(name);
        name
    }

    /// The name spelt by `s` if this interner has met it before, without
    /// adding it: `s` is then known to be UTF-8.
    #[inline]
    pub fn known(&mut self, s: &[u8]) -> Option<Name> {
        if let Some(found) = self.recent.find(s) {
            return Some(found);
        }
        let name = *self.names.get(s)?;
        self.recent.push(name);
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_names_are_each_interned_once_and_the_same_on_every_interner() {
        let mut a = Interner::default();
        let mut b = Interner::default();
        let names: Vec<String> = (0..1000).map(|i| format!("model-{i}")).collect();
        let first: Vec<Name> = names.iter().map(|n| a.get(n.as_bytes())).collect();
        for round in 0..3 {
            for (n, f) in names.iter().zip(&first) {
                assert_eq!(a.get(n.as_bytes()), *f, "{round} {n}");
                assert_eq!(b.get(n.as_bytes()), *f, "{round} {n}");
                assert_eq!(f.as_str(), n);
            }
        }
        assert_eq!(&*a.get(b"\xff"), "\u{fffd}");
    }

    #[test]
    fn short_eq_is_byte_equality_at_every_length() {
        let text = b"abcdefghijklmnopqrstuvwxyz";
        for n in 0..=text.len() {
            let a = &text[..n];
            assert!(short_eq(a, a));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 1;
                assert!(!short_eq(a, &b), "{n} {i}");
            }
            assert!(!short_eq(a, &text[..n.saturating_sub(1)]) || n == 0);
        }
    }
}
