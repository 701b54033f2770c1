use std::collections::BTreeSet;

use super::*;
use crate::names::{Arch, Os};
use crate::spec;

#[path = "../../tests/common/hermit_resolve.rs"]
mod resolve;

const SOURCE: &str = "https://github.com/OWNER/REPO/releases/download/aider-chat-v${version}/aider-chat-${os}-${arch}.tar.gz";
const DARWIN_AMD64: Platform = Platform::new(Os::Darwin, Arch::Amd64);
const LINUX_ARM64: Platform = Platform::new(Os::Linux, Arch::Arm64);

fn spec() -> PackageSpec {
    spec_with("")
}

/// The aider-chat config plus `extra` YAML lines.
fn spec_with(extra: &str) -> PackageSpec {
    spec::parse(&format!(
        "package: aider-chat\nbinaries: [aider]\ndescription: \"AI pair programming \\\"in\\\" your terminal\"\ntest: \"aider --help\"\nversions:\n  - {{version: \"0.80.0\", python: \"3.11\"}}\n  - {{version: \"0.83.1\", python: \"3.12\"}}\n{extra}"
    ))
    .unwrap()
}

fn complete(version: &str, python: u8, fill: char) -> CompleteVersion {
    on(version, python, fill, &Platform::ALL)
}

/// A version complete on `platforms` only.
fn on(version: &str, python: u8, fill: char, platforms: &[Platform]) -> CompleteVersion {
    CompleteVersion {
        version: version.parse().unwrap(),
        python: PythonMinor::new(python).unwrap(),
        sha256: platforms
            .iter()
            .map(|p| (*p, fill.to_string().repeat(64)))
            .collect(),
        binaries: vec![BinaryName::new("aider").unwrap()],
    }
}

fn without(version: &str, python: u8, fill: char, missing: Platform) -> CompleteVersion {
    let platforms: Vec<Platform> = Platform::ALL
        .into_iter()
        .filter(|p| *p != missing)
        .collect();
    on(version, python, fill, &platforms)
}

fn launching(mut cv: CompleteVersion, binaries: &[&str]) -> CompleteVersion {
    cv.binaries = binaries
        .iter()
        .map(|b| BinaryName::new(b).unwrap())
        .collect();
    cv
}

fn render_with(
    complete: &[CompleteVersion],
    existing: Option<&Existing>,
) -> Result<String, ManifestError> {
    render_spec(&spec(), SOURCE, complete, existing)
}

fn render_spec(
    spec: &PackageSpec,
    source: &str,
    complete: &[CompleteVersion],
    existing: Option<&Existing>,
) -> Result<String, ManifestError> {
    render(&ManifestInput {
        spec,
        source,
        repository: Some("https://github.com/OWNER/REPO"),
        complete,
        existing,
    })
}

fn resolved(text: &str, version: &str, p: Platform) -> resolve::Resolved {
    resolve::resolve(text, version, p.os.as_str(), p.arch.as_str()).unwrap()
}

