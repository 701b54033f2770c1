//! Parsing of Simple API project pages: the JSON form (PEP 691, with PEP 700 and PEP 592 fields)
//! and the HTML form (PEP 503) for indexes that only serve that.

use std::collections::BTreeMap;

use pep440_rs::{Version, VersionSpecifiers};
use reqwest::Url;
use serde::Deserialize;

use crate::names::normalize;

/// One distribution file of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct DistFile {
    pub filename: String,
    pub url: String,
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    /// `Some(reason)` when the file is yanked (PEP 592); the reason may be empty.
    pub yanked: Option<String>,
    pub version: Version,
}

/// The Git tag a version of a Git source comes from, and the commit it pointed at when seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GitTag {
    pub tag: String,
    pub commit: String,
}

/// A version on the index that can be installed: at least one of its files is not yanked.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexVersion {
    pub version: Version,
    /// From the version's files, when they declare one.
    pub requires_python: Option<VersionSpecifiers>,
    /// For a version from a Git repository: its tag and commit.
    pub git: Option<GitTag>,
}

impl IndexVersion {
    /// A version with nothing else known about it.
    pub fn new(version: Version) -> Self {
        Self {
            version,
            requires_python: None,
            git: None,
        }
    }
}

/// Installable versions, ascending, from a project's files. A version is yanked when all of its
/// files are; files whose names do not parse are ignored.
pub fn installable_versions(files: &[DistFile]) -> Vec<IndexVersion> {
    let mut by_version: BTreeMap<&Version, Vec<&DistFile>> = BTreeMap::new();
    for f in files {
        by_version.entry(&f.version).or_default().push(f);
    }
    by_version
        .into_iter()
        .filter_map(|(version, files)| {
            let live: Vec<&&DistFile> = files.iter().filter(|f| f.yanked.is_none()).collect();
            if live.is_empty() {
                return None;
            }
            // Prefer a wheel's declaration: that is what pex installs.
            let requires_python = live
                .iter()
                .filter(|f| f.filename.ends_with(".whl"))
                .chain(live.iter())
                .find_map(|f| f.requires_python.as_deref())
                .filter(|s| !s.trim().is_empty())
                .and_then(|s| s.parse().ok());
            Some(IndexVersion {
                git: None,
                version: version.clone(),
                requires_python,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Yanked,
}

/// PEP 691: `yanked` is `false`, `true` or a reason string.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Yanked {
    #[default]
    No,
    Flag(bool),
    Reason(String),
}

impl Yanked {
    fn reason(self) -> Option<String> {
        match self {
            Yanked::No | Yanked::Flag(false) => None,
            Yanked::Flag(true) => Some(String::new()),
            Yanked::Reason(r) => Some(r),
        }
    }
}

/// Parses a PEP 691 JSON page. `page_url` resolves relative file URLs.
pub fn parse_json(project: &str, page_url: &Url, body: &[u8]) -> Result<Vec<DistFile>, String> {
    let page: JsonPage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(page
        .files
        .into_iter()
        .filter_map(|f| {
            let version = version_from_filename(project, &f.filename)?;
            Some(DistFile {
                url: resolve(page_url, &f.url),
                sha256: f.hashes.get("sha256").cloned(),
                requires_python: f.requires_python,
                yanked: f.yanked.reason(),
                version,
                filename: f.filename,
            })
        })
        .collect())
}

/// Parses a PEP 503 HTML page: one `<a>` per file, the file name as its text, the hash in the
/// URL fragment, `data-requires-python` and `data-yanked` as attributes.
pub fn parse_html(project: &str, page_url: &Url, body: &str) -> Vec<DistFile> {
    anchors(body)
        .into_iter()
        .filter_map(|a| {
            let filename = unescape(a.text.trim());
            let version = version_from_filename(project, &filename)?;
            let href = unescape(a.attr("href")?);
            let (href, fragment) = match href.split_once('#') {
                Some((h, f)) => (h.to_owned(), Some(f.to_owned())),
                None => (href.clone(), None),
            };
            let sha256 = fragment.and_then(|f| f.strip_prefix("sha256=").map(str::to_owned));
            Some(DistFile {
                url: resolve(page_url, &href),
                sha256,
                requires_python: a.attr("data-requires-python").map(unescape),
                yanked: a.attr("data-yanked").map(unescape),
                version,
                filename,
            })
        })
        .collect()
}

fn resolve(base: &Url, href: &str) -> String {
    base.join(href)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| href.to_owned())
}

struct Anchor<'a> {
    attrs: Vec<(String, &'a str)>,
    text: &'a str,
}

impl<'a> Anchor<'a> {
    fn attr(&self, name: &str) -> Option<&'a str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// The `<a ...>text</a>` elements of a page. Simple API pages are machine-written and flat, so a
/// scanner suffices; anything unexpected is skipped rather than guessed at.
fn anchors(html: &str) -> Vec<Anchor<'_>> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<a").map(|i| pos + i) {
        let after = start + 2;
        if !lower[after..].starts_with(|c: char| c.is_ascii_whitespace() || c == '>') {
            pos = after;
            continue;
        }
        let Some(tag_end) = find_tag_end(html, after) else {
            break;
        };
        let Some(close) = lower[tag_end + 1..].find("</a").map(|i| tag_end + 1 + i) else {
            break;
        };
        out.push(Anchor {
            attrs: attributes(&html[after..tag_end]),
            text: &html[tag_end + 1..close],
        });
        pos = close + 3;
    }
    out
}

/// The `>` that closes a tag, skipping quoted attribute values.
fn find_tag_end(html: &str, from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in html[from..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(from + i),
            _ => {}
        }
    }
    None
}

