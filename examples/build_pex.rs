//! Builds one platform's PEX and tarball from a directory of wheels already chosen for it, the
//! way hermit-pex does (`hermit_pex::build::pex`), for the benchmarks in `scripts/`:
//!
//!   cargo run --example build_pex -- PACKAGE BINARY PYTHON PLATFORM WHEEL_DIR OUT_DIR REQUIREMENT...
//!
//! e.g. `black black 3.12 linux-amd64 wheels/linux-amd64 out black==26.10.1` writes
//! `out/black.pex` and `out/black-linux-amd64.tar.gz`. pex is `HERMIT_PEX_PEX` or the project's
//! `.tools/venv/bin/pex`; PEX_ROOT is `OUT_DIR/pex-root` unless `PEX_ROOT` is set.
use std::path::{Path, PathBuf};
use std::time::Duration;

use hermit_pex::build::BuildSettings;
use hermit_pex::build::pex::{PexSpec, build_pex};
use hermit_pex::names::{BinaryName, PackageName, Platform, PythonMinor};
use hermit_pex::tools::Pex;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        package,
        binary,
        python,
        platform,
        wheel_dir,
        out_dir,
        requirements @ ..,
    ] = args.as_slice()
    else {
        anyhow::bail!(
            "usage: build_pex PACKAGE BINARY PYTHON PLATFORM WHEEL_DIR OUT_DIR REQUIREMENT..."
        );
    };
    let package = PackageName::new(package)?;
    let binary = BinaryName::new(binary)?;
    let python: PythonMinor = python.parse()?;
    let platform: Platform = platform.parse()?;
    let out_dir = std::path::absolute(out_dir)?;
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(wheel_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    wheels.sort();
    let bin_dir = match std::env::var_os("HERMIT_PEX_PEX") {
        Some(p) => Path::new(&p).parent().unwrap_or(Path::new(".")).to_owned(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin"),
    };
    let settings = BuildSettings {
        pex: Pex {
            bin_dir: bin_dir.clone(),
        },
        uv: hermit_pex::lock::Uv {
            path: bin_dir.join("uv"),
        },
        native: BuildSettings::host_native(),
        indexes: hermit_pex::pypi::Indexes::plain("https://pypi.org/simple/".parse()?),
        cache_dir: out_dir.join("cache"),
        work_dir: out_dir.join("work"),
        pex_root: std::env::var_os("PEX_ROOT")
            .map_or_else(|| out_dir.join("pex-root"), PathBuf::from),
        timeout: Duration::from_secs(600),
        test_timeout: Duration::from_secs(60),
        flavours: Default::default(),
    };
    let spec = PexSpec {
        platform,
        python,
        requirements: requirements.to_vec(),
    };
    let pex = build_pex(
        &wheels,
        &spec,
        &out_dir.join(format!("{package}.pex")),
        &settings,
    )
    .await?;
    let tarball = out_dir.join(package.asset_name(platform));
    let (size, sha256) =
        hermit_pex::build::artifact::write_tarball(&tarball, &package, &pex, &[binary])?;
    println!("{} {size} {sha256}", tarball.display());
    Ok(())
}
