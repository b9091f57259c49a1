//! What the four 0/1 detectors (`ddm`, `eddm`, `hddm-a`, `hddm-w`) share:
//! how a monitored value becomes river's input, and how river's two flags
//! become an [`Outcome`].
//!
//! river's binary detectors alarm when the rate of 1s (errors) rises. Under
//! `direction = "decrease"` they are fed `1 − x`, so a `correct` field can be
//! monitored directly, and their estimates are turned back into the monitored
//! units (`before` and `after` are then rates of correct values). Under
//! `increase` and `both` they are fed `x` as is; `both` also turns on the
//! two-sided test of `hddm-a` and `hddm-w` (river's `two_sided_test`), while
//! DDM and EDDM, which have no such test, still alarm only on a rise.
//!
//! Values are not required to be exactly 0 or 1. A value in [0, 1] is passed
//! on as river would take it: DDM and the HDDMs average it as a partial error
//! (their bounds hold for any value in [0, 1]), and EDDM counts only an exact
//! 1 as an error. A value outside [0, 1] has no meaning for these detectors
//! (river's DDM would take the square root of a negative number), so it is
//! clamped to [0, 1]. A non-finite value (which the record reader never lets
//! through) is ignored and leaves the state untouched.

use super::{Change, Direction, Outcome};

/// The value river's detector is fed for the monitored value `x`, or `None`
/// for a value to ignore.
pub(crate) fn error_value(x: f64, direction: Direction) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    let x = x.clamp(0.0, 1.0);
    Some(match direction {
        Direction::Decrease => 1.0 - x,
        Direction::Increase | Direction::Both => x,
    })
}

/// An estimate in river's units (a rate of 1s) in the monitored units.
pub(crate) fn monitored(rate: f64, direction: Direction) -> f64 {
    match direction {
        Direction::Decrease => 1.0 - rate,
        Direction::Increase | Direction::Both => rate,
    }
}

/// A change estimated in river's units, reported in the monitored ones.
pub(crate) fn change(lookback: u64, before: f64, after: f64, direction: Direction) -> Change {
    Change {
        lookback,
        before: monitored(before, direction),
        after: monitored(after, direction),
    }
}

/// The outcome of river's flags after an update: a drift wins over a warning
/// (river's two-sided HDDMs and EDDM can raise both on the same update).
pub(crate) fn outcome(drift: bool, warning: bool, estimate: impl FnOnce() -> Change) -> Outcome {
    if drift {
        Outcome::Drift(estimate())
    } else if warning {
        Outcome::Warning(estimate())
    } else {
        Outcome::None
    }
}

/// The parity fixtures written by `tests/parity/make_expected_binary.py` and
/// the checks every binary detector runs against them.
#[cfg(test)]
pub(crate) mod parity {
    use super::super::{Detector, Direction, Params};
    use serde_json::Value;

    pub struct Case {
        pub stream: String,
        pub values: Vec<f64>,
        /// The parameters as river names them.
        pub params: serde_json::Map<String, Value>,
        pub drifts: Vec<usize>,
        pub warnings: Vec<usize>,
    }

