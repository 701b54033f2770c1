//! Uploads to a private index through the upload API twine uses (the "legacy" API of
//! warehouse, pypiserver, devpi, Azure Artifacts, Artifactory, Nexus…): one multipart POST per
//! file with `:action=file_upload`, `protocol_version=1`, the core metadata's name, version
//! and metadata version, `filetype`, `pyversion` and the file's `sha256_digest`.
//!
//! Idempotent: the index's simple page is read first; a file there with the same digest is
//! success, the same name with another digest is an error naming both digests, and nothing is
//! ever overwritten. An upload whose answer was lost (a connection cut after the body went
//! out, a 400/409 "already exists" of a race) is checked against the page again before it
//! counts as failed. One exception to "never overwritten", measured on pypiserver 2.4.2: an
//! index that does not check the form's digest keeps what arrived of an upload cut off
//! half-way under the file's name; a copy whose bytes are a strict prefix of this very file
//! (and the only file of its version there) is removed (`:action=remove_pkg`) and the file
//! uploaded whole, and said so. Credentials come from the environment (`HERMIT_PEX_PUBLISH_*`, see
//! `pypi::auth`), go only to the index's own URLs, and never into a message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use pep440_rs::Version;
use reqwest::{StatusCode, Url};

use super::{Offered, Origin, Sources};
use crate::names::PackageName;
use crate::pypi::{Credentials, EnvCredentials, Index, IndexClient, IndexError, redact};
use crate::release::{Release, ReleaseStore};
use crate::spec::PackageSpec;

/// A private index wheels are published to.
#[derive(Debug, Clone)]
pub struct PublishIndex {
    /// The operator's name for it (`--publish-index NAME=URL`).
    pub name: String,
    /// Where files are POSTed (pypiserver: its root; PyPI: `https://upload.pypi.org/legacy/`).
    pub upload_url: Url,
    /// Its simple API root, read to find what it has.
    pub simple_url: Url,
    pub credentials: Option<Credentials>,
    /// The variables the credentials come from, for messages.
    pub variables: String,
}

/// Which file went to which index, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub file: String,
    pub package: PackageName,
    pub version: Version,
    pub index: String,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} {}) to {}",
            self.file, self.package, self.version, self.index
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("publish index {name}: {message}")]
    Settings { name: String, message: String },
    #[error("{of}: the index refused the credentials (HTTP {status}): {hint}")]
    Credentials {
        of: Box<Subject>,
        status: u16,
        hint: String,
    },
    #[error("{of}: the upload was rejected with HTTP {status}{reason}")]
    Rejected {
        of: Box<Subject>,
        status: u16,
        reason: String,
    },
    #[error(
        "{of}: the index has it with sha256 {theirs}, this release's is {ours}{note}: a published file is never overwritten (publish a new version)"
    )]
    Conflict {
        of: Box<Subject>,
        theirs: String,
        ours: String,
        /// What else is known of the index's copy.
        note: String,
    },
    #[error("{of}: {message}")]
    Failed { of: Box<Subject>, message: String },
}

impl PublishIndex {
    /// The index `name` at `upload_url` (its simple root `simple_url`, or derived from the
    /// upload URL), with its credentials from the environment. A URL holding credentials is
    /// refused: they would be in the process list and in every message.
    pub fn from_env(
        name: &str,
        upload_url: &str,
        simple_url: Option<&str>,
    ) -> Result<Self, UploadError> {
        let bad = |message: String| UploadError::Settings {
            name: name.to_owned(),
            message,
        };
        let parse = |u: &str, what: &str| -> Result<Url, UploadError> {
            let url = Url::parse(u).map_err(|e| bad(format!("{what} {}: {e}", redact(u))))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad(format!(
                    "{what} {}: use http:// or https://",
                    redact(u)
                )));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad(format!(
                    "{what}: take the credentials out of the URL and into HERMIT_PEX_PUBLISH_{}_USERNAME/_PASSWORD (or _TOKEN)",
                    name.to_uppercase().replace('-', "_")
                )));
            }
            Ok(url)
        };
        let upload_url = parse(upload_url, "the upload URL")?;
        let mut simple_url = match simple_url {
            Some(s) => parse(s, "the simple URL")?,
            None => simple_of(&upload_url),
        };
        if !simple_url.path().ends_with('/') {
            simple_url.set_path(&format!("{}/", simple_url.path()));
        }
        let (env, variables) = EnvCredentials::for_publish(name).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            upload_url,
            simple_url,
            credentials: env.0,
            variables,
        })
    }

    /// `NAME (URL)`, for messages.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.upload_url)
    }
}

