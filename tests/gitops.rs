//! Manifests committed to a real bare Git repository with the real `git`: first commit, no
//! empty commits, a concurrent push retried on the new head, a hand-edited manifest reported.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use hermit_pex::gitops::git::{GitSink, GitSinkConfig};
use hermit_pex::gitops::{ManifestSink, Rendered};
use hermit_pex::names::PackageName;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=other",
            "-c",
            "user.email=other@example.org",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        Self { dir }
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().join("remote.git").display())
    }

    fn sink(&self, dir: &str) -> GitSink {
        GitSink::new(GitSinkConfig {
            url: self.url(),
            branch: "main".into(),
            dir: dir.into(),
            author_name: "hermit-pex".into(),
            author_email: "hermit-pex@example.org".into(),
            checkout: self.dir.path().join("checkout"),
            attempts: 5,
        })
    }

    fn bare(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    fn log(&self) -> Vec<String> {
        git(&self.bare(), &["log", "--format=%s|%an", "main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn show(&self, path: &str) -> String {
        git(&self.bare(), &["show", &format!("main:{path}")])
    }

    /// Another writer: clones, commits `path`, pushes.
    fn push_from_elsewhere(&self, path: &str, content: &str) {
        let other = self.dir.path().join(format!("other-{}", rand_suffix()));
        let status = Command::new("git")
            .args(["clone", "-q", &self.url()])
            .arg(&other)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(other.join(path), content).unwrap();
        git(&other, &["add", path]);
        git(&other, &["commit", "-q", "-m", "someone else"]);
        git(&other, &["push", "-q", "origin", "HEAD:main"]);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn pkg(name: &str) -> PackageName {
    PackageName::new(name).unwrap()
}

fn rendered(text: &str, versions: &[&str]) -> Rendered {
    Rendered {
        text: text.into(),
        added: versions.iter().map(|v| v.parse().unwrap()).collect(),
    }
}

#[tokio::test]
async fn first_commit_then_no_empty_commits() {
    let repo = Repo::new();
    let sink = repo.sink("");
    let render = |p: &PackageName, _: Option<&str>| -> Result<Option<Rendered>, String> {
        Ok(Some(rendered(
            &format!("description = \"{p}\"\n"),
            &["1.0", "1.1"],
        )))
    };
    let out = sink
        .commit(&[pkg("aider-chat"), pkg("black")], &render)
        .await
        .unwrap();
    assert_eq!(out.changed.len(), 2);
    assert!(out.commit.is_some());
    assert_eq!(
        repo.log(),
        ["hermit: aider-chat 1.0, 1.1; black 1.0, 1.1 [skip ci]|hermit-pex"]
    );
    assert_eq!(
        repo.show("aider-chat.hcl"),
        "description = \"aider-chat\"\n"
    );

    let out = sink
        .commit(&[pkg("aider-chat"), pkg("black")], &render)
        .await
        .unwrap();
    assert!(out.changed.is_empty() && out.commit.is_none());
    assert_eq!(repo.log().len(), 1, "no empty commit");
}

#[tokio::test]
async fn a_concurrent_push_is_merged_by_rendering_again_on_the_new_head() {
    let repo = Repo::new();
    repo.push_from_elsewhere("README.md", "manifests\n");
    let sink = repo.sink("manifests");
    let calls = AtomicUsize::new(0);
    let render = |_: &PackageName, current: Option<&str>| -> Result<Option<Rendered>, String> {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            // Between our fetch and our push, someone else pushes.
            repo.push_from_elsewhere("other.hcl", "description = \"other\"\n");
        }
        Ok(Some(rendered(
            &format!("{}v2\n", current.unwrap_or("")),
            &["2.0"],
        )))
    };
    let out = sink.commit(&[pkg("tool")], &render).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "rendered again after the rejected push"
    );
    assert!(out.commit.is_some());
    assert_eq!(
        repo.show("other.hcl"),
        "description = \"other\"\n",
        "their change is kept"
    );
    assert_eq!(
        repo.show("manifests/tool.hcl"),
        "v2\n",
        "ours is there, in the configured directory"
    );
    assert_eq!(repo.log()[0], "hermit: tool 2.0 [skip ci]|hermit-pex");
}

#[tokio::test]
async fn a_package_that_cannot_be_rendered_is_reported_and_the_others_go_in() {
    let repo = Repo::new();
    let sink = repo.sink("");
    let render = |p: &PackageName, _: Option<&str>| -> Result<Option<Rendered>, String> {
        if p.as_str() == "bad" {
            Err("the manifest was edited by hand (env)".into())
        } else {
            Ok(Some(rendered("ok\n", &["1"])))
        }
    };
    let out = sink
        .commit(&[pkg("bad"), pkg("good")], &render)
        .await
        .unwrap();
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].0.as_str(), "bad");
    assert_eq!(repo.show("good.hcl"), "ok\n");
    assert_eq!(repo.log(), ["hermit: good 1 [skip ci]|hermit-pex"]);
}

#[tokio::test]
async fn an_unreachable_remote_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let sink = GitSink::new(GitSinkConfig {
        url: format!("file://{}/nowhere.git", dir.path().display()),
        branch: "main".into(),
        dir: String::new(),
        author_name: "a".into(),
        author_email: "a@b".into(),
        checkout: dir.path().join("checkout"),
        attempts: 2,
    });
    let render =
        |_: &PackageName, _: Option<&str>| -> Result<Option<Rendered>, String> { Ok(None) };
    let err = sink.commit(&[pkg("x")], &render).await.unwrap_err();
    assert!(err.to_string().contains("nowhere.git"), "{err}");
}
