//! The GitHub manifest sink through the real octocrab client against the fake's git data and
//! contents API: one commit per sync, nothing written when nothing changed, a concurrent push
//! merged by re-rendering on the new head, never a forced update, and bad tokens said clearly.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::github::{FakeGitHub, Fault};
use hermit_pex::gitops::github::{GitHubSink, GitHubSinkConfig};
use hermit_pex::gitops::{ManifestSink, Rendered, SinkError, commit_message};
use hermit_pex::names::PackageName;
use hermit_pex::release::github::Token;
use pep440_rs::Version;

const TOKEN: &str = "ghp_TOKEN_THAT_MUST_NOT_LEAK";

fn sink(fake: &FakeGitHub, token: &str) -> GitHubSink {
    let mut config = GitHubSinkConfig::new("owner", "repo", "main");
    config.api_url = fake.api_url.clone();
    config.dir = "hermit".into();
    config.author_name = "Manifest Bot".into();
    config.author_email = "bot@example.com".into();
    GitHubSink::new(config, Token::new(token))
        .unwrap()
        .with_retries(3, Duration::from_millis(10))
}

fn pkg(name: &str) -> PackageName {
    PackageName::new(name).unwrap()
}

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn rendered(text: &str, added: &[&str]) -> Option<Rendered> {
    Some(Rendered {
        text: text.into(),
        added: added.iter().map(|a| v(a)).collect(),
    })
}

/// Methods of the requests the fake served, in order.
fn methods(fake: &FakeGitHub) -> Vec<String> {
    fake.requests().into_iter().map(|(m, _, _)| m).collect()
}

#[tokio::test]
async fn several_manifests_go_in_one_commit_on_top_of_what_is_committed() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    fake.push_commit("main", "hermit/black.hcl", "black 24\n", "black by hand");
    let seen = Mutex::new(vec![]);
    let render = |p: &PackageName, current: Option<&str>| {
        seen.lock()
            .unwrap()
            .push((p.to_string(), current.map(str::to_owned)));
        match p.as_str() {
            "aider-chat" => Ok(rendered("aider 0.86\n", &["0.86.0", "0.86.1"])),
            _ => Ok(rendered("black 24\nblack 25 ünïcode\n", &["25.1.0"])),
        }
    };
    let sink = sink(&fake, TOKEN);
    let out = sink
        .commit(&[pkg("aider-chat"), pkg("black")], &render)
        .await
        .unwrap();

    // Each render saw the committed text (base64 through the contents API).
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("aider-chat".into(), None),
            ("black".into(), Some("black 24\n".into()))
        ]
    );
    let changed = vec![
        (pkg("aider-chat"), vec![v("0.86.0"), v("0.86.1")]),
        (pkg("black"), vec![v("25.1.0")]),
    ];
    assert_eq!(out.changed, changed);
    assert!(out.failed.is_empty());
    let commits = fake.commits("main");
    assert_eq!(commits.len(), 3, "one new commit: {commits:?}");
    let (head, message) = &commits[0];
    assert_eq!(out.commit.as_deref(), Some(head.as_str()));
    assert_eq!(message, &commit_message(&changed));
    assert_eq!(
        message,
        "hermit: aider-chat 0.86.0, 0.86.1; black 25.1.0 [skip ci]"
    );
    let commit = fake.commit(head).unwrap();
    assert_eq!(
        commit.author,
        ("Manifest Bot".into(), "bot@example.com".into())
    );
    assert_eq!(commit.parents, [commits[1].0.clone()]);
    assert_eq!(
        fake.file_at("main", "hermit/aider-chat.hcl").as_deref(),
        Some("aider 0.86\n")
    );
    assert_eq!(
        fake.file_at("main", "hermit/black.hcl").as_deref(),
        Some("black 24\nblack 25 ünïcode\n")
    );
    assert_eq!(
        fake.file_at("main", "README.md").as_deref(),
        Some("# repo\n")
    );
    assert_eq!(fake.writes(), 3, "a tree, a commit, a ref update");
}

#[tokio::test]
async fn an_unchanged_run_writes_nothing() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let sink = sink(&fake, TOKEN);
    let pkgs = [pkg("a"), pkg("b"), pkg("c")];
    let render = |p: &PackageName, _: Option<&str>| Ok(rendered(&format!("{p} 1.0\n"), &["1.0"]));
    let first = sink.commit(&pkgs, &render).await.unwrap();
    assert_eq!(first.changed.len(), 3);
    // ref + commit, 3 reads, tree + commit + ref update.
    assert_eq!(sink.requests(), 8);
    let (commits, writes, served) = (fake.commits("main"), fake.writes(), fake.requests().len());

    let again = sink.commit(&pkgs, &render).await.unwrap();
    assert_eq!(again, Default::default());
    assert_eq!(sink.requests() - 8, 5, "ref + commit and 3 reads");
    assert_eq!(fake.writes(), writes);
    assert!(methods(&fake)[served..].iter().all(|m| m == "GET"));
    assert_eq!(fake.commits("main"), commits);

    // `Ok(None)` (leave as is) writes nothing either.
    let out = sink.commit(&pkgs, &|_, _| Ok(None)).await.unwrap();
    assert!(out.changed.is_empty() && out.commit.is_none());
    assert_eq!(fake.writes(), writes);
}

