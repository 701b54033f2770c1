//! The package model: `python/<package>/config.yaml`, and later the `spec` of a `PythonPackage`
//! (DESIGN §3). Parsing refuses unknown fields and bad names; `validate` adds the rules that
//! span fields. Every problem names the file, the field and the fix.

use std::fmt;
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use pep508_rs::Requirement;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{BinaryName, PackageName, Platform, PythonMinor, check_release_version};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// The PyPI project.
    pub package: PackageName,
    /// Console scripts to expose; one launcher each.
    #[schemars(length(min = 1))]
    pub binaries: Vec<BinaryName>,
    /// The lowest entry is the minimum version built; each entry's python applies from its
    /// version up to the next entry.
    #[schemars(length(min = 1))]
    pub versions: Vec<VersionEntry>,
    /// Manifest description; default: the package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The command Hermit runs to test the package; default `<first binary> --help`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// PEP 508 requirements added to every version's requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_packages: Vec<String>,
    /// Versions never to build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<PyVersion>,
    /// Build pre-releases and dev releases too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prereleases: bool,
    /// Platforms to build; default all four.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<Platform>>,
    /// Carried over from the original pipeline: a change rebuilds versions not yet published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u32>,
    /// When a platform cannot exist (no wheel for it on the index), publish and list the
    /// version for the others (default true); false: every platform or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_platforms: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionEntry {
    #[schemars(with = "String")]
    pub version: PyVersion,
    pub python: PythonMinor,
}

/// A PEP 440 version read from YAML. An unquoted `1.10` is the float 1.1 in YAML, so floats are
/// refused with a hint to quote; integers (`2024`) are fine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PyVersion(pub Version);

impl<'de> Deserialize<'de> for PyVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PyVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PEP 440 version string, e.g. \"0.83.1\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PyVersion, E> {
                let v: Version = s
                    .trim()
                    .parse()
                    .map_err(|e| E::custom(format!("{s:?} is not a PEP 440 version ({e})")))?;
                check_release_version(&v).map_err(E::custom)?;
                Ok(PyVersion(v))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PyVersion, E> {
                Ok(PyVersion(Version::new([n])))
            }
            fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<PyVersion, E> {
                Err(E::custom(format!(
                    "{f} without quotes is a number in YAML and loses trailing zeros (1.10 reads as 1.1); \
                     quote the version, e.g. \"{f}\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for PyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One thing wrong with a config: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A config file that cannot be used, with every problem found in it.
#[derive(Debug, thiserror::Error)]
pub struct SpecError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.field.is_empty() {
                write!(f, "{}: {}", self.file.display(), p.message)?;
            } else {
                write!(f, "{}: {}: {}", self.file.display(), p.field, p.message)?;
            }
        }
        Ok(())
    }
}

/// A validated spec with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub file: PathBuf,
    pub spec: PackageSpec,
}

/// Reads and validates one config file.
pub fn load(file: &Path) -> Result<LoadedSpec, SpecError> {
    let fail = |problems| SpecError {
        file: file.to_owned(),
        problems,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(vec![Problem::new("", format!("cannot read the file: {e}"))]))?;
    let spec = parse(&text).map_err(|p| fail(vec![p]))?;
    spec.validate().map_err(fail)?;
    Ok(LoadedSpec {
        file: file.to_owned(),
        spec,
    })
}

/// Parses YAML text into a spec; the problem names the field the parser stopped at.
pub fn parse(text: &str) -> Result<PackageSpec, Problem> {
    serde_norway::from_str(text).map_err(|e| {
        let msg = e.to_string();
        // serde_norway prefixes the path of the failing field ("versions[1].python: ...").
        match msg.split_once(": ") {
            Some((path, rest)) if is_field_path(path) => Problem::new(path, rest),
            _ => Problem::new(field_from_message(&msg), msg),
        }
    })
}

fn is_field_path(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b))
}

/// Errors at the top level carry no path; name the field the message mentions, if any.
fn field_from_message(msg: &str) -> String {
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some((name, _)) = msg
            .split_once(marker)
            .and_then(|(_, rest)| rest.split_once('`'))
        {
            return name.to_owned();
        }
    }
    String::new()
}

