//! Reconciling `PythonPackage`s against a mocked Kubernetes API server (kube's `tower_test`
//! pattern): the requests the controller sends are recorded and asserted; the index is a
//! replay server on loopback and releases live in a directory store.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Page, ReplayServer};
use hermit_pex::controller::jobs::{JobSettings, PlatformTable};
use hermit_pex::controller::limit::GlobalLimit;
use hermit_pex::controller::reconcile::{Context, reconcile};
use hermit_pex::controller::resource::{PythonPackage, PythonPackageSpec};
use hermit_pex::controller::targets::Targets;
use hermit_pex::names::{PackageName, Platform};
use hermit_pex::pypi::IndexClient;
use hermit_pex::release::dir::DirStore;
use hermit_pex::release::{ReleaseMeta, ReleaseStore, Upload};
use http::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

/// A request the controller sent: method, path and query, JSON body.
type Sent = (String, String, Value);

/// A mocked API server: `reply` answers each (method, path and query, body) with a status
/// code and a JSON body; every request is recorded until the client is dropped.
fn mock_api(
    reply: impl Fn(&str, &str, &Value) -> (u16, Value) + Send + 'static,
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
            let (status, answer) = reply(&method, &uri, &body);
            sent.push((method, uri, body));
            respond.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
        sent
    });
    (client, task)
}

/// Serves the controller: lists `jobs`, `nodes` and `pods`, echoes applied objects.
fn api_server(
    pkg: PythonPackage,
    jobs: Vec<Value>,
    nodes: Vec<Value>,
    pods: Vec<Value>,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    mock_api(move |method, uri, body| {
        let list = |kind: &str, items: &Vec<Value>| json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items});
        let reply = if method == "GET" && uri.starts_with("/api/v1/nodes") {
            list("NodeList", &nodes)
        } else if method == "GET" && uri.contains("/pods") {
            list("PodList", &pods)
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
        (200, reply)
    })
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
) -> Context<DirStore> {
    Context {
        client: client.clone(),
        index: IndexClient::new(index_url, None).unwrap(),
        targets: Targets::new(store, None),
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
        limit: None,
        recorder: Some(Recorder::new(
            client,
            Reporter {
                controller: "hermit-pex".into(),
                instance: None,
            },
        )),
        metrics: Arc::default(),
        now,
    }
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
    run_with_nodes(pkg, jobs, store, per_package, ready_nodes()).await
}

fn ready_nodes() -> Vec<Value> {
    vec![node("a", "amd64", true), node("b", "arm64", true)]
}

async fn run_with_nodes(
    pkg: PythonPackage,
    jobs: Vec<Value>,
    store: DirStore,
    per_package: usize,
    nodes: Vec<Value>,
) -> Vec<Sent> {
    let index = index().await;
    let (client, server) = api_server(pkg.clone(), jobs, nodes, Vec::new());
    let ctx = context(client, &index.url, store, per_package);
    reconcile_with(pkg, ctx).await;
    server.await.unwrap()
}

/// Runs one reconcile; the caller holds the API server's task.
async fn reconcile_with(pkg: PythonPackage, ctx: Context<DirStore>) {
    tokio::time::timeout(
        Duration::from_secs(10),
        reconcile(Arc::new(pkg), Arc::new(ctx)),
    )
    .await
    .expect("reconcile finished (an unexpected request would hang it)")
    .expect("reconcile succeeded");
}

/// Draft releases of `versions` with every platform's asset uploaded (not yet published).
async fn upload_everything(dir: &std::path::Path, store: &DirStore, versions: &[&str]) {
    let pkg_name = PackageName::new("tool").unwrap();
    for version in versions {
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
            let file = dir.join(format!("{version}-{p}"));
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
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/") && u.contains("fieldManager"))
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
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/") && u.contains("fieldManager"))
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
    upload_everything(dir.path(), &store, &["1.0", "1.1"]).await;
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
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/") && u.contains("fieldManager"))
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

fn events<'a>(sent: &'a [Sent], reason: &str) -> Vec<&'a Value> {
    sent.iter()
        .filter(|(m, u, b)| {
            m == "POST"
                && u.starts_with("/apis/events.k8s.io/v1/namespaces/default/events")
                && b["reason"] == reason
        })
        .map(|(_, _, b)| b)
        .collect()
}

#[tokio::test]
async fn starting_builds_is_one_event_not_one_per_loop() {
    let (_dir, store) = store();
    let sent = run(package(""), vec![], store, 3).await;
    let started = events(&sent, "BuildStarted");
    assert_eq!(started.len(), 1, "{sent:?}");
    assert_eq!(
        started[0]["note"],
        "started 3 builds: 1.1 linux-amd64, 1.1 linux-arm64, 1.1 darwin-amd64"
    );
    assert_eq!(started[0]["regarding"]["kind"], "PythonPackage");
    assert_eq!(started[0]["type"], "Normal");
}

