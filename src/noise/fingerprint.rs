//! Error fingerprints: the same error in different runs or matrix jobs gets
//! the same short id, so history can tell "failed like this before" apart
//! from "failed in a new way".
//!
//! [`normalize`] replaces what varies between runs (timestamps, durations,
//! ids, hashes, temporary directories, numbers) by placeholders;
//! [`fingerprint`] hashes a category and a set of normalized lines.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Characters that end a path inside a log line (quotes, brackets,
/// separators, and `:` so that `file:line:col` keeps its numbers apart).
const PATH_CHARS: &str = r#"[^\s'"`:,;()<>\[\]{}|]"#;

/// Unix temporary directories, at the start of a path (not `/home/x/tmp/`).
static UNIX_TMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(^|[^\w.~/-])((?:/private)?/var/folders|/var/tmp|/tmp)(/{PATH_CHARS}*|\b)"
    ))
    .expect("unix temp pattern compiles")
});

/// Windows temporary directories (`C:\Users\X\AppData\Local\Temp\...`,
/// `C:\Windows\Temp\...`), either separator.
static WINDOWS_TMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b[a-z]:[\\/](?:users[\\/][^\\/\s]+[\\/]appdata[\\/]local[\\/]temp|windows[\\/]temp)([\\/]{PATH_CHARS}*|\b)"
    ))
    .expect("windows temp pattern compiles")
});

/// ISO-8601 dates and date-times (`T` or space), fraction and zone optional.
static DATE_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?(?:[.,][0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\b",
    )
    .expect("date pattern compiles")
});

/// Clock times `10:00:00` and `10:00:00.123`.
static CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?\b").expect("clock pattern compiles")
});

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
        .expect("uuid pattern compiles")
});

/// `1.23s`, `150ms`, `2m3s`, `1h2m`, `4.5 seconds`, `0.02 sec`. Alternation
/// is leftmost-first, so `ms` is tried before `m` and `s`.
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:[0-9]+(?:\.[0-9]+)?(?:\s?(?:milliseconds?|msecs?|ms|seconds?|secs?|minutes?|mins?|hours?|hrs?)|us|µs|ns|h|m|s))+\b",
    )
    .expect("duration pattern compiles")
});

/// Hex runs of 7 or more (commit shas, addresses), `0x` optional; only
/// replaced when they contain a digit, so words like `defaced` stay.
static HEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:0[xX])?[0-9a-fA-F]{7,}\b").expect("hex pattern compiles"));

static DIGITS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9]+").expect("digits pattern compiles"));

static SPACES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s+").expect("spaces pattern compiles"));

/// `<tmp>/` and the last non-empty component of `rest` (`/a/b/x.py` → `x.py`).
fn tmp_placeholder(rest: &str) -> String {
    let last = rest
        .rsplit(['/', '\\'])
        .find(|c| !c.is_empty())
        .unwrap_or("");
    format!("<tmp>/{last}")
}

/// A stable form of an error line: what varies between runs and matrix jobs
/// becomes a placeholder, everything else is kept.
///
/// In order: paths under temporary directories → `<tmp>/` and their last
/// component; ISO dates and date-times, clock times → `<ts>`; UUIDs →
/// `<uuid>`; durations → `<dur>`; hex runs of 7+ characters with a digit →
/// `<hex>`; remaining digit runs → `#`. Whitespace runs become one space and
/// the result is trimmed.
pub fn normalize(text: &str) -> String {
    let s = UNIX_TMP.replace_all(text, |c: &Captures| {
        format!("{}{}", &c[1], tmp_placeholder(&c[3]))
    });
    let s = replace(s, &WINDOWS_TMP, |c: &Captures| tmp_placeholder(&c[1]));
    let s = replace(s, &DATE_TIME, |_: &Captures| "<ts>".to_string());
    let s = replace(s, &CLOCK, |_: &Captures| "<ts>".to_string());
    let s = replace(s, &UUID, |_: &Captures| "<uuid>".to_string());
    let s = replace(s, &DURATION, |_: &Captures| "<dur>".to_string());
    let s = replace(s, &HEX, |c: &Captures| {
        let m = &c[0];
        let digits = m
            .strip_prefix("0x")
            .or_else(|| m.strip_prefix("0X"))
            .unwrap_or(m);
        if digits.bytes().any(|b| b.is_ascii_digit()) {
            "<hex>".to_string()
        } else {
            m.to_string()
        }
    });
    let s = replace(s, &DIGITS, |_: &Captures| "#".to_string());
    let s = replace(s, &SPACES, |_: &Captures| " ".to_string());
    s.trim().to_string()
}

/// `re.replace_all` on a `Cow`, borrowing as long as nothing changes.
fn replace<'a>(s: Cow<'a, str>, re: &Regex, f: impl FnMut(&Captures) -> String) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => re.replace_all(b, f),
        Cow::Owned(o) => match re.replace_all(&o, f) {
            Cow::Borrowed(_) => Cow::Owned(o),
            Cow::Owned(n) => Cow::Owned(n),
        },
    }
}

/// A 16-hex-character id of an error: FNV-1a 64-bit over `category`, `\n`,
/// and the [`normalize`]d lines (empty ones dropped, deduplicated, sorted,
/// joined by `\n`). Line order does not matter.
///
/// Fingerprints are stable across versions only as long as [`normalize`] is
/// unchanged: any change to it changes ids, and history compares ids.
pub fn fingerprint(category: &str, lines: &[&str]) -> String {
    let mut normalized: Vec<String> = lines
        .iter()
        .map(|l| normalize(l))
        .filter(|l| !l.is_empty())
        .collect();
    normalized.sort_unstable();
    normalized.dedup();

    let mut hash = Fnv1a::new();
    hash.write(category.as_bytes());
    hash.write(b"\n");
    for (i, line) in normalized.iter().enumerate() {
        if i > 0 {
            hash.write(b"\n");
        }
        hash.write(line.as_bytes());
    }
    format!("{:016x}", hash.0)
}

