//! Real parts for the integration tests: wheels built by a script, a pypiserver on loopback, and
//! a small replay server for responses recorded from pypi.org.
#![allow(dead_code)]
pub mod docs;
pub mod github;
pub mod hermit_resolve;
pub mod kube_api;
pub mod releases;
pub mod sandbox;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv that `scripts/test-tools.sh` fills (pypiserver, pex).
pub fn tools_venv() -> PathBuf {
    let venv = std::env::var_os("HERMIT_PEX_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/venv"));
    assert!(
        venv.join("bin/pypi-server").exists(),
        "{} has no pypi-server: run scripts/test-tools.sh (scripts/test does it for you)",
        venv.display()
    );
    venv
}

/// The pinned uv: `HERMIT_PEX_UV` (scripts/test exports it), else the tools venv's.
pub fn uv() -> PathBuf {
    let uv = std::env::var_os("HERMIT_PEX_UV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_venv().join("bin/uv"));
    assert!(
        uv.exists(),
        "{} is missing: run scripts/test-tools.sh (scripts/test does it for you)",
        uv.display()
    );
    uv
}

pub fn python() -> PathBuf {
    tools_venv().join("bin/python")
}

/// Builds a wheel of `name` `version` into `dir`; `extra` goes to make_wheel.py as is.
pub fn make_wheel(dir: &Path, name: &str, version: &str, extra: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo_root().join("tests/fixtures/make_wheel.py"))
        .args([name, version])
        .arg(dir)
        .args(extra)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "make_wheel failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A pypiserver serving `packages` on loopback, stopped on drop.
pub struct PypiServer {
    child: Child,
    pub url: String,
}

impl PypiServer {
    /// Serves `packages` and the pip/setuptools/wheel that pex bootstraps from the index.
    pub fn start(packages: &Path) -> Self {
        Self::start_with(packages, &["-a", ".", "-P", "."])
    }

    /// Same, answering 401 to every listing and download without `user`:`password` (htpasswd
    /// file written with passlib beside `packages`).
    pub fn start_with_auth(packages: &Path, user: &str, password: &str) -> Self {
        let htpasswd = packages.with_file_name("htpasswd.txt");
        let out = Command::new(python())
            .args([
                "-c",
                "import sys; from passlib.apache import HtpasswdFile as H; h = H(sys.argv[1], new=True); h.set_password(sys.argv[2], sys.argv[3]); h.save()",
            ])
            .arg(&htpasswd)
            .args([user, password])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "cannot write htpasswd (passlib missing? run scripts/test-tools.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let htpasswd = htpasswd.display().to_string();
        Self::start_with(packages, &["-a", "download,list,update", "-P", &htpasswd])
    }

    fn start_with(packages: &Path, auth: &[&str]) -> Self {
        let bootstrap = tools_venv().parent().unwrap().join("wheels");
        let port = free_port();
        let child = Command::new(tools_venv().join("bin/pypi-server"))
            .args([
                "run",
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--disable-fallback",
            ])
            .args(auth)
            .arg(packages)
            .arg(&bootstrap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pypi-server starts");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}/simple/"),
        };
        wait_for_port(port);
        server
    }
}

impl Drop for PypiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port} after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One recorded response: body, content type, and the validator pypi.org would send.
#[derive(Clone)]
pub struct Page {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

#[derive(Default)]
pub struct ReplayState {
    pub pages: HashMap<String, Page>,
    /// Status codes to answer, in order, before serving normally (fault injection).
    pub faults: Vec<(u16, Option<&'static str>)>,
    /// (path, status) of every request served.
    pub log: Vec<(String, u16)>,
    /// Headers of the last request, lowercased names.
    pub last_headers: HashMap<String, String>,
}

/// Replays recorded index pages with ETag / If-None-Match semantics, on loopback.
pub struct ReplayServer {
    pub url: String,
    pub state: Arc<Mutex<ReplayState>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl ReplayServer {
    pub async fn start(pages: HashMap<String, Page>) -> Self {
        use axum::Router;
        use axum::extract::{Request, State};
        use axum::http::{HeaderValue, StatusCode, header};
        use axum::response::{IntoResponse, Response};

        let state = Arc::new(Mutex::new(ReplayState {
            pages,
            ..Default::default()
        }));
        async fn serve(State(state): State<Arc<Mutex<ReplayState>>>, req: Request) -> Response {
            let mut s = state.lock().unwrap();
            let path = req.uri().path().to_owned();
            s.last_headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            if !s.faults.is_empty() {
                let (code, retry_after) = s.faults.remove(0);
                s.log.push((path, code));
                let mut r = StatusCode::from_u16(code).unwrap().into_response();
                if let Some(ra) = retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static(ra));
                }
                return r;
            }
            let Some(page) = s.pages.get(&path).cloned() else {
                s.log.push((path, 404));
                return StatusCode::NOT_FOUND.into_response();
            };
            let inm = req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok());
            if page.etag.is_some() && inm == page.etag.as_deref() {
                s.log.push((path, 304));
                return StatusCode::NOT_MODIFIED.into_response();
            }
            s.log.push((path, 200));
            let mut r = (StatusCode::OK, page.body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(page.content_type),
            );
            if let Some(etag) = page.etag {
                r.headers_mut()
                    .insert(header::ETAG, HeaderValue::from_str(&etag).unwrap());
            }
            r
        }

