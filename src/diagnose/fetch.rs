//! What a diagnosis reads from GitLab, and the sorting of a pipeline's jobs.
//!
//! The number of API requests grows with the number of failed jobs, not with the
//! project: one listing per pipeline (jobs with their retries, bridges), one trace
//! per failed job, a bounded number of diff pages. Traces are streamed straight
//! into the classifier (never held in memory) by a small pool of threads, so a
//! pipeline with a dozen failures does not take a dozen round trips in a row.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{self, BufReader};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use crate::classify::{self, Catalog, Classification, ClassifyOptions};
use crate::gitlab::models::{Bridge, Job, MergeRequest};
use crate::gitlab::{ApiError, Client, project_ref};

/// Child and multi-project pipelines are followed this many levels down.
pub const MAX_DEPTH: u8 = 3;
/// At most this many pipelines are read (the root included), whatever the fan-out.
const MAX_PIPELINES: usize = 25;
/// 2,000 jobs per pipeline, retries included.
const MAX_JOB_PAGES: usize = 20;
const MAX_BRIDGE_PAGES: usize = 3;
/// 500 changed files are plenty to correlate against.
const MAX_DIFF_PAGES: usize = 5;
/// Concurrent trace downloads.
pub const TRACE_WORKERS: usize = 4;
/// Read buffer for a streamed trace.
const TRACE_BUFFER: usize = 64 * 1024;

/// One pipeline of the tree: the root, or a downstream pipeline found through a
/// bridge (trigger job).
#[derive(Debug, Clone)]
pub struct PipelineRun {
    /// Project id or path, as API paths take it (not yet encoded).
    pub project: String,
    pub pipeline_id: u64,
    /// 0 for the root pipeline.
    pub depth: u8,
    /// The bridge that started this pipeline, for downstream pipelines.
    pub via: Option<String>,
    pub web_url: Option<String>,
    /// Every job, earlier attempts included; failed bridges that never created
    /// their downstream pipeline are added as jobs (they have no trace).
    pub jobs: Vec<Job>,
    /// Ids in `jobs` that are bridges.
    pub bridge_ids: HashSet<u64>,
    /// GitLab had more jobs than we read.
    pub truncated: bool,
}

/// The root pipeline and its downstream pipelines, parents before children.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub runs: Vec<PipelineRun>,
    /// What could not be read (a downstream pipeline the token cannot see, ...).
    pub warnings: Vec<String>,
}

fn jobs_of(client: &Client, project: &str, pipeline: u64) -> Result<(Vec<Job>, bool), ApiError> {
    let path = format!(
        "/projects/{}/pipelines/{pipeline}/jobs",
        project_ref(project)
    );
    let page = client.get_pages::<Job>(
        &path,
        &[("include_retried", "true".to_string())],
        MAX_JOB_PAGES,
    )?;
    Ok((page.items, page.truncated))
}

fn bridges_of(client: &Client, project: &str, pipeline: u64) -> Result<Vec<Bridge>, ApiError> {
    let path = format!(
        "/projects/{}/pipelines/{pipeline}/bridges",
        project_ref(project)
    );
    client.get_all(&path, &[], MAX_BRIDGE_PAGES)
}

/// A failed bridge with no downstream pipeline, as a job without a trace.
fn bridge_as_job(b: &Bridge) -> Job {
    Job {
        id: b.id,
        name: b.name.clone(),
        stage: b.stage.clone(),
        status: b.status.clone(),
        git_ref: b.git_ref.clone(),
        allow_failure: b.allow_failure,
        failure_reason: b.failure_reason.clone(),
        web_url: b.web_url.clone(),
        pipeline: b.pipeline.clone(),
        ..Job::default()
    }
}

