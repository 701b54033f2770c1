//! Reconciling one `PythonPackage`, in phases: observe (the index, the release store, the
//! package's Jobs) → plan (the same pure planner as `sync`) → apply (publish complete releases,
//! create missing build Jobs by server-side apply, within limits, newest versions first) →
//! status (written only when it changed). Only apply and status touch the API server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};
use pep440_rs::Version;

use super::jobs::{
    JobSettings, PACKAGE_LABEL, PLATFORM_LABEL, PlatformTable, VERSION_LABEL, build_job,
};
use super::resource::{PythonPackage, PythonPackageStatus};
use super::status::{self, JobObservation, JobState, Observed};
use crate::names::Platform;
use crate::plan::{Action, PlanOptions, VersionStatus, plan};
use crate::pypi::IndexClient;
use crate::release::ReleaseStore;

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
    pub store: S,
    pub table: PlatformTable,
    pub jobs: JobSettings,
    /// Build Jobs running at once for one package.
    pub per_package: usize,
    pub now: fn() -> Time,
}

pub async fn reconcile<S: ReleaseStore>(
    pkg: Arc<PythonPackage>,
    ctx: Arc<Context<S>>,
) -> Result<Requeue, Error> {
    let ns = pkg.namespace().unwrap_or_else(|| "default".into());
    let generation = pkg.metadata.generation.unwrap_or(0);
    let spec = &pkg.spec.package;
    let interval =
        parse_interval(pkg.spec.interval.as_deref()).unwrap_or(Duration::from_secs(3600));
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let observe_error = |e: String| Observed {
        generation,
        plan: None,
        jobs: &[],
        no_node: &[],
        suspended: pkg.spec.suspend,
        error: Some(e),
        last_commit: None,
        previous: pkg.status.as_ref(),
        now: (ctx.now)(),
    };

    // Observe.
    if let Err(problems) = spec.validate() {
        let message = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        write_status(&ctx, &pkg, &ns, status::compute(&observe_error(message))).await?;
        return Ok(Requeue::await_change());
    }
    let observed = async {
        let project = ctx
            .index
            .project(&spec.package)
            .await
            .map_err(|e| e.to_string())?;
        let releases = ctx
            .store
            .releases(&spec.package)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((project, releases))
    };
    let (project, releases) = match observed.await {
        Ok(o) => o,
        Err(e) => {
            write_status(&ctx, &pkg, &ns, status::compute(&observe_error(e))).await?;
            return Ok(Requeue::requeue(Duration::from_secs(300)));
        }
    };
    let selector = format!("{PACKAGE_LABEL}={}", spec.package);
    let listed = jobs_api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    // A failed Job made for an older spec or request is deleted (background: the object goes
    // at once) and its build made again below: that is how failures are retried.
    let wanted = super::jobs::made_for(&pkg);
    let mut deleted = Vec::new();
    for job in &listed {
        let stale = job.metadata.annotations.as_ref() != Some(&wanted);
        if stale && matches!(job_state(job), JobState::Failed { .. }) && !pkg.spec.suspend {
            jobs_api
                .delete(&job.name_any(), &kube::api::DeleteParams::background())
                .await?;
            deleted.push(job.name_any());
        }
    }
    let mut jobs = observe_jobs(listed.iter().filter(|j| !deleted.contains(&j.name_any())));

    // Plan.
    let versions = project.versions();
    let mut plan = plan(spec, &versions, &releases, &PlanOptions::default());

    // Platforms whose builds could not be scheduled: said in the status, not left Pending.
    let wanted: Vec<Platform> = plan
        .actions
        .iter()
        .filter_map(Action::build_platform)
        .collect();
    let no_node = if wanted.is_empty() {
        Vec::new()
    } else {
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        let nodes = nodes.list(&ListParams::default()).await?.items;
        let mut missing: Vec<Platform> = wanted
            .into_iter()
            .filter(|p| {
                ctx.table
                    .platforms
                    .get(p)
                    .is_some_and(|pool| !nodes.iter().any(|n| schedulable_for(n, pool)))
            })
            .collect();
        missing.sort();
        missing.dedup();
        missing
    };

    // Apply.
    if !pkg.spec.suspend {
        let mut published = false;
        for vp in plan
            .versions
            .iter()
            .filter(|v| v.status == VersionStatus::ToPublish)
        {
            match ctx.store.publish(&spec.package, &vp.version).await {
                Ok(()) => published = true,
                Err(e) => {
                    tracing::warn!(package = %spec.package, version = %vp.version, error = %e, "cannot publish")
                }
            }
        }
        if published {
            // The status reports what is now released.
            if let Ok(releases) = ctx.store.releases(&spec.package).await {
                plan = crate::plan::plan(spec, &versions, &releases, &PlanOptions::default());
            }
        }
        let mut running = jobs.values().filter(|s| **s == JobState::Running).count();
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
            if running >= ctx.per_package {
                break;
            }
            if no_node.contains(platform) || jobs.contains_key(&(version.clone(), *platform)) {
                continue; // running, done (the store catches up) or failed (reported, not retried here)
            }
            let job = build_job(&pkg, version, *python, *platform, &ctx.table, &ctx.jobs)?;
            let name = job.metadata.name.clone().unwrap_or_default();
            jobs_api
                .patch(
                    &name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&job),
                )
                .await?;
            jobs.insert((version.clone(), *platform), JobState::Running);
            running += 1;
        }
    }

    // Status.
    let observations: Vec<JobObservation> = jobs
        .into_iter()
        .map(|((version, platform), state)| JobObservation {
            version,
            platform,
            state,
        })
        .collect();
    let computed = status::compute(&Observed {
        generation,
        plan: Some(&plan),
        jobs: &observations,
        no_node: &no_node,
        suspended: pkg.spec.suspend,
        error: None,
        last_commit: None,
        previous: pkg.status.as_ref(),
        now: (ctx.now)(),
    });
    let busy = computed.building > 0;
    write_status(&ctx, &pkg, &ns, computed).await?;
    Ok(Requeue::requeue(if busy {
        Duration::from_secs(60)
    } else {
        interval
    }))
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

