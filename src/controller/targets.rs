//! Where a resource's releases and manifests go: the controller's defaults, or the targets its
//! spec names (`spec.releases`, `spec.manifests`), each opened once and kept. A manifest sink
//! sits behind a lock: a Git checkout takes one commit at a time.
//!
//! A target named in a resource is written with the controller's own token, so only targets
//! its operator allowed (`--allow-release-repository`, `--allow-manifest-repository`) are
//! opened: whoever may create a PythonPackage must not be able to send the token elsewhere.
//! A `spec.source.git` is read with the controller's (and the lock Jobs') Git credentials, so
//! it too must be a repository the operator allowed (`--allow-source-repository`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::resource::{ManifestTarget, PythonPackageSpec};
use crate::gitops::DynSink;
use crate::pypi::IndexClient;

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
    allowed_stores: Vec<String>,
    allowed_sinks: Vec<String>,
    allowed_sources: Vec<String>,
    /// Whether `extraPackages` may hold direct references (`name @ URL`).
    direct_references: bool,
    stores: Mutex<HashMap<String, Arc<StoreTarget<S>>>>,
    sink: Option<SharedSink>,
    open_sink: Option<OpenSink>,
    sinks: Mutex<HashMap<ManifestTarget, SharedSink>>,
    /// The operator's named indexes a `spec.index` may pick.
    indexes: BTreeMap<String, IndexClient>,
    /// The index of the wheels published versions offer, when the operator keeps one.
    wheels: Option<Arc<crate::wheels::WheelIndex>>,
    /// The operator's publish indexes a `spec.publish` may name.
    publish: BTreeMap<String, Arc<crate::wheels::upload::Uploader>>,
}

impl<S> Targets<S> {
    /// Releases in `store`; no manifests until [`Targets::with_sink`].
    pub fn new(store: S, repository: Option<String>) -> Self {
        Self {
            store: Arc::new(StoreTarget { store, repository }),
            open_store: None,
            allowed_stores: Vec::new(),
            allowed_sinks: Vec::new(),
            allowed_sources: Vec::new(),
            direct_references: false,
            stores: Mutex::default(),
            sink: None,
            open_sink: None,
            sinks: Mutex::default(),
            indexes: BTreeMap::new(),
            wheels: None,
            publish: BTreeMap::new(),
        }
    }

    /// The private indexes a resource may publish its wheels to (`spec.publish`), by name.
    pub fn with_publish_indexes(
        mut self,
        uploaders: BTreeMap<String, crate::wheels::upload::Uploader>,
    ) -> Self {
        self.publish = uploaders
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect();
        self
    }

    /// The publish indexes `spec.publish` names; a name the operator did not define is the
    /// resource's error (its wheels would otherwise go nowhere, silently).
    pub fn publish(
        &self,
        spec: &PythonPackageSpec,
    ) -> Result<Vec<Arc<crate::wheels::upload::Uploader>>, String> {
        spec.publish
            .iter()
            .map(|name| {
                self.publish.get(name).cloned().ok_or_else(|| {
                    let defined: Vec<&str> = self.publish.keys().map(String::as_str).collect();
                    format!(
                        "spec.publish {name}: not a publish index this controller has; it has {} \
                         (its operator defines them with --publish-index, Helm: publish.indexes)",
                        if defined.is_empty() {
                            "none".to_owned()
                        } else {
                            defined.join(", ")
                        }
                    )
                })
            })
            .collect()
    }

    /// Published versions' wheels go into `index`.
    pub fn with_wheel_index(mut self, index: crate::wheels::WheelIndex) -> Self {
        self.wheels = Some(Arc::new(index));
        self
    }

    /// The wheel index, if the operator keeps one.
    pub fn wheel_index(&self) -> Option<&crate::wheels::WheelIndex> {
        self.wheels.as_deref()
    }

    /// The indexes a resource may name in `spec.index`, by name.
    pub fn with_indexes(mut self, indexes: BTreeMap<String, IndexClient>) -> Self {
        self.indexes = indexes;
        self
    }

