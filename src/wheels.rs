//! Wheels as a product: once a version is published (its test passed), the wheels it holds
//! are put where pip finds them.
//!
//! - [`WheelIndex`]: a static PEP 503 index (pages in [`page`], files in [`tree`]) in a
//!   directory or committed to a Git repository. What goes in: every Git-source version's own
//!   wheel (`LockRecord.wheel`, a release asset), and with `locked` every wheel a published
//!   version's pylock chose for a platform, so its environment can be rebuilt if files vanish
//!   upstream. A listed file is never changed or dropped.
//! - [`upload`]: the Git-source wheel uploaded to a private index through the upload API twine
//!   uses, idempotently.
//!
//! [`offered`] decides, from the releases alone, which wheels a package's published versions
//! offer; both read it.

pub mod page;
pub mod tree;
pub mod upload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pep440_rs::Version;

use crate::gitops::SinkError;
use crate::gitops::git::{GitSink, Staged};
use crate::lock::Fetcher;
use crate::names::PackageName;
use crate::plan::Tried;
use crate::release::{Release, ReleaseState, ReleaseStore};
use crate::spec::PackageSpec;
pub use page::ProjectList;
pub use tree::TreeChange;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{path}: not a list this index wrote ({message}); fix or remove it by hand")]
    Corrupt { path: String, message: String },
    #[error("{file}: {message}")]
    Wheel { file: String, message: String },
    #[error("{file}: its sha256 is {actual}, the release records {expected}: not listed")]
    Digest {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("the index repository: {0}")]
    Git(#[from] SinkError),
}

/// A file listed already with another digest: refused, the listed one stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub project: PackageName,
    pub filename: String,
    /// The digest the index has.
    pub listed: String,
    /// The digest of the file that was to go in.
    pub new: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the index lists it with sha256 {}, this release's is {}: a listed file is never changed (publish a new version)",
            self.filename, self.listed, self.new
        )
    }
}

/// Where a listed file is fetched from by pip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Stored beside its page (with its `.metadata`).
    Stored,
    /// At this absolute URL (a release asset); no `.metadata` is served for it.
    At(String),
}

/// A file to list: its project, name and digest, a local copy, and where pip gets it.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub project: PackageName,
    pub filename: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub link: Link,
}

/// How a target lists a Git-source wheel: stored in the index, or linked at its release
/// asset. Locked wheels are always stored: keeping them is what they are listed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Links {
    #[default]
    Stored,
    ReleaseAssets,
}

/// Where the pages are.
pub enum Target {
    /// This directory is the `simple/` root.
    Dir(PathBuf),
    /// Committed to a repository (its sink's `dir` is the `simple/` root), `[skip ci]`, one
    /// commit per change, retried on a moved branch.
    Git(GitSink),
}

/// A wheel index committed to a Git repository, as the flags (`--wheel-index-repo`, ...)
/// or the chart's `wheelIndex` name it.
#[derive(Debug, Clone)]
pub struct RepoIndex {
    /// Any URL git takes; credentials as for the manifest repository.
    pub url: String,
    pub branch: String,
    /// The `simple/` directory inside the repository.
    pub path: String,
    pub links: Links,
    pub locked: bool,
}

impl RepoIndex {
    /// The index, checked out under `cache_dir/git/` (a checkout of its own, never the
    /// manifests' working tree). A bad path or author fails here, naming the flag.
    pub fn open(&self, author: &str, cache_dir: &Path) -> Result<WheelIndex, SinkError> {
        if !crate::spec::rules::is_relative_inside(&self.path) {
            return Err(SinkError::Invalid(
                "--wheel-index-path: write a path inside the repository (no leading /, no ..)"
                    .to_owned(),
            ));
        }
        let (author_name, author_email) = crate::gitops::parse_author(author)?;
        let dir = self.path.trim_matches('/').to_owned();
        let key =
            crate::digest::sha256_hex(format!("wheels\n{}\n{}\n{dir}", self.url, self.branch));
        let sink = GitSink::new(crate::gitops::git::GitSinkConfig {
            url: self.url.clone(),
            branch: self.branch.clone(),
            dir,
            author_name,
            author_email,
            checkout: cache_dir.join("git").join(&key[..16]),
            attempts: 5,
        });
        Ok(WheelIndex::new(Target::Git(sink))
            .with_links(self.links)
            .with_locked(self.locked))
    }
}

