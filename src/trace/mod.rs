//! CI log parsing: streaming lines, cleaning, GitLab section markers.
//!
//! [`TraceWalker`] reads a log once, front to back, from any `BufRead` (a
//! file, a gzip stream, an HTTP body) and hands each cleaned line to a
//! visitor together with the section it is in. Memory is bounded: one line
//! buffer of at most [`lines::DEFAULT_MAX_LINE`] bytes, and at most
//! [`MAX_SECTIONS`] recorded sections.

pub mod clean;
pub mod lines;

use std::io::{self, BufRead};

pub use clean::{LineCleaner, LinePrefix, Marker, Style};
pub use lines::LineReader;

/// Sections recorded per trace; a log with more still parses, the rest are
/// only counted.
pub const MAX_SECTIONS: usize = 2048;
const MAX_DEPTH: usize = 32;

/// The runner's own stages, in the order a job runs them. User sections
/// (`section_start` in a script) nest inside `step_script`.
pub const RUNNER_STAGES: &[&str] = &[
    "resolve_secrets",
    "prepare_executor",
    "prepare_script",
    "get_sources",
    "clear_worktree",
    "restore_cache",
    "download_artifacts",
    "step_script",
    "build_script",
    "after_script",
    "archive_cache",
    "archive_cache_on_failure",
    "upload_artifacts_on_success",
    "upload_artifacts_on_failure",
    "cleanup_file_variables",
];

/// What kind of work a section does; it changes how much an error in it says
/// about the job's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// Runner set-up before the script: executor, sources, cache, artifacts in.
    Setup,
    /// The user's script (`step_script`, `build_script`, `step_<name>`, and
    /// user sections inside them).
    Script,
    /// `after_script`: runs after failure too; its errors rarely are the cause.
    AfterScript,
    /// Cache and artifact upload, clean-up.
    Teardown,
}

/// The section RunnerIQ opens at GitHub Actions' `Post job cleanup.` line:
/// what follows is the runner tidying up (git config, orphan processes),
/// never the failure.
pub const GHA_POST_JOB: &str = "post_job_cleanup";

pub fn section_kind(name: &str) -> SectionKind {
    match name {
        "resolve_secrets" | "prepare_executor" | "prepare_script" | "get_sources"
        | "clear_worktree" | "restore_cache" | "download_artifacts" => SectionKind::Setup,
        "after_script" => SectionKind::AfterScript,
        "archive_cache"
        | "archive_cache_on_failure"
        | "upload_artifacts_on_success"
        | "upload_artifacts_on_failure"
        | "cleanup_file_variables"
        | GHA_POST_JOB => SectionKind::Teardown,
        _ => SectionKind::Script,
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Section {
    pub name: String,
    /// 1-based line of the `section_start` marker.
    pub start_line: u64,
    /// Line of the `section_end` marker; `None` when the log ends inside it.
    pub end_line: Option<u64>,
    /// Seconds between the markers' timestamps.
    pub duration_s: Option<u64>,
    /// Index of the enclosing section in [`TraceFacts::sections`].
    #[serde(skip)]
    pub parent: Option<usize>,
    pub kind: SectionKind,
    #[serde(skip)]
    start_time: u64,
}

/// What one pass over a trace learned, besides what the visitor kept.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TraceFacts {
    pub lines: u64,
    pub bytes: u64,
    pub sections: Vec<Section>,
    /// Sections seen beyond [`MAX_SECTIONS`].
    pub sections_dropped: u64,
    /// The runner's `Job's log exceeded limit` line: the rest of the log,
    /// the final error included, is missing.
    pub output_limit_line: Option<u64>,
    /// The runner's `ERROR: Job failed...` line.
    pub job_failed_line: Option<u64>,
    /// The last line where a CI system said a step failed (GitLab's `ERROR:
    /// Job failed`, Travis' `The command "..." exited with N`, GitHub
    /// Actions' `Process completed with exit code N`, Jenkins' `Finished:
    /// FAILURE`). The cause is usually just above it.
    pub failure_anchor: Option<u64>,
    /// The job failed with a runner system failure.
    pub system_failure: bool,
    /// Lines longer than the line buffer, cut for analysis.
    pub long_lines: u64,
    /// The log carried the runner 18.7+ timestamp prefix.
    pub timestamped: bool,
    /// The log contained bytes that are not UTF-8.
    pub invalid_utf8: bool,
}

impl TraceFacts {
    /// The innermost recorded section containing `line`.
    pub fn section_at(&self, line: u64) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, s) in self.sections.iter().enumerate() {
            let inside = s.start_line <= line && s.end_line.is_none_or(|e| line <= e);
            if inside && best.is_none_or(|b| self.sections[b].start_line <= s.start_line) {
                best = Some(i);
            }
        }
        best
    }

    /// The last script section that started (`step_script`, `build_script`,
    /// `step_<name>`), the usual home of a script failure.
    pub fn last_script_stage(&self) -> Option<usize> {
        self.sections.iter().rposition(|s| {
            s.parent.is_none() && (s.name == "build_script" || s.name.starts_with("step_"))
        })
    }

    /// The last top-level section that started before `line`.
    pub fn last_stage_before(&self, line: u64) -> Option<usize> {
        self.sections
            .iter()
            .rposition(|s| s.parent.is_none() && s.start_line <= line)
    }
}

