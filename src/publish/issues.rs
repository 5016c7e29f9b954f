//! One issue per failure fingerprint on the default branch: created the first
//! time, updated when it fails again, reopened when it comes back after being
//! closed — never duplicated.
//!
//! The issue is found by its label (`notify.issues.labels[0]`, default
//! `runneriq`) and a hidden first line
//! `<!-- runneriq:failure fp=<fingerprint> seen=N first=P last=P at=S -->`, which
//! also keeps the count, the first and last pipeline and when the issue was
//! last written (the cooldown: an open issue is not rewritten more often).

use std::collections::HashMap;
use std::fmt::Write;

use serde::Serialize;

use crate::diagnose::note::{JobReport, Note};
use crate::gitlab::models::Issue;
use crate::gitlab::{ApiError, Client, project_ref};
use crate::publish::sanitize;

pub const ISSUE_MARKER_PREFIX: &str = "<!-- runneriq:failure ";
/// Pages of 100 labelled issues searched.
const MAX_ISSUE_PAGES: usize = 5;
/// GitLab's title limit.
const MAX_TITLE: usize = 255;

/// What the hidden first line of an issue records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    pub fingerprint: String,
    pub seen: u64,
    pub first: u64,
    pub last: u64,
    pub at: u64,
}

impl Meta {
    pub fn parse(description: &str) -> Option<Meta> {
        let line = description.lines().next()?.trim();
        let inner = line
            .strip_prefix(ISSUE_MARKER_PREFIX)?
            .strip_suffix("-->")?;
        let mut m = Meta::default();
        for kv in inner.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            match k {
                "fp" => m.fingerprint = v.to_string(),
                "seen" => m.seen = v.parse().ok()?,
                "first" => m.first = v.parse().ok()?,
                "last" => m.last = v.parse().ok()?,
                "at" => m.at = v.parse().ok()?,
                _ => {}
            }
        }
        (!m.fingerprint.is_empty()).then_some(m)
    }

    pub fn line(&self) -> String {
        format!(
            "{ISSUE_MARKER_PREFIX}fp={} seen={} first={} last={} at={} -->",
            self.fingerprint, self.seen, self.first, self.last, self.at
        )
    }
}

/// What happened to one failure's issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueOutcome {
    Created {
        iid: u64,
    },
    Updated {
        iid: u64,
        reopened: bool,
    },
    /// Open, written within the cooldown or already recording this pipeline.
    Unchanged {
        iid: u64,
    },
}

/// Our issues by fingerprint (label-filtered, all states, opened by the
/// token's user: a labelled issue by anybody else is never ours).
pub fn find_all(
    client: &Client,
    project: &str,
    label: &str,
    me: &crate::publish::Me,
) -> Result<HashMap<String, (Issue, Meta)>, ApiError> {
    let path = format!("/projects/{}/issues", project_ref(project));
    let issues: Vec<Issue> = client.get_all(
        &path,
        &[
            ("labels", label.to_string()),
            ("state", "all".to_string()),
            ("order_by", "updated_at".to_string()),
            ("sort", "desc".to_string()),
        ],
        MAX_ISSUE_PAGES,
    )?;
    let mut out = HashMap::new();
    for i in issues {
        if i.author.as_ref().is_none_or(|a| a.id != me.id) {
            continue;
        }
        let Some(m) = i.description.as_deref().and_then(Meta::parse) else {
            continue;
        };
        // Newest first: an older duplicate (made by hand) never wins.
        out.entry(m.fingerprint.clone()).or_insert((i, m));
    }
    Ok(out)
}

/// The issue title: plain text, one line.
pub fn title(r: &JobReport, branch: &str) -> String {
    let what = r.title.as_deref().unwrap_or("Job failed");
    let t = format!("CI failure on {branch}: {what} in {}", r.name);
    // Plain text, but GitLab renders references in titles: a `@name` would
    // read as a mention and a `#12` as an issue. Break both.
    let mut clean = String::with_capacity(t.len());
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_control() => clean.push(' '),
            '@' => clean.push_str("@\u{200b}"),
            '#' if chars.peek().is_some_and(char::is_ascii_digit) => clean.push_str("#\u{200b}"),
            c => clean.push(c),
        }
    }
    let t = clean;
    sanitize::truncate_chars(&t, MAX_TITLE).to_string()
}

