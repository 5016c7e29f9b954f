//! The HTTP agent for third-party endpoints (webhooks, carbon data). GitLab's
//! client (`gitlab::client`) and the LLM providers (`llm::provider`) build
//! their own, with their own retry rules.

use std::time::Duration;

/// An HTTP agent for third-party endpoints (webhooks, carbon data): no
/// redirects (a credential must not follow one), statuses as values, one
/// time budget per call.
pub fn plain_agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .user_agent(concat!("runneriq/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}
