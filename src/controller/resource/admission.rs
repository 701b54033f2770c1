//! The CRD's admission rules: what `spec::rules` checks in Rust, written into the schema as
//! `maxItems` / `maxLength`, list types and CEL `x-kubernetes-validations`, each with a
//! message that names the field and the fix. The CEL uses only what Kubernetes has offered
//! since 1.25 and kube-rs's evaluator implements: `size`, `has`, `matches`, `startsWith`,
//! `all` / `exists` / `exists_one` / `map`, `duration`, the strings library's `lowerAscii`,
//! `replace` and `substring`, and the regex library's `find`. What CEL cannot check (the PEP
//! 508 grammar, the rarer spellings of one PEP 440 version, see [`pep440_key`]) stays in
//! [`super::PythonPackageSpec::validate`].

use schemars::Schema;
use serde_json::{Map, Value, json};

use super::RENAMED_FIELDS;
use crate::spec::rules;

/// The transform of `PythonPackageSpec`'s schema (the flattened config plus cluster fields).
pub fn spec_rules(schema: &mut Schema) {
    let spec = schema
        .as_object_mut()
        .expect("the spec schema is an object");
    rename_config_fields(spec);
    not_nullable(spec);
    kubernetes_formats_in(spec);
    let props = spec
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .expect("the spec has properties");
    config_rules(props);
    cluster_rules(props);
    spec.insert(
        "x-kubernetes-validations".into(),
        json!(cross_field_rules()),
    );
}

/// The transform of the status schema: integer formats the API server knows.
pub fn kubernetes_formats(schema: &mut Schema) {
    if let Some(o) = schema.as_object_mut() {
        kubernetes_formats_in(o);
    }
}

fn rename_config_fields(spec: &mut Map<String, Value>) {
    if let Some(props) = spec.get_mut("properties").and_then(Value::as_object_mut) {
        for (file, resource) in RENAMED_FIELDS {
            if let Some(v) = props.remove(file) {
                props.insert(resource.into(), v);
            }
        }
    }
    if let Some(required) = spec.get_mut("required").and_then(Value::as_array_mut) {
        for name in required.iter_mut() {
            if let Some((_, resource)) = RENAMED_FIELDS.iter().find(|(f, _)| name == f) {
                *name = json!(resource);
            }
        }
    }
}

/// The API server drops a `null` of a field that is not nullable before validation, so an
/// optional field written as `null` reads as left out, in CEL rules as in the controller.
fn not_nullable(schema: &mut Map<String, Value>) {
    schema.remove("nullable");
    if let Some(Value::Array(types)) = schema.get("type") {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        let single = (types.len() == 1).then(|| types[0].clone());
        schema.insert("type".into(), single.unwrap_or(Value::Array(types)));
    }
    for_each_subschema(schema, not_nullable);
}

/// schemars writes `uint32` and the like, which the API server does not know (it warns, and
/// ignores them); it knows `int32` and `int64`. Unsigned 32-bit values keep their range as
/// `maximum`.
fn kubernetes_formats_in(schema: &mut Map<String, Value>) {
    let max = match schema.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(u64::from(u8::MAX)),
        Some("uint16") => Some(u64::from(u16::MAX)),
        Some("uint32" | "uint") => Some(u64::from(u32::MAX)),
        Some("uint64" | "int8" | "int16") => None,
        _ => {
            for_each_subschema(schema, kubernetes_formats_in);
            return;
        }
    };
    schema.insert("format".into(), json!("int64"));
    if let Some(max) = max {
        schema.insert("maximum".into(), json!(max));
    }
}

fn for_each_subschema(schema: &mut Map<String, Value>, f: fn(&mut Map<String, Value>)) {
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props
            .values_mut()
            .filter_map(Value::as_object_mut)
            .for_each(f);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(Value::Object(sub)) = schema.get_mut(key) {
            f(sub);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = schema.get_mut(key) {
            subs.iter_mut().filter_map(Value::as_object_mut).for_each(f);
        }
    }
}

/// A CEL string literal holding `s`.
pub fn cel_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn rule(rule: String, message: &str) -> Value {
    json!({"rule": rule, "message": message})
}

fn field<'a>(props: &'a mut Map<String, Value>, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut schema = props
        .get_mut(path[0])
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the spec schema has {}", path[0]));
    for key in &path[1..] {
        schema = schema
            .get_mut(*key)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("the spec schema has {}", path.join(".")));
    }
    schema
}

fn set(schema: &mut Map<String, Value>, entries: Value) {
    if let Value::Object(entries) = entries {
        schema.extend(entries);
    }
}

