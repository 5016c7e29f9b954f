//! LLM providers: the Anthropic Messages API and OpenAI-compatible chat
//! completions, over blocking HTTP (ureq), behind one [`Provider`] trait so
//! tests can inject their own.
//!
//! Retry policy (the GitLab client's, adapted): 429, 529 (Anthropic
//! "overloaded"), 500, 502, 503 and 504 are retried with exponential backoff
//! or the server's `Retry-After`, within a bounded number of attempts and a
//! total deadline; other 4xx are not retried; a timeout is not retried (the
//! deadline is spent, and the request may already be billed). Redirects are
//! not followed: the API key would go along.

use std::fmt;
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use ureq::Agent;

/// Largest response body read.
const MAX_BODY: u64 = 1024 * 1024;
/// Attempts per call, retries included.
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);

/// Which API shape to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// `POST {base}/chat/completions` with `Authorization: Bearer` (optional).
    OpenAi,
}

impl ProviderKind {
    /// The name used in outputs (`anthropic`, `openai`).
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
        }
    }
}

/// An API key. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The raw key, for the request header and for redaction only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One chat turn: a system prompt and the user's message.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// Cap on the answer's tokens.
    pub max_tokens: u32,
}

/// The model's text and the tokens the provider says it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// Input + output tokens, when the provider reported them.
    pub tokens: Option<u64>,
}

/// Why a call gave no answer. `Display` is a sentence fragment for notes and
/// JSON ("timed out after 30 s"); it never contains the API key.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// No answer within the time budget.
    Timeout(Duration),
    /// The endpoint answered with an error status (after retries, if retryable).
    Status { status: u16, detail: Option<String> },
    /// Connection, DNS or TLS failure.
    Transport(String),
    /// A 2xx answer without the expected shape.
    BadResponse(String),
    /// A redirect: not followed, the key would go along.
    Redirect(u16),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout(d) => write!(
                f,
                "the LLM did not answer within {} s (RUNNERIQ_LLM_TIMEOUT_S)",
                d.as_secs_f64().ceil()
            ),
            CallError::Status { status, detail } => {
                write!(f, "the LLM endpoint answered HTTP {status}")?;
                match status {
                    401 | 403 => f.write_str(" (check the API key)")?,
                    404 => f.write_str(" (check the URL and the model name)")?,
                    429 | 529 => f.write_str(" (rate limited or overloaded)")?,
                    _ => {}
                }
                if let Some(d) = detail {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            CallError::Transport(e) => write!(f, "the LLM endpoint could not be reached: {e}"),
            CallError::BadResponse(e) => write!(f, "the LLM's response was malformed: {e}"),
            CallError::Redirect(s) => write!(
                f,
                "the LLM endpoint redirected (HTTP {s}); not followed, check the base URL"
            ),
        }
    }
}

impl CallError {
    /// After this, asking again in the same run is pointless.
    pub fn is_fatal_for_run(&self) -> bool {
        match self {
            CallError::Timeout(_) | CallError::Transport(_) | CallError::Redirect(_) => true,
            CallError::Status { status, .. } => *status != 400 && *status != 413,
            CallError::BadResponse(_) => false,
        }
    }
}

/// Something that answers a prompt.
pub trait Provider: Send + Sync {
    /// `anthropic` or `openai` (or a test's name).
    fn name(&self) -> &str;
    fn model(&self) -> &str;
    fn complete(&self, prompt: &Prompt) -> Result<Completion, CallError>;
}

/// Where and how to call a provider.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub kind: ProviderKind,
    /// The full endpoint URL (`.../v1/messages` or `.../chat/completions`).
    pub endpoint: String,
    pub api_key: Option<ApiKey>,
    pub model: String,
    /// Budget of one call, retries and waits included.
    pub timeout: Duration,
}

/// A provider over HTTP.
pub struct HttpProvider {
    cfg: HttpConfig,
    agent: Agent,
}

