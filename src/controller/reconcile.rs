//! Reconciling one `PythonPackage`, in phases: observe (the index, the release store, the
//! package's Jobs) → plan (the same pure planner as `sync`) → apply (publish complete releases,
//! create missing build Jobs by server-side apply, within limits, newest versions first; commit
//! the manifest when its versions changed) → status (written only when it changed). Only apply
//! and status touch the API server; events are sent on transitions, not on every loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use pep440_rs::Version;

use super::jobs::{FAILURE, JobSettings, PACKAGE_LABEL, PlatformTable, build_job, label_value};
use super::limit::GlobalLimit;
use super::metrics::Metrics;
use super::observe::{ObservedJob, foreign_owner, job_state, observe_jobs, schedulable_for};
use super::resource::parse_interval;
use super::resource::{PythonPackage, PythonPackageStatus};
use super::status::{self, JobObservation, JobState, ManifestReport, Observed, Problem};
use super::targets::Targets;
use crate::names::Platform;
use crate::plan::{Action, Plan, PlanOptions, VersionStatus, plan};
use crate::pypi::IndexClient;
use crate::release::{Release, ReleaseStore};

/// The field manager of everything the controller applies.
pub const MANAGER: &str = "hermit-pex";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Job(#[from] super::jobs::JobError),
}

pub struct Context<S> {
    pub client: kube::Client,
    pub index: IndexClient,
    /// Where releases and manifests go.
    pub targets: Targets<S>,
    pub table: PlatformTable,
    pub jobs: JobSettings,
    /// Build Jobs running at once for one package.
    pub per_package: usize,
    /// Build Jobs running at once across all packages; `None`: no such bound.
    pub limit: Option<GlobalLimit>,
    /// Events on transitions; `None`: none sent.
    pub recorder: Option<Recorder>,
    pub metrics: Arc<Metrics>,
    pub now: fn() -> Time,
}

pub async fn reconcile<S: ReleaseStore>(
    pkg: Arc<PythonPackage>,
    ctx: Arc<Context<S>>,
) -> Result<Requeue, Error> {
    let started = Instant::now();
    let result = reconcile_package(&pkg, &ctx).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciled(outcome, started.elapsed().as_secs_f64());
    result
}