/// Adds to a field's description what the API server checks about it.
fn describe(schema: &mut Map<String, Value>, more: &str) {
    let text = schema
        .get("description")
        .and_then(Value::as_str)
        .map_or_else(|| more.to_owned(), |d| format!("{d} {more}"));
    schema.insert("description".into(), json!(text));
}

fn no_control(field: &str) -> Value {
    rule(
        format!("!self.matches({})", cel_string(rules::CONTROL.as_str())),
        &format!(
            "{field} must be one line of text: remove the control characters (newline, tab, ...)"
        ),
    )
}

fn is_version(field: &str) -> Value {
    rule(
        format!(
            "self.matches({})",
            cel_string(rules::PUBLIC_VERSION.as_str())
        ),
        &format!(
            "{field} must be a PEP 440 version such as \"1.2.3\", \"2.0rc1\" or \"2024.1.post2\" \
             (quoted, no spaces, no local +version)"
        ),
    )
}

/// A CEL expression for a comparison key of the version `v` (a CEL expression of a string
/// that passed [`is_version`]): two spellings of one PEP 440 version get one key when they
/// differ in case, a leading `v`, trailing `.0` release segments, the separators `-`, `_` and
/// `.` around the pre/post/dev parts, or the alternative spellings `alpha`, `beta`, `c`,
/// `pre`, `preview`, `rev`, `r`; versions that are not equal never share a key (the test
/// checks both against `pep440_rs`). What stays for the controller: leading zeros (`1.01`),
/// implicit numbers (`1.0a` is `1.0a0`), `1.0-1` for `1.0.post1`, the epoch `0!`.
///
/// CEL has no regex replace and Kubernetes 1.25 no variables: the release (with any epoch) is
/// `find`'s first match, its trailing zero segments are what a second `find` leaves out (the
/// longest prefix that ends in a non-zero segment), and the rest is lower-cased and rewritten
/// with fixed replacements, in an order where none undoes another (`preview` before `pre` and
/// `rev`, `rc` after `pre`). A `~` keeps the release from running into a `-N` post number.
pub fn pep440_key(v: &str) -> String {
    let lower = format!("{v}.lowerAscii()");
    let release = format!("{lower}.find('([0-9]+!)?[0-9]+([.][0-9]+)*')");
    let trimmed = format!("{release}.find('^([0-9]+!)?[0-9]+(([.]0+)*[.]0*[1-9][0-9]*)*')");
    let mut rest =
        format!("{lower}.substring(size({release}) + ({lower}.startsWith('v') ? 1 : 0))");
    for (from, to) in [
        ("_", "."),
        ("-", "."),
        ("alpha", "a"),
        ("beta", "b"),
        ("preview", "c"),
        ("pre", "c"),
        ("rc", "c"),
        ("rev", "r"),
        ("post", "r"),
        (".a", "a"),
        (".b", "b"),
        (".c", "c"),
        (".r", "r"),
        (".d", "d"),
        ("a.", "a"),
        ("b.", "b"),
        ("c.", "c"),
        ("r.", "r"),
        ("v.", "v"),
    ] {
        rest = format!("{rest}.replace({}, {})", cel_string(from), cel_string(to));
    }
    format!("{trimmed} + '~' + {rest}")
}

/// A CEL expression for a comparison key of the requirement `r`: its project name as PEP 503
/// normalises it (lower case, `_` and `.` as `-`; runs of them stay for the controller), then
/// the rest as written. Spacing the controller also folds (`rich >= 13`) stays for it: spaces
/// inside a marker's quoted value are significant, and CEL cannot tell them apart.
fn requirement_key(r: &str) -> String {
    let name = format!("{r}.find('^[A-Za-z0-9][A-Za-z0-9._-]*')");
    format!(
        "{name}.lowerAscii().replace('_', '-').replace('.', '-') + '~' + {r}.substring(size({name}))"
    )
}

/// A list rule: no two entries' versions (`item`, an expression of the entry `e`) share a
/// [`pep440_key`]. Each key is computed once (`map`), bound to `l` by iterating a one-entry
/// list, since Kubernetes before 1.30 has no `cel.bind`; the comparison is then quadratic in
/// plain string equality only.
fn unique_versions(item: &str, message: &str) -> Value {
    rule(
        format!(
            "[self.map(e, {})].all(l, l.all(k, l.exists_one(o, o == k)))",
            pep440_key(item)
        ),
        message,
    )
}

