//! `runneriq diagnose`: one living note per failed pipeline.
//!
//! Inputs come from GitLab's predefined CI variables (each overridable by a
//! flag), then [`run`]'s stages: fetch (jobs with retries, child pipelines,
//! traces of failed jobs classified as they stream in, the change's diff) →
//! the LLM on the jobs the rules are unsure of → the target branch and the
//! jobs' history → the diagnosis (assemble, correlate, triage; pure) → render
//! (template, size budget, Markdown safety) and publish (upsert by hidden
//! marker). The job log always gets a plain-text summary first, so a
//! diagnosis is never lost when posting fails.

pub mod assemble;
pub mod correlate;
pub mod diagnosis;
pub mod fetch;
pub mod history;
pub mod junit;
pub mod note;
pub mod triage;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;

use crate::classify::Catalog;
use crate::error::{InputError, input};
use crate::gitlab::Client;
use crate::publish::format::NoteFormat;
use crate::publish::{self, MARKER, Outcome, Target};

use fetch::TraceOutcome;
use note::{Note, Templates};

/// Evidence lines ranked per job: all feed the correlation with changed files,
/// the best three are shown.
const EVIDENCE_PER_JOB: usize = 5;

/// Where the note goes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTo {
    /// The merge request if there is one, else the commit.
    Auto,
    /// The merge request (an input error when there is none).
    Mr,
    /// A discussion on the commit.
    Commit,
    /// Nowhere: print the note.
    None,
}

/// `runneriq diagnose`: the flags (the `CI_*` variables are read by
/// [`resolve_inputs`]).
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    pub gitlab_url: Option<String>,
    pub project: Option<String>,
    pub pipeline: Option<u64>,
    pub mr: Option<u64>,
    pub sha: Option<String>,
    pub exclude_job: Option<u64>,
    pub format: NoteFormat,
    pub dry_run: bool,
    pub post_to: PostTo,
    pub rules: Vec<PathBuf>,
    pub templates: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub trace_max_bytes: u64,
    pub trace_timeout: Duration,
    pub max_run_time: Duration,
}

/// Where the merge request came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MrSource {
    Flag,
    MergeRequestIid,
    OpenMergeRequests,
}

/// The resolved inputs of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub project: String,
    pub pipeline: u64,
    pub mr: Option<(u64, MrSource)>,
    pub sha: Option<String>,
    pub exclude_job: Option<u64>,
    /// `CI_PROJECT_DIR` and friends: checkout prefixes to strip from log paths.
    pub checkout_dirs: Vec<String>,
    /// The pipeline's branch (`CI_COMMIT_BRANCH`, or the MR's source branch).
    pub branch: Option<String>,
    /// `CI_DEFAULT_BRANCH` (else read from the project when needed).
    pub default_branch: Option<String>,
    /// `CI_MERGE_REQUEST_TARGET_BRANCH_NAME` (else read from the MR when needed).
    pub target_branch: Option<String>,
    /// `CI_COMMIT_REF_PROTECTED=true`.
    pub protected: bool,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn parse_id(value: &str, var: &str) -> Result<u64, InputError> {
    value.trim().parse::<u64>().map_err(|_| {
        InputError(format!(
            "{var}={value:?} is not a numeric id (pass the flag instead)"
        ))
    })
}

/// The first `!iid` in `CI_OPEN_MERGE_REQUESTS` ("group/proj!12,group/proj!15")
/// whose project path is `project_path` (MRs from other projects, e.g. forks,
/// are skipped).
pub fn mr_from_open_list(list: &str, project_path: &str) -> Option<u64> {
    list.split(',').find_map(|item| {
        let (path, iid) = item.trim().rsplit_once('!')?;
        (path == project_path)
            .then(|| iid.trim().parse::<u64>().ok())
            .flatten()
    })
}

/// Flags first, then GitLab's predefined variables. A missing required input
/// is an error naming both the flag and the variable.
pub fn resolve_inputs(
    args: &DiagnoseOptions,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Inputs, InputError> {
    let var = |k: &str| non_empty(lookup(k));
    let project = non_empty(args.project.clone())
        .or_else(|| crate::gitlab::project_from_env(&lookup))
        .ok_or_else(|| {
            InputError(
                "no project: pass --project ID|PATH or run in GitLab CI (CI_PROJECT_ID)".into(),
            )
        })?;
    let pipeline = match args.pipeline {
        Some(p) => p,
        None => match var("CI_PIPELINE_ID") {
            Some(v) => parse_id(&v, "CI_PIPELINE_ID")?,
            None => {
                return Err(InputError(
                    "no pipeline: pass --pipeline ID or run in GitLab CI (CI_PIPELINE_ID)".into(),
                ));
            }
        },
    };
    let mr = match args.mr {
        Some(m) => Some((m, MrSource::Flag)),
        None => match var("CI_MERGE_REQUEST_IID") {
            Some(v) => Some((
                parse_id(&v, "CI_MERGE_REQUEST_IID")?,
                MrSource::MergeRequestIid,
            )),
            None => match (var("CI_OPEN_MERGE_REQUESTS"), var("CI_PROJECT_PATH")) {
                (Some(list), Some(path)) => {
                    mr_from_open_list(&list, &path).map(|m| (m, MrSource::OpenMergeRequests))
                }
                _ => None,
            },
        },
    };
    let sha = non_empty(args.sha.clone()).or_else(|| var("CI_COMMIT_SHA"));
    let exclude_job = match args.exclude_job {
        Some(j) => Some(j),
        None => var("CI_JOB_ID")
            .map(|v| parse_id(&v, "CI_JOB_ID"))
            .transpose()?,
    };
    let checkout_dirs = ["CI_PROJECT_DIR"].iter().filter_map(|k| var(k)).collect();
    let branch = var("CI_COMMIT_BRANCH")
        .or_else(|| var("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"))
        .or_else(|| var("CI_COMMIT_REF_NAME").filter(|_| var("CI_COMMIT_TAG").is_none()));
    Ok(Inputs {
        project,
        pipeline,
        mr,
        sha,
        exclude_job,
        checkout_dirs,
        branch,
        default_branch: var("CI_DEFAULT_BRANCH"),
        target_branch: var("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"),
        protected: var("CI_COMMIT_REF_PROTECTED").as_deref() == Some("true"),
    })
}

/// Time a CI job leaves after RunnerIQ's run, for posting and the runner.
const JOB_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);
/// The shortest run budget, whatever the job's timeout says.
const MIN_RUN_BUDGET: Duration = Duration::from_secs(10);

