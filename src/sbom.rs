//! A CycloneDX 1.6 SBOM of a version (`<package>.cdx.json`, a release asset beside the lock):
//! every distribution of the version's pylock with its version, PURL (`pkg:pypi/<name>@<version>`),
//! the sha256 of each file a platform chose (with where it came from and which platforms chose
//! it) and the license its metadata declares (`License-Expression`, else `License:` and the
//! `License ::` classifiers); the python the PEX runs with; and pex, uv and hermit-pex as the
//! tools. Deterministic: the same lock and choices give the same bytes (keys sorted, no
//! timestamp, a serial number derived from the content).
//!
//! A distribution no wanted platform installs (a Windows-only one of the universal lock) is
//! listed too, with scope `optional` and no file: the SBOM lists exactly the lock.
//!
//! - `license`: what a wheel's or sdist's metadata declares (blocking, bounded reads).

pub mod license;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use serde_json::{Value, json};

pub use license::Declared;

use crate::lock::pylock::{File, Pylock, Source};
use crate::lock::{Choices, FetchError, Fetcher};
use crate::names::{PackageName, Platform, PythonMinor};

/// The CycloneDX version written.
pub const SPEC_VERSION: &str = "1.6";

/// The release asset holding a version's SBOM.
pub fn asset_name(package: &PackageName) -> String {
    format!("{package}.cdx.json")
}

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{file}: cannot read its license metadata: {source}")]
    Metadata {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot write the SBOM: {0}")]
    Io(#[from] std::io::Error),
}

/// What a version's SBOM is made from: its lock and what each wanted platform chose from it.
#[derive(Debug, Clone, Copy)]
pub struct SbomInput<'a> {
    pub package: &'a PackageName,
    pub version: &'a Version,
    pub python: PythonMinor,
    pub lock: &'a Pylock,
    pub choices: &'a Choices,
}

/// A distribution's license as declared, by (name, version).
pub type Licenses = BTreeMap<(PackageName, Version), Declared>;

/// The SBOM file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Sbom {
    /// What the build info records of it (`LockRecord::sbom`).
    pub fn record(&self, package: &PackageName) -> crate::release::info::AssetRecord {
        crate::release::info::AssetRecord {
            asset: asset_name(package),
            sha256: self.sha256.clone(),
            size: self.size,
        }
    }
}

/// Reads the licenses (one chosen file of each distribution, fetched into the cache, where the
/// lock step's choice of launchers and the builds fetch them anyway), makes the document and
/// writes it as `dir/<package>.cdx.json`.
pub async fn make(input: &SbomInput<'_>, fetcher: &Fetcher, dir: &Path) -> Result<Sbom, SbomError> {
    let licenses = declared_licenses(input, fetcher).await?;
    let bytes = document(input, &licenses);
    let path = dir.join(asset_name(input.package));
    let (out, sha256, size) = (
        path.clone(),
        crate::digest::sha256_hex(&bytes),
        bytes.len() as u64,
    );
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(out.parent().expect("a file in a directory"))?;
        std::fs::write(&out, &bytes)
    })
    .await
    .expect("writing a file does not panic")?;
    Ok(Sbom { path, sha256, size })
}

/// The license each chosen distribution declares, read from one of its chosen files (a wheel
/// when one was chosen, else its sdist).
pub async fn declared_licenses(
    input: &SbomInput<'_>,
    fetcher: &Fetcher,
) -> Result<Licenses, SbomError> {
    let mut pick: BTreeMap<(PackageName, Version), &File> = BTreeMap::new();
    for (_, files) in input.choices.ready() {
        for c in files {
            let key = (c.name.clone(), c.version.clone());
            let better = |old: &File| (c.is_sdist(), &c.file.name) < (is_sdist(old), &old.name);
            match pick.get(&key) {
                Some(old) if !better(old) => {}
                _ => {
                    pick.insert(key, &c.file);
                }
            }
        }
    }
    let paths = fetcher.fetch_all(pick.values().copied()).await?;
    let wanted: Vec<((PackageName, Version), String, PathBuf)> = pick
        .into_iter()
        .map(|(k, f)| (k, f.name.clone(), paths[&f.sha256].clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut out = Licenses::new();
        for (key, file, path) in wanted {
            match license::read(&path) {
                Ok(Some(d)) if !d.is_empty() => {
                    out.insert(key, d);
                }
                Ok(_) => {}
                Err(source) => return Err(SbomError::Metadata { file, source }),
            }
        }
        Ok(out)
    })
    .await
    .expect("reading metadata does not panic")
}

