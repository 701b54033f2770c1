use super::*;
use crate::names::{Arch, Os};
use crate::plan::{PlanOptions, Work, WorkKind, plan};
use crate::pypi::IndexVersion;
use crate::release::info::{missing_asset, record_asset};
use crate::release::{Asset, BuildInfo, LockRecord, Release, ReleaseId, ReleaseState};

fn time(s: &str) -> Time {
    serde_json::from_value(serde_json::json!(s)).unwrap()
}

fn spec() -> crate::spec::PackageSpec {
    crate::spec::parse(
        "package: tool\nbinaries: [tool]\nversions:\n  - {version: \"1.0\", python: \"3.12\"}\n",
    )
    .unwrap()
}

fn index(versions: &[&str]) -> Vec<IndexVersion> {
    versions
        .iter()
        .map(|v| IndexVersion {
            git: None,
            version: v.parse().unwrap(),
            requires_python: None,
        })
        .collect()
}

fn asset(name: String) -> Asset {
    Asset {
        name,
        size: 1,
        sha256: Some("a".repeat(64)),
        uploaded: true,
    }
}

/// A release of `version` made for `spec()`, locked, with `platforms` built.
fn release(version: &str, state: ReleaseState, platforms: &[Platform]) -> Release {
    let package = crate::names::PackageName::new("tool").unwrap();
    let v: Version = version.parse().unwrap();
    let inputs = crate::plan::inputs(
        &spec(),
        &IndexVersion::new(v.clone()),
        "3.12".parse().unwrap(),
    );
    let mut info = BuildInfo::new(&package, &v, inputs);
    info.locked = Some(LockRecord {
        format: Some(crate::lock::LockFormat::Pylock),
        sha256: "a".repeat(64),
        size: 1,
        pins: vec![],
        pure: false,
        binaries: vec![],
        test: "tool --help".into(),
        wheel: None,
        ..Default::default()
    });
    let mut assets = vec![asset(format!("pylock.{package}.toml"))];
    for p in platforms {
        assets.push(asset(package.asset_name(*p)));
        assets.push(asset(record_asset(&package, *p)));
    }
    Release {
        id: ReleaseId(format!("r{version}")),
        tag: package.tag(&v),
        version: v,
        state,
        order: 0,
        assets,
        info: Some(info),
    }
}

fn released(version: &str) -> Release {
    release(version, ReleaseState::Published, &Platform::ALL)
}

fn failed(version: &str, platform: Platform, reason: &str) -> Work {
    Work {
        version: version.parse().unwrap(),
        release: ReleaseId(format!("r{version}")),
        kind: WorkKind::Build(platform),
        state: WorkState::Failed {
            reason: reason.into(),
            message: "exit 137".into(),
        },
    }
}

fn observed<'a>(
    plan: &'a Plan,
    running: u32,
    previous: Option<&'a PythonPackageStatus>,
) -> Observed<'a> {
    Observed {
        generation: 3,
        plan: Some(plan),
        running,
        no_node: &[],
        trouble: &[],
        suspended: false,
        error: None,
        manifest: ManifestReport::default(),
        requested_at: None,
        previous,
        now: time("2026-11-22T10:00:00Z"),
    }
}

fn condition<'a>(s: &'a PythonPackageStatus, type_: &str) -> Option<&'a Condition> {
    s.conditions.iter().find(|c| c.type_ == type_)
}

#[test]
fn a_new_package_is_reconciling_and_not_ready() {
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[],
        &[],
        &PlanOptions::default(),
    );
    let s = compute(&observed(&p, 0, None));
    assert_eq!(
        (s.desired, s.released, s.progress.as_deref()),
        (2, 0, Some("0/2"))
    );
    assert_eq!(condition(&s, "Ready").unwrap().status, "False");
    assert_eq!(condition(&s, "Reconciling").unwrap().status, "True");
    assert!(
        condition(&s, "Stalled").is_none(),
        "Stalled only while true"
    );
    assert!(
        s.conditions
            .iter()
            .all(|c| c.observed_generation == Some(3))
    );
    assert_eq!(s.observed_generation, Some(3));
}

