//! What a wheel's `*.dist-info` says about its distribution: the `[console_scripts]` of
//! `entry_points.txt` and the `Requires-Dist` of `METADATA`. Blocking (zip reading): call it
//! from `spawn_blocking`.

use std::io::{Read, Seek};
use std::path::Path;
use std::str::FromStr;

use pep508_rs::Requirement;

/// Read at most this much of a metadata file: they are kilobytes; a wheel is not trusted.
const MAX_METADATA: u64 = 4 << 20;

#[derive(Debug, Clone, Default)]
pub struct DistInfo {
    /// Console script names, in the file's order.
    pub console_scripts: Vec<String>,
    /// The distribution's requirements (markers and extras as written).
    pub requires_dist: Vec<Requirement>,
}

#[derive(Debug, thiserror::Error)]
pub enum DistInfoError {
    #[error("{wheel}: {source}")]
    Io {
        wheel: String,
        source: std::io::Error,
    },
    #[error("{wheel}: not a zip archive ({reason})")]
    Zip { wheel: String, reason: String },
    #[error("{wheel}: no *.dist-info/METADATA inside: not a wheel")]
    NoMetadata { wheel: String },
}

/// The dist-info of the wheel at `path`.
pub fn read_wheel(path: &Path) -> Result<DistInfo, DistInfoError> {
    Archive::open_path(path)?.dist_info()
}

/// The dist-info of a wheel read from `archive`; `wheel` names it in errors.
pub fn read(archive: impl Read + Seek, wheel: &str) -> Result<DistInfo, DistInfoError> {
    Archive::open(archive, wheel.to_owned())?.dist_info()
}

/// The raw `*.dist-info/METADATA` of the wheel at `path`: what an index serves beside the
/// wheel as `<wheel>.metadata` (PEP 658), byte for byte.
pub fn read_metadata_file(path: &Path) -> Result<Vec<u8>, DistInfoError> {
    let mut archive = Archive::open_path(path)?;
    // `open` found METADATA, so it is there.
    archive
        .file("METADATA")?
        .ok_or_else(|| DistInfoError::NoMetadata {
            wheel: archive.wheel.clone(),
        })
}

/// A wheel's zip and its dist-info directory (at the root; a wheel has one, holding METADATA).
struct Archive<R> {
    zip: zip::ZipArchive<R>,
    dir: String,
    /// The wheel's name, for errors.
    wheel: String,
}

impl Archive<std::fs::File> {
    fn open_path(path: &Path) -> Result<Self, DistInfoError> {
        let wheel = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        match std::fs::File::open(path) {
            Ok(file) => Self::open(file, wheel),
            Err(source) => Err(DistInfoError::Io { wheel, source }),
        }
    }
}

impl<R: Read + Seek> Archive<R> {
    fn open(archive: R, wheel: String) -> Result<Self, DistInfoError> {
        let zip = zip::ZipArchive::new(archive).map_err(|e| zip_error(&wheel, e))?;
        let dir = zip
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .find_map(|n| {
                let (dir, file) = n.split_once('/')?;
                (dir.ends_with(".dist-info") && file == "METADATA").then(|| dir.to_owned())
            })
            .ok_or_else(|| DistInfoError::NoMetadata {
                wheel: wheel.clone(),
            })?;
        Ok(Self { zip, dir, wheel })
    }

    /// The bytes of `<dist-info>/<name>` (at most `MAX_METADATA`), or `None` when absent.
    fn file(&mut self, name: &str) -> Result<Option<Vec<u8>>, DistInfoError> {
        let mut entry = match self.zip.by_name(&format!("{}/{name}", self.dir)) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(zip_error(&self.wheel, e)),
        };
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_METADATA)
            .read_to_end(&mut bytes)
            .map_err(|source| DistInfoError::Io {
                wheel: self.wheel.clone(),
                source,
            })?;
        Ok(Some(bytes))
    }

    fn text(&mut self, name: &str) -> Result<String, DistInfoError> {
        Ok(self
            .file(name)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    }

    fn dist_info(mut self) -> Result<DistInfo, DistInfoError> {
        let metadata = self.text("METADATA")?;
        let entry_points = self.text("entry_points.txt")?;
        Ok(DistInfo {
            console_scripts: console_scripts(&entry_points),
            requires_dist: requires_dist(&metadata),
        })
    }
}

fn zip_error(wheel: &str, e: zip::result::ZipError) -> DistInfoError {
    DistInfoError::Zip {
        wheel: wheel.to_owned(),
        reason: e.to_string(),
    }
}

/// `[console_scripts]` names of an `entry_points.txt` (an INI file: `name = module:attr [extras]`).
pub fn console_scripts(text: &str) -> Vec<String> {
    let mut section = "";
    let mut scripts = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim();
        } else if section == "console_scripts"
            && !line.starts_with(['#', ';'])
            && let Some((name, _)) = line.split_once('=')
        {
            scripts.push(name.trim().to_owned());
        }
    }
    scripts
}

/// `Requires-Dist` headers of a core metadata file (the headers end at the first blank line;
/// the description may follow). A line that is not PEP 508 is skipped: the resolver read the
/// same metadata and did not fail on it.
pub fn requires_dist(metadata: &str) -> Vec<Requirement> {
    metadata
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case("Requires-Dist")
                .then(|| Requirement::from_str(value.trim()).ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(files: &[(&str, &str)]) -> std::io::Cursor<Vec<u8>> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            for (name, text) in files {
                z.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(&mut z, text.as_bytes()).unwrap();
            }
            z.finish().unwrap();
        }
        buf.set_position(0);
        buf
    }

    #[test]
    fn scripts_and_requirements_of_a_wheel() {
        let w = wheel(&[
            ("ansible/__init__.py", ""),
            (
                "ansible-14.5.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: ansible\nVersion: 14.5.0\n\
                 Requires-Dist: ansible-core~=2.21.0\n\
                 requires-dist: pywin32; sys_platform == \"win32\"\n\
                 Requires-Dist: docs-tool; extra == \"docs\"\n\
                 Requires-Dist: !!! not pep 508\n\
                 \nRequires-Dist: in-the-description\n",
            ),
            (
                "ansible-14.5.0.dist-info/entry_points.txt",
                "[console_scripts]\nansible-community = ansible_collections.main:main\n",
            ),
        ]);
        let info = read(w, "ansible.whl").unwrap();
        assert_eq!(info.console_scripts, ["ansible-community"]);
        let names: Vec<String> = info
            .requires_dist
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        assert_eq!(names, ["ansible-core", "pywin32", "docs-tool"]);
    }

    #[test]
    fn entry_points_name_the_console_scripts_only() {
        let text = "[console_scripts]\ntool = tool:main\n tool-admin=tool.admin:main [extra]\n# x = y\n\n[gui_scripts]\ntool-gui = tool:gui\n";
        assert_eq!(console_scripts(text), ["tool", "tool-admin"]);
    }

    #[test]
    fn a_wheel_without_entry_points_has_no_scripts_and_a_zip_without_metadata_is_refused() {
        let info = read(wheel(&[("t-1.dist-info/METADATA", "Name: t\n")]), "t.whl").unwrap();
        assert!(info.console_scripts.is_empty());
        let e = read(wheel(&[("t/__init__.py", "")]), "t.whl").unwrap_err();
        assert!(e.to_string().contains("no *.dist-info/METADATA"), "{e}");
        let e = read(std::io::Cursor::new(b"not a zip".to_vec()), "t.whl").unwrap_err();
        assert!(e.to_string().starts_with("t.whl: not a zip archive"), "{e}");
    }
}
