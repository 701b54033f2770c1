//! The planner: a pure function from a spec, the index's versions, the releases in the store and
//! the work under way to what each version needs next. No I/O, so `sync`, `plan`, a build Job
//! and the controller all decide the same way, and most tests live here.
//!
//! The version is the unit of work. Its steps, in order: one draft release (the single place its
//! assets go; GitHub keeps several drafts of one tag, so extra ones are discarded and the oldest
//! kept), one lock (resolved once, recorded in the draft; a pure-Python lock builds every
//! platform in the same step), one build per platform from that lock, one publish once every
//! platform is there (or cannot exist), then the manifest lists it (`listable`).

use std::collections::{BTreeMap, HashMap};

use pep440_rs::Version;
use serde::Serialize;

use crate::hermit::CompleteVersion;
use crate::names::{BinaryName, PackageName, Platform, PythonMinor};
use crate::pypi::IndexVersion;
use crate::release::info::SourceRecord;
use crate::release::{Release, ReleaseId, ReleaseState, TestOutcome, VersionInputs};
use crate::spec::PackageSpec;

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only the newest N versions (after every other rule): for trying things out.
    pub latest: Option<usize>,
    /// Build only these platforms this time; releases still need every configured platform.
    pub platforms: Option<Vec<Platform>>,
    /// Build again the platforms recorded as impossible (a wheel may have appeared since).
    pub retry_missing: bool,
}

/// One step of a version's work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Delete a draft: a second one of the tag, or one made for other inputs.
    Discard { release: ReleaseId, why: String },
    /// Create the version's draft release.
    Create,
    /// Resolve the version and record the lock in its draft; a pure-Python lock also builds
    /// every platform (`platforms`).
    Lock {
        release: ReleaseId,
        platforms: Vec<Platform>,
    },
    /// Build one platform from the recorded lock.
    Build {
        release: ReleaseId,
        platform: Platform,
    },
    /// Every platform is there or cannot exist: publish with the complete build info.
    Publish { release: ReleaseId },
}

/// What a step under way (a Job in the cluster) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkState {
    Running,
    /// Finished; its output should be in the release.
    Succeeded,
    /// Out of retries: reported, not started again until the executor decides to retry.
    Failed {
        reason: String,
        message: String,
    },
}

/// Which step a piece of work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkKind {
    Lock,
    Build(Platform),
}

/// Work under way or finished for a release (the controller's Jobs; `sync` has none: it waits
/// for its own steps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub version: Version,
    pub release: ReleaseId,
    pub kind: WorkKind,
    pub state: WorkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Published with every platform (or each missing one recorded): nothing to do.
    Released,
    /// Every platform is there but the release is still a draft.
    ToPublish,
    /// Locked; platforms are being built or are to be built.
    Building,
    /// A draft without its lock yet.
    Locking,
    /// No release yet.
    New,
    /// Drafts made for other settings are discarded and the version built again.
    Rebuild,
    /// The configured python is outside the version's `requires-python`: not built.
    Incompatible,
    /// A step failed or a platform cannot exist while the config wants every platform:
    /// nothing moves until a retry.
    Blocked,
}

/// What went wrong for a version, or for one of its platforms: the one failure record of the
/// planner (what blocks a version), `sync` (what it reports) and the controller (its status
/// shows them as `FailureRecord`s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub version: Version,
    pub platform: Option<Platform>,
    /// A short CamelCase reason, as Kubernetes conditions have.
    pub reason: String,
    pub message: String,
}

