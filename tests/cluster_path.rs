//! One version through the cluster path as a cluster runs it: the real reconcile (against a
//! mocked API server) makes the draft and the Jobs; each Job's own command line, read from the
//! Job object the controller applied, runs as a process of its own (the real `hermit-pex`, the
//! real pex, a pypiserver on loopback) against the GitHub stand-in that keeps several drafts
//! per tag; the platform Jobs run at the same time and finish in any order; the controller
//! sees them through the Job list it is given, with a release view that may be stale.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::github::FakeGitHub;
use common::kube_api::{Sent, node};
use common::sandbox::python312_dir;
use common::*;
use hermit_pex::controller::jobs::{JobSettings, PlatformTable};
use hermit_pex::controller::reconcile::{Context, reconcile};
use hermit_pex::controller::resource::{PythonPackage, PythonPackageSpec};
use hermit_pex::controller::targets::Targets;
use hermit_pex::gitops::DirSink;
use hermit_pex::names::Platform;
use hermit_pex::pypi::IndexClient;
use hermit_pex::release::github::{GitHubConfig, GitHubStore, Token};
use serde_json::{Value, json};

const TOKEN: &str = "ghp_cluster_path_token";

/// A mocked API server listing `jobs` (and two Ready nodes), echoing what is applied.
fn api_server(
    pkg: PythonPackage,
    jobs: Vec<Value>,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Sent>>) {
    let nodes = vec![node("amd64", "amd64", true), node("arm64", "arm64", true)];
    common::kube_api::api_server("tools", pkg, jobs, nodes, Vec::new())
}

fn resource() -> PythonPackage {
    let spec: PythonPackageSpec = serde_norway::from_str(
        "package: tool\nbinaries: [tool]\nversions:\n  - {version: \"1.0\", python: \"3.12\"}\n",
    )
    .unwrap();
    let mut pkg = PythonPackage::new("tool", spec);
    pkg.metadata.namespace = Some("tools".into());
    pkg.metadata.uid = Some("uid-1".into());
    pkg.metadata.generation = Some(1);
    pkg
}

/// A Job object as the API server would list it, `done` or still running.
fn listed(job: &Value, done: bool) -> Value {
    let mut job = job.clone();
    job["status"] = if done {
        json!({"succeeded": 1})
    } else {
        json!({"active": 1})
    };
    job
}

fn applied_jobs(sent: &[Sent]) -> Vec<Value> {
    sent.iter()
        .filter(|(m, u, _)| m == "PATCH" && u.contains("/jobs/") && u.contains("fieldManager"))
        .map(|(_, _, b)| b.clone())
        .collect()
}

/// The Job's container as a process: its own arguments, with the pod's `/cache` mount at
/// `cache`; the token as the Secret would give it.
fn run_job(job: &Value, cache: &Path, python_dir: &Path) -> std::process::Child {
    let args: Vec<String> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| match a.as_str().unwrap() {
            "/cache" => cache.display().to_string(),
            other => other.to_owned(),
        })
        .collect();
    std::process::Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
        .args(&args)
        .env("GITHUB_TOKEN", TOKEN)
        .env("HERMIT_PEX_PEX", tools_venv().join("bin/pex"))
        .env("PATH", format!("{}:/usr/bin:/bin", python_dir.display()))
        .env_remove("HERMIT_PEX_INDEX_URL")
        .env_remove("HERMIT_PEX_CACHE_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the Job failed:\n{stderr}");
    stderr
}

/// The controller's side of the cluster path: the GitHub stand-in and the controller's store
/// on it, the index, the manifest directory; it reconciles a resource seeing the Jobs it is
/// given, through the mocked API server.
struct Controller {
    fake: FakeGitHub,
    store: Arc<GitHubStore>,
    index_url: String,
    hermit_dir: PathBuf,
    scratch: PathBuf,
    allowed_sources: Vec<String>,
    /// Last: the stand-in and the store's client go before their runtime.
    rt: tokio::runtime::Runtime,
}

impl Controller {
    fn new(work: &Path, index_url: &str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let fake = rt.block_on(FakeGitHub::start("owner", "repo", TOKEN));
        let store = {
            let mut config = GitHubConfig::new("owner", "repo");
            config.api_url = fake.api_url.clone();
            config.cache_dir = Some(work.join("controller"));
            config.write_interval = Duration::ZERO;
            config.max_view_age = Some(Duration::from_secs(30));
            let _in_runtime = rt.enter(); // the client spawns its connection pool
            Arc::new(GitHubStore::new(config, Token::new(TOKEN)).unwrap())
        };
        Self {
            rt,
            fake,
            store,
            index_url: index_url.to_owned(),
            hermit_dir: work.join("hermit"),
            scratch: work.to_owned(),
            allowed_sources: Vec::new(),
        }
    }

