//! Checks the fake GitHub releases API (`common::github`) against the real octocrab client, so
//! the GitHub store's tests can trust it.
mod common;

use axum::body::Bytes;
use common::github::{FakeGitHub, Fault};
use octocrab::Octocrab;
use sha2::{Digest, Sha256};

const OWNER: &str = "hermit-pex";
const REPO: &str = "packages";
const TOKEN: &str = "ghp_fake_token";

fn client(gh: &FakeGitHub, token: &str) -> Octocrab {
    Octocrab::builder()
        .base_uri(gh.api_url.as_str())
        .unwrap()
        .personal_token(token.to_owned())
        .build()
        .unwrap()
}

/// The GitHub error inside an octocrab error (panics on any other kind).
fn gh_error(e: octocrab::Error) -> Box<octocrab::GitHubError> {
    match e {
        octocrab::Error::GitHub { source, .. } => source,
        other => panic!("expected a GitHub error, got {other:?}"),
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[tokio::test]
async fn draft_upload_list_publish() {
    let gh = FakeGitHub::start(OWNER, REPO, TOKEN).await;
    let octo = client(&gh, TOKEN);
    let repo = octo.repos(OWNER, REPO);
    let releases = repo.releases();
    let data = b"pex bytes".repeat(1000);

    let draft = releases.create("v1").draft(true).send().await.unwrap();
    assert!(draft.draft);
    assert_eq!(draft.immutable, Some(false));
    assert!(
        draft.upload_url.ends_with("/assets{?name,label}"),
        "{}",
        draft.upload_url
    );

    let asset = releases
        .upload_asset(draft.id.0, "a.tar.gz", Bytes::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (asset.size, asset.state.as_str()),
        (data.len() as i64, "uploaded")
    );
    assert_eq!(asset.digest.as_deref(), Some(digest(&data).as_str()));
    assert_eq!(asset.content_type, "application/octet-stream");
    // A draft has no tag yet: its download URLs use a placeholder.
    assert!(
        asset
            .browser_download_url
            .as_str()
            .contains("/download/untagged-")
    );
    // octocrab GETs the release to learn its upload_url, then POSTs there.
    let log = gh.requests();
    let paths: Vec<&str> = log.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(
        paths[1..],
        [
            "/repos/hermit-pex/packages/releases/1",
            "/uploads/repos/hermit-pex/packages/releases/1/assets?name=a.tar.gz"
        ]
    );

    let page = releases.list().per_page(100).send().await.unwrap();
    assert_eq!(page.items.len(), 1);
    let listed = &page.items[0].assets[0];
    assert_eq!(listed.size, data.len() as i64);
    assert_eq!(listed.digest.as_deref(), Some(digest(&data).as_str()));
    assert!(page.next.is_none());

    // GitHub hides drafts from get-by-tag.
    let e = gh_error(releases.get_by_tag("v1").await.unwrap_err());
    assert_eq!(e.status_code.as_u16(), 404);

    let again = releases.upload_asset(draft.id.0, "a.tar.gz", Bytes::from_static(b"x"));
    let e = gh_error(again.send().await.unwrap_err());
    assert_eq!(e.status_code.as_u16(), 422);
    assert_eq!(e.errors.unwrap()[0]["code"], "already_exists");

    let published = releases
        .update(draft.id.0)
        .draft(false)
        .make_latest(octocrab::repos::releases::MakeLatest::True)
        .send()
        .await
        .unwrap();
    assert!(!published.draft && published.published_at.is_some());
    assert_eq!(published.immutable, Some(true));
    let by_tag = releases.get_by_tag("v1").await.unwrap();
    assert_eq!(by_tag.id, draft.id);
    assert_eq!(
        by_tag.assets[0].browser_download_url.as_str(),
        "https://github.com/hermit-pex/packages/releases/download/v1/a.tar.gz"
    );

    let late = releases.upload_asset(draft.id.0, "b.tar.gz", Bytes::from_static(b"b"));
    let e = gh_error(late.send().await.unwrap_err());
    assert_eq!(e.status_code.as_u16(), 422);
    assert_eq!(e.message, "Cannot upload assets to an immutable release.");

    assert_eq!(gh.asset_bytes("v1", "a.tar.gz"), Some(data));
    assert_eq!(gh.asset_bytes("v1", "b.tar.gz"), None);
    let make_latest = gh.state.lock().unwrap().make_latest.clone();
    assert_eq!(make_latest, [("v1".to_owned(), "true".to_owned())]);
    // create, upload, publish; the refused calls are no writes.
    assert_eq!(gh.writes(), 3);
}

#[tokio::test]
async fn lists_250_releases_in_pages() {
    let gh = FakeGitHub::start(OWNER, REPO, TOKEN).await;
    for i in 0..250 {
        gh.seed_release(&format!("v{i}"), i % 7 == 0, &[("x.pex", b"x")]);
    }
    let octo = client(&gh, TOKEN);

    let first = octo
        .repos(OWNER, REPO)
        .releases()
        .list()
        .send()
        .await
        .unwrap();
    assert_eq!(first.items.len(), 30, "GitHub's default per_page");

    let first = octo
        .repos(OWNER, REPO)
        .releases()
        .list()
        .per_page(100)
        .send()
        .await
        .unwrap();
    assert_eq!(first.items.len(), 100);
    let next = first.next.clone().unwrap().to_string();
    let repo_id = common::github::REPO_ID;
    assert!(
        next.ends_with(&format!(
            "/repositories/{repo_id}/releases?per_page=100&page=2"
        )),
        "{next}"
    );
    assert!(first.last.as_ref().unwrap().to_string().ends_with("page=3"));
    assert!(first.prev.is_none() && first.first.is_none());

    let all = octo.all_pages(first).await.unwrap();
    let ids: Vec<u64> = all.iter().map(|r| r.id.0).collect();
    assert_eq!(
        ids,
        (1..=250).rev().collect::<Vec<u64>>(),
        "newest first, each once"
    );
    assert_eq!(
        all.iter().filter(|r| r.draft).count(),
        36,
        "drafts are listed"
    );
    let lists = gh
        .requests()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.contains("releases?"))
        .count();
    assert_eq!(lists, 4);

    let last = octo
        .repos(OWNER, REPO)
        .releases()
        .list()
        .per_page(100)
        .page(3u32)
        .send()
        .await
        .unwrap();
    assert_eq!(last.items.len(), 50);
    assert!(last.next.is_none() && last.prev.is_some() && last.first.is_some());
}

#[tokio::test]
async fn conditional_get_is_304_until_the_list_changes() {
    let gh = FakeGitHub::start(OWNER, REPO, TOKEN).await;
    gh.seed_release("v1", false, &[("a.pex", b"a")]);
    let octo = client(&gh, TOKEN);
    let uri = format!("{}repos/{OWNER}/{REPO}/releases?per_page=100", gh.api_url);

    let first = octo._get(uri.as_str()).await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].clone();
    assert!(etag.to_str().unwrap().starts_with("W/\""), "{etag:?}");
    let remaining = first.headers()["x-ratelimit-remaining"].clone();

    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::IF_NONE_MATCH, etag.clone());
    let cached = octo
        ._get_with_headers(uri.as_str(), Some(headers.clone()))
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(
        cached.headers()["x-ratelimit-remaining"],
        remaining,
        "a 304 is free"
    );
    assert_eq!(octo.body_to_string(cached).await.unwrap(), "");

    gh.seed_release("v2", false, &[]);
    let changed = octo
        ._get_with_headers(uri.as_str(), Some(headers))
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag);
}