/// A Ready node without `unschedulable` whose labels include the pool's nodeSelector. Taints
/// against the pool's tolerations are not checked (the scheduler still decides).
pub fn schedulable_for(node: &Node, pool: &super::jobs::Pool) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let labels = node.metadata.labels.clone().unwrap_or_default();
    ready
        && !cordoned
        && pool
            .node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
}

/// The state of each (version, platform) from the package's Jobs.
fn observe_jobs<'a>(jobs: impl Iterator<Item = &'a Job>) -> HashMap<(Version, Platform), JobState> {
    jobs.filter_map(|job| {
        let l = job.metadata.labels.as_ref()?;
        let version: Version = l.get(VERSION_LABEL)?.parse().ok()?;
        let platform: Platform = l.get(PLATFORM_LABEL)?.parse().ok()?;
        Some(((version, platform), job_state(job)))
    })
    .collect()
}

fn job_state(job: &Job) -> JobState {
    let Some(status) = &job.status else {
        return JobState::Running;
    };
    if status.succeeded.unwrap_or(0) > 0 {
        return JobState::Succeeded;
    }
    let failed = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    match failed {
        Some(c) => JobState::Failed {
            reason: c.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: c.message.clone().unwrap_or_default(),
        },
        None => JobState::Running,
    }
}

/// `30m`, `1h`, `1h30m` as a duration.
pub fn parse_interval(s: Option<&str>) -> Option<Duration> {
    let s = s?;
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' => number.push(c),
            's' | 'm' | 'h' => {
                let n: u64 = number.parse().ok()?;
                total += n * match c {
                    's' => 1,
                    'm' => 60,
                    _ => 3600,
                };
                number.clear();
            }
            _ => return None,
        }
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(
            parse_interval(Some("1h30m")),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_interval(Some("45s")), Some(Duration::from_secs(45)));
        assert_eq!(parse_interval(Some("1d")), None);
        assert_eq!(parse_interval(Some("10")), None);
        assert_eq!(parse_interval(None), None);
    }
}
