//! The reference that `cusum` and `ewma` measure changes against, in
//! standard deviations: the mean and standard deviation of the first `warmup`
//! values of the stream (after a start or a drift), optionally of their
//! natural logarithms.
//!
//! Working in standard deviations of the stream's own reference makes the
//! thresholds scale-free: the same `k`, `h` or `L` suit a latency in
//! milliseconds and an accuracy in [0, 1]. With `log = true` the detector sees
//! `ln(x)`, so a multiplicative change (latency × 1.5) is a fixed shift
//! whatever the level, and a log-normal metric becomes normal, which is what
//! the textbook thresholds assume. A value ≤ 0 has no logarithm: in log mode
//! it is skipped (it neither teaches the reference nor moves the statistic),
//! though it still counts as a position and in the `after` estimate.
//!
//! The estimates a detector reports are in the original units: `before` is
//! the arithmetic mean of the raw warmup values, `after` the mean of the raw
//! values since the estimated start.

use serde::{Deserialize, Serialize};

use super::{ParamError, Params};

/// Smallest standard deviation used, relative to the mean's magnitude (at
/// least 1e-12 absolute): a constant warmup would otherwise make every later
/// departure infinitely many standard deviations away.
const MIN_RELATIVE_SD: f64 = 1e-9;

/// How the reference is learned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Learning {
    pub warmup: u64,
    pub log: bool,
}

impl Learning {
    pub fn from_params(p: &mut Params, default_warmup: i64) -> Result<Learning, ParamError> {
        let warmup = p.int(
            "warmup",
            default_warmup,
            |w| (2..=10_000_000).contains(&w),
            "must be in 2..=10000000",
        )?;
        let log = p.bool("log", false)?;
        Ok(Learning {
            warmup: warmup as u64,
            log,
        })
    }

    /// [`Learning::transform`] of `x`, given `ln_x` (`ln x` if `x` is
    /// positive and finite, as the pipeline computes it) so that log mode
    /// need not compute it again.
    pub fn transform_logged(&self, x: f64, ln_x: Option<f64>) -> Option<f64> {
        if self.log { ln_x } else { self.transform(x) }
    }

    /// The value the statistic sees for `x`, or `None` for one to skip.
    pub fn transform(&self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            None
        } else if self.log {
            (x > 0.0).then(|| x.ln())
        } else {
            Some(x)
        }
    }
}

/// A learned reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Mean and standard deviation of the transformed warmup values.
    pub mean: f64,
    pub sd: f64,
    /// Mean of the raw warmup values, the `before` of a change.
    pub raw_mean: f64,
}

impl Reference {
    /// `y` (a transformed value) in standard deviations from the mean.
    pub fn z(&self, y: f64) -> f64 {
        (y - self.mean) / self.sd
    }
}

/// The reference being learned (Welford's running mean and variance).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Warmup {
    n: u64,
    mean: f64,
    m2: f64,
    raw_sum: f64,
}

impl Warmup {
    /// Learns from one transformed value `y` (raw `x`); returns the reference
    /// once `warmup` values have been seen.
    /// Refuses a restored warmup that has already seen `warmup` values (it
    /// would have become a reference then).
    pub fn check(&self, warmup: u64) -> Result<(), super::StateError> {
        super::check(self.n < warmup, || {
            format!("a warmup of {} values when warmup is {warmup}", self.n)
        })
    }

    pub fn learn(&mut self, y: f64, x: f64, warmup: u64) -> Option<Reference> {
        self.n += 1;
        let delta = y - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (y - self.mean);
        self.raw_sum += x;
        if self.n < warmup {
            return None;
        }
        let sd = (self.m2 / (self.n - 1) as f64).sqrt();
        let floor = (self.mean.abs() * MIN_RELATIVE_SD).max(1e-12);
        let reference = Reference {
            mean: self.mean,
            sd: sd.max(floor),
            raw_mean: self.raw_sum / self.n as f64,
        };
        *self = Warmup::default();
        Some(reference)
    }
}

/// The stretch since a statistic last left its resting point (zero for a
/// CUSUM sum, the centre line for an EWMA): the estimated start of a change.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Run {
    /// Positions in the stretch, the current one included; 0 when at rest.
    pub len: u64,
    /// Sum of the raw values in the stretch.
    pub raw_sum: f64,
}

impl Run {
    /// Extends the stretch with raw `x` while `active`, or ends it.
    pub fn track(&mut self, active: bool, x: f64) {
        if active {
            self.len += 1;
            self.raw_sum += x;
        } else {
            *self = Run::default();
        }
    }

    /// A change from `reference` to the mean of this stretch.
    pub fn change(&self, reference: &Reference) -> super::Change {
        super::Change {
            lookback: self.len.saturating_sub(1),
            before: reference.raw_mean,
            after: if self.len > 0 {
                self.raw_sum / self.len as f64
            } else {
                reference.raw_mean
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_mean_and_sample_sd_then_starts_again() {
        let mut w = Warmup::default();
        assert_eq!(w.learn(1.0, 1.0, 4), None);
        assert_eq!(w.learn(2.0, 2.0, 4), None);
        assert_eq!(w.learn(3.0, 3.0, 4), None);
        let r = w.learn(4.0, 4.0, 4).unwrap();
        assert_eq!(r.mean, 2.5);
        assert!((r.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(r.raw_mean, 2.5);
        assert_eq!(w, Warmup::default());
        assert!((r.z(2.5 + 2.0 * r.sd) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_constant_warmup_gets_a_tiny_but_finite_sd() {
        let mut w = Warmup::default();
        let r = (0..10).find_map(|_| w.learn(5.0, 5.0, 10)).unwrap();
        assert_eq!(r.sd, 5e-9);
        assert!(r.z(5.1).is_finite());
    }

    #[test]
    fn log_mode_skips_what_has_no_logarithm() {
        let l = Learning {
            warmup: 10,
            log: true,
        };
        assert_eq!(l.transform(0.0), None);
        assert_eq!(l.transform(-3.0), None);
        assert_eq!(l.transform(1.0), Some(0.0));
        let plain = Learning {
            warmup: 10,
            log: false,
        };
        assert_eq!(plain.transform(-3.0), Some(-3.0));
        assert_eq!(plain.transform(f64::NAN), None);
    }
}
