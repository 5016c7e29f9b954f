//! The one error type of the GitLab client.
//!
//! Every message names the HTTP method and the endpoint path (never the query string,
//! never the host's credentials, never the token) so a CI log line alone tells the
//! user what failed and what to do about it. Text that came from the network
//! (GitLab's `message`, transport errors, serde messages) is cut to a short excerpt
//! and scrubbed of the token value before it is stored here.

use std::fmt;
use std::time::Duration;

/// What went wrong, coarse enough for callers to branch on (a 404 for an optional
/// resource is often fine; a 401 never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 401: the token is missing, expired or revoked.
    Unauthorized,
    /// 403: the token is valid but lacks a scope or role.
    Forbidden,
    /// 404: missing, or invisible to this token (GitLab does not tell which).
    NotFound,
    /// Any other 4xx/5xx (after retries, when the status is retryable).
    Status,
    /// Network, DNS, TLS or timeout failure (after retries).
    Transport,
    /// The body was not the JSON we expected (or a request body could not be encoded).
    Decode,
    /// The call's total time budget ran out, or a `Retry-After` asked for more time
    /// than was left.
    Deadline,
    /// GitLab pointed us (Link header, redirect) at a URL we refuse to follow with
    /// the token, or at a URL we cannot parse.
    UnsafeUrl,
}

/// Which kind of credential was sent, so 401/403 messages can say what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Private,
    Job,
}

/// An error from one logical GitLab API call (including its retries).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub(crate) kind: ApiErrorKind,
    pub(crate) method: &'static str,
    pub(crate) endpoint: String,
    pub(crate) status: Option<u16>,
    /// Excerpt of GitLab's `message`/`error` field, or the transport/decode detail.
    pub(crate) detail: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) token: Option<TokenKind>,
    pub(crate) budget: Option<Duration>,
}

/// Longest excerpt of server-provided text kept in an error.
pub(crate) const EXCERPT_CHARS: usize = 200;

impl ApiError {
    pub(crate) fn new(kind: ApiErrorKind, method: &'static str, endpoint: &str) -> Self {
        ApiError {
            kind,
            method,
            endpoint: strip_query(endpoint).to_string(),
            status: None,
            detail: None,
            attempts: 0,
            token: None,
            budget: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_detail(mut self, detail: Option<String>) -> Self {
        self.detail = detail;
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    pub(crate) fn with_token(mut self, token: Option<TokenKind>) -> Self {
        self.token = token;
        self
    }

    pub(crate) fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The kind, for callers that treat e.g. 404 on an optional resource as "absent".
    pub fn kind(&self) -> ApiErrorKind {
        self.kind
    }

    /// The HTTP status GitLab answered with, if it answered at all.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// True for 404, which GitLab also returns for resources the token cannot see.
    pub fn is_not_found(&self) -> bool {
        self.kind == ApiErrorKind::NotFound
    }

    /// The HTTP method of the failed call.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The endpoint path (relative to the API base, without query string).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How many HTTP attempts were made before giving up.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn scope_needed(&self) -> &'static str {
        if self.method == "GET" || self.method == "HEAD" {
            "read_api"
        } else {
            "api"
        }
    }

    fn write_detail(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        if let Some(d) = &self.detail {
            write!(f, "{prefix}{d}")?;
        }
        Ok(())
    }

    fn write_gitlab_said(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, " (GitLab said: {d})"),
            None => Ok(()),
        }
    }

    fn write_attempts(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.method, self.endpoint)?;
        self.fmt_reason(f)
    }
}

/// The error without its `METHOD endpoint: ` prefix, for nesting one error's
/// reason inside another message about the same call.
pub(crate) fn summary(e: &ApiError) -> String {
    struct Reason<'a>(&'a ApiError);
    impl fmt::Display for Reason<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fmt_reason(f)
        }
    }
    Reason(e).to_string()
}

