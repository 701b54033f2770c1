//! Pex "complete platform" documents, so a PEX for a foreign target (darwin on a linux host,
//! arm64 on amd64) can be resolved with `pex --complete-platform FILE` and no interpreter of
//! that target at hand.
//!
//! The tag list mirrors what `packaging.tags.sys_tags()` yields for CPython (the output of
//! `pex3 interpreter inspect --markers --tags`), with the target's libc / OS version pinned to a
//! documented floor instead of a host's: a wheel is only picked if it runs on every machine at
//! or above the floor.

use serde_json::{Value, json};

use crate::names::{Arch, Os, Platform, PythonMinor};

/// The glibc we claim for linux targets and the macOS we claim for darwin targets (documented floors).
pub const GLIBC_FLOOR: (u32, u32) = (2, 28);
pub const MACOS_FLOOR: (u32, u32) = (14, 0);

/// `{"marker_environment": {...}, "compatible_tags": [...]}` for CPython 3.<minor> on `platform`.
pub fn complete_platform(platform: Platform, python: PythonMinor) -> Value {
    json!({
        "marker_environment": marker_environment(platform, python),
        "compatible_tags": compatible_tags(platform, python),
    })
}

/// The tags alone, most specific first (the order pip/pex rank wheels by).
pub fn compatible_tags(platform: Platform, python: PythonMinor) -> Vec<String> {
    let minor = u32::from(python.minor());
    let platforms = match platform.os {
        Os::Linux => linux_platforms(platform.arch),
        Os::Darwin => mac_platforms(platform.arch),
    };
    let cp = format!("cp3{minor}");
    let mut tags = Vec::new();
    let mut each_platform = |prefix: &str| {
        tags.extend(platforms.iter().map(|p| format!("{prefix}-{p}")));
    };

    // packaging's cpython_tags(): own ABI, the stable ABI, no ABI, then the stable ABI of every
    // older 3.x back to 3.2 (where abi3 began).
    each_platform(&format!("{cp}-{cp}"));
    each_platform(&format!("{cp}-abi3"));
    each_platform(&format!("{cp}-none"));
    for older in (2..minor).rev() {
        each_platform(&format!("cp3{older}-abi3"));
    }

    // packaging's compatible_tags(): `py3X`, then `py3`, then every older `py3x`, first with a
    // platform, then platform-independent (with the interpreter's own `cp3X-none-any` first).
    let py_versions: Vec<String> = [format!("py3{minor}"), "py3".to_owned()]
        .into_iter()
        .chain((0..minor).rev().map(|m| format!("py3{m}")))
        .collect();
    for version in &py_versions {
        each_platform(&format!("{version}-none"));
    }
    tags.push(format!("{cp}-none-any"));
    tags.extend(py_versions.iter().map(|v| format!("{v}-none-any")));
    tags
}

/// Linux platform tags, newest glibc first: `manylinux_2_<floor>` down to the oldest manylinux
/// the arch has, each pre-PEP 600 alias right after the tag it stands for (old wheels carry only
/// the alias), then the bare `linux_<arch>`. pip's packaging puts `linux_` last; no musllinux,
/// since we only claim glibc targets.
fn linux_platforms(arch: Arch) -> Vec<String> {
    // manylinux1 (glibc 2.5) and manylinux2010 (2.12) were x86 only; aarch64 starts at 2014 (2.17).
    let (machine, oldest) = match arch {
        Arch::Amd64 => ("x86_64", 5),
        Arch::Arm64 => ("aarch64", 17),
    };
    let (major, floor) = GLIBC_FLOOR;
    let mut out = Vec::new();
    for minor in (oldest..=floor).rev() {
        out.push(format!("manylinux_{major}_{minor}_{machine}"));
        let legacy = match (major, minor) {
            (2, 17) => Some("manylinux2014"),
            (2, 12) => Some("manylinux2010"),
            (2, 5) => Some("manylinux1"),
            _ => None,
        };
        if let Some(legacy) = legacy {
            out.push(format!("{legacy}_{machine}"));
        }
    }
    out.push(format!("linux_{machine}"));
    out
}

