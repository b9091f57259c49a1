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
//! ## Skipping the cut scan
//!
//! River scans every cut at every check: O(`max_buckets` · log window) exact
//! tests, each with divisions and a square root, which dominates `clock = 1`
//! on long windows. A check only has to know *whether* some cut passes,
//! though: when none does (almost always), nothing happens. So before the
//! scan, `Window::no_cut_possible` tries to prove with cheap bounds that no
//! cut can pass; only when it cannot does river's scan run, unchanged (and
//! from then on, dropping buckets, everything is river's).
//!
//! Notation: the window has W values summing to U, mean μ = U/W and variance
//! per value v; a cut leaves the n0 oldest values (sum u0) on one side and
//! n1 = W − n0 (sum u1 = U − u0) on the other. Then
//! u0/n0 − u1/n1 = W·S/(n0·n1) with S = u0 − n0·μ. River's bound is
//! ε = √(2·m·v·δ′) + ⅔·δ′·m with m = 1/(n0−L+1) + 1/(n1−L+1) ≥ W/(n0·n1)
//! (L = `min_window_length` ≥ 1) and δ′ = ln(2·ln W/δ). So a cut can pass
//! only if |S| > T(n0) = √(2·v·δ′·h) + ⅔·δ′ with h = n0·n1/W. Then:
//!
//! - δ′ grows with W, and W only grows until a drift resets the window, so
//!   δ′ computed at an earlier width (again whenever W doubles) is a lower
//!   bound, and a lower δ′ only lowers the threshold.
//! - T is concave in n0 (h = n0·(W − n0)/W is), so over any run of cuts it
//!   is smallest at the run's first or last cut.
//! - The cuts after the buckets of one level form a group. Their n0 and u0,
//!   summed from the oldest bucket, depend only on that level and the older
//!   ones, and merging buckets up to level l changes only levels 0..=l+1:
//!   level l's group stays the same for about 2^l updates. When a group is
//!   computed we keep the largest |S| over its cuts at the current mean
//!   μ_ref. Later, at mean μ, every S differs by n0·|μ − μ_ref| at most, so
//!   the group's |S| are at most that maximum plus n0_last·|μ − μ_ref|; and
//!   for the same n0, h only grows with W.
//!
//! A check recomputes the groups of the levels that changed, and rules out
//! each as a whole if its largest |S| stays below the smaller T at its ends
//! (else cut by cut). The groups that stayed the same are not even looked
//! at: a *summary*, started at some check with mean μ0, holds the
//! conditions under which all of them stay ruled out — v at least 255/256 of
//! v at the start, the rounding allowance (below) at most twice its start,
//! and |μ − μ0| at most the smallest *allowance* of the groups, the distance
//! the mean can move before a group's bound could reach its threshold
//! (computed with that v, the δ′ lower bound, and the width when the group is
//! folded in). A group that stays the same until the next check is folded
//! into the summary then; when the summary stops holding, a new one starts
//! and every group is folded in again (recomputed at the current mean if
//! its own allowance is too small). So a check at `clock = 1` recomputes two
//! levels on average, and scans nothing.
//!
//! If some cut cannot be ruled out, river's scan runs. In floating point,
//! river sums u1 differently from U − u0, and every quantity is rounded: an
//! allowance of 2⁻⁴⁰·(number of buckets + 16) times the magnitudes involved
//! (|U|, the sum of |bucket sum| over the window, which bounds every |u0|,
//! and n0·|μ|) is added to |S| — thousands of times any rounding error of
//! either side — and the thresholds are deflated by 10⁻⁹. Not finite values
//! or a negative variance rule nothing out. Tests compare the skip with the
//! full scan on many streams and parameters, and across save and restore
//! (the skip's state is not saved, and rebuilt after a restore).
//!
//! When the scan runs, each cut is first screened by a division-free
//! necessary condition with a wide safety margin; only cuts that pass it get
//! river's exact test. The screen never rejects a cut that river's test
//! would accept (see `Screen`), which the parity fixtures and a test check.

