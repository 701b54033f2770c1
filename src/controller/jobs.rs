//! The Jobs of a version, built as plain values (no API calls) so every field is tested here:
//! first one lock Job (`hermit-pex lock ...`: resolves the version once and records the lock
//! in its draft; a pure-Python lock builds every platform in the same Job), then one build Job
//! per platform (`hermit-pex build ...`, from the recorded lock) on the node pool the platform
//! table names for it. Every Job is handed the id of the version's one draft release, which
//! the controller made: Jobs upload to it and never create one.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use pep440_rs::Version;
use serde::{Deserialize, Serialize};

use super::resource::PythonPackage;
use crate::names::{Arch, Os, Platform, PythonMinor};
use crate::release::ReleaseId;

pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hermit-pex");
pub const PACKAGE_LABEL: &str = "hermit-pex.dev/package";
pub const VERSION_LABEL: &str = "hermit-pex.dev/version";
pub const PLATFORM_LABEL: &str = "hermit-pex.dev/platform";
/// `lock` or `build`.
pub const STEP_LABEL: &str = "hermit-pex.dev/step";
/// On a Job: the id of the release it writes to.
pub const RELEASE_ANNOTATION: &str = "hermit-pex.dev/release";
/// On a resource: set it (to anything new, e.g. a date) to retry failed builds.
pub const REQUESTED_AT: &str = "hermit-pex.dev/requested-at";
/// On a Job: its exact version (a label value cannot hold `1!2.0`).
pub const VERSION_ANNOTATION: &str = "hermit-pex.dev/version";
/// On a failed Job: `{"reason", "message"}` as reported, so it is explained and reported once.
pub const FAILURE: &str = "hermit-pex.dev/failure";
/// On a Job: the resource generation and request it was made for.
pub const FOR_GENERATION: &str = "hermit-pex.dev/generation";

/// What a Job was made for: a failed Job made for another spec or request is retried.
pub fn made_for(resource: &PythonPackage) -> BTreeMap<String, String> {
    let requested = resource
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTED_AT))
        .cloned()
        .unwrap_or_default();
    BTreeMap::from([
        (
            FOR_GENERATION.to_owned(),
            resource.metadata.generation.unwrap_or(0).to_string(),
        ),
        (REQUESTED_AT.to_owned(), requested),
    ])
}

/// How each platform is built in this cluster (Helm values → a ConfigMap the controller reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformTable {
    pub platforms: BTreeMap<Platform, Pool>,
}

/// Where one platform's builds run: a node pool of that platform, or (`cross: true`) a linux
/// node that builds it from the platform's complete-platform file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pool {
    #[serde(default)]
    pub cross: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

impl Default for PlatformTable {
    /// Linux builds on nodes of their architecture; darwin builds cross on linux nodes (a
    /// cluster rarely has darwin nodes).
    fn default() -> Self {
        let linux = |arch: &str| Pool {
            node_selector: BTreeMap::from([
                ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                ("kubernetes.io/arch".to_owned(), arch.to_owned()),
            ]),
            ..Pool::default()
        };
        let cross = Pool {
            cross: true,
            ..linux("amd64")
        };
        Self {
            platforms: BTreeMap::from([
                (Platform::new(Os::Linux, Arch::Amd64), linux("amd64")),
                (Platform::new(Os::Linux, Arch::Arm64), linux("arm64")),
                (Platform::new(Os::Darwin, Arch::Amd64), cross.clone()),
                (Platform::new(Os::Darwin, Arch::Arm64), cross),
            ]),
        }
    }
}

impl PlatformTable {
    /// Reads the table from YAML; an unknown platform or field names itself.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        serde_norway::from_str(yaml).map_err(|e| format!("platform table: {e}"))
    }

    /// Where a lock Job runs: a native linux pool, amd64 first, so that a pure-Python version
    /// (built in that Job) is tested on its own platform.
    /// The platforms whose builds run on nodes of their own (not cross): only they may use a
    /// wheel built from an sdist with platform code. The lock Job is told them.
    pub fn native(&self) -> Vec<Platform> {
        self.platforms
            .iter()
            .filter(|(p, pool)| p.os == Os::Linux && !pool.cross)
            .map(|(p, _)| *p)
            .collect()
    }

    pub fn lock_platform(&self) -> Option<Platform> {
        let native = |p: &Platform| {
            p.os == Os::Linux && self.platforms.get(p).is_some_and(|pool| !pool.cross)
        };
        let linux = [
            Platform::new(Os::Linux, Arch::Amd64),
            Platform::new(Os::Linux, Arch::Arm64),
        ];
        linux
            .iter()
            .find(|p| native(p))
            .or_else(|| linux.iter().find(|p| self.platforms.contains_key(p)))
            .or_else(|| self.platforms.keys().next())
            .copied()
    }
}

