//! `runneriq route` and `runneriq explain`: read the jobs, the fleet and the
//! history (files or the API), run the pure routing, render Markdown or JSON.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::audit::{self, AuditLog};
use super::load::{load_fleet, load_jobs};
use super::model::FleetRunner;
use super::priority::PriorityRules;
use super::route::{self, Assignment, Inputs, RoutingRules, RunnerVerdict};
use super::stats::History;
use super::tags::{self, Applied, TagChange, TagRules};
use crate::clock::now_i64 as now;
use crate::error::input;
use crate::gitlab::api_client;
use crate::gitlab::models::Job;
use crate::gitlab::{Client, project_ref};
use crate::publish::format::{NoteFormat, ReportFormat};
use crate::publish::mermaid::ChartMode;
use crate::publish::sanitize::{code_span, inline};

/// Pages of 100 finished jobs read for history from the API.
const HISTORY_PAGES: usize = 3;
/// Pages of 100 waiting jobs read from the API.
const WAITING_PAGES: usize = 20;

/// Where the jobs, the fleet and the history come from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub jobs: Option<PathBuf>,
    pub fleet: Option<PathBuf>,
    pub history: Option<PathBuf>,
    pub project: Option<String>,
    pub pipeline: Option<u64>,
    pub gitlab_url: Option<String>,
    pub default_branch: Option<String>,
    pub config: Option<PathBuf>,
    pub job_timeout: Option<u64>,
    /// A report snapshot (`runneriq snapshot`) as jobs, history and fleet.
    pub snapshot: Option<PathBuf>,
    /// `--no-reserve-scarce`: overrides `routing.reserve_scarce`.
    pub no_reserve_scarce: bool,
    /// An embedded fleet and jobs (`run --mock`) instead of files or the API.
    pub embedded: Option<Embedded>,
}

/// A fleet and its waiting jobs carried in the binary (`run --mock`), routed
/// as of `now`, the time they were made for; no live carbon.
#[derive(Clone, Debug)]
pub struct Embedded {
    pub origin: &'static str,
    pub fleet: &'static str,
    pub jobs: &'static str,
    pub now: u64,
}

/// How far RunnerIQ may act on the fleet.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustMode {
    /// Recommend only; nothing is written to GitLab.
    Advisory,
    /// Write a tag plan for a person (a `when: manual` job) to apply.
    Supervised,
    /// Apply tag changes directly (with --execute).
    Autonomous,
}

impl TrustMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustMode::Advisory => "advisory",
            TrustMode::Supervised => "supervised",
            TrustMode::Autonomous => "autonomous",
        }
    }
}

/// `runneriq route`.
#[derive(Debug, Clone)]
pub struct RouteOptions {
    pub sources: Sources,
    pub format: NoteFormat,
    pub mode: TrustMode,
    /// `--supervised-threshold`: overrides `routing.trust.supervised_threshold`.
    pub supervised_threshold: Option<super::priority::Urgency>,
    /// Drive the tag bridge in advisory mode too.
    pub tags: bool,
    /// Where a supervised run writes its tag plan.
    pub plan: Option<PathBuf>,
    pub execute: bool,
    /// Share of the fleet's slots in the green pool.
    pub green_share: f64,
    /// Lease of a pool tag, seconds.
    pub tag_ttl: u64,
    pub audit: Option<PathBuf>,
}

/// `runneriq explain JOB_ID`.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    pub job: u64,
    pub sources: Sources,
    pub format: NoteFormat,
}

/// `runneriq simulate`.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub sources: Sources,
    pub since: Option<String>,
    /// How long a carbon-aware dispatch may delay a job, seconds.
    pub carbon_wait: u64,
    pub format: ReportFormat,
    pub charts: ChartMode,
}

/// `runneriq fleet export`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub project: Option<String>,
    pub all: bool,
    pub gitlab_url: Option<String>,
    pub output: Option<PathBuf>,
}

/// `runneriq apply PLAN`.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub plan: PathBuf,
    pub execute: bool,
    pub gitlab_url: Option<String>,
    pub audit: Option<PathBuf>,
    pub format: NoteFormat,
}

/// `runneriq reset-tags`.
#[derive(Debug, Clone)]
pub struct ResetTagsOptions {
    pub project: Option<String>,
    pub all: bool,
    pub gitlab_url: Option<String>,
    pub execute: bool,
    pub audit: Option<PathBuf>,
    pub format: NoteFormat,
}

/// `runneriq audit [FILE]`.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub file: Option<PathBuf>,
    pub since: Option<String>,
    pub format: NoteFormat,
}

/// Everything a routing run read, ready for the pure step.
pub struct Loaded {
    pub jobs: Vec<Job>,
    pub fleet: Vec<FleetRunner>,
    pub history: History,
    pub access_levels: HashMap<u64, u32>,
    pub default_branch: Option<String>,
    pub priority_rules: PriorityRules,
    pub routing_rules: RoutingRules,
    pub warnings: Vec<String>,
    /// API requests made (0 for files).
    pub requests: u64,
    /// Every job's timeout in seconds, when known (`--job-timeout`, else the
    /// project's `build_timeout`), for the runners' `maximum_timeout` gate.
    pub job_timeout: Option<u64>,
    /// Electricity Maps values for the fleet's zones (`ELECTRICITY_MAPS_TOKEN`).
    pub live_carbon: super::carbon::Live,
}

