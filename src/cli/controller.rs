//! `hermit-pex controller`: its flags, turned into the controller's plain settings.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use reqwest::Url;

use super::{GitHubArgs, IndexArgs, LogFormat, ManifestArgs, Ruled, timeout_seconds};
use crate::controller::hook::{self, HookSecret};
use crate::controller::jobs::{GitCredentials, JobSettings, PlatformTable};
use crate::controller::run::{Config, LeaseSettings};
use crate::spec::rules;

#[derive(Args)]
pub struct ControllerArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "HERMIT_PEX_NAMESPACE")]
    pub namespace: Option<String>,
    /// GitHub OWNER/REPO for releases (a resource's spec.releases overrides it).
    #[arg(long, env = "HERMIT_PEX_REPOSITORY", value_parser = Ruled(rules::release_repository))]
    pub repository: String,
    /// The builder image the Jobs run.
    #[arg(long, env = "HERMIT_PEX_BUILDER_IMAGE")]
    pub builder_image: String,
    /// The platform table (YAML); default: linux on nodes of each arch, darwin cross on linux.
    #[arg(long, env = "HERMIT_PEX_PLATFORM_TABLE", value_parser = super::absolute_path)]
    pub platform_table: Option<PathBuf>,
    /// The build flavours a resource's spec.build.flavour may name (YAML, as `sync --flavours`).
    #[arg(long, env = "HERMIT_PEX_FLAVOURS")]
    pub flavours: Option<PathBuf>,
    /// The Secret (in each resource's namespace) holding the GitHub token for build Jobs.
    #[arg(long, default_value = "hermit-pex-github")]
    pub token_secret: String,
    /// The key of the token in --token-secret.
    #[arg(long, default_value = "token")]
    pub token_key: String,
    /// A PersistentVolumeClaim (in each resource's namespace) for the builders' pex cache.
    #[arg(long)]
    pub cache_claim: Option<String>,
    /// The ServiceAccount of build pods.
    #[arg(long)]
    pub builder_service_account: Option<String>,
    /// Requests and limits of build pods, as JSON: {"requests":{"cpu":"1","memory":"2Gi"},...}.
    #[arg(long)]
    pub builder_resources: Option<String>,
    /// Build Jobs running at once per package.
    #[arg(long, default_value_t = 8)]
    pub per_package: usize,
    /// Build Jobs running at once across all packages.
    #[arg(long, default_value_t = 32)]
    pub max_jobs: usize,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Seconds a build Job's pex run may take.
    #[arg(long, default_value_t = 1800, value_parser = timeout_seconds)]
    pub build_timeout: u64,
    /// Seconds a build Job's test of its build may take.
    #[arg(long, default_value_t = 300, value_parser = timeout_seconds)]
    pub test_timeout: u64,
    /// activeDeadlineSeconds of build Jobs.
    #[arg(long, default_value_t = 7200)]
    pub job_deadline_seconds: i64,
    /// backoffLimit of build Jobs (pod retries before the build counts as failed).
    #[arg(long, default_value_t = 2)]
    pub job_backoff_limit: i32,
    /// ttlSecondsAfterFinished of build Jobs.
    #[arg(long, default_value_t = 86_400)]
    pub job_ttl_seconds: i32,
    #[command(flatten)]
    pub index: IndexArgs,
    /// A Secret (in each PythonPackage's namespace) with optional keys `username`, `password`,
    /// `token`: the index's credentials for build Jobs, by reference. The controller reads its
    /// own from the HERMIT_PEX_INDEX_* variables (the chart sets them from the same Secret).
    #[arg(long)]
    pub index_credentials_secret: Option<String>,
    /// Another index a PythonPackage may pick with `spec.index: NAME` (repeatable), as
    /// NAME=URL. The controller's credentials for it: HERMIT_PEX_INDEX_<NAME>_USERNAME/_PASSWORD
    /// or _TOKEN (NAME uppercased, '-' as '_'); the Jobs': --named-index-credentials-secret.
    #[arg(long = "named-index", value_parser = named_value)]
    pub named_indexes: Vec<(String, String)>,
    /// NAME=SECRET: the Secret (in each PythonPackage's namespace; keys as for
    /// --index-credentials-secret) with the credentials of the named index NAME.
    #[arg(long = "named-index-credentials-secret", value_parser = named_value)]
    pub named_index_secrets: Vec<(String, String)>,
    #[command(flatten)]
    pub github: GitHubArgs,
    /// A repository a PythonPackage's spec.releases may name (repeat or comma-separate; none:
    /// spec.releases is refused). Releases there are made with the controller's token.
    #[arg(
        long = "allow-release-repository",
        value_delimiter = ',',
        value_parser = Ruled(rules::release_repository)
    )]
    pub allowed_release_repositories: Vec<String>,
    /// A Git URL a PythonPackage's spec.manifests may name (repeat or comma-separate; none:
    /// spec.manifests is refused). Pushes there carry the controller's token.
    #[arg(
        long = "allow-manifest-repository",
        value_delimiter = ',',
        value_parser = Ruled(rules::git_url)
    )]
    pub allowed_manifest_repositories: Vec<String>,
    /// A Git URL, or a prefix ending in `/*`, a PythonPackage's spec.source.git may name
    /// (repeat or comma-separate; none: spec.source is refused). Its tags are listed with the
    /// controller's Git credentials, and its lock Jobs check it out with --git-token-secret.
    #[arg(long = "allow-source-repository", value_delimiter = ',')]
    pub allowed_source_repositories: Vec<String>,
    /// The Secret (and key, `NAME/KEY`; default key `token`) in each PythonPackage's namespace
    /// with a token the lock Jobs of Git-source packages read https repositories with.
    #[arg(long)]
    pub git_token_secret: Option<String>,
    /// The Secret (keys `identity`, `known_hosts`) in each PythonPackage's namespace the lock
    /// Jobs of Git-source packages read ssh repositories with.
    #[arg(long)]
    pub git_ssh_key_secret: Option<String>,
    /// Where manifests are committed (none: manifests are not committed).
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Where the index of published wheels goes (none: no index).
    #[command(flatten)]
    pub wheel_index: super::WheelIndexRepoArgs,
    /// The private indexes a PythonPackage's spec.publish may name; the controller's
    /// credentials for NAME: HERMIT_PEX_PUBLISH_<NAME>_USERNAME/_PASSWORD or _TOKEN.
    #[command(flatten)]
    pub publish: super::PublishArgs,
    /// Serve /metrics, /healthz and /readyz on this address, and the webhook receiver
    /// (POST /hook/NAMESPACE/NAME) when HERMIT_PEX_WEBHOOK_SECRET is set.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Run only while holding a Lease, so that several replicas can run (one active).
    #[arg(long)]
    pub leader_elect: bool,
    /// The Lease's name.
    #[arg(long, default_value = "hermit-pex")]
    pub lease_name: String,
    /// The Lease's namespace (default: the pod's, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
}

