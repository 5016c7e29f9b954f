//! `runneriq diagnose` end to end: the real binary against the fake GitLab.
//!
//! Job objects are real GitLab job JSON (`pipeline_jobs.kitware.json`) with
//! ids, names, statuses and failure reasons changed; traces are real failed CI
//! logs (`tests/fixtures/logs`) wrapped in gitlab-runner framing (section
//! markers, optionally the 18.7 timestamp prefix); MR diffs have the shape of
//! `merge_request_diffs.gitlab_foss_27117.json` with paths edited to match the
//! failing files. Expected notes are snapshot files in `tests/snapshots/`,
//! compared byte for byte; `RUNNERIQ_UPDATE_SNAPSHOTS=1 cargo test --test
//! diagnose_e2e` rewrites them.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_gitlab::{FakeGitLab, Fault};
use common::markdown::{assert_counts_add_up, bare_issue_references, without_code_spans};
use serde_json::{Value, json};

const TOKEN: &str = "glpat-diagnose-secret-0001";
const PROJECT: u64 = 42;
const CHILD_PROJECT: u64 = 43;
const PIPELINE: u64 = 1001;
const CHILD_PIPELINE: u64 = 2002;
const MR: u64 = 7;
const SELF_JOB: u64 = 6000;
const SHA: &str = "0ff3ae198f8601a285adcf5c0fff204ee6fba5fd";
const WEB: &str = "https://gitlab.example.com/group/proj";

// ---------------------------------------------------------------------------
// Fixture builders

fn read_json(rel: &str) -> Value {
    let raw = std::fs::read_to_string(common::fixture(rel)).unwrap();
    serde_json::from_str(&raw).unwrap()
}

fn read_log(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(&format!("logs/{name}"))).unwrap()
}

/// A real job object (the first of the kitware pipeline) turned into ours.
fn job(id: u64, name: &str, stage: &str, status: &str, pipeline: u64, project: u64) -> Value {
    let mut j = read_json("gitlab/api/pipeline_jobs.kitware.json")[0].clone();
    j["id"] = id.into();
    j["name"] = name.into();
    j["stage"] = stage.into();
    j["status"] = status.into();
    j["allow_failure"] = false.into();
    j["web_url"] = format!("{WEB}/-/jobs/{id}").into();
    j["pipeline"]["id"] = pipeline.into();
    j["pipeline"]["project_id"] = project.into();
    j["pipeline"]["status"] = "failed".into();
    j["pipeline"]["web_url"] = format!("{WEB}/-/pipelines/{pipeline}").into();
    if status == "failed" {
        j["failure_reason"] = "script_failure".into();
    }
    j
}

fn allow_failure(mut j: Value) -> Value {
    j["allow_failure"] = true.into();
    j
}

/// A real bridge object with a downstream pipeline in another project.
fn bridge(id: u64, name: &str, status: &str, downstream: Option<(u64, u64)>) -> Value {
    let mut b = read_json("gitlab/api/bridge.single.json");
    b["id"] = id.into();
    b["name"] = name.into();
    b["stage"] = "test".into();
    b["status"] = status.into();
    b["web_url"] = format!("{WEB}/-/jobs/{id}").into();
    b["pipeline"]["id"] = PIPELINE.into();
    match downstream {
        Some((pid, project)) => {
            b["downstream_pipeline"]["id"] = pid.into();
            b["downstream_pipeline"]["project_id"] = project.into();
            b["downstream_pipeline"]["status"] = "failed".into();
        }
        None => b["downstream_pipeline"] = Value::Null,
    }
    b
}

