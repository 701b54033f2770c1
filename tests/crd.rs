//! Admission is the controller's validation: a corpus of good and bad `PythonPackage`s goes
//! through what the API server does with the checked-in CRD (null pruning, the OpenAPI schema
//! with strict field validation, list types, then every `x-kubernetes-validations` rule in
//! kube-rs's CEL evaluator) and through the controller (`PythonPackageSpec` deserialisation and
//! `validate`). A bad case the controller refuses but admission takes fails the test, and so
//! does a good case either refuses, a rule that does not compile or errors at run time, and a
//! rule that uses a CEL function Kubernetes 1.25+ lacks.

mod common;

use std::collections::HashSet;

use hermit_pex::controller::resource::{PythonPackage, PythonPackageSpec, convert};
use hermit_pex::spec;
use serde_json::{Map, Value, json};

fn crd_schema() -> Value {
    let text =
        std::fs::read_to_string(common::repo_root().join("crds/pythonpackage.yaml")).unwrap();
    let crd: Value = serde_norway::from_str(&text).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// What the API server does with a `null` of a field that is not nullable: drops it.
fn prune_nulls(value: &mut Value, schema: &Value) {
    if let (Some(obj), Some(props)) = (value.as_object_mut(), schema["properties"].as_object()) {
        obj.retain(|k, v| !v.is_null() || props.get(k).is_some_and(|s| s["nullable"] == true));
        for (k, v) in obj.iter_mut() {
            if let Some(s) = props.get(k) {
                prune_nulls(v, s);
            }
        }
    }
    if let Some(items) = value.as_array_mut() {
        for item in items {
            prune_nulls(item, &schema["items"]);
        }
    }
}

/// The CRD's OpenAPI schema as JSON Schema: `nullable` as a null type, unknown fields refused
/// (kubectl's default strict field validation), the object metadata left to the server.
fn as_json_schema(schema: &Value, root: bool) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(name, s)| (name.clone(), as_json_schema(s, false)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" if v.is_object() => {
                out.insert(k.clone(), as_json_schema(v, false));
            }
            "nullable" => {}
            k if k.starts_with("x-kubernetes-") => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if obj.get("nullable") == Some(&json!(true)) {
        out.insert("type".into(), json!([obj["type"], "null"]));
    }
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), json!(false));
    }
    if root {
        let props = out["properties"].as_object_mut().unwrap();
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
        props.insert("metadata".into(), json!({"type": "object"}));
    }
    Value::Object(out)
}

/// `x-kubernetes-list-type: set` and `map`: the API server refuses duplicates.
fn list_types(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(items) = value.as_array() {
        let key = |item: &Value| -> Value {
            match schema["x-kubernetes-list-type"].as_str() {
                Some("map") => json!(
                    schema["x-kubernetes-list-map-keys"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| item[k.as_str().unwrap()].clone())
                        .collect::<Vec<_>>()
                ),
                _ => item.clone(),
            }
        };
        if matches!(
            schema["x-kubernetes-list-type"].as_str(),
            Some("set" | "map")
        ) {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(key(item).to_string()) {
                    out.push(format!("{path}[{i}]: Duplicate value"));
                }
            }
        }
        for (i, item) in items.iter().enumerate() {
            list_types(item, &schema["items"], &format!("{path}[{i}]"), out);
        }
    }
    if let (Some(obj), Some(props)) = (value.as_object(), schema["properties"].as_object()) {
        for (k, v) in obj {
            if let Some(s) = props.get(k) {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                list_types(v, s, &p, out);
            }
        }
    }
}

fn json_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

struct Admission {
    schema: Value,
    openapi: jsonschema::Validator,
    cel: kube_cel::CompiledSchema,
    evaluator: kube_cel::Validator,
}

impl Admission {
    fn new() -> Self {
        let schema = crd_schema();
        let openapi = jsonschema::validator_for(&as_json_schema(&schema, true)).unwrap();
        let cel = kube_cel::compile_schema(&schema);
        Self {
            schema,
            openapi,
            cel,
            evaluator: kube_cel::Validator::new(),
        }
    }

    /// The API server's errors for `resource` (after pruning), as `path: message`; panics
    /// when a rule cannot be evaluated on a value of the right shape.
    fn errors(&self, resource: &Value) -> Vec<String> {
        let mut resource = resource.clone();
        prune_nulls(&mut resource, &self.schema);
        let mut errors: Vec<String> = self
            .openapi
            .iter_errors(&resource)
            .map(|e| format!("{}: {e}", json_path(&e.instance_path().to_string())))
            .collect();
        list_types(&resource, &self.schema, "", &mut errors);
        let shaped = errors.is_empty();
        if let Err(cel) = self.evaluator.validate_compiled(&self.cel, &resource, None) {
            for e in cel.iter() {
                match e.kind {
                    kube_cel::ErrorKind::ValidationFailure => {
                        errors.push(format!("{}: {}", e.field_path, e.message))
                    }
                    // A rule on a value of the wrong type errors; the schema refused it already.
                    _ if !shaped => {}
                    _ => panic!("rule {:?} could not run on {resource}: {e}", e.rule),
                }
            }
        }
        errors
    }
}

