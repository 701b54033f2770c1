//! A PEP 440 version in Debian's and RPM's version syntax, so that the package managers order
//! a tool's versions as pip does. Both formats compare a version in runs of digits
//! (numerically) and of other characters, where `~` sorts before anything, even the end of
//! the string, and letters before other characters (dpkg) or runs of letters before runs of
//! digits (rpm); rpm also has `^`, which sorts after the end but before anything else.
//!
//! | PEP 440 | Debian | RPM (Epoch:Version-Release) |
//! |---|---|---|
//! | `1.0` | `1.0` | `1.0-1` |
//! | `1.0rc1` (`a`, `b`, `rc`) | `1.0~rc1` | `1.0~rc1-1` |
//! | `1.0.dev2` (a release's dev) | `1.0~~dev2` | `1.0~~dev2-1` |
//! | `1.0rc1.dev2` | `1.0~rc1~dev2` | `1.0~rc1~dev2-1` |
//! | `1.0.post3` | `1.0+post3` | `1.0^post3-1` |
//! | `1.0.post3.dev4` | `1.0+post3~dev4` | `1.0^post3~dev4-1` |
//! | `2!1.0` | `2:1.0` | `2:1.0-1` |
//!
//! A pre-release sorts before its release (`~`), `a` < `b` < `rc` (alphabetical), a release's
//! dev before its first pre-release (`~~` before `~a`), a post-release after its release and
//! before the next one (`+` sorts before `.` in dpkg; `^` before `.` in rpm). The one order
//! neither format can give: PEP 440 pads releases with zeros (`1.0` == `1.0.0`), Debian and RPM
//! count an extra part as newer, so `1.0.post1` sorts before `1.0.0` there (a project would
//! have to publish both spellings of one release for that to matter).

use pep440_rs::{PrereleaseKind, Version};

/// The parts both formats spell alike: the release, pre-release, post and dev suffixes, with
/// `post` spelled by the caller.
fn upstream(v: &Version, post_sep: &str) -> String {
    let mut s = v
        .release()
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    if let Some(pre) = v.pre() {
        let kind = match pre.kind {
            PrereleaseKind::Alpha => "a",
            PrereleaseKind::Beta => "b",
            PrereleaseKind::Rc => "rc",
        };
        s.push_str(&format!("~{kind}{}", pre.number));
    }
    if let Some(post) = v.post() {
        s.push_str(&format!("{post_sep}post{post}"));
    }
    if let Some(dev) = v.dev() {
        // A release's own dev comes before its pre-releases: two tildes.
        let tildes = if v.pre().is_none() && v.post().is_none() {
            "~~"
        } else {
            "~"
        };
        s.push_str(&format!("{tildes}dev{dev}"));
    }
    s
}

/// The Debian `Version:` (`[epoch:]upstream`, no revision: the package is native).
pub fn deb(v: &Version) -> String {
    let upstream = upstream(v, "+");
    match v.epoch() {
        0 => upstream,
        e => format!("{e}:{upstream}"),
    }
}

/// RPM's epoch (none for 0), version and release.
pub fn rpm(v: &Version) -> (Option<u64>, String, &'static str) {
    let epoch = (v.epoch() > 0).then(|| v.epoch());
    (epoch, upstream(v, "^"), "1")
}

