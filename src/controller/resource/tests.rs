use super::*;
use kube::CustomResourceExt;
use serde_json::json;

#[test]
fn the_checked_in_crd_is_up_to_date() {
    let file = include_str!("../../../crds/pythonpackage.yaml");
    assert!(
        crd_yaml() == file,
        "crds/pythonpackage.yaml is stale: run `cargo run -- crd > crds/pythonpackage.yaml`"
    );
}

fn crd() -> Value {
    serde_json::to_value(PythonPackage::crd()).unwrap()
}

fn spec_schema() -> Value {
    crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

/// Every schema below `schema`, with its path.
fn walk<'a>(schema: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), schema));
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            walk(v, format!("{path}.{k}"), out);
        }
    }
    if schema["items"].is_object() {
        walk(&schema["items"], format!("{path}[]"), out);
    }
}

/// The formats the API server knows (k8s.io/apiextensions-apiserver's `formats.go`, the set
/// every supported release has): anything else draws `Warning: unrecognized format` on apply.
#[test]
fn the_crd_has_only_formats_the_api_server_knows() {
    const STRING_FORMATS: [&str; 25] = [
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
        "quantity",
    ];
    let crd = crd();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut all = Vec::new();
    walk(root, String::new(), &mut all);
    let mut formats = 0;
    for (path, schema) in all {
        let Some(format) = schema["format"].as_str() else {
            continue;
        };
        formats += 1;
        let known = match schema["type"].as_str() {
            Some("integer") => ["int32", "int64"].contains(&format),
            Some("number") => ["float", "double"].contains(&format),
            Some("string") | None => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
            _ => false,
        };
        assert!(
            known,
            "{path}: format {format:?} is not one Kubernetes knows"
        );
    }
    assert!(formats >= 6, "the walk reached the formats ({formats})");
    let v = &spec_schema()["properties"]["configVersion"];
    assert_eq!(
        (&v["format"], &v["maximum"]),
        (&json!("int64"), &json!(4294967295.0)),
        "u32's range is kept"
    );
}

/// The API server's cost estimate of a CEL rule multiplies by the largest size of each list
/// and string it touches: unbounded ones make the CRD too expensive to install.
#[test]
fn every_list_and_string_of_the_spec_is_bounded() {
    let schema = spec_schema();
    let mut all = Vec::new();
    walk(&schema, "spec".into(), &mut all);
    for (path, s) in all {
        match s["type"].as_str() {
            Some("array") => assert!(s["maxItems"].is_u64(), "{path} has no maxItems"),
            Some("string") if s["enum"].is_null() => {
                assert!(s["maxLength"].is_u64(), "{path} has no maxLength")
            }
            _ => {}
        }
        assert!(
            s.get("nullable").is_none(),
            "{path}: null is pruned, not kept"
        );
    }
    assert_eq!(schema["properties"]["binaries"]["maxItems"], 64);
}

#[test]
fn the_spec_is_camel_case_and_the_config_snake_case() {
    let props = spec_schema()["properties"].as_object().unwrap().clone();
    for (file, resource) in RENAMED_FIELDS {
        assert!(props.contains_key(resource), "{resource}");
        assert!(!props.contains_key(file), "{file}");
    }
    for name in props.keys() {
        assert!(!name.contains('_'), "{name} is not camelCase");
    }

    let spec: PythonPackageSpec = serde_norway::from_str(
        "package: aider-chat\nbinaries: [aider]\nextraPackages: [\"setuptools<80.9\"]\nconfigVersion: 2\npartialPlatforms: false\nversions: [{version: \"0.83.1\", python: \"3.12\"}]\ninterval: 30m\n",
    )
    .unwrap();
    assert_eq!(spec.package.extra_packages, ["setuptools<80.9"]);
    assert_eq!(spec.package.config_version, Some(2));
    assert!(!spec.package.partial_platforms());
    let back = serde_json::to_value(&spec).unwrap();
    assert_eq!(back["extraPackages"][0], "setuptools<80.9");
    assert_eq!(back["configVersion"], 2);
    assert_eq!(back["partialPlatforms"], false);
    assert_eq!(back["interval"], "30m");
    assert!(back.get("extra_packages").is_none(), "{back}");

    for (snake, camel) in RENAMED_FIELDS {
        let err = serde_json::from_value::<PythonPackageSpec>(json!({
            "package": "x", "versions": [{"version": "1.0", "python": "3.12"}], snake: 1
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("write {camel}")), "{snake}: {err}");
    }
}

fn good_spec() -> Value {
    json!({"package": "aider-chat", "binaries": ["aider"], "versions": [{"version": "0.83.1", "python": "3.12"}]})
}

fn resource(spec: Value) -> Value {
    json!({"apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage", "metadata": {"name": "x"}, "spec": spec})
}

#[test]
fn converted_example_configs_round_trip() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let files = crate::spec::discover(&[root]).unwrap();
    let mut specs: Vec<_> = files
        .iter()
        .map(|f| crate::spec::load(f).unwrap())
        .collect();
    assert!(specs.len() >= 3);
    // Every config field set once, so the round trip covers the renamed ones.
    let mut all = crate::spec::parse(
        "package: tool\nbinaries: [tool]\nversions: [{version: \"1.0\", python: \"3.12\"}]\ndescription: d\ntest: tool -h\nextra_packages: [\"a<2\"]\nexclude: [\"1.1\"]\nprereleases: true\nplatforms: [linux-amd64]\nconfig_version: 3\npartial_platforms: false\n",
    )
    .unwrap();
    all.validate().unwrap();
    specs.push(crate::spec::LoadedSpec {
        file: "all.yaml".into(),
        spec: all.clone(),
    });
    let yaml = convert(&specs, Some("tools"));
    let docs: Vec<&str> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    assert_eq!(docs.len(), specs.len());
    for (doc, spec) in docs.iter().zip(&specs) {
        let back: PythonPackage = serde_norway::from_str(doc).unwrap();
        assert_eq!(back.spec.package, spec.spec, "convert is lossless:\n{doc}");
        back.spec.validate().unwrap();
        assert_eq!(back.metadata.namespace.as_deref(), Some("tools"));
        assert_eq!(
            back.metadata.name.as_deref(),
            Some(spec.spec.package.as_str())
        );
    }
    let last = docs.last().unwrap();
    for camel in [
        "extraPackages:",
        "configVersion: 3",
        "partialPlatforms: false",
    ] {
        assert!(last.contains(camel), "{camel}:\n{last}");
    }
    all.binaries.clear();
    let no_binaries = PythonPackageSpec {
        package: all,
        interval: None,
        suspend: false,
        releases: None,
        manifests: None,
        index: None,
        publish: Vec::new(),
    };
    let value = serde_json::to_value(&no_binaries).unwrap();
    assert!(value.get("binaries").is_none(), "left out, not []: {value}");
}

