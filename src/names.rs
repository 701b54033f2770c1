//! Validated names: everything that reaches a file name, a tag, a label, a Job argument or a
//! launcher script passes through one of these types first (DESIGN §2).

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A value as a message shows it: quoted, and cut to its first 100 characters when longer,
/// saying how much was left out (a config may hold a whole file, or a megabyte-long name).
pub fn shown(s: &str) -> String {
    const MAX: usize = 100;
    let n = s.chars().count();
    if n <= MAX {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(MAX).collect();
    format!("{head:?}… ({} more characters)", n - MAX)
}

/// Why a name was refused; the caller adds the file and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// A PyPI project name, kept in its PEP 503 normalised form (`Aider_Chat` → `aider-chat`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct PackageName(String);

impl PackageName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        let valid = !name.is_empty()
            && name.len() <= 200
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
        if !valid {
            return Err(NameError(format!(
                "{} is not a PyPI project name: use letters, digits, '.', '_' and '-', \
                 starting and ending with a letter or digit, at most 200 (e.g. \"aider-chat\")",
                shown(name)
            )));
        }
        Ok(Self(normalize(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Tag of the GitHub release of one version: `aider-chat-v0.83.1`.
    pub fn tag(&self, version: &Version) -> String {
        format!("{}-v{}", self.0, version)
    }

    /// File name of one platform's tarball: `aider-chat-linux-amd64.tar.gz`.
    pub fn asset_name(&self, platform: Platform) -> String {
        format!("{}-{}.tar.gz", self.0, platform)
    }
}

/// PEP 503: runs of `-`, `_` and `.` become one `-`, letters are lowercased.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

impl From<PackageName> for String {
    fn from(n: PackageName) -> String {
        n.0
    }
}

impl FromStr for PackageName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A console script of the package; it becomes a launcher file name and a `PEX_SCRIPT` value.
///
/// A name read from a config file remembers where it was written ([`Written`]), so that a
/// check that can only run later (is it a console script of the version? known once the lock
/// is made) names the file and line as every other config error does. Where is no part of the
/// name: equality, order, hashing and serialisation see the name alone.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "String")]
pub struct BinaryName(String, Option<std::sync::Arc<Written>>);

/// Where a value was written: a config file and the line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub file: std::path::PathBuf,
    pub line: usize,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, line {}", self.file.display(), self.line)
    }
}

/// How a message names the entries of `binaries` that `which` picks, as every config error
/// names its field: `FILE: binaries[i] (line L), …` when they were read from a config file,
/// `binaries[i], …` when not (a resource's: the field is enough there).
pub fn binaries_field(binaries: &[BinaryName], which: impl Fn(&BinaryName) -> bool) -> String {
    let picked: Vec<(usize, &BinaryName)> = binaries
        .iter()
        .enumerate()
        .filter(|(_, b)| which(b))
        .collect();
    let file = picked
        .iter()
        .find_map(|(_, b)| b.written())
        .map_or_else(String::new, |w| format!("{}: ", w.file.display()));
    let fields: Vec<String> = picked
        .iter()
        .map(|(i, b)| match b.written() {
            Some(w) => format!("binaries[{i}] (line {})", w.line),
            None => format!("binaries[{i}]"),
        })
        .collect();
    format!("{file}{}", fields.join(", "))
}

impl PartialEq for BinaryName {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for BinaryName {}

impl std::hash::Hash for BinaryName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for BinaryName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinaryName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl BinaryName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        let valid = !name.is_empty()
            && name.len() <= 128
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(NameError(format!(
                "{} is not a usable binary name: use letters, digits, '.', '_' and '-', \
                 starting with a letter or digit, no '/' or spaces, at most 128 (e.g. \"aider\")",
                shown(name)
            )));
        }
        Ok(Self(name.to_owned(), None))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the name was written, when it was read from a config file.
    pub fn written(&self) -> Option<&Written> {
        self.1.as_deref()
    }

    /// The same name, remembering where it was written.
    pub fn written_at(mut self, at: Written) -> Self {
        self.1 = Some(std::sync::Arc::new(at));
        self
    }
}

impl FromStr for BinaryName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

impl From<BinaryName> for String {
    fn from(n: BinaryName) -> String {
        n.0
    }
}

