//! `hermit-pex lock` and `hermit-pex build`: one step of one version, into the draft release
//! the arguments name. These are what the controller's lock and build Jobs run, and what a
//! person runs by hand; each is one call of [`StepRunner::run`].

use anyhow::Context as _;

use crate::build::{BuildSettings, VersionJob};
use crate::plan::Step;
use crate::release::{AnyStore, ReleaseId};
use crate::step::{Done, PlatformOutcome, StepError, StepRunner};

/// `hermit-pex lock`: resolves a version and records its lock in its draft (what a lock Job
/// runs). A pure-Python lock builds every platform given, in the same step.
pub async fn lock_command(args: crate::cli::LockArgs) -> anyhow::Result<std::process::ExitCode> {
    let release = ReleaseId(args.step.release_id.clone());
    let step = Step::Lock {
        release,
        platforms: args.platforms.clone(),
    };
    run_step(&args.step, step).await
}

/// `hermit-pex build`: builds one platform of a locked version into its draft release (what a
/// build Job runs). A platform already there is not built again.
pub async fn build_command(args: crate::cli::BuildArgs) -> anyhow::Result<std::process::ExitCode> {
    let release = ReleaseId(args.step.release_id.clone());
    let step = Step::Build {
        release,
        platform: args.platform,
    };
    run_step(&args.step, step).await
}

/// Opens the store, reads the release the step is for and checks it is that version's, made
/// for these inputs; runs the step; exit 0 when it did everything, 1 when something failed, 2
/// for bad arguments.
async fn run_step(
    args: &crate::cli::StepArgs,
    step: Step,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let job = match step_job(args) {
        Ok(job) => job,
        Err(problems) => {
            for p in problems {
                eprintln!("error: {p}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let cache = args
        .index
        .cache_dir
        .clone()
        .or_else(crate::cli::default_cache_dir)
        .unwrap_or_else(|| args.release.dist.join(".cache"));
    let store = AnyStore::open(&args.release.settings(Some(cache.clone())))?;
    let release = {
        use crate::release::ReleaseStore as _;
        store
            .release(&job.package, &ReleaseId(args.release_id.clone()))
            .await
            .with_context(|| format!("--release-id {}", args.release_id))?
    };
    if release.version != job.version {
        anyhow::bail!(
            "--release-id {}: that release ({}) is not of {} {}",
            args.release_id,
            release.tag,
            job.package,
            job.version
        );
    }
    let made_for = release.info.as_ref().and_then(|i| i.inputs.as_ref());
    if made_for != Some(&job.inputs) {
        anyhow::bail!(
            "--release-id {}: the release was made for other settings than these arguments (its build info: {})",
            args.release_id,
            made_for.map_or("none".into(), |i| serde_json::to_string(i)
                .unwrap_or_default())
        );
    }
    let pex = crate::tools::Pex::locate(&cache).await?;
    let uv = crate::lock::Uv::locate(&cache)
        .await
        .map_err(|e| anyhow::anyhow!("uv is needed to lock: {e}"))?;
    // The run's own work directory; those of killed runs are removed on the way.
    let run_dir = crate::workdir::run_dir(&cache)?;
    let settings = BuildSettings {
        pex,
        uv,
        native: if args.native_platforms.is_empty() {
            BuildSettings::host_native()
        } else {
            args.native_platforms.clone()
        },
        indexes: args.index.indexes()?,
        cache_dir: cache.clone(),
        work_dir: run_dir.path().to_owned(),
        pex_root: cache.join("pex-root"),
        timeout: std::time::Duration::from_secs(args.build_timeout),
        test_timeout: std::time::Duration::from_secs(args.test_timeout),
        flavours: {
            let mut f = match &args.flavours_json {
                // JSON is YAML: one parser, the same checks as --flavours.
                Some(json) => crate::flavour::Flavours::parse(json).context("--flavours-json")?,
                None => crate::flavour::Flavours::default(),
            };
            f.installed = args.build_packages_installed;
            f
        },
    };
    let say = |line: String| {
        eprintln!("{line}");
    };
    let runner = StepRunner {
        store: &store,
        settings: Some(&settings),
        scratch: run_dir.path(),
        slots: None,
        say: &say,
    };
    let result = runner
        .run(&job, &step, std::slice::from_ref(&release))
        .await;
    store.finish().await;
    let failures: Vec<StepError> = match result {
        Ok(Done::Locked(results)) => results.into_iter().filter_map(|(_, r)| r.err()).collect(),
        Ok(Done::Built(PlatformOutcome::AlreadyBuilt)) => {
            if let Step::Build { platform, .. } = &step {
                eprintln!("{} {} {platform}: already built", job.package, job.version);
            }
            Vec::new()
        }
        Ok(_) => Vec::new(),
        Err(e) => vec![e],
    };
    for e in &failures {
        eprintln!(
            "{} {}{}: FAILED ({}): {e}",
            job.package,
            job.version,
            e.platform().map_or(String::new(), |p| format!(" {p}")),
            e.reason()
        );
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The version a step is for, from its arguments, checked as a config would be.
pub(crate) fn step_job(args: &crate::cli::StepArgs) -> Result<VersionJob, Vec<String>> {
    use crate::spec::{PackageSpec, PyVersion, VersionEntry};
    if let Err(e) = crate::names::check_release_version(&args.version) {
        return Err(vec![format!("--version: {e}")]);
    }
    let spec = PackageSpec {
        package: args.package.clone(),
        binaries: args.binaries.clone(),
        versions: vec![VersionEntry {
            version: PyVersion(args.version.clone()),
            python: args.python,
        }],
        description: None,
        test: (!args.test.is_empty()).then(|| args.test.clone()),
        extra_packages: args.extra_packages.clone(),
        exclude: Vec::new(),
        prereleases: true,
        platforms: None,
        config_version: args.config_version,
        partial_platforms: None,
        source: args.git.clone().map(|git| crate::spec::GitSource {
            git,
            tag_prefix: None,
            subdirectory: args.git_subdirectory.clone(),
            // A branch's head is checked out by its name, as a tag is: the step needs no more.
            branch: None,
        }),
        packages: args.package_formats.clone(),
        build: {
            let b = crate::spec::BuildSpec {
                flavour: args.flavour.clone(),
                build_packages: args.build_packages.clone(),
                runtime_packages: args.runtime_packages.clone(),
            };
            (b != crate::spec::BuildSpec::default()).then_some(b)
        },
    };
    spec.validate().map_err(|problems| {
        problems
            .into_iter()
            .map(|p| format!("--{}: {}", p.field.replace('_', "-"), p.message))
            .collect::<Vec<_>>()
    })?;
    let iv = crate::pypi::IndexVersion {
        git: args
            .git_tag
            .clone()
            .zip(args.git_commit.clone())
            .map(|(tag, commit)| crate::source::GitTag { tag, commit }),
        ..crate::pypi::IndexVersion::new(args.version.clone())
    };
    Ok(VersionJob::new(&spec, &iv, args.python))
}
