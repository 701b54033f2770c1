//! What the package's Jobs and the cluster's Nodes say, read from the objects alone.

use std::collections::HashMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use pep440_rs::Version;

use super::jobs::{FAILURE, PLATFORM_LABEL, Pool, VERSION_ANNOTATION, VERSION_LABEL};
use super::status::JobState;
use crate::names::Platform;

/// A (version, platform)'s Job: its name and what it says.
pub struct ObservedJob {
    pub name: String,
    pub state: JobState,
    /// A failure seen for the first time in this reconcile (not yet recorded on the Job).
    pub new_failure: bool,
}

/// The name of another resource that controls one of these Jobs.
pub fn foreign_owner(jobs: &[Job], uid: Option<&str>) -> Option<String> {
    jobs.iter()
        .filter_map(|job| {
            job.owner_references()
                .iter()
                .find(|o| o.controller == Some(true))
        })
        .find(|o| Some(o.uid.as_str()) != uid)
        .map(|o| o.name.clone())
}

/// A Ready node without `unschedulable` whose labels include the pool's nodeSelector. Taints
/// against the pool's tolerations are not checked (the scheduler still decides).
pub fn schedulable_for(node: &Node, pool: &Pool) -> bool {
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

/// The Job of each (version, platform) from the package's Jobs. The exact version is in an
/// annotation (a label value cannot hold every PEP 440 version); a failure recorded on the Job
/// is read back.
pub fn observe_jobs<'a>(
    jobs: impl Iterator<Item = &'a Job>,
) -> HashMap<(Version, Platform), ObservedJob> {
    jobs.filter_map(|job| {
        let labels = job.labels();
        let annotations = job.annotations();
        let version: Version = annotations
            .get(VERSION_ANNOTATION)
            .or_else(|| labels.get(VERSION_LABEL))?
            .parse()
            .ok()?;
        let platform: Platform = labels.get(PLATFORM_LABEL)?.parse().ok()?;
        let mut state = job_state(job);
        let recorded = annotations
            .get(FAILURE)
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok());
        let new_failure = matches!(state, JobState::Failed { .. }) && recorded.is_none();
        if let (JobState::Failed { .. }, Some(r)) = (&state, recorded) {
            state = JobState::Failed {
                reason: r["reason"].as_str().unwrap_or("Failed").to_owned(),
                message: r["message"].as_str().unwrap_or_default().to_owned(),
            };
        }
        let observed = ObservedJob {
            name: job.name_any(),
            state,
            new_failure,
        };
        Some(((version, platform), observed))
    })
    .collect()
}

pub fn job_state(job: &Job) -> JobState {
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
