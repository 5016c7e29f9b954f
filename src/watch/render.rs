//! `runneriq watch` written out: the fleet-health issue (marker first, a
//! line per open problem, the hidden state last), the Markdown and JSON of
//! a run, and the alert payloads (Slack, generic webhook, PagerDuty).
//!
//! Everything that came from GitLab (runner descriptions, tags, job names,
//! and the state read back from the issue) goes through
//! [`crate::publish::sanitize`] (Markdown) or Slack's escaping here.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use super::analysis::{Action, Kind, Problem, Resolved, Send, State};
use crate::fleet::duration_words;
use crate::publish::notify::{slack_code, slack_escape, slack_link};
use crate::publish::pagerduty;
use crate::publish::sanitize::{code_span, guard, inline, text_link};

/// First line of the fleet-health issue: found again by it.
pub const MARKER: &str = "<!-- runneriq:watch -->";
/// Problems listed in one Slack message.
const MAX_LISTED: usize = 10;
/// Problem lines in the issue (GitLab's description limit is 1,000,000
/// characters; the state takes at most a quarter of it).
const MAX_LINES: usize = 200;

/// The fleet in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub runners: u32,
    pub online: u32,
    pub offline: u32,
    pub paused: u32,
    pub pending_jobs: u32,
    pub running_jobs: u32,
    pub projects: u32,
}

/// API requests of the run, by purpose (the client's counter, retries
/// included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    pub total: u64,
    pub runners: u64,
    pub details: u64,
    pub jobs: u64,
    pub issues: u64,
    pub other: u64,
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Sent,
    DryRun,
    Failed(String),
}

/// One delivery of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    #[serde(flatten)]
    pub send: Send,
    pub outcome: Outcome,
}

/// What happened to the fleet-health issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum IssueOutcome {
    /// `closed`: all clear on the first run, closed at once.
    Created {
        iid: u64,
        closed: bool,
    },
    Updated {
        iid: u64,
        state_event: Option<String>,
    },
    Unchanged {
        iid: u64,
    },
    /// `--dry-run`: what would have happened.
    WouldCreate,
    WouldUpdate {
        iid: u64,
        state_event: Option<String>,
    },
    /// `--mock`: there is no GitLab.
    NotPosted,
}

/// One run of `watch`, as rendered.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub scope: String,
    /// Seconds since 1970.
    pub checked_at: i64,
    pub checked_at_utc: String,
    pub mock: bool,
    pub dry_run: bool,
    pub counts: Counts,
    pub problems: Vec<Problem>,
    pub resolved: Vec<Resolved>,
    pub deliveries: Vec<Delivery>,
    /// (channel, fingerprint) held back by the cooldown.
    pub cooled: Vec<(String, String)>,
    pub requests: Requests,
    pub issue: IssueOutcome,
    pub warnings: Vec<String>,
    /// The window of queue waits and infrastructure failures (seconds).
    pub window_s: u64,
}

/// `2026-01-01 10:00 UTC`.
pub fn utc(t: i64) -> String {
    let d =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute()
    )
}

fn words(s: u64) -> String {
    duration_words(s as f64)
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The kind in a few words, for headings and messages.
pub fn kind_words(k: Kind) -> &'static str {
    match k {
        Kind::RunnerOffline => "Runner offline",
        Kind::RunnerStale => "Runner stale",
        Kind::RunnerPaused => "Runner paused",
        Kind::PendingNoRunner => "Jobs pending: no online runner has their tags",
        Kind::PendingBusy => "Jobs pending: not enough free slots",
        Kind::PendingGate => "Jobs pending: refused by the runners with their tags",
        Kind::PendingUnexplained => "Jobs pending: eligible runners idle",
        Kind::QueueSpike => "Queue-wait spike",
        Kind::InfraFailures => "Runner failing jobs (infrastructure)",
    }
}

/// How a piece of outside text is made safe for the medium.
struct Style {
    /// A name (runner label, job name, tag).
    name: fn(&str) -> String,
    /// Free text we did not write.
    text: fn(&str) -> String,
}

const MD: Style = Style {
    name: code_span,
    text: inline,
};

