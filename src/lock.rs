//! The lock of a version, owned by hermit-pex: `<package>==<version>` plus the config's extra
//! packages resolved once, by uv, for the version's python and every platform, into a PEP 751
//! `pylock.toml` with hashes (cached by its inputs); then, in our code and before anything is
//! built, each platform's files chosen by its tag priority (or the platform found missing,
//! naming the distribution), purity decided from what was chosen, each wheel fetched once by
//! digest, and the launchers taken from the console scripts of every locked distribution.
//!
//! - `uv`: the pinned uv and its `pip compile` command line.
//! - `pylock`: the lock file's model (parse and check).
//! - `wheel_name`: wheel file names and their tags.
//! - `choose`: per-platform choice and purity (pure functions).
//! - `fetch`: files into the cache by digest.
//! - `dist_info`, `binaries`: console scripts and the launchers.
//! - `record`: what the build info records of it (a leaf).

pub mod binaries;
pub mod choose;
pub mod dist_info;
pub mod fetch;
pub mod pylock;
pub mod record;
pub mod uv;
pub mod wheel_name;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pep440_rs::Version;
use sha2::{Digest, Sha256};

pub use binaries::{Binaries, BinariesError, Scripts};
pub use choose::{Choices, Chosen, Missing, Target, choose_all};
pub use fetch::{FetchError, Fetcher};
pub use pylock::{Pylock, PylockError};
pub use record::{ChosenFile, LockFormat, PlatformLock};
pub use uv::{UV_VERSION, Uv};

use crate::names::{BinaryName, PackageName, Platform, PythonMinor};
use crate::pypi::Indexes;
use crate::tools::{self, ToolError};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "requirements[{index}] cannot be locked: it must start with a project name and hold no control characters"
    )]
    Requirement { index: usize },
    /// A direct reference (`name @ URL`) where the operator did not allow them.
    #[error("extra_packages[{extra}]: {}", crate::spec::DIRECT_REFERENCE_REFUSED)]
    DirectReference { extra: usize },
    #[error("cannot install uv {UV_VERSION}: {0}")]
    InstallUv(String),
    #[error("resolving {requirements} for python {python} failed: {source}")]
    Resolve {
        requirements: String,
        python: PythonMinor,
        source: ToolError,
    },
    #[error("{path}: {source}")]
    Invalid { path: String, source: PylockError },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    DistInfo(#[from] dist_info::DistInfoError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Requirements as a message shows them: a direct reference's URL without its
/// `user:password@` (a token typed into `name @ https://user:TOKEN@host/…`).
pub fn shown_requirements(requirements: &[String]) -> String {
    requirements
        .iter()
        .map(|r| shown_requirement(r))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shown_requirement(r: &str) -> String {
    if !crate::spec::is_direct_reference(r) {
        return r.to_owned();
    }
    let Some((name, rest)) = r.split_once('@') else {
        return r.to_owned();
    };
    let url = rest.trim_start();
    let space = &rest[..rest.len() - url.len()];
    let end = url.find(char::is_whitespace).unwrap_or(url.len());
    format!(
        "{name}@{space}{}{}",
        crate::pypi::redact(&url[..end]),
        &url[end..]
    )
}

/// What to lock.
#[derive(Debug, Clone, Copy)]
pub struct LockRequest<'a> {
    pub package: &'a PackageName,
    pub version: &'a Version,
    pub python: PythonMinor,
    /// `<package>==<version>` and the config's extra packages (checked by the spec already;
    /// checked again here, since each becomes a line of uv's requirements file).
    pub requirements: &'a [String],
    /// A Git source's own wheel: uv finds it through `--find-links` on its directory.
    pub project_wheel: Option<&'a Path>,
}

/// Where and how locks are made.
#[derive(Debug, Clone)]
pub struct LockSettings {
    pub uv: Uv,
    /// The primary index first; credentials reach uv through the netrc file only.
    pub indexes: Indexes,
    /// Locks under `locks/<package>/<version>/`, uv's cache under `uv/`.
    pub cache_dir: PathBuf,
    pub timeout: Duration,
}

/// A lock file and what it says.
#[derive(Debug, Clone)]
pub struct Locked {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub pylock: Pylock,
}

/// The lock of `req`, from the cache while its inputs (requirements, python, indexes, uv's
/// version, the project's wheel) are unchanged.
pub async fn lock(req: &LockRequest<'_>, settings: &LockSettings) -> Result<Locked, LockError> {
    lock_as(req, settings, false).await
}

/// The lock of `req` resolved afresh (uv revalidates every index page), replacing the cached
/// one: a retry must see what the index serves now, e.g. the wheel a platform lacked.
pub async fn relock(req: &LockRequest<'_>, settings: &LockSettings) -> Result<Locked, LockError> {
    lock_as(req, settings, true).await
}

/// A lock file from anywhere (a release's asset), checked as uv's are.
pub async fn read(path: &Path) -> Result<Locked, LockError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || read_blocking(&path))
        .await
        .expect("reading a lock does not panic")
}

