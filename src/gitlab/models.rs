//! Serde models of the GitLab REST API v4 responses RunnerIQ reads.
//!
//! GitLab adds fields in every release and omits or nulls others depending on the
//! version, the endpoint and the caller's permissions, so these models are
//! deliberately forgiving: fields default when missing, unknown fields are
//! ignored, and anything GitLab has been seen to send as `null` is an `Option`.
//! Only what identifies an object is required (a job's `id` and `status`, a
//! note's `id` and `body`, ...): an answer without it is not that object, and
//! a list of `{}` must not turn into a million default structs. Nested lists
//! are capped (see [`super::bounded`]).
//! Ids are `u64` (GitLab uses bigint ids; artifact sizes reach `i64::MAX`).
//!
//! The models also derive `Serialize` so a snapshot of API data can be written and
//! read back with the same shapes. Secrets GitLab may include (a runner's `token` in
//! `GET /runners/:id` on old versions) are intentionally not modelled, so they are
//! dropped on read and can never be written back out.

use serde::{Deserialize, Deserializer, Serialize};

/// A nested list of at most [`super::bounded::NESTED`] elements: a lying
/// server cannot make one object expand without end.
fn capped_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    super::bounded::capped::<D, T, { super::bounded::NESTED }>(d)
}

/// A CI job as returned by `GET /projects/:id/pipelines/:pid/jobs`,
/// `GET /projects/:id/jobs/:job_id` and `GET /runners/:id/jobs`.
///
/// There is no `retried` field in the API: a retry is another job with the same
/// name in the same pipeline (`include_retried=true` lists the earlier attempts).
///
/// The nested objects are boxed: a job is kept small (432 bytes) since
/// reports and fleet files hold many.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub stage: String,
    /// created, pending, running, failed, success, canceled, skipped, manual, ...
    pub status: String,
    #[serde(rename = "ref")]
    #[serde(default)]
    pub git_ref: String,
    #[serde(default)]
    pub tag: bool,
    #[serde(default)]
    pub allow_failure: bool,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub erased_at: Option<String>,
    pub artifacts_expire_at: Option<String>,
    /// Seconds the job ran (float in job payloads).
    pub duration: Option<f64>,
    /// Seconds the job waited for a runner.
    pub queued_duration: Option<f64>,
    /// Only on failed jobs; about fifty values (`script_failure`,
    /// `runner_system_failure`, ...). Unknown values should be treated as
    /// `unknown_failure` by callers.
    pub failure_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub coverage: Option<f64>,
    pub web_url: Option<String>,
    #[serde(default, deserialize_with = "capped_list")]
    pub tag_list: Vec<String>,
    /// `null` while the job has not been picked up.
    pub runner: Option<Box<RunnerSummary>>,
    pub runner_manager: Option<Box<RunnerManager>>,
    pub user: Option<Box<UserSummary>>,
    pub pipeline: Option<Box<PipelineRef>>,
    pub commit: Option<Box<Commit>>,
    pub project: Option<Box<ProjectSummary>>,
    pub archived: Option<bool>,
    #[serde(default, deserialize_with = "capped_list")]
    pub artifacts: Vec<Artifact>,
    pub artifacts_file: Option<Box<ArtifactFile>>,
}

/// A trigger job (`trigger:` keyword), listed by `GET /projects/:id/pipelines/:pid/bridges`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bridge {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub stage: String,
    pub status: String,
    #[serde(rename = "ref")]
    #[serde(default)]
    pub git_ref: String,
    #[serde(default)]
    pub tag: bool,
    #[serde(default)]
    pub allow_failure: bool,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub erased_at: Option<String>,
    pub duration: Option<f64>,
    pub queued_duration: Option<f64>,
    pub failure_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub coverage: Option<f64>,
    pub web_url: Option<String>,
    pub user: Option<Box<UserSummary>>,
    pub pipeline: Option<Box<PipelineRef>>,
    pub commit: Option<Box<Commit>>,
    /// `null` until the child/multi-project pipeline is created; it may live in
    /// another project (`project_id`).
    pub downstream_pipeline: Option<Box<PipelineRef>>,
}

/// The short pipeline object embedded in jobs, bridges and merge requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineRef {
    pub id: u64,
    pub iid: Option<u64>,
    pub project_id: Option<u64>,
    pub sha: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub status: Option<String>,
    pub source: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub web_url: Option<String>,
}

