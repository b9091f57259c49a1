//! `ewma`: the EWMA control chart (Roberts 1959; Lucas & Saccucci 1990), with
//! its limits in standard deviations of the stream's own reference.
//!
//! Input: any numbers. The reference (mean μ and standard deviation σ, see
//! [`super::reference`]) is learned from the first `warmup` values, of
//! `ln(x)` with `log = true`. Then each value becomes `z = (x − μ) / σ` and the
//! statistic `E = lambda · z + (1 − lambda) · E` (starting at 0) is compared
//! with the exact limits `± L · sqrt(lambda / (2 − lambda) · (1 − (1 −
//! lambda)^(2t)))` after `t` values, which widen to their asymptote as the
//! chart fills. `direction` picks the limits that alarm (increase: the upper,
//! decrease: the lower, both: either). Passing a limit is a drift; there is no
//! warning level. After a drift the statistic restarts at 0 and the reference
//! is learned again from the next `warmup` values.
//!
//! Parameters and defaults: `lambda` 0.2, `L` 3, `warmup` 100, `log` false: the
//! textbook chart, which on normal data raises a false alarm about every 500
//! values (both sides) and catches a 1σ shift in about 10 values. Smaller
//! `lambda` with a wider `L` remembers longer and catches small shifts better;
//! the module tests measure delays and false alarms.
//!
//! Estimates: the change starts at the first value of the current stretch in
//! which the statistic has stayed on the alarming side of the centre line (an
//! EWMA leaves the centre line when a shift begins, up to noise); `before` is
//! the mean of the raw warmup values, `after` the mean of the raw values since
//! the start.

use serde::{Deserialize, Serialize};

