//! `mmon generate`: turn the flags into a [`Plan`], write the log and its truth.
//!
//! Both files are written beside their targets and renamed into place when
//! complete (through [`crate::durable`], as every output of mmon), so an interrupted run never leaves half a log under the name a
//! test or a benchmark will read.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::cli::GenerateArgs;
use crate::durable::{self, AtomicFile};
use crate::exit_code::{ExitCode, Failure};
use crate::generate::{self, Canary, Drift, LogFormat, Plan, Profile};

pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(args).map_err(|e| Failure::new(ExitCode::Usage, e))?;
    let truth_path = match (&args.truth, args.out.as_str()) {
        (Some(t), _) => Some(t.clone()),
        (None, "-") => None,
        (None, out) => Some(format!("{out}.truth.json")),
    };
    let truth = if args.out == "-" {
        let stdout = std::io::stdout();
        let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
        generate::generate(&plan, &mut out)?
    } else {
        let target = PathBuf::from(&args.out);
        let written = AtomicFile::create(&target).and_then(|file| {
            let mut out = BufWriter::with_capacity(1 << 16, file);
            let truth = generate::generate(&plan, &mut out)?;
            out.into_inner().map_err(|e| e.into_error())?.commit()?;
            Ok(truth)
        });
        written.map_err(|e| cannot_write(&target, e))?
    };
    if let Some(path) = truth_path {
        let mut text = serde_json::to_string_pretty(&truth)?;
        text.push('\n');
        if path == "-" {
            std::io::stderr().write_all(text.as_bytes())?;
        } else {
            let target = PathBuf::from(&path);
            durable::write_atomic(&target, text.as_bytes())
                .map_err(|e| cannot_write(&target, e))?;
        }
    }
    Ok(ExitCode::Success)
}

/// An output that cannot be written is exit 4, naming it.
fn cannot_write(target: &Path, e: std::io::Error) -> anyhow::Error {
    Failure::new(
        ExitCode::Training,
        anyhow!("cannot write {}: {e}", target.display()),
    )
    .into()
}

/// The plan the flags describe, or what is wrong with them (naming the flag).
pub fn plan(args: &GenerateArgs) -> anyhow::Result<Plan> {
    if args.models == 0 {
        return Err(anyhow!("--models must be at least 1"));
    }
    if args.acc_window == 0 {
        return Err(anyhow!("--acc-window must be at least 1"));
    }
    if !(0.0..1.0).contains(&args.malformed_rate) {
        return Err(anyhow!(
            "--malformed-rate must be in [0, 1), got {}",
            args.malformed_rate
        ));
    }
    let models: Vec<Profile> = (0..args.models).map(Profile::nth).collect();
    let index_of = |id: &str, flag: &str| {
        models.iter().position(|p| p.model_id == id).ok_or_else(|| {
            let known: Vec<&str> = models.iter().map(|p| p.model_id.as_str()).collect();
            anyhow!(
                "{flag}: unknown model {id:?} (with --models {} the models are {})",
                args.models,
                known.join(", ")
            )
        })
    };
    let fractions: Vec<f64> = list(&args.drift_at, "--drift-at")?;
    for f in &fractions {
        if !(0.0..1.0).contains(f) {
            return Err(anyhow!("--drift-at: fraction {f} is not in [0, 1)"));
        }
    }
    let n = fractions.len();
    let targets: Vec<usize> = match &args.drift_models {
        None => (0..n).map(|k| k % models.len()).collect(),
        Some(ids) => {
            let ids: Vec<String> = list(ids, "--drift-models")?;
            let ids = ids
                .iter()
                .map(|id| index_of(id, "--drift-models"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            per_drift(ids, n, "--drift-models")?
        }
    };
    let drops: Vec<f64> = per_drift(list(&args.drop, "--drop")?, n, "--drop")?;
    let factors: Vec<f64> = per_drift(
        list(&args.latency_factor, "--latency-factor")?,
        n,
        "--latency-factor",
    )?;
    for f in &factors {
        if !(f.is_finite() && *f > 0.0) {
            return Err(anyhow!("--latency-factor: {f} is not a positive number"));
        }
    }
    for d in &drops {
        if !(d.is_finite() && (-1.0..=1.0).contains(d)) {
            return Err(anyhow!("--drop: {d} is not in [-1, 1]"));
        }
    }
    let recover: Vec<u64> = list(&args.recover_after, "--recover-after")?;
    let recover: Vec<Option<u64>> = if recover.is_empty() {
        vec![None; n]
    } else {
        per_drift(recover, n, "--recover-after")?
            .into_iter()
            .map(|r| (r > 0).then_some(r))
            .collect()
    };
    let drifts = (0..n)
        .map(|k| Drift {
            model: targets[k],
            start: (fractions[k] * args.events as f64).floor() as u64,
            drop: drops[k],
            latency_factor: factors[k],
            recover_after: recover[k],
        })
        .collect();
    let canaries = args
        .canary
        .iter()
        .map(|spec| {
            let parts: Vec<&str> = spec.split(':').collect();
            let bad = || {
                anyhow!(
                    "--canary {spec:?}: expected MODEL:VERSION:SHARE[:FROM], e.g. churn:1.5.0:0.1"
                )
            };
            if !(3..=4).contains(&parts.len()) || parts[1].is_empty() {
                return Err(bad());
            }
            let model = index_of(parts[0], "--canary")?;
            let share: f64 = parts[2].parse().map_err(|_| bad())?;
            let from: f64 = parts
                .get(3)
                .map_or(Ok(0.0), |f| f.parse())
                .map_err(|_| bad())?;
            if !(share > 0.0 && share < 1.0 && (0.0..1.0).contains(&from)) {
                return Err(anyhow!(
                    "--canary {spec:?}: SHARE must be in (0, 1) and FROM in [0, 1)"
                ));
            }
            if parts[1] == models[model].model_version {
                return Err(anyhow!(
                    "--canary {spec:?}: {} is already the stable version of {}",
                    parts[1],
                    parts[0]
                ));
            }
            Ok(Canary {
                model,
                version: parts[1].to_string(),
                share,
                from: (from * args.events as f64).floor() as u64,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let start_ms = chrono::DateTime::parse_from_rfc3339(&args.start)
        .map_err(|e| anyhow!("--start {:?}: expected an RFC 3339 time ({e})", args.start))?
        .timestamp_millis();
    let format = args.format.unwrap_or(if args.out.ends_with(".csv") {
        LogFormat::Csv
    } else {
        LogFormat::Jsonl
    });
    Ok(Plan {
        events: args.events,
        format,
        seed: args.seed,
        models,
        drifts,
        canaries,
        width: args.drift_width,
        acc_window: args.acc_window,
        start_ms,
        interval_ms: args.interval_ms,
        jitter_ms: args.jitter_ms,
        malformed_rate: args.malformed_rate,
    })
}

/// A comma-separated list; empty or `none` is no item.
fn list<T: std::str::FromStr>(text: &str, flag: &str) -> anyhow::Result<Vec<T>> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|_| anyhow!("{flag}: cannot read {t:?}")))
        .collect()
}

/// One value for every drift, or one per drift.
fn per_drift<T: Clone>(values: Vec<T>, drifts: usize, flag: &str) -> anyhow::Result<Vec<T>> {
    match values.len() {
        1 => Ok(vec![values[0].clone(); drifts]),
        k if k == drifts => Ok(values),
        k => Err(anyhow!(
            "{flag}: {k} values for {drifts} drifts (give one value, or one per --drift-at fraction)"
        )),
    }
}
