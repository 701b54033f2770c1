//! A private index that needs credentials: `hermit-pex sync` against a pypiserver with htpasswd
//! authentication, with the credentials in the environment. They must reach the index (the
//! build succeeds and its launchers run) and nothing else: no file written, no output line, no
//! other index.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;

const USER: &str = "builder";
/// Distinctive, so a hit in a grep is this and nothing else.
const PASSWORD: &str = "pw-Zq81xK3vTtop";
const CONFIG: &str = "package: tiny-tool\nbinaries: [tiny-tool]\nversions:\n  - version: \"1.0\"\n    python: \"3.12\"\nplatforms: [linux-amd64]\n";

struct Private {
    dir: tempfile::TempDir,
    server: PypiServer,
}

impl Private {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        make_wheel(&dir.path().join("index"), "tiny-tool", "1.0", &[]);
        write(
            &dir.path().join("work/python/tiny-tool/config.yaml"),
            CONFIG,
        );
        let server = PypiServer::start_with_auth(&dir.path().join("index"), USER, PASSWORD);
        Self { dir, server }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `hermit-pex ARGS --index-url <server> --cache-dir <own cache>` with `env` added.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hermit-pex"));
        cmd.args(args)
            .args(["--index-url", &self.server.url, "--cache-dir"])
            .arg(self.cache())
            .current_dir(self.work())
            .env("HERMIT_PEX_PEX", tools_venv().join("bin/pex"))
            // No netrc of the machine's user may help or leak.
            .env("HOME", self.dir.path())
            .env_remove("NETRC");
        for var in [
            "HERMIT_PEX_INDEX_URL",
            "HERMIT_PEX_CACHE_DIR",
            "HERMIT_PEX_INDEX_USERNAME",
            "HERMIT_PEX_INDEX_PASSWORD",
            "HERMIT_PEX_INDEX_TOKEN",
            "HERMIT_PEX_EXTRA_INDEX_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().expect("hermit-pex runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Every file under `dir` (zip members too: a PEX and its PEX-INFO, a tarball's pex inside
/// the gzip is checked by unpacking it) that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        if contains(&bytes, needle.as_bytes()) {
            hits.push(entry.display().to_string());
        }
        if let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(&bytes)) {
            for i in 0..zip.len() {
                let mut member = zip.by_index(i).unwrap();
                let mut data = Vec::new();
                let _ = member.read_to_end(&mut data);
                if contains(&data, needle.as_bytes()) {
                    hits.push(format!("{}!{:?}", entry.display(), member.name()));
                }
            }
        }
    }
    hits
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let ty = e.file_type().unwrap();
            if ty.is_dir() {
                todo.push(e.path());
            } else if ty.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An index that has nothing: answers 404 to everything and keeps each request's head.
struct Recorder {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    /// On 127.0.0.2: another host than the private index, as netrc (host names, no ports) sees it.
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").unwrap();
        let url = format!("http://{}/simple/", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Self { url, heads }
    }
}

fn unpack(tarball: &Path, into: &Path) {
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn credentials_from_the_environment_reach_the_private_index_and_nothing_else() {
    let p = Private::new();
    let extra = Recorder::start();
    let creds = [
        ("HERMIT_PEX_INDEX_USERNAME", USER),
        ("HERMIT_PEX_INDEX_PASSWORD", PASSWORD),
    ];
    let (code, stdout, stderr) = p.run(&["-vv", "sync", "--extra-index-url", &extra.url], &creds);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("1 versions released"), "{stderr}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains(PASSWORD),
            "the password is in {name}:\n{text}"
        );
    }

    // The launcher of what was built runs.
    let release = p.work().join("dist/releases/tiny-tool-v1.0");
    let tarball = release.join("tiny-tool-linux-amd64.tar.gz");
    let unpacked = p.dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    unpack(&tarball, &unpacked);
    let python = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(hermit_pex::tools::find_python(
            hermit_pex::names::PythonMinor::new(12).unwrap(),
        ))
        .expect("CPython 3.12");
    let path = format!("{}:/usr/bin:/bin", python.parent().unwrap().display());
    let out = Command::new(unpacked.join("tiny-tool"))
        .env("PATH", path)
        .env("PEX_ROOT", p.dir.path().join("run-root"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tiny-tool 1.0\n");

    // Nothing written holds the password: release dir (tarball unpacked above, PEX and its
    // PEX-INFO inside), build info, manifests, the cache with its locks and pex's own root.
    let hits = files_holding(p.dir.path(), PASSWORD);
    assert!(hits.is_empty(), "the password was written to {hits:?}");
    assert!(
        !walk(&p.cache()).is_empty() && !walk(&p.work().join("hermit")).is_empty(),
        "the run wrote its cache and manifest where the grep looked"
    );
    let locks = walk(&p.cache().join("locks"));
    assert!(!locks.is_empty(), "the lock file was grepped");
    let lock = std::fs::read_to_string(&locks[0]).unwrap();
    assert!(lock.contains("/packages/tiny_tool-1.0"), "{lock}");
    assert!(
        !lock.contains(USER),
        "no user info in the lock's URLs: {lock}"
    );

    // The extra index was asked (pip merges indexes) but never given the credentials.
    let heads = extra.heads.lock().unwrap().clone();
    assert!(!heads.is_empty(), "pex asked the extra index too");
    for head in &heads {
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "credentials went to another index: {head}"
        );
    }
}

#[test]
fn without_credentials_or_with_wrong_ones_the_error_says_which_variables_to_set() {
    let p = Private::new();
    let (code, stdout, stderr) = p.run(&["plan"], &[]);
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains("it needs credentials"), "{stderr}");
    for var in [
        "HERMIT_PEX_INDEX_USERNAME",
        "HERMIT_PEX_INDEX_PASSWORD",
        "HERMIT_PEX_INDEX_TOKEN",
    ] {
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }

    let wrong = "wrong-Mv77pQ";
    let (code, stdout, stderr) = p.run(&["plan"], &[("HERMIT_PEX_INDEX_TOKEN", wrong)]);
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains("not accepted"), "{stderr}");
    assert!(
        !stderr.contains(wrong) && !stdout.contains(wrong),
        "{stderr}"
    );

    // A user:password in the URL works and is shown nowhere.
    let url = p
        .server
        .url
        .replacen("http://", &format!("http://{USER}:{PASSWORD}@"), 1);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hermit-pex"));
    let out = cmd
        .args(["plan", "--no-cache", "--index-url", &url])
        .current_dir(p.work())
        .env("HOME", p.dir.path())
        .env_remove("HERMIT_PEX_INDEX_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("tiny-tool"), "{stdout}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    // The user's netrc is read when the environment has nothing.
    write(
        &p.dir.path().join(".netrc"),
        &format!("machine 127.0.0.1 login {USER} password {PASSWORD}\n"),
    );
    let (code, stdout, stderr) = p.run(&["plan"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("tiny-tool"), "{stdout}");
}
