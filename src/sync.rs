//! The embedded executor behind `hermit-pex sync`: each version goes through rounds of
//! observe → plan → step (the planner says which step comes next, [`StepRunner::run`] does
//! it) as local processes, against a release store, until nothing is left to do; then one
//! manifest commit. One failing version or platform is reported and the others go on.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use pep440_rs::Version;
use tokio::sync::Semaphore;

use crate::build::{BuildSettings, VersionJob};
use crate::gitops::{CommitOutcome, ManifestSink, SinkError};
use crate::hermit::CompleteVersion;
use crate::names::{PackageName, Platform};
use crate::plan::{Failure, Plan, PlanOptions, Step, Tried, VersionPlan, plan_version};
use crate::pypi::IndexVersion;
use crate::release::{Release, ReleaseStore};
use crate::spec::LoadedSpec;
use crate::step::{Done, ManifestInput, PlatformOutcome, PublishError, StepError, StepRunner};
use crate::verify::Verdict;

/// Rounds of observe → plan → step for one version before giving up: a version needs at most
/// discard, create, lock, build, publish.
const MAX_ROUNDS: usize = 8;

pub struct SyncRun<'a, S> {
    pub store: &'a S,
    pub settings: BuildSettings,
    /// Parallel pex runs, across versions and platforms.
    pub jobs: Arc<Semaphore>,
    /// `repository = ...` in manifests, when releases live in a repository.
    pub repository: Option<String>,
    /// How releases made by an older hermit-pex (no test outcome recorded) are tried before a
    /// manifest lists them (`None`: listed without trying).
    pub verification: Option<Verification>,
    pub options: PlanOptions,
    pub progress: Progress,
}

#[derive(Debug, Default)]
pub struct PackageOutcome {
    pub built: usize,
    pub published: usize,
    pub failures: Vec<Failure>,
}

#[derive(Default)]
struct VersionOutcome {
    built: usize,
    published: bool,
    failures: Vec<Failure>,
}

/// Why a version stopped: the step that failed, on which platform.
struct Halt {
    platform: Option<Platform>,
    reason: &'static str,
    message: String,
}

impl Halt {
    fn version(reason: &'static str, message: impl ToString) -> Self {
        Self {
            platform: None,
            reason,
            message: message.to_string(),
        }
    }
}

impl From<StepError> for Halt {
    fn from(e: StepError) -> Self {
        Self {
            platform: e.platform(),
            reason: e.reason(),
            message: e.to_string(),
        }
    }
}

/// One version's way through its steps in `sync`.
struct VersionRun<'r, 'a, S> {
    sync: &'r SyncRun<'a, S>,
    spec: &'r crate::spec::PackageSpec,
    iv: &'r IndexVersion,
    job: VersionJob,
    steps: StepRunner<'r, S>,
    out: VersionOutcome,
}

impl<S: ReleaseStore> VersionRun<'_, '_, S> {
    fn fail(&mut self, platform: Option<Platform>, reason: &str, message: String) {
        let f = Failure::new(&self.iv.version, platform, reason, message);
        self.sync.report(&self.spec.package, &f);
        self.out.failures.push(f);
    }

    fn say(&self, what: String) {
        (self.steps.say)(format!("{} {}: {what}", self.spec.package, self.iv.version));
    }

    /// Rounds of observe → plan → the next step, until no step is left; the settled plan.
    async fn rounds(&mut self, first: VersionPlan) -> Result<VersionPlan, Halt> {
        let store = self.sync.store;
        let mut vp = first;
        // Platforms recorded as impossible are tried once, in the first round, not again in
        // each round after.
        let mut options = self.sync.options.clone();
        for round in 0.. {
            let releases = match store.releases(&self.spec.package).await {
                Ok(rs) => rs,
                Err(e) if round > 0 => {
                    return Err(Halt::version(
                        "ReleaseStoreFailed",
                        format!("cannot read releases: {e}"),
                    ));
                }
                Err(_) => Vec::new(),
            };
            let releases: Vec<Release> = releases
                .into_iter()
                .filter(|r| r.version == self.iv.version)
                .collect();
            if round > 0 {
                options.retry_missing = false;
                let rs: Vec<&Release> = releases.iter().collect();
                vp = plan_version(self.spec, self.iv, &rs, &[], &options);
            }
            if vp.steps.is_empty() {
                return Ok(vp);
            }
            if round >= MAX_ROUNDS {
                return Err(Halt::version(
                    "NotSettled",
                    format!("still has steps after {MAX_ROUNDS} rounds: {:?}", vp.steps),
                ));
            }
            self.step(&vp, &releases).await?;
        }
        unreachable!("the loop returns")
    }

