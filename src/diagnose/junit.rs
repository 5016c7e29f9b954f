//! Failing tests by name, from GitLab's unit test reports (pure).
//!
//! A job whose pipeline has a test report (`artifacts: reports: junit:`)
//! is described by its failing tests rather than by its log: each with its
//! suite, class, name, file and message (the first meaningful line of
//! `system_output`, else of `stack_trace`, redacted), whether it points at a
//! file the change touched (its `file`, or a file in its stack trace), and,
//! once the default branch's reports were read, whether it is known flaky
//! there ("failed 3 of its last 20 runs on `main`") or already failing the
//! same way on the target branch's latest pipeline. For the note the tests
//! are grouped (same message, else same file) and only the first few are
//! shown: a job with 40 failing tests is a few names and "and 37 more".
//!
//! A suite is GitLab's per-job report: named after the job (a parallel job's
//! group name, `rspec 1/3` → `rspec`), its jobs listed in the summary's
//! `build_ids`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::correlate;
use crate::gitlab::test_report::{SuiteSummary, TestCase, TestReportSummary, TestSuite};
use crate::llm::redact::Redactor;

/// Groups of tests shown per job.
pub const SHOWN_GROUPS: usize = 5;
/// Test names shown per group.
pub const SHOWN_PER_GROUP: usize = 3;
/// Longest test label (`Class › name`) and message shown.
pub const LABEL_CHARS: usize = 160;
pub const MESSAGE_CHARS: usize = 200;
/// Lines of a message or stack trace searched for the message and for files.
const SCAN_LINES: usize = 200;

/// One failing test of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FailingTest {
    pub suite: String,
    pub classname: Option<String>,
    pub name: String,
    /// `Class › name`, one line, at most [`LABEL_CHARS`] characters.
    pub label: String,
    /// The test's file as the report names it (checkout prefix removed).
    pub file: Option<String>,
    /// The first meaningful line of its output or stack trace, redacted,
    /// one line, at most [`MESSAGE_CHARS`] characters.
    pub message: Option<String>,
    /// The message normalised (numbers, ids, times): equal for "the same
    /// failure" in another run.
    #[serde(skip)]
    pub message_key: String,
    /// The changed file it points at (its file, else one in its stack trace).
    pub changed_file: Option<String>,
    /// Failing the same way in the target branch's latest pipeline.
    pub upstream: bool,
    /// Its recent runs on the default branch, when read.
    pub history: Option<TestRuns>,
    /// Failed there now and then, and passed too: known flaky.
    pub flaky: bool,
}

impl FailingTest {
    /// The identity of a test across pipelines: suite, class and name.
    pub fn key(&self) -> String {
        test_key(
            &self.suite,
            self.classname.as_deref().unwrap_or_default(),
            &self.name,
        )
    }
    /// What it is, for grouping: the change's, upstream, flaky or plain new.
    fn mark(&self) -> u8 {
        if self.changed_file.is_some() {
            0
        } else if self.upstream {
            2
        } else if self.flaky {
            3
        } else {
            1
        }
    }
}

/// A test's runs on the default branch: how many are known and how many of
/// them failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TestRuns {
    pub runs: u32,
    pub failures: u32,
}

/// Tests shown together: the same message (or, without one, the same file)
/// and the same marks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TestGroup {
    /// Tests in the group.
    pub count: usize,
    /// The first [`SHOWN_PER_GROUP`] of them.
    pub tests: Vec<FailingTest>,
    /// `count` − shown.
    pub more: usize,
    /// The shared message, when the group is by message.
    pub message: Option<String>,
    /// The shared file, when the group is by file.
    pub file: Option<String>,
}

/// A job's failing tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobTests {
    pub suite: String,
    /// Failing tests of the suite (failed and error), all counted.
    pub failing: u64,
    /// Tests in the suite.
    pub total: u64,
    /// The pipeline's Tests tab (`<pipeline>/test_report`).
    pub tests_url: Option<String>,
    /// Every failing test read (at most the report model's cap).
    #[serde(skip)]
    pub all: Vec<FailingTest>,
    /// What the note shows, most relevant first.
    pub groups: Vec<TestGroup>,
    /// Failing tests in no group shown (the groups say their own "and N more").
    pub more: u64,
    /// Of the failing tests read: pointing at a changed file, already
    /// failing upstream, known flaky.
    pub changed: usize,
    pub upstream: usize,
    pub flaky: usize,
}

