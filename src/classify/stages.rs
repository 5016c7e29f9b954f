//! The runner's own sections as evidence: which stage a GitLab job failed
//! in, and what a line inside each stage can say about the failure.
//!
//! gitlab-runner runs a job in fixed stages, each in its own section
//! (`prepare_executor`, `prepare_script`, `get_sources`, `restore_cache`,
//! `download_artifacts`, the script, `after_script`, `archive_cache*`,
//! `upload_artifacts_on_*`, `cleanup_file_variables`; `common/build.go`).
//! The order of the sections in a failed job's log tells where it failed:
//!
//! - no script stage started: a set-up stage failed, the last one that
//!   started (the runner starts the script only when all of them succeeded);
//! - the success path ran (`archive_cache`, `upload_artifacts_on_success`,
//!   which the runner runs only when the script passed): the job failed in
//!   them, after a script that passed;
//! - otherwise the script failed.
//!
//! From that, [`RunnerStages::weigh`] adjusts a hit's weight:
//!
//! 1. A line in a runner stage is never a compiler, test, lint or security
//!    scan verdict ([`SCRIPT_ONLY`]): only the job's script produces those.
//!    When the script passed, its own lines (and `after_script`'s) are not
//!    either.
//! 2. Lines in the runner stage the job failed in weigh fully (no clean-up
//!    discount), and lines only evidence-only rules picked there (no
//!    categorised rule matched them) count for the stage's category
//!    ([`stage_category`]) at [`STAGE_VOTE`].
//! 3. Lines in stages the job got past (set-up before a script that ran, or
//!    the script, `after_script` and set-up when the success path ran) weigh
//!    [`PASSED_STAGE`] of their usual weight.
//!
//! Nothing changes for logs without runner sections or without the runner's
//! `ERROR: Job failed` line (other CI systems, cut logs).

use std::collections::HashSet;

use super::catalog::{Catalog, Rule};
use crate::trace::{RUNNER_STAGES, SectionKind, TraceFacts};

/// Categories only a job's own script produces.
pub const SCRIPT_ONLY: &[&str] = &[
    "compilation",
    "test_failure",
    "lint_format",
    "security_scan",
];

/// Weight of a line picked by an evidence-only rule (`error`, `fatal:`) in
/// the runner stage the job failed in, for that stage's category.
pub const STAGE_VOTE: f64 = 0.5;

/// Share of its weight a line keeps in a stage the job got past: whatever
/// went wrong there was recovered from (the runner retries preparation and
/// sources, a pull policy falls back, a cache miss is a warning). It still
/// decides, unsure, when nothing else matched.
pub const PASSED_STAGE: f64 = 0.25;

/// The category a failure of this runner stage belongs to.
pub fn stage_category(name: &str) -> Option<&'static str> {
    Some(match name {
        "get_sources" | "clear_worktree" => "git_checkout",
        "prepare_executor" | "prepare_script" => "runner_system",
        "restore_cache"
        | "download_artifacts"
        | "archive_cache"
        | "archive_cache_on_failure"
        | "upload_artifacts_on_success"
        | "upload_artifacts_on_failure" => "artifact_cache",
        _ => return None,
    })
}

/// `step_script`, `build_script`, `step_<name>`: the job's script.
fn is_script_stage(name: &str) -> bool {
    name == "build_script" || name.starts_with("step_")
}

/// The job's own commands: its script and `after_script`.
fn is_user_stage(name: &str) -> bool {
    is_script_stage(name) || name == "after_script"
}

/// A stage the runner itself runs (not the job's script nor `after_script`).
fn is_runner_stage(name: &str) -> bool {
    RUNNER_STAGES.contains(&name) && !is_user_stage(name)
}

/// Stages the runner runs only after a script that passed.
fn is_success_path(name: &str) -> bool {
    matches!(name, "archive_cache" | "upload_artifacts_on_success")
}

/// Where the job failed, as far as the runner's sections say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failing {
    /// No runner sections, or no `ERROR: Job failed` line.
    Unknown,
    /// The script (a script stage started, the success path did not run).
    Script,
    /// This set-up stage (index of its section); no script stage started.
    Setup(usize),
    /// The stages after a script that passed.
    SuccessPath,
}

pub struct RunnerStages<'a> {
    facts: &'a TraceFacts,
    /// The top-level section (runner stage) each recorded section is in.
    top: Vec<usize>,
    failing: Failing,
    /// Per catalog category: is it in [`SCRIPT_ONLY`]?
    script_only: Vec<bool>,
    /// Lines a categorised rule matched (see [`RunnerStages::claim`]).
    claimed: HashSet<u64>,
}

