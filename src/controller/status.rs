//! A `PythonPackage`'s status from what was observed, as a pure function: counts, the newest
//! release, bounded failure records, and `Ready` / `Reconciling` / `Stalled` conditions with
//! kstatus semantics (Ready always present; Reconciling and Stalled only while true; every
//! condition carries the generation it was computed for). A condition keeps its transition
//! time while its status holds, so an unchanged state gives an identical status and the
//! controller writes nothing (Argo CD refreshes on every change).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use pep440_rs::Version;

use super::resource::{FailureRecord, PythonPackageStatus};
use crate::names::Platform;
use crate::plan::{Plan, VersionStatus};

/// At most this many failure records, newest versions first.
pub const MAX_FAILURES: usize = 20;

/// What the build Jobs of a (version, platform) say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    /// Out of retries: the pod's reason (exit code, OOMKilled, DeadlineExceeded) and message.
    Failed {
        reason: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobObservation {
    pub version: Version,
    pub platform: Platform,
    pub state: JobState,
}

/// What committing the manifest came to in this reconcile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ManifestReport {
    /// The commit made, when one was.
    pub commit: Option<String>,
    /// Versions complete at the last commit attempt that succeeded.
    pub listed: Option<u32>,
    /// Why the manifest was not committed.
    pub error: Option<String>,
}

/// Why a package could not be observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Only a change to the resource helps (a bad spec, a refused target, no such project):
    /// `Stalled`.
    Invalid(String),
    /// The index, the release store or the API failed; retried, and the counts from before
    /// are kept meanwhile: not `Stalled`.
    Unavailable(String),
}

/// Everything the status is computed from.
pub struct Observed<'a> {
    pub generation: i64,
    /// `None` when observing failed (index unreachable, project missing, store refused).
    pub plan: Option<&'a Plan>,
    pub jobs: &'a [JobObservation],
    /// Platforms with builds to run but no Ready, schedulable node for their pool.
    pub no_node: &'a [Platform],
    pub suspended: bool,
    /// Why observing or planning failed, when it did.
    pub error: Option<Problem>,
    pub manifest: ManifestReport,
    pub previous: Option<&'a PythonPackageStatus>,
    pub now: Time,
}

