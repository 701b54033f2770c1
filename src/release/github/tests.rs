use super::*;

// The client spawns its connection pool: it needs a runtime even when unused.
#[tokio::test]
async fn the_token_never_prints() {
    let t = Token::new("ghp_s3cret");
    assert!(!format!("{t:?}").contains("s3cret"));
    let store = GitHubStore::new(GitHubConfig::new("o", "r"), t).unwrap();
    assert!(!format!("{store:?}").contains("s3cret"));
}

#[tokio::test]
async fn links_bodies_and_names() {
    let mut h = HeaderMap::new();
    h.insert(
        header::LINK,
        HeaderValue::from_static(r#"<https://api.github.com/repositories/1/releases?page=2>; rel="next", <https://api.github.com/repositories/1/releases?page=3>; rel="last""#),
    );
    assert_eq!(
        next_link(&h).as_deref(),
        Some("https://api.github.com/repositories/1/releases?page=2")
    );
    assert_eq!(percent_encode("a b+c.tar.gz", false), "a%20b%2Bc.tar.gz");
    let pkg = PackageName::new("tiny-tool").unwrap();
    let v: Version = "1.0".parse().unwrap();
    let inputs = crate::release::VersionInputs {
        python: crate::names::PythonMinor::new(12).unwrap(),
        config_version: Some(2),
        requirements: vec!["tiny-tool==1.0".into()],
        binaries: vec![],
        test: String::new(),
        source: None,
        build: None,
        packages: Vec::new(),
    };
    let info = BuildInfo::new(&pkg, &v, inputs);
    let body = release_body(&pkg, &v, &info);
    assert_eq!(build_info_from_body(Some(&body)), Some(info));
    let store = GitHubStore::new(GitHubConfig::new("o", "r"), Token::new("t")).unwrap();
    assert_eq!(
        store.source_template(&pkg),
        "https://github.com/o/r/releases/download/tiny-tool-v${version}/tiny-tool-${os}-${arch}.tar.gz"
    );
}
