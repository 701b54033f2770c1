use super::*;
use crate::controller::resource::PythonPackageSpec;
use clap::Parser;
use k8s_openapi::api::core::v1::PodSpec;

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
        token_secret: ("github".into(), "token".into()),
        active_deadline_seconds: 3600,
        service_account: Some("hermit-pex-builder".into()),
        ..JobSettings::new("ghcr.io/hermit-pex/builder:0.1.0", "acme/tools")
    }
}

fn build_job(
    r: &PythonPackage,
    v: &Version,
    python: PythonMinor,
    platform: Platform,
    table: &PlatformTable,
    settings: &JobSettings,
) -> Result<Job, JobError> {
    let release = ReleaseId("4242".into());
    let job = JobFor {
        version: v,
        python,
        release: &release,
        step: JobStep::Build { platform },
        git: None,
    };
    step_job(r, &job, table, settings)
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

fn lock_job(table: &PlatformTable, settings: &JobSettings) -> Job {
    lock_job_of(&resource(SPEC), None, table, settings).unwrap()
}

/// The lock Job of 0.86.2 of `r` (from `git`, when a Git source's).
fn lock_job_of(
    r: &PythonPackage,
    git: Option<&crate::source::GitTag>,
    table: &PlatformTable,
    settings: &JobSettings,
) -> Result<Job, JobError> {
    let v: Version = "0.86.2".parse().unwrap();
    let release = ReleaseId("4242".into());
    let job = JobFor {
        version: &v,
        python: PythonMinor::new(12).unwrap(),
        release: &release,
        step: JobStep::Lock {
            platforms: Platform::ALL.to_vec(),
        },
        git,
    };
    step_job(r, &job, table, settings)
}

fn args(job: &Job) -> Vec<String> {
    pod(job).containers[0].args.clone().unwrap()
}

/// The Job's command line through the real CLI.
fn parsed(job: &Job) -> crate::cli::Cli {
    let argv = std::iter::once("hermit-pex".to_owned()).chain(args(job));
    crate::cli::Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"))
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
    assert_eq!(labels["hermit-pex.dev/step"], "build");
    let annotations = meta.annotations.as_ref().unwrap();
    assert_eq!(
        annotations["hermit-pex.dev/release"], "4242",
        "the one draft it uploads to"
    );
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
        "build --package aider-chat --version 0.86.2 --python 3.12 --release-id 4242 --platform linux-arm64 --binary aider \
         --extra-package setuptools<80.9 --config-version 2 --repository acme/tools \
         --github-api-url https://api.github.com/ --github-url https://github.com --index-url https://pypi.org/simple/ \
         --cache-dir /cache --build-timeout 1800 --test-timeout 300 --log-format text"
    );
    assert!(
        c.command.is_none(),
        "no shell: the image's entrypoint gets the arguments as a list"
    );
}

#[test]
fn the_build_command_line_is_one_the_cli_accepts() {
    let cli = parsed(&job(Platform::new(Os::Darwin, Arch::Amd64)));
    assert!(matches!(cli.command, crate::cli::Command::Build(_)));
}

#[test]
fn a_version_starts_with_one_lock_job_on_a_native_linux_pool() {
    let j = lock_job(&PlatformTable::default(), &settings());
    assert_eq!(j.metadata.name.as_deref(), Some("aider-chat-0-86-2-lock"));
    let labels = j.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["hermit-pex.dev/step"], "lock");
    assert!(!labels.contains_key("hermit-pex.dev/platform"));
    let selector = pod(&j).node_selector.clone().unwrap();
    assert_eq!(
        (
            selector["kubernetes.io/os"].as_str(),
            selector["kubernetes.io/arch"].as_str()
        ),
        ("linux", "amd64"),
        "a pure version is built and tested in this Job: on its own platform"
    );
    let crate::cli::Command::Lock(lock) = parsed(&j).command else {
        panic!("not a lock command");
    };
    assert_eq!(
        lock.platforms,
        Platform::ALL,
        "a pure lock builds every platform"
    );
    assert_eq!(lock.step.release_id, "4242");
}

