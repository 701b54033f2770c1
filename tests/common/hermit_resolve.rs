//! A manifest resolved for one (version, platform) the way Hermit does it, for tests: the text is
//! re-parsed with hcl-rs and the layers merged as in cashapp/hermit's `manifest/config.go`
//! (`Layer.layers`, `Manifest.layers`) and `manifest/resolver.go` (`newPackage`):
//!
//! - layers: the top level, its matching `darwin`/`linux` blocks (optional `arch`), its matching
//!   `platform` blocks, then the selected `version` block and its own matching blocks;
//! - a `platform` block matches when every label, an unanchored regex, matches the os, the arch
//!   or `os-arch` (a label that is not a valid regex is skipped, as Hermit does);
//! - scalars (`source`, `test`, `sha256`): the last non-empty value wins; lists (`binaries`,
//!   `runtime-dependencies`) append;
//! - `${…}` is expanded in `source`, and its digest is `sha256sums[expanded source]` unless a
//!   layer sets `sha256`.
//!
//! It depends on hcl-rs, regex and std only, so both the library's unit tests and the
//! integration tests can include it.

use std::collections::BTreeMap;

/// What Hermit makes of one version on one platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The expanded URL; `None` when Hermit reports the package unsupported on this platform.
    pub source: Option<String>,
    /// The digest Hermit checks the download against; `None` means it checks nothing.
    pub sha256: Option<String>,
    pub binaries: Vec<String>,
    pub runtime_dependencies: Vec<String>,
    /// As written (`$$` not yet unescaped).
    pub test: Option<String>,
}

/// Resolves `version` of the manifest `text` on `os`/`arch`; `Err` when the text does not parse
/// or lists no such version.
pub fn resolve(text: &str, version: &str, os: &str, arch: &str) -> Result<Resolved, String> {
    let body = hcl::parse(text).map_err(|e| format!("hcl-rs cannot parse the manifest: {e}"))?;
    let block = body
        .blocks()
        .filter(|b| b.identifier.as_str() == "version")
        .find(|b| b.labels.iter().any(|l| l.as_str() == version))
        .ok_or_else(|| format!("no version block lists {version:?}"))?;
    let mut layers = layers_of_block(&body, os, arch)?;
    layers.extend(layers_of_block(&block.body, os, arch)?);

    let mut out = Resolved::default();
    let mut source = String::new();
    let mut sha256 = None;
    for layer in &layers {
        for attr in layer.attributes() {
            match attr.key.as_str() {
                "source" => replace_if_set(&mut source, text_of(&attr.expr)?),
                "test" => out.test = Some(text_of(&attr.expr)?),
                "sha256" => sha256 = Some(text_of(&attr.expr)?).filter(|s| !s.is_empty()),
                "binaries" => out.binaries.extend(list_of(&attr.expr)?),
                "runtime-dependencies" => out.runtime_dependencies.extend(list_of(&attr.expr)?),
                _ => {}
            }
        }
    }
    if source.is_empty() {
        return Ok(out);
    }
    let url = expand(&source, version, os, arch)?;
    out.sha256 = sha256.or_else(|| sha256sums(&body).ok()?.get(&url).cloned());
    out.source = Some(url);
    Ok(out)
}

/// Every version the manifest lists, in text order.
pub fn versions(text: &str) -> Result<Vec<String>, String> {
    let body = hcl::parse(text).map_err(|e| e.to_string())?;
    Ok(body
        .blocks()
        .filter(|b| b.identifier.as_str() == "version")
        .flat_map(|b| b.labels.iter().map(|l| l.as_str().to_owned()))
        .collect())
}

/// The manifest's `sha256sums` map.
pub fn sha256sums(body: &hcl::Body) -> Result<BTreeMap<String, String>, String> {
    let Some(attr) = body.attributes().find(|a| a.key.as_str() == "sha256sums") else {
        return Ok(BTreeMap::new());
    };
    let hcl::Expression::Object(map) = &attr.expr else {
        return Err("sha256sums is not a map".into());
    };
    map.iter()
        .map(|(k, v)| {
            let key = match k {
                hcl::ObjectKey::Identifier(i) => i.to_string(),
                hcl::ObjectKey::Expression(e) => text_of(e)?,
                other => return Err(format!("sha256sums key {other:?}")),
            };
            Ok((key, text_of(v)?))
        })
        .collect()
}

/// `Layer.layers`: the layer itself, its os blocks for this os (and `arch`, when set), then its
/// `platform` blocks whose labels all match. Nested blocks inside those are not layers.
fn layers_of_block<'a>(
    body: &'a hcl::Body,
    os: &str,
    arch: &str,
) -> Result<Vec<&'a hcl::Body>, String> {
    let mut out = vec![body];
    for block in body.blocks().filter(|b| b.identifier.as_str() == os) {
        let wanted = block
            .body
            .attributes()
            .find(|a| a.key.as_str() == "arch")
            .map(|a| text_of(&a.expr))
            .transpose()?;
        if wanted.is_none_or(|w| w.is_empty() || w == arch) {
            out.push(&block.body);
        }
    }
    let os_arch = format!("{os}-{arch}");
    for block in body
        .blocks()
        .filter(|b| b.identifier.as_str() == "platform")
    {
        let all = block
            .labels
            .iter()
            .all(|l| match regex::Regex::new(l.as_str()) {
                Ok(re) => re.is_match(os) || re.is_match(arch) || re.is_match(&os_arch),
                Err(_) => true,
            });
        if all {
            out.push(&block.body);
        }
    }
    Ok(out)
}

fn replace_if_set(slot: &mut String, value: String) {
    if !value.is_empty() {
        *slot = value;
    }
}

/// A string as Hermit sees it: hcl-rs makes `"…${version}…"` a template, whose raw text is it.
fn text_of(expr: &hcl::Expression) -> Result<String, String> {
    match expr {
        hcl::Expression::String(s) => Ok(s.clone()),
        hcl::Expression::TemplateExpr(t) => Ok(t.to_string()),
        other => Err(format!("expected a string, found {other:?}")),
    }
}

fn list_of(expr: &hcl::Expression) -> Result<Vec<String>, String> {
    match expr {
        hcl::Expression::Array(items) => items.iter().map(text_of).collect(),
        other => Err(format!("expected a list, found {other:?}")),
    }
}

/// Hermit's `envars.Expand` for the variables a source may use here: `${x}` and `$x`, `$$` kept
/// until the end and then unescaped; an unknown variable is an error, as in `newPackage`.
pub fn expand(s: &str, version: &str, os: &str, arch: &str) -> Result<String, String> {
    let xarch = match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    };
    let value = |name: &str| match name {
        "version" => Ok(version),
        "os" => Ok(os),
        "arch" => Ok(arch),
        "xarch" => Ok(xarch),
        other => Err(format!("unknown variable ${other} in {s:?}")),
    };
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push_str("$$");
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            out.push_str(value(&inner[..end])?);
            rest = &inner[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(value(&after[..end])?);
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    Ok(out.replace("$$", "$"))
}
