//! Manifests committed to a Git repository with the `git` CLI.
//!
//! `gix` cannot push and `git2` needs OpenSSL for HTTPS; the `git` CLI is on every builder and
//! speaks every transport and credential helper. Arguments go as a list, never through a
//! shell. A token reaches git as an HTTP header through `GIT_CONFIG_*` variables, so it is
//! neither in the URL, nor in the process list, nor in a message.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    CommitOutcome, ManifestSink, Render, SinkError, commit_message, read_optional, render_all,
};
use crate::names::PackageName;
use crate::source::{SSH_KEY_ENV, TOKEN_ENV, auth_failure};
use crate::tools::{self, ToolError};

#[derive(Debug, Clone)]
pub struct GitSinkConfig {
    /// Remote URL: `https://…`, `ssh://…`, `git@host:…` or `file://…`.
    pub url: String,
    pub branch: String,
    /// Directory in the repository for the manifests; empty: the root (where Hermit reads a
    /// git source from).
    pub dir: String,
    pub author_name: String,
    pub author_email: String,
    /// The local clone, kept between runs.
    pub checkout: PathBuf,
    /// Rounds of fetch, render, commit, push before a rejected push is an error.
    pub attempts: u32,
}

pub struct GitSink {
    config: GitSinkConfig,
    /// Extra environment for git: credentials from `HERMIT_PEX_GIT_TOKEN` / `GITHUB_TOKEN`
    /// (HTTPS) or `HERMIT_PEX_GIT_SSH_KEY` (SSH).
    env: Vec<(&'static str, OsString)>,
    /// The variable the token came from, and whether a key was given: a refusal names them.
    token_from: Option<&'static str>,
    ssh_key: bool,
}

impl GitSink {
    /// Credentials typed into the URL are taken out of it here (see [`crate::source::access`]):
    /// the sink only ever gives git the URL without them.
    pub fn new(mut config: GitSinkConfig) -> Self {
        let mut env: Vec<(&'static str, OsString)> = vec![
            ("GIT_AUTHOR_NAME", config.author_name.clone().into()),
            ("GIT_AUTHOR_EMAIL", config.author_email.clone().into()),
            ("GIT_COMMITTER_NAME", config.author_name.clone().into()),
            ("GIT_COMMITTER_EMAIL", config.author_email.clone().into()),
        ];
        // A push to GitHub may use the GitHub token when no Git token is given.
        let (token_from, token) = [TOKEN_ENV, "GITHUB_TOKEN"]
            .into_iter()
            .find_map(|var| {
                std::env::var(var)
                    .ok()
                    .filter(|t| !t.is_empty())
                    .map(|t| (var, t))
            })
            .unzip();
        let key = std::env::var(SSH_KEY_ENV).ok();
        // A password typed into the URL is what is sent (and what a refusal names).
        let token_from = if crate::source::password_in_url(&config.url) {
            Some("the URL's user:password")
        } else {
            token_from
        };
        let (url, access) = crate::source::access(&config.url, token.as_deref(), key.as_deref());
        config.url = url;
        env.extend(access);
        Self {
            config,
            env,
            token_from,
            ssh_key: key.is_some(),
        }
    }

    async fn git(&self, args: &[&str]) -> Result<String, SinkError> {
        let mut full: Vec<OsString> = vec!["-C".into(), self.config.checkout.clone().into()];
        full.extend(
            [
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
            ]
            .map(OsString::from),
        );
        full.extend(args.iter().map(OsString::from));
        let url = &self.config.url;
        match tools::run(Path::new("git"), &full, &self.env, Duration::from_secs(300)).await {
            Ok(out) => Ok(out.stdout),
            Err(e) => {
                let said = redact(&e.to_string(), url);
                Err(SinkError::Git(
                    match auth_failure(&said, url, self.token_from, self.ssh_key) {
                        Some(what) => format!("{}: {what}", crate::pypi::redact(url)),
                        None => said,
                    },
                ))
            }
        }
    }

