//! Hermit manifests (`<package>.hcl`), rendered as text in Hermit's own dialect (DESIGN §7).
//!
//! A manifest lists a version only when every platform has a digest, and never drops or
//! rewrites a version it once listed: the committed manifest is read back and merged.

use std::collections::BTreeMap;
use std::fmt::Write;

use pep440_rs::Version;

use crate::names::{BinaryName, PackageName, Platform, PythonMinor};
use crate::spec::PackageSpec;

/// One version that is complete in the release store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteVersion {
    pub version: Version,
    pub python: PythonMinor,
    /// The platforms this version is listed for, with their tarball's sha256: all of the config's platforms,
    /// or fewer when a platform cannot exist for this version.
    pub sha256: BTreeMap<Platform, String>,
    /// The launchers in its tarballs (console scripts); every version of a package may differ when the config
    /// leaves `binaries` out.
    pub binaries: Vec<BinaryName>,
}

/// What an existing manifest says, as far as merging needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    pub source: Option<String>,
    /// Version → its `runtime-dependencies`, as written.
    pub versions: BTreeMap<Version, Vec<String>>,
    pub sha256sums: BTreeMap<String, String>,
    /// Attributes and blocks hermit-pex does not write (added by hand): re-rendering would
    /// lose them, so such a manifest is reported rather than rewritten.
    pub foreign: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "the existing manifest cannot be read: {0}; fix or move it, hermit-pex never overwrites it blindly"
    )]
    Unreadable(String),
    #[error(
        "{url}: the manifest has digest {listed} but the release has {actual}; a published asset changed. \
         The manifest is left as it is: restore the asset or investigate"
    )]
    DigestConflict {
        url: String,
        listed: String,
        actual: String,
    },
    #[error(
        "the manifest was edited by hand ({}): hermit-pex would lose that, so it leaves the file as it is. \
         Move the additions into the package config, or remove them",
        .0.join(", ")
    )]
    HandEdited(Vec<String>),
    #[error(
        "the manifest's source is {old:?} but the releases are now at {new:?}: the versions it lists would point elsewhere. \
         Keep the old release location or write the manifest to another directory"
    )]
    SourceChanged { old: String, new: String },
}

/// The top-level attributes `render` writes.
const WRITTEN: &[&str] = &[
    "description",
    "binaries",
    "test",
    "homepage",
    "repository",
    "source",
    "sha256sums",
];

/// Hermit's `${version}`, `${os}`, `${arch}` filled in.
pub fn expand(template: &str, version: &Version, platform: Platform) -> String {
    template
        .replace("${version}", &version.to_string())
        .replace("${os}", platform.os.as_str())
        .replace("${arch}", platform.arch.as_str())
}

/// Reads an existing manifest. Only what merging needs is extracted; anything else that
/// Hermit allows (a hand-added attribute, a block) is left for the caller to keep or report.
pub fn read(text: &str) -> Result<Existing, ManifestError> {
    use hcl::{Body, Expression, Structure};
    let body: Body = hcl::parse(text).map_err(|e| ManifestError::Unreadable(e.to_string()))?;
    let mut existing = Existing::default();
    for structure in body.into_iter() {
        match structure {
            Structure::Attribute(a) if a.key.as_str() == "source" => {
                existing.source = match a.expr {
                    Expression::String(s) => Some(s),
                    // `${version}` makes it a template to hcl-rs; its raw text is the source.
                    Expression::TemplateExpr(t) => Some(t.to_string()),
                    _ => None,
                };
            }
            Structure::Attribute(a) if a.key.as_str() == "sha256sums" => {
                let Expression::Object(map) = a.expr else {
                    return Err(ManifestError::Unreadable("sha256sums is not a map".into()));
                };
                for (k, v) in map {
                    let key = match k {
                        hcl::ObjectKey::Identifier(i) => i.to_string(),
                        hcl::ObjectKey::Expression(Expression::String(s)) => s,
                        other => {
                            return Err(ManifestError::Unreadable(format!(
                                "sha256sums key {other:?}"
                            )));
                        }
                    };
                    let Expression::String(digest) = v else {
                        return Err(ManifestError::Unreadable(format!(
                            "sha256sums[{key:?}] is not a string"
                        )));
                    };
                    existing.sha256sums.insert(key, digest);
                }
            }
            Structure::Attribute(a) if WRITTEN.contains(&a.key.as_str()) => {}
            Structure::Attribute(a) => existing.foreign.push(a.key.to_string()),
            Structure::Block(b) if b.identifier.as_str() == "version" => {
                if let Some(other) = b.body.iter().find_map(|s| match s {
                    Structure::Attribute(a) if a.key.as_str() == "runtime-dependencies" => None,
                    Structure::Attribute(a) => Some(format!("version.{}", a.key)),
                    Structure::Block(b) => Some(format!("version.{}", b.identifier)),
                }) {
                    existing.foreign.push(other);
                }
                let deps: Vec<String> = b
                    .body
                    .attributes()
                    .filter(|a| a.key.as_str() == "runtime-dependencies")
                    .flat_map(|a| match &a.expr {
                        Expression::Array(items) => items
                            .iter()
                            .filter_map(|i| {
                                if let Expression::String(s) = i {
                                    Some(s.clone())
                                } else {
                                    None
                                }
                            })
                            .collect(),
                        _ => Vec::new(),
                    })
                    .collect();
                for label in &b.labels {
                    let v = label.as_str().parse::<Version>().map_err(|e| {
                        ManifestError::Unreadable(format!(
                            "version {:?} is not PEP 440: {e}",
                            label.as_str()
                        ))
                    })?;
                    existing.versions.insert(v, deps.clone());
                }
            }
            Structure::Block(b) => existing.foreign.push(b.identifier.to_string()),
        }
    }
    Ok(existing)
}

