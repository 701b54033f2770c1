//! A package's console scripts, read from its wheel's `entry_points.txt`, and the launchers
//! and test command a version gets from them: the configured binaries must be console scripts
//! of that very version (a launcher for anything else cannot start), and with none configured
//! every console script gets one.

use std::io::Read;
use std::path::{Path, PathBuf};

use pep440_rs::Version;

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
        let is_script = |b: &BinaryName| scripts.iter().any(|s| s == b.as_str());
        let absent: Vec<&str> = configured
            .iter()
            .filter(|b| !is_script(b))
            .map(BinaryName::as_str)
            .collect();
        if !absent.is_empty() {
            let field = crate::names::binaries_field(configured, |b| !is_script(b));
            return Err(BuildError::Binaries(format!(
                "{field}: {} {} not a console script of {package} {version} ({}): fix binaries in the config, or leave it out for all of them",
                absent.join(", "),
                if absent.len() == 1 { "is" } else { "are" },
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
    Ok(crate::lock::dist_info::console_scripts(&text))
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
