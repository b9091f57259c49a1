//! The validated `[retrain]` and `[retrain.search]` tables of SPEC §7.
//!
//! Everything is checked at load, before any record is read: types, ranges,
//! unknown keys, and every `{placeholder}` of the command, so that a typo
//! fails in milliseconds instead of after an hour of replay. The tables are
//! read with the configuration's one reader, [`Params`], so errors name the
//! file and the full key (`mmon.toml: retrain.search.learning_rate: ...`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use super::search::read_search;
pub use super::search::{ParamSpec, SearchSpace, Strategy};
use super::template::Template;
use crate::config::ConfigError;
use crate::config::table::{ParamError, Params, show};
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

impl RetrainConfig {
    /// Validates the `[retrain]` table (the value of the top-level `retrain`
    /// key, which holds `search`); `file` names the config file in errors.
    pub fn from_toml(table: &toml::Table, file: &str) -> Result<RetrainConfig, ConfigError> {
        RetrainConfig::from_params(&mut Params::new(table.clone(), "retrain"))
            .map_err(|e| e.in_file(file))
    }

    /// Validates the `[retrain]` table read as `r` (its path is `retrain`).
    pub fn from_params(r: &mut Params) -> Result<RetrainConfig, ParamError> {
        r.only(&[
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
        let search = match r.raw("search") {
            None => SearchSpace {
                strategy: Strategy::Random,
                seed: 0,
                params: BTreeMap::new(),
            },
            Some(Value::Table(t)) => read_search(Params::new(t, "retrain.search"))?,
            Some(v) => {
                return Err(r.error("search", format!("expected a table, got {}", show(&v))));
            }
        };
        let command_text = match r.raw("command") {
            None => {
                return Err(r.error(
                    "command",
                    "missing; expected the training command as an array of strings",
                ));
            }
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(r.error(
                        &format!("command[{i}]"),
                        format!("expected a string, got {}", show(other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(v) => {
                return Err(r.error(
                    "command",
                    format!("expected a non-empty array of strings, got {}", show(&v)),
                ));
            }
        };
        if command_text[0].trim().is_empty() {
            return Err(r.error("command[0]", "the program name is empty"));
        }
        let mut known: Vec<&str> = BUILTIN_PLACEHOLDERS.to_vec();
        known.extend(search.params.keys().map(String::as_str));
        known.sort_unstable();
        let mut command = Vec::new();
        for (i, arg) in command_text.iter().enumerate() {
            let key = format!("command[{i}]");
            let t = Template::parse(arg).map_err(|e| r.error(&key, format!("{e} in {arg:?}")))?;
            if let Some(bad) = t.names().find(|n| !known.contains(n)) {
                return Err(r.error(
                    &key,
                    format!("unknown placeholder {{{bad}}}; known: {}", known.join(", ")),
                ));
            }
            command.push(t);
        }
        let bump_text = r.text("bump", "patch")?;
        let bump = Bump::parse(&bump_text).ok_or_else(|| {
            r.error(
                "bump",
                format!("expected one of patch | minor | major, got {bump_text:?}"),
            )
        })?;
        let trials = match r.raw("trials") {
            None => 1,
            Some(Value::Integer(n)) if (1..=10_000).contains(&n) => n as u32,
            Some(v) => {
                return Err(r.error(
                    "trials",
                    format!("expected an integer from 1 to 10000, got {}", show(&v)),
                ));
            }
        };
        let select = match r.raw("select") {
            None => None,
            Some(Value::Table(t)) => Some(read_select(Params::new(t, "retrain.select"))?),
            Some(v) => {
                return Err(r.error(
                    "select",
                    format!(
                        "expected {{ metric = \"...\", goal = \"max\" }}, got {}",
                        show(&v)
                    ),
                ));
            }
        };
        if trials > 1 && select.is_none() {
            return Err(r.error(
                "trials",
                format!("{trials} trials need `select` to choose the best one"),
            ));
        }
        let keep_failed = match r.raw("keep_failed") {
            None => 20,
            Some(Value::Integer(n)) if (0..=1_000_000).contains(&n) => n as usize,
            Some(v) => {
                return Err(r.error(
                    "keep_failed",
                    format!("expected an integer from 0 to 1000000, got {}", show(&v)),
                ));
            }
        };
        let registry = r.text("registry", "registry")?;
        if registry.is_empty() {
            return Err(r.error("registry", "must name a folder"));
        }
        Ok(RetrainConfig {
            command,
            command_text,
            workdir: PathBuf::from(r.text("workdir", ".")?),
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

fn read_select(mut r: Params) -> Result<Select, ParamError> {
    r.only(&["metric", "goal"])?;
    let metric = match r.raw("metric") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(v) => {
            return Err(r.error(
                "metric",
                format!("expected a metric name, got {}", show(&v)),
            ));
        }
        None => {
            return Err(r.error(
                "metric",
                "missing; expected the metrics.json field to select on",
            ));
        }
    };
    let goal = r.raw("goal");
    let goal = match goal.as_ref().and_then(Value::as_str) {
        Some("max") => Goal::Max,
        Some("min") => Goal::Min,
        _ => {
            let got = goal.as_ref().map_or("nothing".to_string(), show);
            return Err(r.error("goal", format!("expected \"max\" or \"min\", got {got}")));
        }
    };
    Ok(Select { metric, goal })
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
    fn an_unknown_key_is_reported_before_any_other_problem_of_its_table() {
        assert_eq!(
            err("command = []\nselect = { golf = 1 }\ncomand = 1"),
            "mmon.toml: retrain.comand: unknown key; expected one of command, workdir, timeout, cooldown, bump, trials, select, registry, shutdown_grace, keep_failed, search"
        );
        assert_eq!(
            err("command = [\"t\"]\nselect = { golf = 1 }"),
            "mmon.toml: retrain.select.golf: unknown key; expected one of metric, goal"
        );
        assert_eq!(
            err("command = [\"t\"]\nselect = { metric = \"a\" }"),
            "mmon.toml: retrain.select.goal: expected \"max\" or \"min\", got nothing"
        );
        assert_eq!(
            err("command = [\"t\"]\nregistry = \"\""),
            "mmon.toml: retrain.registry: must name a folder"
        );
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
