//! Packages of a real PEX, checked and installed with the real tools: dpkg-deb and dpkg
//! (Debian's), rpm (Debian's `rpm` package: `apt-get install rpm`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::build::pex::tests::{py, settings, tiny_spec, tiny_wheels};

const LINUX_AMD64: Platform = Platform::new(Os::Linux, Arch::Amd64);

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (is the tool installed? see docs/src/development.md)")
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tiny-tool's PEX for linux-amd64 (python 3.12) in its tarball, as a build makes it.
pub(crate) async fn tiny_tarball(dir: &Path) -> (PathBuf, Vec<BinaryName>) {
    let settings = settings(dir);
    let wheels = tiny_wheels(&dir.join("wheels"), "py3-none-any");
    let pex = dir.join("pex/tiny-tool.pex");
    crate::build::pex::build_pex(&wheels, &tiny_spec(LINUX_AMD64, py(12)), &pex, &settings)
        .await
        .unwrap();
    let binaries = vec![
        BinaryName::new("tiny").unwrap(),
        BinaryName::new("tiny-admin").unwrap(),
    ];
    let tarball = dir.join("tiny-tool-linux-amd64.tar.gz");
    crate::build::artifact::write_tarball(
        &tarball,
        &PackageName::new("tiny-tool").unwrap(),
        &pex,
        &binaries,
    )
    .unwrap();
    (tarball, binaries)
}

/// Runs an installed command with python3.12 on PATH and a HOME of its own (the PEX unpacks
/// into ~/.cache/pex).
pub(crate) async fn run_installed(command: &Path, args: &[&str], home: &Path) -> String {
    let python = crate::tools::find_python(py(12))
        .await
        .expect("a CPython 3.12 on this machine (pyenv or PATH)");
    let path = format!(
        "{}:{}",
        python.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new(command)
        .args(args)
        .env("PATH", path)
        .env("HOME", home)
        .env_remove("PEX_ROOT"))
}

fn input<'a>(
    package: &'a PackageName,
    version: &'a Version,
    tarball: &'a Path,
    binaries: &'a [BinaryName],
    depends: &'a [String],
) -> PackageInput<'a> {
    PackageInput {
        package,
        version,
        platform: LINUX_AMD64,
        python: py(12),
        tarball,
        binaries,
        summary: "a tiny test tool",
        depends,
        license: Some("MIT"),
        origin: "PyPI",
        homepage: Some("https://pypi.org/project/tiny-tool/"),
    }
}

/// dpkg's database in an empty root, so `dpkg --root` installs there.
fn dpkg_root(root: &Path) {
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
}