/// packaging's `mac_platforms(MACOS_FLOOR, arch)`: from macOS 11 on only the major counts (minor
/// is always 0), then 10.16 down to 10.4.
fn mac_platforms(arch: Arch) -> Vec<String> {
    // Binary formats are the fat-binary names whose slices include the arch. packaging spells the
    // i386+ppc+x86_64 one `fat32` (CPython's `_osx_support` says `fat3`; packaging 26.3 switched),
    // and pip matches against this list, so we keep pip's spelling.
    let formats: &[&str] = match arch {
        Arch::Amd64 => &[
            "x86_64",
            "intel",
            "fat64",
            "fat32",
            "universal2",
            "universal",
        ],
        Arch::Arm64 => &["arm64", "universal2"],
    };
    // No arm64 Mac runs macOS 10.x, but a universal2 wheel tagged 10.x still has an arm64 slice.
    let formats_10: &[&str] = match arch {
        Arch::Amd64 => formats,
        Arch::Arm64 => &["universal2"],
    };
    let mut out = Vec::new();
    for major in (11..=MACOS_FLOOR.0).rev() {
        out.extend(formats.iter().map(|f| format!("macosx_{major}_0_{f}")));
    }
    for minor in (4..=16).rev() {
        out.extend(formats_10.iter().map(|f| format!("macosx_10_{minor}_{f}")));
    }
    out
}

