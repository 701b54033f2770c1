use std::collections::BTreeMap;
use std::io::Write;

use super::*;
use crate::names::Platform;
use crate::release::dir::DirStore;
use crate::release::info::WheelRecord;
use crate::release::{
    BuildInfo, LockRecord, PlatformBuild, Target as BuildTarget, TestOutcome, Upload,
};

/// A small real wheel of `name` `version` (METADATA with `Requires-Python`, a module), as
/// bytes; `salt` changes its content (another build of the same name).
pub(crate) fn wheel_bytes(name: &str, version: &str, salt: &str) -> Vec<u8> {
    let dist = name.replace(['-', '.'], "_");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file(format!("{dist}/__init__.py"), opts).unwrap();
    zip.write_all(format!("# {salt}\n").as_bytes()).unwrap();
    zip.start_file(format!("{dist}-{version}.dist-info/METADATA"), opts)
        .unwrap();
    zip.write_all(
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8,<4\n\nA <description>.\n")
            .as_bytes(),
    )
    .unwrap();
    zip.finish().unwrap().into_inner()
}

fn new_file(dir: &Path, name: &str, version: &str, salt: &str) -> NewFile {
    let filename = format!(
        "{}-{version}-py3-none-any.whl",
        name.replace(['-', '.'], "_")
    );
    let path = dir.join(salt).join(&filename);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, wheel_bytes(name, version, salt)).unwrap();
    let (size, sha256) = crate::digest::sha256_file(&path).unwrap();
    NewFile {
        project: PackageName::new(name).unwrap(),
        filename,
        path,
        sha256,
        size,
        link: Link::Stored,
    }
}

fn mtimes(root: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
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

#[test]
fn a_directory_index_lists_stores_and_serves_metadata_and_rewrites_nothing_unchanged() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("simple");
    let a = new_file(work.path(), "Hello.Tool", "1.0.0", "a");
    assert_eq!(a.project.as_str(), "hello-tool");
    let change = tree::add(&root, std::slice::from_ref(&a)).unwrap();
    assert_eq!(
        change.added,
        [(
            a.project.clone(),
            "Hello_Tool-1.0.0-py3-none-any.whl".to_owned()
        )]
    );
    let mut written = change.written.clone();
    written.sort();
    assert_eq!(
        written,
        [
            "hello-tool/Hello_Tool-1.0.0-py3-none-any.whl",
            "hello-tool/Hello_Tool-1.0.0-py3-none-any.whl.metadata",
            "hello-tool/index.html",
            "hello-tool/index.json",
            "index.html"
        ]
    );
    let page = std::fs::read_to_string(root.join("hello-tool/index.html")).unwrap();
    let metadata =
        std::fs::read(root.join("hello-tool/Hello_Tool-1.0.0-py3-none-any.whl.metadata")).unwrap();
    assert!(
        String::from_utf8_lossy(&metadata).starts_with("Metadata-Version: 2.1\nName: Hello.Tool")
    );
    let m = crate::digest::sha256_hex(&metadata);
    assert!(
        page.contains(&format!(
            "<a href=\"Hello_Tool-1.0.0-py3-none-any.whl#sha256={}\" data-requires-python=\"&gt;=3.8,&lt;4\" data-dist-info-metadata=\"sha256={m}\" data-core-metadata=\"sha256={m}\">",
            a.sha256
        )),
        "{page}"
    );
    let root_page = std::fs::read_to_string(root.join("index.html")).unwrap();
    assert!(
        root_page.contains("<a href=\"hello-tool/\">hello-tool</a>"),
        "{root_page}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root.join("hello-tool/index.html"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "a web server of another user reads it");

    // The same file again: nothing is written, not even the pages.
    let before = mtimes(&root);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = tree::add(&root, std::slice::from_ref(&a)).unwrap();
    assert_eq!(again, TreeChange::default());
    assert_eq!(mtimes(&root), before, "no file rewritten");

    // Another build under the listed name is refused, naming both digests; the listed file
    // stays as it was. A new version beside it goes in.
    let b = new_file(work.path(), "hello-tool", "1.0.0", "b");
    assert_eq!(
        b.filename, "hello_tool-1.0.0-py3-none-any.whl",
        "another spelling"
    );
    let other = NewFile {
        filename: a.filename.clone(),
        ..b.clone()
    };
    let newer = new_file(work.path(), "hello-tool", "1.1.0", "c");
    let change = tree::add(&root, &[other.clone(), newer.clone()]).unwrap();
    assert_eq!(change.conflicts.len(), 1);
    let c = &change.conflicts[0];
    assert_eq!(
        (c.listed.as_str(), c.new.as_str()),
        (a.sha256.as_str(), b.sha256.as_str())
    );
    assert!(c.to_string().contains(&a.sha256) && c.to_string().contains(&b.sha256));
    assert_eq!(change.added.len(), 1);
    let (_, stored) =
        crate::digest::sha256_file(&root.join("hello-tool").join(&a.filename)).unwrap();
    assert_eq!(stored, a.sha256, "never overwritten");
    let list = tree::read_list(&root, &a.project).unwrap().unwrap();
    assert_eq!(list.versions, ["1.0.0", "1.1.0"]);
    assert_eq!(list.files.len(), 2);
}

#[test]
fn a_file_name_that_is_not_its_projects_is_refused_before_anything_is_written() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("simple");
    let a = new_file(work.path(), "hello-tool", "1.0.0", "a");
    for bad in [
        "../evil-1.0-py3-none-any.whl",
        "other-1.0-py3-none-any.whl",
        ".hello_tool-1.0-py3-none-any.whl",
        "hello_tool-1.0-py3-none-any.whl\n<script>",
    ] {
        let f = NewFile {
            filename: bad.into(),
            ..a.clone()
        };
        let e = tree::add(&root, &[f]).unwrap_err().to_string();
        assert!(
            e.contains("not the file name of a distribution of hello-tool"),
            "{e}"
        );
        assert!(!e.contains('\n'), "quoted, not echoed: {e}");
    }
    assert!(!root.exists());
}

