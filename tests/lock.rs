//! The lock half of issue 19 against real parts: uv locks from a real pypiserver on loopback
//! holding wheels (and sdists) the tests build; choices, purity, fetching and console scripts
//! are decided from that one lock file. `--ignored`: the same on pypi.org with black, ansible
//! and cryptography.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hermit_pex::lock::fetch::FetchError;
use hermit_pex::lock::{
    self, BinariesError, Fetcher, LockError, LockRequest, LockSettings, PlatformLock, Uv, Wanted,
};
use hermit_pex::names::{Arch, BinaryName, Os, PackageName, Platform, PythonMinor};
use hermit_pex::pypi::{Credentials, Index, Indexes};
use pep440_rs::Version;
use reqwest::Url;

const LINUX_AMD64: Platform = Platform::new(Os::Linux, Arch::Amd64);
const DARWIN_AMD64: Platform = Platform::new(Os::Darwin, Arch::Amd64);

fn py312() -> PythonMinor {
    PythonMinor::new(12).unwrap()
}

fn settings(indexes: Indexes, cache: &Path) -> LockSettings {
    LockSettings {
        uv: Uv { path: common::uv() },
        indexes,
        cache_dir: cache.to_owned(),
        timeout: Duration::from_secs(300),
    }
}

fn plain(url: &str) -> Indexes {
    Indexes::plain(Url::parse(url).unwrap())
}

/// A version to lock: `<package>==<version>` alone.
struct Job {
    package: PackageName,
    version: Version,
    requirements: Vec<String>,
}

impl Job {
    fn new(package: &str, version: &str) -> Self {
        Self {
            package: PackageName::new(package).unwrap(),
            version: version.parse().unwrap(),
            requirements: vec![format!("{package}=={version}")],
        }
    }

    fn request(&self) -> LockRequest<'_> {
        LockRequest {
            package: &self.package,
            version: &self.version,
            python: py312(),
            requirements: &self.requirements,
            project_wheel: None,
        }
    }

    /// Locked by uv from the index at `url` alone (a real pypiserver in these tests).
    async fn lock_from(&self, url: &str, cache: &Path) -> lock::Locked {
        lock::lock(&self.request(), &settings(plain(url), cache))
            .await
            .unwrap()
    }

    fn wanted<'a>(&'a self, native: &'a [Platform], binaries: &'a [BinaryName]) -> Wanted<'a> {
        Wanted {
            package: &self.package,
            version: &self.version,
            python: py312(),
            platforms: &Platform::ALL,
            native,
            binaries,
        }
    }
}

fn bins(v: &[&str]) -> Vec<BinaryName> {
    v.iter().map(|n| BinaryName::new(n).unwrap()).collect()
}

fn fetcher(indexes: Indexes, cache: &Path) -> Fetcher {
    Fetcher::new(indexes, cache, Duration::from_secs(60)).unwrap()
}

