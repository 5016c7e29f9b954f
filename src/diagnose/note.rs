//! The diagnosis as data ([`Note`], what `--format json` prints and the template
//! receives), its one-line verdict, the plain-text summary for the job log, and
//! rendering under GitLab's note size limit.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use minijinja::{Environment, Value, syntax::SyntaxConfig};

use super::correlate::{FileHit, FileRef};
use crate::classify::Evidence;

pub use super::diagnosis::{ChangesInfo, Counts, JobBrief, JobReport, Note, Previous};
use crate::error::input;
use crate::publish::MARKER;
use crate::publish::sanitize::{self, NOTE_BUDGET};

/// The built-in template (see `templates/note.md.j2`).
pub const NOTE_TEMPLATE: &str = include_str!("../../templates/note.md.j2");
pub const NOTE_TEMPLATE_NAME: &str = "note.md.j2";

/// Evidence items shown per job (the classifier ranks more, for correlation).
const SHOWN_EVIDENCE: usize = 3;
/// Entries of the short lists (passed on retry, allowed to fail) shown.
const MAX_BRIEF: usize = 50;
const MAX_WARNINGS: usize = 10;
/// Longest verdict line.
const MAX_VERDICT_CHARS: usize = 4000;
/// Longest key line, stated above the excerpt: about two lines of a merge
/// request's column.
pub const KEY_LINE_CHARS: usize = 160;
/// Longest context line of an excerpt: GitLab does not wrap code blocks, and
/// a compiler's 2,000-character command line only hides the lines around it.
pub const EXCERPT_LINE_CHARS: usize = 240;
/// Longest evidence line (marked `>`) of an excerpt: the error itself, longer
/// than the key line, is kept whole up to this length.
pub const EVIDENCE_LINE_CHARS: usize = 480;

/// How much evidence a block shows: `(items, with context)`, from full to none.
const EVIDENCE_LEVELS: &[(usize, bool)] =
    &[(3, true), (2, true), (1, true), (1, false), (0, false)];

/// A fenced, line-numbered block of the first `items` evidence entries, merged
/// in line order; `>` marks evidence lines, `…` gaps. Context lines longer
/// than [`EXCERPT_LINE_CHARS`] characters, evidence lines longer than
/// [`EVIDENCE_LINE_CHARS`], are cut, ending with `…`.
pub fn evidence_block(evidence: &[Evidence], items: usize, context: bool) -> String {
    let mut lines: BTreeMap<u64, (&str, bool)> = BTreeMap::new();
    for e in evidence.iter().take(items) {
        if context {
            for c in e.before.iter().chain(e.after.iter()) {
                lines.entry(c.line).or_insert((c.text.as_str(), false));
            }
        }
        lines.insert(e.line, (e.text.as_str(), true));
    }
    if lines.is_empty() {
        return String::new();
    }
    let width = lines.keys().next_back().map_or(1, |n| n.to_string().len());
    let mut body = String::new();
    let mut prev: Option<u64> = None;
    for (n, (text, marked)) in &lines {
        if prev.is_some_and(|p| p + 1 < *n) {
            body.push_str("…\n");
        }
        let mark = if *marked { '>' } else { ' ' };
        let text = sanitize::visible(text);
        let max = if *marked {
            EVIDENCE_LINE_CHARS
        } else {
            EXCERPT_LINE_CHARS
        };
        let text = sanitize::ellipsize(&text, max);
        let line = format!("{mark} {n:>width$} | {text}");
        body.push_str(line.trim_end());
        body.push('\n');
        prev = Some(*n);
    }
    sanitize::fence_block("text", &body)
}

/// The key line of `evidence`: its first line that is not blank, as
/// `(line number, text)`; see [`JobReport::key_line`].
pub fn key_line(evidence: &[Evidence]) -> Option<(u64, String)> {
    let e = evidence.iter().find(|e| !e.text.trim().is_empty())?;
    let flat = sanitize::visible(&e.text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some((
        e.line,
        sanitize::ellipsize(&flat, KEY_LINE_CHARS).into_owned(),
    ))
}

impl JobReport {
    /// Rebuilds the evidence block at a level of [`EVIDENCE_LEVELS`], and the
    /// key line (kept at every level: it is what the reader needs first).
    fn set_evidence_level(&mut self, level: usize) {
        let (items, context) = EVIDENCE_LEVELS[level.min(EVIDENCE_LEVELS.len() - 1)];
        let shown = self.evidence.len().min(SHOWN_EVIDENCE);
        self.evidence_block = evidence_block(&self.evidence, items, context);
        self.evidence_truncated = shown > 0 && (items < shown || (!context && level > 0));
        let key = key_line(&self.evidence);
        self.key_line_number = key.as_ref().map(|k| k.0);
        self.key_line = key.map(|k| k.1);
    }
}

/// Lower-cases a category title for use mid-sentence, keeping acronyms ("CI").
fn mid_sentence(title: &str) -> String {
    let mut chars = title.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
            let mut s = a.to_lowercase().collect::<String>();
            s.push_str(&title[a.len_utf8()..]);
            s
        }
        _ => title.to_string(),
    }
}

