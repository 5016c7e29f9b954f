//! `runneriq watch`: one check of the fleet's health, for a scheduled
//! pipeline (every 10–15 minutes) that exits in seconds and keeps its state
//! in the fleet-health issue.
//!
//! [`run`]'s stages, each taking the previous one's value: `prepare`
//! (config, scope, channels) → `recall` (the token's user, the fleet-health
//! issue and its state, the last report's queue waits) → `observe` (runners
//! list, details only for what changed, one page of active and one of
//! finished jobs per project) → `judge` (pure: problems, fingerprints,
//! cooldowns) → `alert` (Slack, webhook, PagerDuty; `--dry-run` prints) →
//! `record` (the issue created, edited in place, closed when all is clear)
//! → `print`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::analysis::{self, ChannelRule, Decisions, Observed, Problem, Send, State, WatchRules};
use super::render::{self, Counts, Delivery, IssueOutcome, Outcome, Requests, Run};
use super::source::{self, Scope};
use crate::config::Config;
use crate::error::input;
use crate::fleet::model::FleetRunner;
use crate::gitlab::models::{Issue, Job, Runner};
use crate::gitlab::{Client, project_from_env};
use crate::publish::format::NoteFormat;

/// A fleet and its jobs carried in the binary (`watch --mock`).
#[derive(Debug, Clone)]
pub struct Mock {
    pub origin: &'static str,
    pub fleet: &'static str,
    pub jobs: &'static str,
    /// The time the check is made as of.
    pub now: u64,
    pub default_branch: &'static str,
}

/// The flags of `runneriq watch`.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    pub gitlab_url: Option<String>,
    /// Where the fleet-health issue lives (and whose runners, by default).
    pub project: Option<String>,
    pub group: Option<String>,
    pub all_runners: bool,
    pub format: Option<NoteFormat>,
    pub dry_run: bool,
    pub config: Option<PathBuf>,
    pub default_branch: Option<String>,
    pub mock: Option<Mock>,
}

/// A channel that can be sent to this run.
#[derive(Debug, Clone)]
struct Channel {
    rule: ChannelRule,
    /// The variable holding the URL or routing key (named in messages).
    env: String,
    /// Its value; `None` on a dry run without it.
    secret: Option<String>,
}

struct Prepared {
    config: Config,
    scope: Scope,
    /// Where the issue lives; `None` only with `--mock`.
    project: Option<String>,
    channels: Vec<Channel>,
    now: i64,
    warnings: Vec<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Config, scope and channels; nothing read from GitLab yet.
fn prepare(o: &WatchOptions) -> anyhow::Result<Prepared> {
    let config = Config::for_job(o.config.as_deref())?;
    if o.group.is_some() && o.all_runners {
        return Err(input("--group and --all-runners exclude each other"));
    }
    let project = o
        .project
        .clone()
        .or_else(|| project_from_env(|k| std::env::var(k).ok()));
    let scope = match (&o.group, o.all_runners, &project) {
        (Some(g), _, _) => Scope::Group(g.clone()),
        (None, true, _) => Scope::Instance,
        (None, false, Some(p)) => Scope::Project(p.clone()),
        (None, false, None) if o.mock.is_some() => Scope::Project("demo".into()),
        (None, false, None) => {
            return Err(input(
                "no project: pass --project ID|PATH (the fleet-health issue lives there), or \
                 run in GitLab CI",
            ));
        }
    };
    if project.is_none() && o.mock.is_none() {
        return Err(input(
            "no project for the fleet-health issue: pass --project ID|PATH, or run in GitLab CI",
        ));
    }
    let mut warnings = Vec::new();
    let mut channels = Vec::new();
    let lookup = |k: &str| non_empty(std::env::var(k).ok());
    let mut add = |name: &'static str, min, env: &str| {
        let secret = lookup(env);
        if secret.is_none() && !o.dry_run && o.mock.is_none() {
            warnings.push(format!(
                "{name} is configured but ${env} is not set: nothing is sent there"
            ));
            return;
        }
        channels.push(Channel {
            rule: ChannelRule {
                name,
                min_severity: min,
            },
            env: env.to_string(),
            secret,
        });
    };
    if let Some(c) = &config.notify.slack {
        add("slack", c.min_severity, &c.url_env);
    }
    if let Some(c) = &config.notify.webhook {
        add("webhook", c.min_severity, &c.url_env);
    }
    if let Some(c) = &config.watch.pagerduty {
        add("pagerduty", c.min_severity, &c.routing_key_env);
    }
    let now = match &o.mock {
        Some(m) => i64::try_from(m.now).unwrap_or(i64::MAX),
        None => crate::clock::now_i64(),
    };
    Ok(Prepared {
        config,
        scope,
        project: if o.mock.is_some() { None } else { project },
        channels,
        now,
        warnings,
    })
}