impl<'a> RunnerStages<'a> {
    pub fn new(facts: &'a TraceFacts, catalog: &Catalog) -> Self {
        let mut top: Vec<usize> = Vec::with_capacity(facts.sections.len());
        for (i, s) in facts.sections.iter().enumerate() {
            // A parent is always recorded before its children.
            let t = s.parent.filter(|&p| p < i).map_or(i, |p| top[p]);
            top.push(t);
        }
        RunnerStages {
            facts,
            top,
            failing: failing_stage(facts),
            script_only: catalog
                .categories
                .iter()
                .map(|c| SCRIPT_ONLY.contains(&c.id.as_str()))
                .collect(),
            claimed: HashSet::new(),
        }
    }

    /// Did the job fail in one of the runner's own stages?
    pub fn failed_in_runner_stage(&self) -> bool {
        matches!(self.failing, Failing::Setup(_) | Failing::SuccessPath)
    }

    /// Notes lines a categorised rule matched: they speak for themselves and
    /// do not vote for their stage's category.
    pub fn claim(&mut self, lines: impl IntoIterator<Item = u64>) {
        self.claimed.extend(lines);
    }

    pub fn failing(&self) -> Failing {
        self.failing
    }

    /// The runner stage (top-level section) a line in `section` is in.
    fn stage_of(&self, section: Option<usize>) -> Option<usize> {
        section.and_then(|s| self.top.get(s).copied())
    }

    fn in_failing_stage(&self, stage: usize) -> bool {
        match self.failing {
            Failing::Setup(s) => s == stage,
            Failing::SuccessPath => is_success_path(&self.facts.sections[stage].name),
            Failing::Script | Failing::Unknown => false,
        }
    }

    /// Did the job get past this stage before it failed?
    fn passed(&self, stage: usize) -> bool {
        let s = &self.facts.sections[stage];
        match self.failing {
            Failing::Unknown => false,
            Failing::Script => s.kind == SectionKind::Setup,
            Failing::Setup(f) => s.kind == SectionKind::Setup && stage < f,
            Failing::SuccessPath => s.kind == SectionKind::Setup || is_user_stage(&s.name),
        }
    }

    /// A hit's weight before its distance to the failure line, and the
    /// category it counts for. `base` is the weight without the runner's
    /// stages (the rule's weight times its section kind's factor). A weight
    /// of 0 means the line says nothing about this job's failure.
    pub fn weigh(
        &self,
        catalog: &Catalog,
        rule: &Rule,
        line: u64,
        section: Option<usize>,
        base: f64,
    ) -> (f64, Option<usize>) {
        let Some(stage) = self.stage_of(section) else {
            return (base, rule.category);
        };
        let name = self.facts.sections[stage].name.as_str();
        let script_only = rule.category.is_some_and(|c| self.script_only[c]);
        if script_only
            && (is_runner_stage(name)
                || (self.failing == Failing::SuccessPath && is_user_stage(name)))
        {
            return (0.0, rule.category);
        }
        if self.in_failing_stage(stage) {
            let vote = || stage_category(name).and_then(|id| catalog.category(id));
            return match rule.category {
                Some(c) => (rule.weight, Some(c)),
                None if self.claimed.contains(&line) => (rule.weight, None),
                None => vote().map_or((rule.weight, None), |c| (STAGE_VOTE, Some(c))),
            };
        }
        if self.passed(stage) {
            return (base * PASSED_STAGE, rule.category);
        }
        (base, rule.category)
    }
}

