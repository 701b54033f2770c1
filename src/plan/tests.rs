use super::*;
use crate::release::info::{missing_asset, record_asset};
use crate::release::{Asset, BuildInfo, LockRecord, PlatformBuild, Target};
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
            git: None,
            version: v.parse().unwrap(),
            requires_python: None,
        })
        .collect()
}

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn pkg() -> PackageName {
    PackageName::new("tiny-tool").unwrap()
}

fn asset(name: String) -> Asset {
    Asset {
        name,
        size: 10,
        sha256: Some("a".repeat(64)),
        uploaded: true,
    }
}

/// A release of `version` made for `spec`'s inputs, with `id` as its id and creation order.
fn made(spec: &PackageSpec, version: &str, id: u64, state: ReleaseState) -> Release {
    let v = v(version);
    let python = spec.python_for(&v).unwrap();
    Release {
        id: ReleaseId(id.to_string()),
        tag: pkg().tag(&v),
        version: v.clone(),
        state,
        order: id,
        assets: Vec::new(),
        info: Some(BuildInfo::new(
            &pkg(),
            &v,
            inputs(spec, &IndexVersion::new(v.clone()), python),
        )),
    }
}

/// ... locked (pure or not) ...
fn locked(mut r: Release, pure: bool) -> Release {
    r.assets.push(Asset {
        size: 100,
        ..asset(format!("pylock.{}.toml", pkg()))
    });
    r.info.as_mut().unwrap().locked = Some(LockRecord {
        format: Some(crate::lock::LockFormat::Pylock),
        sha256: "a".repeat(64),
        size: 100,
        pins: vec!["tiny-tool==2.0".into()],
        pure,
        binaries: vec![crate::names::BinaryName::new("tiny-tool").unwrap()],
        test: "tiny-tool --help".into(),
        wheel: None,
        ..Default::default()
    });
    r
}

/// ... with these platforms built (tarball and record).
fn built(mut r: Release, platforms: &[Platform]) -> Release {
    for p in platforms {
        r.assets.push(asset(pkg().asset_name(*p)));
        r.assets.push(asset(record_asset(&pkg(), *p)));
    }
    r
}

/// A published release built by `spec`'s inputs with every platform recorded in its build info.
fn published(spec: &PackageSpec, version: &str, id: u64, platforms: &[Platform]) -> Release {
    let mut r = built(
        locked(made(spec, version, id, ReleaseState::Published), false),
        platforms,
    );
    let info = r.info.as_mut().unwrap();
    for p in platforms {
        info.platforms.insert(
            *p,
            PlatformBuild {
                asset: pkg().asset_name(*p),
                size: 10,
                sha256: "a".repeat(64),
                target: Target::CompletePlatform,
                test: Some(TestOutcome::Passed {
                    command: "tiny-tool --help".into(),
                }),
                lock: None,
                packages: Vec::new(),
                tarball: Default::default(),
            },
        );
    }
    r
}

fn one(spec: &PackageSpec, version: &str, releases: &[Release], work: &[Work]) -> VersionPlan {
    let p = plan(
        spec,
        &index(&[version]),
        releases,
        work,
        &PlanOptions::default(),
    );
    p.versions.into_iter().next().unwrap()
}

fn work(release: &Release, kind: WorkKind, state: WorkState) -> Work {
    Work {
        version: release.version.clone(),
        release: release.id.clone(),
        kind,
        state,
    }
}

fn id(n: u64) -> ReleaseId {
    ReleaseId(n.to_string())
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
    let p = plan(&spec(""), &index(INDEX), &[], &[], &PlanOptions::default());
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
        &[],
        &PlanOptions::default(),
    );
    assert_eq!(listed(&p), ["2.0.post1", "2.0", "1.2.0"]);
}

#[test]
fn python_comes_from_the_greatest_entry_at_or_below_each_version() {
    let p = plan(&spec(""), &index(INDEX), &[], &[], &PlanOptions::default());
    let py: Vec<String> = p.versions.iter().map(|vp| vp.python.to_string()).collect();
    assert_eq!(py, ["3.12", "3.12", "3.12", "3.11", "3.11"]);
}