/// Resolves every (version, platform) of `text` the way Hermit does and checks it against
/// `want`: a platform a version has resolves to its URL, which is a key of `sha256sums` with
/// its digest; any other platform resolves to no source (unsupported); the launchers are the
/// version's; and `sha256sums` holds nothing but the URLs resolved to.
fn assert_resolves(text: &str, want: &[CompleteVersion]) {
    let sums = resolve::sha256sums(&hcl::parse(text).unwrap()).unwrap();
    let mut listed: Vec<String> = resolve::versions(text).unwrap();
    listed.sort_by_key(|v| v.parse::<Version>().unwrap());
    let mut wanted: Vec<String> = want.iter().map(|c| c.version.to_string()).collect();
    wanted.sort_by_key(|v| v.parse::<Version>().unwrap());
    assert_eq!(listed, wanted, "versions listed:\n{text}");
    let mut used = BTreeSet::new();
    for cv in want {
        let v = cv.version.to_string();
        for p in Platform::ALL {
            let r = resolved(text, &v, p);
            match cv.sha256.get(&p) {
                Some(digest) => {
                    let url = r
                        .source
                        .clone()
                        .unwrap_or_else(|| panic!("{v} {p}: no source\n{text}"));
                    assert_eq!(url, expand(SOURCE, &cv.version, p), "{v} {p}");
                    assert_eq!(sums.get(&url), Some(digest), "{v} {p}: sha256sums[{url}]");
                    assert_eq!(r.sha256.as_ref(), Some(digest), "{v} {p}");
                    used.insert(url);
                }
                None => assert_eq!(r.source, None, "{v} {p} must be unsupported\n{text}"),
            }
            let mut got = r.binaries.clone();
            got.sort();
            got.dedup();
            assert_eq!(
                got.len(),
                r.binaries.len(),
                "{v} {p}: a launcher twice: {:?}",
                r.binaries
            );
            let mut binaries: Vec<String> = cv.binaries.iter().map(|b| b.to_string()).collect();
            binaries.sort();
            assert_eq!(got, binaries, "{v} {p}: launchers\n{text}");
            assert_eq!(
                r.runtime_dependencies,
                [format!("python3@{}", cv.python)],
                "{v} {p}"
            );
            assert_eq!(r.test.as_deref(), Some("aider --help"), "{v} {p}");
        }
    }
    let keys: BTreeSet<String> = sums.keys().cloned().collect();
    assert_eq!(keys, used, "sha256sums holds exactly the URLs resolved to");
}

#[test]
fn golden() {
    let text = render_with(
        &[complete("0.83.1", 12, 'b'), complete("0.80.0", 11, 'a')],
        None,
    )
    .unwrap();
    let golden = include_str!("../../tests/fixtures/hermit/aider-chat.hcl");
    assert_eq!(text, golden);
    assert_resolves(
        golden,
        &[complete("0.80.0", 11, 'a'), complete("0.83.1", 12, 'b')],
    );
}

#[test]
fn versions_are_sorted_by_pep440_and_every_url_has_a_digest() {
    let text = render_with(
        &[
            complete("0.100.0", 12, 'c'),
            complete("0.9.0", 11, 'a'),
            complete("0.83.1", 12, 'b'),
        ],
        None,
    )
    .unwrap();
    let existing = read(&text).unwrap();
    assert_eq!(existing.source.as_deref(), Some(SOURCE));
    let listed: Vec<String> = existing.versions.keys().map(|v| v.to_string()).collect();
    assert_eq!(listed, ["0.9.0", "0.83.1", "0.100.0"]);
    let order: Vec<usize> = ["\"0.9.0\"", "\"0.83.1\"", "\"0.100.0\""]
        .iter()
        .map(|v| text.find(v).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "text order is PEP 440 order:\n{text}"
    );
    assert!(unverified(&existing, &Platform::ALL).is_empty());
    assert_eq!(existing.sha256sums.len(), 12);
    assert!(
        existing
            .sha256sums
            .values()
            .all(|d| crate::release::is_sha256_hex(d))
    );
    assert_eq!(
        existing.versions[&"0.9.0".parse().unwrap()],
        ["python3@3.11"]
    );
}

#[test]
fn a_listed_version_is_kept_when_the_store_no_longer_shows_it() {
    let first = render_with(&[complete("0.80.0", 11, 'a')], None).unwrap();
    let existing = read(&first).unwrap();
    let second = render_with(&[complete("0.83.1", 12, 'b')], Some(&existing)).unwrap();
    let again = read(&second).unwrap();
    assert_eq!(again.versions.len(), 2);
    assert!(second.contains("aider-chat-v0.80.0/aider-chat-darwin-arm64.tar.gz\": \"aaaa"));
}

#[test]
fn a_changed_digest_is_an_error_not_an_overwrite() {
    let existing = read(&render_with(&[complete("0.80.0", 11, 'a')], None).unwrap()).unwrap();
    let err = render_with(&[complete("0.80.0", 11, 'f')], Some(&existing)).unwrap_err();
    assert!(matches!(err, ManifestError::DigestConflict { .. }), "{err}");
}

