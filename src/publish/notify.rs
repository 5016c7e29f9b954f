//! Notifications beyond the note: a Slack incoming webhook and a generic JSON
//! webhook, each with a severity threshold and a per-fingerprint cooldown.
//!
//! The one-shot job keeps no database: what was sent, and when, lives in a
//! hidden comment at the end of the note itself
//! (`<!-- runneriq:state {"sent":{"slack":{"<fingerprint>":<unix s>}}} -->`),
//! read back on the next run. Webhook URLs are secrets (a Slack URL is a
//! credential): they come from masked CI variables, are never printed, and no
//! error message contains them. Nothing from the GitLab token goes there.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::diagnose::diagnosis::{JobReport, Note};
use crate::noise::severity::Severity;

/// Start of the hidden state comment (one line, the note's last).
pub const STATE_PREFIX: &str = "<!-- runneriq:state ";
/// Entries older than this are forgotten.
const STATE_MAX_AGE_S: u64 = 30 * 24 * 3600;
/// Fingerprints remembered per channel (newest kept).
const STATE_MAX_PER_CHANNEL: usize = 100;
/// Failures listed in one message.
const MAX_LISTED: usize = 10;
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a note remembers between runs: when each fingerprint was last sent
/// to each channel, and the diagnosis it showed (kept as history when the
/// note is resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sent: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Kept>,
}

/// A diagnosis as plain text (the job-log summary), for the "previous
/// diagnosis" of a resolved note. Read back, it is untrusted text like any
/// log line: it is only ever shown redacted, inside a code fence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub pipeline: u64,
    pub summary: String,
}

/// The longest summary kept, in characters.
pub const MAX_KEPT_CHARS: usize = 8_000;

impl State {
    /// The state kept in a note body. Only the body's last line is read:
    /// that is where RunnerIQ writes it, after everything else, so no log
    /// line or other text of the note can stand in for it. Anything
    /// unreadable is an empty state (at worst one notification too many,
    /// never a failed run).
    pub fn parse(body: &str) -> State {
        let Some(last) = body.lines().rev().find(|l| !l.trim().is_empty()) else {
            return State::default();
        };
        last.strip_prefix(STATE_PREFIX)
            .and_then(|rest| rest.strip_suffix("-->"))
            .and_then(|json| serde_json::from_str::<State>(json.trim()).ok())
            .unwrap_or_default()
    }

    /// The hidden comment, one line, or "" when there is nothing to keep.
    pub fn marker(&self) -> String {
        if self.sent.values().all(BTreeMap::is_empty) && self.diagnosis.is_none() {
            return String::new();
        }
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        // JSON escapes newlines, so this is one line; `<`, `>` and `@` only
        // occur inside strings, where `\u003c`, `\u003e` and `\u0040` mean
        // the same: nothing can close the comment (`-->`, `--!>`) early, open
        // a tag in it or read as a mention.
        format!(
            "{STATE_PREFIX}{} -->",
            json.replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('@', "\\u0040")
        )
    }

    /// Keeps `summary` (cut to [`MAX_KEPT_CHARS`]) as the diagnosis of `pipeline`.
    pub fn keep(&mut self, pipeline: u64, summary: &str) {
        self.diagnosis = Some(Kept {
            pipeline,
            summary: crate::text::truncate_chars(summary, MAX_KEPT_CHARS).to_string(),
        });
    }

    /// True when `fingerprint` may be sent to `channel` at `now`.
    pub fn due(&self, channel: &str, fingerprint: &str, now: u64, cooldown_s: u64) -> bool {
        match self.sent.get(channel).and_then(|m| m.get(fingerprint)) {
            Some(&at) => now.saturating_sub(at) >= cooldown_s,
            None => true,
        }
    }

    pub fn record(&mut self, channel: &str, fingerprint: &str, now: u64) {
        self.sent
            .entry(channel.to_string())
            .or_default()
            .insert(fingerprint.to_string(), now);
    }

    /// Forgets old entries and keeps each channel's newest ones.
    pub fn prune(&mut self, now: u64) {
        for m in self.sent.values_mut() {
            m.retain(|_, at| now.saturating_sub(*at) < STATE_MAX_AGE_S);
            if m.len() > STATE_MAX_PER_CHANNEL {
                let mut by_age: Vec<(String, u64)> =
                    m.iter().map(|(k, v)| (k.clone(), *v)).collect();
                by_age.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                by_age.truncate(STATE_MAX_PER_CHANNEL);
                *m = by_age.into_iter().collect();
            }
        }
        self.sent.retain(|_, m| !m.is_empty());
    }
}

