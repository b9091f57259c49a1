//! Matching detections to known changes, stream by stream, and the numbers
//! `mmon eval` reports (SPEC §9).
//!
//! The rule: a detection counts for the latest change at or before it, if
//! it comes within `max_delay` positions of that change and before the
//! change's end (when the truth gives one). The first detection of a change
//! is a hit (a true positive); further detections of the same change are
//! duplicates, neither hits nor false alarms, since an alerting system that
//! repeats itself about a real problem is noisy but not wrong. Every other
//! detection is a false alarm: one before any change, one after the change
//! ended, one too late. A change without a hit is missed, including a
//! change the log never reaches.

use serde::Serialize;

use super::tcpd;

/// A known change of one stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// Its position in the stream; `None` when the log does not reach it.
    pub index: Option<u64>,
    /// Where the changed level ends (a recovery), if it does.
    pub end: Option<u64>,
    /// The true levels before and after, where known.
    pub before: Option<f64>,
    pub after: Option<f64>,
}

/// One drift window of one stream, as the scorer needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The window's located change start.
    pub start: u64,
    /// Its first drift-level detection.
    pub detected: u64,
    /// The window's measured levels (`None` for the baselines).
    pub before: Option<f64>,
    pub after: Option<f64>,
}

/// What one monitor (or one baseline) did over its streams, before the
/// summary statistics are taken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub streams: u64,
    pub records: u64,
    pub changes: u64,
    pub detected: u64,
    pub duplicates: u64,
    pub false_alarms: u64,
    delays: Vec<f64>,
    onsets: Vec<f64>,
    before_errors: Vec<f64>,
    after_errors: Vec<f64>,
    /// The TCPD F1 of each stream.
    tcpd: Vec<f64>,
}

impl Tally {
    /// Scores one stream of `records` values with its known `changes`
    /// against `detections`, under `max_delay`.
    pub fn stream(
        &mut self,
        records: u64,
        changes: &[Change],
        detections: &[Detection],
        max_delay: u64,
    ) {
        self.streams += 1;
        self.records += records;
        self.changes += changes.len() as u64;
        let mut located: Vec<&Change> = changes.iter().filter(|c| c.index.is_some()).collect();
        located.sort_by_key(|c| c.index);
        let mut hit = vec![false; located.len()];
        let mut order: Vec<&Detection> = detections.iter().collect();
        order.sort_by_key(|d| (d.detected, d.start));
        for d in order {
            // The latest change at or before the detection.
            let after = located.partition_point(|c| c.index.is_some_and(|i| i <= d.detected));
            let Some(k) = after.checked_sub(1) else {
                self.false_alarms += 1;
                continue;
            };
            let c = located[k];
            let at = c.index.unwrap_or_default();
            let in_time = d.detected - at <= max_delay && c.end.is_none_or(|e| d.detected < e);
            if !in_time {
                self.false_alarms += 1;
            } else if hit[k] {
                self.duplicates += 1;
            } else {
                hit[k] = true;
                self.detected += 1;
                self.delays.push((d.detected - at) as f64);
                self.onsets.push(d.start.abs_diff(at) as f64);
                if let (Some(est), Some(truth)) = (d.before, c.before) {
                    self.before_errors.push(relative_error(est, truth));
                }
                if let (Some(est), Some(truth)) = (d.after, c.after) {
                    self.after_errors.push(relative_error(est, truth));
                }
            }
        }
        let truth: Vec<u64> = located.iter().filter_map(|c| c.index).collect();
        let predicted: Vec<u64> = detections.iter().map(|d| d.detected).collect();
        self.tcpd.push(tcpd::f1(&truth, &predicted));
    }

