//! Which runner should take each waiting job, and why.
//!
//! 1. **Eligibility exactly as GitLab decides it** ([`gate`]): paused,
//!    offline or stale runners are out; the job's tags must be a subset of
//!    the runner's; untagged jobs need `run_untagged`; `ref_protected` runners
//!    take protected refs only; a job's timeout must fit `maximum_timeout`;
//!    project runners take their projects' jobs only (when the runner object
//!    lists them).
//! 2. **Scoring** ([`score`]) of every eligible runner: utilization, tag-match
//!    quality, capacity headroom, history (duration ratio for the job name,
//!    infrastructure failure rate) and carbon, whose weight grows as urgency
//!    falls (CRITICAL 5 %, HIGH 20 %, MEDIUM 35 %, LOW 50 %).
//! 3. **Capacity-aware assignment** ([`assign`]): jobs in priority order, each
//!    placement takes a slot, no runner gets more jobs than its free slots;
//!    the rest are queued behind the best eligible runner with a position and
//!    an expected start from history.
//! 4. **Scarce runners are kept for the jobs that need them**
//!    ([`RoutingRules::reserve_scarce`], on by default). A job's *runner
//!    class* is the set of runners that pass [`gate`] for it (online,
//!    unpaused, tags, untagged, protected, timeout, project), whatever their
//!    free slots. A job is *scarce* when its class is a strict subset of
//!    another routed job's class: every runner that can take it can also
//!    take that other job, which has runners besides (one GPU runner among
//!    generic ones: `test:gpu` is scarce, `build` is not). Before a job is
//!    placed, the waiting jobs whose class is a strict subset of its own are
//!    placed first, highest priority first (recursively), so they take their
//!    class's free slots before a job that could run elsewhere does. Hence:
//!    no scarce job waits while a job whose class strictly contains its
//!    class holds a slot of it; a job with other runners gets a scarce
//!    runner's slot only when the scarce jobs leave one free. Jobs whose
//!    classes merely overlap (neither contains the other) are not scarce
//!    with respect to each other: priority decides between them.
//!
//! Pure: no I/O. The tie-break by an LLM and the CLI live elsewhere.

use std::collections::HashMap;

use serde::Serialize;

use super::model::FleetRunner;
use super::priority::{self, Priority, PriorityRules, Urgency};
use super::stats::History;
use crate::gitlab::models::Job;
use crate::noise::Glob;

/// Statuses of jobs waiting for a runner.
pub const WAITING: &[&str] = &[
    "pending",
    "created",
    "waiting_for_resource",
    "preparing",
    "scheduled",
];

/// Weights of the non-carbon factors (normalised to share `1 − carbon`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weights {
    pub utilization: f64,
    pub tag_match: f64,
    pub headroom: f64,
    pub history: f64,
}

/// The routing model as data.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingRules {
    pub weights: Weights,
    /// Carbon's share of the score by urgency: CRITICAL, HIGH, MEDIUM, LOW.
    pub carbon: [f64; 4],
    /// Top two within this fraction of the best score: a tie.
    pub margin: f64,
    /// Refs that are protected besides the default branch (GitLab's
    /// protected branches are not in a job object). Default `main` and
    /// `master`: GitLab protects the default branch unless told otherwise.
    pub protected_refs: Vec<Glob>,
    /// Keep scarce runners' slots for the jobs only they can take (see the
    /// module documentation); `routing.reserve_scarce: false` or
    /// `--no-reserve-scarce` turns it off (plain priority order).
    pub reserve_scarce: bool,
    /// How far the tag bridge acts on its own (`routing.trust:`).
    pub trust: TrustRules,
}

/// `routing.trust:` — the supervised mode's threshold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrustRules {
    /// In supervised mode, tag changes whose waiting jobs are all below this
    /// class are applied by the run; one that affects a job at or above it
    /// goes to the plan for review. `None`: every change goes to the plan.
    pub supervised_threshold: Option<Urgency>,
}

impl Default for RoutingRules {
    fn default() -> RoutingRules {
        RoutingRules {
            weights: Weights {
                utilization: 0.30,
                tag_match: 0.15,
                headroom: 0.20,
                history: 0.35,
            },
            carbon: [0.05, 0.20, 0.35, 0.50],
            margin: 0.15,
            protected_refs: vec![
                Glob::new("main").expect("built-in glob"),
                Glob::new("master").expect("built-in glob"),
            ],
            reserve_scarce: true,
            trust: TrustRules::default(),
        }
    }
}

impl RoutingRules {
    pub fn carbon_weight(&self, u: Urgency) -> f64 {
        match u {
            Urgency::Critical => self.carbon[0],
            Urgency::High => self.carbon[1],
            Urgency::Medium => self.carbon[2],
            Urgency::Low => self.carbon[3],
        }
    }
}

/// Why a runner cannot take a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Gate {
    Paused,
    NotOnline { status: String },
    MissingTags { tags: Vec<String> },
    NoUntagged,
    ProtectedOnly,
    Timeout { job_s: u64, max_s: u64 },
    OtherProject,
}

impl Gate {
    pub fn words(&self) -> String {
        match self {
            Gate::Paused => "paused".into(),
            Gate::NotOnline { status } => format!("{status}, not online"),
            Gate::MissingTags { tags } => format!("lacks tags [{}]", tags.join(", ")),
            Gate::NoUntagged => "does not run untagged jobs".into(),
            Gate::ProtectedOnly => "runs protected refs only".into(),
            Gate::Timeout { job_s, max_s } => {
                format!("maximum timeout {max_s} s is below the job's {job_s} s")
            }
            Gate::OtherProject => "a project runner of other projects".into(),
        }
    }
}

/// What the gate needs to know about a job.
#[derive(Debug, Clone)]
pub struct JobFacts<'a> {
    pub job: &'a Job,
    pub protected_ref: bool,
    pub project_id: Option<u64>,
    pub timeout_s: Option<u64>,
}

/// GitLab's own rules for "may this runner pick up this job?".
pub fn gate(j: &JobFacts<'_>, r: &FleetRunner) -> Result<(), Gate> {
    check(j, r, true)
}

