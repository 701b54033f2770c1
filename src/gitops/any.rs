//! The sink a command's settings choose: a directory, a Git repository, or a GitHub
//! repository through its API.

use std::path::PathBuf;

use super::git::{GitSink, GitSinkConfig};
use super::github::{GitHubSink, GitHubSinkConfig};
use super::{CommitOutcome, DirSink, ManifestSink, Render, SinkError};
use crate::names::PackageName;

/// Where manifests go, as plain settings (the command line and the controller fill them in).
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// A Git URL to commit to (any URL git takes).
    pub git: Option<String>,
    /// A GitHub `OWNER/REPO` to commit to through the API (token in `GITHUB_TOKEN`).
    pub github: Option<String>,
    pub branch: String,
    /// Directory in the repository; empty: its root (where Hermit reads a git source).
    pub dir: String,
    /// `Name <email>` of the commits.
    pub author: String,
    pub github_api_url: String,
    /// Where Git checkouts are kept.
    pub cache_dir: PathBuf,
}

pub enum AnySink {
    Dir(DirSink),
    Git(GitSink),
    GitHub(GitHubSink),
}

impl AnySink {
    /// The Git or GitHub sink the settings name, if any. Bad settings (an author without an
    /// email, a directory outside the repository) fail here, before any work.
    pub fn remote(s: &SinkSettings) -> Result<Option<Self>, SinkError> {
        let invalid = |m: String| SinkError::Invalid(m);
        let (author_name, author_email) = parse_author(&s.author)?;
        if !crate::spec::rules::is_relative_inside(&s.dir) {
            return Err(invalid(
                "--manifest-dir: write a path inside the repository (no leading /, no ..)"
                    .to_owned(),
            ));
        }
        let dir = s.dir.trim_matches('/').to_owned();
        if let Some(url) = &s.git {
            // One checkout per target: two sinks never share a working tree. Credentials in
            // the URL are not part of the target (a new token keeps the checkout).
            let target = crate::source::access(url, None, None).0;
            let key = crate::digest::sha256_hex(format!("{target}\n{}\n{dir}", s.branch));
            return Ok(Some(Self::Git(GitSink::new(GitSinkConfig {
                url: url.clone(),
                branch: s.branch.clone(),
                dir,
                author_name,
                author_email,
                checkout: s.cache_dir.join("git").join(&key[..16]),
                attempts: 5,
            }))));
        }
        if let Some(repository) = &s.github {
            let (owner, repo) = crate::release::split_repository(repository).ok_or_else(|| {
                invalid(format!(
                    "--manifest-github {repository:?}: write it as OWNER/REPO"
                ))
            })?;
            let token = crate::release::github::Token::from_env()?;
            let config = GitHubSinkConfig {
                owner: owner.into(),
                repo: repo.into(),
                branch: s.branch.clone(),
                dir,
                api_url: s.github_api_url.clone(),
                author_name,
                author_email,
            };
            return Ok(Some(Self::GitHub(GitHubSink::new(config, token)?)));
        }
        Ok(None)
    }
}

/// `Name <email>` as its two parts.
pub fn parse_author(author: &str) -> Result<(String, String), SinkError> {
    author
        .rsplit_once('<')
        .map(|(n, e)| {
            (
                n.trim().to_owned(),
                e.trim_end_matches('>').trim().to_owned(),
            )
        })
        .filter(|(n, e)| !n.is_empty() && e.contains('@'))
        .ok_or_else(|| {
            SinkError::Invalid(
                "--git-author: write it as \"Name <email>\" (a name, then an email with @ in <>)"
                    .to_owned(),
            )
        })
}

impl AnySink {
    /// What the GitHub manifest sink's requests cost, for the run's last line (`None`: the
    /// sink is not GitHub's API).
    pub fn github_stats(&self) -> Option<super::github::GitHubSinkStats> {
        match self {
            AnySink::GitHub(k) => Some(k.stats()),
            AnySink::Dir(_) | AnySink::Git(_) => None,
        }
    }
}

impl ManifestSink for AnySink {
    async fn commit(
        &self,
        packages: &[PackageName],
        render: &Render<'_>,
    ) -> Result<CommitOutcome, SinkError> {
        match self {
            AnySink::Dir(k) => k.commit(packages, render).await,
            AnySink::Git(k) => k.commit(packages, render).await,
            AnySink::GitHub(k) => k.commit(packages, render).await,
        }
    }
}
