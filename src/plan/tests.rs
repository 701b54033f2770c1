use super::*;
use crate::release::Asset;
use crate::spec;

fn spec(extra: &str) -> PackageSpec {
    let yaml = format!(
        "package: tiny-tool\nbinaries: [tiny-tool]\nversions:\n  - {{version: \"1.2.0\", python: \"3.11\"}}\n  - {{version: \"2.0\", python: \"3.12\"}}\n{extra}"
    );
    let s = spec::parse(&yaml).unwrap();
    s.validate().unwrap();
    s
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

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn release(version: &str, state: ReleaseState, platforms: &[Platform]) -> Release {
    let package = PackageName::new("tiny-tool").unwrap();
    Release {
        version: v(version),
        state,
        assets: platforms
            .iter()
            .map(|p| Asset {
                name: package.asset_name(*p),
                size: 10,
                sha256: Some("a".repeat(64)),
            })
            .collect(),
        python: None,
        config_version: None,
    }
}

fn listed(plan: &Plan) -> Vec<String> {
    plan.versions
        .iter()
        .map(|vp| vp.version.to_string())
        .collect()
}

const ALL: [Platform; 4] = Platform::ALL;
const INDEX: &[&str] = &[
    "1.0",
    "1.2.0",
    "1.10.0",
    "2.0rc1",
    "2.0",
    "2.0.post1",
    "2024.1",
    "1.9.dev1",
];

#[test]
fn versions_at_or_above_the_minimum_newest_first_in_pep440_order() {
    let p = plan(&spec(""), &index(INDEX), &[], &PlanOptions::default());
    assert_eq!(
        listed(&p),
        ["2024.1", "2.0.post1", "2.0", "1.10.0", "1.2.0"]
    );
}

#[test]
fn prereleases_and_dev_releases_only_when_asked() {
    let p = plan(
        &spec("prereleases: true\n"),
        &index(INDEX),
        &[],
        &PlanOptions::default(),
    );
    assert_eq!(
        listed(&p),
        [
            "2024.1",
            "2.0.post1",
            "2.0",
            "2.0rc1",
            "1.10.0",
            "1.9.dev1",
            "1.2.0"
        ]
    );
}

#[test]
fn excluded_versions_never_by_pep440_equality() {
    let p = plan(
        &spec("exclude: [\"1.10\", \"2024.1.0\"]\n"),
        &index(INDEX),
        &[],
        &PlanOptions::default(),
    );
    assert_eq!(listed(&p), ["2.0.post1", "2.0", "1.2.0"]);
}

#[test]
fn python_comes_from_the_greatest_entry_at_or_below_each_version() {
    let p = plan(&spec(""), &index(INDEX), &[], &PlanOptions::default());
    let py: Vec<String> = p.versions.iter().map(|vp| vp.python.to_string()).collect();
    assert_eq!(py, ["3.12", "3.12", "3.12", "3.11", "3.11"]);
}

#[test]
fn a_new_version_gets_a_release_four_builds_and_a_publish() {
    let p = plan(&spec(""), &index(&["2.0"]), &[], &PlanOptions::default());
    let python = PythonMinor::new(12).unwrap();
    let mut want = vec![Action::CreateRelease {
        version: v("2.0"),
        python,
    }];
    want.extend(ALL.iter().map(|&platform| Action::Build {
        version: v("2.0"),
        python,
        platform,
        replace: false,
    }));
    want.push(Action::PublishRelease { version: v("2.0") });
    want.push(Action::WriteManifest {
        versions: vec![v("2.0")],
    });
    assert_eq!(p.actions, want);
    assert_eq!(p.versions[0].status, VersionStatus::New);
}

#[test]
fn a_published_complete_release_is_done() {
    let releases = [release("2.0", ReleaseState::Published, &ALL)];
    let p = plan(
        &spec(""),
        &index(&["2.0"]),
        &releases,
        &PlanOptions::default(),
    );
    assert_eq!(p.versions[0].status, VersionStatus::Released);
    assert_eq!(
        p.actions,
        [Action::WriteManifest {
            versions: vec![v("2.0")]
        }]
    );
    assert!(p.is_settled());
}

#[test]
fn a_partial_release_is_finished_not_rebuilt() {
    let releases = [release("2.0", ReleaseState::Draft, &ALL[..2])];
    let p = plan(
        &spec(""),
        &index(&["2.0"]),
        &releases,
        &PlanOptions::default(),
    );
    assert_eq!(p.versions[0].status, VersionStatus::Partial);
    let builds: Vec<Platform> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Build {
                platform,
                replace: false,
                ..
            } => Some(*platform),
            _ => None,
        })
        .collect();
    assert_eq!(builds, ALL[2..]);
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::CreateRelease { .. }))
    );
    assert!(
        p.actions
            .contains(&Action::PublishRelease { version: v("2.0") })
    );
}

