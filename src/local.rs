//! The embedded executor behind `hermit-pex sync`: runs a plan's actions on this machine (builds
//! as local processes, a release store, manifests in a directory). One failing version or
//! platform is reported and the others go on.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use pep440_rs::Version;
use tokio::sync::Semaphore;

use crate::build::{self, BuildInfo, BuildSettings, PlatformBuild, VersionJob};
use crate::gitops::{CommitOutcome, ManifestSink, Rendered, SinkError};
use crate::hermit::{self, CompleteVersion};
use crate::names::{PackageName, Platform};
use crate::plan::{Action, Plan, VersionPlan};
use crate::release::{ReleaseMeta, ReleaseStore, Upload};
use crate::spec::LoadedSpec;
use crate::verify::Verdict;

pub struct Sync<'a, S> {
    pub store: &'a S,
    pub settings: BuildSettings,
    /// Parallel pex runs, across versions and platforms.
    pub jobs: Arc<Semaphore>,
    /// `repository = ...` in manifests, when releases live in a repository.
    pub repository: Option<String>,
    /// Try each release's host tarball before a manifest lists it (`None`: list without trying).
    pub verification: Option<Verification>,
    pub progress: Progress,
}

/// A (version, platform) that did not make it, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub version: Version,
    pub platform: Option<Platform>,
    pub message: String,
}

#[derive(Debug)]
pub struct PackageOutcome {
    pub built: usize,
    pub published: usize,
    pub failures: Vec<Failure>,
}

