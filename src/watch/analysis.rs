//! Pure: the fleet's health between two runs of `runneriq watch`.
//!
//! Takes what the last run remembered ([`State`], read back from the
//! fleet-health issue) and what this run saw (runners, one page of active
//! and one of finished jobs per project, the last report's queue waits) and
//! returns data: the open [`Problem`]s, each with a fingerprint, and for
//! every channel what to send now ([`decide`]: trigger, reminder after the
//! cooldown, resolve once). No I/O here; the command fetches and the
//! renderers write.
//!
//! The state comes back from an issue anybody with the Reporter role can
//! edit, so [`State::parse`] treats it as untrusted: size-capped, validated
//! field by field, garbage read as the empty state (at worst an alert too
//! many, never a failed run), and nothing in it ever becomes a URL or a
//! request beyond the runner ids GitLab listed this run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::fleet::model::FleetRunner;
use crate::fleet::priority::{self, PriorityRules, Urgency, parse_time};
use crate::fleet::route::{self, Gate, RoutingRules};
use crate::gitlab::models::{Job, Runner};
use crate::noise::Severity;

/// Start of the hidden state comment (one line, the last).
pub const STATE_PREFIX: &str = "<!-- runneriq:watch-state ";
/// A state line longer than this is not read (the empty state is used).
pub const MAX_STATE_BYTES: usize = 256 * 1024;
/// Runners remembered at most.
pub const MAX_RUNNERS: usize = 2_000;
/// Open problems remembered at most.
pub const MAX_PROBLEMS: usize = 500;
/// Tags remembered per runner at most.
const MAX_TAGS: usize = 64;
/// Characters kept of any remembered text (a runner's name, a subject).
const MAX_TEXT: usize = 255;
/// Jobs named per pending-jobs problem.
pub const MAX_JOBS_NAMED: usize = 5;
/// The channels a problem can be sent to, as the state names them.
pub const CHANNELS: [&str; 3] = ["slack", "webhook", "pagerduty"];
/// Failure reasons that blame the runner, not the job.
pub const INFRA_REASONS: [&str; 2] = ["runner_system_failure", "stuck_or_timeout_failure"];

/// The thresholds of `watch:` in `.runneriq.yml`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRules {
    /// An online runner with no contact for this long is stale (seconds).
    pub stale_s: u64,
    /// A job pending longer than this is a problem (seconds).
    pub pending_s: u64,
    /// An open problem is sent again at most once per cooldown (seconds).
    pub cooldown_s: u64,
    /// The queue-wait and infrastructure-failure window (seconds).
    pub window_s: u64,
    /// A class's p95 above `spike_factor` × its usual level …
    pub spike_factor: f64,
    /// … and above it by at least this much (seconds) is a spike.
    pub spike_min_s: u64,
    /// Jobs of a class in the window before its p95 is judged.
    pub min_jobs: u32,
    /// Infrastructure failures of one runner in the window that make a problem.
    pub infra_failures: u32,
    /// Report paused runners (severity low).
    pub paused: bool,
    /// `GET /runners/:id` per run at most.
    pub max_details: u32,
    /// Group mode: projects whose jobs are read, at most.
    pub max_projects: u32,
}

impl Default for WatchRules {
    fn default() -> WatchRules {
        WatchRules {
            stale_s: 30 * 60,
            pending_s: 10 * 60,
            cooldown_s: 3600,
            window_s: 3600,
            spike_factor: 2.0,
            spike_min_s: 120,
            min_jobs: 5,
            infra_failures: 3,
            paused: true,
            max_details: 20,
            max_projects: 20,
        }
    }
}

/// What one runner looked like when last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// GitLab's status: online, offline, stale, never_contacted.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub paused: bool,
    /// Description or name (untrusted: shown only through the sanitizer).
    #[serde(default)]
    pub label: String,
    /// From the last `GET /runners/:id`.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_untagged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout: Option<u64>,
    /// Last contact (seconds since 1970), from the details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacted: Option<i64>,
    /// Whether details were ever read (tags known).
    #[serde(default)]
    pub detailed: bool,
}

/// An open problem as remembered: when it started and what was sent when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    pub kind: Kind,
    pub since: i64,
    pub severity: Severity,
    /// The problem in a few words, for its "resolved" message (untrusted on
    /// the way back: shown only through the sanitizer).
    #[serde(default)]
    pub subject: String,
    /// Channel → when it was last sent there.
    #[serde(default)]
    pub sent: BTreeMap<String, i64>,
}

/// What the fleet-health issue remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// When the state was written.
    #[serde(default)]
    pub at: i64,
    #[serde(default)]
    pub runners: BTreeMap<u64, Seen>,
    #[serde(default)]
    pub problems: BTreeMap<String, Open>,
}

impl State {
    /// The state kept in an issue body: its last non-blank line only, at
    /// most [`MAX_STATE_BYTES`], every field checked; anything else is the
    /// empty state.
    pub fn parse(body: &str) -> State {
        let Some(last) = body.lines().rev().find(|l| !l.trim().is_empty()) else {
            return State::default();
        };
        if last.len() > MAX_STATE_BYTES {
            return State::default();
        }
        let Some(json) = last
            .trim_end()
            .strip_prefix(STATE_PREFIX)
            .and_then(|r| r.strip_suffix("-->"))
        else {
            return State::default();
        };
        match serde_json::from_str::<State>(json.trim()) {
            Ok(s) => s.validated(),
            Err(_) => State::default(),
        }
    }

    /// Drops what cannot be right and cuts what is too long.
    fn validated(mut self) -> State {
        if self.runners.len() > MAX_RUNNERS || self.problems.len() > MAX_PROBLEMS {
            return State::default();
        }
        self.runners.retain(|id, _| *id > 0);
        for s in self.runners.values_mut() {
            s.label = cut(&s.label);
            if !matches!(
                s.status.as_str(),
                "online"
                    | "offline"
                    | "stale"
                    | "never_contacted"
                    | "active"
                    | "paused"
                    | "unknown"
            ) {
                s.status = "unknown".into();
            }
            s.tags.truncate(MAX_TAGS);
            s.tags
                .retain(|t| !t.is_empty() && t.chars().count() <= MAX_TEXT);
        }
        self.problems.retain(|fp, p| {
            is_fingerprint(fp) && p.sent.keys().all(|c| CHANNELS.contains(&c.as_str()))
        });
        for p in self.problems.values_mut() {
            p.subject = cut(&p.subject);
        }
        self
    }

