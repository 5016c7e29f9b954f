//! The report's flakiest tests (pure): the default branch's unit test
//! reports over the window, streamed in one pipeline at a time, reduced to
//! each test's runs and failures.
//!
//! A test's runs are the pipelines whose report has its suite (GitLab's
//! per-job report: every test of the suite ran); its failures, the ones
//! where it failed (status `failed` or `error`). A test that failed every
//! time is broken, not flaky, and is left out; the rest are ranked by
//! failure rate, then failures. Memory is bounded: at most
//! [`MAX_TRACKED`] distinct failing tests are tracked (the first seen).

use std::collections::HashMap;

use serde::Serialize;

use crate::gitlab::test_report::TestReport;

/// Distinct failing tests tracked over a window.
pub const MAX_TRACKED: usize = 10_000;
/// Tests listed in the report.
pub const SHOWN: usize = 10;
/// Longest test label kept.
const LABEL_CHARS: usize = 160;

/// One flaky test of the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlakyTest {
    pub suite: String,
    /// `Class › name`.
    pub name: String,
    pub runs: u32,
    pub failures: u32,
    /// failures ÷ runs, 0..1.
    pub rate: f64,
    /// The pipeline of its latest failure, and its Tests tab.
    pub last_pipeline: u64,
    pub last_url: Option<String>,
}

/// One default-branch pipeline's report, as the aggregator takes it.
pub struct PipelineReport<'a> {
    pub pipeline: u64,
    /// The pipeline's page (its Tests tab is `<web_url>/test_report`).
    pub web_url: Option<&'a str>,
    pub report: &'a TestReport,
}

#[derive(Default)]
struct Tally {
    failures: u32,
    last_pipeline: u64,
    last_url: Option<String>,
}

/// Streams pipelines' reports into per-test counts.
#[derive(Default)]
pub struct TestAggregator {
    /// Pipelines read, per suite.
    suite_runs: HashMap<String, u32>,
    /// (suite, label) → tally.
    tests: HashMap<(String, String), Tally>,
    pipelines: u32,
    dropped: u64,
}

fn label(classname: Option<&str>, name: &str) -> String {
    let s = match classname.filter(|c| !c.is_empty()) {
        Some(c) => format!("{c} › {name}"),
        None => name.to_string(),
    };
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::truncate_chars(&flat, LABEL_CHARS).to_string()
}

impl TestAggregator {
    pub fn new() -> TestAggregator {
        TestAggregator::default()
    }

    /// Adds one pipeline's report (each pipeline once).
    pub fn add(&mut self, p: &PipelineReport<'_>) {
        self.pipelines += 1;
        let url = p
            .web_url
            .map(|u| format!("{}/test_report", u.trim_end_matches('/')));
        for s in &p.report.test_suites {
            if s.suite_error.is_some() {
                continue;
            }
            *self.suite_runs.entry(s.name.clone()).or_default() += 1;
            for c in &s.test_cases.failing {
                let key = (s.name.clone(), label(c.classname.as_deref(), &c.name));
                if !self.tests.contains_key(&key) && self.tests.len() >= MAX_TRACKED {
                    self.dropped += 1;
                    continue;
                }
                let t = self.tests.entry(key).or_default();
                t.failures += 1;
                if p.pipeline >= t.last_pipeline {
                    t.last_pipeline = p.pipeline;
                    t.last_url = url.clone();
                }
            }
        }
    }

    /// Pipelines whose reports were added.
    pub fn pipelines(&self) -> u32 {
        self.pipelines
    }

    /// The flakiest tests: failed at least once and passed at least once,
    /// by failure rate, then failures, then name; at most `limit`.
    pub fn finish(self, limit: usize) -> Vec<FlakyTest> {
        let mut out: Vec<FlakyTest> = self
            .tests
            .into_iter()
            .filter_map(|((suite, name), t)| {
                let runs = self
                    .suite_runs
                    .get(&suite)
                    .copied()
                    .unwrap_or(0)
                    .max(t.failures);
                (t.failures < runs).then(|| FlakyTest {
                    rate: f64::from(t.failures) / f64::from(runs),
                    suite,
                    name,
                    runs,
                    failures: t.failures,
                    last_pipeline: t.last_pipeline,
                    last_url: t.last_url,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.rate
                .total_cmp(&a.rate)
                .then(b.failures.cmp(&a.failures))
                .then(a.suite.cmp(&b.suite))
                .then(a.name.cmp(&b.name))
        });
        out.truncate(limit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(suites: serde_json::Value) -> TestReport {
        serde_json::from_value(serde_json::json!({ "test_suites": suites })).unwrap()
    }

    fn failing(name: &str) -> serde_json::Value {
        serde_json::json!({"status": "failed", "name": name, "classname": "C"})
    }

    #[test]
    fn flaky_tests_are_ranked_by_failure_rate_and_broken_ones_left_out() {
        let mut agg = TestAggregator::new();
        for p in 1..=10u64 {
            let mut cases = Vec::new();
            if p % 5 == 0 {
                cases.push(failing("sometimes")); // 2 of 10
            }
            if p == 3 {
                cases.push(failing("once")); // 1 of 10
            }
            let mut suites = vec![serde_json::json!({"name": "unit", "test_cases": cases})];
            if p > 8 {
                // A suite that only ran twice, failing both times: broken.
                suites.push(serde_json::json!({"name": "e2e", "test_cases": [failing("broken")]}));
            }
            let r = report(serde_json::Value::Array(suites));
            let url = format!("https://g/p/-/pipelines/{p}");
            agg.add(&PipelineReport {
                pipeline: p,
                web_url: Some(&url),
                report: &r,
            });
        }
        assert_eq!(agg.pipelines(), 10);
        let out = agg.finish(SHOWN);
        let names: Vec<(&str, u32, u32)> = out
            .iter()
            .map(|t| (t.name.as_str(), t.failures, t.runs))
            .collect();
        assert_eq!(names, vec![("C › sometimes", 2, 10), ("C › once", 1, 10)]);
        assert_eq!(out[0].last_pipeline, 10);
        assert_eq!(
            out[0].last_url.as_deref(),
            Some("https://g/p/-/pipelines/10/test_report")
        );
        assert!((out[0].rate - 0.2).abs() < 1e-9);
    }

    #[test]
    fn the_number_of_tests_tracked_is_capped() {
        let mut agg = TestAggregator::new();
        // Suites keep at most 1,000 failing cases each: 11 suites.
        let suites: Vec<serde_json::Value> = (0..11)
            .map(|s| {
                let n = if s == 10 { 7 } else { 1000 };
                let cases: Vec<serde_json::Value> =
                    (0..n).map(|i| failing(&format!("t{i}"))).collect();
                serde_json::json!({"name": format!("suite{s}"), "test_cases": cases})
            })
            .collect();
        let r = report(serde_json::Value::Array(suites));
        agg.add(&PipelineReport {
            pipeline: 1,
            web_url: None,
            report: &r,
        });
        assert_eq!(agg.dropped, 7);
        // One run, one failure each: broken, not flaky.
        assert!(agg.finish(SHOWN).is_empty());
    }
}
