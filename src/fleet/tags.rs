//! The tag bridge: the one lever RunnerIQ pulls on a fleet.
//!
//! GitLab decides which runner takes a job from the job's `tags:` and the
//! runners' tag lists. Jobs opt in to RunnerIQ's pools by requiring a tag in
//! our namespace (`tags: [docker, "runneriq:green"]`); RunnerIQ then adds or
//! removes `runneriq:` tags on runners (`PUT /runners/:id` with `tag_list`),
//! and never touches any other tag: every tag outside the namespace is sent
//! back exactly as GitLab gave it (same strings, same order).
//!
//! **Pools.** `runneriq:green` marks the cleanest share (`green_share`,
//! default 0.34, rounded, at least 1) of the online, unpaused runners whose
//! carbon intensity is known ([`crate::fleet::carbon::lookup`] of
//! `runneriq.zone`), cleanest first, ties by runner id. Any other
//! `runneriq:NAME` tag is a pool too (kept while its lease runs, never added).
//!
//! **Leases.** A runner holding any pool tag also holds one
//! `runneriq:until:<unix seconds>`. When it has passed, the runner loses its
//! `runneriq:` tags on the next plan (unless the plan gives them back). A
//! pool tag without a lease counts as expired. The plan writes a new lease
//! when it adds a tag, and renews one only when less than half the TTL is
//! left: a route every 10 minutes with a 6 h TTL PUTs a runner about every
//! 3 hours, not every run; planning twice against the result of a plan
//! yields no change at all until the half-life is reached, then only lease
//! renewals.
//!
//! **The last holder.** A pool tag is never taken off the last online,
//! unpaused runner that holds it: a job requiring it would wait forever. The
//! plan keeps it there (the change says so); `apply` checks again against the
//! runners as GitLab returns them at that moment, and applies additions
//! before removals so a failed addition cannot strand a pool.
//!
//! **Tag names.** GitLab does not store a `tag_list` entry as given: the API
//! splits every entry on commas and strips each piece
//! (`API::Validations::Types::CommaSeparatedToArray`), `Gitlab::Ci::Tags::Parser`
//! reads `"…"` and `'…'` as quoting, `TagList` drops blank names and
//! duplicates, and `Ci::Tag` allows at most 255 characters. So
//! `runneriq:x,production,gpu` would become `runneriq:x`, `production` and
//! `gpu`: two tags outside our namespace that `reset-tags` never removes.
//! Every tag RunnerIQ writes must pass [`tag_problem`] (no comma, no quote, no
//! control character, no leading or trailing whitespace, not empty, at most
//! 255 characters); a plan that breaks it is refused whole, and a runner
//! whose own tags include one with a comma (GitLab can hold a quoted one) is
//! never written to, since sending it back would split it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::FleetRunner;
use super::priority::Urgency;
use crate::error::input;
use crate::gitlab::models::Runner;
use crate::gitlab::{ApiError, ApiErrorKind, Client};
use crate::publish::sanitize::{code_span, inline};

/// Our namespace: the only tags RunnerIQ adds or removes.
pub const PREFIX: &str = "runneriq:";
/// The pool of the cleanest runners.
pub const GREEN: &str = "runneriq:green";
/// The lease companion tag: `runneriq:until:<unix seconds>`.
pub const UNTIL: &str = "runneriq:until:";
/// The plan file format.
pub const PLAN_VERSION: u32 = 1;
/// Who decides tag changes made by the plan.
pub const DECIDED_BY_RULES: &str = "rules";
/// Larger plan files are refused before parsing.
const MAX_PLAN_BYTES: u64 = 64 << 20;
/// GitLab's longest tag name: `Ci::Tag` validates `name` to 255 characters.
pub const MAX_TAG_CHARS: usize = 255;

/// How the plan picks pools.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRules {
    /// Share of the online, unpaused runners with a known carbon intensity
    /// that get `runneriq:green` (rounded, at least 1).
    pub green_share: f64,
    /// Lease length of the tags the plan writes, seconds.
    pub ttl_s: u64,
    /// Off: the plan changes nothing.
    pub enabled: bool,
}

impl Default for TagRules {
    fn default() -> Self {
        TagRules {
            green_share: 0.34,
            ttl_s: 6 * 3600,
            enabled: true,
        }
    }
}

/// A plan has at most one change per runner of the largest fleet RunnerIQ
/// reads: a plan file cannot expand into more.
fn capped_changes<'de, D>(d: D) -> Result<Vec<TagChange>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    crate::gitlab::bounded::capped::<D, TagChange, { crate::fleet::model::MAX_RUNNERS }>(d)
}

/// One runner's planned tag change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagChange {
    pub runner: u64,
    pub runner_name: String,
    /// `runneriq:` tags to add (a new lease included).
    #[serde(default)]
    pub add: Vec<String>,
    /// `runneriq:` tags to remove.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Why, in words.
    pub reason: String,
    /// The new lease's end (unix seconds), when the change writes one.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// `rules` (the plan) or `reset` (`reset-tags`).
    pub decided_by: String,
}

