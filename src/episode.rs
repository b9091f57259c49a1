//! Episodes: where a stream's change began, how big it is and whether it is
//! over, measured from the stream's own values rather than taken from the
//! detector that fired (SPEC §5).
//!
//! Each monitor keeps running sums of its stream's values since the stream's
//! last boundary (its start, or the end of its previous episode), and each
//! stream keeps its latest values (`[report] history`). On a detection the
//! change point is the maximum-likelihood single change in mean among those
//! values: the split that maximises `nb·na/(nb+na)·(mean_a − mean_b)²`, the
//! statistic CUSUM and binary segmentation locate a change with. The levels
//! are the means of the two parts, the later one refined with every value
//! while the episode is open. A detector with `log = true` sees `ln x`, and
//! so do its sums: its levels are geometric means.
//!
//! Recovery is confirmed by a one-sided CUSUM toward the level before,
//! started at the detection: each value adds its excess over the midpoint of
//! the two levels (a change back of more than half the window's change drifts
//! it upward), and it confirms above `h = σ²·ln(ARL)/|Δ|`, which bounds the
//! chance that a stream still at the changed level ever crosses it by about
//! `1/ARL` per start (Wald's bound for a random walk with drift `−|Δ|/2`).
//! `σ²` is the larger of the two parts' variances, inflated for
//! autocorrelation by `(1+ρ)/(1−ρ)` with the lag-1 correlation `ρ` measured
//! within the two parts at detection, so a logged rolling mean (whose
//! neighbours are nearly equal) does not look a hundred times more certain
//! than it is. Once confirmed, the end is located like the start: the best
//! split of the values since the start.

use serde::{Deserialize, Serialize};

/// `ln` of the average run length to a false recovery: about one per 5·10⁸
/// starts, as rare as the embedded default's false alarms.
const LN_ARL: f64 = 20.0;

/// The value a monitor's sums and levels are in: `ln x` for `log = true`
/// (non-positive values are skipped, as the detectors skip them).
#[inline]
pub fn transform(log: bool, x: f64) -> Option<f64> {
    if !log {
        Some(x)
    } else if x > 0.0 && x.is_finite() {
        Some(x.ln())
    } else {
        None
    }
}

/// Count, sum and sum of squares of some values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sums {
    pub n: u64,
    pub sum: f64,
    pub sq: f64,
}

impl Sums {
    #[inline]
    pub fn push(&mut self, y: f64) {
        self.n += 1;
        self.sum += y;
        self.sq += y * y;
    }

    pub fn minus(&self, other: &Sums) -> Sums {
        Sums {
            n: self.n.saturating_sub(other.n),
            sum: self.sum - other.sum,
            sq: self.sq - other.sq,
        }
    }

    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// The population variance, never negative.
    pub fn var(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let m = self.mean();
        (self.sq / self.n as f64 - m * m).max(0.0)
    }
}

/// The values of one monitor's stream since its last boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The stream index of the first value.
    pub since: u64,
    pub sums: Sums,
}

/// The best single change found among some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// The index of the first value of the later part.
    pub at: u64,
    /// The sums of the earlier part.
    pub before: Sums,
}

/// The maximum-likelihood single change in mean among values whose sums are
/// `total`, given the latest of them newest first as `(index, value)`.
///
/// Only splits whose later part is higher (`sign > 0`), lower (`sign < 0`)
/// or either (`sign == 0`) are candidates, each with at least one value on
/// either side; splits older than the values given are not considered.
pub fn locate(
    total: &Sums,
    newest_first: impl Iterator<Item = (u64, f64)>,
    sign: f64,
) -> Option<Split> {
    let mut after = Sums::default();
    let mut best: Option<(f64, Split)> = None;
    for (index, y) in newest_first {
        after.push(y);
        let before = total.minus(&after);
        if before.n == 0 {
            break;
        }
        let d = after.mean() - before.mean();
        if sign * d < 0.0 || (sign != 0.0 && d == 0.0) {
            continue;
        }
        let (na, nb) = (after.n as f64, before.n as f64);
        let score = d * d * na * nb / (na + nb);
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, Split { at: index, before }));
        }
    }
    best.map(|(_, s)| s)
}

/// How far the autocorrelation sum of [`inflation`] looks.
const MAX_LAG: usize = 1000;

/// The variance inflation `1 + 2·Σ ρ_k` (the long-run variance over the
/// marginal one) of values split in two at `at`, from the autocorrelations
/// `ρ_k` within each part, summed over lags while they stay above 0.05
/// (Geyer's initial sequence, cut early) and kept in [1, 2000]. `values`
/// are in stream order, oldest or newest first.
pub fn inflation(values: &[(u64, f64)], at: u64) -> f64 {
    let mean = |part: &mut dyn Iterator<Item = f64>| {
        let (n, s) = part.fold((0u64, 0.0), |(n, s), y| (n + 1, s + y));
        if n == 0 { 0.0 } else { s / n as f64 }
    };
    let mb = mean(&mut values.iter().filter(|v| v.0 < at).map(|v| v.1));
    let ma = mean(&mut values.iter().filter(|v| v.0 >= at).map(|v| v.1));
    let centred: Vec<(bool, f64)> = values
        .iter()
        .map(|&(i, y)| {
            if i < at {
                (true, y - mb)
            } else {
                (false, y - ma)
            }
        })
        .collect();
    let den: f64 = centred.iter().map(|c| c.1 * c.1).sum();
    // Parts that are constant but for rounding have no correlation to speak of.
    let n = centred.len();
    if n < 4 || den / n as f64 <= 1e-12 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=MAX_LAG.min(n / 4) {
        let num: f64 = centred
            .iter()
            .zip(&centred[k..])
            .filter(|(a, b)| a.0 == b.0)
            .map(|(a, b)| a.1 * b.1)
            .sum();
        let rho = num / den;
        if rho < 0.05 {
            break;
        }
        sum += rho;
    }
    (1.0 + 2.0 * sum).clamp(1.0, 2000.0)
}

