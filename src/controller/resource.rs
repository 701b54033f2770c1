//! `PythonPackage` (`hermit-pex.dev/v1alpha1`, short name `pypkg`): a package config in a
//! cluster. Its `spec` is the config file's model one to one (so `hermit-pex convert` is
//! lossless) plus the cluster-only fields, spelled in camelCase as Kubernetes APIs are
//! (`extraPackages` where config.yaml has `extra_packages`). The CRD schema comes from these
//! types and carries the controller's own rules ([`admission`]), so the API server refuses
//! what the controller would mark `Invalid`; [`PythonPackageSpec::validate`] applies the same
//! rules to a resource that reached the controller without them (an older CRD).

mod admission;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names::shown;
use crate::spec::{PackageSpec, Problem, rules};

#[derive(CustomResource, Debug, Clone, PartialEq, JsonSchema)]
#[kube(
    group = "hermit-pex.dev",
    version = "v1alpha1",
    kind = "PythonPackage",
    plural = "pythonpackages",
    shortname = "pypkg",
    category = "hermit-pex",
    namespaced,
    status = "PythonPackageStatus",
    doc = "A Python tool on PyPI that hermit-pex builds into a Hermit package: one PEX per version and platform.",
    printcolumn = r#"{"name":"Package","type":"string","jsonPath":".spec.package"}"#,
    printcolumn = r#"{"name":"Latest","type":"string","jsonPath":".status.latest"}"#,
    printcolumn = r#"{"name":"Released","type":"string","jsonPath":".status.progress"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[schemars(transform = admission::spec_rules)]
pub struct PythonPackageSpec {
    /// The fields of `python/<package>/config.yaml`, multi-word ones in camelCase.
    #[serde(flatten)]
    pub package: PackageSpec,
    /// How often to look for new PyPI versions: `30m`, `1h` (default), `1h30m`; from 1m to
    /// 168h (7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Stop starting new work; running builds finish.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Where releases go, when not the controller's default repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<ReleaseTarget>,
    /// Where manifests are committed, when not the controller's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<ManifestTarget>,
    /// One of the package indexes the controller's operator named (`--named-index NAME=URL`),
    /// when not the controller's default index: versions are observed there and builds
    /// resolve from it, with that index's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Private indexes the operator named (`--publish-index NAME=URL`) that each published,
    /// tested version's Git-source wheel is uploaded to, with that index's credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub publish: Vec<String>,
}

/// Config fields whose resource spelling differs: (config.yaml, PythonPackage).
pub const RENAMED_FIELDS: [(&str, &str); 3] = [
    ("extra_packages", "extraPackages"),
    ("config_version", "configVersion"),
    ("partial_platforms", "partialPlatforms"),
];

const CLUSTER_FIELDS: [&str; 6] = [
    "interval",
    "suspend",
    "releases",
    "manifests",
    "index",
    "publish",
];

/// A problem's field (`extra_packages[0]`) as a resource spells it (`extraPackages[0]`).
pub fn resource_field(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("source.tag_prefix") {
        return format!("source.tagPrefix{rest}");
    }
    if let Some(rest) = field.strip_prefix("build.build_packages") {
        return format!("build.buildPackages{rest}");
    }
    if let Some(rest) = field.strip_prefix("build.runtime_packages") {
        return format!("build.runtimePackages{rest}");
    }
    for (file, resource) in RENAMED_FIELDS {
        if let Some(rest) = field.strip_prefix(file)
            && (rest.is_empty() || rest.starts_with(['[', '.']))
        {
            return format!("{resource}{rest}");
        }
    }
    field.to_owned()
}

fn file_field(key: &str) -> &str {
    RENAMED_FIELDS
        .iter()
        .find(|(_, resource)| *resource == key)
        .map_or(key, |(file, _)| file)
}