fn attributes(s: &str) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let value;
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            match r.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let end = r[1..].find(q).map_or(r.len(), |i| i + 1);
                    value = &r[1..end];
                    rest = r.get(end + 1..).unwrap_or("");
                }
                _ => {
                    let end = r.find(|c: char| c.is_ascii_whitespace()).unwrap_or(r.len());
                    value = &r[..end];
                    rest = &r[end..];
                }
            }
        } else {
            // A bare attribute such as `data-yanked` means "yanked, no reason".
            value = "";
        }
        if !name.is_empty() && name != "/" {
            out.push((name, value));
        }
        rest = rest.trim_start();
    }
    out
}

/// HTML character references that Simple API pages use.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The version in a wheel or sdist file name of `project` (normalised), if it is one.
pub fn version_from_filename(project: &str, filename: &str) -> Option<Version> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        // {name}-{version}(-{build})?-{python}-{abi}-{platform}; names and versions carry no '-'.
        let parts: Vec<&str> = stem.split('-').collect();
        if !(5..=6).contains(&parts.len()) || normalize(parts[0]) != project {
            return None;
        }
        return parts[1].parse().ok();
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar"]
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))?;
    // Old sdists keep dashes in the name (`aider-chat-0.1.tar.gz`): find the split whose name
    // part normalises to the project.
    stem.match_indices('-')
        .map(|(i, _)| i)
        .find(|&i| normalize(&stem[..i]) == project)
        .and_then(|i| stem[i + 1..].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn versions_from_file_names() {
        let cases = [
            ("aider_chat-0.83.1-py3-none-any.whl", Some("0.83.1")),
            ("aider-chat-0.1.tar.gz", Some("0.1")),
            ("Aider_Chat-2.0rc1.zip", Some("2.0rc1")),
            ("other-1.0-py3-none-any.whl", None),
            ("aider_chat-0.1.exe", None),
            ("aider-chat-notaversion.tar.gz", None),
        ];
        for (file, want) in cases {
            assert_eq!(
                version_from_filename("aider-chat", file),
                want.map(v),
                "{file}"
            );
        }
        let build_tag = "numpy-2.1.0-1-cp312-cp312-manylinux_2_17_x86_64.whl";
        assert_eq!(version_from_filename("numpy", build_tag), Some(v("2.1.0")));
    }

    #[test]
    fn real_pypi_json_page() {
        let body = include_bytes!("../../tests/fixtures/pypi/pypiapijson.json");
        let url = Url::parse("https://pypi.org/simple/pypiapijson/").unwrap();
        let files = parse_json("pypiapijson", &url, body).unwrap();
        assert_eq!(files.len(), 38);
        let yanked: Vec<_> = files
            .iter()
            .filter(|f| f.yanked.is_some())
            .map(|f| f.filename.as_str())
            .collect();
        assert!(yanked.contains(&"pypiapijson-1.7.tar.gz"));
        let versions: Vec<String> = installable_versions(&files)
            .iter()
            .map(|iv| iv.version.to_string())
            .collect();
        // pip lists 2.3 … 1.8, 1.5 and hides the yanked 1.7, 1.6, 1.4, 1.3 (and 1.2, 1).
        assert_eq!(
            versions,
            [
                "1.5", "1.8", "1.9", "1.9.1", "1.9.2", "1.9.3", "1.9.4", "1.9.5", "1.9.6", "1.9.7",
                "1.9.8", "1.9.9", "2", "2.1", "2.2", "2.3"
            ]
        );
        assert!(
            files
                .iter()
                .all(|f| f.url.starts_with("https://files.pythonhosted.org/"))
        );
        assert!(
            files
                .iter()
                .all(|f| f.sha256.as_ref().is_some_and(|h| h.len() == 64))
        );
    }

    #[test]
    fn real_pypi_html_page_matches_the_json_page() {
        let url = Url::parse("https://pypi.org/simple/pypiapijson/").unwrap();
        let html = include_str!("../../tests/fixtures/pypi/pypiapijson.html");
        let json = include_bytes!("../../tests/fixtures/pypi/pypiapijson.json");
        let from_html = parse_html("pypiapijson", &url, html);
        let mut from_json = parse_json("pypiapijson", &url, json).unwrap();
        // The HTML form carries no requires-python when it is absent; JSON says null: same thing.
        from_json.iter_mut().for_each(|f| f.requires_python = None);
        let mut from_html = from_html;
        from_html.iter_mut().for_each(|f| f.requires_python = None);
        from_html.sort_by(|a, b| a.filename.cmp(&b.filename));
        from_json.sort_by(|a, b| a.filename.cmp(&b.filename));
        assert!(
            from_html == from_json,
            "the two forms of the same page disagree"
        );
        let reason = from_html
            .iter()
            .find(|f| f.filename == "pypiapijson-1.2.tar.gz")
            .unwrap();
        assert_eq!(
            reason.yanked.as_deref(),
            Some("There's a bug problem in this release")
        );
    }

    #[test]
    fn html_relative_links_attributes_and_entities() {
        let url = Url::parse("http://127.0.0.1:8080/simple/tiny-tool/").unwrap();
        let html = r#"<html><body>
            <A HREF="../../packages/tiny_tool-1.0-py3-none-any.whl#sha256=ab12" data-requires-python="&gt;=3.8">tiny_tool-1.0-py3-none-any.whl</A><br>
            <a href='/packages/tiny_tool-2.0.tar.gz' data-yanked>tiny_tool-2.0.tar.gz</a>
            <a href="/x/other-1.0.tar.gz">other-1.0.tar.gz</a>
            <abbr>not a link</abbr>
        </body></html>"#;
        let files = parse_html("tiny-tool", &url, html);
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0].url,
            "http://127.0.0.1:8080/packages/tiny_tool-1.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("ab12"));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(files[0].yanked, None);
        assert_eq!(files[1].yanked.as_deref(), Some(""));
        let versions = installable_versions(&files);
        assert_eq!(versions.len(), 1);
        assert_eq!(
            versions[0].requires_python.as_ref().unwrap().to_string(),
            ">=3.8"
        );
    }

    #[test]
    fn json_yanked_true_and_relative_urls() {
        let url = Url::parse("http://127.0.0.1:3141/test/dev/+simple/tiny-tool/").unwrap();
        let body = br#"{"meta":{"api-version":"1.0"},"name":"tiny-tool","files":[
            {"filename":"tiny_tool-2.0-py3-none-any.whl","url":"../../+f/071/tiny_tool-2.0-py3-none-any.whl","hashes":{"sha256":"07"},"requires-python":""},
            {"filename":"tiny_tool-1.0-py3-none-any.whl","url":"x.whl","hashes":{},"yanked":true}]}"#;
        let files = parse_json("tiny-tool", &url, body).unwrap();
        assert_eq!(
            files[0].url,
            "http://127.0.0.1:3141/test/dev/+f/071/tiny_tool-2.0-py3-none-any.whl"
        );
        assert_eq!(files[1].yanked.as_deref(), Some(""));
        let versions = installable_versions(&files);
        assert_eq!(versions.len(), 1);
        assert_eq!(
            versions[0].requires_python, None,
            "an empty requires-python is no constraint"
        );
    }
}
