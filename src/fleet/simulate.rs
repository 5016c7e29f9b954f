//! `runneriq simulate`: the project's own history replayed on the fleet's
//! slots under three dispatch policies, with the model's error measured.
//!
//! The model (pure, deterministic): each job arrives at its `created_at` and
//! needs one slot of a runner that passes GitLab's gate for it; it runs for
//! its `duration`, scaled by the runner's speed for that job name relative to
//! the runner it really ran on (from history; 1 when unknown). Runners are
//! never preempted. When several free runners can take a job, the one idle
//! longest takes it (as polling runners would), except under `carbon`.
//!
//! - `fifo`: what GitLab does — when a slot frees, the oldest pending job it
//!   can take.
//! - `priority`: the most urgent pending job it can take (urgency from the
//!   priority rules, with SLA escalation while waiting), ties by age.
//! - `carbon`: `priority`, except that a LOW job waits for the cleanest runner
//!   it can use, for at most `carbon_wait_s` (default 2 h), then takes any. The
//!   embedded tables hold annual means, so "a cleaner hour" is not modelled:
//!   only cleaner runners (stated in the output).
//!
//! Under `priority` and `carbon`, scarce runners are kept as `route` keeps
//! them ([`RoutingRules::reserve_scarce`]): a slot that frees goes first to
//! a waiting job whose candidate set (runner class) is a strict subset of
//! another waiting candidate's, and an arrival does not take a runner such
//! a job could start on. `fifo` is GitLab's and keeps nothing. The waits of
//! scarce jobs (those whose set is a strict subset of another replayed
//! job's) are reported per policy.
//!
//! Honesty: the `fifo` replay is compared with what really happened (each
//! job's `queued_duration`): the median and p95 absolute difference say how
//! far the other policies' figures can be trusted. Jobs that cannot be
//! replayed (no eligible runner in the fleet, manual, missing timestamps) are
//! counted and listed.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::model::FleetRunner;
use super::priority::{self, PriorityRules, Urgency};
use super::route::{self, Inputs, RoutingRules};
use super::stats::History;
use crate::gitlab::models::Job;

/// Unreplayable jobs listed by id, at most.
const MAX_LISTED: usize = 50;

/// The three policies, in output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Fifo,
    Priority,
    Carbon,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::Fifo, Policy::Priority, Policy::Carbon];
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Fifo => "fifo",
            Policy::Priority => "priority",
            Policy::Carbon => "carbon",
        }
    }
}

/// p50 / p95 / max of a sample, seconds (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
    pub mean: f64,
    pub jobs: usize,
}

fn stats(v: &mut [f64]) -> Option<Stats> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Some(Stats {
        p50: round(rank(50.0)),
        p95: round(rank(95.0)),
        max: round(v[v.len() - 1]),
        mean: round(v.iter().sum::<f64>() / v.len() as f64),
        jobs: v.len(),
    })
}

/// Why `simulate` does not ask Electricity Maps even with a token.
pub const LIVE_CARBON_NOT_USED: &str = "ELECTRICITY_MAPS_TOKEN is set, but the replay keeps the tables' annual averages: a live value describes this hour, not the hours the history ran in, and the same history replays the same (route and report use the live values).";

/// One policy's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyResult {
    /// Urgency class → wait statistics (present classes only).
    pub queue_wait: BTreeMap<String, Stats>,
    pub jobs: usize,
    /// First arrival to last finish, seconds.
    pub makespan_s: f64,
    /// Busy time ÷ (slots × makespan), per runner name.
    pub utilization: BTreeMap<String, f64>,
    pub energy_kwh: f64,
    pub co2e_g: f64,
    /// Jobs on runners without power or zone (not in energy and CO₂e).
    pub jobs_without_energy: usize,
    /// Replayed busy time billed at each runner's slot-hour rate
    /// (`cost_per_hour ÷ slots`, the fleet file's unit); None when no
    /// fleet runner has `runneriq.cost_per_hour`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_cost: Option<f64>,
    /// Jobs on runners without a cost (not in `busy_cost`, never as 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs_without_cost: Option<usize>,
    /// Queue wait of the scarce jobs (only a smaller runner class than
    /// other replayed jobs' can take them), when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scarce_wait: Option<Stats>,
}

/// How far the `fifo` replay is from what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayError {
    /// |simulated wait − real `queued_duration`|, seconds.
    pub median_abs_s: f64,
    pub p95_abs_s: f64,
    /// Jobs compared (those with a real queue time).
    pub jobs: usize,
}

/// A job that was not replayed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unreplayed {
    pub job: u64,
    pub name: String,
    pub reason: String,
}

/// The whole result (`simulate --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    pub policies: BTreeMap<Policy, PolicyResult>,
    /// Jobs replayed under every policy.
    pub jobs: usize,
    pub unreplayable: BTreeMap<String, usize>,
    pub unreplayable_jobs: Vec<Unreplayed>,
    pub fifo_error: Option<ReplayError>,
    /// The replayed jobs' real queue waits (`queued_duration`) per urgency
    /// class, to set beside the replay's.
    pub observed_wait: BTreeMap<String, Stats>,
    /// Energy and CO₂e of the replayed jobs where they really ran, for their
    /// real durations (jobs whose runner is in the fleet with power and zone).
    pub observed_energy_kwh: f64,
    pub observed_co2e_g: f64,
    /// The same jobs' real busy time at their real runners' rates (when
    /// costs are known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_busy_cost: Option<f64>,
    /// The largest difference between a policy's p95 queue wait and fifo's,
    /// over the classes (seconds).
    pub largest_wait_difference_s: f64,
    /// Whether that difference is larger than the fifo replay's own error
    /// (its p95): when not, the replay can't tell the policies apart. None
    /// when the input has no real queue times to measure the error with.
    pub policies_told_apart: Option<bool>,
    /// What the model leaves out, in words.
    pub limitations: Vec<String>,
    /// Whether `priority` and `carbon` kept scarce runners' slots for the
    /// jobs only they can take (`routing.reserve_scarce`).
    pub reserve_scarce: bool,
    /// The scarce jobs' names (at most 5, most frequent first).
    pub scarce_jobs: Vec<String>,
    /// Every replayed job's placement, per policy (for checks; not printed).
    #[serde(skip)]
    pub schedules: BTreeMap<Policy, Vec<Placement>>,
}

