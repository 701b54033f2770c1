//! Each file of a lock fetched once: in parallel (bounded), checked against the lock's sha256
//! while it streams, kept in the cache by digest (`<cache>/wheels/<sha256>/<file name>`) so
//! every platform, version and run on the machine shares it. A download goes to a temporary
//! file beside its place and is renamed there only once its digest matched, so a concurrent run
//! or a killed one never leaves a wrong or partial file under a digest.
//! Credentials go only to their index's own origin (`Indexes::credentials_for`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::pylock::{File, Source};
use crate::pypi::{Indexes, redact};

/// Downloads at once: enough to hide latency on many small wheels, few enough for a small
/// index and a 2-core machine.
pub const PARALLEL: usize = 8;
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{file}: its sha256 is {actual}, the lock says {expected}: the file changed on the index or was corrupted on the way; nothing was kept"
    )]
    Digest {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: {url} answered HTTP {status}{hint}")]
    Status {
        file: String,
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{file}: cannot download {url}: {message}")]
    Transport {
        file: String,
        url: String,
        message: String,
    },
    #[error(
        "{file}: the lock names a file of the machine that made it (sha256 {sha256}), and it is not here: pass its directory to the fetcher"
    )]
    LocalNotFound { file: String, sha256: String },
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// What a fetcher did, for tests and progress lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FetchStats {
    pub downloaded: u64,
    pub copied: u64,
    pub cached: u64,
}

#[derive(Debug, Default)]
struct Counters {
    downloaded: AtomicU64,
    copied: AtomicU64,
    cached: AtomicU64,
}

/// Fetches a lock's files into the cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    indexes: Indexes,
    /// `<cache>/wheels`.
    root: PathBuf,
    timeout: Duration,
    parallel: usize,
    /// Where a lock's local files may be: the lock's directory (relative `path`s) and files
    /// given by the caller (a Git source's wheel, wherever it is now).
    lock_dir: Option<PathBuf>,
    local: Vec<PathBuf>,
    counters: Arc<Counters>,
}