    /// The index a resource observes: the one its `spec.index` names, else `default`. A name
    /// the operator did not define is the resource's error (never the default in its place:
    /// a private package looked up on a public index is how dependency confusion starts).
    pub fn index<'a>(
        &'a self,
        spec: &PythonPackageSpec,
        default: &'a IndexClient,
    ) -> Result<&'a IndexClient, String> {
        let Some(name) = &spec.index else {
            return Ok(default);
        };
        self.indexes.get(name).ok_or_else(|| {
            let defined: Vec<&str> = self.indexes.keys().map(String::as_str).collect();
            format!(
                "spec.index {name}: not an index this controller has; it has {} \
                 (its operator defines them with --named-index, Helm: index.named)",
                if defined.is_empty() {
                    "none".to_owned()
                } else {
                    defined.join(", ")
                }
            )
        })
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

    /// How to open the store of a `spec.releases.repository`, and which may be opened.
    pub fn opening_stores(
        mut self,
        allowed: Vec<String>,
        open: impl Fn(&str) -> Result<StoreTarget<S>, String> + Send + Sync + 'static,
    ) -> Self {
        self.allowed_stores = allowed;
        self.open_store = Some(Box::new(open));
        self
    }

    /// How to open the sink of a `spec.manifests`, and which repository URLs may be opened.
    pub fn opening_sinks(
        mut self,
        allowed: Vec<String>,
        open: impl Fn(&ManifestTarget) -> Result<Box<dyn DynSink>, String> + Send + Sync + 'static,
    ) -> Self {
        self.allowed_sinks = allowed;
        self.open_sink = Some(Box::new(open));
        self
    }

    /// Which Git URLs a `spec.source.git` may name: an entry is a URL, or a prefix ending in
    /// `/*` (`https://git.example.com/tools/*`: every repository under it).
    pub fn allowing_sources(mut self, allowed: Vec<String>) -> Self {
        self.allowed_sources = allowed;
        self
    }

    /// Whether `extraPackages` may hold direct references (`--allow-direct-references`).
    pub fn allowing_direct_references(mut self, allowed: bool) -> Self {
        self.direct_references = allowed;
        self
    }

    /// Whether what the resource makes the controller's builds read is what the operator
    /// allowed: its Git source (if any), and direct references in `extraPackages`.
    pub fn source(&self, spec: &PythonPackageSpec) -> Result<(), String> {
        if !self.direct_references
            && let Some(p) = spec.package.direct_references().first()
        {
            return Err(format!(
                "spec.{}: {}",
                crate::controller::resource::resource_field(&p.field),
                p.message
            ));
        }
        let Some(source) = &spec.package.source else {
            return Ok(());
        };
        if self
            .allowed_sources
            .iter()
            .any(|allowed| source_allowed(allowed, &source.git))
        {
            return Ok(());
        }
        Err(format!(
            "spec.source.git {}: not a repository this controller may read; its operator can \
             allow it with --allow-source-repository (Helm: sources.allowedRepositories)",
            crate::pypi::redact(&source.git)
        ))
    }

    /// The store of a resource's releases.
    pub fn store(&self, spec: &PythonPackageSpec) -> Result<Arc<StoreTarget<S>>, String> {
        let Some(target) = &spec.releases else {
            return Ok(self.store.clone());
        };
        let open = self.open_store.as_ref().ok_or(
            "spec.releases: this controller cannot open other release repositories; remove the field",
        )?;
        if !self.allowed_stores.contains(&target.repository) {
            return Err(format!(
                "spec.releases.repository {}: not a repository this controller may release to; \
                 its operator can allow it with --allow-release-repository (Helm: releases.allowedRepositories)",
                target.repository
            ));
        }
        opened_once(&self.stores, &target.repository, || {
            let store = open(&target.repository);
            Ok(Arc::new(
                store.map_err(|e| format!("spec.releases.repository: {e}"))?,
            ))
        })
    }

    /// The sink of a resource's manifests; `None` when manifests are not committed.
    pub fn sink(&self, spec: &PythonPackageSpec) -> Result<Option<SharedSink>, String> {
        let Some(target) = &spec.manifests else {
            return Ok(self.sink.clone());
        };
        let open = self.open_sink.as_ref().ok_or(
            "spec.manifests: this controller cannot commit to other repositories; remove the field",
        )?;
        if !self.allowed_sinks.contains(&target.repository) {
            return Err(format!(
                "spec.manifests.repository {}: not a repository this controller may commit to; \
                 its operator can allow it with --allow-manifest-repository (Helm: manifests.allowedRepositories)",
                target.repository
            ));
        }
        if let Some(dir) = &target.dir
            && !is_relative_inside(dir)
        {
            return Err(
                "spec.manifests.dir: write a path inside the repository (no leading /, no ..)"
                    .to_owned(),
            );
        }
        opened_once(&self.sinks, target, || {
            let sink = open(target).map_err(|e| format!("spec.manifests: {e}"))?;
            Ok(Arc::new(tokio::sync::Mutex::new(sink)))
        })
        .map(Some)
    }
}

