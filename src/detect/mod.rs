//! Drift and decay detectors: the observers of the pipeline.
//!
//! A detector sees one stream of numbers (one metric of one model), one value
//! at a time, and says what it concluded about that value: nothing, a warning,
//! or a drift, with its estimate of where the change started and of the level
//! before and after it. Detectors never print, never touch files and never see
//! timestamps other than through their own configuration (the `threshold`
//! detector's event-time window is the one exception, and it gets the time
//! with the value). Their whole state serialises with serde so a checkpoint
//! can stop a run anywhere and resume it with the same detections.
//!
//! Detectors are a trait because users pick them by name in the config; the
//! set of names is closed, so the validated configuration of each is a variant
//! of [`DetectorConfig`], which is also what builds and restores instances.

pub mod adwin;
pub mod binary;
pub mod cusum;
pub mod ddm;
pub mod decay;
pub mod eddm;
pub mod ewma;
pub mod hddm_a;
pub mod hddm_w;
pub mod kswin;
pub mod page_hinkley;
#[cfg(test)]
mod parity;
pub mod reference;
#[cfg(test)]
mod restore_tests;
#[cfg(test)]
pub(crate) mod synthetic;
pub mod threshold;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::config::table::{ParamError, Params};

/// Why a saved detector state cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// The largest count a restored state may hold: beyond any log (2^53
/// values), small enough that no counter can overflow, and exact as an f64.
pub const MAX_COUNT: u64 = 1 << 53;

/// `Ok` if `ok`, else the state is refused with `what` is wrong.
pub(crate) fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), StateError> {
    if ok {
        Ok(())
    } else {
        Err(StateError::Invalid(what()))
    }
}

/// Refuses a count beyond [`MAX_COUNT`].
pub(crate) fn check_count(name: &str, n: u64) -> Result<(), StateError> {
    check(n <= MAX_COUNT, || {
        format!("{name} = {n} is beyond any log ({MAX_COUNT})")
    })
}

/// A detector state read from a checkpoint (SPEC §6): the checkpoint
/// carries state, the configuration carries truth.
pub(crate) trait Restore: Detector + DeserializeOwned + 'static {
    type Config;

    /// Replaces the saved parameters with `config`'s, recomputes what is
    /// derived from them, and checks that the state is one a detector of
    /// this configuration can be in (sizes, indices, counts), so that no
    /// later update can index out of bounds or overflow.
    fn adopt(&mut self, config: &Self::Config) -> Result<(), StateError>;
}

fn restore_as<D: Restore>(
    config: &D::Config,
    state: serde_json::Value,
) -> Result<Box<dyn Detector>, StateError> {
    let mut d: D = serde_json::from_value(state)?;
    d.adopt(config)?;
    Ok(Box::new(d))
}

/// Which change of a metric is bad, and so reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Decrease,
    Increase,
    Both,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "decrease" => Some(Direction::Decrease),
            "increase" => Some(Direction::Increase),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Decrease => "decrease",
            Direction::Increase => "increase",
            Direction::Both => "both",
        }
    }

    /// Whether a change from `before` to `after` is one this direction reports.
    ///
    /// A change of exactly zero is allowed: some detectors (ADWIN on a noisy
    /// stream) can cut with equal means after rounding, and hiding those would
    /// make the `both` and one-sided configurations disagree on positions.
    pub fn allows(self, before: f64, after: f64) -> bool {
        match self {
            Direction::Both => true,
            Direction::Decrease => after <= before,
            Direction::Increase => after >= before,
        }
    }
}

/// A detector's estimate of a change, returned with a warning or a drift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// How many positions before the current one the change is estimated to
    /// have started (0: it starts at the current value).
    pub lookback: u64,
    /// Estimated level of the metric before the change.
    pub before: f64,
    /// Estimated level after the change.
    pub after: f64,
}

/// What a detector concluded from one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    None,
    Warning(Change),
    Drift(Change),
}