#[test]
fn linked_files_point_at_their_release_asset_and_serve_no_metadata() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("simple");
    let url = asset_url(
        "https://github.com/acme/tools/releases/download/hello-tool-v${version}/hello-tool-${os}-${arch}.tar.gz",
        "hello-tool-v1.0.0",
        "hello_tool-1.0.0-py3-none-any.whl",
    )
    .unwrap();
    assert_eq!(
        url,
        "https://github.com/acme/tools/releases/download/hello-tool-v1.0.0/hello_tool-1.0.0-py3-none-any.whl"
    );
    let a = NewFile {
        link: Link::At(url.clone()),
        ..new_file(work.path(), "hello-tool", "1.0.0", "a")
    };
    tree::add(&root, std::slice::from_ref(&a)).unwrap();
    let page = std::fs::read_to_string(root.join("hello-tool/index.html")).unwrap();
    assert!(
        page.contains(&format!("href=\"{url}#sha256={}\"", a.sha256)),
        "{page}"
    );
    assert!(!page.contains("data-core-metadata"), "{page}");
    assert!(!root.join("hello-tool").join(&a.filename).exists());
}

fn spec() -> PackageSpec {
    let s = crate::spec::parse(
        "package: hello-tool\nsource:\n  git: \"file:///nowhere\"\nversions:\n  - version: \"1.0.0\"\n    python: \"3.12\"\nplatforms: [linux-amd64]\n",
    )
    .unwrap();
    s.validate().unwrap();
    s
}

/// A published release of `version` in `store`, built from Git with its wheel as an asset;
/// `test`: the outcome its build recorded.
async fn publish_git_version(
    store: &DirStore,
    work: &Path,
    version: &str,
    salt: &str,
    test: TestOutcome,
) -> (Release, NewFile) {
    let spec = spec();
    let v: Version = version.parse().unwrap();
    let iv = crate::pypi::IndexVersion::new(v.clone());
    let job = crate::build::VersionJob::new(&spec, &iv, spec.python_for(&v).unwrap());
    let release = store.create(&job.info()).await.unwrap();
    let wheel = new_file(work, "hello-tool", version, salt);
    store
        .upload(
            &release,
            Upload {
                name: &wheel.filename,
                path: &wheel.path,
                size: wheel.size,
                sha256: &wheel.sha256,
            },
        )
        .await
        .unwrap();
    let linux: Platform = "linux-amd64".parse().unwrap();
    let tarball = work.join(salt).join("hello-tool-linux-amd64.tar.gz");
    std::fs::write(&tarball, format!("tarball {salt}")).unwrap();
    let (size, sha256) = crate::digest::sha256_file(&tarball).unwrap();
    store
        .upload(
            &release,
            Upload {
                name: "hello-tool-linux-amd64.tar.gz",
                path: &tarball,
                size,
                sha256: &sha256,
            },
        )
        .await
        .unwrap();
    let mut info: BuildInfo = job.info();
    info.locked = Some(LockRecord {
        wheel: Some(WheelRecord {
            asset: wheel.filename.clone(),
            sha256: wheel.sha256.clone(),
            size: wheel.size,
        }),
        ..Default::default()
    });
    info.platforms.insert(
        linux,
        PlatformBuild {
            asset: "hello-tool-linux-amd64.tar.gz".into(),
            size,
            sha256,
            target: BuildTarget::Interpreter,
            test: Some(test),
            lock: None,
            tarball: PathBuf::new(),
            packages: Vec::new(),
        },
    );
    store.publish(&release, &info).await.unwrap();
    (release, wheel)
}

