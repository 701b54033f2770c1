//! Which file of each locked distribution a platform installs: the package's marker is
//! evaluated in the platform's marker environment, and of its wheels the one whose best tag
//! comes first in the platform's tag priority (`complete_platform::compatible_tags`, most
//! specific first) wins. No wheel fits → the platform is missing, naming the distribution,
//! unless the platform builds natively (then its sdist is chosen and the build builds it).
//! Pure functions: no I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use pep440_rs::Version;
use pep508_rs::{MarkerEnvironment, MarkerTree};

use super::pylock::{File, Package, Pylock, Wheel};
use super::record::{ChosenFile, PlatformLock};
use super::wheel_name::WheelName;
use crate::complete_platform::{self, GLIBC_FLOOR, MACOS_FLOOR};
use crate::names::{Os, PackageName, Platform, PythonMinor};

/// One platform and python: its tag priority and marker environment.
#[derive(Debug, Clone)]
pub struct Target {
    pub platform: Platform,
    pub python: PythonMinor,
    /// Tag → position in the priority list (lower is better).
    rank: HashMap<String, usize>,
    env: MarkerEnvironment,
}

impl Target {
    /// The platform as the complete-platform files describe it (the glibc / macOS floors).
    pub fn new(platform: Platform, python: PythonMinor) -> Self {
        Self::with_tags(
            platform,
            python,
            complete_platform::compatible_tags(platform, python),
        )
    }

    /// The platform's marker environment with another tag list (most specific first).
    pub fn with_tags(platform: Platform, python: PythonMinor, tags: Vec<String>) -> Self {
        let mut rank = HashMap::with_capacity(tags.len());
        for (i, tag) in tags.into_iter().enumerate() {
            rank.entry(tag).or_insert(i);
        }
        Self {
            platform,
            python,
            rank,
            env: marker_environment(platform, python),
        }
    }

    pub fn environment(&self) -> &MarkerEnvironment {
        &self.env
    }

    /// Whether a distribution with this marker is installed here (no extras are requested:
    /// the requirements are plain `name==version` pins).
    pub fn applies(&self, marker: Option<&MarkerTree>) -> bool {
        marker.is_none_or(|m| m.evaluate(&self.env, &[]))
    }

    /// Where the wheel's best tag stands in the priority list; `None`: it does not install here.
    pub fn rank(&self, wheel: &WheelName) -> Option<usize> {
        wheel
            .tags()
            .filter_map(|t| self.rank.get(&t).copied())
            .min()
    }

    /// The wheel pip would pick: the best-ranked, then the highest build tag, then the first
    /// file name (so the choice never depends on the lock's order).
    pub fn best_wheel<'a>(&self, wheels: &'a [Wheel]) -> Option<&'a Wheel> {
        wheels
            .iter()
            .filter_map(|w| self.rank(&w.tags).map(|r| (r, w)))
            .min_by(|(ra, a), (rb, b)| {
                ra.cmp(rb)
                    .then_with(|| b.tags.build.cmp(&a.tags.build))
                    .then_with(|| a.file.name.cmp(&b.file.name))
            })
            .map(|(_, w)| w)
    }

    /// How a message names the platform's floor: "CPython 3.12 on macOS 14 or later, x86_64".
    pub fn describe(&self) -> String {
        let machine = self.env.platform_machine();
        match self.platform.os {
            Os::Linux => format!(
                "CPython {} on glibc {}.{} or later, {machine}",
                self.python, GLIBC_FLOOR.0, GLIBC_FLOOR.1
            ),
            Os::Darwin => format!(
                "CPython {} on macOS {} or later, {machine}",
                self.python, MACOS_FLOOR.0
            ),
        }
    }
}

/// The PEP 508 marker values of CPython 3.X.0 on the platform (those of the complete-platform
/// file, so markers and tags describe the same machine).
pub fn marker_environment(platform: Platform, python: PythonMinor) -> MarkerEnvironment {
    let doc = complete_platform::complete_platform(platform, python);
    serde_json::from_value(doc["marker_environment"].clone())
        .expect("the complete platform's marker environment has every PEP 508 key")
}

