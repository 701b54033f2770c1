//! A stateful fake of GitHub's releases REST API on loopback, to drive the GitHub store through the
//! real octocrab client. Bodies have the shape api.github.com sends (every field octocrab 0.54.9's
//! `Release` / `Asset` / `Author` require), and the repository acts as if "immutable releases" is
//! on: a published release can gain or lose no asset, and its tag can never be used again.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

/// The repository's numeric id. GitHub's `Link` headers point at `/repositories/{id}/…`, not at
/// `/repos/{owner}/{repo}/…`, so the fake pages that way too and serves both forms.
pub const REPO_ID: u64 = 1_296_269;
const RATE_LIMIT: u64 = 5000;
/// Largest request body accepted: the tests upload 50 MB (GitHub itself takes up to 2 GiB).
const MAX_BODY: usize = 64 << 20;
const DOCS: &str = "https://docs.github.com/rest";

/// A failure served once, instead of the normal answer, to the next request it matches.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers `status` with a JSON message. `method` "*" matches any method; `path_contains` is
    /// looked for in the path and query.
    Status {
        method: &'static str,
        path_contains: &'static str,
        status: u16,
    },
    /// GitHub's primary rate limit: 403, `x-ratelimit-remaining: 0`, reset `reset_in_secs` from now.
    RateLimit {
        method: &'static str,
        path_contains: &'static str,
        reset_in_secs: u64,
    },
    /// The next upload reads the body, leaves a half-written asset in state "starter" and answers
    /// 502, as GitHub does when an upload breaks: the name stays taken until that asset is deleted.
    BrokenUpload,
    /// The request is carried out, then its answer is lost: `status` comes back instead (a
    /// proxy's 502 after GitHub made the release).
    Lost {
        method: &'static str,
        path_contains: &'static str,
        status: u16,
    },
}

impl Fault {
    fn matches(&self, method: &str, path_and_query: &str) -> bool {
        let (m, p) = match self {
            Fault::Status {
                method,
                path_contains,
                ..
            } => (*method, *path_contains),
            Fault::RateLimit {
                method,
                path_contains,
                ..
            } => (*method, *path_contains),
            Fault::BrokenUpload => ("POST", "/uploads/"),
            Fault::Lost {
                method,
                path_contains,
                ..
            } => (*method, *path_contains),
        };
        (m == "*" || m.eq_ignore_ascii_case(method)) && path_and_query.contains(p)
    }
}

#[derive(Clone, Debug)]
pub struct FakeAsset {
    pub id: u64,
    pub name: String,
    pub label: Option<String>,
    pub content_type: String,
    /// "uploaded", or "starter" after a broken upload.
    pub state: String,
    pub bytes: Vec<u8>,
    pub created_at: String,
}

#[derive(Clone, Debug)]
pub struct FakeRelease {
    pub id: u64,
    pub tag: String,
    pub name: Option<String>,
    pub body: Option<String>,
    pub draft: bool,
    pub prerelease: bool,
    pub target_commitish: String,
    pub created_at: String,
    pub published_at: Option<String>,
    pub assets: Vec<FakeAsset>,
}

impl FakeRelease {
    /// The tag as it shows in web URLs: a draft has no tag yet, GitHub shows `untagged-<hex>`
    /// (in its assets' `browser_download_url` too) until it is published.
    fn url_tag(&self) -> String {
        match self.draft {
            true => format!(
                "untagged-{:020x}",
                self.id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ),
            false => self.tag.clone(),
        }
    }
}

pub struct GhState {
    pub owner: String,
    pub repo: String,
    pub api_url: String,
    token: String,
    pub releases: BTreeMap<u64, FakeRelease>,
    /// `(tag, value)` of every `make_latest` received, on create or update.
    pub make_latest: Vec<(String, String)>,
    /// Tags of releases ever published: immutable releases reserve their tag even once deleted.
    pub burnt_tags: HashSet<String>,
    pub faults: VecDeque<Fault>,
    /// (method, path and query, status) of every request served.
    pub log: Vec<(String, String, u16)>,
    next_release_id: u64,
    next_asset_id: u64,
    rate_remaining: u64,
    rate_reset: u64,
    /// The repository's git objects, for the git data and contents endpoints.
    pub git: GitStore,
}

/// The fake, serving until dropped.
pub struct FakeGitHub {
    /// `http://127.0.0.1:PORT/`, for octocrab's `base_uri`.
    pub api_url: String,
    pub state: Arc<Mutex<GhState>>,
    _shutdown: oneshot::Sender<()>,
}