/// A static PEP 503 index of the wheels hermit-pex publishes.
pub struct WheelIndex {
    target: Target,
    pub links: Links,
    /// Also every wheel a published version locked.
    pub locked: bool,
    /// (file name, sha256) known to be listed: a steady state asks the target nothing.
    known: Mutex<BTreeSet<(String, String)>>,
}

/// What indexing a package came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexOutcome {
    /// (project, file name) listed by this run.
    pub added: Vec<(PackageName, String)>,
    pub conflicts: Vec<Conflict>,
    /// Files that could not be fetched or read, and why (tried again next time).
    pub failed: Vec<(String, String)>,
    /// The commit made (a Git target).
    pub commit: Option<String>,
}

impl WheelIndex {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            links: Links::Stored,
            locked: false,
            known: Mutex::default(),
        }
    }

    pub fn with_links(mut self, links: Links) -> Self {
        self.links = links;
        self
    }

    pub fn with_locked(mut self, locked: bool) -> Self {
        self.locked = locked;
        self
    }

    /// Where the index is, for messages.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Dir(d) => d.display().to_string(),
            Target::Git(g) => format!("{} ({}, {})", g.url(), g.branch(), display_dir(g.dir())),
        }
    }

    fn is_known(&self, filename: &str, sha256: &str) -> bool {
        self.known
            .lock()
            .expect("not poisoned")
            .contains(&(filename.to_owned(), sha256.to_owned()))
    }

    fn remember(&self, files: impl IntoIterator<Item = (String, String)>) {
        self.known.lock().expect("not poisoned").extend(files);
    }

    /// The lists of `projects` as the target has them now.
    pub async fn listed(
        &self,
        projects: Vec<PackageName>,
    ) -> Result<BTreeMap<PackageName, ProjectList>, IndexError> {
        let read = move |root: PathBuf| {
            let mut out = BTreeMap::new();
            for p in projects {
                if let Some(list) = tree::read_list(&root, &p)? {
                    out.insert(p, list);
                }
            }
            Ok::<_, IndexError>(out)
        };
        let lists = match &self.target {
            Target::Dir(root) => {
                let root = root.clone();
                crate::blocking::run(move || read(root)).await?
            }
            Target::Git(sink) => {
                // Read while the checkout is at the branch head (reads are small: no pool).
                sink.synced(read).await??
            }
        };
        self.remember(lists.values().flat_map(|l| {
            l.files
                .iter()
                .filter_map(|f| Some((f.filename.clone(), f.sha256()?.to_owned())))
        }));
        Ok(lists)
    }

    /// Lists `files`; a Git target commits what changed in one commit.
    pub async fn add(&self, files: Vec<NewFile>) -> Result<IndexOutcome, IndexError> {
        let (commit, change) = match &self.target {
            Target::Dir(root) => {
                let root = root.clone();
                let change = crate::blocking::run(move || tree::add(&root, &files)).await?;
                (None, change)
            }
            Target::Git(sink) => {
                let prefix = match sink.dir() {
                    "" => String::new(),
                    d => format!("{}/", d.trim_end_matches('/')),
                };
                sink.transact(|root| {
                    let files = files.clone();
                    let prefix = prefix.clone();
                    async move {
                        let change = crate::blocking::run(move || tree::add(&root, &files))
                            .await
                            .map_err(|e| SinkError::Invalid(e.to_string()))?;
                        Ok(Staged {
                            paths: change
                                .written
                                .iter()
                                .map(|p| format!("{prefix}{p}"))
                                .collect(),
                            message: commit_message(&change.added),
                            value: change,
                        })
                    }
                })
                .await?
            }
        };
        Ok(IndexOutcome {
            added: change.added,
            conflicts: change.conflicts,
            failed: Vec::new(),
            commit,
        })
    }
}

fn display_dir(dir: &str) -> &str {
    if dir.is_empty() { "its root" } else { dir }
}

/// `wheels: hello_tool-1.0.0-py3-none-any.whl, ... [skip ci]`
pub fn commit_message(added: &[(PackageName, String)]) -> String {
    let names: Vec<&str> = added.iter().map(|(_, f)| f.as_str()).collect();
    if names.is_empty() {
        return "wheels: pages [skip ci]".into();
    }
    format!("wheels: {} [skip ci]", names.join(", "))
}

