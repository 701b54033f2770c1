//! The command line: argument parsing and the `plan` report. Each command reads its inputs,
//! calls the core, and prints; problems are reported per package and the run goes on.

pub mod controller;
pub(crate) mod step;
pub(crate) mod sync;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use serde::Serialize;

use crate::names::Platform;
use crate::plan::{Plan, PlanOptions, VersionStatus, plan};
use crate::pypi::{DEFAULT_INDEX_URL, IndexClient, IndexStats};
use crate::release::{Release, ReleaseStore};
use crate::spec::{self, LoadedSpec, SpecError, rules};

#[derive(Parser)]
#[command(
    name = "hermit-pex",
    version,
    about = "Turns Python tools on PyPI into Hermit packages"
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text or as JSON objects (for log collectors).
    #[arg(
        long,
        global = true,
        env = "HERMIT_PEX_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Show what would be built: versions, python, platforms, and what is already done.
    Plan(Box<PlanArgs>),
    /// Build what is missing, release it, and write Hermit manifests (the embedded default).
    Sync(Box<SyncArgs>),
    /// Resolve one version and record its lock in its draft release (pure Python: build every
    /// platform too): what a lock Job runs; also usable by hand.
    Lock(Box<LockArgs>),
    /// Build one platform of a locked version into its draft release: what a build Job runs;
    /// also usable by hand.
    Build(Box<BuildArgs>),
    /// Run the Kubernetes controller for PythonPackage resources.
    Controller(Box<controller::ControllerArgs>),
    /// Print the PythonPackage CRD (as checked in at crds/pythonpackage.yaml).
    Crd,
    /// Print PythonPackage resources for config files, for GitOps repositories.
    Convert(ConvertArgs),
}

/// Where GitHub is: github.com, or a GitHub Enterprise server.
#[derive(Args, Clone)]
pub struct GitHubArgs {
    /// GitHub REST API root (GitHub Enterprise: https://HOST/api/v3/).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        default_value = "https://api.github.com/",
        value_parser = Ruled(no_credentials)
    )]
    pub github_api_url: String,
    /// Where GitHub serves release downloads, for manifests.
    #[arg(long, default_value = "https://github.com", value_parser = Ruled(no_credentials))]
    pub github_url: String,
}

/// Where releases go: a directory (default) or a GitHub repository.
#[derive(Args, Clone)]
pub struct ReleaseArgs {
    /// Releases go to DIR/releases/<tag>/.
    #[arg(long, default_value = "dist", value_parser = absolute_path)]
    pub dist: PathBuf,
    /// URL the release directory is served from, for manifests (default: file:// URLs, for local testing).
    #[arg(long, value_parser = Ruled(no_credentials))]
    pub base_url: Option<String>,
    /// Publish to the GitHub releases of OWNER/REPO (token in GITHUB_TOKEN) instead of --dist.
    #[arg(long, value_parser = Ruled(rules::release_repository))]
    pub repository: Option<String>,
    #[command(flatten)]
    pub github: GitHubArgs,
    /// Create releases as pre-releases rather than drafts (not for repositories with immutable releases).
    #[arg(long)]
    pub prerelease: bool,
    /// Gap between content-creating GitHub requests (GitHub allows about 80 a minute).
    #[arg(long, default_value_t = 1000, hide = true)]
    pub github_write_interval_ms: u64,
}

