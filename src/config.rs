//! The validated configuration file: reads `mmon.toml` (or the embedded
//! default) and checks every table of it. The flags are not seen here: the
//! run settings resolve them on top of this [`Config`].
//!
//! Everything is checked here, before any input is opened, so a typo in a key
//! or a detector parameter stops the run with exit code 2 and the key's full
//! path instead of surprising the user halfway through a long replay. Every
//! table, the detectors' `params` and `[retrain]` included, is read with the
//! one reader in [`table`], and every problem is a [`ConfigError`].

pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use self::table::{ParamError, Params};
use crate::detect::{self, DetectorConfig, Direction};
use crate::record::Schema;
use crate::retrain::RetrainConfig;
use crate::source::Format;
use crate::timestamp::Unit;

/// The embedded default configuration, also what `mmon init` writes.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Where the configuration came from, for messages.
pub const EMBEDDED: &str = "<embedded default>";

/// A configuration that cannot be used, with the file and key to blame.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key of the file is missing, malformed or unknown.
    #[error("{file}: {error}")]
    Key { file: String, error: ParamError },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// The OS error is the source, so `{:#}` prints it once.
    #[error("cannot read config {file}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

/// Which windows make the run exit with code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum FailOn {
    None,
    Warning,
    Drift,
}

impl FailOn {
    pub fn parse(s: &str) -> Option<FailOn> {
        match s {
            "none" => Some(FailOn::None),
            "warning" => Some(FailOn::Warning),
            "drift" => Some(FailOn::Drift),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// `None` is `auto`: by extension, then by content.
    pub format: Option<Format>,
    pub timestamp: String,
    pub model_id: String,
    pub model_version: String,
    pub unit: Unit,
    pub max_line_bytes: usize,
    pub valid: BTreeMap<String, (f64, f64)>,
    /// The CSV field separator (`[input] delimiter`): `,` unless set.
    pub delimiter: u8,
}

/// One `[[monitor]]`: a metric watched by a detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub metric: String,
    pub direction: Direction,
    pub detector: DetectorConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub merge_gap: u64,
    pub fail_on: FailOn,
    pub reset_on_version_change: bool,
    /// Records of a model after which a version that had none is retired.
    pub version_idle: u64,
    /// Values each stream remembers, with where they were read, to locate
    /// and measure a window.
    pub history: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from, or [`EMBEDDED`].
    pub source: String,
    pub input: Input,
    pub monitors: Vec<Monitor>,
    pub report: Report,
    /// The validated `[retrain]` section (SPEC §7), if the file has one.
    pub retrain: Option<RetrainConfig>,
}

impl Config {
    /// The embedded default configuration.
    pub fn embedded() -> Config {
        match Config::parse(DEFAULT_TOML, EMBEDDED) {
            Ok(c) => c,
            // The default is tested; failing here is a bug in the build.
            Err(e) => panic!("embedded default configuration is invalid: {e}"),
        }
    }

    /// Finds and loads the configuration: `explicit` (the `--config` flag),
    /// else `MMON_CONFIG`, else `./mmon.toml` if present, else the default.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match Config::locate(explicit) {
            None => Ok(Config::embedded()),
            Some(path) => {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    file: file.clone(),
                    source,
                })?;
                Config::parse(&text, &file)
            }
        }
    }

    /// The file [`Config::load`] reads: `explicit`, else `MMON_CONFIG`,
    /// else `./mmon.toml` if present; `None` for the embedded default.
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        explicit
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os("MMON_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| Some(PathBuf::from("mmon.toml")).filter(|p| p.is_file()))
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::from_table(Config::table(text, file)?, file)
    }

    /// The TOML table of `text`, before validation.
    pub fn table(text: &str, file: &str) -> Result<toml::Table, ConfigError> {
        text.parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                file: file.to_string(),
                message: e.to_string().trim_end().to_string(),
            })
    }

    /// Validates a TOML table (as [`Config::table`] returns it, perhaps
    /// changed since); `file` names it in errors.
    pub fn from_table(table: toml::Table, file: &str) -> Result<Config, ConfigError> {
        Config::read(Params::new(table, ""), file).map_err(|e| e.in_file(file))
    }

    fn read(mut top: Params, file: &str) -> Result<Config, ParamError> {
        let input = parse_input(&mut top)?;
        let monitors = parse_monitors(&mut top)?;
        let report = parse_report(&mut top)?;
        let retrain = match top.raw("retrain") {
            None => None,
            Some(toml::Value::Table(t)) => {
                Some(RetrainConfig::from_params(&mut Params::new(t, "retrain"))?)
            }
            Some(other) => {
                return Err(top.error("retrain", format!("expected a table, got {other}")));
            }
        };
        top.finish(&[])?;
        Ok(Config {
            source: file.to_string(),
            input,
            monitors,
            report,
            retrain,
        })
    }

    /// What the parsers need to know, derived from `[input]` and the monitors.
    pub fn schema(&self) -> Schema {
        let mut metrics: Vec<String> = Vec::new();
        for m in &self.monitors {
            if !metrics.contains(&m.metric) {
                metrics.push(m.metric.clone());
            }
        }
        let ranges = metrics
            .iter()
            .map(|m| self.input.valid.get(m).copied())
            .collect();
        Schema {
            timestamp: self.input.timestamp.clone(),
            model_id: self.input.model_id.clone(),
            model_version: self.input.model_version.clone(),
            unit: self.input.unit,
            metrics,
            ranges,
            max_line_bytes: self.input.max_line_bytes,
            delimiter: self.input.delimiter,
            parents: Vec::new(),
        }
        .with_parents()
    }
}

