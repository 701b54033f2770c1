//! What a release records about how its version was built: the build info (in a GitHub
//! release's body, or `build-info.json` beside a directory release) and one small record per
//! platform, uploaded as an asset of its own beside the tarball.
//!
//! Each record has one writer: the lock step writes the build info of a draft (nothing else
//! runs for that version meanwhile), each platform's build uploads only its own tarball and
//! record, and whoever publishes merges the records into the build info. No two writers ever
//! race on the release body.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pep440_rs::Version;
use serde::{Deserialize, Serialize};

pub use crate::lock::record::{ChosenFile, LockFormat, PlatformLock};
use crate::names::{BinaryName, PackageName, Platform, PythonMinor};

/// What the config asks of one version. A draft made for other inputs is thrown away and built
/// again; a published release is never touched, whatever the config says now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInputs {
    pub python: PythonMinor,
    #[serde(default)]
    pub config_version: Option<u32>,
    /// `<package>==<version>` and the config's extra packages.
    pub requirements: Vec<String>,
    /// The configured binaries; empty: every console script of the version.
    #[serde(default)]
    pub binaries: Vec<BinaryName>,
    /// The configured test command; empty: `<first binary> --help`.
    #[serde(default)]
    pub test: String,
    /// Built from a Git repository: which, where in it, and the tag and commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRecord>,
    /// The configured flavour and system packages (`build`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::spec::BuildSpec>,
    /// The distribution packages made of each Linux platform (`packages`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<crate::spec::PackageFormat>,
}

/// The Git origin of a version built from a repository's tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub git: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subdirectory: String,
    pub tag: String,
    pub commit: String,
}

/// The project's own wheel, built from its Git tag and uploaded beside the lock: the lock
/// names it through a path mapping, and every platform's build installs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelRecord {
    pub asset: String,
    pub sha256: String,
    pub size: u64,
}

/// An asset made from a version's lock or a platform's build (the SBOM, a .deb or .rpm),
/// recorded with its digest when it is uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRecord {
    pub asset: String,
    pub sha256: String,
    pub size: u64,
}

/// The resolved requirements of a version, as recorded in its release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// sha256 and size of the lock asset: pex's lock file (`<package>.lock.json`), or with
    /// `format` pylock the PEP 751 file (`pylock.<package>.toml`).
    pub sha256: String,
    pub size: u64,
    /// Pinned `name==version` of every locked distribution.
    pub pins: Vec<String>,
    /// One PEX serves every platform. From a pex lock: every artifact it lists is a `none-any`
    /// wheel; from a pylock: every platform chose the same files, each a `none-any` wheel.
    pub pure: bool,
    /// The launchers each tarball holds: the configured binaries, checked against the
    /// package's console scripts, or all of them.
    pub binaries: Vec<BinaryName>,
    /// The command that tests a build: the config's, or `<first binary> --help`.
    pub test: String,
    /// A Git source's wheel of the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wheel: Option<WheelRecord>,
    /// The lock file's format; none: pex's lock (releases made before the pylock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LockFormat>,
    /// (pylock) Per platform, the files chosen from the lock (name and sha256), or why the
    /// platform cannot exist.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub platforms: BTreeMap<Platform, PlatformLock>,
    /// (pylock) The locked distribution each binary's console script comes from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binaries_from: BTreeMap<BinaryName, PackageName>,
    /// (pylock) The version's CycloneDX SBOM (`<package>.cdx.json`), made from the lock and
    /// uploaded with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<AssetRecord>,
}

impl LockRecord {
    /// The release asset holding the lock file: uv's pylock (`pylock.<package>.toml`), or in
    /// releases made before it, pex's lock (`<package>.lock.json`).
    pub fn asset(&self, package: &PackageName) -> String {
        match self.format {
            Some(LockFormat::Pylock) => format!("pylock.{package}.toml"),
            None => lock_asset(package),
        }
    }
}

/// JSON in every release: what was built and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub package: PackageName,
    pub version: Version,
    pub python: PythonMinor,
    #[serde(default)]
    pub config_version: Option<u32>,
    pub requirements: Vec<String>,
    /// What the release was made for; `None` in releases made by an older hermit-pex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<VersionInputs>,
    /// Set once the version is locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<LockRecord>,
    pub pex_version: String,
    pub pip_version: String,
    pub pex_options: Vec<String>,
    /// Every platform's build; complete once the release is published.
    #[serde(default)]
    pub platforms: BTreeMap<Platform, PlatformBuild>,
    /// Platforms that cannot exist for this version (no wheel of a dependency for them), and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub missing: BTreeMap<Platform, String>,
    /// Seconds since the epoch.
    pub built_at: u64,
}

