//! The controller at steady state: 1,000 PythonPackages of 100 versions each, everything
//! released and every manifest committed. Each reconcile still asks the index (a conditional
//! request on loopback, answered 304 from its ETag cache), reads the release store (in memory),
//! lists the package's Jobs (a fake API server in this process) and decides there is nothing to
//! do: no write, no event, no manifest commit. Prints CPU per reconcile and the process's
//! resident memory. Run with `cargo bench --bench controller`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod common;
use common::cpu_time;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use hermit_pex::controller::jobs::{JobSettings, PlatformTable};
use hermit_pex::controller::reconcile::{Context, reconcile};
use hermit_pex::controller::resource::{PythonPackage, PythonPackageSpec};
use hermit_pex::controller::targets::Targets;
use hermit_pex::gitops::DirSink;
use hermit_pex::names::{PackageName, Platform};
use hermit_pex::pypi::IndexClient;
use hermit_pex::release::{
    Asset, BuildInfo, PlatformBuild, Release, ReleaseId, ReleaseState, ReleaseStore, StoreError,
    Target, TestOutcome, Upload,
};
use http::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use pep440_rs::Version;
use serde_json::{Value, json};

const VERSIONS: usize = 100;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a quick check.
    let packages = if std::env::args().any(|a| a == "--bench") {
        1_000
    } else {
        20
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(packages));
}

async fn run(packages_count: usize) {
    let index_url = serve_index().await;
    let cache = tempfile::tempdir().unwrap();
    let (client, statuses) = api_server();
    let ctx = Arc::new(Context {
        client: client.clone(),
        index: IndexClient::new(&index_url, Some(cache.path().join("index"))).unwrap(),
        targets: Targets::new(MemStore::released(), None).with_sink(Box::new(DirSink {
            dir: cache.path().join("hermit"),
        })),
        table: PlatformTable::default(),
        jobs: JobSettings {
            index_url: index_url.clone(),
            ..JobSettings::new("builder", "acme/tools")
        },
        per_package: 8,
        limit: None,
        recorder: None,
        metrics: Arc::default(),
        now: || Time(k8s_openapi::jiff::Timestamp::now()),
        scratch: cache.path().to_owned(),
        packages: None,
    });
    let mut packages: Vec<PythonPackage> = (0..packages_count).map(resource).collect();

    // First pass: statuses written, manifests committed, index pages cached.
    let wall = Instant::now();
    for pkg in &packages {
        reconcile(Arc::new(pkg.clone()), ctx.clone()).await.unwrap();
    }
    let first = wall.elapsed();
    let written = statuses.lock().unwrap().clone();
    for pkg in &mut packages {
        let status = written[&pkg.metadata.name.clone().unwrap()].clone();
        pkg.status = Some(serde_json::from_value(status).unwrap());
    }
    assert!(
        packages
            .iter()
            .all(|p| p.status.as_ref().unwrap().released == VERSIONS as u32),
        "every version released"
    );
    let packages: Vec<Arc<PythonPackage>> = packages.into_iter().map(Arc::new).collect();
    statuses.lock().unwrap().clear();

    // Steady state, measured.
    let rounds = 3;
    let cpu = cpu_time();
    let wall = Instant::now();
    for _ in 0..rounds {
        for pkg in &packages {
            reconcile(pkg.clone(), ctx.clone()).await.unwrap();
        }
    }
    let wall = wall.elapsed();
    let cpu = cpu_time() - cpu;
    let n = (rounds * packages_count) as f64;
    assert!(
        statuses.lock().unwrap().is_empty(),
        "a steady state writes no status"
    );
    let (rss, hwm) = memory();
    println!(
        "controller steady state: {packages_count} packages x {VERSIONS} versions, {rounds} rounds: {:.3} ms CPU and {:.3} ms wall per reconcile (first pass {:.1} s); RSS {:.1} MiB, peak {:.1} MiB",
        cpu * 1e3 / n,
        wall.as_secs_f64() * 1e3 / n,
        first.as_secs_f64(),
        rss,
        hwm
    );
    let stats = ctx.index.stats();
    println!(
        "index: {} requests, {} answered 304",
        stats.requests, stats.not_modified
    );
}

fn resource(i: usize) -> PythonPackage {
    let spec: PythonPackageSpec = serde_norway::from_str(&format!(
        "package: tool-{i}\nbinaries: [tool-{i}]\nversions:\n  - {{version: \"1.0.0\", python: \"3.12\"}}\n"
    ))
    .unwrap();
    let mut pkg = PythonPackage::new(&format!("tool-{i}"), spec);
    pkg.metadata.namespace = Some("tools".into());
    pkg.metadata.uid = Some(format!("uid-{i}"));
    pkg.metadata.generation = Some(1);
    pkg
}

fn version(j: usize) -> Version {
    format!("1.{}.{}", j / 10, j % 10).parse().unwrap()
}

