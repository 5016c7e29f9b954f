//! The client settings every command that talks to GitLab shares: the URL
//! (`--gitlab-url`, else `CI_API_V4_URL`), the token, CA files and the hidden
//! `RUNNERIQ_HTTP_*` knobs, read in one place.

use std::time::Duration;

use super::client::{Client, ClientConfig};
use crate::error::InputError;

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
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
}
