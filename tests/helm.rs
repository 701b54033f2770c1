//! The Helm chart (`charts/hermit-pex`), the images (`Dockerfile`) and the docs' install path,
//! checked with the real helm v4, and helm v3 for compatibility (`scripts/test-tools.sh` puts
//! them in `.tools/bin/helm` and `helm3`): lint, templates parsed and held against the
//! controller's own CLI parser, platform-table parser and Kubernetes API types, the schema
//! refusing bad values, and the docs' GitOps snippets run for real (Lua 5.1 through lupa). The
//! docs are the README and the book under `docs/src/` (`common::docs`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use clap::Parser;
use hermit_pex::cli::controller::ControllerArgs;
use hermit_pex::cli::{Cli, Command as Cmd, LogFormat};
use hermit_pex::controller::jobs::{
    JobFor, JobSettings, JobStep, PlatformTable, step_args, step_job,
};
use hermit_pex::controller::resource::{PythonPackage, PythonPackageSpec};
use hermit_pex::controller::status::{ManifestReport, Observed, Trouble, Unobserved, compute};
use hermit_pex::names::{Platform, PythonMinor};
use hermit_pex::release::ReleaseId;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;
use serde_json::{Value, json};

use common::repo_root;

/// Release name and namespace of every rendering.
const RELEASE: &str = "hermit-pex";
const NAMESPACE: &str = "hermit-pex";
/// The two values without a default.
const BASE: &[&str] = &[
    "--set",
    "releases.repository=example-org/hermit-tools",
    "--set",
    "image.repository=registry.example.com/hermit-pex",
];

/// The required values followed by `args`.
fn base_and<'a>(args: &[&'a str]) -> Vec<&'a str> {
    BASE.iter().copied().chain(args.iter().copied()).collect()
}

fn chart() -> PathBuf {
    repo_root().join("charts/hermit-pex")
}

fn all_values() -> String {
    chart().join("ci/all-values.yaml").display().to_string()
}

/// helm from `HERMIT_PEX_TEST_HELM` (set by scripts/test) or `.tools/bin/helm`; it must be v4.
fn helm_bin() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| find_helm("HERMIT_PEX_TEST_HELM", "helm", "v4."))
}

/// helm v3 from `HERMIT_PEX_TEST_HELM3` or `.tools/bin/helm3`: the chart must work with it too.
fn helm3_bin() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| find_helm("HERMIT_PEX_TEST_HELM3", "helm3", "v3."))
}

fn find_helm(var: &str, name: &str, major: &str) -> PathBuf {
    let helm = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/bin").join(name));
    assert!(
        helm.is_file(),
        "{} is missing: run scripts/test-tools.sh (scripts/test does it for you)",
        helm.display()
    );
    let out = Command::new(&helm)
        .args(["version", "--short"])
        .output()
        .expect("helm runs");
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    eprintln!("helm version: {version} ({})", helm.display());
    assert!(
        version.starts_with(major),
        "{} is helm {version:?}, not {major}x: run scripts/test-tools.sh",
        helm.display()
    );
    helm
}

/// Runs helm v4 away from any user configuration or cluster.
fn helm(args: &[&str]) -> Output {
    helm_with(helm_bin(), args)
}

