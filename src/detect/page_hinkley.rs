//! `page-hinkley`: the Page-Hinkley test, as river 0.26 `drift.PageHinkley`
//! computes it (SPEC §3).
//!
//! The test accumulates each value's deviation from the running mean of the
//! stream, with a forgetting factor `alpha` and a tolerance `delta`:
//! `up = alpha·up + (x − mean) − delta` falls while the stream is stable and
//! climbs when its level rises; `down = alpha·down + (x − mean) + delta`
//! mirrors it. A drift is declared, after `min_instances` values, when `up`
//! has climbed more than `threshold` above its lowest point (an increase) or
//! `down` has fallen more than `threshold` below its highest point (a
//! decrease). The input is any real value; the threshold is in the units of
//! the values, summed over the change, so it depends on the metric's scale.
//!
//! river's `mode` comes from the monitor's `direction`: `increase` → `"up"`,
//! `decrease` → `"down"`, `both` → `"both"`. A `mode` parameter is accepted
//! only when it agrees with the direction, so a config copied from river
//! keeps working and cannot silently contradict the monitor. The one-sided
//! test is the direction filter, so drift positions are river's for every
//! direction.
//!
//! Every step follows river 0.26.1 in the same floating-point order
//! (including its quirk of starting the highest `down` at −1 rather than −∞),
//! so drift positions are exactly river's (`fixtures/parity/page_hinkley.json`).
//! As in river, the detector starts afresh after a drift.
//!
//! The change is estimated to start right after the position where the
//! statistic that fired last reached its extreme (the last lowest `up` for an
//! increase, the last highest `down` for a decrease): up to there the
//! statistic was drifting away from the alarm side, from there on it moves
//! towards it. `before` and `after` are the means of the values before and
//! from that start, since the last reset. When both sides fire at once (mode
//! `both`), the side further past the threshold is reported.

use serde::{Deserialize, Serialize};

use super::{Change, Detector, DetectorState, Direction, Outcome, ParamError, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub min_instances: u64,
    pub delta: f64,
    pub threshold: f64,
    pub alpha: f64,
    /// river's name for the direction, shown in the report's parameters.
    pub mode: Mode,
    pub direction: Direction,
}

/// river's `mode`: which side of the test can fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Up,
    Down,
    Both,
}

impl Mode {
    fn of(direction: Direction) -> Mode {
        match direction {
            Direction::Increase => Mode::Up,
            Direction::Decrease => Mode::Down,
            Direction::Both => Mode::Both,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Mode::Up => "up",
            Mode::Down => "down",
            Mode::Both => "both",
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new(Direction::Both)
    }
}

impl Config {
    /// river's defaults, with the mode of `direction`.
    pub fn new(direction: Direction) -> Config {
        Config {
            min_instances: 30,
            delta: 0.005,
            threshold: 50.0,
            alpha: 1.0 - 0.0001,
            mode: Mode::of(direction),
            direction,
        }
    }

    pub fn from_params(direction: Direction, p: &mut Params) -> Result<Config, ParamError> {
        let min_instances = p.int(
            "min_instances",
            30,
            |n| (1..=1_000_000_000).contains(&n),
            "must be in 1..=1000000000",
        )?;
        let delta = p.float("delta", 0.005, |d| d >= 0.0, "must be >= 0")?;
        let threshold = p.float("threshold", 50.0, |t| t > 0.0, "must be > 0")?;
        let alpha = p.float(
            "alpha",
            1.0 - 0.0001,
            |a| a > 0.0 && a <= 1.0,
            "must be in (0, 1]",
        )?;
        let mode = Mode::of(direction);
        if p.has("mode") {
            let given = p.choice("mode", mode.as_str(), &["up", "down", "both"])?;
            if given != mode.as_str() {
                return Err(p.error(
                    "mode",
                    format!(
                        "must agree with direction = \"{}\" (mode \"{}\"), got \"{given}\"",
                        direction.as_str(),
                        mode.as_str()
                    ),
                ));
            }
        }
        Ok(Config {
            min_instances: min_instances as u64,
            delta,
            threshold,
            alpha,
            mode,
            direction,
        })
    }
}

/// Where a cumulative statistic last reached its extreme.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Extreme {
    /// The statistic's value there.
    value: f64,
    /// Values seen up to and including that position.
    count: u64,
    /// Their sum.
    sum: f64,
}

