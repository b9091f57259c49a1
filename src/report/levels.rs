//! The level of every stream over time, in a bounded number of buckets.
//!
//! The pictures of the HTML and markdown reports need each metric's level
//! along the whole run, but a run may hold 100M records. A [`Series`] keeps
//! at most [`MAX_BUCKETS`] buckets (count, sum, sum of squares, min, max and
//! time range); when it is full, neighbours merge pairwise and each bucket
//! covers twice as many values. Buckets depend only on the sequence of
//! values, so a replay and a watch of the same records draw the same picture.
//!
//! Series are kept per model and metric (all versions together, since a
//! panel shows the model's metric over time), plus the times at which each
//! of the model's versions was first and last seen.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::record::{Name, Record};

/// Buckets per series before neighbours merge.
pub const MAX_BUCKETS: usize = 1024;
const RECENT: usize = 16;
/// Versions remembered per model; later ones are counted, not drawn.
const MAX_VERSIONS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
    /// Event time (ns) of the first and last value.
    pub first_ns: i64,
    pub last_ns: i64,
}

impl Bucket {
    fn of(x: f64, t: i64) -> Bucket {
        Bucket {
            count: 1,
            sum: x,
            sum_sq: x * x,
            min: x,
            max: x,
            first_ns: t,
            last_ns: t,
        }
    }

    fn add(&mut self, x: f64, t: i64) {
        self.count += 1;
        self.sum += x;
        self.sum_sq += x * x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.last_ns = t;
    }

    fn merge(&mut self, o: &Bucket) {
        self.count += o.count;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.last_ns = o.last_ns;
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    pub fn std_dev(&self) -> f64 {
        let m = self.mean();
        (self.sum_sq / self.count as f64 - m * m).max(0.0).sqrt()
    }

    /// The middle of the bucket's time range.
    pub fn mid_ns(&self) -> i64 {
        self.first_ns + (self.last_ns - self.first_ns) / 2
    }
}

/// One stream's level over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Values per full bucket: a power of two.
    width: u64,
    pub buckets: Vec<Bucket>,
    pub count: u64,
}

impl Series {
    pub fn push(&mut self, x: f64, t: i64) {
        if self.width == 0 {
            self.width = 1;
        }
        self.count += 1;
        match self.buckets.last_mut() {
            Some(b) if b.count < self.width => b.add(x, t),
            _ => {
                if self.buckets.len() == MAX_BUCKETS {
                    self.halve();
                    return self.push_after_halving(x, t);
                }
                self.buckets.push(Bucket::of(x, t));
            }
        }
    }

    fn push_after_halving(&mut self, x: f64, t: i64) {
        match self.buckets.last_mut() {
            Some(b) if b.count < self.width => b.add(x, t),
            _ => self.buckets.push(Bucket::of(x, t)),
        }
    }

    fn halve(&mut self) {
        let merged: Vec<Bucket> = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut b = pair[0];
                if let Some(o) = pair.get(1) {
                    b.merge(o);
                }
                b
            })
            .collect();
        self.buckets = merged;
        self.width *= 2;
    }

    /// The series in at most `n` points (merging neighbours), for sparklines.
    pub fn downsample(&self, n: usize) -> Vec<Bucket> {
        if self.buckets.len() <= n || n == 0 {
            return self.buckets.clone();
        }
        let per = self.buckets.len().div_ceil(n);
        self.buckets
            .chunks(per)
            .map(|c| {
                let mut b = c[0];
                for o in &c[1..] {
                    b.merge(o);
                }
                b
            })
            .collect()
    }
}

/// When a model version was first and last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSpan {
    pub version: Name,
    pub first_ns: i64,
    pub last_ns: i64,
    pub records: u64,
}

#[derive(Debug, Default)]
struct ModelLevels {
    series: Vec<Series>,
    versions: Vec<VersionSpan>,
    more_versions: u64,
}

/// Every stream's [`Series`], fed one record at a time.
#[derive(Debug, Default)]
pub struct Levels {
    /// The monitored metric names, in the order of a record's values.
    metrics: Vec<Arc<str>>,
    models: Vec<ModelLevels>,
    names: Vec<Name>,
    by_name: foldhash::HashMap<Name, usize>,
    /// Recent models and their slots, by the address of their name: a
    /// pointer comparison settles most records without a hash lookup.
    recent: [Option<(Name, usize)>; RECENT],
}

