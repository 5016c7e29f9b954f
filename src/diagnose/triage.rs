//! Separates "your change broke this" from noise, on the note's data (pure):
//! suppression rules, broken upstream, known flaky, severity, then grouping of
//! jobs that failed the same way (same fingerprint) into one entry, and the
//! counts of the note's first line.

use std::collections::HashMap;

pub use super::diagnosis::{Counts, Suppressed};
use super::diagnosis::{JobBrief, JobReport, Lookups, Note};
use crate::noise::rules::SuppressRule;
use crate::noise::severity::{self, Facts, SeverityRule};

/// Names listed for a group before "…and N more".
const MAX_GROUP_NAMES: usize = 20;
/// Suppressed jobs listed before "…and N more".
const MAX_SUPPRESSED: usize = 50;

/// What triage reads of `.runneriq.yml` (see `Config::triage_rules`).
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub suppress: &'a [SuppressRule],
    pub severity: &'a [SeverityRule],
    /// `history.min_failures`: same-fingerprint failures that make a job flaky.
    pub min_failures: u32,
}

/// The facts about the pipeline's branch that triage needs.
#[derive(Debug, Clone, Default)]
pub struct BranchFacts {
    pub branch: Option<String>,
    /// The branch is the default branch or protected.
    pub important: bool,
    /// The pipeline runs on the default branch itself.
    pub on_default: bool,
}

/// Applies `.runneriq.yml` and the lookups to the note: see the module doc.
/// `n.failed` comes out grouped and ordered new → upstream → flaky, most
/// severe first; `n.counts` is set (the sentences that say it are the
/// note's, `note::set_sentences`).
pub fn triage(n: &mut Note, rules: &Rules<'_>, branch: &BranchFacts, lookups: &Lookups) {
    let branch_name = branch.branch.as_deref();
    // Suppression first: a suppressed job is only counted.
    let mut kept: Vec<JobReport> = Vec::new();
    for r in std::mem::take(&mut n.failed) {
        let rule = rules
            .suppress
            .iter()
            .position(|s| s.matches(&r.name, &r.stage, branch_name, r.category.as_deref(), false));
        match rule {
            Some(i) => n.suppressed.push(Suppressed {
                job: brief_of(&r),
                category: r.category.clone(),
                title: r.title.clone(),
                rule: i + 1,
                reason: rules.suppress[i].reason.clone(),
            }),
            None => kept.push(r),
        }
    }
    let mut allowed = Vec::new();
    for b in std::mem::take(&mut n.allowed_failures) {
        let rule = rules
            .suppress
            .iter()
            .position(|s| s.matches(&b.name, &b.stage, branch_name, None, true));
        match rule {
            Some(i) => n.suppressed.push(Suppressed {
                job: b,
                category: None,
                title: None,
                rule: i + 1,
                reason: rules.suppress[i].reason.clone(),
            }),
            None => allowed.push(b),
        }
    }
    n.allowed_failures = allowed;

    for r in &mut kept {
        if let Some(u) = lookups.upstream_jobs.get(&r.name) {
            if u.fingerprint.as_deref() == Some(r.fingerprint.as_str()) {
                r.noise = "upstream".to_string();
                r.upstream_job = Some(u.clone());
            }
        }
        if let Some(h) = lookups.history.get(&r.name) {
            r.history = Some(h.clone());
            let min = rules.min_failures.max(1);
            if r.noise == "new" && h.successes > 0 && h.same >= min {
                r.noise = "flaky".to_string();
            }
        }
        // A job with failing tests: its tests decide, one by one.
        if let Some(t) = r.tests.as_mut() {
            super::junit::apply_lookups(t, &lookups.test_upstream, &lookups.test_history);
            if r.noise == "new" {
                if let Some(noise) = super::junit::noise_of(t) {
                    r.noise = noise.to_string();
                }
            }
        }
        let facts = Facts {
            job: &r.name,
            stage: &r.stage,
            branch: branch_name,
            important_branch: branch.important,
            category: r.category.as_deref(),
            transient: r.transient,
            flaky: r.noise == "flaky",
            upstream: r.noise == "upstream" && !branch.on_default,
        };
        let a = severity::assess(&facts, rules.severity);
        r.severity = a.severity;
        r.severity_why = a.why;
        r.kind = a.kind;
    }

    // Group by (noise, fingerprint), keeping the first job as the entry.
    let mut groups: Vec<JobReport> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for r in kept {
        let key = (r.noise.clone(), r.fingerprint.clone());
        match index.get(&key) {
            Some(&i) => {
                let g = &mut groups[i];
                g.jobs_in_group += 1;
                g.severity = g.severity.max(r.severity);
                if g.same_failure.len() < MAX_GROUP_NAMES {
                    g.same_failure.push(brief_of(&r));
                } else {
                    g.omitted_same_failure += 1;
                }
            }
            None => {
                index.insert(key, groups.len());
                groups.push(r);
            }
        }
    }
    let rank = |noise: &str| match noise {
        "new" => 0,
        "upstream" => 1,
        _ => 2,
    };
    // Stable: within a rank and severity, pipeline order.
    groups.sort_by(|a, b| {
        rank(&a.noise)
            .cmp(&rank(&b.noise))
            .then(b.severity.cmp(&a.severity))
    });
    n.failed = groups;
    let extra = n.suppressed.len().saturating_sub(MAX_SUPPRESSED);
    n.suppressed.truncate(MAX_SUPPRESSED);
    n.omitted_suppressed = extra;

    n.counts = Counts::of(n);
    n.upstream = lookups.upstream.clone();
    n.history_branch = lookups.history_branch.clone();
    n.history_requests = lookups.requests;
    n.branch = branch.branch.clone();
}

