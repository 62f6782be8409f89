//! The import graph inside each crate of the workspace: no two files of a
//! crate import each other, directly or through others, and the runtime's
//! `bus/` imports nothing above it. Between crates, cargo holds the
//! layering (the CLI and the dashboard are crates on top of the runtime,
//! which cannot name them); inside a crate, this test does.
//!
//! How it is checked: every `.rs` file under a crate's `src/` is a node. Its edges
//! are the paths it names (in `use` items and inline) that start with
//! `crate::`, `super::`, `self::` or one of its own child modules. A path
//! resolves to the deepest file module it names; when it then names an
//! item that file re-exports (`pub use` or `pub(crate) use`), it follows the
//! re-export to the file that defines the item, so a facade that only
//! re-exports is never the middle of a circle. `mod` declarations, comments
//! and `#[cfg(test)] mod tests` blocks are not imports. Circles are the
//! strongly connected components of more than one file (Tarjan).
//!
//! `cargo test --test module_graph -- --nocapture` prints the edges of
//! every file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates checked (their folders in the workspace), each with the
/// subtrees whose files still import their own `mod.rs` (and it them): a
/// circle wholly inside one of them is printed, not failed. The runtime's
/// `bus`: the `Acker` and `Consumer` enums in `bus/mod.rs` dispatch to both
/// buses, whose files use `bus/mod.rs`'s types; the rest of the runtime
/// imports `bus` only through its facade, so the circle stays inside.
/// (`munggoggo-macros` is left to its own layout: parse, model, expand.)
const CRATES: &[(&str, &[&str])] = &[
    ("munggoggo", &["bus"]),
    ("munggoggo-cli", &[]),
    ("munggoggo-web", &[]),
    ("munggoggo-historian", &[]),
];

/// Files of `bus/` may import only these modules besides `bus/` itself.
/// `traceparent` (the W3C trace context value and its header forms) and
/// `stats` (the lock-free histogram and the process's bus counters) are
/// leaves that import nothing of the crate.
const BELOW_BUS: &[&str] = &["error", "message", "future", "protocol", "traceparent", "stats"];

type Module = Vec<String>;

struct File {
    module: Module,
    /// Source without comments and without `#[cfg(test)] mod tests`.
    code: String,
    /// Child modules it declares with `mod name;`.
    children: BTreeSet<String>,
    /// Re-exported names: name -> absolute path of the item.
    reexports: BTreeMap<String, Module>,
}

