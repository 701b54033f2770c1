//! Build Jobs: one per (version, platform) of a `PythonPackage`, built as plain values (no API
//! calls) so every field is tested here. The pod runs `hermit-pex build ...` in the builder
//! image, on the node pool the platform table names for its platform.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use pep440_rs::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::resource::PythonPackage;
use crate::names::{Arch, Os, Platform, PythonMinor};

pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hermit-pex");
pub const PACKAGE_LABEL: &str = "hermit-pex.dev/package";
pub const VERSION_LABEL: &str = "hermit-pex.dev/version";
pub const PLATFORM_LABEL: &str = "hermit-pex.dev/platform";
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
}

/// What every build Job shares (from the controller's configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    /// The builder image: hermit-pex, pex and CPython 3.9–3.14.
    pub image: String,
    /// GitHub `OWNER/REPO` the releases go to.
    pub repository: String,
    /// The Secret and key holding the GitHub token.
    pub token_secret: (String, String),
    pub index_url: String,
    /// A PersistentVolumeClaim for the pex/pip cache; none: an emptyDir per pod.
    pub cache_claim: Option<String>,
    pub resources: Option<ResourceRequirements>,
    pub active_deadline_seconds: i64,
    pub backoff_limit: i32,
    pub ttl_seconds_after_finished: i32,
    pub service_account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("the platform table has no entry for {0}: add one (a node pool, or cross: true)")]
    NoPool(Platform),
    #[error("the PythonPackage has no uid yet (not read from the API server)")]
    NoUid,
}

/// `<package>-<version>-<os>-<arch>` as a DNS-1123 label (63 characters at most): lowercase,
/// `.`, `+`, `!` and `_` become `-`; past 63 characters it is cut and a hash of the full name
/// keeps it unique and stable.
pub fn job_name(package: &str, version: &Version, platform: Platform) -> String {
    let full = format!("{package}-{version}-{platform}");
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
        let hash = crate::pypi::hex(&Sha256::digest(full.as_bytes()));
        name = format!(
            "{}-{}",
            name[..name.len().min(52)].trim_end_matches('-'),
            &hash[..10]
        );
    }
    name
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

pub fn labels(package: &str, version: &Version, platform: Platform) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (PACKAGE_LABEL.to_owned(), label_value(package)),
        (VERSION_LABEL.to_owned(), label_value(&version.to_string())),
        (PLATFORM_LABEL.to_owned(), platform.to_string()),
    ])
}

/// The `hermit-pex build` arguments of one Job (the image's entrypoint is `hermit-pex`).
pub fn build_args(
    resource: &PythonPackage,
    version: &Version,
    python: PythonMinor,
    platform: Platform,
    settings: &JobSettings,
) -> Vec<String> {
    let spec = &resource.spec.package;
    let mut args: Vec<String> = vec![
        "build".into(),
        "--package".into(),
        spec.package.to_string(),
        "--version".into(),
        version.to_string(),
        "--python".into(),
        python.to_string(),
        "--platform".into(),
        platform.to_string(),
    ];
    for b in &spec.binaries {
        args.extend(["--binary".into(), b.to_string()]);
    }
    for e in &spec.extra_packages {
        args.extend(["--extra-package".into(), e.clone()]);
    }
    if let Some(c) = spec.config_version {
        args.extend(["--config-version".into(), c.to_string()]);
    }
    let repository = resource
        .spec
        .releases
        .as_ref()
        .map_or(&settings.repository, |r| &r.repository);
    args.extend([
        "--repository".into(),
        repository.clone(),
        "--index-url".into(),
        settings.index_url.clone(),
        "--cache-dir".into(),
        "/cache".into(),
    ]);
    args
}

/// The Job building `version` of `resource` for `platform`.
pub fn build_job(
    resource: &PythonPackage,
    version: &Version,
    python: PythonMinor,
    platform: Platform,
    table: &PlatformTable,
    settings: &JobSettings,
) -> Result<Job, JobError> {
    let pool = table
        .platforms
        .get(&platform)
        .ok_or(JobError::NoPool(platform))?;
    let owner = resource.controller_owner_ref(&()).ok_or(JobError::NoUid)?;
    let package = resource.spec.package.package.as_str();
    let labels = labels(package, version, platform);
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
    let container = Container {
        name: "build".into(),
        image: Some(settings.image.clone()),
        args: Some(build_args(resource, version, python, platform, settings)),
        env: Some(vec![
            EnvVar {
                name: "GITHUB_TOKEN".into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: token_name,
                        key: token_key,
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
            EnvVar {
                name: "HOME".into(),
                value: Some("/work".into()),
                ..EnvVar::default()
            },
        ]),
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
            name: Some(job_name(package, version, platform)),
            namespace: resource.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            annotations: Some({
                let mut a = made_for(resource);
                a.insert(VERSION_ANNOTATION.to_owned(), version.to_string());
                a
            }),
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

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

#[cfg(test)]
mod tests;
