//! The note's data from what was fetched: each failed job's classification,
//! its evidence correlated with the changed files and redacted, and the jobs
//! that passed on retry or were allowed to fail. No I/O, so `demo` and the
//! tests build notes with the same code as a live diagnosis.

use super::fetch::{self, TraceOutcome};
use super::note::{self, JobBrief, Note};
use super::{correlate, history, junit};

/// Builds the note's data from what was fetched. `outcomes` are in the order of
/// `parts.failed`.
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    project: &str,
    pipeline: u64,
    tree: &fetch::Tree,
    parts: &fetch::Partition,
    changes: &fetch::Changes,
    outcomes: Vec<TraceOutcome>,
    suites: Vec<Option<fetch::JobSuite>>,
    checkout_dirs: &[String],
    redactor: &crate::llm::redact::Redactor,
) -> Note {
    let mut n = note::empty_note(project, pipeline);
    n.pipeline_url = tree.runs.first().and_then(|r| r.web_url.clone());
    n.unfinished = parts.unfinished;
    n.passed_on_retry = parts.passed_on_retry.iter().map(brief).collect();
    n.omitted_passed_on_retry = note::cap_brief(&mut n.passed_on_retry);
    n.allowed_failures = parts.allowed_failures.iter().map(brief).collect();
    n.omitted_allowed_failures = note::cap_brief(&mut n.allowed_failures);
    if parts.failed.is_empty() {
        if parts.unfinished == 0 {
            n.set_status("passed");
        } else {
            n.set_status("no_failures");
        }
        return n;
    }
    n.changes = note::ChangesInfo {
        source: changes.source.clone(),
        files: changes.paths.len(),
        truncated: changes.truncated,
        error: changes.error.clone(),
    };
    let mut suites = suites.into_iter();
    for (p, outcome) in parts.failed.iter().zip(outcomes) {
        let suite = suites.next().flatten();
        let run = &tree.runs[p.run];
        let mut r = note::job_report(
            p.job.id,
            &p.job.name,
            &p.job.stage,
            p.job.web_url.clone(),
            &run.project,
            run.pipeline_id,
            run.via.clone(),
            p.job.failure_reason.clone(),
            p.attempts,
            p.failed_attempts,
        );
        match outcome {
            TraceOutcome::Classified(c) => {
                r.fingerprint =
                    history::fingerprint_of(&c, p.job.failure_reason.as_deref(), redactor);
                let (refs, hits) = correlate::correlate(&c.evidence, &changes.paths, checkout_dirs);
                note::apply_classification(&mut r, &c, refs, hits);
                note::redact_evidence(&mut r, redactor);
            }
            TraceOutcome::Unreadable(why) => {
                r.fingerprint = history::fingerprint_unreadable(p.job.failure_reason.as_deref());
                r.unreadable_reason = Some(why);
            }
        }
        if let Some(js) = suite {
            let t = junit::job_tests(
                &js.suite,
                js.tests_url,
                &changes.paths,
                checkout_dirs,
                redactor,
            );
            r.fingerprint = junit::fingerprint(&t);
            // The verdict names the changed file a failing test points at,
            // else the first failing test's file (not the log's guess).
            if !r.headline_is_change {
                if let Some(f) = t.all.iter().find_map(|x| x.changed_file.clone()) {
                    r.headline_file = Some(f);
                    r.headline_is_change = true;
                } else if let Some(f) = t.all.iter().find_map(|x| x.file.clone()) {
                    r.headline_file = Some(f);
                }
            }
            r.tests = Some(t);
        }
        n.failed.push(r);
    }
    // The counts, first line and verdict come from `triage::triage`, which
    // sorts the jobs into new failures and noise.
    n
}

fn brief(p: &fetch::PickedJob) -> JobBrief {
    JobBrief {
        id: p.job.id,
        name: p.job.name.clone(),
        stage: p.job.stage.clone(),
        web_url: p.job.web_url.clone(),
        failure_reason: p.job.failure_reason.clone(),
        attempts: p.attempts,
        failed_attempts: p.failed_attempts,
    }
}