/// What failed in `jobs`, counted in jobs, as Markdown and as plain text, e.g.
/// "1 compilation error in `src/parser.rs` (your change), 1 network or
/// transient error (transient — retry)". Jobs with the same category and file
/// are counted together, in order of first appearance; the counts add up to
/// the jobs of `jobs` (each entry's `jobs_in_group`).
pub fn breakdown(jobs: &[JobReport]) -> (String, String) {
    struct Group<'a> {
        key: (Option<&'a str>, Option<&'a str>),
        title: String,
        file: Option<&'a str>,
        change: bool,
        transient: bool,
        count: usize,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    for j in jobs {
        let key = (
            j.readable.then_some(j.category.as_deref()).flatten(),
            j.headline_file.as_deref(),
        );
        if let Some(g) = groups.iter_mut().find(|g| g.key == key) {
            g.count += j.jobs_in_group;
            continue;
        }
        groups.push(Group {
            key,
            title: if j.readable {
                mid_sentence(j.title.as_deref().unwrap_or("unknown failure"))
            } else {
                String::new()
            },
            file: j.headline_file.as_deref(),
            change: j.headline_is_change,
            transient: j.transient && j.readable,
            count: j.jobs_in_group,
        });
    }
    let mut md_parts = Vec::new();
    let mut text_parts = Vec::new();
    for g in &groups {
        let (md_head, text_head) = if g.title.is_empty() {
            let s = if g.count == 1 {
                "1 job whose log could not be read".to_string()
            } else {
                format!("{} jobs whose logs could not be read", g.count)
            };
            (s.clone(), s)
        } else if g.count == 1 {
            (
                format!("1 {}", sanitize::inline(&g.title)),
                format!("1 {}", g.title),
            )
        } else {
            (
                format!("{} {} jobs", g.count, sanitize::inline(&g.title)),
                format!("{} {} jobs", g.count, g.title),
            )
        };
        let mut md = md_head;
        let mut text = text_head;
        if let Some(f) = g.file {
            let _ = write!(md, " in {}", sanitize::code_span(f));
            let _ = write!(text, " in {f}");
            if g.change {
                md.push_str(" (your change)");
                text.push_str(" (your change)");
            }
        }
        if g.transient {
            md.push_str(" (transient — retry)");
            text.push_str(" (transient — retry)");
        }
        md_parts.push(md);
        text_parts.push(text);
    }
    (md_parts.join(", "), text_parts.join(", "))
}

/// The sentence under the note's first line, as Markdown and as plain text:
/// how many jobs failed (the sum of the first line's counts) and what the new
/// failures are, e.g. "6 jobs failed; the 2 new ones: 1 compilation error in
/// `src/parser.rs` (your change), 1 runner or system failure (transient —
/// retry)". `failed` is the note's detailed entries; with no new failure the
/// sentence says so and names what failed.
pub fn verdict(counts: &Counts, failed: &[JobReport]) -> (String, String) {
    let total = counts.total;
    let head = match total {
        0 => "No job failed".to_string(),
        1 => "1 job failed".to_string(),
        n => format!("{n} jobs failed"),
    };
    let new: Vec<JobReport> = failed
        .iter()
        .filter(|r| r.noise == "new")
        .cloned()
        .collect();
    let (md, text) = if counts.new > 0 {
        let (md, text) = breakdown(&new);
        let lead = if counts.new == total {
            String::new()
        } else if counts.new == 1 {
            "; the new one".to_string()
        } else {
            format!("; the {} new ones", counts.new)
        };
        (
            format!("{head}{lead}: {md}"),
            format!("{head}{lead}: {text}"),
        )
    } else if total == 0 {
        (head.clone(), head)
    } else {
        let none = if total == 1 {
            ", not a new failure"
        } else {
            ", none of them new"
        };
        (format!("{head}{none}"), format!("{head}{none}"))
    };
    (
        sanitize::truncate_chars(&md, MAX_VERDICT_CHARS).to_string(),
        sanitize::truncate_chars(&text, MAX_VERDICT_CHARS).to_string(),
    )
}

/// "1 new failure · 1 already failing on `main` · 2 flaky · 1 suppressed",
/// as Markdown and as plain text: the groups of the note in their order, in
/// jobs, adding up to `c.total`. Zero counts are left out, except "new".
pub fn headline(c: &Counts, upstream_branch: Option<&str>) -> (String, String) {
    let mut md = String::new();
    let mut text = String::new();
    match c.new {
        0 => md.push_str("No new failure"),
        1 => md.push_str("1 new failure"),
        k => {
            let _ = write!(md, "{k} new failures");
        }
    }
    text.push_str(&md);
    let mut part = |m: String, t: String| {
        md.push_str(" · ");
        md.push_str(&m);
        text.push_str(" · ");
        text.push_str(&t);
    };
    if c.upstream > 0 {
        let b = upstream_branch.unwrap_or("the target branch");
        part(
            format!(
                "{} already failing on {}",
                c.upstream,
                sanitize::code_span(b)
            ),
            format!("{} already failing on {b}", c.upstream),
        );
    }
    if c.flaky > 0 {
        part(format!("{} flaky", c.flaky), format!("{} flaky", c.flaky));
    }
    if c.suppressed > 0 {
        part(
            format!("{} suppressed", c.suppressed),
            format!("{} suppressed", c.suppressed),
        );
    }
    if c.allowed > 0 {
        part(
            format!("{} allowed to fail", c.allowed),
            format!("{} allowed to fail", c.allowed),
        );
    }
    (md, text)
}

/// The first line and the verdict sentence, from the counts triage left
/// (and the upstream pipeline's branch).
pub fn set_sentences(n: &mut Note) {
    let upstream_branch = n.upstream.as_ref().map(|u| u.branch.as_str());
    let (md, text) = headline(&n.counts, upstream_branch);
    n.headline_md = md;
    n.headline = text;
    let (vmd, vtext) = verdict(&n.counts, &n.failed);
    n.verdict_md = vmd;
    n.verdict = vtext;
}

/// Caps a brief list, returning how many were left out.
pub fn cap_brief(list: &mut Vec<JobBrief>) -> usize {
    let extra = list.len().saturating_sub(MAX_BRIEF);
    list.truncate(MAX_BRIEF);
    extra
}

/// Caps warnings (each one line).
pub fn cap_warnings(list: &mut Vec<String>) {
    list.truncate(MAX_WARNINGS);
}

