//! The tarball users download: the PEX and one launcher per binary at the archive root,
//! byte-for-byte reproducible, with its sha256.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};

use super::pex::InstalledVenv;
use crate::names::{BinaryName, PackageName};

/// A fixed mtime (2020-01-01) so the same inputs give the same bytes.
const MTIME: u64 = 1_577_836_800;

/// The launcher for one console script. It finds its own directory without `readlink -f`
/// (absent on macOS), following symlinks to it. When `venv` is known (a `--venv` PEX with an
/// interpreter constraint: [`InstalledVenv`]) and the PEX has installed that virtualenv on an
/// earlier run, it execs the venv's console script directly, as fast as a plain venv; otherwise
/// it runs the PEX with `PEX_SCRIPT`, which installs the venv and runs the script.
///
/// The direct path does what the PEX's own `/bin/sh` boot and venv `__main__.py` would have
/// done: the same directory (`PEX_ROOT`, else the PEX's runtime root), not taken when a `PEX_*`
/// variable asks for something else (the boot's list, and those the venv's `__main__` acts on),
/// `PEX_*` variables removed (`strip_pex_env`), `PEX` and `VIRTUAL_ENV` set, the venv's
/// `.last-access` touched (pex's cache pruning), PATH untouched (`venv_bin_path` false).
/// `PEX_VERBOSE` set: one line on stderr says which way it went.
pub fn launcher(
    package: &PackageName,
    binary: &BinaryName,
    venv: Option<&InstalledVenv>,
) -> String {
    // Both names are validated to [A-Za-z0-9._-] and the venv is made of validated path
    // segments and hashes: safe inside double quotes.
    let head = format!(
        r#"#!/bin/sh
# {binary}: runs the console script {binary} of {package} from {package}.pex beside this file.
self=$0
while [ -L "$self" ]; do
  link=$(readlink "$self")
  case $link in
    /*) self=$link ;;
    *) case $self in */*) self=${{self%/*}}/$link ;; *) self=$link ;; esac ;;
  esac
done
case $self in */*) dir=${{self%/*}} ;; *) dir=. ;; esac
dir=$(cd "$dir" && pwd -P) || exit 1
"#
    );
    let direct = match venv {
        None => String::new(),
        Some(v) => format!(
            r#"venv={venv}
if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/{binary}" ] && [ -z "${{PEX_IGNORE_RCFILES:-}}${{PEX_VENV:-}}${{PEX_PYTHON:-}}${{PEX_PYTHON_PATH:-}}${{PEX_PATH:-}}${{PEX_TOOLS:-}}${{PEX_INTERPRETER:-}}${{PEX_MODULE:-}}${{PEX_EXTRA_SYS_PATH:-}}${{PEX_VENV_BIN_PATH:-}}" ]; then
  if [ -n "${{PEX_VERBOSE:-}}" ]; then
    printf '%s\n' "$0: running $venv/bin/{binary} directly, {package}.pex installed it" >&2
  fi
  true 2>/dev/null >"$venv/.last-access"
  unset {strip}
  PEX=$dir/{package}.pex VIRTUAL_ENV=$venv
  export PEX VIRTUAL_ENV
  exec "$venv/bin/{binary}" "$@"
fi
if [ -n "${{PEX_VERBOSE:-}}" ]; then
  printf '%s\n' "$0: running {package}.pex (its venv is not installed yet, or PEX_* asks for the PEX)" >&2
fi
"#,
            venv = v.shell_expr(),
            strip = STRIPPED.join(" "),
        ),
    };
    format!("{head}{direct}PEX_SCRIPT={binary} exec \"$dir/{package}.pex\" \"$@\"\n")
}

/// The `PEX_*` variables pex 2.105.2 reads (`pex --help-variables`). A PEX built with
/// `strip_pex_env` removes every `PEX_*` variable before its script runs; the direct path
/// removes these (those it checked above are set but empty, if at all).
const STRIPPED: &[&str] = &[
    "PEX_ALWAYS_CACHE",
    "PEX_COVERAGE",
    "PEX_COVERAGE_FILENAME",
    "PEX_DISABLE_VARIABLES",
    "PEX_EMIT_WARNINGS",
    "PEX_EXTRA_SYS_PATH",
    "PEX_FORCE_LOCAL",
    "PEX_IGNORE_ERRORS",
    "PEX_IGNORE_RCFILES",
    "PEX_INHERIT_PATH",
    "PEX_INTERPRETER",
    "PEX_INTERPRETER_HISTORY",
    "PEX_INTERPRETER_HISTORY_FILE",
    "PEX_MAX_INSTALL_JOBS",
    "PEX_MODULE",
    "PEX_MULTIPROCESSING_START_METHOD",
    "PEX_PATH",
    "PEX_PROFILE",
    "PEX_PROFILE_FILENAME",
    "PEX_PROFILE_SORT",
    "PEX_PYTHON",
    "PEX_PYTHON_PATH",
    "PEX_ROOT",
    "PEX_SCRIPT",
    "PEX_TEARDOWN_VERBOSE",
    "PEX_TOOLS",
    "PEX_UNZIP",
    "PEX_VENV",
    "PEX_VENV_BIN_PATH",
    "PEX_VERBOSE",
];

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
    // Read from the PEX itself: where it installs its venv, if it says so plainly.
    let venv = InstalledVenv::of(pex)?;
    let mut entries: Vec<(String, Entry)> = binaries
        .iter()
        .map(|b| {
            (
                b.to_string(),
                Entry::Text(launcher(package, b, venv.as_ref())),
            )
        })
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
        std::fs::write(&launcher_path, launcher(&package, &binaries[1], None)).unwrap();
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

    /// A real PEX in a real tarball: the first run of a launcher goes through the PEX, which
    /// installs its venv; the second runs the venv's script directly, and the script sees the
    /// same arguments and environment either way. With PEX_ROOT set and unset, through a
    /// symlink from another directory, for a script of a dependency, and back to the PEX when a
    /// PEX_* variable asks for it.
    #[tokio::test]
    async fn the_launcher_runs_the_installed_venv_directly_once_the_pex_installed_it() {
        use crate::build::pex::tests::{make_wheel, settings};
        use crate::build::pex::{PexSpec, build_pex};
        use crate::names::{Platform, PythonMinor};

        let scratch = tempfile::tempdir().unwrap();
        let s = scratch.path();
        // The newest python of 3.12 and 3.11 that this machine really has.
        let mut found = None;
        for minor in [12, 11] {
            let m = PythonMinor::new(minor).unwrap();
            if let Some(p) = crate::tools::find_python(m).await {
                found = Some((m, p));
                break;
            }
        }
        let (python, interpreter) = found.expect("a CPython 3.12 or 3.11");
        let env_vars = [
            "--print-env",
            "PEX",
            "--print-env",
            "VIRTUAL_ENV",
            "--print-env",
            "PEX_ROOT",
            "--print-env",
            "PEX_VERBOSE",
            "--print-env",
            "PEX_SCRIPT",
            "--print-env",
            "PATH",
        ];
        let wheels = s.join("wheels");
        let mut tool_args = vec![
            "--requires",
            "dep-a",
            "--script",
            "tiny",
            "--script",
            "tiny-admin",
        ];
        tool_args.extend(env_vars);
        let wheels = vec![
            make_wheel(&wheels, "tiny-tool", "1.0", &tool_args),
            make_wheel(&wheels, "dep-a", "2.0", &["--script", "dep-cmd"]),
        ];
        let platform = Platform::host().unwrap();
        let spec = PexSpec {
            platform,
            python,
            requirements: vec!["tiny-tool==1.0".into()],
        };
        let pex = build_pex(&wheels, &spec, &s.join("build/tiny-tool.pex"), &settings(s))
            .await
            .unwrap();
        let package = PackageName::new("tiny-tool").unwrap();
        let binaries: Vec<BinaryName> = ["tiny", "tiny-admin", "dep-cmd"]
            .map(|b| BinaryName::new(b).unwrap())
            .to_vec();
        let tarball = s.join("tiny-tool.tar.gz");
        write_tarball(&tarball, &package, &pex, &binaries).unwrap();
        let unpacked = s.join("unpacked");
        tar::Archive::new(flate2::read::GzDecoder::new(File::open(&tarball).unwrap()))
            .unpack(&unpacked)
            .unwrap();
        let text = std::fs::read_to_string(unpacked.join("tiny")).unwrap();
        assert!(text.contains("/venvs/"), "no direct path:\n{text}");

        let path = format!("{}:/usr/bin:/bin", interpreter.parent().unwrap().display());
        let home = s.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let run = |cmd: &Path, pex_root: Option<&Path>, extra: &[(&str, &str)]| {
            let mut c = Command::new(cmd);
            c.args(["a b", "", "c'd"])
                .current_dir("/")
                .env_clear()
                .env("PATH", &path)
                .env("HOME", &home)
                .env("PEX_VERBOSE", "1");
            if let Some(root) = pex_root {
                c.env("PEX_ROOT", root);
            }
            c.envs(extra.iter().copied());
            let out = c.output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
            assert!(out.status.success(), "{stdout}\n{stderr}");
            (stdout, stderr)
        };
        let through_pex = "running tiny-tool.pex (its venv";
        let directly = "directly, tiny-tool.pex installed it";

        let root = s.join("pex-root");
        let launcher = unpacked.join("tiny");
        let (first, err) = run(&launcher, Some(&root), &[]);
        assert!(err.contains(through_pex), "{err}");
        let (second, err) = run(&launcher, Some(&root), &[]);
        assert!(err.contains(directly), "{err}");
        assert!(!err.contains(through_pex), "{err}");
        assert_eq!(first, second, "the script saw another environment");
        let real_pex = std::fs::canonicalize(unpacked.join("tiny-tool.pex")).unwrap();
        assert!(
            first.starts_with(&format!(
                "tiny-tool 1.0 a b  c'd\nPEX={}\nVIRTUAL_ENV={}/venvs/",
                real_pex.display(),
                root.display()
            )),
            "{first}"
        );
        assert!(
            first.contains("\nPEX_ROOT unset\nPEX_VERBOSE unset\nPEX_SCRIPT unset\n"),
            "{first}"
        );
        assert!(first.ends_with(&format!("PATH={path}\n")), "{first}");

        // Through a symlink in another directory, a script of the dependency.
        let elsewhere = s.join("bin");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(unpacked.join("dep-cmd"), elsewhere.join("dc")).unwrap();
        let (out, err) = run(&elsewhere.join("dc"), Some(&root), &[]);
        assert!(err.contains(directly), "{err}");
        assert_eq!(out, "dep-a 2.0 a b  c'd\n");

        // A PEX_* variable the direct path does not honour: through the PEX, same result.
        let pydir = interpreter.parent().unwrap().display().to_string();
        let (out, err) = run(&launcher, Some(&root), &[("PEX_PYTHON_PATH", &pydir)]);
        assert!(err.contains(through_pex), "{err}");
        assert!(out.starts_with("tiny-tool 1.0 a b  c'd\n"), "{out}");

        // PEX_ROOT unset: the PEX's runtime root under HOME, first through the PEX, then direct.
        let (first, err) = run(&unpacked.join("tiny-admin"), None, &[]);
        assert!(err.contains(through_pex), "{err}");
        assert!(home.join(".cache/pex/venvs").is_dir());
        let (second, err) = run(&unpacked.join("tiny-admin"), None, &[]);
        assert!(err.contains(directly), "{err}");
        assert_eq!(first, second);
        assert!(
            first.contains(&format!("VIRTUAL_ENV={}/.cache/pex/venvs/", home.display())),
            "{first}"
        );
    }
}
