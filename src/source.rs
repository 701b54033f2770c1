//! Versions from a Git repository: its tags (`git ls-remote --tags`, one request), and a clean
//! checkout of one tag to build the project's wheel from. Credentials come from the
//! environment and reach git as a header or an SSH key, never in a URL or a process list.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pep440_rs::Version;

pub use crate::pypi::GitTag;

use crate::pypi::IndexVersion;
use crate::spec::GitSource;
use crate::tools;

/// A repository's versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tagged {
    /// One per tag whose rest (after the prefix) is a PEP 440 version, ascending.
    pub versions: Vec<IndexVersion>,
    /// Tags with the prefix that are not versions (said in the plan's output).
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {message}")]
    Git { url: String, message: String },
    #[error(
        "{url}: the tag {tag} now points at {now}, not {was} as when it was listed: it moved; built again at the next look"
    )]
    Moved {
        url: String,
        tag: String,
        was: String,
        now: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The repository's versions: its tags `<prefix><version>`, annotated or lightweight.
pub async fn tags(source: &GitSource) -> Result<Tagged, SourceError> {
    let args: Vec<OsString> = ["ls-remote", "--tags", "--", &source.git]
        .map(OsString::from)
        .to_vec();
    let out = git(source, &args, None).await?;
    Ok(parse_tags(&out, source.tag_prefix()))
}

/// `git ls-remote --tags` output as versions. An annotated tag is listed twice, the second
/// time peeled (`^{}`) to the commit it tags: that commit is the one kept.
pub fn parse_tags(ls_remote: &str, prefix: &str) -> Tagged {
    let mut found: std::collections::BTreeMap<String, (Option<String>, Option<String>)> =
        Default::default();
    for line in ls_remote.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        let Some(name) = name.trim().strip_prefix("refs/tags/") else {
            continue;
        };
        let (name, peeled) = match name.strip_suffix("^{}") {
            Some(n) => (n, true),
            None => (name, false),
        };
        let entry = found.entry(name.to_owned()).or_default();
        let sha = Some(sha.trim().to_owned());
        if peeled { entry.1 = sha } else { entry.0 = sha }
    }
    let mut tagged = Tagged::default();
    let mut versions: Vec<IndexVersion> = Vec::new();
    for (tag, (direct, peeled)) in found {
        let Some(rest) = tag.strip_prefix(prefix) else {
            continue;
        };
        let Some(commit) = peeled.or(direct) else {
            continue;
        };
        match rest.parse::<Version>() {
            Ok(version) if !version.is_local() => versions.push(IndexVersion {
                version,
                requires_python: None,
                git: Some(GitTag { tag, commit }),
            }),
            _ => tagged.skipped.push(tag),
        }
    }
    // Two tags may spell one version (`v1.0`, `v1.0.0`): the first in tag order is kept.
    versions.sort_by(|a, b| a.version.cmp(&b.version));
    versions.dedup_by(|a, b| a.version == b.version);
    tagged.versions = versions;
    tagged
}

/// A clean checkout of `tag` into `into` (checked to be at the commit it was listed at); the
/// project's directory in it.
pub async fn checkout(
    source: &GitSource,
    tag: &GitTag,
    into: &Path,
) -> Result<PathBuf, SourceError> {
    if into.exists() {
        std::fs::remove_dir_all(into)?;
    }
    let args: Vec<OsString> = vec![
        "clone".into(),
        "--quiet".into(),
        "--depth".into(),
        "1".into(),
        "--branch".into(),
        tag.tag.clone().into(),
        "--".into(),
        source.git.clone().into(),
        into.as_os_str().to_owned(),
    ];
    git(source, &args, None).await?;
    let head = git(source, &["rev-parse".into(), "HEAD".into()], Some(into)).await?;
    let head = head.trim();
    if head != tag.commit {
        return Err(SourceError::Moved {
            url: crate::pypi::redact(&source.git),
            tag: tag.tag.clone(),
            was: tag.commit.clone(),
            now: head.to_owned(),
        });
    }
    let dir = match source.subdirectory() {
        "" => into.to_owned(),
        sub => into.join(sub),
    };
    if !dir.join("pyproject.toml").is_file() && !dir.join("setup.py").is_file() {
        return Err(SourceError::Git {
            url: crate::pypi::redact(&source.git),
            message: format!(
                "{}: no pyproject.toml or setup.py at {} in the tag's checkout: set source.subdirectory",
                tag.tag,
                if source.subdirectory().is_empty() {
                    "the root"
                } else {
                    source.subdirectory()
                }
            ),
        });
    }
    Ok(dir)
}