/// A pipeline from `GET /projects/:id/pipelines/:pid` (also an MR's `head_pipeline`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: u64,
    pub iid: Option<u64>,
    pub project_id: Option<u64>,
    pub name: Option<String>,
    pub sha: Option<String>,
    pub before_sha: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub status: String,
    pub source: Option<String>,
    pub tag: Option<bool>,
    pub yaml_errors: Option<String>,
    pub user: Option<UserSummary>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub committed_at: Option<String>,
    /// Seconds (an integer in pipeline payloads; kept as float for uniformity with jobs).
    pub duration: Option<f64>,
    pub queued_duration: Option<f64>,
    /// GitLab sends pipeline coverage as a string ("98.29"); parsed leniently.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub coverage: Option<f64>,
    pub web_url: Option<String>,
    pub detailed_status: Option<DetailedStatus>,
}

/// The UI status badge of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetailedStatus {
    pub icon: Option<String>,
    pub text: Option<String>,
    pub label: Option<String>,
    pub group: Option<String>,
    pub tooltip: Option<String>,
    pub has_details: Option<bool>,
    pub details_path: Option<String>,
    pub favicon: Option<String>,
}

/// The user object embedded in jobs, notes, MRs and issues. Only the stable
/// public fields are kept; profile extras (bio, skype, ...) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSummary {
    pub id: u64,
    pub username: String,
    pub name: Option<String>,
    pub state: Option<String>,
    pub bot: Option<bool>,
    pub avatar_url: Option<String>,
    pub web_url: Option<String>,
}

/// The runner object embedded in a job (`null` until a runner picks it up).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunnerSummary {
    pub id: u64,
    pub description: Option<String>,
    pub name: Option<String>,
    pub ip_address: Option<String>,
    pub active: Option<bool>,
    pub paused: Option<bool>,
    pub is_shared: Option<bool>,
    /// instance_type, group_type or project_type.
    pub runner_type: Option<String>,
    pub online: Option<bool>,
    /// online, offline, stale, never_contacted (older GitLab: active, paused).
    pub status: Option<String>,
}

/// The runner manager (one `gitlab-runner` process behind a runner) that ran a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunnerManager {
    pub id: Option<u64>,
    pub system_id: Option<String>,
    pub version: Option<String>,
    pub revision: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    pub created_at: Option<String>,
    pub contacted_at: Option<String>,
    pub ip_address: Option<String>,
    pub status: Option<String>,
}

/// The project object embedded in jobs and runners. Some endpoints send only a
/// fragment (gitlab.com job lists: `{"ci_job_token_scope_enabled": false}`), hence
/// every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectSummary {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub name_with_namespace: Option<String>,
    pub path: Option<String>,
    pub path_with_namespace: Option<String>,
    pub created_at: Option<String>,
    pub web_url: Option<String>,
    pub ci_job_token_scope_enabled: Option<bool>,
}

/// A group a group runner belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSummary {
    pub id: u64,
    pub name: Option<String>,
    pub web_url: Option<String>,
}

/// One entry of a job's `artifacts` list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Artifact {
    /// archive, metadata, trace, junit, ...
    pub file_type: Option<String>,
    /// Bytes; GitLab has been seen to send `i64::MAX` here.
    pub size: Option<u64>,
    pub filename: Option<String>,
    pub file_format: Option<String>,
}

/// The legacy `artifacts_file` object of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArtifactFile {
    pub filename: Option<String>,
    pub size: Option<u64>,
}

/// A commit: full from `GET /repository/commits/:sha`, or the summary embedded in
/// jobs, bridges and compare results (then most fields are absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Commit {
    pub id: String,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub authored_date: Option<String>,
    pub committer_name: Option<String>,
    pub committer_email: Option<String>,
    pub committed_date: Option<String>,
    pub created_at: Option<String>,
    #[serde(deserialize_with = "capped_list")]
    pub parent_ids: Vec<String>,
    pub web_url: Option<String>,
    pub stats: Option<CommitStats>,
    /// Status of the latest pipeline for the commit.
    pub status: Option<String>,
    pub project_id: Option<u64>,
    pub last_pipeline: Option<PipelineRef>,
}

/// Line counts of a commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommitStats {
    pub additions: u64,
    pub deletions: u64,
    pub total: u64,
}