#[test]
fn a_complete_draft_is_only_published() {
    let releases = [release("2.0", ReleaseState::Draft, &ALL)];
    let p = plan(
        &spec(""),
        &index(&["2.0"]),
        &releases,
        &PlanOptions::default(),
    );
    assert_eq!(p.versions[0].status, VersionStatus::ToPublish);
    assert_eq!(p.builds(), 0);
    assert_eq!(p.actions[0], Action::PublishRelease { version: v("2.0") });
}

#[test]
fn an_unfinished_upload_is_replaced() {
    let mut r = release("2.0", ReleaseState::Draft, &ALL);
    r.assets[3].sha256 = None; // e.g. GitHub's `starter` state after a broken upload
    let p = plan(&spec(""), &index(&["2.0"]), &[r], &PlanOptions::default());
    assert_eq!(p.builds(), 1);
    assert!(p.actions.contains(&Action::Build {
        version: v("2.0"),
        python: PythonMinor::new(12).unwrap(),
        platform: ALL[3],
        replace: true
    }));
}

#[test]
fn a_config_version_change_rebuilds_drafts_never_published_releases() {
    let s = spec("config_version: 3\n");
    let mut draft = release("2.0", ReleaseState::Draft, &ALL);
    draft.config_version = Some(2);
    let mut published = release("2.0.post1", ReleaseState::Published, &ALL);
    published.config_version = Some(2);
    let p = plan(
        &s,
        &index(&["2.0", "2.0.post1"]),
        &[draft, published],
        &PlanOptions::default(),
    );
    let status: Vec<VersionStatus> = p.versions.iter().map(|vp| vp.status).collect();
    assert_eq!(status, [VersionStatus::Released, VersionStatus::Rebuild]);
    assert_eq!(p.builds(), 4);
    assert!(p.actions.iter().all(|a| match a {
        Action::Build {
            version, replace, ..
        } => version == &v("2.0") && *replace,
        _ => true,
    }));
}

#[test]
fn a_python_change_rebuilds_a_draft() {
    let mut draft = release("2.0", ReleaseState::Draft, &ALL);
    draft.python = Some(PythonMinor::new(11).unwrap());
    let p = plan(
        &spec(""),
        &index(&["2.0"]),
        &[draft],
        &PlanOptions::default(),
    );
    assert_eq!(p.versions[0].status, VersionStatus::Rebuild);
    assert!(p.versions[0].note.as_ref().unwrap().contains("python 3.11"));
}

#[test]
fn latest_n_keeps_the_newest() {
    let opts = PlanOptions {
        latest: Some(2),
        ..Default::default()
    };
    let p = plan(&spec(""), &index(INDEX), &[], &opts);
    assert_eq!(listed(&p), ["2024.1", "2.0.post1"]);
}

#[test]
fn a_platform_subset_builds_but_does_not_publish() {
    let opts = PlanOptions {
        platforms: Some(vec![ALL[0]]),
        ..Default::default()
    };
    let p = plan(&spec(""), &index(&["2.0"]), &[], &opts);
    assert_eq!(p.builds(), 1);
    assert!(!p.actions.iter().any(|a| matches!(
        a,
        Action::PublishRelease { .. } | Action::WriteManifest { .. }
    )));
}

#[test]
fn configured_platforms_limit_the_builds_and_completeness() {
    let s = spec("platforms: [linux-amd64, darwin-arm64]\n");
    let releases = [release("2.0", ReleaseState::Published, &[ALL[0], ALL[3]])];
    let p = plan(
        &s,
        &index(&["2.0", "2.0.post1"]),
        &releases,
        &PlanOptions::default(),
    );
    assert_eq!(p.versions[1].status, VersionStatus::Released);
    assert_eq!(p.builds(), 2);
    assert_eq!(
        p.actions.last().unwrap(),
        &Action::WriteManifest {
            versions: vec![v("2.0"), v("2.0.post1")]
        }
    );
}

#[test]
fn a_python_outside_requires_python_is_not_built_and_says_why() {
    let mut idx = index(&["2.0", "2.0.post1"]);
    idx[1].requires_python = Some("<3.12,>=3.9".parse().unwrap());
    let p = plan(&spec(""), &idx, &[], &PlanOptions::default());
    assert_eq!(p.versions[0].status, VersionStatus::Incompatible);
    assert!(
        p.versions[0]
            .note
            .as_ref()
            .unwrap()
            .contains("excludes python 3.12")
    );
    assert_eq!(
        p.versions[1].status,
        VersionStatus::New,
        "the other versions go on"
    );
    assert_eq!(p.builds(), 4);
}

#[test]
fn nothing_below_the_minimum_nothing_from_an_empty_index() {
    let p = plan(
        &spec(""),
        &index(&["0.9", "1.1"]),
        &[],
        &PlanOptions::default(),
    );
    assert!(p.versions.is_empty());
    assert!(p.actions.is_empty());
}
