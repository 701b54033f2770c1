//! The webhook receiver: `POST /hook/{namespace}/{name}` on the controller's HTTP port. A Git
//! host that pushes a tag calls it, signed with a secret it shares with the controller, and
//! that PythonPackage is reconciled at once instead of at its next interval.
//!
//! The signature is checked over the raw body before anything else is looked at: a caller
//! without the secret gets 401 and learns nothing (not even whether the resource exists).
//! The route only exists when a secret is configured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{DefaultBodyLimit, Path, State};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use kube::runtime::reflector::ObjectRef;
use sha2::Sha256;
use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::resource::PythonPackage;
use crate::spec::rules::is_dns_label;

/// The environment variable that holds the secret; set, it turns the receiver on.
pub use crate::credentials::WEBHOOK_SECRET_ENV as SECRET_ENV;

/// GitHub's own limit on a delivery is 25 MB, but a push event that only names refs is far
/// smaller: 1 MiB keeps an unauthenticated caller from making the controller buffer much.
pub const MAX_BODY: usize = 1 << 20;

/// Wakes waiting for the controller; more are refused with 503 until it catches up (each
/// one is a whole reconcile, so a backlog this long means the controller is not keeping up).
pub const QUEUE: usize = 256;

/// The shared secret. Its bytes never reach a log line, an error or `Debug`.
#[derive(Clone)]
pub struct HookSecret(Arc<[u8]>);

