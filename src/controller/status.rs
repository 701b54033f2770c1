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
use crate::plan::{Failure, Plan, VersionStatus, WorkState};

/// At most this many failure records, newest versions first.
pub const MAX_FAILURES: usize = 20;

/// Something this reconcile met that the plan does not say: a publish that failed, a version
/// that cannot be listed, a Job whose output went missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub failure: Failure,
    /// No retry helps (only a change to the resource or the release does): the version stops
    /// counting as progressing.
    pub permanent: bool,
}

impl From<&Failure> for FailureRecord {
    fn from(f: &Failure) -> Self {
        FailureRecord {
            version: f.version.to_string(),
            platform: f.platform.map(|p| p.to_string()),
            reason: f.reason.clone(),
            message: f.message.clone(),
        }
    }
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
pub enum Unobserved {
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
    /// Jobs of the package running now.
    pub running: u32,
    /// Platforms with builds to run but no Ready, schedulable node for their pool.
    pub no_node: &'a [Platform],
    pub trouble: &'a [Trouble],
    pub suspended: bool,
    /// Why observing or planning failed, when it did.
    pub error: Option<Unobserved>,
    pub manifest: ManifestReport,
    /// The `requested-at` annotation acted on.
    pub requested_at: Option<String>,
    pub previous: Option<&'a PythonPackageStatus>,
    pub now: Time,
}

/// A failure record and whether it counts as a failure (a platform that cannot exist of a
/// version released for the others is said, not counted).
struct Record {
    version: Version,
    record: FailureRecord,
    counts: bool,
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
        requested_at: o.requested_at.clone(),
        ..PythonPackageStatus::default()
    };
    let mut records = o.plan.map(plan_records).unwrap_or_default();
    status.building = o.running;
    if let Some(plan) = o.plan {
        status.desired = plan.versions.len() as u32;
        status.released = plan.count(VersionStatus::Released) as u32;
        status.latest = plan
            .versions
            .iter()
            .find(|v| v.status == VersionStatus::Released)
            .map(|v| v.version.to_string());
        status.progress = Some(format!("{}/{}", status.released, status.desired));
    }
    // One record per platform, whatever the number of versions waiting for it.
    let newest = o
        .plan
        .and_then(|p| p.versions.first())
        .map(|v| v.version.clone());
    for platform in o.no_node {
        records.push(Record {
            version: newest.clone().unwrap_or_else(|| Version::new([0])),
            record: FailureRecord {
                version: "*".into(),
                platform: Some(platform.to_string()),
                reason: "NoNodeForPlatform".into(),
                message: format!(
                    "no Ready, schedulable node matches the {platform} pool of the platform table (or the table has no {platform} entry)"
                ),
            },
            counts: true,
        });
    }
    for t in o.trouble {
        records.push(Record {
            version: t.failure.version.clone(),
            record: FailureRecord::from(&t.failure),
            counts: true,
        });
    }
    status.failed = records.iter().filter(|r| r.counts).count() as u32;
    records.sort_by(|a, b| {
        b.version
            .cmp(&a.version)
            .then_with(|| a.record.platform.cmp(&b.record.platform))
    });
    status.failures = records
        .into_iter()
        .take(MAX_FAILURES)
        .map(|r| r.record)
        .collect();
    let pending = o.plan.is_some_and(|p| progressing(p, o.no_node, o.trouble)) || o.running > 0;

