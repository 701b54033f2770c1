//! The observe phase of a reconcile: the source's versions and the package's releases, its
//! Jobs (failed ones made for an older spec deleted, so they are made again; new failures
//! explained from their pods), and, once the plan says which platforms have work, the nodes
//! that could run it.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::{Error, Subject};
use crate::controller::context::Context;
use crate::controller::jobs::FAILURE;
use crate::controller::observe::{
    ObservedJob, foreign_owner, job_state, observe_jobs, schedulable_for,
};
use crate::controller::resource::PythonPackage;
use crate::controller::status::{self, Unobserved};
use crate::names::Platform;
use crate::plan::{Plan, Step, WorkState};
use crate::pypi::IndexVersion;
use crate::release::{Release, ReleaseStore};

/// What a reconcile saw.
pub(super) struct World {
    pub versions: Vec<IndexVersion>,
    pub releases: Vec<Release>,
    pub jobs: Vec<ObservedJob>,
}

/// Why a reconcile stops before deciding anything.
pub(super) enum Stop {
    /// Only a change to the resource helps: said in the status, then wait for a change.
    Invalid(String),
    /// The index or the release store failed: said in the status, retried later.
    Unavailable(Unobserved),
    Api(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Api(e)
    }
}

/// The source's versions, the releases, and the package's Jobs.
pub(super) async fn observe<S: ReleaseStore>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    store: &S,
) -> Result<World, Stop> {
    let (versions, releases) = observe_sources(ctx, &s.pkg.spec, s.spec(), store)
        .await
        .map_err(|p| match p {
            Unobserved::Invalid(m) => Stop::Invalid(m),
            p => Stop::Unavailable(p),
        })?;
    let listed = s
        .jobs
        .list(&ListParams::default().labels(&s.selector))
        .await
        .map_err(Error::ListJobs)?
        .items;
    // Job names and releases come from the package: two resources for one package in a
    // namespace would take each other's drafts and Jobs. The second one stops and says so.
    if let Some(other) = first_of_package(ctx, s.pkg)
        .or_else(|| foreign_owner(&listed, s.pkg.metadata.uid.as_deref()))
    {
        return Err(Stop::Invalid(format!(
            "the PythonPackage {other} in this namespace already builds {}: keep one of the two",
            s.name()
        )));
    }
    let retried = if s.pkg.spec.suspend {
        Vec::new()
    } else {
        delete_stale_failures(s, &listed).await?
    };
    let mut jobs = observe_jobs(listed.iter().filter(|j| !retried.contains(&j.name_any())));
    explain_failures(ctx, s, &mut jobs).await?;
    Ok(World {
        versions,
        releases,
        jobs,
    })
}

/// Another resource in the namespace for the same package that came first (created earlier;
/// at the same second, the smaller name): its name.
fn first_of_package<S>(ctx: &Context<S>, pkg: &PythonPackage) -> Option<String> {
    let store = ctx.packages.as_ref()?;
    let key = |p: &PythonPackage| {
        (
            p.metadata.creation_timestamp.clone().map(|t| t.0),
            p.name_any(),
        )
    };
    store
        .state()
        .into_iter()
        .filter(|other| {
            other.namespace() == pkg.namespace()
                && other.metadata.uid != pkg.metadata.uid
                && other.spec.package.package == pkg.spec.package.package
                && key(other) < key(pkg)
        })
        .map(|other| other.name_any())
        .min()
}

/// The project's versions from the index and the package's releases from the store.
async fn observe_sources<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg_spec: &crate::controller::resource::PythonPackageSpec,
    spec: &crate::spec::PackageSpec,
    store: &S,
) -> Result<(Vec<IndexVersion>, Vec<Release>), Unobserved> {
    let index = ctx
        .targets
        .index(pkg_spec, &ctx.index)
        .map_err(Unobserved::Invalid)?;
    let offered = crate::source::offered(index, spec)
        .await
        .map_err(|e| match e.needs_a_fix() {
            true => Unobserved::Invalid(e.to_string()),
            false => Unobserved::Unavailable(e.to_string()),
        })?;
    let releases = observe_releases(store, spec).await?;
    Ok((offered.versions, releases))
}