/// What a lock or build step is for: one version, what its config asks for it, and the
/// release (made by `sync` or the controller) the step writes to. A build Job runs one.
#[derive(Args)]
pub struct StepArgs {
    /// The PyPI project.
    #[arg(long)]
    pub package: crate::names::PackageName,
    /// The version (PEP 440).
    #[arg(long)]
    pub version: pep440_rs::Version,
    /// CPython minor, e.g. 3.12.
    #[arg(long)]
    pub python: crate::names::PythonMinor,
    /// The id of the draft release to write to, in the release store.
    #[arg(long)]
    pub release_id: String,
    /// A configured console script (repeat for several; none: every console script).
    #[arg(long = "binary")]
    pub binaries: Vec<crate::names::BinaryName>,
    /// A PEP 508 requirement added to the version's (repeat for several).
    #[arg(long = "extra-package")]
    pub extra_packages: Vec<String>,
    #[arg(long)]
    pub config_version: Option<u32>,
    /// The configured test command (default: `<first binary> --help`).
    #[arg(long, default_value = "")]
    pub test: String,
    /// A version from a Git repository: its URL (with --git-tag and --git-commit).
    #[arg(long, requires_all = ["git_tag", "git_commit"])]
    pub git: Option<String>,
    /// Where the project is in the repository.
    #[arg(long, requires = "git")]
    pub git_subdirectory: Option<String>,
    /// The tag the version is built from.
    #[arg(long, requires = "git")]
    pub git_tag: Option<String>,
    /// The commit the tag pointed at when the version's draft was made.
    #[arg(long, requires = "git")]
    pub git_commit: Option<String>,
    /// A platform whose builds run on a machine of that platform, so it may use a wheel built
    /// from an sdist with platform code (repeat for several; default: this machine's own).
    #[arg(long = "native-platform")]
    pub native_platforms: Vec<crate::names::Platform>,
    /// A distribution package to make of a Linux platform's build: deb or rpm (repeat).
    #[arg(long = "package-format")]
    pub package_formats: Vec<crate::spec::PackageFormat>,
    /// The configured build flavour (`build.flavour`).
    #[arg(long)]
    pub flavour: Option<String>,
    /// A configured build package (`build.build_packages`; repeat).
    #[arg(long = "build-package")]
    pub build_packages: Vec<String>,
    /// A configured runtime package (`build.runtime_packages`; repeat).
    #[arg(long = "runtime-package")]
    pub runtime_packages: Vec<String>,
    /// The flavour table (JSON, as the YAML of --flavours), for --flavour's base packages.
    #[arg(long)]
    pub flavours_json: Option<String>,
    /// An init container installed the build packages (a flavour with installPackages):
    /// they are not checked.
    #[arg(long)]
    pub build_packages_installed: bool,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Stop any pex run after this many seconds.
    #[arg(long, default_value_t = 1800, value_parser = timeout_seconds)]
    pub build_timeout: u64,
    /// Stop a build's test after this many seconds.
    #[arg(long, default_value_t = 300, value_parser = timeout_seconds)]
    pub test_timeout: u64,
}

impl ReleaseArgs {
    pub fn settings(&self, cache_dir: Option<PathBuf>) -> crate::release::StoreSettings {
        crate::release::StoreSettings {
            dist: self.dist.clone(),
            base_url: self.base_url.clone(),
            repository: self.repository.clone(),
            api_url: self.github.github_api_url.clone(),
            html_url: self.github.github_url.clone(),
            prerelease: self.prerelease,
            write_interval: std::time::Duration::from_millis(self.github_write_interval_ms),
            cache_dir,
            max_view_age: None,
        }
    }
}

#[derive(Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub step: StepArgs,
    /// The platforms a pure-Python lock builds right away (repeat for several).
    #[arg(long = "platform", required = true)]
    pub platforms: Vec<Platform>,
}

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub step: StepArgs,
    #[arg(long)]
    pub platform: Platform,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// Config files, package directories, or directories of them (default: python/).
    pub paths: Vec<PathBuf>,
    /// metadata.namespace of the resources (default: none, kubectl's current namespace).
    #[arg(long, short)]
    pub namespace: Option<String>,
}

/// Where manifests are committed, other than a directory.
#[derive(Args, Clone)]
pub struct ManifestArgs {
    /// Commit manifests to this Git repository (any URL git takes; token in HERMIT_PEX_GIT_TOKEN
    /// or GITHUB_TOKEN for HTTPS, key file in HERMIT_PEX_GIT_SSH_KEY for SSH).
    #[arg(long, conflicts_with = "manifest_github", value_parser = Ruled(rules::git_url))]
    pub manifest_repo: Option<String>,
    /// Commit manifests to OWNER/REPO through the GitHub API (token in GITHUB_TOKEN).
    #[arg(long, value_parser = Ruled(rules::release_repository))]
    pub manifest_github: Option<String>,
    /// Branch for --manifest-repo / --manifest-github.
    #[arg(long, default_value = "main", value_parser = Ruled(rules::branch))]
    pub manifest_branch: String,
    /// Directory in that repository (default: its root, where Hermit reads a git source).
    #[arg(long, default_value = "", value_parser = Ruled(rules::dir))]
    pub manifest_dir: String,
    /// Author of manifest commits.
    #[arg(
        long,
        default_value = "hermit-pex <hermit-pex@users.noreply.github.com>"
    )]
    pub git_author: String,
}

