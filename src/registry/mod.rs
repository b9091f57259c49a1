//! The file-system model registry of SPEC §7: one folder per model, one
//! semantic-version folder per release, and the files that point into them.
//!
//! ```text
//! <root>/<model>/<MAJOR.MINOR.PATCH>/   published versions (manifest.json written last)
//! <root>/<model>/LATEST                 the newest version, one line; rebuilt when lost or stale
//! <root>/<model>/aliases.json           promote's aliases
//! <root>/<model>/events.jsonl           audit log and cooldown memory
//! <root>/<model>/.staging/ .failed/ .trash/ .history/trials.jsonl .lock .train.lock
//! ```
//!
//! The truth is the set of version folders: a folder named `MAJOR.MINOR.PATCH`
//! only ever appears by an atomic rename of a complete staging folder, so
//! `LATEST` is a convenience for consumers that is rewritten from the folders
//! whenever a writer finds it missing or stale. Writers that change what
//! readers see (publish, promote, gc, LATEST repair) do so under the short
//! `.lock`; a retrain holds `.train.lock` from start to end.

pub mod events;
mod gc;
pub mod lock;
pub mod manifest;
pub mod name;
pub mod orphans;
mod publish;
#[cfg(test)]
mod tests;
pub mod verify;
pub mod version;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use semver::Version;

use crate::durable;

pub use events::{Event, EventLine};
pub use gc::GcReport;
pub use lock::{Holder, LockError, LockState, ShortLock, TrainLock};
pub use manifest::Manifest;
pub use publish::{PublishHook, PublishStep};
pub use verify::{Finding, FindingKind, VerifyReport};

/// Something the registry could not do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the empty model id has no registry folder")]
    EmptyModelId,
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl RegistryError {
    pub(crate) fn io(
        what: &'static str,
        path: &Path,
    ) -> impl FnOnce(io::Error) -> RegistryError + use<> {
        let path = path.to_path_buf();
        move |source| RegistryError::Io { what, path, source }
    }
}

