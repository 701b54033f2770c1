//! Where manifests go: a directory (`hermit/`, the local default), a Git repository (cloned,
//! committed and pushed with the `git` CLI), or a GitHub repository through the REST API.
//!
//! Every sink renders on top of what is committed *now*: the caller's `render` gets the current
//! text and returns the new one, so a concurrent commit is merged, never overwritten, and the
//! rules of `hermit::render` (never drop a version, digests must agree) hold on every retry.

mod any;
pub mod git;
pub mod github;

pub use any::{AnySink, SinkSettings, parse_author};

use std::path::PathBuf;

use pep440_rs::Version;

use crate::hermit::{self, CompleteVersion, ManifestInput};
use crate::names::PackageName;
use crate::spec::PackageSpec;

/// A manifest to write, and the versions it adds (for the commit message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub added: Vec<Version>,
}

/// Gets a package's committed manifest text (if any) and returns what it should be: `Ok(None)`
/// leaves it as it is; `Err` reports the package and leaves it as it is.
pub type Render<'a> =
    dyn Fn(&PackageName, Option<&str>) -> Result<Option<Rendered>, String> + Send + Sync + 'a;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Packages whose manifest changed, with the versions added.
    pub changed: Vec<(PackageName, Vec<Version>)>,
    /// The commit made, when the sink makes commits.
    pub commit: Option<String>,
    /// Packages left as they are, and why.
    pub failed: Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The settings cannot work (said before anything is done).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Git(String),
    #[error("{0}")]
    GitHub(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl From<crate::github::ApiError> for SinkError {
    fn from(e: crate::github::ApiError) -> Self {
        SinkError::GitHub(e.to_string())
    }
}

/// A place manifests are committed to.
pub trait ManifestSink: Send + Sync {
    /// Renders the manifests of `packages` on top of the committed ones and writes the changed
    /// ones in one commit (no commit when nothing changed).
    fn commit(
        &self,
        packages: &[PackageName],
        render: &Render<'_>,
    ) -> impl Future<Output = Result<CommitOutcome, SinkError>> + Send;
}

/// A [`ManifestSink`] behind a pointer: the controller picks a sink per resource at run time.
pub trait DynSink: Send + Sync {
    fn commit_boxed<'a>(
        &'a self,
        packages: &'a [PackageName],
        render: &'a Render<'a>,
    ) -> futures::future::BoxFuture<'a, Result<CommitOutcome, SinkError>>;
}

impl<K: ManifestSink> DynSink for K {
    fn commit_boxed<'a>(
        &'a self,
        packages: &'a [PackageName],
        render: &'a Render<'a>,
    ) -> futures::future::BoxFuture<'a, Result<CommitOutcome, SinkError>> {
        Box::pin(self.commit(packages, render))
    }
}

/// A package's manifest rendered over the committed `current` text with the `complete`
/// versions, each on the platforms it has: `None` when there is nothing to write (no manifest
/// yet and nothing complete). A listed version that gains a platform changes the text but is
/// not "added".
pub fn render_package(
    spec: &PackageSpec,
    source: &str,
    repository: Option<&str>,
    complete: &[CompleteVersion],
    current: Option<&str>,
) -> Result<Option<Rendered>, String> {
    if complete.is_empty() && current.is_none() {
        return Ok(None);
    }
    let existing = current
        .map(hermit::read)
        .transpose()
        .map_err(|e| e.to_string())?;
    let input = ManifestInput {
        spec,
        source,
        repository,
        complete,
        existing: existing.as_ref(),
    };
    let text = hermit::render(&input).map_err(|e| e.to_string())?;
    let listed = existing.map(|e| e.versions).unwrap_or_default();
    let platforms = spec.platforms();
    // `render` skips a version with none of the config's platforms; so does the message.
    let added = complete
        .iter()
        .filter(|c| c.sha256.keys().any(|p| platforms.contains(p)))
        .map(|c| c.version.clone())
        .filter(|v| !listed.contains_key(v))
        .collect();
    Ok(Some(Rendered { text, added }))
}