    /// Brings the checkout to the remote branch's head (or an empty branch if it has none yet).
    async fn sync_checkout(&self) -> Result<(), SinkError> {
        let c = &self.config;
        if !c.checkout.join(".git").exists() {
            std::fs::create_dir_all(&c.checkout).map_err(|e| io(&c.checkout, e))?;
            self.git(&["init", "-q"]).await?;
        }
        let _ = self.git(&["remote", "remove", "origin"]).await;
        self.git(&["remote", "add", "--", "origin", &c.url]).await?;
        let refspec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", c.branch);
        match self.git(&["fetch", "-q", "--", "origin", &refspec]).await {
            Ok(_) => {
                let remote = format!("origin/{}", c.branch);
                self.git(&["checkout", "-q", "-B", &c.branch, &remote])
                    .await?;
                self.git(&["reset", "-q", "--hard", &remote]).await?;
            }
            Err(SinkError::Git(m)) if m.contains("couldn't find remote ref") => {
                // A new branch (or an empty repository): start it from nothing.
                self.git(&[
                    "checkout",
                    "-q",
                    "--orphan",
                    &format!("hermit-pex-tmp-{}", std::process::id()),
                ])
                .await?;
                let _ = self.git(&["rm", "-rqf", "--cached", "."]).await;
                let _ = self.git(&["branch", "-D", &c.branch]).await;
                self.git(&["checkout", "-q", "--orphan", &c.branch]).await?;
            }
            Err(e) => return Err(e),
        }
        self.git(&["clean", "-qfdx"]).await?;
        Ok(())
    }

    fn manifest_path(&self, package: &PackageName) -> PathBuf {
        let mut p = self.config.checkout.clone();
        if !self.config.dir.is_empty() {
            p.push(&self.config.dir);
        }
        p.push(crate::hermit::file_name(package));
        p
    }

    fn relative(&self, package: &PackageName) -> String {
        let file = crate::hermit::file_name(package);
        if self.config.dir.is_empty() {
            file
        } else {
            format!("{}/{file}", self.config.dir.trim_end_matches('/'))
        }
    }
}

/// The lock of a checkout directory, shared by every sink in this process that uses it.
fn checkout_lock(checkout: &Path) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .expect("not poisoned");
    locks.entry(checkout.to_owned()).or_default().clone()
}

/// One change to a checkout, made by [`GitSink::transact`]'s caller: the paths it wrote
/// (relative to the repository's root, `/`-separated), the commit message, and what the
/// caller wants back. No paths: nothing is committed.
pub struct Staged<T> {
    pub paths: Vec<String>,
    pub message: String,
    pub value: T,
}

impl GitSink {
    /// The directory the sink writes in: the checkout, or `dir` inside it.
    pub fn root(&self) -> PathBuf {
        let mut p = self.config.checkout.clone();
        if !self.config.dir.is_empty() {
            p.push(&self.config.dir);
        }
        p
    }

    /// The sink's directory in the repository (empty: its root).
    pub fn dir(&self) -> &str {
        &self.config.dir
    }

    /// The remote URL, without credentials, for messages.
    pub fn url(&self) -> String {
        crate::pypi::redact(&self.config.url)
    }

    pub fn branch(&self) -> &str {
        &self.config.branch
    }

    /// Brings the checkout to the branch head and reads it (`read` gets [`GitSink::root`]).
    pub async fn synced<T>(&self, read: impl FnOnce(PathBuf) -> T) -> Result<T, SinkError> {
        let lock = checkout_lock(&self.config.checkout);
        let _turn = lock.lock().await;
        self.sync_checkout().await?;
        Ok(read(self.root()))
    }

