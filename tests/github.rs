//! The GitHub release store through the real octocrab client against a stateful fake of the
//! releases API on loopback: drafts, streamed uploads, publishing, immutability, 304s,
//! interrupted uploads, rate limits, bad tokens, pagination; and `sync --repository` end to end.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::github::{FakeGitHub, Fault};
use common::*;
use hermit_pex::digest::sha256_file;
use hermit_pex::hermit;
use hermit_pex::names::{PackageName, Platform, PythonMinor};
use hermit_pex::release::github::{GitHubConfig, GitHubStore, Token};
use hermit_pex::release::{
    BuildInfo, Release, ReleaseState, ReleaseStore, StoreError, Upload, VersionInputs,
};
use pep440_rs::Version;

const TOKEN: &str = "ghp_TOKEN_THAT_MUST_NOT_LEAK";

fn store(fake: &FakeGitHub, cache: &Path) -> GitHubStore {
    store_with(fake, cache, TOKEN, |_| {})
}

fn store_with(
    fake: &FakeGitHub,
    cache: &Path,
    token: &str,
    tune: impl FnOnce(&mut GitHubConfig),
) -> GitHubStore {
    let mut config = GitHubConfig::new("owner", "repo");
    config.api_url = fake.api_url.clone();
    config.cache_dir = Some(cache.to_owned());
    config.write_interval = Duration::ZERO;
    config.base_delay = Duration::from_millis(10);
    config.max_rate_limit_wait = Duration::from_secs(10);
    tune(&mut config);
    GitHubStore::new(config, Token::new(token)).unwrap()
}

fn pkg() -> PackageName {
    PackageName::new("tool").unwrap()
}

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn info(version: &str) -> BuildInfo {
    let inputs = VersionInputs {
        python: PythonMinor::new(12).unwrap(),
        config_version: None,
        requirements: vec![format!("tool=={version}")],
        binaries: vec![],
        test: String::new(),
        source: None,
        build: None,
        packages: Vec::new(),
    };
    BuildInfo::new(&pkg(), &v(version), inputs)
}

/// A file standing in for one platform's tarball.
struct Built {
    path: PathBuf,
    size: u64,
    sha256: String,
    name: String,
}

fn built(dir: &Path, platform: Platform, content: &str) -> Built {
    let name = pkg().asset_name(platform);
    let path = dir.join(format!("{content}-{name}"));
    std::fs::write(&path, format!("{content} {platform}")).unwrap();
    let (size, sha256) = sha256_file(&path).unwrap();
    Built {
        path,
        size,
        sha256,
        name,
    }
}

impl Built {
    fn upload(&self) -> Upload<'_> {
        Upload {
            name: &self.name,
            path: &self.path,
            size: self.size,
            sha256: &self.sha256,
        }
    }
}

async fn release_version(store: &GitHubStore, dir: &Path, version: &str) -> Release {
    let r = store.create(&info(version)).await.unwrap();
    for p in Platform::ALL {
        let b = built(dir, p, version);
        store.upload(&r, b.upload()).await.unwrap();
    }
    store.publish(&r, &info(version)).await.unwrap();
    r
}

#[tokio::test]
async fn a_draft_gets_its_assets_then_is_published_with_its_build_info_in_one_write() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    assert!(s.releases(&pkg()).await.unwrap().is_empty());

    let r = s.create(&info("1.0")).await.unwrap();
    assert_eq!(
        r.info,
        Some(info("1.0")),
        "the build info goes in with the draft"
    );
    assert!(fake.releases()[0].draft);
    for p in Platform::ALL {
        let b = built(dir.path(), p, "1.0");
        s.upload(&r, b.upload()).await.unwrap();
        assert_eq!(
            fake.asset_bytes("tool-v1.0", &b.name).unwrap(),
            std::fs::read(&b.path).unwrap()
        );
    }
    let observed = &s.releases(&pkg()).await.unwrap()[0];
    assert_eq!(observed.state, ReleaseState::Draft);
    assert!(
        Platform::ALL
            .iter()
            .all(|p| observed.has_complete(&pkg(), *p))
    );

    let mut complete = info("1.0");
    complete.pex_options = vec!["--venv".into()];
    let writes = fake.writes();
    s.publish(&r, &complete).await.unwrap();
    assert_eq!(fake.writes() - writes, 1, "body and state in one PATCH");
    let published = &fake.releases()[0];
    assert!(!published.draft && !published.prerelease);
    assert!(published.body.as_deref().unwrap().contains("--venv"));
    let latest = fake.state.lock().unwrap().make_latest.clone();
    assert!(
        !latest.is_empty() && latest.iter().all(|(_, v)| v == "false"),
        "never marked latest: {latest:?}"
    );

    // A new run sees the same thing, by listing and by id.
    let again = store(&fake, dir.path());
    let observed = &again.releases(&pkg()).await.unwrap()[0];
    assert_eq!(observed.state, ReleaseState::Published);
    assert_eq!(observed.assets.len(), 4);
    assert!(observed.assets.iter().all(|a| a.is_complete()));
    assert_eq!(observed.info, Some(complete));
    let by_id = store(&fake, dir.path())
        .release(&pkg(), &r.id)
        .await
        .unwrap();
    assert_eq!(&by_id, observed);
}

