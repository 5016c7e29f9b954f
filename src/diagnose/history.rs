//! What the target branch says about this pipeline's failures: is the same
//! job already failing there with the same error (broken upstream), and does it
//! fail now and then with that error in its recent history (known flaky)?
//!
//! Both lookups run under one request budget (`history.max_requests` of
//! `.runneriq.yml`), counted with the client's own request counter, so a
//! busy project can never turn a diagnosis into hundreds of API calls:
//!
//! - upstream: `GET /projects/:id/pipelines?ref=<target>&scope=finished&per_page=5`
//!   (1 request); only when the latest other finished pipeline did not pass,
//!   `GET /projects/:id/pipelines/:pid/jobs?scope[]=failed` (1 request); then one
//!   trace per job failing in both pipelines;
//! - history: `GET /projects/:id/jobs?scope[]=failed&scope[]=success` pages of
//!   100 (`history.pages`, default 2), kept to the default branch and to the
//!   names of this pipeline's failed jobs; then the traces of at most
//!   `history.traces` earlier failures per job (fewer when upstream already read
//!   one), only for jobs that also passed there.
//!
//! A trace is read once even when both lookups want it. Failures of these
//! lookups are warnings: the note is still posted, without the claim.

use std::collections::{BTreeMap, HashMap};

use crate::classify::Catalog;
use crate::config::HistoryConfig;
use crate::gitlab::models::{Job, Pipeline};
use crate::gitlab::{ApiError, Client, project_ref};
use crate::llm::redact::Redactor;

pub use super::diagnosis::{JobHistory, Lookups, UpstreamJob, UpstreamPipeline};
use super::fetch::{self, TraceOutcome, TraceTask};

/// One failed job of this pipeline, as the lookups need it.
#[derive(Debug, Clone, Default)]
pub struct Failed {
    pub name: String,
    pub fingerprint: String,
    /// Its suite in the pipeline's unit test report, when it has failing
    /// tests there: then the default branch's test reports are read for
    /// it, not its earlier logs.
    pub suite: Option<String>,
    /// Its failing tests' keys (`junit::test_key`).
    pub tests: Vec<String>,
}

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct Refs {
    /// Upstream: the MR's target branch, else the default branch.
    pub target_branch: Option<String>,
    /// History: the default branch.
    pub default_branch: Option<String>,
    /// This pipeline's id, never its own upstream.
    pub pipeline: u64,
    pub upstream: bool,
}

/// Evidence lines a fingerprint is made of. A classification meant for
/// [`fingerprint_of`] needs `max_evidence` of at least this many, whoever
/// asks (a diagnose run asks for more to show, history for just these), so
/// that the same failure gets the same fingerprint.
pub const FINGERPRINT_LINES: usize = 2;

/// The fingerprint of a classified failure: its category and its
/// [`FINGERPRINT_LINES`] best evidence lines, redacted then normalised.
///
/// The evidence is chosen greedily in the line model's order, so its first
/// lines are the same whatever `max_evidence` the caller asked for: the
/// history lookups (which ask for [`FINGERPRINT_LINES`]) and a diagnosis
/// (which asks for more) fingerprint the same failure alike. When no rule
/// picked a line (an unknown failure), the evidence is the failing step's
/// last lines, closest to the failure first. A failure with no evidence is
/// fingerprinted by GitLab's failure reason.
pub fn fingerprint_of(
    c: &crate::classify::Classification,
    failure_reason: Option<&str>,
    redactor: &Redactor,
) -> String {
    let picked: Vec<&crate::classify::Evidence> = c.evidence.iter().collect();
    let mut lines: Vec<(u64, String)> = picked
        .iter()
        .take(FINGERPRINT_LINES)
        .map(|e| (e.line, e.text.clone()))
        .collect();
    // The redactor reads lines in log order (a key block spans lines).
    lines.sort_by_key(|(n, _)| *n);
    let lines = redactor.lines(&lines);
    if lines.is_empty() {
        let reason = failure_reason.unwrap_or("unknown_failure");
        return crate::noise::fingerprint::fingerprint(&c.category, &[reason]);
    }
    let refs: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
    crate::noise::fingerprint::fingerprint(&c.category, &refs)
}

