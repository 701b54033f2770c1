//! `hermit-pex sync`: the command-line edge of the sync executor (`crate::sync`). Chooses the
//! release store and the manifest sink from the arguments, plans every package, runs the plans
//! and commits the manifests, then reports.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::build::BuildSettings;
use crate::gitops::{AnySink, DirSink};
use crate::release::{AnyStore, ReleaseStore};
use crate::spec::LoadedSpec;
use crate::sync::{Progress, SyncRun, Verification};

/// `hermit-pex sync`: plan every package, build and release what is missing, write manifests.
pub async fn sync_command(args: crate::cli::SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    let settings = args
        .manifest
        .settings(&args.release.github.github_api_url, cache_dir(&args));
    let sink = AnySink::remote(&settings)?.unwrap_or_else(|| {
        AnySink::Dir(DirSink {
            dir: args.hermit_dir.clone(),
        })
    });
    let store = AnyStore::open(&args.release.settings(args.index.cache_dir()))?;
    let code = run_sync(&args, &store, store.repository_url(), &sink).await;
    store.finish().await;
    // One line for every GitHub request of the run: the release store's and the manifest
    // sink's (its requests counted apart, their retries and waits together).
    let manifests = sink.github_stats();
    if store.github_stats().is_some() || manifests.is_some() {
        let s = store.github_stats().unwrap_or_default();
        let m = manifests.unwrap_or_default();
        eprintln!(
            "github: {} requests ({} list, {} of them unchanged 304; {} writes: {} create, {} update, {} upload, {} delete; {} for manifests), {} retries, {} rate-limit waits",
            s.requests() + m.requests,
            s.list,
            s.not_modified,
            s.writes(),
            s.create,
            s.update,
            s.upload,
            s.delete,
            m.requests,
            s.retries + m.retries,
            s.rate_limit_waits + m.rate_limit_waits
        );
    }
    code
}

fn cache_dir(args: &crate::cli::SyncArgs) -> PathBuf {
    args.index
        .cache_dir
        .clone()
        .or_else(crate::cli::default_cache_dir)
        .unwrap_or_else(|| args.release.dist.join(".cache"))
}