/// Takes a sub-table (or nothing) from `parent`.
fn sub_table(parent: &mut Params, key: &str, path: &str) -> Result<Params, ParamError> {
    match parent.raw(key) {
        None => Ok(Params::new(toml::Table::new(), path)),
        Some(toml::Value::Table(t)) => Ok(Params::new(t, path)),
        Some(other) => Err(parent.error(key, format!("expected a table, got {other}"))),
    }
}

fn parse_input(top: &mut Params) -> Result<Input, ParamError> {
    let mut p = sub_table(top, "input", "input")?;
    let format = match p
        .choice("format", "auto", &["auto", "jsonl", "csv"])?
        .as_str()
    {
        "jsonl" => Some(Format::Jsonl),
        "csv" => Some(Format::Csv),
        _ => None,
    };
    let timestamp = p.string("timestamp", "timestamp")?;
    let model_id = p.string("model_id", "model_id")?;
    let model_version = p.string("model_version", "model_version")?;
    let unit = if p.choice("timestamp_unit", "s", &["s", "ms"])? == "ms" {
        Unit::Ms
    } else {
        Unit::S
    };
    let delimiter = match p.raw("delimiter") {
        None => b',',
        Some(toml::Value::String(d)) => match d.as_str() {
            // A TOML literal string ('\t') or a word keeps the backslash.
            "\\t" | "tab" => b'\t',
            d if d.len() == 1 && valid_delimiter(d.as_bytes()[0]) => d.as_bytes()[0],
            _ => {
                return Err(p.error(
                    "delimiter",
                    format!(
                        "expected one character such as \",\", \"\\t\", \";\" or \"|\", got {:?}",
                        d
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(p.error(
                "delimiter",
                format!("expected a one-character string such as \"\\t\", got {other}"),
            ));
        }
    };
    let max_line_bytes = p.int(
        "max_line_bytes",
        1 << 20,
        |n| (64..=1 << 30).contains(&n),
        "must be in 64..=1073741824",
    )? as usize;
    let mut valid = BTreeMap::new();
    let mut v = sub_table(&mut p, "valid", "input.valid")?;
    let names: Vec<String> = v.keys();
    for name in names {
        let range = match v.raw(&name) {
            Some(toml::Value::Array(a)) if a.len() == 2 => {
                let num =
                    |x: &toml::Value| x.as_float().or_else(|| x.as_integer().map(|i| i as f64));
                match (num(&a[0]), num(&a[1])) {
                    (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
                    _ => None,
                }
            }
            _ => None,
        };
        match range {
            Some(r) => {
                valid.insert(name, r);
            }
            None => return Err(v.error(&name, "expected [low, high] with low <= high")),
        }
    }
    v.finish(&[])?;
    p.finish(&[])?;
    Ok(Input {
        format,
        timestamp,
        model_id,
        model_version,
        unit,
        max_line_bytes,
        valid,
        delimiter,
    })
}

/// A byte that can separate CSV fields: ASCII punctuation, a space or a
/// tab; not a quote, a letter, a digit or a line end.
fn valid_delimiter(b: u8) -> bool {
    (b.is_ascii_punctuation() && b != b'"') || b == b' ' || b == b'\t'
}

fn parse_monitors(top: &mut Params) -> Result<Vec<Monitor>, ParamError> {
    let list = match top.raw("monitor") {
        None => return Err(top.error("monitor", "at least one [[monitor]] is needed")),
        Some(toml::Value::Array(a)) if !a.is_empty() => a,
        Some(other) => {
            return Err(top.error(
                "monitor",
                format!("expected [[monitor]] tables, got {other}"),
            ));
        }
    };
    let mut monitors = Vec::new();
    for (i, value) in list.into_iter().enumerate() {
        let path = format!("monitor[{i}]");
        let toml::Value::Table(t) = value else {
            return Err(ParamError {
                key: path,
                message: "expected a table".into(),
            });
        };
        let mut p = Params::new(t, path.clone());
        let metric = match p.raw("metric") {
            Some(toml::Value::String(s)) if !s.is_empty() => s,
            Some(other) => {
                return Err(p.error("metric", format!("expected a field name, got {other}")));
            }
            None => {
                return Err(p.error("metric", "missing: the field to monitor, e.g. \"accuracy\""));
            }
        };
        let name = match p.raw("detector") {
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(p.error("detector", format!("expected a detector name, got {other}")));
            }
            None => {
                return Err(p.error(
                    "detector",
                    format!("missing: one of {}", detect::NAMES.join(", ")),
                ));
            }
        };
        let direction = p.choice("direction", "decrease", &["decrease", "increase", "both"])?;
        let direction = Direction::parse(&direction).unwrap_or(Direction::Decrease);
        let mut params = sub_table(&mut p, "params", &format!("{path}.params"))?;
        let detector = match DetectorConfig::from_params(&name, direction, &mut params)? {
            Some(d) => d,
            None => {
                return Err(p.error(
                    "detector",
                    format!(
                        "unknown detector {name:?}; expected one of {}",
                        detect::NAMES.join(", ")
                    ),
                ));
            }
        };
        params.finish(&[])?;
        p.finish(&[])?;
        monitors.push(Monitor {
            metric,
            direction,
            detector,
        });
    }
    Ok(monitors)
}

/// `[report] history` by default, and its bounds.
pub const DEFAULT_HISTORY: usize = 4096;
const MIN_HISTORY: i64 = 16;
const MAX_HISTORY: i64 = 65_536;

fn parse_report(top: &mut Params) -> Result<Report, ParamError> {
    let mut p = sub_table(top, "report", "report")?;
    let merge_gap = p.int("merge_gap", 100, |g| g >= 0, "must be >= 0")? as u64;
    let fail_on = p.choice("fail_on", "none", &["none", "warning", "drift"])?;
    let fail_on = FailOn::parse(&fail_on).unwrap_or(FailOn::None);
    let reset_on_version_change = p.bool("reset_on_version_change", true)?;
    let version_idle = p.int("version_idle", 10_000, |n| n >= 1, "must be >= 1")? as u64;
    let history = p.int(
        "history",
        DEFAULT_HISTORY as i64,
        |n| (MIN_HISTORY..=MAX_HISTORY).contains(&n),
        &format!("must be from {MIN_HISTORY} to {MAX_HISTORY}"),
    )? as usize;
    p.finish(&[])?;
    Ok(Report {
        merge_gap,
        fail_on,
        reset_on_version_change,
        version_idle,
        history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "mmon.toml").unwrap_err().to_string()
    }

    const MINIMAL: &str = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n";

    #[test]
    fn the_embedded_default_loads_and_monitors_accuracy_with_decay() {
        let c = Config::embedded();
        assert_eq!(c.monitors[0].metric, "accuracy");
        assert_eq!(c.monitors[0].detector.name(), "decay");
        assert_eq!(c.report.merge_gap, 100);
        assert!(c.retrain.is_none());
    }

    #[test]
    fn defaults_fill_what_is_not_written() {
        let c = Config::parse(MINIMAL, "mmon.toml").unwrap();
        assert_eq!(c.input.timestamp, "timestamp");
        assert_eq!(c.input.max_line_bytes, 1 << 20);
        assert_eq!(c.monitors[0].direction, Direction::Decrease);
        assert_eq!(
            c.monitors[0].detector.params_json(),
            serde_json::json!({"window": 50, "threshold": 0.05})
        );
        assert_eq!(c.report.fail_on, FailOn::None);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        assert_eq!(
            err(&format!("{MINIMAL}params = {{ window = 0 }}\n")),
            "mmon.toml: monitor[0].params.window: must be in 1..=10000000, got 0"
        );
        assert_eq!(
            err(&format!("{MINIMAL}params = {{ windw = 10 }}\n")),
            "mmon.toml: monitor[0].params.windw: unknown key; expected one of threshold, window"
        );
        assert!(
            err(&format!("{MINIMAL}colour = 1\n"))
                .starts_with("mmon.toml: monitor[0].colour: unknown")
        );
        assert!(err(&format!("bogus = 1\n{MINIMAL}")).starts_with("mmon.toml: bogus: unknown"));
        assert!(
            err(&format!("[report]\nmerge_gap = -1\n{MINIMAL}"))
                .contains("report.merge_gap: must be >= 0, got -1")
        );
        assert!(
            err("[[monitor]]\nmetric = \"a\"\ndetector = \"nope\"\n")
                .contains("monitor[0].detector: unknown detector \"nope\"")
        );
        assert!(err("[input]\n").contains("monitor: at least one"));
        assert!(
            err("[input]\nvalid = { accuracy = [1, 0] }\n")
                .contains("input.valid.accuracy: expected [low, high]")
        );
        assert!(err("[[monitor]\n").starts_with("mmon.toml: TOML parse error"));
        assert!(
            err(&format!("[input]\ntimestamp_unit = \"us\"\n{MINIMAL}"))
                .contains("input.timestamp_unit: expected one of s | ms")
        );
        assert!(
            err(&format!("[input]\ndelimiter = \"ab\"\n{MINIMAL}"))
                .contains("input.delimiter: expected one character")
        );
    }

    #[test]
    fn a_retrain_error_names_the_file_once_as_read_alone_or_in_the_file() {
        let retrain = "command = [\"t\"]\ncomand = 1\n";
        let alone = RetrainConfig::from_toml(&retrain.parse().unwrap(), "mmon.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(err(&format!("{MINIMAL}[retrain]\n{retrain}")), alone);
        assert!(alone.starts_with(
            "mmon.toml: retrain.comand: unknown key; expected one of command, workdir,"
        ));
        assert_eq!(
            err(&format!("retrain = 1\n{MINIMAL}")),
            "mmon.toml: retrain: expected a table, got 1"
        );
        let c = Config::parse(
            &format!("{MINIMAL}[retrain]\ncommand = [\"t\"]\n[retrain.search]\nlr = {{ uniform = [0, 1] }}\n"),
            "mmon.toml",
        )
        .unwrap();
        assert_eq!(c.retrain.unwrap().search.params.len(), 1);
    }

    #[test]
    fn a_delimiter_is_one_character_and_tab_can_be_spelt_three_ways() {
        for (text, want) in [
            ("", b','),
            ("delimiter = \"\\t\"\n", b'\t'),
            ("delimiter = '\\t'\n", b'\t'),
            ("delimiter = \"tab\"\n", b'\t'),
            ("delimiter = \";\"\n", b';'),
        ] {
            let c = Config::parse(&format!("[input]\n{text}{MINIMAL}"), "m.toml").unwrap();
            assert_eq!(c.input.delimiter, want, "{text}");
        }
        for bad in ["\"\\\"\"", "\"a\"", "\"\"", "1"] {
            let text = format!("[input]\ndelimiter = {bad}\n{MINIMAL}");
            assert!(Config::parse(&text, "m.toml").is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_lists_each_metric_once_with_its_range() {
        let text = "[input]\nvalid = { accuracy = [0, 1] }\n[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n\
                    [[monitor]]\nmetric = \"latency_ms\"\ndetector = \"threshold\"\nparams = { above = 100 }\n\
                    [[monitor]]\nmetric = \"accuracy\"\ndetector = \"threshold\"\nparams = { below = 0.5 }\n";
        let s = Config::parse(text, "m.toml").unwrap().schema();
        assert_eq!(s.metrics, vec!["accuracy", "latency_ms"]);
        assert_eq!(s.ranges, vec![Some((0.0, 1.0)), None]);
    }
}
