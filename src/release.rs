//! What a release store holds: one release per version (`<package>-v<version>`) with one asset
//! per platform. The planner reads these; the stores (directory, GitHub) produce them.

use pep440_rs::Version;
use serde::{Deserialize, Serialize};

mod any;
pub mod dir;
pub mod github;
pub mod info;

pub use any::{AnyStore, StoreSettings, split_repository};
pub use info::{
    BuildInfo, LockRecord, PlatformBuild, PlatformRecord, Target, TestOutcome, VersionInputs,
};

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
    /// Lowercase hex; `None` when the store could not tell (an upload that never finished, or
    /// a GitHub without digests).
    pub sha256: Option<String>,
    /// The whole file is there (GitHub: state `uploaded`; a directory: its digest recorded).
    pub uploaded: bool,
}

impl Asset {
    /// An asset the planner may count as built: it has bytes and a digest.
    pub fn is_complete(&self) -> bool {
        self.uploaded && self.size > 0 && self.sha256.as_ref().is_some_and(|d| is_sha256_hex(d))
    }

    /// The whole file is there, whether or not the store knows its digest.
    pub fn is_present(&self) -> bool {
        self.uploaded && self.size > 0
    }
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A release as the store names it: GitHub's numeric id, or the directory's tag. Build Jobs
/// are handed the id of the one draft they upload to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReleaseId(pub String);

impl std::fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One release as observed in a store. GitHub may hold several drafts for one tag (it does
/// not de-duplicate them); the planner keeps the oldest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: ReleaseId,
    pub tag: String,
    pub version: Version,
    pub state: ReleaseState,
    /// Creation order among releases of one tag (GitHub's ids grow with time).
    pub order: u64,
    pub assets: Vec<Asset>,
    /// What the release records about its build; `None` when it has none that can be read.
    #[serde(default)]
    pub info: Option<BuildInfo>,
}

impl Release {
    pub fn asset_named(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.name == name)
    }

    pub fn asset(&self, package: &PackageName, platform: Platform) -> Option<&Asset> {
        self.asset_named(&package.asset_name(platform))
    }

    /// The platform counts as built: its tarball and its record are both there (the record
    /// goes up second, so a run killed in between builds the platform again).
    pub fn has_built(&self, package: &PackageName, platform: Platform) -> bool {
        let present = |name: &str| self.asset_named(name).is_some_and(Asset::is_present);
        present(&package.asset_name(platform)) && present(&info::record_asset(package, platform))
    }

    /// The platform is recorded as impossible (no wheel of a dependency for it).
    pub fn has_missing(&self, package: &PackageName, platform: Platform) -> bool {
        self.asset_named(&info::missing_asset(package, platform))
            .is_some_and(Asset::is_present)
    }

    pub fn has_complete(&self, package: &PackageName, platform: Platform) -> bool {
        self.asset(package, platform)
            .is_some_and(Asset::is_complete)
    }

    /// The lock as recorded, when its asset is there too (with that digest, when the store
    /// knows digests).
    pub fn lock(&self, package: &PackageName) -> Option<&LockRecord> {
        let locked = self.info.as_ref()?.locked.as_ref()?;
        let asset = self.asset_named(&locked.asset(package))?;
        let same = asset.sha256.as_deref().is_none_or(|d| d == locked.sha256);
        (asset.is_present() && asset.size == locked.size && same).then_some(locked)
    }

    pub fn python(&self) -> Option<PythonMinor> {
        self.info.as_ref().map(|i| i.python)
    }
}

/// One built file to add to a release.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub name: &'a str,
    pub path: &'a std::path::Path,
    pub size: u64,
    pub sha256: &'a str,
}

/// A store shared by several owners (a controller's reconciles) is still that store.
impl<S: ReleaseStore> ReleaseStore for std::sync::Arc<S> {
    async fn releases(&self, package: &PackageName) -> Result<Vec<Release>, StoreError> {
        (**self).releases(package).await
    }
    async fn refresh(&self) {
        (**self).refresh().await
    }
    async fn release(&self, package: &PackageName, id: &ReleaseId) -> Result<Release, StoreError> {
        (**self).release(package, id).await
    }
    async fn create(&self, info: &BuildInfo) -> Result<Release, StoreError> {
        (**self).create(info).await
    }
    async fn delete_draft(&self, release: &Release) -> Result<(), StoreError> {
        (**self).delete_draft(release).await
    }
    async fn upload(&self, release: &Release, upload: Upload<'_>) -> Result<(), StoreError> {
        (**self).upload(release, upload).await
    }
    async fn delete_asset(&self, release: &Release, asset: &str) -> Result<(), StoreError> {
        (**self).delete_asset(release, asset).await
    }
    async fn record(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        (**self).record(release, info).await
    }
    async fn publish(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        (**self).publish(release, info).await
    }
    async fn fetch(
        &self,
        release: &Release,
        asset: &str,
        into: &std::path::Path,
    ) -> Result<std::path::PathBuf, StoreError> {
        (**self).fetch(release, asset, into).await
    }
    fn source_template(&self, package: &PackageName) -> String {
        (**self).source_template(package)
    }
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

/// Where releases live: a directory (`dir`) or GitHub (`github`). `releases` observes a
/// package; every write names the release it writes to, so a version has one release however
/// many processes build it.
pub trait ReleaseStore: Send + Sync {
    /// Every release of `package`, drafts (duplicates too) included.
    fn releases(
        &self,
        package: &PackageName,
    ) -> impl Future<Output = Result<Vec<Release>, StoreError>> + Send;

    /// Forgets what was listed: the next `releases` asks again (others uploaded meanwhile).
    fn refresh(&self) -> impl Future<Output = ()> + Send;

    /// One release as the store has it now.
    fn release(
        &self,
        package: &PackageName,
        id: &ReleaseId,
    ) -> impl Future<Output = Result<Release, StoreError>> + Send;

    /// Creates a draft release of `info`'s version, recording `info`.
    fn create(&self, info: &BuildInfo) -> impl Future<Output = Result<Release, StoreError>> + Send;

    /// Deletes a draft (never a published release).
    fn delete_draft(
        &self,
        release: &Release,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds an asset. An incomplete asset of that name is replaced; a complete one of a
    /// published release never is.
    fn upload(
        &self,
        release: &Release,
        upload: Upload<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes the build info of a draft.
    fn record(
        &self,
        release: &Release,
        info: &BuildInfo,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes one asset of a draft (a platform whose tarball and record disagree).
    fn delete_asset(
        &self,
        release: &Release,
        asset: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes a draft public with its complete build info (one write).
    fn publish(
        &self,
        release: &Release,
        info: &BuildInfo,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A local file with the asset's bytes: the store's own file, or a download into `into`.
    fn fetch(
        &self,
        release: &Release,
        asset: &str,
        into: &std::path::Path,
    ) -> impl Future<Output = Result<std::path::PathBuf, StoreError>> + Send;

    /// The download URL of `package`'s assets with Hermit's `${version}`, `${os}` and `${arch}`.
    fn source_template(&self, package: &PackageName) -> String;
}
