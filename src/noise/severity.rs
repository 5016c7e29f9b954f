//! How much a failed job matters: a severity from the kind of job, the
//! branch, the failure's category and its history, then the repository's
//! `severity:` rules (see [`crate::config`]), which have the last word.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::glob::Glob;
use super::rules::criteria_match;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One level up; `Critical` stays.
    pub fn raise(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }

    /// One level down; `Low` stays.
    pub fn lower(self) -> Severity {
        match self {
            Severity::Low | Severity::Medium => Severity::Low,
            Severity::High => Severity::Medium,
            Severity::Critical => Severity::High,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    /// Exactly `low`, `medium`, `high` or `critical`.
    fn from_str(s: &str) -> Result<Severity, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("expected one of low, medium, high, critical, got {s:?}"))
    }
}

/// What a job does, guessed from its stage and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Deploy,
    Build,
    Test,
    Lint,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Deploy => "deploy",
            JobKind::Build => "build",
            JobKind::Test => "test",
            JobKind::Lint => "lint",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const DEPLOY_WORDS: &[&str] = &[
    "deploy",
    "deployment",
    "release",
    "publish",
    "production",
    "prod",
    "rollout",
    "upload",
    "pages",
];
const LINT_WORDS: &[&str] = &[
    "lint", "linter", "fmt", "format", "style", "check", "checks", "clippy", "eslint", "rubocop",
    "docs", "doc", "spell",
];
const BUILD_WORDS: &[&str] = &["build", "compile", "package", "docker", "image", "assemble"];

/// The kind named by the words of `text` (split on non-alphanumerics, so
/// `prod` does not match `product`), checked deploy, lint, build in order.
fn kind_of(text: &str) -> Option<JobKind> {
    let lower = text.to_lowercase();
    let has = |list: &[&str]| {
        lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| list.contains(&w))
    };
    if has(DEPLOY_WORDS) {
        Some(JobKind::Deploy)
    } else if has(LINT_WORDS) {
        Some(JobKind::Lint)
    } else if has(BUILD_WORDS) {
        Some(JobKind::Build)
    } else {
        None
    }
}

/// The kind of a job: the stage decides when its words name a deploy, lint
/// or build step; else the job's name does; else it is a test (`test`,
/// `spec`, `e2e`, `qa`, and anything unrecognised). A test-like stage does not
/// decide, so `clippy` in the `test` stage is a lint. GitLab's `.pre` and
/// `.post` stages name nothing, so the name decides.
pub fn job_kind(name: &str, stage: &str) -> JobKind {
    kind_of(stage)
        .or_else(|| kind_of(name))
        .unwrap_or(JobKind::Test)
}

/// What is known about one failed job.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub job: &'a str,
    pub stage: &'a str,
    pub branch: Option<&'a str>,
    /// The branch is the default branch or a protected one.
    pub important_branch: bool,
    /// The failure's category id, when classified.
    pub category: Option<&'a str>,
    /// The category is transient (retrying may help).
    pub transient: bool,
    /// The job is known to fail like this on the default branch.
    pub flaky: bool,
    /// Already failing on the target branch, on a non-default-branch pipeline.
    pub upstream: bool,
}

/// A severity and the short reasons for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessed {
    pub severity: Severity,
    pub kind: JobKind,
    /// Short words, e.g. "deploy job on the default or a protected branch,
    /// transient" or "set by severity rule 2".
    pub why: String,
}

/// Categories whose failures matter one level more.
const GRAVE_CATEGORIES: &[&str] = &["security_scan", "deploy_release"];

