//! The repository's `suppress:` rules (`.runneriq.yml`) as data, and the
//! criteria every noise rule matches with: `config.rs` reads them, triage
//! and severity apply them.

use super::glob::Glob;

/// A failure that is noise. Every criterion given must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SuppressRule {
    pub job: Option<Glob>,
    pub stage: Option<Glob>,
    pub branch: Option<Glob>,
    pub category: Option<String>,
    pub allow_failure: Option<bool>,
    pub reason: Option<String>,
}

impl SuppressRule {
    /// Whether every criterion the rule gives holds; a `branch` criterion
    /// does not match when the branch is unknown (`None`), nor a `category`
    /// criterion an unclassified failure.
    pub fn matches(
        &self,
        job: &str,
        stage: &str,
        branch: Option<&str>,
        category: Option<&str>,
        allow_failure: bool,
    ) -> bool {
        criteria_match(
            (&self.job, &self.stage, &self.branch, &self.category),
            (job, stage, branch, category),
        ) && self.allow_failure.is_none_or(|a| a == allow_failure)
    }
}

pub(crate) type Criteria<'a> = (
    &'a Option<Glob>,
    &'a Option<Glob>,
    &'a Option<Glob>,
    &'a Option<String>,
);

pub(crate) fn criteria_match(
    (job_glob, stage_glob, branch_glob, want_category): Criteria,
    (job, stage, branch, category): (&str, &str, Option<&str>, Option<&str>),
) -> bool {
    job_glob.as_ref().is_none_or(|g| g.matches(job))
        && stage_glob.as_ref().is_none_or(|g| g.matches(stage))
        && branch_glob
            .as_ref()
            .is_none_or(|g| branch.is_some_and(|b| g.matches(b)))
        && want_category.as_deref().is_none_or(|c| category == Some(c))
}