impl Fetcher {
    /// A fetcher for files under `cache_dir` (its `wheels/`), from `indexes`, each download
    /// stopped after `timeout`.
    pub fn new(indexes: Indexes, cache_dir: &Path, timeout: Duration) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .user_agent(crate::pypi::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Self {
            http,
            indexes,
            root: cache_dir.join("wheels"),
            timeout,
            parallel: PARALLEL,
            lock_dir: None,
            local: Vec::new(),
            counters: Arc::default(),
        })
    }

    /// The directory relative `path` entries of the lock are resolved from.
    pub fn with_lock_dir(mut self, dir: &Path) -> Self {
        self.lock_dir = Some(dir.to_owned());
        self
    }

    /// A file on this machine a local entry of the lock may name (matched by file name, then
    /// checked against the digest).
    pub fn with_local_file(mut self, path: &Path) -> Self {
        self.local.push(path.to_owned());
        self
    }

    pub fn with_parallel(mut self, n: usize) -> Self {
        self.parallel = n.max(1);
        self
    }

    pub fn stats(&self) -> FetchStats {
        let c = &self.counters;
        FetchStats {
            downloaded: c.downloaded.load(Ordering::Relaxed),
            copied: c.copied.load(Ordering::Relaxed),
            cached: c.cached.load(Ordering::Relaxed),
        }
    }

    /// Where `file` is kept: `<cache>/wheels/<sha256>/<name>` (both checked by the lock parser).
    pub fn path_of(&self, file: &File) -> PathBuf {
        self.root.join(&file.sha256).join(&file.name)
    }

    /// Every file once (by digest), at most `parallel` at a time: sha256 → path in the cache.
    pub async fn fetch_all<'a>(
        &self,
        files: impl IntoIterator<Item = &'a File>,
    ) -> Result<BTreeMap<String, PathBuf>, FetchError> {
        let mut unique: BTreeMap<String, File> = BTreeMap::new();
        for f in files {
            unique.entry(f.sha256.clone()).or_insert_with(|| f.clone());
        }
        // Each download a task of its own (the fetcher is a cheap clone), at most `parallel`
        // at once: plain futures of closures over `&self` would make every caller's future
        // too particular about lifetimes to be sent between threads.
        let permits = Arc::new(tokio::sync::Semaphore::new(self.parallel));
        let mut tasks = tokio::task::JoinSet::new();
        for (sha256, file) in unique {
            let (me, permits) = (self.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("never closed");
                me.fetch(&file).await.map(|p| (sha256, p))
            });
        }
        let mut fetched = BTreeMap::new();
        while let Some(done) = tasks.join_next().await {
            let (sha256, path) = done.expect("a fetch does not panic")?;
            fetched.insert(sha256, path);
        }
        Ok(fetched)
    }

    /// One file, from the cache when it is there.
    pub async fn fetch(&self, file: &File) -> Result<PathBuf, FetchError> {
        let dest = self.path_of(file);
        if tokio::fs::metadata(&dest).await.is_ok_and(|m| m.is_file()) {
            self.counters.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(dest);
        }
        let io = |source| FetchError::Io {
            file: file.name.clone(),
            source,
        };
        let dir = dest.parent().expect("under its digest's directory");
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        if file.is_local() {
            self.copy_local(file, &dest).await?;
            self.counters.copied.fetch_add(1, Ordering::Relaxed);
        } else {
            self.download(file, &dest).await?;
            self.counters.downloaded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(dest)
    }

    /// A local entry: the path the lock names (relative to the lock, or a `file:` URL), else a
    /// file given with `with_local_file` of the same name; copied in when its digest matches.
    async fn copy_local(&self, file: &File, dest: &Path) -> Result<(), FetchError> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        match &file.source {
            Source::Path(p) => {
                let p = Path::new(p);
                candidates.push(match &self.lock_dir {
                    Some(d) if p.is_relative() => d.join(p),
                    _ => p.to_owned(),
                });
            }
            Source::Url(u) => {
                if let Some(p) = Url::parse(u).ok().and_then(|u| u.to_file_path().ok()) {
                    candidates.push(p);
                }
            }
        }
        candidates.extend(
            self.local
                .iter()
                .filter(|p| p.file_name().is_some_and(|n| *n == *file.name))
                .cloned(),
        );
        let mut mismatch = None;
        for source in candidates {
            if !source.is_file() {
                continue;
            }
            let (file_c, dest_c) = (file.clone(), dest.to_owned());
            let copied =
                tokio::task::spawn_blocking(move || copy_checked(&source, &file_c, &dest_c))
                    .await
                    .expect("the copy does not panic")?;
            match copied {
                Ok(()) => return Ok(()),
                Err(e) => mismatch = Some(e),
            }
        }
        Err(mismatch.unwrap_or_else(|| FetchError::LocalNotFound {
            file: file.name.clone(),
            sha256: file.sha256.clone(),
        }))
    }

    async fn download(&self, file: &File, dest: &Path) -> Result<(), FetchError> {
        let Source::Url(url) = &file.source else {
            unreachable!("a path is local");
        };
        let shown = redact(url);
        let parsed = Url::parse(url).map_err(|e| FetchError::Transport {
            file: file.name.clone(),
            url: shown.clone(),
            message: e.to_string(),
        })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_download(file, &parsed, &shown, dest).await {
                Err(e @ (FetchError::Transport { .. } | FetchError::Status { .. }))
                    if attempt < ATTEMPTS && retryable(&e) =>
                {
                    tracing::debug!(file = %file.name, attempt, "retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn try_download(
        &self,
        file: &File,
        url: &Url,
        shown: &str,
        dest: &Path,
    ) -> Result<(), FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport {
            file: file.name.clone(),
            url: shown.to_owned(),
            message: without_url(&e),
        };
        let io = |source| FetchError::Io {
            file: file.name.clone(),
            source,
        };
        let mut request = self.http.get(url.clone()).timeout(self.timeout);
        // reqwest drops the Authorization header itself when a redirect leaves the origin.
        if let Some(c) = self.indexes.credentials_for(url) {
            request = request.basic_auth(&c.username, Some(c.password()));
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                file: file.name.clone(),
                url: shown.to_owned(),
                status: status.as_u16(),
                hint: match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        ": the index needs credentials, or refused the ones given"
                    }
                    _ => "",
                },
            });
        }
        let dir = dest.parent().expect("under its digest's directory");
        let (std_file, tmp) = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(dir)
            .map_err(io)?
            .into_parts();
        let mut out = tokio::fs::File::from_std(std_file);
        let mut hash = Sha256::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(transport)?;
            hash.update(&chunk);
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        drop(out);
        let actual = hex::encode(hash.finalize());
        if actual != file.sha256 {
            // `tmp` is removed when dropped.
            return Err(FetchError::Digest {
                file: file.name.clone(),
                expected: file.sha256.clone(),
                actual,
            });
        }
        tmp.persist(dest).map_err(|e| io(e.error))?;
        Ok(())
    }
}

