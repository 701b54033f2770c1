//! One version → one lock → one PEX per platform → one tarball per platform.
//!
//! The lock (`crate::lock`: uv's PEP 751 pylock) is resolved once per version and decides, in
//! our code, each platform's files (or that the platform cannot exist, naming the
//! distribution), whether one PEX serves every platform, and the launchers. Each platform's PEX
//! is then built from exactly the files its lock chose (`pex --pre-resolved-dists`: no
//! resolver, no pip), with the same options on every platform (`pex`).
//!
//! An sdist is a file to build, not to install: a version whose lock has only an sdist of a
//! distribution has it built into a wheel on this machine. A wheel that comes out `none-any`
//! serves every platform; one that does not serves only a platform whose build runs natively
//! there (`BuildSettings::native`): the others cannot exist.

pub mod artifact;
pub mod pex;
pub mod scripts;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pep440_rs::Version;

use crate::lock::{Choices, ChosenFile, Fetcher, LockFormat, Locked, PlatformLock};
use crate::names::{BinaryName, PackageName, Platform, PythonMinor};
use crate::release::VersionInputs;
pub use crate::release::{BuildInfo, LockRecord, PlatformBuild, Target, TestOutcome};
use crate::tools::{self, Pex, ToolError};
pub use crate::tools::{PEX_OPTIONS, now};

#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub pex: Pex,
    /// The pinned uv that resolves locks.
    pub uv: crate::lock::Uv,
    /// The indexes locks resolve from and files come from, primary first; credentials reach
    /// uv and pip only through the private netrc file (`NETRC`), never an argument.
    pub indexes: crate::pypi::Indexes,
    /// Platforms whose builds run on a machine of that platform (this one in `sync`; the
    /// node pools of their own in a cluster): only they may use a wheel built from an sdist
    /// that is not pure Python.
    pub native: Vec<Platform>,
    /// Kept between runs: locks (reused while their inputs are unchanged), wheels by digest,
    /// wheels built from sdists, failure logs.
    pub cache_dir: PathBuf,
    /// This run's PEXs and tarballs; unique per run, so concurrent runs never collide.
    pub work_dir: PathBuf,
    /// PEX_ROOT shared by every build on this machine.
    pub pex_root: PathBuf,
    pub timeout: Duration,
    /// For running a build's test before it is uploaded.
    pub test_timeout: Duration,
    /// The operator's build flavours: a package's `build` resolves against them (its build
    /// packages are checked before an sdist is built; its runtime packages become
    /// dependencies of its .deb/.rpm).
    pub flavours: crate::flavour::Flavours,
}

impl BuildSettings {
    /// The native platforms of `sync`: this machine's own.
    pub fn host_native() -> Vec<Platform> {
        Platform::host().into_iter().collect()
    }
}