/// What the last run left, and who we are.
struct Recalled {
    issue: Option<Issue>,
    state: State,
    usual_p95_s: Option<BTreeMap<String, f64>>,
}

/// The token's user, our fleet-health issue (its state) and the last
/// weekly report's p95 queue waits.
fn recall(c: &Client, p: &Prepared, warnings: &mut Vec<String>) -> anyhow::Result<Recalled> {
    let project = p.project.as_deref().unwrap_or_default();
    let me = crate::publish::whoami(c).map_err(|e| {
        anyhow::anyhow!(
            "could not tell who the token is (GET /user): {}",
            crate::gitlab::error::summary(&e)
        )
    })?;
    let label = p
        .config
        .watch
        .labels
        .first()
        .map_or("runneriq-watch", String::as_str);
    let issues = source::labelled_issues(c, project, label, false).map_err(|e| {
        anyhow::anyhow!(
            "could not read the fleet-health issue (issues labelled {label}): {}",
            crate::gitlab::error::summary(&e)
        )
    })?;
    let ours = |i: &&Issue| {
        i.author.as_ref().is_some_and(|a| a.id == me.id)
            && i.description
                .as_deref()
                .is_some_and(|d| d.lines().next().map(str::trim_end) == Some(render::MARKER))
    };
    let issue = issues.iter().find(ours).cloned();
    let state = issue
        .as_ref()
        .and_then(|i| i.description.as_deref())
        .map(State::parse)
        .unwrap_or_default();
    let usual_p95_s = match source::labelled_issues(c, project, &p.config.watch.report_label, true)
    {
        Ok(reports) => reports
            .iter()
            .filter(|i| i.author.as_ref().is_some_and(|a| a.id == me.id))
            .filter(|i| {
                i.description.as_deref().is_some_and(|d| {
                    d.lines()
                        .next()
                        .is_some_and(|l| l.starts_with(crate::report::render::MARKER_PREFIX))
                })
            })
            .find_map(|i| {
                i.description
                    .as_deref()
                    .and_then(crate::report::render::Summary::from_body)
            })
            .map(|s| {
                s.wait_p95_s
                    .into_iter()
                    .filter(|(k, v)| {
                        ["CRITICAL", "HIGH", "MEDIUM", "LOW"].contains(&k.as_str())
                            && v.is_finite()
                            && *v >= 0.0
                    })
                    .collect()
            }),
        Err(e) => {
            warnings.push(format!(
                "the last weekly report could not be read, no queue-wait spike is judged: {}",
                crate::gitlab::error::summary(&e)
            ));
            None
        }
    };
    Ok(Recalled {
        issue,
        state,
        usual_p95_s,
    })
}

/// What this run saw.
struct Seen {
    details: HashMap<u64, Runner>,
    fleet: Vec<FleetRunner>,
    active: Vec<Job>,
    finished: Vec<Job>,
    projects: u32,
    default_branch: Option<String>,
    /// Contact times to judge by (empty with --mock).
    contacted: HashMap<u64, i64>,
}

