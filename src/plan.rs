//! The planner: a pure function from a spec, the index's versions and the releases already in
//! the store to the desired (version, platform) set and the actions that get there. No I/O, so
//! the CLI, `sync` and the controller all decide the same way, and most tests live here.

use std::collections::HashMap;

use pep440_rs::Version;
use serde::Serialize;

use crate::names::{PackageName, Platform, PythonMinor};
use crate::pypi::IndexVersion;
use crate::release::{Release, ReleaseState};
use crate::spec::PackageSpec;

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only the newest N versions (after every other rule): for trying things out.
    pub latest: Option<usize>,
    /// Build only these platforms this time; releases still need every configured platform.
    pub platforms: Option<Vec<Platform>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create the (draft) release that assets are uploaded to.
    CreateRelease {
        version: Version,
        python: PythonMinor,
    },
    /// Build one platform's tarball; `replace` when an unusable asset of that name exists.
    Build {
        version: Version,
        python: PythonMinor,
        platform: Platform,
        replace: bool,
    },
    /// Every platform's asset is there: make the release public.
    PublishRelease { version: Version },
    /// Render the manifest with these versions (those complete once the actions above are done).
    WriteManifest { versions: Vec<Version> },
}

impl Action {
    /// The version the action is about (none for the manifest).
    pub fn version(&self) -> Option<&Version> {
        match self {
            Action::CreateRelease { version, .. }
            | Action::Build { version, .. }
            | Action::PublishRelease { version } => Some(version),
            Action::WriteManifest { .. } => None,
        }
    }

