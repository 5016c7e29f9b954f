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
//! Each line is written with one `write_all` on a file opened for appending,
//! so runs that share a log never interleave partial lines.

use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::route::Assignment;
use super::tags::{Applied, TagChange};
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

fn tag_lines(
    runner: u64,
    runner_name: &str,
    add: &[String],
    remove: &[String],
    common: (&str, Option<u64>, bool, Option<&str>, &str),
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
        Some("recommendation" | "tag_change") => Ok((at, value)),
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
                format!("job #{} {}", num(v, "job"), code_span(s(v, "name"))),
                match s(v, "action") {
                    "queue" => format!("queue on {runner}"),
                    "none" => "no runner".to_string(),
                    _ => format!("place on {runner}"),
                },
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
                    "runner {} (#{})",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("runneriq-audit-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.jsonl")
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
