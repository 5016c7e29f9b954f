//! A window of finished jobs → the weekly report's numbers ([`ReportData`],
//! the `--format json` contract of `runneriq report`).
//!
//! Jobs are streamed into an [`Aggregator`] one at a time and never kept: each
//! counted job becomes one fixed-size record of numbers (ids, times, f32
//! durations, indices into small interning tables of names, refs, tag sets,
//! commits, URL prefixes and failure reasons), 88 bytes, so 200,000 jobs
//! take ~18 MB. [`Aggregator::finish`] derives everything from those records.
//!
//! Definitions:
//! - A job is **counted** when its `created_at` falls in the window
//!   `[from, to)` and its status is `success`, `failed` or `canceled`; every
//!   other job is **skipped** and counted by reason (no `created_at`, outside
//!   the window, unfinished).
//! - A job's **duration** is its `duration`, else `finished_at − started_at`;
//!   a runner's **busy time** is the sum of its jobs' durations, and its
//!   **utilization** busy ÷ (slots × window length), slots being the fleet's
//!   `runneriq.concurrent` (1 for runners outside the fleet).
//! - **Percentiles** are nearest-rank: the value at rank ⌈p/100 · n⌉ (1-based)
//!   of the sorted values, so always one of the observed values.
//! - The **infrastructure failure rate** is failures with a reason in
//!   [`INFRA_REASONS`] ÷ the runner's success + failed jobs (canceled jobs
//!   neither pass nor fail); every other failed job is a script failure.
//! - The **composite score** (the Python original's): throughput
//!   `min(100, 12·log2(jobs+1))`; speed `50 · fleet mean ÷ runner mean` of
//!   successful durations, capped at 100 (50, "like the fleet", without data);
//!   reliability `100 · (1 − infra rate)`; utilization 100 between 50 % and
//!   80 %, `u/0.5 · 100` below, `(1−u)/0.2 · 100` above (floored at 0); the
//!   total is Σ weight · component with the weights normalised to sum 1.
//! - **Detectors** skip runners with fewer than `min_jobs` jobs and fire
//!   strictly past their threshold (`>`; `<` for under-utilization).
//! - **Urgency** of a job for the queue waits: [`priority::priority`] with the
//!   role unknown, `now` = its own `created_at` (so no SLA escalation) and
//!   `retry` when a job with the same name and pipeline and a lower id was
//!   counted (whatever the order jobs arrive in).
//! - **Cleaner alternative**: a job on a fleet runner with known zone and
//!   power, and another fleet runner with a lower carbon intensity and known
//!   power that passes [`route::gate`] for the job (protected refs: the
//!   default branch, `main`, `master`) and ran no job overlapping the job's
//!   `[started_at, finished_at)`; the saving assumes the same duration there.
//! - **Cost** (only for fleet runners with `runneriq.cost_per_hour`, what the
//!   runner costs per hour with all its slots, in the fleet file's currency):
//!   a runner's **capacity** is slots × the window's hours (slot-hours, the
//!   utilization's denominator), one slot-hour costs `cost_per_hour ÷ slots`;
//!   its **busy cost** is busy hours × that, its **idle cost** the unused
//!   slot-hours (capacity − busy, at least 0) × that, so busy + idle is the
//!   runner's bill for the window when it ran the whole window. A job's cost
//!   is its duration × its runner's slot-hour cost; jobs on runners without a
//!   cost are counted apart, never as 0.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::fleet::carbon;
use crate::fleet::model::FleetRunner;
use crate::fleet::priority::{self, PriorityRules, Urgency, parse_time};
use crate::fleet::route::{self, RoutingRules};
use crate::fleet::stats::INFRA_REASONS;
use crate::gitlab::models::Job;

/// Days listed in `failures_by_day` at most (a bogus window stays small).
const MAX_DAYS: i64 = 3660;
const TOP_TAGS: usize = 20;
const TOP_FLAKY: usize = 20;
const TOP_PIPELINES: usize = 10;
const TOP_ALTERNATIVES: usize = 10;

/// The report's time window: unix seconds, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        t >= self.from && t < self.to
    }

    /// Length in seconds (0 for an empty or inverted window).
    pub fn seconds(&self) -> i64 {
        self.to.saturating_sub(self.from).max(0)
    }
}

/// Weights of the composite score's components (normalised before use).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreWeights {
    pub throughput: f64,
    pub speed: f64,
    pub reliability: f64,
    pub utilization: f64,
}

impl Default for ScoreWeights {
    fn default() -> ScoreWeights {
        ScoreWeights {
            throughput: 0.25,
            speed: 0.30,
            reliability: 0.30,
            utilization: 0.15,
        }
    }
}

impl ScoreWeights {
    /// The weights scaled to sum 1; the defaults when they cannot be
    /// (negative, not finite, all zero).
    pub fn normalised(&self) -> ScoreWeights {
        let parts = [
            self.throughput,
            self.speed,
            self.reliability,
            self.utilization,
        ];
        let sum: f64 = parts.iter().sum();
        if parts.iter().any(|w| !w.is_finite() || *w < 0.0) || sum <= 0.0 {
            return ScoreWeights::default().normalised();
        }
        ScoreWeights {
            throughput: self.throughput / sum,
            speed: self.speed / sum,
            reliability: self.reliability / sum,
            utilization: self.utilization / sum,
        }
    }
}

/// The report's thresholds and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRules {
    pub weights: ScoreWeights,
    /// `slow_runner`: the runner's time for the same jobs ÷ the fleet's above this.
    pub slow_factor: f64,
    /// `underutilized`: utilization (0..1) below this.
    pub underutilized: f64,
    /// `infra_failures`: infrastructure failure rate (0..1) above this.
    pub infra_failure_rate: f64,
    /// `bottleneck`: utilization (0..1) above this...
    pub bottleneck_utilization: f64,
    /// ...or the p95 queue wait of the runner's jobs above this many seconds.
    pub bottleneck_wait_p95_s: f64,
    /// Detectors ignore runners with fewer jobs.
    pub min_jobs: u32,
}

impl Default for ReportRules {
    fn default() -> ReportRules {
        ReportRules {
            weights: ScoreWeights::default(),
            slow_factor: 2.0,
            underutilized: 0.20,
            infra_failure_rate: 0.05,
            bottleneck_utilization: 0.90,
            bottleneck_wait_p95_s: 600.0,
            min_jobs: 5,
        }
    }
}

/// Jobs not counted, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// `created_at` before `from` or at/after `to`.
    pub outside_window: u32,
    /// Status other than success, failed, canceled.
    pub unfinished: u32,
    /// No parsable `created_at`.
    pub no_timestamps: u32,
}

/// A runner's composite score (0–100) and its components.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompositeScore {
    pub total: f64,
    pub throughput: f64,
    pub speed: f64,
    pub reliability: f64,
    pub utilization: f64,
    /// The normalised weights the total used.
    pub weights: ScoreWeights,
}

/// One runner over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerMetrics {
    pub id: u64,
    pub name: String,
    pub jobs: u32,
    pub busy_s: f64,
    pub p50_duration_s: Option<f64>,
    pub p95_duration_s: Option<f64>,
    /// Job slots utilization is computed against.
    pub slots: u32,
    /// busy ÷ (slots × window length), 0..1 (may pass 1 when jobs created
    /// in the window ran past its end).
    pub utilization: f64,
    /// p95 of the queue waits of the jobs it ran.
    pub queue_p95_s: Option<f64>,
    pub failures_infra: u32,
    pub failures_script: u32,
    pub infra_failure_rate: f64,
    pub score: CompositeScore,
}

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    SlowRunner,
    Underutilized,
    InfraFailures,
    Bottleneck,
}

/// A detector's finding about one runner, with what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub runner: u64,
    pub name: String,
    /// The measured value (ratio, utilization or rate 0..1, seconds).
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    pub recommendation: String,
}

/// Queue waits of one urgency class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassWait {
    pub urgency: Urgency,
    /// Jobs with a `queued_duration`.
    pub jobs: u32,
    pub p50_s: f64,
    pub p95_s: f64,
    pub max_s: f64,
}

/// Queue waits of one tag set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagWait {
    /// Sorted, comma-separated (`"docker,linux"`), or `"(untagged)"`.
    pub tags: String,
    pub jobs: u32,
    pub p50_s: f64,
    pub p95_s: f64,
    pub max_s: f64,
}

/// A job name that failed and then passed on the same commit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlakyJob {
    pub name: String,
    /// Failed-then-passed sequences (one per pass that follows failures).
    pub occurrences: u32,
    /// The failed attempt of the latest occurrence: its id, page and ref.
    pub last_job: u64,
    pub last_web_url: Option<String>,
    pub last_ref: String,
}

/// Failed jobs of one UTC day by category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayFailures {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub by_category: BTreeMap<String, u32>,
}

/// One runner's energy and emissions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerCarbon {
    pub id: u64,
    pub name: String,
    /// The zone as the table matched it.
    pub zone: String,
    pub g_per_kwh: f64,
    pub source: String,
    pub energy_kwh: f64,
    pub co2e_g: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineCarbon {
    pub pipeline_id: u64,
    pub co2e_g: f64,
}

/// A job that could have run on a cleaner runner that was free.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative {
    pub job_id: u64,
    pub name: String,
    pub ran_on: String,
    pub could_run_on: String,
    pub saved_g: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CarbonReport {
    pub runners: Vec<RunnerCarbon>,
    pub total_kwh: f64,
    pub total_co2e_g: f64,
    /// Energy-weighted; None without energy.
    pub fleet_avg_g_per_kwh: Option<f64>,
    /// Runners that ran jobs but lack a known zone or power (or are not in the fleet).
    pub unknown: Vec<String>,
    pub pipelines_top: Vec<PipelineCarbon>,
    pub cleaner_alternatives: Vec<Alternative>,
}

/// One fleet runner's cost over the window (see the module's definitions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerCost {
    pub id: u64,
    pub name: String,
    /// The fleet file's `cost_per_hour` (the whole runner, all slots).
    pub cost_per_hour: f64,
    pub slots: u32,
    pub busy_h: f64,
    /// Slots × the window's hours.
    pub capacity_h: f64,
    pub busy_cost: f64,
    /// (capacity − busy, at least 0) × cost_per_hour ÷ slots.
    pub idle_cost: f64,
}

/// The cost of one urgency class's jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassCost {
    pub urgency: Urgency,
    /// Jobs on runners with a cost.
    pub jobs: u32,
    pub busy_h: f64,
    pub cost: f64,
    /// Jobs of the class on runners without a cost (not in `cost`).
    pub jobs_without_cost: u32,
}

/// Cost per runner and per priority class, and of idle capacity; present
/// when at least one fleet runner has `runneriq.cost_per_hour`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostReport {
    pub runners: Vec<RunnerCost>,
    pub busy_cost: f64,
    pub idle_cost: f64,
    /// CRITICAL, HIGH, MEDIUM, LOW (present classes only).
    pub by_class: Vec<ClassCost>,
    /// Runners that ran jobs or are in the fleet but have no cost.
    pub unknown: Vec<String>,
}

/// The report's data (`--format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    pub window: Window,
    pub jobs: u32,
    pub skipped: Skipped,
    pub pipelines: u32,
    pub runners: Vec<RunnerMetrics>,
    pub findings: Vec<Finding>,
    pub queue_wait: Vec<ClassWait>,
    pub queue_wait_by_tags: Vec<TagWait>,
    pub flaky: Vec<FlakyJob>,
    /// The flakiest tests of the default branch's unit test reports (filled
    /// by the caller, which reads the reports: see `report::flaky_tests`).
    pub flaky_tests: Vec<super::flaky_tests::FlakyTest>,
    /// Default-branch pipelines whose unit test reports were read.
    pub test_pipelines: u32,
    /// The branch they ran on.
    pub test_branch: Option<String>,
    pub failures_by_day: Vec<DayFailures>,
    pub carbon: CarbonReport,
    /// None when no fleet runner has `runneriq.cost_per_hour`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostReport>,
}

