//! Writes that survive a crash: temp file beside the target, fsync, rename,
//! fsync of the folder.
//!
//! Every file mmon replaces goes through [`AtomicFile`]: the report of
//! `--output`, the `--rejects` file, the checkpoint, and in the registry
//! `LATEST`, `aliases.json` and manifests. A reader sees the old content or
//! the new one, never half of either, and a run that fails before it
//! commits leaves the previous file as it was. The temp file is
//! `FILE.tmp.<pid>` in the target's folder (one filesystem, so the rename is
//! atomic); [`is_temp_name`] recognises the ones a killed run left. Appends
//! (`events.jsonl`, the trial history) are single `write` calls of one line
//! on an `O_APPEND` file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The temp file an atomic write of `target` by this process uses.
pub fn temp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    target.with_file_name(name)
}

/// Whether `name` is the temp file of an atomic write (`FILE.tmp.<pid>`),
/// or of the older registry form `.FILE.tmp-<pid>`.
pub fn is_temp_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((_, pid)) = name.rsplit_once(".tmp.") {
        return digits(pid);
    }
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| digits(pid))
}

/// A file being written beside its target, renamed over it by
/// [`AtomicFile::commit`]. Dropped without a commit, the temp file is
/// removed and the target is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temp file beside `target` (replacing one a killed run of
    /// the same pid left). Fails if the folder is missing or not writable.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let tmp = temp_path(target);
        let file = File::create(&tmp)?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            tmp,
            file: Some(file),
            committed: false,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the file was already committed"))
    }

    /// Fsyncs the content, renames it over the target and fsyncs the folder.
    pub fn commit(mut self) -> io::Result<()> {
        self.commit_with(|_| Ok(()))
    }

    /// As [`AtomicFile::commit`], calling `before_rename` with the target
    /// once the content is durable, just before the rename (the checkpoint
    /// keeps the previous version there).
    pub fn commit_with(
        &mut self,
        before_rename: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = self.file()?;
        file.flush()?;
        file.sync_all()?;
        self.file = None;
        before_rename(&self.target)?;
        fs::rename(&self.tmp, &self.target)?;
        self.committed = true;
        sync_dir(parent(&self.target))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The outcome of [`lock_owned`].
#[derive(Debug)]
pub enum Owned {
    /// This process holds the lock for as long as it keeps the file; the
    /// file says who it is.
    Taken(File),
    /// Another process holds it; what its file says about the holder.
    Held(String),
}

/// Takes the exclusive OS lock (`flock`) on `path` without waiting,
/// creating the file if needed, and records `owner` in it, so another
/// process can say who holds it. The kernel frees the lock when the holder
/// dies, so there is never a stale lock to clean up (the checkpoint's and
/// the registry's train lock are both this).
pub fn lock_owned(path: &Path, owner: &str) -> io::Result<Owned> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            // A holder that is still writing its name reads as empty.
            let _ = file.read_to_string(&mut text);
            return Ok(Owned::Held(text));
        }
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(owner.as_bytes())?;
    file.sync_data()?;
    Ok(Owned::Taken(file))
}

/// Replaces `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Writes a new file and fsyncs it (no rename: for files inside a staging
/// folder, which becomes visible only when the whole folder is renamed).
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Appends one line (a newline is added) and fsyncs it.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)?;
    f.sync_data()
}

/// Fsyncs a folder, so that entries created or renamed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsyncs every file and folder under `dir`, and `dir` itself.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        if ty.is_dir() {
            sync_tree(&entry.path())?;
        } else if ty.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Removes a file or a whole folder; a path that is already gone is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The folder `path` is in (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("LATEST");
        write_atomic(&p, b"1.0.0\n").unwrap();
        write_atomic(&p, b"1.0.1\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "1.0.1\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_uncommitted_write_leaves_the_target_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.json");
        fs::write(&p, "old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half of the new").unwrap();
        drop(f);
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name("state.json.tmp.123"));
        assert!(is_temp_name(".LATEST.tmp-77"));
        assert!(is_temp_name(
            &temp_path(Path::new("a/LATEST"))
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
        assert!(!is_temp_name("LATEST"));
        assert!(!is_temp_name("notes.tmp.txt"));
        assert!(!is_temp_name("x.tmp."));
    }

    #[test]
    fn remove_any_ignores_missing() {
        let dir = tempfile::tempdir().unwrap();
        remove_any(&dir.path().join("nope")).unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        remove_any(&dir.path().join("a")).unwrap();
        assert!(!dir.path().join("a").exists());
    }
}
