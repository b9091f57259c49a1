//! The known change points `mmon eval` scores against, read from the truth
//! of `mmon generate` (`mmon.truth/1`) or from a JSONL file written by hand,
//! and resolved to positions in the streams of the parsed logs.
//!
//! A drift of `mmon generate` changes the probability of a correct
//! prediction and the latency median of one model at once, and the logged
//! `accuracy` is a rolling mean of `correct`, so every drift is a change of
//! every monitored metric of that model. Its true levels are
//! `p_correct_before`/`after` for `correct` and `accuracy`, and the latency
//! medians for `latency_ms`; other metrics have no known level. Its
//! `first_affected.line` (and `recovered.line`, the change's end) refer to
//! the first log.
//!
//! A hand-written line is `{"model_id", "metric", "index" | "line" |
//! "timestamp", "end"?, "file"?, "before"?, "after"?}`: `index` is the
//! position in the (model, metric) stream, `line` a 1-based line of `file`
//! (needed with several logs) and `timestamp` an RFC 3339 time or epoch
//! seconds (milliseconds under `timestamp_unit = "ms"`); `end` is of the
//! same kind; `before`/`after` the true levels, when known.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::records::{Records, Spot};
use super::score::Change;
use crate::generate::TRUTH_SCHEMA;
use crate::timestamp::Unit;

/// The keys a hand-written truth line may have.
const KEYS: [&str; 9] = [
    "model_id",
    "metric",
    "index",
    "line",
    "timestamp",
    "end",
    "file",
    "before",
    "after",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TruthFormat {
    /// The truth document of `mmon generate`.
    Generated,
    Jsonl,
}

/// Where a known change is, as the truth says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Index(u64),
    /// A line of `file` (the first log when `None`).
    Line {
        file: Option<String>,
        line: u64,
    },
    Time(i64),
}

/// One change of the truth file.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownChange {
    /// Where it is in the truth file, for messages (`t.jsonl:3`).
    pub origin: String,
    pub model_id: String,
    /// `None`: a change of every monitored metric of the model.
    pub metric: Option<String>,
    pub at: Place,
    pub end: Option<Place>,
    /// True levels (before, after) per metric, where known.
    pub levels: Vec<(String, Option<f64>, Option<f64>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub path: String,
    pub format: TruthFormat,
    pub changes: Vec<KnownChange>,
}

/// What is wrong with a truth file: a usage error naming where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TruthError(pub String);

#[derive(Deserialize)]
struct Generated {
    schema: String,
    drifts: Vec<GeneratedDrift>,
}

#[derive(Deserialize)]
struct GeneratedDrift {
    model_id: String,
    p_correct_before: Option<f64>,
    p_correct_after: Option<f64>,
    latency_median_before_ms: Option<f64>,
    latency_median_after_ms: Option<f64>,
    first_affected: Option<GeneratedPosition>,
    recovered: Option<GeneratedPosition>,
}

#[derive(Deserialize)]
struct GeneratedPosition {
    line: u64,
}

impl Truth {
    /// Reads the truth in `text` (from `path`); numeric timestamps are in `unit`.
    pub fn parse(text: &str, path: &str, unit: Unit) -> Result<Truth, TruthError> {
        let doc: Option<Map<String, Value>> = serde_json::from_str(text).ok();
        match doc {
            Some(obj) if obj.contains_key("schema") => Truth::generated(text, path, &obj),
            _ => Truth::jsonl(text, path, unit),
        }
    }

    fn generated(text: &str, path: &str, obj: &Map<String, Value>) -> Result<Truth, TruthError> {
        let schema = obj.get("schema").and_then(Value::as_str).unwrap_or("");
        if schema != TRUTH_SCHEMA {
            return Err(TruthError(format!(
                "{path}: schema {schema:?} is not {TRUTH_SCHEMA:?}; expected the truth of `mmon generate` or JSONL lines of {{\"model_id\", \"metric\", \"index\" | \"line\" | \"timestamp\"}}"
            )));
        }
        let doc: Generated = serde_json::from_str(text).map_err(|e| {
            TruthError(format!(
                "{path}: line {}: {e}; expected the truth `mmon generate` writes",
                e.line()
            ))
        })?;
        debug_assert_eq!(doc.schema, TRUTH_SCHEMA);
        let mut changes = Vec::new();
        for (k, d) in doc.drifts.into_iter().enumerate() {
            // A drift after the model's last event changes nothing in the log.
            let Some(first) = d.first_affected else {
                continue;
            };
            let p = (d.p_correct_before, d.p_correct_after);
            let latency = (d.latency_median_before_ms, d.latency_median_after_ms);
            changes.push(KnownChange {
                origin: format!("{path}: drifts[{k}]"),
                model_id: d.model_id,
                metric: None,
                at: Place::Line {
                    file: None,
                    line: first.line,
                },
                end: d.recovered.map(|r| Place::Line {
                    file: None,
                    line: r.line,
                }),
                levels: vec![
                    ("correct".into(), p.0, p.1),
                    ("accuracy".into(), p.0, p.1),
                    ("latency_ms".into(), latency.0, latency.1),
                ],
            });
        }
        Ok(Truth {
            path: path.to_string(),
            format: TruthFormat::Generated,
            changes,
        })
    }

