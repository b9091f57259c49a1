//! Restoring detector states from a checkpoint whose checksum is right but
//! whose content is not a state the configuration can have (SPEC §6): each
//! is refused with a reason, never a panic, and the configured parameters
//! win over the saved ones.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Detector, DetectorConfig, DetectorState, Direction, Params, StateError};

/// A detector configured as `monitor[0]` of mmon.toml would be.
fn config(name: &str, params: &str) -> DetectorConfig {
    let table: toml::Table = toml::from_str(params).unwrap();
    let mut p = Params::new(table, "monitor[0].params");
    let c = DetectorConfig::from_params(name, Direction::Both, &mut p)
        .unwrap()
        .unwrap();
    p.finish(&[]).unwrap();
    c
}

/// Every detector, with parameters that make it busy on [`values`].
fn all() -> Vec<DetectorConfig> {
    vec![
        config("decay", "window = 20\nthreshold = 0.05"),
        config("threshold", "statistic = \"p90\"\nwindow = 30\nabove = 0.8"),
        config("adwin", "clock = 4"),
        config("page-hinkley", "threshold = 5\nmin_instances = 10"),
        config("kswin", "window_size = 40\nstat_size = 10"),
        config("ddm", ""),
        config("eddm", ""),
        config("hddm-a", ""),
        config("hddm-w", ""),
        config("cusum", "warmup = 30"),
        config("ewma", "warmup = 30"),
    ]
}