/// GitHub keeps every draft it is asked to make, several per tag: the store shows them all,
/// each by its id, and deletes the ones it is told to.
#[tokio::test]
async fn drafts_of_one_tag_are_all_seen_and_one_can_be_discarded() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let a = store(&fake, dir.path());
    let b = store(&fake, &dir.path().join("b"));
    let first = a.create(&info("1.0")).await.unwrap();
    let second = b.create(&info("1.0")).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(
        fake.releases().len(),
        2,
        "GitHub made two drafts of one tag"
    );
    let seen = store(&fake, &dir.path().join("c"))
        .releases(&pkg())
        .await
        .unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].order < seen[1].order, "oldest first");
    a.delete_draft(&second).await.unwrap();
    let left = fake.releases();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id.to_string(), first.id.0);
    let published = release_version(&a, dir.path(), "2.0").await;
    let published = a.release(&pkg(), &published.id).await.unwrap();
    assert!(matches!(
        a.delete_draft(&published).await,
        Err(StoreError::Immutable { .. })
    ));
}

#[tokio::test]
async fn a_published_asset_is_never_replaced() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    let r = release_version(&s, dir.path(), "1.0").await;
    let r = s.release(&pkg(), &r.id).await.unwrap();
    let other = built(dir.path(), Platform::ALL[0], "other-bytes");
    let err = s.upload(&r, other.upload()).await.unwrap_err();
    assert!(matches!(err, StoreError::Immutable { .. }), "{err}");

    // The fake enforces immutability too: a new asset on a published release is refused.
    let mut extra = built(dir.path(), Platform::ALL[1], "x");
    extra.name = "tool-extra.tar.gz".into();
    let err = s.upload(&r, extra.upload()).await.unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    assert_eq!(
        fake.asset_bytes("tool-v1.0", &other.name).unwrap(),
        b"1.0 linux-amd64"
    );
}

#[tokio::test]
async fn an_unchanged_repository_costs_one_304_and_no_writes() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    release_version(&s, dir.path(), "1.0").await;
    release_version(&s, dir.path(), "2.0").await;
    s.releases(&pkg()).await.unwrap();
    let before = fake.requests().len();
    let writes = fake.writes();

    let second = store(&fake, dir.path());
    assert_eq!(second.releases(&pkg()).await.unwrap().len(), 2);
    // The first run's cached page is stale (it changed since); one full listing refreshes it.
    let third = store(&fake, dir.path());
    assert_eq!(third.releases(&pkg()).await.unwrap().len(), 2);
    let requests = &fake.requests()[before..];
    assert_eq!(requests.last().unwrap().2, 304, "{requests:?}");
    assert_eq!(third.stats().requests(), 1);
    assert_eq!(third.stats().not_modified, 1);
    assert_eq!(fake.writes(), writes);
}

#[tokio::test]
async fn an_interrupted_upload_is_repaired_and_nothing_else_is_touched() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let first = store_with(&fake, dir.path(), TOKEN, |c| c.attempts = 1);
    let r = first.create(&info("1.0")).await.unwrap();
    for p in &Platform::ALL[..3] {
        first
            .upload(&r, built(dir.path(), *p, "1.0").upload())
            .await
            .unwrap();
    }
    // Broken twice: the run gives up on this asset, leaving GitHub's `starter` remains.
    fake.inject(Fault::BrokenUpload);
    fake.inject(Fault::BrokenUpload);
    let last = built(dir.path(), Platform::ALL[3], "1.0");
    assert!(first.upload(&r, last.upload()).await.is_err());

    // The next run sees the broken asset as incomplete and replaces only it.
    let second = store(&fake, dir.path());
    let observed = &second.releases(&pkg()).await.unwrap()[0];
    assert!(!observed.has_complete(&pkg(), Platform::ALL[3]));
    assert!(observed.has_complete(&pkg(), Platform::ALL[0]));
    let writes = fake.writes();
    second.upload(observed, last.upload()).await.unwrap();
    assert_eq!(
        fake.writes() - writes,
        2,
        "one delete of the broken asset, one upload"
    );
    assert_eq!(
        fake.asset_bytes("tool-v1.0", &last.name).unwrap(),
        std::fs::read(&last.path).unwrap()
    );
    assert_eq!(fake.releases()[0].assets.len(), 4);
}

