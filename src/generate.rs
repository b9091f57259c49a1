//! Synthetic metric logs with known drifts, and their ground truth.
//!
//! mmon's own tests, benchmarks and `mmon eval` need logs whose changes are
//! known exactly: where each drift starts, which stream it hits, the rates
//! before and after. This module writes such a log (JSONL or CSV) from a
//! [`Plan`] and returns the [`Truth`]. Everything is drawn from one seeded
//! ChaCha8 stream, so the same plan gives byte-identical output on every
//! machine; malformed lines draw from a second stream, so a log with them
//! holds exactly the same well-formed events as one without.
//!
//! The model of a serving system: each event belongs to one model (model k of
//! N has weight N − k); its prediction is correct with the model's current
//! probability, its latency is log-normal around the model's current median,
//! and the logged `accuracy` is the rolling mean of `correct` over the last
//! `acc_window` events of the same model version. A drift lowers the stable
//! version's probability of a correct prediction by `drop` and multiplies its
//! latency median by `latency_factor`, suddenly or as a linear ramp over
//! `width` events, and may recover the same way. Canary versions take a share
//! of a model's events and keep the model's base rates: they are the versions
//! a drift does not hit.

use std::io::{self, Write};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

/// The schema name of the truth document.
pub const TRUTH_SCHEMA: &str = "mmon.truth/1";

const MODEL_NAMES: [&str; 8] = [
    "churn", "fraud", "ranker", "ltv", "search", "reco", "spam", "eta",
];
const MODEL_VERSIONS: [&str; 8] = [
    "1.4.2", "3.0.1", "0.9.7", "2.2.0", "5.1.3", "1.0.0", "4.7.1", "0.3.9",
];
const BASE_ACCURACY: [f64; 8] = [0.91, 0.87, 0.83, 0.89, 0.85, 0.88, 0.93, 0.86];
const LATENCY_MEDIAN_MS: [f64; 8] = [38.0, 12.0, 85.0, 25.0, 60.0, 45.0, 8.0, 30.0];
/// The spread of log-latency, the same for every model.
pub const LATENCY_SIGMA: f64 = 0.45;
const POSITIVE_RATE: f64 = 0.3;
const FIELDS: [&str; 8] = [
    "timestamp",
    "model_id",
    "model_version",
    "request_id",
    "score",
    "correct",
    "accuracy",
    "latency_ms",
];

/// The kinds of malformed line, drawn uniformly.
pub const MALFORMED_KINDS: [&str; 7] = [
    "truncated",
    "missing_field",
    "non_numeric_accuracy",
    "nan_accuracy",
    "out_of_range_accuracy",
    "bad_timestamp",
    "empty_line",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Jsonl,
    Csv,
}

/// One model's fixed profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub model_id: String,
    pub model_version: String,
    pub base_accuracy: f64,
    pub latency_median_ms: f64,
}

impl Profile {
    /// The k-th model: eight named ones, then `model8`, `model9`, …
    pub fn nth(k: usize) -> Profile {
        if k < MODEL_NAMES.len() {
            return Profile {
                model_id: MODEL_NAMES[k].to_string(),
                model_version: MODEL_VERSIONS[k].to_string(),
                base_accuracy: BASE_ACCURACY[k],
                latency_median_ms: LATENCY_MEDIAN_MS[k],
            };
        }
        Profile {
            model_id: format!("model{k}"),
            model_version: format!("{}.{}.{}", k % 7, k % 5, k % 3),
            base_accuracy: 0.80 + (k % 10) as f64 / 100.0,
            latency_median_ms: 10.0 + 7.0 * (k % 13) as f64,
        }
    }
}

/// One injected drift of a model's stable version.
#[derive(Debug, Clone)]
pub struct Drift {
    pub model: usize,
    /// Global event index where the change starts.
    pub start: u64,
    pub drop: f64,
    pub latency_factor: f64,
    /// Global events after `start` at which the model returns to its base rates.
    pub recover_after: Option<u64>,
}

/// A version that takes `share` of a model's events from global event `from` on.
#[derive(Debug, Clone)]
pub struct Canary {
    pub model: usize,
    pub version: String,
    pub share: f64,
    pub from: u64,
}

