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
    // The name is not shown (a config may be a link to a file of secrets): the line, the
    // known fields and the closest of them are.
    let p = problem(&format!("{MINIMAL}prerelease: true\n"));
    assert_eq!(p.field, "");
    assert!(
        p.message.contains("did you mean `prereleases`?") && p.message.contains("line 6"),
        "lists the known fields: {}",
        p.message
    );
    assert!(!p.message.contains("`prerelease`"), "{}", p.message);

    let p = problem(
        "package: x\nbinaries: [x]\nversions:\n  - version: \"1.0\"\n    pyhton: \"3.12\"\n",
    );
    assert_eq!(p.field, "versions[0]");
    assert!(!p.message.contains("pyhton"), "{}", p.message);
    assert!(
        p.message.contains("did you mean `python`?"),
        "{}",
        p.message
    );

    // Names hermit-pex knows are shown: a resource's spelling, a cluster field.
    let p = problem(&format!("{MINIMAL}extraPackages: [rich]\n"));
    assert_eq!(p.field, "extraPackages");
    let p = problem(&format!("{MINIMAL}interval: 1h\n"));
    assert_eq!(p.field, "interval");
    // As a resource's field, an unknown name is shown, as the API server shows it.
    let p = parse_resource(&format!("{MINIMAL}prerelease: true\n")).unwrap_err();
    assert_eq!(p.field, "prerelease");
}

#[test]
fn wrong_types_are_described_not_shown() {
    for (yaml, field, says) in [
        (
            "config_version: \"s3cr3t-value\"\n",
            "config_version",
            "must be a whole number from 0 to 4294967295; found plain text of about 12 characters (not shown)",
        ),
        (
            "prereleases: s3cr3t-value\n",
            "prereleases",
            "must be true or false; found plain text",
        ),
        (
            "partial_platforms: 12345\n",
            "partial_platforms",
            "must be true or false; found a whole number",
        ),
        (
            "source: s3cr3t-value\n",
            "source",
            "must be a mapping {git: URL",
        ),
        (
            "description: [s3cr3t-value]\n",
            "description",
            "found a list",
        ),
    ] {
        let p = problem(&format!("{MINIMAL}{yaml}"));
        assert_eq!(p.field, field, "{yaml}");
        assert!(p.message.contains(says), "{yaml}: {}", p.message);
        assert!(
            !p.message.contains("s3cr3t") && !p.message.contains("12345"),
            "{}",
            p.message
        );
    }
}

#[test]
fn missing_required_fields_are_named() {
    let p = problem("binaries: [x]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\n");
    assert_eq!(p.field, "package");
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
    let p = problem("package: x\nbinaries: []\nversions: []\n");
    assert_eq!(p.field, "binaries");
    assert!(p.message.contains("leave binaries out"), "{}", p.message);
    let p = problem("package: x\nversions: []\n");
    assert_eq!(p.field, "versions");

    let all = problems(
        "package: x\nbinaries: [a, a]\nversions:\n  - {version: \"1.0\", python: \"3.12\"}\n  - {version: \"1.0.0\", python: \"3.11\"}\nexclude: [\"2\", \"2.0\"]\nplatforms: [linux-amd64, linux-amd64]\n",
    );
    let fields: Vec<&str> = all.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "binaries[1]",
            "versions[1].version",
            "exclude[1]",
            "platforms[1]"
        ]
    );
    assert!(
        all[0].message.contains("listed twice (also binaries[0])"),
        "{:?}",
        all[0]
    );
    assert!(
        all[1]
            .message
            .contains("1.0.0 is the same as versions[0].version (1.0)"),
        "PEP 440 equality, both spellings named: {:?}",
        all[1]
    );

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

const NO_BINARIES: &str = "package: cowsay\nversions:\n  - {version: \"6.0\", python: \"3.12\"}\n";

#[test]
fn binaries_may_be_left_out_for_every_console_script() {
    let spec = parse(NO_BINARIES).unwrap();
    spec.validate().unwrap();
    assert!(spec.binaries.is_empty());
    assert_eq!(spec.test_command(), "", "resolved later from the wheel");
    // Without binaries to compare with, any one-line test passes here (checked at build).
    let spec = parse(&format!("{NO_BINARIES}test: \"cowsay -t hi\"\n")).unwrap();
    spec.validate().unwrap();
    assert_eq!(spec.test_command(), "cowsay -t hi");
}