    /// The hidden comment, one line, always short enough to be read back
    /// ([`MAX_STATE_BYTES`]): when the fleet is too large, the runners
    /// remembered go first (costing detail reads on the next run), never
    /// the open problems (that would send their alerts again).
    pub fn marker(&self) -> String {
        let mut json = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        if json.len() > MAX_STATE_BYTES / 2 {
            let mut smaller = self.clone();
            while json.len() > MAX_STATE_BYTES / 2 && !smaller.runners.is_empty() {
                // Drop a quarter of the runners (the highest ids) at a time.
                let keep = smaller.runners.len() * 3 / 4;
                smaller.runners = smaller.runners.into_iter().take(keep).collect();
                json = serde_json::to_string(&smaller).unwrap_or_else(|_| "{}".into());
            }
        }
        // Inside JSON strings `<`, `>` and `@` may be escaped without
        // changing the value: nothing can close the comment early or mention.
        format!(
            "{STATE_PREFIX}{} -->",
            json.replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('@', "\\u0040")
        )
    }

    /// The state without what changes on every run (contact times, the
    /// write time): equal means there is nothing worth an edit.
    pub fn significant(&self) -> State {
        let mut s = self.clone();
        s.at = 0;
        for r in s.runners.values_mut() {
            r.contacted = None;
        }
        s
    }
}

fn cut(s: &str) -> String {
    crate::text::truncate_chars(s, MAX_TEXT).to_string()
}

/// 16 lowercase hex digits.
pub fn is_fingerprint(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// FNV-1a 64 of `key`, as 16 hex digits.
pub fn fingerprint(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// What kind of problem.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// GitLab says offline (no contact for 2 h), stale or never contacted.
    #[default]
    RunnerOffline,
    /// Online for GitLab, but no contact for `watch.stale`.
    RunnerStale,
    RunnerPaused,
    /// Jobs pending on tags no online runner has.
    PendingNoRunner,
    /// Jobs pending while every eligible runner is busy.
    PendingBusy,
    /// Jobs pending because the runners with their tags refuse them
    /// (protected refs only, maximum timeout, another project's runner).
    PendingGate,
    /// Jobs pending although eligible runners have free slots.
    PendingUnexplained,
    /// A class's queue-wait p95 well above its usual level.
    QueueSpike,
    /// A runner failing jobs for infrastructure reasons.
    InfraFailures,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RunnerOffline => "runner_offline",
            Kind::RunnerStale => "runner_stale",
            Kind::RunnerPaused => "runner_paused",
            Kind::PendingNoRunner => "pending_no_runner",
            Kind::PendingBusy => "pending_busy",
            Kind::PendingGate => "pending_gate",
            Kind::PendingUnexplained => "pending_unexplained",
            Kind::QueueSpike => "queue_spike",
            Kind::InfraFailures => "infra_failures",
        }
    }

    /// How much it matters by default.
    pub fn severity(self) -> Severity {
        match self {
            Kind::RunnerOffline | Kind::PendingNoRunner | Kind::InfraFailures => Severity::High,
            Kind::RunnerStale
            | Kind::PendingBusy
            | Kind::PendingGate
            | Kind::PendingUnexplained
            | Kind::QueueSpike => Severity::Medium,
            Kind::RunnerPaused => Severity::Low,
        }
    }
}

/// A runner as a problem names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunnerRef {
    pub id: u64,
    /// Untrusted (GitLab's description): sanitize before Markdown.
    pub label: String,
    pub status: String,
    pub paused: bool,
}

/// A job as a problem names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRef {
    pub id: u64,
    pub name: String,
    pub project: Option<u64>,
    pub git_ref: String,
    pub waited_s: u64,
    pub web_url: Option<String>,
}

/// One open problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub fingerprint: String,
    pub kind: Kind,
    pub severity: Severity,
    /// When it started (this run, or as remembered).
    pub since: i64,
    /// A few words: the runner's label, the tags, the class.
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerRef>,
    /// The jobs' tags (pending problems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Pending jobs, longest waiting first (at most [`MAX_JOBS_NAMED`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobRef>,
    /// How many jobs in all (pending, failed).
    pub count: u32,
    /// The longest wait among them (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_wait_s: Option<u64>,
    /// Offline or paused runners that have the tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<RunnerRef>,
    /// (busy, total) slots of the eligible runners (1 per runner unless
    /// `runneriq.concurrent` says otherwise: the API does not tell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<(u32, u32)>,
    /// Pending jobs (any wait) competing for those runners' free slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<u32>,
    /// Why the runners refuse, in words (pending_gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// Priority class (queue_spike).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usual_p95_s: Option<f64>,
    /// Failure reasons counted (infra_failures).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, u32>,
    /// Minutes since the last contact (runner_stale, runner_offline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent_s: Option<u64>,
}

impl Problem {
    fn new(key: &str, kind: Kind, subject: String) -> Problem {
        Problem {
            fingerprint: fingerprint(key),
            kind,
            severity: kind.severity(),
            since: 0,
            subject: cut(&subject),
            runner: None,
            tags: Vec::new(),
            jobs: Vec::new(),
            count: 0,
            longest_wait_s: None,
            holders: Vec::new(),
            slots: None,
            waiting: None,
            gate: None,
            class: None,
            p95_s: None,
            usual_p95_s: None,
            reasons: BTreeMap::new(),
            silent_s: None,
        }
    }
}

fn label_of(r: &Runner) -> String {
    r.description
        .clone()
        .filter(|d| !d.trim().is_empty())
        .or_else(|| r.name.clone().filter(|n| !n.trim().is_empty()))
        .unwrap_or_else(|| format!("runner {}", r.id))
}

fn status_of(r: &Runner) -> String {
    match r.status.as_deref() {
        Some(s) => s.to_string(),
        None => match r.online {
            Some(true) => "online".into(),
            Some(false) => "offline".into(),
            None => "unknown".into(),
        },
    }
}

/// Paused: `paused`, the older `active: false`, or the older list's
/// `status: paused`.
fn paused_of(r: &Runner) -> bool {
    r.paused == Some(true) || r.active == Some(false) || r.status.as_deref() == Some("paused")
}

fn is_online(status: &str) -> bool {
    status == "online" || status == "active"
}

/// Which runners' details (`GET /runners/:id`) to read this run: those not
/// seen before, those whose status or pause changed, and online ones whose
/// last known contact is older than the stale threshold (to see whether
/// they went quiet) — new and changed first, at most `max`.
pub fn plan_details(list: &[Runner], prev: &State, now: i64, rules: &WatchRules) -> Vec<u64> {
    let mut changed = Vec::new();
    let mut recheck = Vec::new();
    for r in list {
        match prev.runners.get(&r.id) {
            None => changed.push(r.id),
            Some(s) if !s.detailed => changed.push(r.id),
            Some(s) if s.status != status_of(r) || s.paused != paused_of(r) => changed.push(r.id),
            Some(s) => {
                let quiet = s
                    .contacted
                    .is_none_or(|c| now.saturating_sub(c) >= rules.stale_s as i64);
                if is_online(&status_of(r)) && !paused_of(r) && quiet {
                    recheck.push(r.id);
                }
            }
        }
    }
    changed.extend(recheck);
    changed.truncate(rules.max_details as usize);
    changed
}

