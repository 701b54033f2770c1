use super::*;

const TABLE: &str = r#"
flavours:
  deb:
    image: ghcr.io/acme/builder-bookworm:1
    install: [apt-get, install, -y, --no-install-recommends]
    family: deb
    buildPackages: [gcc, libc6-dev]
    runtimePackages: [libc6]
  rpm:
    install: [dnf, install, -y]
    family: rpm
    buildPackages: [gcc, glibc-devel]
    installPackages: true
"#;

fn build(flavour: Option<&str>, b: &[&str], r: &[&str]) -> BuildSpec {
    BuildSpec {
        flavour: flavour.map(str::to_owned),
        build_packages: b.iter().map(|s| s.to_string()).collect(),
        runtime_packages: r.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn a_table_resolves_with_the_packages_own_packages_after_the_flavours() {
    let t = Flavours::parse(TABLE).unwrap();
    let r = t
        .resolve(Some(&build(
            Some("deb"),
            &["libffi-dev", "gcc"],
            &["libffi8"],
        )))
        .unwrap();
    assert_eq!(r.build_packages, ["gcc", "libc6-dev", "libffi-dev"]);
    assert_eq!(r.runtime_packages, ["libc6", "libffi8"]);
    assert_eq!(r.depends(PackageFormat::Deb), ["libc6", "libffi8"]);
    assert!(
        r.depends(PackageFormat::Rpm).is_empty(),
        "Debian names are no RPM's dependencies"
    );
    assert!(!r.installs());
    assert_eq!(
        r.install_command(Some(Packager::Dpkg), &["libffi-dev".into()]),
        "apt-get install -y --no-install-recommends libffi-dev"
    );
    // No flavour: the package's own, for both formats, the host's usual install command.
    let r = t
        .resolve(Some(&build(None, &["libffi-devel"], &["libffi"])))
        .unwrap();
    assert_eq!(r.depends(PackageFormat::Deb), ["libffi"]);
    assert_eq!(r.depends(PackageFormat::Rpm), ["libffi"]);
    assert_eq!(
        r.install_command(Some(Packager::Rpm), &r.build_packages),
        "dnf install -y libffi-devel"
    );
    assert_eq!(t.resolve(None).unwrap(), Resolved::default());
    let rpm = t.resolve(Some(&build(Some("rpm"), &[], &[]))).unwrap();
    assert!(rpm.installs());
    assert!(!rpm.installed, "sync never takes them as installed");
    let mut job = t.clone();
    job.installed = true;
    assert!(
        job.resolve(Some(&build(Some("rpm"), &[], &[])))
            .unwrap()
            .installed
    );
    assert!(
        !job.resolve(Some(&build(Some("deb"), &[], &[])))
            .unwrap()
            .installed,
        "only a flavour that installs"
    );
    let e = t.resolve(Some(&build(Some("arch"), &[], &[]))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "build.flavour: the operator has no flavour arch: ask for it, or leave the field out to build without one"
    );
    // A Job is given its flavour alone, and reads it back the same.
    let one = t.only("deb");
    assert_eq!(one.flavours.len(), 1);
    let json = serde_json::to_string(&one).unwrap();
    assert_eq!(Flavours::parse(&json).unwrap(), one);
}

#[test]
fn a_bad_table_names_each_field_without_echoing_a_shell() {
    let e = Flavours::parse(
        "flavours:\n  Deb: {install: [apt-get], family: deb}\n  ok: {install: [], family: rpm, buildPackages: [gcc, \"-y; rm -rf /\"]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("name 1 (in sorted order) is not a flavour name"),
        "{e}"
    );
    assert!(!e.contains("Deb") && !e.contains("rm -rf"), "echoes: {e}");
    assert!(e.contains("ok.install: give the command as a list"), "{e}");
    assert!(e.contains("ok.buildPackages[1]"), "{e}");
    let e = Flavours::parse("flavours:\n  x: {install: [a], family: zip}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown variant `zip`"), "{e}");
    let e = Flavours::parse("flavours:\n  x: {install: [a], family: deb, imag: y}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `imag`"), "{e}");
    assert_eq!(Flavours::parse("").unwrap(), Flavours::default());
}

/// The real dpkg-query of this (Debian) machine: a package it has, and one nobody has.
#[tokio::test]
async fn the_host_check_names_what_is_missing_and_how_to_install_it() {
    assert_eq!(
        Packager::host(),
        Some(Packager::Dpkg),
        "this machine is Debian"
    );
    let timeout = Duration::from_secs(30);
    let present = build(None, &["libc6-dev", "dpkg"], &[]);
    let t = Flavours::default();
    check_host(&t.resolve(Some(&present)).unwrap(), timeout)
        .await
        .unwrap();
    let absent = build(
        None,
        &["libc6-dev", "hermit-pex-no-such-package", "zz-none"],
        &[],
    );
    let e = check_host(&t.resolve(Some(&absent)).unwrap(), timeout)
        .await
        .unwrap_err();
    assert!(matches!(e, FlavourError::Missing(_)));
    let e = e.to_string();
    assert!(
        e.starts_with(
            "build packages missing on this machine: hermit-pex-no-such-package, zz-none;"
        ),
        "{e}"
    );
    assert!(
        e.contains("install them with `apt-get install -y hermit-pex-no-such-package zz-none`"),
        "{e}"
    );
    assert!(!e.contains("libc6-dev,"), "only the missing ones: {e}");
    // A name that is not one never reaches dpkg-query.
    let e = missing(Packager::Dpkg, &["--help".into()], timeout)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not a distribution package name"),
        "{e}"
    );
    // Installed by an init container (a Job of a flavour that installs): not checked.
    let mut job = Flavours::parse(TABLE).unwrap();
    job.installed = true;
    let r = job
        .resolve(Some(&build(
            Some("rpm"),
            &["hermit-pex-no-such-package"],
            &[],
        )))
        .unwrap();
    check_host(&r, timeout).await.unwrap();
}
