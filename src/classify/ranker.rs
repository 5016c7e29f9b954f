//! The line ranker: which candidate line is the failure.
//!
//! The rule catalog names the category and flags lines; the order of the
//! evidence comes from a small linear model over features that carry across
//! projects and CI systems (how strongly rules flagged a line, its colour,
//! where it sits relative to the CI system's failure line, how often its text
//! repeats, its shape: a stack frame, a progress bar, a warning...). The
//! weights are learned offline from labelled real logs with leave-project-out
//! folds (`tests/eval/ranker.py`, which writes `ranker.json`); the binary only
//! embeds the numbers.
//!
//! Features are cheap: they are computed only for candidate lines (the
//! lines rules kept, the lines just above the failure, lines printed in
//! red), at the end of the log.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::trace::{SectionKind, Style};

/// The model's inputs, in order. `ranker.json` names them, so a model made
/// for another feature list is refused.
pub const FEATURES: &[&str] = &[
    "rule_score",
    "in_category",
    "categorised",
    "generic_rule",
    "n_rules",
    "red",
    "bold",
    "yellow",
    "tail",
    "styled_only",
    "above_anchor",
    "dist_anchor",
    "near_anchor",
    "rel_pos",
    "after_script",
    "teardown",
    "setup",
    "repeats",
    "first_of_text",
    "last_of_text",
    "indent",
    "frame",
    "path_ref",
    "warning",
    "progress",
    "kw_error",
    "kw_fail",
    "kw_fatal",
    "kw_exception",
    "kw_denied",
    "kw_not_found",
    "kw_killed",
    "kw_timeout",
    "exit_status",
    "runner_footer",
    "length",
    "summary",
    "message_shape",
    "dist_step_end",
    "anchor_known",
    "tail_anchored",
    "no_signal",
    "rules_first",
    "rules_rank",
    "first_of_rule",
    "rule_lines",
];

/// Number of features.
pub const N: usize = FEATURES.len();

/// One candidate line as the scanner saw it.
#[derive(Debug, Clone, Default)]
pub struct Candidate<'a> {
    pub line: u64,
    pub text: &'a [u8],
    pub kind: Option<SectionKind>,
    /// The rules' heuristic score (weight × section × distance), 0 without a rule.
    pub rule_score: f64,
    /// A rule of the verdict's category picked it.
    pub in_category: bool,
    /// Some categorised rule picked it.
    pub categorised: bool,
    /// Some evidence-only rule picked it.
    pub generic: bool,
    pub n_rules: usize,
    pub style: Style,
    /// One of the last lines above the failure line (no rule needed).
    pub tail: bool,
    /// Occurrences of its text (numbers folded) among the candidate lines.
    pub repeats: u32,
    pub first_of_text: bool,
    pub last_of_text: bool,
    pub runner_footer: bool,
    /// Its place in the rules' own order (the verdict's category first, then
    /// the rules' score), 0 for the first; `None` when no rule picked it.
    pub rules_rank: Option<usize>,
    /// The first line its best rule matched in the log (the first of a
    /// cluster: the first failing test, the first compiler error).
    pub first_of_rule: bool,
    /// How many lines its best rule matched in the whole log.
    pub rule_lines: u64,
}

/// Where the log's failure sits.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// The CI system's failure line, else the last line.
    pub anchor: u64,
    pub lines: u64,
    /// The end of the failing step, when known, else the anchor.
    pub step_end: u64,
    /// The CI system said where the step failed (else the anchor is the
    /// log's last line).
    pub anchor_known: bool,
}

fn ln1(x: f64) -> f64 {
    (1.0 + x).ln()
}

/// ASCII case-insensitive substring test (needles are lowercase).
fn has(text: &[u8], needle: &[u8]) -> bool {
    text.len() >= needle.len()
        && text
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// `has` as a whole word: not inside a longer identifier.
fn has_word(text: &[u8], needle: &[u8]) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let n = needle.len();
    if text.len() < n {
        return false;
    }
    (0..=text.len() - n).any(|i| {
        text[i..i + n].eq_ignore_ascii_case(needle)
            && (i == 0 || !word(text[i - 1]))
            && text.get(i + n).is_none_or(|&c| !word(c))
    })
}

/// `file.ext:12` somewhere in the line.
fn path_ref(text: &[u8]) -> bool {
    text.iter().enumerate().any(|(i, &c)| {
        c == b':' && text.get(i + 1).is_some_and(u8::is_ascii_digit) && i >= 3 && {
            // An extension of 1-6 letters right before the colon.
            let mut j = i;
            while j > 0 && text[j - 1].is_ascii_alphanumeric() && i - j <= 6 {
                j -= 1;
            }
            j < i && j > 0 && text[j - 1] == b'.'
        }
    })
}

