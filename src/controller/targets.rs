//! Where a resource's releases and manifests go: the controller's defaults, or the targets its
//! spec names (`spec.releases`, `spec.manifests`), each opened once and kept. A manifest sink
//! sits behind a lock: a Git checkout takes one commit at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::resource::{ManifestTarget, PythonPackageSpec};
use crate::gitops::DynSink;

/// A release store and the repository web URL manifests name (`repository = ...`).
pub struct StoreTarget<S> {
    pub store: S,
    pub repository: Option<String>,
}

pub type SharedSink = Arc<tokio::sync::Mutex<Box<dyn DynSink>>>;
type OpenStore<S> = Box<dyn Fn(&str) -> Result<StoreTarget<S>, String> + Send + Sync>;
type OpenSink = Box<dyn Fn(&ManifestTarget) -> Result<Box<dyn DynSink>, String> + Send + Sync>;

pub struct Targets<S> {
    store: Arc<StoreTarget<S>>,
    open_store: Option<OpenStore<S>>,
    stores: Mutex<HashMap<String, Arc<StoreTarget<S>>>>,
    sink: Option<SharedSink>,
    open_sink: Option<OpenSink>,
    sinks: Mutex<HashMap<ManifestTarget, SharedSink>>,
}

impl<S> Targets<S> {
    /// Releases in `store`; no manifests until [`Targets::with_sink`].
    pub fn new(store: S, repository: Option<String>) -> Self {
        Self {
            store: Arc::new(StoreTarget { store, repository }),
            open_store: None,
            stores: Mutex::default(),
            sink: None,
            open_sink: None,
            sinks: Mutex::default(),
        }
    }

    /// The controller's own release store.
    pub fn default_store(&self) -> &StoreTarget<S> {
        &self.store
    }

    /// The default manifest sink.
    pub fn with_sink(mut self, sink: Box<dyn DynSink>) -> Self {
        self.sink = Some(Arc::new(tokio::sync::Mutex::new(sink)));
        self
    }

    /// How to open the store of a `spec.releases.repository`.
    pub fn opening_stores(
        mut self,
        open: impl Fn(&str) -> Result<StoreTarget<S>, String> + Send + Sync + 'static,
    ) -> Self {
        self.open_store = Some(Box::new(open));
        self
    }

    /// How to open the sink of a `spec.manifests`.
    pub fn opening_sinks(
        mut self,
        open: impl Fn(&ManifestTarget) -> Result<Box<dyn DynSink>, String> + Send + Sync + 'static,
    ) -> Self {
        self.open_sink = Some(Box::new(open));
        self
    }

    /// The store of a resource's releases.
    pub fn store(&self, spec: &PythonPackageSpec) -> Result<Arc<StoreTarget<S>>, String> {
        let Some(target) = &spec.releases else {
            return Ok(self.store.clone());
        };
        let open = self.open_store.as_ref().ok_or(
            "spec.releases: this controller cannot open other release repositories; remove the field",
        )?;
        let mut stores = self.stores.lock().expect("not poisoned");
        if let Some(s) = stores.get(&target.repository) {
            return Ok(s.clone());
        }
        let opened = Arc::new(
            open(&target.repository).map_err(|e| format!("spec.releases.repository: {e}"))?,
        );
        stores.insert(target.repository.clone(), opened.clone());
        Ok(opened)
    }

    /// The sink of a resource's manifests; `None` when manifests are not committed.
    pub fn sink(&self, spec: &PythonPackageSpec) -> Result<Option<SharedSink>, String> {
        let Some(target) = &spec.manifests else {
            return Ok(self.sink.clone());
        };
        let open = self.open_sink.as_ref().ok_or(
            "spec.manifests: this controller cannot commit to other repositories; remove the field",
        )?;
        let mut sinks = self.sinks.lock().expect("not poisoned");
        if let Some(s) = sinks.get(target) {
            return Ok(Some(s.clone()));
        }
        let opened: SharedSink = Arc::new(tokio::sync::Mutex::new(
            open(target).map_err(|e| format!("spec.manifests: {e}"))?,
        ));
        sinks.insert(target.clone(), opened.clone());
        Ok(Some(opened))
    }
}
