//! `runneriq doctor` against the fake GitLab.

mod common;

use common::fake_gitlab::FakeGitLab;
use std::process::{Command, Output};

const TOKEN: &str = "glpat-doctor-secret-0042";

fn doctor(gl: &FakeGitLab, token: Option<(&str, &str)>, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runneriq"));
    cmd.arg("doctor")
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CI_API_V4_URL", gl.base_url());
    if let Some((k, v)) = token {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn project_json(level: u32) -> String {
    format!(
        r#"{{"id":42,"path_with_namespace":"group/app","permissions":{{"project_access":{{"access_level":{level},"notification_level":3}},"group_access":null}}}}"#
    )
}

#[test]
fn healthy_setup_passes_and_names_the_role() {
    let gl = FakeGitLab::start();
    gl.require_token("PRIVATE-TOKEN", TOKEN);
    gl.route_json(
        "GET",
        "/personal_access_tokens/self",
        200,
        r#"{"id":1,"name":"runneriq","scopes":["api"],"expires_at":"2027-01-01","active":true}"#,
    );
    gl.route_json(
        "GET",
        "/user",
        200,
        r#"{"id":7,"username":"project_42_bot"}"#,
    );
    gl.route_json("GET", "/projects/42", 200, project_json(20));
    let o = doctor(&gl, Some(("RUNNERIQ_TOKEN", TOKEN)), &["--project", "42"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("acting as @project_42_bot"), "{out}");
    assert!(
        out.contains("can post merge request notes (`api` scope, Reporter)"),
        "{out}"
    );
    assert!(out.contains("All checks passed."), "{out}");
    assert!(!out.contains(TOKEN));
    // Read-only: nothing but GETs.
    assert!(gl.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn read_api_only_token_warns_that_it_cannot_post() {
    let gl = FakeGitLab::start();
    gl.route_json(
        "GET",
        "/personal_access_tokens/self",
        200,
        r#"{"id":1,"name":"ro","scopes":["read_api"],"expires_at":null}"#,
    );
    gl.route_json("GET", "/user", 200, r#"{"id":7,"username":"bot"}"#);
    gl.route_json("GET", "/projects/42", 200, project_json(30));
    let o = doctor(&gl, Some(("RUNNERIQ_TOKEN", TOKEN)), &["--project", "42"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "warnings only: {out}");
    assert!(out.contains("[warn] token scopes"), "{out}");
    assert!(out.contains("add the `api` scope"), "{out}");
}

#[test]
fn revoked_token_fails_with_what_to_do() {
    let gl = FakeGitLab::start();
    gl.require_token("PRIVATE-TOKEN", "glpat-another");
    let o = doctor(&gl, Some(("RUNNERIQ_TOKEN", TOKEN)), &["--project", "42"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("GitLab rejected the token"), "{out}");
    assert!(!out.contains(TOKEN) && !String::from_utf8_lossy(&o.stderr).contains(TOKEN));
}

#[test]
fn job_token_only_and_missing_project_warn() {
    let gl = FakeGitLab::start();
    let o = doctor(&gl, Some(("CI_JOB_TOKEN", "job-token-value")), &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("only CI_JOB_TOKEN is set"), "{out}");
    assert!(out.contains("no project given"), "{out}");
}

#[test]
fn no_token_fails() {
    let gl = FakeGitLab::start();
    let o = doctor(&gl, None, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no token: set RUNNERIQ_TOKEN"));
    assert!(gl.requests().is_empty());
}

#[test]
fn broken_rules_file_is_reported() {
    let gl = FakeGitLab::start();
    let dir = std::env::temp_dir().join(format!("runneriq-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        "rules:\n  - id: x\n    pattern: 'a'\n    weight: 7\n",
    )
    .unwrap();
    let o = doctor(&gl, None, &["--rules", rules.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("[FAIL] rules") && out.contains("`weight`"),
        "{out}"
    );
}

/// RunnerIQ 6.x's `GITLAB_URL` (the instance, no `/api/v4`), `GITLAB_TOKEN`
/// and `GITLAB_PROJECT_ID` alone are enough; the token never shows.
#[test]
fn runneriq_6x_variables_alone_are_enough() {
    let gl = FakeGitLab::start();
    gl.require_token("PRIVATE-TOKEN", TOKEN);
    gl.route_json(
        "GET",
        "/personal_access_tokens/self",
        200,
        r#"{"id":1,"name":"runneriq","scopes":["api"],"expires_at":"2027-01-01","active":true}"#,
    );
    gl.route_json("GET", "/user", 200, r#"{"id":7,"username":"old_bot"}"#);
    gl.route_json("GET", "/projects/42", 200, project_json(20));
    let instance = gl.base_url().trim_end_matches("/api/v4").to_string();
    assert!(!instance.ends_with("/api/v4"));
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .arg("doctor")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GITLAB_URL", &instance)
        .env("GITLAB_TOKEN", TOKEN)
        .env("GITLAB_PROJECT_ID", "42")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("acting as @old_bot"), "{out}");
    assert!(out.contains("All checks passed."), "{out}");
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN));
    assert!(
        gl.requests()
            .iter()
            .any(|r| r.path == "/api/v4/projects/42")
    );
}
