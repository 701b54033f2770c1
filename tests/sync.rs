//! `hermit-pex sync` end to end with the real pex against a pypiserver on loopback holding
//! wheels built here: tarballs, launchers, releases, manifests, failures and re-runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::sandbox::*;
use common::*;
use hermit_pex::hermit;
use hermit_pex::names::{PackageName, Platform, PythonMinor};

const TINY: &str = "package: tiny-tool\nbinaries: [tiny-tool, tiny-admin]\ntest: \"tiny-tool --help\"\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n";
const TINY_FLAGS: &[&str] = &["--script", "tiny-tool", "--script", "tiny-admin"];

/// Unpacks a tarball and runs one of its launchers as a user would, with the python that
/// Hermit's runtime dependency puts on PATH.
fn run_launcher(tarball: &Path, binary: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let path = format!("{}:/usr/bin:/bin", python312_dir().display());
    let out = Command::new(dir.path().join(binary))
        .args(args)
        .env("PATH", path)
        .env("PEX_ROOT", dir.path().join("pex-root"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{binary} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_pure_python_tool_is_built_once_released_listed_and_runs_through_its_launchers() {
    let s = Sandbox::new(
        &[("tiny-tool", TINY)],
        &[
            ("tiny-tool", "1.0", TINY_FLAGS),
            ("tiny-tool", "2.0", TINY_FLAGS),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("8 of 8 builds done, 2 versions released, 1 manifests written"),
        "{stderr}"
    );

    for version in ["1.0", "2.0"] {
        let tag = format!("tiny-tool-v{version}");
        assert_eq!(s.release_json(&tag)["state"], "published");
        let info = s.build_info(&tag);
        assert_eq!(info["locked"]["pure"], true, "{info}");
        let targets: Vec<&str> = Platform::ALL
            .iter()
            .map(|p| info["platforms"][p.to_string()]["target"].as_str().unwrap())
            .collect();
        assert_eq!(
            targets,
            ["complete_platform", "universal", "universal", "universal"],
            "one pex build for four platforms"
        );
        assert_eq!(info["locked"]["pins"][0], format!("tiny-tool=={version}"));
        assert_eq!(
            info["platforms"]["linux-amd64"]["test"]["outcome"], "passed",
            "tested on its own platform before upload: {info}"
        );
        let command = info["platforms"]["linux-amd64"]["test"]["command"]
            .as_str()
            .unwrap();
        assert!(
            stderr.contains(&format!(
                "tiny-tool {version} linux-amd64: tested: `{command}` passed"
            )),
            "the test that ran is said: {stderr}"
        );
    }

    let tarball = s
        .release_dir("tiny-tool-v2.0")
        .join("tiny-tool-linux-amd64.tar.gz");
    assert_eq!(
        run_launcher(&tarball, "tiny-admin", &["hello", "a b"]),
        "tiny-tool 2.0 hello a b\n"
    );
    assert_eq!(run_launcher(&tarball, "tiny-tool", &[]), "tiny-tool 2.0\n");

    let text = s.manifest("tiny-tool").expect("manifest written");
    let existing = hermit::read(&text).unwrap();
    let versions: Vec<String> = existing.versions.keys().map(|v| v.to_string()).collect();
    assert_eq!(versions, ["1.0", "2.0"]);
    assert!(
        hermit::unverified(&existing, &Platform::ALL).is_empty(),
        "every version x platform has a digest"
    );
    for (url, digest) in &existing.sha256sums {
        let path = url.strip_prefix("file://").unwrap();
        let (_, actual) = hermit_pex::digest::sha256_file(Path::new(path)).unwrap();
        assert_eq!(&actual, digest, "{url}");
    }

    // A second run has nothing to do and leaves the manifest alone.
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("nothing to do"), "{stderr}");
    assert_eq!(s.manifest("tiny-tool").unwrap(), text);
}

/// A dependency with a wheel for linux-x86_64 only: the other platforms cannot exist (no
/// rebuild changes that), so the version is released and listed for the one it has; once the
/// index has a wheel for another, a retry adds it and leaves the rest alone.
#[test]
fn a_version_is_released_for_the_platforms_its_dependencies_have_wheels_for() {
    let config = "package: needs-native\nbinaries: [needs-native]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n";
    let s = Sandbox::new(
        &[("needs-native", config)],
        &[
            (
                "native-dep",
                "1.0",
                &["--tag", "cp312-cp312-manylinux_2_17_x86_64"],
            ),
            ("needs-native", "1.0", &["--requires", "native-dep"]),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 1, "something did not build: {stderr}");
    for platform in ["linux-arm64", "darwin-amd64", "darwin-arm64"] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("needs-native 1.0 {platform}: FAILED")))
            .unwrap_or_else(|| panic!("{platform} not reported:\n{stderr}"));
        assert!(
            line.contains("no wheel for") && line.contains("of native-dep 1.0"),
            "names the distribution and its version: {line}"
        );
    }
    let release = s.release_json("needs-native-v1.0");
    assert_eq!(release["state"], "published", "{stderr}");
    let info = s.build_info("needs-native-v1.0");
    let missing = info["missing"].as_object().unwrap();
    assert_eq!(missing.len(), 3, "{info}");
    assert!(
        missing["darwin-arm64"]
            .as_str()
            .unwrap()
            .contains("native-dep")
    );
    let tarball = s
        .release_dir("needs-native-v1.0")
        .join("needs-native-linux-amd64.tar.gz");
    assert_eq!(
        run_launcher(&tarball, "needs-native", &[]),
        "needs-native 1.0\n"
    );
    let text = s.manifest("needs-native").expect("listed");
    let resolve = |os: &str, arch: &str| {
        common::hermit_resolve::resolve(&text, "1.0", os, arch)
            .unwrap()
            .source
    };
    assert!(resolve("linux", "amd64").is_some(), "{text}");
    for (os, arch) in [("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")] {
        assert_eq!(
            resolve(os, arch),
            None,
            "not supported on {os}-{arch}: {text}"
        );
    }

    // Nothing new: the platforms that cannot exist are not tried again.
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("nothing to do"), "{stderr}");

    // A wheel for linux-aarch64 appears; a retry adds that platform only.
    let amd64 = std::fs::read(&tarball).unwrap();
    make_wheel(
        &s.path().join("index"),
        "native-dep",
        "1.0",
        &["--tag", "cp312-cp312-manylinux_2_17_aarch64"],
    );
    let (code, _, stderr) = s.sync(&["--retry-missing"]);
    assert_eq!(code, 1, "darwin still cannot exist: {stderr}");
    let text = s.manifest("needs-native").unwrap();
    assert!(
        common::hermit_resolve::resolve(&text, "1.0", "linux", "arm64")
            .unwrap()
            .source
            .is_some(),
        "{stderr}\n{text}"
    );
    assert_eq!(std::fs::read(&tarball).unwrap(), amd64, "never replaced");
    let info = s.build_info("needs-native-v1.0");
    assert_eq!(info["missing"].as_object().unwrap().len(), 2, "{info}");
    assert!(
        info["platforms"]["linux-arm64"]["sha256"].is_string(),
        "{info}"
    );
}