/// [`gate`] as a yes/no, allocating nothing (the hot loop of `assign`).
pub fn passes(j: &JobFacts<'_>, r: &FleetRunner) -> bool {
    check(j, r, false).is_ok()
}

/// The gate; without `detail`, `MissingTags` carries no tag names.
fn check(j: &JobFacts<'_>, r: &FleetRunner, detail: bool) -> Result<(), Gate> {
    if r.paused() {
        return Err(Gate::Paused);
    }
    let status = r.status();
    if status != "online" && status != "active" {
        return Err(Gate::NotOnline {
            status: status.to_string(),
        });
    }
    let tags = &j.job.tag_list;
    if tags.is_empty() {
        if r.runner.run_untagged == Some(false) {
            return Err(Gate::NoUntagged);
        }
    } else if !tags
        .iter()
        .all(|t| r.runner.tag_list.iter().any(|rt| rt == t))
    {
        let missing: Vec<String> = if detail {
            tags.iter()
                .filter(|t| !r.runner.tag_list.iter().any(|rt| rt == *t))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        return Err(Gate::MissingTags { tags: missing });
    }
    if r.runner.access_level.as_deref() == Some("ref_protected") && !j.protected_ref {
        return Err(Gate::ProtectedOnly);
    }
    if let (Some(job_s), Some(max_s)) = (j.timeout_s, r.runner.maximum_timeout) {
        if job_s > max_s {
            return Err(Gate::Timeout { job_s, max_s });
        }
    }
    if r.runner.runner_type.as_deref() == Some("project_type") && !r.runner.projects.is_empty() {
        if let Some(p) = j.project_id {
            if !r.runner.projects.iter().any(|x| x.id == Some(p)) {
                return Err(Gate::OtherProject);
            }
        }
    }
    Ok(())
}

/// One factor of a runner's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factor {
    pub factor: &'static str,
    /// Share of the total (the weights sum to 1).
    pub weight: f64,
    /// 0..1, higher is better.
    pub value: f64,
    pub detail: String,
}

/// A runner's score for a job: Σ weight × value, as 0..100.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub runner: u64,
    pub total: f64,
    pub factors: Vec<Factor>,
}

/// The fleet's state during assignment.
#[derive(Debug, Clone)]
pub struct Slots {
    /// runner index → jobs running (and placed so far).
    pub used: Vec<u32>,
    pub concurrent: Vec<u32>,
}

impl Slots {
    pub fn new(fleet: &[FleetRunner], running: &HashMap<u64, u32>) -> Slots {
        Slots {
            used: fleet
                .iter()
                .map(|r| {
                    r.runneriq
                        .running
                        .unwrap_or_else(|| running.get(&r.id()).copied().unwrap_or(0))
                })
                .collect(),
            concurrent: fleet.iter().map(FleetRunner::concurrent).collect(),
        }
    }
    pub fn free(&self, i: usize) -> u32 {
        self.concurrent[i].saturating_sub(self.used[i])
    }
}

/// Per-runner facts computed once: carbon intensity.
#[derive(Debug, Clone)]
pub struct RunnerFacts {
    pub carbon: Option<super::carbon::Intensity>,
}

/// Live intensities (`live`, Electricity Maps) replace the tables' annual
/// averages where known.
pub fn runner_facts(fleet: &[FleetRunner], live: &super::carbon::Live) -> Vec<RunnerFacts> {
    fleet
        .iter()
        .map(|r| RunnerFacts {
            carbon: r.runneriq.zone.as_deref().and_then(|z| live.intensity(z)),
        })
        .collect()
}

/// What a job's scores are relative to: the most free slots and the carbon
/// range among its candidates (computed once per job, not per runner).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    pub most_free: u32,
    /// (lowest, highest) known intensity among the candidates.
    pub carbon: Option<(f64, f64)>,
}

pub fn scales(candidates: &[usize], facts: &[RunnerFacts], slots: &Slots) -> Scales {
    let mut most_free = 0;
    let mut carbon: Option<(f64, f64)> = None;
    for &c in candidates {
        most_free = most_free.max(slots.free(c));
        if let Some(g) = facts[c].carbon.as_ref().map(|x| x.g_per_kwh) {
            carbon = Some(carbon.map_or((g, g), |(lo, hi)| (lo.min(g), hi.max(g))));
        }
    }
    Scales {
        most_free: most_free.max(1),
        carbon,
    }
}

/// The five factor values (utilization, tag match, headroom, history,
/// carbon) and their weights: numbers only, no text (the hot path).
#[allow(clippy::too_many_arguments)]
fn factor_values(
    job: &Job,
    urgency: Urgency,
    i: usize,
    fleet: &[FleetRunner],
    facts: &[RunnerFacts],
    slots: &Slots,
    sc: Scales,
    history: &History,
    rules: &RoutingRules,
) -> ([f64; 5], [f64; 5], super::stats::RunnerRecord) {
    let r = &fleet[i];
    let carbon_w = rules.carbon_weight(urgency).clamp(0.0, 1.0);
    let w = &rules.weights;
    let sum = (w.utilization + w.tag_match + w.headroom + w.history).max(f64::EPSILON);
    let scale = (1.0 - carbon_w) / sum;
    let conc = slots.concurrent[i].max(1);
    let free = slots.free(i);
    let rt = r.runner.tag_list.len();
    let tag_value = if job.tag_list.is_empty() {
        1.0 / (1.0 + rt as f64)
    } else {
        (job.tag_list.len() as f64 / rt.max(1) as f64).min(1.0)
    };
    let rec = history.record(r.id(), &job.name);
    let dur = rec
        .duration_ratio
        .map(|x| (1.0 / (1.0 + x)).clamp(0.0, 1.0));
    let rel = rec.infra_failure_rate.map(|x| (1.0 - x).clamp(0.0, 1.0));
    let carbon = match (&facts[i].carbon, sc.carbon) {
        (Some(c), Some((lo, hi))) if hi - lo >= 1e-9 => (hi - c.g_per_kwh) / (hi - lo),
        (Some(_), _) => 1.0,
        (None, _) => 0.5,
    };
    (
        [
            f64::from(free) / f64::from(conc),
            tag_value,
            f64::from(free) / f64::from(sc.most_free),
            (dur.unwrap_or(0.5) + rel.unwrap_or(0.5)) / 2.0,
            carbon,
        ],
        [
            w.utilization * scale,
            w.tag_match * scale,
            w.headroom * scale,
            w.history * scale,
            carbon_w,
        ],
        rec,
    )
}

