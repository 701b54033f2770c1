//! A tool that follows a branch of a Git repository (`source: {git: URL, branch: main}`),
//! with the real git, pex and uv: the head is built as the version the project declares
//! there; a new head declaring a published version is reported and not rebuilt; a new
//! version is built beside it; a dynamic version is learned from the wheel uv builds.

mod common;

use common::*;

fn setup() -> GitProject {
    git_project("  branch: main\n")
}

/// The tags released into `dist/releases`.
fn released(s: &GitProject) -> Vec<String> {
    let mut tags: Vec<String> = std::fs::read_dir(s.work.join("dist/releases"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

#[test]
fn a_branch_head_is_built_as_the_version_it_declares_and_a_moved_head_is_reported() {
    let s = setup();
    let first = commit_hello(&s.repo, "1.0.0", "hello one");

    let (code, stdout, stderr) = s.run("plan", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("branch main at {} declares 1.0.0", &first[..12])),
        "plan shows the head and its version: {stdout}"
    );
    assert!(
        stdout.contains("1.0.0") && stdout.contains("new"),
        "{stdout}"
    );

    let (code, _, stderr) = s.run("sync", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(released(&s), ["hello-tool-v1.0.0"]);
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            s.work
                .join("dist/releases/hello-tool-v1.0.0/build-info.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(info["inputs"]["source"]["tag"], "main", "{info}");
    assert_eq!(info["inputs"]["source"]["commit"], first.as_str());
    assert!(
        s.work
            .join("dist/simple/hello-tool/hello_tool-1.0.0-py3-none-any.whl")
            .is_file(),
        "the branch's wheel is indexed too"
    );

    // A new head that declares the published version: said, not rebuilt.
    let second = commit_hello(&s.repo, "1.0.0", "hello one, changed");
    let (code, _, stderr) = s.run("sync", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the branch main moved from {first} (published) to {second}, which declares 1.0.0 too: not rebuilt"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("built hello-tool"), "{stderr}");
    assert_eq!(released(&s), ["hello-tool-v1.0.0"]);

    // A new version on the branch is built beside it.
    let third = commit_hello(&s.repo, "1.1.0", "hello two");
    let (code, _, stderr) = s.run("sync", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("branch main at {} declares 1.1.0", &third[..12])),
        "{stderr}"
    );
    assert_eq!(released(&s), ["hello-tool-v1.0.0", "hello-tool-v1.1.0"]);
    let manifest = std::fs::read_to_string(s.work.join("hermit/hello-tool.hcl")).unwrap();
    assert!(
        manifest.contains("version \"1.0.0\"") && manifest.contains("version \"1.1.0\""),
        "{manifest}"
    );
}

#[test]
fn a_dynamic_version_is_learned_from_the_wheel_uv_builds() {
    let s = setup();
    let project = s.repo.join("tools/hello");
    write(
        &project.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"hello-tool\"\ndynamic = [\"version\"]\n\n[project.scripts]\nhello = \"hello:main\"\n\n\
         [tool.setuptools.dynamic]\nversion = {attr = \"hello.__version__\"}\n",
    );
    write(
        &project.join("hello/__init__.py"),
        "__version__ = '2.5.0'\ndef main():\n    print('hello dynamic')\n",
    );
    git(&s.repo, &["add", "-A"]);
    git(&s.repo, &["commit", "-q", "-m", "dynamic"]);
    let head = git(&s.repo, &["rev-parse", "HEAD"]);
    let (code, stdout, stderr) = s.run("plan", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("branch main at {} declares 2.5.0", &head[..12])),
        "{stdout}\n{stderr}"
    );
}