use std::cmp::Ordering;
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};

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
    /// Updates since the last check on the clock (river counts all updates
    /// and checks when the count is a multiple of `clock`: the same).
    #[serde(rename = "since_check")]
    tick: u32,
    /// What the last checks learnt about the cuts: derived from the buckets,
    /// so not saved, and rebuilt when needed.
    #[serde(skip)]
    skip: Skip,
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
            skip: Skip::default(),
        }
    }

    #[inline]
    fn insert(&mut self, x: f64, max_buckets: usize) {
        self.levels[0].push_back(Bucket(x, 0.0));
        self.skip.magnitude += x.abs();
        self.width += 1.0;
        let total = self.total;
        // Stored first and apart from the variance: the next update's
        // division needs the total, not this update's divisions.
        self.total = total + x;
        if self.width > 1.0 {
            // river adds 0.0 otherwise; the variance is 0.0 then anyway.
            let d = x - total / (self.width - 1.0);
            self.variance += (self.width - 1.0) * d * d / self.width;
        }
        self.compress(max_buckets);
    }

    /// Merges the two oldest buckets of every level that overflowed.
    #[inline]
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
        // Levels 0..=level changed.
        self.skip.stale = self.skip.stale.max(level + 1);
        self.skip.covered = self.skip.covered.max(level + 1);
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
        self.skip.stale = usize::MAX;
        self.skip.covered = usize::MAX;
        (u, n)
    }

    /// Whether river's `detect_change` runs at this update: on the clock,
    /// once the window is longer than the grace period.
    #[inline]
    fn on_clock(&mut self, c: &Config) -> bool {
        self.tick += 1;
        if self.tick < c.clock {
            return false;
        }
        self.tick = 0;
        self.width > f64::from(c.grace_period)
    }

    /// The rest of river's `detect_change`: drops old buckets while some cut
    /// splits the window into parts with different means.
    fn cut(&mut self, c: &Config) -> Option<Cut> {
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

    /// Whether the bounds of [`Skip`] prove that no cut passes river's test
    /// (false: maybe one does, run the scan).
    fn no_cut_possible(&mut self, c: &Config) -> bool {
        let levels = self.levels.len();
        let skip = &mut self.skip;
        if skip.groups.len() != levels {
            // New, restored, or a level was added or dropped.
            skip.groups.resize(levels, Group::default());
            skip.stale = levels;
            skip.magnitude = self.levels.iter().flatten().map(|b| b.0.abs()).sum();
        }
        // δ′ grows with the width, and the width only grows until a drift
        // resets the window: δ′ at an earlier width is a lower bound.
        let width = self.width;
        if !(skip.dp_width <= width && width <= 2.0 * skip.dp_width) {
            skip.dp_width = width;
            skip.dp_low = (2.0 * width.ln() / c.delta).ln() * (1.0 - 1e-9);
        }
        let b = Bounds::new(self, c.max_buckets);
        let skip = &mut self.skip;
        if !(b.noise.is_finite() && b.var >= 0.0 && b.c_sqrt.is_finite() && b.dp > 0.0) {
            return false;
        }
        if skip.stale >= levels || !skip.summary.holds(&b) {
            skip.summary = Summary::start(&b);
            skip.covered = levels;
        }
        let (stale, covered) = (skip.stale.min(levels), skip.covered.min(levels));
        skip.stale = stale;
        // Groups unchanged since the last check but not folded yet: fold.
        let moved = (b.mu - skip.summary.mu0).abs();
        for level in (stale..covered).rev() {
            let mut allow = skip.summary.allowance(&skip.groups[level], &b);
            if allow.partial_cmp(&moved).is_none_or(Ordering::is_lt) {
                // Computed at too old a mean, or near its threshold (or NaN).
                let from = skip
                    .groups
                    .get(level + 1)
                    .map_or(Sums::default(), |g| g.end);
                let g = &mut skip.groups[level];
                g.build(level, &self.levels[level], from, &b);
                if !g.ruled_out(level, &self.levels[level], from, &b) {
                    skip.covered = level + 1;
                    return false;
                }
                allow = skip.summary.allowance(g, &b);
            }
            skip.summary.allow = min_or_nan(skip.summary.allow, allow);
        }
        skip.covered = stale;
        // Changed groups: recompute and test, but fold them only if they are
        // still unchanged at the next check (most change often).
        let mut from = skip.groups.get(stale).map_or(Sums::default(), |g| g.end);
        for level in (0..stale).rev() {
            let g = &mut skip.groups[level];
            g.build(level, &self.levels[level], from, &b);
            skip.stale = level;
            if !g.ruled_out(level, &self.levels[level], from, &b) {
                return false;
            }
            from = g.end;
        }
        true
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

/// The cached bounds of `Window::no_cut_possible` (see the module docs).
#[derive(Debug, Clone, Default)]
struct Skip {
    /// `groups[i]` describes the cuts after the buckets of `levels[i]`.
    groups: Vec<Group>,
    /// `groups[..stale]` are out of date: their level or an older one changed.
    stale: usize,
    /// `groups[covered..]` are up to date and folded into `summary`.
    covered: usize,
    summary: Summary,
    /// At least the sum of |bucket sum| over the window, so at least any
    /// |u0|: summed when the groups are resized, then |x| added per value.
    magnitude: f64,
    /// δ′ at `dp_width`, slightly deflated: a lower bound of δ′ at any width
    /// from `dp_width` on.
    dp_low: f64,
    dp_width: f64,
}

/// The scan's running sums after some bucket: n0 and u0, summed from the
/// oldest bucket as the scan sums them.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    n0: f64,
    u0: f64,
}

/// What is known of the cuts after the buckets of one level, in the notation
/// of the module docs.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    /// How many cuts: one per bucket, but the newest bucket of level 0 ends
    /// the window.
    cuts: usize,
    /// n0 at the oldest and at the newest cut.
    n0_first: f64,
    n0_last: f64,
    /// The sums after the level's newest bucket.
    end: Sums,
    /// The window mean when the group was computed, and the largest |S| at
    /// that mean over the group's cuts.
    mu_ref: f64,
    s_abs: f64,
}