#[test]
fn a_new_version_is_created_first_then_locked_once_then_built_per_platform_then_published() {
    let s = spec("");
    let vp = one(&s, "2.0", &[], &[]);
    assert_eq!(
        (vp.status, vp.steps.clone()),
        (VersionStatus::New, vec![Step::Create])
    );
    assert_eq!(vp.build, ALL, "what it will build");

    let draft = made(&s, "2.0", 7, ReleaseState::Draft);
    let vp = one(&s, "2.0", std::slice::from_ref(&draft), &[]);
    assert_eq!(vp.status, VersionStatus::Locking);
    assert_eq!(vp.release, Some(id(7)));
    assert_eq!(
        vp.steps,
        [Step::Lock {
            release: id(7),
            platforms: ALL.to_vec()
        }]
    );

    let draft = locked(draft, false);
    let vp = one(&s, "2.0", std::slice::from_ref(&draft), &[]);
    assert_eq!(vp.status, VersionStatus::Building);
    let builds: Vec<Step> = ALL
        .iter()
        .map(|&platform| Step::Build {
            release: id(7),
            platform,
        })
        .collect();
    assert_eq!(vp.steps, builds);

    let draft = built(draft, &ALL);
    let vp = one(&s, "2.0", &[draft], &[]);
    assert_eq!(vp.status, VersionStatus::ToPublish);
    assert_eq!(vp.steps, [Step::Publish { release: id(7) }]);
}

#[test]
fn a_published_complete_release_is_done() {
    let s = spec("");
    let p = plan(
        &s,
        &index(&["2.0"]),
        &[published(&s, "2.0", 1, &ALL)],
        &[],
        &PlanOptions::default(),
    );
    assert_eq!(p.versions[0].status, VersionStatus::Released);
    assert!(p.is_settled());
    assert_eq!(p.builds(), 0);
}

#[test]
fn a_partial_draft_builds_only_what_is_missing() {
    let s = spec("");
    let draft = built(
        locked(made(&s, "2.0", 1, ReleaseState::Draft), false),
        &ALL[..2],
    );
    let vp = one(&s, "2.0", &[draft], &[]);
    assert_eq!(vp.status, VersionStatus::Building);
    assert_eq!(vp.done, ALL[..2]);
    let builds: Vec<Platform> = vp
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Build { platform, .. } => Some(*platform),
            _ => None,
        })
        .collect();
    assert_eq!(builds, ALL[2..]);
}

#[test]
fn a_tarball_without_its_record_is_built_again() {
    let s = spec("");
    let mut draft = built(locked(made(&s, "2.0", 1, ReleaseState::Draft), false), &ALL);
    // Killed between the tarball and its record; and a broken upload (GitHub's `starter`).
    draft
        .assets
        .retain(|a| a.name != record_asset(&pkg(), ALL[1]));
    let name = pkg().asset_name(ALL[2]);
    draft
        .assets
        .iter_mut()
        .find(|a| a.name == name)
        .unwrap()
        .uploaded = false;
    let vp = one(&s, "2.0", &[draft], &[]);
    assert_eq!(
        vp.steps,
        [
            Step::Build {
                release: id(1),
                platform: ALL[1]
            },
            Step::Build {
                release: id(1),
                platform: ALL[2]
            }
        ]
    );
}

#[test]
fn duplicate_drafts_keep_the_oldest_and_discard_the_others() {
    let s = spec("");
    let a = built(
        locked(made(&s, "2.0", 30, ReleaseState::Draft), false),
        &ALL[..1],
    );
    let b = locked(made(&s, "2.0", 12, ReleaseState::Draft), false);
    let c = made(&s, "2.0", 44, ReleaseState::Draft);
    let vp = one(&s, "2.0", &[a, b, c], &[]);
    assert_eq!(
        vp.release,
        Some(id(12)),
        "the oldest is kept, whatever it holds"
    );
    let discarded: Vec<&ReleaseId> = vp
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Discard { release, .. } => Some(release),
            _ => None,
        })
        .collect();
    assert_eq!(discarded, [&id(30), &id(44)]);
    assert_eq!(vp.status, VersionStatus::Building);
}

