//! Separates "your change broke this" from noise, on the note's data (pure):
//! suppression rules, broken upstream, known flaky, severity, then grouping of
//! jobs that failed the same way (same fingerprint) into one entry, and the
//! counts of the note's first line.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Serialize;

use super::history::Lookups;
use super::note::{JobBrief, JobReport, Note};
use crate::config::Config;
use crate::noise::severity::{self, Facts};
use crate::publish::sanitize;

/// Names listed for a group before "…and N more".
const MAX_GROUP_NAMES: usize = 20;
/// Suppressed jobs listed before "…and N more".
const MAX_SUPPRESSED: usize = 50;

/// A failed job left out of the findings by a rule of `.runneriq.yml`.
#[derive(Debug, Clone, Serialize)]
pub struct Suppressed {
    pub job: JobBrief,
    pub category: Option<String>,
    pub title: Option<String>,
    /// 1-based index of the rule in `suppress:`.
    pub rule: usize,
    pub reason: Option<String>,
}

/// The one set of counts the note uses (first line, sentence, group
/// headings), in jobs. Each failed job is in exactly one group, so
/// `total = new + upstream + flaky + suppressed + allowed`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Jobs that failed, attempts that passed on retry included.
    pub total: usize,
    /// Failed jobs not explained by the target branch: likely this change.
    pub new: usize,
    /// Distinct errors (fingerprints) among the new failures.
    pub new_errors: usize,
    /// Jobs already failing the same way on the target branch.
    pub upstream: usize,
    /// Known flaky jobs plus jobs that passed on retry.
    pub flaky: usize,
    /// Of `flaky`, the jobs that passed on retry.
    pub passed_on_retry: usize,
    /// Failed jobs matched by a `suppress:` rule of `.runneriq.yml`.
    pub suppressed: usize,
    /// Jobs with `allow_failure` that failed.
    pub allowed: usize,
}

impl Counts {
    /// Counts the note's jobs: entries of `failed` by their `noise`, each
    /// with every job it stands for.
    pub fn of(n: &Note) -> Counts {
        let jobs = |noise: &str| -> usize {
            n.failed
                .iter()
                .filter(|r| r.noise == noise)
                .map(|r| r.jobs_in_group)
                .sum()
        };
        let passed_on_retry = n.passed_on_retry.len() + n.omitted_passed_on_retry;
        let mut c = Counts {
            total: 0,
            new: jobs("new"),
            new_errors: n.failed.iter().filter(|r| r.noise == "new").count(),
            upstream: jobs("upstream"),
            flaky: jobs("flaky") + passed_on_retry,
            passed_on_retry,
            suppressed: n.suppressed.len() + n.omitted_suppressed,
            allowed: n.allowed_failures.len() + n.omitted_allowed_failures,
        };
        c.total = c.new + c.upstream + c.flaky + c.suppressed + c.allowed;
        c
    }
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
/// severe first; `n.headline*` and `n.counts` are set.
pub fn triage(n: &mut Note, config: &Config, branch: &BranchFacts, lookups: &Lookups) {
    let branch_name = branch.branch.as_deref();
    // Suppression first: a suppressed job is only counted.
    let mut kept: Vec<JobReport> = Vec::new();
    for r in std::mem::take(&mut n.failed) {
        let rule = config
            .suppress
            .iter()
            .position(|s| s.matches(&r.name, &r.stage, branch_name, r.category.as_deref(), false));
        match rule {
            Some(i) => n.suppressed.push(Suppressed {
                job: brief_of(&r),
                category: r.category.clone(),
                title: r.title.clone(),
                rule: i + 1,
                reason: config.suppress[i].reason.clone(),
            }),
            None => kept.push(r),
        }
    }
    let mut allowed = Vec::new();
    for b in std::mem::take(&mut n.allowed_failures) {
        let rule = config
            .suppress
            .iter()
            .position(|s| s.matches(&b.name, &b.stage, branch_name, None, true));
        match rule {
            Some(i) => n.suppressed.push(Suppressed {
                job: b,
                category: None,
                title: None,
                rule: i + 1,
                reason: config.suppress[i].reason.clone(),
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
            let min = config.history.min_failures.max(1);
            if r.noise == "new" && h.successes > 0 && h.same >= min {
                r.noise = "flaky".to_string();
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
        let a = severity::assess(&facts, &config.severity);
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

    let c = Counts::of(n);
    let upstream_branch = lookups.upstream.as_ref().map(|u| u.branch.as_str());
    let (md, text) = headline(&c, upstream_branch);
    n.headline_md = md;
    n.headline = text;
    let (vmd, vtext) = super::note::verdict(&c, &n.failed);
    n.verdict_md = vmd;
    n.verdict = vtext;
    n.counts = c;
    n.upstream = lookups.upstream.clone();
    n.history_branch = lookups.history_branch.clone();
    n.history_requests = lookups.requests;
    n.branch = branch.branch.clone();
}

/// "1 new failure · 1 already failing on `main` · 2 flaky · 1 suppressed",
/// as Markdown and as plain text: the groups of the note in their order, in
/// jobs, adding up to `c.total`. Zero counts are left out, except "new".
pub fn headline(c: &Counts, upstream_branch: Option<&str>) -> (String, String) {
    let mut md = String::new();
    let mut text = String::new();
    match c.new {
        0 => md.push_str("No new failure"),
        1 => md.push_str("1 new failure"),
        k => {
            let _ = write!(md, "{k} new failures");
        }
    }
    text.push_str(&md);
    let mut part = |m: String, t: String| {
        md.push_str(" · ");
        md.push_str(&m);
        text.push_str(" · ");
        text.push_str(&t);
    };
    if c.upstream > 0 {
        let b = upstream_branch.unwrap_or("the target branch");
        part(
            format!(
                "{} already failing on {}",
                c.upstream,
                sanitize::code_span(b)
            ),
            format!("{} already failing on {b}", c.upstream),
        );
    }
    if c.flaky > 0 {
        part(format!("{} flaky", c.flaky), format!("{} flaky", c.flaky));
    }
    if c.suppressed > 0 {
        part(
            format!("{} suppressed", c.suppressed),
            format!("{} suppressed", c.suppressed),
        );
    }
    if c.allowed > 0 {
        part(
            format!("{} allowed to fail", c.allowed),
            format!("{} allowed to fail", c.allowed),
        );
    }
    (md, text)
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

    use crate::diagnose::history::{JobHistory, UpstreamJob, UpstreamPipeline};
    use crate::diagnose::note::{empty_note, job_report};

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
