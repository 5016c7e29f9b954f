//! The shape of the code, checked: every file under `src/` is in one layer,
//! and imports only point down (see ARCHITECTURE.md, "Layers").
//!
//! ```text
//! entry     main, cli (clap types, flags → option structs)
//! commands  diagnose, route/explain/…, report/snapshot, watch, demo, doctor
//! outputs   publish, renderers, the note, the audit log, the tag bridge
//! sources   GitLab client, files, .runneriq.yml, traces, the LLM, Electricity Maps
//! analysis  pure: trace, classify, noise, fleet tables, metrics, triage, correlate
//! model     data every layer shares: API models, fleet model, errors, clock, text
//! ```
//!
//! A file may import its own layer or any layer below, with three more rules:
//! analysis never imports a source or an output (that is "below" too: sources
//! sit above analysis because they may classify what they read while they
//! read it), a command never imports another command (what they share lives
//! below them), and no two files import each other, directly or round a loop.
//!
//! An import is any `crate::…`, `super::…` or child-module path in the code,
//! not in comments, strings or `#[cfg(test)]` modules (a test may reach
//! anywhere). Where a rule has an exception, [`EXCEPTIONS`] names it with the
//! reason; cycles have none.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Model,
    Analysis,
    Source,
    Output,
    Command,
    Entry,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Model => "model",
            Layer::Analysis => "analysis",
            Layer::Source => "source",
            Layer::Output => "output",
            Layer::Command => "command",
            Layer::Entry => "entry",
        })
    }
}

/// Each file's layer: the first entry that is the file's path or a folder
/// holding it. A new file must be placed here (the test says so).
const LAYERS: &[(&str, Layer)] = &[
    // entry
    ("src/main.rs", Layer::Entry),
    ("src/lib.rs", Layer::Entry),
    ("src/core.rs", Layer::Entry),
    ("src/cli.rs", Layer::Entry),
    // commands
    ("src/diagnose/mod.rs", Layer::Command),
    ("src/fleet/command.rs", Layer::Command),
    ("src/report/command.rs", Layer::Command),
    ("src/demo/", Layer::Command),
    ("src/doctor.rs", Layer::Command),
    ("src/watch/command.rs", Layer::Command),
    ("src/migrate/mod.rs", Layer::Command),
    // outputs
    ("src/publish/", Layer::Output),
    ("src/diagnose/note.rs", Layer::Output),
    ("src/diagnose/assemble.rs", Layer::Output),
    ("src/classify/render.rs", Layer::Output),
    ("src/report/render.rs", Layer::Output),
    ("src/fleet/render.rs", Layer::Output),
    ("src/fleet/audit.rs", Layer::Output),
    ("src/fleet/tags.rs", Layer::Output),
    ("src/watch/render.rs", Layer::Output),
    // model
    ("src/error.rs", Layer::Model),
    ("src/clock.rs", Layer::Model),
    ("src/text.rs", Layer::Model),
    ("src/gitlab/models.rs", Layer::Model),
    ("src/gitlab/bounded.rs", Layer::Model),
    ("src/gitlab/test_report.rs", Layer::Model),
    ("src/fleet/model.rs", Layer::Model),
    // sources
    ("src/gitlab/", Layer::Source),
    ("src/input.rs", Layer::Source),
    ("src/http.rs", Layer::Source),
    ("src/config.rs", Layer::Source),
    ("src/diagnose/fetch.rs", Layer::Source),
    ("src/diagnose/history.rs", Layer::Source),
    ("src/fleet/export.rs", Layer::Source),
    ("src/fleet/load.rs", Layer::Source),
    ("src/fleet/carbon_live.rs", Layer::Source),
    ("src/fleet/tiebreak.rs", Layer::Source),
    ("src/report/source.rs", Layer::Source),
    ("src/watch/source.rs", Layer::Source),
    ("src/llm/mod.rs", Layer::Source),
    ("src/llm/provider.rs", Layer::Source),
    ("src/llm/budget.rs", Layer::Source),
    ("src/migrate/v6.rs", Layer::Source),
    ("src/migrate/tree.rs", Layer::Source),
    // analysis
    ("src/trace/", Layer::Analysis),
    ("src/classify/", Layer::Analysis),
    ("src/noise/", Layer::Analysis),
    ("src/fleet/", Layer::Analysis),
    ("src/report/flaky_tests.rs", Layer::Analysis),
    ("src/report/", Layer::Analysis),
    ("src/diagnose/junit.rs", Layer::Analysis),
    ("src/diagnose/", Layer::Analysis),
    ("src/llm/redact.rs", Layer::Analysis),
    ("src/llm/prompt.rs", Layer::Analysis),
    ("src/watch/", Layer::Analysis),
];