/// (a) A pure package whose index page has an sdist beside the wheel: the lock lists the
/// sdist, no platform chooses it, the version is pure; its own script is the default binary.
#[tokio::test]
async fn a_pure_package_with_an_sdist_beside_its_wheel_is_pure() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    common::make_wheel(
        &packages,
        "pure-tool",
        "1.0",
        &["--sdist", "--requires", "pure-dep>=2"],
    );
    common::make_wheel(
        &packages,
        "pure-dep",
        "2.0",
        &["--tag", "py2.py3-none-any", "--sdist", "--no-scripts"],
    );
    let server = common::PypiServer::start(&packages);
    let cache = dir.path().join("cache");
    let job = Job::new("pure-tool", "1.0");
    let locked = job.lock_from(&server.url, &cache).await;
    assert_eq!(locked.pylock.pins(), ["pure-dep==2.0", "pure-tool==1.0"]);
    assert!(
        locked.pylock.packages.iter().all(|p| p.sdist.is_some()),
        "the index's sdists are in the lock"
    );
    let fetch = fetcher(plain(&server.url), &cache);
    let d = lock::decide(&locked, &job.wanted(&[], &[]), &fetch)
        .await
        .unwrap();
    assert!(d.pure, "{:?}", d.platform_record());
    let names: Vec<Vec<String>> = Platform::ALL
        .iter()
        .map(|p| {
            d.choices
                .files(*p)
                .unwrap()
                .iter()
                .map(|c| c.file.name.clone())
                .collect()
        })
        .collect();
    for n in &names {
        assert_eq!(
            n,
            &[
                "pure_dep-2.0-py2.py3-none-any.whl",
                "pure_tool-1.0-py3-none-any.whl"
            ]
        );
    }
    let b = d.binaries.unwrap();
    assert_eq!(b.names, bins(&["pure-tool"]));
    assert_eq!(b.from[&b.names[0]].as_str(), "pure-tool");
    assert_eq!(
        fetch.stats().downloaded,
        2,
        "one wheel of each distribution"
    );
}

/// (b) A wrapper distribution whose commands are its dependency's: found and attributed,
/// another dependency's script may be configured, an unknown one is refused naming them all.
#[tokio::test]
async fn commands_that_live_in_a_dependency_are_found_and_a_wrong_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    common::make_wheel(
        &packages,
        "wrapper-tool",
        "3.0",
        &["--no-scripts", "--requires", "core-tool==1.5"],
    );
    common::make_wheel(
        &packages,
        "core-tool",
        "1.5",
        &[
            "--script",
            "core",
            "--script",
            "core-admin",
            "--requires",
            "other-lib",
        ],
    );
    common::make_wheel(&packages, "other-lib", "0.1", &["--script", "other-cmd"]);
    let server = common::PypiServer::start(&packages);
    let cache = dir.path().join("cache");
    let job = Job::new("wrapper-tool", "3.0");
    let locked = job.lock_from(&server.url, &cache).await;
    let fetch = fetcher(plain(&server.url), &cache);

    let d = lock::decide(&locked, &job.wanted(&[], &[]), &fetch)
        .await
        .unwrap();
    let b = d.binaries.unwrap();
    assert_eq!(
        b.names,
        bins(&["core", "core-admin"]),
        "the wrapper's direct requirement's scripts, not other-lib's"
    );
    assert!(b.from.values().all(|d| d.as_str() == "core-tool"));

    let configured = bins(&["other-cmd", "core-admin"]);
    let d = lock::decide(&locked, &job.wanted(&[], &configured), &fetch)
        .await
        .unwrap();
    let b = d.binaries.unwrap();
    assert_eq!(b.names, bins(&["core-admin", "other-cmd"]));
    assert_eq!(b.from[&bins(&["other-cmd"])[0]].as_str(), "other-lib");

    let wrong = bins(&["core", "wrapper-tool"]);
    let d = lock::decide(&locked, &job.wanted(&[], &wrong), &fetch)
        .await
        .unwrap();
    let e = d.binaries.unwrap_err();
    assert!(matches!(e, BinariesError::Unknown { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "binaries[1]: wrapper-tool is not a console script of any distribution locked for \
         wrapper-tool 3.0 (there are core (core-tool), core-admin (core-tool), other-cmd \
         (other-lib)): fix binaries in the config, or leave it out for wrapper-tool's own"
    );
}

/// Wheels of `native-dep` 1.0 for three platforms and only an sdist for darwin-amd64, needed
/// by the pure `needs-native` 1.0.
fn three_platform_index(packages: &Path) {
    common::make_wheel(
        packages,
        "needs-native",
        "1.0",
        &["--requires", "native-dep==1.0"],
    );
    for tag in [
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux2014_aarch64.manylinux_2_17_aarch64",
        "cp312-cp312-macosx_11_0_arm64",
    ] {
        common::make_wheel(
            packages,
            "native-dep",
            "1.0",
            &["--tag", tag, "--no-scripts"],
        );
    }
    common::make_wheel(
        packages,
        "native-dep",
        "1.0",
        &["--sdist-only", "--no-scripts"],
    );
}

/// (c) A dependency with wheels for three platforms and only an sdist for the fourth: that
/// platform is missing, naming the distribution; the others are ready, each wheel fetched once.
/// A native build of the fourth chooses the sdist.
#[tokio::test]
async fn a_platform_without_a_wheel_is_missing_naming_the_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    three_platform_index(&packages);
    let server = common::PypiServer::start(&packages);
    let cache = dir.path().join("cache");
    let job = Job::new("needs-native", "1.0");
    let locked = job.lock_from(&server.url, &cache).await;
    let fetch = fetcher(plain(&server.url), &cache);
    let d = lock::decide(&locked, &job.wanted(&[], &[]), &fetch)
        .await
        .unwrap();
    assert!(!d.pure);
    let missing: Vec<_> = d.choices.missing().collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].0, DARWIN_AMD64);
    let why = missing[0].1.to_string();
    assert_eq!(
        why,
        "darwin-amd64: no wheel for CPython 3.12 on macOS 14 or later, x86_64 of native-dep 1.0 \
         (only an sdist, built only on a native build of the platform)"
    );
    assert_eq!(
        d.platform_record()[&DARWIN_AMD64],
        PlatformLock::Missing(why)
    );
    assert_eq!(d.choices.ready().count(), 3);
    assert_eq!(d.binaries.as_ref().unwrap().names, bins(&["needs-native"]));

    // Every ready platform's files, fetched as their builds would: each file once.
    let mut all = Vec::new();
    for (_, files) in d.choices.ready() {
        let paths = fetch
            .fetch_all(files.iter().map(|c| &c.file))
            .await
            .unwrap();
        for c in files {
            let p = &paths[&c.file.sha256];
            assert_eq!(
                p,
                &cache.join("wheels").join(&c.file.sha256).join(&c.file.name)
            );
            assert_eq!(hex_sha256(p), c.file.sha256);
        }
        all.extend(files.iter().map(|c| c.file.sha256.clone()));
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4, "needs-native's wheel and three of native-dep");
    let stats = fetch.stats();
    assert_eq!(stats.downloaded, 4, "{stats:?}");

    let native = [DARWIN_AMD64];
    let d = lock::decide(&locked, &job.wanted(&native, &[]), &fetch)
        .await
        .unwrap();
    assert_eq!(d.choices.missing().count(), 0);
    let darwin = d.choices.files(DARWIN_AMD64).unwrap();
    assert_eq!(darwin[0].file.name, "native_dep-1.0.tar.gz");
    assert!(darwin[0].is_sdist());
}

