//! The README and the book under `docs/` say what the code does: every example they show is
//! read by the code it is an example of. Configs load with hermit-pex's own loader, resources
//! deserialise and validate as the controller validates them, Helm values pass the chart's
//! schema, `hermit-pex` command lines parse with the real CLI, and every page is in the book's
//! table of contents with every relative link (and anchor) resolving. Each check counts what it
//! checked and fails when it checked nothing.

#[path = "common/docs.rs"]
mod docs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use hermit_pex::cli::Cli;
use hermit_pex::controller::resource::PythonPackage;
use serde_json::Value;

use docs::{Block, blocks, blocks_in, files, root};

/// The README's first lines: the two commands a newcomer runs (`.ci/run` runs the second).
const README_COMMANDS: &str = "\
cargo run --release -- sync python/cowsay --latest 2   # the main job: build, release into dist/, manifest into hermit/
scripts/test                                           # the tests: installs pypiserver, pex and helm into .tools/, then cargo test
";

/// What the README may weigh: what a newcomer needs, the rest is in the book.
const README_MAX_BYTES: usize = 10 * 1024;

const VALUES_MARKER: &str = "hermit-pex-values.yaml";
const ARGOCD_MARKER: &str = "kubectl -n argocd patch configmap argocd-cm";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(block: &Block) -> Value {
    serde_norway::from_str(&block.text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}\n{}", block.at(), block.text))
}

// ---------------------------------------------------------------------------------------------
// the README

#[test]
fn the_readme_starts_with_the_two_commands_and_stays_short() {
    let readme = read(&root().join("README.md"));
    let first = docs::blocks_of(&root().join("README.md"))
        .into_iter()
        .next()
        .expect("README: a code block");
    assert_eq!(first.lang, "sh", "README: the first block is the commands");
    assert_eq!(first.text, README_COMMANDS, "README: the first code block");
    assert!(
        readme.lines().take(5).any(|l| l.starts_with("```sh")),
        "README: the commands come first"
    );
    assert!(
        readme.len() <= README_MAX_BYTES,
        "README.md is {} bytes: keep it to what a newcomer needs (at most {README_MAX_BYTES}) \
         and move the rest into the book (docs/src/)",
        readme.len()
    );
    let into_book = readme.matches("](docs/src/").count();
    assert!(into_book >= 5, "README: links into the book: {into_book}");
}

// ---------------------------------------------------------------------------------------------
// YAML examples: each is checked by what reads it

#[derive(Default, Debug)]
struct Counts {
    configs: usize,
    resources: usize,
    values: usize,
    flavours: usize,
    other_kubernetes: usize,
    argocd: usize,
}

