//! The index client and the planner against real index servers on loopback: pypiserver (PEP 503
//! HTML) with wheels built here, and a replay of a pypi.org PEP 691 JSON response with ETags.

mod common;

use std::time::Duration;

use common::*;
use hermit_pex::names::PackageName;
use hermit_pex::plan::{PlanOptions, plan};
use hermit_pex::pypi::{IndexClient, IndexError, RetryPolicy};
use hermit_pex::spec;

const TINY_VERSIONS: &[&str] = &[
    "1.0",
    "1.2.0",
    "1.10.0",
    "2.0rc1",
    "2.0",
    "2.0.post1",
    "2024.1",
];

fn tiny_index() -> (tempfile::TempDir, PypiServer) {
    let dir = tempfile::tempdir().unwrap();
    for v in TINY_VERSIONS {
        make_wheel(dir.path(), "tiny-tool", v, &["--requires-python", ">=3.8"]);
    }
    let server = PypiServer::start(dir.path());
    (dir, server)
}

fn tiny_spec(extra: &str) -> spec::PackageSpec {
    let yaml = format!(
        "package: tiny_tool\nbinaries: [tiny-tool]\nversions:\n  - {{version: \"1.2.0\", python: \"3.11\"}}\n  - {{version: \"2.0\", python: \"3.12\"}}\n{extra}"
    );
    spec::parse(&yaml).unwrap()
}

fn pkg(name: &str) -> PackageName {
    PackageName::new(name).unwrap()
}

