//! The controller-wide bound on running build Jobs: those its Job watch sees running, plus
//! those it created that the watch has not shown yet. Taking slots holds a lock until the
//! caller is done creating, so two reconciles cannot both take the last one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tokio::sync::MutexGuard;

use super::observe::job_state;
use crate::plan::WorkState;

pub struct GlobalLimit {
    max: usize,
    view: Store<Job>,
    /// (namespace, name) of Jobs created and not yet in the view, with when.
    unseen: tokio::sync::Mutex<HashMap<(String, String), Instant>>,
}

/// Slots held while Jobs are created: [`Slots::free`] of them; each Job made is [`Slots::took`].
pub struct Slots<'a> {
    pub free: usize,
    /// Jobs running or made, across the controller.
    pub running: usize,
    unseen: MutexGuard<'a, HashMap<(String, String), Instant>>,
}

impl GlobalLimit {
    /// `view`: a reflector of every Job the controller manages.
    pub fn new(max: usize, view: Store<Job>) -> Self {
        Self {
            max,
            view,
            unseen: tokio::sync::Mutex::default(),
        }
    }

    /// Waits for the other reconciles' creations, then counts what is running.
    pub async fn slots(&self) -> Slots<'_> {
        let mut unseen = self.unseen.lock().await;
        let jobs = self.view.state();
        // A Job the view shows, or made long ago (deleted since), is no longer unseen.
        unseen.retain(|(ns, name), created| {
            created.elapsed() < Duration::from_secs(120)
                && !jobs
                    .iter()
                    .any(|j| j.metadata.namespace.as_ref() == Some(ns) && &j.name_any() == name)
        });
        let running = jobs
            .iter()
            .filter(|j| job_state(j) == WorkState::Running)
            .count()
            + unseen.len();
        Slots {
            free: self.max.saturating_sub(running),
            running,
            unseen,
        }
    }
}

impl Slots<'_> {
    pub fn took(&mut self, namespace: String, name: String) {
        self.unseen.insert((namespace, name), Instant::now());
    }
}
