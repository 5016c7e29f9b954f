//! `runneriq doctor`: checks the set-up a diagnose job needs and says, in
//! plain words, what to fix. Read-only: it never writes to GitLab.

use std::path::PathBuf;

use serde::Deserialize;
use serde::Serialize;

use crate::classify::Catalog;
use crate::gitlab::{ApiErrorKind, Client, ClientConfig, Token, TokenKind, project_ref};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

pub struct DoctorInput {
    pub gitlab_url: Option<String>,
    pub project: Option<String>,
    pub rules: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct TokenSelf {
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct UserSelf {
    username: String,
}

#[derive(Deserialize, Default)]
struct Access {
    access_level: u32,
}

#[derive(Deserialize, Default)]
struct Permissions {
    project_access: Option<Access>,
    group_access: Option<Access>,
}

#[derive(Deserialize)]
struct ProjectInfo {
    path_with_namespace: String,
    #[serde(default)]
    permissions: Option<Permissions>,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

fn role(level: u32) -> &'static str {
    match level {
        0..=9 => "no access",
        10..=14 => "Guest",
        15..=19 => "Planner",
        20..=29 => "Reporter",
        30..=39 => "Developer",
        40..=49 => "Maintainer",
        _ => "Owner",
    }
}

/// Runs every check; later checks are skipped (not failed) when an earlier
/// one makes them meaningless.
pub fn run(input: &DoctorInput, lookup: impl Fn(&str) -> Option<String>) -> Vec<Check> {
    let mut checks = Vec::new();

    let refs: Vec<&std::path::Path> = input.rules.iter().map(PathBuf::as_path).collect();
    match Catalog::with_overrides(&refs) {
        Ok(c) => checks.push(check(
            "rules",
            Status::Ok,
            format!(
                "{} rules in {} categories load",
                c.rules.len(),
                c.categories.len()
            ),
        )),
        Err(e) => checks.push(check("rules", Status::Fail, crate::error::describe(&e))),
    }

    let config = match ClientConfig::from_lookup(input.gitlab_url.clone(), &lookup) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check("gitlab url", Status::Fail, e.to_string()));
            return checks;
        }
    };
    let token = Token::from_lookup(&lookup);
    let token_kind = token.as_ref().map(Token::kind);
    match &token {
        None => {
            checks.push(check(
                "token",
                Status::Fail,
                "no token: set RUNNERIQ_TOKEN to a project access token (masked CI/CD variable) with the `api` scope",
            ));
            return checks;
        }
        Some(t) if t.kind() == TokenKind::Job => checks.push(check(
            "token",
            Status::Warn,
            "only CI_JOB_TOKEN is set: it cannot read other jobs' logs nor post notes; set RUNNERIQ_TOKEN to a project access token with the `api` scope",
        )),
        Some(_) => {}
    }
    let mut config = config;
    config.token = token;
    config.max_attempts = 2;
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            checks.push(check("gitlab url", Status::Fail, e.to_string()));
            return checks;
        }
    };
    checks.push(check(
        "gitlab url",
        Status::Ok,
        client.base_url().to_string(),
    ));

    let mut can_write = token_kind == Some(TokenKind::Private);
    if token_kind == Some(TokenKind::Private) {
        match client.get_json::<TokenSelf>("/personal_access_tokens/self", &[]) {
            Ok(t) => {
                let has = |s: &str| t.scopes.iter().any(|x| x == s);
                can_write = has("api");
                let status = if has("api") {
                    Status::Ok
                } else if has("read_api") {
                    Status::Warn
                } else {
                    Status::Fail
                };
                let mut detail = format!(
                    "token `{}` has scopes [{}]",
                    t.name,
                    t.scopes.join(", ")
                );
                if let Some(exp) = &t.expires_at {
                    detail.push_str(&format!(", expires {exp}"));
                }
                if status == Status::Warn {
                    detail.push_str(": it can read pipelines and logs but not post notes; add the `api` scope or use --post-to none");
                } else if status == Status::Fail {
                    detail.push_str(": it needs `read_api` to read and `api` to post notes");
                }
                checks.push(check("token scopes", status, detail));
            }
            Err(e) if e.kind() == ApiErrorKind::Unauthorized => {
                checks.push(check(
                    "token scopes",
                    Status::Fail,
                    "GitLab rejected the token (expired or revoked?): create a new project access token and update RUNNERIQ_TOKEN",
                ));
                return checks;
            }
            Err(e) => checks.push(check(
                "token scopes",
                Status::Warn,
                format!("could not read the token's scopes ({e}); GitLab before 15.5 has no such endpoint"),
            )),
        }
        match client.get_json::<UserSelf>("/user", &[]) {
            Ok(u) => checks.push(check(
                "identity",
                Status::Ok,
                format!("acting as @{}", u.username),
            )),
            Err(e) => checks.push(check("identity", Status::Warn, e.to_string())),
        }
    }

    let project = input
        .project
        .clone()
        .or_else(|| crate::gitlab::project_from_env(&lookup));
    let Some(project) = project else {
        checks.push(check(
            "project",
            Status::Warn,
            "no project given: pass --project ID or set CI_PROJECT_ID to check access to it",
        ));
        return checks;
    };
    match client.get_json::<ProjectInfo>(&format!("/projects/{}", project_ref(&project)), &[]) {
        Ok(p) => {
            let level = p
                .permissions
                .as_ref()
                .map(|perm| {
                    perm.project_access
                        .as_ref()
                        .map_or(0, |a| a.access_level)
                        .max(perm.group_access.as_ref().map_or(0, |a| a.access_level))
                })
                .unwrap_or(0);
            checks.push(check(
                "project",
                Status::Ok,
                format!(
                    "{} is readable (role: {})",
                    p.path_with_namespace,
                    role(level)
                ),
            ));
            let reads_logs = level >= 20 || level == 0;
            if !reads_logs {
                checks.push(check(
                    "job logs",
                    Status::Fail,
                    format!(
                        "role {} cannot read job logs: give the token's bot user at least Reporter",
                        role(level)
                    ),
                ));
            }
            let note_status = if can_write && (level >= 20 || level == 0) {
                Status::Ok
            } else {
                Status::Warn
            };
            let detail = match note_status {
                Status::Ok if level == 0 => "the token has the `api` scope; its role is not visible, Reporter or higher is needed to post notes".to_string(),
                Status::Ok => format!("can post merge request notes (`api` scope, {})", role(level)),
                _ => "cannot post notes: the token needs the `api` scope and at least Reporter; diagnose will print its note in the job log only".to_string(),
            };
            checks.push(check("mr notes", note_status, detail));
        }
        Err(e) => checks.push(check(
            "project",
            Status::Fail,
            format!("{e}: check the project id and that the token's user is a member"),
        )),
    }
    checks
}

pub fn render_text(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let mark = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!("[{mark}] {:<13} {}\n", c.name, c.detail));
    }
    let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warns = checks.iter().filter(|c| c.status == Status::Warn).count();
    out.push_str(&match (fails, warns) {
        (0, 0) => "All checks passed.\n".to_string(),
        (0, w) => format!("{w} warning(s); diagnose will work with the limits above.\n"),
        (f, _) => format!("{f} check(s) failed: fix them before relying on diagnose.\n"),
    });
    out
}