#[tokio::test]
async fn pypiserver_index_is_planned_in_pep440_order() {
    let (_dir, server) = tiny_index();
    let client = IndexClient::new(&server.url, None).unwrap();
    let project = client.project(&pkg("tiny-tool")).await.unwrap();
    let mut versions: Vec<String> = project
        .versions()
        .iter()
        .map(|v| v.version.to_string())
        .collect();
    versions.sort();
    let mut want: Vec<String> = TINY_VERSIONS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(versions, want);

    let p = plan(
        &tiny_spec(""),
        &project.versions(),
        &[],
        &[],
        &PlanOptions::default(),
    );
    let listed: Vec<(String, String)> = p
        .versions
        .iter()
        .map(|vp| (vp.version.to_string(), vp.python.to_string()))
        .collect();
    let want = [
        ("2024.1", "3.12"),
        ("2.0.post1", "3.12"),
        ("2.0", "3.12"),
        ("1.10.0", "3.11"),
        ("1.2.0", "3.11"),
    ];
    assert_eq!(listed, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert_eq!(p.count(hermit_pex::plan::VersionStatus::New), 5);

    let p = plan(
        &tiny_spec("prereleases: true\nexclude: [\"2024.1\"]\n"),
        &project.versions(),
        &[],
        &[],
        &Default::default(),
    );
    let listed: Vec<String> = p.versions.iter().map(|vp| vp.version.to_string()).collect();
    assert_eq!(listed, ["2.0.post1", "2.0", "2.0rc1", "1.10.0", "1.2.0"]);
}

#[tokio::test]
async fn an_unknown_project_is_a_clear_not_found() {
    let (_dir, server) = tiny_index();
    let client = IndexClient::new(&server.url, None).unwrap();
    let err = client.project(&pkg("no-such-tool")).await.unwrap_err();
    assert!(matches!(err, IndexError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-tool"), "{err}");
}

#[tokio::test]
async fn recorded_pypi_json_is_read_and_revalidated_with_a_304() {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let cache = tempfile::tempdir().unwrap();

    let first = IndexClient::new(&server.url, Some(cache.path().to_owned())).unwrap();
    let project = first.project(&pkg("pypiapijson")).await.unwrap();
    assert!(!project.not_modified);
    let versions: Vec<String> = project
        .versions()
        .iter()
        .map(|v| v.version.to_string())
        .collect();
    assert!(
        !versions.contains(&"1.7".to_owned()),
        "yanked-only versions are left out"
    );
    assert_eq!(versions.first().map(String::as_str), Some("1.5"));
    assert_eq!(versions.len(), 16);
    {
        let state = server.state.lock().unwrap();
        assert!(state.last_headers["accept"].starts_with("application/vnd.pypi.simple.v1+json"));
    }

    // A new client, as in a second run: it sends the ETag and reads the cache on 304.
    let second = IndexClient::new(&server.url, Some(cache.path().to_owned())).unwrap();
    let again = second.project(&pkg("pypiapijson")).await.unwrap();
    assert!(again.not_modified);
    assert_eq!(again.files, project.files);
    assert_eq!(server.statuses(), [200, 304]);
    assert_eq!(second.stats().not_modified, 1);
    let state = server.state.lock().unwrap();
    assert_eq!(
        state.last_headers["if-none-match"],
        "\"fzG4y6kSBsmcCgHyuyo3Pg\""
    );
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(1),
    }
}

#[tokio::test]
async fn server_errors_and_429_are_retried_with_backoff() {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    server.state.lock().unwrap().faults = vec![(503, None), (429, Some("0")), (502, None)];
    let client = IndexClient::new(&server.url, None)
        .unwrap()
        .with_retry(quick_retries());
    let project = client.project(&pkg("pypiapijson")).await.unwrap();
    assert_eq!(project.versions().len(), 16);
    assert_eq!(server.statuses(), [503, 429, 502, 200]);
    assert_eq!(client.stats().retries, 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    server.state.lock().unwrap().faults = vec![(500, None); 10];
    let client = IndexClient::new(&server.url, None)
        .unwrap()
        .with_retry(quick_retries());
    let err = client.project(&pkg("pypiapijson")).await.unwrap_err();
    assert!(
        matches!(err, IndexError::Status { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(server.statuses().len(), 4);
}

#[tokio::test]
async fn a_refused_connection_is_reported_not_hung() {
    let url = format!("http://127.0.0.1:{}/simple/", free_port());
    let client = IndexClient::new(&url, None)
        .unwrap()
        .with_retry(quick_retries());
    let err = client.project(&pkg("tiny-tool")).await.unwrap_err();
    assert!(matches!(err, IndexError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

const GOOD: &str = "package: tiny-tool\nbinaries: [tiny-tool]\nversions:\n  - version: \"2.0\"\n    python: \"3.12\"\n";

#[test]
fn plan_reports_every_invalid_config_and_still_plans_the_valid_ones() {
    let (_dir, server) = tiny_index();
    let work = tempfile::tempdir().unwrap();
    let py = work.path().join("python");
    write(&py.join("tiny-tool/config.yaml"), GOOD);
    write(
        &py.join("float/config.yaml"),
        "package: tiny-tool\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: 3.10\n",
    );
    write(
        &py.join("inject/config.yaml"),
        "package: \"x; rm -rf /\"\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n",
    );
    write(
        &py.join("typo/config.yaml"),
        &format!("{GOOD}prerelease: true\n"),
    );
    write(
        &py.join("missing/config.yaml"),
        "package: no-such-tool\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n",
    );

    let (code, stdout, stderr) = hermit_pex(
        &["plan", "--no-cache", "--index-url", &server.url],
        work.path(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("tiny-tool"), "{stdout}");
    assert!(
        stdout.contains("2024.1") && stdout.contains("2.0.post1"),
        "{stdout}"
    );
    for (file, field) in [
        ("python/float/config.yaml", "versions[0].python"),
        ("python/inject/config.yaml", "package"),
        ("python/typo/config.yaml", "prerelease"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("{file} not reported:\n{stderr}"));
        assert!(line.contains(field), "{line}");
    }
    assert!(
        stderr.contains("python/missing/config.yaml: no-such-tool: no such project"),
        "{stderr}"
    );
}

#[test]
fn plan_json_is_machine_readable() {
    let (_dir, server) = tiny_index();
    let work = tempfile::tempdir().unwrap();
    write(&work.path().join("tiny.yaml"), GOOD);
    let (code, stdout, stderr) = hermit_pex(
        &[
            "plan",
            "tiny.yaml",
            "--no-cache",
            "--index-url",
            &server.url,
            "--format",
            "json",
            "--latest",
            "2",
        ],
        work.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let plan = &report["packages"][0]["plan"];
    assert_eq!(plan["package"], "tiny-tool");
    let versions: Vec<&str> = plan["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2024.1", "2.0.post1"]);
    assert_eq!(plan["versions"][0]["steps"][0]["step"], "create");
    assert_eq!(plan["versions"][0]["status"], "new");
    assert_eq!(plan["versions"][0]["build"][0], "linux-amd64");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_plan_run_costs_a_304() {
    let server = ReplayServer::start(recorded_pypiapijson()).await;
    let work = tempfile::tempdir().unwrap();
    write(
        &work.path().join("python/pypiapijson/config.yaml"),
        "package: pypiapijson\nbinaries: [pypiapijson]\nversions:\n  - version: \"2.0\"\n    python: \"3.12\"\n",
    );
    let cache = work.path().join("cache");
    let args = [
        "plan",
        "--index-url",
        &server.url,
        "--cache-dir",
        cache.to_str().unwrap(),
    ]
    .map(str::to_owned);
    let run = |args: [String; 5], cwd: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || hermit_pex(&args.each_ref().map(String::as_str), &cwd))
    };
    let (code, _, first) = run(args.clone(), work.path().to_owned()).await.unwrap();
    assert_eq!(code, 0, "{first}");
    assert!(
        first.contains("1 pages fetched, 0 unchanged (304)"),
        "{first}"
    );
    let (code, stdout, second) = run(args, work.path().to_owned()).await.unwrap();
    assert_eq!(code, 0, "{second}");
    assert!(
        second.contains("0 pages fetched, 1 unchanged (304)"),
        "{second}"
    );
    assert!(stdout.contains("2.3") && stdout.contains("2.2"), "{stdout}");
    assert_eq!(server.statuses(), [200, 304]);
}

/// Opt-in: the real pypi.org (`cargo test -- --ignored`).
#[tokio::test]
#[ignore = "needs pypi.org"]
async fn aider_chat_on_pypi_org() {
    let client = IndexClient::new(hermit_pex::pypi::DEFAULT_INDEX_URL, None).unwrap();
    let project = client.project(&pkg("aider-chat")).await.unwrap();
    let spec = spec::load(&repo_root().join("python/aider-chat/config.yaml"))
        .unwrap()
        .spec;
    let p = plan(
        &spec,
        &project.versions(),
        &[],
        &[],
        &PlanOptions::default(),
    );
    assert!(p.versions.len() >= 12, "{} versions", p.versions.len());
    assert!(p.versions.windows(2).all(|w| w[0].version > w[1].version));
    assert!(
        p.versions
            .iter()
            .all(|vp| vp.python.to_string() == "3.12" && vp.build.len() == 4)
    );
}
