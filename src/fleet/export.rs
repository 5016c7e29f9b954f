//! The fleet from a live GitLab: the runners a token may see, each read in
//! detail (`GET /runners/:id` has the tags, `run_untagged`, `access_level`,
//! `maximum_timeout` and projects that routing needs).
//!
//! Rights (GitLab's): `GET /projects/:id/runners` needs the Maintainer role in
//! the project; `GET /runners/all` an administrator. Without them the error
//! says so and points at a fleet file instead.

use super::model::FleetRunner;
use crate::error::input;
use crate::gitlab::models::Runner;
use crate::gitlab::{ApiError, ApiErrorKind, Client, project_ref};

/// Runners read at most (pages of 100).
const MAX_RUNNER_PAGES: usize = 5;

fn rights_error(e: &ApiError, what: &str, role: &str) -> anyhow::Error {
    match e.kind() {
        ApiErrorKind::Forbidden | ApiErrorKind::Unauthorized => input(format!(
            "{what} needs {role} ({} {} answered {}); without that role, describe the fleet in a \
             file instead: --fleet FILE, a JSON array of runner objects as `GET /runners/:id` \
             returns them (see the README, \"Fleet JSON\")",
            e.method(),
            e.endpoint(),
            crate::gitlab::error::summary(e)
        )),
        _ => anyhow::anyhow!("{what}: {}", crate::gitlab::error::summary(e)),
    }
}

/// Reads each listed runner's details; a runner whose details are refused
/// keeps its list entry (no tags) and is reported in `warnings`.
fn details(client: &Client, list: Vec<Runner>, warnings: &mut Vec<String>) -> Vec<FleetRunner> {
    list.into_iter()
        .map(|r| {
            let runner = match client.get_json::<Runner>(&format!("/runners/{}", r.id), &[]) {
                Ok(d) => d,
                Err(e) => {
                    warnings.push(format!(
                        "runner {}: details not readable ({}), its tags are unknown",
                        r.id,
                        crate::gitlab::error::summary(&e)
                    ));
                    r
                }
            };
            FleetRunner {
                runner,
                ..FleetRunner::default()
            }
        })
        .collect()
}

/// The runners available to a project (Maintainer).
pub fn project_fleet(client: &Client, project: &str) -> anyhow::Result<Vec<FleetRunner>> {
    let path = format!("/projects/{}/runners", project_ref(project));
    let list: Vec<Runner> = client
        .get_all(&path, &[], MAX_RUNNER_PAGES)
        .map_err(|e| rights_error(&e, "reading the project's runners", "the Maintainer role"))?;
    let mut warnings = Vec::new();
    let fleet = details(client, list, &mut warnings);
    for w in warnings {
        eprintln!("runneriq: warning: {w}");
    }
    Ok(fleet)
}

/// Every runner of the instance (administrator).
pub fn instance_fleet(client: &Client) -> anyhow::Result<Vec<FleetRunner>> {
    let list: Vec<Runner> = client
        .get_all("/runners/all", &[], MAX_RUNNER_PAGES)
        .map_err(|e| rights_error(&e, "reading all runners", "an administrator"))?;
    let mut warnings = Vec::new();
    let fleet = details(client, list, &mut warnings);
    for w in warnings {
        eprintln!("runneriq: warning: {w}");
    }
    Ok(fleet)
}
