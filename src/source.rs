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

/// What a package's source offers now: the index's versions, or the repository's tags.
#[derive(Debug, Clone, Default)]
pub struct Offered {
    pub versions: Vec<IndexVersion>,
    /// The index answered 304: nothing changed since it was last asked.
    pub not_modified: bool,
    /// Tags that are not versions (a Git source).
    pub skipped_tags: Vec<String>,
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

/// The versions `spec`'s source offers.
pub async fn offered(
    index: &crate::pypi::IndexClient,
    spec: &crate::spec::PackageSpec,
) -> Result<Offered, ObserveError> {
    match &spec.source {
        Some(git) => {
            let t = tags(git).await?;
            Ok(Offered {
                versions: t.versions,
                not_modified: false,
                skipped_tags: t.skipped,
            })
        }
        None => {
            let project = index.project(&spec.package).await?;
            Ok(Offered {
                versions: project.versions(),
                not_modified: project.not_modified,
                skipped_tags: Vec::new(),
            })
        }
    }
}
