//! What a release store holds: one release per version (`<package>-v<version>`) with one asset
//! per platform. The planner reads these; the stores (directory, GitHub) produce them.

use pep440_rs::Version;
use serde::{Deserialize, Serialize};

pub mod dir;
pub mod github;

use crate::names::{PackageName, Platform, PythonMinor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    /// Assets may still be added; not visible to users.
    Draft,
    /// Visible and immutable: its assets are never replaced.
    Published,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub name: String,
    pub size: u64,
    /// Lowercase hex; `None` when the store could not tell (an upload that never finished).
    pub sha256: Option<String>,
}

impl Asset {
    /// An asset the planner may count as built: it has bytes and a digest.
    pub fn is_complete(&self) -> bool {
        self.size > 0 && self.sha256.as_ref().is_some_and(|d| is_sha256_hex(d))
    }
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One version's release as observed in a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: Version,
    pub state: ReleaseState,
    pub assets: Vec<Asset>,
    /// From the release's build info: what it was built with. A draft built with other settings
    /// than the current config is rebuilt; a published one never is.
    #[serde(default)]
    pub python: Option<PythonMinor>,
    #[serde(default)]
    pub config_version: Option<u32>,
}

impl Release {
    pub fn asset(&self, package: &PackageName, platform: Platform) -> Option<&Asset> {
        let name = package.asset_name(platform);
        self.assets.iter().find(|a| a.name == name)
    }

    pub fn has_complete(&self, package: &PackageName, platform: Platform) -> bool {
        self.asset(package, platform)
            .is_some_and(Asset::is_complete)
    }
}

/// What a release is created with; stored so the planner can tell a stale draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseMeta {
    pub python: PythonMinor,
    pub config_version: Option<u32>,
}

/// One built file to add to a release.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub name: &'a str,
    pub path: &'a std::path::Path,
    pub size: u64,
    pub sha256: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{tag}: no such release")]
    NoRelease { tag: String },
    #[error("{tag}/{asset}: a complete asset of a published release is never replaced")]
    Immutable { tag: String, asset: String },
    #[error(
        "{tag}/{asset}: the stored file does not match its sha256 (expected {expected}, got {actual})"
    )]
    Corrupt {
        tag: String,
        asset: String,
        expected: String,
        actual: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Auth(String),
    #[error(
        "GitHub's rate limit resets in {wait_secs} s, longer than hermit-pex waits; run again later"
    )]
    RateLimited { wait_secs: u64 },
    #[error("{0}")]
    Other(String),
}

impl From<crate::github::ApiError> for StoreError {
    fn from(e: crate::github::ApiError) -> Self {
        use crate::github::ApiError;
        match e {
            ApiError::Auth(m) => StoreError::Auth(m),
            ApiError::RateLimited { wait_secs } => StoreError::RateLimited { wait_secs },
            ApiError::Other(m) => StoreError::Other(m),
        }
    }
}

/// Where releases live: a directory here (`dir`), GitHub releases later. One `releases` call
/// observes a package; the other calls are idempotent so an interrupted run can be re-run.
pub trait ReleaseStore: Send + Sync {
    /// Every release of `package`, drafts included.
    fn releases(
        &self,
        package: &PackageName,
    ) -> impl Future<Output = Result<Vec<Release>, StoreError>> + Send;

    /// Creates the draft release of a version; an existing one is kept.
    fn create(
        &self,
        package: &PackageName,
        version: &Version,
        meta: &ReleaseMeta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds an asset. An incomplete asset of that name is replaced; a complete one of a
    /// published release never is.
    fn upload(
        &self,
        package: &PackageName,
        version: &Version,
        upload: Upload<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records what was built (merged with what other platforms recorded).
    fn put_build_info(
        &self,
        info: &crate::build::BuildInfo,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes a draft public once every platform's asset is there.
    fn publish(
        &self,
        package: &PackageName,
        version: &Version,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A local file with the asset's bytes: the store's own file, or a download into `into`.
    fn fetch(
        &self,
        package: &PackageName,
        version: &Version,
        asset: &str,
        into: &std::path::Path,
    ) -> impl Future<Output = Result<std::path::PathBuf, StoreError>> + Send;

    /// The download URL of `package`'s assets with Hermit's `${version}`, `${os}` and `${arch}`.
    fn source_template(&self, package: &PackageName) -> String;
}