fn helm_with(bin: &Path, args: &[&str]) -> Output {
    let home = std::env::temp_dir().join(format!("hermit-pex-helm-{}", std::process::id()));
    Command::new(bin)
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .output()
        .expect("helm runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `helm template` of the chart with `args` and nothing else.
fn render(args: &[&str]) -> Output {
    render_with(helm_bin(), args)
}

fn render_with(bin: &Path, args: &[&str]) -> Output {
    let chart = chart().display().to_string();
    let mut full = vec!["template", RELEASE, chart.as_str(), "-n", NAMESPACE];
    full.extend_from_slice(args);
    helm_with(bin, &full)
}

/// The documents of `helm template` with the required values and `args`.
fn template(args: &[&str]) -> Vec<Value> {
    template_raw(&base_and(args))
}

/// `ci/all-values.yaml` (which sets the required values itself: `--set` would win over it).
fn template_all_values() -> Vec<Value> {
    template_raw(&["-f", &all_values()])
}

/// The documents of `helm template` with exactly `args`.
fn template_raw(args: &[&str]) -> Vec<Value> {
    let out = render(args);
    assert!(
        out.status.success(),
        "helm template {args:?} failed:\n{}",
        text(&out.stderr)
    );
    documents(&text(&out.stdout))
}

/// helm's stderr for values that must be refused.
fn template_fails(args: &[&str]) -> String {
    let out = render(args);
    assert!(
        !out.status.success(),
        "helm template {args:?} should have failed; it rendered:\n{}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("helm renders YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "one {kind} expected, got {}", found.len());
    found[0]
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

fn pod_spec(docs: &[Value]) -> &Value {
    &one(docs, "Deployment")["spec"]["template"]["spec"]
}

fn container(docs: &[Value]) -> &Value {
    let containers = pod_spec(docs)["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

/// The real CLI parser on `hermit-pex <args>`.
fn cli(args: &[String]) -> Cli {
    let argv = std::iter::once("hermit-pex".to_owned()).chain(args.iter().cloned());
    <Cli as Parser>::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("hermit-pex refuses {args:?}:\n{e}"))
}

fn controller_args(args: &[String]) -> ControllerArgs {
    match cli(args).command {
        Cmd::Controller(a) => *a,
        _ => panic!("{args:?} is not `controller`"),
    }
}

/// The Deployment's args, parsed by the real CLI.
fn deployment_cli(docs: &[Value]) -> (Cli, Vec<String>) {
    let c = container(docs);
    assert!(
        c.get("command").is_none(),
        "the image's ENTRYPOINT (hermit-pex) must run: no command"
    );
    let args = strings(&c["args"]);
    assert_eq!(args[0], "controller");
    (cli(&args), args)
}

fn controller(docs: &[Value]) -> ControllerArgs {
    controller_args(&deployment_cli(docs).1)
}

fn chart_yaml() -> Value {
    let s = std::fs::read_to_string(chart().join("Chart.yaml")).unwrap();
    serde_norway::from_str(&s).unwrap()
}

fn app_version() -> String {
    chart_yaml()["appVersion"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// lint

#[test]
fn helm_lint_passes_strict_with_default_and_all_values() {
    let chart = chart().display().to_string();
    let all = all_values();
    for args in [
        vec!["lint", chart.as_str()],
        vec!["lint", "--strict", chart.as_str()],
        vec!["lint", "--strict", chart.as_str(), "-f", all.as_str()],
    ] {
        let out = helm(&args);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
            "helm {args:?}:\n{stdout}\n{}",
            text(&out.stderr)
        );
        assert!(!stdout.contains("[WARNING]"), "helm {args:?}:\n{stdout}");
    }
}

#[test]
fn helm_3_lints_renders_and_refuses_as_helm_4_does() {
    let chart = chart().display().to_string();
    let all = all_values();
    for args in [
        vec!["lint", "--strict", chart.as_str()],
        vec!["lint", "--strict", chart.as_str(), "-f", all.as_str()],
    ] {
        let out = helm_with(helm3_bin(), &args);
        assert!(
            out.status.success() && text(&out.stdout).contains("0 chart(s) failed"),
            "helm 3 {args:?}:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    for args in [
        base_and(&[]),
        base_and(&["--set", "watchNamespace=tools"]),
        base_and(&[
            "--set",
            "leaderElection.enabled=true",
            "--set",
            "replicas=2",
            "--set",
            "metrics.serviceMonitor.enabled=true",
        ]),
        vec!["-f", all.as_str()],
    ] {
        let (v3, v4) = (render_with(helm3_bin(), &args), render(&args));
        assert!(v3.status.success(), "helm 3 {args:?}: {}", text(&v3.stderr));
        assert_eq!(
            documents(&text(&v3.stdout)),
            documents(&text(&v4.stdout)),
            "helm 3 and 4 render {args:?} alike"
        );
    }
    for set in [
        "replicas=-1",
        "platforms.windows-amd64.cross=true",
        "github.token=x",
        "releases.repository=not-a-repository",
        "platforms=null",
    ] {
        let out = render_with(helm3_bin(), &base_and(&["--set", set]));
        assert!(
            !out.status.success()
                && text(&out.stderr).contains("values don't meet the specifications of the schema"),
            "helm 3 --set {set}: {}",
            text(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// what the controller is run with

#[test]
fn default_install_runs_the_controller_as_the_chart_says() {
    let docs = template(&[]);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "ServiceAccount"
        ]
    );
    for d in &docs {
        if !d["kind"].as_str().unwrap().starts_with("Cluster") {
            assert_eq!(d["metadata"]["namespace"], NAMESPACE, "{}", d["kind"]);
        }
    }
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let c = container(&docs);
    let version = app_version();
    assert_eq!(
        c["image"],
        format!("registry.example.com/hermit-pex:{version}")
    );

    let (cli, args) = deployment_cli(&docs);
    assert!(cli.log_format == LogFormat::Json, "JSON logs by default");
    assert_eq!(cli.verbose, 1);
    let a = controller_args(&args);
    assert_eq!(a.repository, "example-org/hermit-tools");
    assert_eq!(
        a.builder_image,
        format!("registry.example.com/hermit-pex-builder:{version}")
    );
    assert_eq!(a.namespace, None, "all namespaces by default");
    assert_eq!(a.token_secret, "hermit-pex-github");
    assert_eq!(a.token_key, "token");
    assert!(!a.leader_elect);
    assert_eq!(a.manifest.manifest_repo, None);
    assert_eq!(a.manifest.manifest_github, None);
    assert_eq!(a.cache_claim, None);
    assert_eq!(a.index.index_url, "https://pypi.org/simple/");
    let resources: ResourceRequirements =
        serde_json::from_str(a.builder_resources.as_deref().unwrap()).unwrap();
    assert_eq!(
        resources.requests.unwrap()["cpu"].0,
        "1",
        "builder.resources reaches the controller as ResourceRequirements JSON"
    );

    // Probes and the metrics port are where --metrics-addr serves them.
    let port = &c["ports"][0];
    assert_eq!(port["name"], "http-metrics");
    assert_eq!(port["containerPort"], a.metrics_addr.port());
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path);
        assert_eq!(c[probe]["httpGet"]["port"], "http-metrics");
    }
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());

    // --platform-table is the ConfigMap's key, mounted.
    let table = a.platform_table.as_ref().unwrap();
    let mount = mount_of(c, table.parent().unwrap());
    let platforms = volume(&docs, mount["name"].as_str().unwrap());
    let configmap = one(&docs, "ConfigMap");
    assert_eq!(
        platforms["configMap"]["name"],
        configmap["metadata"]["name"]
    );
    let key = table.file_name().unwrap().to_str().unwrap();
    assert!(configmap["data"][key].is_string(), "ConfigMap key {key}");
    assert_eq!(mount["readOnly"], true);
    // --cache-dir is a writable emptyDir (the root filesystem is read-only), and so is HOME.
    let cache = a.index.cache_dir.as_ref().unwrap();
    let mount = mount_of(c, cache);
    assert!(volume(&docs, mount["name"].as_str().unwrap())["emptyDir"].is_object());
    let home = env(c, "HOME").unwrap()["value"].as_str().unwrap();
    let mount = mount_of(c, Path::new(home));
    assert!(volume(&docs, mount["name"].as_str().unwrap())["emptyDir"].is_object());
    // POD_NAMESPACE (the Lease's namespace) from the downward API.
    assert_eq!(
        env(c, "POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    // POD_NAME: the Lease holder's identity and the events' instance.
    assert_eq!(
        env(c, "POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // A new platform table restarts the controller.
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"]["checksum/platforms"].is_string()
    );
    // The pod runs as the ServiceAccount the bindings name.
    let sa = one(&docs, "ServiceAccount")["metadata"]["name"].clone();
    assert_eq!(pod_spec(&docs)["serviceAccountName"], sa);
    for binding in of_kind(&docs, "ClusterRoleBinding") {
        assert_eq!(binding["subjects"][0]["name"], sa);
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    for absent in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "imagePullSecrets",
    ] {
        assert!(pod_spec(&docs).get(absent).is_none(), "{absent}");
    }
}

fn mount_of<'a>(c: &'a Value, path: &Path) -> &'a Value {
    c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("nothing is mounted at {}", path.display()))
}

fn volume<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    pod_spec(docs)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

#[test]
fn chart_defaults_are_the_controllers_defaults() {
    let chart = controller(&template(&[]));
    let cli = controller_args(&[
        "controller".into(),
        "--repository=a/b".into(),
        "--builder-image=b".into(),
    ]);
    assert_eq!(chart.per_package, cli.per_package);
    assert_eq!(chart.max_jobs, cli.max_jobs);
    assert_eq!(chart.concurrency, cli.concurrency);
    assert_eq!(chart.job_deadline_seconds, cli.job_deadline_seconds);
    assert_eq!(
        (chart.build_timeout, chart.test_timeout),
        (cli.build_timeout, cli.test_timeout)
    );
    assert_eq!(chart.job_backoff_limit, cli.job_backoff_limit);
    assert_eq!(chart.job_ttl_seconds, cli.job_ttl_seconds);
    assert_eq!(chart.metrics_addr, cli.metrics_addr);
    assert_eq!(chart.token_secret, cli.token_secret);
    assert_eq!(chart.token_key, cli.token_key);
    assert_eq!(chart.github.github_url, cli.github.github_url);
    assert_eq!(chart.github.github_api_url, cli.github.github_api_url);
    assert_eq!(chart.manifest.manifest_branch, cli.manifest.manifest_branch);
    assert_eq!(
        chart.index.allow_direct_references,
        cli.index.allow_direct_references
    );
}

#[test]
fn every_value_reaches_the_controller() {
    let docs = template_all_values();
    let (cli, args) = deployment_cli(&docs);
    assert!(cli.log_format == LogFormat::Text);
    assert_eq!(cli.verbose, 2);
    let a = controller_args(&args);
    assert_eq!(a.namespace.as_deref(), Some("tools"));
    assert_eq!(a.repository, "example-org/hermit-tools");
    assert_eq!(
        a.github.github_api_url,
        "https://github.example.com/api/v3/"
    );
    assert_eq!(a.github.github_url, "https://github.example.com");
    assert_eq!(a.index.index_url, "https://pypi.example.com/simple/");
    assert_eq!(
        a.index.extra_index_urls,
        ["https://extra.example.com/simple/"]
    );
    assert_eq!(a.index_credentials_secret.as_deref(), Some("pypi-example"));
    assert!(a.index.allow_direct_references);
    assert_eq!(
        a.named_indexes,
        [
            (
                "team-ml".to_owned(),
                "https://ml.example.com/simple/".to_owned()
            ),
            (
                "public-mirror".to_owned(),
                "https://mirror.example.com/simple/".to_owned()
            ),
        ]
    );
    assert_eq!(
        a.named_index_secrets,
        [("team-ml".to_owned(), "pypi-ml".to_owned())]
    );
    assert_eq!(
        a.builder_image,
        "registry.example.com/tools/hermit-pex-builder:0.1.0-rc.1"
    );
    assert_eq!(
        (a.token_secret.as_str(), a.token_key.as_str()),
        ("hermit-bot", "github-token")
    );
    assert_eq!(a.cache_claim.as_deref(), Some("hermit-pex-cache"));
    assert_eq!(a.builder_service_account.as_deref(), Some("hermit-builder"));
    let resources: ResourceRequirements =
        serde_json::from_str(a.builder_resources.as_deref().unwrap()).unwrap();
    let limits = resources.limits.unwrap();
    assert_eq!(
        limits["cpu"].0, "4",
        "a YAML number becomes a quantity string"
    );
    assert_eq!(limits["memory"].0, "6Gi");
    assert_eq!(resources.requests.unwrap()["ephemeral-storage"].0, "4Gi");
    assert_eq!((a.per_package, a.max_jobs, a.concurrency), (4, 16, 8));
    assert_eq!(a.allowed_release_repositories, ["example-org/more-tools"]);
    assert_eq!(
        a.allowed_manifest_repositories,
        ["https://git.example.com/team/hermit.git"]
    );
    assert_eq!(
        a.allowed_source_repositories,
        [
            "https://git.example.com/tools/*",
            "git@git.example.com:team/cli.git"
        ]
    );
    assert_eq!(a.git_token_secret.as_deref(), Some("hermit-git/password"));
    assert_eq!(a.git_ssh_key_secret.as_deref(), Some("hermit-git-ssh"));
    assert_eq!(
        (
            a.job_deadline_seconds,
            a.job_backoff_limit,
            a.job_ttl_seconds
        ),
        (3600, 1, 3600)
    );
    assert_eq!((a.build_timeout, a.test_timeout), (900, 120));
    assert_eq!(
        a.manifest.manifest_github.as_deref(),
        Some("example-org/hermit-packages")
    );
    assert_eq!(a.manifest.manifest_branch, "hermit");
    assert_eq!(a.manifest.manifest_dir, "packages");
    assert_eq!(a.manifest.git_author, "Hermit Bot <hermit-bot@example.com>");
    assert!(a.leader_elect);
    assert_eq!(a.lease_name, "hermit-pex-leader");
    assert_eq!(
        a.lease_namespace.as_deref(),
        Some("hermit-pex"),
        "extraArgs"
    );
    assert_eq!(a.metrics_addr.port(), 9090);

    let c = container(&docs);
    assert_eq!(
        c["image"],
        "registry.example.com/tools/hermit-pex@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "a digest wins over the tag"
    );
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["ports"][0]["containerPort"], 9090);
    assert_eq!(
        env(c, "RUST_LOG").unwrap()["value"],
        "hermit_pex=debug,kube=info"
    );
    // The SSH key for manifest pushes: a file, with known hosts where ssh looks.
    let key = env(c, "HERMIT_PEX_GIT_SSH_KEY").unwrap()["value"]
        .as_str()
        .unwrap();
    let mount = mount_of(c, Path::new(key).parent().unwrap());
    assert_eq!(
        volume(&docs, mount["name"].as_str().unwrap())["secret"]["secretName"],
        "hermit-git-ssh"
    );
    assert_eq!(
        mount_of(c, Path::new("/etc/ssh/ssh_known_hosts"))["subPath"],
        "known_hosts"
    );

    let pod = pod_spec(&docs);
    assert_eq!(pod["serviceAccountName"], "hermit-pex-controller");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "registry-credentials");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["tolerations"][0]["key"], "CriticalAddonsOnly");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["metadata"]["name"], "hermit-pex-all");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let template = &deployment["spec"]["template"]["metadata"];
    assert_eq!(template["labels"]["team"], "tools");
    assert_eq!(template["annotations"]["example.com/team"], "tools");
    assert_eq!(
        one(&docs, "ServiceAccount")["metadata"]["annotations"]["example.com/role"],
        "hermit-pex"
    );
}

#[test]
fn every_controller_flag_has_a_value() {
    // The flags the chart sets for itself rather than from a value of its own.
    let not_values = ["no-cache", "lease-namespace", "help", "version"];
    let args = deployment_cli(&template_all_values()).1;
    // --manifest-repo and --manifest-github exclude each other: the other one from a second run.
    let all = all_values();
    let git = deployment_cli(&template_raw(&[
        "-f",
        &all,
        "--set",
        "manifests.github=",
        "--set",
        "manifests.repository=ssh://git@git.example.com/tools/hermit.git",
    ]))
    .1;
    let given: BTreeSet<String> = args
        .iter()
        .chain(&git)
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap().to_owned())
        .collect();
    let command = <Cli as clap::CommandFactory>::command();
    let controller = command.find_subcommand("controller").unwrap();
    let mut missing = Vec::new();
    for arg in controller.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "verbose" {
            assert!(args.iter().any(|a| a == "-vv"), "controller.verbosity");
        } else if !not_values.contains(&long) && !given.contains(long) {
            missing.push(long.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "controller flags the chart cannot set (add a value, and set it in ci/all-values.yaml): {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// security

/// The renderings the checks below go through.
fn variants() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("default", template(&[])),
        ("namespaced", template(&["--set", "watchNamespace=tools"])),
        (
            "leader election and metrics",
            template(&[
                "--set",
                "leaderElection.enabled=true",
                "--set",
                "replicas=2",
                "--set",
                "metrics.serviceMonitor.enabled=true",
            ]),
        ),
        ("all values", template_all_values()),
    ]
}

#[test]
fn security_contexts_are_restricted() {
    for (name, docs) in variants() {
        let pod = pod_spec(&docs);
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{name}");
        assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert!(psc["runAsUser"].as_i64().unwrap() > 0, "{name}");
        let sc = &container(&docs)["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["runAsNonRoot"], true, "{name}");
        assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{name}");
        assert!(sc["capabilities"].get("add").is_none(), "{name}");
        assert!(sc.get("privileged").is_none_or(|p| p == false), "{name}");
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod.get(host).is_none(), "{name}: {host}");
        }
        for v in pod["volumes"].as_array().unwrap() {
            assert!(v.get("hostPath").is_none(), "{name}: {v}");
        }
    }
    // The images run as the uid the chart and the build Jobs use.
    let docs = template(&[]);
    assert_eq!(pod_spec(&docs)["securityContext"]["runAsUser"], 65532);
}