fn plain_name(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::text::truncate_chars(&one, 200).to_string()
}

const PLAIN: Style = Style {
    name: plain_name,
    text: plain_name,
};

const SLACK: Style = Style {
    name: slack_code,
    text: slack_escape,
};

fn runner_words(st: &Style, p: &Problem) -> String {
    match &p.runner {
        Some(r) => format!("{} (runner {})", (st.name)(&r.label), r.id),
        None => (st.text)(&p.subject),
    }
}

fn tags_words(st: &Style, tags: &[String]) -> String {
    if tags.is_empty() {
        return "no tags (untagged)".into();
    }
    let t: Vec<String> = tags.iter().map(|t| (st.name)(t)).collect();
    format!("tags {}", t.join(", "))
}

/// One problem in one sentence.
fn sentence(st: &Style, p: &Problem, window_s: u64) -> String {
    let jobs = |p: &Problem| {
        format!(
            "{} pending up to {} on {}",
            plural(p.count, "job", "jobs"),
            words(p.longest_wait_s.unwrap_or(0)),
            tags_words(st, &p.tags)
        )
    };
    match p.kind {
        Kind::RunnerOffline => {
            let status = p.runner.as_ref().map_or("offline", |r| r.status.as_str());
            format!(
                "{} is {}{}",
                runner_words(st, p),
                (st.text)(status),
                p.silent_s
                    .map(|s| format!(", last contact {} ago", words(s)))
                    .unwrap_or_default()
            )
        }
        Kind::RunnerStale => format!(
            "{} has not contacted GitLab for {} (GitLab still lists it online)",
            runner_words(st, p),
            words(p.silent_s.unwrap_or(0))
        ),
        Kind::RunnerPaused => format!("{} is paused", runner_words(st, p)),
        Kind::PendingNoRunner => {
            let holders = if p.holders.is_empty() {
                "no runner of the fleet has them".to_string()
            } else {
                let h: Vec<String> = p
                    .holders
                    .iter()
                    .map(|r| {
                        format!(
                            "{} (runner {}, {})",
                            (st.name)(&r.label),
                            r.id,
                            if r.paused {
                                "paused".to_string()
                            } else {
                                (st.text)(&r.status)
                            }
                        )
                    })
                    .collect();
                format!(
                    "only {} {} them",
                    h.join(", "),
                    if h.len() == 1 { "has" } else { "have" }
                )
            };
            format!("{}: no online runner has them; {holders}", jobs(p))
        }
        Kind::PendingBusy => {
            let (busy, total) = p.slots.unwrap_or((0, 0));
            format!(
                "{}: more jobs wait than the eligible runners have free slots — {} for {} free of their {} ({busy} in use)",
                jobs(p),
                plural(p.waiting.unwrap_or(0), "job", "jobs"),
                total.saturating_sub(busy),
                plural(total, "slot", "slots"),
            )
        }
        Kind::PendingGate => format!(
            "{}: the online runners with these tags refuse them ({})",
            jobs(p),
            (st.text)(p.gate.as_deref().unwrap_or("gate"))
        ),
        Kind::PendingUnexplained => {
            let (busy, total) = p.slots.unwrap_or((0, 0));
            format!(
                "{}: eligible runners have {} free and do not take them (check their logs and `concurrent`)",
                jobs(p),
                plural(total.saturating_sub(busy), "slot", "slots")
            )
        }
        Kind::QueueSpike => format!(
            "{} jobs waited {} at p95 in the last {} ({}), against a usual {} (the last weekly report)",
            p.class.as_deref().unwrap_or("?"),
            words(p.p95_s.unwrap_or(0.0) as u64),
            words(window_s),
            plural(p.count, "job", "jobs"),
            words(p.usual_p95_s.unwrap_or(0.0) as u64)
        ),
        Kind::InfraFailures => {
            let r: Vec<String> = p
                .reasons
                .iter()
                .map(|(k, n)| format!("{} ×{n}", (st.name)(k)))
                .collect();
            format!(
                "{} failed {} for infrastructure reasons in the last {} ({})",
                runner_words(st, p),
                plural(p.count, "job", "jobs"),
                words(window_s),
                r.join(", ")
            )
        }
    }
}