/// One detector instance, observing one stream.
///
/// `update` must be deterministic: the same values in the same order give the
/// same outcomes, also across [`Detector::save`] and [`DetectorConfig::restore`].
pub trait Detector: Send {
    /// Feeds one value; `time_ns` is the record's event time (UTC nanoseconds).
    fn update(&mut self, x: f64, time_ns: i64) -> Outcome;

    /// The whole state, for a checkpoint.
    fn save(&self) -> serde_json::Value;
}

/// Serialises a detector's state; the detectors' states hold only plain
/// numbers and vectors, so this cannot fail except on a non-finite float,
/// which serde_json writes as `null` rather than failing.
pub fn save_state<T: Serialize>(state: &T) -> serde_json::Value {
    serde_json::to_value(state).unwrap_or(serde_json::Value::Null)
}

/// The validated configuration of one monitor's detector, by name.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorConfig {
    Decay(decay::Config),
    Threshold(threshold::Config),
    Adwin(adwin::Config),
    PageHinkley(page_hinkley::Config),
    Kswin(kswin::Config),
    Ddm(ddm::Config),
    Eddm(eddm::Config),
    HddmA(hddm_a::Config),
    HddmW(hddm_w::Config),
    Cusum(cusum::Config),
    Ewma(ewma::Config),
}

/// The detector names accepted in `monitor[].detector`.
pub const NAMES: &[&str] = &[
    "decay",
    "threshold",
    "adwin",
    "page-hinkley",
    "kswin",
    "ddm",
    "eddm",
    "hddm-a",
    "hddm-w",
    "cusum",
    "ewma",
];

impl DetectorConfig {
    /// Validates `params` for the detector called `name`.
    ///
    /// Returns `Ok(None)` for an unknown name so the caller can name the key.
    pub fn from_params(
        name: &str,
        direction: Direction,
        params: &mut Params,
    ) -> Result<Option<DetectorConfig>, ParamError> {
        Ok(Some(match name {
            "decay" => DetectorConfig::Decay(decay::Config::from_params(direction, params)?),
            "threshold" => {
                DetectorConfig::Threshold(threshold::Config::from_params(direction, params)?)
            }
            "adwin" => DetectorConfig::Adwin(adwin::Config::from_params(direction, params)?),
            "page-hinkley" => {
                DetectorConfig::PageHinkley(page_hinkley::Config::from_params(direction, params)?)
            }
            "kswin" => DetectorConfig::Kswin(kswin::Config::from_params(direction, params)?),
            "ddm" => DetectorConfig::Ddm(ddm::Config::from_params(direction, params)?),
            "eddm" => DetectorConfig::Eddm(eddm::Config::from_params(direction, params)?),
            "hddm-a" => DetectorConfig::HddmA(hddm_a::Config::from_params(direction, params)?),
            "hddm-w" => DetectorConfig::HddmW(hddm_w::Config::from_params(direction, params)?),
            "cusum" => DetectorConfig::Cusum(cusum::Config::from_params(direction, params)?),
            "ewma" => DetectorConfig::Ewma(ewma::Config::from_params(direction, params)?),
            _ => return Ok(None),
        }))
    }

