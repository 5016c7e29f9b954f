//! `runneriq report`, `runneriq snapshot` and `runneriq demo report` end to
//! end: the embedded demo week (Markdown snapshot, HTML), a window read from
//! the fake GitLab page by page (stopping at the window's start), the
//! snapshot round trip, and the weekly issue created once then updated.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::fake_gitlab::FakeGitLab;
use serde_json::{Value, json};

const TOKEN: &str = "glpat-report-secret-0001";
/// 2026-01-05T00:00:00Z, a Monday: the window is the week before.
const TO: i64 = 1_767_571_200;
const DAY: i64 = 86_400;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runneriq"));
    cmd.args(args).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("RUNNERIQ_NOW", TO.to_string());
    cmd.env("RUNNERIQ_HTTP_MAX_ATTEMPTS", "2");
    cmd.env("RUNNERIQ_HTTP_INITIAL_BACKOFF_MS", "5");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

fn iso(t: i64) -> String {
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let days = t.div_euclid(DAY);
    let secs = t.rem_euclid(DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// 250 finished jobs, newest first, one every 50 minutes back from TO: the
/// first ~201 are inside the 7-day window, the rest before it. Shapes from
/// the real job objects in tests/fixtures/fleet/history.json.
fn history() -> Vec<Value> {
    let path = common::fixture("fleet/history.json");
    let template: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let template = template[0].clone();
    (0..250i64)
        .map(|i| {
            let mut j = template.clone();
            let created = TO - 60 - i * 3000;
            let runner = [101, 102, 103][(i % 3) as usize];
            j["id"] = (90_000 - i).into();
            j["name"] = ["build", "test", "lint"][(i % 3) as usize].into();
            j["status"] = if i % 10 == 0 { "failed" } else { "success" }.into();
            j["failure_reason"] = if i % 10 == 0 {
                json!(if i % 20 == 0 {
                    "runner_system_failure"
                } else {
                    "script_failure"
                })
            } else {
                Value::Null
            };
            j["created_at"] = iso(created).into();
            j["started_at"] = iso(created + 30).into();
            j["finished_at"] = iso(created + 330).into();
            j["duration"] = json!(300.0 + (i % 7) as f64);
            j["queued_duration"] = json!(30.0 + (i % 5) as f64);
            j["runner"]["id"] = runner.into();
            j["runner"]["description"] = format!("runner-{runner}").into();
            j["pipeline"]["id"] = (7000 - i / 3).into();
            j
        })
        .collect()
}

fn gitlab() -> FakeGitLab {
    let fake = FakeGitLab::start();
    fake.require_token("PRIVATE-TOKEN", TOKEN);
    fake.serve_version("18.7.0-ee");
    fake.route_list("/projects/42/jobs", Value::Array(history()));
    fake.route_json(
        "GET",
        "/projects/42",
        200,
        json!({"id": 42, "default_branch": "main"}).to_string(),
    );
    let trace = std::fs::read(common::fixture("logs/cd-commonslang_2089.log")).unwrap();
    for i in (0..250i64).filter(|i| i % 10 == 0 && i % 20 != 0) {
        fake.route_text(
            &format!("/projects/42/jobs/{}/trace", 90_000 - i),
            trace.clone(),
        );
    }
    fake
}

fn env(fake: &FakeGitLab) -> Vec<(String, String)> {
    vec![
        ("CI_API_V4_URL".into(), fake.base_url()),
        ("RUNNERIQ_TOKEN".into(), TOKEN.into()),
    ]
}

fn with_env(args: &[&str], e: &[(String, String)]) -> Output {
    let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(args, &refs)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runneriq-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_demo_report_renders_offline() {
    let o = run(&["demo", "report"], &[]);
    ok(&o);
    let md = stdout(&o);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/demo_report.md");
    if std::env::var("RUNNERIQ_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&path, &md).unwrap();
    }
    assert_eq!(
        md,
        std::fs::read_to_string(&path).unwrap(),
        "RUNNERIQ_UPDATE_SNAPSHOTS=1 rewrites it"
    );
    assert!(md.starts_with(
        "<!-- runneriq:report week=2025-W47 -->\n## RunnerIQ weekly report — 2025-W47 (demo data)"
    ));
    assert!(md.contains("> **Demo data**"));
    for section in [
        "### What to change",
        "### Runners",
        "### Queue wait by priority class",
        "### Flaky jobs",
        "### Flakiest tests",
        "### Failures by category per day",
        "### Carbon",
    ] {
        assert!(md.contains(section), "{section}");
    }
    // Every chart stays under GitLab's 2,000-character Mermaid limit, and
    // so do the charts above the last one together (GitLab draws no chart
    // after the page's drawn ones pass 2,000).
    let charts = mermaid_blocks(&md);
    assert!(charts.len() >= 4, "{}", charts.len());
    assert!(charts.iter().all(|c| c.chars().count() < 2000));
    let above_last: usize = charts[..charts.len() - 1]
        .iter()
        .map(|c| c.chars().count())
        .sum();
    assert!(above_last <= 2000, "{above_last}");
    // Bars start at 0 (xychart starts at the smallest value otherwise: HIGH's
    // 37 s was a sliver), one series each, in a palette (the neutral theme
    // fills bars #EEE on white).
    for c in charts.iter().filter(|c| c.contains("xychart-beta")) {
        assert!(
            c.lines()
                .any(|l| l.trim_start().starts_with("y-axis \"") && l.contains("\" 0 --> ")),
            "{c}"
        );
        assert!(c.starts_with("%%{init: {'themeVariables': {'xyChart': {'plotColorPalette': '#"));
        assert_eq!(c.matches("bar [").count(), 1, "{c}");
        assert!(!c.contains("line ["), "{c}");
    }
    // The pie: coloured at full opacity, small slices merged, CO₂e written one way.
    let pie = charts.iter().find(|c| c.contains("\npie")).unwrap();
    assert!(
        pie.contains("'pie1': '#") && pie.contains("'pieOpacity': '1'"),
        "{pie}"
    );
    assert!(pie.contains("\"3 other runners\" : "), "{pie}");
    assert!(!md.contains("CO2e"), "CO₂e only");
    // Counts are counts.
    assert!(md.contains("    bar [8, 15, 9, 10, 8, 3, 1]\n"), "{md}");
    // Classes in urgency order, never alphabetical.
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(at("| Queue wait p95, HIGH |") < at("| Queue wait p95, MEDIUM |"));
    assert!(at("| Queue wait p95, MEDIUM |") < at("| Queue wait p95, LOW |"));
    // The real problem first; the same finding about five runners is one line.
    let findings: Vec<&str> = md
        .split("### What to change\n\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("- "))
        .collect();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(findings[0].starts_with("- **Infrastructure failures** `docker-de-1`: 13 %"));
    assert!(findings[1].starts_with(
        "- **Underutilized**, 5 runners (busy share of their capacity): `gpu-us-1` 0.5 %, "
    ));
    // The flaky job's link says it opens the job.
    assert!(md.contains(
        "| `test:e2e` | 18 | [job #500538](https://gitlab.example.com/acme/vision/-/jobs/500538) on `spike/rust` |"
    ));
    // The replay can't tell the policies apart on the demo week: one
    // sentence, no table of zeros; its CO₂e set beside the measured one.
    let routing = md
        .split("### What priority routing would have changed this week\n\n")
        .nth(1)
        .unwrap();
    assert!(routing.contains("**The replay can't tell the policies apart:** their p95 queue waits differ by at most 65 s, less than the replay's own error (p95 3.1 min per job)"), "{routing}");
    assert!(routing.contains("where they really waited 37 s, 3.0 min and 4.1 min"));
    assert!(!routing.contains("| Policy |"), "{routing}");
    assert!(routing.contains("**CO₂e:** these jobs emitted 13.41 kg where they really ran"));
    assert!(
        md.contains("13.41 kg CO₂e"),
        "the Carbon section's figure is the same"
    );
    assert!(
        md.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("<!-- runneriq:report-state ")
    );

    let o = run(&["demo", "report", "--format", "html"], &[]);
    ok(&o);
    let html = stdout(&o);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<svg") && html.contains("Demo data"));
    // A phone lays it out at its width; wide tables scroll in their box;
    // charts scale (a viewBox, a width the CSS may shrink).
    assert!(
        html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    );
    assert_eq!(
        html.matches("<svg ").count(),
        html.matches("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 460 ")
            .count()
    );
    assert!(html.contains("svg{max-width:100%;height:auto}"));
    assert_eq!(
        html.matches("<table>").count(),
        html.matches("<div class=\"scroll\"><table>").count()
    );
    assert!(!html.contains("8.0 jobs") && html.contains(">8 jobs<"));
    // The page carries the Markdown's content.
    for part in [
        "<th>This week</th>",
        "What priority routing would have changed this week",
        "Queue wait by tag set",
        "could have run on a cleaner runner",
        "<h2>Carbon</h2>",
    ] {
        assert!(html.contains(part), "{part}");
    }
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));

    let o = run(&["demo", "report", "--format", "json"], &[]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["data"]["jobs"], 552);
    assert_eq!(v["demo"], true);
}

#[test]
fn a_week_is_read_page_by_page_and_stops_at_the_window() {
    let fake = gitlab();
    let e = env(&fake);
    let o = with_env(
        &[
            "report",
            "--project",
            "42",
            "--since",
            "7d",
            "--format",
            "json",
        ],
        &e,
    );
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // 7 days of one job every 50 minutes: 202 jobs (created TO−60 s back to TO−7d).
    let inside = (0..250i64)
        .filter(|i| TO - 60 - i * 3000 >= TO - 7 * DAY)
        .count();
    assert_eq!(v["data"]["jobs"], inside as u64);
    assert_eq!(v["data"]["runners"].as_array().unwrap().len(), 3);
    // Pages of 100: the third page reaches before the window and is the last.
    let log: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.api_path()))
        .collect();
    let pages = log
        .iter()
        .filter(|l| l.as_str() == "GET /projects/42/jobs")
        .count();
    assert_eq!(pages, 3, "{log:#?}");
    let traces = log.iter().filter(|l| l.ends_with("/trace")).count();
    // The unit test reports of main's 20 newest pipelines (--test-reports):
    // none has one (404), so one request each.
    let summaries = log
        .iter()
        .filter(|l| l.ends_with("/test_report_summary"))
        .count();
    assert_eq!(summaries, 20, "{log:#?}");
    assert!(!log.iter().any(|l| l.ends_with("/test_report")));
    eprintln!(
        "requests for one week: {} ({} pages, {} traces, {} test report summaries, {} other)",
        log.len(),
        pages,
        traces,
        summaries,
        log.len() - pages - traces - summaries
    );
    assert_eq!(log.len(), 1 + pages + traces + summaries, "{log:#?}");
    assert_eq!(v["data"]["test_pipelines"], 0);
    // Script failures were classified from their logs (a bounded sample).
    let days = v["data"]["failures_by_day"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let classified: u64 = days
        .iter()
        .map(|d| d["by_category"]["test_failure"].as_u64().unwrap_or(0))
        .sum();
    assert!(classified > 0, "{days:?}");
    assert!(v["source"].as_str().unwrap().starts_with("GitLab API, "));
    assert!(stderr(&o).contains("runneriq: page 3:"));
    assert!(!stdout(&o).contains(TOKEN) && !stderr(&o).contains(TOKEN));
}

#[test]
fn a_snapshot_gives_the_same_report_without_the_api() {
    let fake = gitlab();
    let e = env(&fake);
    let snap = tmp("week.json.gz");
    let snap_s = snap.to_string_lossy().into_owned();
    let o = snapshot_week(&snap_s, &e);
    ok(&o);
    assert!(stderr(&o).contains("jobs,"), "{}", stderr(&o));
    let live = with_env(
        &[
            "report",
            "--project",
            "42",
            "--since",
            "7d",
            "--format",
            "json",
            "-q",
        ],
        &e,
    );
    let offline = run(&["report", "--snapshot", &snap_s, "--format", "json"], &[]);
    ok(&offline);
    let a: Value = serde_json::from_str(&stdout(&live)).unwrap();
    let b: Value = serde_json::from_str(&stdout(&offline)).unwrap();
    assert_eq!(a["data"], b["data"], "same numbers from the snapshot");
    // Two snapshots merge.
    let o = run(
        &[
            "report",
            "--snapshot",
            &snap_s,
            "--snapshot",
            &snap_s,
            "--format",
            "json",
        ],
        &[],
    );
    let m: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        m["data"]["jobs"].as_u64(),
        a["data"]["jobs"].as_u64().map(|n| n * 2)
    );
    // A broken snapshot is one clear error.
    let bad = tmp("bad.json.gz");
    std::fs::write(&bad, b"\x1f\x8b not really gzip").unwrap();
    let o = run(&["report", "--snapshot", &bad.to_string_lossy()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.json.gz: not a RunnerIQ snapshot"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_weekly_issue_is_created_once_then_updated_in_place() {
    let fake = gitlab();
    let posted: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let p = Arc::clone(&posted);
    fake.route_list("/projects/42/issues", json!([]));
    fake.route_json(
        "GET",
        "/user",
        200,
        json!({"id": 77, "username": "project_42_bot_1"}).to_string(),
    );
    fake.on_write(
        "POST",
        "/projects/42/issues",
        Box::new(move |r| {
            p.lock().unwrap().push(("POST".into(), r.json()));
            (
                201,
                json!({"id": 1, "iid": 31, "title": r.json()["title"], "state": "opened"})
                    .to_string(),
            )
        }),
    );
    let p = Arc::clone(&posted);
    fake.on_write(
        "PUT",
        "/projects/42/issues/",
        Box::new(move |r| {
            p.lock()
                .unwrap()
                .push((format!("PUT {}", r.api_path()), r.json()));
            (
                200,
                json!({"id": 1, "iid": 31, "state": "opened"}).to_string(),
            )
        }),
    );
    let e = env(&fake);
    let args = [
        "report",
        "--project",
        "42",
        "--since",
        "7d",
        "--publish",
        "issue",
        "-q",
    ];
    ok(&with_env(&args, &e));
    let got = posted.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "POST");
    assert_eq!(got[0].1["title"], "RunnerIQ weekly report — 2026-W01");
    assert_eq!(got[0].1["labels"], "runneriq-report");
    let body = got[0].1["description"].as_str().unwrap().to_string();
    assert!(body.starts_with("<!-- runneriq:report week=2026-W01 -->"));

    // Next run of the same week (and last week's issue exists): the same
    // issue is edited, with last week's figures to compare.
    let last_week = body.replace("week=2026-W01", "week=2025-W52").replace(
        "\"week\":\"2026-W01\",\"jobs\":",
        "\"week\":\"2025-W52\",\"jobs\":1",
    );
    // The newest labelled issue imitates ours but was opened by somebody
    // else: it is neither edited nor read.
    let bot = json!({"id": 77, "username": "project_42_bot_1"});
    let other = json!({"id": 5, "username": "mallory"});
    fake.route_list(
        "/projects/42/issues",
        json!([
            {"id": 3, "iid": 32, "title": "RunnerIQ weekly report — 2026-W01", "state": "opened", "description": body, "labels": ["runneriq-report"], "author": other},
            {"id": 1, "iid": 31, "title": "RunnerIQ weekly report — 2026-W01", "state": "opened", "description": body, "labels": ["runneriq-report"], "author": bot},
            {"id": 2, "iid": 30, "title": "RunnerIQ weekly report — 2025-W52", "state": "opened", "description": last_week, "labels": ["runneriq-report"], "web_url": "https://gitlab.example.com/g/p/-/issues/30", "author": bot}
        ]),
    );
    ok(&with_env(&args, &e));
    let got = posted.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].0, "PUT /projects/42/issues/31");
    let body = got[1].1["description"].as_str().unwrap();
    assert!(
        body.contains("| | This week | Last week | Change |"),
        "{body}"
    );
    assert!(body.contains("[last week](https://gitlab.example.com/g/p/-/issues/30)"));
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        1,
        "never a second issue"
    );

    // A dry run writes nothing.
    let n = fake.requests().len();
    let o = with_env(
        &[
            "report",
            "--project",
            "42",
            "--since",
            "7d",
            "--publish",
            "issue",
            "--dry-run",
            "-q",
        ],
        &e,
    );
    ok(&o);
    assert!(stderr(&o).contains("dry run: would update the issue"));
    assert!(fake.requests()[n..].iter().all(|r| r.method == "GET"));
}