/// The controller's verdict: deserialisation, then `validate`, as `field: message`.
fn controller(resource: &Value) -> Result<(), Vec<String>> {
    let pkg: PythonPackage =
        serde_json::from_value(resource.clone()).map_err(|e| vec![e.to_string()])?;
    pkg.spec.validate().map_err(|problems| {
        problems
            .into_iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect()
    })
}

fn resource(spec: Value) -> Value {
    json!({"apiVersion": "hermit-pex.dev/v1alpha1", "kind": "PythonPackage", "metadata": {"name": "x"}, "spec": spec})
}

fn good_spec() -> Value {
    json!({"package": "cowsay", "binaries": ["cowsay"], "versions": [{"version": "6.0", "python": "3.12"}]})
}

fn with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut spec = good_spec();
    edit(&mut spec);
    spec
}

enum Expect {
    Good,
    /// Both refuse, naming this field.
    Bad(&'static str),
    /// Only the controller can refuse it (named field), for the reason given.
    ControllerOnly(&'static str, &'static str),
}
use Expect::*;

/// Whether one of `errors` names `field`: as its path, or in its message (a required or
/// unknown field is named in the message of its parent).
fn names(errors: &[String], field: &str) -> bool {
    errors.iter().any(|e| {
        let e = e.strip_prefix("spec.").unwrap_or(e);
        let (parent, leaf) = field.rsplit_once('.').unwrap_or(("", field));
        let leaf_named = e.starts_with(field)
            || [" {}", "{} ", "\"{}\"", "`{}`", "'{}'"]
                .iter()
                .any(|p| e.contains(&p.replace("{}", leaf)));
        leaf_named && (parent.is_empty() || e.contains(parent))
    })
}

fn cases() -> Vec<(String, Value, Expect)> {
    let long = |n: usize| "x".repeat(n);
    let mut c: Vec<(String, Value, Expect)> = Vec::new();
    let mut add = |name: &str, spec: Value, expect: Expect| c.push((name.to_owned(), spec, expect));

    // Good resources beyond the minimal one.
    add("minimal", good_spec(), Good);
    add(
        "binaries left out",
        json!({"package": "cowsay", "versions": [{"version": "6.0", "python": "3.12"}], "test": "anything --help"}),
        Good,
    );
    add(
        "every field",
        json!({
            "package": "Aider_Chat", "binaries": ["aider", "aider-admin"], "description": "AI pair programming ✓ é",
            "test": "aider --help", "extraPackages": ["setuptools>=71.0.2,<80.9", "rich[jupyter]; python_version < '3.13'", "foo @ https://example.com/foo-1.0.tar.gz"],
            "exclude": ["0.81.0", "0.82.0.dev1"], "prereleases": true, "platforms": ["linux-amd64", "darwin-arm64"],
            "configVersion": 4294967295u64, "partialPlatforms": false,
            "versions": [{"version": "0.80.0rc1", "python": "3.11"}, {"version": "1!2.0.post1", "python": "3.12"}, {"version": "v3.0", "python": "3.14"}],
            "interval": "1h30m", "suspend": true, "releases": {"repository": "acme/.github"},
            "manifests": {"repository": "https://github.com/acme/tools.git", "branch": "release/1.x", "dir": "hermit/packages"}
        }),
        Good,
    );
    for interval in ["1m", "168h", "45m30s", "24h"] {
        add(
            &format!("interval {interval}"),
            with(|s| s["interval"] = json!(interval)),
            Good,
        );
    }
    for url in [
        "ssh://git@github.com/acme/tools.git",
        "git@github.com:acme/tools.git",
        "file:///srv/git/tools.git",
    ] {
        add(
            &format!("manifests {url}"),
            with(|s| s["manifests"] = json!({"repository": url, "dir": ""})),
            Good,
        );
    }
    add(
        "test is the binary",
        with(|s| s["test"] = json!("cowsay")),
        Good,
    );
    add(
        "test with quoted arguments",
        with(|s| s["test"] = json!("cowsay -t 'hello world'")),
        Good,
    );
    add(
        "another package's .pex",
        with(|s| s["binaries"] = json!(["cowsay", "cow-say.pex", "other.pex"])),
        Good,
    );
    add(
        "nulls are left out",
        with(|s| {
            s["test"] = Value::Null;
            s["interval"] = Value::Null;
            s["releases"] = Value::Null;
        }),
        Good,
    );
    add(
        "configVersion 0",
        with(|s| s["configVersion"] = json!(0)),
        Good,
    );

    // The 13 the API server took in the issue.
    add(
        "exclude not a version",
        with(|s| s["exclude"] = json!(["not a version"])),
        Bad("exclude"),
    );
    add(
        "version not a version",
        with(|s| s["versions"][0]["version"] = json!("not a version")),
        Bad("versions"),
    );
    add(
        "duplicate versions",
        with(|s| {
            s["versions"] =
                json!([{"version": "6.0", "python": "3.12"}, {"version": "6.0", "python": "3.11"}])
        }),
        Bad("versions"),
    );
    add(
        "duplicate binaries",
        with(|s| s["binaries"] = json!(["cowsay", "cowsay"])),
        Bad("binaries"),
    );
    add(
        "2,000 binaries",
        with(|s| s["binaries"] = json!((0..2000).map(|i| format!("b{i}")).collect::<Vec<_>>())),
        Bad("binaries"),
    );
    add(
        "extraPackages $(id)",
        with(|s| s["extraPackages"] = json!(["$(id)"])),
        Bad("extraPackages"),
    );
    add(
        "test with a newline",
        with(|s| s["test"] = json!("cowsay --help\nid")),
        Bad("test"),
    );
    add(
        "interval 0s",
        with(|s| s["interval"] = json!("0s")),
        Bad("interval"),
    );
    add(
        "interval 99999999h",
        with(|s| s["interval"] = json!("99999999h")),
        Bad("interval"),
    );
    add(
        "branch --upload-pack",
        with(|s| {
            s["manifests"] =
                json!({"repository": "https://github.com/acme/t.git", "branch": "--upload-pack=id"})
        }),
        Bad("manifests.branch"),
    );
    add(
        "dir ../../x",
        with(|s| {
            s["manifests"] =
                json!({"repository": "https://github.com/acme/t.git", "dir": "../../x"})
        }),
        Bad("manifests.dir"),
    );
    add(
        "repository ext::",
        with(|s| s["manifests"] = json!({"repository": "ext::sh -c id"})),
        Bad("manifests.repository"),
    );
    add(
        "binary <package>.pex",
        with(|s| s["binaries"] = json!(["cowsay", "cowsay.pex"])),
        Bad("binaries"),
    );

    // The shape of the 19 it refused, and more of each field.
    for name in ["x; rm -rf /", "", "-x", "x-", "../x", "a b"] {
        add(
            &format!("package {name:?}"),
            with(|s| s["package"] = json!(name)),
            Bad("package"),
        );
    }
    add(
        "package 201 characters",
        with(|s| s["package"] = json!(long(201))),
        Bad("package"),
    );
    add(
        "missing package",
        json!({"versions": [{"version": "6.0", "python": "3.12"}]}),
        Bad("package"),
    );
    for b in ["../x", "a b", "$(id)", "", ".hidden"] {
        add(
            &format!("binary {b:?}"),
            with(|s| s["binaries"] = json!([b])),
            Bad("binaries"),
        );
    }
    add(
        "binary 129 characters",
        with(|s| s["binaries"] = json!([long(129)])),
        Bad("binaries"),
    );
    add(
        "binaries []",
        with(|s| s["binaries"] = json!([])),
        Bad("binaries"),
    );
    add(
        "binary CowSay.PEX",
        with(|s| s["binaries"] = json!(["CowSay.PEX"])),
        Bad("binaries"),
    );
    add(
        "binary of Cow_Say",
        json!({"package": "Cow_Say", "binaries": ["cow-say.pex"], "versions": [{"version": "1", "python": "3.12"}]}),
        Bad("binaries"),
    );
    for py in [
        json!(3.1),
        json!("3.7"),
        json!("3.15"),
        json!("3"),
        json!("3.x"),
        json!("3.12 "),
    ] {
        add(
            &format!("python {py}"),
            with(|s| s["versions"][0]["python"] = py.clone()),
            Bad("versions"),
        );
    }
    add(
        "missing python",
        with(|s| s["versions"] = json!([{"version": "6.0"}])),
        Bad("versions"),
    );
    for v in [
        json!(6.0),
        json!("1.0+local"),
        json!(" 6.0"),
        json!("6.0 "),
        json!(long(65)),
        json!("1.0a."),
        json!("99999999999999999999"),
    ] {
        add(
            &format!("version {v}"),
            with(|s| s["versions"][0]["version"] = v.clone()),
            Bad("versions"),
        );
    }
    add(
        "versions []",
        with(|s| s["versions"] = json!([])),
        Bad("versions"),
    );
    add(
        "missing versions",
        json!({"package": "cowsay"}),
        Bad("versions"),
    );
    add(
        "101 versions",
        with(|s| {
            s["versions"] = json!(
                (0..101)
                    .map(|i| json!({"version": format!("{i}"), "python": "3.12"}))
                    .collect::<Vec<_>>()
            )
        }),
        Bad("versions"),
    );
    add(
        "exclude number",
        with(|s| s["exclude"] = json!([6.1])),
        Bad("exclude"),
    );
    add(
        "exclude twice",
        with(|s| s["exclude"] = json!(["6.1", "6.1"])),
        Bad("exclude"),
    );
    add(
        "501 excluded",
        with(|s| s["exclude"] = json!((0..501).map(|i| format!("{i}.1")).collect::<Vec<_>>())),
        Bad("exclude"),
    );
    add(
        "platform macos-arm64",
        with(|s| s["platforms"] = json!(["macos-arm64"])),
        Bad("platforms"),
    );
    add(
        "platforms []",
        with(|s| s["platforms"] = json!([])),
        Bad("platforms"),
    );
    add(
        "platform twice",
        with(|s| s["platforms"] = json!(["linux-amd64", "linux-amd64"])),
        Bad("platforms"),
    );
    for i in [
        "an hour", "1d", "30", "1.5h", "-1h", "45s", "169h", "1h1h1h1h",
    ] {
        add(
            &format!("interval {i:?}"),
            with(|s| s["interval"] = json!(i)),
            Bad("interval"),
        );
    }
    add(
        "interval 22 characters",
        with(|s| s["interval"] = json!("1000000h".repeat(3))),
        Bad("interval"),
    );
    for r in ["not a repo", "../..", "acme/..", "acme", "-acme/x"] {
        add(
            &format!("releases {r:?}"),
            with(|s| s["releases"] = json!({"repository": r})),
            Bad("releases.repository"),
        );
    }
    add(
        "releases without repository",
        with(|s| s["releases"] = json!({})),
        Bad("releases.repository"),
    );
    for index in ["team-ml", "a", "pypi2", &"x".repeat(63)] {
        add(
            &format!("index {index:?}"),
            with(|s| s["index"] = json!(index)),
            Good,
        );
    }
    for index in [
        "Team",
        "team_ml",
        "-a",
        "a-",
        "",
        "a.b",
        "https://x/simple/",
        &"x".repeat(64),
    ] {
        add(
            &format!("index {index:?}"),
            with(|s| s["index"] = json!(index)),
            Bad("index"),
        );
    }
    add(
        "source branch",
        with(|s| s["source"] = json!({"git": "https://h/x.git", "branch": "main"})),
        Good,
    );
    add(
        "source branch release/2.x",
        with(|s| s["source"] = json!({"git": "https://h/x.git", "branch": "release/2.x"})),
        Good,
    );
    for b in ["", "-x", "a..b", "a b", "x.lock", "/main", "a~1"] {
        add(
            &format!("source branch {b:?}"),
            with(|s| s["source"] = json!({"git": "https://h/x.git", "branch": b})),
            Bad("source.branch"),
        );
    }
    add(
        "source branch and tagPrefix",
        with(|s| {
            s["source"] = json!({"git": "https://h/x.git", "branch": "main", "tagPrefix": "v"})
        }),
        Bad("source.tagPrefix"),
    );
    for names in [json!(["team-ml"]), json!(["a", "pypi2"]), json!([])] {
        add(
            &format!("publish {names}"),
            with(|s| s["publish"] = names.clone()),
            Good,
        );
    }
    for name in ["Team", "team_ml", "-a", "", "https://x/", &"x".repeat(64)] {
        add(
            &format!("publish [{name:?}]"),
            with(|s| s["publish"] = json!([name])),
            Bad("publish[0]"),
        );
    }
    add(
        "publish not a list",
        with(|s| s["publish"] = json!("team-ml")),
        Bad("publish"),
    );
    add(
        "publish nine indexes",
        with(|s| s["publish"] = json!(["a", "b", "c", "d", "e", "f", "g", "h", "i"])),
        Bad("publish"),
    );
    add(
        "index not a string",
        with(|s| s["index"] = json!({"url": "https://x/simple/"})),
        Bad("index"),
    );
    for url in [
        "http://github.com/acme/t.git",
        "--upload-pack=x",
        "ssh://-oProxyCommand=id/x",
        "file://host/x",
        "/srv/x",
        "https://github.com/acme/t .git",
        "fd::3",
    ] {
        add(
            &format!("manifests {url:?}"),
            with(|s| s["manifests"] = json!({"repository": url})),
            Bad("manifests.repository"),
        );
    }
    add(
        "manifests without repository",
        with(|s| s["manifests"] = json!({"dir": "x"})),
        Bad("manifests.repository"),
    );
    for b in [
        "a..b", "a b", "", ".hidden", "x.lock", "a~1", "a\tb", "/main",
    ] {
        add(
            &format!("branch {b:?}"),
            with(|s| s["manifests"] = json!({"repository": "https://h/x.git", "branch": b})),
            Bad("manifests.branch"),
        );
    }
    for d in ["/etc", "..", "a\\..\\x", "\\etc"] {
        add(
            &format!("dir {d:?}"),
            with(|s| s["manifests"] = json!({"repository": "https://h/x.git", "dir": d})),
            Bad("manifests.dir"),
        );
    }
    add(
        "git source",
        with(
            |s| s["source"] = json!({"git": "https://git.example.com/org/hello.git", "tagPrefix": "release-", "subdirectory": "tools/hello"}),
        ),
        Good,
    );
    for url in [
        "ssh://git@git.example.com/org/hello.git",
        "git@github.com:org/hello.git",
        "file:///srv/git/hello.git",
        "http://git.example.com/hello.git",
        "git://git.example.com/hello.git",
    ] {
        add(
            &format!("git source {url}"),
            with(|s| s["source"] = json!({"git": url})),
            Good,
        );
    }
    for url in [
        "ext::sh -c id",
        "--upload-pack=id",
        "/srv/git/hello.git",
        "https://",
        "https://h/x y.git",
    ] {
        add(
            &format!("git source {url:?}"),
            with(|s| s["source"] = json!({"git": url})),
            Bad("source.git"),
        );
    }
    for d in ["/etc", "..", "a/../../x"] {
        add(
            &format!("source subdirectory {d:?}"),
            with(|s| s["source"] = json!({"git": "https://h/x.git", "subdirectory": d})),
            Bad("source.subdirectory"),
        );
    }
    add(
        "tag prefix with a space",
        with(|s| s["source"] = json!({"git": "https://h/x.git", "tagPrefix": "v "})),
        Bad("source.tagPrefix"),
    );
    add(
        "source without git",
        with(|s| s["source"] = json!({"tagPrefix": "v"})),
        Bad("source.git"),
    );
    add(
        "unknown field in source",
        with(|s| s["source"] = json!({"git": "https://h/x.git", "ref": "main"})),
        Bad("source"),
    );
    add(
        "unknown field",
        with(|s| s["prerelease"] = json!(true)),
        Bad("prerelease"),
    );
    add(
        "unknown field in versions",
        with(|s| s["versions"][0]["pyhton"] = json!("3.12")),
        Bad("versions"),
    );
    add(
        "unknown field in releases",
        with(|s| s["releases"] = json!({"repository": "acme/x", "token": "t"})),
        Bad("releases"),
    );
    add(
        "snake extra_packages",
        with(|s| s["extra_packages"] = json!(["rich"])),
        Bad("extra_packages"),
    );
    add(
        "snake config_version",
        with(|s| s["config_version"] = json!(2)),
        Bad("config_version"),
    );
    add(
        "description with a newline",
        with(|s| s["description"] = json!("a\nb")),
        Bad("description"),
    );
    add(
        "description with U+0085",
        with(|s| s["description"] = json!("a\u{85}b")),
        Bad("description"),
    );
    add(
        "description 513 characters",
        with(|s| s["description"] = json!(long(513))),
        Bad("description"),
    );
    for t in [
        "../../../bin/sh -c id",
        " cowsay",
        "cowsayx",
        "sh -c 'cowsay'",
    ] {
        add(
            &format!("test {t:?}"),
            with(|s| s["test"] = json!(t)),
            Bad("test"),
        );
    }
    for t in ["", "   ", "cowsay\t-t"] {
        add(
            &format!("test {t:?}"),
            with(|s| s["test"] = json!(t)),
            Bad("test"),
        );
    }
    add(
        "test 513 characters",
        with(|s| s["test"] = json!(format!("cowsay {}", long(506)))),
        Bad("test"),
    );
    add(
        "51 extraPackages",
        with(|s| s["extraPackages"] = json!((0..51).map(|i| format!("p{i}")).collect::<Vec<_>>())),
        Bad("extraPackages"),
    );
    add(
        "extraPackage with a newline",
        with(|s| s["extraPackages"] = json!(["rich\n--index-url=http://evil"])),
        Bad("extraPackages"),
    );
    add(
        "extraPackage leading space",
        with(|s| s["extraPackages"] = json!([" rich"])),
        Bad("extraPackages"),
    );
    add(
        "extraPackage 513 characters",
        with(|s| s["extraPackages"] = json!([long(513)])),
        Bad("extraPackages"),
    );
    for cv in [json!(-1), json!(4294967296u64), json!("2"), json!(1.5)] {
        add(
            &format!("configVersion {cv}"),
            with(|s| s["configVersion"] = cv.clone()),
            Bad("configVersion"),
        );
    }
    // Two spellings of one PEP 440 version (the issue's 6.0 and 6.0.0).
    for (a, b) in [
        ("6.0", "6.0.0"),
        ("1.0", "1.0.0"),
        ("6", "6.0"),
        ("v2.1", "2.1.0"),
        ("1.0RC1", "1.0rc1"),
        ("1.0.0-rc.1", "1.0c1"),
        ("1!2.0", "1!2"),
        ("1.0.post2", "1.0-rev_2"),
        ("2.0.dev3", "2-DEV3"),
        ("3.0alpha1", "3a1"),
        ("3.0preview2", "3.0rc2"),
    ] {
        add(
            &format!("versions {a} and {b}"),
            with(
                |s| s["versions"] = json!([{"version": a, "python": "3.12"}, {"version": "9.9", "python": "3.12"}, {"version": b, "python": "3.11"}]),
            ),
            Bad("versions"),
        );
    }
    add(
        "exclude 2 and 2.0",
        with(|s| s["exclude"] = json!(["2", "2.0"])),
        Bad("exclude"),
    );
    add(
        "exclude 6.1b2 and v6.1.0-beta.2",
        with(|s| s["exclude"] = json!(["6.1b2", "7", "v6.1.0-beta.2"])),
        Bad("exclude"),
    );
    for (a, b) in [
        ("1.0", "1.0.1"),
        ("1.0", "10"),
        ("1.0-1", "1.1"),
        ("1.0a1", "1.0b1"),
        ("1.0.post1", "1.0.dev1"),
        ("1!1", "1"),
        ("1.10", "1.1"),
    ] {
        add(
            &format!("versions {a} and {b} differ"),
            with(|s| {
                s["versions"] =
                    json!([{"version": a, "python": "3.12"}, {"version": b, "python": "3.11"}])
            }),
            Good,
        );
    }
    add(
        "suspend yes",
        with(|s| s["suspend"] = json!("yes")),
        Bad("suspend"),
    );
    add(
        "prereleases string",
        with(|s| s["prereleases"] = json!("true")),
        Bad("prereleases"),
    );
    add(
        "partialPlatforms no",
        with(|s| s["partialPlatforms"] = json!("no")),
        Bad("partialPlatforms"),
    );

    // What CEL cannot check.
    for (a, b) in [
        ("rich>=13", "rich>=13"),
        ("Rich>=13", "rich>=13"),
        ("typing_extensions", "Typing.Extensions"),
        (
            "rich[jupyter]; python_version < '3.13'",
            "RICH[jupyter]; python_version < '3.13'",
        ),
    ] {
        add(
            &format!("extraPackages {a:?} and {b:?}"),
            with(|s| s["extraPackages"] = json!([a, "setuptools", b])),
            Bad("extraPackages"),
        );
    }
    add(
        "extraPackages: two constraints on one project",
        with(|s| {
            s["extraPackages"] = json!([
                "rich>=13",
                "rich<14",
                "rich; os_name == 'a b'",
                "rich; os_name == 'ab'"
            ])
        }),
        Good,
    );
    add(
        "extraPackages rich >= 13 and rich>=13",
        with(|s| s["extraPackages"] = json!(["rich >= 13", "rich>=13"])),
        ControllerOnly("extraPackages", "PEP 508 normalised spacing"),
    );
    add(
        "PEP 508 grammar",
        with(|s| s["extraPackages"] = json!(["setuptools<<80"])),
        ControllerOnly("extraPackages", "the PEP 508 grammar"),
    );
    add(
        "PEP 508 spaces",
        with(|s| s["extraPackages"] = json!(["foo bar"])),
        ControllerOnly("extraPackages", "the PEP 508 grammar"),
    );
    add(
        "1.01 and 1.1",
        with(|s| {
            s["versions"] =
                json!([{"version": "1.01", "python": "3.12"}, {"version": "1.1", "python": "3.11"}])
        }),
        ControllerOnly("versions", "PEP 440 equality of leading zeros"),
    );
    add(
        "1.0a and 1.0a0",
        with(|s| {
            s["versions"] = json!([{"version": "1.0a", "python": "3.12"}, {"version": "1.0a0", "python": "3.11"}])
        }),
        ControllerOnly("versions", "PEP 440 equality of an implicit number"),
    );
    add(
        "exclude 2.post1 and 2-1",
        with(|s| s["exclude"] = json!(["2.post1", "2-1"])),
        ControllerOnly("exclude", "PEP 440 equality of the -N post spelling"),
    );
    c
}

/// The docs' (README and book) and the chart's resources, and every config the docs and
/// `python/` show, converted.
fn documented_resources() -> Vec<(String, Value)> {
    let root = common::repo_root();
    let mut out = Vec::new();
    let mut configs = Vec::new();
    for block in common::docs::blocks_in("yaml") {
        if block.text.contains("kind: PythonPackage") {
            out.push((
                format!("docs resource {}", block.at()),
                serde_norway::from_str(&block.text).unwrap(),
            ));
        } else if block
            .marker()
            .is_some_and(|m| m.starts_with("python/") && m.ends_with("/config.yaml"))
        {
            let spec = spec::parse(&block.text).unwrap();
            spec.validate().unwrap();
            configs.push(spec::LoadedSpec {
                file: block.at().into(),
                spec,
            });
        }
    }
    assert!(
        !configs.is_empty() && !out.is_empty(),
        "the docs show a config and a resource"
    );
    let notes =
        std::fs::read_to_string(root.join("charts/hermit-pex/templates/NOTES.txt")).unwrap();
    let start = notes.find("apiVersion: hermit-pex.dev/v1alpha1").unwrap();
    let sample: String = notes[start..start + notes[start..].find("EOF").unwrap()]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("     ").unwrap_or(l)))
        .collect();
    out.push((
        "chart NOTES resource".to_owned(),
        serde_norway::from_str(&sample).unwrap(),
    ));
    for file in spec::discover(&[root.join("python")]).unwrap() {
        configs.push(spec::load(&file).unwrap());
    }
    let yaml = convert(&configs, Some("tools"));
    for (doc, c) in yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .zip(&configs)
    {
        out.push((
            format!("convert {}", c.file.display()),
            serde_norway::from_str(doc).unwrap(),
        ));
    }
    out
}

