//! A tool from a Git repository at its tags, with the real git and pex: a repository made
//! here (a tiny project with a console script, annotated and lightweight tags, a tag that is
//! not a version, a tag whose project says another version), read over file:// and over a
//! real `git daemon` on loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    commits: Vec<(String, String)>,
}

fn repository() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello-tool");
    std::fs::create_dir_all(&path).unwrap();
    git(&path, &["init", "-q", "-b", "main"]);
    let mut commits = Vec::new();
    for (version, tag, annotated) in [
        ("1.0.0", "v1.0.0", false),
        ("1.1.0", "v1.1.0", true),
        ("2.0.0rc1", "v2.0.0rc1", false),
        ("1.1.9", "v1.2.0", false), // says another version than its tag
    ] {
        commits.push((tag.to_owned(), tag_release(&path, version, tag, annotated)));
    }
    git(&path, &["tag", "not-a-version"]);
    git(&path, &["tag", "vnext"]);
    Repo {
        _dir: dir,
        path,
        commits,
    }
}

fn config(url: &str) -> String {
    format!(
        "package: hello-tool\nsource:\n  git: \"{url}\"\n  tag_prefix: \"v\"\n  subdirectory: tools/hello\nversions:\n  - version: \"1.0.0\"\n    python: \"3.12\"\n"
    )
}

/// The test index: no project, only what pex and the build backend need.
fn index() -> (tempfile::TempDir, PypiServer) {
    let dir = tempfile::tempdir().unwrap();
    make_wheel(dir.path(), "unrelated", "1.0", &[]);
    let server = PypiServer::start(dir.path());
    (dir, server)
}

fn run(work: &Path, args: &[&str]) -> (i32, String, String) {
    hermit_pex(args, work)
}

#[test]
fn plan_lists_the_tags_that_are_versions_over_file_and_over_git_daemon() {
    let repo = repository();
    let (_index_dir, index) = index();
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    // git-daemon itself, not `git daemon` (a wrapper whose child outlives a kill).
    let exec_path = git(repo.path.as_path(), &["--exec-path"]);
    let daemon = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args([
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", repo.path.parent().unwrap().display()),
        ])
        .stdout(std::process::Stdio::null())
        // It says "the remote end hung up" after each ls-remote: noise, not a failure.
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = KillOnDrop(daemon);
    wait_for_port(port);
    for url in [
        format!("file://{}", repo.path.display()),
        format!("git://127.0.0.1:{port}/hello-tool"),
    ] {
        write(
            &work.path().join("python/hello-tool/config.yaml"),
            &config(&url),
        );
        let (code, stdout, stderr) = run(work.path(), &["plan", "--index-url", &index.url]);
        assert_eq!(code, 0, "{url}: {stderr}");
        let versions: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains(" python "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .collect();
        assert_eq!(versions, ["1.2.0", "1.1.0", "1.0.0"], "{url}: {stdout}");
        assert!(
            stderr.contains("1 tags are not versions and were skipped: vnext"),
            "{stderr}"
        );
        let prereleases = config(&url).replace("versions:", "prereleases: true\nversions:");
        write(
            &work.path().join("python/hello-tool/config.yaml"),
            &prereleases,
        );
        let (_, stdout, _) = run(work.path(), &["plan", "--index-url", &index.url]);
        assert!(stdout.contains("2.0.0rc1"), "{stdout}");
    }
}

/// Stops a server the test started, however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sync_builds_each_tag_from_a_clean_checkout_and_records_its_commit_and_wheel() {
    let repo = repository();
    let (_index_dir, index) = index();
    let work = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path.display());
    write(
        &work.path().join("python/hello-tool/config.yaml"),
        &config(&url),
    );
    let cache = repo_root().join("target/test-cache").display().to_string();
    let (code, _, stderr) = run(
        work.path(),
        &["sync", "--index-url", &index.url, "--cache-dir", &cache],
    );
    assert_eq!(code, 1, "v1.2.0 builds 1.1.9: {stderr}");
    assert!(
        stderr.contains("1 tags are not versions and were skipped: vnext"),
        "sync says so too: {stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("hello-tool 1.2.0") && l.contains("FAILED"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("builds hello-tool 1.1.9") || line.contains("builds hello_tool 1.1.9"),
        "names both: {line}"
    );
    assert!(line.contains("1.2.0"), "{line}");

    for (version, tag) in [("1.0.0", "v1.0.0"), ("1.1.0", "v1.1.0")] {
        let release = work
            .path()
            .join(format!("dist/releases/hello-tool-v{version}"));
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(release.join("release.json")).unwrap()).unwrap();
        assert_eq!(state["state"], "published", "{version}: {stderr}");
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(release.join("build-info.json")).unwrap())
                .unwrap();
        let commit = &repo.commits.iter().find(|(t, _)| t == tag).unwrap().1;
        assert_eq!(
            info["inputs"]["source"]["commit"],
            commit.as_str(),
            "{info}"
        );
        assert_eq!(info["inputs"]["source"]["tag"], tag);
        let wheel = &info["locked"]["wheel"];
        let asset = wheel["asset"].as_str().unwrap();
        assert!(
            asset.starts_with(&format!("hello_tool-{version}-")),
            "{info}"
        );
        let (_, sha) = hermit_pex::digest::sha256_file(&release.join(asset)).unwrap();
        assert_eq!(
            wheel["sha256"],
            sha.as_str(),
            "the wheel's digest is recorded"
        );
        assert_eq!(
            info["locked"]["binaries"][0], "hello",
            "every console script"
        );

        // The launcher runs.
        let unpacked = tempfile::tempdir().unwrap();
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(release.join("hello-tool-linux-amd64.tar.gz"))
            .arg("-C")
            .arg(unpacked.path())
            .status()
            .unwrap();
        assert!(status.success());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let python = rt
            .block_on(hermit_pex::tools::find_python("3.12".parse().unwrap()))
            .unwrap();
        let out = Command::new(unpacked.path().join("hello"))
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", python.parent().unwrap().display()),
            )
            .env("PEX_ROOT", unpacked.path().join("pex-root"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("hello {version}\n")
        );
    }
    let manifest = std::fs::read_to_string(work.path().join("hermit/hello-tool.hcl")).unwrap();
    assert!(manifest.contains("version \"1.0.0\"") && manifest.contains("version \"1.1.0\""));
    assert!(!manifest.contains("1.2.0"), "{manifest}");

    // A published version's tag moved: said, not rebuilt.
    git(&repo.path, &["tag", "-f", "v1.0.0", "v1.1.0^{}"]);
    let (_, stdout, stderr) = run(
        work.path(),
        &[
            "sync",
            "--dry-run",
            "--index-url",
            &index.url,
            "--cache-dir",
            &cache,
        ],
    );
    assert!(
        stdout.contains("the tag v1.0.0 moved from"),
        "{stdout}\n{stderr}"
    );
}

