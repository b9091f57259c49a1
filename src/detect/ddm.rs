//! `ddm`: the Drift Detection Method (Gama et al. 2004), with river 0.26's
//! `drift.binary.DDM` semantics, defaults and positions.
//!
//! Input: 0/1 values, 1 = error (see [`super::binary`] for `direction` and
//! other values). DDM tracks the error rate `p` since the last reset and its
//! binomial standard deviation `s = sqrt(p (1 − p) / n)`, and remembers
//! `p_min` and `s_min` where `p + s` was lowest. Once more than `warm_start`
//! values have been seen, an update is a warning while
//! `p + s > p_min + warning_threshold · s_min` and a drift when
//! `p + s > p_min + drift_threshold · s_min` (then not a warning). The update
//! after a drift starts from scratch, as river does.
//!
//! Parameters (river's names and defaults): `warm_start` 30,
//! `warning_threshold` 2.0, `drift_threshold` 3.0 (at least
//! `warning_threshold`).
//!
//! Estimates: the change starts right after the update where `p + s` was
//! lowest, the reference DDM compares with; `before` is the error rate up to
//! there (`p_min`), `after` the rate of the values since then, both in the
//! monitored units. On a long stationary stretch the lowest `p + s` can fall
//! some way before the change, which dilutes `after`.
//!
//! Differences from the paper and MOA, as in river: the test uses `>` against
//! the minimum found so far, including on the update that sets it; the
//! minimum is taken over `p + s` with `<=`, so the latest of equal minima
//! wins; there is no minimum number of errors, so a stream that starts with
//! more than `warm_start` zeros drifts on its first error (`s_min` is 0).

use serde::{Deserialize, Serialize};

use super::binary;
use super::{Detector, DetectorState, Direction, Outcome, ParamError, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub warm_start: u64,
    pub warning_threshold: f64,
    pub drift_threshold: f64,
    pub direction: Direction,
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let warm_start = p.int(
            "warm_start",
            30,
            |w| (0..=1 << 40).contains(&w),
            "must be >= 0",
        )? as u64;
        let warning_threshold = p.float("warning_threshold", 2.0, |t| t > 0.0, "must be > 0")?;
        let drift_threshold = p.float("drift_threshold", 3.0, |t| t > 0.0, "must be > 0")?;
        if drift_threshold < warning_threshold {
            return Err(p.error(
                "drift_threshold",
                format!(
                    "must be at least warning_threshold ({warning_threshold}), got {drift_threshold}"
                ),
            ));
        }
        Ok(Config {
            warm_start,
            warning_threshold,
            drift_threshold,
            direction,
        })
    }
}

/// The statistics at the lowest `p + s` seen since the last reset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Minimum {
    p: f64,
    s: f64,
    /// `p + s`, as river keeps it.
    ps: f64,
    /// How many values had been seen then, and their sum.
    n: f64,
    sum: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ddm {
    config: Config,
    /// river's `stats.Mean` of the input: weight and mean.
    n: f64,
    mean: f64,
    /// Sum of the input since the reset, for the `after` estimate.
    sum: f64,
    /// `None` until the warm start is over (river's `ps_min` is then +inf).
    min: Option<Minimum>,
    drift: bool,
    warning: bool,
}

impl Ddm {
    pub fn new(config: Config) -> Ddm {
        Ddm {
            config,
            n: 0.0,
            mean: 0.0,
            sum: 0.0,
            min: None,
            drift: false,
            warning: false,
        }
    }

    /// river's `drift_detected` and `warning_detected` after the last update.
    pub fn flags(&self) -> (bool, bool) {
        (self.drift, self.warning)
    }

    fn reset(&mut self) {
        *self = Ddm::new(self.config.clone());
    }

    /// One update of river's DDM, in its order of floating-point operations.
    fn step(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
        self.sum += x;
        let (p, n) = (self.mean, self.n);
        let s = (p * (1.0 - p) / n).sqrt();
        if n <= self.config.warm_start as f64 {
            return;
        }
        if self.min.is_none_or(|m| p + s <= m.ps) {
            self.min = Some(Minimum {
                p,
                s,
                ps: p + s,
                n,
                sum: self.sum,
            });
        }
        let Some(m) = self.min else { return };
        self.warning = p + s > m.p + self.config.warning_threshold * m.s;
        if p + s > m.p + self.config.drift_threshold * m.s {
            self.drift = true;
            self.warning = false;
        }
    }
}