/// A distribution's file for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub name: PackageName,
    pub version: Version,
    pub file: File,
    /// `None`: the sdist, for the native build to build.
    pub wheel: Option<WheelName>,
}

impl Chosen {
    pub fn is_none_any(&self) -> bool {
        self.wheel.as_ref().is_some_and(WheelName::is_none_any)
    }

    pub fn is_sdist(&self) -> bool {
        self.wheel.is_none()
    }
}

/// A platform that cannot exist for this lock: each distribution without a wheel for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub platform: Platform,
    /// What the platform is ("CPython 3.12 on macOS 14 or later, x86_64").
    pub target: String,
    pub lacking: Vec<Lacking>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lacking {
    pub name: PackageName,
    pub version: Version,
    /// The lock has its sdist (built only where the platform builds natively).
    pub has_sdist: bool,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .lacking
            .iter()
            .map(|l| {
                let what = if l.has_sdist {
                    "only an sdist, built only on a native build of the platform"
                } else {
                    "no file for it at all"
                };
                format!("{} {} ({what})", l.name, l.version)
            })
            .collect();
        write!(
            f,
            "{}: no wheel for {} of {}",
            self.platform,
            self.target,
            names.join(", ")
        )
    }
}

/// The files `target` installs from `lock`; `native`: the build runs on the platform itself and
/// may build sdists.
pub fn choose(lock: &Pylock, target: &Target, native: bool) -> Result<Vec<Chosen>, Missing> {
    let mut chosen = Vec::new();
    let mut lacking = Vec::new();
    for package in lock
        .packages
        .iter()
        .filter(|p| target.applies(p.marker.as_ref()))
    {
        match pick(package, target, native) {
            Some(c) => chosen.push(c),
            None => lacking.push(Lacking {
                name: package.name.clone(),
                version: package.version.clone(),
                has_sdist: package.sdist.is_some(),
            }),
        }
    }
    if lacking.is_empty() {
        Ok(chosen)
    } else {
        Err(Missing {
            platform: target.platform,
            target: target.describe(),
            lacking,
        })
    }
}

fn pick(package: &Package, target: &Target, native: bool) -> Option<Chosen> {
    let chosen = |file: &File, wheel: Option<WheelName>| Chosen {
        name: package.name.clone(),
        version: package.version.clone(),
        file: file.clone(),
        wheel,
    };
    if let Some(w) = target.best_wheel(&package.wheels) {
        return Some(chosen(&w.file, Some(w.tags.clone())));
    }
    package
        .sdist
        .as_ref()
        .filter(|_| native)
        .map(|s| chosen(s, None))
}

/// Every platform's choice from one lock.
#[derive(Debug, Clone)]
pub struct Choices {
    pub python: PythonMinor,
    pub platforms: BTreeMap<Platform, Result<Vec<Chosen>, Missing>>,
}

/// Chooses for each of `platforms`; those in `native` may build sdists.
pub fn choose_all(
    lock: &Pylock,
    platforms: &[Platform],
    python: PythonMinor,
    native: &[Platform],
) -> Choices {
    let platforms = platforms
        .iter()
        .map(|&p| {
            let target = Target::new(p, python);
            (p, choose(lock, &target, native.contains(&p)))
        })
        .collect();
    Choices { python, platforms }
}

impl Choices {
    /// The platforms that can be built, with their files.
    pub fn ready(&self) -> impl Iterator<Item = (Platform, &[Chosen])> {
        self.platforms
            .iter()
            .filter_map(|(p, r)| r.as_ref().ok().map(|c| (*p, c.as_slice())))
    }

    /// The platforms that cannot exist, and why.
    pub fn missing(&self) -> impl Iterator<Item = (Platform, &Missing)> {
        self.platforms
            .iter()
            .filter_map(|(p, r)| r.as_ref().err().map(|m| (*p, m)))
    }