impl TagChange {
    /// A change with nothing to add or remove: a removal the last-holder
    /// rule skipped, kept only to say so.
    pub fn is_noop(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// The `plan.json` artifact of `route --mode supervised --plan FILE`, applied
/// later by `runneriq apply FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub version: u32,
    /// Unix seconds.
    pub created_at: u64,
    /// The trust mode that wrote it.
    pub mode: String,
    /// Lease length used; the plan itself expires with it.
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
    #[serde(deserialize_with = "capped_changes")]
    pub changes: Vec<TagChange>,
    /// Pool tag → the online, unpaused runners the plan leaves holding it
    /// without changing them; `apply` re-reads them to check the last-holder
    /// rule.
    #[serde(default)]
    pub holders: BTreeMap<String, Vec<u64>>,
}

fn default_ttl() -> u64 {
    TagRules::default().ttl_s
}

impl Plan {
    /// When the plan stops being valid: the earliest lease it writes, else
    /// its creation plus the TTL.
    pub fn expires_at(&self) -> u64 {
        self.changes
            .iter()
            .filter_map(|c| c.expires_at)
            .min()
            .unwrap_or(self.created_at.saturating_add(self.ttl_s))
    }
}

/// A `runneriq:until:` tag.
pub fn is_lease(tag: &str) -> bool {
    tag.starts_with(UNTIL)
}

/// A tag in our namespace.
pub fn is_ours(tag: &str) -> bool {
    tag.starts_with(PREFIX)
}

/// A pool tag: ours and not a lease.
pub fn is_pool(tag: &str) -> bool {
    is_ours(tag) && !is_lease(tag)
}

/// Why GitLab would not store `tag` as exactly this one tag, if it would
/// not (see the module documentation); `None` when it would.
pub fn tag_problem(tag: &str) -> Option<String> {
    if tag.contains(',') {
        return Some(
            "contains a comma: GitLab splits `tag_list` entries on commas, so each piece would \
             become a tag of its own"
                .to_string(),
        );
    }
    if tag.trim().is_empty() {
        return Some("is blank: GitLab drops blank tags".to_string());
    }
    if tag.contains(['"', '\'']) {
        return Some("contains a quote, which GitLab's tag parser reads as quoting".to_string());
    }
    if tag.chars().any(char::is_control) {
        return Some("contains a control character".to_string());
    }
    if tag.trim() != tag {
        return Some(
            "has leading or trailing whitespace, which GitLab strips (the tag it stores would \
             differ)"
                .to_string(),
        );
    }
    let n = tag.chars().count();
    if n > MAX_TAG_CHARS {
        return Some(format!(
            "is {n} characters long: GitLab allows at most {MAX_TAG_CHARS}"
        ));
    }
    None
}

/// The tags GitLab makes of one `tag_list` entry: split on commas, each
/// piece stripped, blank ones dropped.
pub fn gitlab_pieces(entry: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in entry.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    out
}

/// Every tag the changes would add or remove is a `runneriq:` tag GitLab
/// stores as given; else which runner and tag break it, and why.
pub fn check_changes(changes: &[TagChange]) -> Result<(), String> {
    for c in changes {
        for t in c.add.iter().chain(&c.remove) {
            if !is_ours(t) {
                return Err(format!(
                    "runner {}: {t:?} is not a runneriq: tag (RunnerIQ only changes tags that \
                     start with {PREFIX:?})",
                    c.runner
                ));
            }
            if let Some(why) = tag_problem(t) {
                return Err(format!("runner {}: {t:?} {why}", c.runner));
            }
        }
    }
    Ok(())
}

/// The lease tag for `until`.
pub fn lease_tag(until: u64) -> String {
    format!("{UNTIL}{until}")
}

fn lease_of(tag: &str) -> Option<u64> {
    tag.strip_prefix(UNTIL)?.parse().ok()
}

/// Online (or `active`, older GitLab) and not paused: would pick up a job.
pub fn serving(r: &Runner) -> bool {
    let paused = r.paused == Some(true) || r.active == Some(false);
    let status = match r.status.as_deref() {
        Some(s) => s,
        None => match r.online {
            Some(true) => "online",
            _ => "offline",
        },
    };
    !paused && (status == "online" || status == "active")
}

/// `current` minus `remove` (ours only), minus every old lease when `add`
/// brings a new one, plus `add` (ours only, no duplicates). Tags outside the
/// namespace keep their strings and their order, whatever the change says.
pub fn next_tags(current: &[String], add: &[String], remove: &[String]) -> Vec<String> {
    let new_lease = add.iter().any(|t| is_lease(t));
    let mut out: Vec<String> = Vec::with_capacity(current.len() + add.len());
    for t in current {
        if is_ours(t) {
            let drop = remove.contains(t) || (new_lease && is_lease(t)) || out.contains(t);
            if drop {
                continue;
            }
        }
        out.push(t.clone());
    }
    for t in add {
        if is_ours(t) && !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// A runner's standing in the green ranking.
struct Rank {
    g_per_kwh: f64,
    zone: String,
    /// 1-based among the candidates.
    rank: usize,
}

/// The changes that bring `fleet` to the state the rules want, at `now`.
pub fn plan(fleet: &[FleetRunner], now: u64, rules: &TagRules) -> Vec<TagChange> {
    if !rules.enabled {
        return Vec::new();
    }
    let ttl = rules.ttl_s.max(1);
    // Candidates for the green pool, cleanest first, ties by id.
    let mut candidates: Vec<(u64, f64, String)> = fleet
        .iter()
        .filter(|r| serving(&r.runner))
        .filter_map(|r| {
            let z = r.runneriq.zone.as_deref()?;
            let i = super::carbon::lookup(z)?;
            Some((r.id(), i.g_per_kwh, i.zone))
        })
        .collect();
    candidates.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let n = candidates.len();
    let share = if rules.green_share.is_finite() {
        rules.green_share.clamp(0.0, 1.0)
    } else {
        TagRules::default().green_share
    };
    let k = if n == 0 {
        0
    } else {
        ((n as f64 * share).round() as usize).clamp(1, n)
    };
    let ranks: HashMap<u64, Rank> = candidates
        .iter()
        .enumerate()
        .map(|(i, (id, g, zone))| {
            (
                *id,
                Rank {
                    g_per_kwh: *g,
                    zone: zone.clone(),
                    rank: i + 1,
                },
            )
        })
        .collect();
    let green: HashSet<u64> = candidates.iter().take(k).map(|c| c.0).collect();

    // What each runner holds and what the rules want it to hold.
    struct State<'a> {
        r: &'a FleetRunner,
        held: BTreeSet<String>,
        leases: Vec<String>,
        lease: Option<u64>,
        expired: bool,
        wanted: BTreeSet<String>,
        kept: Vec<String>,
    }
    let mut states: Vec<State<'_>> = fleet
        .iter()
        .map(|r| {
            let tags = &r.runner.tag_list;
            let held: BTreeSet<String> = tags.iter().filter(|t| is_pool(t)).cloned().collect();
            let leases: Vec<String> = tags.iter().filter(|t| is_lease(t)).cloned().collect();
            let lease = leases.iter().filter_map(|t| lease_of(t)).max();
            let expired = !held.is_empty() && lease.is_none_or(|u| u <= now);
            let mut wanted: BTreeSet<String> = if expired {
                BTreeSet::new()
            } else {
                held.iter().filter(|t| *t != GREEN).cloned().collect()
            };
            if green.contains(&r.id()) {
                wanted.insert(GREEN.to_string());
            }
            State {
                r,
                held,
                leases,
                lease,
                expired,
                wanted,
                kept: Vec::new(),
            }
        })
        .collect();

    // The last-holder rule: a pool tag some serving runner holds now stays on
    // one of them when nobody serving would hold it after the plan.
    let pools: BTreeSet<String> = states
        .iter()
        .filter(|s| serving(&s.r.runner))
        .flat_map(|s| s.held.iter().cloned())
        .collect();
    for t in pools {
        let covered = states
            .iter()
            .any(|s| serving(&s.r.runner) && s.wanted.contains(&t));
        if covered {
            continue;
        }
        // The cleanest current holder (known intensity first), then the lowest id.
        let keeper = states
            .iter()
            .enumerate()
            .filter(|(_, s)| serving(&s.r.runner) && s.held.contains(&t))
            .min_by(|(_, a), (_, b)| {
                let ga = ranks.get(&a.r.id()).map_or(f64::INFINITY, |x| x.g_per_kwh);
                let gb = ranks.get(&b.r.id()).map_or(f64::INFINITY, |x| x.g_per_kwh);
                ga.total_cmp(&gb).then(a.r.id().cmp(&b.r.id()))
            })
            .map(|(i, _)| i);
        if let Some(i) = keeper {
            states[i].wanted.insert(t.clone());
            states[i].kept.push(t);
        }
    }

    let mut changes = Vec::new();
    for s in &states {
        let id = s.r.id();
        let add_pools: Vec<String> = s.wanted.difference(&s.held).cloned().collect();
        let remove_pools: Vec<String> = s.held.difference(&s.wanted).cloned().collect();
        // Only the rules' own pool renews a lease; any other pool rides out
        // the lease it has.
        let by_rules = green.contains(&id);
        let mut add = add_pools.clone();
        let mut remove = remove_pools.clone();
        let mut reasons: Vec<String> = Vec::new();
        let mut expires_at = None;
        if s.expired && !remove_pools.is_empty() {
            reasons.push(match s.lease {
                Some(u) => format!("lease expired at {u} (now {now})"),
                None => "no runneriq:until lease tag, so the lease counts as expired".to_string(),
            });
        }
        for t in &add_pools {
            reasons.push(why_added(t, ranks.get(&id), k, n));
        }
        for t in &remove_pools {
            if t == GREEN && !s.expired {
                reasons.push(why_not_green(s.r, ranks.get(&id), k, n));
            }
        }
        for t in &s.kept {
            reasons.push(format!(
                "{t} kept: the last online runner holding it, a job requiring it would be stranded \
                 (removal skipped)"
            ));
        }
        if s.wanted.is_empty() {
            // No pool left: no lease either.
            if !s.leases.is_empty() {
                if s.held.is_empty() {
                    reasons.push("a runneriq:until lease without a pool tag".to_string());
                }
                remove.extend(s.leases.iter().cloned());
            }
        } else if by_rules {
            let left = s.lease.map(|u| u.saturating_sub(now));
            let renew = !add_pools.is_empty()
                || s.leases.len() != 1
                || left.is_none_or(|l| l.saturating_mul(2) < ttl);
            if renew {
                let until = now.saturating_add(ttl);
                let tag = lease_tag(until);
                if !s.leases.contains(&tag) || s.leases.len() != 1 {
                    if add_pools.is_empty() && remove_pools.is_empty() {
                        reasons.push(match left {
                            Some(0) | None => format!("lease renewed for {}", human_s(ttl)),
                            Some(l) => {
                                format!("lease renewed: {} of {} left", human_s(l), human_s(ttl))
                            }
                        });
                    }
                    remove.extend(s.leases.iter().filter(|t| **t != tag).cloned());
                    if !s.leases.contains(&tag) {
                        add.push(tag);
                    }
                    expires_at = Some(until);
                }
            }
        }
        if add.is_empty() && remove.is_empty() && s.kept.is_empty() {
            continue;
        }
        changes.push(TagChange {
            runner: id,
            runner_name: s.r.label(),
            add,
            remove,
            reason: reasons.join("; "),
            expires_at,
            decided_by: DECIDED_BY_RULES.to_string(),
        });
    }
    changes
}

fn human_s(s: u64) -> String {
    if s >= 3600 && s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s >= 3600 {
        format!("{:.1} h", s as f64 / 3600.0)
    } else if s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

fn why_added(tag: &str, rank: Option<&Rank>, k: usize, n: usize) -> String {
    match (tag, rank) {
        (GREEN, Some(r)) => format!(
            "among the cleanest {k} of {n} online runners with a known carbon intensity: \
             {:.0} g CO2e/kWh ({}), rank {}",
            r.g_per_kwh, r.zone, r.rank
        ),
        _ => format!("{tag} added"),
    }
}

fn why_not_green(r: &FleetRunner, rank: Option<&Rank>, k: usize, n: usize) -> String {
    if r.paused() {
        return "paused, so out of the green pool".to_string();
    }
    if !serving(&r.runner) {
        return format!("{}, so out of the green pool", r.status());
    }
    match (rank, r.runneriq.zone.as_deref()) {
        (Some(x), _) => format!(
            "no longer among the cleanest {k} of {n}: {:.0} g CO2e/kWh ({}), rank {}",
            x.g_per_kwh, x.zone, x.rank
        ),
        (None, Some(z)) => format!("zone {z:?} has no known carbon intensity"),
        (None, None) => "no zone, so no known carbon intensity".to_string(),
    }
}

/// A waiting job as the supervised split sees it.
#[derive(Debug, Clone, Copy)]
pub struct WaitingJob<'a> {
    pub id: u64,
    pub name: &'a str,
    pub tags: &'a [String],
    pub urgency: Urgency,
}

/// A plan split by `routing.trust.supervised_threshold`: what the run may
/// apply itself and what goes to the plan file for review.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    pub direct: Vec<TagChange>,
    pub review: Vec<TagChange>,
}

/// The waiting jobs a change can affect: those requiring one of the pool
/// tags it adds or removes whose other tags the runner has (a runner's tag
/// matters only to the jobs that require it; a lease tag to none).
fn affected<'j>(
    c: &TagChange,
    runner: Option<&FleetRunner>,
    jobs: &'j [WaitingJob<'j>],
) -> Vec<&'j WaitingJob<'j>> {
    let pools: Vec<&String> = c
        .add
        .iter()
        .chain(&c.remove)
        .filter(|t| is_pool(t))
        .collect();
    jobs.iter()
        .filter(|j| j.tags.iter().any(|t| pools.contains(&t)))
        .filter(|j| {
            j.tags
                .iter()
                .filter(|t| !is_ours(t))
                .all(|t| runner.is_none_or(|r| r.runner.tag_list.iter().any(|rt| rt == t)))
        })
        .collect()
}

