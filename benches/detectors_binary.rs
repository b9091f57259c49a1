//! Updates per second of the 0/1 detectors (DDM, EDDM, HDDM-A, HDDM-W) and
//! the scale-free CUSUM and EWMA charts, each over 1M values, through the
//! same `DetectorConfig::build` and `Detector::update` path the pipeline uses.
//!
//! `cargo bench --bench detectors_binary`; criterion reports the time per 1M
//! updates and the throughput in elements (updates) per second.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mmon::detect::{Detector, DetectorConfig, Direction, Outcome, Params};
use std::hint::black_box;

const N: usize = 1_000_000;

/// SplitMix64, so the streams are the same on every run and machine.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 0/1 errors at a rate that steps 0.1 → 0.3 → 0.1 … every 100k values, so
/// the detectors warn, drift and reset as in use.
fn bits() -> Vec<f64> {
    let mut rng = Rng(1);
    (0..N)
        .map(|i| {
            let rate = if (i / 100_000) % 2 == 0 { 0.1 } else { 0.3 };
            if rng.uniform() < rate { 1.0 } else { 0.0 }
        })
        .collect()
}

/// Log-normal latencies (median 40, σ 0.45 in logs) whose median steps ×1.5
/// every 200k values.
fn latencies() -> Vec<f64> {
    let mut rng = Rng(2);
    (0..N)
        .map(|i| {
            let (u1, u2) = (1.0 - rng.uniform(), rng.uniform());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let median = if (i / 200_000) % 2 == 0 { 40.0 } else { 60.0 };
            median * (0.45 * z).exp()
        })
        .collect()
}

fn config(name: &str, params: &str, direction: Direction) -> DetectorConfig {
    let table: toml::Table = toml::from_str(params).expect("bench params are TOML");
    let mut p = Params::new(table, "bench.params");
    DetectorConfig::from_params(name, direction, &mut p)
        .expect("bench params are valid")
        .expect("known detector")
}

fn bench(c: &mut Criterion) {
    let bits = bits();
    let latencies = latencies();
    let cases: [(&str, &str, &str, &[f64]); 7] = [
        ("ddm", "ddm", "", &bits),
        ("eddm", "eddm", "", &bits),
        ("hddm-a", "hddm-a", "", &bits),
        ("hddm-w", "hddm-w", "", &bits),
        ("cusum", "cusum", "", &latencies),
        (
            "cusum-log",
            "cusum",
            "h = 20\nwarmup = 1000\nlog = true",
            &latencies,
        ),
        ("ewma", "ewma", "", &latencies),
    ];
    let mut group = c.benchmark_group("detectors_binary");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20);
    for (label, name, params, values) in cases {
        let cfg = config(name, params, Direction::Increase);
        group.bench_function(BenchmarkId::new("update_1m", label), |b| {
            b.iter(|| {
                let mut d = cfg.build();
                let mut drifts = 0u32;
                for &x in values {
                    if let Outcome::Drift(_) = d.update(black_box(x), 0) {
                        drifts += 1;
                    }
                }
                black_box(drifts)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