/// `doc` read as the API's type `T` and written back is `doc` again: no misspelt or misplaced
/// field (the type would drop it), no value of the wrong kind (it would not read).
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("not a valid {}: {e}\n{doc}", doc["kind"]));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back, doc,
        "{} has fields its type does not know",
        doc["kind"]
    );
}

#[test]
fn every_object_is_a_valid_kubernetes_object() {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, rbac::v1 as rbac};
    for (name, docs) in variants() {
        for doc in &docs {
            match doc["kind"].as_str().unwrap() {
                "Deployment" => round_trips::<apps::Deployment>(doc),
                "ServiceAccount" => round_trips::<core::ServiceAccount>(doc),
                "ConfigMap" => round_trips::<core::ConfigMap>(doc),
                "Service" => round_trips::<core::Service>(doc),
                "Role" => round_trips::<rbac::Role>(doc),
                "RoleBinding" => round_trips::<rbac::RoleBinding>(doc),
                "ClusterRole" => round_trips::<rbac::ClusterRole>(doc),
                "ClusterRoleBinding" => round_trips::<rbac::ClusterRoleBinding>(doc),
                "ServiceMonitor" => assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1"),
                other => panic!("{name}: unexpected kind {other}"),
            }
        }
    }
}

/// (apiGroup, resource) → verbs, over every rule of every Role and ClusterRole in `docs`,
/// asserting that none uses `*`.
fn rules(docs: &[&Value]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut all: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for role in docs {
        for rule in role["rules"].as_array().unwrap() {
            let (groups, resources, verbs) = (
                strings(&rule["apiGroups"]),
                strings(&rule["resources"]),
                strings(&rule["verbs"]),
            );
            for s in groups.iter().chain(&resources).chain(&verbs) {
                assert!(!s.contains('*'), "a wildcard in {rule}");
            }
            assert!(rule.get("nonResourceURLs").is_none(), "{rule}");
            for g in &groups {
                for r in &resources {
                    all.entry((g.clone(), r.clone()))
                        .or_default()
                        .extend(verbs.iter().cloned());
                }
            }
        }
    }
    all
}