/// A relative `--cache-dir` (and `--dist`): made absolute when parsed, so pex (run in a build
/// directory, and taking only absolute mapped paths for the project's wheel) builds the tag.
#[test]
fn a_relative_cache_dir_builds_a_tag() {
    let repo = repository();
    let (_index_dir, index) = index();
    let work = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path.display());
    write(
        &work.path().join("python/hello-tool/config.yaml"),
        &(config(&url).replace("1.0.0", "1.1.0") + "exclude: [\"1.2.0\"]\n"),
    );
    // The shared cache, as a path relative to the work directory.
    let up = "../".repeat(work.path().components().count() - 1);
    let shared = repo_root().join("target/test-cache");
    let cache = format!("{up}{}", shared.strip_prefix("/").unwrap().display());
    std::fs::create_dir_all(&shared).unwrap();
    assert!(work.path().join(&cache).is_dir(), "{cache}");
    let (code, _, stderr) = run(
        work.path(),
        &[
            "sync",
            "--index-url",
            &index.url,
            "--cache-dir",
            &cache,
            "--dist",
            "out",
            "--platforms",
            "linux-amd64",
            "--no-verify",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("Mapped paths must be absolute"),
        "{stderr}"
    );
    let release = work.path().join("out/releases/hello-tool-v1.1.0");
    assert!(
        release.join("hello-tool-linux-amd64.tar.gz").is_file(),
        "{stderr}"
    );
}

/// An HTTPS Git host (a self-signed certificate git is told to accept) that refuses every
/// request with 401, logging whether each carried credentials.
struct RefusingHost {
    url: String,
    log: PathBuf,
    _server: KillOnDrop,
    _dir: tempfile::TempDir,
}

fn refusing_host() -> RefusingHost {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, log) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("requests.log"),
    );
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "openssl: {made:?}");
    let mut child = Command::new(tools_venv().join("bin/python"))
        .arg(repo_root().join("tests/fixtures/refusing_git_server.py"))
        .args([&cert, &key, &log])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    RefusingHost {
        url: format!("https://127.0.0.1:{}", port.trim()),
        log,
        _server: KillOnDrop(child),
        _dir: dir,
    }
}

/// git says only "could not read Username … terminal prompts disabled" whether the token was
/// refused or missing: the source and the manifest repository both say which variable to
/// check or set, and never the token.
#[test]
fn a_refused_or_missing_git_token_names_the_variable_and_is_never_shown() {
    let host = refusing_host();
    let (_index_dir, index) = index();
    let work = tempfile::tempdir().unwrap();
    write(
        &work.path().join("python/hello-tool/config.yaml"),
        &config(&format!("{}/hello-tool.git", host.url)),
    );
    let secret = "ghp_REFUSED_TOKEN_VALUE";
    let run = |args: &[&str], token: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hermit-pex"));
        cmd.args(args)
            .args(["--index-url", &index.url, "--no-cache"])
            .current_dir(work.path())
            .env("GIT_SSL_NO_VERIFY", "1")
            .env_remove("HERMIT_PEX_GIT_TOKEN")
            .env_remove("GITHUB_TOKEN")
            .env_remove("HERMIT_PEX_GIT_SSH_KEY");
        if let Some(t) = token {
            cmd.env("HERMIT_PEX_GIT_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap(),
            text(&out.stdout) + &text(&out.stderr),
        )
    };

    let (code, out) = run(&["plan"], Some(secret));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the server refused the token in HERMIT_PEX_GIT_TOKEN"),
        "{out}"
    );
    assert!(
        !out.contains(secret) && !out.contains("terminal prompts"),
        "{out}"
    );
    let log = std::fs::read_to_string(&host.log).unwrap();
    assert!(log.contains("auth=yes"), "the token was sent: {log}");

    let (code, out) = run(&["plan"], None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("none were given: set HERMIT_PEX_GIT_TOKEN"),
        "{out}"
    );

    // The manifest repository: the same refusal, said the same way.
    let manifests = format!("{}/manifests.git", host.url);
    let cache = work.path().join("cache");
    let (code, out) = run(
        &[
            "sync",
            "--manifest-repo",
            &manifests,
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        Some(secret),
    );
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("manifests not committed"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(&manifests)
            && line.contains("the server refused the token in HERMIT_PEX_GIT_TOKEN"),
        "{line}"
    );
    assert!(!out.contains(secret), "{out}");
}