#[test]
fn drafts_made_for_other_settings_are_discarded_and_the_version_made_again() {
    let old = spec(
        "config_version: 2
",
    );
    let s = spec(
        "config_version: 3
extra_packages: [\"six\"]
",
    );
    let draft = built(
        locked(made(&old, "2.0", 1, ReleaseState::Draft), false),
        &ALL,
    );
    let pub_old = published(&old, "2.0.post1", 2, &ALL);
    let p = plan(
        &s,
        &index(&["2.0", "2.0.post1"]),
        &[draft, pub_old],
        &[],
        &PlanOptions::default(),
    );
    let status: Vec<VersionStatus> = p.versions.iter().map(|vp| vp.status).collect();
    assert_eq!(
        status,
        [VersionStatus::Released, VersionStatus::Rebuild],
        "published: never touched"
    );
    let steps = &p.versions[1].steps;
    assert!(
        matches!(&steps[0], Step::Discard { release, why } if release == &id(1) && why.contains("config_version 2 → 3") && why.contains("extra_packages")),
        "{steps:?}"
    );
    assert_eq!(steps[1], Step::Create);
}

#[test]
fn a_draft_locked_by_pex_is_made_again_and_a_release_published_with_it_stays() {
    let s = spec("");
    let mut draft = built(
        locked(made(&s, "2.0", 1, ReleaseState::Draft), false),
        &ALL[..2],
    );
    draft.info.as_mut().unwrap().locked.as_mut().unwrap().format = None;
    let vp = one(&s, "2.0", &[draft], &[]);
    assert_eq!(vp.status, VersionStatus::Rebuild);
    assert!(
        matches!(&vp.steps[0], Step::Discard { why, .. } if why.contains("locked by pex")),
        "{:?}",
        vp.steps
    );
    assert_eq!(vp.steps[1], Step::Create);

    let mut old = published(&s, "2.0", 2, &ALL);
    old.info.as_mut().unwrap().locked.as_mut().unwrap().format = None;
    let vp = one(&s, "2.0", &[old], &[]);
    assert_eq!(vp.status, VersionStatus::Released);
    assert!(vp.steps.is_empty(), "a published release is never touched");
}

#[test]
fn a_draft_without_readable_build_info_is_made_again() {
    let s = spec("");
    let mut draft = made(&s, "2.0", 1, ReleaseState::Draft);
    draft.info = None;
    let vp = one(&s, "2.0", &[draft], &[]);
    assert_eq!(vp.status, VersionStatus::Rebuild);
    assert!(matches!(vp.steps[0], Step::Discard { .. }));
}

#[test]
fn a_python_change_rebuilds_a_draft() {
    let s = spec("");
    let mut other = s.clone();
    other.versions[1].python = PythonMinor::new(11).unwrap();
    let vp = one(
        &s,
        "2.0",
        &[made(&other, "2.0", 1, ReleaseState::Draft)],
        &[],
    );
    assert_eq!(vp.status, VersionStatus::Rebuild);
    assert!(
        vp.note.as_ref().unwrap().contains("python 3.11 → 3.12"),
        "{:?}",
        vp.note
    );
}

#[test]
fn drafts_beside_a_published_release_are_discarded() {
    let s = spec("");
    let vp = one(
        &s,
        "2.0",
        &[
            published(&s, "2.0", 5, &ALL),
            made(&s, "2.0", 9, ReleaseState::Draft),
        ],
        &[],
    );
    assert_eq!(vp.status, VersionStatus::Released);
    assert!(matches!(&vp.steps[..], [Step::Discard { release, .. }] if release == &id(9)));
}

#[test]
fn work_under_way_is_waited_for_and_a_failure_blocks_only_its_step() {
    let s = spec("");
    let draft = made(&s, "2.0", 1, ReleaseState::Draft);
    let running = work(&draft, WorkKind::Lock, WorkState::Running);
    let vp = one(&s, "2.0", std::slice::from_ref(&draft), &[running]);
    assert!(vp.steps.is_empty(), "the lock is under way: {:?}", vp.steps);
    assert_eq!(vp.status, VersionStatus::Locking);

    let failed = work(
        &draft,
        WorkKind::Lock,
        WorkState::Failed {
            reason: "ExitCode1".into(),
            message: "no such version".into(),
        },
    );
    let vp = one(&s, "2.0", std::slice::from_ref(&draft), &[failed]);
    assert!(vp.steps.is_empty());
    assert_eq!(vp.blockers[0].reason, "ExitCode1");

    let draft = locked(draft, false);
    let work: Vec<Work> = vec![
        work(&draft, WorkKind::Build(ALL[0]), WorkState::Running),
        work(
            &draft,
            WorkKind::Build(ALL[1]),
            WorkState::Failed {
                reason: "OOMKilled".into(),
                message: "raise the limit".into(),
            },
        ),
    ];
    let vp = one(&s, "2.0", &[draft], &work);
    let builds: Vec<Platform> = vp
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Build { platform, .. } => Some(*platform),
            _ => None,
        })
        .collect();
    assert_eq!(builds, ALL[2..], "the others go on");
    assert_eq!(vp.blockers.len(), 1);
    assert_eq!(vp.status, VersionStatus::Building);
}