#[test]
fn live_carbon_from_electricity_maps_replaces_the_table_and_failures_fall_back() {
    let em = FakeGitLab::start();
    em.route_json(
        "GET",
        "/v3/carbon-intensity/latest",
        200,
        json!({"zone": "DE", "carbonIntensity": 100.0, "datetime": "2026-01-04T23:00:00.000Z"})
            .to_string(),
    );
    em.route_json(
        "GET",
        "/v3/carbon-intensity/forecast",
        200,
        json!({"zone": "DE", "forecast": [
            {"carbonIntensity": 180.0, "datetime": "2026-01-05T01:00:00.000Z"},
            {"carbonIntensity": 95.0, "datetime": "2026-01-05T13:00:00.000Z"}
        ]})
        .to_string(),
    );
    let fleet = tmp("fleet-de.json");
    std::fs::write(
        &fleet,
        json!([
            {"id": 101, "description": "runner-101", "status": "online", "runneriq": {"zone": "DE", "power_watts": 1000}},
            {"id": 102, "description": "runner-102", "status": "online", "runneriq": {"zone": "gcp:europe-west1", "power_watts": 1000}}
        ])
        .to_string(),
    )
    .unwrap();
    let fake = gitlab();
    let mut e = env(&fake);
    e.push(("ELECTRICITY_MAPS_TOKEN".into(), "em-secret-token".into()));
    e.push(("ELECTRICITY_MAPS_URL".into(), em.base_url()));
    let f = fleet.to_string_lossy().into_owned();
    let args = [
        "report",
        "--project",
        "42",
        "--since",
        "7d",
        "--fleet",
        &f,
        "-q",
    ];
    let o = with_env(&[&args[..], &["--format", "json"]].concat(), &e);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let runners = v["data"]["carbon"]["runners"].as_array().unwrap();
    let de = runners.iter().find(|r| r["id"] == 101).unwrap();
    assert_eq!(de["g_per_kwh"], 100.0);
    assert!(
        de["source"]
            .as_str()
            .unwrap()
            .starts_with("Electricity Maps, latest")
    );
    // 1000 W × busy time, at 100 g/kWh.
    let kwh = de["energy_kwh"].as_f64().unwrap();
    assert!((de["co2e_g"].as_f64().unwrap() - kwh * 100.0).abs() < 1e-6);
    // A cloud region is not an Electricity Maps zone: the table's value stays.
    let gcp = runners.iter().find(|r| r["id"] == 102).unwrap();
    assert_eq!(gcp["source"], "cloud region (GCP)");
    assert_eq!(v["forecast"][0]["g_per_kwh"], 95.0);
    // Asked once per zone per run, with the token in its header only.
    let asked = em.requests();
    assert_eq!(asked.len(), 2, "latest + forecast for DE");
    assert_eq!(asked[0].header("auth-token"), Some("em-secret-token"));
    assert_eq!(asked[0].query_param("zone"), Some("DE"));
    assert!(!stdout(&o).contains("em-secret-token") && !stderr(&o).contains("em-secret-token"));

    // The API failing: the table's annual average and a note, never an abort.
    em.fail_next(
        "/v3/carbon-intensity/latest",
        vec![common::fake_gitlab::Fault::Status(500)],
    );
    let o = with_env(&args, &e);
    ok(&o);
    let md = stdout(&o);
    assert!(
        md.contains("note: Electricity Maps for zone DE: HTTP 500; the embedded table"),
        "{md}"
    );
    assert!(md.contains("country average 2023 (Ember via Our World in Data)"));
}