    pub fn name(&self) -> &'static str {
        match self {
            DetectorConfig::Decay(_) => "decay",
            DetectorConfig::Threshold(_) => "threshold",
            DetectorConfig::Adwin(_) => "adwin",
            DetectorConfig::PageHinkley(_) => "page-hinkley",
            DetectorConfig::Kswin(_) => "kswin",
            DetectorConfig::Ddm(_) => "ddm",
            DetectorConfig::Eddm(_) => "eddm",
            DetectorConfig::HddmA(_) => "hddm-a",
            DetectorConfig::HddmW(_) => "hddm-w",
            DetectorConfig::Cusum(_) => "cusum",
            DetectorConfig::Ewma(_) => "ewma",
        }
    }

    /// Whether the detector sees `ln x` (`log = true`), so its stream's
    /// levels are geometric means.
    pub fn log_values(&self) -> bool {
        match self {
            DetectorConfig::Cusum(c) => c.log,
            DetectorConfig::Ewma(c) => c.log,
            _ => false,
        }
    }

    /// Every parameter with its value, defaults included, as the report shows it.
    pub fn params_json(&self) -> serde_json::Value {
        let mut value = match self {
            DetectorConfig::Decay(c) => save_state(c),
            DetectorConfig::Threshold(c) => save_state(c),
            DetectorConfig::Adwin(c) => save_state(c),
            DetectorConfig::PageHinkley(c) => save_state(c),
            DetectorConfig::Kswin(c) => save_state(c),
            DetectorConfig::Ddm(c) => save_state(c),
            DetectorConfig::Eddm(c) => save_state(c),
            DetectorConfig::HddmA(c) => save_state(c),
            DetectorConfig::HddmW(c) => save_state(c),
            DetectorConfig::Cusum(c) => save_state(c),
            DetectorConfig::Ewma(c) => save_state(c),
        };
        // The direction is the monitor's, shown next to the detector.
        if let Some(map) = value.as_object_mut() {
            map.remove("direction");
        }
        value
    }

    /// A fresh detector instance for a new stream (or after a version reset).
    pub fn build(&self) -> Box<dyn Detector> {
        match self {
            DetectorConfig::Decay(c) => Box::new(decay::Decay::new(c.clone())),
            DetectorConfig::Threshold(c) => Box::new(threshold::Threshold::new(c.clone())),
            DetectorConfig::Adwin(c) => Box::new(adwin::Adwin::new(c.clone())),
            DetectorConfig::PageHinkley(c) => Box::new(page_hinkley::PageHinkley::new(c.clone())),
            DetectorConfig::Kswin(c) => Box::new(kswin::Kswin::new(c.clone())),
            DetectorConfig::Ddm(c) => Box::new(ddm::Ddm::new(c.clone())),
            DetectorConfig::Eddm(c) => Box::new(eddm::Eddm::new(c.clone())),
            DetectorConfig::HddmA(c) => Box::new(hddm_a::HddmA::new(c.clone())),
            DetectorConfig::HddmW(c) => Box::new(hddm_w::HddmW::new(c.clone())),
            DetectorConfig::Cusum(c) => Box::new(cusum::Cusum::new(c.clone())),
            DetectorConfig::Ewma(c) => Box::new(ewma::Ewma::new(c.clone())),
        }
    }

    /// A detector instance from a state written by [`Detector::save`],
    /// checked against this configuration.
    pub fn restore(&self, state: serde_json::Value) -> Result<Box<dyn Detector>, StateError> {
        match self {
            DetectorConfig::Decay(c) => restore_as::<decay::Decay>(c, state),
            DetectorConfig::Threshold(c) => restore_as::<threshold::Threshold>(c, state),
            DetectorConfig::Adwin(c) => restore_as::<adwin::Adwin>(c, state),
            DetectorConfig::PageHinkley(c) => restore_as::<page_hinkley::PageHinkley>(c, state),
            DetectorConfig::Kswin(c) => restore_as::<kswin::Kswin>(c, state),
            DetectorConfig::Ddm(c) => restore_as::<ddm::Ddm>(c, state),
            DetectorConfig::Eddm(c) => restore_as::<eddm::Eddm>(c, state),
            DetectorConfig::HddmA(c) => restore_as::<hddm_a::HddmA>(c, state),
            DetectorConfig::HddmW(c) => restore_as::<hddm_w::HddmW>(c, state),
            DetectorConfig::Cusum(c) => restore_as::<cusum::Cusum>(c, state),
            DetectorConfig::Ewma(c) => restore_as::<ewma::Ewma>(c, state),
        }
    }
}

/// Validates `toml_params` as `monitor[0].params` with a detector's
/// `from_params`, failing on unknown keys as the config loader does.
#[cfg(test)]
pub(crate) fn test_config<C>(
    from_params: fn(Direction, &mut Params) -> Result<C, ParamError>,
    direction: Direction,
    toml_params: &str,
) -> Result<C, ParamError> {
    let table: toml::Table = toml::from_str(toml_params).expect("test params are TOML");
    let mut p = Params::new(table, "monitor[0].params");
    let c = from_params(direction, &mut p)?;
    p.finish(&[])?;
    Ok(c)
}