/// A failed Job's pod, its container stopped with `reason` and `exit_code`.
fn failed_pod(job: &str, reason: &str, exit_code: i32, log: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{job}-x1"), "labels": {"job-name": job, "hermit-pex.dev/package": "tool"}},
        "status": {"phase": "Failed", "containerStatuses": [{
            "name": "build", "image": "builder:test", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": reason, "message": log}}
        }]}
    })
}

async fn run_with_pods(pkg: PythonPackage, jobs: Vec<Value>, pods: Vec<Value>) -> Vec<Sent> {
    let (_dir, store) = store();
    let index = index().await;
    let (client, server) = api_server(pkg.clone(), jobs, ready_nodes(), pods);
    reconcile_with(pkg, context(client, &index.url, store, 8)).await;
    server.await.unwrap()
}

#[tokio::test]
async fn a_failure_says_what_the_pod_said_once() {
    let jobs = vec![
        failed_job("1.1", "darwin-arm64", 2),
        failed_job("1.1", "linux-amd64", 2),
    ];
    let pods = vec![
        failed_pod("tool-1-1-darwin-arm64", "OOMKilled", 137, ""),
        failed_pod(
            "tool-1-1-linux-amd64",
            "Error",
            1,
            "Collecting tool==1.1\nERROR: No matching distribution found for tool==1.1",
        ),
    ];
    let sent = run_with_pods(package(""), jobs.clone(), pods.clone()).await;
    let status = status_of(&sent).clone();
    let failures = status["failures"].as_array().unwrap();
    let of = |platform: &str| {
        failures
            .iter()
            .find(|f| f["platform"] == platform)
            .unwrap()
            .clone()
    };
    assert_eq!(of("darwin-arm64")["reason"], "OOMKilled");
    assert!(
        of("darwin-arm64")["message"]
            .as_str()
            .unwrap()
            .contains("memory limit")
    );
    assert_eq!(of("linux-amd64")["reason"], "ExitCode1");
    assert!(
        of("linux-amd64")["message"]
            .as_str()
            .unwrap()
            .ends_with("No matching distribution found for tool==1.1")
    );
    let failed = events(&sent, "BuildFailed");
    assert_eq!(
        failed.len(),
        1,
        "one warning for the new failures: {sent:#?}"
    );
    assert_eq!(failed[0]["type"], "Warning");
    let note = failed[0]["note"].as_str().unwrap();
    assert!(
        note.starts_with("2 builds failed: 1.1 darwin-arm64: OOMKilled")
            && note.contains("1.1 linux-amd64: ExitCode1"),
        "{note}"
    );

    // Each failure is recorded on its Job; with those records: no pod list, no new warning,
    // however many failures there are (the status keeps only 20).
    let mut jobs = jobs;
    for job in &mut jobs {
        let name = job["metadata"]["name"].as_str().unwrap().to_owned();
        let (_, _, patch) = sent
            .iter()
            .find(|(m, u, _)| m == "PATCH" && u.contains(&format!("/jobs/{name}?")))
            .expect("the failure recorded on its Job");
        let record = patch["metadata"]["annotations"]["hermit-pex.dev/failure"].clone();
        assert!(record.is_string(), "{patch}");
        job["metadata"]["annotations"]["hermit-pex.dev/failure"] = record;
    }
    let mut pkg = package("");
    pkg.status = Some(serde_json::from_value(status.clone()).unwrap());
    let sent = run_with_pods(pkg, jobs, pods).await;
    assert!(
        !sent.iter().any(|(_, u, _)| u.contains("/pods")),
        "{sent:?}"
    );
    assert!(events(&sent, "BuildFailed").is_empty());
    if let Some((_, _, body)) = sent
        .iter()
        .find(|(m, u, _)| m == "PATCH" && u.contains("/status"))
    {
        assert_eq!(body["status"]["failures"], status["failures"]);
    }
}

