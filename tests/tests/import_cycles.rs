//! No import cycle inside any crate of the workspace: a file
//! (module) that uses another, directly or through others, is never used
//! back by it. A cycle (attrs <-> message in banset-netlink, before `wire`)
//! means neither file can be read, tested or moved without the other.
//! The CLI's last one (commands, control socket and daemon importing each
//! other's helpers through their `mod.rs`) was untangled by moving those
//! helpers into leaf modules (`control::host`, `control::paths`,
//! `daemon::state`, `daemon::set_plan`, ...).
//!
//! How: every source file is a module (`src/a/b.rs` and `src/a/b/mod.rs`
//! are `a::b`). Its code before `#[cfg(test)]` is scanned for paths:
//! `crate::a::b::Item`, `super::Item` (relative to the file, or to the
//! file itself inside an inline `mod linux { .. }`), and `child::Item` for
//! a child it declares with `mod child;`; `use` groups (`super::{a, b}`)
//! are expanded. Each path names the longest module it starts with. The
//! strongly connected components of that graph must all be single files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates checked, from the workspace root: every member of the
/// workspace that has a `src` (the `tests` crate is only a harness, but it
/// is checked too so a cycle cannot hide there).
const CRATES: &[&str] = &[
    "core",
    "watch",
    "firewall",
    "fleet",
    "cli",
    "tests",
    "backends/netlink",
    "backends/nftables",
    "backends/ipset",
    "backends/memory",
    "backends/firewalld",
    "backends/pf",
    "backends/ipfw",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Module path (`a::b`, the root is empty) of every `.rs` file under `src`.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts.join("::"), path);
        }
    }
    out
}

/// The code of a file before its tests, without comments and string
/// literals (whose braces and `::` would mislead the scan).
fn code(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = String::new();
    for line in before_tests.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut in_str = false;
        let mut escaped = false;
        for c in line.chars() {
            if in_str {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                }
                continue;
            }
            if c == '"' {
                in_str = true;
                continue;
            }
            out.push(c);
        }
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = path.find('{') else {
        return vec![path];
    };
    let prefix = &path[..open];
    let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// Every path the code names, with the inline-module depth it appears at.
