//! Where a report's history comes from: the API (the project's finished jobs
//! in a window, newest first, stopping at the window's start) or a snapshot
//! file that holds exactly what the report reads, so reports are
//! reproducible and tests run offline.
//!
//! **Snapshot format** (`.json.gz`): gzip of JSON Lines, each line one tagged
//! record — first `{"kind":"header", ...}` (window, project, and the fleet
//! when one was given), then any number of `{"kind":"job","job":{...}}`
//! (GitLab job objects trimmed to the fields RunnerIQ reads) and
//! `{"kind":"category","job":ID,"category":"..."}` (a classified trace,
//! cached by job id), and last `{"kind":"end","requests":N,"jobs":M}`.
//! Streamed both ways: memory does not grow with the number of jobs.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::error::input;
use crate::fleet::model::FleetRunner;
use crate::fleet::priority::parse_time;
use crate::gitlab::models::Job;
use crate::gitlab::{ApiError, Client, project_ref};

/// Snapshot format version written in the header.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Longest snapshot line read (one job object is a few KB).
const MAX_LINE: usize = 4 << 20;

/// `[from, to)`, seconds since 1970 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

/// A date `2026-11-16` (UTC midnight) or an RFC 3339 time.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = parse_time(s) {
        return Some(t);
    }
    let fmt = time::format_description::parse("[year]-[month]-[day]").ok()?;
    time::Date::parse(s, &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// The window of `--since 7d` (ending now) or `--from DATE [--to DATE]`.
pub fn window(
    since: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: i64,
) -> anyhow::Result<Span> {
    let to_t = match to {
        Some(t) => parse_date(t).ok_or_else(|| {
            input(format!(
                "--to {t:?}: expected a date like 2026-11-23 or an RFC 3339 time"
            ))
        })?,
        None => now,
    };
    let from_t = match (since, from) {
        (Some(_), Some(_)) => return Err(input("--since and --from cannot be combined")),
        (Some(s), None) => {
            let d = crate::config::parse_duration(s)
                .filter(|d| *d > 0)
                .ok_or_else(|| {
                    input(format!(
                        "--since {s:?}: expected a duration like 7d, 24h or 90m"
                    ))
                })?;
            to_t - i64::try_from(d).unwrap_or(i64::MAX / 2)
        }
        (None, Some(f)) => parse_date(f).ok_or_else(|| {
            input(format!(
                "--from {f:?}: expected a date like 2026-11-16 or an RFC 3339 time"
            ))
        })?,
        (None, None) => to_t - 7 * 86_400,
    };
    if from_t >= to_t {
        return Err(input(
            "the window is empty: its start is not before its end",
        ));
    }
    Ok(Span {
        from: from_t,
        to: to_t,
    })
}

/// As many runners as a fleet file may hold.
fn capped_runners<'de, D>(d: D) -> Result<Vec<FleetRunner>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    crate::gitlab::bounded::capped::<D, FleetRunner, { crate::fleet::model::MAX_RUNNERS }>(d)
}

/// The first record of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub project: String,
    pub window: Span,
    pub fetched_at: i64,
    pub default_branch: Option<String>,
    /// The fleet (fleet JSON entries), when the snapshot was made with one.
    #[serde(default, deserialize_with = "capped_runners")]
    pub runners: Vec<FleetRunner>,
}

/// One snapshot line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Job {
        job: Box<Job>,
    },
    Category {
        job: u64,
        category: String,
    },
    /// A default-branch pipeline's unit test report (failing cases only;
    /// a report without failures lists its suites with no cases).
    TestReport {
        pipeline: u64,
        web_url: Option<String>,
        report: Box<crate::gitlab::test_report::TestReport>,
    },
    /// What the fetch cost, written last.
    End {
        requests: u64,
        jobs: u64,
    },
}