#[tokio::test]
async fn a_bad_token_gets_401() {
    let gh = FakeGitHub::start(OWNER, REPO, TOKEN).await;
    let e = client(&gh, "ghp_wrong")
        .repos(OWNER, REPO)
        .releases()
        .list()
        .send()
        .await;
    let e = gh_error(e.unwrap_err());
    assert_eq!(
        (e.status_code.as_u16(), e.message.as_str()),
        (401, "Bad credentials")
    );

    // No token at all, and the older `token` scheme with the right one.
    let http = reqwest::Client::new();
    let url = format!("{}repos/{OWNER}/{REPO}/releases", gh.api_url);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let ok = http
        .get(&url)
        .header("authorization", format!("token {TOKEN}"))
        .send()
        .await;
    let ok = ok.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(ok.headers()["x-ratelimit-limit"], "5000");
}

#[tokio::test]
async fn faults_are_served_once() {
    let gh = FakeGitHub::start(OWNER, REPO, TOKEN).await;
    let id = gh.seed_release("v1", true, &[]);
    let octo = client(&gh, TOKEN);
    let repo = octo.repos(OWNER, REPO);
    let releases = repo.releases();

    gh.inject(Fault::Status {
        method: "GET",
        path_contains: "/releases",
        status: 500,
    });
    let e = gh_error(releases.list().send().await.unwrap_err());
    assert_eq!(e.status_code.as_u16(), 500);
    assert_eq!(releases.list().send().await.unwrap().items.len(), 1);

    gh.inject(Fault::RateLimit {
        method: "*",
        path_contains: "/releases",
        reset_in_secs: 60,
    });
    let e = gh_error(releases.get(id).await.unwrap_err());
    assert_eq!(e.status_code.as_u16(), 403);
    assert!(
        e.message.starts_with("API rate limit exceeded"),
        "{}",
        e.message
    );
    assert_eq!(e.headers.as_ref().unwrap()["x-ratelimit-remaining"], "0");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let reset = e.rate_limit_reset.unwrap();
    assert!(
        (now.as_secs() + 59..=now.as_secs() + 61).contains(&reset),
        "{reset}"
    );
    assert_eq!(releases.get(id).await.unwrap().id.0, id);

    // A broken upload leaves a "starter" asset that holds the name until it is deleted.
    gh.inject(Fault::BrokenUpload);
    let body = Bytes::from(vec![7u8; 1000]);
    let e = releases
        .upload_asset(id, "a.pex", body.clone())
        .send()
        .await;
    assert_eq!(gh_error(e.unwrap_err()).status_code.as_u16(), 502);
    let starter = gh.releases()[0].assets[0].clone();
    assert_eq!(
        (starter.state.as_str(), starter.bytes.len()),
        ("starter", 500)
    );
    let listed = releases.assets(id).send().await.unwrap().items;
    assert_eq!(
        (
            listed[0].state.as_str(),
            listed[0].size,
            listed[0].digest.clone()
        ),
        ("starter", 500, None)
    );
    let e = releases
        .upload_asset(id, "a.pex", body.clone())
        .send()
        .await;
    assert_eq!(gh_error(e.unwrap_err()).status_code.as_u16(), 422);
    repo.release_assets().delete(starter.id).await.unwrap();
    let asset = releases
        .upload_asset(id, "a.pex", body)
        .send()
        .await
        .unwrap();
    assert_eq!((asset.state.as_str(), asset.size), ("uploaded", 1000));
    assert_eq!(gh.writes(), 2, "the delete and the last upload");
    assert!(gh.state.lock().unwrap().faults.is_empty());
}