impl Group {
    /// Computes the group of `level` at the current mean, continuing the
    /// sums `from` the level above (older).
    fn build(&mut self, level: usize, buckets: &VecDeque<Bucket>, from: Sums, b: &Bounds) {
        let size = (1u64 << level) as f64;
        let cuts = if level == 0 {
            buckets.len().saturating_sub(1)
        } else {
            buckets.len()
        };
        let Sums { mut n0, mut u0 } = from;
        let mut s_abs: f64 = 0.0;
        // Level 0's newest bucket is no cut, but taking its S (about 0) too
        // keeps the loop simple.
        let (older, newer) = buckets.as_slices();
        for part in [older, newer] {
            for &Bucket(t, _) in part {
                n0 += size;
                u0 += t;
                s_abs = s_abs.max((u0 - n0 * b.mu).abs());
            }
        }
        self.cuts = cuts;
        self.n0_first = from.n0 + size;
        self.n0_last = from.n0 + cuts as f64 * size;
        self.end = Sums { n0, u0 };
        self.mu_ref = b.mu;
        self.s_abs = s_abs;
    }

    /// Whether no cut of a group just built can pass river's test: the
    /// whole group at once, else cut by cut.
    #[inline]
    fn ruled_out(&self, level: usize, buckets: &VecDeque<Bucket>, from: Sums, b: &Bounds) -> bool {
        self.cuts == 0
            || b.rules_out(
                self.s_abs + b.slack(self.n0_last),
                self.n0_first,
                self.n0_last,
            )
            || self.each_cut_ruled_out(level, buckets, from, b)
    }

    #[cold]
    fn each_cut_ruled_out(
        &self,
        level: usize,
        buckets: &VecDeque<Bucket>,
        from: Sums,
        b: &Bounds,
    ) -> bool {
        let size = (1u64 << level) as f64;
        let Sums { mut n0, mut u0 } = from;
        buckets.iter().take(self.cuts).all(|&Bucket(t, _)| {
            n0 += size;
            u0 += t;
            let s = u0 - n0 * b.mu;
            b.rules_out(s.abs() + b.slack(n0), n0, n0)
        })
    }
}

/// One check's quantities (see the module docs).
struct Bounds {
    width: f64,
    inv_width: f64,
    /// The window mean U/W and the variance per value v.
    mu: f64,
    var: f64,
    /// The lower bound of δ′.
    dp: f64,
    /// The rounding allowance relative to the magnitudes involved, and that
    /// times |U| + 2·`magnitude`.
    err: f64,
    noise: f64,
    /// 2·v·δ′/W and ⅔·δ′, slightly deflated.
    c_sqrt: f64,
    c_lin: f64,
}

