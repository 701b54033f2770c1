//! One version → one lock → one PEX per platform → one tarball per platform.
//!
//! The lock is resolved once per version and shared by its platforms. The host's platform builds
//! with a local interpreter of the version's python when there is one; every other target builds
//! from a generated complete-platform file. When every locked distribution is pure Python, one
//! PEX serves all platforms.

pub mod artifact;
pub mod complete_platform;
pub mod scripts;
pub mod tools;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pep440_rs::Version;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::names::{BinaryName, PackageName, Platform, PythonMinor};
use crate::release::VersionInputs;
pub use crate::release::{BuildInfo, LockRecord, PlatformBuild, Target, TestOutcome};
pub use tools::{PEX_OPTIONS, now};
use tools::{PIP_VERSION, Pex, ToolError};

#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub pex: Pex,
    /// The indexes pex resolves from, primary first; credentials reach pip only through the
    /// private netrc file (`NETRC`), never an argument.
    pub indexes: crate::pypi::Indexes,
    /// Kept between runs: locks (reused while their inputs are unchanged) and failure logs.
    pub cache_dir: PathBuf,
    /// This run's PEXs and tarballs; unique per run, so concurrent runs never collide.
    pub work_dir: PathBuf,
    /// PEX_ROOT shared by every build on this machine: warm rebuilds cost seconds.
    pub pex_root: PathBuf,
    pub timeout: Duration,
    /// For running a build's test before it is uploaded.
    pub test_timeout: Duration,
}

/// What to build: one version of one package, with what its config asks for it.
#[derive(Debug, Clone)]
pub struct VersionJob {
    pub package: PackageName,
    pub version: Version,
    pub inputs: VersionInputs,
}

impl VersionJob {
    pub fn new(
        spec: &crate::spec::PackageSpec,
        iv: &crate::pypi::IndexVersion,
        python: PythonMinor,
    ) -> Self {
        Self {
            package: spec.package.clone(),
            version: iv.version.clone(),
            inputs: crate::plan::inputs(spec, iv, python),
        }
    }

    pub fn python(&self) -> PythonMinor {
        self.inputs.python
    }

    pub fn requirements(&self) -> &[String] {
        &self.inputs.requirements
    }

    /// The build info a new draft of this version starts with.
    pub fn info(&self) -> BuildInfo {
        BuildInfo::new(&self.package, &self.version, self.inputs.clone())
    }