/// Where and when a job ran in a replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub job: u64,
    pub runner: u64,
    pub arrival: f64,
    pub start: f64,
    pub end: f64,
    pub urgency: Urgency,
}

/// The knobs of the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// LOW jobs wait at most this long for the cleanest runner (`carbon`).
    pub carbon_wait_s: f64,
    pub default_branch: Option<String>,
    /// Keep every placement in [`Simulation::schedules`] (checks and tests;
    /// off by default: it costs memory per job).
    pub keep_schedules: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            carbon_wait_s: 7200.0,
            default_branch: None,
            keep_schedules: false,
        }
    }
}

/// A job ready to replay (compact: the job object itself is dropped).
#[derive(Debug, Clone)]
struct SimJob {
    id: u64,
    arrival: f64,
    /// Service time on the runner it really ran on.
    duration: f64,
    /// Interned job name.
    name: u32,
    /// Fleet index of the runner it really ran on.
    real_runner: Option<u32>,
    real_wait: Option<f64>,
    urgency: Urgency,
    /// Candidate set id.
    set: u32,
}

#[derive(Debug, Clone)]
struct RunnerState {
    free: u32,
    /// When it last became idle (for "idle longest").
    idle_since: f64,
    busy: f64,
    intensity: Option<f64>,
    watts: Option<f64>,
    /// Cost per slot-second (`cost_per_hour ÷ slots ÷ 3600`).
    cost_per_slot_s: Option<f64>,
}

/// Collects the history one job at a time (memory grows by a few numbers
/// per job, not by the job objects), then replays it.
pub struct Builder<'a> {
    fleet: &'a [FleetRunner],
    prio: &'a PriorityRules,
    routing: &'a RoutingRules,
    opts: Options,
    history: History,
    jobs: Vec<SimJob>,
    names: Vec<String>,
    name_ids: HashMap<String, u32>,
    set_ids: HashMap<Vec<u32>, u32>,
    sets: Vec<Vec<u32>>,
    unreplayable: BTreeMap<String, usize>,
    unreplayable_jobs: Vec<Unreplayed>,
    /// Scratch buffer for candidate sets.
    cands: Vec<u32>,
    /// (tags, protected ref, project) → candidate set: the gate runs once
    /// per kind of job, not once per job. Keyed by a string built in
    /// `key_buf` (no allocation for a known kind).
    gate_cache: HashMap<String, u32>,
    key_buf: String,
}

