//! The pages of a static PEP 503 index, and the list each project page is rendered from. Pure:
//! no I/O, so what a page says is decided (and tested) here.
//!
//! A project's list is kept beside its page as `index.json`, in the PEP 691 JSON form (API
//! version 1.1): it is the index's own record of what it lists, so a page is always rendered
//! from the same data and written only when the rendering changes. A file once listed is
//! never changed or dropped: [`ProjectList::merge`] refuses the same name with another digest.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::names::PackageName;

/// The Simple API version the pages and lists declare (PEP 629 / PEP 700).
pub const API_VERSION: &str = "1.1";

/// A project's list: the PEP 691 JSON of its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectList {
    pub meta: Meta,
    /// The normalised project name.
    pub name: String,
    /// Every version a listed file is of (PEP 700), ascending by PEP 440.
    #[serde(default)]
    pub versions: Vec<String>,
    pub files: Vec<ListedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(rename = "api-version")]
    pub api_version: String,
}

/// One listed file, as PEP 691 spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFile {
    pub filename: String,
    /// Relative to the page (a file stored beside it, percent-encoded) or absolute (a file
    /// linked where it is published, such as a release asset).
    pub url: String,
    pub hashes: BTreeMap<String, String>,
    #[serde(
        rename = "requires-python",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub requires_python: Option<String>,
    /// PEP 714's name for the served `<file>.metadata`, with its digest.
    #[serde(
        rename = "core-metadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub core_metadata: Option<BTreeMap<String, String>>,
    /// PEP 658's name for the same, which older clients read.
    #[serde(
        rename = "dist-info-metadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dist_info_metadata: Option<BTreeMap<String, String>>,
    pub size: u64,
}

impl ListedFile {
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }

    /// The digest of the served `.metadata` file, if one is served.
    pub fn metadata_sha256(&self) -> Option<&str> {
        self.core_metadata
            .as_ref()?
            .get("sha256")
            .map(String::as_str)
    }
}

/// What adding one file to a list came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    Added,
    /// Listed already with the same digest: nothing changes.
    Same,
    /// Listed already with another digest: refused, the listed one stays.
    Conflict {
        listed: String,
    },
}

impl ProjectList {
    pub fn new(project: &PackageName) -> Self {
        Self {
            meta: Meta {
                api_version: API_VERSION.into(),
            },
            name: project.to_string(),
            versions: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn get(&self, filename: &str) -> Option<&ListedFile> {
        self.files.iter().find(|f| f.filename == filename)
    }

    /// Adds `file` unless a file of that name is listed; never replaces or drops one.
    pub fn merge(&mut self, file: ListedFile) -> Merge {
        if let Some(listed) = self.get(&file.filename) {
            let listed = listed.sha256().unwrap_or_default().to_owned();
            return if Some(listed.as_str()) == file.sha256() {
                Merge::Same
            } else {
                Merge::Conflict { listed }
            };
        }
        self.files.push(file);
        // One order whatever the order files came in: by version, then by name.
        let name = self.name.clone();
        let version = |f: &ListedFile| crate::pypi::version_from_filename(&name, &f.filename);
        self.files.sort_by(|a, b| {
            version(a)
                .cmp(&version(b))
                .then_with(|| a.filename.cmp(&b.filename))
        });
        let mut versions: Vec<pep440_rs::Version> = self.files.iter().filter_map(version).collect();
        versions.dedup();
        self.versions = versions.iter().map(ToString::to_string).collect();
        Merge::Added
    }

    /// The list as it is written to `index.json`: pretty, one trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a list serialises");
        text.push('\n');
        text
    }
}

/// The characters a file name keeps in a relative URL: RFC 3986 unreserved.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL of a file stored beside its page.
pub fn relative_url(filename: &str) -> String {
    utf8_percent_encode(filename, PATH_SEGMENT).to_string()
}

/// Text safe inside an HTML attribute value or element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A project's page (PEP 503): one anchor per file with its `#sha256=` fragment, its
/// `data-requires-python`, and where its `.metadata` is served `data-dist-info-metadata` and
/// `data-core-metadata` (PEP 658, PEP 714).
pub fn project_page(list: &ProjectList) -> String {
    let name = escape(&list.name);
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n"
    );
    for f in &list.files {
        let mut href = f.url.clone();
        if let Some(sha) = f.sha256() {
            href.push_str("#sha256=");
            href.push_str(sha);
        }
        out.push_str(&format!("    <a href=\"{}\"", escape(&href)));
        if let Some(rp) = &f.requires_python {
            out.push_str(&format!(" data-requires-python=\"{}\"", escape(rp)));
        }
        if let Some(sha) = f.metadata_sha256() {
            let value = escape(&format!("sha256={sha}"));
            out.push_str(&format!(
                " data-dist-info-metadata=\"{value}\" data-core-metadata=\"{value}\""
            ));
        }
        out.push_str(&format!(">{}</a><br>\n", escape(&f.filename)));
    }
    out.push_str("  </body>\n</html>\n");
    out
}