/// Runs git on the source's URL with its credentials, never prompting.
async fn git(
    source: &GitSource,
    args: &[OsString],
    cwd: Option<&Path>,
) -> Result<String, SourceError> {
    let mut full: Vec<OsString> = Vec::new();
    if let Some(dir) = cwd {
        full.extend(["-C".into(), dir.as_os_str().to_owned()]);
    }
    // A URL must never be taken for an option, and no repository's config runs anything here.
    full.extend(["-c".into(), "protocol.ext.allow=never".into()]);
    full.extend(args.iter().cloned());
    let env = credentials(&source.git);
    match tools::run(Path::new("git"), &full, &env, Duration::from_secs(600)).await {
        Ok(out) => Ok(out.stdout),
        Err(e) => {
            let said = redact(&e.to_string(), &source.git);
            let token = std::env::var_os(TOKEN_ENV).is_some_and(|t| !t.is_empty());
            let key = std::env::var_os(SSH_KEY_ENV).is_some();
            let message =
                auth_failure(&said, &source.git, token.then_some(TOKEN_ENV), key).unwrap_or(said);
            Err(SourceError::Git {
                url: crate::pypi::redact(&source.git),
                message,
            })
        }
    }
}

/// The variable holding a Git token for HTTPS URLs.
pub const TOKEN_ENV: &str = "HERMIT_PEX_GIT_TOKEN";
/// The variable naming an SSH key file for SSH URLs.
pub const SSH_KEY_ENV: &str = "HERMIT_PEX_GIT_SSH_KEY";

/// What to do about git's refusal for lack of (good) credentials, or `None` when `said` is
/// another error. git itself only says "could not read Username … terminal prompts disabled"
/// (it would have asked), whether the token was missing or refused; this names the variable.
/// `token`: the variable a token came from, if one was set; `ssh_key`: whether a key was.
pub fn auth_failure(said: &str, url: &str, token: Option<&str>, ssh_key: bool) -> Option<String> {
    if said.contains("Permission denied (publickey") {
        return Some(if ssh_key {
            format!(
                "the server refused the SSH key in {SSH_KEY_ENV}: check that the repository accepts it"
            )
        } else {
            format!(
                "the server asks for an SSH key and none was given: set {SSH_KEY_ENV} to a key file (or use an https:// URL with {TOKEN_ENV})"
            )
        });
    }
    let refused = [
        "could not read Username",
        "could not read Password",
        "terminal prompts disabled",
        "Authentication failed for",
        "The requested URL returned error: 403",
    ]
    .iter()
    .any(|m| said.contains(m));
    if !refused {
        return None;
    }
    Some(match token {
        Some(var) if url.starts_with("https://") => format!(
            "the server refused the token in {var}: check that it is valid and has access to this repository"
        ),
        Some(var) => format!(
            "the server asks for credentials; the token in {var} is sent only to https:// URLs"
        ),
        None => format!(
            "the server asks for credentials and none were given: set {TOKEN_ENV} to a token with access to this repository"
        ),
    })
}

/// git's environment for `url`: no prompt; `HERMIT_PEX_GIT_TOKEN` as an HTTP header for an
/// https URL (through `GIT_CONFIG_*`, so neither the URL nor the process list holds it);
/// `HERMIT_PEX_GIT_SSH_KEY` as the key for ssh.
pub fn credentials(url: &str) -> Vec<(&'static str, OsString)> {
    let token = std::env::var(TOKEN_ENV).ok();
    let key = std::env::var(SSH_KEY_ENV).ok();
    credentials_from(url, token.as_deref(), key.as_deref())
}