/// Splits `changes` for supervised mode: a change that affects a waiting
/// job at or above `threshold` goes to review (the plan file); one whose
/// affected jobs are all below it, or that affects none, may be applied by
/// the run. Each change's reason says which and why. A change with nothing
/// to add or remove (a last holder kept) stays with the plan, as before.
pub fn split_supervised(
    changes: Vec<TagChange>,
    fleet: &[FleetRunner],
    jobs: &[WaitingJob<'_>],
    threshold: Urgency,
) -> Split {
    let mut split = Split::default();
    for mut c in changes {
        if c.is_noop() {
            split.review.push(c);
            continue;
        }
        let runner = fleet.iter().find(|r| r.id() == c.runner);
        let mut hit = affected(&c, runner, jobs);
        // Most urgent first, then by job id.
        hit.sort_by(|a, b| b.urgency.cmp(&a.urgency).then(a.id.cmp(&b.id)));
        let at_or_above: Vec<&&WaitingJob<'_>> =
            hit.iter().filter(|j| j.urgency >= threshold).collect();
        let why = match (at_or_above.first(), hit.first()) {
            (Some(j), _) => {
                let more = at_or_above.len() - 1;
                format!(
                    "for review: it affects {} (job {}, {}){}, at or above the supervised \
                     threshold {}",
                    j.name,
                    j.id,
                    j.urgency,
                    if more > 0 {
                        format!(" and {more} more job{} at or above it", plural(more))
                    } else {
                        String::new()
                    },
                    threshold
                )
            }
            (None, Some(j)) => format!(
                "without review: the {} waiting job{} it affects {} below the supervised \
                 threshold {} (the most urgent: {}, job {}, {})",
                hit.len(),
                plural(hit.len()),
                if hit.len() == 1 { "is" } else { "are" },
                threshold,
                j.name,
                j.id,
                j.urgency
            ),
            (None, None) => format!(
                "without review: no waiting job requires its {} tag on this runner, so none \
                 at or above the supervised threshold {threshold}",
                if c.add.iter().chain(&c.remove).any(|t| is_pool(t)) {
                    "pool"
                } else {
                    "lease"
                }
            ),
        };
        let review = !at_or_above.is_empty();
        c.reason = if c.reason.is_empty() {
            why
        } else {
            format!("{}; {why}", c.reason)
        };
        if review {
            split.review.push(c);
        } else {
            split.direct.push(c);
        }
    }
    split
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The plan artifact: the changes plus the holders `apply` re-checks.
pub fn make_plan(
    fleet: &[FleetRunner],
    now: u64,
    rules: &TagRules,
    mode: &str,
    changes: Vec<TagChange>,
) -> Plan {
    let changed: HashMap<u64, &TagChange> = changes
        .iter()
        .filter(|c| !c.is_noop())
        .map(|c| (c.runner, c))
        .collect();
    let mut holders: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in fleet {
        if changed.contains_key(&r.id()) || !serving(&r.runner) {
            continue;
        }
        for t in r.runner.tag_list.iter().filter(|t| is_pool(t)) {
            let v = holders.entry(t.clone()).or_default();
            if !v.contains(&r.id()) {
                v.push(r.id());
            }
        }
    }
    Plan {
        version: PLAN_VERSION,
        created_at: now,
        mode: mode.to_string(),
        ttl_s: rules.ttl_s,
        changes,
        holders,
    }
}

/// What `reset-tags` does: every `runneriq:` tag off every runner.
pub fn reset_changes(fleet: &[FleetRunner]) -> Vec<TagChange> {
    fleet
        .iter()
        .filter_map(|r| {
            let ours: Vec<String> = r
                .runner
                .tag_list
                .iter()
                .filter(|t| is_ours(t))
                .cloned()
                .collect();
            (!ours.is_empty()).then(|| TagChange {
                runner: r.id(),
                runner_name: r.label(),
                add: Vec::new(),
                remove: ours,
                reason: "reset-tags: every runneriq: tag removed".to_string(),
                expires_at: None,
                decided_by: "reset".to_string(),
            })
        })
        .collect()
}

/// Reads and checks a plan file; errors name the file and the JSON path.
pub fn load_plan(path: &Path) -> anyhow::Result<Plan> {
    let origin = path.display().to_string();
    let io = |e: std::io::Error| {
        input(format!(
            "{origin}: cannot read the plan: {}",
            crate::input::io_reason(&e)
        ))
    };
    let bytes = crate::input::read_at_most(path, MAX_PLAN_BYTES).map_err(io)?;
    parse_plan(&bytes, &origin)
}

/// Parses plan JSON (`origin` names it in errors).
pub fn parse_plan(bytes: &[u8], origin: &str) -> anyhow::Result<Plan> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let plan: Plan = match serde_path_to_error::deserialize(&mut de) {
        Ok(p) => p,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            };
            let hint = if inner.is_syntax() || inner.is_eof() {
                " (expected a RunnerIQ plan: the --plan FILE of `runneriq route`)"
            } else {
                ""
            };
            return Err(input(format!("{origin}: {at}{inner}{hint}")));
        }
    };
    de.end()
        .map_err(|e| input(format!("{origin}: trailing data after the JSON value: {e}")))?;
    if plan.version != PLAN_VERSION {
        return Err(input(format!(
            "{origin}: version: expected {PLAN_VERSION}, got {} (written by another RunnerIQ \
             version? route again)",
            plan.version
        )));
    }
    // Every tag is checked before anything is sent: one bad tag refuses the
    // whole plan, so nothing is half applied.
    for (i, c) in plan.changes.iter().enumerate() {
        if c.runner == 0 {
            return Err(input(format!(
                "{origin}: changes[{i}].runner: a runner needs a non-zero id"
            )));
        }
        for (field, list) in [("add", &c.add), ("remove", &c.remove)] {
            if let Some((j, t)) = list.iter().enumerate().find(|(_, t)| !is_ours(t)) {
                return Err(input(format!(
                    "{origin}: changes[{i}].{field}[{j}]: {t:?} is not a runneriq: tag (RunnerIQ \
                     only changes tags that start with {PREFIX:?})"
                )));
            }
            for (j, t) in list.iter().enumerate() {
                if let Some(why) = tag_problem(t) {
                    return Err(input(format!(
                        "{origin}: changes[{i}].{field}[{j}]: runner {}: {t:?} {why}; the plan \
                         is refused and nothing was applied",
                        c.runner
                    )));
                }
            }
        }
    }
    for t in plan.holders.keys() {
        let why = if is_ours(t) {
            tag_problem(t)
        } else {
            Some(format!(
                "is not a runneriq: tag (RunnerIQ only changes tags that start with {PREFIX:?})"
            ))
        };
        if let Some(why) = why {
            return Err(input(format!(
                "{origin}: holders: {t:?} {why}; the plan is refused and nothing was applied"
            )));
        }
    }
    Ok(plan)
}