impl<'a> Builder<'a> {
    pub fn new(
        fleet: &'a [FleetRunner],
        prio: &'a PriorityRules,
        routing: &'a RoutingRules,
        opts: Options,
    ) -> Builder<'a> {
        Builder {
            fleet,
            prio,
            routing,
            opts,
            history: History::default(),
            jobs: Vec::new(),
            names: Vec::new(),
            name_ids: HashMap::new(),
            set_ids: HashMap::new(),
            sets: Vec::new(),
            unreplayable: BTreeMap::new(),
            unreplayable_jobs: Vec::new(),
            cands: Vec::new(),
            gate_cache: HashMap::new(),
            key_buf: String::new(),
        }
    }

    fn skip(&mut self, j: &Job, reason: &str) {
        *self.unreplayable.entry(reason.to_string()).or_default() += 1;
        if self.unreplayable_jobs.len() < MAX_LISTED {
            self.unreplayable_jobs.push(Unreplayed {
                job: j.id,
                name: j.name.clone(),
                reason: reason.to_string(),
            });
        }
    }

    /// Adds one job of the history (it also feeds the runners' speed history).
    pub fn add(&mut self, j: &Job) {
        self.history.add(j);
        if j.status == "manual" || j.status == "skipped" {
            self.skip(j, "manual or skipped");
            return;
        }
        let (Some(arrival), Some(duration)) = (
            j.created_at.as_deref().and_then(priority::parse_time),
            j.duration.filter(|d| d.is_finite() && *d >= 0.0),
        ) else {
            self.skip(j, "missing timestamps");
            return;
        };
        let inputs = Inputs {
            default_branch: self.opts.default_branch.as_deref(),
            ..Inputs::default()
        };
        let facts = route::facts_of(j, &inputs, self.routing);
        self.key_buf.clear();
        for t in &j.tag_list {
            self.key_buf.push_str(t);
            self.key_buf.push('\u{1f}');
        }
        use std::fmt::Write as _;
        let _ = write!(
            self.key_buf,
            "\u{1e}{}\u{1e}{:?}",
            facts.protected_ref, facts.project_id
        );
        let set = match self.gate_cache.get(self.key_buf.as_str()) {
            Some(&s) => s,
            None => {
                self.cands.clear();
                for (i, r) in self.fleet.iter().enumerate() {
                    if route::passes(&facts, r) {
                        self.cands.push(i as u32);
                    }
                }
                let s = match self.set_ids.get(&self.cands) {
                    Some(&s) => s,
                    None => {
                        let s = self.sets.len() as u32;
                        self.sets.push(self.cands.clone());
                        self.set_ids.insert(self.cands.clone(), s);
                        s
                    }
                };
                self.gate_cache.insert(self.key_buf.clone(), s);
                s
            }
        };
        if self.sets[set as usize].is_empty() {
            self.skip(j, "no eligible runner in the fleet");
            return;
        }
        let name = match self.name_ids.get(&j.name) {
            Some(&n) => n,
            None => {
                let n = self.names.len() as u32;
                self.names.push(j.name.clone());
                self.name_ids.insert(j.name.clone(), n);
                n
            }
        };
        // The band at arrival (no retry bonus: whether a job is a retry is
        // only known once the whole pipeline is in; escalation while waiting
        // happens during the replay).
        let p = priority::priority(
            j,
            &priority::Context {
                default_branch: self.opts.default_branch.as_deref(),
                access_level: None,
                retry: false,
                now: arrival,
            },
            self.prio,
        );
        let real_runner = j
            .runner
            .as_ref()
            .and_then(|r| self.fleet.iter().position(|f| f.id() == r.id))
            .map(|i| i as u32);
        self.jobs.push(SimJob {
            id: j.id,
            arrival: arrival as f64,
            duration,
            name,
            real_runner,
            real_wait: j.queued_duration.filter(|q| q.is_finite() && *q >= 0.0),
            urgency: p.base_urgency,
            set,
        });
    }

    /// Replays the collected history under the three policies.
    pub fn finish(mut self) -> Simulation {
        self.jobs
            .sort_by(|a, b| a.arrival.total_cmp(&b.arrival).then(a.id.cmp(&b.id)));
        let runners: Vec<RunnerState> = self
            .fleet
            .iter()
            .map(|r| RunnerState {
                free: r.concurrent(),
                idle_since: f64::NEG_INFINITY,
                busy: 0.0,
                intensity: r
                    .runneriq
                    .zone
                    .as_deref()
                    .and_then(super::carbon::lookup)
                    .map(|c| c.g_per_kwh),
                watts: r
                    .runneriq
                    .power_watts
                    .filter(|w| w.is_finite() && *w >= 0.0),
                cost_per_slot_s: r
                    .runneriq
                    .cost_per_hour
                    .filter(|c| c.is_finite() && *c >= 0.0)
                    .map(|c| c / f64::from(r.concurrent().max(1)) / 3600.0),
            })
            .collect();
        let costs_known = runners.iter().any(|r| r.cost_per_slot_s.is_some());
        // Speed factor of (runner, job name, real runner): the runner's
        // duration ratio for the name over the real runner's (1 unknown).
        let fleet = self.fleet;
        let history = &self.history;
        let names = &self.names;
        let mut ratios: HashMap<(u32, u32), Option<f64>> = HashMap::new();
        let mut ratio = |i: u32, name: u32| -> Option<f64> {
            *ratios.entry((i, name)).or_insert_with(|| {
                history
                    .record(fleet[i as usize].id(), &names[name as usize])
                    .duration_ratio
            })
        };
        let mut speeds: HashMap<(u32, u32, u32), f64> = HashMap::new();
        let mut speed = |job: &SimJob, i: usize| -> f64 {
            let key = (i as u32, job.name, job.real_runner.unwrap_or(u32::MAX));
            if let Some(v) = speeds.get(&key) {
                return *v;
            }
            let v = match (
                ratio(i as u32, job.name),
                job.real_runner.and_then(|o| ratio(o, job.name)),
            ) {
                (Some(a), Some(b)) if b > 0.0 => a / b,
                _ => 1.0,
            };
            speeds.insert(key, v);
            v
        };
        let cleanest: Vec<Option<f64>> = self
            .sets
            .iter()
            .map(|s| {
                s.iter()
                    .filter_map(|&i| runners[i as usize].intensity)
                    .min_by(f64::total_cmp)
            })
            .collect();
        // strict[t][s]: candidate set t is a strict subset of set s (both
        // non-empty); a set is scarce when it is a strict subset of another.
        let strict: Vec<Vec<bool>> = self
            .sets
            .iter()
            .map(|t| {
                self.sets
                    .iter()
                    .map(|s| !t.is_empty() && t.len() < s.len() && t.iter().all(|x| s.contains(x)))
                    .collect()
            })
            .collect();
        let scarce: Vec<bool> = strict.iter().map(|row| row.iter().any(|&x| x)).collect();
        let mut scarce_names: BTreeMap<u32, usize> = BTreeMap::new();
        for j in self.jobs.iter().filter(|j| scarce[j.set as usize]) {
            *scarce_names.entry(j.name).or_default() += 1;
        }
        let mut scarce_names: Vec<(u32, usize)> = scarce_names.into_iter().collect();
        scarce_names.sort_by_key(|&(n, c)| (std::cmp::Reverse(c), n));
        let scarce_jobs: Vec<String> = scarce_names
            .iter()
            .take(5)
            .map(|&(n, _)| self.names[n as usize].clone())
            .collect();
        let reserve = self.routing.reserve_scarce;
        let mut policies = BTreeMap::new();
        let mut schedules = BTreeMap::new();
        let mut fifo_waits: Vec<(usize, f64)> = Vec::new();
        for policy in Policy::ALL {
            let (result, waits, placements) = replay(
                policy,
                &self.jobs,
                &Sets {
                    members: &self.sets,
                    strict: &strict,
                    scarce: &scarce,
                    reserve: reserve && policy != Policy::Fifo,
                },
                &cleanest,
                runners.clone(),
                self.fleet,
                self.prio,
                &self.opts,
                &mut speed,
            );
            if policy == Policy::Fifo {
                fifo_waits = waits;
            }
            policies.insert(policy, result);
            schedules.insert(policy, placements);
        }
        let mut diffs: Vec<f64> = fifo_waits
            .iter()
            .filter_map(|(k, w)| self.jobs[*k].real_wait.map(|r| (w - r).abs()))
            .collect();
        let fifo_error = stats(&mut diffs).map(|s| ReplayError {
            median_abs_s: s.p50,
            p95_abs_s: s.p95,
            jobs: s.jobs,
        });
        // What really happened, for the same jobs.
        let mut real: [Vec<f64>; 4] = Default::default();
        let (mut real_kwh, mut real_g, mut real_cost) = (0.0, 0.0, 0.0);
        for j in &self.jobs {
            if let Some(w) = j.real_wait {
                real[class(j.urgency)].push(w);
            }
            let on = j.real_runner.map(|i| &runners[i as usize]);
            if let Some((Some(w), Some(g))) = on.map(|r| (r.watts, r.intensity)) {
                let kwh = w * j.duration / 3_600_000.0;
                real_kwh += kwh;
                real_g += kwh * g;
            }
            if let Some(c) = on.and_then(|r| r.cost_per_slot_s) {
                real_cost += c * j.duration;
            }
        }
        let mut observed_wait = BTreeMap::new();
        for (c, v) in real.iter_mut().enumerate() {
            if let Some(s) = stats(v) {
                observed_wait.insert(URGENCIES[c].as_str().to_string(), s);
            }
        }
        let largest = largest_difference(&policies);
        Simulation {
            policies,
            jobs: self.jobs.len(),
            unreplayable: std::mem::take(&mut self.unreplayable),
            unreplayable_jobs: std::mem::take(&mut self.unreplayable_jobs),
            policies_told_apart: fifo_error.as_ref().map(|e| largest > e.p95_abs_s),
            largest_wait_difference_s: largest,
            observed_wait,
            observed_energy_kwh: (real_kwh * 1e6).round() / 1e6,
            observed_co2e_g: (real_g * 1000.0).round() / 1000.0,
            observed_busy_cost: costs_known.then(|| (real_cost * 1e4).round() / 1e4),
            fifo_error,
            limitations: vec![
                "Only the jobs in the input compete for the fleet: other projects' jobs on shared runners are not replayed (the fifo error shows how much that matters).".into(),
                "Carbon intensities are the embedded tables' annual averages: a cleaner runner is modelled, a cleaner hour is not.".into(),
                "Service time is the real duration scaled by the runner's speed for the job name from history; no preemption, no retries, no retry bonus in the priority.".into(),
            ],
            reserve_scarce: reserve,
            scarce_jobs,
            schedules,
        }
    }
}