/// A stack frame: `at pkg.Class(File.java:12)`, `File "x.py", line 3`,
/// `#3 0x… in`, `from /path:12:in`.
fn frame(trimmed: &[u8]) -> bool {
    trimmed.starts_with(b"at ")
        || trimmed.starts_with(b"File \"")
        || trimmed.starts_with(b"from ")
        || (trimmed.first() == Some(&b'#') && trimmed.get(1).is_some_and(u8::is_ascii_digit))
        || trimmed.starts_with(b"... ")
}

/// Download and progress chatter.
fn progress(text: &[u8]) -> bool {
    has(text, b"downloading")
        || has(text, b"downloaded")
        || has(text, b"kb/s")
        || has(text, b"mb/s")
        || has(text, b"progress")
        || (text.contains(&b'%') && text.iter().any(u8::is_ascii_digit) && has(text, b"%"))
}

/// `12 passed, 1 failed`-style summaries.
fn summary(text: &[u8]) -> bool {
    text.iter().any(u8::is_ascii_digit)
        && (has_word(text, b"passed")
            || has_word(text, b"failures")
            || has_word(text, b"errors")
            || has_word(text, b"tests"))
        && (text.contains(&b',') || has(text, b" of "))
}

/// `Something: message`: a named error and what it says.
fn message_shape(trimmed: &[u8]) -> bool {
    let head = trimmed
        .iter()
        .take_while(|c| !c.is_ascii_whitespace())
        .count();
    trimmed.get(head.saturating_sub(1)) == Some(&b':') && head > 1
}

/// Any of the failure words.
fn keyword(text: &[u8]) -> bool {
    [
        &b"error"[..],
        b"fail",
        b"fatal",
        b"exception",
        b"denied",
        b"not found",
        b"killed",
        b"timeout",
        b"timed out",
    ]
    .iter()
    .any(|k| has(text, k))
}

fn exit_status(text: &[u8]) -> bool {
    (has(text, b"exit code") || has(text, b"exit status") || has(text, b"exited with"))
        && text
            .iter()
            .rev()
            .find(|c| c.is_ascii_digit())
            .is_some_and(|&c| c != b'0' || text.iter().filter(|c| c.is_ascii_digit()).count() > 1)
}

/// The feature vector of `c`.
pub fn features(c: &Candidate<'_>, f: Frame) -> [f64; N] {
    let text = c.text;
    let indent = text
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let trimmed = &text[indent..];
    let dist = c.line.abs_diff(f.anchor) as f64;
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    [
        c.rule_score,
        b(c.in_category),
        b(c.categorised),
        b(c.generic && !c.categorised),
        (c.n_rules.min(4) as f64) / 4.0,
        b(c.style.red),
        b(c.style.bold),
        b(c.style.yellow),
        b(c.tail && c.n_rules == 0),
        b(c.style.red && c.n_rules == 0 && !c.tail),
        b(c.line < f.anchor),
        ln1(dist) / 8.0,
        b(c.line < f.anchor && dist <= 3.0),
        c.line as f64 / f.lines.max(1) as f64,
        b(c.kind == Some(SectionKind::AfterScript)),
        b(c.kind == Some(SectionKind::Teardown)),
        b(c.kind == Some(SectionKind::Setup)),
        ln1(f64::from(c.repeats.saturating_sub(1))) / 5.0,
        b(c.first_of_text),
        b(c.last_of_text),
        (indent.min(16) as f64) / 16.0,
        b(frame(trimmed)),
        b(path_ref(text)),
        b(has(text, b"warn") || has(text, b"deprecat")),
        b(progress(text)),
        b(has_word(text, b"error") || has_word(text, b"errors")),
        b(has(text, b"fail")),
        b(has_word(text, b"fatal")),
        b(has(text, b"exception")),
        b(has(text, b"denied")),
        b(has(text, b"not found") || has(text, b"no such")),
        b(has_word(text, b"killed")),
        b(has(text, b"timeout") || has(text, b"timed out")),
        b(exit_status(text)),
        b(c.runner_footer),
        ln1(text.len() as f64) / 7.0,
        b(summary(text)),
        b(message_shape(trimmed)),
        ln1(c.line.abs_diff(f.step_end) as f64) / 8.0,
        b(f.anchor_known),
        b(c.tail && f.anchor_known),
        b(c.n_rules == 0 && !c.style.red && !c.style.bold && !keyword(text)),
        b(c.rules_rank == Some(0)),
        c.rules_rank.map_or(0.0, |r| 1.0 / (1.0 + r as f64)),
        b(c.first_of_rule),
        ln1(c.rule_lines as f64) / 8.0,
    ]
}

