//! A config's text on its way to the YAML parser: read with a size limit, refused when its
//! shape would make the parser slow, and the parser's errors rewritten so that they name the
//! field and the fix and never echo the file (a config may be a symbolic link to anything).

use std::io::Read;
use std::path::Path;

use super::Problem;

/// The largest config file read; a real one is a few hundred bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// `[` and `{` in one config. libyaml checks every open flow collection on every token, so
/// nesting them costs quadratic time (100,000 levels in 200 KB: about a minute; 4,095: 0.2 s
/// unoptimised; 1,023: 0.02 s). Counting every bracket, quoted or not, cannot be fooled by
/// quoting; a real config has a few dozen (one per `{version, python}` entry), and even one at
/// every limit (100 versions, 50 `pkg[extra]` requirements) stays far below.
pub const MAX_FLOW_OPENERS: usize = 1024;

/// Characters of a value or a field name a message shows.
const SHOWN_CHARS: usize = 100;

/// What a serde error says when a version was written as a YAML number.
pub(super) const UNQUOTED_NUMBER: &str = "without quotes is a number in YAML";

/// Reads a config file: a regular file of at most [`MAX_CONFIG_BYTES`], UTF-8 (a byte order
/// mark is dropped, as PyYAML drops it). The error is a message about the file.
pub fn read(file: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(file).map_err(|e| unreadable(file, &e))?;
    if !meta.is_file() {
        return Err(if meta.is_dir() {
            "is a directory: a config is a YAML file (python/<package>/config.yaml)".to_owned()
        } else {
            "is not a regular file (a device, pipe or socket): a config is a YAML file".to_owned()
        });
    }
    if meta.len() > MAX_CONFIG_BYTES as u64 {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| unreadable(file, &e))?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    decode(bytes)
}

fn too_big(n: u64) -> String {
    format!(
        "is {n} bytes; a config is at most {MAX_CONFIG_BYTES} bytes (1 MiB), so it is not parsed"
    )
}

fn decode(mut bytes: Vec<u8>) -> Result<String, String> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err("is UTF-16 text: save it as UTF-8".to_owned());
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "is not UTF-8 text (the first bad byte is at offset {}): save it as UTF-8",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Why a path cannot be read, naming a symbolic link loop or a dangling link as such.
pub fn unreadable(path: &Path, e: &std::io::Error) -> String {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if e.raw_os_error() == Some(libc::ELOOP) {
        return "is a symbolic link loop (following its links leads back to them): fix or remove the link"
            .to_owned();
    }
    match e.kind() {
        std::io::ErrorKind::NotFound if link => match std::fs::read_link(path) {
            Ok(target) => format!(
                "is a symbolic link to {}, which does not exist",
                target.display()
            ),
            Err(_) => "is a symbolic link to a path that does not exist".to_owned(),
        },
        std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        std::io::ErrorKind::PermissionDenied => "cannot be read: permission denied".to_owned(),
        _ => format!("cannot be read: {e}"),
    }
}