impl FakeGitHub {
    /// Serves `owner/repo` to clients authenticated with `token`.
    pub async fn start(owner: &str, repo: &str, token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!(
            "http://127.0.0.1:{}/",
            listener.local_addr().unwrap().port()
        );
        let state = Arc::new(Mutex::new(GhState {
            owner: owner.into(),
            repo: repo.into(),
            api_url: api_url.clone(),
            token: token.into(),
            releases: BTreeMap::new(),
            make_latest: vec![],
            burnt_tags: HashSet::new(),
            faults: VecDeque::new(),
            log: vec![],
            next_release_id: 1,
            next_asset_id: 1,
            rate_remaining: RATE_LIMIT,
            rate_reset: now() + 3600,
            git: GitStore::seeded(),
        }));
        let app = Router::new()
            .fallback(serve)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .unwrap();
        });
        Self {
            api_url,
            state,
            _shutdown: tx,
        }
    }

    /// Adds a release (published unless `draft`) with fully uploaded assets; returns its id.
    pub fn seed_release(&self, tag: &str, draft: bool, assets: &[(&str, &[u8])]) -> u64 {
        let mut s = self.state.lock().unwrap();
        let id = s.add_release(&json!({"tag_name": tag, "name": tag, "draft": draft}));
        for (name, bytes) in assets {
            s.add_asset(
                id,
                name,
                None,
                "application/octet-stream",
                bytes,
                "uploaded",
            );
        }
        id
    }

    /// All releases, oldest first, with their assets' bytes.
    pub fn releases(&self) -> Vec<FakeRelease> {
        self.state
            .lock()
            .unwrap()
            .releases
            .values()
            .cloned()
            .collect()
    }

    /// The bytes of asset `name` on the first release tagged `tag` that has one (drafts included).
    pub fn asset_bytes(&self, tag: &str, name: &str) -> Option<Vec<u8>> {
        let s = self.state.lock().unwrap();
        let mut assets = s
            .releases
            .values()
            .filter(|r| r.tag == tag)
            .flat_map(|r| &r.assets);
        assets.find(|a| a.name == name).map(|a| a.bytes.clone())
    }

    /// (method, path and query, status) of every request served, in order.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.state.lock().unwrap().log.clone()
    }

    /// How many POST/PATCH/PUT/DELETE requests were answered 2xx.
    pub fn writes(&self) -> usize {
        let write = |m: &str| matches!(m, "POST" | "PATCH" | "PUT" | "DELETE");
        let ok = |status: &u16| (200..300).contains(status);
        let s = self.state.lock().unwrap();
        s.log
            .iter()
            .filter(|(m, _, status)| write(m) && ok(status))
            .count()
    }

    /// Queues `fault` for the next request it matches.
    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }
}

/// An answer before the common headers are added.
struct Reply {
    status: u16,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
}

fn reply(status: u16, v: Value) -> Reply {
    Reply {
        status,
        body: Some(v.to_string()),
        headers: vec![],
    }
}

fn empty(status: u16) -> Reply {
    Reply {
        status,
        body: None,
        headers: vec![],
    }
}

/// GitHub's error body (which since 2024 repeats the status as a string).
fn error(status: u16, message: &str) -> Value {
    json!({"message": message, "documentation_url": DOCS, "status": status.to_string()})
}

fn msg(status: u16, message: &str) -> Reply {
    reply(status, error(status, message))
}

/// 200 with `v`, or GitHub's 404.
fn found(v: Option<Value>) -> Reply {
    v.map_or_else(|| msg(404, "Not Found"), |v| reply(200, v))
}

/// GitHub's 422 for a request that breaks a rule on one field.
fn invalid(resource: &str, code: &str, field: &str) -> Reply {
    let mut body = error(422, "Validation Failed");
    body["errors"] = json!([{"resource": resource, "code": code, "field": field}]);
    reply(422, body)
}

