//! Release numbers: parsing the versions found in logs and folders, and
//! computing the next one.
//!
//! Versions compare by semver precedence (`1.10.0 > 1.9.0`), never as text.
//! A published folder is named `MAJOR.MINOR.PATCH` exactly; a log's
//! `model_version` may also carry a `v` prefix or pre-release/build parts.

use semver::Version;

/// Which part of the base version a retrain bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

impl Bump {
    pub fn parse(s: &str) -> Option<Bump> {
        match s {
            "patch" => Some(Bump::Patch),
            "minor" => Some(Bump::Minor),
            "major" => Some(Bump::Major),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }

    /// `base` bumped; pre-release and build parts are dropped, so the result
    /// is always a plain release (`1.5.0-rc.1` patch-bumps to `1.5.1`).
    pub fn apply(self, base: &Version) -> Version {
        match self {
            Bump::Patch => Version::new(base.major, base.minor, base.patch + 1),
            Bump::Minor => Version::new(base.major, base.minor + 1, 0),
            Bump::Major => Version::new(base.major + 1, 0, 0),
        }
    }
}

/// A version as logs write it: `1.4.2`, `v1.4.2`, `V1.4.2`, with optional
/// pre-release and build parts. `None` when it is not semver.
pub fn parse_loose(s: &str) -> Option<Version> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    Version::parse(s).ok()
}

/// A published folder's version: `MAJOR.MINOR.PATCH` and nothing else, so
/// that one release has exactly one folder name.
pub fn parse_folder(name: &str) -> Option<Version> {
    let v = Version::parse(name).ok()?;
    (v.pre.is_empty() && v.build.is_empty() && v.to_string() == name).then_some(v)
}

/// The versions a retrain works with, fixed when it takes the train lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextVersion {
    /// What was bumped: the higher of the highest published version and the
    /// log's version; `None` when neither exists.
    pub base: Option<Version>,
    /// The version the retrain will publish.
    pub new: Version,
}

/// max(highest published, the log's version) bumped, or `1.0.0` when there
/// is neither. A log version that is not semver is ignored here.
pub fn next_version(
    published: Option<&Version>,
    log_version: Option<&str>,
    bump: Bump,
) -> NextVersion {
    let from_log = log_version.and_then(parse_loose);
    let base = match (published.cloned(), from_log) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let new = match &base {
        Some(b) => bump.apply(b),
        None => Version::new(1, 0, 0),
    };
    NextVersion { base, new }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn precedence_is_numeric_not_textual() {
        assert!(v("1.10.0") > v("1.9.0"));
        let n = next_version(Some(&v("1.10.0")), Some("1.9.0"), Bump::Patch);
        assert_eq!(n.new, v("1.10.1"));
        assert_eq!(n.base, Some(v("1.10.0")));
    }

    #[test]
    fn log_version_wins_when_higher_and_accepts_a_v_prefix() {
        let n = next_version(Some(&v("1.2.0")), Some("v1.4.2"), Bump::Patch);
        assert_eq!(n.new, v("1.4.3"));
        assert_eq!(parse_loose("V2.0.0-rc.1"), Some(v("2.0.0-rc.1")));
        assert_eq!(parse_loose("latest"), None);
    }

    #[test]
    fn bump_kinds() {
        let base = v("1.4.2");
        assert_eq!(Bump::Patch.apply(&base), v("1.4.3"));
        assert_eq!(Bump::Minor.apply(&base), v("1.5.0"));
        assert_eq!(Bump::Major.apply(&base), v("2.0.0"));
        assert_eq!(Bump::Patch.apply(&v("1.5.0-rc.1")), v("1.5.1"));
    }

    #[test]
    fn first_version_is_1_0_0() {
        assert_eq!(next_version(None, None, Bump::Major).new, v("1.0.0"));
        assert_eq!(
            next_version(None, Some("not-semver"), Bump::Patch).new,
            v("1.0.0")
        );
        assert_eq!(
            next_version(None, Some("0.3.0"), Bump::Minor).new,
            v("0.4.0")
        );
    }

    #[test]
    fn folder_names_are_plain_releases() {
        assert_eq!(parse_folder("1.2.3"), Some(v("1.2.3")));
        for bad in [
            "v1.2.3",
            "1.2",
            "1.2.3-rc.1",
            "01.2.3",
            ".staging",
            "1.2.3+b",
        ] {
            assert_eq!(parse_folder(bad), None, "{bad}");
        }
    }
}
