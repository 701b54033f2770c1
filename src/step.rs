//! The steps of a version, each written once. The planner (`plan`) says which step a version
//! needs next; [`StepRunner::run`] does it against a release store. `sync` runs every step
//! this way in its own process; a lock or build Job is one call of it (`hermit-pex lock`,
//! `hermit-pex build`); the controller runs the release steps (discard, create, publish)
//! through it in its own process and the rest as Jobs.
//!
//! - discard: delete a draft the plan no longer wants;
//! - create: the version's one draft release, made before anything is resolved or built (the
//!   controller makes it before the version's first Job, so `sync` does the same);
//! - lock: resolve the version once, check its binaries against the package's console
//!   scripts, upload the lock file and record it in the draft (pure Python: build every
//!   platform from it in the same step);
//! - build: one platform from the recorded lock; a build made on its own platform runs the
//!   package's test through its launcher before anything is uploaded; the tarball goes up
//!   first, then the platform's record (a platform counts once its record is there); a
//!   dependency without a wheel for the platform uploads a record saying so instead;
//! - publish: merge the records into the build info, check it is complete and agrees with the
//!   assets, and make the release public with it in one write;
//! - the manifest: [`manifest_renderer`] renders a package's manifest from what it may list.

use std::path::{Path, PathBuf};

use crate::blocking;
use crate::build::{self, BuildError, BuildSettings, Built, Lock, VersionJob};
use crate::digest::sha256_file;
use crate::gitops::Rendered;
use crate::hermit::CompleteVersion;
use crate::lock::PlatformLock;
use crate::names::{PackageName, Platform};
use crate::plan::Step;
use crate::release::info::{missing_asset, record_asset};
use crate::release::{
    BuildInfo, LockRecord, PlatformBuild, PlatformRecord, Release, ReleaseId, ReleaseState,
    ReleaseStore, StoreError, Upload,
};
use crate::spec::PackageSpec;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("cannot {what}: {source}")]
    Store { what: String, source: StoreError },
    /// The release and what the step was given disagree (a Job made for another draft).
    #[error("{0}")]
    Mismatch(String),
    /// The Git source could not be read or checked out (or its tag moved).
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A lock or build step given to a runner without build settings (the controller, whose
    /// lock and build steps are Jobs).
    #[error("{0:?}: this process runs no builds")]
    CannotBuild(Step),
}

impl StepError {
    fn store(what: impl Into<String>) -> impl FnOnce(StoreError) -> Self {
        let what = what.into();
        move |source| StepError::Store { what, source }
    }

    /// The platform a failure belongs to, when it is one platform's.
    pub fn platform(&self) -> Option<Platform> {
        match self {
            StepError::Build(
                BuildError::NoWheel { platform, .. }
                | BuildError::Pex { platform, .. }
                | BuildError::TestFailed { platform, .. }
                | BuildError::OsPackage { platform, .. },
            ) => Some(*platform),
            _ => None,
        }
    }

    /// A short reason, for status records and exit messages.
    pub fn reason(&self) -> &'static str {
        match self {
            StepError::Build(BuildError::Lock { source, .. })
                if matches!(**source, crate::lock::LockError::DirectReference { .. }) =>
            {
                "DirectReferenceRefused"
            }
            StepError::Build(BuildError::Lock { .. }) => "LockFailed",
            StepError::Build(BuildError::Binaries(_)) => "InvalidBinaries",
            StepError::Build(BuildError::TagMismatch { .. }) => "TagVersionMismatch",
            StepError::Build(BuildError::NoWheel { .. }) => "NoWheelForPlatform",
            StepError::Build(BuildError::TestFailed { .. }) => "TestFailed",
            StepError::Build(BuildError::Flavour(crate::flavour::FlavourError::Missing(_))) => {
                "MissingBuildPackages"
            }
            StepError::Build(BuildError::Flavour(crate::flavour::FlavourError::Unknown(_))) => {
                "UnknownFlavour"
            }
            StepError::Build(BuildError::OsPackage { .. }) => "PackageFailed",
            StepError::Build(_) => "BuildFailed",
            StepError::Store { .. } => "ReleaseStoreFailed",
            StepError::Mismatch(_) => "WrongRelease",
            StepError::Source(_) => "SourceFailed",
            StepError::Publish(_) => "NotPublished",
            StepError::CannotBuild(_) => "WrongExecutor",
        }
    }
}

