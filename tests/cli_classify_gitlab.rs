//! `runneriq classify --job ID`: the real binary reads a job and its trace
//! from a fake GitLab.

mod common;

use common::fake_gitlab::{FakeGitLab, Fault};
use std::process::{Command, Output};

const TOKEN: &str = "glpat-classify-secret-0001";

fn job_json(id: u64, failure_reason: &str) -> String {
    // The real shape of a failed job (docs-derived fixture), with our id.
    let raw = std::fs::read_to_string(common::fixture("gitlab/api/job.failed_script_failure.json"))
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    v["id"] = id.into();
    v["failure_reason"] = failure_reason.into();
    v.to_string()
}

fn run(gl: &FakeGitLab, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CI_API_V4_URL", gl.base_url())
        .env("RUNNERIQ_TOKEN", TOKEN)
        .output()
        .unwrap()
}

#[test]
fn classifies_a_job_trace_from_gitlab() {
    let gl = FakeGitLab::start();
    gl.require_token("PRIVATE-TOKEN", TOKEN);
    gl.route_json(
        "GET",
        "/projects/42/jobs/7001",
        200,
        job_json(7001, "script_failure"),
    );
    gl.route_text(
        "/projects/42/jobs/7001/trace",
        std::fs::read(common::fixture("logs/pt-compile_error.log")).unwrap(),
    );
    gl.fail_next("/projects/42/jobs/7001/trace", vec![Fault::Status(502)]);
    let o = run(
        &gl,
        &[
            "classify",
            "--format",
            "json",
            "--project",
            "42",
            "--job",
            "7001",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["file"], "job:7001");
    assert_eq!(v["category"], "compilation");
    assert_eq!(v["failure_reason"], "script_failure");
    assert_eq!(v["evidence"][0]["line"], 31);
    let log: Vec<String> = gl
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.api_path()))
        .collect();
    assert_eq!(
        log,
        vec![
            "GET /projects/42/jobs/7001",
            "GET /projects/42/jobs/7001/trace",
            "GET /projects/42/jobs/7001/trace",
        ],
        "the 502 is retried once"
    );
}

#[test]
fn runner_system_failure_is_decided_by_gitlab() {
    let gl = FakeGitLab::start();
    gl.route_json(
        "GET",
        "/projects/group%2Fapp/jobs/9",
        200,
        job_json(9, "runner_system_failure"),
    );
    gl.route_text(
        "/projects/group%2Fapp/jobs/9/trace",
        std::fs::read(common::fixture(
            "gitlab/traces/failed_sections_only_exit_status_1.log",
        ))
        .unwrap(),
    );
    let o = run(
        &gl,
        &[
            "classify",
            "--format",
            "json",
            "--project",
            "group/app",
            "--job",
            "9",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["category"], "runner_system");
    assert_eq!(v["decided_by"], "failure_reason");
}

#[test]
fn rejected_token_is_one_clear_line_without_the_token() {
    let gl = FakeGitLab::start();
    gl.require_token("PRIVATE-TOKEN", "glpat-the-right-one");
    let o = run(&gl, &["classify", "--project", "42", "--job", "1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("GET /projects/42/jobs/1"), "{err}");
    assert!(!err.contains(TOKEN) && !String::from_utf8_lossy(&o.stdout).contains(TOKEN));
}

#[test]
fn job_without_project_or_url_is_a_usage_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(["classify", "--job", "1"])
        .env_remove("CI_PROJECT_ID")
        .env_remove("CI_API_V4_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--project"));
}