/// A job trimmed to the fields RunnerIQ reads (a snapshot of 200,000 jobs
/// stays small); reads back as a [`Job`].
pub fn trim(j: &Job) -> Job {
    Job {
        id: j.id,
        name: j.name.clone(),
        stage: j.stage.clone(),
        status: j.status.clone(),
        git_ref: j.git_ref.clone(),
        tag: j.tag,
        allow_failure: j.allow_failure,
        created_at: j.created_at.clone(),
        started_at: j.started_at.clone(),
        finished_at: j.finished_at.clone(),
        duration: j.duration,
        queued_duration: j.queued_duration,
        failure_reason: j.failure_reason.clone(),
        web_url: j.web_url.clone(),
        tag_list: j.tag_list.clone(),
        runner: j.runner.as_ref().map(|r| {
            Box::new(crate::gitlab::models::RunnerSummary {
                id: r.id,
                description: r.description.clone(),
                ..Default::default()
            })
        }),
        user: j.user.as_ref().map(|u| {
            Box::new(crate::gitlab::models::UserSummary {
                id: u.id,
                username: u.username.clone(),
                ..Default::default()
            })
        }),
        pipeline: j.pipeline.as_ref().map(|p| {
            Box::new(crate::gitlab::models::PipelineRef {
                id: p.id,
                project_id: p.project_id,
                sha: p.sha.clone(),
                git_ref: p.git_ref.clone(),
                source: p.source.clone(),
                ..Default::default()
            })
        }),
        commit: j.commit.as_ref().map(|c| {
            Box::new(crate::gitlab::models::Commit {
                id: c.id.clone(),
                ..Default::default()
            })
        }),
        ..Job::default()
    }
}

/// Writes a snapshot, record by record, gzip-compressed.
pub struct Writer<W: Write> {
    gz: GzEncoder<W>,
    line: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> std::io::Result<Writer<W>> {
        let mut w = Writer {
            gz: GzEncoder::new(out, Compression::default()),
            line: Vec::with_capacity(4096),
        };
        w.record(&Record::Header(header.clone()))?;
        Ok(w)
    }

    pub fn record(&mut self, r: &Record) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, r).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        self.gz.write_all(&self.line)
    }

    pub fn job(&mut self, j: &Job) -> std::io::Result<()> {
        self.record(&Record::Job {
            job: Box::new(trim(j)),
        })
    }

    pub fn finish(self) -> std::io::Result<W> {
        self.gz.finish()
    }
}

/// Reads a snapshot, calling `on` for every record after the header; errors
/// name the file and the line.
pub fn read(path: &Path, on: impl FnMut(Record)) -> anyhow::Result<Header> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| {
        input(format!(
            "{name}: cannot read the snapshot: {}",
            crate::input::io_reason(&e)
        ))
    })?;
    read_from(file, &name, on)
}

/// [`read`] from any reader of gzip bytes (`name` for errors).
pub fn read_from(
    gz: impl std::io::Read,
    name: &str,
    mut on: impl FnMut(Record),
) -> anyhow::Result<Header> {
    let mut r = BufReader::with_capacity(256 << 10, MultiGzDecoder::new(gz));
    let mut buf = Vec::with_capacity(8192);
    let mut header: Option<Header> = None;
    let mut n = 0u64;
    loop {
        buf.clear();
        let got = std::io::Read::take(&mut r, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                input(format!(
                    "{name}: not a RunnerIQ snapshot (.json.gz) or damaged: {}",
                    crate::input::io_reason(&e)
                ))
            })?;
        if got == 0 {
            break;
        }
        n += 1;
        if buf.len() > MAX_LINE {
            return Err(input(format!("{name}: line {n} is longer than 4 MiB")));
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: Record =
            serde_json::from_slice(&buf).map_err(|e| input(format!("{name}: line {n}: {e}")))?;
        match (rec, &header) {
            (Record::Header(h), None) => {
                if h.version != SNAPSHOT_VERSION {
                    return Err(input(format!(
                        "{name}: snapshot version {} (this RunnerIQ reads version {SNAPSHOT_VERSION})",
                        h.version
                    )));
                }
                header = Some(h);
            }
            (_, None) => {
                return Err(input(format!(
                    "{name}: line {n}: a snapshot starts with its header"
                )));
            }
            (Record::Header(_), Some(_)) => {
                return Err(input(format!("{name}: line {n}: a second header")));
            }
            (rec, Some(_)) => on(rec),
        }
    }
    header.ok_or_else(|| input(format!("{name}: empty snapshot (no header)")))
}