/// The largest |p95 queue wait − fifo's| over the other policies and the
/// classes, seconds.
fn largest_difference(policies: &BTreeMap<Policy, PolicyResult>) -> f64 {
    let Some(fifo) = policies.get(&Policy::Fifo) else {
        return 0.0;
    };
    policies
        .values()
        .flat_map(|r| {
            r.queue_wait
                .iter()
                .filter_map(|(c, w)| fifo.queue_wait.get(c).map(|f| (w.p95 - f.p95).abs()))
        })
        .fold(0.0, f64::max)
}

/// Replays `jobs` on `fleet` under the three policies (see [`Builder`]).
pub fn simulate(
    jobs: &[Job],
    fleet: &[FleetRunner],
    prio: &PriorityRules,
    routing: &RoutingRules,
    opts: &Options,
) -> Simulation {
    let mut b = Builder::new(fleet, prio, routing, opts.clone());
    for j in jobs {
        b.add(j);
    }
    b.finish()
}

/// Index of an urgency in the per-class queues (most urgent first).
fn class(u: Urgency) -> usize {
    match u {
        Urgency::Critical => 0,
        Urgency::High => 1,
        Urgency::Medium => 2,
        Urgency::Low => 3,
    }
}

const URGENCIES: [Urgency; 4] = [
    Urgency::Critical,
    Urgency::High,
    Urgency::Medium,
    Urgency::Low,
];

type Done = std::collections::BinaryHeap<std::cmp::Reverse<(OrdF, usize)>>;

/// The candidate sets (runner classes) of a replay.
struct Sets<'a> {
    members: &'a [Vec<u32>],
    /// `strict[t][s]`: set t is a strict subset of set s.
    strict: &'a [Vec<bool>],
    /// A strict subset of another set.
    scarce: &'a [bool],
    /// Keep scarce runners (`priority` and `carbon` with reserve_scarce).
    reserve: bool,
}

/// Running totals of one replay.
#[derive(Default)]
struct Tally {
    waits: Vec<(usize, f64)>,
    class_waits: [Vec<f64>; 4],
    energy_kwh: f64,
    co2e_g: f64,
    without_energy: usize,
    cost: f64,
    without_cost: usize,
    last_end: Option<f64>,
    placements: Vec<Placement>,
    keep: bool,
    /// Free slots per candidate set (so a saturated set is skipped at once).
    free_in: Vec<u32>,
    scarce_waits: Vec<f64>,
}

