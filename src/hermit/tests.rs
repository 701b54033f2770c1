use super::*;
use crate::spec;

const SOURCE: &str = "https://github.com/OWNER/REPO/releases/download/aider-chat-v${version}/aider-chat-${os}-${arch}.tar.gz";

fn spec() -> PackageSpec {
    spec::parse(
        "package: aider-chat\nbinaries: [aider]\ndescription: \"AI pair programming \\\"in\\\" your terminal\"\ntest: \"aider --help\"\nversions:\n  - {version: \"0.80.0\", python: \"3.11\"}\n  - {version: \"0.83.1\", python: \"3.12\"}\n",
    )
    .unwrap()
}

fn complete(version: &str, python: u8, fill: char) -> CompleteVersion {
    CompleteVersion {
        version: version.parse().unwrap(),
        python: PythonMinor::new(python).unwrap(),
        sha256: Platform::ALL
            .iter()
            .map(|p| (*p, fill.to_string().repeat(64)))
            .collect(),
        binaries: vec![BinaryName::new("aider").unwrap()],
    }
}

fn render_with(
    complete: &[CompleteVersion],
    existing: Option<&Existing>,
) -> Result<String, ManifestError> {
    let spec = spec();
    render(&ManifestInput {
        spec: &spec,
        source: SOURCE,
        repository: Some("https://github.com/OWNER/REPO"),
        complete,
        existing,
    })
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
fn a_moved_source_is_an_error() {
    let mut existing = read(&render_with(&[complete("0.80.0", 11, 'a')], None).unwrap()).unwrap();
    existing.source = Some("file:///elsewhere/${version}".into());
    assert!(matches!(
        render_with(&[], Some(&existing)),
        Err(ManifestError::SourceChanged { .. })
    ));
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
