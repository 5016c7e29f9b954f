//! What `runneriq watch` reads from GitLab, each read bounded: the runners
//! list (project, group or instance), a runner's details only when the
//! analysis asks ([`super::analysis::plan_details`]), one page of active and
//! one page of finished jobs per project, and the labelled issues where the
//! fleet-health issue and the last weekly report live.
//!
//! Rights (GitLab's): `GET /projects/:id/runners` needs the Maintainer role
//! in the project, `GET /groups/:id/runners` the Maintainer role in the
//! group, `GET /runners/all` an administrator; a token without them gets one
//! sentence saying which.

use std::collections::HashMap;

use crate::error::input;
use crate::gitlab::models::{Issue, Job, Runner};
use crate::gitlab::{ApiError, ApiErrorKind, Client, project_ref};

/// Pages of 100 runners listed at most.
pub const MAX_RUNNER_PAGES: usize = 5;
/// Pages of 100 labelled issues searched.
const MAX_ISSUE_PAGES: usize = 2;

/// Whose runners are watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The runners available to a project (Maintainer).
    Project(String),
    /// A group's runners (Maintainer of the group).
    Group(String),
    /// Every runner of the instance (administrator).
    Instance,
}

impl Scope {
    /// "project 42", "group platform", "the instance".
    pub fn describe(&self) -> String {
        match self {
            Scope::Project(p) => format!("project {p}"),
            Scope::Group(g) => format!("group {g}"),
            Scope::Instance => "the instance".into(),
        }
    }
}

/// The runners of `scope` (list entries: status and pause, no tags).
pub fn list_runners(c: &Client, scope: &Scope) -> anyhow::Result<Vec<Runner>> {
    let (path, what, role) = match scope {
        Scope::Project(p) => (
            format!("/projects/{}/runners", project_ref(p)),
            "listing a project's runners",
            "the Maintainer role in the project",
        ),
        Scope::Group(g) => (
            format!("/groups/{}/runners", project_ref(g)),
            "listing a group's runners",
            "the Maintainer role in the group",
        ),
        Scope::Instance => (
            "/runners/all".to_string(),
            "listing all runners (--all-runners)",
            "an administrator account",
        ),
    };
    c.get_all(&path, &[], MAX_RUNNER_PAGES)
        .map_err(|e| rights_error(&e, what, role))
}

/// One sentence for a refused runners list: which role or scope is missing.
fn rights_error(e: &ApiError, what: &str, role: &str) -> anyhow::Error {
    match e.kind() {
        ApiErrorKind::Forbidden => input(format!(
            "{} {} answered 403 Forbidden: {what} needs {role} and a token with the read_api \
             (or api) scope",
            e.method(),
            e.endpoint()
        )),
        ApiErrorKind::Unauthorized => input(format!(
            "{} {} answered 401 Unauthorized: the token is missing, expired or revoked — set \
             RUNNERIQ_TOKEN to an access token with the read_api (or api) scope and {role}",
            e.method(),
            e.endpoint()
        )),
        ApiErrorKind::NotFound => input(format!(
            "{} {} answered 404 Not Found: check the id or path, and that the token can see it",
            e.method(),
            e.endpoint()
        )),
        _ => anyhow::anyhow!("{what}: {}", crate::gitlab::error::summary(e)),
    }
}

/// `GET /runners/:id` for each of `ids` (from this run's list only). A
/// runner whose details are refused keeps what the state remembers; the
/// warning says so.
pub fn runner_details(c: &Client, ids: &[u64]) -> (HashMap<u64, Runner>, Vec<String>) {
    let mut out = HashMap::new();
    let mut warnings = Vec::new();
    for id in ids {
        match c.get_json::<Runner>(&format!("/runners/{id}"), &[]) {
            Ok(r) if r.id == *id => {
                out.insert(*id, r);
            }
            Ok(r) => warnings.push(format!(
                "GET /runners/{id} answered runner {} instead: its details are ignored",
                r.id
            )),
            Err(e) => warnings.push(format!(
                "runner {id}: details not readable ({})",
                crate::gitlab::error::summary(&e)
            )),
        }
    }
    (out, warnings)
}

/// The group's projects whose jobs are read (one page, most recently active
/// first, archived left out), at most `max`.
pub fn group_projects(c: &Client, group: &str, max: usize) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct P {
        id: u64,
    }
    let page: crate::gitlab::Page<P> = c
        .get_pages(
            &format!("/groups/{}/projects", project_ref(group)),
            &[
                ("include_subgroups", "true".to_string()),
                ("archived", "false".to_string()),
                ("order_by", "last_activity_at".to_string()),
                ("sort", "desc".to_string()),
                ("per_page", max.clamp(1, 100).to_string()),
            ],
            1,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "could not list the projects of group {group}: {}",
                crate::gitlab::error::summary(&e)
            )
        })?;
    Ok(page
        .items
        .into_iter()
        .take(max)
        .map(|p| p.id.to_string())
        .collect())
}

/// One page (100) of a project's jobs in `scopes`, newest first.
fn jobs_page(c: &Client, project: &str, scopes: &[&str]) -> Result<Vec<Job>, ApiError> {
    let mut q: Vec<(&str, String)> = scopes.iter().map(|s| ("scope[]", s.to_string())).collect();
    q.push(("per_page", "100".to_string()));
    let page: crate::gitlab::Page<Job> =
        c.get_pages(&format!("/projects/{}/jobs", project_ref(project)), &q, 1)?;
    Ok(page
        .items
        .into_iter()
        .filter(|j| scopes.contains(&j.status.as_str()))
        .collect())
}

/// Pending and running jobs: one page.
pub fn active_jobs(c: &Client, project: &str) -> Result<Vec<Job>, ApiError> {
    jobs_page(c, project, &["pending", "running"])
}

/// Finished (success, failed) jobs: one page, newest first.
pub fn finished_jobs(c: &Client, project: &str) -> Result<Vec<Job>, ApiError> {
    jobs_page(c, project, &["success", "failed"])
}

/// Issues with `label`, all states, by creation: oldest first (the first of
/// ours wins over a later duplicate) or newest first (the last report).
pub fn labelled_issues(
    c: &Client,
    project: &str,
    label: &str,
    newest_first: bool,
) -> Result<Vec<Issue>, ApiError> {
    c.get_all(
        &format!("/projects/{}/issues", project_ref(project)),
        &[
            ("labels", label.to_string()),
            ("state", "all".to_string()),
            ("order_by", "created_at".to_string()),
            (
                "sort",
                if newest_first { "desc" } else { "asc" }.to_string(),
            ),
        ],
        MAX_ISSUE_PAGES,
    )
}

/// The project's default branch (`GET /projects/:id`), when readable.
pub fn default_branch(c: &Client, project: &str) -> Option<String> {
    c.get_json::<serde_json::Value>(&format!("/projects/{}", project_ref(project)), &[])
        .ok()
        .and_then(|v| v["default_branch"].as_str().map(str::to_string))
}