    fn dir(&self, settings: &BuildSettings) -> PathBuf {
        settings
            .work_dir
            .join(self.package.as_str())
            .join(self.version.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("resolving {requirements} for python {python} failed: {source}")]
    Lock {
        requirements: String,
        python: PythonMinor,
        source: ToolError,
    },
    /// The config names binaries the package does not have, or its test is not one of them.
    #[error("{0}")]
    Binaries(String),
    /// A Git tag whose project builds another distribution or version than the tag says.
    #[error(
        "{tag}: the tag builds {built}, not {package} {version}: fix the project's name or version, or the tag"
    )]
    TagMismatch {
        tag: String,
        built: String,
        package: PackageName,
        version: Version,
    },
    /// A requirement that is a direct reference, where the operator did not allow them.
    #[error("{0}")]
    DirectReference(String),
    /// No rebuild helps: a dependency has nothing to install for this platform.
    #[error("{message}")]
    NoWheel { platform: Platform, message: String },
    #[error("{message}")]
    Pex { platform: Platform, message: String },
    #[error("{platform}: the test failed before upload: {message}")]
    TestFailed { platform: Platform, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The resolved requirements of a version, shared by its platforms.
#[derive(Debug, Clone)]
pub struct Lock {
    pub path: PathBuf,
    /// Pinned `name==version` of every locked distribution.
    pub pins: Vec<String>,
    /// Every distribution has only `none-any` wheels: one PEX fits all platforms.
    pub pure: bool,
    pub sha256: String,
    pub size: u64,
    /// The package's console scripts, read from its wheel; `None` when the lock has only its
    /// sdist (they are read from the built PEX instead).
    pub scripts: Option<Vec<String>>,
    /// A Git source's wheel of the project, which the lock names.
    pub wheel: Option<LocalWheel>,
}

impl Lock {
    pub fn file(&self) -> LockFile {
        LockFile {
            path: self.path.clone(),
            wheel: self.wheel.clone(),
        }
    }
}

/// Resolves the version's requirements into a pex lock (reused when its inputs are unchanged).
/// `wheel`: the project's own wheel, built from its Git tag (the lock names it through the
/// path mapping [`WHEELS`], so it is found wherever the wheel is put later).
pub async fn lock(
    job: &VersionJob,
    settings: &BuildSettings,
    wheel: Option<&LocalWheel>,
) -> Result<Lock, BuildError> {
    lock_as(job, settings, None, wheel).await
}

/// A lock resolved afresh, whatever the cache holds: the index may have gained the wheel a
/// platform lacked.
pub async fn relock(
    job: &VersionJob,
    settings: &BuildSettings,
    wheel: Option<&LocalWheel>,
) -> Result<Lock, BuildError> {
    lock_as(job, settings, Some(now().to_string()), wheel).await
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

/// The path mapping a lock names a Git source's wheel by.
pub const WHEELS: &str = "HERMIT_PEX_WHEELS";

/// A project's wheel on this machine: the file, in a directory of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWheel {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl LocalWheel {
    fn dir(&self) -> &Path {
        self.path.parent().expect("wheels live in a directory")
    }

    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn mapping(&self) -> Vec<OsString> {
        let mut m = OsString::from(format!("{WHEELS}|"));
        m.push(self.dir());
        m.push("|the project's wheel, built from its Git tag");
        vec!["--path-mapping".into(), m]
    }
}

/// A lock file to build from, with the project's wheel when the lock names one.
#[derive(Debug, Clone)]
pub struct LockFile {
    pub path: PathBuf,
    pub wheel: Option<LocalWheel>,
}

/// Builds the project's wheel from its checkout (PEP 517, isolated: pex runs pip, which takes
/// the build backend from the index) and checks it is the version its tag says.
pub async fn build_wheel(
    job: &VersionJob,
    project: &Path,
    settings: &BuildSettings,
) -> Result<LocalWheel, BuildError> {
    let dir = job.dir(settings).join("project");
    std::fs::create_dir_all(&dir)?;
    let pex_path = dir.join("project.pex");
    let mut args = os(&[
        "--pip-version",
        PIP_VERSION,
        "--no-transitive",
        "--no-pre-install-wheels",
    ]);
    args.extend(index_args(settings));
    if let Some(python) = tools::find_python(job.python()).await {
        args.extend([OsString::from("--python-path"), python.into()]);
    }
    args.push(project.into());
    args.extend([OsString::from("-o"), pex_path.clone().into()]);
    tools::run(&settings.pex.pex(), &args, &env(settings), settings.timeout)
        .await
        .map_err(|source| BuildError::Lock {
            requirements: format!("the project at {}", project.display()),
            python: job.python(),
            source,
        })?;
    let wheels = dir.join("wheels");
    let path = scripts::extract_wheel(&pex_path, &wheels)?;
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut parts = name.trim_end_matches(".whl").splitn(3, '-');
    let (dist, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let same_name = crate::names::normalize(dist) == job.package.as_str();
    let same_version = version.parse::<Version>().ok().as_ref() == Some(&job.version);
    if !same_name || !same_version {
        return Err(BuildError::TagMismatch {
            tag: (job.inputs.source.as_ref()).map_or(String::new(), |s| s.tag.clone()),
            built: format!("{dist} {version}"),
            package: job.package.clone(),
            version: job.version.clone(),
        });
    }
    let (size, sha256) = artifact::sha256_file(&path)?;
    Ok(LocalWheel { path, sha256, size })
}

async fn lock_as(
    job: &VersionJob,
    settings: &BuildSettings,
    fresh: Option<String>,
    wheel: Option<&LocalWheel>,
) -> Result<Lock, BuildError> {
    let dir = settings
        .cache_dir
        .join("locks")
        .join(job.package.as_str())
        .join(job.version.to_string());
    let requirements = job.requirements();
    // The last line of defence for `name @ file:///…`: nothing is resolved from it.
    if !settings.indexes.direct_references_allowed()
        && let Some(i) = requirements
            .iter()
            .position(|r| crate::spec::is_direct_reference(r))
    {
        return Err(BuildError::DirectReference(format!(
            "extra_packages[{}]: {}",
            i.saturating_sub(1),
            crate::spec::DIRECT_REFERENCE_REFUSED
        )));
    }
    std::fs::create_dir_all(&dir)?;
    let key = input_key(&[
        &requirements.join("\n"),
        &job.python().to_string(),
        &settings.indexes.urls().join(" "),
        PIP_VERSION,
        fresh.as_deref().unwrap_or(""),
        wheel.map_or("", |w| w.sha256.as_str()),
    ]);
    let path = dir.join(format!("lock-{}.json", &key[..12]));
    if !path.exists() {
        // Written under a unique name and renamed: a concurrent run may lock the same inputs.
        let tmp = tempfile::Builder::new()
            .prefix(".lock-")
            .suffix(".json")
            .tempfile_in(&dir)?
            .into_temp_path();
        let mut args = os(&[
            "lock",
            "create",
            "--indent",
            "1",
            "--pip-version",
            PIP_VERSION,
        ]);
        args.extend(index_args(settings));
        args.push("-o".into());
        args.push(tmp.to_path_buf().into());
        args.extend(requirements.iter().map(OsString::from));
        if let Some(w) = wheel {
            args.extend([OsString::from("-f"), w.dir().into()]);
            args.extend(w.mapping());
        }
        if let Some(python) = tools::find_python(job.python()).await {
            // One universal lock serves every platform.
            args.extend(os(&[
                "--style",
                "universal",
                "--interpreter-constraint",
                &format!("CPython=={}.*", job.python()),
            ]));
            args.extend([OsString::from("--python-path"), python.into()]);
        } else {
            // No local CPython of that minor (3.14 here): pex cannot make a universal lock, so
            // it locks for each target's complete platform instead.
            let work = job.dir(settings);
            std::fs::create_dir_all(&work)?;
            args.extend(os(&["--style", "strict"]));
            for platform in Platform::ALL {
                let cp = write_complete_platform(&work, platform, job.python())?;
                args.extend([OsString::from("--complete-platform"), cp.into()]);
            }
        }
        tools::run(
            &settings.pex.pex3(),
            &args,
            &env(settings),
            settings.timeout,
        )
        .await
        .map_err(|source| BuildError::Lock {
            requirements: shown_requirements(requirements),
            python: job.python(),
            source,
        })?;
        tmp.persist(&path).map_err(|e| e.error)?;
    }
    let mut lock = read(&path, &job.package, settings, wheel).await?;
    lock.wheel = wheel.cloned();
    Ok(lock)
}

/// A lock file as a `Lock`: its pins, purity, digest and the package's console scripts (from
/// the project's own wheel when there is one here).
pub async fn read(
    path: &Path,
    package: &PackageName,
    settings: &BuildSettings,
    wheel: Option<&LocalWheel>,
) -> Result<Lock, BuildError> {
    let parsed = read_lock(path)?;
    let (size, sha256) = artifact::sha256_file(path)?;
    let scripts = match (wheel, parsed.wheel_of(package)) {
        (Some(w), _) => Some(scripts::console_scripts(std::fs::File::open(&w.path)?)?),
        (None, Some(url)) => {
            Some(scripts::from_wheel_url(&url, &settings.cache_dir, &settings.indexes).await?)
        }
        (None, None) => None,
    };
    Ok(Lock {
        path: path.to_owned(),
        pins: parsed.pins,
        pure: parsed.pure,
        sha256,
        size,
        scripts,
        wheel: None,
    })
}

/// What the lock records in the release: the launchers (the configured binaries, each checked
/// against the package's console scripts, or all of them) and the test command (which must
/// start with one of them). With only the package's sdist in the lock its scripts are not
/// known yet: the binaries stay empty and each build checks them in the PEX it made.
pub fn lock_record(job: &VersionJob, lock: &Lock) -> Result<LockRecord, BuildError> {
    let (binaries, test) = match &lock.scripts {
        Some(scripts) => {
            let binaries =
                scripts::binaries(&job.package, &job.version, &job.inputs.binaries, scripts)?;
            let test = scripts::test_command(&job.inputs.test, &binaries)?;
            (binaries, test)
        }
        None => (Vec::new(), String::new()),
    };
    Ok(LockRecord {
        sha256: lock.sha256.clone(),
        size: lock.size,
        pins: lock.pins.clone(),
        pure: lock.pure,
        binaries,
        test,
        wheel: lock
            .wheel
            .as_ref()
            .map(|w| crate::release::info::WheelRecord {
                asset: w.name(),
                sha256: w.sha256.clone(),
                size: w.size,
            }),
    })
}

/// Builds one platform's PEX from the lock and packs its tarball.
pub async fn build_platform(
    job: &VersionJob,
    lock: &LockFile,
    record: &LockRecord,
    platform: Platform,
    settings: &BuildSettings,
) -> Result<Built, BuildError> {
    let dir = job.dir(settings).join(platform.to_string());
    std::fs::create_dir_all(&dir)?;
    let pex_path = dir.join(format!("{}.pex", job.package));
    let mut args = os(&["--lock"]);
    args.push(lock.path.clone().into());
    if let Some(w) = &lock.wheel {
        args.extend(w.mapping());
    }
    args.extend(os(&["--pip-version", PIP_VERSION]));
    args.extend(index_args(settings));
    args.extend(os(PEX_OPTIONS));
    // The shebang (and the --sh-boot script's first choice) is the version's python, which
    // Hermit's runtime dependency puts on PATH.
    args.extend(os(&[
        "--python-shebang",
        &format!("/usr/bin/env python{}", job.python()),
    ]));
    let local = match Platform::host() == Some(platform) {
        true => tools::find_python(job.python()).await,
        false => None,
    };
    let target = if let Some(python) = local {
        // The interpreter constraint also guards the PEX at run time.
        args.extend(os(&[
            "--interpreter-constraint",
            &format!("CPython=={}.*", job.python()),
        ]));
        args.extend([OsString::from("--python-path"), python.into()]);
        Target::Interpreter
    } else {
        // Only the target: a local interpreter here would add the host's wheels to the PEX
        // (measured: aider-chat for darwin-arm64 grew from ~120 to 206 MB). Pure-Python sdists
        // are built by pex's own interpreter.
        let cp = write_complete_platform(&dir, platform, job.python())?;
        args.extend([OsString::from("--complete-platform"), cp.into()]);
        Target::CompletePlatform
    };
    args.extend([OsString::from("-o"), pex_path.clone().into()]);
    if let Err(e) = tools::run(&settings.pex.pex(), &args, &env(settings), settings.timeout).await {
        let log = settings
            .cache_dir
            .join("logs")
            .join(format!("{}-{}-{platform}.log", job.package, job.version));
        let _ = std::fs::create_dir_all(log.parent().expect("in the logs directory"));
        let _ = std::fs::write(&log, e.to_string());
        return Err(match explain(&e) {
            Some(Explained::NoWheel(hint)) => BuildError::NoWheel {
                platform,
                message: format!("{hint} (pex's output: {})", log.display()),
            },
            None => BuildError::Pex {
                platform,
                message: e.to_string(),
            },
        });
    }
    let (binaries, test) = if record.binaries.is_empty() {
        // The lock had only the package's sdist: its scripts are known once pex built it.
        let scripts = scripts::from_pex(&pex_path, &job.package)?;
        let binaries =
            scripts::binaries(&job.package, &job.version, &job.inputs.binaries, &scripts)?;
        let test = scripts::test_command(&job.inputs.test, &binaries)?;
        (binaries, test)
    } else {
        (record.binaries.clone(), record.test.clone())
    };
    let build = pack(job, platform, &pex_path, &binaries, target, &dir)?;
    Ok(Built {
        build,
        pex: pex_path,
        binaries,
        test,
    })
}

/// A platform built here: its tarball, the PEX in it, and what its launchers and test are.
#[derive(Debug, Clone)]
pub struct Built {
    pub build: PlatformBuild,
    pub pex: PathBuf,
    pub binaries: Vec<BinaryName>,
    pub test: String,
}

/// Packs an already built PEX for another platform (pure Python builds).
pub fn reuse_for(
    job: &VersionJob,
    built: &Built,
    platform: Platform,
    settings: &BuildSettings,
) -> Result<Built, BuildError> {
    let dir = job.dir(settings).join(platform.to_string());
    std::fs::create_dir_all(&dir)?;
    let build = pack(
        job,
        platform,
        &built.pex,
        &built.binaries,
        Target::Universal,
        &dir,
    )?;
    Ok(Built {
        build,
        ..built.clone()
    })
}

fn pack(
    job: &VersionJob,
    platform: Platform,
    pex: &Path,
    binaries: &[BinaryName],
    target: Target,
    dir: &Path,
) -> Result<PlatformBuild, BuildError> {
    let asset = job.package.asset_name(platform);
    let tarball = dir.join(&asset);
    let (size, sha256) = artifact::write_tarball(&tarball, &job.package, pex, binaries)?;
    Ok(PlatformBuild {
        asset,
        size,
        sha256,
        target,
        test: None,
        lock: None,
        tarball,
    })
}

/// Runs the package's test through the launcher of a build made with a local interpreter, on
/// this machine, before the build is uploaded. A cross build says why it was not tried.
pub async fn test_build(
    built: &Built,
    platform: Platform,
    python: PythonMinor,
    settings: &BuildSettings,
) -> Result<TestOutcome, BuildError> {
    let b = &built.build;
    if Platform::host() != Some(platform) {
        return Ok(TestOutcome::NotTried {
            why: format!("{platform} was built on another platform: not run there"),
        });
    }
    if b.target == Target::CompletePlatform {
        return Ok(TestOutcome::NotTried {
            why: format!(
                "no local CPython {python} where it was built (from its complete platform)"
            ),
        });
    }
    let verdict = crate::verify::verify(
        &b.tarball,
        &b.sha256,
        &built.test,
        &built.binaries,
        python,
        &settings.pex_root.with_file_name("pex-root-verify"),
        settings.test_timeout,
    )
    .await;
    match verdict {
        crate::verify::Verdict::Passed => Ok(TestOutcome::Passed {
            command: built.test.clone(),
        }),
        crate::verify::Verdict::Skipped(why) => Ok(TestOutcome::NotTried { why }),
        crate::verify::Verdict::Failed(message) => {
            Err(BuildError::TestFailed { platform, message })
        }
    }
}

/// What a failed pex run says a user can act on.
#[derive(Debug, PartialEq, Eq)]
enum Explained {
    /// A dependency has nothing to install for the target: no rebuild helps.
    NoWheel(String),
}

/// The line of a failed pex run that a user can act on: which dependency has nothing to
/// install for the target.
fn explain(e: &ToolError) -> Option<Explained> {
    let ToolError::Failed { output, .. } = e else {
        return None;
    };
    output.lines().find_map(|l| {
        let l = l
            .trim()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ')')
            .trim();
        if l.contains("does not have any compatible artifacts")
            || l.contains("is not compatible with the requested foreign target")
        {
            Some(Explained::NoWheel(format!(
                "no wheel for this platform: {}",
                l.trim_end_matches(':')
            )))
        } else {
            l.strip_prefix("ERROR: No matching distribution found for ")
                .map(|d| Explained::NoWheel(format!("no compatible distribution of {d}")))
        }
    })
}

fn write_complete_platform(
    dir: &Path,
    platform: Platform,
    python: PythonMinor,
) -> std::io::Result<PathBuf> {
    let path = dir.join(format!(
        "complete-platform-{platform}-cp3{}.json",
        python.minor()
    ));
    let doc = complete_platform::complete_platform(platform, python);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&doc).expect("JSON values serialise"),
    )?;
    Ok(path)
}