/// Runner `i`'s total (0..100) for a job: the number [`score`] explains.
#[allow(clippy::too_many_arguments)]
pub fn total(
    job: &Job,
    urgency: Urgency,
    i: usize,
    fleet: &[FleetRunner],
    facts: &[RunnerFacts],
    slots: &Slots,
    sc: Scales,
    history: &History,
    rules: &RoutingRules,
) -> f64 {
    let (v, w, _) = factor_values(job, urgency, i, fleet, facts, slots, sc, history, rules);
    (0..5).map(|k| v[k] * w[k]).sum::<f64>() * 100.0
}

/// Runner `i`'s score for a job, every factor with its weight, value and
/// the facts behind it.
#[allow(clippy::too_many_arguments)]
pub fn score(
    job: &Job,
    urgency: Urgency,
    i: usize,
    fleet: &[FleetRunner],
    facts: &[RunnerFacts],
    slots: &Slots,
    sc: Scales,
    history: &History,
    rules: &RoutingRules,
) -> Score {
    let (v, w, rec) = factor_values(job, urgency, i, fleet, facts, slots, sc, history, rules);
    let r = &fleet[i];
    let conc = slots.concurrent[i].max(1);
    let free = slots.free(i);
    let rt = r.runner.tag_list.len();
    let mut history_detail = match rec.duration_ratio {
        Some(x) => format!("{x:.2}× the fleet's time for {}", job.name),
        None => format!("no timing for {}", job.name),
    };
    match rec.infra_failure_rate {
        Some(x) => history_detail.push_str(&format!(
            ", {:.0} % infrastructure failures of {}",
            x * 100.0,
            rec.finished
        )),
        None => history_detail.push_str(", no finished jobs"),
    }
    let details = [
        format!("{} of {} slots busy", slots.used[i].min(conc), conc),
        if job.tag_list.is_empty() {
            format!("untagged job, runner has {rt} tags")
        } else {
            format!("{} of the runner's {rt} tags used", job.tag_list.len())
        },
        format!(
            "{free} free slots (most among candidates: {})",
            sc.most_free
        ),
        history_detail,
        match &facts[i].carbon {
            Some(c) => format!("{:.0} gCO₂/kWh ({})", c.g_per_kwh, c.zone),
            None => "zone unknown".to_string(),
        },
    ];
    let names = ["utilization", "tag_match", "headroom", "history", "carbon"];
    let factors: Vec<Factor> = details
        .into_iter()
        .enumerate()
        .map(|(k, detail)| Factor {
            factor: names[k],
            weight: w[k],
            value: v[k],
            detail,
        })
        .collect();
    Score {
        runner: r.id(),
        total: (0..5).map(|k| v[k] * w[k]).sum::<f64>() * 100.0,
        factors,
    }
}

/// A runner named in an assignment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerChoice {
    pub runner: u64,
    pub name: String,
    pub score: f64,
}

/// A job that waits for a slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queued {
    pub runner: u64,
    pub runner_name: String,
    /// 1-based place in that runner's queue.
    pub position: u32,
    /// Seconds from now, from the runner's job durations in history.
    pub expected_start_s: Option<f64>,
}

/// One job's recommendation (the `route --format json` contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub job: u64,
    pub name: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub tags: Vec<String>,
    pub priority: u8,
    pub urgency: Urgency,
    pub priority_breakdown: Priority,
    pub runner: Option<u64>,
    pub runner_name: Option<String>,
    pub score: Option<Score>,
    pub runner_up: Option<RunnerChoice>,
    /// (best − runner-up) ÷ best.
    pub margin: Option<f64>,
    /// rules | llm | only_candidate | none
    pub decided_by: String,
    /// Why there is no runner, in words.
    pub reason: Option<String>,
    pub queued: Option<Queued>,
    /// Eligible runners.
    pub candidates: usize,
    /// The top two are within the margin (the LLM may break the tie).
    pub tie: bool,
    /// The LLM's choice in a tie (`decided_by: llm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmChoice>,
    /// Why the LLM, asked about a tie, did not decide (the rules' choice stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_unavailable: Option<String>,
    /// A scarce job (see the module documentation): the runners that can
    /// take it, a strict subset of another waiting job's. It was placed
    /// before the jobs that could run elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scarce_class: Option<Vec<u64>>,
    /// A queued job: the slots of its eligible runners that were kept for
    /// scarce jobs of lower priority.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptFor>,
    /// A LOW job whose runner's zone is forecast to be cleaner later in the
    /// next 24 h (live values only): it can wait for that hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleaner_later: Option<CleanerLater>,
}

/// Advice for a LOW job that can wait: its runner's zone is forecast to be
/// at least [`CLEANER_LATER_MIN`] cleaner at `at` than it is now (both
/// Electricity Maps values, never against the tables' annual averages).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanerLater {
    pub zone: String,
    /// The live intensity now, gCO₂e/kWh.
    pub now_g_per_kwh: f64,
    /// The forecast's cleanest hour, gCO₂e/kWh.
    pub g_per_kwh: f64,
    /// RFC 3339, as the forecast gives it.
    pub at: String,
    /// Seconds from now to `at`.
    pub in_s: i64,
    /// 1 − later ÷ now (0.4: 40 % cleaner).
    pub cleaner: f64,
}

/// The least improvement worth advising a LOW job to wait for.
pub const CLEANER_LATER_MIN: f64 = 0.10;