/// One Page-Hinkley detector instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageHinkley {
    config: Config,
    /// river's `stats.Mean`: a float count and the running mean.
    n: f64,
    mean: f64,
    sum_increase: f64,
    sum_decrease: f64,
    /// The lowest `sum_increase` so far; `None` stands for river's +∞.
    min_increase: Option<Extreme>,
    /// The highest `sum_decrease`; river starts it at −1.
    max_decrease: Extreme,
    /// Values since the last reset, and their sum, for `before`/`after`.
    count: u64,
    sum: f64,
}

impl PageHinkley {
    pub fn new(config: Config) -> PageHinkley {
        PageHinkley {
            config,
            n: 0.0,
            mean: 0.0,
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: None,
            max_decrease: Extreme {
                value: -1.0,
                count: 0,
                sum: 0.0,
            },
            count: 0,
            sum: 0.0,
        }
    }

    /// The change from the value after `extreme` to now.
    fn change(&self, extreme: Extreme) -> Change {
        let after_count = self.count - extreme.count;
        let after = (self.sum - extreme.sum) / after_count as f64;
        Change {
            lookback: after_count - 1,
            // Both extremes are set on the first update, so `count` is never
            // 0 here; the guard only avoids a NaN if that ever changed.
            before: if extreme.count == 0 {
                after
            } else {
                extreme.sum / extreme.count as f64
            },
            after,
        }
    }
}

impl Detector for PageHinkley {
    fn update(&mut self, x: f64, _time_ns: i64) -> Outcome {
        let c = &self.config;
        self.count += 1;
        self.sum += x;
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
        let dev = x - self.mean;
        self.sum_increase = c.alpha * self.sum_increase + dev - c.delta;
        self.sum_decrease = c.alpha * self.sum_decrease + dev + c.delta;
        let here = Extreme {
            value: 0.0,
            count: self.count,
            sum: self.sum,
        };
        if self
            .min_increase
            .is_none_or(|m| self.sum_increase < m.value)
        {
            self.min_increase = Some(Extreme {
                value: self.sum_increase,
                ..here
            });
        }
        if self.sum_decrease > self.max_decrease.value {
            self.max_decrease = Extreme {
                value: self.sum_decrease,
                ..here
            };
        }
        if self.n < c.min_instances as f64 {
            return Outcome::None;
        }
        // Set on the first update, so never None here.
        let Some(min_increase) = self.min_increase else {
            return Outcome::None;
        };
        let up = self.sum_increase - min_increase.value;
        let down = self.max_decrease.value - self.sum_decrease;
        let (up_fires, down_fires) = match c.mode {
            Mode::Up => (up > c.threshold, false),
            Mode::Down => (false, down > c.threshold),
            Mode::Both => (up > c.threshold, down > c.threshold),
        };
        let change = match (up_fires, down_fires) {
            (false, false) => return Outcome::None,
            (true, true) if down > up => self.change(self.max_decrease),
            (true, _) => self.change(min_increase),
            (false, true) => self.change(self.max_decrease),
        };
        *self = PageHinkley::new(self.config.clone());
        Outcome::Drift(change)
    }

    fn save(&self) -> DetectorState {
        self.clone().into()
    }
}

impl super::Restore for PageHinkley {
    type Config = Config;