impl Levels {
    pub fn new(metrics: &[String]) -> Levels {
        Levels {
            metrics: metrics.iter().map(|m| Arc::from(m.as_str())).collect(),
            ..Levels::default()
        }
    }

    pub fn observe(&mut self, record: &Record) {
        let id = record.model();
        let way = (id.as_str().as_ptr() as usize >> 4) % RECENT;
        let slot = match self.recent[way] {
            Some((name, slot)) if name == id => slot,
            _ => {
                let slot = match self.by_name.get(&id) {
                    Some(&slot) => slot,
                    None => {
                        self.models.push(ModelLevels {
                            series: vec![Series::default(); self.metrics.len()],
                            ..ModelLevels::default()
                        });
                        self.names.push(id);
                        self.by_name.insert(id, self.models.len() - 1);
                        self.models.len() - 1
                    }
                };
                self.recent[way] = Some((id, slot));
                slot
            }
        };
        let model = &mut self.models[slot];
        for (series, &x) in model.series.iter_mut().zip(record.values.iter()) {
            if !x.is_nan() {
                series.push(x, record.time_ns);
            }
        }
        if let Some(v) = record.version {
            if let Some(span) = model.versions.iter_mut().find(|s| s.version == v) {
                span.last_ns = record.time_ns;
                span.records += 1;
            } else if model.versions.len() < MAX_VERSIONS {
                model.versions.push(VersionSpan {
                    version: v,
                    first_ns: record.time_ns,
                    last_ns: record.time_ns,
                    records: 1,
                });
            } else {
                model.more_versions += 1;
            }
        }
    }

    /// Every (model, metric) with at least one value, sorted by name.
    pub fn streams(&self) -> BTreeMap<(&str, &str), &Series> {
        let mut out = BTreeMap::new();
        for (model, levels) in self.names.iter().zip(&self.models) {
            for (metric, series) in self.metrics.iter().zip(&levels.series) {
                if series.count > 0 {
                    out.insert((&**model, &**metric), series);
                }
            }
        }
        out
    }

    /// The models seen, sorted, with the metrics each carried.
    pub fn models(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out = BTreeMap::new();
        for (model, levels) in self.names.iter().zip(&self.models) {
            let seen = self
                .metrics
                .iter()
                .zip(&levels.series)
                .filter(|(_, s)| s.count > 0)
                .map(|(m, _)| &**m)
                .collect();
            out.insert(&**model, seen);
        }
        out
    }

    pub fn versions(&self, model: &str) -> &[VersionSpan] {
        self.by_name
            .get(&Name::new(model))
            .map_or(&[][..], |&k| self.models[k].versions.as_slice())
    }

    /// The first and last event time of any value.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.models
            .iter()
            .flat_map(|m| m.series.iter())
            .filter_map(|s| Some((s.buckets.first()?.first_ns, s.buckets.last()?.last_ns)))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_series_halves_and_keeps_every_value() {
        let mut s = Series::default();
        for i in 0..10_000u64 {
            s.push(i as f64, i as i64);
        }
        assert!(s.buckets.len() <= MAX_BUCKETS);
        assert!(s.buckets.len() > MAX_BUCKETS / 2);
        let total: u64 = s.buckets.iter().map(|b| b.count).sum();
        assert_eq!(total, 10_000);
        let sum: f64 = s.buckets.iter().map(|b| b.sum).sum();
        assert_eq!(sum, (0..10_000u64).sum::<u64>() as f64);
        // Buckets are contiguous and in order.
        for pair in s.buckets.windows(2) {
            assert_eq!(pair[0].max + 1.0, pair[1].min);
        }
        assert_eq!(s.buckets[0].first_ns, 0);
        assert_eq!(s.buckets.last().unwrap().last_ns, 9_999);
    }

    #[test]
    fn the_same_values_give_the_same_buckets_however_they_arrive() {
        let mut a = Series::default();
        let mut b = Series::default();
        for i in 0..5000u64 {
            a.push((i % 17) as f64, i as i64);
        }
        for i in 0..5000u64 {
            b.push((i % 17) as f64, i as i64);
        }
        assert_eq!(a, b);
        let down = a.downsample(48);
        assert!(down.len() <= 48);
        assert_eq!(down.iter().map(|b| b.count).sum::<u64>(), 5000);
    }
}