/// A LOW job's cleaner hour on the runner it got (or is queued for).
pub fn cleaner_later(
    a: &Assignment,
    fleet: &[FleetRunner],
    inputs: &Inputs<'_>,
) -> Option<CleanerLater> {
    if a.urgency != Urgency::Low {
        return None;
    }
    let id = a.runner.or(a.queued.as_ref().map(|q| q.runner))?;
    let zone = fleet
        .iter()
        .find(|r| r.id() == id)?
        .runneriq
        .zone
        .as_deref()?;
    let now_g = inputs.live_carbon.intensities.get(zone)?.g_per_kwh;
    let c = inputs.live_carbon.forecast.get(zone)?;
    let at = priority::parse_time(&c.at)?;
    let cleaner = 1.0 - c.g_per_kwh / now_g;
    (now_g > 0.0 && at > inputs.now && cleaner >= CLEANER_LATER_MIN).then(|| CleanerLater {
        zone: c.zone.clone(),
        now_g_per_kwh: now_g,
        g_per_kwh: c.g_per_kwh,
        at: c.at.clone(),
        in_s: at - inputs.now,
        cleaner,
    })
}

/// A runner's slot kept for a scarce job: "kept for `test:gpu` (job 103),
/// which only this runner can take".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptFor {
    pub runner: u64,
    pub runner_name: String,
    /// The scarce job that holds the slot.
    pub job: u64,
    pub name: String,
    /// How many runners can take that job (its class).
    pub class_size: usize,
}

/// The LLM's tie-break.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmChoice {
    pub model: String,
    pub reason: String,
}

/// Everything `assign` needs besides the jobs and the fleet.
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    pub default_branch: Option<&'a str>,
    /// user id → access level in the project.
    pub access_levels: HashMap<u64, u32>,
    pub now: i64,
    /// Jobs' timeouts, when known.
    pub timeouts: HashMap<u64, u64>,
    /// Live carbon intensities and forecasts (empty: the tables' values).
    pub live_carbon: super::carbon::Live,
}

/// The priority of each job in `jobs` (retries detected from the set).
pub fn priorities(jobs: &[&Job], inputs: &Inputs<'_>, rules: &PriorityRules) -> Vec<Priority> {
    // A retry: an earlier job of the same name in the same pipeline.
    let mut first: HashMap<(u64, &str), u64> = HashMap::new();
    for j in jobs {
        let key = (j.pipeline.as_ref().map_or(0, |p| p.id), j.name.as_str());
        let e = first.entry(key).or_insert(j.id);
        *e = (*e).min(j.id);
    }
    jobs.iter()
        .map(|j| {
            let key = (j.pipeline.as_ref().map_or(0, |p| p.id), j.name.as_str());
            let ctx = priority::Context {
                default_branch: inputs.default_branch,
                access_level: j
                    .user
                    .as_ref()
                    .and_then(|u| inputs.access_levels.get(&u.id).copied()),
                retry: first.get(&key).is_some_and(|f| *f < j.id),
                now: inputs.now,
            };
            priority::priority(j, &ctx, rules)
        })
        .collect()
}

fn project_of(j: &Job) -> Option<u64> {
    j.pipeline
        .as_ref()
        .and_then(|p| p.project_id)
        .or_else(|| j.project.as_ref().and_then(|p| p.id))
}

pub fn facts_of<'a>(j: &'a Job, inputs: &Inputs<'_>, rules: &RoutingRules) -> JobFacts<'a> {
    JobFacts {
        job: j,
        protected_ref: Some(j.git_ref.as_str()) == inputs.default_branch
            || rules.protected_refs.iter().any(|g| g.matches(&j.git_ref)),
        project_id: project_of(j),
        timeout_s: inputs.timeouts.get(&j.id).copied(),
    }
}

