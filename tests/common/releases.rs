//! Releases in the shapes the pipeline leaves them, made through a real store: a draft made for
//! a config, its lock recorded, platforms built (tarball, then record), as a build Job would.

use std::path::Path;

use hermit_pex::names::{BinaryName, PackageName, Platform};
use hermit_pex::release::info::{missing_asset, record_asset};
use hermit_pex::release::{
    BuildInfo, LockRecord, PlatformBuild, PlatformRecord, Release, ReleaseStore, Target,
    TestOutcome, Upload,
};
use pep440_rs::Version;

/// The build info a new draft of `version` starts with, for `spec`.
pub fn info_for(spec: &hermit_pex::spec::PackageSpec, version: &str) -> BuildInfo {
    let v: Version = version.parse().unwrap();
    let python = spec.python_for(&v).unwrap();
    let iv = hermit_pex::pypi::IndexVersion::new(v);
    hermit_pex::build::VersionJob::new(spec, &iv, python).info()
}

/// Uploads a file holding `content` as `name`; its size and sha256.
pub async fn put<S: ReleaseStore>(
    store: &S,
    release: &Release,
    dir: &Path,
    name: &str,
    content: &[u8],
) -> (u64, String) {
    let path = dir.join(format!("{}-{name}", release.id.0.replace('/', "_")));
    std::fs::write(&path, content).unwrap();
    let (size, sha256) = hermit_pex::digest::sha256_file(&path).unwrap();
    store
        .upload(
            release,
            Upload {
                name,
                path: &path,
                size,
                sha256: &sha256,
            },
        )
        .await
        .unwrap();
    (size, sha256)
}

/// Records a lock in the draft, as the lock step does; returns the release as it is now.
pub async fn lock<S: ReleaseStore>(
    store: &S,
    release: &Release,
    dir: &Path,
    pure: bool,
) -> Release {
    let mut info = release.info.clone().unwrap();
    let package = info.package.clone();
    let text = format!("lock-version = \"1.0\"\ncreated-by = \"{}\"\n", release.id);
    let name = format!("pylock.{package}.toml");
    let (size, sha256) = put(store, release, dir, &name, text.as_bytes()).await;
    info.locked = Some(LockRecord {
        format: Some(hermit_pex::lock::LockFormat::Pylock),
        sha256,
        size,
        pins: vec![format!("{package}=={}", info.version)],
        pure,
        binaries: vec![BinaryName::new(package.as_str()).unwrap()],
        test: format!("{package} --help"),
        wheel: None,
        ..Default::default()
    });
    store.record(release, &info).await.unwrap();
    store.release(&package, &release.id).await.unwrap()
}

/// Builds `platforms` into the draft as build Jobs do: the tarball, then its record.
pub async fn build<S: ReleaseStore>(
    store: &S,
    release: &Release,
    dir: &Path,
    platforms: &[Platform],
) {
    let package: PackageName = release.info.as_ref().unwrap().package.clone();
    for &p in platforms {
        let name = package.asset_name(p);
        let bytes = format!("{} {p}", release.tag);
        let (size, sha256) = put(store, release, dir, &name, bytes.as_bytes()).await;
        let record = PlatformRecord::Built(PlatformBuild {
            asset: name,
            size,
            sha256,
            target: Target::CompletePlatform,
            test: Some(match p == Platform::ALL[0] {
                true => TestOutcome::Passed {
                    command: format!("{package} --help"),
                },
                false => TestOutcome::NotTried {
                    why: "built elsewhere".into(),
                },
            }),
            lock: None,
            packages: Vec::new(),
            tarball: Default::default(),
        });
        let json = serde_json::to_vec(&record).unwrap();
        put(store, release, dir, &record_asset(&package, p), &json).await;
    }
}

/// Records that `platform` cannot exist for the draft's version, as a build Job does.
pub async fn cannot_exist<S: ReleaseStore>(
    store: &S,
    release: &Release,
    dir: &Path,
    platform: Platform,
    why: &str,
) {
    let package = release.info.as_ref().unwrap().package.clone();
    let record = PlatformRecord::Missing { reason: why.into() };
    let json = serde_json::to_vec(&record).unwrap();
    put(
        store,
        release,
        dir,
        &missing_asset(&package, platform),
        &json,
    )
    .await;
}