/// One cleaned line as the visitor sees it.
pub struct TraceLine<'a> {
    /// 1-based line number in the raw file.
    pub number: u64,
    /// Visible text: no ANSI, markers, redraws or timestamp prefix. Not
    /// necessarily UTF-8.
    pub text: &'a [u8],
    /// Innermost open section (index into [`TraceFacts::sections`]).
    pub section: Option<usize>,
    pub section_kind: SectionKind,
    pub prefix: LinePrefix,
    /// Colours the line was printed with.
    pub style: Style,
}

/// Reads a trace once and calls `visit` for every line.
pub struct TraceWalker {
    cleaner: LineCleaner,
    facts: TraceFacts,
    open: Vec<usize>,
}

impl Default for TraceWalker {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceWalker {
    pub fn new() -> Self {
        TraceWalker {
            cleaner: LineCleaner::default(),
            facts: TraceFacts::default(),
            open: Vec::new(),
        }
    }

    /// Streams `input` to the end. I/O errors stop the walk and are returned;
    /// nothing in the content itself is an error.
    pub fn walk<R: BufRead>(
        mut self,
        input: R,
        mut visit: impl FnMut(&TraceLine<'_>, &TraceFacts),
    ) -> io::Result<TraceFacts> {
        let mut reader = LineReader::new(input);
        while reader.advance()? {
            let raw = reader.line();
            let number = reader.line_no();
            if reader.was_cut() {
                self.facts.long_lines += 1;
            }
            if !self.facts.invalid_utf8 && !raw.is_ascii() && std::str::from_utf8(raw).is_err() {
                self.facts.invalid_utf8 = true;
            }
            let prefix = self.cleaner.clean(raw);
            if prefix.runner_prefix {
                self.facts.timestamped = true;
            }
            for i in 0..self.cleaner.markers.len() {
                let m = self.cleaner.markers[i].clone();
                self.apply_marker(m, number);
            }
            if self.open.is_empty() && self.cleaner.text == b"Post job cleanup." {
                self.apply_marker(
                    Marker {
                        start: true,
                        unix_time: 0,
                        name: GHA_POST_JOB.to_string(),
                    },
                    number,
                );
            }
            let text = &self.cleaner.text[..];
            note_runner_lines(&mut self.facts, text, number);
            let section = self.open.last().copied();
            let section_kind = section
                .map(|s| self.facts.sections[s].kind)
                .unwrap_or(SectionKind::Script);
            let line = TraceLine {
                number,
                text,
                section,
                section_kind,
                prefix,
                style: self.cleaner.style,
            };
            visit(&line, &self.facts);
        }
        self.facts.lines = reader.line_no();
        self.facts.bytes = reader.bytes_read();
        Ok(self.facts)
    }

    fn apply_marker(&mut self, m: Marker, line: u64) {
        if m.start {
            if self.open.len() >= MAX_DEPTH || self.facts.sections.len() >= MAX_SECTIONS {
                self.facts.sections_dropped += 1;
                return;
            }
            // A runner stage never nests: close whatever is still open.
            let top_level = RUNNER_STAGES.contains(&m.name.as_str());
            if top_level {
                while let Some(open) = self.open.pop() {
                    self.close(open, line, None);
                }
            }
            let parent = self.open.last().copied();
            let kind = match parent {
                Some(p) => self.facts.sections[p].kind,
                None => section_kind(&m.name),
            };
            self.facts.sections.push(Section {
                name: m.name,
                start_line: line,
                end_line: None,
                duration_s: None,
                parent,
                kind,
                start_time: m.unix_time,
            });
            self.open.push(self.facts.sections.len() - 1);
        } else if let Some(pos) = self
            .open
            .iter()
            .rposition(|&i| self.facts.sections[i].name == m.name)
        {
            // Close it and anything left open inside it.
            while self.open.len() > pos {
                if let Some(open) = self.open.pop() {
                    let time = (self.open.len() == pos).then_some(m.unix_time);
                    self.close(open, line, time);
                }
            }
        }
    }

    fn close(&mut self, idx: usize, line: u64, end_time: Option<u64>) {
        let s = &mut self.facts.sections[idx];
        s.end_line = Some(line);
        if let Some(t) = end_time {
            if t >= s.start_time && s.start_time > 0 {
                s.duration_s = Some(t - s.start_time);
            }
        }
    }
}

/// A CI system's own words for "this step failed" (see `failure_anchor`).
fn is_step_failure(text: &[u8]) -> bool {
    // Travis: `The command "make test" exited with 2.`; a multi-line command
    // ends on a line of its own: `" exited with 2.`
    if text.starts_with(b"The command \"") || text.starts_with(b"\" exited with ") {
        return memchr::memmem::rfind(text, b"\" exited with ")
            .is_some_and(|i| text.get(i + 14).is_some_and(|c| (b'1'..=b'9').contains(c)));
    }
    text.starts_with(b"##[error]Process completed with exit code")
        || text.starts_with(b"Error: Process completed with exit code")
        || text.starts_with(b"Finished: FAILURE")
        || (text.starts_with(b"Build step '") && text.ends_with(b"marked build as failure"))
}

/// gitlab-runner's words when a log hit its `output_limit` (found by its
/// rare first letter: a substring searcher per line costs more on short lines).
const OUTPUT_LIMIT: &[u8] = b"Job's log exceeded limit of";

fn note_runner_lines(facts: &mut TraceFacts, text: &[u8], number: u64) {
    if is_step_failure(text) {
        facts.failure_anchor = Some(number);
    }
    if text.starts_with(b"ERROR: Job failed") {
        facts.failure_anchor = Some(number);
        facts.job_failed_line = Some(number);
        if text.starts_with(b"ERROR: Job failed (system failure)") {
            facts.system_failure = true;
        }
    } else if memchr::memchr_iter(b'J', text).any(|i| text[i..].starts_with(OUTPUT_LIMIT)) {
        facts.output_limit_line.get_or_insert(number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(input: &[u8]) -> (TraceFacts, Vec<(u64, String, Option<String>)>) {
        let mut seen = Vec::new();
        let facts = TraceWalker::new()
            .walk(input, |l, f| {
                seen.push((
                    l.number,
                    String::from_utf8_lossy(l.text).into_owned(),
                    l.section.map(|s| f.sections[s].name.clone()),
                ))
            })
            .unwrap();
        (facts, seen)
    }

    #[test]
    fn sections_nest_and_get_durations() {
        let log = b"section_start:100:step_script\r\x1b[0Kstart\n\
section_start:101:build[collapsed=true]\r\x1b[0K\n\
cc main.c\n\
section_end:110:build\r\x1b[0K\n\
error here\n\
section_end:120:step_script\r\x1b[0K\n\
section_start:121:after_script\r\x1b[0K\n\
ERROR: Job failed: exit code 1\n";
        let (facts, seen) = walk(log);
        assert_eq!(facts.sections.len(), 3);
        assert_eq!(facts.sections[0].duration_s, Some(20));
        assert_eq!(facts.sections[1].duration_s, Some(9));
        assert_eq!(facts.sections[1].parent, Some(0));
        assert_eq!(seen[2].2.as_deref(), Some("build"));
        assert_eq!(seen[4].2.as_deref(), Some("step_script"));
        assert_eq!(facts.job_failed_line, Some(8));
        assert_eq!(facts.last_script_stage(), Some(0));
        assert_eq!(facts.section_at(3), Some(1));
        assert_eq!(facts.sections[2].kind, SectionKind::AfterScript);
    }

    #[test]
    fn real_failed_trace_with_markers_only() {
        let log = include_bytes!(
            "../../tests/fixtures/gitlab/traces/failed_sections_only_exit_status_1.log"
        );
        let (facts, _) = walk(log);
        let names: Vec<_> = facts.sections.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"build_script"), "{names:?}");
        assert!(names.contains(&"upload_artifacts_on_failure"), "{names:?}");
        assert!(facts.job_failed_line.is_some());
    }

    #[test]
    fn failure_anchors_of_several_ci_systems() {
        for (log, want) in [
            (&b"a\nThe command \"make\" exited with 0.\nb\nThe command \"make test\" exited with 2.\nc\n"[..], Some(4)),
            (b"x\n##[error]Process completed with exit code 1.\n", Some(2)),
            (b"x\nBuild step 'Invoke top-level Maven targets' marked build as failure\nFinished: FAILURE\n", Some(3)),
            (b"The command \"true\" exited with 0.\n", None),
            (b"The command \"make &&\nmake test\n\" exited with 1.\nafter\n", Some(3)),
        ] {
            let (facts, _) = walk(log);
            assert_eq!(facts.failure_anchor, want, "{}", String::from_utf8_lossy(log));
        }
    }

    #[test]
    fn output_limit_is_noticed() {
        let (facts, _) = walk(b"a\nJob's log exceeded limit of 4194304 bytes.\nJob execution will continue but no more output will be collected.\n");
        assert_eq!(facts.output_limit_line, Some(2));
    }
}