    pub fn files(&self, platform: Platform) -> Option<&[Chosen]> {
        self.platforms
            .get(&platform)?
            .as_ref()
            .ok()
            .map(Vec::as_slice)
    }

    /// One PEX serves every platform: none is missing, each chose the same files, and every
    /// one is a `none-any` wheel. An sdist on the index beside a pure wheel does not count: it
    /// is not chosen. Platforms whose files differ (a pure dependency under a `sys_platform`
    /// marker) are built one by one, each with exactly its own.
    pub fn pure(&self) -> bool {
        let mut ready = self.ready();
        let Some((_, first)) = ready.next() else {
            return false;
        };
        fn digests(files: &[Chosen]) -> Vec<&str> {
            let mut d: Vec<&str> = files.iter().map(|c| c.file.sha256.as_str()).collect();
            d.sort_unstable();
            d
        }
        let want = digests(first);
        self.missing().next().is_none()
            && first.iter().all(Chosen::is_none_any)
            && ready.all(|(_, files)| digests(files) == want)
    }

    /// For the build info: each platform's files (name and sha256) or why it is missing.
    pub fn record(&self) -> BTreeMap<Platform, PlatformLock> {
        self.platforms
            .iter()
            .map(|(p, r)| {
                let lock = match r {
                    Ok(files) => PlatformLock::Files(
                        files
                            .iter()
                            .map(|c| ChosenFile {
                                name: c.file.name.clone(),
                                sha256: c.file.sha256.clone(),
                            })
                            .collect(),
                    ),
                    Err(m) => PlatformLock::Missing(m.to_string()),
                };
                (*p, lock)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Arch;

    const LINUX_AMD64: Platform = Platform::new(Os::Linux, Arch::Amd64);
    const LINUX_ARM64: Platform = Platform::new(Os::Linux, Arch::Arm64);
    const DARWIN_AMD64: Platform = Platform::new(Os::Darwin, Arch::Amd64);
    const DARWIN_ARM64: Platform = Platform::new(Os::Darwin, Arch::Arm64);

    fn py(minor: u8) -> PythonMinor {
        PythonMinor::new(minor).unwrap()
    }

    /// A lock with one package per `(name, version, marker, files)`; each file's sha256 is
    /// derived from its name so choices can be compared by digest.
    fn lock(packages: &[(&str, &str, Option<&str>, &[&str])]) -> Pylock {
        let mut text = String::from("lock-version = \"1.0\"\n");
        for (name, version, marker, files) in packages {
            text += &format!("[[packages]]\nname = \"{name}\"\nversion = \"{version}\"\n");
            if let Some(m) = marker {
                text += &format!("marker = \"{m}\"\n");
            }
            let entry = |f: &str| {
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(f));
                format!(
                    "{{ url = \"https://files.example/{f}\", hashes = {{ sha256 = \"{sha}\" }} }}"
                )
            };
            let wheels: Vec<String> = files
                .iter()
                .filter(|f| f.ends_with(".whl"))
                .map(|f| entry(f))
                .collect();
            text += &format!("wheels = [{}]\n", wheels.join(", "));
            if let Some(s) = files.iter().find(|f| f.ends_with(".tar.gz")) {
                text += &format!("sdist = {}\n", entry(s));
            }
        }
        Pylock::parse(&text).unwrap()
    }

    fn picked(lock: &Pylock, platform: Platform, python: PythonMinor) -> Vec<String> {
        choose(lock, &Target::new(platform, python), false)
            .unwrap_or_else(|m| panic!("{m}"))
            .into_iter()
            .map(|c| c.file.name)
            .collect()
    }

    #[test]
    fn newer_manylinux_beats_older_and_musllinux_is_never_chosen() {
        let l = lock(&[(
            "native",
            "1.0",
            None,
            &[
                "native-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
                "native-1.0-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
                "native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                "native-1.0-cp312-cp312-manylinux_2_34_x86_64.whl",
                "native-1.0-py3-none-any.whl",
            ],
        )]);
        assert_eq!(
            picked(&l, LINUX_AMD64, py(12)),
            ["native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"],
            "2_28 is the newest at or below the glibc floor; 2_34 is above it"
        );
        let l = lock(&[(
            "native",
            "1.0",
            None,
            &[
                "native-1.0-cp312-cp312-musllinux_1_2_x86_64.whl",
                "native-1.0-cp312-cp312-manylinux1_x86_64.whl",
                "native-1.0-cp312-cp312-manylinux2014_x86_64.whl",
            ],
        )]);
        assert_eq!(
            picked(&l, LINUX_AMD64, py(12)),
            ["native-1.0-cp312-cp312-manylinux2014_x86_64.whl"]
        );
        let only_musl = lock(&[(
            "native",
            "1.0",
            None,
            &["native-1.0-cp312-cp312-musllinux_1_2_x86_64.whl"],
        )]);
        let m = choose(&only_musl, &Target::new(LINUX_AMD64, py(12)), false).unwrap_err();
        assert_eq!(m.lacking[0].name.as_str(), "native");
        assert!(!m.lacking[0].has_sdist);
    }

    #[test]
    fn a_platform_wheel_beats_the_pure_one_and_abi3_is_chosen_without_a_cp_wheel() {
        let l = lock(&[(
            "crypto",
            "51.0.1",
            None,
            &[
                "crypto-51.0.1-cp311-abi3-manylinux_2_28_x86_64.whl",
                "crypto-51.0.1-cp313-cp313-manylinux_2_28_x86_64.whl",
                "crypto-51.0.1-py3-none-any.whl",
            ],
        )]);
        assert_eq!(
            picked(&l, LINUX_AMD64, py(12)),
            ["crypto-51.0.1-cp311-abi3-manylinux_2_28_x86_64.whl"],
            "no cp312 wheel: the stable ABI of 3.11 serves 3.12"
        );
        let l = lock(&[(
            "crypto",
            "51.0.1",
            None,
            &[
                "crypto-51.0.1-cp311-abi3-manylinux_2_28_x86_64.whl",
                "crypto-51.0.1-cp312-cp312-manylinux_2_17_x86_64.whl",
            ],
        )]);
        assert_eq!(
            picked(&l, LINUX_AMD64, py(12)),
            ["crypto-51.0.1-cp312-cp312-manylinux_2_17_x86_64.whl"],
            "the interpreter's own ABI comes before abi3"
        );
    }

    #[test]
    fn a_cp313_wheel_is_never_chosen_for_312() {
        let l = lock(&[(
            "native",
            "1.0",
            None,
            &[
                "native-1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
                "native-1.0-cp313-abi3-manylinux_2_17_x86_64.whl",
                "native-1.0.tar.gz",
            ],
        )]);
        let m = choose(&l, &Target::new(LINUX_AMD64, py(12)), false).unwrap_err();
        assert!(m.lacking[0].has_sdist);
        assert_eq!(
            m.to_string(),
            "linux-amd64: no wheel for CPython 3.12 on glibc 2.28 or later, x86_64 of native 1.0 \
             (only an sdist, built only on a native build of the platform)"
        );
        assert_eq!(
            picked(&l, LINUX_AMD64, py(13)),
            ["native-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"]
        );
    }

    #[test]
    fn universal2_macos_wheels_serve_both_darwin_arches_and_the_macos_floor_holds() {
        let l = lock(&[(
            "native",
            "1.0",
            None,
            &[
                "native-1.0-cp312-cp312-macosx_10_9_universal2.whl",
                "native-1.0-cp312-cp312-win_amd64.whl",
            ],
        )]);
        for p in [DARWIN_AMD64, DARWIN_ARM64] {
            assert_eq!(
                picked(&l, p, py(12)),
                ["native-1.0-cp312-cp312-macosx_10_9_universal2.whl"],
                "{p}"
            );
        }
        let l = lock(&[(
            "native",
            "1.0",
            None,
            &[
                "native-1.0-cp312-cp312-macosx_15_0_arm64.whl",
                "native-1.0-cp312-cp312-macosx_11_0_arm64.whl",
                "native-1.0-cp312-cp312-macosx_10_13_x86_64.whl",
            ],
        )]);
        assert_eq!(
            picked(&l, DARWIN_ARM64, py(12)),
            ["native-1.0-cp312-cp312-macosx_11_0_arm64.whl"],
            "a macOS 15 wheel does not run on the macOS 14 floor"
        );
        assert_eq!(
            picked(&l, DARWIN_AMD64, py(12)),
            ["native-1.0-cp312-cp312-macosx_10_13_x86_64.whl"]
        );
        let only_15 = lock(&[(
            "native",
            "1.0",
            None,
            &["native-1.0-cp312-cp312-macosx_15_0_arm64.whl"],
        )]);
        assert!(choose(&only_15, &Target::new(DARWIN_ARM64, py(12)), false).is_err());
    }

    #[test]
    fn markers_drop_a_package_where_they_do_not_hold() {
        let l = lock(&[
            ("tool", "1.0", None, &["tool-1.0-py3-none-any.whl"]),
            (
                "mac-only",
                "2.0",
                Some("sys_platform == 'darwin'"),
                &["mac_only-2.0-py3-none-any.whl"],
            ),
            (
                "win-only",
                "3.0",
                Some("sys_platform == 'win32'"),
                &["win_only-3.0-cp312-cp312-win_amd64.whl"],
            ),
            (
                "old-py",
                "4.0",
                Some("python_full_version < '3.12'"),
                &["old_py-4.0-py3-none-any.whl"],
            ),
            (
                "arm-only",
                "5.0",
                Some("platform_machine == 'aarch64' or platform_machine == 'arm64'"),
                &["arm_only-5.0-py3-none-any.whl"],
            ),
        ]);
        assert_eq!(
            picked(&l, LINUX_AMD64, py(12)),
            ["tool-1.0-py3-none-any.whl"]
        );
        assert_eq!(
            picked(&l, LINUX_ARM64, py(12)),
            ["tool-1.0-py3-none-any.whl", "arm_only-5.0-py3-none-any.whl"]
        );
        assert_eq!(
            picked(&l, DARWIN_AMD64, py(12)),
            ["tool-1.0-py3-none-any.whl", "mac_only-2.0-py3-none-any.whl"]
        );
        assert_eq!(
            picked(&l, LINUX_AMD64, py(11)),
            ["tool-1.0-py3-none-any.whl", "old_py-4.0-py3-none-any.whl"]
        );
    }

    #[test]
    fn one_name_twice_with_disjoint_markers_gives_one_per_python() {
        let l = lock(&[
            (
                "numpy",
                "2.2.0",
                Some("python_full_version < '3.13'"),
                &["numpy-2.2.0-cp312-cp312-manylinux_2_17_x86_64.whl"],
            ),
            (
                "numpy",
                "2.3.0",
                Some("python_full_version >= '3.13'"),
                &["numpy-2.3.0-cp313-cp313-manylinux_2_17_x86_64.whl"],
            ),
        ]);
        assert_eq!(
            picked(&l, LINUX_AMD64, py(12)),
            ["numpy-2.2.0-cp312-cp312-manylinux_2_17_x86_64.whl"]
        );
        assert_eq!(
            picked(&l, LINUX_AMD64, py(13)),
            ["numpy-2.3.0-cp313-cp313-manylinux_2_17_x86_64.whl"]
        );
    }

    #[test]
    fn build_tags_break_ties_and_the_lock_order_does_not_matter() {
        let files = [
            "tool-1.0-1-py3-none-any.whl",
            "tool-1.0-2-py3-none-any.whl",
            "tool-1.0-py3-none-any.whl",
        ];
        let mut reversed = files;
        reversed.reverse();
        for order in [files, reversed] {
            let l = lock(&[("tool", "1.0", None, &order)]);
            assert_eq!(
                picked(&l, LINUX_AMD64, py(12)),
                ["tool-1.0-2-py3-none-any.whl"]
            );
        }
    }

    #[test]
    fn the_sdist_is_chosen_only_for_a_native_build() {
        let l = lock(&[
            ("tool", "1.0", None, &["tool-1.0-py3-none-any.whl"]),
            (
                "native-dep",
                "1.0",
                None,
                &[
                    "native_dep-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                    "native_dep-1.0-cp312-cp312-manylinux_2_17_aarch64.whl",
                    "native_dep-1.0-cp312-cp312-macosx_11_0_arm64.whl",
                    "native_dep-1.0.tar.gz",
                ],
            ),
        ]);
        let all = choose_all(&l, &Platform::ALL, py(12), &[]);
        let missing: Vec<(Platform, String)> =
            all.missing().map(|(p, m)| (p, m.to_string())).collect();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].0, DARWIN_AMD64);
        assert!(
            missing[0].1.contains(
                "no wheel for CPython 3.12 on macOS 14 or later, x86_64 of native-dep 1.0"
            ),
            "{}",
            missing[0].1
        );
        assert_eq!(all.ready().count(), 3);
        assert!(!all.pure());
        match &all.record()[&DARWIN_AMD64] {
            PlatformLock::Missing(why) => assert!(why.contains("native-dep 1.0"), "{why}"),
            other => panic!("{other:?}"),
        }

        let native = choose_all(&l, &Platform::ALL, py(12), &[DARWIN_AMD64]);
        assert_eq!(native.missing().count(), 0);
        let files = native.files(DARWIN_AMD64).unwrap();
        assert!(files[1].is_sdist());
        assert_eq!(files[1].file.name, "native_dep-1.0.tar.gz");
        let linux = native.files(LINUX_AMD64).unwrap();
        assert!(!linux[1].is_sdist(), "a platform with a wheel never builds");
    }