/// What happened to one change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub runner: u64,
    pub runner_name: String,
    /// Applied (or, in a dry run, would apply); false: the runner is as it was.
    pub ok: bool,
    /// A PUT was sent and GitLab accepted it.
    pub sent: bool,
    /// The tags as GitLab returned them just before (empty when unread).
    pub before: Vec<String>,
    /// The tag list sent (or that would be sent).
    pub after: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// One sentence: the endpoint, what it answered, what right is needed.
    pub error: Option<String>,
    /// E.g. a removal skipped by the last-holder rule, or nothing left to do.
    pub note: Option<String>,
    pub reason: String,
    pub expires_at: Option<u64>,
    pub decided_by: String,
    /// The `tag_list` of the PUT, when one was sent (whatever GitLab
    /// answered): the audit log records it.
    #[serde(skip)]
    pub put: Option<Vec<String>>,
}

impl Applied {
    /// `c` before anything was done for it.
    fn pending(c: &TagChange) -> Applied {
        Applied {
            runner: c.runner,
            runner_name: c.runner_name.clone(),
            ok: false,
            sent: false,
            before: Vec::new(),
            after: Vec::new(),
            added: c.add.clone(),
            removed: c.remove.clone(),
            error: None,
            note: None,
            reason: c.reason.clone(),
            expires_at: c.expires_at,
            decided_by: c.decided_by.clone(),
            put: None,
        }
    }
}