/// Reads the inputs: files where given, else the API (`--project`).
pub fn load(src: &Sources) -> anyhow::Result<Loaded> {
    let config = crate::config::Config::for_job(src.config.as_deref())?;
    let mut warnings = Vec::new();
    // Files first: a broken file is reported before any request.
    let mut file_jobs = src.jobs.as_deref().map(load_jobs).transpose()?;
    let mut file_fleet = src.fleet.as_deref().map(load_fleet).transpose()?;
    let mut file_history = src.history.as_deref().map(load_jobs).transpose()?;
    let mut default_branch_from_snapshot = None;
    if let Some(e) = &src.embedded {
        file_fleet = Some(super::model::parse_fleet(e.fleet.as_bytes(), e.origin)?);
        file_jobs = Some(super::model::parse_jobs(e.jobs.as_bytes(), e.origin)?);
    }
    if let Some(snap) = src.snapshot.as_deref() {
        // A report snapshot: its jobs (finished ones: routed as if waiting,
        // and their own history) and its fleet.
        let mut jobs = Vec::new();
        let header = crate::report::source::read(snap, |rec| {
            if let crate::report::source::Record::Job { job } = rec {
                jobs.push(*job);
            }
        })?;
        if file_fleet.is_none() && !header.runners.is_empty() {
            file_fleet = Some(header.runners);
        }
        if file_history.is_none() {
            file_history = Some(jobs.clone());
        }
        if file_jobs.is_none() {
            file_jobs = Some(jobs);
        }
        default_branch_from_snapshot = header.default_branch;
    }
    let needs_api = file_jobs.is_none() || file_fleet.is_none();
    let client = if needs_api {
        let Some(_) = src.project.as_deref() else {
            return Err(input(
                "no jobs to route: pass --jobs FILE (a JSON array of GitLab job objects), or \
                 --project ID|PATH to read the project's waiting jobs from GitLab",
            ));
        };
        Some(api_client(src.gitlab_url.clone())?)
    } else {
        None
    };
    let project = src.project.clone().unwrap_or_default();
    let mut default_branch = src.default_branch.clone().or(default_branch_from_snapshot);
    let mut job_timeout = src.job_timeout;
    let jobs = match file_jobs {
        Some(j) => j,
        None => {
            let c = client.as_ref().expect("client for API input");
            let (path, query) = match src.pipeline {
                Some(p) => (
                    format!("/projects/{}/pipelines/{p}/jobs", project_ref(&project)),
                    vec![("include_retried", "true".to_string())],
                ),
                None => (
                    format!("/projects/{}/jobs", project_ref(&project)),
                    vec![
                        ("scope[]", "pending".to_string()),
                        ("scope[]", "created".to_string()),
                        ("scope[]", "running".to_string()),
                    ],
                ),
            };
            let page = c
                .get_pages::<Job>(&path, &query, WAITING_PAGES)
                .with_context(|| format!("could not read the jobs of project {project}"))?;
            if page.truncated {
                warnings.push(format!(
                    "only the first {} jobs were read",
                    page.items.len()
                ));
            }
            page.items
        }
    };
    let fleet = match file_fleet {
        Some(f) => f,
        None => {
            let c = client.as_ref().expect("client for API input");
            super::export::project_fleet(c, &project)?
        }
    };
    let history_jobs = match file_history {
        Some(h) => h,
        None => match client.as_ref() {
            Some(c) => {
                let path = format!("/projects/{}/jobs", project_ref(&project));
                match c.get_all::<Job>(
                    &path,
                    &[
                        ("scope[]", "success".to_string()),
                        ("scope[]", "failed".to_string()),
                    ],
                    HISTORY_PAGES,
                ) {
                    Ok(j) => j,
                    Err(e) => {
                        warnings.push(format!(
                            "the project's finished jobs could not be read, so runners are \
                             scored without history: {}",
                            crate::gitlab::error::summary(&e)
                        ));
                        Vec::new()
                    }
                }
            }
            None => Vec::new(),
        },
    };
    let mut access_levels = HashMap::new();
    if let Some(c) = client.as_ref() {
        let path = format!("/projects/{}/members/all", project_ref(&project));
        match c.get_all::<serde_json::Value>(&path, &[], 5) {
            Ok(members) => {
                for m in members {
                    if let (Some(id), Some(level)) = (m["id"].as_u64(), m["access_level"].as_u64())
                    {
                        access_levels.insert(id, level as u32);
                    }
                }
            }
            Err(e) => warnings.push(format!(
                "the project's members could not be read, so every role counts as unknown: {}",
                crate::gitlab::error::summary(&e)
            )),
        }
        // The project: its default branch, and its job timeout (GitLab's
        // `build_timeout`, what a job without its own `timeout:` gets).
        match c.get_json::<serde_json::Value>(&format!("/projects/{}", project_ref(&project)), &[])
        {
            Ok(v) => {
                if default_branch.is_none() {
                    default_branch = v["default_branch"].as_str().map(str::to_string);
                }
                job_timeout = job_timeout.or_else(|| v["build_timeout"].as_u64());
            }
            Err(e) => warnings.push(format!(
                "the project could not be read (default branch, job timeout): {}",
                crate::gitlab::error::summary(&e)
            )),
        }
    }
    // Live carbon, as `report` reads it; a failure is a warning, not an abort.
    // (Not for an embedded demo fleet: its zones' values now are not its time's.)
    let (live_carbon, notes) = if src.embedded.is_some() {
        (super::carbon::Live::default(), Vec::new())
    } else {
        super::carbon_live::for_fleet(&fleet, |k| std::env::var(k).ok())
    };
    warnings.extend(notes);
    Ok(Loaded {
        live_carbon,
        history: History::from_jobs(history_jobs.iter().chain(jobs.iter())),
        jobs,
        fleet,
        access_levels,
        default_branch,
        priority_rules: config.priority.clone(),
        routing_rules: RoutingRules {
            reserve_scarce: config.routing.reserve_scarce && !src.no_reserve_scarce,
            ..config.routing.clone()
        },
        warnings,
        requests: client.as_ref().map_or(0, Client::request_count),
        job_timeout,
    })
}

/// The result of `route`, as `--format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Routed {
    /// Unix seconds the routing was computed for (not in the JSON).
    #[serde(skip)]
    pub now: i64,
    pub assignments: Vec<Assignment>,
    pub fleet: FleetSummary,
    pub warnings: Vec<String>,
}

/// The fleet in numbers. Slots count only where a job can run now: online
/// (or `active`) runners that are not paused; paused and offline (stale,
/// never contacted) runners' slots are counted apart.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    pub runners: usize,
    /// Online and not paused.
    pub online: usize,
    /// Slots of the online, unpaused runners.
    pub slots: u32,
    /// Of those, free before routing (`concurrent` minus running).
    pub free_slots_before: u32,
    /// Slots of paused runners (whatever their status).
    pub paused_slots: u32,
    /// Slots of unpaused runners that are offline, stale or never contacted.
    pub offline_slots: u32,
    pub placed: usize,
    pub queued: usize,
    pub unplaceable: usize,
}

/// The jobs `route` places: the waiting ones, or all when none waits (a
/// file of jobs to plan).
pub fn to_route(jobs: &[Job], warnings: &mut Vec<String>) -> Vec<usize> {
    let waiting: Vec<usize> = (0..jobs.len())
        .filter(|&i| route::WAITING.contains(&jobs[i].status.as_str()))
        .collect();
    if waiting.is_empty() && !jobs.is_empty() {
        let running = jobs.iter().any(|j| j.status == "running");
        if !running {
            warnings.push(
                "no job is pending or created: every job was routed as if it were waiting".into(),
            );
            return (0..jobs.len()).collect();
        }
    }
    waiting
}