/// Runs a version's steps against one release store.
pub struct StepRunner<'a, S> {
    pub store: &'a S,
    /// For the lock and build steps; `None` in the controller, whose lock and build steps are
    /// Jobs.
    pub settings: Option<&'a BuildSettings>,
    /// Where publishing reads the platforms' records into.
    pub scratch: &'a Path,
    /// Bounds the CPU-heavy part of the steps (resolving and building sdists, building and
    /// packing PEXs) when several run at once; a build's test runs outside it. `None`: no
    /// bound (a Job runs one step).
    pub slots: Option<&'a tokio::sync::Semaphore>,
    /// A line of progress for people (`sync` prints it; a Job logs it).
    pub say: &'a (dyn Fn(String) + Send + Sync),
}

/// What a platform's build came to.
#[derive(Debug, Clone)]
pub enum PlatformOutcome {
    Built(PlatformBuild),
    /// It cannot exist (no wheel of a dependency for it): recorded in the release.
    Missing(String),
    /// Built and recorded before (a Job run again, by hand or after a lost answer).
    AlreadyBuilt,
}

/// What a step came to.
#[derive(Debug)]
pub enum Done {
    Discarded,
    Created(Release),
    /// Locked; a pure-Python lock also built these platforms, each with its outcome.
    Locked(Vec<(Platform, Result<PlatformOutcome, StepError>)>),
    Built(PlatformOutcome),
    Published(BuildInfo),
}