/// The config's fields in their resource spelling, then the cluster fields.
impl Serialize for PythonPackageSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let config = match serde_norway::to_value(&self.package).map_err(S::Error::custom)? {
            serde_norway::Value::Mapping(m) => m,
            _ => return Err(S::Error::custom("a config serialises to a mapping")),
        };
        let mut map = s.serialize_map(None)?;
        for (key, value) in &config {
            let key = key
                .as_str()
                .ok_or_else(|| S::Error::custom("config field names are strings"))?;
            map.serialize_entry(&resource_field(key), value)?;
        }
        if let Some(interval) = &self.interval {
            map.serialize_entry("interval", interval)?;
        }
        if self.suspend {
            map.serialize_entry("suspend", &true)?;
        }
        if let Some(releases) = &self.releases {
            map.serialize_entry("releases", releases)?;
        }
        if let Some(manifests) = &self.manifests {
            map.serialize_entry("manifests", manifests)?;
        }
        if let Some(index) = &self.index {
            map.serialize_entry("index", index)?;
        }
        if !self.publish.is_empty() {
            map.serialize_entry("publish", &self.publish)?;
        }
        map.end()
    }
}

/// serde's `flatten` hides unknown fields from the flattened struct, which would let a typo in
/// a resource pass silently: the cluster fields are taken out by hand, the camelCase names
/// mapped to the config's, and the rest must be exactly a config.
impl<'de> Deserialize<'de> for PythonPackageSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = Map::<String, Value>::deserialize(d)?;
        Self::from_fields(fields).map_err(serde::de::Error::custom)
    }
}

impl PythonPackageSpec {
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, String> {
        let interval = take(&mut fields, "interval")?;
        let suspend = take(&mut fields, "suspend")?.unwrap_or(false);
        let releases = take(&mut fields, "releases")?;
        let manifests = take(&mut fields, "manifests")?;
        let index = take(&mut fields, "index")?;
        let publish = take(&mut fields, "publish")?.unwrap_or_default();
        let mut config = Map::new();
        for (key, value) in fields {
            if let Some((_, resource)) = RENAMED_FIELDS.iter().find(|(file, _)| *file == key) {
                return Err(format!(
                    "{key}: a PythonPackage spells this field {resource} (config.yaml's snake_case \
                     is for files): write {resource}"
                ));
            }
            // Kubernetes drops nulls of fields that are not nullable; do the same.
            if !value.is_null() {
                config.insert(file_field(&key).to_owned(), value);
            }
        }
        strings_only(&config)?;
        let package = parse_config(&config)?;
        Ok(Self {
            package,
            interval,
            suspend,
            releases,
            manifests,
            index,
            publish,
        })
    }

