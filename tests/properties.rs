//! Property tests: the trace parser (line reader, cleaner, walker), the
//! classifier and the rules loader never panic on any input, and keep the
//! invariants ARCHITECTURE.md promises.
//!
//! Case counts are small so `cargo test` stays quick (a few seconds). A long
//! run sets proptest's standard variable, for every property at once or one
//! at a time (the rules loader manages about 30 cases a second, the trace
//! properties thousands):
//!
//! ```text
//! PROPTEST_CASES=10000 cargo test --release --test properties
//! PROPTEST_CASES=300000 cargo test --release --test properties -- --exact walker_keeps_its_invariants
//! ```

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::sample::select;

use runneriq::classify::{self, Catalog, ClassifyOptions, DecidedBy, classify_reader};
use runneriq::error::{EXIT_INPUT, describe, exit_code};
use runneriq::trace::lines::DEFAULT_MAX_LINE;
use runneriq::trace::{LineCleaner, LineReader, MAX_SECTIONS, RUNNER_STAGES, TraceWalker};

/// `default` cases, unless `PROPTEST_CASES` asks for another number.
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // Minimised failures are printed; regressions become plain tests below
        // rather than files written next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::builtin().expect("built-in rules"));

/// Bytes that show as an escaped byte string in proptest's failure reports
/// (a `Vec<u8>` shows as one number per line).
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// The input's lines as the architecture defines them: split on `\n`, a
/// trailing `\n` adds no line, an empty input has none.
fn raw_lines(input: &[u8]) -> Vec<&[u8]> {
    if input.is_empty() {
        return Vec::new();
    }
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    body.split(|&b| b == b'\n').collect()
}

// ---------------------------------------------------------------------------
// Generators

/// Lines the built-in rules and the runner facts react to.
const TRIGGER_LINES: &[&str] = &[
    "error[E0308]: mismatched types",
    "  --> src/main.rs:3:5",
    "error: could not compile `foo` (bin \"foo\") due to 1 previous error",
    "--- FAIL: TestParse (0.00s)",
    "FAIL\tgithub.com/x/y\t0.01s",
    "npm ERR! code E404",
    "fatal: unable to access 'https://x/': Could not resolve host: x",
    "No space left on device",
    "Killed",
    "segmentation fault (core dumped)",
    "ERROR: Job failed: exit code 1",
    "ERROR: Job failed (system failure): prepare environment",
    "Job's log exceeded limit of 4194304 bytes.",
    "The command \"make test\" exited with 2.",
    "##[error]Process completed with exit code 1.",
    "Build step 'Invoke top-level Maven targets' marked build as failure",
    "Finished: FAILURE",
    "travis_fold:start:install\r\x1b[0K",
    "travis_time:end:00c9becb:start=1,finish=2,duration=1\r\x1b[0K",
    "Cleaning up project directory and file based variables",
    "error",
    "failed",
];

fn bytes_of(s: impl Into<String>) -> Vec<u8> {
    s.into().into_bytes()
}

/// The runner 18.7+ prefix, sometimes with a wrong stream letter or cut short.
fn runner_prefix() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        select(vec![b'O', b'E', b'X']),
        select(vec![b' ', b'+', b'-']),
        prop::option::weighted(0.2, 0usize..32),
    )
        .prop_map(|(stream, out, cont, cut)| {
            let mut p = bytes_of(format!("2026-01-01T01:00:00.020010Z {stream:02x}"));
            p.push(out);
            p.push(cont);
            if let Some(n) = cut {
                p.truncate(n);
            }
            p
        })
}

/// GitHub Actions style timestamps, with any fraction length.
fn gha_timestamp() -> impl Strategy<Value = Vec<u8>> {
    (0usize..10, any::<bool>()).prop_map(|(frac, space)| {
        let mut s = String::from("2021-03-04T05:06:07");
        if frac > 0 {
            s.push('.');
            s.push_str(&"1234567890"[..frac]);
        }
        s.push('Z');
        if space {
            s.push(' ');
        }
        bytes_of(s)
    })
}

fn section_name() -> impl Strategy<Value = Vec<u8>> {
    let mut pool: Vec<&'static str> = RUNNER_STAGES.to_vec();
    pool.extend(["build", "tests", "step_lint", "a", "x[y]"]);
    prop_oneof![
        6 => select(pool).prop_map(bytes_of),
        2 => "[a-z_]{1,12}".prop_map(bytes_of),
        1 => prop::collection::vec(any::<u8>(), 0..24),
        1 => (120usize..300).prop_map(|n| vec![b'n'; n]),
    ]
}

/// `section_start:<digits>:<name>[opts]\r\e[0K` and its `section_end`, with
/// timestamps that overflow, options left open, endings missing.
fn marker() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop_oneof![
            4 => (1_500_000_000u64..1_800_000_000).prop_map(|t| t.to_string()),
            1 => any::<u64>().prop_map(|t| t.to_string()),
            1 => "[0-9]{0,26}",
        ],
        section_name(),
        select(vec!["", "", "[collapsed=true]", "[collapsed", "[]", "]"]),
        select(vec![
            "\r\x1b[0K",
            "\r\x1b[0K",
            "\r",
            "",
            "\x1b[0K",
            "\r\x1b[0",
            " ",
        ]),
    )
        .prop_map(|(start, time, name, opts, end)| {
            let mut m = bytes_of(if start {
                "section_start:"
            } else {
                "section_end:"
            });
            m.extend_from_slice(time.as_bytes());
            m.push(b':');
            m.extend_from_slice(&name);
            m.extend_from_slice(opts.as_bytes());
            m.extend_from_slice(end.as_bytes());
            m
        })
}

