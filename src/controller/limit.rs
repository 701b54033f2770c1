//! The controller-wide bound on running build Jobs: those its Job watch sees running, plus
//! those it created that the watch has not shown yet. Taking slots holds a lock until the
//! caller is done creating, so two reconciles cannot both take the last one.
//!
//! A package that found no free slot waits in a queue here; when the Job watch shows a Job
//! finished or gone, the oldest waiters (as many as there are free slots) are woken at once
//! instead of on their fallback requeue a minute later.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio::sync::{MutexGuard, Notify};

use super::observe::job_state;
use super::resource::PythonPackage;
use crate::plan::WorkState;

/// One limit shared by the reconciles, the Job watch and the waker (clones share it).
#[derive(Clone)]
pub struct GlobalLimit {
    inner: Arc<Inner>,
}

struct Inner {
    max: usize,
    view: Store<Job>,
    /// (namespace, name) of Jobs created and not yet in the view, with when.
    unseen: tokio::sync::Mutex<HashMap<(String, String), Instant>>,
    /// Packages that found no free slot, oldest first, each once.
    waiting: std::sync::Mutex<VecDeque<ObjectRef<PythonPackage>>>,
    /// Rung when a Job finished or went: the waker counts the free slots.
    freed: Notify,
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
            inner: Arc::new(Inner {
                max,
                view,
                unseen: tokio::sync::Mutex::default(),
                waiting: std::sync::Mutex::default(),
                freed: Notify::new(),
            }),
        }
    }

    /// Waits for the other reconciles' creations, then counts what is running.
    pub async fn slots(&self) -> Slots<'_> {
        let mut unseen = self.inner.unseen.lock().await;
        let jobs = self.inner.view.state();
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
            free: self.inner.max.saturating_sub(running),
            running,
            unseen,
        }
    }

    /// Says whether `pkg` left work undone for lack of a slot (a reconcile calls it each time,
    /// with its `waiting_for_slots`). A waiting package keeps its place in the queue; one that
    /// no longer waits leaves it.
    pub fn set_waiting(&self, pkg: ObjectRef<PythonPackage>, waiting: bool) {
        let mut queue = self.waiting();
        let queued = queue.iter().position(|p| *p == pkg);
        match (waiting, queued) {
            (true, None) => queue.push_back(pkg),
            (false, Some(at)) => {
                queue.remove(at);
            }
            _ => {}
        }
    }

    /// The packages waiting for a slot, oldest first.
    pub fn waiters(&self) -> Vec<ObjectRef<PythonPackage>> {
        self.waiting().iter().cloned().collect()
    }

    /// Called with each event of the Job watch, after the view has it: a Job that finished or
    /// went (or a fresh list) may have freed a slot.
    pub fn job_event(&self, event: &watcher::Event<Job>) {
        let freed = match event {
            watcher::Event::Apply(job) | watcher::Event::InitApply(job) => {
                job_state(job) != WorkState::Running
            }
            watcher::Event::Delete(_) | watcher::Event::InitDone => true,
            watcher::Event::Init => false,
        };
        if freed {
            // One stored permit however many Jobs finish before the waker looks.
            self.inner.freed.notify_one();
        }
    }

    /// The oldest waiters, as many as there are free slots now; they leave the queue (one
    /// that still finds none joins it again at the back: the others had waited longer).
    pub async fn take_woken(&self) -> Vec<ObjectRef<PythonPackage>> {
        if self.waiting().is_empty() {
            return Vec::new();
        }
        let free = self.slots().await.free;
        let mut queue = self.waiting();
        let n = free.min(queue.len());
        queue.drain(..n).collect()
    }

    /// Runs until `wakes` is closed: each time a Job finishes or goes, sends the oldest waiters
    /// to `wakes` (the controller's `reconcile_on` stream).
    pub async fn wake_waiters(self, wakes: tokio::sync::mpsc::Sender<ObjectRef<PythonPackage>>) {
        loop {
            tokio::select! {
                () = self.inner.freed.notified() => {}
                () = wakes.closed() => return,
            }
            for pkg in self.take_woken().await {
                tracing::debug!(package = %pkg, "a build Job slot is free: waking");
                if wakes.send(pkg).await.is_err() {
                    return;
                }
            }
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, VecDeque<ObjectRef<PythonPackage>>> {
        // The queue holds plain values: a panic elsewhere cannot leave it half-changed.
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Slots<'_> {
    pub fn took(&mut self, namespace: String, name: String) {
        self.unseen.insert((namespace, name), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str) -> ObjectRef<PythonPackage> {
        ObjectRef::new(name).within("tools")
    }

    fn job(name: &str, running: bool) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "tools"},
            "status": if running { serde_json::json!({"active": 1}) } else { serde_json::json!({"succeeded": 1}) },
        }))
        .unwrap()
    }

    /// A limit of `max` over a view holding `jobs`.
    fn limit(
        max: usize,
        jobs: Vec<Job>,
    ) -> (GlobalLimit, kube::runtime::reflector::store::Writer<Job>) {
        let (view, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for j in jobs {
            writer.apply_watcher_event(&watcher::Event::InitApply(j));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        (GlobalLimit::new(max, view), writer)
    }

    #[tokio::test]
    async fn waiters_are_woken_oldest_first_as_many_as_slots_are_free() {
        let (limit, mut writer) = limit(2, vec![job("a", true), job("b", true)]);
        for p in ["old", "mid", "old", "new"] {
            limit.set_waiting(pkg(p), true);
        }
        assert_eq!(
            limit.waiters(),
            [pkg("old"), pkg("mid"), pkg("new")],
            "each once, in order"
        );
        assert!(limit.take_woken().await.is_empty(), "no slot is free");

        let finished = watcher::Event::Apply(job("a", false));
        writer.apply_watcher_event(&finished);
        assert_eq!(
            limit.take_woken().await,
            [pkg("old")],
            "one slot: the oldest"
        );
        writer.apply_watcher_event(&watcher::Event::Delete(job("b", true)));
        assert_eq!(limit.take_woken().await, [pkg("mid"), pkg("new")]);
        assert!(limit.waiters().is_empty());

        limit.set_waiting(pkg("x"), true);
        limit.set_waiting(pkg("y"), true);
        limit.set_waiting(pkg("x"), false);
        assert_eq!(limit.waiters(), [pkg("y")], "one that got its slots leaves");
    }

    #[tokio::test]
    async fn a_created_job_not_yet_seen_holds_its_slot() {
        let (limit, _writer) = limit(1, vec![]);
        limit.set_waiting(pkg("p"), true);
        limit.slots().await.took("tools".into(), "new-job".into());
        assert!(limit.take_woken().await.is_empty());
    }

    #[test]
    fn only_a_finished_or_gone_job_rings() {
        let (limit, _writer) = limit(1, vec![]);
        let rung = |e: watcher::Event<Job>| {
            limit.job_event(&e);
            // A stored permit makes `notified` ready at once.
            futures::FutureExt::now_or_never(limit.inner.freed.notified()).is_some()
        };
        assert!(!rung(watcher::Event::Apply(job("a", true))));
        assert!(!rung(watcher::Event::Init));
        assert!(rung(watcher::Event::Apply(job("a", false))));
        assert!(rung(watcher::Event::Delete(job("a", true))));
    }
}
