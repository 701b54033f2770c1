//! Manifests committed through GitHub's REST API, for users who give hermit-pex only a token.
//!
//! One sync makes at most one commit, built with the git data API: read the branch head and its
//! tree, read each package's committed manifest through the contents API, render on top of it,
//! then create a tree (on the head's), a commit (parent: the head) and move the branch with a
//! fast-forward-only ref update. When someone pushed meanwhile the update is refused; the sink
//! starts again from the new head (re-reading and re-rendering, so their changes are kept) a
//! bounded number of times. It never forces.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::{OctoBody, Octocrab};
use serde_json::{Value, json};

use super::{CommitOutcome, ManifestSink, Render, SinkError, commit_message, render_all};
use crate::names::PackageName;
use crate::release::github::Token;

/// Rounds of read, render, commit, update before giving up on a branch that keeps moving.
const MAX_ROUNDS: u32 = 5;
/// Manifests read at once.
const READ_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubSinkConfig {
    pub owner: String,
    pub repo: String,
    pub branch: String,
    /// Directory of the manifests in the repository; "" is the repository root.
    pub dir: String,
    /// REST API root: `https://api.github.com/`, or GitHub Enterprise's `/api/v3/`.
    pub api_url: String,
    pub author_name: String,
    pub author_email: String,
}

impl GitHubSinkConfig {
    /// `owner/repo` on github.com, branch `branch`, manifests at the root, committed by
    /// `hermit-pex <hermit-pex@users.noreply.github.com>`.
    pub fn new(owner: &str, repo: &str, branch: &str) -> Self {
        Self {
            owner: owner.into(),
            repo: repo.into(),
            branch: branch.into(),
            dir: String::new(),
            api_url: "https://api.github.com/".into(),
            author_name: "hermit-pex".into(),
            author_email: "hermit-pex@users.noreply.github.com".into(),
        }
    }
}

pub struct GitHubSink {
    client: Octocrab,
    config: GitHubSinkConfig,
    requests: AtomicU64,
    /// Attempts for a request that fails with 5xx or a transport error.
    attempts: u32,
    base_delay: Duration,
    /// Longest total wait for rate limits to reset before giving up on a request.
    max_rate_limit_wait: Duration,
}

impl fmt::Debug for GitHubSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        write!(f, "GitHubSink({}/{}@{})", c.owner, c.repo, c.branch)
    }
}

/// The branch head as read at the start of a round.
struct Head {
    commit: String,
    tree: String,
}