/// git's environment for `url` with these credentials (see [`credentials`]).
pub fn credentials_from(
    url: &str,
    token: Option<&str>,
    ssh_key: Option<&str>,
) -> Vec<(&'static str, OsString)> {
    access(url, token, ssh_key).1
}

/// What git is given for a URL that may hold credentials (`https://user:TOKEN@host/…`, as a
/// flag may be typed): the URL without them, so that they reach no argument, no
/// `.git/config` and no message, and the environment that carries them instead, as the
/// token goes. A password in the URL wins over `token`; a user name alone is sent with
/// `token` (`https://oauth2@host/…`), or alone when there is none (`https://TOKEN@host/…`).
/// An ssh URL keeps its user (a login name) and loses any password (ssh never uses it).
pub fn access(
    url: &str,
    token: Option<&str>,
    ssh_key: Option<&str>,
) -> (String, Vec<(&'static str, OsString)>) {
    let (url, typed) = take_credentials(url);
    let mut env: Vec<(&'static str, OsString)> = vec![("GIT_TERMINAL_PROMPT", "0".into())];
    let token = token.filter(|t| !t.is_empty());
    let basic = match typed {
        Some((user, Some(password))) => Some(format!("{user}:{password}")),
        Some((user, None)) => Some(format!("{user}:{}", token.unwrap_or(""))),
        None => token.map(|t| format!("x-access-token:{t}")),
    };
    if let Some(basic) = basic
        && url.starts_with("https://")
    {
        let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, basic);
        env.push(("GIT_CONFIG_COUNT", "1".into()));
        env.push(("GIT_CONFIG_KEY_0", "http.extraHeader".into()));
        env.push((
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}").into(),
        ));
    }
    if let Some(key) = ssh_key {
        // The key path is the operator's own setting; quoted for ssh's own word splitting.
        env.push((
            "GIT_SSH_COMMAND",
            format!(
                "ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes",
                key.replace('\'', "")
            )
            .into(),
        ));
    }
    (url, env)
}

/// Whether the URL holds a password (`https://user:TOKEN@host/…`), which [`access`] sends.
pub fn password_in_url(url: &str) -> bool {
    matches!(take_credentials(url).1, Some((_, Some(_))))
}

type Typed = (String, Option<String>);

/// The URL without its `user:password@` (percent-decoded), for http(s); an ssh URL without a
/// password. Anything else (`git@host:path`, `file:///…`) as it is.
fn take_credentials(url: &str) -> (String, Option<Typed>) {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return (url.to_owned(), None);
    };
    if u.username().is_empty() && u.password().is_none() {
        return (url.to_owned(), None);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = (decode(u.username()), u.password().map(decode));
    let _ = u.set_password(None);
    if !matches!(u.scheme(), "https" | "http") {
        return (u.to_string(), None);
    }
    let _ = u.set_username("");
    (u.to_string(), Some((user, password)))
}

