use super::*;
use crate::controller::resource::PythonPackageSpec;
use clap::Parser;

fn resource(yaml_spec: &str) -> PythonPackage {
    let spec: PythonPackageSpec = serde_norway::from_str(yaml_spec).unwrap();
    let mut r = PythonPackage::new("aider-chat", spec);
    r.metadata.namespace = Some("tools".into());
    r.metadata.uid = Some("3f8a-uid".into());
    r
}

const SPEC: &str = "package: aider-chat\nbinaries: [aider]\nextraPackages: [\"setuptools<80.9\"]\nconfigVersion: 2\nversions:\n  - {version: \"0.83.1\", python: \"3.12\"}\n";

fn settings() -> JobSettings {
    JobSettings {
        image: "ghcr.io/hermit-pex/builder:0.1.0".into(),
        repository: "acme/tools".into(),
        token_secret: ("github".into(), "token".into()),
        index_url: "https://pypi.org/simple/".into(),
        cache_claim: None,
        resources: None,
        active_deadline_seconds: 3600,
        backoff_limit: 2,
        ttl_seconds_after_finished: 86_400,
        service_account: Some("hermit-pex-builder".into()),
    }
}

fn job(platform: Platform) -> Job {
    let v: Version = "0.86.2".parse().unwrap();
    build_job(
        &resource(SPEC),
        &v,
        PythonMinor::new(12).unwrap(),
        platform,
        &PlatformTable::default(),
        &settings(),
    )
    .unwrap()
}

fn pod(job: &Job) -> &PodSpec {
    job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

#[test]
fn names_are_deterministic_dns_labels_hashed_when_long() {
    let v = |s: &str| s.parse::<Version>().unwrap();
    let p = Platform::new(Os::Darwin, Arch::Arm64);
    assert_eq!(
        job_name("aider-chat", &v("0.86.2"), p),
        "aider-chat-0-86-2-darwin-arm64"
    );
    assert_eq!(
        job_name("Tool", &v("2.0rc1"), p),
        "tool-2-0rc1-darwin-arm64"
    );
    let long = "a-very-long-package-name-that-goes-on-and-on-and-on";
    let a = job_name(long, &v("2024.1.1.post3"), p);
    let b = job_name(long, &v("2024.1.1.post4"), p);
    assert!(a.len() <= 63 && b.len() <= 63, "{a}");
    assert_ne!(a, b, "the hash keeps cut names apart");
    assert_eq!(a, job_name(long, &v("2024.1.1.post3"), p), "stable");
    for name in [a, b] {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert!(!name.starts_with('-') && !name.ends_with('-'));
    }
}

#[test]
fn a_job_carries_labels_owner_limits_and_the_build_command() {
    let j = job(Platform::new(Os::Linux, Arch::Arm64));
    let meta = &j.metadata;
    assert_eq!(meta.name.as_deref(), Some("aider-chat-0-86-2-linux-arm64"));
    assert_eq!(meta.namespace.as_deref(), Some("tools"));
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "hermit-pex");
    assert_eq!(labels["hermit-pex.dev/version"], "0.86.2");
    assert_eq!(labels["hermit-pex.dev/platform"], "linux-arm64");
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("PythonPackage", "3f8a-uid", Some(true))
    );
    let spec = j.spec.as_ref().unwrap();
    assert_eq!(
        (
            spec.backoff_limit,
            spec.active_deadline_seconds,
            spec.ttl_seconds_after_finished
        ),
        (Some(2), Some(3600), Some(86_400))
    );

    let p = pod(&j);
    assert_eq!(p.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        p.node_selector.as_ref().unwrap()["kubernetes.io/arch"],
        "arm64"
    );
    let c = &p.containers[0];
    let args = c.args.as_ref().unwrap();
    assert_eq!(
        args.join(" "),
        "build --package aider-chat --version 0.86.2 --python 3.12 --platform linux-arm64 --binary aider \
         --extra-package setuptools<80.9 --config-version 2 --repository acme/tools --index-url https://pypi.org/simple/ --cache-dir /cache"
    );
    assert!(
        c.command.is_none(),
        "no shell: the image's entrypoint gets the arguments as a list"
    );
}