/// Imports the layer rules allow by name: (importing file, imported file, why).
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "src/classify/catalog.rs",
        "src/input.rs",
        "`Catalog::with_overrides(paths)` reads the user's rule files (with the \
         size cap) as well as validating them: the public entry point that \
         `classify`, `diagnose`, `doctor` and tests/properties.rs call; parsing \
         and validation (`Catalog::build`) stay pure",
    ),
    (
        "src/llm/mod.rs",
        "src/publish/sanitize.rs",
        "an LLM's prose is made inert (`sanitize::untrusted_text`) where it \
         enters the program, before it is stored in an `Opinion`, so no output \
         can forget to (ARCHITECTURE.md: untrusted text stays inert)",
    ),
];

fn layer_of(file: &str) -> Option<Layer> {
    LAYERS
        .iter()
        .find(|(p, _)| file == *p || (p.ends_with('/') && file.starts_with(p)))
        .map(|(_, l)| *l)
}

/// `src/` as module paths (`["fleet", "route"]`) → file (`src/fleet/route.rs`).
fn modules(root: &Path) -> BTreeMap<Vec<String>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let mut segs: Vec<String> = rel
                .trim_start_matches("src/")
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_string)
                .collect();
            if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
                segs.pop();
            }
            if segs == ["main"] {
                // The binary: its `runneriq::` paths are read as `crate::`.
                segs = vec!["<main>".into()];
            }
            out.insert(segs, rel);
        }
    }
    out
}