/// An open drift window's measurement: the values before its start, and the
/// recovery CUSUM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// The sums from the boundary to the start (excluded).
    pub before: Sums,
    /// The variance inflation for autocorrelation, measured at detection.
    pub inflation: f64,
    /// The recovery CUSUM, in the monitor's units.
    pub cusum: f64,
    /// `before`'s mean and variance, kept for the per-value update.
    before_mean: f64,
    before_var: f64,
}

impl Episode {
    pub fn new(before: Sums, inflation: f64) -> Episode {
        Episode {
            before,
            inflation,
            cusum: 0.0,
            before_mean: before.mean(),
            before_var: before.var(),
        }
    }

    /// The sums from the start to the newest value, given the segment's.
    pub fn after(&self, segment: &Sums) -> Sums {
        segment.minus(&self.before)
    }

    /// Feeds the value `y`, already added to `segment`; true when the
    /// stream's recovery toward the level before is confirmed.
    #[inline]
    pub fn update(&mut self, y: f64, segment: &Sums) -> bool {
        let n = segment.n.saturating_sub(self.before.n);
        if n < 2 {
            return false;
        }
        let inv = 1.0 / n as f64;
        let now = (segment.sum - self.before.sum) * inv;
        let delta = self.before_mean - now;
        if delta == 0.0 {
            return false;
        }
        let after_var = ((segment.sq - self.before.sq) * inv - now * now).max(0.0);
        let var = self.before_var.max(after_var) * self.inflation;
        let mid = now + delta / 2.0;
        self.cusum = (self.cusum + delta.signum() * (y - mid)).max(0.0);
        self.cusum > var * LN_ARL / delta.abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::synthetic::Rng;

    fn sums(values: &[f64]) -> Sums {
        let mut s = Sums::default();
        for &y in values {
            s.push(y);
        }
        s
    }

    fn newest_first(values: &[f64]) -> impl Iterator<Item = (u64, f64)> + '_ {
        values
            .iter()
            .copied()
            .enumerate()
            .rev()
            .map(|(i, y)| (i as u64, y))
    }

    #[test]
    fn a_step_is_located_where_it_is() {
        let values: Vec<f64> = (0..300).map(|i| if i < 200 { 0.9 } else { 0.8 }).collect();
        let s = locate(&sums(&values), newest_first(&values), -1.0).unwrap();
        assert_eq!(s.at, 200);
        assert_eq!(s.before.n, 200);
        assert!((s.before.mean() - 0.9).abs() < 1e-12);
        // The wrong direction has no candidate with a change.
        assert_eq!(locate(&sums(&values), newest_first(&values), 1.0), None);
    }

    #[test]
    fn a_bernoulli_drop_is_located_within_a_few_dozen_values() {
        // The error of the best estimate of a change point of a 0/1 stream
        // has a spread of a few times p(1-p)/drop² values (Yao's
        // distribution): about 40 for this drop of 0.12. (Seed 3 puts a run
        // of 85 values at 0.93 just after the change, and the best split
        // after it: an error no estimator can avoid.)
        let mut rng = Rng::new(4);
        for change in [1000u64, 2500] {
            let values: Vec<f64> = (0..change + 1500)
                .map(|i| {
                    let p = if i < change { 0.91 } else { 0.79 };
                    rng.bit(p)
                })
                .collect();
            let s = locate(&sums(&values), newest_first(&values), -1.0).unwrap();
            assert!(s.at.abs_diff(change) < 150, "{change}: {}", s.at);
        }
    }

    #[test]
    fn the_inflation_of_independent_values_is_near_one_and_of_a_rolling_mean_large() {
        let mut rng = Rng::new(5);
        let iid: Vec<(u64, f64)> = (0..4000).map(|i| (i, rng.uniform())).collect();
        assert!(inflation(&iid, 2000) < 1.2);
        let raw: Vec<f64> = (0..4100).map(|_| rng.bit(0.9)).collect();
        let rolling: Vec<(u64, f64)> = (0..4000)
            .map(|i| (i as u64, raw[i..i + 100].iter().sum::<f64>() / 100.0))
            .collect();
        assert!(inflation(&rolling, 2000) > 50.0);
    }

    #[test]
    fn recovery_is_confirmed_after_a_return_and_not_at_the_changed_level() {
        let mut rng = Rng::new(11);
        let mut bernoulli = |p: f64| rng.bit(p);
        let mut segment = Sums::default();
        for _ in 0..5000 {
            segment.push(bernoulli(0.9));
        }
        let before = segment;
        let mut e = Episode::new(before, 1.0);
        for _ in 0..200_000 {
            let y = bernoulli(0.8);
            segment.push(y);
            assert!(!e.update(y, &segment), "a false recovery");
        }
        let mut delay = None;
        for i in 0..5000 {
            let y = bernoulli(0.9);
            segment.push(y);
            if e.update(y, &segment) {
                delay = Some(i);
                break;
            }
        }
        assert!(delay.is_some_and(|d| d < 2000), "{delay:?}");
    }
}