impl Detector for Ddm {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        let direction = self.config.direction;
        let Some(x) = binary::error_value(x, direction) else {
            return Outcome::None;
        };
        self.step(x);
        binary::outcome(self.drift, self.warning, || {
            let m = self.min.unwrap_or(Minimum {
                p: 0.0,
                s: 0.0,
                ps: 0.0,
                n: 0.0,
                sum: 0.0,
            });
            let since = self.n - m.n;
            let after = if since > 0.0 {
                (self.sum - m.sum) / since
            } else {
                self.mean
            };
            binary::change((since - 1.0).max(0.0) as u64, m.p, after, direction)
        })
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl super::Restore for Ddm {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        // Counts are floats here, as in river: no state can overflow one.
        super::check(self.min.is_none_or(|m| m.n <= self.n), || {
            format!(
                "a minimum at value {:?} of {}",
                self.min.map(|m| m.n),
                self.n
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::binary::parity;
    use proptest::prelude::*;

    fn config(direction: Direction, toml_params: &str) -> Result<Config, ParamError> {
        crate::detect::test_config(Config::from_params, direction, toml_params)
    }

    #[test]
    fn drift_and_warning_positions_equal_rivers() {
        let checked = parity::check(
            include_str!("../../fixtures/parity/ddm.json"),
            &[],
            |direction, p| Ddm::new(Config::from_params(direction, p).unwrap()),
            Ddm::flags,
        );
        assert_eq!(checked, 7 * 3 * 2);
    }

    #[test]
    fn estimates_the_start_and_the_rates_in_monitored_units() {
        // 1000 values of 10% errors, then errors only: watching `correct`
        // (decrease), the rate of correct values falls from 0.9 to 0.
        let mut values: Vec<f64> = (0..1000)
            .map(|i| if i % 10 == 0 { 0.0 } else { 1.0 })
            .collect();
        values.extend(std::iter::repeat_n(0.0, 200));
        let mut d = Ddm::new(config(Direction::Decrease, "").unwrap());
        let (at, change) = values
            .iter()
            .enumerate()
            .find_map(|(i, &x)| match d.update(x, 0) {
                Outcome::Drift(c) => Some((i, c)),
                _ => None,
            })
            .expect("a drift");
        assert_eq!(at, 1020);
        // The minimum of p + s is at the last value of the first part.
        assert_eq!(at - change.lookback as usize, 1000);
        assert!(
            (change.before - 0.9).abs() < 1e-12,
            "before {}",
            change.before
        );
        assert_eq!(change.after, 0.0);
        // The next update starts from scratch.
        assert_eq!(d.update(0.0, 0), Outcome::None);
        assert_eq!(d.n, 1.0);
    }

    #[test]
    fn parameters_are_validated_with_their_key() {
        let e = config(Direction::Increase, "warm_start = -1").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.warm_start");
        let e = config(Direction::Increase, "drift_threshold = 1.5").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.drift_threshold: must be at least warning_threshold (2), got 1.5"
        );
        let e = config(Direction::Increase, "warning_threshold = 0").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.warning_threshold");
        let e = config(Direction::Increase, "delta = 0.1").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.delta");
    }

    proptest! {
        #[test]
        fn save_and_restore_anywhere_gives_the_same_outcomes(
            noise in prop::collection::vec(0.0f64..1.0, 100..3000),
            low in 0.0f64..0.3,
            high in 0.2f64..0.9,
            cut in 0.0f64..1.0,
            decrease in any::<bool>(),
        ) {
            let values = parity::step_stream(&noise, low, high);
            let direction = if decrease { Direction::Decrease } else { Direction::Increase };
            let c = config(direction, "warm_start = 20").unwrap();
            let whole = parity::outcomes_with_cut(Ddm::new(c.clone()), &values, usize::MAX);
            let cut = (cut * values.len() as f64) as usize;
            prop_assert_eq!(parity::outcomes_with_cut(Ddm::new(c), &values, cut), whole);
        }
    }
}
