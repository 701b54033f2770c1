//! One platform's PEX from wheels already chosen for it (`pex --pre-resolved-dists`): no
//! resolver and no pip at build time, and every platform of a version built with the same
//! options. The host's own platform may also turn an sdist into a wheel first
//! ([`wheel_from_sdist`]), the only build that runs pip.
//!
//! What every PEX gets, whatever the platform (docs/src/building.md, "PEX options, by measurement"):
//! - [`PEX_OPTIONS`] (`--venv --sh-boot --no-pre-install-wheels`);
//! - `--complete-platform` of the target as its one target, the host included: the chosen wheels
//!   are checked against the same tags they were chosen by, and no local interpreter is asked;
//! - `--interpreter-constraint CPython==3.X.*`: the PEX starts only under its own minor, with a
//!   clear message otherwise, and the venv it installs has a path that does not depend on which
//!   interpreter ran it, so its `/bin/sh` boot and our launcher find it again ([`InstalledVenv`]);
//! - `--python-shebang "/usr/bin/env python3.X"`: the interpreter Hermit's runtime dependency
//!   puts on PATH, tried first;
//! - `--runtime-pex-root ~/.cache/pex`, so the build's own PEX_ROOT or XDG_CACHE_HOME never
//!   ends up in the PEX ([`RUNTIME_PEX_ROOT`]).
//!
//! Only the complete platform differs between platforms: a pure version's PEXs are the same
//! bytes on all four.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::tools::{self, PEX_OPTIONS, PIP_VERSION};
use super::{BuildError, BuildSettings};
use crate::names::{Platform, PythonMinor};

/// What one platform's PEX is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PexSpec {
    pub platform: Platform,
    pub python: PythonMinor,
    /// The requirements of the version (`black==26.10.1` and the config's extra packages): pex
    /// takes their closure from the wheels and refuses wheels that do not close it.
    pub requirements: Vec<String>,
}

/// The PEX_ROOT a PEX uses at run time when `PEX_ROOT` is not set, written without the build
/// machine's home or cache directory. pex's own default on Linux; on macOS pex would pick
/// `~/Library/Caches/pex`, but one root for every OS keeps the options of all platforms the
/// same, and with them a pure version's one PEX (which serves every platform) and its
/// platform builds alike.
pub const RUNTIME_PEX_ROOT: &str = "~/.cache/pex";

/// pex's CLI with its search for local interpreters turned off. pex writes
/// `--interpreter-constraint` into PEX-INFO only after finding a local interpreter that meets it,
/// and then builds for that interpreter as well as for the `--complete-platform`
/// (pex-tool/pex#957: "the only reasonable interpretation of interpreter constraints is a local
/// PEX build"): a darwin PEX built on linux could not carry the constraint, nor could a PEX for
/// a python this machine does not have. With the search off, the complete platform is the one
/// target of every build and the constraint is what the PEX checks when it starts. Measured with
/// pex 2.105.2: PEX-INFO and the `/bin/sh` header come out the same as a host build that found
/// a local python3.12; only the (unused) shebang line of the zip's `__main__.py` names the
/// python pex runs under, as in any pex build for a foreign platform.
const DRIVER: &str = "\
import sys
from pex.orderedset import OrderedSet
from pex.resolve.target_configuration import InterpreterConfiguration as C
if not callable(getattr(C, 'resolve_interpreters', None)):
    sys.exit('hermit-pex: this pex has no InterpreterConfiguration.resolve_interpreters to turn off')
C.resolve_interpreters = lambda self: OrderedSet()
from pex.bin.pex import main
main(sys.argv[1:])
";