/// Applies changes: fresh tags from `GET /runners/:id`, the new list, the
/// last-holder check, then (only with `execute`) `PUT /runners/:id`. A
/// failure on one runner is recorded and the others go on.
pub fn apply(client: &Client, changes: &[TagChange], execute: bool) -> Vec<Applied> {
    apply_with(client, changes, &BTreeMap::new(), execute, true)
}

/// [`apply`] for a plan: also re-reads the holders it names.
pub fn apply_plan(client: &Client, plan: &Plan, execute: bool) -> Vec<Applied> {
    apply_with(client, &plan.changes, &plan.holders, execute, true)
}

/// [`apply`] without the last-holder rule: `reset-tags` empties every pool.
pub fn apply_reset(client: &Client, changes: &[TagChange], execute: bool) -> Vec<Applied> {
    apply_with(client, changes, &BTreeMap::new(), execute, false)
}

fn rights(runner_type: Option<&str>) -> &'static str {
    match runner_type {
        Some("instance_type") => "an administrator (instance runner)",
        Some("group_type") => "the Owner role in the runner's group (group runner)",
        Some("project_type") => {
            "the Maintainer role in the runner's owner project (project runner)"
        }
        _ => {
            "an administrator for instance runners, the group's Owner role for group runners, \
             the owner project's Maintainer role for project runners"
        }
    }
}

fn status_words(e: &ApiError) -> String {
    match e.status() {
        Some(s) => format!("answered {s}"),
        None => format!("failed ({})", crate::gitlab::error::summary(e)),
    }
}

fn put_error(e: &ApiError, id: u64, runner_type: Option<&str>) -> String {
    match e.kind() {
        ApiErrorKind::Forbidden | ApiErrorKind::Unauthorized | ApiErrorKind::NotFound => format!(
            "PUT /runners/{id} {}: changing a runner's tags needs {} and a token with the api \
             scope, so runner {id} keeps its tags",
            status_words(e),
            rights(runner_type)
        ),
        _ if e.status().is_some_and(|s| s >= 500) => format!(
            "PUT /runners/{id} {} and was not retried (a write is never repeated), so runner \
             {id} keeps its tags unless GitLab applied the change anyway; the next run will see",
            status_words(e)
        ),
        _ => format!(
            "PUT /runners/{id} failed: {}; runner {id} keeps its tags",
            crate::gitlab::error::summary(e)
        ),
    }
}

fn get_error(e: &ApiError, id: u64) -> String {
    match e.kind() {
        ApiErrorKind::Forbidden | ApiErrorKind::Unauthorized | ApiErrorKind::NotFound => format!(
            "GET /runners/{id} {}: reading a runner needs {}, so runner {id} was not changed",
            status_words(e),
            rights(None)
        ),
        _ => format!(
            "GET /runners/{id} failed: {}; runner {id} was not changed",
            crate::gitlab::error::summary(e)
        ),
    }
}

