//! Failure classification: rules → evidence → category and confidence.
//!
//! One pass over the trace: every cleaned line goes through one multi-pattern
//! matcher built from the rule catalog. Each rule keeps a bounded number of
//! matching lines (its first and its last few), with a little context, in
//! buffers that are reused, so memory is bounded by the catalog size and the
//! hot loop does not allocate per line. Ranking happens once, at the end,
//! when the failing step and the log's length are known.

pub mod catalog;
pub mod failure_reason;
pub mod literals;
pub mod prefilter_table;
pub mod ranker;
pub mod stages;

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead};

use regex_automata::Input;
use serde::Serialize;

pub use catalog::{Catalog, Category, Prefer, Rule};

use crate::trace::{SectionKind, Style, TraceFacts, TraceWalker};

/// Lines of context kept before and after each evidence line.
pub const CONTEXT_LINES: usize = 2;
/// Bytes of one line kept as evidence text.
const MAX_EVIDENCE_TEXT: usize = 512;
/// Matching lines kept per rule: the first ones and the last ones.
const KEEP_FIRST: usize = 3;
const KEEP_LAST: usize = 6;
/// Non-empty lines remembered from the end, shown when no rule matched.
const TAIL_LINES: usize = 8;

/// The rules anchored at the line's start that match `line`, found in one
/// anchored walk of their automaton (all of `dfa`'s patterns, every match
/// reported): appended to `out` as catalog rule ids. `Err` when the lazy DFA
/// gave up (its cache thrashed): the caller then checks each rule itself.
fn anchored_matches(
    dfa: &regex_automata::hybrid::dfa::DFA,
    cache: &mut regex_automata::hybrid::dfa::Cache,
    line: &[u8],
    rules: &[u32],
    out: &mut Vec<u32>,
) -> Result<(), ()> {
    let config = regex_automata::util::start::Config::new().anchored(regex_automata::Anchored::Yes);
    let mut sid = dfa.start_state(cache, &config).map_err(|_| ())?;
    let collect = |cache: &regex_automata::hybrid::dfa::Cache,
                   sid: regex_automata::hybrid::LazyStateID,
                   out: &mut Vec<u32>| {
        for i in 0..dfa.match_len(cache, sid) {
            if let Some(&r) = rules.get(dfa.match_pattern(cache, sid, i).as_usize()) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    };
    for &b in line {
        sid = dfa.next_state(cache, sid, b).map_err(|_| ())?;
        if sid.is_tagged() {
            if sid.is_match() {
                collect(cache, sid, out);
            }
            if sid.is_dead() {
                return Ok(());
            }
            if sid.is_quit() {
                return Err(());
            }
        }
    }
    let sid = dfa.next_eoi_state(cache, sid).map_err(|_| ())?;
    if sid.is_match() {
        collect(cache, sid, out);
    }
    Ok(())
}

/// A line the log's tail remembers: not empty, not only blanks.
fn tail_worthy(text: &[u8]) -> bool {
    !text.iter().all(u8::is_ascii_whitespace)
}

/// Lines of the failing step itself: not `after_script` (it runs after a
/// failure too and is the same for every failure of a job) nor the runner's
/// cache and artifact upload and clean-up.
fn in_failing_step(kind: SectionKind) -> bool {
    !matches!(kind, SectionKind::AfterScript | SectionKind::Teardown)
}

#[derive(Debug, Clone)]
pub struct ClassifyOptions {
    /// Evidence lines to report.
    pub max_evidence: usize,
    /// GitLab's `failure_reason` of the job, when the job JSON is known.
    pub failure_reason: Option<String>,
    /// Lines of the log's end (just above the failure anchor, when there is
    /// one) to return in [`Classification::tail`], e.g. for an LLM's second
    /// opinion. 0 keeps none.
    pub tail_lines: usize,
    /// Also return every ranked candidate with its features
    /// ([`Classification::ranked`]), for training the line model.
    pub dump_candidates: bool,
}

impl Default for ClassifyOptions {
    fn default() -> Self {
        ClassifyOptions {
            max_evidence: 5,
            failure_reason: None,
            tail_lines: 0,
            dump_candidates: false,
        }
    }
}

/// Who decided the category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// The rule catalog matched lines of the log.
    Rules,
    /// GitLab's `failure_reason` names an infrastructure cause.
    FailureReason,
    /// Nothing matched: the category is `unknown`.
    None,
    /// The rules were unsure and an LLM's validated second opinion was taken
    /// (see `crate::llm`).
    Llm,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextLine {
    pub line: u64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// 1-based line number in the raw log (split on `\n`).
    pub line: u64,
    pub text: String,
    /// The rule that picked this line (`tail` for the log's last lines).
    pub rule: String,
    pub category: Option<String>,
    /// Relevance used for ordering, 0..1.
    pub score: f64,
    /// Innermost section the line is in.
    pub section: Option<String>,
    pub before: Vec<ContextLine>,
    pub after: Vec<ContextLine>,
}

/// A candidate line with its features and the model's score
/// (`classify --dump-candidates`, for `tests/eval/ranker.py`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedLine {
    pub line: u64,
    pub text: String,
    pub score: f64,
    /// Shown with its context lines (a rule or its colour kept it).
    pub context: bool,
    pub x: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryScore {
    pub category: String,
    pub score: f64,
}

/// Facts about the log a reader of the verdict should know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogFacts {
    pub lines: u64,
    pub bytes: u64,
    /// The runner cut the log at its output limit: the final error may be missing.
    pub output_limit_hit: bool,
    /// Lines longer than the analysis buffer (their tail was not read).
    pub long_lines: u64,
    pub invalid_utf8: bool,
    pub sections: Vec<SectionSummary>,
    /// Why only part of the log was read (a fetched trace over its size or
    /// time budget): the verdict comes from that part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionSummary {
    pub name: String,
    pub start_line: u64,
    pub end_line: Option<u64>,
    pub duration_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub category: String,
    pub title: String,
    /// 0..1: how sure the rules are. 0 for `unknown`.
    pub confidence: f64,
    pub decided_by: DecidedBy,
    /// The failing step (section name), when known.
    pub section: Option<String>,
    pub evidence: Vec<Evidence>,
    /// The best-scoring categories, best first (at most 3).
    pub candidates: Vec<CategoryScore>,
    pub transient: bool,
    pub advice: String,
    pub failure_reason: Option<String>,
    pub log: LogFacts,
    /// The last non-empty lines above the failure anchor (or of the log), when
    /// [`ClassifyOptions::tail_lines`] asked for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<ContextLine>,
    /// Every candidate, best first, with its features; only when
    /// [`ClassifyOptions::dump_candidates`] asked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranked: Vec<RankedLine>,
}