#[test]
fn a_finished_step_whose_output_is_not_seen_is_waited_for() {
    let s = spec("");
    let draft = made(&s, "2.0", 1, ReleaseState::Draft);
    let done = work(&draft, WorkKind::Lock, WorkState::Succeeded);
    let vp = one(&s, "2.0", std::slice::from_ref(&draft), &[done]);
    assert!(vp.waiting && vp.steps.is_empty());

    let draft = built(locked(draft, false), &ALL[..3]);
    let done = work(&draft, WorkKind::Build(ALL[3]), WorkState::Succeeded);
    let vp = one(&s, "2.0", &[draft], &[done]);
    assert!(vp.waiting && vp.steps.is_empty());
}

#[test]
fn work_for_another_release_counts_for_nothing() {
    let s = spec("");
    let draft = made(&s, "2.0", 1, ReleaseState::Draft);
    let mut elsewhere = work(&draft, WorkKind::Lock, WorkState::Running);
    elsewhere.release = id(99);
    let vp = one(&s, "2.0", &[draft], &[elsewhere]);
    assert_eq!(
        vp.steps,
        [Step::Lock {
            release: id(1),
            platforms: ALL.to_vec()
        }]
    );
}

#[test]
fn a_pure_lock_step_builds_everything_so_nothing_else_starts_while_it_runs() {
    let s = spec("");
    let draft = locked(made(&s, "2.0", 1, ReleaseState::Draft), true);
    let running = work(&draft, WorkKind::Lock, WorkState::Running);
    let vp = one(&s, "2.0", std::slice::from_ref(&draft), &[running]);
    assert!(vp.steps.is_empty(), "{:?}", vp.steps);
    // A platform it did not upload is built by that step again, never per platform.
    let vp = one(&s, "2.0", &[built(draft, &ALL[..3])], &[]);
    assert_eq!(
        vp.steps,
        [Step::Lock {
            release: id(1),
            platforms: vec![ALL[3]]
        }]
    );
}

#[test]
fn a_platform_that_cannot_exist_is_published_without_or_holds_the_version_back() {
    let mut draft = built(
        locked(made(&spec(""), "2.0", 1, ReleaseState::Draft), false),
        &ALL[..3],
    );
    draft.assets.push(asset(missing_asset(&pkg(), ALL[3])));
    let vp = one(&spec(""), "2.0", std::slice::from_ref(&draft), &[]);
    assert_eq!(vp.status, VersionStatus::ToPublish);
    assert_eq!(vp.steps, [Step::Publish { release: id(1) }]);
    assert!(vp.missing.contains_key(&ALL[3]));

    let strict = spec(
        "partial_platforms: false
",
    );
    let mut draft_strict = built(
        locked(made(&strict, "2.0", 1, ReleaseState::Draft), false),
        &ALL[..3],
    );
    draft_strict
        .assets
        .push(asset(missing_asset(&pkg(), ALL[3])));
    let vp = one(&strict, "2.0", std::slice::from_ref(&draft_strict), &[]);
    assert_eq!(vp.status, VersionStatus::Blocked);
    assert!(vp.steps.is_empty());
    assert_eq!(vp.blockers[0].reason, "NoWheelForPlatform");
    assert_eq!(vp.blockers[0].platform, Some(ALL[3]));

    let retry = PlanOptions {
        retry_missing: true,
        ..PlanOptions::default()
    };
    let p = plan(&strict, &index(&["2.0"]), &[draft_strict], &[], &retry);
    assert_eq!(
        p.versions[0].steps,
        [Step::Build {
            release: id(1),
            platform: ALL[3]
        }]
    );
}

#[test]
fn no_platform_at_all_is_nothing_to_publish() {
    let s = spec("");
    let mut draft = locked(made(&s, "2.0", 1, ReleaseState::Draft), false);
    for p in ALL {
        draft.assets.push(asset(missing_asset(&pkg(), p)));
    }
    let vp = one(&s, "2.0", &[draft], &[]);
    assert_eq!(vp.status, VersionStatus::Blocked);
    assert!(vp.steps.is_empty());
}