async fn run_sync<S: ReleaseStore>(
    args: &crate::cli::SyncArgs,
    store: &S,
    repository: Option<String>,
    sink: &AnySink,
) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    use std::process::ExitCode;

    let flavours = crate::cli::read_flavours(args.flavours.as_deref()).context("--flavours")?;
    let (specs, mut invalid) =
        crate::cli::load_specs_with(&args.paths, args.index.allow_direct_references)?;
    // A config naming a flavour the table lacks is invalid, as a typo in it would be.
    let (specs, unknown): (Vec<_>, Vec<_>) = specs
        .into_iter()
        .partition(|s| flavours.resolve(s.spec.build.as_ref()).is_ok());
    for s in unknown {
        let e = flavours
            .resolve(s.spec.build.as_ref())
            .expect_err("partitioned");
        let message = e.to_string();
        let message = message.strip_prefix("build.flavour: ").unwrap_or(&message);
        invalid.push(crate::spec::SpecError {
            file: s.file,
            problems: vec![crate::spec::Problem::new("build.flavour", message)],
        });
    }
    for e in &invalid {
        eprintln!("error: {e}");
    }
    let indexes = args.index.indexes()?;
    let client = args.index.client_for(indexes.primary.clone())?;
    let heads = crate::source::HeadReader {
        cache_dir: Some(cache_dir(args).join("heads")),
        builder: Some(crate::source::WheelProbe {
            cache_dir: cache_dir(args),
            indexes: indexes.clone(),
            timeout: std::time::Duration::from_secs(args.build_timeout),
        }),
    };
    let observed = crate::cli::observe_versions(&client, &specs, &heads).await;
    let mut failed = !invalid.is_empty();
    let mut plans = Vec::new();
    let mut options = args.select.options();
    options.retry_missing = args.retry_missing;
    for (spec, project) in specs.iter().zip(observed) {
        let project = match project {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {}: {e}", spec.file.display());
                failed = true;
                continue;
            }
        };
        crate::cli::say_skipped_tags(spec, &project);
        match store.releases(&spec.spec.package).await {
            Ok(releases) => {
                let versions = project.versions;
                let plan = crate::plan::plan(&spec.spec, &versions, &releases, &[], &options);
                if let Some(head) = &project.head {
                    eprintln!("{}: {head}", spec.spec.package);
                }
                plans.push((spec, versions, plan, project.head));
            }
            Err(e) => {
                eprintln!("error: {}: cannot read releases: {e}", spec.spec.package);
                failed = true;
            }
        }
    }

    if args.dry_run {
        let mut out = std::io::stdout().lock();
        for (spec, _, plan, head) in &plans {
            crate::cli::write_text_plan(&mut out, spec, plan, head.as_ref())?;
        }
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    let total_builds: usize = plans.iter().map(|(_, _, p, _)| p.builds()).sum();
    let cache = cache_dir(args);
    let wheel_index =
        args.wheel_index
            .open(&args.release.dist, &args.manifest.git_author, &cache)?;
    let uploaders = args.publish.uploaders(&args.publish_to)?;
    // The tools are found (and installed on first use) only when there is something to build.
    let (pex, uv) = if total_builds > 0 {
        let pex = crate::tools::Pex::locate(&cache)
            .await
            .context("pex is needed to build")?;
        let uv = crate::lock::Uv::locate(&cache)
            .await
            .map_err(|e| anyhow::anyhow!("uv is needed to lock: {e}"))?;
        (pex, uv)
    } else {
        let none = PathBuf::new();
        (
            crate::tools::Pex {
                bin_dir: none.clone(),
            },
            crate::lock::Uv { path: none },
        )
    };
    // The run's own work directory; those of killed runs are removed on the way.
    let run_dir = crate::workdir::run_dir(&cache)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let sync = SyncRun {
        store,
        settings: BuildSettings {
            pex,
            uv,
            native: BuildSettings::host_native(),
            indexes,
            cache_dir: cache.clone(),
            work_dir: run_dir.path().to_owned(),
            pex_root: cache.join("pex-root"),
            timeout: std::time::Duration::from_secs(args.build_timeout),
            test_timeout: std::time::Duration::from_secs(args.test_timeout),
            flavours,
        },
        jobs: Arc::new(Semaphore::new(jobs)),
        repository,
        verification: (!args.no_verify).then(|| Verification {
            cache_dir: cache.clone(),
            timeout: std::time::Duration::from_secs(args.test_timeout),
        }),
        options: options.clone(),
        progress: Progress::new(total_builds),
    };

    let (mut built, mut released) = (0, 0);
    for (spec, versions, plan, _) in &plans {
        if plan.builds() > 0 {
            sync.progress.line(format!(
                "{}: {} versions, {} builds, {} already released",
                plan.package,
                plan.versions.len(),
                plan.builds(),
                plan.count(crate::plan::VersionStatus::Released)
            ));
        }
        for vp in plan.versions.iter() {
            for note in [&vp.note, &vp.moved].into_iter().flatten() {
                sync.progress
                    .line(format!("{} {}: {note}", plan.package, vp.version));
            }
        }
        let outcome = sync.run(spec, versions, plan).await;
        built += outcome.built;
        released += outcome.published;
        failed |= !outcome.failures.is_empty();
    }

    let specs: Vec<&LoadedSpec> = plans.iter().map(|(s, _, _, _)| *s).collect();
    if let Some(index) = &wheel_index {
        for (package, why) in sync.index_wheels(&specs, index).await {
            failed = true;
            sync.progress.line(format!("error: {package}: {why}"));
        }
    }
    for (package, why) in sync.publish_wheels(&specs, &uploaders).await {
        failed = true;
        sync.progress.line(format!("error: {package}: {why}"));
    }
    let (result, left_out) = sync.commit_manifests(&specs, sink).await;
    for (package, f) in &left_out {
        failed = true;
        sync.progress.line(format!(
            "{package} {} {}: {}",
            f.version,
            f.platform.map_or(String::new(), |p| p.to_string()),
            f.message
        ));
    }
    let written = match result {
        Ok(outcome) => {
            for (package, why) in &outcome.failed {
                failed = true;
                sync.progress
                    .line(format!("error: {package}: manifest left as it is: {why}"));
            }
            for (package, added) in &outcome.changed {
                let v: Vec<String> = added.iter().map(ToString::to_string).collect();
                sync.progress.line(format!(
                    "{package}: manifest updated (+{})",
                    if v.is_empty() {
                        "no new versions".into()
                    } else {
                        v.join(", ")
                    }
                ));
            }
            if let Some(sha) = &outcome.commit {
                sync.progress.line(format!("manifests committed as {sha}"));
            }
            outcome.changed.len()
        }
        Err(e) => {
            failed = true;
            sync.progress
                .line(format!("error: manifests not committed: {e}"));
            0
        }
    };
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
