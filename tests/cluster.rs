//! Against a real cluster (opt-in: `cargo test --test cluster -- --ignored`, with KUBECONFIG
//! pointing at a disposable cluster, e.g. kind). Installs the CRD, checks the API server refuses
//! a bad resource, applies `cowsay` in a fresh namespace and runs the reconciler in this process
//! (releases in a temporary directory, the index pypi.org) until its build Jobs appear. Cleans
//! up the namespace; leaves the CRD.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hermit_pex::controller::jobs::{JobSettings, MANAGED_BY, PlatformTable};
use hermit_pex::controller::reconcile::{Context, reconcile};
use hermit_pex::controller::resource::PythonPackage;
use hermit_pex::controller::targets::Targets;
use hermit_pex::pypi::IndexClient;
use hermit_pex::release::dir::DirStore;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::wait::{await_condition, conditions};

const NS: &str = "hermit-pex-cluster-test";

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG"]
async fn a_resource_in_a_real_cluster_gets_build_jobs() {
    let client = kube::Client::try_default().await.expect("a cluster");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_norway::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/pythonpackage.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let apply = PatchParams::apply("hermit-pex-test").force();
    crds.patch("pythonpackages.hermit-pex.dev", &apply, &Patch::Apply(&crd))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(
            crds,
            "pythonpackages.hermit-pex.dev",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap();
    namespaces
        .patch(NS, &apply, &Patch::Apply(&ns))
        .await
        .unwrap();

    let packages: Api<PythonPackage> = Api::namespaced(client.clone(), NS);
    let bad = serde_json::json!({"apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage",
        "metadata": {"name": "bad"}, "spec": {"package": "a;b", "binaries": [], "versions": [{"version": "1.0", "python": "3.12"}]}});
    let refused = packages.patch("bad", &apply, &Patch::Apply(&bad)).await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref e)) if e.code == 422),
        "{refused:?}"
    );

    let good = serde_json::json!({"apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage",
        "metadata": {"name": "cowsay"}, "spec": {"package": "cowsay", "binaries": ["cowsay"],
        "versions": [{"version": "6.1", "python": "3.12"}]}});
    packages
        .patch("cowsay", &apply, &Patch::Apply(&good))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(Context {
        client: client.clone(),
        index: IndexClient::new("https://pypi.org/simple/", None).unwrap(),
        targets: Targets::new(
            DirStore::new(dir.path().join("releases"), None).unwrap(),
            None,
        ),
        table: PlatformTable::default(),
        jobs: JobSettings {
            active_deadline_seconds: 600,
            backoff_limit: 0,
            ttl_seconds_after_finished: 600,
            ..JobSettings::new("ghcr.io/example/hermit-pex-builder:test", "example/tools")
        },
        per_package: 2,
        limit: None,
        recorder: None,
        metrics: Arc::default(),
        now: || {
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())
        },
        scratch: dir.path().to_owned(),
        packages: None,
    });
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let controller = Controller::new(packages.clone(), Default::default())
        .owns(jobs.clone(), Default::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(5)),
            ctx,
        )
        .for_each(|_| async {});
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let seen = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::spawn(controller);
        loop {
            let list = jobs
                .list(&ListParams::default().labels(&selector))
                .await
                .unwrap();
            if list.items.len() >= 2 {
                return list.items;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
    .await
    .expect("build Jobs within two minutes");
    assert!(
        seen.iter()
            .all(|j| j.metadata.name.as_deref().unwrap().starts_with("cowsay-"))
    );
    let status = packages.get_status("cowsay").await.unwrap().status.unwrap();
    assert_eq!(status.observed_generation, Some(1));
    namespaces
        .delete(NS, &DeleteParams::default())
        .await
        .unwrap();
}