impl Failure {
    pub fn new(
        version: &Version,
        platform: Option<Platform>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            version: version.clone(),
            platform,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionPlan {
    pub version: Version,
    pub python: PythonMinor,
    pub status: VersionStatus,
    /// The release the version's work goes to (none yet: `Create` comes first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseId>,
    /// Platforms built and in the release.
    pub done: Vec<Platform>,
    /// Platforms that cannot exist for this version, and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing: BTreeMap<Platform, String>,
    /// Platforms to build (now, or once the version is locked).
    pub build: Vec<Platform>,
    pub steps: Vec<Step>,
    /// A step finished but the release does not show its output yet: look again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub waiting: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A published version's Git tag now points elsewhere: said, never rebuilt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub package: PackageName,
    pub platforms: Vec<Platform>,
    /// Desired versions, newest first.
    pub versions: Vec<VersionPlan>,
}

impl Plan {
    /// Platform tarballs to build, now or once their version is locked.
    pub fn builds(&self) -> usize {
        self.versions
            .iter()
            .filter(|vp| {
                vp.steps
                    .iter()
                    .any(|s| matches!(s, Step::Create | Step::Lock { .. } | Step::Build { .. }))
            })
            .map(|vp| vp.build.len())
            .sum()
    }

    pub fn count(&self, status: VersionStatus) -> usize {
        self.versions.iter().filter(|v| v.status == status).count()
    }

    /// Every step, newest version first.
    pub fn steps(&self) -> impl Iterator<Item = (&VersionPlan, &Step)> {
        self.versions
            .iter()
            .flat_map(|vp| vp.steps.iter().map(move |s| (vp, s)))
    }

    /// True when nothing is left to do or to wait for.
    pub fn is_settled(&self) -> bool {
        self.versions
            .iter()
            .all(|v| v.steps.is_empty() && !v.waiting)
    }
}

/// The versions of the index that the spec asks for, newest first.
pub fn desired_versions<'a>(
    spec: &PackageSpec,
    index: &'a [IndexVersion],
) -> Vec<&'a IndexVersion> {
    let Some(minimum) = spec.minimum() else {
        return Vec::new();
    };
    let mut wanted: Vec<&IndexVersion> = index
        .iter()
        .filter(|iv| &iv.version >= minimum)
        .filter(|iv| spec.prereleases || !(iv.version.is_pre() || iv.version.is_dev()))
        .filter(|iv| !iv.version.is_local() && !spec.is_excluded(&iv.version))
        .collect();
    wanted.sort_by(|a, b| b.version.cmp(&a.version));
    wanted.dedup_by(|a, b| a.version == b.version);
    wanted
}

/// What the config asks of a version: a draft made for anything else is built again (a Git
/// tag moved to another commit included).
pub fn inputs(spec: &PackageSpec, iv: &IndexVersion, python: PythonMinor) -> VersionInputs {
    let mut requirements = vec![format!("{}=={}", spec.package, iv.version)];
    requirements.extend(spec.extra_packages.iter().cloned());
    let source = spec
        .source
        .as_ref()
        .zip(iv.git.as_ref())
        .map(|(s, t)| SourceRecord {
            git: s.git.clone(),
            subdirectory: s.subdirectory().to_owned(),
            tag: t.tag.clone(),
            commit: t.commit.clone(),
        });
    VersionInputs {
        python,
        config_version: spec.config_version,
        requirements,
        binaries: spec.binaries.clone(),
        test: spec.test.clone().unwrap_or_default(),
        source,
        build: spec.build.clone(),
        packages: spec.packages.clone(),
    }
}

pub fn plan(
    spec: &PackageSpec,
    index: &[IndexVersion],
    releases: &[Release],
    work: &[Work],
    opts: &PlanOptions,
) -> Plan {
    let platforms = spec.platforms();
    let mut by_version: HashMap<&Version, Vec<&Release>> = HashMap::new();
    for r in releases {
        by_version.entry(&r.version).or_default().push(r);
    }
    let mut wanted = desired_versions(spec, index);
    if let Some(n) = opts.latest {
        wanted.truncate(n);
    }
    let versions = wanted
        .into_iter()
        .map(|iv| {
            let rs = by_version.remove(&iv.version).unwrap_or_default();
            let work: Vec<&Work> = work.iter().filter(|w| w.version == iv.version).collect();
            plan_version(spec, iv, &rs, &work, opts)
        })
        .collect();
    Plan {
        package: spec.package.clone(),
        platforms,
        versions,
    }
}

