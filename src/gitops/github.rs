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
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{CommitOutcome, ManifestSink, Render, SinkError, commit_message, render_all};
use crate::github::{Api, Response, Token, percent_encode};
use crate::names::PackageName;

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

/// Requests of the GitHub manifest sink: sent (retries included), retried, and waits for a
/// rate limit to reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GitHubSinkStats {
    pub requests: u64,
    pub retries: u64,
    pub rate_limit_waits: u64,
}

pub struct GitHubSink {
    api: Api,
    config: GitHubSinkConfig,
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
        let api = Api::new(&config.api_url, &token, Duration::from_secs(60))?;
        Ok(Self { api, config })
    }

    /// Retries of 5xx and transport errors: `attempts` in all, waiting `base_delay`, doubled
    /// each time (defaults: 4 and 1 s).
    pub fn with_retries(mut self, attempts: u32, base_delay: Duration) -> Self {
        self.api.retry.attempts = attempts.max(1);
        self.api.retry.base_delay = base_delay;
        self
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.api.counts().0
    }

    /// What the sink's requests cost so far, for a run's last line.
    pub fn stats(&self) -> GitHubSinkStats {
        let (requests, retries, rate_limit_waits) = self.api.counts();
        GitHubSinkStats {
            requests,
            retries,
            rate_limit_waits,
        }
    }

    fn repo_url(&self) -> String {
        let root = self.config.api_url.trim_end_matches('/');
        let (o, r) = (&self.config.owner, &self.config.repo);
        format!(
            "{root}/repos/{}/{}",
            percent_encode_path(o),
            percent_encode_path(r)
        )
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
        let branch = percent_encode_path(&self.config.branch);
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
        let v: Value = r.ok("read the branch")?.json("read the branch")?;
        let commit = text(&v["object"]["sha"], "the branch's commit")?;
        let url = format!("{}/git/commits/{commit}", self.repo_url());
        let v: Value = self
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
            percent_encode_path(path)
        );
        let r = self.send(Method::GET, &url, None).await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let what = format!("read {path}");
        let v: Value = r.ok(&what)?.json(&what)?;
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
        let v: Value = self
            .send(Method::POST, &url, Some(&body))
            .await?
            .ok("create the tree")?
            .json("create the tree")?;
        let tree = text(&v["sha"], "the new tree")?;
        let url = format!("{}/git/commits", self.repo_url());
        let author = json!({"name": self.config.author_name, "email": self.config.author_email});
        let body =
            json!({"message": message, "tree": tree, "parents": [head.commit], "author": author});
        let v: Value = self
            .send(Method::POST, &url, Some(&body))
            .await?
            .ok("create the commit")?
            .json("create the commit")?;
        text(&v["sha"], "the new commit")
    }

    /// Moves the branch to `commit` if that is a fast forward; `Ok(false)` when someone else
    /// moved it first.
    async fn fast_forward(&self, commit: &str) -> Result<bool, SinkError> {
        let branch = percent_encode_path(&self.config.branch);
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
        Ok(self.api.send(method, url, body).await?)
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

/// Standard base64 (as the contents API sends it: padded, with line breaks); `None` if invalid.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let joined: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .ok()
}

/// A path in the repository, percent-encoded for a URL.
fn percent_encode_path(s: &str) -> String {
    percent_encode(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The client spawns its connection pool: it needs a runtime even when unused.
    #[tokio::test]
    async fn the_token_reaches_the_client_and_never_prints() {
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
        assert_eq!(
            percent_encode_path("hermit dir/a+b.hcl"),
            "hermit%20dir/a%2Bb.hcl"
        );
    }
}