const NONE: u32 = u32::MAX;
/// `JobRec::url` flag: the entry is a whole URL, not a prefix for the job id.
const FULL_URL: u32 = 1 << 31;
const NO_TIME: i64 = i64::MIN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Success,
    Failed,
    Canceled,
}

/// One counted job, as numbers.
#[derive(Debug, Clone, Copy)]
struct JobRec {
    id: u64,
    created: i64,
    start: i64,
    end: i64,
    /// NaN when unknown.
    duration: f32,
    queued: f32,
    runner: u32,
    name: u32,
    tags: u32,
    git_ref: u32,
    /// Index into `Aggregator::pipeline_ids` (NONE: no pipeline).
    pipeline: u32,
    /// The (pipeline, name) group: retries.
    retry_group: u32,
    /// The (commit, name) group: flaky jobs (NONE: no commit).
    flaky_group: u32,
    url: u32,
    /// Index into `Aggregator::candidate_sets`.
    candidates: u32,
    /// Index into `Aggregator::reasons` (failed jobs).
    reason: u32,
    status: Status,
    /// Urgency without and with the retry bonus.
    urgency: [Urgency; 2],
}

/// A multiplicative hasher (FxHash's) for the maps keyed by integers:
/// GitLab's ids and our own indices, not values anyone picks to collide.
/// SipHash costs several times more per job, in debug builds above all.
#[derive(Debug, Default, Clone, Copy)]
struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type IntMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IntHasher>>;

/// Longest string interned, in bytes: GitLab caps job names and refs at 255
/// characters; longer text (from a damaged or hostile snapshot) is cut.
const MAX_INTERNED_LEN: usize = 1024;
/// Bytes one table holds; past it, new strings all share one entry.
const MAX_INTERNED_BYTES: usize = 64 << 20;
/// The shared entry of strings that did not fit.
const OVERFLOW: &str = "(too many distinct values)";

/// Strings stored once, referred to by index. Remembers the last string
/// asked for: jobs arrive pipeline by pipeline, sharing ref, commit, stage.
/// Bounded: strings are cut at [`MAX_INTERNED_LEN`], and a table that holds
/// [`MAX_INTERNED_BYTES`] maps every new string to [`OVERFLOW`].
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    list: Vec<String>,
    last: Option<u32>,
    bytes: usize,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        // The last char boundary at or below MAX_INTERNED_LEN bytes.
        let cut = (0..=MAX_INTERNED_LEN.min(s.len()))
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        let s = &s[..cut];
        if let Some(i) = self.last.filter(|&i| self.list[i as usize] == s) {
            return i;
        }
        let i = match self.ids.get(s) {
            Some(&i) => i,
            None if self.bytes + s.len() > MAX_INTERNED_BYTES && s != OVERFLOW => {
                return self.id(OVERFLOW);
            }
            None => {
                let i = u32::try_from(self.list.len()).unwrap_or(NONE - 1);
                self.ids.insert(s.to_owned(), i);
                self.list.push(s.to_owned());
                self.bytes += s.len();
                i
            }
        };
        self.last = Some(i);
        i
    }

    fn get(&self, i: u32) -> &str {
        self.list.get(i as usize).map_or("", String::as_str)
    }
}

#[derive(Debug)]
struct RunnerInfo {
    id: u64,
    name: String,
    fleet: Option<usize>,
}

/// A fleet runner's carbon facts, when both are known.
#[derive(Debug, Clone)]
struct Footprint {
    intensity: carbon::Intensity,
    watts: f64,
}

impl Footprint {
    fn grams(&self, seconds: f64) -> f64 {
        self.watts * seconds / 3.6e6 * self.intensity.g_per_kwh
    }

    /// Grams per second of a job.
    fn rate(&self) -> f64 {
        self.watts * self.intensity.g_per_kwh / 3.6e6
    }
}

/// Streams jobs into the report's aggregates.
#[derive(Debug)]
pub struct Aggregator {
    window: Window,
    rules: ReportRules,
    priority: PriorityRules,
    routing: RoutingRules,
    default_branch: Option<String>,
    fleet: Vec<FleetRunner>,
    footprints: Vec<Option<Footprint>>,
    runners: Vec<RunnerInfo>,
    runner_index: IntMap<u64, u32>,
    names: Interner,
    refs: Interner,
    stages: Interner,
    shas: Interner,
    urls: Interner,
    reasons: Interner,
    categories: Interner,
    tag_sets: Interner,
    /// A job's tag list as given → its sorted set's index.
    raw_tags: HashMap<Vec<String>, u32>,
    last_tags: Option<(Vec<String>, u32)>,
    /// (ref, name, stage, flags) → urgency without / with retry.
    urgencies: IntMap<(u32, u32, u32, u8), [Urgency; 2]>,
    /// (tags, ref, project, fleet runner) → candidate set (NONE: none).
    candidates: IntMap<(u32, u32, Option<u64>, usize), u32>,
    /// Cleaner fleet runners that pass the gate.
    candidate_sets: Vec<Vec<u32>>,
    /// Pipeline ids seen, and their index.
    pipeline_ids: Vec<u64>,
    pipeline_index: IntMap<u64, u32>,
    /// (pipeline, name) → group; the lowest job id of each group.
    retry_groups: IntMap<(u32, u32), u32>,
    retry_first: Vec<u64>,
    /// (commit, name) → group; whether each group has a failure and a success.
    flaky_groups: IntMap<(u32, u32), u32>,
    flaky_mix: Vec<(bool, bool)>,
    /// job id → category given by `set_category`.
    classified: IntMap<u64, u32>,
    jobs: Vec<JobRec>,
    skipped: Skipped,
}

impl Aggregator {
    pub fn new(
        window: Window,
        fleet: Option<&[FleetRunner]>,
        rules: ReportRules,
        priority: PriorityRules,
        default_branch: Option<String>,
    ) -> Aggregator {
        let fleet = fleet.map(<[FleetRunner]>::to_vec).unwrap_or_default();
        let footprints = fleet
            .iter()
            .map(|r| {
                let intensity = r.runneriq.zone.as_deref().and_then(carbon::lookup)?;
                let watts = r
                    .runneriq
                    .power_watts
                    .filter(|w| w.is_finite() && *w >= 0.0)?;
                Some(Footprint { intensity, watts })
            })
            .collect();
        let mut a = Aggregator {
            window,
            rules,
            priority,
            routing: RoutingRules::default(),
            default_branch,
            fleet: Vec::new(),
            footprints,
            runners: Vec::new(),
            runner_index: IntMap::default(),
            names: Interner::default(),
            refs: Interner::default(),
            stages: Interner::default(),
            shas: Interner::default(),
            urls: Interner::default(),
            reasons: Interner::default(),
            categories: Interner::default(),
            tag_sets: Interner::default(),
            raw_tags: HashMap::new(),
            last_tags: None,
            urgencies: IntMap::default(),
            candidates: IntMap::default(),
            candidate_sets: Vec::new(),
            pipeline_ids: Vec::new(),
            pipeline_index: IntMap::default(),
            retry_groups: IntMap::default(),
            retry_first: Vec::new(),
            flaky_groups: IntMap::default(),
            flaky_mix: Vec::new(),
            classified: IntMap::default(),
            jobs: Vec::new(),
            skipped: Skipped::default(),
        };
        // Every fleet runner is listed, idle ones included.
        for (i, r) in fleet.iter().enumerate() {
            if !a.runner_index.contains_key(&r.id()) {
                a.runner_index.insert(r.id(), a.runners.len() as u32);
                a.runners.push(RunnerInfo {
                    id: r.id(),
                    name: r.label(),
                    fleet: Some(i),
                });
            }
        }
        a.fleet = fleet;
        a
    }

    /// Replaces the tables' intensity of the fleet runners in `zone` keys
    /// (as written in the fleet file) with live values (Electricity Maps).
    pub fn override_intensities(&mut self, live: &HashMap<String, carbon::Intensity>) {
        for (i, r) in self.fleet.iter().enumerate() {
            let Some(zone) = r.runneriq.zone.as_deref() else {
                continue;
            };
            if let (Some(fp), Some(l)) = (self.footprints.get_mut(i), live.get(zone)) {
                if let Some(fp) = fp.as_mut() {
                    fp.intensity = l.clone();
                }
            }
        }
    }

    /// Counts one job, or counts it as skipped.
    pub fn add(&mut self, job: &Job) {
        let Some(created) = job.created_at.as_deref().and_then(parse_time) else {
            self.skipped.no_timestamps += 1;
            return;
        };
        if !self.window.contains(created) {
            self.skipped.outside_window += 1;
            return;
        }
        let status = match job.status.as_str() {
            "success" => Status::Success,
            "failed" => Status::Failed,
            "canceled" => Status::Canceled,
            _ => {
                self.skipped.unfinished += 1;
                return;
            }
        };
        let start = job.started_at.as_deref().and_then(parse_time);
        let given = job.duration.filter(|d| d.is_finite() && *d >= 0.0);
        // GitLab's duration is finished_at − started_at: with both, one
        // timestamp fewer to parse.
        let (duration, end) = match (start, given) {
            (Some(s), Some(d)) => (Some(d), Some(s.saturating_add(d.ceil() as i64))),
            _ => {
                let end = job.finished_at.as_deref().and_then(parse_time);
                let d = given.or_else(|| match (start, end) {
                    (Some(s), Some(e)) if e >= s => Some((e - s) as f64),
                    _ => None,
                });
                (d, end)
            }
        };
        let runner = match job.runner.as_ref().filter(|r| r.id != 0) {
            Some(r) => match self.runner_index.get(&r.id) {
                Some(&i) => i,
                None => {
                    let i = self.runners.len() as u32;
                    let name = r
                        .description
                        .clone()
                        .filter(|d| !d.trim().is_empty())
                        .or_else(|| r.name.clone().filter(|n| !n.trim().is_empty()))
                        .unwrap_or_else(|| format!("#{}", r.id));
                    self.runner_index.insert(r.id, i);
                    self.runners.push(RunnerInfo {
                        id: r.id,
                        name,
                        fleet: None,
                    });
                    i
                }
            },
            None => NONE,
        };
        let name = self.names.id(&job.name);
        let git_ref = self.refs.id(&job.git_ref);
        let stage = self.stages.id(&job.stage);
        let tags = self.tag_set(&job.tag_list);
        let sha = job
            .commit
            .as_ref()
            .map(|c| c.id.as_str())
            .filter(|s| !s.is_empty())
            .or_else(|| job.pipeline.as_ref().and_then(|p| p.sha.as_deref()))
            .filter(|s| !s.is_empty())
            .map_or(NONE, |s| self.shas.id(s));
        let url = match job.web_url.as_deref() {
            Some(u) => match u.rsplit_once('/') {
                Some((prefix, tail)) if tail.parse::<u64>().ok() == Some(job.id) => {
                    self.urls.id(prefix)
                }
                _ => self.urls.id(u) | FULL_URL,
            },
            None => NONE,
        };
        let reason = if status == Status::Failed {
            self.reasons
                .id(job.failure_reason.as_deref().unwrap_or("unknown_failure"))
        } else {
            NONE
        };
        let pipeline = match job.pipeline.as_ref() {
            Some(p) if self.pipeline_ids.last() == Some(&p.id) => {
                self.pipeline_ids.len() as u32 - 1
            }
            Some(p) => match self.pipeline_index.get(&p.id) {
                Some(&i) => i,
                None => {
                    let i = self.pipeline_ids.len() as u32;
                    self.pipeline_ids.push(p.id);
                    self.pipeline_index.insert(p.id, i);
                    i
                }
            },
            None => NONE,
        };
        let retry_group = match self.retry_groups.get(&(pipeline, name)) {
            Some(&g) => {
                let first = &mut self.retry_first[g as usize];
                *first = (*first).min(job.id);
                g
            }
            None => {
                let g = self.retry_first.len() as u32;
                self.retry_first.push(job.id);
                self.retry_groups.insert((pipeline, name), g);
                g
            }
        };
        let flaky_group = if sha == NONE || status == Status::Canceled {
            NONE
        } else {
            let g = match self.flaky_groups.get(&(sha, name)) {
                Some(&g) => g,
                None => {
                    let g = self.flaky_mix.len() as u32;
                    self.flaky_mix.push((false, false));
                    self.flaky_groups.insert((sha, name), g);
                    g
                }
            };
            let mix = &mut self.flaky_mix[g as usize];
            if status == Status::Failed {
                mix.0 = true;
            } else {
                mix.1 = true;
            }
            g
        };
        let urgency = self.urgency(job, git_ref, name, stage);
        let candidates = match self.runners.get(runner as usize).and_then(|r| r.fleet) {
            Some(f) => self.candidates_for(job, tags, git_ref, f),
            None => NONE,
        };
        self.jobs.push(JobRec {
            id: job.id,
            created,
            start: start.unwrap_or(NO_TIME),
            end: end.unwrap_or(NO_TIME),
            duration: duration.map_or(f32::NAN, |d| d as f32),
            queued: job
                .queued_duration
                .filter(|q| q.is_finite() && *q >= 0.0)
                .map_or(f32::NAN, |q| q as f32),
            runner,
            name,
            tags,
            git_ref,
            pipeline,
            retry_group,
            flaky_group,
            url,
            candidates,
            reason,
            status,
            urgency,
        });
    }

