//! `hddm-w`: HDDM with the weighted-average test (Frías-Blanco et al. 2014),
//! with river 0.26's `drift.binary.HDDM_W` semantics, defaults and positions.
//!
//! Input: 0/1 values, 1 = error (see [`super::binary`]; any value in [0, 1]
//! works, McDiarmid's bound holds for bounded values). HDDM-W follows
//! exponentially weighted means (weight `lambda` on the newest value): one of
//! everything since the reset, and, on each side of a cut point, one of the
//! values before the cut (a copy of the total at the cut) and one of the values
//! after it. The cut moves to the current update whenever the total's mean plus
//! its bound (at `drift_confidence`) reaches a new low. A drift is declared
//! when the mean after the cut exceeds the mean before it by more than the
//! bound at `drift_confidence`, a warning by more than the bound at
//! `warning_confidence`. The update after a drift starts from scratch.
//!
//! Parameters (river's defaults): `drift_confidence` 0.001,
//! `warning_confidence` 0.005 (both in (0, 1), drift at most warning), and
//! `lambda` 0.05 (river's `lambda_val`, in (0, 1]). River's `two_sided_test` is
//! the monitor's `direction = "both"`: a mirrored cut point (highest mean
//! minus bound) also detects a fall of the error rate.
//!
//! Estimates: the change starts at the first value after the cut point of the
//! side that alarmed; `before` is the weighted mean up to the cut, `after` the
//! weighted mean of the values since, in the monitored units (weighted means,
//! as the detector sees them, so they lean towards the newest values). The cut
//! sits where the weighted mean dipped lowest, which on a noisy stream can be
//! some hundreds of values before the change.
//!
//! Differences from the paper and MOA, as in river: a weighted mean starts at
//! its first value, and in the two-sided test a fall can raise a drift while a
//! rise keeps a warning (mmon reports the drift).

use serde::{Deserialize, Serialize};

use super::binary;
use super::hddm_a::confidences;
use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub drift_confidence: f64,
    pub warning_confidence: f64,
    pub lambda: f64,
    pub direction: Direction,
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let (drift_confidence, warning_confidence) = confidences(p)?;
        let lambda = p.float("lambda", 0.05, |l| l > 0.0 && l <= 1.0, "must be in (0, 1]")?;
        Ok(Config {
            drift_confidence,
            warning_confidence,
            lambda,
            direction,
        })
    }
}

/// river's `SampleInfo`: an exponentially weighted mean and its independent
/// bound condition, plus a count of the values it has seen (for the estimate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Sample {
    ewma: f64,
    ibc: f64,
    n: u64,
}

impl Sample {
    const EMPTY: Sample = Sample {
        ewma: 0.0,
        ibc: 1.0,
        n: 0,
    };

    fn is_init(&self) -> bool {
        self.n > 0
    }
}

/// Constants derived from the configuration, computed as river computes them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Constants {
    lambda_sq: f64,
    /// `(1 − lambda) ** 2`, C's pow as in Python.
    c_lambda_sq: f64,
    one_minus_lambda: f64,
    /// `ln(1 / drift_confidence)` and `ln(1 / warning_confidence)`.
    ln_drift: f64,
    ln_warning: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HddmW {
    config: Config,
    k: Constants,
    total: Sample,
    s1_incr: Sample,
    s2_incr: Sample,
    s1_decr: Sample,
    s2_decr: Sample,
    /// river's cut points; `None` stands for their initial +inf and −inf.
    incr_cutpoint: Option<f64>,
    decr_cutpoint: Option<f64>,
    drift: Option<Side>,
    warning: Option<Side>,
}

/// Which cut point raised the current flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Side {
    Rise,
    Fall,
}

impl HddmW {
    pub fn new(config: Config) -> HddmW {
        let lambda = config.lambda;
        // An exponent the compiler cannot see keeps `powf` the C pow that
        // Python's `**` calls, rather than a multiplication.
        let c_lambda_sq = (1.0 - lambda).powf(std::hint::black_box(2.0));
        let k = Constants {
            lambda_sq: lambda * lambda,
            c_lambda_sq,
            one_minus_lambda: 1.0 - lambda,
            ln_drift: (1.0 / config.drift_confidence).ln(),
            ln_warning: (1.0 / config.warning_confidence).ln(),
        };
        HddmW {
            config,
            k,
            total: Sample::EMPTY,
            s1_incr: Sample::EMPTY,
            s2_incr: Sample::EMPTY,
            s1_decr: Sample::EMPTY,
            s2_decr: Sample::EMPTY,
            incr_cutpoint: None,
            decr_cutpoint: None,
            drift: None,
            warning: None,
        }
    }

    /// river's `drift_detected` and `warning_detected` after the last update.
    pub fn flags(&self) -> (bool, bool) {
        (self.drift.is_some(), self.warning.is_some())
    }

    fn update_sample(&self, s: &mut Sample, x: f64) {
        s.ewma = if s.is_init() {
            self.config.lambda * x + self.k.one_minus_lambda * s.ewma
        } else {
            x
        };
        s.ibc = self.k.lambda_sq + self.k.c_lambda_sq * s.ibc;
        s.n += 1;
    }

    fn mcdiarmid_bound(ibc: f64, ln: f64) -> f64 {
        (ibc * ln / 2.0).sqrt()
    }

    /// Whether `after`'s mean exceeds `before`'s by the bound.
    fn changed(before: &Sample, after: &Sample, ln: f64) -> bool {
        if !(before.is_init() && after.is_init()) {
            return false;
        }
        let bound = Self::mcdiarmid_bound(before.ibc + after.ibc, ln);
        after.ewma - before.ewma > bound
    }

