use super::*;
use crate::names::{Arch, Os};
use crate::plan::{PlanOptions, plan};
use crate::pypi::IndexVersion;
use crate::release::{Asset, Release, ReleaseState};

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
            version: v.parse().unwrap(),
            requires_python: None,
        })
        .collect()
}

fn released(version: &str) -> Release {
    let package = crate::names::PackageName::new("tool").unwrap();
    Release {
        version: version.parse().unwrap(),
        state: ReleaseState::Published,
        assets: Platform::ALL
            .iter()
            .map(|p| Asset {
                name: package.asset_name(*p),
                size: 1,
                sha256: Some("a".repeat(64)),
            })
            .collect(),
        python: None,
        config_version: None,
    }
}

fn observed<'a>(
    plan: &'a Plan,
    jobs: &'a [JobObservation],
    previous: Option<&'a PythonPackageStatus>,
) -> Observed<'a> {
    Observed {
        generation: 3,
        plan: Some(plan),
        jobs,
        no_node: &[],
        suspended: false,
        error: None,
        manifest: ManifestReport::default(),
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
        &PlanOptions::default(),
    );
    let s = compute(&observed(&p, &[], None));
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
        &PlanOptions::default(),
    );
    let s = compute(&observed(&p, &[], None));
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
    let options = PlanOptions {
        platforms: Some(vec![Platform::new(Os::Linux, Arch::Amd64)]),
        ..Default::default()
    };
    let p = plan(&spec(), &index(&refs), &[], &options);
    let jobs: Vec<JobObservation> = p
        .versions
        .iter()
        .map(|vp| JobObservation {
            version: vp.version.clone(),
            platform: Platform::new(Os::Linux, Arch::Amd64),
            state: JobState::Failed {
                reason: "OOMKilled".into(),
                message: "exit 137".into(),
            },
        })
        .collect();
    let s = compute(&observed(&p, &jobs, None));
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
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[],
        &PlanOptions::default(),
    );
    let jobs = [
        JobObservation {
            version: "1.1".parse().unwrap(),
            platform: Platform::ALL[3],
            state: JobState::Failed {
                reason: "Error".into(),
                message: "no wheel for this platform".into(),
            },
        },
        JobObservation {
            version: "1.0".parse().unwrap(),
            platform: Platform::ALL[0],
            state: JobState::Running,
        },
    ];
    let s = compute(&observed(&p, &jobs, None));
    assert_eq!((s.building, s.failed), (1, 1));
    assert!(condition(&s, "Stalled").is_none());
    assert_eq!(condition(&s, "Reconciling").unwrap().status, "True");
}

#[test]
fn an_unchanged_state_gives_an_identical_status() {
    let p = plan(
        &spec(),
        &index(&["1.0"]),
        &[released("1.0")],
        &PlanOptions::default(),
    );
    let first = compute(&observed(&p, &[], None));
    let mut later = observed(&p, &[], Some(&first));
    later.now = time("2026-11-22T11:00:00Z");
    assert_eq!(compute(&later), first, "no status write, no churn");

    // A change of state moves the transition time.
    let p2 = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[released("1.0")],
        &PlanOptions::default(),
    );
    let mut changed = observed(&p2, &[], Some(&first));
    changed.now = time("2026-11-22T12:00:00Z");
    let s = compute(&changed);
    assert_eq!(
        condition(&s, "Ready").unwrap().last_transition_time,
        time("2026-11-22T12:00:00Z")
    );
}

#[test]
fn suspended_and_unobservable_packages_say_why() {
    let p = plan(&spec(), &index(&["1.0"]), &[], &PlanOptions::default());
    let mut o = observed(&p, &[], None);
    o.suspended = true;
    let s = compute(&o);
    assert_eq!(condition(&s, "Ready").unwrap().reason, "Suspended");
    assert!(condition(&s, "Reconciling").is_none());

    let mut o = observed(&p, &[], None);
    o.plan = None;
    o.error = Some(Problem::Invalid(
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
        &PlanOptions::default(),
    );
    let mut known = compute(&observed(&p, &[], None));
    known.listed = Some(2);
    let mut o = observed(&p, &[], Some(&known));
    o.plan = None;
    o.error = Some(Problem::Unavailable("pypi.org: HTTP 503".into()));
    let s = compute(&o);
    assert_eq!(condition(&s, "Ready").unwrap().reason, "ObserveFailed");
    assert!(condition(&s, "Stalled").is_none(), "retried, not stuck");
    assert_eq!((s.released, s.desired), (2, 2));
    assert_eq!(s.latest.as_deref(), Some("1.1"));
    assert_eq!(s.listed, None, "the manifest is checked again after it");
}

#[test]
fn a_platform_without_nodes_is_reported_once_and_stalls_only_itself() {
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[],
        &PlanOptions::default(),
    );
    let darwin = [Platform::ALL[2], Platform::ALL[3]];
    let mut o = observed(&p, &[], None);
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
    let linux_done: Vec<JobObservation> = p
        .versions
        .iter()
        .flat_map(|vp| {
            Platform::ALL[..2].iter().map(|pl| JobObservation {
                version: vp.version.clone(),
                platform: *pl,
                state: JobState::Succeeded,
            })
        })
        .collect();
    let only_darwin = PlanOptions {
        platforms: Some(darwin.to_vec()),
        ..Default::default()
    };
    let p2 = plan(&spec(), &index(&["1.0", "1.1"]), &[], &only_darwin);
    let mut o = observed(&p2, &linux_done, None);
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
    let failed = |reason: &str, message: &str| JobState::Failed {
        reason: reason.into(),
        message: message.into(),
    };
    let oom = pod_failure(&pod("OOMKilled", 137, ""), "BackoffLimitExceeded", "m").unwrap();
    assert!(matches!(oom, JobState::Failed { ref reason, .. } if reason == "OOMKilled"));
    let log = format!("{}\nERROR: no wheel for tool", "x".repeat(1000));
    let JobState::Failed { reason, message } =
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

#[test]
fn a_failed_manifest_commit_is_not_ready_and_forgets_the_count_so_it_is_retried() {
    let p = plan(
        &spec(),
        &index(&["1.0", "1.1"]),
        &[released("1.0"), released("1.1")],
        &PlanOptions::default(),
    );
    let committed = ManifestReport {
        commit: Some("abc".into()),
        listed: Some(2),
        error: None,
    };
    let first = compute(&Observed {
        manifest: committed,
        ..observed(&p, &[], None)
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
        ..observed(&p, &[], Some(&first))
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