/// `url` is `allowed`, or under it when `allowed` ends in `/*`. Compared as written: the
/// prefix form needs its `/`, so `https://h/tools/*` does not allow `https://h/tools-evil`.
fn source_allowed(allowed: &str, url: &str) -> bool {
    match allowed.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('/') => url
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.split('/').any(|c| c == "..")),
        _ => allowed == url,
    }
}

/// What `cache` holds for `key`, opened (and kept) on first use.
fn opened_once<K: Clone + Eq + std::hash::Hash, V: Clone>(
    cache: &Mutex<HashMap<K, V>>,
    key: &K,
    open: impl FnOnce() -> Result<V, String>,
) -> Result<V, String> {
    let mut cache = cache.lock().expect("not poisoned");
    if let Some(v) = cache.get(key) {
        return Ok(v.clone());
    }
    let v = open()?;
    cache.insert(key.clone(), v.clone());
    Ok(v)
}

use crate::spec::rules::is_relative_inside;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> PythonPackageSpec {
        serde_norway::from_str(&format!(
            "package: tool\nbinaries: [tool]\nversions: [{{version: \"1.0\", python: \"3.12\"}}]\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn only_allowed_sources_are_read() {
        let targets = Targets::new((), None).allowing_sources(vec![
            "https://git.example.com/org/hello.git".into(),
            "https://git.example.com/tools/*".into(),
        ]);
        let with = |url: &str| spec(&format!("source: {{git: \"{url}\"}}\n"));
        assert!(
            targets.source(&spec("")).is_ok(),
            "an index package needs no allowing"
        );
        for ok in [
            "https://git.example.com/org/hello.git",
            "https://git.example.com/tools/a.git",
            "https://git.example.com/tools/sub/b.git",
        ] {
            assert!(targets.source(&with(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "https://git.example.com/org/hello.git2",
            "https://git.example.com/tools-evil/a.git",
            "https://git.example.com/tools/",
            "https://git.example.com/tools/../org/x.git",
            "https://evil.example.com/org/hello.git",
        ] {
            let e = targets.source(&with(bad)).unwrap_err();
            assert!(
                e.contains("spec.source.git") && e.contains("--allow-source-repository"),
                "{e}"
            );
        }
        let none = Targets::new((), None);
        assert!(
            none.source(&with("https://git.example.com/org/hello.git"))
                .is_err(),
            "empty list: none allowed"
        );
    }

    #[test]
    fn direct_references_are_read_only_where_allowed() {
        let direct = spec("extraPackages: [rich, \"evil @ file:///etc/passwd\"]\n");
        let e = Targets::new((), None).source(&direct).unwrap_err();
        assert!(
            e.starts_with("spec.extraPackages[1]: is a direct reference")
                && e.contains("--allow-direct-references")
                && !e.contains("passwd"),
            "{e}"
        );
        let allowed = Targets::new((), None).allowing_direct_references(true);
        assert!(allowed.source(&direct).is_ok());
        assert!(
            Targets::new((), None)
                .source(&spec("extraPackages: [rich]\n"))
                .is_ok()
        );
    }

    #[test]
    fn only_allowed_targets_are_opened() {
        let opened = Arc::new(Mutex::new(Vec::new()));
        let seen = opened.clone();
        let targets = Targets::new("default".to_owned(), None).opening_stores(
            vec!["acme/more".into()],
            move |repo: &str| {
                seen.lock().unwrap().push(repo.to_owned());
                Ok(StoreTarget {
                    store: repo.to_owned(),
                    repository: None,
                })
            },
        );
        assert_eq!(targets.store(&spec("")).unwrap().store, "default");
        let more = spec("releases: {repository: acme/more}\n");
        assert_eq!(targets.store(&more).unwrap().store, "acme/more");
        assert_eq!(targets.store(&more).unwrap().store, "acme/more");
        let evil = targets
            .store(&spec("releases: {repository: evil/x}\n"))
            .err()
            .unwrap();
        assert!(evil.contains("--allow-release-repository"), "{evil}");
        assert_eq!(
            *opened.lock().unwrap(),
            ["acme/more"],
            "opened once, never evil/x"
        );

        let sinks = Targets::new((), None).opening_sinks(
            vec!["https://git.example.com/t.git".into()],
            |_: &ManifestTarget| {
                Ok(Box::new(crate::gitops::DirSink {
                    dir: "/nowhere".into(),
                }) as Box<dyn DynSink>)
            },
        );
        let outside = spec("manifests: {repository: \"https://attacker.example/x.git\"}\n");
        assert!(
            sinks
                .sink(&outside)
                .err()
                .unwrap()
                .contains("--allow-manifest-repository")
        );
        let escape =
            spec("manifests: {repository: \"https://git.example.com/t.git\", dir: ../..}\n");
        let refused = sinks.sink(&escape).err().unwrap();
        assert!(refused.contains("spec.manifests.dir"), "{refused}");
        assert!(
            !refused.contains("../.."),
            "the value is not shown: {refused}"
        );
        let fine =
            spec("manifests: {repository: \"https://git.example.com/t.git\", dir: hermit}\n");
        assert!(sinks.sink(&fine).unwrap().is_some());
    }

    #[test]
    fn a_resource_publishes_only_to_indexes_the_operator_defined() {
        let index = crate::wheels::upload::PublishIndex {
            name: "team".into(),
            upload_url: "https://pypi.internal/".parse().unwrap(),
            simple_url: "https://pypi.internal/simple/".parse().unwrap(),
            credentials: None,
            variables: "V".into(),
        };
        let targets = Targets::new((), None).with_publish_indexes(BTreeMap::from([(
            "team".to_owned(),
            crate::wheels::upload::Uploader::new(index).unwrap(),
        )]));
        assert!(targets.publish(&spec("")).unwrap().is_empty());
        let ok = targets.publish(&spec("publish: [team]\n")).unwrap();
        assert_eq!(ok[0].index.name, "team");
        let e = targets
            .publish(&spec("publish: [team, elsewhere]\n"))
            .err()
            .unwrap();
        assert!(
            e.contains("spec.publish elsewhere")
                && e.contains("it has team")
                && e.contains("--publish-index"),
            "{e}"
        );
    }

    #[test]
    fn a_manifest_dir_stays_inside_the_repository() {
        for ok in ["", "hermit", "a/b", "a/.b", "..a"] {
            assert!(is_relative_inside(ok), "{ok}");
        }
        for bad in ["/etc", "..", "a/../..", "a/..", "..\\x", "\\etc", "a\nb"] {
            assert!(!is_relative_inside(bad), "{bad}");
        }
    }
}