impl ManifestArgs {
    pub fn settings(
        &self,
        github_api_url: &str,
        cache_dir: PathBuf,
    ) -> crate::gitops::SinkSettings {
        crate::gitops::SinkSettings {
            git: self.manifest_repo.clone(),
            github: self.manifest_github.clone(),
            branch: self.manifest_branch.clone(),
            dir: self.manifest_dir.clone(),
            author: self.git_author.clone(),
            github_api_url: github_api_url.to_owned(),
            cache_dir,
        }
    }
}

#[derive(Args)]
pub struct SyncArgs {
    /// Config files, package directories, or directories of them (default: python/).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Manifests go to DIR/<package>.hcl.
    #[arg(long, default_value = "hermit", value_parser = absolute_path)]
    pub hermit_dir: PathBuf,
    /// Parallel pex runs (default: the number of cores).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Stop any pex run after this many seconds.
    #[arg(long, default_value_t = 1800, value_parser = timeout_seconds)]
    pub build_timeout: u64,
    /// Build again the platforms recorded as impossible for a version (no wheel for them):
    /// a wheel may have appeared since.
    #[arg(long)]
    pub retry_missing: bool,
    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// List releases without first running their test command.
    #[arg(long)]
    pub no_verify: bool,
    /// Stop a build's test command after this many seconds.
    #[arg(long, default_value_t = 300, value_parser = timeout_seconds)]
    pub test_timeout: u64,
    #[command(flatten)]
    pub wheel_index: WheelIndexArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Upload each published version's Git-source wheel to the private index NAME (defined
    /// with --publish-index; repeatable). Credentials: HERMIT_PEX_PUBLISH_<NAME>_USERNAME and
    /// _PASSWORD (or _TOKEN), else HERMIT_PEX_PUBLISH_USERNAME and _PASSWORD (or _TOKEN).
    #[arg(long = "publish-to")]
    pub publish_to: Vec<String>,
    /// The build flavours a config's `build.flavour` may name (YAML: `flavours: {NAME: {install:
    /// [...], family: deb, buildPackages: [...], runtimePackages: [...]}}`). sync installs no
    /// system packages: it checks the build packages are on this machine.
    #[arg(long, env = "HERMIT_PEX_FLAVOURS")]
    pub flavours: Option<PathBuf>,
}

/// The private indexes wheels may be published to (docs/src/publishing-wheels.md).
#[derive(Args, Clone, Default)]
pub struct PublishArgs {
    /// A private index, as NAME=UPLOAD_URL (repeatable): the URL twine would upload to
    /// (pypiserver: its root; PyPI: https://upload.pypi.org/legacy/).
    #[arg(long = "publish-index", value_parser = controller::named_value)]
    pub publish_indexes: Vec<(String, String)>,
    /// NAME=URL: the simple API root of the publish index NAME, when it is not derived from
    /// its upload URL (a `legacy/` or `upload/` endpoint's sibling `simple/`, else `simple/`
    /// under it).
    #[arg(long = "publish-simple-url", value_parser = controller::named_value)]
    pub publish_simple_urls: Vec<(String, String)>,
}

impl PublishArgs {
    /// Every publish index the flags define, by name, with its credentials.
    pub fn indexes(
        &self,
    ) -> anyhow::Result<std::collections::BTreeMap<String, crate::wheels::upload::PublishIndex>>
    {
        let mut out = std::collections::BTreeMap::new();
        for (name, url) in &self.publish_indexes {
            let simple = self
                .publish_simple_urls
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.as_str());
            let index = crate::wheels::upload::PublishIndex::from_env(name, url, simple)?;
            if out.insert(name.clone(), index).is_some() {
                anyhow::bail!("--publish-index {name}: given twice");
            }
        }
        if let Some((name, _)) = self
            .publish_simple_urls
            .iter()
            .find(|(n, _)| !out.contains_key(n))
        {
            anyhow::bail!("--publish-simple-url {name}: no --publish-index {name}=URL");
        }
        Ok(out)
    }

    /// The uploaders of `names` (each must be defined).
    pub fn uploaders(
        &self,
        names: &[String],
    ) -> anyhow::Result<Vec<crate::wheels::upload::Uploader>> {
        let mut defined = self.indexes()?;
        let mut out = Vec::new();
        for name in names {
            let index = defined.remove(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "--publish-to {}: no such publish index; define it with --publish-index {}=UPLOAD_URL",
                    crate::names::shown(name),
                    name
                )
            })?;
            out.push(crate::wheels::upload::Uploader::new(index)?);
        }
        Ok(out)
    }
}

