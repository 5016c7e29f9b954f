//! Posting notes: one living note per merge request or commit, found again by a
//! hidden marker and edited in place, so re-runs never add a second note.
//!
//! GitLab facts this relies on: MR notes can be edited
//! (`PUT /projects/:id/merge_requests/:iid/notes/:note_id`); commit *comments*
//! cannot, so commits get a commit *discussion* whose first note is edited
//! (`PUT .../repository/commits/:sha/discussions/:did/notes/:nid`). Writes are
//! never retried after GitLab may have processed them (the client's rule), so a
//! flaky network cannot create duplicates either.

pub mod format;
pub mod issues;
pub mod mermaid;
pub mod notify;
pub mod pagerduty;
pub mod sanitize;

use serde::Serialize;

use crate::gitlab::models::{Discussion, Note as GitLabNote};
use crate::gitlab::{ApiError, ApiErrorKind, Client, TokenKind, project_ref};

/// First line of every diagnose note.
pub const MARKER: &str = "<!-- runneriq:diagnose -->";

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

/// The user the token acts as (`GET /user`). Only notes this user wrote are
/// RunnerIQ's: anybody can post a comment that starts with our marker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Me {
    pub id: u64,
    #[serde(default)]
    pub username: String,
}

/// Who the token is: one request per run.
pub fn whoami(client: &Client) -> Result<Me, ApiError> {
    client.get_json::<Me>("/user", &[])
}

/// Our note, as found on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub note_id: u64,
    /// Commit discussions only.
    pub discussion_id: Option<String>,
    pub body: String,
}

/// A note that carries our marker but was written by somebody else: never
/// read, never edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impostor {
    pub note_id: u64,
    pub author: String,
}

/// What a search of the target's notes found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// Our notes, oldest first (more than one only after concurrent runs).
    pub ours: Vec<Existing>,
    pub impostors: Vec<Impostor>,
}

impl Found {
    /// The note to edit: the oldest of ours.
    pub fn primary(&self) -> Option<&Existing> {
        self.ours.first()
    }

    /// One line per impostor, for the job log (usernames are the API's,
    /// control characters removed).
    pub fn impostor_warnings(&self, me: &Me) -> Vec<String> {
        self.impostors
            .iter()
            .map(|i| {
                format!(
                    "note {} by @{} starts with RunnerIQ's marker but was not written by this \
                     token's user (@{}): ignored, neither read nor edited",
                    i.note_id,
                    printable(&i.author),
                    printable(&me.username)
                )
            })
            .collect()
    }
}

fn printable(s: &str) -> String {
    s.chars()
        .take(100)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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

/// Carries our marker: not a system note, and the marker is the whole first
/// line (a quote or a mention of it is not).
fn has_marker(note: &GitLabNote, marker: &str) -> bool {
    !note.system && note.body.lines().next() == Some(marker)
}

fn sort_found(mut found: Found) -> Found {
    // Note ids grow with time: the oldest note has the smallest id.
    found.ours.sort_by_key(|e| e.note_id);
    found.impostors.sort_by_key(|i| i.note_id);
    found
}

/// Finds the notes carrying `marker` (the first line of the body) and splits
/// them into ours (written by `me`) and impostors. Reads at most
/// [`MAX_NOTE_PAGES`] pages, most recently updated first.
pub fn find_existing(
    client: &Client,
    target: &Target,
    marker: &str,
    me: &Me,
) -> Result<Found, ApiError> {
    let mut found = Found::default();
    let mut sort = |note: GitLabNote, discussion_id: Option<String>| {
        if !has_marker(&note, marker) {
            return;
        }
        if note.author.id == me.id {
            found.ours.push(Existing {
                note_id: note.id,
                discussion_id,
                body: note.body,
            });
        } else {
            found.impostors.push(Impostor {
                note_id: note.id,
                author: note.author.username,
            });
        }
    };
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
            for n in notes {
                sort(n, None);
            }
        }
        Target::Commit { project, sha } => {
            let path = format!(
                "/projects/{}/repository/commits/{}/discussions",
                project_ref(project),
                project_ref(sha)
            );
            let discussions: Vec<Discussion> = client.get_all(&path, &[], MAX_NOTE_PAGES)?;
            for d in discussions {
                if let Some(first) = d.notes.into_iter().next() {
                    sort(first, Some(d.id));
                }
            }
        }
    }
    Ok(sort_found(found))
}

