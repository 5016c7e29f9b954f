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
use crate::noise::severity::{self, Facts, Severity};
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

/// What the note's first line counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Distinct new failures (groups) and the jobs they cover.
    pub new: usize,
    pub new_jobs: usize,
    /// Known flaky failures plus jobs that passed on retry.
    pub flaky: usize,
    /// Failures already failing the same way on the target branch.
    pub upstream: usize,
    pub suppressed: usize,
    pub allowed: usize,
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

    let c = Counts {
        new: n.failed.iter().filter(|r| r.noise == "new").count(),
        new_jobs: n
            .failed
            .iter()
            .filter(|r| r.noise == "new")
            .map(|r| r.jobs_in_group)
            .sum(),
        flaky: n.failed.iter().filter(|r| r.noise == "flaky").count()
            + n.passed_on_retry.len()
            + n.omitted_passed_on_retry,
        upstream: n.failed.iter().filter(|r| r.noise == "upstream").count(),
        suppressed: n.suppressed.len() + extra,
        allowed: n.allowed_failures.len() + n.omitted_allowed_failures,
    };
    let upstream_branch = lookups.upstream.as_ref().map(|u| u.branch.as_str());
    let (md, text) = headline(&c, upstream_branch);
    n.headline_md = md;
    n.headline = text;
    // The verdict speaks of the new failures, or of all when none is new.
    let new: Vec<JobReport> = n
        .failed
        .iter()
        .filter(|r| r.noise == "new")
        .cloned()
        .collect();
    let subset = if new.is_empty() { &n.failed } else { &new };
    if !subset.is_empty() {
        let (vmd, vtext) = super::note::verdict(
            subset,
            n.passed_on_retry.len() + n.omitted_passed_on_retry,
            c.allowed,
        );
        n.verdict_md = vmd;
        n.verdict = vtext;
    } else {
        n.verdict_md = "every failed job matched a `suppress:` rule of `.runneriq.yml`".into();
        n.verdict = "every failed job matched a suppress: rule of .runneriq.yml".into();
    }
    n.counts = c;
    n.upstream = lookups.upstream.clone();
    n.history_branch = lookups.history_branch.clone();
    n.history_requests = lookups.requests;
    n.branch = branch.branch.clone();
}

/// "1 new failure · 2 flaky · 1 already failing on `main` · 1 suppressed",
/// as Markdown and as plain text. Zero counts are left out, except "new".
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
    if c.new_jobs > c.new {
        let _ = write!(md, " ({} jobs)", c.new_jobs);
    }
    text.push_str(&md);
    let mut part = |m: String, t: String| {
        md.push_str(" · ");
        md.push_str(&m);
        text.push_str(" · ");
        text.push_str(&t);
    };
    if c.flaky > 0 {
        part(format!("{} flaky", c.flaky), format!("{} flaky", c.flaky));
    }
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

/// The severity a Slack or webhook threshold compares with: the worst new
/// (or, on the default branch, upstream) failure of the note.
pub fn worst(n: &Note) -> Option<Severity> {
    n.failed.iter().map(|r| r.severity).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_counts_real_failures_and_noise() {
        let c = Counts {
            new: 1,
            new_jobs: 12,
            flaky: 2,
            upstream: 1,
            suppressed: 1,
            allowed: 0,
        };
        let (md, text) = headline(&c, Some("main"));
        assert_eq!(
            md,
            "1 new failure (12 jobs) · 2 flaky · 1 already failing on `main` · 1 suppressed"
        );
        assert_eq!(
            text,
            "1 new failure (12 jobs) · 2 flaky · 1 already failing on main · 1 suppressed"
        );
        let (md, _) = headline(&Counts::default(), None);
        assert_eq!(md, "No new failure");
    }
}
