//! What the package's Jobs and the cluster's Nodes say, read from the objects alone.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use pep440_rs::Version;

use super::jobs::{
    FAILURE, PLATFORM_LABEL, Pool, RELEASE_ANNOTATION, STEP_LABEL, VERSION_ANNOTATION,
    VERSION_LABEL,
};
use crate::plan::{Work, WorkKind, WorkState};
use crate::release::ReleaseId;

/// One of the package's Jobs: its name and what it says.
#[derive(Debug, Clone)]
pub struct ObservedJob {
    pub name: String,
    pub version: Version,
    pub kind: WorkKind,
    /// The release it writes to; `None` for a Job made by an older hermit-pex.
    pub release: Option<ReleaseId>,
    pub state: WorkState,
    /// A failure seen for the first time in this reconcile (not yet recorded on the Job).
    pub new_failure: bool,
}

impl ObservedJob {
    /// What the planner reads of it (a Job made by an older hermit-pex is none).
    pub fn work(&self) -> Option<Work> {
        Some(Work {
            version: self.version.clone(),
            release: self.release.clone()?,
            kind: self.kind,
            state: self.state.clone(),
        })
    }

    pub fn on(&self) -> String {
        match self.kind {
            WorkKind::Lock => format!("{} lock", self.version),
            WorkKind::Build(p) => format!("{} {p}", self.version),
        }
    }
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

/// What the package's Jobs are for and say. The exact version is in an annotation (a label
/// value cannot hold every PEP 440 version); a failure recorded on the Job is read back.
pub fn observe_jobs<'a>(jobs: impl Iterator<Item = &'a Job>) -> Vec<ObservedJob> {
    jobs.filter_map(|job| {
        let labels = job.labels();
        let annotations = job.annotations();
        let version: Version = annotations
            .get(VERSION_ANNOTATION)
            .or_else(|| labels.get(VERSION_LABEL))?
            .parse()
            .ok()?;
        let kind = match (
            labels.get(STEP_LABEL).map(String::as_str),
            labels.get(PLATFORM_LABEL),
        ) {
            (Some("lock"), _) => WorkKind::Lock,
            (_, Some(p)) => WorkKind::Build(p.parse().ok()?),
            _ => return None,
        };
        let mut state = job_state(job);
        let recorded = annotations
            .get(FAILURE)
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok());
        let new_failure = matches!(state, WorkState::Failed { .. }) && recorded.is_none();
        if let (WorkState::Failed { .. }, Some(r)) = (&state, recorded) {
            state = WorkState::Failed {
                reason: r["reason"].as_str().unwrap_or("Failed").to_owned(),
                message: r["message"].as_str().unwrap_or_default().to_owned(),
            };
        }
        Some(ObservedJob {
            name: job.name_any(),
            version,
            kind,
            release: annotations.get(RELEASE_ANNOTATION).cloned().map(ReleaseId),
            state,
            new_failure,
        })
    })
    .collect()
}

pub fn job_state(job: &Job) -> WorkState {
    let Some(status) = &job.status else {
        return WorkState::Running;
    };
    if status.succeeded.unwrap_or(0) > 0 {
        return WorkState::Succeeded;
    }
    let failed = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    match failed {
        Some(c) => WorkState::Failed {
            reason: c.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: c.message.clone().unwrap_or_default(),
        },
        None => WorkState::Running,
    }
}
