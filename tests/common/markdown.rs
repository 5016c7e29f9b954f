//! Checks of rendered notes as a reader (and GitLab) sees them: the counts
//! add up, and no bare `#123` turns into a link to an unrelated issue.

use std::sync::LazyLock;

use regex::Regex;

/// Length of the backtick fence opening a block on this line, if any
/// (up to three spaces of indent, as CommonMark allows).
fn fence_open(line: &str) -> Option<usize> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let n = t.len() - t.trim_start_matches('`').len();
    (n >= 3 && !t[n..].contains('`')).then_some(n)
}

/// The lines of `md` outside fenced code blocks.
pub fn outside_fences(md: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    for line in md.lines() {
        match open {
            Some(n) => {
                let t = line.trim_start_matches(' ');
                let run = t.len() - t.trim_start_matches('`').len();
                if run >= n && t[run..].trim().is_empty() {
                    open = None;
                }
            }
            None => match fence_open(line) {
                Some(n) => open = Some(n),
                None => out.push(line),
            },
        }
    }
    out
}

/// `line` without its inline code spans (backtick runs closed by a run of the
/// same length).
pub fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let after = &rest[start + run..];
        let delim = "`".repeat(run);
        // A closing run of exactly `run` backticks.
        let mut search = 0;
        let mut close = None;
        while let Some(i) = after[search..].find(&delim) {
            let at = search + i;
            let len = after[at..].len() - after[at..].trim_start_matches('`').len();
            if len == run {
                close = Some(at);
                break;
            }
            search = at + len;
        }
        match close {
            Some(end) => rest = &after[end + run..],
            None => {
                out.push_str(&rest[start..start + run]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[[^\[\]]*\]\([^()\s]*\)").unwrap());
static HTML_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<code>.*?</code>|<!--.*?-->").unwrap());
/// `#` and a digit, not after `&` (an HTML entity). After a word it is still
/// a reference: `project#12` names another project's issue.
static BARE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:^|[^&])#[0-9]").unwrap());

/// Lines of `md` where GitLab would see a bare `#123` (an issue reference):
/// outside fences, code spans, `<code>`, HTML comments and link texts.
pub fn bare_issue_references(md: &str) -> Vec<String> {
    outside_fences(md)
        .into_iter()
        .filter(|line| {
            let text = without_code_spans(line);
            let text = HTML_CODE.replace_all(&text, "");
            let text = LINK.replace_all(&text, "");
            BARE.is_match(&text)
        })
        .map(str::to_string)
        .collect()
}

/// The number a phrase starts with ("2 new failures" → 2, "No new failure"
/// → 0).
fn leading_number(s: &str) -> usize {
    let w = s.split_whitespace().next().unwrap_or("");
    w.parse().unwrap_or(0)
}

/// The note's groups, in the order the note must show them: the heading's
/// start, and how the first line says it.
const GROUPS: &[(&str, &str)] = &[
    ("New failures", "new failure"),
    ("Already failing on", "already failing on"),
    ("Flaky", "flaky"),
    ("Suppressed by", "suppressed"),
    ("Allowed to fail", "allowed to fail"),
];

/// Asserts that a failed pipeline's note (Markdown) counts one set of jobs:
/// the first line's numbers, the sentence under it, the group headings and
/// the jobs shown under each heading all agree; the groups come in their
/// fixed order; the breakdown of the new failures adds up to their count.
/// Returns the total.
pub fn assert_counts_add_up(md: &str) -> usize {
    let lines = outside_fences(md);
    let head_at = lines
        .iter()
        .position(|l| l.starts_with("### 🔴 ") || l.starts_with("### 🟡 "))
        .unwrap_or_else(|| panic!("no first line in:\n{md}"));
    let head = &lines[head_at]["### 🔴 ".len()..];
    let parts: Vec<&str> = head.split(" · ").collect();
    let head_sum: usize = parts.iter().map(|p| leading_number(p)).sum();
    let sentence = lines[head_at + 1..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .unwrap();
    let total = if sentence.starts_with("No job failed") {
        0
    } else {
        let (n, _) = sentence
            .split_once(" job")
            .unwrap_or_else(|| panic!("sentence: {sentence}"));
        n.parse::<usize>()
            .unwrap_or_else(|_| panic!("sentence: {sentence}"))
    };
    assert_eq!(
        head_sum, total,
        "first line {head:?} vs sentence {sentence:?}"
    );

    // Group headings, in order, and what is shown under each.
    let omitted_somewhere = md.contains("not detailed below") || md.contains("- …and ");
    let mut seen = Vec::new();
    let mut heading_sum = 0;
    let mut i = head_at + 1;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        let Some(h) = l.strip_prefix("#### ") else {
            continue;
        };
        let Some(g) = GROUPS.iter().position(|(start, _)| h.starts_with(start)) else {
            continue;
        };
        let count: usize = h
            .rsplit_once(" (")
            .and_then(|(_, c)| c.strip_suffix(')'))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("group heading without a count: {l}"));
        heading_sum += count;
        seen.push(g);
        // The first line says the same number for the group.
        let phrase = GROUPS[g].1;
        let said = parts
            .iter()
            .find(|p| p.contains(phrase))
            .unwrap_or_else(|| panic!("{phrase:?} is not in the first line {head:?}"));
        assert_eq!(leading_number(said), count, "{said:?} vs heading {l:?}");
        // Jobs shown under the heading, up to the next group heading.
        let mut shown = 0;
        while i < lines.len() && !lines[i].starts_with("#### ") {
            let s = lines[i];
            if s.starts_with("##### [") {
                shown += 1;
            } else if let Some(rest) = s.strip_prefix("Same failure in ") {
                shown += leading_number(rest);
            } else if s.starts_with("- [") {
                shown += 1;
            }
            i += 1;
        }
        if !omitted_somewhere {
            assert_eq!(shown, count, "jobs shown under {l:?}");
        }
    }
    let mut ordered = seen.clone();
    ordered.sort();
    ordered.dedup();
    assert_eq!(seen, ordered, "groups out of order or repeated");
    assert_eq!(heading_sum, total, "group headings vs {sentence:?}");

    // The new failures' breakdown adds up to their number.
    let new = parts
        .iter()
        .find(|p| p.contains("new failure"))
        .map_or(0, |p| leading_number(p));
    if new > 0 {
        let (_, list) = sentence
            .split_once(": ")
            .unwrap_or_else(|| panic!("no breakdown in {sentence:?}"));
        let sum: usize = list
            .trim_end_matches('.')
            .split(", ")
            .map(leading_number)
            .sum();
        assert_eq!(sum, new, "breakdown {list:?}");
    }
    total
}
