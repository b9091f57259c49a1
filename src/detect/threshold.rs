//! `threshold`: an absolute limit on a statistic, like an SLO (SPEC §3).
//!
//! The statistic (`mean`, `p50`, `p90`, `p95`, `p99` or `max`) is taken over
//! the last `window` values, a count or a duration of event time (`"5m"`).
//! While it is above `above` or below `below`, every update is a drift
//! detection, so the drift window spans the whole breach and closes
//! `merge_gap` positions after it ends. The change start is the first update
//! of the breach; `before` is the statistic at the last update that was within
//! the limits (the limit itself if there was none), `after` the current one.
//! The limits say which side is bad, so the monitor's `direction` is not used.
//!
//! A count window is evaluated once it is full; a time window once the stream
//! spans the duration. Percentiles interpolate linearly between the two
//! nearest ranks (numpy's default). Values are kept sorted beside the window
//! so a percentile costs a binary search and a memmove, not a sort. A time
//! window keeps at most `MAX_TIME_WINDOW_VALUES` values (the oldest go first),
//! which bounds memory however fast the stream is.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};
use crate::config::table::parse_duration;

/// Upper bound on the values a time window keeps.
pub const MAX_TIME_WINDOW_VALUES: usize = 1_000_000;

/// The statistic compared with the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    Mean,
    P50,
    P90,
    P95,
    P99,
    Max,
}

