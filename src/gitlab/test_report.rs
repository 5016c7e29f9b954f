//! Serde models of GitLab's unit test reports (the JUnit reports jobs
//! declare with `artifacts: reports: junit:`):
//!
//! - `GET /projects/:id/pipelines/:pipeline_id/test_report_summary`
//!   ([`TestReportSummary`]): per suite its counts and `build_ids` (the jobs
//!   whose reports make the suite), no test cases. Cheap: RunnerIQ asks it
//!   first.
//! - `GET /projects/:id/pipelines/:pipeline_id/test_report` ([`TestReport`]):
//!   every suite with every test case (`status` success, failed, error or
//!   skipped; `name`, `classname`, `file`, `execution_time`,
//!   `system_output`, `stack_trace`, `attachment_url`, `recent_failures`).
//!
//! Shapes from GitLab's serializers (`TestReportSummaryEntity`,
//! `TestSuiteEntity`, `TestCaseEntity`), its API docs and go-gitlab's test
//! data (`tests/fixtures/gitlab/MANIFEST.md`). Two facts shape the parsing:
//!
//! - `system_output` is a string for a plain `<failure>` text, but GitLab's
//!   JUnit parser (`Hash.from_xml`) turns a `<failure message=".." type="..">`
//!   element into a hash, which the API sends as an object: both are read
//!   into one text ([`TestCase::system_output`]).
//! - A report can hold hundreds of thousands of cases and a stack trace can
//!   be megabytes. Only failing cases are kept, at most [`FAILING_CASES_MAX`]
//!   per suite (the rest counted), and every text is cut at
//!   [`TEST_TEXT_MAX`] characters while it is parsed, so memory stays
//!   bounded whatever GitLab sends.
//!
//! `recent_failures` (`{count, base_branch}`) is modelled because the entity
//! exposes it, but GitLab fills it only for merge request test report
//! comparisons; in a pipeline's report it is null or missing, so RunnerIQ
//! does not rely on it.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::bounded::{NESTED, capped};

/// Characters kept of one text of a test case (message, stack trace, names).
pub const TEST_TEXT_MAX: usize = 16 * 1024;
/// Failing test cases kept per suite; more are only counted.
pub const FAILING_CASES_MAX: usize = 1000;

/// `GET /projects/:id/pipelines/:pipeline_id/test_report_summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestReportSummary {
    #[serde(default)]
    pub total: TestTotals,
    #[serde(deserialize_with = "capped::<_, _, NESTED>")]
    pub test_suites: Vec<SuiteSummary>,
}

/// The summary's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestTotals {
    #[serde(deserialize_with = "count")]
    pub count: u64,
    #[serde(deserialize_with = "count")]
    pub success: u64,
    #[serde(deserialize_with = "count")]
    pub failed: u64,
    #[serde(deserialize_with = "count")]
    pub skipped: u64,
    #[serde(deserialize_with = "count")]
    pub error: u64,
    #[serde(deserialize_with = "text")]
    pub suite_error: Option<String>,
}

/// One suite of the summary. A suite is named after the job (for parallel
/// jobs, `rspec 1/3` → `rspec`) and `build_ids` are its jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SuiteSummary {
    #[serde(deserialize_with = "name")]
    pub name: String,
    #[serde(deserialize_with = "count")]
    pub total_count: u64,
    #[serde(deserialize_with = "count")]
    pub failed_count: u64,
    #[serde(deserialize_with = "count")]
    pub error_count: u64,
    #[serde(deserialize_with = "capped::<_, _, NESTED>")]
    pub build_ids: Vec<u64>,
    #[serde(deserialize_with = "text")]
    pub suite_error: Option<String>,
}