/// The chart's default values with `over` on top, as Helm coalesces them: maps merge, `null`
/// removes a key, anything else replaces.
fn coalesce(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else {
                    coalesce(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn chart_values() -> Value {
    serde_norway::from_str(&read(&root().join("charts/hermit-pex/values.yaml"))).unwrap()
}

fn values_validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&read(&root().join("charts/hermit-pex/values.schema.json"))).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Problems of a values file given on top of the chart's defaults, by the chart's schema.
fn values_problems(validator: &jsonschema::Validator, block: &Value) -> Vec<String> {
    let mut values = chart_values();
    coalesce(&mut values, block);
    validator
        .iter_errors(&values)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// A config block: written where its marker says and loaded as `sync` loads it.
fn check_config(
    block: &Block,
    rel: &str,
    scratch: &Path,
) -> Result<hermit_pex::spec::LoadedSpec, String> {
    let path = scratch
        .join(format!("{}-{}", block.line, block.file.replace('/', "_")))
        .join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &block.text).unwrap();
    let loaded = hermit_pex::spec::load(&path).map_err(|e| format!("{e}"))?;
    let problems = loaded.spec.direct_references();
    if !problems.is_empty() {
        return Err(format!("{problems:?}"));
    }
    Ok(loaded)
}

fn check_resource(block: &Block) -> Result<(), String> {
    let r: PythonPackage = serde_norway::from_str(&block.text).map_err(|e| e.to_string())?;
    if r.metadata.name.is_none() {
        return Err("metadata.name: missing".into());
    }
    r.spec.validate().map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[test]
fn every_yaml_example_is_read_by_what_it_is_an_example_of() {
    let scratch = tempfile::tempdir().unwrap();
    let validator = values_validator();
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let mut configs = Vec::new();
    let mut flavour_tables = Vec::new();
    for block in blocks_in("yaml") {
        let marker = block.marker().unwrap_or_default().to_owned();
        let value = yaml(&block);
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(rel) = Some(marker.as_str())
            .filter(|m| m.starts_with("python/") && m.ends_with("/config.yaml"))
        {
            counts.configs += 1;
            match check_config(&block, rel, scratch.path()) {
                Ok(loaded) => configs.push((block.at(), loaded)),
                Err(e) => failures.push(format!("{}: config {rel}: {e}", block.at())),
            }
        } else if kind == "PythonPackage" {
            counts.resources += 1;
            if let Err(e) = check_resource(&block) {
                failures.push(format!("{}: PythonPackage: {e}", block.at()));
            }
        } else if marker == VALUES_MARKER {
            counts.values += 1;
            for p in values_problems(&validator, &value) {
                failures.push(format!("{}: Helm values: {p}", block.at()));
            }
        } else if marker.starts_with("flavours.yaml") {
            counts.flavours += 1;
            match hermit_pex::flavour::Flavours::parse(&block.text) {
                Ok(t) => flavour_tables.push(t),
                Err(e) => failures.push(format!("{}: flavours: {e}", block.at())),
            }
            // The same table is the chart's `flavours` value.
            for p in values_problems(&validator, &value) {
                failures.push(format!("{}: flavours as Helm values: {p}", block.at()));
            }
        } else if marker.starts_with(ARGOCD_MARKER) {
            counts.argocd += 1;
            let data = value.get("data").and_then(Value::as_object);
            let keys: Vec<&String> = data.map(|d| d.keys().collect()).unwrap_or_default();
            if !keys
                .iter()
                .any(|k| k.starts_with("resource.customizations.health."))
            {
                failures.push(format!("{}: no health check in {keys:?}", block.at()));
            }
        } else if value.get("apiVersion").is_some_and(Value::is_string) && !kind.is_empty() {
            counts.other_kubernetes += 1;
        } else {
            failures.push(format!(
                "{}: a YAML block nothing checks: start it with `# python/<name>/config.yaml`, \
                 `# {VALUES_MARKER}` or `# flavours.yaml`, or make it a Kubernetes object",
                block.at()
            ));
        }
    }
    // A config's flavour is one the book's flavour table defines.
    for (at, loaded) in &configs {
        if let Some(build) = &loaded.spec.build {
            let known = flavour_tables
                .iter()
                .any(|t| t.resolve(Some(build)).is_ok());
            if !known {
                failures.push(format!(
                    "{at}: build.flavour {:?} is in no flavour table of the docs",
                    build.flavour
                ));
            }
        }
    }
    eprintln!("yaml examples checked: {counts:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // What the docs show today; fewer means an example was lost or is no longer recognised.
    assert!(counts.configs >= 3, "{counts:?}");
    assert!(counts.resources >= 3, "{counts:?}");
    assert!(counts.values >= 5, "{counts:?}");
    assert!(counts.flavours >= 1, "{counts:?}");
    assert!(counts.argocd >= 1, "{counts:?}");
    assert!(counts.other_kubernetes >= 1, "{counts:?}");
}

/// The docs' config examples are the real thing: one of them, broken, is refused.
#[test]
fn a_broken_config_example_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let block = blocks_in("yaml")
        .into_iter()
        .find(|b| b.marker() == Some("python/aider-chat/config.yaml"))
        .expect("the docs show aider-chat's config");
    assert!(check_config(&block, "python/aider-chat/config.yaml", scratch.path()).is_ok());
    let broken = Block {
        // A test that does not start with one of `binaries`.
        text: block
            .text
            .replace("test: \"aider --help\"", "test: \"ls --help\""),
        ..block.clone()
    };
    assert_ne!(broken.text, block.text);
    assert!(check_config(&broken, "python/aider-chat/config.yaml", scratch.path()).is_err());
}

/// A values example with a misspelt key fails the schema the docs test holds it to.
#[test]
fn a_broken_values_example_is_refused() {
    let validator = values_validator();
    let block = docs::marked("yaml", VALUES_MARKER, "releases:");
    let good = yaml(&block);
    assert!(values_problems(&validator, &good).is_empty());
    let bad: Value =
        serde_norway::from_str(&block.text.replace("repository: registry", "repo: registry"))
            .unwrap();
    assert!(!values_problems(&validator, &bad).is_empty());
}

// ---------------------------------------------------------------------------------------------
// command lines

/// A line without the comment that ends it (a `#` after a space, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// The shell lines of a block: continuations joined, comments and a `$ ` prompt removed; in
/// a `text` block only the prompted lines.
fn shell_lines(block: &Block) -> Vec<(usize, String)> {
    let prompted = block.lang != "sh";
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in block.text.lines().enumerate() {
        let line = match &pending {
            Some(_) => raw.trim().to_owned(),
            None if prompted => match raw.strip_prefix("$ ") {
                Some(l) => l.to_owned(),
                None => continue,
            },
            None => raw.to_owned(),
        };
        let line = strip_comment(&line).trim_end().to_owned();
        let (continued, line) = match line.strip_suffix('\\') {
            Some(l) => (true, l.to_owned()),
            None => (false, line),
        };
        let (at, mut text) = pending
            .take()
            .unwrap_or((block.line + 1 + i, String::new()));
        text.push_str(&line);
        text.push(' ');
        if continued {
            pending = Some((at, text));
        } else if !text.trim().is_empty() {
            out.push((at, text.trim().to_owned()));
        }
    }
    out
}

/// The commands of a shell line: split at `|`, `&&`, `||`, `;` and `&`, leading `VAR=value`
/// assignments dropped.
fn commands(words: Vec<String>) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for w in words {
        if ["|", "&&", "||", ";", "&"].contains(&w.as_str()) {
            out.push(Vec::new());
        } else {
            out.last_mut().unwrap().push(w);
        }
    }
    out.into_iter()
        .map(|c| {
            c.into_iter()
                .skip_while(|w| {
                    w.split_once('=').is_some_and(|(k, _)| {
                        !k.is_empty()
                            && k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                            && !k.starts_with(|ch: char| ch.is_ascii_digit())
                    })
                })
                .collect::<Vec<_>>()
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// The argv of a hermit-pex command line, as the binary would get it.
fn hermit_pex_argv(command: &[String]) -> Option<Vec<String>> {
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    let rest = match words.as_slice() {
        ["hermit-pex", rest @ ..] => rest,
        ["cargo", "run", "--release", "--", rest @ ..] => rest,
        ["cargo", "run", "-q", "--", rest @ ..] => rest,
        ["cargo", "run", "--", rest @ ..] => rest,
        _ => return None,
    };
    let mut argv = vec!["hermit-pex".to_owned()];
    argv.extend(rest.iter().map(|w| w.to_string()));
    Some(argv)
}

struct Parsed {
    parsed: usize,
    skipped: Vec<String>,
    failures: Vec<String>,
}

fn parse_command_lines(blocks: &[Block]) -> Parsed {
    let mut p = Parsed {
        parsed: 0,
        skipped: Vec::new(),
        failures: Vec::new(),
    };
    for block in blocks {
        for (line, text) in shell_lines(block) {
            let at = format!("{}:{line}", block.file);
            // A command of ours, not `kubectl -n hermit-pex …`.
            let first = text.split_whitespace().find(|w| !w.contains('='));
            let mentions = matches!(first, Some("hermit-pex" | "cargo"));
            if text.contains("$(") || text.contains('`') {
                if mentions {
                    p.skipped.push(format!("{at}: {text}"));
                }
                continue;
            }
            let Some(words) = shlex::split(&text) else {
                p.failures.push(format!("{at}: not a shell line: {text}"));
                continue;
            };
            for command in commands(words) {
                let Some(argv) = hermit_pex_argv(&command) else {
                    continue;
                };
                if argv.iter().any(|w| w.contains('$')) {
                    p.skipped.push(format!("{at}: {text}"));
                    continue;
                }
                p.parsed += 1;
                if let Err(e) = Cli::try_parse_from(&argv) {
                    p.failures.push(format!("{at}: {}\n{e}", argv.join(" ")));
                }
            }
        }
    }
    p
}

fn shell_blocks() -> Vec<Block> {
    blocks()
        .into_iter()
        .filter(|b| b.lang == "sh" || b.lang == "text" || b.lang == "console")
        .collect()
}

#[test]
fn every_hermit_pex_command_line_parses_with_the_real_cli() {
    let p = parse_command_lines(&shell_blocks());
    eprintln!(
        "hermit-pex command lines parsed: {}, not parsed (substitutions): {}",
        p.parsed,
        p.skipped.len()
    );
    assert!(p.failures.is_empty(), "{}", p.failures.join("\n\n"));
    // Lines with substitutions are not parsed; they must stay the exception.
    assert!(
        p.skipped.len() <= 2,
        "command lines not checked: {:#?}",
        p.skipped
    );
    assert!(
        p.parsed >= 15,
        "parsed {} hermit-pex command lines",
        p.parsed
    );
}

#[test]
fn a_broken_command_line_fails_to_parse() {
    let block = Block {
        file: "example.md".into(),
        line: 1,
        lang: "sh".into(),
        text: "hermit-pex sync python/ --latest 2 \\\n  --platforms linux-amd64   # fine\n\
               FOO=1 cargo run --release -- sync --lates 2 | tee log\n\
               hermit-pex plan --format yaml\n"
            .into(),
    };
    let p = parse_command_lines(&[block]);
    assert_eq!(p.parsed, 3);
    assert_eq!(p.failures.len(), 2, "{:#?}", p.failures);
    assert!(p.failures[0].contains("--lates"), "{}", p.failures[0]);
}

/// The value paths of the chart (`a.b.c`), from values.yaml.
fn value_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(path.clone());
            value_paths(child, &path, out);
        }
    }
}

/// `--set a.b\.c=v` → `a.b.c`, Helm's escaped dots read as dots.
fn set_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("--set") {
        rest = &rest[i + 5..];
        // `--set KEY=V`, the value after any white space (a line break in prose too).
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let arg: String = rest
            .trim_start()
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '`')
            .collect();
        if let Some((key, _)) = arg.split_once('=') {
            out.push(key.replace("\\.", "\u{0}").replace('\u{0}', "."));
        }
    }
    out
}

