//! The external programs a build runs: pex (pinned, installed on first use) and CPython
//! interpreters. Every run has a timeout and its arguments are passed as a list, never a shell.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::names::PythonMinor;

/// The PEX options, chosen by measurement (docs/src/building.md, "PEX options, by measurement"): `--venv` with `--sh-boot`
/// gives the fastest warm start (0.41 s for `black --version` against 1.06–1.34 s for zipapp
/// modes); `--no-pre-install-wheels` builds in seconds from the lock.
pub const PEX_OPTIONS: &[&str] = &["--venv", "--no-pre-install-wheels", "--sh-boot"];

/// Seconds since the epoch, for build info.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The pex release hermit-pex is tested with; a lock records it too.
pub const PEX_VERSION: &str = "2.105.2";
/// The pip pex resolves with: the newest one that supports every python we build for (3.8–3.14).
/// pex fetches it, with setuptools 75.3.0 and wheel 0.45.1, from the index on first use.
pub const PIP_VERSION: &str = "25.0.1";

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{program}: cannot start: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program}: timed out after {secs} s and was stopped")]
    Timeout { program: String, secs: u64 },
    #[error("{program} failed ({status}):\n{output}")]
    Failed {
        program: String,
        status: String,
        output: String,
    },
    #[error("cannot install pex {PEX_VERSION}: {0}")]
    Install(String),
    #[error(
        "{pex}: no python beside it to run pex with: HERMIT_PEX_PEX must be the pex of a virtualenv (…/bin/pex)"
    )]
    NoPython { pex: String },
}

/// Output of a finished program.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` with `env`, killing it after `timeout`. A non-zero exit is an error that
/// carries the end of its output (where pex says what went wrong).
pub async fn run(
    program: &Path,
    args: &[OsString],
    env: &[(&str, OsString)],
    timeout: Duration,
) -> Result<Output, ToolError> {
    let name = program.file_name().map_or_else(
        || program.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let mut cmd = Command::new(program);
    // uv is configured by its arguments alone: a UV_* variable of the caller's environment
    // (UV_INDEX, UV_CONSTRAINT, UV_EXCLUDE_NEWER, ...) would change what it resolves. pex and
    // git read none of them.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("UV_")) {
            cmd.env_remove(key);
        }
    }
    for name in crate::credentials::WITHHELD_FROM_CHILDREN {
        cmd.env_remove(name);
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tracing::debug!(program = %program.display(), ?args, "running");
    let child = cmd.spawn().map_err(|source| ToolError::Spawn {
        program: name.clone(),
        source,
    })?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            return Err(ToolError::Timeout {
                program: name,
                secs: timeout.as_secs(),
            });
        }
        Ok(r) => r.map_err(|source| ToolError::Spawn {
            program: name.clone(),
            source,
        })?,
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let status = out
            .status
            .code()
            .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
        return Err(ToolError::Failed {
            program: name,
            status,
            output: tail(&stderr, 40),
        });
    }
    Ok(Output { stdout, stderr })
}

/// The last `n` lines, without pex's long warnings about unrelated pip versions.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Where pex and pex3 are.
#[derive(Debug, Clone)]
pub struct Pex {
    pub bin_dir: PathBuf,
}

impl Pex {
    pub fn pex(&self) -> PathBuf {
        self.bin_dir.join("pex")
    }

    pub fn pex3(&self) -> PathBuf {
        self.bin_dir.join("pex3")
    }

    /// The python of pex's virtualenv, for running pex as a library (`build::pex`): beside
    /// `pex`, or beside the file `pex` links to (`/opt/bin/pex` → `/opt/pex/bin/pex`).
    pub fn python(&self) -> Result<PathBuf, ToolError> {
        let beside = self.bin_dir.join("python");
        if is_executable(&beside) {
            return Ok(beside);
        }
        std::fs::canonicalize(self.pex())
            .ok()
            .map(|real| real.with_file_name("python"))
            .filter(|p| is_executable(p))
            .ok_or_else(|| ToolError::NoPython {
                pex: self.pex().display().to_string(),
            })
    }