/// `GET /projects/:id/pipelines/:pipeline_id/test_report`, failing cases only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    #[serde(default, deserialize_with = "count")]
    pub total_count: u64,
    #[serde(default, deserialize_with = "count")]
    pub failed_count: u64,
    #[serde(default, deserialize_with = "count")]
    pub error_count: u64,
    #[serde(deserialize_with = "capped::<_, _, NESTED>")]
    pub test_suites: Vec<TestSuite>,
}

/// One suite of the full report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestSuite {
    #[serde(deserialize_with = "name")]
    pub name: String,
    #[serde(deserialize_with = "count")]
    pub total_count: u64,
    #[serde(deserialize_with = "count")]
    pub failed_count: u64,
    #[serde(deserialize_with = "count")]
    pub error_count: u64,
    #[serde(deserialize_with = "text")]
    pub suite_error: Option<String>,
    /// The failing cases (status `failed` or `error`), at most
    /// [`FAILING_CASES_MAX`]; the others counted.
    #[serde(deserialize_with = "failing_cases")]
    pub test_cases: FailingCases,
}

/// What a suite's `test_cases` list is kept as. It is written back as
/// GitLab's list (the failing cases only), so a snapshot reads like the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailingCases {
    pub failing: Vec<TestCase>,
    /// Failing cases beyond [`FAILING_CASES_MAX`], counted only.
    pub omitted: u64,
    /// Cases that did not fail (success, skipped, anything else).
    pub other: u64,
}

impl Serialize for FailingCases {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.failing)
    }
}

impl TestReport {
    /// A report of the suites a summary lists, without test cases: what a
    /// summary says when nothing failed (every test of each suite passed).
    pub fn from_summary(summary: &TestReportSummary) -> TestReport {
        TestReport {
            total_count: summary.total.count,
            failed_count: summary.total.failed,
            error_count: summary.total.error,
            test_suites: summary
                .test_suites
                .iter()
                .map(|s| TestSuite {
                    name: s.name.clone(),
                    total_count: s.total_count,
                    failed_count: s.failed_count,
                    error_count: s.error_count,
                    suite_error: s.suite_error.clone(),
                    test_cases: FailingCases::default(),
                })
                .collect(),
        }
    }
}

/// One test case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestCase {
    #[serde(deserialize_with = "name")]
    pub status: String,
    #[serde(deserialize_with = "name")]
    pub name: String,
    #[serde(deserialize_with = "text")]
    pub classname: Option<String>,
    #[serde(deserialize_with = "text")]
    pub file: Option<String>,
    /// The failure's text: a string, or the values of the object GitLab
    /// makes of a `<failure message=".." type="..">` element (`message`
    /// first), cut at [`TEST_TEXT_MAX`] characters.
    #[serde(deserialize_with = "text")]
    pub system_output: Option<String>,
    #[serde(deserialize_with = "text")]
    pub stack_trace: Option<String>,
    pub recent_failures: Option<RecentFailures>,
}

impl TestCase {
    /// `failed` or `error`: what GitLab's Tests tab lists as failed.
    pub fn is_failing(&self) -> bool {
        is_failing_status(&self.status)
    }
}

fn is_failing_status(status: &str) -> bool {
    status == "failed" || status == "error"
}

/// GitLab's failure count on the default branch, in merge request test
/// report comparisons only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecentFailures {
    #[serde(deserialize_with = "count")]
    pub count: u64,
    #[serde(deserialize_with = "text")]
    pub base_branch: Option<String>,
}

/// A count: a number (negative and fractional ones read as 0 and truncated),
/// or null (0).
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        U(u64),
        F(f64),
        Other(IgnoredAny),
    }
    Ok(match Option::<Num>::deserialize(d)? {
        Some(Num::U(n)) => n,
        Some(Num::F(f)) if f.is_finite() && f > 0.0 => f as u64,
        _ => 0,
    })
}

/// A text of at most [`TEST_TEXT_MAX`] characters (see [`BoundedText`]).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(BoundedText {
        max: TEST_TEXT_MAX,
        depth: 0,
    })
}