/// Where a wheel a published version offers is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An asset of the release (a Git source's own wheel).
    Asset,
    /// A file the release's pylock names, fetched by its digest.
    Locked,
}

/// A wheel a published version offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub version: Version,
    /// The distribution the file is of (the package, or one of its locked dependencies).
    pub project: PackageName,
    pub filename: String,
    pub sha256: String,
    pub origin: Origin,
    /// The release it comes with.
    pub release: crate::release::ReleaseId,
}

/// The wheels the published, tested versions of `spec` offer: each one's Git-source wheel,
/// and with `locked` each wheel a platform of its pylock chose. A version whose test did not
/// pass (or is unknown) offers nothing: nothing reaches users untested.
pub fn offered(spec: &PackageSpec, releases: &[Release], locked: bool) -> Vec<Offered> {
    let tested: BTreeSet<Version> = crate::plan::listing(spec, releases)
        .versions
        .into_iter()
        .filter(|l| l.tried == Tried::Passed)
        .map(|l| l.complete.version)
        .collect();
    let mut out: Vec<Offered> = Vec::new();
    for r in releases {
        if r.state != ReleaseState::Published || !tested.contains(&r.version) {
            continue;
        }
        let Some(lock) = r.info.as_ref().and_then(|i| i.locked.as_ref()) else {
            continue;
        };
        if let Some(w) = &lock.wheel
            && r.asset_named(&w.asset).is_some_and(|a| a.is_present())
        {
            out.push(Offered {
                version: r.version.clone(),
                project: spec.package.clone(),
                filename: w.asset.clone(),
                sha256: w.sha256.clone(),
                origin: Origin::Asset,
                release: r.id.clone(),
            });
        }
        if !locked {
            continue;
        }
        for platform_lock in lock.platforms.values() {
            let crate::lock::PlatformLock::Files(files) = platform_lock else {
                continue;
            };
            for f in files.iter().filter(|f| f.name.ends_with(".whl")) {
                // The project's own wheel is the asset above (a lock names it by path).
                if lock.wheel.as_ref().is_some_and(|w| w.sha256 == f.sha256) {
                    continue;
                }
                let Some(project) = wheel_project(&f.name) else {
                    continue;
                };
                if out
                    .iter()
                    .any(|o| o.filename == f.name && o.sha256 == f.sha256)
                {
                    continue;
                }
                out.push(Offered {
                    version: r.version.clone(),
                    project,
                    filename: f.name.clone(),
                    sha256: f.sha256.clone(),
                    origin: Origin::Locked,
                    release: r.id.clone(),
                });
            }
        }
    }
    out
}

/// The project a wheel file name is of (`Foo_Bar-1.0-py3-none-any.whl` is `foo-bar`).
pub fn wheel_project(filename: &str) -> Option<PackageName> {
    let wheel = crate::lock::wheel_name::WheelName::parse(filename).ok()?;
    PackageName::new(&wheel.distribution).ok()
}

/// The download URL of `asset` in the release tagged `tag`, from the store's source template
/// (`<base>/<tag>/<package>-${os}-${arch}.tar.gz`).
pub fn asset_url(template: &str, tag: &str, asset: &str) -> Option<String> {
    let (dir, _) = template.rsplit_once('/')?;
    let (base, _) = dir.rsplit_once('/')?;
    Some(format!(
        "{base}/{}/{}",
        page::relative_url(tag),
        page::relative_url(asset)
    ))
}

/// Reads what the index needs of published releases: their assets (from the store) and the
/// files their locks name (through the fetcher, by digest).
pub struct Sources<'a, S> {
    pub store: &'a S,
    /// For locked wheels; `None`: they are not fetched (nor listed).
    pub fetcher: Option<&'a Fetcher>,
    /// Scratch space for fetched assets and lock files.
    pub scratch: &'a Path,
}