#[tokio::test]
async fn published_releases_are_immutable() {
    let gh = FakeGitHub::start(OWNER, REPO, TOKEN).await;
    let id = gh.seed_release("v1", false, &[("a.pex", b"a")]);
    let octo = client(&gh, TOKEN);
    let repo = octo.repos(OWNER, REPO);
    let releases = repo.releases();
    let asset_id = gh.releases()[0].assets[0].id;

    // octocrab's delete ignores the status: only the fake's log shows the refusal.
    repo.release_assets().delete(asset_id).await.unwrap();
    assert_eq!(gh.requests().last().unwrap().2, 422);
    assert_eq!(gh.asset_bytes("v1", "a.pex").as_deref(), Some(&b"a"[..]));

    let e = gh_error(releases.create("v1").send().await.unwrap_err());
    assert_eq!(e.status_code.as_u16(), 422);
    assert_eq!(e.errors.unwrap()[0]["field"], "tag_name");

    // Two drafts may share a tag; only one can be published.
    let a = releases.create("v2").draft(true).send().await.unwrap();
    let b = releases.create("v2").draft(true).send().await.unwrap();
    assert_ne!(a.id, b.id);
    releases.update(a.id.0).draft(false).send().await.unwrap();
    let e = releases
        .update(b.id.0)
        .draft(false)
        .send()
        .await
        .unwrap_err();
    assert_eq!(gh_error(e).status_code.as_u16(), 422);

    // Deleting an immutable release does not free its tag.
    releases.delete(id).await.unwrap();
    assert_eq!(gh.requests().last().unwrap().2, 204);
    let e = releases.create("v1").send().await.unwrap_err();
    assert_eq!(gh_error(e).status_code.as_u16(), 422);
}

#[tokio::test]
async fn takes_a_50mb_chunked_upload() {
    let gh = FakeGitHub::start(OWNER, REPO, TOKEN).await;
    let id = gh.seed_release("v1", true, &[]);
    let data: Vec<u8> = (0..50_000_000u32).map(|i| (i % 251) as u8).collect();
    let url = format!(
        "{}uploads/repos/{OWNER}/{REPO}/releases/{id}/assets?name=big.pex",
        gh.api_url
    );
    let http = reqwest::Client::new();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(1 << 20).map(|c| Ok(c.to_vec())).collect();

    let no_type = http
        .post(&url)
        .bearer_auth(TOKEN)
        .body(Bytes::from_static(b"x"))
        .send()
        .await;
    assert_eq!(no_type.unwrap().status(), 400, "Content-Type is required");

    let response = http
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let asset: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(asset["size"], 50_000_000);
    assert_eq!(asset["digest"], digest(&data));
    assert_eq!(
        gh.asset_bytes("v1", "big.pex").map(|b| b.len()),
        Some(50_000_000)
    );
}