#[test]
fn admission_refuses_what_the_controller_refuses_and_takes_what_it_takes() {
    let admission = Admission::new();
    let mut failures = Vec::new();
    let mut corpus: Vec<(String, Value, Expect)> = cases()
        .into_iter()
        .map(|(name, spec, e)| (name, resource(spec), e))
        .collect();
    corpus.extend(
        documented_resources()
            .into_iter()
            .map(|(n, r)| (n, r, Good)),
    );
    let (mut good, mut bad) = (0, 0);
    for (name, res, expect) in &corpus {
        let admitted = admission.errors(res);
        // The controller reads what the API server stored (nulls pruned) when it admitted it.
        let mut stored = res.clone();
        prune_nulls(&mut stored, &admission.schema);
        let verdict = controller(if admitted.is_empty() { &stored } else { res });
        match expect {
            Good => {
                good += 1;
                if !admitted.is_empty() {
                    failures.push(format!("{name}: good, but admission refuses: {admitted:?}"));
                }
                if let Err(e) = verdict {
                    failures.push(format!("{name}: good, but the controller refuses: {e:?}"));
                }
            }
            Bad(field) => {
                bad += 1;
                if admitted.is_empty() {
                    failures.push(format!(
                        "{name}: admission takes what the controller refuses ({verdict:?})"
                    ));
                } else if !names(&admitted, field) {
                    failures.push(format!(
                        "{name}: admission does not name {field}: {admitted:?}"
                    ));
                }
                match verdict {
                    Ok(()) => {
                        failures.push(format!("{name}: the controller takes it: {admitted:?}"))
                    }
                    Err(e) if !names(&e, field) => failures.push(format!(
                        "{name}: the controller does not name {field}: {e:?}"
                    )),
                    Err(_) => {}
                }
            }
            ControllerOnly(field, why) => {
                if !admitted.is_empty() {
                    failures.push(format!(
                        "{name}: CEL checks {why} after all: {admitted:?}; make it a Bad case"
                    ));
                }
                match verdict {
                    Err(e) if names(&e, field) => {}
                    other => failures.push(format!(
                        "{name}: the controller should refuse {field}: {other:?}"
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    assert!(good >= 20 && bad >= 100, "{good} good, {bad} bad");
}

/// The functions a rule may call: standard CEL and the strings and regex libraries Kubernetes
/// has had since CEL validation came (1.25), so the CRD installs on every supported release.
const PORTABLE: [&str; 16] = [
    "size",
    "has",
    "matches",
    "startsWith",
    "endsWith",
    "contains",
    "all",
    "exists",
    "exists_one",
    "map",
    "duration",
    "lowerAscii",
    "replace",
    "substring",
    "int",
    // The Kubernetes regex library, there since CEL validation came too.
    "find",
];

fn rules(schema: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    for r in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push((
            path.to_owned(),
            r["rule"].as_str().unwrap().to_owned(),
            r["message"].as_str().unwrap_or("").to_owned(),
        ));
    }
    for (k, v) in schema["properties"].as_object().into_iter().flatten() {
        rules(v, &format!("{path}.{k}"), out);
    }
    if schema["items"].is_object() {
        rules(&schema["items"], &format!("{path}[]"), out);
    }
}

#[test]
fn every_rule_compiles_uses_portable_cel_and_names_its_field() {
    let schema = crd_schema();
    let compiled = kube_cel::compile_schema(&schema);
    fn errors(c: &kube_cel::CompiledSchema, out: &mut Vec<String>) {
        out.extend(c.compilation_errors().iter().map(|e| e.to_string()));
        c.properties.values().for_each(|p| errors(p, out));
        if let Some(items) = &c.items {
            errors(items, out);
        }
    }
    let mut compile_errors = Vec::new();
    errors(&compiled, &mut compile_errors);
    assert!(compile_errors.is_empty(), "{compile_errors:?}");

    let mut all = Vec::new();
    rules(&schema, "", &mut all);
    assert!(all.len() >= 15, "{} rules", all.len());
    let call = regex::Regex::new(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(").unwrap();
    let literal = regex::Regex::new(r"'(\\.|[^'\\])*'").unwrap();
    for (path, rule, message) in &all {
        let code = literal.replace_all(rule, "''");
        for name in call.captures_iter(&code).map(|c| c[1].to_owned()) {
            assert!(
                PORTABLE.contains(&name.as_str()),
                "{path}: {rule} calls {name}"
            );
        }
        let field = path
            .trim_start_matches(".spec.")
            .trim_start_matches(".spec");
        let head = field.split(['.', '[']).next().unwrap_or("");
        assert!(
            message.contains(head) || path == ".spec",
            "{path}: the message {message:?} does not name {head}"
        );
        assert!(!message.is_empty(), "{path}: {rule} has no message");
    }
}

#[test]
fn convert_output_is_admitted() {
    // What a GitOps repository holds: `hermit-pex convert` of every example, as one stream.
    let admission = Admission::new();
    for (name, res) in documented_resources() {
        assert_eq!(admission.errors(&res), Vec::<String>::new(), "{name}");
        let spec: PythonPackageSpec = serde_json::from_value(res["spec"].clone()).unwrap();
        spec.validate().unwrap();
    }
}

/// A small deterministic generator, so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn flip(&mut self) -> bool {
        self.below(2) == 0
    }
}

/// A PEP 440 version as its parts: epoch, release, pre (kind 0..3 = a, b, rc), post, dev.
#[derive(Clone)]
struct Parts {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(usize, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
}

impl Parts {
    fn random(r: &mut Rng) -> Self {
        let small = |r: &mut Rng| [0, 0, 1, 2, 10][r.below(5) as usize];
        Parts {
            epoch: if r.below(6) == 0 { 1 } else { 0 },
            release: (0..1 + r.below(4)).map(|_| small(r)).collect(),
            pre: (r.below(3) == 0).then(|| (r.below(3) as usize, small(r))),
            post: (r.below(4) == 0).then(|| small(r)),
            dev: (r.below(4) == 0).then(|| small(r)),
        }
    }

    /// One spelling: `covered` picks only the variations the CRD's key folds (case, `v`,
    /// trailing zeros, separators, alternative words); otherwise also the ones left to the
    /// controller (leading zeros, `-N` posts, `0!`, implicit numbers).
    fn spell(&self, r: &mut Rng, covered: bool) -> String {
        let sep = |r: &mut Rng| r.pick(&["", ".", "-", "_"]).to_owned();
        let num = |r: &mut Rng, n: u64| {
            if !covered && r.below(4) == 0 {
                format!("0{n}")
            } else {
                n.to_string()
            }
        };
        let mut s = String::new();
        if r.below(4) == 0 {
            s.push('v');
        }
        if self.epoch > 0 || (!covered && r.below(4) == 0) {
            s.push_str(&format!("{}!", self.epoch));
        }
        let mut release = self.release.clone();
        while release.len() > 1 && release.last() == Some(&0) && r.flip() {
            release.pop();
        }
        release.resize(release.len() + r.below(3) as usize, 0);
        let release: Vec<String> = release.iter().map(|&n| num(r, n)).collect();
        s.push_str(&release.join("."));
        // An implicit number: `a` is `a0`, `.post` is `.post0`, `dev` is `dev0`.
        let number = |r: &mut Rng, n: u64, s: &mut String| {
            let implicit = n == 0 && !covered && r.flip();
            if !implicit {
                s.push_str(&sep(r));
                s.push_str(&num(r, n));
            }
            implicit
        };
        // `1a-1` is 1a1: a `-N` post cannot follow a pre-release without its number.
        let mut bare_pre = false;
        if let Some((kind, n)) = self.pre {
            s.push_str(&sep(r));
            s.push_str(match kind {
                0 => r.pick(&["a", "alpha", "A", "Alpha"]),
                1 => r.pick(&["b", "beta", "B"]),
                _ => r.pick(&["rc", "c", "pre", "preview", "RC"]),
            });
            bare_pre = number(r, n, &mut s);
        }
        if let Some(n) = self.post {
            if !covered && !bare_pre && r.below(3) == 0 {
                s.push_str(&format!("-{}", num(r, n)));
            } else {
                s.push_str(&sep(r));
                s.push_str(r.pick(&["post", "rev", "r", "POST"]));
                number(r, n, &mut s);
            }
        }
        if let Some(n) = self.dev {
            s.push_str(&sep(r));
            s.push_str(r.pick(&["dev", "DEV"]));
            number(r, n, &mut s);
        }
        if r.below(3) == 0 { s.to_uppercase() } else { s }
    }
}

/// The CRD's `versions` uniqueness rule against PEP 440 (`pep440_rs`): it never refuses two
/// different versions, and it refuses every pair of spellings it claims to fold.
#[test]
fn the_crd_compares_versions_as_pep_440_does() {
    // The `versions` field's schema alone: its rules are all that can refuse a pair.
    let schema = crd_schema()["properties"]["spec"]["properties"]["versions"].clone();
    let compiled = kube_cel::compile_schema(&schema);
    let evaluator = kube_cel::Validator::new();
    let refused = |a: &str, b: &str| {
        let pair = json!([{"version": a, "python": "3.12"}, {"version": b, "python": "3.12"}]);
        let errors: Vec<String> = match evaluator.validate_compiled(&compiled, &pair, None) {
            Ok(()) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        };
        assert!(
            errors
                .iter()
                .all(|e| e.contains("must be unique as PEP 440")),
            "{a} {b}: {errors:?}"
        );
        !errors.is_empty()
    };
    let parse = |s: &str| s.parse::<pep440_rs::Version>().unwrap();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut folded, mut left) = (0, 0);
    for _ in 0..300 {
        let parts = Parts::random(&mut r);
        // Two spellings of one version: refused exactly when both are ones the key folds.
        let (a, b) = (parts.spell(&mut r, true), parts.spell(&mut r, true));
        assert_eq!(parse(&a), parse(&b), "{a} {b}");
        assert!(
            refused(&a, &b),
            "{a} and {b} are one version; admission takes them"
        );
        folded += 1;
        let c = parts.spell(&mut r, false);
        if !refused(&a, &c) {
            left += 1;
        }
        // A near version: never refused.
        let mut other = parts.clone();
        match r.below(5) {
            0 => other.release.push(1 + r.below(3)),
            1 => other.pre = other.pre.map_or(Some((0, 0)), |(k, n)| Some((k, n + 1))),
            2 => other.post = other.post.map_or(Some(0), |_| None),
            3 => other.dev = other.dev.map_or(Some(1), |n| Some(n + 1)),
            _ => other.epoch += 1,
        }
        let d = other.spell(&mut r, false);
        assert_ne!(parse(&a), parse(&d), "{a} {d}");
        assert!(
            !refused(&a, &d),
            "{a} and {d} differ; admission refuses them"
        );
    }
    // Each pair the key does not fold is one the controller refuses instead.
    assert!(folded == 300 && left > 20, "{folded} folded, {left} left");
}
