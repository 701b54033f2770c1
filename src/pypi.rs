//! The package index client: which files and versions a project has, through the Simple API
//! (PEP 691 JSON first, PEP 503 HTML as fallback), with an on-disk HTTP cache so an unchanged
//! project costs a 304, and retries with backoff on 5xx/429.

pub mod auth;
mod simple;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

pub use auth::{AuthError, Credentials, EnvCredentials, Index, Indexes, PrivateNetrc};
pub use simple::{DistFile, GitTag, IndexVersion, installable_versions, version_from_filename};

use crate::names::PackageName;

pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple/";

const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";
pub const USER_AGENT: &str = concat!(
    "hermit-pex/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/hermit-pex)"
);

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{project}: no such project on {index} (HTTP 404); check `package` in the config")]
    NotFound { project: String, index: String },
    #[error(
        "{index}: the index refused access (HTTP {status}): {}; set {user} and {pass} (or {token}), or add the host to ~/.netrc",
        if *.sent { "the credentials given were not accepted" } else { "it needs credentials" },
        user = auth::USERNAME_ENV, pass = auth::PASSWORD_ENV, token = auth::TOKEN_ENV
    )]
    Unauthorized {
        index: String,
        status: u16,
        /// Credentials were sent (and refused), as opposed to none configured.
        sent: bool,
    },
    #[error("{url}: the index answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url}: cannot read the index page: {reason}")]
    Parse { url: String, reason: String },
    #[error("invalid index URL {url:?}: {reason}")]
    BadIndexUrl { url: String, reason: String },
}

/// What the index said about one project.
#[derive(Debug, Clone)]
pub struct ProjectFiles {
    pub name: PackageName,
    pub files: Vec<DistFile>,
    /// The page came from the cache after a 304.
    pub not_modified: bool,
}

impl ProjectFiles {
    pub fn versions(&self) -> Vec<IndexVersion> {
        installable_versions(&self.files)
    }
}

/// Request counters, shared by clones of the client.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    fetched: AtomicU64,
    not_modified: AtomicU64,
    retries: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IndexStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Pages downloaded in full (200).
    pub fetched: u64,
    /// Pages confirmed unchanged (304) and read from the cache.
    pub not_modified: u64,
    pub retries: u64,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    /// Upper bound for one wait, including a server's `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct IndexClient {
    http: reqwest::Client,
    /// The index's URL and its credentials, sent only to its origin.
    index: Index,
    cache_dir: Option<PathBuf>,
    retry: RetryPolicy,
    counters: Arc<Counters>,
}

/// A cached page with the validators to revalidate it.
#[derive(Serialize, Deserialize)]
struct CacheEntry {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
    content_type: String,
    body: String,
}

impl IndexClient {
    /// `index_url` is a Simple API root like pip's `--index-url`; `cache_dir` keeps pages with
    /// their ETag/Last-Modified between runs (none: no cache).
    /// Credentials come from the URL or the netrc file; see `for_index` for others.
    pub fn new(index_url: &str, cache_dir: Option<PathBuf>) -> Result<Self, IndexError> {
        Self::for_index(auth_index(index_url, None)?, cache_dir)
    }