impl fmt::Display for BinaryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Darwin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Os {
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Darwin => "darwin",
        }
    }
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// A build target in Hermit's spelling (`linux-amd64`, `darwin-arm64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Platform {
    pub os: Os,
    pub arch: Arch,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::new(Os::Linux, Arch::Amd64),
        Platform::new(Os::Linux, Arch::Arm64),
        Platform::new(Os::Darwin, Arch::Amd64),
        Platform::new(Os::Darwin, Arch::Arm64),
    ];

    pub const fn new(os: Os, arch: Arch) -> Self {
        Self { os, arch }
    }

    /// The platform this program runs on, when it is one we build for.
    pub fn host() -> Option<Self> {
        let os = match std::env::consts::OS {
            "linux" => Os::Linux,
            "macos" => Os::Darwin,
            _ => return None,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => Arch::Amd64,
            "aarch64" => Arch::Arm64,
            _ => return None,
        };
        Some(Self::new(os, arch))
    }
}

impl FromStr for Platform {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Platform::ALL
            .into_iter()
            .find(|p| p.to_string() == s)
            .ok_or_else(|| {
                NameError(format!(
                    "{} is not a platform: use one of linux-amd64, linux-arm64, darwin-amd64, darwin-arm64",
                    shown(s)
                ))
            })
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> String {
        p.to_string()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.os.as_str(), self.arch.as_str())
    }
}

/// The CPython minor a version is built for. Only minors we can build for are representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct PythonMinor(u8);

impl PythonMinor {
    pub const SUPPORTED: std::ops::RangeInclusive<u8> = 8..=14;

    pub fn new(minor: u8) -> Result<Self, NameError> {
        if Self::SUPPORTED.contains(&minor) {
            Ok(Self(minor))
        } else {
            Err(NameError(format!(
                "3.{minor} is not a supported Python: use \"3.8\" to \"3.14\""
            )))
        }
    }

    pub fn minor(self) -> u8 {
        self.0
    }

    /// `3.12` as a PEP 440 version, for checking a file's `requires-python`.
    pub fn as_version(self) -> Version {
        Version::new([3, u64::from(self.0)])
    }
}

impl FromStr for PythonMinor {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let minor = s
            .strip_prefix("3.")
            .filter(|m| !m.is_empty() && m.len() <= 2 && m.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|m| m.parse::<u8>().ok())
            .ok_or_else(|| {
                NameError(format!(
                    "{} is not a Python minor version: write it as a quoted string such as \"3.12\"",
                    shown(s)
                ))
            })?;
        Self::new(minor)
    }
}

impl PythonMinor {
    /// An unquoted `3.12` reaches us as a YAML float. Floats are taken only when they cannot
    /// hide a lost trailing zero: `3.10` and `3.1` are the same float, so that one is refused.
    fn from_float(f: f64) -> Result<Self, NameError> {
        let text = f.to_string();
        if text == "3.1" || text == "3.2" {
            return Err(NameError(format!(
                "python: {text} without quotes is the number {text} in YAML, and 3.10 reads the same; \
                 write python: \"3.{}0\" (quoted)",
                &text[2..]
            )));
        }
        text.parse().map_err(|_| {
            NameError(format!(
                "python: {text} is not a Python minor version: write a quoted string such as \"3.12\""
            ))
        })
    }
}