async fn serve(
    State(state): State<Arc<Mutex<GhState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    // Extracting the body reads all of it (chunked or not) before anything is answered, so a
    // client still sending an upload never sees a reset instead of our error.
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    // The CDN behind download redirects: bytes, and it must never be sent the token.
    if let Some(id) = uri.path().strip_prefix("/cdn/assets/") {
        let bytes = s
            .releases
            .values()
            .flat_map(|r| &r.assets)
            .find(|a| a.id.to_string() == id)
            .map(|a| a.bytes.clone());
        let status = match (&bytes, headers.contains_key(header::AUTHORIZATION)) {
            (_, true) => 400,
            (None, _) => 404,
            (Some(_), false) => 200,
        };
        s.log.push((method.to_string(), uri.path().into(), status));
        let mut resp = bytes
            .filter(|_| status == 200)
            .unwrap_or_default()
            .into_response();
        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
        return resp;
    }
    let mut r = s.route(&method, &uri, &headers, &body);
    // GitHub puts an ETag on every successful GET and answers a matching If-None-Match with 304,
    // which does not count against the rate limit.
    if method == Method::GET && r.status == 200 {
        let etag = format!("W/\"{}\"", hex(&Sha256::digest(r.body.as_deref().unwrap())));
        let weak = |v: &str| v.trim_start_matches("W/").to_owned();
        let inm = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        if inm.is_some_and(|v| weak(v) == weak(&etag)) {
            r = empty(304);
        }
        r.headers.push(("etag", etag));
    }
    if r.status != 304 {
        s.rate_remaining = s.rate_remaining.saturating_sub(1);
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    s.log
        .push((method.to_string(), path_and_query.into(), r.status));

    let json = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    let mut resp = match r.body {
        Some(body) => (json, body).into_response(),
        None => ().into_response(),
    };
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap();
    let used = RATE_LIMIT - s.rate_remaining;
    let common = [
        ("x-ratelimit-limit", RATE_LIMIT.to_string()),
        ("x-ratelimit-remaining", s.rate_remaining.to_string()),
        ("x-ratelimit-reset", s.rate_reset.to_string()),
        ("x-ratelimit-used", used.to_string()),
        ("x-ratelimit-resource", "core".into()),
    ];
    // The reply's own headers come last so a rate-limit fault overrides the common ones.
    for (name, value) in common.into_iter().chain(r.headers) {
        let (name, value) = (HeaderName::from_static(name), HeaderValue::from_str(&value));
        resp.headers_mut().insert(name, value.unwrap());
    }
    resp
}

impl GhState {
    fn route(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let lost = self.faults.iter().position(|f| {
            matches!(f, Fault::Lost { .. }) && f.matches(method.as_str(), path_and_query)
        });
        if let Some(Fault::Lost { status, .. }) = lost.and_then(|i| self.faults.remove(i)) {
            let _ = self.route_once(method, uri, headers, body);
            return msg(status, "Bad Gateway");
        }
        self.route_once(method, uri, headers, body)
    }

    fn route_once(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Reply {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = &self.token;
        let valid = [format!("Bearer {token}"), format!("token {token}")];
        if !auth.is_some_and(|a| valid.iter().any(|v| v == a)) {
            return msg(401, "Bad credentials");
        }
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let fault = self.faults.iter().position(|f| {
            !matches!(f, Fault::Lost { .. }) && f.matches(method.as_str(), path_and_query)
        });
        let mut broken_upload = false;
        match fault.and_then(|i| self.faults.remove(i)) {
            Some(Fault::Status { status, .. }) => {
                let reason = StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason());
                return msg(status, reason.unwrap_or("Error"));
            }
            Some(Fault::RateLimit { reset_in_secs, .. }) => {
                let mut r = msg(403, "API rate limit exceeded for user ID 1.");
                r.headers = vec![
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-used", RATE_LIMIT.to_string()),
                    ("x-ratelimit-reset", (now() + reset_in_secs).to_string()),
                ];
                return r;
            }
            Some(Fault::BrokenUpload) => broken_upload = true,
            Some(Fault::Lost { .. }) | None => {}
        }

        let query = parse_query(uri.query().unwrap_or(""));
        let path = uri.path();
        // GitHub takes uploads on another host (uploads.github.com); the fake under /uploads/.
        let uploads = format!("/uploads/repos/{}/{}/releases/", self.owner, self.repo);
        if let Some(id) = path
            .strip_prefix(&uploads)
            .and_then(|p| p.strip_suffix("/assets"))
        {
            return match (method, id.parse()) {
                (&Method::POST, Ok(id)) => self.upload(id, &query, headers, body, broken_upload),
                _ => found(None),
            };
        }
        let repos = format!("/repos/{}/{}/", self.owner, self.repo);
        let by_id = format!("/repositories/{REPO_ID}/");
        let Some(rest) = path.strip_prefix(&repos).or(path.strip_prefix(&by_id)) else {
            return found(None);
        };
        if let Some(r) = self.git_route(method.as_str(), rest, &query, body) {
            return r;
        }
        let release = |id: &str| id.parse().ok().and_then(|id| self.releases.get(&id));
        match (
            method.as_str(),
            rest.split('/').collect::<Vec<_>>().as_slice(),
        ) {
            ("GET", ["releases"]) => {
                let all = self.releases.values().rev().map(|r| self.release_json(r));
                self.page(all.collect(), &query, "releases")
            }
            ("POST", ["releases"]) => self.create(body),
            // GitHub hides drafts from get-by-tag: a draft has no tag until it is published.
            ("GET", ["releases", "tags", tag]) => {
                let mut published = self.releases.values().filter(|r| !r.draft);
                found(
                    published
                        .find(|r| r.tag == decode(tag))
                        .map(|r| self.release_json(r)),
                )
            }
            // A download answers with a redirect to a short-lived CDN URL, as GitHub does.
            ("GET", ["releases", "assets", id])
                if headers
                    .get(header::ACCEPT)
                    .is_some_and(|v| v == "application/octet-stream") =>
            {
                match self.find_asset(id) {
                    Some((_, a)) => Reply {
                        status: 302,
                        body: None,
                        headers: vec![("location", format!("{}cdn/assets/{}", self.api_url, a.id))],
                    },
                    None => found(None),
                }
            }
            ("GET", ["releases", "assets", id]) => {
                found(self.find_asset(id).map(|(r, a)| self.asset_json(r, a)))
            }
            ("DELETE", ["releases", "assets", id]) => match self.find_asset(id) {
                Some((r, _)) if !r.draft => {
                    msg(422, "Cannot delete assets of an immutable release.")
                }
                Some((r, a)) => {
                    let (release_id, asset_id) = (r.id, a.id);
                    let assets = &mut self.releases.get_mut(&release_id).unwrap().assets;
                    assets.retain(|a| a.id != asset_id);
                    empty(204)
                }
                None => found(None),
            },
            ("GET", ["releases", id]) => found(release(id).map(|r| self.release_json(r))),
            ("PATCH", ["releases", id]) => self.update(id, body),
            // Deleting a published release leaves its tag in `burnt_tags`.
            ("DELETE", ["releases", id]) => {
                match id.parse().ok().and_then(|id| self.releases.remove(&id)) {
                    Some(_) => empty(204),
                    None => found(None),
                }
            }
            ("GET", ["releases", id, "assets"]) => match release(id) {
                Some(r) => {
                    let all = r.assets.iter().map(|a| self.asset_json(r, a)).collect();
                    self.page(all, &query, &format!("releases/{}/assets", r.id))
                }
                None => found(None),
            },
            _ => found(None),
        }
    }

    /// One page of `items` as GitHub pages: `per_page` (default 30, at most 100) and `page`, with
    /// prev/next/last/first links as absolute `/repositories/{id}/` URLs, none on a lone page.
    fn page(&self, items: Vec<Value>, query: &[(String, String)], tail: &str) -> Reply {
        let param = |k: &str| {
            query
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.parse().ok())
        };
        let per_page: usize = param("per_page").unwrap_or(30).clamp(1, 100);
        let page: usize = param("page").unwrap_or(1).max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let link = |p: usize, rel: &str| {
            let url = format!("{}repositories/{REPO_ID}/{tail}", self.api_url);
            format!("<{url}?per_page={per_page}&page={p}>; rel=\"{rel}\"")
        };
        let mut links = vec![];
        if page > 1 {
            links.push(link(page - 1, "prev"));
        }
        if page < last {
            links.extend([link(page + 1, "next"), link(last, "last")]);
        }
        if page > 1 {
            links.push(link(1, "first"));
        }
        let items = items.into_iter().skip((page - 1) * per_page).take(per_page);
        let mut r = reply(200, Value::Array(items.collect()));
        if !links.is_empty() {
            r.headers.push(("link", links.join(", ")));
        }
        r
    }

    /// A 422 if `tag` may not become the tag of a published release (other than release `me`).
    fn tag_conflict(&self, tag: &str, me: Option<u64>) -> Option<Reply> {
        let mut published = self.releases.values().filter(|r| !r.draft && r.tag == tag);
        let taken = published.clone().any(|r| Some(r.id) != me);
        // A deleted immutable release keeps its tag (GitHub's exact answer is a guess).
        let burnt = self.burnt_tags.contains(tag) && published.next().is_none();
        (taken || burnt).then(|| invalid("Release", "already_exists", "tag_name"))
    }

    fn note_make_latest(&mut self, tag: &str, v: &Value) {
        match &v["make_latest"] {
            Value::Null => {}
            Value::String(s) => self.make_latest.push((tag.into(), s.clone())),
            other => self.make_latest.push((tag.into(), other.to_string())),
        }
    }

    /// Adds the release a create request `v` describes; returns its id.
    fn add_release(&mut self, v: &Value) -> u64 {
        let (id, at) = (self.next_release_id, rfc3339(now()));
        self.next_release_id += 1;
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let draft = v["draft"].as_bool().unwrap_or(false);
        let release = FakeRelease {
            id,
            tag: text("tag_name").unwrap(),
            name: text("name"),
            body: text("body"),
            draft,
            prerelease: v["prerelease"].as_bool().unwrap_or(false),
            target_commitish: text("target_commitish").unwrap_or_else(|| "main".into()),
            created_at: at.clone(),
            published_at: (!draft).then_some(at),
            assets: vec![],
        };
        if !draft {
            self.burnt_tags.insert(release.tag.clone());
        }
        self.releases.insert(id, release);
        id
    }

    fn add_asset(
        &mut self,
        release: u64,
        name: &str,
        label: Option<String>,
        content_type: &str,
        bytes: &[u8],
        state: &str,
    ) -> &FakeAsset {
        let assets = &mut self.releases.get_mut(&release).unwrap().assets;
        assets.push(FakeAsset {
            id: self.next_asset_id,
            name: name.into(),
            label,
            content_type: content_type.into(),
            state: state.into(),
            bytes: bytes.to_vec(),
            created_at: rfc3339(now()),
        });
        self.next_asset_id += 1;
        assets.last().unwrap()
    }

    fn create(&mut self, body: &[u8]) -> Reply {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return msg(400, "Problems parsing JSON");
        };
        let Some(tag) = v["tag_name"].as_str() else {
            return invalid("Release", "missing_field", "tag_name");
        };
        // Only a published release holds its tag: like GitHub, two drafts may share one.
        if let Some(r) = self.tag_conflict(tag, None) {
            return r;
        }
        self.note_make_latest(tag, &v);
        let id = self.add_release(&v);
        let mut r = reply(201, self.release_json(&self.releases[&id]));
        let location = format!(
            "{}repos/{}/{}/releases/{id}",
            self.api_url, self.owner, self.repo
        );
        r.headers.push(("location", location));
        r
    }

    fn update(&mut self, id: &str, body: &[u8]) -> Reply {
        let Some(id) = id.parse().ok().filter(|id| self.releases.contains_key(id)) else {
            return found(None);
        };
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return msg(400, "Problems parsing JSON");
        };
        let old = &self.releases[&id];
        let tag = v["tag_name"].as_str().unwrap_or(&old.tag).to_owned();
        let draft = v["draft"].as_bool().unwrap_or(old.draft);
        if !old.draft && draft {
            return msg(422, "Cannot change an immutable release back to a draft.");
        }
        if !draft && let Some(r) = self.tag_conflict(&tag, Some(id)) {
            return r;
        }
        self.note_make_latest(&tag, &v);
        if !draft {
            self.burnt_tags.insert(tag.clone());
        }
        let release = self.releases.get_mut(&id).unwrap();
        if release.draft && !draft {
            release.published_at = Some(rfc3339(now()));
        }
        (release.draft, release.tag) = (draft, tag);
        release.prerelease = v["prerelease"].as_bool().unwrap_or(release.prerelease);
        for (key, field) in [("name", &mut release.name), ("body", &mut release.body)] {
            if let Some(text) = v[key].as_str() {
                *field = Some(text.into());
            }
        }
        reply(200, self.release_json(&self.releases[&id]))
    }

    fn upload(
        &mut self,
        id: u64,
        query: &[(String, String)],
        headers: &HeaderMap,
        body: &[u8],
        broken: bool,
    ) -> Reply {
        let Some(release) = self.releases.get(&id) else {
            return found(None);
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let Some(content_type) = content_type else {
            return msg(400, "Content-Type header is required.");
        };
        let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(name) = param("name") else {
            return invalid("ReleaseAsset", "missing_field", "name");
        };
        if !release.draft {
            return msg(422, "Cannot upload assets to an immutable release.");
        }
        if release.assets.iter().any(|a| a.name == name) {
            return invalid("ReleaseAsset", "already_exists", "name");
        }
        if broken {
            let half = &body[..body.len() / 2];
            self.add_asset(id, &name, param("label"), content_type, half, "starter");
            return msg(502, "Bad Gateway");
        }
        let asset = self.add_asset(id, &name, param("label"), content_type, body, "uploaded");
        let asset = asset.clone();
        reply(201, self.asset_json(&self.releases[&id], &asset))
    }

    /// The release and asset for an asset id path segment.
    fn find_asset(&self, id: &str) -> Option<(&FakeRelease, &FakeAsset)> {
        let id: u64 = id.parse().ok()?;
        let mut all = self
            .releases
            .values()
            .flat_map(|r| r.assets.iter().map(move |a| (r, a)));
        all.find(|(_, a)| a.id == id)
    }

    fn release_json(&self, r: &FakeRelease) -> Value {
        let (api, o, n) = (&self.api_url, &self.owner, &self.repo);
        let url = format!("{api}repos/{o}/{n}/releases/{}", r.id);
        // Archives exist only for a real tag.
        let archive =
            |kind: &str| (!r.draft).then(|| format!("{api}repos/{o}/{n}/{kind}/{}", r.tag));
        json!({
            "url": url,
            "assets_url": format!("{url}/assets"),
            // The RFC 6570 template GitHub returns; octocrab strips "{?name,label}" itself.
            "upload_url": format!("{api}uploads/repos/{o}/{n}/releases/{}/assets{{?name,label}}", r.id),
            "html_url": format!("https://github.com/{o}/{n}/releases/tag/{}", r.url_tag()),
            "id": r.id,
            "author": self.user_json(),
            "node_id": format!("RE_kwDOABPHjc4{:08}", r.id),
            "tag_name": r.tag,
            "target_commitish": r.target_commitish,
            "name": r.name,
            "draft": r.draft,
            // The repository has immutable releases on: publishing makes a release immutable.
            "immutable": !r.draft,
            "prerelease": r.prerelease,
            "created_at": r.created_at,
            "updated_at": r.published_at.as_ref().unwrap_or(&r.created_at),
            "published_at": r.published_at,
            "assets": r.assets.iter().map(|a| self.asset_json(r, a)).collect::<Vec<_>>(),
            "tarball_url": archive("tarball"),
            "zipball_url": archive("zipball"),
            "body": r.body,
        })
    }

    fn asset_json(&self, r: &FakeRelease, a: &FakeAsset) -> Value {
        let (api, o, n) = (&self.api_url, &self.owner, &self.repo);
        // GitHub computes the digest once an upload completes; a "starter" asset has none.
        let uploaded = a.state == "uploaded";
        let digest = uploaded.then(|| format!("sha256:{}", hex(&Sha256::digest(&a.bytes))));
        json!({
            "url": format!("{api}repos/{o}/{n}/releases/assets/{}", a.id),
            "id": a.id,
            "node_id": format!("RA_kwDOABPHjc4{:08}", a.id),
            "name": a.name,
            "label": a.label.as_deref().unwrap_or(""),
            "uploader": self.user_json(),
            "content_type": a.content_type,
            "state": a.state,
            "size": a.bytes.len(),
            "digest": digest,
            "download_count": 0,
            "created_at": a.created_at,
            "updated_at": a.created_at,
            "browser_download_url":
                format!("https://github.com/{o}/{n}/releases/download/{}/{}", r.url_tag(), a.name),
        })
    }

    /// The token's owner, as both release `author` and asset `uploader`.
    fn user_json(&self) -> Value {
        let u = format!("{}users/hermit-bot", self.api_url);
        json!({
            "login": "hermit-bot", "id": 1, "node_id": "MDQ6VXNlcjE=",
            "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4", "gravatar_id": "",
            "url": u, "html_url": "https://github.com/hermit-bot",
            "followers_url": format!("{u}/followers"),
            "following_url": format!("{u}/following{{/other_user}}"),
            "gists_url": format!("{u}/gists{{/gist_id}}"),
            "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{u}/subscriptions"),
            "organizations_url": format!("{u}/orgs"), "repos_url": format!("{u}/repos"),
            "events_url": format!("{u}/events{{/privacy}}"),
            "received_events_url": format!("{u}/received_events"),
            "type": "User", "user_view_type": "public", "site_admin": false,
        })
    }
}

