//! The audit log: what RunnerIQ recommended and what it changed, one JSON
//! object per line (JSON Lines), appended.
//!
//! ```json
//! {"time":"2026-01-01T00:00:00Z","kind":"recommendation","job":2001,"name":"deploy","runner":105,
//!  "runner_name":"deploy-se","action":"place","priority":100,"urgency":"critical",
//!  "reason":"best score 81.2 of 2 eligible runners","decided_by":"rules","mode":"advisory"}
//! {"time":"2026-01-01T00:00:00Z","kind":"tag_change","runner":105,"runner_name":"deploy-se",
//!  "tag":"runneriq:green","action":"add","reason":"…","expires_at":1767247200,"applied":true,
//!  "error":null,"decided_by":"rules","mode":"autonomous"}
//! ```
//!
//! A `tag_change` line of a PUT that was sent also carries `before` (the
//! runner's tags as GitLab returned them just before) and `tag_list` (the
//! list sent). `reset-tags` compares the runners' tags with them and writes a
//! `tag_review` line for each tag it cannot explain (kept, for a person to
//! review):
//!
//! ```json
//! {"time":"2026-01-01T00:00:00Z","kind":"tag_review","runner":101,"runner_name":"docker-fr-1",
//!  "tag":"production","reason":"…","decided_by":"reset","mode":"manual"}
//! ```
//!
//! Each line is written with one `write_all` on a file opened for appending,
//! so runs that share a log never interleave partial lines.

use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::FleetRunner;
use super::route::Assignment;
use super::tags::{self, Applied, TagChange};
use crate::error::input;
use crate::publish::sanitize::{code_span, inline};

/// The log written by `--execute` and `--plan` runs when `--audit` is not given.
pub const DEFAULT_FILE: &str = "runneriq-audit.jsonl";
/// Longest line read back; longer ones are reported and skipped.
const MAX_LINE: usize = 1 << 20;

/// Unix seconds as RFC 3339 UTC (`2026-01-01T00:00:00Z`).
pub fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_string())
}

/// One routed job's recommendation.
#[derive(Debug, Clone, Serialize)]
pub struct RecommendationLine {
    pub time: String,
    pub kind: &'static str,
    pub job: u64,
    pub name: String,
    pub runner: Option<u64>,
    pub runner_name: Option<String>,
    /// place | queue | none
    pub action: &'static str,
    pub priority: u8,
    pub urgency: String,
    pub reason: String,
    pub decided_by: String,
    pub mode: String,
}

/// One tag added to or removed from one runner.
#[derive(Debug, Clone, Serialize)]
pub struct TagLine {
    pub time: String,
    pub kind: &'static str,
    pub runner: u64,
    pub runner_name: String,
    pub tag: String,
    /// add | remove
    pub action: &'static str,
    pub reason: String,
    pub expires_at: Option<u64>,
    /// GitLab accepted it (false: planned, a dry run, or failed).
    pub applied: bool,
    pub error: Option<String>,
    pub decided_by: String,
    pub mode: String,
    /// The runner's tags just before, when a PUT was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Vec<String>>,
    /// The `tag_list` the PUT sent (whatever GitLab answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_list: Option<Vec<String>>,
}