#[test]
fn everything_released_is_ready_with_the_latest_version() {
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[released("1.0"), released("1.1")],
        &[],
        &PlanOptions::default(),
    );
    let s = compute(&observed(&p, 0, None));
    let ready = condition(&s, "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Released")
    );
    assert_eq!(s.conditions.len(), 1);
    assert_eq!(s.latest.as_deref(), Some("1.1"));
    assert_eq!(s.progress.as_deref(), Some("2/2"));
}

#[test]
fn failures_are_recorded_bounded_and_stall_when_nothing_else_can_progress() {
    let versions: Vec<String> = (0..30).map(|i| format!("1.{i}")).collect();
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let linux = Platform::new(Os::Linux, Arch::Amd64);
    let others: Vec<Platform> = Platform::ALL.into_iter().filter(|p| *p != linux).collect();
    let releases: Vec<Release> = refs
        .iter()
        .map(|v| release(v, ReleaseState::Draft, &others))
        .collect();
    let work: Vec<Work> = refs.iter().map(|v| failed(v, linux, "OOMKilled")).collect();
    let p = plan(
        &spec(),
        &index(&refs),
        &releases,
        &work,
        &PlanOptions::default(),
    );
    let s = compute(&observed(&p, 0, None));
    assert_eq!(s.failed, 30);
    assert_eq!(s.failures.len(), MAX_FAILURES);
    assert_eq!(s.failures[0].version, "1.29", "newest first");
    assert_eq!(s.failures[0].reason, "OOMKilled");
    let stalled = condition(&s, "Stalled").unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "BuildsFailed")
    );
    assert!(condition(&s, "Reconciling").is_none());
}

#[test]
fn one_failure_does_not_stall_the_others() {
    let releases = [release("1.1", ReleaseState::Draft, &Platform::ALL[..3])];
    let work = [failed("1.1", Platform::ALL[3], "Error")];
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &releases,
        &work,
        &PlanOptions::default(),
    );
    let s = compute(&observed(&p, 1, None));
    assert_eq!((s.building, s.failed), (1, 1));
    assert!(condition(&s, "Stalled").is_none());
    assert_eq!(condition(&s, "Reconciling").unwrap().status, "True");
}

#[test]
fn a_platform_that_cannot_exist_is_said_and_the_version_counts_as_released() {
    let mut r = released("1.0");
    let darwin_amd64 = Platform::new(Os::Darwin, Arch::Amd64);
    r.assets.retain(|a| !a.name.contains("darwin-amd64"));
    r.assets.push(asset(missing_asset(
        &r.info.as_ref().unwrap().package,
        darwin_amd64,
    )));
    r.info.as_mut().unwrap().missing.insert(
        darwin_amd64,
        "no wheel of cryptography 50.0.2 for darwin-amd64".into(),
    );
    let p = plan(
        &spec(),
        &index(&["1.0"]),
        &[r],
        &[],
        &PlanOptions::default(),
    );
    let s = compute(&observed(&p, 0, None));
    assert_eq!((s.released, s.failed), (1, 0));
    assert_eq!(s.failures[0].reason, "NoWheelForPlatform");
    assert!(s.failures[0].message.contains("cryptography"));
    assert_eq!(condition(&s, "Ready").unwrap().status, "True");
}

#[test]
fn trouble_that_no_retry_fixes_stalls_and_the_rest_is_said() {
    let r = release("1.0", ReleaseState::Draft, &Platform::ALL);
    let p = plan(
        &spec(),
        &index(&["1.0"]),
        &[r],
        &[],
        &PlanOptions::default(),
    );
    let trouble = [Trouble {
        failure: crate::plan::Failure::new(
            &"1.0".parse().unwrap(),
            None,
            "NotPublished",
            "cannot read tool-linux-amd64.build.json",
        ),
        permanent: true,
    }];
    let o = Observed {
        trouble: &trouble,
        ..observed(&p, 0, None)
    };
    let s = compute(&o);
    assert_eq!(s.failures[0].reason, "NotPublished");
    assert_eq!(condition(&s, "Stalled").unwrap().status, "True");
    let transient = [Trouble {
        permanent: false,
        ..trouble[0].clone()
    }];
    let s = compute(&Observed {
        trouble: &transient,
        ..observed(&p, 0, None)
    });
    assert!(
        condition(&s, "Stalled").is_none(),
        "retried: publishing is still to do"
    );
}

