//! Reconciling `PythonPackage`s against a mocked Kubernetes API server (kube's `tower_test`
//! pattern): the requests the controller sends are recorded and asserted; the index is a
//! replay server on loopback; releases live in a directory store, or on the GitHub stand-in
//! (several drafts per tag, get-by-tag blind to drafts) through the real client. Jobs are what
//! the mocked API lists: they finish in any order, and a reconcile may see a release view from
//! before a Job's last upload.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::github::{FakeGitHub, Fault};
use common::kube_api::{Sent, node, package};
use common::releases;
use common::{Page, ReplayServer};
use hermit_pex::controller::jobs::{JobIndex, JobSettings, PlatformTable};
use hermit_pex::controller::limit::GlobalLimit;
use hermit_pex::controller::reconcile::{Context, reconcile};
use hermit_pex::controller::resource::PythonPackage;
use hermit_pex::controller::targets::Targets;
use hermit_pex::names::{PackageName, Platform};
use hermit_pex::pypi::IndexClient;
use hermit_pex::release::dir::DirStore;
use hermit_pex::release::github::{GitHubConfig, GitHubStore, Token};
use hermit_pex::release::{Release, ReleaseState, ReleaseStore};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

/// The mocked API server with this file's namespace.
fn api_server(
    pkg: PythonPackage,
    jobs: Vec<Value>,
    nodes: Vec<Value>,
    pods: Vec<Value>,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    common::kube_api::api_server("default", pkg, jobs, nodes, pods)
}

fn mock_api(
    reply: impl Fn(&str, &str, &Value) -> (u16, Value) + Send + 'static,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    common::kube_api::mock_api("default", reply)
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

fn context<S>(client: kube::Client, index_url: &str, store: S, per_package: usize) -> Context<S> {
    Context {
        client: client.clone(),
        index: IndexClient::new(index_url, None).unwrap(),
        targets: Targets::new(store, None),
        table: PlatformTable::default(),
        jobs: JobSettings::new("builder:test", "acme/tools"),
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
        scratch: std::env::temp_dir(),
        packages: None,
    }
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

/// Runs one reconcile; the caller holds the API server's task. Returns when it asks to be
/// run again.
async fn reconcile_with<S: ReleaseStore>(pkg: PythonPackage, ctx: Context<S>) -> Duration {
    let action = tokio::time::timeout(
        Duration::from_secs(20),
        reconcile(Arc::new(pkg), Arc::new(ctx)),
    )
    .await
    .expect("reconcile finished (an unexpected request would hang it)")
    .expect("reconcile succeeded");
    requeue_of(&action)
}

/// kube's Action hides its delay; its Debug (`Action { requeue_after: Some(60s) }`) says it.
fn requeue_of(action: &kube::runtime::controller::Action) -> Duration {
    let text = format!("{action:?}");
    let secs = text
        .split("Some(")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|d| d.strip_suffix('s'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs)
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

/// The spec of `package("")`.
fn tool_spec() -> hermit_pex::spec::PackageSpec {
    package("").spec.package
}

/// A draft of `version` made for `package("")`, as the controller makes it.
async fn draft<S: ReleaseStore>(store: &S, version: &str) -> Release {
    store
        .create(&releases::info_for(&tool_spec(), version))
        .await
        .unwrap()
}

/// Drafts of `versions`, locked, with `platforms` built.
async fn drafts<S: ReleaseStore>(
    dir: &std::path::Path,
    store: &S,
    versions: &[&str],
    platforms: &[Platform],
) -> Vec<Release> {
    let mut out = Vec::new();
    for v in versions {
        let r = draft(store, v).await;
        let r = releases::lock(store, &r, dir, false).await;
        releases::build(store, &r, dir, platforms).await;
        out.push(store.release(&pkg_name(), &r.id).await.unwrap());
    }
    out
}

fn pkg_name() -> PackageName {
    PackageName::new("tool").unwrap()
}

/// One of the package's Jobs: `step` "lock" or a platform, for `release`, made for resource
/// generation `generation`, in `state` ("running", "succeeded", "failed").
fn job(version: &str, step: &str, release: &str, generation: i64, state: &str) -> Value {
    let mut labels = json!({"hermit-pex.dev/package": "tool", "hermit-pex.dev/version": version,
        "app.kubernetes.io/managed-by": "hermit-pex"});
    if step == "lock" {
        labels["hermit-pex.dev/step"] = json!("lock");
    } else {
        labels["hermit-pex.dev/step"] = json!("build");
        labels["hermit-pex.dev/platform"] = json!(step);
    }
    let status = match state {
        "running" => json!({"active": 1}),
        "succeeded" => json!({"succeeded": 1}),
        _ => json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
    };
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("tool-{}-{step}", version.replace('.', "-")), "labels": labels,
            "annotations": {"hermit-pex.dev/generation": generation.to_string(), "hermit-pex.dev/requested-at": "",
                "hermit-pex.dev/version": version, "hermit-pex.dev/release": release},
            "ownerReferences": [{"apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage",
                "name": "tool", "uid": "uid-1", "controller": true}]},
        "status": status
    })
}

fn applied_jobs(sent: &[Sent]) -> Vec<&Value> {
    sent.iter()
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/") && u.contains("fieldManager"))
        .map(|(_, _, b)| b)
        .collect()
}

