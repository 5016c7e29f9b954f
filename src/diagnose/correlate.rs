//! Correlation of error locations in a log with the files a change touched.
//!
//! Pure functions: extract `path:line` references from evidence lines (and
//! their context) in the formats of common compilers, test runners and
//! linters, normalise away CI checkout prefixes, and match them against the
//! changed paths of the merge request or commit. A note may say "points at a
//! file you changed" only when a reference really matches a changed path, so
//! the matching errs on the side of silence (dependency directories never
//! match; a bare file name matches only when exactly one changed file has it).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::classify::Evidence;

/// A file location named in a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRef {
    /// Normalised: `/` separators, CI checkout prefixes and `./` removed.
    pub path: String,
    pub line: Option<u32>,
    pub col: Option<u32>,
}

/// A reference that matched a changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileHit {
    /// The changed path, as the diff names it (repository-relative).
    pub path: String,
    pub line: Option<u32>,
}

/// References and hits kept per job.
const MAX_REFS: usize = 10;

/// A path that ends in `.ext` (the extension starts with a letter, so version
/// numbers such as `python3.10:12` are not paths), optionally after a Windows
/// drive (`C:\`; a word boundary keeps `file:` and `http:` from looking like one).
const PATH: &str =
    r#"(?:\b[A-Za-z]:\\)?[^\s:"'()\[\]<>,;=|*?`]*[A-Za-z0-9_\-]\.[A-Za-z][A-Za-z0-9_]{0,11}"#;

struct Pattern {
    re: Regex,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let specs = [
        // Python tracebacks: File "x.py", line 12
        r#"File "(?P<path>[^"]+)", line (?P<line>\d+)"#.to_string(),
        // rustc: --> src/main.rs:3:5
        format!(r"-->\s*(?P<path>{PATH}):(?P<line>\d+)(?::(?P<col>\d+))?"),
        // javac via Maven: /x/A.java:[155,27]
        format!(r"(?P<path>{PATH}):\[(?P<line>\d+),(?P<col>\d+)\]"),
        // tsc, MSBuild, dotnet: src/a.ts(12,5): error TS2322
        format!(r"(?P<path>{PATH})\((?P<line>\d+),(?P<col>\d+)\)"),
        // kotlinc (old): e: /x/A.kt: (12, 5): message
        format!(r"(?P<path>{PATH}): \((?P<line>\d+), (?P<col>\d+)\)"),
        // PHP: in /x/a.php on line 12
        format!(r"(?P<path>{PATH}) on line (?P<line>\d+)"),
        // gcc, clang, go, eslint (unix), pytest, rspec, node stacks: a.c:12:5
        format!(r"(?P<path>{PATH}):(?P<line>\d+)(?::(?P<col>\d+))?"),
        // pytest node ids: FAILED tests/test_x.py::test_y
        r"(?P<path>[^\s:]+\.py)::".to_string(),
        // jest/vitest: FAIL src/a.test.ts
        format!(r"^\s*(?:FAIL|PASS)\s+(?P<path>{PATH})\s*"),
        // eslint "stylish" and similar: a line that is only a path with a `/`
        format!(r"^\s*(?P<path>[^\s:]*/{PATH})\s*$"),
    ];
    specs
        .iter()
        .filter_map(|s| Regex::new(s).ok().map(|re| Pattern { re }))
        .collect()
});

/// CI checkout directories, stripped so that a path reads as repository-relative.
static CI_PREFIXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // GitLab shell executor: <builds_dir>/<short token>/<concurrency id>/<group>/<project>/
        r"^.*?/builds/[A-Za-z0-9_-]{8,}/\d+/[^/]+/[^/]+/",
        // GitLab docker/k8s executor: /builds/<group>/<project>/ (one namespace level;
        // deeper groups are left to suffix matching)
        r"^/builds/[^/]+/[^/]+/",
        // GitHub Actions in a container, and on the host
        r"^/__w/[^/]+/[^/]+/",
        r"^/home/runner/work/[^/]+/[^/]+/",
        r"^/github/workspace/",
        // Travis CI
        r"^/home/travis/build/[^/]+/[^/]+/",
        // Jenkins
        r"^/var/lib/jenkins/workspace/[^/]+/",
        // Buildkite, CircleCI
        r"^/var/lib/buildkite-agent/builds/[^/]+/[^/]+/[^/]+/",
        r"^/home/circleci/project/",
    ]
    .iter()
    .filter_map(|s| Regex::new(s).ok())
    .collect()
});