/// The simple root of an upload URL: PyPI's (`upload.pypi.org/legacy/` → `pypi.org/simple/`),
/// a sibling `simple/` of a `legacy/` or `upload/` endpoint (warehouse, Azure Artifacts), else
/// `simple/` under it (pypiserver's root).
pub fn simple_of(upload: &Url) -> Url {
    let mut url = upload.clone();
    if url.host_str() == Some("upload.pypi.org") {
        return Url::parse("https://pypi.org/simple/").expect("a valid URL");
    }
    let path = url.path().trim_end_matches('/').to_owned();
    for endpoint in ["/legacy", "/upload"] {
        if let Some(parent) = path.strip_suffix(endpoint) {
            url.set_path(&format!("{parent}/simple/"));
            return url;
        }
    }
    url.set_path(&format!("{path}/simple/"));
    url
}

/// A file to upload, and what it is of.
#[derive(Debug, Clone)]
pub struct FileToUpload {
    pub package: PackageName,
    pub version: Version,
    pub filename: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// What one upload came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    Uploaded,
    /// The index had it already, with this digest.
    AlreadyThere,
    /// The index had a truncated copy of it (`truncated` bytes, the start of this very file,
    /// left by an upload cut off half-way on an index that does not check the digest): it
    /// was removed and the file uploaded whole.
    Replaced {
        truncated: u64,
    },
}

/// What the index lists under a file's name.
struct Found {
    sha256: Option<String>,
    url: String,
    /// Other files of the same version.
    others: usize,
}

/// Uploads files to one [`PublishIndex`]; remembers what it found there.
pub struct Uploader {
    http: reqwest::Client,
    pages: IndexClient,
    pub index: PublishIndex,
    /// (file name, sha256) known to be on the index: a steady state asks it nothing.
    known: Mutex<std::collections::BTreeSet<(String, String)>>,
}