impl Bounds {
    fn new(w: &Window, max_buckets: usize) -> Bounds {
        // Multiplying by 1/W instead of dividing rounds differently, by far
        // less than the allowances.
        let inv_width = 1.0 / w.width;
        let var = w.variance * inv_width;
        let dp = w.skip.dp_low;
        let buckets = w.levels.len() * (max_buckets + 1);
        let err = (buckets + 16) as f64 / (1u64 << 40) as f64;
        Bounds {
            width: w.width,
            inv_width,
            mu: w.total * inv_width,
            var,
            dp,
            err,
            noise: err * (w.total.abs() + 2.0 * w.skip.magnitude),
            c_sqrt: 2.0 * var * dp * inv_width * (1.0 - 1e-9),
            c_lin: 2.0 / 3.0 * dp * (1.0 - 1e-9),
        }
    }

    /// The rounding allowance for cuts up to `n0`: the noise, and the
    /// magnitude of n0·μ.
    #[inline]
    fn slack(&self, n0: f64) -> f64 {
        self.noise + 2.0 * self.err * n0 * self.mu.abs()
    }

    /// Whether no cut with n0 between `n0_a` and `n0_b` and |S| plus its
    /// rounding allowance at most `s_bound` (at the current mean) can pass
    /// river's test. Not finite values rule nothing out.
    #[inline]
    fn rules_out(&self, s_bound: f64, n0_a: f64, n0_b: f64) -> bool {
        let excess = s_bound - self.c_lin;
        let h = |n0: f64| n0 * (self.width - n0);
        (excess <= 0.0) | (excess * excess < self.c_sqrt * h(n0_a).min(h(n0_b)))
    }
}

/// Conditions under which every group folded into it stays ruled out: the
/// mean within `allow` of `mu0`, v at least `var_min` and the noise at most
/// `noise_max`. Set at a check; groups are folded in at later checks too.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    mu0: f64,
    allow: f64,
    var_min: f64,
    noise_max: f64,
    /// 2·`var_min`·δ′, ⅔·δ′ (slightly deflated) and the rounding allowance
    /// at the start, for the allowances of groups.
    c_sqrt_w: f64,
    c_lin: f64,
    err: f64,
}

impl Summary {
    fn start(b: &Bounds) -> Summary {
        let var_min = b.var * (1.0 - 1.0 / 256.0);
        Summary {
            mu0: b.mu,
            allow: f64::INFINITY,
            var_min,
            noise_max: 2.0 * b.noise + b.err * b.width * b.var.sqrt(),
            c_sqrt_w: 2.0 * var_min * b.dp * (1.0 - 1e-9),
            c_lin: b.c_lin,
            err: b.err,
        }
    }

    fn holds(&self, b: &Bounds) -> bool {
        (b.mu - self.mu0).abs() <= self.allow
            && b.var >= self.var_min
            && b.noise <= self.noise_max
            && b.err <= self.err
    }

    /// How far the mean may move from `mu0` with `g` still ruled out, as long
    /// as the summary holds and `g` does not change (the width only grows,
    /// which only raises the threshold): at most (threshold − bound)/n0_last,
    /// and a little less as W ≥ n0_last. Negative: not even now.
    fn allowance(&self, g: &Group, b: &Bounds) -> f64 {
        if g.cuts == 0 {
            return f64::INFINITY;
        }
        let h = |n0: f64| n0 * (b.width - n0);
        let threshold =
            (self.c_sqrt_w * b.inv_width * h(g.n0_first).min(h(g.n0_last))).sqrt() + self.c_lin;
        let bound = g.s_abs
            + g.n0_last * (self.mu0 - g.mu_ref).abs()
            + self.noise_max
            + 2.0 * self.err * g.n0_last * g.mu_ref.abs();
        let room = threshold - bound - 1e-9 * (threshold + bound);
        if room >= 0.0 {
            room * b.inv_width
        } else {
            f64::NEG_INFINITY
        }
    }
}