fn expected(rules: &[(&str, &str, &[&str])]) -> BTreeMap<(String, String), BTreeSet<String>> {
    rules
        .iter()
        .map(|(g, r, v)| {
            (
                (g.to_string(), r.to_string()),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect()
}

/// What the controller does in the namespaces it watches.
const CONTROLLER_RULES: &[(&str, &str, &[&str])] = &[
    ("hermit-pex.dev", "pythonpackages", &["list", "watch"]),
    ("hermit-pex.dev", "pythonpackages/status", &["patch"]),
    ("hermit-pex.dev", "pythonpackages/finalizers", &["update"]),
    (
        "batch",
        "jobs",
        &["create", "delete", "list", "patch", "watch"],
    ),
    ("", "pods", &["list"]),
    ("events.k8s.io", "events", &["create", "patch"]),
];
const NODE_RULES: &[(&str, &str, &[&str])] = &[("", "nodes", &["list"])];

fn named<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> Vec<&'a Value> {
    of_kind(docs, kind)
        .into_iter()
        .filter(|d| d["metadata"]["name"].as_str().unwrap().ends_with(suffix))
        .collect()
}

#[test]
fn rbac_is_least_privilege_in_every_mode() {
    for (name, docs) in variants() {
        let roles: Vec<&Value> = of_kind(&docs, "Role")
            .into_iter()
            .chain(of_kind(&docs, "ClusterRole"))
            .collect();
        let all = rules(&roles);
        assert!(
            !all.keys().any(|(_, r)| r.starts_with("secrets")),
            "{name}: the controller never reads Secrets"
        );
        // Every binding names a role of this chart and the controller's ServiceAccount.
        let sa = pod_spec(&docs)["serviceAccountName"].clone();
        for binding in of_kind(&docs, "RoleBinding")
            .into_iter()
            .chain(of_kind(&docs, "ClusterRoleBinding"))
        {
            let role = &binding["roleRef"]["name"];
            assert!(
                roles.iter().any(|r| &r["metadata"]["name"] == role
                    && r["kind"] == binding["roleRef"]["kind"]
                    && r["metadata"]["namespace"] == binding["metadata"]["namespace"]),
                "{name}: {binding}"
            );
            assert_eq!(binding["subjects"].as_array().unwrap().len(), 1);
            assert_eq!(binding["subjects"][0]["name"], sa, "{name}");
            assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE, "{name}");
        }
    }

    // All namespaces: one ClusterRole for the resources, one for Nodes.
    let docs = template(&[]);
    let main = named(&docs, "ClusterRole", "hermit-pex");
    assert_eq!(rules(&main), expected(CONTROLLER_RULES));
    assert_eq!(
        rules(&named(&docs, "ClusterRole", "-nodes")),
        expected(NODE_RULES)
    );
    assert!(of_kind(&docs, "Role").is_empty());

    // One namespace: a Role there; Nodes stay a ClusterRole, unless switched off.
    let docs = template(&["--set", "watchNamespace=tools"]);
    assert_eq!(controller(&docs).namespace.as_deref(), Some("tools"));
    let role = one(&docs, "Role");
    assert_eq!(role["metadata"]["namespace"], "tools");
    assert_eq!(rules(&[role]), expected(CONTROLLER_RULES));
    assert_eq!(one(&docs, "RoleBinding")["metadata"]["namespace"], "tools");
    assert_eq!(rules(&of_kind(&docs, "ClusterRole")), expected(NODE_RULES));
    let docs = template(&["--set", "watchNamespace=tools", "--set", "rbac.nodes=false"]);
    assert!(of_kind(&docs, "ClusterRole").is_empty());
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());

    // Leader election: the Lease, in the release namespace, by name where the API allows.
    let docs = template(&["--set", "leaderElection.enabled=true"]);
    let a = controller(&docs);
    assert!(a.leader_elect);
    let lease = named(&docs, "Role", "-leader-election");
    assert_eq!(lease.len(), 1);
    assert_eq!(lease[0]["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        rules(&lease),
        expected(&[(
            "coordination.k8s.io",
            "leases",
            &["create", "get", "update"]
        )])
    );
    for rule in lease[0]["rules"].as_array().unwrap() {
        if strings(&rule["verbs"]) != ["create"] {
            assert_eq!(strings(&rule["resourceNames"]), [a.lease_name.as_str()]);
        }
    }
    // No leader election: no Lease rules anywhere.
    assert!(named(&template(&[]), "Role", "-leader-election").is_empty());

    // rbac.create=false: none at all.
    let docs = template(&["--set", "rbac.create=false"]);
    for kind in ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"] {
        assert!(of_kind(&docs, kind).is_empty(), "{kind}");
    }
}

/// Every `env` list anywhere in `v`.
fn env_vars(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "env" {
                    out.extend(child.as_array().unwrap().iter().cloned());
                } else {
                    env_vars(child, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| env_vars(c, out)),
        _ => {}
    }
}