/// Refuses text the parser must not see: too large, empty, or nested too deep.
pub fn check_shape(text: &str) -> Result<(), Problem> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(Problem::new("", too_big(text.len() as u64)));
    }
    if text.trim().is_empty() {
        return Err(Problem::new(
            "",
            "is empty: a config is a mapping with package, versions and the optional fields \
             (see docs/src/config.md)",
        ));
    }
    let mut openers = 0;
    for (line, l) in text.lines().enumerate() {
        openers += l.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
        if openers > MAX_FLOW_OPENERS {
            return Err(Problem::new(
                "",
                format!(
                    "has more than {MAX_FLOW_OPENERS} '[' and '{{' by line {}: a config needs a few \
                     dozen, and deeply nested YAML flow collections take the parser quadratic time, \
                     so it is not parsed",
                    line + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Whose text a parser error is about, which decides what of it a message may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A file on disk, which may be a link to anything (a key file, `/etc/shadow`): an unknown
    /// field is named only when it is a name hermit-pex knows, and a value of the wrong type
    /// is described, never shown.
    File,
    /// A resource the API server stored: it names unknown fields itself, and so may we.
    Resource,
}

/// Field names a config does not take but hermit-pex knows, so a message may show them: the
/// cluster-only fields of a `PythonPackage` and its camelCase spellings.
const OTHER_NAMES: [&str; 8] = [
    "interval",
    "suspend",
    "releases",
    "manifests",
    "index",
    "extraPackages",
    "configVersion",
    "partialPlatforms",
];

/// A parser error as a problem: the field it stopped at, and a message that names shapes in
/// the config's words, cuts long values and (for a [`Source::File`]) never shows text found
/// where a field name was expected or a value of the wrong type.
pub fn problem(e: &serde_norway::Error, text: &str, source: Source) -> Problem {
    let msg = e.to_string();
    // serde_norway leaves out a position at line 1 column 1; a message always says where.
    let start = match e.location() {
        Some(l) => format!(" at line {} column {}", l.line(), l.column()),
        None => String::new(),
    };
    let (msg, at) = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => (&msg[..i], &msg[i..]),
        _ => (msg.as_str(), start.as_str()),
    };
    // serde_norway prefixes the path of the failing field ("versions[1].python: ...").
    let (path, message) = match msg.split_once(": ") {
        Some((path, rest)) if is_field_path(path) => (path.to_owned(), rest),
        _ => (String::new(), msg),
    };
    if let Some((name, expected)) = unknown_field(message) {
        return unknown_field_problem(&path, name, expected, at, source);
    }
    let field = if path.is_empty() {
        field_from_message(message)
    } else {
        path
    };
    let message = match e.location() {
        Some(l) if message.contains(UNQUOTED_NUMBER) => {
            unquoted_number(text.get(l.index()..).unwrap_or("")).unwrap_or(message.to_owned())
        }
        _ => in_config_words(message),
    };
    Problem {
        field: shorten_field(&field),
        message: shorten(&format!("{message}{at}")),
    }
}

/// serde's "unknown field `NAME`, expected ...": the name and the expected part.
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("unknown field `")?;
    if let Some(name) = rest.strip_suffix("`, there are no fields") {
        return Some((name, "there are no fields here"));
    }
    // The name may hold a backquote; the expected list holds no ", expected".
    let i = rest.rfind("`, expected")?;
    Some((&rest[..i], &rest[i + 3..]))
}

fn unknown_field_problem(
    path: &str,
    name: &str,
    expected: &str,
    at: &str,
    source: Source,
) -> Problem {
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let shown = source == Source::Resource || known.contains(&name) || OTHER_NAMES.contains(&name);
    if shown {
        return Problem {
            field: shorten_field(if path.is_empty() { name } else { path }),
            message: shorten(&format!("unknown field `{name}`, {expected}{at}")),
        };
    }
    // The closest known name, when it is close enough to be a typo of it.
    let guess = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    let hint = guess.map_or_else(String::new, |(_, k)| format!("; did you mean `{k}`?"));
    Problem {
        field: shorten_field(path),
        message: format!(
            "unknown field (a name of {} characters, not shown){at}: {expected}{hint}",
            name.chars().count()
        ),
    }
}

/// Refuses a YAML tag anywhere (`version: !Sync 1.0`): the parser of a typed field drops it
/// without a word, so a config that means something else by it would be read as if it had none.
/// Checked after the typed parse took the text, so its errors (with lines) come first.
pub fn no_tags(text: &str) -> Result<(), Problem> {
    use serde_norway::Value;
    fn walk(v: &Value, path: &str) -> Option<String> {
        match v {
            Value::Tagged(_) => Some(path.to_owned()),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{path}[{i}]"))),
            Value::Mapping(m) => m.iter().find_map(|(k, v)| {
                if matches!(k, Value::Tagged(_)) {
                    return Some(path.to_owned());
                }
                let key = k.as_str().unwrap_or("?");
                walk(
                    v,
                    &if path.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{path}.{key}")
                    },
                )
            }),
            _ => None,
        }
    }
    let value: Value = serde_norway::from_str(text).map_err(|e| Problem::new("", e.to_string()))?;
    match walk(&value, "") {
        None => Ok(()),
        Some(field) => Err(Problem::new(
            field,
            "carries a YAML tag (a `!name` before the value), which a config does not take and \
             the parser would drop without a word: remove it",
        )),
    }
}

/// The line (from 1) each of `names` is written on in the list under the top-level `key`,
/// found in order by a plain scan after the key (in block or flow style, quoted or not; the
/// names are unique, and plain enough to be found as words). A name not found gets the key's
/// line, and with no such key line 1.
pub fn entry_lines<'a>(text: &str, key: &str, names: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut offset = 0;
    let key_at = text.lines().find_map(|l| {
        let here = offset;
        offset += l.len() + 1;
        l.strip_prefix(key)
            .filter(|rest| rest.trim_start().starts_with(':'))
            .map(|_| here)
    });
    let Some(key_at) = key_at else {
        return names.map(|_| 1).collect();
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    let mut from = key_at + key.len();
    names
        .map(|name| {
            let found = text[from..]
                .match_indices(name)
                .map(|(i, _)| from + i)
                .find(|&i| {
                    let before = text.as_bytes()[..i].last().copied();
                    let after = text.as_bytes().get(i + name.len()).copied();
                    !before.is_some_and(word) && !after.is_some_and(word)
                });
            match found {
                Some(i) => {
                    from = i + name.len();
                    line_of(i)
                }
                None => line_of(key_at),
            }
        })
        .collect()
}

fn is_field_path(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b))
}

