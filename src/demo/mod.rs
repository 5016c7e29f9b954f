//! `runneriq demo`: an embedded failed pipeline, diagnosed offline by the same
//! code as `runneriq diagnose` (fetch is replaced by embedded data; the
//! classification, correlation, template and safety passes are the real ones).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::classify::{self, Catalog, ClassifyOptions};
use crate::diagnose::fetch::{self, Changes, PipelineRun, TraceOutcome, Tree};
use crate::diagnose::note::Templates;
use crate::diagnose::{self, NoteFormat};
use crate::gitlab::models::{Diff, Job, MergeRequest};

const JOBS: &str = include_str!("data/jobs.json");
const MERGE_REQUEST: &str = include_str!("data/merge_request.json");
const MR_DIFFS: &str = include_str!("data/mr_diffs.json");
const TRACES: &[(u64, &[u8])] = &[
    (90101, include_bytes!("data/traces/90101.log")),
    (90102, include_bytes!("data/traces/90102.log")),
    (90104, include_bytes!("data/traces/90104.log")),
    (90105, include_bytes!("data/traces/90105.log")),
    (90106, include_bytes!("data/traces/90106.log")),
    (90107, include_bytes!("data/traces/90107.log")),
];
const PROJECT: &str = "acme/vision";
const PIPELINE: u64 = 4242;

/// What the demo renders.
pub struct DemoOptions {
    pub format: NoteFormat,
    pub templates: Option<PathBuf>,
}

/// Diagnoses the embedded pipeline and returns the note (Markdown or JSON).
pub fn render(opts: &DemoOptions) -> anyhow::Result<String> {
    let jobs: Vec<Job> = serde_json::from_str(JOBS).context("demo data: jobs.json")?;
    let mr: MergeRequest =
        serde_json::from_str(MERGE_REQUEST).context("demo data: merge_request.json")?;
    let diffs: Vec<Diff> = serde_json::from_str(MR_DIFFS).context("demo data: mr_diffs.json")?;
    let web_url = jobs
        .first()
        .and_then(|j| j.pipeline.as_ref())
        .and_then(|p| p.web_url.clone());
    let tree = Tree {
        runs: vec![PipelineRun {
            project: PROJECT.to_string(),
            pipeline_id: PIPELINE,
            depth: 0,
            via: None,
            web_url,
            jobs,
            bridge_ids: HashSet::new(),
            truncated: false,
        }],
        warnings: Vec::new(),
    };
    let parts = fetch::partition(&tree.runs, None);
    let changes = Changes {
        paths: diffs.iter().map(|d| d.new_path.clone()).collect(),
        source: Some(format!("merge request !{}", mr.iid)),
        truncated: false,
        error: None,
    };
    let catalog = Catalog::builtin()?;
    let outcomes = parts
        .failed
        .iter()
        .map(|p| {
            let Some((_, trace)) = TRACES.iter().find(|(id, _)| *id == p.job.id) else {
                return TraceOutcome::Unreadable("the demo has no log for it".to_string());
            };
            let copts = ClassifyOptions {
                max_evidence: 5,
                failure_reason: p.job.failure_reason.clone(),
                ..Default::default()
            };
            match classify::classify_reader(*trace, &catalog, &copts) {
                Ok(c) => TraceOutcome::Classified(Box::new(c)),
                Err(e) => TraceOutcome::Unreadable(e.to_string()),
            }
        })
        .collect();
    let redactor = crate::llm::redact::Redactor::new(Vec::<String>::new());
    let mut note = diagnose::assemble(
        PROJECT,
        PIPELINE,
        &tree,
        &parts,
        &changes,
        outcomes,
        &[],
        &redactor,
    );
    note.target = Some(format!("merge request !{} (demo data)", mr.iid));
    let facts = diagnose::triage::BranchFacts {
        branch: Some(mr.source_branch.clone()),
        important: false,
        on_default: false,
    };
    diagnose::triage::triage(
        &mut note,
        &crate::config::Config::default(),
        &facts,
        &diagnose::history::Lookups::default(),
    );
    match opts.format {
        NoteFormat::Json => Ok(serde_json::to_string_pretty(&note)? + "\n"),
        NoteFormat::Md => {
            let templates = Templates::load(opts.templates.as_deref())?;
            templates.render_within_budget(&note)
        }
    }
}

pub fn run(opts: &DemoOptions) -> anyhow::Result<ExitCode> {
    let out = render(opts)?;
    eprintln!(
        "runneriq demo: an embedded failed pipeline (demo data, offline) diagnosed as \
         `runneriq diagnose` would post it on merge request !17:\n"
    );
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    if let Err(e) = lock.write_all(out.as_bytes()).and_then(|()| lock.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing output");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_parses_and_every_failed_job_has_a_trace() {
        let jobs: Vec<Job> = serde_json::from_str(JOBS).unwrap();
        let tree_runs = vec![PipelineRun {
            project: PROJECT.into(),
            pipeline_id: PIPELINE,
            depth: 0,
            via: None,
            web_url: None,
            jobs,
            bridge_ids: HashSet::new(),
            truncated: false,
        }];
        let parts = fetch::partition(&tree_runs, None);
        assert_eq!(parts.failed.len(), 4);
        assert_eq!(parts.passed_on_retry.len(), 1);
        assert_eq!(parts.allowed_failures.len(), 1);
        for p in parts.failed.iter().chain(&parts.allowed_failures) {
            assert!(
                TRACES.iter().any(|(id, _)| *id == p.job.id),
                "job {}",
                p.job.id
            );
        }
    }
}