/// A git message without the URL's user and password.
fn redact(message: &str, url: &str) -> String {
    message.replace(url, &crate::pypi::redact(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_versions_after_their_prefix_and_annotated_ones_name_their_commit() {
        let out = "aaa\trefs/tags/v1.0.0\n\
                   bbb\trefs/tags/v1.1.0\n\
                   ccc\trefs/tags/v1.1.0^{}\n\
                   ddd\trefs/tags/v2.0.0rc1\n\
                   eee\trefs/tags/not-a-version\n\
                   fff\trefs/tags/vnext\n\
                   111\trefs/tags/v1.0\n";
        let t = parse_tags(out, "v");
        let got: Vec<(String, String, String)> = t
            .versions
            .iter()
            .map(|iv| {
                let g = iv.git.clone().unwrap();
                (iv.version.to_string(), g.tag, g.commit)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("1.0".into(), "v1.0".into(), "111".into()),
                ("1.1.0".into(), "v1.1.0".into(), "ccc".into()),
                ("2.0.0rc1".into(), "v2.0.0rc1".into(), "ddd".into()),
            ],
            "v1.0 and v1.0.0 are one version; an annotated tag names the commit it tags"
        );
        assert_eq!(t.skipped, ["vnext"], "not-a-version lacks the prefix");
        // PEP 440 itself allows a leading `v`, so with no prefix the v-tags are versions too.
        let t = parse_tags(out, "");
        assert_eq!(t.skipped, ["not-a-version", "vnext"]);
        assert_eq!(t.versions.len(), 3);
    }

    #[test]
    fn gits_refusals_name_the_variable_to_set_or_check() {
        // What git 2.47 prints when the server answers 401, with or without a token sent.
        let said = "git exited with exit status: 128: fatal: could not read Username for 'https://git.example.com': terminal prompts disabled";
        let https = "https://git.example.com/x.git";
        let refused = auth_failure(said, https, Some(TOKEN_ENV), false).unwrap();
        assert!(
            refused.contains("refused the token in HERMIT_PEX_GIT_TOKEN"),
            "{refused}"
        );
        let none = auth_failure(said, https, None, false).unwrap();
        assert!(none.contains("set HERMIT_PEX_GIT_TOKEN"), "{none}");
        let http = auth_failure(
            said,
            "http://git.example.com/x.git",
            Some("GITHUB_TOKEN"),
            false,
        )
        .unwrap();
        assert!(
            http.contains("GITHUB_TOKEN is sent only to https://"),
            "{http}"
        );
        let forbidden = "fatal: unable to access 'https://git.example.com/x.git/': The requested URL returned error: 403";
        assert!(auth_failure(forbidden, https, Some(TOKEN_ENV), false).is_some());
        let ssh = "git@host: Permission denied (publickey).\nfatal: Could not read from remote repository.";
        assert!(
            auth_failure(ssh, "git@host:x.git", None, false)
                .unwrap()
                .contains("set HERMIT_PEX_GIT_SSH_KEY")
        );
        assert!(
            auth_failure(ssh, "git@host:x.git", None, true)
                .unwrap()
                .contains("refused the SSH key in HERMIT_PEX_GIT_SSH_KEY")
        );
        let other = "fatal: repository 'https://git.example.com/x.git/' not found";
        assert_eq!(auth_failure(other, https, Some(TOKEN_ENV), false), None);
    }

    #[test]
    fn a_heads_static_version_comes_from_pyproject_or_setup_cfg_and_dynamic_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let at = |files: &[(&str, &str)]| {
            let d = tempfile::tempdir_in(dir.path()).unwrap().keep();
            for (name, text) in files {
                std::fs::write(d.join(name), text).unwrap();
            }
            static_metadata(&d)
        };
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert_eq!(
            at(&[(
                "pyproject.toml",
                "[project]\nname = \"Hello_Tool\"\nversion = \"1.2.0\"\n"
            )]),
            Static::Declared {
                name: Some("Hello_Tool".into()),
                version: v("1.2.0")
            }
        );
        assert_eq!(
            at(&[(
                "pyproject.toml",
                "[project]\nname = \"x\"\ndynamic = [\"version\"]\n"
            )]),
            Static::Dynamic
        );
        assert_eq!(
            at(&[
                (
                    "pyproject.toml",
                    "[build-system]\nrequires = [\"setuptools\"]\n"
                ),
                ("setup.cfg", "[metadata]\nname = x\nversion = 2.0\n")
            ]),
            Static::Declared {
                name: Some("x".into()),
                version: v("2.0")
            }
        );
        assert_eq!(
            at(&[("setup.cfg", "[metadata]\nversion = attr: x.__version__\n")]),
            Static::Dynamic
        );
        assert!(matches!(
            at(&[("pyproject.toml", "[project]\nversion = \"one\"\n")]),
            Static::Invalid(m) if m.contains("not a PEP 440 version")
        ));
    }

    #[test]
    fn a_token_travels_as_a_header_only_to_https() {
        let https = credentials_from("https://git.example.com/x.git", Some("s3cret"), None);
        let file = credentials_from("file:///tmp/x.git", Some("s3cret"), None);
        assert!(https.iter().any(|(k, v)| *k == "GIT_CONFIG_VALUE_0"
            && v.to_string_lossy().starts_with("Authorization: Basic ")));
        assert!(!file.iter().any(|(k, _)| k.starts_with("GIT_CONFIG")));
    }

    #[test]
    fn credentials_typed_into_a_url_are_taken_out_of_it() {
        let header = |env: &[(&str, OsString)]| {
            env.iter()
                .find(|(k, _)| *k == "GIT_CONFIG_VALUE_0")
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        let basic = |s: &str| {
            format!(
                "Authorization: Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s)
            )
        };
        let (url, env) = access(
            "https://bob:s3%40cret@git.example.com/x.git",
            Some("t"),
            None,
        );
        assert_eq!(url, "https://git.example.com/x.git");
        assert_eq!(
            header(&env),
            Some(basic("bob:s3@cret")),
            "the URL's own win"
        );
        let (url, env) = access("https://oauth2@git.example.com/x.git", Some("t"), None);
        assert_eq!(url, "https://git.example.com/x.git");
        assert_eq!(header(&env), Some(basic("oauth2:t")));
        let (url, env) = access("https://ghp_tok@github.com/o/r.git", None, None);
        assert_eq!(url, "https://github.com/o/r.git");
        assert_eq!(header(&env), Some(basic("ghp_tok:")));
        let (url, env) = access("ssh://git:pw@host/x.git", Some("t"), None);
        assert_eq!(url, "ssh://git@host/x.git");
        assert_eq!(header(&env), None);
        for plain in [
            "git@github.com:o/r.git",
            "file:///srv/x.git",
            "https://h/x.git",
        ] {
            assert_eq!(access(plain, None, None).0, plain);
        }
    }
}

/// What a package's source offers now: the index's versions, or the repository's tags, or
/// its branch's head.
#[derive(Debug, Clone, Default)]
pub struct Offered {
    pub versions: Vec<IndexVersion>,
    /// The index answered 304: nothing changed since it was last asked.
    pub not_modified: bool,
    /// Tags that are not versions (a Git source).
    pub skipped_tags: Vec<String>,
    /// A source that follows a branch: its head, and the version declared there.
    pub head: Option<Head>,
}

/// A branch's head commit and the version the project declares at it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Head {
    pub branch: String,
    pub commit: String,
    pub version: Version,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "branch {} at {} declares {}",
            self.branch,
            &self.commit[..self.commit.len().min(12)],
            self.version
        )
    }
}

