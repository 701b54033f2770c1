//! The wheels step of a reconcile, after publishing: the wheels of the package's published,
//! tested versions put into the operator's wheel index. A steady state costs nothing (the
//! index remembers what it holds). What was listed, and where, is said in an event; a file
//! refused (its name listed with another digest) is trouble no retry mends.

use kube::runtime::events::EventType;

use super::context::Context;
use super::resource::{FailureRecord, PythonPackage};
use super::status::Trouble;
use crate::release::{Release, ReleaseStore};

/// Indexes the package's wheels; the events and trouble say what came of it.
pub async fn distribute<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    store: &S,
    releases: &[Release],
    trouble: &mut Vec<Trouble>,
) {
    let Some(index) = ctx.targets.wheel_index() else {
        return;
    };
    let spec = &pkg.spec.package;
    let scratch = match tempfile::tempdir_in(&ctx.scratch).or_else(|_| tempfile::tempdir()) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "no scratch space for wheels");
            return;
        }
    };
    let fetcher = if index.locked {
        let indexes = crate::pypi::Indexes::new(ctx.index.index(), Vec::new());
        match indexes.map(|i| {
            crate::lock::Fetcher::new(i, &ctx.scratch, std::time::Duration::from_secs(600))
        }) {
            Ok(Ok(f)) => Some(f),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot fetch locked wheels");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch locked wheels");
                None
            }
        }
    } else {
        None
    };
    let sources = crate::wheels::Sources {
        store,
        fetcher: fetcher.as_ref(),
        scratch: scratch.path(),
    };
    match crate::wheels::index_package(index, &sources, spec, releases).await {
        Ok(out) => {
            if !out.added.is_empty() {
                let files: Vec<&str> = out.added.iter().map(|(_, f)| f.as_str()).collect();
                let commit = out
                    .commit
                    .as_deref()
                    .map_or(String::new(), |c| format!(" (commit {c})"));
                let note = format!(
                    "indexed {} in {}{commit}",
                    files.join(", "),
                    index.describe()
                );
                tracing::info!(package = %spec.package, %note, "wheels indexed");
                ctx.event(pkg, EventType::Normal, "WheelsIndexed", note)
                    .await;
            }
            for c in &out.conflicts {
                trouble.push(Trouble {
                    version: version_of(&c.filename, &c.project).unwrap_or_else(zero),
                    record: FailureRecord {
                        version: version_of(&c.filename, &c.project)
                            .map_or_else(String::new, |v| v.to_string()),
                        platform: None,
                        reason: "WheelConflict".into(),
                        message: c.to_string(),
                    },
                    permanent: true,
                });
            }
            let mut problems: Vec<String> = out.conflicts.iter().map(ToString::to_string).collect();
            problems.extend(out.failed.iter().map(|(f, why)| format!("{f}: {why}")));
            if !problems.is_empty() {
                let note = format!("not indexed: {}", problems.join("; "));
                tracing::warn!(package = %spec.package, %note, "wheels not indexed");
                ctx.event(pkg, EventType::Warning, "WheelsNotIndexed", note)
                    .await;
            }
        }
        Err(e) => {
            let note = format!("the wheel index {} was not written: {e}", index.describe());
            tracing::warn!(package = %spec.package, %note, "wheels not indexed");
            ctx.event(pkg, EventType::Warning, "WheelsNotIndexed", note)
                .await;
        }
    }
}

fn version_of(filename: &str, project: &crate::names::PackageName) -> Option<pep440_rs::Version> {
    crate::pypi::version_from_filename(project.as_str(), filename)
}

fn zero() -> pep440_rs::Version {
    pep440_rs::Version::new([0])
}