    let mut conditions = Vec::new();
    if let (Some(Unobserved::Unavailable(_)), Some(previous)) = (&o.error, o.previous) {
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
            Unobserved::Invalid(e) => ("False", "Invalid", e.clone()),
            Unobserved::Unavailable(e) => ("False", "ObserveFailed", e.clone()),
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
                "{} of {} versions released; {} failed (see failures)",
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
    let invalid = matches!(o.error, Some(Unobserved::Invalid(_)));
    if invalid || (o.error.is_none() && status.failed > 0 && !pending && !o.suspended) {
        conditions.push(condition(o, "Stalled", "True", reason, &message));
    }
    status.conditions = conditions;
    status
}

/// The plan's failure records: versions not built (`Incompatible`), what blocks a version,
/// and the platforms that cannot exist (counted only when they hold the version back).
fn plan_records(plan: &Plan) -> Vec<Record> {
    let mut records = Vec::new();
    for vp in &plan.versions {
        let record = |platform: Option<Platform>, reason: &str, message: &str| FailureRecord {
            version: vp.version.to_string(),
            platform: platform.map(|p| p.to_string()),
            reason: reason.into(),
            message: message.into(),
        };
        if vp.status == VersionStatus::Incompatible {
            records.push(Record {
                version: vp.version.clone(),
                record: record(None, "Incompatible", vp.note.as_deref().unwrap_or_default()),
                counts: true,
            });
        }
        for b in &vp.blockers {
            records.push(Record {
                version: vp.version.clone(),
                record: record(b.platform, &b.reason, &b.message),
                counts: true,
            });
        }
        if let Some(moved) = &vp.moved {
            records.push(Record {
                version: vp.version.clone(),
                record: record(None, "TagMoved", moved),
                counts: false,
            });
        }
        let held_back = vp.blockers.iter().any(|b| b.reason == "NoWheelForPlatform");
        if !held_back {
            for (p, why) in &vp.missing {
                records.push(Record {
                    version: vp.version.clone(),
                    record: record(Some(*p), "NoWheelForPlatform", why),
                    counts: false,
                });
            }
        }
    }
    records
}

/// Work that can still make progress: a step to take (not a build waiting for a node that is
/// not there, not a version stuck for good), or a step's output to wait for.
fn progressing(plan: &Plan, no_node: &[Platform], trouble: &[Trouble]) -> bool {
    plan.versions.iter().any(|vp| {
        let stuck = trouble
            .iter()
            .any(|t| t.permanent && t.failure.version == vp.version);
        !stuck
            && (vp.waiting
                || vp.steps.iter().any(|s| match s {
                    crate::plan::Step::Build { platform, .. } => !no_node.contains(platform),
                    _ => true,
                }))
    })
}

/// A failed Job's state told by its pod: `OOMKilled`, or the exit code with the end of the log
/// (build containers report their log tail as the termination message). A deadline stays a
/// deadline: the pod was stopped, its exit says nothing.
pub fn pod_failure(
    pod: &k8s_openapi::api::core::v1::Pod,
    job_reason: &str,
    job_message: &str,
) -> Option<WorkState> {
    if job_reason == "DeadlineExceeded" {
        return None;
    }
    let terminated_of = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
        c.state
            .as_ref()
            .and_then(|s| s.terminated.clone())
            .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.clone()))
    };
    // A flavour's init container that could not install the build packages: the build never
    // started.
    if let Some((name, t)) = pod
        .status
        .as_ref()?
        .init_container_statuses
        .iter()
        .flatten()
        .find_map(|c| terminated_of(c).map(|t| (c.name.clone(), t)))
        .filter(|(_, t)| t.exit_code != 0)
    {
        let tail = t
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(last_chars)
            .unwrap_or_default();
        return Some(WorkState::Failed {
            reason: "InstallPackagesFailed".into(),
            message: format!(
                "the init container {name} could not install the flavour's build packages \
                 (exit {}): {tail}",
                t.exit_code
            ),
        });
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
        Some("OOMKilled") => WorkState::Failed {
            reason: "OOMKilled".into(),
            message: "the build ran out of memory: raise the builders' memory limit \
                      (--builder-resources, Helm value builder.resources)"
                .into(),
        },
        _ => WorkState::Failed {
            // A step says why it failed (`... FAILED (MissingBuildPackages): ...`): that
            // reason, else the exit code.
            reason: tail.as_deref().and_then(step_reason).map_or_else(
                || format!("ExitCode{}", terminated.exit_code),
                str::to_owned,
            ),
            message: tail.unwrap_or_else(|| job_message.to_owned()),
        },
    })
}

/// The reason of the last `FAILED (<Reason>):` line a step printed (a word of letters).
fn step_reason(log: &str) -> Option<&str> {
    log.lines().rev().find_map(|l| {
        let (_, rest) = l.split_once(": FAILED (")?;
        let (reason, _) = rest.split_once("):")?;
        (!reason.is_empty()
            && reason.len() <= 64
            && reason.bytes().all(|b| b.is_ascii_alphabetic()))
        .then_some(reason)
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