pub fn compute(o: &Observed<'_>) -> PythonPackageStatus {
    let mut status = PythonPackageStatus {
        observed_generation: Some(o.generation),
        last_commit: o
            .manifest
            .commit
            .clone()
            .or_else(|| o.previous.and_then(|p| p.last_commit.clone())),
        // A failed commit, or a reconcile that never got to it, forgets the count, so that the
        // next reconcile commits again even when nothing else changed.
        listed: match (&o.manifest.error, o.plan) {
            (Some(_), _) | (None, None) => None,
            (None, Some(_)) => o
                .manifest
                .listed
                .or_else(|| o.previous.and_then(|p| p.listed)),
        },
        ..PythonPackageStatus::default()
    };
    let mut failures: Vec<(Version, FailureRecord)> = Vec::new();
    if let Some(plan) = o.plan {
        status.desired = plan.versions.len() as u32;
        status.released = plan.count(VersionStatus::Released) as u32;
        status.latest = plan
            .versions
            .iter()
            .find(|v| v.status == VersionStatus::Released)
            .map(|v| v.version.to_string());
        status.progress = Some(format!("{}/{}", status.released, status.desired));
        for vp in plan
            .versions
            .iter()
            .filter(|v| v.status == VersionStatus::Incompatible)
        {
            let record = FailureRecord {
                version: vp.version.to_string(),
                platform: None,
                reason: "Incompatible".into(),
                message: vp.note.clone().unwrap_or_default(),
            };
            failures.push((vp.version.clone(), record));
        }
    }
    status.building = o
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Running)
        .count() as u32;
    for j in o.jobs {
        if let JobState::Failed { reason, message } = &j.state {
            let record = FailureRecord {
                version: j.version.to_string(),
                platform: Some(j.platform.to_string()),
                reason: reason.clone(),
                message: message.clone(),
            };
            failures.push((j.version.clone(), record));
        }
    }
    // One record per platform, whatever the number of versions waiting for it.
    let newest = o
        .plan
        .and_then(|p| p.versions.first())
        .map(|v| v.version.clone());
    for platform in o.no_node {
        let record = FailureRecord {
            version: "*".into(),
            platform: Some(platform.to_string()),
            reason: "NoNodeForPlatform".into(),
            message: format!(
                "no Ready, schedulable node matches the {platform} pool of the platform table (or the table has no {platform} entry)"
            ),
        };
        failures.push((newest.clone().unwrap_or_else(|| Version::new([0])), record));
    }
    status.failed = failures.len() as u32;
    failures.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.platform.cmp(&b.1.platform)));
    status.failures = failures
        .into_iter()
        .take(MAX_FAILURES)
        .map(|(_, f)| f)
        .collect();

    let failed_keys: Vec<(&Version, Platform)> = o
        .jobs
        .iter()
        .filter(|j| matches!(j.state, JobState::Failed { .. }))
        .map(|j| (&j.version, j.platform))
        .collect();
    // Work that can still make progress: builds running, builds planned and not given up on,
    // or a release to publish none of whose platforms failed.
    let pending = o.plan.is_some_and(|p| {
        p.actions.iter().any(|a| match a {
            crate::plan::Action::Build {
                version, platform, ..
            } => !failed_keys.contains(&(version, *platform)) && !o.no_node.contains(platform),
            crate::plan::Action::PublishRelease { version } => {
                !failed_keys.iter().any(|(v, _)| *v == version)
            }
            crate::plan::Action::CreateRelease { .. }
            | crate::plan::Action::WriteManifest { .. } => false,
        })
    }) || status.building > 0;

    let mut conditions = Vec::new();
    if let (Some(Problem::Unavailable(_)), Some(previous)) = (&o.error, o.previous) {
        // What was known stays known while the index or the store is away.
        status.desired = previous.desired;
        status.released = previous.released;
        status.failed = previous.failed;
        status.latest = previous.latest.clone();
        status.progress = previous.progress.clone();
        status.failures = previous.failures.clone();
    }
    let (ready, reason, message) = if let Some(e) = &o.error {
        match e {
            Problem::Invalid(e) => ("False", "Invalid", e.clone()),
            Problem::Unavailable(e) => ("False", "ObserveFailed", e.clone()),
        }
    } else if o.suspended {
        (
            "False",
            "Suspended",
            "suspend is true: no new work is started".to_owned(),
        )
    } else if !o.no_node.is_empty() && !pending {
        let platforms: Vec<String> = o.no_node.iter().map(ToString::to_string).collect();
        (
            "False",
            "NoNodeForPlatform",
            format!(
                "no node can build {}: add a node pool, or cross: true in the platform table",
                platforms.join(", ")
            ),
        )
    } else if let Some(e) = &o.manifest.error {
        (
            "False",
            "ManifestNotCommitted",
            format!("the manifest was not committed (retried in 5 minutes): {e}"),
        )
    } else if status.failed > 0 && !pending {
        (
            "False",
            "BuildsFailed",
            format!(
                "{} of {} versions released; {} builds failed",
                status.released, status.desired, status.failed
            ),
        )
    } else if pending {
        (
            "False",
            "Progressing",
            format!(
                "{} of {} versions released, {} building",
                status.released, status.desired, status.building
            ),
        )
    } else {
        (
            "True",
            "Released",
            format!("all {} versions released", status.desired),
        )
    };
    conditions.push(condition(o, "Ready", ready, reason, &message));
    if pending && !o.suspended && o.error.is_none() {
        conditions.push(condition(o, "Reconciling", "True", "Progressing", &message));
    }
    let invalid = matches!(o.error, Some(Problem::Invalid(_)));
    if invalid || (o.error.is_none() && status.failed > 0 && !pending && !o.suspended) {
        conditions.push(condition(o, "Stalled", "True", reason, &message));
    }
    status.conditions = conditions;
    status
}

/// A failed Job's state told by its pod: `OOMKilled`, or the exit code with the end of the log
/// (build containers report their log tail as the termination message). A deadline stays a
/// deadline: the pod was stopped, its exit says nothing.
pub fn pod_failure(
    pod: &k8s_openapi::api::core::v1::Pod,
    job_reason: &str,
    job_message: &str,
) -> Option<JobState> {
    if job_reason == "DeadlineExceeded" {
        return None;
    }
    let terminated = pod
        .status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.terminated.clone())
                .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.clone()))
        })?;
    if terminated.exit_code == 0 {
        return None;
    }
    let tail = terminated
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(last_chars);
    Some(match terminated.reason.as_deref() {
        Some("OOMKilled") => JobState::Failed {
            reason: "OOMKilled".into(),
            message: "the build ran out of memory: raise the builders' memory limit \
                      (--builder-resources, Helm value builder.resources)"
                .into(),
        },
        _ => JobState::Failed {
            reason: format!("ExitCode{}", terminated.exit_code),
            message: tail.unwrap_or_else(|| job_message.to_owned()),
        },
    })
}

/// The last 400 characters: where a build log says what went wrong.
fn last_chars(s: &str) -> String {
    let count = s.chars().count();
    if count <= 400 {
        return s.to_owned();
    }
    let tail: String = s.chars().skip(count - 400).collect();
    format!("...{tail}")
}

/// A condition that keeps its previous transition time while its status is unchanged.
fn condition(
    o: &Observed<'_>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Condition {
    let previous = o
        .previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_));
    let last_transition_time = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => o.now.clone(),
    };
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(o.generation),
        last_transition_time,
    }
}

#[cfg(test)]
mod tests;
