//! `cusum`: the two-sided tabular CUSUM (Page 1954; Montgomery's form), with
//! `k` and `h` in standard deviations of the stream's own reference.
//!
//! Input: any numbers. The reference (mean μ and standard deviation σ, see
//! [`super::reference`]) is learned from the first `warmup` values, of
//! `ln(x)` with `log = true`. Then each value becomes `z = (x − μ) / σ` and
//! feeds the upper sum `S⁺ = max(0, S⁺ + z − k)` and the lower sum
//! `S⁻ = max(0, S⁻ − z − k)`; `direction` picks the sums that run (increase:
//! S⁺, decrease: S⁻, both: either). A sum above `h` is a drift. There is no
//! warning level. After a drift both sums restart at zero and the reference is
//! learned again from the next `warmup` values, so a lasting shift is reported
//! once and becomes the new normal.
//!
//! Parameters and defaults: `k` 0.5 (half the shift, in σ, that the chart is
//! tuned to catch fastest), `h` 5, `warmup` 100, `log` false: the textbook
//! chart, which on normal data raises a false alarm about every 465 values per
//! side and catches a 1σ shift in about 10 values, a 2σ shift in about 4. For
//! a long per-record stream raise `h` (each +1 multiplies the false-alarm
//! interval by about e; `h` 20 with `k` 0.5 is roughly one per 10⁹ values, at a
//! 1σ shift's delay of about 40) and the warmup; the module tests measure these.
//!
//! For latencies, `log = true, k = 0.5, h = 25, warmup = 1000` (direction
//! `increase`) is the quiet setting measured for the embedded default: on
//! `gen_metrics.py` logs (log-normal latency, σ 0.45 in logs, rounded to whole
//! milliseconds) no false alarm in 600M simulated values over 1200 freshly
//! learned references, none on six stationary 1M-record logs, and a ×1.5
//! median step (0.9σ in logs) caught within about 60 values. Without `log`,
//! the skew of the raw latencies makes the same chart raise false alarms.
//!
//! Estimates: the change starts at the first value after the alarming sum last
//! left zero; `before` is the mean of the raw warmup values, `after` the mean
//! of the raw values since the start.

use serde::{Deserialize, Serialize};

