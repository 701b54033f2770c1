//! `hermit-pex controller`: the kube-rs `Controller` on `PythonPackage`s, owning their build
//! Jobs, with releases on GitHub. Exits with a clear message when the CRD is not installed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use super::jobs::{JobSettings, PlatformTable};
use super::reconcile::{Context, Error, reconcile};
use super::resource::PythonPackage;
use crate::cli::{IndexArgs, ManifestArgs};
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
    /// GitHub REST API root (GitHub Enterprise: https://HOST/api/v3/).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        default_value = "https://api.github.com/"
    )]
    pub github_api_url: String,
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
    if let Err(e) = packages.list(&ListParams::default().limit(1)).await {
        anyhow::bail!(
            "cannot list PythonPackages ({e}). Is the CRD installed? kubectl apply -f crds/pythonpackage.yaml"
        );
    }
    let table = match &args.platform_table {
        Some(f) => PlatformTable::parse(
            &std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?,
        )
        .map_err(anyhow::Error::msg)?,
        None => PlatformTable::default(),
    };
    let (owner, repo) = args
        .repository
        .split_once('/')
        .with_context(|| format!("--repository {:?}: write it as OWNER/REPO", args.repository))?;
    let mut config = GitHubConfig::new(owner, repo);
    config.api_url = args.github_api_url.clone();
    config.cache_dir = args.index.cache_dir();
    // Build Jobs upload from their pods: look again at least every 30 s.
    config.max_view_age = Some(Duration::from_secs(30));
    let store = GitHubStore::new(config, Token::from_env()?)?;
    let ctx = Arc::new(Context {
        client,
        index: args.index.client()?,
        store,
        table,
        jobs: JobSettings {
            image: args.builder_image.clone(),
            repository: args.repository.clone(),
            token_secret: (args.token_secret.clone(), args.token_key.clone()),
            index_url: args.index.index_url.clone(),
            cache_claim: args.cache_claim.clone(),
            resources: None,
            active_deadline_seconds: args.job_deadline_seconds,
            backoff_limit: args.job_backoff_limit,
            ttl_seconds_after_finished: args.job_ttl_seconds,
            service_account: args.builder_service_account.clone(),
        },
        per_package: args.per_package.max(1),
        now: || Time(k8s_openapi::jiff::Timestamp::now()),
    });
    tracing::info!(namespace = ?args.namespace, "hermit-pex controller starting");
    Controller::new(packages, watcher::Config::default().any_semantic())
        .owns(jobs, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!(error = %e, "reconcile failed");
            }
        })
        .await;
    Ok(ExitCode::SUCCESS)
}

fn error_policy(
    _pkg: Arc<PythonPackage>,
    error: &Error,
    _ctx: Arc<Context<GitHubStore>>,
) -> Action {
    tracing::warn!(%error, "will retry in 5 minutes");
    Action::requeue(Duration::from_secs(300))
}