impl Uploader {
    /// A POST of `form` to the upload URL, with the index's credentials.
    fn post(&self, form: reqwest::multipart::Form) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(self.index.upload_url.clone())
            .multipart(form);
        match &self.index.credentials {
            Some(c) => request.basic_auth(&c.username, Some(c.password())),
            None => request,
        }
    }

    pub fn new(index: PublishIndex) -> Result<Self, UploadError> {
        let settings = |message: String| UploadError::Settings {
            name: index.name.clone(),
            message,
        };
        let http = reqwest::Client::builder()
            .user_agent(crate::pypi::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            // A redirect would carry the form elsewhere: an upload goes where it was told.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| settings(e.to_string()))?;
        let pages = IndexClient::for_index(
            Index {
                url: index.simple_url.clone(),
                credentials: index.credentials.clone(),
            },
            None,
        )
        .map_err(|e| settings(e.to_string()))?;
        Ok(Self {
            http,
            pages,
            index,
            known: Mutex::default(),
        })
    }

    pub fn is_known(&self, filename: &str, sha256: &str) -> bool {
        self.known
            .lock()
            .expect("not poisoned")
            .contains(&(filename.to_owned(), sha256.to_owned()))
    }

    fn remember(&self, filename: &str, sha256: &str) {
        self.known
            .lock()
            .expect("not poisoned")
            .insert((filename.to_owned(), sha256.to_owned()));
    }

    /// What the index lists under `f`'s name, if anything.
    async fn find(&self, f: &FileToUpload) -> Result<Option<Found>, UploadError> {
        let files = match self.pages.project(&f.package).await {
            Ok(p) => p.files,
            Err(IndexError::NotFound { .. }) => return Ok(None),
            Err(IndexError::Unauthorized { status, .. }) => {
                return Err(self.credentials_error(f, status));
            }
            Err(e) => return Err(self.failed(f, format!("cannot read its simple page: {e}"))),
        };
        let others = files
            .iter()
            .filter(|d| d.filename != f.filename && d.version == f.version)
            .count();
        let Some(listed) = files.into_iter().find(|d| d.filename == f.filename) else {
            return Ok(None);
        };
        let sha256 = match listed.sha256 {
            Some(sha) => Some(sha.to_ascii_lowercase()),
            // Listed without a digest: its bytes say.
            None => self
                .download(&listed.url)
                .await
                .map(|b| crate::digest::sha256_hex(&b)),
        };
        Ok(Some(Found {
            sha256,
            url: listed.url,
            others,
        }))
    }

    async fn download(&self, url: &str) -> Option<bytes::Bytes> {
        let url = Url::parse(url).ok()?;
        let mut request = self.http.get(url.clone());
        if let Some(c) = &self.index.credentials
            && url.origin() == self.index.simple_url.origin()
        {
            request = request.basic_auth(&c.username, Some(c.password()));
        }
        let response = request.send().await.ok()?.error_for_status().ok()?;
        response.bytes().await.ok()
    }

    /// The size of the index's copy when it is a strict prefix of `f`'s bytes: what an index
    /// that does not check the form's digest (pypiserver) keeps of an upload cut off half-way.
    async fn truncated_copy(&self, f: &FileToUpload, found: &Found) -> Option<u64> {
        let theirs = self.download(&found.url).await?;
        let path = f.path.clone();
        let ours = crate::blocking::run(move || std::fs::read(path))
            .await
            .ok()?;
        (theirs.len() < ours.len() && ours.starts_with(&theirs)).then_some(theirs.len() as u64)
    }

    /// Removes the version's files (pypiserver's `:action=remove_pkg`, under the same upload
    /// permission); the status when refused.
    async fn remove_version(&self, f: &FileToUpload) -> Result<(), String> {
        // pypiserver matches both as its file names spell them (`tiny_tool`, `2.0`).
        let (name, version) = match crate::lock::wheel_name::WheelName::parse(&f.filename) {
            Ok(w) => (w.distribution, w.version),
            Err(_) => (f.package.to_string(), f.version.to_string()),
        };
        let form = reqwest::multipart::Form::new()
            .text(":action", "remove_pkg")
            .text("name", name)
            .text("version", version);
        let request = self.post(form);
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Err(describe(&e)),
        }
    }

    /// Uploads `f` unless the index has it; the same name with another digest is an error
    /// (unless it is a truncated copy of this very file, which is replaced).
    pub async fn upload(&self, f: &FileToUpload) -> Result<Uploaded, UploadError> {
        let mut repaired = None;
        match self.find(f).await? {
            Some(found) if found.sha256.as_deref() == Some(f.sha256.as_str()) => {
                self.remember(&f.filename, &f.sha256);
                return Ok(Uploaded::AlreadyThere);
            }
            Some(found) => {
                let Some(size) = self.truncated_copy(f, &found).await else {
                    return Err(self.conflict(f, found.sha256, String::new()));
                };
                if found.others > 0 {
                    return Err(self.conflict(
                        f,
                        found.sha256,
                        format!(
                            " (it is a truncated copy of this file, {size} bytes, left by an upload cut off half-way; other files of {} are there, so it is not removed: delete it on the index)",
                            f.version
                        ),
                    ));
                }
                if let Err(why) = self.remove_version(f).await {
                    return Err(self.conflict(
                        f,
                        found.sha256,
                        format!(
                            " (it is a truncated copy of this file, {size} bytes, left by an upload cut off half-way; the index refused to remove it ({why}): delete it on the index)"
                        ),
                    ));
                }
                tracing::warn!(file = %f.filename, index = %self.index.describe(), size, "removed a truncated copy left by an upload cut off half-way");
                repaired = Some(size);
            }
            None => {}
        }
        let done = |this: &Self| {
            this.remember(&f.filename, &f.sha256);
            Ok(match repaired {
                Some(truncated) => Uploaded::Replaced { truncated },
                None => Uploaded::Uploaded,
            })
        };
        let form = form(f).await.map_err(|m| self.failed(f, m))?;
        let request = self.post(form);
        let sent = request.send().await;
        let (status, body) = match sent {
            Ok(r) => {
                let status = r.status();
                (Some(status), r.text().await.unwrap_or_default())
            }
            Err(e) => {
                tracing::info!(file = %f.filename, error = %describe(&e), "the upload's answer was lost; looking at the index");
                (None, describe(&e))
            }
        };
        if status.is_some_and(|s| s.is_success()) {
            return done(self);
        }
        if status.is_some_and(|s| s == StatusCode::UNAUTHORIZED) {
            return Err(self.credentials_error(f, 401));
        }
        // The body may have arrived (a lost answer), or another upload won a race: the page
        // says whether the index has this very file now.
        if let Ok(Some(found)) = self.find(f).await {
            if found.sha256.as_deref() == Some(f.sha256.as_str()) {
                return done(self);
            }
            if status.is_none() {
                // Cut off: what the index kept of it is repaired by the next run.
                return Err(self.failed(
                    f,
                    format!("the upload did not finish ({body}); the index kept part of it, which the next run replaces"),
                ));
            }
            return Err(self.conflict(f, found.sha256, String::new()));
        }
        Err(match status {
            None => self.failed(f, format!("the upload did not finish: {body}")),
            Some(s) => UploadError::Rejected {
                of: self.subject(f),
                status: s.as_u16(),
                reason: reason(s, &body, &self.index.variables),
            },
        })
    }

    fn credentials_error(&self, f: &FileToUpload, status: u16) -> UploadError {
        let hint = match &self.index.credentials {
            Some(_) => format!(
                "check the credentials in {} (they were sent)",
                self.index.variables
            ),
            None => format!("none were given: set {}", self.index.variables),
        };
        UploadError::Credentials {
            of: self.subject(f),
            status,
            hint,
        }
    }

    fn conflict(&self, f: &FileToUpload, theirs: Option<String>, note: String) -> UploadError {
        UploadError::Conflict {
            of: self.subject(f),
            theirs: theirs.unwrap_or_else(|| "unknown (it could not be read)".into()),
            ours: f.sha256.clone(),
            note,
        }
    }

    fn failed(&self, f: &FileToUpload, message: String) -> UploadError {
        UploadError::Failed {
            of: self.subject(f),
            message,
        }
    }

    fn subject(&self, f: &FileToUpload) -> Box<Subject> {
        Box::new(Subject {
            file: f.filename.clone(),
            package: f.package.clone(),
            version: f.version.clone(),
            index: self.index.describe(),
        })
    }
}