/// The root page: one anchor per project, to its page.
pub fn root_page(projects: &[String]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>Simple index</title>\n  </head>\n  <body>\n"
    );
    let mut projects = projects.to_vec();
    projects.sort();
    projects.dedup();
    for p in &projects {
        out.push_str(&format!(
            "    <a href=\"{}/\">{}</a><br>\n",
            relative_url(p),
            escape(p)
        ));
    }
    out.push_str("  </body>\n</html>\n");
    out
}

/// The `Requires-Python` of a core metadata file (its headers end at the first blank line).
pub fn requires_python(metadata: &str) -> Option<String> {
    header(metadata, "requires-python").filter(|v| !v.is_empty())
}

/// A header of a core metadata file (the first of that name), e.g. `Metadata-Version`.
pub fn header(metadata: &str, name: &str) -> Option<String> {
    metadata
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sha: &str) -> ListedFile {
        ListedFile {
            filename: name.into(),
            url: relative_url(name),
            hashes: BTreeMap::from([("sha256".into(), sha.into())]),
            requires_python: Some(">=3.8,<4".into()),
            core_metadata: Some(BTreeMap::from([("sha256".into(), "m".repeat(64))])),
            dist_info_metadata: Some(BTreeMap::from([("sha256".into(), "m".repeat(64))])),
            size: 10,
        }
    }

    #[test]
    fn a_listed_file_is_never_replaced_and_the_order_is_by_version() {
        let mut list = ProjectList::new(&PackageName::new("hello-tool").unwrap());
        let a = "a".repeat(64);
        assert_eq!(
            list.merge(file("hello_tool-1.10.0-py3-none-any.whl", &a)),
            Merge::Added
        );
        assert_eq!(
            list.merge(file("hello_tool-1.9.0-py3-none-any.whl", &a)),
            Merge::Added
        );
        assert_eq!(
            list.merge(file("hello_tool-1.9.0-py3-none-any.whl", &a)),
            Merge::Same
        );
        assert_eq!(
            list.merge(file("hello_tool-1.9.0-py3-none-any.whl", &"b".repeat(64))),
            Merge::Conflict { listed: a.clone() }
        );
        let names: Vec<&str> = list.files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "hello_tool-1.9.0-py3-none-any.whl",
                "hello_tool-1.10.0-py3-none-any.whl"
            ],
            "PEP 440 order, not text order"
        );
        assert_eq!(list.versions, ["1.9.0", "1.10.0"]);
        assert_eq!(
            list.get("hello_tool-1.9.0-py3-none-any.whl")
                .unwrap()
                .sha256(),
            Some(a.as_str())
        );
        let back: ProjectList = serde_json::from_str(&list.to_json()).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn pages_escape_what_they_quote_and_carry_the_digests() {
        let mut list = ProjectList::new(&PackageName::new("hello-tool").unwrap());
        list.merge(file(
            "hello_tool-1.0+local-py3-none-any.whl",
            &"a".repeat(64),
        ));
        let page = project_page(&list);
        assert!(
            page.contains(&format!(
                "<a href=\"hello_tool-1.0%2Blocal-py3-none-any.whl#sha256={}\" data-requires-python=\"&gt;=3.8,&lt;4\" data-dist-info-metadata=\"sha256={m}\" data-core-metadata=\"sha256={m}\">hello_tool-1.0+local-py3-none-any.whl</a><br>",
                "a".repeat(64),
                m = "m".repeat(64)
            )),
            "{page}"
        );
        assert!(page.contains("<meta name=\"pypi:repository-version\" content=\"1.1\">"));
        let root = root_page(&["b-tool".into(), "a-tool".into(), "b-tool".into()]);
        let anchors: Vec<&str> = root.lines().filter(|l| l.contains("<a ")).collect();
        assert_eq!(
            anchors,
            [
                "    <a href=\"a-tool/\">a-tool</a><br>",
                "    <a href=\"b-tool/\">b-tool</a><br>"
            ]
        );
        assert_eq!(escape("<\"&'>"), "&lt;&quot;&amp;&#x27;&gt;");
    }

    #[test]
    fn requires_python_is_read_from_the_headers_only() {
        let meta =
            "Metadata-Version: 2.1\nName: x\nrequires-python: >=3.9\n\nRequires-Python: <3\n";
        assert_eq!(requires_python(meta).as_deref(), Some(">=3.9"));
        assert_eq!(requires_python("Name: x\n\nRequires-Python: >=3\n"), None);
        assert_eq!(header(meta, "metadata-version").as_deref(), Some("2.1"));
    }
}
