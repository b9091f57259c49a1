//! `hddm-a`: HDDM with the moving-average test (Frías-Blanco et al. 2014),
//! with river 0.26's `drift.binary.HDDM_A` semantics, defaults and positions.
//!
//! Input: 0/1 values, 1 = error (see [`super::binary`]; any value in [0, 1]
//! works, the Hoeffding bounds hold for bounded values). HDDM-A keeps the mean
//! of everything since the reset and a cut point: the prefix whose mean plus
//! its Hoeffding bound is lowest. A drift is declared when the mean since the
//! reset exceeds the cut point's mean by more than the bound at
//! `drift_confidence`, a warning by more than the bound at
//! `warning_confidence`. The update after a drift starts from scratch.
//!
//! Parameters (river's names and defaults): `drift_confidence` 0.001,
//! `warning_confidence` 0.005 (both in (0, 1), drift at most warning). River's
//! `two_sided_test` is the monitor's `direction = "both"`: a second cut point
//! (highest mean minus bound) also detects a fall of the error rate. `increase`
//! and `decrease` are one-sided, like river's default.
//!
//! Estimates: the change starts at the first value after the cut point of the
//! side that alarmed; `before` is the mean up to the cut, `after` the mean of
//! the values since, in the monitored units.
//!
//! Differences from the paper and MOA, as in river: the bounds use the count
//! of values since the reset, and in the two-sided test a fall can raise a
//! drift while a rise keeps a warning (mmon reports the drift).

use serde::{Deserialize, Serialize};

use super::binary;
use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub drift_confidence: f64,
    pub warning_confidence: f64,
    pub direction: Direction,
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let (drift_confidence, warning_confidence) = confidences(p)?;
        Ok(Config {
            drift_confidence,
            warning_confidence,
            direction,
        })
    }
}

/// `drift_confidence` and `warning_confidence`, validated (shared with HDDM-W).
pub(crate) fn confidences(p: &mut Params) -> Result<(f64, f64), ParamError> {
    let open = |c: f64| c > 0.0 && c < 1.0;
    let drift = p.float("drift_confidence", 0.001, open, "must be in (0, 1)")?;
    let warning = p.float("warning_confidence", 0.005, open, "must be in (0, 1)")?;
    if drift > warning {
        return Err(p.error(
            "drift_confidence",
            format!("must be at most warning_confidence ({warning}), got {drift}"),
        ));
    }
    Ok((drift, warning))
}

/// river's `stats.Mean`: weight and mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Mean {
    n: f64,
    mean: f64,
}

impl Mean {
    const EMPTY: Mean = Mean { n: 0.0, mean: 0.0 };

    fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
    }
}

/// Which cut point raised the current flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Side {
    Rise,
    Fall,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HddmA {
    config: Config,
    /// `ln(1 / drift_confidence)`, `ln(2 / drift_confidence)` and
    /// `ln(2 / warning_confidence)`, computed once as river computes them.
    ln_bound: f64,
    ln_drift: f64,
    ln_warning: f64,
    z: Mean,
    x_min: Mean,
    x_max: Mean,
    drift: Option<Side>,
    warning: Option<Side>,
}

impl HddmA {
    pub fn new(config: Config) -> HddmA {
        HddmA {
            ln_bound: (1.0 / config.drift_confidence).ln(),
            ln_drift: (2.0 / config.drift_confidence).ln(),
            ln_warning: (2.0 / config.warning_confidence).ln(),
            config,
            z: Mean::EMPTY,
            x_min: Mean::EMPTY,
            x_max: Mean::EMPTY,
            drift: None,
            warning: None,
        }
    }

    /// river's `drift_detected` and `warning_detected` after the last update.
    pub fn flags(&self) -> (bool, bool) {
        (self.drift.is_some(), self.warning.is_some())
    }

    fn hoeffding_bound(&self, n: f64) -> f64 {
        (1.0 / (2.0 * n) * self.ln_bound).sqrt()
    }

    /// Whether the mean since the reset differs from the cut's by the bound
    /// for a confidence whose `ln(2 / confidence)` is `ln`.
    fn changed(&self, cut: Mean, ln: f64, side: Side) -> bool {
        if cut.n == self.z.n {
            return false;
        }
        let m = (self.z.n - cut.n) / cut.n * (1.0 / self.z.n);
        let eps = (m / 2.0 * ln).sqrt();
        match side {
            Side::Rise => self.z.mean - cut.mean >= eps,
            Side::Fall => cut.mean - self.z.mean >= eps,
        }
    }

    /// One update of river's HDDM_A, in its order of floating-point operations.
    fn step(&mut self, x: f64) {
        if self.drift.is_some() {
            *self = HddmA::new(self.config.clone());
        }
        self.z.update(x);
        if self.x_min.n == 0.0 {
            self.x_min = self.z;
        }
        if self.x_max.n == 0.0 {
            self.x_max = self.z;
        }
        let eps_z = self.hoeffding_bound(self.z.n);
        let eps_x = self.hoeffding_bound(self.x_min.n);
        if self.x_min.mean + eps_x >= self.z.mean + eps_z {
            self.x_min = self.z;
        }
        let eps_x = self.hoeffding_bound(self.x_max.n);
        if self.x_max.mean - eps_x <= self.z.mean - eps_z {
            self.x_max = self.z;
        }
        (self.drift, self.warning) = if self.changed(self.x_min, self.ln_drift, Side::Rise) {
            (Some(Side::Rise), None)
        } else if self.changed(self.x_min, self.ln_warning, Side::Rise) {
            (None, Some(Side::Rise))
        } else {
            (None, None)
        };
        if self.config.direction == Direction::Both {
            if self.changed(self.x_max, self.ln_drift, Side::Fall) {
                self.drift = Some(Side::Fall);
            } else if self.changed(self.x_max, self.ln_warning, Side::Fall) {
                self.warning = Some(Side::Fall);
            }
        }
    }