/// Everything that decides the log; the same plan gives the same bytes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub events: u64,
    pub format: LogFormat,
    pub seed: u64,
    pub models: Vec<Profile>,
    pub drifts: Vec<Drift>,
    pub canaries: Vec<Canary>,
    /// 0 for sudden changes, else the length of the linear ramp in events.
    pub width: u64,
    pub acc_window: usize,
    /// Epoch milliseconds of the first event.
    pub start_ms: i64,
    pub interval_ms: u64,
    pub jitter_ms: u64,
    pub malformed_rate: f64,
}

/// Where an event sits: globally, within its model, within its stream
/// (model and version), in the file, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Position {
    pub event_index: u64,
    pub model_event_index: u64,
    pub model_version: String,
    pub version_event_index: u64,
    pub line: u64,
    pub timestamp: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TruthDrift {
    pub drift_id: usize,
    pub model_id: String,
    pub model_version: String,
    pub kind: &'static str,
    pub start_index: u64,
    pub width: u64,
    pub drop: f64,
    pub latency_factor: f64,
    pub p_correct_before: f64,
    pub p_correct_after: f64,
    pub latency_median_before_ms: f64,
    pub latency_median_after_ms: f64,
    /// The first event of the drifted stream at or after `start_index`;
    /// `None` when the stream has no event after it.
    pub first_affected: Option<Position>,
    pub recover_index: Option<u64>,
    /// The first event of the stream at or after `recover_index`.
    pub recovered: Option<Position>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TruthVersion {
    pub model_version: String,
    pub events: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TruthModel {
    #[serde(flatten)]
    pub profile: Profile,
    pub weight: f64,
    pub events: u64,
    pub versions: Vec<TruthVersion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Malformed {
    pub line: u64,
    pub kind: &'static str,
    /// The field a `missing_field` line lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MalformedTruth {
    pub rate: f64,
    pub count: usize,
    pub lines: Vec<Malformed>,
}

/// The ground truth of a generated log.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub schema: &'static str,
    pub generator: String,
    pub seed: u64,
    pub format: LogFormat,
    pub events: u64,
    pub total_lines: u64,
    pub header_lines: u64,
    pub latency_sigma: f64,
    pub acc_window: usize,
    pub models: Vec<TruthModel>,
    pub drifts: Vec<TruthDrift>,
    pub malformed: MalformedTruth,
}

/// The probability of a correct prediction and the latency median of model
/// `m`'s stable version at global event `i`.
fn rates_at(plan: &Plan, m: usize, i: u64) -> (f64, f64) {
    let profile = &plan.models[m];
    let mut p = profile.base_accuracy;
    let mut factor = 1.0;
    for d in plan.drifts.iter().filter(|d| d.model == m) {
        let r = ramp(plan.width, d.start, i)
            - d.recover_after
                .map_or(0.0, |after| ramp(plan.width, d.start + after, i));
        p -= d.drop * r;
        factor *= 1.0 + (d.latency_factor - 1.0) * r;
    }
    (p.clamp(0.0, 1.0), profile.latency_median_ms * factor)
}

/// How far a change starting at `start` has progressed at `i`: 0 before it,
/// 1 once done, linear in between over `width` events.
fn ramp(width: u64, start: u64, i: u64) -> f64 {
    if i < start {
        0.0
    } else if width == 0 || i >= start + width {
        1.0
    } else {
        (i - start + 1) as f64 / width as f64
    }
}

struct Draws(ChaCha8Rng);

impl Draws {
    fn new(seed: u64) -> Draws {
        Draws(ChaCha8Rng::seed_from_u64(seed))
    }
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.unit() * n as f64) as u64).min(n.saturating_sub(1))
    }
}

/// One stream's rolling accuracy window.
struct Rolling {
    ring: Vec<u8>,
    next: usize,
    len: usize,
    hits: u64,
}

impl Rolling {
    fn new(window: usize) -> Rolling {
        Rolling {
            ring: vec![0; window.max(1)],
            next: 0,
            len: 0,
            hits: 0,
        }
    }
    fn push(&mut self, correct: u8) -> f64 {
        if self.len == self.ring.len() {
            self.hits -= u64::from(self.ring[self.next]);
        } else {
            self.len += 1;
        }
        self.ring[self.next] = correct;
        self.hits += u64::from(correct);
        self.next = (self.next + 1) % self.ring.len();
        self.hits as f64 / self.len as f64
    }
}

