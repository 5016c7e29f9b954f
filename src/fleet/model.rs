//! The fleet and job inputs of `route`, `explain` and `simulate`.
//!
//! **Fleet JSON** is an array of runner objects shaped like `GET /runners/:id`
//! (so `curl` output works unchanged), each optionally extended with a
//! `runneriq` object:
//!
//! ```json
//! [{"id": 17, "description": "docker-fr-1", "tag_list": ["docker", "linux"],
//!   "status": "online", "paused": false, "run_untagged": true,
//!   "access_level": "not_protected", "maximum_timeout": 3600,
//!   "runneriq": {"concurrent": 4, "zone": "FR", "power_watts": 350,
//!                "cost_per_hour": 0.12, "running": 1}}]
//! ```
//!
//! `concurrent` is the runner's job slots (default 1: a runner object does not
//! say how many jobs its manager runs at once); `running` the jobs it runs now
//! (default: counted from the jobs input). **Jobs JSON** is an array of job
//! objects as `GET /projects/:id/jobs` returns them.
//!
//! Both are parsed with the path of the offending value in the error
//! (`fleet.json: [3].runneriq.concurrent: invalid type: string "four", expected u32`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::input;
use crate::gitlab::models::{Job, Runner};

/// Larger inputs are refused before parsing.
pub const MAX_INPUT_BYTES: u64 = 512 << 20;
/// Runners in a fleet file, jobs in a jobs file: parsing stops at one more,
/// so a file of `{}` (or any small element) cannot expand into gigabytes.
pub const MAX_RUNNERS: usize = 50_000;
pub const MAX_JOBS: usize = 500_000;
/// Sanity bound on `runneriq.concurrent`.
const MAX_CONCURRENT: u32 = 10_000;

/// RunnerIQ's extension of a runner object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerExt {
    /// Job slots (the manager's `concurrent`/`limit`); default 1.
    pub concurrent: Option<u32>,
    /// Electricity Maps zone, ISO country code or cloud region (`aws:eu-west-1`).
    pub zone: Option<String>,
    pub power_watts: Option<f64>,
    pub cost_per_hour: Option<f64>,
    /// Jobs running now; default: counted from the jobs input.
    pub running: Option<u32>,
}

/// One runner of the fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetRunner {
    #[serde(flatten)]
    pub runner: Runner,
    #[serde(default)]
    pub runneriq: RunnerExt,
}

impl FleetRunner {
    pub fn id(&self) -> u64 {
        self.runner.id
    }

    /// The runner's name for people: description, else name, else `#id`.
    pub fn label(&self) -> String {
        self.runner
            .description
            .clone()
            .filter(|d| !d.trim().is_empty())
            .or_else(|| self.runner.name.clone().filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| format!("#{}", self.runner.id))
    }

    pub fn concurrent(&self) -> u32 {
        self.runneriq.concurrent.unwrap_or(1)
    }

    pub fn paused(&self) -> bool {
        self.runner.paused == Some(true) || self.runner.active == Some(false)
    }

    /// GitLab's status; older payloads only have `online`.
    pub fn status(&self) -> &str {
        match self.runner.status.as_deref() {
            Some(s) => s,
            None => match self.runner.online {
                Some(true) => "online",
                Some(false) => "offline",
                None => "unknown",
            },
        }
    }
}

/// Parses JSON with the path of the offending value in the error.
fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    origin: &str,
    expected: &str,
) -> anyhow::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end()
                .map_err(|e| input(format!("{origin}: trailing data after the JSON value: {e}")))?;
            Ok(v)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            };
            let hint = if inner.is_syntax() || inner.is_eof() {
                format!(" (expected {expected})")
            } else {
                String::new()
            };
            Err(input(format!("{origin}: {at}{inner}{hint}")))
        }
    }
}

/// Checks a parsed fleet: ids unique and non-zero, slots in range.
pub fn validate_fleet(fleet: &[FleetRunner], origin: &str) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for (i, r) in fleet.iter().enumerate() {
        if r.runner.id == 0 {
            return Err(input(format!(
                "{origin}: [{i}].id: a runner needs a non-zero id"
            )));
        }
        if !seen.insert(r.runner.id) {
            return Err(input(format!(
                "{origin}: [{i}].id: runner {} appears twice",
                r.runner.id
            )));
        }
        if let Some(c) = r.runneriq.concurrent {
            if c == 0 || c > MAX_CONCURRENT {
                return Err(input(format!(
                    "{origin}: [{i}].runneriq.concurrent: expected 1 to {MAX_CONCURRENT} job slots, got {c}"
                )));
            }
        }
        for (field, v) in [
            ("power_watts", r.runneriq.power_watts),
            ("cost_per_hour", r.runneriq.cost_per_hour),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(input(format!(
                    "{origin}: [{i}].runneriq.{field}: expected a number ≥ 0"
                )));
            }
        }
    }
    Ok(())
}