fn names<'a>(jobs: &[&'a Value]) -> Vec<&'a str> {
    jobs.iter()
        .map(|b| b["metadata"]["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_new_version_gets_its_one_draft_before_its_one_lock_job() {
    let (dir, store) = store();
    let sent = run(package(""), vec![], store, 6).await;
    assert!(
        sent[0].0 == "GET"
            && sent[0]
                .1
                .contains("labelSelector=hermit-pex.dev%2Fpackage%3Dtool"),
        "{:?}",
        sent[0]
    );
    let jobs = applied_jobs(&sent);
    assert_eq!(
        names(&jobs),
        ["tool-1-1-lock", "tool-1-0-lock"],
        "one lock Job per version, newest first: nothing else until the lock is recorded"
    );
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    let made = store.releases(&pkg_name()).await.unwrap();
    assert_eq!(made.len(), 2, "the controller made each version's draft");
    for job in &jobs {
        assert_eq!(job["kind"], "Job");
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let version = job["metadata"]["annotations"]["hermit-pex.dev/version"]
            .as_str()
            .unwrap();
        let release = made
            .iter()
            .find(|r| r.version.to_string() == version)
            .unwrap();
        assert_eq!(
            job["metadata"]["annotations"]["hermit-pex.dev/release"],
            release.id.0.as_str(),
            "the Job is handed its draft"
        );
        let args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[0], "lock");
        assert!(
            args.windows(2)
                .any(|w| w == ["--release-id", release.id.0.as_str()])
        );
    }
    let status = status_of(&sent);
    assert_eq!(
        (status["desired"].as_u64(), status["building"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(condition(status, "Reconciling").unwrap()["status"], "True");
    assert_eq!(condition(status, "Ready").unwrap()["status"], "False");
}

#[tokio::test]
async fn a_locked_version_gets_one_build_job_per_platform_within_the_limit() {
    let (dir, store) = store();
    let made = drafts(dir.path(), &store, &["1.0", "1.1"], &[]).await;
    let jobs = vec![
        job("1.1", "lock", &made[1].id.0, 2, "succeeded"),
        job("1.0", "lock", &made[0].id.0, 2, "succeeded"),
    ];
    let sent = run(package(""), jobs, store, 6).await;
    assert_eq!(
        names(&applied_jobs(&sent)),
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
    assert!(!sent.iter().any(|(m, _, _)| m == "DELETE"), "{sent:?}");
}

#[tokio::test]
async fn a_suspended_package_creates_nothing() {
    let (dir, store) = store();
    let sent = run(package("suspend: true\n"), vec![], store, 6).await;
    assert!(
        !sent.iter().any(|(_, u, _)| u.contains("/jobs/")),
        "{sent:?}"
    );
    assert_eq!(
        condition(status_of(&sent), "Ready").unwrap()["reason"],
        "Suspended"
    );
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    assert!(
        store.releases(&pkg_name()).await.unwrap().is_empty(),
        "no draft either"
    );
}

#[tokio::test]
async fn a_failed_job_is_reported_not_recreated_and_the_rest_go_on() {
    let (dir, store) = store();
    let made = drafts(dir.path(), &store, &["1.0", "1.1"], &[]).await;
    let sent = run(
        package(""),
        vec![job("1.1", "darwin-arm64", &made[1].id.0, 2, "failed")],
        store,
        8,
    )
    .await;
    let names = names(&applied_jobs(&sent));
    assert_eq!(names.len(), 7, "{names:?}");
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
async fn complete_drafts_are_published_with_their_build_info_and_an_unchanged_state_writes_nothing()
{
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.0", "1.1"], &Platform::ALL).await;
    let sent = run(package(""), vec![], store, 6).await;
    assert!(applied_jobs(&sent).is_empty(), "nothing to build");
    let status = status_of(&sent).clone();
    assert_eq!(status["progress"], "2/2");
    assert_eq!(status["latest"], "1.1");
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "True");
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    for r in store.releases(&pkg_name()).await.unwrap() {
        assert_eq!(r.state, ReleaseState::Published);
        let info = r.info.unwrap();
        assert_eq!(
            info.incomplete(&Platform::ALL),
            None,
            "complete when published"
        );
        assert_eq!(info.platforms.len(), 4);
    }

    // Again, with that status already on the resource: only the Job list, no write.
    let mut pkg = package("");
    pkg.status = Some(serde_json::from_value(status).unwrap());
    let sent = run(pkg, vec![], store, 6).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "GET");
}

#[tokio::test]
async fn a_pure_version_is_one_job_from_lock_to_every_platform() {
    let (dir, store) = store();
    let r = draft(&store, "1.1").await;
    let r = releases::lock(&store, &r, dir.path(), true).await;
    // The lock Job recorded a pure lock and is still building: no other Job starts.
    let running = vec![job("1.1", "lock", &r.id.0, 2, "running")];
    let pkg = package(
        "versions:\n  - {version: \"1.1\", python: \"3.12\"}\n"
            .replace("versions:\n", "")
            .as_str(),
    );
    let spec_11 = "versions_override";
    let _ = spec_11;
    let sent = run(pkg.clone(), running, store, 8).await;
    let started: Vec<&str> = names(&applied_jobs(&sent))
        .into_iter()
        .filter(|n| n.starts_with("tool-1-1"))
        .collect();
    assert!(started.is_empty(), "{started:?}");
    // It uploaded every platform and finished: published, one Job in all for 1.1.
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    releases::build(&store, &r, dir.path(), &Platform::ALL).await;
    let done = vec![job("1.1", "lock", &r.id.0, 2, "succeeded")];
    let sent = run(pkg, done, store, 8).await;
    assert!(
        !names(&applied_jobs(&sent))
            .iter()
            .any(|n| n.starts_with("tool-1-1")),
        "no build Job for a pure version"
    );
    assert!(
        events(&sent, "Released")[0]["note"]
            .as_str()
            .unwrap()
            .contains("1.1")
    );
}

#[tokio::test]
async fn a_platform_with_no_ready_node_gets_no_job_and_is_reported() {
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.0", "1.1"], &[]).await;
    let nodes = vec![node("a", "amd64", true), node("b", "arm64", false)];
    let sent = run_with_nodes(package(""), vec![], store, 8, nodes).await;
    let names = names(&applied_jobs(&sent));
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
    let (dir, store) = store();
    let made = drafts(dir.path(), &store, &["1.0", "1.1"], &[]).await;
    // The Job failed under generation 1; the resource is at generation 2 now.
    let sent = run(
        package(""),
        vec![job("1.1", "darwin-arm64", &made[1].id.0, 1, "failed")],
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

#[tokio::test]
async fn jobs_made_for_another_draft_are_deleted_and_made_again_for_the_kept_one() {
    let (dir, store) = store();
    let made = drafts(dir.path(), &store, &["1.1"], &[]).await;
    let stale = vec![
        job(
            "1.1",
            "linux-amd64",
            "a-draft-discarded-since",
            2,
            "running",
        ),
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "tool-1-1-linux-arm64", "labels": {"hermit-pex.dev/package": "tool",
                "hermit-pex.dev/version": "1.1", "hermit-pex.dev/platform": "linux-arm64"},
                "annotations": {"hermit-pex.dev/generation": "2", "hermit-pex.dev/requested-at": ""}},
            "status": {"active": 1}}),
    ];
    let sent = run(package(""), stale, store, 8).await;
    let deleted: Vec<&str> = sent
        .iter()
        .filter(|(m, _, _)| m == "DELETE")
        .map(|(_, u, _)| u.split('?').next().unwrap())
        .collect();
    assert_eq!(
        deleted,
        [
            "/apis/batch/v1/namespaces/default/jobs/tool-1-1-linux-amd64",
            "/apis/batch/v1/namespaces/default/jobs/tool-1-1-linux-arm64"
        ],
        "one for another release, one of an older hermit-pex"
    );
    let jobs = applied_jobs(&sent);
    let amd64 = jobs
        .iter()
        .find(|j| j["metadata"]["name"] == "tool-1-1-linux-amd64")
        .expect("made again");
    assert_eq!(
        amd64["metadata"]["annotations"]["hermit-pex.dev/release"],
        made[0].id.0.as_str()
    );
}

#[tokio::test]
async fn starting_builds_is_one_event_not_one_per_loop() {
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.1"], &[]).await;
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
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.0", "1.1"], &[]).await;
    let index = index().await;
    let (client, server) = api_server(pkg.clone(), jobs, ready_nodes(), pods);
    reconcile_with(pkg, context(client, &index.url, store, 8)).await;
    server.await.unwrap()
}

#[tokio::test]
async fn a_failure_says_what_the_pod_said_once() {
    let r = "tool-v1.1";
    let jobs = vec![
        job("1.1", "darwin-arm64", r, 2, "failed"),
        job("1.1", "linux-amd64", r, 2, "failed"),
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
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.0", "1.1"], &[]).await;
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
        applied_jobs(&sent).len(),
        2,
        "7 at most: 5 running elsewhere, then 2 created that the watch has not shown yet"
    );
}

/// A package that left work for lack of a slot waits in the limit's queue (a finished Job
/// wakes it); once nothing is left for it to start, it leaves the queue.
#[tokio::test]
async fn a_package_without_a_free_slot_waits_in_the_queue_until_its_jobs_are_made() {
    let (dir, store) = store();
    let made = drafts(dir.path(), &store, &["1.1"], &[]).await;
    let (view, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    for n in 0..5 {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(running_job(
            "other", n,
        )));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let limit = GlobalLimit::new(7, view);
    let index = index().await;
    let pkg = one_version();
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.limit = Some(limit.clone());
    reconcile_with(pkg.clone(), ctx).await;
    let sent = server.await.unwrap();
    assert_eq!(applied_jobs(&sent).len(), 2, "2 of 4: the limit is 7");
    let me = kube::runtime::reflector::ObjectRef::new("tool").within("default");
    assert_eq!(limit.waiters(), [me]);

    // Its four build Jobs run (the other two were made after a slot freed).
    let release = made[0].id.to_string();
    let jobs = Platform::ALL
        .iter()
        .map(|p| job("1.1", &p.to_string(), &release, 2, "running"))
        .collect();
    let (client, server) = api_server(pkg.clone(), jobs, ready_nodes(), vec![]);
    let mut ctx = context(
        client,
        &index.url,
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        8,
    );
    ctx.limit = Some(limit.clone());
    reconcile_with(pkg, ctx).await;
    assert!(applied_jobs(&server.await.unwrap()).is_empty());
    assert!(limit.waiters().is_empty(), "nothing left to start");
}

/// A bare repository with one commit on main, and a GitSink over it.
fn git_sink(dir: &std::path::Path) -> (std::path::PathBuf, hermit_pex::gitops::git::GitSink) {
    std::fs::create_dir_all(dir).unwrap();
    let bare = dir.join("manifests.git");
    common::git(
        dir,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    let seed = dir.join("seed");
    common::git(
        dir,
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            seed.to_str().unwrap(),
        ],
    );
    std::fs::write(seed.join("README.md"), "manifests\n").unwrap();
    common::git(&seed, &["add", "README.md"]);
    common::git(&seed, &["commit", "-q", "-m", "start"]);
    common::git(&seed, &["push", "-q", "origin", "HEAD:main"]);
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
    drafts(dir.path(), &store, &["1.0", "1.1"], &Platform::ALL).await;
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
        text.contains("version \"1.0\"") && text.contains("version \"1.1\""),
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
async fn a_version_without_a_platform_that_cannot_exist_is_released_and_listed_for_the_others() {
    let (dir, store) = store();
    let made = drafts(dir.path(), &store, &["1.1"], &Platform::ALL[..3]).await;
    let darwin_arm64 = Platform::ALL[3];
    releases::cannot_exist(
        &store,
        &made[0],
        dir.path(),
        darwin_arm64,
        "no wheel for this platform: native-dep 1 does not have any compatible artifacts",
    )
    .await;
    let (bare, sink) = git_sink(dir.path());
    let index = index().await;
    let pkg = one_version();
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.targets = Targets::new(
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        None,
    )
    .with_sink(Box::new(sink));
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let status = status_of(&sent);
    assert_eq!(status["released"], 1, "counted as released: {status}");
    assert_eq!(condition(status, "Ready").unwrap()["status"], "True");
    let record = &status["failures"][0];
    assert_eq!(record["reason"], "NoWheelForPlatform");
    assert_eq!(record["platform"], "darwin-arm64");
    assert!(
        record["message"].as_str().unwrap().contains("native-dep"),
        "{record}"
    );
    let text = String::from_utf8(
        std::process::Command::new("git")
            .args(["--git-dir", bare.to_str().unwrap(), "show", "main:tool.hcl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for p in &Platform::ALL[..3] {
        let r =
            common::hermit_resolve::resolve(&text, "1.1", p.os.as_str(), p.arch.as_str()).unwrap();
        assert!(r.source.is_some(), "{p}: {text}");
    }
    let r = common::hermit_resolve::resolve(&text, "1.1", "darwin", "arm64").unwrap();
    assert!(r.source.is_none(), "not supported on darwin-arm64: {text}");
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
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.0", "1.1"], &[]).await;
    let index = index().await;
    let pkg = package("");
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.table
        .platforms
        .remove(&"darwin-arm64".parse::<Platform>().unwrap());
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let names = names(&applied_jobs(&sent));
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
    let mut theirs = job("1.1", "linux-amd64", "1", 2, "failed");
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

#[tokio::test]
async fn of_two_resources_for_one_package_the_later_one_is_invalid() {
    let (_dir, store) = store();
    let (view, mut writer) = kube::runtime::reflector::store();
    let mut first = package("");
    first.metadata.name = Some("tools-cowsay".into());
    first.metadata.uid = Some("uid-0".into());
    first.metadata.creation_timestamp =
        Some(serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap());
    let mut second = package("");
    second.metadata.creation_timestamp =
        Some(serde_json::from_value(json!("2026-02-01T00:00:00Z")).unwrap());
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    for p in [&first, &second] {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(p.clone()));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let index = index().await;
    let (client, server) = api_server(second.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.packages = Some(view);
    reconcile_with(second, ctx).await;
    let sent = server.await.unwrap();
    assert!(applied_jobs(&sent).is_empty(), "{sent:?}");
    let ready = condition(status_of(&sent), "Ready").unwrap().clone();
    assert_eq!(ready["reason"], "Invalid");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("tools-cowsay in this namespace already builds tool"),
        "{ready}"
    );
}

// The cluster path against the GitHub stand-in: drafts GitHub keeps several of, a release view
// cached between reconciles, Jobs finishing while the controller is not looking.

const TOKEN: &str = "ghp_controller_token";

/// The controller's store: the view is listed again when older than 30 s, as in `run`.
fn github_store(fake: &FakeGitHub, cache: &std::path::Path) -> GitHubStore {
    let mut config = GitHubConfig::new("owner", "repo");
    config.api_url = fake.api_url.clone();
    config.cache_dir = Some(cache.to_owned());
    config.write_interval = Duration::ZERO;
    config.base_delay = Duration::from_millis(10);
    config.max_view_age = Some(Duration::from_secs(30));
    GitHubStore::new(config, Token::new(TOKEN)).unwrap()
}

/// A build Job's own store: another process, another view.
fn job_store(fake: &FakeGitHub, dir: &std::path::Path) -> GitHubStore {
    let mut config = GitHubConfig::new("owner", "repo");
    config.api_url = fake.api_url.clone();
    config.write_interval = Duration::ZERO;
    config.cache_dir = Some(dir.join(format!("job-{}", rand_suffix())));
    GitHubStore::new(config, Token::new(TOKEN)).unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn one_version() -> PythonPackage {
    let mut pkg = package("");
    pkg.spec.package.versions[0].version = hermit_pex::spec::PyVersion("1.1".parse().unwrap());
    pkg
}

/// Reconciles `pkg` seeing `jobs`; the requests sent and when it asked to run again.
async fn reconcile_github(
    pkg: &PythonPackage,
    jobs: Vec<Value>,
    ctx: impl FnOnce(kube::Client) -> Context<Arc<GitHubStore>>,
) -> (Vec<Sent>, Duration) {
    let (client, server) = api_server(pkg.clone(), jobs, ready_nodes(), vec![]);
    let requeue = reconcile_with(pkg.clone(), ctx(client)).await;
    (server.await.unwrap(), requeue)
}

#[tokio::test]
async fn the_last_job_to_finish_publishes_at_once_even_after_a_reconcile_saw_the_others() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let index = index().await;
    let pkg = one_version();
    let cache = dir.path().join("controller");
    // One store across reconciles, as in the controller process: its view is cached.
    let store = Arc::new(github_store(&fake, &cache));
    let make = |client| {
        let mut ctx = context(client, &index.url, store.clone(), 8);
        ctx.scratch = dir.path().to_owned();
        ctx
    };
    let (sent, _) = reconcile_github(&pkg, vec![], make).await;
    assert_eq!(names(&applied_jobs(&sent)), ["tool-1-1-lock"]);
    let release = fake.releases()[0].id.to_string();

    // The lock Job, another process, records the lock.
    let js = job_store(&fake, dir.path());
    let r = js
        .release(
            &pkg_name(),
            &hermit_pex::release::ReleaseId(release.clone()),
        )
        .await
        .unwrap();
    let r = releases::lock(&js, &r, dir.path(), false).await;
    let lock_done = job("1.1", "lock", &release, 2, "succeeded");
    let (sent, _) = reconcile_github(&pkg, vec![lock_done.clone()], make).await;
    assert_eq!(applied_jobs(&sent).len(), 4, "one build Job per platform");

    // Three finish in some order; the fourth is still running when the controller looks.
    let order = [Platform::ALL[2], Platform::ALL[0], Platform::ALL[3]];
    for p in order {
        releases::build(&job_store(&fake, dir.path()), &r, dir.path(), &[p]).await;
    }
    let mut jobs = vec![lock_done.clone()];
    for p in Platform::ALL {
        let state = if p == Platform::ALL[1] {
            "running"
        } else {
            "succeeded"
        };
        jobs.push(job("1.1", &p.to_string(), &release, 2, state));
    }
    let (sent, requeue) = reconcile_github(&pkg, jobs.clone(), make).await;
    assert!(events(&sent, "Released").is_empty());
    assert!(requeue <= Duration::from_secs(60), "{requeue:?}");

    // The last one finishes: its watch event reconciles, the view (listed moments ago) does not
    // show its upload, and yet the version is published in this very reconcile.
    releases::build(
        &job_store(&fake, dir.path()),
        &r,
        dir.path(),
        &[Platform::ALL[1]],
    )
    .await;
    jobs[2] = job("1.1", "linux-arm64", &release, 2, "succeeded");
    let (sent, requeue) = reconcile_github(&pkg, jobs, make).await;
    assert_eq!(events(&sent, "Released")[0]["note"], "released 1.1");
    let status = status_of(&sent);
    assert_eq!(
        condition(status, "Ready").unwrap()["status"],
        "True",
        "{status}"
    );
    assert!(requeue > Duration::from_secs(60), "settled: {requeue:?}");
    let all = fake.releases();
    assert_eq!(all.len(), 1, "one release for the tag");
    assert!(!all[0].draft);
    let body = all[0].body.as_deref().unwrap();
    for p in Platform::ALL {
        assert!(
            body.contains(&format!("\"{p}\"")),
            "{p} in the build info: {body}"
        );
    }
}

#[tokio::test]
async fn drafts_made_beforehand_are_consolidated_into_the_oldest_with_an_event() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let index = index().await;
    let pkg = one_version();
    // Four Jobs of an older hermit-pex each made a draft of one tag, one asset each.
    let info = releases::info_for(&tool_spec(), "1.1");
    let mut made = Vec::new();
    for _ in 0..4 {
        made.push(job_store(&fake, dir.path()).create(&info).await.unwrap());
    }
    let js = job_store(&fake, dir.path());
    let oldest = releases::lock(&js, &made[0], dir.path(), false).await;
    releases::build(&js, &oldest, dir.path(), &Platform::ALL[..1]).await;
    for (i, r) in made.iter().enumerate().skip(1) {
        let r = releases::lock(&js, r, dir.path(), false).await;
        releases::build(&js, &r, dir.path(), &Platform::ALL[i..=i]).await;
    }
    assert_eq!(fake.releases().len(), 4);

    let store = Arc::new(github_store(&fake, &dir.path().join("controller")));
    let (sent, _) =
        reconcile_github(&pkg, vec![], |c| context(c, &index.url, store.clone(), 8)).await;
    let left = fake.releases();
    assert_eq!(left.len(), 1, "one draft left");
    assert_eq!(left[0].id.to_string(), oldest.id.0, "the oldest is kept");
    let event = events(&sent, "DraftsConsolidated");
    assert_eq!(event.len(), 1, "{sent:?}");
    assert!(
        event[0]["note"]
            .as_str()
            .unwrap()
            .contains("discarded 3 drafts"),
        "{}",
        event[0]
    );
    // What the others held is built again into the kept one.
    let started = names(&applied_jobs(&sent));
    assert_eq!(
        started,
        [
            "tool-1-1-linux-arm64",
            "tool-1-1-darwin-amd64",
            "tool-1-1-darwin-arm64"
        ]
    );
    for j in applied_jobs(&sent) {
        assert_eq!(
            j["metadata"]["annotations"]["hermit-pex.dev/release"],
            oldest.id.0.as_str()
        );
    }
}

#[tokio::test]
async fn a_failed_build_info_write_leaves_a_draft_never_a_release_with_an_empty_body() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let index = index().await;
    let pkg = one_version();
    let js = job_store(&fake, dir.path());
    let r = js
        .create(&releases::info_for(&tool_spec(), "1.1"))
        .await
        .unwrap();
    let r = releases::lock(&js, &r, dir.path(), false).await;
    releases::build(&js, &r, dir.path(), &Platform::ALL).await;
    for status in [422, 403] {
        fake.inject(Fault::Status {
            method: "PATCH",
            path_contains: "/releases/",
            status,
        });
    }
    let store = Arc::new(github_store(&fake, &dir.path().join("controller")));
    let ctx = |c| {
        let mut ctx = context(c, &index.url, store.clone(), 8);
        ctx.scratch = dir.path().to_owned();
        ctx
    };
    let (sent, _) = reconcile_github(&pkg, vec![], ctx).await;
    assert!(fake.releases()[0].draft, "not published");
    let warned = events(&sent, "PublishFailed");
    assert_eq!(warned.len(), 1, "{sent:?}");
    let status = status_of(&sent);
    assert_eq!(status["failures"][0]["reason"], "NotPublished");
    assert!(condition(status, "Stalled").is_none(), "retried");

    let (sent, _) = reconcile_github(&pkg, vec![], ctx).await;
    assert!(fake.releases()[0].draft, "refused again: {sent:?}");
    let (sent, _) = reconcile_github(&pkg, vec![], ctx).await;
    let published = &fake.releases()[0];
    assert!(
        !published.draft,
        "published once the write goes through: {sent:?}"
    );
    let body = published.body.as_deref().unwrap();
    let info = body
        .split("```json\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    let info: hermit_pex::release::BuildInfo = serde_json::from_str(info).unwrap();
    assert_eq!(info.incomplete(&Platform::ALL), None, "{info:?}");
    assert_eq!(info.locked.unwrap().pins, ["tool==1.1"]);
}

/// Runs `pkg` to Ready the way a cluster would: each reconcile's new Jobs "run" (their outputs
/// written into the store as the Job would) and complete; their completion is a watch event,
/// so the next reconcile comes at once. Returns (Jobs made, lock Jobs made, reconciles, and
/// the simulated seconds from the last Job's completion to Ready=True).
async fn to_ready(pkg: &PythonPackage, pure: bool) -> (usize, usize, usize, u64) {
    let (dir, store) = store();
    let store = Arc::new(store);
    let index = index().await;
    let mut jobs: Vec<Value> = Vec::new();
    let (mut made, mut locks, mut reconciles) = (0, 0, 0);
    let mut pkg = pkg.clone();
    let mut since_last_completion = None;
    for _ in 0..20 {
        let (client, server) = api_server(pkg.clone(), jobs.clone(), ready_nodes(), vec![]);
        let requeue =
            reconcile_with(pkg.clone(), context(client, &index.url, store.clone(), 8)).await;
        reconciles += 1;
        let sent = server.await.unwrap();
        if let Some((_, _, body)) = sent
            .iter()
            .find(|(m, u, _)| m == "PATCH" && u.contains("/status"))
        {
            pkg.status = Some(serde_json::from_value(body["status"].clone()).unwrap());
        }
        let ready = pkg.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            return (made, locks, reconciles, since_last_completion.unwrap_or(0));
        }
        let new = applied_jobs(&sent);
        if new.is_empty() {
            // Nothing started: the next reconcile is the one it asked for.
            since_last_completion = since_last_completion.map(|t: u64| t + requeue.as_secs());
            continue;
        }
        for job in new {
            made += 1;
            let labels = &job["metadata"]["labels"];
            let release = job["metadata"]["annotations"]["hermit-pex.dev/release"]
                .as_str()
                .unwrap();
            let r = store
                .release(&pkg_name(), &hermit_pex::release::ReleaseId(release.into()))
                .await
                .unwrap();
            if labels["hermit-pex.dev/step"] == "lock" {
                locks += 1;
                let r = releases::lock(&*store, &r, dir.path(), pure).await;
                if pure {
                    releases::build(&*store, &r, dir.path(), &Platform::ALL).await;
                }
            } else {
                let p: Platform = labels["hermit-pex.dev/platform"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                releases::build(&*store, &r, dir.path(), &[p]).await;
            }
            let mut listed = job.clone();
            listed["status"] = json!({"succeeded": 1});
            jobs.retain(|j| j["metadata"]["name"] != job["metadata"]["name"]);
            jobs.push(listed);
        }
        since_last_completion = Some(0);
    }
    panic!("not Ready after 20 reconciles: {:?}", pkg.status);
}

/// The figures of the unit of work: Jobs and locks per version, and how long after its last
/// Job a version is Ready (the completion's watch event reconciles at once).
#[tokio::test]
async fn a_version_takes_one_lock_and_one_job_when_pure_else_one_per_platform_and_is_ready_at_once()
{
    let pkg = one_version();
    let (jobs, locks, reconciles, after) = to_ready(&pkg, true).await;
    println!(
        "pure version: {jobs} Jobs, {locks} lock, {reconciles} reconciles, Ready {after} s after its last Job"
    );
    assert_eq!((jobs, locks), (1, 1));
    assert!(after <= 10, "{after} s");
    let (jobs, locks, reconciles, after) = to_ready(&pkg, false).await;
    println!(
        "non-pure version: {jobs} Jobs, {locks} lock, {reconciles} reconciles, Ready {after} s after its last Job"
    );
    assert_eq!((jobs, locks), (5, 1));
    assert!(after <= 10, "{after} s");
}

/// A platform recorded as impossible holds back a version whose config wants every platform;
/// it is tried again when asked (`requested-at`), not on every loop.
#[tokio::test]
async fn a_platform_that_could_not_exist_is_tried_again_when_asked() {
    let (dir, store) = store();
    let strict = |extra: &str| {
        let mut p = package(&format!("partialPlatforms: false\n{extra}"));
        p.spec.package.versions[0].version = hermit_pex::spec::PyVersion("1.1".parse().unwrap());
        p
    };
    let made = drafts(dir.path(), &store, &["1.1"], &Platform::ALL[..3]).await;
    releases::cannot_exist(
        &store,
        &made[0],
        dir.path(),
        Platform::ALL[3],
        "no wheel of native-dep",
    )
    .await;
    let sent = run(strict(""), vec![], store, 8).await;
    assert!(applied_jobs(&sent).is_empty(), "{sent:?}");
    let status = status_of(&sent).clone();
    assert_eq!(status["failures"][0]["reason"], "NoWheelForPlatform");
    assert_eq!(condition(&status, "Stalled").unwrap()["status"], "True");

    // The same again: nothing tried.
    let mut pkg = strict("");
    pkg.status = Some(serde_json::from_value(status.clone()).unwrap());
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    let sent = run(pkg.clone(), vec![], store, 8).await;
    assert!(applied_jobs(&sent).is_empty(), "{sent:?}");

    // Asked: its Job is made again.
    pkg.metadata.annotations.get_or_insert_default().insert(
        "hermit-pex.dev/requested-at".into(),
        "2026-12-01T10:00:00Z".into(),
    );
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    let sent = run(pkg, vec![], store, 8).await;
    assert_eq!(names(&applied_jobs(&sent)), ["tool-1-1-darwin-arm64"]);
    assert_eq!(status_of(&sent)["requestedAt"], "2026-12-01T10:00:00Z");
}

/// A bare repository made here with `tags`, each on its own commit; (its file:// URL, tag →
/// commit).
fn tagged_repository(dir: &std::path::Path, tags: &[&str]) -> (String, HashMap<String, String>) {
    let work = dir.join("work");
    let git = |args: &[&str]| common::git(&work, args);
    std::fs::create_dir_all(&work).unwrap();
    git(&["init", "-q", "-b", "main"]);
    let mut commits = HashMap::new();
    for tag in tags {
        std::fs::write(work.join("pyproject.toml"), format!("# {tag}\n")).unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", tag]);
        git(&["tag", "-a", tag, "-m", tag]);
        commits.insert(tag.to_string(), git(&["rev-parse", "HEAD"]));
    }
    let bare = dir.join("tool.git");
    git(&["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
    (format!("file://{}", bare.display()), commits)
}

#[tokio::test]
async fn a_git_source_is_listed_by_its_tags_and_its_lock_jobs_check_out_the_tag_with_the_secret() {
    let (dir, store) = store();
    let (url, commits) = tagged_repository(dir.path(), &["v1.0", "v1.1", "vnext"]);
    let pkg = package(&format!("source: {{git: \"{url}\"}}\n"));
    let index = index().await;
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.targets = Targets::new(
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        None,
    )
    .allowing_sources(vec![format!("file://{}/*", dir.path().display())]);
    ctx.jobs.git.token_secret = Some(("git-creds".into(), "token".into()));
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let jobs = applied_jobs(&sent);
    assert_eq!(
        names(&jobs),
        ["tool-1-1-lock", "tool-1-0-lock"],
        "vnext is no version"
    );
    for job in &jobs {
        let version = job["metadata"]["annotations"]["hermit-pex.dev/version"]
            .as_str()
            .unwrap();
        let tag = format!("v{version}");
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        for pair in [
            ["--git", url.as_str()],
            ["--git-tag", tag.as_str()],
            ["--git-commit", commits[&tag].as_str()],
        ] {
            assert!(args.windows(2).any(|w| w == pair), "{pair:?} in {args:?}");
        }
        let token = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "HERMIT_PEX_GIT_TOKEN")
            .expect("the lock Job reads the repository with the token");
        assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "git-creds");
    }

    // The same resource on a controller that did not allow the repository: Invalid, no Job.
    let pkg = package(&format!("source: {{git: \"{url}\"}}\n"));
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let (_other, store) = self::store();
    let ctx = context(client, &index.url, store, 8);
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let status = status_of(&sent);
    let ready = condition(status, "Ready").unwrap();
    assert_eq!(ready["reason"], "Invalid");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.source.git") && message.contains("--allow-source-repository"),
        "{message}"
    );
    assert!(applied_jobs(&sent).is_empty());
}

/// An index that refuses the controller (no or wrong credentials): the resource is Stalled with
/// a message naming the index and the variables to set, not retried as if the index were down.
#[tokio::test]
async fn an_index_that_refuses_access_stalls_the_resource_naming_the_variables() {
    let (_dir, store) = store();
    let pkg = package("");
    let index = index().await;
    index.state.lock().unwrap().faults = vec![(401, None)];
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), Vec::new());
    let ctx = context(client, &index.url, store, 8);
    let requeue = reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    assert!(
        requeue >= Duration::from_secs(60),
        "retried hot: {requeue:?}"
    );
    let status = status_of(&sent);
    let ready = condition(status, "Ready").unwrap();
    assert_eq!(ready["reason"], "Invalid", "{ready}");
    assert!(condition(status, "Stalled").is_some(), "{status}");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains("HTTP 401") && message.contains("HERMIT_PEX_INDEX_USERNAME"),
        "{message}"
    );
    assert!(!sent.iter().any(|(_, u, _)| u.contains("/jobs")));
}

/// `spec.index` names one of the operator's indexes: versions are observed there (the default
/// index here is down), and its Jobs are made; a name the operator did not define is Invalid,
/// naming the field and the names there are.
#[tokio::test]
async fn spec_index_observes_the_named_index_and_refuses_an_unknown_name() {
    let (_dir, first) = store();
    let team = index().await;
    let pkg = package("index: team\n");
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), Vec::new());
    let ctx = context(client, "http://127.0.0.1:1/simple/", first, 8);
    let named = BTreeMap::from([(
        "team".to_owned(),
        IndexClient::new(&team.url, None).unwrap(),
    )]);
    // The controller's flags give both: its own client, and the Jobs' URL and Secret.
    let mut jobs = ctx.jobs.clone();
    jobs.named_indexes.insert(
        "team".into(),
        JobIndex {
            url: team.url.clone(),
            credentials_secret: Some("team-creds".into()),
        },
    );
    let ctx = Context {
        targets: ctx.targets.with_indexes(named),
        jobs,
        ..ctx
    };
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let made = applied_jobs(&sent);
    let container = &made[0]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args.iter().position(|a| *a == "--index-url").unwrap();
    assert_eq!(
        args[at + 1],
        team.url,
        "the Job resolves from the named index"
    );
    assert!(
        container["env"].to_string().contains("team-creds"),
        "{container}"
    );
    assert!(!applied_jobs(&sent).is_empty(), "{sent:?}");
    assert!(!team.statuses().is_empty(), "the named index was asked");

    let (_dir2, second) = store();
    let pkg = package("index: nope\n");
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), Vec::new());
    let ctx = context(client, &team.url, second, 8);
    let named = BTreeMap::from([
        (
            "team".to_owned(),
            IndexClient::new(&team.url, None).unwrap(),
        ),
        ("ml".to_owned(), IndexClient::new(&team.url, None).unwrap()),
    ]);
    let ctx = Context {
        targets: ctx.targets.with_indexes(named),
        ..ctx
    };
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let status = status_of(&sent);
    let ready = condition(status, "Ready").unwrap();
    assert_eq!(ready["reason"], "Invalid", "{ready}");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.index nope") && message.contains("ml, team"),
        "{message}"
    );
    assert!(applied_jobs(&sent).is_empty());
}

