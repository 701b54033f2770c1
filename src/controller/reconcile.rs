//! Reconciling one `PythonPackage`, in phases:
//!
//! - **observe**: the index's versions, the package's releases, its Jobs;
//! - **decide**: the same pure planner as `sync`, fed the Jobs as work under way. A Job that
//!   finished but whose output the release view lacks makes the view stale by definition: it
//!   is listed again and the plan made again;
//! - **apply**: Jobs no longer wanted are deleted; extra drafts discarded (the controller is
//!   the only writer of releases: it makes a version's one draft before its first Job and
//!   hands the Jobs its id); complete drafts published; lock and build Jobs created, newest
//!   versions first, within limits; the manifest committed when its versions changed;
//! - **status**, written only when it changed. Events go out on transitions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

pub use super::context::{Context, MANAGER};
use super::jobs::{FAILURE, JobFor, JobStep, PACKAGE_LABEL, label_value, step_job};
use super::observe::{ObservedJob, foreign_owner, job_state, observe_jobs, schedulable_for};
use super::resource::{FailureRecord, PythonPackage, PythonPackageStatus, parse_interval};
use super::status::{self, ManifestReport, Observed, Problem, Trouble};
use super::targets::StoreTarget;
use crate::build::VersionJob;
use crate::names::Platform;
use crate::plan::{Plan, PlanOptions, Step, VersionPlan, WorkKind, WorkState, plan};
use crate::pypi::IndexVersion;
use crate::release::{Release, ReleaseId, ReleaseStore};
use crate::step::{Done, PublishError, StepError, StepRunner};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Job(#[from] super::jobs::JobError),
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

impl Subject<'_> {
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

async fn reconcile_package<S: ReleaseStore>(
    pkg: &PythonPackage,
    ctx: &Context<S>,
) -> Result<Requeue, Error> {
    let ns = pkg.namespace().unwrap_or_else(|| "default".into());
    let subject = Subject {
        pkg,
        generation: pkg.metadata.generation.unwrap_or(0),
        jobs: Api::namespaced(ctx.client.clone(), &ns),
        selector: format!(
            "{PACKAGE_LABEL}={}",
            label_value(pkg.spec.package.package.as_str())
        ),
        ns,
    };
    let s = &subject;
    let interval =
        parse_interval(pkg.spec.interval.as_deref()).unwrap_or(Duration::from_secs(3600));

    // Validate.
    let (target, sink) = match validate(ctx, pkg) {
        Ok(t) => t,
        Err(message) => {
            tracing::info!(package = %s.name(), namespace = %s.ns, %message, "invalid: waiting for a change");
            write_status(
                ctx,
                s,
                status::compute(&failed_observation(ctx, s, Problem::Invalid(message))),
            )
            .await?;
            return Ok(Requeue::await_change());
        }
    };
    let store = &target.store;

    // Observe.
    let (versions, mut releases) = match observe_sources(ctx, &s.pkg.spec, s.spec(), store).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(package = %s.name(), namespace = %s.ns, problem = ?e, "cannot observe: retrying in 5 minutes");
            // Said once per generation: a message that changes with each retry (a rate
            // limit's reset time) would rewrite the status, and each write reconciles again.
            let said = pkg.status.as_ref().is_some_and(|p| {
                p.observed_generation == Some(s.generation)
                    && p.conditions.iter().any(|c| {
                        c.type_ == "Ready"
                            && matches!(c.reason.as_str(), "ObserveFailed" | "Invalid")
                    })
            });
            if !said {
                write_status(ctx, s, status::compute(&failed_observation(ctx, s, e))).await?;
            }
            return Ok(Requeue::requeue(Duration::from_secs(300)));
        }
    };
    let listed = s
        .jobs
        .list(&ListParams::default().labels(&s.selector))
        .await?
        .items;
    // Job names and releases come from the package: two resources for one package in a
    // namespace would take each other's drafts and Jobs. The second one stops and says so.
    if let Some(other) =
        first_of_package(ctx, pkg).or_else(|| foreign_owner(&listed, pkg.metadata.uid.as_deref()))
    {
        let message = format!(
            "the PythonPackage {other} in this namespace already builds {}: keep one of the two",
            s.name()
        );
        tracing::info!(package = %s.name(), namespace = %s.ns, %message, "invalid: waiting for a change");
        write_status(
            ctx,
            s,
            status::compute(&failed_observation(ctx, s, Problem::Invalid(message))),
        )
        .await?;
        return Ok(Requeue::await_change());
    }
    let retried = if pkg.spec.suspend {
        Vec::new()
    } else {
        delete_stale_failures(s, &listed).await?
    };
    let mut jobs = observe_jobs(listed.iter().filter(|j| !retried.contains(&j.name_any())));
    explain_failures(ctx, s, &mut jobs).await?;

    // Decide.
    let options = PlanOptions {
        retry_missing: s.retry_requested(),
        ..PlanOptions::default()
    };
    let decide = |releases: &[Release], jobs: &[ObservedJob]| {
        let work: Vec<_> = jobs.iter().filter_map(ObservedJob::work).collect();
        plan(s.spec(), &versions, releases, &work, &options)
    };
    let mut plan = decide(&releases, &jobs);
    if plan.versions.iter().any(|v| v.waiting) {
        // A Job finished after the view was listed: look again.
        store.refresh().await;
        releases = observe_releases(store, s.spec()).await.unwrap_or(releases);
        plan = decide(&releases, &jobs);
    }

    let mut trouble = Vec::new();
    let mut manifest = ManifestReport::default();
    let mut waiting_for_slots = false;
    let no_node = unschedulable_platforms(ctx, &plan).await?;
    if !pkg.spec.suspend {
        // Apply.
        if delete_unwanted_jobs(ctx, s, &plan, &mut jobs).await? {
            plan = decide(&releases, &jobs);
        }
        let changed = discard_drafts(ctx, s, store, &plan).await
            | publish_complete(ctx, s, store, &plan, &mut trouble).await;
        if changed {
            releases = observe_releases(store, s.spec()).await.unwrap_or(releases);
            plan = decide(&releases, &jobs);
        }
        let todo = ToStart {
            versions: &versions,
            plan: &plan,
            no_node: &no_node,
        };
        waiting_for_slots = start_jobs(ctx, s, store, todo, &mut jobs, &mut trouble).await?;
        if let Some(sink) = sink {
            manifest =
                super::manifest::commit_manifest(ctx, pkg, &target, &sink, &releases, &mut trouble)
                    .await;
        }
    }
    report_new_failures(ctx, pkg, &jobs).await;

    // Status.
    let running = jobs
        .iter()
        .filter(|j| j.state == WorkState::Running)
        .count() as u32;
    let retry_manifest = manifest.error.is_some();
    let computed = status::compute(&Observed {
        generation: s.generation,
        plan: Some(&plan),
        running,
        no_node: &no_node,
        trouble: &trouble,
        suspended: pkg.spec.suspend,
        error: None,
        manifest,
        requested_at: s.requested_at(),
        previous: pkg.status.as_ref(),
        now: (ctx.now)(),
    });
    write_status(ctx, s, computed).await?;
    let waiting = plan.versions.iter().any(|v| v.waiting);
    Ok(Requeue::requeue(if waiting {
        Duration::from_secs(10)
    } else if running > 0 || waiting_for_slots {
        // Finished Jobs wake the package through the watch; this is the fallback.
        Duration::from_secs(60)
    } else if retry_manifest {
        Duration::from_secs(300)
    } else {
        interval
    }))
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

