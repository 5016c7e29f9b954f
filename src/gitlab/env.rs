//! The client settings every command that talks to GitLab shares: the URL
//! (`--gitlab-url`, else `CI_API_V4_URL`), the token, CA files and the hidden
//! `RUNNERIQ_HTTP_*` knobs, read in one place.

use std::time::Duration;

use super::client::{Client, ClientConfig};
use crate::error::InputError;

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The project from the environment: `CI_PROJECT_ID` (set in every GitLab CI
/// job), else RunnerIQ 6.x's `GITLAB_PROJECT_ID`. A `--project` flag is
/// checked before this by the caller.
pub fn project_from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    non_empty(lookup("CI_PROJECT_ID")).or_else(|| non_empty(lookup("GITLAB_PROJECT_ID")))
}

/// The GitLab URL of the environment as given (`CI_API_V4_URL`, else 6.x's
/// `GITLAB_URL`), for callers that only need to know which GitLab (a link
/// origin, whether one is configured at all).
pub fn url_from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    non_empty(lookup("CI_API_V4_URL")).or_else(|| non_empty(lookup("GITLAB_URL")))
}

/// The API client configuration of every command that talks to GitLab:
/// `--gitlab-url`/`CI_API_V4_URL` and the token from [`crate::gitlab::Token::from_env`].
///
/// Hidden knobs, read only here, so the end-to-end tests run in seconds (they
/// are not in `--help` because nobody should need them in production):
/// - `RUNNERIQ_HTTP_MAX_ATTEMPTS`: HTTP attempts per call (default 5);
/// - `RUNNERIQ_HTTP_INITIAL_BACKOFF_MS`: first retry wait (default 500);
/// - `RUNNERIQ_HTTP_MAX_RETRY_WAIT_MS`: cap on one wait, `Retry-After` included
///   (default 60000);
/// - `RUNNERIQ_HTTP_DEADLINE_S`: budget of one call, retries included (default 120).
pub fn client_config(
    url_flag: Option<String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ClientConfig, InputError> {
    let mut cfg = ClientConfig::from_lookup(url_flag, &lookup)?;
    let num = |k: &str| -> Result<Option<u64>, InputError> {
        match non_empty(lookup(k)) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| InputError(format!("{k}={v:?} is not a whole number"))),
        }
    };
    if let Some(n) = num("RUNNERIQ_HTTP_MAX_ATTEMPTS")? {
        cfg.max_attempts = u32::try_from(n.clamp(1, 20)).unwrap_or(20);
    }
    if let Some(ms) = num("RUNNERIQ_HTTP_INITIAL_BACKOFF_MS")? {
        cfg.initial_backoff = Duration::from_millis(ms);
    }
    if let Some(ms) = num("RUNNERIQ_HTTP_MAX_RETRY_WAIT_MS")? {
        cfg.max_retry_wait = Duration::from_millis(ms);
    }
    if let Some(s) = num("RUNNERIQ_HTTP_DEADLINE_S")? {
        cfg.deadline = Duration::from_secs(s.max(1));
    }
    Ok(cfg)
}