/// The severity of a failed job. Base by kind (deploy high, build and test
/// medium, lint low); one level up on an important branch; one up for a
/// `security_scan` or `deploy_release` failure; one down when transient;
/// low when flaky or already failing upstream. Then the first of `rules` that
/// matches (every criterion it gives) sets the severity outright; rules are
/// numbered from 1 in `why`.
pub fn assess(f: &Facts, rules: &[SeverityRule]) -> Assessed {
    let kind = job_kind(f.job, f.stage);
    if let Some((i, rule)) = rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matches(f.job, f.stage, f.branch, f.category))
    {
        return Assessed {
            severity: rule.severity,
            kind,
            why: format!("set by severity rule {}", i + 1),
        };
    }

    let mut severity = match kind {
        JobKind::Deploy => Severity::High,
        JobKind::Build | JobKind::Test => Severity::Medium,
        JobKind::Lint => Severity::Low,
    };
    let mut why = vec![if f.important_branch {
        severity = severity.raise();
        format!("{kind} job on the default or a protected branch")
    } else {
        format!("{kind} job")
    }];
    if let Some(cat) = f.category.filter(|c| GRAVE_CATEGORIES.contains(c)) {
        severity = severity.raise();
        why.push(format!("{cat} failure"));
    }
    if f.transient {
        severity = severity.lower();
        why.push("transient".to_string());
    }
    if f.flaky {
        severity = Severity::Low;
        why.push("flaky".to_string());
    }
    if f.upstream {
        severity = Severity::Low;
        why.push("already failing on the target branch".to_string());
    }
    Assessed {
        severity,
        kind,
        why: why.join(", "),
    }
}

/// Sets the severity of the failures it matches.
#[derive(Debug, Clone, PartialEq)]
pub struct SeverityRule {
    pub job: Option<Glob>,
    pub stage: Option<Glob>,
    pub branch: Option<Glob>,
    pub category: Option<String>,
    pub severity: Severity,
}

impl Default for SeverityRule {
    /// No criteria (matches everything) and `medium`; a rule in the file
    /// always gives its severity.
    fn default() -> SeverityRule {
        SeverityRule {
            job: None,
            stage: None,
            branch: None,
            category: None,
            severity: Severity::Medium,
        }
    }
}

impl SeverityRule {
    /// Whether every criterion the rule gives holds (see [`SuppressRule::matches`](super::rules::SuppressRule::matches)).
    pub fn matches(
        &self,
        job: &str,
        stage: &str,
        branch: Option<&str>,
        category: Option<&str>,
    ) -> bool {
        criteria_match(
            (&self.job, &self.stage, &self.branch, &self.category),
            (job, stage, branch, category),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::Glob;

    #[test]
    fn severity_order_parse_and_saturation() {
        assert!(Severity::Low < Severity::Medium && Severity::High < Severity::Critical);
        assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
        let e = "urgent".parse::<Severity>().unwrap_err();
        assert!(
            e.contains("low, medium, high, critical") && e.contains("urgent"),
            "{e}"
        );
        assert!("High".parse::<Severity>().is_err());
        assert_eq!(Severity::Critical.raise(), Severity::Critical);
        assert_eq!(Severity::Low.lower(), Severity::Low);
        assert_eq!(Severity::Medium.raise(), Severity::High);
        assert_eq!(Severity::High.lower(), Severity::Medium);
        assert_eq!(Severity::Critical.to_string(), "critical");
        assert_eq!(
            serde_json::to_string(&Severity::Medium).unwrap(),
            "\"medium\""
        );
        assert_eq!(
            serde_json::from_str::<Severity>("\"low\"").unwrap(),
            Severity::Low
        );
        assert_eq!(
            serde_json::to_string(&JobKind::Deploy).unwrap(),
            "\"deploy\""
        );
    }

    #[test]
    fn job_kind_from_stage_then_name() {
        assert_eq!(job_kind("anything", "deploy"), JobKind::Deploy);
        assert_eq!(job_kind("unit", "build"), JobKind::Build);
        assert_eq!(job_kind("pages", "test"), JobKind::Deploy);
        assert_eq!(job_kind("clippy", "test"), JobKind::Lint);
        assert_eq!(job_kind("rspec 1/3", "test"), JobKind::Test);
        assert_eq!(job_kind("docker-image", ".pre"), JobKind::Build);
        assert_eq!(job_kind("release:npm", ".post"), JobKind::Deploy);
        assert_eq!(job_kind("cargo fmt", ".pre"), JobKind::Lint);
        assert_eq!(job_kind("e2e", "qa"), JobKind::Test);
        assert_eq!(job_kind("Deploy-Prod", "Stage-1"), JobKind::Deploy);
        // Whole words only.
        assert_eq!(job_kind("product-tests", "verify"), JobKind::Test);
        assert_eq!(job_kind("rebuilder", "checker"), JobKind::Test);
    }

    fn facts<'a>(job: &'a str, stage: &'a str) -> Facts<'a> {
        Facts {
            job,
            stage,
            ..Facts::default()
        }
    }

    #[test]
    fn base_by_kind() {
        let a = assess(&facts("deploy", "deploy"), &[]);
        assert_eq!((a.severity, a.kind), (Severity::High, JobKind::Deploy));
        assert_eq!(a.why, "deploy job");
        assert_eq!(assess(&facts("b", "build"), &[]).severity, Severity::Medium);
        assert_eq!(assess(&facts("t", "test"), &[]).severity, Severity::Medium);
        assert_eq!(assess(&facts("lint", "test"), &[]).severity, Severity::Low);
    }

    #[test]
    fn important_branch_and_grave_categories_raise() {
        let mut f = facts("deploy", "deploy");
        f.important_branch = true;
        let a = assess(&f, &[]);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.why, "deploy job on the default or a protected branch");
        f.category = Some("deploy_release");
        assert_eq!(assess(&f, &[]).severity, Severity::Critical, "capped");

        let mut f = facts("sast", "test");
        f.category = Some("security_scan");
        let a = assess(&f, &[]);
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.why, "test job, security_scan failure");
        f.category = Some("compilation");
        assert_eq!(assess(&f, &[]).severity, Severity::Medium);
    }

