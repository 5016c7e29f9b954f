//! Terminal and Markdown renderings of one classification.

use std::fmt::Write;

use super::{Classification, Evidence};
use crate::publish::sanitize::{self, fence_for};

fn header(c: &Classification) -> String {
    let mut h = format!("{} ({})", c.title, c.category);
    if c.category != "unknown" {
        let _ = write!(h, ", confidence {:.2}", c.confidence);
        match c.decided_by {
            super::DecidedBy::FailureReason => {
                let _ = write!(
                    h,
                    ", from GitLab's failure_reason `{}`",
                    c.failure_reason.as_deref().unwrap_or("")
                );
            }
            super::DecidedBy::Rules => h.push_str(", decided by rules"),
            super::DecidedBy::None => {}
            super::DecidedBy::Llm => h.push_str(", decided by an LLM"),
        }
    } else {
        h.push_str(": no rule matched");
    }
    h
}

fn width(evidence: &[Evidence]) -> usize {
    evidence
        .iter()
        .flat_map(|e| {
            std::iter::once(e.line)
                .chain(e.before.iter().map(|c| c.line))
                .chain(e.after.iter().map(|c| c.line))
        })
        .max()
        .unwrap_or(1)
        .to_string()
        .len()
}

/// Evidence in the order a reader wants it: ranked, except the log's last
/// lines (no rule matched), which are ranked closest to the failure first
/// and read best in the log's order.
fn reading_order(c: &Classification) -> Vec<&Evidence> {
    let mut shown: Vec<&Evidence> = c.evidence.iter().collect();
    if shown.iter().all(|e| e.rule == "tail") {
        shown.sort_by_key(|e| e.line);
    }
    shown
}

/// Plain text for a terminal: evidence lines marked with `>`, context indented.
pub fn text(file: &str, c: &Classification) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{file}: {}", header(c));
    if let Some(s) = &c.section {
        let _ = writeln!(out, "  failing step: {s}");
    }
    if c.log.output_limit_hit {
        let _ = writeln!(
            out,
            "  note: the runner cut this log at its output limit; the final error may be missing"
        );
    }
    let _ = writeln!(out, "  next: {}", c.advice);
    let w = width(&c.evidence);
    for e in reading_order(c) {
        out.push('\n');
        for b in &e.before {
            let _ = writeln!(out, "    {:>w$} | {}", b.line, b.text);
        }
        let _ = writeln!(out, "  > {:>w$} | {}", e.line, e.text);
        for a in &e.after {
            let _ = writeln!(out, "    {:>w$} | {}", a.line, a.text);
        }
    }
    out
}

/// Markdown: a heading line and the evidence in one fenced block.
pub fn markdown(file: &str, c: &Classification) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "**{}**: {}", file.replace('*', "\\*"), header(c));
    if let Some(s) = &c.section {
        let _ = writeln!(out, "\nFailing step: `{s}`");
    }
    let _ = writeln!(out, "\nNext: {}", c.advice);
    if !c.evidence.is_empty() {
        let w = width(&c.evidence);
        let mut body = String::new();
        // Ranked excerpts are apart; the last lines only where lines are missing.
        let last_lines = c.evidence.iter().all(|e| e.rule == "tail");
        let mut prev: Option<u64> = None;
        for e in reading_order(c) {
            let first = e.before.first().map_or(e.line, |b| b.line);
            if prev.is_some_and(|p| !last_lines || p + 1 < first) {
                body.push_str("…\n");
            }
            prev = Some(e.after.last().map_or(e.line, |a| a.line));
            for b in &e.before {
                let _ = writeln!(body, "  {:>w$} | {}", b.line, b.text);
            }
            let _ = writeln!(body, "> {:>w$} | {}", e.line, e.text);
            for a in &e.after {
                let _ = writeln!(body, "  {:>w$} | {}", a.line, a.text);
            }
        }
        let fence = fence_for(&body);
        let _ = write!(out, "\n{fence}text\n{body}{fence}\n");
    }
    out
}

/// The LLM's part of `classify --format md` (escaped: its prose is outside
/// text).
impl crate::llm::Consultation {
    /// Lines for the Markdown rendering of `classify` (escaped).
    pub fn markdown(&self) -> String {
        let i = sanitize::inline;
        match self {
            crate::llm::Consultation::Answered(o) if o.taken => format!(
                "\n**Verdict by LLM** ({}): {}\n\n**Suggested fix (LLM):** {}\n",
                sanitize::code_span(&o.model),
                i(&o.summary),
                i(&o.suggested_fix)
            ),
            crate::llm::Consultation::Answered(o) => format!(
                "\nThe LLM ({}) was not used: {}.\n",
                sanitize::code_span(&o.model),
                i(o.reason.as_deref().unwrap_or(""))
            ),
            crate::llm::Consultation::Unavailable(r) => format!(
                "\nLLM second opinion unavailable: {}; the rules' answer stands.\n",
                i(r)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_of_an_unknown_failure_read_in_the_log_order() {
        let cat = super::super::Catalog::builtin().unwrap();
        let log = "hello\nworld\n\nsomething odd\nERROR: Job failed: exit code 3\n";
        let c = super::super::classify_reader(
            log.as_bytes(),
            &cat,
            &super::super::ClassifyOptions::default(),
        )
        .unwrap();
        let t = text("log", &c);
        assert!(
            t.ends_with("\n  > 1 | hello\n\n  > 2 | world\n\n  > 4 | something odd\n"),
            "{t}"
        );
        let md = markdown("log", &c);
        assert!(
            md.ends_with("```text\n> 1 | hello\n> 2 | world\n…\n> 4 | something odd\n```\n"),
            "{md}"
        );
    }

    #[test]
    fn fence_outgrows_backticks_in_the_log() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("``````"), "```````");
    }
}