/// A log wrapped as gitlab-runner writes it: stage sections around the
/// script, ANSI colours, the final `ERROR: Job failed` line. With `stamps`,
/// every line carries the runner 18.7 timestamp and stream prefix.
fn runner_trace(log: &[u8], stamps: bool) -> Vec<u8> {
    let mut lines: Vec<(String, Vec<u8>)> = Vec::new();
    let runner = |s: &str| ("00O".to_string(), s.as_bytes().to_vec());
    lines.push(runner(
        "\x1b[0KRunning with gitlab-runner 18.7.0 (e1a2b3c4)\x1b[0;m",
    ));
    lines.push(runner(
        "\x1b[0K  on docker-autoscaler s_0123abcd, system ID: s_0123456789ab\x1b[0;m",
    ));
    lines.push(runner("section_start:1767225600:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the \"docker\" executor\x1b[0;m"));
    lines.push(runner(
        "\x1b[0KUsing Docker executor with image registry.example.com/ci/build:2026 ...\x1b[0;m",
    ));
    lines.push(runner("section_end:1767225604:prepare_executor\r\x1b[0K"));
    lines.push(runner("section_start:1767225604:get_sources\r\x1b[0K\x1b[0K\x1b[36;1mGetting source from Git repository\x1b[0;m"));
    lines.push(runner(
        "\x1b[32;1mFetching changes with git depth set to 20...\x1b[0;m",
    ));
    lines.push(runner("section_end:1767225607:get_sources\r\x1b[0K"));
    lines.push(runner("section_start:1767225607:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m"));
    for l in log.split(|b| *b == b'\n') {
        let mut l = l.to_vec();
        if l.last() == Some(&b'\r') {
            l.pop();
        }
        lines.push(("01O".to_string(), l));
    }
    lines.push(runner("section_end:1767225700:step_script\r\x1b[0K"));
    lines.push(runner("section_start:1767225700:cleanup_file_variables\r\x1b[0K\x1b[0K\x1b[36;1mCleaning up project directory and file based variables\x1b[0;m"));
    lines.push(runner(
        "section_end:1767225701:cleanup_file_variables\r\x1b[0K",
    ));
    lines.push(runner("\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m"));
    let mut out = Vec::new();
    for (i, (stream, l)) in lines.iter().enumerate() {
        if stamps {
            let ts = format!(
                "2026-01-01T01:00:{:02}.{:06}Z {stream} ",
                (i / 1000) % 60,
                i % 1_000_000
            );
            out.extend_from_slice(ts.as_bytes());
        }
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

/// The real MR diffs shape, one entry per path.
fn diffs(paths: &[&str]) -> Value {
    let template = read_json("gitlab/api/merge_request_diffs.gitlab_foss_27117.json")[0].clone();
    Value::Array(
        paths
            .iter()
            .map(|p| {
                let mut d = template.clone();
                d["old_path"] = (*p).into();
                d["new_path"] = (*p).into();
                d
            })
            .collect(),
    )
}

/// A real MR note object (from gitlab-foss!27117) with our id and body.
fn note(id: u64, body: &str) -> Value {
    let notes = read_json("gitlab/api/merge_request_notes.gitlab_foss_27117.json");
    let mut n = notes[3].clone(); // a user (non-system) note
    n["id"] = id.into();
    n["body"] = body.into();
    n["system"] = false.into();
    n
}

/// The user RunnerIQ's token acts as (`GET /user`): the author of the
/// fixture note that [`note`] turns into ours.
fn me() -> Value {
    read_json("gitlab/api/merge_request_notes.gitlab_foss_27117.json")[3]["author"].clone()
}

/// The fixture's other notes, system and user, newest first.
fn other_notes() -> Vec<Value> {
    read_json("gitlab/api/merge_request_notes.gitlab_foss_27117.json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A real discussion object with our ids and body.
fn discussion(id: &str, note_id: u64, body: &str) -> Value {
    let mut d = read_json("gitlab/api/merge_request_discussions.gitlab_foss_27117.json")[0].clone();
    d["id"] = id.into();
    d["individual_note"] = false.into();
    d["notes"][0]["id"] = note_id.into();
    d["notes"][0]["body"] = body.into();
    d["notes"][0]["system"] = false.into();
    d["notes"][0]["noteable_type"] = "Commit".into();
    d["notes"][0]["author"] = me();
    d
}

// ---------------------------------------------------------------------------
// The fake GitLab for one pipeline

struct Scenario {
    fake: FakeGitLab,
    /// Bodies of every POST/PUT the fake accepted, in order.
    writes: Arc<Mutex<Vec<(String, String)>>>,
}

const NOTE_ID: u64 = 9001;
const DISCUSSION_ID: &str = "6fe51a9c5758556dfef42725a66dee2729a6fb82";
const DISCUSSION_NOTE_ID: u64 = 9101;

fn p(path: &str) -> String {
    path.replace("{P}", &PROJECT.to_string())
        .replace("{PL}", &PIPELINE.to_string())
        .replace("{MR}", &MR.to_string())
        .replace("{SHA}", SHA)
}

impl Scenario {
    /// A failed MR pipeline: a C++ compile error in a changed file, a git clone
    /// that hit a 503 (transient), a job that passed on retry, an allowed
    /// failure, a passing job and the diagnose job itself (running).
    fn mr_pipeline() -> Scenario {
        let s = Scenario::empty();
        s.fake.route_list(
            &p("/projects/{P}/pipelines/{PL}/jobs"),
            json!([
                job(
                    SELF_JOB,
                    "runneriq:diagnose",
                    ".post",
                    "running",
                    PIPELINE,
                    PROJECT
                ),
                allow_failure(job(5013, "lint:docs", "test", "failed", PIPELINE, PROJECT)),
                job(5012, "test:flaky", "test", "success", PIPELINE, PROJECT),
                job(5003, "test:flaky", "test", "failed", PIPELINE, PROJECT),
                job(5002, "test:clone", "test", "failed", PIPELINE, PROJECT),
                job(5001, "build:cpp", "build", "failed", PIPELINE, PROJECT),
                job(5000, "prepare", "prepare", "success", PIPELINE, PROJECT),
            ]),
        );
        s.fake
            .route_list(&p("/projects/{P}/pipelines/{PL}/bridges"), json!([]));
        s.fake.route_text(
            &p("/projects/{P}/jobs/5001/trace"),
            runner_trace(&read_log("pt-compile_error.log"), false),
        );
        s.fake.route_text(
            &p("/projects/{P}/jobs/5002/trace"),
            runner_trace(&read_log("cd-spork_441.log"), true),
        );
        s.fake.route_list(
            &p("/projects/{P}/merge_requests/{MR}/diffs"),
            diffs(&["torch/csrc/profiler/kineto_metadata.cpp", "docs/README.md"]),
        );
        s
    }

    /// Only the plumbing: notes, discussions and write handlers.
    fn empty() -> Scenario {
        let fake = FakeGitLab::start();
        fake.require_token("PRIVATE-TOKEN", TOKEN);
        let writes: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        fake.route_json("GET", "/user", 200, me().to_string());
        fake.route_list(&p("/projects/{P}/merge_requests/{MR}/notes"), json!([]));
        fake.route_list(
            &p("/projects/{P}/repository/commits/{SHA}/discussions"),
            json!([]),
        );
        fake.route_list(
            &p("/projects/{P}/repository/commits/{SHA}/merge_requests"),
            json!([]),
        );
        // No history on the target branch unless a scenario adds some.
        fake.route_list(&p("/projects/{P}/pipelines"), json!([]));
        fake.route_list(&p("/projects/{P}/jobs"), json!([]));
        let w = Arc::clone(&writes);
        fake.on_write(
            "POST",
            &p("/projects/{P}/merge_requests/{MR}/notes"),
            Box::new(move |r| {
                let body = r.json()["body"].as_str().unwrap_or_default().to_string();
                w.lock()
                    .unwrap()
                    .push((format!("POST {}", r.api_path()), body.clone()));
                (201, note(NOTE_ID, &body).to_string())
            }),
        );
        let w = Arc::clone(&writes);
        fake.on_write(
            "PUT",
            &p("/projects/{P}/merge_requests/{MR}/notes/"),
            Box::new(move |r| {
                let body = r.json()["body"].as_str().unwrap_or_default().to_string();
                w.lock()
                    .unwrap()
                    .push((format!("PUT {}", r.api_path()), body.clone()));
                (200, note(NOTE_ID, &body).to_string())
            }),
        );
        let w = Arc::clone(&writes);
        fake.on_write(
            "POST",
            &p("/projects/{P}/repository/commits/{SHA}/discussions"),
            Box::new(move |r| {
                let body = r.json()["body"].as_str().unwrap_or_default().to_string();
                w.lock()
                    .unwrap()
                    .push((format!("POST {}", r.api_path()), body.clone()));
                (
                    201,
                    discussion(DISCUSSION_ID, DISCUSSION_NOTE_ID, &body).to_string(),
                )
            }),
        );
        let w = Arc::clone(&writes);
        fake.on_write(
            "PUT",
            &p("/projects/{P}/repository/commits/{SHA}/discussions/"),
            Box::new(move |r| {
                let body = r.json()["body"].as_str().unwrap_or_default().to_string();
                w.lock()
                    .unwrap()
                    .push((format!("PUT {}", r.api_path()), body.clone()));
                (200, note(DISCUSSION_NOTE_ID, &body).to_string())
            }),
        );
        Scenario { fake, writes }
    }

    fn writes(&self) -> Vec<(String, String)> {
        self.writes.lock().unwrap().clone()
    }

    /// Our note is now on the MR, among the fixture's other notes.
    fn note_exists(&self, body: &str) {
        let mut notes = other_notes();
        notes.insert(4, note(NOTE_ID, body));
        self.fake.route_list(
            &p("/projects/{P}/merge_requests/{MR}/notes"),
            Value::Array(notes),
        );
    }

    fn log(&self) -> Vec<String> {
        self.fake
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.api_path()))
            .collect()
    }

    fn count(&self, method: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// Runs `runneriq diagnose ARGS` as a pipeline job would, in a clean
    /// environment (nothing from the developer's shell leaks in), with quick
    /// retries. `env` adds or overrides variables; an empty value removes one.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    /// [`Scenario::run`], killed (and the test failed) after `limit`.
    fn run_within(&self, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
        use std::io::Read;
        let mut child = self
            .command(args, env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let err = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("runneriq diagnose {args:?} did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut vars: Vec<(String, String)> = vec![
            ("CI_API_V4_URL".into(), self.fake.base_url()),
            ("RUNNERIQ_TOKEN".into(), TOKEN.into()),
            ("CI_PROJECT_ID".into(), PROJECT.to_string()),
            ("CI_PROJECT_PATH".into(), "group/proj".into()),
            ("CI_PROJECT_DIR".into(), "/builds/group/proj".into()),
            ("CI_PIPELINE_ID".into(), PIPELINE.to_string()),
            ("CI_COMMIT_SHA".into(), SHA.into()),
            ("CI_JOB_ID".into(), SELF_JOB.to_string()),
            ("CI_MERGE_REQUEST_IID".into(), MR.to_string()),
            ("CI_DEFAULT_BRANCH".into(), "main".into()),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME".into(), "main".into()),
            (
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME".into(),
                "feature/profiler".into(),
            ),
            ("RUNNERIQ_HTTP_MAX_ATTEMPTS".into(), "3".into()),
            ("RUNNERIQ_HTTP_INITIAL_BACKOFF_MS".into(), "5".into()),
            ("RUNNERIQ_HTTP_MAX_RETRY_WAIT_MS".into(), "200".into()),
            ("RUNNERIQ_HTTP_DEADLINE_S".into(), "10".into()),
        ];
        for (k, v) in env {
            vars.retain(|(n, _)| n != k);
            if !v.is_empty() {
                vars.push(((*k).into(), (*v).into()));
            }
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runneriq"));
        cmd.arg("diagnose").args(args);
        // A developer's (or CI's own) CI_*, GITLAB_* and RUNNERIQ_* variables
        // must not leak into the test: start from an empty environment.
        cmd.env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// Byte-for-byte comparison with `tests/snapshots/NAME`.
fn assert_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var("RUNNERIQ_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}: run RUNNERIQ_UPDATE_SNAPSHOTS=1 cargo test --test diagnose_e2e",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "snapshot {name} differs from line {}:\n--- expected\n{}\n--- actual\n{}\n\
             (RUNNERIQ_UPDATE_SNAPSHOTS=1 rewrites it)",
            line + 1,
            expected
                .lines()
                .skip(line)
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
            actual
                .lines()
                .skip(line)
                .take(5)
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
}

/// Length of the backtick fence opening a block on this line, if any.
fn fence_len(line: &str) -> Option<usize> {
    let n = line.len() - line.trim_start_matches('`').len();
    (n >= 3 && !line[n..].contains('`')).then_some(n)
}

/// (lines outside fences, lines inside fences) as GitLab's quick-action
/// parser sees them.
fn split_fences(md: &str) -> (Vec<&str>, Vec<&str>) {
    let (mut outside, mut inside) = (Vec::new(), Vec::new());
    let mut open: Option<usize> = None;
    for line in md.lines() {
        match open {
            Some(n) => {
                let run = line.len() - line.trim_start_matches('`').len();
                if run >= n && line[run..].trim().is_empty() {
                    open = None;
                } else {
                    inside.push(line);
                }
            }
            None => match fence_len(line) {
                Some(n) => open = Some(n),
                None => outside.push(line),
            },
        }
    }
    assert!(open.is_none(), "a fence was left open");
    (outside, inside)
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn mr_pipeline_gets_one_note_then_the_same_note_is_edited() {
    let s = Scenario::mr_pipeline();
    let o = s.run(&[], &[]);
    assert_ok(&o);

    let writes = s.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].0,
        format!("POST /projects/{PROJECT}/merge_requests/{MR}/notes")
    );
    let body = &writes[0].1;
    assert_snapshot("diagnose_mr_note.md", body);
    assert!(body.starts_with("<!-- runneriq:diagnose -->\n<!-- runneriq:pipeline=1001"));
    // build:cpp and test:clone new, test:flaky passed on retry, lint:docs
    // allowed to fail: four jobs, counted once each everywhere.
    assert_eq!(assert_counts_add_up(body), 4);
    assert!(bare_issue_references(body).is_empty(), "{body}");

    // The request log: one listing per pipeline, its test report summary,
    // one trace per failed job.
    let log = s.log();
    eprintln!("request log of the first run:");
    for l in &log {
        eprintln!("  {l}");
    }
    // Traces are fetched concurrently: their relative order may vary.
    let mut ordered = log.clone();
    if ordered.len() >= 6 {
        ordered[4..6].sort();
    }
    assert_eq!(
        ordered,
        vec![
            "GET /projects/42/pipelines/1001/jobs",
            "GET /projects/42/pipelines/1001/bridges",
            "GET /projects/42/merge_requests/7/diffs",
            // No unit test report (404): one request, then the logs as before.
            "GET /projects/42/pipelines/1001/test_report_summary",
            "GET /projects/42/jobs/5001/trace",
            "GET /projects/42/jobs/5002/trace",
            // Upstream (no finished pipeline on main) and history (empty).
            "GET /projects/42/pipelines",
            "GET /projects/42/jobs",
            // Who the token is: only its user's notes are RunnerIQ's.
            "GET /user",
            "GET /projects/42/merge_requests/7/notes",
            "POST /projects/42/merge_requests/7/notes",
            // Listed again after creating: a concurrent run may have posted too.
            "GET /projects/42/merge_requests/7/notes",
        ]
    );
    // Only the failed jobs' traces: not the retried, allowed or passing ones.
    assert!(
        !log.iter()
            .any(|l| l.contains("/jobs/5003/") || l.contains("/jobs/5012/"))
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("/jobs/5013/") || l.contains("/jobs/6000/"))
    );
    // The job log carries the summary.
    let out = stdout(&o);
    assert!(
        out.starts_with("RunnerIQ diagnosis of pipeline #1001: 2 new failures · 1 flaky · 1 allowed to fail\n  4 jobs failed; the 2 new ones: 1 compilation error in torch/csrc/profiler/kineto_metadata.cpp (your change)"),
        "{out}"
    );
    assert!(stderr(&o).contains("posted note 9001 on merge request !7"));

    // Re-run (a retry of the pipeline): the same note is edited, nothing new.
    s.note_exists(body);
    s.fake.clear_requests();
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(
        writes[1].0,
        format!("PUT /projects/{PROJECT}/merge_requests/{MR}/notes/{NOTE_ID}")
    );
    assert_eq!(&writes[1].1, body, "same pipeline, same note");
    assert_eq!(s.count("POST"), 0);
    assert!(stderr(&o).contains("updated note 9001 on merge request !7"));
}

#[test]
fn a_job_that_passed_on_retry_is_listed_not_reported() {
    let s = Scenario::mr_pipeline();
    let o = s.run(&["--dry-run"], &[]);
    assert_ok(&o);
    let md = stdout(&o);
    assert!(!md.contains("##### [`test:flaky`]"), "not a failure:\n{md}");
    // Listed under the flaky group's heading and its reason, said once.
    assert!(md.contains("#### Flaky (1)\n\nPassed when retried: most likely not caused by this change; nothing to fix here.\n\n- [`test:flaky`](https://gitlab.example.com/group/proj/-/jobs/5012) · stage `test` · 1 of 2 attempts failed\n"), "{md}");
    assert!(md.contains("#### Allowed to fail (1)\n\n"), "{md}");
    assert!(md.contains("\n- [`lint:docs`]"));
    assert_eq!(assert_counts_add_up(&md), 4);
    assert!(!s.log().iter().any(|l| l.contains("/jobs/5003/trace")));
}

#[test]
fn a_child_pipeline_failure_is_read_from_the_downstream_project() {
    let s = Scenario::empty();
    s.fake.route_list(
        &p("/projects/{P}/pipelines/{PL}/jobs"),
        json!([
            job(
                SELF_JOB,
                "runneriq:diagnose",
                ".post",
                "running",
                PIPELINE,
                PROJECT
            ),
            job(5000, "prepare", "prepare", "success", PIPELINE, PROJECT),
        ]),
    );
    s.fake.route_list(
        &p("/projects/{P}/pipelines/{PL}/bridges"),
        json!([
            bridge(
                5100,
                "trigger:java",
                "failed",
                Some((CHILD_PIPELINE, CHILD_PROJECT))
            ),
            bridge(5101, "trigger:docs", "success", None),
        ]),
    );
    let child_jobs = format!("/projects/{CHILD_PROJECT}/pipelines/{CHILD_PIPELINE}/jobs");
    s.fake.route_list(
        &child_jobs,
        json!([
            job(
                7002,
                "test:lang",
                "test",
                "failed",
                CHILD_PIPELINE,
                CHILD_PROJECT
            ),
            job(
                7001,
                "compile",
                "build",
                "success",
                CHILD_PIPELINE,
                CHILD_PROJECT
            ),
        ]),
    );
    s.fake.route_list(
        &format!("/projects/{CHILD_PROJECT}/pipelines/{CHILD_PIPELINE}/bridges"),
        json!([]),
    );
    s.fake.route_text(
        &format!("/projects/{CHILD_PROJECT}/jobs/7002/trace"),
        runner_trace(&read_log("cd-commonslang_2089.log"), true),
    );
    s.fake.route_list(
        &p("/projects/{P}/merge_requests/{MR}/diffs"),
        diffs(&["src/main/java/org/apache/commons/lang3/StringUtils.java"]),
    );
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let log = s.log();
    assert!(log.contains(&format!("GET {child_jobs}")), "{log:#?}");
    assert!(log.contains(&format!("GET /projects/{CHILD_PROJECT}/jobs/7002/trace")));
    assert!(
        !log.iter().any(|l| l.contains("/jobs/5100/trace")),
        "bridges have no trace"
    );
    let writes = s.writes();
    assert_eq!(writes.len(), 1);
    let body = &writes[0].1;
    assert!(
        body.contains("##### [`test:lang`](https://gitlab.example.com/group/proj/-/jobs/7002) · stage `test` · in the pipeline started by `trigger:java`"),
        "{body}"
    );
    assert!(
        body.contains("### 🔴 1 new failure\n\n1 job failed: 1 test failure"),
        "{body}"
    );
    assert!(body.contains("**Test failure**"));
}

#[test]
fn a_pipeline_without_mr_gets_a_commit_discussion_edited_on_rerun() {
    let s = Scenario::mr_pipeline();
    s.fake.route_list(
        &p("/projects/{P}/repository/commits/{SHA}/diff"),
        read_json("gitlab/api/commit_diff.json"),
    );
    // A branch pipeline: no MR variables, and GitLab knows no open MR for the commit.
    let env = [("CI_MERGE_REQUEST_IID", "")];
    let o = s.run(&[], &env);
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].0,
        format!("POST /projects/{PROJECT}/repository/commits/{SHA}/discussions")
    );
    let body = writes[0].1.clone();
    assert_snapshot("diagnose_commit_note.md", &body);
    let log = s.log();
    assert!(log.contains(&format!(
        "GET /projects/42/repository/commits/{SHA}/merge_requests"
    )));
    assert!(log.contains(&format!("GET /projects/42/repository/commits/{SHA}/diff")));
    assert!(
        !log.iter().any(|l| l.contains("/merge_requests/7")),
        "{log:#?}"
    );

    s.fake.route_list(
        &p("/projects/{P}/repository/commits/{SHA}/discussions"),
        json!([
            read_json("gitlab/api/merge_request_discussions.gitlab_foss_27117.json")[0],
            discussion(DISCUSSION_ID, DISCUSSION_NOTE_ID, &body),
        ]),
    );
    s.fake.clear_requests();
    let o = s.run(&[], &env);
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(
        writes[1].0,
        format!(
            "PUT /projects/{PROJECT}/repository/commits/{SHA}/discussions/{DISCUSSION_ID}/notes/{DISCUSSION_NOTE_ID}"
        )
    );
    assert_eq!(s.count("POST"), 0);
}

#[test]
fn the_open_mr_of_the_commit_is_found_when_the_pipeline_is_a_branch_pipeline() {
    let s = Scenario::mr_pipeline();
    let mut mr = read_json("gitlab/api/merge_request.mergeable.gitlab_com.json");
    mr["iid"] = MR.into();
    mr["state"] = "opened".into();
    mr["sha"] = SHA.into();
    s.fake.route_list(
        &p("/projects/{P}/repository/commits/{SHA}/merge_requests"),
        json!([mr]),
    );
    let o = s.run(&[], &[("CI_MERGE_REQUEST_IID", "")]);
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].0,
        format!("POST /projects/{PROJECT}/merge_requests/{MR}/notes")
    );
}

#[test]
fn a_trace_answering_429_then_500_is_retried() {
    let s = Scenario::mr_pipeline();
    let trace = p("/projects/{P}/jobs/5001/trace");
    s.fake.fail_next(
        &trace,
        vec![
            Fault::RateLimited {
                retry_after_secs: 0,
            },
            Fault::Status(500),
        ],
    );
    let o = s.run(&["--dry-run"], &[]);
    assert_ok(&o);
    assert_eq!(s.fake.requests_to("GET", &trace).len(), 3);
    let md = stdout(&o);
    assert!(
        md.contains("**Compilation error** · severity **medium** · confidence"),
        "{md}"
    );
    assert!(!md.contains("could not be read"));
}

#[test]
fn a_trace_that_always_fails_is_named_in_the_note() {
    let s = Scenario::mr_pipeline();
    let trace = p("/projects/{P}/jobs/5002/trace");
    s.fake.fail_next(&trace, vec![Fault::Status(500); 10]);
    let o = s.run(&[], &[]);
    assert_ok(&o);
    assert_eq!(s.fake.requests_to("GET", &trace).len(), 3, "MAX_ATTEMPTS=3");
    let body = &s.writes()[0].1;
    assert!(
        body.contains("##### [`test:clone`](https://gitlab.example.com/group/proj/-/jobs/5002) · stage `test`\n\nIts log could not be read (HTTP 500 after 3 attempts"),
        "{body}"
    );
    assert!(body.contains("so RunnerIQ cannot say why it failed beyond GitLab's failure reason `script_failure`: open the job to read it.\n"));
    assert!(body.contains("4 jobs failed; the 2 new ones: 1 compilation error in `torch/csrc/profiler/kineto_metadata.cpp` (your change), 1 job whose log could not be read"));
    assert_eq!(assert_counts_add_up(body), 4);
    // The other job is still fully diagnosed.
    assert!(body.contains("**Compilation error**"));
}

#[test]
fn dry_run_sends_no_write() {
    let s = Scenario::mr_pipeline();
    let o = s.run(&["--dry-run"], &[]);
    assert_ok(&o);
    assert_eq!(s.count("POST") + s.count("PUT") + s.count("DELETE"), 0);
    let md = stdout(&o);
    assert!(md.starts_with("<!-- runneriq:diagnose -->\n"), "{md}");
    // The dry run prints exactly what would be posted.
    let s2 = Scenario::mr_pipeline();
    assert_ok(&s2.run(&[], &[]));
    assert_eq!(md, s2.writes()[0].1);
    assert!(stderr(&o).contains("dry run: nothing was posted on merge request !7"));
    // The summary still reaches the job log (stderr when stdout has the note).
    assert!(stderr(&o).contains("RunnerIQ diagnosis of pipeline #1001"));
}

#[test]
fn json_format_prints_the_data_the_template_renders() {
    let s = Scenario::mr_pipeline();
    let o = s.run(&["--dry-run", "--format", "json"], &[]);
    assert_ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["pipeline_id"], PIPELINE);
    assert_eq!(v["failed"][0]["name"], "build:cpp");
    assert_eq!(v["failed"][0]["category"], "compilation");
    assert_eq!(
        v["failed"][0]["changed_files"][0]["path"],
        "torch/csrc/profiler/kineto_metadata.cpp"
    );
    assert_eq!(v["failed"][0]["changed_files"][0]["line"], 128);
    assert_eq!(v["failed"][1]["transient"], true);
    assert_eq!(v["passed_on_retry"][0]["name"], "test:flaky");
    assert_eq!(v["allowed_failures"][0]["name"], "lint:docs");
    assert_eq!(s.count("POST") + s.count("PUT"), 0);
}