/// A tag on a runner that the audit log does not explain (`reset-tags`
/// keeps it and says so).
#[derive(Debug, Clone, Serialize)]
pub struct ReviewLine {
    pub time: String,
    pub kind: &'static str,
    pub runner: u64,
    pub runner_name: String,
    pub tag: String,
    pub reason: String,
    pub decided_by: String,
    pub mode: String,
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

/// The recommendation lines of a route.
pub fn recommendations(
    assignments: &[Assignment],
    now: u64,
    mode: &str,
) -> Vec<RecommendationLine> {
    let time = rfc3339(now);
    assignments
        .iter()
        .map(|a| {
            let (runner, runner_name, action, reason) = match (&a.runner, &a.queued) {
                (Some(id), _) => {
                    let mut why = format!(
                        "best score {:.1} of {} eligible runner{}",
                        a.score.as_ref().map_or(0.0, |s| s.total),
                        a.candidates,
                        if a.candidates == 1 { "" } else { "s" }
                    );
                    if let (Some(u), Some(m)) = (&a.runner_up, a.margin) {
                        let _ = write!(
                            why,
                            ", runner-up {} {:.1} (margin {}{})",
                            u.name,
                            u.score,
                            pct(m),
                            if a.tie { ", a tie" } else { "" }
                        );
                    }
                    (Some(*id), a.runner_name.clone(), "place", why)
                }
                (None, Some(q)) => (
                    Some(q.runner),
                    Some(q.runner_name.clone()),
                    "queue",
                    format!(
                        "every eligible runner is busy: position {} on {}",
                        q.position, q.runner_name
                    ),
                ),
                (None, None) => (None, None, "none", a.reason.clone().unwrap_or_default()),
            };
            RecommendationLine {
                time: time.clone(),
                kind: "recommendation",
                job: a.job,
                name: a.name.clone(),
                runner,
                runner_name,
                action,
                priority: a.priority,
                urgency: a.urgency.as_str().to_string(),
                reason,
                decided_by: a.decided_by.clone(),
                mode: mode.to_string(),
            }
        })
        .collect()
}

/// A PUT's tag lists: the runner's tags before, the list sent.
type Lists<'a> = Option<(&'a [String], &'a [String])>;

#[allow(clippy::too_many_arguments)]
fn tag_lines(
    runner: u64,
    runner_name: &str,
    add: &[String],
    remove: &[String],
    common: (&str, Option<u64>, bool, Option<&str>, &str),
    lists: Lists<'_>,
    now: u64,
    mode: &str,
) -> Vec<TagLine> {
    let (reason, expires_at, applied, error, decided_by) = common;
    let time = rfc3339(now);
    add.iter()
        .map(|t| (t, "add"))
        .chain(remove.iter().map(|t| (t, "remove")))
        .map(|(t, action)| TagLine {
            time: time.clone(),
            kind: "tag_change",
            runner,
            runner_name: runner_name.to_string(),
            tag: t.clone(),
            action,
            reason: reason.to_string(),
            expires_at,
            applied,
            error: error.map(str::to_string),
            decided_by: decided_by.to_string(),
            mode: mode.to_string(),
            before: lists.map(|l| l.0.to_vec()),
            tag_list: lists.map(|l| l.1.to_vec()),
        })
        .collect()
}

/// Planned (not applied) changes: advisory output, a written plan, a skipped
/// removal.
pub fn planned(changes: &[TagChange], now: u64, mode: &str) -> Vec<TagLine> {
    changes
        .iter()
        .flat_map(|c| {
            tag_lines(
                c.runner,
                &c.runner_name,
                &c.add,
                &c.remove,
                (&c.reason, c.expires_at, false, None, &c.decided_by),
                None,
                now,
                mode,
            )
        })
        .collect()
}

/// The outcome of an apply: what changed (or would, or failed to).
pub fn outcome(applied: &[Applied], now: u64, mode: &str) -> Vec<TagLine> {
    applied
        .iter()
        .flat_map(|a| {
            let reason = match &a.note {
                Some(n) => format!("{}; {n}", a.reason),
                None => a.reason.clone(),
            };
            tag_lines(
                a.runner,
                &a.runner_name,
                &a.added,
                &a.removed,
                (
                    &reason,
                    a.expires_at,
                    a.ok && a.sent,
                    a.error.as_deref(),
                    &a.decided_by,
                ),
                a.put.as_deref().map(|p| (a.before.as_slice(), p)),
                now,
                mode,
            )
        })
        .collect()
}

/// Appends lines to an audit file.
pub struct AuditLog {
    path: PathBuf,
    file: std::fs::File,
}

impl AuditLog {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                input(format!(
                    "{}: cannot open the audit log: {}",
                    path.display(),
                    crate::input::io_reason(&e)
                ))
            })?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends each item as one line, each with a single write.
    pub fn append<T: Serialize>(&mut self, items: &[T]) -> anyhow::Result<()> {
        for item in items {
            let mut line = serde_json::to_vec(item)?;
            line.push(b'\n');
            self.file.write_all(&line).map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot append to the audit log: {}",
                    self.path.display(),
                    crate::input::io_reason(&e)
                )
            })?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One entry read back.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: usize,
    /// Unix seconds of `time`.
    pub at: i64,
    pub value: Value,
}

