//! `manifest.json`: what a published version is, and the hashes that prove it.
//!
//! The manifest is written last into the staging folder, so a version folder
//! without one was never complete. `files` lists every regular file of the
//! folder except the manifest itself, sorted by path, each with its size and
//! sha256; `tree_sha256` is the sha256 of the lines `path NUL bytes NUL
//! sha256 LF` of that list in order, one hash that names the whole tree.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::durable;

/// The manifest format this code writes and reads.
pub const SCHEMA: &str = "mmon.manifest/1";
/// The manifest's file name inside a version folder.
pub const FILE_NAME: &str = "manifest.json";

/// One file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One trial of the retrain that produced a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialEntry {
    pub trial: u32,
    pub params: Value,
    /// `"ok"` or `"failed"`.
    pub status: String,
    pub value: Option<f64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_s: f64,
    pub reason: Option<String>,
}

/// Which trial was published, and by what measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selected {
    pub trial: u32,
    pub metric: Option<String>,
    pub goal: Option<String>,
    pub value: Option<f64>,
}

/// The whole manifest of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: String,
    pub model_id: String,
    pub version: String,
    /// The version that was serving and decayed, as the log wrote it.
    pub parent: Option<String>,
    /// The version that was bumped.
    pub base_version: Option<String>,
    pub run_id: String,
    pub created_at: String,
    /// The drift window that triggered the retrain.
    pub trigger: Value,
    pub params: Value,
    pub selected: Selected,
    pub metrics: Option<Value>,
    pub trials: Vec<TrialEntry>,
    pub command: Vec<String>,
    pub duration_s: f64,
    pub files: Vec<FileEntry>,
    pub tree_sha256: String,
}

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("no manifest.json")]
    Missing,
    #[error("cannot read manifest.json: {0}")]
    Io(#[from] io::Error),
    #[error("manifest.json is not a valid {SCHEMA} document: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Reads and checks the manifest of the folder `dir`.
    pub fn read(dir: &Path) -> Result<Manifest, ManifestError> {
        let text = match fs::read_to_string(dir.join(FILE_NAME)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ManifestError::Missing),
            Err(e) => return Err(e.into()),
        };
        let value: Value =
            serde_json::from_str(&text).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        match value.get("schema").and_then(Value::as_str) {
            Some(SCHEMA) => {}
            Some(other) => return Err(ManifestError::Invalid(format!("unknown schema {other:?}"))),
            None => return Err(ManifestError::Invalid("no \"schema\" field".to_string())),
        }
        serde_json::from_value(value).map_err(|e| ManifestError::Invalid(e.to_string()))
    }

    /// Writes the manifest into `dir` and fsyncs it.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serialises");
        text.push('\n');
        durable::write_synced(&dir.join(FILE_NAME), text.as_bytes())
    }
}

/// One entry found on disk under a version or staging folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskEntry {
    /// Relative path with `/` separators.
    pub path: String,
    /// A regular file (anything else, such as a symlink, is not publishable).
    pub regular: bool,
}

/// Every non-folder entry under `dir`, sorted by path, except the top-level
/// manifest. Names that are not UTF-8 are shown lossily and marked irregular.
pub fn walk(dir: &Path) -> io::Result<Vec<DiskEntry>> {
    let mut out = Vec::new();
    walk_into(dir, "", &mut out)?;
    out.retain(|e| e.path != FILE_NAME);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk_into(dir: &Path, prefix: &str, out: &mut Vec<DiskEntry>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let utf8 = name.to_str().is_some_and(|n| !n.contains('\n'));
        let rel = format!("{prefix}{}", name.to_string_lossy());
        let ty = entry.file_type()?;
        if ty.is_dir() {
            walk_into(&entry.path(), &format!("{rel}/"), out)?;
        } else {
            out.push(DiskEntry {
                path: rel,
                regular: ty.is_file() && utf8,
            });
        }
    }
    Ok(())
}

/// Hashes every file under `dir` for a manifest; fails on anything that is
/// not a regular file with a UTF-8 name, since a version must be self-contained.
pub fn hash_tree(dir: &Path) -> io::Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for entry in walk(dir)? {
        if !entry.regular {
            return Err(io::Error::other(format!(
                "{} is not a regular file with a UTF-8 name; a version holds regular files only",
                entry.path
            )));
        }
        let (bytes, sha256) = hash_file(&dir.join(&entry.path))?;
        files.push(FileEntry {
            path: entry.path,
            bytes,
            sha256,
        });
    }
    Ok(files)
}

/// Size and sha256 (lowercase hex) of one file.
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

/// The hash over a sorted file list (see the module docs for the format).
pub fn tree_sha256(files: &[FileEntry]) -> String {
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(f.path.as_bytes());
        hasher.update([0]);
        hasher.update(f.bytes.to_string().as_bytes());
        hasher.update([0]);
        hasher.update(f.sha256.as_bytes());
        hasher.update([b'\n']);
    }
    hex(&hasher.finalize())
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), b"abc").unwrap();
        let (n, h) = hash_file(&dir.path().join("a")).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tree_lists_nested_files_sorted_without_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("z.txt"), b"z").unwrap();
        fs::write(dir.path().join("sub/a.bin"), b"a").unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{}").unwrap();
        let files = hash_tree(dir.path()).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["sub/a.bin", "z.txt"]);
        let t1 = tree_sha256(&files);
        fs::write(dir.path().join("z.txt"), b"Z").unwrap();
        assert_ne!(t1, tree_sha256(&hash_tree(dir.path()).unwrap()));
    }

    #[test]
    fn symlinks_are_not_publishable() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert!(hash_tree(dir.path()).is_err());
    }
}