impl ApiError {
    fn fmt_reason(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ApiErrorKind::Unauthorized => {
                if self.token.is_none() {
                    f.write_str(
                        "401 Unauthorized: no token was sent — set RUNNERIQ_TOKEN to a project \
                         access token (scope read_api to read, api to post)",
                    )?;
                } else {
                    f.write_str(
                        "401 Unauthorized: the token was rejected (expired or revoked?) — set \
                         RUNNERIQ_TOKEN to a project access token",
                    )?;
                }
                self.write_gitlab_said(f)
            }
            ApiErrorKind::Forbidden => {
                let scope = self.scope_needed();
                match self.token {
                    Some(TokenKind::Job) => write!(
                        f,
                        "403 Forbidden: the request used CI_JOB_TOKEN, which cannot read other \
                         jobs' traces nor post notes or issues — set RUNNERIQ_TOKEN to a project \
                         access token with the {scope} scope"
                    )?,
                    Some(TokenKind::Private) => write!(
                        f,
                        "403 Forbidden: the token lacks permission — it needs the {scope} scope \
                         and a role on the project that allows this"
                    )?,
                    None => write!(
                        f,
                        "403 Forbidden: no token was sent — set RUNNERIQ_TOKEN to a project \
                         access token with the {scope} scope"
                    )?,
                }
                self.write_gitlab_said(f)
            }
            ApiErrorKind::NotFound => {
                f.write_str("404 not found (or the token cannot see it)")?;
                self.write_gitlab_said(f)
            }
            ApiErrorKind::Status => {
                match self.status {
                    Some(s) => write!(f, "HTTP {s}")?,
                    None => f.write_str("unexpected HTTP status")?,
                }
                self.write_attempts(f)?;
                self.write_detail(f, ": ")
            }
            ApiErrorKind::Transport => {
                f.write_str("network error")?;
                self.write_attempts(f)?;
                self.write_detail(f, ": ")
            }
            ApiErrorKind::Decode => {
                f.write_str("unexpected response from GitLab")?;
                self.write_detail(f, ": ")
            }
            ApiErrorKind::Deadline => {
                match self.budget {
                    Some(b) => write!(f, "gave up: time budget of {} exhausted", seconds(b))?,
                    None => f.write_str("gave up: time budget exhausted")?,
                }
                match self.attempts {
                    0 => {}
                    1 => f.write_str(" (1 attempt)")?,
                    n => write!(f, " ({n} attempts)")?,
                }
                self.write_detail(f, ": ")
            }
            ApiErrorKind::UnsafeUrl => {
                f.write_str("refused to follow a URL from GitLab's response")?;
                self.write_detail(f, ": ")
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// "120 s", "0.6 s": budgets are configured in whole seconds in production and
/// in fractions in tests; both should read naturally.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Drops `?query` and `#fragment`, which may carry caller-supplied values that do
/// not belong in logs.
pub(crate) fn strip_query(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// Cuts server text to a short single-line excerpt and removes the token value.
pub(crate) fn excerpt(text: &str, secret: Option<&str>) -> Option<String> {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if let Some(s) = secret.filter(|s| !s.is_empty()) {
        clean = clean.replace(s, "***");
    }
    let collapsed = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return Some(collapsed);
    }
    let mut cut: String = collapsed.chars().take(EXCERPT_CHARS).collect();
    cut.push('…');
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_short_single_line_and_redacted() {
        let long = format!("line1\nsecret glpat-X here {}", "y".repeat(500));
        let e = excerpt(&long, Some("glpat-X")).unwrap();
        assert!(!e.contains('\n'));
        assert!(!e.contains("glpat-X"));
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
        assert_eq!(excerpt("  \n ", None), None);
    }

    #[test]
    fn endpoint_never_keeps_query() {
        let e = ApiError::new(
            ApiErrorKind::NotFound,
            "GET",
            "/projects/1/jobs?private_token=x",
        );
        assert_eq!(e.endpoint(), "/projects/1/jobs");
        assert!(!e.to_string().contains("private_token"));
    }
}