/// What hermit-pex reads from a pex lock file.
struct ParsedLock {
    pins: Vec<String>,
    pure: bool,
    /// (normalized project name, wheel URLs) of each locked distribution.
    wheels: Vec<(String, Vec<String>)>,
}

impl ParsedLock {
    /// A wheel of the package itself (its entry points are the same in every one).
    fn wheel_of(&self, package: &PackageName) -> Option<String> {
        self.wheels
            .iter()
            .find(|(name, _)| name == package.as_str())
            .and_then(|(_, urls)| urls.first().cloned())
    }
}

/// Pins, purity and wheel URLs from a pex lock file.
fn read_lock(path: &Path) -> Result<ParsedLock, BuildError> {
    #[derive(Deserialize)]
    struct LockFile {
        locked_resolves: Vec<Resolve>,
    }
    #[derive(Deserialize)]
    struct Resolve {
        locked_requirements: Vec<Locked>,
    }
    #[derive(Deserialize)]
    struct Locked {
        project_name: String,
        version: String,
        artifacts: Vec<Artifact>,
    }
    #[derive(Deserialize)]
    struct Artifact {
        url: String,
    }
    let text = std::fs::read_to_string(path)?;
    let lock: LockFile = serde_json::from_str(&text)
        .map_err(|e| std::io::Error::other(format!("{}: not a pex lock: {e}", path.display())))?;
    let mut pins = Vec::new();
    let mut wheels = Vec::new();
    let mut pure = true;
    for r in lock
        .locked_resolves
        .iter()
        .flat_map(|r| &r.locked_requirements)
    {
        pins.push(format!("{}=={}", r.project_name, r.version));
        // An sdist or a platform wheel may compile code: only all-`none-any` is universal.
        pure &=
            !r.artifacts.is_empty() && r.artifacts.iter().all(|a| a.url.ends_with("-none-any.whl"));
        let urls = r
            .artifacts
            .iter()
            .filter(|a| a.url.ends_with(".whl"))
            .map(|a| a.url.clone())
            .collect();
        wheels.push((crate::names::normalize(&r.project_name), urls));
    }
    pins.sort();
    pins.dedup();
    Ok(ParsedLock { pins, pure, wheels })
}

