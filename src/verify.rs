//! Trying a release before a manifest lists it (seed 000's "test packages in Hermit manifest
//! files before pushing"): the host platform's tarball is checked against its digest, unpacked,
//! and the manifest's `test` command is run through its launcher, with a timeout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::sha256_file;
use crate::names::{BinaryName, PythonMinor};
use crate::tools;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Could not be run here (no local interpreter of that python): listed, and said so.
    Skipped(String),
    Failed(String),
}

/// Checks `tarball` against `sha256`, unpacks it and runs `test` (a command line whose first
/// word is one of `binaries`) through the launcher, with `python` first on PATH.
pub async fn verify(
    tarball: &Path,
    sha256: &str,
    test: &str,
    binaries: &[BinaryName],
    python: PythonMinor,
    pex_root: &Path,
    timeout: Duration,
) -> Verdict {
    let hashed = tarball.to_owned();
    match crate::blocking::run(move || sha256_file(&hashed)).await {
        Ok((_, actual)) if actual == sha256 => {}
        Ok((_, actual)) => {
            return Verdict::Failed(format!("sha256 is {actual}, the release says {sha256}"));
        }
        Err(e) => return Verdict::Failed(format!("cannot read {}: {e}", tarball.display())),
    }
    let Some(words) = shlex::split(test).filter(|w| !w.is_empty()) else {
        return Verdict::Failed(format!("test {test:?} is not a command line"));
    };
    if !binaries.iter().any(|b| b.as_str() == words[0]) {
        return Verdict::Failed(format!(
            "test {test:?} does not start with one of the package's binaries"
        ));
    }
    let Some(interpreter) = tools::find_python(python).await else {
        return Verdict::Skipped(format!("no local CPython {python} to run the test with"));
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Verdict::Failed(format!("no temporary directory: {e}")),
    };
    let (from, into) = (tarball.to_owned(), dir.path().to_owned());
    if let Err(e) = crate::blocking::run(move || unpack(&from, &into)).await {
        return Verdict::Failed(format!("cannot unpack: {e}"));
    }
    let mut path: Vec<PathBuf> = vec![
        interpreter
            .parent()
            .expect("an interpreter in a directory")
            .to_owned(),
    ];
    path.extend(
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let env: Vec<(&str, OsString)> = vec![
        ("PATH", std::env::join_paths(path).unwrap_or_default()),
        ("PEX_ROOT", pex_root.into()),
    ];
    let args: Vec<OsString> = words[1..].iter().map(OsString::from).collect();
    match tools::run(&dir.path().join(&words[0]), &args, &env, timeout).await {
        Ok(_) => Verdict::Passed,
        Err(e) => Verdict::Failed(format!("`{test}` failed: {e}")),
    }
}

fn unpack(tarball: &Path, into: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(tarball)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.unpack(into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::artifact::write_tarball;
    use crate::names::PackageName;

    /// A "pex" that is a shell script: exits with the code given as its first argument.
    fn tarball(dir: &Path) -> (PathBuf, String) {
        let pex = dir.join("fake.pex");
        std::fs::write(&pex, "#!/bin/sh\nexit \"${1:-0}\"\n").unwrap();
        let out = dir.join("t.tar.gz");
        let (_, sha) = write_tarball(
            &out,
            &PackageName::new("t").unwrap(),
            &pex,
            &[BinaryName::new("t").unwrap()],
        )
        .unwrap();
        (out, sha)
    }

    async fn run(test: &str, sha: Option<&str>) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let (t, real) = tarball(dir.path());
        let binaries = [BinaryName::new("t").unwrap()];
        let py = PythonMinor::new(11).unwrap();
        verify(
            &t,
            sha.unwrap_or(&real),
            test,
            &binaries,
            py,
            dir.path(),
            Duration::from_secs(20),
        )
        .await
    }

    #[tokio::test]
    async fn a_passing_test_command_passes() {
        assert_eq!(run("t 0", None).await, Verdict::Passed);
    }

    #[tokio::test]
    async fn a_failing_launcher_fails_with_the_reason() {
        match run("t 3", None).await {
            Verdict::Failed(m) => assert!(m.contains("exit 3"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_wrong_digest_or_a_foreign_command_fails_before_running() {
        assert!(
            matches!(run("t 0", Some(&"0".repeat(64))).await, Verdict::Failed(m) if m.contains("sha256"))
        );
        assert!(
            matches!(run("rm -rf /", None).await, Verdict::Failed(m) if m.contains("binaries"))
        );
    }
}
