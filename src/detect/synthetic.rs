//! Deterministic synthetic streams for the detectors' tests: a SplitMix64
//! generator with uniform, normal (Box–Muller) and 0/1 draws, so a test's
//! stream is the same on every machine and needs no dependency, and the
//! delay and false-alarm measurements of the scale-free detectors.

use super::{Detector, Outcome};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// 1 with probability `rate`, else 0.
    pub fn bit(&mut self, rate: f64) -> f64 {
        if self.uniform() < rate { 1.0 } else { 0.0 }
    }
}

/// Mean delay (values after the step until the drift, counting the
/// detecting value) of a `shift`-σ step on the first value after the
/// warmup, over `trials` seeded streams: the zero-state run length.
pub fn mean_delay<D: Detector>(new: impl Fn() -> D, shift: f64, before: usize, trials: u64) -> f64 {
    let mut total = 0;
    for seed in 0..trials {
        let mut rng = Rng::new(1000 + seed);
        let values: Vec<f64> = (0..before + 5000)
            .map(|i| 10.0 + rng.normal() + if i >= before { shift } else { 0.0 })
            .collect();
        let mut d = new();
        let at = values
            .iter()
            .position(|&x| matches!(d.update(x, 0), Outcome::Drift(_)))
            .expect("the step is detected");
        assert!(at >= before, "no false alarm before the step");
        total += at + 1 - before;
    }
    total as f64 / trials as f64
}

/// Drifts on `n` stationary normal values.
pub fn false_alarms<D: Detector>(mut d: D, n: usize, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    (0..n)
        .filter(|_| matches!(d.update(10.0 + rng.normal(), 0), Outcome::Drift(_)))
        .count()
}
