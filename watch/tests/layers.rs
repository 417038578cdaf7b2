//! The module layering written in `src/lib.rs`: each module uses only
//! modules of lower layers (outside its tests). An import that climbs
//! back up (the generic matcher reaching into `fail2ban`, a filter into the
//! matcher) fails here, naming the file and the module.

use std::path::Path;

/// Module, layer, as `src/lib.rs` documents them.
const LAYERS: &[(&str, u32)] = &[
    ("tags", 1),
    ("pyregex", 1),
    ("prefsplit", 1),
    ("hostile", 1),
    ("logtime", 1),
    ("window", 1),
    ("mail", 1),
    ("journal_boot", 1),
    ("journal_match", 1),
    ("journal_share", 2),
    ("filter", 2),
    ("shared", 2),
    ("lazywalk", 2),
    ("lazyfind", 3),
    ("state", 3),
    ("cases", 3),
    ("scanset", 3),
    ("compiled", 4),
    ("datefind", 5),
    ("multiline", 5),
    ("matcher", 6),
    ("builtin", 7),
    ("settings", 7),
    ("follow", 7),
    ("config", 10),
    ("policy", 8),
    ("pipeline", 8),
    ("logpath", 8),
    ("poller", 8),
    ("fail2ban", 9),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

/// The modules a file names as `crate::MODULE`, before its tests.
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices("crate::") {
            let name: String = line[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// `(module, file)` for every source file: `src/NAME.rs` is module NAME,
/// and every file under `src/NAME/` belongs to module NAME too.
fn files() -> Vec<(String, std::path::PathBuf)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                let inner = inner.unwrap().path();
                if inner.extension().is_some_and(|e| e == "rs") {
                    out.push((name.clone(), inner));
                }
            }
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            out.push((name, path));
        }
    }
    out
}

#[test]
fn no_module_uses_one_of_its_own_layer_or_above() {
    let mut seen = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for (module, path) in files() {
        let own = layer(&module).unwrap_or_else(|| {
            panic!("{}: module {module} has no layer in LAYERS", path.display())
        });
        for used in uses(&std::fs::read_to_string(&path).unwrap()) {
            let Some(theirs) = layer(&used) else {
                continue; // a re-export of lib.rs (`crate::Matcher`)
            };
            if used != module && theirs >= own {
                wrong.push(format!("{}: uses crate::{used}", path.display()));
            }
        }
        seen.insert(module);
    }
    assert_eq!(seen.len(), LAYERS.len(), "every module is checked");
    assert!(wrong.is_empty(), "{wrong:#?}");
}