/// The issue description (safe Markdown), led by the hidden meta line.
pub fn description(meta: &Meta, r: &JobReport, note: &Note, branch: &str) -> String {
    let mut d = String::new();
    let _ = writeln!(d, "{}", meta.line());
    let _ = writeln!(
        d,
        "### {} · {} · stage {}\n",
        sanitize::inline(r.title.as_deref().unwrap_or("Job failed")),
        sanitize::link(&sanitize::code_span(&r.name), r.web_url.as_deref()),
        sanitize::code_span(&r.stage)
    );
    // Pipeline numbers only in link text or code: a bare `#123` is an issue.
    let pipeline = |id: u64| {
        let url = if id == note.pipeline_id {
            note.pipeline_url.clone()
        } else {
            crate::diagnose::note::sibling_pipeline_url(note.pipeline_url.as_deref(), id)
        };
        sanitize::text_link(&format!("pipeline #{id}"), url.as_deref())
    };
    let _ = writeln!(
        d,
        "Failing on {} in {} pipeline{} so far: first in {}, last in {}.\n",
        sanitize::code_span(branch),
        meta.seen,
        if meta.seen == 1 { "" } else { "s" },
        pipeline(meta.first),
        pipeline(meta.last)
    );
    let _ = writeln!(
        d,
        "Severity **{}** ({}).{}\n",
        r.severity.as_str(),
        sanitize::inline(&r.severity_why),
        if r.jobs_in_group > 1 {
            format!(" {} jobs failed this way.", r.jobs_in_group)
        } else {
            String::new()
        }
    );
    if let (Some(key), Some(n)) = (&r.key_line, r.key_line_number) {
        let _ = writeln!(
            d,
            "**The log says** (line {n}): {}\n",
            sanitize::code_span(key)
        );
    }
    if !r.evidence_block.is_empty() {
        let _ = writeln!(d, "{}", r.evidence_block);
    }
    if let Some(next) = &r.next_step {
        let _ = writeln!(d, "**What to do next:** {}\n", sanitize::inline(next));
    }
    let _ = writeln!(
        d,
        "<sub>Kept up to date by RunnerIQ v{} (fingerprint `{}`). Close it when fixed: it is \
         reopened if the failure comes back.</sub>",
        env!("CARGO_PKG_VERSION"),
        meta.fingerprint
    );
    sanitize::guard(&d)
}

#[derive(Serialize)]
struct NewIssue<'a> {
    title: &'a str,
    description: &'a str,
    labels: String,
}

#[derive(Serialize)]
struct EditIssue<'a> {
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_event: Option<&'static str>,
}

/// Creates, updates or reopens the issue of `r`'s fingerprint.
#[allow(clippy::too_many_arguments)]
pub fn upsert(
    client: &Client,
    project: &str,
    existing: Option<&(Issue, Meta)>,
    r: &JobReport,
    note: &Note,
    branch: &str,
    labels: &[String],
    now: u64,
    cooldown_s: u64,
) -> Result<IssueOutcome, ApiError> {
    let base = format!("/projects/{}/issues", project_ref(project));
    match existing {
        None => {
            let meta = Meta {
                fingerprint: r.fingerprint.clone(),
                seen: 1,
                first: note.pipeline_id,
                last: note.pipeline_id,
                at: now,
            };
            let desc = description(&meta, r, note, branch);
            let issue: Issue = client.post_json(
                &base,
                &NewIssue {
                    title: &title(r, branch),
                    description: &desc,
                    labels: labels.join(","),
                },
            )?;
            Ok(IssueOutcome::Created { iid: issue.iid })
        }
        Some((issue, old)) => {
            let closed = issue.state == "closed";
            let same_pipeline = old.last == note.pipeline_id;
            let cooling = now.saturating_sub(old.at) < cooldown_s;
            if !closed && (same_pipeline || cooling) {
                return Ok(IssueOutcome::Unchanged { iid: issue.iid });
            }
            let meta = Meta {
                fingerprint: old.fingerprint.clone(),
                seen: old.seen + u64::from(!same_pipeline),
                first: old.first,
                last: note.pipeline_id,
                at: now,
            };
            let desc = description(&meta, r, note, branch);
            let _: serde_json::Value = client.put_json(
                &format!("{base}/{}", issue.iid),
                &EditIssue {
                    description: &desc,
                    state_event: closed.then_some("reopen"),
                },
            )?;
            Ok(IssueOutcome::Updated {
                iid: issue.iid,
                reopened: closed,
            })
        }
    }
}