/// One commit of the fake repository.
#[derive(Clone, Debug)]
pub struct FakeCommit {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
    /// (name, email)
    pub author: (String, String),
}

/// A minimal git object store for the one repository: commits, trees as flat maps of path (with
/// `/`) to file content, and branches. Shas are content hashes (sha256 cut to 40 hex digits), so
/// identical objects share a sha, as in git.
#[derive(Default)]
pub struct GitStore {
    pub commits: HashMap<String, FakeCommit>,
    pub trees: HashMap<String, BTreeMap<String, String>>,
    /// Branch name → commit sha.
    pub branches: BTreeMap<String, String>,
    /// (path, content) pushed by "someone else" just before the next ref update is applied.
    race: Option<(String, String)>,
}

fn git_sha(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in std::iter::once(kind).chain(parts.iter().copied()) {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())[..40].to_owned()
}

impl GitStore {
    /// Branch `main` with one commit holding a `README.md`.
    fn seeded() -> Self {
        let mut git = Self::default();
        let tree = git.add_tree(BTreeMap::from([("README.md".into(), "# repo\n".into())]));
        let author = ("octocat".to_owned(), "octocat@github.com".to_owned());
        let commit = git.add_commit(tree, vec![], "Initial commit", author);
        git.branches.insert("main".into(), commit);
        git
    }