/// Errors at the top level carry no path; name the field the message mentions, if any (serde
/// names only fields of the config's own types here).
fn field_from_message(msg: &str) -> String {
    for marker in ["missing field `", "duplicate field `"] {
        if let Some((name, _)) = msg
            .split_once(marker)
            .and_then(|(_, rest)| rest.split_once('`'))
        {
            return name.to_owned();
        }
    }
    String::new()
}

/// `version: 6.0` reaches the version parser as the float 6: the hint quotes the text as
/// written, read back from the file where the parser stopped.
fn unquoted_number(rest: &str) -> Option<String> {
    let raw: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !",]}#".contains(*c))
        .take(SHOWN_CHARS)
        .collect();
    (!raw.is_empty()).then(|| {
        format!(
            "{raw} {UNQUOTED_NUMBER}, and a number loses trailing zeros (1.10 reads as 1.1): \
             quote the version as written, \"{raw}\""
        )
    })
}

/// What serde found, in the config's words and without its value (serde's `Unexpected`:
/// `string "…"`, ``integer `5` ``, `map`, ...).
fn found(unexpected: &str) -> String {
    let word = unexpected.split([' ', '`']).next().unwrap_or("");
    match word {
        "unit" => "nothing (null, ~ or an empty value)".to_owned(),
        "sequence" => "a list".to_owned(),
        "map" => "a mapping".to_owned(),
        // A file that is no config (a link to /etc/passwd) is not shown, not even cut.
        "string" => format!(
            "plain text of about {} characters (not shown)",
            unexpected.chars().count().saturating_sub(9)
        ),
        "integer" => "a whole number".to_owned(),
        "floating" => "a decimal number".to_owned(),
        "boolean" => "true or false".to_owned(),
        "character" => "a character".to_owned(),
        "bytes" | "byte" => "bytes".to_owned(),
        // serde_norway hands a tagged value (`!Sync 1.0`) over as an enum.
        "enum" => {
            "a value with a YAML tag (a `!name` before it), which a config does not take".to_owned()
        }
        _ => "something else".to_owned(),
    }
}