impl PackageSpec {
    /// Rules that span fields. Returns every problem, not only the first.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        if self.binaries.is_empty() {
            problems.push(Problem::new(
                "binaries",
                "is empty: list at least one console script, e.g. [aider]",
            ));
        }
        if let Some(dup) = first_duplicate(&self.binaries) {
            problems.push(Problem::new("binaries", format!("{dup} is listed twice")));
        }
        if self.versions.is_empty() {
            problems.push(Problem::new(
                "versions",
                "is empty: list at least one {version, python} entry; the lowest is the minimum",
            ));
        }
        let versions: Vec<&Version> = self.versions.iter().map(|e| &e.version.0).collect();
        if let Some(dup) = first_duplicate(&versions) {
            problems.push(Problem::new("versions", format!("{dup} is listed twice")));
        }
        if let Some(dup) = first_duplicate(&self.exclude) {
            problems.push(Problem::new("exclude", format!("{dup} is listed twice")));
        }
        match &self.platforms {
            Some(p) if p.is_empty() => problems.push(Problem::new(
                "platforms",
                "is empty: list platforms to build, or leave the field out for all four",
            )),
            Some(p) => {
                if let Some(dup) = first_duplicate(p) {
                    problems.push(Problem::new("platforms", format!("{dup} is listed twice")));
                }
            }
            None => {}
        }
        for (i, req) in self.extra_packages.iter().enumerate() {
            if let Err(e) = req.parse::<Requirement>() {
                problems.push(Problem::new(
                    format!("extra_packages[{i}]"),
                    format!(
                        "{req:?} is not a PEP 508 requirement: {}",
                        first_line(&e.to_string())
                    ),
                ));
            }
        }
        if let Some(test) = &self.test
            && (test.trim().is_empty() || test.contains(['\n', '\r', '\0']))
        {
            problems.push(Problem::new(
                "test",
                "must be one non-empty command line, e.g. \"aider --help\"",
            ));
        }
        if self.description.as_ref().is_some_and(|d| d.contains('\0')) {
            problems.push(Problem::new("description", "contains a NUL character"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The lowest configured version: nothing below it is built.
    pub fn minimum(&self) -> Option<&Version> {
        self.versions.iter().map(|e| &e.version.0).min()
    }

    /// The python for a version: the entry with the greatest version <= it.
    pub fn python_for(&self, version: &Version) -> Option<PythonMinor> {
        self.versions
            .iter()
            .filter(|e| &e.version.0 <= version)
            .max_by(|a, b| a.version.cmp(&b.version))
            .map(|e| e.python)
    }

    pub fn platforms(&self) -> Vec<Platform> {
        let mut p = self
            .platforms
            .clone()
            .unwrap_or_else(|| Platform::ALL.to_vec());
        p.sort();
        p
    }

    pub fn partial_platforms(&self) -> bool {
        self.partial_platforms.unwrap_or(true)
    }

    pub fn is_excluded(&self, version: &Version) -> bool {
        self.exclude.iter().any(|e| &e.0 == version)
    }

    pub fn test_command(&self) -> String {
        self.test.clone().unwrap_or_else(|| {
            format!(
                "{} --help",
                self.binaries.first().map_or("", |b| b.as_str())
            )
        })
    }

    pub fn description(&self) -> String {
        self.description
            .clone()
            .unwrap_or_else(|| self.package.to_string())
    }
}

fn first_duplicate<T: PartialEq + fmt::Display>(items: &[T]) -> Option<&T> {
    items
        .iter()
        .enumerate()
        .find(|(i, a)| items[..*i].contains(a))
        .map(|(_, a)| a)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Finds config files: a file is taken as is, a directory holding `config.yaml` is one package,
/// and any other directory is searched one level down (`python/` → `python/*/config.yaml`).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_file() {
            found.push(path.clone());
        } else if path.join("config.yaml").is_file() {
            found.push(path.join("config.yaml"));
        } else if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut here: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("config.yaml"))
                .filter(|p| p.is_file())
                .collect();
            if here.is_empty() {
                return Err(format!(
                    "{}: no config.yaml here or in its subdirectories (expected {}/<package>/config.yaml)",
                    path.display(),
                    path.display()
                ));
            }
            here.sort();
            found.append(&mut here);
        } else {
            return Err(format!("{}: no such file or directory", path.display()));
        }
    }
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests;
