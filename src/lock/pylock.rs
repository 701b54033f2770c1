//! A PEP 751 lock file (`pylock.toml`) as hermit-pex reads it: each locked distribution with
//! its marker, its wheels (file name parsed into tags) and its sdist, every file with a sha256.
//! What uv writes is what is checked: a lock from anywhere else (a release asset) is read the
//! same way, and anything we cannot build from is refused naming the entry and the rule.

use std::path::Path;

use pep440_rs::Version;
use pep508_rs::MarkerTree;
use serde::Deserialize;

use super::wheel_name::WheelName;
use crate::names::{PackageName, normalize};

/// A parsed, checked lock.
#[derive(Debug, Clone)]
pub struct Pylock {
    /// `lock-version`: PEP 751 says readers refuse a major version they do not know (1 here).
    pub lock_version: String,
    pub created_by: Option<String>,
    pub requires_python: Option<String>,
    pub packages: Vec<Package>,
}

/// One locked distribution. A universal lock may hold one name twice, with disjoint markers
/// (a version for python < 3.13 and another for 3.13 and later).
#[derive(Debug, Clone)]
pub struct Package {
    pub name: PackageName,
    pub version: Version,
    /// When it is installed; none: everywhere.
    pub marker: Option<MarkerTree>,
    pub wheels: Vec<Wheel>,
    pub sdist: Option<File>,
}

#[derive(Debug, Clone)]
pub struct Wheel {
    pub file: File,
    pub tags: WheelName,
}

/// A file of the lock: where it is and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The file name (PEP 751 `name`, else the last segment of its URL or path); a plain name,
    /// checked, so it can name a file in the cache.
    pub name: String,
    pub source: Source,
    /// Lowercase hex.
    pub sha256: String,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// On an index (or `file:` for a `--find-links` directory on the machine that locked).
    Url(String),
    /// Relative to the lock file, or absolute.
    Path(String),
}

impl File {
    /// A file of the machine that made the lock (a Git source's own wheel, found through
    /// `--find-links`): it is looked up by digest, never downloaded.
    pub fn is_local(&self) -> bool {
        match &self.source {
            Source::Path(_) => true,
            Source::Url(u) => u.starts_with("file:"),
        }
    }
}