/// One version's state and next steps.
pub fn plan_version(
    spec: &PackageSpec,
    iv: &IndexVersion,
    releases: &[&Release],
    work: &[&Work],
    opts: &PlanOptions,
) -> VersionPlan {
    let python = spec
        .python_for(&iv.version)
        .expect("desired versions are >= the minimum");
    let mut vp = VersionPlan {
        version: iv.version.clone(),
        python,
        status: VersionStatus::New,
        release: None,
        done: Vec::new(),
        missing: BTreeMap::new(),
        build: Vec::new(),
        steps: Vec::new(),
        waiting: false,
        blockers: Vec::new(),
        note: None,
        moved: None,
    };
    let mut releases: Vec<&Release> = releases.to_vec();
    releases.sort_by_key(|r| (r.order, r.id.clone()));
    let drafts: Vec<&Release> = releases
        .iter()
        .copied()
        .filter(|r| r.state == ReleaseState::Draft)
        .collect();
    if let Some(published) = releases.iter().find(|r| r.state == ReleaseState::Published) {
        // A published release is never touched; drafts beside it can only be leftovers.
        for d in &drafts {
            vp.steps.push(Step::Discard {
                release: d.id.clone(),
                why: format!("a draft beside the published release {}", published.tag),
            });
        }
        plan_published(spec, published, work, opts, &mut vp);
        vp.moved = moved_tag(published, iv);
        return vp;
    }

    let wanted = inputs(spec, iv, python);
    let (fresh, stale): (Vec<&Release>, Vec<&Release>) = drafts.into_iter().partition(|r| {
        let info = r.info.as_ref();
        // A draft locked by pex (before the pylock) is locked again: made afresh.
        let old_lock = info
            .and_then(|i| i.locked.as_ref())
            .is_some_and(|l| l.format.is_none());
        info.and_then(|i| i.inputs.as_ref()) == Some(&wanted) && !old_lock
    });
    for r in &stale {
        vp.steps.push(Step::Discard {
            release: r.id.clone(),
            why: stale_reason(r, &wanted),
        });
    }
    let Some((keep, extra)) = fresh.split_first() else {
        let incompatible = iv
            .requires_python
            .as_ref()
            .filter(|rp| !rp.contains(&python.as_version()));
        if let Some(rp) = incompatible {
            vp.steps.clear();
            vp.status = VersionStatus::Incompatible;
            vp.note = Some(format!(
                "requires-python {rp} excludes python {python}: add a versions entry from {} with a python it allows",
                iv.version
            ));
            return vp;
        }
        vp.status = if stale.is_empty() {
            VersionStatus::New
        } else {
            VersionStatus::Rebuild
        };
        if let Some(r) = stale.first() {
            vp.note = Some(stale_reason(r, &wanted));
        }
        vp.build = buildable(spec, opts);
        vp.steps.push(Step::Create);
        return vp;
    };
    for r in extra {
        vp.steps.push(Step::Discard {
            release: r.id.clone(),
            why: format!(
                "a second draft of {} (GitHub keeps several drafts of one tag): {} is kept, what this one holds is built there",
                r.tag, keep.id
            ),
        });
    }
    vp.release = Some(keep.id.clone());
    let work: Vec<&Work> = work
        .iter()
        .copied()
        .filter(|w| w.release == keep.id)
        .collect();
    plan_draft(spec, keep, &work, opts, &mut vp);
    vp
}

