//! The atomic publish protocol of SPEC §7.
//!
//! 1. The winning trial's staging folder is complete; its files are hashed
//!    into the manifest, which is written last, and the whole folder is
//!    fsynced.
//! 2. Under the short `.lock`, the folder is renamed to its version name with
//!    `RENAME_NOREPLACE` (never over an existing folder), and the model
//!    folder is fsynced.
//! 3. `LATEST` is replaced by rename, and the `published` event appended.
//!
//! A kill before step 2's rename leaves no new version (only staging debris);
//! a kill after it leaves a complete version and at worst a stale `LATEST`,
//! which the next writer rebuilds from the folders. Each step calls a hook
//! first, so tests can stop or kill the process exactly there.

use std::fs::File;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use semver::Version;

use super::{Event, Manifest, ModelDir, RegistryError, ShortLock, manifest};
use crate::durable;

/// A point in the publish protocol, for [`PublishHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishStep {
    /// The trial's files are in staging; no manifest yet.
    Staged,
    /// The manifest is written and everything is fsynced.
    ManifestWritten,
    /// The short lock is held; the rename is next.
    Locked,
    /// The version folder is in place; `LATEST` is not updated yet.
    Renamed,
    /// `LATEST` is updated; the event is next.
    LatestWritten,
}

impl PublishStep {
    pub const ALL: [PublishStep; 5] = [
        PublishStep::Staged,
        PublishStep::ManifestWritten,
        PublishStep::Locked,
        PublishStep::Renamed,
        PublishStep::LatestWritten,
    ];
}

/// Called before each step; an error stops publication right there, as a
/// crash would (nothing is undone). For tests and crash drills only.
pub type PublishHook = Box<dyn FnMut(PublishStep) -> io::Result<()> + Send>;

impl ModelDir {
    /// Publishes the staging folder `staging` as `version`. `manifest` is
    /// complete except for `files` and `tree_sha256`, which are computed here.
    pub fn publish(
        &self,
        staging: &Path,
        version: &Version,
        mut manifest: Manifest,
        event: Event,
        at: DateTime<Utc>,
        hook: &mut dyn FnMut(PublishStep) -> io::Result<()>,
    ) -> Result<Manifest, RegistryError> {
        let stopped = |step: PublishStep| {
            move |e: io::Error| {
                RegistryError::Invalid(format!("publication stopped before step {step:?}: {e}"))
            }
        };
        hook(PublishStep::Staged).map_err(stopped(PublishStep::Staged))?;
        manifest.files =
            manifest::hash_tree(staging).map_err(RegistryError::io("cannot hash", staging))?;
        manifest.tree_sha256 = manifest::tree_sha256(&manifest.files);
        manifest
            .write(staging)
            .map_err(RegistryError::io("cannot write manifest into", staging))?;
        durable::sync_tree(staging).map_err(RegistryError::io("cannot fsync", staging))?;
        hook(PublishStep::ManifestWritten).map_err(stopped(PublishStep::ManifestWritten))?;

        let _lock = ShortLock::acquire(&self.lock_path())?;
        hook(PublishStep::Locked).map_err(stopped(PublishStep::Locked))?;
        let target = self.version_dir(version);
        rename_no_replace(staging, &target).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists
                || e.raw_os_error() == Some(nix::libc::ENOTEMPTY)
            {
                RegistryError::Invalid(format!(
                    "{} {version} already exists; not replacing it",
                    self.id
                ))
            } else {
                RegistryError::io("cannot rename into place", &target)(e)
            }
        })?;
        durable::sync_dir(&self.dir).map_err(RegistryError::io("cannot fsync", &self.dir))?;
        if let Some(parent) = staging.parent() {
            durable::sync_dir(parent).map_err(RegistryError::io("cannot fsync", parent))?;
        }
        hook(PublishStep::Renamed).map_err(stopped(PublishStep::Renamed))?;

        self.sync_latest_locked()?;
        hook(PublishStep::LatestWritten).map_err(stopped(PublishStep::LatestWritten))?;
        self.append_event(at, event)?;
        Ok(manifest)
    }
}

/// Renames `from` to `to`, failing if `to` exists. Uses `RENAME_NOREPLACE`,
/// falling back to check-then-rename (safe under the short lock) on file
/// systems without it.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{RenameFlags, renameat2};

    let (Some(from_dir), Some(from_name), Some(to_dir), Some(to_name)) =
        (from.parent(), from.file_name(), to.parent(), to.file_name())
    else {
        return Err(io::Error::other("rename needs two paths with folders"));
    };
    let from_fd = File::open(from_dir)?;
    let to_fd = File::open(to_dir)?;
    match renameat2(
        &from_fd,
        from_name,
        &to_fd,
        to_name,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            if to.exists() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(from, to)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let err = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(a.exists());
        rename_no_replace(&a, &dir.path().join("c")).unwrap();
        assert!(dir.path().join("c").exists() && !a.exists());
    }
}
