//! Every public item of the library crates has a rustdoc example that compiles.
//!
//! `cargo test --doc` compiles the examples; this test checks that they exist. It scans the
//! sources of `cluster-core`, `cluster-balancer` and `cluster-health`: the workspace denies
//! `unreachable_pub` (clippy runs with `-D warnings`), so a bare `pub` item outside a test
//! module is part of the public API, and everything else is `pub(crate)` or private. Each
//! public type, trait, free function and constant needs a code block of its own. A method,
//! associated constant or trait method needs one too, unless its type's (or trait's) example
//! already calls it (`Type::name` or `.name(`), the way an accessor shares its type's example,
//! or implements it (`fn name(`, a trait method).
//!
//! A code block counts when rustdoc compiles it: a plain fence, or `rust`, `no_run` and
//! `should_panic` ones; not `text`, `ignore` or `compile_fail`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The crates whose public API is checked, relative to the workspace root.
const CRATES: &[&str] = &["cluster-core", "cluster-balancer", "cluster-health"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A type, trait, free function, constant or type alias.
    Item,
    /// A method or associated constant of a type, or a method of a trait.
    Member,
}

#[derive(Debug)]
struct Public {
    file: PathBuf,
    line: usize,
    kind: Kind,
    name: String,
    /// The type or trait a member belongs to.
    owner: Option<String>,
    /// Whether the member takes `self` (called as `.name(`) or not (`Type::name`).
    takes_self: bool,
    /// The code of its compiled examples; empty when it has none.
    examples: String,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cluster-core is in the workspace").into()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            // `tests/` directories under `src` hold unit tests (`#[cfg(test)] mod tests;`).
            if name != "tests" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
            out.push(path);
        }
    }
}

