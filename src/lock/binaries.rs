//! The launchers of a version, from the console scripts of every locked distribution (ansible's
//! commands are ansible-core's): the configured binaries may be any distribution's scripts;
//! left out, they are the top-level distribution's scripts or, when it has none, those of its
//! direct requirements.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use pep440_rs::Version;
use pep508_rs::MarkerEnvironment;

use super::choose::{Choices, Target};
use super::dist_info::{self, DistInfoError};
use super::pylock::{File, Pylock};
use crate::names::{BinaryName, PackageName};
use crate::spec::rules::collides_with_pex;

/// One wheel of each distribution a wanted platform installs (its marker holds there), to read
/// its scripts from: a distribution's scripts do not depend on the platform, and a missing
/// platform's distributions count too (the launchers are decided even when no platform can
/// be built yet). Preferred: a wheel some platform chose (its build fetches it anyway), then a
/// `none-any` one, then the smallest. Distributions with no wheel at all (sdist only) are
/// returned apart: their scripts are known once built.
pub fn script_sources(lock: &Pylock, choices: &Choices) -> (Vec<File>, BTreeSet<PackageName>) {
    let chosen: BTreeSet<&str> = choices
        .ready()
        .flat_map(|(_, files)| files.iter().map(|c| c.file.sha256.as_str()))
        .collect();
    let targets: Vec<Target> = choices
        .platforms
        .keys()
        .map(|p| Target::new(*p, choices.python))
        .collect();
    let mut files = Vec::new();
    let mut sdist_only = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for package in lock
        .packages
        .iter()
        .filter(|p| targets.iter().any(|t| t.applies(p.marker.as_ref())))
    {
        if !seen.insert(&package.name) {
            continue;
        }
        let best = package.wheels.iter().min_by_key(|w| {
            (
                !chosen.contains(w.file.sha256.as_str()),
                !w.tags.is_none_any(),
                w.file.size.unwrap_or(u64::MAX),
                &w.file.name,
            )
        });
        match best {
            Some(w) => files.push(w.file.clone()),
            None => {
                sdist_only.insert(package.name.clone());
            }
        }
    }
    (files, sdist_only)
}

/// What the locked distributions offer as commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    pub top: PackageName,
    /// Each distribution read, with its console scripts.
    pub by_distribution: BTreeMap<PackageName, Vec<String>>,
    /// Distributions locked as sdists only: scripts unknown until built.
    pub unread: BTreeSet<PackageName>,
    /// The top-level distribution's direct requirements that apply on some wanted platform.
    pub direct: BTreeSet<PackageName>,
}

/// Reads the scripts of each wheel in `wheels` (file, path on disk), and the top-level
/// distribution's requirements evaluated in `environments` (the wanted platforms'). Blocking.
pub fn read_scripts(
    top: &PackageName,
    wheels: &[(File, PathBuf)],
    unread: BTreeSet<PackageName>,
    environments: &[MarkerEnvironment],
) -> Result<Scripts, DistInfoError> {
    let mut scripts = Scripts {
        top: top.clone(),
        by_distribution: BTreeMap::new(),
        unread,
        direct: BTreeSet::new(),
    };
    for (file, path) in wheels {
        let info = dist_info::read_wheel(path)?;
        let name = super::wheel_name::WheelName::parse(&file.name)
            .ok()
            .and_then(|w| PackageName::new(&w.distribution).ok());
        let Some(name) = name else { continue };
        if &name == top {
            scripts.direct = info
                .requires_dist
                .iter()
                .filter(|r| environments.iter().any(|env| r.marker.evaluate(env, &[])))
                .filter_map(|r| PackageName::new(r.name.as_ref()).ok())
                .collect();
        }
        scripts.by_distribution.insert(name, info.console_scripts);
    }
    Ok(scripts)
}

/// The launchers a version gets, and the distribution each command comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub names: Vec<BinaryName>,
    pub from: BTreeMap<BinaryName, PackageName>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinariesError {
    /// Configured binaries no locked distribution has.
    #[error(
        "{field}: {absent} {verb} not a console script of any distribution locked for {package} {version} (there are {listing}): fix binaries in the config, or leave it out for {package}'s own"
    )]
    Unknown {
        /// The entries, as every config error names its field (file and line when read
        /// from a config file).
        field: String,
        absent: String,
        verb: &'static str,
        package: PackageName,
        version: Version,
        listing: String,
    },
    /// The answer depends on distributions locked as sdists only: the build must read the
    /// scripts from what it built.
    #[error(
        "the console scripts of {} {version} depend on {}, locked as sdist only: known once built",
        .package, .unread.join(", ")
    )]
    NotYetKnown {
        package: PackageName,
        version: Version,
        unread: Vec<String>,
    },
    #[error(
        "{package} {version} has no console script a launcher can be made for, nor have its direct requirements (there are {listing}): it is not a command-line tool; name the binaries in the config"
    )]
    None {
        package: PackageName,
        version: Version,
        listing: String,
    },
}

