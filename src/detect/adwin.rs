//! `adwin`: ADWIN, adaptive windowing (Bifet & Gavaldà 2007), as river 0.26
//! `drift.ADWIN` computes it (SPEC §3).
//!
//! ADWIN keeps the longest recent window in which the mean looks constant.
//! Every `clock` updates, once the window is longer than `grace_period`, it
//! tries every cut of the window into an older and a newer part (both at
//! least `min_window_length` long, cuts at bucket boundaries only) and drops
//! the oldest bucket while some cut's difference of means exceeds the
//! Hoeffding-style bound of the paper, computed with the window's variance
//! and the confidence `delta`. Dropping anything is a drift. The input is any
//! real value; 0/1 error or `correct` streams work too.
//!
//! The window is summarised by exponential histograms (ADWIN2): each level
//! holds up to `max_buckets` buckets of 2^level values, so memory and one
//! check cost O(`max_buckets` · log window). Insertion, bucket merging,
//! deletion, the running variance and the cut test follow river 0.26.1 step
//! by step, in the same order of floating-point operations, so drift positions
//! are exactly river's (`fixtures/parity/adwin.json` holds the proof). As in
//! river, the detector starts afresh after a drift (river resets it on the
//! update after; resetting at once gives the same positions).
//!
//! The change is estimated at the cut ADWIN made: it starts at the first value
//! of the window kept after the cut; `before` is the mean of the dropped
//! values and `after` the mean of the kept ones. ADWIN reacts to changes in
//! both directions; with `direction = "decrease"` or `"increase"` it still
//! runs and resets exactly like river, but a drift whose `before`/`after`
//! contradicts the direction is returned as no outcome.
//!
//! Differences from the paper and MOA are river's: cuts are tested from the
//! oldest bucket to the newest, one bucket is dropped per passing test and
//! the scan restarts, the bound uses `min_window_length` in the harmonic
//! mean, and the detector is fully reset after a drift. One difference from
//! river: `max_buckets` must be at least 2, because river's
//! bucket list can run empty at the old end with `max_buckets = 1` and then
//! panics (seen with river 0.26.1).
//!
//! For `clock = 1` on long windows the cut scan dominates, so each cut is
//! first screened by a division-free necessary condition with a wide safety
//! margin; only cuts that pass it get river's exact test. The screen never
//! rejects a cut that river's test would accept (see [`Window::may_cut`]),
//! which the parity fixtures and a property test check.

use std::cmp::Ordering;
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Change, Detector, Direction, Outcome, ParamError, Params, save_state};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub delta: f64,
    pub clock: u32,
    pub max_buckets: usize,
    pub min_window_length: u32,
    pub grace_period: u32,
    pub direction: Direction,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            delta: 0.002,
            clock: 32,
            max_buckets: 5,
            min_window_length: 5,
            grace_period: 10,
            direction: Direction::Both,
        }
    }
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let delta = p.float("delta", 0.002, |d| d > 0.0 && d < 1.0, "must be in (0, 1)")?;
        let clock = p.int(
            "clock",
            32,
            |c| (1..=1_000_000).contains(&c),
            "must be in 1..=1000000",
        )?;
        let max_buckets = p.int(
            "max_buckets",
            5,
            |m| (2..=1000).contains(&m),
            "must be in 2..=1000",
        )?;
        let min_window_length = p.int(
            "min_window_length",
            5,
            |m| (1..=1_000_000).contains(&m),
            "must be in 1..=1000000",
        )?;
        let grace_period = p.int(
            "grace_period",
            10,
            |g| (0..=1_000_000_000).contains(&g),
            "must be in 0..=1000000000",
        )?;
        Ok(Config {
            delta,
            clock: clock as u32,
            max_buckets: max_buckets as usize,
            min_window_length: min_window_length as u32,
            grace_period: grace_period as u32,
            direction,
        })
    }
}

/// The sum and the sum of squared deviations of 2^level values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket(f64, f64);

/// ADWIN's window: river's `AdaptiveWindowing`, with the same fields in the
/// same floating-point types.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Window {
    /// `levels[i]` holds buckets of 2^i values, oldest first: a ring buffer,
    /// as buckets leave at the old end and arrive at the new one.
    levels: Vec<VecDeque<Bucket>>,
    total: f64,
    variance: f64,
    width: f64,
    tick: u64,
}

/// What one check dropped: the sum and the count of the values cut off.
struct Cut {
    total: f64,
    width: f64,
}