    /// An index whose credentials were resolved already (`auth_index`).
    pub fn for_index(index: Index, cache_dir: Option<PathBuf>) -> Result<Self, IndexError> {
        let bad = |reason: String| IndexError::BadIndexUrl {
            url: index.url.to_string(),
            reason,
        };
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            http,
            index,
            cache_dir,
            retry: RetryPolicy::default(),
            counters: Arc::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The index root, without credentials, for messages.
    pub fn index_url(&self) -> String {
        redact(self.index.url.as_str())
    }

    /// The index with its credentials, for the builds that resolve from it.
    pub fn index(&self) -> Index {
        self.index.clone()
    }

    pub fn stats(&self) -> IndexStats {
        let c = &self.counters;
        IndexStats {
            requests: c.requests.load(Ordering::Relaxed),
            fetched: c.fetched.load(Ordering::Relaxed),
            not_modified: c.not_modified.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// Lists a project's files. An unchanged page costs a conditional request answered by 304.
    pub async fn project(&self, name: &PackageName) -> Result<ProjectFiles, IndexError> {
        let url =
            self.index
                .url
                .join(&format!("{name}/"))
                .map_err(|e| IndexError::BadIndexUrl {
                    url: self.index_url(),
                    reason: e.to_string(),
                })?;
        let cache_file = self.cache_file(name);
        let cached = cache_file
            .as_deref()
            .and_then(read_cache)
            .filter(|c| c.url == url.as_str());

        let response = self.get_with_retries(&url, cached.as_ref()).await?;
        let status = response.status();
        let shown = redact(url.as_str());
        let (entry, not_modified) = if let Some(cached) =
            cached.filter(|_| status == StatusCode::NOT_MODIFIED)
        {
            self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
            (cached, true)
        } else if status == StatusCode::NOT_FOUND {
            return Err(IndexError::NotFound {
                project: name.to_string(),
                index: self.index_url(),
            });
        } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(IndexError::Unauthorized {
                index: self.index_url(),
                status: status.as_u16(),
                sent: self.index.credentials.is_some(),
            });
        } else if status.is_success() {
            self.counters.fetched.fetch_add(1, Ordering::Relaxed);
            let entry = read_entry(&url, response).await?;
            let revalidatable = entry.etag.is_some() || entry.last_modified.is_some();
            if let Some(file) = cache_file.as_deref().filter(|_| revalidatable) {
                // A failed cache write costs a full download next time, nothing more.
                if let Err(e) = write_cache(file, &entry) {
                    tracing::warn!(file = %file.display(), error = %e, "cannot write the index cache");
                }
            }
            (entry, false)
        } else {
            return Err(IndexError::Status {
                url: shown,
                status: status.as_u16(),
            });
        };

        let files = parse_entry(name.as_str(), &url, &entry)
            .map_err(|reason| IndexError::Parse { url: shown, reason })?;
        Ok(ProjectFiles {
            name: name.clone(),
            files,
            not_modified,
        })
    }

    async fn get_with_retries(
        &self,
        url: &Url,
        cached: Option<&CacheEntry>,
    ) -> Result<reqwest::Response, IndexError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        if let Some(c) = cached {
            if let Some(v) = c
                .etag
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(header::IF_NONE_MATCH, v);
            }
            if let Some(v) = c
                .last_modified
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                headers.insert(header::IF_MODIFIED_SINCE, v);
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self.http.get(url.clone()).headers(headers.clone());
            // Only the index's own origin: never a file host or another index. reqwest drops the
            // header itself when a redirect leaves the host.
            if let Some(c) =
                (self.index.credentials.as_ref()).filter(|_| self.index.same_origin(url))
            {
                request = request.basic_auth(&c.username, Some(c.password()));
            }
            let result = request.send().await;
            let last = attempt >= self.retry.attempts;
            let wait = match result {
                Ok(r) if is_retryable(r.status()) && !last => {
                    self.delay(attempt, retry_after(r.headers()))
                }
                Ok(r) => return Ok(r),
                Err(e) if (e.is_timeout() || e.is_connect() || e.is_request()) && !last => {
                    self.delay(attempt, None)
                }
                Err(e) => {
                    return Err(IndexError::Transport {
                        url: redact(url.as_str()),
                        message: describe(&e),
                    });
                }
            };
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(url = %redact(url.as_str()), attempt, ?wait, "index request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .retry
            .base_delay
            .saturating_mul(1 << (attempt - 1).min(16));
        retry_after.unwrap_or(backoff).min(self.retry.max_delay)
    }

    fn cache_file(&self, name: &PackageName) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let index = crate::digest::sha256_hex(self.index.url.as_str())[..16].to_owned();
        Some(dir.join("simple").join(index).join(format!("{name}.json")))
    }
}

/// An index URL as pip takes it, checked and with a trailing slash; a `user:password@` in it is
/// taken out into the credentials, else `fallback` (the environment's), else the netrc entry.
pub fn auth_index(index_url: &str, fallback: Option<Credentials>) -> Result<Index, IndexError> {
    let bad = |reason: String| IndexError::BadIndexUrl {
        url: redact(index_url),
        reason,
    };
    let mut url = Url::parse(index_url).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("use an http:// or https:// URL".into()));
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(Index::resolve(url, fallback))
}

fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// reqwest's messages can carry the URL; ours carries the redacted one already.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

async fn read_entry(url: &Url, response: reqwest::Response) -> Result<CacheEntry, IndexError> {
    let header = |name: header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(header::ETAG);
    let last_modified = header(header::LAST_MODIFIED);
    let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
    let body = response.text().await.map_err(|e| IndexError::Transport {
        url: redact(url.as_str()),
        message: describe(&e),
    })?;
    Ok(CacheEntry {
        url: url.to_string(),
        etag,
        last_modified,
        content_type,
        body,
    })
}

fn parse_entry(project: &str, url: &Url, entry: &CacheEntry) -> Result<Vec<DistFile>, String> {
    let ct = entry.content_type.to_ascii_lowercase();
    if ct.contains("json") {
        simple::parse_json(project, url, entry.body.as_bytes())
    } else {
        Ok(simple::parse_html(project, url, &entry.body))
    }
}

fn read_cache(file: &Path) -> Option<CacheEntry> {
    let bytes = std::fs::read(file).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_cache(file: &Path, entry: &CacheEntry) -> std::io::Result<()> {
    let dir = file.parent().expect("cache files live in a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, entry)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Drops `user:password@` from a URL before it reaches a message or a log line.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => url.split('@').next_back().unwrap_or(url).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_messages() {
        assert_eq!(
            redact("https://user:s3cret@example.org/simple/"),
            "https://example.org/simple/"
        );
        let err = IndexClient::new("ftp://user:s3cret@example.org/simple", None).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn index_url_gets_a_trailing_slash() {
        let c = IndexClient::new("http://127.0.0.1:1/simple", None).unwrap();
        assert_eq!(c.index_url(), "http://127.0.0.1:1/simple/");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let c = IndexClient::new(DEFAULT_INDEX_URL, None).unwrap();
        assert_eq!(c.delay(1, None), Duration::from_millis(500));
        assert_eq!(c.delay(3, None), Duration::from_secs(2));
        assert_eq!(
            c.delay(2, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(
            c.delay(2, Some(Duration::from_secs(3600))),
            Duration::from_secs(30)
        );
    }
}