/// Every controller setting a build reads reaches the Job: each field set to a value of its own
/// comes back out of the Job's command line, read by the real CLI, or its environment.
#[test]
fn every_setting_a_build_reads_is_in_the_job() {
    let s = JobSettings {
        image: "registry.example/builder:9".into(),
        repository: "acme/elsewhere".into(),
        github_api_url: "https://ghe.example/api/v3/".into(),
        github_url: "https://ghe.example".into(),
        token_secret: ("ghe-token".into(), "pat".into()),
        index_url: "https://pypi.internal/simple/".into(),
        extra_index_urls: vec!["https://extra.internal/simple/".into()],
        index_credentials_secret: Some("pypi-internal".into()),
        build_timeout: 777,
        test_timeout: 55,
        verbosity: 2,
        log_format: "json".into(),
        allow_direct_references: true,
        ..settings()
    };
    for j in [
        lock_job(&PlatformTable::default(), &s),
        build_job(
            &resource(SPEC),
            &"1.0".parse().unwrap(),
            PythonMinor::new(12).unwrap(),
            Platform::ALL[3],
            &PlatformTable::default(),
            &s,
        )
        .unwrap(),
    ] {
        let cli = parsed(&j);
        assert_eq!(cli.verbose, 2);
        assert!(cli.log_format == crate::cli::LogFormat::Json);
        let step = match cli.command {
            crate::cli::Command::Lock(a) => a.step,
            crate::cli::Command::Build(a) => a.step,
            _ => panic!("not a step"),
        };
        assert_eq!(step.release.repository.as_deref(), Some("acme/elsewhere"));
        assert_eq!(
            step.release.github.github_api_url,
            "https://ghe.example/api/v3/"
        );
        assert_eq!(step.release.github.github_url, "https://ghe.example");
        assert_eq!(step.index.index_url, "https://pypi.internal/simple/");
        assert_eq!(
            step.index.extra_index_urls,
            ["https://extra.internal/simple/"]
        );
        assert_eq!((step.build_timeout, step.test_timeout), (777, 55));
        assert!(step.index.allow_direct_references);
        assert_eq!(
            step.index.cache_dir.as_deref(),
            Some(std::path::Path::new("/cache"))
        );
        let c = &pod(&j).containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/builder:9"));
        let token = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "GITHUB_TOKEN")
            .unwrap();
        let secret = token
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (secret.name.as_str(), secret.key.as_str()),
            ("ghe-token", "pat")
        );
        // The spec's own fields, too.
        assert_eq!(step.binaries[0].as_str(), "aider");
        assert_eq!(step.extra_packages, ["setuptools<80.9"]);
        assert_eq!(step.config_version, Some(2));
    }
}

/// The index credentials reach a Job by reference to the Secret, each key optional (a Secret
/// with just `token` serves), and never as a value or an argument.
#[test]
fn index_credentials_come_from_the_secret_by_reference_only() {
    let s = JobSettings {
        index_credentials_secret: Some("pypi-internal".into()),
        ..settings()
    };
    let j = lock_job(&PlatformTable::default(), &s);
    let c = &pod(&j).containers[0];
    let env = c.env.as_ref().unwrap();
    let refs: Vec<(String, String, String, Option<bool>)> = env
        .iter()
        .filter(|e| e.name.starts_with("HERMIT_PEX_INDEX_"))
        .map(|e| {
            assert_eq!(e.value, None, "{e:?}");
            let r = e
                .value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap();
            (e.name.clone(), r.name.clone(), r.key.clone(), r.optional)
        })
        .collect();
    let want = |n: &str, k: &str| {
        (
            n.to_owned(),
            "pypi-internal".to_owned(),
            k.to_owned(),
            Some(true),
        )
    };
    assert_eq!(
        refs,
        [
            want("HERMIT_PEX_INDEX_USERNAME", "username"),
            want("HERMIT_PEX_INDEX_PASSWORD", "password"),
            want("HERMIT_PEX_INDEX_TOKEN", "token"),
        ]
    );
    let args = c.args.as_ref().unwrap().join(" ");
    assert!(
        !args.contains("pypi-internal") && !args.contains("password"),
        "{args}"
    );

    // Without a Secret configured the Job has no such variables.
    let j = lock_job(&PlatformTable::default(), &settings());
    let env = pod(&j).containers[0].env.clone().unwrap();
    assert!(env.iter().all(|e| !e.name.starts_with("HERMIT_PEX_INDEX_")));
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

#[test]
fn only_the_lock_job_of_a_git_source_gets_the_git_secrets_and_mounts_the_key_read_only() {
    let spec = format!("{SPEC}source: {{git: \"git@git.example.com:org/aider.git\"}}\n");
    let r = resource(&spec);
    let settings = JobSettings {
        git: GitCredentials {
            token_secret: Some(("git-creds".into(), "token".into())),
            ssh_key_secret: Some("git-ssh".into()),
        },
        ..settings()
    };
    let tag = crate::source::GitTag {
        tag: "v0.86.2".into(),
        commit: "c0ffee".into(),
    };
    let lock = lock_job_of(&r, Some(&tag), &PlatformTable::default(), &settings).unwrap();
    let spec = pod(&lock);
    let env = spec.containers[0].env.as_ref().unwrap();
    let token = env
        .iter()
        .find(|e| e.name == "HERMIT_PEX_GIT_TOKEN")
        .unwrap();
    assert!(token.value.is_none(), "never the token itself");
    let from = token.value_from.as_ref().unwrap().secret_key_ref.as_ref();
    assert_eq!(from.unwrap().name, "git-creds");
    let key = env
        .iter()
        .find(|e| e.name == "HERMIT_PEX_GIT_SSH_KEY")
        .unwrap();
    assert_eq!(key.value.as_deref(), Some("/etc/git-ssh/identity"));
    let mounts = spec.containers[0].volume_mounts.as_ref().unwrap();
    let ssh: Vec<_> = mounts.iter().filter(|m| m.name == "git-ssh").collect();
    assert_eq!(ssh.len(), 2);
    assert!(ssh.iter().all(|m| m.read_only == Some(true)));
    let volume = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "git-ssh")
        .unwrap();
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("git-ssh")
    );
    parsed(&lock); // the CLI takes it
    assert!(
        args(&lock)
            .windows(2)
            .any(|w| w == ["--git-commit", "c0ffee"]),
        "the lock step is told the commit"
    );

    let build = build_job(
        &r,
        &"0.86.2".parse().unwrap(),
        PythonMinor::new(12).unwrap(),
        Platform::ALL[1],
        &PlatformTable::default(),
        &settings,
    )
    .unwrap();
    let env = pod(&build).containers[0].env.as_ref().unwrap();
    assert!(
        !env.iter().any(|e| e.name.starts_with("HERMIT_PEX_GIT")),
        "a build takes the wheel from the release: it never reads the repository"
    );
}