/// Starts job `k` on runner `i` at `now`.
#[allow(clippy::too_many_arguments)]
fn start(
    k: usize,
    i: usize,
    now: f64,
    sim: &[SimJob],
    scarce: &[bool],
    sets_of: &[Vec<u32>],
    runners: &mut [RunnerState],
    done: &mut Done,
    speed: &mut dyn FnMut(&SimJob, usize) -> f64,
    t: &mut Tally,
) {
    let j = &sim[k];
    let service = j.duration * speed(j, i);
    runners[i].free -= 1;
    for &s in &sets_of[i] {
        t.free_in[s as usize] -= 1;
    }
    runners[i].busy += service;
    let end = now + service;
    t.last_end = Some(t.last_end.map_or(end, |e| e.max(end)));
    if !t.keep {
        // Only the schedule's checks need every placement.
    } else {
        t.placements.push(Placement {
            job: j.id,
            runner: i as u64,
            arrival: j.arrival,
            start: now,
            end,
            urgency: j.urgency,
        });
    }
    done.push(std::cmp::Reverse((OrdF(end), i)));
    let wait = now - j.arrival;
    if scarce[j.set as usize] {
        t.scarce_waits.push(wait);
    }
    t.waits.push((k, wait));
    t.class_waits[class(j.urgency)].push(wait);
    match (runners[i].watts, runners[i].intensity) {
        (Some(w), Some(g)) => {
            let kwh = w * service / 3_600_000.0;
            t.energy_kwh += kwh;
            t.co2e_g += kwh * g;
        }
        _ => t.without_energy += 1,
    }
    match runners[i].cost_per_slot_s {
        Some(c) => t.cost += c * service,
        None => t.without_cost += 1,
    }
}