pub async fn controller_command(
    args: ControllerArgs,
    verbosity: u8,
    log_format: LogFormat,
) -> anyhow::Result<ExitCode> {
    crate::controller::run::run(args.config(verbosity, log_format)?).await
}

/// `NAME=VALUE` with NAME a DNS label, as `spec.index` names it.
pub(crate) fn named_value(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write NAME=VALUE"))?;
    if !crate::spec::rules::is_dns_label(name) {
        return Err(format!(
            "{name:?}: an index name is lowercase letters, digits and '-' (a DNS label)"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

type NamedIndexes = (
    std::collections::BTreeMap<String, crate::pypi::Index>,
    std::collections::BTreeMap<String, crate::controller::jobs::JobIndex>,
);

impl ControllerArgs {
    /// The named indexes: for the controller with credentials from its environment, for the
    /// Jobs as URL and Secret name.
    fn named_indexes(&self) -> anyhow::Result<NamedIndexes> {
        let mut clients = std::collections::BTreeMap::new();
        let mut jobs = std::collections::BTreeMap::new();
        for (name, url) in &self.named_indexes {
            if Url::parse(url).is_ok_and(|u| !u.username().is_empty()) {
                anyhow::bail!(
                    "--named-index {name}: take the credentials out of the URL and into --named-index-credentials-secret"
                );
            }
            let env = crate::pypi::EnvCredentials::for_named(name)?;
            let index = crate::pypi::auth_index(url, env.0)?;
            let job = crate::controller::jobs::JobIndex {
                url: index.url.to_string(),
                credentials_secret: None,
            };
            if clients.insert(name.clone(), index).is_some() {
                anyhow::bail!("--named-index {name}: given twice");
            }
            jobs.insert(name.clone(), job);
        }
        for (name, secret) in &self.named_index_secrets {
            let job = jobs.get_mut(name).with_context(|| {
                format!("--named-index-credentials-secret {name}: no --named-index {name}=URL")
            })?;
            job.credentials_secret = Some(secret.clone());
        }
        Ok((clients, jobs))
    }

    /// The settings these flags give; a bad file or value fails here, naming the flag.
    pub fn config(&self, verbosity: u8, log_format: LogFormat) -> anyhow::Result<Config> {
        let table = match &self.platform_table {
            Some(f) => PlatformTable::parse(
                &std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?,
            )
            .map_err(anyhow::Error::msg)?,
            None => PlatformTable::default(),
        };
        let resources = self
            .builder_resources
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .context("--builder-resources: write it as JSON, e.g. {\"requests\":{\"cpu\":\"1\",\"memory\":\"2Gi\"}}")?;
        let cache = self
            .index
            .cache_dir
            .clone()
            .or_else(super::default_cache_dir)
            .unwrap_or_else(|| std::env::temp_dir().join("hermit-pex"));
        let lease = if self.leader_elect {
            let namespace = self.lease_namespace.clone().context(
                "--leader-elect needs --lease-namespace (or POD_NAMESPACE from the downward API)",
            )?;
            // Each replica needs its own name: the pod's, else the host's (a container's is its
            // pod's), never a pid (1 in every container).
            let identity = std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .context("--leader-elect needs POD_NAME (from the downward API) or HOSTNAME")?;
            Some(LeaseSettings {
                name: self.lease_name.clone(),
                namespace,
                identity,
            })
        } else {
            None
        };
        let index = self.index.primary()?;
        // A Job's arguments are readable by anyone who can read Jobs: credentials go by Secret.
        if Url::parse(&self.index.index_url).is_ok_and(|u| !u.username().is_empty())
            || self
                .index
                .extra_index_urls
                .iter()
                .any(|u| Url::parse(u).is_ok_and(|u| !u.username().is_empty()))
        {
            anyhow::bail!(
                "--index-url/--extra-index-url: take the credentials out of the URL and into the Secret named by --index-credentials-secret (keys username and password, or token); build Jobs would carry them in their arguments"
            );
        }
        let extra_index_urls = self
            .index
            .extra_index_urls
            .iter()
            .filter(|u| !u.is_empty())
            .map(|u| Ok(crate::pypi::auth_index(u, None)?.url.to_string()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (named_clients, named_jobs) = self.named_indexes()?;
        Ok(Config {
            named_indexes: named_clients,
            namespace: self.namespace.clone(),
            store: crate::release::StoreSettings {
                dist: cache.join("dist"),
                base_url: None,
                repository: Some(self.repository.clone()),
                api_url: self.github.github_api_url.clone(),
                html_url: self.github.github_url.clone(),
                prerelease: false,
                write_interval: std::time::Duration::from_secs(1),
                cache_dir: Some(cache.clone()),
                max_view_age: Some(std::time::Duration::from_secs(30)),
            },
            index: index.clone(),
            cache_dir: cache.clone(),
            table,
            jobs: JobSettings {
                image: self.builder_image.clone(),
                repository: self.repository.clone(),
                github_api_url: self.github.github_api_url.clone(),
                github_url: self.github.github_url.clone(),
                token_secret: (self.token_secret.clone(), self.token_key.clone()),
                index_url: index.url.to_string(),
                extra_index_urls,
                index_credentials_secret: self.index_credentials_secret.clone(),
                named_indexes: named_jobs,
                build_timeout: self.build_timeout,
                test_timeout: self.test_timeout,
                verbosity,
                log_format: match log_format {
                    LogFormat::Text => "text".into(),
                    LogFormat::Json => "json".into(),
                },
                cache_claim: self.cache_claim.clone(),
                resources,
                active_deadline_seconds: self.job_deadline_seconds,
                backoff_limit: self.job_backoff_limit,
                ttl_seconds_after_finished: self.job_ttl_seconds,
                service_account: self.builder_service_account.clone(),
                allow_direct_references: self.index.allow_direct_references,
                git: GitCredentials {
                    token_secret: self.git_token_secret.as_deref().map(|s| {
                        let (name, key) = s.split_once('/').unwrap_or((s, "token"));
                        (name.to_owned(), key.to_owned())
                    }),
                    ssh_key_secret: self.git_ssh_key_secret.clone(),
                },
                flavours: crate::cli::read_flavours(self.flavours.as_deref())
                    .context("--flavours")?,
            },
            per_package: self.per_package,
            max_jobs: self.max_jobs,
            concurrency: self.concurrency,
            allowed_release_repositories: self.allowed_release_repositories.clone(),
            allowed_manifest_repositories: self.allowed_manifest_repositories.clone(),
            allowed_source_repositories: self.allowed_source_repositories.clone(),
            allow_direct_references: self.index.allow_direct_references,
            manifest: self
                .manifest
                .settings(&self.github.github_api_url, cache.clone()),
            wheel_index: self.wheel_index.settings(),
            publish_indexes: self.publish.indexes()?,
            metrics_addr: self.metrics_addr,
            webhook_secret: webhook_secret()?,
            lease,
        })
    }
}

/// The webhook receiver's secret, from the environment only: a flag's value would be in the
/// process list. Unset: no receiver.
fn webhook_secret() -> anyhow::Result<Option<HookSecret>> {
    webhook_secret_from(std::env::var_os(hook::SECRET_ENV))
}

fn webhook_secret_from(value: Option<std::ffi::OsString>) -> anyhow::Result<Option<HookSecret>> {
    let Some(value) = value else { return Ok(None) };
    // A secret written to a file with `echo` ends in a newline the Git host's copy has not.
    let bytes = value.as_encoded_bytes();
    let end = bytes.len()
        - bytes
            .iter()
            .rev()
            .take_while(|b| matches!(b, b'\n' | b'\r'))
            .count();
    // Set but empty is a mistake (a missing Secret key), not "off".
    HookSecret::new(&bytes[..end]).map(Some).with_context(|| {
        format!(
            "{} is set but empty: set the secret shared with the Git host, or unset it",
            hook::SECRET_ENV
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn config(args: &[&str]) -> anyhow::Result<Config> {
        let argv = [
            "hermit-pex",
            "controller",
            "--repository",
            "acme/tools",
            "--builder-image",
            "builder:1",
        ];
        let cli = Cli::try_parse_from(argv.iter().chain(args)).unwrap();
        let Command::Controller(a) = cli.command else {
            panic!("not the controller")
        };
        a.config(0, LogFormat::Text)
    }

    use super::*;

    /// Job arguments are readable by whoever reads Jobs: a URL with credentials is refused,
    /// and the error does not repeat them.
    #[test]
    fn index_urls_with_credentials_are_refused() {
        for args in [
            &["--index-url", "https://u:s3cret@pypi.internal/simple/"][..],
            &["--extra-index-url", "https://u:s3cret@x.internal/simple/"],
            &["--named-index", "team=https://u:s3cret@t.internal/simple/"],
        ] {
            let err = config(args).err().expect("refused").to_string();
            assert!(
                err.contains("credentials") && !err.contains("s3cret"),
                "{err}"
            );
        }
    }

    #[test]
    fn named_indexes_reach_the_jobs_with_their_secrets() {
        let c = config(&[
            "--named-index",
            "team-ml=https://ml.internal/simple",
            "--named-index-credentials-secret",
            "team-ml=ml-creds",
            "--extra-index-url",
            "https://a.internal/simple/ https://b.internal/simple/",
        ])
        .unwrap();
        let team = &c.jobs.named_indexes["team-ml"];
        assert_eq!(team.url, "https://ml.internal/simple/");
        assert_eq!(team.credentials_secret.as_deref(), Some("ml-creds"));
        assert!(c.named_indexes.contains_key("team-ml"));
        assert_eq!(
            c.jobs.extra_index_urls,
            ["https://a.internal/simple/", "https://b.internal/simple/"],
            "space-separated like pip's"
        );
        let err = config(&["--named-index-credentials-secret", "nope=x"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("no --named-index nope"), "{err}");
        let bad = Cli::try_parse_from([
            "hermit-pex",
            "controller",
            "--repository",
            "acme/tools",
            "--builder-image",
            "builder:1",
            "--named-index",
            "Bad_Name=https://x/",
        ]);
        let err = bad.err().expect("refused").to_string();
        assert!(err.contains("DNS label"), "{err}");
    }

    #[test]
    fn the_webhook_secret_is_off_unset_refused_empty_and_loses_a_final_newline() {
        assert!(webhook_secret_from(None).unwrap().is_none());
        for empty in ["", "\n"] {
            let err = webhook_secret_from(Some(empty.into()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("set but empty"), "{err}");
        }
        // The same secret as without the newline: GitHub's example signature verifies.
        let secret = webhook_secret_from(Some("It's a Secret to Everybody\n".into()))
            .unwrap()
            .unwrap();
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(hook::verify(&secret, b"Hello, World!", sig), Ok(()));
    }
}
