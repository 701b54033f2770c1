//! A work tree of package configs beside a pypiserver on loopback holding wheels the test
//! builds, and `hermit-pex sync` run in it with the tests' shared pex/uv cache.

use std::path::{Path, PathBuf};

use super::{PypiServer, hermit_pex, make_wheel, repo_root, write};

/// pex's and uv's caches shared by the tests. A wheel built from an sdist is kept by the
/// sdist's digest, so each test's sdists have names of their own.
pub fn shared_cache() -> PathBuf {
    repo_root().join("target/test-cache")
}

/// The directory of this machine's CPython 3.12 (what Hermit's runtime dependency puts on
/// `PATH`).
pub fn python312_dir() -> PathBuf {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let python = rt
        .block_on(hermit_pex::tools::find_python("3.12".parse().unwrap()))
        .expect("CPython 3.12");
    python.parent().unwrap().to_owned()
}

pub struct Sandbox {
    dir: tempfile::TempDir,
    _server: PypiServer,
    pub url: String,
}

impl Sandbox {
    /// A work tree with `configs` (package → config.yaml) and an index holding `wheels`
    /// ((name, version, make_wheel flags)).
    pub fn new(configs: &[(&str, &str)], wheels: &[(&str, &str, &[&str])]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("index");
        for (name, version, flags) in wheels {
            make_wheel(&index, name, version, flags);
        }
        for (package, config) in configs {
            write(
                &dir.path().join("python").join(package).join("config.yaml"),
                config,
            );
        }
        let server = PypiServer::start(&index);
        let url = server.url.clone();
        Self {
            dir,
            _server: server,
            url,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn sync_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["sync", "--index-url", &self.url, "--cache-dir"]
            .map(str::to_owned)
            .to_vec();
        args.push(shared_cache().display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn sync(&self, extra: &[&str]) -> (i32, String, String) {
        let args = self.sync_args(extra);
        hermit_pex(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            self.path(),
        )
    }

    pub fn release_dir(&self, tag: &str) -> PathBuf {
        self.path().join("dist/releases").join(tag)
    }

    pub fn release_json(&self, tag: &str) -> serde_json::Value {
        read_json(&self.release_dir(tag).join("release.json"))
    }

    pub fn build_info(&self, tag: &str) -> serde_json::Value {
        read_json(&self.release_dir(tag).join("build-info.json"))
    }

    pub fn manifest(&self, package: &str) -> Option<String> {
        std::fs::read_to_string(self.path().join("hermit").join(format!("{package}.hcl"))).ok()
    }
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