pub(super) async fn observe_releases<S: ReleaseStore>(
    store: &S,
    spec: &crate::spec::PackageSpec,
) -> Result<Vec<Release>, Unobserved> {
    store
        .releases(&spec.package)
        .await
        .map_err(|e| Unobserved::Unavailable(e.to_string()))
}

/// Deletes failed Jobs made for an older spec or `requested-at` (background: the object goes
/// at once), so that their steps are made again: that is how failures are retried. Returns
/// their names.
async fn delete_stale_failures(s: &Subject<'_>, listed: &[Job]) -> Result<Vec<String>, Error> {
    let wanted = crate::controller::jobs::made_for(s.pkg);
    let mut deleted = Vec::new();
    for job in listed {
        // Only our keys: other annotations (a policy engine's, a user's) change nothing.
        let annotations = job.annotations();
        let stale = wanted.iter().any(|(k, v)| annotations.get(k) != Some(v));
        if stale && matches!(job_state(job), WorkState::Failed { .. }) {
            tracing::info!(package = %s.name(), job = %job.name_any(), "retrying a failed Job: the spec or requested-at changed");
            delete_job(s, &job.name_any()).await?;
            deleted.push(job.name_any());
        }
    }
    Ok(deleted)
}

pub(super) async fn delete_job(s: &Subject<'_>, name: &str) -> Result<(), Error> {
    match s
        .jobs
        .delete(name, &kube::api::DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(Error::DeleteJob {
            name: name.to_owned(),
            source,
        }),
    }
}

/// Platforms with work to run that cannot run here: left out of the platform table, or no
/// Ready, schedulable node for their pool (a lock runs on the table's lock platform). Said in
/// the status, not left Pending. Without permission to list nodes only the table is checked.
pub(super) async fn unschedulable_platforms<S>(
    ctx: &Context<S>,
    plan: &Plan,
) -> Result<Vec<Platform>, Error> {
    let mut wanted: Vec<Platform> = plan
        .steps()
        .filter_map(|(_, step)| match step {
            Step::Build { platform, .. } => Some(*platform),
            Step::Create | Step::Lock { .. } => ctx.table.lock_platform(),
            _ => None,
        })
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
        Err(e) => return Err(Error::ListNodes(e)),
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
    s: &Subject<'_>,
    jobs: &mut [ObservedJob],
) -> Result<(), Error> {
    if !jobs.iter().any(|j| j.new_failure) {
        return Ok(());
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &s.ns);
    let pods = match pods.list(&ListParams::default().labels(&s.selector)).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::warn!("cannot list pods (forbidden): failures keep the Job's reason");
            Vec::new()
        }
        Err(e) => return Err(Error::ListPods(e)),
    };
    for job in jobs.iter_mut().filter(|j| j.new_failure) {
        let WorkState::Failed { reason, message } = &job.state else {
            continue;
        };
        let pod = pods.iter().rev().find(|p| {
            p.labels().get("job-name") == Some(&job.name)
                || p.labels().get("batch.kubernetes.io/job-name") == Some(&job.name)
        });
        if let Some(explained) = pod.and_then(|p| status::pod_failure(p, reason, message)) {
            job.state = explained;
        }
        let WorkState::Failed { reason, message } = &job.state else {
            continue;
        };
        let record = serde_json::json!({"reason": reason, "message": message}).to_string();
        let patch = serde_json::json!({"metadata": {"annotations": {FAILURE: record}}});
        s.jobs
            .patch(&job.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::AnnotateJob {
                name: job.name.clone(),
                source,
            })?;
    }
    Ok(())
}