#[tokio::test]
async fn published_tested_git_versions_go_into_the_index_once() {
    let work = tempfile::tempdir().unwrap();
    let store = DirStore::new(work.path().join("releases"), None).unwrap();
    let (_, wheel) = publish_git_version(
        &store,
        work.path(),
        "1.0.0",
        "a",
        TestOutcome::Passed {
            command: "hello --help".into(),
        },
    )
    .await;
    publish_git_version(
        &store,
        work.path(),
        "1.1.0",
        "b",
        TestOutcome::NotTried {
            why: "cross-built".into(),
        },
    )
    .await;
    let spec = spec();
    let releases = store.releases(&spec.package).await.unwrap();
    let offered = offered(&spec, &releases, false);
    assert_eq!(
        offered
            .iter()
            .map(|o| o.filename.as_str())
            .collect::<Vec<_>>(),
        ["hello_tool-1.0.0-py3-none-any.whl"],
        "1.1.0's test never ran: it is not offered"
    );
    let index = WheelIndex::new(Target::Dir(work.path().join("simple")));
    let sources = Sources {
        store: &store,
        fetcher: None,
        scratch: &work.path().join("scratch"),
    };
    let out = index_package(&index, &sources, &spec, &releases)
        .await
        .unwrap();
    assert_eq!(out.added.len(), 1, "{out:?}");
    assert!(out.conflicts.is_empty() && out.failed.is_empty(), "{out:?}");
    let stored = work.path().join("simple/hello-tool").join(&wheel.filename);
    assert_eq!(crate::digest::sha256_file(&stored).unwrap().1, wheel.sha256);

    // Known now: the next run asks the target nothing; a fresh process reads the list.
    let again = index_package(&index, &sources, &spec, &releases)
        .await
        .unwrap();
    assert_eq!(again, IndexOutcome::default());
    let fresh = WheelIndex::new(Target::Dir(work.path().join("simple")));
    let again = index_package(&fresh, &sources, &spec, &releases)
        .await
        .unwrap();
    assert_eq!(again, IndexOutcome::default());
}

#[tokio::test]
async fn a_git_index_commits_once_per_change_with_skip_ci() {
    let work = tempfile::tempdir().unwrap();
    let bare = work.path().join("index.git");
    let run = |args: &[&str], dir: &Path| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    std::fs::create_dir_all(&bare).unwrap();
    run(&["init", "-q", "--bare", "-b", "main"], &bare);
    let sink = GitSink::new(crate::gitops::git::GitSinkConfig {
        url: format!("file://{}", bare.display()),
        branch: "main".into(),
        dir: "simple".into(),
        author_name: "t".into(),
        author_email: "t@example.com".into(),
        checkout: work.path().join("checkout"),
        attempts: 3,
    });
    let index = WheelIndex::new(Target::Git(sink));
    let a = new_file(work.path(), "hello-tool", "1.0.0", "a");
    let out = index.add(vec![a.clone()]).await.unwrap();
    assert!(out.commit.is_some());
    let again = index.add(vec![a.clone()]).await.unwrap();
    assert_eq!(again.commit, None, "nothing changed: no commit");
    let log = run(&["log", "--format=%s", "main"], &bare);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["wheels: hello_tool-1.0.0-py3-none-any.whl [skip ci]"]
    );
    let files = run(&["ls-tree", "-r", "--name-only", "main"], &bare);
    let mut files: Vec<&str> = files.lines().collect();
    files.sort();
    assert_eq!(
        files,
        [
            "simple/hello-tool/hello_tool-1.0.0-py3-none-any.whl",
            "simple/hello-tool/hello_tool-1.0.0-py3-none-any.whl.metadata",
            "simple/hello-tool/index.html",
            "simple/hello-tool/index.json",
            "simple/index.html"
        ]
    );
    let lists = index.listed(vec![a.project.clone()]).await.unwrap();
    assert_eq!(lists[&a.project].files[0].sha256(), Some(a.sha256.as_str()));
}

/// A repository index's settings are checked when opened; the error names the flag and the
/// rule, never the value.
#[test]
fn a_repository_index_outside_its_repository_or_without_an_author_is_refused_unshown() {
    let cache = tempfile::tempdir().unwrap();
    let repo = |path: &str| RepoIndex {
        url: "https://git.example.com/org/wheels.git".into(),
        branch: "main".into(),
        path: path.into(),
        links: Links::Stored,
        locked: false,
    };
    let author = "hermit-pex <bot@example.com>";
    for bad in ["../secret-dir", "/etc/x"] {
        let e = repo(bad)
            .open(author, cache.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--wheel-index-path") && e.contains("inside"),
            "{e}"
        );
        assert!(!e.contains(bad), "{e}");
    }
    let e = repo("simple")
        .open("no-email-here-xyz", cache.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("--git-author") && !e.contains("no-email-here-xyz"),
        "{e}"
    );
    let index = repo("public/simple").open(author, cache.path()).unwrap();
    assert!(matches!(index.target, Target::Git(_)));
}
