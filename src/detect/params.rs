//! Typed, validated access to one monitor's `params` table.
//!
//! Every detector reads its parameters through [`Params`], which fills in
//! defaults, checks ranges, and remembers which keys it was asked for, so that
//! a key no detector reads is reported as unknown with its full path
//! (`monitor[1].params.delta`) instead of being ignored.

use std::collections::BTreeSet;
use std::time::Duration;

use toml::Value;

/// A parameter that is missing, of the wrong type, out of range or unknown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ParamError {
    /// Full path of the key, e.g. `monitor[1].params.delta`.
    pub key: String,
    pub message: String,
}

/// The `params` table of one monitor, with the path used in error messages.
pub struct Params {
    table: toml::Table,
    path: String,
    used: BTreeSet<String>,
}

impl Params {
    pub fn new(table: toml::Table, path: impl Into<String>) -> Params {
        Params {
            table,
            path: path.into(),
            used: BTreeSet::new(),
        }
    }

    /// An empty table (all defaults), for tests and programmatic use.
    pub fn empty() -> Params {
        Params::new(toml::Table::new(), "params")
    }

    /// Builds the error for `key` with the full path.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ParamError {
        ParamError {
            key: format!("{}.{key}", self.path),
            message: message.into(),
        }
    }

    fn get(&mut self, key: &str) -> Option<Value> {
        self.used.insert(key.to_string());
        self.table.get(key).cloned()
    }

    /// Whether the table sets `key` at all.
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// A float in the range `check` accepts; integers are accepted as floats.
    pub fn float(
        &mut self,
        key: &str,
        default: f64,
        check: impl Fn(f64) -> bool,
        expected: &str,
    ) -> Result<f64, ParamError> {
        match self.opt_float(key)? {
            None => Ok(default),
            Some(v) if check(v) => Ok(v),
            Some(v) => Err(self.error(key, format!("{expected}, got {v}"))),
        }
    }

    /// An optional float (no default): `None` when absent.
    pub fn opt_float(&mut self, key: &str) -> Result<Option<f64>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Float(f)) if f.is_finite() => Ok(Some(f)),
            Some(Value::Integer(i)) => Ok(Some(i as f64)),
            Some(other) => Err(self.error(key, format!("expected a finite number, got {other}"))),
        }
    }

    /// An integer in the range `check` accepts.
    pub fn int(
        &mut self,
        key: &str,
        default: i64,
        check: impl Fn(i64) -> bool,
        expected: &str,
    ) -> Result<i64, ParamError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) if check(i) => Ok(i),
            Some(Value::Integer(i)) => Err(self.error(key, format!("{expected}, got {i}"))),
            Some(other) => Err(self.error(key, format!("expected an integer, got {other}"))),
        }
    }

    /// A boolean.
    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool, ParamError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(b),
            Some(other) => Err(self.error(key, format!("expected true or false, got {other}"))),
        }
    }

    /// A string from a closed set of choices.
    pub fn choice(
        &mut self,
        key: &str,
        default: &str,
        choices: &[&str],
    ) -> Result<String, ParamError> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) if choices.contains(&s.as_str()) => Ok(s),
            Some(other) => Err(self.error(
                key,
                format!("expected one of {}, got {other}", choices.join(" | ")),
            )),
        }
    }

    /// The raw value of `key`, for parameters with a type of their own
    /// (a count or a duration); the caller validates it.
    pub fn raw(&mut self, key: &str) -> Option<Value> {
        self.get(key)
    }

    /// Fails on the first key that no getter asked for.
    pub fn finish(self, known: &[&str]) -> Result<(), ParamError> {
        for key in self.table.keys() {
            if !self.used.contains(key) {
                let mut names: Vec<&str> = self.used.iter().map(String::as_str).collect();
                names.extend(known);
                names.sort_unstable();
                names.dedup();
                let list = if names.is_empty() {
                    "this detector takes no parameters".to_string()
                } else {
                    format!("expected one of {}", names.join(", "))
                };
                return Err(self.error(key, format!("unknown parameter; {list}")));
            }
        }
        Ok(())
    }
}

/// Parses a human duration such as `"90s"`, `"15m"` or `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("expected a duration such as \"90s\" or \"15m\", got {s:?} ({e})"))
}