impl<S: ReleaseStore> Sync<'_, S> {
    /// Executes a package's plan: releases, builds, uploads, publishing.
    pub async fn run(&self, spec: &LoadedSpec, plan: &Plan) -> PackageOutcome {
        let mut outcome = PackageOutcome {
            built: 0,
            published: 0,
            failures: Vec::new(),
        };
        let mut running: FuturesUnordered<_> = plan
            .versions
            .iter()
            .filter(|vp| {
                plan.actions
                    .iter()
                    .any(|a| a.version() == Some(&vp.version))
            })
            .map(|vp| self.run_version(spec, plan, vp))
            .collect();
        while let Some(v) = running.next().await {
            outcome.built += v.built;
            outcome.published += usize::from(v.published);
            outcome.failures.extend(v.failures);
        }
        outcome
    }

    async fn run_version(
        &self,
        spec: &LoadedSpec,
        plan: &Plan,
        vp: &VersionPlan,
    ) -> VersionOutcome {
        let s = &spec.spec;
        let package = &s.package;
        let mut out = VersionOutcome::default();
        let fail = |platform: Option<Platform>, message: String| Failure {
            version: vp.version.clone(),
            platform,
            message,
        };
        let actions: Vec<&Action> = plan
            .actions
            .iter()
            .filter(|a| a.version() == Some(&vp.version))
            .collect();
        let builds: Vec<Platform> = actions.iter().filter_map(|a| a.build_platform()).collect();
        let publish = actions
            .iter()
            .any(|a| matches!(a, Action::PublishRelease { .. }));

        if actions
            .iter()
            .any(|a| matches!(a, Action::CreateRelease { .. }))
            || !builds.is_empty()
        {
            let meta = ReleaseMeta {
                python: vp.python,
                config_version: s.config_version,
            };
            if let Err(e) = self.store.create(package, &vp.version, &meta).await {
                out.failures
                    .push(fail(None, format!("cannot create the release: {e}")));
                return out;
            }
        }

        if !builds.is_empty() {
            let job = VersionJob {
                package: package.clone(),
                version: vp.version.clone(),
                python: vp.python,
                binaries: s.binaries.clone(),
                extra_packages: s.extra_packages.clone(),
                config_version: s.config_version,
            };
            match self.build_version(&job, &builds).await {
                Err(message) => out.failures.push(fail(None, message)),
                Ok((info, results)) => {
                    for (platform, result) in results {
                        let uploaded = match result {
                            Ok(b) => self.upload(&job, &b).await,
                            Err(message) => Err(message),
                        };
                        match uploaded {
                            Ok(()) => out.built += 1,
                            Err(message) => out.failures.push(fail(Some(platform), message)),
                        }
                    }
                    if let Err(e) = self.store.put_build_info(&info).await {
                        out.failures
                            .push(fail(None, format!("cannot record the build info: {e}")));
                    }
                }
            }
        }

        if publish && out.failures.is_empty() {
            match self.store.publish(package, &vp.version).await {
                Ok(()) => {
                    out.published = true;
                    self.progress
                        .line(format!("{package} {}: released", vp.version));
                }
                Err(e) => out
                    .failures
                    .push(fail(None, format!("cannot publish: {e}"))),
            }
        }
        for f in &out.failures {
            let on = f.platform.map_or_else(String::new, |p| format!(" {p}"));
            self.progress.line(format!(
                "{package} {}{on}: FAILED: {}",
                f.version, f.message
            ));
        }
        out
    }

    /// Locks the version once, then builds its platforms (once in all when it is pure Python).
    async fn build_version(
        &self,
        job: &VersionJob,
        platforms: &[Platform],
    ) -> Result<(BuildInfo, BTreeMap<Platform, Result<PlatformBuild, String>>), String> {
        let lock = {
            let _permit = self
                .jobs
                .acquire()
                .await
                .expect("the semaphore is never closed");
            self.progress.line(format!(
                "{} {}: resolving requirements (python {})",
                job.package, job.version, job.python
            ));
            build::lock(job, &self.settings)
                .await
                .map_err(|e| e.to_string())?
        };
        let mut results = BTreeMap::new();
        if lock.pure {
            // One PEX for every platform; build it for the host when it is wanted.
            let first = platforms
                .iter()
                .copied()
                .find(|p| Some(*p) == Platform::host())
                .unwrap_or(platforms[0]);
            let built = self.build_one(job, &lock, first).await;
            for &p in platforms {
                let r = match &built {
                    Ok(b) if p == first => Ok(b.clone()),
                    Ok(b) => build::reuse_for(job, b, p, &self.settings).map_err(|e| e.to_string()),
                    Err(e) => Err(e.clone()),
                };
                results.insert(p, r);
            }
        } else {
            let lock = &lock;
            let builds = platforms
                .iter()
                .map(|&p| async move { (p, self.build_one(job, lock, p).await) });
            results.extend(futures::future::join_all(builds).await);
        }
        let info = BuildInfo {
            package: job.package.clone(),
            version: job.version.clone(),
            python: job.python,
            config_version: job.config_version,
            requirements: job.requirements(),
            lock: lock.pins.clone(),
            pure: lock.pure,
            pex_version: build::tools::PEX_VERSION.into(),
            pip_version: build::tools::PIP_VERSION.into(),
            pex_options: build::PEX_OPTIONS.iter().map(|s| s.to_string()).collect(),
            platforms: results
                .iter()
                .filter_map(|(p, r)| r.as_ref().ok().map(|b| (*p, b.clone())))
                .collect(),
            built_at: build::now(),
        };
        Ok((info, results))
    }

    async fn build_one(
        &self,
        job: &VersionJob,
        lock: &build::Lock,
        platform: Platform,
    ) -> Result<PlatformBuild, String> {
        let _permit = self
            .jobs
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let result = build::build_platform(job, lock, platform, &self.settings)
            .await
            .map_err(|e| e.to_string());
        if let Ok(b) = &result {
            self.progress.line(format!(
                "{} {} {platform}: built {} ({:.1} MB, {:.1} s)",
                job.package,
                job.version,
                b.asset,
                b.size as f64 / 1e6,
                started.elapsed().as_secs_f64()
            ));
        }
        self.progress.inc();
        result
    }

    async fn upload(&self, job: &VersionJob, b: &PlatformBuild) -> Result<(), String> {
        let upload = Upload {
            name: &b.asset,
            path: &b.tarball,
            size: b.size,
            sha256: &b.sha256,
        };
        self.store
            .upload(&job.package, &job.version, upload)
            .await
            .map_err(|e| format!("cannot store {}: {e}", b.asset))
    }

    /// The versions a manifest may list: published, every platform there, and the host's
    /// tarball passing the package's test (remembered by digest, so each is run once).
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
        for c in hermit::complete_versions(s, &releases) {
            if let Some(verification) = &self.verification
                && let Some(host) = Platform::host().filter(|h| c.sha256.contains_key(h))
            {
                match self
                    .verify(
                        verification,
                        spec,
                        &c.version,
                        c.python,
                        host,
                        &c.sha256[&host],
                    )
                    .await
                {
                    Verdict::Passed => {}
                    Verdict::Skipped(why) => {
                        self.progress.line(format!(
                            "{} {}: not tried before listing: {why}",
                            s.package, c.version
                        ));
                    }
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
            complete.push(c);
        }
        Ok((complete, failures))
    }

    async fn verify(
        &self,
        v: &Verification,
        spec: &LoadedSpec,
        version: &Version,
        python: crate::names::PythonMinor,
        host: Platform,
        sha256: &str,
    ) -> Verdict {
        let marker = v.cache_dir.join("verified").join(sha256);
        if marker.exists() {
            return Verdict::Passed;
        }
        let s = &spec.spec;
        let asset = s.package.asset_name(host);
        let Ok(scratch) = tempfile::tempdir() else {
            return Verdict::Skipped("no temporary directory".into());
        };
        let tarball = match self
            .store
            .fetch(&s.package, version, &asset, &scratch.path().join(&asset))
            .await
        {
            Ok(p) => p,
            Err(e) => return Verdict::Failed(format!("cannot fetch {asset}: {e}")),
        };
        let pex_root = v.cache_dir.join("pex-root-verify");
        let verdict = crate::verify::verify(
            &tarball,
            sha256,
            &s.test_command(),
            &s.binaries,
            python,
            &pex_root,
            v.timeout,
        )
        .await;
        if verdict == Verdict::Passed {
            let _ = std::fs::create_dir_all(marker.parent().expect("in the cache"));
            let _ = std::fs::write(&marker, format!("{} {version} {host}\n", s.package));
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

/// Trying releases before they are listed.
pub struct Verification {
    pub cache_dir: PathBuf,
    pub timeout: std::time::Duration,
}

#[derive(Default)]
struct VersionOutcome {
    built: usize,
    published: bool,
    failures: Vec<Failure>,
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

    fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