/// A Job of another package, still running: it counts against the global limit.
fn running_job(package: &str, n: usize) -> k8s_openapi::api::batch::v1::Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("{package}-{n}"), "namespace": "other",
            "labels": {"app.kubernetes.io/managed-by": "hermit-pex", "hermit-pex.dev/package": package}},
        "status": {"active": 1}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_global_limit_counts_every_packages_jobs() {
    let (_dir, store) = store();
    let (view, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    for n in 0..5 {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(running_job(
            "other", n,
        )));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let index = index().await;
    let pkg = package("");
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.limit = Some(GlobalLimit::new(7, view));
    let ctx = Arc::new(ctx);
    let created = |sent: &[Sent]| {
        sent.iter()
            .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/") && u.contains("fieldManager"))
            .count()
    };
    for _ in 0..2 {
        tokio::time::timeout(
            Duration::from_secs(10),
            reconcile(Arc::new(pkg.clone()), ctx.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    }
    drop(ctx);
    let sent = server.await.unwrap();
    assert_eq!(
        created(&sent),
        2,
        "7 at most: 5 running elsewhere, then 2 created that the watch has not shown yet"
    );
}

/// A bare repository with one commit on main, and a GitSink over it.
fn git_sink(dir: &std::path::Path) -> (std::path::PathBuf, hermit_pex::gitops::git::GitSink) {
    let git = |args: &[&str], cwd: &std::path::Path| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::create_dir_all(dir).unwrap();
    let bare = dir.join("manifests.git");
    git(
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        dir,
    );
    let seed = dir.join("seed");
    git(
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            seed.to_str().unwrap(),
        ],
        dir,
    );
    std::fs::write(seed.join("README.md"), "manifests\n").unwrap();
    git(&["add", "README.md"], &seed);
    git(&["commit", "-q", "-m", "start"], &seed);
    git(&["push", "-q", "origin", "HEAD:main"], &seed);
    let sink = hermit_pex::gitops::git::GitSink::new(hermit_pex::gitops::git::GitSinkConfig {
        url: format!("file://{}", bare.display()),
        branch: "main".into(),
        dir: String::new(),
        author_name: "hermit-pex".into(),
        author_email: "hermit-pex@example.com".into(),
        checkout: dir.join("checkout"),
        attempts: 3,
    });
    (bare, sink)
}

fn git_log(bare: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("git")
        .args([
            "--git-dir",
            bare.to_str().unwrap(),
            "log",
            "--format=%H %s",
            "main",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn released_versions_are_committed_once_and_the_commit_is_in_the_status() {
    let (dir, store) = store();
    upload_everything(dir.path(), &store, &["1.0", "1.1"]).await;
    let (bare, sink) = git_sink(dir.path());
    let index = index().await;
    let pkg = package("");
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.targets = Targets::new(
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        None,
    )
    .with_sink(Box::new(sink));
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();

    let log = git_log(&bare);
    assert_eq!(log.len(), 2, "{log:?}");
    let (sha, subject) = log[0].split_once(' ').unwrap();
    assert_eq!(subject, "hermit: tool 1.0, 1.1 [skip ci]");
    let status = status_of(&sent).clone();
    assert_eq!(status["lastCommit"], sha);
    assert_eq!(status["listed"], 2);
    assert_eq!(events(&sent, "Released")[0]["note"], "released 1.1, 1.0");
    assert!(
        events(&sent, "ManifestCommitted")[0]["note"]
            .as_str()
            .unwrap()
            .starts_with(&format!("committed {sha}"))
    );
    let text = std::process::Command::new("git")
        .args(["--git-dir", bare.to_str().unwrap(), "show", "main:tool.hcl"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("version \"1.0\" \"1.1\"")
            || (text.contains("\"1.0\"") && text.contains("\"1.1\"")),
        "{text}"
    );

    // The same state again: the sink is not touched, nothing is written.
    let (bare_before, checkout) = (git_log(&bare), dir.path().join("checkout"));
    std::fs::remove_dir_all(&checkout).unwrap(); // a sink call would have to clone again
    let mut pkg = package("");
    pkg.status = Some(serde_json::from_value(status).unwrap());
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let (_, sink) = git_sink(&dir.path().join("unused"));
    let mut ctx = context(
        client,
        &index.url,
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        8,
    );
    ctx.targets = Targets::new(
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        None,
    )
    .with_sink(Box::new(sink));
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    assert_eq!(git_log(&bare), bare_before);
    assert!(!checkout.exists(), "the sink was not used");
    assert_eq!(sent.len(), 1, "only the Job list: {sent:?}");
}

#[tokio::test]
async fn a_release_target_the_controller_cannot_open_is_reported() {
    let (_dir, store) = store();
    let sent = run(
        package("releases: {repository: acme/other}\n"),
        vec![],
        store,
        8,
    )
    .await;
    let status = status_of(&sent);
    let ready = condition(status, "Ready").unwrap();
    assert_eq!(ready["reason"], "Invalid");
    assert!(
        condition(status, "Stalled").is_some(),
        "only a change to the resource helps"
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.releases"),
        "{ready}"
    );
    assert!(!sent.iter().any(|(_, u, _)| u.contains("/jobs")));
}

/// Serves a Lease API: GET answers `current` (404 when `None`), writes answer `write_status`.
fn lease_server(
    current: Option<Value>,
    write_status: u16,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    mock_api(move |method, _, body| {
        let failure = |code: u16, reason: &str| json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason});
        match (method, &current) {
            ("GET", Some(lease)) => (200, lease.clone()),
            ("GET", None) => (404, failure(404, "NotFound")),
            _ if write_status == 409 => (409, failure(409, "Conflict")),
            _ => (200, body.clone()),
        }
    })
}

fn lease(holder: &str, renewed: &str, seconds: u32) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "hermit-pex", "namespace": "hermit-pex", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": renewed, "leaseTransitions": 3}})
}

/// `try_hold` once, or twice `wait` apart, on one lock; what the last call said.
async fn try_hold(
    current: Option<Value>,
    write_status: u16,
    wait: Option<Duration>,
) -> (bool, Vec<Sent>) {
    use hermit_pex::controller::lease::LeaseLock;
    let (client, server) = lease_server(current, write_status);
    let lock = LeaseLock::new(client, "hermit-pex", "hermit-pex", "pod-a");
    let mut held = lock.try_hold().await.unwrap();
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
        held = lock.try_hold().await.unwrap();
    }
    drop(lock);
    (held, server.await.unwrap())
}

#[tokio::test]
async fn leader_election_takes_a_free_or_expired_lease_and_leaves_a_live_one() {
    // No Lease yet: created with us as the holder.
    let (held, sent) = try_hold(None, 200, None).await;
    assert!(held);
    assert_eq!(sent[1].0, "POST");
    assert_eq!(sent[1].2["spec"]["holderIdentity"], "pod-a");

    // Held by another replica: left alone, nothing written, even when its renewTime looks
    // old by our clock (clocks differ; only seeing it unchanged for its duration counts).
    let (held, sent) = try_hold(
        Some(lease("pod-b", "2020-01-01T00:00:00.000000Z", 15)),
        200,
        None,
    )
    .await;
    assert!(!held);
    assert_eq!(sent.len(), 1, "{sent:?}");

    // Seen unchanged for longer than it lasts: taken over, with its resourceVersion, one more
    // transition.
    let stale = lease("pod-b", "2020-01-01T00:00:00.000000Z", 1);
    let (held, sent) = try_hold(Some(stale.clone()), 200, Some(Duration::from_millis(1100))).await;
    assert!(held);
    assert_eq!(sent.len(), 3, "GET, GET, PUT: {sent:?}");
    assert_eq!(sent[2].0, "PUT");
    assert_eq!(sent[2].2["metadata"]["resourceVersion"], "7");
    assert_eq!(sent[2].2["spec"]["holderIdentity"], "pod-a");
    assert_eq!(sent[2].2["spec"]["leaseTransitions"], 4);

    // Another replica took it between our read and our write: not ours.
    let (held, _) = try_hold(Some(stale), 409, Some(Duration::from_millis(1100))).await;
    assert!(!held);
}

#[tokio::test]
async fn a_platform_missing_from_the_table_is_reported_and_the_rest_build() {
    let (_dir, store) = store();
    let index = index().await;
    let pkg = package("");
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.table
        .platforms
        .remove(&"darwin-arm64".parse::<Platform>().unwrap());
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let names: Vec<&str> = sent
        .iter()
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/") && u.contains("fieldManager"))
        .map(|(_, _, b)| b["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.iter().all(|n| !n.ends_with("darwin-arm64")));
    let status = status_of(&sent);
    assert!(
        status["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["reason"] == "NoNodeForPlatform" && f["platform"] == "darwin-arm64"),
        "{status}"
    );
}

#[tokio::test]
async fn a_second_resource_for_the_same_package_stops_and_says_so() {
    let (_dir, store) = store();
    let mut theirs = failed_job("1.1", "linux-amd64", 2);
    theirs["metadata"]["ownerReferences"] = json!([{"apiVersion": "hermit-pex.dev/v1alpha1",
        "kind": "PythonPackage", "name": "tool-first", "uid": "uid-0", "controller": true}]);
    let sent = run(package(""), vec![theirs], store, 8).await;
    assert!(
        !sent.iter().any(|(m, _, _)| m == "DELETE" || m == "POST"),
        "{sent:?}"
    );
    assert!(
        !sent
            .iter()
            .any(|(m, u, _)| m == "PATCH" && u.contains("/jobs/"))
    );
    let ready = condition(status_of(&sent), "Ready").unwrap().clone();
    assert_eq!(ready["reason"], "Invalid");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("tool-first in this namespace already builds tool"),
        "{ready}"
    );
}
