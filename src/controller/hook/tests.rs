use axum::body::Body;
use http::Request;
use tower::ServiceExt;

use super::*;

/// GitHub's documented example ("Validating webhook deliveries").
const SECRET: &str = "It's a Secret to Everybody";
const PAYLOAD: &str = "Hello, World!";
const SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn secret() -> HookSecret {
    HookSecret::new(SECRET).unwrap()
}

#[test]
fn githubs_example_signature_verifies() {
    assert_eq!(verify(&secret(), PAYLOAD.as_bytes(), SIGNATURE), Ok(()));
}

#[test]
fn a_changed_body_secret_or_signature_does_not_verify() {
    assert_eq!(
        verify(&secret(), b"Hello, World?", SIGNATURE),
        Err(HookError::Mismatch)
    );
    let other = HookSecret::new("another secret").unwrap();
    assert_eq!(
        verify(&other, PAYLOAD.as_bytes(), SIGNATURE),
        Err(HookError::Mismatch)
    );
    let truncated = &SIGNATURE[..SIGNATURE.len() - 2];
    assert_eq!(
        verify(&secret(), PAYLOAD.as_bytes(), truncated),
        Err(HookError::Mismatch)
    );
    assert_eq!(
        verify(&secret(), PAYLOAD.as_bytes(), &SIGNATURE["sha256=".len()..]),
        Err(HookError::Malformed),
        "GitHub's header needs its sha256= prefix"
    );
    assert_eq!(
        verify(&secret(), PAYLOAD.as_bytes(), "sha256=not-hex"),
        Err(HookError::Malformed)
    );
}

#[test]
fn gitea_and_forgejo_send_the_bare_hex() {
    for name in ["x-gitea-signature", "x-forgejo-signature"] {
        let mut headers = HeaderMap::new();
        headers.insert(name, SIGNATURE["sha256=".len()..].parse().unwrap());
        assert_eq!(
            verify_headers(&secret(), PAYLOAD.as_bytes(), &headers),
            Ok(()),
            "{name}"
        );
    }
    assert_eq!(
        verify_headers(&secret(), PAYLOAD.as_bytes(), &HeaderMap::new()),
        Err(HookError::Missing)
    );
}

#[test]
fn the_secret_is_not_printed_and_cannot_be_empty() {
    assert_eq!(format!("{:?}", secret()), "HookSecret(..)");
    assert!(HookSecret::new("").is_none());
}

