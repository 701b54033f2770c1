//! Releases in a directory: `<root>/<tag>/<asset>`, `<root>/<tag>/release.json` (state and
//! digests) and `build-info.json`. Files land by rename, and an asset counts only once
//! `release.json` records its digest, so a killed run never leaves an asset that looks complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{Asset, Release, ReleaseMeta, ReleaseState, ReleaseStore, StoreError, Upload};
use crate::build::BuildInfo;
use crate::names::{PackageName, PythonMinor};

pub struct DirStore {
    root: PathBuf,
    /// Where Hermit downloads from; default `file://<root>`.
    base_url: Option<String>,
    /// Serialises read-modify-write of the JSON files between concurrent builds.
    write: Mutex<()>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReleaseFile {
    version: Version,
    state: ReleaseState,
    python: Option<PythonMinor>,
    config_version: Option<u32>,
    /// Asset name → (size, sha256): written after the asset's file is in place.
    assets: BTreeMap<String, (u64, String)>,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>, base_url: Option<String>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        Ok(Self {
            root,
            base_url: base_url.map(|u| u.trim_end_matches('/').to_owned()),
            write: Mutex::new(()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn asset_path(&self, package: &PackageName, version: &Version, asset: &str) -> PathBuf {
        self.root.join(package.tag(version)).join(asset)
    }

    fn release_file(&self, tag: &str) -> PathBuf {
        self.root.join(tag).join("release.json")
    }

    fn read(&self, tag: &str) -> Result<Option<ReleaseFile>, StoreError> {
        let path = self.release_file(tag);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Io {
                    context: path.display().to_string(),
                    source: std::io::Error::other(e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(value).expect("release files serialise");
        atomic_write(path, |f| std::io::Write::write_all(f, &bytes))
    }

    /// What one release directory holds. Files without a recorded digest, or whose size
    /// changed, are reported without one: the planner replaces them.
    fn observe(&self, tag: &str, file: ReleaseFile) -> Release {
        let dir = self.root.join(tag);
        let mut assets: Vec<Asset> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let meta = e.metadata().ok()?;
                (meta.is_file() && name.ends_with(".tar.gz") && !name.starts_with('.'))
                    .then_some((name, meta.len()))
            })
            .map(|(name, size)| {
                let sha256 = file
                    .assets
                    .get(&name)
                    .filter(|(s, _)| *s == size)
                    .map(|(_, d)| d.clone());
                Asset { name, size, sha256 }
            })
            .collect();
        assets.sort_by(|a, b| a.name.cmp(&b.name));
        Release {
            version: file.version,
            state: file.state,
            assets,
            python: file.python,
            config_version: file.config_version,
        }
    }
}

impl ReleaseStore for DirStore {
    async fn releases(&self, package: &PackageName) -> Result<Vec<Release>, StoreError> {
        let prefix = format!("{package}-v");
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) => return Err(io(&self.root, e)),
        };
        let mut releases = Vec::new();
        for entry in entries.flatten() {
            let tag = entry.file_name().to_string_lossy().into_owned();
            // `<package>-v<version>`: the version must parse, so `foo-v1` never matches `foo-bar`.
            let Some(version) = tag
                .strip_prefix(&prefix)
                .and_then(|v| v.parse::<Version>().ok())
            else {
                continue;
            };
            if let Some(file) = self.read(&tag)?
                && file.version == version
            {
                releases.push(self.observe(&tag, file));
            }
        }
        releases.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(releases)
    }

    async fn create(
        &self,
        package: &PackageName,
        version: &Version,
        meta: &ReleaseMeta,
    ) -> Result<(), StoreError> {
        let _guard = self.write.lock().await;
        let tag = package.tag(version);
        let dir = self.root.join(&tag);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let file = match self.read(&tag)? {
            // A draft re-created with new settings forgets its stale assets' digests.
            Some(f) if f.state == ReleaseState::Draft => ReleaseFile {
                python: Some(meta.python),
                config_version: meta.config_version,
                assets: if f.python == Some(meta.python) && f.config_version == meta.config_version
                {
                    f.assets
                } else {
                    BTreeMap::new()
                },
                ..f
            },
            Some(published) => published,
            None => ReleaseFile {
                version: version.clone(),
                state: ReleaseState::Draft,
                python: Some(meta.python),
                config_version: meta.config_version,
                assets: BTreeMap::new(),
            },
        };
        self.write_json(&self.release_file(&tag), &file)
    }

    async fn upload(
        &self,
        package: &PackageName,
        version: &Version,
        up: Upload<'_>,
    ) -> Result<(), StoreError> {
        let tag = package.tag(version);
        let target = self.root.join(&tag).join(up.name);
        {
            let _guard = self.write.lock().await;
            let file = self
                .read(&tag)?
                .ok_or_else(|| StoreError::NoRelease { tag: tag.clone() })?;
            let complete = file.assets.contains_key(up.name) && target.exists();
            if file.state == ReleaseState::Published && complete {
                return Err(StoreError::Immutable {
                    tag,
                    asset: up.name.to_owned(),
                });
            }
        }
        // Copy outside the lock (assets can be large), then verify what landed.
        atomic_write(&target, |f| {
            let mut src = std::fs::File::open(up.path)?;
            std::io::copy(&mut src, f).map(|_| ())
        })?;
        let (size, actual) =
            crate::build::artifact::sha256_file(&target).map_err(|e| io(&target, e))?;
        if actual != up.sha256 || size != up.size {
            let _ = std::fs::remove_file(&target);
            return Err(StoreError::Corrupt {
                tag,
                asset: up.name.to_owned(),
                expected: up.sha256.to_owned(),
                actual,
            });
        }
        let _guard = self.write.lock().await;
        let mut file = self
            .read(&tag)?
            .ok_or_else(|| StoreError::NoRelease { tag: tag.clone() })?;
        file.assets.insert(up.name.to_owned(), (size, actual));
        self.write_json(&self.release_file(&tag), &file)
    }

    async fn put_build_info(&self, info: &BuildInfo) -> Result<(), StoreError> {
        let _guard = self.write.lock().await;
        let path = self
            .root
            .join(info.package.tag(&info.version))
            .join("build-info.json");
        let mut merged = info.clone();
        // Platforms built earlier with the same settings stay recorded.
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(old) = serde_json::from_slice::<BuildInfo>(&bytes)
            && old.python == info.python
            && old.config_version == info.config_version
        {
            for (p, b) in old.platforms {
                merged.platforms.entry(p).or_insert(b);
            }
        }
        self.write_json(&path, &merged)
    }

    async fn publish(&self, package: &PackageName, version: &Version) -> Result<(), StoreError> {
        let _guard = self.write.lock().await;
        let tag = package.tag(version);
        let mut file = self
            .read(&tag)?
            .ok_or(StoreError::NoRelease { tag: tag.clone() })?;
        if file.state != ReleaseState::Published {
            file.state = ReleaseState::Published;
            self.write_json(&self.release_file(&tag), &file)?;
        }
        Ok(())
    }

    async fn fetch(
        &self,
        package: &PackageName,
        version: &Version,
        asset: &str,
        _into: &Path,
    ) -> Result<PathBuf, StoreError> {
        let path = self.asset_path(package, version, asset);
        if path.is_file() {
            Ok(path)
        } else {
            Err(io(&path, std::io::ErrorKind::NotFound.into()))
        }
    }

    fn source_template(&self, package: &PackageName) -> String {
        let base = self
            .base_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.root.display()));
        format!("{base}/{package}-v${{version}}/{package}-${{os}}-${{arch}}.tar.gz")
    }
}