async fn reconcile_package<S: ReleaseStore>(
    pkg: &PythonPackage,
    ctx: &Context<S>,
) -> Result<Requeue, Error> {
    let ns = pkg.namespace().unwrap_or_else(|| "default".into());
    let generation = pkg.metadata.generation.unwrap_or(0);
    let spec = &pkg.spec.package;
    let previous = pkg.status.as_ref();
    let interval =
        parse_interval(pkg.spec.interval.as_deref()).unwrap_or(Duration::from_secs(3600));
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let observe_error = |e: Problem| Observed {
        generation,
        plan: None,
        jobs: &[],
        no_node: &[],
        suspended: pkg.spec.suspend,
        error: Some(e),
        manifest: ManifestReport::default(),
        previous,
        now: (ctx.now)(),
    };

    // Observe.
    let targets = spec
        .validate()
        .map_err(|problems| {
            problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .and_then(|()| Ok((ctx.targets.store(&pkg.spec)?, ctx.targets.sink(&pkg.spec)?)));
    let (target, sink) = match targets {
        Ok(t) => t,
        Err(message) => {
            let status = status::compute(&observe_error(Problem::Invalid(message)));
            write_status(ctx, pkg, &ns, status).await?;
            return Ok(Requeue::await_change());
        }
    };
    let store = &target.store;
    let (project, mut releases) = match observe_sources(ctx, spec, store).await {
        Ok(o) => o,
        Err(e) => {
            // Said once per generation: a message that changes with each retry (a rate
            // limit's reset time) would rewrite the status, and each write reconciles again.
            let said = previous.is_some_and(|p| {
                p.observed_generation == Some(generation)
                    && p.conditions.iter().any(|c| {
                        c.type_ == "Ready"
                            && matches!(c.reason.as_str(), "ObserveFailed" | "Invalid")
                    })
            });
            if !said {
                write_status(ctx, pkg, &ns, status::compute(&observe_error(e))).await?;
            }
            return Ok(Requeue::requeue(Duration::from_secs(300)));
        }
    };
    let selector = format!("{PACKAGE_LABEL}={}", label_value(spec.package.as_str()));
    let listed = jobs_api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    // Job names come from the package: two resources for one package in a namespace would
    // take each other's Jobs. The second one stops and says so.
    if let Some(other) = foreign_owner(&listed, pkg.metadata.uid.as_deref()) {
        let message = format!(
            "the PythonPackage {other} in this namespace already builds {}: keep one of the two",
            spec.package
        );
        let status = status::compute(&observe_error(Problem::Invalid(message)));
        write_status(ctx, pkg, &ns, status).await?;
        return Ok(Requeue::await_change());
    }
    let deleted = if pkg.spec.suspend {
        Vec::new()
    } else {
        delete_stale_failures(pkg, &jobs_api, &listed).await?
    };
    let mut jobs = observe_jobs(listed.iter().filter(|j| !deleted.contains(&j.name_any())));
    explain_failures(ctx, &ns, &selector, &mut jobs).await?;

    // Plan.
    let versions = project.versions();
    let mut plan = plan(spec, &versions, &releases, &PlanOptions::default());
    let no_node = unschedulable_platforms(ctx, &plan).await?;

    // Apply.
    let mut manifest = ManifestReport::default();
    let mut waiting = false;
    if !pkg.spec.suspend {
        if publish_complete(ctx, pkg, store, &plan).await {
            // The status and the manifest report what is now released.
            if let Ok(r) = store.releases(&spec.package).await {
                releases = r;
                plan = crate::plan::plan(spec, &versions, &releases, &PlanOptions::default());
            }
        }
        let (started, left) = start_builds(ctx, pkg, &jobs_api, &plan, &no_node, &mut jobs).await?;
        waiting = left;
        if !started.is_empty() {
            let note = format!("started {} builds: {}", started.len(), started.join(", "));
            event(ctx, pkg, EventType::Normal, "BuildStarted", note).await;
        }
        if let Some(sink) = sink {
            manifest = super::manifest::commit_manifest(ctx, pkg, &target, &sink, &releases).await;
        }
    }
    report_new_failures(ctx, pkg, &jobs).await;

    // Status.
    let observations: Vec<JobObservation> = jobs
        .into_iter()
        .map(|((version, platform), job)| JobObservation {
            version,
            platform,
            state: job.state,
        })
        .collect();
    let retry_manifest = manifest.error.is_some();
    let computed = status::compute(&Observed {
        generation,
        plan: Some(&plan),
        jobs: &observations,
        no_node: &no_node,
        suspended: pkg.spec.suspend,
        error: None,
        manifest,
        previous,
        now: (ctx.now)(),
    });
    // Builds waiting for a slot: other packages' Jobs finishing do not wake this one.
    let busy = computed.building > 0 || waiting;
    write_status(ctx, pkg, &ns, computed).await?;
    Ok(Requeue::requeue(if busy {
        Duration::from_secs(60)
    } else if retry_manifest {
        Duration::from_secs(300)
    } else {
        interval
    }))
}

/// The project's versions from the index and the package's releases from the store.
async fn observe_sources<S: ReleaseStore>(
    ctx: &Context<S>,
    spec: &crate::spec::PackageSpec,
    store: &S,
) -> Result<(crate::pypi::ProjectFiles, Vec<Release>), Problem> {
    let project = ctx
        .index
        .project(&spec.package)
        .await
        .map_err(|e| match e {
            crate::pypi::IndexError::NotFound { .. } => Problem::Invalid(e.to_string()),
            e => Problem::Unavailable(e.to_string()),
        })?;
    let releases = store
        .releases(&spec.package)
        .await
        .map_err(|e| Problem::Unavailable(e.to_string()))?;
    Ok((project, releases))
}

/// Deletes failed Jobs made for an older spec or `requested-at` (background: the object goes
/// at once), so that their builds are made again: that is how failures are retried. Returns
/// their names.
async fn delete_stale_failures(
    pkg: &PythonPackage,
    jobs_api: &Api<Job>,
    listed: &[Job],
) -> Result<Vec<String>, Error> {
    let wanted = super::jobs::made_for(pkg);
    let mut deleted = Vec::new();
    for job in listed {
        // Only our keys: other annotations (a policy engine's, a user's) change nothing.
        let annotations = job.annotations();
        let stale = wanted.iter().any(|(k, v)| annotations.get(k) != Some(v));
        if stale && matches!(job_state(job), JobState::Failed { .. }) {
            jobs_api
                .delete(&job.name_any(), &kube::api::DeleteParams::background())
                .await?;
            deleted.push(job.name_any());
        }
    }
    Ok(deleted)
}

/// Publishes the releases the plan found complete; whether any was.
async fn publish_complete<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    store: &S,
    plan: &Plan,
) -> bool {
    let package = &pkg.spec.package.package;
    let mut published = Vec::new();
    for vp in plan
        .versions
        .iter()
        .filter(|v| v.status == VersionStatus::ToPublish)
    {
        match store.publish(package, &vp.version).await {
            Ok(()) => published.push(vp.version.to_string()),
            Err(e) => {
                tracing::warn!(%package, version = %vp.version, error = %e, "cannot publish")
            }
        }
    }
    if published.is_empty() {
        return false;
    }
    ctx.metrics.versions_released.inc_by(published.len() as u64);
    let note = format!("released {}", published.join(", "));
    event(ctx, pkg, EventType::Normal, "Released", note).await;
    true
}

/// One event for the failures this reconcile saw first (kube folds same-reason events).
async fn report_new_failures<S>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    jobs: &HashMap<(Version, Platform), ObservedJob>,
) {
    let mut failed: Vec<String> = Vec::new();
    for ((version, platform), job) in jobs {
        if let JobState::Failed { reason, message } = &job.state
            && job.new_failure
        {
            ctx.metrics.build(*platform, "failed");
            failed.push(format!("{version} {platform}: {reason}: {message}"));
        }
    }
    if !failed.is_empty() {
        failed.sort();
        let note = format!("{} builds failed: {}", failed.len(), failed.join("; "));
        event(ctx, pkg, EventType::Warning, "BuildFailed", note).await;
    }
}