/// The options every PEX of a version is built with, whatever its platform, for its build info:
/// [`PEX_OPTIONS`], the interpreter constraint, the shebang and the runtime PEX root. Per
/// platform comes only the `--complete-platform` file.
pub fn version_options(python: PythonMinor) -> Vec<String> {
    let mut options: Vec<String> = PEX_OPTIONS.iter().map(|o| o.to_string()).collect();
    options.extend([
        "--interpreter-constraint".to_owned(),
        format!("CPython=={python}.*"),
        "--python-shebang".to_owned(),
        format!("/usr/bin/env python{python}"),
        "--runtime-pex-root".to_owned(),
        RUNTIME_PEX_ROOT.to_owned(),
    ]);
    options
}

/// The arguments of one build after the driver: the same for every platform but for the complete
/// platform file. Wheels are passed sorted by file name, so
/// the order they were found in does not matter.
pub fn pex_args(
    wheels: &[PathBuf],
    spec: &PexSpec,
    complete_platform: &Path,
    out: &Path,
) -> Vec<OsString> {
    let mut sorted: Vec<&PathBuf> = wheels.iter().collect();
    sorted.sort_by_key(|w| w.file_name().map(OsString::from));
    let mut args: Vec<OsString> = Vec::new();
    for wheel in sorted {
        args.extend(["--pre-resolved-dists".into(), wheel.into()]);
    }
    args.extend(["--complete-platform".into(), complete_platform.into()]);
    args.extend(version_options(spec.python).into_iter().map(OsString::from));
    args.extend(
        [
            // Nothing is resolved: no index is needed, none is asked.
            "--no-pypi",
            "-o",
        ]
        .map(OsString::from),
    );
    args.push(out.into());
    args.extend(spec.requirements.iter().map(OsString::from));
    args
}

/// Builds `out`, the PEX of `spec` from `wheels` (every distribution of the version's closure,
/// each already chosen for the platform), with a timeout. Building twice gives the same bytes.
pub async fn build_pex(
    wheels: &[PathBuf],
    spec: &PexSpec,
    out: &Path,
    settings: &BuildSettings,
) -> Result<PathBuf, BuildError> {
    let failed = |message: String| BuildError::Pex {
        platform: spec.platform,
        message,
    };
    if spec.requirements.is_empty() {
        return Err(failed(
            "requirements: empty; a PEX is built for at least the package itself".into(),
        ));
    }
    // pex would read such an entry as an option: refused before it gets there, unechoed.
    if let Some(i) = spec.requirements.iter().position(|r| r.starts_with('-')) {
        return Err(failed(format!(
            "requirements[{i}] starts with '-': a requirement is a name, not an option"
        )));
    }
    if let Some(w) = wheels.iter().find(|w| !is_wheel(w)) {
        return Err(failed(format!(
            "{}: not a wheel file (*.whl); sdists are built with wheel_from_sdist first",
            w.display()
        )));
    }
    // The complete platform beside the PEX, and a name to build it under (renamed when
    // whole): small file work, off the runtime's threads.
    let (cp, partial) = {
        let (out, spec) = (out.to_owned(), spec.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let dir = out
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let cp = super::write_complete_platform(dir, spec.platform, spec.python)?;
            let partial = tempfile::Builder::new()
                .prefix(".pex-")
                .suffix(".partial")
                .tempfile_in(dir)?
                .into_temp_path();
            Ok((cp, partial))
        })
        .await
        .map_err(std::io::Error::other)??
    };
    let mut args: Vec<OsString> = vec!["-I".into(), "-c".into(), DRIVER.into()];
    args.extend(pex_args(wheels, spec, &cp, &partial));
    let python = settings.pex.python().map_err(|e| failed(e.to_string()))?;
    // Nothing to fetch, so no index credentials (NETRC) either.
    let env = [
        ("PEX_ROOT", settings.pex_root.clone().into()),
        ("PEX_VERBOSE", "0".into()),
    ];
    tools::run(&python, &args, &env, settings.timeout)
        .await
        .map_err(|e| failed(format!("pex --pre-resolved-dists failed: {e}")))?;
    partial.persist(out).map_err(|e| e.error)?;
    Ok(out.to_owned())
}

fn is_wheel(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "whl") && path.is_file()
}