    /// Discards first; then the one next step (all of the platform builds at once).
    async fn step(&mut self, vp: &VersionPlan, releases: &[Release]) -> Result<(), Halt> {
        for step in &vp.steps {
            if let Step::Discard { release, why } = step {
                self.say(format!("discarding draft {release}: {why}"));
                self.steps.run(&self.job, step, releases).await?;
            }
        }
        let next: Vec<&Step> = vp
            .steps
            .iter()
            .filter(|s| !matches!(s, Step::Discard { .. }))
            .collect();
        match next.first() {
            None | Some(Step::Discard { .. }) => Ok(()),
            Some(step @ Step::Create) => {
                self.steps.run(&self.job, step, releases).await?;
                Ok(())
            }
            Some(step @ Step::Lock { platforms, .. }) => {
                let done = self.steps.run(&self.job, step, releases).await?;
                let Done::Locked(results) = done else {
                    unreachable!("a lock step is locked")
                };
                if !results.is_empty() {
                    self.sync.progress.inc_by(platforms.len());
                }
                self.count(results)
            }
            Some(Step::Build { .. }) => {
                let (sync, steps, job) = (self.sync, &self.steps, &self.job);
                let builds = next.iter().filter_map(|step| match step {
                    Step::Build { platform, .. } => Some(async move {
                        let result = steps.run(job, step, releases).await.map(|d| match d {
                            Done::Built(o) => o,
                            _ => unreachable!("a build step is built"),
                        });
                        sync.progress.inc_by(1);
                        (*platform, result)
                    }),
                    _ => None,
                });
                let results = futures::future::join_all(builds).await;
                self.count(results)
            }
            Some(step @ Step::Publish { .. }) => {
                match self.steps.run(&self.job, step, releases).await {
                    Ok(Done::Published(info)) => {
                        self.out.published = true;
                        let missing: Vec<String> =
                            info.missing.keys().map(ToString::to_string).collect();
                        self.say(if missing.is_empty() {
                            "released".into()
                        } else {
                            format!(
                                "released without {} (cannot exist, see above)",
                                missing.join(", ")
                            )
                        });
                        Ok(())
                    }
                    Ok(_) => unreachable!("a publish step publishes"),
                    // The platform was removed from the draft: the next round builds it.
                    Err(StepError::Publish(e @ PublishError::Inconsistent { .. })) => {
                        self.say(e.to_string());
                        Ok(())
                    }
                    Err(e) => Err(Halt::from(e)),
                }
            }
        }
    }