/// The fleet this run works with: each listed runner with its details when
/// read now, else what the state remembers of them (tags, access level);
/// a list entry's status and pause always win (they are this run's).
pub fn merge_fleet(
    list: &[Runner],
    details: &HashMap<u64, Runner>,
    prev: &State,
    concurrency: &HashMap<u64, u32>,
) -> Vec<FleetRunner> {
    list.iter()
        .map(|r| {
            let mut runner = match details.get(&r.id) {
                Some(d) => {
                    let mut d = d.clone();
                    d.status = r.status.clone().or(d.status);
                    d.paused = r.paused.or(d.paused);
                    d.active = r.active.or(d.active);
                    d.online = r.online.or(d.online);
                    d
                }
                None => {
                    let mut d = r.clone();
                    if let Some(s) = prev.runners.get(&r.id) {
                        if d.tag_list.is_empty() {
                            d.tag_list = s.tags.clone();
                        }
                        d.run_untagged = d.run_untagged.or(s.run_untagged);
                        if d.access_level.is_none() {
                            d.access_level = s.protected.map(|p| {
                                if p { "ref_protected" } else { "not_protected" }.to_string()
                            });
                        }
                        d.maximum_timeout = d.maximum_timeout.or(s.max_timeout);
                    }
                    d
                }
            };
            if runner.description.is_none() && runner.name.is_none() {
                runner.description = prev.runners.get(&r.id).map(|s| s.label.clone());
            }
            FleetRunner {
                runner,
                runneriq: crate::fleet::model::RunnerExt {
                    concurrent: concurrency.get(&r.id).copied(),
                    ..Default::default()
                },
            }
        })
        .collect()
}

/// What the state remembers of the fleet after this run.
pub fn remember_fleet(
    fleet: &[FleetRunner],
    details: &HashMap<u64, Runner>,
    prev: &State,
) -> BTreeMap<u64, Seen> {
    let mut out = BTreeMap::new();
    for f in fleet.iter().take(MAX_RUNNERS) {
        let r = &f.runner;
        let old = prev.runners.get(&r.id);
        let detailed = details.contains_key(&r.id) || old.is_some_and(|s| s.detailed);
        let contacted = details
            .get(&r.id)
            .and_then(|d| d.contacted_at.as_deref())
            .and_then(parse_time)
            .or_else(|| old.and_then(|s| s.contacted));
        out.insert(
            r.id,
            Seen {
                status: status_of(r),
                paused: paused_of(r),
                label: cut(&label_of(r)),
                tags: r
                    .tag_list
                    .iter()
                    .take(MAX_TAGS)
                    .filter(|t| t.chars().count() <= MAX_TEXT)
                    .cloned()
                    .collect(),
                run_untagged: r.run_untagged,
                protected: r.access_level.as_deref().map(|a| a == "ref_protected"),
                max_timeout: r.maximum_timeout,
                contacted,
                detailed,
            },
        );
    }
    out
}

/// What this run saw.
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    pub now: i64,
    /// The merged fleet ([`merge_fleet`]).
    pub fleet: &'a [FleetRunner],
    /// Contact times: read now, or remembered.
    pub contacted: HashMap<u64, i64>,
    /// Pending and running jobs (one page per project).
    pub active: &'a [Job],
    /// Finished jobs, newest first (one page per project).
    pub finished: &'a [Job],
    /// The last report's p95 queue wait per class (`CRITICAL` … `LOW`).
    pub usual_p95_s: Option<&'a BTreeMap<String, f64>>,
    pub default_branch: Option<&'a str>,
}

/// Everything the rules say about this run, before any sending.
pub fn assess(
    o: &Observed<'_>,
    rules: &WatchRules,
    priority_rules: &PriorityRules,
    routing: &RoutingRules,
) -> Vec<Problem> {
    let mut out = Vec::new();
    runner_problems(o, rules, &mut out);
    pending_problems(o, rules, routing, &mut out);
    spike_problems(o, rules, priority_rules, &mut out);
    infra_problems(o, rules, &mut out);
    // One problem per fingerprint, most severe first, then by kind and subject.
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert(p.fingerprint.clone()));
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.subject.cmp(&b.subject))
    });
    out
}

fn runner_ref(f: &FleetRunner) -> RunnerRef {
    RunnerRef {
        id: f.id(),
        label: cut(&label_of(&f.runner)),
        status: status_of(&f.runner),
        paused: paused_of(&f.runner),
    }
}

fn runner_problems(o: &Observed<'_>, rules: &WatchRules, out: &mut Vec<Problem>) {
    for f in o.fleet {
        let r = runner_ref(f);
        let silent = o
            .contacted
            .get(&r.id)
            .map(|c| o.now.saturating_sub(*c).max(0) as u64);
        if r.paused {
            if rules.paused {
                let mut p = Problem::new(
                    &format!("runner_paused\n{}", r.id),
                    Kind::RunnerPaused,
                    format!("{} (runner {})", r.label, r.id),
                );
                p.runner = Some(r);
                out.push(p);
            }
            continue;
        }
        if !is_online(&r.status) {
            let mut p = Problem::new(
                &format!("runner_offline\n{}", r.id),
                Kind::RunnerOffline,
                format!("{} (runner {})", r.label, r.id),
            );
            p.silent_s = silent;
            p.runner = Some(r);
            out.push(p);
        } else if silent.is_some_and(|s| s >= rules.stale_s) {
            let mut p = Problem::new(
                &format!("runner_stale\n{}", r.id),
                Kind::RunnerStale,
                format!("{} (runner {})", r.label, r.id),
            );
            p.silent_s = silent;
            p.runner = Some(r);
            out.push(p);
        }
    }
}

/// Seconds a pending job has waited: GitLab's `queued_duration`, else
/// since `created_at`.
fn waited(j: &Job, now: i64) -> Option<u64> {
    if let Some(q) = j.queued_duration.filter(|q| q.is_finite() && *q >= 0.0) {
        return Some(q as u64);
    }
    let created = j.created_at.as_deref().and_then(parse_time)?;
    Some(now.saturating_sub(created).max(0) as u64)
}

fn sorted_tags(j: &Job) -> Vec<String> {
    let mut t = j.tag_list.clone();
    t.sort();
    t.dedup();
    t
}