    fn estimate(&self, side: Side) -> Change {
        let cut = match side {
            Side::Rise => self.x_min,
            Side::Fall => self.x_max,
        };
        let since = self.z.n - cut.n;
        let after = (self.z.n * self.z.mean - cut.n * cut.mean) / since;
        binary::change((since - 1.0) as u64, cut.mean, after, self.config.direction)
    }
}

impl Detector for HddmA {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        let Some(x) = binary::error_value(x, self.config.direction) else {
            return Outcome::None;
        };
        self.step(x);
        let (drift, warning) = (self.drift, self.warning);
        binary::outcome(drift.is_some(), warning.is_some(), || {
            self.estimate(drift.or(warning).unwrap_or(Side::Rise))
        })
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl super::Restore for HddmA {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        // The logarithms derive from the configuration: recompute them.
        let fresh = HddmA::new(config.clone());
        self.config = fresh.config;
        self.ln_bound = fresh.ln_bound;
        self.ln_drift = fresh.ln_drift;
        self.ln_warning = fresh.ln_warning;
        let z = self.z.n;
        super::check(self.x_min.n <= z && self.x_max.n <= z, || {
            format!(
                "cut points at values {} and {} of {z}",
                self.x_min.n, self.x_max.n
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::binary::parity;
    use crate::detect::synthetic::Rng;
    use proptest::prelude::*;

    fn config(direction: Direction, toml_params: &str) -> Result<Config, ParamError> {
        crate::detect::test_config(Config::from_params, direction, toml_params)
    }

    #[test]
    fn drift_and_warning_positions_equal_rivers() {
        let checked = parity::check(
            include_str!("../../fixtures/parity/hddm_a.json"),
            &[],
            |direction, p| HddmA::new(Config::from_params(direction, p).unwrap()),
            HddmA::flags,
        );
        // Two of the four settings are two-sided, run once; the others twice.
        assert_eq!(checked, 7 * (2 * 2 + 2));
    }

    #[test]
    fn estimates_the_cut_and_the_rates_in_monitored_units() {
        let mut rng = Rng::new(5);
        let values: Vec<f64> = (0..3000)
            .map(|i| 1.0 - rng.bit(if i < 2000 { 0.1 } else { 0.3 }))
            .collect();
        let mut d = HddmA::new(config(Direction::Decrease, "").unwrap());
        let (at, change) = values
            .iter()
            .enumerate()
            .find_map(|(i, &x)| match d.update(x, 0) {
                Outcome::Drift(c) => Some((i, c)),
                _ => None,
            })
            .expect("a drift");
        assert!(at > 2000 && at < 2300, "drift at {at}");
        let start = at - change.lookback as usize;
        assert!((1900..=2100).contains(&start), "start {start}");
        assert!(
            (change.before - 0.9).abs() < 0.02,
            "before {}",
            change.before
        );
        // Few values follow the cut when HDDM-A fires early (8 errors in 11
        // here): `after` is their mean, a noisy but honest estimate.
        assert!(change.after < 0.8, "after {}", change.after);
    }

    #[test]
    fn both_directions_detect_a_fall_of_the_error_rate() {
        let mut rng = Rng::new(6);
        let values: Vec<f64> = (0..4000)
            .map(|i| rng.bit(if i < 2000 { 0.4 } else { 0.1 }))
            .collect();
        let run = |direction| {
            let mut d = HddmA::new(config(direction, "").unwrap());
            values
                .iter()
                .position(|&x| matches!(d.update(x, 0), Outcome::Drift(_)))
        };
        assert_eq!(run(Direction::Increase), None);
        let at = run(Direction::Both).expect("a drift");
        assert!(at > 2000 && at < 2300, "drift at {at}");
    }

    #[test]
    fn parameters_are_validated_with_their_key() {
        let e = config(Direction::Increase, "drift_confidence = 0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.drift_confidence: must be in (0, 1), got 0"
        );
        let e = config(Direction::Increase, "drift_confidence = 0.01").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.drift_confidence: must be at most warning_confidence (0.005), got 0.01"
        );
        let e = config(Direction::Increase, "two_sided_test = true").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.two_sided_test");
    }

    proptest! {
        #[test]
        fn save_and_restore_anywhere_gives_the_same_outcomes(
            noise in prop::collection::vec(0.0f64..1.0, 100..3000),
            low in 0.0f64..0.3,
            high in 0.2f64..0.9,
            cut in 0.0f64..1.0,
            both in any::<bool>(),
        ) {
            let values = parity::step_stream(&noise, low, high);
            let direction = if both { Direction::Both } else { Direction::Decrease };
            let c = config(direction, "").unwrap();
            let whole = parity::outcomes_with_cut(HddmA::new(c.clone()), &values, usize::MAX);
            let cut = (cut * values.len() as f64) as usize;
            prop_assert_eq!(parity::outcomes_with_cut(HddmA::new(c), &values, cut), whole);
        }
    }
}