/// One value deserialized with the path of a bad field in the error,
/// prefixed by `at` (serde's `flatten` would lose the field names).
fn from_value_at<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    origin: &str,
    at: &str,
) -> anyhow::Result<T> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let full = if path == "." || path.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{path}")
        };
        input(format!("{origin}: {full}: {inner}"))
    })
}

/// Parses fleet JSON text (`origin` names it in errors).
pub fn parse_fleet(bytes: &[u8], origin: &str) -> anyhow::Result<Vec<FleetRunner>> {
    let items: Vec<serde_json::Value> = parse_json::<
        crate::gitlab::bounded::Capped<serde_json::Value, MAX_RUNNERS>,
    >(bytes, origin, "an array of runner objects")?
    .0;
    let mut fleet = Vec::with_capacity(items.len());
    for (i, mut item) in items.into_iter().enumerate() {
        let ext = match item.as_object_mut() {
            Some(o) => o.remove("runneriq"),
            None => {
                return Err(input(format!(
                    "{origin}: [{i}]: expected a runner object, got {}",
                    match item {
                        serde_json::Value::Array(_) => "a list",
                        serde_json::Value::String(_) => "a string",
                        serde_json::Value::Number(_) => "a number",
                        serde_json::Value::Bool(_) => "a boolean",
                        _ => "null",
                    }
                )));
            }
        };
        let runner: Runner = from_value_at(item, origin, &format!("[{i}]"))?;
        let runneriq: RunnerExt = match ext {
            Some(serde_json::Value::Null) | None => RunnerExt::default(),
            Some(e) => from_value_at(e, origin, &format!("[{i}].runneriq"))?,
        };
        fleet.push(FleetRunner { runner, runneriq });
    }
    validate_fleet(&fleet, origin)?;
    Ok(fleet)
}

/// Parses jobs JSON text: an array of GitLab job objects.
pub fn parse_jobs(bytes: &[u8], origin: &str) -> anyhow::Result<Vec<Job>> {
    let jobs: Vec<Job> = parse_json::<crate::gitlab::bounded::Capped<Job, MAX_JOBS>>(
        bytes,
        origin,
        "an array of job objects",
    )?
    .0;
    let mut seen = HashSet::new();
    for (i, j) in jobs.iter().enumerate() {
        if j.id == 0 {
            return Err(input(format!(
                "{origin}: [{i}].id: a job needs a non-zero id"
            )));
        }
        if !seen.insert(j.id) {
            return Err(input(format!(
                "{origin}: [{i}].id: job {} appears twice",
                j.id
            )));
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_runner_object_is_a_fleet_entry() {
        let text = include_str!("../../tests/fixtures/gitlab/api/runner.detail.json");
        let fleet = parse_fleet(format!("[{text}]").as_bytes(), "fleet.json").unwrap();
        assert_eq!(fleet.len(), 1);
        assert_eq!(fleet[0].concurrent(), 1);
        assert!(!fleet[0].runner.tag_list.is_empty());
    }

    #[test]
    fn errors_name_the_path() {
        let e = parse_fleet(
            br#"[{"id": 1}, {"id": 2, "runneriq": {"concurrent": "four"}}]"#,
            "fleet.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("fleet.json: [1].runneriq.concurrent: invalid type"),
            "{e}"
        );
        let e = parse_fleet(br#"[{"id": 1, "runneriq": {"zones": "FR"}}]"#, "f")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[0].runneriq.zones: unknown field `zones`"),
            "{e}"
        );
        let e = parse_fleet(br#"[{"id": "seven"}]"#, "f")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("f: [0].id: invalid type: string \"seven\""),
            "{e}"
        );
        let e = parse_fleet(br#"[{"id": 1, "tag_list": ["a", 2]}]"#, "f")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f: [0].tag_list[1]: invalid type"), "{e}");
        let e = parse_fleet(br#"[7]"#, "f").unwrap_err().to_string();
        assert!(
            e.contains("[0]: expected a runner object, got a number"),
            "{e}"
        );
        let e = parse_fleet(br#"[{"id": 1}, {"id": 1}]"#, "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[1].id: runner 1 appears twice"), "{e}");
        let e = parse_fleet(br#"[{"id": 1, "runneriq": {"concurrent": 0}}]"#, "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[0].runneriq.concurrent: expected 1 to"), "{e}");
        let e = parse_fleet(b"[{\"id\": 1}", "f").unwrap_err().to_string();
        assert!(e.contains("expected an array of runner objects"), "{e}");
        let e = parse_fleet(b"\x00\xff garbage", "f")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f: "), "{e}");
        let e = parse_jobs(br#"[{"id": 5, "tag_list": "docker"}]"#, "jobs.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("jobs.json: [0].tag_list: invalid type"),
            "{e}"
        );
    }
}
