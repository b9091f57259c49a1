//! The validated `[retrain]` and `[retrain.search]` tables of SPEC §7.
//!
//! Everything is checked at load, before any record is read: types, ranges,
//! unknown keys, and every `{placeholder}` of the command, so that a typo
//! fails in milliseconds instead of after an hour of replay. Errors name the
//! file and the full key (`mmon.toml: retrain.search.learning_rate: ...`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use super::search::read_search;
pub use super::search::{ParamSpec, SearchSpace, Strategy};
use super::template::Template;
use crate::detect::params::parse_duration;
use crate::registry::version::Bump;

/// Placeholders every command may use besides the search parameters.
pub const BUILTIN_PLACEHOLDERS: [&str; 6] = [
    "output_dir",
    "model_id",
    "parent_version",
    "base_version",
    "new_version",
    "run_id",
];

/// A `[retrain]` setting that is missing, malformed or unknown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    /// Full key path, e.g. `retrain.search.learning_rate`.
    pub key: String,
    pub message: String,
}

/// Whether a bigger or a smaller selected metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Max,
    Min,
}

impl Goal {
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Max => "max",
            Goal::Min => "min",
        }
    }

    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Max => a > b,
            Goal::Min => a < b,
        }
    }
}

/// `select = { metric, goal }`: how the best trial is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    pub metric: String,
    pub goal: Goal,
}

/// The whole validated `[retrain]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainConfig {
    /// The command as written, one template per argv element.
    pub command: Vec<Template>,
    pub command_text: Vec<String>,
    pub workdir: PathBuf,
    pub timeout: Duration,
    pub cooldown: Duration,
    pub bump: Bump,
    pub trials: u32,
    pub select: Option<Select>,
    pub registry: PathBuf,
    pub shutdown_grace: Duration,
    /// How many failed trials `.failed/` keeps per model, newest first.
    pub keep_failed: usize,
    pub search: SearchSpace,
}

pub(super) struct Reader<'a> {
    pub(super) file: &'a str,
    pub(super) path: String,
    pub(super) table: &'a toml::Table,
}