fn read_blocking(path: &Path) -> Result<Locked, LockError> {
    let bytes = std::fs::read(path)?;
    let (sha256, size) = (hex::encode(Sha256::digest(&bytes)), bytes.len() as u64);
    let text = String::from_utf8(bytes).map_err(|_| LockError::Invalid {
        path: path.display().to_string(),
        source: PylockError::Syntax {
            line: 0,
            reason: "not UTF-8".into(),
        },
    })?;
    let pylock = Pylock::parse(&text).map_err(|source| LockError::Invalid {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Locked {
        path: path.to_owned(),
        sha256,
        size,
        pylock,
    })
}

async fn lock_as(
    req: &LockRequest<'_>,
    settings: &LockSettings,
    fresh: bool,
) -> Result<Locked, LockError> {
    for (index, r) in req.requirements.iter().enumerate() {
        if !r.starts_with(|c: char| c.is_ascii_alphanumeric()) || r.chars().any(char::is_control) {
            return Err(LockError::Requirement { index });
        }
        // The last line of defence for `name @ file:///…`: nothing is resolved from it. (The
        // first requirement is the package's own, `name==version`.)
        if !settings.indexes.direct_references_allowed() && crate::spec::is_direct_reference(r) {
            return Err(LockError::DirectReference {
                extra: index.saturating_sub(1),
            });
        }
    }
    let wheel_digest = match req.project_wheel {
        Some(w) => {
            let w = w.to_owned();
            tokio::task::spawn_blocking(move || sha256_file(&w))
                .await
                .expect("hashing does not panic")?
        }
        None => String::new(),
    };
    let dir = settings
        .cache_dir
        .join("locks")
        .join(req.package.as_str())
        .join(req.version.to_string());
    tokio::fs::create_dir_all(&dir).await?;
    let key = input_key(&[
        &req.requirements.join("\n"),
        &req.python.to_string(),
        &settings.indexes.urls().join(" "),
        UV_VERSION,
        &wheel_digest,
    ]);
    let path = dir.join(format!("pylock-{}.toml", &key[..12]));
    if fresh || !tokio::fs::try_exists(&path).await? {
        resolve(req, settings, &dir, &path, fresh).await?;
    }
    read(&path).await
}

/// Runs uv into a private temporary directory beside the cached lock, checks what it wrote,
/// and renames it into place (a concurrent run locking the same inputs writes the same bytes).
async fn resolve(
    req: &LockRequest<'_>,
    settings: &LockSettings,
    dir: &Path,
    path: &Path,
    fresh: bool,
) -> Result<(), LockError> {
    let work = tempfile::Builder::new().prefix(".uv-").tempdir_in(dir)?;
    let requirements = work.path().join("requirements.in");
    let mut lines = req.requirements.join("\n");
    lines.push('\n');
    tokio::fs::write(&requirements, lines).await?;
    let output = work.path().join("pylock.toml");
    let constraints = work.path().join("constraints.txt");
    let interpreter = tools::find_python(req.python).await;
    // Pins of yanked releases a dependency asks for exactly, added one round at a time (the
    // next may show only once the first is allowed).
    let mut yanked: Vec<String> = Vec::new();
    loop {
        if !yanked.is_empty() {
            tokio::fs::write(&constraints, yanked.join("\n") + "\n").await?;
        }
        let compile = uv::Compile {
            requirements: &requirements,
            output: &output,
            python: req.python,
            interpreter: interpreter.as_deref(),
            indexes: &settings.indexes,
            constraints: (!yanked.is_empty()).then_some(constraints.as_path()),
            find_links: req.project_wheel.and_then(Path::parent),
            cache_dir: &settings.cache_dir.join("uv"),
            refresh: fresh,
        };
        match settings.uv.compile(&compile, settings.timeout).await {
            Ok(()) => break,
            Err(source) => {
                let more: Vec<String> = match &source {
                    ToolError::Failed { output, .. } if yanked.len() < MAX_YANKED => {
                        uv::yanked_pins(output)
                            .into_iter()
                            .filter(|p| !yanked.contains(p))
                            .collect()
                    }
                    _ => Vec::new(),
                };
                if more.is_empty() {
                    return Err(LockError::Resolve {
                        requirements: shown_requirements(req.requirements),
                        python: req.python,
                        source,
                    });
                }
                tracing::info!(pins = ?more, "allowing yanked releases a dependency pins exactly");
                yanked.extend(more);
            }
        }
    }
    read(&output).await?;
    tokio::fs::rename(&output, path).await?;
    Ok(())
}

/// Yanked releases allowed for one lock, at most: each costs a uv run.
const MAX_YANKED: usize = 8;

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn input_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// What is wanted of a lock: the version's platforms and configured binaries.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub package: &'a PackageName,
    pub version: &'a Version,
    pub python: PythonMinor,
    /// The platforms the config asks for.
    pub platforms: &'a [Platform],
    /// Those whose build runs on the platform itself and may build an sdist.
    pub native: &'a [Platform],
    /// The configured binaries; empty: the defaults.
    pub binaries: &'a [BinaryName],
}