    /// Adds another tally (a total over monitors).
    pub fn merge(&mut self, other: &Tally) {
        self.streams += other.streams;
        self.records += other.records;
        self.changes += other.changes;
        self.detected += other.detected;
        self.duplicates += other.duplicates;
        self.false_alarms += other.false_alarms;
        self.delays.extend(&other.delays);
        self.onsets.extend(&other.onsets);
        self.before_errors.extend(&other.before_errors);
        self.after_errors.extend(&other.after_errors);
        self.tcpd.extend(&other.tcpd);
    }

    /// The reported numbers.
    pub fn score(&self) -> Score {
        let tp = self.detected as f64;
        let fp = self.false_alarms as f64;
        let missed = self.changes - self.detected;
        let counted = self.detected + self.false_alarms;
        Score {
            streams: self.streams,
            records: self.records,
            changes: self.changes,
            detected: self.detected,
            missed,
            duplicates: self.duplicates,
            false_alarms: self.false_alarms,
            false_alarms_per_100k: (self.records > 0).then(|| fp * 100_000.0 / self.records as f64),
            delay: Spread::of(&self.delays),
            onset_error: Spread::of(&self.onsets),
            level_error_before: Spread::of(&self.before_errors),
            level_error_after: Spread::of(&self.after_errors),
            precision: (counted > 0).then(|| tp / counted as f64),
            recall: (self.changes > 0).then(|| tp / self.changes as f64),
            // 2·TP / (2·TP + FP + FN): 0 with no hit, defined whenever
            // there is a change or a detection to judge.
            f1: (self.changes + self.false_alarms > 0)
                .then(|| 2.0 * tp / (2.0 * tp + fp + missed as f64)),
            f1_tcpd: (!self.tcpd.is_empty())
                .then(|| self.tcpd.iter().sum::<f64>() / self.tcpd.len() as f64),
        }
    }
}

/// |estimate − truth| as a fraction of the truth (absolute when the truth is 0).
fn relative_error(estimate: f64, truth: f64) -> f64 {
    let e = (estimate - truth).abs();
    if truth == 0.0 { e } else { e / truth.abs() }
}

/// The median and 90th percentile of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub p90: f64,
}

impl Spread {
    /// Percentiles interpolated linearly between ranks (numpy's default);
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let pos = q * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Some(Spread {
            median: at(0.5),
            p90: at(0.9),
        })
    }
}

/// The numbers of one monitor, one baseline, or a total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub streams: u64,
    pub records: u64,
    pub changes: u64,
    pub detected: u64,
    pub missed: u64,
    pub duplicates: u64,
    pub false_alarms: u64,
    pub false_alarms_per_100k: Option<f64>,
    /// Detection delay in the stream's records, over hits.
    pub delay: Option<Spread>,
    /// |window start − true change| in the stream's records, over hits.
    pub onset_error: Option<Spread>,
    /// |measured − true level| / true level, over hits whose true level is known.
    pub level_error_before: Option<Spread>,
    pub level_error_after: Option<Spread>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// The mean over streams of the TCPD F1 (margin 5, index 0 added).
    pub f1_tcpd: Option<f64>,
}

