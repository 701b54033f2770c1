//! `hermit-pex controller`: the kube-rs `Controller` on `PythonPackage`s, owning their build
//! Jobs, with releases on GitHub. Exits with a clear message when the CRD is not installed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use super::context::{Context, MANAGER};
use super::hook::{Hook, HookSecret};
use super::jobs::{JobSettings, MANAGED_BY, PlatformTable};
use super::lease::LeaseLock;
use super::limit::GlobalLimit;
use super::metrics::Metrics;
use super::reconcile::{Error, reconcile};
use super::resource::{ManifestTarget, PythonPackage};
use super::targets::{StoreTarget, Targets};
use crate::gitops::{AnySink, DynSink, SinkSettings};
use crate::release::{AnyStore, StoreSettings};

/// Everything the controller runs with, as plain settings (`hermit-pex controller` fills them
/// in from its flags).
pub struct Config {
    /// Watch only this namespace (default: all namespaces).
    pub namespace: Option<String>,
    /// The controller's release store (`repository`: its default GitHub repository).
    pub store: StoreSettings,
    /// The index the controller observes versions on, with its credentials.
    pub index: crate::pypi::Index,
    /// The operator's other indexes, which `spec.index` may name.
    pub named_indexes: std::collections::BTreeMap<String, crate::pypi::Index>,
    /// Index pages with their ETags, Git checkouts, scratch space.
    pub cache_dir: PathBuf,
    pub table: PlatformTable,
    pub jobs: JobSettings,
    pub per_package: usize,
    pub max_jobs: usize,
    pub concurrency: u16,
    /// What a resource's `spec.releases` / `spec.manifests` may name.
    pub allowed_release_repositories: Vec<String>,
    pub allowed_manifest_repositories: Vec<String>,
    /// Git URLs (or `PREFIX/*`) a resource's `spec.source.git` may name.
    pub allowed_source_repositories: Vec<String>,
    /// Whether a resource's `extraPackages` may hold direct references (`name @ URL`).
    pub allow_direct_references: bool,
    /// The default manifest sink (neither `git` nor `github`: manifests are not committed).
    pub manifest: SinkSettings,
    /// The index of published wheels (neither a directory nor a repository: none).
    pub wheel_index: Option<crate::wheels::RepoIndex>,
    /// The private indexes a resource's `spec.publish` may name, with their credentials.
    pub publish_indexes: std::collections::BTreeMap<String, crate::wheels::upload::PublishIndex>,
    pub metrics_addr: std::net::SocketAddr,
    /// The webhook receiver's secret; None: no receiver (`/hook/...` is 404).
    pub webhook_secret: Option<HookSecret>,
    /// Run only while holding this Lease.
    pub lease: Option<LeaseSettings>,
}

pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's name: the pod's.
    pub identity: String,
}

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let args = &config;
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
    // One watch of every Job the controller made: the global limit counts them, and a Job
    // that finishes wakes the packages waiting for a slot.
    let (view, writer) = reflector::store();
    let limit = GlobalLimit::new(args.max_jobs.max(1), view.clone());
    let managed = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let events =
        watcher(jobs.clone(), watcher::Config::default().labels(&managed)).default_backoff();
    tokio::spawn(watch_jobs(events, writer, limit.clone()));
    let controller = Controller::new(packages, watcher::Config::default().any_semantic());
    let (controller, wake) = woken_by_hooks(controller, args.webhook_secret.is_some());
    let controller = woken_by_freed_slots(controller, &limit);
    let ctx = Arc::new(Context {
        limit: Some(limit),
        packages: Some(controller.store()),
        ..context(args, client.clone())?
    });
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("--metrics-addr {}: cannot listen", args.metrics_addr))?;
    let text: MetricsText = {
        let ctx = ctx.clone();
        Arc::new(move || {
            let github = match &ctx.targets.default_store().store {
                AnyStore::GitHub(g) => Some((g.stats().requests(), g.rate_limit_remaining())),
                AnyStore::Dir(_) => None,
            };
            ctx.metrics.encode(ctx.index.stats().requests, github)
        })
    };
    // Wakes are acted on only once this replica leads; until then the receiver says so.
    let active = Arc::new(AtomicBool::new(false));
    let hook = args
        .webhook_secret
        .clone()
        .zip(wake)
        .map(|(secret, wake)| Hook {
            secret,
            wake,
            active: active.clone(),
            metrics: ctx.metrics.clone(),
            packages: ctx.packages.clone(),
        });
    if hook.is_some() {
        tracing::info!(addr = %args.metrics_addr, "webhook receiver on at /hook/<namespace>/<name>");
    }
    let app = http_routes(text, ready.clone(), hook);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP server (metrics, probes, webhook) stopped");
        }
    });

    let lease = if let Some(l) = &args.lease {
        let lock = LeaseLock::new(client.clone(), &l.namespace, &l.name, &l.identity);
        ready.store(true, Ordering::Relaxed); // a standby replica is healthy too
        tracing::info!(lease = %l.name, identity = %l.identity, "waiting to lead");
        tokio::select! {
            held = wait_for_lease(&lock) => held?,
            () = shutdown_signal() => return Ok(ExitCode::SUCCESS),
        }
        Some(Arc::new(lock))
    } else {
        None
    };
    ctx.metrics.leader.set(1);
    active.store(true, Ordering::Relaxed);
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
    controller
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

