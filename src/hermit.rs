//! Hermit manifests (`<package>.hcl`), rendered as text in Hermit's own dialect (DESIGN §7).
//!
//! A manifest never drops or rewrites a version it once listed, nor a platform a version was
//! listed for: the committed manifest is read back and merged with what is complete now.
//!
//! Two shapes. When every version has all four platforms (and the config asks for all four),
//! one top-level `source` with `${os}-${arch}` serves them all. Otherwise there is no top-level
//! `source`: Hermit takes the last non-empty `source` of its layers, so a top-level one could
//! not be taken back for the platform a version lacks. Each version block then names its source
//! for exactly the platforms it has (`platform "linux" { source = … }`), and Hermit reports the
//! others as "not supported on this architecture" instead of failing a download.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use pep440_rs::Version;

use crate::names::{Arch, BinaryName, Os, PackageName, Platform, PythonMinor};
use crate::spec::PackageSpec;

/// One version the release store can list, on the platforms it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteVersion {
    pub version: Version,
    pub python: PythonMinor,
    /// The platforms this version is listed for, with their tarball's sha256: all of the config's
    /// platforms, or fewer when a platform cannot exist for this version.
    pub sha256: BTreeMap<Platform, String>,
    /// The launchers in its tarballs (console scripts); every version of a package may differ
    /// when the config leaves `binaries` out.
    pub binaries: Vec<BinaryName>,
}

/// What an existing manifest says, as far as merging needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    /// The top-level `source`; `None` when each version block gives its own.
    pub source: Option<String>,
    /// Version → its `runtime-dependencies`, as written.
    pub versions: BTreeMap<Version, Vec<String>>,
    /// Version → what Hermit resolves it to, per platform.
    pub listings: BTreeMap<Version, Listing>,
    pub sha256sums: BTreeMap<String, String>,
    /// Attributes and blocks hermit-pex does not write (added by hand): re-rendering would
    /// lose them, so such a manifest is reported rather than rewritten.
    pub foreign: Vec<String>,
}

/// One version of an existing manifest as Hermit's layer merge sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Platform → the `source` template Hermit picks there (top level, the version block or one
    /// of its `platform` blocks, the last one wins). A platform missing here is unsupported.
    pub sources: BTreeMap<Platform, String>,
    /// The launchers: the top-level `binaries` followed by the version block's (Hermit appends).
    pub binaries: Vec<BinaryName>,
}

impl Existing {
    /// The platforms a version is listed for: those resolving to a URL that has a digest. A URL
    /// without one was never a tarball hermit-pex published, so it does not count.
    pub fn listed_platforms(&self, version: &Version) -> BTreeSet<Platform> {
        self.listings.get(version).map_or_else(BTreeSet::new, |l| {
            l.sources
                .iter()
                .filter(|(p, t)| self.sha256sums.contains_key(&expand(t, version, **p)))
                .map(|(p, _)| *p)
                .collect()
        })
    }
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
    #[error(
        "version {version} has no launchers to list: Hermit refuses a package without `binaries`. \
         Name its console scripts in the package config's `binaries`"
    )]
    NoBinaries { version: Version },
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
    use hcl::{Body, Structure};
    let body: Body = hcl::parse(text).map_err(|e| ManifestError::Unreadable(e.to_string()))?;
    let mut existing = Existing::default();
    let mut top_binaries = Vec::new();
    let mut blocks = Vec::new();
    for structure in body.into_iter() {
        match structure {
            Structure::Attribute(a) if a.key.as_str() == "source" => {
                existing.source = source_value(&a.expr, "source")?;
            }
            Structure::Attribute(a) if a.key.as_str() == "binaries" => {
                top_binaries = binaries_value(&a.expr, "binaries")?;
            }
            Structure::Attribute(a) if a.key.as_str() == "sha256sums" => {
                existing.sha256sums = sha256sums_value(a.expr)?;
            }
            Structure::Attribute(a) if WRITTEN.contains(&a.key.as_str()) => {}
            Structure::Attribute(a) => existing.foreign.push(a.key.to_string()),
            Structure::Block(b) if b.identifier.as_str() == "version" => blocks.push(b),
            Structure::Block(b) => existing.foreign.push(b.identifier.to_string()),
        }
    }
    for block in blocks {
        let v = read_version(&block, &mut existing.foreign)?;
        let listing = Listing {
            sources: resolve_sources(existing.source.as_deref(), &v),
            binaries: dedup(top_binaries.iter().chain(&v.binaries).cloned()),
        };
        for label in &block.labels {
            let version = label.as_str().parse::<Version>().map_err(|e| {
                ManifestError::Unreadable(format!(
                    "version {:?} is not PEP 440: {e}",
                    label.as_str()
                ))
            })?;
            existing.versions.insert(version.clone(), v.deps.clone());
            existing.listings.insert(version, listing.clone());
        }
    }
    Ok(existing)
}