/// Which of the note's failures a channel gets now: at or above its
/// threshold, not flaky, and not sent within the cooldown. Returns indices
/// into `note.failed` and how many were held back by the cooldown.
pub fn plan(
    note: &Note,
    channel: &str,
    min: Severity,
    cooldown_s: u64,
    state: &State,
    now: u64,
) -> (Vec<usize>, usize) {
    let mut send = Vec::new();
    let mut cooled = 0;
    for (i, r) in note.failed.iter().enumerate() {
        if r.noise == "flaky" || r.severity < min {
            continue;
        }
        if state.due(channel, &r.fingerprint, now, cooldown_s) {
            send.push(i);
        } else {
            cooled += 1;
        }
    }
    (send, cooled)
}

/// Slack's mrkdwn escaping: `&`, `<`, `>` (which also disarms `<!channel>`,
/// `<!here>` and `<@U…>` mentions); backticks are dropped from text put in
/// code spans.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn slack_code(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() || c == '`' { ' ' } else { c })
        .collect();
    format!(
        "`{}`",
        slack_escape(crate::text::truncate_chars(&one_line, 200))
    )
}

pub fn slack_link(url: Option<&str>, label: &str) -> String {
    match url.filter(|u| crate::publish::sanitize::safe_url(u) && !u.contains(['|', '>', '<'])) {
        Some(u) => format!("<{u}|{}>", slack_escape(label)),
        None => slack_escape(label),
    }
}

/// A Slack incoming-webhook message (`text` in mrkdwn).
pub fn slack_payload(note: &Note, failures: &[&JobReport]) -> Value {
    let mut text = format!(
        "*RunnerIQ* · {} in {}{} · {}",
        slack_link(
            note.pipeline_url.as_deref(),
            &format!("pipeline #{}", note.pipeline_id)
        ),
        slack_code(&note.project),
        note.branch
            .as_deref()
            .map(|b| format!(" on {}", slack_code(b)))
            .unwrap_or_default(),
        slack_escape(&note.headline)
    );
    for r in failures.iter().take(MAX_LISTED) {
        text.push_str(&format!(
            "\n• *{}* · {} — {}{}{}",
            r.severity.as_str(),
            slack_link(r.web_url.as_deref(), &r.name),
            slack_escape(r.title.as_deref().unwrap_or("log could not be read")),
            r.headline_file
                .as_deref()
                .map(|f| format!(" in {}", slack_code(f)))
                .unwrap_or_default(),
            if r.jobs_in_group > 1 {
                format!(" ({} jobs)", r.jobs_in_group)
            } else {
                String::new()
            }
        ));
    }
    if failures.len() > MAX_LISTED {
        text.push_str(&format!("\n…and {} more", failures.len() - MAX_LISTED));
    }
    json!({ "text": text })
}

/// The generic webhook's JSON document (`"event": "runneriq.failures"`).
/// Evidence lines are already redacted in the note's data.
pub fn webhook_payload(note: &Note, failures: &[&JobReport]) -> Value {
    let items: Vec<Value> = failures
        .iter()
        .map(|r| {
            let mut jobs = vec![json!({"id": r.id, "name": r.name, "stage": r.stage, "web_url": r.web_url})];
            jobs.extend(r.same_failure.iter().map(
                |b| json!({"id": b.id, "name": b.name, "stage": b.stage, "web_url": b.web_url}),
            ));
            json!({
                "fingerprint": r.fingerprint,
                "severity": r.severity.as_str(),
                "noise": r.noise,
                "category": r.category,
                "title": r.title,
                "failure_reason": r.failure_reason,
                "file": r.headline_file,
                "your_change": r.headline_is_change,
                "evidence": r.evidence.iter().map(|e| json!({"line": e.line, "text": e.text})).collect::<Vec<_>>(),
                "jobs": jobs,
                "jobs_total": r.jobs_in_group,
            })
        })
        .collect();
    json!({
        "event": "runneriq.failures",
        "version": env!("CARGO_PKG_VERSION"),
        "project": note.project,
        "pipeline": {"id": note.pipeline_id, "web_url": note.pipeline_url, "ref": note.branch},
        "target": note.target,
        "headline": note.headline,
        "counts": note.counts,
        "failures": items,
    })
}