/// Runs the pure routing on loaded inputs; `explain` captures one job's
/// runner verdicts.
pub fn route_loaded(l: &Loaded, now: i64, explain: Option<u64>) -> (Routed, Vec<RunnerVerdict>) {
    let mut warnings = l.warnings.clone();
    let idx = to_route(&l.jobs, &mut warnings);
    let jobs: Vec<&Job> = idx.iter().map(|&i| &l.jobs[i]).collect();
    let inputs = Inputs {
        default_branch: l.default_branch.as_deref(),
        access_levels: l.access_levels.clone(),
        now,
        timeouts: match l.job_timeout {
            Some(t) => jobs.iter().map(|j| (j.id, t)).collect(),
            None => HashMap::new(),
        },
        live_carbon: l.live_carbon.clone(),
    };
    let pr = route::priorities(&jobs, &inputs, &l.priority_rules);
    let running = route::running_counts(&l.jobs);
    let slots = route::Slots::new(&l.fleet, &running);
    let usable = |r: &FleetRunner| tags::serving(&r.runner);
    let free_before: u32 = (0..l.fleet.len())
        .filter(|&i| usable(&l.fleet[i]))
        .map(|i| slots.free(i))
        .sum();
    // Ties for a free slot go to the LLM when one is configured; the GitLab
    // token (and the LLM key) are redacted by value from what it gets and
    // says.
    let token = crate::gitlab::Token::from_env();
    let secrets: Vec<&str> = token.iter().map(|t| t.expose_secret()).collect();
    let mut tiebreak = match crate::llm::LlmConfig::from_env() {
        Ok(cfg) => super::tiebreak::TieBreaker::from_config(&cfg, &secrets),
        Err(e) => {
            warnings.push(format!("LLM tie-break off: {e}"));
            None
        }
    };
    let (assignments, verdicts) = super::tiebreak::assign(
        tiebreak.as_mut(),
        &jobs,
        pr,
        &l.fleet,
        &running,
        &l.history,
        &inputs,
        &l.routing_rules,
        explain,
    );
    if let Some(tb) = tiebreak.as_mut() {
        warnings.append(&mut tb.warnings);
    }
    for r in &l.fleet {
        if let Some(z) = r.runneriq.zone.as_deref() {
            if l.live_carbon.intensity(z).is_none() {
                warnings.push(format!(
                    "runner {}: zone {z:?} is not in the carbon table (scored as unknown)",
                    r.label()
                ));
            }
        }
    }
    let fleet = FleetSummary {
        runners: l.fleet.len(),
        online: l.fleet.iter().filter(|r| usable(r)).count(),
        slots: l
            .fleet
            .iter()
            .filter(|r| usable(r))
            .map(FleetRunner::concurrent)
            .sum(),
        free_slots_before: free_before,
        paused_slots: l
            .fleet
            .iter()
            .filter(|r| r.paused())
            .map(FleetRunner::concurrent)
            .sum(),
        offline_slots: l
            .fleet
            .iter()
            .filter(|r| !r.paused() && !usable(r))
            .map(FleetRunner::concurrent)
            .sum(),
        placed: assignments.iter().filter(|a| a.runner.is_some()).count(),
        queued: assignments.iter().filter(|a| a.queued.is_some()).count(),
        unplaceable: assignments
            .iter()
            .filter(|a| a.runner.is_none() && a.queued.is_none())
            .count(),
    };
    (
        Routed {
            now,
            assignments,
            fleet,
            warnings,
        },
        verdicts,
    )
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

fn minutes(s: f64) -> String {
    if s < 90.0 {
        format!("~{s:.0} s")
    } else {
        format!("~{:.0} min", s / 60.0)
    }
}

/// "kept for `test:gpu` (job 103), which only this runner can take".
fn kept_for_md(k: &route::KeptFor) -> String {
    format!(
        "kept for {} (job {}), which only {} can take",
        code_span(&k.name),
        k.job,
        if k.class_size == 1 {
            "this runner".to_string()
        } else {
            format!("these {} runners", k.class_size)
        }
    )
}

/// `route` as Markdown.
pub fn render_route_md(r: &Routed) -> String {
    let mut out = String::new();
    let f = &r.fleet;
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    let mut apart = String::new();
    for (n, what) in [(f.paused_slots, "paused"), (f.offline_slots, "offline")] {
        if n > 0 {
            let _ = write!(apart, "; {n} slot{} {what}", plural(n));
        }
    }
    let _ = writeln!(
        out,
        "### RunnerIQ route: {} jobs, {} runners ({} online, {} of their {} slot{} free{apart})\n",
        r.assignments.len(),
        f.runners,
        f.online,
        f.free_slots_before,
        f.slots,
        plural(f.slots)
    );
    let _ = writeln!(
        out,
        "{} placed · {} queued · {} with no runner\n",
        f.placed, f.queued, f.unplaceable
    );
    if f.placed > 0 {
        out.push_str("| Job | Priority | Runner | Score | Runner-up | Margin | Decided by |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for a in r.assignments.iter().filter(|a| a.runner.is_some()) {
            let _ = writeln!(
                out,
                "| {} (job {}, {}) | {} {} | {} | {:.1} | {} | {} | {} |",
                code_span(&a.name),
                a.job,
                code_span(&a.git_ref),
                a.priority,
                a.urgency,
                code_span(a.runner_name.as_deref().unwrap_or("")),
                a.score.as_ref().map_or(0.0, |s| s.total),
                a.runner_up.as_ref().map_or("—".to_string(), |u| format!(
                    "{} {:.1}",
                    code_span(&u.name),
                    u.score
                )),
                a.margin.map_or("—".to_string(), |m| {
                    if a.tie {
                        format!("{} (tie)", pct(m))
                    } else {
                        pct(m)
                    }
                }),
                a.decided_by
            );
        }
        out.push('\n');
    }
    let queued: Vec<&Assignment> = r
        .assignments
        .iter()
        .filter(|a| a.queued.is_some())
        .collect();
    if !queued.is_empty() {
        out.push_str("**Queued** (every eligible runner is busy):\n\n");
        for a in queued {
            let q = a.queued.as_ref().expect("filtered");
            let _ = writeln!(
                out,
                "- {} (job {}) · {} {} · position {} on {}{}",
                code_span(&a.name),
                a.job,
                a.priority,
                a.urgency,
                q.position,
                code_span(&q.runner_name),
                q.expected_start_s
                    .map(|s| format!(", expected start in {}", minutes(s)))
                    .unwrap_or_default()
            );
        }
        out.push('\n');
    }
    // Slots kept for scarce jobs, once per runner and job.
    let mut kept: Vec<&route::KeptFor> = Vec::new();
    for k in r.assignments.iter().flat_map(|a| &a.kept) {
        if !kept.iter().any(|x| x.runner == k.runner && x.job == k.job) {
            kept.push(k);
        }
    }
    if !kept.is_empty() {
        out.push_str(
            "**Scarce runners kept** (higher-priority jobs above could run elsewhere):\n\n",
        );
        for k in kept {
            let _ = writeln!(out, "- {} {}", code_span(&k.runner_name), kept_for_md(k));
        }
        out.push('\n');
    }
    let none: Vec<&Assignment> = r
        .assignments
        .iter()
        .filter(|a| a.runner.is_none() && a.queued.is_none())
        .collect();
    if !none.is_empty() {
        out.push_str("**No runner can take:**\n\n");
        for a in none {
            let _ = writeln!(
                out,
                "- {} (job {}) · {} {} · {}",
                code_span(&a.name),
                a.job,
                a.priority,
                a.urgency,
                inline(a.reason.as_deref().unwrap_or(""))
            );
        }
        out.push('\n');
    }
    let wait: Vec<&Assignment> = r
        .assignments
        .iter()
        .filter(|a| a.cleaner_later.is_some())
        .collect();
    if !wait.is_empty() {
        out.push_str(
            "**Can wait for cleaner power** (LOW jobs; Electricity Maps' 24 h forecast for their runner's zone):\n\n",
        );
        for a in wait {
            let c = a.cleaner_later.as_ref().expect("filtered");
            // The forecast's hour in UTC, whatever offset it was written with.
            let t = (r.now + c.in_s).rem_euclid(86_400);
            let at = format!("{:02}:{:02}", t / 3600, t / 60 % 60);
            let _ = writeln!(
                out,
                "- {} (job {}) on {}: run after {} UTC ({}), {} cleaner ({:.0} instead of {:.0} gCO₂e/kWh in {})",
                code_span(&a.name),
                a.job,
                code_span(
                    a.runner_name
                        .as_deref()
                        .or(a.queued.as_ref().map(|q| q.runner_name.as_str()))
                        .unwrap_or("")
                ),
                at,
                if c.in_s < 5400 {
                    format!("in ~{} min", c.in_s / 60)
                } else {
                    format!("in ~{:.0} h", c.in_s as f64 / 3600.0)
                },
                pct(c.cleaner),
                c.g_per_kwh,
                c.now_g_per_kwh,
                code_span(&c.zone)
            );
        }
        out.push('\n');
    }
    for w in &r.warnings {
        let _ = writeln!(out, "- warning: {}", inline(w));
    }
    out
}

/// `explain JOB` as Markdown.
pub fn render_explain_md(a: &Assignment, verdicts: &[RunnerVerdict]) -> String {
    let mut out = String::new();
    let p = &a.priority_breakdown;
    let _ = writeln!(
        out,
        "### Job {} {} on {}: priority {} ({})\n",
        a.job,
        code_span(&a.name),
        code_span(&a.git_ref),
        a.priority,
        a.urgency
    );
    out.push_str("| Factor | Value | Because |\n|---|---|---|\n");
    for t in &p.terms {
        let _ = writeln!(
            out,
            "| {} | {:+} | {} |",
            t.factor,
            t.value,
            inline(&t.because)
        );
    }
    let _ = writeln!(
        out,
        "\n(branch + role + job type) ÷ 3, plus bonuses and penalties, clamped to 0–100{}.\n",
        if p.notes.is_empty() {
            String::new()
        } else {
            format!("; {}", inline(&p.notes.join("; ")))
        }
    );
    match (&a.runner_name, &a.queued) {
        (Some(name), _) => {
            let _ = write!(out, "**Runner: {}**", code_span(name));
        }
        (None, Some(q)) => {
            let _ = write!(
                out,
                "**Queued** at position {} on {}",
                q.position,
                code_span(&q.runner_name)
            );
        }
        (None, None) => {
            let _ = write!(
                out,
                "**No runner:** {}",
                inline(a.reason.as_deref().unwrap_or(""))
            );
        }
    }
    if let Some(s) = &a.score {
        let _ = write!(out, " · score {:.1}", s.total);
    }
    if let (Some(u), Some(m)) = (&a.runner_up, a.margin) {
        let _ = write!(
            out,
            " · runner-up {} {:.1}, margin {}{}",
            code_span(&u.name),
            u.score,
            pct(m),
            if a.tie {
                " (within the tie margin)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out, " · decided by {}\n", a.decided_by);
    if let Some(class) = &a.scarce_class {
        let _ = writeln!(
            out,
            "Scarce: only {} of the fleet can take it, and other waiting jobs have runners besides, so it was placed before them.\n",
            if class.len() == 1 {
                "one runner".to_string()
            } else {
                format!("{} runners", class.len())
            }
        );
    }
    if let Some(l) = &a.llm {
        let _ = writeln!(
            out,
            "The top two were within the tie margin; the LLM ({}) chose: {}\n",
            code_span(&l.model),
            inline(&l.reason)
        );
    } else if let Some(why) = &a.llm_unavailable {
        let _ = writeln!(
            out,
            "The top two were within the tie margin; the LLM did not decide ({}), the rules' choice stands.\n",
            inline(why)
        );
    }
    if let Some(s) = &a.score {
        out.push_str("| Factor | Weight | Value | Points | Detail |\n|---|---|---|---|---|\n");
        for f in &s.factors {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {:.1} | {} |",
                f.factor,
                pct(f.weight),
                f.value,
                f.weight * f.value * 100.0,
                inline(&f.detail)
            );
        }
        out.push('\n');
    }
    out.push_str("**Every runner:**\n\n| Runner | Free slots | Eligible | Score or why not |\n|---|---|---|---|\n");
    let mut sorted: Vec<&RunnerVerdict> = verdicts.iter().collect();
    sorted.sort_by(|x, y| {
        let sx = x.score.as_ref().map_or(-1.0, |s| s.total);
        let sy = y.score.as_ref().map_or(-1.0, |s| s.total);
        sy.partial_cmp(&sx)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(x.runner.cmp(&y.runner))
    });
    for v in sorted {
        let _ = writeln!(
            out,
            "| {} (id {}) | {} | {} | {} |",
            code_span(&v.name),
            v.runner,
            v.free_slots,
            if v.gate.is_none() { "yes" } else { "no" },
            match (&v.score, &v.gate_words) {
                (Some(s), _) if !v.kept_for.is_empty() => format!(
                    "{:.1}; no free slot: {}",
                    s.total,
                    v.kept_for
                        .iter()
                        .map(kept_for_md)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                (Some(s), _) => format!("{:.1}", s.total),
                (None, Some(w)) => inline(w),
                _ => String::new(),
            }
        );
    }
    out
}

/// `explain` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Explained<'a> {
    pub assignment: &'a Assignment,
    pub runners: &'a [RunnerVerdict],
}

fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(()),
    }
}

/// The tag section of `route --format json` (present when the tag bridge is on).
#[derive(Debug, Clone, Serialize)]
pub struct TagsOut<'a> {
    pub mode: &'static str,
    /// would change | planned | dry run | applied
    pub status: &'static str,
    /// The plan file written, if any.
    pub plan: Option<String>,
    pub changes: &'a [TagChange],
    /// What `apply` did (autonomous mode; supervised with a threshold: the
    /// changes below it).
    pub applied: Option<&'a [Applied]>,
    /// Supervised mode's threshold, when one is in effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervised_threshold: Option<&'static str>,
    /// Supervised with a threshold: the changes whose jobs are below it
    /// (`changes` then holds those for review).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct: Option<&'a [TagChange]>,
    /// `applied` or `dry run`, for `direct`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_status: Option<&'static str>,
}

