//! `.deb` and `.rpm` packages of a tool, per Linux platform, for teams that install with their
//! own package manager rather than Hermit: the platform's tarball's PEX and launchers under
//! `/opt/hermit-pex/<package>/`, a relative symlink `/usr/bin/<binary>` → that launcher per
//! binary (the launcher follows links to find its PEX), a dependency on the version's python
//! and on the flavour's runtime packages, the PEP 440 version mapped to each format's rules
//! ([`version`]). Reproducible: fixed mtimes, owner root, sorted entries, gzip without name or
//! time, no build host: the same tarball gives the same bytes.
//!
//! - `deb`: the `ar` archive of `debian-binary`, `control.tar.gz`, `data.tar.gz`, by hand (it
//!   is three members).
//! - `rpm`: through the `rpm` crate, payload not compressed (the PEX holds compressed wheels).
//! - `version`: PEP 440 → Debian / RPM versions.
//!
//! Blocking (archives of a PEX of up to 200 MB): call [`build_all`] from async code.

pub mod deb;
pub mod rpm;
pub mod version;

use std::path::{Path, PathBuf};

use pep440_rs::Version;

pub use crate::spec::PackageFormat as Format;

use crate::names::{Arch, BinaryName, Os, PackageName, Platform, PythonMinor};
use crate::release::info::AssetRecord;

/// Where the PEX and its launchers go: `/opt/hermit-pex/<package>/`.
pub const PREFIX: &str = "/opt/hermit-pex";

/// The fixed mtime of every entry (2020-01-01, as the tarballs').
pub const MTIME: u64 = 1_577_836_800;

#[derive(Debug, thiserror::Error)]
pub enum OsPackageError {
    #[error("{platform}: .deb and .rpm packages are made for linux platforms only")]
    NotLinux { platform: Platform },
    #[error("{asset}: {message}")]
    Tarball { asset: String, message: String },
    #[error("runtime_packages[{index}] is not a distribution package name ([a-z0-9][a-z0-9+.-]*)")]
    Dependency { index: usize },
    #[error("cannot make the .rpm: {0}")]
    Rpm(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a package is made from: one Linux platform's build of a version.
#[derive(Debug, Clone, Copy)]
pub struct PackageInput<'a> {
    pub package: &'a PackageName,
    pub version: &'a Version,
    pub platform: Platform,
    /// The python the PEX runs with: a dependency of the package.
    pub python: PythonMinor,
    /// The platform's tarball (`<package>.pex` and one launcher per binary at its root).
    pub tarball: &'a Path,
    /// The launchers in it: each gets `/usr/bin/<binary>`.
    pub binaries: &'a [BinaryName],
    /// One line (the config's description, else the package name).
    pub summary: &'a str,
    /// The flavour's and the package's runtime packages for this format (validated names).
    pub depends: &'a [String],
    /// The license the package declares (its SPDX expression or name), for RPM's License tag.
    pub license: Option<&'a str>,
    /// Where the project comes from, for the description: `PyPI`, `its Git repository`.
    pub origin: &'a str,
    /// The project's web page: PyPI's, a Git repository's web page, or none (`file://`).
    pub homepage: Option<&'a str>,
}

/// A package written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub format: Format,
    /// `<package>-linux-<arch>.deb` / `.rpm`: the release asset's name.
    pub asset: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Built {
    pub fn record(&self) -> AssetRecord {
        AssetRecord {
            asset: self.asset.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
        }
    }
}

/// The release asset of a platform's package: `<package>-linux-amd64.deb`. The version is the
/// release's; a name without `~`, `+` or `:` keeps the asset named as uploaded (GitHub renames
/// assets with other characters).
pub fn asset_name(package: &PackageName, platform: Platform, format: Format) -> String {
    format!("{package}-{platform}.{}", format.extension())
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Deb => "deb",
            Format::Rpm => "rpm",
        }
    }
}

