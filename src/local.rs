//! The embedded executor behind `hermit-pex sync`: runs a plan's actions on this machine (builds
//! as local processes, a release store, manifests in a directory). One failing version or
//! platform is reported and the others go on.

use std::collections::BTreeMap;
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
use crate::hermit::{self, CompleteVersion, ManifestInput};
use crate::names::Platform;
use crate::plan::{Action, Plan, VersionPlan};
use crate::release::{ReleaseMeta, ReleaseState, ReleaseStore, Upload};
use crate::spec::LoadedSpec;

pub struct Sync<'a, S> {
    pub store: &'a S,
    pub settings: BuildSettings,
    /// Parallel pex runs, across versions and platforms.
    pub jobs: Arc<Semaphore>,
    pub hermit_dir: PathBuf,
    /// `repository = ...` in manifests, when releases live in a repository.
    pub repository: Option<String>,
    pub progress: Progress,
}

/// A (version, platform) that did not make it, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub version: Version,
    pub platform: Option<Platform>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestOutcome {
    Unchanged,
    Written { versions: usize },
    Failed(String),
}

#[derive(Debug)]
pub struct PackageOutcome {
    pub built: usize,
    pub published: usize,
    pub failures: Vec<Failure>,
    pub manifest: ManifestOutcome,
}

impl<S: ReleaseStore> Sync<'_, S> {
    /// Executes a package's plan, then writes its manifest from what the store now holds.
    pub async fn run(&self, spec: &LoadedSpec, plan: &Plan) -> PackageOutcome {
        let mut outcome = PackageOutcome {
            built: 0,
            published: 0,
            failures: Vec::new(),
            manifest: ManifestOutcome::Unchanged,
        };
        let mut running: FuturesUnordered<_> = plan
            .versions
            .iter()
            .filter(|vp| {
                plan.actions
                    .iter()
                    .any(|a| action_version(a) == Some(&vp.version))
            })
            .map(|vp| self.run_version(spec, plan, vp))
            .collect();
        while let Some(v) = running.next().await {
            outcome.built += v.built;
            outcome.published += usize::from(v.published);
            outcome.failures.extend(v.failures);
        }
        drop(running);
        outcome.manifest = self.write_manifest(spec).await;
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
            .filter(|a| action_version(a) == Some(&vp.version))
            .collect();
        let builds: Vec<Platform> = actions
            .iter()
            .filter_map(|a| {
                if let Action::Build { platform, .. } = a {
                    Some(*platform)
                } else {
                    None
                }
            })
            .collect();
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

    /// Renders the manifest from the published, complete releases and the existing manifest;
    /// writes it only when the text changes.
    async fn write_manifest(&self, spec: &LoadedSpec) -> ManifestOutcome {
        let s = &spec.spec;
        let releases = match self.store.releases(&s.package).await {
            Ok(r) => r,
            Err(e) => return ManifestOutcome::Failed(e.to_string()),
        };
        let platforms = s.platforms();
        let complete: Vec<CompleteVersion> = releases
            .iter()
            .filter(|r| r.state == ReleaseState::Published)
            .filter(|r| platforms.iter().all(|p| r.has_complete(&s.package, *p)))
            .filter_map(|r| {
                let python = r.python.or_else(|| s.python_for(&r.version))?;
                let sha256 = platforms
                    .iter()
                    .map(|p| {
                        (
                            *p,
                            r.asset(&s.package, *p)
                                .and_then(|a| a.sha256.clone())
                                .unwrap_or_default(),
                        )
                    })
                    .collect();
                Some(CompleteVersion {
                    version: r.version.clone(),
                    python,
                    sha256,
                })
            })
            .collect();
        let path = self.hermit_dir.join(hermit::file_name(&s.package));
        let old_text = std::fs::read_to_string(&path).ok();
        if complete.is_empty() && old_text.is_none() {
            return ManifestOutcome::Unchanged;
        }
        let existing = match old_text.as_deref().map(hermit::read).transpose() {
            Ok(e) => e,
            Err(e) => return ManifestOutcome::Failed(format!("{}: {e}", path.display())),
        };
        let source = self.store.source_template(&s.package);
        let input = ManifestInput {
            spec: s,
            source: &source,
            repository: self.repository.as_deref(),
            complete: &complete,
            existing: existing.as_ref(),
        };
        let text = match hermit::render(&input) {
            Ok(t) => t,
            Err(e) => return ManifestOutcome::Failed(format!("{}: {e}", path.display())),
        };
        if old_text.as_deref() == Some(text.as_str()) {
            return ManifestOutcome::Unchanged;
        }
        let versions = hermit::read(&text).map(|e| e.versions.len()).unwrap_or(0);
        match crate::release::dir::atomic_write(&path, |f| {
            std::io::Write::write_all(f, text.as_bytes())
        }) {
            Ok(()) => ManifestOutcome::Written { versions },
            Err(e) => ManifestOutcome::Failed(e.to_string()),
        }
    }
}

#[derive(Default)]
struct VersionOutcome {
    built: usize,
    published: bool,
    failures: Vec<Failure>,
}