#[tokio::test]
async fn an_upload_cut_short_is_retried_within_the_same_run() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    let r = s.create(&info("1.0")).await.unwrap();
    fake.inject(Fault::BrokenUpload);
    let b = built(dir.path(), Platform::ALL[0], "1.0");
    s.upload(&r, b.upload()).await.unwrap();
    let assets = &fake.releases()[0].assets;
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0].state, "uploaded");
    assert_eq!(assets[0].bytes, std::fs::read(&b.path).unwrap());
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_server_errors_are_retried() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    fake.inject(Fault::RateLimit {
        method: "GET",
        path_contains: "/releases",
        reset_in_secs: 1,
    });
    fake.inject(Fault::Status {
        method: "POST",
        path_contains: "/releases",
        status: 500,
    });
    let started = std::time::Instant::now();
    s.releases(&pkg()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for the reset"
    );
    s.create(&info("1.0")).await.unwrap();
    assert_eq!(
        fake.releases().len(),
        1,
        "the retried create made one release"
    );
    assert_eq!(s.stats().rate_limit_waits, 1);
    assert_eq!(s.stats().create, 2, "tried again after the 500");
}

/// GitHub made the release but the answer was lost (a 502 on the way back): the store looks
/// before trying again, and takes the draft it finds instead of making a second one.
#[tokio::test]
async fn a_create_whose_answer_was_lost_makes_one_draft() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    fake.inject(Fault::Lost {
        method: "POST",
        path_contains: "/releases",
        status: 502,
    });
    let r = s.create(&info("1.0")).await.unwrap();
    let all = fake.releases();
    assert_eq!(all.len(), 1, "one draft");
    assert_eq!(r.id.0, all[0].id.to_string());
    assert_eq!(s.stats().create, 1, "not sent twice");
}

#[tokio::test]
async fn a_create_that_keeps_failing_says_so_with_the_tag_and_the_error() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store_with(&fake, dir.path(), TOKEN, |c| c.attempts = 2);
    for _ in 0..2 {
        fake.inject(Fault::Status {
            method: "POST",
            path_contains: "/releases",
            status: 500,
        });
    }
    let err = s.create(&info("1.0")).await.unwrap_err().to_string();
    assert!(
        err.contains("tool-v1.0") && err.contains("500") && err.contains("2 attempts"),
        "{err}"
    );
    assert!(fake.releases().is_empty());
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_bound_stops_with_a_clear_error() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    fake.inject(Fault::RateLimit {
        method: "GET",
        path_contains: "/releases",
        reset_in_secs: 3600,
    });
    let err = s.releases(&pkg()).await.unwrap_err();
    assert!(matches!(err, StoreError::RateLimited { .. }), "{err}");
}

#[tokio::test]
async fn a_wrong_token_fails_clearly_writes_nothing_and_is_never_shown() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store_with(&fake, dir.path(), "ghp_WRONG_SECRET", |_| {});
    let err = s.releases(&pkg()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::Auth(_)) && text.contains("GITHUB_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("WRONG_SECRET"));
    assert_eq!(fake.requests().len(), 1, "no retries on 401");
    assert_eq!(fake.writes(), 0);
}