fn env(settings: &BuildSettings) -> Vec<(&'static str, OsString)> {
    let mut env = vec![
        ("PEX_ROOT", settings.pex_root.clone().into()),
        ("PEX_VERBOSE", "0".into()),
    ];
    // pip (through requests) reads credentials from the file NETRC names; pex passes its
    // environment on to pip, and its own fetcher finds no ~/.netrc entry to put into a URL.
    if let Some(netrc) = settings.indexes.netrc() {
        env.push(("NETRC", netrc.into()));
    }
    env
}

/// pex's index flags: no PyPI, the primary index, then each extra one. pex merges them like
/// pip does (the highest version wins, whichever index has it: see README on private indexes).
fn index_args(settings: &BuildSettings) -> Vec<OsString> {
    let mut args = os(&["--no-pypi"]);
    for url in settings.indexes.urls() {
        args.extend([OsString::from("--index-url"), url.into()]);
    }
    args
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn input_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    crate::pypi::hex(&h.finalize())
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

    #[test]
    fn purity_comes_from_every_artifact_of_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = |artifacts: &str| {
            let p = dir.path().join("lock.json");
            std::fs::write(
                &p,
                format!(
                    r#"{{"locked_resolves":[{{"locked_requirements":[
                        {{"project_name":"a","version":"1","artifacts":[{{"url":"https://x/a-1-py3-none-any.whl"}}]}},
                        {{"project_name":"b","version":"2","artifacts":[{artifacts}]}}]}}]}}"#
                ),
            )
            .unwrap();
            read_lock(&p).unwrap()
        };
        let l = lock(r#"{"url":"https://x/b-2-py2.py3-none-any.whl"}"#);
        assert_eq!(l.pins, ["a==1", "b==2"]);
        assert!(l.pure);
        let a = PackageName::new("a").unwrap();
        assert_eq!(
            l.wheel_of(&a).as_deref(),
            Some("https://x/a-1-py3-none-any.whl")
        );
        let l = lock(
            r#"{"url":"https://x/b-2-py3-none-any.whl"},{"url":"https://x/b-2-cp312-cp312-manylinux_2_17_x86_64.whl"}"#,
        );
        assert!(!l.pure, "a platform wheel beside the universal one");
        let l = lock(r#"{"url":"https://x/b-2.tar.gz"}"#);
        assert!(!l.pure, "an sdist may compile");
        let b = PackageName::new("b").unwrap();
        assert_eq!(
            l.wheel_of(&b),
            None,
            "only an sdist: no wheel to read scripts from"
        );
    }

    #[test]
    fn pex_failures_name_the_dependency() {
        let e = ToolError::Failed {
            program: "pex".into(),
            status: "exit 1".into(),
            output:
                "Failed to resolve\nERROR: No matching distribution found for native-dep==1.0\n"
                    .into(),
        };
        assert_eq!(
            explain(&e).unwrap(),
            Explained::NoWheel("no compatible distribution of native-dep==1.0".into())
        );
        let e = ToolError::Failed {
            program: "pex".into(),
            status: "exit 1".into(),
            output: "Dependency on native-dep not satisfied, 1 incompatible candidate found:\n1.) native-dep 1 (via: needs-native==1.0 -> native-dep) does not have any compatible artifacts:\n    http://x/native_dep-1.0-cp312-cp312-manylinux_2_17_x86_64.whl".into(),
        };
        assert_eq!(
            explain(&e).unwrap(),
            Explained::NoWheel("no wheel for this platform: native-dep 1 (via: needs-native==1.0 -> native-dep) does not have any compatible artifacts".into())
        );
    }
}