fn is_sdist(f: &File) -> bool {
    !f.name.ends_with(".whl")
}

/// One file some platform chose, and which.
struct ChosenBy<'a> {
    file: &'a File,
    platforms: BTreeSet<Platform>,
}

/// The SBOM's bytes: pretty JSON, keys sorted, ending in a newline.
pub fn document(input: &SbomInput<'_>, licenses: &Licenses) -> Vec<u8> {
    // Files chosen per distribution (name, version), by digest.
    let mut chosen: BTreeMap<(&PackageName, &Version), BTreeMap<&str, ChosenBy<'_>>> =
        BTreeMap::new();
    for (platform, files) in input.choices.ready() {
        for c in files {
            chosen
                .entry((&c.name, &c.version))
                .or_default()
                .entry(c.file.sha256.as_str())
                .or_insert_with(|| ChosenBy {
                    file: &c.file,
                    platforms: BTreeSet::new(),
                })
                .platforms
                .insert(platform);
        }
    }
    let mut components: BTreeMap<String, Value> = BTreeMap::new();
    let mut required: Vec<String> = Vec::new();
    for p in &input.lock.packages {
        let purl = purl(&p.name, &p.version);
        if components.contains_key(&purl) {
            continue; // one name and version under two markers: listed once
        }
        let files = chosen.get(&(&p.name, &p.version));
        let mut c = json!({
            "type": "library",
            "bom-ref": purl,
            "name": p.name.as_str(),
            "version": p.version.to_string(),
            "purl": purl,
        });
        let mut properties = Vec::new();
        match files {
            Some(files) => {
                c["scope"] = json!("required");
                required.push(purl.clone());
                c["hashes"] = Value::Array(
                    files
                        .keys()
                        .map(|sha| json!({"alg": "SHA-256", "content": sha}))
                        .collect(),
                );
                let refs: Vec<Value> = files.values().filter_map(external_reference).collect();
                if !refs.is_empty() {
                    c["externalReferences"] = Value::Array(refs);
                }
                let platforms: BTreeSet<Platform> = files
                    .values()
                    .flat_map(|f| f.platforms.iter().copied())
                    .collect();
                properties.push(property("hermit-pex:platforms", &joined(&platforms)));
                for f in files.values() {
                    properties.push(property(
                        "hermit-pex:file",
                        &format!("{} ({})", f.file.name, joined(&f.platforms)),
                    ));
                }
            }
            None => {
                c["scope"] = json!("optional");
                c["description"] = json!(
                    "locked, but installed on none of the version's platforms (its marker \
                     holds on none of them)"
                );
            }
        }
        if let Some(m) = p.marker.as_ref().and_then(|m| m.try_to_string()) {
            properties.push(property("hermit-pex:marker", &m));
        }
        if let Some(l) = licenses.get(&(p.name.clone(), p.version.clone())) {
            c["licenses"] = license_choice(l);
        }
        if !properties.is_empty() {
            c["properties"] = Value::Array(properties);
        }
        components.insert(purl, c);
    }
    let python_ref = format!("python@{}", input.python);
    let root_ref = input.package.tag(input.version);
    let mut list: Vec<Value> = components.into_values().collect();
    list.push(json!({
        "type": "platform",
        "bom-ref": python_ref,
        "name": "python",
        "version": input.python.to_string(),
        "scope": "required",
        "description": format!(
            "CPython {}: the interpreter the PEX runs with (not bundled; Hermit's runtime \
             dependency python3@{}, the .deb/.rpm dependency on it)",
            input.python, input.python
        ),
    }));
    required.push(python_ref);
    required.sort();
    let mut doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "component": {
                "type": "application",
                "bom-ref": root_ref,
                "name": input.package.as_str(),
                "version": input.version.to_string(),
                "description": format!(
                    "{} {} as a PEX with one launcher per console script, built by hermit-pex",
                    input.package, input.version
                ),
                "externalReferences": [{
                    "type": "website",
                    "url": format!("https://pypi.org/project/{}/", input.package),
                }],
            },
            "tools": {"components": [
                tool("hermit-pex", env!("CARGO_PKG_VERSION"), None, "made this SBOM from the version's lock"),
                tool("pex", crate::tools::PEX_VERSION, Some("pkg:pypi/pex@"), "built the PEX; its bootstrap runs in it"),
                tool("uv", crate::lock::UV_VERSION, Some("pkg:pypi/uv@"), "resolved the lock (PEP 751 pylock.toml)"),
            ]},
        },
        "components": list,
        "dependencies": [{"ref": root_ref, "dependsOn": required}],
    });
    // Same content, same serial number: a name-based UUID of the document without it.
    let digest = crate::digest::sha256_hex(serde_json::to_vec(&doc).expect("JSON serialises"));
    doc["serialNumber"] = json!(format!("urn:uuid:{}", name_based_uuid(&digest)));
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("JSON serialises");
    bytes.push(b'\n');
    bytes
}

