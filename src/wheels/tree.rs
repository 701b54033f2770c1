//! A PEP 503 index as files under one directory (the `simple/` root): `index.html`, and per
//! project `<name>/index.html`, its list `<name>/index.json`, and the files stored beside the
//! page with their `.metadata`. Blocking (copying, hashing, reading wheels): call it through
//! `crate::blocking::run`.
//!
//! Order of writes, so that a run stopped anywhere leaves nothing wrong behind: a stored file
//! and its metadata first (each written to a temporary name and renamed), then the list, then
//! the pages. A file on disk that no list names yet is listed by the next run; a page never
//! names a file that is not there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::page::{self, ListedFile, Merge, ProjectList};
use super::{Conflict, IndexError, Link, NewFile};
use crate::names::PackageName;

/// What one change to the tree did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TreeChange {
    /// (project, file name) of each file listed now and not before.
    pub added: Vec<(PackageName, String)>,
    /// Files refused: listed (or stored) already with another digest.
    pub conflicts: Vec<Conflict>,
    /// Every path written, relative to the root, `/`-separated (for `git add`).
    pub written: Vec<String>,
}

/// The list of `project`, if the tree has one.
pub fn read_list(root: &Path, project: &PackageName) -> Result<Option<ProjectList>, IndexError> {
    let path = root.join(project.as_str()).join("index.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| IndexError::Corrupt {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path, e)),
    }
}

/// Lists `files` (each under its project), storing those linked `Stored`; rewrites each page
/// whose text changes, and the root page when the set of projects does.
pub fn add(root: &Path, files: &[NewFile]) -> Result<TreeChange, IndexError> {
    let mut change = TreeChange::default();
    let mut by_project: BTreeMap<&PackageName, Vec<&NewFile>> = BTreeMap::new();
    for f in files {
        check_name(f)?;
        by_project.entry(&f.project).or_default().push(f);
    }
    for (project, files) in by_project {
        let mut list = read_list(root, project)?.unwrap_or_else(|| ProjectList::new(project));
        let before = list.clone();
        for f in files {
            // Checked before anything is written: a listed name keeps its digest.
            if let Some(listed) = list.get(&f.filename) {
                if listed.sha256() != Some(f.sha256.as_str()) {
                    change.conflicts.push(Conflict {
                        project: project.clone(),
                        filename: f.filename.clone(),
                        listed: listed.sha256().unwrap_or_default().to_owned(),
                        new: f.sha256.clone(),
                    });
                }
                continue;
            }
            let listed = match prepare(root, f, &mut change)? {
                Some(l) => l,
                None => continue,
            };
            match list.merge(listed) {
                Merge::Added => change.added.push((project.clone(), f.filename.clone())),
                Merge::Same | Merge::Conflict { .. } => {}
            }
        }
        if list != before {
            write_if_changed(
                root,
                &format!("{project}/index.json"),
                list.to_json(),
                &mut change,
            )?;
        }
        if !list.files.is_empty() {
            let text = page::project_page(&list);
            write_if_changed(root, &format!("{project}/index.html"), text, &mut change)?;
        }
    }
    let text = page::root_page(&projects(root)?);
    write_if_changed(root, "index.html", text, &mut change)?;
    Ok(change)
}

/// A file name from a release record becomes a path and a link: it must be a plain name of a
/// distribution file of its project (`<name>-<version>…`), nothing that leaves the directory.
fn check_name(f: &NewFile) -> Result<(), IndexError> {
    let plain = !f.filename.starts_with('.')
        && f.filename.len() <= 255
        && f.filename
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+!~".contains(&b));
    if plain && crate::pypi::version_from_filename(f.project.as_str(), &f.filename).is_some() {
        return Ok(());
    }
    Err(IndexError::Wheel {
        file: crate::names::shown(&f.filename),
        message: format!(
            "not the file name of a distribution of {} (NAME-VERSION-….whl or NAME-VERSION.tar.gz, letters, digits and ._-+!~): not listed",
            f.project
        ),
    })
}