/// The run's time budget and what set it (for messages): `max`, or less when
/// the CI job would time out first. GitLab gives the job's timeout
/// (`CI_JOB_TIMEOUT`, seconds) and start (`CI_JOB_STARTED_AT`, RFC 3339);
/// the run ends [`JOB_TIMEOUT_MARGIN`] before that, so the job log always
/// gets the summary and the note is posted.
pub fn run_budget(
    max: Duration,
    now_unix: u64,
    lookup: impl Fn(&str) -> Option<String>,
) -> (Duration, String) {
    let mut budget = max;
    let mut why = format!("--max-run-time {}", human_duration(max));
    let timeout = non_empty(lookup("CI_JOB_TIMEOUT")).and_then(|v| v.parse::<u64>().ok());
    let started = non_empty(lookup("CI_JOB_STARTED_AT")).and_then(|v| {
        time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
    });
    if let (Some(timeout), Some(started)) = (timeout, started) {
        let ends = started.saturating_add(timeout);
        let left =
            Duration::from_secs(ends.saturating_sub(now_unix)).saturating_sub(JOB_TIMEOUT_MARGIN);
        if left < budget {
            budget = left;
            why = format!(
                "the CI job's timeout of {} less a minute",
                human_duration(Duration::from_secs(timeout))
            );
        }
    }
    (budget.max(MIN_RUN_BUDGET), why)
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn load_catalog(paths: &[PathBuf]) -> anyhow::Result<Catalog> {
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    Catalog::with_overrides(&refs)
}

/// Runs `runneriq diagnose`: seven stages, each taking what the ones before
/// it gave and returning a new value. `prepare` checks everything the user
/// gave before the first request; `destination`, `fetch_failures`, `consult`,
/// `look_up` and `post` talk to GitLab or an LLM; `diagnose` is pure: the
/// note's data, built once from what they found.
pub fn run(opts: DiagnoseOptions) -> anyhow::Result<ExitCode> {
    let mut setup = prepare(&opts)?;
    let dest = destination(&setup, opts.post_to)?;
    let fetched = fetch_failures(&setup, &dest)?;
    let judged = consult(&mut setup, fetched);
    let context = look_up(&setup, &dest, &judged);
    let note = diagnose(&setup, &dest, judged, &context);
    post(&setup, &dest, &context, note, opts.format)
}

/// Everything checked before the first request, and what every stage uses.
struct Setup {
    inputs: Inputs,
    config: crate::config::Config,
    catalog: Catalog,
    templates: Templates,
    client: Client,
    token_kind: Option<crate::gitlab::TokenKind>,
    redactor: crate::llm::redact::Redactor,
    /// The LLM fallback (none without a provider).
    fallback: Option<crate::llm::Fallback>,
    trace_limits: fetch::TraceLimits,
    /// The analysis stops here, early enough to leave time for posting.
    analysis_end: Instant,
    /// What set the run's budget (for messages).
    budget_why: String,
    /// Posting for real: not `--dry-run`, not `--post-to none`.
    writes: bool,
}

impl Setup {
    /// Whether the analysis' time is up; if it is, a warning says what was
    /// left out.
    fn out_of_time(&self, what: &str, warnings: &mut Vec<String>) -> bool {
        let over = Instant::now() >= self.analysis_end;
        if over {
            warnings.push(format!(
                "{what}: the run's time budget ({}) was used up",
                self.budget_why
            ));
        }
        over
    }
}

/// Stage 1: the inputs (flags, then `CI_*` variables), the config, rules and
/// templates checked, the time budget, the GitLab client, the redactor and
/// the LLM fallback.
fn prepare(opts: &DiagnoseOptions) -> anyhow::Result<Setup> {
    let inputs = resolve_inputs(opts, env_lookup)?;
    // Everything the user gave us is checked before the first request.
    let config = crate::config::Config::for_job(opts.config.as_deref())?;
    let catalog = load_catalog(&opts.rules)?;
    let templates = Templates::load(opts.templates.as_deref())?;
    let started = Instant::now();
    let (run_budget, budget_why) = run_budget(opts.max_run_time, crate::clock::now(), env_lookup);
    let run_end = started + run_budget;
    // The analysis stops early enough to leave time for posting.
    let analysis_end = run_end - (run_budget / 5).min(Duration::from_secs(60));
    let trace_limits = fetch::TraceLimits {
        max_bytes: opts.trace_max_bytes,
        timeout: opts.trace_timeout,
        deadline: Some(analysis_end),
    };
    let mut cfg = crate::gitlab::client_config(opts.gitlab_url.clone(), env_lookup)?;
    cfg.run_deadline = Some(run_end);
    let token_kind = cfg.token.as_ref().map(|t| t.kind());
    let llm_cfg = crate::llm::LlmConfig::from_env()?;
    // Secrets in log lines are redacted before a note (or the job log, or
    // an LLM) gets them; our own token and the LLM key by value, the rest by
    // pattern.
    let llm_key = llm_cfg
        .provider
        .as_ref()
        .and_then(|p| p.api_key.as_ref())
        .map(|k| k.expose_secret());
    let redactor = crate::llm::redact::Redactor::new(
        cfg.token.iter().map(|t| t.expose_secret()).chain(llm_key),
    );
    // The LLM fallback (none without a provider): the GitLab token and its
    // key are redacted by value, in the prompt and in its answer, and the
    // LLM's text may only link into this GitLab.
    let fallback = crate::llm::Fallback::from_config(
        &llm_cfg,
        &catalog,
        &cfg.token
            .iter()
            .map(|t| t.expose_secret())
            .collect::<Vec<_>>(),
        crate::llm::origin_of(&cfg.base_url),
    );
    let client = Client::new(cfg)?;
    Ok(Setup {
        inputs,
        config,
        catalog,
        templates,
        client,
        token_kind,
        redactor,
        fallback,
        trace_limits,
        analysis_end,
        budget_why,
        writes: !opts.dry_run && opts.post_to != PostTo::None,
    })
}

/// Where the note goes, and the merge request the diff comes from.
struct Destination {
    mr: Option<u64>,
    target: Option<Target>,
    warnings: Vec<String>,
}

/// Stage 2: the merge request (from the inputs, else the open MR of the
/// commit) and the note's target.
fn destination(s: &Setup, post_to: PostTo) -> anyhow::Result<Destination> {
    let inputs = &s.inputs;
    let mut warnings = Vec::new();
    let mut mr = inputs.mr.as_ref().map(|(m, _)| *m);
    if mr.is_none() && matches!(post_to, PostTo::Auto | PostTo::Mr | PostTo::None) {
        if let Some(sha) = &inputs.sha {
            match fetch::open_mr_for_commit(&s.client, &inputs.project, sha) {
                Ok(m) => mr = m,
                Err(e) => warnings.push(format!(
                    "the merge request of commit {} could not be looked up: {}",
                    fetch::short_sha(sha),
                    crate::gitlab::error::summary(&e)
                )),
            }
        }
    }
    let target = match post_to {
        PostTo::None => None,
        PostTo::Mr => Some(Target::MergeRequest {
            project: inputs.project.clone(),
            iid: mr.ok_or_else(|| {
                input(
                    "--post-to mr: no merge request found — pass --mr IID, or run in a merge \
                     request pipeline (CI_MERGE_REQUEST_IID)",
                )
            })?,
        }),
        PostTo::Commit => Some(Target::Commit {
            project: inputs.project.clone(),
            sha: inputs.sha.clone().ok_or_else(|| {
                input(
                    "--post-to commit: no commit — pass --sha or run in GitLab CI (CI_COMMIT_SHA)",
                )
            })?,
        }),
        PostTo::Auto => match (mr, &inputs.sha) {
            (Some(iid), _) => Some(Target::MergeRequest {
                project: inputs.project.clone(),
                iid,
            }),
            (None, Some(sha)) => Some(Target::Commit {
                project: inputs.project.clone(),
                sha: sha.clone(),
            }),
            (None, None) => {
                warnings.push(
                    "no merge request and no commit (--mr, --sha, CI_COMMIT_SHA): the note is \
                     only printed"
                        .to_string(),
                );
                None
            }
        },
    };
    Ok(Destination {
        mr,
        target,
        warnings,
    })
}

/// The pipeline as read: its jobs sorted, the change's files, and each
/// failed job's log classified (in the order of `parts.failed`).
struct Fetched {
    tree: fetch::Tree,
    parts: fetch::Partition,
    changes: fetch::Changes,
    outcomes: Vec<TraceOutcome>,
    /// In the order of `parts.failed`: each job's failing tests, from its
    /// pipeline's unit test report.
    suites: Vec<Option<fetch::JobSuite>>,
    warnings: Vec<String>,
}

/// Stage 3: the pipeline tree, then, when a job failed, the changed files
/// and the failed jobs' traces, streamed into the classifier.
fn fetch_failures(s: &Setup, dest: &Destination) -> anyhow::Result<Fetched> {
    let inputs = &s.inputs;
    let tree = fetch::pipeline_tree(&s.client, &inputs.project, inputs.pipeline)
        .with_context(|| format!("could not read the jobs of pipeline #{}", inputs.pipeline))?;
    let mut warnings = tree.warnings.clone();
    let parts = fetch::partition(&tree.runs, inputs.exclude_job);
    if tree.runs.iter().any(|r| r.truncated) {
        warnings.push("the pipeline has more jobs than RunnerIQ reads (2,000 per pipeline)".into());
    }
    if parts.failed.is_empty() {
        return Ok(Fetched {
            tree,
            parts,
            changes: fetch::Changes::default(),
            outcomes: Vec::new(),
            suites: Vec::new(),
            warnings,
        });
    }
    let changes = fetch::changed_paths(&s.client, &inputs.project, dest.mr, inputs.sha.as_deref());
    if let Some(e) = &changes.error {
        warnings.push(format!("the changed files could not be read: {e}"));
    }
    // The unit test reports: the summary first, the full report only when
    // a failed job's suite has failing tests.
    let reports = fetch::test_reports(&s.client, &tree, &parts);
    warnings.extend(reports.warnings);
    let tasks: Vec<fetch::TraceTask> = parts
        .failed
        .iter()
        .map(|p| fetch::TraceTask {
            project: tree.runs[p.run].project.clone(),
            job_id: p.job.id,
            failure_reason: p.job.failure_reason.clone(),
            has_trace: !p.is_bridge,
        })
        .collect();
    let outcomes = fetch::classify_traces(
        &s.client,
        &tasks,
        &s.catalog,
        EVIDENCE_PER_JOB,
        fetch::TRACE_WORKERS,
        if s.fallback.is_some() {
            crate::llm::TAIL_LINES
        } else {
            0
        },
        &s.trace_limits,
    );
    Ok(Fetched {
        tree,
        parts,
        changes,
        outcomes,
        suites: reports.per_job,
        warnings,
    })
}

/// What was fetched, with the rules' fingerprints and the LLM's opinions.
struct Judged {
    fetched: Fetched,
    /// From the rules' verdict, before any LLM opinion, so they compare with
    /// those of earlier runs (whose logs no LLM read).
    fingerprints: Vec<String>,
    /// In the order of `parts.failed` (empty without a fallback).
    opinions: Vec<Option<crate::llm::Consultation>>,
    warnings: Vec<String>,
}

/// Stage 4: the failed jobs' fingerprints, then the LLM fallback on the jobs
/// the rules are unsure of (a taken answer rewrites the job's
/// classification).
fn consult(s: &mut Setup, mut fetched: Fetched) -> Judged {
    let fingerprints: Vec<String> = fetched
        .parts
        .failed
        .iter()
        .zip(&fetched.outcomes)
        .enumerate()
        .map(
            |(i, (p, o))| match (fetched.suites.get(i).and_then(Option::as_ref), o) {
                // The same failing tests are the same failure.
                (Some(js), _) => junit::fingerprint_suite(&js.suite, &s.redactor),
                (None, TraceOutcome::Classified(c)) => {
                    history::fingerprint_of(c, p.job.failure_reason.as_deref(), &s.redactor)
                }
                (None, TraceOutcome::Unreadable(_)) => {
                    history::fingerprint_unreadable(p.job.failure_reason.as_deref())
                }
            },
        )
        .collect();
    let mut warnings = Vec::new();
    let opinions = if s.fallback.is_some() && s.out_of_time("no LLM was asked", &mut warnings) {
        Vec::new()
    } else {
        second_opinions(
            s.fallback.as_mut(),
            &fetched.parts,
            &fetched.changes,
            &mut fetched.outcomes,
            &s.catalog,
        )
    };
    if let Some(f) = s.fallback.as_mut() {
        for w in f.take_warnings() {
            eprintln!("runneriq: warning: {w}");
        }
    }
    Judged {
        fetched,
        fingerprints,
        opinions,
        warnings,
    }
}

/// What the target branch and the jobs' history say, and the branch facts.
struct Background {
    lookups: history::Lookups,
    facts: triage::BranchFacts,
    warnings: Vec<String>,
}

/// Stage 5: the target branch's latest pipeline and the failed jobs'
/// default-branch history (when configured, and time is left).
fn look_up(s: &Setup, dest: &Destination, judged: &Judged) -> Background {
    let inputs = &s.inputs;
    let config = &s.config;
    let mut warnings = Vec::new();
    let branch = inputs
        .branch
        .clone()
        .or_else(|| root_branch(&judged.fetched.tree));
    let mut lookups = history::Lookups::default();
    let mut default_branch = inputs.default_branch.clone();
    if !judged.fetched.parts.failed.is_empty()
        && (config.history.enabled || config.upstream.enabled)
        && !s.out_of_time(
            "the target branch and the jobs' history were not checked",
            &mut warnings,
        )
    {
        let before = s.client.request_count();
        let (db, tb) = target_branches(&s.client, inputs, dest.mr, &mut warnings);
        default_branch = db;
        let refs = history::Refs {
            target_branch: tb.or_else(|| default_branch.clone()),
            default_branch: default_branch.clone(),
            pipeline: inputs.pipeline,
            upstream: config.upstream.enabled,
        };
        let failed: Vec<history::Failed> = judged
            .fetched
            .parts
            .failed
            .iter()
            .zip(&judged.fingerprints)
            .enumerate()
            .map(|(i, (p, fp))| {
                let js = judged.fetched.suites.get(i).and_then(Option::as_ref);
                history::Failed {
                    name: p.job.name.clone(),
                    fingerprint: fp.clone(),
                    suite: js.map(|j| j.suite.name.clone()),
                    tests: js
                        .map(|j| junit::suite_keys(&j.suite, &s.redactor))
                        .unwrap_or_default(),
                }
            })
            .collect();
        lookups = history::lookup(
            &s.client,
            &inputs.project,
            &refs,
            &failed,
            &config.history,
            &s.catalog,
            &s.redactor,
            &s.trace_limits,
        );
        lookups.requests = s.client.request_count().saturating_sub(before);
        warnings.extend(lookups.warnings.iter().cloned());
    }
    let on_default = branch.is_some() && branch == default_branch;
    let facts = triage::BranchFacts {
        branch,
        important: inputs.protected || on_default,
        on_default,
    };
    Background {
        lookups,
        facts,
        warnings,
    }
}

/// Stage 6 (pure): the note's data, built once from what the stages found:
/// assembled (classification, correlation with the diff, redaction, the
/// LLM's opinions), triaged (suppressed, upstream, flaky, severity, groups,
/// counts), and said in a first line and a verdict.
fn diagnose(s: &Setup, dest: &Destination, judged: Judged, context: &Background) -> Note {
    let Judged {
        fetched,
        fingerprints,
        opinions,
        warnings: judged_warnings,
    } = judged;
    let mut n = assemble::assemble(
        &s.inputs.project,
        s.inputs.pipeline,
        &fetched.tree,
        &fetched.parts,
        &fetched.changes,
        fetched.outcomes,
        fetched.suites,
        &s.inputs.checkout_dirs,
        &s.redactor,
    );
    for (r, o) in n.failed.iter_mut().zip(opinions) {
        if let Some(o) = o {
            note::apply_llm(r, o);
        }
    }
    for (r, fp) in n.failed.iter_mut().zip(fingerprints) {
        r.fingerprint = fp;
    }
    n.target = dest.target.as_ref().map(Target::describe);
    triage::triage(
        &mut n,
        &s.config.triage_rules(),
        &context.facts,
        &context.lookups,
    );
    note::set_sentences(&mut n);
    let mut warnings = dest.warnings.clone();
    warnings.extend(fetched.warnings);
    warnings.extend(judged_warnings);
    warnings.extend(context.warnings.iter().cloned());
    note::cap_warnings(&mut warnings);
    n.warnings = warnings;
    n
}

/// Stage 7: the summary to the job log, our earlier note found (its state:
/// cooldowns, the diagnosis it showed), notifications, and the note
/// rendered and posted (or printed).
fn post(
    s: &Setup,
    dest: &Destination,
    context: &Background,
    mut n: Note,
    format: NoteFormat,
) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let summary = note::summary_text(&n);
    let print_result = |out: &mut dyn Write, s: &str| -> anyhow::Result<()> {
        out.write_all(s.as_bytes()).context("writing output")?;
        out.flush().context("writing output")
    };

    // Our earlier note: edited in place; its last line keeps the state. Only
    // notes written by the token's own user are ours, so without a token
    // there is nothing to find.
    let mut me: Option<publish::Me> = None;
    let mut found = publish::Found::default();
    if let (Some(t), Some(_)) = (&dest.target, s.token_kind) {
        let search = publish::whoami(&s.client).and_then(|m| {
            let f = publish::find_existing(&s.client, t, MARKER, &m)?;
            Ok((m, f))
        });
        match search {
            Ok((m, f)) => {
                for w in f.impostor_warnings(&m) {
                    eprintln!("runneriq: warning: {w}");
                }
                me = Some(m);
                found = f;
            }
            Err(e) if s.writes || n.status != "failed" => {
                print_result(&mut out, &summary)?;
                return Err(anyhow::anyhow!(publish::explain_failure(
                    &e,
                    t,
                    s.token_kind
                )));
            }
            // A dry run goes on without the state.
            Err(_) => {}
        }
    }
    let now = crate::clock::now();
    let mut state = found
        .primary()
        .map(|e| publish::notify::State::parse(&e.body))
        .unwrap_or_default();
    // No failed job: only an existing note is touched (marked resolved).
    if n.status != "failed" {
        if found.primary().is_none() {
            if format == NoteFormat::Json {
                print_result(&mut out, &format!("{}\n", to_json(&n)?))?;
                eprint!("{summary}");
            } else {
                print_result(&mut out, &summary)?;
            }
            if s.token_kind.is_none() {
                eprintln!(
                    "runneriq: no failed jobs; without a token RunnerIQ cannot find its earlier \
                     note: nothing to post"
                );
            } else {
                eprintln!("runneriq: no failed jobs and no earlier note: nothing to post");
            }
            return Ok(ExitCode::SUCCESS);
        }
        // Resolve the earlier note, keeping the diagnosis it showed.
        n.previous = state
            .diagnosis
            .as_ref()
            .and_then(|k| note::previous_diagnosis(k, n.pipeline_url.as_deref(), &s.redactor));
    } else {
        route(
            &s.client,
            &s.inputs.project,
            me.as_ref(),
            &s.config,
            &n,
            &context.facts,
            &mut state,
            now,
            s.writes,
        );
        state.keep(n.pipeline_id, &summary);
    }
    state.prune(now);

    let mut body = s.templates.render_within_budget(&n)?;
    let state_marker = state.marker();
    if !state_marker.is_empty() {
        if !body.ends_with('\n') {
            body.push('\n');
        }
        body.push_str(&state_marker);
        body.push('\n');
    }
    finish(
        &s.client,
        dest.target.as_ref(),
        me.as_ref(),
        &found,
        &n,
        &body,
        &summary,
        s.writes,
        format,
        s.token_kind,
        &mut out,
    )
}