/// The reason part of a rejection: what the status means here, and the start of the index's
/// own words (tags and control characters taken out, cut short).
fn reason(status: StatusCode, body: &str, variables: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(if c.is_control() { ' ' } else { c }),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut said: String = words.join(" ");
    if said.chars().count() > 200 {
        said = said.chars().take(200).collect::<String>() + "…";
    }
    let meaning = match status.as_u16() {
        403 => format!(
            " (forbidden: the user of {variables} may not upload this project, or the index refuses uploads)"
        ),
        409 => " (conflict: the index has a file of that name)".to_owned(),
        400 => " (the index refused the form or the file)".to_owned(),
        _ => String::new(),
    };
    match said.is_empty() {
        true => meaning,
        false => format!("{meaning}: {said}"),
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    redact(&message)
}

/// The multipart form of one file, as twine sends it.
async fn form(f: &FileToUpload) -> Result<reqwest::multipart::Form, String> {
    let path = f.path.clone();
    let wheel = f.filename.ends_with(".whl");
    let (bytes, metadata) = crate::blocking::run(move || -> Result<_, String> {
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        let metadata = match wheel {
            true => {
                Some(crate::lock::dist_info::read_metadata_file(&path).map_err(|e| e.to_string())?)
            }
            false => None,
        };
        Ok((bytes, metadata))
    })
    .await?;
    let sha = crate::digest::sha256_hex(&bytes);
    if sha != f.sha256 {
        return Err(format!(
            "the file read has sha256 {sha}, the release records {}",
            f.sha256
        ));
    }
    let metadata = metadata
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .unwrap_or_default();
    let header = |name: &str| super::page::header(&metadata, name);
    let (filetype, pyversion) = match wheel {
        true => {
            let name = crate::lock::wheel_name::WheelName::parse(&f.filename)
                .map_err(|e| e.to_string())?;
            ("bdist_wheel", name.python.join("."))
        }
        false => ("sdist", "source".to_owned()),
    };
    let mut fields: BTreeMap<&str, String> = BTreeMap::from([
        (":action", "file_upload".to_owned()),
        ("protocol_version", "1".to_owned()),
        ("filetype", filetype.to_owned()),
        ("pyversion", pyversion),
        ("sha256_digest", f.sha256.clone()),
        (
            "metadata_version",
            header("Metadata-Version").unwrap_or_else(|| "2.1".into()),
        ),
        (
            "name",
            header("Name").unwrap_or_else(|| f.package.to_string()),
        ),
        (
            "version",
            header("Version").unwrap_or_else(|| f.version.to_string()),
        ),
    ]);
    for (field, name) in [
        ("summary", "Summary"),
        ("requires_python", "Requires-Python"),
    ] {
        if let Some(v) = header(name) {
            fields.insert(field, v);
        }
    }
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k, v);
    }
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(f.filename.clone())
        .mime_str("application/octet-stream")
        .map_err(|e| e.to_string())?;
    Ok(form.part("content", part))
}