/// (d) One lock file per version: every platform's choice comes from it and the same file
/// read back (a release asset, elsewhere) chooses the same; the cached lock is used while its
/// inputs are unchanged (no index needed), a fresh lock of the same inputs has the same bytes.
#[tokio::test]
async fn every_platform_chooses_from_one_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    three_platform_index(&packages);
    let cache = dir.path().join("cache");
    let job = Job::new("needs-native", "1.0");
    let server = common::PypiServer::start(&packages);
    let s = settings(plain(&server.url), &cache);
    let start = Instant::now();
    let locked = lock::lock(&job.request(), &s).await.unwrap();
    eprintln!("uv lock, cold: {:?}", start.elapsed());
    let fresh = lock::relock(&job.request(), &s).await.unwrap();
    assert_eq!(fresh.path, locked.path, "a relock replaces the cached lock");
    assert_eq!(fresh.sha256, locked.sha256, "same inputs, same bytes");
    drop(server);

    let again = lock::lock(&job.request(), &s).await.unwrap();
    assert_eq!(again.sha256, locked.sha256, "from the cache: no index up");
    let e = lock::relock(&job.request(), &s).await.unwrap_err();
    assert!(matches!(e, LockError::Resolve { .. }), "{e}");
    assert!(
        lock::lock(&job.request(), &s).await.is_ok(),
        "a failed relock leaves the cached lock"
    );

    let asset = dir
        .path()
        .join("release")
        .join(lock::asset_name(&job.package));
    std::fs::create_dir_all(asset.parent().unwrap()).unwrap();
    std::fs::copy(&locked.path, &asset).unwrap();
    let read = lock::read(&asset).await.unwrap();
    assert_eq!(read.sha256, locked.sha256);
    let here = lock::choose_all(&locked.pylock, &Platform::ALL, py312(), &[]);
    let there = lock::choose_all(&read.pylock, &Platform::ALL, py312(), &[]);
    assert_eq!(here.record(), there.record());
    assert_eq!(here.record().len(), 4, "every platform: files or a reason");
    let digests: Vec<&str> = here
        .ready()
        .flat_map(|(_, f)| f.iter().map(|c| c.file.sha256.as_str()))
        .collect();
    for d in digests {
        assert!(
            read.pylock
                .packages
                .iter()
                .flat_map(|p| &p.wheels)
                .any(|w| w.file.sha256 == d),
            "{d} is not in the lock file"
        );
    }

    // Other inputs, another lock: a new extra package.
    let mut other = Job::new("needs-native", "1.0");
    other.requirements.push("native-dep".into());
    let server = common::PypiServer::start(&packages);
    let s = settings(plain(&server.url), &cache);
    let o = lock::lock(&other.request(), &s).await.unwrap();
    assert_ne!(o.path, locked.path);
}