/// Two versions released and committed one after the other, minutes apart at most, through
/// one recorder (as in the controller process): each decision is its own event with its own
/// note, not a count on the first one's (kube folds events of one reason and action).
#[tokio::test]
async fn each_versions_release_and_commit_is_its_own_event() {
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.0"], &Platform::ALL).await;
    drafts(dir.path(), &store, &["1.1"], &Platform::ALL[..3]).await;
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
    let ctx = Arc::new(ctx);
    let once = || async {
        tokio::time::timeout(
            Duration::from_secs(20),
            reconcile(Arc::new(pkg.clone()), ctx.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    };
    once().await; // 1.0 released and committed; 1.1 waits for darwin-arm64
    let r = DirStore::new(dir.path().join("releases"), None).unwrap();
    let draft = r
        .release(
            &pkg_name(),
            &hermit_pex::release::ReleaseId("tool-v1.1".into()),
        )
        .await
        .unwrap();
    releases::build(&r, &draft, dir.path(), &Platform::ALL[3..]).await;
    once().await; // 1.1 released and committed
    drop(ctx);
    let sent = server.await.unwrap();

    let notes = |reason: &str| -> Vec<String> {
        events(&sent, reason)
            .iter()
            .map(|e| e["note"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(notes("Released"), ["released 1.0", "released 1.1"]);
    let log = git_log(&bare);
    let sha = |i: usize| log[i].split_once(' ').unwrap().0.to_owned();
    assert_eq!(
        notes("ManifestCommitted"),
        [
            format!("committed {} (+1.0)", sha(1)),
            format!("committed {} (+1.1)", sha(0))
        ]
    );
    assert!(
        !sent
            .iter()
            .any(|(m, u, _)| m == "PATCH" && u.contains("/events/")),
        "no event became a count on an earlier one"
    );
}

/// A published release whose linux-amd64 tarball was swapped for other bytes (its digest in
/// the store updated to match, as an attacker would): that platform is not listed; the status
/// records the mismatch naming both digests, with a warning event once.
#[tokio::test]
async fn a_published_asset_that_is_not_what_was_built_is_reported_and_not_listed() {
    let (dir, store) = store();
    drafts(dir.path(), &store, &["1.1"], &Platform::ALL).await;
    let index = index().await;
    let pkg = one_version();
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    reconcile_with(pkg.clone(), context(client, &index.url, store, 8)).await;
    assert_eq!(events(&server.await.unwrap(), "Released").len(), 1);

    let release = dir.path().join("releases/tool-v1.1");
    let tarball = release.join("tool-linux-amd64.tar.gz");
    let built = hermit_pex::digest::sha256_file(&tarball).unwrap().1;
    std::fs::write(&tarball, b"other bytes entirely").unwrap();
    let (size, swapped) = hermit_pex::digest::sha256_file(&tarball).unwrap();
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(release.join("release.json")).unwrap()).unwrap();
    file["assets"]["tool-linux-amd64.tar.gz"] = json!([size, swapped]);
    std::fs::write(release.join("release.json"), file.to_string()).unwrap();

    let (bare, sink) = git_sink(dir.path());
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
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
    reconcile_with(pkg.clone(), ctx).await;
    let sent = server.await.unwrap();
    let status = status_of(&sent).clone();
    let record = status["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "AssetMismatch")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(record["platform"], "linux-amd64");
    let message = record["message"].as_str().unwrap();
    assert!(
        message.contains(&built) && message.contains(&swapped),
        "{message}"
    );
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "False");
    let warned = events(&sent, "AssetMismatch");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["type"], "Warning");
    assert!(warned[0]["note"].as_str().unwrap().contains(&swapped));

    let text = String::from_utf8(
        std::process::Command::new("git")
            .args(["--git-dir", bare.to_str().unwrap(), "show", "main:tool.hcl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!text.contains(&swapped), "{text}");
    let r = common::hermit_resolve::resolve(&text, "1.1", "linux", "amd64").unwrap();
    assert!(r.source.is_none(), "linux-amd64 not listed: {text}");
    let r = common::hermit_resolve::resolve(&text, "1.1", "darwin", "arm64").unwrap();
    assert!(r.source.is_some(), "the others are: {text}");

    // The same state again: the record stays, the warning is not sent again.
    let mut pkg = pkg;
    pkg.status = Some(serde_json::from_value(status).unwrap());
    let (client, server) = api_server(pkg.clone(), vec![], ready_nodes(), vec![]);
    let mut ctx = context(
        client,
        &index.url,
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        8,
    );
    let (_, sink) = git_sink(&dir.path().join("again"));
    ctx.targets = Targets::new(
        DirStore::new(dir.path().join("releases"), None).unwrap(),
        None,
    )
    .with_sink(Box::new(sink));
    reconcile_with(pkg, ctx).await;
    assert!(events(&server.await.unwrap(), "AssetMismatch").is_empty());
}

const FLAVOURS: &str = r#"
flavours:
  deb:
    image: registry.example/builder-bookworm:1
    install: [apt-get, install, -y, --no-install-recommends]
    family: deb
    buildPackages: [gcc]
  deb-install:
    image: registry.example/builder-bookworm:1
    install: [sh, -c, 'apt-get update -q && apt-get install -y -q "$@"', install]
    family: deb
    buildPackages: [gcc]
    installPackages: true
"#;

/// Reconciles a package of `flavour` whose versions are locked (their sdists are built by the
/// build Jobs, natively) with these Jobs and pods; what was sent.
async fn run_flavoured(flavour: &str, jobs: Vec<Value>, pods: Vec<Value>) -> Vec<Sent> {
    let pkg = package(&format!(
        "build:\n  flavour: {flavour}\n  buildPackages: [libffi-dev]\n"
    ));
    let (dir, store) = store();
    for v in ["1.0", "1.1"] {
        let r = store
            .create(&releases::info_for(&pkg.spec.package, v))
            .await
            .unwrap();
        releases::lock(&store, &r, dir.path(), false).await;
    }
    let index = index().await;
    let (client, server) = api_server(pkg.clone(), jobs, ready_nodes(), pods);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.jobs.flavours = hermit_pex::flavour::Flavours::parse(FLAVOURS).unwrap();
    reconcile_with(pkg, ctx).await;
    server.await.unwrap()
}

fn pod_of(job: &Value) -> &Value {
    &job["spec"]["template"]["spec"]
}

/// Where the operator lets a flavour install packages, each Job of the package gets one init
/// container, running as root, with exactly the validated list (the flavour's, then the
/// package's) as the arguments of the flavour's command; the build container stays
/// restricted. Where it does not, there is none, and the image must hold them.
#[tokio::test]
async fn an_installing_flavour_gives_each_job_an_init_container_with_exactly_the_validated_list() {
    let sent = run_flavoured("deb-install", vec![], vec![]).await;
    let jobs = applied_jobs(&sent);
    assert_eq!(jobs.len(), 8, "{:?}", names(&jobs));
    for job in &jobs {
        let pod = pod_of(job);
        let init = pod["initContainers"].as_array().expect("an init container");
        assert_eq!(init.len(), 1, "{job}");
        assert_eq!(init[0]["name"], "install-packages");
        assert_eq!(
            init[0]["command"],
            json!([
                "sh",
                "-c",
                "apt-get update -q && apt-get install -y -q \"$@\"",
                "install"
            ])
        );
        assert_eq!(init[0]["args"], json!(["gcc", "libffi-dev"]));
        assert_eq!(init[0]["securityContext"]["runAsUser"], 0);
        assert_eq!(init[0]["image"], "registry.example/builder-bookworm:1");
        let build = &pod["containers"][0];
        assert_eq!(build["image"], "registry.example/builder-bookworm:1");
        assert_eq!(build["securityContext"]["runAsNonRoot"], true);
        assert_eq!(build["securityContext"]["readOnlyRootFilesystem"], true);
        assert!(
            build["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--build-packages-installed"))
        );
    }

    let sent = run_flavoured("deb", vec![], vec![]).await;
    let jobs = applied_jobs(&sent);
    assert_eq!(jobs.len(), 8);
    for job in &jobs {
        let pod = pod_of(job);
        assert!(pod.get("initContainers").is_none(), "{job}");
        assert_eq!(
            pod["containers"][0]["image"],
            "registry.example/builder-bookworm:1"
        );
    }
}

/// Without installing, a build whose image lacks a build package fails clearly: the step's
/// own reason, naming the package and the command that installs it, in the status.
#[tokio::test]
async fn a_build_whose_image_lacks_a_build_package_is_reported_naming_it() {
    let (dir, store) = store();
    let pkg = package("build:\n  flavour: deb\n  buildPackages: [libffi-dev]\n");
    let r = store
        .create(&releases::info_for(&pkg.spec.package, "1.1"))
        .await
        .unwrap();
    releases::lock(&store, &r, dir.path(), false).await;
    let r = store.release(&pkg_name(), &r.id).await.unwrap();
    let log = "tool 1.1 linux-amd64: FAILED (MissingBuildPackages): build packages missing on \
               this machine (flavour deb): libffi-dev; an sdist is built here and needs them. \
               hermit-pex installs nothing itself: install them with \
               `apt-get install -y --no-install-recommends libffi-dev`";
    let jobs = vec![job("1.1", "linux-amd64", &r.id.0, 2, "failed")];
    let pods = vec![failed_pod("tool-1-1-linux-amd64", "Error", 1, log)];
    let index = index().await;
    let (client, server) = api_server(pkg.clone(), jobs, ready_nodes(), pods);
    let mut ctx = context(client, &index.url, store, 8);
    ctx.jobs.flavours = hermit_pex::flavour::Flavours::parse(FLAVOURS).unwrap();
    reconcile_with(pkg, ctx).await;
    let sent = server.await.unwrap();
    let status = status_of(&sent);
    let failure = status["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["platform"] == "linux-amd64")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(failure["reason"], "MissingBuildPackages");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains("libffi-dev") && message.contains("apt-get install"),
        "{message}"
    );
}
