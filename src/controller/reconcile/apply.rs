//! The apply phase of a reconcile: Jobs no longer wanted are deleted; extra drafts discarded
//! and complete drafts published (the controller is the only writer of releases: it makes a
//! version's one draft before its first Job and hands the Jobs its id); lock and build Jobs
//! created, newest versions first, within limits. The release steps run through the same
//! [`StepRunner`] as `sync`'s.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;

use super::observe::delete_job;
use super::{Error, Subject};
use crate::build::VersionJob;
use crate::controller::context::{Context, MANAGER};
use crate::controller::jobs::{JobFor, JobStep, step_job};
use crate::controller::observe::ObservedJob;
use crate::controller::resource::PythonPackage;
use crate::controller::status::Trouble;
use crate::names::Platform;
use crate::plan::{Failure, Plan, Step, VersionPlan, WorkKind, WorkState};
use crate::pypi::IndexVersion;
use crate::release::{ReleaseId, ReleaseStore};
use crate::step::{Done, PublishError, StepError, StepRunner};

/// Deletes the Jobs no longer wanted, discards the drafts the plan discards and publishes the
/// complete ones. Says what changed: the plan is then made again, once (after listing the
/// releases again when they changed).
pub(super) async fn settle<S: ReleaseStore>(
    ctx: &Context<S>,
    s: &Subject<'_>,
    store: &S,
    plan: &Plan,
    world: &mut super::observe::World,
    trouble: &mut Vec<Trouble>,
) -> Result<Settled, Error> {
    let jobs = delete_unwanted_jobs(ctx, s, plan, &mut world.jobs).await?;
    let discarded = discard_drafts(ctx, s, store, plan).await;
    let published = publish_complete(ctx, s, store, plan, trouble).await;
    Ok(Settled {
        jobs,
        releases: discarded || published,
    })
}

/// What settling changed.
pub(super) struct Settled {
    pub jobs: bool,
    pub releases: bool,
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
                    failure: Failure::new(&vp.version, None, "NotPublished", e.to_string()),
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
pub(super) async fn report_new_failures<S>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    jobs: &[ObservedJob],
) {
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
pub(super) struct ToStart<'a> {
    pub versions: &'a [IndexVersion],
    pub plan: &'a Plan,
    pub no_node: &'a [Platform],
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
pub(super) async fn start_jobs<S: ReleaseStore>(
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
                        failure: Failure::new(&vp.version, None, "ReleaseNotCreated", e),
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
            .await
            .map_err(|source| Error::ApplyJob {
                name: name.clone(),
                source,
            })?;
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
        slots: None,
        say: &|line| tracing::debug!("{line}"),
    }
}