    /// The category a classified trace gave a failed job (before or after `add`).
    pub fn set_category(&mut self, job_id: u64, category: String) {
        let c = self.categories.id(&category);
        self.classified.insert(job_id, c);
    }

    fn tag_set(&mut self, tags: &[String]) -> u32 {
        if let Some((last, i)) = &self.last_tags {
            if last.as_slice() == tags {
                return *i;
            }
        }
        let i = self
            .raw_tags
            .get(tags)
            .copied()
            .unwrap_or_else(|| self.new_tag_set(tags));
        self.last_tags = Some((tags.to_vec(), i));
        i
    }

    fn new_tag_set(&mut self, tags: &[String]) -> u32 {
        let mut sorted: Vec<&str> = tags.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let key = if sorted.is_empty() {
            "(untagged)".to_string()
        } else {
            sorted.join(",")
        };
        let i = self.tag_sets.id(&key);
        self.raw_tags.insert(tags.to_vec(), i);
        i
    }

    /// Urgency without and with the retry bonus (cached: it depends only on
    /// the ref, name, stage and a few flags when the job has not waited).
    fn urgency(&mut self, job: &Job, git_ref: u32, name: u32, stage: u32) -> [Urgency; 2] {
        let web = job.pipeline.as_ref().and_then(|p| p.source.as_deref()) == Some("web");
        let flags = u8::from(job.tag)
            | (u8::from(job.allow_failure) << 1)
            | (u8::from(web) << 2)
            | (u8::from(job.status == "manual") << 3);
        let key = (git_ref, name, stage, flags);
        if let Some(u) = self.urgencies.get(&key) {
            return *u;
        }
        let now = job.created_at.as_deref().and_then(parse_time).unwrap_or(0);
        let mut ctx = priority::Context {
            default_branch: self.default_branch.as_deref(),
            access_level: None,
            retry: false,
            now,
        };
        let first = priority::priority(job, &ctx, &self.priority).urgency;
        ctx.retry = true;
        let retried = priority::priority(job, &ctx, &self.priority).urgency;
        self.urgencies.insert(key, [first, retried]);
        [first, retried]
    }