/// Reads the pipeline's jobs (with retries) and, through its bridges, its
/// downstream pipelines down to [`MAX_DEPTH`]. Only the root's job list is
/// required: a downstream pipeline that cannot be read becomes a warning.
pub fn pipeline_tree(client: &Client, project: &str, pipeline: u64) -> Result<Tree, ApiError> {
    let mut tree = Tree::default();
    let mut queue: VecDeque<(String, u64, u8, Option<String>)> = VecDeque::new();
    queue.push_back((project.to_string(), pipeline, 0, None));
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    while let Some((proj, pid, depth, via)) = queue.pop_front() {
        if !seen.insert((proj.clone(), pid)) {
            continue;
        }
        if tree.runs.len() >= MAX_PIPELINES {
            tree.warnings.push(format!(
                "only the first {MAX_PIPELINES} pipelines of the tree were read"
            ));
            break;
        }
        let (jobs, truncated) = match jobs_of(client, &proj, pid) {
            Ok(j) => j,
            Err(e) if depth == 0 => return Err(e),
            Err(e) => {
                tree.warnings.push(format!(
                    "downstream pipeline #{pid} (project {proj}) could not be read: {}",
                    crate::gitlab::error::summary(&e)
                ));
                continue;
            }
        };
        let bridges = match bridges_of(client, &proj, pid) {
            Ok(b) => b,
            Err(e) => {
                tree.warnings.push(format!(
                    "the trigger jobs of pipeline #{pid} could not be read, so its child \
                     pipelines were not checked: {}",
                    crate::gitlab::error::summary(&e)
                ));
                Vec::new()
            }
        };
        let web_url = jobs
            .iter()
            .find_map(|j| j.pipeline.as_ref().and_then(|p| p.web_url.clone()));
        let mut run = PipelineRun {
            project: proj.clone(),
            pipeline_id: pid,
            depth,
            via,
            web_url,
            jobs,
            bridge_ids: HashSet::new(),
            truncated,
        };
        for b in &bridges {
            match &b.downstream_pipeline {
                Some(d) if d.id != 0 => {
                    if depth < MAX_DEPTH {
                        let child_project = d
                            .project_id
                            .map(|id| id.to_string())
                            .unwrap_or_else(|| proj.clone());
                        queue.push_back((child_project, d.id, depth + 1, Some(b.name.clone())));
                    } else if b.status == "failed" {
                        tree.warnings.push(format!(
                            "pipeline #{} (started by `{}`) is more than {MAX_DEPTH} levels \
                             down and was not read",
                            d.id, b.name
                        ));
                    }
                }
                _ => {
                    if b.status == "failed" {
                        run.bridge_ids.insert(b.id);
                        run.jobs.push(bridge_as_job(b));
                    }
                }
            }
        }
        tree.runs.push(run);
    }
    Ok(tree)
}

/// A job picked for the note, with where it ran.
#[derive(Debug, Clone)]
pub struct PickedJob {
    /// Index into [`Tree::runs`].
    pub run: usize,
    /// The latest attempt.
    pub job: Job,
    pub attempts: u32,
    pub failed_attempts: u32,
    pub is_bridge: bool,
}

/// A failed job's suite in its pipeline's test report (failing cases only).
#[derive(Debug, Clone)]
pub struct JobSuite {
    pub suite: crate::gitlab::test_report::TestSuite,
    /// The pipeline's Tests tab.
    pub tests_url: Option<String>,
}

/// What the pipelines' unit test reports say about the failed jobs.
#[derive(Debug, Clone, Default)]
pub struct TestReports {
    /// In the order of `Partition::failed`: the job's suite, when its
    /// pipeline's report has failing tests for it.
    pub per_job: Vec<Option<JobSuite>>,
    pub warnings: Vec<String>,
}