/// How the version a branch head declares is learned: read from the project's static
/// metadata (`pyproject.toml` `[project] version`, else `setup.cfg` `[metadata] version`), or,
/// when it is dynamic and a builder is given, from the wheel built there. Answers are kept
/// per commit.
#[derive(Debug, Clone, Default)]
pub struct HeadReader {
    /// Where answers (per commit) and checkouts are kept; none: a temporary directory.
    pub cache_dir: Option<PathBuf>,
    /// Builds the wheel of a head whose version is dynamic (`sync`, `plan`); none: such a
    /// head is an error that says so (the controller has no build tools).
    pub builder: Option<WheelProbe>,
}

/// What builds a wheel to learn a dynamic version: uv (`uv build --wheel`), resolving the
/// build backend from these indexes.
#[derive(Debug, Clone)]
pub struct WheelProbe {
    /// Where uv is installed (or found): see `lock::Uv::locate`.
    pub cache_dir: PathBuf,
    pub indexes: crate::pypi::Indexes,
    pub timeout: Duration,
}

/// The commit at the head of `branch` (`git ls-remote <url> refs/heads/<branch>`).
pub async fn head_commit(source: &GitSource, branch: &str) -> Result<String, SourceError> {
    let args: Vec<OsString> = vec![
        "ls-remote".into(),
        "--heads".into(),
        "--".into(),
        source.git.clone().into(),
        format!("refs/heads/{branch}").into(),
    ];
    let out = git(source, &args, None).await?;
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(_, r)| r.trim() == format!("refs/heads/{branch}"))
        .map(|(sha, _)| sha.trim().to_owned())
        .ok_or_else(|| SourceError::Git {
            url: crate::pypi::redact(&source.git),
            message: format!("there is no branch {branch}: check source.branch"),
        })
}

