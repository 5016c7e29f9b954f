//! GitLab's `failure_reason` on a failed job: the reliable signal for
//! infrastructure failures, which the log may not even contain (a job that
//! never reached its script, a log cut at the runner's output limit).

/// The category a `failure_reason` decides on its own, or `None` when the
/// log must be read (`script_failure`, unknown values).
pub fn category_for(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "stuck_or_timeout_failure" | "job_execution_timeout" => "timeout",
        "runner_system_failure"
        | "runner_unsupported"
        | "scheduler_failure"
        | "data_integrity_failure"
        | "runner_configuration_error"
        | "runner_interrupted"
        | "api_failure"
        | "job_router_failure"
        | "unmet_prerequisites"
        | "stale_schedule" => "runner_system",
        "missing_dependency_failure" | "archived_failure" => "artifact_cache",
        "ci_quota_exceeded" | "reached_max_descendant_pipelines_depth" => "quota_rate_limit",
        "no_matching_runner" => "ci_config",
        "downstream_pipeline_creation_failed"
        | "invalid_bridge_trigger"
        | "upstream_bridge_project_not_found"
        | "downstream_bridge_project_not_found"
        | "insufficient_bridge_permissions"
        | "bridge_pipeline_is_child_pipeline"
        | "project_deleted"
        | "pipeline_loop_detected"
        | "insufficient_upstream_permissions"
        | "forward_deployment_failure"
        | "failed_outdated_deployment_job"
        | "deployments_limit_exceeded"
        | "environment_creation_failure"
        | "protected_environment_failure" => {
            if reason.contains("deploy") || reason.contains("environment") {
                "deploy_release"
            } else {
                "ci_config"
            }
        }
        "secrets_provider_not_found" | "user_blocked" => "permission_auth",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_failures_are_left_to_the_log() {
        assert_eq!(category_for("script_failure"), None);
        assert_eq!(category_for("unknown_failure"), None);
        assert_eq!(category_for("something_new_in_gitlab_20"), None);
    }

    #[test]
    fn infrastructure_reasons_map() {
        assert_eq!(category_for("runner_system_failure"), Some("runner_system"));
        assert_eq!(category_for("job_execution_timeout"), Some("timeout"));
        assert_eq!(
            category_for("forward_deployment_failure"),
            Some("deploy_release")
        );
        assert_eq!(
            category_for("insufficient_bridge_permissions"),
            Some("ci_config")
        );
    }
}