#[test]
fn the_same_version_builds_to_the_same_bytes() {
    let s = Sandbox::new(&[("tiny-tool", TINY)], &[("tiny-tool", "1.0", TINY_FLAGS)]);
    let digests = |dist: &str| {
        let (code, _, stderr) = s.sync(&["--dist", dist, "--platforms", "linux-amd64"]);
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                s.path()
                    .join(dist)
                    .join("releases/tiny-tool-v1.0/release.json"),
            )
            .unwrap(),
        )
        .unwrap();
        json["assets"]["tiny-tool-linux-amd64.tar.gz"][1]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = digests("dist-a");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(first, digests("dist-b"));
}

#[test]
fn a_killed_build_leaves_no_asset_and_the_next_sync_completes_the_release() {
    let s = Sandbox::new(&[("tiny-tool", TINY)], &[("tiny-tool", "1.0", TINY_FLAGS)]);
    // A pex that is killed midway through its build: builds run pex with the python beside
    // it, and that one is stopped with SIGKILL.
    let fake = s.path().join("fake-bin");
    std::fs::create_dir_all(&fake).unwrap();
    let real = tools_venv().join("bin");
    std::os::unix::fs::symlink(real.join("pex3"), fake.join("pex3")).unwrap();
    std::os::unix::fs::symlink(real.join("pex"), fake.join("pex")).unwrap();
    write(
        &fake.join("python"),
        &format!(
            "#!/bin/sh\n\"{}\" \"$@\" &\npid=$!\nsleep 0.3\nkill -9 $pid\nwait $pid\n",
            real.join("python").display()
        ),
    );
    Command::new("chmod")
        .arg("+x")
        .arg(fake.join("python"))
        .status()
        .unwrap();
    let args = s.sync_args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = hermit_pex_with(&args, s.path(), &fake.join("pex"));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("killed by a signal") || stderr.contains("exit 137"),
        "{stderr}"
    );
    let release = s.release_json("tiny-tool-v1.0");
    let assets: Vec<&String> = release["assets"].as_object().unwrap().keys().collect();
    assert_eq!(
        assets,
        ["pylock.tiny-tool.toml", "tiny-tool.cdx.json"],
        "the lock and its SBOM only: {release}"
    );
    assert_eq!(s.manifest("tiny-tool"), None);

    // And a copy that was cut short, without a recorded digest, is replaced.
    let junk = s
        .release_dir("tiny-tool-v1.0")
        .join("tiny-tool-darwin-arm64.tar.gz");
    std::fs::write(&junk, b"half a tarball").unwrap();

    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("resolving"),
        "built from the recorded lock: {stderr}"
    );
    let release = s.release_json("tiny-tool-v1.0");
    assert_eq!(release["state"], "published");
    let tarballs = release["assets"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with(".tar.gz"))
        .count();
    assert_eq!(tarballs, 4);
    assert_ne!(std::fs::read(&junk).unwrap(), b"half a tarball");
    let package = PackageName::new("tiny-tool").unwrap();
    assert!(
        s.manifest("tiny-tool")
            .unwrap()
            .contains(&package.asset_name(Platform::ALL[3]))
    );
}