fn retryable(e: &FetchError) -> bool {
    match e {
        FetchError::Transport { .. } => true,
        FetchError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// Copies `source` to a temporary file beside `dest`, hashing it, and renames it to `dest` when
/// the digest is the lock's. The outer error is I/O; the inner, a digest mismatch.
fn copy_checked(
    source: &Path,
    file: &File,
    dest: &Path,
) -> Result<Result<(), FetchError>, FetchError> {
    let io = |source| FetchError::Io {
        file: file.name.clone(),
        source,
    };
    let dir = dest.parent().expect("under its digest's directory");
    let mut tmp = tempfile::Builder::new()
        .prefix(".part-")
        .tempfile_in(dir)
        .map_err(io)?;
    let mut input = std::fs::File::open(source).map_err(io)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut input, &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        std::io::Write::write_all(&mut tmp, &buf[..n]).map_err(io)?;
    }
    let actual = hex::encode(hash.finalize());
    if actual != file.sha256 {
        return Ok(Err(FetchError::Digest {
            file: file.name.clone(),
            expected: file.sha256.clone(),
            actual,
        }));
    }
    tmp.persist(dest).map_err(|e| io(e.error))?;
    Ok(Ok(()))
}

/// reqwest's message names the URL; ours names the redacted one already.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: &[u8], source: Source) -> File {
        File {
            name: name.into(),
            source,
            sha256: hex::encode(Sha256::digest(bytes)),
            size: Some(bytes.len() as u64),
        }
    }

    fn fetcher(cache: &Path) -> Fetcher {
        let indexes = Indexes::plain(Url::parse("http://127.0.0.1:9/simple/").unwrap());
        Fetcher::new(indexes, cache, Duration::from_secs(10)).unwrap()
    }

    #[tokio::test]
    async fn local_files_are_found_by_name_and_checked_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("elsewhere/hello_tool-1.0-py3-none-any.whl");
        std::fs::create_dir_all(wheel.parent().unwrap()).unwrap();
        std::fs::write(&wheel, b"the wheel").unwrap();
        let f = file(
            "hello_tool-1.0-py3-none-any.whl",
            b"the wheel",
            Source::Url("file:///machine/that/locked/hello_tool-1.0-py3-none-any.whl".into()),
        );
        let cache = dir.path().join("cache");
        let e = fetcher(&cache).fetch(&f).await.unwrap_err();
        assert!(matches!(e, FetchError::LocalNotFound { .. }), "{e}");

        let fetcher = fetcher(&cache).with_local_file(&wheel);
        let got = fetcher.fetch(&f).await.unwrap();
        assert_eq!(got, cache.join("wheels").join(&f.sha256).join(&f.name));
        assert_eq!(std::fs::read(&got).unwrap(), b"the wheel");
        assert_eq!(fetcher.fetch(&f).await.unwrap(), got);
        assert_eq!(
            fetcher.stats(),
            FetchStats {
                downloaded: 0,
                copied: 1,
                cached: 1
            }
        );

        let changed = File {
            sha256: "0".repeat(64),
            ..f.clone()
        };
        let e = fetcher.fetch(&changed).await.unwrap_err().to_string();
        assert!(
            e.contains("hello_tool-1.0-py3-none-any.whl")
                && e.contains(&f.sha256)
                && e.contains(&"0".repeat(64)),
            "{e}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(cache.join("wheels").join("0".repeat(64)))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "a mismatch keeps nothing");
    }

    #[tokio::test]
    async fn relative_paths_are_read_beside_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wheels")).unwrap();
        std::fs::write(dir.path().join("wheels/t-1-py3-none-any.whl"), b"t").unwrap();
        let f = file(
            "t-1-py3-none-any.whl",
            b"t",
            Source::Path("wheels/t-1-py3-none-any.whl".into()),
        );
        let fetcher = fetcher(&dir.path().join("cache")).with_lock_dir(dir.path());
        let got = fetcher.fetch_all([&f, &f]).await.unwrap();
        assert_eq!(got.len(), 1, "one file, fetched once");
        assert_eq!(fetcher.stats().copied, 1);
    }
}