#[derive(Default)]
struct Hit {
    line: u64,
    text: Vec<u8>,
    cut: bool,
    section: Option<usize>,
    kind: Option<SectionKind>,
    style: Style,
    /// [`ranker::text_key`] of the whole line.
    key: u64,
    before: Vec<(u64, Vec<u8>)>,
    after: Vec<(u64, Vec<u8>)>,
}

impl Hit {
    fn fill(&mut self, line: u64, text: &[u8], l: &LineFacts) {
        let (section, kind) = (l.section, l.kind);
        self.style = l.style;
        self.key = l.key;
        self.line = line;
        self.text.clear();
        let n = text.len().min(MAX_EVIDENCE_TEXT);
        self.text.extend_from_slice(&text[..n]);
        self.cut = n < text.len();
        self.section = section;
        self.kind = Some(kind);
        self.before.clear();
        self.after.clear();
    }
}

#[derive(Default)]
struct RuleHits {
    count: u64,
    first: Vec<Hit>,
    last: VecDeque<Hit>,
}

/// A ring of the last few lines, with reused buffers.
struct LineRing {
    cap: usize,
    items: VecDeque<(u64, Vec<u8>)>,
}

impl LineRing {
    fn new(cap: usize) -> Self {
        LineRing {
            cap,
            items: VecDeque::with_capacity(cap),
        }
    }

    fn push(&mut self, line: u64, text: &[u8]) {
        let mut slot = if self.items.len() >= self.cap {
            self.items.pop_front().unwrap_or_default()
        } else {
            (0, Vec::new())
        };
        slot.0 = line;
        slot.1.clear();
        slot.1
            .extend_from_slice(&text[..text.len().min(MAX_EVIDENCE_TEXT)]);
        self.items.push_back(slot);
    }
}

impl Drop for Scanner<'_> {
    fn drop(&mut self) {
        self.catalog
            .give_caches(std::mem::take(&mut self.rule_caches));
    }
}

/// The streaming half of classification: feed lines, then [`Scanner::finish`].
pub struct Scanner<'c> {
    catalog: &'c Catalog,
    /// (line index in the batch, rule) pairs to check (reused buffer).
    candidates: Vec<(u32, u32)>,
    /// The lazy DFA cache of the catalog's anchored rules.
    anchored_cache: Option<regex_automata::hybrid::dfa::Cache>,
    /// Rules that matched the current line (reused buffer).
    matched: Vec<usize>,
    /// Anchored rules that matched a line (reused buffer).
    matched_anchored: Vec<u32>,
    /// Each rule's lazy DFA cache, made when the rule first runs.
    rule_caches: Vec<Option<catalog::MatchCache>>,
    /// (end, literal) of the literals found in a batch (reused buffers).
    literal_hits: Vec<(u32, u32)>,
    literal_hits_second: Vec<(u32, u32)>,
    hits: Vec<RuleHits>,
    /// Candidate texts (numbers folded, see [`ranker::text_key`]): how many
    /// times, first line, last line.
    texts: HashMap<u64, (u32, u64, u64)>,
    recent: LineRing,
    tail: LineRing,
    /// The tail as it was at the last failure anchor: the lines just above
    /// the CI system's "step failed" line.
    anchor_tail: Option<Vec<(u64, Vec<u8>)>>,
    /// The last lines of the failing step (see [`in_failing_step`]), shown
    /// when no rule matched, and as they were at the last failure anchor.
    step_tail: LineRing,
    anchor_step_tail: Option<Vec<(u64, Vec<u8>)>>,
    /// Hits still collecting lines after them: (rule, line of the hit).
    pending: Vec<(usize, u64)>,
    /// Lines waiting to be matched, joined by `\n` (see [`Catalog`]'s union).
    batch: Vec<u8>,
    batch_lines: Vec<BatchLine>,
    /// The last lines of the previous batch: context before a batch's first lines.
    prev_lines: Vec<(u64, Vec<u8>)>,
}

/// Bytes of cleaned text matched at once.
pub(crate) const BATCH_BYTES: usize = 256 * 1024;

/// Where one line sits in the batch.
struct BatchLine {
    number: u64,
    start: usize,
    end: usize,
    section: Option<usize>,
    kind: SectionKind,
    style: Style,
}

/// What `record` needs to know of a line besides its text.
struct LineFacts {
    section: Option<usize>,
    kind: SectionKind,
    style: Style,
    key: u64,
}

/// Candidate marker for a line printed in red: it becomes a candidate even
/// when no rule matches it (kept in the hit slot after the rules').
const STYLED: u32 = u32::MAX;

/// Candidate flag: the rule is known to match the line (the anchored
/// automaton said so), its regex need not run.
const CONFIRMED: u32 = 1 << 31;

/// Texts whose repetitions are counted (numbers folded); past it, new texts
/// are not counted (a log of a million distinct errors stays bounded).
const MAX_COUNTED_TEXTS: usize = 65_536;

impl<'c> Scanner<'c> {
    pub fn new(catalog: &'c Catalog) -> Self {
        Scanner::with_tail(catalog, 0)
    }

    /// A scanner that also remembers `tail_lines` lines of the log's end.
    pub fn with_tail(catalog: &'c Catalog, tail_lines: usize) -> Self {
        let n = catalog.rules.len();
        Scanner {
            catalog,
            candidates: Vec::new(),
            anchored_cache: catalog.anchored_union.as_ref().map(|d| d.create_cache()),
            matched: Vec::with_capacity(n),
            matched_anchored: Vec::new(),
            rule_caches: catalog.take_caches(),
            literal_hits: Vec::new(),
            literal_hits_second: Vec::new(),
            // One slot per rule, and one for red lines no rule picked.
            hits: (0..=n).map(|_| RuleHits::default()).collect(),
            texts: HashMap::new(),
            recent: LineRing::new(CONTEXT_LINES),
            // One more than asked: the anchor line itself is in the ring when
            // the lines above it are copied out.
            tail: LineRing::new(TAIL_LINES.max(tail_lines) + 1),
            anchor_tail: None,
            step_tail: LineRing::new(TAIL_LINES + 1),
            anchor_step_tail: None,
            pending: Vec::new(),
            batch: Vec::with_capacity(BATCH_BYTES + MAX_EVIDENCE_TEXT),
            batch_lines: Vec::new(),
            prev_lines: Vec::new(),
        }
    }