/// RPM's `[epoch:]version-release`, as `rpm -q` prints it.
pub fn rpm_evr(v: &Version) -> String {
    let (epoch, version, release) = rpm(v);
    match epoch {
        Some(e) => format!("{e}:{version}-{release}"),
        None => format!("{version}-{release}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    /// PEP 440's order of the kinds of version, each a step up from the one before.
    const ORDERED: &[&str] = &[
        "0.9",
        "1.0.dev1",
        "1.0.dev2",
        "1.0a1.dev1",
        "1.0a1",
        "1.0a2",
        "1.0b1.dev3",
        "1.0b1",
        "1.0rc1",
        "1.0rc1.post1.dev1",
        "1.0rc1.post1",
        "1.0rc2",
        "1.0",
        "1.0.post1.dev1",
        "1.0.post1",
        "1.0.post2",
        "1.0.1",
        "1.1.dev1",
        "1.1",
        "1.10",
        "2024.1",
        "1!0.1",
        "1!0.1.post1",
        "2!0.0.1rc1",
    ];

    #[test]
    fn the_table_of_the_module_doc() {
        assert_eq!(deb(&v("1.0")), "1.0");
        assert_eq!(deb(&v("1.0rc1")), "1.0~rc1");
        assert_eq!(deb(&v("1.0.dev2")), "1.0~~dev2");
        assert_eq!(deb(&v("1.0rc1.dev2")), "1.0~rc1~dev2");
        assert_eq!(deb(&v("1.0.post3")), "1.0+post3");
        assert_eq!(deb(&v("1.0.post3.dev4")), "1.0+post3~dev4");
        assert_eq!(deb(&v("2!1.0")), "2:1.0");
        assert_eq!(rpm_evr(&v("1.0")), "1.0-1");
        assert_eq!(rpm_evr(&v("1.0rc1")), "1.0~rc1-1");
        assert_eq!(rpm_evr(&v("1.0.dev2")), "1.0~~dev2-1");
        assert_eq!(rpm_evr(&v("1.0.post3.dev4")), "1.0^post3~dev4-1");
        assert_eq!(rpm_evr(&v("2!1.0")), "2:1.0-1");
        // Spellings PEP 440 normalises come out the same.
        assert_eq!(deb(&v("1.0-RC1")), "1.0~rc1");
        assert_eq!(deb(&v("1.0alpha1")), "1.0~a1");
        assert_eq!(deb(&v("1.0-1")), "1.0+post1");
    }

    #[test]
    fn pep440_order_is_the_test_lists_order() {
        for w in ORDERED.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    /// dpkg itself agrees with PEP 440 on every neighbouring pair (and the other way round).
    #[test]
    fn dpkg_orders_them_as_pip_does() {
        for w in ORDERED.windows(2) {
            let (a, b) = (deb(&v(w[0])), deb(&v(w[1])));
            for (x, op, y) in [(&a, "lt", &b), (&b, "gt", &a)] {
                let ok = Command::new("dpkg")
                    .args(["--compare-versions", x, op, y])
                    .status()
                    .expect("dpkg is installed (Debian's package manager)")
                    .success();
                assert!(ok, "dpkg: {x} {op} {y} is false ({} < {})", w[0], w[1]);
            }
        }
    }

    /// rpm's own comparison (rpm.vercmp on epoch:version-release) agrees too.
    #[test]
    fn rpm_orders_them_as_pip_does() {
        let pairs: Vec<String> = ORDERED
            .windows(2)
            .map(|w| {
                format!(
                    "print(rpm.vercmp('{}', '{}') .. ' ' .. rpm.vercmp('{}', '{}') .. ';')",
                    rpm_evr(&v(w[0])),
                    rpm_evr(&v(w[1])),
                    rpm_evr(&v(w[1])),
                    rpm_evr(&v(w[0])),
                )
            })
            .collect();
        let out = Command::new("rpm")
            .arg("--eval")
            .arg(format!("%{{lua: {} }}", pairs.join(" ")))
            .output()
            .expect("rpm is installed (scripts/test-tools.sh says how)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        // rpm's Lua print writes no newline: each pair ends in ';'.
        let lines: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), ORDERED.len() - 1, "{text}");
        for (line, w) in lines.iter().zip(ORDERED.windows(2)) {
            assert_eq!(
                line.split_whitespace().collect::<Vec<_>>(),
                ["-1", "1"],
                "rpm: {} vs {}",
                w[0],
                w[1]
            );
        }
    }
}
