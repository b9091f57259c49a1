//! Test support shared by the detectors' parity and save/restore tests: the
//! river fixtures written by `tests/parity/make_expected.py`, and running a
//! detector whole or cut at a point (save → JSON → restore → continue).

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Deserialize;

use super::{Change, Detector, DetectorConfig, DetectorState, Outcome, Params};

/// One `fixtures/parity/*.json` file.
#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub river_version: String,
    streams: BTreeMap<String, Stream>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Stream {
    values: Vec<f64>,
    #[serde(default)]
    changes: Vec<usize>,
}

/// One stream run with one parameter setting.
#[derive(Debug, Deserialize)]
pub struct Case {
    pub stream: String,
    /// river's constructor arguments.
    pub params: serde_json::Value,
    /// Update indices where river's `drift_detected` was true.
    #[serde(default)]
    pub drifts: Vec<usize>,
    /// For seeded detectors: river's drifts for each seed.
    #[serde(default)]
    pub runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
pub struct Run {
    pub seed: u64,
    pub drifts: Vec<usize>,
}

impl Fixture {
    pub fn load(text: &str) -> Fixture {
        let fixture: Fixture = serde_json::from_str(text).expect("parity fixture parses");
        assert_eq!(fixture.river_version, "0.26.1");
        fixture
    }

    pub fn values(&self, stream: &str) -> &[f64] {
        &self.streams[stream].values
    }

    /// Where the stream's recipe changes its distribution.
    pub fn changes(&self, stream: &str) -> &[usize] {
        &self.streams[stream].changes
    }

    pub fn streams(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.streams
            .iter()
            .map(|(k, s)| (k.as_str(), s.values.as_slice()))
    }
}

/// A JSON object of parameters as the `params` table of a monitor.
pub fn params(json: &serde_json::Value) -> Params {
    let table: toml::Table = serde_json::from_value(json.clone()).expect("params as TOML");
    Params::new(table, "params")
}

/// Every drift of `detector` on `values`, with its index.
pub fn drifts(detector: &mut dyn Detector, values: &[f64]) -> Vec<(usize, Change)> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, &x)| match detector.update(x, 0) {
            Outcome::Drift(c) => Some((i, c)),
            _ => None,
        })
        .collect()
}

/// Every outcome other than none, with the index of its value.
pub type Outcomes = Vec<(usize, Outcome)>;

fn outcomes(detector: &mut dyn Detector, values: &[f64], start: usize) -> Outcomes {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, &x)| match detector.update(x, 0) {
            Outcome::None => None,
            o => Some((start + i, o)),
        })
        .collect()
}

/// The outcomes of one uninterrupted run, and of a run saved after `cut`
/// values, serialised to a JSON string, restored and continued.
pub fn whole_and_resumed(
    config: &DetectorConfig,
    values: &[f64],
    cut: usize,
) -> (Outcomes, Outcomes) {
    let cut = cut.min(values.len());
    let whole = outcomes(&mut config.build(), values, 0);
    let mut first = config.build();
    let mut resumed = outcomes(&mut first, &values[..cut], 0);
    let text = serde_json::to_string(&first.save()).expect("state serialises");
    let state: DetectorState = serde_json::from_str(&text).expect("state parses");
    let mut second = config.restore(state).expect("state restores");
    resumed.extend(outcomes(&mut second, &values[cut..], cut));
    (whole, resumed)
}

/// Streams of up to `n` values with a few level shifts, so that detectors
/// have something to find; values are rounded like the fixtures'.
pub fn shifting_stream(n: usize) -> impl Strategy<Value = Vec<f64>> {
    (
        prop::collection::vec((0.0f64..1.0, 0.0f64..1.0), n / 2..n),
        100usize..800,
        0.0f64..3.0,
    )
        .prop_map(|(noise, every, jump)| {
            noise
                .into_iter()
                .enumerate()
                .map(|(i, (a, b))| {
                    let level = ((i / every) % 3) as f64 * jump;
                    let x = level + (a + b - 1.0);
                    (x * 1e6).round() / 1e6
                })
                .collect()
        })
}