/// The event-driven replay of one policy. An arrival takes a free eligible
/// runner at once when nothing of its candidate set is queued (then no
/// older job could use that runner: it would have taken it); a slot that
/// frees takes the best queue head among the candidate sets its runner is
/// in; `carbon` timers release LOW jobs that waited their bound. Work per
/// event is bounded by one candidate set's runners or one runner's sets,
/// not by the queue.
#[allow(clippy::too_many_arguments)]
fn replay(
    policy: Policy,
    sim: &[SimJob],
    sets: &Sets<'_>,
    cleanest: &[Option<f64>],
    mut runners: Vec<RunnerState>,
    fleet: &[FleetRunner],
    prio: &PriorityRules,
    opts: &Options,
    speed: &mut dyn FnMut(&SimJob, usize) -> f64,
) -> (PolicyResult, Vec<(usize, f64)>, Vec<Placement>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut queues: Vec<[VecDeque<usize>; 4]> =
        sets.members.iter().map(|_| Default::default()).collect();
    let mut sets_of: Vec<Vec<u32>> = vec![Vec::new(); runners.len()];
    for (s, members) in sets.members.iter().enumerate() {
        for &i in members {
            sets_of[i as usize].push(s as u32);
        }
    }
    // Waiting this long moves a class up one band (CRITICAL never moves).
    let sla = [
        f64::INFINITY,
        prio.sla_s[2] as f64,
        prio.sla_s[1] as f64,
        prio.sla_s[0] as f64,
    ];
    let effective = |c: usize, waited: f64| if c > 0 && waited >= sla[c] { c - 1 } else { c };
    // May job k start on runner i now (the carbon rule)?
    let carbon_ok = |k: usize, i: usize, now: f64, runners: &[RunnerState]| -> bool {
        if policy != Policy::Carbon {
            return true;
        }
        let j = &sim[k];
        let waited = now - j.arrival;
        if effective(class(j.urgency), waited) != 3 || waited >= opts.carbon_wait_s {
            return true;
        }
        match (runners[i].intensity, cleanest[j.set as usize]) {
            (Some(g), Some(c)) => g <= c + 1e-9,
            _ => true,
        }
    };
    // Has set t a waiting job that may start on runner i now?
    let ready =
        |t: usize, i: usize, now: f64, queues: &[[VecDeque<usize>; 4]], runners: &[RunnerState]| {
            queues[t]
                .iter()
                .any(|q| q.front().is_some_and(|&k| carbon_ok(k, i, now, runners)))
        };
    // Is runner i kept from a job of set s: a waiting job whose set is a
    // strict subset of s may start on it now?
    let kept =
        |s: usize, i: usize, now: f64, queues: &[[VecDeque<usize>; 4]], runners: &[RunnerState]| {
            sets.reserve
                && sets_of[i].iter().any(|&t| {
                    sets.strict[t as usize][s] && ready(t as usize, i, now, queues, runners)
                })
        };
    // The free runner job k should take now: the one idle longest among
    // those the carbon rule allows and no scarcer waiting job may take.
    let pick = |k: usize,
                now: f64,
                queues: &[[VecDeque<usize>; 4]],
                runners: &[RunnerState]|
     -> Option<usize> {
        let set = sim[k].set as usize;
        sets.members[set]
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| {
                runners[i].free > 0
                    && carbon_ok(k, i, now, runners)
                    && !kept(set, i, now, queues, runners)
            })
            .min_by(|&a, &b| {
                runners[a]
                    .idle_since
                    .total_cmp(&runners[b].idle_since)
                    .then(a.cmp(&b))
            })
    };
    // The best queue head runner i may take now: (set, class).
    let best_for = |i: usize,
                    now: f64,
                    queues: &[[VecDeque<usize>; 4]],
                    runners: &[RunnerState]|
     -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize, (usize, f64, usize))> = None;
        for &s in &sets_of[i] {
            for (c, q) in queues[s as usize].iter().enumerate() {
                let Some(&k) = q.front() else { continue };
                let j = &sim[k];
                let key = match policy {
                    Policy::Fifo => (0, j.arrival, k),
                    _ => (effective(c, now - j.arrival), j.arrival, k),
                };
                if !carbon_ok(k, i, now, runners) || kept(s as usize, i, now, queues, runners) {
                    continue;
                }
                let better = best.as_ref().is_none_or(|(_, _, b)| {
                    key.0 < b.0 || (key.0 == b.0 && (key.1 < b.1 || (key.1 == b.1 && key.2 < b.2)))
                });
                if better {
                    best = Some((s as usize, c, key));
                }
            }
        }
        best.map(|(s, c, _)| (s, c))
    };

    let mut done: Done = BinaryHeap::new();
    let mut timers: BinaryHeap<Reverse<(OrdF, usize)>> = BinaryHeap::new();
    let mut started = vec![false; sim.len()];
    let mut t = Tally {
        waits: Vec::with_capacity(sim.len()),
        keep: opts.keep_schedules,
        free_in: sets
            .members
            .iter()
            .map(|m| m.iter().map(|&i| runners[i as usize].free).sum())
            .collect(),
        ..Tally::default()
    };
    let first_arrival = sim.first().map_or(0.0, |j| j.arrival);
    let mut next = 0usize;
    loop {
        let t_arr = sim.get(next).map(|j| j.arrival);
        let t_done = done.peek().map(|r| (r.0).0.0);
        let t_timer = timers.peek().map(|r| (r.0).0.0);
        let Some(now) = [t_arr, t_done, t_timer]
            .into_iter()
            .flatten()
            .min_by(f64::total_cmp)
        else {
            break;
        };
        // Slots freed at `now`, each offered to the queues.
        while done.peek().is_some_and(|r| (r.0).0.0 <= now) {
            let Reverse((_, i)) = done.pop().expect("peeked");
            runners[i].free += 1;
            runners[i].idle_since = now;
            for &s in &sets_of[i] {
                t.free_in[s as usize] += 1;
            }
            while runners[i].free > 0 {
                let Some((s, c)) = best_for(i, now, &queues, &runners) else {
                    break;
                };
                let k = queues[s][c].pop_front().expect("a queue head");
                started[k] = true;
                start(
                    k,
                    i,
                    now,
                    sim,
                    sets.scarce,
                    &sets_of,
                    &mut runners,
                    &mut done,
                    speed,
                    &mut t,
                );
            }
        }
        // Carbon bounds reached: held LOW jobs of that set take any free runner.
        while timers.peek().is_some_and(|r| (r.0).0.0 <= now) {
            let Reverse((_, k)) = timers.pop().expect("peeked");
            if started[k] {
                continue;
            }
            let s = sim[k].set as usize;
            while let Some(&head) = queues[s][3].front() {
                if t.free_in[s] == 0 {
                    break;
                }
                let Some(i) = pick(head, now, &queues, &runners) else {
                    break;
                };
                queues[s][3].pop_front();
                started[head] = true;
                start(
                    head,
                    i,
                    now,
                    sim,
                    sets.scarce,
                    &sets_of,
                    &mut runners,
                    &mut done,
                    speed,
                    &mut t,
                );
            }
        }
        // Arrivals: a free eligible runner takes the job at once, else it queues.
        while sim.get(next).is_some_and(|j| j.arrival <= now) {
            let k = next;
            next += 1;
            let set = sim[k].set as usize;
            // After every event no queued job can use a free runner (it
            // would have taken it), so a free runner the arrival can use is
            // one no older job wants.
            let free = if t.free_in[set] > 0 {
                pick(k, now, &queues, &runners)
            } else {
                None
            };
            match free {
                Some(i) => {
                    started[k] = true;
                    start(
                        k,
                        i,
                        now,
                        sim,
                        sets.scarce,
                        &sets_of,
                        &mut runners,
                        &mut done,
                        speed,
                        &mut t,
                    );
                }
                None => {
                    queues[set][class(sim[k].urgency)].push_back(k);
                    if policy == Policy::Carbon && sim[k].urgency == Urgency::Low {
                        timers.push(Reverse((OrdF(sim[k].arrival + opts.carbon_wait_s), k)));
                    }
                }
            }
        }
    }
    let makespan = t.last_end.map_or(0.0, |e| (e - first_arrival).max(0.0));
    let mut queue_wait = BTreeMap::new();
    for (c, v) in t.class_waits.iter_mut().enumerate() {
        if let Some(s) = stats(v) {
            queue_wait.insert(URGENCIES[c].as_str().to_string(), s);
        }
    }
    let utilization = fleet
        .iter()
        .zip(&runners)
        .map(|(r, st)| {
            let cap = f64::from(r.concurrent()) * makespan;
            (
                format!("{} (#{})", r.label(), r.id()),
                if cap > 0.0 {
                    ((st.busy / cap) * 1000.0).round() / 1000.0
                } else {
                    0.0
                },
            )
        })
        .collect();
    t.waits.sort_by_key(|(k, _)| *k);
    for p in &mut t.placements {
        p.runner = fleet[p.runner as usize].id();
    }
    (
        PolicyResult {
            queue_wait,
            jobs: t.waits.len(),
            makespan_s: (makespan * 1000.0).round() / 1000.0,
            utilization,
            energy_kwh: (t.energy_kwh * 1e6).round() / 1e6,
            co2e_g: (t.co2e_g * 1000.0).round() / 1000.0,
            jobs_without_energy: t.without_energy,
            busy_cost: runners
                .iter()
                .any(|r| r.cost_per_slot_s.is_some())
                .then(|| (t.cost * 1e4).round() / 1e4),
            jobs_without_cost: runners
                .iter()
                .any(|r| r.cost_per_slot_s.is_some())
                .then_some(t.without_cost),
            scarce_wait: stats(&mut t.scarce_waits),
        },
        t.waits,
        t.placements,
    )
}