/// Writes `path` through a temporary file in the same directory and a rename.
pub(crate) fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = path.parent().expect("files live in a directory");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| io(dir, e))?;
    write(tmp.as_file_mut())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| io(path, e))?;
    tmp.persist(path).map_err(|e| io(path, e.error))?;
    Ok(())
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        context: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Platform;

    fn setup() -> (
        tempfile::TempDir,
        DirStore,
        PackageName,
        Version,
        ReleaseMeta,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("releases"), None).unwrap();
        let meta = ReleaseMeta {
            python: PythonMinor::new(12).unwrap(),
            config_version: None,
        };
        (
            dir,
            store,
            PackageName::new("tiny-tool").unwrap(),
            "2.0".parse().unwrap(),
            meta,
        )
    }

    fn file(dir: &Path, bytes: &[u8]) -> (PathBuf, u64, String) {
        let p = dir.join("built.tar.gz");
        std::fs::write(&p, bytes).unwrap();
        let (size, sha) = crate::build::artifact::sha256_file(&p).unwrap();
        (p, size, sha)
    }

    #[tokio::test]
    async fn a_release_goes_from_draft_to_published_with_digests() {
        let (dir, store, pkg, v, meta) = setup();
        store.create(&pkg, &v, &meta).await.unwrap();
        let name = pkg.asset_name(Platform::ALL[0]);
        let (path, size, sha) = file(dir.path(), b"tarball");
        store
            .upload(
                &pkg,
                &v,
                Upload {
                    name: &name,
                    path: &path,
                    size,
                    sha256: &sha,
                },
            )
            .await
            .unwrap();
        let r = &store.releases(&pkg).await.unwrap()[0];
        assert_eq!(r.state, ReleaseState::Draft);
        assert!(r.has_complete(&pkg, Platform::ALL[0]));
        assert_eq!(r.python, Some(meta.python));
        store.publish(&pkg, &v).await.unwrap();
        assert_eq!(
            store.releases(&pkg).await.unwrap()[0].state,
            ReleaseState::Published
        );

        // Published and complete: never replaced.
        let (path, size, sha) = file(dir.path(), b"other bytes");
        let err = store
            .upload(
                &pkg,
                &v,
                Upload {
                    name: &name,
                    path: &path,
                    size,
                    sha256: &sha,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Immutable { .. }), "{err}");
        assert_eq!(
            std::fs::read(store.asset_path(&pkg, &v, &name)).unwrap(),
            b"tarball"
        );
    }

    #[tokio::test]
    async fn an_asset_without_a_recorded_digest_is_incomplete() {
        let (_dir, store, pkg, v, meta) = setup();
        store.create(&pkg, &v, &meta).await.unwrap();
        // As if a run was killed after the file landed but before release.json recorded it.
        let name = pkg.asset_name(Platform::ALL[1]);
        std::fs::write(store.asset_path(&pkg, &v, &name), b"half").unwrap();
        std::fs::write(store.asset_path(&pkg, &v, ".tmp-abc"), b"partial copy").unwrap();
        let r = &store.releases(&pkg).await.unwrap()[0];
        assert_eq!(r.assets.len(), 1);
        assert!(!r.assets[0].is_complete());
    }

    #[tokio::test]
    async fn a_wrong_digest_is_refused_and_leaves_nothing() {
        let (dir, store, pkg, v, meta) = setup();
        store.create(&pkg, &v, &meta).await.unwrap();
        let name = pkg.asset_name(Platform::ALL[0]);
        let (path, size, _) = file(dir.path(), b"tarball");
        let bad = "0".repeat(64);
        let err = store
            .upload(
                &pkg,
                &v,
                Upload {
                    name: &name,
                    path: &path,
                    size,
                    sha256: &bad,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        assert!(store.releases(&pkg).await.unwrap()[0].assets.is_empty());
    }

    #[tokio::test]
    async fn other_packages_and_stray_directories_are_not_releases() {
        let (_dir, store, pkg, v, meta) = setup();
        store.create(&pkg, &v, &meta).await.unwrap();
        store
            .create(&PackageName::new("tiny-tool-extra").unwrap(), &v, &meta)
            .await
            .unwrap();
        std::fs::create_dir_all(store.root().join("tiny-tool-vnotaversion")).unwrap();
        let releases = store.releases(&pkg).await.unwrap();
        assert_eq!(releases.len(), 1);
        assert_eq!(
            store.source_template(&pkg),
            format!(
                "file://{}/tiny-tool-v${{version}}/tiny-tool-${{os}}-${{arch}}.tar.gz",
                store.root().display()
            )
        );
    }
}