/// The branch of the root pipeline's jobs (`ref`), unless it is a merge
/// request ref (`refs/merge-requests/7/head`).
fn root_branch(tree: &fetch::Tree) -> Option<String> {
    let r = &tree.runs.first()?.jobs.first()?.git_ref;
    (!r.is_empty() && !r.starts_with("refs/")).then(|| r.clone())
}

/// The default branch and the MR's target branch: from the CI variables, else
/// from the project and the merge request (one request each, only when a
/// variable is missing). A failure is a warning: the lookups that need the
/// branch are then skipped.
fn target_branches(
    client: &Client,
    inputs: &Inputs,
    mr: Option<u64>,
    warnings: &mut Vec<String>,
) -> (Option<String>, Option<String>) {
    let project = crate::gitlab::project_ref(&inputs.project);
    // One string field of one API object; a failure is a warning.
    let field =
        |path: String, key: &str, what: String, warnings: &mut Vec<String>| match client
            .get_json::<serde_json::Value>(
            &path,
            &[],
        ) {
            Ok(v) => v[key]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            Err(e) => {
                warnings.push(format!(
                    "{what} could not be read: {}",
                    crate::gitlab::error::summary(&e)
                ));
                None
            }
        };
    let default_branch = inputs.default_branch.clone().or_else(|| {
        field(
            format!("/projects/{project}"),
            "default_branch",
            "the project's default branch (set CI_DEFAULT_BRANCH)".into(),
            warnings,
        )
    });
    let target_branch = inputs.target_branch.clone().or_else(|| {
        mr.and_then(|iid| {
            field(
                format!("/projects/{project}/merge_requests/{iid}"),
                "target_branch",
                format!("the target branch of merge request !{iid}"),
                warnings,
            )
        })
    });
    (default_branch, target_branch)
}