/// A PEP 691 index of every package, with ETags: the controller's conditional requests get 304.
async fn serve_index() -> String {
    async fn page(Path(name): Path<String>, headers: HeaderMap) -> Response<axum::body::Body> {
        let etag = format!("\"{name}-1\"");
        if headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            == Some(&etag)
        {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::ETAG, etag)
                .body(axum::body::Body::empty())
                .unwrap();
        }
        let files: Vec<Value> = (0..VERSIONS)
            .map(|j| {
                let file = format!("{}-{}-py3-none-any.whl", name.replace('-', "_"), version(j));
                json!({"filename": file, "url": format!("https://files.example/{file}"), "hashes": {"sha256": "00"}})
            })
            .collect();
        let versions: Vec<String> = (0..VERSIONS).map(|j| version(j).to_string()).collect();
        let body = json!({"meta": {"api-version": "1.1"}, "name": name, "files": files, "versions": versions});
        Response::builder()
            .header(header::CONTENT_TYPE, "application/vnd.pypi.simple.v1+json")
            .header(header::ETAG, etag)
            .body(axum::body::Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    }
    let app = axum::Router::new().route("/simple/{name}/", axum::routing::get(page));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/simple/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A fake API server: no Jobs anywhere; status patches recorded by resource name.
fn api_server() -> (kube::Client, Arc<Mutex<HashMap<String, Value>>>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let statuses = Arc::new(Mutex::new(HashMap::new()));
    let seen = statuses.clone();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let (method, path) = (request.method().clone(), request.uri().path().to_owned());
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let reply = if method == "GET" && path.ends_with("/jobs") {
                json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": []})
            } else if path.ends_with("/status") {
                let name = path.rsplit('/').nth(1).unwrap().to_owned();
                seen.lock()
                    .unwrap()
                    .insert(name.clone(), body["status"].clone());
                json!({"apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage",
                    "metadata": {"name": name}, "spec": {"package": name, "binaries": [name],
                    "versions": [{"version": "1.0.0", "python": "3.12"}]}, "status": body["status"]})
            } else {
                body
            };
            respond.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(svc, "tools"), statuses)
}

/// Every package's versions released on every platform, tested, held in memory.
struct MemStore {
    versions: Vec<Version>,
}

impl MemStore {
    fn released() -> Self {
        Self {
            versions: (0..VERSIONS).rev().map(version).collect(),
        }
    }

    fn release(package: &PackageName, v: &Version) -> Release {
        let inputs = hermit_pex::release::VersionInputs {
            python: "3.12".parse().unwrap(),
            config_version: None,
            requirements: vec![format!("{package}=={v}")],
            binaries: vec![hermit_pex::names::BinaryName::new(package.as_str()).unwrap()],
            test: String::new(),
            source: None,
            build: None,
            packages: Vec::new(),
        };
        let mut info = BuildInfo::new(package, v, inputs);
        let mut assets = Vec::new();
        for p in Platform::ALL {
            let asset = package.asset_name(p);
            assets.push(Asset {
                name: asset.clone(),
                size: 1,
                sha256: Some("a".repeat(64)),
                uploaded: true,
            });
            info.platforms.insert(
                p,
                PlatformBuild {
                    asset,
                    size: 1,
                    sha256: "a".repeat(64),
                    target: Target::Universal,
                    test: Some(TestOutcome::Passed {
                        command: format!("{package} --help"),
                    }),
                    lock: None,
                    packages: Vec::new(),
                    tarball: Default::default(),
                },
            );
        }
        Release {
            id: ReleaseId(package.tag(v)),
            tag: package.tag(v),
            version: v.clone(),
            state: ReleaseState::Published,
            order: 0,
            assets,
            info: Some(info),
        }
    }
}

impl ReleaseStore for MemStore {
    async fn releases(&self, package: &PackageName) -> Result<Vec<Release>, StoreError> {
        Ok(self
            .versions
            .iter()
            .map(|v| Self::release(package, v))
            .collect())
    }
    async fn refresh(&self) {}
    async fn release(&self, _: &PackageName, _: &ReleaseId) -> Result<Release, StoreError> {
        unreachable!("nothing to read by id at steady state")
    }
    async fn create(&self, _: &BuildInfo) -> Result<Release, StoreError> {
        unreachable!("nothing to create at steady state")
    }
    async fn delete_draft(&self, _: &Release) -> Result<(), StoreError> {
        unreachable!("no draft at steady state")
    }
    async fn upload(&self, _: &Release, _: Upload<'_>) -> Result<(), StoreError> {
        unreachable!("nothing to upload at steady state")
    }
    async fn delete_asset(&self, _: &Release, _: &str) -> Result<(), StoreError> {
        unreachable!("nothing to delete at steady state")
    }
    async fn record(&self, _: &Release, _: &BuildInfo) -> Result<(), StoreError> {
        unreachable!("nothing built at steady state")
    }
    async fn publish(&self, _: &Release, _: &BuildInfo) -> Result<(), StoreError> {
        unreachable!("everything is published")
    }
    async fn fetch(
        &self,
        _: &Release,
        _: &str,
        _: &std::path::Path,
    ) -> Result<std::path::PathBuf, StoreError> {
        unreachable!("nothing to fetch in the controller")
    }
    fn source_template(&self, package: &PackageName) -> String {
        format!("https://example.com/{package}-v${{version}}/{package}-${{os}}-${{arch}}.tar.gz")
    }
}

/// (VmRSS, VmHWM) in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}
