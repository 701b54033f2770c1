//! The store a command's settings choose: a directory, or a GitHub repository's releases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dir::DirStore;
use super::github::{GitHubConfig, GitHubStats, GitHubStore, Token};
use super::{BuildInfo, Release, ReleaseId, ReleaseStore, StoreError, Upload};
use crate::names::PackageName;

/// Where releases go, as plain settings (the command line and the controller fill them in).
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Releases go to `<dist>/releases/<tag>/` unless `repository` is set.
    pub dist: PathBuf,
    /// URL `<dist>/releases` is served from, for manifests (default `file://`).
    pub base_url: Option<String>,
    /// GitHub `OWNER/REPO` (token in `GITHUB_TOKEN`).
    pub repository: Option<String>,
    /// GitHub's REST API root and where it serves downloads.
    pub api_url: String,
    pub html_url: String,
    pub prerelease: bool,
    /// Gap between content-creating GitHub requests.
    pub write_interval: Duration,
    /// Keeps GitHub's list pages with their ETags.
    pub cache_dir: Option<PathBuf>,
    /// List again when the view is older than this (a controller sees its Jobs' uploads).
    pub max_view_age: Option<Duration>,
}

pub enum AnyStore {
    Dir(DirStore),
    GitHub(Box<GitHubStore>),
}

impl AnyStore {
    /// Opens the store; a GitHub store without `GITHUB_TOKEN` fails here, before any work.
    pub fn open(s: &StoreSettings) -> Result<Self, StoreError> {
        let Some(repository) = &s.repository else {
            let root = s.dist.join("releases");
            let store =
                DirStore::new(&root, s.base_url.clone()).map_err(|source| StoreError::Io {
                    context: format!("cannot use {} for releases", s.dist.display()),
                    source,
                })?;
            return Ok(Self::Dir(store));
        };
        let token = Token::from_env()?;
        let (owner, repo) = split_repository(repository)
            .ok_or_else(|| StoreError::Other(format!("{repository:?}: write it as OWNER/REPO")))?;
        let mut config = GitHubConfig::new(owner, repo);
        config.api_url = s.api_url.clone();
        config.html_url = s.html_url.clone();
        config.prerelease = s.prerelease;
        config.cache_dir = s.cache_dir.clone();
        config.write_interval = s.write_interval;
        config.max_view_age = s.max_view_age;
        Ok(Self::GitHub(Box::new(GitHubStore::new(config, token)?)))
    }

    /// The store, to read what is released and change nothing: a release directory that does
    /// not exist yet holds no releases (`None`), and is not made.
    pub fn open_existing(s: &StoreSettings) -> Result<Option<Self>, StoreError> {
        if s.repository.is_none() && !s.dist.join("releases").is_dir() {
            return Ok(None);
        }
        Self::open(s).map(Some)
    }

    /// The repository's web URL, for `repository = ...` in manifests.
    pub fn repository_url(&self) -> Option<String> {
        match self {
            Self::Dir(_) => None,
            Self::GitHub(g) => Some(g.web_url()),
        }
    }

    /// What GitHub requests cost, for the run's last line.
    pub fn github_stats(&self) -> Option<GitHubStats> {
        match self {
            Self::Dir(_) => None,
            Self::GitHub(g) => Some(g.stats()),
        }
    }

    /// After a run that changed the repository, its list is cached with the new ETags.
    pub async fn finish(&self) {
        if let Self::GitHub(g) = self
            && let Err(e) = g.refresh_cache().await
        {
            tracing::warn!(error = %e, "cannot refresh the release list cache");
        }
    }
}

/// `OWNER/REPO` as its two parts.
pub fn split_repository(repository: &str) -> Option<(&str, &str)> {
    repository
        .split_once('/')
        .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Dir($s) => $call.await,
            AnyStore::GitHub($s) => $call.await,
        }
    };
}

impl ReleaseStore for AnyStore {
    async fn releases(&self, package: &PackageName) -> Result<Vec<Release>, StoreError> {
        delegate!(self, s => s.releases(package))
    }
    async fn refresh(&self) {
        delegate!(self, s => s.refresh())
    }
    async fn release(&self, package: &PackageName, id: &ReleaseId) -> Result<Release, StoreError> {
        delegate!(self, s => s.release(package, id))
    }
    async fn create(&self, info: &BuildInfo) -> Result<Release, StoreError> {
        delegate!(self, s => s.create(info))
    }
    async fn delete_draft(&self, release: &Release) -> Result<(), StoreError> {
        delegate!(self, s => s.delete_draft(release))
    }
    async fn upload(&self, release: &Release, upload: Upload<'_>) -> Result<(), StoreError> {
        delegate!(self, s => s.upload(release, upload))
    }
    async fn delete_asset(&self, release: &Release, asset: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.delete_asset(release, asset))
    }
    async fn record(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        delegate!(self, s => s.record(release, info))
    }
    async fn publish(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        delegate!(self, s => s.publish(release, info))
    }
    async fn fetch(
        &self,
        release: &Release,
        asset: &str,
        into: &Path,
    ) -> Result<PathBuf, StoreError> {
        delegate!(self, s => s.fetch(release, asset, into))
    }
    fn source_template(&self, package: &PackageName) -> String {
        match self {
            AnyStore::Dir(s) => s.source_template(package),
            AnyStore::GitHub(s) => s.source_template(package),
        }
    }
}
