//! The wheels step of a reconcile, after publishing: the wheels of the package's published,
//! tested versions put into the operator's wheel index, and each Git-source wheel uploaded to
//! the publish indexes its `spec.publish` names. A steady state costs nothing (both remember
//! what they hold). Events say what went where; the status keeps, per place, the newest file
//! and the last error; a file refused for its digest is trouble no retry mends.

use kube::runtime::events::EventType;

use super::context::Context;
use super::resource::{PythonPackage, WheelsRecord};
use super::status::Trouble;
use crate::plan::Failure;
use crate::release::{Release, ReleaseStore};
use crate::wheels::upload::UploadError;

/// Indexes and publishes the package's wheels; returns the status's wheels records.
pub async fn distribute<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    store: &S,
    releases: &[Release],
    trouble: &mut Vec<Trouble>,
) -> Vec<WheelsRecord> {
    let previous: Vec<WheelsRecord> = pkg
        .status
        .as_ref()
        .map(|s| s.wheels.clone())
        .unwrap_or_default();
    let index = ctx.targets.wheel_index();
    let uploaders = ctx.targets.publish(&pkg.spec).unwrap_or_default();
    if index.is_none() && uploaders.is_empty() {
        // Nowhere to put wheels: no scratch directory made and removed on every reconcile.
        return Vec::new();
    }
    let mut records = Vec::new();
    let scratch = match tempfile::tempdir_in(&ctx.scratch).or_else(|_| tempfile::tempdir()) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "no scratch space for wheels");
            return previous;
        }
    };
    if let Some(index) = index {
        let record = record_of(&previous, "index", index.describe());
        records.push(index_step(ctx, pkg, store, releases, scratch.path(), record, trouble).await);
    }
    for up in uploaders {
        let record = record_of(&previous, &up.index.name, up.index.upload_url.to_string());
        let sources = crate::wheels::Sources {
            store,
            fetcher: None,
            scratch: scratch.path(),
        };
        let spec = &pkg.spec.package;
        let out = crate::wheels::upload::publish_package(&up, &sources, spec, releases).await;
        let to = up.index.describe();
        let mut record = record;
        if !out.uploaded.is_empty() {
            let note = format!("uploaded {} to {to}", out.uploaded.join(", "));
            tracing::info!(package = %spec.package, %note, "wheels published");
            ctx.event(pkg, EventType::Normal, "WheelsPublished", note)
                .await;
        }
        if let Some(last) = out.uploaded.iter().chain(&out.already).last() {
            record.last = Some(last.split(' ').next().unwrap_or(last).to_owned());
        }
        record.error = None;
        if !out.failed.is_empty() {
            let problems: Vec<String> = out.failed.iter().map(ToString::to_string).collect();
            let note = format!("not uploaded: {}", problems.join("; "));
            tracing::warn!(package = %spec.package, %note, "wheels not published");
            ctx.event(pkg, EventType::Warning, "WheelsNotPublished", note)
                .await;
            record.error = Some(cut(problems.join("; ")));
            for e in &out.failed {
                trouble.push(publish_trouble(e));
            }
        }
        records.push(record);
    }
    records
}

async fn index_step<S: ReleaseStore>(
    ctx: &Context<S>,
    pkg: &PythonPackage,
    store: &S,
    releases: &[Release],
    scratch: &std::path::Path,
    mut record: WheelsRecord,
    trouble: &mut Vec<Trouble>,
) -> WheelsRecord {
    let index = ctx.targets.wheel_index().expect("asked for with an index");
    let spec = &pkg.spec.package;
    let fetcher = match index.locked {
        true => crate::pypi::Indexes::new(ctx.index.index(), Vec::new())
            .map_err(|e| e.to_string())
            .and_then(|i| {
                crate::lock::Fetcher::new(i, &ctx.scratch, std::time::Duration::from_secs(600))
                    .map_err(|e| e.to_string())
            })
            .inspect_err(|e| tracing::warn!(error = %e, "cannot fetch locked wheels"))
            .ok(),
        false => None,
    };
    let sources = crate::wheels::Sources {
        store,
        fetcher: fetcher.as_ref(),
        scratch,
    };
    match crate::wheels::index_package(index, &sources, spec, releases).await {
        Ok(out) => {
            if let Some((_, last)) = out.added.last() {
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
                record.last = Some(last.clone());
            }
            for c in &out.conflicts {
                let version = crate::pypi::version_from_filename(c.project.as_str(), &c.filename)
                    .unwrap_or_else(|| pep440_rs::Version::new([0]));
                trouble.push(Trouble {
                    failure: Failure::new(&version, None, "WheelConflict", c.to_string()),
                    permanent: true,
                });
            }
            let mut problems: Vec<String> = out.conflicts.iter().map(ToString::to_string).collect();
            problems.extend(out.failed.iter().map(|(f, why)| format!("{f}: {why}")));
            record.error = None;
            if !problems.is_empty() {
                let note = format!("not indexed: {}", problems.join("; "));
                tracing::warn!(package = %spec.package, %note, "wheels not indexed");
                ctx.event(pkg, EventType::Warning, "WheelsNotIndexed", note)
                    .await;
                record.error = Some(cut(problems.join("; ")));
            }
        }
        Err(e) => {
            let note = format!("the wheel index {} was not written: {e}", index.describe());
            tracing::warn!(package = %spec.package, %note, "wheels not indexed");
            ctx.event(pkg, EventType::Warning, "WheelsNotIndexed", note.clone())
                .await;
            record.error = Some(cut(note));
        }
    }
    record
}

/// The previous record of `target`, or a new one.
fn record_of(previous: &[WheelsRecord], target: &str, location: String) -> WheelsRecord {
    let mut r = previous
        .iter()
        .find(|r| r.target == target)
        .cloned()
        .unwrap_or(WheelsRecord {
            target: target.to_owned(),
            location: String::new(),
            last: None,
            error: None,
        });
    r.location = crate::pypi::redact(&location);
    r
}

/// A failed upload as a failure record: a digest conflict needs a new version (permanent);
/// credentials, a rejection or the network may mend.
fn publish_trouble(e: &UploadError) -> Trouble {
    let (of, permanent) = match e {
        UploadError::Conflict { of, .. } => (Some(of), true),
        UploadError::Credentials { of, .. }
        | UploadError::Rejected { of, .. }
        | UploadError::Failed { of, .. } => (Some(of), false),
        UploadError::Settings { .. } => (None, false),
    };
    let version = of.map_or_else(|| pep440_rs::Version::new([0]), |o| o.version.clone());
    Trouble {
        failure: Failure::new(&version, None, "WheelNotPublished", e.to_string()),
        permanent,
    }
}

/// Status text is bounded: at most 500 bytes, cut on a character boundary.
fn cut(mut text: String) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text;
    }
    let mut at = MAX - 3;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    text.push_str("...");
    text
}
