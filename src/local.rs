//! The embedded executor behind `hermit-pex sync`: each version goes through its steps (the
//! planner says which comes next, `pipeline` does it) as local processes, against a release
//! store, until nothing is left to do; then one manifest commit. One failing version or
//! platform is reported and the others go on.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use pep440_rs::Version;
use tokio::sync::Semaphore;

use crate::build::{BuildSettings, Lock, VersionJob};
use crate::gitops::{CommitOutcome, ManifestSink, Rendered, SinkError};
use crate::hermit::CompleteVersion;
use crate::names::{PackageName, Platform};
use crate::pipeline::{PlatformOutcome, Steps};
use crate::plan::{Plan, PlanOptions, Step, Tried, VersionPlan, plan_version};
use crate::pypi::IndexVersion;
use crate::release::{LockRecord, Release, ReleaseId, ReleaseStore};
use crate::spec::LoadedSpec;
use crate::verify::Verdict;

/// Rounds of observe → plan → step for one version before giving up: a version needs at most
/// discard, create, lock, build, publish.
const MAX_ROUNDS: usize = 8;

pub struct Sync<'a, S> {
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

/// A (version, platform) that did not make it, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub version: Version,
    pub platform: Option<Platform>,
    pub message: String,
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

impl<S: ReleaseStore> Sync<'_, S> {
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
        vp.blockers
            .iter()
            .map(|b| {
                let f = Failure {
                    version: vp.version.clone(),
                    platform: b.platform,
                    message: format!("{}: {}", b.reason, b.message),
                };
                self.report(package, &f);
                f
            })
            .collect()
    }

    fn report(&self, package: &PackageName, f: &Failure) {
        let on = f.platform.map_or_else(String::new, |p| format!(" {p}"));
        self.progress.line(format!(
            "{package} {}{on}: FAILED: {}",
            f.version, f.message
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
        let steps = Steps {
            store: self.store,
            settings: &self.settings,
            say: &say,
        };
        let job = VersionJob::new(s, iv, first.python);
        let mut out = VersionOutcome::default();
        let mut resolved: Option<(Lock, LockRecord)> = None;
        let mut vp = first;
        let mut releases: Vec<Release> = Vec::new();
        // Platforms recorded as impossible are tried once, in the first round, not again in
        // each round after.
        let mut options = self.options.clone();
        let mut fail = |out: &mut VersionOutcome, platform: Option<Platform>, message: String| {
            let f = Failure {
                version: iv.version.clone(),
                platform,
                message,
            };
            self.report(&s.package, &f);
            out.failures.push(f);
        };
        for round in 0.. {
            if round > 0 {
                match self.store.releases(&s.package).await {
                    Ok(rs) => {
                        releases = rs.into_iter().filter(|r| r.version == iv.version).collect()
                    }
                    Err(e) => {
                        fail(&mut out, None, format!("cannot read releases: {e}"));
                        return out;
                    }
                }
                let rs: Vec<&Release> = releases.iter().collect();
                options.retry_missing = false;
                vp = plan_version(s, iv, &rs, &[], &options);
            } else if let Ok(rs) = self.store.releases(&s.package).await {
                releases = rs.into_iter().filter(|r| r.version == iv.version).collect();
            }
            if vp.steps.is_empty() {
                break;
            }
            if round >= MAX_ROUNDS {
                fail(
                    &mut out,
                    None,
                    format!("still has steps after {MAX_ROUNDS} rounds: {:?}", vp.steps),
                );
                return out;
            }
            let find = |id: &ReleaseId| releases.iter().find(|r| &r.id == id).cloned();
            // Discards first; then the one next step (all of the platform builds at once).
            for step in &vp.steps {
                if let Step::Discard { release, why } = step
                    && let Some(r) = find(release)
                {
                    say(format!(
                        "{} {}: discarding draft {release}: {why}",
                        s.package, iv.version
                    ));
                    if let Err(e) = self.store.delete_draft(&r).await {
                        fail(
                            &mut out,
                            None,
                            format!("cannot discard the draft {release}: {e}"),
                        );
                        return out;
                    }
                }
            }
            let next: Vec<&Step> = vp
                .steps
                .iter()
                .filter(|s| !matches!(s, Step::Discard { .. }))
                .collect();
            match next.first() {
                None => continue,
                Some(Step::Create) => {
                    // Resolved before anything is created: a config the package cannot meet
                    // (a binary it does not have) leaves nothing behind.
                    if resolved.is_none() {
                        match self.resolve(&steps, &job).await {
                            Ok(r) => resolved = Some(r),
                            Err(e) => {
                                fail(&mut out, e.platform(), e.to_string());
                                return out;
                            }
                        }
                    }
                    if let Err(e) = self.store.create(&job.info()).await {
                        fail(&mut out, None, format!("cannot create the release: {e}"));
                        return out;
                    }
                }
                Some(Step::Lock { release, platforms }) => {
                    let Some(r) = find(release) else { continue };
                    // Locked already (a pure version that lacks platforms): build from it.
                    let r = if r.lock(&s.package).is_some() {
                        r
                    } else {
                        if resolved.is_none() {
                            match self.resolve(&steps, &job).await {
                                Ok(x) => resolved = Some(x),
                                Err(e) => {
                                    fail(&mut out, e.platform(), e.to_string());
                                    return out;
                                }
                            }
                        }
                        let (lock, record) = resolved.as_ref().expect("resolved above");
                        match steps.record_lock(&r, &job, lock, record).await {
                            Ok(r) => r,
                            Err(e) => {
                                fail(&mut out, None, e.to_string());
                                return out;
                            }
                        }
                    };
                    let (lock, record) = match steps.lock_file(&r, &job).await {
                        Ok(x) => x,
                        Err(e) => {
                            fail(&mut out, None, e.to_string());
                            return out;
                        }
                    };
                    if record.pure {
                        let _permit = self.permit().await;
                        let results = steps.build_pure(&r, &job, &lock, &record, platforms).await;
                        self.progress.inc_by(platforms.len());
                        if !self.count(&mut out, results, &mut fail) {
                            return out;
                        }
                    }
                }
                Some(Step::Build { release, .. }) => {
                    let Some(r) = find(release) else { continue };
                    let (lock, record) = match steps.lock_file(&r, &job).await {
                        Ok(x) => x,
                        Err(e) => {
                            fail(&mut out, None, e.to_string());
                            return out;
                        }
                    };
                    let platforms: Vec<Platform> = next
                        .iter()
                        .filter_map(|s| match s {
                            Step::Build { platform, .. } => Some(*platform),
                            _ => None,
                        })
                        .collect();
                    let builds = platforms.iter().map(|&p| {
                        let (r, job, lock, record, steps) = (&r, &job, &lock, &record, &steps);
                        async move {
                            let _permit = self.permit().await;
                            let result = steps.build(r, job, lock, record, p).await;
                            self.progress.inc_by(1);
                            (p, result)
                        }
                    });
                    let results = futures::future::join_all(builds).await;
                    if !self.count(&mut out, results, &mut fail) {
                        return out;
                    }
                }
                Some(Step::Publish { release }) => {
                    let Some(r) = find(release) else { continue };
                    let scratch = match tempfile::tempdir_in(&self.settings.work_dir) {
                        Ok(d) => d,
                        Err(e) => {
                            fail(&mut out, None, format!("no scratch directory: {e}"));
                            return out;
                        }
                    };
                    match crate::pipeline::publish(self.store, &r, &s.platforms(), scratch.path())
                        .await
                    {
                        Ok(info) => {
                            out.published = true;
                            let missing: Vec<String> =
                                info.missing.keys().map(ToString::to_string).collect();
                            say(if missing.is_empty() {
                                format!("{} {}: released", s.package, iv.version)
                            } else {
                                format!(
                                    "{} {}: released without {} (cannot exist, see above)",
                                    s.package,
                                    iv.version,
                                    missing.join(", ")
                                )
                            });
                        }
                        Err(e @ crate::pipeline::PublishError::Inconsistent { .. }) => {
                            // The platform was removed from the draft: the next round builds it.
                            say(format!("{} {}: {e}", s.package, iv.version));
                        }
                        Err(e) => {
                            fail(&mut out, None, e.to_string());
                            return out;
                        }
                    }
                }
                Some(Step::Discard { .. }) => unreachable!("filtered out above"),
            }
        }
        for b in &vp.blockers {
            fail(&mut out, b.platform, format!("{}: {}", b.reason, b.message));
        }
        out
    }

    async fn resolve(
        &self,
        steps: &Steps<'_, S>,
        job: &VersionJob,
    ) -> Result<(Lock, LockRecord), crate::pipeline::StepError> {
        let _permit = self.permit().await;
        steps.resolve(job).await
    }

    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.jobs
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Counts platform outcomes; says each platform that cannot exist; false when one failed.
    fn count(
        &self,
        out: &mut VersionOutcome,
        results: Vec<(
            Platform,
            Result<PlatformOutcome, crate::pipeline::StepError>,
        )>,
        fail: &mut impl FnMut(&mut VersionOutcome, Option<Platform>, String),
    ) -> bool {
        let mut ok = true;
        for (p, r) in results {
            match r {
                Ok(PlatformOutcome::Built(_)) => out.built += 1,
                Ok(PlatformOutcome::Missing(why)) => fail(
                    out,
                    Some(p),
                    format!("{why}; recorded: the version is released for the other platforms"),
                ),
                Err(e) => {
                    ok = false;
                    fail(out, Some(p), e.to_string());
                }
            }
        }
        ok
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
        let mut complete = Vec::new();
        let mut failures = Vec::new();
        for l in crate::plan::listable(s, &releases) {
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
                                failures.push(Failure {
                                    version: c.version.clone(),
                                    platform: Some(host),
                                    message: format!("left out of the manifest: {why}"),
                                });
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
        let key = crate::pypi::hex(&<sha2::Sha256 as sha2::Digest>::digest(format!(
            "{sha256}\n{test}\n{}",
            c.binaries
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )));
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
        let mut inputs = HashMap::new();
        let mut left_out = Vec::new();
        let mut unreadable = Vec::new();
        for spec in specs {
            match self.listable(spec).await {
                Ok((complete, failures)) => {
                    left_out.extend(failures.into_iter().map(|f| (spec.spec.package.clone(), f)));
                    inputs.insert(spec.spec.package.clone(), (*spec, complete));
                }
                Err(e) => unreadable.push((
                    spec.spec.package.clone(),
                    format!("cannot read releases: {e}"),
                )),
            }
        }
        let packages: Vec<PackageName> = inputs.keys().cloned().collect();
        let source_of = |p: &PackageName| self.store.source_template(p);
        let render =
            |package: &PackageName, current: Option<&str>| -> Result<Option<Rendered>, String> {
                let (spec, complete) = &inputs[package];
                crate::gitops::render_package(
                    &spec.spec,
                    &source_of(package),
                    self.repository.as_deref(),
                    complete,
                    current,
                )
            };
        let mut result = sink.commit(&packages, &render).await;
        if let Ok(outcome) = &mut result {
            outcome.failed.extend(unreadable);
        }
        (result, left_out)
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