#[test]
fn the_controller_refuses_what_the_schema_cannot_see() {
    // Unknown fields inside the flattened config are refused by the same rules as the file.
    let mut spec = good_spec();
    spec["pyhton"] = json!("3.12");
    let err = serde_json::from_value::<PythonPackage>(resource(spec))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pyhton"), "{err}");
    assert!(
        err.contains("`extraPackages`"),
        "lists resource spellings: {err}"
    );
    assert!(err.contains("`interval`"), "and the cluster fields: {err}");
    let mut spec = good_spec();
    spec["versions"][0]["version"] = json!("not-a-version");
    assert!(serde_json::from_value::<PythonPackage>(resource(spec)).is_err());
    // Numbers never pass the CRD (versions are strings there), nor the controller.
    let mut spec = good_spec();
    spec["versions"][0]["version"] = json!(6.0);
    let err = serde_json::from_value::<PythonPackageSpec>(spec)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("versions[0].version: 6.0 is a number"),
        "{err}"
    );
    assert!(err.contains("\"6.0\""), "{err}");
    // Nulls read as left out, as the API server prunes them.
    let mut spec = good_spec();
    spec["test"] = Value::Null;
    spec["interval"] = Value::Null;
    let s: PythonPackageSpec = serde_json::from_value(spec).unwrap();
    assert_eq!((s.package.test, s.interval), (None, None));
}

fn validated(edit: impl Fn(&mut Value)) -> Result<(), Vec<Problem>> {
    let mut spec = good_spec();
    edit(&mut spec);
    serde_json::from_value::<PythonPackageSpec>(spec)
        .unwrap()
        .validate()
}

#[test]
fn validate_names_fields_as_the_resource_spells_them() {
    validated(|_| {}).unwrap();
    let fields = |edit: &dyn Fn(&mut Value)| -> Vec<String> {
        validated(edit)
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect()
    };
    assert_eq!(
        fields(&|s| s["extraPackages"] = json!(["$(id)"])),
        ["extraPackages[0]"]
    );
    assert_eq!(fields(&|s| s["interval"] = json!("0s")), ["interval"]);
    assert_eq!(
        fields(&|s| s["interval"] = json!("99999999h")),
        ["interval"]
    );
    assert_eq!(
        fields(&|s| s["releases"] = json!({"repository": "acme/.."})),
        ["releases.repository"]
    );
    assert_eq!(
        fields(
            &|s| s["manifests"] = json!({"repository": "ext::sh -c id", "branch": "--upload-pack=id", "dir": "../../x"})
        ),
        ["manifests.repository", "manifests.branch", "manifests.dir"]
    );
    validated(|s| {
        s["manifests"] = json!({"repository": "git@github.com:acme/tools.git", "branch": "release/1.x", "dir": "hermit"});
        s["releases"] = json!({"repository": "acme/tools"});
        s["interval"] = json!("1h30m");
    })
    .unwrap();
}

#[test]
fn intervals() {
    use std::time::Duration;
    assert_eq!(
        parse_interval(Some("1h30m")),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(parse_interval(Some("1m")), Some(Duration::from_secs(60)));
    assert_eq!(
        parse_interval(Some("168h")),
        Some(Duration::from_secs(604_800))
    );
    assert_eq!(parse_interval(Some("90m")), Some(Duration::from_secs(5400)));
    for bad in [
        "45s",
        "0s",
        "169h",
        "167h60m1s",
        "1d",
        "10",
        "",
        "1.5h",
        "99999999h",
        "9999999999999999h",
        "1h1h1h1h",
        "-1h",
    ] {
        assert_eq!(parse_interval(Some(bad)), None, "{bad}");
    }
    assert_eq!(parse_interval(None), None);
}