/// A `version` block's own layer, as `render` writes it.
#[derive(Default)]
struct VersionLayer {
    deps: Vec<String>,
    binaries: Vec<BinaryName>,
    source: Option<String>,
    /// `platform "<label>" { source = … }`, in text order (Hermit applies them in that order).
    platforms: Vec<(String, Option<String>)>,
}

fn read_version(
    block: &hcl::Block,
    foreign: &mut Vec<String>,
) -> Result<VersionLayer, ManifestError> {
    use hcl::Structure;
    let mut layer = VersionLayer::default();
    for structure in block.body.iter() {
        match structure {
            Structure::Attribute(a) => match a.key.as_str() {
                "runtime-dependencies" => layer.deps = strings(&a.expr),
                "binaries" => layer.binaries = binaries_value(&a.expr, "version.binaries")?,
                "source" => layer.source = source_value(&a.expr, "version.source")?,
                other => foreign.push(format!("version.{other}")),
            },
            Structure::Block(b) if b.identifier.as_str() == "platform" => {
                if let Some(p) = read_platform(b, foreign)? {
                    layer.platforms.push(p);
                }
            }
            Structure::Block(b) => foreign.push(format!("version.{}", b.identifier)),
        }
    }
    Ok(layer)
}

/// A `platform` block inside a version: one plain label and a `source`, nothing else. Other
/// labels (several, or regex syntax) are Hermit's too, but not ours: reported, not guessed.
fn read_platform(
    block: &hcl::Block,
    foreign: &mut Vec<String>,
) -> Result<Option<(String, Option<String>)>, ManifestError> {
    let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
    let [label] = labels[..] else {
        foreign.push(format!("version.platform {labels:?}"));
        return Ok(None);
    };
    if !is_plain_label(label) {
        foreign.push(format!("version.platform {label:?}"));
        return Ok(None);
    }
    let mut source = None;
    for structure in block.body.iter() {
        match structure {
            hcl::Structure::Attribute(a) if a.key.as_str() == "source" => {
                source = source_value(&a.expr, "version.platform.source")?;
            }
            hcl::Structure::Attribute(a) => foreign.push(format!("version.platform.{}", a.key)),
            hcl::Structure::Block(b) => foreign.push(format!("version.platform.{}", b.identifier)),
        }
    }
    Ok(Some((label.to_owned(), source)))
}

/// A label of letters, digits, `-` and `_` has no regex syntax: Hermit's unanchored regex match
/// against the os, the arch and `os-arch` is then a substring test, and since `os-arch` contains
/// the other two, a test against `os-arch` alone.
fn is_plain_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn label_matches(label: &str, platform: Platform) -> bool {
    platform.to_string().contains(label)
}

/// Hermit's merge of `source` (`newPackage`): top level, then the version block, then its
/// matching `platform` blocks; the last non-empty one wins.
fn resolve_sources(top: Option<&str>, version: &VersionLayer) -> BTreeMap<Platform, String> {
    Platform::ALL
        .iter()
        .filter_map(|p| {
            let from_blocks = version
                .platforms
                .iter()
                .filter(|(label, _)| label_matches(label, *p))
                .filter_map(|(_, s)| s.as_deref());
            let chain = top.into_iter().chain(version.source.as_deref());
            chain.chain(from_blocks).last().map(|s| (*p, s.to_owned()))
        })
        .collect()
}