/// What every build Job shares (from the controller's configuration). Everything a build
/// reads reaches the Job through these (a test walks them).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    /// The builder image: hermit-pex, pex and CPython 3.9–3.14.
    pub image: String,
    /// GitHub `OWNER/REPO` the releases go to.
    pub repository: String,
    /// GitHub's REST API root (GitHub Enterprise: `https://HOST/api/v3/`) and web root.
    pub github_api_url: String,
    pub github_url: String,
    /// The Secret and key holding the GitHub token.
    pub token_secret: (String, String),
    /// The index, without credentials (those come from `index_credentials_secret`).
    pub index_url: String,
    /// Indexes pex also resolves from (`--extra-index-url`), without credentials.
    pub extra_index_urls: Vec<String>,
    /// A Secret in the PythonPackage's namespace with optional keys `username`, `password`,
    /// `token`: the index's credentials, given to the Job as environment variables.
    pub index_credentials_secret: Option<String>,
    /// The operator's other indexes by name, which a resource's `spec.index` may pick.
    pub named_indexes: BTreeMap<String, JobIndex>,
    /// Seconds a pex run, and a build's test, may take.
    pub build_timeout: u64,
    pub test_timeout: u64,
    /// The controller's log settings, for the Jobs' logs: `-v` count and `text`/`json`.
    pub verbosity: u8,
    pub log_format: String,
    /// A PersistentVolumeClaim for the pex/pip cache; none: an emptyDir per pod.
    pub cache_claim: Option<String>,
    pub resources: Option<ResourceRequirements>,
    pub active_deadline_seconds: i64,
    pub backoff_limit: i32,
    pub ttl_seconds_after_finished: i32,
    pub service_account: Option<String>,
    /// What the lock Job of a Git-source version checks its repository out with.
    pub git: GitCredentials,
    /// Whether the Jobs may resolve direct references (`--allow-direct-references`).
    pub allow_direct_references: bool,
    /// The operator's build flavours (`--flavours`): a resource's `build.flavour` picks the
    /// image its Jobs run and the system packages they need.
    pub flavours: crate::flavour::Flavours,
}

/// Secrets (in the PythonPackage's namespace) a lock Job reads a private repository with:
/// a token for https (`HERMIT_PEX_GIT_TOKEN`), and an SSH key for ssh (keys `identity` and
/// `known_hosts`, as the controller's own manifest key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitCredentials {
    pub token_secret: Option<(String, String)>,
    pub ssh_key_secret: Option<String>,
}

impl JobSettings {
    /// The chart's defaults, for `image` releasing to `repository` on github.com from PyPI.
    pub fn new(image: &str, repository: &str) -> Self {
        Self {
            image: image.into(),
            repository: repository.into(),
            github_api_url: "https://api.github.com/".into(),
            github_url: "https://github.com".into(),
            token_secret: ("hermit-pex-github".into(), "token".into()),
            index_url: crate::pypi::DEFAULT_INDEX_URL.into(),
            extra_index_urls: Vec::new(),
            index_credentials_secret: None,
            named_indexes: BTreeMap::new(),
            build_timeout: 1800,
            test_timeout: 300,
            verbosity: 0,
            log_format: "text".into(),
            cache_claim: None,
            resources: None,
            active_deadline_seconds: 7200,
            backoff_limit: 2,
            ttl_seconds_after_finished: 86_400,
            service_account: None,
            git: GitCredentials::default(),
            allow_direct_references: false,
            flavours: crate::flavour::Flavours::default(),
        }
    }
}

/// A package index as a Job uses it: its URL (no credentials) and the Secret holding them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIndex {
    pub url: String,
    pub credentials_secret: Option<String>,
}