/// Sends the configured notifications (Slack, webhook, default-branch
/// issues) for the note's failures, honouring thresholds and cooldowns, and
/// records what was sent in `state`. Failures are reported on stderr and never
/// fail the run: the note is the product, notifications are extra.
#[allow(clippy::too_many_arguments)]
fn route(
    client: &Client,
    project: &str,
    me: Option<&publish::Me>,
    config: &crate::config::Config,
    n: &Note,
    facts: &triage::BranchFacts,
    state: &mut publish::notify::State,
    now: u64,
    writes: bool,
) {
    use publish::notify;
    let channels = [
        ("slack", config.notify.slack.as_ref()),
        ("webhook", config.notify.webhook.as_ref()),
    ];
    for (name, channel) in channels {
        let Some(ch) = channel else { continue };
        let (picked, cooled) = notify::plan(n, name, ch.min_severity, ch.cooldown_s, state, now);
        if cooled > 0 {
            eprintln!(
                "runneriq: {name}: {cooled} failure(s) already sent within the cooldown, not \
                 sent again"
            );
        }
        if picked.is_empty() {
            continue;
        }
        let failures: Vec<&note::JobReport> = picked.iter().map(|&i| &n.failed[i]).collect();
        let what = if name == "slack" {
            format!("the Slack webhook (${})", ch.url_env)
        } else {
            format!("the webhook (${})", ch.url_env)
        };
        if !writes {
            eprintln!(
                "runneriq: dry run: would notify {name} about {} failure(s)",
                failures.len()
            );
            continue;
        }
        let Some(url) = non_empty(env_lookup(&ch.url_env)) else {
            eprintln!(
                "runneriq: warning: notify.{name} is configured but ${} is not set: not sent",
                ch.url_env
            );
            continue;
        };
        let payload = if name == "slack" {
            notify::slack_payload(n, &failures)
        } else {
            notify::webhook_payload(n, &failures)
        };
        match notify::post(&url, &payload, &what) {
            Ok(()) => {
                for r in &failures {
                    state.record(name, &r.fingerprint, now);
                }
                eprintln!(
                    "runneriq: notified {name} about {} failure(s)",
                    failures.len()
                );
            }
            Err(e) => eprintln!("runneriq: warning: {e}"),
        }
    }
    let Some(ic) = config.notify.issues.as_ref() else {
        return;
    };
    let Some(branch) = facts.branch.as_deref().filter(|_| facts.on_default) else {
        return;
    };
    let eligible: Vec<&note::JobReport> = n
        .failed
        .iter()
        .filter(|r| r.noise != "flaky" && r.severity >= ic.min_severity)
        .collect();
    if eligible.is_empty() {
        return;
    }
    if !writes {
        eprintln!(
            "runneriq: dry run: would create or update {} issue(s) for failures on {branch}",
            eligible.len()
        );
        return;
    }
    let label = ic.labels.first().map_or("runneriq", String::as_str);
    let Some(me) = me else {
        eprintln!(
            "runneriq: warning: the failure issues were not written: the token's user is not \
             known (no merge request or commit to post on)"
        );
        return;
    };
    let existing = match publish::issues::find_all(client, project, label, me) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "runneriq: warning: the failure issues could not be read, none was created: {}",
                crate::gitlab::error::summary(&e)
            );
            return;
        }
    };
    for r in eligible {
        match publish::issues::upsert(
            client,
            project,
            existing.get(&r.fingerprint),
            r,
            n,
            branch,
            &ic.labels,
            now,
            ic.cooldown_s,
        ) {
            Ok(publish::issues::IssueOutcome::Created { iid }) => {
                eprintln!("runneriq: opened issue #{iid} for {}", r.name);
            }
            Ok(publish::issues::IssueOutcome::Updated { iid, reopened }) => eprintln!(
                "runneriq: {} issue #{iid} for {}",
                if reopened { "reopened" } else { "updated" },
                r.name
            ),
            Ok(publish::issues::IssueOutcome::Unchanged { iid }) => {
                eprintln!("runneriq: issue #{iid} for {} is up to date", r.name);
            }
            Err(e) => eprintln!(
                "runneriq: warning: the issue for {} could not be written: {}",
                r.name,
                crate::gitlab::error::summary(&e)
            ),
        }
    }
}