/// Where the PEP 503 index of the wheels hermit-pex publishes goes (docs/src/wheel-index.md),
/// for `sync`: a directory (the default) or a Git repository.
#[derive(Args, Clone)]
pub struct WheelIndexArgs {
    /// The index's `simple/` directory (default: DIST/simple, beside the releases).
    #[arg(long, conflicts_with = "wheel_index_repo", value_parser = absolute_path)]
    pub wheel_index_dir: Option<PathBuf>,
    #[command(flatten)]
    pub repo: WheelIndexRepoArgs,
    /// Write no wheel index.
    #[arg(long, conflicts_with_all = ["wheel_index_dir", "wheel_index_repo", "index_locked"])]
    pub no_wheel_index: bool,
}

/// The wheel index in a Git repository, and what goes in (`sync` and the controller).
#[derive(Args, Clone)]
pub struct WheelIndexRepoArgs {
    /// Commit the index to this Git repository (any URL git takes; credentials as for
    /// --manifest-repo), under --wheel-index-path on --wheel-index-branch.
    #[arg(long)]
    pub wheel_index_repo: Option<String>,
    #[arg(long, default_value = "main")]
    pub wheel_index_branch: String,
    /// The `simple/` directory inside --wheel-index-repo.
    #[arg(long, default_value = "simple")]
    pub wheel_index_path: String,
    /// How a Git-source wheel is listed: stored beside its page, or linked at its release
    /// asset (locked wheels are always stored).
    #[arg(long, value_enum, default_value = "stored")]
    pub wheel_index_links: crate::wheels::Links,
    /// Also list every wheel a published version locked (its pylock's choice per platform),
    /// so its environment can be rebuilt if files vanish upstream.
    #[arg(long)]
    pub index_locked: bool,
}

impl WheelIndexArgs {
    /// The index these flags ask for (`None`: --no-wheel-index). Bad settings fail here,
    /// naming the flag.
    pub fn open(
        &self,
        dist: &std::path::Path,
        author: &str,
        cache_dir: &std::path::Path,
    ) -> anyhow::Result<Option<crate::wheels::WheelIndex>> {
        use crate::wheels::{Target, WheelIndex};
        if self.no_wheel_index {
            return Ok(None);
        }
        if let Some(repo) = self.repo.settings() {
            return Ok(Some(repo.open(author, cache_dir)?));
        }
        let root = self
            .wheel_index_dir
            .clone()
            .unwrap_or_else(|| dist.join("simple"));
        Ok(Some(
            WheelIndex::new(Target::Dir(root))
                .with_links(self.repo.wheel_index_links)
                .with_locked(self.repo.index_locked),
        ))
    }
}

impl WheelIndexRepoArgs {
    /// The repository these flags name (`None`: no repository named).
    pub fn settings(&self) -> Option<crate::wheels::RepoIndex> {
        Some(crate::wheels::RepoIndex {
            url: self.wheel_index_repo.clone()?,
            branch: self.wheel_index_branch.clone(),
            path: self.wheel_index_path.clone(),
            links: self.wheel_index_links,
            locked: self.index_locked,
        })
    }
}

/// Reads a flavour table file; none: an empty table.
pub fn read_flavours(file: Option<&std::path::Path>) -> anyhow::Result<crate::flavour::Flavours> {
    use anyhow::Context as _;
    match file {
        None => Ok(crate::flavour::Flavours::default()),
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?;
            crate::flavour::Flavours::parse(&text).with_context(|| format!("{}", f.display()))
        }
    }
}