    fn add_tree(&mut self, files: BTreeMap<String, String>) -> String {
        let sha = git_sha("tree", &[&serde_json::to_string(&files).unwrap()]);
        self.trees.insert(sha.clone(), files);
        sha
    }

    fn add_commit(
        &mut self,
        tree: String,
        parents: Vec<String>,
        message: &str,
        author: (String, String),
    ) -> String {
        let sha = git_sha(
            "commit",
            &[&tree, &parents.join(" "), message, &author.0, &author.1],
        );
        let c = FakeCommit {
            sha: sha.clone(),
            tree,
            parents,
            message: message.into(),
            author,
        };
        self.commits.insert(sha.clone(), c);
        sha
    }

    /// The files of the commit a branch name or commit sha designates.
    fn files(&self, rev: &str) -> Option<&BTreeMap<String, String>> {
        let sha = self.branches.get(rev).map_or(rev, String::as_str);
        self.trees.get(&self.commits.get(sha)?.tree)
    }

    /// Commits `content` at `path` on top of `branch` (another writer); returns the commit.
    fn push(&mut self, branch: &str, path: &str, content: &str, message: &str) -> String {
        let head = self.branches[branch].clone();
        let mut files = self.files(&head).unwrap().clone();
        files.insert(path.into(), content.into());
        let tree = self.add_tree(files);
        let author = ("someone".to_owned(), "someone@example.com".to_owned());
        let sha = self.add_commit(tree, vec![head], message, author);
        self.branches.insert(branch.into(), sha.clone());
        sha
    }