/// A private index: uv gets the credentials through NETRC only, the lock and every error are
/// free of them; the fetcher sends them to the index's own origin. Without them: refused.
#[tokio::test]
async fn a_private_index_is_locked_and_fetched_with_credentials_kept_out_of_sight() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    common::make_wheel(&packages, "secret-tool", "1.0", &["--sdist"]);
    let password = "pa55-w0rd-NOT-for-logs";
    let server = common::PypiServer::start_with_auth(&packages, "alice", password);
    let cache = dir.path().join("cache");
    let job = Job::new("secret-tool", "1.0");

    let e = lock::lock(&job.request(), &settings(plain(&server.url), &cache))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("401") || e.to_lowercase().contains("unauthorized"),
        "{e}"
    );

    let index = Index::resolve(
        Url::parse(&server.url).unwrap(),
        Some(Credentials::new("alice", password)),
    );
    let indexes = Indexes::new(index, vec![]).unwrap();
    let locked = lock::lock(&job.request(), &settings(indexes.clone(), &cache))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&locked.path).unwrap();
    assert!(
        !text.contains(password) && !text.contains("alice"),
        "{text}"
    );
    let fetch = fetcher(indexes, &cache);
    let d = lock::decide(&locked, &job.wanted(&[], &[]), &fetch)
        .await
        .unwrap();
    assert_eq!(d.binaries.unwrap().names, bins(&["secret-tool"]));
    assert_eq!(fetch.stats().downloaded, 1);

    let e = fetcher(plain(&server.url), &dir.path().join("other-cache"))
        .fetch(&d.choices.files(LINUX_AMD64).unwrap()[0].file)
        .await
        .unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 401, .. }), "{e}");
    assert!(e.to_string().contains("needs credentials"), "{e}");
    for file in walk(&cache) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(password),
            "{} holds the password",
            file.display()
        );
    }
}