use super::reference::{Learning, Reference, Run, Warmup};
use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub k: f64,
    pub h: f64,
    pub warmup: u64,
    pub log: bool,
    pub direction: Direction,
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let k = p.float("k", 0.5, |k| k >= 0.0, "must be >= 0")?;
        let h = p.float("h", 5.0, |h| h > 0.0, "must be > 0")?;
        let Learning { warmup, log } = Learning::from_params(p, 100)?;
        Ok(Config {
            k,
            h,
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

/// One side's cumulative sum and the stretch since it left zero.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct Side {
    sum: f64,
    run: Run,
}

impl Side {
    /// Adds `step` (the value's excess over `k` on this side) and says
    /// whether the sum now exceeds `h`.
    fn update(&mut self, step: f64, x: f64, h: f64) -> bool {
        self.sum = (self.sum + step).max(0.0);
        self.run.track(self.sum > 0.0, x);
        self.sum > h
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cusum {
    config: Config,
    warmup: Warmup,
    /// `None` while the reference is being learned.
    reference: Option<Reference>,
    upper: Side,
    lower: Side,
}

impl Cusum {
    pub fn new(config: Config) -> Cusum {
        Cusum {
            config,
            warmup: Warmup::default(),
            reference: None,
            upper: Side::default(),
            lower: Side::default(),
        }
    }

    fn restart(&mut self) {
        self.reference = None;
        self.upper = Side::default();
        self.lower = Side::default();
    }
}

impl Detector for Cusum {
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

impl Cusum {
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
            for side in [&mut self.upper, &mut self.lower] {
                if side.run.len > 0 {
                    side.run.track(true, x);
                }
            }
            return Outcome::None;
        };
        let z = reference.z(y);
        let (k, h, direction) = (c.k, c.h, c.direction);
        let up = direction != Direction::Decrease && self.upper.update(z - k, x, h);
        let down = direction != Direction::Increase && self.lower.update(-z - k, x, h);
        if !(up || down) {
            return Outcome::None;
        }
        // When both sides alarm at once, report the one further past `h`.
        let side = if up && (!down || self.upper.sum >= self.lower.sum) {
            self.upper
        } else {
            self.lower
        };
        let change: Change = side.run.change(&reference);
        self.restart();
        Outcome::Drift(change)
    }
}

impl super::Restore for Cusum {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        self.warmup.check(config.warmup)?;
        super::check_count("upper.run.len", self.upper.run.len)?;
        super::check_count("lower.run.len", self.lower.run.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::synthetic::{Rng, false_alarms, mean_delay};
    use proptest::prelude::*;

    fn config(direction: Direction, toml_params: &str) -> Result<Config, ParamError> {
        crate::detect::test_config(Config::from_params, direction, toml_params)
    }

    fn drifts(c: &Config, values: &[f64]) -> Vec<(usize, Change)> {
        let mut d = Cusum::new(c.clone());
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
        // k = 0.5, h = 5 on one side: Montgomery's table gives a zero-state
        // run length of 10.4 for a 1σ step, 4.0 for 2σ, and 465 in control.
        // A warmup of 1000 here keeps the reference close to the truth; as
        // each false alarm is followed by one, 100k values hold about
        // 100k / (465 + 1000) = 68 of them.
        let c = config(Direction::Increase, "warmup = 1000").unwrap();
        let new = || Cusum::new(c.clone());
        let d1 = mean_delay(new, 1.0, 1000, 300);
        let d2 = mean_delay(new, 2.0, 1000, 300);
        assert!((9.0..12.0).contains(&d1), "1σ delay {d1}");
        assert!((3.5..4.6).contains(&d2), "2σ delay {d2}");
        let fa = false_alarms(new(), 100_000, 7);
        assert!((35..110).contains(&fa), "false alarms {fa}");
    }

    #[test]
    fn a_high_h_is_quiet_for_long_and_still_fast() {
        let c = config(Direction::Both, "h = 20\nwarmup = 1000").unwrap();
        let new = || Cusum::new(c.clone());
        for seed in 1..=3 {
            assert_eq!(false_alarms(new(), 100_000, seed), 0);
        }
        let d1 = mean_delay(new, 1.0, 1000, 100);
        let d2 = mean_delay(new, 2.0, 1000, 100);
        assert!((35.0..50.0).contains(&d1), "1σ delay {d1}");
        assert!((11.0..16.0).contains(&d2), "2σ delay {d2}");
    }

    /// Latencies as `gen_metrics.py` writes them: log-normal around
    /// `median` (σ 0.45 in logs), rounded to whole milliseconds, at least 1.
    fn latencies(rng: &mut Rng, median: f64, n: usize, step_at: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let m = if i >= step_at { median * 1.5 } else { median };
                ((m.ln() + 0.45 * rng.normal()).exp() + 0.5)
                    .floor()
                    .max(1.0)
            })
            .collect()
    }

    #[test]
    fn the_recommended_latency_setting_is_quiet_and_catches_a_step() {
        let c = config(
            Direction::Increase,
            "k = 0.5\nh = 25\nwarmup = 1000\nlog = true",
        )
        .unwrap();
        let mut rng = Rng::new(42);
        for median in [12.0, 38.0, 85.0] {
            let quiet = latencies(&mut rng, median, 300_000, usize::MAX);
            assert!(
                drifts(&c, &quiet).is_empty(),
                "false alarm at median {median}"
            );
            let step = latencies(&mut rng, median, 20_000, 10_000);
            let got = drifts(&c, &step);
            assert_eq!(got.len(), 1, "median {median}");
            let (at, change) = got[0];
            assert!(
                (10_000..10_200).contains(&at),
                "median {median}: drift at {at}"
            );
            let ratio = change.after / change.before;
            assert!((1.2..1.8).contains(&ratio), "after/before {ratio}");
        }
    }

    #[test]
    fn change_start_is_where_the_sum_left_zero_and_estimates_are_raw_means() {
        // A constant-ish reference, then a clean step: the sum leaves zero on
        // the first shifted value.
        let mut values: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        values.extend(std::iter::repeat_n(14.0, 20));
        let c = config(Direction::Increase, "").unwrap();
        let got = drifts(&c, &values);
        let (at, change) = got[0];
        // sd of the ±1 warmup is sqrt(100/99); z of 14 is ~3.98; the sum
        // passes 5 on the second shifted value.
        assert_eq!(at, 101);
        assert_eq!(change.lookback, 1);
        assert_eq!(change.before, 10.0);
        assert_eq!(change.after, 14.0);
        // The reference is learned again: the new level is not a drift.
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn direction_picks_the_sides() {
        let mut values: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        values.extend(std::iter::repeat_n(6.0, 20));
        assert!(drifts(&config(Direction::Increase, "").unwrap(), &values).is_empty());
        let down = drifts(&config(Direction::Decrease, "").unwrap(), &values);
        assert_eq!(down[0].0, 101);
        assert_eq!(down[0].1.after, 6.0);
        assert_eq!(
            drifts(&config(Direction::Both, "").unwrap(), &values)[0].0,
            101
        );
    }

    #[test]
    fn log_mode_sees_a_multiplicative_step_at_any_scale() {
        // Log-normal values (σ 0.45) with the median ×1.5 after 3000: the same
        // positions whatever the unit.
        let mut rng = Rng::new(3);
        let base: Vec<f64> = (0..6000)
            .map(|i| (0.45 * rng.normal()).exp() * if i >= 3000 { 1.5 } else { 1.0 })
            .collect();
        let c = config(Direction::Increase, "h = 20\nwarmup = 1000\nlog = true").unwrap();
        let ms: Vec<f64> = base.iter().map(|v| v * 40.0).collect();
        let s: Vec<f64> = base.iter().map(|v| v * 0.04).collect();
        let a = drifts(&c, &ms);
        let b = drifts(&c, &s);
        assert_eq!(
            a.iter().map(|d| d.0).collect::<Vec<_>>(),
            b.iter().map(|d| d.0).collect::<Vec<_>>()
        );
        assert_eq!(a.len(), 1);
        assert!(a[0].0 > 3000 && a[0].0 < 3100, "drift at {}", a[0].0);
        let ratio = a[0].1.after / a[0].1.before;
        assert!(ratio > 1.2 && ratio < 2.0, "after/before {ratio}");
    }

    #[test]
    fn log_mode_skips_zeros_but_counts_their_positions() {
        let mut values: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        values.extend([30.0, 0.0, 30.0, 30.0]);
        // ln 30 is ~11σ above the logs of 9 and 11: two of them pass h = 20.
        let c = config(Direction::Increase, "h = 20\nlog = true").unwrap();
        let got = drifts(&c, &values);
        assert_eq!(got[0].0, 102);
        assert_eq!(got[0].1.lookback, 2);
        assert_eq!(got[0].1.after, 20.0);
    }

    #[test]
    fn parameters_are_validated_with_their_key() {
        let e = config(Direction::Both, "h = 0").unwrap_err();
        assert_eq!(e.to_string(), "monitor[0].params.h: must be > 0, got 0");
        let e = config(Direction::Both, "k = -1").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.k");
        let e = config(Direction::Both, "warmup = 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "monitor[0].params.warmup: must be in 2..=10000000, got 1"
        );
        let e = config(Direction::Both, "log = 1").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.log");
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
            let c = Config { k: 0.5, h: 4.0, warmup: 20, log, direction: Direction::Both };
            let run = |cut: usize| {
                let mut d = Cusum::new(c.clone());
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
            let c = Config { k: 0.5, h: 4.0, warmup: 20, log, direction: Direction::Both };
            let (mut plain, mut logged) = (Cusum::new(c.clone()), Cusum::new(c));
            for &x in &values {
                let y = crate::episode::transform(log, x);
                prop_assert_eq!(plain.update(x, 0), logged.update_logged(x, y, 0));
            }
        }
    }
}