/// Debian's and RPM's names of the platform's architecture.
fn arch(platform: Platform) -> Result<(&'static str, &'static str), OsPackageError> {
    match (platform.os, platform.arch) {
        (Os::Linux, Arch::Amd64) => Ok(("amd64", "x86_64")),
        (Os::Linux, Arch::Arm64) => Ok(("arm64", "aarch64")),
        _ => Err(OsPackageError::NotLinux { platform }),
    }
}

/// The launchers a tarball holds: every file at its root but `<package>.pex`.
pub fn tarball_binaries(
    tarball: &Path,
    package: &PackageName,
) -> Result<Vec<BinaryName>, OsPackageError> {
    let asset = tarball
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(std::fs::File::open(tarball)?));
    let mut tar = tar::Archive::new(gz);
    let pex = format!("{package}.pex");
    let mut binaries = Vec::new();
    for entry in tar.entries()? {
        let entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == pex {
            continue;
        }
        binaries.push(BinaryName::new(&name).map_err(|e| OsPackageError::Tarball {
            asset: asset.clone(),
            message: e.to_string(),
        })?);
    }
    binaries.sort();
    Ok(binaries)
}

/// The tarball's files, unpacked into a directory of their own: exactly `<package>.pex` and
/// the launchers, regular files at the root.
struct Unpacked {
    dir: tempfile::TempDir,
    /// (file name, path), sorted by name.
    files: Vec<(String, PathBuf)>,
}

fn unpack(input: &PackageInput<'_>, scratch: &Path) -> Result<Unpacked, OsPackageError> {
    let asset = input
        .tarball
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let bad = |message: String| OsPackageError::Tarball {
        asset: asset.clone(),
        message,
    };
    let pex = format!("{}.pex", input.package);
    let mut wanted: Vec<String> = input.binaries.iter().map(ToString::to_string).collect();
    wanted.push(pex);
    wanted.sort();
    std::fs::create_dir_all(scratch)?;
    let dir = tempfile::Builder::new()
        .prefix(".unpacked-")
        .tempdir_in(scratch)?;
    let gz =
        flate2::read::GzDecoder::new(std::io::BufReader::new(std::fs::File::open(input.tarball)?));
    let mut tar = tar::Archive::new(gz);
    let mut files = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        // Names are only ever ours (the tarball was built here), but they become paths:
        // nothing but the expected plain names is taken.
        if !entry.header().entry_type().is_file() || !wanted.contains(&name) {
            return Err(bad(format!(
                "holds {}: a tarball holds only {} and the launchers, as plain files",
                crate::names::shown(&name),
                wanted
                    .iter()
                    .find(|w| w.ends_with(".pex"))
                    .expect("the pex")
            )));
        }
        if files.iter().any(|(n, _)| n == &name) {
            return Err(bad(format!("holds {name} twice")));
        }
        let path = dir.path().join(&name);
        std::io::copy(&mut entry, &mut std::fs::File::create(&path)?)?;
        files.push((name, path));
    }
    files.sort();
    let names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    if names != wanted.iter().collect::<Vec<_>>() {
        return Err(bad(format!(
            "holds {} where {} were expected",
            names.len(),
            wanted.join(", ")
        )));
    }
    Ok(Unpacked { dir, files })
}

/// Writes each of `formats` for `input` into `out_dir` (blocking). The tarball is unpacked
/// once, into a scratch directory under `out_dir` removed afterwards.
pub fn build_blocking(
    formats: &[Format],
    input: &PackageInput<'_>,
    out_dir: &Path,
) -> Result<Vec<Built>, OsPackageError> {
    arch(input.platform)?;
    if let Some(index) = input
        .depends
        .iter()
        .position(|d| !crate::spec::rules::is_distro_package(d))
    {
        return Err(OsPackageError::Dependency { index });
    }
    let unpacked = unpack(input, out_dir)?;
    // Only RPM has a License tag.
    let declared = match input.license {
        None if formats.contains(&Format::Rpm) => declared_license(input, &unpacked),
        _ => None,
    };
    let input = &PackageInput {
        license: input.license.or(declared.as_deref()),
        ..*input
    };
    let mut formats = formats.to_vec();
    formats.sort();
    formats.dedup();
    let mut out = Vec::new();
    for format in formats {
        let asset = asset_name(input.package, input.platform, format);
        let path = out_dir.join(&asset);
        match format {
            Format::Deb => deb::write(input, &unpacked.files, &path)?,
            Format::Rpm => rpm::write(input, &unpacked.files, &path)?,
        }
        let (size, sha256) = crate::digest::sha256_file(&path)?;
        out.push(Built {
            format,
            asset,
            path,
            sha256,
            size,
        });
    }
    drop(unpacked.dir);
    Ok(out)
}