/// A merge request (`GET /projects/:id/merge_requests/:iid`, and `.../changes`
/// which adds `changes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeRequest {
    #[serde(default)]
    pub id: u64,
    pub iid: u64,
    #[serde(default)]
    pub project_id: u64,
    #[serde(default)]
    pub title: String,
    pub description: Option<String>,
    /// opened, closed, locked, merged.
    #[serde(default)]
    pub state: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub merged_at: Option<String>,
    pub closed_at: Option<String>,
    #[serde(default)]
    pub source_branch: String,
    #[serde(default)]
    pub target_branch: String,
    pub source_project_id: Option<u64>,
    pub target_project_id: Option<u64>,
    /// Head commit of the source branch.
    pub sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub squash_commit_sha: Option<String>,
    pub web_url: Option<String>,
    pub reference: Option<String>,
    pub references: Option<References>,
    pub author: Option<UserSummary>,
    pub assignee: Option<UserSummary>,
    #[serde(default, deserialize_with = "capped_list")]
    pub assignees: Vec<UserSummary>,
    #[serde(default, deserialize_with = "capped_list")]
    pub reviewers: Vec<UserSummary>,
    pub merged_by: Option<UserSummary>,
    pub merge_user: Option<UserSummary>,
    pub closed_by: Option<UserSummary>,
    #[serde(default, deserialize_with = "capped_list")]
    pub labels: Vec<String>,
    pub milestone: Option<Milestone>,
    pub draft: Option<bool>,
    pub work_in_progress: Option<bool>,
    pub merge_status: Option<String>,
    pub detailed_merge_status: Option<String>,
    pub has_conflicts: Option<bool>,
    pub user_notes_count: Option<u64>,
    /// A string in the API, and "1000+" past a limit, so it is not parsed.
    pub changes_count: Option<String>,
    pub diff_refs: Option<DiffRefs>,
    pub pipeline: Option<PipelineRef>,
    pub head_pipeline: Option<Pipeline>,
    /// Only from `GET .../merge_requests/:iid/changes` (deprecated upstream in
    /// favour of `.../diffs`).
    pub changes: Option<Vec<Diff>>,
}

/// The three commits that define an MR's diff.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiffRefs {
    pub base_sha: Option<String>,
    pub head_sha: Option<String>,
    pub start_sha: Option<String>,
}

/// Short and full references of an MR or issue (`!35`, `group/project!35`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct References {
    pub short: Option<String>,
    pub relative: Option<String>,
    pub full: Option<String>,
}

/// A milestone, as embedded in MRs and issues.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Milestone {
    pub id: u64,
    pub iid: Option<u64>,
    pub title: Option<String>,
    pub state: Option<String>,
    pub due_date: Option<String>,
    pub web_url: Option<String>,
}

/// One changed file: MR `diffs`/`changes`, commit diffs, compare `diffs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Diff {
    pub old_path: String,
    pub new_path: String,
    /// `null` for added files in some endpoints.
    pub a_mode: Option<String>,
    pub b_mode: Option<String>,
    /// Unified diff hunks, without the `diff --git` header. Empty when GitLab
    /// collapsed a too-large diff.
    pub diff: String,
    pub new_file: bool,
    pub renamed_file: bool,
    pub deleted_file: bool,
    pub generated_file: Option<bool>,
    pub too_large: Option<bool>,
    pub collapsed: Option<bool>,
}

/// `GET /projects/:id/repository/compare?from=..&to=..`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Compare {
    pub commit: Option<Commit>,
    #[serde(deserialize_with = "capped_list")]
    pub commits: Vec<Commit>,
    #[serde(deserialize_with = "capped_list")]
    pub diffs: Vec<Diff>,
    pub compare_timeout: Option<bool>,
    pub compare_same_ref: Option<bool>,
    pub web_url: Option<String>,
}

/// A note (comment) on an MR, issue or commit discussion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: u64,
    /// null, DiscussionNote or DiffNote.
    #[serde(rename = "type")]
    pub note_type: Option<String>,
    pub body: String,
    #[serde(default)]
    pub author: UserSummary,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// System notes are GitLab's own activity log ("added 1 commit"), never ours.
    #[serde(default)]
    pub system: bool,
    pub noteable_id: Option<u64>,
    /// MergeRequest, Issue, Commit, ...
    pub noteable_type: Option<String>,
    pub noteable_iid: Option<u64>,
    pub resolvable: Option<bool>,
    pub resolved: Option<bool>,
    pub resolved_by: Option<UserSummary>,
    pub confidential: Option<bool>,
    pub internal: Option<bool>,
}

/// A discussion thread: `GET .../merge_requests/:iid/discussions`, commit discussions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Discussion {
    pub id: String,
    #[serde(default)]
    pub individual_note: bool,
    #[serde(default, deserialize_with = "capped_list")]
    pub notes: Vec<Note>,
}

/// An issue (the weekly report is one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub id: u64,
    pub iid: u64,
    pub project_id: Option<u64>,
    #[serde(default)]
    pub title: String,
    pub description: Option<String>,
    /// opened or closed.
    #[serde(default)]
    pub state: String,
    #[serde(default, deserialize_with = "capped_list")]
    pub labels: Vec<String>,
    pub author: Option<UserSummary>,
    #[serde(default, deserialize_with = "capped_list")]
    pub assignees: Vec<UserSummary>,
    pub milestone: Option<Milestone>,
    pub confidential: Option<bool>,
    pub issue_type: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub closed_at: Option<String>,
    pub web_url: Option<String>,
    pub references: Option<References>,
    pub user_notes_count: Option<u64>,
}

