//! The package model: `python/<package>/config.yaml`, and later the `spec` of a `PythonPackage`
//! (DESIGN §3). Parsing refuses unknown fields and bad names; `validate` adds the rules that
//! span fields and the size limits. Every problem names the file, the field and the fix. The
//! limits and patterns are in [`rules`], which the CRD's schema is made from too.

pub mod rules;
mod text;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use pep508_rs::Requirement;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{
    BinaryName, NameError, PackageName, Platform, PythonMinor, check_release_version, shown,
};
use text::Source;
pub use text::{MAX_CONFIG_BYTES, MAX_FLOW_OPENERS, shorten};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// The PyPI project.
    pub package: PackageName,
    /// Console scripts to expose, one launcher each. Left out: every console script of the
    /// version (read from its wheel). Given: at least one, no duplicates.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "non_empty_binaries"
    )]
    #[schemars(length(min = 1))]
    pub binaries: Vec<BinaryName>,
    /// The lowest entry is the minimum version built; each entry's python applies from its
    /// version up to the next entry.
    #[schemars(length(min = 1))]
    pub versions: Vec<VersionEntry>,
    /// Manifest description; default: the package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The command Hermit runs to test the package: one of `binaries`, alone or followed by a
    /// space and its arguments; default `<first binary> --help`.
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
    /// Where the versions come from when not the index: a Git repository's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<GitSource>,
    /// Distribution packages made of each Linux platform's build besides its tarball, and
    /// released beside it: `deb`, `rpm` or both (docs/src/flavours.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageFormat>,
    /// The build environment: one of the operator's flavours, and the system packages this
    /// package needs to build its sdists and to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
}

/// A package's build environment (docs/src/flavours.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuildSpec {
    /// One of the operator's build flavours (its builder image, install command and base
    /// packages); left out: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub flavour: Option<String>,
    /// Distribution packages needed to build this package's sdists (headers, compilers), added
    /// to the flavour's: `libffi-dev`. Names only: no options, no shell.
    #[serde(
        default,
        alias = "build_packages",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub build_packages: Vec<String>,
    /// Distribution packages needed to run it (shared libraries), added to the flavour's: they
    /// become dependencies of its .deb/.rpm.
    #[serde(
        default,
        alias = "runtime_packages",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub runtime_packages: Vec<String>,
}

impl BuildSpec {
    fn check(&self, problems: &mut Vec<Problem>) {
        if let Some(f) = &self.flavour
            && (f.len() > rules::MAX_INDEX_NAME_LEN || !rules::INDEX_NAME.is_match(f))
        {
            problems.push(Problem::new(
                "build.flavour",
                "is not a flavour name: lowercase letters, digits and '-', at most 63",
            ));
        }
        for (field, list) in [
            ("build.build_packages", &self.build_packages),
            ("build.runtime_packages", &self.runtime_packages),
        ] {
            for (i, why) in rules::package_problems(list) {
                let at = i.map_or_else(|| field.to_owned(), |i| format!("{field}[{i}]"));
                problems.push(Problem::new(at, why));
            }
            let mut seen = std::collections::BTreeMap::new();
            if let Some((i, first)) = list
                .iter()
                .enumerate()
                .find_map(|(i, p)| seen.insert(p, i).map(|first| (i, first)))
            {
                problems.push(Problem::new(
                    format!("{field}[{i}]"),
                    format!("is listed twice (also {field}[{first}])"),
                ));
            }
        }
    }
}

/// A distribution package format a tool is also released in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    /// A Debian package (`<package>-linux-<arch>.deb`).
    Deb,
    /// An RPM package (`<package>-linux-<arch>.rpm`).
    Rpm,
}

impl std::str::FromStr for PackageFormat {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match s {
            "deb" => Ok(PackageFormat::Deb),
            "rpm" => Ok(PackageFormat::Rpm),
            _ => Err(NameError(format!(
                "{} is not a package format: deb or rpm",
                shown(s)
            ))),
        }
    }
}

impl fmt::Display for PackageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
        })
    }
}