/// The detections of the periodic baseline on a stream of `records` values:
/// one every `every` positions (at `every`, `2·every`, …), located where it
/// fires and measuring nothing.
pub fn periodic(records: u64, every: u64) -> Vec<Detection> {
    let every = every.max(1);
    (1..)
        .map(|k| k * every)
        .take_while(|&i| i < records)
        .map(|i| Detection {
            start: i,
            detected: i,
            before: None,
            after: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(index: u64) -> Change {
        Change {
            index: Some(index),
            end: None,
            before: Some(0.9),
            after: Some(0.8),
        }
    }

    fn detection(start: u64, detected: u64) -> Detection {
        Detection {
            start,
            detected,
            before: Some(0.91),
            after: Some(0.78),
        }
    }

    fn one(records: u64, changes: &[Change], detections: &[Detection]) -> Score {
        let mut t = Tally::default();
        t.stream(records, changes, detections, 2000);
        t.score()
    }

    #[test]
    fn a_hit() {
        // Change at 1000; the window starts at 990 and detects at 1300:
        // delay 300, onset error |990 − 1000| = 10; levels 0.91 vs 0.9
        // (error 0.01/0.9) and 0.78 vs 0.8 (0.02/0.8 = 0.025).
        // P = R = F1 = 1. TCPD: truth {0, 1000}, predictions {0, 1300}:
        // only 0 within 5, P = R = 1/2, F = 1/2.
        let s = one(10_000, &[change(1000)], &[detection(990, 1300)]);
        assert_eq!(
            (s.changes, s.detected, s.missed, s.false_alarms),
            (1, 1, 0, 0)
        );
        assert_eq!(
            s.delay,
            Some(Spread {
                median: 300.0,
                p90: 300.0
            })
        );
        assert_eq!(s.onset_error.map(|o| o.median), Some(10.0));
        let before = s.level_error_before.unwrap().median;
        assert!((before - 0.01 / 0.9).abs() < 1e-12, "{before}");
        let after = s.level_error_after.unwrap().median;
        assert!((after - 0.025).abs() < 1e-12, "{after}");
        assert_eq!(
            (s.precision, s.recall, s.f1),
            (Some(1.0), Some(1.0), Some(1.0))
        );
        assert_eq!(s.f1_tcpd, Some(0.5));
        assert_eq!(s.false_alarms_per_100k, Some(0.0));
    }

    #[test]
    fn a_miss() {
        // Change at 1000, no detection: missed 1, recall 0, F1 =
        // 2·0 / (0 + 0 + 1) = 0, precision undefined (nothing detected).
        // TCPD: truth {0, 1000}, predictions {0}: P = 1, R = 1/2, F = 2/3.
        let s = one(10_000, &[change(1000)], &[]);
        assert_eq!((s.detected, s.missed, s.false_alarms), (0, 1, 0));
        assert_eq!((s.precision, s.recall, s.f1), (None, Some(0.0), Some(0.0)));
        assert_eq!(s.delay, None);
        assert!((s.f1_tcpd.unwrap() - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn a_false_alarm_on_a_stream_without_changes() {
        // No change, one detection at 5000 of 50,000 records: one false
        // alarm, 1 × 100,000 / 50,000 = 2 per 100k; precision 0/1 = 0, recall
        // undefined, F1 = 0 / (0 + 1 + 0) = 0. TCPD: truth {0},
        // predictions {0, 5000}: P = 1/2, R = 1, F = 2/3.
        let s = one(50_000, &[], &[detection(4900, 5000)]);
        assert_eq!((s.changes, s.detected, s.false_alarms), (0, 0, 1));
        assert_eq!(s.false_alarms_per_100k, Some(2.0));
        assert_eq!((s.precision, s.recall, s.f1), (Some(0.0), None, Some(0.0)));
        assert!((s.f1_tcpd.unwrap() - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn two_detections_of_one_change_are_one_hit_and_one_duplicate() {
        // Change at 1000, detections at 1200 and 2500 (both within 2,000):
        // the first is the hit (delay 200), the second a duplicate; a third
        // at 3001 is 2,001 after the change: a false alarm.
        // P = 1/2, R = 1, F1 = 2 / (2 + 1 + 0) = 2/3.
        let s = one(
            10_000,
            &[change(1000)],
            &[
                detection(1100, 2500),
                detection(1000, 1200),
                detection(3000, 3001),
            ],
        );
        assert_eq!((s.detected, s.duplicates, s.false_alarms), (1, 1, 1));
        assert_eq!(s.delay.map(|d| d.median), Some(200.0));
        assert_eq!(s.precision, Some(0.5));
        assert!((s.f1.unwrap() - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn a_detection_before_the_change_is_a_false_alarm_and_the_change_is_missed() {
        // Change at 1000, one detection at 999 (its window starts at 950):
        // it follows no change: false alarm 1, missed 1, F1 = 0 / (0+1+1) = 0.
        let s = one(10_000, &[change(1000)], &[detection(950, 999)]);
        assert_eq!((s.detected, s.missed, s.false_alarms), (0, 1, 1));
        assert_eq!(s.f1, Some(0.0));
        // TCPD: truth {0, 1000}, predictions {0, 999}: 999 is within 5 of
        // 1000, so P = 2/2, R = 2/2, F = 1: the benchmark does not care
        // which side of the change a prediction falls.
        assert_eq!(s.f1_tcpd, Some(1.0));
    }

    #[test]
    fn a_change_with_no_stream_is_missed() {
        // The truth names a change the log never reaches (no record of the
        // stream): 0 records, 1 change, missed 1, recall 0, no false-alarm
        // rate (no records). TCPD locates no change: truth {0},
        // predictions {0}, F = 1.
        let unreached = Change {
            index: None,
            ..change(0)
        };
        let s = one(0, &[unreached], &[]);
        assert_eq!((s.changes, s.missed, s.records), (1, 1, 0));
        assert_eq!((s.recall, s.f1), (Some(0.0), Some(0.0)));
        assert_eq!(s.false_alarms_per_100k, None);
        assert_eq!(s.f1_tcpd, Some(1.0));
    }

    #[test]
    fn a_detection_after_the_change_ended_is_a_false_alarm() {
        // Change at 1000 ending at 1500: a detection at 1600 comes after the
        // recovery: false alarm, change missed.
        let ended = Change {
            end: Some(1500),
            ..change(1000)
        };
        let s = one(10_000, &[ended], &[detection(1000, 1600)]);
        assert_eq!((s.detected, s.missed, s.false_alarms), (0, 1, 1));
    }

    #[test]
    fn each_detection_counts_for_the_latest_change_before_it() {
        // Changes at 1000 and 1500, detection at 1600: it follows 1500
        // (delay 100); 1000 is missed. Recall 1/2, precision 1, F1 2/3.
        let s = one(
            10_000,
            &[change(1500), change(1000)],
            &[detection(1490, 1600)],
        );
        assert_eq!((s.detected, s.missed), (1, 1));
        assert_eq!(s.delay.map(|d| d.median), Some(100.0));
        assert!((s.f1.unwrap() - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn totals_pool_counts_and_samples() {
        // A hit with delay 300 plus a hit with delay 100 and a false alarm:
        // delays {100, 300}: median 200, p90 = 100 + 0.9 · 200 = 280.
        let mut total = Tally::default();
        total.stream(10_000, &[change(1000)], &[detection(990, 1300)], 2000);
        let mut other = Tally::default();
        other.stream(
            10_000,
            &[change(2000)],
            &[detection(2000, 2100), detection(100, 200)],
            2000,
        );
        total.merge(&other);
        let s = total.score();
        assert_eq!(
            (s.streams, s.records, s.detected, s.false_alarms),
            (2, 20_000, 2, 1)
        );
        assert_eq!(
            s.delay,
            Some(Spread {
                median: 200.0,
                p90: 280.0
            })
        );
        assert_eq!(s.false_alarms_per_100k, Some(5.0));
    }

    #[test]
    fn the_periodic_baseline_fires_every_max_delay_records() {
        let d: Vec<u64> = periodic(7000, 2000).iter().map(|d| d.detected).collect();
        assert_eq!(d, vec![2000, 4000, 6000]);
        // On a change at 2500 it hits at 4000 (delay 1500); 2000 and 6000
        // are false alarms: P = 1/3, R = 1, F1 = 2 / (2 + 2) = 1/2.
        let s = one(7000, &[change(2500)], &periodic(7000, 2000));
        assert_eq!((s.detected, s.false_alarms), (1, 2));
        assert_eq!(s.f1, Some(0.5));
        assert_eq!(s.level_error_after, None);
    }
}