impl Window {
    fn new() -> Window {
        Window {
            levels: vec![VecDeque::new()],
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            tick: 0,
        }
    }

    fn insert(&mut self, x: f64, max_buckets: usize) {
        self.levels[0].push_back(Bucket(x, 0.0));
        self.width += 1.0;
        let mut incremental_variance = 0.0;
        if self.width > 1.0 {
            let d = x - self.total / (self.width - 1.0);
            incremental_variance = (self.width - 1.0) * d * d / self.width;
        }
        self.variance += incremental_variance;
        self.total += x;
        self.compress(max_buckets);
    }

    /// Merges the two oldest buckets of every level that overflowed.
    fn compress(&mut self, max_buckets: usize) {
        let mut level = 0;
        while self.levels[level].len() > max_buckets {
            let n = (1u64 << level) as f64;
            // river divides by n; n is a power of two, so multiplying by its
            // (exact) reciprocal rounds identically, and is cheaper.
            let n_recip = 1.0 / n;
            let buckets = &mut self.levels[level];
            let (Some(Bucket(t0, v0)), Some(Bucket(t1, v1))) =
                (buckets.pop_front(), buckets.pop_front())
            else {
                unreachable!("an overflowing level holds at least 3 buckets")
            };
            let (mu0, mu1) = (t0 * n_recip, t1 * n_recip);
            let merged = Bucket(t0 + t1, v0 + v1 + n * 0.5 * (mu0 - mu1) * (mu0 - mu1));
            if level + 1 == self.levels.len() {
                self.levels.push(VecDeque::with_capacity(max_buckets + 1));
            }
            self.levels[level + 1].push_back(merged);
            level += 1;
        }
    }

    /// Drops the oldest bucket; returns its sum and its count.
    fn delete_oldest(&mut self) -> (f64, f64) {
        let last = self.levels.len() - 1;
        let n = (1u64 << last) as f64;
        let Bucket(u, v) = self.levels[last][0];
        let mu = u / n;
        self.width -= n;
        self.total -= u;
        let mu_window = self.total / self.width;
        self.variance -=
            v + n * self.width * (mu - mu_window) * (mu - mu_window) / (n + self.width);
        self.levels[last].pop_front();
        if self.levels[last].is_empty() && last > 0 {
            self.levels.pop();
        }
        (u, n)
    }

    /// river's `detect_change`: on the clock, drops old buckets while some
    /// cut splits the window into parts with different means.
    fn check(&mut self, c: &Config) -> Option<Cut> {
        self.tick += 1;
        if !self.tick.is_multiple_of(u64::from(c.clock)) || self.width <= f64::from(c.grace_period)
        {
            return None;
        }
        let mut cut = Cut {
            total: 0.0,
            width: 0.0,
        };
        while self.find_cut(c) {
            let (u, n) = self.delete_oldest();
            cut.total += u;
            cut.width += n;
        }
        (cut.width > 0.0).then_some(cut)
    }

    /// Whether some cut passes river's test, scanning from the oldest bucket.
    fn find_cut(&self, c: &Config) -> bool {
        let min_len = f64::from(c.min_window_length);
        // river computes these for every cut; they only change with the width.
        let delta_prime = (2.0 * self.width.ln() / c.delta).ln();
        let var_per_value = self.variance / self.width;
        let screen = Screen::new(delta_prime, var_per_value, min_len);
        let (mut n0, mut n1) = (0.0, self.width);
        let (mut u0, mut u1) = (0.0, self.total);
        for (level, buckets) in self.levels.iter().enumerate().rev() {
            let size = (1u64 << level) as f64;
            for (k, &Bucket(t, _)) in buckets.iter().enumerate() {
                n0 += size;
                n1 -= size;
                u0 += t;
                u1 -= t;
                if level == 0 && k == buckets.len() - 1 {
                    return false;
                }
                if n1 >= min_len
                    && n0 >= min_len
                    && screen.may_cut(n0, n1, u0, u1)
                    && exceeds_bound(n0, n1, u0, u1, delta_prime, var_per_value, min_len)
                {
                    return true;
                }
            }
        }
        false
    }
}

/// river's cut test, operation for operation.
fn exceeds_bound(
    n0: f64,
    n1: f64,
    u0: f64,
    u1: f64,
    delta_prime: f64,
    var_per_value: f64,
    min_len: f64,
) -> bool {
    let delta_mean = (u0 / n0) - (u1 / n1);
    let m_recip = 1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0);
    let epsilon =
        (2.0 * m_recip * var_per_value * delta_prime).sqrt() + 2.0 / 3.0 * delta_prime * m_recip;
    delta_mean.abs() > epsilon
}

