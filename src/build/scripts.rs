//! A package's console scripts, read from its wheel's `entry_points.txt`, and the launchers
//! and test command a version gets from them: the configured binaries must be console scripts
//! of that very version (a launcher for anything else cannot start), and with none configured
//! every console script gets one.

use std::io::Read;
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use sha2::{Digest, Sha256};

use super::BuildError;
use crate::names::{BinaryName, PackageName};

/// The launchers of a version: `configured` when each is one of `scripts`, else an error
/// naming the binary and listing the scripts there are; with none configured, every script.
pub fn binaries(
    package: &PackageName,
    version: &Version,
    configured: &[BinaryName],
    scripts: &[String],
) -> Result<Vec<BinaryName>, BuildError> {
    let have = || {
        if scripts.is_empty() {
            "it has none".to_owned()
        } else {
            format!("it has {}", scripts.join(", "))
        }
    };
    if !configured.is_empty() {
        let absent: Vec<(usize, &BinaryName)> = configured
            .iter()
            .enumerate()
            .filter(|(_, b)| !scripts.iter().any(|s| s == b.as_str()))
            .collect();
        if !absent.is_empty() {
            // Named as every config error is: the file, the field and its line, when the
            // names came from a file (a resource's have none: the field is enough there).
            let file = absent
                .iter()
                .find_map(|(_, b)| b.written())
                .map_or_else(String::new, |w| format!("{}: ", w.file.display()));
            let fields: Vec<String> = absent
                .iter()
                .map(|(i, b)| match b.written() {
                    Some(w) => format!("binaries[{i}] (line {})", w.line),
                    None => format!("binaries[{i}]"),
                })
                .collect();
            let names: Vec<&str> = absent.iter().map(|(_, b)| b.as_str()).collect();
            return Err(BuildError::Binaries(format!(
                "{file}{}: {} {} not a console script of {package} {version} ({}): fix binaries in the config, or leave it out for all of them",
                fields.join(", "),
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" },
                have()
            )));
        }
        return Ok(configured.to_vec());
    }
    let pex = format!("{package}.pex");
    let mut all: Vec<BinaryName> = scripts
        .iter()
        .filter(|s| **s != pex)
        .filter_map(|s| BinaryName::new(s).ok())
        .collect();
    all.sort();
    all.dedup();
    if all.is_empty() {
        return Err(BuildError::Binaries(format!(
            "{package} {version} has no console script a launcher can be made for ({}): it is not a command-line tool",
            have()
        )));
    }
    Ok(all)
}

/// The test of a version: the configured command, or `<first binary> --help`; its first word
/// must be one of the launchers (Hermit's `test` runs it from the package).
pub fn test_command(configured: &str, binaries: &[BinaryName]) -> Result<String, BuildError> {
    let command = if configured.trim().is_empty() {
        let first = binaries
            .first()
            .ok_or_else(|| BuildError::Binaries("no binaries to test".into()))?;
        format!("{first} --help")
    } else {
        configured.to_owned()
    };
    let first = shlex::split(&command).and_then(|w| w.into_iter().next());
    match first {
        Some(word) if binaries.iter().any(|b| b.as_str() == word) => Ok(command),
        _ => Err(BuildError::Binaries(format!(
            "test {command:?} must start with one of the binaries ({})",
            binaries
                .iter()
                .map(BinaryName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The console scripts of the wheel at `url` (downloaded once into the cache).
pub async fn from_wheel_url(
    url: &str,
    cache_dir: &Path,
    indexes: &crate::pypi::Indexes,
) -> Result<Vec<String>, BuildError> {
    let wheel = download(url, cache_dir, indexes).await?;
    let file = std::fs::File::open(&wheel)?;
    console_scripts(file)
}

/// The console scripts of `package` in a built PEX: its wheel sits whole under `.deps/`
/// (`--no-pre-install-wheels`).
pub fn from_pex(pex: &Path, package: &PackageName) -> Result<Vec<String>, BuildError> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(pex)?).map_err(invalid)?;
    let prefix = format!(".deps/{}-", package.as_str().replace('-', "_"));
    let name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.to_ascii_lowercase().starts_with(&prefix) && n.ends_with(".whl"))
        .ok_or_else(|| {
            BuildError::Io(std::io::Error::other(format!(
                "{}: no wheel of {package} inside",
                pex.display()
            )))
        })?;
    let mut bytes = Vec::new();
    zip.by_name(&name)
        .map_err(invalid)?
        .read_to_end(&mut bytes)?;
    console_scripts(std::io::Cursor::new(bytes))
}

/// Takes the one wheel a `--no-transitive` PEX of a local project holds out of it, into `dir`.
pub fn extract_wheel(pex: &Path, dir: &Path) -> Result<PathBuf, BuildError> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(pex)?).map_err(invalid)?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.starts_with(".deps/") && n.ends_with(".whl") && n.matches('/').count() == 1)
        .ok_or_else(|| {
            BuildError::Io(std::io::Error::other(format!(
                "{}: pex built no wheel of the project",
                pex.display()
            )))
        })?;
    std::fs::create_dir_all(dir)?;
    let file = name.trim_start_matches(".deps/").to_owned();
    let path = dir.join(&file);
    let mut out = std::fs::File::create(&path)?;
    std::io::copy(&mut zip.by_name(&name).map_err(invalid)?, &mut out)?;
    Ok(path)
}

