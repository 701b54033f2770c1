//! What every reconcile shares: the API client, the index, where releases and manifests go,
//! how Jobs are made and bounded, events and metrics. The step modules take it; only `run`
//! builds it.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use super::jobs::{JobSettings, PlatformTable};
use super::limit::GlobalLimit;
use super::metrics::Metrics;
use super::resource::PythonPackage;
use super::targets::Targets;
use crate::pypi::IndexClient;

/// The field manager of everything the controller applies.
pub const MANAGER: &str = "hermit-pex";

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
    /// Scratch space for publishing (reading the platforms' records).
    pub scratch: std::path::PathBuf,
    /// Every PythonPackage the controller sees (the watch's own cache): a second resource for a
    /// package is told apart from the first. `None`: not checked.
    pub packages: Option<kube::runtime::reflector::Store<PythonPackage>>,
}

impl<S> Context<S> {
    /// Sends an event about `pkg`; a refused event is logged, never fatal.
    pub async fn event(&self, pkg: &PythonPackage, type_: EventType, reason: &str, note: String) {
        let Some(recorder) = &self.recorder else {
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
}