impl Scripts {
    /// Who offers `script`: the top-level distribution first, then its direct requirements,
    /// then the rest (each in name order).
    fn provider(&self, script: &str) -> Option<&PackageName> {
        let offers = |d: &&PackageName| self.by_distribution[*d].iter().any(|s| s == script);
        let mut order: Vec<&PackageName> = self.by_distribution.keys().collect();
        order.sort_by_key(|d| (*d != &self.top, !self.direct.contains(*d), (*d).clone()));
        order.into_iter().find(offers)
    }

    /// "ansible (ansible-core), ansible-community (ansible), …", in script order.
    fn listing(&self) -> String {
        let mut all: Vec<(String, &PackageName)> = self
            .by_distribution
            .iter()
            .flat_map(|(d, s)| s.iter().map(move |s| (s.clone(), d)))
            .collect();
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        if all.is_empty() {
            return "none".to_owned();
        }
        const MAX: usize = 40;
        let mut parts: Vec<String> = all
            .iter()
            .take(MAX)
            .map(|(s, d)| format!("{s} ({d})"))
            .collect();
        if all.len() > MAX {
            parts.push(format!("and {} more", all.len() - MAX));
        }
        parts.join(", ")
    }

    /// Usable launcher names among `dist`'s scripts.
    fn usable(&self, dist: &PackageName) -> Vec<BinaryName> {
        self.by_distribution
            .get(dist)
            .into_iter()
            .flatten()
            .filter(|s| !collides_with_pex(s, &self.top))
            .filter_map(|s| BinaryName::new(s).ok())
            .collect()
    }
}