/// The API client of `--gitlab-url` / `CI_API_V4_URL` and the token, from
/// the process environment.
pub fn api_client(url_flag: Option<String>) -> anyhow::Result<Client> {
    let cfg = client_config(url_flag, |k| std::env::var(k).ok())?;
    Ok(Client::new(cfg)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn http_knobs() {
        let c = client_config(
            None,
            env(&[
                ("CI_API_V4_URL", "http://127.0.0.1:9/api/v4"),
                ("RUNNERIQ_HTTP_MAX_ATTEMPTS", "3"),
                ("RUNNERIQ_HTTP_INITIAL_BACKOFF_MS", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.initial_backoff, Duration::from_millis(5));
        let e = client_config(
            None,
            env(&[
                ("CI_API_V4_URL", "http://h/"),
                ("RUNNERIQ_HTTP_MAX_ATTEMPTS", "many"),
            ]),
        )
        .unwrap_err();
        assert!(e.0.contains("RUNNERIQ_HTTP_MAX_ATTEMPTS"));
    }

    // RunnerIQ 6.x's variables are read only when ours are absent.
    #[test]
    fn gitlab_url_is_a_fallback_after_the_flag_and_ci_api_v4_url() {
        let base = |flag: Option<&str>, pairs| {
            client_config(flag.map(str::to_string), env(pairs))
                .unwrap()
                .base_url
        };
        assert_eq!(
            base(None, &[("GITLAB_URL", "https://gitlab.example.com")]),
            "https://gitlab.example.com/api/v4"
        );
        assert_eq!(
            base(
                None,
                &[("GITLAB_URL", "https://gitlab.example.com/api/v4/")]
            ),
            "https://gitlab.example.com/api/v4"
        );
        assert_eq!(
            base(
                None,
                &[
                    ("CI_API_V4_URL", "https://ours.example.com/api/v4"),
                    ("GITLAB_URL", "https://old.example.com")
                ]
            ),
            "https://ours.example.com/api/v4"
        );
        assert_eq!(
            base(
                Some("https://flag.example.com"),
                &[("GITLAB_URL", "https://old.example.com")]
            ),
            "https://flag.example.com/api/v4"
        );
        // An empty CI_API_V4_URL (an unset CI variable) falls through.
        assert_eq!(
            base(
                None,
                &[
                    ("CI_API_V4_URL", " "),
                    ("GITLAB_URL", "https://old.example.com")
                ]
            ),
            "https://old.example.com/api/v4"
        );
        let e = client_config(None, env(&[])).unwrap_err();
        assert!(
            e.0.contains("GITLAB_URL") && e.0.contains("--gitlab-url"),
            "{}",
            e.0
        );
        assert_eq!(
            url_from_env(env(&[("GITLAB_URL", "https://old.example.com")])).as_deref(),
            Some("https://old.example.com")
        );
        assert_eq!(
            url_from_env(env(&[
                ("CI_API_V4_URL", "https://ours.example.com/api/v4"),
                ("GITLAB_URL", "https://old.example.com")
            ]))
            .as_deref(),
            Some("https://ours.example.com/api/v4")
        );
    }

    #[test]
    fn gitlab_project_id_is_a_fallback_after_ci_project_id() {
        assert_eq!(
            project_from_env(env(&[("GITLAB_PROJECT_ID", "7")])).as_deref(),
            Some("7")
        );
        assert_eq!(
            project_from_env(env(&[("CI_PROJECT_ID", "42"), ("GITLAB_PROJECT_ID", "7")]))
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            project_from_env(env(&[("CI_PROJECT_ID", ""), ("GITLAB_PROJECT_ID", " 7 ")]))
                .as_deref(),
            Some("7")
        );
        assert_eq!(project_from_env(env(&[])), None);
    }

    #[test]
    fn gitlab_token_is_read_after_runneriq_token_and_never_printed() {
        let token = |pairs| client_config(None, env(pairs)).unwrap().token;
        let t = token(&[
            ("GITLAB_URL", "https://h"),
            ("GITLAB_TOKEN", "glpat-old-secret"),
        ])
        .unwrap();
        assert_eq!(t.expose_secret(), "glpat-old-secret");
        assert_eq!(t.header_name(), "PRIVATE-TOKEN");
        let t = token(&[
            ("GITLAB_URL", "https://h"),
            ("RUNNERIQ_TOKEN", "glpat-ours"),
            ("GITLAB_TOKEN", "glpat-old-secret"),
        ])
        .unwrap();
        assert_eq!(t.expose_secret(), "glpat-ours");
        let cfg = client_config(
            None,
            env(&[
                ("GITLAB_URL", "https://h"),
                ("GITLAB_TOKEN", "glpat-old-secret"),
            ]),
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("glpat-old-secret"));
    }
}
