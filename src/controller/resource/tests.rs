use super::*;
use kube::CustomResourceExt;
use serde_json::{Value, json};

#[test]
fn the_checked_in_crd_is_up_to_date() {
    let file = include_str!("../../../crds/pythonpackage.yaml");
    assert!(
        crd_yaml() == file,
        "crds/pythonpackage.yaml is stale: run `cargo run -- crd > crds/pythonpackage.yaml`"
    );
}

fn schema() -> Value {
    let crd = serde_json::to_value(PythonPackage::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// The checks the API server makes with a structural schema and strict field validation
/// (what `kubectl apply` does by default): types, required, patterns, enums, sizes, no
/// unknown fields. Returns every violation with its path.
fn violations(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != true {
            out.push(format!("{path}: null"));
        }
        return;
    }
    let ty = schema["type"].as_str().unwrap_or("");
    let ok = match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !ok {
        out.push(format!("{path}: expected {ty}, got {value}"));
        return;
    }
    if let (Some(s), Some(p)) = (value.as_str(), schema["pattern"].as_str())
        && !regex::Regex::new(p).unwrap().is_match(s)
    {
        out.push(format!("{path}: {s:?} does not match {p}"));
    }
    if let (Some(s), Some(n)) = (value.as_str(), schema["maxLength"].as_u64())
        && s.len() as u64 > n
    {
        out.push(format!("{path}: longer than {n}"));
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {options:?}"));
    }
    if let Some(items) = value.as_array() {
        if schema["minItems"]
            .as_u64()
            .is_some_and(|n| (items.len() as u64) < n)
        {
            out.push(format!("{path}: fewer than {} items", schema["minItems"]));
        }
        if schema["maxItems"]
            .as_u64()
            .is_some_and(|n| (items.len() as u64) > n)
        {
            out.push(format!("{path}: more than {} items", schema["maxItems"]));
        }
        for (i, item) in items.iter().enumerate() {
            violations(item, &schema["items"], &format!("{path}[{i}]"), out);
        }
    }
    if let Some(fields) = value.as_object() {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            if !fields.contains_key(required.as_str().unwrap()) {
                out.push(format!("{path}.{}: required", required.as_str().unwrap()));
            }
        }
        for (k, v) in fields {
            match properties.and_then(|p| p.get(k)) {
                Some(s) => violations(v, s, &format!("{path}.{k}"), out),
                None if path.is_empty()
                    && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") => {}
                None => out.push(format!("{path}.{k}: unknown field")),
            }
        }
    }
}

fn check(resource: &Value) -> Vec<String> {
    let mut out = Vec::new();
    violations(resource, &schema(), "", &mut out);
    out
}

fn resource(spec: Value) -> Value {
    json!({"apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage", "metadata": {"name": "x"}, "spec": spec})
}

fn good_spec() -> Value {
    json!({"package": "aider-chat", "binaries": ["aider"], "versions": [{"version": "0.83.1", "python": "3.12"}]})
}

#[test]
fn converted_example_configs_are_valid_resources() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let files = crate::spec::discover(&[root]).unwrap();
    let specs: Vec<_> = files
        .iter()
        .map(|f| crate::spec::load(f).unwrap())
        .collect();
    assert!(specs.len() >= 3);
    let yaml = convert(&specs, Some("tools"));
    for (doc, spec) in yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .zip(&specs)
    {
        let value: Value = serde_norway::from_str(doc).unwrap();
        assert_eq!(check(&value), Vec::<String>::new(), "{doc}");
        let back: PythonPackage = serde_norway::from_str(doc).unwrap();
        assert_eq!(back.spec.package, spec.spec, "convert is lossless");
        assert_eq!(back.metadata.namespace.as_deref(), Some("tools"));
        assert_eq!(
            back.metadata.name.as_deref(),
            Some(spec.spec.package.as_str())
        );
    }
}

#[test]
fn the_schema_refuses_bad_resources() {
    assert_eq!(check(&resource(good_spec())), Vec::<String>::new());
    let bad = |edit: &dyn Fn(&mut Value), field: &str| {
        let mut spec = good_spec();
        edit(&mut spec);
        let found = check(&resource(spec));
        assert!(
            found
                .iter()
                .any(|v| v.starts_with(&format!(".spec.{field}"))),
            "{field}: {found:?}"
        );
    };
    bad(&|s| s["package"] = json!("x; rm -rf /"), "package");
    bad(&|s| s["binaries"] = json!([]), "binaries");
    bad(&|s| s["binaries"] = json!(["../x"]), "binaries[0]");
    bad(
        &|s| s["versions"][0]["python"] = json!(3.1),
        "versions[0].python",
    );
    bad(
        &|s| s["versions"][0]["python"] = json!("3.7"),
        "versions[0].python",
    );
    bad(&|s| s["platforms"] = json!(["macos-arm64"]), "platforms[0]");
    bad(&|s| s["interval"] = json!("an hour"), "interval");
    bad(&|s| s["prerelease"] = json!(true), "prerelease");
    bad(
        &|s| s["releases"] = json!({"repository": "not a repo"}),
        "releases.repository",
    );
}

#[test]
fn the_controller_refuses_what_the_schema_cannot_see() {
    // Unknown fields inside the flattened config are refused by the same rules as the file.
    let mut spec = good_spec();
    spec["pyhton"] = json!("3.12");
    let err = serde_json::from_value::<PythonPackage>(resource(spec)).unwrap_err();
    assert!(err.to_string().contains("pyhton"), "{err}");
    let mut spec = good_spec();
    spec["versions"][0]["version"] = json!("not-a-version");
    assert!(serde_json::from_value::<PythonPackage>(resource(spec)).is_err());
}

#[test]
fn intervals() {
    use std::time::Duration;
    assert_eq!(
        parse_interval(Some("1h30m")),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(parse_interval(Some("45s")), Some(Duration::from_secs(45)));
    assert_eq!(parse_interval(Some("1d")), None);
    assert_eq!(parse_interval(Some("10")), None);
    assert_eq!(parse_interval(None), None);
    assert_eq!(parse_interval(Some("99999999999999999999h")), None);
    assert_eq!(parse_interval(Some("9999999999999999h")), None, "overflow");
}