/// An f64 with a total order, for heaps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF(f64);

impl Eq for OrdF {}

impl PartialOrd for OrdF {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A finding in one sentence, plain text: its lead (shown bold) and the rest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentence {
    pub lead: &'static str,
    pub text: String,
}

/// The replay can't tell the policies' queue waits apart, in one sentence:
/// the largest difference against the replay's error, and the replayed fifo
/// waits beside the real ones.
pub fn indistinct_sentence(s: &Simulation) -> Option<Sentence> {
    if s.policies_told_apart != Some(false) {
        return None;
    }
    let e = s.fifo_error.as_ref()?;
    let fifo = s.policies.get(&Policy::Fifo)?;
    let classes: Vec<&str> = CLASSES
        .iter()
        .copied()
        .filter(|c| fifo.queue_wait.contains_key(*c) && s.observed_wait.contains_key(*c))
        .collect();
    let words = |v: Vec<String>| match v.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    let replayed = words(
        classes
            .iter()
            .map(|c| super::duration_words(fifo.queue_wait[*c].p95))
            .collect(),
    );
    let real = words(
        classes
            .iter()
            .map(|c| super::duration_words(s.observed_wait[*c].p95))
            .collect(),
    );
    Some(Sentence {
        lead: "The replay can't tell the policies apart:",
        text: format!(
            "their p95 queue waits differ by at most {}, less than the replay's own error (p95 {} per job), and it has {} jobs wait {replayed} under fifo (p95) where they really waited {real}, so what kept them waiting is not in this history (other projects' jobs on shared runners, for one).",
            super::duration_words(s.largest_wait_difference_s),
            super::duration_words(e.p95_abs_s),
            words(classes.iter().map(|c| c.to_string()).collect()),
        ),
    })
}

/// Why the replay's CO₂e is not the measured one, and what it says, in one
/// sentence.
pub fn co2e_sentence(s: &Simulation) -> Option<Sentence> {
    let fifo = s.policies.get(&Policy::Fifo)?;
    if fifo.co2e_g <= 0.0 || s.observed_co2e_g <= 0.0 {
        return None;
    }
    let others: Vec<String> = s
        .policies
        .iter()
        .filter(|(p, _)| **p != Policy::Fifo)
        .map(|(p, r)| {
            let d = r.co2e_g - fifo.co2e_g;
            let sign = if d < 0.0 { "−" } else { "+" };
            if d.abs() < 0.5 {
                format!("{} the same", p.as_str())
            } else {
                format!(
                    "{} {sign}{} ({sign}{:.0} %)",
                    p.as_str(),
                    grams(d.abs()),
                    d.abs() / fifo.co2e_g * 100.0
                )
            }
        })
        .collect();
    Some(Sentence {
        lead: "CO₂e:",
        text: format!(
            "these jobs emitted {} where they really ran; the replay puts each job on the eligible runner idle longest (GitLab gives it to whichever runner asks first) and scales its duration to that runner, so its fifo total ({}) is the baseline the policies are compared with, not a measurement: {} against fifo.",
            grams(s.observed_co2e_g),
            grams(fifo.co2e_g),
            others.join(", ")
        ),
    })
}

/// A mass of CO₂e: `344 g`, `13.41 kg`.
pub fn grams(g: f64) -> String {
    if g >= 1000.0 {
        format!("{:.2} kg", g / 1000.0)
    } else {
        format!("{g:.0} g")
    }
}

/// Urgency classes, most urgent first.
pub const CLASSES: [&str; 4] = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::model::RunnerExt;
    use crate::gitlab::models::{Runner, RunnerSummary};

    fn runner(id: u64, slots: u32, zone: &str) -> FleetRunner {
        FleetRunner {
            runner: Runner {
                id,
                description: Some(format!("r{id}")),
                status: Some("online".into()),
                paused: Some(false),
                tag_list: vec!["docker".into()],
                run_untagged: Some(true),
                ..Runner::default()
            },
            runneriq: RunnerExt {
                concurrent: Some(slots),
                zone: Some(zone.into()),
                power_watts: Some(1000.0),
                ..RunnerExt::default()
            },
        }
    }

    /// `t` seconds after 2026-01-01T10:00:00Z.
    fn at(t: i64) -> String {
        format!("2026-01-01T10:{:02}:{:02}Z", t / 60, t % 60)
    }

    fn job(
        id: u64,
        name: &str,
        stage: &str,
        git_ref: &str,
        arrival: i64,
        duration: f64,
        wait: f64,
    ) -> Job {
        Job {
            id,
            name: name.into(),
            stage: stage.into(),
            status: "success".into(),
            git_ref: git_ref.into(),
            tag_list: vec!["docker".into()],
            created_at: Some(at(arrival)),
            duration: Some(duration),
            queued_duration: Some(wait),
            runner: Some(Box::new(RunnerSummary {
                id: 1,
                ..RunnerSummary::default()
            })),
            ..Job::default()
        }
    }

    fn run(jobs: &[Job], fleet: &[FleetRunner]) -> Simulation {
        simulate(
            jobs,
            fleet,
            &PriorityRules::default(),
            &RoutingRules::default(),
            &Options {
                default_branch: Some("main".into()),
                ..Options::default()
            },
        )
    }