/// The projects the tree lists: the directories holding a list.
pub fn projects(root: &Path) -> Result<Vec<String>, IndexError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("index.json").is_file() && PackageName::new(&name).is_ok() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// The listed entry of a new file: stored beside the page (with its metadata) or linked.
/// `None` when a stored file of that name is there with another digest (a conflict).
fn prepare(
    root: &Path,
    f: &NewFile,
    change: &mut TreeChange,
) -> Result<Option<ListedFile>, IndexError> {
    let metadata = if f.filename.ends_with(".whl") {
        Some(
            crate::lock::dist_info::read_metadata_file(&f.path).map_err(|e| IndexError::Wheel {
                file: f.filename.clone(),
                message: e.to_string(),
            })?,
        )
    } else {
        None
    };
    let requires_python = metadata
        .as_deref()
        .and_then(|m| page::requires_python(&String::from_utf8_lossy(m)));
    let (url, metadata_sha) = match &f.link {
        Link::At(url) => (url.clone(), None),
        Link::Stored => {
            let project = f.project.as_str();
            let dest = root.join(project).join(&f.filename);
            if dest.exists() {
                let (_, sha) = crate::digest::sha256_file(&dest).map_err(|e| io(&dest, e))?;
                if sha != f.sha256 {
                    change.conflicts.push(Conflict {
                        project: f.project.clone(),
                        filename: f.filename.clone(),
                        listed: sha,
                        new: f.sha256.clone(),
                    });
                    return Ok(None);
                }
            } else {
                copy_checked(&f.path, &dest, &f.sha256)?;
                change.written.push(format!("{project}/{}", f.filename));
            }
            let sha = match &metadata {
                Some(bytes) => {
                    let name = format!("{}.metadata", f.filename);
                    write_if_changed(root, &format!("{project}/{name}"), bytes.clone(), change)?;
                    Some(crate::digest::sha256_hex(bytes))
                }
                None => None,
            };
            (page::relative_url(&f.filename), sha)
        }
    };
    let digest = |sha: String| BTreeMap::from([("sha256".to_owned(), sha)]);
    Ok(Some(ListedFile {
        filename: f.filename.clone(),
        url,
        hashes: digest(f.sha256.clone()),
        requires_python,
        core_metadata: metadata_sha.clone().map(digest),
        dist_info_metadata: metadata_sha.map(digest),
        size: f.size,
    }))
}

/// Copies `from` to `to` through a temporary file beside it, checking the digest on the way:
/// a file under its final name is always whole and the one listed.
fn copy_checked(from: &Path, to: &Path, sha256: &str) -> Result<(), IndexError> {
    let dir = to.parent().expect("a file lives in a directory");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| io(dir, e))?;
    let mut src = std::fs::File::open(from).map_err(|e| io(from, e))?;
    std::io::copy(&mut src, tmp.as_file_mut()).map_err(|e| io(to, e))?;
    tmp.as_file().sync_all().map_err(|e| io(to, e))?;
    let (_, got) = crate::digest::sha256_file(tmp.path()).map_err(|e| io(to, e))?;
    if got != sha256 {
        return Err(IndexError::Digest {
            file: to
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            expected: sha256.to_owned(),
            actual: got,
        });
    }
    publish(tmp, to)
}

/// Writes `relative` under `root` when its bytes differ from `text`'s; notes it as written.
fn write_if_changed(
    root: &Path,
    relative: &str,
    text: impl AsRef<[u8]>,
    change: &mut TreeChange,
) -> Result<(), IndexError> {
    let path = root.join(relative);
    let bytes = text.as_ref();
    if std::fs::read(&path).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    let dir = path.parent().expect("a file lives in a directory");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| io(dir, e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| io(&path, e))?;
    publish(tmp, &path)?;
    change.written.push(relative.to_owned());
    Ok(())
}

/// Renames a finished temporary file into place, readable by all: a web server serving the
/// directory runs as another user (tempfile makes files 0600).
fn publish(tmp: tempfile::NamedTempFile, to: &Path) -> Result<(), IndexError> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| io(to, e))?;
    tmp.persist(to).map_err(|e| io(to, e.error))?;
    Ok(())
}

fn io(path: &Path, source: std::io::Error) -> IndexError {
    IndexError::Io {
        context: path.display().to_string(),
        source,
    }
}

/// The path of a project's page, for messages.
pub fn page_path(root: &Path, project: &PackageName) -> PathBuf {
    root.join(project.as_str()).join("index.html")
}
