use super::*;

fn problem(yaml: &str) -> Problem {
    match parse(yaml) {
        Err(p) => p,
        Ok(spec) => spec.validate().expect_err("expected a problem").remove(0),
    }
}

fn problems(yaml: &str) -> Vec<Problem> {
    parse(yaml)
        .expect("parses")
        .validate()
        .expect_err("expected problems")
}

const MINIMAL: &str =
    "package: cowsay\nbinaries: [cowsay]\nversions:\n  - version: \"6.0\"\n    python: \"3.12\"\n";

#[test]
fn original_pipeline_configs_load_as_they_are() {
    // The shapes of vgijssel/hermit-python-packages' configs: unquoted x.y.z versions, quoted
    // and unquoted pythons, extra_packages, config_version, comments.
    let aider = r#"package: aider-chat
extra_packages:
  - setuptools>=71.0.2,<80.9
config_version: 2
test: "aider --help"
description: "Aider is a command-line tool that helps you write better code."
binaries:
  - aider
versions:
  # Using Python 3.10 for compatibility with all dependencies
  - version: 0.83.1
    python: "3.10"
  - version: 0.83.2
    python: "3.11"
"#;
    let spec = parse(aider).unwrap();
    spec.validate().unwrap();
    assert_eq!(spec.package.as_str(), "aider-chat");
    assert_eq!(spec.config_version, Some(2));
    assert_eq!(spec.minimum().unwrap().to_string(), "0.83.1");

    let seed = "binaries:\n  - aider\npackage: aider-chat\nversions:\n  - version: 0.80.0\n    python: 3.11\n\n  - version: 0.83.1\n    python: 3.12\n";
    let spec = parse(seed).unwrap();
    spec.validate().unwrap();
    assert_eq!(spec.versions[1].python.to_string(), "3.12");

    let ansible = "package: ansible\ntest: \"ansible --help\"\ndescription: Radically simple IT automation\nbinaries:\n  - ansible\n  - ansible-playbook\n\nversions:\n  # - version: 9.0.1\n  #   python: \"3.10\"\n\n  - version: 11.0.0\n    python: \"3.11\"";
    parse(ansible).unwrap().validate().unwrap();
}

#[test]
fn unquoted_python_3_10_is_refused_with_the_fix() {
    let p =
        problem("package: x\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: 3.10\n");
    assert_eq!(p.field, "versions[0].python");
    assert!(p.message.contains("\"3.10\""), "{}", p.message);
    assert!(p.message.contains("quoted"), "{}", p.message);
}

#[test]
fn unambiguous_unquoted_pythons_are_accepted() {
    for (text, minor) in [("3.11", 11), ("3.12", 12), ("3.13", 13), ("3.9", 9)] {
        let spec = parse(&format!(
            "package: x\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: {text}\n"
        ))
        .unwrap();
        assert_eq!(spec.versions[0].python.minor(), minor);
    }
}

#[test]
fn unsupported_pythons_are_refused() {
    for bad in ["\"3.7\"", "\"2.7\"", "3", "\"3.x\"", "\"3.15\""] {
        let p = problem(&format!(
            "package: x\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: {bad}\n"
        ));
        assert_eq!(p.field, "versions[0].python", "{bad}: {p:?}");
    }
}

#[test]
fn a_shell_injection_as_package_name_is_refused() {
    let p = problem(
        "package: \"x; rm -rf /\"\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n",
    );
    assert_eq!(p.field, "package");
    assert!(
        p.message.contains("not a PyPI project name"),
        "{}",
        p.message
    );
}

#[test]
fn bad_binary_names_are_refused() {
    for bad in ["../x", "a b", "$(id)", ";"] {
        let p = problem(&format!(
            "package: x\nbinaries: [\"{bad}\"]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n"
        ));
        assert_eq!(p.field, "binaries[0]", "{bad}");
    }
}

#[test]
fn unknown_fields_are_refused_and_named() {
    let p = problem(&format!("{MINIMAL}prerelease: true\n"));
    assert_eq!(p.field, "prerelease");
    assert!(
        p.message.contains("prereleases"),
        "lists the known fields: {}",
        p.message
    );

    let p = problem(
        "package: x\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    pyhton: \"3.12\"\n",
    );
    assert_eq!(p.field, "versions[0]");
    assert!(p.message.contains("pyhton"), "{}", p.message);
}

