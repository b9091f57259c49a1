//! `eddm`: the Early Drift Detection Method (Baena-García et al. 2006), with
//! river 0.26's `drift.binary.EDDM` semantics, defaults and positions.
//!
//! Input: 0/1 values, 1 = error (see [`super::binary`]; EDDM counts only an
//! exact 1 as an error). EDDM watches the distance between consecutive errors:
//! its running mean `p'` and standard deviation `s'` (Welford, n − 1). On each
//! error after more than `warm_start` values, if `p' + 2s'` is a new maximum it
//! is remembered; otherwise, once more than `warm_start` errors have been
//! seen, the ratio `(p' + 2s') / max` below `beta` is a drift and below
//! `alpha` a warning, and a ratio at or above `alpha` clears the warning. As
//! in river the warning state only changes on such an error, so it holds
//! over the updates in between and each of them reports a warning. The update
//! after a drift starts from scratch.
//!
//! Parameters (river's names and defaults): `warm_start` 30, `alpha` 0.95,
//! `beta` 0.9 (0 < beta <= alpha < 1).
//!
//! Estimates: the change starts right after the error where `p' + 2s'` last
//! reached its maximum, the reference EDDM compares with; `before` is the
//! error rate up to that error, `after` the rate since, both in the monitored
//! units. On a long stationary stretch the maximum can lie well before the
//! change (the spread of the distances does not shrink as the stream goes
//! on), which dilutes `after`; the detection itself is river's.
//!
//! Differences from the paper and MOA, as in river: `warm_start` counts values
//! (for the maximum) and errors (for the test); the first distance is counted
//! from the reset, not from a previous error; a drift does not clear a warning
//! raised earlier (mmon reports the drift).

use serde::{Deserialize, Serialize};

use super::binary;
use super::{Detector, DetectorState, Direction, Outcome, ParamError, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub warm_start: u64,
    pub alpha: f64,
    pub beta: f64,
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
        let alpha = p.float("alpha", 0.95, |a| a > 0.0 && a < 1.0, "must be in (0, 1)")?;
        let beta = p.float("beta", 0.9, |b| b > 0.0 && b < 1.0, "must be in (0, 1)")?;
        if beta > alpha {
            return Err(p.error(
                "beta",
                format!("must be at most alpha ({alpha}), got {beta}"),
            ));
        }
        Ok(Config {
            warm_start,
            alpha,
            beta,
            direction,
        })
    }
}

/// Where `p' + 2s'` reached its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Maximum {
    p2s: f64,
    /// Values and errors seen up to and including that error.
    n: u64,
    errors: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Eddm {
    config: Config,
    /// Values seen since the reset.
    n: u64,
    /// Position (in `n`) of the last error, 0 for none.
    last_error: u64,
    errors: u64,
    /// river's `stats.Var` of the distances: weight, mean, sum of squares.
    dist_n: f64,
    dist_mean: f64,
    dist_m2: f64,
    /// `None` while river's maximum is still its initial −1.
    max: Option<Maximum>,
    drift: bool,
    warning: bool,
}

impl Eddm {
    pub fn new(config: Config) -> Eddm {
        Eddm {
            config,
            n: 0,
            last_error: 0,
            errors: 0,
            dist_n: 0.0,
            dist_mean: 0.0,
            dist_m2: 0.0,
            max: None,
            drift: false,
            warning: false,
        }
    }

    /// river's `drift_detected` and `warning_detected` after the last update.
    pub fn flags(&self) -> (bool, bool) {
        (self.drift, self.warning)
    }

    /// One update of river's EDDM, in its order of floating-point operations.
    fn step(&mut self, x: f64) {
        if self.drift {
            *self = Eddm::new(self.config.clone());
        }
        self.n += 1;
        if x != 1.0 {
            return;
        }
        self.errors += 1;
        let distance = (self.n - self.last_error) as f64;
        let old_mean = self.dist_mean;
        self.dist_n += 1.0;
        self.dist_mean += (1.0 / self.dist_n) * (distance - self.dist_mean);
        self.dist_m2 += (distance - old_mean) * (distance - self.dist_mean);
        if self.n > self.config.warm_start {
            let p = self.dist_mean;
            let var = if self.dist_n > 1.0 {
                self.dist_m2 / (self.dist_n - 1.0)
            } else {
                0.0
            };
            // river takes `var ** 0.5`, C's pow; an exponent the compiler
            // cannot see keeps it from becoming a sqrt, which may round
            // differently.
            let s = var.powf(std::hint::black_box(0.5));
            let p2s = p + 2.0 * s;
            match self.max {
                Some(m) if p2s <= m.p2s => {
                    if self.errors > self.config.warm_start {
                        let level = p2s / m.p2s;
                        if level < self.config.beta {
                            self.drift = true;
                        } else {
                            self.warning = level < self.config.alpha;
                        }
                    }
                }
                _ => {
                    self.max = Some(Maximum {
                        p2s,
                        n: self.n,
                        errors: self.errors,
                    })
                }
            }
        }
        self.last_error = self.n;
    }
}

