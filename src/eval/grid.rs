//! Parameter grids: `--grid 'monitor[0].params.delta=1e-3,1e-4'`, repeated
//! for the product of several, applied to a configuration's TOML table
//! before it is validated, so a value that does not fit names its key as a
//! config file would (`monitor[0].params.delta: must be in (0, 1), got 2`).

use toml::Value;

/// At most this many points (the product of all grids).
pub const MAX_POINTS: usize = 10_000;

/// One step of a key path: `params` or `monitor[1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Item(String, usize),
}

/// One `--grid`: a key path and the values to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The `--grid` argument as typed.
    pub spec: String,
    /// The path as typed, e.g. `monitor[0].params.delta`.
    pub path: String,
    segments: Vec<Segment>,
    /// Each value as typed and as TOML.
    pub values: Vec<(String, Value)>,
}

/// A grid that cannot be used: a usage error naming the `--grid`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GridError(pub String);

impl Axis {
    /// Parses `PATH=V1,V2,...`; values are TOML (`1e-3`, `100`, `true`,
    /// `"adwin"`), and a bare word is a string.
    pub fn parse(spec: &str) -> Result<Axis, GridError> {
        let bad = |msg: String| GridError(format!("--grid {spec:?}: {msg}"));
        let Some((path, list)) = spec.split_once('=') else {
            return Err(bad(
                "expected PATH=V1,V2,..., e.g. 'monitor[0].params.delta=1e-3,1e-4,1e-5'".into(),
            ));
        };
        let path = path.trim();
        let segments = path
            .split('.')
            .map(segment)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                bad(format!(
                    "{path:?} is not a key path; expected keys joined by dots, with [N] for the N-th table of an array, e.g. monitor[0].params.delta"
                ))
            })?;
        let mut values = Vec::new();
        for item in split_values(list) {
            let item = item.trim();
            if item.is_empty() {
                return Err(bad(
                    "an empty value; expected V1,V2,... with none empty".into()
                ));
            }
            values.push((item.to_string(), value(item)));
        }
        if values.is_empty() {
            return Err(bad("no values after '='".into()));
        }
        Ok(Axis {
            spec: spec.to_string(),
            path: path.to_string(),
            segments,
            values,
        })
    }

    /// The monitor this axis changes, if it is `monitor[N]...`.
    pub fn monitor(&self) -> Option<usize> {
        match self.segments.first() {
            Some(Segment::Item(k, i)) if k == "monitor" => Some(*i),
            _ => None,
        }
    }

    /// Sets this axis's key in `table` to `value`; what is wrong names the key.
    pub fn apply(&self, table: &mut toml::Table, value: &Value) -> Result<(), String> {
        let mut cur = table;
        let mut done: Vec<String> = Vec::new();
        let last = self.segments.len() - 1;
        for (i, seg) in self.segments.iter().enumerate() {
            let here = |name: String, done: &[String]| {
                if done.is_empty() {
                    name
                } else {
                    format!("{}.{name}", done.join("."))
                }
            };
            let slot = match seg {
                Segment::Key(k) => {
                    if i == last {
                        cur.insert(k.clone(), value.clone());
                        return Ok(());
                    }
                    cur.entry(k.clone())
                        .or_insert_with(|| Value::Table(toml::Table::new()))
                }
                Segment::Item(k, n) => {
                    let path = here(format!("{k}[{n}]"), &done);
                    let Some(Value::Array(items)) = cur.get_mut(k) else {
                        return Err(format!(
                            "{path}: the configuration has no [[{}]] tables",
                            here(k.clone(), &done)
                        ));
                    };
                    let len = items.len();
                    let Some(item) = items.get_mut(*n) else {
                        return Err(format!(
                            "{path}: the configuration has {len} [[{k}]] table{} (numbered from 0)",
                            if len == 1 { "" } else { "s" }
                        ));
                    };
                    if i == last {
                        *item = value.clone();
                        return Ok(());
                    }
                    item
                }
            };
            let name = match seg {
                Segment::Key(k) => k.clone(),
                Segment::Item(k, n) => format!("{k}[{n}]"),
            };
            let Value::Table(t) = slot else {
                return Err(format!(
                    "{}: is a {}, not a table",
                    here(name, &done),
                    slot.type_str()
                ));
            };
            done.push(name);
            cur = t;
        }
        Ok(())
    }
}

