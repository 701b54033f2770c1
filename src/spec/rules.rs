//! The limits and patterns a config file and a `PythonPackage` share. Each is used twice: by the
//! Rust checks (`spec::validate`, the resource's `validate`) and, as `maxItems` / `maxLength` /
//! CEL `matches()`, by the CRD, so the API server refuses what the controller would refuse.
//! Patterns are written in the syntax RE2 (Kubernetes), the `regex` crate (here) and CEL share:
//! no look-around, no back-references, explicit ASCII classes.

use std::sync::LazyLock;

use regex::Regex;

/// Console scripts per package: ansible has 10, the largest tools a few dozen.
pub const MAX_BINARIES: usize = 64;
/// `{version, python}` entries: one per python change, so a handful in practice.
pub const MAX_VERSIONS: usize = 100;
/// Versions never to build.
pub const MAX_EXCLUDE: usize = 500;
/// PEP 508 requirements added to every version.
pub const MAX_EXTRA_PACKAGES: usize = 50;
/// One PEP 440 version, e.g. `2024.10.31.post1.dev5` (21).
pub const MAX_VERSION_LEN: usize = 64;
/// `description` (PyPI caps a summary at 512) and `test`.
pub const MAX_TEXT_LEN: usize = 512;
/// One PEP 508 requirement, markers and URL included.
pub const MAX_REQUIREMENT_LEN: usize = 512;
/// `interval`: three `<6 digits><unit>` parts.
pub const MAX_INTERVAL_LEN: usize = 21;
pub const MIN_INTERVAL_SECS: u64 = 60;
pub const MAX_INTERVAL_SECS: u64 = 7 * 24 * 3600;
/// `releases.repository`: a GitHub owner (39) and repository (100).
pub const MAX_RELEASE_REPOSITORY_LEN: usize = 140;
/// `manifests.repository`: a Git URL.
pub const MAX_GIT_URL_LEN: usize = 512;
/// `manifests.branch` and `manifests.dir`.
pub const MAX_REF_LEN: usize = 255;

/// One distribution package name (`build_packages`, `runtime_packages`): Debian's longest are
/// about 60 characters.
pub const MAX_DISTRO_PACKAGE_LEN: usize = 128;
/// `build_packages` and `runtime_packages`, each.
pub const MAX_DISTRO_PACKAGES: usize = 64;

/// `index`: a DNS label, like the operator's index names.
pub const MAX_INDEX_NAME_LEN: usize = 63;

/// A regular expression kept as text (for the CRD) and compiled once (for the checks here).
pub struct Pattern {
    text: &'static str,
    compiled: LazyLock<Regex>,
}