    /// Rounds of: the checkout brought to the branch head, `change` run on it (given
    /// [`GitSink::root`]), the paths it wrote committed in one commit and pushed; a push
    /// rejected because the branch moved meanwhile is tried again on the new head, so a
    /// concurrent commit is built upon, never overwritten. Returns the commit made (none when
    /// `change` wrote nothing) and what `change` returned last.
    pub async fn transact<T, F, Fut>(&self, mut change: F) -> Result<(Option<String>, T), SinkError>
    where
        F: FnMut(PathBuf) -> Fut,
        Fut: Future<Output = Result<Staged<T>, SinkError>>,
    {
        // Two sinks over one checkout (the same target reached twice) take turns.
        let lock = checkout_lock(&self.config.checkout);
        let _turn = lock.lock().await;
        for attempt in 1..=self.config.attempts.max(1) {
            self.sync_checkout().await?;
            let staged = change(self.root()).await?;
            if staged.paths.is_empty() {
                return Ok((None, staged.value));
            }
            let mut add = vec!["add", "--"];
            add.extend(staged.paths.iter().map(String::as_str));
            self.git(&add).await?;
            self.git(&["commit", "-q", "-m", &staged.message]).await?;
            let target = format!("HEAD:refs/heads/{}", self.config.branch);
            match self.git(&["push", "-q", "--", "origin", &target]).await {
                Ok(_) => {
                    let sha = self.git(&["rev-parse", "HEAD"]).await?.trim().to_owned();
                    return Ok((Some(sha), staged.value));
                }
                Err(SinkError::Git(m)) if is_rejected(&m) && attempt < self.config.attempts => {
                    tracing::info!(
                        attempt,
                        "the branch moved meanwhile; writing again on its new head"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Err(SinkError::Git(format!(
            "{}: the branch {} kept moving; gave up after {} attempts",
            redact(&self.config.url, &self.config.url),
            self.config.branch,
            self.config.attempts
        )))
    }
}

impl ManifestSink for GitSink {
    async fn commit(
        &self,
        packages: &[PackageName],
        render: &Render<'_>,
    ) -> Result<CommitOutcome, SinkError> {
        let (commit, (changed, failed)) = self
            .transact(|_| async {
                let (changed, failed) =
                    render_all(packages, render, |p| read_optional(&self.manifest_path(p)))?;
                let mut paths = Vec::new();
                for (package, r) in &changed {
                    let path = self.manifest_path(package);
                    std::fs::create_dir_all(path.parent().expect("in the checkout"))
                        .map_err(|e| io(&path, e))?;
                    std::fs::write(&path, &r.text).map_err(|e| io(&path, e))?;
                    paths.push(self.relative(package));
                }
                let changed: Vec<_> = changed.into_iter().map(|(p, r)| (p, r.added)).collect();
                Ok(Staged {
                    paths,
                    message: commit_message(&changed),
                    value: (changed, failed),
                })
            })
            .await?;
        Ok(CommitOutcome {
            changed: if commit.is_some() {
                changed
            } else {
                Vec::new()
            },
            commit,
            failed,
        })
    }
}

fn is_rejected(message: &str) -> bool {
    [
        "non-fast-forward",
        "fetch first",
        "[rejected]",
        "failed to update ref",
        "cannot lock ref",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Drops credentials from any URL in a message (`https://user:token@host/…`).
fn redact(message: &str, url: &str) -> String {
    let clean = crate::pypi::redact(url);
    let mut out = message.replace(url, &clean);
    if let Some((scheme, rest)) = out.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        out = format!("{scheme}://{}", &rest[userinfo.len() + 1..]);
    }
    out
}

fn io(path: &Path, source: std::io::Error) -> SinkError {
    SinkError::Io {
        context: path.display().to_string(),
        source,
    }
}

impl From<ToolError> for SinkError {
    fn from(e: ToolError) -> Self {
        SinkError::Git(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_rejections_recognised() {
        let m = redact(
            "fatal: unable to access 'https://u:ghp_x@github.com/o/r.git/'",
            "https://u:ghp_x@github.com/o/r.git",
        );
        assert!(!m.contains("ghp_x"), "{m}");
        assert!(is_rejected(
            " ! [rejected]        HEAD -> main (fetch first)"
        ));
        assert!(!is_rejected("fatal: repository not found"));
    }
}