/// RFC 3339 UTC with milliseconds; the date and time part is cached per second.
struct Clock {
    second: i64,
    prefix: String,
}

impl Clock {
    fn format(&mut self, ms: i64) -> String {
        let (sec, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        if sec != self.second || self.prefix.is_empty() {
            self.second = sec;
            self.prefix = chrono::DateTime::from_timestamp(sec, 0)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_else(|| "1970-01-01T00:00:00".to_string());
        }
        format!("{}.{frac:03}Z", self.prefix)
    }
}

struct Event<'a> {
    ts: &'a str,
    model: &'a str,
    version: &'a str,
    request_id: &'a str,
    score: f64,
    correct: u8,
    accuracy: f64,
    latency: u64,
}

fn write_event(out: &mut Vec<u8>, format: LogFormat, e: &Event) {
    use std::io::Write as _;
    let _ = match format {
        LogFormat::Jsonl => writeln!(
            out,
            r#"{{"timestamp":"{}","model_id":"{}","model_version":"{}","request_id":"{}","score":{:.4},"correct":{},"accuracy":{:.4},"latency_ms":{}}}"#,
            e.ts, e.model, e.version, e.request_id, e.score, e.correct, e.accuracy, e.latency
        ),
        LogFormat::Csv => writeln!(
            out,
            "{},{},{},{},{:.4},{},{:.4},{}",
            e.ts, e.model, e.version, e.request_id, e.score, e.correct, e.accuracy, e.latency
        ),
    };
}

/// A malformed line of `kind` near the well-formed line `good` (without its
/// newline), drawing any choice from `bad`.
fn malformed_line(
    kind: &str,
    format: LogFormat,
    e: &Event,
    good: &[u8],
    bad: &mut Draws,
    missing: &mut Option<&'static str>,
) -> String {
    let good = String::from_utf8_lossy(good);
    match kind {
        "truncated" => {
            // JSONL always loses its closing brace; a CSV row is cut before
            // its last comma, so it always has too few columns.
            let limit = match format {
                LogFormat::Jsonl => good.len().saturating_sub(2),
                LogFormat::Csv => good.rfind(',').unwrap_or(1),
            };
            let cut = 1 + bad.below(limit.max(1) as u64) as usize;
            return good[..cut.min(good.len())].to_string();
        }
        "empty_line" => return String::new(),
        _ => {}
    }
    match format {
        LogFormat::Csv => {
            let mut vals = [
                e.ts,
                e.model,
                e.version,
                e.request_id,
                "0.5000",
                "1",
                "0.9000",
                "40",
            ];
            match kind {
                "missing_field" => {
                    let k = [0, 1, 5, 6][bad.below(4) as usize];
                    *missing = Some(FIELDS[k]);
                    vals[k] = "";
                }
                "non_numeric_accuracy" => vals[6] = "n/a",
                "nan_accuracy" => vals[6] = "NaN",
                "out_of_range_accuracy" => vals[6] = "1.3700",
                _ => vals[0] = "2024-13-45T25:61:00.000Z",
            }
            vals.join(",")
        }
        LogFormat::Jsonl => {
            let mut fields: Vec<(&str, String)> = vec![
                ("timestamp", format!("\"{}\"", e.ts)),
                ("model_id", format!("\"{}\"", e.model)),
                ("model_version", format!("\"{}\"", e.version)),
                ("request_id", format!("\"{}\"", e.request_id)),
                ("score", "0.5".into()),
                ("correct", "1".into()),
                ("accuracy", "0.9".into()),
                ("latency_ms", "40".into()),
            ];
            match kind {
                "missing_field" => {
                    let key =
                        ["timestamp", "model_id", "correct", "accuracy"][bad.below(4) as usize];
                    *missing = Some(key);
                    fields.retain(|(k, _)| *k != key);
                }
                "non_numeric_accuracy" => fields[6].1 = "\"n/a\"".into(),
                "nan_accuracy" => fields[6].1 = "NaN".into(),
                "out_of_range_accuracy" => fields[6].1 = "1.37".into(),
                _ => fields[0].1 = "\"2024-13-45T25:61:00.000Z\"".into(),
            }
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        }
    }
}