/// The version `package`'s project declares at `commit` of `branch` (see [`HeadReader`]).
pub async fn head_version(
    source: &GitSource,
    package: &crate::names::PackageName,
    branch: &str,
    commit: &str,
    reader: &HeadReader,
) -> Result<Version, SourceError> {
    let key = crate::digest::sha256_hex(format!("{}\n{}", source.git, source.subdirectory()));
    let tmp;
    let base = match &reader.cache_dir {
        Some(d) => d.join(&key[..16]),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let answer = base.join(format!("{commit}.version"));
    if let Some(v) = std::fs::read_to_string(&answer)
        .ok()
        .and_then(|t| t.trim().parse::<Version>().ok())
    {
        return Ok(v);
    }
    let tag = GitTag {
        tag: branch.to_owned(),
        commit: commit.to_owned(),
    };
    let project = checkout(source, &tag, &base.join("checkout")).await?;
    let fail = |message: String| SourceError::Git {
        url: crate::pypi::redact(&source.git),
        message: format!(
            "branch {branch} at {}: {message}",
            &commit[..commit.len().min(12)]
        ),
    };
    let dir = project.clone();
    let declared = crate::blocking::run(move || static_metadata(&dir)).await;
    let (name, version) = match declared {
        Static::Declared { name, version } => (name, version),
        Static::Invalid(why) => return Err(fail(why)),
        Static::Dynamic => match &reader.builder {
            Some(probe) => built_version(&project, probe, &base).await.map_err(fail)?,
            None => {
                return Err(fail(
                    "the project's version is dynamic: the controller reads only a static \
                     version (pyproject.toml [project] version, or setup.cfg [metadata] \
                     version); `hermit-pex sync` builds the wheel to learn it"
                        .into(),
                ));
            }
        },
    };
    if let Some(name) = name
        && crate::names::normalize(&name) != package.as_str()
    {
        return Err(fail(format!(
            "the project is {}, not {package}: fix the project's name or the package",
            crate::names::shown(&name)
        )));
    }
    if version.is_local() {
        return Err(fail(format!(
            "it declares the local version {version}, which an index does not take: give the branch a public version"
        )));
    }
    std::fs::create_dir_all(&base)?;
    std::fs::write(&answer, version.to_string())?;
    Ok(version)
}

/// What a project's static metadata declares.
#[derive(Debug, PartialEq)]
enum Static {
    Declared {
        name: Option<String>,
        version: Version,
    },
    /// Computed by the build backend (setuptools-scm, `attr:`, …).
    Dynamic,
    Invalid(String),
}

/// `[project] name/version` of `pyproject.toml` (unless `version` is in `dynamic`), else
/// `[metadata] version` of `setup.cfg` (unless it is an `attr:` or `file:` directive).
fn static_metadata(project: &Path) -> Static {
    if let Ok(text) = std::fs::read_to_string(project.join("pyproject.toml")) {
        let doc: toml::Table = match toml::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                return Static::Invalid(format!("pyproject.toml is not TOML: {}", e.message()));
            }
        };
        if let Some(p) = doc.get("project").and_then(|p| p.as_table()) {
            let dynamic = p
                .get("dynamic")
                .and_then(|d| d.as_array())
                .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("version")));
            let name = p.get("name").and_then(|n| n.as_str()).map(str::to_owned);
            if let (false, Some(v)) = (dynamic, p.get("version").and_then(|v| v.as_str())) {
                return match v.parse::<Version>() {
                    Ok(version) => Static::Declared { name, version },
                    Err(_) => Static::Invalid(format!(
                        "pyproject.toml's version {} is not a PEP 440 version",
                        crate::names::shown(v)
                    )),
                };
            }
            if dynamic {
                return Static::Dynamic;
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(project.join("setup.cfg")) {
        let mut section = "";
        let (mut name, mut version) = (None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') && line.ends_with(']') {
                section = &line[1..line.len() - 1];
            } else if section == "metadata"
                && let Some((k, v)) = line.split_once('=')
            {
                match k.trim() {
                    "name" => name = Some(v.trim().to_owned()),
                    "version" => version = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
        if let Some(v) = version.filter(|v| !v.starts_with("attr:") && !v.starts_with("file:"))
            && let Ok(version) = v.parse::<Version>()
        {
            return Static::Declared { name, version };
        }
    }
    Static::Dynamic
}

/// Builds the project's wheel with uv to read the version (and name) it declares.
async fn built_version(
    project: &Path,
    probe: &WheelProbe,
    base: &Path,
) -> Result<(Option<String>, Version), String> {
    let uv = crate::lock::Uv::locate(&probe.cache_dir).await?;
    let out = base.join("wheel");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| e.to_string())?;
    }
    let mut args: Vec<OsString> = [
        "build",
        "--wheel",
        "--no-config",
        "--no-python-downloads",
        "--quiet",
        "--color",
        "never",
    ]
    .map(OsString::from)
    .to_vec();
    args.extend([
        "--index-url".into(),
        probe.indexes.primary.url.to_string().into(),
    ]);
    for extra in &probe.indexes.extra {
        args.extend(["--extra-index-url".into(), extra.url.to_string().into()]);
    }
    args.extend([
        OsString::from("--cache-dir"),
        probe.cache_dir.join("uv").into(),
    ]);
    args.extend([OsString::from("--out-dir"), out.clone().into()]);
    args.push(project.into());
    let mut env = Vec::new();
    if let Some(netrc) = probe.indexes.netrc() {
        env.push(("NETRC", netrc.into()));
    }
    tools::run(&uv.path, &args, &env, probe.timeout)
        .await
        .map_err(|e| format!("building the wheel to learn its version failed: {e}"))?;
    let wheel = std::fs::read_dir(&out)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".whl"))
        .ok_or("uv built no wheel")?;
    let name = crate::lock::wheel_name::WheelName::parse(&wheel).map_err(|e| e.to_string())?;
    let version = name
        .version
        .parse::<Version>()
        .map_err(|_| format!("the wheel {wheel} has no PEP 440 version"))?;
    Ok((Some(name.distribution), version))
}

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Index(#[from] crate::pypi::IndexError),
    #[error(transparent)]
    Git(#[from] SourceError),
}

impl ObserveError {
    /// Only a change to the config helps: the project is not on the index, or the index
    /// refuses the credentials (or their absence). Retrying soon would ask again for nothing.
    pub fn needs_a_fix(&self) -> bool {
        matches!(
            self,
            ObserveError::Index(
                crate::pypi::IndexError::NotFound { .. }
                    | crate::pypi::IndexError::Unauthorized { .. }
            )
        )
    }
}

/// The versions `spec`'s source offers: a branch's head is read with `heads`.
pub async fn offered(
    index: &crate::pypi::IndexClient,
    spec: &crate::spec::PackageSpec,
    heads: &HeadReader,
) -> Result<Offered, ObserveError> {
    match &spec.source {
        Some(git) if git.branch.is_some() => {
            let branch = git.branch.as_deref().unwrap_or_default();
            let commit = head_commit(git, branch).await?;
            let version = head_version(git, &spec.package, branch, &commit, heads).await?;
            Ok(Offered {
                versions: vec![IndexVersion {
                    version: version.clone(),
                    requires_python: None,
                    git: Some(GitTag {
                        tag: branch.to_owned(),
                        commit: commit.clone(),
                    }),
                }],
                not_modified: false,
                skipped_tags: Vec::new(),
                head: Some(Head {
                    branch: branch.to_owned(),
                    commit,
                    version,
                }),
            })
        }
        Some(git) => {
            let t = tags(git).await?;
            Ok(Offered {
                versions: t.versions,
                not_modified: false,
                skipped_tags: t.skipped,
                head: None,
            })
        }
        None => {
            let project = index.project(&spec.package).await?;
            Ok(Offered {
                versions: project.versions(),
                not_modified: project.not_modified,
                skipped_tags: Vec::new(),
                head: None,
            })
        }
    }
}
