//! What finished jobs say about runners: how fast each runner runs a job
//! family compared with the fleet, and how often it fails for
//! infrastructure reasons (not the code's).

use std::collections::HashMap;

use crate::gitlab::models::Job;

/// `failure_reason` values that blame the runner or its infrastructure,
/// not the job's script.
pub const INFRA_REASONS: &[&str] = &[
    "runner_system_failure",
    "stuck_or_timeout_failure",
    "scheduler_failure",
    "data_integrity_failure",
    "runner_unsupported",
    "runner_configuration_error",
    "runner_interrupted",
    "api_failure",
    "archived_failure",
];

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Mean {
    sum: f64,
    n: u32,
}

impl Mean {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
    }
    fn get(self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / f64::from(self.n))
    }
}

/// Durations of one job name: on any runner, and per runner.
#[derive(Debug, Clone, Default)]
struct NameStats {
    fleet: Mean,
    per_runner: HashMap<u64, Mean>,
}

/// Statistics over finished jobs (success or failed, with a runner).
/// Lookups by job name and runner allocate nothing (routing asks for every
/// job × candidate).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// job name → durations.
    by_name: HashMap<String, NameStats>,
    /// runner → duration of any job.
    by_runner: HashMap<u64, Mean>,
    /// runner → (finished jobs, infrastructure failures).
    outcomes: HashMap<u64, (u32, u32)>,
    pub jobs: usize,
}

/// How a runner compares on one job family.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RunnerRecord {
    /// This runner's mean duration for the job name ÷ the fleet's; None
    /// without data on both sides.
    pub duration_ratio: Option<f64>,
    /// Infrastructure failures ÷ finished jobs on this runner.
    pub infra_failure_rate: Option<f64>,
    pub finished: u32,
}

impl History {
    pub fn from_jobs<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> History {
        let mut h = History::default();
        for j in jobs {
            h.add(j);
        }
        h
    }

    /// Counts one job (finished ones with a runner; others are ignored).
    pub fn add(&mut self, j: &Job) {
        if j.status != "success" && j.status != "failed" {
            return;
        }
        let Some(runner) = j.runner.as_ref().map(|r| r.id).filter(|id| *id != 0) else {
            return;
        };
        self.jobs += 1;
        let o = self.outcomes.entry(runner).or_default();
        o.0 += 1;
        let infra = j
            .failure_reason
            .as_deref()
            .is_some_and(|r| INFRA_REASONS.contains(&r));
        if infra {
            o.1 += 1;
        }
        // Durations only of successful runs: a failure's length says
        // little about speed.
        if j.status == "success" {
            if let Some(d) = j.duration.filter(|d| d.is_finite() && *d > 0.0) {
                // Look up before inserting: no allocation for a known name.
                if !self.by_name.contains_key(j.name.as_str()) {
                    self.by_name.insert(j.name.clone(), NameStats::default());
                }
                let n = self.by_name.get_mut(j.name.as_str()).expect("inserted");
                n.fleet.add(d);
                n.per_runner.entry(runner).or_default().add(d);
                self.by_runner.entry(runner).or_default().add(d);
            }
        }
    }

    pub fn record(&self, runner: u64, job_name: &str) -> RunnerRecord {
        let name = self.by_name.get(job_name);
        let mine = name
            .and_then(|n| n.per_runner.get(&runner))
            .and_then(|m| m.get());
        let fleet = name.and_then(|n| n.fleet.get());
        let (finished, infra) = self.outcomes.get(&runner).copied().unwrap_or((0, 0));
        RunnerRecord {
            duration_ratio: match (mine, fleet) {
                (Some(m), Some(f)) if f > 0.0 => Some(m / f),
                _ => None,
            },
            infra_failure_rate: (finished > 0).then(|| f64::from(infra) / f64::from(finished)),
            finished,
        }
    }

    /// Expected seconds a job of `job_name` takes on `runner`: its own mean,
    /// else the fleet's for the name, else the runner's mean, else None.
    pub fn expected_duration(&self, runner: u64, job_name: &str) -> Option<f64> {
        let name = self.by_name.get(job_name);
        name.and_then(|n| n.per_runner.get(&runner))
            .and_then(|m| m.get())
            .or_else(|| name.and_then(|n| n.fleet.get()))
            .or_else(|| self.by_runner.get(&runner).and_then(|m| m.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::models::RunnerSummary;

    fn done(runner: u64, name: &str, status: &str, duration: f64, reason: Option<&str>) -> Job {
        Job {
            id: 1,
            name: name.into(),
            status: status.into(),
            duration: Some(duration),
            failure_reason: reason.map(str::to_string),
            runner: Some(Box::new(RunnerSummary {
                id: runner,
                ..RunnerSummary::default()
            })),
            ..Job::default()
        }
    }

    #[test]
    fn ratios_and_failure_rates() {
        let jobs = [
            done(1, "build", "success", 100.0, None),
            done(1, "build", "success", 100.0, None),
            done(2, "build", "success", 300.0, None),
            done(2, "build", "failed", 5.0, Some("runner_system_failure")),
            done(2, "test", "failed", 50.0, Some("script_failure")),
        ];
        let h = History::from_jobs(&jobs);
        let r1 = h.record(1, "build");
        // Fleet mean 500/3; runner 1 at 100 → 0.6.
        assert!((r1.duration_ratio.unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(r1.infra_failure_rate, Some(0.0));
        let r2 = h.record(2, "build");
        assert!((r2.duration_ratio.unwrap() - 1.8).abs() < 1e-9);
        assert!((r2.infra_failure_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(h.record(3, "build").duration_ratio, None);
        assert_eq!(h.expected_duration(3, "build").map(f64::round), Some(167.0));
        assert_eq!(h.expected_duration(1, "deploy"), Some(100.0));
    }
}