/// A cheap necessary condition for [`exceeds_bound`], without division or
/// square root.
///
/// river's test is |u0/n0 − u1/n1| > √(2·m·v·δ′) + ⅔·δ′·m with
/// m = 1/a + 1/b, a = n0 − L + 1, b = n1 − L + 1. Dropping the second
/// (positive) term and multiplying through by (n0·n1)² and a·b, a cut is
/// possible only if (u0·n1 − u1·n0)² · a · b > 2·v·δ′ · (a + b) · (n0·n1)².
/// The left side is inflated by an error allowance far larger than the
/// rounding of either form (2⁻⁴⁰ of the magnitudes involved, against 2⁻⁵²
/// per operation) and the right side deflated by 10⁻⁹, so rounding can never
/// make the screen reject a cut river accepts. Non-finite intermediate values
/// (huge inputs, a negative variance from cancellation) fail the comparison
/// and fall through to the exact test.
struct Screen {
    two_v_dp: f64,
    min_len: f64,
}

impl Screen {
    fn new(delta_prime: f64, var_per_value: f64, min_len: f64) -> Screen {
        Screen {
            two_v_dp: 2.0 * var_per_value * delta_prime * (1.0 - 1e-9),
            min_len,
        }
    }

    #[inline]
    fn may_cut(&self, n0: f64, n1: f64, u0: f64, u1: f64) -> bool {
        let a = n0 - self.min_len + 1.0;
        let b = n1 - self.min_len + 1.0;
        let cross = (u0 * n1 - u1 * n0).abs();
        let slack = (u0.abs() * n1 + u1.abs() * n0) * (1.0 / (1u64 << 40) as f64);
        let lhs = (cross + slack) * (cross + slack) * a * b;
        let n0n1 = n0 * n1;
        let rhs = self.two_v_dp * (a + b) * n0n1 * n0n1;
        // NaN (no ordering) falls through to the exact test.
        !matches!(
            lhs.partial_cmp(&rhs),
            Some(Ordering::Less | Ordering::Equal)
        )
    }
}

/// One ADWIN detector instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adwin {
    config: Config,
    window: Window,
}

impl Adwin {
    pub fn new(config: Config) -> Adwin {
        Adwin {
            config,
            window: Window::new(),
        }
    }
}