/// A draft: locked or to be locked, its platforms built or to build, then published.
fn plan_draft(
    spec: &PackageSpec,
    keep: &Release,
    work: &[&Work],
    opts: &PlanOptions,
    vp: &mut VersionPlan,
) {
    let state = |kind: WorkKind| work.iter().find(|w| w.kind == kind).map(|w| &w.state);
    let buildable = buildable(spec, opts);
    let lock_state = state(WorkKind::Lock);
    let Some(lock) = keep.lock(&spec.package) else {
        vp.status = VersionStatus::Locking;
        vp.build = buildable.clone();
        match lock_state {
            Some(WorkState::Running) => {}
            Some(WorkState::Succeeded) => vp.waiting = true,
            Some(WorkState::Failed { reason, message }) => block(vp, None, reason, message),
            None => vp.steps.push(Step::Lock {
                release: keep.id.clone(),
                platforms: buildable,
            }),
        }
        return;
    };
    let platforms = spec.platforms();
    let mut running = lock_state == Some(&WorkState::Running);
    for &p in &platforms {
        let built = keep.has_built(&spec.package, p);
        let missing = keep.has_missing(&spec.package, p);
        if built {
            vp.done.push(p);
            continue;
        }
        if missing && !opts.retry_missing {
            vp.missing.insert(p, missing_reason(keep, p));
            continue;
        }
        if !buildable.contains(&p) {
            continue;
        }
        vp.build.push(p);
        if lock.pure {
            continue; // the lock step builds these, below
        }
        match state(WorkKind::Build(p)) {
            Some(WorkState::Running) => running = true,
            Some(WorkState::Succeeded) => vp.waiting = true,
            Some(WorkState::Failed { reason, message }) => block(vp, Some(p), reason, message),
            None => vp.steps.push(Step::Build {
                release: keep.id.clone(),
                platform: p,
            }),
        }
    }
    // A pure lock builds one PEX for every platform in its own step: what is missing is built
    // by running that step again, never by one build per platform.
    if lock.pure && !vp.build.is_empty() {
        match lock_state {
            Some(WorkState::Running) => {}
            Some(WorkState::Succeeded) => vp.waiting = true,
            Some(WorkState::Failed { reason, message }) => block(vp, None, reason, message),
            None => vp.steps.push(Step::Lock {
                release: keep.id.clone(),
                platforms: vp.build.clone(),
            }),
        }
    }
    let complete = platforms
        .iter()
        .all(|p| vp.done.contains(p) || vp.missing.contains_key(p));
    if !complete {
        let moving = running || vp.waiting || !vp.steps.is_empty();
        vp.status = if vp.blockers.is_empty() || moving {
            VersionStatus::Building
        } else {
            VersionStatus::Blocked
        };
        return;
    }
    if !vp.missing.is_empty() && !spec.partial_platforms() {
        for (p, why) in vp.missing.clone() {
            block(
                vp,
                Some(p),
                "NoWheelForPlatform",
                &format!(
                    "{why}; partial_platforms is false, so the version waits for every platform"
                ),
            );
        }
        vp.status = VersionStatus::Blocked;
        return;
    }
    if vp.done.is_empty() {
        // Nothing can be built for any platform: nothing to publish.
        vp.status = VersionStatus::Blocked;
        for (p, why) in vp.missing.clone() {
            block(vp, Some(p), "NoWheelForPlatform", &why);
        }
        return;
    }
    vp.status = VersionStatus::ToPublish;
    if opts.platforms.is_none() {
        vp.steps.push(Step::Publish {
            release: keep.id.clone(),
        });
    }
}

/// A published release: done, unless a platform recorded as impossible is to be tried again.
fn plan_published(
    spec: &PackageSpec,
    published: &Release,
    work: &[&Work],
    opts: &PlanOptions,
    vp: &mut VersionPlan,
) {
    vp.status = VersionStatus::Released;
    vp.release = Some(published.id.clone());
    let missing_recorded = published
        .info
        .as_ref()
        .map(|i| i.missing.clone())
        .unwrap_or_default();
    let buildable = buildable(spec, opts);
    let recorded = |p: &Platform| {
        published
            .info
            .as_ref()
            .is_some_and(|i| i.platforms.contains_key(p))
    };
    let mut absent = Vec::new();
    let mut amend = false;
    for p in spec.platforms() {
        if published.has_complete(&spec.package, p) {
            vp.done.push(p);
            // Built since it was published (a wheel appeared): its build info says so too.
            amend |= published.info.is_some() && !recorded(&p) && missing_recorded.contains_key(&p);
        } else if let Some(why) = missing_recorded.get(&p) {
            vp.missing.insert(p, why.clone());
            if opts.retry_missing
                && buildable.contains(&p)
                && published.lock(&spec.package).is_some()
            {
                let running = work
                    .iter()
                    .any(|w| w.release == published.id && w.kind == WorkKind::Build(p));
                if !running {
                    vp.build.push(p);
                    vp.steps.push(Step::Build {
                        release: published.id.clone(),
                        platform: p,
                    });
                }
            }
        } else {
            absent.push(p.to_string());
        }
    }
    if amend && vp.steps.is_empty() {
        vp.steps.push(Step::Publish {
            release: published.id.clone(),
        });
    }
    if !absent.is_empty() {
        vp.note = Some(format!(
            "published without {} (by an older hermit-pex): a published release is never changed",
            absent.join(", ")
        ));
    }
}