    fn reconcile_seeing(&self, pkg: &PythonPackage, jobs: Vec<Value>) -> Vec<Sent> {
        let _in_runtime = self.rt.enter();
        let (client, server_task) = api_server(pkg.clone(), jobs);
        let ctx = Context {
            client,
            index: IndexClient::new(&self.index_url, None).unwrap(),
            targets: Targets::new(self.store.clone(), None)
                .allowing_sources(self.allowed_sources.clone())
                .with_sink(Box::new(DirSink {
                    dir: self.hermit_dir.clone(),
                })),
            table: PlatformTable::default(),
            jobs: JobSettings {
                github_api_url: self.fake.api_url.clone(),
                index_url: self.index_url.clone(),
                ..JobSettings::new("builder", "owner/repo")
            },
            per_package: 8,
            limit: None,
            recorder: None,
            metrics: Arc::default(),
            now: || serde_json::from_value(json!("2026-12-01T10:00:00Z")).unwrap(),
            scratch: self.scratch.clone(),
            packages: None,
        };
        self.rt.block_on(async {
            reconcile(Arc::new(pkg.clone()), Arc::new(ctx))
                .await
                .unwrap();
            server_task.await.unwrap()
        })
    }
}

/// The build info in a release's body.
fn build_info_in(body: &str) -> &str {
    body.split("```json\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the body holds the build info")
}

#[test]
fn a_versions_jobs_run_at_once_as_processes_and_make_one_release_published_and_listed_once() {
    let python_dir = python312_dir();
    let work = tempfile::tempdir().unwrap();
    // A package with a native dependency that has a wheel for every platform: not pure, so
    // one lock Job, then one build Job per platform.
    let index_dir = work.path().join("index");
    for tag in [
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux_2_17_aarch64",
        "cp312-cp312-macosx_11_0_x86_64",
        "cp312-cp312-macosx_11_0_arm64",
    ] {
        make_wheel(&index_dir, "native-dep", "1.0", &["--tag", tag]);
    }
    make_wheel(&index_dir, "tool", "1.0", &["--requires", "native-dep"]);
    let server = PypiServer::start(&index_dir);
    let controller = Controller::new(work.path(), &server.url);
    let (fake, hermit_dir) = (&controller.fake, &controller.hermit_dir);
    let pkg = resource();
    let reconcile_seeing = |jobs: Vec<Value>| controller.reconcile_seeing(&pkg, jobs);
    let cache = repo_root().join("target/test-cache");

    // The controller makes the draft and one lock Job for it.
    let sent = reconcile_seeing(vec![]);
    let lock = applied_jobs(&sent);
    assert_eq!(lock.len(), 1, "{sent:?}");
    assert_eq!(
        fake.releases().len(),
        1,
        "the draft, made by the controller"
    );
    let stderr = finish(run_job(&lock[0], &cache, &python_dir));
    assert!(stderr.contains("resolving tool==1.0"), "{stderr}");

    // The lock is recorded: one build Job per platform, all at once, each its own process.
    let sent = reconcile_seeing(vec![listed(&lock[0], true)]);
    let builds = applied_jobs(&sent);
    assert_eq!(builds.len(), 4, "{sent:?}");
    let children: Vec<_> = builds
        .iter()
        .map(|j| run_job(j, &cache, &python_dir))
        .collect();
    let mut outputs = Vec::new();
    let mut jobs: Vec<Value> = vec![listed(&lock[0], true)];
    jobs.extend(builds.iter().map(|j| listed(j, false)));
    for (i, child) in children.into_iter().enumerate() {
        outputs.push(finish(child));
        // The controller looks while the others still run: nothing is published yet.
        jobs[i + 1] = listed(&builds[i], true);
        if i == 1 {
            // Two reported done, two still running (they may have uploaded by now: a version
            // whose every record is there is published, whatever its Jobs still say).
            let sent = reconcile_seeing(jobs.clone());
            assert!(
                applied_jobs(&sent).is_empty(),
                "nothing made twice: {sent:?}"
            );
            assert_eq!(fake.releases().len(), 1);
        }
    }
    for out in &outputs {
        assert!(
            !out.contains("resolving"),
            "a build Job never resolves: {out}"
        );
    }

    // The last one done: published, and listed, once.
    let sent = reconcile_seeing(jobs.clone());
    let releases = fake.releases();
    assert_eq!(releases.len(), 1, "one release for the tag");
    let release = &releases[0];
    assert!(!release.draft, "{sent:?}");
    let tarballs: Vec<&str> = release
        .assets
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(tarballs.len(), 4, "{tarballs:?}");
    let publishes = fake
        .requests()
        .iter()
        .filter(|(m, p, _)| m == "PATCH" && p.ends_with(&format!("/releases/{}", release.id)))
        .count();
    assert_eq!(publishes, 2, "the lock recorded, then one publish");
    let info = build_info_in(release.body.as_deref().unwrap());
    let info: hermit_pex::release::BuildInfo = serde_json::from_str(info).unwrap();
    let lock_sha = &info.locked.as_ref().unwrap().sha256;
    assert_eq!(info.platforms.len(), 4);
    for (p, b) in &info.platforms {
        assert_eq!(
            b.lock.as_ref(),
            Some(lock_sha),
            "{p} built from the version's lock"
        );
    }
    assert_eq!(
        info.platforms[&Platform::ALL[0]].test,
        Some(hermit_pex::release::TestOutcome::Passed {
            command: "tool --help".into()
        }),
        "tested on its own platform"
    );
    let manifest = std::fs::read_to_string(hermit_dir.join("tool.hcl")).unwrap();
    assert_eq!(manifest.matches("version \"1.0\"").count(), 1, "{manifest}");
    let sums = hermit_pex::hermit::read(&manifest).unwrap().sha256sums;
    assert_eq!(sums.len(), 4);
    for (url, digest) in sums {
        let name = url.rsplit('/').next().unwrap();
        let bytes = fake.asset_bytes(&release.tag, name).unwrap();
        let path = work.path().join("check");
        std::fs::write(&path, bytes).unwrap();
        let (_, actual) = hermit_pex::digest::sha256_file(&path).unwrap();
        assert_eq!(actual, digest, "{url}");
    }
    drop(server);
}

