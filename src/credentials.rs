//! Where hermit-pex's secrets come from: environment variables (set by hand, or from a
//! Kubernetes Secret by the chart), never a resource, an argument or a file we write. A
//! leaf: it imports nothing of ours.

/// The webhook receiver's shared secret (the chart's `webhook.secret`).
pub const WEBHOOK_SECRET_ENV: &str = "HERMIT_PEX_WEBHOOK_SECRET";

/// Variables no child program (pex, pip, uv, git) is given: they have no use for them, and a
/// build runs code from the index.
pub const WITHHELD_FROM_CHILDREN: &[&str] = &[WEBHOOK_SECRET_ENV];