/// The earlier diagnosis of a resolved note, from its kept state: redacted
/// again, invisible characters shown, inside a fence. Its link is the current
/// pipeline's with the kept pipeline's id, never a URL read back.
pub fn previous_diagnosis(
    kept: &crate::publish::notify::Kept,
    current_pipeline_url: Option<&str>,
    redactor: &crate::llm::redact::Redactor,
) -> Option<Previous> {
    let clipped = sanitize::truncate_chars(&kept.summary, crate::publish::notify::MAX_KEPT_CHARS);
    let text = sanitize::visible(&redactor.text(clipped));
    let text = text.trim_matches('\n');
    if text.trim().is_empty() {
        return None;
    }
    let pipeline_url = sibling_pipeline_url(current_pipeline_url, kept.pipeline);
    Some(Previous {
        pipeline_id: kept.pipeline,
        pipeline_url,
        text: text.to_string(),
        block: sanitize::fence_block("text", text),
    })
}

/// The URL of pipeline `id` of the same project, made from a pipeline URL
/// of ours (`…/-/pipelines/<n>`), never from a URL read back.
pub fn sibling_pipeline_url(current_pipeline_url: Option<&str>, id: u64) -> Option<String> {
    let (base, n) = current_pipeline_url?.rsplit_once("/-/pipelines/")?;
    (n.parse::<u64>().is_ok() && sanitize::safe_url(base))
        .then(|| format!("{base}/-/pipelines/{id}"))
}

/// The note template environment: built-in, or `note.md.j2` from `--templates DIR`.
pub struct Templates {
    env: Environment<'static>,
    /// The user's template file (`--templates DIR`), for errors.
    user_file: Option<String>,
}

/// Template instructions one rendering may execute: the built-in note with
/// hundreds of failed jobs needs well under a tenth of it, and a template
/// that loops without end stops with an error instead of hanging the job.
pub const TEMPLATE_FUEL: u64 = 20_000_000;

fn filter_code(v: String) -> String {
    sanitize::code_span(&v)
}

fn filter_inline(v: String) -> String {
    sanitize::inline(&v)
}

fn filter_code_link(v: String, url: Option<String>) -> String {
    sanitize::link(&sanitize::code_span(&v), url.as_deref())
}

/// A text link; without a usable URL the text becomes inline code, so that
/// "#123" is not turned into an issue reference by GitLab.
fn filter_text_link(v: String, url: Option<String>) -> String {
    sanitize::text_link(&v, url.as_deref())
}

impl Templates {
    /// Loads the templates; a missing directory or a template that does not
    /// compile is an input error naming the file.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .context("template syntax configuration")?;
        env.set_syntax(syntax);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.add_filter("code", filter_code);
        env.add_filter("inline", filter_inline);
        env.add_filter("code_link", filter_code_link);
        env.add_filter("text_link", filter_text_link);
        let mut source = NOTE_TEMPLATE.to_string();
        let mut origin = format!("built-in {NOTE_TEMPLATE_NAME}");
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(input(format!(
                    "--templates {}: not a directory",
                    dir.display()
                )));
            }
            let file = dir.join(NOTE_TEMPLATE_NAME);
            if file.is_file() {
                let bytes = crate::input::read_at_most(&file, 1 << 20).map_err(|e| {
                    input(format!(
                        "{}: cannot read: {}",
                        file.display(),
                        crate::input::io_reason(&e)
                    ))
                })?;
                source = String::from_utf8(bytes)
                    .map_err(|_| input(format!("{}: not UTF-8 text", file.display())))?;
                origin = file.display().to_string();
            }
        }
        env.add_template_owned(NOTE_TEMPLATE_NAME, source)
            .map_err(|e| input(format!("{origin}: {e}")))?;
        let user_file = (origin != format!("built-in {NOTE_TEMPLATE_NAME}")).then_some(origin);
        Ok(Templates { env, user_file })
    }

    /// Renders the note and applies the final safety pass.
    pub fn render(&self, note: &Note) -> anyhow::Result<String> {
        let tpl = self
            .env
            .get_template(NOTE_TEMPLATE_NAME)
            .context("loading the note template")?;
        let ctx = to_value(&serde_json::to_value(note).context("encoding the note")?);
        let out = tpl.render(ctx).map_err(|e| match &self.user_file {
            // The user's template is input: a mistake in it (or a loop that
            // runs out of fuel) is an input error naming the file.
            Some(file) => input(format!("{file}: {e}")),
            None => anyhow::anyhow!("rendering the built-in {NOTE_TEMPLATE_NAME}: {e}"),
        })?;
        Ok(sanitize::guard(&out))
    }

    /// Renders under [`NOTE_BUDGET`] characters: first less evidence per job
    /// (each cut job says so and links its log), then fewer jobs in detail, and
    /// as a last resort a minimal note. Never returns an over-limit body.
    pub fn render_within_budget(&self, note: &Note) -> anyhow::Result<String> {
        self.render_with_budget(note, NOTE_BUDGET)
    }

    pub(crate) fn render_with_budget(&self, note: &Note, budget: usize) -> anyhow::Result<String> {
        let fits = |s: &str| s.chars().count() <= budget;
        let body = self.render(note)?;
        if fits(&body) {
            return Ok(body);
        }
        let mut n = note.clone();
        for level in 1..EVIDENCE_LEVELS.len() {
            for j in &mut n.failed {
                j.set_evidence_level(level);
            }
            let body = self.render(&n)?;
            if fits(&body) {
                return Ok(body);
            }
        }
        let total = n.failed.len() + n.omitted_failed;
        let mut keep = n.failed.len();
        while keep > 0 {
            keep /= 2;
            n.failed.truncate(keep);
            n.omitted_failed = total - keep;
            n.previous = None;
            let body = self.render(&n)?;
            if fits(&body) {
                return Ok(body);
            }
        }
        let minimal = minimal_note(note);
        Ok(sanitize::truncate_chars(&minimal, budget).to_string())
    }
}