/// The spec's own rules, and the targets it names (which the operator must allow).
fn validate<S>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
) -> Result<(Arc<StoreTarget<S>>, Option<super::targets::SharedSink>), String> {
    pkg.spec.validate().map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    ctx.targets.source(&pkg.spec)?;
    ctx.targets.index(&pkg.spec, &ctx.index)?;
    Ok((ctx.targets.store(&pkg.spec)?, ctx.targets.sink(&pkg.spec)?))
}

/// The status of a reconcile that could not observe or plan.
fn failed_observation<'a, S>(
    ctx: &Context<S>,
    s: &'a Subject<'_>,
    problem: Problem,
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

/// The project's versions from the index and the package's releases from the store.
async fn observe_sources<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg_spec: &super::resource::PythonPackageSpec,
    spec: &crate::spec::PackageSpec,
    store: &S,
) -> Result<(Vec<IndexVersion>, Vec<Release>), Problem> {
    let index = ctx
        .targets
        .index(pkg_spec, &ctx.index)
        .map_err(Problem::Invalid)?;
    let offered = crate::source::offered(index, spec)
        .await
        .map_err(|e| match e.needs_a_fix() {
            true => Problem::Invalid(e.to_string()),
            false => Problem::Unavailable(e.to_string()),
        })?;
    let releases = observe_releases(store, spec).await?;
    Ok((offered.versions, releases))
}

