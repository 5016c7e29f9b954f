//! Markdown safety for everything RunnerIQ posts to GitLab.
//!
//! A note body mixes our own words with text we do not control: log lines, job
//! and stage names from the project's CI configuration, messages from GitLab.
//! GitLab acts on some of that text: `@all` notifies a whole group, a line
//! starting with `/merge` is a quick action (run on create AND on every edit),
//! raw HTML renders. So:
//!
//! - log text only ever goes inside a fenced code block whose fence is longer
//!   than any backtick run in it ([`fence_block`]);
//! - short outside text (names, paths, messages) goes through [`inline`] (plain
//!   text, escaped) or [`code_span`] (inline code);
//! - `#123` outside code and links is a link to issue 123 in GitLab: numbers
//!   of pipelines and jobs go in link text ([`text_link`]) or code, and
//!   [`inline`] breaks a `#` before a digit in outside text;
//! - the finished body goes through [`guard`], which, outside code fences,
//!   escapes a leading `/` on every line and breaks `@mentions`. It runs on
//!   user templates too (`--templates DIR`), so a template mistake cannot
//!   become a quick action.

pub use crate::text::truncate_chars;
use std::fmt::Write;

/// Zero-width space: `@\u{200b}all` reads as `@all` but mentions nobody.
const ZWSP: char = '\u{200b}';

/// GitLab rejects note bodies over this many characters.
pub const GITLAB_NOTE_LIMIT: usize = 1_000_000;
/// What we aim to stay under, with room for GitLab's own processing.
pub const NOTE_BUDGET: usize = 900_000;

/// Characters that change how the text around them is shown without being
/// seen themselves: bidirectional controls (the "Trojan Source" reordering),
/// zero-width spaces and non-joiners that hide text inside words, invisible
/// operators, the byte-order mark, the soft hyphen. GitLab renders them
/// as-is, so RunnerIQ writes them visibly (`<U+202E>`). The zero-width
/// joiner stays: emoji sequences need it and it reorders nothing.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Log text for a code block: control characters become spaces (newlines
/// and tabs stay), invisible characters are written out as `<U+202E>`.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push(' '),
            c if is_invisible(c) => {
                let _ = write!(out, "<U+{:04X}>", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Outside text as plain Markdown text on one line: control characters become
/// spaces, HTML is escaped, Markdown punctuation is backslash-escaped,
/// `@mentions` are broken, and so are issue references (`#123`, which GitLab
/// would link to an unrelated issue: a zero-width space follows the `#`).
pub fn inline(text: &str) -> String {
    inline_text(text, true)
}

/// A link's label: [`inline`], but `#123` stays as written (GitLab makes no
/// reference inside a link's text).
fn link_label(text: &str) -> String {
    inline_text(text, false)
}

fn inline_text(text: &str, break_references: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                out.push('@');
                if prev.is_none_or(|p| !is_word(p)) {
                    out.push(ZWSP);
                }
            }
            '#' if break_references && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('#');
                out.push(ZWSP);
            }
            c if c.is_control() => out.push(' '),
            // After `@` a zero-width space is what breaks a mention (ours,
            // from `untrusted_text`): it hides nothing there.
            ZWSP if prev == Some('@') => {}
            // Likewise before a digit after `#` (text already made inert).
            ZWSP if prev == Some('#') && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push(ZWSP);
            }
            c if is_invisible(c) => {
                let _ = write!(out, "&lt;U+{:04X}&gt;", c as u32);
            }
            c => out.push(c),
        }
        prev = Some(c);
    }
    // A leading `/` would be a quick action if this text ever starts a line.
    if out.starts_with('/') {
        out.insert(0, '\\');
    }
    out
}

/// Outside text as inline code (a path, a section name): the delimiter is
/// longer than any backtick run inside, and padded when the text touches a
/// backtick, as CommonMark requires. GitLab neither renders HTML nor expands
/// mentions inside code spans.
pub fn code_span(text: &str) -> String {
    let clean = visible(text).replace(['\n', '\t'], " ");
    if clean.trim().is_empty() {
        return "`-`".to_string();
    }
    let delim = "`".repeat(longest_backtick_run(&clean) + 1);
    let pad = if clean.starts_with('`') || clean.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{delim}{pad}{clean}{pad}{delim}")
}

/// A fenced code block around `body` (log text). The fence is longer than any
/// backtick run in the body, so nothing in the log can close it early.
pub fn fence_block(info: &str, body: &str) -> String {
    let fence = fence_for(body);
    let mut out = String::with_capacity(body.len() + 2 * fence.len() + info.len() + 3);
    let _ = write!(out, "{fence}{info}\n{body}");
    if !body.is_empty() && !body.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&fence);
    out.push('\n');
    out
}