/// Everything a reconcile needs, from the settings.
fn context(config: &Config, client: kube::Client) -> anyhow::Result<Context<AnyStore>> {
    let open_store = {
        let template = config.store.clone();
        move |repository: &str| -> Result<StoreTarget<AnyStore>, String> {
            let settings = StoreSettings {
                repository: Some(repository.to_owned()),
                // Build Jobs upload from their pods: look again at least every 30 s.
                max_view_age: Some(Duration::from_secs(30)),
                ..template.clone()
            };
            let store = AnyStore::open(&settings).map_err(|e| e.to_string())?;
            Ok(StoreTarget {
                repository: store.repository_url(),
                store,
            })
        }
    };
    let repository = config
        .store
        .repository
        .clone()
        .context("the controller needs a release repository (--repository)")?;
    let default = open_store(&repository).map_err(|e| anyhow::anyhow!("--repository {e}"))?;
    let mut named = std::collections::BTreeMap::new();
    for (name, index) in &config.named_indexes {
        let cache = config.cache_dir.join("index");
        let client = crate::pypi::IndexClient::for_index(index.clone(), Some(cache))?;
        named.insert(name.clone(), client);
    }
    let mut targets = Targets::new(default.store, default.repository)
        .opening_stores(config.allowed_release_repositories.clone(), open_store)
        .allowing_sources(config.allowed_source_repositories.clone())
        .allowing_direct_references(config.allow_direct_references)
        .with_indexes(named);
    if let Some(sink) = AnySink::remote(&config.manifest)? {
        targets = targets.with_sink(Box::new(sink));
    }
    if let Some(repo) = &config.wheel_index {
        targets = targets.with_wheel_index(repo.open(&config.manifest.author, &config.cache_dir)?);
    }
    let mut uploaders = std::collections::BTreeMap::new();
    for (name, index) in &config.publish_indexes {
        uploaders.insert(
            name.clone(),
            crate::wheels::upload::Uploader::new(index.clone())?,
        );
    }
    let targets = targets.with_publish_indexes(uploaders);
    let template = config.manifest.clone();
    let targets = targets.opening_sinks(
        config.allowed_manifest_repositories.clone(),
        move |target: &ManifestTarget| {
            let settings = SinkSettings {
                git: Some(target.repository.clone()),
                github: None,
                branch: target
                    .branch
                    .clone()
                    .unwrap_or_else(|| template.branch.clone()),
                dir: target.dir.clone().unwrap_or_default(),
                ..template.clone()
            };
            match AnySink::remote(&settings) {
                Ok(Some(s)) => Ok(Box::new(s) as Box<dyn DynSink>),
                Ok(None) => Err("not a Git repository URL".into()),
                Err(e) => Err(e.to_string()),
            }
        },
    );
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let scratch = config.cache_dir.join("scratch");
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot use {} for scratch space", scratch.display()))?;
    Ok(Context {
        client,
        index: crate::pypi::IndexClient::for_index(
            config.index.clone(),
            Some(config.cache_dir.join("index")),
        )?,
        targets,
        table: config.table.clone(),
        jobs: config.jobs.clone(),
        per_package: config.per_package.max(1),
        limit: None,
        recorder: Some(recorder),
        metrics: Arc::new(Metrics::default()),
        now: || Time(k8s_openapi::jiff::Timestamp::now()),
        scratch,
        packages: None,
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

/// Where the webhook receiver sends the packages it wakes.
pub type Wakes = tokio::sync::mpsc::Sender<ObjectRef<PythonPackage>>;

/// The controller, also reconciling each package the webhook receiver's queue names. Only
/// with a receiver (`on`): nothing else would ever send a wake.
pub fn woken_by_hooks(
    controller: Controller<PythonPackage>,
    on: bool,
) -> (Controller<PythonPackage>, Option<Wakes>) {
    if !on {
        return (controller, None);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(super::hook::QUEUE);
    let wakes = tokio_stream::wrappers::ReceiverStream::new(rx);
    (controller.reconcile_on(wakes), Some(tx))
}

/// Keeps `writer`'s view of the build Jobs from the watch's `events`, and tells `limit` of
/// each change once the view has it (a finished or deleted Job frees a slot).
pub fn watch_jobs(
    events: impl futures::Stream<Item = Result<watcher::Event<Job>, watcher::Error>> + Send + 'static,
    writer: reflector::store::Writer<Job>,
    limit: GlobalLimit,
) -> impl Future<Output = ()> + Send + 'static {
    events
        .modify(|job: &mut Job| {
            // Only the status and labels are read: keep the view small.
            job.managed_fields_mut().clear();
            if let Some(spec) = job.spec.as_mut() {
                spec.template = Default::default();
            }
        })
        .reflect(writer)
        .for_each(move |event| {
            match event {
                Ok(event) => limit.job_event(&event),
                Err(e) => tracing::warn!(error = %e, "watching build Jobs"),
            }
            futures::future::ready(())
        })
}

/// The controller, also reconciling the packages `limit` wakes when a build Job slot frees
/// (oldest waiter first), rather than on their fallback requeue.
pub fn woken_by_freed_slots(
    controller: Controller<PythonPackage>,
    limit: &GlobalLimit,
) -> Controller<PythonPackage> {
    let (tx, rx) = tokio::sync::mpsc::channel(super::hook::QUEUE);
    tokio::spawn(limit.clone().wake_waiters(tx));
    controller.reconcile_on(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Everything the controller serves on its HTTP port: the probes, and the webhook receiver
/// when it has a secret (without one its route does not exist).
pub fn http_routes(
    metrics: MetricsText,
    ready: Arc<AtomicBool>,
    hook: Option<Hook>,
) -> axum::Router {
    let probes = probes(metrics, ready);
    match hook {
        Some(hook) => probes.merge(super::hook::routes(hook)),
        None => probes,
    }
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

fn error_policy(pkg: Arc<PythonPackage>, error: &Error, _ctx: Arc<Context<AnyStore>>) -> Action {
    tracing::warn!(package = %pkg.spec.package.package, namespace = ?pkg.metadata.namespace, %error, "reconcile failed: retrying in 5 minutes");
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

    /// The whole HTTP router as `run` builds it: the receiver exists only with a secret, and
    /// the probes stay as they were either way.
    #[tokio::test]
    async fn the_webhook_route_exists_only_with_a_secret() {
        use tower::ServiceExt;
        let text: MetricsText = Arc::new(String::new);
        let ready = Arc::new(AtomicBool::new(true));
        let push = |sig: Option<String>| {
            let body = r#"{"ref":"refs/tags/v1.0.0"}"#;
            let mut r = http::Request::post("/hook/tools/ruff").header("x-github-event", "push");
            if let Some(s) = sig {
                r = r.header("x-hub-signature-256", s);
            }
            r.body(axum::body::Body::from(body)).unwrap()
        };
        let status = |app: axum::Router, req: http::Request<axum::body::Body>| async move {
            app.oneshot(req).await.unwrap().status()
        };

        let off = http_routes(text.clone(), ready.clone(), None);
        assert_eq!(status(off.clone(), push(None)).await, 404);
        let health = http::Request::get("/healthz")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(status(off, health).await, 200);

        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let hook = Hook {
            secret: HookSecret::new("s3cret").unwrap(),
            wake: tx,
            active: Arc::new(AtomicBool::new(true)),
            metrics: Arc::new(Metrics::default()),
            packages: None,
        };
        let on = http_routes(text, ready, Some(hook));
        assert_eq!(status(on.clone(), push(None)).await, 401);
        assert!(rx.try_recv().is_err());
        // HMAC-SHA256 of the body with key "s3cret", computed independently (openssl dgst).
        let sig =
            "sha256=525c71caee57fc156b3ae39feee2730b9dd7b551414c81ee0a76743cf0a310ce".to_owned();
        assert_eq!(status(on.clone(), push(Some(sig))).await, 202);
        let woken = rx.recv().await.unwrap();
        assert_eq!(
            woken,
            kube::runtime::reflector::ObjectRef::new("ruff").within("tools")
        );
        let health = http::Request::get("/healthz")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(status(on, health).await, 200);
    }

    /// A wake through kube's real Controller: the package a signed tag push names is
    /// reconciled again; a name the watch has not seen is not reconciled at all.
    #[tokio::test]
    async fn a_signed_tag_push_reconciles_the_package_through_the_controller() {
        use tower::ServiceExt;
        let pkg = serde_json::json!({
            "apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage",
            "metadata": {"name": "ruff", "namespace": "tools", "resourceVersion": "1", "uid": "u1"},
            "spec": {"package": "ruff", "binaries": ["ruff"], "versions": [{"version": "0.1.0", "python": "3.12"}]},
        });
        let (client, _api) = list_then_hang(vec![pkg]);
        let controller = Controller::new(
            Api::<PythonPackage>::all(client),
            watcher::Config::default().any_semantic(),
        );
        let (controller, wake) = woken_by_hooks(controller, true);
        let (seen, mut reconciled) = tokio::sync::mpsc::unbounded_channel::<String>();
        let reconcile =
            |p: Arc<PythonPackage>, seen: Arc<tokio::sync::mpsc::UnboundedSender<String>>| async move {
                let _ = seen.send(format!("{}/{}", p.namespace().unwrap(), p.name_any()));
                Ok::<_, kube::Error>(Action::await_change())
            };
        tokio::spawn(
            controller
                .run(reconcile, |_, _, _| Action::await_change(), Arc::new(seen))
                .for_each(|_| async {}),
        );
        assert_eq!(
            next(&mut reconciled, 5).await.unwrap().unwrap(),
            "tools/ruff",
            "from the list"
        );

        let hook = Hook {
            secret: HookSecret::new("s3cret").unwrap(),
            wake: wake.unwrap(),
            active: Arc::new(AtomicBool::new(true)),
            metrics: Arc::new(Metrics::default()),
            packages: None,
        };
        let app = http_routes(
            Arc::new(String::new),
            Arc::new(AtomicBool::new(true)),
            Some(hook),
        );
        // HMAC-SHA256 of the body with key "s3cret" (openssl dgst -sha256 -hmac s3cret).
        let sig = "sha256=525c71caee57fc156b3ae39feee2730b9dd7b551414c81ee0a76743cf0a310ce";
        for path in ["/hook/tools/absent", "/hook/tools/ruff"] {
            let req = http::Request::post(path)
                .header("x-github-event", "push")
                .header("x-hub-signature-256", sig)
                .body(axum::body::Body::from(r#"{"ref":"refs/tags/v1.0.0"}"#))
                .unwrap();
            assert_eq!(
                app.clone().oneshot(req).await.unwrap().status(),
                202,
                "{path}"
            );
        }
        assert_eq!(
            next(&mut reconciled, 5).await.unwrap().unwrap(),
            "tools/ruff",
            "woken"
        );
        assert!(
            next(&mut reconciled, 1).await.is_err(),
            "nothing else: the absent name is not reconciled"
        );
    }

    /// A freed slot through kube's real Controller: the Job watch's events reach the limit,
    /// which wakes the packages waiting for a slot, oldest first, one per free slot; a package
    /// that stopped waiting is not woken.
    #[tokio::test]
    async fn a_finished_job_wakes_the_packages_waiting_for_a_slot_oldest_first() {
        use kube::runtime::watcher::Event;
        let pkg = |name: &str| {
            serde_json::json!({
                "apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage",
                "metadata": {"name": name, "namespace": "tools", "resourceVersion": "1", "uid": name},
                "spec": {"package": name, "binaries": [name], "versions": [{"version": "1.0", "python": "3.12"}]},
            })
        };
        let job = |state: serde_json::Value| -> Job {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "other-1-0-lock", "namespace": "tools"}, "status": state,
            }))
            .unwrap()
        };
        let (client, _api) = list_then_hang(vec![pkg("a"), pkg("b"), pkg("c")]);
        let (view, writer) = reflector::store();
        let limit = GlobalLimit::new(1, view);
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(watch_jobs(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
            writer,
            limit.clone(),
        ));
        let controller = Controller::new(
            Api::<PythonPackage>::all(client),
            watcher::Config::default().any_semantic(),
        );
        let controller = woken_by_freed_slots(controller, &limit);
        let (seen, mut reconciled) = tokio::sync::mpsc::unbounded_channel::<String>();
        let reconcile =
            |p: Arc<PythonPackage>, seen: Arc<tokio::sync::mpsc::UnboundedSender<String>>| async move {
                let _ = seen.send(p.name_any());
                Ok::<_, kube::Error>(Action::await_change())
            };
        tokio::spawn(
            controller
                .run(reconcile, |_, _, _| Action::await_change(), Arc::new(seen))
                .for_each(|_| async {}),
        );
        let mut listed = Vec::new();
        for _ in 0..3 {
            listed.push(next(&mut reconciled, 5).await.unwrap().unwrap());
        }
        listed.sort();
        assert_eq!(listed, ["a", "b", "c"], "from the list");

        // One Job runs elsewhere: the one slot is taken. c, then a, then b find no slot; b
        // then gets its Jobs another way and stops waiting.
        for e in [
            Event::Init,
            Event::InitApply(job(serde_json::json!({"active": 1}))),
            Event::InitDone,
        ] {
            events.send(Ok(e)).unwrap();
        }
        let at = |name: &str| ObjectRef::new(name).within("tools");
        for (name, waiting) in [
            ("c", true),
            ("a", true),
            ("b", true),
            ("c", true),
            ("b", false),
        ] {
            limit.set_waiting(at(name), waiting);
        }
        assert!(
            next(&mut reconciled, 1).await.is_err(),
            "no slot is free yet"
        );

        let finished = std::time::Instant::now();
        events
            .send(Ok(Event::Apply(job(serde_json::json!({"succeeded": 1})))))
            .unwrap();
        assert_eq!(
            next(&mut reconciled, 5).await.unwrap().unwrap(),
            "c",
            "the oldest"
        );
        // Was up to the 60 s fallback requeue.
        println!("woken {:?} after the Job finished", finished.elapsed());
        assert!(
            next(&mut reconciled, 1).await.is_err(),
            "one slot, one package"
        );

        // c did not take the slot (here): the Job's deletion (its TTL) wakes the next one.
        events
            .send(Ok(Event::Delete(job(serde_json::json!({"succeeded": 1})))))
            .unwrap();
        assert_eq!(next(&mut reconciled, 5).await.unwrap().unwrap(), "a");
        assert!(next(&mut reconciled, 1).await.is_err(), "b stopped waiting");
        assert!(limit.waiters().is_empty());
    }

    /// The next reconcile's package, or Err after `secs` without one.
    async fn next(
        r: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
        secs: u64,
    ) -> Result<Option<String>, tokio::time::error::Elapsed> {
        tokio::time::timeout(Duration::from_secs(secs), r.recv()).await
    }

    /// An API server that lists `items` and keeps every watch open, answering nothing more.
    fn list_then_hang(
        items: Vec<serde_json::Value>,
    ) -> (kube::Client, tokio::task::JoinHandle<()>) {
        use http::{Request, Response};
        use kube::client::Body;
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Some((request, respond)) = handle.next_request().await {
                if request.uri().query().unwrap_or("").contains("watch=true") {
                    open.push(respond); // a watch with no events yet
                    continue;
                }
                let list = serde_json::json!({
                    "apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackageList",
                    "metadata": {"resourceVersion": "1"}, "items": items,
                });
                respond.send_response(
                    Response::builder()
                        .body(Body::from(serde_json::to_vec(&list).unwrap()))
                        .unwrap(),
                );
            }
        });
        (kube::Client::new(svc, "default"), task)
    }
}