/// Creates build Jobs for the plan's missing (version, platform)s, newest first, within the
/// package's and the controller's limits. Returns what was started, and whether builds were
/// left for lack of a slot.
async fn start_builds<S>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    jobs_api: &Api<Job>,
    plan: &Plan,
    no_node: &[Platform],
    jobs: &mut HashMap<(Version, Platform), ObservedJob>,
) -> Result<(Vec<String>, bool), Error> {
    let running = jobs
        .values()
        .filter(|j| j.state == JobState::Running)
        .count();
    let mut budget = ctx.per_package.saturating_sub(running);
    let mut slots = match &ctx.limit {
        Some(limit) => Some(limit.slots().await),
        None => None,
    };
    if let Some(slots) = &slots {
        ctx.metrics.jobs_running.set(slots.running as i64);
        budget = budget.min(slots.free);
    }
    let mut started = Vec::new();
    // Actions come newest version first.
    for action in &plan.actions {
        let Action::Build {
            version,
            python,
            platform,
            ..
        } = action
        else {
            continue;
        };
        if no_node.contains(platform) || jobs.contains_key(&(version.clone(), *platform)) {
            continue; // running, done (the store catches up) or failed (reported, not retried here)
        }
        if started.len() >= budget {
            return Ok((started, true));
        }
        let job = build_job(pkg, version, *python, *platform, &ctx.table, &ctx.jobs)?;
        let name = job.metadata.name.clone().unwrap_or_default();
        jobs_api
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&job),
            )
            .await?;
        ctx.metrics.build(*platform, "started");
        if let Some(slots) = slots.as_mut() {
            slots.took(pkg.namespace().unwrap_or_default(), name.clone());
        }
        jobs.insert(
            (version.clone(), *platform),
            ObservedJob {
                name,
                state: JobState::Running,
                new_failure: false,
            },
        );
        started.push(format!("{version} {platform}"));
    }
    Ok((started, false))
}