/// ANSI CSI and OSC sequences, whole and cut off.
fn ansi() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => ("[0-9;]{0,8}", select(vec![b'm', b'K', b'G', b'H', b'~'])).prop_map(|(p, f)| {
            let mut v = bytes_of(format!("\x1b[{p}"));
            v.push(f);
            v
        }),
        1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(|p| {
            let mut v = b"\x1b[".to_vec();
            v.extend(p);
            v
        }),
        2 => select(vec![
            "\x1b", "\x1b[", "\x1b[0;m", "\x1b[31;1m", "\x1b]0;title\x07",
            "\x1b]8;;https://example.com\x1b\\", "\x1b]unterminated", "\x1b\x1b[", "\x1bc",
        ])
        .prop_map(bytes_of),
    ]
}

fn text_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[ -~]{0,40}".prop_map(bytes_of),
        3 => select(TRIGGER_LINES.to_vec()).prop_map(bytes_of),
        1 => select(vec!["é", "\u{1F600}", "\u{feff}", "日本語"]).prop_map(bytes_of),
        1 => prop::collection::vec(any::<u8>(), 0..16),
        1 => select(vec![&b"\xff\xfe"[..], b"\xe2\x82", b"\xc3", b"\xed\xa0\x80", b"\x00"])
            .prop_map(<[u8]>::to_vec),
    ]
}

fn control() -> impl Strategy<Value = Vec<u8>> {
    select(vec!["\n", "\n", "\n", "\r", "\r\n", "\t", "\x7f", "\x08"]).prop_map(bytes_of)
}

/// Lines longer than the line buffer, some cutting a UTF-8 sequence in two.
fn long_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (DEFAULT_MAX_LINE - 4..DEFAULT_MAX_LINE + 4).prop_map(|n| {
            let mut v = vec![b'a'; n];
            v.extend_from_slice("é€\n".as_bytes());
            v
        }),
        (DEFAULT_MAX_LINE..3 * DEFAULT_MAX_LINE).prop_map(|n| {
            let mut v = vec![b'x'; n];
            v.extend_from_slice(b"error: at the end\n");
            v
        }),
    ]
}

/// Deep nesting (past the depth limit) and, rarely, more sections than are kept.
fn section_burst() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (1usize..48, any::<bool>()).prop_map(|(n, close)| {
            let mut v = Vec::new();
            for i in 0..n {
                v.extend(bytes_of(format!("section_start:{i}:n{i}\r\x1b[0K\n")));
            }
            if close {
                v.extend_from_slice(b"section_end:99:n0\r\x1b[0K\n");
            }
            v
        }),
        1 => (MAX_SECTIONS..MAX_SECTIONS + 8).prop_map(|n| {
            let mut v = Vec::new();
            for i in 0..n {
                v.extend(bytes_of(format!(
                    "section_start:{i}:s\r\x1b[0Kx\nsection_end:{i}:s\r\x1b[0K\n"
                )));
            }
            v
        }),
    ]
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => text_fragment(),
        6 => control(),
        3 => runner_prefix(),
        1 => gha_timestamp(),
        4 => marker(),
        3 => ansi(),
        1 => prop::collection::vec(any::<u8>(), 0..32),
    ]
}

/// One whole line as a runner writes it: prefix, markers, colours, text, `\n`.
fn log_line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::option::weighted(0.3, runner_prefix()),
        prop::option::weighted(0.15, marker()),
        prop::option::weighted(0.2, ansi()),
        prop_oneof![
            3 => select(TRIGGER_LINES.to_vec()).prop_map(bytes_of),
            2 => "[ -~]{0,40}".prop_map(bytes_of),
            1 => text_fragment(),
        ],
        prop::option::weighted(0.1, ansi()),
        select(vec!["\n", "\n", "\n", "\r\n", ""]),
    )
        .prop_map(|(prefix, marker, colour, text, reset, end)| {
            let mut v = Vec::new();
            for part in [prefix, marker, colour, Some(text), reset]
                .into_iter()
                .flatten()
            {
                v.extend(part);
            }
            v.extend_from_slice(end.as_bytes());
            v
        })
}

/// Mostly structured logs, some plain random bytes.
fn trace_input() -> impl Strategy<Value = Vec<u8>> {
    let structured = (
        prop::collection::vec(prop_oneof![2 => log_line(), 1 => fragment()], 0..60),
        prop::option::weighted(0.06, long_line()),
        prop::option::weighted(0.1, section_burst()),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(frags, long, burst, at_long, at_burst)| {
            let mut v: Vec<u8> = Vec::new();
            let n = frags.len();
            let (il, ib) = (at_long.index(n + 1), at_burst.index(n + 1));
            for (i, f) in frags.into_iter().enumerate() {
                if i == il {
                    v.extend(long.iter().flatten());
                }
                if i == ib {
                    v.extend(burst.iter().flatten());
                }
                v.extend(f);
            }
            if il == n {
                v.extend(long.iter().flatten());
            }
            if ib == n {
                v.extend(burst.iter().flatten());
            }
            v
        })
        .boxed();
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..2048),
        1 => prop::collection::vec(select(vec![b'a', b'\n', b'\r', 0x1b, b'[', b'0', b'K', 0xff]), 0..512),
        2 => structured.clone(),
        // valid UTF-8 throughout
        2 => structured.prop_map(|v| String::from_utf8_lossy(&v).into_owned().into_bytes()),
    ]
}