#[test]
fn a_moved_source_is_an_error_in_both_shapes() {
    for listed in [
        complete("0.80.0", 11, 'a'),
        without("0.80.0", 11, 'a', DARWIN_AMD64),
    ] {
        let existing = read(&render_with(&[listed], None).unwrap()).unwrap();
        let moved = "file:///elsewhere/${version}/aider-chat-${os}-${arch}.tar.gz";
        let err = render_spec(&spec(), moved, &[], Some(&existing)).unwrap_err();
        assert!(
            matches!(&err, ManifestError::SourceChanged { old, new } if old == SOURCE && new == moved),
            "{err}"
        );
    }
}

#[test]
fn strings_are_quoted_and_dollars_in_test_escaped() {
    let mut s = spec();
    s.test = Some("aider --version \"$HOME\"".into());
    let text = render(&ManifestInput {
        spec: &s,
        source: SOURCE,
        repository: None,
        complete: &[],
        existing: None,
    })
    .unwrap();
    assert!(
        text.contains(r#"description = "AI pair programming \"in\" your terminal""#),
        "{text}"
    );
    assert!(
        text.contains(r#"test = "aider --version \"$$HOME\"""#),
        "{text}"
    );
    assert!(!text.contains("repository"));
    assert!(!text.contains("sha256sums"), "no empty map");
    assert!(
        !text.contains("$${version}"),
        "the source template keeps Hermit's variables"
    );
}

#[test]
fn a_missing_digest_is_found() {
    let mut existing = read(&render_with(&[complete("0.80.0", 11, 'a')], None).unwrap()).unwrap();
    let url = expand(SOURCE, &"0.80.0".parse().unwrap(), Platform::ALL[2]);
    existing.sha256sums.remove(&url);
    assert_eq!(unverified(&existing, &Platform::ALL), [url]);
}

#[test]
fn a_hand_edited_manifest_is_reported_not_overwritten() {
    let text = render_with(&[complete("0.80.0", 11, 'a')], None).unwrap();
    let edited = text.replace("homepage =", "env = { \"AIDER_X\": \"1\" }\nhomepage =");
    let existing = read(&edited).unwrap();
    assert_eq!(existing.foreign, ["env"]);
    let err = render_with(&[complete("0.83.1", 12, 'b')], Some(&existing)).unwrap_err();
    assert!(
        matches!(&err, ManifestError::HandEdited(f) if f == &["env"]),
        "{err}"
    );
    assert!(
        read(&text).unwrap().foreign.is_empty(),
        "our own output is not foreign"
    );
}

#[test]
fn an_unreadable_manifest_is_reported() {
    assert!(matches!(
        read("version \"1.0\" {"),
        Err(ManifestError::Unreadable(_))
    ));
}

#[test]
fn several_labels_share_one_version_block() {
    let existing = read("source = \"x\"\nversion \"1.0\" \"1.1\" {\n  runtime-dependencies = [\"python3@3.11\"]\n}\n").unwrap();
    assert_eq!(existing.versions.len(), 2);
}

#[test]
fn golden_one_version_lacks_darwin_amd64() {
    let want = [
        complete("0.80.0", 11, 'a'),
        without("0.83.1", 12, 'b', DARWIN_AMD64),
    ];
    let text = render_with(&want, None).unwrap();
    assert_eq!(
        text,
        include_str!("../../tests/fixtures/hermit/aider-chat-partial.hcl")
    );
    assert!(!text.contains("\nsource ="), "no top-level source:\n{text}");
    assert_resolves(&text, &want);
    let existing = read(&text).unwrap();
    assert!(existing.foreign.is_empty(), "{:?}", existing.foreign);
    assert_eq!(existing.source, None);
    assert_eq!(
        existing.listed_platforms(&want[1].version),
        want[1].sha256.keys().copied().collect()
    );
    assert!(unverified(&existing, &Platform::ALL).is_empty());
    assert_eq!(
        render_with(&[], Some(&existing)).unwrap(),
        text,
        "read back and rendered again, nothing changes"
    );
}

#[test]
fn golden_a_config_with_three_platforms() {
    let spec = spec_with("platforms: [linux-amd64, linux-arm64, darwin-arm64]\n");
    let three: Vec<Platform> = spec.platforms();
    let want = [on("0.80.0", 11, 'a', &three), on("0.83.1", 12, 'b', &three)];
    let text = render_spec(&spec, SOURCE, &want, None).unwrap();
    assert_eq!(
        text,
        include_str!("../../tests/fixtures/hermit/aider-chat-three-platforms.hcl")
    );
    assert_resolves(&text, &want);
    let existing = read(&text).unwrap();
    assert!(existing.foreign.is_empty(), "{:?}", existing.foreign);
    assert_eq!(
        render_spec(&spec, SOURCE, &want, Some(&existing)).unwrap(),
        text
    );
}

#[test]
fn golden_versions_with_different_launchers() {
    let want = [
        launching(complete("0.80.0", 11, 'a'), &["aider"]),
        launching(complete("0.83.1", 12, 'b'), &["aider", "aider-gui"]),
        launching(
            without("0.86.0", 12, 'c', DARWIN_AMD64),
            &["aider-gui", "aider", "aider-lint"],
        ),
    ];
    let text = render_with(&want, None).unwrap();
    assert_eq!(
        text,
        include_str!("../../tests/fixtures/hermit/aider-chat-binaries.hcl")
    );
    assert!(text.contains("\nbinaries = [\"aider\"]\n"), "{text}");
    assert_resolves(&text, &want);
    let existing = read(&text).unwrap();
    assert!(existing.foreign.is_empty(), "{:?}", existing.foreign);
    let names = |v: &str| -> Vec<String> {
        existing.listings[&v.parse::<Version>().unwrap()]
            .binaries
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(names("0.80.0"), ["aider"]);
    assert_eq!(names("0.86.0"), ["aider", "aider-gui", "aider-lint"]);
    assert_eq!(render_with(&[], Some(&existing)).unwrap(), text);
}

#[test]
fn the_same_launchers_in_another_order_stay_top_level() {
    let want = [
        launching(complete("0.80.0", 11, 'a'), &["aider", "aider-gui"]),
        launching(complete("0.83.1", 12, 'b'), &["aider-gui", "aider"]),
    ];
    let text = render_with(&want, None).unwrap();
    assert!(
        text.contains("\nbinaries = [\"aider\", \"aider-gui\"]\n"),
        "{text}"
    );
    assert_eq!(text.matches("binaries").count(), 1, "{text}");
    assert_resolves(&text, &want);
}

#[test]
fn a_version_keeps_its_launchers_when_the_config_changes() {
    let first = [launching(complete("0.80.0", 11, 'a'), &["aider"])];
    let existing = read(&render_with(&first, None).unwrap()).unwrap();
    // The store reports 0.80.0 again with the config's new launchers: its tarballs have not
    // changed, so what it was listed with stands.
    let again = [
        launching(complete("0.80.0", 11, 'a'), &["aider", "aider-gui"]),
        launching(complete("0.83.1", 12, 'b'), &["aider", "aider-gui"]),
    ];
    let text = render_with(&again, Some(&existing)).unwrap();
    assert_resolves(&text, &[first[0].clone(), again[1].clone()]);
}

#[test]
fn a_version_without_launchers_is_refused() {
    let err = render_with(&[launching(complete("0.80.0", 11, 'a'), &[])], None).unwrap_err();
    assert!(
        matches!(&err, ManifestError::NoBinaries { version } if version.to_string() == "0.80.0"),
        "{err}"
    );
    assert!(err.to_string().contains("`binaries`"), "{err}");
}

#[test]
fn every_set_of_platforms_resolves_to_exactly_itself() {
    // 15 non-empty sets of the four platforms, one version each, digests told apart by version.
    let want: Vec<CompleteVersion> = (1u8..16)
        .map(|mask| {
            let platforms: Vec<Platform> = Platform::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, p)| p)
                .collect();
            let fill = char::from_digit(u32::from(mask), 16).unwrap();
            on(&format!("1.{mask}"), 12, fill, &platforms)
        })
        .collect();
    let text = render_with(&want, None).unwrap();
    assert_resolves(&text, &want);
    assert!(
        read(&text).unwrap().foreign.is_empty(),
        "our own blocks are not foreign"
    );
}

#[test]
fn platform_labels_are_the_fewest_that_select_exactly_the_set() {
    let label = |set: &[Platform]| platform_labels(&set.iter().copied().collect());
    let la = Platform::ALL[0];
    let da = DARWIN_AMD64;
    let dr = Platform::new(Os::Darwin, Arch::Arm64);
    assert_eq!(label(&[la, LINUX_ARM64, dr]), ["linux", "darwin-arm64"]);
    assert_eq!(label(&[la, da]), ["amd64"]);
    assert_eq!(label(&[da, dr]), ["darwin"]);
    assert_eq!(label(&[la, dr]), ["linux-amd64", "darwin-arm64"]);
    assert_eq!(label(&[LINUX_ARM64]), ["linux-arm64"]);
}

#[test]
fn a_version_gains_a_platform_and_the_manifest_regains_todays_shape() {
    let partial = [
        complete("0.80.0", 11, 'a'),
        without("0.83.1", 12, 'b', DARWIN_AMD64),
    ];
    let existing = read(&render_with(&partial, None).unwrap()).unwrap();
    // A wheel appeared and darwin-amd64 was built: the store now has all four.
    let text = render_with(&[complete("0.83.1", 12, 'b')], Some(&existing)).unwrap();
    assert_eq!(
        text,
        include_str!("../../tests/fixtures/hermit/aider-chat.hcl")
    );
}

#[test]
fn a_listed_platform_is_never_dropped() {
    for first in [
        complete("0.83.1", 12, 'b'),
        without("0.83.1", 12, 'b', DARWIN_AMD64),
    ] {
        let existing = read(&render_with(std::slice::from_ref(&first), None).unwrap()).unwrap();
        // The store shows fewer platforms now (an asset it no longer lists, a narrower config).
        let text = render_with(&[on("0.83.1", 12, 'b', &[LINUX_ARM64])], Some(&existing)).unwrap();
        assert_resolves(&text, &[first]);
    }
}

#[test]
fn changing_shape_keeps_every_url_and_digest() {
    let before = render_with(
        &[complete("0.80.0", 11, 'a'), complete("0.83.1", 12, 'b')],
        None,
    )
    .unwrap();
    let existing = read(&before).unwrap();
    let after = render_with(&[without("0.86.0", 12, 'c', DARWIN_AMD64)], Some(&existing)).unwrap();
    assert!(before.contains("\nsource = ") && !after.contains("\nsource = "));
    for v in ["0.80.0", "0.83.1"] {
        for p in Platform::ALL {
            assert_eq!(resolved(&after, v, p), resolved(&before, v, p), "{v} {p}");
        }
    }
    assert_eq!(resolved(&after, "0.86.0", DARWIN_AMD64).source, None);
    assert_resolves(
        &after,
        &[
            complete("0.80.0", 11, 'a'),
            complete("0.83.1", 12, 'b'),
            without("0.86.0", 12, 'c', DARWIN_AMD64),
        ],
    );
}

#[test]
fn a_platform_without_digest_under_a_top_level_source_is_not_listed() {
    // Written before partial versions existed: a three-platform config still got the
    // `${os}-${arch}` source, which promised a darwin-amd64 tarball that was never built.
    let old = render_with(&[complete("0.80.0", 11, 'a')], None).unwrap();
    let url = expand(SOURCE, &"0.80.0".parse().unwrap(), DARWIN_AMD64);
    let old = old
        .lines()
        .filter(|l| !l.contains(&url))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let existing = read(&old).unwrap();
    assert_eq!(unverified(&existing, &Platform::ALL), [url]);
    let text = render_with(&[], Some(&existing)).unwrap();
    assert_resolves(&text, &[without("0.80.0", 11, 'a', DARWIN_AMD64)]);
}

#[test]
fn a_changed_digest_in_a_partial_manifest_is_an_error() {
    let existing =
        read(&render_with(&[without("0.83.1", 12, 'b', DARWIN_AMD64)], None).unwrap()).unwrap();
    let err = render_with(&[on("0.83.1", 12, 'f', &[LINUX_ARM64])], Some(&existing)).unwrap_err();
    assert!(
        matches!(&err, ManifestError::DigestConflict { url, .. } if url.ends_with("linux-arm64.tar.gz")),
        "{err}"
    );
}

#[test]
fn a_missing_digest_in_a_partial_manifest_is_found_and_the_absent_platform_is_not() {
    let v: Version = "0.83.1".parse().unwrap();
    let mut existing =
        read(&render_with(&[without("0.83.1", 12, 'b', DARWIN_AMD64)], None).unwrap()).unwrap();
    let url = expand(SOURCE, &v, LINUX_ARM64);
    existing.sha256sums.remove(&url);
    assert_eq!(unverified(&existing, &Platform::ALL), [url]);
}

#[test]
fn hand_edits_inside_version_blocks_are_reported() {
    let text = render_with(&[without("0.83.1", 12, 'b', DARWIN_AMD64)], None).unwrap();
    for (edit, foreign) in [
        (
            text.replacen(
                "  platform \"linux\" {",
                "  env = { \"X\": \"1\" }\n  platform \"linux\" {",
                1,
            ),
            "version.env",
        ),
        (
            text.replacen("platform \"linux\" {", "platform \"^linux$\" {", 1),
            "version.platform \"^linux$\"",
        ),
        (
            text.replacen(
                "platform \"linux\" {",
                "platform \"linux\" {\n    strip = 1",
                1,
            ),
            "version.platform.strip",
        ),
        (
            text.replacen(
                "platform \"linux\" {",
                "darwin {\n    arch = \"arm64\"\n  }\n  platform \"linux\" {",
                1,
            ),
            "version.darwin",
        ),
        (
            text.replacen(
                "\nversion ",
                "\nplatform \"linux\" {\n  strip = 1\n}\n\nversion ",
                1,
            ),
            "platform",
        ),
    ] {
        assert_ne!(edit, text, "{foreign}: the edit applies");
        assert_eq!(read(&edit).unwrap().foreign, [foreign], "{edit}");
    }
}

#[test]
fn a_git_sources_homepage_is_its_web_page_or_none() {
    for (git, homepage) in [
        (
            "https://git.example.com/org/hello.git",
            Some("https://git.example.com/org/hello"),
        ),
        (
            "https://token@git.example.com/org/hello",
            Some("https://git.example.com/org/hello"),
        ),
        (
            "git@github.com:org/hello.git",
            Some("https://github.com/org/hello"),
        ),
        ("file:///srv/git/hello.git", None),
        ("ssh://git@git.internal:2222/org/hello.git", None),
    ] {
        let spec = spec_with(&format!("source: {{git: \"{git}\"}}\n"));
        let text = render_spec(&spec, SOURCE, &[complete("0.83.1", 12, 'a')], None).unwrap();
        let line = text.lines().find(|l| l.starts_with("homepage ="));
        assert_eq!(
            line,
            homepage.map(|h| format!("homepage = \"{h}\"")).as_deref(),
            "{git}:\n{text}"
        );
        assert!(
            !text.contains("pypi.org"),
            "{git}: not PyPI's page:\n{text}"
        );
        // What Hermit reads of it still resolves.
        assert_resolves(&text, &[complete("0.83.1", 12, 'a')]);
    }
    let pypi = render_spec(&spec(), SOURCE, &[complete("0.83.1", 12, 'a')], None).unwrap();
    assert!(
        pypi.contains("homepage = \"https://pypi.org/project/aider-chat/\""),
        "{pypi}"
    );
}
