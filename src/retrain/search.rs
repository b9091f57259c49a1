//! `[retrain.search]`: the hyper-parameter space the tuner proposes from.
//!
//! Each key other than `strategy` and `seed` is a parameter: a distribution
//! (`{ log_uniform = [a, b] }`, `{ uniform = [a, b] }`, `{ int = [a, b] }`,
//! `{ choice = [...] }`) or a constant. Its name is also a `{placeholder}`
//! of the command, so it may not shadow a built-in one.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use toml::Value;

use super::config::BUILTIN_PLACEHOLDERS;
use crate::config::table::{ParamError, Params, show};

/// How the tuner proposes parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Random,
    Tpe,
}

/// One search parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamSpec {
    LogUniform(f64, f64),
    Uniform(f64, f64),
    /// Inclusive integer range.
    Int(i64, i64),
    Choice(Vec<Json>),
    Constant(Json),
}

/// `[retrain.search]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    pub strategy: Strategy,
    pub seed: u64,
    pub params: BTreeMap<String, ParamSpec>,
}

pub(super) fn read_search(mut r: Params) -> Result<SearchSpace, ParamError> {
    let strategy = match r.text("strategy", "random")?.as_str() {
        "random" => Strategy::Random,
        "tpe" => Strategy::Tpe,
        other => {
            return Err(r.error("strategy", format!("expected random | tpe, got {other:?}")));
        }
    };
    let seed = match r.raw("seed") {
        None => 0,
        Some(Value::Integer(n)) if n >= 0 => n as u64,
        Some(v) => {
            return Err(r.error(
                "seed",
                format!("expected a non-negative integer, got {}", show(&v)),
            ));
        }
    };
    let mut params = BTreeMap::new();
    for name in r.keys() {
        if name == "strategy" || name == "seed" {
            continue;
        }
        if BUILTIN_PLACEHOLDERS.contains(&name.as_str()) {
            return Err(r.error(
                &name,
                "this name is a built-in placeholder; choose another parameter name",
            ));
        }
        if name.is_empty() || name.contains(['{', '}']) {
            return Err(r.error(&name, "a parameter name cannot be empty or hold braces"));
        }
        let Some(value) = r.raw(&name) else {
            continue;
        };
        let spec = read_param(&r, &name, &value)?;
        params.insert(name, spec);
    }
    Ok(SearchSpace {
        strategy,
        seed,
        params,
    })
}

fn read_param(r: &Params, name: &str, value: &Value) -> Result<ParamSpec, ParamError> {
    let Value::Table(t) = value else {
        return to_json(value).map(ParamSpec::Constant).ok_or_else(|| {
            r.error(
                name,
                "a constant must be a string, number, boolean or array",
            )
        });
    };
    let shape = "expected { log_uniform = [a, b] }, { uniform = [a, b] }, { int = [a, b] }, { choice = [...] } or a constant";
    if t.len() != 1 {
        return Err(r.error(name, format!("{shape}, got {}", show(value))));
    }
    let (kind, arg) = t.iter().next().expect("one entry");
    let pair = |floats: bool| -> Option<(f64, f64)> {
        let items = arg.as_array()?;
        let num = |v: &Value| match v {
            Value::Float(f) if f.is_finite() && floats => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        match items.as_slice() {
            [a, b] => Some((num(a)?, num(b)?)),
            _ => None,
        }
    };
    match kind.as_str() {
        "log_uniform" => {
            let (a, b) = pair(true).ok_or_else(|| r.error(name, format!("log_uniform needs two numbers [low, high], got {}", show(arg))))?;
            if a <= 0.0 || b <= 0.0 {
                return Err(r.error(name, format!("log_uniform bounds must be > 0, got {}", show(arg))));
            }
            if a >= b {
                return Err(r.error(name, format!("log_uniform needs low < high, got {}", show(arg))));
            }
            Ok(ParamSpec::LogUniform(a, b))
        }
        "uniform" => {
            let (a, b) = pair(true).ok_or_else(|| r.error(name, format!("uniform needs two numbers [low, high], got {}", show(arg))))?;
            if a >= b {
                return Err(r.error(name, format!("uniform needs low < high, got {}", show(arg))));
            }
            Ok(ParamSpec::Uniform(a, b))
        }
        "int" => match arg.as_array().map(Vec::as_slice) {
            Some([Value::Integer(a), Value::Integer(b)]) if a <= b => Ok(ParamSpec::Int(*a, *b)),
            _ => Err(r.error(name, format!("int needs two integers [low, high] with low <= high, got {}", show(arg)))),
        },
        "choice" => match arg.as_array() {
            Some(items) if !items.is_empty() => items
                .iter()
                .map(|v| to_json(v).ok_or_else(|| r.error(name, format!("choice values must be strings, numbers, booleans or arrays, got {}", show(v)))))
                .collect::<Result<Vec<_>, _>>()
                .map(ParamSpec::Choice),
            _ => Err(r.error(name, format!("choice needs a non-empty array, got {}", show(arg)))),
        },
        _ => Err(r.error(name, format!("{shape}, got {}", show(value)))),
    }
}

/// A TOML scalar or array as JSON; tables are not constants.
fn to_json(v: &Value) -> Option<Json> {
    Some(match v {
        Value::String(s) => Json::String(s.clone()),
        Value::Integer(i) => Json::from(*i),
        Value::Float(f) => Json::from(serde_json::Number::from_f64(*f)?),
        Value::Boolean(b) => Json::Bool(*b),
        Value::Datetime(d) => Json::String(d.to_string()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect::<Option<_>>()?),
        Value::Table(_) => return None,
    })
}