impl<'a> Reader<'a> {
    pub(super) fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let key = if key.is_empty() {
            self.path.clone()
        } else {
            format!("{}.{key}", self.path)
        };
        ConfigError {
            file: self.file.to_string(),
            key,
            message: message.into(),
        }
    }

    pub(super) fn string(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        match self.table.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(key, format!("expected a string, got {}", show(v)))),
        }
    }

    pub(super) fn duration(
        &self,
        key: &str,
        default: &str,
        positive: bool,
    ) -> Result<Duration, ConfigError> {
        let s = self.string(key, default)?;
        let d = parse_duration(&s).map_err(|m| self.err(key, m))?;
        if positive && d.is_zero() {
            return Err(self.err(key, format!("must be longer than zero, got {s:?}")));
        }
        Ok(d)
    }

    pub(super) fn unknown_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.table.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.err(
                k,
                format!("unknown key; expected one of {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }
}

impl RetrainConfig {
    /// Validates the `[retrain]` table (the value of the top-level `retrain`
    /// key, which holds `search`); `file` names the config file in errors.
    pub fn from_toml(table: &toml::Table, file: &str) -> Result<RetrainConfig, ConfigError> {
        let r = Reader {
            file,
            path: "retrain".into(),
            table,
        };
        r.unknown_keys(&[
            "command",
            "workdir",
            "timeout",
            "cooldown",
            "bump",
            "trials",
            "select",
            "registry",
            "shutdown_grace",
            "keep_failed",
            "search",
        ])?;
        let search = match table.get("search") {
            None => SearchSpace {
                strategy: Strategy::Random,
                seed: 0,
                params: BTreeMap::new(),
            },
            Some(Value::Table(t)) => read_search(file, t)?,
            Some(v) => return Err(r.err("search", format!("expected a table, got {}", show(v)))),
        };
        let command_text = match table.get("command") {
            None => {
                return Err(r.err(
                    "command",
                    "missing; expected the training command as an array of strings",
                ));
            }
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(r.err(
                        &format!("command[{i}]"),
                        format!("expected a string, got {}", show(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(v) => {
                return Err(r.err(
                    "command",
                    format!("expected a non-empty array of strings, got {}", show(v)),
                ));
            }
        };
        if command_text[0].trim().is_empty() {
            return Err(r.err("command[0]", "the program name is empty"));
        }
        let mut known: Vec<&str> = BUILTIN_PLACEHOLDERS.to_vec();
        known.extend(search.params.keys().map(String::as_str));
        known.sort_unstable();
        let mut command = Vec::new();
        for (i, arg) in command_text.iter().enumerate() {
            let key = format!("command[{i}]");
            let t = Template::parse(arg).map_err(|e| r.err(&key, format!("{e} in {arg:?}")))?;
            if let Some(bad) = t.names().find(|n| !known.contains(n)) {
                return Err(r.err(
                    &key,
                    format!("unknown placeholder {{{bad}}}; known: {}", known.join(", ")),
                ));
            }
            command.push(t);
        }
        let bump_text = r.string("bump", "patch")?;
        let bump = Bump::parse(&bump_text).ok_or_else(|| {
            r.err(
                "bump",
                format!("expected one of patch | minor | major, got {bump_text:?}"),
            )
        })?;
        let trials = match table.get("trials") {
            None => 1,
            Some(Value::Integer(n)) if (1..=10_000).contains(n) => *n as u32,
            Some(v) => {
                return Err(r.err(
                    "trials",
                    format!("expected an integer from 1 to 10000, got {}", show(v)),
                ));
            }
        };
        let select = match table.get("select") {
            None => None,
            Some(Value::Table(t)) => Some(read_select(file, t)?),
            Some(v) => {
                return Err(r.err(
                    "select",
                    format!(
                        "expected {{ metric = \"...\", goal = \"max\" }}, got {}",
                        show(v)
                    ),
                ));
            }
        };
        if trials > 1 && select.is_none() {
            return Err(r.err(
                "trials",
                format!("{trials} trials need `select` to choose the best one"),
            ));
        }
        let keep_failed = match table.get("keep_failed") {
            None => 20,
            Some(Value::Integer(n)) if (0..=1_000_000).contains(n) => *n as usize,
            Some(v) => {
                return Err(r.err(
                    "keep_failed",
                    format!("expected an integer from 0 to 1000000, got {}", show(v)),
                ));
            }
        };
        let registry = r.string("registry", "registry")?;
        if registry.is_empty() {
            return Err(r.err("registry", "must name a folder"));
        }
        Ok(RetrainConfig {
            command,
            command_text,
            workdir: PathBuf::from(r.string("workdir", ".")?),
            timeout: r.duration("timeout", "30m", true)?,
            cooldown: r.duration("cooldown", "1h", false)?,
            bump,
            trials,
            select,
            registry: PathBuf::from(registry),
            shutdown_grace: r.duration("shutdown_grace", "10s", false)?,
            keep_failed,
            search,
        })
    }

    /// Makes relative `workdir` and `registry` relative to `base` (the
    /// config file's folder), for callers that want file-relative paths.
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.workdir.is_relative() {
            self.workdir = base.join(&self.workdir);
        }
        if self.registry.is_relative() {
            self.registry = base.join(&self.registry);
        }
    }
}

fn read_select(file: &str, t: &toml::Table) -> Result<Select, ConfigError> {
    let r = Reader {
        file,
        path: "retrain.select".into(),
        table: t,
    };
    r.unknown_keys(&["metric", "goal"])?;
    let metric = match t.get("metric") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) => return Err(r.err("metric", format!("expected a metric name, got {}", show(v)))),
        None => {
            return Err(r.err(
                "metric",
                "missing; expected the metrics.json field to select on",
            ));
        }
    };
    let goal = match t.get("goal").and_then(Value::as_str) {
        Some("max") => Goal::Max,
        Some("min") => Goal::Min,
        _ => {
            let got = t.get("goal").map_or("nothing".to_string(), show);
            return Err(r.err("goal", format!("expected \"max\" or \"min\", got {got}")));
        }
    };
    Ok(Select { metric, goal })
}

/// A TOML value as a user would write it, for error messages.
pub(super) fn show(v: &Value) -> String {
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

    const SPEC_EXAMPLE: &str = r#"
        command  = ["python3", "train.py", "--lr", "{learning_rate}", "--out", "{output_dir}"]
        workdir  = "."
        timeout  = "30m"
        cooldown = "1h"
        bump     = "patch"
        trials   = 1
        select   = { metric = "val_accuracy", goal = "max" }
        registry = "registry"

        [search]
        strategy      = "random"
        seed          = 7
        learning_rate = { log_uniform = [1e-4, 1e-2] }
        batch_size    = { int = [16, 128] }
        optimizer     = { choice = ["adam", "sgd"] }
        epochs        = 3
    "#;

    fn load(text: &str) -> Result<RetrainConfig, ConfigError> {
        RetrainConfig::from_toml(&text.parse::<toml::Table>().unwrap(), "mmon.toml")
    }

    fn err(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn the_spec_example_loads() {
        let c = load(SPEC_EXAMPLE).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(1800));
        assert_eq!(c.cooldown, Duration::from_secs(3600));
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.keep_failed, 20);
        assert_eq!(c.bump, Bump::Patch);
        assert_eq!(
            c.select,
            Some(Select {
                metric: "val_accuracy".into(),
                goal: Goal::Max
            })
        );
        assert_eq!(c.search.strategy, Strategy::Random);
        assert_eq!(c.search.seed, 7);
        assert_eq!(
            c.search.params["learning_rate"],
            ParamSpec::LogUniform(1e-4, 1e-2)
        );
        assert_eq!(c.search.params["batch_size"], ParamSpec::Int(16, 128));
        assert_eq!(
            c.search.params["optimizer"],
            ParamSpec::Choice(vec!["adam".into(), "sgd".into()])
        );
        assert_eq!(c.search.params["epochs"], ParamSpec::Constant(3.into()));
    }

    #[test]
    fn minimal_table_gets_defaults() {
        let c = load(r#"command = ["./train.sh"]"#).unwrap();
        assert_eq!(
            (c.trials, c.select.clone(), c.registry.clone()),
            (1, None, PathBuf::from("registry"))
        );
        assert_eq!(c.workdir, PathBuf::from("."));
    }

    #[test]
    fn errors_name_the_full_key() {
        assert_eq!(
            err("command = [\"t\"]\n[search]\nlearning_rate = { log_uniform = [0, 0.01] }"),
            "mmon.toml: retrain.search.learning_rate: log_uniform bounds must be > 0, got [0, 0.01]"
        );
        assert_eq!(
            err("command = [\"t\", \"--lr={lr}\"]"),
            "mmon.toml: retrain.command[1]: unknown placeholder {lr}; known: base_version, model_id, new_version, output_dir, parent_version, run_id"
        );
        assert_eq!(
            err("command = []"),
            "mmon.toml: retrain.command: expected a non-empty array of strings, got []"
        );
        assert_eq!(
            err("command = [\"\"]"),
            "mmon.toml: retrain.command[0]: the program name is empty"
        );
        assert!(
            err("command = [\"t\"]\ncomand = 1")
                .starts_with("mmon.toml: retrain.comand: unknown key")
        );
        assert!(
            err("command = [\"t\"]\nselect = { metric = \"a\", goal = \"up\" }")
                .starts_with("mmon.toml: retrain.select.goal: expected")
        );
        assert!(
            err("command = [\"t\"]\ntimeout = \"soon\"")
                .starts_with("mmon.toml: retrain.timeout: expected a duration")
        );
        assert_eq!(
            err("command = [\"t\"]\nbump = \"huge\""),
            "mmon.toml: retrain.bump: expected one of patch | minor | major, got \"huge\""
        );
        assert_eq!(
            err("command = [\"t\"]\ntrials = 3"),
            "mmon.toml: retrain.trials: 3 trials need `select` to choose the best one"
        );
        assert_eq!(
            err("command = [\"t\"]\n[search]\nb = { int = [5, 1] }"),
            "mmon.toml: retrain.search.b: int needs two integers [low, high] with low <= high, got [5, 1]"
        );
        assert!(
            err("command = [\"t\"]\n[search]\nb = { normal = [0, 1] }")
                .starts_with("mmon.toml: retrain.search.b: expected { log_uniform")
        );
        assert!(
            err("command = [\"t\"]\n[search]\nstrategy = \"grid\"")
                .contains("retrain.search.strategy")
        );
        assert!(
            err("command = [\"t\"]\n[search]\noutput_dir = 1").contains("built-in placeholder")
        );
        assert!(err("command = [\"t\", \"{a\"]").contains("retrain.command[1]: unclosed"));
    }

    #[test]
    fn search_params_are_placeholders() {
        let c = load(
            "command = [\"t\", \"{opt}\", \"{new_version}\"]\n[search]\nopt = { choice = [\"a\"] }",
        )
        .unwrap();
        assert_eq!(c.command.len(), 3);
    }
}