#[test]
fn an_unchanged_state_gives_an_identical_status() {
    let p = plan(
        &spec(),
        &index(&["1.0"]),
        &[released("1.0")],
        &[],
        &PlanOptions::default(),
    );
    let first = compute(&observed(&p, 0, None));
    let mut later = observed(&p, 0, Some(&first));
    later.now = time("2026-11-22T11:00:00Z");
    assert_eq!(compute(&later), first, "no status write, no churn");

    // A change of state moves the transition time.
    let p2 = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[released("1.0")],
        &[],
        &PlanOptions::default(),
    );
    let mut changed = observed(&p2, 0, Some(&first));
    changed.now = time("2026-11-22T12:00:00Z");
    let s = compute(&changed);
    assert_eq!(
        condition(&s, "Ready").unwrap().last_transition_time,
        time("2026-11-22T12:00:00Z")
    );
}

#[test]
fn suspended_and_unobservable_packages_say_why() {
    let p = plan(&spec(), &index(&["1.0"]), &[], &[], &PlanOptions::default());
    let mut o = observed(&p, 0, None);
    o.suspended = true;
    let s = compute(&o);
    assert_eq!(condition(&s, "Ready").unwrap().reason, "Suspended");
    assert!(condition(&s, "Reconciling").is_none());

    let mut o = observed(&p, 0, None);
    o.plan = None;
    o.error = Some(Unobserved::Invalid(
        "tool: no such project on https://pypi.org/simple/ (HTTP 404)".into(),
    ));
    let s = compute(&o);
    let stalled = condition(&s, "Stalled").unwrap();
    assert_eq!(stalled.reason, "Invalid");
    assert!(stalled.message.contains("no such project"));
}

#[test]
fn an_unreachable_index_keeps_what_was_known_and_does_not_stall() {
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[released("1.0"), released("1.1")],
        &[],
        &PlanOptions::default(),
    );
    let mut known = compute(&observed(&p, 0, None));
    known.listed = Some(2);
    let mut o = observed(&p, 0, Some(&known));
    o.plan = None;
    o.error = Some(Unobserved::Unavailable("pypi.org: HTTP 503".into()));
    let s = compute(&o);
    assert_eq!(condition(&s, "Ready").unwrap().reason, "ObserveFailed");
    assert!(condition(&s, "Stalled").is_none(), "retried, not stuck");
    assert_eq!((s.released, s.desired), (2, 2));
    assert_eq!(s.latest.as_deref(), Some("1.1"));
    assert_eq!(s.listed, None, "the manifest is checked again after it");
}

#[test]
fn a_platform_without_nodes_is_reported_once_and_stalls_only_itself() {
    let releases = [
        release("1.0", ReleaseState::Draft, &[]),
        release("1.1", ReleaseState::Draft, &[]),
    ];
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &releases,
        &[],
        &PlanOptions::default(),
    );
    let darwin = [Platform::ALL[2], Platform::ALL[3]];
    let mut o = observed(&p, 0, None);
    o.no_node = &darwin;
    let s = compute(&o);
    let records: Vec<_> = s
        .failures
        .iter()
        .filter(|f| f.reason == "NoNodeForPlatform")
        .collect();
    assert_eq!(records.len(), 2, "one per platform, not per version");
    assert_eq!(
        condition(&s, "Reconciling").unwrap().status,
        "True",
        "linux builds go on"
    );

    // With only the darwin builds left, the package is stalled and says why.
    let linux_done = [
        release("1.0", ReleaseState::Draft, &Platform::ALL[..2]),
        release("1.1", ReleaseState::Draft, &Platform::ALL[..2]),
    ];
    let p2 = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &linux_done,
        &[],
        &PlanOptions::default(),
    );
    let mut o = observed(&p2, 0, None);
    o.no_node = &darwin;
    let s = compute(&o);
    let stalled = condition(&s, "Stalled").unwrap();
    assert_eq!(stalled.reason, "NoNodeForPlatform");
    assert!(
        stalled.message.contains("darwin-amd64, darwin-arm64"),
        "{}",
        stalled.message
    );
}

fn pod(reason: &str, exit_code: i32, message: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "status": {"containerStatuses": [{"name": "build", "image": "b", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": exit_code, "reason": reason, "message": message}}}]}
    }))
    .unwrap()
}

