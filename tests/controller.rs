//! Reconciling `PythonPackage`s against a mocked Kubernetes API server (kube's `tower_test`
//! pattern): the requests the controller sends are recorded and asserted; the index is a
//! replay server on loopback and releases live in a directory store.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Page, ReplayServer};
use hermit_pex::controller::jobs::{JobSettings, PlatformTable};
use hermit_pex::controller::reconcile::{Context, reconcile};
use hermit_pex::controller::resource::{PythonPackage, PythonPackageSpec};
use hermit_pex::names::{PackageName, Platform};
use hermit_pex::pypi::IndexClient;
use hermit_pex::release::dir::DirStore;
use hermit_pex::release::{ReleaseMeta, ReleaseStore, Upload};
use http::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use serde_json::{Value, json};

/// A request the controller sent: method, path and query, JSON body.
type Sent = (String, String, Value);

/// Serves the controller until it drops its client: lists `jobs`, echoes applied objects.
fn api_server(
    pkg: PythonPackage,
    jobs: Vec<Value>,
    nodes: Vec<Value>,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let task = tokio::spawn(async move {
        let mut sent = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let reply = if method == "GET" && uri.starts_with("/api/v1/nodes") {
                json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": nodes})
            } else if method == "GET" && uri.contains("/jobs") {
                json!({"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": jobs})
            } else if method == "DELETE" {
                json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success"})
            } else if uri.contains("/status") {
                let mut object = serde_json::to_value(&pkg).unwrap();
                object["status"] = body["status"].clone();
                object
            } else {
                body.clone()
            };
            sent.push((method, uri, body));
            respond.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
        sent
    });
    (client, task)
}

fn package(extra: &str) -> PythonPackage {
    let spec: PythonPackageSpec = serde_norway::from_str(&format!(
        "package: tool\nbinaries: [tool]\nversions:\n  - {{version: \"1.0\", python: \"3.12\"}}\n{extra}"
    ))
    .unwrap();
    let mut pkg = PythonPackage::new("tool", spec);
    pkg.metadata.namespace = Some("default".into());
    pkg.metadata.uid = Some("uid-1".into());
    pkg.metadata.generation = Some(2);
    pkg
}

async fn index() -> ReplayServer {
    let body = json!({
        "meta": {"api-version": "1.1"},
        "name": "tool",
        "files": [
            {"filename": "tool-1.0-py3-none-any.whl", "url": "https://files.example/tool-1.0-py3-none-any.whl", "hashes": {"sha256": "00"}},
            {"filename": "tool-1.1-py3-none-any.whl", "url": "https://files.example/tool-1.1-py3-none-any.whl", "hashes": {"sha256": "11"}}
        ],
        "versions": ["1.0", "1.1"]
    });
    let page = Page {
        content_type: "application/vnd.pypi.simple.v1+json",
        body: serde_json::to_vec(&body).unwrap(),
        etag: None,
    };
    ReplayServer::start(HashMap::from([("/simple/tool/".to_owned(), page)])).await
}

fn now() -> Time {
    serde_json::from_value(json!("2026-11-22T10:00:00Z")).unwrap()
}

fn context(
    client: kube::Client,
    index_url: &str,
    store: DirStore,
    per_package: usize,
) -> Arc<Context<DirStore>> {
    Arc::new(Context {
        client,
        index: IndexClient::new(index_url, None).unwrap(),
        store,
        table: PlatformTable::default(),
        jobs: JobSettings {
            image: "builder:test".into(),
            repository: "acme/tools".into(),
            token_secret: ("github".into(), "token".into()),
            index_url: "https://pypi.org/simple/".into(),
            cache_claim: None,
            resources: None,
            active_deadline_seconds: 3600,
            backoff_limit: 2,
            ttl_seconds_after_finished: 3600,
            service_account: None,
        },
        per_package,
        now,
    })
}