/// A problem in plain text (PagerDuty's summary, logs).
pub fn plain(p: &Problem, window_s: u64) -> String {
    sentence(&PLAIN, p, window_s)
}

/// A resolved problem in a few words, from what the state remembered.
fn resolved_sentence(st: &Style, r: &Resolved) -> String {
    format!(
        "{} · {} — resolved",
        kind_words(r.kind),
        (st.text)(&r.subject)
    )
}

/// The Markdown line of one open problem.
fn problem_line(p: &Problem, run: &Run) -> String {
    let mut line = format!(
        "- **{}** · {} · {} · since {}",
        p.severity.as_str(),
        kind_words(p.kind),
        sentence(&MD, p, run.window_s),
        utc(p.since)
    );
    if !p.jobs.is_empty() && p.kind != Kind::QueueSpike {
        let jobs: Vec<String> = p
            .jobs
            .iter()
            .map(|j| {
                let label = format!("{} (job {})", j.name, j.id);
                match j.web_url.as_deref() {
                    Some(u) => text_link(&label, Some(u)),
                    None => code_span(&label),
                }
            })
            .collect();
        let _ = write!(line, "\n  - jobs: {}", jobs.join(", "));
        if p.count as usize > p.jobs.len() {
            let _ = write!(line, " and {} more", p.count as usize - p.jobs.len());
        }
    }
    let _ = write!(line, " <!-- fp:{} -->", p.fingerprint);
    line
}

/// The fleet-health issue's title.
pub fn issue_title(run: &Run) -> String {
    match run.problems.len() {
        0 => "RunnerIQ fleet health: all clear".into(),
        n => format!(
            "RunnerIQ fleet health: {}",
            plural(n as u32, "open problem", "open problems")
        ),
    }
}

fn header(o: &mut String, run: &Run) {
    let c = &run.counts;
    let _ = writeln!(
        o,
        "_Checked {} · {} · {} ({} online, {} offline, {} paused) · {} pending, {} running in {} · {} API requests_\n",
        run.checked_at_utc,
        inline(&run.scope),
        plural(c.runners, "runner", "runners"),
        c.online,
        c.offline,
        c.paused,
        plural(c.pending_jobs, "job", "jobs"),
        c.running_jobs,
        plural(c.projects, "project", "projects"),
        run.requests.total
    );
}

/// The fleet-health issue: marker, a line per open problem (most severe
/// first), the state as its last line.
pub fn issue_body(run: &Run, state: &State) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{MARKER}");
    if run.problems.is_empty() {
        let _ = writeln!(o, "## Fleet health: all clear\n");
    } else {
        let _ = writeln!(
            o,
            "## Fleet health: {}\n",
            plural(run.problems.len() as u32, "open problem", "open problems")
        );
    }
    header(&mut o, run);
    for p in run.problems.iter().take(MAX_LINES) {
        let _ = writeln!(o, "{}", problem_line(p, run));
    }
    if run.problems.len() > MAX_LINES {
        let _ = writeln!(
            o,
            "- …and {} more, less severe (`runneriq watch --format json` lists them all)",
            run.problems.len() - MAX_LINES
        );
    }
    if !run.problems.is_empty() {
        o.push('\n');
    }
    if !run.resolved.is_empty() {
        let _ = writeln!(o, "Resolved since the last check:\n");
        for r in &run.resolved {
            let _ = writeln!(o, "- {}", resolved_sentence(&MD, r));
        }
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "<sub>Kept by RunnerIQ v{} (`runneriq watch`): one line per open problem, edited in place on every check, closed when all is clear. Thresholds: `watch:` in `.runneriq.yml`.</sub>\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut body = guard(&o);
    body.push_str(&state.marker());
    body.push('\n');
    body
}