#[test]
fn group_mode_reads_every_project_of_the_group() {
    let fake = gitlab();
    fake.route_list(
        "/groups/7/projects",
        json!([{"id": 42, "path_with_namespace": "g/a"}, {"id": 43, "path_with_namespace": "g/b"}, {"id": 44, "path_with_namespace": "g/c"}]),
    );
    // Project 43: the same week with other job ids; project 44 is unreadable.
    let other: Vec<Value> = history()
        .into_iter()
        .map(|mut j| {
            j["id"] = (j["id"].as_u64().unwrap() + 100_000).into();
            j
        })
        .collect();
    fake.route_list("/projects/43/jobs", Value::Array(other));
    fake.route_json(
        "GET",
        "/projects/44/jobs",
        403,
        json!({"message": "403 Forbidden"}).to_string(),
    );
    let e = env(&fake);
    let one = with_env(
        &[
            "report",
            "--project",
            "42",
            "--since",
            "7d",
            "--format",
            "json",
            "-q",
        ],
        &e,
    );
    let group = with_env(
        &[
            "report", "--group", "7", "--since", "7d", "--format", "json", "-q", "--traces", "0",
        ],
        &e,
    );
    ok(&group);
    let a: Value = serde_json::from_str(&stdout(&one)).unwrap();
    let g: Value = serde_json::from_str(&stdout(&group)).unwrap();
    assert_eq!(
        g["data"]["jobs"].as_u64(),
        a["data"]["jobs"].as_u64().map(|n| n * 2)
    );
    assert_eq!(g["project"], "group 7 (3 projects)");
    let notes = g["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().contains("g/c")),
        "{notes:?}"
    );
}