    /// Every rule of the CRD and of the config, for a resource the API server may not have
    /// checked (an older CRD). Fields are named as the resource spells them.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = self.package.validate().err().unwrap_or_default();
        for p in &mut problems {
            p.field = resource_field(&p.field);
        }
        if let Some(interval) = &self.interval
            && parse_interval(Some(interval)).is_none()
        {
            problems.push(Problem::new(
                "interval",
                format!(
                    "{} is not an interval from 1m to 168h (7 days): write hours, minutes and \
                     seconds such as 30m, 1h or 1h30m",
                    shown(interval)
                ),
            ));
        }
        if let Some(r) = &self.releases {
            problems.extend(r.problem());
        }
        if let Some(m) = &self.manifests {
            problems.extend(m.problems());
        }
        if let Some(index) = &self.index
            && (index.len() > crate::spec::rules::MAX_INDEX_NAME_LEN
                || !crate::spec::rules::INDEX_NAME.is_match(index))
        {
            problems.push(Problem::new(
                "index",
                format!(
                    "{} is not an index name: lowercase letters, digits and '-', at most 63",
                    shown(index)
                ),
            ));
        }
        if self.publish.len() > MAX_PUBLISH {
            problems.push(Problem::new(
                "publish",
                format!(
                    "names {} indexes; at most {MAX_PUBLISH}",
                    self.publish.len()
                ),
            ));
        }
        for (i, name) in self.publish.iter().enumerate() {
            if name.len() > crate::spec::rules::MAX_INDEX_NAME_LEN
                || !crate::spec::rules::INDEX_NAME.is_match(name)
            {
                problems.push(Problem::new(
                    format!("publish[{i}]"),
                    format!(
                        "{} is not an index name: lowercase letters, digits and '-', at most 63",
                        shown(name)
                    ),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// At most this many publish indexes per resource.
pub const MAX_PUBLISH: usize = 8;

fn take<T: serde::de::DeserializeOwned>(
    fields: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<T>, String> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| crate::spec::shorten(&format!("{key}: {e}"))),
    }
}

/// In a config file `version: 2024` is a number the parser takes; the CRD types versions and
/// pythons as strings, so a resource holding a number never passed admission: refuse it too.
fn strings_only(config: &Map<String, Value>) -> Result<(), String> {
    let not_string = |field: String, v: &Value| match v {
        Value::Number(n) => Err(format!(
            "{field}: {n} is a number; in a PythonPackage it is a string: write \"{n}\""
        )),
        _ => Ok(()),
    };
    if let Some(Value::Array(versions)) = config.get("versions") {
        for (i, entry) in versions.iter().enumerate() {
            for key in ["version", "python"] {
                if let Some(v) = entry.get(key) {
                    not_string(format!("versions[{i}].{key}"), v)?;
                }
            }
        }
    }
    if let Some(Value::Array(exclude)) = config.get("exclude") {
        for (i, v) in exclude.iter().enumerate() {
            not_string(format!("exclude[{i}]"), v)?;
        }
    }
    Ok(())
}

/// The config fields go through the config file's parser (as YAML text), which names the field
/// of any problem (`versions[0].version: ...`), cuts long values and refuses oversized input.
fn parse_config(config: &Map<String, Value>) -> Result<PackageSpec, String> {
    let text = serde_norway::to_string(config).map_err(|e| e.to_string())?;
    crate::spec::parse_resource(&text).map_err(|p| {
        let message = in_resource_words(&p.message);
        match p.field.as_str() {
            "" => message,
            field => format!("{}: {message}", resource_field(field)),
        }
    })
}

/// The config parser's message, with field names as a resource spells them and the cluster
/// fields among the expected ones.
fn in_resource_words(message: &str) -> String {
    let mut message = crate::spec::shorten(message);
    for (file, resource) in RENAMED_FIELDS {
        message = message.replace(&format!("`{file}`"), &format!("`{resource}`"));
    }
    if message.starts_with("unknown field") {
        let cluster: Vec<String> = CLUSTER_FIELDS.iter().map(|f| format!("`{f}`")).collect();
        message.push_str(&format!(
            ", or one of the cluster fields {}",
            cluster.join(", ")
        ));
    }
    message
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTarget {
    /// GitHub `OWNER/REPO` whose releases hold the tarballs.
    pub repository: String,
}

impl ReleaseTarget {
    fn problem(&self) -> Option<Problem> {
        let r = &self.repository;
        let message = if rules::length(r) > rules::MAX_RELEASE_REPOSITORY_LEN {
            rules::too_long(rules::length(r), rules::MAX_RELEASE_REPOSITORY_LEN)
        } else if !rules::RELEASE_REPOSITORY.is_match(r) {
            format!(
                "{} is not a GitHub repository: write OWNER/REPO, e.g. acme/hermit-tools",
                shown(r)
            )
        } else {
            return None;
        };
        Some(Problem::new("releases.repository", message))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestTarget {
    /// Git URL of the repository the manifests are committed to: `https://`, `ssh://`,
    /// `file:///` or `git@host:path`.
    pub repository: String,
    /// Branch to commit to (a name `git check-ref-format --branch` takes); default the
    /// controller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Directory in the repository, relative and inside it; default its root (where Hermit
    /// reads a git source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

impl ManifestTarget {
    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut check = |field: &str, value: &str, max: usize, ok: bool, fix: &str| {
            let n = rules::length(value);
            let message = if n > max {
                rules::too_long(n, max)
            } else if !ok {
                format!("{} {fix}", shown(value))
            } else {
                return;
            };
            problems.push(Problem::new(format!("manifests.{field}"), message));
        };
        check(
            "repository",
            &self.repository,
            rules::MAX_GIT_URL_LEN,
            rules::GIT_URL.is_match(&self.repository),
            "is not a Git URL this controller takes: write https://HOST/PATH, ssh://[USER@]HOST/PATH, \
             file:///PATH or USER@HOST:PATH",
        );
        if let Some(branch) = &self.branch {
            check(
                "branch",
                branch,
                rules::MAX_REF_LEN,
                !branch.is_empty() && !rules::BAD_BRANCH.is_match(branch),
                "is not a branch name: no leading '-' or '/', no '..', '//', '@{', spaces, \
                 control characters or any of ~^:?*[\\, no component starting with '.' or ending with '.lock'",
            );
        }
        if let Some(dir) = &self.dir {
            check(
                "dir",
                dir,
                rules::MAX_REF_LEN,
                crate::spec::rules::is_relative_inside(dir),
                "leaves the repository: write a relative path inside it, without a leading '/' or '..'",
            );
        }
        problems
    }
}

/// What the controller reports; bounded whatever the number of versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = admission::kubernetes_formats)]
pub struct PythonPackageStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled`, with kstatus semantics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub desired: u32,
    #[serde(default)]
    pub released: u32,
    #[serde(default)]
    pub building: u32,
    #[serde(default)]
    pub failed: u32,
    /// `released/desired`, for `kubectl get pypkg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The newest released version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<String>,
    /// Why (version, platform) pairs failed; at most 20, newest versions first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub failures: Vec<FailureRecord>,
    /// The last manifest commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_commit: Option<String>,
    /// Versions the manifest could list at its last commit; a different count commits again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<u32>,
    /// The `hermit-pex.dev/requested-at` annotation last acted on: a new value retries
    /// failed builds and platforms recorded as impossible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// Where the wheels of published versions went: the operator's wheel index and each
    /// index of `spec.publish`, with the newest file placed there and the last error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 9))]
    pub wheels: Vec<WheelsRecord>,
}

/// One place wheels go, as the status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WheelsRecord {
    /// `index` (the wheel index), or the name of a publish index.
    pub target: String,
    /// Where it is: a directory, a repository (branch, path) or an upload URL.
    pub location: String,
    /// The newest file placed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// Why the last attempt failed, while it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecord {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub reason: String,
    pub message: String,
}

/// Conditions as a list-map keyed by `type`, so server-side apply merges them by type.
fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

/// `30m`, `1h`, `1h30m` as a duration, when it is one the CRD takes: [`rules::INTERVAL`],
/// from 1m to 168h.
pub fn parse_interval(s: Option<&str>) -> Option<std::time::Duration> {
    let s = s?;
    if s.len() > rules::MAX_INTERVAL_LEN || !rules::INTERVAL.is_match(s) {
        return None;
    }
    let (mut total, mut number) = (0u64, 0u64);
    for c in s.chars() {
        match c.to_digit(10) {
            Some(d) => number = number * 10 + u64::from(d),
            None => {
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    _ => 3600,
                };
                total += number * unit;
                number = 0;
            }
        }
    }
    (rules::MIN_INTERVAL_SECS..=rules::MAX_INTERVAL_SECS)
        .contains(&total)
        .then(|| std::time::Duration::from_secs(total))
}

/// The CRD as YAML, as checked in at `crds/pythonpackage.yaml`.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let crd = PythonPackage::crd();
    format!(
        "# Generated by `hermit-pex crd` from src/controller/resource.rs: do not edit.\n{}",
        serde_norway::to_string(&crd).expect("the CRD serialises")
    )
}

/// `PythonPackage` resources for config files (`hermit-pex convert`), as a YAML stream.
pub fn convert(specs: &[crate::spec::LoadedSpec], namespace: Option<&str>) -> String {
    let mut out = String::new();
    for s in specs {
        let spec = PythonPackageSpec {
            package: s.spec.clone(),
            interval: None,
            suspend: false,
            releases: None,
            manifests: None,
            index: None,
            publish: Vec::new(),
        };
        let mut resource = PythonPackage::new(s.spec.package.as_str(), spec);
        resource.metadata.namespace = namespace.map(str::to_owned);
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&resource).expect("resources serialise"));
    }
    out
}

#[cfg(test)]
mod tests;