/// Reads a log: entries at or after `since` (unix seconds), oldest first;
/// malformed lines become warnings naming their line number.
pub fn read(path: &Path, since: Option<i64>) -> anyhow::Result<(Vec<Entry>, Vec<String>)> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| {
        input(format!(
            "{origin}: cannot read the audit log: {}",
            crate::input::io_reason(&e)
        ))
    })?;
    let mut reader = std::io::BufReader::new(file);
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0usize;
    loop {
        buf.clear();
        let got = reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                input(format!(
                    "{origin}: cannot read the audit log: {}",
                    crate::input::io_reason(&e)
                ))
            })?;
        if got == 0 {
            break;
        }
        n += 1;
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            warnings.push(format!("{origin}:{n}: line longer than 1 MiB, skipped"));
            // Skip the rest of the line.
            let mut rest = Vec::new();
            let _ = reader.read_until(b'\n', &mut rest);
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match parse_line(text) {
            Ok((at, value)) => {
                if since.is_none_or(|s| at >= s) {
                    entries.push(Entry { line: n, at, value });
                }
            }
            Err(why) => warnings.push(format!("{origin}:{n}: {why}, skipped")),
        }
    }
    entries.sort_by_key(|e| e.at);
    Ok((entries, warnings))
}

fn parse_line(text: &str) -> Result<(i64, Value), String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object ({e})"))?;
    let Some(obj) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let time = obj
        .get("time")
        .and_then(Value::as_str)
        .ok_or("no \"time\" string")?;
    let at = OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|_| format!("\"time\" {time:?} is not an RFC 3339 date"))?
        .unix_timestamp();
    match obj.get("kind").and_then(Value::as_str) {
        Some("recommendation" | "tag_change" | "tag_review") => Ok((at, value)),
        Some(k) => Err(format!("unknown \"kind\" {k:?}")),
        None => Err("no \"kind\" string".into()),
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn num(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_u64)
        .map_or_else(|| "?".to_string(), |n| n.to_string())
}

/// The entries as a Markdown table, oldest first.
pub fn render_md(origin: &str, entries: &[Entry]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### RunnerIQ audit: {} entries from {}\n",
        entries.len(),
        code_span(origin)
    );
    if entries.is_empty() {
        return out;
    }
    out.push_str("| Time | Kind | Job / runner | Action | Decided by | Reason |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for e in entries {
        let v = &e.value;
        let (subject, action) = if s(v, "kind") == "recommendation" {
            let runner = match v.get("runner_name").and_then(Value::as_str) {
                Some(r) => code_span(r),
                None => "—".to_string(),
            };
            (
                format!("job {} {}", num(v, "job"), code_span(s(v, "name"))),
                match s(v, "action") {
                    "queue" => format!("queue on {runner}"),
                    "none" => "no runner".to_string(),
                    _ => format!("place on {runner}"),
                },
            )
        } else if s(v, "kind") == "tag_review" {
            (
                format!(
                    "runner {} (id {})",
                    code_span(s(v, "runner_name")),
                    num(v, "runner")
                ),
                format!("review {} (kept)", code_span(s(v, "tag"))),
            )
        } else {
            let state = match (
                v.get("applied").and_then(Value::as_bool),
                v.get("error").and_then(Value::as_str),
            ) {
                (_, Some(_)) => "failed",
                (Some(true), None) => "applied",
                _ => "not applied",
            };
            (
                format!(
                    "runner {} (id {})",
                    code_span(s(v, "runner_name")),
                    num(v, "runner")
                ),
                format!("{} {} ({state})", s(v, "action"), code_span(s(v, "tag"))),
            )
        };
        let mut reason = s(v, "reason").to_string();
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            reason = if reason.is_empty() {
                format!("error: {err}")
            } else {
                format!("{reason}; error: {err}")
            };
        }
        let mode = s(v, "mode");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}{} | {} |",
            inline(s(v, "time")),
            inline(s(v, "kind")),
            subject,
            action,
            inline(s(v, "decided_by")),
            if mode.is_empty() {
                String::new()
            } else {
                format!(" ({})", inline(mode))
            },
            inline(&reason)
        );
    }
    out
}

/// The audit log `reset-tags` compares the runners' tags with.
#[derive(Debug)]
pub enum ReviewSource {
    /// The file does not exist.
    Missing(PathBuf),
    /// It exists but could not be read (why).
    Unreadable(PathBuf, String),
    Read(PathBuf, Vec<Entry>),
}

impl ReviewSource {
    /// Reads `path` for [`review`]; a missing or unreadable file is not an
    /// error (reset-tags still removes our tags, and says what it could not check).
    pub fn load(path: &Path) -> ReviewSource {
        if !path.exists() {
            return ReviewSource::Missing(path.to_path_buf());
        }
        match read(path, None) {
            Ok((entries, _)) => ReviewSource::Read(path.to_path_buf(), entries),
            Err(e) => ReviewSource::Unreadable(path.to_path_buf(), e.to_string()),
        }
    }
}

