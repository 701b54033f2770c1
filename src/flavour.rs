//! Build flavours: the operator's table of build environments (`--flavours FILE` for `sync`
//! and the controller; the chart's `flavours` values), each a builder image, the command that
//! installs system packages (an argv list: packages are appended as arguments, never spliced
//! into a shell string), and base build and runtime packages. A package's `build` may name a
//! flavour and add its own `build_packages` / `runtime_packages`.
//!
//! - On one machine, `sync` never installs anything: before an sdist is built it checks the
//!   build packages are present ([`check_host`]: `dpkg-query`, else `rpm -q`) and fails the
//!   version naming the missing ones and the command that would install them.
//! - In a cluster, the flavour's image runs the package's Jobs; its build Job checks the same
//!   way, unless the operator set `installPackages: true`, where an init container (root, the
//!   only one) installs them into a volume the build container reads (see `controller::jobs`).
//! - Runtime packages become dependencies of the `.deb`/`.rpm` of the flavour's family (both
//!   when no flavour is named) and are recorded with them in the build info.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::{BuildSpec, PackageFormat, rules};

/// The operator's flavours, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flavours {
    #[serde(default)]
    pub flavours: BTreeMap<String, Flavour>,
    /// Set in a build Job whose init container installed the build packages into the sysroot
    /// volume (`--build-packages-installed`): they are not checked again. Never in `sync`.
    #[serde(skip)]
    pub installed: bool,
}

/// One build environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Flavour {
    /// The builder image its Jobs run (hermit-pex, pex and the pythons, on this distribution);
    /// none: the controller's builder image. `sync` builds on its own machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Installs system packages, as an argv list; the packages are appended, one argument
    /// each. E.g. `[apt-get, install, -y, --no-install-recommends]` or `[dnf, install, -y]`.
    pub install: Vec<String>,
    /// Whose package names these are: `deb` or `rpm`. The `.deb`/`.rpm` of that family
    /// depends on the runtime packages.
    pub family: PackageFormat,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_packages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_packages: Vec<String>,
    /// Cluster only: an init container (running as root) installs the build packages before
    /// each build; otherwise the image must hold them and the build checks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub install_packages: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlavourError {
    /// The flavour table cannot be used (a problem per line, each naming its field).
    #[error("flavours: {0}")]
    Table(String),
    #[error(
        "build.flavour: the operator has no flavour {0}: ask for it, or leave the field out to build without one"
    )]
    Unknown(String),
    /// Build packages absent where an sdist is to be built.
    #[error("{0}")]
    Missing(String),
    /// The host's package database could not be asked.
    #[error("{0}")]
    Check(String),
}

impl Flavours {
    /// Reads a table (YAML: `flavours: {NAME: {install: [...], family: deb, ...}}`), with
    /// every name checked. An empty document is an empty table.
    pub fn parse(yaml: &str) -> Result<Self, FlavourError> {
        let table: Flavours = if yaml.trim().is_empty() {
            Flavours::default()
        } else {
            serde_norway::from_str(yaml).map_err(|e| FlavourError::Table(e.to_string()))?
        };
        table
            .validate()
            .map_err(|p| FlavourError::Table(p.join("; ")))?;
        Ok(table)
    }