    /// The platform a build action builds.
    pub fn build_platform(&self) -> Option<Platform> {
        match self {
            Action::Build { platform, .. } => Some(*platform),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Published with every platform: nothing to do.
    Released,
    /// Every platform is there but the release is still a draft.
    ToPublish,
    /// Some platforms are there; the others are built, the rest kept.
    Partial,
    /// No release yet.
    New,
    /// A draft built with another python or config_version: rebuilt (it was never published).
    Rebuild,
    /// The configured python is outside the version's `requires-python`: not built.
    Incompatible,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionPlan {
    pub version: Version,
    pub python: PythonMinor,
    pub status: VersionStatus,
    /// Platforms with a complete asset.
    pub done: Vec<Platform>,
    /// Platforms to build this time.
    pub build: Vec<Platform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub package: PackageName,
    pub platforms: Vec<Platform>,
    /// Desired versions, newest first.
    pub versions: Vec<VersionPlan>,
    pub actions: Vec<Action>,
}

impl Plan {
    pub fn builds(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Build { .. }))
            .count()
    }

    pub fn count(&self, status: VersionStatus) -> usize {
        self.versions.iter().filter(|v| v.status == status).count()
    }

    /// True when nothing but (re)writing the manifest is left.
    pub fn is_settled(&self) -> bool {
        self.actions
            .iter()
            .all(|a| matches!(a, Action::WriteManifest { .. }))
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

pub fn plan(
    spec: &PackageSpec,
    index: &[IndexVersion],
    releases: &[Release],
    opts: &PlanOptions,
) -> Plan {
    let platforms = spec.platforms();
    let buildable: Vec<Platform> = match &opts.platforms {
        Some(only) => platforms
            .iter()
            .copied()
            .filter(|p| only.contains(p))
            .collect(),
        None => platforms.clone(),
    };
    let by_version: HashMap<&Version, &Release> =
        releases.iter().map(|r| (&r.version, r)).collect();

    let mut wanted = desired_versions(spec, index);
    if let Some(n) = opts.latest {
        wanted.truncate(n);
    }

    let mut versions = Vec::with_capacity(wanted.len());
    let mut actions = Vec::new();
    let mut manifest = Vec::new();
    for iv in wanted {
        let python = spec
            .python_for(&iv.version)
            .expect("desired versions are >= the minimum");
        let vp = plan_version(
            spec,
            iv,
            python,
            by_version.get(&iv.version).copied(),
            &platforms,
            &buildable,
        );
        push_actions(
            &vp,
            &spec.package,
            by_version.get(&iv.version).copied(),
            &platforms,
            &mut actions,
        );
        if will_be_complete(&vp, &platforms) {
            manifest.push(vp.version.clone());
        }
        versions.push(vp);
    }
    if !manifest.is_empty() {
        manifest.reverse(); // manifests list versions ascending
        actions.push(Action::WriteManifest { versions: manifest });
    }
    Plan {
        package: spec.package.clone(),
        platforms,
        versions,
        actions,
    }
}

fn plan_version(
    spec: &PackageSpec,
    iv: &IndexVersion,
    python: PythonMinor,
    release: Option<&Release>,
    platforms: &[Platform],
    buildable: &[Platform],
) -> VersionPlan {
    let mut vp = VersionPlan {
        version: iv.version.clone(),
        python,
        status: VersionStatus::New,
        done: Vec::new(),
        build: Vec::new(),
        note: None,
    };
    if let Some(r) = release {
        vp.done = platforms
            .iter()
            .copied()
            .filter(|p| r.has_complete(&spec.package, *p))
            .collect();
    }
    let incompatible = iv
        .requires_python
        .as_ref()
        .filter(|rp| !rp.contains(&python.as_version()));
    match (release, incompatible) {
        // A published release is never touched, whatever the config says now.
        (Some(r), _) if r.state == ReleaseState::Published && vp.done.len() == platforms.len() => {
            vp.status = VersionStatus::Released;
        }
        (_, Some(rp)) if vp.done.is_empty() => {
            vp.status = VersionStatus::Incompatible;
            vp.note = Some(format!(
                "requires-python {rp} excludes python {python}: add a versions entry from {} with a python it allows",
                iv.version
            ));
        }
        (Some(r), _) if r.state == ReleaseState::Draft && built_differently(r, spec, python) => {
            vp.status = VersionStatus::Rebuild;
            vp.note = Some(format!(
                "draft built with python {} / config_version {}: rebuilding with python {python} / config_version {}",
                r.python.map_or("?".into(), |p| p.to_string()),
                r.config_version.map_or("-".into(), |c| c.to_string()),
                spec.config_version.map_or("-".into(), |c| c.to_string()),
            ));
            vp.done.clear();
            vp.build = buildable.to_vec();
        }
        (Some(r), _) => {
            let missing: Vec<Platform> = platforms
                .iter()
                .copied()
                .filter(|p| !vp.done.contains(p))
                .collect();
            vp.status = if missing.is_empty() {
                VersionStatus::ToPublish
            } else {
                VersionStatus::Partial
            };
            vp.build = missing
                .into_iter()
                .filter(|p| buildable.contains(p))
                .collect();
            if r.state == ReleaseState::Published && !vp.build.is_empty() {
                vp.note =
                    Some("published without every platform: the missing ones are added".into());
            }
        }
        (None, _) => vp.build = buildable.to_vec(),
    }
    vp
}

/// A draft whose build info disagrees with the config was built from settings no longer wanted.
fn built_differently(r: &Release, spec: &PackageSpec, python: PythonMinor) -> bool {
    r.python.is_some_and(|p| p != python) || r.config_version != spec.config_version
}

fn push_actions(
    vp: &VersionPlan,
    package: &PackageName,
    release: Option<&Release>,
    platforms: &[Platform],
    actions: &mut Vec<Action>,
) {
    use VersionStatus::*;
    if matches!(vp.status, Released | Incompatible) {
        return;
    }
    let Some(release) = release else {
        actions.push(Action::CreateRelease {
            version: vp.version.clone(),
            python: vp.python,
        });
        for &platform in &vp.build {
            actions.push(Action::Build {
                version: vp.version.clone(),
                python: vp.python,
                platform,
                replace: false,
            });
        }
        if will_be_complete(vp, platforms) {
            actions.push(Action::PublishRelease {
                version: vp.version.clone(),
            });
        }
        return;
    };
    for &platform in &vp.build {
        // An unfinished upload, or a stale draft's asset, is in the way: replace it.
        let replace = release.asset(package, platform).is_some();
        actions.push(Action::Build {
            version: vp.version.clone(),
            python: vp.python,
            platform,
            replace,
        });
    }
    if release.state == ReleaseState::Draft && will_be_complete(vp, platforms) {
        actions.push(Action::PublishRelease {
            version: vp.version.clone(),
        });
    }
}

/// Complete once the planned builds succeed: every platform is done or being built.
fn will_be_complete(vp: &VersionPlan, platforms: &[Platform]) -> bool {
    vp.status != VersionStatus::Incompatible
        && platforms
            .iter()
            .all(|p| vp.done.contains(p) || vp.build.contains(p))
}

#[cfg(test)]
mod tests;