impl Statistic {
    const NAMES: [&'static str; 6] = ["mean", "p50", "p90", "p95", "p99", "max"];

    fn parse(s: &str) -> Option<Statistic> {
        Some(match s {
            "mean" => Statistic::Mean,
            "p50" => Statistic::P50,
            "p90" => Statistic::P90,
            "p95" => Statistic::P95,
            "p99" => Statistic::P99,
            "max" => Statistic::Max,
            _ => return None,
        })
    }

    fn quantile(self) -> Option<f64> {
        match self {
            Statistic::P50 => Some(0.50),
            Statistic::P90 => Some(0.90),
            Statistic::P95 => Some(0.95),
            Statistic::P99 => Some(0.99),
            Statistic::Mean | Statistic::Max => None,
        }
    }
}

/// The extent of the window: a count of values or a span of event time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WindowRepr", into = "WindowRepr")]
pub enum Window {
    Count(usize),
    Time(Duration),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WindowRepr {
    Count(u64),
    Time(String),
}

impl From<Window> for WindowRepr {
    fn from(w: Window) -> WindowRepr {
        match w {
            Window::Count(n) => WindowRepr::Count(n as u64),
            Window::Time(d) => WindowRepr::Time(humantime::format_duration(d).to_string()),
        }
    }
}

impl TryFrom<WindowRepr> for Window {
    type Error = String;
    fn try_from(r: WindowRepr) -> Result<Window, String> {
        match r {
            WindowRepr::Count(n) if n >= 1 => Ok(Window::Count(n as usize)),
            WindowRepr::Count(_) => Err("a count window must hold at least 1 value".into()),
            WindowRepr::Time(s) => parse_duration(&s).map(Window::Time),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub statistic: Statistic,
    pub window: Window,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    pub direction: Direction,
}

impl Config {
    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let statistic = p.choice("statistic", "mean", &Statistic::NAMES)?;
        let statistic = Statistic::parse(&statistic).unwrap_or(Statistic::Mean);
        let window = match p.raw("window") {
            None => Window::Count(100),
            Some(toml::Value::Integer(n)) if (1..=10_000_000).contains(&n) => {
                Window::Count(n as usize)
            }
            Some(toml::Value::String(s)) => match parse_duration(&s) {
                Ok(d) if !d.is_zero() => Window::Time(d),
                Ok(_) => return Err(p.error("window", "a duration must be longer than 0")),
                Err(e) => return Err(p.error("window", e)),
            },
            Some(other) => {
                return Err(p.error(
                    "window",
                    format!(
                        "expected a count in 1..=10000000 or a duration such as \"5m\", got {other}"
                    ),
                ));
            }
        };
        let above = p.opt_float("above")?;
        let below = p.opt_float("below")?;
        if above.is_none() && below.is_none() {
            return Err(p.error("above", "threshold needs `above`, `below` or both"));
        }
        if let (Some(a), Some(b)) = (above, below)
            && b >= a
        {
            return Err(p.error("below", format!("must be less than above ({a}), got {b}")));
        }
        Ok(Config {
            statistic,
            window,
            above,
            below,
            direction,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Threshold {
    config: Config,
    /// The window in arrival order, with each value's event time.
    values: VecDeque<(i64, f64)>,
    /// The same values, sorted, for percentiles and the maximum.
    sorted: Vec<f64>,
    sum: f64,
    first_time: Option<i64>,
    /// Updates since the start of the current breach, if in one.
    breach_len: Option<u64>,
    /// The statistic at the last in-limits evaluation.
    last_ok: Option<f64>,
    /// The `before` level of the current breach.
    breach_before: f64,
}

impl Threshold {
    pub fn new(config: Config) -> Threshold {
        Threshold {
            config,
            values: VecDeque::new(),
            sorted: Vec::new(),
            sum: 0.0,
            first_time: None,
            breach_len: None,
            last_ok: None,
            breach_before: 0.0,
        }
    }

    fn insert(&mut self, t: i64, x: f64) {
        self.values.push_back((t, x));
        self.sum += x;
        let at = self.sorted.partition_point(|&v| v < x);
        self.sorted.insert(at, x);
    }

    fn evict_oldest(&mut self) {
        if let Some((_, old)) = self.values.pop_front() {
            self.sum -= old;
            let at = self.sorted.partition_point(|&v| v < old);
            self.sorted.remove(at);
            if self.values.is_empty() {
                self.sum = 0.0;
            }
        }
    }

    /// Whether the window holds enough to be evaluated.
    fn ready(&self, now: i64) -> bool {
        match self.config.window {
            Window::Count(n) => self.values.len() >= n,
            Window::Time(d) => self
                .first_time
                .is_some_and(|first| now.saturating_sub(first) as u128 >= d.as_nanos()),
        }
    }

    fn statistic(&self) -> f64 {
        let n = self.sorted.len();
        match self.config.statistic {
            Statistic::Mean => {
                // Recomputed exactly rather than trusting a long-running sum.
                if self.values.len() <= 64 {
                    self.values.iter().map(|v| v.1).sum::<f64>() / n as f64
                } else {
                    self.sum / n as f64
                }
            }
            Statistic::Max => self.sorted[n - 1],
            q => {
                let rank = q.quantile().unwrap_or(0.5) * (n - 1) as f64;
                let lo = rank.floor() as usize;
                let hi = rank.ceil() as usize;
                self.sorted[lo] + (self.sorted[hi] - self.sorted[lo]) * (rank - lo as f64)
            }
        }
    }
}

impl Detector for Threshold {
    fn update(&mut self, x: f64, time_ns: i64) -> Outcome {
        self.first_time.get_or_insert(time_ns);
        self.insert(time_ns, x);
        match self.config.window {
            Window::Count(n) => {
                while self.values.len() > n {
                    self.evict_oldest();
                }
            }
            Window::Time(d) => {
                let span = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
                let cutoff = time_ns.saturating_sub(span);
                while self.values.front().is_some_and(|&(t, _)| t <= cutoff)
                    || self.values.len() > MAX_TIME_WINDOW_VALUES
                {
                    self.evict_oldest();
                }
            }
        }
        if self.values.len().is_multiple_of(4096) {
            self.sum = self.values.iter().map(|v| v.1).sum();
        }
        if !self.ready(time_ns) {
            return Outcome::None;
        }
        let stat = self.statistic();
        let breached = self.config.above.is_some_and(|a| stat > a)
            || self.config.below.is_some_and(|b| stat < b);
        if !breached {
            self.breach_len = None;
            self.last_ok = Some(stat);
            return Outcome::None;
        }
        let len = match self.breach_len {
            Some(len) => len + 1,
            None => {
                let limit = if self.config.above.is_some_and(|a| stat > a) {
                    self.config.above
                } else {
                    self.config.below
                };
                self.breach_before = self.last_ok.or(limit).unwrap_or(stat);
                1
            }
        };
        self.breach_len = Some(len);
        Outcome::Drift(Change {
            lookback: len - 1,
            before: self.breach_before,
            after: stat,
        })
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl super::Restore for Threshold {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        let n = self.values.len();
        let most = match config.window {
            Window::Count(w) => w,
            Window::Time(_) => MAX_TIME_WINDOW_VALUES,
        };
        super::check(n <= most, || {
            format!("{n} values in a window of at most {most}")
        })?;
        let mut sorted: Vec<f64> = self.values.iter().map(|v| v.1).collect();
        sorted.sort_by(f64::total_cmp);
        let same = sorted.len() == self.sorted.len()
            && sorted
                .iter()
                .zip(&self.sorted)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        super::check(same, || {
            "the sorted values are not the window's values, sorted".to_string()
        })?;
        super::check(n == 0 || self.first_time.is_some(), || {
            "values but no first time".to_string()
        })?;
        super::check_count("breach_len", self.breach_len.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_params: &str) -> Result<Config, ParamError> {
        let table: toml::Table = toml::from_str(toml_params).unwrap();
        let mut p = Params::new(table, "monitor[0].params");
        let c = Config::from_params(Direction::Increase, &mut p)?;
        p.finish(&[])?;
        Ok(c)
    }

    fn drifts(c: Config, values: &[(i64, f64)]) -> Vec<(usize, Change)> {
        let mut d = Threshold::new(c);
        values
            .iter()
            .enumerate()
            .filter_map(|(i, &(t, x))| match d.update(x, t) {
                Outcome::Drift(c) => Some((i, c)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn p99_over_a_count_window_breaches_and_recovers() {
        let c = config("statistic = \"p99\"\nwindow = 100\nabove = 500").unwrap();
        // 200 values of 10, then 5 spikes of 1000, then 300 values of 10.
        let mut v: Vec<(i64, f64)> = (0..200).map(|i| (i, 10.0)).collect();
        v.extend((200..205).map(|i| (i, 1000.0)));
        v.extend((205..505).map(|i| (i, 10.0)));
        let got = drifts(c, &v);
        // p99 over 100 values interpolates at rank 98.01: with k spikes on top
        // it exceeds 500 once k >= 2 (rank 98 and 99 are spikes).
        let positions: Vec<usize> = got.iter().map(|d| d.0).collect();
        assert_eq!(positions.first(), Some(&201));
        // The window at i holds i-99..=i; at least 2 spikes (200..=204) stay
        // in it while 203 >= i - 99: the last breached position is 302.
        assert_eq!(positions.last(), Some(&302));
        assert_eq!(positions.len(), 102);
        // `before` is the p99 at 200, with one spike in the window: 10 + 990 * 0.01.
        assert!((got[0].1.before - 19.9).abs() < 1e-9);
        assert_eq!(got[5].1.lookback, 5);
    }

    #[test]
    fn mean_below_with_a_time_window() {
        let c = config("window = \"10s\"\nbelow = 0.45").unwrap();
        let s = 1_000_000_000i64;
        let v: Vec<(i64, f64)> = (0..40)
            .map(|i| (i * s, if i < 20 { 1.0 } else { 0.0 }))
            .collect();
        let got = drifts(c, &v);
        // Window of 10 s holds 10 values (t in (now-10s, now]); the mean is
        // below 0.45 once 6 of them are 0: at i = 25.
        assert_eq!(got.first().map(|d| d.0), Some(25));
        assert_eq!(got.len(), 15);
    }

    #[test]
    fn parameters_are_validated_with_their_key() {
        let e = config("window = 0\nabove = 1").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.window");
        let e = config("statistic = \"p42\"\nabove = 1").unwrap_err();
        assert!(
            e.to_string()
                .contains("monitor[0].params.statistic: expected one of mean")
        );
        let e = config("window = 5").unwrap_err();
        assert!(e.message.contains("needs `above`"));
        let e = config("above = 1\nbogus = 2").unwrap_err();
        assert_eq!(e.key, "monitor[0].params.bogus");
        let e = config("window = \"soon\"\nabove = 1").unwrap_err();
        assert!(e.message.contains("expected a duration"));
    }

    #[test]
    fn state_round_trips_through_json() {
        let c = config("statistic = \"p90\"\nwindow = 20\nabove = 5").unwrap();
        let values: Vec<(i64, f64)> = (0..300).map(|i| (i, ((i * 37) % 11) as f64)).collect();
        let whole = drifts(c.clone(), &values);
        let mut d = Threshold::new(c);
        let mut got = Vec::new();
        for (i, &(t, x)) in values.iter().enumerate() {
            if i % 50 == 7 {
                d = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
            }
            if let Outcome::Drift(ch) = d.update(x, t) {
                got.push((i, ch));
            }
        }
        assert_eq!(got, whole);
    }
}
