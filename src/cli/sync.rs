//! `hermit-pex sync`: the command-line edge of the local executor. Chooses the release store
//! and the manifest sink from the arguments, plans every package, runs the plans and commits
//! the manifests, then reports.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::build::BuildSettings;
use crate::gitops::DirSink;
use crate::local::{Progress, Sync, Verification};
use crate::release::ReleaseStore;
use crate::spec::LoadedSpec;

/// `hermit-pex sync`: plan every package, build and release what is missing, write manifests.
pub async fn sync_command(args: crate::cli::SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    let sink = remote_sink(&args.manifest, &args.release.github.github_api_url, || {
        cache_dir(&args)
    })?
    .unwrap_or_else(|| {
        Sink::Dir(DirSink {
            dir: args.hermit_dir.clone(),
        })
    });
    match open_store(&args.release, args.index.cache_dir())? {
        Store::Dir(store) => run_sync(&args, &store, None, &sink).await,
        Store::GitHub(store, html) => {
            let code = run_sync(&args, &*store, Some(html), &sink).await;
            finish_github(&store).await;
            code
        }
    }
}

/// `hermit-pex build`: one version for one platform into its draft release (what a build Job
/// runs). The planner decides as for `sync`, so an asset already there is not built again.
pub async fn build_command(args: crate::cli::BuildArgs) -> anyhow::Result<std::process::ExitCode> {
    use crate::spec::{PackageSpec, PyVersion, VersionEntry};
    let spec = PackageSpec {
        package: args.package.clone(),
        binaries: args.binaries.clone(),
        versions: vec![VersionEntry {
            version: PyVersion(args.version.clone()),
            python: args.python,
        }],
        description: None,
        test: None,
        extra_packages: args.extra_packages.clone(),
        exclude: Vec::new(),
        prereleases: true,
        platforms: None,
        config_version: args.config_version,
        partial_platforms: None,
    };
    if let Err(e) = crate::names::check_release_version(&args.version) {
        eprintln!("error: --version: {e}");
        return Ok(std::process::ExitCode::from(2));
    }
    if let Err(problems) = spec.validate() {
        for p in problems {
            eprintln!("error: --{}: {}", p.field.replace('_', "-"), p.message);
        }
        return Ok(std::process::ExitCode::from(2));
    }
    let spec = LoadedSpec {
        file: PathBuf::from("<command line>"),
        spec,
    };
    match open_store(&args.release, args.index.cache_dir())? {
        Store::Dir(store) => run_build(&args, &spec, &store).await,
        Store::GitHub(store, _) => {
            let code = run_build(&args, &spec, &*store).await;
            finish_github(&store).await;
            code
        }
    }
}