/// Platforms with builds to run that cannot run here: left out of the platform table, or no
/// Ready, schedulable node for their pool. Said in the status, not left Pending. Without
/// permission to list nodes only the table is checked.
async fn unschedulable_platforms<S>(ctx: &Context<S>, plan: &Plan) -> Result<Vec<Platform>, Error> {
    let mut wanted: Vec<Platform> = plan
        .actions
        .iter()
        .filter_map(Action::build_platform)
        .collect();
    wanted.sort();
    wanted.dedup();
    let (pooled, mut missing): (Vec<Platform>, Vec<Platform>) = wanted
        .into_iter()
        .partition(|p| ctx.table.platforms.contains_key(p));
    if pooled.is_empty() {
        return Ok(missing);
    }
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let nodes = match nodes.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::warn!("cannot list nodes (forbidden): the node pool check is skipped");
            return Ok(missing);
        }
        Err(e) => return Err(e.into()),
    };
    missing.extend(pooled.into_iter().filter(|p| {
        let pool = &ctx.table.platforms[p];
        !nodes.iter().any(|n| schedulable_for(n, pool))
    }));
    missing.sort();
    Ok(missing)
}

/// Explains failed Jobs: a failure recorded on its Job (the `FAILURE` annotation) is taken
/// from there; a new one gets its pod's reason (OOMKilled, the exit code and the end of the
/// log) and is recorded on the Job, so pods are read and the failure reported once, however
/// many failures there are.
async fn explain_failures<S>(
    ctx: &Context<S>,
    ns: &str,
    selector: &str,
    jobs: &mut HashMap<(Version, Platform), ObservedJob>,
) -> Result<(), Error> {
    if !jobs.values().any(|j| j.new_failure) {
        return Ok(());
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pods = match pods.list(&ListParams::default().labels(selector)).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::warn!("cannot list pods (forbidden): failures keep the Job's reason");
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    for job in jobs.values_mut().filter(|j| j.new_failure) {
        let JobState::Failed { reason, message } = &job.state else {
            continue;
        };
        let pod = pods.iter().rev().find(|p| {
            p.labels().get("job-name") == Some(&job.name)
                || p.labels().get("batch.kubernetes.io/job-name") == Some(&job.name)
        });
        if let Some(explained) = pod.and_then(|p| status::pod_failure(p, reason, message)) {
            job.state = explained;
        }
        let JobState::Failed { reason, message } = &job.state else {
            continue;
        };
        let record = serde_json::json!({"reason": reason, "message": message}).to_string();
        let patch = serde_json::json!({"metadata": {"annotations": {FAILURE: record}}});
        jobs_api
            .patch(&job.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(())
}

/// Sends an event about `pkg`; a refused event is logged, never fatal.
pub(super) async fn event<S>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let Some(recorder) = &ctx.recorder else {
        return;
    };
    let mut note = note;
    if note.len() > 1000 {
        let mut cut = 997;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &pkg.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "cannot send an event");
    }
}

/// Writes the status by server-side apply, only when it differs from what is there.
async fn write_status<S>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    ns: &str,
    status: PythonPackageStatus,
) -> Result<(), Error> {
    if pkg.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<PythonPackage> = Api::namespaced(ctx.client.clone(), ns);
    let patch = serde_json::json!({
        "apiVersion": PythonPackage::api_version(&()),
        "kind": PythonPackage::kind(&()),
        "status": status,
    });
    api.patch_status(
        &pkg.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
