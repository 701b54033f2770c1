//! The GitHub REST client shared by the release store and the manifest sink. octocrab carries
//! the requests and the token; this adds what both need the same way: retries of 5xx and
//! transport errors with backoff, waiting out rate limits within a bound, an immediate clear
//! failure on bad credentials, and messages that never carry the token.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::{OctoBody, Octocrab};

/// A token that never shows in `Debug` or `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// `GITHUB_TOKEN`; its absence is a hard error said up front, before any work.
    pub fn from_env() -> Result<Self, ApiError> {
        match std::env::var("GITHUB_TOKEN") {
            Ok(t) if !t.trim().is_empty() => Ok(Self(t.trim().to_owned())),
            _ => Err(ApiError::Auth(
                "GITHUB_TOKEN is not set: publishing to GitHub needs a token that can write releases and contents \
                 (contents: write)"
                    .into(),
            )),
        }
    }

    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Auth(String),
    #[error(
        "GitHub's rate limit resets in {wait_secs} s, longer than hermit-pex waits; run again later"
    )]
    RateLimited { wait_secs: u64 },
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts for a request that fails with 5xx or a transport error.
    pub attempts: u32,
    pub base_delay: Duration,
    /// Longest total wait for a rate limit to reset before giving up on the request.
    pub max_rate_limit_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_secs(1),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
        }
    }
}

pub struct Api {
    client: Octocrab,
    pub retry: Retry,
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limit_waits: AtomicU64,
    /// `x-ratelimit-remaining` of the last response that had it; `u64::MAX` before.
    rate_limit_remaining: AtomicU64,
}

impl Api {
    /// `api_url`: `https://api.github.com/`, or GitHub Enterprise's `https://HOST/api/v3/`.
    pub fn new(api_url: &str, token: &Token, read_timeout: Duration) -> Result<Self, ApiError> {
        let client = Octocrab::builder()
            .personal_token(token.0.clone())
            .base_uri(api_url)
            .map_err(|e| ApiError::Other(format!("invalid GitHub API URL {api_url:?}: {e}")))?
            .set_connect_timeout(Some(Duration::from_secs(15)))
            .set_read_timeout(Some(read_timeout))
            .build()
            .map_err(|e| ApiError::Other(format!("cannot set up the GitHub client: {e}")))?;
        Ok(Self {
            client,
            retry: Retry::default(),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rate_limit_waits: AtomicU64::new(0),
            rate_limit_remaining: AtomicU64::new(u64::MAX),
        })
    }

    pub fn octocrab(&self) -> &Octocrab {
        &self.client
    }

    /// (requests sent, retries, rate-limit waits) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (
            get(&self.requests),
            get(&self.retries),
            get(&self.rate_limit_waits),
        )
    }

    /// GitHub's `x-ratelimit-remaining` as last seen.
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        Some(self.rate_limit_remaining.load(Ordering::Relaxed)).filter(|r| *r != u64::MAX)
    }

    /// Sends `body` as JSON (or nothing).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, ApiError> {
        let bytes =
            body.map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON values serialise")));
        self.send_with(method, url, move || {
            let mut headers = HeaderMap::new();
            if bytes.is_some() {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            (headers, bytes.clone().map(OctoBody::from))
        })
        .await
    }

    /// Sends a request made by `make` (again for each attempt: a streamed body is consumed).
    /// Other statuses than 401, rate limits and 5xx go back to the caller to interpret.
    pub async fn send_with(
        &self,
        method: Method,
        url: &str,
        make: impl Fn() -> (HeaderMap, Option<OctoBody>),
    ) -> Result<Response, ApiError> {
        self.send_attempts(method, url, make, self.retry.attempts)
            .await
    }

    /// `send_with` with its own number of attempts: 1 leaves a 5xx to the caller, for a
    /// request that must not simply be sent again (creating a release twice makes two).
    pub async fn send_attempts(
        &self,
        method: Method,
        url: &str,
        make: impl Fn() -> (HeaderMap, Option<OctoBody>),
        attempts: u32,
    ) -> Result<Response, ApiError> {
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            let (headers, body) = make();
            let mut builder = http::Request::builder().method(method.clone()).uri(url);
            for (k, v) in &headers {
                builder = builder.header(k, v);
            }
            let request = builder
                .header(header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .body(body.unwrap_or_else(OctoBody::empty))
                .map_err(|e| ApiError::Other(format!("{method} {}: {e}", strip_query(url))))?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let result = match self.client.execute(request).await {
                Ok(r) => Response::read(r).await,
                Err(e) => Err(describe(&e)),
            };
            if let Ok(r) = &result
                && let Some(remaining) = r.header_u64("x-ratelimit-remaining")
            {
                self.rate_limit_remaining
                    .store(remaining, Ordering::Relaxed);
            }
            let retry_in = match result {
                Ok(r) if r.status == StatusCode::UNAUTHORIZED => {
                    return Err(ApiError::Auth(format!(
                        "GitHub rejected the token (401 {}): check GITHUB_TOKEN",
                        r.message()
                    )));
                }
                Ok(r) if r.rate_limited() => {
                    let wait = r.rate_limit_wait();
                    if waited + wait > self.retry.max_rate_limit_wait {
                        return Err(ApiError::RateLimited {
                            wait_secs: wait.as_secs(),
                        });
                    }
                    waited += wait;
                    self.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(?wait, "GitHub rate limit reached; waiting for the reset");
                    tokio::time::sleep(wait).await;
                    attempt -= 1; // waiting out a limit is not a failed attempt
                    continue;
                }
                Ok(r) if r.status.is_server_error() && attempt < attempts => self.backoff(attempt),
                Ok(r) => return Ok(r),
                Err(_) if attempt < attempts => self.backoff(attempt),
                Err(message) => {
                    return Err(ApiError::Other(format!(
                        "{method} {}: {message}",
                        strip_query(url)
                    )));
                }
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%method, url = %strip_query(url), attempt, "GitHub request failed; retrying");
            tokio::time::sleep(retry_in).await;
        }
    }

    pub fn backoff(&self, attempt: u32) -> Duration {
        self.retry
            .base_delay
            .saturating_mul(1 << (attempt - 1).min(10))
    }
}

/// A response read whole (GitHub's JSON answers are small).
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
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

    /// The response when it is a success; else an error saying what was refused and why.
    pub fn ok(self, what: &str) -> Result<Self, ApiError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let hint = match self.status {
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                " (does the token have `contents: write` on the repository?)"
            }
            _ => "",
        };
        Err(ApiError::Other(format!(
            "GitHub refused to {what}: {} {}{hint}",
            self.status,
            self.message()
        )))
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::Other(format!("{what}: unexpected answer from GitHub: {e}")))
    }

    /// GitHub's `message`, with the first validation error's code when there is one.
    pub fn message(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
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

/// Percent-encodes all but unreserved characters (and `/` when `keep_slash`).
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b'/' if keep_slash => "/".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// An error's chain in one line, without request details (which could carry credentials).
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The client spawns its connection pool: it needs a runtime even when unused.
    #[tokio::test]
    async fn the_token_never_prints() {
        let t = Token::new("ghp_s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(Api::new("https://api.github.com/", &t, Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("a b+c.tar.gz", false), "a%20b%2Bc.tar.gz");
        assert_eq!(percent_encode("dir/x y.hcl", true), "dir/x%20y.hcl");
    }
}