#[test]
fn the_tag_bridges_activity_comes_from_the_audit_log() {
    let fake = gitlab();
    let audit = tmp("audit.jsonl");
    let line =
        |t: i64, rest: &str| format!("{{\"time\":\"{}\",{rest}}}\n", iso(t).replace(".000Z", "Z"));
    let text = [
        line(TO - 10 * DAY, r#""kind":"tag_change","runner":1,"tag":"runneriq:green","action":"add","applied":true"#),
        line(TO - DAY, r#""kind":"recommendation","job":5,"action":"place""#),
        line(TO - DAY, r#""kind":"tag_change","runner":1,"tag":"runneriq:green","action":"add","applied":true"#),
        line(TO - DAY, r#""kind":"tag_change","runner":2,"tag":"runneriq:green","action":"remove","applied":true"#),
        line(TO - DAY, r#""kind":"tag_change","runner":3,"tag":"runneriq:green","action":"add","applied":false,"error":"PUT /runners/3 answered 403""#),
        "not json\n".to_string(),
    ]
    .concat();
    std::fs::write(&audit, text).unwrap();
    let e = env(&fake);
    let o = with_env(
        &[
            "report",
            "--project",
            "42",
            "--since",
            "7d",
            "-q",
            "--audit",
            &audit.to_string_lossy(),
        ],
        &e,
    );
    ok(&o);
    let md = stdout(&o);
    assert!(md.contains("### Tag bridge\n\n1 routing recommendations, 3 tag changes (2 applied, 1 failed) this week."), "{md}");
    assert!(
        md.contains("- `runneriq:green`: added 1 times, removed 1 times"),
        "{md}"
    );
    assert!(
        stderr(&o).contains(":6:"),
        "the broken line is named: {}",
        stderr(&o)
    );
}

/// `runneriq snapshot` of the last 7 days of project 42 into `path`.
fn snapshot_week(path: &str, env: &[(String, String)]) -> Output {
    with_env(
        &[
            "snapshot",
            "--project",
            "42",
            "--since",
            "7d",
            "-o",
            path,
            "--quiet",
        ],
        env,
    )
}

/// The longest JSON string anywhere in `v`, in bytes.
/// Copies a snapshot, passing each line's record through `edit`.
fn rewrite_snapshot(
    src: &std::path::Path,
    dst: &std::path::Path,
    mut edit: impl FnMut(&mut Value),
) {
    use std::io::{BufRead, Write};
    let lines = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
        std::fs::File::open(src).unwrap(),
    ))
    .lines();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dst).unwrap(),
        flate2::Compression::fast(),
    );
    for l in lines {
        let mut v: Value = serde_json::from_str(&l.unwrap()).unwrap();
        edit(&mut v);
        writeln!(gz, "{v}").unwrap();
    }
    gz.finish().unwrap();
}

fn longest_string(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| k.len().max(longest_string(v)))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn a_snapshot_with_huge_names_keeps_them_cut_at_1_kib() {
    let fake = gitlab();
    let snap = tmp("names.json.gz");
    let snap_s = snap.to_string_lossy().into_owned();
    ok(&snapshot_week(&snap_s, &env(&fake)));
    // Every job name becomes 1 MiB long (a damaged or hostile snapshot: each
    // line stays under the 4 MiB line limit). Interned whole, 150 names of
    // 3.9 MiB took 3 GB.
    let huge = tmp("huge-names.json.gz");
    let mut names: Vec<String> = Vec::new();
    rewrite_snapshot(&snap, &huge, |v| {
        if v["kind"] == "job" {
            // The same job name gets the same huge name, so the report's
            // groupings (and the names it shows) stay.
            let name = v["job"]["name"].as_str().unwrap().to_string();
            let i = names.iter().position(|n| *n == name).unwrap_or_else(|| {
                names.push(name);
                names.len() - 1
            });
            v["job"]["name"] = format!("{i:06}{}", "n".repeat(1 << 20)).into();
        }
    });
    assert_eq!(names, ["build", "test", "lint"]);
    let o = run(
        &[
            "report",
            "--snapshot",
            &huge.to_string_lossy(),
            "--format",
            "json",
        ],
        &[],
    );
    ok(&o);
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(r["data"]["jobs"].as_u64().unwrap() > 0);
    // Names are cut at 1 KiB when they are interned.
    let longest = longest_string(&r);
    assert!(longest <= 1100, "a string of {longest} bytes in the report");
}

/// The Mermaid blocks of a Markdown text (their sources).
fn mermaid_blocks(md: &str) -> Vec<&str> {
    md.split("```mermaid\n")
        .skip(1)
        .map(|c| c.split("```").next().unwrap())
        .collect()
}

#[test]
fn chart_modes_draw_what_the_gitlab_version_can() {
    let count = |md: &str, kind: &str| {
        mermaid_blocks(md)
            .iter()
            .filter(|c| c.contains(kind))
            .count()
    };
    // Chosen: pie charts only (every GitLab draws them), or none.
    let pie = stdout(&run(&["demo", "report", "--charts", "pie"], &[]));
    assert_eq!(count(&pie, "xychart-beta"), 0, "{pie}");
    assert_eq!(count(&pie, "\npie"), 2, "busy time and CO₂e: {pie}");
    assert!(pie.contains("Share of busy time per runner"));
    let table = stdout(&run(&["demo", "report"], &[("RUNNERIQ_CHARTS", "table")]));
    assert!(!table.contains("```mermaid"), "{table}");
    assert!(table.contains("| HIGH | 34 |"), "the tables stay");

    // auto: the GitLab's version decides, one request.
    let args = ["report", "--project", "42", "--since", "7d", "-q"];
    let versions = |fake: &FakeGitLab| {
        fake.requests()
            .iter()
            .filter(|r| r.api_path() == "/version")
            .count()
    };
    for (version, xychart) in [("16.8.0-ee", false), ("16.9.0", true), ("19.4.0-ee", true)] {
        let fake = gitlab();
        fake.serve_version(version);
        let o = with_env(&args, &env(&fake));
        ok(&o);
        let md = stdout(&o);
        assert_eq!(count(&md, "xychart-beta") > 0, xychart, "{version}: {md}");
        // Without bar charts, busy time is a pie (no fleet file: no carbon pie).
        assert_eq!(count(&md, "\npie") > 0, !xychart, "{version}");
        assert_eq!(versions(&fake), 1, "{version}");
        assert_eq!(
            stderr(&o).contains("bar charts (xychart-beta) need GitLab 16.9 or later"),
            !xychart,
            "{version}: {}",
            stderr(&o)
        );
    }
    // /version failing: pie charts, said on stderr, the report all the same.
    let fake = gitlab();
    fake.route_json(
        "GET",
        "/version",
        500,
        json!({"message": "500 Internal Server Error"}).to_string(),
    );
    let o = with_env(&args, &env(&fake));
    ok(&o);
    assert_eq!(count(&stdout(&o), "xychart-beta"), 0);
    assert!(
        stderr(&o).contains("runneriq: charts: could not read the GitLab version"),
        "{}",
        stderr(&o)
    );
    // In the GitLab's own pipeline its version is known: no request.
    let fake = gitlab();
    let mut e = env(&fake);
    e.push(("CI_SERVER_VERSION".into(), "15.11.2".into()));
    let o = with_env(&args, &e);
    ok(&o);
    assert_eq!(count(&stdout(&o), "xychart-beta"), 0);
    assert_eq!(versions(&fake), 0);
    // --charts wins over the version, and nothing is asked.
    let fake = gitlab();
    fake.serve_version("15.11.2");
    let o = with_env(&[&args[..], &["--charts", "xychart"]].concat(), &env(&fake));
    assert!(count(&stdout(&o), "xychart-beta") > 0);
    assert_eq!(versions(&fake), 0);
    // JSON and HTML draw no Mermaid: nothing is asked either.
    let fake = gitlab();
    ok(&with_env(
        &[&args[..], &["--format", "json"]].concat(),
        &env(&fake),
    ));
    assert_eq!(versions(&fake), 0);
}

/// A test report (GitLab's `TestSuiteEntity`/`TestCaseEntity` shapes, as in
/// go-gitlab's fixture) of suite `test` with these failing tests, and its
/// summary.
fn report_with(failing: &[&str]) -> (Value, Value) {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture(
            "gitlab/api/pipeline_test_report.go_gitlab.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let mut case = fixture["test_suites"][0]["test_cases"][0].clone();
    case["status"] = "failed".into();
    let cases: Vec<Value> = failing
        .iter()
        .map(|n| {
            let mut c = case.clone();
            c["name"] = (*n).into();
            c["classname"] = "spec.cart".into();
            c["system_output"] = "expected 3, got 4".into();
            c
        })
        .collect();
    let mut suite = fixture["test_suites"][0].clone();
    suite["name"] = "test".into();
    suite["total_count"] = 100.into();
    suite["failed_count"] = cases.len().into();
    suite["error_count"] = 0.into();
    suite["test_cases"] = Value::Array(cases);
    let report = json!({"total_count": 100, "failed_count": failing.len(), "error_count": 0, "test_suites": [suite]});
    let mut summary: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture(
            "gitlab/api/pipeline_test_report_summary.go_gitlab.json",
        ))
        .unwrap(),
    )
    .unwrap();
    summary["total"]["failed"] = failing.len().into();
    summary["total"]["error"] = 0.into();
    summary["total"]["count"] = 100.into();
    summary["total"]["suite_error"] = Value::Null;
    summary["test_suites"][0]["name"] = "test".into();
    summary["test_suites"][0]["failed_count"] = failing.len().into();
    summary["test_suites"][0]["suite_error"] = Value::Null;
    (report, summary)
}