/// Pending jobs that waited past the threshold, grouped by cause and tags.
/// The cause: no online runner has the tags (and which offline or paused
/// runners do); the online runners with the tags refuse the job (the most
/// common gate); not enough free slots — fewer free slots than the
/// jobs waiting for them (a runner's slots: `runneriq.concurrent` where
/// known, else 1); or eligible runners with free slots that do not take it.
fn pending_problems(
    o: &Observed<'_>,
    rules: &WatchRules,
    routing: &RoutingRules,
    out: &mut Vec<Problem>,
) {
    let running = route::running_counts(o.active);
    let inputs = route::Inputs {
        default_branch: o.default_branch,
        now: o.now,
        ..Default::default()
    };
    let usable = |r: &FleetRunner| is_online(r.status()) && !r.paused();
    let free: Vec<u32> = o
        .fleet
        .iter()
        .map(|r| {
            if usable(r) {
                r.concurrent()
                    .saturating_sub(running.get(&r.id()).copied().unwrap_or(0))
            } else {
                0
            }
        })
        .collect();
    struct Waiting<'j> {
        job: &'j Job,
        waited: u64,
        tags: Vec<String>,
        gates: Vec<Result<(), Gate>>,
    }
    let waiting: Vec<Waiting<'_>> = o
        .active
        .iter()
        .filter(|j| j.status == "pending")
        .map(|j| {
            let facts = route::facts_of(j, &inputs, routing);
            Waiting {
                job: j,
                waited: waited(j, o.now).unwrap_or(0),
                tags: sorted_tags(j),
                gates: o.fleet.iter().map(|r| route::gate(&facts, r)).collect(),
            }
        })
        .collect();
    // (kind, tags) → (problem, eligible runners of its jobs)
    let mut groups: BTreeMap<(Kind, Vec<String>), (Problem, BTreeSet<usize>)> = BTreeMap::new();
    for w in waiting.iter().filter(|w| w.waited >= rules.pending_s) {
        let tags = &w.tags;
        let has_tags = |r: &FleetRunner| {
            if tags.is_empty() {
                r.runner.run_untagged != Some(false)
            } else {
                tags.iter()
                    .all(|t| r.runner.tag_list.iter().any(|x| x == t))
            }
        };
        let eligible: BTreeSet<usize> = w
            .gates
            .iter()
            .enumerate()
            .filter(|(_, g)| g.is_ok())
            .map(|(i, _)| i)
            .collect();
        let (kind, gate_words) = if !eligible.is_empty() {
            // Busy or not is decided per group below.
            (Kind::PendingBusy, None)
        } else if !o.fleet.iter().any(|r| usable(r) && has_tags(r)) {
            (Kind::PendingNoRunner, None)
        } else {
            // Online runners have the tags but refuse the job: the most
            // common reason among them.
            let mut why: BTreeMap<String, u32> = BTreeMap::new();
            for (r, g) in o.fleet.iter().zip(&w.gates) {
                if let Err(g) = g {
                    if usable(r) && has_tags(r) {
                        *why.entry(g.words()).or_default() += 1;
                    }
                }
            }
            let words = why
                .into_iter()
                .max_by_key(|(w, n)| (*n, std::cmp::Reverse(w.clone())))
                .map(|(w, _)| w);
            (Kind::PendingGate, words)
        };
        let subject = if tags.is_empty() {
            "untagged jobs".to_string()
        } else {
            format!("tags {}", tags.join(", "))
        };
        let (p, union) = groups.entry((kind, tags.clone())).or_insert_with(|| {
            let mut p = Problem::new(
                &format!("{}\n{}", kind.as_str(), tags.join(",")),
                kind,
                subject,
            );
            p.tags = tags.clone();
            if kind == Kind::PendingNoRunner {
                p.holders = o
                    .fleet
                    .iter()
                    .filter(|r| !tags.is_empty() && has_tags(r) && !usable(r))
                    .map(runner_ref)
                    .collect();
            }
            p.gate = gate_words.clone();
            (p, BTreeSet::new())
        });
        union.extend(eligible);
        p.count += 1;
        p.longest_wait_s = Some(p.longest_wait_s.unwrap_or(0).max(w.waited));
        let j = w.job;
        p.jobs.push(JobRef {
            id: j.id,
            name: j.name.clone(),
            project: j
                .pipeline
                .as_ref()
                .and_then(|p| p.project_id)
                .or_else(|| j.project.as_ref().and_then(|p| p.id)),
            git_ref: j.git_ref.clone(),
            waited_s: w.waited,
            web_url: j.web_url.clone(),
        });
    }
    for ((kind, _), (mut p, union)) in groups {
        if kind == Kind::PendingBusy {
            // Every pending job (whatever its wait) that could take one of
            // these runners competes for their free slots.
            let total: u32 = union.iter().map(|i| o.fleet[*i].concurrent()).sum();
            let free_slots: u32 = union.iter().map(|i| free[*i]).sum();
            let competing = waiting
                .iter()
                .filter(|w| union.iter().any(|i| w.gates[*i].is_ok()))
                .count() as u32;
            p.slots = Some((total - free_slots.min(total), total));
            p.waiting = Some(competing);
            if competing <= free_slots {
                // Free slots enough for every job waiting for them.
                p.kind = Kind::PendingUnexplained;
                p.severity = p.kind.severity();
                p.fingerprint = fingerprint(&format!("{}\n{}", p.kind.as_str(), p.tags.join(",")));
            }
        }
        p.jobs
            .sort_by(|a, b| b.waited_s.cmp(&a.waited_s).then(a.id.cmp(&b.id)));
        p.jobs.truncate(MAX_JOBS_NAMED);
        out.push(p);
    }
}

/// Nearest-rank percentile (as the report computes it).
pub fn nearest_rank(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
    Some(values[rank - 1])
}

fn in_window(j: &Job, o: &Observed<'_>, rules: &WatchRules, field: Option<&str>) -> bool {
    field
        .and_then(parse_time)
        .is_some_and(|t| t > o.now - rules.window_s as i64 && t <= o.now)
        && j.id > 0
}