/// The smallest useful note, independent of any template.
fn minimal_note(note: &Note) -> String {
    let pipeline = filter_text_link(
        format!("pipeline #{}", note.pipeline_id),
        note.pipeline_url.clone(),
    );
    sanitize::guard(&format!(
        "{}\n{}\n### {}\n\nThe details did not fit in a GitLab note: see {pipeline}.\n",
        note.marker,
        note.pipeline_marker,
        sanitize::truncate_chars(&note.verdict_md, 2000)
    ))
}

/// JSON → template value (minijinja's serde support is not compiled in).
fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => a.iter().map(to_value).collect(),
        serde_json::Value::Object(o) => {
            Value::from_pairs(o.iter().map(|(k, v)| (k.as_str(), to_value(v))))
        }
    }
}

/// Plain text for the job log: the verdict, then per failed job its category,
/// failing step, first evidence line and changed files. Control characters
/// from logs are replaced so the summary cannot drive the terminal.
pub fn summary_text(note: &Note) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let mut out = String::new();
    let pipeline = format!("pipeline #{}", note.pipeline_id);
    match note.status.as_str() {
        "failed" => {
            let _ = writeln!(
                out,
                "RunnerIQ diagnosis of {pipeline}: {}\n  {}",
                clean(&note.headline),
                clean(&note.verdict)
            );
        }
        "passed" => {
            let _ = writeln!(out, "RunnerIQ: {pipeline} has no failed jobs.");
        }
        _ => {
            let _ = writeln!(
                out,
                "RunnerIQ: {pipeline} has no failed jobs so far ({} still running).",
                note.unfinished
            );
        }
    }
    for j in &note.failed {
        let _ = write!(
            out,
            "\n- {} (stage {}) [{}, severity {}]",
            clean(&j.name),
            clean(&j.stage),
            j.noise,
            j.severity.as_str()
        );
        if !j.same_failure.is_empty() {
            let names: Vec<String> = j.same_failure.iter().map(|b| clean(&b.name)).collect();
            let more = if j.omitted_same_failure > 0 {
                format!(" and {} more", j.omitted_same_failure)
            } else {
                String::new()
            };
            let _ = write!(out, ", same failure in {}{more}", names.join(", "));
        }
        if let Some(d) = &j.downstream {
            let _ = write!(out, ", in the pipeline started by {}", clean(d));
        }
        out.push('\n');
        if !j.readable {
            let _ = writeln!(
                out,
                "    its log could not be read: {}",
                clean(j.unreadable_reason.as_deref().unwrap_or("unknown reason"))
            );
        } else {
            let _ = write!(out, "    {}", clean(j.title.as_deref().unwrap_or("")));
            if let Some(c) = j
                .confidence_text
                .as_deref()
                .filter(|_| j.category.as_deref() != Some("unknown"))
            {
                let _ = write!(out, ", confidence {c}");
            }
            if let Some(s) = &j.section {
                let _ = write!(out, ", failing step {}", clean(s));
            }
            if let Some(o) = j.llm.as_ref().filter(|o| o.taken) {
                let _ = write!(out, ", verdict by LLM ({})", clean(&o.model));
            }
            out.push('\n');
            if let Some(why) = &j.incomplete {
                let _ = writeln!(
                    out,
                    "    its log could not be read completely: {}",
                    clean(why)
                );
            }
            if let Some(why) = &j.llm_unavailable {
                let _ = writeln!(out, "    LLM unavailable: {}", clean(why));
            }
            if let Some(t) = &j.tests {
                let _ = writeln!(
                    out,
                    "    failing tests: {} of {} in suite {}",
                    t.failing,
                    t.total,
                    clean(&t.suite)
                );
                for g in &t.groups {
                    for x in &g.tests {
                        let _ = write!(out, "    test {}", clean(&x.label));
                        if let Some(m) = &x.message {
                            let _ = write!(out, ": {}", clean(m));
                        }
                        out.push('\n');
                    }
                    if g.more > 0 {
                        let _ = writeln!(out, "    …and {} more with the same failure", g.more);
                    }
                }
                if t.more > 0 {
                    let _ = writeln!(out, "    …and {} more failing tests", t.more);
                }
            } else if let Some(e) = j.evidence.first() {
                let _ = writeln!(out, "    > {} | {}", e.line, clean(e.text.trim_end()));
            }
            for f in &j.changed_files {
                match f.line {
                    Some(l) => {
                        let _ = writeln!(
                            out,
                            "    points at a file you changed: {}:{l}",
                            clean(&f.path)
                        );
                    }
                    None => {
                        let _ =
                            writeln!(out, "    points at a file you changed: {}", clean(&f.path));
                    }
                }
            }
            if let Some(a) = &j.next_step {
                let _ = writeln!(out, "    next: {}", clean(a));
            }
        }
        if let Some(u) = &j.web_url {
            let _ = writeln!(out, "    {}", clean(u));
        }
    }
    if note.omitted_failed > 0 {
        let _ = writeln!(
            out,
            "\n…and {} more failed jobs (not detailed).",
            note.omitted_failed
        );
    }
    if !note.passed_on_retry.is_empty() {
        let names: Vec<String> = note
            .passed_on_retry
            .iter()
            .map(|j| clean(&j.name))
            .collect();
        let _ = writeln!(out, "\npassed on retry: {}", names.join(", "));
    }
    if !note.allowed_failures.is_empty() {
        let names: Vec<String> = note
            .allowed_failures
            .iter()
            .map(|j| clean(&j.name))
            .collect();
        let _ = writeln!(out, "\nallowed to fail: {}", names.join(", "));
    }
    if !note.suppressed.is_empty() {
        let names: Vec<String> = note.suppressed.iter().map(|s| clean(&s.job.name)).collect();
        let _ = writeln!(out, "\nsuppressed: {}", names.join(", "));
    }
    for w in &note.warnings {
        let _ = writeln!(out, "\nnot checked: {}", clean(w));
    }
    out
}