#[derive(Args, Clone)]
pub struct IndexArgs {
    /// Simple API root of the package index, like pip's --index-url. Credentials for it come
    /// from HERMIT_PEX_INDEX_USERNAME and HERMIT_PEX_INDEX_PASSWORD (or HERMIT_PEX_INDEX_TOKEN),
    /// else ~/.netrc; a user:password in the URL is taken out of it.
    #[arg(long, env = "HERMIT_PEX_INDEX_URL", default_value = DEFAULT_INDEX_URL)]
    pub index_url: String,
    /// Another index pex resolves from beside --index-url (repeatable; in the environment,
    /// separated by spaces like pip's). Versions are observed on --index-url only. Its
    /// credentials come from ~/.netrc only. See docs/src/private-index.md on which index wins.
    #[arg(
        long = "extra-index-url",
        env = "HERMIT_PEX_EXTRA_INDEX_URL",
        value_delimiter = ' '
    )]
    pub extra_index_urls: Vec<String>,
    /// Where index pages (with their ETags) and build caches are kept.
    #[arg(long, env = "HERMIT_PEX_CACHE_DIR", value_parser = absolute_path)]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the index cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Take `extra_packages` that are direct references (`name @ URL`, `name @ file:///…`):
    /// the resolver fetches those outside the indexes, so they are refused unless allowed.
    #[arg(long)]
    pub allow_direct_references: bool,
}

#[derive(Args, Clone)]
pub struct SelectArgs {
    /// Only the newest N versions of each package (at least 1).
    #[arg(long, value_parser = at_least_one)]
    pub latest: Option<usize>,
    /// Only these platforms (comma separated), e.g. linux-amd64.
    #[arg(long, value_delimiter = ',')]
    pub platforms: Option<Vec<Platform>>,
}

impl SelectArgs {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            latest: self.latest,
            platforms: self.platforms.clone(),
            retry_missing: false,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Config files, package directories, or directories of them (default: python/).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub index: IndexArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Where `sync` keeps releases: what is released there is shown as done.
    #[command(flatten)]
    pub release: ReleaseArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

impl IndexArgs {
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(default_cache_dir)
    }

    pub fn client(&self) -> anyhow::Result<IndexClient> {
        self.client_for(self.primary()?)
    }

    /// The client of `primary` (resolved already, e.g. by [`IndexArgs::indexes`]).
    pub fn client_for(&self, primary: crate::pypi::Index) -> anyhow::Result<IndexClient> {
        Ok(IndexClient::for_index(
            primary,
            self.cache_dir().map(|d| d.join("index")),
        )?)
    }

    /// The primary index with its credentials: the URL's own, the environment's, or netrc's.
    pub fn primary(&self) -> anyhow::Result<crate::pypi::Index> {
        let env = crate::pypi::EnvCredentials::from_env()?;
        Ok(crate::pypi::auth_index(&self.index_url, env.0)?)
    }

    /// How a branch head's version is learned on this machine: static metadata, else its
    /// wheel built with uv (answers kept per commit in the cache).
    pub fn head_reader(
        &self,
        timeout: std::time::Duration,
    ) -> anyhow::Result<crate::source::HeadReader> {
        let cache = self
            .cache_dir()
            .unwrap_or_else(|| std::env::temp_dir().join("hermit-pex"));
        Ok(crate::source::HeadReader {
            cache_dir: self.cache_dir().map(|d| d.join("heads")),
            builder: Some(crate::source::WheelProbe {
                cache_dir: cache,
                indexes: self.indexes()?,
                timeout,
            }),
        })
    }

