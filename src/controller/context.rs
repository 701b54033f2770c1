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
        let event = event(type_, reason, note);
        if let Err(e) = recorder.publish(&event, &pkg.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "cannot send an event");
        }
    }
}

/// The API's bounds: a note of at most 1 kB, an action of at most 128 bytes.
const NOTE_MAX: usize = 1000;
const ACTION_MAX: usize = 128;

/// The event for one decision. kube's recorder folds the events of one (type, reason, action)
/// within six minutes into a series that keeps the first note and only counts the others, so
/// "released 6.1" would hide "released 6.0". Each distinct note therefore gets its own action
/// (the same note again still folds into one event with a count).
pub fn event(type_: EventType, reason: &str, note: String) -> Event {
    let action = action(reason, &note);
    Event {
        type_,
        reason: reason.into(),
        note: Some(cut(note, NOTE_MAX, "...")),
        action,
        secondary: None,
    }
}

/// The note itself when it fits; else its start and a digest of the whole, so two long notes
/// that begin alike stay apart.
fn action(reason: &str, note: &str) -> String {
    if note.is_empty() {
        return reason.to_owned();
    }
    if note.len() <= ACTION_MAX {
        return note.to_owned();
    }
    let digest = crate::digest::sha256_hex(note);
    let tail = format!(" #{}", &digest[..16]);
    cut(note.to_owned(), ACTION_MAX - tail.len(), "") + &tail
}

/// `text` cut to at most `max` bytes (on a character boundary, `ellipsis` included).
fn cut(mut text: String, max: usize, ellipsis: &str) -> String {
    if text.len() <= max {
        return text;
    }
    let mut at = max - ellipsis.len();
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    text.push_str(ellipsis);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kube's recorder keys an event on, besides the reporter and the object (the same
    /// for every event of one package): type, reason, action.
    fn key(e: &Event) -> (EventType, String, String) {
        (e.type_, e.reason.clone(), e.action.clone())
    }

    #[test]
    fn each_distinct_note_is_its_own_event_and_the_same_note_folds() {
        let n = |note: &str| event(EventType::Normal, "Released", note.to_owned());
        assert_ne!(key(&n("released 6.1")), key(&n("released 6.0")));
        assert_eq!(key(&n("released 6.1")), key(&n("released 6.1")));
        assert_ne!(
            key(&n("released 6.1")),
            key(&event(
                EventType::Warning,
                "PublishFailed",
                "released 6.1".into()
            )),
        );
        assert_eq!(n("").action, "Released", "an action is never empty");
    }

    #[test]
    fn long_notes_that_begin_alike_stay_apart_within_the_apis_bounds() {
        let start = "é".repeat(100); // 200 bytes: cuts must land on character boundaries
        let a = event(EventType::Warning, "BuildFailed", format!("{start} a"));
        let b = event(EventType::Warning, "BuildFailed", format!("{start} b"));
        assert_ne!(key(&a), key(&b));
        assert!(a.action.len() <= ACTION_MAX && b.action.len() <= ACTION_MAX);
        assert!(a.action.starts_with("éé"), "{}", a.action);
        let long = event(EventType::Warning, "BuildFailed", "x".repeat(5000));
        let note = long.note.unwrap();
        assert!(
            note.len() <= NOTE_MAX && note.ends_with("..."),
            "{}",
            note.len()
        );
    }
}