/// The reader's buffer size: tiny ones split lines and markers across reads.
fn buffer_capacity() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..16, 16usize..256, Just(8192)]
}

// ---------------------------------------------------------------------------
// The trace walker

fn check_walk(input: &[u8], capacity: usize) -> Result<(), TestCaseError> {
    let expected = raw_lines(input);
    let mut seen: u64 = 0;
    let mut problems: Vec<String> = Vec::new();
    let mut reference = LineCleaner::default();
    let facts = TraceWalker::new()
        .walk(BufReader::with_capacity(capacity, input), |line, facts| {
            seen += 1;
            if line.number != seen {
                problems.push(format!("line {} visited as number {}", seen, line.number));
            }
            if line.text.len() > DEFAULT_MAX_LINE {
                problems.push(format!(
                    "line {}: text longer than the line buffer",
                    line.number
                ));
            }
            if line.text.iter().any(|&b| b == 0x1b || b == b'\r') {
                problems.push(format!(
                    "line {}: ESC or CR in the cleaned text",
                    line.number
                ));
            }
            if let Some(raw) = expected.get(seen as usize - 1) {
                let cut = &raw[..raw.len().min(DEFAULT_MAX_LINE)];
                reference.clean(cut);
                if reference.text != line.text {
                    problems.push(format!(
                        "line {}: text is not the cleaned raw line",
                        line.number
                    ));
                }
            }
            if let Some(s) = line.section {
                match facts.sections.get(s) {
                    None => {
                        problems.push(format!("line {}: section {s} not recorded", line.number))
                    }
                    Some(sec) => {
                        if sec.end_line.is_some() {
                            problems
                                .push(format!("line {}: innermost section is closed", line.number));
                        }
                        if sec.kind != line.section_kind {
                            problems.push(format!("line {}: section kind differs", line.number));
                        }
                    }
                }
            }
        })
        .expect("reading from memory never fails");
    prop_assert!(
        problems.is_empty(),
        "{:?}",
        &problems[..problems.len().min(5)]
    );

    let lines = facts.lines;
    prop_assert_eq!(lines, expected.len() as u64, "line count");
    prop_assert_eq!(seen, lines, "every line visited once");
    prop_assert_eq!(facts.bytes, input.len() as u64);
    let long = expected
        .iter()
        .filter(|l| l.len() > DEFAULT_MAX_LINE)
        .count() as u64;
    prop_assert_eq!(facts.long_lines, long);
    if long == 0 {
        prop_assert_eq!(facts.invalid_utf8, std::str::from_utf8(input).is_err());
    }
    for (what, l) in [
        ("job_failed_line", facts.job_failed_line),
        ("output_limit_line", facts.output_limit_line),
        ("failure_anchor", facts.failure_anchor),
    ] {
        if let Some(l) = l {
            prop_assert!((1..=lines).contains(&l), "{what} {l} outside 1..={lines}");
        }
    }
    if let (Some(a), Some(j)) = (facts.failure_anchor, facts.job_failed_line) {
        prop_assert!(a >= j, "failure anchor {a} before the job failed line {j}");
    }
    if facts.system_failure {
        prop_assert!(facts.job_failed_line.is_some());
    }
    prop_assert!(facts.sections.len() <= MAX_SECTIONS);
    for (i, s) in facts.sections.iter().enumerate() {
        prop_assert!(
            !s.name.is_empty() && s.name.chars().count() <= 128,
            "name {:?}",
            s.name
        );
        prop_assert!(
            (1..=lines).contains(&s.start_line),
            "section {i} starts at {}",
            s.start_line
        );
        if let Some(end) = s.end_line {
            prop_assert!(
                s.start_line <= end && end <= lines,
                "section {i}: {}..{end}",
                s.start_line
            );
        } else {
            prop_assert!(s.duration_s.is_none());
        }
        if let Some(p) = s.parent {
            prop_assert!(p < i, "section {i} has parent {p}");
            let parent = &facts.sections[p];
            prop_assert!(parent.start_line <= s.start_line);
            if let Some(pe) = parent.end_line {
                prop_assert!(
                    s.end_line.is_some_and(|e| e <= pe),
                    "section {i} outlives its parent"
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The classifier

fn failure_reason() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.2,
        select(vec![
            "script_failure",
            "stuck_or_timeout_failure",
            "runner_system_failure",
            "missing_dependency_failure",
            "no_matching_runner",
            "unknown_failure",
            "",
            "\u{1b}[31mjunk\n",
        ])
        .prop_map(String::from),
    )
}

fn check_classify(
    input: &[u8],
    capacity: usize,
    opts: &ClassifyOptions,
) -> Result<(), TestCaseError> {
    let c = classify_reader(BufReader::with_capacity(capacity, input), &CATALOG, opts)
        .expect("reading from memory never fails");
    let lines = raw_lines(input).len() as u64;
    prop_assert_eq!(c.log.lines, lines);
    prop_assert_eq!(c.log.bytes, input.len() as u64);
    let in_log = |l: u64| (1..=lines).contains(&l);

    prop_assert!(
        c.evidence.len() <= opts.max_evidence,
        "{} evidence lines",
        c.evidence.len()
    );
    let mut evidence_lines: Vec<u64> = c.evidence.iter().map(|e| e.line).collect();
    evidence_lines.sort_unstable();
    evidence_lines.dedup();
    prop_assert_eq!(evidence_lines.len(), c.evidence.len(), "one entry per line");
    for e in &c.evidence {
        prop_assert!(
            in_log(e.line),
            "evidence line {} outside 1..={lines}",
            e.line
        );
        prop_assert!(
            e.score.is_finite() && (0.0..=1.0).contains(&e.score),
            "score {}",
            e.score
        );
        prop_assert!(e.before.len() <= classify::CONTEXT_LINES);
        prop_assert!(e.after.len() <= classify::CONTEXT_LINES);
        for b in &e.before {
            prop_assert!(
                in_log(b.line) && b.line < e.line,
                "before {} of {}",
                b.line,
                e.line
            );
        }
        for a in &e.after {
            prop_assert!(
                in_log(a.line) && a.line > e.line,
                "after {} of {}",
                a.line,
                e.line
            );
        }
    }

    prop_assert!(
        c.confidence.is_finite() && (0.0..=1.0).contains(&c.confidence),
        "confidence {}",
        c.confidence
    );
    if c.category == "unknown" {
        prop_assert_eq!(c.confidence, 0.0);
        prop_assert_eq!(c.decided_by, DecidedBy::None);
    }
    if c.decided_by == DecidedBy::None {
        prop_assert_eq!(c.category.as_str(), "unknown");
    }
    if c.decided_by == DecidedBy::FailureReason {
        prop_assert!(opts.failure_reason.is_some());
    }
    prop_assert!(c.candidates.len() <= 3);
    for w in c.candidates.windows(2) {
        prop_assert!(w[0].score >= w[1].score, "candidates not best first");
    }
    for s in &c.candidates {
        prop_assert!(
            (0.0..=1.0).contains(&s.score),
            "candidate score {}",
            s.score
        );
    }

    for s in &c.log.sections {
        prop_assert!(in_log(s.start_line));
        if let Some(end) = s.end_line {
            prop_assert!(s.start_line <= end && end <= lines);
        }
    }
    if let Some(name) = &c.section {
        prop_assert!(
            c.log.sections.iter().any(|s| &s.name == name),
            "step {name:?}"
        );
    }
    prop_assert!(c.tail.len() <= opts.tail_lines);
    for t in &c.tail {
        prop_assert!(in_log(t.line));
    }

    // The renderings and JSON take whatever the log held.
    let _ = classify::render::text("log", &c);
    let _ = classify::render::markdown("log", &c);
    prop_assert!(serde_json::to_string(&c).is_ok());
    Ok(())
}

// ---------------------------------------------------------------------------
// The cleaner

fn is_marker_free_ascii(s: &str) -> bool {
    let b = s.as_bytes();
    let marker_at = |i: usize| {
        let rest = &b[i..];
        let after = rest
            .strip_prefix(b"section_start:")
            .or_else(|| rest.strip_prefix(b"section_end:"));
        after.is_some_and(|a| a.first().is_some_and(u8::is_ascii_digit))
    };
    let iso = b.len() >= 19
        && b[..19].iter().zip(b"0000-00-00T00:00:00").all(|(c, p)| {
            if *p == b'0' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        });
    !iso && !s.starts_with("travis_fold:")
        && !s.starts_with("travis_time:")
        && !(0..b.len()).any(marker_at)
}

/// Printable ASCII and tabs that mention what the cleaner looks for.
fn clean_ascii() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => "[ -~\t]{0,24}",
            1 => select(vec![
                "section_start: docs", "section_end:x:y", "section_", "travis_fold", " Z ",
                "2026-01-01", "[0K", "]8;;", "   ", "\t",
            ])
            .prop_map(String::from),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
    .prop_filter("no markers or timestamps", |s| is_marker_free_ascii(s))
}

fn trim_end_ascii(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..n]
}

/// Visible text for the decorated-line property: no `_` (so never a marker or
/// a Travis fold), no control characters.
fn visible_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .:,()'\"=/-]{0,30}"
}