impl BuildInfo {
    /// The build info of a new draft: what it is made for, nothing built yet.
    pub fn new(package: &PackageName, version: &Version, inputs: VersionInputs) -> Self {
        Self {
            package: package.clone(),
            version: version.clone(),
            python: inputs.python,
            config_version: inputs.config_version,
            requirements: inputs.requirements.clone(),
            inputs: Some(inputs),
            locked: None,
            pex_version: crate::tools::PEX_VERSION.into(),
            pip_version: crate::tools::PIP_VERSION.into(),
            pex_options: crate::tools::PEX_OPTIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            platforms: BTreeMap::new(),
            missing: BTreeMap::new(),
            built_at: crate::tools::now(),
        }
    }

    /// What a published release must say: the lock, the options, and for each of `platforms`
    /// its build (with a digest) or why it cannot exist. `None` when complete.
    pub fn incomplete(&self, platforms: &[Platform]) -> Option<String> {
        if self.locked.is_none() {
            return Some("the build info has no lock".into());
        }
        if self.pex_options.is_empty() {
            return Some("the build info has no PEX options".into());
        }
        let absent: Vec<String> = platforms
            .iter()
            .filter(|p| {
                !self
                    .platforms
                    .get(p)
                    .is_some_and(|b| crate::release::is_sha256_hex(&b.sha256))
                    && !self.missing.contains_key(p)
            })
            .map(ToString::to_string)
            .collect();
        (!absent.is_empty()).then(|| format!("the build info lacks {}", absent.join(", ")))
    }
}

/// How one platform's PEX was made, for the build info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A local CPython of the version's python.
    Interpreter,
    /// A generated complete-platform file (glibc / macOS floors in `complete_platform`).
    CompletePlatform,
    /// Pure Python: the PEX built for the first platform, reused.
    Universal,
}

/// The package's test, run through a launcher of the built tarball before it was uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum TestOutcome {
    /// The command exited 0.
    Passed { command: String },
    /// It could not run where this platform was built (a cross build, no interpreter), and why.
    NotTried { why: String },
}

/// One built platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformBuild {
    pub asset: String,
    pub size: u64,
    pub sha256: String,
    pub target: Target,
    /// `None` in releases made by an older hermit-pex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestOutcome>,
    /// sha256 of the lock file it was built from: every platform of a version carries the
    /// version's one lock (a platform added later, a relock pinning the same distributions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// The `.deb`/`.rpm` made of it (a Linux platform whose config asks for them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<OsPackageRecord>,
    #[serde(skip)]
    pub tarball: PathBuf,
}

/// A `.deb` or `.rpm` of a platform's build, uploaded before the platform's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsPackageRecord {
    pub format: crate::spec::PackageFormat,
    pub asset: String,
    pub sha256: String,
    pub size: u64,
    /// Its dependencies besides the python: the runtime packages of its flavour and config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
}

/// A platform's record: the asset `<package>-<os>-<arch>.build.json` with its build (uploaded
/// after the tarball, so a record names a tarball that is there), or
/// `<package>-<os>-<arch>.missing.json` saying why it cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformRecord {
    Built(PlatformBuild),
    /// No rebuild helps: a dependency has no wheel for this platform on the index.
    Missing {
        reason: String,
    },
}

/// The asset holding pex's lock file.
pub fn lock_asset(package: &PackageName) -> String {
    format!("{package}.lock.json")
}

/// The asset holding one platform's record.
pub fn record_asset(package: &PackageName, platform: Platform) -> String {
    format!("{package}-{platform}.build.json")
}

/// The asset saying one platform cannot exist for this version (a `PlatformRecord::Missing`).
pub fn missing_asset(package: &PackageName, platform: Platform) -> String {
    format!("{package}-{platform}.missing.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A published release's lock record (pex's lock) reads as before; a pylock's adds its
    /// format, per-platform files or reasons, and the distribution of each binary.
    #[test]
    fn lock_records_old_and_new() {
        let old = r#"{"sha256":"aa","size":1,"pins":["a==1"],"pure":true,"binaries":["a"],"test":"a --help"}"#;
        let r: LockRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.format, None);
        assert!(r.platforms.is_empty() && r.binaries_from.is_empty());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            old,
            "nothing new is written"
        );

        let linux: Platform = "linux-amd64".parse().unwrap();
        let darwin: Platform = "darwin-amd64".parse().unwrap();
        let r = LockRecord {
            format: Some(LockFormat::Pylock),
            platforms: BTreeMap::from([
                (
                    linux,
                    PlatformLock::Files(vec![ChosenFile {
                        name: "a-1-py3-none-any.whl".into(),
                        sha256: "bb".into(),
                    }]),
                ),
                (darwin, PlatformLock::Missing("no wheel of c 1".into())),
            ]),
            binaries_from: BTreeMap::from([(
                BinaryName::new("a").unwrap(),
                PackageName::new("a-core").unwrap(),
            )]),
            ..serde_json::from_str(old).unwrap()
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.ends_with(
                r#""format":"pylock","platforms":{"linux-amd64":{"files":[{"name":"a-1-py3-none-any.whl","sha256":"bb"}]},"darwin-amd64":{"missing":"no wheel of c 1"}},"binaries_from":{"a":"a-core"}}"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<LockRecord>(&json).unwrap(), r);
    }
}