async fn run_build<S: ReleaseStore>(
    args: &crate::cli::BuildArgs,
    spec: &LoadedSpec,
    store: &S,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let index = [crate::pypi::IndexVersion {
        version: args.version.clone(),
        requires_python: None,
    }];
    let releases = store.releases(&args.package).await?;
    let options = crate::plan::PlanOptions {
        latest: None,
        platforms: Some(vec![args.platform]),
    };
    let plan = crate::plan::plan(&spec.spec, &index, &releases, &options);
    if plan.builds() == 0 {
        eprintln!(
            "{} {} {}: already built",
            args.package, args.version, args.platform
        );
        return Ok(ExitCode::SUCCESS);
    }
    let cache = args
        .index
        .cache_dir
        .clone()
        .or_else(crate::cli::default_cache_dir)
        .unwrap_or_else(|| args.release.dist.join(".cache"));
    let pex = crate::build::tools::Pex::locate(&cache).await?;
    std::fs::create_dir_all(cache.join("work"))?;
    let run_dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(cache.join("work"))?;
    let sync = Sync {
        store,
        settings: BuildSettings {
            pex,
            index_url: crate::pypi::IndexClient::new(&args.index.index_url, None)?.index_url(),
            cache_dir: cache.clone(),
            work_dir: run_dir.path().to_owned(),
            pex_root: cache.join("pex-root"),
            timeout: std::time::Duration::from_secs(args.build_timeout),
        },
        jobs: Arc::new(Semaphore::new(1)),
        repository: None,
        verification: None,
        progress: Progress::new(0),
    };
    let outcome = sync.run(spec, &plan).await;
    Ok(if outcome.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

enum Store {
    Dir(crate::release::dir::DirStore),
    /// The store and the repository's web URL, for manifests.
    GitHub(Box<crate::release::github::GitHubStore>, String),
}

fn open_store(args: &crate::cli::ReleaseArgs, cache: Option<PathBuf>) -> anyhow::Result<Store> {
    use crate::release::github::{GitHubConfig, GitHubStore, Token};
    use anyhow::Context;
    let Some(repository) = &args.repository else {
        let store =
            crate::release::dir::DirStore::new(args.dist.join("releases"), args.base_url.clone())
                .with_context(|| format!("cannot use {} for releases", args.dist.display()))?;
        return Ok(Store::Dir(store));
    };
    // A missing token fails here, before anything is built (seed 001).
    let token = Token::from_env()?;
    let (owner, repo) = repository
        .split_once('/')
        .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
        .with_context(|| format!("--repository {repository:?}: write it as OWNER/REPO"))?;
    let mut config = GitHubConfig::new(owner, repo);
    config.api_url = args.github.github_api_url.clone();
    config.html_url = args.github.github_url.clone();
    config.prerelease = args.prerelease;
    config.cache_dir = cache;
    config.write_interval = std::time::Duration::from_millis(args.github_write_interval_ms);
    let html = format!(
        "{}/{owner}/{repo}",
        args.github.github_url.trim_end_matches('/')
    );
    Ok(Store::GitHub(
        Box::new(GitHubStore::new(config, token)?),
        html,
    ))
}

/// Refreshes the list cache after writes and says what the run cost.
async fn finish_github(store: &crate::release::github::GitHubStore) {
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
}

/// Where `sync` commits manifests.
pub enum Sink {
    Dir(DirSink),
    Git(crate::gitops::git::GitSink),
    GitHub(crate::gitops::github::GitHubSink),
}

/// The Git or GitHub sink the arguments ask for, if any.
pub fn remote_sink(
    args: &crate::cli::ManifestArgs,
    github_api_url: &str,
    cache_dir: impl FnOnce() -> PathBuf,
) -> anyhow::Result<Option<Sink>> {
    use anyhow::Context;
    let (author_name, author_email) = args
        .git_author
        .rsplit_once('<')
        .map(|(n, e)| {
            (
                n.trim().to_owned(),
                e.trim_end_matches('>').trim().to_owned(),
            )
        })
        .filter(|(n, e)| !n.is_empty() && e.contains('@'))
        .with_context(|| {
            format!(
                "--git-author {:?}: write it as \"Name <email>\"",
                args.git_author
            )
        })?;
    if !crate::controller::targets::is_relative_inside(&args.manifest_dir) {
        anyhow::bail!(
            "--manifest-dir {:?}: write a path inside the repository (no leading /, no ..)",
            args.manifest_dir
        );
    }
    if let Some(url) = &args.manifest_repo {
        // One checkout per target: two sinks never share a working tree.
        let key = crate::pypi::hex(&<sha2::Sha256 as sha2::Digest>::digest(format!(
            "{url}\n{}\n{}",
            args.manifest_branch,
            args.manifest_dir.trim_matches('/')
        )));
        return Ok(Some(Sink::Git(crate::gitops::git::GitSink::new(
            crate::gitops::git::GitSinkConfig {
                url: url.clone(),
                branch: args.manifest_branch.clone(),
                dir: args.manifest_dir.trim_matches('/').to_owned(),
                author_name,
                author_email,
                checkout: cache_dir().join("git").join(&key[..16]),
                attempts: 5,
            },
        ))));
    }
    if let Some(repository) = &args.manifest_github {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .with_context(|| format!("--manifest-github {repository:?}: write it as OWNER/REPO"))?;
        let token = crate::release::github::Token::from_env()?;
        let config = crate::gitops::github::GitHubSinkConfig {
            owner: owner.into(),
            repo: repo.into(),
            branch: args.manifest_branch.clone(),
            dir: args.manifest_dir.trim_matches('/').to_owned(),
            api_url: github_api_url.to_owned(),
            author_name,
            author_email,
        };
        return Ok(Some(Sink::GitHub(crate::gitops::github::GitHubSink::new(
            config, token,
        )?)));
    }
    Ok(None)
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
    sink: &Sink,
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
    let cache = cache_dir(args);
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
        repository,
        verification: (!args.no_verify).then(|| Verification {
            cache_dir: cache.clone(),
            timeout: std::time::Duration::from_secs(args.test_timeout),
        }),
        progress: Progress::new(total_builds),
    };

    let (mut built, mut released) = (0, 0);
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
    }

    let specs: Vec<&LoadedSpec> = plans.iter().map(|(s, _)| *s).collect();
    let (result, left_out) = match sink {
        Sink::Dir(k) => sync.commit_manifests(&specs, k).await,
        Sink::Git(k) => sync.commit_manifests(&specs, k).await,
        Sink::GitHub(k) => sync.commit_manifests(&specs, k).await,
    };
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