/// Everything a manifest is rendered from.
pub struct ManifestInput<'a> {
    pub spec: &'a PackageSpec,
    pub source: &'a str,
    pub repository: Option<&'a str>,
    pub complete: &'a [CompleteVersion],
    pub existing: Option<&'a Existing>,
}

/// Renders the manifest: the existing versions and digests, plus the complete ones.
pub fn render(input: &ManifestInput<'_>) -> Result<String, ManifestError> {
    let spec = input.spec;
    let platforms = spec.platforms();
    let empty = Existing::default();
    let existing = input.existing.unwrap_or(&empty);
    if !existing.foreign.is_empty() {
        return Err(ManifestError::HandEdited(existing.foreign.clone()));
    }
    if let Some(old) = &existing.source
        && old != input.source
        && !existing.versions.is_empty()
    {
        return Err(ManifestError::SourceChanged {
            old: old.clone(),
            new: input.source.to_owned(),
        });
    }

    let mut versions = existing.versions.clone();
    let mut sums = existing.sha256sums.clone();
    for cv in input.complete {
        for (platform, digest) in &cv.sha256 {
            if !platforms.contains(platform) {
                continue;
            }
            let url = expand(input.source, &cv.version, *platform);
            match sums.get(&url) {
                Some(listed) if listed != digest => {
                    return Err(ManifestError::DigestConflict {
                        url,
                        listed: listed.clone(),
                        actual: digest.clone(),
                    });
                }
                _ => {
                    sums.insert(url, digest.clone());
                }
            }
        }
        versions
            .entry(cv.version.clone())
            .or_insert_with(|| vec![format!("python3@{}", cv.python)]);
    }

    let mut out = String::new();
    let q = quote;
    let binaries: Vec<String> = spec.binaries.iter().map(|b| q(b.as_str())).collect();
    writeln!(out, "description = {}", q(&spec.description())).unwrap();
    writeln!(out, "binaries = [{}]", binaries.join(", ")).unwrap();
    // Hermit expands `${...}` in `test`: a literal `$` is written `$$`.
    writeln!(out, "test = {}", q(&spec.test_command().replace('$', "$$"))).unwrap();
    writeln!(
        out,
        "homepage = {}",
        q(&format!("https://pypi.org/project/{}/", spec.package))
    )
    .unwrap();
    if let Some(repo) = input.repository {
        writeln!(out, "repository = {}", q(repo)).unwrap();
    }
    writeln!(out, "source = {}", q(input.source)).unwrap();
    for (version, deps) in &versions {
        writeln!(out, "\nversion {} {{", q(&version.to_string())).unwrap();
        if !deps.is_empty() {
            let deps: Vec<String> = deps.iter().map(|d| q(d)).collect();
            writeln!(out, "  runtime-dependencies = [{}]", deps.join(", ")).unwrap();
        }
        out.push_str("}\n");
    }
    if !sums.is_empty() {
        out.push_str("\nsha256sums = {\n");
        for (url, digest) in &sums {
            writeln!(out, "  {}: {},", q(url), q(digest)).unwrap();
        }
        out.push_str("}\n");
    }
    Ok(out)
}

/// A JSON string literal, which Hermit's parser (Go `strconv.Unquote`) reads back unchanged.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// Versions listed in a manifest that lack a digest for some platform: Hermit would download
/// those without checking them. Used by tests and before writing.
pub fn unverified(existing: &Existing, platforms: &[Platform]) -> Vec<String> {
    let Some(source) = &existing.source else {
        return Vec::new();
    };
    existing
        .versions
        .keys()
        .flat_map(|v| platforms.iter().map(move |p| expand(source, v, *p)))
        .filter(|url| !existing.sha256sums.contains_key(url))
        .collect()
}

/// Where a package's manifest goes in a directory of manifests.
pub fn file_name(package: &PackageName) -> String {
    format!("{package}.hcl")
}

#[cfg(test)]
mod tests;