/// [`text`], empty when missing.
fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text(d).map(Option::unwrap_or_default)
}

/// Cuts `s` to `max` characters, marking a cut with `…`.
fn bounded(s: &str, max: usize) -> String {
    let cut = crate::text::truncate_chars(s, max);
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut.to_string()
    }
}

/// Any JSON value as bounded text: a string is cut at `max` characters
/// while it is read; numbers and booleans are written out; an object is the
/// texts of its values (`message` first, then the others in order, one per
/// line); a list, its items' texts; null is `None`. Nesting is followed
/// two levels deep, then ignored.
struct BoundedText {
    max: usize,
    depth: u8,
}

impl<'de> Visitor<'de> for BoundedText {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a text")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(bounded(v, self.max)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut message: Option<String> = None;
        let mut rest: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            if self.depth >= 2 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value_seed(Nested {
                max: self.max,
                depth: self.depth + 1,
            })?;
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            if key.0 == "message" && message.is_none() {
                message = Some(value);
            } else if rest.len() < 8 {
                rest.push(value);
            }
        }
        Ok(join(message.into_iter().chain(rest), self.max))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut parts: Vec<String> = Vec::new();
        while let Some(v) = seq.next_element_seed(Nested {
            max: self.max,
            depth: self.depth + 1,
        })? {
            if let Some(v) = v {
                if parts.len() < 8 && self.depth < 2 {
                    parts.push(v);
                }
            }
        }
        Ok(join(parts.into_iter(), self.max))
    }
}

fn join(parts: impl Iterator<Item = String>, max: usize) -> Option<String> {
    let all: Vec<String> = parts.collect();
    if all.is_empty() {
        return None;
    }
    Some(bounded(&all.join("\n"), max))
}

/// A nested value of [`BoundedText`].
struct Nested {
    max: usize,
    depth: u8,
}

impl<'de> de::DeserializeSeed<'de> for Nested {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(BoundedText {
            max: self.max,
            depth: self.depth,
        })
    }
}

/// A map key, cut short.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoundedText { max: 64, depth: 2 })
            .map(|k| KeyText(k.unwrap_or_default()))
    }
}

