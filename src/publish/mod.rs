//! Posting notes: one living note per merge request or commit, found again by a
//! hidden marker and edited in place, so re-runs never add a second note.
//!
//! GitLab facts this relies on: MR notes can be edited
//! (`PUT /projects/:id/merge_requests/:iid/notes/:note_id`); commit *comments*
//! cannot, so commits get a commit *discussion* whose first note is edited
//! (`PUT .../repository/commits/:sha/discussions/:did/notes/:nid`). Writes are
//! never retried after GitLab may have processed them (the client's rule), so a
//! flaky network cannot create duplicates either.

pub mod issues;
pub mod notify;
pub mod sanitize;

use serde::Serialize;

use crate::gitlab::models::{Discussion, Note as GitLabNote};
use crate::gitlab::{ApiError, ApiErrorKind, Client, TokenKind, project_ref};

/// First line of every diagnose note.
pub const MARKER: &str = "<!-- runneriq:diagnose -->";
/// Around the earlier diagnosis kept in a resolved note.
pub const PREVIOUS_START: &str = "<!-- runneriq:previous -->";
pub const PREVIOUS_END: &str = "<!-- runneriq:previous-end -->";

/// Notes pages (of 100, newest first) searched for our marker.
const MAX_NOTE_PAGES: usize = 10;

/// Where a note goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    MergeRequest { project: String, iid: u64 },
    Commit { project: String, sha: String },
}

impl Target {
    /// "merge request !7", "commit 0123abcd".
    pub fn describe(&self) -> String {
        match self {
            Target::MergeRequest { iid, .. } => format!("merge request !{iid}"),
            Target::Commit { sha, .. } => {
                format!("commit {}", sha.get(..8).unwrap_or(sha))
            }
        }
    }
}

/// Our note, as found on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub note_id: u64,
    /// Commit discussions only.
    pub discussion_id: Option<String>,
    pub body: String,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created { note_id: u64 },
    Updated { note_id: u64 },
}

#[derive(Serialize)]
struct Body<'a> {
    body: &'a str,
}

fn ours(note: &GitLabNote, marker: &str) -> bool {
    !note.system && note.body.starts_with(marker)
}

/// Finds our note by its marker (the first line of the body). Reads at most
/// [`MAX_NOTE_PAGES`] pages, newest first.
pub fn find_existing(
    client: &Client,
    target: &Target,
    marker: &str,
) -> Result<Option<Existing>, ApiError> {
    match target {
        Target::MergeRequest { project, iid } => {
            let path = format!(
                "/projects/{}/merge_requests/{iid}/notes",
                project_ref(project)
            );
            let notes: Vec<GitLabNote> = client.get_all(
                &path,
                &[
                    ("sort", "desc".to_string()),
                    ("order_by", "updated_at".to_string()),
                ],
                MAX_NOTE_PAGES,
            )?;
            Ok(notes
                .into_iter()
                .find(|n| ours(n, marker))
                .map(|n| Existing {
                    note_id: n.id,
                    discussion_id: None,
                    body: n.body,
                }))
        }
        Target::Commit { project, sha } => {
            let path = format!(
                "/projects/{}/repository/commits/{}/discussions",
                project_ref(project),
                project_ref(sha)
            );
            let discussions: Vec<Discussion> = client.get_all(&path, &[], MAX_NOTE_PAGES)?;
            Ok(discussions.into_iter().find_map(|d| {
                let first = d.notes.into_iter().next()?;
                if !ours(&first, marker) {
                    return None;
                }
                Some(Existing {
                    note_id: first.id,
                    discussion_id: Some(d.id),
                    body: first.body,
                })
            }))
        }
    }
}

/// Creates the note (an MR note, or a new commit discussion).
pub fn create(client: &Client, target: &Target, body: &str) -> Result<Outcome, ApiError> {
    match target {
        Target::MergeRequest { project, iid } => {
            let path = format!(
                "/projects/{}/merge_requests/{iid}/notes",
                project_ref(project)
            );
            let n: GitLabNote = client.post_json(&path, &Body { body })?;
            Ok(Outcome::Created { note_id: n.id })
        }
        Target::Commit { project, sha } => {
            let path = format!(
                "/projects/{}/repository/commits/{}/discussions",
                project_ref(project),
                project_ref(sha)
            );
            let d: Discussion = client.post_json(&path, &Body { body })?;
            let note_id = d.notes.first().map_or(0, |n| n.id);
            Ok(Outcome::Created { note_id })
        }
    }
}

