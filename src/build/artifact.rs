//! The tarball users download: the PEX and one launcher per binary at the archive root,
//! byte-for-byte reproducible, with its sha256.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};

use crate::names::{BinaryName, PackageName};

/// A fixed mtime (2020-01-01) so the same inputs give the same bytes.
const MTIME: u64 = 1_577_836_800;

/// The launcher for one console script. It finds its own directory without `readlink -f`
/// (absent on macOS), following symlinks to it, and runs the PEX with `PEX_SCRIPT`.
pub fn launcher(package: &PackageName, binary: &BinaryName) -> String {
    // Both names are validated to [A-Za-z0-9._-]: safe inside double quotes.
    format!(
        r#"#!/bin/sh
# {binary}: runs the console script {binary} of {package} from {package}.pex beside this file.
self=$0
while [ -L "$self" ]; do
  link=$(readlink "$self")
  case $link in
    /*) self=$link ;;
    *) self=$(dirname "$self")/$link ;;
  esac
done
dir=$(cd "$(dirname "$self")" && pwd -P) || exit 1
PEX_SCRIPT={binary} exec "$dir/{package}.pex" "$@"
"#
    )
}

/// Writes `<out>`: `<package>.pex` plus the launchers, sorted, mode 0755, owner 0, fixed mtime,
/// gzip without name or time. Returns (size, sha256 hex).
pub fn write_tarball(
    out: &Path,
    package: &PackageName,
    pex: &Path,
    binaries: &[BinaryName],
) -> io::Result<(u64, String)> {
    let gz = GzBuilder::new()
        .mtime(0)
        .write(BufWriter::new(File::create(out)?), Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);

    let pex_name = format!("{package}.pex");
    let mut entries: Vec<(String, Entry)> = binaries
        .iter()
        .map(|b| (b.to_string(), Entry::Text(launcher(package, b))))
        .collect();
    entries.push((pex_name, Entry::File(pex)));
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    for (name, entry) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        header.set_entry_type(tar::EntryType::Regular);
        match entry {
            Entry::Text(text) => {
                header.set_size(text.len() as u64);
                header.set_cksum();
                tar.append_data(&mut header, &name, text.as_bytes())?;
            }
            Entry::File(path) => {
                let file = File::open(path)?;
                header.set_size(file.metadata()?.len());
                header.set_cksum();
                tar.append_data(&mut header, &name, BufReader::new(file))?;
            }
        }
    }
    let mut file = tar.into_inner()?.finish()?;
    file.flush()?;
    drop(file);
    crate::digest::sha256_file(out)
}

enum Entry<'a> {
    Text(String),
    File(&'a Path),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn names() -> (PackageName, Vec<BinaryName>) {
        (
            PackageName::new("tiny-tool").unwrap(),
            vec![
                BinaryName::new("tiny").unwrap(),
                BinaryName::new("tiny-admin").unwrap(),
            ],
        )
    }

    #[test]
    fn tarballs_are_reproducible_and_hold_the_pex_and_launchers_at_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let pex = dir.path().join("built.pex");
        std::fs::write(&pex, b"#!/usr/bin/env python3\nprint('hi')\n").unwrap();
        let (package, binaries) = names();
        let a = dir.path().join("a.tar.gz");
        let b = dir.path().join("b.tar.gz");
        let (size_a, sha_a) = write_tarball(&a, &package, &pex, &binaries).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100)); // a different wall clock second
        let (size_b, sha_b) = write_tarball(&b, &package, &pex, &binaries).unwrap();
        assert_eq!((size_a, &sha_a), (size_b, &sha_b));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(sha_a.len(), 64);

        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&a).unwrap()));
        let listed: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("tiny".into(), 0o755, 0),
                ("tiny-admin".into(), 0o755, 0),
                ("tiny-tool.pex".into(), 0o755, 0)
            ]
        );
    }

    #[test]
    fn the_launcher_runs_the_pex_through_a_symlink_with_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let (package, binaries) = names();
        // A stand-in "pex" that reports PEX_SCRIPT and its arguments.
        let pex = dir.path().join("tiny-tool.pex");
        std::fs::write(&pex, "#!/bin/sh\necho \"$PEX_SCRIPT:$*\"\n").unwrap();
        let launcher_path = dir.path().join("tiny-admin");
        std::fs::write(&launcher_path, launcher(&package, &binaries[1])).unwrap();
        for p in [&pex, &launcher_path] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let elsewhere = tempfile::tempdir().unwrap();
        let link = elsewhere.path().join("admin");
        std::os::unix::fs::symlink(&launcher_path, &link).unwrap();
        for cmd in [&launcher_path, &link] {
            let out = Command::new(cmd)
                .args(["a b", "c"])
                .current_dir("/")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "tiny-admin:a b c\n");
        }
    }
}