#[test]
fn names_are_checked_as_kubernetes_names() {
    for ok in ["default", "a", "team-1"] {
        assert!(is_dns_label(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"a".repeat(64)] {
        assert!(!is_dns_label(bad), "{bad}");
    }
    assert!(is_dns_subdomain("ruff.v1"));
    assert!(!is_dns_subdomain("ruff..v1"));
    assert!(!is_dns_subdomain(".."));
}

/// A router with a receiver for each wake, and the metrics it counts in.
fn router() -> (
    axum::Router,
    mpsc::Receiver<ObjectRef<PythonPackage>>,
    Arc<Metrics>,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let metrics = Arc::new(Metrics::default());
    let hook = Hook {
        secret: secret(),
        wake: tx,
        active: Arc::new(AtomicBool::new(true)),
        metrics: metrics.clone(),
        packages: None,
    };
    (routes(hook), rx, metrics)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn request(path: &str, event: &str, signature: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::post(path)
        .header("content-type", "application/json")
        .header("x-github-event", event);
    if let Some(s) = signature {
        r = r.header("x-hub-signature-256", s);
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

async fn call(app: axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.oneshot(req).await.unwrap();
    let code = res.status();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    (code, String::from_utf8_lossy(&bytes).into_owned())
}

const TAG_PUSH: &str = r#"{"ref":"refs/tags/v1.2.0","before":"0000","after":"abcd"}"#;

#[tokio::test]
async fn an_unsigned_request_is_refused_and_wakes_nothing() {
    let (app, mut rx, metrics) = router();
    let (code, body) = call(app, request("/hook/tools/ruff", "push", None, TAG_PUSH)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert!(rx.try_recv().is_err(), "nothing queued");
    assert!(
        metrics
            .encode(0, None)
            .contains("hermit_pex_webhooks_total{outcome=\"refused\"} 1")
    );
}

#[tokio::test]
async fn a_badly_signed_request_is_refused_and_wakes_nothing() {
    let (app, mut rx, _) = router();
    let wrong = sign(b"another body");
    let req = request("/hook/tools/ruff", "push", Some(&wrong), TAG_PUSH);
    let (code, body) = call(app, req).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(!body.contains(&wrong[7..]), "the reply does not echo it");
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_bad_signature_to_a_bad_path_is_401_too() {
    // The signature first: without the secret, a caller learns nothing about names.
    let (app, _rx, _) = router();
    let (code, _) = call(app, request("/hook/NOT_A_NS/x", "push", None, TAG_PUSH)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_signed_tag_push_wakes_exactly_that_package() {
    let (app, mut rx, metrics) = router();
    let sig = sign(TAG_PUSH.as_bytes());
    let req = request("/hook/tools/ruff", "push", Some(&sig), TAG_PUSH);
    let (code, body) = call(app, req).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        rx.try_recv().unwrap(),
        ObjectRef::<PythonPackage>::new("ruff").within("tools")
    );
    assert!(rx.try_recv().is_err(), "exactly one wake");
    assert!(
        metrics
            .encode(0, None)
            .contains("hermit_pex_webhooks_total{outcome=\"woken\"} 1")
    );
}

#[tokio::test]
async fn a_created_tag_wakes_the_package() {
    let (app, mut rx, _) = router();
    let body = r#"{"ref":"v2.0.0","ref_type":"tag"}"#;
    let sig = sign(body.as_bytes());
    let (code, _) = call(app, request("/hook/tools/ruff", "create", Some(&sig), body)).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(
        rx.try_recv().unwrap(),
        ObjectRef::<PythonPackage>::new("ruff").within("tools")
    );
}

#[tokio::test]
async fn a_branch_push_or_branch_creation_wakes_nothing() {
    for (event, body) in [
        ("push", r#"{"ref":"refs/heads/main"}"#),
        ("create", r#"{"ref":"main","ref_type":"branch"}"#),
        ("issues", r#"{"action":"opened"}"#),
    ] {
        let (app, mut rx, _) = router();
        let sig = sign(body.as_bytes());
        let (code, reply) = call(app, request("/hook/tools/ruff", event, Some(&sig), body)).await;
        assert_eq!(code, StatusCode::OK, "{event}");
        assert!(reply.starts_with("ignored"), "{event}: {reply}");
        assert!(rx.try_recv().is_err(), "{event}: nothing queued");
    }
}

/// A branch push wakes a package that follows that branch, and no other.
#[tokio::test]
async fn a_push_to_the_branch_a_package_follows_wakes_it() {
    let (store, mut writer) = kube::runtime::reflector::store::<PythonPackage>();
    for (name, source) in [
        (
            "hello",
            "source: {git: \"https://git.example.com/hello.git\", branch: main}\n",
        ),
        (
            "tagged",
            "source: {git: \"https://git.example.com/tagged.git\"}\n",
        ),
    ] {
        let spec: crate::controller::resource::PythonPackageSpec =
            serde_norway::from_str(&format!(
                "package: {name}\nversions: [{{version: \"1.0\", python: \"3.12\"}}]\n{source}"
            ))
            .unwrap();
        let mut pkg = PythonPackage::new(name, spec);
        pkg.metadata.namespace = Some("tools".into());
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pkg));
    }
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let hook = Hook {
        secret: secret(),
        wake: tx,
        active: Arc::new(AtomicBool::new(true)),
        metrics: Arc::new(Metrics::default()),
        packages: Some(store),
    };
    let push = |branch: &str| format!(r#"{{"ref":"refs/heads/{branch}"}}"#);
    for (path, body, woken) in [
        ("/hook/tools/hello", push("main"), true),
        ("/hook/tools/hello", push("dev"), false),
        ("/hook/tools/tagged", push("main"), false),
        ("/hook/tools/nobody", push("main"), false),
    ] {
        let sig = sign(body.as_bytes());
        let (code, reply) = call(
            routes(hook.clone()),
            request(path, "push", Some(&sig), &body),
        )
        .await;
        match woken {
            true => {
                assert_eq!(code, StatusCode::ACCEPTED, "{path} {body}: {reply}");
                assert_eq!(
                    rx.try_recv().unwrap(),
                    ObjectRef::<PythonPackage>::new("hello").within("tools")
                );
            }
            false => {
                assert_eq!(code, StatusCode::OK, "{path} {body}: {reply}");
                assert!(reply.starts_with("ignored: a push to branch"), "{reply}");
                assert!(rx.try_recv().is_err(), "{path} {body}");
            }
        }
    }
}

#[tokio::test]
async fn a_signed_ping_is_answered() {
    let (app, mut rx, _) = router();
    let body = r#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let sig = sign(body.as_bytes());
    let (code, reply) = call(app, request("/hook/tools/ruff", "ping", Some(&sig), body)).await;
    assert_eq!((code, reply.as_str()), (StatusCode::OK, "pong\n"));
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_signed_request_to_an_invalid_name_is_400() {
    let (app, mut rx, _) = router();
    let sig = sign(TAG_PUSH.as_bytes());
    let req = request("/hook/Tools/ruff", "push", Some(&sig), TAG_PUSH);
    assert_eq!(call(app, req).await.0, StatusCode::BAD_REQUEST);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_form_encoded_delivery_is_400_with_a_hint() {
    let (app, _rx, _) = router();
    let body = "payload=%7B%7D";
    let sig = sign(body.as_bytes());
    let (code, reply) = call(app, request("/hook/tools/ruff", "push", Some(&sig), body)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(reply.contains("application/json"), "{reply}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let (app, mut rx, _) = router();
    let body = format!(
        r#"{{"ref":"refs/tags/v1","pad":"{}"}}"#,
        "x".repeat(MAX_BODY)
    );
    let sig = sign(body.as_bytes());
    let req = request("/hook/tools/ruff", "push", Some(&sig), &body);
    assert_eq!(call(app, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_standby_replica_says_so_and_queues_nothing() {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let hook = Hook {
        secret: secret(),
        wake: tx,
        active: Arc::new(AtomicBool::new(false)),
        metrics: Arc::new(Metrics::default()),
        packages: None,
    };
    let sig = sign(TAG_PUSH.as_bytes());
    let req = request("/hook/tools/ruff", "push", Some(&sig), TAG_PUSH);
    assert_eq!(
        call(routes(hook), req).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(rx.try_recv().is_err());
}