/// Replaces the body of our existing note.
pub fn update(
    client: &Client,
    target: &Target,
    existing: &Existing,
    body: &str,
) -> Result<Outcome, ApiError> {
    let path = match (target, &existing.discussion_id) {
        (Target::MergeRequest { project, iid }, _) => format!(
            "/projects/{}/merge_requests/{iid}/notes/{}",
            project_ref(project),
            existing.note_id
        ),
        (Target::Commit { project, sha }, Some(did)) => format!(
            "/projects/{}/repository/commits/{}/discussions/{}/notes/{}",
            project_ref(project),
            project_ref(sha),
            project_ref(did),
            existing.note_id
        ),
        (Target::Commit { .. }, None) => {
            // Not reachable through find_existing; refuse rather than guess.
            return Err(ApiError::new(
                ApiErrorKind::NotFound,
                "PUT",
                "discussion note",
            ));
        }
    };
    let _: serde_json::Value = client.put_json(&path, &Body { body })?;
    Ok(Outcome::Updated {
        note_id: existing.note_id,
    })
}

/// Edits our note if it exists, else creates one.
pub fn upsert(
    client: &Client,
    target: &Target,
    marker: &str,
    body: &str,
) -> Result<Outcome, ApiError> {
    match find_existing(client, target, marker)? {
        Some(e) => update(client, target, &e, body),
        None => create(client, target, body),
    }
}

/// One sentence for the job log: why posting failed and what to fix.
pub fn explain_failure(err: &ApiError, target: &Target, token: Option<TokenKind>) -> String {
    let what = format!("could not post the diagnosis on {}", target.describe());
    let call = format!("{} {}", err.method(), err.endpoint());
    let reason = match err.kind() {
        ApiErrorKind::Forbidden => match token {
            Some(TokenKind::Job) => "GitLab answered 403 Forbidden because CI_JOB_TOKEN cannot \
                 write notes — set RUNNERIQ_TOKEN to a project access token with the `api` scope \
                 (Reporter role or higher)"
                .to_string(),
            _ => "GitLab answered 403 Forbidden — the token needs the `api` scope (read_api is \
                 not enough) and at least the Reporter role on the project"
                .to_string(),
        },
        ApiErrorKind::NotFound => "GitLab answered 404 — the project or the merge request/commit \
             is not visible to this token: check --project, --mr/--sha and the token's project \
             membership"
            .to_string(),
        ApiErrorKind::Unauthorized => match token {
            None => "no token was sent — set RUNNERIQ_TOKEN to a project access token with the \
                 `api` scope"
                .to_string(),
            Some(_) => "GitLab rejected the token (401) — it is expired, revoked or mistyped: \
                 renew RUNNERIQ_TOKEN"
                .to_string(),
        },
        ApiErrorKind::Status | ApiErrorKind::Transport | ApiErrorKind::Deadline => format!(
            "GitLab is unavailable or overloaded ({}) — re-run this job later; the diagnosis \
             above is complete",
            crate::gitlab::error::summary(err)
        ),
        _ => crate::gitlab::error::summary(err),
    };
    format!("{what} ({call}): {reason}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_describe_themselves() {
        let mr = Target::MergeRequest {
            project: "g/p".into(),
            iid: 7,
        };
        assert_eq!(mr.describe(), "merge request !7");
        let c = Target::Commit {
            project: "1".into(),
            sha: "0123456789abcdef".into(),
        };
        assert_eq!(c.describe(), "commit 01234567");
    }

    #[test]
    fn failures_are_one_sentence_with_a_fix() {
        let mr = Target::MergeRequest {
            project: "1".into(),
            iid: 7,
        };
        let e = ApiError::new(
            ApiErrorKind::Forbidden,
            "POST",
            "/projects/1/merge_requests/7/notes",
        )
        .with_status(403);
        let s = explain_failure(&e, &mr, Some(TokenKind::Private));
        assert!(s.starts_with("could not post the diagnosis on merge request !7"));
        assert!(s.contains("`api` scope"));
        assert!(s.ends_with('.'));
        assert!(!s.contains('\n'));
        let s = explain_failure(&e, &mr, Some(TokenKind::Job));
        assert!(s.contains("CI_JOB_TOKEN"));
        let e = ApiError::new(
            ApiErrorKind::NotFound,
            "GET",
            "/projects/1/merge_requests/7/notes",
        );
        assert!(explain_failure(&e, &mr, None).contains("not visible to this token"));
    }

    #[test]
    fn our_notes_start_with_the_marker_and_are_not_system_notes() {
        let mut n = GitLabNote {
            body: format!("{MARKER}\nbody"),
            ..GitLabNote::default()
        };
        assert!(ours(&n, MARKER));
        n.system = true;
        assert!(!ours(&n, MARKER));
        let quoted = GitLabNote {
            body: format!("> {MARKER}"),
            ..GitLabNote::default()
        };
        assert!(!ours(&quoted, MARKER));
    }
}