async fn observe_releases<S: ReleaseStore>(
    store: &S,
    spec: &crate::spec::PackageSpec,
) -> Result<Vec<Release>, Problem> {
    store
        .releases(&spec.package)
        .await
        .map_err(|e| Problem::Unavailable(e.to_string()))
}

/// Deletes failed Jobs made for an older spec or `requested-at` (background: the object goes
/// at once), so that their steps are made again: that is how failures are retried. Returns
/// their names.
async fn delete_stale_failures(s: &Subject<'_>, listed: &[Job]) -> Result<Vec<String>, Error> {
    let wanted = super::jobs::made_for(s.pkg);
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

async fn delete_job(s: &Subject<'_>, name: &str) -> Result<(), Error> {
    match s
        .jobs
        .delete(name, &kube::api::DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the Jobs whose work is no longer wanted: made for another release than the
/// version's one draft (a discarded duplicate, a draft made again, a Job of an older
/// hermit-pex), or finished without their output reaching the release (it is made again).
/// Returns whether any was deleted.
async fn delete_unwanted_jobs<S>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    plan: &Plan,
    jobs: &mut Vec<ObservedJob>,
) -> Result<bool, Error> {
    let mut gone = Vec::new();
    for job in jobs.iter() {
        let Some(vp) = plan.versions.iter().find(|v| v.version == job.version) else {
            continue; // a version no longer wanted: its Jobs age out
        };
        let why = match (&job.release, &vp.release) {
            (None, _) => Some("made by an older hermit-pex".to_owned()),
            (Some(r), Some(keep)) if r != keep => Some(format!(
                "made for release {r}, the version's release is {keep}"
            )),
            _ if vp.waiting && job.state == WorkState::Succeeded && output_missing(vp, job) => {
                Some("it succeeded but its output is not in the release: made again".to_owned())
            }
            _ => None,
        };
        if let Some(why) = why {
            tracing::info!(package = %s.name(), version = %job.version, job = %job.name, %why, "deleting a Job");
            if job.state == WorkState::Succeeded {
                ctx.event(
                    s.pkg,
                    EventType::Warning,
                    "OutputMissing",
                    format!("{}: {why}", job.on()),
                )
                .await;
            }
            delete_job(s, &job.name).await?;
            gone.push(job.name.clone());
        }
    }
    jobs.retain(|j| !gone.contains(&j.name));
    Ok(!gone.is_empty())
}

/// Whether a finished Job's output is absent from the version's release.
fn output_missing(vp: &VersionPlan, job: &ObservedJob) -> bool {
    match job.kind {
        WorkKind::Lock => vp.status == crate::plan::VersionStatus::Locking,
        WorkKind::Build(p) => !vp.done.contains(&p) && !vp.missing.contains_key(&p),
    }
}

/// Deletes the drafts the plan discards: a second draft of a tag (GitHub keeps several), one
/// made for other settings, one beside a published release. Returns whether any was.
async fn discard_drafts<S: ReleaseStore>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    store: &S,
    plan: &Plan,
) -> bool {
    let mut discarded = Vec::new();
    let runner = runner(ctx, store);
    for (vp, step) in plan.steps() {
        let Step::Discard { release, why } = step else {
            continue;
        };
        let job = VersionJob::new(s.spec(), &IndexVersion::new(vp.version.clone()), vp.python);
        match runner.run(&job, step, &[]).await {
            Ok(_) => discarded.push(format!("{} ({release}): {why}", vp.version)),
            // Gone already, or refused: the next reconcile plans it again.
            Err(e) => {
                tracing::warn!(package = %s.name(), version = %vp.version, %release, error = %e, "cannot discard a draft")
            }
        }
    }
    if discarded.is_empty() {
        return false;
    }
    let note = format!(
        "discarded {} drafts: {}",
        discarded.len(),
        discarded.join("; ")
    );
    ctx.event(s.pkg, EventType::Normal, "DraftsConsolidated", note)
        .await;
    true
}

/// Publishes the drafts the plan found complete; whether any was. A publish that fails is
/// trouble for the status, and a warning event.
async fn publish_complete<S: ReleaseStore>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    store: &S,
    plan: &Plan,
    trouble: &mut Vec<Trouble>,
) -> bool {
    let mut published = Vec::new();
    let mut failed = Vec::new();
    for (vp, step) in plan.steps() {
        let Step::Publish { release } = step else {
            continue;
        };
        let job = VersionJob::new(s.spec(), &IndexVersion::new(vp.version.clone()), vp.python);
        let result = match tempfile::tempdir_in(&ctx.scratch).or_else(|_| tempfile::tempdir()) {
            Ok(dir) => {
                let runner = StepRunner {
                    scratch: dir.path(),
                    ..runner(ctx, store)
                };
                runner.run(&job, step, &[]).await
            }
            Err(e) => Err(StepError::Publish(PublishError::Record {
                asset: "(scratch)".into(),
                message: e.to_string(),
            })),
        };
        match result {
            Ok(_) => published.push(vp.version.to_string()),
            Err(e) => {
                use PublishError as P;
                let permanent =
                    matches!(e, StepError::Publish(P::Incomplete(_) | P::Record { .. }));
                tracing::warn!(package = %s.name(), version = %vp.version, %release, error = %e, permanent, "not published");
                failed.push(format!("{}: {e}", vp.version));
                trouble.push(Trouble {
                    version: vp.version.clone(),
                    record: FailureRecord {
                        version: vp.version.to_string(),
                        platform: None,
                        reason: "NotPublished".into(),
                        message: e.to_string(),
                    },
                    permanent,
                });
            }
        }
    }
    if !failed.is_empty() {
        let note = format!(
            "{} releases not published: {}",
            failed.len(),
            failed.join("; ")
        );
        ctx.event(s.pkg, EventType::Warning, "PublishFailed", note)
            .await;
    }
    if published.is_empty() {
        return false;
    }
    ctx.metrics.versions_released.inc_by(published.len() as u64);
    let note = format!("released {}", published.join(", "));
    ctx.event(s.pkg, EventType::Normal, "Released", note).await;
    true
}