/// The failed jobs' suites from their pipelines' unit test reports. Per
/// pipeline with a failed job: the summary first (a 404 or a report without
/// failures ends it: one request, and the jobs are read from their logs as
/// before), then the full report only when a failed job's suite has
/// failing tests. An unreadable or malformed answer is a warning naming the
/// endpoint; those jobs keep their log-only diagnosis.
pub fn test_reports(client: &Client, tree: &Tree, parts: &Partition) -> TestReports {
    use crate::diagnose::junit;
    use crate::gitlab::test_report::{TestReport, TestReportSummary};
    let mut out = TestReports {
        per_job: vec![None; parts.failed.len()],
        warnings: Vec::new(),
    };
    for (ri, run) in tree.runs.iter().enumerate() {
        let failed: Vec<usize> = parts
            .failed
            .iter()
            .enumerate()
            .filter(|(_, p)| p.run == ri && !p.is_bridge)
            .map(|(i, _)| i)
            .collect();
        if failed.is_empty() {
            continue;
        }
        let base = format!(
            "/projects/{}/pipelines/{}",
            project_ref(&run.project),
            run.pipeline_id
        );
        let summary: TestReportSummary =
            match client.get_json(&format!("{base}/test_report_summary"), &[]) {
                Ok(s) => s,
                // No report (or none this token may read): today's diagnosis.
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    out.warnings.push(format!(
                        "the unit test report of pipeline #{} could not be read ({e}): its \
                         failed jobs are diagnosed from their logs",
                        run.pipeline_id
                    ));
                    continue;
                }
            };
        if !junit::has_failures(&summary) {
            continue;
        }
        let wanted: Vec<(usize, String)> = failed
            .iter()
            .filter_map(|&i| {
                let j = &parts.failed[i].job;
                junit::suite_of(&summary, j.id, &j.name)
                    .filter(|s| s.failed_count + s.error_count > 0 && s.suite_error.is_none())
                    .map(|s| (i, s.name.clone()))
            })
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let report: TestReport = match client.get_json(&format!("{base}/test_report"), &[]) {
            Ok(r) => r,
            Err(e) => {
                out.warnings.push(format!(
                    "the unit test report of pipeline #{} could not be read ({e}): its failed \
                     jobs are diagnosed from their logs",
                    run.pipeline_id
                ));
                continue;
            }
        };
        let tests_url = run
            .web_url
            .as_deref()
            .map(|u| format!("{}/test_report", u.trim_end_matches('/')));
        for (i, name) in wanted {
            let suite = report
                .test_suites
                .iter()
                .find(|s| s.name == name && s.suite_error.is_none());
            if let Some(s) = suite.filter(|s| !s.test_cases.failing.is_empty()) {
                out.per_job[i] = Some(JobSuite {
                    suite: s.clone(),
                    tests_url: tests_url.clone(),
                });
            }
        }
    }
    out
}

/// The pipeline's jobs sorted into what the note reports.
#[derive(Debug, Clone, Default)]
pub struct Partition {
    /// Latest attempt failed, failure not allowed.
    pub failed: Vec<PickedJob>,
    /// Latest attempt succeeded after at least one failed attempt.
    pub passed_on_retry: Vec<PickedJob>,
    /// Latest attempt failed with `allow_failure: true`.
    pub allowed_failures: Vec<PickedJob>,
    /// Jobs not finished yet (created, pending, running, ...).
    pub unfinished: usize,
}

fn is_unfinished(status: &str) -> bool {
    matches!(
        status,
        "created" | "pending" | "running" | "preparing" | "waiting_for_resource" | "scheduled"
    )
}

/// Groups attempts by (pipeline, job name): GitLab has no `retried` field, a
/// retry is another job with the same name, and the highest id is the latest.
/// `exclude` is the diagnose job itself: all its attempts are left out (an
/// earlier attempt that could not post is not a finding); the component's
/// green-pipeline job `<name>-resolve` also leaves out `<name>`, the failure
/// job of the same component. Output is ordered by
/// pipeline, then by job id, so the note does not depend on the API's order.
pub fn partition(runs: &[PipelineRun], exclude: Option<u64>) -> Partition {
    let mut out = Partition::default();
    for (ri, run) in runs.iter().enumerate() {
        let excluded_name = run
            .jobs
            .iter()
            .find(|j| Some(j.id) == exclude)
            .map(|j| j.name.as_str());
        let sibling = excluded_name.and_then(|n| n.strip_suffix("-resolve"));
        let mut by_name: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
        for j in &run.jobs {
            let name = Some(j.name.as_str());
            if Some(j.id) == exclude || name == excluded_name || name == sibling {
                continue;
            }
            by_name.entry(j.name.as_str()).or_default().push(j);
        }
        let mut picked: Vec<(u8, PickedJob)> = Vec::new();
        for attempts in by_name.values() {
            let Some(latest) = attempts.iter().max_by_key(|j| j.id) else {
                continue;
            };
            let failed_attempts = attempts.iter().filter(|j| j.status == "failed").count() as u32;
            let p = PickedJob {
                run: ri,
                job: (*latest).clone(),
                attempts: attempts.len() as u32,
                failed_attempts,
                is_bridge: run.bridge_ids.contains(&latest.id),
            };
            match latest.status.as_str() {
                "failed" if latest.allow_failure => picked.push((2, p)),
                "failed" => picked.push((0, p)),
                "success" if failed_attempts > 0 => picked.push((1, p)),
                s if is_unfinished(s) => out.unfinished += 1,
                _ => {}
            }
        }
        picked.sort_by_key(|(_, p)| p.job.id);
        for (kind, p) in picked {
            match kind {
                0 => out.failed.push(p),
                1 => out.passed_on_retry.push(p),
                _ => out.allowed_failures.push(p),
            }
        }
    }
    out
}