#[test]
fn listable_versions_are_published_with_digests_and_say_how_they_were_tested() {
    let s = spec("");
    let mut cross = published(&s, "1.2.0", 1, &ALL);
    for b in cross.info.as_mut().unwrap().platforms.values_mut() {
        b.test = Some(TestOutcome::NotTried {
            why: "built elsewhere".into(),
        });
    }
    let mut legacy = published(&s, "2.0", 2, &ALL);
    for b in legacy.info.as_mut().unwrap().platforms.values_mut() {
        b.test = None;
    }
    let tested = published(&s, "2.0.post1", 3, &ALL);
    let draft = built(
        locked(made(&s, "2024.1", 4, ReleaseState::Draft), false),
        &ALL,
    );
    let listed = listable(&s, &[cross, legacy, tested, draft]);
    let got: Vec<(String, Tried)> = listed
        .iter()
        .map(|l| (l.complete.version.to_string(), l.tried.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("1.2.0".into(), Tried::NotTried("built elsewhere".into())),
            ("2.0".into(), Tried::Unknown),
            ("2.0.post1".into(), Tried::Passed)
        ]
    );
    assert_eq!(listed[2].complete.sha256.len(), 4);
    assert_eq!(listed[2].complete.binaries[0].as_str(), "tiny-tool");
}

#[test]
fn a_version_published_without_a_platform_is_listed_for_the_others_unless_the_config_wants_all() {
    let s = spec("");
    let mut r = published(&s, "2.0", 1, &ALL[..3]);
    r.info
        .as_mut()
        .unwrap()
        .missing
        .insert(ALL[3], "no wheel of x".into());
    let listed = listable(&s, std::slice::from_ref(&r));
    assert_eq!(
        listed[0]
            .complete
            .sha256
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        ALL[..3]
    );
    assert!(
        listable(
            &spec(
                "partial_platforms: false
"
            ),
            &[r.clone()]
        )
        .is_empty()
    );
    r.info.as_mut().unwrap().missing.clear();
    assert!(
        listable(&s, &[r]).is_empty(),
        "a platform missing without a reason"
    );
}

#[test]
fn latest_n_keeps_the_newest() {
    let opts = PlanOptions {
        latest: Some(2),
        ..Default::default()
    };
    let p = plan(&spec(""), &index(INDEX), &[], &[], &opts);
    assert_eq!(listed(&p), ["2024.1", "2.0.post1"]);
}

#[test]
fn a_platform_subset_builds_but_does_not_publish() {
    let s = spec("");
    let opts = PlanOptions {
        platforms: Some(vec![ALL[0]]),
        ..Default::default()
    };
    let draft = locked(made(&s, "2.0", 1, ReleaseState::Draft), false);
    let p = plan(
        &s,
        &index(&["2.0"]),
        std::slice::from_ref(&draft),
        &[],
        &opts,
    );
    assert_eq!(
        p.versions[0].steps,
        [Step::Build {
            release: id(1),
            platform: ALL[0]
        }]
    );
    let p = plan(&s, &index(&["2.0"]), &[built(draft, &ALL[..1])], &[], &opts);
    assert!(p.versions[0].steps.is_empty(), "{:?}", p.versions[0].steps);
}

#[test]
fn configured_platforms_limit_the_builds_and_completeness() {
    let s = spec(
        "platforms: [linux-amd64, darwin-arm64]
",
    );
    let two = [ALL[0], ALL[3]];
    let draft = locked(made(&s, "2.0.post1", 2, ReleaseState::Draft), false);
    let p = plan(
        &s,
        &index(&["2.0", "2.0.post1"]),
        &[published(&s, "2.0", 1, &two), draft],
        &[],
        &PlanOptions::default(),
    );
    assert_eq!(p.versions[1].status, VersionStatus::Released);
    assert_eq!(p.builds(), 2);
    assert_eq!(listable(&s, &[published(&s, "2.0", 1, &two)]).len(), 1);
}

#[test]
fn a_python_outside_requires_python_is_not_built_and_says_why() {
    let mut idx = index(&["2.0", "2.0.post1"]);
    idx[1].requires_python = Some("<3.12,>=3.9".parse().unwrap());
    let p = plan(&spec(""), &idx, &[], &[], &PlanOptions::default());
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
    assert_eq!(p.versions[1].steps, [Step::Create]);
}

