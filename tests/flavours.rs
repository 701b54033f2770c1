//! Build flavours, .deb/.rpm packages and the SBOM through `hermit-pex sync`, end to end with
//! the real pex, uv, dpkg and rpm against a pypiserver on loopback holding packages built here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::sandbox::*;
use common::*;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs an installed command as a user would: python3.12 on PATH, a home of its own.
fn run_installed(command: &Path, args: &[&str], home: &Path) -> String {
    let path = format!("{}:/usr/bin:/bin", python312_dir().display());
    run(Command::new(command)
        .args(args)
        .env("PATH", path)
        .env("HOME", home)
        .env_remove("PEX_ROOT"))
}

/// The file's sha256 and size are what the build info says.
fn assert_recorded(file: &Path, record: &serde_json::Value) {
    let (size, sha256) = hermit_pex::digest::sha256_file(file).unwrap();
    assert_eq!(record["sha256"], sha256, "{}: {record}", file.display());
    assert_eq!(record["size"], size, "{}: {record}", file.display());
}

/// The official CycloneDX 1.6 schema (scripts/test-tools.sh installs it).
fn assert_cyclonedx(doc: &serde_json::Value) {
    let dir = std::env::var_os("HERMIT_PEX_TEST_CYCLONEDX")
        .map_or_else(|| repo_root().join(".tools/cyclonedx"), PathBuf::from);
    let read = |name: &str| read_json(&dir.join(name));
    let v = jsonschema::options()
        .with_resource(
            "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json",
            jsonschema::Resource::from_contents(read("spdx.SNAPSHOT.schema.json")),
        )
        .with_resource(
            "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json",
            jsonschema::Resource::from_contents(read("jsf-0.82.SNAPSHOT.schema.json")),
        )
        .build(&read("bom-1.6.SNAPSHOT.schema.json"))
        .unwrap();
    let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

const TINY_FLAGS: &[&str] = &["--script", "tiny-tool", "--script", "tiny-admin"];

/// Acceptance: `sync` of a config with `packages: [deb, rpm]` makes both for linux-amd64 (and
/// linux-arm64, none for darwin), records them in the build info, and the command installed
/// from each runs. The release carries the SBOM too, valid CycloneDX 1.6, listing the lock.
#[test]
fn sync_with_packages_makes_a_deb_and_an_rpm_whose_installed_command_runs() {
    let config = "package: tiny-tool\nbinaries: [tiny-tool, tiny-admin]\nversions:\n  - version: \"1.0rc1\"\n    python: \"3.12\"\nprereleases: true\npackages: [deb, rpm]\nbuild:\n  runtime_packages: [ca-certificates]\n";
    let s = Sandbox::new(
        &[("tiny-tool", config)],
        &[
            (
                "tiny-tool",
                "1.0rc1",
                &[
                    "--script",
                    "tiny-tool",
                    "--script",
                    "tiny-admin",
                    "--requires",
                    "tiny-dep",
                ],
            ),
            ("tiny-dep", "0.5", &["--no-scripts"]),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    let tag = "tiny-tool-v1.0rc1";
    let dir = s.release_dir(tag);
    let info = s.build_info(tag);
    assert_eq!(read_json(&dir.join("release.json"))["state"], "published");
    for platform in ["linux-amd64", "linux-arm64"] {
        let packages = info["platforms"][platform]["packages"].as_array().unwrap();
        let assets: Vec<&str> = packages
            .iter()
            .map(|p| p["asset"].as_str().unwrap())
            .collect();
        assert_eq!(
            assets,
            [
                format!("tiny-tool-{platform}.deb"),
                format!("tiny-tool-{platform}.rpm")
            ],
            "{info}"
        );
        for p in packages {
            assert_recorded(&dir.join(p["asset"].as_str().unwrap()), p);
            assert_eq!(p["depends"], serde_json::json!(["ca-certificates"]));
        }
    }
    for platform in ["darwin-amd64", "darwin-arm64"] {
        assert!(
            info["platforms"][platform].get("packages").is_none(),
            "{info}"
        );
        assert!(!dir.join(format!("tiny-tool-{platform}.deb")).exists());
    }
    assert!(
        stderr.contains("tiny-tool 1.0rc1 linux-amd64: made tiny-tool-linux-amd64.deb"),
        "{stderr}"
    );

    // The .deb: dpkg reads it, installs it into a root of its own, and the command runs.
    let deb = dir.join("tiny-tool-linux-amd64.deb");
    let fields = run(Command::new("dpkg-deb")
        .args([
            "--show",
            "--showformat=${Package} ${Version} ${Architecture} ${Depends}",
        ])
        .arg(&deb));
    assert_eq!(
        fields,
        "tiny-tool 1.0~rc1 amd64 python3.12, ca-certificates"
    );
    let root = s.path().join("deb-root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-depends", "--force-script-chrootless", "-i"])
        .arg(&deb));
    let home = s.path().join("home");
    assert_eq!(
        run_installed(&root.join("usr/bin/tiny-admin"), &["hello"], &home),
        "tiny-tool 1.0rc1 hello\n"
    );

    // The .rpm: rpm reads it, installs it into a root of its own, and the command runs.
    let rpm = dir.join("tiny-tool-linux-amd64.rpm");
    let q = run(Command::new("rpm")
        .args([
            "-qp",
            "--queryformat",
            "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}",
        ])
        .arg(&rpm));
    assert_eq!(q, "tiny-tool 1.0~rc1-1 x86_64");
    let requires = run(Command::new("rpm").args(["-qp", "--requires"]).arg(&rpm));
    assert!(
        requires.lines().any(|l| l == "python(abi) = 3.12"),
        "{requires}"
    );
    assert!(
        requires.lines().any(|l| l == "ca-certificates"),
        "{requires}"
    );
    let root = s.path().join("rpm-root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("rpm").arg("--root").arg(&root).arg("--initdb"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["-i", "--nodeps"])
        .arg(&rpm));
    assert_eq!(
        run_installed(&root.join("usr/bin/tiny-tool"), &[], &home),
        "tiny-tool 1.0rc1\n"
    );

    // The SBOM: uploaded with the lock, recorded, valid, listing exactly the lock's
    // distributions.
    let sbom_path = dir.join("tiny-tool.cdx.json");
    assert_recorded(&sbom_path, &info["locked"]["sbom"]);
    assert_eq!(info["locked"]["sbom"]["asset"], "tiny-tool.cdx.json");
    let sbom = read_json(&sbom_path);
    assert_cyclonedx(&sbom);
    let mut listed: Vec<String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:pypi/"))
        })
        .map(|c| {
            format!(
                "{}=={}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    listed.sort();
    let pins: Vec<String> = info["locked"]["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, pins);
    assert_eq!(pins, ["tiny-dep==0.5", "tiny-tool==1.0rc1"]);
}

const NEEDS_HEADERS: &str = "package: {package}\nbinaries: [{package}]\nplatforms: [linux-amd64]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\nbuild:\n  build_packages: [{packages}]\n";

/// A tool whose dependency has only an sdist with a C extension: built here (linux-amd64 is
/// this machine's own platform) when its build packages are present; failing the version,
/// naming the missing one and the command that installs it, when one is not.
#[test]
fn an_sdist_with_a_c_extension_builds_here_only_with_its_build_packages() {
    let config = NEEDS_HEADERS
        .replace("{package}", "needs-headers")
        .replace("{packages}", "libc6-dev, gcc");
    let s = Sandbox::new(
        &[("needs-headers", &config)],
        &[
            ("headers-dep", "1.0", &["--sdist-only", "--c-extension"]),
            ("needs-headers", "1.0", &["--requires", "headers-dep"]),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    let tag = "needs-headers-v1.0";
    let info = s.build_info(tag);
    assert_eq!(
        info["inputs"]["build"]["buildPackages"],
        serde_json::json!(["libc6-dev", "gcc"]),
        "{info}"
    );
    assert_eq!(info["locked"]["pure"], false, "{info}");
    let files = info["locked"]["platforms"]["linux-amd64"]["files"]
        .as_array()
        .unwrap();
    assert!(
        files.iter().any(|f| f["name"] == "headers_dep-1.0.tar.gz"),
        "the sdist was chosen and built here: {info}"
    );
    // The SBOM names the sdist as what linux-amd64 installs.
    let sbom = read_json(&s.release_dir(tag).join("needs-headers.cdx.json"));
    let dep = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "headers-dep")
        .unwrap();
    assert_eq!(dep["externalReferences"][0]["type"], "source-distribution");

    // One build package this machine does not have: the version fails, naming it and the
    // command that installs it; sync installs nothing.
    let config = NEEDS_HEADERS
        .replace("{package}", "needs-more")
        .replace("{packages}", "libc6-dev, hermit-pex-no-such-dev");
    let s = Sandbox::new(
        &[("needs-more", &config)],
        &[
            ("more-dep", "1.0", &["--sdist-only", "--c-extension"]),
            ("needs-more", "1.0", &["--requires", "more-dep"]),
        ],
    );
    let (code, _, stderr) = s.sync(&[]);
    assert_eq!(code, 1, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("needs-more 1.0: FAILED (MissingBuildPackages)"))
        .unwrap_or_else(|| panic!("not reported:\n{stderr}"));
    assert!(
        line.contains("build packages missing on this machine: hermit-pex-no-such-dev;"),
        "{line}"
    );
    assert!(
        line.contains("`apt-get install -y hermit-pex-no-such-dev`"),
        "{line}"
    );
    assert!(!line.contains("libc6-dev,"), "only the missing one: {line}");
    let release = read_json(&s.release_dir("needs-more-v1.0").join("release.json"));
    assert_eq!(release["state"], "draft", "nothing published");
}

/// A config naming a flavour the table lacks is refused before anything is built; one the
/// table has takes its base packages.
#[test]
fn flavours_come_from_the_operators_table() {
    let config = |flavour: &str| {
        format!(
            "package: tiny-tool\nbinaries: [tiny-tool]\nplatforms: [linux-amd64]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\nbuild:\n  flavour: {flavour}\n"
        )
    };
    let s = Sandbox::new(
        &[("tiny-tool", &config("gentoo"))],
        &[("tiny-tool", "1.0", TINY_FLAGS)],
    );
    let table = s.path().join("flavours.yaml");
    write(
        &table,
        "flavours:\n  deb:\n    install: [apt-get, install, -y]\n    family: deb\n    buildPackages: [libc6-dev]\n",
    );
    let (code, _, stderr) = s.sync(&["--flavours", table.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("build.flavour: the operator has no flavour gentoo"),
        "{stderr}"
    );
    assert!(!s.release_dir("tiny-tool-v1.0").exists(), "nothing made");
    // A bad table stops sync before anything, naming the field.
    write(
        &table,
        "flavours:\n  deb:\n    install: []\n    family: deb\n",
    );
    let (code, _, stderr) = s.sync(&["--flavours", table.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("deb.install: give the command as a list"),
        "{stderr}"
    );
}

/// The book's flavour table is one the CLI and the controller read.
#[test]
fn the_docs_flavour_table_parses() {
    let block = common::docs::blocks_in("yaml")
        .into_iter()
        .find(|b| b.marker().is_some_and(|m| m.starts_with("flavours.yaml")))
        .expect("docs: a flavours block");
    let t = hermit_pex::flavour::Flavours::parse(&block.text).unwrap();
    assert_eq!(t.flavours["deb"].build_packages, ["gcc", "libc6-dev"]);
}