/// A digest that does not match what the index serves: an error naming the file and both
/// digests, nothing kept.
#[tokio::test]
async fn a_digest_mismatch_names_the_file_and_both_digests() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    common::make_wheel(&packages, "tool", "1.0", &[]);
    let server = common::PypiServer::start(&packages);
    let cache = dir.path().join("cache");
    let job = Job::new("tool", "1.0");
    let locked = job.lock_from(&server.url, &cache).await;
    let mut file = locked.pylock.packages[0].wheels[0].file.clone();
    let real = file.sha256.clone();
    file.sha256 = "e".repeat(64);
    let e = fetcher(plain(&server.url), &cache)
        .fetch(&file)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tool-1.0-py3-none-any.whl") && e.contains(&real) && e.contains(&"e".repeat(64)),
        "{e}"
    );
    let kept = cache.join("wheels").join("e".repeat(64));
    assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 0, "nothing kept");
}

/// A Git source's own wheel, found through --find-links: the lock names it by a file URL of
/// the machine that locked; the fetcher finds it by name and digest wherever it is now.
#[tokio::test]
async fn a_projects_own_wheel_is_locked_through_find_links_and_found_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    common::make_wheel(&packages, "dep-a", "1.2", &["--no-scripts"]);
    let server = common::PypiServer::start(&packages);
    let built = dir.path().join("built");
    let name = common::make_wheel(&built, "hello-tool", "1.0", &["--requires", "dep-a>=1"]);
    let wheel = built.join(&name);
    let cache = dir.path().join("cache");
    let job = Job::new("hello-tool", "1.0");
    let req = LockRequest {
        project_wheel: Some(&wheel),
        ..job.request()
    };
    let locked = lock::lock(&req, &settings(plain(&server.url), &cache))
        .await
        .unwrap();
    let hello = &locked
        .pylock
        .packages
        .iter()
        .find(|p| p.name.as_str() == "hello-tool")
        .unwrap()
        .wheels[0]
        .file;
    assert!(hello.is_local(), "{hello:?}");

    let elsewhere = dir.path().join("asset").join(&name);
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::rename(&wheel, &elsewhere).unwrap();
    let fetch = fetcher(plain(&server.url), &cache).with_local_file(&elsewhere);
    let d = lock::decide(&locked, &job.wanted(&[], &[]), &fetch)
        .await
        .unwrap();
    assert!(d.pure);
    assert_eq!(d.binaries.unwrap().names, bins(&["hello-tool"]));
    let stats = fetch.stats();
    assert_eq!((stats.copied, stats.downloaded), (1, 1), "{stats:?}");
}

/// A dependency that pins a yanked release exactly (aider-chat 0.83.1 pins configargparse
/// 1.7, yanked): pip takes it (PEP 592), uv only when asked by name, so the lock asks for it
/// through a constraint. Served as PEP 691 JSON with the file's `yanked` reason.
#[tokio::test]
async fn a_yanked_release_a_dependency_pins_exactly_is_locked() {
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    let tool = common::make_wheel(
        &wheels,
        "yank-tool",
        "1.0",
        &["--requires", "yanked-dep==1.0"],
    );
    let dep_1 = common::make_wheel(&wheels, "yanked-dep", "1.0", &["--no-scripts"]);
    let dep_2 = common::make_wheel(&wheels, "yanked-dep", "2.0", &["--no-scripts"]);
    let mut pages = HashMap::new();
    let file = |name: &str, yanked: Option<&str>| {
        let bytes = std::fs::read(wheels.join(name)).unwrap();
        let mut f = serde_json::json!({
            "filename": name,
            "url": format!("../../files/{name}"),
            "hashes": {"sha256": hex_sha256(&wheels.join(name))},
            "size": bytes.len(),
        });
        if let Some(reason) = yanked {
            f["yanked"] = reason.into();
        }
        (f, bytes)
    };
    let mut project = |name: &str, versions: &[&str], files: Vec<(serde_json::Value, Vec<u8>)>| {
        let listing: Vec<serde_json::Value> = files.iter().map(|(f, _)| f.clone()).collect();
        for (f, bytes) in files {
            pages.insert(
                format!("/files/{}", f["filename"].as_str().unwrap()),
                common::Page {
                    content_type: "application/octet-stream",
                    body: bytes,
                    etag: None,
                },
            );
        }
        let body = serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": name,
            "files": listing,
            "versions": versions,
        });
        pages.insert(
            format!("/simple/{name}/"),
            common::Page {
                content_type: "application/vnd.pypi.simple.v1+json",
                body: serde_json::to_vec(&body).unwrap(),
                etag: None,
            },
        );
    };
    project("yank-tool", &["1.0"], vec![file(&tool, None)]);
    project(
        "yanked-dep",
        &["1.0", "2.0"],
        vec![file(&dep_1, Some("broken metadata")), file(&dep_2, None)],
    );
    let server = common::ReplayServer::start(pages).await;
    let cache = dir.path().join("cache");
    let job = Job::new("yank-tool", "1.0");
    let locked = job.lock_from(&server.url, &cache).await;
    assert_eq!(locked.pylock.pins(), ["yank-tool==1.0", "yanked-dep==1.0"]);
}