impl<S: ReleaseStore> StepRunner<'_, S> {
    /// A slot for CPU-heavy work, held until dropped.
    async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match self.slots {
            Some(s) => Some(s.acquire().await.expect("the semaphore is never closed")),
            None => None,
        }
    }

    /// Does one step of `job`'s version. `releases`: what the caller observed of the version's
    /// releases; a release the step names that is not among them is read from the store.
    pub async fn run(
        &self,
        job: &VersionJob,
        step: &Step,
        releases: &[Release],
    ) -> Result<Done, StepError> {
        match step {
            Step::Create => {
                let r = self
                    .store
                    .create(&job.info())
                    .await
                    .map_err(StepError::store("create the release"))?;
                tracing::info!(package = %job.package, version = %job.version, release = %r.id, "created the draft release");
                Ok(Done::Created(r))
            }
            Step::Discard { release, why } => {
                let r = self.release(job, release, releases).await?;
                self.store
                    .delete_draft(&r)
                    .await
                    .map_err(StepError::store(format!("discard the draft {release}")))?;
                tracing::info!(package = %job.package, version = %job.version, %release, %why, "discarded a draft");
                Ok(Done::Discarded)
            }
            Step::Lock { release, platforms } => {
                let settings = self.settings.ok_or(StepError::CannotBuild(step.clone()))?;
                let r = self.release(job, release, releases).await?;
                self.lock_step(settings, r, job, platforms).await
            }
            Step::Build { release, platform } => {
                let settings = self.settings.ok_or(StepError::CannotBuild(step.clone()))?;
                let r = self.release(job, release, releases).await?;
                if r.has_built(&job.package, *platform) {
                    return Ok(Done::Built(PlatformOutcome::AlreadyBuilt));
                }
                let (lock, record) = self.lock_file(settings, &r, job).await?;
                self.build(settings, &r, job, &lock, &record, *platform)
                    .await
                    .map(Done::Built)
            }
            Step::Publish { release } => {
                let r = self.release(job, release, releases).await?;
                let info = publish(self.store, &r, &job.platforms, self.scratch).await?;
                Ok(Done::Published(info))
            }
        }
    }

    async fn release(
        &self,
        job: &VersionJob,
        id: &ReleaseId,
        releases: &[Release],
    ) -> Result<Release, StepError> {
        let r = match releases.iter().find(|r| &r.id == id) {
            Some(r) => r.clone(),
            None => self
                .store
                .release(&job.package, id)
                .await
                .map_err(StepError::store(format!("read the release {id}")))?,
        };
        if r.version != job.version {
            return Err(StepError::Mismatch(format!(
                "the release {id} ({}) is not of {} {}",
                r.tag, job.package, job.version
            )));
        }
        Ok(r)
    }

    /// Resolves the version unless its draft is locked already, records the lock, and builds
    /// a pure-Python lock's platforms that are not there yet.
    async fn lock_step(
        &self,
        settings: &BuildSettings,
        release: Release,
        job: &VersionJob,
        platforms: &[Platform],
    ) -> Result<Done, StepError> {
        let release = match release.lock(&job.package) {
            Some(_) => release,
            None => {
                let lock = self.resolve(settings, job).await?;
                self.record_lock(settings, &release, job, &lock).await?
            }
        };
        let (lock, record) = self.lock_file(settings, &release, job).await?;
        if !record.pure {
            return Ok(Done::Locked(Vec::new()));
        }
        // Those not built yet, that can exist.
        let todo: Vec<Platform> = platforms
            .iter()
            .copied()
            .filter(|p| !release.has_built(&job.package, *p))
            .filter(|p| matches!(record.platforms.get(p), Some(PlatformLock::Files(_))))
            .collect();
        Ok(Done::Locked(
            self.build_pure(settings, &release, job, &lock, &record, &todo)
                .await,
        ))
    }

    /// Resolves the version and decides its platforms, binaries and test: nothing is written.
    pub async fn resolve(
        &self,
        settings: &BuildSettings,
        job: &VersionJob,
    ) -> Result<Lock, StepError> {
        (self.say)(format!(
            "{} {}: resolving {} (python {})",
            job.package,
            job.version,
            crate::lock::shown_requirements(job.requirements()),
            job.python()
        ));
        let wheel = match &job.inputs.source {
            Some(source) => Some(self.project_wheel(settings, job, source).await?),
            None => None,
        };
        let lock = {
            let _slot = self.slot().await;
            build::lock(job, settings, wheel.as_ref()).await?
        };
        for (platform, decided) in &lock.record.platforms {
            if let PlatformLock::Missing(why) = decided {
                (self.say)(format!(
                    "{} {} {platform}: cannot exist: {why}",
                    job.package, job.version
                ));
            }
        }
        Ok(lock)
    }

    /// A Git source's version: a clean checkout of its tag (at the commit it was seen at), and
    /// the project's wheel built from it.
    async fn project_wheel(
        &self,
        settings: &BuildSettings,
        job: &VersionJob,
        source: &crate::release::info::SourceRecord,
    ) -> Result<build::LocalWheel, StepError> {
        let git = crate::spec::GitSource {
            git: source.git.clone(),
            tag_prefix: None,
            subdirectory: Some(source.subdirectory.clone()).filter(|s| !s.is_empty()),
            branch: None,
        };
        let tag = crate::source::GitTag {
            tag: source.tag.clone(),
            commit: source.commit.clone(),
        };
        (self.say)(format!(
            "{} {}: building its wheel from {} at {} ({})",
            job.package,
            job.version,
            crate::pypi::redact(&source.git),
            source.tag,
            &source.commit[..source.commit.len().min(12)]
        ));
        let checkout = settings
            .work_dir
            .join(job.package.as_str())
            .join(job.version.to_string())
            .join("checkout");
        let project = crate::source::checkout(&git, &tag, &checkout)
            .await
            .map_err(|e| StepError::Source(e.to_string()))?;
        Ok(build::build_wheel(job, &project, settings).await?)
    }

    /// Uploads the lock file and a record for each platform that cannot exist, then records
    /// the lock in the draft's build info (what makes the version count as locked). Returns the
    /// release as it is now.
    pub async fn record_lock(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
        lock: &Lock,
    ) -> Result<Release, StepError> {
        let record = &lock.record;
        if let Some(w) = &lock.wheel {
            let name = w.name();
            self.upload(
                release,
                Upload {
                    name: &name,
                    path: &w.path,
                    size: w.size,
                    sha256: &w.sha256,
                },
            )
            .await?;
        }
        let name = record.asset(&job.package);
        self.upload(
            release,
            Upload {
                name: &name,
                path: &lock.locked.path,
                size: lock.locked.size,
                sha256: &lock.locked.sha256,
            },
        )
        .await?;
        if let (Some(sbom), Some(r)) = (&lock.sbom, &record.sbom) {
            self.upload(
                release,
                Upload {
                    name: &r.asset,
                    path: &sbom.path,
                    size: sbom.size,
                    sha256: &sbom.sha256,
                },
            )
            .await?;
        }
        // Known now, so no build is started for them.
        for &platform in &job.platforms {
            if let Some(PlatformLock::Missing(reason)) = record.platforms.get(&platform)
                && !release.has_built(&job.package, platform)
            {
                let record = PlatformRecord::Missing {
                    reason: reason.clone(),
                };
                let name = missing_asset(&job.package, platform);
                self.upload_record(settings, release, job, platform, &name, &record)
                    .await?;
            }
        }
        let mut info = release.info.clone().unwrap_or_else(|| job.info());
        info.locked = Some(record.clone());
        self.store
            .record(release, &info)
            .await
            .map_err(StepError::store("record the lock in the build info"))?;
        tracing::info!(package = %job.package, version = %job.version, pure = record.pure, pins = record.pins.len(), "locked");
        self.store
            .release(&job.package, &release.id)
            .await
            .map_err(StepError::store("read the release back"))
    }

    /// The recorded lock file, from the cache when its digest is there, else from the release.
    pub async fn lock_file(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
    ) -> Result<(build::LockFile, LockRecord), StepError> {
        let record = release.lock(&job.package).cloned().ok_or_else(|| {
            StepError::Mismatch(format!(
                "{}: the release has no lock yet (the lock step comes first)",
                release.tag
            ))
        })?;
        let path = self
            .cached_asset(
                settings,
                release,
                &record.asset(&job.package),
                &record.sha256,
            )
            .await?;
        let wheel = match &record.wheel {
            Some(w) => Some(build::LocalWheel {
                path: self
                    .cached_asset(settings, release, &w.asset, &w.sha256)
                    .await?,
                sha256: w.sha256.clone(),
                size: w.size,
            }),
            None => None,
        };
        Ok((build::LockFile { path, wheel }, record))
    }

    /// An asset of the release with the digest its build info names, from the cache (a
    /// directory per digest, so that the file keeps its name) or fetched into it.
    async fn cached_asset(
        &self,
        settings: &BuildSettings,
        release: &Release,
        asset: &str,
        sha256: &str,
    ) -> Result<PathBuf, StepError> {
        let dir = settings.cache_dir.join("assets").join(sha256);
        let path = dir.join(asset);
        let digest = |p: PathBuf| blocking::run(move || sha256_file(&p).map(|(_, d)| d));
        if digest(path.clone()).await.is_ok_and(|d| d == sha256) {
            return Ok(path);
        }
        std::fs::create_dir_all(&dir).map_err(BuildError::Io)?;
        let scratch = tempfile::tempdir_in(&dir).map_err(BuildError::Io)?;
        let got = self
            .store
            .fetch(release, asset, &scratch.path().join(asset))
            .await
            .map_err(StepError::store(format!("fetch {asset}")))?;
        let got_sha = digest(got.clone()).await.map_err(BuildError::Io)?;
        if got_sha != sha256 {
            return Err(StepError::Mismatch(format!(
                "{}: the asset {asset}'s sha256 is {got_sha}, the build info says {sha256}",
                release.tag
            )));
        }
        // A copy (a directory store hands out its own file), renamed into place: a concurrent
        // reader never sees half a file.
        let part = scratch.path().join(".part");
        std::fs::copy(&got, &part).map_err(BuildError::Io)?;
        std::fs::rename(&part, &path).map_err(BuildError::Io)?;
        Ok(path)
    }

    /// Builds one platform from the recorded lock, tests it when it was built on its own
    /// platform, and uploads its tarball and record (or the record that it cannot exist).
    pub async fn build(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
        lock: &build::LockFile,
        record: &LockRecord,
        platform: Platform,
    ) -> Result<PlatformOutcome, StepError> {
        let started = std::time::Instant::now();
        let missing = missing_asset(&job.package, platform);
        let retry = release.asset_named(&missing).is_some();
        // Tried again: from a fresh lock, whose decision for this platform may have changed.
        let fresh;
        let (lock, record) = if retry {
            fresh = self
                .relock(settings, job, record, lock.wheel.as_ref())
                .await?;
            (&fresh.file(), &fresh.record)
        } else {
            (lock, record)
        };
        let lock_sha256 = record.sha256.clone();
        if retry && release.state == ReleaseState::Draft {
            // Tried again: whatever this build comes to replaces the old verdict.
            self.store
                .delete_asset(release, &missing)
                .await
                .map_err(StepError::store(format!("remove {missing}")))?;
        }
        let built = {
            let _slot = self.slot().await;
            build::build_platform(job, lock, record, platform, settings).await
        };
        match built {
            Ok(mut built) => {
                built.build.lock = Some(lock_sha256);
                let b = self
                    .test_and_upload(settings, release, job, built, platform)
                    .await?;
                (self.say)(format!(
                    "{} {} {platform}: built {} ({:.1} MB, {:.1} s)",
                    job.package,
                    job.version,
                    b.asset,
                    b.size as f64 / 1e6,
                    started.elapsed().as_secs_f64()
                ));
                Ok(PlatformOutcome::Built(b))
            }
            Err(BuildError::NoWheel { message, .. })
                if retry && release.state == ReleaseState::Published =>
            {
                // Still none: the published release says so already.
                Ok(PlatformOutcome::Missing(message))
            }
            Err(BuildError::NoWheel { message, .. }) => {
                self.upload_record(
                    settings,
                    release,
                    job,
                    platform,
                    &missing_asset(&job.package, platform),
                    &PlatformRecord::Missing {
                        reason: message.clone(),
                    },
                )
                .await?;
                tracing::info!(package = %job.package, version = %job.version, %platform, reason = %message, "cannot exist: recorded");
                Ok(PlatformOutcome::Missing(message))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A platform that could not exist is tried again from a fresh lock: the recorded one
    /// lists only the wheels the index had then. It must pin the very same distributions, or
    /// the platforms of one version would differ.
    async fn relock(
        &self,
        settings: &BuildSettings,
        job: &VersionJob,
        record: &LockRecord,
        wheel: Option<&build::LocalWheel>,
    ) -> Result<Lock, StepError> {
        let fresh = build::relock(job, settings, wheel).await?;
        if fresh.pins() != record.pins {
            let changed: Vec<&str> = fresh
                .pins()
                .iter()
                .filter(|p| !record.pins.contains(p))
                .map(String::as_str)
                .collect();
            return Err(StepError::Mismatch(format!(
                "{} {}: the index now resolves other distributions ({}) than the recorded lock; \
                 a platform added now would not match the others",
                job.package,
                job.version,
                changed.join(", ")
            )));
        }
        Ok(fresh)
    }

    /// A pure-Python lock: one PEX, built (and tested) once, packed for every platform.
    pub async fn build_pure(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
        lock: &build::LockFile,
        record: &LockRecord,
        platforms: &[Platform],
    ) -> Vec<(Platform, Result<PlatformOutcome, StepError>)> {
        let Some(&first) = platforms
            .iter()
            .find(|p| Some(**p) == Platform::host())
            .or(platforms.first())
        else {
            return Vec::new();
        };
        // One failure of the one PEX is the version's, said once.
        let slot = self.slot().await;
        let built = match build::build_platform(job, lock, record, first, settings).await {
            Ok(b) => b,
            Err(e) => return vec![(first, Err(e.into()))],
        };
        // Tested once, on this machine: the same PEX serves every platform.
        drop(slot);
        let tested = match build::test_build(&built, first, job.python(), settings).await {
            Ok(t) => t,
            Err(e) => return vec![(first, Err(e.into()))],
        };
        self.say_tested(job, first, &tested);
        let mut out = Vec::new();
        for &p in platforms {
            let packed = match p == first {
                true => Ok(built.clone()),
                false => {
                    let _slot = self.slot().await;
                    build::reuse_for(job, &built, p, settings).await
                }
            };
            let result = match packed {
                Ok(mut b) => {
                    b.build.lock = Some(record.sha256.clone());
                    b.build.test = Some(match (&tested, p == first) {
                        (crate::release::TestOutcome::Passed { .. }, false) => {
                            crate::release::TestOutcome::NotTried {
                                why: format!("pure Python: the same PEX was tested as {first}"),
                            }
                        }
                        (t, _) => t.clone(),
                    });
                    self.upload_build(settings, release, job, b.build, p)
                        .await
                        .map(PlatformOutcome::Built)
                }
                Err(e) => Err(e.into()),
            };
            if let Ok(PlatformOutcome::Built(b)) = &result {
                (self.say)(format!(
                    "{} {} {p}: built {} ({:.1} MB, pure Python: one PEX for every platform)",
                    job.package,
                    job.version,
                    b.asset,
                    b.size as f64 / 1e6
                ));
            }
            out.push((p, result));
        }
        out
    }

    /// A test that ran says so (a long test is progress too); one that could not run on this
    /// machine is said when the version is listed.
    fn say_tested(
        &self,
        job: &VersionJob,
        platform: Platform,
        tested: &crate::release::TestOutcome,
    ) {
        if let crate::release::TestOutcome::Passed { command } = tested {
            tracing::info!(package = %job.package, version = %job.version, %platform, %command, "test passed");
            (self.say)(format!(
                "{} {} {platform}: tested: `{command}` passed",
                job.package, job.version
            ));
        }
    }

    async fn test_and_upload(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
        built: Built,
        platform: Platform,
    ) -> Result<PlatformBuild, StepError> {
        let tested = build::test_build(&built, platform, job.python(), settings).await?;
        self.say_tested(job, platform, &tested);
        let mut b = built.build;
        b.test = Some(tested);
        self.upload_build(settings, release, job, b, platform).await
    }

    /// The tarball and the .deb/.rpm made of it, then its record: the record is what makes
    /// the platform count.
    async fn upload_build(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
        mut b: PlatformBuild,
        platform: Platform,
    ) -> Result<PlatformBuild, StepError> {
        self.upload(
            release,
            Upload {
                name: &b.asset,
                path: &b.tarball,
                size: b.size,
                sha256: &b.sha256,
            },
        )
        .await?;
        b.packages = self
            .os_packages(settings, release, job, &b, platform)
            .await?;
        self.upload_record(
            settings,
            release,
            job,
            platform,
            &record_asset(&job.package, platform),
            &PlatformRecord::Built(b.clone()),
        )
        .await?;
        tracing::info!(package = %job.package, version = %job.version, %platform, sha256 = %b.sha256, "uploaded");
        Ok(b)
    }

    /// The `.deb`/`.rpm` the config asks for (`packages`), of a Linux platform's tarball,
    /// uploaded; their records, for the platform's. None for darwin.
    pub async fn os_packages(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
        b: &PlatformBuild,
        platform: Platform,
    ) -> Result<Vec<crate::release::info::OsPackageRecord>, StepError> {
        let formats = &job.inputs.packages;
        if formats.is_empty() || platform.os != crate::names::Os::Linux {
            return Ok(Vec::new());
        }
        let resolved = settings
            .flavours
            .resolve(job.inputs.build.as_ref())
            .map_err(BuildError::from)?;
        let binaries = crate::os_package::tarball_binaries(&b.tarball, &job.package)
            .map_err(|source| BuildError::OsPackage { platform, source })?;
        // A Git project's page is its repository's (none for file:// or ssh://), never PyPI's.
        let (origin, homepage) = match &job.inputs.source {
            None => (
                "PyPI",
                Some(format!("https://pypi.org/project/{}/", job.package)),
            ),
            Some(s) => ("its Git repository", crate::spec::git_web_url(&s.git)),
        };
        let summary = format!("{} {} from {origin}", job.package, job.version);
        let out = settings
            .work_dir
            .join(job.package.as_str())
            .join(job.version.to_string())
            .join(platform.to_string())
            .join("packages");
        let mut records = Vec::new();
        for &format in formats {
            let depends = resolved.depends(format);
            let input = crate::os_package::PackageInput {
                package: &job.package,
                version: &job.version,
                platform,
                python: job.python(),
                tarball: &b.tarball,
                binaries: &binaries,
                summary: &summary,
                depends,
                license: None,
                origin,
                homepage: homepage.as_deref(),
            };
            let built = crate::os_package::build_all(&[format], &input, &out)
                .await
                .map_err(|source| BuildError::OsPackage { platform, source })?;
            for p in built {
                self.upload(
                    release,
                    Upload {
                        name: &p.asset,
                        path: &p.path,
                        size: p.size,
                        sha256: &p.sha256,
                    },
                )
                .await?;
                (self.say)(format!(
                    "{} {} {platform}: made {} ({:.1} MB)",
                    job.package,
                    job.version,
                    p.asset,
                    p.size as f64 / 1e6
                ));
                records.push(crate::release::info::OsPackageRecord {
                    format: p.format,
                    asset: p.asset,
                    sha256: p.sha256,
                    size: p.size,
                    depends: depends.to_vec(),
                });
            }
        }
        Ok(records)
    }

    async fn upload_record(
        &self,
        settings: &BuildSettings,
        release: &Release,
        job: &VersionJob,
        platform: Platform,
        name: &str,
        record: &PlatformRecord,
    ) -> Result<(), StepError> {
        let dir = settings
            .work_dir
            .join(job.package.as_str())
            .join(job.version.to_string())
            .join(platform.to_string());
        std::fs::create_dir_all(&dir).map_err(BuildError::Io)?;
        let path = dir.join(name);
        let bytes = serde_json::to_vec_pretty(record).expect("records serialise");
        std::fs::write(&path, &bytes).map_err(BuildError::Io)?;
        let hashed = path.clone();
        let (size, sha256) = blocking::run(move || sha256_file(&hashed))
            .await
            .map_err(BuildError::Io)?;
        self.upload(
            release,
            Upload {
                name,
                path: &path,
                size,
                sha256: &sha256,
            },
        )
        .await
    }

    /// Uploads one asset of `release`; a failure names the asset.
    async fn upload(&self, release: &Release, up: Upload<'_>) -> Result<(), StepError> {
        let what = format!("store {}", up.name);
        self.store
            .upload(release, up)
            .await
            .map_err(StepError::store(what))
    }
}

/// Why a complete draft was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read {asset}: {message}")]
    Record { asset: String, message: String },
    /// A platform's tarball and its record disagree: both are removed from the draft, so the
    /// platform is built again.
    #[error(
        "{platform}: the tarball in the release ({actual}) is not the one its record names ({recorded}); it is built again"
    )]
    Inconsistent {
        platform: Platform,
        recorded: String,
        actual: String,
    },
    #[error("the build info is not complete ({0}): the release stays a draft")]
    Incomplete(String),
    #[error("cannot publish: {0}")]
    Store(StoreError),
}