impl JobSettings {
    /// The index `resource` builds from: the one its `spec.index` names, else the default.
    pub fn index_for(&self, resource: &PythonPackage) -> Result<JobIndex, JobError> {
        match &resource.spec.index {
            None => Ok(JobIndex {
                url: self.index_url.clone(),
                credentials_secret: self.index_credentials_secret.clone(),
            }),
            Some(name) => self
                .named_indexes
                .get(name)
                .cloned()
                .ok_or_else(|| JobError::UnknownIndex(name.clone())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("spec.index {0}: the controller has no index of that name")]
    UnknownIndex(String),
    #[error("the platform table has no entry for {0}: add one (a node pool, or cross: true)")]
    NoPool(Platform),
    #[error("the platform table is empty: a lock Job has nowhere to run")]
    NoLockPool,
    #[error("the PythonPackage has no uid yet (not read from the API server)")]
    NoUid,
    #[error(
        "spec.build.flavour {0}: the controller has no flavour of that name (its --flavours table)"
    )]
    UnknownFlavour(String),
}

/// `<package>-<version>-<os>-<arch>` as a DNS-1123 label (63 characters at most): lowercase,
/// `.`, `+`, `!` and `_` become `-`; past 63 characters it is cut and a hash of the full name
/// keeps it unique and stable.
pub fn job_name(package: &str, version: &Version, platform: Platform) -> String {
    dns_name(&format!("{package}-{version}-{platform}"), version)
}

fn dns_name(full: &str, version: &Version) -> String {
    let mut name: String = full
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    // `1!2.0` and `1.2.0` would meet in one name: a version the name cannot spell exactly
    // gets the hash too.
    let exact = version
        .to_string()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.');
    if name.len() > 63 || !exact {
        let hash = crate::digest::sha256_hex(full);
        name = format!(
            "{}-{}",
            name[..name.len().min(52)].trim_end_matches('-'),
            &hash[..10]
        );
    }
    name
}

/// The lock Job's name: `<package>-<version>-lock`, by the same rules as [`job_name`].
pub fn lock_job_name(package: &str, version: &Version) -> String {
    dns_name(&format!("{package}-{version}-lock"), version)
}

/// A label value: at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
pub fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The labels of a version's Job: the platform for a build Job, none for the lock Job.
pub fn labels(
    package: &str,
    version: &Version,
    platform: Option<Platform>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (PACKAGE_LABEL.to_owned(), label_value(package)),
        (VERSION_LABEL.to_owned(), label_value(&version.to_string())),
    ]);
    match platform {
        Some(p) => {
            labels.insert(STEP_LABEL.to_owned(), "build".to_owned());
            labels.insert(PLATFORM_LABEL.to_owned(), p.to_string());
        }
        None => {
            labels.insert(STEP_LABEL.to_owned(), "lock".to_owned());
        }
    }
    labels
}

/// Which of a version's Jobs: the lock (and the platforms a pure lock builds), or one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStep {
    Lock { platforms: Vec<Platform> },
    Build { platform: Platform },
}

/// What one Job is for.
pub struct JobFor<'a> {
    pub version: &'a Version,
    pub python: PythonMinor,
    pub release: &'a ReleaseId,
    pub step: JobStep,
    /// A version from a Git repository: its tag and commit.
    pub git: Option<&'a crate::source::GitTag>,
}