/// Directories whose files are never "your change", whatever their name.
const DEPENDENCY_DIRS: &[&str] = &[
    "/site-packages/",
    "/dist-packages/",
    "/node_modules/",
    "/.cargo/registry/",
    "/.cargo/git/",
    "/.rustup/",
    "/go/pkg/mod/",
    "/vendor/bundle/",
    "/.m2/repository/",
    "/usr/lib/",
    "/usr/include/",
    "/usr/local/lib/",
    "/opt/conda/",
    "/rustc/",
];

/// File references in one line of log text, in order of appearance, without
/// duplicates. `prefixes` are extra checkout directories to strip (such as
/// `CI_PROJECT_DIR`).
pub fn extract(text: &str, prefixes: &[String]) -> Vec<FileRef> {
    let mut found: Vec<(usize, FileRef)> = Vec::new();
    for p in PATTERNS.iter() {
        for caps in p.re.captures_iter(text) {
            let Some(m) = caps.name("path") else { continue };
            let before = &text[..m.start()];
            let mut raw = m.as_str();
            if raw.starts_with("//") {
                if before.ends_with("file:") {
                    raw = &raw[raw.len() - raw.trim_start_matches('/').len() - 1..];
                } else {
                    continue; // a URL, not a file
                }
            }
            let num = |name: &str| caps.name(name).and_then(|v| v.as_str().parse::<u32>().ok());
            let path = normalize(raw, prefixes);
            if path.is_empty() || !path.contains('.') {
                continue;
            }
            found.push((
                m.start(),
                FileRef {
                    path,
                    line: num("line"),
                    col: num("col"),
                },
            ));
        }
    }
    // Several patterns can see the same spot: one entry per path, the first
    // one that has a line number.
    found.sort_by_key(|(pos, _)| *pos);
    let mut out: Vec<FileRef> = Vec::new();
    for (_, r) in found {
        match out.iter_mut().find(|e| e.path == r.path) {
            Some(e) => {
                if e.line.is_none() && r.line.is_some() {
                    *e = r;
                }
            }
            None => out.push(r),
        }
    }
    out
}

/// `\` → `/`, a known checkout prefix removed, leading `./` removed.
pub fn normalize(path: &str, prefixes: &[String]) -> String {
    let mut p = path.trim().replace('\\', "/");
    for pre in prefixes {
        let pre = pre.trim_end_matches('/');
        if !pre.is_empty() {
            if let Some(rest) = p.strip_prefix(pre).and_then(|r| r.strip_prefix('/')) {
                p = rest.to_string();
                break;
            }
        }
    }
    if p.starts_with('/') {
        for re in CI_PREFIXES.iter() {
            if let Some(m) = re.find(&p) {
                p = p[m.end()..].to_string();
                break;
            }
        }
    }
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.to_string();
    }
    p
}

fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn in_dependency_dir(path: &str) -> bool {
    let with_slash = format!("/{path}");
    DEPENDENCY_DIRS.iter().any(|d| with_slash.contains(d))
}

/// The changed path a normalised reference points at, if any.
///
/// - equal paths match;
/// - a longer reference (an absolute path whose checkout prefix was not
///   recognised) matches a changed path it ends with, when that changed path
///   has at least two components (`build.rs` alone is too common);
/// - a shorter reference (relative to a subdirectory, or a bare file name from
///   a stack trace) matches a changed path that ends with it, when it has at
///   least two components or its file name is unique among the changed files.
pub fn match_changed<'a>(reference: &str, changed: &'a [String]) -> Option<&'a str> {
    if in_dependency_dir(reference) {
        return None;
    }
    let r = components(reference);
    if r.is_empty() {
        return None;
    }
    let absolute = reference.starts_with('/') || reference.get(1..3) == Some(":/");
    let mut best: Option<&'a str> = None;
    for c_path in changed {
        let c = components(c_path);
        if c.is_empty() {
            continue;
        }
        if c == r {
            return Some(c_path);
        }
        if best.is_some() {
            continue;
        }
        if r.len() > c.len() && r.ends_with(&c) && (c.len() >= 2 || !absolute && r.len() <= 1) {
            best = Some(c_path);
        } else if c.len() > r.len() && c.ends_with(&r) {
            let unique_name = r.len() == 1
                && changed
                    .iter()
                    .filter(|o| components(o).last() == r.last())
                    .count()
                    == 1;
            if r.len() >= 2 || unique_name {
                best = Some(c_path);
            }
        }
    }
    best
}

