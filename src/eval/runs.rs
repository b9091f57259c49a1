//! Replaying the parsed logs once per configuration (and grid point), in
//! parallel: the one place `mmon eval` uses threads.
//!
//! Each run is independent (its own [`crate::pipeline::Pipeline`] over the
//! shared, read-only records), so runs are handed to
//! `std::thread::available_parallelism()` workers one at a time from a
//! shared counter; results come back in run order whatever the schedule.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::records::Records;
use super::score::Detection;
use crate::config::Config;
use crate::window::{EventKind, Severity};

/// A drift window of one model's stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    pub model: u32,
    pub detection: Detection,
}

/// Replays `records` through each configuration on up to `jobs` threads;
/// for each run, each monitor's drift windows.
pub fn run_all(records: &Records, configs: &[&Config], jobs: usize) -> Vec<Vec<Vec<Found>>> {
    let n = configs.len();
    let jobs = jobs.clamp(1, n.max(1));
    if jobs == 1 {
        return configs.iter().map(|c| windows(records, c)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Vec<Vec<Found>>> = vec![Vec::new(); n];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(config) = configs.get(i) else {
                            break;
                        };
                        done.push((i, windows(records, config)));
                    }
                    done
                })
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(done) => {
                    for (i, w) in done {
                        results[i] = w;
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    results
}

/// The drift windows of each monitor of `config` over `records`: closed
/// windows of severity drift (a warning window that escalated counts from
/// its first drift-level detection; one that never did is not a detection).
pub fn windows(records: &Records, config: &Config) -> Vec<Vec<Found>> {
    // Windows name their metric, detector and direction, not their monitor;
    // monitors equal in all of these produce the same windows, one after
    // the other in configuration order, so they take turns.
    let keys: Vec<_> = config
        .monitors
        .iter()
        .map(|m| {
            (
                m.metric.as_str(),
                m.detector.name(),
                m.detector.params_json(),
                m.direction,
            )
        })
        .collect();
    let same: Vec<Vec<usize>> = keys
        .iter()
        .map(|k| (0..keys.len()).filter(|&j| keys[j] == *k).collect())
        .collect();
    let mut turn = vec![0usize; keys.len()];
    let mut out: Vec<Vec<Found>> = vec![Vec::new(); keys.len()];
    records.replay(config, |event| {
        let w = &event.window;
        if event.kind != EventKind::Closed || w.severity != Severity::Drift {
            return;
        }
        let Some(first) = keys.iter().position(|k| {
            k.0 == &*w.metric
                && k.1 == w.detector.name
                && k.2 == w.detector.params
                && k.3 == w.direction
        }) else {
            return;
        };
        let group = &same[first];
        let k = group[turn[first] % group.len()];
        turn[first] += 1;
        let Some(model) = records.model_number(&w.model_id) else {
            return;
        };
        out[k].push(Found {
            model,
            detection: Detection {
                start: w.start.index,
                detected: w.detected.index,
                before: Some(w.before),
                after: Some(w.after),
            },
        });
    });
    out
}