    /// The fleet runners cleaner than `fleet_idx` that pass the gate for `job`.
    fn candidates_for(&mut self, job: &Job, tags: u32, git_ref: u32, fleet_idx: usize) -> u32 {
        let Some(mine) = self.footprints[fleet_idx].as_ref() else {
            return NONE;
        };
        // The gate reads the tags, the ref (protected or not) and the project.
        let project = job
            .pipeline
            .as_ref()
            .and_then(|p| p.project_id)
            .or_else(|| job.project.as_ref().and_then(|p| p.id));
        let key = (tags, git_ref, project, fleet_idx);
        if let Some(&c) = self.candidates.get(&key) {
            return c;
        }
        let mine = mine.intensity.g_per_kwh;
        let inputs = route::Inputs {
            default_branch: self.default_branch.as_deref(),
            ..route::Inputs::default()
        };
        let facts = route::facts_of(job, &inputs, &self.routing);
        debug_assert_eq!(facts.project_id, project);
        let mut set: Vec<u32> = self
            .fleet
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                *i != fleet_idx
                    && self.footprints[*i]
                        .as_ref()
                        .is_some_and(|f| f.intensity.g_per_kwh < mine)
                    && route::passes(&facts, r)
            })
            .map(|(i, _)| i as u32)
            .collect();
        // Cleanest per second first: the first free one saves the most.
        set.sort_by(|&a, &b| {
            let rate = |i: u32| {
                self.footprints[i as usize]
                    .as_ref()
                    .map_or(0.0, Footprint::rate)
            };
            rate(a).total_cmp(&rate(b)).then(a.cmp(&b))
        });
        let id = if set.is_empty() {
            NONE
        } else {
            self.candidate_sets.push(set);
            (self.candidate_sets.len() - 1) as u32
        };
        self.candidates.insert(key, id);
        id
    }

    /// The report.
    pub fn finish(self) -> ReportData {
        let runners = self.runner_metrics();
        let findings = self.findings(&runners);
        let (queue_wait, queue_wait_by_tags) = self.queue_waits();
        ReportData {
            window: self.window,
            jobs: self.jobs.len() as u32,
            skipped: self.skipped,
            pipelines: self.pipeline_ids.len() as u32,
            findings,
            queue_wait,
            queue_wait_by_tags,
            flaky: self.flaky(),
            flaky_tests: Vec::new(),
            test_pipelines: 0,
            test_branch: None,
            failures_by_day: self.failures_by_day(),
            carbon: self.carbon(&runners),
            cost: self.cost(&runners),
            runners,
        }
    }

    /// Reason index → an infrastructure failure?
    fn infra_reasons(&self) -> Vec<bool> {
        self.reasons
            .list
            .iter()
            .map(|r| INFRA_REASONS.contains(&r.as_str()))
            .collect()
    }

    fn runner_metrics(&self) -> Vec<RunnerMetrics> {
        #[derive(Default)]
        struct Acc {
            jobs: u32,
            busy: f64,
            durations: Vec<f32>,
            queued: Vec<f32>,
            success: (f64, u32),
            finished: u32,
            infra: u32,
            script: u32,
        }
        let infra = self.infra_reasons();
        let mut acc: Vec<Acc> = (0..self.runners.len()).map(|_| Acc::default()).collect();
        let mut fleet_success = (0.0, 0u32);
        for j in &self.jobs {
            let Some(a) = acc.get_mut(j.runner as usize) else {
                continue;
            };
            a.jobs += 1;
            if !j.duration.is_nan() {
                a.busy += f64::from(j.duration);
                a.durations.push(j.duration);
            }
            if !j.queued.is_nan() {
                a.queued.push(j.queued);
            }
            match j.status {
                Status::Success => {
                    a.finished += 1;
                    if !j.duration.is_nan() {
                        a.success.0 += f64::from(j.duration);
                        a.success.1 += 1;
                        fleet_success.0 += f64::from(j.duration);
                        fleet_success.1 += 1;
                    }
                }
                Status::Failed => {
                    a.finished += 1;
                    if infra[j.reason as usize] {
                        a.infra += 1;
                    } else {
                        a.script += 1;
                    }
                }
                Status::Canceled => {}
            }
        }
        let fleet_avg = mean(fleet_success);
        let window_s = self.window.seconds() as f64;
        let mut out: Vec<RunnerMetrics> = self
            .runners
            .iter()
            .zip(acc)
            .map(|(r, mut a)| {
                let slots = r.fleet.map_or(1, |i| self.fleet[i].concurrent().max(1));
                let capacity = f64::from(slots) * window_s;
                let utilization = if capacity > 0.0 {
                    a.busy / capacity
                } else {
                    0.0
                };
                let infra_failure_rate = if a.finished > 0 {
                    f64::from(a.infra) / f64::from(a.finished)
                } else {
                    0.0
                };
                RunnerMetrics {
                    id: r.id,
                    name: r.name.clone(),
                    jobs: a.jobs,
                    busy_s: a.busy,
                    p50_duration_s: nearest_rank(&mut a.durations, 50.0),
                    p95_duration_s: nearest_rank(&mut a.durations, 95.0),
                    slots,
                    utilization,
                    queue_p95_s: nearest_rank(&mut a.queued, 95.0),
                    failures_infra: a.infra,
                    failures_script: a.script,
                    infra_failure_rate,
                    score: composite(
                        a.jobs,
                        mean(a.success),
                        fleet_avg,
                        infra_failure_rate,
                        utilization,
                        &self.rules.weights,
                    ),
                }
            })
            .collect();
        out.sort_by(|a, b| b.jobs.cmp(&a.jobs).then(a.id.cmp(&b.id)));
        out
    }

    /// runner index → its successful durations ÷ the fleet's mean for the
    /// same job names, weighted by its jobs.
    fn slow_ratios(&self) -> IntMap<u32, f64> {
        let mut by_name: Vec<(f64, u32)> = vec![(0.0, 0); self.names.list.len()];
        // (runner << 32 | name) → (sum, n).
        let mut by_runner_name: IntMap<u64, (f64, u32)> = IntMap::default();
        for j in &self.jobs {
            if j.status != Status::Success || j.duration.is_nan() || j.runner == NONE {
                continue;
            }
            let d = f64::from(j.duration);
            let n = &mut by_name[j.name as usize];
            n.0 += d;
            n.1 += 1;
            let r = by_runner_name
                .entry(u64::from(j.runner) << 32 | u64::from(j.name))
                .or_default();
            r.0 += d;
            r.1 += 1;
        }
        let mut sums: IntMap<u32, (f64, f64)> = IntMap::default();
        for (key, (sum, n)) in by_runner_name {
            let (runner, name) = ((key >> 32) as u32, key as u32);
            let Some(fleet_mean) = mean(by_name[name as usize]) else {
                continue;
            };
            let s = sums.entry(runner).or_default();
            s.0 += sum;
            s.1 += f64::from(n) * fleet_mean;
        }
        sums.into_iter()
            .filter(|(_, (_, expected))| *expected > 0.0)
            .map(|(r, (actual, expected))| (r, actual / expected))
            .collect()
    }

    fn findings(&self, runners: &[RunnerMetrics]) -> Vec<Finding> {
        let rules = &self.rules;
        let ratios = self.slow_ratios();
        let eligible: Vec<&RunnerMetrics> = runners
            .iter()
            .filter(|r| r.jobs >= rules.min_jobs)
            .collect();
        let mut out = Vec::new();
        let finding = |kind, r: &RunnerMetrics, value, threshold, message, rec: &str| Finding {
            kind,
            runner: r.id,
            name: r.name.clone(),
            value,
            threshold,
            message,
            recommendation: rec.to_string(),
        };
        for r in &eligible {
            let idx = self.runner_index[&r.id];
            if let Some(&ratio) = ratios.get(&idx).filter(|x| **x > rules.slow_factor) {
                out.push(finding(
                    FindingKind::SlowRunner,
                    r,
                    ratio,
                    rules.slow_factor,
                    format!(
                        "runner {} takes {ratio:.1}× the fleet's time for the same jobs",
                        r.name
                    ),
                    "check its executor's CPU and cache; move tags away until fixed",
                ));
            }
        }
        for r in &eligible {
            if r.utilization < rules.underutilized {
                out.push(finding(
                    FindingKind::Underutilized,
                    r,
                    r.utilization,
                    rules.underutilized,
                    format!(
                        "runner {} was busy {} of its capacity ({} slot{}) this period",
                        r.name,
                        percent(r.utilization),
                        r.slots,
                        if r.slots == 1 { "" } else { "s" }
                    ),
                    "give it more projects' jobs (share its tags), lower its concurrent slots, or retire it",
                ));
            }
        }
        for r in &eligible {
            if r.infra_failure_rate > rules.infra_failure_rate {
                out.push(finding(
                    FindingKind::InfraFailures,
                    r,
                    r.infra_failure_rate,
                    rules.infra_failure_rate,
                    format!(
                        "{} of runner {}'s jobs failed for infrastructure reasons ({} job{})",
                        percent(r.infra_failure_rate),
                        r.name,
                        r.failures_infra,
                        if r.failures_infra == 1 { "" } else { "s" }
                    ),
                    "check the runner host (disk, network, container daemon) and its logs; pause it if the rate keeps rising",
                ));
            }
        }
        for r in &eligible {
            let busy = r.utilization > rules.bottleneck_utilization;
            let wait = r.queue_p95_s.filter(|w| *w > rules.bottleneck_wait_p95_s);
            let (value, threshold, message) = match (busy, wait) {
                (true, Some(w)) => (
                    r.utilization,
                    rules.bottleneck_utilization,
                    format!(
                        "runner {} was busy {} of its capacity and its jobs waited {w:.0} s (p95) for it",
                        r.name,
                        percent(r.utilization)
                    ),
                ),
                (true, None) => (
                    r.utilization,
                    rules.bottleneck_utilization,
                    format!(
                        "runner {} was busy {} of its capacity",
                        r.name,
                        percent(r.utilization)
                    ),
                ),
                (false, Some(w)) => (
                    w,
                    rules.bottleneck_wait_p95_s,
                    format!("jobs waited {w:.0} s (p95) for runner {}", r.name),
                ),
                (false, None) => continue,
            };
            out.push(finding(
                FindingKind::Bottleneck,
                r,
                value,
                threshold,
                message,
                "add job slots (concurrent) or another runner with the same tags",
            ));
        }
        rank_by_impact(&mut out);
        out
    }

    /// A runner's cost per hour (whole runner) and slots, when known.
    fn cost_of(&self, runner: u32) -> Option<(f64, u32)> {
        let f = self.runners.get(runner as usize)?.fleet?;
        let r = &self.fleet[f];
        let c = r
            .runneriq
            .cost_per_hour
            .filter(|c| c.is_finite() && *c >= 0.0)?;
        Some((c, r.concurrent().max(1)))
    }

    fn cost(&self, metrics: &[RunnerMetrics]) -> Option<CostReport> {
        if !self
            .fleet
            .iter()
            .any(|r| r.runneriq.cost_per_hour.is_some())
        {
            return None;
        }
        let mut report = CostReport::default();
        let window_h = self.window.seconds() as f64 / 3600.0;
        for m in metrics {
            let idx = self.runner_index[&m.id];
            let in_fleet = self.runners[idx as usize].fleet.is_some();
            match self.cost_of(idx) {
                Some((cph, slots)) => {
                    let per_slot = cph / f64::from(slots);
                    let busy_h = m.busy_s / 3600.0;
                    let capacity_h = f64::from(slots) * window_h;
                    let r = RunnerCost {
                        id: m.id,
                        name: m.name.clone(),
                        cost_per_hour: cph,
                        slots,
                        busy_h,
                        capacity_h,
                        busy_cost: busy_h * per_slot,
                        idle_cost: (capacity_h - busy_h).max(0.0) * per_slot,
                    };
                    report.busy_cost += r.busy_cost;
                    report.idle_cost += r.idle_cost;
                    report.runners.push(r);
                }
                None if m.jobs > 0 || in_fleet => report.unknown.push(m.name.clone()),
                None => {}
            }
        }
        let mut by_class: [(u32, f64, f64, u32); 4] = Default::default();
        for j in &self.jobs {
            if j.duration.is_nan() || j.runner == NONE {
                continue;
            }
            let retry = self.retry_first[j.retry_group as usize] < j.id;
            let c = &mut by_class[j.urgency[usize::from(retry)] as usize];
            match self.cost_of(j.runner) {
                Some((cph, slots)) => {
                    let h = f64::from(j.duration) / 3600.0;
                    c.0 += 1;
                    c.1 += h;
                    c.2 += h * cph / f64::from(slots);
                }
                None => c.3 += 1,
            }
        }
        report.by_class = Urgency::ALL
            .iter()
            .filter_map(|&u| {
                let (jobs, busy_h, cost, without) = by_class[u as usize];
                (jobs + without > 0).then_some(ClassCost {
                    urgency: u,
                    jobs,
                    busy_h,
                    cost,
                    jobs_without_cost: without,
                })
            })
            .collect();
        Some(report)
    }

    fn queue_waits(&self) -> (Vec<ClassWait>, Vec<TagWait>) {
        let mut by_class: [Vec<f32>; 4] = Default::default();
        let mut by_tags: Vec<Vec<f32>> = vec![Vec::new(); self.tag_sets.list.len()];
        for j in &self.jobs {
            if j.queued.is_nan() {
                continue;
            }
            // A retry: not the lowest id of its (pipeline, name).
            let retry = self.retry_first[j.retry_group as usize] < j.id;
            let u = j.urgency[usize::from(retry)];
            by_class[u as usize].push(j.queued);
            by_tags[j.tags as usize].push(j.queued);
        }
        let classes = Urgency::ALL
            .iter()
            .filter_map(|&u| {
                let (jobs, p50_s, p95_s, max_s) = wait_stats(&mut by_class[u as usize])?;
                Some(ClassWait {
                    urgency: u,
                    jobs,
                    p50_s,
                    p95_s,
                    max_s,
                })
            })
            .collect();
        let mut tags: Vec<TagWait> = by_tags
            .iter_mut()
            .enumerate()
            .filter_map(|(i, v)| {
                let (jobs, p50_s, p95_s, max_s) = wait_stats(v)?;
                Some(TagWait {
                    tags: self.tag_sets.get(i as u32).to_string(),
                    jobs,
                    p50_s,
                    p95_s,
                    max_s,
                })
            })
            .collect();
        tags.sort_by(|a, b| b.jobs.cmp(&a.jobs).then_with(|| a.tags.cmp(&b.tags)));
        tags.truncate(TOP_TAGS);
        (classes, tags)
    }

    fn web_url(&self, j: &JobRec) -> Option<String> {
        if j.url == NONE {
            None
        } else if j.url & FULL_URL != 0 {
            Some(self.urls.get(j.url & !FULL_URL).to_string())
        } else {
            Some(format!("{}/{}", self.urls.get(j.url), j.id))
        }
    }

    fn flaky(&self) -> Vec<FlakyJob> {
        // Only the (commit, name) groups with both a failure and a success.
        let mut order: Vec<u32> = (0..self.jobs.len() as u32)
            .filter(|&i| {
                let g = self.jobs[i as usize].flaky_group;
                g != NONE && self.flaky_mix[g as usize] == (true, true)
            })
            .collect();
        order.sort_unstable_by_key(|&i| {
            let j = &self.jobs[i as usize];
            (j.flaky_group, j.created, j.id)
        });
        // name → (occurrences, (created, id) of the latest pass, its failed job).
        let mut found: IntMap<u32, (u32, (i64, u64), u32)> = IntMap::default();
        let mut group = NONE;
        let mut failed: Option<u32> = None;
        for &i in &order {
            let j = &self.jobs[i as usize];
            if j.flaky_group != group {
                group = j.flaky_group;
                failed = None;
            }
            match j.status {
                Status::Failed => failed = Some(i),
                Status::Success => {
                    if let Some(f) = failed.take() {
                        let e = found.entry(j.name).or_insert((0, (i64::MIN, 0), f));
                        e.0 += 1;
                        if (j.created, j.id) > e.1 {
                            e.1 = (j.created, j.id);
                            e.2 = f;
                        }
                    }
                }
                Status::Canceled => {}
            }
        }
        let mut out: Vec<FlakyJob> = found
            .into_iter()
            .map(|(name, (occurrences, _, f))| {
                let f = &self.jobs[f as usize];
                FlakyJob {
                    name: self.names.get(name).to_string(),
                    occurrences,
                    last_job: f.id,
                    last_web_url: self.web_url(f),
                    last_ref: self.refs.get(f.git_ref).to_string(),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.occurrences
                .cmp(&a.occurrences)
                .then_with(|| a.name.cmp(&b.name))
        });
        out.truncate(TOP_FLAKY);
        out
    }

    /// The category of a failed job.
    fn category(&self, j: &JobRec) -> &str {
        if let Some(&c) = self.classified.get(&j.id) {
            return self.categories.get(c);
        }
        match self.reasons.get(j.reason) {
            "stuck_or_timeout_failure" | "job_execution_timeout" => "timeout",
            r if INFRA_REASONS.contains(&r) => "runner_system",
            r => r,
        }
    }

    fn failures_by_day(&self) -> Vec<DayFailures> {
        if self.window.seconds() == 0 {
            return Vec::new();
        }
        let first = self.window.from.div_euclid(86_400);
        let last = (self.window.to - 1)
            .div_euclid(86_400)
            .min(first + MAX_DAYS - 1);
        let mut days: Vec<BTreeMap<String, u32>> =
            vec![BTreeMap::new(); (last - first + 1) as usize];
        for j in self.jobs.iter().filter(|j| j.status == Status::Failed) {
            let d = j.created.div_euclid(86_400);
            if d < first || d > last {
                continue;
            }
            *days[(d - first) as usize]
                .entry(self.category(j).to_string())
                .or_default() += 1;
        }
        days.into_iter()
            .enumerate()
            .map(|(i, by_category)| DayFailures {
                day: day_string(first + i as i64),
                by_category,
            })
            .collect()
    }

    fn carbon(&self, metrics: &[RunnerMetrics]) -> CarbonReport {
        let mut report = CarbonReport::default();
        for m in metrics.iter().filter(|m| m.jobs > 0) {
            let info = &self.runners[self.runner_index[&m.id] as usize];
            match info.fleet.and_then(|f| self.footprints[f].as_ref()) {
                Some(fp) => {
                    let energy_kwh = fp.watts * m.busy_s / 3.6e6;
                    let co2e_g = energy_kwh * fp.intensity.g_per_kwh;
                    report.total_kwh += energy_kwh;
                    report.total_co2e_g += co2e_g;
                    report.runners.push(RunnerCarbon {
                        id: m.id,
                        name: m.name.clone(),
                        zone: fp.intensity.zone.clone(),
                        g_per_kwh: fp.intensity.g_per_kwh,
                        source: fp.intensity.source.clone(),
                        energy_kwh,
                        co2e_g,
                    });
                }
                None => report.unknown.push(m.name.clone()),
            }
        }
        report.fleet_avg_g_per_kwh =
            (report.total_kwh > 0.0).then(|| report.total_co2e_g / report.total_kwh);

        // runner index → fleet index, when its footprint is known.
        let measured: Vec<Option<usize>> = self
            .runners
            .iter()
            .map(|r| r.fleet.filter(|&f| self.footprints[f].is_some()))
            .collect();
        let footprint_of = |j: &JobRec| {
            let f = (*measured.get(j.runner as usize)?)?;
            Some((f, self.footprints[f].as_ref()?))
        };
        let mut by_pipeline = vec![0.0; self.pipeline_ids.len()];
        for j in &self.jobs {
            if j.pipeline == NONE || j.duration.is_nan() {
                continue;
            }
            if let Some((_, fp)) = footprint_of(j) {
                by_pipeline[j.pipeline as usize] += fp.grams(f64::from(j.duration));
            }
        }
        let mut pipelines: Vec<PipelineCarbon> = by_pipeline
            .into_iter()
            .enumerate()
            .filter(|(_, g)| *g > 0.0)
            .map(|(i, co2e_g)| PipelineCarbon {
                pipeline_id: self.pipeline_ids[i],
                co2e_g,
            })
            .collect();
        pipelines.sort_by(|a, b| {
            b.co2e_g
                .total_cmp(&a.co2e_g)
                .then(a.pipeline_id.cmp(&b.pipeline_id))
        });
        pipelines.truncate(TOP_PIPELINES);
        report.pipelines_top = pipelines;
        report.cleaner_alternatives = self.cleaner_alternatives(&footprint_of);
        report
    }

    /// The jobs that could have run on a cleaner, free, eligible runner:
    /// the top ones by grams saved.
    fn cleaner_alternatives<'s>(
        &'s self,
        footprint_of: &dyn Fn(&JobRec) -> Option<(usize, &'s Footprint)>,
    ) -> Vec<Alternative> {
        let rate = |c: u32| {
            self.footprints[c as usize]
                .as_ref()
                .map_or(f64::INFINITY, Footprint::rate)
        };
        // Busy intervals per fleet runner, sorted by start, with the running
        // maximum of ends: "a job overlapping [s, e)" is one binary search.
        let mut busy: Vec<Vec<(i64, i64)>> = vec![Vec::new(); self.fleet.len()];
        for j in &self.jobs {
            if j.start == NO_TIME || j.end == NO_TIME {
                continue;
            }
            if let Some(f) = self.runners.get(j.runner as usize).and_then(|r| r.fleet) {
                busy[f].push((j.start, j.end));
            }
        }
        for b in &mut busy {
            b.sort_unstable();
            let mut max_end = i64::MIN;
            for iv in b.iter_mut() {
                max_end = max_end.max(iv.1);
                iv.1 = max_end;
            }
        }
        // Free over [s, e): the last interval starting before e (and so
        // every earlier one) ended by s.
        let free = |f: usize, s: i64, e: i64| {
            let b = busy[f].as_slice();
            let (mut lo, mut hi) = (0, b.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                if b[mid].0 < e {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo == 0 || b[lo - 1].1 <= s
        };
        // (saved, job id, job index, ran on, could run on), best first.
        let mut top: Vec<(f64, u64, usize, usize, usize)> = Vec::new();
        let floor = |top: &Vec<(f64, u64, usize, usize, usize)>| {
            if top.len() < TOP_ALTERNATIVES {
                0.0
            } else {
                top[top.len() - 1].0
            }
        };
        for (i, j) in self.jobs.iter().enumerate() {
            if j.candidates == NONE || j.start == NO_TIME || j.end == NO_TIME {
                continue;
            }
            let seconds = f64::from(j.duration);
            let Some((mine, fp)) = footprint_of(j).filter(|_| !seconds.is_nan()) else {
                continue;
            };
            let here = fp.rate() * seconds;
            // Candidates are sorted cleanest first: the first one bounds the
            // saving, the first free one is the best.
            let set = &self.candidate_sets[j.candidates as usize];
            if here - rate(set[0]) * seconds <= floor(&top) {
                continue;
            }
            let best = set
                .iter()
                .map(|&c| (here - rate(c) * seconds, c as usize))
                .take_while(|(saved, _)| *saved > 0.0)
                .find(|(_, c)| free(*c, j.start, j.end));
            if let Some((saved, c)) = best {
                let entry = (saved, j.id, i, mine, c);
                let at = top.partition_point(|t| {
                    (t.0, std::cmp::Reverse(t.1)) > (saved, std::cmp::Reverse(j.id))
                });
                if at < TOP_ALTERNATIVES {
                    top.insert(at, entry);
                    top.truncate(TOP_ALTERNATIVES);
                }
            }
        }
        top.into_iter()
            .map(|(saved_g, job_id, i, mine, c)| Alternative {
                job_id,
                name: self.names.get(self.jobs[i].name).to_string(),
                ran_on: self.fleet[mine].label(),
                could_run_on: self.fleet[c].label(),
                saved_g,
            })
            .collect()
    }
}

fn mean((sum, n): (f64, u32)) -> Option<f64> {
    (n > 0).then(|| sum / f64::from(n))
}

/// Nearest-rank percentile: the value at 1-based rank ⌈p/100 · n⌉ (at
/// least 1) of `values` in ascending order. Reorders `values` (a selection,
/// O(n), not a sort). None when empty.
fn nearest_rank(values: &mut [f32], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
    let (_, x, _) = values.select_nth_unstable_by(rank - 1, f32::total_cmp);
    Some(widen(*x))
}

/// An f32 sample as f64 without its float noise (36.7, not 36.70000076):
/// samples are kept as f32 to halve memory; 3 decimals are plenty for seconds.
fn widen(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// (count, p50, p95, max) of `values`.
fn wait_stats(values: &mut [f32]) -> Option<(u32, f64, f64, f64)> {
    Some((
        values.len() as u32,
        nearest_rank(values, 50.0)?,
        nearest_rank(values, 95.0)?,
        widen(values.iter().copied().fold(f32::MIN, f32::max)),
    ))
}

/// The utilization component: 100 between 50 % and 80 %, linear to 0 at 0 %
/// and at 100 %.
fn utilization_component(u: f64) -> f64 {
    if u < 0.5 {
        (u.max(0.0) / 0.5 * 100.0).max(0.0)
    } else if u <= 0.8 {
        100.0
    } else {
        ((1.0 - u) / 0.2 * 100.0).max(0.0)
    }
}

fn composite(
    jobs: u32,
    runner_avg: Option<f64>,
    fleet_avg: Option<f64>,
    infra_rate: f64,
    utilization: f64,
    weights: &ScoreWeights,
) -> CompositeScore {
    let w = weights.normalised();
    let throughput = (12.0 * (f64::from(jobs) + 1.0).log2()).min(100.0);
    let speed = match (runner_avg, fleet_avg) {
        (Some(r), Some(f)) if r > 0.0 => (50.0 * f / r).min(100.0),
        _ => 50.0,
    };
    let reliability = 100.0 * (1.0 - infra_rate);
    let utilization = utilization_component(utilization);
    CompositeScore {
        total: w.throughput * throughput
            + w.speed * speed
            + w.reliability * reliability
            + w.utilization * utilization,
        throughput,
        speed,
        reliability,
        utilization,
        weights: w,
    }
}

/// Findings, most impact first: infrastructure failures (jobs failed and
/// are run again), then bottlenecks (jobs wait), slow runners (jobs take
/// longer), then underutilized runners (money, no developer waits); within
/// a kind, the worst first.
fn rank_by_impact(findings: &mut [Finding]) {
    let kind = |k: FindingKind| match k {
        FindingKind::InfraFailures => 0,
        FindingKind::Bottleneck => 1,
        FindingKind::SlowRunner => 2,
        FindingKind::Underutilized => 3,
    };
    findings.sort_by(|a, b| {
        kind(a.kind).cmp(&kind(b.kind)).then_with(|| match a.kind {
            // The least used first.
            FindingKind::Underutilized => a.value.total_cmp(&b.value),
            _ => b.value.total_cmp(&a.value),
        })
    });
}

fn percent(x: f64) -> String {
    let p = x * 100.0;
    if p != 0.0 && p.abs() < 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// `YYYY-MM-DD` of a day number since 1970 (UTC).
fn day_string(day: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(day * 86_400) {
        Ok(t) => {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
        Err(_) => format!("day {day}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_strings_are_bounded() {
        let mut t = Interner::default();
        let long = "é".repeat(3000);
        let i = t.id(&long);
        assert!(t.get(i).len() <= MAX_INTERNED_LEN);
        assert!(long.starts_with(t.get(i)));
        assert_eq!(t.id(&long), i);
        // Distinct strings past the table's budget share one entry.
        let mut n = 0;
        while t.bytes + MAX_INTERNED_LEN <= MAX_INTERNED_BYTES {
            t.id(&format!("{n:01024}"));
            n += 1;
        }
        let a = t.id(&format!("x{:01023}", 1));
        let b = t.id(&format!("y{:01023}", 2));
        assert_eq!(a, b);
        assert_eq!(t.get(a), OVERFLOW);
        assert!(t.bytes <= MAX_INTERNED_BYTES + OVERFLOW.len());
    }
    use crate::fleet::model::RunnerExt;
    use crate::gitlab::models::{Commit, PipelineRef, Runner, RunnerSummary};
    use time::format_description::well_known::Rfc3339;

    /// 2026-01-05T00:00:00Z, a Monday.
    const T0: i64 = 1_767_571_200;
    const DAY: i64 = 86_400;

    fn iso(t: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&Rfc3339)
            .unwrap()
    }

    /// `iso` for 2026-01 only, into a reused buffer (the 200,000-job test).
    fn iso_into(buf: &mut String, t: i64) {
        let s = t - 1_767_225_600; // 2026-01-01T00:00:00Z
        assert!((0..31 * DAY).contains(&s));
        let mut text = *b"2026-01-00T00:00:00Z";
        let (d, r) = (s / DAY + 1, s % DAY);
        for (at, n) in [(8, d), (11, r / 3600), (14, r / 60 % 60), (17, r % 60)] {
            text[at] = b'0' + (n / 10) as u8;
            text[at + 1] = b'0' + (n % 10) as u8;
        }
        buf.clear();
        buf.push_str(std::str::from_utf8(&text).unwrap());
    }

    /// Replaces what follows `buf[..keep]` with `n`'s digits.
    fn set_number(buf: &mut String, keep: usize, n: u64) {
        buf.truncate(keep);
        let mut digits = [0u8; 20];
        let mut len = 0;
        let mut n = n;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for d in digits[..len].iter().rev() {
            buf.push(char::from(*d));
        }
    }

    /// A finished job on `runner` (0: none) that started at T0 + `start`,
    /// ran `duration` s after waiting `queued` s, in pipeline `pipeline`.
    #[allow(clippy::too_many_arguments)]
    fn job(
        id: u64,
        name: &str,
        runner: u64,
        status: &str,
        start: i64,
        duration: f64,
        queued: f64,
        pipeline: u64,
    ) -> Job {
        let start = T0 + start;
        Job {
            id,
            name: name.into(),
            status: status.into(),
            git_ref: "main".into(),
            created_at: Some(iso(start - queued as i64)),
            started_at: Some(iso(start)),
            finished_at: Some(iso(start + duration as i64)),
            duration: Some(duration),
            queued_duration: Some(queued),
            web_url: Some(format!("https://gitlab.example.com/g/p/-/jobs/{id}")),
            tag_list: vec!["docker".into()],
            runner: (runner != 0).then(|| {
                Box::new(RunnerSummary {
                    id: runner,
                    description: Some(format!("runner-{runner}")),
                    ..RunnerSummary::default()
                })
            }),
            pipeline: Some(Box::new(PipelineRef {
                id: pipeline,
                project_id: Some(7),
                sha: Some(format!("sha{pipeline}")),
                ..PipelineRef::default()
            })),
            commit: Some(Box::new(Commit {
                id: format!("sha{pipeline}"),
                ..Commit::default()
            })),
            ..Job::default()
        }
    }

    fn failed(mut j: Job, reason: &str) -> Job {
        j.status = "failed".into();
        j.failure_reason = Some(reason.into());
        j
    }

    fn runner(
        id: u64,
        name: &str,
        zone: &str,
        watts: f64,
        slots: u32,
        tags: &[&str],
    ) -> FleetRunner {
        FleetRunner {
            runner: Runner {
                id,
                description: Some(name.into()),
                status: Some("online".into()),
                run_untagged: Some(true),
                tag_list: tags.iter().map(|t| t.to_string()).collect(),
                ..Runner::default()
            },
            runneriq: RunnerExt {
                concurrent: Some(slots),
                zone: Some(zone.into()),
                power_watts: Some(watts),
                ..RunnerExt::default()
            },
        }
    }

    /// A: docker-fr-1 (FR, 100 W, 2 slots); B: docker-de-1 (DE, 200 W,
    /// 1 slot, also gpu); runner 3 is not in the fleet.
    fn fleet() -> Vec<FleetRunner> {
        vec![
            runner(1, "docker-fr-1", "FR", 100.0, 2, &["docker", "linux"]),
            runner(
                2,
                "docker-de-1",
                "DE",
                200.0,
                1,
                &["docker", "linux", "gpu"],
            ),
        ]
    }

    fn history() -> Vec<Job> {
        let mut b5 = job(25, "build", 2, "canceled", 3700, 90.0, 50.0, 104);
        b5.tag_list = vec!["docker".into(), "gpu".into()];
        vec![
            job(11, "build", 1, "success", 100, 100.0, 5.0, 100),
            job(12, "build", 1, "success", 500, 100.0, 5.0, 101),
            job(13, "test", 1, "success", 2200, 200.0, 5.0, 102),
            failed(
                job(14, "test", 1, "x", 3100, 40.0, 5.0, 103),
                "script_failure",
            ),
            failed(
                job(15, "build", 1, "x", 3600, 20.0, 5.0, 103),
                "runner_system_failure",
            ),
            // Overlaps job 11 on A.
            job(21, "build", 2, "success", 150, 300.0, 10.0, 100),
            // A is free then.
            job(22, "build", 2, "success", 1100, 300.0, 20.0, 101),
            // Overlaps job 13 on A.
            job(23, "test", 2, "success", 2100, 600.0, 30.0, 102),
            failed(
                job(24, "test", 2, "x", 2800, 10.0, 40.0, 103),
                "stuck_or_timeout_failure",
            ),
            // Needs gpu, which A lacks.
            b5,
            job(31, "lint", 3, "success", 3000, 60.0, 0.0, 104),
        ]
    }

    fn window() -> Window {
        Window {
            from: T0,
            to: T0 + 4000,
        }
    }

    fn report_with(jobs: &[Job], rules: ReportRules) -> ReportData {
        let fleet = fleet();
        let mut a = Aggregator::new(
            window(),
            Some(&fleet),
            rules,
            PriorityRules::default(),
            Some("main".into()),
        );
        for j in jobs {
            a.add(j);
        }
        a.finish()
    }

    fn report(rules: ReportRules) -> ReportData {
        report_with(&history(), rules)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    fn kinds(r: &ReportData) -> Vec<(FindingKind, u64)> {
        r.findings.iter().map(|f| (f.kind, f.runner)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v = [200.0, 100.0, 20.0, 100.0, 40.0];
        assert_eq!(nearest_rank(&mut v, 50.0), Some(100.0)); // rank ⌈2.5⌉ = 3
        assert_eq!(nearest_rank(&mut v, 95.0), Some(200.0)); // rank ⌈4.75⌉ = 5
        assert_eq!(nearest_rank(&mut v, 0.0), Some(20.0));
        assert_eq!(nearest_rank(&mut [7.0], 95.0), Some(7.0));
        assert_eq!(nearest_rank(&mut [], 50.0), None);
        let mut hundred: Vec<f32> = (1..=100).rev().map(|i| i as f32).collect();
        assert_eq!(nearest_rank(&mut hundred, 95.0), Some(95.0));
        assert_eq!(nearest_rank(&mut hundred, 50.0), Some(50.0));
        assert_eq!(wait_stats(&mut hundred), Some((100, 50.0, 95.0, 100.0)));
    }

    #[test]
    fn utilization_component_peaks_between_50_and_80_percent() {
        assert_eq!(utilization_component(0.0), 0.0);
        assert_eq!(utilization_component(0.25), 50.0);
        assert_eq!(utilization_component(0.5), 100.0);
        assert_eq!(utilization_component(0.8), 100.0);
        assert!(close(utilization_component(0.9), 50.0));
        assert_eq!(utilization_component(1.0), 0.0);
        assert_eq!(utilization_component(1.3), 0.0);
    }

    #[test]
    fn counts_pipelines_and_skipped_by_reason() {
        let mut jobs = history();
        let mut early = job(91, "build", 1, "success", 0, 10.0, 0.0, 900);
        early.created_at = Some(iso(T0 - 1));
        let mut at_end = job(92, "build", 1, "success", 0, 10.0, 0.0, 900);
        at_end.created_at = Some(iso(T0 + 4000));
        let running = job(93, "build", 1, "running", 10, 10.0, 0.0, 900);
        let mut pending = job(94, "build", 0, "pending", 10, 10.0, 0.0, 900);
        pending.runner = None;
        let mut undated = job(95, "build", 1, "success", 10, 10.0, 0.0, 900);
        undated.created_at = None;
        jobs.extend([early, at_end, running, pending, undated]);
        let r = report_with(&jobs, ReportRules::default());
        assert_eq!(r.jobs, 11);
        assert_eq!(
            r.skipped,
            Skipped {
                outside_window: 2,
                unfinished: 2,
                no_timestamps: 1
            }
        );
        assert_eq!(r.pipelines, 5);
        assert_eq!(r.window, window());
    }

    #[test]
    fn runner_metrics_by_hand() {
        let r = report(ReportRules::default());
        let ids: Vec<u64> = r.runners.iter().map(|m| m.id).collect();
        assert_eq!(ids, [1, 2, 3], "jobs desc, then id");
        let (a, b, c) = (&r.runners[0], &r.runners[1], &r.runners[2]);
        assert_eq!(
            (a.name.as_str(), b.name.as_str(), c.name.as_str()),
            ("docker-fr-1", "docker-de-1", "runner-3")
        );

        // A: 100 + 100 + 200 + 40 + 20; sorted [20, 40, 100, 100, 200].
        assert_eq!((a.jobs, a.busy_s), (5, 460.0));
        assert_eq!(
            (a.p50_duration_s, a.p95_duration_s),
            (Some(100.0), Some(200.0))
        );
        assert_eq!(a.slots, 2);
        assert_eq!(a.utilization, 460.0 / (2.0 * 4000.0));
        assert_eq!((a.failures_infra, a.failures_script), (1, 1));
        assert_eq!(a.infra_failure_rate, 0.2);
        assert_eq!(a.queue_p95_s, Some(5.0));
        // B: 300 + 300 + 600 + 10 + 90 (canceled counts as busy time, not
        // in the failure rate's denominator: 1 infra of 4).
        assert_eq!((b.jobs, b.busy_s), (5, 1300.0));
        assert_eq!(
            (b.p50_duration_s, b.p95_duration_s),
            (Some(300.0), Some(600.0))
        );
        assert_eq!((b.slots, b.utilization), (1, 1300.0 / 4000.0));
        assert_eq!((b.failures_infra, b.failures_script), (1, 0));
        assert_eq!(b.infra_failure_rate, 0.25);
        assert_eq!(b.queue_p95_s, Some(50.0));
        // C: outside the fleet, one slot.
        assert_eq!((c.jobs, c.busy_s, c.slots), (1, 60.0, 1));
        assert_eq!(c.utilization, 60.0 / 4000.0);

        // Composite. Successful durations: A 100, 100, 200; B 300, 300,
        // 600; C 60 → fleet mean 1660 / 7.
        let fleet_avg = 1660.0 / 7.0;
        let sa = &a.score;
        assert!(close(sa.throughput, 12.0 * 6f64.log2()));
        assert!(close(sa.speed, 50.0 * fleet_avg / (400.0 / 3.0)));
        assert!(close(sa.reliability, 80.0));
        assert!(close(sa.utilization, 0.0575 / 0.5 * 100.0));
        let total = 0.25 * sa.throughput + 0.30 * sa.speed + 0.30 * 80.0 + 0.15 * 11.5;
        assert!(close(sa.total, total), "{} vs {total}", sa.total);
        assert!(close(sa.weights.speed, 0.30));
        let sb = &b.score;
        assert!(close(sb.throughput, 12.0 * 6f64.log2()));
        assert!(close(sb.speed, 50.0 * fleet_avg / 400.0));
        assert!(close(sb.reliability, 75.0));
        assert!(close(sb.utilization, 65.0));
        let total = 0.25 * sb.throughput + 0.30 * sb.speed + 0.30 * 75.0 + 0.15 * 65.0;
        assert!(close(sb.total, total));
        // C: much faster than the fleet: speed capped.
        assert!(close(c.score.throughput, 12.0));
        assert_eq!(c.score.speed, 100.0);
        assert!(close(c.score.reliability, 100.0));
        assert!(close(c.score.utilization, 3.0));

        // Weights are normalised.
        let rules = ReportRules {
            weights: ScoreWeights {
                throughput: 1.0,
                speed: 0.0,
                reliability: 1.0,
                utilization: 0.0,
            },
            ..ReportRules::default()
        };
        let r = report(rules);
        let s = &r.runners[0].score;
        assert!(close(s.total, (s.throughput + 80.0) / 2.0));
        assert_eq!(s.weights.throughput, 0.5);
    }

    #[test]
    fn cost_per_runner_class_and_idle_capacity_with_unknown_costs_apart() {
        // Without any cost_per_hour: no cost section at all.
        assert!(
            report_with(&history(), ReportRules::default())
                .cost
                .is_none()
        );
        // A (2 slots) costs 0.36 per hour; B has no cost; runner 3 is not
        // in the fleet.
        let mut fleet = fleet();
        fleet[0].runneriq.cost_per_hour = Some(0.36);
        let mut a = Aggregator::new(
            window(),
            Some(&fleet),
            ReportRules::default(),
            PriorityRules::default(),
            None,
        );
        for j in history() {
            a.add(&j);
        }
        let c = a.finish().cost.unwrap();
        assert_eq!(c.runners.len(), 1);
        let r = &c.runners[0];
        // Busy 460 s; a slot-hour costs 0.36 / 2; capacity 2 × 4000 s.
        assert_eq!((r.id, r.slots), (1, 2));
        assert!((r.busy_h - 460.0 / 3600.0).abs() < 1e-12);
        assert!((r.capacity_h - 8000.0 / 3600.0).abs() < 1e-12);
        assert!((r.busy_cost - 460.0 / 3600.0 * 0.18).abs() < 1e-12);
        assert!((r.idle_cost - 7540.0 / 3600.0 * 0.18).abs() < 1e-12);
        // Busy + idle is the runner's bill for the window.
        assert!((r.busy_cost + r.idle_cost - 4000.0 / 3600.0 * 0.36).abs() < 1e-12);
        assert!((c.busy_cost - r.busy_cost).abs() < 1e-12);
        // Unknown, never 0: B (in the fleet) and runner 3 (ran a job).
        assert_eq!(
            c.unknown,
            vec!["docker-de-1".to_string(), "runner-3".into()]
        );
        // Per class: A's 5 jobs carry the whole busy cost; the 6 others are
        // counted apart.
        let jobs: u32 = c.by_class.iter().map(|k| k.jobs).sum();
        let without: u32 = c.by_class.iter().map(|k| k.jobs_without_cost).sum();
        let cost: f64 = c.by_class.iter().map(|k| k.cost).sum();
        assert_eq!((jobs, without), (5, 6));
        assert!((cost - c.busy_cost).abs() < 1e-12);
        // Class order: CRITICAL, HIGH, MEDIUM, LOW.
        let order: Vec<Urgency> = c.by_class.iter().map(|k| k.urgency).collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|u| Urgency::ALL.iter().position(|x| x == u));
        assert_eq!(order, sorted);
    }

    #[test]
    fn an_idle_fleet_runner_is_listed_and_speed_without_data_is_neutral() {
        let mut fleet = fleet();
        fleet.push(runner(9, "idle-1", "FR", 50.0, 1, &["docker"]));
        let mut a = Aggregator::new(
            window(),
            Some(&fleet),
            ReportRules::default(),
            PriorityRules::default(),
            None,
        );
        a.add(&job(1, "build", 1, "success", 0, 10.0, 0.0, 1));
        let r = a.finish();
        let idle = r.runners.iter().find(|m| m.id == 9).unwrap();
        assert_eq!(
            (idle.jobs, idle.busy_s, idle.p50_duration_s),
            (0, 0.0, None)
        );
        assert_eq!((idle.score.throughput, idle.score.speed), (0.0, 50.0));
        assert_eq!(r.runners.last().unwrap().id, 9);
        assert!(r.findings.is_empty(), "below min_jobs: {:?}", r.findings);
    }

    #[test]
    fn default_findings_and_messages() {
        let r = report(ReportRules::default());
        // Most impact first: failed jobs (the worse rate first), then idle
        // capacity.
        assert_eq!(
            kinds(&r),
            [
                (FindingKind::InfraFailures, 2),
                (FindingKind::InfraFailures, 1),
                (FindingKind::Underutilized, 1),
            ]
        );
        let f = &r.findings[2];
        assert_eq!((f.value, f.threshold), (0.0575, 0.20));
        assert_eq!(
            f.message,
            "runner docker-fr-1 was busy 5.8 % of its capacity (2 slots) this period"
        );
        let f = &r.findings[0];
        assert_eq!(f.name, "docker-de-1");
        assert_eq!(
            f.message,
            "25 % of runner docker-de-1's jobs failed for infrastructure reasons (1 job)"
        );
        assert!(f.recommendation.starts_with("check the runner host"));
        let json = serde_json::to_value(&r.findings[2]).unwrap();
        assert_eq!(json["kind"], "underutilized");
        assert_eq!(json["runner"], 1);
    }

    #[test]
    fn slow_runner_fires_past_its_factor_only() {
        // B for the same names: 300 + 300 + 600 = 1200 vs the fleet's means
        // 2 × 200 (build) + 1 × 400 (test) = 800 → 1.5. A: 400 / 800 = 0.5.
        let at = |factor: f64| {
            let r = report(ReportRules {
                slow_factor: factor,
                ..ReportRules::default()
            });
            r.findings
                .into_iter()
                .filter(|f| f.kind == FindingKind::SlowRunner)
                .collect::<Vec<_>>()
        };
        assert!(at(2.0).is_empty());
        assert!(at(1.5).is_empty());
        let f = at(1.4999);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].runner, f[0].value, f[0].threshold), (2, 1.5, 1.4999));
        assert_eq!(
            f[0].message,
            "runner docker-de-1 takes 1.5× the fleet's time for the same jobs"
        );
        assert_eq!(
            f[0].recommendation,
            "check its executor's CPU and cache; move tags away until fixed"
        );
        assert_eq!(at(0.4999).len(), 2, "A at 0.5 too");
    }

    #[test]
    fn underutilized_fires_below_its_threshold_only() {
        let at = |t: f64| {
            let r = report(ReportRules {
                underutilized: t,
                ..ReportRules::default()
            });
            r.findings
                .iter()
                .filter(|f| f.kind == FindingKind::Underutilized)
                .map(|f| f.runner)
                .collect::<Vec<_>>()
        };
        // A: 460 / 8000 = 0.0575; B: 0.325; C has 1 job (< min_jobs).
        assert_eq!(at(0.0575), Vec::<u64>::new());
        assert_eq!(at(0.0576), [1]);
        assert_eq!(at(0.325), [1]);
        assert_eq!(at(0.3251), [1, 2]);
    }

    #[test]
    fn infra_failures_fire_above_the_rate_only() {
        let at = |t: f64| {
            let r = report(ReportRules {
                infra_failure_rate: t,
                ..ReportRules::default()
            });
            r.findings
                .iter()
                .filter(|f| f.kind == FindingKind::InfraFailures)
                .map(|f| (f.runner, f.value))
                .collect::<Vec<_>>()
        };
        // A: 1 of 5; B: 1 of 4 (its canceled job neither passed nor failed).
        assert_eq!(at(0.25), []);
        assert_eq!(at(0.2), [(2, 0.25)]);
        // The worse rate first.
        assert_eq!(at(0.1999), [(2, 0.25), (1, 0.2)]);
    }

    #[test]
    fn bottleneck_by_utilization_or_queue_wait() {
        let at = |u: f64, w: f64| {
            let r = report(ReportRules {
                bottleneck_utilization: u,
                bottleneck_wait_p95_s: w,
                ..ReportRules::default()
            });
            r.findings
                .into_iter()
                .filter(|f| f.kind == FindingKind::Bottleneck)
                .collect::<Vec<_>>()
        };
        // B: utilization 0.325, p95 wait 50 s; A: 0.0575 and 5 s.
        assert!(at(0.90, 600.0).is_empty());
        assert!(at(0.325, 600.0).is_empty());
        let f = at(0.3249, 600.0);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].runner, f[0].value), (2, 0.325));
        assert_eq!(
            f[0].message,
            "runner docker-de-1 was busy 32 % of its capacity"
        );
        assert!(at(1.0, 50.0).is_empty());
        let f = at(1.0, 49.9);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].runner, f[0].value, f[0].threshold), (2, 50.0, 49.9));
        assert_eq!(
            f[0].message,
            "jobs waited 50 s (p95) for runner docker-de-1"
        );
        assert_eq!(
            f[0].recommendation,
            "add job slots (concurrent) or another runner with the same tags"
        );
        let both = at(0.3, 4.0);
        assert_eq!(both.len(), 2);
        assert!(both[1].message.contains("and its jobs waited 50 s (p95)"));
    }

    #[test]
    fn detectors_ignore_runners_below_min_jobs() {
        let r = report(ReportRules {
            min_jobs: 6,
            slow_factor: 0.0,
            underutilized: 1.0,
            infra_failure_rate: 0.0,
            bottleneck_utilization: 0.0,
            ..ReportRules::default()
        });
        assert!(r.findings.is_empty());
        let r = report(ReportRules {
            min_jobs: 1,
            underutilized: 1.0,
            ..ReportRules::default()
        });
        assert!(kinds(&r).contains(&(FindingKind::Underutilized, 3)));
    }

    #[test]
    fn queue_wait_per_urgency_class_and_tag_set() {
        // Role unknown (25), default branch main. Score = round((branch +
        // 25 + type) / 3) + bonuses; bands 90 / 70 / 50.
        let q = |id: u64, name: &str, git_ref: &str, pipeline: u64, queued: f64, tags: &[&str]| {
            let mut j = job(id, name, 0, "success", 1000, 10.0, queued, pipeline);
            j.git_ref = git_ref.into();
            j.tag_list = tags.iter().map(|t| t.to_string()).collect();
            j
        };
        let mut jobs = vec![
            // build on main: (100 + 25 + 75) / 3 = 67 MEDIUM.
            q(101, "build", "main", 500, 10.0, &["linux", "docker"]),
            // Its retry: 67 + 5 = 72 HIGH.
            q(102, "build", "main", 500, 20.0, &["docker", "linux"]),
            // deploy on main: (100 + 25 + 100) / 3 = 75 HIGH.
            q(103, "deploy", "main", 500, 30.0, &["docker", "linux"]),
            // test on feature/x: (50 + 25 + 50) / 3 = 42 LOW; retry 47 LOW.
            q(104, "test", "feature/x", 501, 40.0, &[]),
            q(105, "test", "feature/x", 501, 50.0, &[]),
            // build on feature/x: (50 + 25 + 75) / 3 = 50 MEDIUM.
            q(106, "build", "feature/x", 501, 60.0, &[]),
            // deploy started from the web: 75 + 10 = 85 HIGH; its retry 90 CRITICAL.
            q(108, "deploy", "main", 502, 70.0, &["docker"]),
            q(109, "deploy", "main", 502, 80.0, &["docker"]),
        ];
        for j in &mut jobs[6..] {
            j.pipeline.as_mut().unwrap().source = Some("web".into());
        }
        // Newest first, as GitLab lists them: retries are found anyway.
        jobs.reverse();
        let mut a = Aggregator::new(
            window(),
            None,
            ReportRules::default(),
            PriorityRules::default(),
            Some("main".into()),
        );
        for j in &jobs {
            a.add(j);
        }
        let r = a.finish();
        let got: Vec<(Urgency, u32, f64, f64, f64)> = r
            .queue_wait
            .iter()
            .map(|c| (c.urgency, c.jobs, c.p50_s, c.p95_s, c.max_s))
            .collect();
        assert_eq!(
            got,
            [
                (Urgency::Critical, 1, 80.0, 80.0, 80.0),
                (Urgency::High, 3, 30.0, 70.0, 70.0),
                (Urgency::Medium, 2, 10.0, 60.0, 60.0),
                (Urgency::Low, 2, 40.0, 50.0, 50.0),
            ]
        );
        let tags: Vec<(&str, u32, f64, f64, f64)> = r
            .queue_wait_by_tags
            .iter()
            .map(|t| (t.tags.as_str(), t.jobs, t.p50_s, t.p95_s, t.max_s))
            .collect();
        assert_eq!(
            tags,
            [
                ("(untagged)", 3, 50.0, 60.0, 60.0),
                ("docker,linux", 3, 20.0, 30.0, 30.0),
                ("docker", 2, 70.0, 80.0, 80.0),
            ]
        );
        let json = serde_json::to_value(&r.queue_wait[0]).unwrap();
        assert_eq!(json["urgency"], "CRITICAL");
        // Runners without a fleet, none in the window: no carbon, no runners.
        assert!(r.runners.is_empty());
        assert!(r.carbon.runners.is_empty() && r.carbon.unknown.is_empty());
    }

    #[test]
    fn flaky_is_failed_then_passed_on_the_same_commit() {
        let at = |id: u64, name: &str, sha: &str, t: i64, status: &str| {
            let mut j = job(id, name, 1, status, t, 10.0, 0.0, id);
            j.commit.as_mut().unwrap().id = sha.into();
            if status == "failed" {
                j.failure_reason = Some("script_failure".into());
            }
            j
        };
        let mut s3_pipeline_sha_only = at(9, "lint", "", 30, "success");
        s3_pipeline_sha_only.commit = None;
        s3_pipeline_sha_only.pipeline.as_mut().unwrap().sha = Some("s3".into());
        let mut jobs = vec![
            // s1: failed then passed → 1.
            at(1, "test", "s1", 10, "failed"),
            at(2, "test", "s1", 20, "success"),
            // s2: passed then failed → not flaky.
            at(3, "test", "s2", 10, "success"),
            at(4, "test", "s2", 20, "failed"),
            // s3: failed, failed, passed → 1 (commit id from the pipeline's sha).
            at(7, "lint", "s3", 10, "failed"),
            at(8, "lint", "s3", 20, "failed"),
            s3_pipeline_sha_only,
            // s4: failed, passed, failed, passed → 2; the latest on feature/y.
            at(11, "test", "s4", 10, "failed"),
            at(12, "test", "s4", 20, "success"),
            at(13, "test", "s4", 30, "failed"),
            at(14, "test", "s4", 40, "success"),
            // s5: failed then canceled → not flaky; other names don't mix.
            at(15, "build", "s5", 10, "failed"),
            at(16, "build", "s5", 20, "canceled"),
            at(17, "deploy", "s5", 30, "success"),
        ];
        for j in &mut jobs[7..11] {
            j.git_ref = "feature/y".into();
        }
        jobs.reverse();
        let fleet = fleet();
        let mut a = Aggregator::new(
            window(),
            Some(&fleet),
            ReportRules::default(),
            PriorityRules::default(),
            None,
        );
        for j in &jobs {
            a.add(j);
        }
        let r = a.finish();
        assert_eq!(
            r.flaky,
            [
                FlakyJob {
                    name: "test".into(),
                    occurrences: 3,
                    last_job: 13,
                    last_web_url: Some("https://gitlab.example.com/g/p/-/jobs/13".into()),
                    last_ref: "feature/y".into(),
                },
                FlakyJob {
                    name: "lint".into(),
                    occurrences: 1,
                    last_job: 8,
                    last_web_url: Some("https://gitlab.example.com/g/p/-/jobs/8".into()),
                    last_ref: "main".into(),
                },
            ]
        );
    }

    #[test]
    fn web_urls_not_ending_in_the_id_are_kept_whole() {
        let mut j = failed(job(5, "test", 1, "x", 10, 1.0, 0.0, 1), "script_failure");
        j.web_url = Some("https://example.com/odd/url".into());
        let mut a = Aggregator::new(
            window(),
            None,
            ReportRules::default(),
            PriorityRules::default(),
            None,
        );
        a.add(&j);
        let u = a.web_url(&a.jobs[0]);
        assert_eq!(u.as_deref(), Some("https://example.com/odd/url"));
    }

    #[test]
    fn failures_per_day_with_zero_days_and_categories() {
        let w = Window {
            from: T0,
            to: T0 + 3 * DAY,
        };
        let f = |id: u64, day: i64, reason: Option<&str>| {
            let mut j = job(id, "test", 1, "failed", day * DAY + 100, 10.0, 0.0, id);
            j.failure_reason = reason.map(str::to_string);
            j
        };
        let mut a = Aggregator::new(
            w,
            None,
            ReportRules::default(),
            PriorityRules::default(),
            None,
        );
        a.set_category(1, "compile".into());
        a.set_category(999, "never_added".into());
        for j in [
            f(1, 0, Some("script_failure")),
            f(2, 0, Some("script_failure")),
            f(3, 0, Some("runner_system_failure")),
            job(4, "test", 1, "success", DAY + 100, 10.0, 0.0, 4),
            f(5, 2, Some("stuck_or_timeout_failure")),
            f(6, 2, Some("job_execution_timeout")),
            f(7, 2, Some("unmet_prerequisites")),
            f(8, 2, Some("script_failure")),
            f(9, 2, None),
        ] {
            a.add(&j);
        }
        a.set_category(8, "test_failure".into());
        let r = a.finish();
        let days: Vec<(&str, Vec<(&str, u32)>)> = r
            .failures_by_day
            .iter()
            .map(|d| {
                (
                    d.day.as_str(),
                    d.by_category
                        .iter()
                        .map(|(k, v)| (k.as_str(), *v))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            days,
            [
                (
                    "2026-01-05",
                    vec![("compile", 1), ("runner_system", 1), ("script_failure", 1)]
                ),
                ("2026-01-06", vec![]),
                (
                    "2026-01-07",
                    vec![
                        ("test_failure", 1),
                        ("timeout", 2),
                        ("unknown_failure", 1),
                        ("unmet_prerequisites", 1)
                    ]
                ),
            ]
        );
    }

    #[test]
    fn carbon_energy_and_grams_per_runner_and_pipeline() {
        let fr = carbon::lookup("FR").unwrap();
        let de = carbon::lookup("DE").unwrap();
        assert!(de.g_per_kwh > fr.g_per_kwh);
        let r = report(ReportRules::default());
        let c = &r.carbon;
        assert_eq!(c.runners.len(), 2);
        let a = &c.runners[0];
        assert_eq!(
            (a.id, a.zone.as_str(), a.g_per_kwh),
            (1, fr.zone.as_str(), fr.g_per_kwh)
        );
        assert_eq!(a.source, fr.source);
        // 100 W × 460 s.
        assert!(close(a.energy_kwh, 100.0 * 460.0 / 3.6e6));
        assert!(close(a.co2e_g, a.energy_kwh * fr.g_per_kwh));
        let b = &c.runners[1];
        assert_eq!(b.zone, de.zone);
        assert!(close(b.energy_kwh, 200.0 * 1300.0 / 3.6e6));
        assert!(close(b.co2e_g, b.energy_kwh * de.g_per_kwh));
        assert!(close(c.total_kwh, a.energy_kwh + b.energy_kwh));
        assert!(close(c.total_co2e_g, a.co2e_g + b.co2e_g));
        assert!(close(
            c.fleet_avg_g_per_kwh.unwrap(),
            c.total_co2e_g / c.total_kwh
        ));
        assert_eq!(c.unknown, ["runner-3"]);
        // Pipeline 102: 200 s on A and 600 s on B.
        let ga = |s: f64| 100.0 * s / 3.6e6 * fr.g_per_kwh;
        let gb = |s: f64| 200.0 * s / 3.6e6 * de.g_per_kwh;
        assert_eq!(c.pipelines_top.len(), 5);
        assert_eq!(c.pipelines_top[0].pipeline_id, 102);
        assert!(close(c.pipelines_top[0].co2e_g, ga(200.0) + gb(600.0)));
        let sum: f64 = c.pipelines_top.iter().map(|p| p.co2e_g).sum();
        assert!(close(sum, c.total_co2e_g));
    }

    #[test]
    fn cleaner_alternatives_need_a_free_eligible_cleaner_runner() {
        let fr = carbon::lookup("FR").unwrap().g_per_kwh;
        let de = carbon::lookup("DE").unwrap().g_per_kwh;
        let saved = |s: f64| 200.0 * s / 3.6e6 * de - 100.0 * s / 3.6e6 * fr;
        let r = report(ReportRules::default());
        let alt: Vec<(u64, &str, &str, &str)> = r
            .carbon
            .cleaner_alternatives
            .iter()
            .map(|a| {
                (
                    a.job_id,
                    a.name.as_str(),
                    a.ran_on.as_str(),
                    a.could_run_on.as_str(),
                )
            })
            .collect();
        // 21 and 23: A was busy (jobs 11 and 13 overlap); 25 needs gpu;
        // A's own jobs have no cleaner runner; runner 3 is not in the fleet.
        assert_eq!(
            alt,
            [
                (22, "build", "docker-de-1", "docker-fr-1"),
                (24, "test", "docker-de-1", "docker-fr-1"),
            ]
        );
        assert!(close(
            r.carbon.cleaner_alternatives[0].saved_g,
            saved(300.0)
        ));
        assert!(close(r.carbon.cleaner_alternatives[1].saved_g, saved(10.0)));

        // Without A's jobs 11 and 13, A was free for 21 and 23 too.
        let jobs: Vec<Job> = history()
            .into_iter()
            .filter(|j| j.id != 11 && j.id != 13)
            .collect();
        let r = report_with(&jobs, ReportRules::default());
        let ids: Vec<u64> = r
            .carbon
            .cleaner_alternatives
            .iter()
            .map(|a| a.job_id)
            .collect();
        assert_eq!(ids, [23, 21, 22, 24]);
    }

    #[test]
    fn report_serialises_with_the_contract_names() {
        let r = report(ReportRules::default());
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "window",
            "jobs",
            "skipped",
            "pipelines",
            "runners",
            "findings",
            "queue_wait",
            "queue_wait_by_tags",
            "flaky",
            "failures_by_day",
            "carbon",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["runners"][0]["score"]["weights"]["speed"], 0.3);
        assert!(v["carbon"]["cleaner_alternatives"][0]["saved_g"].is_f64());
        assert_eq!(v["failures_by_day"][0]["day"], "2026-01-05");
    }

    #[test]
    fn job_records_stay_small() {
        eprintln!("JobRec: {} bytes", std::mem::size_of::<JobRec>());
        assert!(
            std::mem::size_of::<JobRec>() <= 96,
            "{}",
            std::mem::size_of::<JobRec>()
        );
    }

    #[test]
    fn two_hundred_thousand_jobs() {
        let mut probe = String::new();
        iso_into(&mut probe, T0 + 3723);
        assert_eq!(probe, iso(T0 + 3723));
        let mut url = "https://x/-/jobs/77".to_string();
        set_number(&mut url, 17, 1234);
        assert_eq!(url, "https://x/-/jobs/1234");
        let zones = ["FR", "DE", "PL", "SE", "NO", "US-CA"];
        let fleet: Vec<FleetRunner> = (1..=20u64)
            .map(|i| {
                let tags: &[&str] = if i % 4 == 0 {
                    &["docker", "gpu"]
                } else {
                    &["docker", "linux"]
                };
                runner(
                    i,
                    &format!("r{i}"),
                    zones[i as usize % zones.len()],
                    150.0,
                    4,
                    tags,
                )
            })
            .collect();
        let w = Window {
            from: T0,
            to: T0 + 7 * DAY,
        };
        let mut a = Aggregator::new(
            w,
            Some(&fleet),
            ReportRules::default(),
            PriorityRules::default(),
            Some("main".into()),
        );
        let statuses = [
            "success", "success", "success", "failed", "canceled", "running",
        ];
        let reasons = [
            "script_failure",
            "runner_system_failure",
            "stuck_or_timeout_failure",
        ];
        let started = std::time::Instant::now();
        let mut j = job(0, "", 1, "success", 0, 0.0, 0.0, 0);
        let url_base = j.web_url.as_ref().unwrap().len() - 1;
        for i in 0..200_000u64 {
            // Reuse one job, changing what varies: the Strings are the
            // test's cost, not the aggregator's.
            j.id = i + 1;
            j.name.clear();
            j.name
                .push_str(["build", "test", "lint", "deploy", "docs"][(i % 5) as usize]);
            j.name.push(char::from(b'0' + (i % 10) as u8));
            j.status.clear();
            j.status.push_str(statuses[(i % 6) as usize]);
            j.failure_reason =
                (j.status == "failed").then(|| reasons[(i % 3) as usize].to_string());
            let t = T0 + (i as i64 * 3) % (7 * DAY);
            iso_into(j.created_at.as_mut().unwrap(), t);
            iso_into(j.started_at.as_mut().unwrap(), t + 30);
            iso_into(j.finished_at.as_mut().unwrap(), t + 30 + (i % 600) as i64);
            j.duration = Some((i % 600) as f64);
            j.queued_duration = Some((i % 97) as f64);
            j.runner.as_mut().unwrap().id = 1 + i % 23; // 21..23: outside the fleet
            let p = j.pipeline.as_mut().unwrap();
            p.id = i / 10;
            set_number(&mut j.commit.as_mut().unwrap().id, 3, i / 50);
            j.git_ref.clear();
            j.git_ref
                .push_str(if i % 3 == 0 { "main" } else { "feature/x" });
            set_number(j.web_url.as_mut().unwrap(), url_base, i + 1);
            a.add(&j);
        }
        let r = a.finish();
        let elapsed = started.elapsed();
        assert_eq!(r.jobs, 200_000 - 33_333);
        assert_eq!(r.skipped.unfinished, 33_333);
        assert_eq!(r.runners.len(), 23);
        assert_eq!(r.runners.iter().map(|m| m.jobs).sum::<u32>(), r.jobs);
        assert_eq!(r.failures_by_day.len(), 7);
        assert!(!r.queue_wait.is_empty() && !r.flaky.is_empty());
        assert!(r.carbon.cleaner_alternatives.len() <= 10);
        eprintln!("200,000 jobs aggregated in {elapsed:?}");
    }
}