#[tokio::test]
async fn a_concurrent_push_is_merged_by_rendering_again_on_the_new_head() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    fake.race_next_ref_update("hermit/tool.hcl", "theirs\n");
    let calls = AtomicUsize::new(0);
    let render = |_: &PackageName, current: Option<&str>| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(rendered(
            &format!("{}ours\n", current.unwrap_or("")),
            &["2.0"],
        ))
    };
    let out = sink(&fake, TOKEN)
        .commit(&[pkg("tool")], &render)
        .await
        .unwrap();

    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "rendered again on the new head"
    );
    assert_eq!(
        fake.file_at("main", "hermit/tool.hcl").as_deref(),
        Some("theirs\nours\n")
    );
    let commits = fake.commits("main");
    let messages: Vec<&str> = commits.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(
        messages,
        [
            "hermit: tool 2.0 [skip ci]",
            "a concurrent push",
            "Initial commit"
        ]
    );
    assert_eq!(out.commit.as_ref(), Some(&commits[0].0));
    let ref_updates: Vec<u16> = fake
        .requests()
        .into_iter()
        .filter(|(m, _, _)| m == "PATCH")
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(ref_updates, [422, 200]);
}

#[tokio::test]
async fn a_branch_that_keeps_moving_is_never_forced() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    for _ in 0..5 {
        fake.inject(Fault::Status {
            method: "PATCH",
            path_contains: "/git/refs/heads/main",
            status: 409,
        });
    }
    let render = |_: &PackageName, _: Option<&str>| Ok(rendered("x\n", &[]));
    let err = sink(&fake, TOKEN)
        .commit(&[pkg("tool")], &render)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SinkError::GitHub(_)));
    assert!(
        msg.contains("5 attempts") && msg.contains("owner/repo branch main"),
        "{msg}"
    );
    assert_eq!(fake.commits("main").len(), 1);
    assert_eq!(fake.file_at("main", "hermit/tool.hcl"), None);
}

#[tokio::test]
async fn a_package_that_fails_to_render_is_reported_and_the_others_are_committed() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let render = |p: &PackageName, _: Option<&str>| match p.as_str() {
        "broken" => Err("digests disagree".to_owned()),
        _ => Ok(rendered("good\n", &["1.0"])),
    };
    let out = sink(&fake, TOKEN)
        .commit(&[pkg("broken"), pkg("good")], &render)
        .await
        .unwrap();
    assert_eq!(out.failed, [(pkg("broken"), "digests disagree".to_owned())]);
    assert_eq!(out.changed, [(pkg("good"), vec![v("1.0")])]);
    assert_eq!(
        fake.file_at("main", "hermit/good.hcl").as_deref(),
        Some("good\n")
    );
    assert_eq!(fake.file_at("main", "hermit/broken.hcl"), None);
    assert_eq!(fake.commits("main")[0].1, "hermit: good 1.0 [skip ci]");
}

#[tokio::test]
async fn server_errors_are_retried() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    for (method, path_contains) in [
        ("GET", "/contents/"),
        ("POST", "/git/trees"),
        ("PATCH", "/git/refs/"),
    ] {
        fake.inject(Fault::Status {
            method,
            path_contains,
            status: 502,
        });
    }
    let render = |_: &PackageName, _: Option<&str>| Ok(rendered("x\n", &[]));
    let sink = sink(&fake, TOKEN);
    let out = sink.commit(&[pkg("tool")], &render).await.unwrap();
    assert!(out.commit.is_some());
    // The run's last line says what the sink cost: every request, and the retries among them.
    let stats = sink.stats();
    assert_eq!(stats.requests, fake.requests().len() as u64);
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.rate_limit_waits, 0);
    assert_eq!(
        fake.file_at("main", "hermit/tool.hcl").as_deref(),
        Some("x\n")
    );
    let statuses: Vec<u16> = fake.requests().into_iter().map(|(_, _, s)| s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 502).count(), 3);
}

#[tokio::test]
async fn a_wrong_token_fails_clearly_writes_nothing_and_is_never_shown() {
    let fake = FakeGitHub::start("owner", "repo", TOKEN).await;
    let secret = "ghp_WRONG_SECRET_VALUE";
    let sink = sink(&fake, secret);
    let render = |_: &PackageName, _: Option<&str>| Ok(rendered("x\n", &[]));
    let err = sink.commit(&[pkg("tool")], &render).await.unwrap_err();
    let shown = format!("{err} {err:?} {sink:?}");
    assert!(err.to_string().contains("GITHUB_TOKEN"), "{err}");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!shown.contains("WRONG_SECRET"), "{shown}");
    assert_eq!(fake.writes(), 0);
    assert_eq!(fake.requests().len(), 1, "a 401 is not retried");
    assert_eq!(sink.requests(), 1);
    assert_eq!(fake.commits("main").len(), 1);
}
