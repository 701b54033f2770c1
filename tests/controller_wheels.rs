//! The controller's wheels step against a mocked Kubernetes API server: once it publishes a
//! complete Git-source draft, the version's wheel goes into the operator's wheel index and is
//! uploaded to the publish index its `spec.publish` names (a real pypiserver with htpasswd);
//! events and `status.wheels` say what went where; a name the operator did not define makes
//! the resource Invalid.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::kube_api::{Sent, node, package};
use common::{Page, PypiServer, ReplayServer, make_wheel, releases};
use hermit_pex::controller::jobs::{JobSettings, PlatformTable};
use hermit_pex::controller::reconcile::{Context, reconcile};
use hermit_pex::controller::targets::Targets;
use hermit_pex::names::Platform;
use hermit_pex::pypi::{Credentials, IndexClient};
use hermit_pex::release::ReleaseStore;
use hermit_pex::release::dir::DirStore;
use hermit_pex::release::info::WheelRecord;
use hermit_pex::wheels::upload::{PublishIndex, Uploader};
use hermit_pex::wheels::{Target, WheelIndex};
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

const USER: &str = "publisher";
const PASSWORD: &str = "pw-Controller-4Kx";

async fn index() -> ReplayServer {
    let body = json!({
        "meta": {"api-version": "1.1"}, "name": "tool",
        "files": [{"filename": "tool-1.0-py3-none-any.whl",
            "url": "https://files.example/tool-1.0-py3-none-any.whl", "hashes": {"sha256": "00"}}],
        "versions": ["1.0"]
    });
    let page = Page {
        content_type: "application/vnd.pypi.simple.v1+json",
        body: serde_json::to_vec(&body).unwrap(),
        etag: None,
    };
    ReplayServer::start(HashMap::from([("/simple/tool/".to_owned(), page)])).await
}

fn context(client: kube::Client, index_url: &str, targets: Targets<DirStore>) -> Context<DirStore> {
    Context {
        client: client.clone(),
        index: IndexClient::new(index_url, None).unwrap(),
        targets,
        table: PlatformTable::default(),
        jobs: JobSettings::new("builder:test", "acme/tools"),
        per_package: 8,
        limit: None,
        recorder: Some(Recorder::new(
            client,
            Reporter {
                controller: "hermit-pex".into(),
                instance: None,
            },
        )),
        metrics: Arc::default(),
        now: || serde_json::from_value(json!("2026-11-22T10:00:00Z")).unwrap(),
        scratch: std::env::temp_dir(),
        packages: None,
    }
}

fn events<'a>(sent: &'a [Sent], reason: &str) -> Vec<&'a Value> {
    sent.iter()
        .filter(|(m, u, b)| m == "POST" && u.contains("/events") && b["reason"] == reason)
        .map(|(_, _, b)| b)
        .collect()
}

fn status_of(sent: &[Sent]) -> &Value {
    &sent
        .iter()
        .find(|(m, u, _)| m == "PATCH" && u.contains("/status"))
        .expect("a status patch")
        .2["status"]
}

/// A complete draft of tool 1.0 built from Git: every platform built (linux-amd64's test
/// passed), the project's wheel an asset recorded in the lock.
async fn git_draft(dir: &std::path::Path, store: &DirStore) -> String {
    let spec = package("").spec.package;
    let r = store
        .create(&releases::info_for(&spec, "1.0"))
        .await
        .unwrap();
    let r = releases::lock(store, &r, dir, false).await;
    releases::build(store, &r, dir, &Platform::ALL).await;
    let wheels = dir.join("wheels");
    let name = make_wheel(&wheels, "tool", "1.0", &[]);
    let bytes = std::fs::read(wheels.join(&name)).unwrap();
    let (size, sha256) = releases::put(store, &r, dir, &name, &bytes).await;
    let mut info = r.info.clone().unwrap();
    info.locked.as_mut().unwrap().wheel = Some(WheelRecord {
        asset: name.clone(),
        sha256,
        size,
    });
    store.record(&r, &info).await.unwrap();
    name
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_versions_wheel_is_indexed_and_uploaded_and_the_status_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    let wheel = git_draft(dir.path(), &store).await;
    let packages = dir.path().join("private");
    std::fs::create_dir_all(&packages).unwrap();
    let private = PypiServer::start_with_auth(&packages, USER, PASSWORD);
    let upload_url = private.url.strip_suffix("simple/").unwrap().to_owned();
    let uploader = Uploader::new(PublishIndex {
        name: "feed".into(),
        upload_url: upload_url.parse().unwrap(),
        simple_url: private.url.parse().unwrap(),
        credentials: Some(Credentials::new(USER, PASSWORD)),
        variables: "HERMIT_PEX_PUBLISH_FEED_USERNAME and HERMIT_PEX_PUBLISH_FEED_PASSWORD".into(),
    })
    .unwrap();
    let simple = dir.path().join("simple");
    let targets = Targets::new(store, None)
        .with_wheel_index(WheelIndex::new(Target::Dir(simple.clone())))
        .with_publish_indexes(BTreeMap::from([("feed".to_owned(), uploader)]));

    let index = index().await;
    let pkg = package("publish: [feed]\n");
    let nodes = vec![node("a", "amd64", true), node("b", "arm64", true)];
    let (client, server) =
        common::kube_api::api_server("default", pkg.clone(), vec![], nodes, vec![]);
    let ctx = context(client, &index.url, targets);
    tokio::time::timeout(
        Duration::from_secs(60),
        reconcile(Arc::new(pkg), Arc::new(ctx)),
    )
    .await
    .expect("reconcile finished")
    .expect("reconcile succeeded");
    let sent = server.await.unwrap();

    assert_eq!(events(&sent, "Released")[0]["note"], "released 1.0");
    assert!(simple.join("tool").join(&wheel).is_file(), "indexed");
    assert!(packages.join(&wheel).is_file(), "uploaded");
    let indexed = events(&sent, "WheelsIndexed");
    assert_eq!(
        indexed[0]["note"],
        format!("indexed {wheel} in {}", simple.display())
    );
    let published = events(&sent, "WheelsPublished");
    assert_eq!(
        published[0]["note"],
        format!("uploaded {wheel} to feed ({upload_url})")
    );
    let status = status_of(&sent);
    assert_eq!(
        status["wheels"],
        json!([
            {"target": "index", "location": simple.display().to_string(), "last": wheel},
            {"target": "feed", "location": upload_url, "last": wheel}
        ]),
        "{status}"
    );
    let all = serde_json::to_string(&sent).unwrap();
    assert!(
        !all.contains(PASSWORD),
        "the password is in a request to the API"
    );
}

#[tokio::test]
async fn a_publish_index_the_operator_did_not_define_makes_the_resource_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("releases"), None).unwrap();
    let index = index().await;
    let pkg = package("publish: [elsewhere]\n");
    let (client, server) =
        common::kube_api::api_server("default", pkg.clone(), vec![], vec![], vec![]);
    let ctx = context(client, &index.url, Targets::new(store, None));
    reconcile(Arc::new(pkg), Arc::new(ctx)).await.unwrap();
    let sent = server.await.unwrap();
    let status = status_of(&sent);
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "Invalid", "{status}");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains("spec.publish elsewhere") && message.contains("--publish-index"),
        "{message}"
    );
}