#[test]
fn the_flakiest_tests_come_from_mains_test_reports_live_and_from_a_snapshot() {
    let fake = gitlab();
    // main's newest pipelines: 7000 and 6995 failed tests, 6990 passed them
    // all (its summary is enough), the others have no report (404).
    for (pipeline, failing) in [
        (7000, vec!["adds_tax", "rounds_down"]),
        (6995, vec!["adds_tax"]),
        (6990, vec![]),
    ] {
        let (report, summary) = report_with(&failing);
        let base = format!("/projects/42/pipelines/{pipeline}");
        fake.route_json(
            "GET",
            &format!("{base}/test_report_summary"),
            200,
            summary.to_string(),
        );
        fake.route_json(
            "GET",
            &format!("{base}/test_report"),
            200,
            report.to_string(),
        );
    }
    let e = env(&fake);
    let o = with_env(&["report", "--project", "42", "--since", "7d", "-q"], &e);
    ok(&o);
    let md = stdout(&o);
    assert!(md.contains("### Flakiest tests\n\nTests that failed now and then on `main` and passed otherwise, by failure rate over the window (from the unit test reports of 3 of its pipelines):\n\n| Test | Suite | Failed | Failure rate | Last failure |\n|---|---|---|---|---|\n| `spec.cart › adds_tax` | `test` | 2 of 3 runs | 66.7 % | [pipeline #7000](https://gitlab.example.com/acme/shop/-/pipelines/7000/test_report) |\n| `spec.cart › rounds_down` | `test` | 1 of 3 runs | 33.3 % | [pipeline #7000](https://gitlab.example.com/acme/shop/-/pipelines/7000/test_report) |\n"), "{md}");
    // Summary first; the full report only where a test failed.
    let log: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.api_path()))
        .collect();
    let full: Vec<&String> = log.iter().filter(|l| l.ends_with("/test_report")).collect();
    assert_eq!(
        full,
        vec![
            "GET /projects/42/pipelines/7000/test_report",
            "GET /projects/42/pipelines/6995/test_report"
        ]
    );
    let summary_of_7000 = log
        .iter()
        .position(|l| l == "GET /projects/42/pipelines/7000/test_report_summary")
        .unwrap();
    let full_of_7000 = log
        .iter()
        .position(|l| l == "GET /projects/42/pipelines/7000/test_report")
        .unwrap();
    assert!(summary_of_7000 < full_of_7000);

    // A snapshot keeps them: the same table offline.
    let snap = tmp("tests-week.json.gz");
    let snap_s = snap.to_string_lossy().into_owned();
    ok(&snapshot_week(&snap_s, &e));
    let offline = run(&["report", "--snapshot", &snap_s, "--format", "json"], &[]);
    ok(&offline);
    let live = with_env(
        &[
            "report",
            "--project",
            "42",
            "--since",
            "7d",
            "-q",
            "--format",
            "json",
        ],
        &e,
    );
    let a: Value = serde_json::from_str(&stdout(&live)).unwrap();
    let b: Value = serde_json::from_str(&stdout(&offline)).unwrap();
    assert_eq!(a["data"]["flaky_tests"], b["data"]["flaky_tests"]);
    assert_eq!(b["data"]["test_pipelines"], 3);
    assert_eq!(b["data"]["flaky_tests"][0]["failures"], 2);

    // --test-reports 0 reads none.
    fake.clear_requests();
    let o = with_env(
        &[
            "report",
            "--project",
            "42",
            "--since",
            "7d",
            "-q",
            "--test-reports",
            "0",
        ],
        &e,
    );
    ok(&o);
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.api_path().contains("test_report"))
    );
    assert!(stdout(&o).contains("No unit test report was read for the pipelines of `main` in this window (jobs publish them with `artifacts: reports: junit:`)."));
}

#[test]
fn a_flaky_job_without_a_web_url_is_named_without_a_bare_reference() {
    let fake = gitlab();
    let snap = tmp("flaky-no-url.json.gz");
    let snap_s = snap.to_string_lossy().into_owned();
    ok(&snapshot_week(&snap_s, &env(&fake)));
    let stripped = tmp("flaky-no-url-stripped.json.gz");
    rewrite_snapshot(&snap, &stripped, |v| {
        if v["kind"] == "job" {
            v["job"].as_object_mut().unwrap().remove("web_url");
        }
    });
    let o = run(&["report", "--snapshot", &stripped.to_string_lossy()], &[]);
    ok(&o);
    let md = stdout(&o);
    let flaky = md.split("### Flaky jobs").nth(1).unwrap();
    let flaky = flaky.split("\n### ").next().unwrap();
    assert!(flaky.contains("| `job #"), "a flaky job is listed: {flaky}");
    assert_eq!(
        common::markdown::bare_issue_references(&md),
        Vec::<String>::new()
    );
}