/// What reading one job's trace gave.
#[derive(Debug, Clone)]
pub enum TraceOutcome {
    Classified(Box<Classification>),
    /// One sentence fragment: why the log could not be read.
    Unreadable(String),
}

/// One trace to read: where, and what GitLab said about the failure.
#[derive(Debug, Clone)]
pub struct TraceTask {
    pub project: String,
    pub job_id: u64,
    pub failure_reason: Option<String>,
    /// False for bridges: they have no log, `failure_reason` is all there is.
    pub has_trace: bool,
}

/// How much of each trace is read. GitLab streams a running job's trace as
/// it grows, and a hostile or broken server can send one that never ends:
/// every trace gets a size and a time budget, and the run's deadline caps
/// them all.
#[derive(Debug, Clone, Copy)]
pub struct TraceLimits {
    /// Bytes read per trace. gitlab-runner cuts logs at its `output_limit`
    /// (4 MiB unless raised), so a default-configured runner's logs always
    /// fit.
    pub max_bytes: u64,
    /// Time to read one trace, headers to last byte.
    pub timeout: std::time::Duration,
    /// No trace is read past this instant (the run's analysis deadline).
    pub deadline: Option<std::time::Instant>,
}

/// 16 MiB.
pub const DEFAULT_TRACE_MAX_BYTES: u64 = 16 << 20;
pub const DEFAULT_TRACE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for TraceLimits {
    fn default() -> Self {
        TraceLimits {
            max_bytes: DEFAULT_TRACE_MAX_BYTES,
            timeout: DEFAULT_TRACE_TIMEOUT,
            deadline: None,
        }
    }
}

/// Where a budgeted read stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Bytes,
    Time,
}

/// A reader that ends (EOF) at a byte budget or a deadline, and remembers
/// which, so the classifier finishes on what was read.
struct Budgeted<R> {
    inner: R,
    left: u64,
    until: std::time::Instant,
    cut: Option<Cut>,
}

impl<R: io::Read> io::Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cut.is_some() || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            self.cut = Some(Cut::Bytes);
            return Ok(0);
        }
        if std::time::Instant::now() >= self.until {
            self.cut = Some(Cut::Time);
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            // The transport's body budget (the same deadline) ran out.
            Err(_)
                if std::time::Instant::now() + std::time::Duration::from_millis(250)
                    >= self.until =>
            {
                self.cut = Some(Cut::Time);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}

/// `16 MiB`, `64 KiB`, `1000 bytes`.
fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Streams the trace at `path` into the classifier within `limits`. A trace
/// cut by a budget is still classified, with [`crate::classify::LogFacts::incomplete`]
/// saying why. `Err`: why nothing usable could be read.
pub fn read_trace(
    client: &Client,
    path: &str,
    catalog: &Catalog,
    opts: &ClassifyOptions,
    limits: &TraceLimits,
) -> Result<Classification, String> {
    let now = std::time::Instant::now();
    let mut budget = limits.timeout;
    if let Some(d) = limits.deadline {
        budget = budget.min(d.saturating_duration_since(now));
    }
    if budget.is_zero() {
        return Err("not read: the run's time budget was used up before it".to_string());
    }
    let reader = client
        .get_reader(path, Some(budget))
        .map_err(|e| crate::gitlab::error::summary(&e))?;
    let mut budgeted = BufReader::with_capacity(
        TRACE_BUFFER,
        Budgeted {
            inner: reader,
            left: limits.max_bytes,
            until: now + budget,
            cut: None,
        },
    );
    let mut c = classify::classify_reader(&mut budgeted, catalog, opts)
        .map_err(|e| format!("the download broke off: {}", crate::input::io_reason(&e)))?;
    c.log.incomplete = match budgeted.get_ref().cut {
        None => None,
        Some(Cut::Bytes) => Some(format!(
            "only its first {} were read (the trace size limit)",
            size_text(limits.max_bytes)
        )),
        Some(Cut::Time) => Some(format!(
            "reading it took longer than {} s, so only its first {} were read",
            budget.as_secs_f64().ceil(),
            size_text(c.log.bytes)
        )),
    };
    Ok(c)
}

fn classify_one(
    client: &Client,
    task: &TraceTask,
    catalog: &Catalog,
    opts: &ClassifyOptions,
    limits: &TraceLimits,
) -> TraceOutcome {
    if !task.has_trace {
        return match classify::classify_reader(io::empty(), catalog, opts) {
            Ok(c) => TraceOutcome::Classified(Box::new(c)),
            Err(e) => TraceOutcome::Unreadable(crate::input::io_reason(&e)),
        };
    }
    let path = format!(
        "/projects/{}/jobs/{}/trace",
        project_ref(&task.project),
        task.job_id
    );
    match read_trace(client, &path, catalog, opts, limits) {
        Ok(c) => TraceOutcome::Classified(Box::new(c)),
        Err(why) => TraceOutcome::Unreadable(why),
    }
}

/// Classifies the traces of `tasks` with `workers` threads; results are in the
/// order of `tasks`. A trace that cannot be read is an outcome, not an error:
/// the note still lists that job. `tail_lines` of each log's end are kept
/// for the LLM fallback (0 when it is off).
pub fn classify_traces(
    client: &Client,
    tasks: &[TraceTask],
    catalog: &Catalog,
    max_evidence: usize,
    workers: usize,
    tail_lines: usize,
    limits: &TraceLimits,
) -> Vec<TraceOutcome> {
    let results: Vec<Mutex<Option<TraceOutcome>>> =
        tasks.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = workers.clamp(1, tasks.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(task) = tasks.get(i) else { break };
                    let opts = ClassifyOptions {
                        max_evidence,
                        failure_reason: task.failure_reason.clone(),
                        tail_lines,
                        dump_candidates: false,
                    };
                    let outcome = classify_one(client, task, catalog, &opts, limits);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| TraceOutcome::Unreadable("it was not fetched".to_string()))
        })
        .collect()
}

