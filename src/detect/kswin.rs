//! `kswin`: Kolmogorov–Smirnov windowing (Raab, Heusinger & Schleif 2020),
//! with river 0.26 `drift.KSWIN` semantics and defaults (SPEC §3).
//!
//! The detector keeps the last `window_size` values. Once the window is
//! full, every update draws `stat_size` values at random, without
//! replacement, from the older `window_size − stat_size` values, and compares
//! them with the `stat_size` newest values by a two-sample Kolmogorov–Smirnov
//! test. A drift is declared when the test's p-value is at most `alpha` and
//! the KS distance is above 0.1 (river's extra condition). It reacts to any
//! change of distribution (level, spread or shape) of real values; 0/1
//! streams work but give the test little to see.
//!
//! The p-value is scipy's exact two-sided one for two samples of equal size
//! (the formula `ks_2samp(method="auto")` uses up to 10,000 values per
//! sample, operation for operation), so a given pair of samples gets river's
//! verdict. Because both samples have `stat_size` values, the distance is a
//! whole number of 1/`stat_size` steps and the p-value falls as it grows, so
//! the smallest distance that alarms is computed once at construction and
//! each update costs a sort of the drawn sample, a sorted insertion of the
//! new value among the newest ones, and a merge: O(`stat_size` ·
//! log `stat_size`), not a scipy call (about 500× river's speed).
//!
//! The random draw cannot be river's (Python's Mersenne Twister through
//! `random.sample`); it is a SplitMix64 generator seeded with `seed`, whose
//! state is saved with the detector, with Floyd's sampling, so a run is the
//! same on every machine and across a checkpoint. As in river, a drift resets
//! the detector: the window empties and the generator restarts from `seed`,
//! so the next test comes `window_size` values later. Agreement with river is
//! statistical and is checked on the parity streams within a stated
//! tolerance (see the tests).
//!
//! The change is estimated to start at the oldest of the `stat_size` newest
//! values; `before` is the mean of the drawn older values and `after` the
//! mean of the newest. With `direction = "decrease"` or `"increase"`, a drift
//! whose means contradict the direction is returned as no outcome (the
//! detector still resets, like river).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};

/// scipy switches from the exact p-value to an asymptotic one above this.
const MAX_EXACT_STAT_SIZE: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub window_size: usize,
    pub stat_size: usize,
    pub alpha: f64,
    pub seed: u64,
    pub direction: Direction,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window_size: 100,
            stat_size: 30,
            alpha: 0.005,
            seed: 0,
            direction: Direction::Both,
        }
    }
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let alpha = p.float("alpha", 0.005, |a| a > 0.0 && a < 1.0, "must be in (0, 1)")?;
        let window_size = p.int(
            "window_size",
            100,
            |w| (2..=2 * MAX_EXACT_STAT_SIZE).contains(&w),
            "must be in 2..=20000",
        )?;
        let stat_size = p.int(
            "stat_size",
            30,
            |s| (1..=MAX_EXACT_STAT_SIZE).contains(&s),
            "must be in 1..=10000",
        )?;
        if 2 * stat_size > window_size {
            return Err(p.error(
                "stat_size",
                format!(
                    "must be at most window_size / 2 ({}), got {stat_size}",
                    window_size / 2
                ),
            ));
        }
        let seed = p.int("seed", 0, |s| s >= 0, "must be >= 0")?;
        Ok(Config {
            window_size: window_size as usize,
            stat_size: stat_size as usize,
            alpha,
            seed: seed as u64,
            direction,
        })
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): tiny state, fast, and good enough
/// to choose which old values to compare.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (Lemire's method, without bias).
    fn below(&mut self, n: u64) -> u64 {
        let mut m = u128::from(self.next()) * u128::from(n);
        if (m as u64) < n {
            let floor = n.wrapping_neg() % n;
            while (m as u64) < floor {
                m = u128::from(self.next()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }
}

/// scipy's `_compute_prob_outside_square(n, h)`: the exact probability that
/// two samples of `n` values from one distribution are `h/n` or more apart
/// in KS distance, with scipy's order of operations, clipped to [0, 1].
fn p_value(n: usize, h: usize) -> f64 {
    if h == 0 {
        return 1.0;
    }
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    (2.0 * p).clamp(0.0, 1.0)
}

/// The smallest distance, in steps of 1/`n`, at which river declares a
/// drift: p-value ≤ `alpha` and distance > 0.1; `n + 1` if none does.
fn alarm_distance(n: usize, alpha: f64) -> usize {
    // p_value falls as h grows: binary search for the first h with p ≤ alpha.
    let (mut lo, mut hi) = (1, n + 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if p_value(n, mid) <= alpha {
            hi = mid
        } else {
            lo = mid + 1
        }
    }
    let mut h = lo;
    while h <= n && h as f64 / n as f64 <= 0.1 {
        h += 1;
    }
    h
}

/// The two-sample KS distance of two sorted samples of equal size, as a
/// count: the largest difference between how many values of each are ≤ v.
fn ks_distance(a: &[f64], b: &[f64]) -> usize {
    let (mut i, mut j, mut d) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max(i.abs_diff(j));
    }
    d
}

/// Buffers reused across updates, rebuilt from the window after a restore;
/// not part of the saved state.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// `marks[i] == epoch`: old value `i` is already drawn this update.
    marks: Vec<u32>,
    epoch: u32,
    drawn: Vec<f64>,
    /// The newest `stat_size` values of the window (fewer while it fills),
    /// kept sorted as the window slides: one removal and one insertion per
    /// update instead of a sort.
    recent: Vec<f64>,
    /// Whether `recent` matches the window (false after a restore).
    synced: bool,
}