        let app = Router::new().fallback(serve).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            url: format!("http://127.0.0.1:{port}/simple/"),
            state,
            _shutdown: tx,
        }
    }

    pub fn statuses(&self) -> Vec<u16> {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .map(|(_, s)| *s)
            .collect()
    }
}

/// The pypiapijson project page recorded from pypi.org (PEP 691 JSON), with an ETag.
pub fn recorded_pypiapijson() -> HashMap<String, Page> {
    let body = std::fs::read(repo_root().join("tests/fixtures/pypi/pypiapijson.json")).unwrap();
    HashMap::from([(
        "/simple/pypiapijson/".to_owned(),
        Page {
            content_type: "application/vnd.pypi.simple.v1+json",
            body,
            etag: Some("\"fzG4y6kSBsmcCgHyuyo3Pg\"".into()),
        },
    )])
}

/// Runs the built `hermit-pex` binary; returns (exit code, stdout, stderr).
pub fn hermit_pex(args: &[&str], cwd: &Path) -> (i32, String, String) {
    hermit_pex_with(args, cwd, &tools_venv().join("bin/pex"))
}

/// Same, with `pex` at `pex` (its `pex3` beside it).
pub fn hermit_pex_with(args: &[&str], cwd: &Path, pex: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hermit-pex"))
        .args(args)
        .current_dir(cwd)
        .env_remove("HERMIT_PEX_INDEX_URL")
        .env_remove("HERMIT_PEX_CACHE_DIR")
        .env("HERMIT_PEX_PEX", pex)
        .output()
        .expect("hermit-pex runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs git in `dir` as a test author, failing the test on a non-zero exit; its stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Commits the project `hello-tool` (console script `hello`, in `tools/hello`) at `version`
/// and tags it; the commit.
pub fn tag_release(repo: &Path, version: &str, tag: &str, annotated: bool) -> String {
    commit_hello(repo, version, &format!("hello {version}"));
    if annotated {
        git(repo, &["tag", "-a", tag, "-m", tag]);
    } else {
        git(repo, &["tag", tag]);
    }
    git(repo, &["rev-parse", "HEAD"])
}

/// Commits the project `hello-tool` at `version` on the current branch, its script printing
/// `text`; the commit.
pub fn commit_hello(repo: &Path, version: &str, text: &str) -> String {
    let project = repo.join("tools/hello");
    write(
        &project.join("pyproject.toml"),
        &format!(
            "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
             [project]\nname = \"hello-tool\"\nversion = \"{version}\"\n\n[project.scripts]\nhello = \"hello:main\"\n"
        ),
    );
    write(
        &project.join("hello/__init__.py"),
        &format!("def main():\n    print('{text}')\n"),
    );
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", text]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A Git repository `hello-tool` (on branch `main`, no commit yet), a work directory whose
/// `python/hello-tool/config.yaml` builds it for linux-amd64 from `tools/hello` (with
/// `source_extra`, e.g. `"  branch: main\n"`, added to its `source`), and a test index holding
/// only what the build backend needs.
pub struct GitProject {
    pub _dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub work: PathBuf,
    pub index_dir: tempfile::TempDir,
    pub index: PypiServer,
    pub cache: String,
}

pub fn git_project(source_extra: &str) -> GitProject {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("hello-tool");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let work = dir.path().join("work");
    write(
        &work.join("python/hello-tool/config.yaml"),
        &format!(
            "package: hello-tool\nsource:\n  git: \"file://{}\"\n  subdirectory: tools/hello\n{source_extra}versions:\n  - version: \"1.0.0\"\n    python: \"3.12\"\nplatforms: [linux-amd64]\n",
            repo.display()
        ),
    );
    let index_dir = tempfile::tempdir().unwrap();
    make_wheel(index_dir.path(), "unrelated", "1.0", &[]);
    let index = PypiServer::start(index_dir.path());
    GitProject {
        _dir: dir,
        repo,
        work,
        index_dir,
        index,
        cache: repo_root().join("target/test-cache").display().to_string(),
    }
}

impl GitProject {
    /// `hermit-pex COMMAND` against the test index and the shared cache, then `extra`.
    pub fn run(&self, command: &str, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec![
            command,
            "--index-url",
            &self.index.url,
            "--cache-dir",
            &self.cache,
        ];
        args.extend_from_slice(extra);
        hermit_pex(&args, &self.work)
    }

    pub fn sync(&self, extra: &[&str]) -> (i32, String, String) {
        self.run("sync", extra)
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
