//! `sync --repository` killed with SIGKILL at pseudo-random points, against the GitHub stand-in
//! (several drafts per tag allowed, get-by-tag blind to drafts), then run again: after every
//! run, killed or not, no published release lacks its build info; once a run completes, there
//! is one release per tag and the manifest's digests are the assets' own.

mod common;

use std::time::{Duration, Instant};

use common::github::FakeGitHub;
use common::*;
use hermit_pex::names::Platform;

const TOKEN: &str = "ghp_kill_matrix";
/// Kills, each followed by a run that is let finish.
const KILLS: usize = 10;

/// xorshift: the same points every run, so a failure can be run again.
struct Points(u64);

impl Points {
    fn next_millis(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        300 + self.0 % max
    }
}

fn python312_on_path() -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let python = rt
        .block_on(hermit_pex::tools::find_python("3.12".parse().unwrap()))
        .expect("CPython 3.12");
    format!("{}:/usr/bin:/bin", python.parent().unwrap().display())
}

#[test]
fn sync_killed_anywhere_leaves_one_release_per_tag_complete_build_info_and_true_digests() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeGitHub::start("owner", "kill", TOKEN));
    let work = tempfile::tempdir().unwrap();
    let index = work.path().join("index");
    for v in ["1.0", "2.0"] {
        make_wheel(&index, "tiny-tool", v, &["--script", "tiny-tool"]);
    }
    for tag in [
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux_2_17_aarch64",
        "cp312-cp312-macosx_11_0_x86_64",
        "cp312-cp312-macosx_11_0_arm64",
    ] {
        make_wheel(&index, "native-dep", "1.0", &["--tag", tag]);
    }
    make_wheel(&index, "needs-native", "1.0", &["--requires", "native-dep"]);
    let server = PypiServer::start(&index);
    for (package, binary) in [("tiny-tool", "tiny-tool"), ("needs-native", "needs-native")] {
        write(
            &work.path().join(format!("python/{package}/config.yaml")),
            &format!(
                "package: {package}\nbinaries: [{binary}]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n"
            ),
        );
    }
    // pex's caches are shared with the other tests (warm); the release list cache is this
    // repository's own.
    let cache = repo_root().join("target/test-cache");
    let path = python312_on_path();
    let sync = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hermit-pex"));
        cmd.args(["sync", "--index-url", &server.url, "--cache-dir"])
            .arg(&cache)
            .args([
                "--repository",
                "owner/kill",
                "--github-api-url",
                &fake.api_url,
                "--github-write-interval-ms",
                "150",
            ])
            .current_dir(work.path())
            .env("GITHUB_TOKEN", TOKEN)
            .env("HERMIT_PEX_PEX", tools_venv().join("bin/pex"))
            .env("PATH", &path)
            .env_remove("HERMIT_PEX_INDEX_URL")
            .env_remove("HERMIT_PEX_CACHE_DIR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let check_published = |when: &str| {
        for r in fake.releases().iter().filter(|r| !r.draft) {
            let info = build_info(r.body.as_deref().unwrap_or(""))
                .unwrap_or_else(|| panic!("{when}: {} published without build info", r.tag));
            assert_eq!(
                info.incomplete(&Platform::ALL),
                None,
                "{when}: {} published with incomplete build info",
                r.tag
            );
        }
    };

    let mut points = Points(0x9e37_79b9_7f4a_7c15);
    let mut kills = Vec::new();
    for round in 0..KILLS {
        let wait = Duration::from_millis(points.next_millis(9_000));
        let writes = fake.writes();
        let mut child = sync().spawn().unwrap();
        let started = Instant::now();
        while started.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();
        kills.push((wait.as_millis(), killed, fake.writes() - writes));
        check_published(&format!("after kill {round} at {wait:?}"));

        // Run again to the end.
        let out = sync().output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {stderr}");
        check_published(&format!("after rerun {round}"));
        let releases = fake.releases();
        let mut tags: Vec<&str> = releases.iter().map(|r| r.tag.as_str()).collect();
        tags.sort();
        assert_eq!(
            tags,
            ["needs-native-v1.0", "tiny-tool-v1.0", "tiny-tool-v2.0"],
            "round {round}: one release per tag"
        );
        assert!(releases.iter().all(|r| !r.draft), "round {round}: {stderr}");
        for package in ["tiny-tool", "needs-native"] {
            let text =
                std::fs::read_to_string(work.path().join(format!("hermit/{package}.hcl"))).unwrap();
            let sums = hermit_pex::hermit::read(&text).unwrap().sha256sums;
            assert!(!sums.is_empty());
            for (url, digest) in sums {
                let rest = url
                    .strip_prefix("https://github.com/owner/kill/releases/download/")
                    .unwrap();
                let (tag, name) = rest.split_once('/').unwrap();
                let bytes = fake.asset_bytes(tag, name).unwrap();
                let file = work.path().join("digest-check");
                std::fs::write(&file, bytes).unwrap();
                let (_, actual) = hermit_pex::digest::sha256_file(&file).unwrap();
                assert_eq!(actual, digest, "round {round}: {url}");
            }
        }
        // Start the next round from nothing published, so every kill meets work to do.
        fake.state.lock().unwrap().releases.clear();
        fake.state.lock().unwrap().burnt_tags.clear();
        let _ = std::fs::remove_dir_all(work.path().join("hermit"));
        let _ = std::fs::remove_dir_all(cache.join("github/owner-kill"));
    }
    let killed = kills.iter().filter(|k| k.1).count();
    println!(
        "kill matrix: {killed} of {KILLS} runs killed midway (after ms, killed, GitHub writes before the kill): {kills:?}"
    );
    assert!(
        killed >= KILLS / 2,
        "most runs must be killed midway: {kills:?}"
    );
    drop(server);
}

fn build_info(body: &str) -> Option<hermit_pex::release::BuildInfo> {
    let json = body.split("```json\n").nth(1)?.split("\n```").next()?;
    serde_json::from_str(json).ok()
}