/// `pkg:pypi/<name>@<version>`: the PEP 503 name (lowercase, `-`), the version
/// percent-encoded where it is not plain (`1!2.0` → `1%212.0`).
pub fn purl(name: &PackageName, version: &Version) -> String {
    let v: String = version
        .to_string()
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("pkg:pypi/{name}@{v}")
}

fn joined(platforms: &BTreeSet<Platform>) -> String {
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn property(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn tool(name: &str, version: &str, purl: Option<&str>, description: &str) -> Value {
    let mut t = json!({
        "type": "application",
        "name": name,
        "version": version,
        "description": description,
    });
    if let Some(p) = purl {
        t["purl"] = json!(format!("{p}{version}"));
    }
    t
}

/// Where a chosen file came from, with its digest; a file of the machine that locked (a Git
/// source's own wheel) has no URL to give.
fn external_reference(f: &ChosenBy<'_>) -> Option<Value> {
    let Source::Url(url) = &f.file.source else {
        return None;
    };
    if url.starts_with("file:") {
        return None;
    }
    let kind = if f.file.name.ends_with(".whl") {
        "distribution"
    } else {
        "source-distribution"
    };
    Some(json!({
        "type": kind,
        "url": crate::pypi::redact(url),
        "hashes": [{"alg": "SHA-256", "content": f.file.sha256}],
        "comment": format!("{}, chosen for {}", f.file.name, joined(&f.platforms)),
    }))
}

/// CycloneDX's license choice: one SPDX expression, or named licenses.
fn license_choice(d: &Declared) -> Value {
    match &d.expression {
        Some(e) => json!([{"expression": e, "acknowledgement": "declared"}]),
        None => Value::Array(
            d.names
                .iter()
                .map(|n| json!({"license": {"name": n, "acknowledgement": "declared"}}))
                .collect(),
        ),
    }
}

/// An RFC 4122 UUID (version 5 layout: name-based) from the first 16 bytes of a sha256 hex.
fn name_based_uuid(sha256_hex: &str) -> String {
    let mut b = hex::decode(&sha256_hex[..32]).expect("a sha256 hex");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests;