/// Only the paths of a diff entry: the hunks (possibly megabytes) are skipped
/// by the parser instead of being copied.
#[derive(Debug, Deserialize)]
struct DiffPaths {
    #[serde(default)]
    old_path: String,
    #[serde(default)]
    new_path: String,
    #[serde(default)]
    renamed_file: bool,
    #[serde(default)]
    deleted_file: bool,
}

/// The files a change touched.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub paths: Vec<String>,
    /// "merge request !7" or "commit 0123abcd".
    pub source: Option<String>,
    pub truncated: bool,
    /// Why no diff could be read, when none could.
    pub error: Option<String>,
}

fn collect_paths(items: Vec<DiffPaths>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in items {
        for (p, keep) in [
            (d.new_path, true),
            (d.old_path, d.renamed_file || d.deleted_file),
        ] {
            if keep && !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Changed paths of the merge request, else of the commit. Never fails: a diff
/// that cannot be read only means no "your change" claims.
pub fn changed_paths(
    client: &Client,
    project: &str,
    mr: Option<u64>,
    sha: Option<&str>,
) -> Changes {
    let mut errors: Vec<String> = Vec::new();
    if let Some(iid) = mr {
        let path = format!(
            "/projects/{}/merge_requests/{iid}/diffs",
            project_ref(project)
        );
        match client.get_pages::<DiffPaths>(&path, &[], MAX_DIFF_PAGES) {
            Ok(page) => {
                return Changes {
                    paths: collect_paths(page.items),
                    source: Some(format!("merge request !{iid}")),
                    truncated: page.truncated,
                    error: None,
                };
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if let Some(sha) = sha {
        let path = format!(
            "/projects/{}/repository/commits/{}/diff",
            project_ref(project),
            project_ref(sha)
        );
        match client.get_pages::<DiffPaths>(&path, &[], MAX_DIFF_PAGES) {
            Ok(page) => {
                return Changes {
                    paths: collect_paths(page.items),
                    source: Some(format!("commit {}", short_sha(sha))),
                    truncated: page.truncated,
                    error: None,
                };
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Changes {
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        ..Changes::default()
    }
}

/// The first 8 characters of a commit SHA, as GitLab shows it.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..8).unwrap_or(sha)
}

/// The open merge request whose source branch has `sha`, if any (one request).
/// Prefers the MR whose head is that very commit.
pub fn open_mr_for_commit(
    client: &Client,
    project: &str,
    sha: &str,
) -> Result<Option<u64>, ApiError> {
    let path = format!(
        "/projects/{}/repository/commits/{}/merge_requests",
        project_ref(project),
        project_ref(sha)
    );
    let mrs: Vec<MergeRequest> = client.get_all(&path, &[], 1)?;
    let open: Vec<&MergeRequest> = mrs.iter().filter(|m| m.state == "opened").collect();
    Ok(open
        .iter()
        .find(|m| m.sha.as_deref() == Some(sha))
        .or_else(|| open.first())
        .map(|m| m.iid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budgeted_read_ends_at_its_byte_budget() {
        let data = vec![b'x'; 10_000];
        let mut r = Budgeted {
            inner: std::io::Cursor::new(data),
            left: 4096,
            until: std::time::Instant::now() + std::time::Duration::from_secs(60),
            cut: None,
        };
        let mut got = Vec::new();
        io::Read::read_to_end(&mut r, &mut got).unwrap();
        assert_eq!(got.len(), 4096);
        assert_eq!(r.cut, Some(Cut::Bytes));
        assert_eq!(size_text(4096), "4 KiB");
        assert_eq!(size_text(16 << 20), "16 MiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }

    /// Two bytes every 20 ms, for ever.
    struct Slow;
    impl io::Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let n = buf.len().min(2);
            buf[..n].fill(b'a');
            Ok(n)
        }
    }

    #[test]
    fn a_budgeted_read_ends_at_its_deadline() {
        let start = std::time::Instant::now();
        let mut r = Budgeted {
            inner: Slow,
            left: u64::MAX,
            until: start + std::time::Duration::from_millis(200),
            cut: None,
        };
        let mut got = Vec::new();
        io::Read::read_to_end(&mut r, &mut got).unwrap();
        assert_eq!(r.cut, Some(Cut::Time));
        assert!(!got.is_empty());
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    fn job(id: u64, name: &str, status: &str) -> Job {
        Job {
            id,
            name: name.into(),
            status: status.into(),
            ..Job::default()
        }
    }

    fn run(jobs: Vec<Job>) -> PipelineRun {
        PipelineRun {
            project: "1".into(),
            pipeline_id: 9,
            depth: 0,
            via: None,
            web_url: None,
            jobs,
            bridge_ids: HashSet::new(),
            truncated: false,
        }
    }

    #[test]
    fn retries_allow_failure_and_self_exclusion() {
        let mut lint = job(7, "lint", "failed");
        lint.allow_failure = true;
        let runs = vec![run(vec![
            job(30, "build", "failed"),
            job(10, "test", "failed"),
            job(20, "test", "success"),
            job(11, "deploy", "failed"),
            job(21, "deploy", "failed"),
            lint,
            job(40, "diagnose", "running"),
            job(33, "diagnose", "failed"),
            job(41, "later", "pending"),
            job(5, "docs", "success"),
        ])];
        let p = partition(&runs, Some(40));
        let names = |v: &[PickedJob]| {
            v.iter()
                .map(|p| (p.job.name.clone(), p.job.id))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&p.failed),
            vec![("deploy".into(), 21), ("build".into(), 30)]
        );
        assert_eq!(p.failed[0].attempts, 2);
        assert_eq!(p.failed[0].failed_attempts, 2);
        assert_eq!(names(&p.passed_on_retry), vec![("test".into(), 20)]);
        assert_eq!(names(&p.allowed_failures), vec![("lint".into(), 7)]);
        assert_eq!(p.unfinished, 1, "the diagnose job itself is not counted");
    }

    #[test]
    fn the_resolve_job_leaves_out_the_failure_job_of_its_component() {
        let mut old = job(50, "runneriq-diagnose", "failed");
        old.allow_failure = true;
        let runs = vec![run(vec![
            old,
            job(51, "build", "success"),
            job(60, "runneriq-diagnose-resolve", "running"),
        ])];
        let p = partition(&runs, Some(60));
        assert!(p.allowed_failures.is_empty(), "{:?}", p.allowed_failures);
        assert_eq!(p.unfinished, 0);
    }

    #[test]
    fn diff_paths_keep_old_names_of_renames_and_deletions() {
        let items: Vec<DiffPaths> = serde_json::from_str(
            r#"[{"old_path":"a.rs","new_path":"a.rs","diff":"@@ huge"},
                {"old_path":"old.rs","new_path":"new.rs","renamed_file":true},
                {"old_path":"gone.rs","new_path":"gone.rs","deleted_file":true}]"#,
        )
        .unwrap();
        assert_eq!(
            collect_paths(items),
            vec!["a.rs", "new.rs", "old.rs", "gone.rs"]
        );
    }

    #[test]
    fn short_sha_is_safe_on_short_input() {
        assert_eq!(short_sha("0123456789abcdef"), "01234567");
        assert_eq!(short_sha("abc"), "abc");
    }
}