/// One event for the failures this reconcile saw first (kube folds same-reason events).
async fn report_new_failures<S>(ctx: &Context<S>, pkg: &PythonPackage, jobs: &[ObservedJob]) {
    let mut failed: Vec<String> = Vec::new();
    for job in jobs.iter().filter(|j| j.new_failure) {
        if let WorkState::Failed { reason, message } = &job.state {
            ctx.metrics.build(&step_label(job.kind), "failed");
            tracing::warn!(package = %pkg.spec.package.package, version = %job.version, job = %job.name, %reason, %message, "a Job failed");
            failed.push(format!("{}: {reason}: {message}", job.on()));
        }
    }
    if !failed.is_empty() {
        failed.sort();
        let note = format!("{} builds failed: {}", failed.len(), failed.join("; "));
        ctx.event(pkg, EventType::Warning, "BuildFailed", note)
            .await;
    }
}

fn step_label(kind: WorkKind) -> String {
    match kind {
        WorkKind::Lock => "lock".into(),
        WorkKind::Build(p) => p.to_string(),
    }
}

/// What the Jobs are started from: the source's versions, the plan, and the platforms no
/// node can run.
struct ToStart<'a> {
    versions: &'a [IndexVersion],
    plan: &'a Plan,
    no_node: &'a [Platform],
}

/// The Job a plan step asks for, with the release it uploads to (`None`: the draft is made
/// first); `None` for steps no Job runs, and for steps whose pool has no node.
fn job_step(
    vp: &VersionPlan,
    step: &Step,
    lock_at: Option<Platform>,
    no_node: &[Platform],
) -> Option<(Option<ReleaseId>, JobStep)> {
    match step {
        Step::Create | Step::Lock { .. } if lock_at.is_some_and(|p| no_node.contains(&p)) => None,
        Step::Build { platform, .. } if no_node.contains(platform) => None,
        Step::Create => Some((
            None,
            JobStep::Lock {
                platforms: vp.build.clone(),
            },
        )),
        Step::Lock { release, platforms } => Some((
            Some(release.clone()),
            JobStep::Lock {
                platforms: platforms.clone(),
            },
        )),
        Step::Build { release, platform } => Some((
            Some(release.clone()),
            JobStep::Build {
                platform: *platform,
            },
        )),
        Step::Discard { .. } | Step::Publish { .. } => None,
    }
}

