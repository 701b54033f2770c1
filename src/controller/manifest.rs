//! The manifest step of a reconcile: commit the package's manifest when the versions it may
//! list changed since the last commit (or the spec did); otherwise leave the sink alone, so a
//! steady state costs nothing.

use kube::runtime::events::EventType;

use super::metrics::OutcomeLabels;
use super::reconcile::{Context, event};
use super::resource::PythonPackage;
use super::status::ManifestReport;
use super::targets::{SharedSink, StoreTarget};
use crate::hermit;
use crate::release::{Release, ReleaseStore};

/// Commits the package's manifest when the versions it may list changed since the last commit
/// (or the spec did); otherwise leaves the sink alone, so a steady state costs nothing.
pub async fn commit_manifest<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    target: &StoreTarget<S>,
    sink: &SharedSink,
    releases: &[Release],
) -> ManifestReport {
    let spec = &pkg.spec.package;
    let complete = hermit::complete_versions(spec, releases);
    let count = complete.len() as u32;
    let previous = pkg.status.as_ref();
    let unchanged = previous.is_some_and(|p| {
        p.listed == Some(count) && p.observed_generation == pkg.metadata.generation
    });
    if unchanged {
        return ManifestReport {
            listed: Some(count),
            ..ManifestReport::default()
        };
    }
    let source = target.store.source_template(&spec.package);
    let render = |_: &crate::names::PackageName, current: Option<&str>| {
        crate::gitops::render_package(
            spec,
            &source,
            target.repository.as_deref(),
            &complete,
            current,
        )
    };
    let packages = [spec.package.clone()];
    let result = sink.lock().await.commit_boxed(&packages, &render).await;
    match result {
        Ok(outcome) if outcome.failed.is_empty() => {
            ctx.metrics
                .manifest_commits
                .get_or_create(&OutcomeLabels {
                    outcome: if outcome.commit.is_some() {
                        "committed"
                    } else {
                        "unchanged"
                    }
                    .into(),
                })
                .inc();
            if let Some(sha) = &outcome.commit {
                let added: Vec<String> = outcome
                    .changed
                    .iter()
                    .flat_map(|(_, v)| v.iter().map(ToString::to_string))
                    .collect();
                let note = format!("committed {sha} (+{})", added.join(", "));
                event(ctx, pkg, EventType::Normal, "ManifestCommitted", note).await;
            }
            ManifestReport {
                commit: outcome.commit,
                listed: Some(count),
                error: None,
            }
        }
        failed => {
            let why = match failed {
                Ok(outcome) => outcome
                    .failed
                    .into_iter()
                    .map(|(_, why)| why)
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => e.to_string(),
            };
            ctx.metrics
                .manifest_commits
                .get_or_create(&OutcomeLabels {
                    outcome: "failed".into(),
                })
                .inc();
            event(
                ctx,
                pkg,
                EventType::Warning,
                "ManifestNotCommitted",
                why.clone(),
            )
            .await;
            ManifestReport {
                error: Some(why),
                ..ManifestReport::default()
            }
        }
    }
}