#[test]
fn binaries_are_bounded_unique_and_not_the_pex() {
    let many: Vec<String> = (0..65).map(|i| format!("b{i}")).collect();
    let p = problem(&format!(
        "package: x\nbinaries: [{}]\nversions: [{{version: \"1\", python: \"3.12\"}}]\n",
        many.join(", ")
    ));
    assert_eq!(p.field, "binaries");
    assert!(
        p.message.contains("has 65 entries; at most 64"),
        "{}",
        p.message
    );

    for pex in ["cowsay.pex", "CowSay.PEX"] {
        let p = problem(&format!(
            "package: cowsay\nbinaries: [cowsay, {pex}]\nversions: [{{version: \"6.0\", python: \"3.12\"}}]\n"
        ));
        assert_eq!(p.field, "binaries[1]", "{pex}");
        assert!(p.message.contains("the name of the PEX"), "{}", p.message);
    }
    // Another package's .pex name is no collision.
    parse("package: cowsay\nbinaries: [other.pex]\nversions: [{version: \"6.0\", python: \"3.12\"}]\n")
        .unwrap()
        .validate()
        .unwrap();
}

#[test]
fn test_must_start_with_a_binary_and_be_one_line() {
    for bad in [
        "../../../bin/sh -c id",
        "sh -c cowsay",
        "cowsayx --help",
        " cowsay --help",
    ] {
        let p = problem(&format!("{MINIMAL}test: \"{bad}\"\n"));
        assert_eq!(p.field, "test", "{bad}");
        assert!(
            p.message
                .contains("must start with one of binaries (cowsay)"),
            "{}",
            p.message
        );
    }
    for ok in ["cowsay", "cowsay --help", "cowsay -t 'a b'"] {
        parse(&format!("{MINIMAL}test: \"{ok}\"\n"))
            .unwrap()
            .validate()
            .unwrap_or_else(|p| panic!("{ok}: {p:?}"));
    }
    for bad in ["cowsay\\n--help", "cowsay\\t--help", "cowsay\\u0085", "   "] {
        let p = problem(&format!("{MINIMAL}test: \"{bad}\"\n"));
        assert_eq!(p.field, "test", "{bad}");
    }
    let p = problem(&format!("{MINIMAL}test: \"cowsay\\nid\"\n"));
    assert!(p.message.contains("U+000A at character 7"), "{}", p.message);
    let p = problem(&format!("{MINIMAL}test: \"cowsay {}\"\n", "x".repeat(600)));
    assert!(p.message.contains("at most 512"), "{}", p.message);
}

#[test]
fn description_is_one_bounded_line() {
    let p = problem(&format!("{MINIMAL}description: \"a\\nb\"\n"));
    assert_eq!(p.field, "description");
    let p = problem(&format!("{MINIMAL}description: \"{}\"\n", "d".repeat(513)));
    assert_eq!(p.field, "description");
    assert!(p.message.contains("513 characters"), "{}", p.message);
    parse(&format!("{MINIMAL}description: \"{}\"\n", "é".repeat(512)))
        .unwrap()
        .validate()
        .expect("512 characters, however many bytes");
}

#[test]
fn extra_packages_are_requirements() {
    for (bad, says) in [
        ("$(id)", "must start with a project name"),
        (" setuptools", "must start with a project name"),
        ("setuptools\\n--index-url=http://x", "control character"),
        ("setuptools<<80", "not a PEP 508 requirement"),
    ] {
        let p = problem(&format!("{MINIMAL}extra_packages: [\"{bad}\"]\n"));
        assert_eq!(p.field, "extra_packages[0]", "{bad}");
        assert!(p.message.contains(says), "{bad}: {}", p.message);
    }
    let many: Vec<String> = (0..51).map(|i| format!("\"p{i}\"")).collect();
    let p = problem(&format!("{MINIMAL}extra_packages: [{}]\n", many.join(", ")));
    assert_eq!(p.field, "extra_packages");
    parse(&format!(
        "{MINIMAL}extra_packages: [\"setuptools>=71.0.2,<80.9\", \"rich[jupyter]; python_version < '3.13'\"]\n"
    ))
    .unwrap()
    .validate()
    .unwrap();
}