/// Publishes a complete draft: every platform's record read and checked against its tarball,
/// merged into the build info, which must then be complete; one write makes it public.
async fn publish<S: ReleaseStore>(
    store: &S,
    release: &Release,
    platforms: &[Platform],
    scratch: &Path,
) -> Result<BuildInfo, PublishError> {
    let Some(mut info) = release.info.clone() else {
        return Err(PublishError::Incomplete(
            "the release has no build info".into(),
        ));
    };
    let package = info.package.clone();
    for &p in platforms {
        let record = if release
            .asset_named(&record_asset(&package, p))
            .is_some_and(|a| a.is_present())
        {
            record_asset(&package, p)
        } else if release
            .asset_named(&missing_asset(&package, p))
            .is_some_and(|a| a.is_present())
        {
            missing_asset(&package, p)
        } else {
            continue; // `incomplete` below names it
        };
        match read_record(store, release, &record, scratch).await? {
            PlatformRecord::Built(b) => {
                let tarball = release.asset(&package, p);
                let actual = tarball.and_then(|a| a.sha256.clone());
                let size = tarball.map(|a| a.size);
                // Its .deb/.rpm must be the ones its record names, as the tarball must.
                let package_differs = b.packages.iter().any(|pkg| {
                    let a = release.asset_named(&pkg.asset);
                    a.and_then(|a| a.sha256.as_deref())
                        .is_some_and(|sha| sha != pkg.sha256)
                        || a.map(|a| a.size) != Some(pkg.size)
                });
                if actual.as_deref().is_some_and(|a| a != b.sha256)
                    || size != Some(b.size)
                    || package_differs
                {
                    // Two builds of one platform crossed: rebuild it rather than guess.
                    let packages = b
                        .packages
                        .iter()
                        .filter(|pkg| release.asset_named(&pkg.asset).is_some())
                        .map(|pkg| pkg.asset.clone());
                    for asset in [package.asset_name(p), record].into_iter().chain(packages) {
                        store
                            .delete_asset(release, &asset)
                            .await
                            .map_err(PublishError::Store)?;
                    }
                    return Err(PublishError::Inconsistent {
                        platform: p,
                        recorded: b.sha256,
                        actual: actual.unwrap_or_else(|| format!("{} bytes", size.unwrap_or(0))),
                    });
                }
                info.platforms.insert(p, b);
                info.missing.remove(&p);
            }
            PlatformRecord::Missing { reason } => {
                if !info.platforms.contains_key(&p) {
                    info.missing.insert(p, reason);
                }
            }
        }
    }
    if let Some(why) = info.incomplete(platforms) {
        return Err(PublishError::Incomplete(why));
    }
    info.built_at = crate::build::now();
    store
        .publish(release, &info)
        .await
        .map_err(PublishError::Store)?;
    tracing::info!(package = %package, version = %info.version, release = %release.id, missing = ?info.missing.keys().collect::<Vec<_>>(), "published");
    Ok(info)
}