/// What publishing a package's wheels came to.
#[derive(Debug, Default)]
pub struct PublishOutcome {
    pub uploaded: Vec<String>,
    /// On the index already with the same digest.
    pub already: Vec<String>,
    pub failed: Vec<UploadError>,
}

/// Uploads the Git-source wheel of each published, tested version of `spec` that the index
/// does not have yet.
pub async fn publish_package<S: ReleaseStore>(
    uploader: &Uploader,
    sources: &Sources<'_, S>,
    spec: &PackageSpec,
    releases: &[Release],
) -> PublishOutcome {
    let mut out = PublishOutcome::default();
    let todo: Vec<Offered> = super::offered(spec, releases, false)
        .into_iter()
        .filter(|o| o.origin == Origin::Asset && !uploader.is_known(&o.filename, &o.sha256))
        .collect();
    for o in todo {
        let file = |path: PathBuf| FileToUpload {
            package: spec.package.clone(),
            version: o.version.clone(),
            filename: o.filename.clone(),
            path,
            sha256: o.sha256.clone(),
        };
        let path = match sources.fetch(&spec.package, releases, &o).await {
            Ok((path, _)) => path,
            Err(message) => {
                out.failed
                    .push(uploader.failed(&file(PathBuf::new()), message));
                continue;
            }
        };
        match uploader.upload(&file(path)).await {
            Ok(Uploaded::Uploaded) => out.uploaded.push(o.filename.clone()),
            Ok(Uploaded::Replaced { truncated }) => out.uploaded.push(format!(
                "{} (replacing a truncated copy of {truncated} bytes left by an upload cut off half-way)",
                o.filename
            )),
            Ok(Uploaded::AlreadyThere) => out.already.push(o.filename.clone()),
            Err(e) => out.failed.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simple_root_of_an_upload_url() {
        let s = |u: &str| simple_of(&Url::parse(u).unwrap()).to_string();
        assert_eq!(
            s("https://upload.pypi.org/legacy/"),
            "https://pypi.org/simple/"
        );
        assert_eq!(
            s("https://test.pypi.org/legacy/"),
            "https://test.pypi.org/simple/"
        );
        assert_eq!(
            s("https://pkgs.dev.azure.com/acme/_packaging/tools/pypi/upload/"),
            "https://pkgs.dev.azure.com/acme/_packaging/tools/pypi/simple/"
        );
        assert_eq!(s("http://127.0.0.1:8080/"), "http://127.0.0.1:8080/simple/");
        assert_eq!(s("http://127.0.0.1:8080"), "http://127.0.0.1:8080/simple/");
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_repeating_them() {
        let e = PublishIndex::from_env("team-a", "https://u:s3cret@pypi.internal/", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HERMIT_PEX_PUBLISH_TEAM_A_USERNAME"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = PublishIndex::from_env("x", "ftp://pypi.internal/", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("use http:// or https://"), "{e}");
    }

    #[test]
    fn a_rejection_says_what_the_status_means_and_the_start_of_the_index_words() {
        let r = reason(
            StatusCode::CONFLICT,
            "<html><body><h1>409 Conflict</h1>\n<p>File exists</p></body></html>",
            "V",
        );
        assert_eq!(
            r,
            " (conflict: the index has a file of that name): 409 Conflict File exists"
        );
        let r = reason(StatusCode::FORBIDDEN, "", "HERMIT_PEX_PUBLISH_USERNAME");
        assert!(
            r.contains("HERMIT_PEX_PUBLISH_USERNAME may not upload"),
            "{r}"
        );
        let long = reason(StatusCode::BAD_REQUEST, &"x ".repeat(500), "V");
        assert!(long.chars().count() < 260 && long.ends_with('…'), "{long}");
    }
}