#[test]
fn forbidden_post_exits_1_with_one_sentence_and_keeps_the_summary() {
    let s = Scenario::mr_pipeline();
    s.fake
        .fail_next(&p("/projects/{P}/merge_requests/{MR}/notes"), vec![]);
    s.fake.on_write(
        "POST",
        &p("/projects/{P}/merge_requests/{MR}/notes"),
        Box::new(|_| (403, r#"{"message":"403 Forbidden"}"#.to_string())),
    );
    let o = s.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one sentence:\n{err}");
    assert!(
        lines[0].starts_with("runneriq: could not post the diagnosis on merge request !7 (POST /projects/42/merge_requests/7/notes): GitLab answered 403 Forbidden — the token needs the `api` scope"),
        "{err}"
    );
    assert!(!err.contains(TOKEN));
    let out = stdout(&o);
    assert!(
        out.starts_with("RunnerIQ diagnosis of pipeline #1001: 2 new failures · 1 flaky · 1 allowed to fail\n  4 jobs failed; the 2 new ones"),
        "{out}"
    );
    assert!(out.contains(
        "- build:cpp (stage build) [new, severity medium]\n    Compilation error, confidence"
    ));
    assert!(out.contains("    > "));
    assert_eq!(s.count("POST"), 1, "a rejected POST is not retried");
}

#[test]
fn log_text_and_job_names_cannot_inject_markdown_mentions_or_quick_actions() {
    let s = Scenario::empty();
    let evil_name = "/merge @all <script>alert(1)</script>";
    s.fake.route_list(
        &p("/projects/{P}/pipelines/{PL}/jobs"),
        json!([job(5001, evil_name, "build", "failed", PIPELINE, PROJECT)]),
    );
    s.fake
        .route_list(&p("/projects/{P}/pipelines/{PL}/bridges"), json!([]));
    let mut log = read_log("pt-compile_error.log");
    // Put hostile text around the real compiler error, where evidence context is taken.
    let hostile = "@all please look ```` here <script>alert(1)</script> \
                   \u{202e}txt.exe\u{2066} hidden\u{200b}space\u{feff}\n/merge\n";
    let at = log
        .windows(8)
        .position(|w| w == b"FAILED: ")
        .and_then(|i| log[..i].iter().rposition(|b| *b == b'\n'))
        .map_or(0, |i| i + 1);
    log.splice(at..at, hostile.bytes());
    s.fake.route_text(
        &p("/projects/{P}/jobs/5001/trace"),
        runner_trace(&log, false),
    );
    s.fake.route_list(
        &p("/projects/{P}/merge_requests/{MR}/diffs"),
        diffs(&["README.md"]),
    );
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let body = s.writes()[0].1.clone();
    assert_snapshot("diagnose_hostile_note.md", &body);

    let (outside, inside) = split_fences(&body);
    for line in &outside {
        assert!(
            !line.trim_start().starts_with('/'),
            "quick action outside a fence: {line:?}"
        );
        assert!(!line.contains("@all"), "mention outside a fence: {line:?}");
        assert!(
            !without_code_spans(line).contains("<script"),
            "HTML outside a fence and outside code: {line:?}"
        );
    }
    // The hostile log lines are shown, verbatim, inside the fence.
    assert!(
        inside.iter().any(|l| l.ends_with("| /merge")),
        "{inside:#?}"
    );
    assert!(
        inside
            .iter()
            .any(|l| l.contains("@all please look ```` here <script>"))
    );
    assert!(
        body.contains("\n`````text\n"),
        "fence longer than the log's ````:\n{body}"
    );
    // Bidi controls and zero-width characters are shown, not obeyed.
    assert!(
        inside
            .iter()
            .any(|l| l.ends_with("<U+202E>txt.exe<U+2066> hidden<U+200B>space<U+FEFF>")),
        "{inside:#?}"
    );
    for c in ['\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}'] {
        assert!(
            !inside.iter().any(|l| l.contains(c)),
            "{c:?} left in an excerpt"
        );
    }
}

#[test]
fn a_user_template_that_fails_is_an_input_error_naming_it() {
    let s = Scenario::mr_pipeline();
    let dir = std::env::temp_dir().join(format!("runneriq-e2e-tpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("note.md.j2"), "{{ marker }}\n{{ 1 / 0 }}\n").unwrap();
    let o = s.run(&["--templates", dir.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}", dir.join("note.md.j2").display())),
        "{}",
        stderr(&o)
    );
    assert!(s.writes().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_green_pipeline_resolves_the_existing_note_and_keeps_the_history() {
    let s = Scenario::empty();
    s.fake.route_list(
        &p("/projects/{P}/pipelines/{PL}/jobs"),
        json!([
            job(
                SELF_JOB,
                "runneriq:diagnose",
                ".post",
                "running",
                PIPELINE,
                PROJECT
            ),
            job(5012, "test:flaky", "test", "success", PIPELINE, PROJECT),
            job(5003, "test:flaky", "test", "failed", PIPELINE, PROJECT),
            job(5000, "prepare", "prepare", "success", PIPELINE, PROJECT),
        ]),
    );
    s.fake
        .route_list(&p("/projects/{P}/pipelines/{PL}/bridges"), json!([]));

    // No note yet: nothing is posted.
    let o = s.run(&[], &[]);
    assert_ok(&o);
    assert!(s.writes().is_empty());
    assert!(stderr(&o).contains("nothing to post"));
    assert!(stdout(&o).contains("pipeline #1001 has no failed jobs"));

    // An earlier diagnosis exists: it is edited to say "resolved".
    let earlier = Scenario::mr_pipeline();
    let o = earlier.run(&["--dry-run"], &[]);
    assert_ok(&o);
    let previous = stdout(&o);
    s.note_exists(&previous);
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].0,
        format!("PUT /projects/{PROJECT}/merge_requests/{MR}/notes/{NOTE_ID}")
    );
    let body = &writes[0].1;
    assert_snapshot("diagnose_resolved_note.md", body);
    assert!(body.contains("passed — resolved"));
    assert!(body.contains("<details>\n<summary>Previous diagnosis</summary>"));
    assert_eq!(body.matches("<!-- runneriq:diagnose -->").count(), 1);

    // Resolving again keeps the same history, not a nested copy.
    s.note_exists(body);
    let o = s.run(&[], &[]);
    assert_ok(&o);
    assert_eq!(&s.writes()[1].1, body);
}

#[test]
fn missing_inputs_exit_2_naming_the_flag_and_the_variable() {
    let s = Scenario::empty();
    let o = s.run(&[], &[("CI_PIPELINE_ID", "")]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--pipeline") && err.contains("CI_PIPELINE_ID"),
        "{err}"
    );
    let o = s.run(&[], &[("CI_API_V4_URL", "")]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--gitlab-url") && err.contains("CI_API_V4_URL"),
        "{err}"
    );
    assert!(s.fake.requests().is_empty());
}

// ---------------------------------------------------------------------------
// Noise: flaky, broken upstream, grouping, suppression, severity, routing

const MAIN_PIPELINE: u64 = 900;
/// 2025-11-24T16:00:00Z: the clock of the cooldown tests.
const T0: u64 = 1_764_000_000;

/// A job of an earlier pipeline on `main`.
fn on_main(id: u64, name: &str, stage: &str, status: &str, pipeline: u64) -> Value {
    let mut j = job(id, name, stage, status, pipeline, PROJECT);
    j["ref"] = "main".into();
    j
}

/// The pytest failure of a matrix job: timings differ from job to job, the
/// error is the same.
fn matrix_log(i: usize) -> Vec<u8> {
    String::from_utf8_lossy(&read_log("pt-pytest_failure.log"))
        .replace("310.0221s", &format!("{}.{:04}s", 290 + i, 37 * i))
        .replace(
            "310.0115718841553 seconds",
            &format!("{}.{} seconds", 300 + i, 1_000_003 * i),
        )
        .replace(
            "310.03s (0:05:10)",
            &format!("{}.5s (0:05:{:02})", 290 + i, i),
        )
        .into_bytes()
}

/// A loopback receiver for Slack and generic webhooks: records what was
/// POSTed (it requires no token, and the GitLab token must never reach it).
struct Hooks {
    fake: FakeGitLab,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Hooks {
    fn start() -> Hooks {
        let fake = FakeGitLab::start();
        let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        for name in ["slack", "generic"] {
            let g = Arc::clone(&got);
            fake.on_write(
                "POST",
                &format!("/hooks/{name}"),
                Box::new(move |r| {
                    assert!(
                        r.header("private-token").is_none() && r.header("authorization").is_none()
                    );
                    g.lock().unwrap().push((name.to_string(), r.json()));
                    (200, "\"ok\"".to_string())
                }),
            );
        }
        Hooks { fake, got }
    }
    fn url(&self, name: &str) -> String {
        format!("{}/hooks/{name}", self.fake.base_url())
    }
    fn received(&self, name: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A config file in a fresh temp directory.
fn config_file(tag: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "runneriq-e2e-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(".runneriq.yml");
    std::fs::write(&path, text).unwrap();
    path
}

const NOISE_CONFIG: &str = "\
suppress:
  - job: \"docs:*\"
    reason: docs builds are best effort
notify:
  slack: { min_severity: medium, cooldown: 6h }
  webhook: { url_env: RUNNERIQ_TEST_HOOK, min_severity: medium, cooldown: 1h }
";

impl Scenario {
    /// An MR pipeline with every kind of noise: a compile error in a changed
    /// file (new), the same pytest error in 12 matrix jobs (new, one entry),
    /// a test that fails now and then on `main` with the same error (known
    /// flaky), an image pull that fails the same way on `main`'s latest
    /// pipeline (broken upstream), a docs build (suppressed by glob), a job
    /// that passed on retry and an allowed failure.
    fn noisy_mr_pipeline() -> Scenario {
        let s = Scenario::empty();
        let mut jobs = vec![
            job(
                SELF_JOB,
                "runneriq:diagnose",
                ".post",
                "running",
                PIPELINE,
                PROJECT,
            ),
            allow_failure(job(5013, "lint:docs", "test", "failed", PIPELINE, PROJECT)),
            job(5012, "test:flaky", "test", "success", PIPELINE, PROJECT),
            job(5003, "test:flaky", "test", "failed", PIPELINE, PROJECT),
            job(5001, "build:cpp", "build", "failed", PIPELINE, PROJECT),
            job(5020, "test:e2e", "test", "failed", PIPELINE, PROJECT),
            job(5030, "image:pull", "build", "failed", PIPELINE, PROJECT),
            job(5040, "docs:build", "test", "failed", PIPELINE, PROJECT),
        ];
        for i in 0..12 {
            let id = 5100 + i as u64;
            jobs.push(job(
                id,
                &format!("test:unit [py3.{}, shard {}]", 10 + i % 3, i / 3 + 1),
                "test",
                "failed",
                PIPELINE,
                PROJECT,
            ));
            s.fake.route_text(
                &p(&format!("/projects/{{P}}/jobs/{id}/trace")),
                runner_trace(&matrix_log(i), true),
            );
        }
        s.fake
            .route_list(&p("/projects/{P}/pipelines/{PL}/jobs"), Value::Array(jobs));
        s.fake
            .route_list(&p("/projects/{P}/pipelines/{PL}/bridges"), json!([]));
        let traces = [
            (5001, "pt-compile_error.log"),
            (5020, "cd-commonslang_2089.log"),
            (5030, "pt-docker_manifest_unknown.log"),
            (5040, "cd-guava_1947.log"),
        ];
        for (id, log) in traces {
            s.fake.route_text(
                &p(&format!("/projects/{{P}}/jobs/{id}/trace")),
                runner_trace(&read_log(log), false),
            );
        }
        s.fake.route_list(
            &p("/projects/{P}/merge_requests/{MR}/diffs"),
            diffs(&["torch/csrc/profiler/kineto_metadata.cpp"]),
        );

        // main's latest finished pipeline failed: the image pull fails there too.
        let mut main = read_json("gitlab/api/pipeline.kitware.json");
        main["id"] = MAIN_PIPELINE.into();
        main["status"] = "failed".into();
        main["ref"] = "main".into();
        main["web_url"] = format!("{WEB}/-/pipelines/{MAIN_PIPELINE}").into();
        s.fake
            .route_list(&p("/projects/{P}/pipelines"), json!([main]));
        s.fake.route_list(
            &p(&format!("/projects/{{P}}/pipelines/{MAIN_PIPELINE}/jobs")),
            json!([on_main(
                4030,
                "image:pull",
                "build",
                "failed",
                MAIN_PIPELINE
            )]),
        );
        s.fake.route_text(
            &p("/projects/{P}/jobs/4030/trace"),
            runner_trace(&read_log("pt-docker_manifest_unknown.log"), true),
        );

        // The recent jobs of the project (newest first): test:e2e on main
        // failed 3 of its last 8 runs with the same error; build:cpp passed;
        // a feature branch's failures do not count.
        let mut history = vec![on_main(
            4030,
            "image:pull",
            "build",
            "failed",
            MAIN_PIPELINE,
        )];
        for (k, status) in [
            "failed", "success", "success", "failed", "success", "success", "failed", "success",
        ]
        .iter()
        .enumerate()
        {
            let id = 3010 - k as u64;
            history.push(on_main(id, "test:e2e", "test", status, 890 - k as u64));
            history.push(on_main(
                id + 100,
                "build:cpp",
                "build",
                "success",
                890 - k as u64,
            ));
            if *status == "failed" {
                s.fake.route_text(
                    &p(&format!("/projects/{{P}}/jobs/{id}/trace")),
                    runner_trace(&read_log("cd-commonslang_2089.log"), true),
                );
            }
        }
        let mut feature = job(2999, "test:e2e", "test", "failed", 880, PROJECT);
        feature["ref"] = "feature/other".into();
        history.push(feature);
        s.fake
            .route_list(&p("/projects/{P}/jobs"), Value::Array(history));
        s
    }
}

fn noisy_env<'a>(
    config: &'a str,
    hooks: &'a (String, String),
    now: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("RUNNERIQ_CONFIG", config),
        ("RUNNERIQ_SLACK_WEBHOOK_URL", hooks.0.as_str()),
        ("RUNNERIQ_TEST_HOOK", hooks.1.as_str()),
        ("RUNNERIQ_NOW", now),
    ]
}

#[test]
fn noise_is_separated_from_new_failures_in_one_note() {
    let s = Scenario::noisy_mr_pipeline();
    let hooks = Hooks::start();
    let cfg = config_file("noise", NOISE_CONFIG);
    let urls = (hooks.url("slack"), hooks.url("generic"));
    let now = T0.to_string();
    let o = s.run(&[], &noisy_env(cfg.to_str().unwrap(), &urls, &now));
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let body = &writes[0].1;
    assert_snapshot("diagnose_noise_note.md", body);

    // The first line counts what is real and what is noise, in jobs, in the
    // order of the groups below: 18 failed jobs, each counted once.
    let first = body.lines().nth(2).unwrap();
    assert_eq!(
        first,
        "### 🔴 13 new failures · 1 already failing on `main` · 2 flaky · 1 suppressed · 1 allowed to fail"
    );
    assert!(body.contains("\n18 jobs failed; the 13 new ones: 1 compilation error in `torch/csrc/profiler/kineto_metadata.cpp` (your change), 12 test failure jobs in `distributed/test_c10d_spawn_gloo.py`.\n"), "{body}");
    assert_eq!(assert_counts_add_up(body), 18);
    assert!(bare_issue_references(body).is_empty(), "{body}");
    let groups: Vec<&str> = body.lines().filter(|l| l.starts_with("#### ")).collect();
    assert_eq!(
        groups,
        vec![
            "#### New failures (13)",
            "#### Already failing on `main` (1)",
            "#### Flaky (2)",
            "#### Suppressed by `.runneriq.yml` (1)",
            "#### Allowed to fail (1)",
        ]
    );
    // The 12 matrix jobs are one entry listing the 11 others.
    let job_headings = body.lines().filter(|l| l.starts_with("##### [")).count();
    assert_eq!(job_headings, 4, "{body}");
    assert!(body.contains("Same failure in 11 more jobs: "), "{body}");
    for i in 1..12 {
        assert!(body.contains(&format!("/-/jobs/{})", 5100 + i)), "job {i}");
    }
    // Broken upstream, linked to main's pipeline (once, under the group's
    // heading) and to the job there; known flaky with its history.
    assert!(body.contains("#### Already failing on `main` (1)\n\nNot caused by this merge request: this job fails the same way in [pipeline #900](https://gitlab.example.com/group/proj/-/pipelines/900), the latest finished pipeline of `main`."), "{body}");
    assert_eq!(body.matches("/-/pipelines/900)").count(), 1, "{body}");
    assert!(body.contains("Its failing run on `main`: [`image:pull`](https://gitlab.example.com/group/proj/-/jobs/4030).\n"), "{body}");
    assert!(
        body.contains(
            "Failed 3 of its last 8 runs on `main` (3 of the 3 logs read show this same error)"
        ),
        "{body}"
    );
    // Suppressed by the glob, counted, listed in a collapsed section.
    assert!(body.contains("#### Suppressed by `.runneriq.yml` (1)\n\nMatched a `suppress:` rule: counted, not diagnosed.\n\n<details>\n<summary>Show the job</summary>"), "{body}");
    assert!(body.contains("[`docs:build`](https://gitlab.example.com/group/proj/-/jobs/5040) · stage `test` · Compilation error · rule 1: docs builds are best effort"), "{body}");
    // Passed on retry: flaky, not broken; under the flaky group, after the
    // known flaky job, with a heading of its own so it is not read as part
    // of that job.
    assert!(
        body.contains("##### Passed on retry (1)\n\n- [`test:flaky`]"),
        "{body}"
    );

    // What the history lookup cost: upstream 2 listings + 1 trace, history
    // 1 page + 3 traces (the feature branch's failure is not read).
    let log = s.log();
    let history: Vec<&String> = log
        .iter()
        .filter(|l| {
            l.ends_with("/projects/42/pipelines")
                || l.ends_with("/pipelines/900/jobs")
                || l.ends_with("/projects/42/jobs")
                || ["4030", "3010", "3007", "3004", "2999"]
                    .iter()
                    .any(|id| l.ends_with(&format!("/jobs/{id}/trace")))
        })
        .collect();
    assert_eq!(history.len(), 7, "{history:?}");
    assert!(!log.iter().any(|l| l.contains("/jobs/2999/")));

    // Slack and the webhook each got one message, for the two new failures.
    let slack = hooks.received("slack");
    assert_eq!(slack.len(), 1);
    let text = slack[0]["text"].as_str().unwrap();
    assert!(text.starts_with("*RunnerIQ* · <https://gitlab.example.com/group/proj/-/pipelines/1001|pipeline #1001> in `42` on `feature/profiler` · 13 new failures · 1 already failing on main"), "{text}");
    assert_eq!(text.matches("\n• ").count(), 2, "{text}");
    assert!(text.contains("(12 jobs)"));
    let hook = hooks.received("generic");
    assert_eq!(hook.len(), 1);
    let failures = hook[0]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert_eq!(hook[0]["event"], "runneriq.failures");
    assert_eq!(failures[1]["jobs_total"], 12);
    assert_eq!(failures[1]["jobs"].as_array().unwrap().len(), 12);
    assert_eq!(failures[0]["fingerprint"].as_str().unwrap().len(), 16);
    let all = format!("{slack:?}{hook:?}{body}");
    assert!(!all.contains(TOKEN));
    // The note remembers what was sent, for the cooldown.
    assert!(
        body.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("<!-- runneriq:state {\"sent\":{\"slack\":{")
    );
}

#[test]
fn the_json_output_reports_noise_fields_and_the_history_cost() {
    let s = Scenario::noisy_mr_pipeline();
    let cfg = config_file("json", "suppress:\n  - job: \"docs:*\"\n");
    let o = s.run(
        &["--format", "json", "--dry-run"],
        &[("RUNNERIQ_CONFIG", cfg.to_str().unwrap())],
    );
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // Counted in jobs: 13 new (2 distinct errors), 1 upstream, 1 known flaky
    // and 1 passed on retry, 1 suppressed, 1 allowed to fail.
    assert_eq!(v["counts"]["total"], 18);
    assert_eq!(v["counts"]["new"], 13);
    assert_eq!(v["counts"]["new_errors"], 2);
    assert_eq!(v["counts"]["flaky"], 2);
    assert_eq!(v["counts"]["passed_on_retry"], 1);
    assert_eq!(v["counts"]["upstream"], 1);
    assert_eq!(v["counts"]["suppressed"], 1);
    assert_eq!(v["counts"]["allowed"], 1);
    assert_eq!(v["history_requests"], 7);
    let by_name = |n: &str| {
        v["failed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("build:cpp")["noise"], "new");
    assert_eq!(by_name("build:cpp")["severity"], "medium");
    assert_eq!(by_name("image:pull")["noise"], "upstream");
    assert_eq!(by_name("image:pull")["severity"], "low");
    assert_eq!(by_name("test:e2e")["noise"], "flaky");
    assert_eq!(by_name("test:e2e")["history"]["runs"], 8);
    assert_eq!(by_name("test:e2e")["history"]["same"], 3);
    assert_eq!(by_name("test:unit [py3.10, shard 1]")["jobs_in_group"], 12);
    // A dry run sends nothing anywhere.
    assert!(stderr(&o).contains("dry run"));
    assert_eq!(s.count("POST") + s.count("PUT"), 0);
}

#[test]
fn the_history_lookup_keeps_to_its_request_budget() {
    let s = Scenario::noisy_mr_pipeline();
    let cfg = config_file("budget", "history: { max_requests: 3 }\n");
    let o = s.run(
        &["--format", "json", "--dry-run"],
        &[("RUNNERIQ_CONFIG", cfg.to_str().unwrap())],
    );
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["history_requests"].as_u64().unwrap() <= 3,
        "{}",
        v["history_requests"]
    );
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("budget of 3 API requests")),
        "{}",
        v["warnings"]
    );
}

#[test]
fn a_notification_is_not_repeated_within_its_cooldown() {
    let s = Scenario::noisy_mr_pipeline();
    let hooks = Hooks::start();
    let cfg = config_file("cooldown", NOISE_CONFIG);
    let urls = (hooks.url("slack"), hooks.url("generic"));
    let cfg = cfg.to_str().unwrap();

    let now = T0.to_string();
    assert_ok(&s.run(&[], &noisy_env(cfg, &urls, &now)));
    let body = s.writes()[0].1.clone();
    s.note_exists(&body);
    s.fake.clear_requests();

    // One hour later: Slack (6h) stays quiet, the webhook (1h) is due again.
    let now = (T0 + 3600).to_string();
    let o = s.run(&[], &noisy_env(cfg, &urls, &now));
    assert_ok(&o);
    assert_eq!(hooks.received("slack").len(), 1);
    assert_eq!(hooks.received("generic").len(), 2);
    assert!(
        stderr(&o).contains("slack: 2 failure(s) already sent within the cooldown"),
        "{}",
        stderr(&o)
    );
    let body = s.writes().last().unwrap().1.clone();
    assert_eq!(s.writes().len(), 2, "one note, edited");
    s.note_exists(&body);

    // Seven hours after the first: Slack again.
    let now = (T0 + 7 * 3600).to_string();
    assert_ok(&s.run(&[], &noisy_env(cfg, &urls, &now)));
    assert_eq!(hooks.received("slack").len(), 2);
    assert_eq!(s.count("POST"), 0, "the note is only edited");
}

#[test]
fn a_failure_on_the_default_branch_gets_one_issue_reopened_when_it_recurs() {
    let s = Scenario::empty();
    s.fake.route_list(
        &p("/projects/{P}/pipelines/{PL}/jobs"),
        json!([
            job(
                SELF_JOB,
                "runneriq:diagnose",
                ".post",
                "running",
                PIPELINE,
                PROJECT
            ),
            on_main(5001, "build:cpp", "build", "failed", PIPELINE),
        ]),
    );
    s.fake
        .route_list(&p("/projects/{P}/pipelines/{PL}/bridges"), json!([]));
    s.fake.route_text(
        &p("/projects/{P}/jobs/5001/trace"),
        runner_trace(&read_log("pt-compile_error.log"), false),
    );
    s.fake
        .route_list(&p("/projects/{P}/repository/commits/{SHA}/diff"), json!([]));
    s.fake.route_list(&p("/projects/{P}/issues"), json!([]));
    let issues: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let i = Arc::clone(&issues);
    s.fake.on_write(
        "POST",
        &p("/projects/{P}/issues"),
        Box::new(move |r| {
            i.lock().unwrap().push(("POST".into(), r.json()));
            let mut issue = read_json("gitlab/api/issue.kitware.json");
            issue["iid"] = 77.into();
            issue["description"] = r.json()["description"].clone();
            (201, issue.to_string())
        }),
    );
    let i = Arc::clone(&issues);
    s.fake.on_write(
        "PUT",
        &p("/projects/{P}/issues/"),
        Box::new(move |r| {
            i.lock()
                .unwrap()
                .push((format!("PUT {}", r.api_path()), r.json()));
            (200, read_json("gitlab/api/issue.kitware.json").to_string())
        }),
    );
    let cfg = config_file("issues", "notify:\n  issues: { min_severity: medium }\n");
    let env = |now: &str| -> Vec<(String, String)> {
        vec![
            ("RUNNERIQ_CONFIG".into(), cfg.to_str().unwrap().into()),
            ("CI_MERGE_REQUEST_IID".into(), String::new()),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME".into(), String::new()),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME".into(), String::new()),
            ("CI_COMMIT_BRANCH".into(), "main".into()),
            ("RUNNERIQ_NOW".into(), now.into()),
        ]
    };
    let run = |now: u64| {
        let e = env(&now.to_string());
        let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        s.run(&[], &refs)
    };
    let o = run(T0);
    assert_ok(&o);
    let got = issues.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "POST");
    assert_eq!(got[0].1["labels"], "runneriq");
    assert_eq!(
        got[0].1["title"],
        "CI failure on main: Compilation error in build:cpp"
    );
    let description = got[0].1["description"].as_str().unwrap().to_string();
    assert!(
        description.starts_with("<!-- runneriq:failure fp="),
        "{description}"
    );
    // main is the default branch: a build failure there is high.
    assert!(
        description.contains("Severity **high** (build job on the default or a protected branch)"),
        "{description}"
    );
    // The error in words above the excerpt; pipeline numbers only in links.
    assert!(
        description.contains("\n**The log says** (line 40): `/__w/pytorch/pytorch/torch/csrc/profiler/kineto_metadata.cpp:128:26: error: no matching function"),
        "{description}"
    );
    assert!(
        bare_issue_references(&description).is_empty(),
        "{description}"
    );

    // Someone closes the issue; the next pipeline fails the same way.
    let mut closed = read_json("gitlab/api/issue.kitware.json");
    closed["iid"] = 77.into();
    closed["state"] = "closed".into();
    closed["labels"] = json!(["runneriq"]);
    closed["description"] = description.clone().into();
    closed["author"] = me();
    // A newer labelled issue by somebody else carries the same marker: it
    // is not ours, so it is neither edited nor taken for the failure's.
    let mut imitation = read_json("gitlab/api/issue.kitware.json");
    imitation["iid"] = 78.into();
    imitation["labels"] = json!(["runneriq"]);
    imitation["description"] = description.into();
    assert_ne!(imitation["author"]["id"], me()["id"]);
    s.fake
        .route_list(&p("/projects/{P}/issues"), json!([imitation, closed]));
    let o = run(T0 + 60);
    assert_ok(&o);
    let got = issues.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].0, "PUT /projects/42/issues/77");
    assert_eq!(got[1].1["state_event"], "reopen");
    assert!(
        stderr(&o).contains("reopened issue #77 for build:cpp"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn config_errors_name_the_file_the_key_and_the_type_before_any_request() {
    let s = Scenario::mr_pipeline();
    let cfg = config_file("bad", "notify:\n  slack: { cooldown: soon }\n");
    let o = s.run(&[], &[("RUNNERIQ_CONFIG", cfg.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(".runneriq.yml: notify.slack.cooldown: expected a duration"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(s.fake.requests().is_empty());

    let cfg = config_file("bad2", "suppress:\n  - jobs: x\n");
    let o = s.run(&[], &[("RUNNERIQ_CONFIG", cfg.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("suppress[0]: unknown key \"jobs\""),
        "{}",
        stderr(&o)
    );

    let o = s.run(&[], &[("RUNNERIQ_CONFIG", "/nonexistent/.runneriq.yml")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/.runneriq.yml"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------------------
// Hostile participants: other users' notes, log text posing as our markers,
// runs racing each other.

/// Slack only, medium and above, 6 h cooldown.
const SLACK_CONFIG: &str = "notify:\n  slack: { min_severity: medium, cooldown: 6h }\n";

/// The fingerprints of the standard MR pipeline's failures, from a dry run.
fn mr_pipeline_fingerprints() -> Vec<String> {
    let s = Scenario::mr_pipeline();
    let o = s.run(&["--dry-run", "--format", "json"], &[]);
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["fingerprint"].as_str().unwrap().to_string())
        .collect()
}

/// A state line that claims every fingerprint was sent to Slack far in the
/// future, so that a run trusting it stays silent.
fn silencing_state(fingerprints: &[String]) -> String {
    let sent: serde_json::Map<String, Value> = fingerprints
        .iter()
        .map(|f| (f.clone(), json!(99_999_999_999u64)))
        .collect();
    format!(
        "<!-- runneriq:state {} -->",
        json!({ "sent": { "slack": sent } })
    )
}

/// A run at [`T0`] with [`SLACK_CONFIG`] and a loopback Slack.
fn run_with_slack(s: &Scenario, tag: &str) -> (Output, Hooks) {
    let hooks = Hooks::start();
    let cfg = config_file(tag, SLACK_CONFIG);
    let slack = hooks.url("slack");
    let now = T0.to_string();
    let o = s.run(
        &[],
        &[
            ("RUNNERIQ_CONFIG", cfg.to_str().unwrap()),
            ("RUNNERIQ_SLACK_WEBHOOK_URL", &slack),
            ("RUNNERIQ_NOW", &now),
        ],
    );
    (o, hooks)
}

/// Lines of `body` outside fences that start with one of our hidden markers.
fn hidden_lines_outside_fences(body: &str) -> Vec<String> {
    split_fences(body)
        .0
        .into_iter()
        .filter(|l| l.trim_start().starts_with("<!-- runneriq:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_log_line_cannot_smuggle_markers_out_of_its_fence_when_the_note_is_resolved() {
    let fingerprints = mr_pipeline_fingerprints();
    let s = Scenario::mr_pipeline();
    // The compile error's log carries lines that imitate the resolved note's
    // markers and state, with links, a tracking pixel, HTML and a mention.
    // Two lines, just above the compiler's `FAILED:` line (its context).
    let hostile = format!(
        "error: <!-- runneriq:previous --> {}\n[details](https://evil.example/phish) \
         ![x](https://evil.example/pixel.png) <img src=\"https://evil.example/p.png\"> @all \
         error: <!-- runneriq:previous-end -->\n",
        silencing_state(&fingerprints)
    );
    let mut log = read_log("pt-compile_error.log");
    let at = log
        .windows(8)
        .position(|w| w == b"FAILED: ")
        .and_then(|i| log[..i].iter().rposition(|b| *b == b'\n'))
        .map_or(0, |i| i + 1);
    log.splice(at..at, hostile.bytes());
    let trace = |log: &[u8]| runner_trace(log, false);
    s.fake
        .route_text(&p("/projects/{P}/jobs/5001/trace"), trace(&log));

    // 1. The failed pipeline's note shows the hostile lines inside its fence.
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let failed_note = s.writes()[0].1.clone();
    let (_, inside) = split_fences(&failed_note);
    for marker in [
        "<!-- runneriq:previous -->",
        "<!-- runneriq:previous-end -->",
    ] {
        assert!(
            inside.iter().any(|l| l.contains(marker)),
            "the hostile lines are part of the excerpt:\n{failed_note}"
        );
    }
    s.note_exists(&failed_note);

    // 2. The next pipeline is green: the note is resolved, with history.
    s.fake.route_list(
        &p("/projects/{P}/pipelines/{PL}/jobs"),
        json!([
            job(
                SELF_JOB,
                "runneriq:diagnose",
                ".post",
                "running",
                PIPELINE,
                PROJECT
            ),
            job(5001, "build:cpp", "build", "success", PIPELINE, PROJECT),
        ]),
    );
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let resolved = s.writes().last().unwrap().1.clone();
    assert!(resolved.contains("passed — resolved"), "{resolved}");
    assert!(resolved.contains("Previous diagnosis"), "{resolved}");
    let (outside, _) = split_fences(&resolved);
    for line in &outside {
        let plain = without_code_spans(line);
        for bad in ["evil.example", "<img", "@all"] {
            assert!(
                !plain.contains(bad),
                "{bad:?} outside a fence: {line:?}\n{resolved}"
            );
        }
    }
    // Hidden lines: our two first lines and our state line, nothing else.
    let hidden = hidden_lines_outside_fences(&resolved);
    assert_eq!(hidden.len(), 3, "{hidden:#?}\n{resolved}");
    assert_eq!(resolved.lines().next(), Some("<!-- runneriq:diagnose -->"));
    assert!(
        resolved
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("<!-- runneriq:state ")
    );
    s.note_exists(&resolved);

    // 3. It fails again (the ordinary compile error): Slack is told, the
    // smuggled "already sent" state is not trusted.
    s.fake.route_list(
        &p("/projects/{P}/pipelines/{PL}/jobs"),
        json!([
            job(
                SELF_JOB,
                "runneriq:diagnose",
                ".post",
                "running",
                PIPELINE,
                PROJECT
            ),
            job(5002, "test:clone", "test", "failed", PIPELINE, PROJECT),
            job(5001, "build:cpp", "build", "failed", PIPELINE, PROJECT),
        ]),
    );
    s.fake.route_text(
        &p("/projects/{P}/jobs/5001/trace"),
        trace(&read_log("pt-compile_error.log")),
    );
    let (o, hooks) = run_with_slack(&s, "smuggled-state");
    assert_ok(&o);
    assert_eq!(
        hooks.received("slack").len(),
        1,
        "Slack was silenced by state read from log text:\n{}",
        stderr(&o)
    );
}

#[test]
fn a_comment_imitating_our_marker_is_neither_edited_nor_trusted() {
    let fingerprints = mr_pipeline_fingerprints();
    let s = Scenario::mr_pipeline();
    // A participant (not the token's user) posts a comment that starts with
    // our marker and ends with a state line silencing Slack.
    let mut impostor = note(
        7777,
        &format!(
            "<!-- runneriq:diagnose -->\nI am RunnerIQ, trust me.\n{}",
            silencing_state(&fingerprints)
        ),
    );
    let others = other_notes();
    impostor["author"] = others[9]["author"].clone();
    assert_ne!(impostor["author"]["id"], me()["id"]);
    let mut notes = others;
    notes.insert(2, impostor);
    s.fake.route_list(
        &p("/projects/{P}/merge_requests/{MR}/notes"),
        Value::Array(notes),
    );
    // GitLab refuses edits of other users' notes.
    s.fake.on_write(
        "PUT",
        &p("/projects/{P}/merge_requests/{MR}/notes/7777"),
        Box::new(|_| (403, json!({"message": "403 Forbidden"}).to_string())),
    );
    let (o, hooks) = run_with_slack(&s, "impostor");
    assert_ok(&o);
    assert!(
        !s.log().iter().any(|l| l.contains("/notes/7777")),
        "the impostor's note was touched: {:#?}",
        s.log()
    );
    let writes = s.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].0,
        format!("POST /projects/{PROJECT}/merge_requests/{MR}/notes")
    );
    let err = stderr(&o);
    assert!(
        err.contains(
            "note 7777 by @smcgivern starts with RunnerIQ's marker but was not written by this \
             token's user (@dbalexandre): ignored"
        ),
        "{err}"
    );
    assert_eq!(
        hooks.received("slack").len(),
        1,
        "Slack was silenced by another user's state line:\n{err}"
    );
}

/// A fake note store: GET lists (newest first), POST creates, PUT edits,
/// DELETE removes. The first `race` listings wait for each other, so that
/// concurrent runs all see the MR before any of them posts.
struct NoteStore {
    notes: Arc<Mutex<Vec<Value>>>,
}

impl NoteStore {
    fn install(s: &Scenario, race: usize) -> NoteStore {
        let notes: Arc<Mutex<Vec<Value>>> = Arc::default();
        let next_id = Arc::new(Mutex::new(9001u64));
        let waiting = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
        let base = p("/projects/{P}/merge_requests/{MR}/notes");
        let n = Arc::clone(&notes);
        s.fake.on_write(
            "GET",
            &base,
            Box::new(move |_| {
                let (count, cv) = &*waiting;
                let mut c = count.lock().unwrap();
                *c += 1;
                if *c <= race {
                    cv.notify_all();
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                    while *c < race && std::time::Instant::now() < deadline {
                        c = cv
                            .wait_timeout(c, std::time::Duration::from_millis(50))
                            .unwrap()
                            .0;
                    }
                }
                drop(c);
                let mut list = n.lock().unwrap().clone();
                list.reverse();
                (200, Value::Array(list).to_string())
            }),
        );
        let n = Arc::clone(&notes);
        s.fake.on_write(
            "POST",
            &base,
            Box::new(move |r| {
                let mut id = next_id.lock().unwrap();
                let created = note(*id, r.json()["body"].as_str().unwrap_or_default());
                *id += 1;
                n.lock().unwrap().push(created.clone());
                (201, created.to_string())
            }),
        );
        let n = Arc::clone(&notes);
        s.fake.on_write(
            "PUT",
            &format!("{base}/"),
            Box::new(move |r| {
                let id: u64 = r.path.rsplit('/').next().unwrap().parse().unwrap();
                let mut all = n.lock().unwrap();
                match all.iter_mut().find(|x| x["id"] == id) {
                    Some(x) => {
                        x["body"] = r.json()["body"].clone();
                        (200, x.to_string())
                    }
                    None => (404, json!({"message": "404 Not found"}).to_string()),
                }
            }),
        );
        let n = Arc::clone(&notes);
        s.fake.on_write(
            "DELETE",
            &format!("{base}/"),
            Box::new(move |r| {
                let id: u64 = r.path.rsplit('/').next().unwrap().parse().unwrap();
                let mut all = n.lock().unwrap();
                let before = all.len();
                all.retain(|x| x["id"] != id);
                if all.len() < before {
                    (204, String::new())
                } else {
                    (404, json!({"message": "404 Not found"}).to_string())
                }
            }),
        );
        NoteStore { notes }
    }

    fn ids(&self) -> Vec<u64> {
        self.notes
            .lock()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_u64().unwrap())
            .collect()
    }
}

#[test]
fn two_runs_at_the_same_time_leave_one_note() {
    let s = Scenario::mr_pipeline();
    let store = NoteStore::install(&s, 2);
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2).map(|_| scope.spawn(|| s.run(&[], &[]))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for o in &outputs {
        assert_ok(o);
    }
    eprintln!("request log of two concurrent runs:");
    for r in s.fake.requests() {
        if r.path.contains("/notes") || r.path.ends_with("/user") {
            eprintln!("  {} {}", r.method, r.api_path());
        }
    }
    let ids = store.ids();
    eprintln!("notes left on the MR: {ids:?}");
    assert_eq!(s.count("POST"), 2, "both runs posted (the race happened)");
    assert_eq!(ids, vec![9001], "one note, the oldest, is left");
    let body = store.notes.lock().unwrap()[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.starts_with("<!-- runneriq:diagnose -->\n<!-- runneriq:pipeline=1001"));
}

/// The first `lines` lines of `log` as a runner trace, then "ab" every
/// 200 ms for ever.
fn dribble(s: &Scenario, job: u64, log: &str, lines: usize) {
    let full = runner_trace(&read_log(log), true);
    let head: Vec<u8> = full
        .split_inclusive(|b| *b == b'\n')
        .take(lines)
        .flatten()
        .copied()
        .collect();
    s.fake.route_dribble(
        &p(&format!("/projects/{{P}}/jobs/{job}/trace")),
        head,
        b"ab".to_vec(),
        Duration::from_millis(200),
    );
}

#[test]
fn a_trace_that_never_ends_is_cut_at_its_time_budget_and_named_in_the_note() {
    let s = Scenario::mr_pipeline();
    dribble(&s, 5002, "cd-spork_441.log", 40);
    let start = Instant::now();
    let o = s.run_within(
        &[],
        &[("RUNNERIQ_TRACE_TIMEOUT", "2s")],
        Duration::from_secs(60),
    );
    let took = start.elapsed();
    eprintln!("diagnose with one endless trace took {took:?}");
    assert_ok(&o);
    assert!(took < Duration::from_secs(20), "{took:?}");
    let body = s.writes()[0].1.clone();
    assert!(
        body.contains(
            "Its log could not be read completely: reading it took longer than 2 s, so only its \
             first"
        ),
        "{body}"
    );
    // The other job's log was read whole and diagnosed as usual.
    assert!(body.contains("##### [`build:cpp`]"), "{body}");
    assert!(
        stdout(&o).contains("its log could not be read completely"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_run_deadline_leaves_time_to_post_whatever_the_traces_do() {
    let s = Scenario::mr_pipeline();
    dribble(&s, 5001, "pt-compile_error.log", 20);
    dribble(&s, 5002, "cd-spork_441.log", 20);
    let start = Instant::now();
    // Per-trace budget 60 s, but the run has 10 s: the traces are cut when
    // the analysis time is up (8 s) and the note is posted in the rest.
    let o = s.run_within(
        &[],
        &[("RUNNERIQ_MAX_RUN_TIME", "10s")],
        Duration::from_secs(60),
    );
    let took = start.elapsed();
    eprintln!("diagnose with a 10 s run budget and two endless traces took {took:?}");
    assert_ok(&o);
    // Without the run deadline the traces would take their 60 s each.
    assert!(took < Duration::from_secs(30), "{took:?}");
    let body = s.writes()[0].1.clone();
    assert_eq!(
        body.matches("Its log could not be read completely").count(),
        2,
        "{body}"
    );
    assert!(
        body.contains(
            "the target branch and the jobs' history were not checked: the run's time budget \
             (--max-run-time 10s) was used up"
        ),
        "{body}"
    );
}

#[test]
fn a_jobs_page_of_empty_objects_is_one_clear_error_not_gigabytes() {
    let s = Scenario::empty();
    // 8 MiB of `{}`: 2.8 million default jobs, once 5 GB of memory and an
    // abort (exit 134) on allocation failure.
    let mut page = String::with_capacity(8 << 20);
    page.push('[');
    while page.len() < (8 << 20) - 3 {
        page.push_str("{},");
    }
    page.push_str("{}]");
    s.fake
        .route_json("GET", &p("/projects/{P}/pipelines/{PL}/jobs"), 200, page);
    let o = s.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("GET /projects/42/pipelines/1001/jobs") && err.contains("missing field `id`"),
        "{err}"
    );
    assert!(s.writes().is_empty());
}

// ---------------------------------------------------------------------------
// Unknown failures: no rule matches, the log's last lines are the evidence

/// A real build's first lines (ninja progress of `pt-compile_error.log`, no
/// error yet) followed by `tail`: the output of a tool no rule knows.
fn unknown_log(tail: &[&str]) -> Vec<u8> {
    let real = read_log("pt-compile_error.log");
    let mut out: Vec<u8> = real
        .split(|b| *b == b'\n')
        .take(20)
        .flat_map(|l| l.iter().copied().chain(std::iter::once(b'\n')))
        .collect();
    for l in tail {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

/// `trace` with gitlab-runner's after_script and artifact upload (for a
/// failed job) between the script and the clean-up, as the runner writes
/// them when `.gitlab-ci.yml` has `after_script:` and `artifacts: when:
/// always`.
fn with_after_script(trace: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(trace).into_owned();
    let cleanup = text
        .find("section_start:1767225700:cleanup_file_variables")
        .unwrap();
    let teardown = [
        "section_start:1767225700:after_script\r\x1b[0K\x1b[0K\x1b[36;1mRunning after_script\x1b[0;m",
        "\x1b[32;1mRunning after script...\x1b[0;m",
        "\x1b[32;1m$ ./ci/collect-logs.sh\x1b[0;m",
        "collect-logs: copied 14 files to artifacts/logs",
        "section_end:1767225701:after_script\r\x1b[0K",
        "section_start:1767225701:upload_artifacts_on_failure\r\x1b[0K\x1b[0K\x1b[36;1mUploading artifacts for failed job\x1b[0;m",
        "\x1b[32;1mUploading artifacts...\x1b[0;m",
        "artifacts/logs: found 15 matching artifact files and directories\x1b[0;m ",
        "Uploading artifacts as \"archive\" to coordinator... 201 Created\x1b[0;m  id=5201 responseStatus=201 Created",
        "section_end:1767225702:upload_artifacts_on_failure\r\x1b[0K",
    ];
    let mut out = text[..cleanup].to_string();
    for l in teardown {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&text[cleanup..]);
    out.into_bytes()
}

/// The 1-based line of `trace` that contains `text` (the last such line).
fn line_of(trace: &[u8], text: &str) -> usize {
    String::from_utf8_lossy(trace)
        .split('\n')
        .enumerate()
        .filter(|(_, l)| l.contains(text))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or_else(|| panic!("{text:?} is not in the trace"))
}

/// The failing output of a release tool no rule knows, ending with its last
/// word just above the runner's `ERROR: Job failed`.
const RELEASE_TAIL: &[&str] = &[
    "$ ./ci/custom-tool --plan release.plan",
    "custom-tool: loaded 7 steps from release.plan",
    "custom-tool: step 5 ok (12 files)",
    "custom-tool: step 6 ok (3 files)",
    "custom-tool: step 7 waiting for the lock on dist/",
    "custom-tool: step 7 gave up (code 3)",
];

impl Scenario {
    /// An MR pipeline whose failed jobs (`id`, name, trace) no rule
    /// recognises, and the diagnose job itself.
    fn unknown_pipeline(failed: &[(u64, &str, Vec<u8>)]) -> Scenario {
        let s = Scenario::empty();
        let mut jobs = vec![job(
            SELF_JOB,
            "runneriq:diagnose",
            ".post",
            "running",
            PIPELINE,
            PROJECT,
        )];
        for (id, name, trace) in failed {
            jobs.push(job(*id, name, "deploy", "failed", PIPELINE, PROJECT));
            s.fake.route_text(
                &p(&format!("/projects/{{P}}/jobs/{id}/trace")),
                trace.clone(),
            );
        }
        s.fake
            .route_list(&p("/projects/{P}/pipelines/{PL}/jobs"), Value::Array(jobs));
        s.fake
            .route_list(&p("/projects/{P}/pipelines/{PL}/bridges"), json!([]));
        s.fake.route_list(
            &p("/projects/{P}/merge_requests/{MR}/diffs"),
            diffs(&["ci/release.plan"]),
        );
        s
    }

    /// `main`'s latest finished pipeline failed, with these failed jobs.
    fn main_failed_with(&self, failed: &[(u64, &str, Vec<u8>)]) {
        let mut main = read_json("gitlab/api/pipeline.kitware.json");
        main["id"] = MAIN_PIPELINE.into();
        main["status"] = "failed".into();
        main["ref"] = "main".into();
        main["web_url"] = format!("{WEB}/-/pipelines/{MAIN_PIPELINE}").into();
        self.fake
            .route_list(&p("/projects/{P}/pipelines"), json!([main]));
        let mut jobs = Vec::new();
        for (id, name, trace) in failed {
            jobs.push(on_main(*id, name, "deploy", "failed", MAIN_PIPELINE));
            self.fake.route_text(
                &p(&format!("/projects/{{P}}/jobs/{id}/trace")),
                trace.clone(),
            );
        }
        self.fake.route_list(
            &p(&format!("/projects/{{P}}/pipelines/{MAIN_PIPELINE}/jobs")),
            Value::Array(jobs),
        );
    }
}

/// The JSON report of the failed job `name` (an entry or not, see `same_failure`).
fn failed_entry(v: &Value, name: &str) -> Option<Value> {
    v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .cloned()
}

#[test]
fn an_unknown_failure_shows_the_last_lines_above_the_runner_error_in_order() {
    let trace = runner_trace(&unknown_log(RELEASE_TAIL), true);
    let last = line_of(&trace, "custom-tool: step 7 gave up (code 3)");
    assert_eq!(
        line_of(&trace, "ERROR: Job failed"),
        last + 5,
        "fixture shape"
    );
    let s = Scenario::unknown_pipeline(&[(5201, "release:tool", trace)]);
    let o = s.run(&["--dry-run"], &[]);
    assert_ok(&o);
    let md = stdout(&o);
    // The excerpt: the three lines just above the runner's failure line (its
    // section end and clean-up are runner noise), in the log's order.
    let want = format!(
        "> {} | custom-tool: step 6 ok (3 files)\n> {} | custom-tool: step 7 waiting for the lock on dist/\n> {} | custom-tool: step 7 gave up (code 3)\n```",
        last - 2,
        last - 1,
        last
    );
    assert!(md.contains(&want), "want:\n{want}\nin:\n{md}");
    assert!(md.contains("Unknown failure"), "{md}");
    // Nothing older than those three lines is shown.
    assert!(!md.contains("custom-tool: step 5 ok"), "{md}");
    // The job log's summary quotes the last line, the failing tool's last word.
    let summary = stderr(&o);
    assert!(
        summary.contains(&format!("> {last} | custom-tool: step 7 gave up (code 3)")),
        "{summary}"
    );
}

#[test]
fn an_unknown_failure_that_fails_the_same_way_on_main_is_already_failing_upstream() {
    // The same job fails the same way on main: another runner (no timestamp
    // prefix there), other numbers in the lines that vary between runs.
    let here = runner_trace(&unknown_log(RELEASE_TAIL), false);
    let there_tail: Vec<String> = RELEASE_TAIL
        .iter()
        .map(|l| l.replace("(12 files)", "(14 files)"))
        .collect();
    let there_tail: Vec<&str> = there_tail.iter().map(String::as_str).collect();
    let there = runner_trace(&unknown_log(&there_tail), true);
    let s = Scenario::unknown_pipeline(&[(5201, "release:tool", here)]);
    s.main_failed_with(&[(4201, "release:tool", there)]);
    let o = s.run(&["--format", "json", "--dry-run"], &[]);
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let job = failed_entry(&v, "release:tool").unwrap();
    assert_eq!(job["category"], "unknown", "{job}");
    assert!(
        s.log()
            .iter()
            .any(|l| l.ends_with("/projects/42/jobs/4201/trace")),
        "main's trace was read: {:?}",
        s.log()
    );
    assert_eq!(job["noise"], "upstream", "{job}");
    assert_eq!(v["counts"]["upstream"], 1, "{}", v["counts"]);
    assert_eq!(v["counts"]["new"], 0, "{}", v["counts"]);
}

#[test]
fn two_different_unknown_failures_are_not_grouped_by_their_common_lines() {
    // Two deploy jobs run the same wrapper and the same after_script, and
    // upload the same logs; what failed differs in the last lines of each
    // script.
    let wrapper = |name: &str, last: &[&str]| -> Vec<u8> {
        let mut tail = vec![
            format!("$ ./ci/deploy.sh {name}"),
            "deploy: using profile production-eu".to_string(),
            "deploy: connected to the deploy agent".to_string(),
        ];
        tail.extend(last.iter().map(|l| l.to_string()));
        let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
        with_after_script(&runner_trace(&unknown_log(&tail), true))
    };
    let cdn = wrapper(
        "cdn",
        &[
            "cdn-sync: 3 objects differ from the manifest",
            "cdn-sync: refusing to purge a partial upload",
        ],
    );
    let db = wrapper(
        "db",
        &[
            "schema-check: column orders.total has type numeric(10,2), plan says bigint",
            "schema-check: plan and database disagree, nothing applied",
        ],
    );
    let cdn_last = line_of(&cdn, "cdn-sync: refusing to purge a partial upload");
    let db_last = line_of(&db, "schema-check: plan and database disagree");
    let s = Scenario::unknown_pipeline(&[(5201, "deploy:cdn", cdn), (5202, "deploy:db", db)]);
    let o = s.run(&["--format", "json", "--dry-run"], &[]);
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let entries: Vec<(&str, &Value, &Value)> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap(),
                &j["same_failure"],
                &j["evidence_block"],
            )
        })
        .collect();
    assert_eq!(entries.len(), 2, "one entry per failure: {entries:#?}");
    let cdn = failed_entry(&v, "deploy:cdn").unwrap();
    let db = failed_entry(&v, "deploy:db").unwrap();
    assert_eq!(cdn["category"], "unknown");
    assert_eq!(db["category"], "unknown");
    assert_ne!(cdn["fingerprint"], db["fingerprint"]);
    assert_eq!(cdn["jobs_in_group"], 1, "{cdn}");
    assert_eq!(db["jobs_in_group"], 1, "{db}");
    assert_eq!(v["counts"]["new"], 2, "{}", v["counts"]);
    // Each excerpt ends with its own script's last line, not with the
    // after_script and artifact upload the two jobs share.
    for (j, last, text) in [
        (
            &cdn,
            cdn_last,
            "cdn-sync: refusing to purge a partial upload",
        ),
        (
            &db,
            db_last,
            "schema-check: plan and database disagree, nothing applied",
        ),
    ] {
        let block = j["evidence_block"].as_str().unwrap();
        assert!(
            block.contains(&format!("> {last} | {text}\n```")),
            "{block}"
        );
        assert!(!block.contains("collect-logs"), "{block}");
        assert!(!block.contains("matching artifact files"), "{block}");
    }
}

#[test]
fn a_redirect_to_another_origin_is_an_error_not_an_empty_pipeline() {
    let s = Scenario::mr_pipeline();
    // Somebody between the job and GitLab sends the jobs listing elsewhere,
    // where the pipeline has no failed job.
    let elsewhere = FakeGitLab::start();
    elsewhere.route_list(&p("/projects/{P}/pipelines/{PL}/jobs"), json!([]));
    s.fake.route_raw(
        "GET",
        &p("/projects/{P}/pipelines/{PL}/jobs"),
        302,
        vec![(
            "Location".into(),
            format!(
                "{}{}",
                elsewhere.base_url(),
                p("/projects/{P}/pipelines/{PL}/jobs")
            ),
        )],
        Vec::new(),
    );
    let o = s.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("redirected to another origin") && err.contains("the redirect was refused"),
        "{err}"
    );
    assert!(elsewhere.requests().is_empty());
    assert!(s.writes().is_empty(), "{:?}", s.writes());
}

// ---------------------------------------------------------------------------
// Unit test reports (`artifacts: reports: junit:`): failing tests by name.
//
// Test reports are built from go-gitlab's fixtures (GitLab's
// `TestSuiteEntity`/`TestCaseEntity` shapes, see tests/fixtures/gitlab/
// MANIFEST.md): the first failing case and the first suite are copied and
// their fields changed, like the job objects above.

/// A test case in the shape of GitLab's `TestCaseEntity`.
fn test_case(
    status: &str,
    class: &str,
    name: &str,
    file: Option<&str>,
    output: Option<&str>,
    trace: Option<&str>,
) -> Value {
    let mut c =
        read_json("gitlab/api/pipeline_test_report.go_gitlab.json")["test_suites"][0]["test_cases"]
            [0]
        .clone();
    c["status"] = status.into();
    c["classname"] = class.into();
    c["name"] = name.into();
    c["file"] = file.map_or(Value::Null, Value::from);
    c["system_output"] = output.map_or(Value::Null, Value::from);
    c["stack_trace"] = trace.map_or(Value::Null, Value::from);
    c["attachment_url"] = Value::Null;
    c["recent_failures"] = Value::Null;
    c
}

/// A suite in the shape of GitLab's `TestSuiteEntity`: `failing` cases and
/// `passing` successful ones.
fn test_suite(name: &str, failing: Vec<Value>, passing: usize) -> Value {
    let fixture = read_json("gitlab/api/pipeline_test_report.go_gitlab.json");
    let mut s = fixture["test_suites"][0].clone();
    let ok = fixture["test_suites"][1]["test_cases"][0].clone();
    let failed = failing.iter().filter(|c| c["status"] == "failed").count();
    let errors = failing.iter().filter(|c| c["status"] == "error").count();
    let mut cases = failing;
    for i in 0..passing {
        let mut c = ok.clone();
        c["name"] = format!("test_ok_{i}").into();
        cases.push(c);
    }
    s["name"] = name.into();
    s["total_count"] = cases.len().into();
    s["success_count"] = passing.into();
    s["failed_count"] = failed.into();
    s["error_count"] = errors.into();
    s["skipped_count"] = 0.into();
    s["test_cases"] = Value::Array(cases);
    s
}

/// A whole report: the suites with their totals added up.
fn test_report(suites: Vec<Value>) -> Value {
    let sum = |k: &str| suites.iter().map(|s| s[k].as_u64().unwrap()).sum::<u64>();
    json!({
        "total_time": 12.5,
        "total_count": sum("total_count"),
        "success_count": sum("success_count"),
        "failed_count": sum("failed_count"),
        "skipped_count": sum("skipped_count"),
        "error_count": sum("error_count"),
        "test_suites": suites,
    })
}

/// The report's summary (GitLab's `TestReportSummaryEntity`), each suite with
/// the jobs it came from.
fn test_summary(report: &Value, build_ids: &[(&str, u64)]) -> Value {
    let mut s = read_json("gitlab/api/pipeline_test_report_summary.go_gitlab.json");
    let template = s["test_suites"][0].clone();
    s["total"]["count"] = report["total_count"].clone();
    s["total"]["success"] = report["success_count"].clone();
    s["total"]["failed"] = report["failed_count"].clone();
    s["total"]["error"] = report["error_count"].clone();
    s["total"]["skipped"] = 0.into();
    s["total"]["suite_error"] = Value::Null;
    s["test_suites"] = report["test_suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|suite| {
            let mut t = template.clone();
            for k in [
                "name",
                "total_time",
                "total_count",
                "success_count",
                "failed_count",
                "skipped_count",
                "error_count",
            ] {
                t[k] = suite[k].clone();
            }
            t["suite_error"] = Value::Null;
            t["build_ids"] = build_ids
                .iter()
                .filter(|(n, _)| suite["name"] == *n)
                .map(|(_, id)| *id)
                .collect();
            t
        })
        .collect();
    s
}

const DST: &str = "ValueError: 2026-03-29T02:30:00 does not exist in Europe/Paris";
const EVICTION: &str = "AssertionError: expected 3 entries in the cache, found 4";
const BACKOFF: &str = "AssertionError: retried 2 times, expected 3";
const DB_DOWN: &str = "requests.exceptions.ConnectionError: HTTPConnectionPool(host='db', port=5432): Max retries exceeded with url: /orders";

fn unit_case(name: &str, file: &str, output: &str, trace: Option<&str>) -> Value {
    let class = file.trim_end_matches(".py").replace('/', ".");
    let status = if output.starts_with("ValueError") {
        "error"
    } else {
        "failed"
    };
    test_case(status, &class, name, Some(file), Some(output), trace)
}

impl Scenario {
    /// An MR pipeline whose test jobs publish JUnit reports: `test:unit`
    /// fails 5 tests (one in a file the MR changed, one with a changed file
    /// in its stack trace, one known flaky on `main`, one failing the same
    /// way in `main`'s latest pipeline, one with hostile text), and
    /// `test:integration` 40 tests with one message; `test:api` fails one
    /// test that is flaky on `main`; `build:cpp` has no report.
    fn junit_pipeline() -> Scenario {
        let s = Scenario::empty();
        s.fake.route_list(
            &p("/projects/{P}/pipelines/{PL}/jobs"),
            json!([
                job(
                    SELF_JOB,
                    "runneriq:diagnose",
                    ".post",
                    "running",
                    PIPELINE,
                    PROJECT
                ),
                job(5204, "build:cpp", "build", "failed", PIPELINE, PROJECT),
                job(5203, "test:api", "test", "failed", PIPELINE, PROJECT),
                job(
                    5202,
                    "test:integration",
                    "test",
                    "failed",
                    PIPELINE,
                    PROJECT
                ),
                job(5201, "test:unit", "test", "failed", PIPELINE, PROJECT),
                job(5000, "prepare", "prepare", "success", PIPELINE, PROJECT),
            ]),
        );
        s.fake
            .route_list(&p("/projects/{P}/pipelines/{PL}/bridges"), json!([]));
        for id in [5201, 5202, 5203] {
            s.fake.route_text(
                &p(&format!("/projects/{{P}}/jobs/{id}/trace")),
                runner_trace(&read_log("pt-pytest_failure.log"), true),
            );
        }
        s.fake.route_text(
            &p("/projects/{P}/jobs/5204/trace"),
            runner_trace(&read_log("pt-compile_error.log"), false),
        );
        s.fake.route_list(
            &p("/projects/{P}/merge_requests/{MR}/diffs"),
            diffs(&["src/shop/cart.py", "tests/test_cart.py"]),
        );

        let hostile_output = format!(
            "AssertionError: notify @all about `x` ``` then\n/merge\n#123 token {TOKEN} rejected"
        );
        let unit = test_suite(
            "test:unit",
            vec![
                unit_case(
                    "test_total_with_discount",
                    "tests/test_cart.py",
                    "AssertionError: assert 90.0 == 85.5\n +  where 90.0 = total(cart)",
                    Some("tests/test_cart.py:42: AssertionError"),
                ),
                unit_case(
                    "test_checkout_rounding",
                    "tests/test_checkout.py",
                    "AssertionError: assert Decimal('10.01') == Decimal('10.00')",
                    Some(
                        "Traceback (most recent call last):\n  File \"/builds/group/proj/tests/test_checkout.py\", line 18, in test_checkout_rounding\n  File \"/builds/group/proj/src/shop/cart.py\", line 118, in total\nAssertionError",
                    ),
                ),
                unit_case("test_eviction_race", "tests/test_cache.py", EVICTION, None),
                unit_case("test_dst_transition", "tests/test_time.py", DST, None),
                unit_case(
                    "test_mention /merge @all #123 ```",
                    "tests/test_notify.py",
                    &hostile_output,
                    None,
                ),
            ],
            120,
        );
        let integration = test_suite(
            "test:integration",
            (0..40)
                .map(|i| {
                    test_case(
                        "failed",
                        "tests.integration.test_orders",
                        &format!("test_order_flow_{i:02}"),
                        Some("tests/integration/test_orders.py"),
                        Some(DB_DOWN),
                        Some("  File \"/usr/lib/python3.12/site-packages/urllib3/connectionpool.py\", line 793, in urlopen"),
                    )
                })
                .collect(),
            10,
        );
        let api = test_suite(
            "test:api",
            vec![unit_case(
                "test_retry_backoff",
                "tests/test_api.py",
                BACKOFF,
                None,
            )],
            30,
        );
        let report = test_report(vec![unit, integration, api]);
        let summary = test_summary(
            &report,
            &[
                ("test:unit", 5201),
                ("test:integration", 5202),
                ("test:api", 5203),
            ],
        );
        s.fake.route_json(
            "GET",
            &p("/projects/{P}/pipelines/{PL}/test_report_summary"),
            200,
            summary.to_string(),
        );
        s.fake.route_json(
            "GET",
            &p("/projects/{P}/pipelines/{PL}/test_report"),
            200,
            report.to_string(),
        );

        // main's latest finished pipeline failed: test_dst_transition fails
        // there with the same message; test_eviction_race passed.
        let mut main = read_json("gitlab/api/pipeline.kitware.json");
        main["id"] = MAIN_PIPELINE.into();
        main["status"] = "failed".into();
        main["ref"] = "main".into();
        main["web_url"] = format!("{WEB}/-/pipelines/{MAIN_PIPELINE}").into();
        s.fake
            .route_list(&p("/projects/{P}/pipelines"), json!([main]));
        s.fake.route_list(
            &p(&format!("/projects/{{P}}/pipelines/{MAIN_PIPELINE}/jobs")),
            json!([on_main(4100, "test:unit", "test", "failed", MAIN_PIPELINE)]),
        );
        // main's recent runs, newest first: test:unit failed in 900, 898 and
        // 895; test:api in 898 and 893; build:cpp always passed.
        let unit_runs = [
            "failed", "success", "failed", "success", "success", "failed", "success", "success",
        ];
        let api_runs = [
            "success", "success", "failed", "success", "success", "success", "success", "failed",
        ];
        let mut history = Vec::new();
        for k in 0..8u64 {
            let pl = MAIN_PIPELINE - k;
            history.push(on_main(
                4100 - k,
                "test:unit",
                "test",
                unit_runs[k as usize],
                pl,
            ));
            history.push(on_main(
                4200 - k,
                "test:api",
                "test",
                api_runs[k as usize],
                pl,
            ));
            history.push(on_main(4300 - k, "build:cpp", "build", "success", pl));
        }
        // A failed attempt of test:unit in 899, retried there and passed: one
        // run that passed, and no report to read.
        history.push(on_main(4050, "test:unit", "test", "failed", 899));
        s.fake
            .route_list(&p("/projects/{P}/jobs"), Value::Array(history));
        let main_reports: [(u64, Vec<Value>); 4] = [
            (
                900,
                vec![test_suite(
                    "test:unit",
                    vec![unit_case(
                        "test_dst_transition",
                        "tests/test_time.py",
                        DST,
                        None,
                    )],
                    123,
                )],
            ),
            (
                898,
                vec![
                    test_suite(
                        "test:unit",
                        vec![unit_case(
                            "test_eviction_race",
                            "tests/test_cache.py",
                            EVICTION,
                            None,
                        )],
                        123,
                    ),
                    test_suite(
                        "test:api",
                        vec![unit_case(
                            "test_retry_backoff",
                            "tests/test_api.py",
                            BACKOFF,
                            None,
                        )],
                        30,
                    ),
                ],
            ),
            (
                895,
                vec![test_suite(
                    "test:unit",
                    vec![unit_case(
                        "test_eviction_race",
                        "tests/test_cache.py",
                        EVICTION,
                        None,
                    )],
                    123,
                )],
            ),
            (
                893,
                vec![test_suite(
                    "test:api",
                    vec![unit_case(
                        "test_retry_backoff",
                        "tests/test_api.py",
                        BACKOFF,
                        None,
                    )],
                    30,
                )],
            ),
        ];
        for (pl, suites) in main_reports {
            s.fake.route_json(
                "GET",
                &p(&format!("/projects/{{P}}/pipelines/{pl}/test_report")),
                200,
                test_report(suites).to_string(),
            );
        }
        s
    }
}

#[test]
fn failing_tests_are_named_with_their_file_flakiness_and_upstream_state() {
    let s = Scenario::junit_pipeline();
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let body = &writes[0].1;
    assert_snapshot("diagnose_junit_note.md", body);

    // 4 failed jobs, each counted once; test:api's only failing test is
    // known flaky, so the job is.
    assert_eq!(assert_counts_add_up(body), 4);
    assert!(bare_issue_references(body).is_empty(), "{body}");
    assert_eq!(
        body.lines().nth(2).unwrap(),
        "### 🔴 3 new failures · 1 flaky"
    );
    // The tests, by name, with the pipeline's Tests tab.
    assert!(body.contains(
        "**Failing tests:** 5 of 125 in suite `test:unit` · [Tests tab](https://gitlab.example.com/group/proj/-/pipelines/1001/test_report)"
    ), "{body}");
    assert!(body.contains("- `tests.test_cart › test_total_with_discount` in `tests/test_cart.py`: `AssertionError: assert 90.0 == 85.5` · points at `tests/test_cart.py`, which you changed\n"), "{body}");
    // A changed file in the stack trace.
    assert!(body.contains("`tests.test_checkout › test_checkout_rounding` in `tests/test_checkout.py`: `AssertionError: assert Decimal('10.01') == Decimal('10.00')` · points at `src/shop/cart.py`, which you changed"), "{body}");
    assert!(body.contains("`tests.test_cache › test_eviction_race` in `tests/test_cache.py`: `AssertionError: expected 3 entries in the cache, found 4` · known flaky: failed 2 of its last 8 runs on `main`"), "{body}");
    assert!(body.contains("`tests.test_time › test_dst_transition` in `tests/test_time.py`: `ValueError: 2026-03-29T02:30:00 does not exist in Europe/Paris` · already failing upstream on `main`"), "{body}");
    // 40 tests with one message: one line, three names, "and 37 more".
    assert!(body.contains("- **40 tests** fail with `requests.exceptions.ConnectionError: HTTPConnectionPool(host='db', port=5432): Max retries exceeded with url: /orders`: `tests.integration.test_orders › test_order_flow_00`, `tests.integration.test_orders › test_order_flow_01`, `tests.integration.test_orders › test_order_flow_02` and 37 more\n"), "{body}");
    let visible = body.rsplit_once("\n<!-- runneriq:state").unwrap().0;
    assert_eq!(visible.matches("test_order_flow_").count(), 3);
    // The flaky job, by its test.
    assert!(body.contains("#### Flaky (1)"), "{body}");
    assert!(body.contains("`tests.test_api › test_retry_backoff` in `tests/test_api.py`: `AssertionError: retried 2 times, expected 3` · known flaky: failed 2 of its last 8 runs on `main`"), "{body}");
    // The verdict names the changed file the tests point at.
    assert!(body.contains("(your change)"), "{body}");
    // The log stays, collapsed, for jobs with tests; the job without a
    // report keeps its open excerpt.
    assert_eq!(
        body.matches("<summary>Log excerpt</summary>").count(),
        3,
        "{body}"
    );

    // Hostile test text: no mention, no quick action, no escape from code,
    // and the token that was in a test's output is redacted.
    let (outside, _) = split_fences(body);
    for line in &outside {
        assert!(
            !line.trim_start().starts_with('/'),
            "quick action: {line:?}"
        );
        assert!(!line.contains("@all"), "mention: {line:?}");
    }
    assert!(!body.contains(TOKEN));

    // The requests: the summary first, then the report; main's latest
    // pipeline's report once (upstream and history share it), then the
    // reports of the two other pipelines where a test job failed; no log of
    // main's test jobs.
    let log = s.log();
    eprintln!("request log:");
    for l in &log {
        eprintln!("  {l}");
    }
    let mut ordered = log.clone();
    ordered[5..9].sort(); // traces are read concurrently
    assert_eq!(
        ordered,
        vec![
            "GET /projects/42/pipelines/1001/jobs",
            "GET /projects/42/pipelines/1001/bridges",
            "GET /projects/42/merge_requests/7/diffs",
            "GET /projects/42/pipelines/1001/test_report_summary",
            "GET /projects/42/pipelines/1001/test_report",
            "GET /projects/42/jobs/5201/trace",
            "GET /projects/42/jobs/5202/trace",
            "GET /projects/42/jobs/5203/trace",
            "GET /projects/42/jobs/5204/trace",
            "GET /projects/42/pipelines",
            "GET /projects/42/pipelines/900/test_report",
            "GET /projects/42/pipelines/900/jobs",
            "GET /projects/42/jobs",
            "GET /projects/42/pipelines/898/test_report",
            "GET /projects/42/pipelines/895/test_report",
            "GET /projects/42/pipelines/893/test_report",
            "GET /user",
            "GET /projects/42/merge_requests/7/notes",
            "POST /projects/42/merge_requests/7/notes",
            "GET /projects/42/merge_requests/7/notes",
        ]
    );
    assert_eq!(log.len(), 20);

    // The job log's summary names the tests too.
    let out = stdout(&o);
    assert!(
        out.contains("    test tests.test_cart › test_total_with_discount: AssertionError: assert 90.0 == 85.5\n"),
        "{out}"
    );
}

#[test]
fn the_json_output_carries_the_failing_tests_and_their_marks() {
    let s = Scenario::junit_pipeline();
    let o = s.run(&["--format", "json", "--dry-run"], &[]);
    assert_ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let unit = failed_entry(&v, "test:unit").unwrap();
    assert_eq!(unit["tests"]["failing"], 5);
    assert_eq!(unit["tests"]["total"], 125);
    assert_eq!(unit["tests"]["changed"], 2);
    assert_eq!(unit["tests"]["upstream"], 1);
    assert_eq!(unit["tests"]["flaky"], 1);
    assert_eq!(unit["noise"], "new");
    let api = failed_entry(&v, "test:api").unwrap();
    assert_eq!(api["noise"], "flaky");
    let t = &api["tests"]["groups"][0]["tests"][0];
    assert_eq!(t["history"]["runs"], 8);
    assert_eq!(t["history"]["failures"], 2);
    assert_eq!(t["flaky"], true);
    // The history lookup's cost: main's pipelines and jobs, 4 test reports.
    assert_eq!(v["history_requests"], 7);
    // No report for build:cpp.
    assert!(failed_entry(&v, "build:cpp").unwrap()["tests"].is_null());
}

#[test]
fn a_pipeline_without_test_reports_costs_one_request_and_changes_nothing() {
    // The fake answers 404 for the summary (no report): one request, no
    // full report, and the note is the one of today (the snapshot of
    // mr_pipeline_gets_one_note_then_the_same_note_is_edited).
    let s = Scenario::mr_pipeline();
    let o = s.run(&[], &[]);
    assert_ok(&o);
    assert_snapshot("diagnose_mr_note.md", &s.writes()[0].1);
    let summary = p("/projects/{P}/pipelines/{PL}/test_report_summary");
    assert_eq!(s.fake.requests_to("GET", &summary).len(), 1);
    assert!(!s.log().iter().any(|l| l.ends_with("/test_report")));

    // An empty report (GitLab answers zeros when no job published one): one
    // request too, same note.
    let s = Scenario::mr_pipeline();
    let empty = test_report(Vec::new());
    s.fake
        .route_json("GET", &summary, 200, test_summary(&empty, &[]).to_string());
    let o = s.run(&[], &[]);
    assert_ok(&o);
    assert_snapshot("diagnose_mr_note.md", &s.writes()[0].1);
    assert_eq!(s.fake.requests_to("GET", &summary).len(), 1);
    assert!(!s.log().iter().any(|l| l.ends_with("/test_report")));
}

#[test]
fn a_test_report_that_lies_falls_back_to_the_logs_naming_the_endpoint() {
    let s = Scenario::mr_pipeline();
    let report = test_report(vec![test_suite(
        "build:cpp",
        vec![test_case("failed", "C", "t", None, Some("boom"), None)],
        1,
    )]);
    s.fake.route_json(
        "GET",
        &p("/projects/{P}/pipelines/{PL}/test_report_summary"),
        200,
        test_summary(&report, &[("build:cpp", 5001)]).to_string(),
    );
    // The full report is not one.
    s.fake.route_json(
        "GET",
        &p("/projects/{P}/pipelines/{PL}/test_report"),
        200,
        r#"{"test_suites": "none today"}"#,
    );
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let writes = s.writes();
    assert_eq!(writes.len(), 1, "one note, whatever the report did");
    let body = &writes[0].1;
    assert!(
        body.contains("the unit test report of pipeline [#1001]")
            || body.contains("the unit test report of pipeline"),
        "{body}"
    );
    assert!(body.contains("/test_report"), "{body}");
    assert!(body.contains("diagnosed from their logs"), "{body}");
    // The job is diagnosed from its log as before.
    assert!(!body.contains("**Failing tests:**"), "{body}");
    assert!(body.contains("kineto_metadata.cpp"), "{body}");
    assert_eq!(assert_counts_add_up(body), 4);
    assert!(bare_issue_references(body).is_empty(), "{body}");
}

#[test]
fn a_ten_megabyte_stack_trace_is_cut_and_the_note_stays_small() {
    let s = Scenario::mr_pipeline();
    let huge = format!(
        "AssertionError: {}\n{}",
        "x".repeat(5_000_000),
        "  at frame (src/a.js:1:1)\n".repeat(200_000)
    );
    let report = test_report(vec![test_suite(
        "build:cpp",
        vec![test_case(
            "failed",
            "Huge",
            "test_huge",
            Some("src/a.js"),
            Some(&huge),
            Some(&huge),
        )],
        1,
    )]);
    s.fake.route_json(
        "GET",
        &p("/projects/{P}/pipelines/{PL}/test_report_summary"),
        200,
        test_summary(&report, &[("build:cpp", 5001)]).to_string(),
    );
    s.fake.route_json(
        "GET",
        &p("/projects/{P}/pipelines/{PL}/test_report"),
        200,
        report.to_string(),
    );
    let o = s.run(&[], &[]);
    assert_ok(&o);
    let body = &s.writes()[0].1;
    assert!(
        body.contains("`Huge › test_huge` in `src/a.js`: `AssertionError: xxxx"),
        "{}",
        &body[..2000.min(body.len())]
    );
    assert!(body.chars().count() < 30_000, "{}", body.chars().count());
    let line = body.lines().find(|l| l.contains("test_huge")).unwrap();
    assert!(line.chars().count() < 500, "{line}");
    assert!(line.contains('…'));
}