/// `spec.index` picks one of the operator's indexes: its URL in the arguments and its Secret in
/// the environment; a name the operator did not define makes no Job at all.
#[test]
fn spec_index_picks_a_named_index_and_its_secret() {
    let mut s = JobSettings {
        index_credentials_secret: Some("default-creds".into()),
        ..settings()
    };
    s.named_indexes.insert(
        "team-ml".into(),
        JobIndex {
            url: "https://ml.internal/simple/".into(),
            credentials_secret: Some("ml-creds".into()),
        },
    );
    let picked = resource(&format!("{SPEC}index: team-ml\n"));
    let j = lock_job_of(&picked, None, &PlatformTable::default(), &s).unwrap();
    let cli = parsed(&j);
    let crate::cli::Command::Lock(a) = cli.command else {
        panic!("not a lock step")
    };
    assert_eq!(a.step.index.index_url, "https://ml.internal/simple/");
    let env = pod(&j).containers[0].env.clone().unwrap();
    let secrets: Vec<String> = env
        .iter()
        .filter(|e| e.name.starts_with("HERMIT_PEX_INDEX_"))
        .map(|e| {
            let r = e
                .value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap();
            r.name.clone()
        })
        .collect();
    assert_eq!(
        secrets, ["ml-creds"; 3],
        "the named index's Secret, not the default's"
    );

    let unknown = resource(&format!("{SPEC}index: nope\n"));
    assert_eq!(
        lock_job_of(&unknown, None, &PlatformTable::default(), &s).unwrap_err(),
        JobError::UnknownIndex("nope".into())
    );
}

const FLAVOURS: &str = r#"
flavours:
  deb:
    image: ghcr.io/acme/builder-bookworm:1
    install: [apt-get, install, -y, --no-install-recommends]
    family: deb
    buildPackages: [gcc, libc6-dev]
    runtimePackages: [libc6]
  deb-install:
    image: ghcr.io/acme/builder-bookworm:1
    install: [sh, -c, 'apt-get update && apt-get install -y "$@"', install]
    family: deb
    buildPackages: [gcc]
    installPackages: true
"#;

const NATIVE_SPEC: &str = "package: needs-native\nbinaries: [needs-native]\nversions:\n  - {version: \"1.0\", python: \"3.12\"}\npackages: [deb, rpm]\n";

fn flavoured(flavour: &str) -> (PythonPackage, JobSettings) {
    let r = resource(&format!(
        "{NATIVE_SPEC}build:\n  flavour: {flavour}\n  buildPackages: [libffi-dev, gcc]\n  runtimePackages: [libffi8]\n"
    ));
    let s = JobSettings {
        flavours: crate::flavour::Flavours::parse(FLAVOURS).unwrap(),
        ..settings()
    };
    (r, s)
}

fn native_build(r: &PythonPackage, s: &JobSettings) -> Result<Job, JobError> {
    build_job(
        r,
        &"1.0".parse().unwrap(),
        PythonMinor::new(12).unwrap(),
        Platform::new(Os::Linux, Arch::Amd64),
        &PlatformTable::default(),
        s,
    )
}