/// The published version's tag, if it now points at another commit than the one it was built
/// from.
fn moved_tag(published: &Release, iv: &IndexVersion) -> Option<String> {
    let built = published.info.as_ref()?.inputs.as_ref()?.source.as_ref()?;
    let now = iv.git.as_ref()?;
    (now.commit != built.commit).then(|| {
        format!(
            "the tag {} moved from {} (published) to {}: the published release stays as it is",
            built.tag, built.commit, now.commit
        )
    })
}

fn block(vp: &mut VersionPlan, platform: Option<Platform>, reason: &str, message: &str) {
    let failure = Failure::new(&vp.version, platform, reason, message);
    vp.blockers.push(failure);
}

/// The platforms this run may build: the config's, narrowed by `--platforms`.
fn buildable(spec: &PackageSpec, opts: &PlanOptions) -> Vec<Platform> {
    spec.platforms()
        .into_iter()
        .filter(|p| opts.platforms.as_ref().is_none_or(|only| only.contains(p)))
        .collect()
}

/// Why a platform cannot exist, as the draft's build info says (the record asset holds it too).
fn missing_reason(release: &Release, platform: Platform) -> String {
    release
        .info
        .as_ref()
        .and_then(|i| i.missing.get(&platform).cloned())
        .unwrap_or_else(|| format!("no wheel for {platform}"))
}

fn stale_reason(r: &Release, wanted: &VersionInputs) -> String {
    let Some(had) = r.info.as_ref().and_then(|i| i.inputs.as_ref()) else {
        return format!(
            "the draft {} has no build info this hermit-pex can read: built again",
            r.id
        );
    };
    let mut changed = Vec::new();
    if r.info
        .as_ref()
        .and_then(|i| i.locked.as_ref())
        .is_some_and(|l| l.format.is_none())
    {
        changed.push("locked by pex, now by uv".into());
    }
    if had.python != wanted.python {
        changed.push(format!("python {} → {}", had.python, wanted.python));
    }
    if had.config_version != wanted.config_version {
        let show = |c: Option<u32>| c.map_or("-".into(), |c| c.to_string());
        changed.push(format!(
            "config_version {} → {}",
            show(had.config_version),
            show(wanted.config_version)
        ));
    }
    if had.requirements != wanted.requirements {
        changed.push("extra_packages".into());
    }
    if had.binaries != wanted.binaries {
        changed.push("binaries".into());
    }
    if had.test != wanted.test {
        changed.push("test".into());
    }
    format!(
        "the draft {} was made for other settings ({}): built again",
        r.id,
        changed.join(", ")
    )
}

/// How a version's builds were tried before listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    /// The test passed on at least one platform's own machine.
    Passed,
    /// No build could run it, and why.
    NotTried(String),
    /// No outcome recorded (a release made by an older hermit-pex).
    Unknown,
}

/// A version the manifest may list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listable {
    pub complete: CompleteVersion,
    pub tried: Tried,
}

/// A platform whose asset is not what was built and tested: the store's digest (or size) of
/// the asset differs from the build info's. It is never listed, and always reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetMismatch {
    pub version: Version,
    pub platform: Platform,
    /// The build info's sha256 and size: what was built and tested.
    pub built: String,
    pub built_size: u64,
    /// The store's sha256 of the asset as it is now (`None`: the store cannot tell), and size.
    pub asset: Option<String>,
    pub asset_size: u64,
}

impl AssetMismatch {
    /// What is wrong, without the platform (for a line that names it already).
    pub fn why(&self) -> String {
        format!(
            "the asset (sha256 {}, {} bytes) is not what was built and tested (sha256 {}, {} bytes): not listed",
            self.asset.as_deref().unwrap_or("unknown"),
            self.asset_size,
            self.built,
            self.built_size
        )
    }
}

impl std::fmt::Display for AssetMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.platform, self.why())
    }
}