    /// Whether `ancestor` is `sha` or reachable from it through parents.
    fn reaches(&self, sha: &str, ancestor: &str) -> bool {
        let mut todo = vec![sha.to_owned()];
        while let Some(s) = todo.pop() {
            if s == ancestor {
                return true;
            }
            todo.extend(
                self.commits
                    .get(&s)
                    .into_iter()
                    .flat_map(|c| c.parents.clone()),
            );
        }
        false
    }
}

impl FakeGitHub {
    /// The content of `path` at the head of `branch`.
    pub fn file_at(&self, branch: &str, path: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .git
            .files(branch)?
            .get(path)
            .cloned()
    }

    /// (sha, message) of the commits of `branch`, newest first (first parents).
    pub fn commits(&self, branch: &str) -> Vec<(String, String)> {
        let s = self.state.lock().unwrap();
        let mut next = s.git.branches.get(branch).cloned();
        let mut out = vec![];
        while let Some(c) = next.and_then(|sha| s.git.commits.get(&sha)) {
            out.push((c.sha.clone(), c.message.clone()));
            next = c.parents.first().cloned();
        }
        out
    }

    pub fn commit(&self, sha: &str) -> Option<FakeCommit> {
        self.state.lock().unwrap().git.commits.get(sha).cloned()
    }