/// A runner from `GET /runners`, `/runners/all`, `/projects/:id/runners` (short
/// form) or `GET /runners/:id` (details). Fleet JSON files use this shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runner {
    pub id: u64,
    pub description: Option<String>,
    pub name: Option<String>,
    /// Deprecated upstream in favour of `paused`.
    pub active: Option<bool>,
    pub paused: Option<bool>,
    pub is_shared: Option<bool>,
    pub runner_type: Option<String>,
    pub online: Option<bool>,
    /// online (contact within 2 h), offline, stale (> 7 days), never_contacted.
    pub status: Option<String>,
    pub ip_address: Option<String>,
    #[serde(default, deserialize_with = "capped_list")]
    pub tag_list: Vec<String>,
    pub run_untagged: Option<bool>,
    pub locked: Option<bool>,
    /// not_protected or ref_protected.
    pub access_level: Option<String>,
    /// Seconds; `null` when unlimited.
    pub maximum_timeout: Option<u64>,
    /// Only in `GET /runners/:id`.
    pub contacted_at: Option<String>,
    pub version: Option<String>,
    pub revision: Option<String>,
    pub platform: Option<String>,
    pub architecture: Option<String>,
    pub maintenance_note: Option<String>,
    #[serde(default, deserialize_with = "capped_list")]
    pub projects: Vec<ProjectSummary>,
    #[serde(default, deserialize_with = "capped_list")]
    pub groups: Vec<GroupSummary>,
}

/// Accepts a number, a numeric string or null: GitLab sends `coverage` as a float
/// on jobs and as a string on pipelines. Anything unparsable becomes `None` rather
/// than failing the whole response over a cosmetic field.
fn lenient_f64<'de, D>(deserializer: D) -> Result<Option<f64>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<NumOrStr>::deserialize(deserializer)? {
        Some(NumOrStr::Num(n)) => Some(n),
        Some(NumOrStr::Str(s)) => s.trim().parse().ok(),
        Some(NumOrStr::Other(_)) | None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_accepts_number_string_and_null() {
        let j: Job =
            serde_json::from_str(r#"{"id":1,"status":"success","coverage":"98.5"}"#).unwrap();
        assert_eq!(j.coverage, Some(98.5));
        let j: Job = serde_json::from_str(r#"{"id":1,"status":"success","coverage":12}"#).unwrap();
        assert_eq!(j.coverage, Some(12.0));
        let j: Job =
            serde_json::from_str(r#"{"id":1,"status":"success","coverage":null}"#).unwrap();
        assert_eq!(j.coverage, None);
        let j: Job =
            serde_json::from_str(r#"{"id":1,"status":"success","coverage":"n/a"}"#).unwrap();
        assert_eq!(j.coverage, None);
    }

    #[test]
    fn minimal_job_and_unknown_fields() {
        let j: Job = serde_json::from_str(
            r#"{"id":7,"status":"failed","name":"x","ref":"main","brand_new_field":[1]}"#,
        )
        .unwrap();
        assert_eq!(j.id, 7);
        assert_eq!(j.git_ref, "main");
        assert!(j.tag_list.is_empty());
        assert!(j.runner.is_none());
    }

    #[test]
    fn an_object_without_what_identifies_it_is_refused() {
        for text in ["{}", r#"{"id":7}"#, r#"{"status":"failed"}"#] {
            let e = serde_json::from_str::<Job>(text).unwrap_err().to_string();
            assert!(e.starts_with("missing field"), "{text}: {e}");
        }
        assert!(serde_json::from_str::<Note>(r#"{"id":1}"#).is_err());
        assert!(serde_json::from_str::<Runner>("{}").is_err());
        assert!(serde_json::from_str::<Pipeline>(r#"{"id":1}"#).is_err());
        let many = format!(
            r#"{{"id":1,"status":"failed","tag_list":[{}]}}"#,
            vec!["\"t\""; 1001].join(",")
        );
        let e = serde_json::from_str::<Job>(&many).unwrap_err().to_string();
        assert!(e.contains("more than 1000 elements"), "{e}");
    }

    #[test]
    fn job_round_trips_with_ref_name() {
        let j: Job = serde_json::from_str(r#"{"id":7,"status":"failed","ref":"main"}"#).unwrap();
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(v["ref"], "main");
        let back: Job = serde_json::from_value(v).unwrap();
        assert_eq!(back, j);
    }
}