/// `hermit: aider-chat 0.86.0, 0.86.1; black 25.1.0 [skip ci]`
pub fn commit_message(changed: &[(PackageName, Vec<Version>)]) -> String {
    let parts: Vec<String> = changed
        .iter()
        .map(|(p, versions)| {
            if versions.is_empty() {
                p.to_string()
            } else {
                let v: Vec<String> = versions.iter().map(ToString::to_string).collect();
                format!("{p} {}", v.join(", "))
            }
        })
        .collect();
    format!("hermit: {} [skip ci]", parts.join("; "))
}

/// Packages left as they are, and why.
pub type Failed = Vec<(PackageName, String)>;

/// Runs `render` for each package over `read`'s current text; collects what changed.
pub(crate) fn render_all(
    packages: &[PackageName],
    render: &Render<'_>,
    mut read: impl FnMut(&PackageName) -> Result<Option<String>, SinkError>,
) -> Result<(Vec<(PackageName, Rendered)>, Failed), SinkError> {
    let (mut changed, mut failed) = (Vec::new(), Vec::new());
    for package in packages {
        let current = read(package)?;
        match render(package, current.as_deref()) {
            Ok(Some(r)) if current.as_deref() != Some(r.text.as_str()) => {
                changed.push((package.clone(), r))
            }
            Ok(_) => {}
            Err(e) => failed.push((package.clone(), e)),
        }
    }
    Ok((changed, failed))
}

/// Manifests in a directory, written in place (the local default, `hermit/`).
pub struct DirSink {
    pub dir: PathBuf,
}

impl ManifestSink for DirSink {
    async fn commit(
        &self,
        packages: &[PackageName],
        render: &Render<'_>,
    ) -> Result<CommitOutcome, SinkError> {
        let path = |p: &PackageName| self.dir.join(crate::hermit::file_name(p));
        let (changed, failed) = render_all(packages, render, |p| read_optional(&path(p)))?;
        for (package, r) in &changed {
            crate::release::dir::atomic_write(&path(package), |f| {
                std::io::Write::write_all(f, r.text.as_bytes())
            })
            .map_err(|e| SinkError::Io {
                context: path(package).display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        Ok(CommitOutcome {
            changed: changed.into_iter().map(|(p, r)| (p, r.added)).collect(),
            commit: None,
            failed,
        })
    }
}

pub(crate) fn read_optional(path: &std::path::Path) -> Result<Option<String>, SinkError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SinkError::Io {
            context: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_messages_list_packages_and_versions() {
        let p = |n: &str| PackageName::new(n).unwrap();
        let v = |s: &str| s.parse::<Version>().unwrap();
        let msg = commit_message(&[
            (p("aider-chat"), vec![v("0.86.0"), v("0.86.1")]),
            (p("black"), vec![]),
        ]);
        assert_eq!(msg, "hermit: aider-chat 0.86.0, 0.86.1; black [skip ci]");
    }

    #[tokio::test]
    async fn a_directory_sink_writes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink {
            dir: dir.path().to_owned(),
        };
        let pkgs = [
            PackageName::new("a").unwrap(),
            PackageName::new("b").unwrap(),
        ];
        std::fs::write(dir.path().join("b.hcl"), "same").unwrap();
        let render = |p: &PackageName, _: Option<&str>| -> Result<Option<Rendered>, String> {
            Ok(Some(Rendered {
                text: if p.as_str() == "a" {
                    "new".into()
                } else {
                    "same".into()
                },
                added: vec![],
            }))
        };
        let out = sink.commit(&pkgs, &render).await.unwrap();
        assert_eq!(out.changed.len(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.hcl")).unwrap(),
            "new"
        );
        // Hermit, or a web server, may read them as another user.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("a.hcl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
