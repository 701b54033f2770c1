//! Wheels as a product, with the clients people use: a Git repository of a tiny tool is
//! synced; its wheel lands in the static index (`dist/simple/`), which pip and uv install
//! from, served by a plain static file server on loopback (and as file://); the pages are
//! checked link by link and hash by hash; a tampered file fails pip's hash check.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use common::*;

/// Stops a server the test started, however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python -m http.server` serving `dir` on loopback: a plain static host.
struct StaticHost {
    url: String,
    _server: KillOnDrop,
}

fn serve(dir: &Path) -> StaticHost {
    let port = free_port();
    let child = Command::new(python())
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--directory")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = KillOnDrop(child);
    wait_for_port(port);
    StaticHost {
        url: format!("http://127.0.0.1:{port}/"),
        _server: server,
    }
}

/// A repository of the tool `hello-tool` (console script `hello`) tagged v1.0.0.
pub fn project() -> GitProject {
    let p = git_project("");
    tag_release(&p.repo, "1.0.0", "v1.0.0", false);
    p
}

/// A fresh venv (with pip, from the tools' python: offline).
fn venv(at: &Path) -> PathBuf {
    let out = Command::new(python())
        .args(["-m", "venv"])
        .arg(at)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    at.to_owned()
}

/// pip install from `index` only, into a fresh venv: (success, output), and the venv.
fn pip_install(index: &str, requirement: &str, at: &Path) -> (bool, String) {
    let venv = venv(at);
    let out = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index,
            requirement,
        ])
        .env("PIP_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn run_hello(venv: &Path) -> String {
    let out = Command::new(venv.join("bin/hello")).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` with its modification time.
fn mtimes(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path(), e.metadata().unwrap().modified().unwrap());
            }
        }
    }
    out
}

/// The `href` values of a page's anchors, with the rest of each anchor.
fn anchors(page: &str) -> Vec<(String, String)> {
    page.split("<a ")
        .skip(1)
        .map(|a| {
            let href = a
                .split_once("href=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(h, _)| h.replace("&amp;", "&"))
                .unwrap();
            (href, a.split_once('>').unwrap().0.to_owned())
        })
        .collect()
}

/// Every link of the index resolves, every hash matches, every name is normalised.
pub fn validate_index(root: &Path) -> usize {
    let home = std::fs::read_to_string(root.join("index.html")).unwrap();
    let mut files = 0;
    let projects = anchors(&home);
    assert!(!projects.is_empty(), "{home}");
    for (href, _) in projects {
        let name = href.strip_suffix('/').unwrap();
        assert_eq!(
            name,
            hermit_pex::names::normalize(name),
            "a project's page is at its normalised name"
        );
        let page = std::fs::read_to_string(root.join(name).join("index.html"))
            .unwrap_or_else(|e| panic!("{href}: {e}"));
        for (link, attrs) in anchors(&page) {
            let (file, sha) = link.split_once("#sha256=").expect("a sha256 fragment");
            assert!(!file.contains('/'), "stored beside the page: {file}");
            let path = root.join(name).join(file);
            let (_, actual) = hermit_pex::digest::sha256_file(&path)
                .unwrap_or_else(|e| panic!("{link} does not resolve: {e}"));
            assert_eq!(actual, sha, "{link}");
            let dist = file.split('-').next().unwrap();
            assert_eq!(hermit_pex::names::normalize(dist), name, "{file}");
            let meta = attrs
                .split_once("data-core-metadata=\"sha256=")
                .map(|(_, r)| r.split('"').next().unwrap().to_owned())
                .expect("metadata served");
            assert!(attrs.contains(&format!("data-dist-info-metadata=\"sha256={meta}\"")));
            let (_, actual) =
                hermit_pex::digest::sha256_file(&root.join(name).join(format!("{file}.metadata")))
                    .unwrap();
            assert_eq!(actual, meta, "{file}.metadata");
            files += 1;
        }
    }
    files
}

#[test]
fn an_indexed_wheel_installs_with_pip_and_uv_and_a_tampered_one_does_not() {
    let p = project();
    let (code, _, stderr) = p.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    let root = p.work.join("dist/simple");
    assert!(
        stderr.contains(&format!(
            "hello-tool: indexed hello_tool-1.0.0-py3-none-any.whl in {}",
            root.display()
        )),
        "{stderr}"
    );
    assert_eq!(validate_index(&root), 1);
    // The indexed wheel is the release's, byte for byte.
    let release = p
        .work
        .join("dist/releases/hello-tool-v1.0.0/hello_tool-1.0.0-py3-none-any.whl");
    assert_eq!(
        std::fs::read(&release).unwrap(),
        std::fs::read(root.join("hello-tool/hello_tool-1.0.0-py3-none-any.whl")).unwrap()
    );

    // Nothing changed: nothing is written.
    let before = mtimes(&root);
    let (code, _, stderr) = p.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("indexed"), "{stderr}");
    assert_eq!(mtimes(&root), before, "no page rewritten");

    let host = serve(&root);
    let scratch = tempfile::tempdir().unwrap();

    // pip, over http and from the directory itself.
    for (i, index) in [host.url.clone(), format!("file://{}/", root.display())]
        .iter()
        .enumerate()
    {
        let at = scratch.path().join(format!("pip-{i}"));
        let (ok, out) = pip_install(index, "hello-tool==1.0.0", &at);
        assert!(ok, "{index}: {out}");
        assert_eq!(run_hello(&at), "hello 1.0.0\n");
    }

    // uv.
    let at = scratch.path().join("uv");
    let out = Command::new(uv())
        .args(["venv", "-q", "--python"])
        .arg(python())
        .arg(&at)
        .env("UV_CACHE_DIR", scratch.path().join("uv-cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(uv())
        .args([
            "pip",
            "install",
            "--index-url",
            &host.url,
            "hello-tool==1.0.0",
            "--python",
        ])
        .arg(at.join("bin/python"))
        .env("UV_CACHE_DIR", scratch.path().join("uv-cache"))
        .env("UV_NO_CONFIG", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(run_hello(&at), "hello 1.0.0\n");

    // A tampered wheel (same name, other bytes) fails pip's hash check.
    let tampered = scratch.path().join("tampered");
    let copy = Command::new("cp")
        .arg("-r")
        .arg(&root)
        .arg(&tampered)
        .status()
        .unwrap();
    assert!(copy.success());
    let wheel = tampered.join("hello-tool/hello_tool-1.0.0-py3-none-any.whl");
    let mut bytes = std::fs::read(&wheel).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&wheel, bytes).unwrap();
    let bad_host = serve(&tampered);
    let (ok, out) = pip_install(
        &bad_host.url,
        "hello-tool==1.0.0",
        &scratch.path().join("pip-bad"),
    );
    assert!(!ok, "{out}");
    assert!(
        out.to_lowercase().contains("do not match the hashes"),
        "pip refuses it for its hash: {out}"
    );
}

/// `--index-locked`: every wheel a published version's pylock chose for a platform goes into
/// the index too, fetched by its digest from where the lock says, and installs from there.
#[test]
fn locked_wheels_are_indexed_from_the_pylock_of_a_published_version() {
    use hermit_pex::release::{
        BuildInfo, LockRecord, PlatformBuild, ReleaseStore, Target, TestOutcome, Upload,
    };
    let files = tempfile::tempdir().unwrap();
    let dep = make_wheel(
        files.path(),
        "dep-a",
        "1.2",
        &["--requires-python", ">=3.8"],
    );
    let server = PypiServer::start(files.path());
    let (_, dep_sha) = hermit_pex::digest::sha256_file(&files.path().join(&dep)).unwrap();
    let root_url = server.url.strip_suffix("simple/").unwrap();
    let work = tempfile::tempdir().unwrap();
    let pylock = work.path().join("pylock.toml");
    std::fs::write(
        &pylock,
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"uv\"\n\n[[packages]]\nname = \"dep-a\"\nversion = \"1.2\"\nwheels = [{{ url = \"{root_url}packages/{dep}\", hashes = {{ sha256 = \"{dep_sha}\" }} }}]\n"
        ),
    )
    .unwrap();
    let spec = hermit_pex::spec::parse(
        "package: tiny-tool\nbinaries: [tiny-tool]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\nplatforms: [linux-amd64]\n",
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store =
        hermit_pex::release::dir::DirStore::new(work.path().join("releases"), None).unwrap();
    let v: pep440_rs::Version = "1.0".parse().unwrap();
    let job = hermit_pex::build::VersionJob::new(
        &spec,
        &hermit_pex::pypi::IndexVersion::new(v.clone()),
        spec.python_for(&v).unwrap(),
    );
    let linux: hermit_pex::names::Platform = "linux-amd64".parse().unwrap();
    let releases = rt.block_on(async {
        let release = store.create(&job.info()).await.unwrap();
        let tarball = work.path().join("tiny-tool-linux-amd64.tar.gz");
        std::fs::write(&tarball, "a tarball").unwrap();
        let (tsize, tsha) = hermit_pex::digest::sha256_file(&tarball).unwrap();
        let (lsize, lsha) = hermit_pex::digest::sha256_file(&pylock).unwrap();
        let lock_name = hermit_pex::lock::asset_name(&spec.package);
        for (name, path, size, sha) in [
            ("tiny-tool-linux-amd64.tar.gz", &tarball, tsize, &tsha),
            (lock_name.as_str(), &pylock, lsize, &lsha),
        ] {
            let up = Upload {
                name,
                path,
                size,
                sha256: sha,
            };
            store.upload(&release, up).await.unwrap();
        }
        let mut info: BuildInfo = job.info();
        info.locked = Some(LockRecord {
            sha256: lsha.clone(),
            size: lsize,
            format: Some(hermit_pex::lock::LockFormat::Pylock),
            platforms: [(
                linux,
                hermit_pex::lock::PlatformLock::Files(vec![hermit_pex::lock::ChosenFile {
                    name: dep.clone(),
                    sha256: dep_sha.clone(),
                }]),
            )]
            .into(),
            ..Default::default()
        });
        info.platforms.insert(
            linux,
            PlatformBuild {
                asset: "tiny-tool-linux-amd64.tar.gz".into(),
                size: tsize,
                sha256: tsha,
                target: Target::Interpreter,
                test: Some(TestOutcome::Passed {
                    command: "tiny-tool --help".into(),
                }),
                lock: Some(lsha),
                tarball: PathBuf::new(),
                packages: Vec::new(),
            },
        );
        store.publish(&release, &info).await.unwrap();
        store.releases(&spec.package).await.unwrap()
    });
    let root = work.path().join("simple");
    let fetcher = hermit_pex::lock::Fetcher::new(
        hermit_pex::pypi::Indexes::plain(server.url.parse().unwrap()),
        &work.path().join("cache"),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    let sources = hermit_pex::wheels::Sources {
        store: &store,
        fetcher: Some(&fetcher),
        scratch: &work.path().join("scratch"),
    };
    let plain = hermit_pex::wheels::WheelIndex::new(hermit_pex::wheels::Target::Dir(root.clone()));
    let out = rt
        .block_on(hermit_pex::wheels::index_package(
            &plain, &sources, &spec, &releases,
        ))
        .unwrap();
    assert!(
        out.added.is_empty(),
        "without --index-locked: nothing of the lock"
    );
    assert!(!root.exists(), "and nothing written");

    let locked = hermit_pex::wheels::WheelIndex::new(hermit_pex::wheels::Target::Dir(root.clone()))
        .with_locked(true);
    let out = rt
        .block_on(hermit_pex::wheels::index_package(
            &locked, &sources, &spec, &releases,
        ))
        .unwrap();
    assert_eq!(
        out.added,
        [(
            hermit_pex::names::PackageName::new("dep-a").unwrap(),
            dep.clone()
        )],
        "{out:?}"
    );
    assert_eq!(validate_index(&root), 1);
    let page = std::fs::read_to_string(root.join("dep-a/index.html")).unwrap();
    assert!(page.contains("data-requires-python=\"&gt;=3.8\""), "{page}");

    // The upstream file vanishes: the index still serves it.
    drop(server);
    let host = serve(&root);
    let at = work.path().join("venv");
    let (ok, out) = pip_install(&host.url, "dep-a==1.2", &at);
    assert!(ok, "{out}");
}

const USER: &str = "publisher";
/// Distinctive, so a hit in a grep is this and nothing else.
const PASSWORD: &str = "pw-Publish-7Hq2";

/// A pypiserver that takes uploads only with `USER`:`PASSWORD`, holding nothing yet.
struct PrivateIndex {
    dir: tempfile::TempDir,
    server: PypiServer,
}

impl PrivateIndex {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("packages")).unwrap();
        let server = PypiServer::start_with_auth(&dir.path().join("packages"), USER, PASSWORD);
        Self { dir, server }
    }

    /// Its root, where twine uploads.
    fn root(&self) -> String {
        self.server.url.strip_suffix("simple/").unwrap().to_owned()
    }

    /// The files it holds.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path().join("packages"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Its simple URL with the credentials in it, for pip.
    fn pip_url(&self) -> String {
        self.server
            .url
            .replace("http://", &format!("http://{USER}:{PASSWORD}@"))
    }
}

/// `sync` with exactly `env` of the publish variables; its exit code and output.
fn sync_env(p: &GitProject, extra: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hermit-pex"));
    cmd.args(["sync", "--index-url", &p.index.url, "--cache-dir", &p.cache])
        .args(extra)
        .current_dir(&p.work)
        .env("HERMIT_PEX_PEX", tools_venv().join("bin/pex"))
        .env_remove("HERMIT_PEX_INDEX_URL")
        .env_remove("HERMIT_PEX_CACHE_DIR");
    for var in [
        "HERMIT_PEX_PUBLISH_USERNAME",
        "HERMIT_PEX_PUBLISH_PASSWORD",
        "HERMIT_PEX_PUBLISH_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The acceptance of issue 20: a local Git repository of a tiny tool → `hermit-pex sync` →
/// `pip install --index-url .../simple` of it works, and the same wheel lands on a
/// password-protected pypiserver, once, however often sync runs.
#[test]
fn a_synced_git_tool_installs_from_the_index_and_the_same_wheel_lands_on_a_private_index() {
    let p = project();
    let private = PrivateIndex::start();
    let publish = format!("private={}", private.root());
    let args = ["--publish-index", &publish, "--publish-to", "private"];
    let creds = [
        ("HERMIT_PEX_PUBLISH_USERNAME", USER),
        ("HERMIT_PEX_PUBLISH_PASSWORD", PASSWORD),
    ];
    let (code, out) = sync_env(&p, &args, &creds);
    assert_eq!(code, 0, "{out}");
    let wheel = "hello_tool-1.0.0-py3-none-any.whl";
    assert!(
        out.contains(&format!(
            "hello-tool: published {wheel} to private ({})",
            private.root()
        )),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");
    assert_eq!(private.files(), [wheel]);
    let indexed = p.work.join("dist/simple/hello-tool").join(wheel);
    assert_eq!(
        std::fs::read(private.dir.path().join("packages").join(wheel)).unwrap(),
        std::fs::read(&indexed).unwrap(),
        "the same wheel in both places"
    );

    let scratch = tempfile::tempdir().unwrap();
    let index = format!("file://{}/", p.work.join("dist/simple").display());
    let (ok, said) = pip_install(&index, "hello-tool==1.0.0", &scratch.path().join("a"));
    assert!(ok, "{said}");
    assert_eq!(run_hello(&scratch.path().join("a")), "hello 1.0.0\n");
    let (ok, said) = pip_install(
        &private.pip_url(),
        "hello-tool==1.0.0",
        &scratch.path().join("b"),
    );
    assert!(ok, "{said}");
    assert_eq!(run_hello(&scratch.path().join("b")), "hello 1.0.0\n");

    // Again: it is there already, and stays one file.
    let (code, out) = sync_env(&p, &args, &creds);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{wheel} is on private")), "{out}");
    assert_eq!(private.files(), [wheel]);

    // Another index with the wrong password: a clear error naming the variables, never the
    // password; with none at all, the variables to set.
    let other = PrivateIndex::start();
    let publish = format!("other={}", other.root());
    let args = ["--publish-index", &publish, "--publish-to", "other"];
    let wrong = "pw-Wrong-Zz91";
    let (code, out) = sync_env(
        &p,
        &args,
        &[
            ("HERMIT_PEX_PUBLISH_USERNAME", USER),
            ("HERMIT_PEX_PUBLISH_PASSWORD", wrong),
        ],
    );
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("not published"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("hello-tool 1.0.0")
            && line.contains("the index refused the credentials (HTTP 40")
            && line.contains("HERMIT_PEX_PUBLISH_USERNAME and HERMIT_PEX_PUBLISH_PASSWORD")
            && line.contains("HERMIT_PEX_PUBLISH_OTHER_USERNAME"),
        "{line}"
    );
    assert!(!out.contains(wrong), "{out}");
    let (code, out) = sync_env(&p, &args, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("none were given: set HERMIT_PEX_PUBLISH_USERNAME"),
        "{out}"
    );
    assert!(other.files().is_empty());
}

/// What the proxy does to the next upload (a POST); everything else passes through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Pass,
    /// Answers this status itself; the index never sees the upload.
    Answer(u16),
    /// Forwards half the upload's body, then drops both connections: a client killed
    /// half-way.
    CutHalfway,
    /// Forwards the whole upload, then drops the client's connection without the answer.
    LoseAnswer,
}

/// A loopback proxy in front of an index that spoils the next upload as told.
struct FaultyProxy {
    url: String,
    fault: std::sync::Arc<std::sync::Mutex<Fault>>,
}

impl FaultyProxy {
    fn start(upstream: &str) -> Self {
        use std::io::{Read, Write};
        let upstream = upstream
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let fault = std::sync::Arc::new(std::sync::Mutex::new(Fault::Pass));
        let seen = fault.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let mut client = client;
                // The head, then the body by its length (reqwest sends one for a form).
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    buf.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                client.read_exact(&mut body).unwrap();
                // One request per connection, said to both sides.
                let head = head.replacen("\r\n", "\r\nConnection: close\r\n", 1);
                let post = head.starts_with("POST");
                let fault = if post {
                    std::mem::replace(&mut *seen.lock().unwrap(), Fault::Pass)
                } else {
                    Fault::Pass
                };
                if let Fault::Answer(code) = fault {
                    let body = "<p>refused by the test</p>";
                    let answer = format!(
                        "HTTP/1.1 {code} Refused\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(answer.as_bytes());
                    continue;
                }
                let mut up = std::net::TcpStream::connect(&upstream).unwrap();
                up.write_all(head.as_bytes()).unwrap();
                if fault == Fault::CutHalfway {
                    up.write_all(&body[..length / 2]).unwrap();
                    drop(up);
                    drop(client);
                    continue;
                }
                up.write_all(&body).unwrap();
                let mut answer = Vec::new();
                let _ = up.read_to_end(&mut answer);
                if fault == Fault::LoseAnswer {
                    drop(client);
                    continue;
                }
                let answer = String::from_utf8_lossy(&answer)
                    .replacen("\r\n", "\r\nConnection: close\r\n", 1)
                    .into_bytes();
                let _ = client.write_all(&answer);
            }
        });
        Self { url, fault }
    }

    fn spoil_next_upload(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

/// Rejections are reported with the version and the status; an upload cut half-way, or whose
/// answer is lost, and run again ends with exactly one file on the index.
#[test]
fn rejected_and_interrupted_uploads_are_said_and_end_with_one_file() {
    use hermit_pex::wheels::upload::{FileToUpload, PublishIndex, Uploaded, Uploader};
    let private = PrivateIndex::start();
    let proxy = FaultyProxy::start(&private.root());
    let files = tempfile::tempdir().unwrap();
    let name = make_wheel(files.path(), "tiny-tool", "2.0", &[]);
    let path = files.path().join(&name);
    let (_, sha256) = hermit_pex::digest::sha256_file(&path).unwrap();
    let file = FileToUpload {
        package: hermit_pex::names::PackageName::new("tiny-tool").unwrap(),
        version: "2.0".parse().unwrap(),
        filename: name.clone(),
        path,
        sha256: sha256.clone(),
    };
    let index = PublishIndex {
        name: "private".into(),
        upload_url: proxy.url.parse().unwrap(),
        simple_url: format!("{}simple/", proxy.url).parse().unwrap(),
        credentials: Some(hermit_pex::pypi::Credentials::new(USER, PASSWORD)),
        variables: "HERMIT_PEX_PUBLISH_USERNAME and HERMIT_PEX_PUBLISH_PASSWORD".into(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upload = || {
        let up = Uploader::new(index.clone()).unwrap();
        rt.block_on(async { up.upload(&file).await })
    };

    for status in [409, 400, 403] {
        proxy.spoil_next_upload(Fault::Answer(status));
        let e = upload().unwrap_err().to_string();
        assert!(
            e.contains("tiny-tool 2.0") && e.contains(&format!("rejected with HTTP {status}")),
            "{e}"
        );
        assert!(
            e.contains("refused by the test"),
            "the index's own words: {e}"
        );
        assert!(!e.contains(PASSWORD), "{e}");
        assert!(private.files().is_empty());
    }

    // Cut off half-way: pypiserver does not check the form's digest and keeps what arrived
    // under the file's name. Run again, that truncated copy of this very file is replaced.
    proxy.spoil_next_upload(Fault::CutHalfway);
    let e = upload().unwrap_err().to_string();
    assert!(
        e.contains("tiny-tool 2.0") && e.contains("did not finish"),
        "{e}"
    );
    let kept_part = !private.files().is_empty();
    let again = upload().unwrap();
    match kept_part {
        true => assert!(matches!(again, Uploaded::Replaced { .. }), "{again:?}"),
        false => assert_eq!(again, Uploaded::Uploaded),
    }
    assert_eq!(private.files(), [name.as_str()], "exactly one file");
    let (_, kept) =
        hermit_pex::digest::sha256_file(&private.dir.path().join("packages").join(&name)).unwrap();
    assert_eq!(kept, sha256, "and it is the whole file");

    // The answer of a finished upload is lost: the page says it is there.
    let other = make_wheel(files.path(), "tiny-tool", "2.1", &[]);
    let path = files.path().join(&other);
    let (_, sha) = hermit_pex::digest::sha256_file(&path).unwrap();
    let second = FileToUpload {
        version: "2.1".parse().unwrap(),
        filename: other.clone(),
        path,
        sha256: sha,
        ..file.clone()
    };
    proxy.spoil_next_upload(Fault::LoseAnswer);
    let up = Uploader::new(index.clone()).unwrap();
    assert_eq!(rt.block_on(up.upload(&second)).unwrap(), Uploaded::Uploaded);
    assert_eq!(
        rt.block_on(up.upload(&second)).unwrap(),
        Uploaded::AlreadyThere
    );
    assert_eq!(private.files(), [name.as_str(), other.as_str()]);

    // Another build under a name the index has: both digests said, nothing overwritten.
    let rebuilt = files.path().join("rebuilt");
    make_wheel(&rebuilt, "tiny-tool", "2.0", &["--broken"]);
    let path = rebuilt.join(&name);
    let (_, new_sha) = hermit_pex::digest::sha256_file(&path).unwrap();
    let e = upload_of(
        &rt,
        &index,
        &FileToUpload {
            path,
            sha256: new_sha.clone(),
            ..file.clone()
        },
    );
    assert!(
        e.contains(&sha256) && e.contains(&new_sha) && e.contains("never overwritten"),
        "{e}"
    );
    let (_, kept) =
        hermit_pex::digest::sha256_file(&private.dir.path().join("packages").join(&name)).unwrap();
    assert_eq!(kept, sha256);
}

fn upload_of(
    rt: &tokio::runtime::Runtime,
    index: &hermit_pex::wheels::upload::PublishIndex,
    f: &hermit_pex::wheels::upload::FileToUpload,
) -> String {
    let up = hermit_pex::wheels::upload::Uploader::new(index.clone()).unwrap();
    rt.block_on(up.upload(f)).unwrap_err().to_string()
}

/// `sync --index-locked`: the Git tool's wheel and every wheel its lock chose go into the
/// index, and pip installs the tool with its dependency from the index alone.
#[test]
fn sync_index_locked_lists_the_locked_dependencies_and_the_tool_installs_from_the_index_alone() {
    let p = project();
    // The project now needs dep-a, which only the test index has.
    make_wheel(p.index_dir.path(), "dep-a", "1.2", &[]);
    let pyproject = p.repo.join("tools/hello/pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap().replace(
        "version = \"1.0.0\"\n",
        "version = \"1.0.0\"\ndependencies = [\"dep-a\"]\n",
    );
    std::fs::write(&pyproject, text).unwrap();
    git(&p.repo, &["commit", "-q", "-am", "needs dep-a"]);
    git(&p.repo, &["tag", "-f", "v1.0.0"]);
    let (code, _, stderr) = p.sync(&["--index-locked"]);
    assert_eq!(code, 0, "{stderr}");
    let root = p.work.join("dist/simple");
    assert!(
        stderr.contains(&format!(
            "dep-a: indexed dep_a-1.2-py3-none-any.whl (locked by hello-tool) in {}",
            root.display()
        )),
        "{stderr}"
    );
    assert_eq!(validate_index(&root), 2);
    let host = serve(&root);
    let at = tempfile::tempdir().unwrap();
    let (ok, out) = pip_install(&host.url, "hello-tool==1.0.0", &at.path().join("v"));
    assert!(ok, "{out}");
    assert!(out.contains("dep-a"), "{out}");
    assert_eq!(run_hello(&at.path().join("v")), "hello 1.0.0\n");
}