/// A link whose label is our text (`pipeline #4242`), or, without a usable
/// URL, that text as inline code: so that `#4242` never stands bare, where
/// GitLab would link it to issue 4242.
pub fn text_link(label: &str, url: Option<&str>) -> String {
    match url.filter(|u| safe_url(u)) {
        Some(u) => format!("[{}]({u})", link_label(label)),
        None => code_span(label),
    }
}

/// A link to a GitLab URL, or the bare label when the URL is not a plain
/// http(s) URL that is safe to put in `[..](..)`.
pub fn link(label_md: &str, url: Option<&str>) -> String {
    match url.filter(|u| safe_url(u)) {
        Some(u) => format!("[{label_md}]({u})"),
        None => label_md.to_string(),
    }
}

/// http(s), no whitespace, nothing that ends the link or starts HTML.
pub fn safe_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() < 2048
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "()<>\"'`\\[]".contains(c))
}

/// Length of the backtick fence opening a code block on this line (column 0
/// to 3 spaces of indent, as CommonMark allows), if it is one.
fn fence_open(line: &str) -> Option<usize> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let n = rest.len() - rest.trim_start_matches('`').len();
    // An info string may not contain backticks.
    (n >= 3 && !rest[n..].contains('`')).then_some(n)
}

/// True when `line` closes a fence opened with `n` backticks.
fn fence_close(line: &str, n: usize) -> bool {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return false;
    }
    let run = t.len() - t.trim_start_matches('`').len();
    run >= n && t[run..].trim().is_empty()
}

/// The last pass over a finished body. Outside backtick fences: a line whose
/// first non-blank character is `/` gets it escaped (`\/`), so no line of ours
/// is ever a quick action, and `@mentions` are broken with a zero-width space.
/// Fence contents are left alone (GitLab ignores quick actions and mentions
/// there). Idempotent.
pub fn guard(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 16);
    let mut open: Option<usize> = None;
    for piece in body.split_inclusive('\n') {
        let (line, eol) = match piece.strip_suffix('\n') {
            Some(l) => (l, "\n"),
            None => (piece, ""),
        };
        match open {
            Some(n) => {
                if fence_close(line, n) {
                    open = None;
                }
                out.push_str(line);
            }
            None => {
                if let Some(n) = fence_open(line) {
                    open = Some(n);
                    out.push_str(line);
                } else {
                    guard_line(line, &mut out);
                }
            }
        }
        out.push_str(eol);
    }
    out
}

fn guard_line(line: &str, out: &mut String) {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    out.push_str(indent);
    if trimmed.starts_with('/') {
        out.push('\\');
    }
    let mut prev: Option<char> = None;
    let mut chars = trimmed.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '@'
            && prev.is_none_or(|p| !is_word(p))
            && chars.peek().is_some_and(|n| is_word(*n) || *n == '-')
        {
            out.push(ZWSP);
        }
        prev = Some(c);
    }
}

/// HTML elements and comments, removed from untrusted prose.
static HTML_TAG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?is)<!--.*?(?:-->|$)|</?\s*(?:a|abbr|audio|b|base|blockquote|br|button|code|del|details|div|em|embed|form|h[1-6]|hr|i|iframe|img|input|ins|kbd|label|li|link|mark|math|meta|object|ol|option|p|picture|pre|q|s|script|select|small|source|span|strong|style|sub|summary|sup|svg|table|td|textarea|th|tr|u|ul|video)\b[^>]*>",
    )
    .expect("HTML pattern compiles")
});

/// URLs with a scheme (`https://`, `javascript:`, ...) or starting with `www.`.
static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r#"(?i)\b(?:[a-z][a-z0-9+.\-]*://|(?:javascript|vbscript):|data:[a-z]+/|mailto:[^\s@]+@|www\.)[^\s<>()\[\]"'`]*"#,
    )
    .expect("URL pattern compiles")
});