impl Package {
    /// `name==version`.
    pub fn pin(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

/// What is wrong with a lock file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PylockError {
    #[error("the lock is not TOML ({reason}, line {line})")]
    Syntax { line: usize, reason: String },
    /// `field` is a path such as `packages[3].wheels[0].hashes`; `rule` says what it must be.
    #[error("the lock's {field} {rule}")]
    Field { field: String, rule: String },
}

fn field(field: impl Into<String>, rule: impl Into<String>) -> PylockError {
    PylockError::Field {
        field: field.into(),
        rule: rule.into(),
    }
}

impl Pylock {
    /// Parses and checks the text of a `pylock.toml`.
    pub fn parse(text: &str) -> Result<Self, PylockError> {
        let raw: RawLock = toml::from_str(text).map_err(|e| {
            // The message only: toml's Display quotes the offending line of the file.
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].lines().count().max(1)
            });
            PylockError::Syntax {
                line,
                reason: e.message().trim().to_owned(),
            }
        })?;
        let major = raw.lock_version.split('.').next().unwrap_or("");
        if major != "1" {
            return Err(field(
                "lock-version",
                "must be 1.x (PEP 751); this lock is of another major version",
            ));
        }
        let packages = raw
            .packages
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.check(i))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            lock_version: raw.lock_version,
            created_by: raw.created_by,
            requires_python: raw.requires_python,
            packages,
        })
    }

    /// Reads and checks a lock file (blocking).
    pub fn read(path: &Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        Self::parse(&text).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))
    }

    /// `name==version` of every locked distribution, sorted, each once.
    pub fn pins(&self) -> Vec<String> {
        let mut pins: Vec<String> = self.packages.iter().map(Package::pin).collect();
        pins.sort();
        pins.dedup();
        pins
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLock {
    lock_version: String,
    created_by: Option<String>,
    requires_python: Option<String>,
    #[serde(default)]
    packages: Vec<RawPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPackage {
    name: String,
    version: Option<String>,
    marker: Option<String>,
    #[serde(default)]
    wheels: Vec<RawFile>,
    sdist: Option<RawFile>,
    // Sources hermit-pex does not build from; their presence is what is checked.
    vcs: Option<toml::Value>,
    directory: Option<toml::Value>,
    archive: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawFile {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

impl RawPackage {
    fn check(self, i: usize) -> Result<Package, PylockError> {
        let at = format!("packages[{i}]");
        let name = PackageName::new(&self.name)
            .map_err(|_| field(format!("{at}.name"), "is not a PyPI project name"))?;
        let version: Version = self
            .version
            .as_deref()
            .ok_or_else(|| {
                field(
                    format!("{at}.version"),
                    "is missing: hermit-pex locks released versions only",
                )
            })?
            .parse()
            .map_err(|_| field(format!("{at}.version"), "is not a PEP 440 version"))?;
        let what = format!("{at} ({name} {version})");
        for (key, present) in [
            ("vcs", self.vcs.is_some()),
            ("directory", self.directory.is_some()),
            ("archive", self.archive.is_some()),
        ] {
            if present {
                return Err(field(
                    format!("{what}.{key}"),
                    "is a source hermit-pex does not build from: only wheels and sdists",
                ));
            }
        }
        let marker = match self.marker.as_deref() {
            None => None,
            Some(m) => Some(
                m.parse::<MarkerTree>()
                    .map_err(|_| field(format!("{what}.marker"), "is not a PEP 508 marker"))?,
            ),
        };
        let wheels = self
            .wheels
            .into_iter()
            .enumerate()
            .map(|(j, w)| {
                let at = format!("{what}.wheels[{j}]");
                let file = w.check(&at)?;
                let tags = WheelName::parse(&file.name)
                    .map_err(|e| field(format!("{at}.name"), format!("is {e}")))?;
                if normalize(&tags.distribution) != name.as_str() {
                    return Err(field(
                        format!("{at}.name"),
                        "is a wheel of another distribution",
                    ));
                }
                if tags.version.parse::<Version>().ok().as_ref() != Some(&version) {
                    return Err(field(format!("{at}.name"), "is a wheel of another version"));
                }
                Ok(Wheel { file, tags })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sdist = self
            .sdist
            .map(|s| {
                let at = format!("{what}.sdist");
                let file = s.check(&at)?;
                if !(file.name.ends_with(".tar.gz") || file.name.ends_with(".zip")) {
                    return Err(field(
                        format!("{at}.name"),
                        "is not an sdist file name (.tar.gz or .zip)",
                    ));
                }
                Ok(file)
            })
            .transpose()?;
        if wheels.is_empty() && sdist.is_none() {
            return Err(field(what, "has neither wheels nor an sdist"));
        }
        Ok(Package {
            name,
            version,
            marker,
            wheels,
            sdist,
        })
    }
}

impl RawFile {
    fn check(self, at: &str) -> Result<File, PylockError> {
        let source = match (self.url, self.path) {
            (Some(u), None) => {
                let parsed = reqwest::Url::parse(&u)
                    .map_err(|_| field(format!("{at}.url"), "is not a URL"))?;
                if !parsed.username().is_empty() || parsed.password().is_some() {
                    // Credentials reach uv through NETRC only; a lock that carries some is
                    // refused rather than published.
                    return Err(field(
                        format!("{at}.url"),
                        "carries credentials: a lock must not",
                    ));
                }
                if !matches!(parsed.scheme(), "https" | "http" | "file") {
                    return Err(field(format!("{at}.url"), "must be https, http or file"));
                }
                Source::Url(u)
            }
            (None, Some(p)) => Source::Path(p),
            _ => {
                return Err(field(at, "must have exactly one of url and path"));
            }
        };
        let name = match self.name {
            Some(n) => n,
            None => last_segment(&source)
                .ok_or_else(|| field(format!("{at}.name"), "is missing and cannot be derived"))?,
        };
        if !is_plain_file_name(&name) {
            return Err(field(
                format!("{at}.name"),
                "must be a plain file name (no '/', '\\', control characters or leading '.')",
            ));
        }
        let sha256 = self.hashes.get("sha256").ok_or_else(|| {
            field(
                format!("{at}.hashes"),
                "has no sha256: hermit-pex checks every file against its sha256",
            )
        })?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(field(
                format!("{at}.hashes.sha256"),
                "is not 64 hexadecimal digits",
            ));
        }
        Ok(File {
            name,
            source,
            sha256: sha256.to_ascii_lowercase(),
            size: self.size,
        })
    }
}

/// The last path segment of a URL (percent-decoded) or of a path.
fn last_segment(source: &Source) -> Option<String> {
    match source {
        Source::Url(u) => {
            let url = reqwest::Url::parse(u).ok()?;
            let seg = url.path_segments()?.next_back()?;
            Some(
                percent_encoding::percent_decode_str(seg)
                    .decode_utf8()
                    .ok()?
                    .into_owned(),
            )
        }
        Source::Path(p) => Path::new(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
    }
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "9fd752b40701afd8156a1ef2bf32c1c3d98eea945eba34dad63aa5921800d44a";
    const SHA_B: &str = "5755b3ddab8b2746fc87e1b2b47621e38c1d44ebc5389343d3c5d76716f4a5ca";

    /// What uv 0.13.9 wrote for a find-links wheel beside an index's, plus a marker and an sdist.
    fn uv_lock() -> String {
        format!(
            r#"lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.12"

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
sdist = {{ url = "https://files.example/colorama-0.4.6.tar.gz", upload-time = 2022-10-25T02:36:22Z, size = 27697, hashes = {{ sha256 = "{SHA_A}" }} }}
wheels = [{{ url = "https://files.example/p/colorama-0.4.6-py2.py3-none-any.whl", upload-time = 2022-10-25T02:36:20Z, size = 25335, hashes = {{ sha256 = "{SHA_B}" }} }}]

[[packages]]
name = "dep-a"
version = "1.2"
wheels = [{{ url = "http://127.0.0.1:18777/packages/dep_a-1.2-py2.py3-none-any.whl", hashes = {{ sha256 = "{SHA_A}" }} }}]

[[packages]]
name = "Hello_Tool"
version = "1.0"
wheels = [{{ url = "file:///tmp/lockexp/fl/hello_tool-1.0-py3-none-any.whl", hashes = {{ sha256 = "{}" }} }}]
"#,
            SHA_B.to_uppercase()
        )
    }

    #[test]
    fn reads_what_uv_writes() {
        let lock = Pylock::parse(&uv_lock()).unwrap();
        assert_eq!(lock.lock_version, "1.0");
        assert_eq!(lock.created_by.as_deref(), Some("uv"));
        assert_eq!(
            lock.pins(),
            ["colorama==0.4.6", "dep-a==1.2", "hello-tool==1.0"]
        );
        let colorama = &lock.packages[0];
        assert!(colorama.marker.is_some());
        let sdist = colorama.sdist.as_ref().unwrap();
        assert_eq!(sdist.name, "colorama-0.4.6.tar.gz");
        assert_eq!(sdist.size, Some(27697));
        assert_eq!(
            colorama.wheels[0].file.name,
            "colorama-0.4.6-py2.py3-none-any.whl"
        );
        assert!(colorama.wheels[0].tags.is_none_any());
        assert!(!colorama.wheels[0].file.is_local());
        let hello = &lock.packages[2];
        assert_eq!(hello.name.as_str(), "hello-tool");
        assert!(hello.wheels[0].file.is_local(), "a find-links wheel");
        assert_eq!(hello.wheels[0].file.sha256, SHA_B, "lowercased");
        assert_eq!(hello.wheels[0].file.size, None);
    }

    #[test]
    fn paths_and_names_from_pep_751() {
        let lock = Pylock::parse(&format!(
            r#"lock-version = "1.0"
[[packages]]
name = "tool"
version = "2.0"
wheels = [{{ name = "tool-2.0-py3-none-any.whl", path = "wheels/tool-2.0-py3-none-any.whl", hashes = {{ sha256 = "{SHA_A}", md5 = "x" }} }}]
"#
        ))
        .unwrap();
        let f = &lock.packages[0].wheels[0].file;
        assert!(f.is_local());
        assert_eq!(
            f.source,
            Source::Path("wheels/tool-2.0-py3-none-any.whl".into())
        );
    }

    fn problem(text: &str) -> String {
        Pylock::parse(text).unwrap_err().to_string()
    }

    fn one(package: &str) -> String {
        format!("lock-version = \"1.0\"\n[[packages]]\n{package}\n")
    }

    #[test]
    fn errors_name_the_entry_and_the_rule_never_the_text() {
        let wheel = |name: &str, hashes: &str| {
            format!(
                "name = \"tool\"\nversion = \"1.0\"\nwheels = [{{ url = \"https://x/{name}\", hashes = {{ {hashes} }} }}]"
            )
        };
        let good_hash = format!("sha256 = \"{SHA_A}\"");
        let cases = [
            (
                "lock-version = \"2.0\"\n".to_owned(),
                "the lock's lock-version must be 1.x",
            ),
            (
                one("name = \"tool\"\nversion = \"1.0\"\n"),
                "packages[0] (tool 1.0) has neither wheels nor an sdist",
            ),
            (
                one("name = \"../../etc\"\nversion = \"1.0\"\n"),
                "packages[0].name is not a PyPI project name",
            ),
            (
                one(
                    "name = \"tool\"\nversion = \"one.oh\"\nsdist = { url = \"https://x/t.tar.gz\" }",
                ),
                "packages[0].version is not a PEP 440 version",
            ),
            (
                one(
                    "name = \"tool\"\nversion = \"1.0\"\nmarker = \"sys_platform == 'evil' and\"\nsdist = { url = \"https://x/tool-1.0.tar.gz\", hashes = { sha256 = \"0\" } }",
                ),
                "packages[0] (tool 1.0).marker is not a PEP 508 marker",
            ),
            (
                one(&wheel("tool-1.0-py3-none-any.whl", "md5 = \"0\"")),
                "packages[0] (tool 1.0).wheels[0].hashes has no sha256",
            ),
            (
                one(&wheel("tool-1.0-py3-none-any.whl", "sha256 = \"abc\"")),
                "packages[0] (tool 1.0).wheels[0].hashes.sha256 is not 64 hexadecimal digits",
            ),
            (
                one(&wheel("tool-1.0.egg", &good_hash)),
                "packages[0] (tool 1.0).wheels[0].name is not a wheel file name",
            ),
            (
                one(&wheel("other-1.0-py3-none-any.whl", &good_hash)),
                "packages[0] (tool 1.0).wheels[0].name is a wheel of another distribution",
            ),
            (
                one(&wheel("tool-1.1-py3-none-any.whl", &good_hash)),
                "packages[0] (tool 1.0).wheels[0].name is a wheel of another version",
            ),
            (
                one(&format!(
                    "name = \"tool\"\nversion = \"1.0\"\nwheels = [{{ url = \"https://u:s3cret@x/tool-1.0-py3-none-any.whl\", hashes = {{ {good_hash} }} }}]"
                )),
                "packages[0] (tool 1.0).wheels[0].url carries credentials",
            ),
            (
                one(&format!(
                    "name = \"tool\"\nversion = \"1.0\"\nwheels = [{{ name = \"../tool-1.0-py3-none-any.whl\", url = \"https://x/a.whl\", hashes = {{ {good_hash} }} }}]"
                )),
                "packages[0] (tool 1.0).wheels[0].name must be a plain file name",
            ),
            (
                one(
                    "name = \"tool\"\nversion = \"1.0\"\nvcs = { type = \"git\", url = \"https://x/repo\" }",
                ),
                "packages[0] (tool 1.0).vcs is a source hermit-pex does not build from",
            ),
            (
                one(&format!(
                    "name = \"tool\"\nversion = \"1.0\"\nwheels = [{{ url = \"https://x/a.whl\", path = \"a.whl\", hashes = {{ {good_hash} }} }}]"
                )),
                "packages[0] (tool 1.0).wheels[0] must have exactly one of url and path",
            ),
        ];
        for (text, want) in cases {
            let e = problem(&text);
            assert!(e.contains(want), "{text}\n→ {e}\nwant {want}");
            for secret in ["s3cret", "evil", "one.oh", "../"] {
                assert!(!e.contains(secret), "{e} echoes {secret}");
            }
        }
    }

    #[test]
    fn syntax_errors_give_a_line_not_the_text() {
        let e = problem("lock-version = \"1.0\"\n[[packages]]\nname = \"s3cret\nversion = 1\n");
        assert!(e.starts_with("the lock is not TOML"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
