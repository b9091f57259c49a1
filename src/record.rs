//! One metric record and where it came from.
//!
//! A record holds only what the pipeline needs: event time, model, version,
//! and the values of the monitored metrics in the order of
//! [`Schema::metrics`] (`NaN` where the record lacks the metric). Fields that
//! no monitor reads are skipped while parsing, never stored. Every record
//! carries its [`Position`], so windows can point at file and line and a
//! checkpoint can say how far a file was read.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::timestamp::Unit;

/// Where a record (or a bad line) is: the file as the user named it, the
/// 1-based line, and the byte offset of the line's start (in the decompressed
/// stream for `.gz` files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub file: Arc<str>,
    pub line: u64,
    pub offset: u64,
}

/// The values of the monitored metrics, `NaN` for absent ones.
pub type Values = SmallVec<[f64; 4]>;

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Event time, UTC nanoseconds since the epoch.
    pub time_ns: i64,
    pub model: Arc<str>,
    pub version: Option<Arc<str>>,
    pub values: Values,
    pub pos: Position,
}

/// The model id of records that carry none (SPEC §2).
pub const DEFAULT_MODEL: &str = "default";

/// The one [`DEFAULT_MODEL`] name that sources give every record without a
/// model id, so the pipeline can tell, by pointer, a record that had no
/// model-id field from one whose field said `"default"`.
pub fn default_model() -> Arc<str> {
    default_name().clone()
}

/// Whether `model` is the name [`default_model`] gives records without one.
pub fn is_default_model(model: &Arc<str>) -> bool {
    Arc::ptr_eq(model, default_name())
}

fn default_name() -> &'static Arc<str> {
    static NAME: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| Arc::from(DEFAULT_MODEL))
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

/// Hands out one shared `Arc<str>` per distinct model id or version, so a
/// record costs a reference count, not an allocation.
///
/// Unbounded and hashed: a log of a thousand models allocates each name
/// once. The names most recently used are checked first by a short linear
/// scan (logs interleave a handful of models). Interners made by
/// [`Interner::sharing`] from one [`SharedNames`] give the same `Arc` for
/// the same name on every thread (the pipeline compares names by pointer
/// first); each keeps its own map, so the lock is taken once per name.
#[derive(Debug, Default)]
pub struct Interner {
    recent: Vec<Arc<str>>,
    names: std::collections::HashMap<Box<[u8]>, Arc<str>>,
    shared: Option<SharedNames>,
}

/// The names of interners on several threads.
pub type SharedNames = Arc<std::sync::Mutex<std::collections::HashMap<Box<str>, Arc<str>>>>;

/// How many names the linear scan looks at.
const RECENT: usize = 8;

impl Interner {
    /// An interner whose new names come from (and go to) `shared`.
    pub fn sharing(shared: SharedNames) -> Interner {
        Interner {
            shared: Some(shared),
            ..Interner::default()
        }
    }

    /// The name spelt by `s`, which the caller has found to be UTF-8 (other
    /// bytes are replaced, and such a name is not kept).
    #[inline]
    pub fn get(&mut self, s: &[u8]) -> Arc<str> {
        if let Some(found) = self.recent.iter().find(|n| short_eq(n.as_bytes(), s)) {
            return found.clone();
        }
        self.lookup(s)
    }

    fn lookup(&mut self, s: &[u8]) -> Arc<str> {
        let name = match self.names.get(s) {
            Some(name) => name.clone(),
            None => {
                let Ok(text) = std::str::from_utf8(s) else {
                    return Arc::from(String::from_utf8_lossy(s));
                };
                let name = match &self.shared {
                    Some(shared) => {
                        let mut names = shared.lock().unwrap_or_else(|e| e.into_inner());
                        names
                            .entry(Box::from(text))
                            .or_insert_with(|| Arc::from(text))
                            .clone()
                    }
                    None => Arc::from(text),
                };
                self.names.insert(Box::from(s), name.clone());
                name
            }
        };
        // Most recent first; the oldest of the scan falls back to the map.
        if self.recent.len() == RECENT {
            self.recent.pop();
        }
        self.recent.insert(0, name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_names_are_each_allocated_once_and_shared_across_interners() {
        let shared = SharedNames::default();
        let mut a = Interner::sharing(shared.clone());
        let mut b = Interner::sharing(shared);
        let names: Vec<String> = (0..1000).map(|i| format!("model-{i}")).collect();
        let first: Vec<Arc<str>> = names.iter().map(|n| a.get(n.as_bytes())).collect();
        for round in 0..3 {
            for (n, f) in names.iter().zip(&first) {
                assert!(Arc::ptr_eq(&a.get(n.as_bytes()), f), "{round} {n}");
                assert!(Arc::ptr_eq(&b.get(n.as_bytes()), f), "{round} {n}");
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