/// The `hermit-pex lock|build` arguments of one Job (the image's entrypoint is `hermit-pex`).
pub fn step_args(
    resource: &PythonPackage,
    job: &JobFor<'_>,
    settings: &JobSettings,
    index: &JobIndex,
    native: &[Platform],
) -> Vec<String> {
    let spec = &resource.spec.package;
    let mut args: Vec<String> = vec![
        match job.step {
            JobStep::Lock { .. } => "lock",
            JobStep::Build { .. } => "build",
        }
        .into(),
        "--package".into(),
        spec.package.to_string(),
        "--version".into(),
        job.version.to_string(),
        "--python".into(),
        job.python.to_string(),
        "--release-id".into(),
        job.release.to_string(),
    ];
    match &job.step {
        JobStep::Lock { platforms } => {
            for p in platforms {
                args.extend(["--platform".into(), p.to_string()]);
            }
            for p in native {
                args.extend(["--native-platform".into(), p.to_string()]);
            }
        }
        JobStep::Build { platform } => args.extend(["--platform".into(), platform.to_string()]),
    }
    for b in &spec.binaries {
        args.extend(["--binary".into(), b.to_string()]);
    }
    for e in &spec.extra_packages {
        args.extend(["--extra-package".into(), e.clone()]);
    }
    if let Some(c) = spec.config_version {
        args.extend(["--config-version".into(), c.to_string()]);
    }
    if let Some(t) = &spec.test {
        args.extend(["--test".into(), t.clone()]);
    }
    for f in &spec.packages {
        args.extend(["--package-format".into(), f.to_string()]);
    }
    if let Some(build) = &spec.build {
        if let Some(f) = &build.flavour {
            args.extend(["--flavour".into(), f.clone()]);
            let one = settings.flavours.only(f);
            args.extend([
                "--flavours-json".into(),
                serde_json::to_string(&one).expect("a flavour table serialises"),
            ]);
        }
        for p in &build.build_packages {
            args.extend(["--build-package".into(), p.clone()]);
        }
        for p in &build.runtime_packages {
            args.extend(["--runtime-package".into(), p.clone()]);
        }
    }
    if let (Some(source), Some(tag)) = (&spec.source, job.git) {
        args.extend(["--git".into(), source.git.clone()]);
        if !source.subdirectory().is_empty() {
            args.extend([
                "--git-subdirectory".into(),
                source.subdirectory().to_owned(),
            ]);
        }
        args.extend([
            "--git-tag".into(),
            tag.tag.clone(),
            "--git-commit".into(),
            tag.commit.clone(),
        ]);
    }
    let repository = resource
        .spec
        .releases
        .as_ref()
        .map_or(&settings.repository, |r| &r.repository);
    args.extend([
        "--repository".into(),
        repository.clone(),
        "--github-api-url".into(),
        settings.github_api_url.clone(),
        "--github-url".into(),
        settings.github_url.clone(),
        "--index-url".into(),
        index.url.clone(),
    ]);
    for url in &settings.extra_index_urls {
        args.extend(["--extra-index-url".into(), url.clone()]);
    }
    if settings.allow_direct_references {
        args.push("--allow-direct-references".into());
    }
    args.extend([
        "--cache-dir".into(),
        "/cache".into(),
        "--build-timeout".into(),
        settings.build_timeout.to_string(),
        "--test-timeout".into(),
        settings.test_timeout.to_string(),
        "--log-format".into(),
        settings.log_format.clone(),
    ]);
    if settings.verbosity > 0 {
        args.push(format!("-{}", "v".repeat(settings.verbosity.min(2).into())));
    }
    args
}

/// One Job of a version of `resource`: its lock, or one platform's build.
pub fn step_job(
    resource: &PythonPackage,
    job: &JobFor<'_>,
    table: &PlatformTable,
    settings: &JobSettings,
) -> Result<Job, JobError> {
    let package = resource.spec.package.package.as_str();
    let (name, labels, pool) = match &job.step {
        JobStep::Lock { .. } => {
            let at = table.lock_platform().ok_or(JobError::NoLockPool)?;
            (
                lock_job_name(package, job.version),
                labels(package, job.version, None),
                table.platforms.get(&at).ok_or(JobError::NoPool(at))?,
            )
        }
        JobStep::Build { platform } => (
            job_name(package, job.version, *platform),
            labels(package, job.version, Some(*platform)),
            table
                .platforms
                .get(platform)
                .ok_or(JobError::NoPool(*platform))?,
        ),
    };
    let mut annotations = made_for(resource);
    annotations.insert(VERSION_ANNOTATION.to_owned(), job.version.to_string());
    annotations.insert(RELEASE_ANNOTATION.to_owned(), job.release.to_string());
    // An unknown spec.index fails closed: no Job, never the default index in its place.
    let index = settings.index_for(resource)?;
    // So does an unknown flavour: never the default image without its packages.
    let build = resource.spec.package.build.as_ref();
    let flavour = settings.flavours.resolve(build).map_err(|_| {
        JobError::UnknownFlavour(build.and_then(|b| b.flavour.clone()).unwrap_or_default())
    })?;
    let mut args = step_args(resource, job, settings, &index, &table.native());
    if flavour.installs() {
        args.push("--build-packages-installed".into());
    }
    let mut object = job_object(resource, name, labels, annotations, args, pool, settings)?;
    let at = match &job.step {
        JobStep::Lock { .. } => table.lock_platform().ok_or(JobError::NoLockPool)?,
        JobStep::Build { platform } => *platform,
    };
    with_flavour(&mut object, &flavour, at);
    if let Some(secret) = &index.credentials_secret {
        container_env(&mut object).extend(index_credentials_env(secret));
    }
    // Only the lock step checks the repository out: the builds take the wheel it uploaded.
    if resource.spec.package.source.is_some() && matches!(job.step, JobStep::Lock { .. }) {
        with_git_credentials(&mut object, &settings.git);
    }
    Ok(object)
}