#[test]
fn the_build_command_line_is_one_the_cli_accepts() {
    let j = job(Platform::new(Os::Darwin, Arch::Amd64));
    let args = pod(&j).containers[0].args.clone().unwrap();
    let parsed =
        crate::cli::Cli::try_parse_from(std::iter::once("hermit-pex".to_owned()).chain(args));
    assert!(parsed.is_ok(), "{:?}", parsed.err().map(|e| e.to_string()));
}

#[test]
fn pods_are_restricted_and_get_the_token_only_from_a_secret() {
    let j = job(Platform::new(Os::Linux, Arch::Amd64));
    let p = pod(&j);
    let psc = p.security_context.as_ref().unwrap();
    assert_eq!(
        (psc.run_as_non_root, psc.run_as_user),
        (Some(true), Some(65532))
    );
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    assert_eq!(p.automount_service_account_token, Some(false));
    let c = &p.containers[0];
    assert_eq!(
        c.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError"),
        "a failed build's log tail reaches the status"
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.allow_privilege_escalation, sc.read_only_root_filesystem),
        (Some(false), Some(true))
    );
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    let token = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "GITHUB_TOKEN")
        .unwrap();
    assert!(token.value.is_none());
    let secret = token
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("github", "token")
    );
    let mounts: Vec<&str> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["/work", "/cache", "/tmp"],
        "writable places on a read-only root"
    );
}

#[test]
fn darwin_builds_cross_on_linux_unless_the_table_has_a_darwin_pool() {
    let darwin = Platform::new(Os::Darwin, Arch::Arm64);
    assert_eq!(
        pod(&job(darwin)).node_selector.as_ref().unwrap()["kubernetes.io/os"],
        "linux"
    );

    let table = PlatformTable::parse(
        "platforms:\n  darwin-arm64:\n    nodeSelector: {kubernetes.io/os: darwin}\n    tolerations:\n      - {key: macos, operator: Exists, effect: NoSchedule}\n",
    )
    .unwrap();
    let v: Version = "1.0".parse().unwrap();
    let py = PythonMinor::new(12).unwrap();
    let j = build_job(&resource(SPEC), &v, py, darwin, &table, &settings()).unwrap();
    let p = pod(&j);
    assert_eq!(
        p.node_selector.as_ref().unwrap()["kubernetes.io/os"],
        "darwin"
    );
    assert_eq!(
        p.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("macos")
    );
    let err = build_job(
        &resource(SPEC),
        &v,
        py,
        Platform::new(Os::Linux, Arch::Amd64),
        &table,
        &settings(),
    )
    .unwrap_err();
    assert_eq!(err, JobError::NoPool(Platform::new(Os::Linux, Arch::Amd64)));
}

#[test]
fn a_bad_platform_table_names_the_problem() {
    let err = PlatformTable::parse("platforms:\n  windows-amd64: {cross: true}\n").unwrap_err();
    assert!(err.contains("windows-amd64"), "{err}");
    let err = PlatformTable::parse("platforms:\n  linux-amd64: {nodeSelektor: {}}\n").unwrap_err();
    assert!(err.contains("nodeSelektor"), "{err}");
}

#[test]
fn a_resource_not_read_from_the_api_server_gets_no_job() {
    let mut r = resource(SPEC);
    r.metadata.uid = None;
    let v: Version = "1.0".parse().unwrap();
    let err = build_job(
        &r,
        &v,
        PythonMinor::new(12).unwrap(),
        Platform::ALL[0],
        &PlatformTable::default(),
        &settings(),
    );
    assert_eq!(err.unwrap_err(), JobError::NoUid);
}

#[test]
fn an_epoch_version_gets_a_name_of_its_own_and_keeps_its_version() {
    let linux = Platform::new(Os::Linux, Arch::Amd64);
    let plain = job_name("tool", &"1.2.0".parse().unwrap(), linux);
    let epoch = job_name("tool", &"1!2.0".parse().unwrap(), linux);
    assert_eq!(plain, "tool-1-2-0-linux-amd64");
    assert_ne!(epoch, plain);
    assert!(
        epoch.starts_with("tool-1-2-0-linux-amd64-") && epoch.len() <= 63,
        "{epoch}"
    );
}