    /// Counts platform outcomes; says each platform that cannot exist; the first failure
    /// stops the version (the others are reported too).
    fn count(
        &mut self,
        results: Vec<(Platform, Result<PlatformOutcome, StepError>)>,
    ) -> Result<(), Halt> {
        let mut failed = None;
        for (p, r) in results {
            match r {
                Ok(PlatformOutcome::Built(_)) => self.out.built += 1,
                Ok(PlatformOutcome::AlreadyBuilt) => {}
                Ok(PlatformOutcome::Missing(why)) => self.fail(
                    Some(p),
                    "NoWheelForPlatform",
                    format!("{why}; recorded: the version is released for the other platforms"),
                ),
                Err(e) if failed.is_none() => failed = Some(Halt::from(e)),
                Err(e) => self.fail(Some(p), e.reason(), e.to_string()),
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

impl<S: ReleaseStore> SyncRun<'_, S> {
    /// Takes every version of the plan as far as it goes.
    pub async fn run(
        &self,
        spec: &LoadedSpec,
        index: &[IndexVersion],
        plan: &Plan,
    ) -> PackageOutcome {
        let by_version: HashMap<&Version, &IndexVersion> =
            index.iter().map(|iv| (&iv.version, iv)).collect();
        let mut outcome = PackageOutcome::default();
        let mut running: FuturesUnordered<_> = FuturesUnordered::new();
        for vp in &plan.versions {
            if vp.steps.is_empty() {
                // Nothing to do now; what blocks it is said once.
                outcome
                    .failures
                    .extend(self.blocked(&spec.spec.package, vp));
                continue;
            }
            if let Some(iv) = by_version.get(&vp.version) {
                running.push(self.run_version(spec, iv, vp.clone()));
            }
        }
        while let Some(v) = running.next().await {
            outcome.built += v.built;
            outcome.published += usize::from(v.published);
            outcome.failures.extend(v.failures);
        }
        outcome
    }

    fn blocked(&self, package: &PackageName, vp: &VersionPlan) -> Vec<Failure> {
        for f in &vp.blockers {
            self.report(package, f);
        }
        vp.blockers.clone()
    }

    fn report(&self, package: &PackageName, f: &Failure) {
        let on = f.platform.map_or_else(String::new, |p| format!(" {p}"));
        self.progress.line(format!(
            "{package} {}{on}: FAILED ({}): {}",
            f.version, f.reason, f.message
        ));
    }

    /// Observe → plan → do the next steps, until the version is settled or a step fails.
    async fn run_version(
        &self,
        spec: &LoadedSpec,
        iv: &IndexVersion,
        first: VersionPlan,
    ) -> VersionOutcome {
        let s = &spec.spec;
        let say = |line: String| self.progress.line(line);
        let mut run = VersionRun {
            sync: self,
            spec: s,
            iv,
            job: VersionJob::new(s, iv, first.python),
            steps: StepRunner {
                store: self.store,
                settings: Some(&self.settings),
                scratch: &self.settings.work_dir,
                slots: Some(&self.jobs),
                say: &say,
            },
            out: VersionOutcome::default(),
        };
        match run.rounds(first).await {
            Ok(settled) => {
                // The platforms its lock found cannot exist, said once (a version held back
                // for them says so among its blockers).
                let asked = |p: &Platform| {
                    let only = self.options.platforms.as_ref();
                    only.is_none_or(|only| only.contains(p))
                };
                for (p, why) in settled.missing.iter().filter(|(p, _)| asked(p)) {
                    if !settled.blockers.iter().any(|b| b.platform == Some(*p)) {
                        let why = format!(
                            "{why}; recorded: the version is released for the other platforms"
                        );
                        run.fail(Some(*p), "NoWheelForPlatform", why);
                    }
                }
                for f in settled.blockers {
                    run.sync.report(&s.package, &f);
                    run.out.failures.push(f);
                }
            }
            Err(Halt {
                platform,
                reason,
                message,
            }) => run.fail(platform, reason, message),
        }
        run.out
    }

    /// The versions a manifest may list, tried the way their builds recorded (releases made by
    /// an older hermit-pex are tried here, once per digest, test and binaries).
    async fn listable(
        &self,
        spec: &LoadedSpec,
    ) -> Result<(Vec<CompleteVersion>, Vec<Failure>), String> {
        let s = &spec.spec;
        let releases = self
            .store
            .releases(&s.package)
            .await
            .map_err(|e| e.to_string())?;
        let listing = crate::plan::listing(s, &releases);
        // A published asset that is not what was built and tested is never listed.
        let mut failures: Vec<Failure> = listing
            .mismatches
            .iter()
            .map(|m| {
                let why = format!("left out of the manifest: {}", m.why());
                Failure::new(&m.version, Some(m.platform), "AssetMismatch", why)
            })
            .collect();
        let mut complete = Vec::new();
        for l in listing.versions {
            let c = l.complete;
            match l.tried {
                Tried::Passed => {}
                Tried::NotTried(why) => self.progress.line(format!(
                    "{} {}: listed without its test having run: {why}",
                    s.package, c.version
                )),
                Tried::Unknown => {
                    if let Some(v) = &self.verification
                        && let Some(host) = Platform::host().filter(|h| c.sha256.contains_key(h))
                        && let Some(r) = releases.iter().find(|r| {
                            r.version == c.version
                                && r.state == crate::release::ReleaseState::Published
                        })
                    {
                        match self.verify(v, spec, r, &c, host).await {
                            Verdict::Passed => {}
                            Verdict::Skipped(why) => self.progress.line(format!(
                                "{} {}: not tried before listing: {why}",
                                s.package, c.version
                            )),
                            Verdict::Failed(why) => {
                                failures.push(Failure::new(
                                    &c.version,
                                    Some(host),
                                    "TestFailed",
                                    format!("left out of the manifest: {why}"),
                                ));
                                continue;
                            }
                        }
                    }
                }
            }
            complete.push(c);
        }
        Ok((complete, failures))
    }

    async fn verify(
        &self,
        v: &Verification,
        spec: &LoadedSpec,
        release: &Release,
        c: &CompleteVersion,
        host: Platform,
    ) -> Verdict {
        let s = &spec.spec;
        let sha256 = &c.sha256[&host];
        let test =
            match crate::build::scripts::test_command(s.test.as_deref().unwrap_or(""), &c.binaries)
            {
                Ok(t) => t,
                Err(e) => return Verdict::Failed(e.to_string()),
            };
        // What was tried is the tarball with this test and these launchers: a changed config
        // is tried again.
        let key = crate::digest::sha256_hex(format!(
            "{sha256}\n{test}\n{}",
            c.binaries
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let marker = v.cache_dir.join("verified").join(&key);
        if marker.exists() {
            return Verdict::Passed;
        }
        let asset = s.package.asset_name(host);
        let Ok(scratch) = tempfile::tempdir() else {
            return Verdict::Skipped("no temporary directory".into());
        };
        let tarball = match self
            .store
            .fetch(release, &asset, &scratch.path().join(&asset))
            .await
        {
            Ok(p) => p,
            Err(e) => return Verdict::Failed(format!("cannot fetch {asset}: {e}")),
        };
        let verdict = crate::verify::verify(
            &tarball,
            sha256,
            &test,
            &c.binaries,
            c.python,
            &v.cache_dir.join("pex-root-verify"),
            v.timeout,
        )
        .await;
        if verdict == Verdict::Passed {
            let _ = std::fs::create_dir_all(marker.parent().expect("in the cache"));
            let _ = std::fs::write(&marker, format!("{} {} {host}\n", s.package, c.version));
        }
        verdict
    }

    /// Renders every package's manifest on top of what the sink holds and commits the changed
    /// ones together. Returns the outcome and the versions left out.
    pub async fn commit_manifests<K: ManifestSink>(
        &self,
        specs: &[&LoadedSpec],
        sink: &K,
    ) -> (
        Result<CommitOutcome, SinkError>,
        Vec<(PackageName, Failure)>,
    ) {
        let mut inputs = Vec::new();
        let mut left_out = Vec::new();
        let mut unreadable = Vec::new();
        for spec in specs {
            match self.listable(spec).await {
                Ok((complete, failures)) => {
                    left_out.extend(failures.into_iter().map(|f| (spec.spec.package.clone(), f)));
                    inputs.push(ManifestInput {
                        spec: &spec.spec,
                        complete,
                        source: self.store.source_template(&spec.spec.package),
                    });
                }
                Err(e) => unreadable.push((
                    spec.spec.package.clone(),
                    format!("cannot read releases: {e}"),
                )),
            }
        }
        let packages: Vec<PackageName> = inputs.iter().map(|i| i.spec.package.clone()).collect();
        let render = crate::step::manifest_renderer(&inputs, self.repository.as_deref());
        let mut result = sink.commit(&packages, &render).await;
        if let Ok(outcome) = &mut result {
            outcome.failed.extend(unreadable);
        }
        (result, left_out)
    }
}

impl<S: ReleaseStore> SyncRun<'_, S> {
    /// Puts the wheels of every package's published, tested versions into `index` (says each
    /// file listed). Returns what failed, per package: a file listed with another digest, a
    /// file that could not be fetched, an index that could not be written.
    pub async fn index_wheels(
        &self,
        specs: &[&LoadedSpec],
        index: &crate::wheels::WheelIndex,
    ) -> Vec<(PackageName, String)> {
        let scratch = self.settings.work_dir.join("wheels");
        let fetcher = if index.locked {
            match crate::lock::Fetcher::new(
                self.settings.indexes.clone(),
                &self.settings.cache_dir,
                self.settings.timeout,
            ) {
                Ok(f) => Some(f),
                Err(e) => {
                    let p = specs.first().map(|s| s.spec.package.clone());
                    return p.into_iter().map(|p| (p, e.to_string())).collect();
                }
            }
        } else {
            None
        };
        let sources = crate::wheels::Sources {
            store: self.store,
            fetcher: fetcher.as_ref(),
            scratch: &scratch,
        };
        let mut failed = Vec::new();
        for (s, releases) in &self.releases_of(specs, &mut failed).await {
            match crate::wheels::index_package(index, &sources, s, releases).await {
                Ok(out) => {
                    for (project, file) in &out.added {
                        let of = if project == &s.package {
                            String::new()
                        } else {
                            format!(" (locked by {})", s.package)
                        };
                        self.progress.line(format!(
                            "{project}: indexed {file}{of} in {}",
                            index.describe()
                        ));
                    }
                    if let Some(sha) = &out.commit {
                        self.progress
                            .line(format!("wheel index committed as {sha}"));
                    }
                    failed.extend(
                        out.conflicts
                            .iter()
                            .map(|c| (s.package.clone(), format!("not indexed: {c}"))),
                    );
                    failed.extend(out.failed.iter().map(|(file, why)| {
                        (s.package.clone(), format!("{file} not indexed: {why}"))
                    }));
                }
                Err(e) => failed.push((
                    s.package.clone(),
                    format!("the wheel index {} was not written: {e}", index.describe()),
                )),
            }
        }
        failed
    }
}

impl<S: ReleaseStore> SyncRun<'_, S> {
    /// Each package's releases; a package whose releases cannot be read is put in `failed`.
    async fn releases_of<'a>(
        &self,
        specs: &[&'a LoadedSpec],
        failed: &mut Vec<(PackageName, String)>,
    ) -> Vec<(&'a crate::spec::PackageSpec, Vec<Release>)> {
        let mut out = Vec::new();
        for spec in specs {
            let s = &spec.spec;
            match self.store.releases(&s.package).await {
                Ok(r) => out.push((s, r)),
                Err(e) => failed.push((s.package.clone(), format!("cannot read releases: {e}"))),
            }
        }
        out
    }

    /// Uploads each package's published Git-source wheels to every index of `uploaders`
    /// (says each file uploaded, or found there). Returns what failed, per package.
    pub async fn publish_wheels(
        &self,
        specs: &[&LoadedSpec],
        uploaders: &[crate::wheels::upload::Uploader],
    ) -> Vec<(PackageName, String)> {
        let scratch = self.settings.work_dir.join("wheels");
        let sources = crate::wheels::Sources {
            store: self.store,
            fetcher: None,
            scratch: &scratch,
        };
        let mut failed = Vec::new();
        for (s, releases) in &self.releases_of(specs, &mut failed).await {
            for up in uploaders {
                let out = crate::wheels::upload::publish_package(up, &sources, s, releases).await;
                let to = up.index.describe();
                for f in &out.uploaded {
                    self.progress
                        .line(format!("{}: published {f} to {to}", s.package));
                }
                for f in &out.already {
                    self.progress
                        .line(format!("{}: {f} is on {to} already", s.package));
                }
                failed.extend(
                    out.failed
                        .iter()
                        .map(|e| (s.package.clone(), format!("not published: {e}"))),
                );
            }
        }
        failed
    }
}

/// Trying releases made by an older hermit-pex before they are listed.
pub struct Verification {
    pub cache_dir: PathBuf,
    pub timeout: std::time::Duration,
}

/// Progress on a terminal (a bar over the build count), plain lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(total_builds: usize) -> Self {
        let bar = (std::io::stderr().is_terminal() && total_builds > 0).then(|| {
            let bar = ProgressBar::new(total_builds as u64);
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} builds")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Self { bar }
    }

    pub fn line(&self, msg: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.println(msg.as_ref()),
            None => eprintln!("{}", msg.as_ref()),
        }
    }

    fn inc_by(&self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