fn apply_with(
    client: &Client,
    changes: &[TagChange],
    holders: &BTreeMap<String, Vec<u64>>,
    execute: bool,
    keep_last_holder: bool,
) -> Vec<Applied> {
    let mut ordered: Vec<&TagChange> = changes.iter().filter(|c| !c.is_noop()).collect();
    // A tag GitLab would not store as given refuses every change: nothing is
    // read or sent.
    if let Err(why) = check_changes(changes) {
        let msg = format!("{why}; no runner was changed");
        return ordered
            .into_iter()
            .map(|c| Applied {
                error: Some(msg.clone()),
                ..Applied::pending(c)
            })
            .collect();
    }
    // Additions first: a failed addition must not leave a pool empty.
    ordered.sort_by_key(|c| !c.add.iter().any(|t| is_pool(t)));
    // Tags and serving state of every runner read, as they are after each step.
    let mut state: HashMap<u64, (bool, Vec<String>)> = HashMap::new();
    let mut fresh: HashMap<u64, Result<Runner, String>> = HashMap::new();
    for c in &ordered {
        if fresh.contains_key(&c.runner) {
            continue;
        }
        let got = client
            .get_json::<Runner>(&format!("/runners/{}", c.runner), &[])
            .map_err(|e| get_error(&e, c.runner));
        if let Ok(r) = &got {
            state.insert(c.runner, (serving(r), r.tag_list.clone()));
        }
        fresh.insert(c.runner, got);
    }
    if keep_last_holder {
        let others: BTreeSet<u64> = holders
            .values()
            .flatten()
            .copied()
            .filter(|id| !fresh.contains_key(id))
            .collect();
        for id in others {
            // Unreadable: counted as not holding (the safe side).
            if let Ok(r) = client.get_json::<Runner>(&format!("/runners/{id}"), &[]) {
                state.insert(id, (serving(&r), r.tag_list));
            }
        }
    }
    let mut out = Vec::with_capacity(ordered.len());
    for c in ordered {
        let base = Applied::pending(c);
        let r = match fresh.get(&c.runner) {
            Some(Ok(r)) => r,
            Some(Err(msg)) => {
                out.push(Applied {
                    error: Some(msg.clone()),
                    ..base
                });
                continue;
            }
            None => unreachable!("every ordered change was read"),
        };
        let before = state
            .get(&c.runner)
            .map_or_else(|| r.tag_list.clone(), |s| s.1.clone());
        let mut remove = c.remove.clone();
        let mut after = next_tags(&before, &c.add, &remove);
        let mut notes = Vec::new();
        if keep_last_holder && serving(r) {
            let lost: Vec<String> = before
                .iter()
                .filter(|t| is_pool(t) && !after.contains(t))
                .cloned()
                .collect();
            let mut kept = Vec::new();
            for t in lost {
                let elsewhere = state
                    .iter()
                    .any(|(id, (serves, tags))| *id != c.runner && *serves && tags.contains(&t));
                if !elsewhere {
                    notes.push(format!(
                        "{t} kept: no other online runner holds it now, a job requiring it \
                         would be stranded"
                    ));
                    kept.push(t);
                }
            }
            if !kept.is_empty() {
                // Keep the lease with the pool tag it covers.
                remove.retain(|t| !kept.contains(t) && !is_lease(t));
                after = next_tags(&before, &c.add, &remove);
            }
        }
        let added: Vec<String> = after
            .iter()
            .filter(|t| !before.contains(t))
            .cloned()
            .collect();
        let removed: Vec<String> = before
            .iter()
            .filter(|t| !after.contains(t))
            .cloned()
            .collect();
        let mut a = Applied {
            before: before.clone(),
            after: after.clone(),
            added,
            removed,
            ..base
        };
        if after == before {
            if notes.is_empty() {
                notes.push("nothing to change: GitLab already has these tags".to_string());
            }
            a.ok = true;
            a.note = Some(notes.join("; "));
            out.push(a);
            continue;
        }
        if !notes.is_empty() {
            a.note = Some(notes.join("; "));
        }
        // GitLab would split a tag with a comma into several: the runner's
        // tags cannot be sent back as they are, so it is not written to.
        if let Some(t) = after.iter().find(|t| t.contains(',')) {
            a.error = Some(format!(
                "runner {} has the tag {t:?}, which contains a comma: GitLab splits `tag_list` \
                 entries on commas, so sending it back would turn it into several tags; runner {} \
                 was not changed (rename that tag in GitLab)",
                c.runner, c.runner
            ));
            a.after = before;
            out.push(a);
            continue;
        }
        if !execute {
            a.ok = true;
            state.insert(c.runner, (serving(r), after));
            out.push(a);
            continue;
        }
        let body = serde_json::json!({ "tag_list": after });
        a.put = Some(after.clone());
        match client.put_json::<_, serde_json::Value>(&format!("/runners/{}", c.runner), &body) {
            Ok(_) => {
                a.ok = true;
                a.sent = true;
                state.insert(c.runner, (serving(r), after));
            }
            Err(e) => {
                a.error = Some(put_error(&e, c.runner, r.runner_type.as_deref()));
                a.after = before;
            }
        }
        out.push(a);
    }
    out
}