/// What fetching a window cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fetched {
    pub pages: usize,
    pub jobs: u64,
    /// Pages ran out before the window's start was reached.
    pub truncated: bool,
}

/// The project's finished jobs created in `span`, newest first, a page at a
/// time (`GET /projects/:id/jobs?scope[]=success&scope[]=failed&scope[]=canceled`),
/// stopping at the first page that reaches back before the window. One
/// progress line per page on stderr unless `quiet`.
pub fn fetch_jobs(
    client: &Client,
    project: &str,
    span: Span,
    max_pages: usize,
    quiet: bool,
    mut on: impl FnMut(Job),
) -> Result<Fetched, ApiError> {
    let path = format!("/projects/{}/jobs", project_ref(project));
    let mut out = Fetched::default();
    let info = client.for_each_page::<Job>(
        &path,
        &[
            ("scope[]", "success".to_string()),
            ("scope[]", "failed".to_string()),
            ("scope[]", "canceled".to_string()),
        ],
        max_pages,
        |page| {
            out.pages += 1;
            let mut before_window = false;
            let mut oldest: Option<String> = None;
            for j in page {
                let t = j.created_at.as_deref().and_then(parse_time);
                match t {
                    Some(t) if t < span.from => before_window = true,
                    Some(t) if t >= span.to => {}
                    _ => {
                        oldest = j.created_at.clone();
                        out.jobs += 1;
                        on(j);
                    }
                }
            }
            if !quiet {
                eprintln!(
                    "runneriq: page {}: {} jobs so far{}",
                    out.pages,
                    out.jobs,
                    oldest.map(|o| format!(", back to {o}")).unwrap_or_default()
                );
            }
            !before_window
        },
    )?;
    out.truncated = info.truncated;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let now = 1_767_261_600; // 2026-01-01T10:00:00Z
        assert_eq!(
            window(Some("7d"), None, None, now).unwrap(),
            Span {
                from: now - 7 * 86_400,
                to: now
            }
        );
        let w = window(None, Some("2025-12-22"), Some("2025-12-29"), now).unwrap();
        assert_eq!(w.to - w.from, 7 * 86_400);
        assert_eq!(w.from, parse_time("2025-12-22T00:00:00Z").unwrap());
        assert!(window(Some("7d"), Some("2025-12-22"), None, now).is_err());
        assert!(
            window(None, Some("2026-02-01"), None, now).is_err(),
            "empty"
        );
        let e = window(Some("a week"), None, None, now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--since \"a week\""), "{e}");
    }

    #[test]
    fn a_snapshot_round_trips_and_streams() {
        let dir = std::env::temp_dir().join(format!("runneriq-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.json.gz");
        let header = Header {
            version: SNAPSHOT_VERSION,
            project: "g/p".into(),
            window: Span { from: 1, to: 2 },
            fetched_at: 3,
            default_branch: Some("main".into()),
            runners: Vec::new(),
        };
        let mut w = Writer::new(std::fs::File::create(&path).unwrap(), &header).unwrap();
        for id in 1..=3 {
            w.job(&Job {
                id,
                name: "build".into(),
                status: "success".into(),
                duration: Some(1.5),
                ..Job::default()
            })
            .unwrap();
        }
        w.record(&Record::Category {
            job: 2,
            category: "compilation".into(),
        })
        .unwrap();
        w.finish().unwrap();
        let mut jobs = Vec::new();
        let mut cats = Vec::new();
        let h = read(&path, |r| match r {
            Record::Job { job } => jobs.push(job.id),
            Record::Category { job, category } => cats.push((job, category)),
            _ => {}
        })
        .unwrap();
        assert_eq!(h, header);
        assert_eq!(jobs, vec![1, 2, 3]);
        assert_eq!(cats, vec![(2, "compilation".to_string())]);

        std::fs::write(&path, b"not gzip at all").unwrap();
        let e = read(&path, |_| {}).unwrap_err().to_string();
        assert!(e.contains("not a RunnerIQ snapshot"), "{e}");
        let e = read(&dir.join("missing.json.gz"), |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.json.gz: cannot read the snapshot"),
            "{e}"
        );
    }
}

