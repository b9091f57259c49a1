//! Typed, validated access to one TOML table of the configuration: the one
//! reader of `mmon.toml`.
//!
//! The config loader, every detector's `params` and the `[retrain]` tables
//! are all read through [`Params`]: it fills in defaults, checks ranges, and
//! remembers which keys it was asked for, so that a key nobody reads is
//! reported as unknown with its full path (`monitor[1].params.delta`)
//! instead of being ignored. Its [`ParamError`] knows the key but not the
//! file; [`crate::config::ConfigError::Key`] adds the file.

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

impl ParamError {
    /// The configuration error of this key in `file`: the one place a key's
    /// problem gets its file.
    pub fn in_file(self, file: &str) -> crate::config::ConfigError {
        crate::config::ConfigError::Key {
            file: file.to_string(),
            error: self,
        }
    }
}

/// One TOML table (a monitor's `params`, `[input]`, `[retrain]`, ...), with
/// its path for error messages.
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
        let key = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        ParamError {
            key,
            message: message.into(),
        }
    }

    fn get(&mut self, key: &str) -> Option<Value> {
        self.used.insert(key.to_string());
        self.table.get(key).cloned()
    }

    /// The keys of the table, for tables whose keys are names (`input.valid`).
    pub fn keys(&self) -> Vec<String> {
        self.table.keys().cloned().collect()
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

    /// Any non-empty string.
    pub fn string(&mut self, key: &str, default: &str) -> Result<String, ParamError> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(other) => {
                Err(self.error(key, format!("expected a non-empty string, got {other}")))
            }
        }
    }

    /// Any string, empty included; errors show the value as
    /// [`show`] writes it (the `[retrain]` tables' style).
    pub fn text(&mut self, key: &str, default: &str) -> Result<String, ParamError> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.error(key, format!("expected a string, got {}", show(&v)))),
        }
    }

    /// A duration written as text (`"30m"`); `positive` refuses zero.
    pub fn duration(
        &mut self,
        key: &str,
        default: &str,
        positive: bool,
    ) -> Result<Duration, ParamError> {
        let s = self.text(key, default)?;
        let d = parse_duration(&s).map_err(|m| self.error(key, m))?;
        if positive && d.is_zero() {
            return Err(self.error(key, format!("must be longer than zero, got {s:?}")));
        }
        Ok(d)
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

    /// Fails on the first key not in `known`, listed in the order given,
    /// before anything is read: for tables whose keys are all known up
    /// front, so an unknown key is reported before any other problem.
    pub fn only(&self, known: &[&str]) -> Result<(), ParamError> {
        match self.table.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.error(
                k,
                format!("unknown key; expected one of {}", known.join(", ")),
            )),
            None => Ok(()),
        }
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
                return Err(self.error(key, format!("unknown key; {list}")));
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

/// A TOML value as a user would write it, for error messages.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::Table(t) => {
            format!(
                "{{ {} }}",
                t.iter()
                    .map(|(k, v)| format!("{k} = {}", show(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str, path: &str) -> Params {
        Params::new(text.parse().expect("test TOML"), path)
    }

    #[test]
    fn finish_names_the_full_path_and_the_keys_asked_for() {
        let mut p = params("window = 5\nwindw = 1", "monitor[1].params");
        assert_eq!(p.int("window", 1, |n| n > 0, "must be > 0"), Ok(5));
        assert_eq!(
            p.finish(&["threshold"]).unwrap_err().to_string(),
            "monitor[1].params.windw: unknown key; expected one of threshold, window"
        );
    }

    #[test]
    fn only_reports_an_unknown_key_before_anything_is_read_in_the_order_given() {
        let p = params("command = 1\ncomand = 1", "retrain");
        assert_eq!(
            p.only(&["workdir", "command"]).unwrap_err().to_string(),
            "retrain.comand: unknown key; expected one of workdir, command"
        );
        assert_eq!(params("command = 1", "retrain").only(&["command"]), Ok(()));
    }

    #[test]
    fn text_takes_an_empty_string_and_shows_a_wrong_value_as_written() {
        let mut p = params("a = \"\"\nb = 1.0\nc = [\"x\", 2]", "retrain");
        assert_eq!(p.text("a", "d"), Ok(String::new()));
        assert_eq!(p.text("absent", "d"), Ok("d".to_string()));
        assert_eq!(
            p.text("b", "").unwrap_err().to_string(),
            "retrain.b: expected a string, got 1"
        );
        assert_eq!(
            p.text("c", "").unwrap_err().to_string(),
            "retrain.c: expected a string, got [\"x\", 2]"
        );
    }

    #[test]
    fn a_positive_duration_refuses_zero() {
        let mut p = params("t = \"0s\"\nu = \"90s\"", "retrain");
        assert_eq!(
            p.duration("t", "1s", true).unwrap_err().to_string(),
            "retrain.t: must be longer than zero, got \"0s\""
        );
        assert_eq!(p.duration("t", "1s", false), Ok(Duration::ZERO));
        assert_eq!(p.duration("u", "1s", true), Ok(Duration::from_secs(90)));
        assert_eq!(p.duration("v", "15m", true), Ok(Duration::from_secs(900)));
    }

    #[test]
    fn a_key_error_gets_its_file_in_one_place() {
        let e = params("", "report").error("merge_gap", "must be >= 0, got -1");
        assert_eq!(
            e.in_file("mmon.toml").to_string(),
            "mmon.toml: report.merge_gap: must be >= 0, got -1"
        );
        assert_eq!(params("", "").error("bogus", "x").key, "bogus");
    }
}
