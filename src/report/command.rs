//! `runneriq report` and `runneriq snapshot`: history from the API or from
//! snapshots, streamed into the aggregator; the report rendered, printed or
//! published as one issue per project per ISO week.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::metrics::{Aggregator, Window};
use super::render::{self, Gathered, Summary, render, report};
use super::source::{self, Header, Record, SNAPSHOT_VERSION, Span};
use crate::classify::Catalog;
use crate::clock::now_i64 as now;
use crate::diagnose::fetch::{self, TraceOutcome, TraceTask};
use crate::error::input;
use crate::fleet::model::FleetRunner;
use crate::gitlab::api_client as client;
use crate::gitlab::models::{Issue, Job};
use crate::gitlab::{Client, project_ref};
use crate::publish::format::ReportFormat;
use crate::publish::mermaid::{ChartMode, resolve_charts};

/// Pages of 100 jobs read at most for one window (10,000 jobs).
pub const DEFAULT_MAX_PAGES: usize = 100;
/// Script-failure traces classified for the failure trends, at most.
pub const DEFAULT_TRACES: usize = 20;
/// Default-branch pipelines whose unit test reports are read, at most (the
/// newest of the window): one request each, two when a test failed.
pub const DEFAULT_TEST_REPORTS: usize = 20;
/// Issues (pages of 100) searched for this week's and last week's report.
const MAX_ISSUE_PAGES: usize = 5;

/// Where `report` and `snapshot` read history.
#[derive(Debug, Clone, Default)]
pub struct HistoryArgs {
    pub project: Option<String>,
    pub gitlab_url: Option<String>,
    pub since: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub fleet: Option<PathBuf>,
    pub snapshots: Vec<PathBuf>,
    pub max_pages: usize,
    pub traces: usize,
    /// Default-branch pipelines whose unit test reports are read (0: none).
    pub test_reports: usize,
    pub quiet: bool,
    pub default_branch: Option<String>,
    pub config: Option<PathBuf>,
    /// Every project of this group (subgroups included) instead of one.
    pub group: Option<String>,
}

/// Projects of a group read at the same time.
const GROUP_WORKERS: usize = 4;
/// Pages of 100 projects listed at most in group mode.
const MAX_PROJECT_PAGES: usize = 10;

