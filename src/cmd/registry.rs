//! `mmon registry`: look at and look after the model registry.
//!
//! `list`, `show`, `verify`, `promote`, `gc` and `unlock`, each printing a
//! table or, with `--format json`, one JSON document. `verify` exits 4 on any
//! finding; a registry that cannot be written exits 4; a model, version or
//! alias that does not exist is an input error (3).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use semver::Version;
use serde_json::{Value, json};

use crate::cli::{RegistryArgs, RegistryCommand, RegistryFormat as Format};
use crate::exit_code::{ExitCode, Failure};
use crate::registry::{
    LockState, Manifest, ModelDir, Registry, RegistryError, VerifyReport, lock, version,
};

/// Runs one registry command; `default_registry` is used without `--registry`.
/// `mmon registry` from the command line: the default folder is the
/// configuration's `[retrain] registry` (from `$MMON_CONFIG` or
/// `./mmon.toml`), else `./registry`.
pub fn run_with_config(args: &RegistryArgs) -> Result<ExitCode> {
    let default = match args.registry {
        Some(_) => PathBuf::from("registry"),
        None => crate::config::Config::load(None)
            .map_err(|e| Failure::new(ExitCode::Usage, e))?
            .retrain
            .map_or_else(|| PathBuf::from("registry"), |r| r.registry),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let code = run(args, &default, &mut out)?;
    out.flush()?;
    Ok(code)
}

pub fn run(args: &RegistryArgs, default_registry: &Path, out: &mut dyn Write) -> Result<ExitCode> {
    let root = args.registry.as_deref().unwrap_or(default_registry);
    let reg = Registry::new(root);
    let json = args.format == Format::Json;
    match &args.command {
        RegistryCommand::List => list(&reg, json, out),
        RegistryCommand::Show { target } => show(&reg, target, json, out),
        RegistryCommand::Verify { model } => verify(&reg, model.as_deref(), json, out),
        RegistryCommand::Promote {
            model,
            version,
            alias,
        } => promote(&reg, model, version, alias, json, out),
        RegistryCommand::Gc {
            keep,
            dry_run,
            model,
        } => gc(&reg, *keep, *dry_run, model.as_deref(), json, out),
        RegistryCommand::Unlock { model, force } => unlock(&reg, model, *force, json, out),
    }
}

/// Turns registry errors into the exit code they deserve: a registry that
/// cannot be read, written or locked is 4; anything else keeps its default.
fn classify(e: RegistryError) -> anyhow::Error {
    match e {
        RegistryError::Io { .. } | RegistryError::Lock(_) => {
            Failure::new(ExitCode::Training, e).into()
        }
        other => other.into(),
    }
}

fn existing_root(reg: &Registry) -> Result<()> {
    if !reg.root().is_dir() {
        bail!("registry folder {} does not exist", reg.root().display());
    }
    Ok(())
}

fn models(reg: &Registry, only: Option<&str>) -> Result<Vec<ModelDir>> {
    existing_root(reg)?;
    match only {
        Some(id) => Ok(vec![existing_model(reg, id)?]),
        None => reg.models().map_err(classify),
    }
}

fn existing_model(reg: &Registry, id: &str) -> Result<ModelDir> {
    let m = reg.model(id).map_err(classify)?;
    if !m.dir().is_dir() {
        bail!("no model {id:?} in registry {}", reg.root().display());
    }
    Ok(m)
}

fn write_json(out: &mut dyn Write, v: &Value) -> Result<ExitCode> {
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(ExitCode::Success)
}

/// Left-aligned columns, two spaces apart.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn list(reg: &Registry, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let mut items = Vec::new();
    for m in models(reg, None)? {
        let versions = m.versions().map_err(classify)?;
        let aliases = m.aliases().unwrap_or_default();
        items.push(json!({
            "model_id": m.id(),
            "folder": m.dir().file_name().map(|n| n.to_string_lossy().into_owned()),
            "versions": versions.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "latest": versions.last().map(ToString::to_string),
            "aliases": aliases,
        }));
    }
    if json {
        return write_json(out, &json!({ "registry": reg.root(), "models": items }));
    }
    if items.is_empty() {
        writeln!(out, "no models in {}", reg.root().display())?;
        return Ok(ExitCode::Success);
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            let aliases = m["aliases"]
                .as_object()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            vec![
                m["model_id"].as_str().unwrap_or("").to_string(),
                m["versions"].as_array().map_or(0, Vec::len).to_string(),
                m["latest"].as_str().unwrap_or("-").to_string(),
                if aliases.is_empty() {
                    "-".into()
                } else {
                    aliases
                },
            ]
        })
        .collect();
    table(out, &["MODEL", "VERSIONS", "LATEST", "ALIASES"], &rows)?;
    Ok(ExitCode::Success)
}