// ---------------------------------------------------------------------------
// The rules loader

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_rules_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "runneriq-prop-{}-{}.yml",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn check_loader(content: &[u8]) -> Result<(), TestCaseError> {
    let path = temp_rules_path();
    std::fs::write(&path, content).expect("write the rules file");
    let result = Catalog::with_overrides(&[path.as_path()]);
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(c) => {
            prop_assert!(!c.rules.is_empty());
            for r in &c.rules {
                prop_assert!(
                    (0.0..=1.0).contains(&r.weight),
                    "rule {}: weight {}",
                    r.id,
                    r.weight
                );
                prop_assert!(!r.pattern.is_empty());
                prop_assert!(r.category.is_none_or(|i| i < c.categories.len()));
            }
        }
        Err(e) => {
            let msg = describe(&e);
            prop_assert_eq!(exit_code(&e), EXIT_INPUT, "not an input error: {}", msg);
            let path = path.display().to_string();
            prop_assert!(
                msg.contains(&path),
                "the message does not name the file: {msg:?}"
            );
            prop_assert!(!msg.contains(['\n', '\r']), "not one line: {msg:?}");
        }
    }
    Ok(())
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Values of the wrong type or shape, for any field.
fn wrong_value() -> impl Strategy<Value = String> {
    select(vec![
        "true",
        "false",
        "null",
        "~",
        "1",
        "-3",
        "0.5",
        "1e309",
        ".nan",
        ".inf",
        "[]",
        "{}",
        "[a, b]",
        "{a: 1}",
        "yes",
        "\"\"",
        "&anchor x",
        "*nope",
        "!!binary aGk=",
        "|\n      block",
        "'single ''quoted'''",
    ])
    .prop_map(String::from)
}

