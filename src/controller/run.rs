//! `hermit-pex controller`: the kube-rs `Controller` on `PythonPackage`s, owning their build
//! Jobs, with releases on GitHub. Exits with a clear message when the CRD is not installed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use super::jobs::{JobSettings, MANAGED_BY, PlatformTable};
use super::lease::LeaseLock;
use super::limit::GlobalLimit;
use super::metrics::Metrics;
use super::reconcile::{Context, Error, MANAGER, reconcile};
use super::resource::{ManifestTarget, PythonPackage};
use super::targets::{StoreTarget, Targets};
use crate::cli::sync::Sink;
use crate::cli::{GitHubArgs, IndexArgs, ManifestArgs};
use crate::gitops::DynSink;
use crate::release::github::{GitHubConfig, GitHubStore, Token};

#[derive(Args)]
pub struct ControllerArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "HERMIT_PEX_NAMESPACE")]
    pub namespace: Option<String>,
    /// GitHub OWNER/REPO for releases (a resource's spec.releases overrides it).
    #[arg(long, env = "HERMIT_PEX_REPOSITORY")]
    pub repository: String,
    /// The builder image the Jobs run.
    #[arg(long, env = "HERMIT_PEX_BUILDER_IMAGE")]
    pub builder_image: String,
    /// The platform table (YAML); default: linux on nodes of each arch, darwin cross on linux.
    #[arg(long, env = "HERMIT_PEX_PLATFORM_TABLE")]
    pub platform_table: Option<PathBuf>,
    /// The Secret (in each resource's namespace) holding the GitHub token for build Jobs.
    #[arg(long, default_value = "hermit-pex-github")]
    pub token_secret: String,
    /// The key of the token in --token-secret.
    #[arg(long, default_value = "token")]
    pub token_key: String,
    /// A PersistentVolumeClaim (in each resource's namespace) for the builders' pex cache.
    #[arg(long)]
    pub cache_claim: Option<String>,
    /// The ServiceAccount of build pods.
    #[arg(long)]
    pub builder_service_account: Option<String>,
    /// Requests and limits of build pods, as JSON: {"requests":{"cpu":"1","memory":"2Gi"},...}.
    #[arg(long)]
    pub builder_resources: Option<String>,
    /// Build Jobs running at once per package.
    #[arg(long, default_value_t = 8)]
    pub per_package: usize,
    /// Build Jobs running at once across all packages.
    #[arg(long, default_value_t = 32)]
    pub max_jobs: usize,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// activeDeadlineSeconds of build Jobs.
    #[arg(long, default_value_t = 7200)]
    pub job_deadline_seconds: i64,
    /// backoffLimit of build Jobs (pod retries before the build counts as failed).
    #[arg(long, default_value_t = 2)]
    pub job_backoff_limit: i32,
    /// ttlSecondsAfterFinished of build Jobs.
    #[arg(long, default_value_t = 86_400)]
    pub job_ttl_seconds: i32,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub github: GitHubArgs,
    /// A repository a PythonPackage's spec.releases may name (repeat or comma-separate; none:
    /// spec.releases is refused). Releases there are made with the controller's token.
    #[arg(long = "allow-release-repository", value_delimiter = ',')]
    pub allowed_release_repositories: Vec<String>,
    /// A Git URL a PythonPackage's spec.manifests may name (repeat or comma-separate; none:
    /// spec.manifests is refused). Pushes there carry the controller's token.
    #[arg(long = "allow-manifest-repository", value_delimiter = ',')]
    pub allowed_manifest_repositories: Vec<String>,
    /// Where manifests are committed (none: manifests are not committed).
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Serve /metrics, /healthz and /readyz on this address.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Run only while holding a Lease, so that several replicas can run (one active).
    #[arg(long)]
    pub leader_elect: bool,
    /// The Lease's name.
    #[arg(long, default_value = "hermit-pex")]
    pub lease_name: String,
    /// The Lease's namespace (default: the pod's, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
}