/// Why no runner can take a job, in words: "no online runner has tags [gpu, cuda]".
fn no_runner_reason(j: &Job, gates: &[(usize, Gate)], fleet: &[FleetRunner]) -> String {
    if fleet.is_empty() {
        return "the fleet is empty".into();
    }
    let online_tagged = gates.iter().all(|(_, g)| {
        matches!(
            g,
            Gate::MissingTags { .. } | Gate::Paused | Gate::NotOnline { .. }
        )
    });
    let tag_holders = fleet.iter().any(|r| {
        j.tag_list
            .iter()
            .all(|t| r.runner.tag_list.iter().any(|rt| rt == t))
    });
    if !j.tag_list.is_empty() && online_tagged {
        return if tag_holders {
            format!(
                "no online runner has tags [{}] (the runners that have them are paused or offline)",
                j.tag_list.join(", ")
            )
        } else {
            format!("no online runner has tags [{}]", j.tag_list.join(", "))
        };
    }
    // The most common reason among the runners.
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, g) in gates {
        let w = match g {
            Gate::MissingTags { .. } => "lack its tags".to_string(),
            other => other.words(),
        };
        match counts.iter_mut().find(|(k, _)| *k == w) {
            Some(e) => e.1 += 1,
            None => counts.push((w, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    format!("no runner can take it: {}", parts.join("; "))
}

/// Every runner's verdict on one job, at the moment it was placed (`explain`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerVerdict {
    pub runner: u64,
    pub name: String,
    /// Free slots when the job was placed.
    pub free_slots: u32,
    /// Why it cannot take the job (None: eligible).
    pub gate: Option<Gate>,
    pub gate_words: Option<String>,
    pub score: Option<Score>,
    /// Its slots held by scarce jobs of lower priority, placed first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_for: Vec<KeptFor>,
}

/// Runner classes: each job's eligible runners (fleet indices, ascending),
/// deduplicated. `of[k]` is job `k`'s class; `subs[c]` the non-empty
/// classes that are strict subsets of class `c`.
struct Classes {
    sets: Vec<Vec<usize>>,
    of: Vec<usize>,
    subs: Vec<Vec<usize>>,
}

fn strict_subset(a: &[usize], b: &[usize]) -> bool {
    if a.len() >= b.len() {
        return false;
    }
    let mut it = b.iter();
    a.iter().all(|x| it.any(|y| y == x))
}

fn classes(
    jobs: &[&Job],
    fleet: &[FleetRunner],
    inputs: &Inputs<'_>,
    rules: &RoutingRules,
    with_subs: bool,
) -> Classes {
    let mut ids: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut sets: Vec<Vec<usize>> = Vec::new();
    let mut buf: Vec<usize> = Vec::with_capacity(fleet.len());
    let of = jobs
        .iter()
        .map(|j| {
            let jf = facts_of(j, inputs, rules);
            buf.clear();
            buf.extend((0..fleet.len()).filter(|&i| passes(&jf, &fleet[i])));
            match ids.get(&buf) {
                Some(&c) => c,
                None => {
                    ids.insert(buf.clone(), sets.len());
                    sets.push(buf.clone());
                    sets.len() - 1
                }
            }
        })
        .collect();
    let subs = if with_subs {
        sets.iter()
            .map(|b| {
                (0..sets.len())
                    .filter(|&d| !sets[d].is_empty() && strict_subset(&sets[d], b))
                    .collect()
            })
            .collect()
    } else {
        vec![Vec::new(); sets.len()]
    };
    Classes { sets, of, subs }
}

/// The order jobs are placed in with scarce runners kept: `by_priority`,
/// except that before each job, the waiting jobs whose class is a strict
/// subset of its class are placed (highest priority first, each after its
/// own such jobs). Iterative: a chain of nested classes can be as long as
/// the fleet.
fn scarce_first(by_priority: &[usize], rank: &[usize], cl: &Classes) -> Vec<usize> {
    let mut queues: Vec<Vec<usize>> = vec![Vec::new(); cl.sets.len()];
    for &k in by_priority {
        queues[cl.of[k]].push(k);
    }
    let mut head = vec![0usize; cl.sets.len()];
    let mut taken = vec![false; rank.len()];
    let mut out = Vec::with_capacity(by_priority.len());
    let mut stack: Vec<usize> = Vec::new();
    for &k in by_priority {
        if taken[k] {
            continue;
        }
        taken[k] = true;
        stack.push(k);
        while let Some(&top) = stack.last() {
            let mut best: Option<usize> = None;
            for &d in &cl.subs[cl.of[top]] {
                while head[d] < queues[d].len() && taken[queues[d][head[d]]] {
                    head[d] += 1;
                }
                if let Some(&j) = queues[d].get(head[d]) {
                    if best.is_none_or(|b| rank[j] < rank[b]) {
                        best = Some(j);
                    }
                }
            }
            match best {
                Some(j) => {
                    taken[j] = true;
                    stack.push(j);
                }
                None => {
                    stack.pop();
                    out.push(top);
                }
            }
        }
    }
    out
}

/// Assigns `jobs` (the ones to route) to the fleet; `priorities[k]` belongs
/// to `jobs[k]`. Output is in priority order (then waiting longest, then
/// id); with [`RoutingRules::reserve_scarce`] scarce jobs are placed before
/// the jobs whose class contains theirs.
#[allow(clippy::too_many_arguments)]
pub fn assign(
    jobs: &[&Job],
    priorities: Vec<Priority>,
    fleet: &[FleetRunner],
    running: &HashMap<u64, u32>,
    history: &History,
    inputs: &Inputs<'_>,
    rules: &RoutingRules,
) -> Vec<Assignment> {
    assign_with(
        jobs,
        priorities,
        fleet,
        running,
        history,
        inputs,
        rules,
        None,
        &TieAnswers::new(),
        None,
    )
    .0
}

/// A tie for a free slot between the two best runners, left for the LLM
/// tie-break: the job as assigned so far and the two runners (label, score).
#[derive(Debug, Clone)]
pub struct Tie {
    pub assignment: Assignment,
    pub best: (String, Score),
    pub second: (String, Score),
}

/// The tie-break's answers by job id: the runner it chose and why, or why
/// the rules' choice stands.
pub type TieAnswers = HashMap<u64, Result<(u64, LlmChoice), String>>;

/// [`assign`], also returning every runner's verdict on job `explain`, with
/// ties for a free slot settled by `answers`; a tie without an answer keeps
/// the rules' runner and is pushed on `ties`.
#[allow(clippy::too_many_arguments)]
pub fn assign_with(
    jobs: &[&Job],
    priorities: Vec<Priority>,
    fleet: &[FleetRunner],
    running: &HashMap<u64, u32>,
    history: &History,
    inputs: &Inputs<'_>,
    rules: &RoutingRules,
    explain: Option<u64>,
    answers: &TieAnswers,
    mut ties: Option<&mut Vec<Tie>>,
) -> (Vec<Assignment>, Vec<RunnerVerdict>) {
    let mut verdicts = Vec::new();
    let facts = runner_facts(fleet, &inputs.live_carbon);
    let mut slots = Slots::new(fleet, running);
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| {
        priorities[b]
            .urgency
            .cmp(&priorities[a].urgency)
            .then(priorities[b].score.cmp(&priorities[a].score))
            .then(
                priorities[b]
                    .waited_s
                    .unwrap_or(0)
                    .cmp(&priorities[a].waited_s.unwrap_or(0)),
            )
            .then(jobs[a].id.cmp(&jobs[b].id))
    });
    let mut rank = vec![0usize; jobs.len()];
    for (n, &k) in order.iter().enumerate() {
        rank[k] = n;
    }
    let cl = classes(jobs, fleet, inputs, rules, rules.reserve_scarce);
    let scarce: Vec<bool> = {
        let mut v = vec![false; cl.sets.len()];
        for subs in &cl.subs {
            for &d in subs {
                v[d] = true;
            }
        }
        v
    };
    let order = if rules.reserve_scarce {
        scarce_first(&order, &rank, &cl)
    } else {
        order
    };
    // runner index → jobs placed on it (for "kept for").
    let mut placed_on: Vec<Vec<usize>> = vec![Vec::new(); fleet.len()];
    let kept_on = |i: usize, k: usize, placed_on: &[Vec<usize>]| -> Vec<KeptFor> {
        // A job of lower priority placed before `k` was placed ahead of it:
        // a scarce job.
        placed_on[i]
            .iter()
            .filter(|&&q| rank[q] > rank[k])
            .map(|&q| KeptFor {
                runner: fleet[i].id(),
                runner_name: fleet[i].label(),
                job: jobs[q].id,
                name: jobs[q].name.clone(),
                class_size: cl.sets[cl.of[q]].len(),
            })
            .collect()
    };
    let mut queue_len: Vec<u32> = vec![0; fleet.len()];
    let mut prios: Vec<Option<Priority>> = priorities.into_iter().map(Some).collect();
    let mut out: Vec<(usize, Assignment)> = Vec::with_capacity(jobs.len());
    let mut eligible: Vec<usize> = Vec::with_capacity(fleet.len());
    let mut gates: Vec<(usize, Gate)> = Vec::new();
    for k in order {
        let j = jobs[k];
        let p = prios[k].take().expect("each job once");
        let jf = facts_of(j, inputs, rules);
        eligible.clear();
        gates.clear();
        eligible.extend_from_slice(&cl.sets[cl.of[k]]);
        // The reasons, only when they are shown: no runner, or `explain`.
        if eligible.is_empty() || explain == Some(j.id) {
            for (i, r) in fleet.iter().enumerate() {
                if let Err(g) = gate(&jf, r) {
                    gates.push((i, g));
                }
            }
        }
        let mut a = Assignment {
            job: j.id,
            name: j.name.clone(),
            git_ref: j.git_ref.clone(),
            tags: j.tag_list.clone(),
            priority: p.score,
            urgency: p.urgency,
            priority_breakdown: p,
            runner: None,
            runner_name: None,
            score: None,
            runner_up: None,
            margin: None,
            decided_by: "none".into(),
            reason: None,
            queued: None,
            candidates: eligible.len(),
            tie: false,
            llm: None,
            llm_unavailable: None,
            scarce_class: (rules.reserve_scarce && scarce[cl.of[k]])
                .then(|| eligible.iter().map(|&i| fleet[i].id()).collect()),
            kept: Vec::new(),
            cleaner_later: None,
        };
        if explain == Some(j.id) {
            for (i, r) in fleet.iter().enumerate() {
                let g = gates
                    .iter()
                    .find(|(gi, _)| *gi == i)
                    .map(|(_, g)| g.clone());
                let sc = scales(&eligible, &facts, &slots);
                verdicts.push(RunnerVerdict {
                    runner: r.id(),
                    name: r.label(),
                    free_slots: slots.free(i),
                    gate_words: g.as_ref().map(Gate::words),
                    score: g
                        .is_none()
                        .then(|| score(j, a.urgency, i, fleet, &facts, &slots, sc, history, rules)),
                    gate: g,
                    kept_for: if slots.free(i) == 0 {
                        kept_on(i, k, &placed_on)
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        if eligible.is_empty() {
            a.reason = Some(no_runner_reason(j, &gates, fleet));
            out.push((rank[k], a));
            continue;
        }
        let with_slot: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| slots.free(i) > 0)
            .collect();
        let pool = if with_slot.is_empty() {
            &eligible
        } else {
            &with_slot
        };
        // Totals first (numbers only); the two best get their full score.
        let sc = scales(pool, &facts, &slots);
        let mut top: [Option<(f64, usize)>; 2] = [None, None];
        let better = |x: (f64, usize), y: Option<(f64, usize)>| match y {
            None => true,
            Some(y) => x.0 > y.0 || (x.0 == y.0 && fleet[x.1].id() < fleet[y.1].id()),
        };
        for &i in pool.iter() {
            let t = total(j, a.urgency, i, fleet, &facts, &slots, sc, history, rules);
            if better((t, i), top[0]) {
                top[1] = top[0];
                top[0] = Some((t, i));
            } else if better((t, i), top[1]) {
                top[1] = Some((t, i));
            }
        }
        let full = |i: usize| score(j, a.urgency, i, fleet, &facts, &slots, sc, history, rules);
        let mut scored: Vec<Score> = top.iter().flatten().map(|&(_, i)| full(i)).collect();
        // `scored` is sorted best first: the runner-up is the second.
        let label = |id: u64| {
            fleet
                .iter()
                .find(|r| r.id() == id)
                .map(FleetRunner::label)
                .unwrap_or_default()
        };
        let mut second = (scored.len() > 1).then(|| scored.swap_remove(1));
        let mut best = scored.swap_remove(0);
        a.decided_by = if pool.len() == 1 {
            "only_candidate"
        } else {
            "rules"
        }
        .into();
        if let Some(sec) = &second {
            let margin = if best.total > 0.0 {
                (best.total - sec.total) / best.total
            } else {
                0.0
            };
            a.margin = Some(margin);
            a.tie = margin < rules.margin;
        }
        // A tie for a free slot: the LLM may have chosen between the two
        // (asked by the command between two passes, see `fleet::tiebreak`).
        if let (true, false, Some(sec)) = (a.tie, with_slot.is_empty(), second.as_ref()) {
            match answers.get(&a.job) {
                Some(Ok((runner, choice))) => {
                    if *runner != best.runner {
                        if let Some(sec) = second.take() {
                            second = Some(std::mem::replace(&mut best, sec));
                        }
                    }
                    a.decided_by = "llm".into();
                    a.llm = Some(choice.clone());
                }
                Some(Err(why)) => a.llm_unavailable = Some(why.clone()),
                None => {
                    if let Some(t) = ties.as_deref_mut() {
                        t.push(Tie {
                            assignment: a.clone(),
                            best: (label(best.runner), best.clone()),
                            second: (label(sec.runner), sec.clone()),
                        });
                    }
                }
            }
        }
        if let Some(sec) = &second {
            a.runner_up = Some(RunnerChoice {
                runner: sec.runner,
                name: label(sec.runner),
                score: sec.total,
            });
        }
        let bi = fleet
            .iter()
            .position(|r| r.id() == best.runner)
            .expect("scored runner is in the fleet");
        if with_slot.is_empty() {
            queue_len[bi] += 1;
            let position = queue_len[bi];
            let conc = slots.concurrent[bi].max(1);
            let waves = position.div_ceil(conc);
            let expected = history
                .expected_duration(fleet[bi].id(), &j.name)
                .map(|d| d * f64::from(waves));
            a.reason = Some(format!(
                "all {} eligible runner{} busy: queued at position {position} on {}",
                eligible.len(),
                if eligible.len() == 1 { " is" } else { "s are" },
                fleet[bi].label()
            ));
            a.queued = Some(Queued {
                runner: fleet[bi].id(),
                runner_name: fleet[bi].label(),
                position,
                expected_start_s: expected,
            });
            a.score = Some(best);
            if rules.reserve_scarce {
                a.kept = eligible
                    .iter()
                    .flat_map(|&i| kept_on(i, k, &placed_on))
                    .collect();
            }
        } else {
            slots.used[bi] += 1;
            placed_on[bi].push(k);
            a.runner = Some(fleet[bi].id());
            a.runner_name = Some(fleet[bi].label());
            a.score = Some(best);
        }
        a.cleaner_later = cleaner_later(&a, fleet, inputs);
        out.push((rank[k], a));
    }
    out.sort_by_key(|(r, _)| *r);
    (out.into_iter().map(|(_, a)| a).collect(), verdicts)
}

/// Running jobs per runner id, from a jobs list.
pub fn running_counts(jobs: &[Job]) -> HashMap<u64, u32> {
    let mut m = HashMap::new();
    for j in jobs.iter().filter(|j| j.status == "running") {
        if let Some(r) = j.runner.as_ref().filter(|r| r.id != 0) {
            *m.entry(r.id).or_insert(0) += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::model::RunnerExt;
    use crate::gitlab::models::Runner;

    fn runner(id: u64, tags: &[&str], concurrent: u32, zone: Option<&str>) -> FleetRunner {
        FleetRunner {
            runner: Runner {
                id,
                description: Some(format!("r{id}")),
                status: Some("online".into()),
                paused: Some(false),
                tag_list: tags.iter().map(|t| t.to_string()).collect(),
                run_untagged: Some(true),
                access_level: Some("not_protected".into()),
                ..Runner::default()
            },
            runneriq: RunnerExt {
                concurrent: Some(concurrent),
                zone: zone.map(str::to_string),
                ..RunnerExt::default()
            },
        }
    }

    fn job(id: u64, name: &str, tags: &[&str], git_ref: &str) -> Job {
        Job {
            id,
            name: name.into(),
            stage: "test".into(),
            status: "pending".into(),
            git_ref: git_ref.into(),
            tag_list: tags.iter().map(|t| t.to_string()).collect(),
            created_at: Some("2026-01-01T10:00:00Z".into()),
            ..Job::default()
        }
    }

    fn inputs() -> Inputs<'static> {
        Inputs {
            default_branch: Some("main"),
            now: 1_767_261_600,
            ..Inputs::default()
        }
    }

    fn run(jobs: &[Job], fleet: &[FleetRunner]) -> Vec<Assignment> {
        let refs: Vec<&Job> = jobs.iter().collect();
        let pr = priorities(&refs, &inputs(), &PriorityRules::default());
        assign(
            &refs,
            pr,
            fleet,
            &HashMap::new(),
            &History::default(),
            &inputs(),
            &RoutingRules::default(),
        )
    }

    #[test]
    fn gates_follow_gitlab() {
        let i = inputs();
        let rules = RoutingRules::default();
        let j = job(1, "t", &["docker"], "feature/x");
        let jf = facts_of(&j, &i, &rules);
        let mut r = runner(1, &["docker", "linux"], 1, None);
        assert_eq!(gate(&jf, &r), Ok(()));
        r.runner.paused = Some(true);
        assert_eq!(gate(&jf, &r), Err(Gate::Paused));
        let mut r = runner(1, &["linux"], 1, None);
        assert_eq!(
            gate(&jf, &r),
            Err(Gate::MissingTags {
                tags: vec!["docker".into()]
            })
        );
        r.runner.status = Some("stale".into());
        assert!(matches!(gate(&jf, &r), Err(Gate::NotOnline { .. })));
        let u = job(2, "t", &[], "feature/x");
        let mut r = runner(1, &["docker"], 1, None);
        r.runner.run_untagged = Some(false);
        assert_eq!(gate(&facts_of(&u, &i, &rules), &r), Err(Gate::NoUntagged));
        let mut r = runner(1, &["docker"], 1, None);
        r.runner.access_level = Some("ref_protected".into());
        assert_eq!(gate(&jf, &r), Err(Gate::ProtectedOnly));
        let m = job(3, "t", &["docker"], "main");
        assert_eq!(gate(&facts_of(&m, &i, &rules), &r), Ok(()));
        let mut r = runner(1, &["docker"], 1, None);
        r.runner.maximum_timeout = Some(600);
        let mut ti = inputs();
        ti.timeouts.insert(1, 3600);
        assert!(matches!(
            gate(&facts_of(&j, &ti, &rules), &r),
            Err(Gate::Timeout { .. })
        ));
    }

    #[test]
    fn slots_are_never_exceeded_and_the_rest_queue() {
        let fleet = [runner(1, &["docker"], 2, None)];
        let jobs: Vec<Job> = (1..=5).map(|i| job(i, "t", &["docker"], "main")).collect();
        let a = run(&jobs, &fleet);
        assert_eq!(a.iter().filter(|x| x.runner == Some(1)).count(), 2);
        let queued: Vec<u32> = a
            .iter()
            .filter_map(|x| x.queued.as_ref().map(|q| q.position))
            .collect();
        assert_eq!(queued, vec![1, 2, 3]);
        assert!(
            a[4].reason
                .as_deref()
                .unwrap()
                .contains("busy: queued at position 3")
        );
    }

    #[test]
    fn a_job_no_runner_can_take_says_why() {
        let fleet = [
            runner(1, &["docker"], 2, None),
            runner(2, &["linux"], 1, None),
        ];
        let a = run(&[job(1, "train", &["gpu", "cuda"], "main")], &fleet);
        assert_eq!(a[0].runner, None);
        assert_eq!(a[0].decided_by, "none");
        assert_eq!(
            a[0].reason.as_deref(),
            Some("no online runner has tags [gpu, cuda]")
        );
    }

    #[test]
    fn a_scarce_runner_is_kept_for_the_job_only_it_can_take() {
        // One GPU runner (2 slots, the cleanest grid, idle) and two generic
        // runners with one free slot each; four generic jobs on main and
        // `test:gpu` on a feature branch (lower priority).
        let fleet = [
            runner(1, &["docker", "linux", "gpu"], 2, Some("SE-SE1")),
            runner(2, &["docker", "linux"], 1, Some("DE")),
            runner(3, &["docker", "linux"], 1, Some("PL")),
        ];
        let mut jobs: Vec<Job> = (1..=4)
            .map(|i| job(i, &format!("build {i}"), &["docker", "linux"], "main"))
            .collect();
        jobs.push(job(103, "test:gpu", &["docker", "gpu"], "feature/x"));
        let on = |a: &[Assignment], id: u64| a.iter().find(|x| x.job == id).unwrap().runner;
        // Off: the generic jobs take the GPU runner, `test:gpu` waits.
        let refs: Vec<&Job> = jobs.iter().collect();
        let off = RoutingRules {
            reserve_scarce: false,
            ..RoutingRules::default()
        };
        let pr = priorities(&refs, &inputs(), &PriorityRules::default());
        let a = assign(
            &refs,
            pr,
            &fleet,
            &HashMap::new(),
            &History::default(),
            &inputs(),
            &off,
        );
        assert_eq!(on(&a, 103), None);
        assert_eq!(a.iter().filter(|x| x.runner == Some(1)).count(), 2);
        assert!(
            a.iter()
                .all(|x| x.scarce_class.is_none() && x.kept.is_empty())
        );
        // On (the default): `test:gpu` gets a GPU slot, one generic job
        // waits, and says the slot was kept.
        let a = run(&jobs, &fleet);
        assert_eq!(on(&a, 103), Some(1));
        let t = a.iter().find(|x| x.job == 103).unwrap();
        assert_eq!(t.scarce_class.as_deref(), Some(&[1][..]));
        assert_eq!(a.last().unwrap().job, 103, "output stays in priority order");
        let waiting: Vec<&Assignment> = a.iter().filter(|x| x.queued.is_some()).collect();
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            waiting[0].kept,
            vec![KeptFor {
                runner: 1,
                runner_name: "r1".into(),
                job: 103,
                name: "test:gpu".into(),
                class_size: 1,
            }]
        );
        // Enough room: nothing is kept from anyone.
        let a = run(&jobs[..2], &fleet);
        assert!(
            a.iter()
                .all(|x| x.runner.is_some() && x.scarce_class.is_none())
        );
    }

    #[test]
    fn urgent_jobs_first_and_low_urgency_prefers_clean_power() {
        // A lint on an experimental branch (LOW) and a deploy on main by an
        // unknown user ((100 + 25 + 100) / 3 = 75, HIGH): one slot on the
        // clean runner, one on the dirty one.
        let fleet = [
            runner(1, &["docker"], 1, Some("FR")),
            runner(2, &["docker"], 1, Some("PL")),
        ];
        let mut deploy = job(10, "deploy", &["docker"], "main");
        deploy.stage = "deploy".into();
        let lint = job(11, "lint", &["docker"], "spike/x");
        let a = run(&[lint, deploy], &fleet);
        assert_eq!(a[0].job, 10, "the deploy is placed first");
        assert_eq!(a[0].urgency, Urgency::High);
        assert_eq!(a[1].urgency, Urgency::Low);
        assert_eq!(a[0].decided_by, "rules");
        assert_eq!(a[1].decided_by, "only_candidate");
        // The deploy (carbon 20 %) goes to the cleaner runner, all else equal.
        assert_eq!(a[0].runner, Some(1));
        assert_eq!(a[1].runner, Some(2));
    }

    #[test]
    fn a_low_job_is_told_a_cleaner_hour_only_from_live_values() {
        use crate::fleet::carbon::{Cleanest, Intensity, Live};
        let fleet = [runner(1, &["docker"], 4, Some("DE"))];
        // A LOW job (lint on an experimental ref) and a CRITICAL one.
        let mut lint = job(1, "lint", &["docker"], "spike/x");
        lint.stage = "lint".into();
        let mut deploy = job(2, "deploy", &["docker"], "main");
        deploy.stage = "deploy".into();
        let jobs = [lint, deploy];
        let refs: Vec<&Job> = jobs.iter().collect();
        let live = |now_g: f64, later_g: f64, at: &str| {
            let mut l = Live::default();
            l.intensities.insert(
                "DE".into(),
                Intensity {
                    g_per_kwh: now_g,
                    zone: "DE".into(),
                    source: "Electricity Maps, latest".into(),
                    fallback: false,
                },
            );
            l.forecast.insert(
                "DE".into(),
                Cleanest {
                    zone: "DE".into(),
                    g_per_kwh: later_g,
                    at: at.into(),
                },
            );
            l
        };
        let advice = |l: Live| {
            let inputs = Inputs {
                live_carbon: l,
                ..inputs()
            };
            let pr = priorities(&refs, &inputs, &PriorityRules::default());
            let out = assign(
                &refs,
                pr,
                &fleet,
                &HashMap::new(),
                &History::default(),
                &inputs,
                &RoutingRules::default(),
            );
            let by = |id| out.iter().find(|a| a.job == id).unwrap().clone();
            assert_eq!(by(1).urgency, Urgency::Low);
            assert!(by(2).cleaner_later.is_none(), "only LOW jobs wait");
            by(1).cleaner_later
        };
        // now = 2026-01-01T10:00Z; 40 % cleaner at 14:00.
        let c = advice(live(180.0, 108.0, "2026-01-01T14:00:00Z")).unwrap();
        assert_eq!(
            (c.in_s, c.g_per_kwh, c.now_g_per_kwh),
            (4 * 3600, 108.0, 180.0)
        );
        assert!((c.cleaner - 0.4).abs() < 1e-9);
        // Less than 10 % cleaner, or the cleanest hour already past: no advice.
        assert!(advice(live(180.0, 170.0, "2026-01-01T14:00:00Z")).is_none());
        assert!(advice(live(180.0, 100.0, "2026-01-01T09:00:00Z")).is_none());
        // Only the tables (no token): never compared with a forecast.
        assert!(advice(Live::default()).is_none());
    }
}
