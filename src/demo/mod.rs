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
use crate::diagnose::{assemble, history, note, triage};
use crate::gitlab::models::{Diff, Job, MergeRequest};
use crate::publish::format::NoteFormat;

/// `runneriq run --mock`'s fleet and waiting jobs (copies of the routing
/// fixtures in `tests/fixtures/fleet`, see `data/NOTICE.md`), routed as of
/// [`ROUTE_NOW`], the time they were made for.
pub const ROUTE_FLEET: &str = include_str!("data/route-fleet.json");
pub const ROUTE_JOBS: &str = include_str!("data/route-jobs.json");
/// 2026-01-01 10:00 UTC: the demo jobs waited 10 s to 10 min by then.
pub const ROUTE_NOW: u64 = 1_767_261_600;
/// How the embedded files are named in errors and notes.
pub const ROUTE_ORIGIN: &str = "embedded demo fleet (src/demo/data)";

const JOBS: &str = include_str!("data/jobs.json");
const MERGE_REQUEST: &str = include_str!("data/merge_request.json");
const MR_DIFFS: &str = include_str!("data/mr_diffs.json");
const HISTORY: &str = include_str!("data/history.json");
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
    let mut note = assemble::assemble(
        PROJECT,
        PIPELINE,
        &tree,
        &parts,
        &changes,
        outcomes,
        Vec::new(),
        &[],
        &redactor,
    );
    note.target = Some(format!("merge request !{} (demo data)", mr.iid));
    let facts = triage::BranchFacts {
        branch: Some(mr.source_branch.clone()),
        important: false,
        on_default: false,
    };
    let config = crate::config::Config::default();
    let lookups = lookups(&note, &mr.target_branch, &catalog, &redactor, &config)?;
    triage::triage(&mut note, &config.triage_rules(), &facts, &lookups);
    note::set_sentences(&mut note);
    match opts.format {
        NoteFormat::Json => Ok(serde_json::to_string_pretty(&note)? + "\n"),
        NoteFormat::Md => {
            let templates = Templates::load(opts.templates.as_deref())?;
            templates.render_within_budget(&note)
        }
    }
}

/// The target branch's side of the demo (`data/history.json`): main's latest
/// pipeline and recent jobs, each failed one with the demo trace it had. The
/// same selection and tally as a live lookup; traces are classified and
/// fingerprinted for real.
#[derive(serde::Deserialize)]
struct History {
    upstream_pipeline: crate::gitlab::models::Pipeline,
    upstream_failed_jobs: Vec<Job>,
    recent_jobs: Vec<Job>,
    /// History job id → id of the demo trace it had.
    traces: std::collections::HashMap<String, u64>,
}

fn lookups(
    note: &note::Note,
    branch: &str,
    catalog: &Catalog,
    redactor: &crate::llm::redact::Redactor,
    config: &crate::config::Config,
) -> anyhow::Result<history::Lookups> {
    let h: History = serde_json::from_str(HISTORY).context("demo data: history.json")?;
    let names: std::collections::HashMap<&str, &str> = note
        .failed
        .iter()
        .map(|r| (r.name.as_str(), r.fingerprint.as_str()))
        .collect();
    let mut known: std::collections::HashMap<u64, Option<String>> = Default::default();
    let mut fingerprint = |jobs: &[&Job]| {
        for j in jobs {
            let trace = h
                .traces
                .get(&j.id.to_string())
                .and_then(|t| TRACES.iter().find(|(id, _)| id == t))
                .map(|(_, bytes)| *bytes);
            let fp = trace.and_then(|bytes| {
                let opts = ClassifyOptions {
                    max_evidence: history::FINGERPRINT_LINES,
                    failure_reason: j.failure_reason.clone(),
                    ..Default::default()
                };
                classify::classify_reader(bytes, catalog, &opts)
                    .ok()
                    .map(|c| history::fingerprint_of(&c, j.failure_reason.as_deref(), redactor))
            });
            known.insert(j.id, fp);
        }
    };
    let mut out = history::Lookups {
        upstream: history::pick_upstream(
            std::slice::from_ref(&h.upstream_pipeline),
            branch,
            PIPELINE,
        ),
        history_branch: Some(branch.to_string()),
        ..Default::default()
    };
    let picked = history::upstream_candidates(&h.upstream_failed_jobs, &names);
    fingerprint(&picked);
    let (runs, wanted) =
        history::history_candidates(&h.recent_jobs, branch, PIPELINE, &names, &config.history);
    fingerprint(&wanted);
    out.upstream_jobs = history::upstream_jobs(&picked, &known);
    out.history = history::tally(&runs, &names, &known);
    Ok(out)
}