/// POSTs `payload` to `url` once (a webhook that fails is reported, not
/// retried: a retry could post twice). The error names `what` (e.g. "the
/// Slack webhook ($RUNNERIQ_SLACK_WEBHOOK_URL)"), never the URL.
pub fn post(url: &str, payload: &Value, what: &str) -> Result<(), String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("{what} is not an http(s) URL"));
    }
    let agent = crate::http::plain_agent(TIMEOUT);
    let body = serde_json::to_vec(payload).map_err(|e| format!("{what}: encoding: {e}"))?;
    match agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(&body[..])
    {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("{what} answered HTTP {}", resp.status().as_u16())),
        // ureq's error text can contain the URL: describe the kind only.
        Err(ureq::Error::Timeout(_)) => Err(format!("{what} timed out")),
        Err(ureq::Error::Io(e)) => Err(format!("{what} could not be reached ({})", e.kind())),
        Err(ureq::Error::HostNotFound) => Err(format!("{what}: host not found")),
        Err(ureq::Error::ConnectionFailed) => Err(format!("{what}: connection failed")),
        Err(_) => Err(format!("{what} could not be reached")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_a_note_body() {
        let mut s = State::default();
        assert_eq!(s.marker(), "");
        s.record("slack", "00ff", 100);
        s.record("webhook", "00ff", 120);
        let body = format!("<!-- runneriq:diagnose -->\ntext\n{}\n", s.marker());
        assert_eq!(State::parse(&body), s);
        assert!(!State::parse(&body).due("slack", "00ff", 200, 3600));
        assert!(State::parse(&body).due("slack", "00ff", 3700, 3600));
        assert!(State::parse(&body).due("slack", "other", 200, 3600));
        assert_eq!(
            State::parse("<!-- runneriq:state {broken -->"),
            State::default()
        );
    }

    #[test]
    fn only_the_last_line_is_state() {
        let mut s = State::default();
        s.record("slack", "00ff", 100);
        // A state line anywhere but last (e.g. in a log excerpt) is not read.
        let body = format!("{}\nmore text\n", s.marker());
        assert_eq!(State::parse(&body), State::default());
        let body = format!("> 12 | {}\n", s.marker());
        assert_eq!(State::parse(&body), State::default());
        // Trailing blank lines are fine.
        assert_eq!(State::parse(&format!("x\n{}\n\n", s.marker())), s);
    }

    #[test]
    fn a_kept_diagnosis_cannot_close_the_comment() {
        let mut s = State::default();
        s.keep(7, "line one -->\n/merge --!> @all <!-- x -->");
        let m = s.marker();
        assert_eq!(m.lines().count(), 1);
        assert_eq!(m.matches("-->").count(), 1, "{m}");
        assert!(m.ends_with(" -->"));
        assert!(!m.contains("--!>"));
        assert_eq!(m.matches('<').count(), 1, "{m}");
        assert!(!m.contains('@'), "{m}");
        assert_eq!(State::parse(&format!("x\n{m}")), s);
        s.keep(8, &"é".repeat(MAX_KEPT_CHARS + 10));
        assert_eq!(
            s.diagnosis.as_ref().unwrap().summary.chars().count(),
            MAX_KEPT_CHARS
        );
    }

    #[test]
    fn prune_forgets_old_and_caps_entries() {
        let mut s = State::default();
        s.record("slack", "old", 0);
        for i in 0..150u64 {
            s.record("webhook", &format!("{i:04x}"), 1_000_000 + i);
        }
        s.prune(1_000_000 + STATE_MAX_AGE_S - 1);
        assert!(!s.sent.contains_key("slack"));
        assert_eq!(s.sent["webhook"].len(), STATE_MAX_PER_CHANNEL);
        assert!(s.sent["webhook"].contains_key(&format!("{:04x}", 149)));
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(
            slack_escape("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
        assert_eq!(slack_code("a`b\nc"), "`a b c`");
        assert_eq!(slack_link(Some("javascript:x"), "x"), "x");
        assert_eq!(slack_link(Some("https://h/x|y"), "x"), "x");
        assert_eq!(
            slack_link(Some("https://h/x"), "a<b"),
            "<https://h/x|a&lt;b>"
        );
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let e = post(
            "ftp://hooks.example/secret-token",
            &json!({}),
            "the webhook ($X)",
        )
        .unwrap_err();
        assert!(!e.contains("secret-token"), "{e}");
    }
}