#[test]
fn missing_required_fields_are_named() {
    let p = problem("package: x\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n");
    assert_eq!(p.field, "binaries");
    let p = problem("package: x\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n");
    assert_eq!(p.field, "versions[0]");
    assert!(p.message.contains("python"));
}

#[test]
fn versions_must_be_pep440_and_not_floats() {
    let p = problem(
        "package: x\nbinaries: [x]\nversions:\n  - version: \"not.a.version\"\n    python: \"3.12\"\n",
    );
    assert_eq!(p.field, "versions[0].version");
    assert!(p.message.contains("PEP 440"));

    let p =
        problem("package: x\nbinaries: [x]\nversions:\n  - version: 1.10\n    python: \"3.12\"\n");
    assert_eq!(p.field, "versions[0].version");
    assert!(p.message.contains("quote"), "{}", p.message);

    let p = problem(&format!("{MINIMAL}exclude: [\"1.0+local\"]\n"));
    assert_eq!(p.field, "exclude[0]");

    let spec =
        parse("package: x\nbinaries: [x]\nversions:\n  - version: 2024\n    python: \"3.12\"\n")
            .unwrap();
    assert_eq!(spec.minimum().unwrap().to_string(), "2024");
}

#[test]
fn empty_lists_and_duplicates_are_refused() {
    let all = problems("package: x\nbinaries: []\nversions: []\n");
    let fields: Vec<&str> = all.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["binaries", "versions"]);

    let all = problems(
        "package: x\nbinaries: [a, a]\nversions:\n  - {version: \"1.0\", python: \"3.12\"}\n  - {version: \"1.0.0\", python: \"3.11\"}\nexclude: [\"2\", \"2.0\"]\nplatforms: [linux-amd64, linux-amd64]\n",
    );
    let fields: Vec<&str> = all.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["binaries", "versions", "exclude", "platforms"]);

    let p = problem(&format!("{MINIMAL}platforms: []\n"));
    assert_eq!(p.field, "platforms");
}

#[test]
fn platforms_extra_packages_and_test_are_checked() {
    let p = problem(&format!("{MINIMAL}platforms: [macos-arm64]\n"));
    assert_eq!(p.field, "platforms[0]");
    assert!(p.message.contains("darwin-arm64"));

    let p = problem(&format!("{MINIMAL}extra_packages: [\"setuptools<<80\"]\n"));
    assert_eq!(p.field, "extra_packages[0]");

    let p = problem(&format!("{MINIMAL}test: \"\"\n"));
    assert_eq!(p.field, "test");
}

#[test]
fn python_applies_from_its_version_up_to_the_next_entry() {
    let spec = parse(
        "package: aider-chat\nbinaries: [aider]\nversions:\n  - {version: \"0.83.1\", python: \"3.12\"}\n  - {version: \"0.80.0\", python: \"3.11\"}\n",
    )
    .unwrap();
    let py = |v: &str| spec.python_for(&v.parse().unwrap()).map(|p| p.to_string());
    assert_eq!(py("0.79.9"), None);
    assert_eq!(py("0.80.0"), Some("3.11".into()));
    assert_eq!(py("0.83.0"), Some("3.11".into()));
    assert_eq!(py("0.83.1"), Some("3.12".into()));
    assert_eq!(
        py("0.100.0"),
        Some("3.12".into()),
        "PEP 440 order, not string order"
    );
}

#[test]
fn defaults() {
    let spec = parse(MINIMAL).unwrap();
    assert_eq!(spec.platforms().len(), 4);
    assert_eq!(spec.test_command(), "cowsay --help");
    assert!(!spec.prereleases);
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "package: x\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    python: 3.10\n",
    )
    .unwrap();
    let err = load(&file).unwrap_err().to_string();
    assert!(err.starts_with(&file.display().to_string()), "{err}");
    assert!(err.contains("versions[0].python"), "{err}");
}