    /// `HERMIT_PEX_PEX` (path to a pex executable), else a `pex` of the pinned version on
    /// PATH, else the managed install under `cache_dir`, created on first use.
    pub async fn locate(cache_dir: &Path) -> Result<Self, ToolError> {
        if let Some(p) = std::env::var_os("HERMIT_PEX_PEX").map(PathBuf::from) {
            let bin_dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            return Ok(Self { bin_dir });
        }
        if let Some(found) = which("pex")
            && version_of(&found).await.as_deref() == Some(PEX_VERSION)
        {
            let bin_dir = found.parent().expect("a file in a directory").to_owned();
            return Ok(Self { bin_dir });
        }
        let venv = cache_dir.join("tools").join(format!("pex-{PEX_VERSION}"));
        let bin_dir = venv.join("bin");
        if version_of(&bin_dir.join("pex")).await.as_deref() != Some(PEX_VERSION) {
            install(&venv).await?;
        }
        Ok(Self { bin_dir })
    }
}

async fn version_of(pex: &Path) -> Option<String> {
    let out = Command::new(pex)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn install(venv: &Path) -> Result<(), ToolError> {
    tracing::info!(venv = %venv.display(), "installing pex {PEX_VERSION}");
    install_venv(venv, &format!("pex=={PEX_VERSION}"))
        .await
        .map_err(ToolError::Install)
}

/// A fresh venv at `venv` (whatever was there is removed) with `requirement` pip-installed
/// into it, made by the newest CPython found here; the error says what failed.
pub async fn install_venv(venv: &Path, requirement: &str) -> Result<(), String> {
    // Any CPython that really runs will do (a pyenv shim on PATH may not).
    let mut python = None;
    for minor in PythonMinor::SUPPORTED.rev() {
        python = find_python(PythonMinor::new(minor).expect("a supported minor")).await;
        if python.is_some() {
            break;
        }
    }
    let python =
        python.ok_or_else(|| "no CPython 3.8 or newer found to create its venv".to_owned())?;
    let _ = std::fs::remove_dir_all(venv);
    let long = Duration::from_secs(600);
    run(
        &python,
        &["-m".into(), "venv".into(), venv.into()],
        &[],
        long,
    )
    .await
    .map_err(|e| e.to_string())?;
    let pip = venv.join("bin/pip");
    let args: Vec<OsString> = [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ]
    .map(Into::into)
    .to_vec();
    run(&pip, &args, &[], long)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The first executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A CPython of the given minor on this machine, checked by running it: pyenv shims answer to
/// `python3.12` on PATH yet fail when that version is not selected.
pub async fn find_python(minor: PythonMinor) -> Option<PathBuf> {
    let name = format!("python{minor}");
    let mut candidates: Vec<PathBuf> = which(&name).into_iter().collect();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(versions) = pyenv.map(|p| p.join("versions")) {
        let prefix = format!("{minor}.");
        let mut found: Vec<PathBuf> = std::fs::read_dir(versions)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path().join("bin").join(&name))
            .collect();
        found.sort();
        candidates.extend(found.into_iter().rev());
    }
    candidates.extend(
        ["/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"].map(|d| Path::new(d).join(&name)),
    );
    for candidate in candidates {
        if is_executable(&candidate) && reports_minor(&candidate, minor).await {
            return Some(candidate);
        }
    }
    None
}

async fn reports_minor(python: &Path, minor: PythonMinor) -> bool {
    let out = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    out.is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == minor.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timeout_stops_the_program() {
        let start = std::time::Instant::now();
        let err = run(
            Path::new("/bin/sleep"),
            &["30".into()],
            &[],
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ToolError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_failure_carries_the_end_of_stderr() {
        let args = ["-c".into(), "echo one >&2; echo two >&2; exit 3".into()];
        let err = run(Path::new("/bin/sh"), &args, &[], Duration::from_secs(10))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("exit 3") && text.contains("one\ntwo"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn arguments_are_never_interpreted_by_a_shell() {
        let out = run(
            Path::new("/bin/echo"),
            &["$(id); rm -rf /".into()],
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, "$(id); rm -rf /\n");
    }

    #[tokio::test]
    async fn finds_a_python_that_really_runs() {
        // The machines here carry CPython 3.11 at least (the one that runs pip).
        let p = find_python(PythonMinor::new(11).unwrap())
            .await
            .expect("python3.11");
        assert!(reports_minor(&p, PythonMinor::new(11).unwrap()).await);
    }
}