/// The launchers of `package` `version`: `configured` when each is some locked distribution's
/// console script, else an error naming every script there is and its distribution; with none
/// configured, the top-level distribution's scripts or, when it has none, those of its direct
/// requirements.
pub fn binaries(
    package: &PackageName,
    version: &Version,
    configured: &[BinaryName],
    scripts: &Scripts,
) -> Result<Binaries, BinariesError> {
    let not_yet = |unread: Vec<&PackageName>| BinariesError::NotYetKnown {
        package: package.clone(),
        version: version.clone(),
        unread: unread.into_iter().map(ToString::to_string).collect(),
    };
    let names: Vec<BinaryName> = if configured.is_empty() {
        if scripts.unread.contains(package) {
            return Err(not_yet(vec![package]));
        }
        let own = scripts.usable(package);
        if !own.is_empty() {
            own
        } else {
            let unread: Vec<&PackageName> = scripts.unread.intersection(&scripts.direct).collect();
            if !unread.is_empty() {
                return Err(not_yet(unread));
            }
            scripts
                .direct
                .iter()
                .flat_map(|d| scripts.usable(d))
                .collect()
        }
    } else {
        configured.to_vec()
    };
    let mut names = names;
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(BinariesError::None {
            package: package.clone(),
            version: version.clone(),
            listing: scripts.listing(),
        });
    }
    let mut from = BTreeMap::new();
    let mut absent = Vec::new();
    for name in &names {
        match scripts.provider(name.as_str()) {
            Some(d) => {
                from.insert(name.clone(), d.clone());
            }
            None => absent.push(name.as_str()),
        }
    }
    if !absent.is_empty() {
        if !scripts.unread.is_empty() {
            return Err(not_yet(scripts.unread.iter().collect()));
        }
        return Err(BinariesError::Unknown {
            field: crate::names::binaries_field(configured, |b| absent.contains(&b.as_str())),
            verb: if absent.len() == 1 { "is" } else { "are" },
            absent: absent.join(", "),
            package: package.clone(),
            version: version.clone(),
            listing: scripts.listing(),
        });
    }
    Ok(Binaries { names, from })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(n: &str) -> PackageName {
        PackageName::new(n).unwrap()
    }

    fn bins(v: &[&str]) -> Vec<BinaryName> {
        v.iter().map(|n| BinaryName::new(n).unwrap()).collect()
    }

    fn ansible() -> Scripts {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Scripts {
            top: pkg("ansible"),
            by_distribution: BTreeMap::from([
                (pkg("ansible"), s(&["ansible-community"])),
                (
                    pkg("ansible-core"),
                    s(&["ansible", "ansible-playbook", "ansible-galaxy"]),
                ),
                (pkg("jinja2"), vec![]),
                (pkg("other"), s(&["ansible-playbook"])),
            ]),
            unread: BTreeSet::new(),
            direct: BTreeSet::from([pkg("ansible-core")]),
        }
    }

    #[test]
    fn configured_binaries_may_be_any_distributions_scripts() {
        let v: Version = "14.5.0".parse().unwrap();
        let b = binaries(
            &pkg("ansible"),
            &v,
            &bins(&["ansible-playbook", "ansible", "ansible-community"]),
            &ansible(),
        )
        .unwrap();
        assert_eq!(
            b.names,
            bins(&["ansible", "ansible-community", "ansible-playbook"])
        );
        assert_eq!(b.from[&bins(&["ansible"])[0]], pkg("ansible-core"));
        assert_eq!(
            b.from[&bins(&["ansible-playbook"])[0]],
            pkg("ansible-core"),
            "a direct requirement's script wins over another distribution's"
        );
        assert_eq!(b.from[&bins(&["ansible-community"])[0]], pkg("ansible"));
    }

    #[test]
    fn an_unknown_binary_is_refused_naming_every_script_and_its_distribution() {
        let v: Version = "14.5.0".parse().unwrap();
        let e = binaries(
            &pkg("ansible"),
            &v,
            &bins(&["ansible", "ansible-lint", "nope"]),
            &ansible(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "binaries[1], binaries[2]: ansible-lint, nope are not a console script of any \
             distribution locked for ansible 14.5.0 (there are ansible (ansible-core), \
             ansible-community (ansible), ansible-galaxy (ansible-core), ansible-playbook \
             (ansible-core)): fix binaries in the config, or leave it out for ansible's own"
        );
        // Read from a config file, the names say where: its file and their lines.
        let at = |line| crate::names::Written {
            file: "python/ansible/config.yaml".into(),
            line,
        };
        let written: Vec<BinaryName> = bins(&["ansible", "nope"])
            .into_iter()
            .zip([3, 4])
            .map(|(b, line)| b.written_at(at(line)))
            .collect();
        let e = binaries(&pkg("ansible"), &v, &written, &ansible())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("python/ansible/config.yaml: binaries[1] (line 4): nope is not"),
            "{e}"
        );
    }

    #[test]
    fn the_default_is_the_top_levels_scripts_else_its_direct_requirements() {
        let v: Version = "14.5.0".parse().unwrap();
        let b = binaries(&pkg("ansible"), &v, &[], &ansible()).unwrap();
        assert_eq!(b.names, bins(&["ansible-community"]));

        let mut wrapper = ansible();
        wrapper.by_distribution.insert(pkg("ansible"), vec![]);
        let b = binaries(&pkg("ansible"), &v, &[], &wrapper).unwrap();
        assert_eq!(
            b.names,
            bins(&["ansible", "ansible-galaxy", "ansible-playbook"]),
            "only the direct requirement's, not other's"
        );

        wrapper.direct.clear();
        let e = binaries(&pkg("ansible"), &v, &[], &wrapper)
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no console script"), "{e}");
        assert!(e.contains("ansible-playbook (ansible-core)"), "{e}");
    }

    #[test]
    fn sdist_only_distributions_leave_the_answer_to_the_build() {
        let v: Version = "1.0".parse().unwrap();
        let mut s = ansible();
        s.unread.insert(pkg("ansible"));
        s.by_distribution.remove(&pkg("ansible"));
        let e = binaries(&pkg("ansible"), &v, &[], &s).unwrap_err();
        assert!(matches!(e, BinariesError::NotYetKnown { .. }), "{e}");
        // Configured scripts that are known need no build.
        assert!(binaries(&pkg("ansible"), &v, &bins(&["ansible"]), &s).is_ok());
        let e = binaries(&pkg("ansible"), &v, &bins(&["ansible-community"]), &s).unwrap_err();
        assert!(
            e.to_string().contains("ansible, locked as sdist only"),
            "{e}"
        );
    }

    #[test]
    fn a_script_named_like_the_pex_is_no_launcher() {
        let v: Version = "1.0".parse().unwrap();
        let s = Scripts {
            top: pkg("tool"),
            by_distribution: BTreeMap::from([(
                pkg("tool"),
                vec![
                    "tool".to_owned(),
                    "TOOL.pex".to_owned(),
                    "bad name".to_owned(),
                ],
            )]),
            unread: BTreeSet::new(),
            direct: BTreeSet::new(),
        };
        assert_eq!(
            binaries(&pkg("tool"), &v, &[], &s).unwrap().names,
            bins(&["tool"])
        );
    }
}