/// Builds `sdist` into a wheel for this machine's own platform with the version's python (pex's
/// pip, isolated: the build backend comes from the configured indexes) and returns the wheel's
/// path in `out_dir`. Only the native platform may do this: a wheel built here runs here.
pub async fn wheel_from_sdist(
    sdist: &Path,
    platform: Platform,
    python: PythonMinor,
    out_dir: &Path,
    settings: &BuildSettings,
) -> Result<PathBuf, BuildError> {
    let failed = |message: String| BuildError::Pex { platform, message };
    if Platform::host() != Some(platform) {
        return Err(failed(format!(
            "{}: an sdist is built into a wheel only on its own platform, and this machine is {}",
            file_name(sdist),
            Platform::host().map_or_else(|| "none we build for".to_owned(), |p| p.to_string())
        )));
    }
    let interpreter = tools::find_python(python).await.ok_or_else(|| {
        failed(format!(
            "{}: no CPython {python} on this machine to build it with",
            file_name(sdist)
        ))
    })?;
    let sdist = std::path::absolute(sdist)?;
    std::fs::create_dir_all(out_dir)?;
    let scratch = tempfile::Builder::new()
        .prefix(".sdist-")
        .tempdir_in(out_dir)?;
    let mut args: Vec<OsString> = ["wheel", "--no-transitive", "--pip-version", PIP_VERSION]
        .map(OsString::from)
        .to_vec();
    args.extend(["-d".into(), scratch.path().into()]);
    args.extend(["--python".into(), interpreter.into()]);
    args.extend(super::index_args(settings));
    args.push(sdist.clone().into());
    tools::run(
        &settings.pex.pex3(),
        &args,
        &super::env(settings),
        settings.timeout,
    )
    .await
    .map_err(|e| {
        failed(format!(
            "building {} into a wheel failed: {e}",
            file_name(&sdist)
        ))
    })?;
    let built: Vec<PathBuf> = std::fs::read_dir(scratch.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_wheel(p))
        .collect();
    let [wheel] = built.as_slice() else {
        return Err(failed(format!(
            "building {} gave {} wheels, not one",
            file_name(&sdist),
            built.len()
        )));
    };
    let name = wheel.file_name().expect("a file in a directory");
    let dest = out_dir.join(name);
    std::fs::rename(wheel, &dest)?;
    Ok(dest)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

/// Where a `--venv --sh-boot` PEX installs its virtualenv on first run, as its `/bin/sh` boot
/// computes it: `${PEX_ROOT:-<default_root>}/<path>`. Only PEXs with an interpreter constraint
/// have one: without it the directory also hashes the path of whichever interpreter ran the PEX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledVenv {
    /// The runtime PEX root when `PEX_ROOT` is unset: `~/…`.
    pub default_root: String,
    /// Below the PEX root: `venvs/<n>/<pex hash>/<venv hash>`.
    pub path: String,
}

impl InstalledVenv {
    /// Reads it from a PEX's `/bin/sh` header and PEX-INFO; `None` when the file is not a venv
    /// PEX with an sh-boot header and interpreter constraints, or says anything but plain
    /// hashes and paths (the launcher then always runs the PEX).
    pub fn of(pex: &Path) -> std::io::Result<Option<Self>> {
        let mut head = Vec::with_capacity(HEADER_MAX);
        std::fs::File::open(pex)?
            .take(HEADER_MAX as u64)
            .read_to_end(&mut head)?;
        let Some(found) = Self::from_header(&String::from_utf8_lossy(&head)) else {
            return Ok(None);
        };
        let info = match pex_info(pex) {
            Ok(info) => info,
            Err(_) => return Ok(None),
        };
        let hash_dir = found.path.split('/').nth(2).unwrap_or_default();
        let usable = info.venv && !info.interpreter_constraints.is_empty() && {
            info.pex_hash.as_deref() == Some(hash_dir)
        };
        Ok(usable.then_some(found))
    }