    /// One runner, one slot. Lint jobs arrive first (t=0,1,2, 100 s each), a
    /// deploy on main arrives at t=3 (60 s).
    ///
    /// fifo:     lint0 0–100, lint1 100–200, lint2 200–300, deploy 300–360
    ///           waits: lint 0, 99, 198; deploy 297.
    /// priority: lint0 0–100, deploy 100–160 (HIGH beats LOW), lint1 160–260,
    ///           lint2 260–360; waits: lint 0, 159, 258; deploy 97.
    #[test]
    fn a_hand_computed_history() {
        let fleet = [runner(1, 1, "FR")];
        let jobs = [
            job(1, "lint", "lint", "spike/a", 0, 100.0, 0.0),
            job(2, "lint", "lint", "spike/b", 1, 100.0, 99.0),
            job(3, "lint", "lint", "spike/c", 2, 100.0, 198.0),
            job(4, "deploy", "deploy", "main", 3, 60.0, 297.0),
        ];
        let s = run(&jobs, &fleet);
        assert_eq!(s.jobs, 4);
        let fifo = &s.policies[&Policy::Fifo];
        assert_eq!(fifo.queue_wait["HIGH"].max, 297.0);
        assert_eq!(fifo.queue_wait["LOW"].max, 198.0);
        assert_eq!(fifo.makespan_s, 360.0);
        let p = &s.policies[&Policy::Priority];
        assert_eq!(p.queue_wait["HIGH"].max, 97.0);
        assert_eq!(p.queue_wait["LOW"].max, 258.0);
        assert_eq!(p.queue_wait["LOW"].p50, 159.0);
        // The fifo replay matches the recorded waits exactly here.
        let e = s.fifo_error.unwrap();
        assert_eq!((e.median_abs_s, e.p95_abs_s, e.jobs), (0.0, 0.0, 4));
        // 360 s at 1000 W = 0.1 kWh on FR's intensity.
        let fr = crate::fleet::carbon::lookup("FR").unwrap().g_per_kwh;
        assert!((fifo.energy_kwh - 0.1).abs() < 1e-9);
        assert!((fifo.co2e_g - 0.1 * fr).abs() < 1e-3);
    }

    /// Two runners (FR clean, PL dirty), one slot each. Under `carbon`, a LOW
    /// job arriving when only PL is free waits for FR (within 2 h).
    #[test]
    fn carbon_makes_low_jobs_wait_for_the_cleaner_runner() {
        let fleet = [runner(1, 1, "FR"), runner(2, 1, "PL")];
        let jobs = [
            job(1, "build", "build", "main", 0, 100.0, 0.0),
            job(2, "lint", "lint", "spike/x", 10, 50.0, 0.0),
        ];
        let s = run(&jobs, &fleet);
        // fifo/priority: the lint takes PL at t=10 at once.
        assert_eq!(s.policies[&Policy::Fifo].queue_wait["LOW"].max, 0.0);
        // carbon: the lint waits until FR frees at t=100.
        assert_eq!(s.policies[&Policy::Carbon].queue_wait["LOW"].max, 90.0);
        assert!(s.policies[&Policy::Carbon].co2e_g < s.policies[&Policy::Fifo].co2e_g);
    }

    #[test]
    fn cost_per_policy_bills_busy_time_at_the_runners_slot_rate() {
        // FR costs 0.72 per hour (1 slot); PL has no cost.
        let mut fleet = [runner(1, 1, "FR"), runner(2, 1, "PL")];
        let jobs = [
            job(1, "build", "build", "main", 0, 100.0, 0.0),
            job(2, "lint", "lint", "spike/x", 10, 50.0, 0.0),
        ];
        // No cost anywhere: no cost figures at all (not 0).
        let s = run(&jobs, &fleet);
        assert!(s.policies.values().all(|r| r.busy_cost.is_none()));
        assert!(s.observed_busy_cost.is_none());
        fleet[0].runneriq.cost_per_hour = Some(0.72);
        let s = run(&jobs, &fleet);
        // fifo: the build on FR (100 s), the lint on PL (unknown).
        let fifo = &s.policies[&Policy::Fifo];
        assert_eq!(fifo.busy_cost, Some(0.02));
        assert_eq!(fifo.jobs_without_cost, Some(1));
        // carbon: the lint waits for FR: 150 s there.
        let carbon = &s.policies[&Policy::Carbon];
        assert_eq!(carbon.busy_cost, Some(0.03));
        assert_eq!(carbon.jobs_without_cost, Some(0));
        // Two slots: each costs half the runner's hour.
        fleet[0].runneriq.concurrent = Some(2);
        let s = run(&jobs, &fleet);
        assert_eq!(s.policies[&Policy::Carbon].busy_cost, Some(0.015));
    }

    #[test]
    fn unreplayable_jobs_are_counted_and_listed() {
        let fleet = [runner(1, 1, "FR")];
        let mut gpu = job(1, "train", "test", "main", 0, 10.0, 0.0);
        gpu.tag_list = vec!["gpu".into()];
        let mut manual = job(2, "deploy", "deploy", "main", 0, 10.0, 0.0);
        manual.status = "manual".into();
        let mut no_time = job(3, "x", "test", "main", 0, 10.0, 0.0);
        no_time.created_at = None;
        let s = run(
            &[
                gpu,
                manual,
                no_time,
                job(4, "ok", "test", "main", 0, 1.0, 0.0),
            ],
            &fleet,
        );
        assert_eq!(s.jobs, 1);
        assert_eq!(s.unreplayable["no eligible runner in the fleet"], 1);
        assert_eq!(s.unreplayable["manual or skipped"], 1);
        assert_eq!(s.unreplayable["missing timestamps"], 1);
        assert_eq!(s.unreplayable_jobs.len(), 3);
    }
}