/// Where the init container of a flavour with `installPackages: true` installs the build
/// packages, and the build container finds them (read-only): containers of a pod share no
/// file system but their volumes.
pub const SYSROOT: &str = "/sysroot";

/// Runs a Job in its flavour's image; where the flavour installs packages, adds the init
/// container that does, as root (the only container that does), from the validated list as
/// arguments after the flavour's command (no shell), into the sysroot volume, and points the
/// build container's compiler and linker at it.
fn with_flavour(job: &mut Job, flavour: &crate::flavour::Resolved, platform: Platform) {
    let Some(pod) = job.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
        return;
    };
    let Some((_, f)) = &flavour.flavour else {
        return;
    };
    if let Some(image) = &f.image {
        pod.containers[0].image = Some(image.clone());
    }
    if !flavour.installs() {
        return;
    }
    let image = pod.containers[0].image.clone();
    let mount = |read_only| VolumeMount {
        name: "sysroot".into(),
        mount_path: SYSROOT.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    pod.init_containers = Some(vec![Container {
        name: "install-packages".into(),
        image,
        command: Some(f.install.clone()),
        args: Some(flavour.build_packages.clone()),
        env: Some(vec![EnvVar {
            name: "HERMIT_PEX_SYSROOT".into(),
            value: Some(SYSROOT.into()),
            ..EnvVar::default()
        }]),
        volume_mounts: Some(vec![mount(false), {
            let mut tmp = mount(false);
            tmp.name = "tmp".into();
            tmp.mount_path = "/tmp".into();
            tmp
        }]),
        resources: pod.containers[0].resources.clone(),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        // A package manager runs as root, changes owners and drops to its own user to fetch.
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: Some(
                    ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
                        .map(String::from)
                        .to_vec(),
                ),
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }]);
    pod.volumes
        .get_or_insert_with(Vec::new)
        .push(empty_dir("sysroot"));
    let build = &mut pod.containers[0];
    build
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(mount(true));
    let triple = match platform.arch {
        Arch::Amd64 => "x86_64-linux-gnu",
        Arch::Arm64 => "aarch64-linux-gnu",
    };
    let paths = |dirs: &[&str]| {
        dirs.iter()
            .map(|d| format!("{SYSROOT}{d}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let libs = paths(&[
        &format!("/usr/lib/{triple}"),
        "/usr/lib64",
        "/usr/lib",
        &format!("/lib/{triple}"),
        "/lib64",
        "/lib",
    ]);
    let env = build.env.get_or_insert_with(Vec::new);
    for (name, value) in [
        ("HERMIT_PEX_SYSROOT", SYSROOT.to_owned()),
        (
            "CPATH",
            paths(&["/usr/include", &format!("/usr/include/{triple}")]),
        ),
        ("LIBRARY_PATH", libs.clone()),
        ("LD_LIBRARY_PATH", libs),
        (
            "PKG_CONFIG_PATH",
            paths(&[
                &format!("/usr/lib/{triple}/pkgconfig"),
                "/usr/lib64/pkgconfig",
                "/usr/lib/pkgconfig",
                "/usr/share/pkgconfig",
            ]),
        ),
    ] {
        env.push(EnvVar {
            name: name.into(),
            value: Some(value),
            ..EnvVar::default()
        });
    }
}

/// Gives a Job's pod the Git credentials: the token as an environment variable from its
/// Secret, the SSH key and known hosts mounted read-only from theirs.
fn with_git_credentials(job: &mut Job, git: &GitCredentials) {
    let Some(pod) = job.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
        return;
    };
    let container = &mut pod.containers[0];
    let env = container.env.get_or_insert_with(Vec::new);
    if let Some((name, key)) = &git.token_secret {
        env.push(secret_env("HERMIT_PEX_GIT_TOKEN", name, key, false));
    }
    let Some(secret) = &git.ssh_key_secret else {
        return;
    };
    env.push(EnvVar {
        name: "HERMIT_PEX_GIT_SSH_KEY".into(),
        value: Some("/etc/git-ssh/identity".into()),
        ..EnvVar::default()
    });
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    mounts.push(VolumeMount {
        name: "git-ssh".into(),
        mount_path: "/etc/git-ssh".into(),
        read_only: Some(true),
        ..VolumeMount::default()
    });
    // ssh reads known hosts from here whatever HOME is.
    mounts.push(VolumeMount {
        name: "git-ssh".into(),
        mount_path: "/etc/ssh/ssh_known_hosts".into(),
        sub_path: Some("known_hosts".into()),
        read_only: Some(true),
        ..VolumeMount::default()
    });
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: "git-ssh".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.clone()),
            // 0440: readable by the pod's group (fsGroup), as ssh wants a key.
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    });
}