    fn from_header(header: &str) -> Option<Self> {
        let value = |prefix: &str, suffix: &str| {
            header
                .lines()
                .find_map(|l| l.strip_prefix(prefix)?.strip_suffix(suffix))
        };
        if value("VENV=\"", "\"")? != "1" {
            return None;
        }
        let default_root = value("DEFAULT_PEX_ROOT=\"$(echo ", ")\"")?;
        let path = value("INSTALLED_PEX=\"${PEX_ROOT}/", "\"")?;
        (valid_root(default_root) && valid_venv_path(path)).then(|| Self {
            default_root: default_root.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The shell expression of the venv directory: the PEX's own boot's, with `$HOME` for `~`.
    /// Only validated text is in it.
    pub fn shell_expr(&self) -> String {
        let rest = self.default_root.trim_start_matches("~/");
        format!("${{PEX_ROOT:-$HOME/{rest}}}/{}", self.path)
    }
}

/// The `/bin/sh` header pex writes is about 5 KB.
const HEADER_MAX: usize = 64 * 1024;

/// `~/`, then path segments of `[A-Za-z0-9._-]`, none of them `.` or `..`. An absolute root
/// is refused: in a PEX built without `--runtime-pex-root` it is the build machine's cache,
/// which a launcher must not carry further.
fn valid_root(root: &str) -> bool {
    root.strip_prefix("~/").is_some_and(|rest| {
        rest.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
    })
}

/// `venvs/<digits>/<40 hex>/<40 hex>`.
fn valid_venv_path(path: &str) -> bool {
    let hex40 = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["venvs", n, a, b]
        if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) && hex40(a) && hex40(b))
}

/// What the launcher needs from PEX-INFO.
#[derive(Debug, Deserialize)]
struct PexInfo {
    #[serde(default)]
    venv: bool,
    #[serde(default)]
    interpreter_constraints: Vec<String>,
    pex_hash: Option<String>,
}

fn pex_info(pex: &Path) -> std::io::Result<PexInfo> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(pex)?).map_err(std::io::Error::other)?;
    let mut text = String::new();
    zip.by_name("PEX-INFO")
        .map_err(std::io::Error::other)?
        .read_to_string(&mut text)?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::names::{Arch, Os};
    use std::process::Command;
    use std::time::Duration;

    /// The venv `scripts/test-tools.sh` fills (pex 2.105.2 and the python that runs it).
    pub(crate) fn tools_venv() -> PathBuf {
        let venv = std::env::var_os("HERMIT_PEX_TEST_VENV").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv"),
            PathBuf::from,
        );
        assert!(
            venv.join("bin/pex").exists(),
            "{} has no pex: run scripts/test-tools.sh (scripts/test does it for you)",
            venv.display()
        );
        venv
    }

    pub(crate) fn settings(scratch: &Path) -> BuildSettings {
        BuildSettings {
            pex: tools::Pex {
                bin_dir: tools_venv().join("bin"),
            },
            uv: crate::lock::Uv {
                path: tools_venv().join("bin/uv"),
            },
            native: BuildSettings::host_native(),
            indexes: crate::pypi::Indexes::plain("http://127.0.0.1:9/simple/".parse().unwrap()),
            cache_dir: scratch.join("cache"),
            work_dir: scratch.join("work"),
            pex_root: scratch.join("pex-root"),
            timeout: Duration::from_secs(300),
            test_timeout: Duration::from_secs(60),
            flavours: Default::default(),
        }
    }

    /// A wheel from tests/fixtures/make_wheel.py.
    pub(crate) fn make_wheel(dir: &Path, name: &str, version: &str, extra: &[&str]) -> PathBuf {
        let out = Command::new(tools_venv().join("bin/python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_wheel.py"))
            .args([name, version])
            .arg(dir)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join(String::from_utf8(out.stdout).unwrap().trim())
    }

    pub(crate) fn py(minor: u8) -> PythonMinor {
        PythonMinor::new(minor).unwrap()
    }

    /// tiny-tool 1.0 (scripts tiny, tiny-admin) needing dep-a 2.0 (script dep-cmd), whose wheel
    /// is `dep_tag`'s.
    pub(crate) fn tiny_wheels(dir: &Path, dep_tag: &str) -> Vec<PathBuf> {
        vec![
            make_wheel(
                dir,
                "tiny-tool",
                "1.0",
                &[
                    "--requires",
                    "dep-a",
                    "--script",
                    "tiny",
                    "--script",
                    "tiny-admin",
                ],
            ),
            make_wheel(
                dir,
                "dep-a",
                "2.0",
                &["--tag", dep_tag, "--script", "dep-cmd"],
            ),
        ]
    }

    pub(crate) fn tiny_spec(platform: Platform, python: PythonMinor) -> PexSpec {
        PexSpec {
            platform,
            python,
            requirements: vec!["tiny-tool==1.0".into()],
        }
    }

    fn read_pex_info(pex: &Path) -> serde_json::Value {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(pex).unwrap()).unwrap();
        let mut text = String::new();
        zip.by_name("PEX-INFO")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Every byte of the file and of each of its zip members, decompressed.
    fn all_bytes(pex: &Path) -> Vec<Vec<u8>> {
        let mut out = vec![std::fs::read(pex).unwrap()];
        let mut zip = zip::ZipArchive::new(std::fs::File::open(pex).unwrap()).unwrap();
        for i in 0..zip.len() {
            let mut member = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            member.read_to_end(&mut data).unwrap();
            out.push(member.name().unwrap().as_bytes().to_vec());
            out.push(data);
        }
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn every_platform_gets_the_same_flags_but_its_complete_platform_and_pex_root() {
        let wheels = [
            PathBuf::from("/w/b-1-py3-none-any.whl"),
            "/v/a-1-py3-none-any.whl".into(),
        ];
        let spec = |platform| PexSpec {
            platform,
            python: py(12),
            requirements: vec!["b==1".into()],
        };
        let all: Vec<Vec<String>> = Platform::ALL
            .into_iter()
            .map(|p| {
                pex_args(
                    &wheels,
                    &spec(p),
                    Path::new("/cp.json"),
                    Path::new("/o.pex"),
                )
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
            })
            .collect();
        let linux = &all[0];
        let joined = linux.join(" ");
        for want in [
            "--pre-resolved-dists /v/a-1-py3-none-any.whl --pre-resolved-dists /w/b-1-py3-none-any.whl",
            "--venv --no-pre-install-wheels --sh-boot",
            "--interpreter-constraint CPython==3.12.*",
            "--python-shebang /usr/bin/env python3.12",
            "--runtime-pex-root ~/.cache/pex",
            "--complete-platform /cp.json",
        ] {
            assert!(joined.contains(want), "{want:?} not in {joined}");
        }
        assert_eq!(linux.last().unwrap(), "b==1");
        assert!(
            joined.contains(&version_options(py(12)).join(" ")),
            "{joined}"
        );
        for (p, args) in Platform::ALL.iter().zip(&all) {
            assert_eq!(args, linux, "{p}");
        }
    }

    #[test]
    fn the_installed_venv_is_read_from_plain_hashes_only() {
        let hash = "e01964c923d8c0e7a349c3a85d571d9c74cc2d99";
        let header = |root: &str, path: &str, venv: &str| {
            format!(
                "#!/bin/sh\nset -eu\n\nVENV=\"{venv}\"\nDEFAULT_PEX_ROOT=\"$(echo {root})\"\nINSTALLED_PEX=\"${{PEX_ROOT}}/{path}\"\n"
            )
        };
        let good = format!("venvs/4/{hash}/{hash}");
        let v = InstalledVenv::from_header(&header("~/.cache/pex", &good, "1")).unwrap();
        assert_eq!(
            v.shell_expr(),
            format!("${{PEX_ROOT:-$HOME/.cache/pex}}/{good}")
        );
        assert!(InstalledVenv::from_header(&header("~/.cache/pex", &good, "")).is_none());
        for bad_root in [
            "~/$(id)",
            "~/a b",
            "relative",
            "~/../x",
            "~/a//b",
            "~/a/./b",
            "/tmp/build-cache/pex",
        ] {
            assert!(
                InstalledVenv::from_header(&header(bad_root, &good, "1")).is_none(),
                "{bad_root}"
            );
        }
        for bad_path in [
            format!("venvs/4/{hash}"),
            format!("venvs/x/{hash}/{hash}"),
            format!("venvs/4/{hash}/{}", "g".repeat(40)),
            format!("venvs/4/{hash}/{hash}/.."),
            format!("unzipped_pexes/4/{hash}/{hash}"),
        ] {
            assert!(
                InstalledVenv::from_header(&header("~/.cache/pex", &bad_path, "1")).is_none(),
                "{bad_path}"
            );
        }
    }

    /// The PEX of every platform, from wheels only: each records the same interpreter
    /// constraint and options, none embeds the build's PEX_ROOT, XDG_CACHE_HOME or HOME, a
    /// second build gives the same bytes, and each says where it installs its venv.
    #[tokio::test]
    async fn pexs_from_pre_resolved_wheels_are_alike_on_every_platform_and_reproducible() {
        let scratch = tempfile::tempdir().unwrap();
        let marker = format!("hermit-pex-leak-{}", std::process::id());
        let leaky = scratch.path().join(&marker);
        let wheels = tiny_wheels(&scratch.path().join("wheels"), "py3-none-any");
        let mut settings = settings(scratch.path());
        settings.pex_root = leaky.join("pex-root");
        // pex runs with HOME and XDG_CACHE_HOME of the build machine, outside each other and
        // both marked: a `python` beside `pex` that sets them.
        let bin = scratch.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("python"),
            format!(
                "#!/bin/sh\nHOME={h} XDG_CACHE_HOME={x} exec {py} \"$@\"\n",
                h = leaky.join("home").display(),
                x = leaky.join("xdg").display(),
                py = settings.pex.python().unwrap().display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("python"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        settings.pex.bin_dir = bin;
        let mut pexs = Vec::new();
        for platform in Platform::ALL {
            let out = scratch.path().join(format!("out/{platform}/tiny-tool.pex"));
            let spec = tiny_spec(platform, py(12));
            let built = build_pex(&wheels, &spec, &out, &settings).await.unwrap();
            assert_eq!(built, out);
            for (i, bytes) in all_bytes(&out).iter().enumerate() {
                assert!(
                    !contains(bytes, marker.as_bytes()),
                    "{platform}: part {i} of the PEX holds a path of the build machine"
                );
            }
            let again = scratch.path().join(format!("again/{platform}.pex"));
            build_pex(&wheels, &spec, &again, &settings).await.unwrap();
            assert_eq!(
                std::fs::read(&out).unwrap(),
                std::fs::read(&again).unwrap(),
                "{platform}: not reproducible"
            );
            let venv = InstalledVenv::of(&out).unwrap();
            assert!(venv.is_some(), "{platform}: no installed venv found");
            assert_eq!(venv.unwrap().default_root, RUNTIME_PEX_ROOT, "{platform}");
            let info = read_pex_info(&out);
            assert_eq!(
                info["interpreter_constraints"],
                serde_json::json!(["CPython==3.12.*"]),
                "{platform}"
            );
            assert_eq!(info["venv"], true);
            assert_eq!(info["deps_are_wheel_files"], true);
            let mut dists: Vec<&String> =
                info["distributions"].as_object().unwrap().keys().collect();
            dists.sort();
            assert_eq!(
                dists,
                [
                    "dep_a-2.0-py3-none-any.whl",
                    "tiny_tool-1.0-py3-none-any.whl"
                ]
            );
            assert_eq!(info["pex_root"], RUNTIME_PEX_ROOT);
            pexs.push(std::fs::read(&out).unwrap());
        }
        // Pure wheels: the four PEXs are one, so one PEX may serve every platform.
        assert!(
            pexs.windows(2).all(|w| w[0] == w[1]),
            "the platforms' PEXs differ"
        );
    }

    #[tokio::test]
    async fn a_foreign_platform_takes_its_own_wheel_and_refuses_another() {
        let scratch = tempfile::tempdir().unwrap();
        let settings = settings(scratch.path());
        let darwin_arm = Platform::new(Os::Darwin, Arch::Arm64);
        let wheels = tiny_wheels(&scratch.path().join("mac"), "cp312-cp312-macosx_11_0_arm64");
        let out = scratch.path().join("mac.pex");
        build_pex(&wheels, &tiny_spec(darwin_arm, py(12)), &out, &settings)
            .await
            .unwrap();
        let info = read_pex_info(&out);
        assert!(
            info["distributions"]
                .as_object()
                .unwrap()
                .contains_key("dep_a-2.0-cp312-cp312-macosx_11_0_arm64.whl"),
            "{info}"
        );
        // The same macOS wheel for linux: pex refuses it, naming the distribution.
        let linux = Platform::new(Os::Linux, Arch::Amd64);
        let err = build_pex(
            &wheels,
            &tiny_spec(linux, py(12)),
            &scratch.path().join("linux.pex"),
            &settings,
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BuildError::Pex { .. }), "{text}");
        assert!(text.contains("dep-a") || text.contains("dep_a"), "{text}");
        assert!(!scratch.path().join("linux.pex").exists());
        // A wheel for 3.13 is not one for 3.12.
        let wheels = tiny_wheels(
            &scratch.path().join("313"),
            "cp313-cp313-manylinux_2_17_x86_64",
        );
        let err = build_pex(
            &wheels,
            &tiny_spec(linux, py(12)),
            &scratch.path().join("313.pex"),
            &settings,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("dep"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_dependency_or_a_bad_input_is_refused() {
        let scratch = tempfile::tempdir().unwrap();
        let settings = settings(scratch.path());
        let linux = Platform::new(Os::Linux, Arch::Amd64);
        let wheels = tiny_wheels(&scratch.path().join("w"), "py3-none-any");
        let err = build_pex(
            &wheels[..1],
            &tiny_spec(linux, py(12)),
            &scratch.path().join("a.pex"),
            &settings,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("dep-a"), "{err}");

        let mut spec = tiny_spec(linux, py(12));
        spec.requirements.push("--index-url=http://evil/".into());
        let err = build_pex(&wheels, &spec, &scratch.path().join("b.pex"), &settings)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("requirements[1]"), "{err}");
        assert!(!err.contains("evil"), "echoes the entry: {err}");

        let sdist = scratch.path().join("x-1.0.tar.gz");
        std::fs::write(&sdist, b"").unwrap();
        let err = build_pex(
            &[sdist],
            &tiny_spec(linux, py(12)),
            &scratch.path().join("c.pex"),
            &settings,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a wheel"), "{err}");
    }

    #[tokio::test]
    async fn the_build_has_a_timeout() {
        let scratch = tempfile::tempdir().unwrap();
        let mut settings = settings(scratch.path());
        settings.timeout = Duration::from_millis(50);
        let wheels = tiny_wheels(&scratch.path().join("w"), "py3-none-any");
        let err = build_pex(
            &wheels,
            &tiny_spec(Platform::new(Os::Linux, Arch::Amd64), py(12)),
            &scratch.path().join("t.pex"),
            &settings,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn sdists_are_built_only_for_the_native_platform() {
        let scratch = tempfile::tempdir().unwrap();
        let settings = settings(scratch.path());
        let host = Platform::host().unwrap();
        let foreign = Platform::ALL.into_iter().find(|p| *p != host).unwrap();
        let err = wheel_from_sdist(
            Path::new("/nowhere/x-1.0.tar.gz"),
            foreign,
            py(12),
            scratch.path(),
            &settings,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("only on its own platform"), "{err}");
    }
}