#[test]
fn every_helm_set_names_a_chart_value() {
    let mut known = BTreeSet::new();
    value_paths(&chart_values(), "", &mut known);
    let (mut checked, mut failures) = (0, Vec::new());
    for file in files() {
        let text = read(&file);
        for key in set_paths(&text) {
            checked += 1;
            // A key under a map of free-form entries (nodeSelector labels) is known by its map.
            let known_here = known.contains(&key)
                || known
                    .iter()
                    .any(|k| k.ends_with("nodeSelector") && key.starts_with(&format!("{k}.")));
            if !known_here {
                failures.push(format!("{}: --set {key}: no such value", file.display()));
            }
        }
    }
    eprintln!("--set values checked: {checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 4, "checked {checked} --set values");
    assert_eq!(
        set_paths("--set a.b\\.c=1 `--set\n  d=2` --set-file e=f"),
        ["a.b.c", "d"]
    );
}

// ---------------------------------------------------------------------------------------------
// other examples

#[test]
fn every_hcl_example_parses() {
    let hcl_blocks = blocks_in("hcl");
    for b in &hcl_blocks {
        hcl::parse(&b.text).unwrap_or_else(|e| panic!("{}: not HCL: {e}\n{}", b.at(), b.text));
    }
    eprintln!("hcl examples parsed: {}", hcl_blocks.len());
    assert!(!hcl_blocks.is_empty());
}

#[test]
fn kubectl_get_pypkg_shows_the_crds_columns() {
    let crd: Value =
        serde_norway::from_str(&read(&root().join("crds/pythonpackage.yaml"))).unwrap();
    let columns: Vec<String> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_uppercase())
        .collect();
    let mut expected = vec!["NAME".to_owned()];
    expected.extend(columns);
    let mut checked = 0;
    for block in shell_blocks() {
        let mut lines = block.text.lines();
        while let Some(line) = lines.next() {
            if line.starts_with("$ kubectl get pypkg") {
                let header: Vec<String> = lines
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                assert_eq!(header, expected, "{}", block.at());
                checked += 1;
            }
        }
    }
    eprintln!("kubectl get pypkg outputs checked: {checked}");
    assert!(
        checked >= 2,
        "checked {checked} `kubectl get pypkg` outputs"
    );
}