/// The run as Markdown (stdout): the issue's body as it is (or would be)
/// posted, then what was sent.
pub fn markdown(run: &Run, state: &State) -> String {
    let mut o = issue_body(run, state);
    let mut t = String::new();
    let _ = writeln!(t, "\n### This run\n");
    let _ = writeln!(t, "- Issue: {}", issue_words(&run.issue));
    let r = &run.requests;
    let _ = writeln!(
        t,
        "- API requests: {} (runners list {}, runner details {}, jobs {}, issues {}, other {})",
        r.total, r.runners, r.details, r.jobs, r.issues, r.other
    );
    if run.deliveries.is_empty() {
        let _ = writeln!(t, "- Alerts: none due");
    }
    for d in &run.deliveries {
        let _ = writeln!(
            t,
            "- {} {} `{}`: {}",
            d.send.channel,
            match d.send.action {
                Action::Trigger => "trigger",
                Action::Reminder => "reminder",
                Action::Resolve => "resolve",
            },
            d.send.fingerprint,
            match &d.outcome {
                Outcome::Sent => "sent".to_string(),
                Outcome::DryRun => "would send (dry run)".to_string(),
                Outcome::Failed(e) => format!("failed: {}", inline(e)),
            }
        );
    }
    if !run.cooled.is_empty() {
        let _ = writeln!(t, "- Held back by the cooldown: {}", run.cooled.len());
    }
    for w in &run.warnings {
        let _ = writeln!(t, "- Warning: {}", inline(w));
    }
    o.push_str(&guard(&t));
    if !o.ends_with('\n') {
        o.push('\n');
    }
    o
}

fn issue_words(i: &IssueOutcome) -> String {
    match i {
        IssueOutcome::Created { iid, closed } => format!(
            "created (issue {iid}){}",
            if *closed { ", closed: all clear" } else { "" }
        ),
        IssueOutcome::Updated { iid, state_event } => format!(
            "updated (issue {iid}){}",
            state_event
                .as_deref()
                .map(|e| format!(", {e}d"))
                .unwrap_or_default()
        ),
        IssueOutcome::Unchanged { iid } => format!("unchanged (issue {iid})"),
        IssueOutcome::WouldCreate => "would be created (dry run)".into(),
        IssueOutcome::WouldUpdate { iid, state_event } => format!(
            "would be updated (issue {iid}{}, dry run)",
            state_event
                .as_deref()
                .map(|e| format!(", {e}d"))
                .unwrap_or_default()
        ),
        IssueOutcome::NotPosted => "not posted (--mock: embedded data, no GitLab)".into(),
    }
}

/// The run as JSON.
pub fn json(run: &Run) -> Value {
    serde_json::to_value(run).unwrap_or(Value::Null)
}

fn find<'a>(run: &'a Run, fp: &str) -> Option<&'a Problem> {
    run.problems.iter().find(|p| p.fingerprint == fp)
}

fn find_resolved<'a>(run: &'a Run, fp: &str) -> Option<&'a Resolved> {
    run.resolved.iter().find(|r| r.fingerprint == fp)
}

/// One Slack message for the run's sends to Slack.
pub fn slack_payload(run: &Run, sends: &[&Send], issue_url: Option<&str>) -> Value {
    let open = sends.iter().filter(|s| s.action != Action::Resolve).count();
    let resolved = sends.len() - open;
    let mut text = format!(
        "*RunnerIQ watch* · {} · {}",
        slack_link(issue_url, "fleet health"),
        slack_code(&run.scope)
    );
    if open > 0 {
        text.push_str(&format!(" · {open} open"));
    }
    if resolved > 0 {
        text.push_str(&format!(" · {resolved} resolved"));
    }
    for s in sends.iter().take(MAX_LISTED) {
        let line = match (s.action, find(run, &s.fingerprint)) {
            (Action::Resolve, _) => match find_resolved(run, &s.fingerprint) {
                Some(r) => format!("\n• *resolved* · {}", resolved_sentence(&SLACK, r)),
                None => continue,
            },
            (a, Some(p)) => format!(
                "\n• *{}*{} · {} · {}",
                p.severity.as_str(),
                if a == Action::Reminder {
                    " (still open)"
                } else {
                    ""
                },
                kind_words(p.kind),
                sentence(&SLACK, p, run.window_s)
            ),
            (_, None) => continue,
        };
        text.push_str(&line);
    }
    if sends.len() > MAX_LISTED {
        text.push_str(&format!("\n…and {} more", sends.len() - MAX_LISTED));
    }
    json!({ "text": text })
}