    /// Every index a build resolves from, with the private netrc file for their credentials.
    pub fn indexes(&self) -> anyhow::Result<crate::pypi::Indexes> {
        let extra = self
            .extra_index_urls
            .iter()
            .filter(|u| !u.is_empty())
            .map(|u| crate::pypi::auth_index(u, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::pypi::Indexes::new(self.primary()?, extra)?
            .allowing_direct_references(self.allow_direct_references))
    }
}

pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("hermit-pex"))
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plan(args) => plan_command(*args).await,
            Command::Sync(args) => sync::sync_command(*args).await,
            Command::Lock(args) => step::lock_command(*args).await,
            Command::Build(args) => step::build_command(*args).await,
            Command::Controller(args) => {
                controller::controller_command(*args, cli.verbose, cli.log_format).await
            }
            Command::Crd => {
                print!("{}", crate::controller::resource::crd_yaml());
                Ok(ExitCode::SUCCESS)
            }
            Command::Convert(args) => convert_command(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads every config, reporting each invalid one; the valid ones go on. A second config for
/// a package another config already carries (PEP 503 names: `Aider_Chat` is `aider-chat`) is
/// refused, naming both files: two would mix their settings in one manifest and release.
pub fn load_specs(paths: &[PathBuf]) -> anyhow::Result<(Vec<LoadedSpec>, Vec<SpecError>)> {
    load_specs_with(paths, true)
}

/// [`load_specs`], refusing the configs whose `extra_packages` hold direct references unless
/// `direct_references` (`--allow-direct-references`) allows them.
pub fn load_specs_with(
    paths: &[PathBuf],
    direct_references: bool,
) -> anyhow::Result<(Vec<LoadedSpec>, Vec<SpecError>)> {
    let (ok, mut bad) = load_all(paths)?;
    let (ok, refused): (Vec<_>, Vec<_>) = ok
        .into_iter()
        .partition(|s| direct_references || s.spec.direct_references().is_empty());
    bad.extend(refused.into_iter().map(|s| SpecError {
        problems: s.spec.direct_references(),
        file: s.file,
    }));
    Ok((ok, bad))
}

fn load_all(paths: &[PathBuf]) -> anyhow::Result<(Vec<LoadedSpec>, Vec<SpecError>)> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("python")]
    } else {
        paths.to_vec()
    };
    let files = spec::discover(&paths).map_err(anyhow::Error::msg)?;
    let (mut ok, mut bad) = (Vec::<LoadedSpec>::new(), Vec::new());
    for file in files {
        match spec::load(&file) {
            Ok(s) => match ok.iter().find(|o| o.spec.package == s.spec.package) {
                Some(first) => bad.push(SpecError {
                    problems: vec![spec::Problem::new(
                        "package",
                        format!(
                            "{} is already configured in {}: keep one config per package \
                             (merge the two, or remove one)",
                            s.spec.package,
                            first.file.display()
                        ),
                    )],
                    file,
                }),
                None => ok.push(s),
            },
            Err(e) => bad.push(e),
        }
    }
    Ok((ok, bad))
}

/// A flag checked by one of the rules the CRD applies to the same setting (`--repository` as
/// `releases.repository`, ...): refused with the CRD's words after the flag's name, exit 2,
/// and without the value (a URL may hold a token; clap's own message would repeat it).
#[derive(Clone)]
pub(crate) struct Ruled(pub fn(&str) -> Result<(), String>);

impl clap::builder::TypedValueParser for Ruled {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let flag = arg
            .and_then(|a| a.get_long())
            .map_or_else(|| "a value".to_owned(), |l| format!("--{l}"));
        let refuse = |rule: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{flag} {rule}\n"),
            )
            .with_cmd(cmd)
        };
        let s = value
            .to_str()
            .ok_or_else(|| refuse("must be UTF-8 text".into()))?;
        (self.0)(s).map_err(refuse)?;
        Ok(s.to_owned())
    }
}

/// A URL written into manifests or used as an API root: credentials in it would be published
/// or logged, so they go in the environment instead.
pub(crate) fn no_credentials(s: &str) -> Result<(), String> {
    match reqwest::Url::parse(s) {
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(
            "must not hold credentials (user:password@): the GitHub token goes in GITHUB_TOKEN"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// A path flag, made absolute once, here, against the working directory the command was
/// started in: tools run elsewhere (pex in a build directory, git in a checkout) and some take
/// only absolute paths (pex's `--path-mapping`: "Mapped paths must be absolute"). Links are
/// kept as written.
pub(crate) fn absolute_path(s: &str) -> Result<PathBuf, String> {
    std::path::absolute(s).map_err(|e| format!("cannot be made an absolute path: {e}"))
}

/// A number of seconds for a timeout: 0 would stop every run at once.
pub(crate) fn timeout_seconds(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1 (seconds); 0 would stop every run at once".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number of seconds")),
    }
}