fn config_rules(props: &mut Map<String, Value>) {
    set(
        field(props, &["binaries"]),
        json!({"maxItems": rules::MAX_BINARIES, "x-kubernetes-list-type": "set"}),
    );
    set(
        field(props, &["versions"]),
        json!({
            "maxItems": rules::MAX_VERSIONS,
            "x-kubernetes-validations": [unique_versions(
                "e.version",
                "versions[].version must be unique as PEP 440 versions: 1.0, 1.0.0 and V1.0 are \
                 one version, and so are 1.0rc1 and 1.0-RC.1",
            )],
        }),
    );
    set(
        field(props, &["versions", "items", "properties", "version"]),
        json!({"maxLength": rules::MAX_VERSION_LEN, "x-kubernetes-validations": [is_version("versions[].version")]}),
    );
    set(
        field(props, &["exclude"]),
        json!({"maxItems": rules::MAX_EXCLUDE, "x-kubernetes-list-type": "set"}),
    );
    set(
        field(props, &["exclude"]),
        json!({"x-kubernetes-validations": [unique_versions(
            "e",
            "exclude[] must be unique as PEP 440 versions: 2, 2.0 and v2.0.0 are one version",
        )]}),
    );
    describe(
        field(props, &["exclude"]),
        "Unique as PEP 440 versions (2 and 2.0 are one).",
    );
    set(
        field(props, &["exclude", "items"]),
        json!({"maxLength": rules::MAX_VERSION_LEN, "x-kubernetes-validations": [is_version("exclude[]")]}),
    );
    set(
        field(props, &["platforms"]),
        json!({"minItems": 1, "maxItems": 4, "x-kubernetes-list-type": "set"}),
    );
    set(
        field(props, &["packages"]),
        json!({"maxItems": 2, "x-kubernetes-list-type": "set"}),
    );
    set(
        field(props, &["extraPackages"]),
        json!({
            "maxItems": rules::MAX_EXTRA_PACKAGES,
            "x-kubernetes-validations": [rule(
                format!(
                    "[self.map(e, {})].all(l, l.all(k, l.exists_one(o, o == k)))",
                    requirement_key("e")
                ),
                "extraPackages[] must be unique: two entries for one project with the same \
                 specifier are one requirement (names compared without case, '-', '_' and '.')",
            )],
        }),
    );
    set(
        field(props, &["extraPackages", "items"]),
        json!({
            "maxLength": rules::MAX_REQUIREMENT_LEN,
            "x-kubernetes-validations": [
                no_control("extraPackages[]"),
                rule(
                    format!("self.matches({})", cel_string(rules::REQUIREMENT_START.as_str())),
                    "extraPackages[] must be PEP 508 requirements, starting with a project name, e.g. \"setuptools<80.9\"",
                ),
            ],
        }),
    );
    set(
        field(props, &["description"]),
        json!({"maxLength": rules::MAX_TEXT_LEN, "x-kubernetes-validations": [no_control("description")]}),
    );
    set(
        field(props, &["test"]),
        json!({
            "maxLength": rules::MAX_TEXT_LEN,
            "x-kubernetes-validations": [
                no_control("test"),
                rule("self.matches('[^ ]')".into(), "test must be a command line, e.g. \"aider --help\""),
            ],
        }),
    );
}