/// What a lock decided for a version.
#[derive(Debug, Clone)]
pub struct Decision {
    pub choices: Choices,
    /// One PEX serves every platform (`Choices::pure`).
    pub pure: bool,
    pub scripts: Scripts,
    /// The launchers and where each command comes from; `NotYetKnown` when that depends on a
    /// distribution locked as an sdist only (the build reads the scripts from what it built),
    /// `Unknown`/`None` a config that cannot be built.
    pub binaries: Result<Binaries, BinariesError>,
}

impl Decision {
    /// Per platform, its files or why it cannot exist: the build info's `platforms`.
    pub fn platform_record(&self) -> std::collections::BTreeMap<Platform, PlatformLock> {
        self.choices.record()
    }
}

/// Chooses every wanted platform's files, decides purity, and reads the console scripts of
/// every distribution a wanted platform installs (one wheel of each, fetched into the cache)
/// to decide the launchers. The platforms' own wheels are fetched by their builds
/// (`Fetcher::fetch_all` of `choices.files(platform)`), on whichever machine builds them.
pub async fn decide(
    locked: &Locked,
    wanted: &Wanted<'_>,
    fetcher: &Fetcher,
) -> Result<Decision, LockError> {
    let choices = choose_all(
        &locked.pylock,
        wanted.platforms,
        wanted.python,
        wanted.native,
    );
    let (sources, unread) = binaries::script_sources(&locked.pylock, &choices);
    let paths = fetcher.fetch_all(&sources).await?;
    let wheels: Vec<(pylock::File, PathBuf)> = sources
        .into_iter()
        .map(|f| {
            let p = paths[&f.sha256].clone();
            (f, p)
        })
        .collect();
    let environments: Vec<_> = wanted
        .platforms
        .iter()
        .map(|p| choose::marker_environment(*p, wanted.python))
        .collect();
    let top = wanted.package.clone();
    let scripts = tokio::task::spawn_blocking(move || {
        binaries::read_scripts(&top, &wheels, unread, &environments)
    })
    .await
    .expect("reading wheels does not panic")?;
    let binaries = binaries::binaries(wanted.package, wanted.version, wanted.binaries, &scripts);
    Ok(Decision {
        pure: choices.pure(),
        choices,
        scripts,
        binaries,
    })
}

/// The release asset holding a version's pylock (PEP 751: `pylock.<name>.toml`, the name
/// without dots, which a normalised project name never has).
pub fn asset_name(package: &PackageName) -> String {
    format!("pylock.{package}.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_shown_without_credentials() {
        let shown = shown_requirements(&[
            "x==1".into(),
            "a @ https://u:s3cret@h.example/a.whl ; python_version > '3'".into(),
            "b@https://t0ken@h.example/b.whl".into(),
            "c>=1; os_name == 'u:p@x'".into(),
        ]);
        assert_eq!(
            shown,
            "x==1 a @ https://h.example/a.whl ; python_version > '3' b@https://h.example/b.whl c>=1; os_name == 'u:p@x'"
        );
    }
}