#[test]
fn a_pod_tells_why_its_build_failed() {
    let failed = |reason: &str, message: &str| WorkState::Failed {
        reason: reason.into(),
        message: message.into(),
    };
    let oom = pod_failure(&pod("OOMKilled", 137, ""), "BackoffLimitExceeded", "m").unwrap();
    assert!(matches!(oom, WorkState::Failed { ref reason, .. } if reason == "OOMKilled"));
    let log = format!("{}\nERROR: no wheel for tool", "x".repeat(1000));
    let WorkState::Failed { reason, message } =
        pod_failure(&pod("Error", 2, &log), "BackoffLimitExceeded", "m").unwrap()
    else {
        panic!()
    };
    assert_eq!(reason, "ExitCode2");
    assert!(message.starts_with("...") && message.ends_with("ERROR: no wheel for tool"));
    assert!(message.chars().count() <= 403, "bounded");
    assert_eq!(
        pod_failure(&pod("Error", 1, ""), "BackoffLimitExceeded", "m"),
        Some(failed("ExitCode1", "m")),
        "no log: the Job's message"
    );
    assert_eq!(
        pod_failure(&pod("Error", 143, "killed"), "DeadlineExceeded", "m"),
        None,
        "a deadline stays a deadline"
    );
}

/// A step's own reason (its `FAILED (...)` line) is the failure's; a flavour's init container
/// that could not install the build packages says so, with its log.
#[test]
fn a_pod_tells_a_steps_reason_and_an_install_that_failed() {
    let log = "needs-native 1.0: resolving\nneeds-native 1.0: FAILED (MissingBuildPackages): \
               build packages missing on this machine (flavour deb): libffi-dev; an sdist is \
               built here and needs them. hermit-pex installs nothing itself: install them with \
               `apt-get install -y libffi-dev`";
    let WorkState::Failed { reason, message } =
        pod_failure(&pod("Error", 1, log), "BackoffLimitExceeded", "m").unwrap()
    else {
        panic!()
    };
    assert_eq!(reason, "MissingBuildPackages");
    assert!(message.contains("libffi-dev"), "{message}");
    // Not a word: not a reason.
    let odd = "x: FAILED (no such thing): y";
    let WorkState::Failed { reason, .. } =
        pod_failure(&pod("Error", 1, odd), "BackoffLimitExceeded", "m").unwrap()
    else {
        panic!()
    };
    assert_eq!(reason, "ExitCode1");

    let init: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "status": {
            "initContainerStatuses": [{"name": "install-packages", "image": "b", "imageID": "",
                "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 100,
                "reason": "Error", "message": "E: Unable to locate package libffi-dev"}}}],
            "containerStatuses": [{"name": "build", "image": "b", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]
        }
    }))
    .unwrap();
    let WorkState::Failed { reason, message } =
        pod_failure(&init, "BackoffLimitExceeded", "m").unwrap()
    else {
        panic!()
    };
    assert_eq!(reason, "InstallPackagesFailed");
    assert_eq!(
        message,
        "the init container install-packages could not install the flavour's build packages \
         (exit 100): E: Unable to locate package libffi-dev"
    );
}

#[test]
fn a_failed_manifest_commit_is_not_ready_and_forgets_the_count_so_it_is_retried() {
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[released("1.0"), released("1.1")],
        &[],
        &PlanOptions::default(),
    );
    let committed = ManifestReport {
        commit: Some("abc".into()),
        listed: Some(2),
        error: None,
    };
    let first = compute(&Observed {
        manifest: committed,
        ..observed(&p, 0, None)
    });
    assert_eq!(
        (first.last_commit.as_deref(), first.listed),
        (Some("abc"), Some(2))
    );
    let failed = ManifestReport {
        error: Some("push rejected".into()),
        ..ManifestReport::default()
    };
    let second = compute(&Observed {
        manifest: failed,
        ..observed(&p, 0, Some(&first))
    });
    let ready = condition(&second, "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ManifestNotCommitted")
    );
    assert!(
        condition(&second, "Stalled").is_none(),
        "a push race is transient"
    );
    assert_eq!(second.listed, None);
    assert_eq!(
        second.last_commit.as_deref(),
        Some("abc"),
        "the last good commit stays"
    );
}