/// A project built from a Git repository at its tags: tag `<tag_prefix><version>` is that
/// version, built from a clean checkout of the tag (its dependencies still come from the index).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitSource {
    /// Any URL git takes: `https://…`, `ssh://…`, `git@host:path`, `file:///…`, and for a
    /// public repository `http://…` or `git://…` (credentials only ever go over https or ssh).
    #[schemars(
        length(max = 512),
        regex(
            pattern = r"^(https?://[A-Za-z0-9]|git://[A-Za-z0-9]|ssh://([A-Za-z0-9._~-]+@)?[A-Za-z0-9]|file:///|[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*:)[!-~]*$"
        )
    )]
    pub git: String,
    /// What comes before the version in a tag (default `v`: tag `v1.4.0` is version 1.4.0).
    #[serde(default, alias = "tag_prefix", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = r"^[A-Za-z0-9._/-]*$"))]
    pub tag_prefix: Option<String>,
    /// Where the project's `pyproject.toml` / `setup.py` is in the repository (default: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255), regex(pattern = r"^[A-Za-z0-9._/-]*$"))]
    pub subdirectory: Option<String>,
    /// Follow this branch instead of tags: its head is built, as the version the project
    /// declares there. A new head that declares a version already published is reported,
    /// never rebuilt. Not with `tag_prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub branch: Option<String>,
}

/// The web page of the Git repository at `git`, when its URL names a web host
/// (`https://host/org/x.git`, `git@host:org/x.git`); none for `file://`, `ssh://` and the like.
pub fn git_web_url(git: &str) -> Option<String> {
    let url = git.trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    if let Some(rest) = url.strip_prefix("https://") {
        return Some(format!(
            "https://{}",
            rest.split_once('@').map_or(rest, |(_, r)| r)
        ));
    }
    let (user_host, path) = url.split_once(':')?;
    let host = user_host.split_once('@')?.1;
    (!host.contains('/') && !path.starts_with('/')).then(|| format!("https://{host}/{path}"))
}

impl GitSource {
    pub fn tag_prefix(&self) -> &str {
        self.tag_prefix.as_deref().unwrap_or("v")
    }

    pub fn subdirectory(&self) -> &str {
        self.subdirectory.as_deref().unwrap_or("").trim_matches('/')
    }

    /// The repository's web page, when its URL names a web host (`https://host/org/x.git`,
    /// `git@host:org/x.git`).
    pub fn web_url(&self) -> Option<String> {
        git_web_url(&self.git)
    }

    fn check(&self, problems: &mut Vec<Problem>) {
        let public = ["http://", "git://"].iter().any(|p| {
            self.git
                .strip_prefix(p)
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_alphanumeric()))
        });
        let printable = self.git.bytes().all(|b| (b'!'..=b'~').contains(&b));
        let known = rules::GIT_URL.is_match(&self.git) || (public && printable);
        if !known || self.git.len() > rules::MAX_GIT_URL_LEN {
            problems.push(Problem::new(
                "source.git",
                format!(
                    "{} is not a Git URL hermit-pex takes: write https://…, ssh://…, git@host:path, file:///…, or for a public repository http://… or git://…",
                    crate::names::shown(&self.git)
                ),
            ));
        }
        let plain = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        };
        if let Some(p) = &self.tag_prefix
            && (!plain(p) || p.len() > 64)
        {
            problems.push(Problem::new(
                "source.tag_prefix",
                "use letters, digits, '.', '_', '/' and '-' (64 at most), e.g. \"v\" or \"release-\"",
            ));
        }
        if let Some(b) = &self.branch {
            if b.is_empty() || b.len() > rules::MAX_REF_LEN || rules::BAD_BRANCH.is_match(b) {
                problems.push(Problem::new(
                    "source.branch",
                    "write a branch name git takes, e.g. main: no leading '-' or '/', no '..', '//', \
                     '@{', spaces, control characters or any of ~^:?*[\\, no component starting \
                     with '.' or ending with '.lock'",
                ));
            }
            if self.tag_prefix.is_some() {
                problems.push(Problem::new(
                    "source.tag_prefix",
                    "a source follows a branch or tags, not both: remove tag_prefix or branch",
                ));
            }
        }
        if let Some(d) = &self.subdirectory
            && (!plain(d) || d.len() > 255 || rules::BAD_DIR.is_match(d))
        {
            problems.push(Problem::new(
                "source.subdirectory",
                "write a relative path inside the repository (letters, digits, '.', '_', '/', '-'; no ..)",
            ));
        }
    }
}