/// Failing cases a snapshot keeps per pipeline (their names only): a
/// snapshot line stays far under [`MAX_LINE`].
const SNAPSHOT_TEST_CASES: usize = 2000;

/// A report trimmed for a snapshot: suites and the names of their failing
/// cases (what the flakiest-tests table reads), no output or stack trace.
pub fn trim_report(
    r: &crate::gitlab::test_report::TestReport,
) -> crate::gitlab::test_report::TestReport {
    use crate::gitlab::test_report::{FailingCases, TestCase, TestReport, TestSuite};
    let mut left = SNAPSHOT_TEST_CASES;
    TestReport {
        total_count: r.total_count,
        failed_count: r.failed_count,
        error_count: r.error_count,
        test_suites: r
            .test_suites
            .iter()
            .map(|s| {
                let keep = s.test_cases.failing.len().min(left);
                left -= keep;
                TestSuite {
                    name: s.name.clone(),
                    total_count: s.total_count,
                    failed_count: s.failed_count,
                    error_count: s.error_count,
                    suite_error: s.suite_error.clone(),
                    test_cases: FailingCases {
                        failing: s.test_cases.failing[..keep]
                            .iter()
                            .map(|c| TestCase {
                                status: c.status.clone(),
                                name: c.name.clone(),
                                classname: c.classname.clone(),
                                ..TestCase::default()
                            })
                            .collect(),
                        omitted: 0,
                        other: 0,
                    },
                }
            })
            .collect(),
    }
}

/// What reading the default branch's test reports found.
#[derive(Debug, Clone, Default)]
pub struct TestReportsRead {
    /// Pipelines whose report was read (a summary without failures counts).
    pub read: u32,
    pub warnings: Vec<String>,
}

/// The unit test reports of `pipelines` (id and page, newest first), at most
/// `max` of them: per pipeline the summary first (a 404 or an empty report:
/// it has none, one request), the full report only when a test failed. A
/// summary without failures stands for a report whose suites all passed.
/// An error is a warning naming the endpoint and ends the reading.
pub fn fetch_test_reports(
    client: &Client,
    project: &str,
    pipelines: &[(u64, Option<String>)],
    max: usize,
    mut on: impl FnMut(u64, Option<String>, crate::gitlab::test_report::TestReport),
) -> TestReportsRead {
    use crate::gitlab::test_report::{TestReport, TestReportSummary};
    let mut out = TestReportsRead::default();
    for (id, web_url) in pipelines.iter().take(max) {
        let base = format!("/projects/{}/pipelines/{id}", project_ref(project));
        let summary: TestReportSummary =
            match client.get_json(&format!("{base}/test_report_summary"), &[]) {
                Ok(s) => s,
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    out.warnings.push(format!(
                        "the unit test reports were read for {} pipelines only: {e}",
                        out.read
                    ));
                    break;
                }
            };
        if summary.total.count == 0 && summary.test_suites.is_empty() {
            continue;
        }
        let report = if crate::diagnose::junit::has_failures(&summary) {
            match client.get_json::<TestReport>(&format!("{base}/test_report"), &[]) {
                Ok(r) => r,
                Err(e) => {
                    out.warnings.push(format!(
                        "the unit test reports were read for {} pipelines only: {e}",
                        out.read
                    ));
                    break;
                }
            }
        } else {
            TestReport::from_summary(&summary)
        };
        out.read += 1;
        on(*id, web_url.clone(), report);
    }
    out
}