/// `route --format json`: the routing, plus the tag bridge when it is on.
#[derive(Debug, Clone, Serialize)]
struct RouteOut<'a> {
    #[serde(flatten)]
    routed: &'a Routed,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<TagsOut<'a>>,
}

/// The live runners, each with the `runneriq` extension (zone, power,
/// slots) of the same runner in the fleet file.
fn merge_fleet(
    live: Vec<FleetRunner>,
    file: &[FleetRunner],
    warnings: &mut Vec<String>,
) -> Vec<FleetRunner> {
    let ext: HashMap<u64, &FleetRunner> = file.iter().map(|r| (r.id(), r)).collect();
    for r in file {
        if !live.iter().any(|l| l.id() == r.id()) {
            warnings.push(format!(
                "runner {} (#{}) of the fleet file is not among the project's runners: left out",
                r.label(),
                r.id()
            ));
        }
    }
    live.into_iter()
        .map(|mut l| {
            if let Some(f) = ext.get(&l.id()) {
                l.runneriq = f.runneriq.clone();
            }
            l
        })
        .collect()
}

/// The audit log to append to: `--audit`, else the default file when the
/// run writes something (a plan, tags), else none.
fn audit_log(flag: Option<PathBuf>, writes: bool) -> anyhow::Result<Option<AuditLog>> {
    flag.or_else(|| writes.then(|| PathBuf::from(audit::DEFAULT_FILE)))
        .map(|p| AuditLog::open(&p))
        .transpose()
}