/// Starts the plan's lock and build Jobs, newest versions first, within the package's and the
/// controller's limits; a version without a draft gets its draft first (the Jobs only upload
/// to it). Returns whether work was left for lack of a slot.
async fn start_jobs<S: ReleaseStore>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    store: &S,
    todo: ToStart<'_>,
    jobs: &mut Vec<ObservedJob>,
    trouble: &mut Vec<Trouble>,
) -> Result<bool, Error> {
    let ToStart {
        versions,
        plan,
        no_node,
    } = todo;
    let running = jobs
        .iter()
        .filter(|j| j.state == WorkState::Running)
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
    let lock_at = ctx.table.lock_platform();
    let mut started = Vec::new();
    let mut left = false;
    for (vp, step) in plan.steps() {
        let Some((release, job_step)) = job_step(vp, step, lock_at, no_node) else {
            continue;
        };
        if started.len() >= budget {
            left = true;
            break;
        }
        let release = match release {
            Some(r) => r,
            None => match create_release(ctx, s, store, versions, vp).await {
                Ok(r) => r,
                Err(e) => {
                    trouble.push(Trouble {
                        version: vp.version.clone(),
                        record: FailureRecord {
                            version: vp.version.to_string(),
                            platform: None,
                            reason: "ReleaseNotCreated".into(),
                            message: e,
                        },
                        permanent: false,
                    });
                    continue;
                }
            },
        };
        let what = match &job_step {
            JobStep::Lock { .. } => "lock".to_owned(),
            JobStep::Build { platform } => platform.to_string(),
        };
        let git = versions
            .iter()
            .find(|iv| iv.version == vp.version)
            .and_then(|iv| iv.git.as_ref());
        let job = step_job(
            s.pkg,
            &JobFor {
                version: &vp.version,
                python: vp.python,
                release: &release,
                step: job_step.clone(),
                git,
            },
            &ctx.table,
            &ctx.jobs,
        )?;
        let name = job.metadata.name.clone().unwrap_or_default();
        // A finished Job of that name (a platform tried again) must go before a new one.
        if jobs.iter().any(|j| j.name == name) {
            delete_job(s, &name).await?;
        }
        s.jobs
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&job),
            )
            .await?;
        tracing::info!(package = %s.name(), version = %vp.version, step = %what, %release, job = %name, "started a Job");
        ctx.metrics.build(&what, "started");
        if let Some(slots) = slots.as_mut() {
            slots.took(s.ns.clone(), name.clone());
        }
        jobs.retain(|j| j.name != name);
        jobs.push(ObservedJob {
            name,
            version: vp.version.clone(),
            kind: match job_step {
                JobStep::Lock { .. } => WorkKind::Lock,
                JobStep::Build { platform } => WorkKind::Build(platform),
            },
            release: Some(release),
            state: WorkState::Running,
            new_failure: false,
        });
        started.push(format!("{} {what}", vp.version));
    }
    if !started.is_empty() {
        let note = format!("started {} builds: {}", started.len(), started.join(", "));
        ctx.event(s.pkg, EventType::Normal, "BuildStarted", note)
            .await;
    }
    if left {
        tracing::info!(package = %s.name(), "more Jobs wait for a free slot");
    }
    Ok(left)
}

/// Makes the version's draft: the one release its Jobs will upload to.
async fn create_release<S: ReleaseStore>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    store: &S,
    versions: &[IndexVersion],
    vp: &VersionPlan,
) -> Result<ReleaseId, String> {
    let iv = versions
        .iter()
        .find(|iv| iv.version == vp.version)
        .ok_or_else(|| format!("{} is no longer a version of the source", vp.version))?;
    let job = VersionJob::new(s.spec(), iv, vp.python);
    match runner(ctx, store).run(&job, &Step::Create, &[]).await {
        Ok(Done::Created(r)) => Ok(r.id),
        Ok(_) => unreachable!("a create step creates"),
        Err(e) => {
            tracing::warn!(package = %s.name(), version = %vp.version, error = %e, "cannot create the draft release");
            Err(format!("cannot create the release of {}: {e}", vp.version))
        }
    }
}

/// The runner of the release steps: the controller builds nothing in its own process.
fn runner<'a, S>(ctx: &'a Context<S>, store: &'a S) -> StepRunner<'a, S> {
    StepRunner {
        store,
        settings: None,
        scratch: &ctx.scratch,
        say: &|line| tracing::debug!("{line}"),
    }
}

/// Platforms with work to run that cannot run here: left out of the platform table, or no
/// Ready, schedulable node for their pool (a lock runs on the table's lock platform). Said in
/// the status, not left Pending. Without permission to list nodes only the table is checked.
async fn unschedulable_platforms<S>(ctx: &Context<S>, plan: &Plan) -> Result<Vec<Platform>, Error> {
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
        Err(e) => return Err(e.into()),
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
            .await?;
    }
    Ok(())
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
    .await?;
    Ok(())
}
