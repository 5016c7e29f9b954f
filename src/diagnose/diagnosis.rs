//! The diagnosis as data: what the pipeline's failed jobs are, what the
//! rules, the diff, the target branch and the history say about them, and
//! how they group and count. Analysis fills it (`assemble`, `triage`); the
//! note (`note.rs`) renders it, and `--format json` prints it (field names
//! are a contract for custom templates and JSON consumers).

use std::collections::HashMap;

use serde::Serialize;

use super::correlate::{FileHit, FileRef};
use crate::classify::Evidence;

/// Everything a note says. Field names are a contract for custom templates and
/// `--format json` consumers.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub marker: String,
    /// A second hidden comment naming the pipeline the note describes.
    pub pipeline_marker: String,
    pub version: String,
    /// `failed`, `passed` (no failed job, all finished) or `no_failures`
    /// (no failed job, some still running).
    pub status: String,
    pub project: String,
    pub pipeline_id: u64,
    pub pipeline_url: Option<String>,
    /// Where the note goes: "merge request !7", "commit 0123abcd", or null.
    pub target: Option<String>,
    /// The pipeline's branch, when known.
    pub branch: Option<String>,
    /// The first line: "1 new failure · 2 flaky · 1 already failing on `main`"
    /// (Markdown) and the same in plain text.
    pub headline_md: String,
    pub headline: String,
    pub counts: Counts,
    /// The one-line verdict, Markdown (paths in code spans).
    pub verdict_md: String,
    /// The same verdict, plain text.
    pub verdict: String,
    pub changes: ChangesInfo,
    pub failed: Vec<JobReport>,
    /// Failed jobs left out of `failed` to respect the size limit.
    pub omitted_failed: usize,
    pub passed_on_retry: Vec<JobBrief>,
    pub omitted_passed_on_retry: usize,
    pub allowed_failures: Vec<JobBrief>,
    pub omitted_allowed_failures: usize,
    pub unfinished: usize,
    /// Failed jobs left out by `suppress:` rules of `.runneriq.yml`.
    pub suppressed: Vec<Suppressed>,
    pub omitted_suppressed: usize,
    /// The target branch's latest other finished pipeline, when looked up.
    pub upstream: Option<UpstreamPipeline>,
    /// The branch whose recent runs were read for flakiness.
    pub history_branch: Option<String>,
    /// API requests the upstream and history lookups cost.
    pub history_requests: u64,
    pub warnings: Vec<String>,
    /// Resolved notes: the diagnosis the note showed before.
    pub previous: Option<Previous>,
}

/// The diagnosis a resolved note showed before, read back from the note's
/// hidden state. It is text RunnerIQ once wrote, but read back from GitLab it
/// is as untrusted as a log line: redacted, made visible, and fenced.
#[derive(Debug, Clone, Serialize)]
pub struct Previous {
    pub pipeline_id: u64,
    pub pipeline_url: Option<String>,
    /// Plain text (not Markdown: templates print `block`).
    pub text: String,
    /// `text` as a fenced code block (safe Markdown).
    pub block: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangesInfo {
    pub source: Option<String>,
    pub files: usize,
    pub truncated: bool,
    pub error: Option<String>,
}

/// One failed job.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub id: u64,
    pub name: String,
    pub stage: String,
    pub web_url: Option<String>,
    pub project: String,
    pub pipeline_id: u64,
    /// The trigger job that started this job's (downstream) pipeline.
    pub downstream: Option<String>,
    pub failure_reason: Option<String>,
    pub attempts: u32,
    pub failed_attempts: u32,
    /// Category and normalised evidence, hashed: equal for the same error in
    /// another job or another run.
    pub fingerprint: String,
    /// `new` (likely this change), `upstream` (failing the same way on the
    /// target branch) or `flaky` (fails now and then with this error there).
    pub noise: String,
    pub severity: crate::noise::severity::Severity,
    /// Why that severity, in words.
    pub severity_why: String,
    pub kind: crate::noise::severity::JobKind,
    /// The job's recent runs on the default branch, when read.
    pub history: Option<JobHistory>,
    /// The same job failing the same way on the target branch.
    pub upstream_job: Option<UpstreamJob>,
    /// Jobs in this entry (1 + `same_failure` + `omitted_same_failure`).
    pub jobs_in_group: usize,
    /// Other jobs that failed with the same fingerprint.
    pub same_failure: Vec<JobBrief>,
    pub omitted_same_failure: usize,
    pub readable: bool,
    pub unreadable_reason: Option<String>,
    pub category: Option<String>,
    pub title: Option<String>,
    pub confidence: Option<f64>,
    /// `0.93`, so templates need no number formatting.
    pub confidence_text: Option<String>,
    pub decided_by: Option<String>,
    pub section: Option<String>,
    pub transient: bool,
    /// The category's advice from the catalog.
    pub advice: Option<String>,
    /// What the note says to do: the advice, led by "retry" for transient
    /// failures when the advice does not already say so.
    pub next_step: Option<String>,
    pub empty_log: bool,
    pub output_limit_hit: bool,
    /// Why only part of the log was read (size or time budget).
    pub incomplete: Option<String>,
    /// The best evidence lines with their context, most relevant first.
    pub evidence: Vec<Evidence>,
    /// The first evidence line, said above the excerpt: one line of plain
    /// text (redacted like the evidence, invisible characters written out,
    /// blanks collapsed), at most [`KEY_LINE_CHARS`] characters, cut with `…`.
    /// Templates print it with the `code` filter.
    pub key_line: Option<String>,
    /// Its line number in the job's log.
    pub key_line_number: Option<u64>,
    /// `evidence` as a fenced, line-numbered code block (safe Markdown).
    pub evidence_block: String,
    pub evidence_truncated: bool,
    pub file_refs: Vec<FileRef>,
    pub changed_files: Vec<FileHit>,
    /// The file the verdict names, and whether it is a changed file.
    pub headline_file: Option<String>,
    pub headline_is_change: bool,
    /// Its failing tests, when its pipeline has a unit test report naming
    /// them (`artifacts: reports: junit:`).
    pub tests: Option<super::junit::JobTests>,
    /// The LLM's second opinion, when the rules were unsure and it answered
    /// (`taken`: its category is the verdict, `decided_by` is `llm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<crate::llm::prompt::Opinion>,
    /// Why the LLM, configured and asked, gave no usable answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_unavailable: Option<String>,
}