fn failures(applied: &[Applied]) -> usize {
    let failed: Vec<&Applied> = applied.iter().filter(|a| !a.ok).collect();
    for a in &failed {
        if let Some(e) = &a.error {
            eprintln!("runneriq: error: {e}");
        }
    }
    failed.len()
}

fn exit_for(failed: usize) -> std::process::ExitCode {
    if failed > 0 {
        std::process::ExitCode::from(crate::error::EXIT_RUNTIME)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// The skipped removals (last holders) of a plan, as a Markdown list.
fn kept_md(changes: &[TagChange]) -> String {
    let mut out = String::new();
    for c in changes.iter().filter(|c| c.is_noop()) {
        let _ = writeln!(
            out,
            "- {} (id {}): {}",
            code_span(&c.runner_name),
            c.runner,
            inline(&c.reason)
        );
    }
    if !out.is_empty() {
        out.insert_str(0, "\n**Unchanged:**\n\n");
    }
    out
}

/// `runneriq route`.
pub fn run_route(args: RouteOptions) -> anyhow::Result<std::process::ExitCode> {
    let mode = args.mode;
    if args.supervised_threshold.is_some() && mode != TrustMode::Supervised {
        return Err(input(format!(
            "--supervised-threshold splits a supervised run's tag changes (below it applied, at \
             or above it planned for review) and needs --mode supervised (the mode is {})",
            mode.as_str()
        )));
    }
    if args.plan.is_some() && mode == TrustMode::Advisory {
        return Err(input(
            "--plan writes tag changes for `runneriq apply`, which advisory mode does not do: \
             pass --mode supervised",
        ));
    }
    if mode == TrustMode::Supervised && args.plan.is_none() {
        return Err(input(
            "--mode supervised writes its tag changes to a plan for a person to apply: pass \
             --plan FILE (then `runneriq apply FILE --execute`, e.g. in a `when: manual` job)",
        ));
    }
    let bridge = args.tags || mode != TrustMode::Advisory;
    let src = args.sources.clone();
    let mut loaded = load(&src)?;
    // The threshold of a supervised run: the flag, else the config's.
    let threshold = match mode {
        TrustMode::Supervised => args
            .supervised_threshold
            .or(loaded.routing_rules.trust.supervised_threshold),
        _ => None,
    };
    if args.execute && mode != TrustMode::Autonomous && threshold.is_none() {
        return Err(input(format!(
            "--execute writes runner tags to GitLab and needs --mode autonomous, or --mode \
             supervised with a threshold (--supervised-threshold or \
             routing.trust.supervised_threshold); the mode is {}, so --mode supervised --plan \
             FILE writes a plan for `runneriq apply` instead",
            mode.as_str()
        )));
    }
    let now_s = src
        .embedded
        .as_ref()
        .map_or_else(crate::clock::now, |e| e.now);
    if let Some(e) = &src.embedded {
        eprintln!(
            "runneriq: routing the {} as of {} (offline, nothing is written)",
            e.origin,
            super::audit::rfc3339(e.now)
        );
    }
    // Opened before anything is written, so a run that cannot record what
    // it does does nothing.
    let mut log = audit_log(args.audit.clone(), args.execute || args.plan.is_some())?;
    // The live fleet: autonomous always; supervised with a threshold when it
    // applies (--execute), or for a dry run against GitLab when a project is
    // given.
    let live = mode == TrustMode::Autonomous
        || (threshold.is_some() && (args.execute || src.project.is_some()));
    let client = if live {
        let Some(project) = src.project.as_deref() else {
            return Err(input(format!(
                "{} changes runners' tags and needs the live fleet: pass --project ID|PATH and \
                 a token (a --fleet file then only adds zones, power and slots)",
                if mode == TrustMode::Autonomous {
                    "--mode autonomous"
                } else {
                    "--execute"
                }
            )));
        };
        let c = api_client(src.gitlab_url.clone())?;
        if src.fleet.is_some() {
            let live = super::export::project_fleet(&c, project)?;
            loaded.fleet = merge_fleet(live, &loaded.fleet, &mut loaded.warnings);
        }
        Some(c)
    } else {
        None
    };
    let rules = TagRules {
        green_share: args.green_share,
        ttl_s: args.tag_ttl,
        enabled: bridge,
    };
    if bridge
        && !loaded.fleet.iter().any(|r| {
            tags::serving(&r.runner)
                && r.runneriq
                    .zone
                    .as_deref()
                    .is_some_and(|z| super::carbon::lookup(z).is_some())
        })
    {
        loaded.warnings.push(
            "no online runner has a known carbon intensity (`runneriq.zone` in a --fleet file), \
             so no runner gets runneriq:green"
                .into(),
        );
    }
    let (routed, _) = route_loaded(&loaded, i64::try_from(now_s).unwrap_or(i64::MAX), None);
    let changes = bridge.then(|| tags::plan(&loaded.fleet, now_s, &rules));
    // Supervised with a threshold: changes for jobs below it apart.
    let (changes, direct) = match (changes, threshold) {
        (Some(c), Some(t)) => {
            let waiting: Vec<tags::WaitingJob<'_>> = routed
                .assignments
                .iter()
                .map(|a| tags::WaitingJob {
                    id: a.job,
                    name: &a.name,
                    tags: &a.tags,
                    urgency: a.urgency,
                })
                .collect();
            let split = tags::split_supervised(c, &loaded.fleet, &waiting, t);
            (Some(split.review), Some(split.direct))
        }
        (c, _) => (c, None),
    };
    let plan = changes.map(|c| tags::make_plan(&loaded.fleet, now_s, &rules, mode.as_str(), c));
    let direct_plan =
        direct.map(|c| tags::make_plan(&loaded.fleet, now_s, &rules, mode.as_str(), c));
    // The plan only computes `runneriq:green` and `runneriq:until:<unix>`
    // (from --tag-ttl); checked anyway before it is written or applied.
    for p in plan.iter().chain(&direct_plan) {
        tags::check_changes(&p.changes).map_err(|why| {
            anyhow::anyhow!("the tag plan has a tag GitLab would not store as given: {why}")
        })?;
    }
    if let (Some(path), Some(p)) = (&args.plan, &plan) {
        let json = serde_json::to_string_pretty(p)? + "\n";
        crate::input::write_atomically(path, json.as_bytes())?;
    }
    let applied = match (&client, &plan, &direct_plan) {
        (Some(c), _, Some(d)) => Some(tags::apply_plan(c, d, args.execute)),
        (Some(c), Some(p), None) => Some(tags::apply_plan(c, p, args.execute)),
        _ => None,
    };
    let status = match (mode, args.execute) {
        (TrustMode::Advisory, _) => "would change",
        (TrustMode::Supervised, _) => "planned",
        (TrustMode::Autonomous, false) => "dry run",
        (TrustMode::Autonomous, true) => "applied",
    };
    let direct_status = direct_plan
        .as_ref()
        .map(|_| match (&applied, args.execute) {
            (Some(_), true) => "applied",
            _ => "dry run",
        });
    let plan_name = args.plan.as_ref().map(|p| p.display().to_string());
    let text = match args.format {
        NoteFormat::Json => {
            let out = RouteOut {
                routed: &routed,
                tags: plan.as_ref().map(|p| TagsOut {
                    mode: mode.as_str(),
                    status,
                    plan: plan_name.clone(),
                    changes: &p.changes,
                    applied: applied.as_deref(),
                    supervised_threshold: threshold.map(|t| t.as_str()),
                    direct: direct_plan.as_ref().map(|d| d.changes.as_slice()),
                    direct_status,
                }),
            };
            serde_json::to_string_pretty(&out)? + "\n"
        }
        NoteFormat::Md => {
            let mut md = render_route_md(&routed);
            if let Some(p) = &plan {
                if !md.ends_with("\n\n") {
                    md.push('\n');
                }
                if let (Some(t), Some(d)) = (threshold, &direct_plan) {
                    match &applied {
                        Some(a) => {
                            let heading = if args.execute {
                                format!(
                                    "Tag changes applied without review (supervised: their jobs \
                                     are below {t})"
                                )
                            } else {
                                format!(
                                    "Tag changes to apply without review (supervised: their jobs \
                                     are below {t}; dry run: nothing sent, pass --execute to \
                                     apply)"
                                )
                            };
                            md.push_str(&tags::render_applied_md(&heading, a, args.execute));
                        }
                        None => md.push_str(&tags::render_changes_md(
                            &format!(
                                "Tag changes to apply without review (supervised: their jobs \
                                 are below {t}; dry run: pass --execute and --project to apply)"
                            ),
                            &d.changes,
                        )),
                    }
                    md.push('\n');
                }
                match (&applied, &plan_name) {
                    (Some(a), _) if direct_plan.is_none() => {
                        let heading = if args.execute {
                            "Tag changes (autonomous: applied)"
                        } else {
                            "Tag changes (autonomous dry run: nothing sent, pass --execute to apply)"
                        };
                        md.push_str(&tags::render_applied_md(heading, a, args.execute));
                    }
                    (_, Some(name)) => md.push_str(&tags::render_changes_md(
                        &format!(
                            "Tag changes {}(planned: written to {}, apply with `runneriq apply \
                             {} --execute`)",
                            threshold
                                .map_or(String::new(), |t| format!("for review, at or above {t} ")),
                            code_span(name),
                            inline(name)
                        ),
                        &p.changes,
                    )),
                    _ => md.push_str(&tags::render_changes_md(
                        "Tag changes (would change: advisory mode, nothing is written to GitLab)",
                        &p.changes,
                    )),
                }
                md.push_str(&kept_md(&p.changes));
            }
            md
        }
    };
    print(&text)?;
    if let Some(log) = log.as_mut() {
        let mode_s = mode.as_str();
        log.append(&audit::recommendations(&routed.assignments, now_s, mode_s))?;
        match (&applied, &plan, &direct_plan) {
            (Some(a), Some(p), Some(_)) => {
                log.append(&audit::outcome(a, now_s, mode_s))?;
                log.append(&audit::planned(&p.changes, now_s, mode_s))?;
            }
            (None, Some(p), Some(d)) => {
                log.append(&audit::planned(&d.changes, now_s, mode_s))?;
                log.append(&audit::planned(&p.changes, now_s, mode_s))?;
            }
            (Some(a), _, None) => log.append(&audit::outcome(a, now_s, mode_s))?,
            (None, Some(p), None) => log.append(&audit::planned(&p.changes, now_s, mode_s))?,
            _ => {}
        }
    }
    if let Some(name) = &plan_name {
        eprintln!(
            "runneriq: plan written to {name}: {} tag changes{}",
            plan.as_ref()
                .map_or(0, |p| p.changes.iter().filter(|c| !c.is_noop()).count()),
            match (&direct_plan, direct_status) {
                (Some(d), Some(st)) => format!(
                    " for review; {} below the threshold {}",
                    d.changes.len(),
                    if st == "applied" {
                        "applied"
                    } else {
                        "not applied (dry run)"
                    }
                ),
                _ => String::new(),
            }
        );
    }
    let failed = applied.as_deref().map_or(0, failures);
    Ok(exit_for(failed))
}

fn print_applied(
    applied: &[Applied],
    heading: &str,
    execute: bool,
    format: NoteFormat,
) -> anyhow::Result<()> {
    let text = match format {
        NoteFormat::Json => serde_json::to_string_pretty(applied)? + "\n",
        NoteFormat::Md => tags::render_applied_md(heading, applied, execute),
    };
    print(&text)
}

/// `runneriq apply PLAN.json`.
pub fn run_apply(args: ApplyOptions) -> anyhow::Result<std::process::ExitCode> {
    let plan = tags::load_plan(&args.plan)?;
    let now_s = crate::clock::now();
    let expires = plan.expires_at();
    if expires <= now_s {
        return Err(input(format!(
            "{}: plan expired at {} (written {}), route again",
            args.plan.display(),
            audit::rfc3339(expires),
            audit::rfc3339(plan.created_at)
        )));
    }
    let mut log = audit_log(args.audit.clone(), args.execute)?;
    let client = api_client(args.gitlab_url.clone())?;
    let applied = tags::apply_plan(&client, &plan, args.execute);
    let heading = if args.execute {
        format!(
            "Plan {} applied",
            code_span(&args.plan.display().to_string())
        )
    } else {
        format!(
            "Plan {} (dry run: nothing sent, pass --execute to apply)",
            code_span(&args.plan.display().to_string())
        )
    };
    print_applied(&applied, &heading, args.execute, args.format)?;
    if let Some(log) = log.as_mut() {
        log.append(&audit::outcome(&applied, now_s, &plan.mode))?;
    }
    Ok(exit_for(failures(&applied)))
}

/// `runneriq reset-tags`.
pub fn run_reset_tags(args: ResetTagsOptions) -> anyhow::Result<std::process::ExitCode> {
    let project = args
        .project
        .clone()
        .or_else(|| crate::gitlab::project_from_env(|k| std::env::var(k).ok()));
    if !args.all && project.is_none() {
        return Err(input(
            "no project: pass --project ID|PATH, or --all for every runner",
        ));
    }
    // The log the tags are checked against, read before this run appends to it.
    let review_path = args
        .audit
        .clone()
        .unwrap_or_else(|| PathBuf::from(audit::DEFAULT_FILE));
    let source = audit::ReviewSource::load(&review_path);
    let mut log = audit_log(args.audit.clone(), args.execute)?;
    let client = api_client(args.gitlab_url.clone())?;
    let fleet = match (&project, args.all) {
        (_, true) => super::export::instance_fleet(&client)?,
        (Some(p), false) => super::export::project_fleet(&client, p)?,
        (None, false) => unreachable!("checked above"),
    };
    let changes = tags::reset_changes(&fleet);
    let reviews = match &source {
        audit::ReviewSource::Read(_, entries) => audit::review(&fleet, entries),
        _ => Vec::new(),
    };
    let applied = tags::apply_reset(&client, &changes, args.execute);
    let heading = if args.execute {
        "RunnerIQ tags removed"
    } else {
        "RunnerIQ tags to remove (dry run: nothing sent, pass --execute to apply)"
    };
    print_applied(&applied, heading, args.execute, args.format)?;
    if args.format == NoteFormat::Md {
        print(&audit::render_review_md(&source, &reviews))?;
    }
    let origin = review_path.display().to_string();
    match &source {
        audit::ReviewSource::Missing(_) => eprintln!(
            "runneriq: warning: no audit log ({origin} does not exist): tags outside runneriq: \
             that RunnerIQ's writes may have caused were not looked for (pass --audit FILE)"
        ),
        audit::ReviewSource::Unreadable(_, why) => {
            eprintln!("runneriq: warning: tags outside runneriq: were not checked: {why}")
        }
        audit::ReviewSource::Read(..) => {}
    }
    for r in reviews.iter().filter(|r| !r.tags.is_empty()) {
        let list: Vec<String> = r.tags.iter().map(|u| format!("{:?}", u.tag)).collect();
        eprintln!(
            "runneriq: warning: runner {} (#{}): {} not explained by RunnerIQ's audit log \
             {origin}, kept: review them",
            r.runner_name,
            r.runner,
            list.join(", ")
        );
    }
    let pools: BTreeSet<&str> = applied
        .iter()
        .flat_map(|a| a.removed.iter())
        .filter(|t| tags::is_pool(t))
        .map(String::as_str)
        .collect();
    for t in pools {
        eprintln!(
            "runneriq: warning: jobs that require {t} will wait for a runner until their `tags:` \
             no longer list it"
        );
    }
    if let Some(log) = log.as_mut() {
        let now_s = crate::clock::now();
        log.append(&audit::review_lines(&reviews, &origin, now_s, "manual"))?;
        log.append(&audit::outcome(&applied, now_s, "manual"))?;
    }
    Ok(exit_for(failures(&applied)))
}

/// `runneriq audit [FILE]`.
pub fn run_audit(args: AuditOptions) -> anyhow::Result<std::process::ExitCode> {
    let path = args
        .file
        .clone()
        .or_else(|| {
            std::env::var("RUNNERIQ_AUDIT")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(audit::DEFAULT_FILE));
    let since = match args.since.as_deref() {
        Some(text) => {
            let d = crate::config::parse_duration(text).ok_or_else(|| {
                input(format!(
                    "--since: expected a duration such as 7d, 12h or 30m, got {text:?}"
                ))
            })?;
            let now_s = crate::clock::now_i64();
            Some(now_s.saturating_sub(i64::try_from(d).unwrap_or(i64::MAX)))
        }
        None => None,
    };
    let (entries, warnings) = audit::read(&path, since)?;
    let text = match args.format {
        NoteFormat::Json => {
            let values: Vec<&serde_json::Value> = entries.iter().map(|e| &e.value).collect();
            serde_json::to_string_pretty(&values)? + "\n"
        }
        NoteFormat::Md => audit::render_md(&path.display().to_string(), &entries),
    };
    print(&text)?;
    for w in warnings {
        eprintln!("runneriq: warning: {w}");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `runneriq explain JOB_ID`.
pub fn run_explain(args: ExplainOptions) -> anyhow::Result<std::process::ExitCode> {
    let loaded = load(&args.sources)?;
    if !loaded.jobs.iter().any(|j| j.id == args.job) {
        return Err(input(format!(
            "job {} is not among the {} jobs read",
            args.job,
            loaded.jobs.len()
        )));
    }
    let (routed, verdicts) = route_loaded(&loaded, now(), Some(args.job));
    let Some(a) = routed.assignments.iter().find(|a| a.job == args.job) else {
        return Err(input(format!(
            "job {} is not waiting for a runner (only pending and created jobs are routed)",
            args.job
        )));
    };
    let text = match args.format {
        NoteFormat::Json => {
            serde_json::to_string_pretty(&Explained {
                assignment: a,
                runners: &verdicts,
            })? + "\n"
        }
        NoteFormat::Md => render_explain_md(a, &verdicts),
    };
    print(&text)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `runneriq fleet export`.
pub fn run_export(args: ExportOptions) -> anyhow::Result<std::process::ExitCode> {
    let client = api_client(args.gitlab_url.clone())?;
    let fleet = if args.all {
        super::export::instance_fleet(&client)?
    } else {
        let project = args
            .project
            .clone()
            .or_else(|| crate::gitlab::project_from_env(|k| std::env::var(k).ok()))
            .ok_or_else(|| {
                input("no project: pass --project ID|PATH, or --all for every runner")
            })?;
        super::export::project_fleet(&client, &project)?
    };
    let json = serde_json::to_string_pretty(&fleet)? + "\n";
    match &args.output {
        Some(path) => crate::input::write_atomically(path, json.as_bytes())?,
        None => print(&json)?,
    }
    eprintln!("runneriq: {} runners", fleet.len());
    Ok(std::process::ExitCode::SUCCESS)
}

/// `runneriq simulate`: the history streamed into the replay (a snapshot,
/// a jobs file, or the API), never held as job objects.
pub fn run_simulate(args: SimulateOptions) -> anyhow::Result<std::process::ExitCode> {
    let src = args.sources.clone();
    let config = crate::config::Config::for_job(src.config.as_deref())?;
    let file_fleet = src.fleet.as_deref().map(load_fleet).transpose()?;
    let file_jobs = src.jobs.as_deref().map(load_jobs).transpose()?;
    let mut notes = Vec::new();
    let header = src
        .snapshot
        .as_deref()
        .map(|p| crate::report::source::read(p, |_| {}))
        .transpose()?;
    let needs_api = file_jobs.is_none() && header.is_none();
    let client = if needs_api
        || (file_fleet.is_none() && header.as_ref().is_none_or(|h| h.runners.is_empty()))
    {
        if src.project.is_none() {
            return Err(input(
                "no history: pass --jobs FILE (finished GitLab job objects) or --snapshot FILE, \
                 or --project ID (with --since) to read it from GitLab; and --fleet FILE",
            ));
        }
        Some(api_client(src.gitlab_url.clone())?)
    } else {
        None
    };
    let project = src.project.clone().unwrap_or_default();
    let fleet: Vec<FleetRunner> = match (file_fleet, header.as_ref()) {
        (Some(f), _) => f,
        (None, Some(h)) if !h.runners.is_empty() => h.runners.clone(),
        _ => super::export::project_fleet(client.as_ref().expect("client"), &project)?,
    };
    let default_branch = src
        .default_branch
        .clone()
        .or_else(|| header.as_ref().and_then(|h| h.default_branch.clone()));
    let opts = super::simulate::Options {
        carbon_wait_s: args.carbon_wait as f64,
        default_branch,
        ..Default::default()
    };
    let routing = RoutingRules {
        reserve_scarce: config.routing.reserve_scarce && !src.no_reserve_scarce,
        ..config.routing.clone()
    };
    let mut b = super::simulate::Builder::new(&fleet, &config.priority, &routing, opts);
    if let Some(jobs) = &file_jobs {
        for j in jobs {
            b.add(j);
        }
    } else if let Some(path) = src.snapshot.as_deref() {
        crate::report::source::read(path, |rec| {
            if let crate::report::source::Record::Job { job } = rec {
                b.add(&job);
            }
        })?;
    } else {
        let c = client.as_ref().expect("client");
        let span = crate::report::source::window(args.since.as_deref(), None, None, now())?;
        let fetched =
            crate::report::source::fetch_jobs(c, &project, span, 100, true, |j| b.add(&j))
                .with_context(|| format!("could not read the jobs of project {project}"))?;
        if fetched.truncated {
            notes.push(format!(
                "only the newest {} jobs of the window were read",
                fetched.jobs
            ));
        }
    }
    if std::env::var("ELECTRICITY_MAPS_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        // A replay of past jobs: this hour's live value would not describe
        // the hours they ran in, and the same history should replay the same.
        notes.push(super::simulate::LIVE_CARBON_NOT_USED.into());
    }
    let mut sim = b.finish();
    sim.limitations.extend(notes);
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&sim)? + "\n",
        ReportFormat::Md => {
            // Asked only when the history came from a GitLab: its Mermaid
            // draws the chart; else as current GitLab draws it.
            let charts = if client.is_some() {
                crate::publish::mermaid::resolve_charts(args.charts, src.gitlab_url.as_deref())
            } else if args.charts == ChartMode::Auto {
                ChartMode::Xychart
            } else {
                args.charts
            };
            super::render::simulate_markdown(&sim, charts)
        }
        ReportFormat::Html => crate::report::render::simulation_html(&sim),
    };
    print(&text)?;
    Ok(std::process::ExitCode::SUCCESS)
}