/// The license the tool's own wheel in the PEX (`.deps/<name>-<version>-….whl`) declares:
/// its SPDX expression, else its one license name. None when it declares none, or several
/// names (a list of classifiers does not say whether they apply together or as a choice).
fn declared_license(input: &PackageInput<'_>, unpacked: &Unpacked) -> Option<String> {
    let pex_name = format!("{}.pex", input.package);
    let (_, pex) = unpacked.files.iter().find(|(n, _)| *n == pex_name)?;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(pex).ok()?).ok()?;
    let member = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| {
            n.strip_prefix(".deps/")
                .and_then(|w| crate::lock::wheel_name::WheelName::parse(w).ok())
                .is_some_and(|w| {
                    crate::names::normalize(&w.distribution) == input.package.as_str()
                        && w.version.parse::<Version>().ok().as_ref() == Some(input.version)
                })
        })?;
    // The wheel is a zip inside the zip: copied out to be read (bounded by the PEX's size).
    let wheel = unpacked
        .dir
        .path()
        .join(member.trim_start_matches(".deps/"));
    let mut entry = zip.by_name(&member).ok()?;
    std::io::copy(&mut entry, &mut std::fs::File::create(&wheel).ok()?).ok()?;
    let declared = crate::sbom::license::read(&wheel).ok()??;
    match (declared.expression, declared.names.as_slice()) {
        (Some(e), _) => Some(e),
        (None, [one]) => Some(one.clone()),
        _ => None,
    }
}

/// [`build_blocking`] on the blocking pool.
pub async fn build_all(
    formats: &[Format],
    input: &PackageInput<'_>,
    out_dir: &Path,
) -> Result<Vec<Built>, OsPackageError> {
    let formats = formats.to_vec();
    let (origin, homepage) = (input.origin.to_owned(), input.homepage.map(str::to_owned));
    let (package, version, tarball, binaries, summary, depends, license, out_dir) = (
        input.package.clone(),
        input.version.clone(),
        input.tarball.to_owned(),
        input.binaries.to_vec(),
        input.summary.to_owned(),
        input.depends.to_vec(),
        input.license.map(str::to_owned),
        out_dir.to_owned(),
    );
    let (platform, python) = (input.platform, input.python);
    tokio::task::spawn_blocking(move || {
        let input = PackageInput {
            package: &package,
            version: &version,
            platform,
            python,
            tarball: &tarball,
            binaries: &binaries,
            summary: &summary,
            depends: &depends,
            license: license.as_deref(),
            origin: &origin,
            homepage: homepage.as_deref(),
        };
        build_blocking(&formats, &input, &out_dir)
    })
    .await
    .expect("packaging does not panic")
}

/// The long description both formats carry.
fn description(input: &PackageInput<'_>) -> String {
    let commands: Vec<&str> = input.binaries.iter().map(BinaryName::as_str).collect();
    format!(
        "{} {} from {} as a PEX, built by hermit-pex: {} in {PREFIX}/{}/, with {} in /usr/bin. \
         It runs with CPython {} (python{} on PATH).",
        input.package,
        input.version,
        input.origin,
        if commands.len() == 1 {
            "the command"
        } else {
            "the commands"
        },
        input.package,
        commands.join(", "),
        input.python,
        input.python
    )
}

/// `/usr/bin/<binary>` → `../../opt/hermit-pex/<package>/<binary>`: relative, so that the
/// package unpacked under another root (`dpkg --root`, a container image layer) still works.
fn link_target(package: &PackageName, binary: &str) -> String {
    format!("../..{PREFIX}/{package}/{binary}")
}

#[cfg(test)]
mod tests;