/// The generic webhook's document (`"event": "runneriq.watch"`).
pub fn webhook_payload(run: &Run, sends: &[&Send]) -> Value {
    let items: Vec<Value> = sends
        .iter()
        .filter_map(|s| match s.action {
            Action::Resolve => find_resolved(run, &s.fingerprint).map(|r| {
                json!({
                    "fingerprint": r.fingerprint,
                    "action": "resolve",
                    "kind": r.kind.as_str(),
                    "since": r.since,
                    "subject": plain_name(&r.subject),
                })
            }),
            a => find(run, &s.fingerprint).map(|p| {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                v["action"] = serde_json::to_value(a).unwrap_or(Value::Null);
                v["summary"] = plain(p, run.window_s).into();
                v
            }),
        })
        .collect();
    json!({
        "event": "runneriq.watch",
        "version": env!("CARGO_PKG_VERSION"),
        "scope": run.scope,
        "checked_at": run.checked_at,
        "open_problems": run.problems.len(),
        "problems": items,
    })
}

/// PagerDuty's dedup key of a problem: the same for its trigger and resolve.
pub fn dedup_key(fingerprint: &str) -> String {
    format!("runneriq-watch-{fingerprint}")
}

/// The PagerDuty event of one send (`None` when the problem is unknown).
pub fn pagerduty_event(run: &Run, s: &Send, routing_key: &str) -> Option<Value> {
    let key = dedup_key(&s.fingerprint);
    match s.action {
        Action::Resolve => Some(pagerduty::resolve(routing_key, &key)),
        _ => {
            let p = find(run, &s.fingerprint)?;
            let summary = plain(p, run.window_s);
            let component = p.runner.as_ref().map(|r| format!("runner {}", r.id));
            let source = format!("runneriq watch: {}", run.scope);
            Some(pagerduty::trigger(
                routing_key,
                &pagerduty::Trigger {
                    dedup_key: &key,
                    summary: &summary,
                    source: &source,
                    severity: p.severity,
                    component: component.as_deref(),
                    group: Some(&run.scope),
                    class: p.kind.as_str(),
                    custom_details: json!({
                        "fingerprint": p.fingerprint,
                        "since": utc(p.since),
                        "tags": p.tags,
                        "jobs": p.count,
                    }),
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::Severity;
    use crate::watch::analysis::{JobRef, RunnerRef};

    fn problem(kind: Kind, label: &str) -> Problem {
        let mut p = Problem {
            fingerprint: "0123456789abcdef".into(),
            kind,
            severity: Severity::High,
            since: 1_767_261_600,
            subject: format!("{label} (runner 9)"),
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
            reasons: Default::default(),
            silent_s: None,
        };
        p.kind = kind;
        p.runner = Some(RunnerRef {
            id: 9,
            label: label.into(),
            status: "offline".into(),
            paused: false,
        });
        p
    }

    /// A line without its code spans (a run of n backticks up to the next
    /// run of exactly n), as CommonMark reads them.
    fn outside_code_spans(line: &str) -> String {
        let b: Vec<char> = line.chars().collect();
        let run_at = |i: usize| b[i..].iter().take_while(|c| **c == '`').count();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != '`' {
                out.push(b[i]);
                i += 1;
                continue;
            }
            let n = run_at(i);
            let mut j = i + n;
            let mut close = None;
            while j < b.len() {
                if b[j] == '`' {
                    let m = run_at(j);
                    if m == n {
                        close = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(end) => i = end,
                None => {
                    out.extend(&b[i..i + n]);
                    i += n;
                }
            }
        }
        out
    }

    fn run(problems: Vec<Problem>, resolved: Vec<Resolved>) -> Run {
        Run {
            scope: "project g/p".into(),
            checked_at: 1_767_261_600,
            checked_at_utc: utc(1_767_261_600),
            mock: false,
            dry_run: false,
            counts: Counts::default(),
            problems,
            resolved,
            deliveries: Vec::new(),
            cooled: Vec::new(),
            requests: Requests::default(),
            issue: IssueOutcome::NotPosted,
            warnings: Vec::new(),
            window_s: 3600,
        }
    }

    #[test]
    fn the_issue_body_is_inert_whatever_gitlab_says() {
        let hostile = "x`y\n/close @all #12 <img src=x>";
        let mut p = problem(Kind::RunnerOffline, hostile);
        p.jobs.push(JobRef {
            id: 3,
            name: "shard `#4`\n/merge".into(),
            project: None,
            git_ref: "main".into(),
            waited_s: 1,
            web_url: Some("javascript:alert(1)".into()),
        });
        p.kind = Kind::PendingNoRunner;
        p.tags = vec!["gpu`".into(), "@all".into()];
        p.holders = p.runner.clone().into_iter().collect();
        let r = run(
            vec![p],
            vec![Resolved {
                fingerprint: "fedcba9876543210".into(),
                kind: Kind::RunnerOffline,
                since: 1,
                subject: "y\n/close #5 @here".into(),
            }],
        );
        let body = issue_body(&r, &State::default());
        assert!(body.starts_with(MARKER), "{body}");
        for line in body.lines() {
            assert!(!line.trim_start().starts_with('/'), "{line}");
            let outside = outside_code_spans(line);
            assert!(!outside.contains("<img"), "{line}");
            assert!(!line.contains("javascript:"), "{line}");
        }
        // Mentions broken everywhere, even in code spans.
        assert!(!body.contains("@all") && !body.contains("@here"), "{body}");
        assert!(!body.contains("#5"), "bare reference: {body}");
        assert!(body.ends_with(" -->\n"), "state last: {body}");
    }

    #[test]
    fn slack_text_cannot_ping_or_link_and_resolves_are_listed() {
        let p = problem(Kind::RunnerOffline, "<!channel> r1 <https://evil|x>");
        let resolved = Resolved {
            fingerprint: "fedcba9876543210".into(),
            kind: Kind::RunnerStale,
            since: 1,
            subject: "<@U123> r2".into(),
        };
        let r = run(vec![p], vec![resolved]);
        let sends = [
            Send {
                channel: "slack",
                fingerprint: "0123456789abcdef".into(),
                action: Action::Trigger,
            },
            Send {
                channel: "slack",
                fingerprint: "fedcba9876543210".into(),
                action: Action::Resolve,
            },
        ];
        let refs: Vec<&Send> = sends.iter().collect();
        let text =
            slack_payload(&r, &refs, Some("https://gitlab.example.com/g/p/-/issues/5"))["text"]
                .as_str()
                .unwrap()
                .to_string();
        assert!(
            !text.contains("<!channel>") && !text.contains("<@U123>"),
            "{text}"
        );
        assert!(!text.contains("<https://evil"), "{text}");
        assert!(text.contains("<https://gitlab.example.com/g/p/-/issues/5|fleet health>"));
        assert!(text.contains("1 open · 1 resolved"), "{text}");
        assert!(text.contains("*resolved* · Runner stale"), "{text}");
    }

    #[test]
    fn pagerduty_events_carry_the_problem_and_the_same_dedup_key() {
        let r = run(vec![problem(Kind::RunnerOffline, "r1")], Vec::new());
        let s = Send {
            channel: "pagerduty",
            fingerprint: "0123456789abcdef".into(),
            action: Action::Trigger,
        };
        let t = pagerduty_event(&r, &s, "KEY").unwrap();
        assert_eq!(t["dedup_key"], "runneriq-watch-0123456789abcdef");
        assert_eq!(
            t["payload"]["summary"],
            "`r1` (runner 9) is offline".replace('`', "")
        );
        assert_eq!(t["payload"]["class"], "runner_offline");
        let resolve = pagerduty_event(
            &r,
            &Send {
                action: Action::Resolve,
                ..s.clone()
            },
            "KEY",
        )
        .unwrap();
        assert_eq!(resolve["dedup_key"], t["dedup_key"]);
        // A problem this run does not know is not triggered.
        let unknown = Send {
            fingerprint: "ffffffffffffffff".into(),
            ..s
        };
        assert!(pagerduty_event(&r, &unknown, "KEY").is_none());
    }
}