/// Group mode: the group's projects (`GET /groups/:id/projects`, subgroups
/// included, archived left out) fetched by [`GROUP_WORKERS`] threads; their
/// jobs reach the one aggregator through a bounded channel, so memory stays
/// bounded whatever the group's size.
fn gather_group(
    a: &HistoryArgs,
    group: &str,
    span: Span,
    config: &crate::config::Config,
    fleet: Option<Vec<FleetRunner>>,
) -> anyhow::Result<Gathered> {
    #[derive(serde::Deserialize)]
    struct P {
        id: u64,
        path_with_namespace: Option<String>,
    }
    let c = client(a.gitlab_url.clone())?;
    let projects: Vec<P> = c
        .get_all(
            &format!("/groups/{}/projects", project_ref(group)),
            &[
                ("include_subgroups", "true".to_string()),
                ("archived", "false".to_string()),
                ("with_shared", "false".to_string()),
            ],
            MAX_PROJECT_PAGES,
        )
        .map_err(|e| match e.kind() {
            crate::gitlab::ApiErrorKind::NotFound | crate::gitlab::ApiErrorKind::Forbidden => {
                input(format!(
                    "group {group}: {} — check the group id or path and that the token can read it",
                    crate::gitlab::error::summary(&e)
                ))
            }
            _ => anyhow::anyhow!(
                "could not list the projects of group {group}: {}",
                crate::gitlab::error::summary(&e)
            ),
        })?;
    let (mut agg, notes, forecast) =
        aggregator(span, fleet.as_deref(), config, a.default_branch.clone());
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Job)>(1024);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let per_project_traces = a.traces.div_ceil(projects.len().max(1)).max(1);
    let samples = std::sync::Mutex::new(Vec::<(u64, Vec<u64>)>::new());
    std::thread::scope(|scope| {
        for _ in 0..GROUP_WORKERS.min(projects.len().max(1)) {
            let tx = tx.clone();
            let (c, next, projects, failures, samples) =
                (&c, &next, &projects, &failures, &samples);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = projects.get(i) else { break };
                    let mut sample = Vec::new();
                    let r =
                        source::fetch_jobs(c, &p.id.to_string(), span, a.max_pages, true, |j| {
                            if j.failure_reason.as_deref() == Some("script_failure")
                                && sample.len() < per_project_traces
                            {
                                sample.push(j.id);
                            }
                            let _ = tx.send((p.id, j));
                        });
                    if let Err(e) = r {
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!(
                                "project {}: {}",
                                p.path_with_namespace
                                    .clone()
                                    .unwrap_or_else(|| p.id.to_string()),
                                crate::gitlab::error::summary(&e)
                            ));
                    }
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((p.id, sample));
                }
            });
        }
        drop(tx);
        let mut n = 0u64;
        for (_, j) in rx {
            agg.add(&j);
            n += 1;
            if !a.quiet && n % 1000 == 0 {
                eprintln!("runneriq: {n} jobs so far");
            }
        }
    });
    for (project, ids) in samples.into_inner().unwrap_or_else(|p| p.into_inner()) {
        for (id, cat) in classify_sample(&c, &project.to_string(), &ids) {
            agg.set_category(id, cat);
        }
    }
    let mut notes = notes;
    for f in failures.into_inner().unwrap_or_else(|p| p.into_inner()) {
        notes.push(format!("not counted, its jobs could not be read: {f}"));
    }
    let requests = c.request_count();
    Ok(Gathered {
        project: format!("group {group} ({} projects)", projects.len()),
        span,
        data: agg.finish(),
        source: format!("GitLab API, {requests} requests"),
        requests,
        notes,
        forecast,
        impact: None,
    })
}

fn project_of(a: &HistoryArgs) -> anyhow::Result<String> {
    a.project
        .clone()
        .or_else(|| crate::gitlab::project_from_env(|k| std::env::var(k).ok()))
        .ok_or_else(|| {
            input("no project: pass --project ID|PATH (or --snapshot FILE), or run in GitLab CI")
        })
}

/// Classifies up to `limit` script-failure traces (ids newest first) and
/// returns their categories.
fn classify_sample(client: &Client, project: &str, ids: &[u64]) -> Vec<(u64, String)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let Ok(catalog) = Catalog::builtin() else {
        return Vec::new();
    };
    let tasks: Vec<TraceTask> = ids
        .iter()
        .map(|&id| TraceTask {
            project: project.to_string(),
            job_id: id,
            failure_reason: Some("script_failure".into()),
            has_trace: true,
        })
        .collect();
    fetch::classify_traces(
        client,
        &tasks,
        &catalog,
        1,
        fetch::TRACE_WORKERS,
        0,
        &fetch::TraceLimits::default(),
    )
    .into_iter()
    .zip(ids)
    .filter_map(|(o, id)| match o {
        TraceOutcome::Classified(c) => Some((*id, c.category.clone())),
        TraceOutcome::Unreadable(_) => None,
    })
    .collect()
}

/// The aggregator of a window, with live carbon intensities applied when
/// `ELECTRICITY_MAPS_TOKEN` is set (and their notes and forecast).
fn aggregator(
    span: Span,
    fleet: Option<&[FleetRunner]>,
    config: &crate::config::Config,
    default_branch: Option<String>,
) -> (
    Aggregator,
    Vec<String>,
    Vec<crate::fleet::carbon_live::Cleanest>,
) {
    let mut agg = Aggregator::new(
        Window {
            from: span.from,
            to: span.to,
        },
        fleet,
        config.report.clone(),
        config.priority.clone(),
        default_branch,
    );
    let (notes, forecast) = live_carbon(fleet.unwrap_or_default(), &mut agg);
    (agg, notes, forecast)
}