/// PEP 508 marker values of a plain CPython 3.X.0 on the target. Releases are those of the
/// floors (Darwin 23 is macOS 14; 6.1 is a current LTS kernel) and only matter to the rare
/// requirement that tests them.
fn marker_environment(platform: Platform, python: PythonMinor) -> Value {
    let minor = python.minor();
    let (sys_platform, system, release) = match platform.os {
        Os::Linux => ("linux", "Linux", "6.1.0"),
        Os::Darwin => ("darwin", "Darwin", "23.0.0"),
    };
    let machine = match (platform.os, platform.arch) {
        (_, Arch::Amd64) => "x86_64",
        (Os::Linux, Arch::Arm64) => "aarch64",
        (Os::Darwin, Arch::Arm64) => "arm64",
    };
    json!({
        "implementation_name": "cpython",
        "implementation_version": format!("3.{minor}.0"),
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": release,
        "platform_system": system,
        "platform_version": "",
        "python_full_version": format!("3.{minor}.0"),
        "python_version": format!("3.{minor}"),
        "sys_platform": sys_platform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(minor: u8) -> PythonMinor {
        PythonMinor::new(minor).unwrap()
    }

    const LINUX_AMD64: Platform = Platform::new(Os::Linux, Arch::Amd64);
    const LINUX_ARM64: Platform = Platform::new(Os::Linux, Arch::Arm64);
    const DARWIN_ARM64: Platform = Platform::new(Os::Darwin, Arch::Arm64);

    /// `manylinux_2_N_*` with N above our floor, in a tag's platform part.
    fn above_glibc_floor(tag: &str) -> bool {
        let platform = tag.splitn(3, '-').nth(2).unwrap_or_default();
        platform
            .strip_prefix("manylinux_2_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > GLIBC_FLOOR.1)
    }

    #[test]
    fn linux_amd64_matches_real_cpython_312_below_the_floor() {
        // `pex3 interpreter inspect --markers --tags` of CPython 3.12.1 on a glibc 2.36 host.
        let inspect: Value = serde_json::from_str(include_str!(
            "../tests/fixtures/pex/cp312-linux-x86_64-inspect.json"
        ))
        .unwrap();
        let expected: Vec<&str> = inspect["compatible_tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .filter(|t| !above_glibc_floor(t))
            .collect();
        assert!(
            expected.len() > 500,
            "fixture too small: {}",
            expected.len()
        );
        let ours = compatible_tags(LINUX_AMD64, py(12));
        if let Some(i) = (0..ours.len().max(expected.len()))
            .find(|&i| ours.get(i).map(String::as_str) != expected.get(i).copied())
        {
            panic!(
                "first difference at #{i}: ours {:?}, pex {:?}",
                ours.get(i),
                expected.get(i)
            );
        }
    }

    #[test]
    fn darwin_arm64_claims_macos_14_and_universal2_only_for_old_releases() {
        let tags = compatible_tags(DARWIN_ARM64, py(12));
        assert_eq!(tags[0], "cp312-cp312-macosx_14_0_arm64");
        for want in [
            "cp312-cp312-macosx_11_0_arm64",
            "cp312-abi3-macosx_12_0_universal2",
            "cp312-cp312-macosx_10_9_universal2",
            "py3-none-any",
        ] {
            assert!(tags.iter().any(|t| t == want), "missing {want}");
        }
        for t in &tags {
            assert!(!t.contains("macosx_15_0"), "{t} is above the macOS floor");
            assert!(!t.contains("x86_64"), "{t} is not arm64");
            assert!(!t.contains("macosx_10_9_arm64"), "{t}: no arm64 on 10.x");
        }
    }

    #[test]
    fn linux_arm64_starts_at_manylinux2014() {
        let tags = compatible_tags(LINUX_ARM64, py(11));
        assert_eq!(tags[0], "cp311-cp311-manylinux_2_28_aarch64");
        assert!(
            tags.iter()
                .any(|t| t == "cp311-cp311-manylinux2014_aarch64")
        );
        assert!(tags.iter().any(|t| t == "cp311-cp311-linux_aarch64"));
        for t in &tags {
            assert!(
                !t.contains("manylinux1") && !t.contains("manylinux2010"),
                "{t}"
            );
            assert!(!t.contains("x86_64"), "{t} is not aarch64");
            let platform = t.splitn(3, '-').nth(2).unwrap_or_default();
            if let Some(n) = platform
                .strip_prefix("manylinux_2_")
                .and_then(|rest| rest.split('_').next())
            {
                let n: u32 = n.parse().unwrap();
                assert!((17..=28).contains(&n), "{t} outside glibc 2.17..=2.28");
            }
        }
    }

    #[test]
    fn marker_environments_for_every_platform_and_python() {
        for platform in Platform::ALL {
            for minor in PythonMinor::SUPPORTED {
                let doc = complete_platform(platform, py(minor));
                let env = &doc["marker_environment"];
                let (sys_platform, machine) = match (platform.os, platform.arch) {
                    (Os::Linux, Arch::Amd64) => ("linux", "x86_64"),
                    (Os::Linux, Arch::Arm64) => ("linux", "aarch64"),
                    (Os::Darwin, Arch::Amd64) => ("darwin", "x86_64"),
                    (Os::Darwin, Arch::Arm64) => ("darwin", "arm64"),
                };
                assert_eq!(env["sys_platform"], sys_platform, "{platform} 3.{minor}");
                assert_eq!(env["platform_machine"], machine, "{platform} 3.{minor}");
                assert_eq!(env["python_version"], format!("3.{minor}"));
                assert_eq!(env["python_full_version"], format!("3.{minor}.0"));
                let tags = doc["compatible_tags"].as_array().unwrap();
                assert_eq!(
                    tags[0].as_str().unwrap().split('-').next(),
                    Some(&*format!("cp3{minor}"))
                );
                assert_eq!(tags.last().unwrap(), "py30-none-any");
            }
        }
    }

    /// pex itself accepts the document: an empty PEX for darwin-arm64 builds on this host.
    /// Skipped where the project's pex venv is absent.
    #[test]
    fn pex_accepts_a_darwin_complete_platform() {
        let pex = concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/pex");
        if !std::path::Path::new(pex).exists() {
            eprintln!("skipped: {pex} not found");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("darwin-arm64-cp312.json");
        let doc = complete_platform(DARWIN_ARM64, py(12));
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let out = std::process::Command::new(pex)
            .arg("--complete-platform")
            .arg(&file)
            .args(["--pip-version", "25.0.1", "--no-pypi", "-o"])
            .arg(dir.path().join("empty.pex"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pex refused the complete platform: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
