//! uv, pinned, found or installed like pex (`build::tools::Pex::locate`), and the one command
//! hermit-pex runs with it: `uv pip compile --universal … --format pylock.toml`.
//!
//! uv is configured by its arguments alone: `--no-config` (no uv.toml or pyproject.toml is
//! read), no inherited `UV_*` variable (`tools::run` removes them), no Python download, its
//! cache under ours. Credentials reach it through the private netrc file `NETRC` names, never
//! an argument.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::names::PythonMinor;
use crate::pypi::Indexes;
use crate::tools::{self, ToolError};

/// The uv release hermit-pex locks with (scripts/test-tools.sh and the builder image pin it too).
pub const UV_VERSION: &str = "0.13.9";
/// A uv executable to use instead of looking for one.
pub const UV_ENV: &str = "HERMIT_PEX_UV";

#[derive(Debug, Clone)]
pub struct Uv {
    pub path: PathBuf,
}

impl Uv {
    /// `HERMIT_PEX_UV` (a uv executable), else a `uv` of the pinned version on PATH, else the
    /// managed install under `cache_dir` (`tools/uv-<version>`, a venv made by a CPython found
    /// here), created on first use.
    pub async fn locate(cache_dir: &Path) -> Result<Self, String> {
        if let Some(p) = std::env::var_os(UV_ENV).filter(|v| !v.is_empty()) {
            return Ok(Self { path: p.into() });
        }
        if let Some(found) = tools::which("uv")
            && version_of(&found).await.as_deref() == Some(UV_VERSION)
        {
            return Ok(Self { path: found });
        }
        let venv = cache_dir.join("tools").join(format!("uv-{UV_VERSION}"));
        let path = venv.join("bin/uv");
        if version_of(&path).await.as_deref() != Some(UV_VERSION) {
            tracing::info!(venv = %venv.display(), "installing uv {UV_VERSION}");
            tools::install_venv(&venv, &format!("uv=={UV_VERSION}")).await?;
            if version_of(&path).await.as_deref() != Some(UV_VERSION) {
                return Err(format!(
                    "{} does not report version {UV_VERSION} after installing it",
                    path.display()
                ));
            }
        }
        Ok(Self { path })
    }

    /// The version the executable reports (`uv 0.13.9 (…)` → `0.13.9`).
    pub async fn version(&self) -> Option<String> {
        version_of(&self.path).await
    }

    /// Runs `uv pip compile` for `c`, killed after `timeout`.
    pub async fn compile(&self, c: &Compile<'_>, timeout: Duration) -> Result<(), ToolError> {
        let mut env = Vec::new();
        // uv reads netrc credentials from the file NETRC names (as pip does).
        if let Some(netrc) = c.indexes.netrc() {
            env.push(("NETRC", netrc.into()));
        }
        tools::run(&self.path, &compile_args(c), &env, timeout)
            .await
            .map(|_| ())
    }
}

async fn version_of(uv: &Path) -> Option<String> {
    let out = Command::new(uv)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| text.split_whitespace().nth(1).map(str::to_owned))
        .flatten()
}

/// One `uv pip compile` run.
#[derive(Debug, Clone)]
pub struct Compile<'a> {
    /// A requirements file, one checked requirement a line.
    pub requirements: &'a Path,
    /// Must be named `pylock.toml` (uv refuses other names for the format).
    pub output: &'a Path,
    pub python: PythonMinor,
    /// A CPython of that minor, when there is one here: uv builds sdists' metadata with it.
    pub interpreter: Option<&'a Path>,
    pub indexes: &'a Indexes,
    /// A constraints file: `name==version` pins of yanked releases a dependency pins exactly.
    pub constraints: Option<&'a Path>,
    /// A directory of wheels beside the indexes (a Git source's own wheel).
    pub find_links: Option<&'a Path>,
    /// uv's own cache (HTTP responses, built metadata).
    pub cache_dir: &'a Path,
    /// Revalidate every cached index page: a retry must see what the index serves now.
    pub refresh: bool,
}

