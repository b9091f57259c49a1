//! The F1 of the Turing Change Point Detection benchmark (van den Burg &
//! Williams 2020, "An Evaluation of Change Point Detection Algorithms"), so
//! `mmon eval` can be set beside published tables.
//!
//! Their convention, restated from the paper and its metric code: index 0 is
//! added to every annotator's set of true change points and to the predicted
//! set; a true point is matched by the closest unused prediction within
//! `margin` (ties to the smaller prediction), and each prediction matches at
//! most one true point. Precision is the matched points of the union of all
//! annotations over the number of predictions; recall is the mean over
//! annotators of their matched points over their points; F1 is
//! `P·R / (α·R + (1 − α)·P)` with α = ½. `mmon eval` has one annotator
//! (the truth file), so recall is matched true points over true points.

use std::collections::BTreeSet;

/// The margin of the benchmark, in positions.
pub const MARGIN: u64 = 5;

/// The true points of `truth` that some point of `predicted` matches within
/// `margin`, each prediction used once. True points are visited in
/// ascending order; their code visits a Python set, whose order follows
/// hash slots, so on crowded points a greedy match may differ (never on
/// their examples, and never when true points are more than two margins
/// apart, as drifts of a monitored stream are).
pub fn true_positives(
    truth: &BTreeSet<u64>,
    predicted: &BTreeSet<u64>,
    margin: u64,
) -> BTreeSet<u64> {
    let mut free = predicted.clone();
    let mut hits = BTreeSet::new();
    for &tau in truth {
        let lo = tau.saturating_sub(margin);
        // The closest free prediction, the smaller one on a tie.
        let best = free
            .range(lo..=tau.saturating_add(margin))
            .min_by_key(|&&x| (x.abs_diff(tau), x))
            .copied();
        if let Some(x) = best {
            free.remove(&x);
            hits.insert(tau);
        }
    }
    hits
}

/// The benchmark's F-measure of `predicted` against several annotators'
/// change points, with 0 added to every set; returns (F, precision, recall).
pub fn f_measure(annotations: &[Vec<u64>], predicted: &[u64], margin: u64) -> (f64, f64, f64) {
    let sets: Vec<BTreeSet<u64>> = annotations
        .iter()
        .map(|a| a.iter().copied().chain([0]).collect())
        .collect();
    let x: BTreeSet<u64> = predicted.iter().copied().chain([0]).collect();
    let union: BTreeSet<u64> = sets.iter().flatten().copied().collect();
    let p = true_positives(&union, &x, margin).len() as f64 / x.len() as f64;
    let r = if sets.is_empty() {
        0.0
    } else {
        sets.iter()
            .map(|t| true_positives(t, &x, margin).len() as f64 / t.len() as f64)
            .sum::<f64>()
            / sets.len() as f64
    };
    let alpha = 0.5;
    let denominator = alpha * r + (1.0 - alpha) * p;
    let f = if denominator > 0.0 {
        p * r / denominator
    } else {
        0.0
    };
    (f, p, r)
}

/// The F1 of one stream: one annotator, margin [`MARGIN`].
pub fn f1(truth: &[u64], predicted: &[u64]) -> f64 {
    f_measure(&[truth.to_vec()], predicted, MARGIN).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    /// The examples in the documentation of their `true_positives`.
    #[test]
    fn true_positives_never_count_a_prediction_twice() {
        let t = set(&[1, 10, 20, 23]);
        assert_eq!(true_positives(&t, &set(&[3, 8, 20]), 5), set(&[1, 10, 20]));
        assert_eq!(
            true_positives(&t, &set(&[1, 3, 8, 20]), 5),
            set(&[1, 10, 20])
        );
        assert_eq!(
            true_positives(&t, &set(&[1, 3, 5, 8, 20]), 5),
            set(&[1, 10, 20])
        );
        assert_eq!(true_positives(&set(&[]), &set(&[1, 2, 3]), 5), set(&[]));
        assert_eq!(true_positives(&set(&[1, 2, 3]), &set(&[]), 5), set(&[]));
    }

    /// The worked examples of their `f_measure`, to the last digit.
    #[test]
    fn f_measure_reproduces_the_benchmarks_worked_examples() {
        // Four annotators; predictions 10 and 20 (and 0) match every point
        // each annotator gave within 5: P = 3/3, R = 1, F = 1.
        let four = [vec![10, 20], vec![11, 20], vec![10], vec![0, 5]];
        assert_eq!(f_measure(&four, &[10, 20], 5).0, 1.0);
        // Three annotators {0}, {0, 10}, {0, 50}; predictions {0, 10}:
        // P = |{0, 10}| / 2 = 1; R = (1/1 + 2/2 + 1/2) / 3 = 5/6;
        // F = (5/6) / (½·5/6 + ½) = 10/11.
        let three = [vec![], vec![10], vec![50]];
        let (f, p, r) = f_measure(&three, &[10], 5);
        assert_eq!(f, 0.9090909090909091);
        assert_eq!((p, r), (1.0, 5.0 / 6.0));
        // No prediction but 0: P = 1, R = (1 + 1/2 + 1/2) / 3 = 2/3,
        // F = (2/3) / (1/3 + 1/2) = 0.8.
        assert_eq!(f_measure(&three, &[], 5).0, 0.8);
    }

    #[test]
    fn one_annotator_recall_is_matched_over_true_points() {
        // Truth {0, 100, 500}, predictions {0, 103, 900}: 0 and 100 matched.
        // P = 2/3, R = 2/3, F = 2/3.
        let (f, p, r) = f_measure(&[vec![100, 500]], &[103, 900], 5);
        assert!((p - 2.0 / 3.0).abs() < 1e-15 && (r - 2.0 / 3.0).abs() < 1e-15);
        assert!((f - 2.0 / 3.0).abs() < 1e-15);
        // A prediction 6 away is outside the margin: truth {0, 100},
        // predictions {0, 106}: only 0 matches, P = R = 1/2, F = 1/2.
        assert_eq!(f1(&[100], &[106]), 0.5);
    }
}
