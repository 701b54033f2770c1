//! What a distribution's core metadata declares about its license, read from the file a
//! platform chose: a wheel's `*.dist-info/METADATA` or an sdist's `PKG-INFO`. Blocking (zip and
//! tar reading): call it from `spawn_blocking`. Nothing here trusts the file: reads are
//! bounded, and a value that is not a short line of text is not taken.

use std::io::Read;
use std::path::Path;

/// Read at most this much of a metadata file (they are kilobytes).
const MAX_METADATA: u64 = 4 << 20;
/// Longer than this, a `License:` value is the license's text, not its name.
const MAX_NAME: usize = 100;
/// An SPDX expression longer than this is not one anybody wrote by hand.
const MAX_EXPRESSION: usize = 200;

/// The license a distribution's metadata declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// `License-Expression` (core metadata 2.4, PEP 639): an SPDX expression.
    pub expression: Option<String>,
    /// Otherwise the names from `License:` (when it is a name, not a text) and the
    /// `License ::` classifiers, each once, in the file's order.
    pub names: Vec<String>,
}

impl Declared {
    pub fn is_empty(&self) -> bool {
        self.expression.is_none() && self.names.is_empty()
    }
}

/// Reads the license of the wheel or sdist at `path` (by its file name: `*.whl`, `*.tar.gz`,
/// `*.zip`). `None`: no metadata file found in it, or not an archive we read.
pub fn read(path: &Path) -> std::io::Result<Option<Declared>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = if name.ends_with(".whl") {
        zip_member(path, |n| {
            n.split_once('/')
                .is_some_and(|(dir, file)| dir.ends_with(".dist-info") && file == "METADATA")
        })?
    } else if name.ends_with(".zip") {
        zip_member(path, is_pkg_info)?
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        tar_gz_member(path)?
    } else {
        None
    };
    Ok(text.map(|t| parse(&t)))
}

/// `<top>/PKG-INFO`, the sdist's own metadata (not a vendored project's deeper down).
fn is_pkg_info(name: &str) -> bool {
    let name = name.trim_start_matches("./");
    matches!(
        name.split('/').collect::<Vec<_>>().as_slice(),
        [_, "PKG-INFO"]
    )
}

fn zip_member(path: &Path, wanted: impl Fn(&str) -> bool) -> std::io::Result<Option<String>> {
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(path)?).map_err(std::io::Error::other)?;
    let Some(name) = zip
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| wanted(n))
        .map(|n| n.into_owned())
    else {
        return Ok(None);
    };
    let entry = zip.by_name(&name).map_err(std::io::Error::other)?;
    bounded(entry).map(Some)
}

fn tar_gz_member(path: &Path) -> std::io::Result<Option<String>> {
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut tar = tar::Archive::new(gz);
    for entry in tar.entries()? {
        let entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if is_pkg_info(&name) && entry.header().entry_type().is_file() {
            return bounded(entry).map(Some);
        }
    }
    Ok(None)
}

fn bounded(r: impl Read) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    r.take(MAX_METADATA).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The license headers of a core metadata file (RFC 822 style: the headers end at the first
/// blank line, a line starting with whitespace continues the one before).
pub fn parse(metadata: &str) -> Declared {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in metadata.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut declared = Declared::default();
    for (key, value) in &headers {
        match key.as_str() {
            "license-expression" if one_line(value, MAX_EXPRESSION) => {
                declared.expression.get_or_insert_with(|| value.clone());
            }
            "license" if one_line(value, MAX_NAME) && !is_unknown(value) => {
                push_once(&mut declared.names, value)
            }
            "classifier" => {
                if let Some(name) = classifier_license(value) {
                    push_once(&mut declared.names, name);
                }
            }
            _ => {}
        }
    }
    if declared.expression.is_some() {
        // PEP 639: with an expression, the classifiers and License: are not the license.
        declared.names.clear();
    }
    declared
}

fn one_line(value: &str, max: usize) -> bool {
    !value.is_empty() && value.chars().count() <= max && !value.chars().any(char::is_control)
}

/// What setuptools and others write when nothing was said.
fn is_unknown(value: &str) -> bool {
    ["unknown", "none", "-", "n/a"].contains(&value.to_ascii_lowercase().as_str())
}

fn push_once(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

/// `License :: OSI Approved :: MIT License` → `MIT License`; `License :: OSI Approved` alone
/// names no license.
fn classifier_license(value: &str) -> Option<&str> {
    let parts: Vec<&str> = value.split("::").map(str::trim).collect();
    match parts.as_slice() {
        ["License", "OSI Approved"] => None,
        ["License", .., last] if one_line(last, MAX_NAME) => Some(last),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expression_wins_and_names_come_from_license_and_classifiers() {
        let d = parse(
            "Metadata-Version: 2.4\nName: a\nLicense-Expression: MIT OR Apache-2.0\n\
             Classifier: License :: OSI Approved :: MIT License\n\nLicense: in the body\n",
        );
        assert_eq!(d.expression.as_deref(), Some("MIT OR Apache-2.0"));
        assert!(d.names.is_empty());

        let d = parse(
            "Metadata-Version: 2.1\nName: b\nLicense: BSD-3-Clause\n\
             Classifier: Programming Language :: Python\n\
             Classifier: License :: OSI Approved\n\
             Classifier: License :: OSI Approved :: BSD License\n\
             classifier: License :: OSI Approved :: BSD License\n",
        );
        assert_eq!(d.expression, None);
        assert_eq!(d.names, ["BSD-3-Clause", "BSD License"]);
    }

    #[test]
    fn a_license_text_or_unknown_is_not_a_name() {
        let d = parse(
            "Name: c\nLicense: Copyright (c) 2020 Someone\n        Permission is hereby granted\n\
             Classifier: License :: Public Domain\n",
        );
        assert_eq!(
            d.names,
            ["Public Domain"],
            "the multi-line text is left out"
        );
        let d = parse(&format!("Name: d\nLicense: {}\n", "x".repeat(300)));
        assert!(d.is_empty());
        assert!(parse("Name: e\nLicense: UNKNOWN\n").is_empty());
        assert!(parse("Name: f\n").is_empty());
    }

    #[test]
    fn sdists_and_wheels_are_read_from_their_own_metadata_file() {
        let dir = tempfile::tempdir().unwrap();
        let sdist = dir.path().join("x-1.0.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&sdist).unwrap(),
                flate2::Compression::fast(),
            );
            let mut tar = tar::Builder::new(gz);
            for (name, text) in [
                ("x-1.0/vendor/y/PKG-INFO", "Name: y\nLicense: GPL\n"),
                ("x-1.0/PKG-INFO", "Name: x\nLicense-Expression: MIT\n"),
            ] {
                let mut h = tar::Header::new_gnu();
                h.set_size(text.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                tar.append_data(&mut h, name, text.as_bytes()).unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap();
        }
        assert_eq!(
            read(&sdist).unwrap().unwrap().expression.as_deref(),
            Some("MIT")
        );
        let wheel = dir.path().join("x-1.0-py3-none-any.whl");
        {
            let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
            z.start_file(
                "x-1.0.dist-info/METADATA",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            std::io::Write::write_all(
                &mut z,
                b"Name: x\nClassifier: License :: OSI Approved :: MIT License\n",
            )
            .unwrap();
            z.finish().unwrap();
        }
        assert_eq!(read(&wheel).unwrap().unwrap().names, ["MIT License"]);
        assert_eq!(read(&dir.path().join("x.egg")).unwrap(), None);
    }
}