impl Detector for Eddm {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        let direction = self.config.direction;
        let Some(x) = binary::error_value(x, direction) else {
            return Outcome::None;
        };
        self.step(x);
        binary::outcome(self.drift, self.warning, || {
            let m = self.max.unwrap_or(Maximum {
                p2s: 0.0,
                n: 0,
                errors: 0,
            });
            let before = if m.n > 0 {
                m.errors as f64 / m.n as f64
            } else {
                0.0
            };
            let since = self.n - m.n;
            let after = if since > 0 {
                (self.errors - m.errors) as f64 / since as f64
            } else {
                before
            };
            binary::change(since.saturating_sub(1), before, after, direction)
        })
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl super::Restore for Eddm {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        super::check_count("n", self.n)?;
        super::check(self.errors <= self.n && self.last_error <= self.n, || {
            format!(
                "{} errors, the last at {}, in {} values",
                self.errors, self.last_error, self.n
            )
        })?;
        if let Some(m) = self.max {
            super::check(
                m.n <= self.n && m.errors <= self.errors && m.errors <= m.n,
                || {
                    format!(
                        "a maximum at value {} with {} errors, of {} values with {} errors",
                        m.n, m.errors, self.n, self.errors
                    )
                },
            )?;
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
            include_str!("../../fixtures/parity/eddm.json"),
            &[],
            |direction, p| Eddm::new(Config::from_params(direction, p).unwrap()),
            Eddm::flags,
        );
        assert_eq!(checked, 7 * 3 * 2);
    }

    #[test]
    fn estimates_the_start_and_the_rates_in_monitored_units() {
        // 5% errors for 3000 values, then 40%: watching `correct` (decrease),
        // the rate of correct values falls from about 0.95 to 0.6.
        let mut rng = Rng::new(11);
        let values: Vec<f64> = (0..4000)
            .map(|i| 1.0 - rng.bit(if i < 3000 { 0.05 } else { 0.4 }))
            .collect();
        // river's example settings: the defaults alarm often on noise.
        let mut d = Eddm::new(config(Direction::Decrease, "alpha = 0.8\nbeta = 0.75").unwrap());
        let (at, change) = values
            .iter()
            .enumerate()
            .filter_map(|(i, &x)| match d.update(x, 0) {
                Outcome::Drift(c) => Some((i, c)),
                _ => None,
            })
            // EDDM's maximum, taken from few distances early on, can alarm
            // on noise at a low error rate; the change is the test.
            .find(|&(i, _)| i >= 3000)
            .expect("a drift");
        assert!(at > 3000 && at < 3400, "drift at {at} {change:?}");
        // The reference maximum lies in the stationary stretch; the rates
        // before it and since are in the monitored units.
        let start = at - change.lookback as usize;
        assert!(start < 3000, "start {start}");
        assert!(
            (change.before - 0.95).abs() < 0.02,
            "before {}",
            change.before
        );
        assert!(
            change.after < 0.92 && change.after > 0.6,
            "after {}",
            change.after
        );
    }

    #[test]
    fn parameters_are_validated_with_their_key() {
        let e = config(Direction::Increase, "alpha = 1.5").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.alpha: must be in (0, 1), got 1.5"
        );
        let e = config(Direction::Increase, "alpha = 0.8\nbeta = 0.85").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.beta: must be at most alpha (0.8), got 0.85"
        );
        let e = config(Direction::Increase, "warm_start = 1.5").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.warm_start");
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
            let c = config(direction, "warm_start = 10").unwrap();
            let whole = parity::outcomes_with_cut(Eddm::new(c.clone()), &values, usize::MAX);
            let cut = (cut * values.len() as f64) as usize;
            prop_assert_eq!(parity::outcomes_with_cut(Eddm::new(c), &values, cut), whole);
        }
    }
}