/// A job listed briefly (passed on retry, allowed to fail).
#[derive(Debug, Clone, Serialize)]
pub struct JobBrief {
    pub id: u64,
    pub name: String,
    pub stage: String,
    pub web_url: Option<String>,
    pub failure_reason: Option<String>,
    pub attempts: u32,
    pub failed_attempts: u32,
}

/// A failed job left out of the findings by a rule of `.runneriq.yml`.
#[derive(Debug, Clone, Serialize)]
pub struct Suppressed {
    pub job: JobBrief,
    pub category: Option<String>,
    pub title: Option<String>,
    /// 1-based index of the rule in `suppress:`.
    pub rule: usize,
    pub reason: Option<String>,
}

/// The one set of counts the note uses (first line, sentence, group
/// headings), in jobs. Each failed job is in exactly one group, so
/// `total = new + upstream + flaky + suppressed + allowed`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Jobs that failed, attempts that passed on retry included.
    pub total: usize,
    /// Failed jobs not explained by the target branch: likely this change.
    pub new: usize,
    /// Distinct errors (fingerprints) among the new failures.
    pub new_errors: usize,
    /// Jobs already failing the same way on the target branch.
    pub upstream: usize,
    /// Known flaky jobs plus jobs that passed on retry.
    pub flaky: usize,
    /// Of `flaky`, the jobs that passed on retry.
    pub passed_on_retry: usize,
    /// Failed jobs matched by a `suppress:` rule of `.runneriq.yml`.
    pub suppressed: usize,
    /// Jobs with `allow_failure` that failed.
    pub allowed: usize,
}

impl Counts {
    /// Counts the note's jobs: entries of `failed` by their `noise`, each
    /// with every job it stands for.
    pub fn of(n: &Note) -> Counts {
        let jobs = |noise: &str| -> usize {
            n.failed
                .iter()
                .filter(|r| r.noise == noise)
                .map(|r| r.jobs_in_group)
                .sum()
        };
        let passed_on_retry = n.passed_on_retry.len() + n.omitted_passed_on_retry;
        let mut c = Counts {
            total: 0,
            new: jobs("new"),
            new_errors: n.failed.iter().filter(|r| r.noise == "new").count(),
            upstream: jobs("upstream"),
            flaky: jobs("flaky") + passed_on_retry,
            passed_on_retry,
            suppressed: n.suppressed.len() + n.omitted_suppressed,
            allowed: n.allowed_failures.len() + n.omitted_allowed_failures,
        };
        c.total = c.new + c.upstream + c.flaky + c.suppressed + c.allowed;
        c
    }
}

/// One job's recent runs on the default branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobHistory {
    /// Finished runs (failed or passed) looked at, newest first, at most `history.runs`.
    pub runs: u32,
    pub failures: u32,
    pub successes: u32,
    /// Failed runs whose trace was read.
    pub checked: u32,
    /// Of those, failed with this pipeline's fingerprint.
    pub same: u32,
}

/// The target branch's latest other finished pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamPipeline {
    pub branch: String,
    pub pipeline_id: u64,
    pub status: String,
    pub web_url: Option<String>,
}

/// A job failing in both pipelines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamJob {
    pub id: u64,
    pub web_url: Option<String>,
    /// Fingerprint of its failure (None when its log could not be read).
    pub fingerprint: Option<String>,
}

/// What the lookups found.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    pub upstream: Option<UpstreamPipeline>,
    /// By job name.
    pub upstream_jobs: HashMap<String, UpstreamJob>,
    /// By job name.
    pub history: HashMap<String, JobHistory>,
    /// The branch the history was read on.
    pub history_branch: Option<String>,
    /// API requests spent, retries included.
    pub requests: u64,
    pub warnings: Vec<String>,
    /// Failing tests of the target branch's latest pipeline (when it did
    /// not pass): test key → (suite, normalised message).
    pub test_upstream: HashMap<String, (String, String)>,
    /// Failing tests' recent runs on the default branch, by test key.
    pub test_history: HashMap<String, super::junit::TestRuns>,
}