async fn read_record<S: ReleaseStore>(
    store: &S,
    release: &Release,
    asset: &str,
    scratch: &Path,
) -> Result<PlatformRecord, PublishError> {
    let fail = |message: String| PublishError::Record {
        asset: asset.to_owned(),
        message,
    };
    let path = store
        .fetch(release, asset, &scratch.join(asset))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let bytes = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))
}

/// What one package's manifest is rendered from: its spec and the versions it may list.
pub struct ManifestInput<'a> {
    pub spec: &'a PackageSpec,
    pub complete: Vec<CompleteVersion>,
    /// The source URL template of the release store the versions are in.
    pub source: String,
}

/// The manifest step, for any sink: renders each package's manifest from the versions it may
/// list, on top of what the sink holds (`current`); `sync` commits many packages at once, the
/// controller one.
pub fn manifest_renderer<'a>(
    inputs: &'a [ManifestInput<'a>],
    repository: Option<&'a str>,
) -> impl Fn(&PackageName, Option<&str>) -> Result<Option<Rendered>, String> + Send + Sync + 'a {
    move |package, current| {
        let Some(input) = inputs.iter().find(|i| &i.spec.package == package) else {
            return Ok(None);
        };
        crate::gitops::render_package(
            input.spec,
            &input.source,
            repository,
            &input.complete,
            current,
        )
    }
}