/// A linear model over [`FEATURES`]: higher scores rank first.
#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    pub features: Vec<String>,
    pub weights: Vec<f64>,
    pub bias: f64,
    /// How it was trained, for people.
    #[serde(default)]
    pub trained: String,
}

impl Model {
    pub fn score(&self, x: &[f64; N]) -> f64 {
        self.bias + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }

    /// Parses and checks a model file's text.
    pub fn parse(text: &str) -> Result<Model, String> {
        let m: Model = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if m.features.len() != N
            || m.weights.len() != N
            || m.features.iter().zip(FEATURES).any(|(a, b)| a != b)
            || m.weights.iter().any(|w| !w.is_finite())
            || !m.bias.is_finite()
        {
            return Err(format!(
                "the model's features are not this build's ({N}: {})",
                FEATURES.join(", ")
            ));
        }
        Ok(m)
    }
}

/// The embedded weights (see `tests/eval/ranker.py`).
pub const MODEL: &str = include_str!("ranker.json");

static BUILTIN: LazyLock<Model> = LazyLock::new(|| {
    // Checked by a unit test: the embedded file always parses.
    Model::parse(MODEL).unwrap_or_else(|_| Model {
        features: FEATURES.iter().map(|s| (*s).to_string()).collect(),
        weights: {
            let mut w = vec![0.0; N];
            w[0] = 1.0;
            w[1] = 2.0;
            w
        },
        bias: 0.0,
        trained: String::new(),
    })
});

/// `RUNNERIQ_RANKER=FILE` replaces the embedded model, for evaluating a
/// model trained without some folds (`tests/eval/ranker.py`); a development
/// knob, not a user setting.
static OVERRIDE: LazyLock<Option<Model>> = LazyLock::new(|| {
    let path = std::env::var_os("RUNNERIQ_RANKER")?;
    let text = std::fs::read_to_string(&path).ok()?;
    match Model::parse(&text) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!(
                "runneriq: warning: RUNNERIQ_RANKER={}: {e}; using the built-in model",
                std::path::Path::new(&path).display()
            );
            None
        }
    }
});

/// The model in use.
pub fn model() -> &'static Model {
    OVERRIDE.as_ref().unwrap_or(&BUILTIN)
}

/// FNV-1a of `text` with every run of digits folded to one `0` and case
/// ignored: `retry 3 of 5` and `retry 4 of 5` are the same line.
pub fn text_key(text: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut in_digits = false;
    for &c in text {
        let c = if c.is_ascii_digit() {
            if in_digits {
                continue;
            }
            in_digits = true;
            b'0'
        } else {
            in_digits = false;
            c.to_ascii_lowercase()
        };
        h = (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_fits_this_feature_list() {
        let m = Model::parse(MODEL).unwrap();
        assert_eq!(m.weights.len(), N);
        let mut bad = MODEL.replacen("rule_score", "something_else", 1);
        assert!(Model::parse(&bad).is_err());
        bad = MODEL.to_string();
        assert!(Model::parse(&bad.replacen("\"bias\"", "\"bias_\"", 1)).is_err());
    }

    #[test]
    fn shapes() {
        assert!(path_ref(b"src/main.rs:12:5: error"));
        assert!(path_ref(b"  File foo.py:3"));
        assert!(!path_ref(b"12:30:00 started"));
        assert!(frame(b"at org.junit.Assert.fail(Assert.java:88)"));
        assert!(frame(b"File \"x.py\", line 3, in f"));
        assert!(progress(b"Downloading foo.tar.gz (12 MB)"));
        assert!(progress(b" 45% |#####     |"));
        assert!(summary(b"Tests run: 12, Failures: 1, Errors: 0"));
        assert!(summary(b"=== 3 failed, 97 passed in 2.1s ==="));
        assert!(message_shape(b"AssertionError: expected 1"));
        assert!(!message_shape(b"just words here"));
        assert!(has_word(b"Error: x", b"error"));
        assert!(!has_word(b"errorprone", b"error"));
        assert!(exit_status(b"Process completed with exit code 1."));
        assert!(!exit_status(b"exited with 0"));
        assert_eq!(text_key(b"retry 3 of 5"), text_key(b"Retry 41 of 5"));
        assert_ne!(text_key(b"retry 3 of 5"), text_key(b"retry 3 of x"));
    }

    #[test]
    fn features_are_in_range() {
        let c = Candidate {
            line: 90,
            text: b"  ERROR: build failed: killed",
            rule_score: 0.8,
            n_rules: 2,
            repeats: 3,
            ..Candidate::default()
        };
        let x = features(
            &c,
            Frame {
                anchor: 100,
                lines: 120,
                step_end: 99,
                anchor_known: true,
            },
        );
        assert!(
            x.iter().all(|v| v.is_finite() && (0.0..=2.0).contains(v)),
            "{x:?}"
        );
    }
}