#[tokio::test]
async fn deb_and_rpm_are_verified_installed_and_run_and_rebuilt_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (tarball, binaries) = tiny_tarball(dir.path()).await;
    let package = PackageName::new("tiny-tool").unwrap();
    let version: Version = "1.0rc1".parse().unwrap();
    let depends = vec!["libffi8".to_owned(), "ca-certificates".to_owned()];
    let out = dir.path().join("out");
    let built = build_blocking(
        &[Format::Rpm, Format::Deb, Format::Rpm],
        &input(&package, &version, &tarball, &binaries, &depends),
        &out,
    )
    .unwrap();
    let names: Vec<&str> = built.iter().map(|b| b.asset.as_str()).collect();
    assert_eq!(
        names,
        ["tiny-tool-linux-amd64.deb", "tiny-tool-linux-amd64.rpm"]
    );
    for b in &built {
        let bytes = std::fs::read(&b.path).unwrap();
        assert_eq!(
            (b.size, b.sha256.clone()),
            (bytes.len() as u64, crate::digest::sha256_hex(&bytes))
        );
    }
    let (deb, rpm) = (&built[0].path, &built[1].path);

    // The .deb, as dpkg-deb reads it.
    let info = run(Command::new("dpkg-deb").arg("--info").arg(deb));
    for want in [
        "Package: tiny-tool",
        "Version: 1.0~rc1",
        "Architecture: amd64",
        "Depends: python3.12, libffi8, ca-certificates",
        "Description: a tiny test tool",
        "Homepage: https://pypi.org/project/tiny-tool/",
        "tiny-tool 1.0rc1 from PyPI as a PEX",
    ] {
        assert!(info.contains(want), "{want:?} not in\n{info}");
    }
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    for want in [
        "-rwxr-xr-x root/root",
        " opt/hermit-pex/tiny-tool/tiny-tool.pex",
        " opt/hermit-pex/tiny-tool/tiny-admin",
        " usr/bin/tiny -> ../../opt/hermit-pex/tiny-tool/tiny",
        " usr/bin/tiny-admin -> ../../opt/hermit-pex/tiny-tool/tiny-admin",
        "2020-01-01",
    ] {
        assert!(contents.contains(want), "{want:?} not in\n{contents}");
    }
    // Installed by dpkg into a root of its own (python3.12 is not in that root's database),
    // then the command runs through its /usr/bin link.
    let root = dir.path().join("deb-root");
    dpkg_root(&root);
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-depends", "--force-script-chrootless", "-i"])
        .arg(deb));
    let status = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Package} ${Version} ${Status}", "tiny-tool"]));
    assert_eq!(status, "tiny-tool 1.0~rc1 install ok installed");
    let home = dir.path().join("home");
    let said = run_installed(&root.join("usr/bin/tiny"), &["--help"], &home).await;
    assert_eq!(said.trim(), "tiny-tool 1.0 --help");

    // The .rpm, as rpm reads it.
    let info = run(Command::new("rpm").arg("-qip").arg(rpm));
    for want in [
        "Name        : tiny-tool",
        "Version     : 1.0~rc1",
        "Release     : 1",
        "Architecture: x86_64",
        "License     : MIT",
        "Summary     : a tiny test tool",
        "URL         : https://pypi.org/project/tiny-tool/",
    ] {
        assert!(info.contains(want), "{want:?} not in\n{info}");
    }
    let requires = run(Command::new("rpm").arg("-qp").arg("--requires").arg(rpm));
    for want in [
        "python(abi) = 3.12",
        "libffi8",
        "ca-certificates",
        "/bin/sh",
    ] {
        assert!(
            requires.lines().any(|l| l.trim() == want),
            "{want:?} not in\n{requires}"
        );
    }
    let files = run(Command::new("rpm").arg("-qlp").arg(rpm));
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        [
            "/opt/hermit-pex",
            "/opt/hermit-pex/tiny-tool",
            "/opt/hermit-pex/tiny-tool/tiny",
            "/opt/hermit-pex/tiny-tool/tiny-admin",
            "/opt/hermit-pex/tiny-tool/tiny-tool.pex",
            "/usr/bin/tiny",
            "/usr/bin/tiny-admin",
        ]
    );
    let root = dir.path().join("rpm-root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("rpm").arg("--root").arg(&root).arg("--initdb"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["-i", "--nodeps"])
        .arg(rpm));
    let q = run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["-q", "tiny-tool"]));
    assert_eq!(q.trim(), "tiny-tool-1.0~rc1-1.x86_64");
    let said = run_installed(&root.join("usr/bin/tiny-admin"), &["x"], &home).await;
    assert_eq!(said.trim(), "tiny-tool 1.0 x");

    // Made again a second later, elsewhere: the same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = build_blocking(
        &[Format::Deb, Format::Rpm],
        &input(&package, &version, &tarball, &binaries, &depends),
        &dir.path().join("again"),
    )
    .unwrap();
    for (a, b) in built.iter().zip(&again) {
        assert_eq!(a.sha256, b.sha256, "{} is not reproducible", a.asset);
        assert_eq!(
            std::fs::read(&a.path).unwrap(),
            std::fs::read(&b.path).unwrap()
        );
    }
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "scratch files left behind: {left:?}");
}

/// A project from a Git repository without a web page (`file://`, `ssh://`) is not PyPI's:
/// no page is named, and RPM's License says so in SPDX's word when the package declares none.
#[tokio::test]
async fn a_git_project_without_a_web_page_names_no_page() {
    let dir = tempfile::tempdir().unwrap();
    let (tarball, binaries) = tiny_tarball(dir.path()).await;
    let package = PackageName::new("tiny-tool").unwrap();
    let version: Version = "1.0".parse().unwrap();
    let input = PackageInput {
        license: None,
        origin: "its Git repository",
        homepage: None,
        ..input(&package, &version, &tarball, &binaries, &[])
    };
    let out = dir.path().join("out");
    let built = build_blocking(&[Format::Deb, Format::Rpm], &input, &out).unwrap();
    let deb = run(Command::new("dpkg-deb").arg("--info").arg(&built[0].path));
    assert!(
        !deb.contains("Homepage") && !deb.contains("pypi.org"),
        "{deb}"
    );
    assert!(
        deb.contains("tiny-tool 1.0 from its Git repository as a PEX"),
        "{deb}"
    );
    let rpm = run(Command::new("rpm").arg("-qip").arg(&built[1].path));
    assert!(rpm.contains("License     : NOASSERTION"), "{rpm}");
    assert!(!rpm.contains("pypi.org"), "{rpm}");
}

