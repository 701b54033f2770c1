//! Reconciling one `PythonPackage`, in phases, each a function with its own errors:
//!
//! - **validate**: the spec's rules and the targets it names (`Invalid` otherwise);
//! - **observe** (`observe`): the source's versions, the package's releases and Jobs;
//! - **decide**: the same pure planner as `sync`, fed the Jobs as work under way. A Job that
//!   finished but whose output the release view lacks makes the view stale by definition: it
//!   is listed again and the plan made again;
//! - **apply** (`apply`): Jobs no longer wanted deleted, extra drafts discarded, complete
//!   drafts published, lock and build Jobs started, the manifest committed;
//! - **status**, written only when it changed. Events go out on transitions.

mod apply;
mod observe;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};

pub use super::context::{Context, MANAGER};
use super::jobs::{PACKAGE_LABEL, label_value};
use super::resource::{PythonPackage, PythonPackageStatus, parse_interval};
use super::status::{self, ManifestReport, Observed, Trouble, Unobserved};
use super::targets::{SharedSink, StoreTarget};
use crate::names::Platform;
use crate::plan::{Plan, PlanOptions, WorkState, plan};
use crate::release::ReleaseStore;
use observe::{Stop, World};

/// What failed in a reconcile: each names the call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot list the package's Jobs: {0}")]
    ListJobs(#[source] kube::Error),
    #[error("cannot delete the Job {name}: {source}")]
    DeleteJob { name: String, source: kube::Error },
    #[error("cannot apply the Job {name}: {source}")]
    ApplyJob { name: String, source: kube::Error },
    #[error("cannot record the failure on the Job {name}: {source}")]
    AnnotateJob { name: String, source: kube::Error },
    #[error("cannot list the package's pods: {0}")]
    ListPods(#[source] kube::Error),
    #[error("cannot list nodes: {0}")]
    ListNodes(#[source] kube::Error),
    #[error("cannot write the status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error(transparent)]
    MakeJob(#[from] super::jobs::JobError),
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

/// What a reconcile knows about its resource.
struct Subject<'a> {
    pkg: &'a PythonPackage,
    ns: String,
    generation: i64,
    jobs: Api<Job>,
    selector: String,
}

impl<'a> Subject<'a> {
    fn new<S>(ctx: &Context<S>, pkg: &'a PythonPackage) -> Self {
        let ns = pkg.namespace().unwrap_or_else(|| "default".into());
        Subject {
            pkg,
            generation: pkg.metadata.generation.unwrap_or(0),
            jobs: Api::namespaced(ctx.client.clone(), &ns),
            selector: format!(
                "{PACKAGE_LABEL}={}",
                label_value(pkg.spec.package.package.as_str())
            ),
            ns,
        }
    }

    fn spec(&self) -> &crate::spec::PackageSpec {
        &self.pkg.spec.package
    }

    fn name(&self) -> &crate::names::PackageName {
        &self.pkg.spec.package.package
    }

    fn requested_at(&self) -> Option<String> {
        self.pkg
            .annotations()
            .get(super::jobs::REQUESTED_AT)
            .cloned()
    }

    /// The spec or the retry request changed since the status was written: platforms recorded
    /// as impossible are tried again (once: the status then records this generation).
    fn retry_requested(&self) -> bool {
        self.pkg.status.as_ref().is_some_and(|p| {
            p.observed_generation != Some(self.generation) || p.requested_at != self.requested_at()
        })
    }
}

/// The driver: validate → observe → decide → apply → status.
async fn reconcile_package<S: ReleaseStore>(
    pkg: &PythonPackage,
    ctx: &Context<S>,
) -> Result<Requeue, Error> {
    let s = Subject::new(ctx, pkg);
    let (target, sink) = match validate(ctx, pkg) {
        Ok(Target { store, sink }) => (store, sink),
        Err(message) => return stopped(ctx, &s, Stop::Invalid(message)).await,
    };
    let store = &target.store;
    let mut world = match observe::observe(ctx, &s, store).await {
        Ok(w) => w,
        Err(Stop::Api(e)) => return Err(e),
        Err(stop) => return stopped(ctx, &s, stop).await,
    };
    let mut plan = decide_fresh(&s, store, &mut world).await;
    // The nodes are looked at only for platforms with work to run.
    let no_node = observe::unschedulable_platforms(ctx, &plan).await?;
    let mut done = Applied::default();
    if !pkg.spec.suspend {
        let settled = apply::settle(ctx, &s, store, &plan, &mut world, &mut done.trouble).await?;
        if settled.releases {
            world.releases = observe::observe_releases(store, s.spec())
                .await
                .unwrap_or(world.releases);
        }
        if settled.jobs || settled.releases {
            plan = decide(&s, &world);
        }
        let todo = apply::ToStart {
            versions: &world.versions,
            plan: &plan,
            no_node: &no_node,
        };
        done.waiting_for_slots =
            apply::start_jobs(ctx, &s, store, todo, &mut world.jobs, &mut done.trouble).await?;
        if let Some(sink) = &sink {
            done.manifest = manifest(ctx, &s, &target, sink, &world, &mut done.trouble).await;
        }
    }
    if let Some(limit) = &ctx.limit {
        // A package that found no free slot is woken when another package's Job finishes.
        let me = kube::runtime::reflector::ObjectRef::from_obj(pkg);
        limit.set_waiting(me, done.waiting_for_slots);
    }
    apply::report_new_failures(ctx, pkg, &world.jobs).await;
    write_status(ctx, &s, status(ctx, &s, &plan, &world, &no_node, &done)).await?;
    Ok(requeue(&plan, &world, &done, &s))
}

/// What the apply phase did that the status and the next wake depend on.
#[derive(Default)]
struct Applied {
    trouble: Vec<Trouble>,
    manifest: ManifestReport,
    waiting_for_slots: bool,
}

/// The plan, from what was observed.
fn decide(s: &Subject<'_>, world: &World) -> Plan {
    let options = PlanOptions {
        retry_missing: s.retry_requested(),
        ..PlanOptions::default()
    };
    let work: Vec<_> = world.jobs.iter().filter_map(|j| j.work()).collect();
    plan(s.spec(), &world.versions, &world.releases, &work, &options)
}

/// The plan; when a Job finished after the releases were listed, they are listed again first.
async fn decide_fresh<S: ReleaseStore>(s: &Subject<'_>, store: &S, world: &mut World) -> Plan {
    let plan = decide(s, world);
    if !plan.versions.iter().any(|v| v.waiting) {
        return plan;
    }
    store.refresh().await;
    match observe::observe_releases(store, s.spec()).await {
        Ok(releases) => {
            world.releases = releases;
            decide(s, world)
        }
        Err(_) => plan,
    }
}

async fn manifest<S: ReleaseStore>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    target: &StoreTarget<S>,
    sink: &SharedSink,
    world: &World,
    trouble: &mut Vec<Trouble>,
) -> ManifestReport {
    super::manifest::commit_manifest(ctx, s.pkg, target, sink, &world.releases, trouble).await
}

/// The status of a reconcile that got to decide.
fn status<S>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    plan: &Plan,
    world: &World,
    no_node: &[Platform],
    done: &Applied,
) -> PythonPackageStatus {
    status::compute(&Observed {
        generation: s.generation,
        plan: Some(plan),
        running: running(world),
        no_node,
        trouble: &done.trouble,
        suspended: s.pkg.spec.suspend,
        error: None,
        manifest: done.manifest.clone(),
        requested_at: s.requested_at(),
        previous: s.pkg.status.as_ref(),
        now: (ctx.now)(),
    })
}

fn running(world: &World) -> u32 {
    world
        .jobs
        .iter()
        .filter(|j| j.state == WorkState::Running)
        .count() as u32
}

/// When to look again: soon while waiting for a view to catch up, at the fallback while Jobs
/// run or wait for a slot (a finished Job wakes the package through the watch), later when
/// the manifest could not be committed, else at the spec's interval.
fn requeue(plan: &Plan, world: &World, done: &Applied, s: &Subject<'_>) -> Requeue {
    let interval =
        parse_interval(s.pkg.spec.interval.as_deref()).unwrap_or(Duration::from_secs(3600));
    Requeue::requeue(if plan.versions.iter().any(|v| v.waiting) {
        Duration::from_secs(10)
    } else if running(world) > 0 || done.waiting_for_slots {
        Duration::from_secs(60)
    } else if done.manifest.error.is_some() {
        Duration::from_secs(300)
    } else {
        interval
    })
}

/// A reconcile that stops before deciding: said in the status (an unavailable source once per
/// generation: a message that changes with each retry, such as a rate limit's reset time,
/// would rewrite the status, and each write reconciles again).
async fn stopped<S>(ctx: &Context<S>, s: &Subject<'_>, stop: Stop) -> Result<Requeue, Error> {
    match stop {
        Stop::Invalid(message) => {
            tracing::info!(package = %s.name(), namespace = %s.ns, %message, "invalid: waiting for a change");
            let observed = failed_observation(ctx, s, Unobserved::Invalid(message));
            write_status(ctx, s, status::compute(&observed)).await?;
            Ok(Requeue::await_change())
        }
        Stop::Unavailable(problem) => {
            tracing::warn!(package = %s.name(), namespace = %s.ns, ?problem, "cannot observe: retrying in 5 minutes");
            let said = s.pkg.status.as_ref().is_some_and(|p| {
                p.observed_generation == Some(s.generation)
                    && p.conditions.iter().any(|c| {
                        c.type_ == "Ready"
                            && matches!(c.reason.as_str(), "ObserveFailed" | "Invalid")
                    })
            });
            if !said {
                let observed = failed_observation(ctx, s, problem);
                write_status(ctx, s, status::compute(&observed)).await?;
            }
            Ok(Requeue::requeue(Duration::from_secs(300)))
        }
        Stop::Api(e) => Err(e),
    }
}

/// The targets a valid spec names: its release store and, when it has one, its manifest sink.
struct Target<S> {
    store: Arc<StoreTarget<S>>,
    sink: Option<SharedSink>,
}

/// The spec's own rules, and the targets it names (which the operator must allow).
fn validate<S>(ctx: &Context<S>, pkg: &PythonPackage) -> Result<Target<S>, String> {
    pkg.spec.validate().map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    ctx.targets.source(&pkg.spec)?;
    ctx.targets.index(&pkg.spec, &ctx.index)?;
    Ok(Target {
        store: ctx.targets.store(&pkg.spec)?,
        sink: ctx.targets.sink(&pkg.spec)?,
    })
}

/// The status of a reconcile that could not observe or plan.
fn failed_observation<'a, S>(
    ctx: &Context<S>,
    s: &'a Subject<'_>,
    problem: Unobserved,
) -> Observed<'a> {
    Observed {
        generation: s.generation,
        plan: None,
        running: 0,
        no_node: &[],
        trouble: &[],
        suspended: s.pkg.spec.suspend,
        error: Some(problem),
        manifest: ManifestReport::default(),
        requested_at: s.pkg.status.as_ref().and_then(|p| p.requested_at.clone()),
        previous: s.pkg.status.as_ref(),
        now: (ctx.now)(),
    }
}

/// Writes the status by server-side apply, only when it differs from what is there.
async fn write_status<S>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    status: PythonPackageStatus,
) -> Result<(), Error> {
    if s.pkg.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<PythonPackage> = Api::namespaced(ctx.client.clone(), &s.ns);
    let patch = serde_json::json!({
        "apiVersion": PythonPackage::api_version(&()),
        "kind": PythonPackage::kind(&()),
        "status": status,
    });
    api.patch_status(
        &s.pkg.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::WriteStatus)?;
    Ok(())
}