/// A 0/1-ish stream with a shift in the middle.
fn values(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let p = if i < n / 2 { 0.2 } else { 0.6 };
            if (i * 7919 % 100) as f64 / 100.0 < p {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

/// A detector's saved fields as the checkpoint holds them under its name.
fn fields(state: DetectorState) -> Value {
    let name = state.name();
    let mut tagged = serde_json::to_value(state).unwrap();
    assert!(tagged.get(name).is_some(), "no {name} tag in {tagged}");
    tagged[name].take()
}

/// The fields of `c`'s detector after `n` [`values`].
fn saved(c: &DetectorConfig, n: usize) -> Value {
    let mut d = c.build();
    for (i, x) in values(n).into_iter().enumerate() {
        d.update(x, i as i64 * 1_000_000_000);
    }
    fields(d.save())
}

/// Reads `fields` as a checkpoint would, tagged with `c`'s name, and
/// restores them: a state that does not parse is refused as well.
fn restore(c: &DetectorConfig, fields: Value) -> Result<DetectorState, String> {
    let state: DetectorState =
        serde_json::from_value(json!({ c.name(): fields })).map_err(|e| e.to_string())?;
    c.restore(state).map_err(|e| e.to_string())
}

/// Runs a restored detector on, so an inconsistency that slipped through
/// would panic here.
fn run_on(d: &mut DetectorState) {
    for (i, x) in values(300).into_iter().enumerate() {
        d.update(x, 1_000_000_000_000 + i as i64 * 1_000_000_000);
    }
}

fn set(state: &mut Value, pointer: &str, to: Value) {
    let shown = state.to_string();
    *state
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in {shown}")) = to;
}

fn refused(c: &DetectorConfig, state: Value, why: &str) {
    match restore(c, state) {
        Ok(_) => panic!("{}: {why}: restored", c.name()),
        Err(e) => assert!(!e.is_empty()),
    }
}

#[test]
fn a_legitimate_state_restores_and_goes_on() {
    for c in all() {
        for n in [0, 1, 17, 250] {
            let mut d = restore(&c, saved(&c, n)).unwrap_or_else(|e| panic!("{}: {e}", c.name()));
            run_on(&mut d);
        }
    }
}

#[test]
fn every_detector_saves_under_its_configured_name() {
    for c in all() {
        let state = c.build().save();
        assert_eq!(state.name(), c.name());
        let tagged = serde_json::to_value(&state).unwrap();
        let keys: Vec<&String> = tagged.as_object().unwrap().keys().collect();
        assert_eq!(keys, [c.name()]);
    }
    let names: Vec<&str> = all().iter().map(DetectorConfig::name).collect();
    assert_eq!(names, super::NAMES);
}

#[test]
fn a_state_of_another_detector_is_refused_naming_both_instead_of_panicking() {
    let configs = all();
    for c in &configs {
        for other in &configs {
            let state = other.build().save();
            let result = c.restore(state);
            if c.name() == other.name() {
                assert!(result.is_ok(), "{}", c.name());
                continue;
            }
            match result {
                Err(e @ StateError::Mismatch { .. }) => {
                    let text = e.to_string();
                    assert!(
                        text.contains(&format!("{:?}", c.name()))
                            && text.contains(&format!("{:?}", other.name())),
                        "{text}"
                    );
                }
                Err(e) => panic!("{} from {}: {e}", c.name(), other.name()),
                Ok(_) => panic!("{} restored from {}", c.name(), other.name()),
            }
        }
    }
}

#[test]
fn decay_with_more_reference_values_than_its_window_is_refused() {
    let c = config("decay", "window = 20\nthreshold = 0.05");
    let mut s = saved(&c, 10);
    set(&mut s, "/reference_count", json!(25));
    refused(&c, s, "reference_count > window");
    let mut s = saved(&c, 10);
    set(&mut s, "/recent", json!(vec![0.5; 21]));
    refused(&c, s, "recent longer than window");
}

#[test]
fn threshold_whose_sorted_copy_is_not_its_window_is_refused_instead_of_indexing_out_of_bounds() {
    let c = config("threshold", "statistic = \"p90\"\nwindow = 30\nabove = 0.8");
    let mut s = saved(&c, 100);
    set(&mut s, "/sorted", json!([0.0]));
    refused(&c, s, "sorted shorter than values");
    let mut s = saved(&c, 100);
    let values = s["values"].as_array().unwrap().clone();
    let mut more = values.clone();
    more.extend(values);
    set(&mut s, "/values", Value::Array(more));
    refused(&c, s, "values longer than window");
}

#[test]
fn kswin_takes_its_sizes_from_the_configuration_not_the_checkpoint() {
    let c = config("kswin", "window_size = 40\nstat_size = 10");
    let mut s = saved(&c, 100);
    // Once "capacity overflow": stat_size > window_size in the saved config.
    set(&mut s, "/config/stat_size", json!(200));
    set(&mut s, "/config/window_size", json!(100));
    let mut d = restore(&c, s).unwrap();
    run_on(&mut d);
    let saved_config = fields(d.save())["config"].clone();
    assert_eq!(saved_config["stat_size"], 10);
    let mut s = saved(&c, 100);
    set(&mut s, "/window", json!(vec![0.5; 41]));
    refused(&c, s, "window longer than window_size");
}

#[test]
fn adwin_with_an_impossible_window_is_refused_instead_of_overflowing() {
    let c = config("adwin", "clock = 4");
    let mut s = saved(&c, 200);
    set(&mut s, "/window/since_check", json!(u32::MAX));
    refused(&c, s, "since_check at u32::MAX");
    let mut s = saved(&c, 200);
    set(&mut s, "/window/width", json!(1e300));
    refused(&c, s, "width not what the buckets hold");
    let mut s = saved(&c, 200);
    let levels = vec![json!([[1.0, 0.0]]); 70];
    set(&mut s, "/window/levels", Value::Array(levels));
    refused(&c, s, "70 levels (1 << 70 overflows)");
    let mut s = saved(&c, 200);
    set(&mut s, "/window/levels/0", json!(vec![[1.0, 0.0]; 9]));
    refused(&c, s, "a level over max_buckets");
}

#[test]
fn page_hinkley_with_an_extreme_after_its_count_is_refused() {
    let c = config("page-hinkley", "threshold = 5\nmin_instances = 10");
    let mut s = saved(&c, 20);
    set(&mut s, "/max_decrease/count", json!(1000));
    refused(&c, s, "extreme beyond count");
    let mut s = saved(&c, 20);
    set(&mut s, "/count", json!(u64::MAX));
    refused(&c, s, "count at u64::MAX");
}

#[test]
fn eddm_with_a_maximum_after_its_count_is_refused_instead_of_underflowing() {
    let c = config("eddm", "");
    let mut s = saved(&c, 200);
    assert!(s["max"].is_object(), "{s}");
    set(&mut s, "/max/n", json!(10_000));
    refused(&c, s, "max.n > n");
    let mut s = saved(&c, 200);
    set(&mut s, "/errors", json!(10_000));
    refused(&c, s, "more errors than values");
    let mut s = saved(&c, 200);
    set(&mut s, "/n", json!(u64::MAX));
    refused(&c, s, "n at u64::MAX");
}

#[test]
fn ddm_and_hddm_a_with_a_cut_after_their_count_are_refused() {
    let c = config("ddm", "");
    let mut s = saved(&c, 200);
    assert!(s["min"].is_object(), "{s}");
    set(&mut s, "/min/n", json!(1e9));
    refused(&c, s, "min.n > n");
    let c = config("hddm-a", "");
    let mut s = saved(&c, 200);
    set(&mut s, "/x_min/n", json!(1e9));
    refused(&c, s, "x_min.n > z.n");
}

#[test]
fn hddm_w_with_a_count_at_the_limit_is_refused_and_its_constants_are_recomputed() {
    let c = config("hddm-w", "");
    let mut s = saved(&c, 200);
    set(&mut s, "/total/n", json!(u64::MAX));
    refused(&c, s, "total.n at u64::MAX");
    let mut s = saved(&c, 200);
    set(&mut s, "/k/ln_drift", json!(-5.0));
    let d = restore(&c, s).unwrap();
    assert_eq!(
        fields(d.save()),
        saved(&c, 200),
        "the constants come from the config"
    );
}

#[test]
fn cusum_and_ewma_with_an_overlong_warmup_are_refused() {
    for c in [
        config("cusum", "warmup = 30"),
        config("ewma", "warmup = 30"),
    ] {
        let mut s = saved(&c, 10);
        set(&mut s, "/warmup/n", json!(30));
        refused(&c, s, "a warmup that should have ended");
    }
    let c = config("ewma", "warmup = 30");
    let mut s = saved(&c, 100);
    set(&mut s, "/decay", json!(2.0));
    refused(&c, s, "decay above 1");
}

/// Replaces numbers anywhere in `v` with the `k`-th of a few hostile ones,
/// and arrays with shorter or longer copies, following `picks`.
fn mutate(v: &mut Value, picks: &mut impl Iterator<Item = u8>) {
    const HOSTILE: [f64; 8] = [0.0, 1.0, -1.0, 3.0, 1e6, 4.294967295e9, 1.8e19, 1e300];
    match v {
        Value::Number(_) => {
            if let Some(p) = picks.next()
                && p % 3 == 0
            {
                let x = HOSTILE[(p as usize / 3) % HOSTILE.len()];
                *v = if x.fract() == 0.0 && (0.0..1.8e19).contains(&x) {
                    json!(x as u64)
                } else {
                    json!(x)
                };
            }
        }
        Value::Array(items) => {
            match picks.next().map(|p| p % 8) {
                Some(0) => items.truncate(items.len() / 2),
                Some(1) if !items.is_empty() => {
                    let first = items[0].clone();
                    items.extend(std::iter::repeat_n(first, 40));
                }
                _ => {}
            }
            for item in items {
                mutate(item, picks);
            }
        }
        Value::Object(map) => {
            for (_, item) in map.iter_mut() {
                mutate(item, picks);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Whatever a re-signed checkpoint holds, restoring is a refusal or a
    /// detector that runs on without panicking.
    #[test]
    fn no_tampered_state_panics(which in 0..super::NAMES.len(), n in 0usize..300, picks in proptest::collection::vec(any::<u8>(), 0..200)) {
        let c = &all()[which];
        let mut s = saved(c, n);
        mutate(&mut s, &mut picks.into_iter());
        if let Ok(mut d) = restore(c, s) {
            run_on(&mut d);
        }
    }
}