impl fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProvider")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl HttpProvider {
    pub fn new(cfg: HttpConfig) -> HttpProvider {
        let agent_config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("runneriq/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpProvider {
            cfg,
            agent: Agent::new_with_config(agent_config),
        }
    }

    fn body(&self, prompt: &Prompt) -> Value {
        match self.cfg.kind {
            ProviderKind::Anthropic => json!({
                "model": self.cfg.model,
                "max_tokens": prompt.max_tokens,
                "temperature": 0,
                "system": prompt.system,
                "messages": [{"role": "user", "content": prompt.user}],
            }),
            ProviderKind::OpenAi => json!({
                "model": self.cfg.model,
                "max_tokens": prompt.max_tokens,
                "temperature": 0,
                "messages": [
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user},
                ],
            }),
        }
    }

    /// One HTTP attempt: the answer's status, `Retry-After` and body.
    fn send(
        &self,
        body: &[u8],
        remaining: Duration,
    ) -> Result<(u16, Option<Duration>, Vec<u8>), CallError> {
        let mut rb = self
            .agent
            .post(&self.cfg.endpoint)
            .header("accept", "application/json")
            .content_type("application/json");
        match (self.cfg.kind, &self.cfg.api_key) {
            (ProviderKind::Anthropic, key) => {
                rb = rb.header("anthropic-version", "2023-06-01");
                if let Some(k) = key {
                    rb = rb.header("x-api-key", k.expose_secret());
                }
            }
            (ProviderKind::OpenAi, Some(k)) => {
                rb = rb.header("authorization", &format!("Bearer {}", k.expose_secret()));
            }
            (ProviderKind::OpenAi, None) => {}
        }
        let resp = rb
            .config()
            .timeout_global(Some(remaining))
            .build()
            .send(body)
            .map_err(|e| self.transport(&e, remaining))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::gitlab::client::parse_retry_after(v, SystemTime::now()));
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_BODY)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    CallError::Timeout(self.cfg.timeout)
                } else {
                    CallError::Transport(self.scrub(&e.to_string()))
                }
            })?;
        Ok((status, retry_after, bytes))
    }

    fn transport(&self, e: &ureq::Error, _remaining: Duration) -> CallError {
        match e {
            ureq::Error::Timeout(_) => CallError::Timeout(self.cfg.timeout),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                CallError::Timeout(self.cfg.timeout)
            }
            other => CallError::Transport(self.scrub(&other.to_string())),
        }
    }

    /// Network text with the key removed, cut short.
    fn scrub(&self, text: &str) -> String {
        let mut t = text.to_string();
        if let Some(k) = &self.cfg.api_key {
            if !k.expose_secret().is_empty() {
                t = t.replace(k.expose_secret(), "***");
            }
        }
        let t: String = t
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        t.trim().to_string()
    }

    fn parse(&self, body: &[u8]) -> Result<Completion, CallError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| CallError::BadResponse("not JSON".to_string()))?;
        let (text, tokens) = match self.cfg.kind {
            ProviderKind::Anthropic => {
                let text = v["content"]
                    .as_array()
                    .and_then(|parts| {
                        parts
                            .iter()
                            .find(|p| p["type"].as_str().is_none_or(|t| t == "text"))
                    })
                    .and_then(|p| p["text"].as_str());
                let u = &v["usage"];
                let tokens = match (u["input_tokens"].as_u64(), u["output_tokens"].as_u64()) {
                    (None, None) => None,
                    (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
                };
                (text, tokens)
            }
            ProviderKind::OpenAi => {
                let text = v["choices"][0]["message"]["content"].as_str();
                let u = &v["usage"];
                let tokens = u["total_tokens"].as_u64().or_else(|| {
                    match (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()) {
                        (None, None) => None,
                        (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
                    }
                });
                (text, tokens)
            }
        };
        let text = text.ok_or_else(|| {
            CallError::BadResponse(match self.cfg.kind {
                ProviderKind::Anthropic => "no text in content[0]".to_string(),
                ProviderKind::OpenAi => "no choices[0].message.content".to_string(),
            })
        })?;
        Ok(Completion {
            text: text.to_string(),
            tokens,
        })
    }

    /// The provider's own error message, if the body has one.
    fn error_detail(&self, body: &[u8]) -> Option<String> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let msg = v["error"]["message"]
            .as_str()
            .or_else(|| v["error"].as_str())
            .or_else(|| v["message"].as_str())?;
        Some(self.scrub(msg)).filter(|m| !m.is_empty())
    }
}

