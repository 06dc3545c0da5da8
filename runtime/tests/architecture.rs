//! The runtime's module structure, checked from its source: which top-level modules of
//! `runtime/src` import which (`crate::<module>` outside comments and test modules), and the
//! import cycles among them. Cargo keeps the pure crates (`runtime/crates/`) pure; this keeps the
//! rest from knotting further: a new cycle, or a module joining an existing one, fails here.
//!
//! `KNOWN_CYCLES` is the debt still to pay: each entry is a set of modules that import each
//! other round. Breaking a cycle makes this test ask for its entry to shrink or go, so the list
//! only ever gets shorter. Since issue 13 it is empty: any cycle at all fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The cycles among top-level modules that exist today, each sorted: none. (The last one,
/// auth-store, went when the pure parts of `auth` moved to `identity`, below the store.)
const KNOWN_CYCLES: &[&[&str]] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source that counts: up to the inline test module, without `//` comments (doc links name
/// modules without depending on them).
fn code_of(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string (a URL) is rare in these files and only hides an import
            // that a line of its own would show anyway.
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level module → the top-level modules it imports.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if matches!(stem, "lib" | "main") {
            continue;
        }
        let files = modules.entry(stem.to_owned()).or_default();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, files) in &modules {
        let mut imports = BTreeSet::new();
        for file in files {
            // A test module's own file (`store/tests.rs`) or folder (`store/tests/`) is test
            // code, like an inline `mod tests`: it may use `testing`, which uses the store.
            if file
                .components()
                .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "tests.rs")
            {
                continue;
            }
            let code = code_of(&std::fs::read_to_string(file).unwrap());
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != *module && names.contains(&name) {
                    imports.insert(name);
                }
            }
        }
        graph.insert(module.clone(), imports);
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        next: usize,
        found: BTreeSet<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        for w in &s.graph[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.insert(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        found: BTreeSet::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}

#[test]
fn no_module_joins_an_import_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 20, "read the modules: {graph:?}");
    let found = cycles(&graph);
    let known: BTreeSet<Vec<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| (*m).to_owned()).collect())
        .collect();
    let edges = |cycle: &[String]| -> String {
        cycle
            .iter()
            .flat_map(|m| {
                graph[m]
                    .iter()
                    .filter(|d| cycle.contains(d))
                    .map(move |d| format!("  {m} -> {d}"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for cycle in &found {
        assert!(
            known.iter().any(|k| cycle.iter().all(|m| k.contains(m))),
            "a new import cycle among runtime modules: {cycle:?}\n{}",
            edges(cycle)
        );
    }
    for cycle in &known {
        assert!(
            found.contains(cycle),
            "the known cycle {cycle:?} is smaller now ({found:?}): shrink KNOWN_CYCLES to match"
        );
    }
}

#[test]
fn a_cycle_is_found_where_there_is_one() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, ds)| (m.to_owned(), ds.into_iter().map(str::to_owned).collect()))
    .collect();
    let found = cycles(&graph);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
    );
}