    /// One update of river's HDDM_W, in its order of floating-point operations.
    fn step(&mut self, x: f64) {
        if self.drift.is_some() {
            *self = HddmW::new(self.config.clone());
        }
        let mut total = self.total;
        self.update_sample(&mut total, x);
        self.total = total;
        let eps = Self::mcdiarmid_bound(self.total.ibc, self.k.ln_drift);

        if self
            .incr_cutpoint
            .is_none_or(|cut| self.total.ewma + eps < cut)
        {
            self.incr_cutpoint = Some(self.total.ewma + eps);
            self.s1_incr = self.total;
            self.s2_incr = Sample::EMPTY;
        } else {
            let mut s2 = self.s2_incr;
            self.update_sample(&mut s2, x);
            self.s2_incr = s2;
        }
        (self.drift, self.warning) = if Self::changed(&self.s1_incr, &self.s2_incr, self.k.ln_drift)
        {
            (Some(Side::Rise), None)
        } else if Self::changed(&self.s1_incr, &self.s2_incr, self.k.ln_warning) {
            (None, Some(Side::Rise))
        } else {
            (None, None)
        };

        if self
            .decr_cutpoint
            .is_none_or(|cut| self.total.ewma - eps > cut)
        {
            self.decr_cutpoint = Some(self.total.ewma - eps);
            self.s1_decr = self.total;
            self.s2_decr = Sample::EMPTY;
        } else {
            let mut s2 = self.s2_decr;
            self.update_sample(&mut s2, x);
            self.s2_decr = s2;
        }
        if self.config.direction == Direction::Both {
            if Self::changed(&self.s2_decr, &self.s1_decr, self.k.ln_drift) {
                self.drift = Some(Side::Fall);
            } else if Self::changed(&self.s2_decr, &self.s1_decr, self.k.ln_warning) {
                self.warning = Some(Side::Fall);
            }
        }
    }

    fn estimate(&self, side: Side) -> Change {
        let (before, after) = match side {
            Side::Rise => (self.s1_incr, self.s2_incr),
            Side::Fall => (self.s1_decr, self.s2_decr),
        };
        binary::change(
            after.n.saturating_sub(1),
            before.ewma,
            after.ewma,
            self.config.direction,
        )
    }
}

impl Detector for HddmW {
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

impl super::Restore for HddmW {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        // The constants derive from the configuration: recompute them.
        let fresh = HddmW::new(config.clone());
        self.config = fresh.config;
        self.k = fresh.k;
        for (name, s) in [
            ("total", &self.total),
            ("s1_incr", &self.s1_incr),
            ("s2_incr", &self.s2_incr),
            ("s1_decr", &self.s1_decr),
            ("s2_decr", &self.s2_decr),
        ] {
            super::check_count(&format!("{name}.n"), s.n)?;
        }
        Ok(())
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
            include_str!("../../fixtures/parity/hddm_w.json"),
            &[("lambda_val", "lambda")],
            |direction, p| HddmW::new(Config::from_params(direction, p).unwrap()),
            HddmW::flags,
        );
        assert_eq!(checked, 7 * (2 * 2 + 2));
    }

    #[test]
    fn estimates_the_cut_and_the_weighted_rates_in_monitored_units() {
        let mut rng = Rng::new(5);
        let values: Vec<f64> = (0..3000)
            .map(|i| 1.0 - rng.bit(if i < 2000 { 0.1 } else { 0.5 }))
            .collect();
        let c = config(
            Direction::Decrease,
            "drift_confidence = 0.0001\nwarning_confidence = 0.001",
        )
        .unwrap();
        let mut d = HddmW::new(c);
        let (at, change) = values
            .iter()
            .enumerate()
            .find_map(|(i, &x)| match d.update(x, 0) {
                Outcome::Drift(c) => Some((i, c)),
                _ => None,
            })
            .expect("a drift");
        assert!(at > 2000 && at < 2200, "drift at {at} {change:?}");
        let start = at - change.lookback as usize;
        // The cut falls where the weighted mean plus its bound was lowest,
        // a dip of the noise some way before the change here (at 1639).
        assert!((1500..=2050).contains(&start), "start {start}");
        assert!(change.before > 0.8, "before {}", change.before);
        assert!(change.after < 0.7, "after {}", change.after);
    }

    #[test]
    fn both_directions_detect_a_fall_of_the_error_rate() {
        let mut rng = Rng::new(6);
        let values: Vec<f64> = (0..4000)
            .map(|i| rng.bit(if i < 2000 { 0.5 } else { 0.05 }))
            .collect();
        let run = |direction| {
            let mut d = HddmW::new(
                config(
                    direction,
                    "drift_confidence = 0.0001\nwarning_confidence = 0.001",
                )
                .unwrap(),
            );
            values
                .iter()
                .position(|&x| matches!(d.update(x, 0), Outcome::Drift(_)))
        };
        assert_eq!(run(Direction::Increase), None);
        let at = run(Direction::Both).expect("a drift");
        assert!(at > 2000 && at < 2200, "drift at {at}");
    }

    #[test]
    fn parameters_are_validated_with_their_key() {
        let e = config(Direction::Increase, "lambda = 0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.lambda: must be in (0, 1], got 0"
        );
        let e = config(Direction::Increase, "warning_confidence = 1").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.warning_confidence");
        let e = config(Direction::Increase, "lambda_val = 0.1").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.lambda_val");
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
            let whole = parity::outcomes_with_cut(HddmW::new(c.clone()), &values, usize::MAX);
            let cut = (cut * values.len() as f64) as usize;
            prop_assert_eq!(parity::outcomes_with_cut(HddmW::new(c), &values, cut), whole);
        }
    }
}
