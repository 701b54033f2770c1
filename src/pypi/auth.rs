//! Credentials for a private package index: where they come from (the URL, the environment, a
//! netrc file), which requests get them (the index's own origin only), and the private netrc
//! file pex and pip read them from, so they never appear in an argument list.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Url;

/// Environment variables for the primary index's credentials.
pub const USERNAME_ENV: &str = "HERMIT_PEX_INDEX_USERNAME";
pub const PASSWORD_ENV: &str = "HERMIT_PEX_INDEX_PASSWORD";
pub const TOKEN_ENV: &str = "HERMIT_PEX_INDEX_TOKEN";
/// Environment variables for the credentials of the indexes wheels are published to.
pub const PUBLISH_ENV_STEM: &str = "HERMIT_PEX_PUBLISH";
pub const PUBLISH_USERNAME_ENV: &str = "HERMIT_PEX_PUBLISH_USERNAME";
pub const PUBLISH_PASSWORD_ENV: &str = "HERMIT_PEX_PUBLISH_PASSWORD";
pub const PUBLISH_TOKEN_ENV: &str = "HERMIT_PEX_PUBLISH_TOKEN";
/// The user name PyPI, twine and most hosted indexes expect with an API token.
pub const TOKEN_USERNAME: &str = "__token__";

/// A user name and password. The password is kept out of `Debug` so a stray `{:?}` cannot log it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Credentials given in the environment, for the primary index only.
#[derive(Debug, Clone, Default)]
pub struct EnvCredentials(pub Option<Credentials>);

impl EnvCredentials {
    /// `HERMIT_PEX_INDEX_USERNAME` + `HERMIT_PEX_INDEX_PASSWORD`, else `HERMIT_PEX_INDEX_TOKEN`
    /// (user `__token__`). Empty values count as unset: a Secret with an optional key that is
    /// absent gives an empty variable in some setups.
    pub fn from_env() -> Result<Self, AuthError> {
        Self::from_vars(USERNAME_ENV, PASSWORD_ENV, TOKEN_ENV)
    }

    /// The same for the operator's index `name` (`--named-index`), in the controller:
    /// `HERMIT_PEX_INDEX_<NAME>_USERNAME` and so on, NAME uppercased with `-` as `_`.
    pub fn for_named(name: &str) -> Result<Self, AuthError> {
        let stem = format!("HERMIT_PEX_INDEX_{}", name.to_uppercase().replace('-', "_"));
        Self::from_vars(
            &format!("{stem}_USERNAME"),
            &format!("{stem}_PASSWORD"),
            &format!("{stem}_TOKEN"),
        )
    }

    /// The credentials of the private index `name` that wheels are published to: its own
    /// `HERMIT_PEX_PUBLISH_<NAME>_USERNAME`/`_PASSWORD`/`_TOKEN` (NAME uppercased, `-` as
    /// `_`), else `HERMIT_PEX_PUBLISH_USERNAME`/`_PASSWORD`/`_TOKEN`. Also says which
    /// variables were read, for a refusal to name them.
    pub fn for_publish(name: &str) -> Result<(Self, String), AuthError> {
        let stem = format!(
            "{PUBLISH_ENV_STEM}_{}",
            name.to_uppercase().replace('-', "_")
        );
        let own = Self::from_vars(
            &format!("{stem}_USERNAME"),
            &format!("{stem}_PASSWORD"),
            &format!("{stem}_TOKEN"),
        )?;
        let said = |stem: &str| format!("{stem}_USERNAME and {stem}_PASSWORD (or {stem}_TOKEN)");
        if own.0.is_some() {
            return Ok((own, said(&stem)));
        }
        let shared = Self::from_vars(
            PUBLISH_USERNAME_ENV,
            PUBLISH_PASSWORD_ENV,
            PUBLISH_TOKEN_ENV,
        )?;
        Ok((
            shared,
            format!(
                "{}, or {} for this index alone",
                said(PUBLISH_ENV_STEM),
                said(&stem)
            ),
        ))
    }