/// Mostly `good`, sometimes `bad`, rarely a value of the wrong type: a file
/// that is nearly right reaches the loader's later checks.
fn mostly(
    good: impl Strategy<Value = String> + 'static,
    bad: impl Strategy<Value = String> + 'static,
) -> BoxedStrategy<String> {
    prop_oneof![50 => good, 2 => bad, 1 => wrong_value()].boxed()
}

fn quoted_from(pool: Vec<&'static str>) -> impl Strategy<Value = String> {
    select(pool).prop_map(quoted)
}

fn rule_id_value() -> BoxedStrategy<String> {
    mostly(
        prop_oneof![
            // built-in ids: overriding or disabling them
            quoted_from(vec![
                "rustc-error",
                "segfault",
                "go-test-fail",
                "oom",
                "npm-err",
                "c-compiler-error"
            ]),
            "[a-z][a-z0-9_-]{0,10}",
        ],
        prop_oneof![
            quoted_from(vec![
                "bad id",
                "",
                "é",
                "line\nbreak",
                "CR\rid",
                "id:colon",
                "tab\there"
            ]),
            Just(quoted(&"a".repeat(65))),
            "[ -~]{0,12}".prop_map(|s| quoted(&s)),
        ],
    )
}

fn category_id_value() -> BoxedStrategy<String> {
    mostly(
        quoted_from(vec![
            "compilation",
            "test_failure",
            "network_transient",
            "oom_killed",
            "ci_config",
            "new_cat",
        ]),
        prop_oneof![
            quoted_from(vec![
                "nope",
                "",
                "with\nnewline",
                "`tick`",
                "CR\rhere",
                "bad id",
                "é"
            ]),
            "[ -~]{0,12}".prop_map(|s| quoted(&s)),
        ],
    )
}

fn pattern_value() -> BoxedStrategy<String> {
    mostly(
        quoted_from(vec![
            "^error",
            "(?i)fail",
            "\\bFAIL\\b",
            "a|b",
            "(?-u:\\xFF)",
            "[[:alpha:]]+",
            "\\d{3}",
            "x{2,5}",
            ".*",
            "\\w+",
            "(?u:\\w)+",
            "é",
            "(?i)ß",
            "\\x{1F600}",
            "^$",
            "(?m)^a$",
            "[^\\n]+",
            "\\s*",
            "(?i)error:\\s+(.+)",
        ]),
        prop_oneof![
            quoted_from(vec![
                // invalid, too big, or valid alone but not in the catalog's byte-oriented matcher
                "(unclosed",
                "[z-a]",
                "*",
                "a{5,2}",
                "\\",
                "(?P<n>a)(?P<n>b)",
                "a{1000}{1000}",
                "\\p{Nope}",
                "(?<",
                "",
                "[",
                "(?z)",
                "\\1",
                "a**",
                "(?i",
                "\\p{Greek}",
                "[[:^alpha:]é]",
                "\\pL",
                "(?u)\\W",
            ]),
            "[ -~]{0,12}".prop_map(|s| quoted(&s)),
        ],
    )
}

fn weight_value() -> BoxedStrategy<String> {
    mostly(
        prop_oneof![
            (0.0f64..=1.0).prop_map(|w| w.to_string()),
            select(vec!["0", "1", "0.0", "1.0", "-0.0", "1e-400"]).prop_map(String::from),
        ],
        prop_oneof![
            (-2.0f64..3.0).prop_map(|w| w.to_string()),
            select(vec![
                ".nan", ".NaN", ".inf", "-.inf", "1e400", "\"0.5\"", "high", "0x1", "1_0"
            ])
            .prop_map(String::from),
        ],
    )
}

fn prefer_value() -> BoxedStrategy<String> {
    mostly(
        select(vec!["first", "last", "\"last\""]).prop_map(String::from),
        select(vec!["middle", "First", "\"\""]).prop_map(String::from),
    )
}

fn bool_value() -> BoxedStrategy<String> {
    mostly(
        select(vec!["true", "false", "false", "false"]).prop_map(String::from),
        select(vec!["True", "\"true\"", "yes", "1", "no"]).prop_map(String::from),
    )
}

fn text_value() -> BoxedStrategy<String> {
    mostly(
        "[ -~]{0,20}".prop_map(|s| quoted(&s)),
        ".{0,10}".prop_map(|s| quoted(&s)),
    )
}

/// `key: value` lines of one mapping: each field present with its
/// probability, then rarely a stray key.
fn fields(
    known: Vec<(&'static str, f64, BoxedStrategy<String>)>,
) -> impl Strategy<Value = Vec<(String, String)>> {
    let picked: Vec<BoxedStrategy<Option<(String, String)>>> = known
        .into_iter()
        .map(|(k, p, v)| prop::option::weighted(p, v.prop_map(move |v| (k.to_string(), v))).boxed())
        .collect();
    let stray = (
        select(vec!["colour", "severity", "id", "Pattern", "\"\"", "? [a]"]),
        wrong_value(),
    )
        .prop_map(|(k, v)| (k.to_string(), v));
    (picked, prop::option::weighted(0.02, stray))
        .prop_map(|(picked, stray)| picked.into_iter().flatten().chain(stray).collect())
}

fn mapping_item(fields: Vec<(String, String)>) -> String {
    if fields.is_empty() {
        return "  - {}\n".to_string();
    }
    let mut s = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        s.push_str(if i == 0 { "  - " } else { "    " });
        s.push_str(&format!("{k}: {v}\n"));
    }
    s
}