/// A tag on a runner that the audit log does not explain.
#[derive(Debug, Clone, PartialEq)]
pub struct Unexplained {
    pub tag: String,
    /// The tag RunnerIQ wrote that GitLab would split into this one, and
    /// when it was written.
    pub piece_of: Option<(String, String)>,
}

/// One runner's tags that the audit log does not explain.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub runner: u64,
    pub runner_name: String,
    pub tags: Vec<Unexplained>,
    /// When RunnerIQ first wrote to the runner with its tag list logged;
    /// `None`: the log holds no tag list of it (lines written before tag
    /// lists were logged), so only pieces of split tags were looked for.
    pub first_write: Option<String>,
}

impl Review {
    /// Why `u` is listed, with `code` quoting tags.
    pub fn why(&self, u: &Unexplained, code: impl Fn(&str) -> String) -> String {
        match (&u.piece_of, &self.first_write) {
            (Some((whole, at)), _) => format!(
                "from {}, which RunnerIQ wrote at {at} and GitLab split on its commas",
                code(whole)
            ),
            (None, Some(at)) => {
                format!("not on the runner when RunnerIQ first wrote its tags ({at})")
            }
            (None, None) => "not explained".to_string(),
        }
    }

    /// The listed tags grouped by reason, in order, each group as
    /// "`a`, `b`: reason"; then what a missing tag list means.
    pub fn words(&self, code: impl Fn(&str) -> String) -> String {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for u in &self.tags {
            let why = self.why(u, &code);
            match groups.iter_mut().find(|g| g.0 == why) {
                Some(g) => g.1.push(code(&u.tag)),
                None => groups.push((why, vec![code(&u.tag)])),
            }
        }
        let mut out = groups
            .iter()
            .map(|(why, tags)| format!("{}: {why}", tags.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        if self.first_write.is_none() && !self.tags.is_empty() {
            out.push_str(
                " (the log has no earlier tag list of this runner, so these may also be its own \
                 tags)",
            );
        }
        out
    }
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// The tags outside `runneriq:` that the audit log does not explain, for
/// each runner of `fleet` that it records a tag change of (an empty list:
/// all explained). A tag is
/// explained when the runner had it before RunnerIQ first wrote to it (the
/// earliest `before` list logged). Tags RunnerIQ wrote that GitLab would
/// split (a comma) are listed too: their pieces, when the runner holds them.
pub fn review(fleet: &[FleetRunner], entries: &[Entry]) -> Vec<Review> {
    let mut out = Vec::new();
    for r in fleet {
        let id = r.id();
        let mine: Vec<&Value> = entries
            .iter()
            .map(|e| &e.value)
            .filter(|v| {
                s(v, "kind") == "tag_change" && v.get("runner").and_then(Value::as_u64) == Some(id)
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let baseline = mine
            .iter()
            .find_map(|v| Some((s(v, "time").to_string(), strings(v.get("before"))?)));
        // The pieces GitLab makes of what RunnerIQ wrote: piece, whole, when.
        let mut pieces: Vec<(String, String, String)> = Vec::new();
        for v in &mine {
            let mut written: Vec<String> = strings(v.get("tag_list")).unwrap_or_default();
            if s(v, "action") == "add" {
                written.push(s(v, "tag").to_string());
            }
            for w in written.iter().filter(|w| tags::tag_problem(w).is_some()) {
                for p in tags::gitlab_pieces(w) {
                    if p != *w && !pieces.iter().any(|x| x.0 == p) {
                        pieces.push((p, w.clone(), s(v, "time").to_string()));
                    }
                }
            }
        }
        let mut found = Vec::new();
        for t in r.runner.tag_list.iter().filter(|t| !tags::is_ours(t)) {
            let piece_of = pieces
                .iter()
                .find(|p| p.0 == *t)
                .map(|p| (p.1.clone(), p.2.clone()));
            let explained = match &baseline {
                Some((_, before)) => before.contains(t),
                None => piece_of.is_none(),
            };
            if !explained && !found.iter().any(|u: &Unexplained| u.tag == *t) {
                found.push(Unexplained {
                    tag: t.clone(),
                    piece_of,
                });
            }
        }
        out.push(Review {
            runner: id,
            runner_name: r.label(),
            tags: found,
            first_write: baseline.map(|b| b.0),
        });
    }
    out
}

/// The `tag_review` lines of `reviews`.
pub fn review_lines(reviews: &[Review], origin: &str, now: u64, mode: &str) -> Vec<ReviewLine> {
    let time = rfc3339(now);
    reviews
        .iter()
        .flat_map(|r| {
            r.tags.iter().map(|u| ReviewLine {
                time: time.clone(),
                kind: "tag_review",
                runner: r.runner,
                runner_name: r.runner_name.clone(),
                tag: u.tag.clone(),
                reason: format!(
                    "not explained by RunnerIQ's audit log {origin}: {}; kept, review it",
                    r.why(u, |t| format!("{t:?}"))
                ),
                decided_by: "reset".to_string(),
                mode: mode.to_string(),
            })
        })
        .collect()
}

/// `reset-tags`' review as Markdown.
pub fn render_review_md(source: &ReviewSource, reviews: &[Review]) -> String {
    let mut out =
        String::from("\n### Tags not explained by RunnerIQ's audit log (kept: review them)\n\n");
    let origin = match source {
        ReviewSource::Missing(p) => {
            let _ = writeln!(
                out,
                "Not checked: no audit log ({} does not exist; pass --audit FILE, the log of the \
                 runs that wrote the tags), so tags outside `runneriq:` that RunnerIQ's writes \
                 may have caused cannot be told from the runners' own.",
                code_span(&p.display().to_string())
            );
            return out;
        }
        ReviewSource::Unreadable(p, why) => {
            let _ = writeln!(
                out,
                "Not checked: the audit log {} could not be read ({}).",
                code_span(&p.display().to_string()),
                inline(why)
            );
            return out;
        }
        ReviewSource::Read(p, _) => code_span(&p.display().to_string()),
    };
    let flagged: Vec<&Review> = reviews.iter().filter(|r| !r.tags.is_empty()).collect();
    if reviews.is_empty() {
        let _ = writeln!(
            out,
            "None: {origin} records no tag change of these runners, so there is nothing to \
             compare their tags with."
        );
        return out;
    }
    if flagged.is_empty() {
        let _ = writeln!(
            out,
            "None: {origin} explains every tag outside `runneriq:` of the {} runner{} it records \
             a tag change of.",
            reviews.len(),
            if reviews.len() == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            out,
            "`reset-tags` removes only `runneriq:` tags and keeps these: \
             {origin} does not explain them. Check them in GitLab and remove the ones nobody \
             meant to add.\n"
        );
        for r in flagged {
            let _ = writeln!(
                out,
                "- {} (id {}): {}",
                code_span(&r.runner_name),
                r.runner,
                r.words(code_span)
            );
        }
    }
    let partial: Vec<String> = reviews
        .iter()
        .filter(|r| r.first_write.is_none() && r.tags.is_empty())
        .map(|r| format!("{} (id {})", code_span(&r.runner_name), r.runner))
        .collect();
    if !partial.is_empty() {
        let _ = writeln!(
            out,
            "\n{origin} has no tag list of {} (logged before RunnerIQ recorded them), so only \
             pieces of split tags were looked for there: none found.",
            partial.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("runneriq-audit-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.jsonl")
    }

    fn runner(id: u64, tags: &[&str]) -> FleetRunner {
        let mut r = FleetRunner::default();
        r.runner.id = id;
        r.runner.description = Some(format!("r{id}"));
        r.runner.tag_list = tags.iter().map(|t| t.to_string()).collect();
        r
    }

    fn entry(at: i64, value: Value) -> Entry {
        Entry { line: 0, at, value }
    }

    #[test]
    fn review_lists_the_tags_the_log_does_not_explain() {
        let applied = Applied {
            runner: 1,
            runner_name: "r1".into(),
            ok: true,
            sent: true,
            before: vec!["docker".into(), "gpu".into()],
            after: vec!["docker".into(), "gpu".into(), "runneriq:green".into()],
            added: vec!["runneriq:green".into()],
            removed: vec![],
            error: None,
            note: None,
            reason: "clean".into(),
            expires_at: None,
            decided_by: "rules".into(),
            put: Some(vec!["docker".into(), "gpu".into(), "runneriq:green".into()]),
        };
        let logged = |a: &Applied, at: u64| -> Vec<Entry> {
            outcome(std::slice::from_ref(a), at, "autonomous")
                .iter()
                .map(|l| entry(at as i64, serde_json::to_value(l).unwrap()))
                .collect()
        };
        let mut entries = logged(&applied, 100);
        assert_eq!(
            entries[0].value["before"],
            serde_json::json!(["docker", "gpu"])
        );
        // A later write whose `before` already had `nightly`: still not explained.
        let mut later = applied.clone();
        later.before.push("nightly".into());
        entries.extend(logged(&later, 200));
        // Runner 2: an old line (no tag lists) adding a tag GitLab split.
        entries.push(entry(
            300,
            serde_json::json!({"time": "1970-01-01T00:05:00Z", "kind": "tag_change", "runner": 2,
                "tag": "runneriq:x, prod,gpu", "action": "add"}),
        ));
        let fleet = vec![
            runner(1, &["docker", "gpu", "nightly", "runneriq:green"]),
            runner(2, &["shell", "runneriq:x", "prod", "gpu"]),
            runner(3, &["surprise"]),
        ];
        let r = review(&fleet, &entries);
        assert_eq!(r.len(), 2, "runner 3 has no record: {r:?}");
        assert_eq!(r[0].first_write.as_deref(), Some("1970-01-01T00:01:40Z"));
        assert_eq!(
            r[0].tags,
            vec![Unexplained {
                tag: "nightly".into(),
                piece_of: None
            }]
        );
        assert_eq!(r[1].first_write, None);
        let tags: Vec<&str> = r[1].tags.iter().map(|u| u.tag.as_str()).collect();
        assert_eq!(
            tags,
            ["prod", "gpu"],
            "`shell` cannot be checked: kept quiet"
        );
        assert_eq!(
            r[1].words(|t| format!("`{t}`")),
            "`prod`, `gpu`: from `runneriq:x, prod,gpu`, which RunnerIQ wrote at \
             1970-01-01T00:05:00Z and GitLab split on its commas (the log has no earlier tag list \
             of this runner, so these may also be its own tags)"
        );
        let lines = review_lines(&r, "a.jsonl", 0, "manual");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].kind, "tag_review");
        assert!(lines[0].reason.starts_with("not explained by RunnerIQ's audit log a.jsonl: not on the runner when RunnerIQ first wrote its tags"), "{}", lines[0].reason);
        let md = render_review_md(&ReviewSource::Read("a.jsonl".into(), entries.clone()), &r);
        assert!(
            md.contains("- `r1` (id 1): `nightly`: not on the runner"),
            "{md}"
        );
        let md = render_review_md(&ReviewSource::Missing("x.jsonl".into()), &[]);
        assert!(
            md.contains("Not checked: no audit log (`x.jsonl` does not exist"),
            "{md}"
        );
        let md = render_review_md(&ReviewSource::Read("a.jsonl".into(), Vec::new()), &[]);
        assert!(
            md.contains("records no tag change of these runners"),
            "{md}"
        );
    }

    #[test]
    fn lines_round_trip_and_bad_lines_are_numbered() {
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
        let path = temp("roundtrip");
        let _ = std::fs::remove_file(&path);
        let change = TagChange {
            runner: 7,
            runner_name: "r7".into(),
            add: vec!["runneriq:green".into(), "runneriq:until:9".into()],
            remove: vec![],
            reason: "clean".into(),
            expires_at: Some(9),
            decided_by: "rules".into(),
        };
        let mut log = AuditLog::open(&path).unwrap();
        log.append(&planned(&[change], 1_767_225_600, "supervised"))
            .unwrap();
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\": \"yesterday\"}\nnot json\n\n")
            .unwrap();
        let mut log = AuditLog::open(&path).unwrap();
        log.append(&planned(&[], 0, "x")).unwrap();
        let (entries, warnings) = read(&path, None).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].value["tag"], "runneriq:until:9");
        assert_eq!(entries[0].value["applied"], false);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].ends_with(":3: \"time\" \"yesterday\" is not an RFC 3339 date, skipped")
        );
        assert!(warnings[1].contains(":4: not a JSON object"));
        let (entries, _) = read(&path, Some(1_767_225_601)).unwrap();
        assert!(entries.is_empty());
        let md = render_md("audit.jsonl", &read(&path, None).unwrap().0);
        assert!(
            md.contains("| add `runneriq:green` (not applied) |"),
            "{md}"
        );
        let e = read(&path.with_file_name("missing.jsonl"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.jsonl: cannot read the audit log"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