fn segment(s: &str) -> Option<Segment> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match s.strip_suffix(']').and_then(|s| s.split_once('[')) {
        Some((name, n)) => {
            let n: usize = n.parse().ok()?;
            name_ok(name).then(|| Segment::Item(name.to_string(), n))
        }
        None => name_ok(s).then(|| Segment::Key(s.to_string())),
    }
}

/// Splits on commas outside brackets, braces and quotes.
fn split_values(list: &str) -> Vec<&str> {
    let (mut depth, mut quote, mut from) = (0i32, None::<char>, 0);
    let mut out = Vec::new();
    for (i, c) in list.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&list[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[from..]);
    out
}

/// A value as TOML, or the text as a string when it is not TOML.
fn value(text: &str) -> Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// Every point of the product of `axes`, as one value index per axis; the
/// last axis varies fastest.
pub fn points(axes: &[Axis]) -> Result<Vec<Vec<usize>>, GridError> {
    let total = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|&n| n <= MAX_POINTS)
        .ok_or_else(|| {
            GridError(format!(
                "the grids make more than {MAX_POINTS} points; score fewer values at a time"
            ))
        })?;
    let mut out = Vec::with_capacity(total);
    for mut n in 0..total {
        let mut point = vec![0; axes.len()];
        for (a, axis) in axes.iter().enumerate().rev() {
            point[a] = n % axis.values.len();
            n /= axis.values.len();
        }
        out.push(point);
    }
    Ok(out)
}

/// The `[[monitor]]` tables (and other settings) a grid point changed, in
/// `table` after the point was applied, as TOML to paste into `mmon.toml`.
pub fn toml_block(table: &toml::Table, axes: &[Axis]) -> String {
    let mut out = String::new();
    let mut monitors: Vec<usize> = axes.iter().filter_map(Axis::monitor).collect();
    monitors.sort_unstable();
    monitors.dedup();
    let list = table.get("monitor").and_then(Value::as_array);
    for i in monitors {
        let Some(Value::Table(m)) = list.and_then(|l| l.get(i)) else {
            continue;
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("[[monitor]]  # monitor[{i}]\n"));
        let mut keys: Vec<&String> = m.keys().collect();
        let rank = |k: &str| match k {
            "metric" => 0,
            "detector" => 1,
            "direction" => 2,
            _ => 3,
        };
        keys.sort_by_key(|k| (rank(k), k.as_str()));
        for k in keys {
            out.push_str(&format!("{k:<9} = {}\n", inline(&m[k.as_str()])));
        }
    }
    for axis in axes.iter().filter(|a| a.monitor().is_none()) {
        let value = lookup(table, &axis.segments);
        let names: Option<Vec<&str>> = axis
            .segments
            .iter()
            .map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Item(..) => None,
            })
            .collect();
        if !out.is_empty() {
            out.push('\n');
        }
        match (names, value) {
            (Some(names), Some(v)) if names.len() > 1 => {
                let (key, section) = names.split_last().unwrap_or((&"", &[]));
                out.push_str(&format!("[{}]\n{key} = {}\n", section.join("."), inline(v)));
            }
            (_, Some(v)) => out.push_str(&format!("{} = {}\n", axis.path, inline(v))),
            (_, None) => {}
        }
    }
    out
}

fn lookup<'a>(table: &'a toml::Table, path: &[Segment]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let v = match first {
        Segment::Key(k) => table.get(k)?,
        Segment::Item(k, n) => table.get(k)?.as_array()?.get(*n)?,
    };
    if rest.is_empty() {
        Some(v)
    } else {
        lookup(v.as_table()?, rest)
    }
}

