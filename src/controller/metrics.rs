//! The controller's Prometheus metrics (served at `/metrics` by `run`). Counters of what other
//! parts already count (index and GitHub requests) are copied in at scrape time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub platform: String,
    pub outcome: String,
}

pub struct Metrics {
    pub reconciles: Family<OutcomeLabels, Counter>,
    pub reconcile_duration: Histogram,
    /// Build Jobs by platform and outcome (`started`, `failed`).
    pub builds: Family<BuildLabels, Counter>,
    pub versions_released: Counter,
    pub manifest_commits: Family<OutcomeLabels, Counter>,
    pub jobs_running: Gauge,
    pub index_requests: Counter<u64, AtomicU64>,
    pub github_requests: Counter<u64, AtomicU64>,
    /// GitHub's `x-ratelimit-remaining` as last seen; -1 before any request.
    pub github_rate_limit_remaining: Gauge<i64, AtomicI64>,
    pub leader: Gauge,
    /// Webhook deliveries by outcome (`woken`, `ignored`, `refused`, `invalid`, `busy`,
    /// `standby`).
    pub webhooks: Family<OutcomeLabels, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("hermit_pex");
        let m = Self {
            reconciles: register(
                &mut r,
                "reconciles",
                "Reconciles of PythonPackages, by outcome",
                Family::default(),
            ),
            reconcile_duration: register(
                &mut r,
                "reconcile_duration_seconds",
                "Time one reconcile took",
                Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            ),
            builds: register(
                &mut r,
                "builds",
                "Build Jobs by platform and outcome",
                Family::default(),
            ),
            versions_released: register(
                &mut r,
                "versions_released",
                "Releases published (draft to published)",
                Counter::default(),
            ),
            manifest_commits: register(
                &mut r,
                "manifest_commits",
                "Manifest commits by outcome",
                Family::default(),
            ),
            jobs_running: register(
                &mut r,
                "jobs_running",
                "Build Jobs not yet finished, all packages",
                Gauge::default(),
            ),
            index_requests: register(
                &mut r,
                "index_requests",
                "Requests to the package index",
                Counter::default(),
            ),
            github_requests: register(
                &mut r,
                "github_requests",
                "Requests to the GitHub API",
                Counter::default(),
            ),
            github_rate_limit_remaining: register(
                &mut r,
                "github_rate_limit_remaining",
                "GitHub API requests left in the current window (-1: not known yet)",
                Gauge::default(),
            ),
            leader: register(
                &mut r,
                "leader",
                "1 while this replica is the active one",
                Gauge::default(),
            ),
            webhooks: register(
                &mut r,
                "webhooks",
                "Webhook deliveries by outcome",
                Family::default(),
            ),
            registry: Registry::default(),
        };
        m.github_rate_limit_remaining.set(-1);
        Self { registry: r, ..m }
    }
}

/// Registers `metric` (a handle sharing its value) and returns it.
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// Counts a Job by what it is for (`lock`, or its platform) and outcome.
    pub fn build(&self, step: &str, outcome: &str) {
        self.builds
            .get_or_create(&BuildLabels {
                platform: step.to_owned(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn reconciled(&self, outcome: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        self.reconcile_duration.observe(seconds);
    }

    pub fn webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Copies in counts kept elsewhere, then encodes everything in the Prometheus text format.
    pub fn encode(&self, index_requests: u64, github: Option<(u64, Option<u64>)>) -> String {
        self.index_requests
            .inner()
            .store(index_requests, Ordering::Relaxed);
        if let Some((requests, remaining)) = github {
            self.github_requests
                .inner()
                .store(requests, Ordering::Relaxed);
            if let Some(r) = remaining {
                self.github_rate_limit_remaining.set(r as i64);
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_named_metrics_with_their_labels() {
        let m = Metrics::default();
        m.build("linux-arm64", "started");
        m.reconciled("ok", 0.002);
        let text = m.encode(7, Some((12, Some(4990))));
        for line in [
            "hermit_pex_builds_total{platform=\"linux-arm64\",outcome=\"started\"} 1",
            "hermit_pex_reconciles_total{outcome=\"ok\"} 1",
            "hermit_pex_reconcile_duration_seconds_count 1",
            "hermit_pex_index_requests_total 7",
            "hermit_pex_github_requests_total 12",
            "hermit_pex_github_rate_limit_remaining 4990",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