/// `suite`, `classname` and `name` joined by a separator no name has.
pub fn test_key(suite: &str, classname: &str, name: &str) -> String {
    format!("{suite}\u{1f}{classname}\u{1f}{name}")
}

/// A parallel or matrix job's group name, as GitLab names its suite:
/// `rspec 1/3` → `rspec`, `test: [py3.10]` → `test:`… kept simple: a
/// trailing `N/M` and a trailing `[…]` are removed.
pub fn group_name(job: &str) -> &str {
    let mut s = job.trim_end();
    if let Some(i) = s.rfind(' ') {
        let tail = &s[i + 1..];
        if let Some((a, b)) = tail.split_once('/') {
            if !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
            {
                s = s[..i].trim_end();
            }
        }
    }
    if s.ends_with(']') {
        if let Some(i) = s.rfind(" [") {
            s = s[..i].trim_end();
        }
    }
    s
}

/// The summary's suite of a job: the one listing its id in `build_ids`, else
/// the one named after the job (or its group name).
pub fn suite_of<'a>(
    summary: &'a TestReportSummary,
    job_id: u64,
    job_name: &str,
) -> Option<&'a SuiteSummary> {
    summary
        .test_suites
        .iter()
        .find(|s| s.build_ids.contains(&job_id))
        .or_else(|| summary.test_suites.iter().find(|s| s.name == job_name))
        .or_else(|| {
            let g = group_name(job_name);
            summary.test_suites.iter().find(|s| s.name == g)
        })
}

/// Whether a summary says there is anything to read: tests that failed.
pub fn has_failures(summary: &TestReportSummary) -> bool {
    summary.total.failed + summary.total.error > 0
        || summary
            .test_suites
            .iter()
            .any(|s| s.failed_count + s.error_count > 0)
}

/// Lines that say nothing: separators, bare headings of test runners.
fn is_filler(line: &str) -> bool {
    let t = line.trim();
    t.is_empty()
        || t.chars().all(|c| !c.is_alphanumeric())
        || matches!(
            t,
            "Failure/Error:" | "Traceback (most recent call last):" | "Stack Trace:" | "Failure:"
        )
}

/// Words that make a line the failure's message rather than context.
fn says_failure(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "error",
        "exception",
        "assert",
        "expected",
        "fail",
        "panicked",
        "timeout",
        "timed out",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// One line: invisible whitespace runs collapsed, cut at `max` with `…`.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = crate::text::truncate_chars(&flat, max);
    if cut.len() < flat.len() {
        format!("{cut}…")
    } else {
        flat
    }
}

/// The first meaningful line of a test's output, else of its stack trace:
/// the first of the first [`SCAN_LINES`] that reads as a failure, else the
/// first that is not filler.
pub fn message_of(system_output: Option<&str>, stack_trace: Option<&str>) -> Option<String> {
    for text in [system_output, stack_trace].into_iter().flatten() {
        let lines: Vec<&str> = text
            .lines()
            .take(SCAN_LINES)
            .filter(|l| !is_filler(l))
            .collect();
        if let Some(l) = lines.iter().find(|l| says_failure(l)).or(lines.first()) {
            return Some(l.trim().to_string());
        }
    }
    None
}