    /// Every problem, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (n, (name, f)) in self.flavours.iter().enumerate() {
            if name.len() > rules::MAX_INDEX_NAME_LEN || !rules::INDEX_NAME.is_match(name) {
                // Not echoed: the name of entry n, in sorted order.
                problems.push(format!(
                    "name {} (in sorted order) is not a flavour name: lowercase letters, digits \
                     and '-', at most 63",
                    n + 1
                ));
                continue;
            }
            if f.install.is_empty() {
                problems.push(format!(
                    "{name}.install: give the command as a list, e.g. [apt-get, install, -y]"
                ));
            }
            for (i, a) in f.install.iter().enumerate() {
                if a.is_empty() || rules::first_control(a).is_some() {
                    problems.push(format!(
                        "{name}.install[{i}]: an argument is one non-empty line of text"
                    ));
                }
            }
            if let Some(image) = &f.image
                && (image.is_empty()
                    || image.len() > 512
                    || !image.bytes().all(|b| (b'!'..=b'~').contains(&b)))
            {
                problems.push(format!(
                    "{name}.image: an image reference, printable ASCII without spaces"
                ));
            }
            for (field, list) in [
                ("buildPackages", &f.build_packages),
                ("runtimePackages", &f.runtime_packages),
            ] {
                problems.extend(rules::package_problems(list).into_iter().map(
                    |(i, why)| match i {
                        Some(i) => format!("{name}.{field}[{i}]: {why}"),
                        None => format!("{name}.{field}: {why}"),
                    },
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// What a package's `build` comes to with its flavour: the flavour's packages first, then
    /// the package's, each once.
    pub fn resolve(&self, build: Option<&BuildSpec>) -> Result<Resolved, FlavourError> {
        let default = BuildSpec::default();
        let build = build.unwrap_or(&default);
        let flavour = match &build.flavour {
            None => None,
            Some(name) => Some((
                name.clone(),
                self.flavours
                    .get(name)
                    .cloned()
                    .ok_or_else(|| FlavourError::Unknown(name.clone()))?,
            )),
        };
        let merge = |base: &[String], own: &[String]| {
            let mut all: Vec<String> = Vec::new();
            for p in base.iter().chain(own) {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
            all
        };
        let (base_build, base_runtime) = flavour.as_ref().map_or((&[][..], &[][..]), |(_, f)| {
            (&f.build_packages[..], &f.runtime_packages[..])
        });
        Ok(Resolved {
            build_packages: merge(base_build, &build.build_packages),
            runtime_packages: merge(base_runtime, &build.runtime_packages),
            installed: self.installed && flavour.as_ref().is_some_and(|(_, f)| f.install_packages),
            flavour,
        })
    }

    /// The table with only `name`'s entry (what a Job is given).
    pub fn only(&self, name: &str) -> Flavours {
        Flavours {
            flavours: self
                .flavours
                .get_key_value(name)
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .collect(),
            installed: false,
        }
    }
}

/// A package's build environment, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub flavour: Option<(String, Flavour)>,
    /// Needed to build its sdists: the flavour's, then the package's.
    pub build_packages: Vec<String>,
    /// Needed to run it: the flavour's, then the package's.
    pub runtime_packages: Vec<String>,
    /// An init container installed the build packages (a Job of a flavour with
    /// `installPackages: true`): not checked here.
    pub installed: bool,
}

impl Resolved {
    /// The dependencies of its package of `format` beside the python: the runtime packages
    /// when the flavour's family is `format` (or no flavour is named), else none (those names
    /// are another distribution's).
    pub fn depends(&self, format: PackageFormat) -> &[String] {
        match &self.flavour {
            Some((_, f)) if f.family != format => &[],
            _ => &self.runtime_packages,
        }
    }

    /// Whether an init container installs the build packages (cluster).
    pub fn installs(&self) -> bool {
        self.flavour
            .as_ref()
            .is_some_and(|(_, f)| f.install_packages && !self.build_packages.is_empty())
    }

    /// The command that would install `packages`: the flavour's, else the host's usual one.
    pub fn install_command(&self, host: Option<Packager>, packages: &[String]) -> String {
        let mut argv: Vec<String> = match (&self.flavour, host) {
            (Some((_, f)), _) => f.install.clone(),
            (None, Some(Packager::Rpm)) => vec!["dnf".into(), "install".into(), "-y".into()],
            (None, _) => vec!["apt-get".into(), "install".into(), "-y".into()],
        };
        argv.extend(packages.iter().cloned());
        // For people to read and copy: quoted where an argument is not plain.
        argv.iter()
            .map(|a| shlex::try_quote(a).map_or_else(|_| a.clone(), |q| q.into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The package database a machine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packager {
    /// `dpkg-query -W` (Debian, Ubuntu).
    Dpkg,
    /// `rpm -q --whatprovides` (Fedora, RHEL, SUSE).
    Rpm,
}

impl Packager {
    /// Whichever this machine has, dpkg first.
    pub fn host() -> Option<Packager> {
        if crate::tools::which("dpkg-query").is_some() {
            Some(Packager::Dpkg)
        } else if crate::tools::which("rpm").is_some() {
            Some(Packager::Rpm)
        } else {
            None
        }
    }
}

/// Which of `packages` this machine lacks, asked of `packager` one package at a time (names are
/// validated, and go to it as arguments).
pub async fn missing(
    packager: Packager,
    packages: &[String],
    timeout: Duration,
) -> Result<Vec<String>, FlavourError> {
    let mut missing = Vec::new();
    for p in packages {
        if !rules::is_distro_package(p) {
            // Never reaches a command line; the spec and the table refuse it before.
            return Err(FlavourError::Check(
                "a build package is not a distribution package name".into(),
            ));
        }
        let (program, args): (&str, Vec<&str>) = match packager {
            Packager::Dpkg => ("dpkg-query", vec!["-W", "-f=${db:Status-Status}", p]),
            Packager::Rpm => ("rpm", vec!["-q", "--whatprovides", p]),
        };
        let path = crate::tools::which(program)
            .ok_or_else(|| FlavourError::Check(format!("{program} is not on PATH")))?;
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let present = match crate::tools::run(&path, &args, &[], timeout).await {
            Ok(out) => packager == Packager::Rpm || out.stdout.trim() == "installed",
            Err(crate::tools::ToolError::Failed { .. }) => false,
            Err(e) => return Err(FlavourError::Check(e.to_string())),
        };
        if !present {
            missing.push(p.clone());
        }
    }
    Ok(missing)
}

/// Fails when this machine lacks some of the build packages, naming them and the command that
/// would install them. `sync` installs nothing itself.
pub async fn check_host(resolved: &Resolved, timeout: Duration) -> Result<(), FlavourError> {
    if resolved.build_packages.is_empty() || resolved.installed {
        return Ok(());
    }
    let Some(packager) = Packager::host() else {
        return Err(FlavourError::Check(format!(
            "build_packages ({}) cannot be checked: this machine has neither dpkg-query nor rpm",
            resolved.build_packages.join(", ")
        )));
    };
    let missing = missing(packager, &resolved.build_packages, timeout).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let of = resolved
        .flavour
        .as_ref()
        .map_or_else(String::new, |(n, _)| format!(" (flavour {n})"));
    Err(FlavourError::Missing(format!(
        "build packages missing on this machine{of}: {}; an sdist is built here and needs them. \
         hermit-pex installs nothing itself: install them with `{}`",
        missing.join(", "),
        resolved.install_command(Some(packager), &missing)
    )))
}

#[cfg(test)]
mod tests;