/// The Job object around a step's arguments: owner, limits, restricted pod, token, pool.
fn job_object(
    resource: &PythonPackage,
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    args: Vec<String>,
    pool: &Pool,
    settings: &JobSettings,
) -> Result<Job, JobError> {
    let owner = resource.controller_owner_ref(&()).ok_or(JobError::NoUid)?;
    let (token_name, token_key) = settings.token_secret.clone();
    let cache = match &settings.cache_claim {
        Some(claim) => Volume {
            name: "cache".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: None,
            }),
            ..Volume::default()
        },
        None => empty_dir("cache"),
    };
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    };
    let env = vec![
        secret_env("GITHUB_TOKEN", &token_name, &token_key, false),
        EnvVar {
            name: "HOME".into(),
            value: Some("/work".into()),
            ..EnvVar::default()
        },
    ];
    let container = Container {
        name: "build".into(),
        image: Some(settings.image.clone()),
        args: Some(args),
        env: Some(env),
        volume_mounts: Some(vec![
            mount("work", "/work"),
            mount("cache", "/cache"),
            mount("tmp", "/tmp"),
        ]),
        resources: settings.resources.clone(),
        // A failed build's log tail becomes the pod's termination message, which the
        // controller puts in the status.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let pod = PodSpec {
        restart_policy: Some("Never".into()),
        // Builds talk to the index and GitHub, never to the API server.
        automount_service_account_token: Some(false),
        service_account_name: settings.service_account.clone(),
        node_selector: (!pool.node_selector.is_empty()).then(|| pool.node_selector.clone()),
        tolerations: (!pool.tolerations.is_empty()).then(|| pool.tolerations.clone()),
        affinity: pool.affinity.clone(),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            fs_group: Some(65532),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(vec![empty_dir("work"), cache, empty_dir("tmp")]),
        ..PodSpec::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: resource.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(settings.active_deadline_seconds),
            ttl_seconds_after_finished: Some(settings.ttl_seconds_after_finished),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}

/// The index credentials from `secret` as the variables hermit-pex reads, by reference: the
/// values never enter the Job object. Each key is optional, so a Secret with just `token` (or
/// just `username` and `password`) serves.
fn index_credentials_env(secret: &str) -> Vec<EnvVar> {
    use crate::pypi::auth::{PASSWORD_ENV, TOKEN_ENV, USERNAME_ENV};
    [
        (USERNAME_ENV, "username"),
        (PASSWORD_ENV, "password"),
        (TOKEN_ENV, "token"),
    ]
    .into_iter()
    .map(|(name, key)| secret_env(name, secret, key, true))
    .collect()
}

/// The variable `var` from the key `key` of the Secret `secret`, by reference: the value
/// never enters the Job object.
fn secret_env(var: &str, secret: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: var.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(optional),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The build container's environment.
fn container_env(job: &mut Job) -> &mut Vec<EnvVar> {
    job.spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .expect("job_object makes a pod template")
        .containers[0]
        .env
        .get_or_insert_with(Vec::new)
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

#[cfg(test)]
mod tests;