#[test]
fn dry_run_changes_nothing() {
    let s = Sandbox::new(&[("tiny-tool", TINY)], &[("tiny-tool", "1.0", TINY_FLAGS)]);
    let (code, stdout, stderr) = s.sync(&["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("1.0") && stdout.contains("build"),
        "{stdout}"
    );
    assert!(
        !s.path()
            .join("dist")
            .join("releases")
            .join("tiny-tool-v1.0")
            .exists()
    );
    assert!(!s.path().join("hermit").exists());
}

#[test]
fn manifests_are_committed_to_a_git_repository_at_its_root_once() {
    let s = Sandbox::new(&[("tiny-tool", TINY)], &[("tiny-tool", "1.0", TINY_FLAGS)]);
    let bare = s.path().join("manifests.git");
    let status = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(status.success());
    let url = format!("file://{}", bare.display());
    let log = || {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&bare)
            .args(["log", "--format=%s", "main"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (code, _, stderr) = s.sync(&["--manifest-repo", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(log(), ["hermit: tiny-tool 1.0 [skip ci]"]);
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&bare)
        .args(["show", "main:tiny-tool.hcl"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("version \"1.0\""), "{text}");
    assert!(
        s.manifest("tiny-tool").is_none(),
        "not written locally when a repository is given"
    );

    let (code, _, stderr) = s.sync(&["--manifest-repo", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(log().len(), 1, "no new commit when nothing changed");

    // Someone adds an attribute by hand: reported, and the file is left as it is.
    let clone = s.path().join("clone");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&clone)
            .args([
                "-c",
                "user.name=someone",
                "-c",
                "user.email=someone@example.org",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(
        Command::new("git")
            .args(["clone", "-q", &url])
            .arg(&clone)
            .status()
            .unwrap()
            .success()
    );
    let edited = text.replace("homepage =", "env = { \"TINY\": \"1\" }\nhomepage =");
    std::fs::write(clone.join("tiny-tool.hcl"), &edited).unwrap();
    git(&["commit", "-qam", "by hand"]);
    git(&["push", "-q", "origin", "HEAD:main"]);
    let (code, _, stderr) = s.sync(&["--manifest-repo", &url]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("tiny-tool: manifest left as it is: the manifest was edited by hand (env)"),
        "{stderr}"
    );
    assert_eq!(log().len(), 2, "only the hand edit");
}

/// A build whose test fails on its own platform is not uploaded: the version stays a draft (so
/// a fixed config can build it again) and the manifest keeps the versions before it.
#[test]
fn a_version_that_fails_its_test_is_never_published_or_listed() {
    let s = Sandbox::new(
        &[("tiny-tool", TINY)],
        &[
            ("tiny-tool", "1.0", TINY_FLAGS),
            (
                "tiny-tool",
                "2.0",
                &[
                    "--script",
                    "tiny-tool",
                    "--script",
                    "tiny-admin",
                    "--broken",
                ],
            ),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 1, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tiny-tool 2.0") && l.contains("the test failed before upload"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("tiny-tool --help") && line.contains("exit 3"),
        "{line}"
    );
    let release = s.release_json("tiny-tool-v2.0");
    assert_eq!(release["state"], "draft");
    assert!(
        release["assets"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.ends_with(".tar.gz")),
        "nothing uploaded: {release}"
    );
    let existing = hermit::read(&s.manifest("tiny-tool").unwrap()).unwrap();
    let versions: Vec<String> = existing.versions.keys().map(|v| v.to_string()).collect();
    assert_eq!(versions, ["1.0"]);
}

#[test]
fn a_python_the_host_lacks_is_built_from_complete_platforms_and_says_so() {
    let config = TINY.replace("\"3.12\"", "\"3.14\"");
    let s = Sandbox::new(
        &[("tiny-tool", &config)],
        &[("tiny-tool", "1.0", TINY_FLAGS)],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    let info = s.build_info("tiny-tool-v1.0");
    assert_eq!(info["python"], "3.14");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let local = rt.block_on(hermit_pex::tools::find_python(
        PythonMinor::new(14).unwrap(),
    ));
    let host = info["platforms"]["linux-amd64"]["target"].as_str().unwrap();
    if local.is_none() {
        assert_eq!(host, "complete_platform", "{info}");
        assert!(
            stderr.contains("listed without its test having run: no local CPython 3.14"),
            "{stderr}"
        );
    } else {
        assert_eq!(host, "interpreter");
    }
    let existing = hermit::read(&s.manifest("tiny-tool").unwrap()).unwrap();
    assert_eq!(
        existing.versions.values().next().unwrap(),
        &["python3@3.14"]
    );
}

/// `hermit-pex lock` and `hermit-pex build`, what the Jobs run, by hand: into a draft `sync`
/// made for the same config, which they find by its id and check before writing.
#[test]
fn lock_and_build_write_into_the_draft_they_are_given_and_nothing_else() {
    let config = "package: needs-native\nbinaries: [needs-native]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n";
    let wheels: Vec<(&str, &str, &[&str])> = vec![
        (
            "native-dep",
            "1.0",
            &["--tag", "cp312-cp312-manylinux_2_17_x86_64"],
        ),
        (
            "native-dep",
            "1.0",
            &["--tag", "cp312-cp312-manylinux_2_17_aarch64"],
        ),
        ("needs-native", "1.0", &["--requires", "native-dep"]),
    ];
    let s = Sandbox::new(&[("needs-native", config)], &wheels);
    // The draft, locked, with linux-amd64 built.
    let (code, _, stderr) = s.sync(&["--platforms", "linux-amd64"]);
    assert_eq!(code, 0, "{stderr}");
    let cache = shared_cache().display().to_string();
    let step = |command: &str, platform: &str, release: &str| -> Vec<String> {
        [
            command,
            "--package",
            "needs-native",
            "--version",
            "1.0",
            "--python",
            "3.12",
            "--release-id",
            release,
            "--platform",
            platform,
            "--binary",
            "needs-native",
            "--index-url",
            &s.url,
            "--cache-dir",
            &cache,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let run = |args: &[String]| {
        hermit_pex(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            s.path(),
        )
    };
    let args = step("build", "linux-arm64", "needs-native-v1.0");
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("resolving"),
        "from the recorded lock: {stderr}"
    );
    let release = s.release_json("needs-native-v1.0");
    assert_eq!(
        release["state"], "draft",
        "publishing is the controller's (or sync's), once every platform is there"
    );
    let assets: Vec<&String> = release["assets"].as_object().unwrap().keys().collect();
    assert!(
        assets.contains(&&"needs-native-linux-arm64.tar.gz".to_owned())
            && assets.contains(&&"needs-native-linux-arm64.build.json".to_owned()),
        "{assets:?}"
    );

    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("already built"), "{stderr}");

    // The lock step on a locked draft: nothing to resolve, nothing pure to build.
    let (code, _, stderr) = run(&step("lock", "linux-amd64", "needs-native-v1.0"));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("resolving"), "{stderr}");

    // Another release's id, or other settings than the draft was made for: refused, nothing written.
    let before = s.release_json("needs-native-v1.0");
    let (code, _, stderr) = run(&step("build", "darwin-arm64", "needs-native-v2.0"));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--release-id needs-native-v2.0"),
        "{stderr}"
    );
    let mut other = step("build", "darwin-arm64", "needs-native-v1.0");
    other.extend(["--extra-package".into(), "six".into()]);
    let (code, _, stderr) = run(&other);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("made for other settings"), "{stderr}");
    assert_eq!(s.release_json("needs-native-v1.0"), before);

    let mut bad = step("build", "linux-amd64", "needs-native-v1.0");
    bad[2] = "x;rm".into();
    let (code, _, stderr) = run(&bad);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--package") && stderr.contains("not a PyPI project name"),
        "{stderr}"
    );
}

/// A listed binary that is no console script of the version is known only once the version is
/// locked: the failure still names the config file, the entry and its line.
#[test]
fn a_wrong_binary_is_reported_with_the_config_file_and_line() {
    let config = "package: tiny-tool\nbinaries:\n  - tiny-tool\n  - tiny-nope\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n";
    let s = Sandbox::new(
        &[("tiny-tool", config)],
        &[("tiny-tool", "1.0", TINY_FLAGS)],
    );
    let (code, _, stderr) = s.sync(&["--platforms", "linux-amd64"]);
    assert_eq!(code, 1, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("FAILED"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains(
            "python/tiny-tool/config.yaml: binaries[1] (line 4): tiny-nope is not a console script"
        ),
        "{line}"
    );
}

/// A published release whose linux-amd64 tarball was swapped for other bytes, its digest in
/// release.json updated as an attacker would: that platform is not listed, the run fails, and
/// the line names the platform and both digests.
#[test]
fn a_published_tarball_with_other_bytes_than_were_built_is_not_listed() {
    let s = Sandbox::new(&[("tiny-tool", TINY)], &[("tiny-tool", "1.0", TINY_FLAGS)]);
    let (code, _, stderr) = s.sync(&["--hermit-dir", "before"]);
    assert_eq!(code, 0, "{stderr}");

    let dir = s.release_dir("tiny-tool-v1.0");
    let tarball = dir.join("tiny-tool-linux-amd64.tar.gz");
    let (_, built) = hermit_pex::digest::sha256_file(&tarball).unwrap();
    std::fs::write(&tarball, b"#!/bin/sh\necho not what was built\n").unwrap();
    let (size, swapped) = hermit_pex::digest::sha256_file(&tarball).unwrap();
    let mut release = s.release_json("tiny-tool-v1.0");
    release["assets"]["tiny-tool-linux-amd64.tar.gz"] = serde_json::json!([size, swapped]);
    std::fs::write(dir.join("release.json"), release.to_string()).unwrap();

    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 1, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tiny-tool 1.0 linux-amd64: left out of the manifest"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&built) && line.contains(&swapped), "{line}");
    let text = s
        .manifest("tiny-tool")
        .expect("written for the other platforms");
    assert!(!text.contains(&swapped), "{text}");
    let resolve = |os: &str, arch: &str| {
        common::hermit_resolve::resolve(&text, "1.0", os, arch)
            .unwrap()
            .source
    };
    assert_eq!(resolve("linux", "amd64"), None, "{text}");
    assert!(resolve("darwin", "arm64").is_some(), "{text}");
}

/// `plan` reads the release store `sync` writes, with the same flags: after a sync it says
/// released; another `--dist` (empty) says new build and is not made.
#[test]
fn plan_shows_what_sync_released() {
    let s = Sandbox::new(&[("tiny-tool", TINY)], &[("tiny-tool", "1.0", TINY_FLAGS)]);
    let plan = |extra: &[&str]| {
        let cache = shared_cache().display().to_string();
        let mut args = vec!["plan", "--index-url", &s.url, "--cache-dir", &cache];
        args.extend(extra);
        hermit_pex(&args, s.path())
    };
    let (code, stdout, stderr) = plan(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 versions: 0 released"), "{stdout}");
    assert!(!s.path().join("dist").exists(), "plan makes nothing");

    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = plan(&[]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1.0"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("released   linux-amd64 linux-arm64 darwin-amd64 darwin-arm64"),
        "{line}"
    );
    assert!(
        stdout.contains("1 versions: 1 released, 0 to publish, 0 builds planned"),
        "{stdout}"
    );
    let (code, stdout, _) = plan(&["--format", "json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["packages"][0]["plan"]["versions"][0]["status"],
        "released"
    );

    let (code, stdout, stderr) = plan(&["--dist", "elsewhere"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("new"), "{stdout}");
    assert!(!s.path().join("elsewhere").exists());
}

/// The build info of a release in the sandbox.
#[test]
fn a_pure_package_whose_page_also_has_an_sdist_is_built_once() {
    let flags: Vec<&str> = TINY_FLAGS.iter().copied().chain(["--sdist"]).collect();
    let s = Sandbox::new(&[("tiny-tool", TINY)], &[("tiny-tool", "1.0", &flags)]);
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    let info = s.build_info("tiny-tool-v1.0");
    assert_eq!(
        info["locked"]["pure"], true,
        "the sdist beside the wheel is not chosen: {info}"
    );
    assert_eq!(info["locked"]["format"], "pylock", "{info}");
    let targets: Vec<&str> = Platform::ALL
        .iter()
        .map(|p| info["platforms"][p.to_string()]["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["complete_platform", "universal", "universal", "universal"],
        "one PEX for four platforms: {stderr}"
    );
    for p in Platform::ALL {
        let files = &info["locked"]["platforms"][p.to_string()]["files"];
        assert_eq!(files[0]["name"], "tiny_tool-1.0-py3-none-any.whl", "{info}");
    }
}

#[test]
fn commands_that_live_in_a_dependency_get_launchers_that_run() {
    // `suite` has no console script of its own: `suite-core`, its dependency, has them (as
    // ansible's are ansible-core's).
    let config = "package: suite\nbinaries: [suite-play, suite-doc]\ntest: \"suite-play --version\"\nversions:\n  - version: \"2.0\"\n    python: \"3.12\"\n";
    let s = Sandbox::new(
        &[("suite", config)],
        &[
            (
                "suite-core",
                "2.1",
                &["--script", "suite-play", "--script", "suite-doc"],
            ),
            (
                "suite",
                "2.0",
                &["--no-scripts", "--requires", "suite-core"],
            ),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    let info = s.build_info("suite-v2.0");
    assert_eq!(
        info["locked"]["binaries_from"]["suite-play"], "suite-core",
        "{info}"
    );
    let tarball = s
        .release_dir("suite-v2.0")
        .join(format!("suite-{}.tar.gz", Platform::host().unwrap()));
    assert_eq!(
        run_launcher(&tarball, "suite-doc", &["x"]).trim(),
        "suite-core 2.1 x",
        "the dependency's command runs from the PEX"
    );

    // A binary no locked distribution has is refused, naming those that exist and where.
    let wrong = config.replace("suite-doc]", "suite-docs]");
    let s = Sandbox::new(
        &[("suite", &wrong)],
        &[
            (
                "suite-core",
                "2.1",
                &["--script", "suite-play", "--script", "suite-doc"],
            ),
            (
                "suite",
                "2.0",
                &["--no-scripts", "--requires", "suite-core"],
            ),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("suite-docs") && stderr.contains("suite-doc (suite-core)"),
        "{stderr}"
    );
}

#[test]
fn a_platform_whose_dependency_has_only_a_compiled_sdist_is_missing_and_named() {
    let config = "package: needs-native\nbinaries: [needs-native]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n";
    let s = Sandbox::new(
        &[("needs-native", config)],
        &[
            (
                "native-dep",
                "1.0",
                &["--tag", "cp312-cp312-manylinux_2_17_x86_64"],
            ),
            (
                "native-dep",
                "1.0",
                &["--tag", "cp312-cp312-manylinux_2_17_aarch64"],
            ),
            (
                "native-dep",
                "1.0",
                &["--tag", "cp312-cp312-macosx_11_0_arm64"],
            ),
            // darwin-amd64 has only this: it builds a C extension, so a wheel made here is
            // for this machine alone.
            ("native-dep", "1.0", &["--sdist-only", "--c-extension"]),
            ("needs-native", "1.0", &["--requires", "native-dep"]),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 1, "a platform cannot exist: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("needs-native 1.0 darwin-amd64: FAILED (NoWheelForPlatform)"))
        .unwrap_or_else(|| panic!("darwin-amd64 not reported:\n{stderr}"));
    assert!(line.contains("native-dep 1.0"), "{line}");
    assert!(
        !stderr.contains("darwin-amd64: built"),
        "nothing is built for it: {stderr}"
    );
    let info = s.build_info("needs-native-v1.0");
    assert_eq!(s.release_json("needs-native-v1.0")["state"], "published");
    let missing = info["missing"].as_object().unwrap();
    assert_eq!(
        missing.keys().collect::<Vec<_>>(),
        ["darwin-amd64"],
        "{info}"
    );
    // Every platform built from the one lock the release records.
    let lock = info["locked"]["sha256"].as_str().unwrap();
    let built = info["platforms"].as_object().unwrap();
    assert_eq!(built.len(), 3, "{info}");
    for (p, b) in built {
        assert_eq!(b["lock"], lock, "{p}: {info}");
    }
    let manifest = s.manifest("needs-native").unwrap();
    assert!(
        !manifest.contains("needs-native-darwin-amd64.tar.gz"),
        "{manifest}"
    );
    assert!(
        manifest.contains("needs-native-darwin-arm64.tar.gz"),
        "{manifest}"
    );
}