/// Where the job failed, from the order of the runner's stages before its
/// `ERROR: Job failed` line (see the module documentation).
pub fn failing_stage(facts: &TraceFacts) -> Failing {
    let Some(job_failed) = facts.job_failed_line else {
        return Failing::Unknown;
    };
    let mut script = false;
    let mut success_path = false;
    let mut last_setup = None;
    for (i, s) in facts.sections.iter().enumerate() {
        if s.parent.is_some() || s.start_line > job_failed {
            continue;
        }
        if is_script_stage(&s.name) {
            script = true;
        } else if is_success_path(&s.name) {
            success_path = true;
        } else if s.kind == SectionKind::Setup && RUNNER_STAGES.contains(&s.name.as_str()) {
            last_setup = Some(i);
        }
    }
    match (success_path, script, last_setup) {
        (true, _, _) => Failing::SuccessPath,
        (false, true, _) => Failing::Script,
        (false, false, Some(s)) => Failing::Setup(s),
        (false, false, None) => Failing::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceWalker;

    fn facts(log: &str) -> TraceFacts {
        TraceWalker::new().walk(log.as_bytes(), |_, _| {}).unwrap()
    }

    fn stages(names: &[&str]) -> String {
        let mut log = String::new();
        for (i, n) in names.iter().enumerate() {
            log.push_str(&format!(
                "section_start:{i}:{n}\r\x1b[0K\nsome output\nsection_end:{i}:{n}\r\x1b[0K\n"
            ));
        }
        log.push_str("ERROR: Job failed: exit code 1\n");
        log
    }

    #[test]
    fn the_order_of_stages_says_where_the_job_failed() {
        let f = facts(&stages(&[
            "prepare_executor",
            "prepare_script",
            "get_sources",
        ]));
        assert_eq!(failing_stage(&f), Failing::Setup(2));
        let f = facts(&stages(&[
            "prepare_executor",
            "get_sources",
            "upload_artifacts_on_failure",
            "cleanup_file_variables",
        ]));
        assert_eq!(
            failing_stage(&f),
            Failing::Setup(1),
            "failure stages come after it"
        );
        let f = facts(&stages(&["get_sources", "step_script", "after_script"]));
        assert_eq!(failing_stage(&f), Failing::Script);
        let f = facts(&stages(&[
            "get_sources",
            "step_script",
            "upload_artifacts_on_success",
        ]));
        assert_eq!(failing_stage(&f), Failing::SuccessPath);
        let f = facts(&stages(&["get_sources", "step_build", "archive_cache"]));
        assert_eq!(failing_stage(&f), Failing::SuccessPath);
    }

    #[test]
    fn without_the_runners_failure_line_nothing_is_inferred() {
        let log = stages(&["get_sources"]).replace("ERROR: Job failed: exit code 1\n", "");
        assert_eq!(failing_stage(&facts(&log)), Failing::Unknown);
        assert_eq!(
            failing_stage(&facts(
                "FAILED tests/a.py::t\nERROR: Job failed: exit code 1\n"
            )),
            Failing::Unknown
        );
    }

    #[test]
    fn script_only_categories_never_come_from_a_runner_stage() {
        let cat = Catalog::builtin().unwrap();
        let f = facts(&stages(&["get_sources", "step_script", "after_script"]));
        let st = RunnerStages::new(&f, &cat);
        let rule = |id: &str| cat.rules.iter().find(|r| r.id == id).unwrap();
        let test = rule("go-test-fail");
        // get_sources (0), step_script (1), after_script (2).
        assert_eq!(st.weigh(&cat, test, 1, Some(0), 0.9).0, 0.0);
        assert_eq!(st.weigh(&cat, test, 1, Some(1), 0.9).0, 0.9);
        assert_eq!(
            st.weigh(&cat, test, 1, Some(2), 0.45).0,
            0.45,
            "after_script is the user's"
        );
        // Other categories in a set-up stage the job got past: a quarter.
        let git = rule("git-fatal");
        assert_eq!(st.weigh(&cat, git, 1, Some(0), 0.8).0, 0.2);
        // Outside any section: unchanged.
        assert_eq!(st.weigh(&cat, test, 1, None, 0.9).0, 0.9);
    }

    #[test]
    fn the_failing_runner_stage_decides_evidence_only_lines() {
        let cat = Catalog::builtin().unwrap();
        let f = facts(&stages(&[
            "prepare_executor",
            "get_sources",
            "upload_artifacts_on_failure",
        ]));
        let st = RunnerStages::new(&f, &cat);
        let generic = cat
            .rules
            .iter()
            .find(|r| r.id == "generic-error-word")
            .unwrap();
        let (w, c) = st.weigh(&cat, generic, 1, Some(1), generic.weight);
        assert_eq!(w, STAGE_VOTE);
        assert_eq!(c, cat.category("git_checkout"));
        // A line a categorised rule also matched speaks for itself.
        let mut st = RunnerStages::new(&f, &cat);
        st.claim([1]);
        assert_eq!(st.weigh(&cat, generic, 1, Some(1), 0.3), (0.3, None));
        // The stage before it passed; the upload after it is not the failure.
        assert_eq!(st.weigh(&cat, generic, 1, Some(0), 0.4), (0.1, None));
        assert_eq!(st.weigh(&cat, generic, 1, Some(2), 0.12), (0.12, None));
    }

    #[test]
    fn after_a_script_that_passed_its_test_lines_say_nothing() {
        let cat = Catalog::builtin().unwrap();
        let f = facts(&stages(&["step_script", "upload_artifacts_on_success"]));
        let st = RunnerStages::new(&f, &cat);
        let rule = |id: &str| cat.rules.iter().find(|r| r.id == id).unwrap();
        assert_eq!(st.weigh(&cat, rule("go-test-fail"), 1, Some(0), 0.9).0, 0.0);
        let artifacts = rule("gitlab-artifacts");
        // A teardown stage usually weighs 0.4; here it is where the job failed.
        assert_eq!(
            st.weigh(&cat, artifacts, 1, Some(1), artifacts.weight * 0.4)
                .0,
            artifacts.weight
        );
    }
}
