//! Bad input through the real binary: each config of the corpus sits beside a good
//! one in `python/`, and `plan` (against a replay of pypi.org's index) and `convert` must
//! refuse it naming the file and the field, exit non-zero, write nothing, and still plan and
//! convert the good one. Bad flags are refused before anything runs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ReplayServer, recorded_pypiapijson};

const GOOD: &str = "package: pypiapijson\nbinaries: [pypiapijson]\nversions:\n  - version: \"2.0\"\n    python: \"3.12\"\n";
const BAD: &str = "python/bad/config.yaml";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run(args: &[&str], cwd: &Path) -> Run {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
        .args(args)
        .current_dir(cwd)
        .env_remove("HERMIT_PEX_INDEX_URL")
        .env_remove("HERMIT_PEX_CACHE_DIR")
        .output()
        .expect("hermit-pex runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// Every path under `dir`, to show that a run wrote nothing.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

enum Entry {
    Text(String),
    Bytes(Vec<u8>),
    Link(PathBuf),
}
use Entry::*;

fn put(root: &Path, rel: &str, entry: &Entry) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match entry {
        Text(t) => std::fs::write(&path, t).unwrap(),
        Bytes(b) => std::fs::write(&path, b).unwrap(),
        Link(target) => std::os::unix::fs::symlink(target, &path).unwrap(),
    }
}

fn text(s: impl Into<String>) -> Entry {
    Text(s.into())
}

/// The one stderr line about `file`, which must name `field` and say `says`, and be short
/// (no file contents, no megabyte values).
fn line_about<'a>(stderr: &'a str, file: &str, field: &str, says: &str) -> &'a str {
    let line = stderr
        .lines()
        .find(|l| l.contains(file))
        .unwrap_or_else(|| panic!("{file} is not reported:\n{stderr}"));
    let after = &line[line.find(file).unwrap() + file.len()..];
    assert!(
        after.starts_with(&format!(": {field}")),
        "field {field:?} not named: {line}"
    );
    assert!(line.contains(says), "{says:?} not said: {line}");
    assert!(line.len() < 1000, "{} bytes: {line}", line.len());
    line
}

/// Writes the good config and `entries` into a fresh directory, then checks `plan` and
/// `convert`: refused (`file`, `field`, `says`), the good one still planned and converted,
/// nothing written, and quickly.
async fn refused(entries: &[(&str, Entry)], file: &str, field: &str, says: &str) -> String {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let work = tempfile::tempdir().unwrap();
    put(work.path(), "python/good/config.yaml", &text(GOOD));
    for (rel, entry) in entries {
        put(work.path(), rel, entry);
    }
    let before = files(work.path());
    let (cwd, url) = (work.path().to_owned(), server.url.clone());
    let (plan, convert) = tokio::task::spawn_blocking(move || {
        (
            run(&["plan", "--no-cache", "--index-url", &url], &cwd),
            run(&["convert"], &cwd),
        )
    })
    .await
    .unwrap();
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("pypiapijson (python/good/config.yaml)"),
        "the good config is still planned:\n{}\n{}",
        plan.stdout,
        plan.stderr
    );
    let line = line_about(&plan.stderr, file, field, says).to_owned();
    assert_eq!(convert.code, 1, "{}", convert.stderr);
    assert_eq!(
        convert.stdout.matches("kind: PythonPackage").count(),
        1,
        "only the good config becomes a resource:\n{}",
        convert.stdout
    );
    assert!(
        convert.stdout.contains("name: pypiapijson"),
        "{}",
        convert.stdout
    );
    line_about(&convert.stderr, file, field, says);
    assert_eq!(files(work.path()), before, "nothing is written");
    for r in [&plan, &convert] {
        assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);
    }
    line
}

async fn bad_config(config: impl Into<String>, field: &str, says: &str) -> String {
    refused(&[(BAD, text(config))], BAD, field, says).await
}