/// Creates the note (an MR note, or a new commit discussion).
pub fn create(client: &Client, target: &Target, body: &str) -> Result<Existing, ApiError> {
    match target {
        Target::MergeRequest { project, iid } => {
            let path = format!(
                "/projects/{}/merge_requests/{iid}/notes",
                project_ref(project)
            );
            let n: GitLabNote = client.post_json(&path, &Body { body })?;
            Ok(Existing {
                note_id: n.id,
                discussion_id: None,
                body: body.to_string(),
            })
        }
        Target::Commit { project, sha } => {
            let path = format!(
                "/projects/{}/repository/commits/{}/discussions",
                project_ref(project),
                project_ref(sha)
            );
            let d: Discussion = client.post_json(&path, &Body { body })?;
            let note_id = d.notes.first().map_or(0, |n| n.id);
            Ok(Existing {
                note_id,
                discussion_id: Some(d.id),
                body: body.to_string(),
            })
        }
    }
}

/// The API path of one of our notes.
fn note_path(
    target: &Target,
    existing: &Existing,
    method: &'static str,
) -> Result<String, ApiError> {
    match (target, &existing.discussion_id) {
        (Target::MergeRequest { project, iid }, _) => Ok(format!(
            "/projects/{}/merge_requests/{iid}/notes/{}",
            project_ref(project),
            existing.note_id
        )),
        (Target::Commit { project, sha }, Some(did)) => Ok(format!(
            "/projects/{}/repository/commits/{}/discussions/{}/notes/{}",
            project_ref(project),
            project_ref(sha),
            project_ref(did),
            existing.note_id
        )),
        // Not reachable through find_existing; refuse rather than guess.
        (Target::Commit { .. }, None) => Err(ApiError::new(
            ApiErrorKind::NotFound,
            method,
            "discussion note",
        )),
    }
}

/// Replaces the body of our existing note.
pub fn update(
    client: &Client,
    target: &Target,
    existing: &Existing,
    body: &str,
) -> Result<Outcome, ApiError> {
    let path = note_path(target, existing, "PUT")?;
    let _: serde_json::Value = client.put_json(&path, &Body { body })?;
    Ok(Outcome::Updated {
        note_id: existing.note_id,
    })
}