/// The fingerprint of a job whose log could not be read.
pub fn fingerprint_unreadable(failure_reason: Option<&str>) -> String {
    crate::noise::fingerprint::fingerprint(
        "unreadable",
        &[failure_reason.unwrap_or("unknown_failure")],
    )
}

struct Budget<'a> {
    client: &'a Client,
    start: u64,
    max: u64,
    exhausted: bool,
    /// What each trace read may take.
    traces: &'a fetch::TraceLimits,
    /// Unit test reports read this run, by pipeline (`None`: it has none):
    /// the upstream pipeline's is read once, whichever lookup asks.
    reports: HashMap<u64, Option<crate::gitlab::test_report::TestReport>>,
}

impl Budget<'_> {
    fn used(&self) -> u64 {
        self.client.request_count().saturating_sub(self.start)
    }
    fn left(&self) -> u64 {
        self.max.saturating_sub(self.used())
    }
    /// True when `n` more requests fit; records the first refusal.
    fn allows(&mut self, n: u64) -> bool {
        let ok = self.left() >= n;
        if !ok {
            self.exhausted = true;
        }
        ok
    }
}

fn summary(e: &ApiError) -> String {
    crate::gitlab::error::summary(e)
}

/// Runs the upstream and history lookups for `failed` (see the module doc).
#[allow(clippy::too_many_arguments)]
pub fn lookup(
    client: &Client,
    project: &str,
    refs: &Refs,
    failed: &[Failed],
    cfg: &HistoryConfig,
    catalog: &Catalog,
    redactor: &Redactor,
    traces: &fetch::TraceLimits,
) -> Lookups {
    let mut out = Lookups::default();
    if failed.is_empty() {
        return out;
    }
    let mut budget = Budget {
        client,
        start: client.request_count(),
        max: u64::from(cfg.max_requests),
        exhausted: false,
        traces,
        reports: HashMap::new(),
    };
    let names: HashMap<&str, &str> = failed
        .iter()
        .map(|f| (f.name.as_str(), f.fingerprint.as_str()))
        .collect();
    let tested: HashMap<&str, &Failed> = failed
        .iter()
        .filter(|f| f.suite.is_some())
        .map(|f| (f.name.as_str(), f))
        .collect();
    // Fingerprints of traces already read, by job id.
    let mut known: HashMap<u64, Option<String>> = HashMap::new();

    if refs.upstream {
        if let Some(branch) = refs.target_branch.as_deref() {
            upstream(
                client,
                project,
                branch,
                refs.pipeline,
                &names,
                &tested,
                catalog,
                redactor,
                &mut budget,
                &mut known,
                &mut out,
            );
        }
    }
    if cfg.enabled {
        if let Some(branch) = refs.default_branch.as_deref() {
            history(
                client,
                project,
                branch,
                refs.pipeline,
                &names,
                &tested,
                cfg,
                catalog,
                redactor,
                &mut budget,
                &mut known,
                &mut out,
            );
            out.history_branch = Some(branch.to_string());
        }
    }
    if budget.exhausted {
        out.warnings.push(format!(
            "the history lookup stopped at its budget of {} API requests (history.max_requests \
             in .runneriq.yml)",
            cfg.max_requests
        ));
    }
    out.requests = budget.used();
    out
}

