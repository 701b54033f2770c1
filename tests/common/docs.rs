//! The documentation as the tests read it: `README.md` and the book's pages under `docs/src/`,
//! and their fenced code blocks.

use std::path::{Path, PathBuf};

/// The repository root (this crate's manifest directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md`, then every `.md` under `docs/src/`, sorted.
pub fn files() -> Vec<PathBuf> {
    let root = root();
    let mut pages = Vec::new();
    walk(&root.join("docs/src"), &mut pages);
    pages.sort();
    let mut files = vec![root.join("README.md")];
    files.extend(pages);
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The file, relative to the repository root.
    pub file: String,
    /// The line of the opening fence (1-based).
    pub line: usize,
    /// The info string after the fence (`yaml`, `sh`, ...; empty for none).
    pub lang: String,
    /// The content, without the fence's own indentation.
    pub text: String,
}

impl Block {
    /// `file:line`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The first line when it is a comment (`# …`): what the block is.
    pub fn marker(&self) -> Option<&str> {
        self.text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .map(str::trim)
    }
}

/// Every fenced block of one file, in order.
pub fn blocks_of(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let name = file
        .strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string();
    let mut blocks = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let block = Block {
                        file: name.clone(),
                        line: i + 1,
                        lang: info.trim().to_owned(),
                        text: String::new(),
                    };
                    open = Some((block, indent));
                }
            }
            Some((block, fence_indent)) => {
                if trimmed == "```" {
                    blocks.push(std::mem::replace(
                        block,
                        Block {
                            file: String::new(),
                            line: 0,
                            lang: String::new(),
                            text: String::new(),
                        },
                    ));
                    open = None;
                } else {
                    let cut = indent.min(*fence_indent);
                    block.text.push_str(&line[cut..]);
                    block.text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{name}: a code block is not closed");
    blocks
}

/// Every fenced block of the README and the book.
pub fn blocks() -> Vec<Block> {
    files().iter().flat_map(|f| blocks_of(f)).collect()
}

/// The blocks of one language, README and book, in order.
pub fn blocks_in(lang: &str) -> Vec<Block> {
    blocks().into_iter().filter(|b| b.lang == lang).collect()
}

/// The one block of `lang` whose marker (first-line comment) is `marker` and whose text
/// contains `containing`.
pub fn marked(lang: &str, marker: &str, containing: &str) -> Block {
    let found: Vec<Block> = blocks_in(lang)
        .into_iter()
        .filter(|b| b.marker() == Some(marker) && b.text.contains(containing))
        .collect();
    match found.as_slice() {
        [one] => one.clone(),
        _ => panic!(
            "the docs have {} ```{lang} blocks marked `# {marker}` holding {containing:?}, not one",
            found.len()
        ),
    }
}