    pub fn feed(
        &mut self,
        line: u64,
        text: &[u8],
        section: Option<usize>,
        kind: SectionKind,
        style: Style,
    ) {
        let start = self.batch.len();
        self.batch.extend_from_slice(text);
        self.batch_lines.push(BatchLine {
            number: line,
            start,
            end: self.batch.len(),
            section,
            kind,
            style,
        });
        self.batch.push(b'\n');
        if self.batch.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Matches the lines fed since the last flush. One Aho-Corasick search
    /// over the batch finds the lines holding a rule's required literal, one
    /// small automaton the lines where a rule without a literal may match;
    /// only those rules' regexes then run, on those lines alone.
    pub fn flush(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        let mut lines = std::mem::take(&mut self.batch_lines);
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        let line_of = |lines: &[BatchLine], at: usize| lines.partition_point(|l| l.end < at);
        // Every literal of every line in one overlapping pass over the batch
        // (one literal may contain another): each gives the rules that need it.
        let mut found = std::mem::take(&mut self.literal_hits);
        found.clear();
        self.catalog
            .scan_literals(&batch, &mut found, &mut self.literal_hits_second);
        let mut idx = 0usize;
        for &(end, literal) in &found {
            // Literals hold no `\n`: a match lies within one line, and
            // matches come in the order of their ends.
            while lines.get(idx).is_some_and(|l| l.end < end as usize) {
                idx += 1;
            }
            for &r in &self.catalog.literal_rules[literal as usize] {
                candidates.push((idx as u32, r));
            }
        }
        self.literal_hits = found;
        // Rules anchored at the line's start: one walk of their automaton at
        // each line's start says which match (no regex to run after it).
        if let (Some(dfa), Some(cache)) = (&self.catalog.anchored_union, &mut self.anchored_cache) {
            let mut found = std::mem::take(&mut self.matched_anchored);
            for (idx, l) in lines.iter().enumerate() {
                found.clear();
                let text = &batch[l.start..l.end];
                match anchored_matches(dfa, cache, text, &self.catalog.anchored, &mut found) {
                    Ok(()) => {
                        for &r in &found {
                            candidates.push((idx as u32, r | CONFIRMED));
                        }
                    }
                    Err(()) => {
                        for &r in &self.catalog.anchored {
                            candidates.push((idx as u32, r));
                        }
                    }
                }
            }
            self.matched_anchored = found;
        }
        if let Some(u) = &self.catalog.always_union {
            let mut pos = 0usize;
            while pos < batch.len() {
                let Some(m) = u.find(Input::new(&batch[..]).range(pos..)) else {
                    break;
                };
                let idx = line_of(&lines, m.start());
                let Some(l) = lines.get(idx) else { break };
                for &r in &self.catalog.always {
                    candidates.push((idx as u32, r));
                }
                pos = l.end + 1;
            }
        }
        for (idx, l) in lines.iter().enumerate() {
            if l.style.red {
                candidates.push((idx as u32, STYLED));
            }
        }
        candidates.sort_unstable();
        candidates.dedup();

        // Lines [0, done) have been offered to hits waiting for after-context.
        let mut done = 0usize;
        let mut k = 0usize;
        while k < candidates.len() {
            let idx = candidates[k].0 as usize;
            let l = &lines[idx];
            let text = &batch[l.start..l.end];
            self.matched.clear();
            let mut styled = false;
            while k < candidates.len() && candidates[k].0 as usize == idx {
                let r = candidates[k].1;
                if r == STYLED {
                    styled = true;
                } else if r & CONFIRMED != 0 {
                    self.matched.push((r & !CONFIRMED) as usize);
                } else if self.catalog.rules[r as usize]
                    .is_match_in(&mut self.rule_caches[r as usize], text)
                {
                    self.matched.push(r as usize);
                }
                k += 1;
            }
            // A red line no rule picked is a candidate of its own.
            if styled && self.matched.is_empty() {
                self.matched.push(self.catalog.rules.len());
            }
            while done <= idx && !self.pending.is_empty() {
                let d = &lines[done];
                self.add_after_context(d.number, &batch[d.start..d.end]);
                done += 1;
            }
            done = done.max(idx + 1);
            if !self.matched.is_empty() && !text.iter().all(u8::is_ascii_whitespace) {
                self.recent.items.clear();
                let from = idx.saturating_sub(CONTEXT_LINES);
                let missing = CONTEXT_LINES.saturating_sub(idx);
                for (n, t) in &self.prev_lines[self.prev_lines.len().saturating_sub(missing)..] {
                    self.recent.push(*n, t);
                }
                for c in &lines[from..idx] {
                    self.recent.push(c.number, &batch[c.start..c.end]);
                }
                let facts = LineFacts {
                    section: l.section,
                    kind: l.kind,
                    style: l.style,
                    key: ranker::text_key(text),
                };
                self.record(l.number, text, &facts);
            }
        }
        while done < lines.len() && !self.pending.is_empty() {
            let d = &lines[done];
            self.add_after_context(d.number, &batch[d.start..d.end]);
            done += 1;
        }
        // The rings of the log's last lines take this batch's last ones.
        for (ring, step_only) in [(&mut self.tail, false), (&mut self.step_tail, true)] {
            let mut keep = 0usize;
            let mut from = lines.len();
            while from > 0 && keep < ring.cap {
                from -= 1;
                let l = &lines[from];
                if tail_worthy(&batch[l.start..l.end]) && (!step_only || in_failing_step(l.kind)) {
                    keep += 1;
                }
            }
            for l in &lines[from..] {
                let text = &batch[l.start..l.end];
                if tail_worthy(text) && (!step_only || in_failing_step(l.kind)) {
                    ring.push(l.number, text);
                }
            }
        }
        self.prev_lines.clear();
        for l in &lines[lines.len().saturating_sub(CONTEXT_LINES)..] {
            let end = l.end.min(l.start + MAX_EVIDENCE_TEXT);
            self.prev_lines
                .push((l.number, batch[l.start..end].to_vec()));
        }
        batch.clear();
        lines.clear();
        candidates.clear();
        self.batch = batch;
        self.batch_lines = lines;
        self.candidates = candidates;
    }

    /// The line just fed is a failure anchor: remember the lines above it.
    pub fn mark_anchor(&mut self, line: u64) {
        self.anchor_tail = Some(self.last_lines(&self.tail, false, line));
        self.anchor_step_tail = Some(self.last_lines(&self.step_tail, true, line));
    }

    /// What `ring` would hold if every line fed so far had gone through it
    /// (the rings are only filled when a batch is flushed: copying every line
    /// as it comes would cost more than matching it), keeping the lines
    /// before `line`.
    fn last_lines(&self, ring: &LineRing, step_only: bool, line: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        for l in self.batch_lines.iter().rev() {
            if out.len() >= ring.cap {
                break;
            }
            let text = &self.batch[l.start..l.end];
            if tail_worthy(text) && (!step_only || in_failing_step(l.kind)) {
                out.push((l.number, text[..text.len().min(MAX_EVIDENCE_TEXT)].to_vec()));
            }
        }
        for (n, t) in ring.items.iter().rev() {
            if out.len() >= ring.cap {
                break;
            }
            out.push((*n, t.clone()));
        }
        out.reverse();
        out.retain(|(n, _)| *n < line);
        out
    }

    fn record(&mut self, line: u64, text: &[u8], l: &LineFacts) {
        let matched = std::mem::take(&mut self.matched);
        let mut counted = false;
        for &r in &matched {
            let rule = self.catalog.rules.get(r);
            if rule.is_some_and(|rule| rule.unless.as_ref().is_some_and(|u| u.is_match(text))) {
                continue;
            }
            if !counted {
                counted = true;
                let n = self.texts.len();
                match self.texts.get_mut(&l.key) {
                    Some(t) => {
                        t.0 += 1;
                        t.2 = line;
                    }
                    None if n < MAX_COUNTED_TEXTS => {
                        self.texts.insert(l.key, (1, line, line));
                    }
                    None => {}
                }
            }
            let slot = &mut self.hits[r];
            slot.count += 1;
            let mut hit = if slot.first.len() < KEEP_FIRST {
                Hit::default()
            } else if slot.last.len() >= KEEP_LAST {
                slot.last.pop_front().unwrap_or_default()
            } else {
                Hit::default()
            };
            hit.fill(line, text, l);
            for (n, t) in &self.recent.items {
                hit.before.push((*n, t.clone()));
            }
            if slot.first.len() < KEEP_FIRST {
                slot.first.push(hit);
            } else {
                slot.last.push_back(hit);
            }
            self.pending.push((r, line));
        }
        self.matched = matched;
    }

    fn add_after_context(&mut self, line: u64, text: &[u8]) {
        let hits = &mut self.hits;
        self.pending.retain(|&(r, hit_line)| {
            let slot = &mut hits[r];
            let hit = slot
                .first
                .iter_mut()
                .chain(slot.last.iter_mut())
                .find(|h| h.line == hit_line);
            match hit {
                Some(h) if h.after.len() < CONTEXT_LINES => {
                    let n = text.len().min(MAX_EVIDENCE_TEXT);
                    h.after.push((line, text[..n].to_vec()));
                    h.after.len() < CONTEXT_LINES
                }
                _ => false,
            }
        });
    }

    /// Ranks what was seen into a verdict.
    pub fn finish(mut self, facts: &TraceFacts, opts: &ClassifyOptions) -> Classification {
        self.flush();
        rank(self, facts, opts)
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// How much a line's distance from the failure anchor (the CI system's
/// "step failed" line, else the end of the log) leaves of its weight: the
/// cause is usually just above the anchor; set-up noise far above it and
/// clean-up after it say less.
fn proximity(line: u64, anchor: u64) -> f64 {
    if line > anchor {
        return 0.6;
    }
    let d = (anchor - line) as f64;
    0.55 + 0.45 / (1.0 + d / 250.0)
}

/// How much a hit in this kind of section says about the job's failure.
fn section_factor(kind: Option<SectionKind>) -> f64 {
    match kind {
        Some(SectionKind::AfterScript) => 0.5,
        Some(SectionKind::Teardown) => 0.4,
        _ => 1.0,
    }
}

fn rank(scanner: Scanner<'_>, facts: &TraceFacts, opts: &ClassifyOptions) -> Classification {
    let catalog = scanner.catalog;
    let total = facts.lines.max(1) as f64;
    let anchor = facts.failure_anchor.unwrap_or(facts.lines.max(1));
    // (score, rule index, hit) for every kept hit.
    let mut scored: Vec<(f64, usize, &Hit)> = Vec::new();
    let mut cat_best = vec![0.0f64; catalog.categories.len()];
    let mut cat_lines = vec![0u64; catalog.categories.len()];
    // The runner's stages: where a GitLab job failed, and what a line in
    // each stage can say (see `stages`).
    let mut stages = stages::RunnerStages::new(facts, catalog);
    if stages.failed_in_runner_stage() {
        stages.claim(rule_slots(&scanner.hits, catalog).flat_map(|(r, slot)| {
            let categorised = catalog.rules[r].category.is_some();
            slot.first
                .iter()
                .chain(slot.last.iter())
                .filter(move |_| categorised)
                .map(|h| h.line)
        }));
    }
    for (r, slot) in rule_slots(&scanner.hits, catalog) {
        let rule = &catalog.rules[r];
        // A rule's lines form a cluster (a compiler's errors, a test
        // runner's failures): the whole cluster is as close to the anchor as
        // its closest line, and `prefer` orders lines inside it.
        let cluster = slot
            .first
            .iter()
            .chain(slot.last.iter())
            .filter(|h| h.line <= anchor)
            .map(|h| proximity(h.line, anchor))
            .fold(None, |acc: Option<f64>, p| {
                Some(acc.map_or(p, |a| a.max(p)))
            });
        for hit in slot.first.iter().chain(slot.last.iter()) {
            if rule.category.is_none() && is_runner_footer(&hit.text) {
                // `ERROR: Job failed: exit code 1` says that it failed, not why.
                continue;
            }
            // Evidence-only rules (`error`, `failed`) match unrelated lines
            // all over a log: each line stands on its own distance.
            let near = if hit.line > anchor || rule.category.is_none() {
                proximity(hit.line, anchor)
            } else {
                cluster.unwrap_or(1.0)
            };
            let base = rule.weight * section_factor(hit.kind);
            let (weight, counts_for) = stages.weigh(catalog, rule, hit.line, hit.section, base);
            if weight <= 0.0 {
                continue;
            }
            let s = weight * near;
            if let Some(c) = counts_for {
                cat_best[c] = cat_best[c].max(s);
            }
            let pos = hit.line as f64 / total;
            let order_bonus = 0.03
                * match rule.prefer {
                    Prefer::Last => pos,
                    Prefer::First => 1.0 - pos,
                };
            scored.push((s + order_bonus, r, hit));
        }
        if let Some(c) = rule.category {
            cat_lines[c] += slot.count;
        }
    }
    let mut cat_scores: Vec<(usize, f64)> = cat_best
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > 0.0)
        .map(|(c, s)| {
            let repeat = (0.02 * (1.0 + cat_lines[c] as f64).ln()).min(0.06);
            (c, (s + repeat).min(1.0))
        })
        .collect();
    cat_scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

    let reason_category = opts
        .failure_reason
        .as_deref()
        .and_then(failure_reason::category_for)
        .and_then(|id| catalog.category(id));

    let (category, confidence, decided_by) = match (reason_category, cat_scores.first()) {
        (Some(c), _) => (Some(c), 0.95, DecidedBy::FailureReason),
        (None, Some(&(c, best))) => {
            let second = cat_scores.get(1).map_or(0.0, |x| x.1);
            let conf = (best - 0.5 * second).clamp(0.05, 0.99);
            (Some(c), conf, DecidedBy::Rules)
        }
        (None, None) => (None, 0.0, DecidedBy::None),
    };

    // Evidence: every candidate line (kept by rules, printed in red, or
    // just above the failure line) ranked by the line model.
    let counts_for = |r: usize, hit: &Hit| {
        let rule = &catalog.rules[r];
        stages
            .weigh(catalog, rule, hit.line, hit.section, rule.weight)
            .1
    };
    let tail: Vec<(u64, Vec<u8>)> = match &scanner.anchor_tail {
        Some(t) => t.clone(),
        None => scanner.tail.items.iter().cloned().collect(),
    };
    // The failing step's last lines (not after_script's, not the runner's
    // clean-up), else the log's.
    let step: Vec<(u64, Vec<u8>)> = match &scanner.anchor_step_tail {
        Some(t) => t.clone(),
        None => scanner.step_tail.items.iter().cloned().collect(),
    };
    let last_lines = if step.iter().any(|(n, t)| tail_candidate(*n, t, facts)) {
        &step
    } else {
        &tail
    };
    // The rules' own order: the verdict's category first, then their score.
    scored.sort_by(|a, b| {
        let in_a = category.is_some() && counts_for(a.1, a.2) == category;
        let in_b = category.is_some() && counts_for(b.1, b.2) == category;
        in_b.cmp(&in_a)
            .then(b.0.total_cmp(&a.0))
            .then(a.2.line.cmp(&b.2.line))
    });
    let mut cands: Vec<Cand<'_>> = Vec::new();
    let mut ranked_by_rules = 0usize;
    for (score, r, hit) in &scored {
        let c = cand_for(&mut cands, hit.line, &hit.text);
        c.rule = match c.rule {
            Some((best, _)) if best >= *score => c.rule,
            _ => {
                let slot = &scanner.hits[*r];
                c.x.first_of_rule = slot.first.first().is_some_and(|h| h.line == hit.line);
                c.x.rule_lines = slot.count;
                Some((*score, *r))
            }
        };
        c.hit.get_or_insert(hit);
        c.x.rule_score = c.x.rule_score.max(*score);
        c.x.in_category |= category.is_some() && counts_for(*r, hit) == category;
        c.x.categorised |= catalog.rules[*r].category.is_some();
        c.x.generic |= catalog.rules[*r].category.is_none();
        c.x.n_rules += 1;
        if c.x.rules_rank.is_none() {
            c.x.rules_rank = Some(ranked_by_rules);
            ranked_by_rules += 1;
        }
        c.x.style = hit.style;
        c.x.kind = hit.kind;
        c.key = hit.key;
    }
    let styled = &scanner.hits[catalog.rules.len()];
    for hit in styled.first.iter().chain(styled.last.iter()) {
        let c = cand_for(&mut cands, hit.line, &hit.text);
        c.hit.get_or_insert(hit);
        c.x.style = hit.style;
        c.x.kind = hit.kind;
        c.key = hit.key;
    }
    // The last lines above the CI system's failure line say what the rules
    // may not; without that line, the log's last lines are the CI system
    // tidying up, worth showing only when nothing else was found.
    let tail_wanted = facts.failure_anchor.is_some() || cands.is_empty();
    for (n, t) in last_lines
        .iter()
        .rev()
        .filter(|(n, t)| tail_wanted && tail_candidate(*n, t, facts))
        .take(TAIL_CANDIDATES)
    {
        let c = cand_for(&mut cands, *n, t);
        c.x.tail = true;
        if c.hit.is_none() {
            c.x.kind = facts.section_at(*n).map(|s| facts.sections[s].kind);
            c.key = ranker::text_key(t);
        }
    }
    let frame = ranker::Frame {
        anchor,
        lines: facts.lines.max(1),
        step_end: facts
            .last_script_stage()
            .and_then(|s| facts.sections[s].end_line)
            .unwrap_or(anchor),
        anchor_known: facts.failure_anchor.is_some(),
    };
    let model = ranker::model();
    let mut ranked: Vec<(f64, usize, [f64; ranker::N])> = cands
        .iter_mut()
        .enumerate()
        .map(|(i, c)| {
            if let Some(&(count, first, last)) = scanner.texts.get(&c.key) {
                c.x.repeats = count;
                c.x.first_of_text = first == c.x.line;
                c.x.last_of_text = last == c.x.line;
            } else {
                c.x.repeats = 1;
                c.x.first_of_text = true;
                c.x.last_of_text = true;
            }
            c.x.runner_footer = is_runner_footer(c.x.text);
            let x = ranker::features(&c.x, frame);
            (model.score(&x), i, x)
        })
        .collect();
    // The verdict's own lines first (the note's title and its first line
    // agree), ordered by the model. When only the last lines of the log are
    // candidates (no rule, no colour), the closest to the failure first:
    // whoever shows or fingerprints the first few gets the last words.
    let only_tail = cands.iter().all(|c| c.hit.is_none());
    ranked.sort_by(|a, b| {
        let (ca, cb) = (&cands[a.1].x, &cands[b.1].x);
        if only_tail {
            return cb.line.cmp(&ca.line);
        }
        cb.in_category
            .cmp(&ca.in_category)
            .then(b.0.total_cmp(&a.0))
            .then(ca.line.cmp(&cb.line))
    });
    let mut evidence: Vec<Evidence> = Vec::new();
    for (score, i, _) in &ranked {
        if evidence.len() >= opts.max_evidence {
            break;
        }
        let c = &cands[*i];
        // A line repeated word for word (retries, loops) says nothing new,
        // nor does one already shown as another's context.
        let shown_near = |e: &Evidence| {
            (!e.before.is_empty() || !e.after.is_empty())
                && e.line.abs_diff(c.x.line) <= CONTEXT_GAP
        };
        if evidence
            .iter()
            .any(|e| e.text.as_bytes() == c.x.text || shown_near(e))
        {
            continue;
        }
        evidence.push(evidence_of(c, *score, catalog, facts));
    }
    let ranked_lines = if opts.dump_candidates {
        ranked
            .iter()
            .map(|(score, i, x)| RankedLine {
                line: cands[*i].x.line,
                text: lossy(cands[*i].x.text),
                score: round3(*score),
                context: cands[*i].hit.is_some(),
                x: x.to_vec(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let tail_out = if opts.tail_lines == 0 {
        Vec::new()
    } else {
        context(&tail[tail.len().saturating_sub(opts.tail_lines)..])
    };

    let section = evidence
        .first()
        .filter(|e| e.rule != "tail")
        .and_then(|e| facts.section_at(e.line))
        .or_else(|| {
            facts
                .job_failed_line
                .and_then(|l| facts.last_stage_before(l))
                .filter(|&s| facts.sections[s].kind != SectionKind::Teardown)
                .or_else(|| facts.last_script_stage())
        })
        .map(|s| facts.sections[s].name.clone());

    let (id, title, advice, transient) = match category {
        Some(c) => {
            let cat = &catalog.categories[c];
            (
                cat.id.clone(),
                cat.title.clone(),
                cat.advice.clone(),
                cat.transient,
            )
        }
        None => (
            "unknown".to_string(),
            "Unknown failure".to_string(),
            "No rule recognised this failure: read the last lines of the failing step.".to_string(),
            false,
        ),
    };
    Classification {
        category: id,
        title,
        confidence: round3(confidence),
        decided_by,
        section,
        evidence,
        candidates: cat_scores
            .iter()
            .take(3)
            .map(|&(c, s)| CategoryScore {
                category: catalog.categories[c].id.clone(),
                score: round3(s),
            })
            .collect(),
        transient,
        advice,
        failure_reason: opts.failure_reason.clone(),
        tail: tail_out,
        ranked: ranked_lines,
        log: LogFacts {
            lines: facts.lines,
            bytes: facts.bytes,
            output_limit_hit: facts.output_limit_line.is_some(),
            long_lines: facts.long_lines,
            invalid_utf8: facts.invalid_utf8,
            sections: facts
                .sections
                .iter()
                .map(|s| SectionSummary {
                    name: s.name.clone(),
                    start_line: s.start_line,
                    end_line: s.end_line,
                    duration_s: s.duration_s,
                })
                .collect(),
            incomplete: None,
        },
    }
}

/// A candidate this close to a chosen line with context is skipped: the
/// context already shows it (and the next place goes to something else).
const CONTEXT_GAP: u64 = CONTEXT_LINES as u64;

/// Lines just above the failure line that are candidates, rule or no rule.
const TAIL_CANDIDATES: usize = 5;

/// The rules' hit slots (not the red-lines slot after them).
fn rule_slots<'h>(
    hits: &'h [RuleHits],
    catalog: &Catalog,
) -> impl Iterator<Item = (usize, &'h RuleHits)> {
    hits.iter().enumerate().take(catalog.rules.len())
}

/// A candidate line being ranked.
struct Cand<'a> {
    x: ranker::Candidate<'a>,
    /// The best rule that picked it: (its score, rule index).
    rule: Option<(f64, usize)>,
    /// Where it was recorded (context lines), when a rule or its colour kept it.
    hit: Option<&'a Hit>,
    key: u64,
}

/// The candidate of `line`, created on first sight.
fn cand_for<'c, 'a>(cands: &'c mut Vec<Cand<'a>>, line: u64, text: &'a [u8]) -> &'c mut Cand<'a> {
    let i = match cands.iter().position(|c| c.x.line == line) {
        Some(i) => i,
        None => {
            cands.push(Cand {
                x: ranker::Candidate {
                    line,
                    text,
                    ..ranker::Candidate::default()
                },
                rule: None,
                hit: None,
                key: 0,
            });
            cands.len() - 1
        }
    };
    &mut cands[i]
}

/// A line above the failure line worth ranking: before the runner's
/// `ERROR: Job failed` line, not the runner's own footer.
fn tail_candidate(n: u64, text: &[u8], facts: &TraceFacts) -> bool {
    facts.job_failed_line.is_none_or(|jf| n < jf) && !is_runner_footer(text)
}

fn evidence_of(c: &Cand<'_>, score: f64, catalog: &Catalog, facts: &TraceFacts) -> Evidence {
    let (rule, category) = match c.rule {
        Some((_, r)) => (
            catalog.rules[r].id.clone(),
            catalog.rules[r]
                .category
                .map(|k| catalog.categories[k].id.clone()),
        ),
        None if c.x.tail => ("tail".to_string(), None),
        None => ("styled".to_string(), None),
    };
    let mut text = lossy(c.x.text);
    if c.hit.is_some_and(|h| h.cut) {
        text.push('…');
    }
    Evidence {
        line: c.x.line,
        text,
        rule,
        category,
        // The model's score as a probability-like 0..1.
        score: round3(1.0 / (1.0 + (-score).exp())),
        section: c
            .hit
            .and_then(|h| h.section)
            .or_else(|| facts.section_at(c.x.line))
            .map(|s| facts.sections[s].name.clone()),
        before: c.hit.map(|h| context(&h.before)).unwrap_or_default(),
        after: c.hit.map(|h| context(&h.after)).unwrap_or_default(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn context(lines: &[(u64, Vec<u8>)]) -> Vec<ContextLine> {
    lines
        .iter()
        .map(|(n, t)| ContextLine {
            line: *n,
            text: lossy(t),
        })
        .collect()
}

/// Runner boilerplate that ends every failed job and explains nothing.
fn is_runner_footer(text: &[u8]) -> bool {
    const FOOTERS: &[&[u8]] = &[
        b"ERROR: Job failed",
        b"Cleaning up project directory",
        b"Cleaning up file based variables",
        b"Uploading artifacts",
        b"Running after_script",
        b"Saving cache",
        b"Not uploading cache",
        b"Done. Your build exited with",
        b"##[error]Process completed with exit code",
        b"Post job cleanup",
        b"Finished: FAILURE",
        b"The command \"",
        b"\" exited with ",
    ];
    FOOTERS.iter().any(|f| text.starts_with(f))
}

/// Classifies one log read from `input` (plain text; decompress first).
pub fn classify_reader<R: BufRead>(
    input: R,
    catalog: &Catalog,
    opts: &ClassifyOptions,
) -> io::Result<Classification> {
    let mut scanner = Scanner::with_tail(catalog, opts.tail_lines);
    let facts = TraceWalker::new().walk(input, |line, facts| {
        scanner.feed(
            line.number,
            line.text,
            line.section,
            line.section_kind,
            line.style,
        );
        if facts.failure_anchor == Some(line.number) {
            scanner.mark_anchor(line.number);
        }
    })?;
    Ok(scanner.finish(&facts, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(log: &str) -> Classification {
        let cat = Catalog::builtin().unwrap();
        classify_reader(log.as_bytes(), &cat, &ClassifyOptions::default()).unwrap()
    }

    /// The prefilter (literals, anchored automaton, union of the rest) finds
    /// exactly the lines that running every rule on every line finds.
    #[test]
    fn the_prefilter_finds_what_every_rule_on_every_line_finds() {
        let cat = Catalog::builtin().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let mut text: Vec<u8> = Vec::new();
        for sub in ["logs", "runner"] {
            let mut files: Vec<_> = std::fs::read_dir(dir.join(sub))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files {
                text.extend(std::fs::read(f).unwrap());
                text.push(b'\n');
            }
        }
        // Lines for rules anchored at the line's start, and near misses.
        text.extend_from_slice(
            b"e: file:///src/Main.kt: (3, 5): Unresolved reference: foo\n\
              e: /src/Main.kts:3:5 Unresolved\n x e: /src/Main.kt: no\n\
              [error] /a/B.scala:3:4: type mismatch\n [error] /a/B.scala:3: x\n\
              E       assert 1 == 2\nE  x\n  1. [L12] 404 https://example.com\n\
              [404] https://example.com/x\n3 broken links\nERROR: Detected 2 broken links\n\
              FAILED tests/test_a.py::test_b - AssertionError\n",
        );
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let mut scanner = Scanner::new(&cat);
        for (i, l) in lines.iter().enumerate() {
            scanner.feed(i as u64 + 1, l, None, SectionKind::Script, Style::default());
        }
        scanner.flush();
        let mut mismatches = Vec::new();
        for (r, rule) in cat.rules.iter().enumerate() {
            let naive = lines
                .iter()
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .filter(|l| rule.is_match(l))
                .filter(|l| !rule.unless.as_ref().is_some_and(|u| u.is_match(l)))
                .count() as u64;
            if scanner.hits[r].count != naive {
                mismatches.push(format!(
                    "{}: prefilter {} naive {naive}",
                    rule.id, scanner.hits[r].count
                ));
            }
        }
        assert!(mismatches.is_empty(), "{mismatches:#?}");
        let total: u64 = scanner.hits.iter().map(|h| h.count).sum();
        assert!(total > 100, "the fixtures hit the rules: {total}");
    }

    #[test]
    fn rust_compile_error_beats_the_generic_lines() {
        let c = classify(
            "   Compiling foo v0.1.0\nerror[E0308]: mismatched types\n  --> src/main.rs:3:5\n\nerror: could not compile `foo` (bin \"foo\") due to 1 previous error\nERROR: Job failed: exit code 101\n",
        );
        assert_eq!(c.category, "compilation");
        assert_eq!(c.evidence[0].line, 2);
        assert_eq!(c.evidence[0].after[0].text, "  --> src/main.rs:3:5");
        assert!(c.confidence >= 0.8, "{}", c.confidence);
        assert_eq!(c.decided_by, DecidedBy::Rules);
    }

    #[test]
    fn nothing_matches_gives_unknown_with_the_tail() {
        let c = classify("hello\nworld\nsomething odd\nERROR: Job failed: exit code 3\n");
        assert_eq!(c.category, "unknown");
        assert_eq!(c.confidence, 0.0);
        assert_eq!(c.decided_by, DecidedBy::None);
        // Ranked: the line just above the runner's failure line first.
        let lines: Vec<u64> = c.evidence.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 2, 1]);
    }

    #[test]
    fn unknown_tail_is_the_failing_step_not_after_script_or_uploads() {
        let log = "section_start:1:step_script\r\x1b[0K\n\
                   $ ./deploy.sh\n\
                   deploy: 3 objects differ\n\
                   deploy: refusing to purge\n\
                   section_end:2:step_script\r\x1b[0K\n\
                   section_start:2:after_script\r\x1b[0KRunning after_script\n\
                   Running after script...\n\
                   $ ./collect-logs.sh\n\
                   collect-logs: copied 14 files\n\
                   section_end:3:after_script\r\x1b[0K\n\
                   section_start:3:upload_artifacts_on_failure\r\x1b[0KUploading artifacts for failed job\n\
                   logs: found 15 matching artifact files and directories\n\
                   section_end:4:upload_artifacts_on_failure\r\x1b[0K\n\
                   ERROR: Job failed: exit code 1\n";
        let c = classify(log);
        assert_eq!(c.category, "unknown");
        let lines: Vec<u64> = c.evidence.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 3, 2]);
        assert_eq!(c.evidence[0].text, "deploy: refusing to purge");

        // A step that printed nothing: what came after it is all there is.
        let quiet = log
            .replace("$ ./deploy.sh\n", "")
            .replace("deploy: 3 objects differ\n", "")
            .replace("deploy: refusing to purge\n", "");
        let c = classify(&quiet);
        assert_eq!(
            c.evidence[0].text,
            "logs: found 15 matching artifact files and directories"
        );
    }

    #[test]
    fn failure_reason_decides_infrastructure_failures() {
        let cat = Catalog::builtin().unwrap();
        let opts = ClassifyOptions {
            failure_reason: Some("stuck_or_timeout_failure".into()),
            ..Default::default()
        };
        let c = classify_reader(&b"running tests\n"[..], &cat, &opts).unwrap();
        assert_eq!(c.category, "timeout");
        assert_eq!(c.decided_by, DecidedBy::FailureReason);
    }

    #[test]
    fn errors_in_after_script_do_not_outrank_the_script() {
        let log = "section_start:1:step_script\r\x1b[0K\n--- FAIL: TestParse (0.00s)\nsection_end:2:step_script\r\x1b[0K\nsection_start:3:after_script\r\x1b[0K\nerror: could not find `Cargo.toml`\nsegmentation fault\nsection_end:4:after_script\r\x1b[0K\nERROR: Job failed: exit code 1\n";
        let c = classify(log);
        assert_eq!(c.category, "test_failure");
        assert_eq!(c.section.as_deref(), Some("step_script"));
        assert_eq!(c.evidence[0].line, 2);
    }

    /// A GitLab trace: runner stages, each `(name, lines)`, then the
    /// runner's failure line.
    fn runner_log(stages: &[(&str, &[&str])], failed: &str) -> String {
        let mut log = String::new();
        for (i, (name, lines)) in stages.iter().enumerate() {
            log.push_str(&format!("section_start:{i}:{name}\r\x1b[0K\n"));
            for l in *lines {
                log.push_str(l);
                log.push('\n');
            }
            log.push_str(&format!("section_end:{i}:{name}\r\x1b[0K\n"));
        }
        log.push_str(failed);
        log.push('\n');
        log
    }

    #[test]
    fn a_runner_stage_never_gives_a_test_or_compile_verdict() {
        // A pre_get_sources hook printed test-like lines; the job failed in
        // get_sources on a git error no rule names.
        let log = runner_log(
            &[
                (
                    "prepare_executor",
                    &["Using Docker executor with image alpine ..."],
                ),
                (
                    "get_sources",
                    &[
                        "--- FAIL: TestHook (0.00s)",
                        "src/hook.c:3:1: error: expected ';'",
                        "fatal: the repository state is something new",
                    ],
                ),
                ("cleanup_file_variables", &[]),
            ],
            "ERROR: Job failed: exit code 128",
        );
        let c = classify(&log);
        assert_eq!(c.category, "git_checkout");
        assert_eq!(c.evidence[0].line, 7, "{:?}", c.evidence);
        assert!(
            c.evidence
                .iter()
                .all(|e| e.rule != "go-test-fail" && e.rule != "c-compiler-error"),
            "{:?}",
            c.evidence
        );
        assert_eq!(c.section.as_deref(), Some("get_sources"));
    }

    #[test]
    fn a_recovered_preparation_failure_does_not_decide_a_script_failure() {
        let log = runner_log(
            &[
                (
                    "prepare_executor",
                    &[
                        "ERROR: Preparation failed: unable to acquire instance: context deadline exceeded",
                        "Will be retried in 3s ...",
                        "Using Docker executor with image gcc:14 ...",
                    ],
                ),
                (
                    "step_script",
                    &["$ make", "make: *** [Makefile:4: all] Error 2"],
                ),
            ],
            "ERROR: Job failed: exit code 2",
        );
        let c = classify(&log);
        assert_eq!(c.category, "compilation", "{:?}", c.candidates);
        assert_eq!(c.evidence[0].text, "make: *** [Makefile:4: all] Error 2");
    }

    #[test]
    fn after_a_script_that_passed_the_failing_upload_decides() {
        let log = runner_log(
            &[
                (
                    "step_script",
                    &[
                        "--- FAIL: TestFlaky (0.20s)",
                        "DONE 2 runs, 40 tests, 1 failure",
                    ],
                ),
                (
                    "upload_artifacts_on_success",
                    &[
                        "ERROR: Uploading artifacts as \"archive\" to coordinator... 413 Request Entity Too Large  id=1 status=413",
                        "FATAL: too large",
                    ],
                ),
            ],
            "ERROR: Job failed: exit code 1",
        );
        let c = classify(&log);
        assert_eq!(c.category, "artifact_cache", "{:?}", c.candidates);
        assert_eq!(c.evidence[0].line, 6);
        assert!(c.candidates.iter().all(|s| s.category != "test_failure"));
        assert_eq!(c.section.as_deref(), Some("upload_artifacts_on_success"));
        // The same upload error after a failed script is not the cause.
        let failed = log.replace("upload_artifacts_on_success", "upload_artifacts_on_failure");
        assert_eq!(classify(&failed).category, "test_failure");
    }

    #[test]
    fn tail_is_taken_above_the_failure_anchor() {
        let cat = Catalog::builtin().unwrap();
        let mut log = String::new();
        for i in 1..=30 {
            log.push_str(&format!("step {i}\n"));
        }
        log.push_str(
            "##[error]Process completed with exit code 1.\nPost job cleanup.\ngit version 2.48\n",
        );
        let opts = ClassifyOptions {
            tail_lines: 10,
            ..Default::default()
        };
        let c = classify_reader(log.as_bytes(), &cat, &opts).unwrap();
        let lines: Vec<u64> = c.tail.iter().map(|t| t.line).collect();
        assert_eq!(lines, (21..=30).collect::<Vec<u64>>());
        let plain = classify_reader(log.as_bytes(), &cat, &ClassifyOptions::default()).unwrap();
        assert!(plain.tail.is_empty());
    }

    #[test]
    fn many_matches_stay_bounded() {
        let mut log = String::new();
        for i in 0..20_000 {
            log.push_str(&format!("--- FAIL: TestN{i} (0.00s)\n"));
        }
        let cat = Catalog::builtin().unwrap();
        let mut scanner = Scanner::new(&cat);
        let facts = TraceWalker::new()
            .walk(log.as_bytes(), |l, _| {
                scanner.feed(l.number, l.text, l.section, l.section_kind, l.style)
            })
            .unwrap();
        let kept: usize = scanner
            .hits
            .iter()
            .map(|h| h.first.len() + h.last.len())
            .sum();
        assert!(kept <= cat.rules.len() * (KEEP_FIRST + KEEP_LAST));
        let c = scanner.finish(&facts, &ClassifyOptions::default());
        assert_eq!(c.category, "test_failure");
        // Which of 20,000 failing tests comes first is the line model's call;
        // it is one of them, and no line is shown twice.
        assert!(c.evidence[0].text.starts_with("--- FAIL: TestN"));
        let mut lines: Vec<u64> = c.evidence.iter().map(|e| e.line).collect();
        lines.dedup();
        assert_eq!(lines.len(), c.evidence.len());
    }
}