use super::reference::{Learning, Reference, Run, Warmup};
use super::{Detector, DetectorState, Direction, Outcome, ParamError, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub lambda: f64,
    #[serde(rename = "L")]
    pub l: f64,
    pub warmup: u64,
    pub log: bool,
    pub direction: Direction,
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let lambda = p.float("lambda", 0.2, |l| l > 0.0 && l <= 1.0, "must be in (0, 1]")?;
        let l = p.float("L", 3.0, |l| l > 0.0, "must be > 0")?;
        let Learning { warmup, log } = Learning::from_params(p, 100)?;
        Ok(Config {
            lambda,
            l,
            warmup,
            log,
            direction,
        })
    }

    fn learning(&self) -> Learning {
        Learning {
            warmup: self.warmup,
            log: self.log,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ewma {
    config: Config,
    warmup: Warmup,
    /// `None` while the reference is being learned.
    reference: Option<Reference>,
    /// The EWMA of the standardised values.
    stat: f64,
    /// `(1 − lambda)^(2t)`, for the exact limits.
    decay: f64,
    above: Run,
    below: Run,
}

impl Ewma {
    pub fn new(config: Config) -> Ewma {
        Ewma {
            config,
            warmup: Warmup::default(),
            reference: None,
            stat: 0.0,
            decay: 1.0,
            above: Run::default(),
            below: Run::default(),
        }
    }

    fn restart(&mut self) {
        *self = Ewma::new(self.config.clone());
    }
}

impl Detector for Ewma {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        let y = self.config.learning().transform(x);
        self.step(x, y)
    }

    fn update_logged(&mut self, x: f64, ln_x: Option<f64>, _time_ns: i64) -> Outcome {
        let y = self.config.learning().transform_logged(x, ln_x);
        self.step(x, y)
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl Ewma {
    /// Feeds `x`, seen as `y` (`None`: skipped in log mode).
    #[inline]
    fn step(&mut self, x: f64, y: Option<f64>) -> Outcome {
        let c = &self.config;
        let Some(reference) = self.reference else {
            if let Some(y) = y {
                self.reference = self.warmup.learn(y, x, c.warmup);
            }
            return Outcome::None;
        };
        let Some(y) = y else {
            // Skipped in log mode: only the stretches grow.
            for run in [&mut self.above, &mut self.below] {
                if run.len > 0 {
                    run.track(true, x);
                }
            }
            return Outcome::None;
        };
        let lambda = c.lambda;
        self.stat = lambda * reference.z(y) + (1.0 - lambda) * self.stat;
        self.decay *= (1.0 - lambda) * (1.0 - lambda);
        let limit = c.l * (lambda / (2.0 - lambda) * (1.0 - self.decay)).sqrt();
        self.above.track(self.stat > 0.0, x);
        self.below.track(self.stat < 0.0, x);
        let direction = c.direction;
        let run = if direction != Direction::Decrease && self.stat > limit {
            self.above
        } else if direction != Direction::Increase && self.stat < -limit {
            self.below
        } else {
            return Outcome::None;
        };
        let change = run.change(&reference);
        self.restart();
        Outcome::Drift(change)
    }
}

impl super::Restore for Ewma {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        self.warmup.check(config.warmup)?;
        super::check((0.0..=1.0).contains(&self.decay), || {
            format!("decay {} is not in [0, 1]", self.decay)
        })?;
        super::check_count("above.len", self.above.len)?;
        super::check_count("below.len", self.below.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Change;
    use crate::detect::synthetic::{Rng, false_alarms, mean_delay};
    use proptest::prelude::*;

    fn config(direction: Direction, toml_params: &str) -> Result<Config, ParamError> {
        crate::detect::test_config(Config::from_params, direction, toml_params)
    }

    fn drifts(c: &Config, values: &[f64]) -> Vec<(usize, Change)> {
        let mut d = Ewma::new(c.clone());
        values
            .iter()
            .enumerate()
            .filter_map(|(i, &x)| match d.update(x, 0) {
                Outcome::Drift(ch) => Some((i, ch)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn textbook_defaults_delay_and_false_alarms() {
        // lambda 0.2, L 3: Lucas & Saccucci's tables give about 10 values for
        // a 1σ step and under 4 for 2σ (zero state, exact limits make the
        // early response a little faster), ~560 in control for both sides.
        // With a warmup of 1000 after each alarm, 100k values hold about
        // 100k / (560 + 1000) = 64 false alarms.
        let c = config(Direction::Both, "warmup = 1000").unwrap();
        let new = || Ewma::new(c.clone());
        let d1 = mean_delay(new, 1.0, 1000, 300);
        let d2 = mean_delay(new, 2.0, 1000, 300);
        assert!((7.0..12.0).contains(&d1), "1σ delay {d1}");
        assert!((2.5..4.5).contains(&d2), "2σ delay {d2}");
        let fa = false_alarms(new(), 100_000, 7);
        assert!((35..110).contains(&fa), "false alarms {fa}");
    }

    #[test]
    fn a_long_memory_chart_is_quiet_and_still_fast() {
        let c = config(Direction::Both, "lambda = 0.05\nL = 4.5\nwarmup = 1000").unwrap();
        let new = || Ewma::new(c.clone());
        for seed in 1..=3 {
            assert_eq!(false_alarms(new(), 100_000, seed), 0);
        }
        let d1 = mean_delay(new, 1.0, 1000, 100);
        let d2 = mean_delay(new, 2.0, 1000, 100);
        assert!(d1 < 60.0, "1σ delay {d1}");
        assert!(d2 < 20.0, "2σ delay {d2}");
    }

    #[test]
    fn change_start_is_where_the_statistic_left_the_centre_line() {
        let mut values: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        values.extend(std::iter::repeat_n(13.0, 20));
        let got = drifts(&config(Direction::Increase, "").unwrap(), &values);
        let (at, change) = got[0];
        assert!(at > 100 && at < 110, "drift at {at}");
        assert_eq!(at - change.lookback as usize, 100);
        assert_eq!(change.before, 10.0);
        assert_eq!(change.after, 13.0);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn direction_picks_the_limits() {
        let mut values: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        values.extend(std::iter::repeat_n(7.0, 20));
        assert!(drifts(&config(Direction::Increase, "").unwrap(), &values).is_empty());
        let down = drifts(&config(Direction::Decrease, "").unwrap(), &values);
        assert_eq!(down[0].1.after, 7.0);
        assert_eq!(
            drifts(&config(Direction::Both, "").unwrap(), &values)[0].0,
            down[0].0
        );
    }

    #[test]
    fn log_mode_is_scale_free() {
        let mut rng = Rng::new(4);
        let base: Vec<f64> = (0..6000)
            .map(|i| (0.45 * rng.normal()).exp() * if i >= 3000 { 1.5 } else { 1.0 })
            .collect();
        let c = config(
            Direction::Increase,
            "lambda = 0.05\nL = 4.5\nwarmup = 1000\nlog = true",
        )
        .unwrap();
        let a = drifts(&c, &base.iter().map(|v| v * 85.0).collect::<Vec<_>>());
        let b = drifts(&c, &base.iter().map(|v| v * 0.085).collect::<Vec<_>>());
        assert_eq!(
            a.iter().map(|d| d.0).collect::<Vec<_>>(),
            b.iter().map(|d| d.0).collect::<Vec<_>>()
        );
        assert_eq!(a.len(), 1);
        assert!(a[0].0 > 3000 && a[0].0 < 3100, "drift at {}", a[0].0);
    }

    #[test]
    fn parameters_are_validated_with_their_key() {
        let e = config(Direction::Both, "lambda = 1.5").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.lambda: must be in (0, 1], got 1.5"
        );
        let e = config(Direction::Both, "L = 0").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.L");
        let e = config(Direction::Both, "l = 3").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.l");
        let e = config(Direction::Both, "warmup = 0").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.warmup");
    }

    #[test]
    fn params_json_names_l_as_configured() {
        let v = serde_json::to_value(config(Direction::Both, "").unwrap()).unwrap();
        assert_eq!(v["L"], 3.0);
        assert_eq!(v["lambda"], 0.2);
    }

    proptest! {
        #[test]
        fn save_and_restore_anywhere_gives_the_same_outcomes(
            noise in prop::collection::vec(-3.0f64..3.0, 50..2000),
            shift in -3.0f64..3.0,
            cut in 0.0f64..1.0,
            log in any::<bool>(),
        ) {
            let half = noise.len() / 2;
            let values: Vec<f64> = noise
                .iter()
                .enumerate()
                .map(|(i, v)| 20.0 + v + if i >= half { shift } else { 0.0 })
                .collect();
            let c = Config { lambda: 0.2, l: 3.0, warmup: 20, log, direction: Direction::Both };
            let run = |cut: usize| {
                let mut d = Ewma::new(c.clone());
                let mut out = Vec::new();
                for (i, &x) in values.iter().enumerate() {
                    if i == cut {
                        let text = serde_json::to_string(&d).unwrap();
                        d = serde_json::from_str(&text).unwrap();
                    }
                    out.push(d.update(x, 0));
                }
                out
            };
            let cut = (cut * values.len() as f64) as usize;
            prop_assert_eq!(run(cut), run(usize::MAX));
        }

        #[test]
        fn the_pipelines_logged_value_gives_the_same_outcomes(
            values in prop::collection::vec(-5.0f64..60.0, 50..1500),
            log in any::<bool>(),
        ) {
            let c = Config { lambda: 0.2, l: 3.0, warmup: 20, log, direction: Direction::Both };
            let (mut plain, mut logged) = (Ewma::new(c.clone()), Ewma::new(c));
            for &x in &values {
                let y = crate::episode::transform(log, x);
                prop_assert_eq!(plain.update(x, 0), logged.update_logged(x, y, 0));
            }
        }
    }
}
