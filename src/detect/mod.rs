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

use serde::{Deserialize, Serialize};

pub use crate::config::table::{ParamError, Params};

/// Why a saved detector state cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The checkpoint holds the state of another detector than the one
    /// configured for this monitor.
    #[error("the saved state is of detector {saved:?}, the configuration's is {configured:?}")]
    Mismatch {
        configured: &'static str,
        saved: &'static str,
    },
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
pub(crate) trait Restore: Detector + Sized + 'static {
    type Config;

    /// Replaces the saved parameters with `config`'s, recomputes what is
    /// derived from them, and checks that the state is one a detector of
    /// this configuration can be in (sizes, indices, counts), so that no
    /// later update can index out of bounds or overflow.
    fn adopt(&mut self, config: &Self::Config) -> Result<(), StateError>;
}

fn restore_as<D: Restore>(config: &D::Config, mut d: D) -> Result<D, StateError> {
    d.adopt(config)?;
    Ok(d)
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

    /// [`Detector::update`], given `ln_x`: `ln x` if `x` is positive and
    /// finite, as the pipeline computes it for its own sums of a `log = true`
    /// monitor, so a detector that sees `ln x` need not compute it again.
    fn update_logged(&mut self, x: f64, ln_x: Option<f64>, time_ns: i64) -> Outcome {
        let _ = ln_x;
        self.update(x, time_ns)
    }

    /// The whole state, for a checkpoint.
    fn save(&self) -> DetectorState;
}

/// One detector's update, compiled on its own: were every detector's
/// update inlined into [`DetectorState`]'s `match`, each call would pay the
/// register saving of the largest (detector benchmarks ran 10–15% slower).
/// The `match` is inlined where it is called and jumps here.
#[inline(never)]
fn update_one<D: Detector>(d: &mut D, x: f64, time_ns: i64) -> Outcome {
    d.update(x, time_ns)
}

/// [`update_one`] for [`Detector::update_logged`].
#[inline(never)]
fn update_logged_one<D: Detector>(d: &mut D, x: f64, ln_x: Option<f64>, time_ns: i64) -> Outcome {
    d.update_logged(x, ln_x, time_ns)
}

/// Declares every detector once: its name in `monitor[].detector`, its
/// variant, its validated configuration and its state (the detector struct,
/// which serialises whole).
///
/// From this one table come [`DetectorConfig`], [`DetectorState`],
/// [`NAMES`] (in this order, which the config errors list) and every
/// by-name dispatch; adding a detector is a line here plus its module.
macro_rules! detectors {
    ($($name:literal => $variant:ident($config:ty, $detector:ty),)+) => {
        /// The validated configuration of one monitor's detector, by name.
        #[derive(Debug, Clone, PartialEq)]
        pub enum DetectorConfig {
            $($variant($config),)+
        }

        /// One detector's whole state, as a checkpoint holds it (SPEC §6):
        /// tagged with the detector's name, so a state is only ever read
        /// back as the detector that wrote it.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub enum DetectorState {
            $(#[serde(rename = $name)] $variant($detector),)+
        }

        /// The detector names accepted in `monitor[].detector`.
        pub const NAMES: &[&str] = &[$($name,)+];

        $(impl From<$detector> for DetectorState {
            fn from(d: $detector) -> DetectorState {
                DetectorState::$variant(d)
            }
        })+

        /// A detector held by value: the pipeline's detectors are
        /// `DetectorState`s, so an update is a `match`, not a call through
        /// a pointer to a separate allocation.
        impl Detector for DetectorState {
            #[inline]
            fn update(&mut self, x: f64, time_ns: i64) -> Outcome {
                match self {
                    $(DetectorState::$variant(d) => update_one(d, x, time_ns),)+
                }
            }

            #[inline]
            fn update_logged(&mut self, x: f64, ln_x: Option<f64>, time_ns: i64) -> Outcome {
                match self {
                    $(DetectorState::$variant(d) => update_logged_one(d, x, ln_x, time_ns),)+
                }
            }

            fn save(&self) -> DetectorState {
                self.clone()
            }
        }

        impl DetectorState {
            /// The name of the detector this state is of.
            pub fn name(&self) -> &'static str {
                match self {
                    $(DetectorState::$variant(_) => $name,)+
                }
            }
        }

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
                    $($name => DetectorConfig::$variant(<$config>::from_params(direction, params)?),)+
                    _ => return Ok(None),
                }))
            }

            pub fn name(&self) -> &'static str {
                match self {
                    $(DetectorConfig::$variant(_) => $name,)+
                }
            }

            /// Every parameter with its value, defaults included, as the report shows it.
            pub fn params_json(&self) -> serde_json::Value {
                // The configurations hold only plain numbers, strings and
                // options, so serialising cannot fail.
                let mut value = match self {
                    $(DetectorConfig::$variant(c) => {
                        serde_json::to_value(c).unwrap_or(serde_json::Value::Null)
                    })+
                };
                // The direction is the monitor's, shown next to the detector.
                if let Some(map) = value.as_object_mut() {
                    map.remove("direction");
                }
                value
            }

            /// A fresh detector instance for a new stream (or after a version reset).
            pub fn build(&self) -> DetectorState {
                match self {
                    $(DetectorConfig::$variant(c) => DetectorState::$variant(<$detector>::new(c.clone())),)+
                }
            }

            /// A detector instance from a state written by [`Detector::save`],
            /// checked against this configuration: a state of another detector
            /// is [`StateError::Mismatch`], one this configuration cannot be in
            /// [`StateError::Invalid`].
            pub fn restore(&self, state: DetectorState) -> Result<DetectorState, StateError> {
                match (self, state) {
                    $((DetectorConfig::$variant(c), DetectorState::$variant(d)) => {
                        restore_as(c, d).map(DetectorState::$variant)
                    })+
                    (c, s) => Err(StateError::Mismatch {
                        configured: c.name(),
                        saved: s.name(),
                    }),
                }
            }
        }
    };
}

detectors! {
    "decay" => Decay(decay::Config, decay::Decay),
    "threshold" => Threshold(threshold::Config, threshold::Threshold),
    "adwin" => Adwin(adwin::Config, adwin::Adwin),
    "page-hinkley" => PageHinkley(page_hinkley::Config, page_hinkley::PageHinkley),
    "kswin" => Kswin(kswin::Config, kswin::Kswin),
    "ddm" => Ddm(ddm::Config, ddm::Ddm),
    "eddm" => Eddm(eddm::Config, eddm::Eddm),
    "hddm-a" => HddmA(hddm_a::Config, hddm_a::HddmA),
    "hddm-w" => HddmW(hddm_w::Config, hddm_w::HddmW),
    "cusum" => Cusum(cusum::Config, cusum::Cusum),
    "ewma" => Ewma(ewma::Config, ewma::Ewma),
}

impl DetectorConfig {
    /// Whether the detector sees `ln x` (`log = true`), so its stream's
    /// levels are geometric means.
    pub fn log_values(&self) -> bool {
        match self {
            DetectorConfig::Cusum(c) => c.log,
            DetectorConfig::Ewma(c) => c.log,
            _ => false,
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