    #[test]
    fn transient_lowers_flaky_and_upstream_are_low() {
        let mut f = facts("deploy", "deploy");
        f.transient = true;
        let a = assess(&f, &[]);
        assert_eq!(a.severity, Severity::Medium);
        assert_eq!(a.why, "deploy job, transient");

        let mut f = facts("deploy", "deploy");
        f.important_branch = true;
        f.flaky = true;
        let a = assess(&f, &[]);
        assert_eq!(a.severity, Severity::Low);
        assert!(a.why.ends_with("flaky"), "{}", a.why);

        let mut f = facts("unit", "test");
        f.upstream = true;
        let a = assess(&f, &[]);
        assert_eq!(a.severity, Severity::Low);
        assert_eq!(a.why, "test job, already failing on the target branch");
    }

    fn rule(job: Option<&str>, branch: Option<&str>, severity: Severity) -> SeverityRule {
        SeverityRule {
            job: job.map(|g| Glob::new(g).unwrap()),
            branch: branch.map(|g| Glob::new(g).unwrap()),
            severity,
            ..SeverityRule::default()
        }
    }

    #[test]
    fn first_matching_rule_sets_the_severity() {
        let rules = [
            rule(Some("docs:*"), None, Severity::Low),
            rule(Some("deploy:*"), Some("main"), Severity::Critical),
            rule(Some("deploy:*"), None, Severity::Medium),
        ];
        let mut f = facts("deploy:eu", "deploy");
        f.branch = Some("main");
        f.flaky = true;
        let a = assess(&f, &rules);
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.kind, JobKind::Deploy);
        assert_eq!(a.why, "set by severity rule 2");

        f.branch = Some("feature");
        assert_eq!(assess(&f, &rules).why, "set by severity rule 3");
        f.branch = None;
        assert_eq!(assess(&f, &rules).severity, Severity::Medium);

        let f = facts("unit", "test");
        assert_eq!(assess(&f, &rules).why, "test job");
    }
}