/// The test venv's uv is the one the lock pins.
#[tokio::test]
async fn the_test_tools_pin_the_locks_uv() {
    let uv = Uv { path: common::uv() };
    assert_eq!(uv.version().await.as_deref(), Some(lock::UV_VERSION));
    let tools = std::fs::read_to_string(common::repo_root().join("scripts/test-tools.sh")).unwrap();
    let pin = format!("uv=={}", lock::UV_VERSION);
    assert!(
        tools
            .lines()
            .any(|l| l.starts_with("pins=") && l.contains(&pin)),
        "scripts/test-tools.sh does not pin {pin}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn hex_sha256(p: &Path) -> String {
    hermit_pex::digest::sha256_hex(std::fs::read(p).unwrap())
}

// ---- pypi.org (opt-in: `cargo test --test lock -- --ignored --nocapture`) ----

/// Locks `job` from pypi.org and decides for all four platforms, printing what was chosen.
async fn on_pypi(job: &Job, binaries: &[BinaryName]) -> lock::Decision {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let s = settings(plain("https://pypi.org/simple/"), &cache);
    let start = Instant::now();
    let locked = lock::lock(&job.request(), &s).await.unwrap();
    let cold = start.elapsed();
    let start = Instant::now();
    lock::relock(&job.request(), &s).await.unwrap();
    let warm = start.elapsed();
    eprintln!(
        "{} {}: uv lock cold {cold:.2?}, relock with uv's cache {warm:.2?}; {} distributions, {} bytes",
        job.package,
        job.version,
        locked.pylock.packages.len(),
        locked.size
    );
    let fetch = fetcher(plain("https://pypi.org/simple/"), &cache);
    let start = Instant::now();
    let d = lock::decide(&locked, &job.wanted(&[], binaries), &fetch)
        .await
        .unwrap();
    eprintln!(
        "decide (choose + fetch {} wheels + scripts): {:.2?}",
        fetch.stats().downloaded,
        start.elapsed()
    );
    for (p, r) in &d.choices.platforms {
        match r {
            Ok(files) => eprintln!(
                "  {p}: {}",
                files
                    .iter()
                    .map(|c| c.file.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Err(m) => eprintln!("  {m}"),
        }
    }
    eprintln!("  pure: {}; binaries: {:?}", d.pure, d.binaries);
    d
}

#[tokio::test]
#[ignore = "needs pypi.org"]
async fn pypi_black() {
    let d = on_pypi(&Job::new("black", "26.10.1"), &[]).await;
    assert_eq!(d.choices.ready().count(), 4);
    assert!(!d.pure, "black ships mypyc-compiled wheels");
    let linux = d.choices.files(LINUX_AMD64).unwrap();
    assert!(
        linux.iter().any(|c| c
            .file
            .name
            .starts_with("black-26.10.1-cp312-cp312-manylinux")),
        "{linux:?}"
    );
    assert_eq!(d.binaries.unwrap().names, bins(&["black", "blackd"]));
}

#[tokio::test]
#[ignore = "needs pypi.org"]
async fn pypi_ansible_commands_come_from_ansible_core() {
    let ten = bins(&[
        "ansible",
        "ansible-config",
        "ansible-console",
        "ansible-doc",
        "ansible-galaxy",
        "ansible-inventory",
        "ansible-playbook",
        "ansible-pull",
        "ansible-test",
        "ansible-vault",
    ]);
    let d = on_pypi(&Job::new("ansible", "14.5.0"), &ten).await;
    let b = d.binaries.unwrap();
    assert_eq!(b.names.len(), 10);
    assert!(
        b.from.values().all(|d| d.as_str() == "ansible-core"),
        "{b:?}"
    );
}

#[tokio::test]
#[ignore = "needs pypi.org"]
async fn pypi_cryptography_has_no_macos_x86_64_wheel() {
    let d = on_pypi(&Job::new("cryptography", "51.0.1"), &[]).await;
    let missing: Vec<_> = d.choices.missing().map(|(p, _)| p).collect();
    assert_eq!(missing, [DARWIN_AMD64]);
    let why = d.choices.missing().next().unwrap().1.to_string();
    assert!(why.contains("cryptography 51.0.1"), "{why}");
    assert_eq!(d.choices.ready().count(), 3);
}

/// aider-chat 0.83.1 depends on pyperclip, published as an sdist only: no platform has a
/// wheel of it, so only a native build (here: linux-amd64) can exist without building it
/// elsewhere.
#[tokio::test]
#[ignore = "needs pypi.org"]
async fn pypi_aider_chat_needs_an_sdist_built_natively() {
    let job = Job::new("aider-chat", "0.83.1");
    let d = on_pypi(&job, &bins(&["aider"])).await;
    for (p, m) in d.choices.missing() {
        assert!(m.to_string().contains("pyperclip 1.9.0"), "{p}: {m}");
    }
    assert_eq!(d.choices.ready().count(), 0);
    assert_eq!(
        d.binaries.unwrap().names,
        bins(&["aider"]),
        "decided even with no platform ready"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = settings(plain("https://pypi.org/simple/"), &dir.path().join("cache"));
    let locked = lock::lock(&job.request(), &s).await.unwrap();
    let native = lock::choose_all(&locked.pylock, &Platform::ALL, py312(), &[LINUX_AMD64]);
    let linux = native.files(LINUX_AMD64).unwrap();
    assert!(
        linux
            .iter()
            .any(|c| c.is_sdist() && c.name.as_str() == "pyperclip")
    );
    assert_eq!(native.ready().count(), 1);
}

/// uv installs itself on first use under the cache (`pip install uv==<pin>` into a venv made by
/// a CPython found here), and is found there the second time. Needs pypi.org and no
/// HERMIT_PEX_UV: `env -u HERMIT_PEX_UV cargo test --test lock uv_installs -- --ignored`.
#[tokio::test]
#[ignore = "needs pypi.org and HERMIT_PEX_UV unset"]
async fn uv_installs_itself_on_first_use() {
    assert!(
        std::env::var_os("HERMIT_PEX_UV").is_none(),
        "unset HERMIT_PEX_UV for this test"
    );
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let uv = Uv::locate(dir.path()).await.unwrap();
    eprintln!("installed in {:.2?}", start.elapsed());
    assert_eq!(
        uv.path,
        dir.path()
            .join(format!("tools/uv-{}/bin/uv", lock::UV_VERSION))
    );
    assert_eq!(uv.version().await.as_deref(), Some(lock::UV_VERSION));
    let start = Instant::now();
    let again = Uv::locate(dir.path()).await.unwrap();
    assert_eq!(again.path, uv.path);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "found, not installed again"
    );
}