/// One KSWIN detector instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kswin {
    config: Config,
    window: VecDeque<f64>,
    rng: Rng,
    /// [`alarm_distance`] for this config, kept so a restore need not redo it.
    alarm_distance: usize,
    #[serde(skip)]
    scratch: Scratch,
}

impl Kswin {
    pub fn new(config: Config) -> Kswin {
        Kswin {
            window: VecDeque::with_capacity(config.window_size),
            rng: Rng(config.seed),
            alarm_distance: alarm_distance(config.stat_size, config.alpha),
            config,
            scratch: Scratch::default(),
        }
    }

    /// Appends `x`, dropping the oldest value of a full window, and keeps the
    /// sorted copy of the newest values in step.
    fn push(&mut self, x: f64) {
        let r = self.config.stat_size;
        if !self.scratch.synced {
            let newest = self.window.range(self.window.len().saturating_sub(r)..);
            self.scratch.recent = newest.copied().collect();
            self.scratch.recent.sort_unstable_by(f64::total_cmp);
            self.scratch.synced = true;
        }
        if self.window.len() == self.config.window_size {
            // stat_size ≤ window_size / 2, so this value is an old one.
            self.window.pop_front();
        }
        if self.window.len() >= r {
            let leaving = self.window[self.window.len() - r];
            let recent = &mut self.scratch.recent;
            match recent.binary_search_by(|v| v.total_cmp(&leaving)) {
                Ok(i) => {
                    recent.remove(i);
                }
                Err(_) => self.scratch.synced = false,
            }
        }
        self.window.push_back(x);
        if self.scratch.synced {
            let recent = &mut self.scratch.recent;
            let at = recent.partition_point(|v| v.total_cmp(&x).is_lt());
            recent.insert(at, x);
        }
    }