fn cluster_rules(props: &mut Map<String, Value>) {
    set(
        field(props, &["interval"]),
        json!({
            "maxLength": rules::MAX_INTERVAL_LEN,
            "x-kubernetes-validations": [rule(
                format!(
                    "self.matches({}) && duration(self) >= duration('1m') && duration(self) <= duration('168h')",
                    cel_string(rules::INTERVAL.as_str())
                ),
                "interval must be hours, minutes and seconds such as 30m, 1h or 1h30m, from 1m to 168h (7 days)",
            )],
        }),
    );
    set(
        field(props, &["index"]),
        json!({
            "maxLength": rules::MAX_INDEX_NAME_LEN,
            "x-kubernetes-validations": [rule(
                format!("self.matches({})", cel_string(rules::INDEX_NAME.as_str())),
                "index must be the name of one of the operator's indexes: lowercase letters, digits and '-'",
            )],
        }),
    );
    set(
        field(props, &["publish", "items"]),
        json!({
            "maxLength": rules::MAX_INDEX_NAME_LEN,
            "x-kubernetes-validations": [rule(
                format!("self.matches({})", cel_string(rules::INDEX_NAME.as_str())),
                "publish must name the operator's publish indexes: lowercase letters, digits and '-'",
            )],
        }),
    );
    set(
        field(props, &["releases", "properties", "repository"]),
        json!({
            "maxLength": rules::MAX_RELEASE_REPOSITORY_LEN,
            "x-kubernetes-validations": [rule(
                format!("self.matches({})", cel_string(rules::RELEASE_REPOSITORY.as_str())),
                &format!("releases.repository {}", rules::RELEASE_REPOSITORY_SAYS),
            )],
        }),
    );
    set(
        field(props, &["manifests", "properties", "repository"]),
        json!({
            "maxLength": rules::MAX_GIT_URL_LEN,
            "x-kubernetes-validations": [rule(
                format!("self.matches({})", cel_string(rules::GIT_URL.as_str())),
                &format!("manifests.repository {}", rules::GIT_URL_SAYS),
            )],
        }),
    );
    set(
        field(props, &["manifests", "properties", "branch"]),
        json!({
            "maxLength": rules::MAX_REF_LEN,
            "x-kubernetes-validations": [rule(
                format!("self != '' && !self.matches({})", cel_string(rules::BAD_BRANCH.as_str())),
                &format!("manifests.branch {}", rules::BRANCH_SAYS),
            )],
        }),
    );
    set(
        field(props, &["manifests", "properties", "dir"]),
        json!({
            "maxLength": rules::MAX_REF_LEN,
            "x-kubernetes-validations": [rule(
                format!("!self.matches({})", cel_string(rules::BAD_DIR.as_str())),
                &format!("manifests.dir {}", rules::DIR_SAYS),
            )],
        }),
    );
    for list in ["buildPackages", "runtimePackages"] {
        set(
            field(props, &["build", "properties", list]),
            json!({"maxItems": rules::MAX_DISTRO_PACKAGES, "x-kubernetes-list-type": "set"}),
        );
        set(
            field(props, &["build", "properties", list, "items"]),
            json!({
                "maxLength": rules::MAX_DISTRO_PACKAGE_LEN,
                "x-kubernetes-validations": [rule(
                    format!("self.matches({})", cel_string(rules::DISTRO_PACKAGE.as_str())),
                    &format!(
                        "build.{list}[] must be distribution package names: lowercase letters and \
                         digits, then also '+', '.' and '-'; no options, spaces or shell"
                    ),
                )],
            }),
        );
    }
    set(
        field(props, &["build", "properties", "flavour"]),
        json!({
            "x-kubernetes-validations": [rule(
                format!("self.matches({})", cel_string(rules::INDEX_NAME.as_str())),
                "build.flavour must be the name of one of the operator's flavours: lowercase letters, digits and '-'",
            )],
        }),
    );
    set(
        field(props, &["source", "properties", "branch"]),
        json!({
            "x-kubernetes-validations": [rule(
                format!("self != '' && !self.matches({})", cel_string(rules::BAD_BRANCH.as_str())),
                "source.branch must be a branch name git takes: no leading '-' or '/', no '..', '//', \
                 '@{', spaces, control characters or any of ~^:?*[\\, no component starting with '.' \
                 or ending with '.lock'",
            )],
        }),
    );
    set(
        field(props, &["source"]),
        json!({
            "x-kubernetes-validations": [rule(
                "!has(self.branch) || !has(self.tagPrefix)".into(),
                "source.tagPrefix: a source follows a branch or tags, not both: remove tagPrefix or branch",
            )],
        }),
    );
    set(
        field(props, &["source", "properties", "subdirectory"]),
        json!({
            "x-kubernetes-validations": [rule(
                format!("!self.matches({})", cel_string(rules::BAD_DIR.as_str())),
                "source.subdirectory must be a relative path inside the repository: no leading '/', no '..'",
            )],
        }),
    );
}

/// Rules between fields, on `spec` itself.
fn cross_field_rules() -> Vec<Value> {
    vec![
        rule(
            "!has(self.test) || !has(self.binaries) || \
             self.binaries.exists(b, self.test == b || self.test.startsWith(b + ' '))"
                .into(),
            "test must start with one of binaries, alone or followed by a space, e.g. \"aider --help\"",
        ),
        // A binary collides when, without case, it is `<normalised package>.pex`: its stem is
        // the package's words joined by '-', and the package matches those words joined by
        // any run of '-', '_' and '.'. (`package` is a CEL keyword: Kubernetes names the
        // field `__package__` in rules.)
        rule(
            "!has(self.binaries) || self.binaries.all(b, \
             !b.lowerAscii().matches('^[a-z0-9]+(-[a-z0-9]+)*[.]pex$') || \
             !self.__package__.lowerAscii().matches('^' + b.lowerAscii().substring(0, size(b) - 4).replace('-', '[-_.]+') + '$'))"
                .into(),
            "binaries must not hold <package>.pex, the name of the PEX in the tarball: remove it",
        ),
    ]
}