#[tokio::test]
async fn pagination_finds_the_package_among_250_releases() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    for i in 0..245 {
        fake.seed_release(
            &format!("other-v1.{i}"),
            false,
            &[("other-linux-amd64.tar.gz", b"x")],
        );
    }
    for i in 0..5 {
        fake.seed_release(
            &format!("tool-v0.{i}"),
            i == 4,
            &[("tool-linux-amd64.tar.gz", b"y")],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store(&fake, dir.path());
    let releases = s.releases(&pkg()).await.unwrap();
    let versions: Vec<String> = releases.iter().map(|r| r.version.to_string()).collect();
    assert_eq!(versions, ["0.0", "0.1", "0.2", "0.3", "0.4"]);
    assert_eq!(
        releases[4].state,
        ReleaseState::Draft,
        "drafts are found by listing"
    );
    assert_eq!(s.stats().list, 3, "three pages of 100");
}

/// The request budget of a first publication and of a run with nothing new, for 3 packages ×
/// 10 versions × 4 platforms, as the store is driven (builds aside): per version one create,
/// the lock and its record, four tarballs and four records, one publish.
#[tokio::test]
async fn request_budget_for_three_packages_of_ten_versions() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let packages = ["alpha", "beta", "gamma"].map(|p| PackageName::new(p).unwrap());
    let first = store(&fake, dir.path());
    let upload = |name: String, content: String| {
        let path = dir
            .path()
            .join(&name)
            .with_extension(format!("{}.up", content.len()));
        std::fs::write(&path, content).unwrap();
        let (size, sha256) = sha256_file(&path).unwrap();
        (name, path, size, sha256)
    };
    for package in &packages {
        first.releases(package).await.unwrap();
        for minor in 0..10 {
            let version = v(&format!("1.{minor}"));
            let mut info = info(&version.to_string());
            info.package = package.clone();
            let r = first.create(&info).await.unwrap();
            info.locked = Some(hermit_pex::release::LockRecord {
                format: Some(hermit_pex::lock::LockFormat::Pylock),
                sha256: "a".repeat(64),
                size: 1,
                pins: vec![],
                pure: false,
                binaries: vec![],
                test: String::new(),
                wheel: None,
                ..Default::default()
            });
            let lock = upload(
                format!("pylock.{package}.toml"),
                format!("lock {package} {minor}"),
            );
            let mut assets = vec![lock];
            for p in Platform::ALL {
                assets.push(upload(
                    package.asset_name(p),
                    format!("{package} {minor} {p}"),
                ));
                assets.push(upload(
                    hermit_pex::release::info::record_asset(package, p),
                    format!("record {package} {minor} {p}"),
                ));
            }
            for (i, (name, path, size, sha256)) in assets.iter().enumerate() {
                let up = Upload {
                    name,
                    path,
                    size: *size,
                    sha256,
                };
                first.upload(&r, up).await.unwrap();
                if i == 0 {
                    first.record(&r, &info).await.unwrap(); // the lock, recorded
                }
            }
            first.publish(&r, &info).await.unwrap();
        }
    }
    first.refresh_cache().await.unwrap();
    let s = first.stats();
    println!(
        "first publication: {} requests ({} writes: {} create, {} upload, {} update), {} list",
        s.requests(),
        s.writes(),
        s.create,
        s.upload,
        s.update,
        s.list
    );
    assert_eq!((s.create, s.upload, s.update, s.list), (30, 270, 60, 2));

    let second = store(&fake, dir.path());
    for package in &packages {
        assert_eq!(second.releases(package).await.unwrap().len(), 10);
    }
    let s = second.stats();
    println!(
        "nothing new: {} requests, {} answered 304",
        s.requests(),
        s.not_modified
    );
    assert_eq!((s.requests(), s.not_modified, s.writes()), (1, 1, 0));
}

fn python312_on_path() -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let python = rt
        .block_on(hermit_pex::tools::find_python(
            PythonMinor::new(12).unwrap(),
        ))
        .unwrap();
    format!("{}:/usr/bin:/bin", python.parent().unwrap().display())
}