/// What serde expected, in the config's words: Rust's type names are not the reader's.
fn expected(expected: &str) -> String {
    match expected {
        "u32" => "a whole number from 0 to 4294967295".to_owned(),
        "u64" | "usize" => "a whole number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a string" => "text (a string)".to_owned(),
        "struct GitSource" => "a mapping {git: URL, tagPrefix: ..., subdirectory: ...}".to_owned(),
        other => other.to_owned(),
    }
}

/// serde names Rust types (`expected struct PackageSpec`) and shows what it found; say what
/// the config must hold, and what was found without showing it.
fn in_config_words(message: &str) -> String {
    let parts = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|m| m.rsplit_once(", expected "));
    if let Some((unexpected, wanted)) = parts {
        let found = found(unexpected);
        return if wanted == "struct PackageSpec" {
            format!(
                "the config must be a mapping with package, versions and the optional fields \
                 (binaries, description, test, ...), one per line as `field: value`; found {found}"
            )
        } else if wanted == "struct VersionEntry" {
            format!(
                "each entry must be a mapping {{version: \"1.0\", python: \"3.12\"}}; found {found}"
            )
        } else {
            format!("must be {}; found {found}", expected(wanted))
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `")
        && let Some(i) = rest.rfind("`, expected")
    {
        return format!(
            "is not one of the values this field takes (not shown), {}",
            &rest[i + 3..]
        );
    }
    message.to_owned()
}

fn shorten_field(field: &str) -> String {
    let n = field.chars().count();
    if n <= SHOWN_CHARS {
        return field.to_owned();
    }
    let head: String = field.chars().take(SHOWN_CHARS).collect();
    format!("{head}… ({} more characters)", n - SHOWN_CHARS)
}

/// Cuts every quoted (`"..."`) or backquoted value in a message to [`SHOWN_CHARS`]
/// characters, saying how many were left out.
pub fn shorten(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[start] as char;
        out.push_str(&rest[..=start]);
        rest = &rest[start + 1..];
        let end = closing(rest, quote).unwrap_or(rest.len());
        let inner = &rest[..end];
        let n = inner.chars().count();
        if n > SHOWN_CHARS {
            out.extend(inner.chars().take(SHOWN_CHARS));
            out.push('…');
            out.push(quote);
            out.push_str(&format!(" ({} more characters)", n - SHOWN_CHARS));
        } else {
            out.push_str(inner);
            if end < rest.len() {
                out.push(quote);
            }
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Where a quoted value ends: the next unescaped quote.
fn closing(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_on_their_lines() {
        let block =
            "package: x\n# binaries: [b]\nbinaries:\n  - a\n  - \"b-c\"\n  - b\nversions: []\n";
        assert_eq!(
            entry_lines(block, "binaries", ["a", "b-c", "b"].into_iter()),
            [4, 5, 6]
        );
        let flow = "package: a\nbinaries: [a, a.b,\n  c]\n";
        assert_eq!(
            entry_lines(flow, "binaries", ["a", "a.b", "c"].into_iter()),
            [2, 2, 3]
        );
        assert_eq!(
            entry_lines(flow, "binaries", ["zz"].into_iter()),
            [2],
            "the key's line"
        );
        assert_eq!(
            entry_lines("{binaries: [a]}", "binaries", ["a"].into_iter()),
            [1]
        );
    }

    #[test]
    fn long_quoted_values_are_cut() {
        let long = "r".repeat(5000);
        let msg = format!("invalid type: string \"{long}\", expected struct PackageSpec");
        let cut = shorten(&msg);
        assert!(cut.len() < 300, "{cut}");
        assert!(cut.contains("(4900 more characters)"), "{cut}");
        assert!(cut.ends_with(", expected struct PackageSpec"), "{cut}");
        let msg = format!("unknown field `{long}`, expected one of `package`");
        assert!(shorten(&msg).ends_with("expected one of `package`"));
        assert_eq!(shorten("a \"b\\\"c\" d"), "a \"b\\\"c\" d");
        assert_eq!(shorten("no quotes"), "no quotes");
        assert_eq!(shorten("open \"end"), "open \"end");
    }
}