pub async fn controller_command(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let client = kube::Client::try_default().await.context(
        "cannot reach the Kubernetes API (no in-cluster config and no usable KUBECONFIG)",
    )?;
    let (packages, jobs): (Api<PythonPackage>, Api<Job>) = match &args.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    match packages.list(&ListParams::default().limit(1)).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => anyhow::bail!(
            "the PythonPackage CRD is not installed: kubectl apply -f crds/pythonpackage.yaml (the Helm chart installs it)"
        ),
        Err(kube::Error::Api(e)) if e.code == 403 => anyhow::bail!(
            "not allowed to list PythonPackages ({}): the controller's ServiceAccount needs the chart's RBAC",
            e.message
        ),
        Err(e) => anyhow::bail!("cannot reach the Kubernetes API: {e}"),
    }
    // One watch of every Job the controller made: the global limit counts them.
    let (view, writer) = reflector::store();
    let managed = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let job_watch = watcher(jobs.clone(), watcher::Config::default().labels(&managed))
        .default_backoff()
        .modify(|job: &mut Job| {
            // Only the status and labels are read: keep the view small.
            job.managed_fields_mut().clear();
            if let Some(spec) = job.spec.as_mut() {
                spec.template = Default::default();
            }
        })
        .reflect(writer)
        .for_each(|event| {
            if let Err(e) = event {
                tracing::warn!(error = %e, "watching build Jobs");
            }
            futures::future::ready(())
        });
    tokio::spawn(job_watch);
    let ctx = Arc::new(Context {
        limit: Some(GlobalLimit::new(args.max_jobs.max(1), view.clone())),
        ..context(&args, client.clone())?
    });
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("--metrics-addr {}: cannot listen", args.metrics_addr))?;
    let text: MetricsText = {
        let ctx = ctx.clone();
        Arc::new(move || {
            let store = &ctx.targets.default_store().store;
            let github = (store.stats().requests(), store.rate_limit_remaining());
            ctx.metrics.encode(ctx.index.stats().requests, Some(github))
        })
    };
    let app = probes(text, ready.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });

    let lease = if args.leader_elect {
        let namespace = args.lease_namespace.clone().context(
            "--leader-elect needs --lease-namespace (or POD_NAMESPACE from the downward API)",
        )?;
        // Each replica needs its own name: the pod's, else the host's (a container's is its
        // pod's), never a pid (1 in every container).
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .context("--leader-elect needs POD_NAME (from the downward API) or HOSTNAME")?;
        let lock = LeaseLock::new(client.clone(), &namespace, &args.lease_name, &identity);
        ready.store(true, Ordering::Relaxed); // a standby replica is healthy too
        tracing::info!(lease = %args.lease_name, %identity, "waiting to lead");
        tokio::select! {
            held = wait_for_lease(&lock) => held?,
            () = shutdown_signal() => return Ok(ExitCode::SUCCESS),
        }
        Some(Arc::new(lock))
    } else {
        None
    };
    ctx.metrics.leader.set(1);
    if let Some(lock) = &lease {
        tokio::spawn(keep_lease(lock.clone()));
    }
    // The global limit counts every Job: wait until the watch has listed them once.
    if tokio::time::timeout(Duration::from_secs(60), view.wait_until_ready())
        .await
        .is_err()
    {
        anyhow::bail!("cannot list build Jobs within a minute (see the warnings above)");
    }

    ready.store(true, Ordering::Relaxed);
    tracing::info!(namespace = ?args.namespace, "hermit-pex controller starting");
    Controller::new(packages, watcher::Config::default().any_semantic())
        .owns(jobs, watcher::Config::default().labels(&managed))
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(shutdown_signal())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!(error = %e, "reconcile failed");
            }
        })
        .await;
    ctx.metrics.leader.set(0);
    if let Some(lock) = lease
        && let Err(e) = lock.release().await
    {
        tracing::warn!(error = %e, "cannot release the lease; the next leader waits for it to expire");
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Everything a reconcile needs, from the arguments.
fn context(args: &ControllerArgs, client: kube::Client) -> anyhow::Result<Context<GitHubStore>> {
    let table = match &args.platform_table {
        Some(f) => PlatformTable::parse(
            &std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?,
        )
        .map_err(anyhow::Error::msg)?,
        None => PlatformTable::default(),
    };
    let resources = args
        .builder_resources
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--builder-resources: write it as JSON, e.g. {\"requests\":{\"cpu\":\"1\",\"memory\":\"2Gi\"}}")?;
    let cache = args
        .index
        .cache_dir
        .clone()
        .or_else(crate::cli::default_cache_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("hermit-pex"));
    let token = Token::from_env()?;
    let open_store = {
        let (api_url, html_url, cache) = (
            args.github.github_api_url.clone(),
            args.github.github_url.clone(),
            cache.clone(),
        );
        move |repository: &str| -> Result<StoreTarget<GitHubStore>, String> {
            let (owner, repo) = repository
                .split_once('/')
                .ok_or_else(|| format!("{repository:?}: write it as OWNER/REPO"))?;
            let mut config = GitHubConfig::new(owner, repo);
            config.api_url = api_url.clone();
            config.html_url = html_url.clone();
            config.cache_dir = Some(cache.clone());
            // Build Jobs upload from their pods: look again at least every 30 s.
            config.max_view_age = Some(Duration::from_secs(30));
            let store = GitHubStore::new(config, token.clone()).map_err(|e| e.to_string())?;
            Ok(StoreTarget {
                store,
                repository: Some(format!("{}/{owner}/{repo}", html_url.trim_end_matches('/'))),
            })
        }
    };
    let default = open_store(&args.repository).map_err(|e| anyhow::anyhow!("--repository {e}"))?;
    let mut targets = Targets::new(default.store, default.repository)
        .opening_stores(args.allowed_release_repositories.clone(), open_store);
    let sink = crate::cli::sync::remote_sink(&args.manifest, &args.github.github_api_url, || {
        cache.clone()
    })?;
    if let Some(sink) = sink {
        targets = targets.with_sink(match sink {
            Sink::Dir(s) => Box::new(s),
            Sink::Git(s) => Box::new(s),
            Sink::GitHub(s) => Box::new(s),
        });
    }
    let template = args.manifest.clone();
    let api_url = args.github.github_api_url.clone();
    let allowed = args.allowed_manifest_repositories.clone();
    let targets = targets.opening_sinks(allowed, move |target: &ManifestTarget| {
        let mut manifest = template.clone();
        manifest.manifest_repo = Some(target.repository.clone());
        manifest.manifest_github = None;
        if let Some(branch) = &target.branch {
            manifest.manifest_branch = branch.clone();
        }
        manifest.manifest_dir = target.dir.clone().unwrap_or_default();
        match crate::cli::sync::remote_sink(&manifest, &api_url, || cache.clone()) {
            Ok(Some(Sink::Git(s))) => Ok(Box::new(s) as Box<dyn DynSink>),
            Ok(_) => Err("not a Git repository URL".into()),
            Err(e) => Err(e.to_string()),
        }
    });
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    Ok(Context {
        client,
        index: args.index.client()?,
        targets,
        table,
        jobs: JobSettings {
            image: args.builder_image.clone(),
            repository: args.repository.clone(),
            token_secret: (args.token_secret.clone(), args.token_key.clone()),
            index_url: args.index.index_url.clone(),
            cache_claim: args.cache_claim.clone(),
            resources,
            active_deadline_seconds: args.job_deadline_seconds,
            backoff_limit: args.job_backoff_limit,
            ttl_seconds_after_finished: args.job_ttl_seconds,
            service_account: args.builder_service_account.clone(),
        },
        per_package: args.per_package.max(1),
        limit: None,
        recorder: Some(recorder),
        metrics: Arc::new(Metrics::default()),
        now: || Time(k8s_openapi::jiff::Timestamp::now()),
    })
}

/// Renders the metrics text for a scrape.
pub type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// `/metrics`, `/healthz` (the process answers) and `/readyz` (the watches are set up).
pub fn probes(metrics: MetricsText, ready: Arc<AtomicBool>) -> axum::Router {
    use axum::routing::get;
    let metrics = move || {
        let text = metrics();
        async move {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
        }
    };
    let readyz = move || {
        let ready = ready.load(Ordering::Relaxed);
        async move {
            if ready {
                (http::StatusCode::OK, "ok")
            } else {
                (http::StatusCode::SERVICE_UNAVAILABLE, "starting")
            }
        }
    };
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
}

async fn wait_for_lease(lock: &LeaseLock) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(lock.renew_every, lock.try_hold())
            .await
            .unwrap_or_else(|_| Ok(false))
        {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(kube::Error::Api(e)) if e.code == 403 => {
                anyhow::bail!(
                    "cannot take the Lease ({}): the chart's leader election Role is missing",
                    e.message
                )
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the Lease"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Renews the Lease. When a renewal has not succeeded for `duration - 2 × renew_every` (each
/// attempt bounded by `renew_every`, so a hung request cannot stall the check), another
/// replica may take over soon: the process exits at once rather than finishing its
/// reconciles, so that two leaders never act together.
async fn keep_lease(lock: Arc<LeaseLock>) {
    let give_up = lock.duration.saturating_sub(lock.renew_every * 2);
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(lock.renew_every).await;
        let attempt = tokio::time::Instant::now();
        match tokio::time::timeout(lock.renew_every, lock.try_hold()).await {
            Ok(Ok(true)) => renewed = attempt,
            Ok(Ok(false)) => {
                tracing::error!("another replica holds the Lease: exiting");
                std::process::exit(1);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the Lease"),
            Err(_) => tracing::warn!("renewing the Lease timed out"),
        }
        if renewed.elapsed() > give_up {
            tracing::error!("the Lease was not renewed in time: exiting");
            std::process::exit(1);
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: running reconciles finish first");
}

fn error_policy(
    _pkg: Arc<PythonPackage>,
    error: &Error,
    _ctx: Arc<Context<GitHubStore>>,
) -> Action {
    tracing::warn!(%error, "will retry in 5 minutes");
    Action::requeue(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_answer_and_metrics_are_served() {
        let metrics = Arc::new(Metrics::default());
        metrics.reconciled("ok", 0.01);
        let text: MetricsText = {
            let m = metrics.clone();
            Arc::new(move || m.encode(3, None))
        };
        let ready = Arc::new(AtomicBool::new(false));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(axum::serve(listener, probes(text, ready.clone())).into_future());
        let get = |path: &str| {
            let url = format!("{base}{path}");
            async move {
                let r = reqwest::get(url).await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        assert_eq!(get("/healthz").await.0, 200);
        assert_eq!(get("/readyz").await.0, 503, "not ready before the watches");
        ready.store(true, Ordering::Relaxed);
        assert_eq!(get("/readyz").await.0, 200);
        let (code, body) = get("/metrics").await;
        assert_eq!(code, 200);
        assert!(
            body.contains("hermit_pex_reconciles_total{outcome=\"ok\"} 1"),
            "{body}"
        );
        assert!(body.contains("hermit_pex_index_requests_total 3"), "{body}");
    }
}