fn paths(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    // `use` statements, groups expanded.
    let mut depth = 0usize;
    let mut inline_depths: Vec<usize> = Vec::new();
    let mut statement: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        if let Some(s) = statement.as_mut() {
            s.push_str(line);
        } else if let Some(rest) = trimmed
            .strip_prefix("pub use ")
            .or_else(|| trimmed.strip_prefix("pub(crate) use "))
            .or_else(|| trimmed.strip_prefix("use "))
        {
            statement = Some(rest.to_string());
        }
        if let Some(s) = statement.clone() {
            if let Some(end) = s.find(';') {
                for p in expand(&s[..end]) {
                    out.push((p, inline_depths.len()));
                }
                statement = None;
            }
        } else {
            // Other paths, `crate::a::b` and `super::a`, in expressions.
            for start in ["crate::", "super::"] {
                for (at, _) in line.match_indices(start) {
                    if at > 0 && line[..at].ends_with(|c: char| is_ident(c) || c == ':') {
                        continue;
                    }
                    let p: String = line[at..]
                        .chars()
                        .take_while(|&c| is_ident(c) || c == ':')
                        .collect();
                    out.push((p, inline_depths.len()));
                }
            }
        }
        let declares_mod = trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ");
        if declares_mod && trimmed.trim_end().ends_with('{') {
            inline_depths.push(depth);
        }
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if inline_depths.last() == Some(&depth) {
                        inline_depths.pop();
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The child modules a file declares with `mod NAME;`.
fn children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// The longest module of `known` that `path` (absolute, `a::b::Item`)
/// starts with.
fn module_of(path: &[&str], known: &BTreeMap<String, PathBuf>) -> String {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| known.contains_key(m))
        .unwrap_or_default()
}

/// The file-level import graph of one crate.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let known = modules(src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &known {
        let code = code(&std::fs::read_to_string(file).unwrap());
        let here: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        let kids = children(&code);
        let out = edges.entry(module.clone()).or_default();
        for (path, inline) in paths(&code) {
            let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let absolute: Vec<&str> = match segs.first() {
                Some(&"crate") => segs[1..].to_vec(),
                Some(&"super") => {
                    // Inside an inline module, the first `super` is the file.
                    let ups = segs.iter().take_while(|s| **s == "super").count();
                    let ups = ups.saturating_sub(inline.min(ups));
                    let base = &here[..here.len().saturating_sub(ups)];
                    let rest = segs.iter().skip_while(|s| **s == "super");
                    base.iter().copied().chain(rest.copied()).collect()
                }
                Some(&"self") => here.iter().chain(&segs[1..]).copied().collect(),
                Some(first) if kids.iter().any(|k| k == first) => {
                    here.iter().chain(&segs).copied().collect()
                }
                _ => continue,
            };
            let target = module_of(&absolute, &known);
            if &target != module {
                out.insert(target);
            }
        }
        // A child named in an expression (`plan::plan(..)`).
        for kid in &kids {
            let needle = format!("{kid}::");
            let named = code
                .match_indices(&needle)
                .any(|(at, _)| at == 0 || !code[..at].ends_with(|c: char| is_ident(c) || c == ':'));
            if named {
                let path: Vec<&str> = here.iter().copied().chain([kid.as_str()]).collect();
                let target = module_of(&path, &known);
                if &target != module {
                    out.insert(target);
                }
            }
        }
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_crate_has_an_import_cycle() {
    let mut found = Vec::new();
    for krate in CRATES {
        let edges = graph(&workspace().join(krate).join("src"));
        assert!(
            edges.len() > 1 || *krate == "backends/memory",
            "{krate}: no modules found"
        );
        for cycle in cycles(&edges) {
            // The edges inside the cycle, so that the message says which
            // import to move.
            let inside: Vec<String> = cycle
                .iter()
                .flat_map(|from| {
                    let to = edges[from].iter().filter(|to| cycle.contains(to));
                    to.map(move |to| format!("{from:?} -> {to:?}"))
                })
                .collect();
            found.push(format!(
                "{krate}: {}\n  {}",
                cycle.join(" <-> "),
                inside.join("\n  ")
            ));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

/// Every member of the workspace is checked: a new crate cannot be left
/// out of [`CRATES`] unnoticed.
#[test]
fn every_workspace_member_is_checked() {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").expect("a members list") + "members = [".len();
    let end = start + manifest[start..].find(']').unwrap();
    let members: BTreeSet<&str> = manifest[start..end]
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    let checked: BTreeSet<&str> = CRATES.iter().copied().collect();
    assert_eq!(members, checked);
}

/// The check itself: the cycle this test was written for, in a crate of
/// two files, is found; the same crate with the shared part moved into a
/// third file is not.
#[test]
fn the_check_finds_a_cycle_between_two_files() {
    let dir = std::env::temp_dir().join(format!("banset-cycles-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod attrs;\npub mod message;\n").unwrap();
    std::fs::write(
        src.join("attrs.rs"),
        "use crate::message::{align4, DecodeError};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("message.rs"),
        "use std::fmt;\nuse crate::attrs::{\n    AttrIter, Attrs,\n};\n",
    )
    .unwrap();
    let found = cycles(&graph(&src));
    assert_eq!(found, [vec!["attrs".to_string(), "message".to_string()]]);
    std::fs::write(src.join("attrs.rs"), "use crate::wire::DecodeError;\n").unwrap();
    std::fs::write(src.join("wire.rs"), "pub struct DecodeError;\n").unwrap();
    assert!(cycles(&graph(&src)).is_empty());
    // `super::` inside an inline module is the file itself, not its parent.
    std::fs::write(
        src.join("attrs.rs"),
        "mod linux {\n    use super::helper;\n}\nfn helper() {}\nuse crate::wire::X;\n",
    )
    .unwrap();
    std::fs::write(src.join("wire.rs"), "pub struct X;\nuse crate::attrs::Y;\n").unwrap();
    assert_eq!(
        cycles(&graph(&src)),
        [vec!["attrs".to_string(), "wire".to_string()]]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