/// A registry root folder.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    pub fn new(root: impl Into<PathBuf>) -> Registry {
        Registry { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a model (which need not exist yet).
    pub fn model(&self, id: &str) -> Result<ModelDir, RegistryError> {
        let folder = name::encode(id).ok_or(RegistryError::EmptyModelId)?;
        Ok(ModelDir {
            id: id.to_string(),
            dir: self.root.join(folder),
        })
    }

    /// Every model folder, sorted by model id. Hidden entries, files and
    /// folders whose names are not model-id encodings are not models.
    pub fn models(&self) -> Result<Vec<ModelDir>, RegistryError> {
        let entries = fs::read_dir(&self.root)
            .map_err(RegistryError::io("cannot read registry", &self.root))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(RegistryError::io("cannot read registry", &self.root))?;
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Some(id) = entry.file_name().to_str().and_then(name::decode) {
                out.push(ModelDir {
                    id,
                    dir: entry.path(),
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// What the `LATEST` file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatestFile {
    Missing,
    Points(Version),
    /// Content that is not a version.
    Garbage(String),
}

/// One model's folder and everything in it.
#[derive(Debug, Clone)]
pub struct ModelDir {
    id: String,
    dir: PathBuf,
}

impl ModelDir {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn version_dir(&self, v: &Version) -> PathBuf {
        self.dir.join(v.to_string())
    }

    pub fn latest_path(&self) -> PathBuf {
        self.dir.join("LATEST")
    }

    pub fn aliases_path(&self) -> PathBuf {
        self.dir.join("aliases.json")
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    pub fn staging_dir(&self) -> PathBuf {
        self.dir.join(".staging")
    }

    pub fn failed_dir(&self) -> PathBuf {
        self.dir.join(".failed")
    }

    pub fn trash_dir(&self) -> PathBuf {
        self.dir.join(".trash")
    }

    pub fn history_path(&self) -> PathBuf {
        self.dir.join(".history").join("trials.jsonl")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(".lock")
    }

    pub fn train_lock_path(&self) -> PathBuf {
        self.dir.join(".train.lock")
    }

    /// Creates the model folder (and the registry root) if needed.
    pub fn create(&self) -> Result<(), RegistryError> {
        fs::create_dir_all(&self.dir).map_err(RegistryError::io("cannot create", &self.dir))
    }

    /// Published versions, lowest first: folders named `MAJOR.MINOR.PATCH`.
    /// A missing model folder has none.
    pub fn versions(&self) -> Result<Vec<Version>, RegistryError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::io("cannot read", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(RegistryError::io("cannot read", &self.dir))?;
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && let Some(v) = entry.file_name().to_str().and_then(version::parse_folder)
            {
                out.push(v);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The newest published version, from the folders (the truth).
    pub fn latest(&self) -> Result<Option<Version>, RegistryError> {
        Ok(self.versions()?.pop())
    }

    /// What the `LATEST` file says, without checking it.
    pub fn latest_file(&self) -> LatestFile {
        match fs::read_to_string(self.latest_path()) {
            Err(_) => LatestFile::Missing,
            Ok(text) => match version::parse_folder(text.trim()) {
                Some(v) => LatestFile::Points(v),
                None => LatestFile::Garbage(text.trim().to_string()),
            },
        }
    }

    /// Rewrites `LATEST` from the folders when it is missing, stale or
    /// unreadable. The caller holds the short lock. Returns whether it wrote.
    pub(crate) fn sync_latest_locked(&self) -> Result<bool, RegistryError> {
        let newest = self.latest()?;
        let current = self.latest_file();
        let wanted = match &newest {
            Some(v) => LatestFile::Points(v.clone()),
            None => LatestFile::Missing,
        };
        if current == wanted {
            return Ok(false);
        }
        let path = self.latest_path();
        match newest {
            Some(v) => durable::write_atomic(&path, format!("{v}\n").as_bytes()),
            None => durable::remove_any(&path),
        }
        .map_err(RegistryError::io("cannot write", &path))?;
        Ok(true)
    }

    /// Rebuilds `LATEST` from the folders if it is lost or stale.
    pub fn repair_latest(&self) -> Result<bool, RegistryError> {
        if !self.dir.is_dir() {
            return Ok(false);
        }
        let _lock = ShortLock::acquire(&self.lock_path())?;
        self.sync_latest_locked()
    }

    /// The aliases, name → version; none when there is no `aliases.json`.
    pub fn aliases(&self) -> Result<BTreeMap<String, String>, RegistryError> {
        let path = self.aliases_path();
        match fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(RegistryError::io("cannot read", &path)(e)),
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                RegistryError::Invalid(format!(
                    "{}: expected an object of alias → version: {e}",
                    path.display()
                ))
            }),
        }
    }

    /// Points `alias` at a published `version`; returns what it pointed at.
    pub fn promote(
        &self,
        version: &Version,
        alias: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, RegistryError> {
        if !is_alias_name(alias) {
            return Err(RegistryError::Invalid(format!(
                "alias {alias:?} must be a name of letters, digits, '.', '_' or '-' that is not a version"
            )));
        }
        let _lock = ShortLock::acquire(&self.lock_path())?;
        Manifest::read(&self.version_dir(version)).map_err(|e| {
            RegistryError::Invalid(format!("{} {version} cannot be promoted: {e}", self.id))
        })?;
        let mut aliases = self.aliases()?;
        let previous = aliases.insert(alias.to_string(), version.to_string());
        let path = self.aliases_path();
        let mut text = serde_json::to_string_pretty(&aliases).expect("aliases serialise");
        text.push('\n');
        durable::write_atomic(&path, text.as_bytes())
            .map_err(RegistryError::io("cannot write", &path))?;
        let event = Event::Promoted {
            alias: alias.to_string(),
            version: version.to_string(),
            previous: previous.clone(),
        };
        self.append_event(at, event)?;
        Ok(previous)
    }

    /// Every readable line of `events.jsonl`.
    pub fn events(&self) -> Result<Vec<EventLine>, RegistryError> {
        let path = self.events_path();
        events::read(&path).map_err(RegistryError::io("cannot read", &path))
    }

    /// Appends one event to `events.jsonl`.
    pub fn append_event(&self, at: DateTime<Utc>, event: Event) -> Result<(), RegistryError> {
        let path = self.events_path();
        let line = EventLine {
            at,
            model_id: self.id.clone(),
            event,
        };
        events::append(&path, &line).map_err(RegistryError::io("cannot append to", &path))
    }

    /// Takes `.train.lock` without waiting.
    pub fn try_train_lock(&self, run_id: &str) -> Result<TrainLock, RegistryError> {
        self.create()?;
        Ok(TrainLock::try_acquire(&self.train_lock_path(), run_id)?)
    }

    /// What a killed run or gc left behind: staging and trash entries, and
    /// temp files of atomic writes.
    pub fn debris(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in [self.staging_dir(), self.trash_dir()] {
            if let Ok(entries) = fs::read_dir(&dir) {
                out.extend(entries.flatten().map(|e| e.path()));
            }
        }
        if let Ok(entries) = fs::read_dir(&self.dir) {
            out.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_str().is_some_and(durable::is_temp_name))
                    .map(|e| e.path()),
            );
        }
        out.sort();
        out
    }

    /// Removes the debris. The caller holds the train lock, so no staging
    /// folder is in use; temp files are removed under the short lock.
    pub fn clear_debris(&self, _train: &TrainLock) -> Result<Vec<PathBuf>, RegistryError> {
        let _lock = ShortLock::acquire(&self.lock_path())?;
        let debris = self.debris();
        for path in &debris {
            durable::remove_any(path).map_err(RegistryError::io("cannot remove", path))?;
        }
        self.sync_latest_locked()?;
        Ok(debris)
    }
}

/// Whether `alias` can name an alias: a safe name that is not itself a version.
pub fn is_alias_name(alias: &str) -> bool {
    name::is_safe(alias) && version::parse_loose(alias).is_none()
}