/// Deletes one of our notes; one already gone counts as deleted (another
/// run may have removed it first).
pub fn delete(client: &Client, target: &Target, existing: &Existing) -> Result<(), ApiError> {
    let path = note_path(target, existing, "DELETE")?;
    match client.delete(&path) {
        Err(e) if e.kind() == ApiErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The pipeline a note of ours describes (its second hidden line).
pub fn pipeline_of(body: &str) -> Option<u64> {
    let line = body.lines().nth(1)?;
    let rest = line.strip_prefix("<!-- runneriq:pipeline=")?;
    rest.split(' ').next()?.parse().ok()
}

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub outcome: Outcome,
    /// Duplicates of ours deleted (made by a concurrent run, or left by one).
    pub removed: Vec<u64>,
    /// What could not be tidied up (the note itself was written).
    pub warnings: Vec<String>,
}

/// Writes `body` as our one note on `target`, given what a search found:
/// edits the oldest of ours, else creates one. GitLab has no lock, so a run
/// that creates lists again afterwards: when two runs created at once, every
/// note but the oldest is deleted, and the survivor gets this run's body
/// unless it already describes a newer pipeline. Duplicates left by earlier
/// runs are deleted the same way.
pub fn publish(
    client: &Client,
    target: &Target,
    marker: &str,
    me: &Me,
    found: &Found,
    body: &str,
) -> Result<Published, ApiError> {
    let mut done = Published {
        outcome: Outcome::Created { note_id: 0 },
        removed: Vec::new(),
        warnings: Vec::new(),
    };
    let survivor = match found.primary() {
        Some(primary) => {
            done.outcome = update(client, target, primary, body)?;
            remove_extras(client, target, &found.ours[1..], &mut done);
            return Ok(done);
        }
        None => {
            let created = create(client, target, body)?;
            done.outcome = Outcome::Created {
                note_id: created.note_id,
            };
            let again = match find_existing(client, target, marker, me) {
                Ok(a) => a,
                Err(e) => {
                    done.warnings.push(format!(
                        "could not check for a note posted at the same time by another run: {}",
                        crate::gitlab::error::summary(&e)
                    ));
                    return Ok(done);
                }
            };
            remove_extras(
                client,
                target,
                again.ours.get(1..).unwrap_or(&[]),
                &mut done,
            );
            match again.ours.into_iter().next() {
                Some(oldest) if oldest.note_id != created.note_id => oldest,
                // Ours is the oldest, or not listed yet: nothing to converge with.
                _ => return Ok(done),
            }
        }
    };
    // Another run's note survives: it takes our diagnosis unless it is about
    // a newer pipeline than ours.
    done.outcome = Outcome::Updated {
        note_id: survivor.note_id,
    };
    let newer = matches!(
        (pipeline_of(&survivor.body), pipeline_of(body)),
        (Some(theirs), Some(ours)) if theirs > ours
    );
    if !newer {
        update(client, target, &survivor, body)?;
    }
    Ok(done)
}

fn remove_extras(client: &Client, target: &Target, extras: &[Existing], done: &mut Published) {
    for extra in extras {
        match delete(client, target, extra) {
            Ok(()) => done.removed.push(extra.note_id),
            Err(e) => done.warnings.push(format!(
                "could not delete the duplicate note {}: {}",
                extra.note_id,
                crate::gitlab::error::summary(&e)
            )),
        }
    }
}

/// One sentence for the job log: why posting failed and what to fix.
pub fn explain_failure(err: &ApiError, target: &Target, token: Option<TokenKind>) -> String {
    let what = format!("could not post the diagnosis on {}", target.describe());
    let call = format!("{} {}", err.method(), err.endpoint());
    let editing = matches!(err.method(), "PUT" | "DELETE");
    let reason = match err.kind() {
        ApiErrorKind::Forbidden | ApiErrorKind::Unauthorized if token == Some(TokenKind::Job) => {
            "CI_JOB_TOKEN can neither say which user it is nor write notes — set RUNNERIQ_TOKEN \
             to a project access token with the `api` scope (Reporter role or higher)"
                .to_string()
        }
        ApiErrorKind::Forbidden if editing => "GitLab answered 403 Forbidden to an edit of \
             RunnerIQ's own note (written by this token's user) — the token has lost the `api` \
             scope or its role on the project"
            .to_string(),
        ApiErrorKind::Forbidden => "GitLab answered 403 Forbidden — the token needs the `api` \
             scope (read_api is not enough) and at least the Reporter role on the project"
            .to_string(),
        ApiErrorKind::NotFound if editing => "GitLab answered 404 — RunnerIQ's note was deleted \
             while this job ran; re-run the job to post a new one"
            .to_string(),
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
    fn the_marker_is_the_whole_first_line_of_a_user_note() {
        let mut n = GitLabNote {
            body: format!("{MARKER}\nbody"),
            ..GitLabNote::default()
        };
        assert!(has_marker(&n, MARKER));
        n.system = true;
        assert!(!has_marker(&n, MARKER));
        for body in [
            format!("> {MARKER}"),
            format!("{MARKER} and more"),
            format!("text\n{MARKER}"),
        ] {
            let n = GitLabNote {
                body,
                ..GitLabNote::default()
            };
            assert!(!has_marker(&n, MARKER), "{}", n.body);
        }
    }

    #[test]
    fn the_pipeline_is_read_from_the_second_line_only() {
        assert_eq!(
            pipeline_of(
                "<!-- runneriq:diagnose -->\n<!-- runneriq:pipeline=1001 status=failed -->\n"
            ),
            Some(1001)
        );
        assert_eq!(
            pipeline_of(
                "<!-- runneriq:diagnose -->\nx\n<!-- runneriq:pipeline=9 status=failed -->"
            ),
            None
        );
    }
}