fn action_version(a: &Action) -> Option<&Version> {
    match a {
        Action::CreateRelease { version, .. }
        | Action::Build { version, .. }
        | Action::PublishRelease { version } => Some(version),
        Action::WriteManifest { .. } => None,
    }
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

/// `hermit-pex sync`: plan every package, build and release what is missing, write manifests.
pub async fn sync_command(args: crate::cli::SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    use crate::release::github::{GitHubConfig, GitHubStore, Token};
    use anyhow::Context;

    let Some(repository) = &args.repository else {
        let store =
            crate::release::dir::DirStore::new(args.dist.join("releases"), args.base_url.clone())
                .with_context(|| format!("cannot use {} for releases", args.dist.display()))?;
        return run_sync(&args, &store, None).await;
    };
    // A missing token fails here, before anything is built (seed 001).
    let token = Token::from_env()?;
    let (owner, repo) = repository
        .split_once('/')
        .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
        .with_context(|| format!("--repository {repository:?}: write it as OWNER/REPO"))?;
    let mut config = GitHubConfig::new(owner, repo);
    config.api_url = args.github_api_url.clone();
    config.html_url = args.github_url.clone();
    config.prerelease = args.prerelease;
    config.cache_dir = args.index.cache_dir();
    config.write_interval = std::time::Duration::from_millis(args.github_write_interval_ms);
    let store = GitHubStore::new(config, token)?;
    let html = format!("{}/{owner}/{repo}", args.github_url.trim_end_matches('/'));
    let code = run_sync(&args, &store, Some(html)).await;
    if let Err(e) = store.refresh_cache().await {
        tracing::warn!(error = %e, "cannot refresh the release list cache");
    }
    let s = store.stats();
    eprintln!(
        "github: {} requests ({} list, {} of them unchanged 304; {} writes: {} create, {} update, {} upload, {} delete), {} retries, {} rate-limit waits",
        s.requests(),
        s.list,
        s.not_modified,
        s.writes(),
        s.create,
        s.update,
        s.upload,
        s.delete,
        s.retries,
        s.rate_limit_waits
    );
    code
}

async fn run_sync<S: ReleaseStore>(
    args: &crate::cli::SyncArgs,
    store: &S,
    repository: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    use std::process::ExitCode;

    let (specs, invalid) = crate::cli::load_specs(&args.paths)?;
    for e in &invalid {
        eprintln!("error: {e}");
    }
    let client = args.index.client()?;
    let observed = crate::cli::observe_index(&client, &specs).await;
    let mut failed = !invalid.is_empty();
    let mut plans = Vec::new();
    for (spec, project) in specs.iter().zip(observed) {
        let project = match project {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {}: {e}", spec.file.display());
                failed = true;
                continue;
            }
        };
        match store.releases(&spec.spec.package).await {
            Ok(releases) => {
                let plan = crate::plan::plan(
                    &spec.spec,
                    &project.versions(),
                    &releases,
                    &args.select.options(),
                );
                plans.push((spec, plan));
            }
            Err(e) => {
                eprintln!("error: {}: cannot read releases: {e}", spec.spec.package);
                failed = true;
            }
        }
    }

    if args.dry_run {
        let mut out = std::io::stdout().lock();
        for (spec, plan) in &plans {
            crate::cli::write_text_plan(&mut out, spec, plan)?;
        }
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    let total_builds: usize = plans.iter().map(|(_, p)| p.builds()).sum();
    let cache = args
        .index
        .cache_dir
        .clone()
        .or_else(crate::cli::default_cache_dir)
        .unwrap_or_else(|| args.dist.join(".cache"));
    let pex = if total_builds > 0 {
        crate::build::tools::Pex::locate(&cache)
            .await
            .context("pex is needed to build")?
    } else {
        crate::build::tools::Pex {
            bin_dir: PathBuf::new(),
        }
    };
    std::fs::create_dir_all(cache.join("work"))?;
    let run_dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(cache.join("work"))?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let sync = Sync {
        store,
        settings: BuildSettings {
            pex,
            index_url: client.index_url(),
            cache_dir: cache.clone(),
            work_dir: run_dir.path().to_owned(),
            pex_root: cache.join("pex-root"),
            timeout: std::time::Duration::from_secs(args.build_timeout),
        },
        jobs: Arc::new(Semaphore::new(jobs)),
        hermit_dir: args.hermit_dir.clone(),
        repository,
        progress: Progress::new(total_builds),
    };

    let (mut built, mut released, mut written) = (0, 0, 0);
    for (spec, plan) in &plans {
        if plan.builds() > 0 {
            sync.progress.line(format!(
                "{}: {} versions, {} builds, {} already released",
                plan.package,
                plan.versions.len(),
                plan.builds(),
                plan.count(crate::plan::VersionStatus::Released)
            ));
        }
        for vp in plan.versions.iter().filter(|vp| vp.note.is_some()) {
            sync.progress.line(format!(
                "{} {}: {}",
                plan.package,
                vp.version,
                vp.note.as_deref().unwrap_or("")
            ));
        }
        let outcome = sync.run(spec, plan).await;
        built += outcome.built;
        released += outcome.published;
        failed |= !outcome.failures.is_empty();
        match outcome.manifest {
            ManifestOutcome::Unchanged => {}
            ManifestOutcome::Written { versions } => {
                written += 1;
                sync.progress.line(format!(
                    "{}: wrote {} ({versions} versions)",
                    plan.package,
                    sync.hermit_dir
                        .join(hermit::file_name(&plan.package))
                        .display()
                ));
            }
            ManifestOutcome::Failed(e) => {
                failed = true;
                sync.progress.line(format!(
                    "error: {}: manifest not written: {e}",
                    plan.package
                ));
            }
        }
    }
    sync.progress.finish();
    let stats = client.stats();
    if total_builds == 0 && written == 0 && !failed {
        eprintln!("nothing to do: every version is released and every manifest is up to date");
    } else {
        eprintln!(
            "{built} of {total_builds} builds done, {released} versions released, {written} manifests written{}",
            if failed {
                "; some failed (see above)"
            } else {
                ""
            }
        );
    }
    eprintln!(
        "index: {} requests, {} pages fetched, {} unchanged (304)",
        stats.requests, stats.fetched, stats.not_modified
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