/// The argument list: every value a separate argument, no shell, no credentials (indexes
/// carry none in their URLs; they are in the netrc file).
pub fn compile_args(c: &Compile<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "pip",
        "compile",
        "--no-config",
        "--no-python-downloads",
        "--quiet",
        "--color",
        "never",
        // One resolution for every OS and arch (uv's `environments`, which would narrow it to
        // our four platforms, is a project setting: `uv pip compile` refuses it in a uv.toml).
        // Markers for other systems stay in the lock; choosing evaluates them per platform.
        "--universal",
        "--python-version",
        &c.python.to_string(),
        "--generate-hashes",
        "--format",
        "pylock.toml",
        // The header names the temporary output path: without it, same inputs, same bytes.
        "--no-header",
    ]
    .map(OsString::from)
    .to_vec();
    // uv's default index is the lowest in priority and `--extra-index-url`s are tried first;
    // with its default `first-index` strategy a name is taken from the first index that has
    // it (no merging of versions across indexes, unlike pip).
    args.extend([
        "--index-url".into(),
        c.indexes.primary.url.to_string().into(),
    ]);
    for extra in &c.indexes.extra {
        args.extend(["--extra-index-url".into(), extra.url.to_string().into()]);
    }
    if let Some(file) = c.constraints {
        args.extend([OsString::from("--constraints"), file.into()]);
    }
    if let Some(dir) = c.find_links {
        args.extend([OsString::from("--find-links"), dir.into()]);
    }
    if let Some(python) = c.interpreter {
        args.extend([OsString::from("--python"), python.into()]);
    }
    args.extend([OsString::from("--cache-dir"), c.cache_dir.into()]);
    if c.refresh {
        args.push("--refresh".into());
    }
    args.extend([OsString::from("-o"), c.output.into()]);
    args.push(c.requirements.into());
    args
}

/// The `name==version` pins uv refused because the release is yanked ("Because
/// configargparse==1.7 was yanked (reason: …) and aider-chat==0.83.1 depends on
/// configargparse==1.7"). uv takes a yanked release only when asked for it by name (a
/// requirement or a constraint); pip and pex, following PEP 592, take it for an exact pin.
/// Each pin is checked (a project name and a PEP 440 version) before it reaches a file.
pub fn yanked_pins(output: &str) -> Vec<String> {
    let mut pins: Vec<String> = output
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .filter(|w| w[1] == "was" && w[2] == "yanked")
        .filter_map(|w| {
            let (name, version) = w[0].split_once("==")?;
            let name = crate::names::PackageName::new(name).ok()?;
            let version: pep440_rs::Version = version.parse().ok()?;
            Some(format!("{name}=={version}"))
        })
        .collect();
    pins.sort();
    pins.dedup();
    pins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pypi::{Credentials, Index};

    #[test]
    fn yanked_pins_are_read_from_uvs_explanation() {
        let out = "error: No solution found when resolving dependencies\n  cause: Because configargparse==1.7 was yanked (reason: incorrect metadata related to supported python versions) and aider-chat==0.83.1 depends on configargparse==1.7, we can conclude that aider-chat==0.83.1 cannot be used.\n  And because other==2.0\nwas yanked and $(evil)==1 was yanked";
        assert_eq!(yanked_pins(out), ["configargparse==1.7", "other==2.0"]);
        assert!(yanked_pins("error: no such version").is_empty());
    }

    #[test]
    fn credentials_never_reach_the_arguments() {
        let primary = Index::resolve(
            reqwest::Url::parse("https://alice:s3cret@pypi.internal/simple/").unwrap(),
            None,
        );
        let extra = Index::resolve(
            reqwest::Url::parse("https://mirror.example/simple/").unwrap(),
            Some(Credentials::new("bob", "t0ken")),
        );
        let indexes = Indexes::new(primary, vec![extra]).unwrap();
        let c = Compile {
            requirements: Path::new("/w/requirements.in"),
            output: Path::new("/w/pylock.toml"),
            python: PythonMinor::new(12).unwrap(),
            interpreter: None,
            indexes: &indexes,
            constraints: Some(Path::new("/w/constraints.txt")),
            find_links: Some(Path::new("/w/wheels")),
            cache_dir: Path::new("/c/uv"),
            refresh: true,
        };
        let args: Vec<String> = compile_args(&c)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let line = args.join(" ");
        assert!(!line.contains("s3cret") && !line.contains("t0ken") && !line.contains("alice"));
        for want in [
            "pip compile --no-config --no-python-downloads",
            "--universal --python-version 3.12 --generate-hashes --format pylock.toml",
            "--index-url https://pypi.internal/simple/ --extra-index-url https://mirror.example/simple/",
            "--constraints /w/constraints.txt --find-links /w/wheels",
            "--cache-dir /c/uv --refresh -o /w/pylock.toml /w/requirements.in",
        ] {
            assert!(line.contains(want), "{want}\nnot in {line}");
        }
        assert!(
            indexes.netrc().is_some(),
            "the credentials are in the netrc"
        );
    }
}