// ---------------------------------------------------------------------------------------------
// the book's structure and links

/// mdBook's (and GitHub's) id of a heading: lowercase, spaces to `-`, only letters, digits,
/// `-` and `_` kept.
fn heading_id(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// The text of a page outside its code (fenced blocks and inline code).
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut inline = false;
        for c in line.chars() {
            if c == '`' {
                inline = !inline;
            } else if !inline {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

fn anchors(file: &Path) -> BTreeSet<String> {
    let text = read(file);
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && let Some(h) = line.strip_prefix('#') {
            out.insert(heading_id(h.trim_start_matches('#')));
        }
    }
    out
}

/// Every `](target)` of a page's prose.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let (mut checked, mut failures) = (0, Vec::new());
    for file in files() {
        let dir = file.parent().unwrap();
        for link in links(&read(&file)) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            if !target.exists() {
                failures.push(format!(
                    "{}: ({link}): no {}",
                    file.display(),
                    target.display()
                ));
                continue;
            }
            if !anchor.is_empty()
                && target.extension().is_some_and(|e| e == "md")
                && !anchors(&target).contains(anchor)
            {
                failures.push(format!(
                    "{}: ({link}): no heading #{anchor}",
                    file.display()
                ));
            }
        }
    }
    eprintln!("relative links checked: {checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 40, "checked {checked} links");
}

#[test]
fn summary_lists_every_page_and_every_page_has_a_title() {
    let src = root().join("docs/src");
    let summary = read(&src.join("SUMMARY.md"));
    let listed: Vec<PathBuf> = links(&summary).iter().map(|l| src.join(l)).collect();
    let listed_set: BTreeSet<&PathBuf> = listed.iter().collect();
    assert_eq!(listed.len(), listed_set.len(), "a page listed twice");
    let pages: BTreeSet<PathBuf> = files()
        .into_iter()
        .filter(|f| f.starts_with(&src) && !f.ends_with("SUMMARY.md"))
        .collect();
    for page in &pages {
        assert!(
            listed_set.contains(page),
            "{} is not in docs/src/SUMMARY.md",
            page.display()
        );
        let first = read(page).lines().next().unwrap_or_default().to_owned();
        assert!(
            first.starts_with("# "),
            "{}: starts with {first:?}, not a title",
            page.display()
        );
    }
    for l in &listed {
        assert!(
            l.exists(),
            "SUMMARY.md lists {}, which does not exist",
            l.display()
        );
    }
    eprintln!("book pages listed: {}", pages.len());
    assert!(pages.len() >= 20, "{} pages", pages.len());
    // mdBook's own files: the book's configuration, and its output ignored by Git.
    let book = read(&root().join("docs/book.toml"));
    assert!(book.contains("src = \"src\""), "{book}");
    let ignored = read(&root().join(".gitignore"));
    assert!(ignored.lines().any(|l| l == "/docs/book/"), "{ignored}");
}

#[test]
fn heading_ids_are_mdbooks() {
    assert_eq!(heading_id(" The `launcher`"), "the-launcher");
    assert_eq!(
        heading_id("A version, from lock to manifest"),
        "a-version-from-lock-to-manifest"
    );
    let links = links("see [a](x.md#y) and `[b](not-a-link.md)`\n```\n[c](code.md)\n```\n");
    assert_eq!(links, ["x.md#y"]);
}

/// Mentions of old names the code no longer has: caught here so they do not come back.
#[test]
fn the_docs_do_not_name_what_is_gone() {
    let gone = BTreeMap::from([
        (
            ".lock.json",
            "the lock asset is pylock.<package>.toml (older releases aside)",
        ),
        ("pex3 lock create", "locks are uv's"),
        (
            "issue 19",
            "the pylock lock and PEXs from chosen wheels are wired in",
        ),
        (
            "being wired in",
            "the pylock lock and PEXs from chosen wheels are wired in",
        ),
        ("(below)", "link to the section instead"),
    ]);
    let allowed = |file: &Path, needle: &str, line: &str| {
        // The build info's note on releases made before the pylock, and the benchmark of the
        // PEX options, which was measured from a pex lock.
        (needle == ".lock.json" && line.contains("before the pylock"))
            || (needle == "pex3 lock create" && file.ends_with("scripts/bench-pex-options.sh"))
    };
    let mut failures = Vec::new();
    for file in files() {
        for (n, line) in read(&file).lines().enumerate() {
            for (needle, why) in &gone {
                if line.contains(needle) && !allowed(&file, needle, line) {
                    failures.push(format!("{}:{}: {needle}: {why}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