/// A failing test from a report's case: texts redacted and made one line,
/// its file and stack trace matched against the changed paths.
pub fn failing_test(
    suite: &str,
    case: &TestCase,
    changed: &[String],
    prefixes: &[String],
    redactor: &Redactor,
) -> FailingTest {
    let red = |s: &str| redactor.line(s).into_owned();
    let name = one_line(&red(&case.name), LABEL_CHARS);
    let classname = case
        .classname
        .as_deref()
        .map(|c| one_line(&red(c), LABEL_CHARS))
        .filter(|c| !c.is_empty());
    let label = match &classname {
        Some(c) => one_line(&format!("{c} › {name}"), LABEL_CHARS),
        None => name.clone(),
    };
    let file = case
        .file
        .as_deref()
        .map(|f| one_line(&red(&correlate::normalize(f, prefixes)), LABEL_CHARS))
        .filter(|f| !f.is_empty());
    let message = message_of(case.system_output.as_deref(), case.stack_trace.as_deref())
        .map(|m| one_line(&red(&m), MESSAGE_CHARS));
    let message_key = message
        .as_deref()
        .map(crate::noise::fingerprint::normalize)
        .unwrap_or_default();
    // The test's own file first, then files named in its output and trace.
    let mut changed_file = file
        .as_deref()
        .and_then(|f| correlate::match_changed(f, changed))
        .map(str::to_string);
    if changed_file.is_none() && !changed.is_empty() {
        'scan: for text in [case.system_output.as_deref(), case.stack_trace.as_deref()]
            .into_iter()
            .flatten()
        {
            for line in text.lines().take(SCAN_LINES) {
                for r in correlate::extract(line, prefixes) {
                    if let Some(c) = correlate::match_changed(&r.path, changed) {
                        changed_file = Some(c.to_string());
                        break 'scan;
                    }
                }
            }
        }
    }
    FailingTest {
        suite: one_line(suite, LABEL_CHARS),
        classname,
        name,
        label,
        file,
        message,
        message_key,
        changed_file,
        upstream: false,
        history: None,
        flaky: false,
    }
}

/// The failing tests of `suite` as one job's, grouped for the note.
pub fn job_tests(
    suite: &TestSuite,
    tests_url: Option<String>,
    changed: &[String],
    prefixes: &[String],
    redactor: &Redactor,
) -> JobTests {
    let all: Vec<FailingTest> = suite
        .test_cases
        .failing
        .iter()
        .map(|c| failing_test(&suite.name, c, changed, prefixes, redactor))
        .collect();
    let read = all.len() as u64 + suite.test_cases.omitted;
    let mut t = JobTests {
        suite: one_line(&suite.name, LABEL_CHARS),
        failing: read.max(suite.failed_count + suite.error_count),
        total: suite.total_count.max(read + suite.test_cases.other),
        tests_url,
        all,
        ..JobTests::default()
    };
    regroup(&mut t);
    t
}

/// The failing tests of a report's suites as `key → (suite, message key)`.
pub fn failing_keys(
    suites: &[TestSuite],
    redactor: &Redactor,
) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    for s in suites {
        for c in &s.test_cases.failing {
            let t = failing_test(&s.name, c, &[], &[], redactor);
            out.insert(t.key(), (s.name.clone(), t.message_key));
        }
    }
    out
}

/// A fingerprint of a job that failed these tests: the same failing tests
/// are the same failure, whatever the log says around them.
pub fn fingerprint(t: &JobTests) -> String {
    fingerprint_keys(t.all.iter().map(FailingTest::key).collect())
}

/// [`fingerprint`] from a report's suite, before the job's tests are built.
pub fn fingerprint_suite(suite: &TestSuite, redactor: &Redactor) -> String {
    fingerprint_keys(suite_keys(suite, redactor))
}

/// The keys of a suite's failing tests, as [`FailingTest::key`] makes them.
pub fn suite_keys(suite: &TestSuite, redactor: &Redactor) -> Vec<String> {
    suite
        .test_cases
        .failing
        .iter()
        .map(|c| failing_test(&suite.name, c, &[], &[], redactor).key())
        .collect()
}

fn fingerprint_keys(mut keys: Vec<String>) -> String {
    keys.sort();
    keys.dedup();
    keys.truncate(50);
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    crate::noise::fingerprint::fingerprint("test_failure", &refs)
}

/// Marks each test from the lookups: already failing upstream (the same key
/// with the same message in the target branch's latest pipeline), its
/// default-branch runs, known flaky (failed there, and passed too). Then
/// regroups.
pub fn apply_lookups(
    t: &mut JobTests,
    upstream: &HashMap<String, (String, String)>,
    history: &HashMap<String, TestRuns>,
) {
    for test in &mut t.all {
        let key = test.key();
        test.upstream = upstream
            .get(&key)
            .is_some_and(|(_, msg)| *msg == test.message_key);
        test.history = history.get(&key).copied();
        test.flaky = !test.upstream
            && test
                .history
                .is_some_and(|h| h.failures > 0 && h.runs > h.failures);
    }
    regroup(t);
}