fn category_item() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => fields(vec![
            ("id", 0.97, category_id_value()),
            ("title", 0.95, text_value()),
            ("advice", 0.5, text_value()),
            ("transient", 0.3, bool_value()),
        ])
        .prop_map(mapping_item),
        1 => wrong_value().prop_map(|v| format!("  - {v}\n")),
    ]
}

fn rule_item() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => fields(vec![
            ("id", 0.97, rule_id_value()),
            ("category", 0.7, category_id_value()),
            ("pattern", 0.85, pattern_value()),
            ("weight", 0.5, weight_value()),
            ("unless", 0.15, pattern_value()),
            ("prefer", 0.2, prefer_value()),
            ("disabled", 0.1, bool_value()),
        ])
        .prop_map(mapping_item),
        1 => wrong_value().prop_map(|v| format!("  - {v}\n")),
    ]
}

/// A rules file that looks right and is often wrong somewhere, sometimes
/// with a few bytes edited.
fn rules_yaml() -> impl Strategy<Value = Vec<u8>> {
    let section = |name: &'static str, item: BoxedStrategy<String>| {
        prop_oneof![
            2 => Just(String::new()),
            16 => prop::collection::vec(item, 1..5)
                .prop_map(move |items| format!("{name}:\n{}", items.concat())),
            1 => Just(format!("{name}: []\n")),
            1 => wrong_value().prop_map(move |v| format!("{name}: {v}\n")),
        ]
    };
    let doc = (
        section("categories", category_item().boxed()),
        section("rules", rule_item().boxed()),
        any::<bool>(),
        prop::option::weighted(
            0.05,
            select(vec![
                "version: 2\n",
                "%YAML 1.2\n---\n",
                "---\n",
                "...\n",
                "# comment\n",
            ]),
        ),
        prop::option::weighted(0.03, wrong_value()),
    )
        .prop_map(|(cats, rules, rules_first, extra, whole)| {
            if let Some(w) = whole {
                return w;
            }
            let mut s = extra.unwrap_or_default().to_string();
            if rules_first {
                s.push_str(&rules);
                s.push_str(&cats);
            } else {
                s.push_str(&cats);
                s.push_str(&rules);
            }
            s
        })
        .boxed();
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4);
    prop_oneof![
        6 => doc.clone().prop_map(String::into_bytes),
        1 => (doc, edits).prop_map(|(doc, edits)| {
            let mut b = doc.into_bytes();
            for (at, byte, op) in edits {
                let i = at.index(b.len() + 1);
                match op {
                    0 if i < b.len() => {
                        b.remove(i);
                    }
                    2 if i < b.len() => b[i] = byte,
                    _ => b.insert(i, byte),
                }
            }
            b
        }),
    ]
}

/// YAML-ish token soup and plain random text.
fn rules_noise() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        2 => prop::collection::vec(
            select(vec![
                "rules:", "categories:", "\n", "\n  ", "  - id: x", "- ", ": ", "[", "]", "{", "}",
                ",", "&a ", "*a", "<<: *a", "!!str ", "!tag ", "'", "\"", "pattern: ", "weight: ",
                "category: ", "disabled: true", "#", "---", "...", "? ", "|", ">", "\t", "\r\n",
                "\u{feff}", "%TAG ! x", "@", "`",
            ]),
            0..40,
        )
        .prop_map(|t| t.concat().into_bytes()),
    ]
}

// ---------------------------------------------------------------------------
// Properties