/// Prose written by someone we do not trust (an LLM's summary), made inert as
/// plain text on one line: control characters become spaces, HTML elements
/// and comments are removed, links are kept only when they point into
/// `allowed_origin` (the project's GitLab, e.g. `https://gitlab.example.com`)
/// and are otherwise replaced by `[link removed]`, `@mentions` are broken and
/// a leading `/` (a quick action) is defused. Markdown special characters are
/// left for [`inline`], which output into Markdown still goes through.
pub fn untrusted_text(text: &str, allowed_origin: Option<&str>) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let no_html = HTML_TAG.replace_all(&flat, "");
    let allowed = allowed_origin
        .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
        .filter(|o| o.starts_with("https://") || o.starts_with("http://"));
    let links = URL.replace_all(&no_html, |caps: &regex::Captures<'_>| {
        let url = caps.get(0).map_or("", |m| m.as_str());
        let lower = url.to_ascii_lowercase();
        let ok = allowed
            .as_deref()
            .is_some_and(|o| lower.starts_with(&format!("{o}/")) && safe_url(url));
        if ok {
            url.to_string()
        } else {
            "[link removed]".to_string()
        }
    });
    let mut out = String::with_capacity(links.len() + 8);
    let mut prev: Option<char> = None;
    let mut chars = links.split_whitespace().collect::<Vec<_>>().join(" ");
    if chars.starts_with('/') {
        chars.insert(0, ZWSP);
    }
    let mut it = chars.chars().peekable();
    while let Some(c) = it.next() {
        out.push(c);
        if c == '@'
            && prev.is_none_or(|p| !is_word(p))
            && it.peek().is_some_and(|n| is_word(*n) || *n == '-')
        {
            out.push(ZWSP);
        }
        prev = Some(c);
    }
    out
}

/// `text` if it has at most `max` characters, else its first `max - 1`
/// characters (trailing blanks dropped) and `…`: a cut the reader can see.
pub fn ellipsize(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.char_indices().nth(max).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let kept = truncate_chars(text, max.saturating_sub(1)).trim_end();
    std::borrow::Cow::Owned(format!("{kept}…"))
}

