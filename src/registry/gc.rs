//! `registry gc`: remove old versions through `.trash`, and clear debris.
//!
//! A version is kept when it is among the `keep` newest, is the newest
//! (what `LATEST` names), or has an alias. Removal renames the folder into
//! `.trash` under the short lock (so readers see it present or gone, never
//! half-deleted), records a `removed` event, then deletes it. Staging debris
//! is cleared only when no retrain holds `.train.lock`, and so is `.failed/`,
//! which keeps only the `keep` newest failed trials too.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use semver::Version;
use serde::Serialize;

use super::{Event, ModelDir, RegistryError, ShortLock};
use crate::durable;

/// How long an orphaned training group gets between SIGTERM and SIGKILL
/// when gc finds one (a retrain uses its `shutdown_grace`).
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What gc did (or, with `dry_run`, would do) to one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GcReport {
    pub model_id: String,
    pub removed: Vec<String>,
    pub kept: Vec<String>,
    pub debris: Vec<PathBuf>,
    /// Failed trials removed from `.failed/` (all but the `keep` newest).
    pub failed: Vec<String>,
    /// Why debris was left alone, if it was.
    pub note: Option<String>,
}

impl ModelDir {
    /// The failed trials in `.failed/`, newest first (by modification time,
    /// then name: names start with the run's UTC time).
    pub fn failed_trials(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.failed_dir()) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, String)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, name))
            })
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, name)| name).collect()
    }

    /// The failed trials beyond the `keep` newest.
    fn failed_beyond(&self, keep: usize) -> Vec<String> {
        self.failed_trials().into_iter().skip(keep).collect()
    }

    fn remove_failed(&self, names: &[String]) -> Result<(), RegistryError> {
        for name in names {
            let path = self.failed_dir().join(name);
            durable::remove_any(&path).map_err(RegistryError::io("cannot remove", &path))?;
        }
        Ok(())
    }

    /// Keeps the `keep` newest failed trials in `.failed/` and removes the
    /// rest; returns what it removed. The caller holds `.train.lock`.
    pub fn prune_failed(&self, keep: usize) -> Result<Vec<String>, RegistryError> {
        let old = self.failed_beyond(keep);
        self.remove_failed(&old)?;
        Ok(old)
    }

    /// Keeps the `keep` newest versions plus the newest and aliased ones.
    pub fn gc(
        &self,
        keep: usize,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<GcReport, RegistryError> {
        let versions = self.versions()?;
        let aliased: BTreeSet<Version> = self
            .aliases()?
            .values()
            .filter_map(|v| super::version::parse_folder(v))
            .collect();
        let newest = versions.last().cloned();
        let cut = versions.len().saturating_sub(keep);
        let mut report = GcReport {
            model_id: self.id().to_string(),
            ..GcReport::default()
        };
        let mut remove = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            if i >= cut || Some(v) == newest.as_ref() || aliased.contains(v) {
                report.kept.push(v.to_string());
            } else {
                remove.push(v.clone());
            }
        }
        let train_lock = if dry_run {
            None
        } else {
            self.try_train_lock("gc").ok()
        };
        let busy = !dry_run && train_lock.is_none();
        report.debris = self.debris();
        if busy {
            report.debris.retain(|p| !p.starts_with(self.staging_dir()));
            report.note =
                Some("a retrain holds .train.lock; its staging folders were left alone".into());
        }
        report.removed = remove.iter().map(ToString::to_string).collect();
        if !busy {
            report.failed = self.failed_beyond(keep);
        }
        if dry_run {
            return Ok(report);
        }
        for v in &remove {
            let trash = self.trash_dir();
            std::fs::create_dir_all(&trash).map_err(RegistryError::io("cannot create", &trash))?;
            let dest = trash.join(format!("{v}-{}", std::process::id()));
            {
                let _lock = ShortLock::acquire(&self.lock_path())?;
                let from = self.version_dir(v);
                std::fs::rename(&from, &dest)
                    .map_err(RegistryError::io("cannot move to .trash", &from))?;
                durable::sync_dir(self.dir())
                    .map_err(RegistryError::io("cannot fsync", self.dir()))?;
                self.append_event(
                    now,
                    Event::Removed {
                        version: v.to_string(),
                    },
                )?;
            }
            durable::remove_any(&dest).map_err(RegistryError::io("cannot remove", &dest))?;
        }
        if train_lock.is_some() {
            self.stop_orphans(ORPHAN_GRACE);
            self.remove_failed(&report.failed)?;
        }
        {
            let _lock = ShortLock::acquire(&self.lock_path())?;
            for path in &report.debris {
                durable::remove_any(path).map_err(RegistryError::io("cannot remove", path))?;
            }
            self.sync_latest_locked()?;
        }
        drop(train_lock);
        Ok(report)
    }
}
