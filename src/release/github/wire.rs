//! What travels to and from GitHub besides JSON models: the release body carrying the build
//! info, the `Link` header of paged lists, and streamed upload bodies.

use std::path::Path;

use http::header::{self, HeaderMap};
use octocrab::OctoBody;
use pep440_rs::Version;

use crate::names::PackageName;
use crate::release::BuildInfo;

/// The body of a release: a line for people and the build info for machines.
pub(super) fn release_body(package: &PackageName, version: &Version, info: &BuildInfo) -> String {
    let json = serde_json::to_string_pretty(info).expect("build info serialises");
    format!("{package} {version}, built by hermit-pex.\n\n```json\n{json}\n```\n")
}

pub(super) fn build_info_from_body(body: Option<&str>) -> Option<BuildInfo> {
    let body = body?;
    let start = body.find("```json\n")? + "```json\n".len();
    let end = body[start..].find("\n```")? + start;
    serde_json::from_str(&body[start..end]).ok()
}

/// The `rel="next"` URL of a `Link` header.
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            Some(part[start..end].to_owned())
        })
}

/// A streamed file body: uploads never hold a whole asset in memory.
pub(super) fn file_body(path: &Path) -> OctoBody {
    use futures::TryStreamExt;
    let path = path.to_owned();
    let stream = futures::stream::once(async move { tokio::fs::File::open(path).await })
        .map_ok(|file| tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024))
        .try_flatten()
        .map_ok(http_body::Frame::data);
    OctoBody::new(http_body_util::StreamBody::new(stream))
}