    fn adopt(&mut self, config: &Config) -> Result<(), super::StateError> {
        self.config = config.clone();
        super::check_count("count", self.count)?;
        let extremes = self.min_increase.iter().chain([&self.max_decrease]);
        for e in extremes {
            super::check(e.count <= self.count, || {
                format!("an extreme at value {} of {}", e.count, self.count)
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::DetectorConfig;
    use crate::detect::parity::{self, Fixture};
    use proptest::prelude::*;

    /// river's constructor arguments as a monitor: `mode` becomes the direction.
    fn config(params: &serde_json::Value) -> Config {
        let direction = match params.get("mode").and_then(|m| m.as_str()) {
            Some("up") => Direction::Increase,
            Some("down") => Direction::Decrease,
            _ => Direction::Both,
        };
        let mut p = parity::params(params);
        let c = Config::from_params(direction, &mut p).unwrap();
        p.finish(&[]).unwrap();
        c
    }

    #[test]
    fn drifts_at_exactly_rivers_positions() {
        let fixture = Fixture::load(include_str!("../../fixtures/parity/page_hinkley.json"));
        let mut checked = 0;
        for case in &fixture.cases {
            let mut d = PageHinkley::new(config(&case.params));
            let found: Vec<usize> = parity::drifts(&mut d, fixture.values(&case.stream))
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            assert_eq!(
                found, case.drifts,
                "stream {} params {}",
                case.stream, case.params
            );
            checked += 1;
        }
        assert!(checked >= 70, "only {checked} cases");
    }

    #[test]
    fn change_starts_after_the_extreme() {
        // A clean step from 0 to 1 at index 500: `up` is lowest at 499.
        let values: Vec<f64> = (0..1000).map(|i| if i < 500 { 0.0 } else { 1.0 }).collect();
        let mut d = PageHinkley::new(Config::new(Direction::Increase));
        let found = parity::drifts(&mut d, &values);
        let (at, change) = found[0];
        assert_eq!(at - change.lookback as usize, 500);
        assert_eq!((change.before, change.after), (0.0, 1.0));
        let mut d = PageHinkley::new(Config::new(Direction::Decrease));
        assert!(parity::drifts(&mut d, &values).is_empty());
    }

    #[test]
    fn mode_must_agree_with_direction() {
        let parse = |toml: &str, direction| {
            let table: toml::Table = toml.parse().unwrap();
            let mut p = Params::new(table, "monitor[0].params");
            Config::from_params(direction, &mut p).map_err(|e| e.to_string())
        };
        assert_eq!(
            parse("mode = \"down\"", Direction::Decrease).unwrap().mode,
            Mode::Down
        );
        assert_eq!(
            parse("mode = \"up\"", Direction::Decrease).unwrap_err(),
            "monitor[0].params.mode: must agree with direction = \"decrease\" (mode \"down\"), got \"up\""
        );
        assert!(
            parse("threshold = 0", Direction::Both)
                .unwrap_err()
                .contains("params.threshold")
        );
        assert!(
            parse("alpha = 1.5", Direction::Both)
                .unwrap_err()
                .contains("params.alpha")
        );
    }

    #[test]
    fn registered_by_name_with_every_parameter() {
        let mut p = Params::empty();
        let c = DetectorConfig::from_params("page-hinkley", Direction::Decrease, &mut p)
            .unwrap()
            .unwrap();
        assert_eq!(c.name(), "page-hinkley");
        assert_eq!(
            c.params_json(),
            serde_json::json!({"min_instances": 30, "delta": 0.005, "threshold": 50.0,
                               "alpha": 0.9999, "mode": "down"})
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn cut_anywhere_gives_the_same_detections(
            values in parity::shifting_stream(3000),
            cut in 0usize..3000,
        ) {
            let mut p = parity::params(&serde_json::json!({"threshold": 20.0}));
            let c = DetectorConfig::from_params("page-hinkley", Direction::Both, &mut p)
                .unwrap()
                .unwrap();
            let (whole, resumed) = parity::whole_and_resumed(&c, &values, cut);
            prop_assert_eq!(whole, resumed);
        }
    }
}