    fn jsonl(text: &str, path: &str, unit: Unit) -> Result<Truth, TruthError> {
        let mut changes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let origin = format!("{path}:{}", n + 1);
            let bad = |msg: String| TruthError(format!("{origin}: {msg}"));
            let value: Value = serde_json::from_str(line).map_err(|e| {
                bad(format!(
                    "not a JSON object ({e}); expected {{\"model_id\", \"metric\", \"index\" | \"line\" | \"timestamp\", \"end\"?}}"
                ))
            })?;
            let Value::Object(obj) = value else {
                return Err(bad("expected a JSON object".into()));
            };
            changes.push(line_change(&obj, origin.clone(), unit).map_err(bad)?);
        }
        Ok(Truth {
            path: path.to_string(),
            format: TruthFormat::Jsonl,
            changes,
        })
    }
}

/// One hand-written change, or what is wrong with it.
fn line_change(
    obj: &Map<String, Value>,
    origin: String,
    unit: Unit,
) -> Result<KnownChange, String> {
    if let Some(key) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key {key:?}; expected {}", KEYS.join(", ")));
    }
    let text = |key: &str| -> Result<String, String> {
        match obj.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(other) => Err(format!("{key}: expected a non-empty string, got {other}")),
            None => Err(format!("{key}: missing")),
        }
    };
    let model_id = text("model_id")?;
    let metric = text("metric")?;
    let kinds: Vec<&str> = ["index", "line", "timestamp"]
        .into_iter()
        .filter(|k| obj.contains_key(*k))
        .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => return Err("needs one of index, line or timestamp".into()),
        _ => {
            return Err(format!(
                "give one of index, line or timestamp, not {}",
                kinds.join(" and ")
            ));
        }
    };
    let file = match obj.get("file") {
        None => None,
        Some(_) if kind != "line" => return Err("file: only with line".into()),
        Some(_) => Some(text("file")?),
    };
    let place = |key: &str, v: &Value| -> Result<Place, String> {
        match kind {
            "timestamp" => match v {
                Value::String(s) => crate::timestamp::parse_str(s)
                    .map(Place::Time)
                    .map_err(|e| format!("{key}: expected {e}, got {s:?}")),
                Value::Number(n) => n
                    .as_i64()
                    .map(|i| crate::timestamp::from_int(i, unit))
                    .unwrap_or_else(|| {
                        crate::timestamp::from_number(n.as_f64().unwrap_or(f64::NAN), unit)
                    })
                    .map(Place::Time)
                    .map_err(|e| format!("{key}: expected {e}, got {n}")),
                other => Err(format!("{key}: expected a timestamp, got {other}")),
            },
            _ => {
                let n = v
                    .as_u64()
                    .ok_or_else(|| format!("{key}: expected a whole number >= 0, got {v}"))?;
                if kind == "line" {
                    if n == 0 {
                        return Err(format!("{key}: lines are numbered from 1, got 0"));
                    }
                    Ok(Place::Line {
                        file: file.clone(),
                        line: n,
                    })
                } else {
                    Ok(Place::Index(n))
                }
            }
        }
    };
    let at = place(kind, &obj[kind])?;
    let end = match obj.get("end") {
        None => None,
        Some(v) => {
            let end = place("end", v)?;
            let after = match (&at, &end) {
                (Place::Index(a), Place::Index(b)) => b > a,
                (Place::Line { line: a, .. }, Place::Line { line: b, .. }) => b > a,
                (Place::Time(a), Place::Time(b)) => b > a,
                _ => false,
            };
            if !after {
                return Err(format!("end: must come after the change's {kind}"));
            }
            Some(end)
        }
    };
    let level = |key: &str| -> Result<Option<f64>, String> {
        match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| format!("{key}: expected the true level, a number, got {v}")),
        }
    };
    let levels = vec![(metric.clone(), level("before")?, level("after")?)];
    Ok(KnownChange {
        origin,
        model_id,
        metric: Some(metric),
        at,
        end,
        levels,
    })
}

