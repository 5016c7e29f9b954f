//! PagerDuty Events API v2: `POST https://events.pagerduty.com/v2/enqueue`
//! with `routing_key`, `event_action` (`trigger` or `resolve`), a
//! `dedup_key` (one per problem, so a trigger and its resolve meet in one
//! incident) and, for a trigger, `payload` {`summary`, `source`,
//! `severity`, …}.
//!
//! The routing key is a secret: it comes from an environment variable (a
//! masked CI variable), goes only into the request body, and is never
//! printed — a dry run shows the variable's name in its place, and errors
//! name the variable, never the key or the URL.
//! `RUNNERIQ_PAGERDUTY_URL` replaces the endpoint (a test or proxy hook).

use serde_json::{Value, json};

use crate::noise::Severity;

/// The Events API v2 endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// The environment variable that replaces [`DEFAULT_URL`].
pub const URL_ENV: &str = "RUNNERIQ_PAGERDUTY_URL";
/// PagerDuty's limit on `summary`.
const MAX_SUMMARY: usize = 1024;

/// The endpoint: `$RUNNERIQ_PAGERDUTY_URL` when set, else PagerDuty's.
pub fn url(lookup: impl Fn(&str) -> Option<String>) -> String {
    lookup(URL_ENV)
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// PagerDuty's severity for ours: critical, error, warning, info.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    }
}

/// Plain text on one line, cut to PagerDuty's limit.
fn plain(s: &str, max: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::text::truncate_chars(one.trim(), max).to_string()
}

/// What a trigger says.
#[derive(Debug, Clone)]
pub struct Trigger<'a> {
    pub dedup_key: &'a str,
    pub summary: &'a str,
    pub source: &'a str,
    pub severity: Severity,
    pub component: Option<&'a str>,
    pub group: Option<&'a str>,
    pub class: &'a str,
    pub custom_details: Value,
}

/// A `trigger` event.
pub fn trigger(routing_key: &str, t: &Trigger<'_>) -> Value {
    let mut payload = json!({
        "summary": plain(t.summary, MAX_SUMMARY),
        "source": plain(t.source, 255),
        "severity": severity(t.severity),
        "class": t.class,
        "custom_details": t.custom_details,
    });
    if let Some(c) = t.component {
        payload["component"] = plain(c, 255).into();
    }
    if let Some(g) = t.group {
        payload["group"] = plain(g, 255).into();
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": t.dedup_key,
        "payload": payload,
        "client": "RunnerIQ",
    })
}

/// A `resolve` event.
pub fn resolve(routing_key: &str, dedup_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": "resolve",
        "dedup_key": dedup_key,
    })
}

/// Sends one event (once: PagerDuty deduplicates by `dedup_key`, but a
/// failed send is reported, and tried again on the next run).
pub fn send(url: &str, event: &Value, key_env: &str) -> Result<(), String> {
    super::notify::post(url, event, &format!("PagerDuty (routing key ${key_env})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_and_resolve_share_the_dedup_key() {
        let t = trigger(
            "KEY",
            &Trigger {
                dedup_key: "runneriq-0123456789abcdef",
                summary: "runner down\nnow",
                source: "runneriq watch: project 1",
                severity: Severity::High,
                component: Some("runner 7"),
                group: None,
                class: "runner_offline",
                custom_details: json!({}),
            },
        );
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["payload"]["severity"], "error");
        assert_eq!(t["payload"]["summary"], "runner down now");
        assert!(t["payload"].get("group").is_none());
        let r = resolve("KEY", "runneriq-0123456789abcdef");
        assert_eq!(r["dedup_key"], t["dedup_key"]);
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(
            url(|_| Some("http://127.0.0.1:9/v2/enqueue".into())),
            "http://127.0.0.1:9/v2/enqueue"
        );
        assert_eq!(url(|_| None), DEFAULT_URL);
    }

    #[test]
    fn a_failure_names_the_variable_not_the_key_or_url() {
        let e = send(
            "ftp://secret-host/x",
            &json!({"routing_key": "R0UTING"}),
            "PD_KEY",
        )
        .unwrap_err();
        assert!(e.contains("$PD_KEY"), "{e}");
        assert!(!e.contains("secret-host") && !e.contains("R0UTING"), "{e}");
    }
}