impl<S: ReleaseStore> Sources<'_, S> {
    /// A local copy of `o`, checked against its digest; and its size.
    pub async fn fetch(
        &self,
        package: &PackageName,
        releases: &[Release],
        o: &Offered,
    ) -> Result<(PathBuf, u64), String> {
        let release = releases
            .iter()
            .find(|r| r.id == o.release)
            .ok_or_else(|| format!("the release {} is gone", o.release))?;
        let dir = self.scratch.join(&o.sha256);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = match o.origin {
            Origin::Asset => self
                .store
                .fetch(release, &o.filename, &dir.join(&o.filename))
                .await
                .map_err(|e| e.to_string())?,
            Origin::Locked => {
                let fetcher = self.fetcher.ok_or("no fetcher for locked wheels")?;
                let name = release
                    .info
                    .as_ref()
                    .and_then(|i| i.locked.as_ref())
                    .map_or_else(|| crate::lock::asset_name(package), |l| l.asset(package));
                let lock_path = self
                    .store
                    .fetch(
                        release,
                        &name,
                        &self.scratch.join(format!("{}-{name}", o.release)),
                    )
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                let locked = crate::lock::read(&lock_path)
                    .await
                    .map_err(|e| e.to_string())?;
                let file = locked
                    .pylock
                    .packages
                    .iter()
                    .flat_map(|p| p.wheels.iter().map(|w| &w.file))
                    .find(|f| f.sha256 == o.sha256)
                    .ok_or_else(|| format!("{name} names no file with sha256 {}", o.sha256))?;
                fetcher.fetch(file).await.map_err(|e| e.to_string())?
            }
        };
        let hashed = path.clone();
        let (size, sha256) = crate::blocking::run(move || crate::digest::sha256_file(&hashed))
            .await
            .map_err(|e| e.to_string())?;
        if sha256 != o.sha256 {
            return Err(format!(
                "its sha256 is {sha256}, the release records {}",
                o.sha256
            ));
        }
        Ok((path, size))
    }
}

/// Puts the wheels `spec`'s published versions offer into `index`: only those it does not
/// list yet are fetched; a name listed with another digest is a conflict, never replaced.
pub async fn index_package<S: ReleaseStore>(
    index: &WheelIndex,
    sources: &Sources<'_, S>,
    spec: &PackageSpec,
    releases: &[Release],
) -> Result<IndexOutcome, IndexError> {
    let offered: Vec<Offered> = offered(spec, releases, index.locked)
        .into_iter()
        .filter(|o| o.origin == Origin::Asset || sources.fetcher.is_some())
        .filter(|o| !index.is_known(&o.filename, &o.sha256))
        .collect();
    let mut outcome = IndexOutcome::default();
    if offered.is_empty() {
        return Ok(outcome);
    }
    let projects: BTreeSet<PackageName> = offered.iter().map(|o| o.project.clone()).collect();
    let lists = index.listed(projects.into_iter().collect()).await?;
    let template = sources.store.source_template(&spec.package);
    let mut files = Vec::new();
    let mut digests = Vec::new();
    for o in &offered {
        if let Some(listed) = lists.get(&o.project).and_then(|l| l.get(&o.filename)) {
            if listed.sha256() != Some(o.sha256.as_str()) {
                outcome.conflicts.push(Conflict {
                    project: o.project.clone(),
                    filename: o.filename.clone(),
                    listed: listed.sha256().unwrap_or_default().to_owned(),
                    new: o.sha256.clone(),
                });
            }
            continue;
        }
        match sources.fetch(&spec.package, releases, o).await {
            Ok((path, size)) => {
                let link = match (&o.origin, index.links) {
                    (Origin::Asset, Links::ReleaseAssets) => {
                        let tag = releases
                            .iter()
                            .find(|r| r.id == o.release)
                            .map(|r| r.tag.clone())
                            .unwrap_or_default();
                        match asset_url(&template, &tag, &o.filename) {
                            Some(url) => Link::At(url),
                            None => Link::Stored,
                        }
                    }
                    _ => Link::Stored,
                };
                digests.push((o.filename.clone(), o.sha256.clone()));
                files.push(NewFile {
                    project: o.project.clone(),
                    filename: o.filename.clone(),
                    path,
                    sha256: o.sha256.clone(),
                    size,
                    link,
                });
            }
            Err(why) => outcome.failed.push((o.filename.clone(), why)),
        }
    }
    if files.is_empty() {
        return Ok(outcome);
    }
    let added = index.add(files).await?;
    let refused: BTreeSet<&str> = added
        .conflicts
        .iter()
        .map(|c| c.filename.as_str())
        .collect();
    index.remember(
        digests
            .into_iter()
            .filter(|(f, _)| !refused.contains(f.as_str())),
    );
    outcome.added = added.added;
    outcome.conflicts.extend(added.conflicts);
    outcome.commit = added.commit;
    Ok(outcome)
}

#[cfg(test)]
mod tests;