/// `sync --repository` with the real pex and a pypiserver, publishing to the fake.
#[test]
fn sync_publishes_to_github_and_the_manifest_uses_download_urls() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeGitHub::start("owner", "repo", TOKEN));
    let work = tempfile::tempdir().unwrap();
    let index = work.path().join("index");
    for version in ["1.0", "2.0"] {
        make_wheel(&index, "tool", version, &[]);
    }
    let server = PypiServer::start(&index);
    write(
        &work.path().join("python/tool/config.yaml"),
        "package: tool\nbinaries: [tool]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n",
    );
    let cache = repo_root().join("target/test-cache");
    let run = |extra: &[&str], token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hermit-pex"));
        cmd.args(["-vv", "sync", "--index-url", &server.url, "--cache-dir"])
            .arg(&cache)
            .args([
                "--repository",
                "owner/repo",
                "--github-api-url",
                &fake.api_url,
                "--github-write-interval-ms",
                "0",
            ])
            .args(extra)
            .current_dir(work.path())
            .env("HERMIT_PEX_PEX", tools_venv().join("bin/pex"))
            .env("PATH", python312_on_path())
            .env_remove("GITHUB_TOKEN");
        if let Some(t) = token {
            cmd.env("GITHUB_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // No token: a hard failure before anything is built or sent.
    let (code, _, stderr) = run(&[], None);
    assert_eq!(code, 1);
    assert!(stderr.contains("GITHUB_TOKEN is not set"), "{stderr}");
    assert!(fake.requests().is_empty());

    let (code, stdout, stderr) = run(&[], Some(TOKEN));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token leaked into the output"
    );
    let releases = fake.releases();
    assert_eq!(releases.len(), 2);
    for r in &releases {
        let tarballs = r
            .assets
            .iter()
            .filter(|a| a.name.ends_with(".tar.gz"))
            .count();
        assert!(
            !r.draft && tarballs == 4,
            "{}: {:?}",
            r.tag,
            r.assets.iter().map(|a| &a.name).collect::<Vec<_>>()
        );
        assert_eq!(
            r.assets.len(),
            10,
            "the lock, the SBOM, four tarballs and their records"
        );
        assert!(
            r.assets.iter().any(|a| a.name == "tool.cdx.json"),
            "{:?}",
            r.assets.iter().map(|a| &a.name).collect::<Vec<_>>()
        );
    }
    assert!(
        releases
            .iter()
            .all(|r| !r.body.as_deref().unwrap_or("").contains(TOKEN))
    );

    let text = std::fs::read_to_string(work.path().join("hermit/tool.hcl")).unwrap();
    assert!(
        text.contains("repository = \"https://github.com/owner/repo\""),
        "{text}"
    );
    let existing = hermit::read(&text).unwrap();
    assert_eq!(
        existing.source.as_deref(),
        Some(
            "https://github.com/owner/repo/releases/download/tool-v${version}/tool-${os}-${arch}.tar.gz"
        )
    );
    assert!(hermit::unverified(&existing, &Platform::ALL).is_empty());
    for (url, digest) in &existing.sha256sums {
        let rest = url
            .strip_prefix("https://github.com/owner/repo/releases/download/")
            .unwrap();
        let (tag, name) = rest.split_once('/').unwrap();
        let bytes = fake.asset_bytes(tag, name).unwrap();
        let path = work.path().join("check");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(&sha256_file(&path).unwrap().1, digest, "{url}");
    }

    // Nothing changed: one list request, answered 304, and no writes.
    let writes = fake.writes();
    let (code, _, stderr) = run(&[], Some(TOKEN));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("nothing to do"), "{stderr}");
    assert!(
        stderr.contains("github: 1 requests (1 list, 1 of them unchanged 304; 0 writes"),
        "{stderr}"
    );
    assert_eq!(fake.writes(), writes);
    drop(server);
}

/// `sync --manifest-github`: the run's closing `github:` line counts the manifest sink's
/// requests and retries too (releases in a directory here, so they are the only ones).
#[test]
fn the_closing_github_line_counts_the_manifest_sinks_requests_and_retries() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeGitHub::start("owner", "repo", TOKEN));
    fake.inject(Fault::Status {
        method: "GET",
        path_contains: "/contents/",
        status: 502,
    });
    let work = tempfile::tempdir().unwrap();
    let index = work.path().join("index");
    make_wheel(&index, "tool", "1.0", &[]);
    let server = PypiServer::start(&index);
    // Nothing to build (no version at or above 9.0): only the manifest is looked at.
    write(
        &work.path().join("python/tool/config.yaml"),
        "package: tool\nbinaries: [tool]\nversions:\n  - version: \"9.0\"\n    python: \"3.12\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
        .args(["sync", "--no-cache", "--index-url", &server.url])
        .args(["--manifest-github", "owner/repo", "--github-api-url"])
        .arg(&fake.api_url)
        .current_dir(work.path())
        .env("GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sent = fake.requests().len();
    assert!(
        sent >= 3,
        "the branch, its commit, the manifest twice: {sent}"
    );
    assert!(
        stderr.contains(&format!(
            "github: {sent} requests (0 list, 0 of them unchanged 304; 0 writes: 0 create, 0 update, 0 upload, 0 delete; {sent} for manifests), 1 retries, 0 rate-limit waits"
        )),
        "{stderr}"
    );
    drop(server);
}

/// A long-running controller must see what its build Jobs upload from elsewhere.
#[tokio::test]
async fn a_store_with_a_view_age_sees_uploads_made_by_others() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let controller = store_with(&fake, dir.path(), TOKEN, |c| {
        c.max_view_age = Some(Duration::ZERO)
    });
    let once = store(&fake, dir.path());
    assert!(controller.releases(&pkg()).await.unwrap().is_empty());
    assert!(once.releases(&pkg()).await.unwrap().is_empty());

    let job = store(&fake, &dir.path().join("job"));
    release_version(&job, dir.path(), "1.0").await;

    assert_eq!(
        controller.releases(&pkg()).await.unwrap().len(),
        1,
        "listed again"
    );
    assert!(
        once.releases(&pkg()).await.unwrap().is_empty(),
        "a one-run store lists once"
    );
}