/// `binaries: []` is refused where it is written: leaving the field out is how to ask for every
/// console script, and an empty list more likely lost its entries by mistake. (Refused inside
/// the visitor, so that the parser's error carries the field's path and line.)
fn non_empty_binaries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<BinaryName>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<BinaryName>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of console script names, e.g. [aider]")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut binaries = Vec::new();
            while let Some(b) = seq.next_element()? {
                binaries.push(b);
            }
            if binaries.is_empty() {
                return Err(serde::de::Error::custom(
                    "is empty: list the console scripts to expose, e.g. [aider], or leave binaries \
                     out for every console script of the package",
                ));
            }
            Ok(binaries)
        }
    }
    d.deserialize_seq(V)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionEntry {
    #[schemars(with = "String")]
    pub version: PyVersion,
    pub python: PythonMinor,
}

/// A PEP 440 public version read from YAML, in the spellings [`rules::PUBLIC_VERSION`] takes
/// (what the CRD takes). An unquoted `1.10` is the float 1.1 in YAML, so floats are refused
/// with a hint to quote; integers (`2024`) are fine.
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
                PyVersion::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PyVersion, E> {
                Ok(PyVersion(Version::new([n])))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PyVersion, E> {
                Err(E::custom(format!(
                    "{n} is not a PEP 440 version: write a version such as \"1.2.3\""
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<PyVersion, E> {
                // The text as written is read back from the file by `text::problem`.
                Err(E::custom(format!(
                    "{f} {} (1.10 reads as 1.1): quote the version",
                    text::UNQUOTED_NUMBER
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl PyVersion {
    /// A version as the CRD takes it: the public-version pattern, then the PEP 440 parser.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let n = rules::length(s);
        if n > rules::MAX_VERSION_LEN {
            return Err(NameError(format!(
                "{} is not a version: it {}",
                shown(s),
                rules::too_long(n, rules::MAX_VERSION_LEN)
            )));
        }
        if s.contains('+') {
            return Err(NameError(format!(
                "{} is a local version ('+...'); PyPI cannot host it",
                shown(s)
            )));
        }
        let v: Version = s
            .parse()
            .ok()
            .filter(|_| rules::PUBLIC_VERSION.is_match(s))
            .ok_or_else(|| {
                NameError(format!(
                    "{} is not a PEP 440 version: write one such as \"1.2.3\", \"2.0rc1\" or \
                     \"2024.1.post2\" (no spaces)",
                    shown(s)
                ))
            })?;
        check_release_version(&v)?;
        Ok(PyVersion(v))
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
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
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
    let text = text::read(file).map_err(|m| fail(vec![Problem::new("", m)]))?;
    let mut spec = parse(&text).map_err(|p| fail(vec![p]))?;
    spec.validate().map_err(fail)?;
    // `binaries` is checked against the version's console scripts only once it is locked:
    // each name keeps its file and line for that message.
    let lines = text::entry_lines(&text, "binaries", spec.binaries.iter().map(|b| b.as_str()));
    for (b, line) in spec.binaries.iter_mut().zip(lines) {
        *b = b.clone().written_at(crate::names::Written {
            file: file.to_owned(),
            line,
        });
    }
    Ok(LoadedSpec {
        file: file.to_owned(),
        spec,
    })
}

/// Parses a config file's YAML text into a spec; the problem names the field the parser
/// stopped at and never shows text found where a field name was expected, nor a value of the
/// wrong type (the file may be a link to a file of secrets). Text too large or nested too deep
/// is refused before the parser sees it.
pub fn parse(text: &str) -> Result<PackageSpec, Problem> {
    parse_from(text, Source::File)
}

/// [`parse`] for a resource's config fields (re-serialised by the controller): the API server
/// names unknown fields in its own errors, so the problem does too.
pub fn parse_resource(text: &str) -> Result<PackageSpec, Problem> {
    parse_from(text, Source::Resource)
}

fn parse_from(text: &str, source: Source) -> Result<PackageSpec, Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text::check_shape(text)?;
    let spec = serde_norway::from_str(text).map_err(|e| text::problem(&e, text, source))?;
    text::no_tags(text)?;
    Ok(spec)
}

impl PackageSpec {
    /// Rules that span fields, and the limits. Returns every problem, not only the first.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        self.check_binaries(&mut problems);
        self.check_versions(&mut problems);
        check_list(
            "exclude",
            &self.exclude,
            rules::MAX_EXCLUDE,
            |i| format!("exclude[{i}]"),
            &mut problems,
        );
        self.check_platforms(&mut problems);
        check_list(
            "packages",
            &self.packages,
            2,
            |i| format!("packages[{i}]"),
            &mut problems,
        );
        self.check_extra_packages(&mut problems);
        self.check_test(&mut problems);
        if let Some(d) = &self.description {
            check_text("description", d, &mut problems);
        }
        if let Some(source) = &self.source {
            source.check(&mut problems);
        }
        if let Some(build) = &self.build {
            build.check(&mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn check_binaries(&self, problems: &mut Vec<Problem>) {
        check_list(
            "binaries",
            &self.binaries,
            rules::MAX_BINARIES,
            |i| format!("binaries[{i}]"),
            problems,
        );
        for (i, b) in self.binaries.iter().enumerate() {
            if rules::collides_with_pex(b.as_str(), &self.package) {
                problems.push(Problem::new(
                    format!("binaries[{i}]"),
                    format!(
                        "{b} is the name of the PEX in the tarball ({}.pex), so no launcher can \
                         have it: remove it",
                        self.package
                    ),
                ));
            }
        }
    }

    fn check_versions(&self, problems: &mut Vec<Problem>) {
        if self.versions.is_empty() {
            problems.push(Problem::new(
                "versions",
                "is empty: list at least one {version, python} entry; the lowest is the minimum",
            ));
        }
        let versions: Vec<&PyVersion> = self.versions.iter().map(|e| &e.version).collect();
        check_list(
            "versions",
            &versions,
            rules::MAX_VERSIONS,
            |i| format!("versions[{i}].version"),
            problems,
        );
    }

    fn check_platforms(&self, problems: &mut Vec<Problem>) {
        match &self.platforms {
            Some(p) if p.is_empty() => problems.push(Problem::new(
                "platforms",
                "is empty: list platforms to build, or leave the field out for all four",
            )),
            Some(p) => check_list(
                "platforms",
                p,
                Platform::ALL.len(),
                |i| format!("platforms[{i}]"),
                problems,
            ),
            None => {}
        }
    }

    fn check_extra_packages(&self, problems: &mut Vec<Problem>) {
        let n = self.extra_packages.len();
        if n > rules::MAX_EXTRA_PACKAGES {
            problems.push(Problem::new(
                "extra_packages",
                rules::too_many(n, rules::MAX_EXTRA_PACKAGES),
            ));
            return;
        }
        let mut seen = BTreeMap::new();
        for (i, req) in self.extra_packages.iter().enumerate() {
            let field = format!("extra_packages[{i}]");
            let len = rules::length(req);
            let problem = if len > rules::MAX_REQUIREMENT_LEN {
                Some(rules::too_long(len, rules::MAX_REQUIREMENT_LEN))
            } else if let Some((at, c)) = rules::first_control(req) {
                Some(control_message(at, c))
            } else if !rules::REQUIREMENT_START.is_match(req) {
                Some(format!(
                    "{} must start with a project name, e.g. \"setuptools<80.9\"",
                    shown(req)
                ))
            } else {
                match req.parse::<Requirement>() {
                    Err(e) => Some(format!(
                        "{} is not a PEP 508 requirement: {}",
                        shown(req),
                        first_line(&e.to_string())
                    )),
                    // As PEP 508 normalises it: `Rich >= 13` is `rich>=13`.
                    Ok(r) => seen.insert(r.to_string(), i).map(|first| {
                        format!(
                            "is the same requirement as extra_packages[{first}] (compared as \
                             PEP 508 normalises them: names without case, '-', '_' and '.' \
                             alike, no spaces): remove one"
                        )
                    }),
                }
            };
            if let Some(message) = problem {
                problems.push(Problem::new(field, message));
            }
        }
    }

    fn check_test(&self, problems: &mut Vec<Problem>) {
        let Some(test) = &self.test else { return };
        if !check_text("test", test, problems) {
            return;
        }
        if !test.chars().any(|c| c != ' ') {
            problems.push(Problem::new(
                "test",
                "must be a command line, e.g. \"aider --help\"",
            ));
        } else if !self.binaries.is_empty()
            && !rules::starts_with_binary(test, self.binaries.iter().map(BinaryName::as_str))
        {
            let names: Vec<&str> = self.binaries.iter().map(BinaryName::as_str).collect();
            problems.push(Problem::new(
                "test",
                format!(
                    "{} must start with one of binaries ({}), alone or followed by a space, \
                     e.g. \"{} --help\"",
                    shown(test),
                    names.join(", "),
                    names[0]
                ),
            ));
        }
    }

    /// The `extra_packages` that are direct references (`name @ URL`): each makes the resolver
    /// fetch a URL, or read a local file (`file:///…`), outside the package indexes, so they are
    /// taken only where the operator allows them (`--allow-direct-references`).
    pub fn direct_references(&self) -> Vec<Problem> {
        self.extra_packages
            .iter()
            .enumerate()
            .filter(|(_, r)| is_direct_reference(r))
            .map(|(i, _)| Problem::new(format!("extra_packages[{i}]"), DIRECT_REFERENCE_REFUSED))
            .collect()
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

    pub fn is_excluded(&self, version: &Version) -> bool {
        self.exclude.iter().any(|e| &e.0 == version)
    }

    /// The test command; with neither `test` nor `binaries` it is empty (the caller resolves
    /// the first console script of the version).
    pub fn test_command(&self) -> String {
        match (&self.test, self.binaries.first()) {
            (Some(test), _) => test.clone(),
            (None, Some(b)) => format!("{b} --help"),
            (None, None) => String::new(),
        }
    }

    /// Whether a version is published without the platforms that cannot exist (default yes).
    pub fn partial_platforms(&self) -> bool {
        self.partial_platforms.unwrap_or(true)
    }

    pub fn description(&self) -> String {
        self.description
            .clone()
            .unwrap_or_else(|| self.package.to_string())
    }
}

/// Why a direct reference is refused, and who can allow it (the URL is not shown: it may hold
/// credentials).
pub const DIRECT_REFERENCE_REFUSED: &str = "is a direct reference (NAME @ URL): the resolver would \
     fetch that URL, or read that file, outside the package indexes; refused unless the operator \
     allows direct references (--allow-direct-references; Helm: index.allowDirectReferences)";

/// Whether a requirement is a PEP 508 direct reference (`name @ URL`); text that is no
/// requirement is not (the grammar check refuses it).
pub fn is_direct_reference(requirement: &str) -> bool {
    requirement
        .parse::<Requirement>()
        .is_ok_and(|r| matches!(r.version_or_url, Some(pep508_rs::VersionOrUrl::Url(_))))
}

/// A list's length limit and duplicates (by `Ord`, so PEP 440 equality for versions:
/// `1.0` and `1.0.0` are one version), in O(n log n).
fn check_list<T: Ord + fmt::Display>(
    field: &str,
    items: &[T],
    max: usize,
    item_field: impl Fn(usize) -> String,
    problems: &mut Vec<Problem>,
) {
    if items.len() > max {
        problems.push(Problem::new(field, rules::too_many(items.len(), max)));
        return;
    }
    let mut seen = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(first) = seen.insert(item, i) {
            let same = if items[first].to_string() == item.to_string() {
                format!("{item} is listed twice (also {})", item_field(first))
            } else {
                format!(
                    "{item} is the same as {} ({}), listed before",
                    item_field(first),
                    items[first]
                )
            };
            problems.push(Problem::new(item_field(i), same));
            return;
        }
    }
}

/// A one-line text (`test`, `description`): its length limit and no control characters.
/// Returns whether it passed.
fn check_text(field: &str, text: &str, problems: &mut Vec<Problem>) -> bool {
    let n = rules::length(text);
    let message = if n > rules::MAX_TEXT_LEN {
        rules::too_long(n, rules::MAX_TEXT_LEN)
    } else if let Some((at, c)) = rules::first_control(text) {
        control_message(at, c)
    } else {
        return true;
    };
    problems.push(Problem::new(field, message));
    false
}

fn control_message(at: usize, c: char) -> String {
    format!(
        "must be one line of text: it holds the control character U+{:04X} at character {} \
         (a newline, tab or similar); remove it",
        c as u32,
        at + 1
    )
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Finds config files: a file is taken as is, a directory holding `config.yaml` is one package,
/// and any other directory is searched one level down (`python/` → `python/*/config.yaml`).
/// A `config.yaml` that cannot be read (a link loop, a dangling link) is still listed, so that
/// loading it names the problem; one file reached twice is listed once.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("{}: {}", path.display(), text::unreadable(path, &e)))?;
        if !meta.is_dir() {
            found.push(path.clone());
        } else if present(&path.join("config.yaml")) {
            found.push(path.join("config.yaml"));
        } else {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut here: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("config.yaml"))
                .filter(|p| present(p))
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
        }
    }
    let mut seen = std::collections::HashSet::new();
    found.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(found)
}

/// Whether something is at `path`, even a link that cannot be followed; not when a parent is
/// a plain file (`python/README.md/config.yaml`).
fn present(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        ),
    }
}

#[cfg(test)]
mod tests;