/// The Job's arguments make the same version inputs as the draft's (the spec's), and carry
/// the flavour's table entry for its base packages.
fn assert_inputs_match(job: &Job, r: &PythonPackage) {
    let step = match parsed(job).command {
        crate::cli::Command::Lock(a) => a.step,
        crate::cli::Command::Build(a) => a.step,
        _ => panic!("not a step"),
    };
    let from_args = crate::cli::step::step_job(&step).unwrap();
    let iv = crate::pypi::IndexVersion::new(step.version.clone());
    let drafted = crate::plan::inputs(&r.spec.package, &iv, PythonMinor::new(12).unwrap());
    assert_eq!(from_args.inputs, drafted);
    assert_eq!(
        drafted.packages,
        [
            crate::spec::PackageFormat::Deb,
            crate::spec::PackageFormat::Rpm
        ]
    );
    let table = crate::flavour::Flavours::parse(step.flavours_json.as_deref().unwrap()).unwrap();
    assert_eq!(table.flavours.len(), 1, "only its own flavour");
}

#[test]
fn a_flavour_that_installs_gets_one_root_init_container_with_exactly_the_validated_packages() {
    let (r, s) = flavoured("deb-install");
    for j in [
        native_build(&r, &s).unwrap(),
        lock_job_of(&r, None, &PlatformTable::default(), &s).unwrap(),
    ] {
        let p = pod(&j);
        let init = p.init_containers.as_ref().expect("an init container");
        assert_eq!(init.len(), 1);
        let i = &init[0];
        assert_eq!(i.image.as_deref(), Some("ghcr.io/acme/builder-bookworm:1"));
        // The flavour's argv as the command, the packages as arguments: the flavour's, then
        // the package's, each once. No shell string is made of them.
        assert_eq!(
            i.command.as_ref().unwrap(),
            &[
                "sh",
                "-c",
                "apt-get update && apt-get install -y \"$@\"",
                "install"
            ]
        );
        assert_eq!(i.args.as_ref().unwrap(), &["gcc", "libffi-dev"]);
        let sc = i.security_context.as_ref().unwrap();
        assert_eq!((sc.run_as_user, sc.run_as_non_root), (Some(0), Some(false)));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        // The build container stays restricted, and reads what was installed.
        let b = &p.containers[0];
        assert_eq!(b.image.as_deref(), Some("ghcr.io/acme/builder-bookworm:1"));
        let bsc = b.security_context.as_ref().unwrap();
        assert_eq!(
            (
                bsc.run_as_non_root,
                bsc.read_only_root_filesystem,
                bsc.allow_privilege_escalation
            ),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!(
            bsc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_owned()][..])
        );
        assert_eq!(
            p.security_context.as_ref().unwrap().run_as_non_root,
            Some(true)
        );
        let mount = b
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "sysroot")
            .unwrap();
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            (SYSROOT, Some(true))
        );
        let env = b.env.as_ref().unwrap();
        let cpath = env.iter().find(|e| e.name == "CPATH").unwrap();
        assert!(
            cpath
                .value
                .as_ref()
                .unwrap()
                .starts_with("/sysroot/usr/include")
        );
        let a = args(&j);
        assert!(
            a.contains(&"--build-packages-installed".to_owned()),
            "{a:?}"
        );
        assert_inputs_match(&j, &r);
    }
}

#[test]
fn a_flavour_without_installing_has_no_init_container_and_its_build_checks() {
    let (r, s) = flavoured("deb");
    let j = native_build(&r, &s).unwrap();
    let p = pod(&j);
    assert!(p.init_containers.is_none());
    assert_eq!(
        p.containers[0].image.as_deref(),
        Some("ghcr.io/acme/builder-bookworm:1")
    );
    assert!(
        !p.volumes
            .as_ref()
            .unwrap()
            .iter()
            .any(|v| v.name == "sysroot"),
        "no sysroot"
    );
    let a = args(&j);
    assert!(!a.contains(&"--build-packages-installed".to_owned()));
    assert_inputs_match(&j, &r);
    // Without a flavour, the controller's builder image and nothing else.
    let plain = resource(NATIVE_SPEC);
    let j = native_build(&plain, &s).unwrap();
    assert_eq!(
        pod(&j).containers[0].image.as_deref(),
        Some("ghcr.io/hermit-pex/builder:0.1.0")
    );
    assert!(pod(&j).init_containers.is_none());
    assert!(!args(&j).iter().any(|a| a.starts_with("--flavour")));
}

#[test]
fn an_unknown_flavour_makes_no_job() {
    let (r, s) = flavoured("gentoo");
    assert_eq!(
        native_build(&r, &s).unwrap_err(),
        JobError::UnknownFlavour("gentoo".into())
    );
}
