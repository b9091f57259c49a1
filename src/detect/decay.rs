//! `decay`: the original accuracy-decay rule, made sound (SPEC §3).
//!
//! The reference is the mean of the first `window` values after the start or
//! a reset; the current level is the mean of the last `window` values, the
//! newest included, so it overlaps the reference until `window` values have
//! passed. A drift is declared when the current mean has moved `threshold` or
//! more (absolute) in the bad direction, with 1e-9 of slack so that a drop that
//! equals the threshold in decimal arithmetic counts despite binary rounding.
//! On a drift the current window is cleared and the reference is learned again
//! from the next `window` values. The change start is the first value of the
//! current window.
//!
//! Memory is one ring of `window` values. The running sum is recomputed from
//! the ring every `window` updates so rounding errors cannot accumulate over a
//! long stream.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};

/// Slack for floating-point rounding in the threshold comparison.
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub window: usize,
    pub threshold: f64,
    pub direction: Direction,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window: 50,
            threshold: 0.05,
            direction: Direction::Decrease,
        }
    }
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let window = p.int(
            "window",
            50,
            |w| (1..=10_000_000).contains(&w),
            "must be in 1..=10000000",
        )?;
        let threshold = p.float("threshold", 0.05, |t| t > 0.0, "must be > 0")?;
        Ok(Config {
            window: window as usize,
            threshold,
            direction,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decay {
    config: Config,
    /// Sum of the values seen while learning the reference.
    reference_sum: f64,
    reference_count: usize,
    /// The last `window` values.
    recent: VecDeque<f64>,
    recent_sum: f64,
    /// Updates since the running sum was last recomputed exactly.
    since_resum: usize,
}

impl Decay {
    pub fn new(config: Config) -> Decay {
        Decay {
            recent: VecDeque::with_capacity(config.window.min(1 << 16)),
            config,
            reference_sum: 0.0,
            reference_count: 0,
            recent_sum: 0.0,
            since_resum: 0,
        }
    }

    fn push_recent(&mut self, x: f64) {
        self.recent.push_back(x);
        self.recent_sum += x;
        if self.recent.len() > self.config.window
            && let Some(old) = self.recent.pop_front()
        {
            self.recent_sum -= old;
        }
        self.since_resum += 1;
        if self.since_resum >= self.config.window {
            self.recent_sum = self.recent.iter().sum();
            self.since_resum = 0;
        }
    }
}

impl Detector for Decay {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        let w = self.config.window;
        self.push_recent(x);
        if self.reference_count < w {
            self.reference_sum += x;
            self.reference_count += 1;
            return Outcome::None;
        }
        let reference = self.reference_sum / w as f64;
        let current = self.recent_sum / self.recent.len() as f64;
        let moved = match self.config.direction {
            Direction::Decrease => reference - current,
            Direction::Increase => current - reference,
            Direction::Both => (reference - current).abs(),
        };
        if moved + EPSILON < self.config.threshold {
            return Outcome::None;
        }
        let change = Change {
            lookback: (self.recent.len() - 1) as u64,
            before: reference,
            after: current,
        };
        self.recent.clear();
        self.recent_sum = 0.0;
        self.since_resum = 0;
        self.reference_sum = 0.0;
        self.reference_count = 0;
        Outcome::Drift(change)
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl super::Restore for Decay {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        let w = config.window;
        super::check(self.reference_count <= w, || {
            format!("reference_count {} > window {w}", self.reference_count)
        })?;
        super::check(self.recent.len() <= w, || {
            format!("{} recent values > window {w}", self.recent.len())
        })?;
        super::check(self.since_resum <= w, || {
            format!("since_resum {} > window {w}", self.since_resum)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: Config, values: impl IntoIterator<Item = f64>) -> Vec<(usize, Change)> {
        let mut d = Decay::new(config);
        values
            .into_iter()
            .enumerate()
            .filter_map(|(i, x)| match d.update(x, 0) {
                Outcome::Drift(c) => Some((i, c)),
                _ => None,
            })
            .collect()
    }

    /// The original scenario: accuracy 0.95 falling by 0.002 per record.
    ///
    /// The reference is the mean of values 0..=49, 0.95 - 0.002 * 24.5. At
    /// index i >= 49 the current window holds values i-49..=i, whose mean is
    /// 0.95 - 0.002 * (i - 24.5). The drop is 0.002 * (i - 49), which reaches
    /// the 0.05 threshold exactly (in decimal) at i = 74; the change starts at
    /// the first value of that window, index 25. Then the reference is learned
    /// again from 75..=124 and the same arithmetic gives the next drift at 149.
    #[test]
    fn linear_decay_fires_where_the_rule_says() {
        let values = (0..200).map(|i| 0.95 - 0.002 * i as f64);
        let drifts = run(Config::default(), values);
        let at: Vec<usize> = drifts.iter().map(|(i, _)| *i).collect();
        assert_eq!(at, vec![74, 149]);
        let (_, c) = drifts[0];
        assert_eq!(c.lookback, 49);
        assert!((c.before - 0.901).abs() < 1e-12);
        assert!((c.after - 0.851).abs() < 1e-12);
    }

    #[test]
    fn quiet_on_a_constant_stream_and_on_a_rise_when_watching_decrease() {
        assert!(run(Config::default(), std::iter::repeat_n(0.9, 10_000)).is_empty());
        let rising = (0..500).map(|i| 0.5 + 0.001 * i as f64);
        assert!(run(Config::default(), rising).is_empty());
    }

    #[test]
    fn increase_and_both_mirror_the_rule() {
        let inc = Config {
            direction: Direction::Increase,
            ..Config::default()
        };
        let rising: Vec<f64> = (0..200).map(|i| 0.05 + 0.002 * i as f64).collect();
        assert_eq!(run(inc, rising.clone()).first().map(|d| d.0), Some(74));
        let both = Config {
            direction: Direction::Both,
            ..Config::default()
        };
        assert_eq!(run(both, rising).first().map(|d| d.0), Some(74));
    }

    #[test]
    fn save_and_restore_mid_stream_gives_the_same_drifts() {
        let values: Vec<f64> = (0..400).map(|i| 0.95 - 0.0015 * i as f64).collect();
        let whole = run(Config::default(), values.clone());
        let mut d = Decay::new(Config::default());
        let mut got = Vec::new();
        for (i, &x) in values.iter().enumerate() {
            if i == 137 {
                let state = serde_json::to_value(&d).unwrap();
                d = serde_json::from_value(state).unwrap();
            }
            if let Outcome::Drift(c) = d.update(x, 0) {
                got.push((i, c));
            }
        }
        assert_eq!(got, whole);
    }
}