/// Reads and fingerprints the traces of `jobs` (at most what the budget
/// allows), recording them in `known`.
fn fingerprint_jobs(
    client: &Client,
    project: &str,
    jobs: &[&Job],
    catalog: &Catalog,
    redactor: &Redactor,
    budget: &mut Budget<'_>,
    known: &mut HashMap<u64, Option<String>>,
) {
    let todo: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| !known.contains_key(&j.id))
        .collect();
    // One request per trace; retries may spend more, the budget check is
    // repeated for each batch.
    let affordable = usize::try_from(budget.left()).unwrap_or(usize::MAX);
    if todo.len() > affordable {
        budget.exhausted = true;
    }
    let todo = &todo[..todo.len().min(affordable)];
    if todo.is_empty() {
        return;
    }
    let tasks: Vec<TraceTask> = todo
        .iter()
        .map(|j| TraceTask {
            project: project.to_string(),
            job_id: j.id,
            failure_reason: j.failure_reason.clone(),
            has_trace: true,
        })
        .collect();
    let outcomes = fetch::classify_traces(
        client,
        &tasks,
        catalog,
        FINGERPRINT_LINES,
        fetch::TRACE_WORKERS,
        0,
        budget.traces,
    );
    for (j, o) in todo.iter().zip(outcomes) {
        let fp = match o {
            TraceOutcome::Classified(c) => {
                Some(fingerprint_of(&c, j.failure_reason.as_deref(), redactor))
            }
            TraceOutcome::Unreadable(_) => None,
        };
        known.insert(j.id, fp);
    }
}

#[allow(clippy::too_many_arguments)]
fn upstream(
    client: &Client,
    project: &str,
    branch: &str,
    pipeline: u64,
    names: &HashMap<&str, &str>,
    tested: &HashMap<&str, &Failed>,
    catalog: &Catalog,
    redactor: &Redactor,
    budget: &mut Budget<'_>,
    known: &mut HashMap<u64, Option<String>>,
    out: &mut Lookups,
) {
    if !budget.allows(1) {
        return;
    }
    let path = format!("/projects/{}/pipelines", project_ref(project));
    let list: Vec<Pipeline> = match client.get_pages::<Pipeline>(
        &path,
        &[
            ("ref", branch.to_string()),
            ("scope", "finished".to_string()),
            ("order_by", "id".to_string()),
            ("sort", "desc".to_string()),
            ("per_page", "5".to_string()),
        ],
        1,
    ) {
        Ok(p) => p.items,
        Err(e) => {
            out.warnings.push(format!(
                "the latest pipeline of `{branch}` could not be read, so \"already failing on \
                 {branch}\" was not checked: {}",
                summary(&e)
            ));
            return;
        }
    };
    let Some(latest) = pick_upstream(&list, branch, pipeline) else {
        return;
    };
    let passed = latest.status == "success";
    let latest_id = latest.pipeline_id;
    out.upstream = Some(latest);
    if passed {
        return;
    }
    // Jobs with failing tests: the same tests failing the same way there.
    if !tested.is_empty() {
        match read_report(client, project, latest_id, budget) {
            Ok(Some(r)) => {
                let suites: Vec<&str> =
                    tested.values().filter_map(|f| f.suite.as_deref()).collect();
                let kept: Vec<_> = r
                    .test_suites
                    .into_iter()
                    .filter(|s| suites.contains(&s.name.as_str()))
                    .collect();
                out.test_upstream = super::junit::failing_keys(&kept, redactor);
            }
            Ok(None) => {}
            Err(Some(e)) => out.warnings.push(format!(
                "the unit test report of `{branch}`'s pipeline #{latest_id} could not be read \
                 ({e}), so \"already failing upstream\" was not checked for failing tests"
            )),
            // Out of budget: said once, at the end.
            Err(None) => {}
        }
    }
    if !budget.allows(1) {
        return;
    }
    let path = format!(
        "/projects/{}/pipelines/{latest_id}/jobs",
        project_ref(project),
    );
    let jobs: Vec<Job> =
        match client.get_pages::<Job>(&path, &[("scope[]", "failed".to_string())], 1) {
            Ok(p) => p.items,
            Err(e) => {
                out.warnings.push(format!(
                    "the failed jobs of `{branch}`'s pipeline #{latest_id} could not be read: {}",
                    summary(&e)
                ));
                return;
            }
        };
    let mut picked = upstream_candidates(&jobs, names);
    // Their tests said it; their logs need not be read.
    picked.retain(|j| !tested.contains_key(j.name.as_str()));
    fingerprint_jobs(client, project, &picked, catalog, redactor, budget, known);
    out.upstream_jobs = upstream_jobs(&picked, known);
}