    #[test]
    fn purity_is_every_chosen_file_none_any_on_every_platform() {
        let pure_with_sdist = lock(&[
            (
                "cowsay",
                "6.0",
                None,
                &["cowsay-6.0-py2.py3-none-any.whl", "cowsay-6.0.tar.gz"],
            ),
            ("dep", "1.0", None, &["dep-1.0-py3-none-any.whl"]),
        ]);
        let c = choose_all(&pure_with_sdist, &Platform::ALL, py(12), &[]);
        assert!(c.pure(), "the sdist beside the pure wheel is not chosen");
        let c = choose_all(&pure_with_sdist, &Platform::ALL, py(12), &Platform::ALL);
        assert!(c.pure(), "a native build still prefers the wheel");

        let compiled = lock(&[(
            "black",
            "26.10.1",
            None,
            &[
                "black-26.10.1-cp312-cp312-manylinux_2_17_x86_64.whl",
                "black-26.10.1-py3-none-any.whl",
            ],
        )]);
        let c = choose_all(&compiled, &Platform::ALL, py(12), &[]);
        assert!(!c.pure(), "linux-amd64 takes the compiled wheel");
        assert_eq!(
            c.files(LINUX_ARM64).unwrap()[0].file.name,
            "black-26.10.1-py3-none-any.whl"
        );

        let sdist_only = lock(&[("pyperclip", "1.9.0", None, &["pyperclip-1.9.0.tar.gz"])]);
        let c = choose_all(&sdist_only, &[LINUX_AMD64], py(12), &[LINUX_AMD64]);
        assert!(c.files(LINUX_AMD64).is_some());
        assert!(!c.pure(), "an sdist is built: not a none-any wheel");

        let differs = lock(&[
            ("tool", "1.0", None, &["tool-1.0-py3-none-any.whl"]),
            (
                "mac-only",
                "2.0",
                Some("sys_platform == 'darwin'"),
                &["mac_only-2.0-py3-none-any.whl"],
            ),
        ]);
        let c = choose_all(&differs, &Platform::ALL, py(12), &[]);
        assert!(!c.pure(), "darwin installs one more distribution");
        let c = choose_all(&differs, &[LINUX_AMD64, LINUX_ARM64], py(12), &[]);
        assert!(c.pure(), "the linux platforms alone agree");
    }
}