/// The longest run of backticks in `text` (a code span or fence around it
/// must be longer).
pub fn longest_backtick_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for ch in text.chars() {
        if ch == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A fence longer than any backtick run in `body`, so log text can't close it.
pub fn fence_for(body: &str) -> String {
    "`".repeat((longest_backtick_run(body) + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines outside backtick fences, as GitLab's quick-action parser sees them.
    fn outside_fences(md: &str) -> Vec<&str> {
        let mut open = None;
        let mut out = Vec::new();
        for line in md.lines() {
            match open {
                Some(n) => {
                    if fence_close(line, n) {
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

    #[test]
    fn invisible_characters_are_written_out() {
        let evil = "ok\u{202E}gnp.exe\u{2066}x\u{200B}y\u{FEFF}";
        assert_eq!(visible(evil), "ok<U+202E>gnp.exe<U+2066>x<U+200B>y<U+FEFF>");
        assert_eq!(visible("a\tb\nc\rd"), "a\tb\nc d");
        assert_eq!(code_span("job\u{202E}name"), "`job<U+202E>name`");
        assert_eq!(inline("a\u{2067}b"), "a&lt;U+2067&gt;b");
        // Emoji sequences keep their joiner.
        assert_eq!(visible("👩\u{200D}💻"), "👩\u{200D}💻");
        // A zero-width space after `@` breaks a mention: kept, not shown.
        assert_eq!(inline("@\u{200B}all"), "@\u{200B}all");
    }

    #[test]
    fn inline_escapes_html_markdown_and_mentions() {
        let s = inline("<script>alert(1)</script> @all *x* [a](b) `c`");
        assert!(!s.contains("<script>"));
        assert!(s.contains("&lt;script&gt;"));
        assert!(!s.contains("@all"));
        assert!(s.contains("\\*x\\*"));
        assert!(s.contains("\\`c\\`"));
        assert_eq!(inline("a\nb\r\tc"), "a b  c");
        assert_eq!(inline("/merge"), "\\/merge");
        // An email address is not a mention.
        assert_eq!(inline("dev@example.com"), "dev@example.com");
    }

    #[test]
    fn issue_references_are_broken_in_text_and_kept_in_link_labels() {
        // Outside text: `#` before a digit gets a zero-width space.
        assert_eq!(
            inline("test #3 of pipeline #1001 (#x, C#, ##)"),
            "test #\u{200b}3 of pipeline #\u{200b}1001 (#x, C#, ##)"
        );
        assert_eq!(inline("project#12"), "project#\u{200b}12");
        assert_eq!(inline(&inline("job #7")), inline("job #7"), "idempotent");
        // Our own link labels keep it: GitLab makes no reference in a link.
        assert_eq!(
            text_link(
                "pipeline #4240",
                Some("https://gitlab.example.com/g/p/-/pipelines/4240")
            ),
            "[pipeline #4240](https://gitlab.example.com/g/p/-/pipelines/4240)"
        );
        // Without a usable URL the label becomes code, never bare text.
        assert_eq!(text_link("pipeline #4240", None), "`pipeline #4240`");
        assert_eq!(
            text_link("pipeline #4240", Some("javascript:x")),
            "`pipeline #4240`"
        );
    }

    #[test]
    fn code_span_outgrows_backticks() {
        assert_eq!(code_span("src/main.rs"), "`src/main.rs`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x`"), "`` `x` ``");
        assert_eq!(code_span("a\nb"), "`a b`");
        assert_eq!(code_span(""), "`-`");
    }

    #[test]
    fn log_text_cannot_leave_its_fence() {
        let log = "ok\n```\n/merge\n````` @all\n<script>x</script>\n";
        let block = fence_block("text", log);
        let md = format!("before\n{block}/after\n");
        let guarded = guard(&md);
        let outside = outside_fences(&guarded);
        assert_eq!(outside, vec!["before", "\\/after"]);
        // The fence is longer than the longest run in the log (5).
        assert!(block.starts_with("``````text\n"));
        // Log text inside the fence is untouched.
        assert!(guarded.contains("\n/merge\n"));
    }

    #[test]
    fn guard_escapes_quick_actions_and_mentions_outside_fences() {
        let md =
            "/merge\n  /close now\nhi @all and @group/sub, mail a@b.c\n```\n/approve @all\n```\n";
        let g = guard(md);
        assert_eq!(
            g,
            "\\/merge\n  \\/close now\nhi @\u{200b}all and @\u{200b}group/sub, mail a@b.c\n```\n/approve @all\n```\n"
        );
        assert_eq!(guard(&g), g, "idempotent");
    }

    #[test]
    fn unclosed_fence_protects_to_the_end_and_tilde_fences_do_not() {
        let g = guard("````\n/merge\n```\n/still inside\n");
        assert!(g.contains("\n/merge\n") && g.contains("\n/still inside\n"));
        let g = guard("~~~\n/merge\n~~~\n");
        assert!(g.contains("\\/merge"));
    }

    #[test]
    fn urls_are_checked_before_linking() {
        assert_eq!(
            link("`job`", Some("https://gitlab.example.com/g/p/-/jobs/1")),
            "[`job`](https://gitlab.example.com/g/p/-/jobs/1)"
        );
        assert_eq!(link("`job`", Some("javascript:alert(1)")), "`job`");
        assert_eq!(link("`job`", Some("https://x/a) [y](z")), "`job`");
        assert_eq!(link("`job`", None), "`job`");
    }

    #[test]
    fn untrusted_prose_is_inert() {
        let gl = Some("https://gitlab.example.com");
        let s = untrusted_text(
            "/merge now @all <img src=x onerror=alert(1)> see https://evil.example/x and \
             [docs](https://gitlab.example.com/g/p/-/blob/main/README.md)\n/close <!-- hi -->",
            gl,
        );
        assert!(s.starts_with("\u{200b}/merge"), "{s}");
        assert!(!s.contains("@all") && s.contains("@\u{200b}all"), "{s}");
        assert!(!s.contains("<img") && !s.contains("<!--"), "{s}");
        assert!(
            !s.contains("evil.example") && s.contains("[link removed]"),
            "{s}"
        );
        assert!(
            s.contains("https://gitlab.example.com/g/p/-/blob/main/README.md"),
            "{s}"
        );
        assert!(!s.contains('\n'), "{s}");
        // A lookalike host is not the project's GitLab.
        let s = untrusted_text("https://gitlab.example.com.evil.example/x", gl);
        assert_eq!(s, "[link removed]");
        let s = untrusted_text("javascript:alert(1)", gl);
        assert!(
            s.starts_with("[link removed]") && !s.contains("javascript"),
            "{s}"
        );
        assert_eq!(untrusted_text("www.evil.example", None), "[link removed]");
        // Ordinary prose and code stay readable.
        assert_eq!(
            untrusted_text(
                "std::vector<int> in src/a.cpp:12; mail dev@example.com",
                None
            ),
            "std::vector<int> in src/a.cpp:12; mail dev@example.com"
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate_chars("hi", 5), "hi");
    }

    #[test]
    fn ellipsize_marks_the_cut_and_keeps_whole_characters() {
        assert_eq!(ellipsize("short", 5), "short");
        assert_eq!(ellipsize("abcdef", 5), "abcd…");
        assert_eq!(ellipsize("abc  def", 6), "abc…");
        // Multi-byte characters are never split, and the result counts as
        // `max` characters however many bytes it holds.
        let s = "‘torch::autograd’ ü é 日本語のテキスト";
        for max in 1..s.chars().count() {
            let e = ellipsize(s, max);
            assert!(e.chars().count() <= max, "{max}: {e}");
            assert!(e.ends_with('…'), "{max}: {e}");
            assert!(s.starts_with(e.trim_end_matches('…')), "{max}: {e}");
        }
        assert_eq!(ellipsize("日本語", 3), "日本語");
        assert_eq!(ellipsize("日本語x", 3), "日本…");
    }
}
