//! A mocked Kubernetes API server (kube's `tower_test` pattern): every request the controller
//! sends is recorded (method, path and query, JSON body) and answered as the test says.

use hermit_pex::controller::resource::{PythonPackage, PythonPackageSpec};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// A request the controller sent: method, path and query, JSON body.
pub type Sent = (String, String, Value);

/// A mocked API server whose client defaults to `namespace`: `reply` answers each (method,
/// path and query, body) with a status code and a JSON body; every request is recorded until
/// the client is dropped.
pub fn mock_api(
    namespace: &str,
    reply: impl Fn(&str, &str, &Value) -> (u16, Value) + Send + 'static,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, namespace);
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

/// Serves the controller as an API server would: lists `jobs`, `nodes` and `pods`, answers
/// deletes, keeps `pkg` with the status written to it, and echoes every applied object.
pub fn api_server<P: serde::Serialize + Send + 'static>(
    namespace: &str,
    pkg: P,
    jobs: Vec<Value>,
    nodes: Vec<Value>,
    pods: Vec<Value>,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    mock_api(namespace, move |method, uri, body| {
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

/// A linux node of `arch`, Ready or not.
pub fn node(name: &str, arch: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

/// The `tool` resource (version 1.0, python 3.12, binary `tool`) in `default`, at generation 2,
/// with `extra` YAML appended to its spec.
pub fn package(extra: &str) -> PythonPackage {
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