// Default case counts: the whole file takes a few seconds in a debug
// `cargo test` on 2 cores (the rules loader compiles the full catalog per
// case, about 50 ms). PROPTEST_CASES overrides them all.

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn walker_keeps_its_invariants(input in trace_input().prop_map(Bytes), capacity in buffer_capacity()) {
        check_walk(&input, capacity)?;
    }

}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn classifier_keeps_its_invariants(
        input in trace_input().prop_map(Bytes),
        capacity in buffer_capacity(),
        max_evidence in 0usize..10,
        tail_lines in prop_oneof![Just(0usize), 0usize..24],
        failure_reason in failure_reason(),
    ) {
        let opts = ClassifyOptions { max_evidence, failure_reason, tail_lines, dump_candidates: false };
        check_classify(&input, capacity, &opts)?;
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn line_reader_reproduces_the_lines(
        input in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            prop::collection::vec(select(vec![b'a', b'b', b'\n', b'\r', 0xff]), 0..512),
        ].prop_map(Bytes),
        max_line in 0usize..48,
        capacity in 1usize..40,
    ) {
        let expected = raw_lines(&input);
        let limit = max_line.max(1);
        let mut reader = LineReader::with_max_line(BufReader::with_capacity(capacity, &input[..]), max_line);
        let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
        while let Some(line) = reader.next_line().expect("memory reads") {
            let line = line.to_vec();
            prop_assert_eq!(reader.line_no(), got.len() as u64 + 1);
            got.push((line, reader.was_cut()));
        }
        prop_assert!(reader.next_line().expect("memory reads").is_none(), "input ends once");
        prop_assert_eq!(reader.bytes_read(), input.len() as u64);
        prop_assert_eq!(got.len(), expected.len());
        for (i, ((line, cut), orig)) in got.iter().zip(&expected).enumerate() {
            if *cut {
                prop_assert!(orig.len() > limit, "line {} cut but only {} bytes", i + 1, orig.len());
                prop_assert_eq!(&line[..], &orig[..limit], "line {} is not a prefix", i + 1);
            } else {
                prop_assert!(orig.len() <= limit);
                prop_assert_eq!(&line[..], *orig, "line {}", i + 1);
            }
        }
        if got.iter().all(|(_, cut)| !cut) {
            let joined = got.iter().map(|(l, _)| &l[..]).collect::<Vec<_>>().join(&b'\n');
            prop_assert_eq!(&joined[..], input.strip_suffix(b"\n").unwrap_or(&input));
        }
    }

    #[test]
    fn cleaner_output_has_no_escapes_or_control_characters(
        lines in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(fragment(), 0..12).prop_map(|f| f.concat()),
                prop::collection::vec(any::<u8>(), 0..128),
            ].prop_map(Bytes),
            1..6,
        ),
    ) {
        // One cleaner reused across lines, as the walker does, must agree with
        // a fresh one per line.
        let mut shared = LineCleaner::default();
        for raw in &lines {
            let prefix = shared.clean(raw);
            let text = &shared.text;
            prop_assert!(
                !text.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
                "control byte in {:?}", String::from_utf8_lossy(text)
            );
            prop_assert!(text.len() <= raw.len());
            prop_assert_eq!(trim_end_ascii(text), &text[..], "trailing whitespace");
            for m in &shared.markers {
                prop_assert!(!m.name.is_empty() && m.name.chars().count() <= 128, "{:?}", m.name);
            }
            let mut fresh = LineCleaner::default();
            let fresh_prefix = fresh.clean(raw);
            prop_assert_eq!(&fresh.text, text);
            prop_assert_eq!(&fresh.markers, &shared.markers);
            prop_assert_eq!(fresh_prefix, prefix);
        }
    }

    #[test]
    fn cleaner_leaves_clean_ascii_alone(text in clean_ascii()) {
        let mut c = LineCleaner::default();
        let prefix = c.clean(text.as_bytes());
        prop_assert_eq!(&c.text[..], trim_end_ascii(text.as_bytes()));
        prop_assert!(c.markers.is_empty());
        prop_assert!(!prefix.runner_prefix);
        let once = c.text.clone();
        c.clean(&once);
        prop_assert_eq!(&c.text, &once, "cleaning twice changes nothing");
    }

    #[test]
    fn cleaner_recovers_the_visible_text(
        stream in any::<u8>(),
        err in any::<bool>(),
        prefixed in any::<bool>(),
        markers in prop::collection::vec(
            (any::<bool>(), any::<u64>(), "[a-z0-9_]{1,20}|n{120,140}", select(vec!["", "[collapsed=true]"])),
            0..3,
        ),
        parts in prop::collection::vec((visible_text(), prop::option::of("[0-9;]{0,6}m")), 0..5),
        crlf in any::<bool>(),
    ) {
        let mut raw = Vec::new();
        if prefixed {
            raw.extend(bytes_of(format!(
                "2026-01-01T01:00:00.020010Z {stream:02x}{} ",
                if err { 'E' } else { 'O' }
            )));
        }
        for (start, time, name, opts) in &markers {
            let kind = if *start { "start" } else { "end" };
            raw.extend(bytes_of(format!("section_{kind}:{time}:{name}{opts}\r\x1b[0K")));
        }
        let mut visible = String::new();
        for (text, sgr) in &parts {
            if let Some(sgr) = sgr {
                raw.extend(bytes_of(format!("\x1b[{sgr}")));
            }
            raw.extend_from_slice(text.as_bytes());
            visible.push_str(text);
        }
        if crlf {
            raw.push(b'\r');
        }
        let mut c = LineCleaner::default();
        let prefix = c.clean(&raw);
        prop_assert_eq!(
            String::from_utf8_lossy(&c.text),
            String::from_utf8_lossy(trim_end_ascii(visible.as_bytes()))
        );
        prop_assert_eq!(prefix.runner_prefix, prefixed);
        if prefixed {
            prop_assert_eq!(prefix.stream, stream);
        }
        prop_assert_eq!(c.markers.len(), markers.len());
        for (m, (start, time, name, _)) in c.markers.iter().zip(&markers) {
            prop_assert_eq!(m.start, *start);
            prop_assert_eq!(m.unix_time, *time);
            prop_assert_eq!(&m.name[..], &name[..name.len().min(128)]);
        }
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn rules_loader_survives_noise(content in rules_noise().prop_map(Bytes)) {
        check_loader(&content)?;
    }
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn rules_loader_survives_wrong_yaml(content in rules_yaml().prop_map(Bytes)) {
        check_loader(&content)?;
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn cleaner_strips_stacked_runner_prefixes(
        n in 1usize..600,
        gha in any::<bool>(),
        text in visible_text(),
    ) {
        let mut raw = "2026-01-01T01:00:00.020010Z 01O ".repeat(n);
        if gha {
            raw.push_str("2021-03-04T05:06:07.1234567Z ");
        }
        raw.push_str(&text);
        let mut c = LineCleaner::default();
        let prefix = c.clean(raw.as_bytes());
        prop_assert!(prefix.runner_prefix);
        prop_assert_eq!(&c.text[..], trim_end_ascii(text.as_bytes()));
    }
}

// ---------------------------------------------------------------------------
// Regressions and known gaps

/// Found by `cleaner_strips_stacked_runner_prefixes` run past the line
/// buffer: `strip_timestamp` recursed once per runner prefix, so a 1.6 MB
/// line of them overflowed a test thread's stack and aborted the process.
/// The walker cuts lines at 16 KiB (512 prefixes), so only callers of the
/// public `LineCleaner` could reach it.
#[test]
fn cleaner_survives_a_long_line_of_runner_prefixes() {
    let mut raw = "2026-01-01T01:00:00.020010Z 01O ".repeat(100_000);
    raw.push_str("the text");
    let mut c = LineCleaner::default();
    assert!(c.clean(raw.as_bytes()).runner_prefix);
    assert_eq!(c.text, b"the text");
}

/// Loads `content` as a user rules file; the error message, if any.
fn loader_error(content: &str) -> Option<(String, String, u8)> {
    let path = temp_rules_path();
    std::fs::write(&path, content).expect("write the rules file");
    let result = Catalog::with_overrides(&[path.as_path()]);
    let _ = std::fs::remove_file(&path);
    result
        .err()
        .map(|e| (describe(&e), path.display().to_string(), exit_code(&e)))
}

fn assert_good_input_error(content: &str) {
    let (msg, path, code) = loader_error(content).expect("the file is rejected");
    assert_eq!(code, EXIT_INPUT, "{msg}");
    assert!(
        msg.contains(&path),
        "the message does not name the file: {msg:?}"
    );
    assert!(!msg.contains(['\n', '\r']), "not one line: {msg:?}");
}

#[test]
fn rules_error_for_a_category_id_with_a_newline_is_one_line() {
    assert_good_input_error("categories:\n  - id: \"with\\nnewline\"\n    title: x\n");
}

#[test]
fn rules_error_for_an_unknown_category_with_a_newline_is_one_line() {
    assert_good_input_error("rules:\n  - id: r\n    pattern: x\n    category: \"CR\\rhere\"\n");
}

#[test]
fn rules_error_for_a_pattern_the_matcher_rejects_names_the_file_and_rule() {
    let content = "rules:\n  - id: greek\n    pattern: '\\p{Greek}'\n";
    assert_good_input_error(content);
    let (msg, _, _) = loader_error(content).expect("rejected");
    assert!(
        msg.contains("`greek`") && msg.contains("`pattern`"),
        "{msg}"
    );
}

#[test]
fn rules_error_when_every_rule_is_disabled_names_the_file() {
    let mut content = String::from("rules:\n");
    for r in &CATALOG.rules {
        content.push_str(&format!("  - id: {}\n    disabled: true\n", r.id));
    }
    assert_good_input_error(&content);
}

/// Each pattern compiles alone, the catalog's combined matcher does not: the
/// message names neither the file nor a rule.
#[test]
fn rules_error_for_patterns_too_big_together_names_the_file() {
    let mut content = String::from("rules:\n");
    for i in 0..4 {
        content.push_str(&format!("  - id: big{i}\n    pattern: '[a-z]{{100000}}'\n"));
    }
    assert_good_input_error(&content);
}

/// Any JSON value: texts of any characters (newlines, backticks, bidi
/// controls), numbers, nesting.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        select(vec!["failed", "error", "success", "skipped"]).prop_map(Value::from),
        ".{0,80}".prop_map(Value::from),
        "(AssertionError: .{0,40}\n){0,3}".prop_map(Value::from),
    ];
    let keys = select(vec!["message", "type", "__content__", "x"]);
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((keys.clone(), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A test report as GitLab shapes it, every field any JSON value.
fn report_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    let case = (
        prop_oneof![
            3 => select(vec!["failed", "error"]).prop_map(serde_json::Value::from),
            1 => any_json(),
        ],
        any_json(),
        any_json(),
        any_json(),
        any_json(),
        any_json(),
    )
        .prop_map(|(status, name, classname, file, output, trace)| {
            json!({"status": status, "name": name, "classname": classname, "file": file,
                   "system_output": output, "stack_trace": trace})
        });
    let suite = (any_json(), any_json(), proptest::collection::vec(case, 0..12)).prop_map(
        |(name, failed, cases)| json!({"name": name, "failed_count": failed, "test_cases": cases}),
    );
    proptest::collection::vec(suite, 0..4).prop_map(|suites| json!({"test_suites": suites}))
}

proptest! {
    #![proptest_config(cases(256))]

    /// Whatever GitLab sends as a test report: an error or a report, never a
    /// panic; the failing tests made of it are one line each, bounded, and
    /// the note's groups count every failing test once.
    #[test]
    fn any_test_report_parses_or_fails_cleanly_and_stays_bounded(v in report_json()) {
        use runneriq::diagnose::junit;
        use runneriq::gitlab::test_report::TestReport;
        let bytes = serde_json::to_vec(&v).unwrap();
        let r = serde_json::from_slice::<TestReport>(&bytes);
        prop_assert!(r.is_ok(), "{:?}", r.err());
        let r = r.unwrap();
        for s in &r.test_suites {
            let t = junit::job_tests(s, None, &["src/a.py".to_string()], &[], &Default::default());
            prop_assert!(t.groups.len() <= junit::SHOWN_GROUPS);
            let grouped: u64 = t.groups.iter().map(|g| g.count as u64).sum();
            prop_assert_eq!(grouped + t.more, t.failing.max(grouped));
            for g in &t.groups {
                prop_assert!(g.tests.len() <= junit::SHOWN_PER_GROUP);
                prop_assert_eq!(g.count, g.tests.len() + g.more);
                for x in &g.tests {
                    prop_assert!(!x.label.contains('\n') && x.label.chars().count() <= junit::LABEL_CHARS + 1);
                    if let Some(m) = &x.message {
                        prop_assert!(!m.contains('\n') && m.chars().count() <= junit::MESSAGE_CHARS + 1);
                    }
                }
            }
        }
    }
}