/// The job's noise from its tests: `upstream` when every failing test is
/// already failing upstream, `flaky` when every one is upstream or known
/// flaky and one is flaky; `None` (no claim) otherwise, or when tests were
/// left unread.
pub fn noise_of(t: &JobTests) -> Option<&'static str> {
    if t.all.is_empty() || (t.all.len() as u64) < t.failing {
        return None;
    }
    if t.all.iter().all(|x| x.upstream) {
        return Some("upstream");
    }
    if t.all.iter().all(|x| x.upstream || x.flaky) {
        return Some("flaky");
    }
    None
}

/// Sorts and groups `t.all` into `t.groups` (see the module doc) and counts.
pub fn regroup(t: &mut JobTests) {
    let mut order: Vec<&FailingTest> = t.all.iter().collect();
    order.sort_by_key(|x| x.mark());
    // Group key: marks, then the message (or the file without one).
    let mut groups: Vec<(String, Vec<&FailingTest>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, x) in order.iter().enumerate() {
        let key = match (&x.message, &x.file) {
            (Some(_), _) => format!("{}m{}", x.mark(), x.message_key),
            (None, Some(f)) => format!("{}f{f}", x.mark()),
            (None, None) => format!("{}u{i}", x.mark()),
        };
        match index.get(&key) {
            Some(&g) => groups[g].1.push(x),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![x]));
            }
        }
    }
    t.groups = groups
        .into_iter()
        .take(SHOWN_GROUPS)
        .map(|(key, members)| {
            let shown: Vec<FailingTest> = members
                .iter()
                .take(SHOWN_PER_GROUP)
                .map(|x| (*x).clone())
                .collect();
            let by_message = key.as_bytes().get(1) == Some(&b'm');
            TestGroup {
                count: members.len(),
                more: members.len() - shown.len(),
                message: if by_message {
                    members[0].message.clone()
                } else {
                    None
                },
                file: if by_message {
                    None
                } else {
                    members[0].file.clone()
                },
                tests: shown,
            }
        })
        .collect();
    let in_groups: u64 = t.groups.iter().map(|g| g.count as u64).sum();
    t.more = t.failing.saturating_sub(in_groups);
    t.changed = t.all.iter().filter(|x| x.changed_file.is_some()).count();
    t.upstream = t.all.iter().filter(|x| x.upstream).count();
    t.flaky = t.all.iter().filter(|x| x.flaky).count();
}

/// One job's recent default-branch run, newest first: its pipeline and
/// whether it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub pipeline: u64,
    pub passed: bool,
}