/// `[console_scripts]` names of a wheel's `*.dist-info/entry_points.txt` (none: no scripts).
pub fn console_scripts(wheel: impl Read + std::io::Seek) -> Result<Vec<String>, BuildError> {
    let mut zip = zip::ZipArchive::new(wheel).map_err(invalid)?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| {
            n.split_once('/').is_some_and(|(dir, file)| {
                dir.ends_with(".dist-info") && file == "entry_points.txt"
            })
        });
    let Some(name) = name else {
        return Ok(Vec::new());
    };
    let mut text = String::new();
    zip.by_name(&name)
        .map_err(invalid)?
        .take(1 << 20)
        .read_to_string(&mut text)?;
    Ok(parse_entry_points(&text))
}

fn parse_entry_points(text: &str) -> Vec<String> {
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

/// The file at `url` in the cache, fetched once (by a hash of the URL).
async fn download(
    url: &str,
    cache_dir: &Path,
    indexes: &crate::pypi::Indexes,
) -> Result<PathBuf, BuildError> {
    let key = crate::pypi::hex(&Sha256::digest(url.as_bytes()));
    let dir = cache_dir.join("wheels");
    let path = dir.join(&key[..32]);
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let fail = |e: String| {
        BuildError::Io(std::io::Error::other(format!(
            "cannot download {} to read its console scripts: {e}",
            crate::pypi::redact(url)
        )))
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| fail(e.to_string()))?;
    let mut request = reqwest::Client::new().get(parsed.clone());
    // A wheel on the private index's own host needs its credentials; one elsewhere never gets them.
    if let Some(c) = indexes.credentials_for(&parsed) {
        request = request.basic_auth(&c.username, Some(c.password()));
    }
    let response = request.send().await.map_err(|e| fail(without_url(&e)))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let bytes = response.bytes().await.map_err(|e| fail(without_url(&e)))?;
    crate::release::dir::atomic_write(&path, |f| std::io::Write::write_all(f, &bytes))
        .map_err(|e| fail(e.to_string()))?;
    Ok(path)
}

/// reqwest's message names the URL; ours names the redacted one already.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    s
}

fn invalid(e: zip::result::ZipError) -> BuildError {
    BuildError::Io(std::io::Error::other(format!("not a zip archive: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<BinaryName> {
        v.iter().map(|n| BinaryName::new(n).unwrap()).collect()
    }

    #[test]
    fn entry_points_name_the_console_scripts_only() {
        let text = "[console_scripts]\ntool = tool:main\n tool-admin=tool.admin:main [extra]\n# x = y\n\n[gui_scripts]\ntool-gui = tool:gui\n";
        assert_eq!(parse_entry_points(text), ["tool", "tool-admin"]);
    }

    #[test]
    fn configured_binaries_must_be_scripts_and_none_means_all() {
        let pkg = PackageName::new("tool").unwrap();
        let v: Version = "1.0".parse().unwrap();
        let scripts = vec!["tool".to_owned(), "tool-admin".to_owned()];
        assert_eq!(
            binaries(&pkg, &v, &[], &scripts).unwrap(),
            names(&["tool", "tool-admin"])
        );
        assert_eq!(
            binaries(&pkg, &v, &names(&["tool"]), &scripts).unwrap(),
            names(&["tool"])
        );
        let e = binaries(&pkg, &v, &names(&["notascript"]), &scripts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("notascript is not a console script of tool 1.0")
                && e.contains("it has tool, tool-admin"),
            "{e}"
        );
        assert!(e.starts_with("binaries[0]: "), "{e}");
        let e = binaries(&pkg, &v, &[], &[]).unwrap_err().to_string();
        assert!(e.contains("no console script"), "{e}");

        // Names read from a config file say where: the file, the field and the line.
        let at = |line| crate::names::Written {
            file: "python/tool/config.yaml".into(),
            line,
        };
        let written = vec![
            BinaryName::new("tool").unwrap().written_at(at(3)),
            BinaryName::new("tool-x").unwrap().written_at(at(4)),
            BinaryName::new("tool-y").unwrap().written_at(at(5)),
        ];
        let e = binaries(&pkg, &v, &written, &scripts)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "python/tool/config.yaml: binaries[1] (line 4), binaries[2] (line 5): tool-x, tool-y are not a console script of tool 1.0"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_test_starts_with_a_binary() {
        let b = names(&["tool"]);
        assert_eq!(test_command("", &b).unwrap(), "tool --help");
        assert_eq!(
            test_command("tool --version", &b).unwrap(),
            "tool --version"
        );
        let e = test_command("../../../bin/sh -c id", &b)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must start with one of the binaries"), "{e}");
    }

    #[test]
    fn a_wheel_without_entry_points_has_no_scripts() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            z.start_file(
                "t-1.dist-info/METADATA",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            std::io::Write::write_all(&mut z, b"Name: t\n").unwrap();
            z.finish().unwrap();
        }
        buf.set_position(0);
        assert!(console_scripts(buf).unwrap().is_empty());
    }
}