    /// Another writer commits `content` at `path` on `branch`; returns the new head.
    pub fn push_commit(&self, branch: &str, path: &str, content: &str, message: &str) -> String {
        self.state
            .lock()
            .unwrap()
            .git
            .push(branch, path, content, message)
    }

    /// Just before the next ref update is applied, another writer pushes `content` at `path` to
    /// that branch, so an update prepared on the old head is no longer a fast forward.
    pub fn race_next_ref_update(&self, path: &str, content: &str) {
        self.state.lock().unwrap().git.race = Some((path.into(), content.into()));
    }
}

impl GhState {
    /// The git data API (`git/ref`, `git/commits`, `git/trees`, `git/refs`) and the contents API
    /// for files; `None` for any other path.
    fn git_route(
        &mut self,
        method: &str,
        rest: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Option<Reply> {
        let api = format!("{}repos/{}/{}", self.api_url, self.owner, self.repo);
        let v = || serde_json::from_slice::<Value>(body).ok();
        let commit_json = |c: &FakeCommit| {
            let person = json!({"name": c.author.0, "email": c.author.1, "date": rfc3339(now())});
            let parents: Vec<Value> = c
                .parents
                .iter()
                .map(|p| json!({"sha": p, "url": format!("{api}/git/commits/{p}")}))
                .collect();
            json!({
                "sha": c.sha, "url": format!("{api}/git/commits/{}", c.sha), "author": person, "committer": person,
                "message": c.message, "tree": {"sha": c.tree, "url": format!("{api}/git/trees/{}", c.tree)}, "parents": parents,
            })
        };
        let git = &mut self.git;
        if let Some(path) = rest.strip_prefix("contents/") {
            if method != "GET" {
                return Some(found(None));
            }
            let path = decode(path);
            let rev = query
                .iter()
                .find(|(k, _)| k == "ref")
                .map_or("main", |(_, v)| v.as_str());
            let Some(files) = git.files(rev) else {
                return Some(msg(404, &format!("No commit found for the ref {rev}")));
            };
            return Some(found(files.get(&path).map(|text| {
                let sha = git_sha("blob", &[text]);
                let b64 = base64_encode(text.as_bytes());
                // GitHub breaks the base64 into lines of 60 characters.
                let lines: Vec<&str> = b64.as_bytes().chunks(60).map(|l| std::str::from_utf8(l).unwrap()).collect();
                let name = path.rsplit('/').next().unwrap();
                json!({"type": "file", "encoding": "base64", "size": text.len(), "name": name, "path": path,
                       "content": lines.join("\n") + "\n", "sha": sha, "url": format!("{api}/contents/{path}")})
            })));
        }
        let reply = match (method, rest) {
            ("GET", r) if r.starts_with("git/ref/heads/") => {
                let branch = decode(&r["git/ref/heads/".len()..]);
                found(git.branches.get(&branch).map(|sha| {
                    json!({"ref": format!("refs/heads/{branch}"), "url": format!("{api}/git/refs/heads/{branch}"),
                           "object": {"sha": sha, "type": "commit", "url": format!("{api}/git/commits/{sha}")}})
                }))
            }
            ("GET", r) if r.starts_with("git/commits/") => {
                found(git.commits.get(&r["git/commits/".len()..]).map(commit_json))
            }
            ("POST", "git/trees") => {
                let Some(v) = v() else {
                    return Some(msg(400, "Problems parsing JSON"));
                };
                let mut files = match v["base_tree"].as_str() {
                    Some(base) => match git.trees.get(base) {
                        Some(files) => files.clone(),
                        None => return Some(msg(422, "base_tree is not a valid tree")),
                    },
                    None => BTreeMap::new(),
                };
                for e in v["tree"].as_array().into_iter().flatten() {
                    let (Some(path), Some("blob")) = (e["path"].as_str(), e["type"].as_str())
                    else {
                        return Some(msg(422, "Invalid tree info (the fake takes blobs only)"));
                    };
                    match (&e["content"], e.get("sha")) {
                        (Value::String(content), _) => {
                            files.insert(path.into(), content.clone());
                        }
                        (Value::Null, Some(Value::Null)) => {
                            files.remove(path);
                        }
                        _ => {
                            return Some(msg(
                                422,
                                "Invalid tree info (the fake takes content, or sha: null)",
                            ));
                        }
                    }
                }
                let entries: Vec<Value> = files
                    .iter()
                    .map(|(p, c)| json!({"path": p, "mode": "100644", "type": "blob", "size": c.len(), "sha": git_sha("blob", &[c])}))
                    .collect();
                let sha = git.add_tree(files);
                reply(
                    201,
                    json!({"sha": sha, "url": format!("{api}/git/trees/{sha}"), "tree": entries, "truncated": false}),
                )
            }
            ("POST", "git/commits") => {
                let Some(v) = v() else {
                    return Some(msg(400, "Problems parsing JSON"));
                };
                let (Some(message), Some(tree)) = (v["message"].as_str(), v["tree"].as_str())
                else {
                    return Some(msg(422, "Invalid request: message and tree are required"));
                };
                let parents: Vec<String> = v["parents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(Into::into))
                    .collect();
                if !git.trees.contains_key(tree) {
                    return Some(msg(422, "Tree SHA does not exist"));
                }
                if parents.iter().any(|p| !git.commits.contains_key(p)) {
                    return Some(msg(
                        422,
                        "Parent SHA does not exist or is not a commit object",
                    ));
                }
                let field =
                    |k: &str, default: &str| v["author"][k].as_str().unwrap_or(default).to_owned();
                let author = (
                    field("name", "hermit-bot"),
                    field("email", "hermit-bot@users.noreply.github.com"),
                );
                let sha = git.add_commit(tree.into(), parents, message, author);
                reply(201, commit_json(&git.commits[&sha]))
            }
            ("PATCH", r) if r.starts_with("git/refs/heads/") => {
                let branch = decode(&r["git/refs/heads/".len()..]);
                let Some(v) = v() else {
                    return Some(msg(400, "Problems parsing JSON"));
                };
                let sha = v["sha"].as_str().unwrap_or("").to_owned();
                if !git.branches.contains_key(&branch) {
                    return Some(msg(422, "Reference does not exist"));
                }
                if !git.commits.contains_key(&sha) {
                    return Some(msg(422, "Object does not exist"));
                }
                if let Some((path, content)) = git.race.take() {
                    git.push(&branch, &path, &content, "a concurrent push");
                }
                let force = v["force"].as_bool().unwrap_or(false);
                if !force && !git.reaches(&sha, &git.branches[&branch]) {
                    return Some(msg(422, "Update is not a fast forward"));
                }
                git.branches.insert(branch.clone(), sha.clone());
                reply(
                    200,
                    json!({"ref": format!("refs/heads/{branch}"), "url": format!("{api}/git/refs/heads/{branch}"),
                                  "object": {"sha": sha, "type": "commit", "url": format!("{api}/git/commits/{sha}")}}),
                )
            }
            _ => return None,
        };
        Some(reply)
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    let pairs = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")));
    pairs.map(|(k, v)| (decode(k), decode(v))).collect()
}

/// Percent-decoding. '+' stays '+': octocrab sends asset names unencoded, so reading it as a
/// space (form encoding) would mangle names like `1.0+local`.
fn decode(s: &str) -> String {
    let (bytes, mut out, mut i) = (s.as_bytes(), vec![], 0);
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `secs` since the epoch as RFC 3339 UTC, e.g. `2025-06-01T12:00:00Z` (civil-from-days).
fn rfc3339(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}