/// `MODEL`, `MODEL@VERSION` or `MODEL@ALIAS` → the model and version.
fn resolve(reg: &Registry, target: &str) -> Result<(ModelDir, Version)> {
    let (id, which) = match target.rsplit_once('@') {
        Some((id, which)) if !id.is_empty() => (id, Some(which)),
        _ => (target, None),
    };
    let m = existing_model(reg, id)?;
    let v = match which {
        None => m
            .latest()
            .map_err(classify)?
            .ok_or_else(|| anyhow!("model {id:?} has no published version"))?,
        Some(w) => match version::parse_loose(w) {
            Some(v) => v,
            None => {
                let aliases = m.aliases().map_err(classify)?;
                let named = aliases
                    .get(w)
                    .ok_or_else(|| anyhow!("{id:?} has no version or alias {w:?}"))?;
                version::parse_folder(named)
                    .ok_or_else(|| anyhow!("alias {w:?} names {named:?}, not a version"))?
            }
        },
    };
    if !m.version_dir(&v).is_dir() {
        bail!("model {id:?} has no version {v}");
    }
    Ok((m, v))
}

fn show(reg: &Registry, target: &str, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let (m, v) = resolve(reg, target)?;
    let manifest = Manifest::read(&m.version_dir(&v))
        .map_err(|e| Failure::new(ExitCode::Training, anyhow!("{} {v}: {e}", m.id())))?;
    if json {
        return write_json(out, &serde_json::to_value(&manifest)?);
    }
    let aliases: Vec<String> = m
        .aliases()
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, t)| *t == manifest.version)
        .map(|(a, _)| a)
        .collect();
    let selected = match (&manifest.selected.metric, manifest.selected.value) {
        (Some(metric), Some(value)) => format!(
            "trial {}: {metric} = {value} ({})",
            manifest.selected.trial,
            manifest.selected.goal.as_deref().unwrap_or("")
        ),
        _ => format!("trial {}", manifest.selected.trial),
    };
    let failed = manifest.trials.iter().filter(|t| t.status != "ok").count();
    let fields = [
        ("model", manifest.model_id.clone()),
        ("version", manifest.version.clone()),
        (
            "parent",
            manifest.parent.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "base version",
            manifest.base_version.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "aliases",
            if aliases.is_empty() {
                "-".into()
            } else {
                aliases.join(" ")
            },
        ),
        ("run", manifest.run_id.clone()),
        ("created", manifest.created_at.clone()),
        ("trigger", trigger_summary(&manifest.trigger)),
        ("window start", trigger_point(&manifest.trigger["start"])),
        ("detected", trigger_point(&manifest.trigger["detected"])),
        ("selected", selected),
        (
            "trials",
            format!("{} ({failed} failed)", manifest.trials.len()),
        ),
        ("params", manifest.params.to_string()),
        ("command", manifest.command.join(" ")),
        ("duration", format!("{:.1}s", manifest.duration_s)),
        ("tree sha256", manifest.tree_sha256.clone()),
    ];
    for (k, val) in fields {
        writeln!(out, "{k:<13} {val}")?;
    }
    writeln!(out)?;
    let rows: Vec<Vec<String>> = manifest
        .files
        .iter()
        .map(|f| vec![f.path.clone(), f.bytes.to_string(), f.sha256.clone()])
        .collect();
    table(out, &["FILE", "BYTES", "SHA256"], &rows)?;
    Ok(ExitCode::Success)
}

/// The drift window that started the retrain, in one line: what changed,
/// how, and which detector saw it; "-" when the manifest has none.
fn trigger_summary(t: &Value) -> String {
    let Some(metric) = t["metric"].as_str() else {
        return "-".into();
    };
    let mut s = format!("{} of {metric}", t["severity"].as_str().unwrap_or("drift"));
    if let Some(v) = t["model_version"].as_str() {
        s += &format!(" (version {v})");
    }
    if let (Some(b), Some(a)) = (t["before"].as_f64(), t["after"].as_f64()) {
        s += &format!(": {b:.4} \u{2192} {a:.4}");
        if b != 0.0 {
            s += &format!(" ({:+.1}%)", (a - b) / b.abs() * 100.0);
        }
    }
    if let Some(d) = t["detector"]["name"].as_str() {
        s += &format!(", by {d}");
    }
    s
}

/// A window point as `#index file:line timestamp`.
fn trigger_point(p: &Value) -> String {
    let Some(index) = p["index"].as_u64() else {
        return "-".into();
    };
    let mut s = format!("#{index}");
    if let (Some(file), Some(line)) = (p["file"].as_str(), p["line"].as_u64()) {
        s += &format!(" {file}:{line}");
    }
    if let Some(ts) = p["timestamp"].as_str() {
        s += &format!(" {ts}");
    }
    s
}