/// A title and description edit, optionally closing or reopening.
#[derive(Serialize)]
struct Rewrite<'a> {
    title: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_event: Option<&'static str>,
}

/// Opens an issue (the one `runneriq watch` keeps, the weekly report's).
pub fn open(
    client: &Client,
    project: &str,
    title: &str,
    description: &str,
    labels: &[String],
) -> Result<Issue, ApiError> {
    client.post_json(
        &format!("/projects/{}/issues", project_ref(project)),
        &NewIssue {
            title,
            description,
            labels: labels.join(","),
        },
    )
}

/// Rewrites an issue's title and description; `state_event` `close` or
/// `reopen` changes its state in the same request.
pub fn rewrite(
    client: &Client,
    project: &str,
    iid: u64,
    title: &str,
    description: &str,
    state_event: Option<&'static str>,
) -> Result<(), ApiError> {
    let _: serde_json::Value = client.put_json(
        &format!("/projects/{}/issues/{iid}", project_ref(project)),
        &Rewrite {
            title,
            description,
            state_event,
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_one_line_and_mention_nobody() {
        let mut r =
            crate::diagnose::note::job_report(1, "ping @all", "s", None, "p", 1, None, None, 1, 1);
        r.title = Some("Bad\nline".into());
        assert_eq!(
            title(&r, "main"),
            "CI failure on main: Bad line in ping @\u{200b}all"
        );
        r.name = "shard #3".into();
        assert_eq!(
            title(&r, "main"),
            "CI failure on main: Bad line in shard #\u{200b}3"
        );
    }

    #[test]
    fn the_description_links_its_pipelines_and_writes_no_bare_reference() {
        let mut note = crate::diagnose::note::empty_note("g/p", 1012);
        note.pipeline_url = Some("https://gitlab.example.com/g/p/-/pipelines/1012".into());
        let mut r = crate::diagnose::note::job_report(
            5, "unit #2", "test", None, "g/p", 1012, None, None, 1, 1,
        );
        r.title = Some("Test failure".into());
        r.severity_why = "job #2 on main".into();
        r.key_line = Some("FAILED test_x #4".into());
        r.key_line_number = Some(40);
        let meta = Meta {
            fingerprint: "0123456789abcdef".into(),
            seen: 2,
            first: 1009,
            last: 1012,
            at: 1,
        };
        let d = description(&meta, &r, &note, "main");
        assert!(
            d.contains(
                "first in [pipeline #1009](https://gitlab.example.com/g/p/-/pipelines/1009), \
                 last in [pipeline #1012](https://gitlab.example.com/g/p/-/pipelines/1012)."
            ),
            "{d}"
        );
        assert!(
            d.contains("**The log says** (line 40): `FAILED test_x #4`"),
            "{d}"
        );
        assert!(d.contains("job #\u{200b}2 on main"), "{d}");
        assert_no_bare_reference(&d);
        // Without a pipeline URL the numbers are code, not bare.
        note.pipeline_url = None;
        let d = description(&meta, &r, &note, "main");
        assert!(
            d.contains("first in `pipeline #1009`, last in `pipeline #1012`."),
            "{d}"
        );
        assert_no_bare_reference(&d);
    }

    /// No `#` + digit outside the hidden first line, code spans and links.
    fn assert_no_bare_reference(d: &str) {
        let links = regex::Regex::new(r"\[[^\[\]]*\]\([^()\s]*\)").unwrap();
        let bare = regex::Regex::new(r"(?:^|[^&])#[0-9]").unwrap();
        for line in d.lines().skip(1) {
            let outside: String = line.split('`').step_by(2).collect();
            let outside = links.replace_all(&outside, "");
            assert!(!bare.is_match(&outside), "{line}");
        }
    }

    #[test]
    fn meta_round_trips() {
        let m = Meta {
            fingerprint: "0123456789abcdef".into(),
            seen: 3,
            first: 10,
            last: 12,
            at: 99,
        };
        assert_eq!(Meta::parse(&format!("{}\nbody", m.line())), Some(m));
        assert_eq!(Meta::parse("no marker"), None);
        assert_eq!(Meta::parse("<!-- runneriq:failure seen=x -->"), None);
    }
}