#[test]
fn the_token_is_only_ever_a_secret_key_ref() {
    for (name, docs) in variants() {
        assert!(
            of_kind(&docs, "Secret").is_empty(),
            "{name}: the chart makes no Secret"
        );
        let a = controller(&docs);
        let mut vars = Vec::new();
        docs.iter().for_each(|d| env_vars(d, &mut vars));
        let tokens: Vec<&Value> = vars
            .iter()
            .filter(|e| e["name"].as_str().unwrap().contains("TOKEN"))
            .collect();
        assert!(!tokens.is_empty(), "{name}");
        for e in tokens {
            assert!(e.get("value").is_none(), "{name}: {e}");
            assert!(
                e["valueFrom"]["secretKeyRef"]["name"].is_string(),
                "{name}: {e}"
            );
        }
        let github = env(container(&docs), "GITHUB_TOKEN").unwrap();
        assert_eq!(
            github["valueFrom"]["secretKeyRef"],
            json!({"name": a.token_secret, "key": a.token_key}),
            "{name}: the controller and its Jobs read the same Secret"
        );
    }
    // values.yaml has no place for a token, and the schema refuses one.
    let values: Value =
        serde_norway::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    let mut keys = BTreeSet::new();
    fn walk(v: &Value, keys: &mut BTreeSet<String>) {
        if let Value::Object(m) = v {
            for (k, c) in m {
                keys.insert(k.clone());
                walk(c, keys);
            }
        }
    }
    walk(&values, &mut keys);
    let token_keys: Vec<&String> = keys
        .iter()
        .filter(|k| k.to_lowercase().contains("token"))
        .collect();
    assert_eq!(token_keys, ["gitTokenSecret", "tokenKey", "tokenSecret"]);
    // The controller has one Git token and one SSH key for manifests and sources alike.
    let err = template_fails(&base_and(&[
        "--set",
        "manifests.gitTokenSecret.name=a",
        "--set",
        "sources.gitTokenSecret.name=b",
    ]));
    assert!(err.contains("one Git token"), "{err}");
    let err = template_fails(&base_and(&[
        "--set",
        "manifests.sshKeySecret=a",
        "--set",
        "sources.sshKeySecret=b",
    ]));
    assert!(err.contains("one SSH key"), "{err}");
    let docs = template(&base_and(&["--set", "sources.gitTokenSecret.name=src-git"]));
    let token = env(container(&docs), "HERMIT_PEX_GIT_TOKEN").unwrap();
    assert_eq!(
        token["valueFrom"]["secretKeyRef"],
        json!({"name": "src-git", "key": "token"}),
        "the controller lists tags with the Jobs' Secret"
    );
    let err = template_fails(&base_and(&["--set", "github.token=ghp_secret"]));
    assert!(
        err.contains("additional properties 'token' not allowed"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// build flavours

/// The flavours of the values reach the controller as `--flavours`, a key of the ConfigMap it
/// mounts, which it parses into the same table; a bad one is refused by the values schema.
#[test]
fn flavours_reach_the_controller_as_a_table_it_parses() {
    let flavours_of = |docs: &[Value]| {
        let cm = one(docs, "ConfigMap");
        let yaml = cm["data"]["flavours.yaml"].as_str().unwrap();
        hermit_pex::flavour::Flavours::parse(yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"))
    };
    assert_eq!(
        flavours_of(&template(&[])),
        hermit_pex::flavour::Flavours::default()
    );
    let docs = template_all_values();
    let t = flavours_of(&docs);
    assert_eq!(t.flavours.len(), 2);
    let deb = &t.flavours["deb"];
    assert_eq!(
        deb.install,
        ["apt-get", "install", "-y", "--no-install-recommends"]
    );
    assert_eq!(deb.build_packages, ["gcc", "libc6-dev"]);
    assert!(t.flavours["rpm-install"].install_packages);
    let deployment = one(&docs, "Deployment");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let a = controller_args(&args);
    let file = a.flavours.as_ref().expect("--flavours");
    assert_eq!(file.parent(), a.platform_table.as_ref().unwrap().parent());
    assert_eq!(file.file_name().unwrap(), "flavours.yaml");
    for bad in [
        "flavours.deb.buildPackages[0]=-y",
        "flavours.Deb.install[0]=apt-get",
        "flavours.deb.family=zip",
    ] {
        let mut args = vec!["--set", bad];
        if !bad.contains("install") {
            args.extend(["--set", "flavours.deb.install[0]=apt-get"]);
        }
        if !bad.contains("family") {
            args.extend(["--set", "flavours.deb.family=deb"]);
        }
        let err = template_fails(&base_and(&args));
        assert!(err.contains("flavours"), "{bad}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// the platform table

fn table_of(docs: &[Value]) -> PlatformTable {
    let cm = one(docs, "ConfigMap");
    let yaml = cm["data"]["platforms.yaml"].as_str().unwrap();
    PlatformTable::parse(yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"))
}

fn platform(s: &str) -> Platform {
    s.parse().unwrap()
}

#[test]
fn the_configmap_holds_a_platform_table_the_controller_parses() {
    assert_eq!(
        table_of(&template(&[])),
        PlatformTable::default(),
        "the chart's default table is the controller's"
    );
    // The book's default table is the same one.
    let tables = platform_tables();
    let block = tables
        .iter()
        .find(|b| b.starts_with("platforms:\n  linux-amd64:  {"))
        .expect("the book shows the default table");
    assert_eq!(
        PlatformTable::parse(block).unwrap(),
        PlatformTable::default()
    );

    let t = table_of(&template_all_values());
    let darwin = &t.platforms[&platform("darwin-arm64")];
    assert!(!darwin.cross);
    assert_eq!(darwin.node_selector["kubernetes.io/os"], "darwin");
    assert_eq!(darwin.tolerations[0].toleration_seconds, Some(3600));
    assert_eq!(darwin.tolerations[0].effect.as_deref(), Some("NoExecute"));
    let arm = &t.platforms[&platform("linux-arm64")];
    let preferred = arm
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .unwrap();
    assert_eq!(preferred[0].weight, 50);
    assert_eq!(
        t.platforms[&platform("linux-amd64")].node_selector["node-pool"],
        "builds"
    );

    // A platform set to null is left out.
    let t = table_of(&template(&["--set", "platforms.darwin-arm64=null"]));
    assert!(!t.platforms.contains_key(&platform("darwin-arm64")));
    assert_eq!(t.platforms.len(), 3);

    // The book's other tables, given as values files on top of the default.
    let dir = tempfile::tempdir().unwrap();
    let examples: Vec<&String> = tables
        .iter()
        .filter(|b| b.starts_with("platforms:\n  linux-arm64:"))
        .collect();
    assert_eq!(examples.len(), 2, "no-arm64 and darwin-nodes examples");
    for (i, block) in examples.iter().enumerate() {
        let file = dir.path().join(format!("platforms-{i}.yaml"));
        std::fs::write(&file, block).unwrap();
        let t = table_of(&template(&["-f", file.to_str().unwrap()]));
        assert_eq!(t.platforms.len(), 4);
        let arm = &t.platforms[&platform("linux-arm64")];
        if i == 0 {
            assert!(arm.cross);
            assert_eq!(arm.node_selector["kubernetes.io/arch"], "amd64");
        } else {
            assert_eq!(arm.tolerations[0].key.as_deref(), Some("arch"));
            let darwin = &t.platforms[&platform("darwin-arm64")];
            assert!(darwin.cross);
            assert_eq!(darwin.node_selector["node-pool"], "builds");
            assert_eq!(darwin.tolerations[0].key.as_deref(), Some("builds"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// metrics and leader election

#[test]
fn metrics_service_and_service_monitor_point_at_the_metrics_port() {
    let docs = template(&["--set", "metrics.service.enabled=true"]);
    one(&docs, "Service");
    assert!(of_kind(&docs, "ServiceMonitor").is_empty());

    let docs = template(&[
        "--set",
        "leaderElection.enabled=true",
        "--set",
        "replicas=3",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]);
    let service = one(&docs, "Service"); // implied by the ServiceMonitor
    let monitor = one(&docs, "ServiceMonitor");
    let pod_labels = &one(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "the Service selects the controller pod");
    }
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["targetPort"], container(&docs)["ports"][0]["name"]);
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the Service"
        );
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], port["name"]);
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"][0],
        NAMESPACE
    );

    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let a = controller(&docs);
    assert!(a.leader_elect);
    assert_eq!(
        a.lease_name, RELEASE,
        "the Lease is named after the release"
    );
}

#[test]
fn the_webhook_secret_comes_from_the_named_secret_and_brings_the_service() {
    // Off by default: no secret in the environment, so no receiver, and no Service.
    let docs = template(&[]);
    assert!(env(container(&docs), "HERMIT_PEX_WEBHOOK_SECRET").is_none());
    assert!(of_kind(&docs, "Service").is_empty());

    for (docs, secret) in [
        (
            template(&["--set", "webhook.secret.name=hermit-webhook"]),
            json!({"name": "hermit-webhook", "key": "secret"}),
        ),
        (
            template_all_values(),
            json!({"name": "hermit-webhook", "key": "hook-secret"}),
        ),
    ] {
        let c = container(&docs);
        let var = env(c, "HERMIT_PEX_WEBHOOK_SECRET").unwrap();
        assert!(var.get("value").is_none(), "never a literal: {var}");
        assert_eq!(var["valueFrom"]["secretKeyRef"], secret);
        // The Git host needs a way in: the Service on the port the receiver is served on.
        let service = one(&docs, "Service");
        assert_eq!(
            service["spec"]["ports"][0]["targetPort"],
            c["ports"][0]["name"]
        );
    }
    assert!(!template_fails(&base_and(&["--set", "webhook.secret.name=Not_A_Name"])).is_empty());
    let err = template_fails(&base_and(&["--set", "webhook.secret.value=s3cret"]));
    assert!(
        err.contains("additional properties 'value' not allowed"),
        "the chart never holds the secret: {err}"
    );
}

// ---------------------------------------------------------------------------------------------
// bad values

/// The index's credentials reach the controller only as references to the Secret, each key
/// optional; the URL never carries them; the old `indexUrl` still works.
#[test]
fn index_credentials_are_secret_references_only() {
    let docs = template_all_values();
    let c = container(&docs);
    for (var, key) in [
        ("HERMIT_PEX_INDEX_USERNAME", "username"),
        ("HERMIT_PEX_INDEX_PASSWORD", "password"),
        ("HERMIT_PEX_INDEX_TOKEN", "token"),
    ] {
        let e = env(c, var).unwrap_or_else(|| panic!("{var} missing"));
        assert!(e.get("value").is_none(), "{e}");
        assert_eq!(
            e["valueFrom"]["secretKeyRef"],
            json!({"name": "pypi-example", "key": key, "optional": true}),
            "the controller reads the Secret its Jobs read (--index-credentials-secret)"
        );
    }
    // A named index's credentials: its own variables, from its own Secret.
    let e = env(c, "HERMIT_PEX_INDEX_TEAM_ML_TOKEN").expect("the named index's token variable");
    assert_eq!(
        e["valueFrom"]["secretKeyRef"],
        json!({"name": "pypi-ml", "key": "token", "optional": true})
    );
    assert!(env(c, "HERMIT_PEX_INDEX_PUBLIC_MIRROR_TOKEN").is_none());
    let defaults = template(&[]);
    assert!(env(container(&defaults), "HERMIT_PEX_INDEX_USERNAME").is_none());
    assert_eq!(
        controller(&defaults).index.index_url,
        hermit_pex::pypi::DEFAULT_INDEX_URL
    );
    let old = template(&["--set", "indexUrl=https://old.example.com/simple/"]);
    assert_eq!(
        controller(&old).index.index_url,
        "https://old.example.com/simple/"
    );
}

#[test]
fn bad_values_fail_through_the_schema() {
    let schema_error = "values don't meet the specifications of the schema";
    for (set, names) in [
        ("replicas=-1", "/replicas"),
        ("platforms.windows-amd64.cross=true", "windows-amd64"),
        ("platforms.linux-amd64.nodeSelectors.a=b", "nodeSelectors"),
        (
            "platforms.linux-amd64.cross=yes",
            "/platforms/linux-amd64/cross",
        ),
        (
            "platforms.linux-amd64.tolerations[0].effect=Sometimes",
            "effect",
        ),
        ("controller.logFormat=xml", "/controller/logFormat"),
        ("controller.verbosity=3", "/controller/verbosity"),
        (
            "releases.repository=not-a-repository",
            "/releases/repository",
        ),
        ("builder.perPackage=0", "/builder/perPackage"),
        ("builder.resources.requets.cpu=1", "requets"),
        ("metrics.port=70000", "/metrics/port"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("image.digest=latest", "/image/digest"),
        ("watchNamespace=Not_A_Namespace", "/watchNamespace"),
        ("leaderElecton.enabled=true", "leaderElecton"),
        ("platforms=null", "platforms"),
        (
            "index.url=https://u:pw@pypi.example.com/simple/",
            "/index/url",
        ),
        (
            "index.extraUrls[0]=https://u:pw@x.example.com/simple/",
            "/index/extraUrls",
        ),
        (
            "index.credentialsSecret=Not_A_Name",
            "/index/credentialsSecret",
        ),
        ("index.password=pw", "password"),
    ] {
        let err = template_fails(&base_and(&["--set", set]));
        assert!(
            err.contains(schema_error) && err.contains(names),
            "--set {set}: {err}"
        );
    }
    // What a schema cannot say well, the templates say.
    for (args, message) in [
        (
            vec!["--set", "image.repository=r"],
            "releases.repository: the GitHub OWNER/REPO",
        ),
        (
            vec!["--set", "releases.repository=o/r"],
            "image.repository: the controller image",
        ),
        (
            base_and(&["--set", "replicas=2"]),
            "replicas > 1 needs leaderElection.enabled=true",
        ),
        (
            base_and(&[
                "--set",
                "manifests.repository=https://git.example.com/x.git",
                "--set",
                "manifests.github=o/r",
            ]),
            "set one of them",
        ),
    ] {
        let err = template_fails(&args);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// the CRD

#[test]
fn the_charts_crd_is_the_generated_one() {
    let generated = hermit_pex::controller::resource::crd_yaml();
    let checked_in = std::fs::read_to_string(repo_root().join("crds/pythonpackage.yaml")).unwrap();
    let in_chart = std::fs::read_to_string(chart().join("crds/pythonpackage.yaml")).unwrap();
    assert_eq!(
        in_chart, checked_in,
        "charts/hermit-pex/crds/pythonpackage.yaml differs: cp crds/pythonpackage.yaml charts/hermit-pex/crds/"
    );
    assert_eq!(
        checked_in, generated,
        "crds/ is stale: hermit-pex crd > crds/pythonpackage.yaml"
    );
    let out = helm(&["show", "crds", chart().to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains(&generated),
        "helm installs the generated CRD"
    );
    let crds = ls(&chart().join("crds"));
    assert_eq!(crds, ["pythonpackage.yaml"]);
}

fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// the images

/// The instructions of each `FROM ... AS name` stage of the Dockerfile (continuations joined,
/// comments dropped), as (INSTRUCTION, rest).
fn dockerfile_stages() -> BTreeMap<String, Vec<(String, String)>> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() && current.is_empty() {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            lines.push(std::mem::take(&mut current));
        }
    }
    let mut stages = BTreeMap::new();
    let mut stage: Option<String> = None;
    stages.insert("(global)".to_owned(), Vec::new());
    for line in lines {
        let (instruction, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let instruction = instruction.to_uppercase();
        if instruction == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let name = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("as"))
                .map(|i| words[i + 1].to_owned())
                .expect("every stage is named");
            stages.insert(name.clone(), vec![("FROM".into(), rest.to_owned())]);
            stage = Some(name);
            continue;
        }
        let key = stage.clone().unwrap_or_else(|| "(global)".into());
        stages
            .get_mut(&key)
            .unwrap()
            .push((instruction, rest.to_owned()));
    }
    stages
}

fn instruction<'a>(stage: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|(i, _)| i == name)
        .map(|(_, rest)| rest.as_str())
        .collect()
}

/// The stage's ENTRYPOINT (exec form), checked to be the hermit-pex binary the stage copies in.
fn entrypoint(stages: &BTreeMap<String, Vec<(String, String)>>, name: &str) -> Vec<String> {
    let stage = &stages[name];
    let entry = instruction(stage, "ENTRYPOINT");
    assert_eq!(entry.len(), 1, "{name}: one ENTRYPOINT");
    let words: Vec<String> = serde_json::from_str(entry[0])
        .unwrap_or_else(|e| panic!("{name}: ENTRYPOINT in exec (JSON) form: {e}"));
    let binary = Path::new(env!("CARGO_BIN_EXE_hermit-pex"))
        .file_name()
        .unwrap();
    assert_eq!(Path::new(&words[0]).file_name().unwrap(), binary, "{name}");
    assert!(
        instruction(stage, "COPY")
            .iter()
            .any(|c| c.starts_with("--from=build ") && c.ends_with(&format!(" {}", words[0]))),
        "{name}: the binary is copied to {}",
        words[0]
    );
    assert_eq!(
        instruction(stage, "USER"),
        ["65532:65532"],
        "{name}: runs as 65532"
    );
    words
}

fn arg_default<'a>(stage: &'a [(String, String)], name: &str) -> &'a str {
    instruction(stage, "ARG")
        .into_iter()
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("ARG {name}=..."))
        .trim_matches('"')
}

#[test]
fn the_builder_image_runs_what_a_build_job_asks() {
    let stages = dockerfile_stages();
    let entry = entrypoint(&stages, "builder");
    let builder = &stages["builder"];

    let spec: PythonPackageSpec = serde_norway::from_str(
        "package: aider-chat\nbinaries: [aider]\nextraPackages: [\"setuptools<80.9\"]\nconfigVersion: 2\nversions:\n  - {version: \"0.83.1\", python: \"3.12\"}\n",
    )
    .unwrap();
    let mut resource = PythonPackage::new("aider-chat", spec);
    resource.metadata.namespace = Some("tools".into());
    resource.metadata.uid = Some("uid-1".into());
    // The Job settings the chart's default install gives the controller.
    let a = controller(&template(&[]));
    let settings = JobSettings {
        token_secret: (a.token_secret.clone(), a.token_key.clone()),
        index_url: a.index.index_url.clone(),
        github_api_url: a.github.github_api_url.clone(),
        github_url: a.github.github_url.clone(),
        build_timeout: a.build_timeout,
        test_timeout: a.test_timeout,
        cache_claim: a.cache_claim.clone(),
        active_deadline_seconds: a.job_deadline_seconds,
        backoff_limit: a.job_backoff_limit,
        ttl_seconds_after_finished: a.job_ttl_seconds,
        service_account: a.builder_service_account.clone(),
        ..JobSettings::new(&a.builder_image, &a.repository)
    };
    let version = "0.86.2".parse().unwrap();
    let release = ReleaseId("7".into());
    let lock = JobStep::Lock {
        platforms: Platform::ALL.to_vec(),
    };
    let steps =
        ["linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"].map(|p| JobStep::Build {
            platform: platform(p),
        });
    for step in std::iter::once(lock).chain(steps) {
        let python = PythonMinor::new(12).unwrap();
        let what = JobFor {
            version: &version,
            python,
            release: &release,
            step: step.clone(),
            git: None,
        };
        let args = step_args(
            &resource,
            &what,
            &settings,
            &settings.index_for(&resource).unwrap(),
            &[],
        );
        let argv: Vec<String> = entry[1..].iter().cloned().chain(args).collect();
        let (step_args, platforms) = match cli(&argv).command {
            Cmd::Build(b) => (b.step, vec![b.platform]),
            Cmd::Lock(l) => (l.step, l.platforms),
            _ => panic!("{argv:?} is not `lock` or `build`"),
        };
        assert_eq!(step_args.package.to_string(), "aider-chat");
        match &step {
            JobStep::Build { platform } => assert_eq!(platforms, [*platform]),
            JobStep::Lock { platforms: all } => assert_eq!(&platforms, all),
        }
        assert_eq!(step_args.release_id, "7");
        assert_eq!(
            step_args.release.repository.as_deref(),
            Some("example-org/hermit-tools")
        );
        assert_eq!(
            step_args.index.cache_dir.as_deref(),
            Some(Path::new("/cache"))
        );
        // The Job leaves the command to the image and runs as the image's user.
        let job = step_job(&resource, &what, &PlatformTable::default(), &settings).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert!(pod.containers[0].command.is_none());
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some(a.builder_image.as_str())
        );
        assert_eq!(pod.security_context.unwrap().run_as_user, Some(65532));
    }

    // pex as the build expects it, and every CPython minor from 3.9 to 3.14 on PATH.
    assert_eq!(
        arg_default(&stages["pythons"], "PEX_VERSION"),
        hermit_pex::tools::PEX_VERSION
    );
    // uv as the lock expects it.
    assert_eq!(
        arg_default(&stages["pythons"], "UV_VERSION"),
        hermit_pex::lock::UV_VERSION
    );
    for stage in ["pythons", "builder"] {
        let pythons: Vec<&str> = arg_default(&stages[stage], "PYTHONS").split(' ').collect();
        for minor in 9..=14 {
            assert!(
                pythons.contains(&format!("3.{minor}").as_str()),
                "{stage}: 3.{minor}"
            );
        }
    }
    let envs = instruction(builder, "ENV").join(" ");
    assert!(envs.contains("HERMIT_PEX_PEX=/opt/pex/bin/pex"), "{envs}");
    assert!(envs.contains("HERMIT_PEX_UV=/usr/local/bin/uv"), "{envs}");
    assert!(envs.contains("HOME=/work"), "{envs}");
    assert!(
        instruction(builder, "COPY").contains(&"--from=pythons /opt/bin/ /usr/local/bin/"),
        "python3.X and pex on PATH"
    );
}

#[test]
fn the_controller_images_run_the_deployments_args() {
    let stages = dockerfile_stages();
    let args = deployment_cli(&template(&[])).1;
    for stage in ["controller", "controller-distroless"] {
        let entry = entrypoint(&stages, stage);
        let argv: Vec<String> = entry[1..].iter().cloned().chain(args.clone()).collect();
        controller_args(&argv);
    }
    let controller = instruction(&stages["controller"], "RUN").join(" ");
    for package in ["git", "openssh-client", "ca-certificates"] {
        assert!(
            controller.contains(package),
            "the controller image has {package}"
        );
    }
    // ssh (and some Python code) want a passwd entry for the uid they run as.
    for stage in ["controller", "builder"] {
        let run = instruction(&stages[stage], "RUN").join(" ");
        assert!(run.contains("useradd --uid 65532 --gid 65532"), "{stage}");
    }
    // Multi-arch: the Rust build runs on the build platform, for amd64 and arm64 targets.
    let build = &stages["build"];
    assert!(instruction(build, "FROM")[0].starts_with("--platform=$BUILDPLATFORM "));
    let run = instruction(build, "RUN").join(" ");
    assert!(run.contains("amd64) triple=x86_64-unknown-linux-gnu"));
    assert!(run.contains("arm64) triple=aarch64-unknown-linux-gnu"));
    assert!(run.contains("--locked"));
    // The Rust image is at least the crate's rust-version.
    let cargo: toml_lite::Table =
        toml_lite::parse(&std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap());
    let msrv = cargo["rust-version"].clone();
    let rust = arg_default(&stages["(global)"], "RUST_VERSION");
    assert!(
        version_tuple(rust) >= version_tuple(&msrv),
        "rust:{rust} is older than rust-version {msrv}"
    );
    // The build context leaves out what is large and not needed.
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    for path in ["target/", ".tools/", ".git/"] {
        assert!(ignore.lines().any(|l| l == path), ".dockerignore: {path}");
    }
}

fn version_tuple(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

/// Just enough of Cargo.toml: `key = "string"` lines of the [package] table.
mod toml_lite {
    pub type Table = std::collections::BTreeMap<String, String>;

    pub fn parse(s: &str) -> Table {
        let mut table = Table::new();
        let mut in_package = false;
        for line in s.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_package = line == "[package]";
            } else if in_package && let Some((k, v)) = line.split_once('=') {
                table.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
        table
    }
}

// ---------------------------------------------------------------------------------------------
// the docs' install path

/// The docs' fenced blocks of one language (README, then the book), in order.
fn doc_blocks(lang: &str) -> Vec<String> {
    common::docs::blocks_in(lang)
        .into_iter()
        .map(|b| b.text)
        .collect()
}

/// The docs' ```yaml block that starts with `first_line`.
fn doc_block(first_line: &str) -> String {
    doc_blocks("yaml")
        .into_iter()
        .find(|b| b.starts_with(first_line))
        .unwrap_or_else(|| panic!("docs: no ```yaml block starting with {first_line:?}"))
}

/// The book's platform tables: values blocks (`# hermit-pex-values.yaml`) of `platforms:`
/// alone, without their marker line.
fn platform_tables() -> Vec<String> {
    common::docs::blocks_in("yaml")
        .into_iter()
        .filter(|b| b.marker() == Some("hermit-pex-values.yaml"))
        .filter_map(|b| {
            let body = b.text.split_once('\n').map(|(_, rest)| rest.to_owned())?;
            body.starts_with("platforms:\n").then_some(body)
        })
        .collect()
}

#[test]
fn the_docs_install_renders_and_its_first_package_is_valid() {
    let sh = doc_blocks("sh").join("");
    assert!(
        sh.contains("helm install hermit-pex charts/hermit-pex -n hermit-pex --create-namespace"),
        "docs: the helm install line"
    );
    // The values file of the docs' install, with its --set.
    let values = common::docs::marked("yaml", "hermit-pex-values.yaml", "releases:").text;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hermit-pex-values.yaml");
    std::fs::write(&file, &values).unwrap();
    let out = render(&[
        "-f",
        file.to_str().unwrap(),
        "--set",
        "github.tokenSecret=hermit-pex-github",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let docs = documents(&text(&out.stdout));
    let a = controller(&docs);
    assert_eq!(a.repository, "my-org/hermit-tools");
    assert_eq!(
        a.manifest.manifest_repo.as_deref(),
        Some("https://github.com/my-org/hermit-tools.git")
    );
    assert_eq!(
        a.builder_image,
        format!(
            "registry.example.com/tools/hermit-pex-builder:{}",
            app_version()
        )
    );

    // The first PythonPackage is one the API server (the CRD's schema) and the controller take.
    let cowsay = common::docs::marked("yaml", "cowsay.yaml", "kind: PythonPackage").text;
    let resource: PythonPackage = serde_norway::from_str(&cowsay).unwrap();
    assert_eq!(resource.spec.package.package.to_string(), "cowsay");
    assert_eq!(resource.spec.interval.as_deref(), Some("1h"));

    // NOTES.txt tells what to do next (rendered without a cluster).
    let chart = chart().display().to_string();
    let mut install = vec!["install", RELEASE, chart.as_str(), "-n", NAMESPACE];
    install.extend(base_and(&["--dry-run=client"]));
    let out = helm(&install);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let notes = text(&out.stdout);
    let notes = &notes[notes.find("NOTES:").expect("helm prints NOTES")..];
    assert!(
        notes.contains(
            "kubectl -n hermit-pex create secret generic hermit-pex-github --from-literal=token="
        ),
        "{notes}"
    );
    assert!(notes.contains("kubectl get pypkg -A"), "{notes}");
    assert!(
        !notes.contains("WARNING"),
        "no Secret lookup without a cluster: {notes}"
    );
    // Its sample resource parses too.
    let start = notes.find("apiVersion: hermit-pex.dev/v1alpha1").unwrap();
    let end = notes[start..].find("EOF").unwrap();
    let sample: String = notes[start..start + end]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("     ").unwrap_or(l)))
        .collect();
    let _: PythonPackage =
        serde_norway::from_str(&sample).unwrap_or_else(|e| panic!("{e}:\n{sample}"));
}

#[test]
fn the_docs_flux_kustomization_applies_packages_and_waits_for_them() {
    let block = doc_block("apiVersion: kustomize.toolkit.fluxcd.io/v1");
    let k: Value = serde_norway::from_str(&block).unwrap();
    assert_eq!(k["kind"], "Kustomization");
    assert_eq!(k["spec"]["wait"], true);
    assert_eq!(k["spec"]["sourceRef"]["kind"], "GitRepository");
    assert!(k["spec"]["dependsOn"][0]["name"].is_string());
    assert!(k["spec"]["interval"].is_string() && k["spec"]["timeout"].is_string());
}

// ---------------------------------------------------------------------------------------------
// the docs' Argo CD health check and actions, run in Lua 5.1 as Argo CD runs them

fn run_lua(script: &str, obj: &Value) -> Value {
    use std::io::Write;
    let mut child = Command::new(common::python())
        .arg(repo_root().join("tests/fixtures/argocd_lua.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    let request = json!({"script": script, "obj": obj});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "lua failed (is lupa in .tools/venv? run scripts/test-tools.sh):\n{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn argocd_cm() -> Value {
    let block = doc_block("# kubectl -n argocd patch configmap argocd-cm");
    serde_norway::from_str(&block).unwrap()
}

/// A PythonPackage of `generation` whose status the controller's own `compute` made.
fn package_with(generation: i64, observed: Option<Observed<'_>>, suspend: bool) -> Value {
    let mut obj = json!({
        "apiVersion": "hermit-pex.dev/v1alpha1",
        "kind": "PythonPackage",
        "metadata": {"name": "cowsay", "namespace": "tools", "generation": generation},
        "spec": {"package": "cowsay", "binaries": ["cowsay"],
                 "versions": [{"version": "6.0", "python": "3.12"}], "suspend": suspend},
    });
    if let Some(o) = observed {
        obj["status"] = serde_json::to_value(compute(&o)).unwrap();
    }
    obj
}

#[test]
fn the_docs_argocd_health_check_follows_the_status() {
    let cm = argocd_cm();
    let health = cm["data"]["resource.customizations.health.hermit-pex.dev_PythonPackage"]
        .as_str()
        .unwrap();
    fn observed<'a>(
        generation: i64,
        (running, trouble): (u32, &'a [Trouble]),
        suspended: bool,
        error: Option<Unobserved>,
    ) -> Observed<'a> {
        Observed {
            generation,
            plan: None,
            running,
            no_node: &[],
            trouble,
            suspended,
            error,
            manifest: ManifestReport::default(),
            requested_at: None,
            previous: None,
            now: Time(k8s_openapi::jiff::Timestamp::now()),
        }
    }
    let manifest_failed = Observed {
        manifest: ManifestReport {
            error: Some("push rejected".into()),
            ..ManifestReport::default()
        },
        ..observed(2, (0, &[]), false, None)
    };
    let running = (1, &[][..]);
    let failure = [Trouble {
        failure: hermit_pex::plan::Failure::new(
            &"6.0".parse().unwrap(),
            Some("darwin-arm64".parse().unwrap()),
            "OOMKilled",
            "the build pod ran out of memory",
        ),
        permanent: true,
    }];
    let failed = (0, &failure[..]);
    let none = (0, &[][..]);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no status yet", package_with(1, None, false), "Progressing"),
        (
            "released",
            package_with(2, Some(observed(2, none, false, None)), false),
            "Healthy",
        ),
        (
            "released, but for an older generation",
            package_with(3, Some(observed(2, none, false, None)), false),
            "Progressing",
        ),
        (
            "building",
            package_with(2, Some(observed(2, running, false, None)), false),
            "Progressing",
        ),
        (
            "a build failed for good",
            package_with(2, Some(observed(2, failed, false, None)), false),
            "Degraded",
        ),
        (
            "the index is unreachable (retried)",
            package_with(
                2,
                Some(observed(
                    2,
                    none,
                    false,
                    Some(Unobserved::Unavailable("index: 503".into())),
                )),
                false,
            ),
            "Progressing",
        ),
        (
            "no such project",
            package_with(
                2,
                Some(observed(
                    2,
                    none,
                    false,
                    Some(Unobserved::Invalid("tool: no such project".into())),
                )),
                false,
            ),
            "Degraded",
        ),
        (
            "suspended",
            package_with(2, Some(observed(2, none, true, None)), true),
            "Suspended",
        ),
        (
            "the manifest push failed (retried)",
            package_with(2, Some(manifest_failed), false),
            "Progressing",
        ),
    ];
    for (what, obj, want) in cases {
        let hs = run_lua(health, &obj);
        assert_eq!(hs["status"], want, "{what}: {hs}\n{obj}");
        assert!(hs["message"].is_string(), "{what}: {hs}");
    }
    let hs = run_lua(
        health,
        &package_with(2, Some(observed(2, failed, false, None)), false),
    );
    assert!(hs["message"].as_str().unwrap().contains("1 failed"), "{hs}");
}

#[test]
fn the_docs_argocd_actions_retry_suspend_and_resume() {
    let cm = argocd_cm();
    let actions: Value = serde_norway::from_str(
        cm["data"]["resource.customizations.actions.hermit-pex.dev_PythonPackage"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let obj = package_with(1, None, false);
    let discovered = run_lua(actions["discovery.lua"].as_str().unwrap(), &obj);
    assert_eq!(discovered["suspend"]["disabled"], false, "{discovered}");
    assert_eq!(discovered["resume"]["disabled"], true, "{discovered}");
    assert!(discovered.get("retry").is_some(), "{discovered}");
    let action = |name: &str| {
        actions["definitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no {name} action"))["action.lua"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let retried = run_lua(&action("retry"), &obj);
    let at = retried["metadata"]["annotations"][hermit_pex::controller::jobs::REQUESTED_AT]
        .as_str()
        .unwrap_or_else(|| panic!("{retried}"));
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            .unwrap()
            .is_match(at),
        "{at}"
    );
    assert_eq!(run_lua(&action("suspend"), &obj)["spec"]["suspend"], true);
    let suspended = package_with(1, None, true);
    let discovered = run_lua(actions["discovery.lua"].as_str().unwrap(), &suspended);
    assert_eq!(discovered["resume"]["disabled"], false);
    assert_eq!(
        run_lua(&action("resume"), &suspended)["spec"]["suspend"],
        false
    );
}

/// The wheel index and the publish indexes reach the controller as flags; a publish index's
/// credentials only as references to its Secret, each key optional.
#[test]
fn the_wheel_index_and_publish_indexes_reach_the_controller_with_secret_references() {
    let docs = template_all_values();
    let (_, args) = deployment_cli(&docs);
    let a = controller_args(&args);
    let w = &a.wheel_index;
    assert_eq!(
        w.wheel_index_repo.as_deref(),
        Some("https://git.example.com/team/wheels.git")
    );
    assert_eq!(
        (w.wheel_index_branch.as_str(), w.wheel_index_path.as_str()),
        ("pages", "public/simple")
    );
    assert_eq!(
        w.wheel_index_links,
        hermit_pex::wheels::Links::ReleaseAssets
    );
    assert!(w.index_locked);
    assert_eq!(
        a.publish.publish_indexes,
        [
            (
                "team-feed".to_owned(),
                "https://pkgs.example.com/team/upload/".to_owned()
            ),
            (
                "pypiserver".to_owned(),
                "http://pypi.example.com:8080/".to_owned()
            ),
        ]
    );
    assert_eq!(
        a.publish.publish_simple_urls,
        [(
            "pypiserver".to_owned(),
            "http://pypi.example.com:8080/simple/".to_owned()
        )]
    );
    let c = container(&docs);
    for (var, key) in [
        ("HERMIT_PEX_PUBLISH_TEAM_FEED_USERNAME", "username"),
        ("HERMIT_PEX_PUBLISH_TEAM_FEED_PASSWORD", "password"),
        ("HERMIT_PEX_PUBLISH_TEAM_FEED_TOKEN", "token"),
    ] {
        let e = env(c, var).unwrap_or_else(|| panic!("{var} missing"));
        assert!(e.get("value").is_none(), "{e}");
        assert_eq!(
            e["valueFrom"]["secretKeyRef"],
            json!({"name": "team-feed-upload", "key": key, "optional": true})
        );
    }
    assert!(env(c, "HERMIT_PEX_PUBLISH_PYPISERVER_TOKEN").is_none());

    // Off by default.
    let defaults = controller(&template(&[]));
    assert!(defaults.wheel_index.wheel_index_repo.is_none());
    assert!(defaults.publish.publish_indexes.is_empty());

    for set in [
        "wheelIndex.links=linked",
        "wheelIndex.path=../elsewhere",
        "wheelIndex.repository=https://u:s3cret@git.example.com/w.git",
        "publish.indexes[0].name=Team_Feed,publish.indexes[0].url=https://x/upload/",
        "publish.indexes[0].name=feed,publish.indexes[0].url=https://u:s3cret@x/upload/",
        "publish.indexes[0].name=feed,publish.indexes[0].url=https://x/,publish.indexes[0].password=p",
    ] {
        let err = template_fails(&base_and(&["--set", set]));
        assert!(
            err.contains("values don't meet the specifications of the schema"),
            "{set}: {err}"
        );
    }
}
