//! Planning cost at scale: 1,000 packages × 300 versions against an in-memory index, half of
//! the versions already released. Prints figures; run with `cargo bench --bench plan`.

use std::time::Instant;

mod common;
use common::cpu_time;

use hermit_pex::names::{PackageName, Platform};
use hermit_pex::plan::{PlanOptions, plan};
use hermit_pex::pypi::IndexVersion;
use hermit_pex::release::{Asset, Release, ReleaseId, ReleaseState};
use hermit_pex::spec;

const PACKAGES: usize = 1_000;
const VERSIONS: usize = 300;

fn main() {
    let inputs: Vec<_> = (0..PACKAGES).map(package).collect();
    let cpu = cpu_time();
    let wall = Instant::now();
    let mut builds = 0;
    let mut versions = 0;
    for (spec, index, releases) in &inputs {
        let p = plan(spec, index, releases, &[], &PlanOptions::default());
        builds += p.builds();
        versions += p.versions.len();
    }
    let wall = wall.elapsed();
    let cpu = cpu_time() - cpu;
    println!(
        "plan: {PACKAGES} packages x {VERSIONS} versions ({versions} desired, {builds} builds): {:.3} s CPU, {:.3} s wall, {:.2} us per package",
        cpu,
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1e6 / PACKAGES as f64
    );
}

fn package(i: usize) -> (spec::PackageSpec, Vec<IndexVersion>, Vec<Release>) {
    let name = format!("tool-{i}");
    let yaml = format!(
        "package: {name}\nbinaries: [{name}]\nversions:\n  - {{version: \"1.0.0\", python: \"3.11\"}}\n  - {{version: \"2.0.0\", python: \"3.12\"}}\nexclude: [\"1.5.3\"]\n"
    );
    let spec = spec::parse(&yaml).unwrap();
    let index: Vec<IndexVersion> = (0..VERSIONS)
        .map(|n| IndexVersion {
            git: None,
            version: format!("{}.{}.{}", n / 100, (n / 10) % 10, n % 10)
                .parse()
                .unwrap(),
            requires_python: Some(">=3.8".parse().unwrap()),
        })
        .collect();
    let package = PackageName::new(&name).unwrap();
    let releases = index
        .iter()
        .step_by(2)
        .map(|iv| Release {
            id: ReleaseId(package.tag(&iv.version)),
            tag: package.tag(&iv.version),
            version: iv.version.clone(),
            state: ReleaseState::Published,
            order: 0,
            assets: Platform::ALL
                .iter()
                .map(|p| Asset {
                    name: package.asset_name(*p),
                    size: 1,
                    sha256: Some("0".repeat(64)),
                    uploaded: true,
                })
                .collect(),
            info: None,
        })
        .collect();
    (spec, index, releases)
}
