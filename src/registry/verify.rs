//! `registry verify`: re-hash every file and check every pointer.
//!
//! Findings (any one means exit 4): a listed file missing, changed (size or
//! hash), or an extra file not in the manifest; a version folder whose
//! manifest is missing, unreadable, of another schema, or about another
//! model or version, or whose `tree_sha256` does not match its list; a
//! `LATEST` or alias that names no published version. Notes (not failures):
//! a missing or stale `LATEST` (rebuilt by the next writer, e.g. after a kill
//! between the rename and the `LATEST` update) and the debris of killed runs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::manifest::{self, Manifest};
use super::{LatestFile, ModelDir, RegistryError};

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Missing,
    Changed,
    Extra,
    BadManifest,
    DanglingLatest,
    DanglingAlias,
    BadAliases,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Missing => "missing",
            FindingKind::Changed => "changed",
            FindingKind::Extra => "extra",
            FindingKind::BadManifest => "bad-manifest",
            FindingKind::DanglingLatest => "dangling-latest",
            FindingKind::DanglingAlias => "dangling-alias",
            FindingKind::BadAliases => "bad-aliases",
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub model_id: String,
    pub version: Option<String>,
    pub kind: FindingKind,
    pub path: Option<String>,
    pub detail: String,
}

/// Everything `verify` saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    pub models: usize,
    pub versions: usize,
    pub files: usize,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

impl ModelDir {
    /// Checks this model's versions and pointers into `report`.
    pub fn verify(&self, report: &mut VerifyReport) -> Result<(), RegistryError> {
        report.models += 1;
        let versions = self.versions()?;
        let find = |kind, version: Option<String>, path: Option<String>, detail: String| Finding {
            model_id: self.id().to_string(),
            version,
            kind,
            path,
            detail,
        };
        for v in &versions {
            report.versions += 1;
            let (files, findings) = verify_version(self, v);
            report.files += files;
            report.findings.extend(findings);
        }
        let newest = versions.last();
        match self.latest_file() {
            LatestFile::Points(p) if versions.contains(&p) => {
                if Some(&p) != newest {
                    report.notes.push(format!(
                        "{}: LATEST says {p} but {} is newer; the next write rebuilds it",
                        self.id(),
                        newest.map(ToString::to_string).unwrap_or_default()
                    ));
                }
            }
            LatestFile::Points(p) => report.findings.push(find(
                FindingKind::DanglingLatest,
                Some(p.to_string()),
                Some("LATEST".into()),
                format!("LATEST names {p}, which is not a published version"),
            )),
            LatestFile::Garbage(text) => report.findings.push(find(
                FindingKind::DanglingLatest,
                None,
                Some("LATEST".into()),
                format!("LATEST holds {text:?}, not a version"),
            )),
            LatestFile::Missing if newest.is_some() => {
                report.notes.push(format!(
                    "{}: LATEST is missing; the next write rebuilds it",
                    self.id()
                ));
            }
            LatestFile::Missing => {}
        }
        match self.aliases() {
            Ok(aliases) => {
                for (alias, target) in aliases {
                    let ok = super::version::parse_folder(&target)
                        .is_some_and(|t| versions.contains(&t));
                    if !ok {
                        report.findings.push(find(
                            FindingKind::DanglingAlias,
                            Some(target.clone()),
                            Some("aliases.json".into()),
                            format!(
                                "alias {alias:?} names {target}, which is not a published version"
                            ),
                        ));
                    }
                }
            }
            Err(e) => report.findings.push(find(
                FindingKind::BadAliases,
                None,
                Some("aliases.json".into()),
                e.to_string(),
            )),
        }
        for path in self.debris() {
            report.notes.push(format!(
                "{}: debris of an interrupted run: {}",
                self.id(),
                path.display()
            ));
        }
        Ok(())
    }
}

/// Checks one version folder: its manifest and every file. Returns the
/// number of files checked and the findings.
pub fn verify_version(model: &ModelDir, version: &semver::Version) -> (usize, Vec<Finding>) {
    let dir = model.version_dir(version);
    let mut findings = Vec::new();
    let mut find = |kind, path: Option<String>, detail: String| {
        findings.push(Finding {
            model_id: model.id().to_string(),
            version: Some(version.to_string()),
            kind,
            path,
            detail,
        })
    };
    let manifest = match Manifest::read(&dir) {
        Ok(m) => m,
        Err(e) => {
            find(
                FindingKind::BadManifest,
                Some(manifest::FILE_NAME.into()),
                e.to_string(),
            );
            return (0, findings);
        }
    };
    if manifest.version != version.to_string() || manifest.model_id != model.id() {
        find(
            FindingKind::BadManifest,
            Some(manifest::FILE_NAME.into()),
            format!(
                "manifest is about {} {}, found in the folder of {} {version}",
                manifest.model_id,
                manifest.version,
                model.id()
            ),
        );
    }
    if manifest::tree_sha256(&manifest.files) != manifest.tree_sha256 {
        find(
            FindingKind::BadManifest,
            Some(manifest::FILE_NAME.into()),
            "tree_sha256 does not match the file list".into(),
        );
    }
    let on_disk: BTreeMap<String, bool> = match manifest::walk(&dir) {
        Ok(entries) => entries.into_iter().map(|e| (e.path, e.regular)).collect(),
        Err(e) => {
            find(
                FindingKind::Missing,
                None,
                format!("cannot list the folder: {e}"),
            );
            return (0, findings);
        }
    };
    let mut checked = 0;
    for entry in &manifest.files {
        checked += 1;
        match on_disk.get(&entry.path) {
            None => find(
                FindingKind::Missing,
                Some(entry.path.clone()),
                "listed in the manifest, not on disk".into(),
            ),
            Some(false) => find(
                FindingKind::Changed,
                Some(entry.path.clone()),
                "no longer a regular file".into(),
            ),
            Some(true) => match manifest::hash_file(&dir.join(&entry.path)) {
                Ok((bytes, sha)) if bytes == entry.bytes && sha == entry.sha256 => {}
                Ok((bytes, _)) => find(
                    FindingKind::Changed,
                    Some(entry.path.clone()),
                    format!(
                        "{bytes} bytes on disk, {} in the manifest; sha256 differs",
                        entry.bytes
                    ),
                ),
                Err(e) => find(
                    FindingKind::Changed,
                    Some(entry.path.clone()),
                    format!("cannot read: {e}"),
                ),
            },
        }
    }
    let listed: std::collections::BTreeSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    for path in on_disk.keys().filter(|p| !listed.contains(p.as_str())) {
        find(
            FindingKind::Extra,
            Some(path.clone()),
            "on disk, not in the manifest".into(),
        );
    }
    (checked, findings)
}