impl GitHubSink {
    pub fn new(config: GitHubSinkConfig, token: Token) -> Result<Self, SinkError> {
        let client = Octocrab::builder()
            .personal_token(token_text(token))
            .base_uri(config.api_url.as_str())
            .map_err(|e| {
                SinkError::GitHub(format!("invalid GitHub API URL {:?}: {e}", config.api_url))
            })?
            .set_connect_timeout(Some(Duration::from_secs(15)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| SinkError::GitHub(format!("cannot set up the GitHub client: {e}")))?;
        Ok(Self {
            client,
            config,
            requests: AtomicU64::new(0),
            attempts: 4,
            base_delay: Duration::from_secs(1),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
        })
    }

    /// Retries of 5xx and transport errors: `attempts` in all, waiting `base_delay`, doubled
    /// each time (defaults: 4 and 1 s).
    pub fn with_retries(mut self, attempts: u32, base_delay: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.base_delay = base_delay;
        self
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn repo_url(&self) -> String {
        let root = self.config.api_url.trim_end_matches('/');
        let (o, r) = (&self.config.owner, &self.config.repo);
        format!("{root}/repos/{}/{}", encode_path(o), encode_path(r))
    }

    fn where_(&self) -> String {
        let c = &self.config;
        format!("{}/{} branch {}", c.owner, c.repo, c.branch)
    }

    /// The manifest's path in the repository.
    fn path(&self, package: &PackageName) -> String {
        let dir = self.config.dir.trim_matches('/');
        let file = crate::hermit::file_name(package);
        if dir.is_empty() {
            file
        } else {
            format!("{dir}/{file}")
        }
    }

    async fn head(&self) -> Result<Head, SinkError> {
        let branch = encode_path(&self.config.branch);
        let url = format!("{}/git/ref/heads/{branch}", self.repo_url());
        let r = self.send(Method::GET, &url, None).await?;
        if r.status == StatusCode::NOT_FOUND || r.status == StatusCode::CONFLICT {
            return Err(SinkError::GitHub(format!(
                "{}: no such branch ({} {}); create it first (hermit-pex commits on top of it)",
                self.where_(),
                r.status,
                r.message()
            )));
        }
        let v = r.ok("read the branch")?.json("read the branch")?;
        let commit = text(&v["object"]["sha"], "the branch's commit")?;
        let url = format!("{}/git/commits/{commit}", self.repo_url());
        let v = self
            .send(Method::GET, &url, None)
            .await?
            .ok("read the head commit")?
            .json("read the head commit")?;
        let tree = text(&v["tree"]["sha"], "the head commit's tree")?;
        Ok(Head { commit, tree })
    }

    /// The committed text at `path` in commit `at`, or `None` when there is no such file.
    async fn read(&self, path: &str, at: &str) -> Result<Option<String>, SinkError> {
        let url = format!(
            "{}/contents/{}?ref={at}",
            self.repo_url(),
            encode_path(path)
        );
        let r = self.send(Method::GET, &url, None).await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let what = format!("read {path}");
        let v = r.ok(&what)?.json(&what)?;
        if v["type"] != "file" || v["encoding"] != "base64" {
            let (kind, encoding) = (v["type"].as_str().unwrap_or("a directory"), &v["encoding"]);
            return Err(SinkError::GitHub(format!(
                "{}: {path} is not a manifest GitHub can serve (type {kind}, encoding {encoding})",
                self.where_()
            )));
        }
        let bytes = base64_decode(v["content"].as_str().unwrap_or("")).ok_or_else(|| {
            SinkError::GitHub(format!("{what}: GitHub sent content that is not base64"))
        })?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| SinkError::GitHub(format!("{}: {path} is not UTF-8 text", self.where_())))
    }

    /// The committed manifests of `packages` in commit `at`, a few read at once.
    async fn read_all(
        &self,
        packages: &[PackageName],
        at: &str,
    ) -> Result<HashMap<PackageName, Option<String>>, SinkError> {
        // The futures are made up front: a stream mapped by a closure over `&PackageName` is
        // not `Send` for every lifetime, which `ManifestSink::commit`'s future must be.
        let reads: Vec<_> =
            packages
                .iter()
                .map(|p| async move {
                    Ok::<_, SinkError>((p.clone(), self.read(&self.path(p), at).await?))
                })
                .collect();
        futures::stream::iter(reads)
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Creates a commit of `files` (path, text) on top of `head`; returns its sha.
    async fn write_commit(
        &self,
        head: &Head,
        files: &[(String, &str)],
        message: &str,
    ) -> Result<String, SinkError> {
        let entries: Vec<Value> = files
            .iter()
            .map(|(path, content)| json!({"path": path, "mode": "100644", "type": "blob", "content": content}))
            .collect();
        let url = format!("{}/git/trees", self.repo_url());
        let body = json!({"base_tree": head.tree, "tree": entries});
        let v = self
            .send(Method::POST, &url, Some(&body))
            .await?
            .ok("create the tree")?
            .json("create the tree")?;
        let tree = text(&v["sha"], "the new tree")?;
        let url = format!("{}/git/commits", self.repo_url());
        let author = json!({"name": self.config.author_name, "email": self.config.author_email});
        let body =
            json!({"message": message, "tree": tree, "parents": [head.commit], "author": author});
        let v = self
            .send(Method::POST, &url, Some(&body))
            .await?
            .ok("create the commit")?
            .json("create the commit")?;
        text(&v["sha"], "the new commit")
    }

    /// Moves the branch to `commit` if that is a fast forward; `Ok(false)` when someone else
    /// moved it first.
    async fn fast_forward(&self, commit: &str) -> Result<bool, SinkError> {
        let branch = encode_path(&self.config.branch);
        let url = format!("{}/git/refs/heads/{branch}", self.repo_url());
        let body = json!({"sha": commit, "force": false});
        let r = self.send(Method::PATCH, &url, Some(&body)).await?;
        let moved = r.status == StatusCode::CONFLICT
            || (r.status == StatusCode::UNPROCESSABLE_ENTITY
                && r.message().to_lowercase().contains("fast forward"));
        if moved {
            tracing::info!(branch = %self.config.branch, message = %r.message(), "the branch moved meanwhile; starting again from its new head");
            return Ok(false);
        }
        r.ok("update the branch")?;
        Ok(true)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Response, SinkError> {
        let bytes =
            body.map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON values serialise")));
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            let mut builder = http::Request::builder()
                .method(method.clone())
                .uri(url)
                .header(header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
            if bytes.is_some() {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
            }
            let request = builder
                .body(bytes.clone().map_or_else(OctoBody::empty, OctoBody::from))
                .map_err(|e| SinkError::GitHub(format!("{method} {}: {e}", strip_query(url))))?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let result = match self.client.execute(request).await {
                Ok(r) => Response::read(r).await,
                Err(e) => Err(describe(&e)),
            };
            let retry_in = match result {
                Ok(r) if r.status == StatusCode::UNAUTHORIZED => {
                    return Err(SinkError::GitHub(format!(
                        "GitHub rejected the token (401 {}): check GITHUB_TOKEN",
                        r.message()
                    )));
                }
                Ok(r) if r.rate_limited() => {
                    let wait = r.rate_limit_wait();
                    if waited + wait > self.max_rate_limit_wait {
                        return Err(SinkError::GitHub(format!(
                            "GitHub's rate limit is exhausted for {} s more; try again later",
                            wait.as_secs()
                        )));
                    }
                    waited += wait;
                    tracing::warn!(?wait, "GitHub rate limit reached; waiting for the reset");
                    tokio::time::sleep(wait).await;
                    attempt -= 1; // waiting out a limit is not a failed attempt
                    continue;
                }
                Ok(r) if r.status.is_server_error() && attempt < self.attempts => {
                    self.backoff(attempt)
                }
                Ok(r) => return Ok(r),
                Err(_) if attempt < self.attempts => self.backoff(attempt),
                Err(message) => {
                    return Err(SinkError::GitHub(format!(
                        "{method} {}: {message}",
                        strip_query(url)
                    )));
                }
            };
            tracing::debug!(%method, url = %strip_query(url), attempt, "GitHub request failed; retrying");
            tokio::time::sleep(retry_in).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.base_delay.saturating_mul(1 << (attempt - 1).min(10))
    }
}

impl ManifestSink for GitHubSink {
    async fn commit(
        &self,
        packages: &[PackageName],
        render: &Render<'_>,
    ) -> Result<CommitOutcome, SinkError> {
        for round in 1..=MAX_ROUNDS {
            let head = self.head().await?;
            let mut current = self.read_all(packages, &head.commit).await?;
            let (changed, failed) =
                render_all(packages, render, |p| Ok(current.remove(p).flatten()))?;
            if changed.is_empty() {
                return Ok(CommitOutcome {
                    changed: vec![],
                    commit: None,
                    failed,
                });
            }
            let files: Vec<(String, &str)> = changed
                .iter()
                .map(|(p, r)| (self.path(p), r.text.as_str()))
                .collect();
            let added: Vec<_> = changed
                .iter()
                .map(|(p, r)| (p.clone(), r.added.clone()))
                .collect();
            let commit = self
                .write_commit(&head, &files, &commit_message(&added))
                .await?;
            if self.fast_forward(&commit).await? {
                return Ok(CommitOutcome {
                    changed: added,
                    commit: Some(commit),
                    failed,
                });
            }
            tracing::debug!(round, "ref update was not a fast forward");
        }
        Err(SinkError::GitHub(format!(
            "{}: the branch moved during each of {MAX_ROUNDS} attempts to commit the manifests; nothing was \
             committed (hermit-pex never force-pushes): run again",
            self.where_()
        )))
    }
}

/// A JSON string field GitHub must have sent.
fn text(v: &Value, what: &str) -> Result<String, SinkError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| SinkError::GitHub(format!("unexpected answer from GitHub: no {what}")))
}

/// The token's text, for octocrab only.
fn token_text(token: Token) -> String {
    token.secret().to_owned()
}

/// Percent-encodes what is not unreserved in a URL path, keeping `/` between segments.
fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Standard base64 (as the contents API sends it: padded, with line breaks); `None` if invalid.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let chars: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = chars
        .strip_suffix(b"==")
        .or_else(|| chars.strip_suffix(b"="))
        .unwrap_or(&chars);
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in data {
        acc = (acc << 6) | u32::from(sextet(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// An error's chain in one line, without request details (which could carry credentials).
fn describe(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// A response read whole (the git data API's answers are small).
struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Response {
    async fn read(
        r: http::Response<http_body_util::combinators::BoxBody<Bytes, octocrab::Error>>,
    ) -> Result<Self, String> {
        let (parts, body) = r.into_parts();
        let body = body.collect().await.map_err(|e| describe(&e))?.to_bytes();
        Ok(Self {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn ok(self, what: &str) -> Result<Self, SinkError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let hint = match self.status {
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                " (the token needs write access to the repository's contents: `contents: write`)"
            }
            _ => "",
        };
        Err(SinkError::GitHub(format!(
            "GitHub refused to {what}: {} {}{hint}",
            self.status,
            self.message()
        )))
    }

    fn json(&self, what: &str) -> Result<Value, SinkError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| SinkError::GitHub(format!("{what}: unexpected answer from GitHub: {e}")))
    }

    /// GitHub's `message`, with the first validation error when there is one.
    fn message(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let mut m = v["message"].as_str().unwrap_or("").to_owned();
        if let Some(code) = v["errors"][0]["code"].as_str() {
            m.push_str(&format!(" ({code})"));
        }
        m
    }

    fn header_u64(&self, name: &str) -> Option<u64> {
        self.headers.get(name)?.to_str().ok()?.trim().parse().ok()
    }

    fn rate_limited(&self) -> bool {
        (self.status == StatusCode::FORBIDDEN || self.status == StatusCode::TOO_MANY_REQUESTS)
            && (self.header_u64("x-ratelimit-remaining") == Some(0)
                || self.headers.contains_key(header::RETRY_AFTER))
    }

    /// `retry-after`, else until `x-ratelimit-reset`, else a minute (GitHub's advice).
    fn rate_limit_wait(&self) -> Duration {
        if let Some(secs) = self.header_u64("retry-after") {
            return Duration::from_secs(secs);
        }
        if let Some(reset) = self.header_u64("x-ratelimit-reset") {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            return Duration::from_secs(reset.saturating_sub(now) + 1);
        }
        Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The client spawns its connection pool: it needs a runtime even when unused.
    #[tokio::test]
    async fn the_token_reaches_the_client_and_never_prints() {
        assert_eq!(token_text(Token::new("ghp_s3cret")), "ghp_s3cret");
        let mut config = GitHubSinkConfig::new("o", "r", "main");
        config.dir = "hermit/".into();
        let sink = GitHubSink::new(config.clone(), Token::new("ghp_s3cret")).unwrap();
        assert!(!format!("{sink:?} {config:?}").contains("s3cret"));
        assert_eq!(
            sink.path(&PackageName::new("black").unwrap()),
            "hermit/black.hcl"
        );
        assert_eq!(sink.repo_url(), "https://api.github.com/repos/o/r");
    }

    #[test]
    fn base64_decodes_what_the_contents_api_sends() {
        assert_eq!(
            base64_decode("aGVybWl0\nLXBleA==\n").unwrap(),
            b"hermit-pex"
        );
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert!(base64_decode("Y*==").is_none());
        assert_eq!(encode_path("hermit dir/a+b.hcl"), "hermit%20dir/a%2Bb.hcl");
    }
}