/// A count of versions for `--latest`: 0 would select nothing.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1; leave --latest out for every version".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// Says which of a Git source's tags are not versions (they are not built).
pub fn say_skipped_tags(s: &LoadedSpec, offered: &crate::source::Offered) {
    if !offered.skipped_tags.is_empty() {
        eprintln!(
            "{}: {} tags are not versions and were skipped: {}",
            s.spec.package,
            offered.skipped_tags.len(),
            offered.skipped_tags.join(", ")
        );
    }
}

/// Asks every package's source (the index, or its Git repository) for its versions, a few at a
/// time, keeping the input order.
pub async fn observe_versions(
    client: &IndexClient,
    specs: &[LoadedSpec],
    heads: &crate::source::HeadReader,
) -> Vec<Result<crate::source::Offered, crate::source::ObserveError>> {
    futures::stream::iter(specs)
        .map(|s| crate::source::offered(client, &s.spec, heads))
        .buffered(8)
        .collect()
        .await
}

#[derive(Serialize)]
struct JsonReport<'a> {
    packages: Vec<JsonPackage<'a>>,
    errors: Vec<JsonError>,
    index: IndexStats,
}

#[derive(Serialize)]
struct JsonPackage<'a> {
    file: String,
    index_not_modified: bool,
    plan: &'a Plan,
    /// A source that follows a branch: its head commit and the version declared there.
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<&'a crate::source::Head>,
}

#[derive(Serialize)]
struct JsonError {
    file: String,
    field: String,
    message: String,
}

async fn plan_command(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (specs, invalid) = load_specs_with(&args.paths, args.index.allow_direct_references)?;
    let client = args.index.client()?;
    let heads = args
        .index
        .head_reader(std::time::Duration::from_secs(600))?;
    let observed = observe_versions(&client, &specs, &heads).await;
    // The stores `sync` uses, with its flags: what is released there is done.
    let store =
        crate::release::AnyStore::open_existing(&args.release.settings(args.index.cache_dir()))?;

    let mut plans = Vec::new();
    let mut index_errors = Vec::new();
    for (s, result) in specs.iter().zip(observed) {
        let releases: Vec<Release> = match &store {
            Some(store) => match store.releases(&s.spec.package).await {
                Ok(r) => r,
                Err(e) => {
                    index_errors.push(JsonError {
                        file: s.file.display().to_string(),
                        field: "releases".into(),
                        message: format!("cannot read releases: {e}"),
                    });
                    continue;
                }
            },
            None => Vec::new(),
        };
        match result {
            Ok(project) => {
                let p = plan(
                    &s.spec,
                    &project.versions,
                    &releases,
                    &[],
                    &args.select.options(),
                );
                say_skipped_tags(s, &project);
                plans.push((s, project.not_modified, p, project.head));
            }
            Err(e) => index_errors.push(JsonError {
                file: s.file.display().to_string(),
                field: match e {
                    crate::source::ObserveError::Git(_) => "source.git",
                    crate::source::ObserveError::Index(_) => "package",
                }
                .into(),
                message: e.to_string(),
            }),
        }
    }
    let stats = client.stats();
    let ok = invalid.is_empty() && index_errors.is_empty();

    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        let spec_errors = invalid.iter().flat_map(|e| {
            e.problems.iter().map(|p| JsonError {
                file: e.file.display().to_string(),
                field: p.field.clone(),
                message: p.message.clone(),
            })
        });
        let report = JsonReport {
            packages: plans
                .iter()
                .map(|(s, nm, p, head)| JsonPackage {
                    file: s.file.display().to_string(),
                    index_not_modified: *nm,
                    plan: p,
                    head: head.as_ref(),
                })
                .collect(),
            errors: spec_errors.chain(index_errors).collect(),
            index: stats,
        };
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(exit_code(ok));
    }
    for (s, _, p, head) in &plans {
        write_text_plan(&mut out, s, p, head.as_ref())?;
    }
    for e in &invalid {
        eprintln!("error: {e}");
    }
    for e in &index_errors {
        eprintln!("error: {}: {}", e.file, e.message);
    }
    eprintln!(
        "index {}: {} requests, {} pages fetched, {} unchanged (304), {} retries",
        client.index_url(),
        stats.requests,
        stats.fetched,
        stats.not_modified,
        stats.retries
    );
    Ok(exit_code(ok))
}