fn list(tags: &[String]) -> String {
    if tags.is_empty() {
        "—".to_string()
    } else {
        tags.iter()
            .map(|t| code_span(t))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The planned changes as Markdown, under `heading`.
pub fn render_changes_md(heading: &str, changes: &[TagChange]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {heading}\n");
    if changes.is_empty() {
        out.push_str("No runner's `runneriq:` tags need to change.\n");
        return out;
    }
    out.push_str("| Runner | Add | Remove | Lease until | Reason |\n|---|---|---|---|---|\n");
    for c in changes {
        let _ = writeln!(
            out,
            "| {} (id {}) | {} | {} | {} | {} |",
            code_span(&c.runner_name),
            c.runner,
            list(&c.add),
            list(&c.remove),
            c.expires_at.map_or("—".to_string(), |u| u.to_string()),
            inline(&c.reason)
        );
    }
    out
}

/// The outcome of an apply as Markdown, under `heading`.
pub fn render_applied_md(heading: &str, applied: &[Applied], execute: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {heading}\n");
    if applied.is_empty() {
        out.push_str("No runner's `runneriq:` tags need to change.\n");
        return out;
    }
    out.push_str("| Runner | Added | Removed | Result | Reason |\n|---|---|---|---|---|\n");
    for a in applied {
        let result = match (&a.error, a.ok, a.sent) {
            (Some(e), _, _) => format!("failed: {}", inline(e)),
            (None, true, true) => "applied".to_string(),
            (None, true, false) if a.after == a.before => "unchanged".to_string(),
            (None, true, false) if !execute => format!(
                "dry run: would PUT `tag_list` {}",
                code_span(&serde_json::to_string(&a.after).unwrap_or_default())
            ),
            _ => "not applied".to_string(),
        };
        let note = a
            .note
            .as_ref()
            .map(|n| format!(" ({})", inline(n)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} (id {}) | {} | {} | {result}{note} | {} |",
            code_span(&a.runner_name),
            a.runner,
            list(&a.added),
            list(&a.removed),
            inline(&a.reason)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(runner: u64, add: &[&str], remove: &[&str]) -> TagChange {
        TagChange {
            runner,
            runner_name: format!("r{runner}"),
            add: add.iter().map(|t| t.to_string()).collect(),
            remove: remove.iter().map(|t| t.to_string()).collect(),
            reason: "rules".into(),
            expires_at: None,
            decided_by: DECIDED_BY_RULES.into(),
        }
    }

    #[test]
    fn the_supervised_split_looks_only_at_jobs_the_change_can_affect() {
        let fleet = vec![
            runner(1, None, &["docker", "linux"]),
            runner(2, None, &["docker", "gpu"]),
            runner(3, None, &["docker"]),
        ];
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (gpu, linux, plain) = (
            t(&["gpu", "runneriq:green"]),
            t(&["docker", "linux", "runneriq:green"]),
            t(&["docker"]),
        );
        let jobs = [
            WaitingJob {
                id: 10,
                name: "train",
                tags: &gpu,
                urgency: Urgency::Critical,
            },
            WaitingJob {
                id: 11,
                name: "unit",
                tags: &linux,
                urgency: Urgency::Medium,
            },
            WaitingJob {
                id: 12,
                name: "lint",
                tags: &plain,
                urgency: Urgency::Critical,
            },
        ];
        let split = split_supervised(
            vec![
                // 1: only job 11 (MEDIUM) fits its other tags.
                change(1, &[GREEN], &[]),
                // 2: job 10 (CRITICAL) requires green and has gpu there.
                change(2, &[], &[GREEN]),
                // 3: a lease renewal: no job requires a lease tag.
                change(3, &["runneriq:until:99"], &["runneriq:until:9"]),
                // A kept last holder: stays with the plan.
                change(1, &[], &[]),
            ],
            &fleet,
            &jobs,
            Urgency::High,
        );
        let ids = |v: &[TagChange]| v.iter().map(|c| c.runner).collect::<Vec<_>>();
        assert_eq!(ids(&split.direct), vec![1, 3]);
        assert_eq!(ids(&split.review), vec![2, 1]);
        assert!(split.direct[0].reason.starts_with("rules; without review: the 1 waiting job it affects is below the supervised threshold HIGH (the most urgent: unit, job 11, MEDIUM)"), "{}", split.direct[0].reason);
        assert!(
            split.direct[1]
                .reason
                .contains("no waiting job requires its lease tag"),
            "{}",
            split.direct[1].reason
        );
        assert_eq!(
            split.review[0].reason,
            "rules; for review: it affects train (job 10, CRITICAL), at or above the supervised threshold HIGH"
        );
        assert_eq!(split.review[1].reason, "rules");
        // At MEDIUM, runner 1's change waits for review too.
        let split = split_supervised(
            vec![change(1, &[GREEN], &[])],
            &fleet,
            &jobs,
            Urgency::Medium,
        );
        assert_eq!(ids(&split.review), vec![1]);
        assert!(split.direct.is_empty());
    }

    fn runner(id: u64, zone: Option<&str>, tags: &[&str]) -> FleetRunner {
        let mut r = FleetRunner::default();
        r.runner.id = id;
        r.runner.description = Some(format!("r{id}"));
        r.runner.status = Some("online".into());
        r.runner.paused = Some(false);
        r.runner.tag_list = tags.iter().map(|t| t.to_string()).collect();
        r.runneriq.zone = zone.map(str::to_string);
        r
    }

    /// The fleet after applying `changes` (as apply would, without GitLab).
    fn applied(fleet: &[FleetRunner], changes: &[TagChange]) -> Vec<FleetRunner> {
        fleet
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Some(c) = changes.iter().find(|c| c.runner == r.id()) {
                    r.runner.tag_list = next_tags(&r.runner.tag_list, &c.add, &c.remove);
                }
                r
            })
            .collect()
    }

    const NOW: u64 = 1_767_225_600;

    fn fleet() -> Vec<FleetRunner> {
        vec![
            runner(1, Some("FR"), &["docker", "Linux x86_64"]),
            runner(2, Some("DE"), &["docker"]),
            runner(3, Some("PL"), &["docker", "large"]),
            runner(4, Some("SE-SE3"), &["deploy"]),
            runner(5, None, &["shell"]),
            runner(6, Some("US-CA"), &["gpu"]),
        ]
    }

    #[test]
    fn the_cleanest_third_gets_green_with_a_lease() {
        let changes = plan(&fleet(), NOW, &TagRules::default());
        // 5 runners with a known intensity: round(5 × 0.34) = 2.
        let greened: Vec<u64> = changes
            .iter()
            .filter(|c| c.add.contains(&GREEN.to_string()))
            .map(|c| c.runner)
            .collect();
        assert_eq!(greened, vec![1, 4], "{changes:#?}");
        for c in &changes {
            assert_eq!(c.add[1], lease_tag(NOW + 6 * 3600));
            assert_eq!(c.expires_at, Some(NOW + 6 * 3600));
            assert_eq!(c.decided_by, "rules");
            assert!(c.reason.contains("cleanest 2 of 5"), "{}", c.reason);
        }
        // At least one, even with a tiny share.
        let rules = TagRules {
            green_share: 0.01,
            ..TagRules::default()
        };
        assert_eq!(plan(&fleet(), NOW, &rules).len(), 1);
        let off = TagRules {
            enabled: false,
            ..TagRules::default()
        };
        assert!(plan(&fleet(), NOW, &off).is_empty());
    }

    #[test]
    fn planning_again_changes_nothing_until_half_the_ttl() {
        let rules = TagRules::default();
        let f1 = applied(&fleet(), &plan(&fleet(), NOW, &rules));
        assert!(plan(&f1, NOW, &rules).is_empty());
        assert!(plan(&f1, NOW + 600, &rules).is_empty());
        assert!(plan(&f1, NOW + 3 * 3600 - 1, &rules).is_empty());
        // Past half the TTL: only lease renewals.
        let later = NOW + 3 * 3600 + 1;
        let c = plan(&f1, later, &rules);
        assert_eq!(c.len(), 2);
        for x in &c {
            assert_eq!(x.add, vec![lease_tag(later + 6 * 3600)]);
            assert_eq!(x.remove, vec![lease_tag(NOW + 6 * 3600)]);
            assert!(x.reason.starts_with("lease renewed"), "{}", x.reason);
        }
        let f2 = applied(&f1, &c);
        assert!(plan(&f2, later, &rules).is_empty());
        // Other tags are untouched, in order.
        assert_eq!(
            f2[0].runner.tag_list[..2],
            ["docker".to_string(), "Linux x86_64".to_string()]
        );
    }

    #[test]
    fn expired_tags_are_removed_and_green_moves() {
        let mut f = fleet();
        // Runner 2 (DE) holds green with a past lease.
        f[1].runner.tag_list = vec!["docker".into(), GREEN.into(), lease_tag(NOW - 1)];
        let c = plan(&f, NOW, &TagRules::default());
        let two = c.iter().find(|c| c.runner == 2).unwrap();
        assert!(two.add.is_empty());
        assert_eq!(two.remove, vec![GREEN.to_string(), lease_tag(NOW - 1)]);
        assert!(two.reason.contains("lease expired"), "{}", two.reason);
        // A valid lease: green moves for being dirty, an unmanaged pool
        // stays with its lease as it is (only the rules' pool renews one).
        f[1].runner.tag_list = vec![
            "docker".into(),
            GREEN.into(),
            "runneriq:gpu-pool".into(),
            lease_tag(NOW + 100),
        ];
        let c = plan(&f, NOW, &TagRules::default());
        let two = c.iter().find(|c| c.runner == 2).unwrap();
        assert_eq!(two.remove, vec![GREEN.to_string()]);
        assert!(two.add.is_empty());
        assert!(two.reason.contains("no longer among the cleanest 2 of 5"));
        // Expired, the unmanaged pool's last holder still keeps it.
        f[1].runner.tag_list[3] = lease_tag(NOW - 1);
        let c = plan(&f, NOW, &TagRules::default());
        let two = c.iter().find(|c| c.runner == 2).unwrap();
        assert_eq!(two.remove, vec![GREEN.to_string()]);
        assert!(
            two.reason.contains("runneriq:gpu-pool kept"),
            "{}",
            two.reason
        );
    }

    #[test]
    fn the_last_online_holder_keeps_its_pool_tag() {
        // Nobody has a known intensity any more: green cannot move.
        let mut f = vec![
            runner(
                1,
                Some("Atlantis"),
                &["docker", GREEN, &lease_tag(NOW + 9000)],
            ),
            runner(2, None, &["docker"]),
        ];
        let c = plan(&f, NOW, &TagRules::default());
        assert_eq!(c.len(), 1);
        assert!(c[0].is_noop(), "{c:?}");
        assert!(
            c[0].reason.contains("runneriq:green kept"),
            "{}",
            c[0].reason
        );
        // An offline holder does not count: the tag goes.
        f[0].runner.status = Some("offline".into());
        let c = plan(&f, NOW, &TagRules::default());
        assert_eq!(c[0].remove.len(), 2);
        // Two holders: one keeps it.
        let f = vec![
            runner(1, None, &[GREEN, &lease_tag(NOW - 5)]),
            runner(2, None, &[GREEN, &lease_tag(NOW - 5)]),
        ];
        let c = plan(&f, NOW, &TagRules::default());
        assert!(c[0].is_noop());
        assert_eq!(c[1].remove.len(), 2);
    }

    #[test]
    fn next_tags_touches_only_our_namespace() {
        let cur: Vec<String> = [
            "b",
            "runneriq:until:5",
            "Linux x86_64",
            "runneriq:green",
            "a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = next_tags(
            &cur,
            &[
                "runneriq:until:9".into(),
                "runneriq:green".into(),
                "evil".into(),
            ],
            &["b".into(), "runneriq:x".into()],
        );
        assert_eq!(
            out,
            [
                "b",
                "Linux x86_64",
                "runneriq:green",
                "a",
                "runneriq:until:9"
            ]
        );
    }

    #[test]
    fn plans_round_trip_and_bad_ones_name_the_path() {
        let f = fleet();
        let rules = TagRules::default();
        let p = make_plan(&f, NOW, &rules, "supervised", plan(&f, NOW, &rules));
        let text = serde_json::to_string_pretty(&p).unwrap();
        assert_eq!(parse_plan(text.as_bytes(), "p.json").unwrap(), p);
        assert_eq!(p.expires_at(), NOW + 6 * 3600);
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["changes"][1]["remove"] = serde_json::json!(["docker"]);
        let e = parse_plan(v.to_string().as_bytes(), "p.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.json: changes[1].remove[0]: \"docker\" is not"),
            "{e}"
        );
        v["changes"][1]["runner"] = "x".into();
        let e = parse_plan(v.to_string().as_bytes(), "p.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.json: changes[1].runner: invalid type"),
            "{e}"
        );
        let e = parse_plan(b"{", "p.json").unwrap_err().to_string();
        assert!(e.contains("expected a RunnerIQ plan"), "{e}");
    }

    #[test]
    fn tags_gitlab_would_not_store_as_given_are_named_with_the_reason() {
        for ok in [
            GREEN,
            "runneriq:until:18446744073709551615",
            "runneriq:",
            "runneriq:gpu pool",
            "runneriq:région-é",
        ] {
            assert_eq!(tag_problem(ok), None, "{ok}");
        }
        let long = format!("runneriq:{}", "é".repeat(MAX_TAG_CHARS - PREFIX.len()));
        assert_eq!(tag_problem(&long), None);
        for (bad, why) in [
            ("runneriq:x,production,gpu", "comma"),
            ("runneriq:x,", "comma"),
            ("runneriq:x ", "whitespace"),
            ("runneriq:x\u{a0}", "whitespace"),
            ("runneriq:\"q\"", "quote"),
            ("runneriq:it's", "quote"),
            ("runneriq:a\nb", "control character"),
            ("runneriq:a\0", "control character"),
            ("  ", "blank"),
            (&format!("{long}x"), "256 characters long"),
        ] {
            let got = tag_problem(bad).unwrap_or_default();
            assert!(got.contains(why), "{bad:?}: {got}");
        }
        assert_eq!(
            gitlab_pieces("runneriq:x, production,,gpu ,production"),
            ["runneriq:x", "production", "gpu"]
        );
        let mut c = reset_changes(&[runner(9, None, &[GREEN])]);
        assert_eq!(check_changes(&c), Ok(()));
        c[0].add.push("runneriq:a,b".into());
        assert_eq!(
            check_changes(&c).unwrap_err(),
            "runner 9: \"runneriq:a,b\" contains a comma: GitLab splits `tag_list` entries on \
             commas, so each piece would become a tag of its own"
        );
        c[0].add = vec!["docker".into()];
        assert!(
            check_changes(&c)
                .unwrap_err()
                .contains("is not a runneriq: tag")
        );
    }

    #[test]
    fn a_plan_with_a_tag_gitlab_would_split_is_refused_naming_the_runner() {
        let f = fleet();
        let rules = TagRules::default();
        let p = make_plan(&f, NOW, &rules, "supervised", plan(&f, NOW, &rules));
        let mut v = serde_json::to_value(&p).unwrap();
        v["changes"][1]["add"][0] = "runneriq:x,production,gpu".into();
        let e = parse_plan(v.to_string().as_bytes(), "p.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "p.json: changes[1].add[0]: runner 4: \"runneriq:x,production,gpu\" contains a comma"
            ),
            "{e}"
        );
        assert!(
            e.ends_with("the plan is refused and nothing was applied"),
            "{e}"
        );
        let mut v = serde_json::to_value(&p).unwrap();
        v["holders"] = serde_json::json!({"runneriq:a,b": [3]});
        let e = parse_plan(v.to_string().as_bytes(), "p.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.json: holders: \"runneriq:a,b\" contains a comma"),
            "{e}"
        );
    }

    #[test]
    fn reset_removes_every_tag_of_ours() {
        let f = vec![
            runner(1, None, &["docker", GREEN, "runneriq:until:1"]),
            runner(2, None, &["docker"]),
        ];
        let c = reset_changes(&f);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].remove,
            vec![GREEN.to_string(), "runneriq:until:1".into()]
        );
    }
}