/// Runners list, details of what changed, one page of active and one of
/// finished jobs per project; requests counted by purpose.
fn observe(
    c: &Client,
    p: &Prepared,
    o: &WatchOptions,
    prev: &State,
    req: &mut Requests,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Seen> {
    let rules = &p.config.watch.rules;
    let before = c.request_count();
    let list = source::list_runners(c, &p.scope)?;
    req.runners = c.request_count() - before;

    let before = c.request_count();
    let ids = analysis::plan_details(&list, prev, p.now, rules);
    let (details, w) = source::runner_details(c, &ids);
    warnings.extend(w);
    req.details = c.request_count() - before;

    let before = c.request_count();
    let home = p.project.clone().unwrap_or_default();
    let projects: Vec<String> = match &p.scope {
        Scope::Group(g) => source::group_projects(c, g, rules.max_projects as usize)?,
        _ => vec![home.clone()],
    };
    let mut active = Vec::new();
    let mut finished = Vec::new();
    for pr in &projects {
        match source::active_jobs(c, pr) {
            Ok(j) => active.extend(j),
            Err(e) => warnings.push(format!(
                "project {pr}: pending jobs not readable ({})",
                crate::gitlab::error::summary(&e)
            )),
        }
        match source::finished_jobs(c, pr) {
            Ok(j) => finished.extend(j),
            Err(e) => warnings.push(format!(
                "project {pr}: finished jobs not readable ({})",
                crate::gitlab::error::summary(&e)
            )),
        }
    }
    req.jobs = c.request_count() - before;

    let before = c.request_count();
    let default_branch = o
        .default_branch
        .clone()
        .or_else(|| non_empty(std::env::var("CI_DEFAULT_BRANCH").ok()))
        .or_else(|| source::default_branch(c, &home));
    req.other += c.request_count() - before;

    let unknown = list
        .iter()
        .filter(|r| {
            !details.contains_key(&r.id) && !prev.runners.get(&r.id).is_some_and(|s| s.detailed)
        })
        .count();
    if unknown > 0 {
        warnings.push(format!(
            "{unknown} runner(s) not read in detail yet (watch.max_details: {} per run): their \
             tags are unknown until a later run",
            rules.max_details
        ));
    }
    let fleet = analysis::merge_fleet(&list, &details, prev, &HashMap::new());
    let contacted = contact_times(&list, &details, prev);
    Ok(Seen {
        details,
        fleet,
        active,
        finished,
        projects: projects.len() as u32,
        default_branch,
        contacted,
    })
}

fn contact_times(
    list: &[Runner],
    details: &HashMap<u64, Runner>,
    prev: &State,
) -> HashMap<u64, i64> {
    list.iter()
        .filter_map(|r| {
            let t = details
                .get(&r.id)
                .and_then(|d| d.contacted_at.as_deref())
                .and_then(crate::fleet::priority::parse_time)
                .or_else(|| prev.runners.get(&r.id).and_then(|s| s.contacted))?;
            Some((r.id, t))
        })
        .collect()
}

/// `--mock`: the embedded fleet and jobs, every runner "read in detail",
/// no contact times (the demo fleet's are GitLab's documentation example's).
fn observe_mock(m: &Mock) -> anyhow::Result<Seen> {
    let fleet = crate::fleet::model::parse_fleet(m.fleet.as_bytes(), m.origin)?;
    let jobs = crate::fleet::model::parse_jobs(m.jobs.as_bytes(), m.origin)?;
    let list: Vec<Runner> = fleet.iter().map(|f| f.runner.clone()).collect();
    let details: HashMap<u64, Runner> = list.iter().map(|r| (r.id, r.clone())).collect();
    let (active, finished): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .filter(|j| {
            matches!(
                j.status.as_str(),
                "pending" | "running" | "success" | "failed"
            )
        })
        .partition(|j| j.status == "pending" || j.status == "running");
    Ok(Seen {
        details,
        fleet,
        active,
        finished,
        projects: 1,
        default_branch: Some(m.default_branch.to_string()),
        contacted: HashMap::new(),
    })
}

/// Pure: the problems and what each channel gets.
fn judge(p: &Prepared, seen: &Seen, recalled: &Recalled) -> (Vec<Problem>, Decisions) {
    let rules: &WatchRules = &p.config.watch.rules;
    let obs = Observed {
        now: p.now,
        fleet: &seen.fleet,
        contacted: seen.contacted.clone(),
        active: &seen.active,
        finished: &seen.finished,
        usual_p95_s: recalled.usual_p95_s.as_ref(),
        default_branch: seen.default_branch.as_deref(),
    };
    let mut problems = analysis::assess(&obs, rules, &p.config.priority, &p.config.routing);
    let remembered = analysis::remember_fleet(&seen.fleet, &seen.details, &recalled.state);
    let channels: Vec<ChannelRule> = p.channels.iter().map(|c| c.rule).collect();
    let decisions = analysis::decide(
        &mut problems,
        &recalled.state,
        remembered,
        &channels,
        p.now,
        rules.cooldown_s,
    );
    (problems, decisions)
}

/// Sends the run's alerts (or, with `--dry-run`, prints them): one Slack
/// message, one webhook document, one PagerDuty event per problem.
fn alert(p: &Prepared, run: &Run, sends: &[Send], issue_url: Option<&str>) -> Vec<Delivery> {
    let mut out = Vec::new();
    for ch in &p.channels {
        let mine: Vec<&Send> = sends.iter().filter(|s| s.channel == ch.rule.name).collect();
        if mine.is_empty() {
            continue;
        }
        let dry = run.dry_run || run.mock;
        let mut deliver = |payload: serde_json::Value, covers: &[&Send]| {
            let outcome = if dry {
                Outcome::DryRun
            } else {
                let secret = ch.secret.as_deref().unwrap_or_default();
                let r = match ch.rule.name {
                    "pagerduty" => crate::publish::pagerduty::send(
                        &crate::publish::pagerduty::url(|k| std::env::var(k).ok()),
                        &payload,
                        &ch.env,
                    ),
                    "slack" => crate::publish::notify::post(
                        secret,
                        &payload,
                        &format!("the Slack webhook (${})", ch.env),
                    ),
                    _ => crate::publish::notify::post(
                        secret,
                        &payload,
                        &format!("the webhook (${})", ch.env),
                    ),
                };
                match r {
                    Ok(()) => Outcome::Sent,
                    Err(e) => Outcome::Failed(e),
                }
            };
            for s in covers {
                out.push(Delivery {
                    send: (*s).clone(),
                    outcome: outcome.clone(),
                });
            }
        };
        match ch.rule.name {
            "pagerduty" => {
                let key = ch.secret.as_deref().unwrap_or_default();
                for s in &mine {
                    if let Some(ev) = render::pagerduty_event(run, s, key) {
                        deliver(ev, std::slice::from_ref(s));
                    }
                }
            }
            "slack" => {
                deliver(render::slack_payload(run, &mine, issue_url), &mine);
            }
            _ => {
                deliver(render::webhook_payload(run, &mine), &mine);
            }
        }
    }
    out
}

/// How many writes [`record`] makes: the first run opens the issue (the
/// job's only storage; closed at once when all is clear); an open issue is
/// edited on every run; a closed one only when it reopens, when the state
/// changed in a way worth an edit, or once per `refresh_s` (so remembered
/// contact times stay fresh and runner details are not read again).
fn writes(recalled: &Recalled, open_problems: bool, state: &State, refresh_s: u64) -> u64 {
    match &recalled.issue {
        None => 1 + u64::from(!open_problems),
        Some(i) => u64::from(
            i.state != "closed"
                || open_problems
                || state.significant() != recalled.state.significant()
                || state.at.saturating_sub(recalled.state.at) >= refresh_s as i64,
        ),
    }
}

/// Writes the fleet-health issue: opened on the first run, edited in place
/// while problems are open, closed when all is clear.
fn record(
    c: &Client,
    p: &Prepared,
    recalled: &Recalled,
    run: &Run,
    state: &State,
) -> anyhow::Result<IssueOutcome> {
    let project = p.project.as_deref().unwrap_or_default();
    let title = render::issue_title(run);
    let body = render::issue_body(run, state);
    let open_problems = !run.problems.is_empty();
    let fail = |e: crate::gitlab::ApiError| {
        anyhow::anyhow!(
            "could not write the fleet-health issue ({} {}): {} — the token needs the `api` \
             scope and the Reporter role to create or edit issues",
            e.method(),
            e.endpoint(),
            crate::gitlab::error::summary(&e)
        )
    };
    let refresh_s = p.config.watch.rules.stale_s;
    match &recalled.issue {
        None if run.dry_run => Ok(IssueOutcome::WouldCreate),
        None => {
            let i = crate::publish::issues::open(c, project, &title, &body, &p.config.watch.labels)
                .map_err(fail)?;
            if !open_problems {
                crate::publish::issues::rewrite(c, project, i.iid, &title, &body, Some("close"))
                    .map_err(fail)?;
            }
            Ok(IssueOutcome::Created {
                iid: i.iid,
                closed: !open_problems,
            })
        }
        Some(i) => {
            let closed = i.state == "closed";
            let state_event = match (closed, open_problems) {
                (true, true) => Some("reopen"),
                (false, false) => Some("close"),
                _ => None,
            };
            if writes(recalled, open_problems, state, refresh_s) == 0 {
                return Ok(IssueOutcome::Unchanged { iid: i.iid });
            }
            if run.dry_run {
                return Ok(IssueOutcome::WouldUpdate {
                    iid: i.iid,
                    state_event: state_event.map(str::to_string),
                });
            }
            crate::publish::issues::rewrite(c, project, i.iid, &title, &body, state_event)
                .map_err(fail)?;
            Ok(IssueOutcome::Updated {
                iid: i.iid,
                state_event: state_event.map(str::to_string),
            })
        }
    }
}

fn counts(seen: &Seen) -> Counts {
    let mut c = Counts {
        runners: seen.fleet.len() as u32,
        projects: seen.projects,
        ..Counts::default()
    };
    for f in &seen.fleet {
        if f.paused() {
            c.paused += 1;
        } else if f.status() == "online" || f.status() == "active" {
            c.online += 1;
        } else {
            c.offline += 1;
        }
    }
    c.pending_jobs = seen.active.iter().filter(|j| j.status == "pending").count() as u32;
    c.running_jobs = seen.active.iter().filter(|j| j.status == "running").count() as u32;
    c
}

/// `runneriq watch`.
pub fn run(o: WatchOptions) -> anyhow::Result<ExitCode> {
    let p = prepare(&o)?;
    let mut warnings = p.warnings.clone();
    let mut requests = Requests::default();
    let client = match &o.mock {
        Some(_) => None,
        None => Some(crate::gitlab::api_client(o.gitlab_url.clone())?),
    };
    let recalled = match &client {
        Some(c) => {
            let before = c.request_count();
            let r = recall(c, &p, &mut warnings)?;
            requests.issues += c.request_count() - before;
            r
        }
        None => Recalled {
            issue: None,
            state: State::default(),
            usual_p95_s: None,
        },
    };
    let seen = match (&client, &o.mock) {
        (Some(c), _) => observe(c, &p, &o, &recalled.state, &mut requests, &mut warnings)?,
        (None, Some(m)) => observe_mock(m)?,
        (None, None) => unreachable!("a client unless --mock"),
    };
    let (problems, mut decisions) = judge(&p, &seen, &recalled);
    let mut run = Run {
        scope: match &o.mock {
            Some(_) => "embedded demo fleet".to_string(),
            None => p.scope.describe(),
        },
        checked_at: p.now,
        checked_at_utc: render::utc(p.now),
        mock: o.mock.is_some(),
        dry_run: o.dry_run || o.mock.is_some(),
        counts: counts(&seen),
        problems,
        resolved: decisions.resolved.clone(),
        deliveries: Vec::new(),
        cooled: decisions.cooled.clone(),
        requests: Requests::default(),
        issue: IssueOutcome::NotPosted,
        warnings: Vec::new(),
        window_s: p.config.watch.rules.window_s,
    };
    let issue_url = recalled.issue.as_ref().and_then(|i| i.web_url.clone());
    run.deliveries = alert(&p, &run, &decisions.sends, issue_url.as_deref());
    let failed: Vec<Send> = run
        .deliveries
        .iter()
        .filter(|d| matches!(d.outcome, Outcome::Failed(_)))
        .map(|d| d.send.clone())
        .collect();
    decisions.unsent(&failed, &recalled.state);
    if let Some(c) = &client {
        // The issue's request counts itself: what it says is the run so far
        // plus its own write (or none).
        requests.total = c.request_count();
        let writes = if o.dry_run {
            0
        } else {
            writes(
                &recalled,
                !run.problems.is_empty(),
                &decisions.state,
                p.config.watch.rules.stale_s,
            )
        };
        run.requests = Requests {
            total: requests.total + writes,
            issues: requests.issues + writes,
            ..requests.clone()
        };
        run.warnings = warnings.clone();
        let before = c.request_count();
        run.issue = record(c, &p, &recalled, &run, &decisions.state)?;
        requests.issues += c.request_count() - before;
        requests.total = c.request_count();
        run.requests = requests;
    }
    run.warnings = warnings;
    print(&o, &p, &run, &decisions.state)?;
    for w in &run.warnings {
        eprintln!("runneriq: warning: {w}");
    }
    for d in &run.deliveries {
        if let Outcome::Failed(e) = &d.outcome {
            eprintln!("runneriq: error: {e}");
        }
    }
    let alerts = if run.dry_run {
        format!("{} alert(s) not sent (dry run)", run.deliveries.len())
    } else {
        format!(
            "{} alert(s) sent, {} failed",
            run.deliveries.len() - failed.len(),
            failed.len()
        )
    };
    eprintln!(
        "runneriq: watch: {} open problem(s), {} resolved, {alerts}, issue {}, {} API requests",
        run.problems.len(),
        run.resolved.len(),
        serde_json::to_value(&run.issue)
            .ok()
            .and_then(|v| v["action"].as_str().map(str::to_string))
            .unwrap_or_default(),
        run.requests.total
    );
    if !failed.is_empty() {
        return Err(anyhow::anyhow!(
            "{} alert(s) could not be delivered (they are tried again on the next run)",
            failed.len()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// stdout: the Markdown (the issue as posted or as it would be, then the
/// run) or the JSON; with `--dry-run` the payloads as they would be sent.
fn print(o: &WatchOptions, p: &Prepared, run: &Run, state: &State) -> anyhow::Result<()> {
    let mut text = match o.format.unwrap_or(NoteFormat::Md) {
        NoteFormat::Md => render::markdown(run, state),
        NoteFormat::Json => {
            let mut v = render::json(run);
            if run.dry_run {
                v["would_send"] = would_send(p, run);
            }
            let mut s = serde_json::to_string_pretty(&v).context("encoding JSON")?;
            s.push('\n');
            s
        }
    };
    if run.dry_run && o.format.unwrap_or(NoteFormat::Md) == NoteFormat::Md {
        let payloads = would_send(p, run);
        if payloads.as_array().is_some_and(|a| !a.is_empty()) {
            text.push_str("\n### Would send\n\n");
            for v in payloads.as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "{}\n",
                    crate::publish::sanitize::fence_block(
                        "json",
                        &serde_json::to_string_pretty(v).unwrap_or_default()
                    )
                ));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(()),
    }
}

/// The payloads a dry run would send, secrets replaced by their variable's
/// name (`"routing_key": "$RUNNERIQ_PAGERDUTY_ROUTING_KEY"`).
fn would_send(p: &Prepared, run: &Run) -> serde_json::Value {
    let mut out = Vec::new();
    let mut by_channel: BTreeMap<&str, Vec<&Send>> = BTreeMap::new();
    for d in &run.deliveries {
        by_channel.entry(d.send.channel).or_default().push(&d.send);
    }
    for (ch, sends) in by_channel {
        match ch {
            "slack" => out.push(serde_json::json!({"channel": "slack", "payload": render::slack_payload(run, &sends, None)})),
            "webhook" => out.push(serde_json::json!({"channel": "webhook", "payload": render::webhook_payload(run, &sends)})),
            _ => {
                let env = p
                    .channels
                    .iter()
                    .find(|c| c.rule.name == "pagerduty")
                    .map_or(String::new(), |c| format!("${}", c.env));
                for s in sends {
                    if let Some(ev) = render::pagerduty_event(run, s, &env) {
                        out.push(serde_json::json!({"channel": "pagerduty", "payload": ev}));
                    }
                }
            }
        }
    }
    serde_json::Value::Array(out)
}