/// A suite's `test_cases`: each case parsed (bounded), the failing ones kept
/// up to [`FAILING_CASES_MAX`], the rest counted.
fn failing_cases<'de, D: Deserializer<'de>>(d: D) -> Result<FailingCases, D::Error> {
    struct Cases;
    impl<'de> Visitor<'de> for Cases {
        type Value = FailingCases;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of test cases")
        }
        fn visit_unit<E: de::Error>(self) -> Result<FailingCases, E> {
            Ok(FailingCases::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<FailingCases, E> {
            Ok(FailingCases::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FailingCases, A::Error> {
            let mut out = FailingCases::default();
            while let Some(case) = seq.next_element::<TestCase>()? {
                if !case.is_failing() {
                    out.other += 1;
                } else if out.failing.len() < FAILING_CASES_MAX {
                    out.failing.push(case);
                } else {
                    out.omitted += 1;
                }
            }
            Ok(out)
        }
    }
    d.deserialize_any(Cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/gitlab/api")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn go_gitlabs_report_keeps_the_failing_cases_with_their_texts() {
        let r: TestReport =
            serde_json::from_str(&fixture("pipeline_test_report.go_gitlab.json")).unwrap();
        assert_eq!((r.total_count, r.error_count), (9, 4));
        assert_eq!(r.test_suites.len(), 2);
        let s = &r.test_suites[0];
        assert_eq!(s.name, "Failing");
        assert_eq!(s.test_cases.failing.len(), 3);
        assert_eq!(s.test_cases.other, 1);
        let c = &s.test_cases.failing[0];
        assert_eq!(c.status, "error");
        assert_eq!(c.classname.as_deref(), Some("MyClassOne"));
        assert_eq!(c.file.as_deref(), Some("/path/file.ext"));
        // An object: its message first, then its other values.
        assert_eq!(c.system_output.as_deref(), Some("Failed test\nfailure"));
        assert!(
            c.stack_trace
                .as_deref()
                .unwrap()
                .contains("Thread.java:1383")
        );
        assert_eq!(c.recent_failures.as_ref().unwrap().count, 10);
        // Null and missing fields.
        assert_eq!(s.test_cases.failing[1].system_output, None);
        assert_eq!(s.test_cases.failing[2].stack_trace, None);
        assert!(r.test_suites[1].test_cases.failing.is_empty());
    }

    #[test]
    fn the_summary_names_each_suites_jobs() {
        let s: TestReportSummary =
            serde_json::from_str(&fixture("pipeline_test_report_summary.go_gitlab.json")).unwrap();
        assert_eq!((s.total.count, s.total.failed, s.total.error), (3363, 0, 0));
        assert_eq!(s.test_suites[0].build_ids, vec![66004]);
        assert!(
            s.test_suites[0]
                .suite_error
                .as_deref()
                .unwrap()
                .contains("JUnit XML")
        );
    }

    #[test]
    fn a_huge_stack_trace_and_a_huge_report_stay_bounded() {
        let trace = "at x\n".repeat(2_000_000); // 10 MB
        let huge = serde_json::json!({"status": "failed", "name": "t", "stack_trace": trace});
        let small = serde_json::json!({"status": "error", "name": "u"});
        let passing = serde_json::json!({"status": "success", "name": "p"});
        let mut cases = vec![huge];
        cases.extend(std::iter::repeat_n(small, FAILING_CASES_MAX + 4));
        cases.extend(std::iter::repeat_n(passing, 10));
        let doc = serde_json::json!({"test_suites": [{"name": "s", "test_cases": cases}]});
        let r: TestReport = serde_json::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
        let s = &r.test_suites[0].test_cases;
        assert_eq!(
            (s.failing.len(), s.omitted, s.other),
            (FAILING_CASES_MAX, 5, 10)
        );
        let kept = s.failing[0].stack_trace.as_deref().unwrap();
        assert_eq!(kept.chars().count(), TEST_TEXT_MAX + 1);
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn a_report_is_written_back_in_gitlabs_shape() {
        let r: TestReport =
            serde_json::from_str(&fixture("pipeline_test_report.go_gitlab.json")).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert!(v["test_suites"][0]["test_cases"].is_array());
        let back: TestReport = serde_json::from_value(v).unwrap();
        assert_eq!(
            back.test_suites[0].test_cases.failing,
            r.test_suites[0].test_cases.failing
        );
        let s: TestReportSummary =
            serde_json::from_str(&fixture("pipeline_test_report_summary.go_gitlab.json")).unwrap();
        let from = TestReport::from_summary(&s);
        assert_eq!(from.test_suites[0].name, "test");
        assert!(from.test_suites[0].test_cases.failing.is_empty());
    }

    #[test]
    fn a_report_that_is_not_one_is_an_error() {
        for bad in [
            "[]",
            "{}",
            r#"{"test_suites": 3}"#,
            r#"{"test_suites": [1]}"#,
        ] {
            assert!(serde_json::from_str::<TestReport>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<TestReportSummary>("{}").is_err());
        // Nulls where numbers belong read as zero, odd texts as text.
        let r: TestReport = serde_json::from_str(
            r#"{"total_count": null, "test_suites": [{"name": 7, "failed_count": 1.0,
                "test_cases": [{"status": "failed", "name": ["a", {"b": "c"}],
                "system_output": {"message": {"deep": {"deeper": "x"}}}}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.total_count, 0);
        let s = &r.test_suites[0];
        assert_eq!((s.name.as_str(), s.failed_count), ("7", 1));
        assert_eq!(s.test_cases.failing[0].name, "a\nc");
    }
}