/// Live intensities for the fleet's zones when `ELECTRICITY_MAPS_TOKEN` is
/// set: they replace the tables' annual averages; failures only add notes.
fn live_carbon(
    fleet: &[FleetRunner],
    agg: &mut Aggregator,
) -> (Vec<String>, Vec<crate::fleet::carbon_live::Cleanest>) {
    let (live, notes) = crate::fleet::carbon_live::for_fleet(fleet, |k| std::env::var(k).ok());
    agg.override_intensities(&live.intensities);
    (notes, live.forecast.into_values().collect())
}

/// Reads the history (snapshots or API) into the aggregator.
pub fn gather(a: &HistoryArgs) -> anyhow::Result<Gathered> {
    let t_now = now();
    let config = crate::config::Config::for_job(a.config.as_deref())?;
    let file_fleet = a
        .fleet
        .as_deref()
        .map(crate::fleet::load::load_fleet)
        .transpose()?;
    let window_given = a.since.is_some() || a.from.is_some() || a.to.is_some();
    if !a.snapshots.is_empty() {
        // The headers first: window and fleet before any job is counted.
        let mut headers: Vec<Header> = Vec::new();
        for p in &a.snapshots {
            headers.push(read_header(p)?);
        }
        let span = if window_given {
            source::window(
                a.since.as_deref(),
                a.from.as_deref(),
                a.to.as_deref(),
                t_now,
            )?
        } else {
            Span {
                from: headers.iter().map(|h| h.window.from).min().unwrap_or(0),
                to: headers.iter().map(|h| h.window.to).max().unwrap_or(0),
            }
        };
        let fleet: Vec<FleetRunner> = match file_fleet {
            Some(f) => f,
            None => {
                let mut all: Vec<FleetRunner> = Vec::new();
                for h in &headers {
                    for r in &h.runners {
                        if !all.iter().any(|x| x.id() == r.id()) {
                            all.push(r.clone());
                        }
                    }
                }
                all
            }
        };
        let project = headers
            .iter()
            .map(|h| h.project.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let default_branch = a
            .default_branch
            .clone()
            .or_else(|| headers.iter().find_map(|h| h.default_branch.clone()));
        let (mut agg, notes, forecast) = aggregator(
            span,
            (!fleet.is_empty()).then_some(fleet.as_slice()),
            &config,
            default_branch,
        );
        let sim_opts = crate::fleet::simulate::Options {
            default_branch: a
                .default_branch
                .clone()
                .or_else(|| headers.iter().find_map(|h| h.default_branch.clone())),
            ..Default::default()
        };
        let mut sim = (!fleet.is_empty()).then(|| {
            crate::fleet::simulate::Builder::new(
                &fleet,
                &config.priority,
                &config.routing,
                sim_opts,
            )
        });
        let mut requests = 0;
        let mut tests = super::flaky_tests::TestAggregator::new();
        for p in &a.snapshots {
            source::read(p, |rec| match rec {
                Record::Job { job } => {
                    if let Some(b) = sim.as_mut() {
                        b.add(&job);
                    }
                    agg.add(&job)
                }
                Record::Category { job, category } => agg.set_category(job, category),
                Record::TestReport {
                    pipeline,
                    web_url,
                    report,
                } => tests.add(&super::flaky_tests::PipelineReport {
                    pipeline,
                    web_url: web_url.as_deref(),
                    report: &report,
                }),
                Record::End { requests: r, .. } => requests += r,
                Record::Header(_) => {}
            })?;
        }
        let names: Vec<String> = a
            .snapshots
            .iter()
            .map(|p| {
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let mut data = agg.finish();
        let branch = a
            .default_branch
            .clone()
            .or_else(|| headers.iter().find_map(|h| h.default_branch.clone()));
        set_flaky_tests(&mut data, tests, branch);
        return Ok(Gathered {
            project,
            span,
            data,
            source: format!("snapshot {}", names.join(", ")),
            requests,
            notes,
            forecast,
            impact: sim.map(crate::fleet::simulate::Builder::finish),
        });
    }
    if let Some(group) = a.group.as_deref() {
        let span = source::window(
            a.since.as_deref(),
            a.from.as_deref(),
            a.to.as_deref(),
            t_now,
        )?;
        return gather_group(a, group, span, &config, file_fleet);
    }
    let project = project_of(a)?;
    let span = source::window(
        a.since.as_deref(),
        a.from.as_deref(),
        a.to.as_deref(),
        t_now,
    )?;
    let c = client(a.gitlab_url.clone())?;
    let default_branch = a.default_branch.clone().or_else(|| {
        c.get_json::<serde_json::Value>(&format!("/projects/{}", project_ref(&project)), &[])
            .ok()
            .and_then(|v| v["default_branch"].as_str().map(str::to_string))
    });
    let mut branch_pipelines = BranchPipelines::new(default_branch.clone());
    let (mut agg, mut notes, forecast) =
        aggregator(span, file_fleet.as_deref(), &config, default_branch.clone());
    let sim_opts = crate::fleet::simulate::Options {
        default_branch: a.default_branch.clone(),
        ..Default::default()
    };
    let mut sim = file_fleet.as_deref().map(|f| {
        crate::fleet::simulate::Builder::new(f, &config.priority, &config.routing, sim_opts)
    });
    let mut sample: Vec<u64> = Vec::new();
    let fetched = source::fetch_jobs(&c, &project, span, a.max_pages, a.quiet, |j| {
        if j.failure_reason.as_deref() == Some("script_failure") && sample.len() < a.traces {
            sample.push(j.id);
        }
        if let Some(b) = sim.as_mut() {
            b.add(&j);
        }
        branch_pipelines.add(&j);
        agg.add(&j);
    })
    .with_context(|| format!("could not read the jobs of project {project}"))?;
    if fetched.truncated && !a.quiet {
        eprintln!(
            "runneriq: warning: stopped after {} pages ({} jobs) before the window's start \
             (--max-pages)",
            fetched.pages, fetched.jobs
        );
    }
    for (id, cat) in classify_sample(&c, &project, &sample) {
        agg.set_category(id, cat);
    }
    // The flakiest tests: the default branch's newest pipelines' reports.
    let mut tests = super::flaky_tests::TestAggregator::new();
    let read = source::fetch_test_reports(
        &c,
        &project,
        &branch_pipelines.newest(),
        a.test_reports,
        |pipeline, web_url, report| {
            tests.add(&super::flaky_tests::PipelineReport {
                pipeline,
                web_url: web_url.as_deref(),
                report: &report,
            });
        },
    );
    notes.extend(read.warnings);
    let mut data = agg.finish();
    set_flaky_tests(&mut data, tests, default_branch);
    let requests = c.request_count();
    Ok(Gathered {
        project,
        span,
        data,
        source: format!("GitLab API, {requests} requests"),
        requests,
        notes,
        forecast,
        impact: sim.map(crate::fleet::simulate::Builder::finish),
    })
}

/// The default branch's pipelines seen while the window's jobs stream in
/// (id → page), the newest [`MAX_BRANCH_PIPELINES`] kept.
#[derive(Default)]
struct BranchPipelines {
    branch: Option<String>,
    seen: std::collections::BTreeMap<u64, Option<String>>,
}

const MAX_BRANCH_PIPELINES: usize = 1000;

impl BranchPipelines {
    fn new(branch: Option<String>) -> BranchPipelines {
        BranchPipelines {
            branch,
            seen: Default::default(),
        }
    }
    fn add(&mut self, j: &Job) {
        if self.branch.as_deref() != Some(j.git_ref.as_str()) {
            return;
        }
        let Some(p) = j.pipeline.as_ref() else { return };
        // The pipeline's page: GitLab's, else the job's page with the
        // pipeline in place of the job.
        let url = p.web_url.clone().or_else(|| {
            let (base, _) = j.web_url.as_deref()?.rsplit_once("/-/jobs/")?;
            Some(format!("{base}/-/pipelines/{}", p.id))
        });
        self.seen.entry(p.id).or_insert(url);
        if self.seen.len() > MAX_BRANCH_PIPELINES {
            self.seen.pop_first();
        }
    }
    /// Newest first.
    fn newest(&self) -> Vec<(u64, Option<String>)> {
        self.seen
            .iter()
            .rev()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}

/// Streams the reports into the flakiest-tests aggregator and puts its
/// result into `data`.
fn set_flaky_tests(
    data: &mut super::metrics::ReportData,
    agg: super::flaky_tests::TestAggregator,
    branch: Option<String>,
) {
    data.test_pipelines = agg.pipelines();
    data.flaky_tests = agg.finish(super::flaky_tests::SHOWN);
    data.test_branch = branch;
}

fn read_header(p: &Path) -> anyhow::Result<Header> {
    // Reading stops being useful after the first line: errors from the rest
    // of the file are reported by the full read later.
    let file = std::fs::File::open(p).map_err(|e| {
        input(format!(
            "{}: cannot read the snapshot: {}",
            p.display(),
            crate::input::io_reason(&e)
        ))
    })?;
    let mut r = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let mut line = Vec::new();
    std::io::BufRead::read_until(&mut std::io::Read::take(&mut r, 64 << 20), b'\n', &mut line)
        .map_err(|e| {
            input(format!(
                "{}: not a RunnerIQ snapshot (.json.gz) or damaged: {}",
                p.display(),
                crate::input::io_reason(&e)
            ))
        })?;
    match serde_json::from_slice::<Record>(&line) {
        Ok(Record::Header(h)) if h.version == SNAPSHOT_VERSION => Ok(h),
        Ok(Record::Header(h)) => Err(input(format!(
            "{}: snapshot version {} (this RunnerIQ reads version {SNAPSHOT_VERSION})",
            p.display(),
            h.version
        ))),
        Ok(_) => Err(input(format!(
            "{}: line 1: a snapshot starts with its header",
            p.display()
        ))),
        Err(e) => Err(input(format!("{}: line 1: {e}", p.display()))),
    }
}

/// The report issue of `week` and of the week before, found by label, author
/// (the token's user) and marker.
fn find_issues(
    c: &Client,
    project: &str,
    label: &str,
    week: &str,
    prev_week: &str,
    me: &crate::publish::Me,
) -> anyhow::Result<(Option<Issue>, Option<Issue>)> {
    let path = format!("/projects/{}/issues", project_ref(project));
    let issues: Vec<Issue> = c
        .get_all(
            &path,
            &[
                ("labels", label.to_string()),
                ("state", "all".to_string()),
                ("order_by", "created_at".to_string()),
                ("sort", "desc".to_string()),
            ],
            MAX_ISSUE_PAGES,
        )
        .with_context(|| format!("could not list the issues labelled {label}"))?;
    let marker = |w: &str| format!("{}week={w} -->", render::MARKER_PREFIX);
    let find = |w: &str| {
        issues
            .iter()
            .find(|i| {
                i.author.as_ref().is_some_and(|a| a.id == me.id)
                    && i.description
                        .as_deref()
                        .is_some_and(|d| d.lines().next() == Some(marker(w).as_str()))
            })
            .cloned()
    };
    Ok((find(week), find(prev_week)))
}

#[derive(Serialize)]
struct NewIssue<'a> {
    title: &'a str,
    description: &'a str,
    labels: String,
}

#[derive(Serialize)]
struct EditIssue<'a> {
    title: &'a str,
    description: &'a str,
}

/// Options of `runneriq report`.
pub struct ReportOptions {
    pub history: HistoryArgs,
    /// The tag bridge's audit log, for its activity in the window.
    pub audit: Option<PathBuf>,
    pub format: ReportFormat,
    pub publish: bool,
    pub dry_run: bool,
    pub output: Option<PathBuf>,
    pub labels: Vec<String>,
    /// `--charts` (resolved against the GitLab version when `auto`).
    pub charts: ChartMode,
}

fn write_out(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(p) => crate::input::write_atomically(p, text.as_bytes()),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(e).context("writing output")
                }
                _ => Ok(()),
            }
        }
    }
}