/// Asks the LLM fallback about the failed jobs the rules are unsure of, one
/// after the other in note order (the per-run budget goes to the first ones).
/// A taken answer rewrites the job's classification before [`assemble`];
/// results are in the order of `parts.failed` (empty without a fallback).
fn second_opinions(
    fallback: Option<&mut crate::llm::Fallback>,
    parts: &fetch::Partition,
    changes: &fetch::Changes,
    outcomes: &mut [TraceOutcome],
    catalog: &Catalog,
) -> Vec<Option<crate::llm::Consultation>> {
    let Some(f) = fallback else {
        return Vec::new();
    };
    parts
        .failed
        .iter()
        .zip(outcomes.iter_mut())
        .map(|(p, o)| match o {
            TraceOutcome::Classified(c) => {
                let ctx = crate::llm::JobContext {
                    name: Some(&p.job.name),
                    stage: Some(&p.job.stage),
                    changed_files: &changes.paths,
                };
                f.consult(&ctx, c, catalog)
            }
            TraceOutcome::Unreadable(_) => None,
        })
        .collect()
}

fn to_json(n: &Note) -> anyhow::Result<String> {
    serde_json::to_string_pretty(n).context("encoding the diagnosis as JSON")
}

/// Prints and posts. stdout: the summary when posting; the note (or JSON) when
/// not posting; with `--format json` always the JSON (the summary then goes to
/// stderr). A posting failure prints one sentence and exits 1.
#[allow(clippy::too_many_arguments)]
fn finish(
    client: &Client,
    target: Option<&Target>,
    me: Option<&publish::Me>,
    found: &publish::Found,
    n: &Note,
    body: &str,
    summary: &str,
    writes: bool,
    format: NoteFormat,
    token_kind: Option<crate::gitlab::TokenKind>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let printed = match (format, writes) {
        (NoteFormat::Json, _) => {
            eprint!("{summary}");
            format!("{}\n", to_json(n)?)
        }
        (NoteFormat::Md, true) => summary.to_string(),
        (NoteFormat::Md, false) => {
            eprint!("{summary}");
            body.to_string()
        }
    };
    if let Err(e) = out.write_all(printed.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing output");
        }
    }
    let Some(target) = target else {
        return Ok(ExitCode::SUCCESS);
    };
    if !writes {
        eprintln!(
            "runneriq: dry run: nothing was posted on {} ({} characters)",
            target.describe(),
            body.chars().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(_), Some(me)) = (token_kind, me) else {
        return Err(input(format!(
            "could not post the diagnosis on {}: no token — set RUNNERIQ_TOKEN to a project \
             access token with the `api` scope (or pass --dry-run).",
            target.describe()
        )));
    };
    match publish::publish(client, target, MARKER, me, found, body) {
        Ok(done) => {
            for w in &done.warnings {
                eprintln!("runneriq: warning: {w}");
            }
            for id in &done.removed {
                eprintln!(
                    "runneriq: deleted note {id}, a duplicate of RunnerIQ's note on {}",
                    target.describe()
                );
            }
            match done.outcome {
                Outcome::Created { note_id } => {
                    eprintln!("runneriq: posted note {note_id} on {}", target.describe());
                }
                Outcome::Updated { note_id } => {
                    eprintln!("runneriq: updated note {note_id} on {}", target.describe());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(anyhow::anyhow!(publish::explain_failure(
            &e, target, token_kind
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DiagnoseOptions {
        DiagnoseOptions {
            gitlab_url: None,
            project: None,
            pipeline: None,
            mr: None,
            sha: None,
            exclude_job: None,
            format: NoteFormat::Md,
            dry_run: false,
            post_to: PostTo::Auto,
            rules: Vec::new(),
            templates: None,
            config: None,
            trace_max_bytes: fetch::DEFAULT_TRACE_MAX_BYTES,
            trace_timeout: fetch::DEFAULT_TRACE_TIMEOUT,
            max_run_time: Duration::from_secs(600),
        }
    }

    #[test]
    fn the_run_ends_a_minute_before_the_ci_job_would_time_out() {
        let ten = Duration::from_secs(600);
        let (b, why) = run_budget(ten, 1_000_000, env(&[]));
        assert_eq!((b, why.as_str()), (ten, "--max-run-time 10m"));
        // Started 50 minutes ago with a 1 h timeout: 10 min left, 9 to use.
        let (b, why) = run_budget(
            Duration::from_secs(3600),
            1_767_225_600 + 3000,
            env(&[
                ("CI_JOB_TIMEOUT", "3600"),
                ("CI_JOB_STARTED_AT", "2026-01-01T00:00:00Z"),
            ]),
        );
        assert_eq!(b, Duration::from_secs(540));
        assert!(why.contains("CI job's timeout of 1h"), "{why}");
        // Nearly out of time: still a short budget, never zero.
        let (b, _) = run_budget(
            ten,
            1_767_225_600 + 3590,
            env(&[
                ("CI_JOB_TIMEOUT", "3600"),
                ("CI_JOB_STARTED_AT", "2026-01-01T00:00:00Z"),
            ]),
        );
        assert_eq!(b, MIN_RUN_BUDGET);
        // Unreadable variables are ignored.
        let (b, _) = run_budget(
            ten,
            0,
            env(&[("CI_JOB_TIMEOUT", "soon"), ("CI_JOB_STARTED_AT", "x")]),
        );
        assert_eq!(b, ten);
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn inputs_from_ci_variables() {
        let i = resolve_inputs(
            &args(),
            env(&[
                ("CI_PROJECT_ID", "42"),
                ("CI_PIPELINE_ID", "1001"),
                ("CI_MERGE_REQUEST_IID", "7"),
                ("CI_COMMIT_SHA", "abc"),
                ("CI_JOB_ID", "99"),
                ("CI_PROJECT_DIR", "/builds/g/p"),
            ]),
        )
        .unwrap();
        assert_eq!(i.project, "42");
        assert_eq!(i.pipeline, 1001);
        assert_eq!(i.mr, Some((7, MrSource::MergeRequestIid)));
        assert_eq!(i.sha.as_deref(), Some("abc"));
        assert_eq!(i.exclude_job, Some(99));
        assert_eq!(i.checkout_dirs, vec!["/builds/g/p".to_string()]);
    }

    #[test]
    fn flags_win_over_variables() {
        let mut a = args();
        a.project = Some("g/p".into());
        a.pipeline = Some(5);
        a.mr = Some(3);
        let i = resolve_inputs(
            &a,
            env(&[
                ("CI_PROJECT_ID", "42"),
                ("CI_PIPELINE_ID", "x"),
                ("CI_MERGE_REQUEST_IID", "7"),
            ]),
        )
        .unwrap();
        assert_eq!((i.project.as_str(), i.pipeline), ("g/p", 5));
        assert_eq!(i.mr, Some((3, MrSource::Flag)));
    }

    #[test]
    fn open_merge_requests_of_this_project_only() {
        assert_eq!(
            mr_from_open_list("fork/proj!3,group/proj!12,group/proj!15", "group/proj"),
            Some(12)
        );
        assert_eq!(mr_from_open_list("other/x!1", "group/proj"), None);
        assert_eq!(mr_from_open_list("", "group/proj"), None);
        let i = resolve_inputs(
            &args(),
            env(&[
                ("CI_PROJECT_ID", "1"),
                ("CI_PIPELINE_ID", "2"),
                ("CI_OPEN_MERGE_REQUESTS", "group/proj!12"),
                ("CI_PROJECT_PATH", "group/proj"),
            ]),
        )
        .unwrap();
        assert_eq!(i.mr, Some((12, MrSource::OpenMergeRequests)));
    }

    #[test]
    fn missing_inputs_name_flag_and_variable() {
        let e = resolve_inputs(&args(), env(&[])).unwrap_err();
        assert!(
            e.0.contains("--project") && e.0.contains("CI_PROJECT_ID"),
            "{e}"
        );
        let e = resolve_inputs(&args(), env(&[("CI_PROJECT_ID", "1")])).unwrap_err();
        assert!(
            e.0.contains("--pipeline") && e.0.contains("CI_PIPELINE_ID"),
            "{e}"
        );
        let e = resolve_inputs(
            &args(),
            env(&[("CI_PROJECT_ID", "1"), ("CI_PIPELINE_ID", "12a")]),
        )
        .unwrap_err();
        assert!(e.0.contains("CI_PIPELINE_ID"), "{e}");
        // An empty variable (an unset masked variable expands to "") is missing.
        let e = resolve_inputs(&args(), env(&[("CI_PROJECT_ID", " ")])).unwrap_err();
        assert!(e.0.contains("CI_PROJECT_ID"));
    }
}