/// A `source` as written: `${version}` makes it a template to hcl-rs, whose raw text is the
/// source. An empty string is no source (Hermit skips it).
fn source_value(expr: &hcl::Expression, field: &str) -> Result<Option<String>, ManifestError> {
    let text = match expr {
        hcl::Expression::String(s) => s.clone(),
        hcl::Expression::TemplateExpr(t) => t.to_string(),
        other => {
            return Err(ManifestError::Unreadable(format!(
                "{field} is not a string but {other:?}"
            )));
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

fn strings(expr: &hcl::Expression) -> Vec<String> {
    match expr {
        hcl::Expression::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                hcl::Expression::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn binaries_value(expr: &hcl::Expression, field: &str) -> Result<Vec<BinaryName>, ManifestError> {
    strings(expr)
        .iter()
        .map(|s| {
            BinaryName::new(s)
                .map_err(|e| ManifestError::Unreadable(format!("{field} entry {s:?}: {e}")))
        })
        .collect()
}

fn sha256sums_value(expr: hcl::Expression) -> Result<BTreeMap<String, String>, ManifestError> {
    use hcl::Expression;
    let Expression::Object(map) = expr else {
        return Err(ManifestError::Unreadable("sha256sums is not a map".into()));
    };
    let mut sums = BTreeMap::new();
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
        sums.insert(key, digest);
    }
    Ok(sums)
}

/// Keeps the first of each name: Hermit would link a launcher listed twice twice.
fn dedup(names: impl Iterator<Item = BinaryName>) -> Vec<BinaryName> {
    let mut seen = BTreeSet::new();
    names.filter(|n| seen.insert(n.clone())).collect()
}

/// Everything a manifest is rendered from.
pub struct ManifestInput<'a> {
    pub spec: &'a PackageSpec,
    pub source: &'a str,
    pub repository: Option<&'a str>,
    pub complete: &'a [CompleteVersion],
    pub existing: Option<&'a Existing>,
}

/// One version as it will be written.
struct Entry {
    deps: Vec<String>,
    /// Platform → digest of its tarball at `expand(source, version, platform)`.
    sha256: BTreeMap<Platform, String>,
    binaries: Vec<BinaryName>,
}

/// Renders the manifest: the existing versions and digests, plus the complete ones.
pub fn render(input: &ManifestInput<'_>) -> Result<String, ManifestError> {
    let empty = Existing::default();
    let existing = input.existing.unwrap_or(&empty);
    if !existing.foreign.is_empty() {
        return Err(ManifestError::HandEdited(existing.foreign.clone()));
    }
    let mut entries = carried_over(existing, input.source)?;
    add_complete(&mut entries, existing, input)?;
    // The config counts too: with fewer than four platforms, the next version will lack one.
    let full = input.spec.platforms().len() == Platform::ALL.len()
        && entries
            .values()
            .all(|e| e.sha256.len() == Platform::ALL.len());
    let common = common_binaries(&entries, &input.spec.binaries);

    let mut out = header(input, &common, full);
    for (version, entry) in &entries {
        write_version(
            &mut out,
            version,
            entry,
            &common,
            (!full).then_some(input.source),
        );
    }
    let sums: BTreeMap<String, &String> = entries
        .iter()
        .flat_map(|(v, e)| {
            e.sha256
                .iter()
                .map(move |(p, d)| (expand(input.source, v, *p), d))
        })
        .collect();
    if !sums.is_empty() {
        out.push_str("\nsha256sums = {\n");
        for (url, digest) in &sums {
            writeln!(out, "  {}: {},", quote(url), quote(digest)).unwrap();
        }
        out.push_str("}\n");
    }
    Ok(out)
}

/// The versions the manifest lists now, each with the platforms it resolves to with a digest
/// and its launchers. Every such URL must stay where it is under the new source.
fn carried_over(
    existing: &Existing,
    source: &str,
) -> Result<BTreeMap<Version, Entry>, ManifestError> {
    let mut entries = BTreeMap::new();
    for (version, deps) in &existing.versions {
        let listing = existing.listings.get(version).cloned().unwrap_or_default();
        let mut sha256 = BTreeMap::new();
        for (platform, template) in &listing.sources {
            let url = expand(template, version, *platform);
            if url != expand(source, version, *platform) {
                return Err(ManifestError::SourceChanged {
                    old: template.clone(),
                    new: source.to_owned(),
                });
            }
            if let Some(digest) = existing.sha256sums.get(&url) {
                sha256.insert(*platform, digest.clone());
            }
        }
        let entry = Entry {
            deps: deps.clone(),
            sha256,
            binaries: listing.binaries,
        };
        entries.insert(version.clone(), entry);
    }
    Ok(entries)
}

/// Adds the complete versions and platforms; a version keeps the launchers it was listed with.
fn add_complete(
    entries: &mut BTreeMap<Version, Entry>,
    existing: &Existing,
    input: &ManifestInput<'_>,
) -> Result<(), ManifestError> {
    let platforms = input.spec.platforms();
    for cv in input.complete {
        let digests: Vec<(Platform, &String)> = cv
            .sha256
            .iter()
            .filter(|(p, _)| platforms.contains(p))
            .map(|(p, d)| (*p, d))
            .collect();
        if digests.is_empty() {
            continue;
        }
        let entry = entries.entry(cv.version.clone()).or_insert_with(|| Entry {
            deps: vec![format!("python3@{}", cv.python)],
            sha256: BTreeMap::new(),
            binaries: Vec::new(),
        });
        if entry.binaries.is_empty() {
            if cv.binaries.is_empty() {
                return Err(ManifestError::NoBinaries {
                    version: cv.version.clone(),
                });
            }
            entry.binaries = dedup(cv.binaries.iter().cloned());
        }
        for (platform, digest) in digests {
            let url = expand(input.source, &cv.version, platform);
            let listed = existing
                .sha256sums
                .get(&url)
                .or(entry.sha256.get(&platform));
            if let Some(listed) = listed.filter(|l| *l != digest) {
                return Err(ManifestError::DigestConflict {
                    url,
                    listed: listed.clone(),
                    actual: digest.clone(),
                });
            }
            entry.sha256.insert(platform, digest.clone());
        }
    }
    Ok(())
}

/// The launchers every version has, in the first version's order; an empty manifest gets the
/// config's. Hermit appends a version block's `binaries` to the top-level ones.
fn common_binaries(entries: &BTreeMap<Version, Entry>, spec: &[BinaryName]) -> Vec<BinaryName> {
    let Some(first) = entries.values().next() else {
        return spec.to_vec();
    };
    first
        .binaries
        .iter()
        .filter(|b| entries.values().all(|e| e.binaries.contains(b)))
        .cloned()
        .collect()
}

fn header(input: &ManifestInput<'_>, binaries: &[BinaryName], full: bool) -> String {
    let spec = input.spec;
    let mut out = String::new();
    writeln!(out, "description = {}", quote(&spec.description())).unwrap();
    if !binaries.is_empty() {
        writeln!(out, "binaries = [{}]", quote_list(binaries)).unwrap();
    }
    // The config's test, else the first launcher every version has (Hermit runs it from the
    // package: a launcher some version lacks would fail there). Hermit expands `${...}` in
    // `test`: a literal `$` is written `$$`.
    let test = match (&spec.test, binaries.first()) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(b)) => Some(format!("{b} --help")),
        (None, None) => None,
    };
    if let Some(test) = test {
        writeln!(out, "test = {}", quote(&test.replace('$', "$$"))).unwrap();
    }
    // A project built from its Git repository is that repository's: its web page when its URL
    // has one, else none (a `file://` or `ssh://` repository is not on PyPI, so PyPI's page for
    // the name would be another project's, or none). A PyPI project's page is on PyPI and its
    // repository is where the releases are.
    let web = spec.source.as_ref().and_then(|s| s.web_url());
    let homepage = match &spec.source {
        Some(_) => web.clone(),
        None => Some(format!("https://pypi.org/project/{}/", spec.package)),
    };
    if let Some(homepage) = homepage {
        writeln!(out, "homepage = {}", quote(&homepage)).unwrap();
    }
    if let Some(repo) = web.as_deref().or(input.repository) {
        writeln!(out, "repository = {}", quote(repo)).unwrap();
    }
    if full {
        writeln!(out, "source = {}", quote(input.source)).unwrap();
    }
    out
}

/// One `version` block. `source` is `Some` when the version names its own platforms (there is
/// no top-level `source`).
fn write_version(
    out: &mut String,
    version: &Version,
    entry: &Entry,
    common: &[BinaryName],
    source: Option<&str>,
) {
    writeln!(out, "\nversion {} {{", quote(&version.to_string())).unwrap();
    if !entry.deps.is_empty() {
        let deps: Vec<String> = entry.deps.iter().map(|d| quote(d)).collect();
        writeln!(out, "  runtime-dependencies = [{}]", deps.join(", ")).unwrap();
    }
    let extra: Vec<BinaryName> = entry
        .binaries
        .iter()
        .filter(|b| !common.contains(b))
        .cloned()
        .collect();
    if !extra.is_empty() {
        writeln!(out, "  binaries = [{}]", quote_list(&extra)).unwrap();
    }
    if let Some(source) = source {
        let platforms: BTreeSet<Platform> = entry.sha256.keys().copied().collect();
        if platforms.len() == Platform::ALL.len() {
            writeln!(out, "  source = {}", quote(source)).unwrap();
        } else {
            for label in platform_labels(&platforms) {
                writeln!(out, "  platform {} {{", quote(&label)).unwrap();
                writeln!(out, "    source = {}", quote(source)).unwrap();
                out.push_str("  }\n");
            }
        }
    }
    out.push_str("}\n");
}

/// The fewest `platform` labels that select exactly `platforms` out of the four, none
/// overlapping. A label is matched unanchored against os, arch and `os-arch`: `linux` selects
/// both linux arches, `amd64` both amd64 oses, `darwin-arm64` only itself.
fn platform_labels(platforms: &BTreeSet<Platform>) -> Vec<String> {
    let mut left = platforms.clone();
    let mut labels = Vec::new();
    let mut take = |group: [Platform; 2], label: &str, left: &mut BTreeSet<Platform>| {
        if group.iter().all(|p| left.contains(p)) {
            group.iter().for_each(|p| {
                left.remove(p);
            });
            labels.push(label.to_owned());
        }
    };
    for os in [Os::Linux, Os::Darwin] {
        let group = [Arch::Amd64, Arch::Arm64].map(|a| Platform::new(os, a));
        take(group, os.as_str(), &mut left);
    }
    for arch in [Arch::Amd64, Arch::Arm64] {
        let group = [Os::Linux, Os::Darwin].map(|o| Platform::new(o, arch));
        take(group, arch.as_str(), &mut left);
    }
    labels.extend(left.iter().map(ToString::to_string));
    labels
}

/// A JSON string literal, which Hermit's parser (Go `strconv.Unquote`) reads back unchanged.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

fn quote_list(names: &[BinaryName]) -> String {
    let quoted: Vec<String> = names.iter().map(|b| quote(b.as_str())).collect();
    quoted.join(", ")
}

/// URLs a manifest resolves to without a digest, for the given platforms: Hermit would download
/// those without checking them. A platform a version has no source for is unsupported there,
/// not unverified. Used by tests and before writing.
pub fn unverified(existing: &Existing, platforms: &[Platform]) -> Vec<String> {
    existing
        .listings
        .iter()
        .flat_map(|(v, listing)| {
            platforms
                .iter()
                .filter_map(move |p| listing.sources.get(p).map(|t| expand(t, v, *p)))
        })
        .filter(|url| !existing.sha256sums.contains_key(url))
        .collect()
}

/// Where a package's manifest goes in a directory of manifests.
pub fn file_name(package: &PackageName) -> String {
    format!("{package}.hcl")
}

#[cfg(test)]
mod tests;