/// One week of a demo project's CI history, in the snapshot format (made by
/// `data/make-demo-history.py`).
const WEEK: &[u8] = include_bytes!("data/week.json.gz");
/// The unit test reports of the demo week's `main` pipelines (made by
/// `data/make-demo-tests.py`), for the flakiest tests.
const WEEK_TESTS: &str = include_str!("data/week-tests.json");

/// One `main` pipeline's test report in `data/week-tests.json`.
#[derive(serde::Deserialize)]
struct WeekTests {
    pipeline: u64,
    web_url: Option<String>,
    report: crate::gitlab::test_report::TestReport,
}

/// The weekly report of the embedded week, labelled as demo data.
pub fn render_report(
    format: crate::publish::format::ReportFormat,
    charts: crate::publish::mermaid::ChartMode,
) -> anyhow::Result<String> {
    use crate::report::{metrics, render, source};
    // The header (window, fleet) first, then the jobs.
    let header = source::read_from(WEEK, "demo week", |_| {})?;
    let mut agg = metrics::Aggregator::new(
        metrics::Window {
            from: header.window.from,
            to: header.window.to,
        },
        Some(&header.runners),
        metrics::ReportRules::default(),
        crate::fleet::priority::PriorityRules::default(),
        header.default_branch.clone(),
    );
    let prio = crate::fleet::priority::PriorityRules::default();
    let routing = crate::fleet::route::RoutingRules::default();
    let mut sim = crate::fleet::simulate::Builder::new(
        &header.runners,
        &prio,
        &routing,
        crate::fleet::simulate::Options {
            default_branch: header.default_branch.clone(),
            ..Default::default()
        },
    );
    source::read_from(WEEK, "demo week", |rec| match rec {
        source::Record::Job { job } => {
            sim.add(&job);
            agg.add(&job)
        }
        source::Record::Category { job, category } => agg.set_category(job, category),
        _ => {}
    })?;
    let mut data = agg.finish();
    let reports: Vec<WeekTests> =
        serde_json::from_str(WEEK_TESTS).context("demo data: week-tests.json")?;
    let mut tests = crate::report::flaky_tests::TestAggregator::new();
    for r in &reports {
        tests.add(&crate::report::flaky_tests::PipelineReport {
            pipeline: r.pipeline,
            web_url: r.web_url.as_deref(),
            report: &r.report,
        });
    }
    data.test_pipelines = tests.pipelines();
    data.flaky_tests = tests.finish(crate::report::flaky_tests::SHOWN);
    data.test_branch = header.default_branch.clone();
    let g = render::Gathered {
        project: header.project.clone(),
        span: header.window,
        data,
        source: "embedded demo history (src/demo/data/week.json.gz)".into(),
        requests: 0,
        notes: Vec::new(),
        forecast: Vec::new(),
        impact: Some(sim.finish()),
    };
    let mut r = render::report(&g, true, None, None);
    // Offline, no GitLab to ask: drawn as current GitLab draws them, unless told.
    r.charts = match charts {
        crate::publish::mermaid::ChartMode::Auto => crate::publish::mermaid::ChartMode::Xychart,
        other => other,
    };
    render::render(&r, format)
}

/// `runneriq demo report`.
pub fn run_report(
    format: crate::publish::format::ReportFormat,
    charts: crate::publish::mermaid::ChartMode,
) -> anyhow::Result<ExitCode> {
    let out = render_report(format, charts)?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match lock.write_all(out.as_bytes()).and_then(|()| lock.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output")?,
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
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