    fn from_vars(user: &str, pass: &str, token: &str) -> Result<Self, AuthError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let incomplete = |missing: &str| AuthError::Incomplete {
            missing: missing.to_owned(),
            user: user.to_owned(),
            pass: pass.to_owned(),
            token: token.to_owned(),
        };
        match (var(user), var(pass), var(token)) {
            (Some(u), Some(p), _) => Ok(Self(Some(Credentials::new(u, p)))),
            (None, None, Some(t)) => Ok(Self(Some(Credentials::new(TOKEN_USERNAME, t)))),
            (None, None, None) => Ok(Self(None)),
            (Some(_), None, _) => Err(incomplete(pass)),
            (None, Some(_), _) => Err(incomplete(user)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{missing} is not set: give both {user} and {pass}, or {token} alone")]
    Incomplete {
        missing: String,
        user: String,
        pass: String,
        token: String,
    },
    #[error("cannot write the credentials file pex reads: {0}")]
    Netrc(#[from] std::io::Error),
}

/// A package index: its URL without any user information, and its credentials if it has some.
#[derive(Debug, Clone)]
pub struct Index {
    pub url: Url,
    pub credentials: Option<Credentials>,
}

impl Index {
    /// Takes a `user:password@` out of `url` (it must never travel further inside the URL),
    /// else uses `fallback`, else the netrc entry for the host.
    pub fn resolve(mut url: Url, fallback: Option<Credentials>) -> Self {
        let inline = (!url.username().is_empty()).then(|| {
            Credentials::new(
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or_default()),
            )
        });
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let credentials = inline
            .or(fallback)
            .or_else(|| url.host_str().and_then(netrc_lookup));
        Self { url, credentials }
    }

    /// Whether a request to `target` may carry this index's credentials: same scheme, host and
    /// port. A file host elsewhere (a CDN the index redirects to) or another index never gets them.
    pub fn same_origin(&self, target: &Url) -> bool {
        self.url.origin() == target.origin()
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The user's netrc: `$NETRC`, else `~/.netrc`.
fn netrc_path() -> Option<PathBuf> {
    std::env::var_os("NETRC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))
}

fn netrc_lookup(host: &str) -> Option<Credentials> {
    let text = std::fs::read_to_string(netrc_path()?).ok()?;
    parse_netrc(&text, host)
}

/// The entry for `host` (or the `default` entry) of a netrc text, as curl and Python read it.
pub fn parse_netrc(text: &str, host: &str) -> Option<Credentials> {
    let mut tokens = text.split_whitespace();
    let mut found: Option<(bool, Option<String>, Option<String>)> = None;
    let mut best: Option<Credentials> = None;
    let mut default: Option<Credentials> = None;
    let finish = |entry: Option<(bool, Option<String>, Option<String>)>,
                  best: &mut Option<Credentials>,
                  default: &mut Option<Credentials>| {
        if let Some((is_default, login, Some(password))) = entry {
            let c = Credentials::new(login.unwrap_or_default(), password);
            if is_default {
                default.get_or_insert(c);
            } else {
                best.get_or_insert(c);
            }
        }
    };
    // `current`: None outside an entry; Some(matches) inside one.
    let mut current: Option<bool> = None;
    while let Some(token) = tokens.next() {
        match token {
            "machine" => {
                finish(found.take(), &mut best, &mut default);
                let matches = tokens.next() == Some(host);
                current = Some(matches);
                if matches {
                    found = Some((false, None, None));
                }
            }
            "default" => {
                finish(found.take(), &mut best, &mut default);
                current = Some(true);
                found = Some((true, None, None));
            }
            "login" | "password" | "account" => {
                let value = tokens.next().map(str::to_owned);
                if let (Some(true), Some(entry)) = (current, found.as_mut()) {
                    match token {
                        "login" => entry.1 = value,
                        "password" => entry.2 = value,
                        _ => {}
                    }
                }
            }
            // A macro runs to the next blank line; whitespace splitting loses those, so a file
            // with macros after the wanted entry still works, one with them before may not.
            "macdef" => {
                finish(found.take(), &mut best, &mut default);
                current = None;
            }
            _ => {}
        }
    }
    finish(found.take(), &mut best, &mut default);
    best.or(default)
}

/// A netrc file only this process's user can read, in a private temporary directory that is
/// removed when this is dropped. pip reads it through `NETRC`; nothing else names the password.
#[derive(Debug)]
pub struct PrivateNetrc {
    dir: tempfile::TempDir,
}

impl PrivateNetrc {
    /// None when no index has credentials.
    pub fn write(indexes: &[&Index]) -> Result<Option<Self>, AuthError> {
        let entries: Vec<(&str, &Credentials)> = indexes
            .iter()
            .filter_map(|i| Some((i.url.host_str()?, i.credentials.as_ref()?)))
            .collect();
        if entries.is_empty() {
            return Ok(None);
        }
        // tempfile creates the directory 0700 and the file 0600 on Unix.
        let dir = tempfile::Builder::new()
            .prefix("hermit-pex-auth-")
            .tempdir()?;
        let mut file = tempfile::NamedTempFile::new_in(dir.path())?;
        for (host, c) in entries {
            writeln!(
                file,
                "machine {} login {} password {}",
                host,
                quote(&c.username),
                quote(c.password())
            )?;
        }
        file.as_file().sync_all()?;
        file.persist(dir.path().join("netrc"))
            .map_err(|e| e.error)?;
        Ok(Some(Self { dir }))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("netrc")
    }
}

/// The indexes a build resolves from: the primary (`--index-url`) and the extra ones, with the
/// private netrc file holding whichever credentials they have. Cheap to clone; the file is
/// removed when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Indexes {
    pub primary: Index,
    pub extra: Vec<Index>,
    netrc: Option<Arc<PrivateNetrc>>,
    /// Whether a requirement may be a direct reference (`name @ URL`), which the resolver
    /// fetches from outside these indexes: only when the operator allows it.
    direct_references: bool,
}

impl Indexes {
    pub fn new(primary: Index, extra: Vec<Index>) -> Result<Self, AuthError> {
        let all: Vec<&Index> = std::iter::once(&primary).chain(&extra).collect();
        let netrc = PrivateNetrc::write(&all)?.map(Arc::new);
        Ok(Self {
            primary,
            extra,
            netrc,
            direct_references: false,
        })
    }

    /// The same indexes, with direct references allowed or not (`--allow-direct-references`).
    pub fn allowing_direct_references(mut self, allowed: bool) -> Self {
        self.direct_references = allowed;
        self
    }

    /// Whether a build may resolve direct references (`name @ URL`) besides these indexes.
    pub fn direct_references_allowed(&self) -> bool {
        self.direct_references
    }

    /// No credentials, no extra index: for tests and dry runs.
    pub fn plain(url: Url) -> Self {
        Self {
            primary: Index {
                url,
                credentials: None,
            },
            extra: Vec::new(),
            netrc: None,
            direct_references: false,
        }
    }

    /// Every index URL, primary first; none carries credentials.
    pub fn urls(&self) -> Vec<String> {
        std::iter::once(&self.primary)
            .chain(&self.extra)
            .map(|i| i.url.to_string())
            .collect()
    }

    /// The netrc file for pip (`NETRC`), when some index has credentials.
    pub fn netrc(&self) -> Option<PathBuf> {
        self.netrc.as_ref().map(|n| n.path())
    }

    /// The credentials a request to `url` may carry: those of the index with its origin.
    pub fn credentials_for(&self, url: &Url) -> Option<&Credentials> {
        std::iter::once(&self.primary)
            .chain(&self.extra)
            .find(|i| i.same_origin(url))
            .and_then(|i| i.credentials.as_ref())
    }
}

/// Python's netrc reader takes `"..."` with backslash escapes for tokens with spaces or quotes.
fn quote(token: &str) -> String {
    let plain = !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '#');
    if plain {
        return token.to_owned();
    }
    let mut out = String::from("\"");
    for c in token.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_entry_for_the_host_else_default() {
        let text = "machine other login a password b\n\
                    default login d password e\n\
                    machine pypi.internal\n  login alice\n  password s3cret\n";
        assert_eq!(
            parse_netrc(text, "pypi.internal"),
            Some(Credentials::new("alice", "s3cret"))
        );
        assert_eq!(
            parse_netrc(text, "elsewhere"),
            Some(Credentials::new("d", "e"))
        );
        assert_eq!(parse_netrc("machine x login y", "x"), None);
    }

    #[test]
    fn credentials_in_the_url_are_moved_out_of_it() {
        let url = Url::parse("https://al%40ce:p%3Ass@pypi.internal/simple/").unwrap();
        let index = Index::resolve(url, Some(Credentials::new("env", "env")));
        assert_eq!(index.url.as_str(), "https://pypi.internal/simple/");
        assert_eq!(index.credentials, Some(Credentials::new("al@ce", "p:ss")));
        assert!(!format!("{index:?}").contains("p:ss"));
    }

    #[test]
    fn only_the_index_origin_gets_credentials() {
        let index = Index::resolve(Url::parse("https://pypi.internal/simple/").unwrap(), None);
        let same = Url::parse("https://pypi.internal/packages/a.whl").unwrap();
        assert!(index.same_origin(&same));
        for other in [
            "https://files.example/packages/a.whl",
            "http://pypi.internal/simple/",
            "https://pypi.internal:8443/simple/",
        ] {
            assert!(!index.same_origin(&Url::parse(other).unwrap()), "{other}");
        }
    }

    #[test]
    fn private_netrc_is_private_and_parses_back() {
        use std::os::unix::fs::PermissionsExt;
        let index = Index {
            url: Url::parse("http://127.0.0.1:8080/simple/").unwrap(),
            credentials: Some(Credentials::new("u", "pa ss\"word")),
        };
        let netrc = PrivateNetrc::write(&[&index]).unwrap().unwrap();
        let meta = std::fs::metadata(netrc.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(netrc.path()).unwrap();
        assert_eq!(
            text,
            "machine 127.0.0.1 login u password \"pa ss\\\"word\"\n"
        );
        let dir = netrc.path().parent().unwrap().to_owned();
        drop(netrc);
        assert!(!dir.exists());
        assert!(PrivateNetrc::write(&[]).unwrap().is_none());
    }
}