/// A known change located in one stream of the logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub model: String,
    pub slot: usize,
    pub change: Change,
}

/// Locates every change in the streams of `records`; `logs` are the log
/// paths as given. Changes the logs do not reach are kept (they count as
/// missed) and said so in the returned warnings.
pub fn locate(
    truth: &Truth,
    records: &Records,
    logs: &[String],
) -> Result<(Vec<Located>, Vec<String>), TruthError> {
    let mut warnings = Vec::new();
    let mut wanted: Vec<(usize, usize)> = Vec::new(); // (change, slot)
    let mut queries: Vec<(u32, usize, Spot)> = Vec::new();
    let mut unreached: Vec<bool> = Vec::new();
    let spot = |c: &KnownChange, place: &Place| -> Result<Option<Spot>, TruthError> {
        Ok(match place {
            Place::Index(i) => Some(Spot::Index(*i)),
            Place::Time(t) => Some(Spot::Time(*t)),
            Place::Line { file, line } => {
                let name = file.as_deref().or(logs.first().map(String::as_str));
                let name = name.map(|n| if n == "-" { "<stdin>" } else { n });
                if let Some(n) = file
                    && !logs.iter().any(|l| l == n)
                {
                    return Err(TruthError(format!(
                        "{}: file {n:?} is not one of the logs ({})",
                        c.origin,
                        logs.join(", ")
                    )));
                }
                if file.is_none() && logs.len() > 1 && truth.format == TruthFormat::Jsonl {
                    return Err(TruthError(format!(
                        "{}: with several logs, a line needs \"file\" (one of {})",
                        c.origin,
                        logs.join(", ")
                    )));
                }
                name.and_then(|n| records.file_number(n))
                    .map(|file| Spot::Line { file, line: *line })
            }
        })
    };
    for (ci, c) in truth.changes.iter().enumerate() {
        let slots: Vec<usize> = match &c.metric {
            None => (0..records.metrics.len()).collect(),
            Some(m) => match records.slot(m) {
                Some(s) => vec![s],
                None => {
                    warnings.push(format!(
                        "{}: no monitor watches {m:?}; the change is not scored",
                        c.origin
                    ));
                    continue;
                }
            },
        };
        let model = records.model_number(&c.model_id);
        if model.is_none() {
            warnings.push(format!(
                "{}: model {:?} has no record in the logs; its change counts as missed",
                c.origin, c.model_id
            ));
        }
        if truth.format == TruthFormat::Generated
            && let (Place::Line { line, .. }, Some(first)) = (&c.at, records.files.first())
            && let Some(found) = records.model_at(0, *line)
            && found != c.model_id
        {
            return Err(TruthError(format!(
                "{}: line {line} of {first} is a record of model {found:?}, not {:?}; is this the truth of another log?",
                c.origin, c.model_id
            )));
        }
        let at = spot(c, &c.at)?;
        let end = c.end.as_ref().map(|e| spot(c, e)).transpose()?.flatten();
        for slot in slots {
            wanted.push((ci, slot));
            let none = model.is_none() || at.is_none();
            unreached.push(none);
            if let (Some(m), Some(at)) = (model, at) {
                queries.push((m, slot, at));
                queries.push((m, slot, end.unwrap_or(Spot::Index(u64::MAX))));
            } else {
                queries.push((0, usize::MAX, Spot::Index(0)));
                queries.push((0, usize::MAX, Spot::Index(0)));
            }
        }
    }
    let answers = records.locate(&queries);
    let mut located = Vec::with_capacity(wanted.len());
    for (w, &(ci, slot)) in wanted.iter().enumerate() {
        let c = &truth.changes[ci];
        let metric = &records.metrics[slot];
        let index = if unreached[w] { None } else { answers[2 * w] };
        let end = answers[2 * w + 1].filter(|_| index.is_some());
        if index.is_none() && !unreached[w] {
            warnings.push(format!(
                "{}: the logs have no {metric} value of model {:?} at or after it; the change counts as missed",
                c.origin, c.model_id
            ));
        }
        let level = c.levels.iter().find(|(m, _, _)| m == metric);
        located.push(Located {
            model: c.model_id.clone(),
            slot,
            change: Change {
                index,
                end,
                before: level.and_then(|l| l.1),
                after: level.and_then(|l| l.2),
            },
        });
    }
    Ok((located, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Truth::parse(text, "t.jsonl", Unit::S)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn hand_written_lines_of_each_kind() {
        let text = "{\"model_id\":\"a\",\"metric\":\"accuracy\",\"index\":100,\"end\":900,\"before\":0.9}\n\n\
                    {\"model_id\":\"b\",\"metric\":\"latency_ms\",\"line\":12,\"file\":\"x.jsonl\"}\n\
                    {\"model_id\":\"b\",\"metric\":\"correct\",\"timestamp\":\"2024-03-01T00:00:10Z\"}\n\
                    {\"model_id\":\"b\",\"metric\":\"correct\",\"timestamp\":1709251210}\n";
        let t = Truth::parse(text, "t.jsonl", Unit::S).unwrap();
        assert_eq!(t.format, TruthFormat::Jsonl);
        assert_eq!(t.changes.len(), 4);
        assert_eq!(t.changes[0].at, Place::Index(100));
        assert_eq!(t.changes[0].end, Some(Place::Index(900)));
        assert_eq!(t.changes[0].levels[0], ("accuracy".into(), Some(0.9), None));
        assert_eq!(t.changes[1].origin, "t.jsonl:3");
        assert_eq!(
            t.changes[1].at,
            Place::Line {
                file: Some("x.jsonl".into()),
                line: 12
            }
        );
        assert_eq!(t.changes[2].at, t.changes[3].at);
    }

    #[test]
    fn a_bad_line_is_named_with_what_was_expected() {
        assert_eq!(
            err(
                "{\"model_id\":\"a\",\"metric\":\"m\",\"index\":1}\n{\"model_id\":\"a\",\"metric\":\"m\",\"idx\":1}\n"
            ),
            "t.jsonl:2: unknown key \"idx\"; expected model_id, metric, index, line, timestamp, end, file, before, after"
        );
        assert_eq!(
            err("{\"model_id\":\"a\",\"metric\":\"m\"}"),
            "t.jsonl:1: needs one of index, line or timestamp"
        );
        assert_eq!(
            err("{\"model_id\":\"a\",\"metric\":\"m\",\"index\":5,\"line\":3}"),
            "t.jsonl:1: give one of index, line or timestamp, not index and line"
        );
        assert_eq!(
            err("{\"model_id\":\"a\",\"metric\":\"m\",\"index\":-5}"),
            "t.jsonl:1: index: expected a whole number >= 0, got -5"
        );
        assert_eq!(
            err("{\"model_id\":\"a\",\"metric\":\"m\",\"index\":5,\"end\":5}"),
            "t.jsonl:1: end: must come after the change's index"
        );
        assert!(err("{\"metric\":\"m\",\"index\":5}").starts_with("t.jsonl:1: model_id: missing"));
        assert!(err("\n\nnot json\n").starts_with("t.jsonl:3: not a JSON object"));
        assert!(err("{\"schema\":\"mmon.report/1\"}").contains("is not \"mmon.truth/1\""));
    }

    #[test]
    fn a_generated_truth_is_a_change_of_every_metric_with_its_levels() {
        let text = r#"{"schema":"mmon.truth/1","events":10,"drifts":[
            {"model_id":"churn","p_correct_before":0.91,"p_correct_after":0.83,
             "latency_median_before_ms":38.0,"latency_median_after_ms":57.0,
             "first_affected":{"line":7,"model_event_index":3},"recovered":null},
            {"model_id":"fraud","p_correct_before":0.87,"p_correct_after":0.79,
             "latency_median_before_ms":12.0,"latency_median_after_ms":18.0,
             "first_affected":null,"recovered":null}]}"#;
        let t = Truth::parse(text, "m.truth.json", Unit::S).unwrap();
        assert_eq!(t.format, TruthFormat::Generated);
        // The drift that affected no event is not a change of the log.
        assert_eq!(t.changes.len(), 1);
        let c = &t.changes[0];
        assert_eq!(
            (c.metric.as_ref(), &c.origin[..]),
            (None, "m.truth.json: drifts[0]")
        );
        assert_eq!(c.levels[2], ("latency_ms".into(), Some(38.0), Some(57.0)));
        let bad = Truth::parse(
            r#"{"schema":"mmon.truth/1","drifts":[{"model_id":1}]}"#,
            "m.json",
            Unit::S,
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .starts_with("m.json: line 1: invalid type")
        );
    }
}