/// What the manifest may list, and the platforms left out because their asset is not the
/// one built (each a failure for the caller to report).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub versions: Vec<Listable>,
    pub mismatches: Vec<AssetMismatch>,
}

/// The published versions a manifest may list: every platform of the config built (or, with
/// `partial_platforms`, recorded as impossible or left out for a mismatch), with digests,
/// and how they were tested. A listed digest is the build info's, and the asset's must be
/// the same, as must its size (all a store that does not know digests can check); a release
/// without any build info (made by an older hermit-pex) is listed with its assets' digests.
pub fn listing(spec: &PackageSpec, releases: &[Release]) -> Listing {
    let platforms = spec.platforms();
    let mut mismatches = Vec::new();
    let versions = releases
        .iter()
        .filter(|r| r.state == ReleaseState::Published)
        .filter_map(|r| {
            let info = r.info.as_ref();
            let mut sha256 = BTreeMap::new();
            // Every platform is looked at, so each mismatch is reported.
            let mut complete = true;
            for &p in &platforms {
                let recorded = info.and_then(|i| i.platforms.get(&p));
                let asset = r.asset(&spec.package, p);
                let differs = |b: &crate::release::PlatformBuild, a: &crate::release::Asset| {
                    a.size != b.size || a.sha256.as_ref().is_some_and(|d| *d != b.sha256)
                };
                let mut mismatched = false;
                let digest = match (recorded, asset) {
                    (Some(b), Some(a)) if differs(b, a) => {
                        mismatches.push(AssetMismatch {
                            version: r.version.clone(),
                            platform: p,
                            built: b.sha256.clone(),
                            built_size: b.size,
                            asset: a.sha256.clone(),
                            asset_size: a.size,
                        });
                        mismatched = true;
                        None
                    }
                    (_, None) => None,
                    (_, Some(a)) if !a.is_present() => None,
                    (Some(b), Some(_)) => Some(b.sha256.clone()),
                    (None, Some(a)) if info.is_none() => a.sha256.clone(),
                    // Built since it was published and not yet in the build info.
                    (None, Some(_)) => None,
                };
                let missing = info.is_some_and(|i| i.missing.contains_key(&p));
                match digest {
                    Some(d) if crate::release::is_sha256_hex(&d) => {
                        sha256.insert(p, d);
                    }
                    _ if spec.partial_platforms() && (missing || mismatched) => {}
                    _ => complete = false,
                }
            }
            if !complete || sha256.is_empty() {
                return None;
            }
            let python = r.python().or_else(|| spec.python_for(&r.version))?;
            let binaries: Vec<BinaryName> = info
                .and_then(|i| i.locked.as_ref().map(|l| l.binaries.clone()))
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| spec.binaries.clone());
            // A test passed on a platform left out says nothing of the listed bytes.
            let tried = tried(info, &sha256.keys().copied().collect::<Vec<_>>());
            Some(Listable {
                complete: CompleteVersion {
                    version: r.version.clone(),
                    python,
                    sha256,
                    binaries,
                },
                tried,
            })
        })
        .collect();
    Listing {
        versions,
        mismatches,
    }
}

/// The versions of [`listing`] alone: mismatched platforms are left out, unreported.
pub fn listable(spec: &PackageSpec, releases: &[Release]) -> Vec<Listable> {
    listing(spec, releases).versions
}

fn tried(info: Option<&crate::release::BuildInfo>, platforms: &[Platform]) -> Tried {
    let outcomes: Vec<Option<&TestOutcome>> = platforms
        .iter()
        .filter_map(|p| info?.platforms.get(p))
        .map(|b| b.test.as_ref())
        .collect();
    if outcomes
        .iter()
        .any(|o| matches!(o, Some(TestOutcome::Passed { .. })))
    {
        return Tried::Passed;
    }
    let why: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| match o {
            Some(TestOutcome::NotTried { why }) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    if why.is_empty() || why.len() < outcomes.len() {
        Tried::Unknown
    } else {
        let mut why: Vec<&str> = why;
        why.sort();
        why.dedup();
        Tried::NotTried(why.join("; "))
    }
}

#[cfg(test)]
mod tests;