impl Detector for Adwin {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        self.window.insert(x, self.config.max_buckets);
        let Some(cut) = self.window.check(&self.config) else {
            return Outcome::None;
        };
        let change = Change {
            lookback: self.window.width as u64 - 1,
            before: cut.total / cut.width,
            after: self.window.total / self.window.width,
        };
        self.window = Window::new();
        if self.config.direction.allows(change.before, change.after) {
            Outcome::Drift(change)
        } else {
            Outcome::None
        }
    }

    fn save(&self) -> serde_json::Value {
        save_state(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectorConfig;
    use crate::detect::parity::{self, Fixture};
    use proptest::prelude::*;

    fn config(direction: Direction, params: &serde_json::Value) -> Config {
        let mut p = parity::params(params);
        let c = Config::from_params(direction, &mut p).unwrap();
        p.finish(&[]).unwrap();
        c
    }

    fn positions(c: &Config, values: &[f64]) -> Vec<usize> {
        let mut d = Adwin::new(c.clone());
        parity::drifts(&mut d, values)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn drifts_at_exactly_rivers_positions() {
        let fixture = Fixture::load(include_str!("../../fixtures/parity/adwin.json"));
        let mut checked = 0;
        for case in &fixture.cases {
            let c = config(Direction::Both, &case.params);
            let values = fixture.values(&case.stream);
            assert_eq!(
                positions(&c, values),
                case.drifts,
                "stream {} params {}",
                case.stream,
                case.params
            );
            checked += 1;
        }
        assert!(checked >= 70, "only {checked} cases");
    }

    /// The screen must be invisible: the same positions with it as without.
    #[test]
    fn screen_never_hides_a_cut() {
        let fixture = Fixture::load(include_str!("../../fixtures/parity/adwin.json"));
        for (name, values) in fixture.streams() {
            let mut w = Window::new();
            let c = Config {
                clock: 1,
                ..Config::default()
            };
            for &x in values.iter().take(20_000) {
                w.insert(x, c.max_buckets);
                if w.width <= f64::from(c.grace_period) {
                    continue;
                }
                let min_len = f64::from(c.min_window_length);
                let dp = (2.0 * w.width.ln() / c.delta).ln();
                let vw = w.variance / w.width;
                let screen = Screen::new(dp, vw, min_len);
                let (mut n0, mut n1, mut u0, mut u1) = (0.0, w.width, 0.0, w.total);
                for (level, buckets) in w.levels.iter().enumerate().rev() {
                    let size = (1u64 << level) as f64;
                    for &Bucket(t, _) in buckets {
                        n0 += size;
                        n1 -= size;
                        u0 += t;
                        u1 -= t;
                        if n1 >= min_len && n0 >= min_len {
                            let exact = exceeds_bound(n0, n1, u0, u1, dp, vw, min_len);
                            assert!(!exact || screen.may_cut(n0, n1, u0, u1), "{name}");
                        }
                    }
                }
                if w.find_cut(&c) {
                    w = Window::new();
                }
            }
        }
    }

    #[test]
    fn change_estimate_is_the_cut() {
        let values: Vec<f64> = (0..4000)
            .map(|i| if i < 2000 { (i % 7) as f64 * 0.01 } else { 1.0 })
            .collect();
        let mut d = Adwin::new(Config::default());
        let found = parity::drifts(&mut d, &values);
        let (at, change) = found[0];
        assert!((2000..2100).contains(&at), "{at}");
        // ADWIN drops old buckets only until no cut passes its test any more,
        // so the kept window can still hold old values: the start is an
        // early estimate and `after` a blend.
        let start = at - change.lookback as usize;
        assert!((1800..=at).contains(&start), "start {start}");
        assert!(
            change.before < 0.1 && change.after > change.before + 0.1,
            "{change:?}"
        );
    }

    #[test]
    fn direction_hides_the_other_side_but_keeps_positions() {
        let values: Vec<f64> = (0..6000)
            .map(|i| if (2000..4000).contains(&i) { 1.0 } else { 0.0 } + (i % 5) as f64 * 0.01)
            .collect();
        let both = positions(&Config::default(), &values);
        let dec = Config {
            direction: Direction::Decrease,
            ..Config::default()
        };
        let mut d = Adwin::new(dec);
        let dec_found = parity::drifts(&mut d, &values);
        assert_eq!(both.len(), 2, "{both:?}");
        assert_eq!(dec_found.len(), 1);
        assert_eq!(dec_found[0].0, both[1]);
    }

    #[test]
    fn parameters_are_validated_with_the_key_named() {
        let err = |toml: &str| {
            let table: toml::Table = toml.parse().unwrap();
            let mut p = Params::new(table, "monitor[1].params");
            Config::from_params(Direction::Both, &mut p)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("delta = 2"),
            "monitor[1].params.delta: must be in (0, 1), got 2"
        );
        assert!(err("clock = 0").starts_with("monitor[1].params.clock: must be in 1..="));
        assert!(err("max_buckets = 1").starts_with("monitor[1].params.max_buckets"));
        assert!(err("min_window_length = 0").starts_with("monitor[1].params.min_window_length"));
        assert!(err("grace_period = -1").starts_with("monitor[1].params.grace_period"));
    }

    #[test]
    fn registered_by_name_with_every_parameter() {
        let mut p = Params::empty();
        let c = DetectorConfig::from_params("adwin", Direction::Decrease, &mut p)
            .unwrap()
            .unwrap();
        assert_eq!(c.name(), "adwin");
        assert_eq!(
            c.params_json(),
            serde_json::json!({"delta": 0.002, "clock": 32, "max_buckets": 5,
                               "min_window_length": 5, "grace_period": 10})
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Saving, serialising and restoring at any point changes nothing.
        #[test]
        fn cut_anywhere_gives_the_same_detections(
            values in parity::shifting_stream(3000),
            cut in 0usize..3000,
            clock in prop_oneof![Just(1i64), Just(32i64)],
        ) {
            let mut p = parity::params(&serde_json::json!({"clock": clock, "delta": 0.05}));
            let c = DetectorConfig::from_params("adwin", Direction::Both, &mut p).unwrap().unwrap();
            let (whole, resumed) = parity::whole_and_resumed(&c, &values, cut);
            prop_assert_eq!(whole, resumed);
        }
    }
}