    /// Draws `stat_size` distinct old values (Floyd's algorithm), sorted.
    fn samples(&mut self) {
        let old = (self.config.window_size - self.config.stat_size) as u64;
        let s = &mut self.scratch;
        if s.marks.len() != old as usize || s.epoch == u32::MAX {
            s.marks = vec![0; old as usize];
            s.epoch = 0;
        }
        s.epoch += 1;
        s.drawn.clear();
        for j in old - self.config.stat_size as u64..old {
            let t = self.rng.below(j + 1) as usize;
            let pick = if s.marks[t] == s.epoch { j as usize } else { t };
            s.marks[pick] = s.epoch;
            s.drawn.push(self.window[pick]);
        }
        s.drawn.sort_unstable_by(f64::total_cmp);
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

impl Detector for Kswin {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        self.push(x);
        if self.window.len() < self.config.window_size {
            return Outcome::None;
        }
        self.samples();
        let distance = ks_distance(&self.scratch.drawn, &self.scratch.recent);
        if distance < self.alarm_distance {
            return Outcome::None;
        }
        let change = Change {
            lookback: self.config.stat_size as u64 - 1,
            before: mean(&self.scratch.drawn),
            after: mean(&self.scratch.recent),
        };
        self.window.clear();
        self.scratch.recent.clear();
        self.rng = Rng(self.config.seed);
        if self.config.direction.allows(change.before, change.after) {
            Outcome::Drift(change)
        } else {
            Outcome::None
        }
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl super::Restore for Kswin {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        self.alarm_distance = alarm_distance(config.stat_size, config.alpha);
        self.scratch = Scratch::default();
        let (n, w) = (self.window.len(), config.window_size);
        super::check(n <= w, || format!("{n} values in a window of {w}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectorConfig;
    use crate::detect::parity::{self, Fixture};
    use proptest::prelude::*;

    const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

    fn kswin_config(params: &serde_json::Value, seed: u64) -> Config {
        let mut params = params.clone();
        params["seed"] = seed.into();
        let mut p = parity::params(&params);
        let c = Config::from_params(Direction::Both, &mut p).unwrap();
        p.finish(&[]).unwrap();
        c
    }

    fn positions(c: &Config, values: &[f64]) -> Vec<usize> {
        let mut d = Kswin::new(c.clone());
        parity::drifts(&mut d, values)
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    /// Delay from each change to the first drift at or after it, if one
    /// comes before the next change.
    fn delays(changes: &[usize], end: usize, drifts: &[usize]) -> Vec<Option<usize>> {
        changes
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let next = changes.get(k + 1).copied().unwrap_or(end);
                drifts.iter().find(|&&d| d >= c && d < next).map(|&d| d - c)
            })
            .collect()
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// river's random draws cannot be reproduced, so agreement is
    /// statistical, over five seeds on each side, on every stream and
    /// setting of the fixture (34 cases, 1265 river drifts, 25 changes):
    ///
    /// 1. Alarm counts: over the whole fixture, mmon's total number of drifts
    ///    is within 10% of river's; in each case, the mean per seed is within
    ///    30% of river's, or within 3 when river's mean is below 10 (Poisson
    ///    noise of five small counts).
    /// 2. Changes: every change that river detects within `window_size`
    ///    positions in all five runs (a detection of the change, not a later
    ///    chance alarm) is detected by mmon within `window_size` in all five
    ///    runs too, with a median delay within `stat_size / 2` of river's.
    ///
    /// Weak changes (a 0.5 sd shift, a slow ramp) are found by either only
    /// after a random wait, so their positions cannot be compared.
    #[test]
    fn agrees_with_river_within_tolerance() {
        let fixture = Fixture::load(include_str!("../../fixtures/parity/kswin.json"));
        let (mut river_total, mut mmon_total) = (0usize, 0usize);
        let mut failures = Vec::new();
        let mut compared = 0;
        for case in &fixture.cases {
            let values = fixture.values(&case.stream);
            let changes = fixture.changes(&case.stream);
            let c = kswin_config(&case.params, 0);
            let (window_size, stat_size) = (c.window_size, c.stat_size as f64);
            assert_eq!(case.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), SEEDS);
            let river: Vec<&Vec<usize>> = case.runs.iter().map(|r| &r.drifts).collect();
            let mmon: Vec<Vec<usize>> = SEEDS
                .iter()
                .map(|&s| positions(&kswin_config(&case.params, s), values))
                .collect();
            let count = |runs: &[&Vec<usize>]| runs.iter().map(|r| r.len()).sum::<usize>();
            let mmon_refs: Vec<&Vec<usize>> = mmon.iter().collect();
            let (r, m) = (count(&river), count(&mmon_refs));
            river_total += r;
            mmon_total += m;
            let (r_mean, m_mean) = (r as f64 / 5.0, m as f64 / 5.0);
            let tolerance = if r_mean < 10.0 { 3.0 } else { 0.3 * r_mean };
            if (m_mean - r_mean).abs() > tolerance {
                failures.push(format!(
                    "{} {}: mean drifts mmon {m_mean} river {r_mean}",
                    case.stream, case.params
                ));
            }
            for (k, &c) in changes.iter().enumerate() {
                let river_delays: Vec<Option<usize>> = river
                    .iter()
                    .map(|r| delays(changes, values.len(), r)[k])
                    .collect();
                let mmon_delays: Vec<Option<usize>> = mmon
                    .iter()
                    .map(|r| delays(changes, values.len(), r)[k])
                    .collect();
                let prompt = |d: &Option<usize>| d.is_some_and(|d| d <= window_size);
                if !river_delays.iter().all(prompt) {
                    continue;
                }
                if !mmon_delays.iter().all(prompt) {
                    failures.push(format!(
                        "{} {} change at {c}: river always detects it, mmon {mmon_delays:?}",
                        case.stream, case.params
                    ));
                    continue;
                }
                let r_med = median(river_delays.iter().map(|d| d.unwrap() as f64).collect());
                let m_med = median(mmon_delays.iter().map(|d| d.unwrap() as f64).collect());
                compared += 1;
                if (r_med - m_med).abs() > stat_size / 2.0 {
                    failures.push(format!(
                        "{} {} change at {c}: median delay mmon {m_med} river {r_med}",
                        case.stream, case.params
                    ));
                }
            }
        }
        eprintln!("drifts: river {river_total} mmon {mmon_total}; changes compared: {compared}");
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(compared >= 15, "only {compared} changes compared");
        let diff = (mmon_total as f64 - river_total as f64).abs();
        assert!(
            diff <= 0.1 * river_total as f64,
            "mmon {mmon_total} river {river_total}"
        );
    }

    #[test]
    fn p_values_are_scipys() {
        // scipy 1.17.1, stats._stats_py._compute_prob_outside_square, clipped.
        assert_eq!(p_value(30, 12), 0.015643390496754332);
        assert_eq!(p_value(30, 13), 0.006548396368058784);
        assert_eq!(p_value(30, 14), 0.0025300622362698397);
        assert_eq!(p_value(30, 10), 0.07088798787114439);
        assert_eq!(p_value(50, 17), 0.005841778142694731);
        assert_eq!(p_value(7, 3), 0.5751748251748252);
        assert_eq!(p_value(100, 25), 0.0037294923618311367);
        assert_eq!(alarm_distance(30, 0.005), 14);
    }

    /// The binary search relies on the p-value falling with the distance;
    /// scipy's alternating sum is noisy for tiny distances (where p ≈ 1), so
    /// check the search against a plain scan instead.
    #[test]
    fn alarm_distance_matches_a_scan() {
        for n in 1..300 {
            for alpha in [1e-6, 1e-4, 0.001, 0.005, 0.01, 0.05, 0.2] {
                let scan = (1..=n)
                    .find(|&h| p_value(n, h) <= alpha && h as f64 / n as f64 > 0.1)
                    .unwrap_or(n + 1);
                assert_eq!(alarm_distance(n, alpha), scan, "n {n} alpha {alpha}");
            }
        }
    }

    #[test]
    fn distance_counts_ties_like_scipy() {
        // scipy: ks_2samp([0, 1, 1, 2], [1, 1, 2, 3]).statistic == 0.25
        assert_eq!(ks_distance(&[0.0, 1.0, 1.0, 2.0], &[1.0, 1.0, 2.0, 3.0]), 1);
        assert_eq!(ks_distance(&[0.0, 0.0, 0.0], &[1.0, 1.0, 1.0]), 3);
        assert_eq!(ks_distance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0);
    }

    #[test]
    fn floyd_draws_distinct_old_values() {
        let mut d = Kswin::new(Config::default());
        for i in 0..100 {
            d.push(i as f64);
        }
        for _ in 0..50 {
            d.samples();
            let mut drawn = d.scratch.drawn.clone();
            drawn.dedup();
            assert_eq!(drawn.len(), 30);
            assert!(drawn.iter().all(|&v| v < 70.0));
            assert_eq!(d.scratch.recent[0], 70.0);
        }
    }

    #[test]
    fn sorted_recent_values_follow_the_window() {
        let mut d = Kswin::new(Config {
            window_size: 20,
            stat_size: 7,
            ..Config::default()
        });
        for i in 0..500u64 {
            let v = ((i * 7919) % 13) as f64;
            let x = if v == 0.0 && i % 2 == 0 { -0.0 } else { v };
            d.update(x, 0);
            let n = d.window.len();
            let mut expected: Vec<f64> = d.window.range(n.saturating_sub(7)..).copied().collect();
            expected.sort_unstable_by(f64::total_cmp);
            assert_eq!(d.scratch.recent, expected, "after {i}");
        }
    }

    #[test]
    fn parameters_are_validated_with_the_key_named() {
        let err = |toml: &str| {
            let table: toml::Table = toml.parse().unwrap();
            let mut p = Params::new(table, "monitor[2].params");
            Config::from_params(Direction::Both, &mut p)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("alpha = 0"),
            "monitor[2].params.alpha: must be in (0, 1), got 0"
        );
        assert_eq!(
            err("window_size = 50"),
            "monitor[2].params.stat_size: must be at most window_size / 2 (25), got 30"
        );
        assert!(err("seed = -3").starts_with("monitor[2].params.seed"));
    }

    #[test]
    fn registered_by_name_with_every_parameter() {
        let mut p = Params::empty();
        let c = DetectorConfig::from_params("kswin", Direction::Both, &mut p)
            .unwrap()
            .unwrap();
        assert_eq!(c.name(), "kswin");
        assert_eq!(
            c.params_json(),
            serde_json::json!({"window_size": 100, "stat_size": 30, "alpha": 0.005, "seed": 0})
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn cut_anywhere_gives_the_same_detections(
            values in parity::shifting_stream(2000),
            cut in 0usize..2000,
            seed in 0u64..1000,
        ) {
            let mut p = parity::params(&serde_json::json!({"seed": seed}));
            let c = DetectorConfig::from_params("kswin", Direction::Both, &mut p).unwrap().unwrap();
            let (whole, resumed) = parity::whole_and_resumed(&c, &values, cut);
            prop_assert_eq!(whole, resumed);
        }
    }
}