/// The target branch's latest finished pipeline other than `pipeline`, from
/// a newest-first list.
pub fn pick_upstream(list: &[Pipeline], branch: &str, pipeline: u64) -> Option<UpstreamPipeline> {
    let latest = list.iter().find(|p| p.id != pipeline)?;
    Some(UpstreamPipeline {
        branch: branch.to_string(),
        pipeline_id: latest.id,
        status: latest.status.clone(),
        web_url: latest.web_url.clone(),
    })
}

/// Of the upstream pipeline's jobs, the latest failed attempt of each name
/// that also failed here: the traces to fingerprint.
pub fn upstream_candidates<'a>(jobs: &'a [Job], names: &HashMap<&str, &str>) -> Vec<&'a Job> {
    let mut latest_by_name: BTreeMap<&str, &Job> = BTreeMap::new();
    for j in jobs
        .iter()
        .filter(|j| j.status == "failed" && names.contains_key(j.name.as_str()))
    {
        let e = latest_by_name.entry(j.name.as_str()).or_insert(j);
        if j.id > e.id {
            *e = j;
        }
    }
    latest_by_name.into_values().collect()
}

/// The upstream jobs whose trace was read, by name, with their fingerprints.
pub fn upstream_jobs(
    picked: &[&Job],
    known: &HashMap<u64, Option<String>>,
) -> HashMap<String, UpstreamJob> {
    picked
        .iter()
        .filter_map(|j| {
            let fp = known.get(&j.id)?;
            Some((
                j.name.clone(),
                UpstreamJob {
                    id: j.id,
                    web_url: j.web_url.clone(),
                    fingerprint: fp.clone(),
                },
            ))
        })
        .collect()
}

/// The finished runs on `branch` (newest first, at most `cfg.runs`) of each
/// job named in `names`, outside `pipeline`, and the failed runs whose traces
/// to read (at most `cfg.traces` per job, only for jobs that also passed: a
/// job that never passed is broken, not flaky).
pub fn history_candidates<'a>(
    jobs: &'a [Job],
    branch: &str,
    pipeline: u64,
    names: &HashMap<&str, &str>,
    cfg: &HistoryConfig,
) -> (BTreeMap<&'a str, Vec<&'a Job>>, Vec<&'a Job>) {
    let mut runs: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
    for j in jobs {
        let this_pipeline = j.pipeline.as_ref().is_some_and(|p| p.id == pipeline);
        if j.git_ref != branch || this_pipeline || !names.contains_key(j.name.as_str()) {
            continue;
        }
        if j.status == "failed" || j.status == "success" {
            runs.entry(j.name.as_str()).or_default().push(j);
        }
    }
    let mut wanted: Vec<&Job> = Vec::new();
    for list in runs.values_mut() {
        list.sort_by_key(|j| std::cmp::Reverse(j.id));
        list.truncate(cfg.runs as usize);
        if list.iter().all(|j| j.status != "success") {
            continue;
        }
        wanted.extend(
            list.iter()
                .filter(|j| j.status == "failed")
                .take(cfg.traces as usize),
        );
    }
    (runs, wanted)
}