/// RPM's License is what the tool's own wheel in the PEX declares, when the caller names none.
#[tokio::test]
async fn the_license_is_read_from_the_tools_wheel_in_the_pex() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::build::pex::tests::settings(dir.path());
    let wheels = vec![crate::build::pex::tests::make_wheel(
        &dir.path().join("wheels"),
        "tiny-tool",
        "1.0",
        &[
            "--script",
            "tiny",
            "--license-expression",
            "MIT OR Apache-2.0",
        ],
    )];
    let pex = dir.path().join("pex/tiny-tool.pex");
    crate::build::pex::build_pex(&wheels, &tiny_spec(LINUX_AMD64, py(12)), &pex, &settings)
        .await
        .unwrap();
    let package = PackageName::new("tiny-tool").unwrap();
    let binaries = vec![BinaryName::new("tiny").unwrap()];
    let tarball = dir.path().join("tiny-tool-linux-amd64.tar.gz");
    crate::build::artifact::write_tarball(&tarball, &package, &pex, &binaries).unwrap();
    let version: Version = "1.0".parse().unwrap();
    let declared = PackageInput {
        license: None,
        ..input(&package, &version, &tarball, &binaries, &[])
    };
    let built = build_blocking(&[Format::Rpm], &declared, &dir.path().join("out")).unwrap();
    let rpm = run(Command::new("rpm").arg("-qip").arg(&built[0].path));
    assert!(rpm.contains("License     : MIT OR Apache-2.0"), "{rpm}");

    // tiny_tarball's wheel declares none: the homepage stands in.
    let (tarball, binaries) = tiny_tarball(&dir.path().join("plain")).await;
    let plain = PackageInput {
        license: None,
        ..input(&package, &version, &tarball, &binaries, &[])
    };
    let built = build_blocking(&[Format::Rpm], &plain, &dir.path().join("out2")).unwrap();
    let rpm = run(Command::new("rpm").arg("-qip").arg(&built[0].path));
    assert!(
        rpm.contains("License     : see https://pypi.org/project/tiny-tool/"),
        "{rpm}"
    );
}

#[tokio::test]
async fn bad_inputs_are_refused_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let package = PackageName::new("tiny-tool").unwrap();
    let version: Version = "1.0".parse().unwrap();
    let binaries = vec![BinaryName::new("tiny").unwrap()];
    // A tarball holding something else than the PEX and the launchers.
    let tarball = dir.path().join("t.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tarball).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for name in ["tiny-tool.pex", "tiny", "../../etc/passwd"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o755);
            h.set_cksum();
            tar.append_data(&mut h, name, &b"hi"[..])
                .unwrap_or_else(|_| {
                    // tar refuses to write `..`: write the name by hand.
                    let mut h = tar::Header::new_old();
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_size(2);
                    h.set_mode(0o755);
                    h.set_cksum();
                    tar.append(&h, &b"hi"[..]).unwrap();
                });
        }
        tar.into_inner().unwrap().finish().unwrap();
    }
    let err = build_blocking(
        &[Format::Deb],
        &input(&package, &version, &tarball, &binaries, &[]),
        &dir.path().join("o"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("a tarball holds only tiny-tool.pex"), "{err}");
    assert!(!dir.path().join("etc/passwd").exists());

    let depends = vec!["libc6".to_owned(), "-y; rm -rf /".to_owned()];
    let err = build_blocking(
        &[Format::Deb],
        &input(&package, &version, &tarball, &binaries, &depends),
        &dir.path().join("o"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("runtime_packages[1] is not a distribution package name"),
        "{err}"
    );
    assert!(!err.contains("rm -rf"), "echoes the entry: {err}");

    let mut darwin = input(&package, &version, &tarball, &binaries, &[]);
    darwin.platform = Platform::new(Os::Darwin, Arch::Arm64);
    let err = build_blocking(&[Format::Rpm], &darwin, &dir.path().join("o"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("linux platforms only"), "{err}");
}