/// A value on one line, tables inline, small and large floats in
/// exponent form (`1e-5`, as people write a `delta`).
pub fn inline(v: &Value) -> String {
    match v {
        Value::Float(x) if x.is_finite() && *x != 0.0 && !(1e-3..1e6).contains(&x.abs()) => {
            format!("{x:e}")
        }
        Value::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect();
            if items.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", items.join(", "))
            }
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[[monitor]]\nmetric = \"accuracy\"\ndetector = \"decay\"\n\
                          [[monitor]]\nmetric = \"correct\"\ndetector = \"adwin\"\nparams = { delta = 0.002 }\n";

    #[test]
    fn values_are_toml_and_words_are_strings() {
        let a = Axis::parse("monitor[1].params.delta=1e-3, 1e-4,2").unwrap();
        assert_eq!(a.path, "monitor[1].params.delta");
        let v: Vec<&Value> = a.values.iter().map(|(_, v)| v).collect();
        assert_eq!(
            v,
            [&Value::Float(1e-3), &Value::Float(1e-4), &Value::Integer(2)]
        );
        let b = Axis::parse("monitor[0].detector=adwin,\"page-hinkley\",[1, 2]").unwrap();
        assert_eq!(b.values[0].1, Value::String("adwin".into()));
        assert_eq!(b.values[1].1, Value::String("page-hinkley".into()));
        assert_eq!(b.values[2].0, "[1, 2]");
        assert_eq!(b.monitor(), Some(0));
    }

    #[test]
    fn bad_grids_say_what_was_expected() {
        let err = |s: &str| Axis::parse(s).unwrap_err().to_string();
        assert!(err("delta").contains("expected PATH=V1,V2,..."));
        assert!(err("monitor[x].delta=1").contains("is not a key path"));
        assert!(err("monitor[0]..delta=1").contains("is not a key path"));
        assert!(err("monitor[0].params.delta=1,,2").contains("an empty value"));
    }

    #[test]
    fn applying_creates_tables_and_names_what_is_missing() {
        let mut t: toml::Table = CONFIG.parse().unwrap();
        let a = Axis::parse("monitor[0].params.window=300").unwrap();
        a.apply(&mut t, &a.values[0].1).unwrap();
        assert_eq!(t["monitor"][0]["params"]["window"], Value::Integer(300));
        let b = Axis::parse("monitor[5].params.delta=1").unwrap();
        assert_eq!(
            b.apply(&mut t, &b.values[0].1).unwrap_err(),
            "monitor[5]: the configuration has 2 [[monitor]] tables (numbered from 0)"
        );
        let c = Axis::parse("monitor[0].metric.x=1").unwrap();
        assert_eq!(
            c.apply(&mut t, &c.values[0].1).unwrap_err(),
            "monitor[0].metric: is a string, not a table"
        );
        let d = Axis::parse("report.merge_gap=5").unwrap();
        d.apply(&mut t, &d.values[0].1).unwrap();
        assert_eq!(t["report"]["merge_gap"], Value::Integer(5));
    }

    #[test]
    fn points_are_the_product_with_the_last_grid_fastest() {
        let a = Axis::parse("a=1,2").unwrap();
        let b = Axis::parse("b=1,2,3").unwrap();
        let p = points(&[a, b]).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], [0, 0]);
        assert_eq!(p[1], [0, 1]);
        assert_eq!(p[5], [1, 2]);
        assert_eq!(points(&[]).unwrap(), vec![Vec::<usize>::new()]);
        let big = Axis::parse(&format!("a={}", vec!["1"; 101].join(","))).unwrap();
        assert!(points(&[big.clone(), big]).is_err());
    }

    #[test]
    fn the_best_point_prints_as_a_monitor_block() {
        let mut t: toml::Table = CONFIG.parse().unwrap();
        let a = Axis::parse("monitor[1].params.delta=1e-5").unwrap();
        a.apply(&mut t, &a.values[0].1).unwrap();
        let g = Axis::parse("report.merge_gap=50").unwrap();
        g.apply(&mut t, &g.values[0].1).unwrap();
        assert_eq!(
            toml_block(&t, &[a, g]),
            "[[monitor]]  # monitor[1]\nmetric    = \"correct\"\ndetector  = \"adwin\"\nparams    = { delta = 1e-5 }\n\n[report]\nmerge_gap = 50\n"
        );
    }
}