impl<'de> Deserialize<'de> for PythonMinor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PythonMinor;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Python minor version as a quoted string, e.g. \"3.12\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PythonMinor, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<PythonMinor, E> {
                PythonMinor::from_float(f).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PythonMinor, E> {
                Err(E::custom(format!(
                    "python: {n} is not a Python minor version: write a quoted string such as \"3.12\""
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PythonMinor, E> {
                self.visit_u64(n.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

impl From<PythonMinor> for String {
    fn from(p: PythonMinor) -> String {
        p.to_string()
    }
}

impl fmt::Display for PythonMinor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "3.{}", self.0)
    }
}

/// Versions reach asset URLs and tags: only the characters PyPI can publish are allowed, and
/// local versions (`+x`) are refused since PyPI cannot host them and `+` breaks URLs.
pub fn check_release_version(v: &Version) -> Result<(), NameError> {
    if v.is_local() {
        return Err(NameError(format!(
            "{v} is a local version ('+...'); PyPI cannot host it"
        )));
    }
    Ok(())
}

/// Deserialises through `FromStr` inside the visitor, so a refusal carries the field's path and
/// line (serde's `try_from` reports it after the fact, without either).
macro_rules! deserialize_via_from_str {
    ($ty:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

deserialize_via_from_str!(PackageName, "a PyPI project name, e.g. \"aider-chat\"");
deserialize_via_from_str!(BinaryName, "a console script name, e.g. \"aider\"");
deserialize_via_from_str!(Platform, "a platform such as \"linux-amd64\"");

/// Inline string schemas so the CRD stays structural (no `$ref`) and the API server checks names.
macro_rules! string_schema {
    ($ty:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_schema!(PackageName, "PackageName", {
    "type": "string",
    "description": "PyPI project name (PEP 508), e.g. aider-chat",
    "pattern": "^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
    "maxLength": 200
});
string_schema!(BinaryName, "BinaryName", {
    "type": "string",
    "description": "console script name, e.g. aider",
    "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "maxLength": 128
});
string_schema!(Platform, "Platform", {
    "type": "string",
    "description": "os-arch in Hermit's spelling",
    "enum": ["linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"]
});
string_schema!(PythonMinor, "PythonMinor", {
    "type": "string",
    "description": "CPython minor as a quoted string, e.g. \"3.12\"",
    "pattern": "^3\\.(8|9|1[0-4])$",
    "maxLength": 4
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_normalized() {
        assert_eq!(
            PackageName::new("Aider_Chat").unwrap().as_str(),
            "aider-chat"
        );
        assert_eq!(
            PackageName::new("zope.interface").unwrap().as_str(),
            "zope-interface"
        );
        assert_eq!(PackageName::new("a--b__c").unwrap().as_str(), "a-b-c");
    }

    #[test]
    fn hostile_package_names_are_refused() {
        for bad in [
            "../x",
            "a b",
            "$(id)",
            "x; rm -rf /",
            "",
            "-x",
            "x-",
            "a/b",
            "a\nb",
        ] {
            let err = PackageName::new(bad).unwrap_err();
            assert!(err.0.contains("not a PyPI project name"), "{bad}: {err}");
        }
    }

    #[test]
    fn hostile_binary_names_are_refused() {
        for bad in ["../x", "a b", "$(id)", ";", "", ".hidden", "a/b", "x`id`"] {
            assert!(BinaryName::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            BinaryName::new("ansible-playbook").unwrap().as_str(),
            "ansible-playbook"
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(shown("aider"), "\"aider\"");
        let long = "x".repeat(1_000_000);
        let err = PackageName::new(&long).unwrap_err().0;
        assert!(err.len() < 400, "{} characters", err.len());
        assert!(err.contains("(999900 more characters)"), "{err}");
        let line = format!("{}\n", "y".repeat(150));
        assert!(
            shown(&line).ends_with("… (51 more characters)"),
            "{}",
            shown(&line)
        );
    }

    #[test]
    fn platforms_round_trip_in_hermit_spelling() {
        for p in Platform::ALL {
            assert_eq!(p.to_string().parse::<Platform>().unwrap(), p);
        }
        let err = "macos-arm64".parse::<Platform>().unwrap_err();
        assert!(err.0.contains("darwin-arm64"));
    }

    #[test]
    fn python_minors() {
        assert_eq!("3.10".parse::<PythonMinor>().unwrap().minor(), 10);
        assert!("3.7".parse::<PythonMinor>().is_err());
        assert!("3".parse::<PythonMinor>().is_err());
        assert!("3.x".parse::<PythonMinor>().is_err());
        assert!("3.100".parse::<PythonMinor>().is_err());
    }

    #[test]
    fn tags_and_assets() {
        let p = PackageName::new("aider-chat").unwrap();
        let v: Version = "0.83.1".parse().unwrap();
        assert_eq!(p.tag(&v), "aider-chat-v0.83.1");
        assert_eq!(
            p.asset_name(Platform::new(Os::Darwin, Arch::Arm64)),
            "aider-chat-darwin-arm64.tar.gz"
        );
    }
}