/// What to build: one version of one package, with what its config asks for it.
#[derive(Debug, Clone)]
pub struct VersionJob {
    pub package: PackageName,
    pub version: Version,
    pub inputs: VersionInputs,
    /// The platforms the config wants: a version is published once each is built or cannot
    /// exist.
    pub platforms: Vec<Platform>,
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
            platforms: spec.platforms(),
        }
    }

    pub fn python(&self) -> PythonMinor {
        self.inputs.python
    }

    pub fn requirements(&self) -> &[String] {
        &self.inputs.requirements
    }

    /// The build info a new draft of this version starts with: what it is made for, and the
    /// PEX options every one of its platforms is built with.
    pub fn info(&self) -> BuildInfo {
        let mut info = BuildInfo::new(&self.package, &self.version, self.inputs.clone());
        info.pex_options = pex::version_options(self.python());
        info
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
    #[error("locking {requirements} for python {python} failed: {source}")]
    Lock {
        requirements: String,
        python: PythonMinor,
        source: Box<crate::lock::LockError>,
    },
    /// Building the project's own wheel from its Git tag failed.
    #[error("building the wheel of {what} for python {python} failed: {source}")]
    ProjectWheel {
        what: String,
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
    /// No rebuild helps: a dependency has nothing to install for this platform.
    #[error("{message}")]
    NoWheel { platform: Platform, message: String },
    #[error("{message}")]
    Pex { platform: Platform, message: String },
    #[error("{platform}: the test failed before upload: {message}")]
    TestFailed { platform: Platform, message: String },
    #[error(transparent)]
    Fetch(#[from] crate::lock::FetchError),
    /// The build packages are not on this machine, or the flavour is unknown.
    #[error(transparent)]
    Flavour(#[from] crate::flavour::FlavourError),
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
    #[error("{platform}: {source}")]
    OsPackage {
        platform: Platform,
        source: crate::os_package::OsPackageError,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A version's lock: the pylock file and what was decided from it, as the release records it.
#[derive(Debug, Clone)]
pub struct Lock {
    pub locked: Locked,
    pub record: LockRecord,
    /// A Git source's wheel of the project, which the lock names.
    pub wheel: Option<LocalWheel>,
    /// The version's SBOM, made from the lock (uploaded with it; `record.sbom` names it).
    pub sbom: Option<crate::sbom::Sbom>,
}

impl Lock {
    pub fn file(&self) -> LockFile {
        LockFile {
            path: self.locked.path.clone(),
            wheel: self.wheel.clone(),
        }
    }

    pub fn pins(&self) -> &[String] {
        &self.record.pins
    }
}

/// A project's wheel on this machine: the file, in a directory of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWheel {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl LocalWheel {
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A lock file to build from, with the project's wheel when the lock names one.
#[derive(Debug, Clone)]
pub struct LockFile {
    pub path: PathBuf,
    pub wheel: Option<LocalWheel>,
}

/// Resolves the version (reused while its inputs are unchanged) and decides every platform's
/// files, its purity and its launchers. `wheel`: the project's own wheel, built from its Git
/// tag.
pub async fn lock(
    job: &VersionJob,
    settings: &BuildSettings,
    wheel: Option<&LocalWheel>,
) -> Result<Lock, BuildError> {
    lock_as(job, settings, wheel, false).await
}

/// A lock resolved afresh, whatever the cache holds: the index may have gained the wheel a
/// platform lacked.
pub async fn relock(
    job: &VersionJob,
    settings: &BuildSettings,
    wheel: Option<&LocalWheel>,
) -> Result<Lock, BuildError> {
    lock_as(job, settings, wheel, true).await
}

async fn lock_as(
    job: &VersionJob,
    settings: &BuildSettings,
    wheel: Option<&LocalWheel>,
    fresh: bool,
) -> Result<Lock, BuildError> {
    let failed = |source| BuildError::Lock {
        requirements: crate::lock::shown_requirements(job.requirements()),
        python: job.python(),
        source: Box::new(source),
    };
    let request = crate::lock::LockRequest {
        package: &job.package,
        version: &job.version,
        python: job.python(),
        requirements: job.requirements(),
        project_wheel: wheel.map(|w| w.path.as_path()),
    };
    let lock_settings = crate::lock::LockSettings {
        uv: settings.uv.clone(),
        indexes: settings.indexes.clone(),
        cache_dir: settings.cache_dir.clone(),
        timeout: settings.timeout,
    };
    let locked = match fresh {
        false => crate::lock::lock(&request, &lock_settings).await,
        true => crate::lock::relock(&request, &lock_settings).await,
    }
    .map_err(failed)?;
    let fetcher = fetcher(settings, &locked.path, wheel)?;
    // Every platform may take an sdist at first; which of them can use what it builds is
    // decided once it is built, below.
    let wanted = crate::lock::Wanted {
        package: &job.package,
        version: &job.version,
        python: job.python(),
        platforms: &job.platforms,
        native: &job.platforms,
        binaries: &job.inputs.binaries,
    };
    let mut decision = crate::lock::decide(&locked, &wanted, &fetcher)
        .await
        .map_err(failed)?;
    let pure_sdists = settle_sdists(job, settings, &fetcher, &mut decision.choices).await?;
    let pure = is_pure(&decision.choices, &pure_sdists);
    let (binaries, binaries_from, test) = match decision.binaries {
        Ok(b) => {
            let test = scripts::test_command(&job.inputs.test, &b.names)?;
            (b.names, b.from, test)
        }
        // Known once a PEX is built: each build reads them from its PEX.
        Err(crate::lock::BinariesError::NotYetKnown { .. }) => {
            (Vec::new(), BTreeMap::new(), String::new())
        }
        Err(e) => return Err(BuildError::Binaries(e.to_string())),
    };
    let record = LockRecord {
        sha256: locked.sha256.clone(),
        size: locked.size,
        pins: locked.pylock.pins(),
        pure,
        binaries,
        test,
        wheel: wheel.map(|w| crate::release::info::WheelRecord {
            asset: w.name(),
            sha256: w.sha256.clone(),
            size: w.size,
        }),
        format: Some(LockFormat::Pylock),
        platforms: decision.choices.record(),
        binaries_from,
        sbom: None,
    };
    let sbom = crate::sbom::make(
        &crate::sbom::SbomInput {
            package: &job.package,
            version: &job.version,
            python: job.python(),
            lock: &locked.pylock,
            choices: &decision.choices,
        },
        &fetcher,
        &job.dir(settings).join("lock"),
    )
    .await?;
    let mut record = record;
    record.sbom = Some(sbom.record(&job.package));
    Ok(Lock {
        locked,
        record,
        wheel: wheel.cloned(),
        sbom: Some(sbom),
    })
}

/// Fetches files into the cache by digest, from the indexes, the lock's own directory, or the
/// project's wheel.
fn fetcher(
    settings: &BuildSettings,
    lock: &Path,
    wheel: Option<&LocalWheel>,
) -> Result<Fetcher, BuildError> {
    let mut f = Fetcher::new(
        settings.indexes.clone(),
        &settings.cache_dir,
        settings.timeout,
    )?;
    if let Some(dir) = lock.parent() {
        f = f.with_lock_dir(dir);
    }
    if let Some(w) = wheel {
        f = f.with_local_file(&w.path);
    }
    Ok(f)
}

/// Builds every sdist a platform chose into a wheel on this machine. A pure-Python one serves
/// every platform; any other only the native platforms, so a platform that is not native and
/// needs it cannot exist (it is made missing, naming the distribution). Returns the digests of
/// the sdists that build pure.
async fn settle_sdists(
    job: &VersionJob,
    settings: &BuildSettings,
    fetcher: &Fetcher,
    choices: &mut Choices,
) -> Result<BTreeSet<String>, BuildError> {
    let mut sdists: BTreeMap<String, crate::lock::Chosen> = BTreeMap::new();
    for (_, files) in choices.ready() {
        for c in files.iter().filter(|c| c.is_sdist()) {
            sdists
                .entry(c.file.sha256.clone())
                .or_insert_with(|| c.clone());
        }
    }
    let mut pure = BTreeSet::new();
    let mut unusable: BTreeMap<String, String> = BTreeMap::new();
    for (sha, chosen) in &sdists {
        let why = match sdist_wheel(job, settings, fetcher, &chosen.file).await {
            // Missing build packages fail the version, naming them: no platform is given up.
            Err(e @ BuildError::Flavour(_)) => return Err(e),
            Ok(w) if is_none_any(&w) => {
                pure.insert(sha.clone());
                continue;
            }
            Ok(w) => format!(
                "{} {} has only an sdist, which builds platform code ({}): built only on a native build of the platform",
                chosen.name,
                chosen.version,
                file_name(&w)
            ),
            Err(e) => format!(
                "{} {} has only an sdist, which did not build here: {e}",
                chosen.name, chosen.version
            ),
        };
        unusable.insert(sha.clone(), why);
    }
    for (platform, result) in choices.platforms.iter_mut() {
        if settings.native.contains(platform) {
            continue;
        }
        let Ok(files) = result else { continue };
        let reasons: Vec<&str> = files
            .iter()
            .filter_map(|c| unusable.get(&c.file.sha256).map(String::as_str))
            .collect();
        if !reasons.is_empty() {
            let lacking = files
                .iter()
                .filter(|c| unusable.contains_key(&c.file.sha256))
                .map(|c| crate::lock::choose::Lacking {
                    name: c.name.clone(),
                    version: c.version.clone(),
                    has_sdist: true,
                })
                .collect();
            let target = crate::lock::Target::new(*platform, job.python()).describe();
            *result = Err(crate::lock::Missing {
                platform: *platform,
                target,
                lacking,
            });
        }
    }
    Ok(pure)
}

/// Pure: every file every platform chose is a `none-any` wheel, or an sdist that builds one.
fn is_pure(choices: &Choices, pure_sdists: &BTreeSet<String>) -> bool {
    let mut any = false;
    for (_, files) in choices.ready() {
        any = true;
        let all = files
            .iter()
            .all(|c| c.is_none_any() || (c.is_sdist() && pure_sdists.contains(&c.file.sha256)));
        if !all {
            return false;
        }
    }
    any
}

fn is_none_any(wheel: &Path) -> bool {
    crate::lock::wheel_name::WheelName::parse(&file_name(wheel)).is_ok_and(|w| w.is_none_any())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The wheel an sdist builds on this machine, with the version's python: kept in the cache by
/// the sdist's digest and the python, so each sdist is built once per machine. A build that
/// failed is not tried again for a day (a compiler or a header it lacked rarely appears
/// sooner, and some sdists take minutes to fail).
async fn sdist_wheel(
    job: &VersionJob,
    settings: &BuildSettings,
    fetcher: &Fetcher,
    sdist: &crate::lock::pylock::File,
) -> Result<PathBuf, BuildError> {
    let host = Platform::host().ok_or_else(|| BuildError::Pex {
        platform: job.platforms.first().copied().unwrap_or(Platform::ALL[0]),
        message: "this machine is none of the platforms hermit-pex builds: it cannot build sdists"
            .into(),
    })?;
    let dir = settings
        .cache_dir
        .join("sdist-wheels")
        .join(&sdist.sha256)
        .join(job.python().to_string());
    if let Some(w) = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
    {
        return Ok(w);
    }
    // sync installs nothing: the build packages must be here already (a cluster's image holds
    // them, or its init container installed them). Checked before a recorded failure, which
    // they may have caused, and never recorded as one: installing them helps at once.
    let resolved = settings.flavours.resolve(job.inputs.build.as_ref())?;
    crate::flavour::check_host(&resolved, settings.timeout).await?;
    let failed = dir.join("failed");
    let recent = |m: std::fs::Metadata| {
        m.modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < Duration::from_secs(24 * 3600))
    };
    if std::fs::metadata(&failed).is_ok_and(recent) {
        let why = std::fs::read_to_string(&failed).unwrap_or_default();
        return Err(BuildError::Pex {
            platform: host,
            message: format!("{} (failed here within the last day: {why})", sdist.name),
        });
    }
    let path = fetcher.fetch(sdist).await?;
    let built = pex::wheel_from_sdist(&path, host, job.python(), &dir, settings).await;
    if let Err(e) = &built {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(&failed, tools::tail(&e.to_string(), 5));
    }
    built
}

/// Builds one platform's PEX from the files its lock chose and packs its tarball.
pub async fn build_platform(
    job: &VersionJob,
    lock: &LockFile,
    record: &LockRecord,
    platform: Platform,
    settings: &BuildSettings,
) -> Result<Built, BuildError> {
    let chosen = match record.platforms.get(&platform) {
        Some(PlatformLock::Files(files)) => files,
        Some(PlatformLock::Missing(why)) => {
            return Err(BuildError::NoWheel {
                platform,
                message: why.clone(),
            });
        }
        None => {
            return Err(BuildError::NoWheel {
                platform,
                message: format!("{platform}: the lock decided nothing for it"),
            });
        }
    };
    let dir = job.dir(settings).join(platform.to_string());
    std::fs::create_dir_all(&dir)?;
    let wheels = platform_wheels(job, lock, chosen, platform, settings).await?;
    let pex_path = dir.join(format!("{}.pex", job.package));
    let spec = pex::PexSpec {
        platform,
        python: job.python(),
        requirements: job.requirements().to_vec(),
    };
    pex::build_pex(&wheels, &spec, &pex_path, settings).await?;
    let (binaries, test) = if record.binaries.is_empty() {
        // Only sdists of the package's scripts were locked: they are known once built.
        let scripts = scripts::from_pex(&pex_path, &job.package)?;
        let binaries =
            scripts::binaries(&job.package, &job.version, &job.inputs.binaries, &scripts)?;
        let test = scripts::test_command(&job.inputs.test, &binaries)?;
        (binaries, test)
    } else {
        (record.binaries.clone(), record.test.clone())
    };
    let build = pack(
        job,
        platform,
        &pex_path,
        &binaries,
        Target::CompletePlatform,
        &dir,
    )
    .await?;
    Ok(Built {
        build,
        pex: pex_path,
        binaries,
        test,
    })
}

/// The wheels of the files `chosen` names, fetched once by digest; an sdist is built here, and
/// used for another platform only when it builds pure Python.
async fn platform_wheels(
    job: &VersionJob,
    lock: &LockFile,
    chosen: &[ChosenFile],
    platform: Platform,
    settings: &BuildSettings,
) -> Result<Vec<PathBuf>, BuildError> {
    let locked = crate::lock::read(&lock.path)
        .await
        .map_err(|source| BuildError::Lock {
            requirements: crate::lock::shown_requirements(job.requirements()),
            python: job.python(),
            source: Box::new(source),
        })?;
    let files: BTreeMap<&str, &crate::lock::pylock::File> = locked
        .pylock
        .packages
        .iter()
        .flat_map(|p| p.wheels.iter().map(|w| &w.file).chain(p.sdist.iter()))
        .map(|f| (f.sha256.as_str(), f))
        .collect();
    let mut wanted = Vec::new();
    for c in chosen {
        let file = files
            .get(c.sha256.as_str())
            .ok_or_else(|| BuildError::Pex {
                platform,
                message: format!(
                    "the lock's record names {} ({}), which the lock file does not hold",
                    c.name, c.sha256
                ),
            })?;
        wanted.push(*file);
    }
    let fetcher = fetcher(settings, &lock.path, lock.wheel.as_ref())?;
    let paths = fetcher.fetch_all(wanted.iter().copied()).await?;
    let mut wheels = Vec::new();
    for file in wanted {
        if file.name.ends_with(".whl") {
            wheels.push(paths[&file.sha256].clone());
            continue;
        }
        let wheel = sdist_wheel(job, settings, &fetcher, file).await?;
        if !is_none_any(&wheel) && Platform::host() != Some(platform) {
            return Err(BuildError::NoWheel {
                platform,
                message: format!(
                    "{}: only an sdist, which builds platform code ({}) on this machine, not on {platform}",
                    file.name,
                    file_name(&wheel)
                ),
            });
        }
        wheels.push(wheel);
    }
    Ok(wheels)
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
        tools::PIP_VERSION,
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
        .map_err(|source| BuildError::ProjectWheel {
            what: format!("the project at {}", project.display()),
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
    let (size, sha256) = crate::digest::sha256_file(&path)?;
    Ok(LocalWheel { path, sha256, size })
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
pub async fn reuse_for(
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
    )
    .await?;
    Ok(Built {
        build,
        ..built.clone()
    })
}

/// Packs the tarball (tar, gzip and sha256 of a PEX of up to 200 MB: on the blocking pool).
async fn pack(
    job: &VersionJob,
    platform: Platform,
    pex: &Path,
    binaries: &[BinaryName],
    target: Target,
    dir: &Path,
) -> Result<PlatformBuild, BuildError> {
    let asset = job.package.asset_name(platform);
    let tarball = dir.join(&asset);
    let (out, package, pex, binaries) = (
        tarball.clone(),
        job.package.clone(),
        pex.to_owned(),
        binaries.to_vec(),
    );
    let started = std::time::Instant::now();
    tracing::debug!(package = %job.package, version = %job.version, %platform, "packing");
    let (size, sha256) =
        crate::blocking::run(move || artifact::write_tarball(&out, &package, &pex, &binaries))
            .await?;
    let secs = started.elapsed().as_secs_f64();
    tracing::debug!(package = %job.package, version = %job.version, %platform, size, secs, "packed");
    Ok(PlatformBuild {
        asset,
        size,
        sha256,
        target,
        test: None,
        lock: None,
        packages: Vec::new(),
        tarball,
    })
}

/// Runs the package's test through the launcher of a build of this machine's own platform,
/// before the build is uploaded. A build for another platform says why it was not tried.
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

fn write_complete_platform(
    dir: &Path,
    platform: Platform,
    python: PythonMinor,
) -> std::io::Result<PathBuf> {
    let path = dir.join(format!(
        "complete-platform-{platform}-cp3{}.json",
        python.minor()
    ));
    let doc = crate::complete_platform::complete_platform(platform, python);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&doc).expect("JSON values serialise"),
    )?;
    Ok(path)
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
/// pip does (the highest version wins, whichever index has it: see docs/src/private-index.md).
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