#[test]
fn nothing_below_the_minimum_nothing_from_an_empty_index() {
    let p = plan(
        &spec(""),
        &index(&["0.9", "1.1"]),
        &[],
        &[],
        &PlanOptions::default(),
    );
    assert!(p.versions.is_empty());
    assert!(p.is_settled());
}

/// The asset of `platform` in `r`, to change as a store would show it.
fn asset_of(r: &mut Release, platform: Platform) -> &mut Asset {
    let name = pkg().asset_name(platform);
    r.assets.iter_mut().find(|a| a.name == name).unwrap()
}

#[test]
fn an_asset_that_is_not_what_was_built_is_reported_and_not_listed() {
    let s = spec("");
    let mut r = published(&s, "2.0", 1, &ALL);
    // Other bytes in linux-amd64's tarball, its digest in the store updated to match them.
    asset_of(&mut r, ALL[0]).sha256 = Some("b".repeat(64));
    let got = listing(&s, std::slice::from_ref(&r));
    assert_eq!(
        got.mismatches,
        [AssetMismatch {
            version: v("2.0"),
            platform: ALL[0],
            built: "a".repeat(64),
            built_size: 10,
            asset: Some("b".repeat(64)),
            asset_size: 10,
        }]
    );
    let text = got.mismatches[0].to_string();
    assert!(
        text.starts_with("linux-amd64: ")
            && text.contains(&"a".repeat(64))
            && text.contains(&"b".repeat(64)),
        "{text}"
    );
    let listed = &got.versions[0].complete.sha256;
    assert!(!listed.contains_key(&ALL[0]), "{listed:?}");
    assert_eq!(listed.len(), 3, "the others are what was built");
    assert!(listed.values().all(|d| *d == "a".repeat(64)));
    assert_eq!(listable(&s, std::slice::from_ref(&r)).len(), 1);

    let whole = spec("partial_platforms: false\n");
    let got = listing(&whole, std::slice::from_ref(&r));
    assert!(got.versions.is_empty(), "every platform or none");
    assert_eq!(got.mismatches.len(), 1, "still reported");
}

#[test]
fn every_mismatch_of_a_version_is_reported_even_when_it_is_not_listed_anyway() {
    let s = spec("partial_platforms: false\n");
    let mut r = published(&s, "2.0", 1, &ALL);
    // darwin-amd64's file was cut short: the store has no digest for it, only its size.
    let cut = asset_of(&mut r, ALL[2]);
    cut.sha256 = None;
    cut.size = 7;
    cut.uploaded = false;
    asset_of(&mut r, ALL[3]).sha256 = Some("c".repeat(64));
    r.assets.retain(|a| a.name != pkg().asset_name(ALL[0])); // and linux-amd64 is gone
    let got = listing(&s, &[r]);
    assert!(got.versions.is_empty());
    let on: Vec<(Platform, Option<String>, u64)> = got
        .mismatches
        .iter()
        .map(|m| (m.platform, m.asset.clone(), m.asset_size))
        .collect();
    assert_eq!(on, [(ALL[2], None, 7), (ALL[3], Some("c".repeat(64)), 10)]);
    assert!(
        got.mismatches[0]
            .to_string()
            .contains("sha256 unknown, 7 bytes")
    );
}

#[test]
fn a_listed_digest_is_the_build_infos_even_when_the_store_cannot_tell_the_assets() {
    let s = spec("");
    let mut r = published(&s, "2.0", 1, &ALL);
    for p in ALL {
        asset_of(&mut r, p).sha256 = None; // a GitHub without asset digests
    }
    let got = listing(&s, &[r]);
    assert!(got.mismatches.is_empty());
    assert_eq!(got.versions[0].complete.sha256.len(), 4);
    assert!(
        got.versions[0]
            .complete
            .sha256
            .values()
            .all(|d| *d == "a".repeat(64))
    );
}

#[test]
fn a_test_that_passed_only_on_a_mismatched_platform_does_not_count() {
    let s = spec("");
    let mut r = published(&s, "2.0", 1, &ALL);
    for (p, b) in r.info.as_mut().unwrap().platforms.iter_mut() {
        if *p != ALL[0] {
            b.test = Some(TestOutcome::NotTried {
                why: "cross-built".into(),
            });
        }
    }
    asset_of(&mut r, ALL[0]).sha256 = Some("b".repeat(64));
    let got = listing(&s, &[r]);
    assert_eq!(got.versions[0].tried, Tried::NotTried("cross-built".into()));
}