fn node(name: &str, arch: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

async fn run(
    pkg: PythonPackage,
    jobs: Vec<Value>,
    store: DirStore,
    per_package: usize,
) -> Vec<Sent> {
    let nodes = vec![node("a", "amd64", true), node("b", "arm64", true)];
    run_with_nodes(pkg, jobs, store, per_package, nodes).await
}

async fn run_with_nodes(
    pkg: PythonPackage,
    jobs: Vec<Value>,
    store: DirStore,
    per_package: usize,
    nodes: Vec<Value>,
) -> Vec<Sent> {
    let index = index().await;
    let (client, server) = api_server(pkg.clone(), jobs, nodes);
    let ctx = context(client, &index.url, store, per_package);
    tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(pkg), ctx))
        .await
        .expect("reconcile finished (an unexpected request would hang it)")
        .expect("reconcile succeeded");
    server.await.unwrap()
}

fn store() -> (tempfile::TempDir, DirStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    (dir, store)
}

fn status_of(sent: &[Sent]) -> &Value {
    let (_, uri, body) = sent
        .iter()
        .find(|(m, u, _)| m == "PATCH" && u.contains("/status"))
        .expect("a status patch");
    assert!(
        uri.contains("fieldManager=hermit-pex") && uri.contains("force=true"),
        "{uri}"
    );
    &body["status"]
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
}

#[tokio::test]
async fn a_new_package_gets_build_jobs_within_the_limit_and_a_status() {
    let (_dir, store) = store();
    let sent = run(package(""), vec![], store, 6).await;
    assert!(
        sent[0].0 == "GET"
            && sent[0]
                .1
                .contains("labelSelector=hermit-pex.dev%2Fpackage%3Dtool"),
        "{:?}",
        sent[0]
    );
    let jobs: Vec<&Sent> = sent
        .iter()
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/"))
        .collect();
    let names: Vec<&str> = jobs
        .iter()
        .map(|(_, _, b)| b["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tool-1-1-linux-amd64",
            "tool-1-1-linux-arm64",
            "tool-1-1-darwin-amd64",
            "tool-1-1-darwin-arm64",
            "tool-1-0-linux-amd64",
            "tool-1-0-linux-arm64"
        ],
        "newest version first, six at most"
    );
    for (_, uri, body) in &jobs {
        assert!(
            uri.contains("fieldManager=hermit-pex"),
            "server-side apply: {uri}"
        );
        assert_eq!(body["kind"], "Job");
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    }
    let status = status_of(&sent);
    assert_eq!(
        (status["desired"].as_u64(), status["building"].as_u64()),
        (Some(2), Some(6))
    );
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(condition(status, "Reconciling").unwrap()["status"], "True");
    assert_eq!(condition(status, "Ready").unwrap()["status"], "False");
}

#[tokio::test]
async fn a_suspended_package_creates_nothing() {
    let (_dir, store) = store();
    let sent = run(package("suspend: true\n"), vec![], store, 6).await;
    assert!(
        !sent.iter().any(|(_, u, _)| u.contains("/jobs/")),
        "{sent:?}"
    );
    assert_eq!(
        condition(status_of(&sent), "Ready").unwrap()["reason"],
        "Suspended"
    );
}

/// A Job out of retries, made for resource generation `generation`.
fn failed_job(version: &str, platform: &str, generation: i64) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("tool-{}-{platform}", version.replace('.', "-")), "labels": {
            "hermit-pex.dev/package": "tool", "hermit-pex.dev/version": version, "hermit-pex.dev/platform": platform},
            "annotations": {"hermit-pex.dev/generation": generation.to_string(), "hermit-pex.dev/requested-at": ""}},
        "status": {"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}
    })
}