/// The second hidden comment: which pipeline, and what the note said about it.
pub fn pipeline_marker(pipeline_id: u64, status: &str) -> String {
    format!("<!-- runneriq:pipeline={pipeline_id} status={status} -->")
}

impl Note {
    /// Sets the status and the hidden comment that records it.
    pub fn set_status(&mut self, status: &str) {
        self.status = status.to_string();
        self.pipeline_marker = pipeline_marker(self.pipeline_id, status);
    }
}

/// Seed for a [`Note`] with no jobs yet; the orchestration fills it.
pub fn empty_note(project: &str, pipeline_id: u64) -> Note {
    Note {
        marker: MARKER.to_string(),
        pipeline_marker: pipeline_marker(pipeline_id, "failed"),
        version: env!("CARGO_PKG_VERSION").to_string(),
        status: "failed".to_string(),
        project: project.to_string(),
        pipeline_id,
        pipeline_url: None,
        target: None,
        branch: None,
        headline_md: String::new(),
        headline: String::new(),
        counts: Counts::default(),
        verdict_md: String::new(),
        verdict: String::new(),
        changes: ChangesInfo {
            source: None,
            files: 0,
            truncated: false,
            error: None,
        },
        failed: Vec::new(),
        omitted_failed: 0,
        passed_on_retry: Vec::new(),
        omitted_passed_on_retry: 0,
        allowed_failures: Vec::new(),
        omitted_allowed_failures: 0,
        unfinished: 0,
        suppressed: Vec::new(),
        omitted_suppressed: 0,
        upstream: None,
        history_branch: None,
        history_requests: 0,
        warnings: Vec::new(),
        previous: None,
    }
}

/// A [`JobReport`] skeleton from the job's identity; the orchestration adds
/// the classification.
#[allow(clippy::too_many_arguments)]
pub fn job_report(
    id: u64,
    name: &str,
    stage: &str,
    web_url: Option<String>,
    project: &str,
    pipeline_id: u64,
    downstream: Option<String>,
    failure_reason: Option<String>,
    attempts: u32,
    failed_attempts: u32,
) -> JobReport {
    JobReport {
        id,
        name: name.to_string(),
        stage: stage.to_string(),
        web_url,
        project: project.to_string(),
        pipeline_id,
        downstream,
        failure_reason,
        attempts,
        failed_attempts,
        fingerprint: String::new(),
        noise: "new".to_string(),
        severity: crate::noise::severity::Severity::Medium,
        severity_why: String::new(),
        kind: crate::noise::severity::JobKind::Test,
        history: None,
        upstream_job: None,
        jobs_in_group: 1,
        same_failure: Vec::new(),
        omitted_same_failure: 0,
        readable: false,
        unreadable_reason: None,
        category: None,
        title: None,
        confidence: None,
        confidence_text: None,
        decided_by: None,
        section: None,
        transient: false,
        advice: None,
        next_step: None,
        empty_log: false,
        output_limit_hit: false,
        incomplete: None,
        evidence: Vec::new(),
        key_line: None,
        key_line_number: None,
        evidence_block: String::new(),
        evidence_truncated: false,
        file_refs: Vec::new(),
        changed_files: Vec::new(),
        headline_file: None,
        headline_is_change: false,
        tests: None,
        llm: None,
        llm_unavailable: None,
    }
}

/// Records what the LLM fallback said about a job (its verdict, when taken,
/// is already in the classification `apply_classification` used).
pub fn apply_llm(r: &mut JobReport, consultation: crate::llm::Consultation) {
    match consultation {
        crate::llm::Consultation::Answered(o) => r.llm = Some(o),
        crate::llm::Consultation::Unavailable(why) => r.llm_unavailable = Some(why),
    }
}

/// Fills a report from a classification; `evidence` is kept to the shown items.
pub fn apply_classification(
    r: &mut JobReport,
    c: &crate::classify::Classification,
    refs: Vec<FileRef>,
    hits: Vec<FileHit>,
) {
    r.readable = true;
    r.category = Some(c.category.clone());
    r.title = Some(c.title.clone());
    r.confidence = Some(c.confidence);
    r.confidence_text = Some(format!("{:.2}", c.confidence));
    r.decided_by = Some(
        match c.decided_by {
            crate::classify::DecidedBy::Rules => "rules",
            crate::classify::DecidedBy::FailureReason => "failure_reason",
            crate::classify::DecidedBy::None => "none",
            crate::classify::DecidedBy::Llm => "llm",
        }
        .to_string(),
    );
    r.section = c.section.clone();
    r.transient = c.transient;
    r.advice = Some(c.advice.clone());
    r.next_step = Some(
        if c.transient && !c.advice.to_lowercase().contains("retry") {
            format!("Retry the job: this looks transient. {}", c.advice)
        } else {
            c.advice.clone()
        },
    );
    r.empty_log = c.log.bytes == 0;
    r.output_limit_hit = c.log.output_limit_hit;
    r.incomplete = c.log.incomplete.clone();
    r.evidence = c.evidence.iter().take(SHOWN_EVIDENCE).cloned().collect();
    r.set_evidence_level(0);
    if let Some((f, change)) = super::correlate::headline_file(&refs, &hits) {
        r.headline_file = Some(f.to_string());
        r.headline_is_change = change;
    }
    r.file_refs = refs;
    r.changed_files = hits;
}