/// References in a job's evidence (evidence lines first, then the lines after
/// and before them) and the changed files they point at, most relevant first.
pub fn correlate(
    evidence: &[Evidence],
    changed: &[String],
    prefixes: &[String],
) -> (Vec<FileRef>, Vec<FileHit>) {
    let mut refs: Vec<FileRef> = Vec::new();
    let mut hits: Vec<FileHit> = Vec::new();
    for e in evidence {
        let texts = std::iter::once(e.text.as_str())
            .chain(e.after.iter().map(|c| c.text.as_str()))
            .chain(e.before.iter().rev().map(|c| c.text.as_str()));
        for text in texts {
            for r in extract(text, prefixes) {
                if let Some(c) = match_changed(&r.path, changed) {
                    if !hits.iter().any(|h| h.path == c) && hits.len() < MAX_REFS {
                        hits.push(FileHit {
                            path: c.to_string(),
                            line: r.line,
                        });
                    }
                }
                if !refs.iter().any(|x| x.path == r.path) && refs.len() < MAX_REFS {
                    refs.push(r);
                }
            }
        }
    }
    (refs, hits)
}

/// The file a verdict may name: the first changed file hit, else the first
/// reference that reads as a repository path (relative, not a dependency).
pub fn headline_file<'a>(refs: &'a [FileRef], hits: &'a [FileHit]) -> Option<(&'a str, bool)> {
    if let Some(h) = hits.first() {
        return Some((h.path.as_str(), true));
    }
    refs.iter()
        .find(|r| !r.path.starts_with('/') && !in_dependency_dir(&r.path) && r.path.contains('/'))
        .map(|r| (r.path.as_str(), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ContextLine;

    fn one(text: &str) -> Vec<(String, Option<u32>, Option<u32>)> {
        extract(text, &[])
            .into_iter()
            .map(|r| (r.path, r.line, r.col))
            .collect()
    }

    fn p(path: &str, line: u32, col: Option<u32>) -> (String, Option<u32>, Option<u32>) {
        (path.to_string(), Some(line), col)
    }

    #[test]
    fn compiler_formats() {
        assert_eq!(
            one("  --> src/parser.rs:42:7"),
            vec![p("src/parser.rs", 42, Some(7))]
        );
        assert_eq!(
            one(
                "/__w/pytorch/pytorch/torch/csrc/profiler/kineto_metadata.cpp:128:26: error: no matching"
            ),
            vec![p("torch/csrc/profiler/kineto_metadata.cpp", 128, Some(26))]
        );
        assert_eq!(
            one(
                "[ERROR] /builds/workspace/Guava/guava/src/com/google/common/collect/ImmutableMap.java:[155,27] error: incompatible"
            ),
            vec![p(
                "guava/src/com/google/common/collect/ImmutableMap.java",
                155,
                Some(27)
            )]
        );
        assert_eq!(
            one("src/app.ts(12,5): error TS2322: Type 'string'"),
            vec![p("src/app.ts", 12, Some(5))]
        );
        assert_eq!(
            one("./cmd/server/main.go:31:2: undefined: foo"),
            vec![p("cmd/server/main.go", 31, Some(2))]
        );
        assert_eq!(
            one(r"C:\builds\g\p\src\Foo.cs(3,9): error CS1002: ; expected"),
            vec![p("C:/builds/g/p/src/Foo.cs", 3, Some(9))]
        );
        assert_eq!(
            one("e: file:///home/u/app/src/main/kotlin/App.kt:7:5 Unresolved reference"),
            vec![p("/home/u/app/src/main/kotlin/App.kt", 7, Some(5))]
        );
        assert_eq!(
            one("PHP Parse error: syntax error in /builds/g/p/src/a.php on line 9"),
            vec![p("src/a.php", 9, None)]
        );
    }

    #[test]
    fn test_runner_and_linter_formats() {
        assert_eq!(
            one(r#"  File "/builds/grp/proj/app/models.py", line 31, in save"#),
            vec![p("app/models.py", 31, None)]
        );
        assert_eq!(
            one("FAILED tests/test_api.py::test_get - AssertionError"),
            vec![("tests/test_api.py".to_string(), None, None)]
        );
        assert_eq!(
            one("tests/test_api.py:88: AssertionError"),
            vec![p("tests/test_api.py", 88, None)]
        );
        assert_eq!(
            one("    at Object.<anonymous> (src/sum.test.js:5:18)"),
            vec![p("src/sum.test.js", 5, Some(18))]
        );
        assert_eq!(
            one("FAIL src/components/Button.test.tsx"),
            vec![("src/components/Button.test.tsx".to_string(), None, None)]
        );
        assert_eq!(
            one("/home/travis/build/o/r/lib/index.js"),
            vec![("lib/index.js".to_string(), None, None)]
        );
        assert_eq!(
            one("# ./spec/models/user_spec.rb:12:in `block (2 levels)'"),
            vec![p("spec/models/user_spec.rb", 12, None)]
        );
        assert_eq!(
            one("\tat com.acme.Parser.parse(Parser.java:42)"),
            vec![p("Parser.java", 42, None)]
        );
    }

    #[test]
    fn not_paths() {
        assert!(one("fatal: unable to access 'https://github.com/KTH/spork.git/': 503").is_empty());
        assert!(one("Python 3.10:12 and 12:30:45").is_empty());
        assert!(one("see http://example.com/a.js:10").is_empty());
        assert!(one("ERROR: Job failed: exit code 1").is_empty());
    }

    #[test]
    fn normalisation() {
        let n = |s| normalize(s, &[]);
        assert_eq!(n("/builds/group/project/src/a.rs"), "src/a.rs");
        assert_eq!(n("/__w/x/x/src/a.rs"), "src/a.rs");
        assert_eq!(n("/home/travis/build/o/r/src/a.rs"), "src/a.rs");
        assert_eq!(n("/home/runner/work/r/r/src/a.rs"), "src/a.rs");
        assert_eq!(
            n("/home/gitlab-runner/builds/Zx8_abcd/0/g/p/src/a.rs"),
            "src/a.rs"
        );
        assert_eq!(n("././src/a.rs"), "src/a.rs");
        assert_eq!(n(r"src\win\a.cs"), "src/win/a.cs");
        assert_eq!(n("/usr/include/stdio.h"), "/usr/include/stdio.h");
        assert_eq!(
            normalize(
                "/builds/g/sub/proj/src/a.rs",
                &["/builds/g/sub/proj".to_string()]
            ),
            "src/a.rs"
        );
    }

    fn changed(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matching_changed_paths() {
        let c = changed(&[
            "src/parser.rs",
            "crates/core/src/lib.rs",
            "build.rs",
            "docs/README.md",
        ]);
        assert_eq!(match_changed("src/parser.rs", &c), Some("src/parser.rs"));
        // Unrecognised absolute checkout: suffix match on components.
        assert_eq!(
            match_changed("/ci/deep/group/proj/src/parser.rs", &c),
            Some("src/parser.rs")
        );
        // Relative to a workspace member.
        assert_eq!(
            match_changed("src/lib.rs", &c),
            Some("crates/core/src/lib.rs")
        );
        // A unique bare name (Java stack traces) matches; `parser.rs` is unique.
        assert_eq!(match_changed("parser.rs", &c), Some("src/parser.rs"));
        // A one-component changed path does not match any absolute path ending in it.
        assert_eq!(match_changed("/root/.cache/x/build.rs", &c), None);
        assert_eq!(match_changed("build.rs", &c), Some("build.rs"));
        // Components, not string suffixes.
        assert_eq!(match_changed("mysrc/parser.rs", &c), None);
        assert_eq!(match_changed("xparser.rs", &c), None);
        // Dependencies are never your change.
        assert_eq!(
            match_changed("/usr/lib/python3/site-packages/src/parser.rs", &c),
            None
        );
        let dup = changed(&["a/mod.rs", "b/mod.rs"]);
        assert_eq!(match_changed("mod.rs", &dup), None);
    }

    #[test]
    fn correlate_reads_evidence_and_context() {
        let ev = Evidence {
            line: 10,
            text: "error[E0308]: mismatched types".into(),
            rule: "rustc-error".into(),
            category: Some("compilation".into()),
            score: 0.9,
            section: None,
            before: vec![ContextLine {
                line: 9,
                text: "   Compiling app v0.1.0 (/builds/g/p)".into(),
            }],
            after: vec![ContextLine {
                line: 11,
                text: "  --> /builds/g/p/src/parser.rs:3:5".into(),
            }],
        };
        let (refs, hits) = correlate(&[ev], &changed(&["src/parser.rs", "README.md"]), &[]);
        assert_eq!(refs.len(), 1);
        assert_eq!(
            hits,
            vec![FileHit {
                path: "src/parser.rs".into(),
                line: Some(3)
            }]
        );
        assert_eq!(headline_file(&refs, &hits), Some(("src/parser.rs", true)));
        let (refs, hits) = correlate(&[], &[], &[]);
        assert_eq!(headline_file(&refs, &hits), None);
    }
}
