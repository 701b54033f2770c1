//! An `.rpm` through the `rpm` crate (v4 format, no signature). Reproducible: the build time
//! and every file's mtime are the fixed [`MTIME`] (`source_date`), no build host is recorded,
//! files and links are added sorted. The payload is not compressed: the PEX inside holds its
//! wheels compressed already (gzip would gain ~2.5 %, and would switch the whole program's
//! gzip to another backend).

use std::path::{Path, PathBuf};

use super::{MTIME, OsPackageError, PREFIX, PackageInput, description, link_target, version};

/// Writes the package to `out`.
pub fn write(
    input: &PackageInput<'_>,
    files: &[(String, PathBuf)],
    out: &Path,
) -> Result<(), OsPackageError> {
    let (_, rpm_arch) = super::arch(input.platform)?;
    let err = |e: rpm::Error| OsPackageError::Rpm(e.to_string());
    let (epoch, v, release) = version::rpm(input.version);
    let license = input
        .license
        .filter(|l| !l.is_empty() && !l.chars().any(char::is_control))
        .map_or_else(
            // RPM needs a License; SPDX's word for "not said" where no page says it either.
            || {
                input
                    .homepage
                    .map_or("NOASSERTION".to_owned(), |h| format!("see {h}"))
            },
            str::to_owned,
        );
    let mut b = rpm::PackageBuilder::new(
        input.package.as_str(),
        &v,
        &license,
        rpm_arch,
        input.summary,
    );
    b.using_config(
        rpm::BuildConfig::v4()
            .compression(rpm::CompressionType::None)
            .source_date(u32::try_from(MTIME).expect("2020 fits")),
    )
    .release(release)
    .vendor("hermit-pex")
    .group("Development/Tools")
    .description(description(input));
    if let Some(h) = input.homepage {
        b.url(h);
    }
    if let Some(e) = epoch {
        b.epoch(u32::try_from(e).map_err(|_| {
            OsPackageError::Rpm(format!("the epoch {e} does not fit RPM's 32 bits"))
        })?);
    }
    b.requires(rpm::Dependency::eq("python(abi)", input.python.to_string()))
        // The launchers are /bin/sh scripts (rpmbuild would generate this requirement).
        .requires(rpm::Dependency::any("/bin/sh"));
    for d in input.depends {
        b.requires(rpm::Dependency::any(d.as_str()));
    }
    let dir = format!("{PREFIX}/{}", input.package);
    for d in [PREFIX, dir.as_str()] {
        b.with_dir_entry(
            rpm::FileOptions::dir(d)
                .user("root")
                .group("root")
                .permissions(0o755),
        )
        .map_err(err)?;
    }
    for (name, path) in files {
        b.with_file(
            path,
            rpm::FileOptions::new(format!("{dir}/{name}"))
                .user("root")
                .group("root")
                .permissions(0o755),
        )
        .map_err(err)?;
    }
    let mut binaries: Vec<&str> = input.binaries.iter().map(|b| b.as_str()).collect();
    binaries.sort_unstable();
    for bin in binaries {
        b.with_symlink(
            rpm::FileOptions::symlink(format!("/usr/bin/{bin}"), link_target(input.package, bin))
                .user("root")
                .group("root"),
        )
        .map_err(err)?;
    }
    let package = b.build().map_err(err)?;
    package.write_file(out).map_err(err)
}