macro_rules! pattern {
    ($(#[$doc:meta])* $name:ident = $text:expr) => {
        $(#[$doc])*
        pub static $name: Pattern = Pattern {
            text: $text,
            compiled: LazyLock::new(|| Regex::new($text).expect("the pattern compiles")),
        };
    };
}

impl Pattern {
    pub fn as_str(&self) -> &'static str {
        self.text
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.compiled.is_match(s)
    }
}

pattern!(
    /// The name of one of the operator's package indexes (`spec.index`): a DNS label.
    INDEX_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
);

pattern!(
    /// A PEP 440 public version (no `+local`), in any of the spellings PEP 440 normalises
    /// (`v1.0`, `1.0-RC1`, `1.0.post`, `1!2.0`). Numbers have at most 18 digits so that every
    /// match fits the parser's 64-bit parts: what this accepts, the controller accepts.
    PUBLIC_VERSION = r"^(?i:v?([0-9]{1,18}!)?[0-9]{1,18}(\.[0-9]{1,18})*([-_.]?(alpha|beta|preview|pre|rc|a|b|c)([-_.]?[0-9]{1,18})?)?(-[0-9]{1,18}|[-_.]?(post|rev|r)([-_.]?[0-9]{1,18})?)?([-_.]?dev([-_.]?[0-9]{1,18})?)?)$"
);

pattern!(
    /// A distribution package name, as Debian policy has it (RPM's names are a superset):
    /// lowercase letters and digits first, then also `+`, `.` and `-`. No option (`-y`), no
    /// space, no shell: each becomes one argument of a package manager's command line.
    DISTRO_PACKAGE = r"^[a-z0-9][a-z0-9+.-]*$"
);

pattern!(
    /// A control character (Unicode category Cc: U+0000–U+001F, U+007F–U+009F): none may
    /// reach a manifest, a command line or a log line.
    CONTROL = r"\p{Cc}"
);

pattern!(
    /// What every PEP 508 requirement starts with: a project name. The full grammar is checked
    /// by `pep508_rs`; this prefix is what the CRD can check.
    REQUIREMENT_START = r"^[A-Za-z0-9]"
);

pattern!(
    /// `30m`, `1h`, `1h30m`: Go duration syntax (what CEL's `duration()` reads) restricted to
    /// whole hours, minutes and seconds, small enough never to overflow.
    INTERVAL = r"^([0-9]{1,6}[hms]){1,3}$"
);

pattern!(
    /// GitHub `OWNER/REPO`; the repository is not `.` or `..` (it goes into API paths).
    RELEASE_REPOSITORY = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"
);

pattern!(
    /// The Git URLs a manifest repository may have: `https://`, `ssh://`, `file:///` or
    /// `user@host:path`, with a host that cannot be read as an option (`-oProxyCommand`), and
    /// printable ASCII without spaces. Refuses git's `ext::` and `fd::` transports and
    /// anything starting with `-`.
    GIT_URL = r"^(https://[A-Za-z0-9]|ssh://([A-Za-z0-9._~-]+@)?[A-Za-z0-9]|file:///|[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*:)[!-~]*$"
);

pattern!(
    /// What `git check-ref-format --branch` refuses: a leading `-` or `/`, `..`, `//`, `@{`,
    /// a component starting with `.` or ending with `.lock`, a trailing `/` or `.`, `@`
    /// alone, and space, `~^:?*[\` and control characters anywhere.
    BAD_BRANCH = r"^-|^/|\.\.|//|@\{|(^|/)\.|\.lock(/|$)|/$|\.$|^@$|[\x00-\x20\x7f~^:?*\[\\]|\p{Cc}"
);

pattern!(
    /// A manifest directory that leaves the repository: absolute, or with a `..` component
    /// (`/` and `\` both separate), or holding a control character.
    BAD_DIR = r"^[/\\]|(^|[/\\])\.\.([/\\]|$)|\p{Cc}"
);

/// What the CRD's rule on `releases.repository` says after the field's name; the flags that
/// name a GitHub repository (`--repository`, `--manifest-github`, ...) say the same.
pub const RELEASE_REPOSITORY_SAYS: &str = "must be a GitHub OWNER/REPO, e.g. acme/hermit-tools";
/// The rule on `manifests.repository` (and `--manifest-repo`).
pub const GIT_URL_SAYS: &str = "must be a Git URL: https://HOST/PATH, ssh://[USER@]HOST/PATH, \
     file:///PATH or USER@HOST:PATH";
/// The rule on `manifests.branch` (and `--manifest-branch`).
pub const BRANCH_SAYS: &str = "must be a branch name git takes: no leading '-' or '/', no '..', \
     '//', '@{', spaces, control characters or any of ~^:?*[\\, no component starting with '.' \
     or ending with '.lock'";
/// The rule on `manifests.dir` (and `--manifest-dir`).
pub const DIR_SAYS: &str = "must be a relative path inside the repository: no leading '/', no '..'";

/// A text within `max` characters that `ok` takes; the error is the rule, without the text.
fn checked(s: &str, max: usize, ok: bool, says: &str) -> Result<(), String> {
    let n = length(s);
    if n > max {
        Err(too_long(n, max))
    } else if !ok {
        Err(says.to_owned())
    } else {
        Ok(())
    }
}

/// A GitHub `OWNER/REPO`, as `releases.repository` takes it.
pub fn release_repository(s: &str) -> Result<(), String> {
    checked(
        s,
        MAX_RELEASE_REPOSITORY_LEN,
        RELEASE_REPOSITORY.is_match(s),
        RELEASE_REPOSITORY_SAYS,
    )
}

/// A manifest repository's Git URL, as `manifests.repository` takes it.
pub fn git_url(s: &str) -> Result<(), String> {
    checked(s, MAX_GIT_URL_LEN, GIT_URL.is_match(s), GIT_URL_SAYS)
}

/// A branch, as `manifests.branch` takes it.
pub fn branch(s: &str) -> Result<(), String> {
    checked(
        s,
        MAX_REF_LEN,
        !s.is_empty() && !BAD_BRANCH.is_match(s),
        BRANCH_SAYS,
    )
}

/// A directory inside a repository, as `manifests.dir` takes it.
pub fn dir(s: &str) -> Result<(), String> {
    checked(s, MAX_REF_LEN, is_relative_inside(s), DIR_SAYS)
}

/// A DNS label (RFC 1123), as Kubernetes names namespaces and the operator names its indexes.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= MAX_INDEX_NAME_LEN && INDEX_NAME.is_match(s)
}