/// Redacts secrets (tokens, keys, passwords, credentials in URLs) from the
/// evidence and context lines the note, the job log and `--format json`
/// show: log text leaves the machine only redacted.
pub fn redact_evidence(r: &mut JobReport, redactor: &crate::llm::redact::Redactor) {
    for e in &mut r.evidence {
        let mut all: Vec<(u64, String)> = e
            .before
            .iter()
            .map(|c| (c.line, c.text.clone()))
            .chain(std::iter::once((e.line, e.text.clone())))
            .chain(e.after.iter().map(|c| (c.line, c.text.clone())))
            .collect();
        all = redactor.lines(&all);
        let mut it = all.into_iter();
        for c in e.before.iter_mut() {
            if let Some((_, t)) = it.next() {
                c.text = t;
            }
        }
        if let Some((_, t)) = it.next() {
            e.text = t;
        }
        for c in e.after.iter_mut() {
            if let Some((_, t)) = it.next() {
                c.text = t;
            }
        }
    }
    r.set_evidence_level(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ContextLine;
    use crate::diagnose::triage::Counts;

    fn ev(line: u64, text: &str) -> Evidence {
        Evidence {
            line,
            text: text.into(),
            rule: "r".into(),
            category: None,
            score: 1.0,
            section: None,
            before: vec![ContextLine {
                line: line - 1,
                text: "before".into(),
            }],
            after: vec![ContextLine {
                line: line + 1,
                text: "after".into(),
            }],
        }
    }

    fn report(
        name: &str,
        category: &str,
        title: &str,
        file: Option<(&str, bool)>,
        transient: bool,
    ) -> JobReport {
        let mut r = job_report(1, name, "test", None, "1", 9, None, None, 1, 1);
        r.readable = true;
        r.category = Some(category.into());
        r.title = Some(title.into());
        r.transient = transient;
        if let Some((f, c)) = file {
            r.headline_file = Some(f.into());
            r.headline_is_change = c;
        }
        r
    }

    #[test]
    fn evidence_is_redacted_before_it_reaches_the_note() {
        let mut r = report("build", "compilation", "Compilation error", None, false);
        let mut e = ev(
            10,
            "fatal: could not read from https://ci:glpat-abcdefghij0123456789@gitlab.example.com/g/p.git",
        );
        e.before[0].text = "export GITLAB_TOKEN=glpat-abcdefghij0123456789".into();
        e.after[0].text = "password=hunter2hunter2".into();
        r.evidence = vec![e];
        redact_evidence(
            &mut r,
            &crate::llm::redact::Redactor::new(["my-own-token-value-123"]),
        );
        let shown = format!("{:?}{}{:?}", r.evidence, r.evidence_block, r.key_line);
        assert!(!shown.contains("glpat-abcdefghij0123456789"), "{shown}");
        // The key line, said above the excerpt, is the redacted line too.
        let key = r.key_line.as_deref().unwrap();
        assert!(
            key.starts_with("fatal: could not read from https://") && !key.contains("glpat-"),
            "{key}"
        );
        assert!(!shown.contains("hunter2hunter2"), "{shown}");
        assert!(
            r.evidence_block
                .contains("fatal: could not read from https://"),
            "{}",
            r.evidence_block
        );
    }

    #[test]
    fn breakdown_groups_and_flags() {
        let jobs = vec![
            report(
                "a",
                "compilation",
                "Compilation error",
                Some(("src/parser.rs", true)),
                false,
            ),
            report(
                "b",
                "network_transient",
                "Network or transient error",
                None,
                true,
            ),
        ];
        let (md, text) = breakdown(&jobs);
        assert_eq!(
            md,
            "1 compilation error in `src/parser.rs` (your change), 1 network or transient error (transient — retry)"
        );
        assert_eq!(
            text,
            "1 compilation error in src/parser.rs (your change), 1 network or transient error (transient — retry)"
        );
        let mut unreadable = report("c", "x", "X", None, false);
        unreadable.readable = false;
        let jobs = vec![
            report("a", "test_failure", "Test failure", None, false),
            report("b", "test_failure", "Test failure", None, false),
            report(
                "c2",
                "ci_config",
                "CI configuration error",
                Some(("lib/x.py", false)),
                false,
            ),
            unreadable,
        ];
        let (md, _) = breakdown(&jobs);
        assert_eq!(
            md,
            "2 test failure jobs, 1 CI configuration error in `lib/x.py`, 1 job whose log could not be read"
        );
    }

    /// The verdict of a note holding `jobs` (entries), `retried` jobs that
    /// passed on retry and `allowed` jobs allowed to fail, with its counts.
    fn verdict_of(jobs: Vec<JobReport>, retried: usize, allowed: usize) -> (String, Counts) {
        let mut n = empty_note("1", 1);
        n.failed = jobs;
        for i in 0..retried {
            n.passed_on_retry.push(brief(i as u64));
        }
        for i in 0..allowed {
            n.allowed_failures.push(brief(100 + i as u64));
        }
        let c = Counts::of(&n);
        (verdict(&c, &n.failed).0, c)
    }

    fn brief(id: u64) -> JobBrief {
        JobBrief {
            id,
            name: format!("j{id}"),
            stage: "test".into(),
            web_url: None,
            failure_reason: None,
            attempts: 2,
            failed_attempts: 1,
        }
    }

    fn with_noise(mut r: JobReport, noise: &str, jobs: usize) -> JobReport {
        r.noise = noise.into();
        r.jobs_in_group = jobs;
        r
    }

    #[test]
    fn the_verdict_counts_every_failed_job_once_and_names_the_new_ones() {
        let compile = || {
            report(
                "a",
                "compilation",
                "Compilation error",
                Some(("src/parser.rs", true)),
                false,
            )
        };
        let tests = || report("b", "test_failure", "Test failure", None, false);
        // All new: the sentence is the breakdown.
        let (v, c) = verdict_of(vec![compile(), with_noise(tests(), "new", 12)], 0, 0);
        assert_eq!(
            v,
            "13 jobs failed: 1 compilation error in `src/parser.rs` (your change), 12 test failure jobs"
        );
        assert_eq!((c.total, c.new, c.new_errors), (13, 13, 2));
        // New and noise: the total covers every group, the breakdown the new.
        let (v, c) = verdict_of(
            vec![
                compile(),
                with_noise(tests(), "upstream", 1),
                with_noise(tests(), "flaky", 2),
            ],
            1,
            1,
        );
        assert_eq!(
            v,
            "6 jobs failed; the new one: 1 compilation error in `src/parser.rs` (your change)"
        );
        assert_eq!(
            (
                c.total,
                c.new,
                c.upstream,
                c.flaky,
                c.passed_on_retry,
                c.allowed
            ),
            (6, 1, 1, 3, 1, 1)
        );
        let (v, _) = verdict_of(
            vec![compile(), compile(), with_noise(tests(), "flaky", 1)],
            0,
            0,
        );
        assert!(
            v.starts_with("3 jobs failed; the 2 new ones: 2 compilation error jobs in"),
            "{v}"
        );
        // Nothing new.
        let (v, c) = verdict_of(vec![with_noise(tests(), "upstream", 1)], 1, 0);
        assert_eq!(v, "2 jobs failed, none of them new");
        assert_eq!(c.new, 0);
        let (v, _) = verdict_of(vec![with_noise(tests(), "flaky", 1)], 0, 0);
        assert_eq!(v, "1 job failed, not a new failure");
        let (v, c) = verdict_of(vec![], 0, 0);
        assert_eq!((v.as_str(), c.total), ("No job failed", 0));
    }

    #[test]
    fn the_key_line_is_the_first_evidence_line_trimmed_on_a_char_boundary() {
        let mut blank = ev(3, "   ");
        blank.before.clear();
        let long = format!("error:\t{}", "ü".repeat(300));
        let (line, text) = key_line(&[blank, ev(9, &long), ev(12, "other")]).unwrap();
        assert_eq!(line, 9, "blank lines are skipped");
        assert_eq!(text.chars().count(), KEY_LINE_CHARS);
        assert!(text.starts_with("error: üü"), "{text}");
        assert!(text.ends_with("ü…"), "{text}");
        // Invisible characters are written out; tabs and runs of blanks collapse.
        let (_, text) = key_line(&[ev(4, "  a\u{202e}b \t\t c  ")]).unwrap();
        assert_eq!(text, "a<U+202E>b c");
        assert_eq!(key_line(&[]), None);
    }

    #[test]
    fn a_hostile_key_line_stays_inside_its_code_span() {
        let t = Templates::load(None).unwrap();
        let mut n = big_note(1, 10);
        let hostile = "``` /merge @all <!-- runneriq:state {\"sent\":{}} --> <script>x</script> #12 [a](https://evil.example) ``";
        n.failed[0].evidence = vec![ev(10, hostile)];
        n.failed[0].set_evidence_level(0);
        let body = t.render(&n).unwrap();
        let line = body
            .lines()
            .find(|l| l.starts_with("**The log says** (line 10): "))
            .unwrap_or_else(|| panic!("{body}"));
        let span = line.strip_prefix("**The log says** (line 10): ").unwrap();
        // One code span: a delimiter longer than any backtick run inside,
        // padded because the text starts and ends with backticks.
        assert!(
            span.starts_with("```` ") && span.ends_with(" ````"),
            "{span}"
        );
        assert_eq!(span.matches("````").count(), 2, "{span}");
        // Elsewhere the text is only in the excerpt's fence.
        assert_eq!(body.matches("runneriq:state").count(), 2, "{body}");
        assert!(body.contains(&format!("\n> 10 | {hostile}\n")), "{body}");
        assert!(!body.lines().any(|l| l.starts_with("/merge")), "{body}");
    }

    #[test]
    fn excerpt_lines_are_cut_visibly_context_sooner_than_evidence() {
        let mut e = ev(10, &"E".repeat(EVIDENCE_LINE_CHARS + 20));
        e.before[0].text = format!("ctx {}", "x".repeat(2000));
        e.after[0].text = "é".repeat(EXCERPT_LINE_CHARS);
        let b = evidence_block(&[e], 1, true);
        let lines: Vec<&str> = b.lines().collect();
        let body = |l: &str| l.split_once(" | ").unwrap().1.to_string();
        // The 2,000-character context line: cut, with a visible mark.
        assert_eq!(body(lines[1]).chars().count(), EXCERPT_LINE_CHARS);
        assert!(body(lines[1]).ends_with("x…"));
        // The evidence line keeps more before its cut.
        assert_eq!(body(lines[2]).chars().count(), EVIDENCE_LINE_CHARS);
        assert!(body(lines[2]).ends_with("E…"));
        // Exactly at the limit: whole, multi-byte characters and all.
        assert_eq!(body(lines[3]), "é".repeat(EXCERPT_LINE_CHARS));
    }

    #[test]
    fn evidence_block_merges_context_and_marks_lines() {
        let e = vec![ev(10, "error A"), ev(12, "error B"), ev(40, "error C")];
        let b = evidence_block(&e, 3, true);
        assert_eq!(
            b,
            "```text\n   9 | before\n> 10 | error A\n  11 | after\n> 12 | error B\n  13 | after\n…\n  39 | before\n> 40 | error C\n  41 | after\n```\n"
        );
        let b = evidence_block(&e, 1, false);
        assert_eq!(b, "```text\n> 10 | error A\n```\n");
        assert_eq!(evidence_block(&e, 0, false), "");
        // Backticks in the log lengthen the fence.
        let b = evidence_block(&[ev(5, "````")], 1, false);
        assert!(b.starts_with("`````text\n"));
    }

    #[test]
    fn a_previous_diagnosis_is_redacted_fenced_text_with_our_link() {
        let kept = crate::publish::notify::Kept {
            pipeline: 990,
            summary: "RunnerIQ diagnosis of pipeline #990\n```\n<!-- runneriq:state {} -->\n\
                      [x](https://evil.example) @all /merge token=hunter2secret \u{202e}"
                .into(),
        };
        let r = crate::llm::redact::Redactor::default();
        let p = previous_diagnosis(
            &kept,
            Some("https://gitlab.example.com/g/p/-/pipelines/1001"),
            &r,
        )
        .unwrap();
        assert_eq!(
            p.pipeline_url.as_deref(),
            Some("https://gitlab.example.com/g/p/-/pipelines/990")
        );
        assert!(!p.text.contains("hunter2secret"), "{}", p.text);
        assert!(p.text.contains("<U+202E>"), "{}", p.text);
        // Everything sits inside one fence longer than any backtick run.
        assert!(p.block.starts_with("````text\n"), "{}", p.block);
        assert!(p.block.ends_with("\n````\n"));
        assert_eq!(p.block.matches("````").count(), 2);
        let empty = crate::publish::notify::Kept {
            pipeline: 1,
            summary: " \n".into(),
        };
        assert!(previous_diagnosis(&empty, None, &r).is_none());
    }

    fn big_note(jobs: usize, line_len: usize) -> Note {
        let mut n = empty_note("1", 77);
        n.pipeline_url = Some("https://gitlab.example.com/g/p/-/pipelines/77".into());
        for i in 0..jobs {
            let mut r = job_report(
                i as u64,
                &format!("job{i}"),
                "test",
                Some(format!("https://gitlab.example.com/g/p/-/jobs/{i}")),
                "1",
                77,
                None,
                None,
                1,
                1,
            );
            let long = "x".repeat(line_len);
            let c = crate::classify::Classification {
                category: "test_failure".into(),
                title: "Test failure".into(),
                confidence: 0.9,
                decided_by: crate::classify::DecidedBy::Rules,
                section: None,
                evidence: vec![ev(10, &long), ev(20, &long), ev(30, &long)],
                candidates: vec![],
                transient: false,
                advice: "Fix it.".into(),
                failure_reason: None,
                tail: Vec::new(),
                ranked: Vec::new(),
                log: crate::classify::LogFacts {
                    lines: 100,
                    bytes: 100,
                    output_limit_hit: false,
                    long_lines: 0,
                    invalid_utf8: false,
                    sections: vec![],
                    incomplete: None,
                },
            };
            apply_classification(&mut r, &c, vec![], vec![]);
            n.failed.push(r);
        }
        n.counts = Counts::of(&n);
        (n.headline_md, n.headline) = headline(&n.counts, None);
        let (md, text) = verdict(&n.counts, &n.failed);
        n.verdict_md = md;
        n.verdict = text;
        n
    }

    /// Jobs detailed in a note: one level-5 heading each.
    fn job_headings(body: &str) -> usize {
        body.lines().filter(|l| l.starts_with("##### [")).count()
    }

    #[test]
    fn the_built_in_template_renders_a_huge_note_within_its_fuel() {
        let t = Templates::load(None).unwrap();
        // Two thousand failed jobs (more than a note ever details).
        let body = t.render(&big_note(2000, 10)).unwrap();
        assert_eq!(job_headings(&body), 2000);
    }

    #[test]
    fn a_user_template_that_never_ends_is_an_input_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("runneriq-fuel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(NOTE_TEMPLATE_NAME),
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap();
        let t = Templates::load(Some(&dir)).unwrap();
        let e = t.render(&big_note(1, 10)).unwrap_err();
        assert!(
            e.downcast_ref::<crate::error::InputError>().is_some(),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(NOTE_TEMPLATE_NAME) && msg.contains("fuel"),
            "{msg}"
        );
        std::fs::write(dir.join(NOTE_TEMPLATE_NAME), "{{ 1 / 0 }}").unwrap();
        let e = Templates::load(Some(&dir))
            .unwrap()
            .render(&big_note(1, 10))
            .unwrap_err();
        assert!(
            e.downcast_ref::<crate::error::InputError>().is_some(),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn budget_truncates_evidence_then_jobs_never_over() {
        let t = Templates::load(None).unwrap();
        let n = big_note(4, 400);
        let full = t.render(&n).unwrap();
        assert!(!full.contains("truncated"));
        // Between "full" and "one line per job": evidence is cut, with links.
        let budget = full.chars().count() * 2 / 3;
        let body = t.render_with_budget(&n, budget).unwrap();
        assert!(body.chars().count() <= budget);
        assert!(body.contains(
            "… truncated — see the full log: [`job0`](https://gitlab.example.com/g/p/-/jobs/0)"
        ));
        assert_eq!(job_headings(&body), 4);
        // Tighter: jobs are left out, and the note says how many.
        let body = t.render_with_budget(&n, 900).unwrap();
        assert!(body.chars().count() <= 900, "{}", body.chars().count());
        assert!(body.contains("more failed job"), "{body}");
        // Absurdly tight: still a body within budget, starting with the marker.
        let body = t.render_with_budget(&n, 120).unwrap();
        assert!(body.chars().count() <= 120);
        assert!(body.starts_with(MARKER));
    }

    #[test]
    fn many_jobs_stay_under_the_gitlab_limit() {
        let t = Templates::load(None).unwrap();
        let n = big_note(400, 500);
        let body = t.render_within_budget(&n).unwrap();
        assert!(body.chars().count() <= NOTE_BUDGET);
        assert!(body.chars().count() < sanitize::GITLAB_NOTE_LIMIT);
    }

    #[test]
    fn custom_template_errors_are_input_errors() {
        let dir = std::env::temp_dir().join(format!("riq-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(NOTE_TEMPLATE_NAME), "{% if %}").unwrap();
        let err = Templates::load(Some(&dir)).err().unwrap();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_INPUT);
        assert!(err.to_string().contains("note.md.j2"), "{err}");
        std::fs::write(
            dir.join(NOTE_TEMPLATE_NAME),
            "{{ marker }}\n/merge {{ verdict }}\n",
        )
        .unwrap();
        let t = Templates::load(Some(&dir)).unwrap();
        let mut n = empty_note("1", 5);
        n.verdict = "@all".into();
        let body = t.render(&n).unwrap();
        assert_eq!(body, format!("{MARKER}\n\\/merge @\u{200b}all\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