fn spike_problems(
    o: &Observed<'_>,
    rules: &WatchRules,
    priority_rules: &PriorityRules,
    out: &mut Vec<Problem>,
) {
    let Some(usual) = o.usual_p95_s else { return };
    let mut waits: BTreeMap<Urgency, Vec<f64>> = BTreeMap::new();
    for j in o.finished {
        if !in_window(j, o, rules, j.started_at.as_deref()) {
            continue;
        }
        let Some(q) = j.queued_duration.filter(|q| q.is_finite() && *q >= 0.0) else {
            continue;
        };
        // As the report classes a job: as of its creation, no retry bonus.
        let ctx = priority::Context {
            default_branch: o.default_branch,
            access_level: None,
            retry: false,
            now: j.created_at.as_deref().and_then(parse_time).unwrap_or(0),
        };
        let u = priority::priority(j, &ctx, priority_rules).urgency;
        waits.entry(u).or_default().push(q);
    }
    for (u, mut w) in waits {
        let n = w.len() as u32;
        if n < rules.min_jobs {
            continue;
        }
        let Some(base) = usual.get(u.as_str()).copied().filter(|b| b.is_finite()) else {
            continue;
        };
        let Some(p95) = nearest_rank(&mut w, 95.0) else {
            continue;
        };
        if p95 > base * rules.spike_factor && p95 - base >= rules.spike_min_s as f64 {
            let mut p = Problem::new(
                &format!("queue_spike\n{}", u.as_str()),
                Kind::QueueSpike,
                format!("{} jobs", u.as_str()),
            );
            p.class = Some(u.as_str().to_string());
            p.p95_s = Some((p95 * 10.0).round() / 10.0);
            p.usual_p95_s = Some(base);
            p.count = n;
            out.push(p);
        }
    }
}

fn infra_problems(o: &Observed<'_>, rules: &WatchRules, out: &mut Vec<Problem>) {
    let mut by_runner: BTreeMap<u64, (Problem, BTreeSet<u64>)> = BTreeMap::new();
    for j in o.finished {
        if j.status != "failed" || !in_window(j, o, rules, j.finished_at.as_deref()) {
            continue;
        }
        let Some(reason) = j
            .failure_reason
            .as_deref()
            .filter(|r| INFRA_REASONS.contains(r))
        else {
            continue;
        };
        let Some(rs) = j.runner.as_ref() else {
            continue;
        };
        let label = o
            .fleet
            .iter()
            .find(|f| f.id() == rs.id)
            .map(|f| label_of(&f.runner))
            .or_else(|| rs.description.clone())
            .unwrap_or_else(|| format!("runner {}", rs.id));
        let (p, ids) = by_runner.entry(rs.id).or_insert_with(|| {
            let mut p = Problem::new(
                &format!("infra_failures\n{}", rs.id),
                Kind::InfraFailures,
                format!("{label} (runner {})", rs.id),
            );
            p.runner = Some(RunnerRef {
                id: rs.id,
                label: cut(&label),
                status: o
                    .fleet
                    .iter()
                    .find(|f| f.id() == rs.id)
                    .map_or_else(|| "unknown".into(), |f| status_of(&f.runner)),
                paused: o
                    .fleet
                    .iter()
                    .find(|f| f.id() == rs.id)
                    .is_some_and(|f| paused_of(&f.runner)),
            });
            (p, BTreeSet::new())
        });
        if ids.insert(j.id) {
            p.count += 1;
            *p.reasons.entry(reason.to_string()).or_default() += 1;
            if p.jobs.len() < MAX_JOBS_NAMED {
                p.jobs.push(JobRef {
                    id: j.id,
                    name: j.name.clone(),
                    project: j.pipeline.as_ref().and_then(|p| p.project_id),
                    git_ref: j.git_ref.clone(),
                    waited_s: 0,
                    web_url: j.web_url.clone(),
                });
            }
        }
    }
    for (_, (p, _)) in by_runner {
        if p.count >= rules.infra_failures {
            out.push(p);
        }
    }
}

/// What one channel is sent about one problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New (or never sent to this channel).
    Trigger,
    /// Still open after the cooldown.
    Reminder,
    /// Gone since the last run (sent once, to the channels that had it).
    Resolve,
}

/// A channel's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRule {
    pub name: &'static str,
    pub min_severity: Severity,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Send {
    pub channel: &'static str,
    pub fingerprint: String,
    pub action: Action,
}

/// A problem that was open last run and is gone now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub fingerprint: String,
    pub kind: Kind,
    pub since: i64,
    /// Untrusted (read back from the state): sanitize before Markdown.
    pub subject: String,
}

/// The decisions of one run: what to send, what was held back by the
/// cooldown, what resolved, and the state to write if every send succeeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Decisions {
    pub sends: Vec<Send>,
    /// (channel, fingerprint) held back by the cooldown.
    pub cooled: Vec<(String, String)>,
    pub resolved: Vec<Resolved>,
    pub state: State,
}

/// Sets each problem's `since` from the state (an open problem keeps its
/// start) and decides what each channel gets: a trigger when it never had
/// the problem, a reminder when the cooldown has passed since the last
/// send, a resolve (once) for every problem it had that is gone. The new
/// state records the sends as if they succeed; [`Decisions::unsent`]
/// takes back the ones that failed.
pub fn decide(
    problems: &mut [Problem],
    prev: &State,
    runners: BTreeMap<u64, Seen>,
    channels: &[ChannelRule],
    now: i64,
    cooldown_s: u64,
) -> Decisions {
    let mut sends = Vec::new();
    let mut cooled = Vec::new();
    let mut open = BTreeMap::new();
    for p in problems.iter_mut() {
        let old = prev.problems.get(&p.fingerprint);
        p.since = old.map_or(now, |o| o.since.min(now));
        let mut sent = old.map(|o| o.sent.clone()).unwrap_or_default();
        for c in channels {
            if p.severity < c.min_severity {
                continue;
            }
            match sent.get(c.name) {
                None => {
                    sends.push(Send {
                        channel: c.name,
                        fingerprint: p.fingerprint.clone(),
                        action: Action::Trigger,
                    });
                    sent.insert(c.name.to_string(), now);
                }
                // A send "in the future" is a state somebody edited: it
                // must not silence the problem, so it counts as due.
                Some(&at) if at > now || now.saturating_sub(at) >= cooldown_s as i64 => {
                    sends.push(Send {
                        channel: c.name,
                        fingerprint: p.fingerprint.clone(),
                        action: Action::Reminder,
                    });
                    sent.insert(c.name.to_string(), now);
                }
                Some(_) => cooled.push((c.name.to_string(), p.fingerprint.clone())),
            }
        }
        if open.len() < MAX_PROBLEMS {
            open.insert(
                p.fingerprint.clone(),
                Open {
                    kind: p.kind,
                    since: p.since,
                    severity: p.severity,
                    subject: p.subject.clone(),
                    sent,
                },
            );
        }
    }
    let mut resolved = Vec::new();
    for (fp, o) in &prev.problems {
        if open.contains_key(fp) || problems.iter().any(|p| &p.fingerprint == fp) {
            continue;
        }
        for c in CHANNELS {
            if o.sent.contains_key(c) {
                sends.push(Send {
                    channel: c,
                    fingerprint: fp.clone(),
                    action: Action::Resolve,
                });
            }
        }
        resolved.push(Resolved {
            fingerprint: fp.clone(),
            kind: o.kind,
            since: o.since,
            subject: o.subject.clone(),
        });
    }
    Decisions {
        sends,
        cooled,
        resolved,
        state: State {
            at: now,
            runners,
            problems: open,
        },
    }
}

