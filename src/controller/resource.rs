//! `PythonPackage` (`hermit-pex.dev/v1alpha1`, short name `pypkg`): a package config in a
//! cluster. Its `spec` is the config file's model one to one (so `hermit-pex convert` is
//! lossless) plus the cluster-only fields; the CRD schema comes from these types, so the API
//! server refuses a bad name, an unquoted `python: 3.10` (a number) or an empty `binaries`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::PackageSpec;

#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, JsonSchema)]
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
pub struct PythonPackageSpec {
    /// The fields of `python/<package>/config.yaml`.
    #[serde(flatten)]
    pub package: PackageSpec,
    /// How often to look for new PyPI versions, e.g. `30m`, `1h` (default), `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
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
}

/// serde's `flatten` hides unknown fields from the flattened struct, which would let a typo in
/// a resource pass silently: the cluster fields are taken out by hand and the rest must be
/// exactly a config.
impl<'de> Deserialize<'de> for PythonPackageSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        fn take<T: serde::de::DeserializeOwned, E: Error>(
            fields: &mut serde_json::Map<String, serde_json::Value>,
            key: &str,
        ) -> Result<Option<T>, E> {
            match fields.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => serde_json::from_value(v)
                    .map(Some)
                    .map_err(|e| E::custom(format!("{key}: {e}"))),
            }
        }
        let interval = take(&mut fields, "interval")?;
        let suspend = take(&mut fields, "suspend")?.unwrap_or(false);
        let releases = take(&mut fields, "releases")?;
        let manifests = take(&mut fields, "manifests")?;
        let package = PackageSpec::deserialize(serde_json::Value::Object(fields))
            .map_err(D::Error::custom)?;
        Ok(Self {
            package,
            interval,
            suspend,
            releases,
            manifests,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTarget {
    /// GitHub `OWNER/REPO` whose releases hold the tarballs.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"))]
    pub repository: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestTarget {
    /// Git URL of the repository the manifests are committed to.
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Directory in the repository; default its root (where Hermit reads a git source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// What the controller reports; bounded whatever the number of versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
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

/// `30m`, `1h`, `1h30m` as a duration.
pub fn parse_interval(s: Option<&str>) -> Option<std::time::Duration> {
    let s = s?;
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' => number.push(c),
            's' | 'm' | 'h' => {
                let n: u64 = number.parse().ok()?;
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    _ => 3600,
                };
                total = total.checked_add(n.checked_mul(unit)?)?;
                number.clear();
            }
            _ => return None,
        }
    }
    (number.is_empty() && total > 0).then(|| std::time::Duration::from_secs(total))
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