fn src_of(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(krate).join("src")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `bus/amqp/mod.rs` -> `bus::amqp`.
fn module_of(rel: &Path) -> Module {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("file name");
    let stem = last.trim_end_matches(".rs").to_owned();
    let is_dir_module = matches!(stem.as_str(), "mod" | "lib" | "main");
    if !is_dir_module {
        parts.push(stem);
    }
    if parts.first().is_some_and(|p| p == "bin") {
        // Binaries are crates of their own.
        parts.insert(0, "#bin".to_owned());
    }
    parts
}

/// Removes comments, string literals' contents and `#[cfg(test)]` modules.
fn strip(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            i = source[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 2);
        } else if bytes[i] == b'"' && (i == 0 || bytes[i - 1] != b'\'') {
            // A string literal (raw strings with `#` are rare in paths; keep it simple).
            let raw = i > 0 && bytes[i - 1] == b'r';
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if !raw && bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.extend_from_slice(b"\"\"");
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let out = String::from_utf8_lossy(&out);
    let mut code = String::new();
    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        // `#[cfg(test)]`, or `#[cfg(all(test, ...))]` for tests that need a
        // cfg too, on an inline module (not a `mod file;` declaration).
        let test_only = line.trim() == "#[cfg(test)]" || line.trim().starts_with("#[cfg(all(test,");
        let inline_mod = |l: &&str| l.trim_start().starts_with("mod ") && l.trim_end().ends_with('{');
        if test_only && lines.peek().is_some_and(inline_mod) {
            break; // test modules come last in the workspace's files
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// `use` items of `code`: (is re-export, tree text).
fn use_items(code: &str) -> Vec<(bool, String)> {
    let mut items = Vec::new();
    for (start, _) in code.match_indices("use ") {
        let before = &code[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let prefix = before[line_start..].trim();
        let public = prefix.starts_with("pub");
        if !(prefix.is_empty() || prefix == "pub" || prefix.starts_with("pub(")) {
            continue;
        }
        let Some(end) = code[start..].find(';') else {
            continue;
        };
        // ` as ` becomes `@`, then whitespace goes.
        let tree: String = code[start + 4..start + end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(" as ", "@")
            .replace(' ', "");
        items.push((public, tree));
    }
    items
}

/// Expands a use tree into (name it binds, path).
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(String, Module)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut base = prefix.to_vec();
        base.extend(head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut part = String::new();
        for c in inner.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&part, &base, out);
                    part.clear();
                    continue;
                }
                _ => {}
            }
            part.push(c);
        }
        expand(&part, &base, out);
        return;
    }
    let (path, alias) = match tree.split_once('@') {
        Some((p, a)) => (p, Some(a)),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
    let name = match (alias, full.last()) {
        (Some(a), _) => a.to_owned(),
        (None, Some(last)) if last == "self" => {
            full.pop();
            full.last().cloned().unwrap_or_default()
        }
        (None, Some(last)) => last.clone(),
        (None, None) => return,
    };
    out.push((name, full));
}

/// Makes a path absolute (from the crate root) as seen from `file`, or
/// `None` when it names an external crate or a local item.
fn absolute(file: &File, path: &[String]) -> Option<Module> {
    let first = path.first()?;
    let mut base = file.module.clone();
    let mut rest = path;
    match first.as_str() {
        "crate" => {
            base.clear();
            rest = &path[1..];
        }
        "self" => rest = &path[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        name if file.children.contains(name) => {}
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

struct Graph {
    files: BTreeMap<Module, File>,
}

impl Graph {
    fn load(src: &Path) -> Self {
        let mut paths = Vec::new();
        collect(src, &mut paths);
        let mut files = BTreeMap::new();
        for path in paths {
            let rel = path.strip_prefix(src).expect("under src");
            let module = module_of(rel);
            let code = strip(&std::fs::read_to_string(&path).expect("read source"));
            let children = code
                .lines()
                .filter_map(|l| {
                    let l = l.trim();
                    let l = l
                        .strip_prefix("pub(crate) ")
                        .or_else(|| l.strip_prefix("pub "))
                        .unwrap_or(l);
                    l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
                })
                .collect();
            files.insert(
                module.clone(),
                File {
                    module,
                    code,
                    children,
                    reexports: BTreeMap::new(),
                },
            );
        }
        let mut graph = Graph { files };
        let keys: Vec<Module> = graph.files.keys().cloned().collect();
        for key in keys {
            let file = &graph.files[&key];
            let mut reexports = BTreeMap::new();
            for (public, tree) in use_items(&file.code) {
                if !public {
                    continue;
                }
                let mut bound = Vec::new();
                expand(&tree, &[], &mut bound);
                for (name, path) in bound {
                    if let Some(abs) = absolute(file, &path) {
                        reexports.insert(name, abs);
                    }
                }
            }
            graph.files.get_mut(&key).expect("file").reexports = reexports;
        }
        graph
    }

    /// The file defining what `path` (absolute) names.
    fn resolve(&self, path: &[String], depth: usize) -> Option<Module> {
        let mut len = path.len();
        while len > 0 && !self.files.contains_key(&path[..len]) {
            len -= 1;
        }
        let module = path[..len].to_vec();
        let file = self.files.get(&module)?;
        if depth < 8 {
            if let Some(target) = path.get(len).and_then(|name| file.reexports.get(name)) {
                let mut target = target.clone();
                target.extend(path[len + 1..].iter().cloned());
                if let Some(found) = self.resolve(&target, depth + 1) {
                    return Some(found);
                }
            }
        }
        Some(module)
    }

    /// Paths named by `file`, made absolute.
    fn paths(&self, file: &File) -> Vec<Module> {
        let mut paths = Vec::new();
        for (_, tree) in use_items(&file.code) {
            let mut bound = Vec::new();
            expand(&tree, &[], &mut bound);
            paths.extend(bound.into_iter().filter_map(|(_, p)| absolute(file, &p)));
        }
        // Inline paths: `crate::a::b`, `super::x`, `child::f`.
        let code = file.code.as_bytes();
        let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mut i = 0;
        while i < code.len() {
            if is_ident(code[i]) && (i == 0 || (!is_ident(code[i - 1]) && code[i - 1] != b':')) {
                let start = i;
                while i < code.len() && (is_ident(code[i]) || code[i] == b':') {
                    i += 1;
                }
                let text = &file.code[start..i];
                // `a::{...}` and `a::*` are use trees, handled above.
                if text.contains("::") && !text.ends_with("::") {
                    let segs: Vec<String> = text
                        .split("::")
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if let Some(abs) = absolute(file, &segs) {
                        paths.push(abs);
                    }
                }
            } else {
                i += 1;
            }
        }
        paths
    }

    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut edges = BTreeMap::new();
        for (key, file) in &self.files {
            let targets: BTreeSet<Module> = self
                .paths(file)
                .iter()
                .filter_map(|p| self.resolve(p, 0))
                .filter(|t| t != key && t.first().is_none_or(|s| s != "#bin"))
                .collect();
            edges.insert(key.clone(), targets);
        }
        edges
    }
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        next: usize,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let Some((w, _)) = s.edges.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[w].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.index[w].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
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
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".to_owned()
    } else {
        m.join("::")
    }
}

#[test]
fn the_files_of_each_crate_form_no_import_circle() {
    let show = |circles: &[Vec<Module>]| -> String {
        circles
            .iter()
            .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    let mut wrong = Vec::new();
    for (krate, allowed) in CRATES {
        let graph = Graph::load(&src_of(krate));
        let edges = graph.edges();
        println!("== {krate}");
        for (from, to) in &edges {
            let to: Vec<String> = to.iter().map(name).collect();
            println!("{} -> {}", name(from), to.join(", "));
        }
        let (inner, found): (Vec<_>, Vec<_>) = circles(&edges).into_iter().partition(|c| {
            allowed
                .iter()
                .any(|tree| c.iter().all(|m| m.first().is_some_and(|top| top == tree)))
        });
        if !inner.is_empty() {
            println!("circles inside {allowed:?} (allowed):\n  {}", show(&inner));
        }
        if !found.is_empty() {
            wrong.push(format!("{krate}:\n  {}", show(&found)));
        }
    }
    assert!(wrong.is_empty(), "import circles in\n{}", wrong.join("\n"));
}

#[test]
fn the_bus_imports_nothing_above_it() {
    let graph = Graph::load(&src_of("munggoggo"));
    let mut wrong = Vec::new();
    for (from, to) in graph.edges() {
        if from.first().is_none_or(|m| m != "bus") {
            continue;
        }
        for target in to {
            let allowed = match target.first() {
                Some(top) => top == "bus" || BELOW_BUS.contains(&top.as_str()),
                None => false,
            };
            if !allowed {
                wrong.push(format!("{} -> {}", name(&from), name(&target)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "bus/ imports from above it:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_checker_sees_a_circle() {
    // Two files that import each other, through a re-export and `super`.
    let dir = std::env::temp_dir().join(format!("munggoggo-graph-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).expect("temp dir");
    std::fs::write(dir.join("lib.rs"), "mod a;\npub use a::Thing;\n").expect("write");
    std::fs::write(
        dir.join("a/mod.rs"),
        "mod b;\npub use b::Thing;\npub struct Own;\n",
    )
    .expect("write");
    std::fs::write(dir.join("a/b.rs"), "use super::Own;\npub struct Thing(Own);\n").expect("write");
    std::fs::write(dir.join("c.rs"), "use crate::Thing;\n").expect("write");
    let edges = Graph::load(&dir).edges();
    // `crate::Thing` goes through two facades to `a::b`.
    assert!(edges[&vec!["c".to_owned()]].contains(&vec!["a".to_owned(), "b".to_owned()]));
    let found = circles(&edges);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(found.len(), 1, "{found:?}");
}