fn convert_command(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let (specs, invalid) = load_specs(&args.paths)?;
    print!(
        "{}",
        crate::controller::resource::convert(&specs, args.namespace.as_deref())
    );
    for e in &invalid {
        eprintln!("error: {e}");
    }
    Ok(exit_code(invalid.is_empty()))
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn write_text_plan(
    out: &mut impl Write,
    s: &LoadedSpec,
    p: &Plan,
    head: Option<&crate::source::Head>,
) -> std::io::Result<()> {
    let min = s.spec.minimum().map(|v| v.to_string()).unwrap_or_default();
    writeln!(
        out,
        "{} ({}), versions >= {min}",
        p.package,
        s.file.display()
    )?;
    if let Some(head) = head {
        writeln!(
            out,
            "  {} ({})",
            head,
            crate::pypi::redact(s.spec.source.as_ref().map_or("", |g| g.git.as_str()))
        )?;
    }
    for vp in &p.versions {
        let platforms = |ps: &[Platform]| {
            ps.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let what = match vp.status {
            VersionStatus::Released => format!("released   {}", platforms(&vp.done)),
            VersionStatus::ToPublish => "publish    (all platforms present)".to_owned(),
            VersionStatus::Incompatible | VersionStatus::Blocked => "skip".to_owned(),
            _ => format!("build      {}", platforms(&vp.build)),
        };
        let status = serde_json::to_value(vp.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        writeln!(
            out,
            "  {:<14} python {}  {:<12} {what}",
            vp.version.to_string(),
            vp.python,
            status.unwrap_or_default()
        )?;
        if let Some(note) = &vp.note {
            writeln!(out, "  {:<14} note: {note}", "")?;
        }
        if let Some(moved) = &vp.moved {
            writeln!(out, "  {:<14} note: {moved}", "")?;
        }
        for (platform, why) in &vp.missing {
            writeln!(out, "  {:<14} no {platform}: {why}", "")?;
        }
        for b in &vp.blockers {
            let on = b.platform.map_or_else(String::new, |p| format!(" {p}"));
            writeln!(out, "  {:<14} blocked{on}: {}: {}", "", b.reason, b.message)?;
        }
    }
    writeln!(
        out,
        "  {} versions: {} released, {} to publish, {} builds planned\n",
        p.versions.len(),
        p.count(VersionStatus::Released),
        p.count(VersionStatus::ToPublish),
        p.builds()
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Every path flag is absolute once parsed, whatever the working directory later is.
    #[test]
    fn path_flags_are_made_absolute_when_parsed() {
        let cwd = std::env::current_dir().unwrap();
        let cli = Cli::try_parse_from([
            "hermit-pex",
            "sync",
            "--cache-dir",
            "cache",
            "--dist",
            "out/../dist",
            "--hermit-dir",
            "./hermit",
            "--wheel-index-dir",
            "public/simple",
        ])
        .unwrap();
        let Command::Sync(a) = cli.command else {
            panic!("sync")
        };
        assert_eq!(a.index.cache_dir, Some(cwd.join("cache")));
        assert_eq!(
            a.wheel_index.wheel_index_dir,
            Some(cwd.join("public/simple"))
        );
        assert!(a.release.dist.is_absolute() && a.release.dist.ends_with("dist"));
        assert!(a.hermit_dir.is_absolute() && a.hermit_dir.ends_with("hermit"));
        let cli = Cli::try_parse_from(["hermit-pex", "sync"]).unwrap();
        let Command::Sync(a) = cli.command else {
            panic!("sync")
        };
        assert_eq!(a.release.dist, cwd.join("dist"), "defaults too");
        assert_eq!(a.hermit_dir, cwd.join("hermit"));
        let cli = Cli::try_parse_from([
            "hermit-pex",
            "controller",
            "--repository",
            "a/b",
            "--builder-image",
            "b",
            "--platform-table",
            "t.yaml",
        ])
        .unwrap();
        let Command::Controller(a) = cli.command else {
            panic!("controller")
        };
        assert_eq!(a.platform_table, Some(cwd.join("t.yaml")));
    }
}