/// A Git-source version through the cluster path: the controller lists the repository's tags,
/// makes the draft and the lock Job; the lock Job, as a process with its own arguments, checks
/// the tag out, builds the wheel, locks and (the project being pure) builds every platform;
/// the next reconcile publishes and lists it, with the tag's commit in the build info.
#[test]
fn a_git_tag_goes_from_the_controllers_lock_job_to_a_published_listed_release() {
    let python_dir = python312_dir();
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("hello-tool");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let commit = tag_release(&repo, "1.0.0", "v1.0.0", true);
    let url = format!("file://{}", repo.display());
    // No project on the index: only what the build backend needs (pypiserver falls back to PyPI).
    let index_dir = work.path().join("index");
    make_wheel(&index_dir, "unrelated", "1.0", &[]);
    let server = PypiServer::start(&index_dir);
    let mut controller = Controller::new(work.path(), &server.url);
    controller.allowed_sources = vec![url.clone()];
    let (fake, hermit_dir) = (&controller.fake, &controller.hermit_dir);
    let spec: PythonPackageSpec = serde_norway::from_str(&format!(
        "package: hello-tool\nsource: {{git: \"{url}\", subdirectory: tools/hello}}\n\
         versions:\n  - {{version: \"1.0.0\", python: \"3.12\"}}\n"
    ))
    .unwrap();
    let mut pkg = PythonPackage::new("hello-tool", spec);
    pkg.metadata.namespace = Some("tools".into());
    pkg.metadata.uid = Some("uid-2".into());
    pkg.metadata.generation = Some(1);
    let reconcile_seeing = |jobs: Vec<Value>| controller.reconcile_seeing(&pkg, jobs);
    let cache = repo_root().join("target/test-cache");

    let sent = reconcile_seeing(vec![]);
    let lock = applied_jobs(&sent);
    assert_eq!(lock.len(), 1, "{sent:?}");
    finish(run_job(&lock[0], &cache, &python_dir));

    // Pure: the lock Job built every platform; the next look publishes and lists it.
    let sent = reconcile_seeing(vec![listed(&lock[0], true)]);
    assert!(applied_jobs(&sent).is_empty(), "no build Jobs: {sent:?}");
    let releases = fake.releases();
    assert_eq!(releases.len(), 1);
    let release = &releases[0];
    assert!(!release.draft, "published: {sent:?}");
    let names: Vec<&str> = release.assets.iter().map(|a| a.name.as_str()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("hello_tool-1.0.0-") && n.ends_with(".whl")),
        "the wheel the lock Job built: {names:?}"
    );
    assert_eq!(names.iter().filter(|n| n.ends_with(".tar.gz")).count(), 4);
    let info = build_info_in(release.body.as_deref().unwrap());
    let info: Value = serde_json::from_str(info).unwrap();
    assert_eq!(
        info["inputs"]["source"]["commit"],
        commit.as_str(),
        "{info}"
    );
    assert_eq!(info["inputs"]["source"]["tag"], "v1.0.0");
    let manifest = std::fs::read_to_string(hermit_dir.join("hello-tool.hcl")).unwrap();
    assert!(manifest.contains("version \"1.0.0\""), "{manifest}");
    drop(server);
}
