//! Releases on GitHub, through octocrab.
//!
//! The repository's releases are listed once per run (paged, with ETags kept on disk so an
//! unchanged repository costs 304s that do not count against the rate limit) and kept in
//! memory; every change this store makes updates that view, so drafts, which get-by-tag
//! cannot see, are never created twice. A release is created as a draft (repositories with
//! immutable releases refuse uploads to published ones), its assets are streamed from disk,
//! the build info sits in its body, and it is published once every platform is there.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::OctoBody;
use octocrab::models::repos::{Asset as GhAsset, Release as GhRelease};
use pep440_rs::Version;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{Asset, BuildInfo, Release, ReleaseId, ReleaseState, ReleaseStore, StoreError, Upload};
use crate::github::{Api, Response, Retry, describe, percent_encode};
use crate::names::PackageName;
use wire::{build_info_from_body, file_body, next_link, release_body};

mod wire;

pub use crate::github::Token;

#[derive(Debug, Clone)]
pub struct GitHubConfig {
    pub owner: String,
    pub repo: String,
    /// REST API root: `https://api.github.com/`, or GitHub Enterprise's `/api/v3/`.
    pub api_url: String,
    /// Where release downloads are served: `https://github.com`.
    pub html_url: String,
    /// Keeps list pages with their ETags between runs.
    pub cache_dir: Option<PathBuf>,
    /// Create releases as non-draft pre-releases instead of drafts.
    pub prerelease: bool,
    /// Minimum gap between content-creating requests (GitHub: at most 80 a minute).
    pub write_interval: Duration,
    /// Attempts for a request that fails with 5xx or a transport error.
    pub attempts: u32,
    pub base_delay: Duration,
    /// Longest wait for a rate limit to reset before giving up on the request.
    pub max_rate_limit_wait: Duration,
    /// List the repository again when the view is older than this (a long-running controller
    /// must see what its build Jobs uploaded); `None`: once per run.
    pub max_view_age: Option<Duration>,
}

impl GitHubConfig {
    pub fn new(owner: &str, repo: &str) -> Self {
        Self {
            owner: owner.into(),
            repo: repo.into(),
            api_url: "https://api.github.com/".into(),
            html_url: "https://github.com".into(),
            cache_dir: None,
            prerelease: false,
            write_interval: Duration::from_millis(1000),
            attempts: 4,
            base_delay: Duration::from_secs(1),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
            max_view_age: None,
        }
    }
}

/// Requests sent, by kind: `sync` prints them and the controller exports them.
#[derive(Debug, Default)]
struct Counters {
    list: AtomicU64,
    not_modified: AtomicU64,
    get: AtomicU64,
    create: AtomicU64,
    update: AtomicU64,
    upload: AtomicU64,
    delete: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GitHubStats {
    pub list: u64,
    pub not_modified: u64,
    pub get: u64,
    pub create: u64,
    pub update: u64,
    pub upload: u64,
    pub delete: u64,
    pub retries: u64,
    pub rate_limit_waits: u64,
}

impl GitHubStats {
    pub fn requests(&self) -> u64 {
        self.list + self.get + self.create + self.update + self.upload + self.delete
    }

    pub fn writes(&self) -> u64 {
        self.create + self.update + self.upload + self.delete
    }
}

pub struct GitHubStore {
    api: Api,
    config: GitHubConfig,
    counters: Counters,
    /// Every release of the repository, by id (GitHub keeps several drafts for one tag);
    /// `None` until first listed, or after `refresh`.
    view: Mutex<Option<HashMap<u64, GhRelease>>>,
    listed_at: Mutex<Option<Instant>>,
    last_write: Mutex<Option<Instant>>,
}

impl fmt::Debug for GitHubStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitHubStore({}/{})", self.config.owner, self.config.repo)
    }
}

/// One page of the release list as cached on disk.
#[derive(Serialize, Deserialize)]
struct CachedPage {
    etag: String,
    body: String,
    next: Option<String>,
}

