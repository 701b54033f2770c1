//! The manifest step of a reconcile: commit the package's manifest when the versions it may
//! list changed since the last commit (or the spec did); otherwise leave the sink alone, so a
//! steady state costs nothing. A published asset that is not what was built and tested is
//! never listed, and is reported.

use kube::runtime::events::EventType;

use super::context::Context;
use super::metrics::OutcomeLabels;
use super::resource::{FailureRecord, PythonPackage};
use super::status::{ManifestReport, Trouble};
use super::targets::{SharedSink, StoreTarget};
use crate::plan::{AssetMismatch, Failure, Tried};
use crate::release::{Release, ReleaseStore};

/// Commits the package's manifest when the versions it may list changed since the last commit
/// (or the spec did); otherwise leaves the sink alone, so a steady state costs nothing. A
/// version is listed once its test passed on a build's own platform, or every build says why
/// it could not run there; one made by an older hermit-pex (no outcome recorded) is trouble.
pub async fn commit_manifest<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    target: &StoreTarget<S>,
    sink: &SharedSink,
    releases: &[Release],
    trouble: &mut Vec<Trouble>,
) -> ManifestReport {
    let spec = &pkg.spec.package;
    let listing = crate::plan::listing(spec, releases);
    report_mismatches(ctx, pkg, &listing.mismatches, trouble).await;
    let mut complete = Vec::new();
    for l in listing.versions {
        match l.tried {
            Tried::Passed | Tried::NotTried(_) => complete.push(l.complete),
            Tried::Unknown => trouble.push(Trouble {
                failure: Failure::new(
                    &l.complete.version,
                    None,
                    "Untested",
                    "published by an older hermit-pex without a test outcome: not listed; \
                     `hermit-pex sync` tries and lists it",
                ),
                permanent: true,
            }),
        }
    }
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
    let inputs = [crate::step::ManifestInput {
        spec,
        complete,
        source: target.store.source_template(&spec.package),
    }];
    let render = crate::step::manifest_renderer(&inputs, target.repository.as_deref());
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
                tracing::info!(package = %spec.package, commit = %sha, added = %added.join(", "), "committed the manifest");
                ctx.event(pkg, EventType::Normal, "ManifestCommitted", note)
                    .await;
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
            tracing::warn!(package = %spec.package, error = %why, "the manifest was not committed");
            ctx.event(pkg, EventType::Warning, "ManifestNotCommitted", why.clone())
                .await;
            ManifestReport {
                error: Some(why),
                ..ManifestReport::default()
            }
        }
    }
}

/// Each platform left out because its asset is not what was built and tested: a failure
/// record (no retry helps; the release needs a look), and a warning event the first time.
async fn report_mismatches<S>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    mismatches: &[AssetMismatch],
    trouble: &mut Vec<Trouble>,
) {
    for m in mismatches {
        let failure = Failure::new(&m.version, Some(m.platform), "AssetMismatch", m.to_string());
        let record = FailureRecord::from(&failure);
        let known = pkg
            .status
            .as_ref()
            .is_some_and(|s| s.failures.contains(&record));
        if !known {
            tracing::warn!(package = %pkg.spec.package.package, version = %m.version, platform = %m.platform, mismatch = %m, "a published asset is not what was built");
            let note = format!("{}: {m}", m.version);
            ctx.event(pkg, EventType::Warning, "AssetMismatch", note)
                .await;
        }
        trouble.push(Trouble {
            failure,
            permanent: true,
        });
    }
}