/// The smaller of two values, NaN if either is.
fn min_or_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
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
        if self.window.on_clock(&self.config) && !self.window.no_cut_possible(&self.config) {
            self.scan()
        } else {
            Outcome::None
        }
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl Adwin {
    /// River's scan, when the bounds could not rule out every cut: rare on
    /// a stationary stream.
    #[cold]
    fn scan(&mut self) -> Outcome {
        let Some(cut) = self.window.cut(&self.config) else {
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
}

/// Bucket levels a restored window may have: 2^60 values is beyond any log.
const MAX_LEVELS: usize = 60;

impl super::Restore for Adwin {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        let w = &mut self.window;
        w.skip = Skip::default();
        let levels = w.levels.len();
        super::check((1..=MAX_LEVELS).contains(&levels), || {
            format!("{levels} bucket levels (expected 1 to {MAX_LEVELS})")
        })?;
        for (i, level) in w.levels.iter().enumerate() {
            super::check(level.len() <= config.max_buckets, || {
                format!(
                    "level {i} holds {} buckets, more than max_buckets {}",
                    level.len(),
                    config.max_buckets
                )
            })?;
        }
        super::check(levels == 1 || !w.levels[levels - 1].is_empty(), || {
            "the oldest bucket level is empty".to_string()
        })?;
        let width: f64 = w
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| l.len() as f64 * (1u64 << i) as f64)
            .sum();
        super::check(w.width == width && width <= super::MAX_COUNT as f64, || {
            format!("width {} but the buckets hold {width} values", w.width)
        })?;
        super::check(w.tick < config.clock, || {
            format!("since_check {} is not below clock {}", w.tick, config.clock)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectorConfig;
    use crate::detect::parity::{self, Fixture};
    use crate::detect::synthetic::Rng;
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

    /// A state saved before `tick` counted from the last check (it counted
    /// every update) is refused rather than read with a shifted clock.
    #[test]
    fn a_state_with_the_old_tick_is_refused() {
        let mut d = Adwin::new(Config::default());
        for i in 0..100 {
            d.update(f64::from(i % 7), 0);
        }
        let saved = serde_json::to_value(&d).unwrap();
        assert!(serde_json::from_value::<Adwin>(saved.clone()).is_ok());
        let old = saved.to_string().replace("\"since_check\"", "\"tick\"");
        assert_ne!(old, saved.to_string());
        assert!(serde_json::from_str::<Adwin>(&old).is_err());
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

    /// Runs `values` through a window as [`Adwin::update`] would, asking
    /// both the skip and the exact scan at every check, and panics if the
    /// skip ever rules out a check where the scan finds a cut. Returns how
    /// many checks the skip settled, and how many there were.
    fn skip_agrees(c: &Config, name: &str, values: &[f64]) -> (usize, usize) {
        let mut w = Window::new();
        let (mut skipped, mut checks) = (0, 0);
        for (i, &x) in values.iter().enumerate() {
            if i % 1009 == 500 {
                // As when a checkpoint is restored (JSON has no NaN and
                // infinities: forgetting the skip's state is the same).
                let state = serde_json::to_value(&w).unwrap();
                match serde_json::from_value(state) {
                    Ok(restored) => w = restored,
                    Err(_) => w.skip = Skip::default(),
                }
            }
            w.insert(x, c.max_buckets);
            w.tick += 1;
            if w.tick < c.clock {
                continue;
            }
            w.tick = 0;
            if w.width <= f64::from(c.grace_period) {
                continue;
            }
            checks += 1;
            let ruled_out = w.no_cut_possible(c);
            if w.find_cut(c) {
                assert!(!ruled_out, "{name}, value {i}: the skip hid a cut ({c:?})");
                // As after a drift.
                w = Window::new();
            } else if ruled_out {
                skipped += 1;
            }
        }
        (skipped, checks)
    }

    fn configs() -> Vec<Config> {
        let d = Config::default();
        vec![
            Config {
                clock: 1,
                ..d.clone()
            },
            Config {
                clock: 32,
                ..d.clone()
            },
            Config {
                clock: 7,
                delta: 0.1,
                ..d.clone()
            },
            Config {
                clock: 1,
                delta: 1e-5,
                ..d.clone()
            },
            Config {
                clock: 1,
                max_buckets: 2,
                min_window_length: 1,
                grace_period: 0,
                ..d.clone()
            },
            Config {
                clock: 3,
                max_buckets: 3,
                min_window_length: 10,
                grace_period: 50,
                ..d.clone()
            },
            Config {
                clock: 1,
                max_buckets: 40,
                delta: 0.3,
                ..d
            },
        ]
    }

    /// The skip must be invisible: it only settles checks without a cut.
    #[test]
    fn skip_never_hides_a_cut() {
        let fixture = Fixture::load(include_str!("../../fixtures/parity/adwin.json"));
        let mut streams: Vec<(String, Vec<f64>)> = fixture
            .streams()
            .map(|(name, values)| {
                (
                    name.to_string(),
                    values.iter().take(30_000).copied().collect(),
                )
            })
            .collect();
        let mut rng = Rng::new(3);
        let mut u = || rng.uniform();
        let noise: Vec<f64> = (0..30_000).map(|_| u() + u() - 1.0).collect();
        let shifted = |i: usize| if (i / 3000) % 2 == 1 { 0.3 } else { 0.0 };
        for (scale, offset) in [
            (1.0, 0.0),
            (1e-300, 0.0),
            (1e-9, 1.0),
            (1e9, -3e12),
            (1e150, 1e153),
            (1.0, -1e7),
            (1.0, 1e15),
        ] {
            streams.push((
                format!("noise {scale:e} {offset:e}"),
                noise.iter().map(|x| x * scale + offset).collect(),
            ));
            streams.push((
                format!("shifts {scale:e} {offset:e}"),
                noise
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (x + shifted(i)) * scale + offset)
                    .collect(),
            ));
        }
        let bits = |p: f64, u: &mut dyn FnMut() -> f64| f64::from(u8::from(u() < p));
        streams.push((
            "errors".into(),
            (0..30_000)
                .map(|i| bits(if i < 15_000 { 0.1 } else { 0.2 }, &mut u))
                .collect(),
        ));
        streams.push(("zeros".into(), vec![0.0; 5000]));
        streams.push((
            "ones then zeros".into(),
            (0..8000).map(|i| f64::from(i < 4000)).collect(),
        ));
        streams.push((
            "huge cancelling".into(),
            (0..8000)
                .map(|i| if i % 2 == 0 { 1e300 } else { -1e300 })
                .collect(),
        ));
        streams.push((
            "overflow".into(),
            (0..4000)
                .map(|i| if i < 2000 { 1e308 } else { -1e308 })
                .collect(),
        ));
        streams.push((
            "not finite".into(),
            (0..3000)
                .map(|i| match i {
                    1000 => f64::INFINITY,
                    2000 => f64::NAN,
                    _ => u(),
                })
                .collect(),
        ));
        for c in configs() {
            for (name, values) in &streams {
                skip_agrees(&c, name, values);
            }
        }
    }

    /// And it must settle most checks of a stationary stream, or it is no
    /// use: the whole point is that clock 1 does not scan every cut.
    #[test]
    fn skip_settles_stationary_checks() {
        let mut rng = Rng::new(11);
        let mut u = || rng.uniform();
        let values: Vec<f64> = (0..200_000)
            .map(|_| 0.5 + 0.1 * (u() + u() - 1.0))
            .collect();
        for c in [
            Config {
                clock: 1,
                ..Config::default()
            },
            Config::default(),
        ] {
            let (skipped, checks) = skip_agrees(&c, "stationary", &values);
            assert!(
                skipped * 100 >= checks * 95,
                "{skipped} of {checks} ({c:?})"
            );
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
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The skip never rules out a check where river's scan finds a cut,
        /// whatever the parameters and the scale of the values.
        #[test]
        fn skip_agrees_with_the_scan(
            values in parity::shifting_stream(3000),
            scale in prop_oneof![Just(1.0), Just(1e-6), Just(1e12), -1e3f64..1e3],
            offset in prop_oneof![Just(0.0), Just(1e9), -1e3f64..1e3],
            clock in prop_oneof![Just(1u32), Just(2), Just(32)],
            max_buckets in 2usize..8,
            min_window_length in prop_oneof![Just(1u32), Just(5), 1u32..50],
            delta in prop_oneof![Just(0.002), Just(1e-5), 1e-3f64..0.5],
        ) {
            let c = Config {
                clock,
                max_buckets,
                min_window_length,
                delta,
                ..Config::default()
            };
            let values: Vec<f64> = values.iter().map(|x| x * scale + offset).collect();
            skip_agrees(&c, "generated", &values);
        }
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