/// Each test's runs on the default branch: a run whose job passed counts as
/// a pass for every test (its suite passed); a failed run counts when its
/// pipeline's report was read (`reports`: pipeline → failing keys of the
/// suite, or `None` when the suite is not in it) — failed when the test is
/// among its failures, passed otherwise. Runs whose report was not read are
/// left out: the numbers say only what is known.
pub fn tally(
    keys: &[String],
    runs: &[Run],
    reports: &HashMap<u64, Option<Vec<String>>>,
) -> HashMap<String, TestRuns> {
    let mut out: HashMap<String, TestRuns> = HashMap::new();
    for key in keys {
        let mut h = TestRuns::default();
        for r in runs {
            if r.passed {
                h.runs += 1;
                continue;
            }
            if let Some(Some(failing)) = reports.get(&r.pipeline) {
                h.runs += 1;
                if failing.iter().any(|k| k == key) {
                    h.failures += 1;
                }
            }
        }
        out.insert(key.clone(), h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::test_report::{FailingCases, TestReport};

    fn case(name: &str, class: &str, file: Option<&str>, output: &str) -> TestCase {
        TestCase {
            status: "failed".into(),
            name: name.into(),
            classname: Some(class.into()),
            file: file.map(str::to_string),
            system_output: Some(output.into()),
            ..TestCase::default()
        }
    }

    fn suite(name: &str, cases: Vec<TestCase>) -> TestSuite {
        TestSuite {
            name: name.into(),
            total_count: 100,
            failed_count: cases.len() as u64,
            test_cases: FailingCases {
                failing: cases,
                omitted: 0,
                other: 60,
            },
            ..TestSuite::default()
        }
    }

    #[test]
    fn the_message_is_the_first_line_that_says_the_failure() {
        let out = "\n-----\nFailure/Error: expect(x).to eq(3)\n  expected: 3\n";
        assert_eq!(
            message_of(Some(out), None).as_deref(),
            Some("Failure/Error: expect(x).to eq(3)")
        );
        let py = "def test_a():\n>       assert add(1, 2) == 4\nE       assert 3 == 4\n";
        assert_eq!(
            message_of(Some(py), None).as_deref(),
            Some(">       assert add(1, 2) == 4")
        );
        assert_eq!(
            message_of(None, Some("\n\nsome context\n")).as_deref(),
            Some("some context")
        );
        assert_eq!(message_of(Some("  \n---\n"), None), None);
    }

    #[test]
    fn a_test_in_a_changed_file_or_with_one_in_its_trace_says_so() {
        let changed = vec!["src/parser.py".to_string(), "tests/test_api.py".to_string()];
        let prefixes = vec!["/builds/g/p".to_string()];
        let r = Redactor::default();
        let own = case(
            "t1",
            "tests.test_api",
            Some("./tests/test_api.py"),
            "AssertionError",
        );
        assert_eq!(
            failing_test("pytest", &own, &changed, &prefixes, &r)
                .changed_file
                .as_deref(),
            Some("tests/test_api.py")
        );
        let mut traced = case(
            "t2",
            "tests.test_other",
            Some("tests/test_other.py"),
            "boom",
        );
        traced.stack_trace = Some(
            "Traceback (most recent call last):\n  File \"/builds/g/p/src/parser.py\", line 12, in parse\nValueError: bad".into(),
        );
        let t = failing_test("pytest", &traced, &changed, &prefixes, &r);
        assert_eq!(t.changed_file.as_deref(), Some("src/parser.py"));
        let none = case("t3", "x", Some("tests/test_other.py"), "boom");
        assert_eq!(
            failing_test("pytest", &none, &changed, &prefixes, &r).changed_file,
            None
        );
    }

    #[test]
    fn forty_tests_with_one_message_are_one_group_of_three_names_and_37_more() {
        let cases: Vec<TestCase> = (0..40)
            .map(|i| {
                case(
                    &format!("test_{i}"),
                    "tests.test_http",
                    Some("tests/test_http.py"),
                    &format!("ConnectionError: port {} refused", 8000 + i),
                )
            })
            .collect();
        let mut s = suite("integration", cases);
        s.test_cases
            .failing
            .push(case("test_other", "tests.test_x", None, "KeyError: 'a'"));
        s.failed_count = 41;
        let t = job_tests(&s, None, &[], &[], &Redactor::default());
        assert_eq!(t.failing, 41);
        assert_eq!(t.groups.len(), 2);
        let g = &t.groups[0];
        assert_eq!((g.count, g.tests.len(), g.more), (40, 3, 37));
        assert_eq!(
            g.message.as_deref(),
            Some("ConnectionError: port 8000 refused")
        );
        assert_eq!(t.more, 0, "both groups are shown, each counts its own");
    }

    #[test]
    fn upstream_and_flaky_marks_decide_the_jobs_noise() {
        let s = suite(
            "unit",
            vec![
                case("a", "A", None, "AssertionError: 1 != 2"),
                case("b", "B", None, "AssertionError: timeout 30s"),
            ],
        );
        let mut t = job_tests(&s, None, &[], &[], &Redactor::default());
        assert_eq!(noise_of(&t), None);
        let a = t.all[0].key();
        let b = t.all[1].key();
        let mut upstream = HashMap::new();
        upstream.insert(a.clone(), ("unit".into(), t.all[0].message_key.clone()));
        // Failing upstream with another message: not "identically".
        upstream.insert(b.clone(), ("unit".into(), "other".into()));
        apply_lookups(&mut t, &upstream, &HashMap::new());
        assert!(t.all[0].upstream && !t.all[1].upstream);
        assert_eq!(noise_of(&t), None);
        let mut history = HashMap::new();
        history.insert(
            b.clone(),
            TestRuns {
                runs: 20,
                failures: 3,
            },
        );
        apply_lookups(&mut t, &upstream, &history);
        assert!(t.all[1].flaky);
        assert_eq!(noise_of(&t), Some("flaky"));
        // Failing in every known run: broken there, not flaky.
        history.insert(
            b,
            TestRuns {
                runs: 2,
                failures: 2,
            },
        );
        apply_lookups(&mut t, &upstream, &history);
        assert_eq!(noise_of(&t), None);
        upstream.insert(
            t.all[1].key(),
            ("unit".into(), t.all[1].message_key.clone()),
        );
        apply_lookups(&mut t, &upstream, &history);
        assert_eq!(noise_of(&t), Some("upstream"));
        assert_eq!(t.upstream, 2);
    }

    #[test]
    fn history_counts_only_runs_whose_outcome_is_known() {
        let keys = vec!["k1".to_string(), "k2".to_string()];
        let runs = [
            Run {
                pipeline: 10,
                passed: false,
            },
            Run {
                pipeline: 9,
                passed: true,
            },
            Run {
                pipeline: 8,
                passed: false,
            },
            Run {
                pipeline: 7,
                passed: false,
            }, // report not read
            Run {
                pipeline: 6,
                passed: false,
            }, // suite missing
        ];
        let mut reports = HashMap::new();
        reports.insert(10, Some(vec!["k1".to_string()]));
        reports.insert(8, Some(vec!["k1".to_string(), "k2".to_string()]));
        reports.insert(6, None);
        let h = tally(&keys, &runs, &reports);
        assert_eq!(
            h["k1"],
            TestRuns {
                runs: 3,
                failures: 2
            }
        );
        assert_eq!(
            h["k2"],
            TestRuns {
                runs: 3,
                failures: 1
            }
        );
    }

    #[test]
    fn suites_are_found_by_job_id_then_name_then_group_name() {
        let summary: TestReportSummary = serde_json::from_value(serde_json::json!({
            "test_suites": [
                {"name": "rspec", "build_ids": [5, 6]},
                {"name": "jest", "build_ids": []},
                {"name": "pytest", "build_ids": []}
            ]
        }))
        .unwrap();
        assert_eq!(suite_of(&summary, 6, "rspec 2/2").unwrap().name, "rspec");
        assert_eq!(suite_of(&summary, 9, "jest").unwrap().name, "jest");
        assert_eq!(suite_of(&summary, 9, "pytest 1/4").unwrap().name, "pytest");
        assert_eq!(
            suite_of(&summary, 9, "pytest [py3.12]").unwrap().name,
            "pytest"
        );
        assert!(suite_of(&summary, 9, "lint").is_none());
        assert_eq!(group_name("a b 10/12"), "a b");
        assert_eq!(group_name("x 1/"), "x 1/");
    }

    #[test]
    fn secrets_in_names_and_messages_are_redacted() {
        let r = Redactor::new(["glpat-SECRETSECRETSECRET"]);
        let c = case(
            "test_login[glpat-SECRETSECRETSECRET]",
            "Auth",
            None,
            "AssertionError: token glpat-SECRETSECRETSECRET rejected",
        );
        let t = failing_test("s", &c, &[], &[], &r);
        assert!(!t.name.contains("SECRET") && !t.label.contains("SECRET"));
        assert!(!t.message.unwrap().contains("SECRET"));
    }

    #[test]
    fn the_failing_keys_of_a_report_carry_their_messages() {
        let r: TestReport = serde_json::from_value(serde_json::json!({
            "test_suites": [{"name": "unit", "test_cases": [
                {"status": "failed", "name": "a", "classname": "A", "system_output": "x 1"},
                {"status": "success", "name": "b", "classname": "B"}
            ]}]
        }))
        .unwrap();
        let k = failing_keys(&r.test_suites, &Redactor::default());
        assert_eq!(k.len(), 1);
        assert_eq!(k[&test_key("unit", "A", "a")].1, "x #");
    }
}