fn brief_of(r: &JobReport) -> JobBrief {
    JobBrief {
        id: r.id,
        name: r.name.clone(),
        stage: r.stage.clone(),
        web_url: r.web_url.clone(),
        failure_reason: r.failure_reason.clone(),
        attempts: r.attempts,
        failed_attempts: r.failed_attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;
    use crate::diagnose::history::{JobHistory, UpstreamJob, UpstreamPipeline};
    use crate::diagnose::note::{empty_note, headline, job_report, set_sentences};

    fn report(id: u64, name: &str, stage: &str, fp: &str) -> JobReport {
        let mut r = job_report(id, name, stage, None, "p", 1, None, None, 1, 1);
        r.fingerprint = fp.to_string();
        r.readable = true;
        r.category = Some("test_failure".into());
        r.title = Some("Test failure".into());
        r
    }

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml, std::path::Path::new(".runneriq.yml")).unwrap()
    }

    /// Triage, then the sentences the note says it with.
    fn triage(n: &mut Note, cfg: &Config, facts: &BranchFacts, l: &Lookups) {
        super::triage(n, &cfg.triage_rules(), facts, l);
        set_sentences(n);
    }

    #[test]
    fn noise_is_marked_grouped_and_ordered() {
        let mut n = empty_note("p", 1);
        n.failed = vec![
            report(1, "test:e2e", "test", "f-flaky"),
            report(2, "deploy:prod", "deploy", "f-deploy"),
            report(3, "image:pull", "build", "f-up"),
            report(4, "unit [1]", "test", "f-unit"),
            report(5, "unit [2]", "test", "f-unit"),
            report(6, "docs:build", "test", "f-docs"),
            // Fails on main too, but with another error: not upstream.
            report(7, "lint", "lint", "f-lint-here"),
        ];
        n.allowed_failures = vec![brief_of(&report(8, "docs:links", "test", ""))];
        let mut l = Lookups {
            upstream: Some(UpstreamPipeline {
                branch: "main".into(),
                pipeline_id: 900,
                status: "failed".into(),
                web_url: None,
            }),
            ..Lookups::default()
        };
        for (name, fp) in [("image:pull", "f-up"), ("lint", "f-lint-main")] {
            l.upstream_jobs.insert(
                name.into(),
                UpstreamJob {
                    id: 9,
                    web_url: None,
                    fingerprint: Some(fp.into()),
                },
            );
        }
        l.history.insert(
            "test:e2e".into(),
            JobHistory {
                runs: 10,
                failures: 3,
                successes: 7,
                checked: 3,
                same: 2,
            },
        );
        let cfg = config("suppress:\n  - job: \"docs:*\"\n    reason: best effort\n");
        let facts = BranchFacts {
            branch: Some("feature/x".into()),
            important: false,
            on_default: false,
        };
        triage(&mut n, &cfg, &facts, &l);
        let order: Vec<(&str, &str)> = n
            .failed
            .iter()
            .map(|r| (r.name.as_str(), r.noise.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                ("deploy:prod", "new"),
                ("unit [1]", "new"),
                ("lint", "new"),
                ("image:pull", "upstream"),
                ("test:e2e", "flaky"),
            ]
        );
        assert_eq!(n.failed[1].jobs_in_group, 2);
        assert_eq!(n.failed[1].same_failure[0].name, "unit [2]");
        assert_eq!(n.failed[0].severity.as_str(), "high");
        assert_eq!(n.failed[3].severity.as_str(), "low");
        assert_eq!(n.failed[4].severity.as_str(), "low");
        // Both docs jobs are suppressed; the allowed one leaves its list.
        let suppressed: Vec<&str> = n.suppressed.iter().map(|s| s.job.name.as_str()).collect();
        assert_eq!(suppressed, vec!["docs:build", "docs:links"]);
        assert!(n.allowed_failures.is_empty());
        assert_eq!(
            n.headline,
            "4 new failures · 1 already failing on main · 1 flaky · 2 suppressed"
        );
        assert_eq!(
            n.verdict,
            "8 jobs failed; the 4 new ones: 4 test failure jobs"
        );
        assert_eq!(n.counts.new_errors, 3);
        assert_eq!(headline_sum(&n.headline), n.counts.total);
    }

    /// The numbers of a first line, added up.
    fn headline_sum(headline: &str) -> usize {
        headline
            .split(" · ")
            .map(|part| {
                part.split(' ')
                    .next()
                    .and_then(|w| w.parse::<usize>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    #[test]
    fn the_first_line_and_the_sentence_count_the_same_jobs() {
        // Every mix of groups: the first line's numbers add up to the total
        // the sentence states, and the new ones to the breakdown's.
        for (new, upstream, flaky, retried, suppressed, allowed) in [
            (1, 0, 0, 0, 0, 0),
            (2, 1, 1, 1, 0, 1),
            (0, 1, 0, 0, 0, 0),
            (0, 0, 0, 2, 0, 0),
            (3, 2, 2, 0, 1, 4),
            (0, 0, 0, 0, 1, 0),
        ] {
            let mut n = empty_note("p", 1);
            let mut id = 0;
            let mut next = |noise: &str, k: usize| {
                (0..k)
                    .map(|_| {
                        id += 1;
                        let mut r = report(id, &format!("{noise}{id}"), "test", &format!("f{id}"));
                        r.noise = noise.to_string();
                        r
                    })
                    .collect::<Vec<_>>()
            };
            n.failed = [
                next("new", new),
                next("upstream", upstream),
                next("flaky", flaky),
            ]
            .concat();
            n.passed_on_retry = next("retried", retried).iter().map(brief_of).collect();
            n.suppressed = next("suppressed", suppressed)
                .iter()
                .map(|r| Suppressed {
                    job: brief_of(r),
                    category: None,
                    title: None,
                    rule: 1,
                    reason: None,
                })
                .collect();
            n.allowed_failures = next("allowed", allowed).iter().map(brief_of).collect();
            let c = Counts::of(&n);
            let total = new + upstream + flaky + retried + suppressed + allowed;
            assert_eq!(c.total, total);
            let (h, _) = headline(&c, Some("main"));
            assert_eq!(headline_sum(&h), total, "{h}");
            let (v, _) = crate::diagnose::note::verdict(&c, &n.failed);
            let stated = if total == 1 {
                "1 job failed".to_string()
            } else {
                format!("{total} jobs failed")
            };
            assert!(v.starts_with(&stated), "{v}");
            if new > 0 {
                let (_, list) = v.split_once(": ").unwrap();
                assert_eq!(headline_sum(&list.replace(", ", " · ")), new, "{v}");
            }
        }
    }

    #[test]
    fn history_below_the_threshold_or_never_passing_is_not_flaky() {
        let cfg = config("history: { min_failures: 3 }\n");
        for (h, flaky) in [
            ((10, 3, 7, 3, 2), false),
            ((10, 3, 7, 3, 3), true),
            ((3, 3, 0, 3, 3), false),
        ] {
            let mut n = empty_note("p", 1);
            n.failed = vec![report(1, "t", "test", "fp")];
            let mut l = Lookups::default();
            l.history.insert(
                "t".into(),
                JobHistory {
                    runs: h.0,
                    failures: h.1,
                    successes: h.2,
                    checked: h.3,
                    same: h.4,
                },
            );
            triage(&mut n, &cfg, &BranchFacts::default(), &l);
            assert_eq!(n.failed[0].noise == "flaky", flaky, "{h:?}");
        }
    }

    #[test]
    fn a_job_with_failing_tests_is_flaky_or_upstream_by_its_tests() {
        use crate::diagnose::junit::{self, TestRuns};
        use crate::gitlab::test_report::{FailingCases, TestCase, TestSuite};
        let suite = |names: &[&str]| TestSuite {
            name: "unit".into(),
            total_count: 10,
            failed_count: names.len() as u64,
            test_cases: FailingCases {
                failing: names
                    .iter()
                    .map(|n| TestCase {
                        status: "failed".into(),
                        name: (*n).into(),
                        system_output: Some(format!("AssertionError: {n}")),
                        ..TestCase::default()
                    })
                    .collect(),
                omitted: 0,
                other: 8,
            },
            ..TestSuite::default()
        };
        let tests =
            |names: &[&str]| junit::job_tests(&suite(names), None, &[], &[], &Default::default());
        let mut l = Lookups::default();
        let key = |n: &str| junit::test_key("unit", "", n);
        l.test_history.insert(
            key("a"),
            TestRuns {
                runs: 20,
                failures: 3,
            },
        );
        let up = tests(&["b"]).all[0].message_key.clone();
        l.test_upstream.insert(key("b"), ("unit".into(), up));
        let mut n = empty_note("p", 1);
        for (id, names) in [(1, vec!["a"]), (2, vec!["b"]), (3, vec!["a", "c"])] {
            let mut r = report(id, &format!("job{id}"), "test", &format!("f{id}"));
            r.tests = Some(tests(&names));
            n.failed.push(r);
        }
        // The job's own history says nothing for a job with tests.
        l.history.insert(
            "job1".into(),
            JobHistory {
                runs: 10,
                failures: 0,
                successes: 10,
                checked: 0,
                same: 0,
            },
        );
        triage(&mut n, &Config::default(), &BranchFacts::default(), &l);
        let noise: Vec<(&str, &str)> = n
            .failed
            .iter()
            .map(|r| (r.name.as_str(), r.noise.as_str()))
            .collect();
        assert_eq!(
            noise,
            vec![("job3", "new"), ("job2", "upstream"), ("job1", "flaky")]
        );
        assert_eq!(n.counts.total, 3);
        let t = n.failed[2].tests.as_ref().unwrap();
        assert_eq!(t.flaky, 1);
        assert_eq!(
            t.groups[0].tests[0].history,
            Some(TestRuns {
                runs: 20,
                failures: 3
            })
        );
    }

    #[test]
    fn all_suppressed_says_so() {
        let mut n = empty_note("p", 1);
        n.failed = vec![report(1, "docs", "test", "fp")];
        triage(
            &mut n,
            &config("suppress:\n  - stage: test\n"),
            &BranchFacts::default(),
            &Lookups::default(),
        );
        assert!(n.failed.is_empty());
        assert_eq!(n.headline, "No new failure · 1 suppressed");
        assert_eq!(n.verdict, "1 job failed, not a new failure");
    }

    #[test]
    fn headline_counts_real_failures_and_noise() {
        let c = Counts {
            total: 16,
            new: 12,
            new_errors: 1,
            upstream: 1,
            flaky: 2,
            passed_on_retry: 1,
            suppressed: 1,
            allowed: 0,
        };
        let (md, text) = headline(&c, Some("main"));
        assert_eq!(
            md,
            "12 new failures · 1 already failing on `main` · 2 flaky · 1 suppressed"
        );
        assert_eq!(
            text,
            "12 new failures · 1 already failing on main · 2 flaky · 1 suppressed"
        );
        let (md, _) = headline(&Counts::default(), None);
        assert_eq!(md, "No new failure");
    }
}