/// Counts each job's runs, failures, and failures with this pipeline's
/// fingerprint among the traces read (`known`: job id → fingerprint).
pub fn tally(
    runs: &BTreeMap<&str, Vec<&Job>>,
    names: &HashMap<&str, &str>,
    known: &HashMap<u64, Option<String>>,
) -> HashMap<String, JobHistory> {
    let mut out = HashMap::new();
    for (name, list) in runs {
        let fp = names.get(name).copied().unwrap_or_default();
        let mut h = JobHistory {
            runs: list.len() as u32,
            ..JobHistory::default()
        };
        for j in list {
            if j.status == "success" {
                h.successes += 1;
                continue;
            }
            h.failures += 1;
            if let Some(found) = known.get(&j.id) {
                h.checked += 1;
                if found.as_deref() == Some(fp) {
                    h.same += 1;
                }
            }
        }
        out.insert((*name).to_string(), h);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn history(
    client: &Client,
    project: &str,
    branch: &str,
    pipeline: u64,
    names: &HashMap<&str, &str>,
    tested: &HashMap<&str, &Failed>,
    cfg: &HistoryConfig,
    catalog: &Catalog,
    redactor: &Redactor,
    budget: &mut Budget<'_>,
    known: &mut HashMap<u64, Option<String>>,
    out: &mut Lookups,
) {
    let pages = u64::from(cfg.pages.max(1));
    // Each page is one request; leave room for at least one trace.
    let affordable = budget.left().saturating_sub(1).min(pages);
    if affordable == 0 {
        budget.exhausted = true;
        return;
    }
    let path = format!("/projects/{}/jobs", project_ref(project));
    let jobs: Vec<Job> = match client.get_pages::<Job>(
        &path,
        &[
            ("scope[]", "failed".to_string()),
            ("scope[]", "success".to_string()),
        ],
        usize::try_from(affordable).unwrap_or(1),
    ) {
        Ok(p) => p.items,
        Err(e) => {
            out.warnings.push(format!(
                "the recent jobs of `{branch}` could not be read, so known flaky jobs were not \
                 checked: {}",
                summary(&e)
            ));
            return;
        }
    };
    let (runs, mut wanted) = history_candidates(&jobs, branch, pipeline, names, cfg);
    // Jobs with failing tests: their tests' history, not their logs'.
    wanted.retain(|j| !tested.contains_key(j.name.as_str()));
    fingerprint_jobs(client, project, &wanted, catalog, redactor, budget, known);
    out.history = tally(&runs, names, known);
    if !tested.is_empty() {
        test_history(
            client, project, branch, &runs, tested, redactor, budget, out,
        );
    }
}

/// A pipeline's full test report, `None` when it has none (404), read once
/// per run and within the budget (`Err(None)`: the budget is spent).
fn read_report(
    client: &Client,
    project: &str,
    pipeline: u64,
    budget: &mut Budget<'_>,
) -> Result<Option<crate::gitlab::test_report::TestReport>, Option<ApiError>> {
    if let Some(r) = budget.reports.get(&pipeline) {
        return Ok(r.clone());
    }
    if !budget.allows(1) {
        return Err(None);
    }
    let path = format!(
        "/projects/{}/pipelines/{pipeline}/test_report",
        project_ref(project)
    );
    let r = match client.get_json(&path, &[]) {
        Ok(r) => Some(r),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(Some(e)),
    };
    budget.reports.insert(pipeline, r.clone());
    Ok(r)
}

/// The failing tests' runs on the default branch: every run of the job that
/// passed is a pass; for the runs that failed, newest first, the pipeline's
/// test report is read (one request each, while the budget lasts; a
/// pipeline shared by several jobs is read once) and the job's suite looked
/// at. See `junit::tally`.
#[allow(clippy::too_many_arguments)]
fn test_history(
    client: &Client,
    project: &str,
    branch: &str,
    runs: &BTreeMap<&str, Vec<&Job>>,
    tested: &HashMap<&str, &Failed>,
    redactor: &Redactor,
    budget: &mut Budget<'_>,
    out: &mut Lookups,
) {
    use super::junit::{self, Run};
    // Each job's runs, and the failed runs' pipelines in the order to read.
    let mut per_job: Vec<(&Failed, Vec<Run>)> = Vec::new();
    let mut to_read: Vec<u64> = Vec::new();
    for (name, f) in tested {
        let Some(list) = runs.get(name) else { continue };
        // One run per pipeline (a retry is another job of the same name in
        // the same pipeline; its report is the latest attempt's): passed
        // when an attempt passed.
        let mut rs: Vec<Run> = Vec::new();
        for j in list {
            let Some(p) = j.pipeline.as_ref() else {
                continue;
            };
            let passed = j.status == "success";
            match rs.iter_mut().find(|r| r.pipeline == p.id) {
                Some(r) => r.passed |= passed,
                None => rs.push(Run {
                    pipeline: p.id,
                    passed,
                }),
            }
        }
        per_job.push((f, rs));
    }
    // Newest failures first, across jobs.
    let mut failed_runs: Vec<u64> = per_job
        .iter()
        .flat_map(|(_, rs)| rs.iter().filter(|r| !r.passed).map(|r| r.pipeline))
        .collect();
    failed_runs.sort_unstable_by(|a, b| b.cmp(a));
    for p in failed_runs {
        if !to_read.contains(&p) {
            to_read.push(p);
        }
    }
    // pipeline → suite name → failing keys (`None`: no report).
    let mut reports: HashMap<u64, Option<HashMap<String, Vec<String>>>> = HashMap::new();
    for p in to_read {
        match read_report(client, project, p, budget) {
            Ok(Some(r)) => {
                let mut by_suite: HashMap<String, Vec<String>> = HashMap::new();
                for (key, (suite, _)) in junit::failing_keys(&r.test_suites, redactor) {
                    by_suite.entry(suite).or_default().push(key);
                }
                for s in &r.test_suites {
                    by_suite.entry(s.name.clone()).or_default();
                }
                reports.insert(p, Some(by_suite));
            }
            Ok(None) => {
                reports.insert(p, None);
            }
            Err(Some(e)) => {
                out.warnings.push(format!(
                    "a unit test report of `{branch}` could not be read ({e}), so known flaky \
                     tests were checked on fewer runs"
                ));
                break;
            }
            Err(None) => break,
        }
    }
    for (f, rs) in per_job {
        let Some(suite) = f.suite.as_deref() else {
            continue;
        };
        let seen: HashMap<u64, Option<Vec<String>>> = reports
            .iter()
            .map(|(p, r)| (*p, r.as_ref().and_then(|m| m.get(suite).cloned())))
            .collect();
        out.test_history.extend(junit::tally(&f.tests, &rs, &seen));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, name: &str, status: &str, git_ref: &str, pipeline: u64) -> Job {
        Job {
            id,
            name: name.into(),
            status: status.into(),
            git_ref: git_ref.into(),
            pipeline: Some(Box::new(crate::gitlab::models::PipelineRef {
                id: pipeline,
                ..Default::default()
            })),
            ..Job::default()
        }
    }

    #[test]
    fn history_keeps_the_branch_the_names_and_the_newest_runs() {
        let mut jobs = Vec::new();
        for k in 0..30u64 {
            let status = if k % 4 == 0 { "failed" } else { "success" };
            jobs.push(job(100 + k, "t", status, "main", 10 + k));
        }
        jobs.push(job(200, "t", "failed", "feature", 50)); // other branch
        jobs.push(job(201, "t", "failed", "main", 7)); // this pipeline
        jobs.push(job(202, "t", "canceled", "main", 51)); // not finished well
        jobs.push(job(203, "other", "failed", "main", 52)); // not failing here
        jobs.push(job(204, "broken", "failed", "main", 53)); // never passed
        jobs.push(job(205, "broken", "failed", "main", 54));
        let names: HashMap<&str, &str> = [("t", "fp"), ("broken", "fp2")].into_iter().collect();
        let cfg = HistoryConfig {
            runs: 20,
            traces: 3,
            ..HistoryConfig::default()
        };
        let (runs, wanted) = history_candidates(&jobs, "main", 7, &names, &cfg);
        assert_eq!(runs["t"].len(), 20);
        assert_eq!(runs["t"][0].id, 129, "newest first");
        assert_eq!(runs["broken"].len(), 2);
        let ids: Vec<u64> = wanted.iter().map(|j| j.id).collect();
        assert_eq!(ids, vec![128, 124, 120], "newest failures of t only");
        let mut known: HashMap<u64, Option<String>> = HashMap::new();
        known.insert(128, Some("fp".into()));
        known.insert(124, Some("other".into()));
        known.insert(120, None);
        let h = tally(&runs, &names, &known);
        assert_eq!(
            h["t"],
            JobHistory {
                runs: 20,
                failures: 5,
                successes: 15,
                checked: 3,
                same: 1
            }
        );
        assert_eq!(h["broken"].successes, 0);
    }

    #[test]
    fn upstream_is_the_latest_other_pipeline_and_its_latest_attempts() {
        let p = |id: u64, status: &str| Pipeline {
            id,
            status: status.into(),
            ..Pipeline::default()
        };
        let list = [p(7, "running"), p(6, "failed"), p(5, "success")];
        assert_eq!(pick_upstream(&list, "main", 7).unwrap().pipeline_id, 6);
        assert_eq!(pick_upstream(&list[..1], "main", 7), None);
        let jobs = [
            job(1, "a", "failed", "main", 6),
            job(3, "a", "failed", "main", 6),
            job(2, "b", "success", "main", 6),
            job(4, "c", "failed", "main", 6),
        ];
        let names: HashMap<&str, &str> = [("a", "x"), ("b", "y")].into_iter().collect();
        let ids: Vec<u64> = upstream_candidates(&jobs, &names)
            .iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, vec![3]);
    }

    fn fingerprint_with(log: &str, max_evidence: usize) -> String {
        let catalog = Catalog::builtin().unwrap();
        let opts = crate::classify::ClassifyOptions {
            max_evidence,
            ..Default::default()
        };
        let c = crate::classify::classify_reader(log.as_bytes(), &catalog, &opts).unwrap();
        fingerprint_of(&c, Some("script_failure"), &Redactor::default())
    }

    #[test]
    fn a_fingerprint_does_not_depend_on_how_much_evidence_was_asked_for() {
        let unknown = "$ ./ci/custom-tool --plan release.plan\n\
                       custom-tool: loaded 7 steps\n\
                       custom-tool: step 6 ok\n\
                       custom-tool: step 7 waiting for the lock\n\
                       custom-tool: step 7 gave up (code 3)\n\
                       ERROR: Job failed: exit code 1\n";
        // No rule matches, or only an evidence-only one far above the end:
        // a diagnose run (5) and the history lookup (2) must agree.
        let one_hit = format!(
            "Exception in worker 3, restarting it\n{}",
            "step\n".repeat(40)
        ) + unknown;
        for log in [unknown.to_string(), one_hit] {
            assert_eq!(
                fingerprint_with(&log, 5),
                fingerprint_with(&log, FINGERPRINT_LINES),
                "{log}"
            );
        }
        // Made of the last words: another tool's end is another failure,
        // even after the same first lines.
        let other = unknown.replace("step 7 gave up (code 3)", "step 7 skipped, plan is stale");
        assert_ne!(fingerprint_with(unknown, 5), fingerprint_with(&other, 5));
    }

    #[test]
    fn unreadable_fingerprints_depend_on_the_failure_reason() {
        assert_eq!(
            fingerprint_unreadable(Some("runner_system_failure")),
            fingerprint_unreadable(Some("runner_system_failure"))
        );
        assert_ne!(
            fingerprint_unreadable(Some("runner_system_failure")),
            fingerprint_unreadable(Some("script_failure"))
        );
    }
}