/// The compiled code blocks of a doc comment, concatenated.
fn examples(doc: &[String]) -> String {
    let mut code = String::new();
    let mut inside: Option<bool> = None; // Some(compiled?) while in a block
    for line in doc {
        let t = line.trim();
        if let Some(info) = t.strip_prefix("```") {
            inside = match inside {
                Some(_) => None,
                None => Some(info.split(',').map(str::trim).all(|tag| {
                    matches!(tag, "" | "rust" | "no_run" | "should_panic")
                        || tag.starts_with("edition")
                })),
            };
        } else if inside == Some(true) {
            code.push_str(t.trim_start_matches("# "));
            code.push('\n');
        }
    }
    code
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> String {
    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The public items of one file.
fn scan(file: &Path, out: &mut Vec<Public>) {
    let text = fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut doc: Vec<String> = Vec::new();
    let mut cfg_test = false;
    let mut in_attr = false;
    // The enclosing `impl Type {` or `pub trait Name {`: name, indentation, is-trait.
    let mut owner: Option<(String, usize, bool)> = None;
    // Inside `test_util_pub! { ... }`: its `fn` is public with the `test-util` feature.
    let mut test_util = false;
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let t = raw.trim();
        let indent = raw.len() - raw.trim_start().len();
        i += 1;
        if in_attr {
            in_attr = !t.ends_with(']');
            continue;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            continue;
        }
        if t == "#[cfg(test)]" {
            cfg_test = true;
            continue;
        }
        if t.starts_with("#[") || t.starts_with("#!") {
            in_attr = !t.ends_with(']');
            continue;
        }
        if t.is_empty() || t.starts_with("//") {
            if t.is_empty() {
                doc.clear();
            }
            continue;
        }
        if let Some((_, at, _)) = &owner
            && indent == *at
            && t.starts_with('}')
        {
            owner = None;
            doc.clear();
            continue;
        }
        if t == "test_util_pub! {" {
            test_util = true;
            continue;
        }
        if cfg_test {
            // Skip the test-only item: one line, or a block up to its closing brace.
            cfg_test = false;
            if t.ends_with('{') {
                let close = format!("{}}}", " ".repeat(indent));
                while i < lines.len() && lines[i] != close {
                    i += 1;
                }
                i += 1;
            }
            doc.clear();
            continue;
        }
        if (t.starts_with("impl ") || t.starts_with("impl<")) && t.ends_with('{') {
            let head = t.trim_end_matches('{').trim();
            if !head.contains(" for ") {
                // `impl<T: X> Name<T>`: the type is the last path before its generics.
                let mut rest = head.strip_prefix("impl").unwrap();
                if rest.starts_with('<') {
                    let mut depth = 0;
                    let end = rest
                        .char_indices()
                        .find(|&(_, c)| {
                            depth += match c {
                                '<' => 1,
                                '>' => -1,
                                _ => 0,
                            };
                            depth == 0
                        })
                        .map_or(0, |(n, _)| n + 1);
                    rest = &rest[end..];
                }
                let path = rest.trim().split('<').next().unwrap();
                let name = path.rsplit("::").next().unwrap().to_string();
                owner = Some((name, indent, false));
            } else {
                owner = Some((String::new(), indent, false));
            }
            doc.clear();
            continue;
        }
        let (public, rest) = if let Some(r) = t.strip_prefix("pub ") {
            (true, r)
        } else if test_util && t.starts_with("fn ") {
            (true, t)
        } else if let Some((name, _, true)) = &owner
            && !name.is_empty()
        {
            // A method of a public trait: public without `pub`.
            (t.starts_with("fn ") || t.starts_with("async fn "), t)
        } else {
            (false, t)
        };
        let mut words = rest.split_whitespace().peekable();
        let mut keyword = "";
        while let Some(w) = words.next() {
            if matches!(w, "async" | "const" | "unsafe" | "extern") && words.peek().is_some() {
                if w == "const" && !words.peek().unwrap().starts_with("fn") {
                    keyword = "const";
                    break;
                }
                continue;
            }
            keyword = w;
            break;
        }
        let name = ident(words.next().unwrap_or(""));
        let is_item =
            matches!(keyword, "struct" | "enum" | "trait" | "fn" | "const" | "static" | "type");
        if keyword == "trait" && public {
            owner = Some((name.clone(), indent, true));
        }
        if public && is_item && !name.is_empty() {
            // The signature up to its body, for `self`.
            let sig: String = lines[i - 1..lines.len().min(i + 8)].join(" ");
            let sig = sig.split('{').next().unwrap_or("").to_string();
            let member = owner.as_ref().is_some_and(|(n, _, _)| !n.is_empty())
                && keyword != "trait"
                && indent > 0;
            out.push(Public {
                file: file.to_path_buf(),
                line: i,
                kind: if member { Kind::Member } else { Kind::Item },
                owner: if member { owner.as_ref().map(|(n, _, _)| n.clone()) } else { None },
                takes_self: sig.contains("self"),
                name,
                examples: examples(&doc),
            });
            test_util = false;
        }
        if !t.starts_with('#') {
            doc.clear();
        }
    }
}

/// The public items of `krate` that lack an example, and how many public items it has.
fn missing(krate: &str) -> (Vec<String>, usize) {
    let root = workspace().join(krate);
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut items = Vec::new();
    for file in &files {
        scan(file, &mut items);
    }
    let owners: HashMap<&str, &str> = items
        .iter()
        .filter(|p| p.kind == Kind::Item)
        .map(|p| (p.name.as_str(), p.examples.as_str()))
        .collect();
    if std::env::var_os("DOC_EXAMPLES_LIST").is_some() {
        // The public items as this scan sees them, to compare with rustdoc's own list.
        for p in &items {
            let owner = p.owner.as_deref().map(|o| format!("{o}::")).unwrap_or_default();
            eprintln!("{krate} {owner}{}", p.name);
        }
    }
    let mut missing = Vec::new();
    for p in &items {
        if !p.examples.is_empty() {
            continue;
        }
        let owner = p.owner.as_deref().unwrap_or("");
        if p.kind == Kind::Member {
            let code = owners.get(owner).copied().unwrap_or("");
            let called =
                if p.takes_self { format!(".{}(", p.name) } else { format!("{owner}::{}", p.name) };
            // An implementation in the trait's example shows a trait method too.
            let implemented = format!("fn {}(", p.name);
            if code.contains(&called)
                || code.contains(&format!("{owner}::{}", p.name))
                || code.contains(&implemented)
            {
                continue;
            }
        }
        let shown = if owner.is_empty() { p.name.clone() } else { format!("{owner}::{}", p.name) };
        let file = p.file.strip_prefix(workspace()).unwrap_or(&p.file);
        missing.push(format!("{}:{}: {shown}", file.display(), p.line));
    }
    (missing, items.len())
}

#[test]
fn every_public_item_has_an_example() {
    let mut all = Vec::new();
    for krate in CRATES {
        let (missing, total) = missing(krate);
        eprintln!("{krate}: {total} public items, {} without an example", missing.len());
        all.extend(missing);
    }
    assert!(
        all.is_empty(),
        "{} public items have no rustdoc example (add a ```-block, or call the method in its \
         type's example):\n{}",
        all.len(),
        all.join("\n")
    );
}