const V: &str = "versions:\n  - version: \"1.0\"\n    python: \"3.12\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_binary_named_like_the_pex_is_refused() {
    bad_config(
        format!("package: cowsay\nbinaries: [cowsay, cowsay.pex]\n{V}"),
        "binaries[1]",
        "the name of the PEX in the tarball (cowsay.pex)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_config_for_one_package_names_both_files() {
    let dup = "python/zz-dup/config.yaml";
    let line = refused(
        &[(
            dup,
            text(format!("package: PyPIApiJson\nbinaries: [other]\n{V}")),
        )],
        dup,
        "package",
        "is already configured in python/good/config.yaml",
    )
    .await;
    assert!(line.contains("one config per package"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_that_runs_no_binary_is_refused() {
    bad_config(
        format!("package: cowsay\nbinaries: [cowsay]\ntest: \"../../../bin/sh -c id\"\n{V}"),
        "test",
        "must start with one of binaries (cowsay)",
    )
    .await;
    bad_config(
        format!("package: cowsay\nbinaries: [cowsay]\ntest: \"cowsay --help\\nid\"\n{V}"),
        "test",
        "must be one line of text",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_nesting_is_refused_before_parsing() {
    let line = bad_config(
        format!("package: x\nversions: {}", "[".repeat(100_000)),
        "",
        "more than 1024 '[' and '{'",
    )
    .await;
    assert!(line.contains("not parsed"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_lists_are_refused_quickly() {
    let versions = format!(
        "package: x\nversions:\n  - &v {{version: \"1.0\", python: \"3.12\"}}\n{}",
        "  - *v\n".repeat(40_000)
    );
    bad_config(versions, "versions", "has 40001 entries; at most 100").await;
    let exclude: String = (0..40_000).map(|i| format!("  - \"{i}.1\"\n")).collect();
    bad_config(
        format!("package: x\n{V}exclude:\n{exclude}"),
        "exclude",
        "at most 500",
    )
    .await;
    let binaries: Vec<String> = (0..2000).map(|i| format!("b{i}")).collect();
    bad_config(
        format!("package: x\nbinaries: [{}]\n{V}", binaries.join(", ")),
        "binaries",
        "has 2000 entries; at most 64",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_over_1_mib_is_not_parsed() {
    let big = format!("package: x\n{V}# {}\n", "x".repeat(1 << 20));
    bad_config(big, "", "a config is at most 1048576 bytes (1 MiB)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_byte_order_mark_is_accepted() {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let work = tempfile::tempdir().unwrap();
    put(
        work.path(),
        "python/good/config.yaml",
        &Bytes([b"\xEF\xBB\xBF".as_slice(), GOOD.as_bytes()].concat()),
    );
    let (cwd, url) = (work.path().to_owned(), server.url.clone());
    let plan = tokio::task::spawn_blocking(move || {
        run(&["plan", "--no-cache", "--index-url", &url], &cwd)
    })
    .await
    .unwrap();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("pypiapijson"), "{}", plan.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_loop_is_named_as_such() {
    bad_config_entries(
        &[(BAD, Link("config.yaml".into()))],
        "",
        "symbolic link loop",
    )
    .await;
}

async fn bad_config_entries(entries: &[(&str, Entry)], field: &str, says: &str) -> String {
    refused(entries, BAD, field, says).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_linked_to_another_file_is_not_echoed() {
    let outside = tempfile::tempdir().unwrap();
    let passwd: String = (0..40)
        .map(|i| format!("user{i}:x:{i}:{i}:User {i}:/home/user{i}:/bin/sh\n"))
        .collect();
    std::fs::write(outside.path().join("passwd"), passwd).unwrap();
    let line = bad_config_entries(
        &[(BAD, Link(outside.path().join("passwd")))],
        "",
        "the config must be a mapping",
    )
    .await;
    assert!(!line.contains("user0"), "the file is echoed: {line}");
    assert!(line.contains("found plain text of about"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_megabyte_name_is_not_echoed() {
    let line = bad_config(
        format!("package: \"{}\"\n{V}", "n".repeat(1_000_000)),
        "package",
        "(999900 more characters) is not a PyPI project name",
    )
    .await;
    assert!(line.len() < 500, "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_float_version_is_quoted_as_written() {
    bad_config(
        "package: x\nversions:\n  - version: 6.0\n    python: \"3.12\"\n",
        "versions[0].version",
        "quote the version as written, \"6.0\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_that_is_not_a_mapping_says_so() {
    for config in ["~\n", "- package: x\n- versions: []\n", "just some text\n"] {
        bad_config(
            config,
            "",
            "the config must be a mapping with package, versions",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_resources_the_api_server_used_to_take_are_refused_as_configs() {
    for (config, field, says) in [
        (format!("package: x\nexclude: [\"not a version\"]\n{V}"), "exclude[0]", "is not a PEP 440 version"),
        ("package: x\nversions:\n  - {version: \"not a version\", python: \"3.12\"}\n".to_owned(), "versions[0].version", "is not a PEP 440 version"),
        ("package: x\nversions:\n  - {version: \"1.0\", python: \"3.12\"}\n  - {version: \"1.0\", python: \"3.11\"}\n".to_owned(), "versions[1].version", "listed twice"),
        (format!("package: x\nbinaries: [a, a]\n{V}"), "binaries[1]", "listed twice"),
        (format!("package: x\nextra_packages: [\"$(id)\"]\n{V}"), "extra_packages[0]", "must start with a project name"),
        (format!("package: x\nbinaries: []\n{V}"), "binaries", "leave binaries out"),
        (format!("package: x\ninterval: 0s\n{V}"), "interval", "unknown field"),
        (format!("package: x\nextraPackages: [rich]\n{V}"), "extraPackages", "`extra_packages`"),
    ] {
        bad_config(config, field, says).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_without_binaries_is_planned() {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let work = tempfile::tempdir().unwrap();
    put(
        work.path(),
        "python/good/config.yaml",
        &text("package: pypiapijson\nversions:\n  - version: \"2.0\"\n    python: \"3.12\"\n"),
    );
    let (cwd, url) = (work.path().to_owned(), server.url.clone());
    let (plan, convert) = tokio::task::spawn_blocking(move || {
        (
            run(&["plan", "--no-cache", "--index-url", &url], &cwd),
            run(&["convert"], &cwd),
        )
    })
    .await
    .unwrap();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(convert.code, 0, "{}", convert.stderr);
    assert!(
        !convert.stdout.contains("binaries"),
        "left out: {}",
        convert.stdout
    );
}

#[test]
fn bad_flags_are_refused_before_anything_runs() {
    let work = tempfile::tempdir().unwrap();
    put(work.path(), "python/good/config.yaml", &text(GOOD));
    let before = files(work.path());
    for (args, flag, says) in [
        (
            &["sync", "--build-timeout", "0"][..],
            "--build-timeout",
            "must be at least 1 (seconds)",
        ),
        (
            &["sync", "--test-timeout", "0"],
            "--test-timeout",
            "must be at least 1 (seconds)",
        ),
        (&["sync", "--latest", "0"], "--latest", "must be at least 1"),
        (&["plan", "--latest", "0"], "--latest", "must be at least 1"),
        (
            &["sync", "--build-timeout", "ten"],
            "--build-timeout",
            "not a whole number",
        ),
        (
            &[
                "build",
                "--package",
                "x",
                "--version",
                "1",
                "--python",
                "3.12",
                "--platform",
                "linux-amd64",
                "--binary",
                "x",
                "--build-timeout",
                "0",
            ],
            "--build-timeout",
            "must be at least 1",
        ),
    ] {
        let r = run(args, work.path());
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(flag) && r.stderr.contains(says),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert_eq!(files(work.path()), before, "nothing is written");
}

/// A `config.yaml` linked to a file of secrets: whatever the parser trips over (a shadow line
/// read as a field name, a token as a field name, a token as a wrongly typed value, a YAML
/// syntax error inside a token), `plan` and `sync` name the file, the line and the rule, and
/// print nothing of the file.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_linked_to_secrets_echoes_none_of_them() {
    const TOKEN: &str = "ghp_R8sKq2VxW9mZt4LpN7bYc3DfGh6Jk1QwEr5T";
    const HASH: &str = "$6$Xq9sLt2v$Pz8rQ1wK7mN3bV5cX0yH4gF6jD2sA9lE";
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let secrets = tempfile::tempdir().unwrap();
    for (name, content, says) in [
        (
            "shadow",
            format!("root:{HASH}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"),
            "unknown field (a name of",
        ),
        (
            "token-key",
            format!("{TOKEN}: x\n"),
            "unknown field (a name of 40 characters, not shown) at line 1",
        ),
        (
            "token-value",
            format!("package: x\nconfig_version: \"{TOKEN}\"\n"),
            "config_version: must be a whole number from 0 to 4294967295; found plain text of about 40 characters (not shown) at line 2",
        ),
        (
            "token-nested",
            format!("package: x\nversions:\n  - version: \"1.0\"\n    {TOKEN}: \"3.12\"\n"),
            "versions[0]: unknown field (a name of 40 characters, not shown) at line 4",
        ),
        (
            "token-bool",
            format!("package: x\nprereleases: {TOKEN}\n"),
            "prereleases: must be true or false; found plain text",
        ),
        (
            "token-syntax",
            format!("package: x\n{TOKEN}: [\"{TOKEN}\n"),
            "at line",
        ),
    ] {
        let file = secrets.path().join(name);
        std::fs::write(&file, &content).unwrap();
        let work = tempfile::tempdir().unwrap();
        put(work.path(), BAD, &Link(file));
        let (cwd, url) = (work.path().to_owned(), server.url.clone());
        let dist = work.path().join("dist").display().to_string();
        let (plan, sync) = tokio::task::spawn_blocking(move || {
            (
                run(&["plan", "--no-cache", "--index-url", &url], &cwd),
                run(
                    &[
                        "sync",
                        "--no-cache",
                        "--index-url",
                        &url,
                        "--dist",
                        &dist,
                        "-vv",
                    ],
                    &cwd,
                ),
            )
        })
        .await
        .unwrap();
        for (command, r) in [("plan", &plan), ("sync", &sync)] {
            assert_eq!(r.code, 1, "{name} {command}: {}", r.stderr);
            let out = format!("{}{}", r.stdout, r.stderr);
            assert!(
                out.contains(&format!("{BAD}: ")) && out.contains(says),
                "{name} {command}: {says:?} not said:\n{out}"
            );
            // Not the secrets, nor any 6 characters of them.
            for secret in [TOKEN, HASH, "daemon:*"] {
                let chars: Vec<char> = secret.chars().collect();
                for piece in chars.windows(6).map(|w| w.iter().collect::<String>()) {
                    assert!(
                        !out.contains(&piece),
                        "{name} {command} shows {piece:?} of the file:\n{out}"
                    );
                }
            }
        }
    }
}

/// A token typed into `--manifest-repo https://user:TOKEN@…` is taken out of the URL: git (a
/// wrapper on PATH records every argument) gets the URL without it and the credentials as the
/// header a Git token goes as; nothing sync prints at `-vv`, nor any file it writes (the
/// checkout's `.git/config` included), holds it.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_in_the_manifest_url_reaches_no_argument_log_or_file() {
    use sha2::Digest;
    const TOKEN: &str = "ghp_Zq7Lm2Xv9Rt4Kp8Wn3Bc6Dy1Hf5Gj0Se";
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let work = tempfile::tempdir().unwrap();
    // A minimum above every version: nothing is built, and the manifests are still committed.
    put(
        work.path(),
        "python/good/config.yaml",
        &text(GOOD.replace("\"2.0\"", "\"99.0\"")),
    );
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrapper = bin.join("git");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$GIT_ARGS_LOG\"; done\n\
             if [ \"$(printf '%s' \"${{GIT_CONFIG_VALUE_0#Authorization: Basic }}\" | base64 -d | sha256sum)\" = \"$EXPECTED  -\" ]; then echo header-ok >> \"$GIT_ARGS_LOG\"; fi\n\
             exec {} \"$@\"\n",
            real.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let log = work.path().join("git-args.log");
    let expected = hex::encode(sha2::Sha256::digest(format!("bob:{TOKEN}")));
    let url = format!(
        "https://bob:{TOKEN}@127.0.0.1:{}/acme/manifests.git",
        common::free_port()
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let (cwd, index) = (work.path().to_owned(), server.url.clone());
    let cache = work.path().join("cache").display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
            .args([
                "sync",
                "-vv",
                "--index-url",
                &index,
                "--cache-dir",
                &cache,
                "--manifest-repo",
                &url,
            ])
            .current_dir(&cwd)
            .env("PATH", path)
            .env("GIT_ARGS_LOG", &log)
            .env("EXPECTED", expected)
            .env_remove("HERMIT_PEX_GIT_TOKEN")
            .env_remove("GITHUB_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The push cannot reach the stand-in host: the failure names the URL without the token.
    assert_eq!(out.status.code(), Some(1), "{output}");
    assert!(output.contains("https://127.0.0.1:"), "{output}");
    let args = std::fs::read_to_string(work.path().join("git-args.log")).unwrap();
    assert!(
        args.contains("remote") && args.contains("fetch"),
        "git ran: {args}"
    );
    // The URL is never where git could take it for an option.
    assert!(
        args.contains("\nadd\n--\norigin\nhttps://127.0.0.1:"),
        "{args}"
    );
    assert!(args.contains("\nfetch\n-q\n--\norigin\n"), "{args}");
    assert!(
        args.contains("header-ok"),
        "the credentials reach git as the header: {args}"
    );
    assert!(
        !output.contains(TOKEN) && !output.contains("ghp_Zq"),
        "{output}"
    );
    for file in files(work.path()).into_iter().filter(|f| f.is_file()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "{} holds the token",
            file.display()
        );
    }
    let config = files(work.path())
        .into_iter()
        .find(|f| f.ends_with(".git/config"))
        .expect("the checkout was made");
    let config = std::fs::read_to_string(config).unwrap();
    assert!(config.contains("url = https://127.0.0.1:"), "{config}");
}

/// Every flag the CRD has a rule for is checked by the same rule, with the CRD's words after
/// the flag's name: refused before anything runs (exit 2), the value not repeated, nothing
/// written and nothing sent (the index and the GitHub API are one listener that counts
/// connections, and a token is set so that a GitHub store would be used).
#[test]
fn flags_the_crd_has_rules_for_are_refused_by_those_rules() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for _ in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let work = tempfile::tempdir().unwrap();
    put(work.path(), "python/good/config.yaml", &text(GOOD));
    let before = files(work.path());
    let index = format!("http://127.0.0.1:{port}/simple/");
    let api = format!("http://127.0.0.1:{port}/");
    let sync = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "sync",
            "--no-cache",
            "--index-url",
            &index,
            "--github-api-url",
            &api,
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let step = |command: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            command,
            "--package",
            "x",
            "--version",
            "1",
            "--python",
            "3.12",
            "--release-id",
            "1",
            "--index-url",
            &index,
            "--github-api-url",
            &api,
        ]
        .map(String::from)
        .to_vec();
        a.extend(["--platform".into(), "linux-amd64".into()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let controller = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "controller",
            "--builder-image",
            "b:1",
            "--index-url",
            &index,
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    const REPO: &str = "must be a GitHub OWNER/REPO, e.g. acme/hermit-tools";
    const URL: &str = "must be a Git URL: https://HOST/PATH";
    const BRANCH: &str = "must be a branch name git takes";
    const DIR: &str = "must be a relative path inside the repository";
    const CREDS: &str = "must not hold credentials";
    let cases: Vec<(Vec<String>, &str, &str, &str)> = vec![
        (
            sync(&["--repository", "../etc-evil"]),
            "--repository",
            REPO,
            "etc-evil",
        ),
        (
            sync(&["--repository", "evil-owner/.."]),
            "--repository",
            REPO,
            "evil-owner",
        ),
        (
            sync(&["--repository", "evil-owner/../../x"]),
            "--repository",
            REPO,
            "evil-owner",
        ),
        (
            sync(&["--repository", &format!("evil/{}", "x".repeat(200))]),
            "--repository",
            "is 205 characters long; at most 140",
            "xxxxx",
        ),
        (
            sync(&["--manifest-github", "evil-owner/.."]),
            "--manifest-github",
            REPO,
            "evil-owner",
        ),
        (
            sync(&["--manifest-repo=-uevil-option"]),
            "--manifest-repo",
            URL,
            "evil-option",
        ),
        (
            sync(&["--manifest-repo", "ext::sh -c evil-command"]),
            "--manifest-repo",
            URL,
            "evil-command",
        ),
        (
            sync(&["--manifest-repo", "http://evil-host/x.git"]),
            "--manifest-repo",
            URL,
            "evil-host",
        ),
        (
            sync(&[
                "--manifest-repo",
                "https://h/x.git",
                "--manifest-branch=--upload-pack=evil-id",
            ]),
            "--manifest-branch",
            BRANCH,
            "evil-id",
        ),
        (
            sync(&["--manifest-branch", "evil..branch"]),
            "--manifest-branch",
            BRANCH,
            "evil..branch",
        ),
        (
            sync(&["--manifest-branch", ""]),
            "--manifest-branch",
            BRANCH,
            "\"\"",
        ),
        (
            sync(&["--manifest-dir", "../evil-dir"]),
            "--manifest-dir",
            DIR,
            "evil-dir",
        ),
        (
            sync(&["--manifest-dir", "/evil-dir"]),
            "--manifest-dir",
            DIR,
            "evil-dir",
        ),
        (
            sync(&["--base-url", "https://u:evil-secret@h/"]),
            "--base-url",
            CREDS,
            "evil-secret",
        ),
        (
            sync(&["--github-url", "https://u:evil-secret@h/"]),
            "--github-url",
            CREDS,
            "evil-secret",
        ),
        (
            vec![
                "sync".into(),
                "--github-api-url".into(),
                "https://u:evil-secret@h/".into(),
            ],
            "--github-api-url",
            CREDS,
            "evil-secret",
        ),
        (
            step("build", &["--repository", "evil-owner/.."]),
            "--repository",
            REPO,
            "evil-owner",
        ),
        (
            step("lock", &["--repository", "../etc-evil"]),
            "--repository",
            REPO,
            "etc-evil",
        ),
        (
            controller(&["--repository", "../etc-evil"]),
            "--repository",
            REPO,
            "etc-evil",
        ),
        (
            controller(&[
                "--repository",
                "a/b",
                "--allow-release-repository",
                "a/c,evil-owner/..",
            ]),
            "--allow-release-repository",
            REPO,
            "evil-owner",
        ),
        (
            controller(&[
                "--repository",
                "a/b",
                "--allow-manifest-repository=-uevil-option",
            ]),
            "--allow-manifest-repository",
            URL,
            "evil-option",
        ),
        (
            controller(&["--repository", "a/b", "--manifest-branch=-evil"]),
            "--manifest-branch",
            BRANCH,
            "-evil",
        ),
    ];
    for (args, flag, says, value) in &cases {
        let out = Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
            .args(args)
            .current_dir(work.path())
            .env("GITHUB_TOKEN", "t0ken-for-the-test")
            .env("HERMIT_PEX_CACHE_DIR", work.path().join("cache"))
            .env_remove("HERMIT_PEX_INDEX_URL")
            .env_remove("HERMIT_PEX_REPOSITORY")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag} {says}")),
            "{args:?}: the flag and its rule are not named: {stderr}"
        );
        assert!(
            !stderr.contains(value),
            "{args:?}: the value is repeated: {stderr}"
        );
    }
    // The good values of the same flags still parse (and then fail later for want of a
    // server), so the rules refuse only what they must.
    let ok = Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
        .args(sync(&[
            "--dry-run",
            "--manifest-repo",
            "https://x-access-token@h/acme/x.git",
            "--manifest-branch",
            "release/1.x",
            "--manifest-dir",
            "hermit/packages",
        ]))
        .current_dir(work.path())
        .output()
        .unwrap();
    assert_ne!(
        ok.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let sent_by_good = connections.load(Ordering::SeqCst);
    assert!(sent_by_good > 0, "the listener counts connections");
    let _ = std::fs::remove_dir_all(work.path().join("cache"));
    for f in files(work.path()).difference(&before) {
        // The good run may make its dist directory; the refused ones made nothing.
        assert!(
            f.starts_with(work.path().join("dist")),
            "{} was written",
            f.display()
        );
    }
    let refused_first = Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
        .args(sync(&["--repository", "evil-owner/.."]))
        .current_dir(work.path())
        .env("GITHUB_TOKEN", "t0ken-for-the-test")
        .output()
        .unwrap();
    assert_eq!(refused_first.status.code(), Some(2));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        sent_by_good,
        "a refused run sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn yaml_tags_and_duplicate_requirements_are_refused() {
    for (config, field, says) in [
        (
            format!("package: x\nprereleases: !Sync true\n{V}"),
            "prereleases",
            "carries a YAML tag",
        ),
        (
            "package: x\nversions:\n  - version: !Sync \"1.0\"\n    python: \"3.12\"\n".to_owned(),
            "versions[0].version",
            "a value with a YAML tag",
        ),
        (
            format!(
                "package: x\n{V}extra_packages: [\"Rich >= 13\", \"setuptools\", \"rich>=13\"]\n"
            ),
            "extra_packages[2]",
            "is the same requirement as extra_packages[0]",
        ),
        (
            format!("package: x\n{V}extra_packages: [typing_extensions, Typing.Extensions]\n"),
            "extra_packages[1]",
            "is the same requirement as extra_packages[0]",
        ),
    ] {
        bad_config(config, field, says).await;
    }
}

/// `name @ file:///…` would make the resolver read a local file, and `name @ https://…` fetch
/// around the index: `plan` refuses them naming the entry and the flag that allows them, and
/// takes them with it; `sync` refuses to lock such a version (nothing is built, nothing read).
#[tokio::test(flavor = "multi_thread")]
async fn direct_references_are_refused_unless_allowed() {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let work = tempfile::tempdir().unwrap();
    let canary = work.path().join("canary.whl");
    std::fs::write(&canary, "not a wheel").unwrap();
    put(
        work.path(),
        "python/good/config.yaml",
        &text(format!(
            "{GOOD}extra_packages: [\"rich\", \"evil @ file://{}\", \"other @ https://u:s3cret@example.org/o.whl\"]\n",
            canary.display()
        )),
    );
    let (cwd, url) = (work.path().to_owned(), server.url.clone());
    let dist = work.path().join("dist").display().to_string();
    let cache = work.path().join("cache").display().to_string();
    let pex = common::tools_venv().join("bin/pex");
    let (refused, allowed, sync) = tokio::task::spawn_blocking(move || {
        let sync = Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
            .args([
                "sync",
                "--index-url",
                &url,
                "--dist",
                &dist,
                "--cache-dir",
                &cache,
                "--no-verify",
            ])
            .current_dir(&cwd)
            .env("HERMIT_PEX_PEX", pex)
            .output()
            .unwrap();
        (
            run(&["plan", "--no-cache", "--index-url", &url], &cwd),
            run(
                &[
                    "plan",
                    "--no-cache",
                    "--index-url",
                    &url,
                    "--allow-direct-references",
                ],
                &cwd,
            ),
            sync,
        )
    })
    .await
    .unwrap();
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    for i in [1, 2] {
        let start = format!(
            "python/good/config.yaml: extra_packages[{i}]: is a direct reference (NAME @ URL)"
        );
        let line = refused
            .stderr
            .lines()
            .find(|l| l.contains(&start))
            .unwrap_or_else(|| panic!("{start:?} not said: {}", refused.stderr));
        assert!(line.contains("--allow-direct-references"), "{line}");
        assert!(
            !line.contains("canary") && !line.contains("s3cret"),
            "{line}"
        );
    }
    assert!(
        !refused.stdout.contains("pypiapijson ("),
        "not planned: {}",
        refused.stdout
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert!(
        allowed
            .stdout
            .contains("pypiapijson (python/good/config.yaml)"),
        "{}",
        allowed.stdout
    );

    let stderr = String::from_utf8_lossy(&sync.stderr);
    assert_eq!(sync.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("extra_packages[1]: is a direct reference")
            && stderr.contains("--allow-direct-references"),
        "{stderr}"
    );
    // (The "resolving …" progress line is pipeline.rs's: it shows the requirements as written
    // until it uses build::shown_requirements.)
    for line in stderr.lines().filter(|l| l.contains("FAILED")) {
        assert!(!line.contains("s3cret"), "{line}");
    }
    let tarballs = files(work.path())
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".tar.gz"))
        .count();
    assert_eq!(tarballs, 0, "nothing is built");
}