    pub fn cases(json: &str) -> Vec<Case> {
        let doc: Value = serde_json::from_str(json).expect("fixture is JSON");
        let streams: Vec<(String, Vec<f64>)> = doc["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| {
                let den = s["denominator"].as_f64().expect("denominator");
                let values = s["values"]
                    .as_str()
                    .expect("values")
                    .bytes()
                    .map(|b| f64::from(b - b'0') / den)
                    .collect();
                (s["name"].as_str().expect("name").to_string(), values)
            })
            .collect();
        doc["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| {
                let stream = c["stream"].as_str().expect("stream").to_string();
                let values = streams
                    .iter()
                    .find(|s| s.0 == stream)
                    .expect("known stream")
                    .1
                    .clone();
                let positions = |v: &Value| -> Vec<usize> {
                    v.as_array()
                        .expect("array")
                        .iter()
                        .map(|i| i.as_u64().unwrap() as usize)
                        .collect()
                };
                let warnings = c["warnings"]
                    .as_array()
                    .expect("warnings")
                    .iter()
                    .flat_map(|run| {
                        let run = positions(run);
                        run[0]..=run[1]
                    })
                    .collect();
                Case {
                    stream,
                    values,
                    params: c["params"].as_object().expect("params").clone(),
                    drifts: positions(&c["drifts"]),
                    warnings,
                }
            })
            .collect()
    }

    /// A `params` table from river's parameters, renamed to mmon's, and the
    /// direction river's `two_sided_test` stands for.
    pub fn params(case: &Case, rename: &[(&str, &str)]) -> (toml::Table, bool) {
        let mut table = toml::Table::new();
        let mut two_sided = false;
        for (k, v) in &case.params {
            if k == "two_sided_test" {
                two_sided = v.as_bool().expect("bool");
                continue;
            }
            let name = rename.iter().find(|r| r.0 == k).map_or(k.as_str(), |r| r.1);
            let value = match v {
                Value::Number(n) if n.is_i64() => toml::Value::Integer(n.as_i64().unwrap()),
                Value::Number(n) => toml::Value::Float(n.as_f64().unwrap()),
                other => panic!("unexpected parameter {k} = {other}"),
            };
            table.insert(name.to_string(), value);
        }
        (table, two_sided)
    }

    /// Runs `case` through a detector and returns river's flags per update:
    /// the positions where `drift_detected`, then where `warning_detected`.
    pub fn run<D: Detector>(
        case: &Case,
        mut detector: D,
        flip: bool,
        flags: impl Fn(&D) -> (bool, bool),
    ) -> (Vec<usize>, Vec<usize>) {
        let (mut drifts, mut warnings) = (Vec::new(), Vec::new());
        for (i, &x) in case.values.iter().enumerate() {
            detector.update(if flip { 1.0 - x } else { x }, 0);
            let (drift, warning) = flags(&detector);
            if drift {
                drifts.push(i);
            }
            if warning {
                warnings.push(i);
            }
        }
        (drifts, warnings)
    }

    /// Checks every case of a fixture: river's input under `increase` (or
    /// `both` for a two-sided case) and, for one-sided cases, the flipped
    /// input under `decrease`, which must give the same positions.
    pub fn check<D: Detector>(
        json: &str,
        rename: &[(&str, &str)],
        build: impl Fn(Direction, &mut Params) -> D,
        flags: impl Fn(&D) -> (bool, bool) + Copy,
    ) -> usize {
        let mut checked = 0;
        for case in cases(json) {
            let (table, two_sided) = params(&case, rename);
            let runs: &[(Direction, bool)] = if two_sided {
                &[(Direction::Both, false)]
            } else {
                &[(Direction::Increase, false), (Direction::Decrease, true)]
            };
            for &(direction, flip) in runs {
                let mut p = Params::new(table.clone(), "params");
                let detector = build(direction, &mut p);
                p.finish(&[]).expect("river's parameters map to known ones");
                let (drifts, warnings) = run(&case, detector, flip, flags);
                let what = format!("{} {:?} {direction:?}", case.stream, case.params);
                assert_eq!(drifts, case.drifts, "drift positions of {what}");
                assert!(
                    warnings == case.warnings,
                    "warning positions of {what} differ"
                );
                checked += 1;
            }
        }
        checked
    }

    /// Outcomes of a stream with a save/restore round trip before update `cut`.
    pub fn outcomes_with_cut<D: Detector + serde::Serialize + serde::de::DeserializeOwned>(
        mut detector: D,
        values: &[f64],
        cut: usize,
    ) -> Vec<(usize, super::Outcome)> {
        let mut out = Vec::new();
        for (i, &x) in values.iter().enumerate() {
            if i == cut {
                let text = serde_json::to_string(&detector).unwrap();
                detector = serde_json::from_str(&text).unwrap();
            }
            let o = detector.update(x, 0);
            if o != super::Outcome::None {
                out.push((i, o));
            }
        }
        out
    }

    /// A 0/1 stream whose rate of 1s steps from `low` to `high` halfway,
    /// drawn from proptest's uniform `noise`.
    pub fn step_stream(noise: &[f64], low: f64, high: f64) -> Vec<f64> {
        let half = noise.len() / 2;
        noise
            .iter()
            .enumerate()
            .map(|(i, &u)| {
                if u < if i < half { low } else { high } {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }
}