/// A relative path that stays inside its root: no leading `/` or `\\`, no `..` component, no
/// control character; the CRD checks `spec.manifests.dir` with the same pattern.
pub fn is_relative_inside(dir: &str) -> bool {
    !BAD_DIR.is_match(dir)
}

/// Characters, as Kubernetes counts `maxLength` (code points, not bytes).
pub fn length(s: &str) -> usize {
    s.chars().count()
}

/// The first control character and its position (in characters), for messages.
pub fn first_control(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| c.is_control())
}

/// The message for a list longer than its limit.
pub fn too_many(n: usize, max: usize) -> String {
    format!("has {n} entries; at most {max} are allowed")
}

/// The message for a string longer than its limit.
pub fn too_long(n: usize, max: usize) -> String {
    format!("is {n} characters long; at most {max} are allowed")
}

/// A `test` command line that runs one of `binaries`: the binary, alone or followed by a
/// space. Kept this simple (no quoting) so the CRD's CEL rule checks exactly the same.
pub fn starts_with_binary<'a>(test: &str, mut binaries: impl Iterator<Item = &'a str>) -> bool {
    binaries.any(|b| {
        test.strip_prefix(b)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    })
}

/// A binary whose launcher would collide with `<package>.pex` in the tarball: compared
/// without case, as macOS file systems compare names.
pub fn collides_with_pex(binary: &str, package: &crate::names::PackageName) -> bool {
    binary.to_ascii_lowercase() == format!("{package}.pex")
}

/// A distribution package name as both formats take it (Debian policy's, which RPM's
/// names include): the rule `build_packages` / `runtime_packages` are checked by too.
pub fn is_distro_package(name: &str) -> bool {
    DISTRO_PACKAGE.is_match(name) && name.len() <= MAX_DISTRO_PACKAGE_LEN
}

