//! `mmon eval`: score monitors against known change points (SPEC §9).
//!
//! The logs are parsed once ([`records`]); every configuration and grid
//! point ([`grid`]) replays them through its own pipeline, in parallel
//! ([`runs`]); the truth ([`truth`]) is located in the same streams; each
//! monitor's drift windows are matched to the changes of its streams
//! ([`score`], with the TCPD F1 of [`tcpd`]) beside two baselines, and the
//! runs are ranked and rendered ([`output`]).

pub mod grid;
pub mod output;
pub mod records;
pub mod runs;
pub mod score;
pub mod tcpd;
pub mod truth;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::detect::Direction;
use records::Records;
use runs::Found;
use score::{Change, Detection, Score, Tally};

/// The schema name of `--format json`.
pub const SCHEMA: &str = "mmon.eval/1";

/// The output formats of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

/// One configuration to score, perhaps at a grid point.
#[derive(Debug, Clone)]
pub struct Run {
    pub config: Config,
    /// The grid point: each grid's path and value.
    pub point: Vec<(String, toml::Value)>,
    /// What to paste into `mmon.toml` for this point (with a grid only).
    pub block: Option<String>,
}

/// The numbers of one monitor of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorScore {
    pub monitor: usize,
    pub metric: String,
    pub detector: String,
    pub params: serde_json::Value,
    pub direction: Direction,
    #[serde(flatten)]
    pub score: Score,
}

/// A scored run: each monitor, their total, and the baselines on the same
/// streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub monitors: Vec<MonitorScore>,
    pub total: Score,
    /// No detector at all.
    pub none: Score,
    /// A detector firing every `max_delay` records of each stream.
    pub periodic: Score,
}

/// The known changes of each (model, slot) stream.
pub type ChangesByStream = BTreeMap<(String, usize), Vec<Change>>;

/// Scores the windows `found` (per monitor of `config`) against `changes`.
pub fn score_run(
    config: &Config,
    found: &[Vec<Found>],
    records: &Records,
    lengths: &[Vec<u64>],
    changes: &ChangesByStream,
    max_delay: u64,
) -> Scored {
    let (mut total, mut none, mut periodic) =
        (Tally::default(), Tally::default(), Tally::default());
    let mut monitors = Vec::new();
    for (k, m) in config.monitors.iter().enumerate() {
        let mut tally = Tally::default();
        if let Some(slot) = records.slot(&m.metric) {
            // Every stream of the metric with a record, then those the
            // truth names that have none.
            let mut streams: Vec<(String, Option<u32>, u64)> = (0..records.models.len())
                .filter(|&i| lengths[i][slot] > 0)
                .map(|i| (records.models[i].clone(), Some(i as u32), lengths[i][slot]))
                .collect();
            for (model, _) in changes.keys().filter(|(_, s)| *s == slot) {
                if !streams.iter().any(|(name, _, _)| name == model) {
                    streams.push((model.clone(), None, 0));
                }
            }
            for (name, number, n) in streams {
                let known = changes
                    .get(&(name, slot))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let detections: Vec<Detection> = found
                    .get(k)
                    .into_iter()
                    .flatten()
                    .filter(|f| Some(f.model) == number)
                    .map(|f| f.detection)
                    .collect();
                tally.stream(n, known, &detections, max_delay);
                none.stream(n, known, &[], max_delay);
                periodic.stream(n, known, &score::periodic(n, max_delay), max_delay);
            }
        }
        total.merge(&tally);
        monitors.push(MonitorScore {
            monitor: k,
            metric: m.metric.clone(),
            detector: m.detector.name().to_string(),
            params: m.detector.params_json(),
            direction: m.direction,
            score: tally.score(),
        });
    }
    Scored {
        monitors,
        total: total.score(),
        none: none.score(),
        periodic: periodic.score(),
    }
}

/// Run numbers best first: by F1 (highest first), then false alarms
/// (fewest), then median delay (shortest), then the order given.
pub fn rank(scored: &[Scored]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scored.len()).collect();
    let key = |s: &Scored| {
        (
            -s.total.f1.unwrap_or(-1.0),
            s.total.false_alarms,
            s.total.delay.map_or(f64::INFINITY, |d| d.median),
        )
    };
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(&scored[a]), key(&scored[b]));
        ka.0.total_cmp(&kb.0)
            .then(ka.1.cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
            .then(a.cmp(&b))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(f1: Option<f64>, false_alarms: u64, delay: Option<f64>) -> Scored {
        let mut t = Tally::default();
        t.stream(10, &[], &[], 1);
        let mut s = t.score();
        s.f1 = f1;
        s.false_alarms = false_alarms;
        s.delay = delay.map(|d| score::Spread { median: d, p90: d });
        Scored {
            monitors: Vec::new(),
            total: s.clone(),
            none: s.clone(),
            periodic: s,
        }
    }

    #[test]
    fn runs_rank_by_f1_then_false_alarms_then_delay() {
        let runs = [
            scored(Some(0.5), 0, Some(10.0)),
            scored(Some(1.0), 2, Some(900.0)),
            scored(Some(1.0), 0, Some(900.0)),
            scored(Some(1.0), 0, Some(300.0)),
            scored(None, 0, None),
            scored(Some(1.0), 0, Some(300.0)),
        ];
        assert_eq!(rank(&runs), vec![3, 5, 2, 1, 0, 4]);
    }
}
