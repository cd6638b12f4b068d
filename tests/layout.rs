//! The source layout as a specification: no import circles between top-level modules or between
//! the files of `engine/`, no file over about 500 lines (tests apart), no function over about 80
//! lines in the engine. The checks read the source text, so they hold for code still to be written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a file may have outside its `#[cfg(test)]` items.
const MAX_FILE_LINES: usize = 500;
/// Lines a function in `src/engine/` may have, signature to closing brace.
const MAX_ENGINE_FN_LINES: usize = 80;

/// Files allowed over [`MAX_FILE_LINES`] for now, with the reason. Each entry is a debt: the test
/// fails when an entry is no longer needed, so the list only shrinks.
const LONG_FILES: &[(&str, &str)] = &[];

/// References allowed to break the rules for now. Each is a debt with a reason; the test fails
/// when an entry no longer matches anything.
const PENDING_REFERENCES: &[(&str, &str, &str)] = &[];

#[test]
fn no_import_circles_between_top_level_modules() {
    let src = Source::read();
    let graph = src.graph(|file, path| {
        let from = file.module.first()?.clone();
        let to = path.first()?.clone();
        src.top_level.contains(&to).then_some((from, to))
    });
    let cycles = all_cycles(graph);
    assert!(
        cycles.is_empty(),
        "import circles between top-level modules:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn no_import_circles_between_the_files_of_the_engine() {
    let src = Source::read();
    let graph = src.graph(|file, path| {
        if file.module.first().map(String::as_str) != Some("engine") {
            return None;
        }
        if path.first().map(String::as_str) != Some("engine") {
            return None;
        }
        Some((src.owning_module(&file.module), src.owning_module(path)))
    });
    let cycles = all_cycles(graph);
    assert!(
        cycles.is_empty(),
        "import circles inside engine/:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn no_file_is_over_about_500_lines_outside_its_tests() {
    let src = Source::read();
    let mut over = Vec::new();
    let mut unused: BTreeSet<&str> = LONG_FILES.iter().map(|(f, _)| *f).collect();
    for file in &src.files {
        let lines = file.code.lines().count() - file.test_lines;
        if lines > MAX_FILE_LINES && !unused.remove(file.name.as_str()) {
            over.push(format!("{} has {lines} lines", file.name));
        }
    }
    for file in &src.files {
        let lines = file.code.lines().count() - file.test_lines;
        if lines <= MAX_FILE_LINES && unused.remove(file.name.as_str()) {
            over.push(format!(
                "{} is now short enough: remove it from LONG_FILES",
                file.name
            ));
        }
    }
    assert!(
        over.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        over.join("\n")
    );
}

#[test]
fn no_engine_function_is_over_about_80_lines() {
    let src = Source::read();
    let mut long = Vec::new();
    for file in src
        .files
        .iter()
        .filter(|f| f.name.starts_with("src/engine/"))
    {
        for (name, line, lines) in functions(&file.code) {
            if lines > MAX_ENGINE_FN_LINES {
                long.push(format!("{}:{line} fn {name} has {lines} lines", file.name));
            }
        }
    }
    assert!(
        long.is_empty(),
        "engine functions over {MAX_ENGINE_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// The checks must be able to fail: a circle and a long function written here are found.
#[test]
fn the_checks_find_a_circle_and_a_long_function() {
    let edge = |from: &str, to: &str| {
        (
            from.to_string(),
            BTreeMap::from([(to.to_string(), String::new())]),
        )
    };
    let graph: Graph = [edge("a", "b"), edge("b", "c"), edge("c", "a")].into();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(all_cycles(graph).len(), 1);

    let file = "use crate::engine::{ingest::{self, run}, sla};\n\
                // use crate::advice;\n\
                /// See [`x`](crate::rules::x).\n\
                fn f() { let s = \"crate::report\"; super::plan::go(); housing::x(); }\n\
                #[cfg(test)]\nmod tests { use crate::demo; }\n";
    let code = without_tests(&strip(file));
    let paths: Vec<String> = paths(&code, &["engine".into(), "housing".into()])
        .iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        paths,
        [
            "crate::engine::ingest",
            "crate::engine::ingest::run",
            "crate::engine::sla",
            "super::plan::go",
            "housing::x"
        ]
    );

    let long = format!("fn long() {{\n{}}}\n", "    x();\n".repeat(90));
    assert_eq!(functions(&long), [("long".to_string(), 1, 92)]);
}

/// Each module's dependencies, with one reference that makes each (`file: path`).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

struct File {
    /// Path from the crate root, e.g. `src/engine/ingest.rs`.
    name: String,
    /// Module path, e.g. `["engine", "ingest"]`.
    module: Vec<String>,
    /// Source with comments, strings and `#[cfg(test)]` items blanked, lines kept.
    code: String,
    /// Lines that belong to `#[cfg(test)]` items.
    test_lines: usize,
}

struct Source {
    files: Vec<File>,
    modules: BTreeSet<Vec<String>>,
    top_level: BTreeSet<String>,
}

impl Source {
    fn read() -> Source {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut names = Vec::new();
        walk(&root.join("src"), &mut names);
        names.sort();
        let mut files = Vec::new();
        for path in names {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            // Test modules kept in their own files, and the binary, which only uses the library.
            let stem = path.file_stem().unwrap().to_string_lossy();
            if stem == "tests" || stem.ends_with("_tests") || name == "src/main.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let stripped = strip(&text);
            let code = without_tests(&stripped);
            let test_lines = lines_blanked(&stripped, &code);
            files.push(File {
                module: module_of(&name),
                name,
                code,
                test_lines,
            });
        }
        let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
        let top_level = modules.iter().filter_map(|m| m.first().cloned()).collect();
        Source {
            files,
            modules,
            top_level,
        }
    }

    /// The module (file) a path lands in: its longest prefix that is a module of ours.
    fn owning_module(&self, path: &[String]) -> String {
        (1..=path.len())
            .rev()
            .map(|n| &path[..n])
            .find(|p| self.modules.contains(*p))
            .map(|p| p.join("/"))
            .unwrap_or_default()
    }

    fn graph(&self, edge: impl Fn(&File, &[String]) -> Option<(String, String)>) -> Graph {
        let mut graph = Graph::new();
        let mut pending: BTreeSet<(&str, &str)> = PENDING_REFERENCES
            .iter()
            .map(|(f, p, _)| (*f, *p))
            .collect();
        for file in &self.files {
            let children: Vec<String> = self
                .modules
                .iter()
                .filter(|m| m.len() == file.module.len() + 1 && m.starts_with(&file.module))
                .map(|m| m.last().unwrap().clone())
                .collect();
            for path in resolve(&file.module, &file.code, &children) {
                let text = format!("crate::{}", path.join("::"));
                let is_pending = |f: &str, p: &str| f == file.name && text.starts_with(p);
                if PENDING_REFERENCES.iter().any(|(f, p, _)| is_pending(f, p)) {
                    pending.retain(|(f, p)| !is_pending(f, p));
                    continue;
                }
                if let Some((from, to)) = edge(file, &path)
                    && from != to
                {
                    let why = format!("{}: {text}", file.name);
                    graph.entry(from).or_default().entry(to).or_insert(why);
                }
            }
        }
        assert!(
            pending.is_empty(),
            "PENDING_REFERENCES no longer found, remove them: {pending:?}"
        );
        graph
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(name: &str) -> Vec<String> {
    let rel = name
        .strip_prefix("src/")
        .unwrap()
        .strip_suffix(".rs")
        .unwrap();
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Every path a file names, made absolute from the crate root: `crate::…`, `super::…`,
/// `self::…`, and in a folder module its children named bare (`ingest::run`).
fn resolve(module: &[String], code: &str, children: &[String]) -> Vec<Vec<String>> {
    // `module` already names a folder module by its folder, so `super` is always its parent.
    let parent = &module[..module.len().saturating_sub(1)];
    let mut out = Vec::new();
    for path in paths(code, children) {
        let mut segs = path.into_iter();
        let head = segs.next().unwrap();
        let mut abs: Vec<String> = match head.as_str() {
            "crate" => Vec::new(),
            "super" => parent.to_vec(),
            "self" => module.to_vec(),
            child => {
                let mut m = module.to_vec();
                m.push(child.to_string());
                m
            }
        };
        // `super::super::…`
        for seg in segs {
            if seg == "super" {
                abs.pop();
            } else {
                abs.push(seg);
            }
        }
        out.push(abs);
    }
    out
}

/// Paths that start with `crate::`, `super::`, `self::` or one of `children`, groups
/// (`{a, b::c}`) expanded; the head is kept for `resolve`.
fn paths(code: &str, children: &[String]) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b':' || b[i - 1] == b'$');
        if boundary && is_ident(b[i]) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = &code[start..i];
            let known =
                matches!(word, "crate" | "super" | "self") || children.iter().any(|c| c == word);
            if known && code[i..].starts_with("::") {
                let mut found = Vec::new();
                let mut j = i + 2;
                path_tail(code, &mut j, vec![word.to_string()], &mut found);
                out.extend(found);
                i = j;
            }
            continue;
        }
        i += 1;
    }
    out.into_iter().filter(|p| p.len() > 1).collect()
}

/// Reads `a::b::{c, d::e}` from `*j` (just after a `::`), pushing each complete path.
fn path_tail(code: &str, j: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let b = code.as_bytes();
    skip_ws(b, j);
    if *j < b.len() && b[*j] == b'{' {
        *j += 1;
        loop {
            skip_ws(b, j);
            if *j >= b.len() || b[*j] == b'}' {
                *j += 1;
                return;
            }
            let mut item = prefix.clone();
            let start = *j;
            while *j < b.len() && is_ident(b[*j]) {
                *j += 1;
            }
            let word = &code[start..*j];
            if word.is_empty() {
                *j += 1; // `*` or stray punctuation
            } else if word == "self" {
                out.push(item.clone());
            } else {
                item.push(word.to_string());
                skip_ws(b, j);
                if code[*j..].starts_with("::") {
                    *j += 2;
                    path_tail(code, j, item, out);
                } else {
                    out.push(item);
                }
            }
            skip_ws(b, j);
            // `as name`
            if code[*j..].starts_with("as ") {
                *j += 3;
                skip_ws(b, j);
                while *j < b.len() && is_ident(b[*j]) {
                    *j += 1;
                }
                skip_ws(b, j);
            }
            if *j < b.len() && b[*j] == b',' {
                *j += 1;
            }
        }
    }
    let start = *j;
    while *j < b.len() && is_ident(b[*j]) {
        *j += 1;
    }
    let word = &code[start..*j];
    let mut item = prefix;
    if !word.is_empty() && word != "self" {
        item.push(word.to_string());
    }
    if code[*j..].starts_with("::") && !word.is_empty() {
        *j += 2;
        path_tail(code, j, item, out);
    } else {
        out.push(item);
    }
}

fn skip_ws(b: &[u8], j: &mut usize) {
    while *j < b.len() && b[*j].is_ascii_whitespace() {
        *j += 1;
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Blanks comments (doc comments too), string and char literals, keeping every newline.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if (b[i] == b'r' || b[i..].starts_with(b"br"))
            && (i == 0 || !is_ident(b[i - 1]))
            && raw_string_start(&b[i..]).is_some()
        {
            let (hashes, open) = raw_string_start(&b[i..]).unwrap();
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            out.extend(std::iter::repeat_n(b' ', open));
            i += open;
            while i < b.len() && !b[i..].starts_with(&close) {
                blank(&mut out, b[i]);
                i += 1;
            }
            out.extend(std::iter::repeat_n(b' ', close.len()));
            i += close.len();
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}', '"'); otherwise a lifetime.
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(i + 1 + ch)
            };
            match end {
                Some(e) => {
                    for &c in &b[i..=e] {
                        blank(&mut out, c);
                    }
                    i = e + 1;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Multi-byte characters were blanked byte by byte or copied whole, so this stays UTF-8.
    String::from_utf8(out).unwrap()
}

/// `r"`, `r#"`, `br##"` …: the number of hashes and the length of the opening.
fn raw_string_start(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = if b.starts_with(b"br") { 2 } else { 1 };
    let mut hashes = 0;
    while b.get(i) == Some(&b'#') {
        hashes += 1;
        i += 1;
    }
    (b.get(i) == Some(&b'"')).then_some((hashes, i + 1))
}

/// Blanks every item marked `#[cfg(test)]`: up to its `;`, or its whole `{ … }` block.
fn without_tests(code: &str) -> String {
    let mut b = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]").map(|p| p + from) {
        let mut i = p;
        while i < b.len() && b[i] != b'{' && b[i] != b';' {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i = matching_brace(&b, i);
        }
        for c in &mut b[p..(i + 1).min(code.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = i + 1;
        if from >= code.len() {
            break;
        }
    }
    String::from_utf8(b).unwrap()
}

fn lines_blanked(before: &str, after: &str) -> usize {
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| !a.trim().is_empty() && b.trim().is_empty())
        .count()
}

fn matching_brace(b: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (i, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    b.len() - 1
}

/// Every `fn` with a body: its name, first line (1-based) and length in lines.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("fn ").map(|p| p + from) {
        from = p + 3;
        if p > 0 && is_ident(b[p - 1]) {
            continue;
        }
        let name: String = code[p + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let mut i = p;
        while i < b.len() && b[i] != b'{' && b[i] != b';' {
            i += 1;
        }
        if i >= b.len() || b[i] == b';' {
            continue;
        }
        let end = matching_brace(b, i);
        let first = code[..p].matches('\n').count() + 1;
        let last = code[..end].matches('\n').count() + 1;
        out.push((name, first, last - first + 1));
    }
    out
}

/// Every circle, found one at a time and broken at its first edge to find the next.
fn all_cycles(mut graph: Graph) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(cycle) = find_cycle(&graph) {
        let why: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("    {} → {}  ({})", w[0], w[1], graph[&w[0]][&w[1]]))
            .collect();
        graph.get_mut(&cycle[0]).unwrap().remove(&cycle[1]);
        out.push(format!("{}\n{}", cycle.join(" → "), why.join("\n")));
    }
    out
}

/// A circle in the graph, as the nodes walked, first repeated at the end.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit<'g>(
        node: &'g str,
        graph: &'g Graph,
        done: &mut BTreeSet<&'g str>,
        stack: &mut Vec<&'g str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, graph, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut done, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}