/// `runneriq report`.
fn tag_bridge(o: &ReportOptions, span: Span) -> anyhow::Result<Option<render::TagBridge>> {
    let Some(path) = &o.audit else {
        return Ok(None);
    };
    if !path.exists() {
        // The first run of a schedule has no audit artifact yet.
        return Ok(None);
    }
    let (entries, warnings) = crate::fleet::audit::read(path, Some(span.from))?;
    for w in warnings {
        eprintln!("runneriq: warning: {w}");
    }
    Ok(Some(render::TagBridge::of(&entries, span.to)))
}

pub fn run_report(o: ReportOptions) -> anyhow::Result<ExitCode> {
    let g = gather(&o.history)?;
    let bridge = tag_bridge(&o, g.span)?;
    // Only Markdown draws Mermaid: no version request for JSON or HTML.
    let charts = if o.publish || o.format == ReportFormat::Md {
        resolve_charts(o.charts, o.history.gitlab_url.as_deref())
    } else {
        ChartMode::Xychart
    };
    if !o.publish {
        let mut r = report(&g, false, None, None);
        r.tag_bridge = bridge;
        r.charts = charts;
        write_out(o.output.as_deref(), &render(&r, o.format)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let project = project_of(&o.history)?;
    let c = client(o.history.gitlab_url.clone())?;
    let week = render::iso_week(g.span.to - 1);
    let prev_week = render::iso_week(g.span.to - 1 - 7 * 86_400);
    let label = o.labels.first().map_or("runneriq-report", String::as_str);
    // Only issues the token's own user opened are ours: anybody who can
    // label an issue could otherwise have theirs edited or their figures
    // taken for last week's.
    let me = crate::publish::whoami(&c).map_err(|e| publish_error(&e))?;
    let (this, prev) = find_issues(&c, &project, label, &week, &prev_week, &me)?;
    let previous = prev
        .as_ref()
        .and_then(|i| i.description.as_deref())
        .and_then(Summary::from_body);
    let mut r = report(
        &g,
        false,
        previous,
        prev.as_ref().and_then(|i| i.web_url.clone()),
    );
    r.tag_bridge = bridge;
    r.charts = charts;
    let body = render::markdown(&r);
    if o.output.is_some() || o.format != ReportFormat::Md {
        write_out(o.output.as_deref(), &render(&r, o.format)?)?;
    }
    let title = format!("RunnerIQ weekly report — {week}");
    if o.dry_run {
        if o.output.is_none() && o.format == ReportFormat::Md {
            write_out(None, &body)?;
        }
        eprintln!(
            "runneriq: dry run: would {} the issue \"{title}\" ({} characters)",
            if this.is_some() { "update" } else { "create" },
            body.chars().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let path = format!("/projects/{}/issues", project_ref(&project));
    match this {
        Some(issue) => {
            let _: serde_json::Value = c
                .put_json(
                    &format!("{path}/{}", issue.iid),
                    &EditIssue {
                        title: &title,
                        description: &body,
                    },
                )
                .map_err(|e| publish_error(&e))?;
            eprintln!("runneriq: updated issue #{} ({title})", issue.iid);
        }
        None => {
            let issue: Issue = c
                .post_json(
                    &path,
                    &NewIssue {
                        title: &title,
                        description: &body,
                        labels: o.labels.join(","),
                    },
                )
                .map_err(|e| publish_error(&e))?;
            eprintln!("runneriq: opened issue #{} ({title})", issue.iid);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn publish_error(e: &crate::gitlab::ApiError) -> anyhow::Error {
    anyhow::anyhow!(
        "could not publish the report ({} {}): {} — the token needs the `api` scope and the \
         Reporter role to create or edit issues",
        e.method(),
        e.endpoint(),
        crate::gitlab::error::summary(e)
    )
}

/// `runneriq snapshot`: what `report` would read, saved (gzip JSON Lines).
pub fn run_snapshot(a: &HistoryArgs, output: &Path) -> anyhow::Result<ExitCode> {
    let project = project_of(a)?;
    let span = source::window(
        a.since.as_deref(),
        a.from.as_deref(),
        a.to.as_deref(),
        now(),
    )?;
    let runners = a
        .fleet
        .as_deref()
        .map(crate::fleet::load::load_fleet)
        .transpose()?
        .unwrap_or_default();
    let c = client(a.gitlab_url.clone())?;
    let default_branch = a.default_branch.clone().or_else(|| {
        c.get_json::<serde_json::Value>(&format!("/projects/{}", project_ref(&project)), &[])
            .ok()
            .and_then(|v| v["default_branch"].as_str().map(str::to_string))
    });
    let header = Header {
        version: SNAPSHOT_VERSION,
        project: project.clone(),
        window: span,
        fetched_at: now(),
        default_branch,
        runners,
    };
    let name = output
        .file_name()
        .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
    let tmp = output.with_file_name(format!(".{name}.runneriq-tmp"));
    let fail = |e: std::io::Error| {
        input(format!(
            "{}: cannot write: {}",
            output.display(),
            crate::input::io_reason(&e)
        ))
    };
    let file = std::fs::File::create(&tmp).map_err(fail)?;
    let mut w = source::Writer::new(std::io::BufWriter::new(file), &header).map_err(fail)?;
    let mut sample: Vec<u64> = Vec::new();
    let mut write_err: Option<std::io::Error> = None;
    let mut branch_pipelines = BranchPipelines::new(header.default_branch.clone());
    let fetched = source::fetch_jobs(&c, &project, span, a.max_pages, a.quiet, |j: Job| {
        if j.failure_reason.as_deref() == Some("script_failure") && sample.len() < a.traces {
            sample.push(j.id);
        }
        branch_pipelines.add(&j);
        if write_err.is_none() {
            if let Err(e) = w.job(&j) {
                write_err = Some(e);
            }
        }
    });
    let result = (|| -> anyhow::Result<u64> {
        let fetched =
            fetched.with_context(|| format!("could not read the jobs of project {project}"))?;
        if let Some(e) = write_err.take() {
            return Err(fail(e));
        }
        for (id, category) in classify_sample(&c, &project, &sample) {
            w.record(&Record::Category { job: id, category })
                .map_err(fail)?;
        }
        let mut test_err: Option<std::io::Error> = None;
        let read = source::fetch_test_reports(
            &c,
            &project,
            &branch_pipelines.newest(),
            a.test_reports,
            |pipeline, web_url, report| {
                if test_err.is_none() {
                    let rec = Record::TestReport {
                        pipeline,
                        web_url,
                        report: Box::new(source::trim_report(&report)),
                    };
                    if let Err(e) = w.record(&rec) {
                        test_err = Some(e);
                    }
                }
            },
        );
        if let Some(e) = test_err {
            return Err(fail(e));
        }
        for warning in read.warnings {
            eprintln!("runneriq: warning: {warning}");
        }
        w.record(&Record::End {
            requests: c.request_count(),
            jobs: fetched.jobs,
        })
        .map_err(fail)?;
        Ok(fetched.jobs)
    })();
    let jobs = match result {
        Ok(j) => j,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let mut buf = w.finish().map_err(fail)?;
    std::io::Write::flush(&mut buf).map_err(fail)?;
    drop(buf);
    std::fs::rename(&tmp, output).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })?;
    eprintln!(
        "runneriq: wrote {} ({jobs} jobs, {} API requests)",
        output.display(),
        c.request_count()
    );
    Ok(ExitCode::SUCCESS)
}