fn verify(reg: &Registry, only: Option<&str>, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let mut report = VerifyReport::default();
    for m in models(reg, only)? {
        m.verify(&mut report).map_err(classify)?;
    }
    let code = if report.is_clean() {
        ExitCode::Success
    } else {
        ExitCode::Training
    };
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["ok"] = json!(report.is_clean());
        write_json(out, &v)?;
        return Ok(code);
    }
    if !report.findings.is_empty() {
        let rows: Vec<Vec<String>> = report
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.model_id.clone(),
                    f.version.clone().unwrap_or_else(|| "-".into()),
                    f.kind.as_str().to_string(),
                    f.path.clone().unwrap_or_else(|| "-".into()),
                    f.detail.clone(),
                ]
            })
            .collect();
        table(
            out,
            &["MODEL", "VERSION", "FINDING", "PATH", "DETAIL"],
            &rows,
        )?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    let verdict = if report.is_clean() {
        "ok".to_string()
    } else {
        format!("{} finding(s)", report.findings.len())
    };
    writeln!(
        out,
        "verified {} model(s), {} version(s), {} file(s): {verdict}",
        report.models, report.versions, report.files
    )?;
    Ok(code)
}

fn promote(
    reg: &Registry,
    model: &str,
    version: &str,
    alias: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    if !crate::registry::is_alias_name(alias) {
        return Err(Failure::new(
            ExitCode::Usage,
            anyhow!("--alias {alias:?}: expected a name of letters, digits, '.', '_' or '-' that is not a version"),
        )
        .into());
    }
    let m = existing_model(reg, model)?;
    let v = version::parse_loose(version).ok_or_else(|| anyhow!("{version:?} is not a version"))?;
    if !m.version_dir(&v).is_dir() {
        bail!("model {model:?} has no version {v}");
    }
    let previous = m.promote(&v, alias, chrono::Utc::now()).map_err(classify)?;
    if json {
        return write_json(
            out,
            &json!({ "model_id": model, "alias": alias, "version": v.to_string(), "previous": previous }),
        );
    }
    match previous {
        Some(p) if p != v.to_string() => writeln!(out, "{model} {alias} -> {v} (was {p})")?,
        _ => writeln!(out, "{model} {alias} -> {v}")?,
    }
    Ok(ExitCode::Success)
}

fn gc(
    reg: &Registry,
    keep: usize,
    dry_run: bool,
    only: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let now = chrono::Utc::now();
    let mut reports = Vec::new();
    for m in models(reg, only)? {
        reports.push(m.gc(keep, dry_run, now).map_err(classify)?);
    }
    if json {
        return write_json(out, &json!({ "dry_run": dry_run, "models": reports }));
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for r in &reports {
        let removed = if r.removed.is_empty() {
            "nothing".to_string()
        } else {
            r.removed.join(" ")
        };
        writeln!(
            out,
            "{}: {verb} {removed}; kept {}",
            r.model_id,
            r.kept.join(" ")
        )?;
        for d in &r.debris {
            writeln!(out, "{}: {verb} debris {}", r.model_id, d.display())?;
        }
        for f in &r.failed {
            writeln!(out, "{}: {verb} failed trial .failed/{f}", r.model_id)?;
        }
        if let Some(note) = &r.note {
            writeln!(out, "{}: note: {note}", r.model_id)?;
        }
    }
    Ok(ExitCode::Success)
}

fn unlock(
    reg: &Registry,
    model: &str,
    force: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let m = existing_model(reg, model)?;
    let mut results = Vec::new();
    for path in [m.train_lock_path(), m.lock_path()] {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let state = lock::probe(&path).with_context(|| format!("checking {}", path.display()))?;
        let (status, holder) = match state {
            LockState::Absent | LockState::Free => ("not locked", None),
            LockState::Held(holder) if force => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))
                    .map_err(|e| Failure::new(ExitCode::Training, e))?;
                ("broken", holder)
            }
            LockState::Held(holder) => {
                let who = holder.map_or("another process".to_string(), |h| h.to_string());
                return Err(Failure::new(
                    ExitCode::Usage,
                    anyhow!(
                        "{} is held by {who}; pass --force to break it (the holder keeps running)",
                        path.display()
                    ),
                )
                .into());
            }
        };
        results.push(json!({ "lock": name, "status": status, "holder": holder }));
    }
    if json {
        return write_json(out, &json!({ "model_id": model, "locks": results }));
    }
    for r in &results {
        let holder = r["holder"].as_object().map(|_| {
            format!(
                " (held by pid {} on {})",
                r["holder"]["pid"],
                r["holder"]["host"].as_str().unwrap_or("?")
            )
        });
        writeln!(
            out,
            "{model}: {}: {}{}",
            r["lock"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            holder.unwrap_or_default()
        )?;
    }
    Ok(ExitCode::Success)
}