/// FNV-1a, 64 bits.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_clock_times() {
        assert_eq!(
            normalize("2026-11-25T10:00:00.123Z ERROR boom"),
            "<ts> ERROR boom"
        );
        assert_eq!(normalize("at 2026-11-25 10:00:00 UTC"), "at <ts> UTC");
        assert_eq!(normalize("on 2026-11-25 only"), "on <ts> only");
        assert_eq!(normalize("[10:00:00.123] started"), "[<ts>] started");
        assert_eq!(normalize("t=2026-11-25T10:00:00+01:00"), "t=<ts>");
    }

    #[test]
    fn durations() {
        assert_eq!(normalize("finished in 1.23s"), "finished in <dur>");
        assert_eq!(normalize("took 150ms"), "took <dur>");
        assert_eq!(normalize("took 150 ms"), "took <dur>");
        assert_eq!(normalize("3 secrets, 2 mscorlib"), "# secrets, # mscorlib");
        assert_eq!(normalize("timeout after 2m3s"), "timeout after <dur>");
        assert_eq!(normalize("ran for 4.5 seconds"), "ran for <dur>");
        assert_eq!(normalize("Ran 3 tests (0.02 sec)"), "Ran # tests (<dur>)");
        assert_eq!(normalize("1h30m left"), "<dur> left");
    }

    #[test]
    fn uuids_and_hex() {
        assert_eq!(
            normalize("request 123e4567-e89b-12d3-a456-426614174000 failed"),
            "request <uuid> failed"
        );
        assert_eq!(
            normalize("HEAD is now at 1a2b3c4d5e fix"),
            "HEAD is now at <hex> fix"
        );
        assert_eq!(normalize("segfault at 0x7ffd5e3a10c0"), "segfault at <hex>");
        assert_eq!(normalize("defaced cafebabe"), "defaced cafebabe");
    }

    #[test]
    fn temp_dirs_keep_only_the_last_component() {
        assert_eq!(
            normalize("File \"/tmp/tmpab12cd/pkg/x.py\", line 3"),
            "File \"<tmp>/x.py\", line #"
        );
        assert_eq!(normalize("cd /var/tmp/build-42/"), "cd <tmp>/build-#");
        assert_eq!(
            normalize("/private/var/folders/x1/ab_cd/T/foo.rs:10:5: error"),
            "<tmp>/foo.rs:#:#: error"
        );
        assert_eq!(normalize("/var/folders/x1/ab/T/foo.rs"), "<tmp>/foo.rs");
        assert_eq!(
            normalize(r"C:\Users\Runner\AppData\Local\Temp\tmp12\a\b.cs(3,4): error"),
            "<tmp>/b.cs(#,#): error"
        );
        assert_eq!(normalize("wrote /tmp"), "wrote <tmp>/");
        // Not temp dirs: kept, digits aside.
        assert_eq!(normalize("/home/u/tmp/x.py"), "/home/u/tmp/x.py");
        assert_eq!(normalize("./tmp/x.py"), "./tmp/x.py");
        assert_eq!(normalize("/tmpfoo/x.py"), "/tmpfoo/x.py");
        assert_eq!(normalize("src/lib.rs:12:5"), "src/lib.rs:#:#");
    }

    #[test]
    fn digits_and_whitespace() {
        assert_eq!(normalize("  job   123 \t failed  "), "job # failed");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn same_error_in_two_matrix_jobs_has_one_fingerprint() {
        let a = [
            "2026-11-25T10:00:00.123Z error[E0425]: cannot find value `x` in this scope",
            "  --> /tmp/tmpab12cd/crate/src/lib.rs:10:5",
            "Job 8123456 failed after 1.23s (runner 41, 10:00:03)",
            "Checking out 1a2b3c4d as detached HEAD",
        ];
        let b = [
            "Checking out 9f8e7d6c as detached HEAD",
            "2026-11-26T08:12:44.9Z error[E0425]: cannot find value `x` in this scope",
            "  --> /tmp/tmpzz99yy/crate/src/lib.rs:10:5",
            "Job 8123999 failed after 2m3s (runner 7, 08:13:50)",
            "",
        ];
        let fa = fingerprint("compilation", &a);
        assert_eq!(fa.len(), 16);
        assert!(
            fa.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(fa, fingerprint("compilation", &b));

        let other = [
            "2026-11-25T10:00:00.123Z error[E0308]: mismatched types",
            "  --> /tmp/tmpab12cd/crate/src/lib.rs:10:5",
        ];
        assert_ne!(fa, fingerprint("compilation", &other));
        assert_ne!(fa, fingerprint("test_failure", &a));
    }

    #[test]
    fn line_order_and_duplicates_do_not_matter() {
        let f = fingerprint("x", &["one", "two", "two"]);
        assert_eq!(f, fingerprint("x", &["two", "one"]));
        assert_eq!(fingerprint("x", &[]), fingerprint("x", &["", "  "]));
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        for (input, want) in [
            (&b""[..], 0xcbf2_9ce4_8422_2325_u64),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut h = Fnv1a::new();
            h.write(input);
            assert_eq!(h.0, want, "{input:?}");
        }
        let mut h = Fnv1a::new();
        h.write(b"a\n");
        assert_eq!(fingerprint("a", &[]), format!("{:016x}", h.0));
    }
}