#[tokio::test]
async fn a_failed_job_is_reported_not_recreated_and_the_rest_go_on() {
    let (_dir, store) = store();
    let sent = run(
        package(""),
        vec![failed_job("1.1", "darwin-arm64", 2)],
        store,
        8,
    )
    .await;
    let names: Vec<&str> = sent
        .iter()
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/"))
        .map(|(_, _, b)| b["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 7);
    assert!(!names.contains(&"tool-1-1-darwin-arm64"));
    let status = status_of(&sent);
    assert_eq!(status["failures"][0]["reason"], "BackoffLimitExceeded");
    assert_eq!(status["failures"][0]["platform"], "darwin-arm64");
    assert!(
        condition(status, "Stalled").is_none(),
        "the other versions are still building"
    );
}

#[tokio::test]
async fn complete_releases_are_published_and_an_unchanged_state_writes_nothing() {
    let (dir, store) = store();
    let pkg_name = PackageName::new("tool").unwrap();
    for version in ["1.0", "1.1"] {
        let v = version.parse().unwrap();
        store
            .create(
                &pkg_name,
                &v,
                &ReleaseMeta {
                    python: "3.12".parse().unwrap(),
                    config_version: None,
                },
            )
            .await
            .unwrap();
        for p in Platform::ALL {
            let file = dir.path().join(format!("{version}-{p}"));
            std::fs::write(&file, format!("{version} {p}")).unwrap();
            let (size, sha256) = hermit_pex::build::artifact::sha256_file(&file).unwrap();
            let name = pkg_name.asset_name(p);
            store
                .upload(
                    &pkg_name,
                    &v,
                    Upload {
                        name: &name,
                        path: &file,
                        size,
                        sha256: &sha256,
                    },
                )
                .await
                .unwrap();
        }
    }
    let sent = run(package(""), vec![], store, 6).await;
    assert!(
        !sent.iter().any(|(_, u, _)| u.contains("/jobs/")),
        "nothing to build"
    );
    let status = status_of(&sent).clone();
    assert_eq!(status["progress"], "2/2");
    assert_eq!(status["latest"], "1.1");
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "True");
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    assert!(
        store
            .releases(&pkg_name)
            .await
            .unwrap()
            .iter()
            .all(|r| r.state == hermit_pex::release::ReleaseState::Published)
    );

    // Again, with that status already on the resource: only the Job list, no write.
    let mut pkg = package("");
    pkg.status = Some(serde_json::from_value(status).unwrap());
    let sent = run(pkg, vec![], store, 6).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "GET");
}

#[tokio::test]
async fn a_platform_with_no_ready_node_gets_no_job_and_is_reported() {
    let (_dir, store) = store();
    let nodes = vec![node("a", "amd64", true), node("b", "arm64", false)];
    let sent = run_with_nodes(package(""), vec![], store, 8, nodes).await;
    let names: Vec<&str> = sent
        .iter()
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/"))
        .map(|(_, _, b)| b["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(
        names.iter().all(|n| !n.contains("linux-arm64")),
        "no Pending pod for a pool without nodes"
    );
    let status = status_of(&sent);
    let failures = status["failures"].as_array().unwrap();
    let record = failures
        .iter()
        .find(|f| f["reason"] == "NoNodeForPlatform")
        .unwrap();
    assert_eq!(record["platform"], "linux-arm64");
}

#[tokio::test]
async fn a_failed_build_is_retried_after_the_spec_changed() {
    let (_dir, store) = store();
    // The Job failed under generation 1; the resource is at generation 2 now.
    let sent = run(
        package(""),
        vec![failed_job("1.1", "darwin-arm64", 1)],
        store,
        8,
    )
    .await;
    let deleted: Vec<&str> = sent
        .iter()
        .filter(|(m, _, _)| m == "DELETE")
        .map(|(_, u, _)| u.as_str())
        .collect();
    assert_eq!(deleted.len(), 1, "{sent:?}");
    assert!(
        deleted[0].contains("/jobs/tool-1-1-darwin-arm64"),
        "{}",
        deleted[0]
    );
    let recreated = sent
        .iter()
        .find(|(m, u, _)| m == "PATCH" && u.contains("/jobs/tool-1-1-darwin-arm64"))
        .expect("made again");
    assert_eq!(
        recreated.2["metadata"]["annotations"]["hermit-pex.dev/generation"],
        "2"
    );
    let status = status_of(&sent);
    assert!(
        status["failures"].as_array().is_none_or(|f| f.is_empty()),
        "{status}"
    );
}