impl Provider for HttpProvider {
    fn name(&self) -> &str {
        self.cfg.kind.name()
    }

    fn model(&self) -> &str {
        &self.cfg.model
    }

    fn complete(&self, prompt: &Prompt) -> Result<Completion, CallError> {
        let body = serde_json::to_vec(&self.body(prompt))
            .map_err(|e| CallError::BadResponse(format!("could not encode the request: {e}")))?;
        let start = Instant::now();
        let deadline = start + self.cfg.timeout;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(CallError::Timeout(self.cfg.timeout));
            }
            let (status, retry_after, bytes) = self.send(&body, remaining)?;
            if (200..300).contains(&status) {
                return self.parse(&bytes);
            }
            if (300..400).contains(&status) {
                return Err(CallError::Redirect(status));
            }
            let error = CallError::Status {
                status,
                detail: self.error_detail(&bytes),
            };
            let retryable = matches!(status, 429 | 500 | 502 | 503 | 504 | 529);
            if !retryable || attempt >= MAX_ATTEMPTS {
                return Err(error);
            }
            let wait = retry_after.unwrap_or_else(|| backoff(attempt));
            if Instant::now() + wait >= deadline {
                // Waiting would overrun the budget: report what the server said.
                return Err(error);
            }
            std::thread::sleep(wait);
        }
    }
}

/// `INITIAL_BACKOFF * 2^(attempt-1)` plus up to 25 % jitter.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = INITIAL_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(8));
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let frac = (h.finish() % 1000) as f64 / 4000.0;
    base + Duration::from_secs_f64(base.as_secs_f64() * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: ProviderKind) -> HttpProvider {
        HttpProvider::new(HttpConfig {
            kind,
            endpoint: "http://127.0.0.1:9/x".into(),
            api_key: Some(ApiKey::new("sk-test-key-123456")),
            model: "m".into(),
            timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn both_response_shapes_parse() {
        let a = provider(ProviderKind::Anthropic);
        let c = a
            .parse(br#"{"content":[{"type":"text","text":"{\"a\":1}"}],"usage":{"input_tokens":10,"output_tokens":5}}"#)
            .unwrap();
        assert_eq!(c.text, "{\"a\":1}");
        assert_eq!(c.tokens, Some(15));
        let o = provider(ProviderKind::OpenAi);
        let c = o
            .parse(br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#)
            .unwrap();
        assert_eq!((c.text.as_str(), c.tokens), ("hi", Some(10)));
        let c = o
            .parse(br#"{"choices":[{"message":{"content":"x"}}]}"#)
            .unwrap();
        assert_eq!(c.tokens, None);
        assert!(matches!(
            a.parse(br#"{"content":[]}"#),
            Err(CallError::BadResponse(_))
        ));
        assert!(matches!(o.parse(b"<html>"), Err(CallError::BadResponse(_))));
    }

    #[test]
    fn the_key_never_shows() {
        let p = provider(ProviderKind::OpenAi);
        assert!(!format!("{p:?}").contains("sk-test-key"));
        assert_eq!(
            p.scrub("bad key sk-test-key-123456\n"),
            "bad key ***".to_string()
        );
        let d = p
            .error_detail(
                br#"{"error":{"message":"Incorrect API key provided: sk-test-key-123456"}}"#,
            )
            .unwrap();
        assert!(!d.contains("sk-test-key"), "{d}");
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = CallError::Status {
            status: 401,
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            "the LLM endpoint answered HTTP 401 (check the API key)"
        );
        assert_eq!(
            CallError::Timeout(Duration::from_secs(30)).to_string(),
            "the LLM did not answer within 30 s (RUNNERIQ_LLM_TIMEOUT_S)"
        );
        assert!(backoff(1) >= INITIAL_BACKOFF && backoff(2) >= INITIAL_BACKOFF * 2);
    }
}