/// The code of a file with comments, string and char literals blanked and
/// `#[cfg(test)]` items removed; line breaks kept, so positions keep their
/// line numbers.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            out.push(b'r');
            i += 1;
            while i <= j {
                out.push(b' ');
                i += 1;
            }
            while i < b.len() && !b[i..].starts_with(&close) {
                blank(&mut out, b[i]);
                i += 1;
            }
            let n = close.len().min(b.len() - i);
            out.extend(std::iter::repeat_n(b' ', n));
            i += n;
        } else if c == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    out.push(b' ');
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                // Multi-byte UTF-8 char literal.
                let s = &src[i + 1..];
                let ch = s.chars().next().unwrap_or(' ');
                (s[ch.len_utf8()..].starts_with('\'')).then(|| i + 1 + ch.len_utf8())
            };
            match end {
                Some(e) => {
                    while i <= e {
                        blank(&mut out, b[i]);
                        i += 1;
                    }
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    let code = String::from_utf8_lossy(&out).into_owned();
    strip_cfg_test(&code)
}

/// Blanks every item after `#[cfg(test)]` up to its closing brace (or `;`).
fn strip_cfg_test(code: &str) -> String {
    let mut b = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let start = from + p;
        let mut i = start;
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b';' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        let end = i.min(b.len() - 1) + 1;
        for x in &mut b[start..end] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
        from = i + 1;
        if from >= code.len() {
            break;
        }
    }
    String::from_utf8(b).unwrap()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Reads a path starting at `i` (after its first segment and `::`), expanding
/// `{…}` groups: every full path it names, as segments.
fn read_tree(b: &[u8], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let mut path = prefix;
    loop {
        skip_ws(&mut i);
        if i < b.len() && b[i] == b'{' {
            i += 1;
            loop {
                skip_ws(&mut i);
                if i >= b.len() {
                    return i;
                }
                if b[i] == b'}' {
                    return i + 1;
                }
                if b[i] == b',' {
                    i += 1;
                    continue;
                }
                i = read_tree(b, i, path.clone(), out);
            }
        }
        let s = i;
        while i < b.len() && (is_ident(b[i]) || b[i] == b'*') {
            i += 1;
        }
        if s == i {
            out.push(path);
            return i;
        }
        let seg = String::from_utf8_lossy(&b[s..i]).into_owned();
        if seg != "self" && seg != "*" {
            path.push(seg);
        }
        skip_ws(&mut i);
        if b[i..].starts_with(b"::") {
            i += 2;
            continue;
        }
        out.push(path);
        return i;
    }
}

struct Import {
    line: usize,
    text: String,
    to: String,
}

/// The imports of one file: where each names another file of the crate.
fn imports(file_mod: &[String], code: &str, mods: &BTreeMap<Vec<String>, String>) -> Vec<Import> {
    let b = code.as_bytes();
    // A file's own module (for `super::` and child paths).
    let here: Vec<String> = file_mod.to_vec();
    let children: BTreeSet<&str> = mods
        .keys()
        .filter(|k| k.len() == here.len() + 1 && k.starts_with(&here))
        .map(|k| k.last().unwrap().as_str())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_ident(b[i]) || (i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        let word = &code[s..i];
        if !b[i..].starts_with(b"::") {
            continue;
        }
        let base: Vec<String> = match word {
            "crate" => Vec::new(),
            "runneriq" if here == ["<main>"] => Vec::new(),
            "super" => {
                // `super::super::…`
                let mut base = here[..here.len().saturating_sub(1)].to_vec();
                let mut j = i + 2;
                while code[j..].starts_with("super::") {
                    base.pop();
                    j += 7;
                }
                i = j - 2;
                base
            }
            w if children.contains(w) && !here.is_empty() => {
                let mut base = here.clone();
                base.push(w.to_string());
                base
            }
            _ => continue,
        };
        let line = code[..s].matches('\n').count() + 1;
        let mut paths = Vec::new();
        let end = read_tree(b, i + 2, base, &mut paths);
        let text: String = code[s..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for p in paths {
            // The longest prefix that is a file of the crate.
            let target = (0..=p.len())
                .rev()
                .find_map(|n| mods.get(&p[..n]).filter(|_| n > 0));
            if let Some(t) = target {
                out.push(Import {
                    line,
                    text: text.clone(),
                    to: t.clone(),
                });
            }
        }
        i = end;
    }
    out
}

/// (from, to) → the first import that makes the edge.
type Graph = BTreeMap<(String, String), (usize, String)>;

fn graph(root: &Path) -> (Graph, BTreeMap<String, Layer>, Vec<String>) {
    let mods = modules(root);
    let mut g = Graph::new();
    let mut layers = BTreeMap::new();
    let mut unplaced = Vec::new();
    for (m, file) in &mods {
        match layer_of(file) {
            Some(l) => {
                layers.insert(file.clone(), l);
            }
            None => unplaced.push(file.clone()),
        }
        let src = std::fs::read_to_string(root.join(file)).unwrap();
        let code = code_only(&src);
        for imp in imports(m, &code, &mods) {
            if imp.to == *file || imp.to == "src/lib.rs" {
                continue;
            }
            g.entry((file.clone(), imp.to))
                .or_insert((imp.line, imp.text));
        }
    }
    (g, layers, unplaced)
}

/// Files on a cycle: strongly connected components of more than one file.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in g.keys() {
        adj.entry(from).or_default().push(to);
        adj.entry(to).or_default();
    }
    // Kosaraju: order by finish time, then walk the reversed graph.
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for &start in adj.keys() {
        if seen.contains(start) {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        seen.insert(start);
        while let Some((n, k)) = stack.pop() {
            if let Some(&next) = adj[n].get(k) {
                stack.push((n, k + 1));
                if seen.insert(next) {
                    stack.push((next, 0));
                }
            } else {
                order.push(n);
            }
        }
    }
    let mut radj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in g.keys() {
        radj.entry(to).or_default().push(from);
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for &n in order.iter().rev() {
        if !assigned.insert(n) {
            continue;
        }
        let mut comp = vec![n.to_string()];
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            for &y in radj.get(x).map(Vec::as_slice).unwrap_or(&[]) {
                if assigned.insert(y) {
                    comp.push(y.to_string());
                    stack.push(y);
                }
            }
        }
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out.sort();
    out
}

fn violations(root: &Path) -> (Vec<String>, Vec<String>) {
    let (g, layers, unplaced) = graph(root);
    let mut bad: Vec<String> = unplaced
        .iter()
        .map(|f| format!("{f}: in no layer (add it to LAYERS in tests/architecture.rs)"))
        .collect();
    let mut excused = Vec::new();
    let mut used = BTreeSet::new();
    for ((from, to), (line, text)) in &g {
        let (Some(&lf), Some(&lt)) = (layers.get(from), layers.get(to)) else {
            continue;
        };
        let rule = if lt > lf {
            Some(format!("{lf} imports {lt}"))
        } else if lf == Layer::Command && lt == Layer::Command {
            Some("a command imports another command".to_string())
        } else {
            None
        };
        let Some(rule) = rule else { continue };
        let msg = format!("{from}:{line}: `{text}` → {to} ({rule})");
        match EXCEPTIONS.iter().find(|(f, t, _)| f == from && t == to) {
            Some((f, t, why)) => {
                used.insert((*f, *t));
                excused.push(format!("{msg}\n    exception: {why}"));
            }
            None => bad.push(msg),
        }
    }
    for (f, t, _) in EXCEPTIONS {
        if !used.contains(&(*f, *t)) {
            bad.push(format!(
                "exception {f} → {t} is no longer needed: remove it from EXCEPTIONS"
            ));
        }
    }
    for comp in cycles(&g) {
        let inside: BTreeSet<&String> = comp.iter().collect();
        let edges: Vec<String> = g
            .iter()
            .filter(|((f, t), _)| inside.contains(f) && inside.contains(t))
            .map(|((f, t), (line, text))| format!("    {f}:{line}: `{text}` → {t}"))
            .collect();
        bad.push(format!(
            "import cycle between {} files: {}\n{}",
            comp.len(),
            comp.join(", "),
            edges.join("\n")
        ));
    }
    (bad, excused)
}

#[test]
fn imports_point_down_and_never_round_a_loop() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (bad, excused) = violations(&root);
    for e in &excused {
        println!("allowed: {e}");
    }
    assert!(
        bad.is_empty(),
        "{} architecture violation(s) (see ARCHITECTURE.md, \"Layers\"):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_reader_sees_what_the_compiler_sees() {
    let code = code_only(
        "use crate::a::{b::{self, C}, d};\n// use crate::x;\nlet s = \"crate::y\";\n\
         let c = '{';\n#[cfg(test)]\nmod tests { use crate::z; }\nfn f() { super::w::g() }\n",
    );
    assert!(!code.contains("crate::x") && !code.contains("crate::y") && !code.contains("crate::z"));
    let mut mods = BTreeMap::new();
    for (m, f) in [
        (vec!["a"], "src/a/mod.rs"),
        (vec!["a", "b"], "src/a/b.rs"),
        (vec!["p"], "src/p/mod.rs"),
        (vec!["p", "q"], "src/p/q.rs"),
        (vec!["p", "w"], "src/p/w.rs"),
    ] {
        mods.insert(
            m.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            f.to_string(),
        );
    }
    let here = vec!["p".to_string(), "q".to_string()];
    let to: Vec<String> = imports(&here, &code, &mods)
        .into_iter()
        .map(|i| i.to)
        .collect();
    assert_eq!(
        to,
        ["src/a/b.rs", "src/a/b.rs", "src/a/mod.rs", "src/p/w.rs"]
    );
}
