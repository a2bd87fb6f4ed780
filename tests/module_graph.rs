//! The module maps in src/lib.rs and core/src/lib.rs promise that data flows one way between
//! modules. This test holds the code to it: for each crate (the engine in core/src, the service
//! in src) it reads the `crate::` paths of every source file, builds the graph of which
//! top-level module of the crate uses which (and, inside each top-level module, which sibling
//! file uses which), and fails naming any cycle. Between the crates the direction is Cargo's:
//! the engine cannot name the service, and the service's `crate::engine` is the engine's module
//! re-exported, outside its own graph.
//!
//! Test code is left out (files named `tests.rs` and everything after a `#[cfg(test)]` item at
//! the top of a file): a test may compare two parsers or drive a module through another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments and without its test code.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]") {
            // `mod tests;` names a file of its own (skipped by name); a block runs to the end.
            match lines.next() {
                Some(item) if item.trim_end().ends_with(';') => continue,
                _ => break,
            }
        }
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The first path segment after each `prefix` in `code`: `prefix name` and each top-level name
/// of a group `prefix{a::x, b}`.
fn segments_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // `xcrate::` is not `crate::`.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    names.push(ident(&item));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else if depth >= 1 {
                    item.push(c);
                }
            }
        } else {
            names.push(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Edges between top-level modules, and between sibling files inside each top-level module.
fn graphs(src: &Path) -> (Graph, Graph) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let rel: Vec<Vec<String>> = files
        .iter()
        .map(|p| {
            let r = p.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> =
                r.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if let Some(last) = parts.last_mut() {
                *last = last.trim_end_matches(".rs").to_string();
            }
            parts
        })
        .collect();
    let tops: BTreeSet<String> = rel
        .iter()
        .map(|p| p[0].clone())
        .filter(|t| t != "lib" && t != "main" && t != "bin")
        .collect();
    let children = |top: &str| -> BTreeSet<String> {
        rel.iter()
            .filter(|p| p.len() >= 2 && p[0] == top && p[1] != "mod" && p[1] != "tests")
            .map(|p| p[1].clone())
            .collect()
    };
    let mut top_graph = Graph::new();
    let mut inner_graph = Graph::new();
    for (path, parts) in files.iter().zip(&rel) {
        let top = &parts[0];
        if !tops.contains(top) || parts.last().is_some_and(|l| l == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("source file");
        let code = production_code(&text);
        let node = top_graph.entry(top.clone()).or_default();
        for name in segments_after(&code, "crate::") {
            if name != *top && tops.contains(&name) {
                node.insert(name);
            }
        }
        // A file directly inside a top-level module (src/web/item.rs, src/web/queue/...): its
        // siblings, named as `super::x` from the file itself or as `crate::top::x`.
        if parts.len() >= 2 && parts[1] != "mod" {
            let me = format!("{top}/{}", parts[1]);
            let siblings = children(top);
            let mut names = segments_after(&code, &format!("crate::{top}::"));
            if parts.len() == 2 {
                names.extend(segments_after(&code, "super::"));
            }
            let node = inner_graph.entry(me.clone()).or_default();
            for name in names {
                if name != parts[1] && siblings.contains(&name) {
                    node.insert(format!("{top}/{name}"));
                }
            }
        }
    }
    (top_graph, inner_graph)
}

/// Strongly connected components of more than one node (Tarjan), each sorted.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
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
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Who imports whom inside a cycle, so the failure says where to look.
fn describe(g: &Graph, cycle: &[String]) -> String {
    let mut edges = Vec::new();
    for a in cycle {
        for b in g.get(a).into_iter().flatten() {
            if cycle.contains(b) {
                edges.push(format!("{a} -> {b}"));
            }
        }
    }
    edges.join(", ")
}

/// The cycles of one crate's graphs, described.
fn faults(src: &Path) -> (Graph, Vec<String>) {
    let (top, inner) = graphs(src);
    let mut faults = Vec::new();
    for cycle in cycles(&top) {
        faults.push(format!("modules {cycle:?}: {}", describe(&top, &cycle)));
    }
    for cycle in cycles(&inner) {
        faults.push(format!("files {cycle:?}: {}", describe(&inner, &cycle)));
    }
    (top, faults)
}

#[test]
fn the_engine_modules_import_each_other_in_one_direction_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("core/src");
    let (top, faults) = faults(&src);
    assert!(
        top.contains_key("engine") && top["engine"].contains("matching"),
        "the checker no longer sees the engine's module graph: {top:?}"
    );
    assert!(faults.is_empty(), "import cycles:\n{}", faults.join("\n"));
}

#[test]
fn the_service_modules_import_each_other_in_one_direction_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (top, faults) = faults(&src);
    assert!(
        top.contains_key("service") && top["web"].contains("service"),
        "the checker no longer sees the service's module graph: {top:?}"
    );
    assert!(faults.is_empty(), "import cycles:\n{}", faults.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_and_names_it() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    g.entry("c".into()).or_default().insert("d".into());
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    assert_eq!(describe(&g, &cycles(&g)[0]), "a -> b, b -> c, c -> a");
}

#[test]
fn imports_are_read_from_groups_and_paths_but_not_comments_or_tests() {
    let code = production_code(
        "use crate::{domain::Payment, io::{self, read}};\n\
         #[cfg(test)]\nmod tests;\n\
         let x = crate::formats::parse(b, f); // crate::web\n\
         #[cfg(test)]\nmod tests { use crate::store::X; }\n",
    );
    assert_eq!(
        segments_after(&code, "crate::"),
        vec!["domain", "io", "formats"]
    );
}
