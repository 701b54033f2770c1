//! Releases in a directory: `<root>/<tag>/<asset>`, `<root>/<tag>/release.json` (state and
//! digests) and `build-info.json`. Files land by rename, and an asset counts only once
//! `release.json` records its digest, so a killed run never leaves an asset that looks complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pep440_rs::Version;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{Asset, BuildInfo, Release, ReleaseId, ReleaseState, ReleaseStore, StoreError, Upload};
use crate::names::PackageName;

pub struct DirStore {
    root: PathBuf,
    /// Where Hermit downloads from; default `file://<root>`.
    base_url: Option<String>,
    /// Serialises read-modify-write of the JSON files between concurrent builds.
    write: Mutex<()>,
}

/// `release.json`: the state and the digest of every asset whose file is in place.
#[derive(Debug, Serialize, Deserialize)]
struct ReleaseFile {
    version: Version,
    state: ReleaseState,
    /// Asset name → (size, sha256): written after the asset's file is in place.
    assets: BTreeMap<String, (u64, String)>,
}

const RELEASE_FILE: &str = "release.json";
const INFO_FILE: &str = "build-info.json";

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

    fn read(&self, tag: &str) -> Result<Option<ReleaseFile>, StoreError> {
        read_json(&self.root.join(tag).join(RELEASE_FILE))
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
                let ours = name == RELEASE_FILE || name == INFO_FILE || name.starts_with('.');
                (meta.is_file() && !ours).then_some((name, meta.len()))
            })
            .map(|(name, size)| {
                let sha256 = file
                    .assets
                    .get(&name)
                    .filter(|(s, _)| *s == size)
                    .map(|(_, d)| d.clone());
                let uploaded = sha256.is_some();
                Asset {
                    name,
                    size,
                    sha256,
                    uploaded,
                }
            })
            .collect();
        assets.sort_by(|a, b| a.name.cmp(&b.name));
        // Unreadable build info (an older format, a torn write) counts as none: a draft
        // without it is built again.
        let info = read_json::<BuildInfo>(&dir.join(INFO_FILE)).ok().flatten();
        Release {
            id: ReleaseId(tag.to_owned()),
            tag: tag.to_owned(),
            version: file.version,
            state: file.state,
            order: 0,
            assets,
            info,
        }
    }

    fn observe_tag(&self, tag: &str) -> Result<Release, StoreError> {
        let file = self.read(tag)?.ok_or_else(|| StoreError::NoRelease {
            tag: tag.to_owned(),
        })?;
        Ok(self.observe(tag, file))
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

    async fn refresh(&self) {}

    async fn release(&self, _package: &PackageName, id: &ReleaseId) -> Result<Release, StoreError> {
        self.observe_tag(&id.0)
    }

    async fn create(&self, info: &BuildInfo) -> Result<Release, StoreError> {
        let _guard = self.write.lock().await;
        let tag = info.package.tag(&info.version);
        let dir = self.root.join(&tag);
        if self.read(&tag)?.is_some() {
            return Err(StoreError::Other(format!(
                "{tag}: a release exists already; a directory holds one release per tag"
            )));
        }
        // A directory left by a killed create or delete: start it afresh.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        self.write_json(&dir.join(INFO_FILE), info)?;
        let file = ReleaseFile {
            version: info.version.clone(),
            state: ReleaseState::Draft,
            assets: BTreeMap::new(),
        };
        // release.json last: a directory without it is no release.
        self.write_json(&dir.join(RELEASE_FILE), &file)?;
        Ok(self.observe(&tag, file))
    }

    async fn delete_draft(&self, release: &Release) -> Result<(), StoreError> {
        let _guard = self.write.lock().await;
        match self.read(&release.tag)? {
            Some(f) if f.state == ReleaseState::Published => Err(StoreError::Immutable {
                tag: release.tag.clone(),
                asset: "(the release)".into(),
            }),
            _ => {
                let dir = self.root.join(&release.tag);
                // release.json first: a half-deleted directory is no release.
                let _ = std::fs::remove_file(dir.join(RELEASE_FILE));
                std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))
            }
        }
    }

    async fn upload(&self, release: &Release, up: Upload<'_>) -> Result<(), StoreError> {
        let tag = &release.tag;
        let target = self.root.join(tag).join(up.name);
        {
            let _guard = self.write.lock().await;
            let file = self
                .read(tag)?
                .ok_or_else(|| StoreError::NoRelease { tag: tag.clone() })?;
            let complete = file.assets.contains_key(up.name) && target.exists();
            if file.state == ReleaseState::Published && complete {
                return Err(StoreError::Immutable {
                    tag: tag.clone(),
                    asset: up.name.to_owned(),
                });
            }
        }
        // Copy outside the lock (assets can be large), then verify what landed; on the
        // blocking pool, so other builds go on meanwhile.
        let (to, from) = (target.clone(), up.path.to_owned());
        let (size, actual) = crate::blocking::run(move || {
            atomic_write(&to, |f| {
                let mut src = std::fs::File::open(&from)?;
                std::io::copy(&mut src, f).map(|_| ())
            })?;
            crate::digest::sha256_file(&to).map_err(|e| io(&to, e))
        })
        .await?;
        if actual != up.sha256 || size != up.size {
            let _ = std::fs::remove_file(&target);
            return Err(StoreError::Corrupt {
                tag: tag.clone(),
                asset: up.name.to_owned(),
                expected: up.sha256.to_owned(),
                actual,
            });
        }
        let _guard = self.write.lock().await;
        let mut file = self
            .read(tag)?
            .ok_or_else(|| StoreError::NoRelease { tag: tag.clone() })?;
        file.assets.insert(up.name.to_owned(), (size, actual));
        self.write_json(&self.root.join(tag).join(RELEASE_FILE), &file)
    }

    async fn record(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        let _guard = self.write.lock().await;
        match self.read(&release.tag)? {
            None => Err(StoreError::NoRelease {
                tag: release.tag.clone(),
            }),
            Some(f) if f.state == ReleaseState::Published => Err(StoreError::Immutable {
                tag: release.tag.clone(),
                asset: INFO_FILE.into(),
            }),
            Some(_) => self.write_json(&self.root.join(&release.tag).join(INFO_FILE), info),
        }
    }

    async fn delete_asset(&self, release: &Release, asset: &str) -> Result<(), StoreError> {
        let _guard = self.write.lock().await;
        let tag = &release.tag;
        let mut file = self
            .read(tag)?
            .ok_or_else(|| StoreError::NoRelease { tag: tag.clone() })?;
        if file.state == ReleaseState::Published {
            return Err(StoreError::Immutable {
                tag: tag.clone(),
                asset: asset.to_owned(),
            });
        }
        file.assets.remove(asset);
        self.write_json(&self.root.join(tag).join(RELEASE_FILE), &file)?;
        let path = self.root.join(tag).join(asset);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path, e)),
            _ => Ok(()),
        }
    }

    async fn publish(&self, release: &Release, info: &BuildInfo) -> Result<(), StoreError> {
        let _guard = self.write.lock().await;
        let tag = &release.tag;
        let mut file = self
            .read(tag)?
            .ok_or(StoreError::NoRelease { tag: tag.clone() })?;
        // The build info first: a run killed in between leaves a complete draft. A published
        // release's build info is only ever amended with a platform built since.
        self.write_json(&self.root.join(tag).join(INFO_FILE), info)?;
        if file.state != ReleaseState::Published {
            file.state = ReleaseState::Published;
            self.write_json(&self.root.join(tag).join(RELEASE_FILE), &file)?;
        }
        Ok(())
    }

    async fn fetch(
        &self,
        release: &Release,
        asset: &str,
        _into: &Path,
    ) -> Result<PathBuf, StoreError> {
        let path = self.root.join(&release.tag).join(asset);
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

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Io {
                context: path.display().to_string(),
                source: std::io::Error::other(e),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Writes `path` through a temporary file in the same directory and a rename. What lands is
/// published (a web server running as another user serves `dist/releases`, Hermit reads the
/// manifests), so it gets the mode of any new file, 0666 less the umask (0644 by default),
/// not the temporary file's private 0600.
pub(crate) fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().expect("files live in a directory");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(0o666))
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
    use crate::names::{Platform, PythonMinor};
    use crate::release::VersionInputs;

    fn setup() -> (tempfile::TempDir, DirStore, BuildInfo) {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("releases"), None).unwrap();
        let pkg = PackageName::new("tiny-tool").unwrap();
        let v: Version = "2.0".parse().unwrap();
        let inputs = VersionInputs {
            python: PythonMinor::new(12).unwrap(),
            config_version: None,
            requirements: vec!["tiny-tool==2.0".into()],
            binaries: vec![],
            test: String::new(),
            source: None,
            build: None,
            packages: Vec::new(),
        };
        (dir, store, BuildInfo::new(&pkg, &v, inputs))
    }

    /// The mode a new file gets here: 0666 less this process's umask.
    fn new_file_mode() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
            .unwrap();
        0o666 & !umask
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn published_files_are_readable_by_others() {
        let (dir, store, info) = setup();
        assert_eq!(
            new_file_mode(),
            0o644,
            "the tests run with the default umask"
        );
        let r = store.create(&info).await.unwrap();
        let name = info.package.asset_name(Platform::ALL[0]);
        let (path, size, sha) = file(dir.path(), b"tarball");
        let up = Upload {
            name: &name,
            path: &path,
            size,
            sha256: &sha,
        };
        store.upload(&r, up).await.unwrap();
        let r = &store.releases(&info.package).await.unwrap()[0];
        store.publish(r, &info).await.unwrap();
        let release = store.asset_path(&info.package, &info.version, &name);
        let release = release.parent().unwrap();
        let mut seen = 0;
        for entry in std::fs::read_dir(release).unwrap() {
            let p = entry.unwrap().path();
            assert_eq!(mode(&p), 0o644, "{}", p.display());
            seen += 1;
        }
        assert!(seen >= 2, "the asset and release.json");
    }

    fn file(dir: &Path, bytes: &[u8]) -> (PathBuf, u64, String) {
        let p = dir.join("built.tar.gz");
        std::fs::write(&p, bytes).unwrap();
        let (size, sha) = crate::digest::sha256_file(&p).unwrap();
        (p, size, sha)
    }

    #[tokio::test]
    async fn a_release_goes_from_draft_to_published_with_digests() {
        let (dir, store, info) = setup();
        let pkg = info.package.clone();
        let r = store.create(&info).await.unwrap();
        assert_eq!(r.info.as_ref(), Some(&info));
        let name = pkg.asset_name(Platform::ALL[0]);
        let (path, size, sha) = file(dir.path(), b"tarball");
        let up = Upload {
            name: &name,
            path: &path,
            size,
            sha256: &sha,
        };
        store.upload(&r, up).await.unwrap();
        let r = &store.releases(&pkg).await.unwrap()[0];
        assert_eq!(r.state, ReleaseState::Draft);
        assert!(r.has_complete(&pkg, Platform::ALL[0]));
        assert!(
            store.create(&info).await.is_err(),
            "one release per tag in a directory"
        );
        store.publish(r, &info).await.unwrap();
        let r = &store.releases(&pkg).await.unwrap()[0];
        assert_eq!(r.state, ReleaseState::Published);

        // Published and complete: never replaced, never deleted, its build info never rewritten.
        let (path, size, sha) = file(dir.path(), b"other bytes");
        let up = Upload {
            name: &name,
            path: &path,
            size,
            sha256: &sha,
        };
        let err = store.upload(r, up).await.unwrap_err();
        assert!(matches!(err, StoreError::Immutable { .. }), "{err}");
        assert!(store.delete_draft(r).await.is_err());
        assert!(store.record(r, &info).await.is_err());
        assert_eq!(
            std::fs::read(store.asset_path(&pkg, &info.version, &name)).unwrap(),
            b"tarball"
        );
    }

    #[tokio::test]
    async fn an_asset_without_a_recorded_digest_is_incomplete() {
        let (_dir, store, info) = setup();
        let r = store.create(&info).await.unwrap();
        // As if a run was killed after the file landed but before release.json recorded it.
        let name = info.package.asset_name(Platform::ALL[1]);
        std::fs::write(
            store.asset_path(&info.package, &info.version, &name),
            b"half",
        )
        .unwrap();
        std::fs::write(
            store.asset_path(&info.package, &info.version, ".tmp-abc"),
            b"partial copy",
        )
        .unwrap();
        let r = store.release(&info.package, &r.id).await.unwrap();
        assert_eq!(r.assets.len(), 1);
        assert!(!r.assets[0].is_complete());
    }

    #[tokio::test]
    async fn a_wrong_digest_is_refused_and_leaves_nothing() {
        let (dir, store, info) = setup();
        let r = store.create(&info).await.unwrap();
        let name = info.package.asset_name(Platform::ALL[0]);
        let (path, size, _) = file(dir.path(), b"tarball");
        let bad = "0".repeat(64);
        let up = Upload {
            name: &name,
            path: &path,
            size,
            sha256: &bad,
        };
        let err = store.upload(&r, up).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        assert!(
            store.releases(&info.package).await.unwrap()[0]
                .assets
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_deleted_draft_is_gone_and_can_be_made_again() {
        let (_dir, store, info) = setup();
        let r = store.create(&info).await.unwrap();
        store.delete_draft(&r).await.unwrap();
        assert!(store.releases(&info.package).await.unwrap().is_empty());
        store.create(&info).await.unwrap();
    }

    #[tokio::test]
    async fn other_packages_and_stray_directories_are_not_releases() {
        let (_dir, store, info) = setup();
        store.create(&info).await.unwrap();
        let mut other = info.clone();
        other.package = PackageName::new("tiny-tool-extra").unwrap();
        store.create(&other).await.unwrap();
        std::fs::create_dir_all(store.root().join("tiny-tool-vnotaversion")).unwrap();
        let releases = store.releases(&info.package).await.unwrap();
        assert_eq!(releases.len(), 1);
        assert_eq!(
            store.source_template(&info.package),
            format!(
                "file://{}/tiny-tool-v${{version}}/tiny-tool-${{os}}-${{arch}}.tar.gz",
                store.root().display()
            )
        );
    }
}
