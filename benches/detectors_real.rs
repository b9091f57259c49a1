//! Throughput of the real-valued detectors (`adwin`, `page-hinkley`,
//! `kswin`), fed through `DetectorState` (the `match` over every detector)
//! as the pipeline feeds them.
//!
//! The stream is stationary Gaussian noise (mean 0.5, sd 0.1, 6 decimals),
//! the kind `bench/river_detectors.py` feeds river, so `bench/detectors.sh`
//! can put the two side by side. A stationary stream is ADWIN's worst case:
//! its window grows to the whole stream and every check scans every bucket.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mmon::detect::{Detector, DetectorConfig, Direction, Outcome, Params};
use std::hint::black_box;
use std::time::Duration;

/// Deterministic N(0.5, 0.1) values (SplitMix64 and Box–Muller).
fn stream(n: usize) -> Vec<f64> {
    let mut state = 7u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (uniform().max(f64::MIN_POSITIVE), uniform());
            let g = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            ((0.5 + 0.1 * g) * 1e6).round() / 1e6
        })
        .collect()
}

fn config(name: &str, params: &str) -> DetectorConfig {
    let table: toml::Table = params.parse().expect("bench params");
    let mut p = Params::new(table, "bench");
    DetectorConfig::from_params(name, Direction::Both, &mut p)
        .expect("valid params")
        .expect("known detector")
}

fn run(config: &DetectorConfig, values: &[f64]) -> usize {
    let mut d = config.build();
    let mut drifts = 0;
    for &x in values {
        if let Outcome::Drift(_) = d.update(black_box(x), 0) {
            drifts += 1;
        }
    }
    drifts
}

fn detectors(c: &mut Criterion) {
    let million = stream(1_000_000);
    let cases = [
        ("adwin_clock32", config("adwin", ""), 1_000_000),
        ("adwin_clock1", config("adwin", "clock = 1"), 1_000_000),
        ("page_hinkley", config("page-hinkley", ""), 1_000_000),
        ("kswin", config("kswin", "seed = 1"), 200_000),
    ];
    let mut group = c.benchmark_group("detectors_real");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    for (name, config, n) in &cases {
        let values = &million[..*n];
        group.throughput(Throughput::Elements(*n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), values, |b, values| {
            b.iter(|| run(config, values))
        });
    }
    group.finish();
}

criterion_group!(benches, detectors);
criterion_main!(benches);