#[test]
fn lists_are_bounded() {
    let entries: String = (0..101)
        .map(|i| format!("  - {{version: \"{i}.0\", python: \"3.12\"}}\n"))
        .collect();
    let p = problem(&format!("package: x\nversions:\n{entries}"));
    assert_eq!(p.field, "versions");
    assert!(p.message.contains("at most 100"), "{}", p.message);
    let exclude: Vec<String> = (0..501).map(|i| format!("\"{i}.1\"")).collect();
    let p = problem(&format!("{MINIMAL}exclude: [{}]\n", exclude.join(",")));
    assert_eq!(p.field, "exclude");
}

#[test]
fn partial_platforms_defaults_to_true() {
    assert!(parse(MINIMAL).unwrap().partial_platforms());
    let spec = parse(&format!("{MINIMAL}partial_platforms: false\n")).unwrap();
    assert!(!spec.partial_platforms());
    assert_eq!(spec.partial_platforms, Some(false));
}

#[test]
fn versions_are_public_pep440_versions_as_the_crd_takes_them() {
    for bad in [
        "not a version",
        "1.0 ",
        " 1.0",
        "1.0+local",
        "1.0a.",
        "1..0",
        ".1",
        "1!2!3",
        "1_0",
        "9999999999999999999",
        "",
    ] {
        assert!(PyVersion::parse(bad).is_err(), "{bad:?}");
        assert!(!rules::PUBLIC_VERSION.is_match(bad), "{bad:?}");
    }
    let long = "1.".repeat(40) + "1";
    assert!(
        PyVersion::parse(&long)
            .unwrap_err()
            .0
            .contains("at most 64")
    );
    // Every spelling the CRD's pattern takes, the parser takes too.
    let mut n = 0;
    for prefix in ["", "v", "V"] {
        for epoch in ["", "1!", "0!"] {
            for release in ["1", "1.0", "0.83.1", "2024.1", "01.2"] {
                for pre in [
                    "",
                    "a1",
                    "b2",
                    "rc1",
                    "c3",
                    ".alpha",
                    "-beta.2",
                    "_preview3",
                    "pre",
                    "RC1",
                    ".rc.1",
                ] {
                    for post in [
                        "", ".post1", "-1", "post", "_rev2", ".r3", "-post-4", "POST5",
                    ] {
                        for dev in ["", ".dev0", "dev", "-dev_1", "DEV2"] {
                            let v = format!("{prefix}{epoch}{release}{pre}{post}{dev}");
                            assert!(rules::PUBLIC_VERSION.is_match(&v), "{v}");
                            PyVersion::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"));
                            n += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(n, 3 * 3 * 5 * 11 * 8 * 5);
}

#[test]
fn a_float_version_is_quoted_as_written() {
    for (written, quoted) in [
        ("6.0", "\"6.0\""),
        ("1.10", "\"1.10\""),
        ("2.50", "\"2.50\""),
    ] {
        let p = problem(&format!(
            "package: x\nversions:\n  - version: {written}\n    python: \"3.12\"\n"
        ));
        assert_eq!(p.field, "versions[0].version");
        assert!(p.message.contains(quoted), "{written}: {}", p.message);
        assert!(p.message.contains("line 3"), "{}", p.message);
    }
    let p = problem("package: x\nversions: [{version: 6.0, python: \"3.12\"}]\n");
    assert!(p.message.contains("\"6.0\""), "{}", p.message);
    let p = problem(&format!("{MINIMAL}exclude: [6.10]\n"));
    assert_eq!(p.field, "exclude[0]");
    assert!(p.message.contains("\"6.10\""), "{}", p.message);
}

#[test]
fn a_config_that_is_not_a_mapping_says_so() {
    for text in ["~", "- package: x\n", "hello", "42", "[]"] {
        let p = problem(text);
        assert_eq!(p.field, "", "{text}");
        assert!(
            p.message
                .starts_with("the config must be a mapping with package, versions"),
            "{text}: {}",
            p.message
        );
        assert!(!p.message.contains("struct"), "{}", p.message);
    }
    let p = problem("");
    assert!(p.message.starts_with("is empty"), "{}", p.message);
    let p = problem("package: x\nversions: [[1]]\n");
    assert_eq!(p.field, "versions[0]");
    assert!(
        p.message.contains("each entry must be a mapping"),
        "{}",
        p.message
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let spec = parse(&format!("\u{feff}{MINIMAL}")).unwrap();
    assert_eq!(spec.package.as_str(), "cowsay");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        [b"\xEF\xBB\xBF".as_slice(), MINIMAL.as_bytes()].concat(),
    )
    .unwrap();
    load(&file).unwrap();
    std::fs::write(&file, [0xFF, 0xFE, b'p', 0]).unwrap();
    assert!(load(&file).unwrap_err().to_string().contains("UTF-16"));
}

#[test]
fn long_values_are_never_echoed_whole() {
    let name = "n".repeat(1_000_000);
    let p = problem(&format!(
        "package: \"{name}\"\nversions: [{{version: \"1\", python: \"3.12\"}}]\n"
    ));
    assert_eq!(p.field, "package");
    assert!(p.message.len() < 500, "{} bytes", p.message.len());
    assert!(p.message.contains("more characters"), "{}", p.message);

    let key = "k".repeat(500_000);
    let p = problem(&format!("{MINIMAL}{key}: 1\n"));
    assert!(p.field.len() < 200 && p.message.len() < 2000, "{p:?}");

    // A file whose lines fold into one long YAML string, like /etc/passwd.
    let passwd: String = (0..200)
        .map(|i| format!("user{i}:x:{i}:{i}:User {i}:/home/user{i}:/bin/sh\n"))
        .collect();
    let p = problem(&passwd);
    assert!(p.message.len() < 600, "{}", p.message);
    assert!(
        !p.message.contains("user0"),
        "not even its start: {}",
        p.message
    );
}

#[test]
fn nesting_and_size_are_refused_before_parsing() {
    let started = std::time::Instant::now();
    let deep = format!("package: x\nversions: {}", "[".repeat(100_000));
    let p = problem(&deep);
    assert!(
        p.message.contains("more than 1024 '[' and '{'"),
        "{}",
        p.message
    );
    let big = format!(
        "{MINIMAL}description: \"{}\"\n",
        "x".repeat(MAX_CONFIG_BYTES)
    );
    assert!(problem(&big).message.contains("at most 1048576 bytes"));
    assert!(
        started.elapsed().as_secs_f64() < 1.0,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn long_lists_parse_in_linear_time() {
    // 40,000 entries took 10 s with pairwise duplicate checks; each file is under 1 MiB.
    let versions: String = (0..25_000)
        .map(|i| format!("- version: \"{i}\"\n  python: \"3.12\"\n"))
        .collect();
    let exclude: Vec<String> = (0..40_000).map(|i| format!("\"{i}.1\"")).collect();
    let started = std::time::Instant::now();
    for (text, field) in [
        (format!("package: x\nversions:\n{versions}"), "versions"),
        (
            format!("{MINIMAL}exclude: [{}]\n", exclude.join(",")),
            "exclude",
        ),
    ] {
        let all = parse(&text).unwrap().validate().unwrap_err();
        let fields: Vec<&str> = all.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, [field]);
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(elapsed < 5.0, "{elapsed:.2} s (unoptimised build)");
}

#[cfg(unix)]
#[test]
fn unreadable_files_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink(d.join("loop"), d.join("loop")).unwrap();
    let err = load(&d.join("loop")).unwrap_err().to_string();
    assert!(err.contains("symbolic link loop"), "{err}");
    std::os::unix::fs::symlink(d.join("gone.yaml"), d.join("dangling")).unwrap();
    let err = load(&d.join("dangling")).unwrap_err().to_string();
    assert!(
        err.contains("symbolic link to") && err.contains("does not exist"),
        "{err}"
    );
    let err = load(d).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
    let big = d.join("big.yaml");
    std::fs::write(&big, vec![b'#'; MAX_CONFIG_BYTES + 1]).unwrap();
    let err = load(&big).unwrap_err().to_string();
    assert!(
        err.contains("1048577 bytes") && err.contains("not parsed"),
        "{err}"
    );

    // Inside a directory of packages, a broken config is listed, so that loading names it.
    let py = d.join("python");
    std::fs::create_dir_all(py.join("ok")).unwrap();
    std::fs::write(py.join("ok/config.yaml"), MINIMAL).unwrap();
    std::fs::create_dir_all(py.join("looped")).unwrap();
    std::os::unix::fs::symlink("config.yaml", py.join("looped/config.yaml")).unwrap();
    std::fs::write(py.join("README.md"), "not a package").unwrap();
    let found = discover(std::slice::from_ref(&py)).unwrap();
    assert_eq!(
        found,
        [py.join("looped/config.yaml"), py.join("ok/config.yaml")]
    );
    let err = discover(&[d.join("loop")]).unwrap_err();
    assert!(err.contains("symbolic link loop"), "{err}");
    // One file reached twice is one config.
    let twice = discover(&[py.clone(), py.join("ok")]).unwrap();
    assert_eq!(twice.len(), 2, "{twice:?}");
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

#[test]
fn a_source_follows_a_branch_or_tags_and_the_branch_is_one_git_takes() {
    let base = "package: hello-tool\nversions: [{version: \"1.0\", python: \"3.12\"}]\n";
    let ok = crate::spec::parse(&format!(
        "{base}source: {{git: \"https://git.example.com/h.git\", branch: release/2.x}}\n"
    ))
    .unwrap();
    assert!(ok.validate().is_ok());
    assert_eq!(ok.source.unwrap().branch.as_deref(), Some("release/2.x"));
    for bad in ["\"-x\"", "\"a..b\"", "\"a b\"", "x.lock", "\"\""] {
        let p = problems(&format!(
            "{base}source: {{git: \"https://git.example.com/h.git\", branch: {bad}}}\n"
        ));
        assert!(p.iter().any(|p| p.field == "source.branch"), "{bad}: {p:?}");
    }
    let both = problems(&format!(
        "{base}source: {{git: \"https://git.example.com/h.git\", branch: main, tag_prefix: v}}\n"
    ));
    assert!(
        both.iter()
            .any(|p| p.field == "source.tag_prefix" && p.message.contains("a branch or tags")),
        "{both:?}"
    );
}

#[test]
fn yaml_tags_are_refused() {
    for (yaml, field) in [
        (format!("{MINIMAL}prereleases: !Sync true\n"), "prereleases"),
        (
            "package: !Sync cowsay\nversions: [{version: \"6.0\", python: \"3.12\"}]\n".to_owned(),
            "package",
        ),
        (
            "package: cowsay\nversions:\n  - version: !custom \"6.0\"\n    python: \"3.12\"\n"
                .to_owned(),
            "versions[0].version",
        ),
        (
            format!("{MINIMAL}extra_packages: !custom [rich]\n"),
            "extra_packages",
        ),
    ] {
        let p = problem(&yaml);
        assert_eq!(p.field, field, "{yaml}: {p:?}");
        assert!(p.message.contains("YAML tag"), "{}", p.message);
    }
    // YAML's own core tags say what the value already is.
    for ok in [
        format!("{MINIMAL}description: !!str 42\n"),
        format!("{MINIMAL}prereleases: !!bool true\n"),
    ] {
        parse(&ok).unwrap_or_else(|p| panic!("{ok}: {p:?}"));
    }
}

#[test]
fn duplicate_and_direct_requirements() {
    let p = problem(&format!(
        "{MINIMAL}extra_packages: [\"Rich >= 13\", \"setuptools\", \"rich>=13\"]\n"
    ));
    assert_eq!(p.field, "extra_packages[2]");
    assert!(
        p.message.contains("same requirement as extra_packages[0]"),
        "{}",
        p.message
    );
    let p = problem(&format!(
        "{MINIMAL}extra_packages: [\"typing_extensions\", \"Typing.Extensions\"]\n"
    ));
    assert_eq!(p.field, "extra_packages[1]");
    // Two constraints on one project are not one requirement.
    parse(&format!(
        "{MINIMAL}extra_packages: [\"rich>=13\", \"rich<14\"]\n"
    ))
    .unwrap()
    .validate()
    .unwrap();

    let spec = parse(&format!(
        "{MINIMAL}extra_packages: [\"evil @ file:///etc/passwd\", \"rich\", \"x[a] @ https://u:t@h/x.whl ; python_version > '3'\"]\n"
    ))
    .unwrap();
    spec.validate().unwrap();
    let refused = spec.direct_references();
    let fields: Vec<&str> = refused.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["extra_packages[0]", "extra_packages[2]"]);
    assert!(refused[0].message.contains("--allow-direct-references"));
    assert!(
        !refused
            .iter()
            .any(|p| p.message.contains("passwd") || p.message.contains("u:t"))
    );
    assert!(!is_direct_reference(
        "rich; python_version > '3.8' and platform_machine == 'x@y'"
    ));
}

#[test]
fn packages_are_deb_and_rpm_each_once() {
    let spec = parse(&format!("{MINIMAL}packages: [rpm, deb]\n")).unwrap();
    spec.validate().unwrap();
    assert_eq!(spec.packages, [PackageFormat::Rpm, PackageFormat::Deb]);
    assert!(parse(MINIMAL).unwrap().packages.is_empty());
    let p = problem(&format!("{MINIMAL}packages: [deb, zip]\n"));
    assert_eq!(p.field, "packages[1]");
    assert!(
        p.message.contains("expected `deb` or `rpm`"),
        "{}",
        p.message
    );
    let p = problem(&format!("{MINIMAL}packages: [deb, deb]\n"));
    assert_eq!(p.field, "packages[1]");
    assert!(p.message.contains("listed twice"), "{}", p.message);
}

#[test]
fn build_names_a_flavour_and_distribution_packages_only() {
    let spec = parse(&format!(
        "{MINIMAL}build:\n  flavour: deb-bookworm\n  build_packages: [libffi-dev, gcc]\n  runtime_packages: [libffi8]\n"
    ))
    .unwrap();
    spec.validate().unwrap();
    let b = spec.build.as_ref().unwrap();
    assert_eq!(b.flavour.as_deref(), Some("deb-bookworm"));
    assert_eq!(b.build_packages, ["libffi-dev", "gcc"]);
    assert_eq!(b.runtime_packages, ["libffi8"]);
    // The resource's spelling is read too (what `convert` writes).
    let camel = parse(&format!("{MINIMAL}build:\n  buildPackages: [gcc]\n")).unwrap();
    assert_eq!(camel.build.unwrap().build_packages, ["gcc"]);

    for (yaml, field) in [
        (
            "build:\n  build_packages: [gcc, \"-y\"]\n",
            "build.build_packages[1]",
        ),
        (
            "build:\n  runtime_packages: [\"libc6; rm -rf /\"]\n",
            "build.runtime_packages[0]",
        ),
        (
            "build:\n  build_packages: [\"$(id)\"]\n",
            "build.build_packages[0]",
        ),
        (
            "build:\n  build_packages: [Gcc]\n",
            "build.build_packages[0]",
        ),
        ("build:\n  flavour: \"deb bookworm\"\n", "build.flavour"),
        (
            "build:\n  runtime_packages: [a1, a1]\n",
            "build.runtime_packages[1]",
        ),
    ] {
        let p = problem(&format!("{MINIMAL}{yaml}"));
        assert_eq!(p.field, field, "{yaml}: {}", p.message);
        for echoed in ["-y", "rm -rf", "$(id)", "Gcc", "deb bookworm"] {
            assert!(!p.message.contains(echoed), "{yaml}: echoes: {}", p.message);
        }
    }
    let many: Vec<String> = (0..65).map(|i| format!("p{i}")).collect();
    let p = problem(&format!(
        "{MINIMAL}build:\n  build_packages: [{}]\n",
        many.join(", ")
    ));
    assert_eq!(p.field, "build.build_packages");
    // An unknown field is not shown (a config may be a link to a file of secrets): the known
    // one closest to it is.
    let p = problem(&format!("{MINIMAL}build:\n  flavor: deb\n"));
    assert!(
        p.message.contains("did you mean `flavour`?") && !p.message.contains("`flavor`"),
        "{}",
        p.message
    );
}