impl GitHubStore {
    pub fn new(config: GitHubConfig, token: Token) -> Result<Self, StoreError> {
        // Uploads of large PEXs take a while: a generous read timeout.
        let mut api = Api::new(&config.api_url, &token, Duration::from_secs(300))?;
        api.retry = Retry {
            attempts: config.attempts,
            base_delay: config.base_delay,
            max_rate_limit_wait: config.max_rate_limit_wait,
        };
        Ok(Self {
            api,
            config,
            counters: Counters::default(),
            view: Mutex::new(None),
            listed_at: Mutex::new(None),
            last_write: Mutex::new(None),
        })
    }

    /// After a run that changed the repository, lists it once more so the cached pages carry
    /// the new ETags: the next run with nothing new then costs only 304s.
    pub async fn refresh_cache(&self) -> Result<(), StoreError> {
        if self.config.cache_dir.is_none() || self.stats().writes() == 0 {
            return Ok(());
        }
        let fresh = self.list_all().await?;
        *self.view.lock().await = Some(fresh);
        Ok(())
    }

    /// GitHub's `x-ratelimit-remaining` as last seen.
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        self.api.rate_limit_remaining()
    }

    pub fn stats(&self) -> GitHubStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GitHubStats {
            list: get(&c.list),
            not_modified: get(&c.not_modified),
            get: get(&c.get),
            create: get(&c.create),
            update: get(&c.update),
            upload: get(&c.upload),
            delete: get(&c.delete),
            retries: self.api.counts().1,
            rate_limit_waits: self.api.counts().2,
        }
    }

    fn repo_path(&self) -> String {
        format!(
            "{}repos/{}/{}",
            self.api_root(),
            self.config.owner,
            self.config.repo
        )
    }

    fn api_root(&self) -> String {
        let root = &self.config.api_url;
        if root.ends_with('/') {
            root.clone()
        } else {
            format!("{root}/")
        }
    }

    /// Lists every release of the repository, revalidating cached pages with their ETags.
    async fn list_all(&self) -> Result<HashMap<u64, GhRelease>, StoreError> {
        let mut all = HashMap::new();
        let mut url = Some(format!("{}/releases?per_page=100", self.repo_path()));
        let mut page = 0;
        while let Some(u) = url.take() {
            page += 1;
            let cache_file = self.page_cache(page);
            let cached: Option<CachedPage> = cache_file
                .as_deref()
                .and_then(|f| std::fs::read(f).ok())
                .and_then(|b| serde_json::from_slice(&b).ok());
            let mut headers = HeaderMap::new();
            if let Some(c) = &cached
                && let Ok(v) = HeaderValue::from_str(&c.etag)
            {
                headers.insert(header::IF_NONE_MATCH, v);
            }
            self.counters.list.fetch_add(1, Ordering::Relaxed);
            let response = self.send(Method::GET, &u, headers).await?;
            let (body, next) = if response.status == StatusCode::NOT_MODIFIED
                && let Some(c) = cached
            {
                self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                (c.body, c.next)
            } else {
                let response = response.ok("list releases")?;
                let next = next_link(&response.headers);
                let etag = response
                    .headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = String::from_utf8_lossy(&response.body).into_owned();
                if let (Some(file), Some(etag)) = (&cache_file, etag) {
                    let page = CachedPage {
                        etag,
                        body: body.clone(),
                        next: next.clone(),
                    };
                    // Losing the cache costs a full listing next time, nothing else.
                    let _ = super::dir::atomic_write(file, |f| {
                        serde_json::to_writer(f, &page).map_err(std::io::Error::other)
                    });
                }
                (body, next)
            };
            let releases: Vec<GhRelease> = serde_json::from_str(&body).map_err(|e| {
                StoreError::Other(format!(
                    "GitHub sent a release list that cannot be read: {e}"
                ))
            })?;
            for r in releases {
                all.insert(*r.id, r);
            }
            url = next;
        }
        Ok(all)
    }

    fn page_cache(&self, page: usize) -> Option<PathBuf> {
        let dir = self.config.cache_dir.as_ref()?;
        Some(
            dir.join("github")
                .join(format!("{}-{}", self.config.owner, self.config.repo))
                .join(format!("releases-{page}.json")),
        )
    }

    /// The view of the repository, listed on first use.
    async fn view(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<HashMap<u64, GhRelease>>>, StoreError> {
        let mut view = self.view.lock().await;
        let mut listed_at = self.listed_at.lock().await;
        let stale = match (self.config.max_view_age, *listed_at) {
            (Some(age), Some(at)) => at.elapsed() > age,
            _ => false,
        };
        if view.is_none() || stale {
            // Unchanged pages cost a 304 each: cheap to ask again.
            *view = Some(self.list_all().await?);
            *listed_at = Some(Instant::now());
        }
        Ok(view)
    }

    /// The release with this id: from the view, else asked of GitHub (a build Job's store
    /// has listed nothing) and remembered.
    async fn gh_release(&self, id: &ReleaseId) -> Result<GhRelease, StoreError> {
        let number = release_number(id)?;
        if let Some(r) = self
            .view
            .lock()
            .await
            .as_ref()
            .and_then(|v| v.get(&number).cloned())
        {
            return Ok(r);
        }
        self.fetch_release(number).await
    }

    async fn fetch_release(&self, number: u64) -> Result<GhRelease, StoreError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/releases/{number}", self.repo_path());
        let response = self.send(Method::GET, &url, HeaderMap::new()).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Err(StoreError::NoRelease {
                tag: format!("release {number}"),
            });
        }
        let release: GhRelease = response.ok("read the release")?.json("read the release")?;
        self.remember(release.clone()).await;
        Ok(release)
    }

    /// Folds a release GitHub returned into the view. Uploads of one release run concurrently
    /// and each answer carries only what existed then, so assets are merged by name.
    async fn remember(&self, mut release: GhRelease) {
        if let Some(view) = self.view.lock().await.as_mut() {
            if let Some(old) = view.remove(&*release.id) {
                for asset in old.assets {
                    if !release.assets.iter().any(|a| a.name == asset.name) {
                        release.assets.push(asset);
                    }
                }
            }
            view.insert(*release.id, release);
        }
    }

    async fn remember_asset(&self, id: u64, asset: GhAsset) {
        if let Some(view) = self.view.lock().await.as_mut()
            && let Some(r) = view.get_mut(&id)
        {
            r.assets.retain(|a| a.name != asset.name);
            r.assets.push(asset);
        }
    }

    async fn forget_asset(&self, id: u64, name: &str) {
        if let Some(view) = self.view.lock().await.as_mut()
            && let Some(r) = view.get_mut(&id)
        {
            r.assets.retain(|a| a.name != name);
        }
    }

    async fn patch_release(
        &self,
        id: u64,
        body: serde_json::Value,
        what: &str,
    ) -> Result<GhRelease, StoreError> {
        self.counters.update.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/releases/{id}", self.repo_path());
        let response = self.send_json(Method::PATCH, &url, &body).await?.ok(what)?;
        let release: GhRelease = response.json(what)?;
        self.remember(release.clone()).await;
        Ok(release)
    }

    async fn delete_asset_id(&self, asset: &GhAsset) -> Result<(), StoreError> {
        self.counters.delete.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/releases/assets/{}", self.repo_path(), asset.id);
        self.pace().await;
        let response = self.send(Method::DELETE, &url, HeaderMap::new()).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(()); // already gone
        }
        response.ok(&format!("delete asset {}", asset.name))?;
        Ok(())
    }

    /// The assets of one release as GitHub has them now (after a conflict or a broken upload).
    async fn fresh_assets(&self, id: u64) -> Result<Vec<GhAsset>, StoreError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/releases/{id}/assets?per_page=100", self.repo_path());
        Ok(self
            .send(Method::GET, &url, HeaderMap::new())
            .await?
            .ok("list assets")?
            .json("list assets")?)
    }

    async fn refresh_release_assets(&self, id: u64, assets: Vec<GhAsset>) {
        if let Some(view) = self.view.lock().await.as_mut()
            && let Some(r) = view.get_mut(&id)
        {
            r.assets = assets;
        }
    }

    /// Streams one file to the release's upload URL.
    async fn post_asset(
        &self,
        release: &GhRelease,
        up: &Upload<'_>,
    ) -> Result<Response, StoreError> {
        self.counters.upload.fetch_add(1, Ordering::Relaxed);
        let base = release
            .upload_url
            .split('{')
            .next()
            .unwrap_or(&release.upload_url);
        let url = format!("{base}?name={}", percent_encode(up.name, false));
        let content_type = if up.name.ends_with(".json") {
            "application/json"
        } else {
            "application/gzip"
        };
        let path = up.path.to_owned();
        let size = up.size;
        self.pace().await;
        let sent = self.api.send_with(Method::POST, &url, move || {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            (headers, Some(file_body(&path)))
        });
        Ok(sent.await?)
    }

    /// Waits so content-creating requests keep GitHub's secondary limits.
    async fn pace(&self) {
        let mut last = self.last_write.lock().await;
        if let Some(at) = *last {
            let due = at + self.config.write_interval;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// A JSON request; writes wait their turn (`pace`).
    async fn send_json(
        &self,
        method: Method,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Response, StoreError> {
        if method != Method::GET {
            self.pace().await;
        }
        Ok(self.api.send(method, url, Some(body)).await?)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
    ) -> Result<Response, StoreError> {
        Ok(self
            .api
            .send_with(method, url, move || (headers.clone(), None))
            .await?)
    }

    fn tag_release(&self, package: &PackageName, r: &GhRelease) -> Option<Release> {
        let version: Version = r
            .tag_name
            .strip_prefix(&format!("{package}-v"))?
            .parse()
            .ok()?;
        let info = build_info_from_body(r.body.as_deref());
        let assets = r
            .assets
            .iter()
            .map(|a| {
                let size = u64::try_from(a.size).unwrap_or(0);
                // A GitHub without asset digests: the one the build info recorded, if the size agrees.
                let recorded = info.as_ref().and_then(|i| {
                    let platform = i.platforms.values().find(|b| b.asset == a.name);
                    platform
                        .filter(|b| b.size == size)
                        .map(|b| b.sha256.clone())
                        .or_else(|| {
                            i.locked
                                .as_ref()
                                .filter(|l| l.size == size && a.name == l.asset(package))
                                .map(|l| l.sha256.clone())
                        })
                });
                let digest = a
                    .digest
                    .as_deref()
                    .and_then(|d| d.strip_prefix("sha256:"))
                    .map(str::to_owned);
                let uploaded = a.state == "uploaded";
                Asset {
                    name: a.name.clone(),
                    size,
                    sha256: uploaded.then(|| digest.or(recorded)).flatten(),
                    uploaded,
                }
            })
            .collect();
        let state = if r.draft || r.prerelease {
            ReleaseState::Draft
        } else {
            ReleaseState::Published
        };
        Some(Release {
            id: ReleaseId(r.id.to_string()),
            tag: r.tag_name.clone(),
            version,
            state,
            order: *r.id,
            assets,
            info,
        })
    }

    /// The repository's web page: `https://github.com/OWNER/REPO`.
    pub fn web_url(&self) -> String {
        format!(
            "{}/{}/{}",
            self.config.html_url.trim_end_matches('/'),
            self.config.owner,
            self.config.repo
        )
    }

    pub fn release_url(&self, tag: &str, asset: &str) -> String {
        format!(
            "{}/{}/{}/releases/download/{tag}/{asset}",
            self.config.html_url.trim_end_matches('/'),
            self.config.owner,
            self.config.repo
        )
    }
}

impl ReleaseStore for GitHubStore {
    async fn releases(&self, package: &PackageName) -> Result<Vec<Release>, StoreError> {
        let view = self.view().await?;
        let mut releases: Vec<Release> = view
            .as_ref()
            .into_iter()
            .flat_map(|v| v.values())
            .filter_map(|r| self.tag_release(package, r))
            .collect();
        releases.sort_by(|a, b| a.version.cmp(&b.version).then(a.order.cmp(&b.order)));
        Ok(releases)
    }

    async fn refresh(&self) {
        *self.view.lock().await = None;
    }

    async fn release(&self, package: &PackageName, id: &ReleaseId) -> Result<Release, StoreError> {
        let r = self.fetch_release(release_number(id)?).await?;
        self.tag_release(package, &r).ok_or_else(|| {
            StoreError::Other(format!(
                "release {id} ({}) is not one of {package}'s",
                r.tag_name
            ))
        })
    }

    async fn create(&self, info: &BuildInfo) -> Result<Release, StoreError> {
        let tag = info.package.tag(&info.version);
        let url = format!("{}/releases", self.repo_path());
        let request = serde_json::json!({
            "tag_name": tag,
            "name": tag,
            "body": release_body(&info.package, &info.version, info),
            "draft": !self.config.prerelease,
            "prerelease": self.config.prerelease,
            "make_latest": "false",
        });
        let bytes = bytes::Bytes::from(serde_json::to_vec(&request).expect("JSON serialises"));
        let make = || {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            (headers, Some(OctoBody::from(bytes.clone())))
        };
        // Drafts seen before: a draft of this tag that appears after a failed attempt is ours.
        let known: Vec<u64> = self
            .view()
            .await?
            .as_ref()
            .map(|v| {
                v.values()
                    .filter(|r| r.tag_name == tag)
                    .map(|r| *r.id)
                    .collect()
            })
            .unwrap_or_default();
        let attempts = self.config.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            self.counters.create.fetch_add(1, Ordering::Relaxed);
            self.pace().await;
            // One attempt at a time: GitHub may have made the release and still answered 5xx.
            let sent = self.api.send_attempts(Method::POST, &url, make, 1).await;
            match sent {
                Ok(r) if r.status.is_success() => {
                    let release: GhRelease = r.json("create the release")?;
                    self.remember(release.clone()).await;
                    return self.tag_release(&info.package, &release).ok_or_else(|| {
                        StoreError::Other(format!("{tag}: GitHub made a release of another tag"))
                    });
                }
                Ok(r) if r.status.is_server_error() => {
                    last = format!("{} {}", r.status, r.message());
                }
                Ok(r) => {
                    return Err(StoreError::Other(format!(
                        "{tag}: GitHub refused to create the release: {} {}",
                        r.status,
                        r.message()
                    )));
                }
                Err(crate::github::ApiError::Other(m)) => last = m,
                Err(e) => return Err(e.into()),
            }
            // Did the failed attempt make it after all? Look before sending another.
            let fresh = self.list_all().await?;
            let made = fresh
                .values()
                .filter(|r| r.tag_name == tag && r.draft && !known.contains(&*r.id))
                .min_by_key(|r| *r.id)
                .cloned();
            *self.view.lock().await = Some(fresh);
            if let Some(release) = made {
                return self.tag_release(&info.package, &release).ok_or_else(|| {
                    StoreError::Other(format!("{tag}: GitHub made a release of another tag"))
                });
            }
            if attempt < attempts {
                tracing::debug!(%tag, attempt, error = %last, "creating the release failed; trying again");
                tokio::time::sleep(self.api.backoff(attempt)).await;
            }
        }
        Err(StoreError::Other(format!(
            "{tag}: GitHub did not create the release after {attempts} attempts: {last}"
        )))
    }

    async fn delete_draft(&self, release: &Release) -> Result<(), StoreError> {
        let gh = self.gh_release(&release.id).await?;
        if !gh.draft {
            return Err(StoreError::Immutable {
                tag: release.tag.clone(),
                asset: "(the release)".into(),
            });
        }
        self.counters.delete.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/releases/{}", self.repo_path(), gh.id);
        self.pace().await;
        let response = self.send(Method::DELETE, &url, HeaderMap::new()).await?;
        if response.status != StatusCode::NOT_FOUND {
            response.ok(&format!("delete the draft {}", release.tag))?;
        }
        if let Some(view) = self.view.lock().await.as_mut() {
            view.remove(&*gh.id);
        }
        Ok(())
    }

    async fn upload(&self, release: &Release, up: Upload<'_>) -> Result<(), StoreError> {
        let tag = release.tag.clone();
        let mut gh = self.gh_release(&release.id).await?;
        let id = *gh.id;
        for round in 0..2 {
            if let Some(asset) = gh.assets.iter().find(|a| a.name == up.name) {
                let digest = asset
                    .digest
                    .as_deref()
                    .and_then(|d| d.strip_prefix("sha256:"));
                let complete = asset.state == "uploaded"
                    && asset.size as u64 == up.size
                    && digest == Some(up.sha256);
                if complete {
                    return Ok(()); // this very file is already there
                }
                if !(gh.draft || gh.prerelease) && asset.state == "uploaded" {
                    return Err(StoreError::Immutable {
                        tag,
                        asset: up.name.to_owned(),
                    });
                }
                // A broken upload (`starter`, wrong size) or a stale asset.
                self.delete_asset_id(asset).await?;
                self.forget_asset(id, &asset.name).await;
            }
            let response = self.post_asset(&gh, &up).await?;
            if response.status == StatusCode::CREATED || response.status == StatusCode::OK {
                let asset: GhAsset = response.json("upload")?;
                self.remember_asset(id, asset).await;
                return Ok(());
            }
            if response.status == StatusCode::NOT_FOUND {
                return Err(StoreError::NoRelease { tag });
            }
            // 422 (already exists) or an upload cut short: look at what GitHub has, decide once more.
            let message = response.message();
            tracing::debug!(asset = up.name, status = %response.status, %message, "upload did not land; observing again");
            if round == 1 {
                return Err(StoreError::Other(format!(
                    "{tag}/{}: upload failed ({} {message})",
                    up.name, response.status
                )));
            }
            gh.assets = self.fresh_assets(id).await?;
            self.refresh_release_assets(id, gh.assets.clone()).await;
        }
        unreachable!("the loop returns on its second round")
    }

    async fn delete_asset(&self, release: &Release, name: &str) -> Result<(), StoreError> {
        let gh = self.gh_release(&release.id).await?;
        if !(gh.draft || gh.prerelease) {
            return Err(StoreError::Immutable {
                tag: release.tag.clone(),
                asset: name.to_owned(),
            });
        }
        if let Some(asset) = gh.assets.iter().find(|a| a.name == name) {
            self.delete_asset_id(asset).await?;
            self.forget_asset(*gh.id, name).await;
        }
        Ok(())
    }

    async fn record(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        let gh = self.gh_release(&release.id).await?;
        if !(gh.draft || gh.prerelease) {
            return Err(StoreError::Immutable {
                tag: release.tag.clone(),
                asset: "(the build info)".into(),
            });
        }
        let body = release_body(&info.package, &info.version, info);
        if gh.body.as_deref() != Some(body.as_str()) {
            self.patch_release(
                *gh.id,
                serde_json::json!({ "body": body }),
                "record the build info",
            )
            .await?;
        }
        Ok(())
    }

    async fn publish(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        let gh = self.gh_release(&release.id).await?;
        let body = release_body(&info.package, &info.version, info);
        if !gh.draft && !gh.prerelease {
            // Published already: only its build info is amended (a platform built since).
            if gh.body.as_deref() != Some(body.as_str()) {
                self.patch_release(
                    *gh.id,
                    serde_json::json!({ "body": body }),
                    "amend the build info",
                )
                .await?;
            }
            return Ok(());
        }
        // Several packages share a repository: "latest" would mean nothing, so no release is
        // marked latest (and an older version never is). The build info goes in the same
        // write: a release is never public without it.
        let body = serde_json::json!({
            "body": body,
            "draft": false,
            "prerelease": false,
            "make_latest": "false",
        });
        self.patch_release(*gh.id, body, "publish the release")
            .await
            .map(|_| ())
    }

    async fn fetch(
        &self,
        release: &Release,
        asset: &str,
        into: &Path,
    ) -> Result<PathBuf, StoreError> {
        let tag = &release.tag;
        let release = self.gh_release(&release.id).await?;
        let id = release
            .assets
            .iter()
            .find(|a| a.name == asset)
            .map(|a| a.id)
            .ok_or_else(|| StoreError::Other(format!("{tag}/{asset}: no such asset")))?;
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/releases/assets/{id}", self.repo_path());
        let request = http::Request::builder()
            .uri(&url)
            .header(header::ACCEPT, "application/octet-stream")
            .body(OctoBody::empty())
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let response = self
            .api
            .octocrab()
            .execute(request)
            .await
            .map_err(|e| StoreError::Other(format!("download {asset}: {}", describe(&e))))?;
        let status = response.status();
        if status.is_redirection() {
            // GitHub answers with a short-lived CDN URL that must not get the token.
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    StoreError::Other(format!("download {asset}: a redirect without a location"))
                })?
                .to_owned();
            let mut r = reqwest::get(&location)
                .await
                .map_err(|e| StoreError::Other(format!("download {asset}: {e}")))?;
            if !r.status().is_success() {
                return Err(StoreError::Other(format!(
                    "download {asset}: HTTP {}",
                    r.status()
                )));
            }
            let mut file = tokio::fs::File::create(into)
                .await
                .map_err(|e| StoreError::Other(e.to_string()))?;
            while let Some(chunk) = r
                .chunk()
                .await
                .map_err(|e| StoreError::Other(format!("download {asset}: {e}")))?
            {
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                    .await
                    .map_err(|e| StoreError::Other(e.to_string()))?;
            }
            // tokio's File writes in the background: what is not flushed may not be there yet.
            tokio::io::AsyncWriteExt::flush(&mut file)
                .await
                .map_err(|e| StoreError::Other(e.to_string()))?;
            return Ok(into.to_owned());
        }
        if !status.is_success() {
            return Err(StoreError::Other(format!(
                "download {asset}: HTTP {status}"
            )));
        }
        let mut body = response.into_body();
        let mut file = tokio::fs::File::create(into)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| StoreError::Other(format!("download {asset}: {}", describe(&e))))?;
            if let Ok(data) = frame.into_data() {
                tokio::io::AsyncWriteExt::write_all(&mut file, &data)
                    .await
                    .map_err(|e| StoreError::Other(e.to_string()))?;
            }
        }
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        Ok(into.to_owned())
    }

    fn source_template(&self, package: &PackageName) -> String {
        self.release_url(
            &format!("{package}-v${{version}}"),
            &format!("{package}-${{os}}-${{arch}}.tar.gz"),
        )
    }
}

/// GitHub's numeric id of a release.
fn release_number(id: &ReleaseId) -> Result<u64, StoreError> {
    id.0.parse()
        .map_err(|_| StoreError::Other(format!("{id:?} is not a GitHub release id")))
}

#[cfg(test)]
mod tests;