impl HookSecret {
    /// None for an empty secret: an empty key would make every signature easy to forge.
    pub fn new(bytes: impl AsRef<[u8]>) -> Option<Self> {
        let bytes = bytes.as_ref();
        (!bytes.is_empty()).then(|| Self(bytes.into()))
    }
}

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSecret(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HookError {
    #[error("no signature (X-Hub-Signature-256, X-Gitea-Signature or X-Forgejo-Signature)")]
    Missing,
    #[error("the signature is not sha256=<hex>")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks a GitHub `X-Hub-Signature-256` value (`sha256=<hex HMAC-SHA256 of the body>`).
pub fn verify(secret: &HookSecret, body: &[u8], header: &str) -> Result<(), HookError> {
    let hex = header.strip_prefix("sha256=").ok_or(HookError::Malformed)?;
    verify_hex(secret, body, hex)
}

/// Checks a hex HMAC-SHA256 of `body` (Gitea's and Forgejo's header is just this).
fn verify_hex(secret: &HookSecret, body: &[u8], hex: &str) -> Result<(), HookError> {
    let expected = hex::decode(hex.trim()).map_err(|_| HookError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    mac.update(body);
    // Constant time: a comparison that stops at the first wrong byte would let a caller
    // find the signature byte by byte from response times.
    mac.verify_slice(&expected).map_err(|_| HookError::Mismatch)
}

/// Checks whichever signature header the request carries (GitHub's first).
pub fn verify_headers(
    secret: &HookSecret,
    body: &[u8],
    headers: &HeaderMap,
) -> Result<(), HookError> {
    if let Some(v) = headers.get("x-hub-signature-256") {
        return verify(secret, body, text(v)?);
    }
    for name in ["x-gitea-signature", "x-forgejo-signature"] {
        if let Some(v) = headers.get(name) {
            return verify_hex(secret, body, text(v)?);
        }
    }
    Err(HookError::Missing)
}

fn text(v: &http::HeaderValue) -> Result<&str, HookError> {
    v.to_str().map_err(|_| HookError::Malformed)
}

/// What an (authenticated) event asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Ping,
    /// A tag was pushed or created: its name.
    Tag(String),
    /// Anything else (a branch push, another kind of event): what it was, for the reply.
    Other(String),
}

/// Reads the event from its kind header and JSON body. None: the body is not a JSON event.
pub fn event(headers: &HeaderMap, body: &[u8]) -> Option<Event> {
    // Gitea and Forgejo send X-GitHub-Event too, but their own header is the documented one.
    let kind = ["x-github-event", "x-gitea-event", "x-forgejo-event"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok())
        .unwrap_or("");
    if kind == "ping" {
        return Some(Event::Ping);
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let field = |k: &str| json.get(k).and_then(|v| v.as_str());
    let tag = match kind {
        "push" => field("ref").and_then(|r| r.strip_prefix("refs/tags/")),
        "create" if field("ref_type") == Some("tag") => field("ref"),
        _ => None,
    };
    Some(match tag {
        Some(t) if !t.is_empty() => Event::Tag(t.to_owned()),
        _ => Event::Other(match field("ref") {
            Some(r) if !kind.is_empty() => format!("{kind} of {r}"),
            _ if !kind.is_empty() => kind.to_owned(),
            _ => "an event without X-GitHub-Event".to_owned(),
        }),
    })
}

/// A resource name: an RFC 1123 subdomain (labels joined by dots, at most 253 characters).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// What the handler needs: the secret, where wakes go, and whether this replica acts on them.
#[derive(Clone)]
pub struct Hook {
    pub secret: HookSecret,
    pub wake: mpsc::Sender<ObjectRef<PythonPackage>>,
    /// False on a standby replica (leader election): its wakes would never be acted on.
    pub active: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

/// The receiver's route, to merge into the HTTP router.
pub fn routes(hook: Hook) -> axum::Router {
    axum::Router::new()
        .route("/hook/{namespace}/{name}", axum::routing::post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(hook)
}

type Reply = (StatusCode, String);

async fn receive(
    State(hook): State<Hook>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    if let Err(e) = verify_headers(&hook.secret, &body, &headers) {
        // Neither the signature nor the secret: only what was wrong, and where it was sent.
        // Debug, so that a caller's newlines in the path cannot forge log lines.
        tracing::warn!(?namespace, ?name, problem = %e, "webhook refused");
        hook.metrics.webhook("refused");
        return (StatusCode::UNAUTHORIZED, format!("{e}\n"));
    }
    if !is_dns_label(&namespace) || !is_dns_subdomain(&name) {
        hook.metrics.webhook("invalid");
        return reply(
            StatusCode::BAD_REQUEST,
            "the path is not /hook/<namespace>/<name> of a Kubernetes resource",
        );
    }
    match event(&headers, &body) {
        None => {
            hook.metrics.webhook("invalid");
            reply(
                StatusCode::BAD_REQUEST,
                "the body is not a JSON event: set the webhook's content type to application/json",
            )
        }
        Some(Event::Ping) => reply(StatusCode::OK, "pong"),
        Some(Event::Other(what)) => {
            hook.metrics.webhook("ignored");
            reply(StatusCode::OK, &format!("ignored: {what} is not a tag"))
        }
        Some(Event::Tag(tag)) => wake(&hook, &namespace, &name, &tag),
    }
}

/// Queues a reconcile of the package. A resource that does not exist is not reconciled (the
/// controller only runs what its watch has seen), so the answer does not depend on it.
fn wake(hook: &Hook, namespace: &str, name: &str, tag: &str) -> Reply {
    if !hook.active.load(Ordering::Relaxed) {
        hook.metrics.webhook("standby");
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "this replica is on standby: send webhooks to the leader",
        );
    }
    let target = ObjectRef::<PythonPackage>::new(name).within(namespace);
    match hook.wake.try_send(target) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(%namespace, %name, %tag, "webhook: too many wakes waiting; not queued");
            hook.metrics.webhook("busy");
            return reply(StatusCode::SERVICE_UNAVAILABLE, "busy: try again later");
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            hook.metrics.webhook("busy");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "the controller is stopping",
            );
        }
    }
    tracing::info!(%namespace, %name, %tag, "woken by a tag push: {namespace}/{name} tag={tag}");
    hook.metrics.webhook("woken");
    reply(StatusCode::ACCEPTED, &format!("woken: {namespace}/{name}"))
}

fn reply(code: StatusCode, message: &str) -> Reply {
    (code, format!("{message}\n"))
}

#[cfg(test)]
mod tests;