impl Decisions {
    /// Takes back sends that failed: a failed trigger or reminder is tried
    /// again next run (its time restored); a failed resolve keeps the
    /// problem in the state (marked with its old sends) so the resolve is
    /// tried again.
    pub fn unsent(&mut self, failed: &[Send], prev: &State) {
        for f in failed {
            match f.action {
                Action::Trigger | Action::Reminder => {
                    if let Some(o) = self.state.problems.get_mut(&f.fingerprint) {
                        match prev
                            .problems
                            .get(&f.fingerprint)
                            .and_then(|p| p.sent.get(f.channel))
                        {
                            Some(at) => {
                                o.sent.insert(f.channel.to_string(), *at);
                            }
                            None => {
                                o.sent.remove(f.channel);
                            }
                        }
                    }
                }
                Action::Resolve => {
                    if let Some(old) = prev.problems.get(&f.fingerprint) {
                        let e = self
                            .state
                            .problems
                            .entry(f.fingerprint.clone())
                            .or_insert_with(|| Open {
                                sent: BTreeMap::new(),
                                ..old.clone()
                            });
                        if let Some(at) = old.sent.get(f.channel) {
                            e.sent.insert(f.channel.to_string(), *at);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_767_261_600;

    fn runner(id: u64, status: &str, paused: bool, tags: &[&str]) -> Runner {
        serde_json::from_value(json!({
            "id": id, "description": format!("r{id}"), "status": status,
            "paused": paused, "tag_list": tags, "run_untagged": tags.is_empty(),
        }))
        .unwrap()
    }

    fn fleet(rs: &[Runner]) -> Vec<FleetRunner> {
        rs.iter()
            .map(|r| FleetRunner {
                runner: r.clone(),
                ..FleetRunner::default()
            })
            .collect()
    }

    fn job(id: u64, status: &str, tags: &[&str], created: i64, runner: Option<u64>) -> Job {
        serde_json::from_value(json!({
            "id": id, "name": format!("job{id}"), "stage": "test", "status": status,
            "ref": "feature/x", "tag_list": tags,
            "created_at": rfc3339(created),
            "runner": runner.map(|r| json!({"id": r})),
        }))
        .unwrap()
    }

    fn rfc3339(t: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    fn observe<'a>(f: &'a [FleetRunner], active: &'a [Job], finished: &'a [Job]) -> Observed<'a> {
        Observed {
            now: NOW,
            fleet: f,
            active,
            finished,
            default_branch: Some("main"),
            ..Observed::default()
        }
    }

    fn assess_default(o: &Observed<'_>) -> Vec<Problem> {
        assess(
            o,
            &WatchRules::default(),
            &PriorityRules::default(),
            &RoutingRules::default(),
        )
    }

    const PD: ChannelRule = ChannelRule {
        name: "pagerduty",
        min_severity: Severity::High,
    };

    #[test]
    fn offline_alerts_once_is_held_by_the_cooldown_and_resolves_once() {
        let rules = WatchRules::default();
        let up = fleet(&[runner(1, "online", false, &["a"])]);
        let down = fleet(&[runner(1, "offline", false, &["a"])]);
        // Run 1: online, nothing.
        let mut p = assess_default(&observe(&up, &[], &[]));
        assert!(p.is_empty());
        let d = decide(&mut p, &State::default(), BTreeMap::new(), &[PD], NOW, 3600);
        assert!(d.sends.is_empty());
        // Run 2: offline → one trigger.
        let mut p = assess_default(&observe(&down, &[], &[]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, Kind::RunnerOffline);
        let d2 = decide(&mut p, &d.state, BTreeMap::new(), &[PD], NOW + 900, 3600);
        assert_eq!(d2.sends.len(), 1);
        assert_eq!(d2.sends[0].action, Action::Trigger);
        let fp = d2.sends[0].fingerprint.clone();
        // Run 3: still offline, within the cooldown → nothing, held back.
        let mut p = assess_default(&observe(&down, &[], &[]));
        let d3 = decide(&mut p, &d2.state, BTreeMap::new(), &[PD], NOW + 1800, 3600);
        assert!(d3.sends.is_empty());
        assert_eq!(d3.cooled, vec![("pagerduty".to_string(), fp.clone())]);
        assert_eq!(p[0].since, NOW + 900, "keeps its start");
        // After the cooldown → one reminder.
        let mut p = assess_default(&observe(&down, &[], &[]));
        let d4 = decide(
            &mut p,
            &d3.state,
            BTreeMap::new(),
            &[PD],
            NOW + 900 + rules.cooldown_s as i64,
            3600,
        );
        assert_eq!(d4.sends[0].action, Action::Reminder);
        // Back online → one resolve with the same fingerprint, then nothing.
        let mut p = assess_default(&observe(&up, &[], &[]));
        let d5 = decide(&mut p, &d4.state, BTreeMap::new(), &[PD], NOW + 9000, 3600);
        assert_eq!(d5.sends.len(), 1);
        assert_eq!(d5.sends[0].action, Action::Resolve);
        assert_eq!(d5.sends[0].fingerprint, fp);
        assert_eq!(d5.resolved.len(), 1);
        assert!(d5.state.problems.is_empty());
        let mut p = assess_default(&observe(&up, &[], &[]));
        let d6 = decide(&mut p, &d5.state, BTreeMap::new(), &[PD], NOW + 9900, 3600);
        assert!(d6.sends.is_empty() && d6.resolved.is_empty());
    }

    #[test]
    fn below_a_channels_severity_nothing_is_sent_but_the_problem_is_kept() {
        let f = fleet(&[runner(1, "online", true, &[])]);
        let mut p = assess_default(&observe(&f, &[], &[]));
        assert_eq!(p[0].kind, Kind::RunnerPaused);
        assert_eq!(p[0].severity, Severity::Low);
        let d = decide(&mut p, &State::default(), BTreeMap::new(), &[PD], NOW, 3600);
        assert!(d.sends.is_empty());
        assert!(d.state.problems.contains_key(&p[0].fingerprint));
    }

    #[test]
    fn a_failed_send_is_tried_again_next_run() {
        let f = fleet(&[runner(1, "offline", false, &[])]);
        let mut p = assess_default(&observe(&f, &[], &[]));
        let mut d = decide(&mut p, &State::default(), BTreeMap::new(), &[PD], NOW, 3600);
        let failed = d.sends.clone();
        d.unsent(&failed, &State::default());
        let mut p = assess_default(&observe(&f, &[], &[]));
        let d2 = decide(&mut p, &d.state, BTreeMap::new(), &[PD], NOW + 60, 3600);
        assert_eq!(d2.sends.len(), 1);
        assert_eq!(d2.sends[0].action, Action::Trigger);
        // A failed resolve stays in the state and is tried again.
        let up = fleet(&[runner(1, "online", false, &[])]);
        let mut p = assess_default(&observe(&up, &[], &[]));
        let mut d3 = decide(&mut p, &d2.state, BTreeMap::new(), &[PD], NOW + 120, 3600);
        assert_eq!(d3.sends[0].action, Action::Resolve);
        let failed = d3.sends.clone();
        d3.unsent(&failed, &d2.state);
        let mut p = assess_default(&observe(&up, &[], &[]));
        let d4 = decide(&mut p, &d3.state, BTreeMap::new(), &[PD], NOW + 180, 3600);
        assert_eq!(d4.sends.len(), 1);
        assert_eq!(d4.sends[0].action, Action::Resolve);
    }

    #[test]
    fn a_job_pending_on_tags_no_online_runner_has_names_the_runners_that_have_them() {
        let f = fleet(&[
            runner(1, "online", false, &["linux"]),
            runner(2, "offline", false, &["gpu", "cuda"]),
            runner(3, "online", true, &["gpu", "cuda", "big"]),
            runner(4, "offline", false, &["gpu"]),
        ]);
        let jobs = [
            job(10, "pending", &["gpu", "cuda"], NOW - 900, None),
            job(11, "pending", &["cuda", "gpu"], NOW - 1200, None),
            // Too recent to count.
            job(12, "pending", &["gpu", "cuda"], NOW - 60, None),
        ];
        let p = assess_default(&observe(&f, &jobs, &[]));
        let pending: Vec<&Problem> = p
            .iter()
            .filter(|p| p.kind == Kind::PendingNoRunner)
            .collect();
        assert_eq!(pending.len(), 1, "{p:#?}");
        let q = pending[0];
        assert_eq!(q.tags, ["cuda", "gpu"]);
        assert_eq!(q.count, 2);
        assert_eq!(q.longest_wait_s, Some(1200));
        assert_eq!(q.jobs[0].id, 11);
        let holders: Vec<(u64, bool)> = q.holders.iter().map(|r| (r.id, r.paused)).collect();
        assert_eq!(holders, [(2, false), (3, true)]);
    }

    #[test]
    fn full_runners_and_idle_runners_are_told_apart() {
        let mut f = fleet(&[runner(1, "online", false, &["docker"])]);
        f[0].runneriq.concurrent = Some(2);
        let busy = [
            job(20, "running", &["docker"], NOW - 2000, Some(1)),
            job(21, "running", &["docker"], NOW - 2000, Some(1)),
            job(22, "pending", &["docker"], NOW - 700, None),
        ];
        let p = assess_default(&observe(&f, &busy, &[]));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, Kind::PendingBusy);
        assert_eq!(p[0].slots, Some((2, 2)));
        assert_eq!(p[0].waiting, Some(1));
        let idle = [
            job(20, "running", &["docker"], NOW - 2000, Some(1)),
            job(22, "pending", &["docker"], NOW - 700, None),
        ];
        let p = assess_default(&observe(&f, &idle, &[]));
        assert_eq!(p[0].kind, Kind::PendingUnexplained);
        assert_eq!(p[0].slots, Some((1, 2)));
    }

    #[test]
    fn a_protected_only_runner_is_named_as_the_gate() {
        let mut r = runner(1, "online", false, &["deploy"]);
        r.access_level = Some("ref_protected".into());
        let f = fleet(&[r]);
        let jobs = [job(30, "pending", &["deploy"], NOW - 3600, None)];
        let p = assess_default(&observe(&f, &jobs, &[]));
        assert_eq!(p[0].kind, Kind::PendingGate);
        assert_eq!(p[0].gate.as_deref(), Some("runs protected refs only"));
    }

    fn finished(id: u64, queued: f64, started: i64, runner: u64, reason: Option<&str>) -> Job {
        let mut j = job(
            id,
            if reason.is_some() {
                "failed"
            } else {
                "success"
            },
            &[],
            started - 60,
            Some(runner),
        );
        j.git_ref = "main".into();
        j.queued_duration = Some(queued);
        j.started_at = Some(rfc3339(started));
        j.finished_at = Some(rfc3339(started + 30));
        j.failure_reason = reason.map(str::to_string);
        j
    }

    #[test]
    fn a_queue_wait_spike_against_the_last_reports_level() {
        let f = fleet(&[runner(1, "online", false, &[])]);
        let done: Vec<Job> = (0..6)
            .map(|i| finished(100 + i, 600.0, NOW - 600 - i as i64 * 60, 1, None))
            .collect();
        let class = {
            // As of its creation, as the report classes it.
            let ctx = priority::Context {
                default_branch: Some("main"),
                now: parse_time(done[0].created_at.as_deref().unwrap()).unwrap(),
                ..Default::default()
            };
            priority::priority(&done[0], &ctx, &PriorityRules::default())
                .urgency
                .as_str()
                .to_string()
        };
        let usual: BTreeMap<String, f64> = [(class.clone(), 60.0)].into();
        let mut o = observe(&f, &[], &done);
        o.usual_p95_s = Some(&usual);
        let p = assess_default(&o);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].kind, Kind::QueueSpike);
        assert_eq!(p[0].class.as_deref(), Some(class.as_str()));
        assert_eq!(p[0].p95_s, Some(600.0));
        // At its usual level: no spike; without a report: not judged.
        let usual: BTreeMap<String, f64> = [(class, 400.0)].into();
        o.usual_p95_s = Some(&usual);
        assert!(assess_default(&o).is_empty());
        o.usual_p95_s = None;
        assert!(assess_default(&o).is_empty());
    }

    #[test]
    fn infrastructure_failures_count_per_runner_in_the_window() {
        let f = fleet(&[runner(7, "online", false, &[])]);
        let mut done = vec![
            finished(1, 1.0, NOW - 100, 7, Some("runner_system_failure")),
            finished(2, 1.0, NOW - 200, 7, Some("stuck_or_timeout_failure")),
            finished(3, 1.0, NOW - 300, 7, Some("script_failure")),
        ];
        assert!(assess_default(&observe(&f, &[], &done)).is_empty());
        done.push(finished(
            4,
            1.0,
            NOW - 400,
            7,
            Some("runner_system_failure"),
        ));
        // Outside the window: not counted.
        done.push(finished(
            5,
            1.0,
            NOW - 7200,
            7,
            Some("runner_system_failure"),
        ));
        let p = assess_default(&observe(&f, &[], &done));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, Kind::InfraFailures);
        assert_eq!(p[0].count, 3);
        assert_eq!(p[0].reasons["runner_system_failure"], 2);
    }

    #[test]
    fn a_runner_silent_past_the_threshold_is_stale() {
        let f = fleet(&[runner(1, "online", false, &[])]);
        let mut o = observe(&f, &[], &[]);
        o.contacted = [(1, NOW - 1200)].into();
        assert!(assess_default(&o).is_empty());
        o.contacted = [(1, NOW - 1801)].into();
        let p = assess_default(&o);
        assert_eq!(p[0].kind, Kind::RunnerStale);
        assert_eq!(p[0].silent_s, Some(1801));
    }

    #[test]
    fn details_are_read_only_for_what_changed() {
        let list = [
            runner(1, "online", false, &[]),
            runner(2, "offline", false, &[]),
            runner(3, "online", false, &[]),
        ];
        let rules = WatchRules::default();
        // First run: all new.
        assert_eq!(
            plan_details(&list, &State::default(), NOW, &rules),
            [1, 2, 3]
        );
        let mut prev = State::default();
        for r in &list {
            prev.runners.insert(
                r.id,
                Seen {
                    status: r.status.clone().unwrap(),
                    detailed: true,
                    contacted: Some(NOW - 60),
                    ..Seen::default()
                },
            );
        }
        assert!(plan_details(&list, &prev, NOW, &rules).is_empty());
        // Runner 2 came back; runner 3's last known contact is old.
        let list2 = [
            runner(1, "online", false, &[]),
            runner(2, "online", false, &[]),
            runner(3, "online", false, &[]),
        ];
        prev.runners.get_mut(&3).unwrap().contacted = Some(NOW - 4000);
        assert_eq!(plan_details(&list2, &prev, NOW, &rules), [2, 3]);
        let capped = WatchRules {
            max_details: 1,
            ..rules
        };
        assert_eq!(plan_details(&list2, &prev, NOW, &capped), [2]);
    }

    #[test]
    fn the_state_round_trips_and_garbage_is_the_empty_state() {
        let f = fleet(&[runner(1, "offline", false, &["a"])]);
        let mut p = assess_default(&observe(&f, &[], &[]));
        let d = decide(
            &mut p,
            &State::default(),
            remember_fleet(&f, &HashMap::new(), &State::default()),
            &[PD],
            NOW,
            3600,
        );
        let body = format!("<!-- runneriq:watch -->\ntext\n{}\n", d.state.marker());
        assert_eq!(State::parse(&body), d.state);
        // Not the last line, broken JSON, a bad fingerprint, an unknown
        // channel, too long: all empty.
        assert_eq!(
            State::parse(&format!("{}\nmore", d.state.marker())),
            State::default()
        );
        assert_eq!(
            State::parse("<!-- runneriq:watch-state {nope -->"),
            State::default()
        );
        let bad_fp = d.state.marker().replace(&p[0].fingerprint, "../../etc");
        assert!(State::parse(&bad_fp).problems.is_empty());
        let bad_channel = d.state.marker().replace("pagerduty", "https://evil");
        assert!(State::parse(&bad_channel).problems.is_empty());
        let huge = format!(
            "{STATE_PREFIX}{{\"runners\":{{}},\"pad\":\"{}\"}} -->",
            "x".repeat(MAX_STATE_BYTES)
        );
        assert_eq!(State::parse(&huge), State::default());
        // Text in the state cannot close the comment or mention anybody.
        let mut s = State::default();
        s.runners.insert(
            5,
            Seen {
                label: "x --> @all <b>".into(),
                status: "weird".into(),
                ..Seen::default()
            },
        );
        let m = s.marker();
        assert_eq!(m.matches("-->").count(), 1);
        assert!(!m.contains('@'));
        let back = State::parse(&m);
        assert_eq!(back.runners[&5].label, "x --> @all <b>");
        assert_eq!(back.runners[&5].status, "unknown");
    }

    #[test]
    fn an_edited_state_cannot_silence_a_problem() {
        let f = fleet(&[runner(1, "offline", false, &[])]);
        let mut p = assess_default(&observe(&f, &[], &[]));
        let d = decide(&mut p, &State::default(), BTreeMap::new(), &[PD], NOW, 3600);
        let forged = d
            .state
            .marker()
            .replace(&NOW.to_string(), "9000000000000000000");
        let prev = State::parse(&forged);
        assert_eq!(prev.problems.len(), 1);
        let mut p = assess_default(&observe(&f, &[], &[]));
        let d2 = decide(&mut p, &prev, BTreeMap::new(), &[PD], NOW + 60, 3600);
        assert_eq!(d2.sends.len(), 1, "sent again, not held back for ever");
        assert_eq!(
            p[0].since,
            NOW + 60,
            "a start in the future is not believed"
        );
    }

    #[test]
    fn a_large_fleet_never_makes_a_state_too_long_to_read_back() {
        let mut s = State::default();
        for id in 1..=MAX_RUNNERS as u64 {
            s.runners.insert(
                id,
                Seen {
                    status: "online".into(),
                    label: "a-rather-long-runner-description-".repeat(7),
                    tags: (0..8).map(|t| format!("tag-number-{t}")).collect(),
                    detailed: true,
                    ..Seen::default()
                },
            );
        }
        let f = fleet(&[runner(1, "offline", false, &[])]);
        let mut p = assess_default(&observe(&f, &[], &[]));
        let d = decide(
            &mut p,
            &State::default(),
            s.runners.clone(),
            &[PD],
            NOW,
            3600,
        );
        let m = d.state.marker();
        assert!(m.len() <= MAX_STATE_BYTES, "{}", m.len());
        let back = State::parse(&m);
        assert_eq!(back.problems, d.state.problems, "problems are kept");
        assert!(!back.runners.is_empty() && back.runners.len() < MAX_RUNNERS);
    }

    #[test]
    fn fingerprints_are_stable_hex() {
        assert_eq!(
            fingerprint("runner_offline\n1"),
            fingerprint("runner_offline\n1")
        );
        assert_ne!(
            fingerprint("runner_offline\n1"),
            fingerprint("runner_offline\n2")
        );
        assert!(is_fingerprint(&fingerprint("x")));
        assert!(!is_fingerprint("0123456789ABCDEF"));
    }
}