/// Writes the log of `plan` to `out` and returns its ground truth.
pub fn generate(plan: &Plan, out: &mut dyn Write) -> io::Result<Truth> {
    let n_models = plan.models.len().max(1);
    let weights: Vec<f64> = (0..n_models).map(|k| (n_models - k) as f64).collect();
    let total_weight: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(n_models);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total_weight;
        cumulative.push(acc);
    }
    *cumulative.last_mut().expect("one model at least") = 1.0;

    // Versions per model: the stable one first, then its canaries.
    let mut versions: Vec<Vec<String>> = plan
        .models
        .iter()
        .map(|p| vec![p.model_version.clone()])
        .collect();
    for c in &plan.canaries {
        versions[c.model].push(c.version.clone());
    }
    let mut rolling: Vec<Vec<Rolling>> = versions
        .iter()
        .map(|vs| vs.iter().map(|_| Rolling::new(plan.acc_window)).collect())
        .collect();
    let mut version_counts: Vec<Vec<u64>> = versions.iter().map(|vs| vec![0; vs.len()]).collect();
    let mut model_counts = vec![0u64; n_models];

    let mut rng = Draws::new(plan.seed);
    let mut bad = Draws::new(plan.seed.wrapping_mul(1_000_003).wrapping_add(17));
    let mut clock = Clock {
        second: i64::MIN,
        prefix: String::new(),
    };
    let mut ms = plan.start_ms;

    // Truth positions are found as the log is written.
    let mut first_affected: Vec<Option<Position>> = vec![None; plan.drifts.len()];
    let mut recovered: Vec<Option<Position>> = vec![None; plan.drifts.len()];
    let mut malformed = Vec::new();

    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut line_no = 0u64;
    if plan.format == LogFormat::Csv {
        buf.extend_from_slice(FIELDS.join(",").as_bytes());
        buf.push(b'\n');
        line_no = 1;
    }
    let base_mu: Vec<f64> = plan
        .models
        .iter()
        .map(|p| p.latency_median_ms.ln())
        .collect();
    let mut line = Vec::with_capacity(256);
    for i in 0..plan.events {
        if i > 0 {
            let jitter = if plan.jitter_ms > 0 {
                rng.below(2 * plan.jitter_ms + 1) as i64 - plan.jitter_ms as i64
            } else {
                0
            };
            ms += (plan.interval_ms as i64 + jitter).max(1);
        }
        let u = rng.unit();
        let m = cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(n_models - 1);
        let v = plan
            .canaries
            .iter()
            .enumerate()
            .filter(|(_, c)| c.model == m && i >= c.from)
            .find_map(|(k, c)| {
                let draw = rng.unit();
                (draw < c.share)
                    .then(|| 1 + plan.canaries[..k].iter().filter(|o| o.model == m).count())
            })
            .unwrap_or(0);
        let (p, mu) = if v == 0 {
            let (p, median) = rates_at(plan, m, i);
            (p, median.ln())
        } else {
            (plan.models[m].base_accuracy, base_mu[m])
        };
        let label = rng.unit() < POSITIVE_RATE;
        let correct = rng.unit() < p;
        let predicted = if correct { label } else { !label };
        let s = rng.unit() * 0.5;
        let score = if predicted {
            0.5 + s
        } else if s < 0.4999 {
            0.4999 - s
        } else {
            0.0
        };
        let latency = ((mu + LATENCY_SIGMA * rng.normal()).exp() + 0.5).max(1.0) as u64;
        let r = (u128::from(rng.0.next_u64()) << 64) | u128::from(rng.0.next_u64());
        let h = format!("{r:032x}");
        let variant =
            b"89ab"[(u8::from_str_radix(&h[16..17], 16).unwrap_or(0) & 3) as usize] as char;
        let request_id = format!(
            "{}-{}-4{}-{variant}{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..]
        );
        let accuracy = rolling[m][v].push(u8::from(correct));
        let ts = clock.format(ms);
        let event = Event {
            ts: &ts,
            model: &plan.models[m].model_id,
            version: &versions[m][v],
            request_id: &request_id,
            score,
            correct: u8::from(correct),
            accuracy,
            latency,
        };
        line.clear();
        write_event(&mut line, plan.format, &event);

        if plan.malformed_rate > 0.0 && bad.unit() < plan.malformed_rate {
            let kind = MALFORMED_KINDS[bad.below(MALFORMED_KINDS.len() as u64) as usize];
            line_no += 1;
            let mut field = None;
            let good = &line[..line.len() - 1];
            let text = malformed_line(kind, plan.format, &event, good, &mut bad, &mut field);
            buf.extend_from_slice(text.as_bytes());
            buf.push(b'\n');
            malformed.push(Malformed {
                line: line_no,
                kind,
                field,
            });
        }
        line_no += 1;
        buf.extend_from_slice(&line);

        let position = || Position {
            event_index: i,
            model_event_index: model_counts[m],
            model_version: versions[m][v].clone(),
            version_event_index: version_counts[m][v],
            line: line_no,
            timestamp: ts.clone(),
        };
        if v == 0 {
            for (k, d) in plan.drifts.iter().enumerate() {
                if d.model != m {
                    continue;
                }
                if first_affected[k].is_none() && i >= d.start {
                    first_affected[k] = Some(position());
                }
                if let Some(after) = d.recover_after
                    && recovered[k].is_none()
                    && i >= d.start + after
                {
                    recovered[k] = Some(position());
                }
            }
        }
        model_counts[m] += 1;
        version_counts[m][v] += 1;
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;

    let drifts = plan
        .drifts
        .iter()
        .enumerate()
        .map(|(k, d)| {
            let before = match d.start {
                0 => {
                    let m = &plan.models[d.model];
                    (m.base_accuracy, m.latency_median_ms)
                }
                start => rates_at(plan, d.model, start - 1),
            };
            let after = rates_at(plan, d.model, d.start + plan.width);
            TruthDrift {
                drift_id: k,
                model_id: plan.models[d.model].model_id.clone(),
                model_version: plan.models[d.model].model_version.clone(),
                kind: if plan.width == 0 { "sudden" } else { "gradual" },
                start_index: d.start,
                width: plan.width,
                drop: d.drop,
                latency_factor: d.latency_factor,
                p_correct_before: round6(before.0),
                p_correct_after: round6(after.0),
                latency_median_before_ms: round6(before.1),
                latency_median_after_ms: round6(after.1),
                first_affected: first_affected[k].clone(),
                recover_index: d.recover_after.map(|a| d.start + a),
                recovered: recovered[k].clone(),
            }
        })
        .collect();
    let models = plan
        .models
        .iter()
        .enumerate()
        .map(|(k, profile)| TruthModel {
            profile: profile.clone(),
            weight: weights[k] / total_weight,
            events: model_counts[k],
            versions: versions[k]
                .iter()
                .zip(&version_counts[k])
                .map(|(v, &events)| TruthVersion {
                    model_version: v.clone(),
                    events,
                })
                .collect(),
        })
        .collect();
    Ok(Truth {
        schema: TRUTH_SCHEMA,
        generator: format!("mmon generate {}", env!("CARGO_PKG_VERSION")),
        seed: plan.seed,
        format: plan.format,
        events: plan.events,
        total_lines: line_no,
        header_lines: u64::from(plan.format == LogFormat::Csv),
        latency_sigma: LATENCY_SIGMA,
        acc_window: plan.acc_window,
        models,
        drifts,
        malformed: MalformedTruth {
            rate: plan.malformed_rate,
            count: malformed.len(),
            lines: malformed,
        },
    })
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(events: u64) -> Plan {
        Plan {
            events,
            format: LogFormat::Jsonl,
            seed: 7,
            models: (0..3).map(Profile::nth).collect(),
            drifts: vec![Drift {
                model: 0,
                start: events / 2,
                drop: 0.1,
                latency_factor: 2.0,
                recover_after: None,
            }],
            canaries: Vec::new(),
            width: 0,
            acc_window: 100,
            start_ms: 1_709_251_200_000,
            interval_ms: 100,
            jitter_ms: 40,
            malformed_rate: 0.0,
        }
    }

    fn run(plan: &Plan) -> (Vec<u8>, Truth) {
        let mut out = Vec::new();
        let truth = generate(plan, &mut out).unwrap();
        (out, truth)
    }

    #[test]
    fn the_same_plan_gives_the_same_bytes_and_another_seed_does_not() {
        let p = plan(2000);
        assert_eq!(run(&p).0, run(&p).0);
        let other = Plan {
            seed: 8,
            ..p.clone()
        };
        assert_ne!(run(&p).0, run(&other).0);
    }

    #[test]
    fn malformed_lines_are_extra_and_leave_the_events_as_they_were() {
        let p = plan(5000);
        let (clean, _) = run(&p);
        let (dirty, truth) = run(&Plan {
            malformed_rate: 0.05,
            ..p
        });
        assert!(truth.malformed.count > 150, "{}", truth.malformed.count);
        let bad: std::collections::HashSet<u64> =
            truth.malformed.lines.iter().map(|m| m.line).collect();
        let kept: Vec<&[u8]> = dirty
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(k, _)| !bad.contains(&(*k as u64 + 1)))
            .map(|(_, l)| l)
            .collect();
        let clean: Vec<&[u8]> = clean.split(|&b| b == b'\n').collect();
        assert_eq!(kept, clean);
    }

    #[test]
    fn the_truth_names_the_first_affected_line() {
        let p = plan(4000);
        let (out, truth) = run(&p);
        let drift = &truth.drifts[0];
        let first = drift.first_affected.as_ref().unwrap();
        assert!(first.event_index >= 2000);
        let text = String::from_utf8(out).unwrap();
        let line = text.lines().nth(first.line as usize - 1).unwrap();
        assert!(line.contains("\"model_id\":\"churn\""), "{line}");
        assert!(line.contains(&first.timestamp), "{line}");
        // Every churn line before it is an earlier churn event.
        let before = text
            .lines()
            .take(first.line as usize - 1)
            .filter(|l| l.contains("\"churn\""))
            .count() as u64;
        assert_eq!(before, first.model_event_index);
        assert_eq!(drift.p_correct_before, 0.91);
        assert_eq!(drift.p_correct_after, 0.81);
        assert_eq!(drift.latency_median_after_ms, 76.0);
    }

    #[test]
    fn rates_follow_the_drift_ramp_and_the_recovery() {
        let mut p = plan(10_000);
        p.width = 100;
        p.drifts[0].recover_after = Some(1000);
        let (p0, _) = rates_at(&p, 0, 4999);
        let (mid, _) = rates_at(&p, 0, 5049);
        let (low, l) = rates_at(&p, 0, 5500);
        let (back, lb) = rates_at(&p, 0, 6200);
        assert_eq!(p0, 0.91);
        assert!((mid - 0.86).abs() < 1e-9, "{mid}");
        assert!((low - 0.81).abs() < 1e-9 && (l - 76.0).abs() < 1e-9);
        assert!((back - 0.91).abs() < 1e-9 && (lb - 38.0).abs() < 1e-9);
    }

    #[test]
    fn canaries_get_their_share_and_their_own_counts() {
        let mut p = plan(20_000);
        p.canaries.push(Canary {
            model: 0,
            version: "1.5.0".into(),
            share: 0.1,
            from: 0,
        });
        let (out, truth) = run(&p);
        let churn = &truth.models[0];
        let canary = churn.versions[1].events as f64 / churn.events as f64;
        assert!((canary - 0.1).abs() < 0.02, "{canary}");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.matches("\"1.5.0\"").count() as u64,
            churn.versions[1].events
        );
        let first = truth.drifts[0].first_affected.as_ref().unwrap();
        assert_eq!(first.model_version, "1.4.2");
    }

    #[test]
    fn csv_has_a_header_and_the_same_events() {
        let p = plan(500);
        let (json, _) = run(&p);
        let (csv, truth) = run(&Plan {
            format: LogFormat::Csv,
            ..p
        });
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.starts_with("timestamp,model_id,model_version,request_id,"));
        assert_eq!(csv.lines().count(), 501);
        assert_eq!(truth.header_lines, 1);
        let first_json: serde_json::Value =
            serde_json::from_slice(json.split(|&b| b == b'\n').next().unwrap()).unwrap();
        let first_csv: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(first_json["request_id"], first_csv[3]);
    }
}