/// What is wrong with a list of distribution package names: `(None, why)` for the list (too
/// long), else `(Some(i), why)` for each entry that is not a name.
pub fn package_problems(list: &[String]) -> Vec<(Option<usize>, String)> {
    if list.len() > MAX_DISTRO_PACKAGES {
        return vec![(None, too_many(list.len(), MAX_DISTRO_PACKAGES))];
    }
    list.iter()
        .enumerate()
        .filter(|(_, p)| !is_distro_package(p))
        .map(|(i, _)| {
            (
                Some(i),
                format!(
                    "is not a distribution package name: lowercase letters and digits, then \
                     also '+', '.' and '-' (at most {}), no options, spaces or shell",
                    MAX_DISTRO_PACKAGE_LEN
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for p in [
            &PUBLIC_VERSION,
            &CONTROL,
            &REQUIREMENT_START,
            &INTERVAL,
            &RELEASE_REPOSITORY,
            &GIT_URL,
            &BAD_BRANCH,
            &BAD_DIR,
        ] {
            p.is_match("");
        }
    }

    #[test]
    fn git_urls() {
        for ok in [
            "https://github.com/acme/tools.git",
            "https://x-access-token@github.com/acme/tools.git",
            "ssh://git@github.com/acme/tools.git",
            "ssh://github.com:2222/acme/tools.git",
            "git@github.com:acme/tools.git",
            "git@git.example.com:/srv/tools.git",
            "file:///srv/git/tools.git",
        ] {
            assert!(GIT_URL.is_match(ok), "{ok}");
        }
        for bad in [
            "ext::sh -c id",
            "fd::3",
            "--upload-pack=id",
            "-oProxyCommand=id",
            "ssh://-oProxyCommand=id/x",
            "git@-oProxyCommand=id:x",
            "http://github.com/acme/tools.git",
            "file://host/x",
            "https://github.com/acme/tools .git",
            "https://github.com/acme/tools\n.git",
            "/srv/git/tools.git",
            "",
        ] {
            assert!(!GIT_URL.is_match(bad), "{bad:?}");
        }
    }

    #[test]
    fn branches_follow_git_check_ref_format() {
        for ok in [
            "main",
            "release/1.x",
            "feature-a_b",
            "v1.0",
            "a.b/c.d",
            "@x",
        ] {
            assert!(!BAD_BRANCH.is_match(ok), "{ok}");
        }
        for bad in [
            "--upload-pack=id",
            "-x",
            "a..b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[b",
            "a\\b",
            "a\tb",
            "a\u{7f}",
            "/a",
            "a/",
            "a//b",
            "a.",
            ".a",
            "a/.b",
            "a.lock",
            "a.lock/b",
            "@",
            "a@{1}",
        ] {
            assert!(BAD_BRANCH.is_match(bad), "{bad:?}");
        }
    }

    #[test]
    fn dirs_stay_inside() {
        for ok in ["", "hermit", "a/b", "a/.b", "..a", "a..", "a/..b/c"] {
            assert!(!BAD_DIR.is_match(ok), "{ok}");
        }
        for bad in [
            "/etc", "\\etc", "..", "../x", "a/../..", "a/..", "..\\x", "a\\..", "a\nb",
        ] {
            assert!(BAD_DIR.is_match(bad), "{bad:?}");
        }
    }

    #[test]
    fn release_repositories() {
        for ok in [
            "acme/tools",
            "my-org/hermit-tools",
            "a/.github",
            "a/b.c_d-e",
        ] {
            assert!(RELEASE_REPOSITORY.is_match(ok), "{ok}");
        }
        for bad in [
            "not a repo",
            "acme",
            "acme/",
            "acme/..",
            "acme/.",
            "../..",
            "-acme/x",
            "a/b/c",
            "a_b/c",
        ] {
            assert!(!RELEASE_REPOSITORY.is_match(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_test_starts_with_a_binary_or_is_it() {
        let bins = ["aider", "ansible-playbook"];
        for ok in ["aider --help", "aider", "ansible-playbook --version"] {
            assert!(starts_with_binary(ok, bins.iter().copied()), "{ok}");
        }
        for bad in [
            "../../../bin/sh -c id",
            " aider --help",
            "aiderx --help",
            "\"aider\" --help",
            "ansible --help",
            "",
        ] {
            assert!(!starts_with_binary(bad, bins.iter().copied()), "{bad}");
        }
    }

    #[test]
    fn the_pex_name_is_taken() {
        let p = crate::names::PackageName::new("Cow_Say").unwrap();
        assert!(collides_with_pex("cow-say.pex", &p));
        assert!(collides_with_pex("Cow-Say.PEX", &p));
        assert!(
            !collides_with_pex("cow_say.pex", &p),
            "not the tarball's name"
        );
        assert!(!collides_with_pex("cow-say", &p));
    }
}
