//! The LLM fallback: a second opinion, asked only when the rules are unsure.
//!
//! - **When**: a provider is configured, `RUNNERIQ_LLM` is not `off`, and the
//!   rules' confidence is below `RUNNERIQ_LLM_THRESHOLD` (GitLab's
//!   `failure_reason` verdicts and empty logs are never sent). Without a
//!   provider nothing is ever sent and the rules' answer stands.
//! - **What is sent** ([`prompt`]): the job's name and stage, the rules'
//!   category, confidence and candidates, the failing step, the rules'
//!   evidence lines with context and the tail of the failing step (with their
//!   line numbers), the changed files; cut to a token budget, with every
//!   string redacted ([`redact`]) and the log delimited as untrusted data.
//! - **What is accepted**: one JSON object validated against the catalog's
//!   categories and the lines sent; its prose is redacted like the prompt
//!   (the model may echo a secret) and neutralised
//!   ([`crate::publish::sanitize::untrusted_text`]). Anything else leaves the
//!   rules' answer in place, with the reason recorded (redacted too).
//! - **Budgets** ([`budget`]): tokens per run and per UTC day; timeouts and
//!   bounded retries ([`provider`]). After a timeout or an unreachable
//!   endpoint, later jobs of the same run are not sent.

pub mod budget;
pub mod prompt;
pub mod provider;
pub mod redact;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::classify::{Catalog, Classification, ContextLine, DecidedBy, Evidence};
use crate::error::InputError;
use crate::publish::sanitize;

pub use budget::Budget;
pub use prompt::{JobContext, Opinion};
pub use provider::{
    ApiKey, CallError, Completion, HttpConfig, HttpProvider, Prompt, Provider, ProviderKind,
};
pub use redact::Redactor;

/// Lines of the failing step's end asked from the classifier for the prompt.
pub const TAIL_LINES: usize = 60;
pub const DEFAULT_THRESHOLD: f64 = 0.5;
pub const DEFAULT_MAX_TOKENS_RUN: u64 = 20_000;
pub const DEFAULT_MAX_TOKENS_DAY: u64 = 200_000;
pub const DEFAULT_TIMEOUT_S: u64 = 30;
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// Small, fast and cheap: classification needs no more.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-haiku-4-5";
/// OpenAI's small model; self-hosted servers need `RUNNERIQ_LLM_MODEL`.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

/// The provider to call. `Debug` hides the key and any credentials in the
/// endpoint URL (`https://user:pass@host`).
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Full endpoint URL.
    pub endpoint: String,
    pub api_key: Option<ApiKey>,
    pub model: String,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field(
                "endpoint",
                &redact::Redactor::new(Vec::<String>::new()).line(&self.endpoint),
            )
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .finish()
    }
}

/// Everything the fallback reads from the environment. `Debug` never shows
/// the API key.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// `None`: no provider configured, nothing is ever sent.
    pub provider: Option<ProviderConfig>,
    /// `RUNNERIQ_LLM=off`.
    pub off: bool,
    /// The LLM is asked when the rules' confidence is below this.
    pub threshold: f64,
    pub max_tokens_run: u64,
    pub max_tokens_day: u64,
    /// Budget of one job's call, retries included.
    pub timeout: Duration,
    /// Where `llm-usage.json` lives (per-day budget).
    pub state_dir: Option<PathBuf>,
}

fn is_http_url(u: &str) -> bool {
    let l = u.to_ascii_lowercase();
    (l.starts_with("https://") || l.starts_with("http://"))
        && u.len() > "http://".len() + 1
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl LlmConfig {
    /// From the process environment.
    pub fn from_env() -> Result<LlmConfig, InputError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any variable source. `RUNNERIQ_LLM_URL` (OpenAI-compatible) wins
    /// over `ANTHROPIC_API_KEY` when both are set: it is the RunnerIQ-specific
    /// setting, while an Anthropic key may be in a CI environment for other
    /// tools. Malformed values are input errors naming the variable (never
    /// echoing a URL or key).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<LlmConfig, InputError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let off = match get("RUNNERIQ_LLM").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if ["off", "0", "false", "no", "none", "disabled"].contains(&v.as_str()) => {
                true
            }
            Some(v) if ["auto", "on", "1", "true", "yes"].contains(&v.as_str()) => false,
            Some(v) => {
                return Err(InputError(format!(
                    "RUNNERIQ_LLM={v:?}: expected `auto` or `off`"
                )));
            }
        };
        let model = get("RUNNERIQ_LLM_MODEL");
        let provider = if let Some(url) = get("RUNNERIQ_LLM_URL") {
            if !is_http_url(&url) {
                return Err(InputError(
                    "RUNNERIQ_LLM_URL is not an http(s) URL (expected a base URL such as \
                     http://host:8000/v1)"
                        .into(),
                ));
            }
            let base = url.trim_end_matches('/');
            let endpoint = if base.ends_with("/chat/completions") {
                base.to_string()
            } else {
                format!("{base}/chat/completions")
            };
            Some(ProviderConfig {
                kind: ProviderKind::OpenAi,
                endpoint,
                api_key: get("RUNNERIQ_LLM_KEY").map(ApiKey::new),
                model: model.unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_string()),
            })
        } else if let Some(key) = get("ANTHROPIC_API_KEY") {
            let base =
                get("ANTHROPIC_BASE_URL").unwrap_or_else(|| DEFAULT_ANTHROPIC_BASE_URL.into());
            if !is_http_url(&base) {
                return Err(InputError(
                    "ANTHROPIC_BASE_URL is not an http(s) URL (expected e.g. \
                     https://api.anthropic.com)"
                        .into(),
                ));
            }
            let base = base.trim_end_matches('/');
            let endpoint = if base.ends_with("/v1/messages") {
                base.to_string()
            } else if base.ends_with("/v1") {
                format!("{base}/messages")
            } else {
                format!("{base}/v1/messages")
            };
            Some(ProviderConfig {
                kind: ProviderKind::Anthropic,
                endpoint,
                api_key: Some(ApiKey::new(key)),
                model: model.unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.to_string()),
            })
        } else {
            None
        };
        let threshold = match get("RUNNERIQ_LLM_THRESHOLD") {
            None => DEFAULT_THRESHOLD,
            Some(v) => match v.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => x,
                _ => {
                    return Err(InputError(format!(
                        "RUNNERIQ_LLM_THRESHOLD={v:?}: expected a number from 0 to 1"
                    )));
                }
            },
        };
        let whole = |k: &str, default: u64| -> Result<u64, InputError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| InputError(format!("{k}={v:?} is not a whole number"))),
            }
        };
        let max_tokens_run = whole("RUNNERIQ_LLM_MAX_TOKENS_RUN", DEFAULT_MAX_TOKENS_RUN)?;
        let max_tokens_day = whole("RUNNERIQ_LLM_MAX_TOKENS_DAY", DEFAULT_MAX_TOKENS_DAY)?;
        let timeout = match get("RUNNERIQ_LLM_TIMEOUT_S") {
            None => Duration::from_secs(DEFAULT_TIMEOUT_S),
            Some(v) => match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
                _ => {
                    return Err(InputError(format!(
                        "RUNNERIQ_LLM_TIMEOUT_S={v:?}: expected seconds (0 < s ≤ 3600)"
                    )));
                }
            },
        };
        let state_dir = get("RUNNERIQ_STATE_DIR")
            .map(PathBuf::from)
            .or_else(|| get("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("runneriq")))
            .or_else(|| get("HOME").map(|d| PathBuf::from(d).join(".cache/runneriq")));
        Ok(LlmConfig {
            provider,
            off,
            threshold,
            max_tokens_run,
            max_tokens_day,
            timeout,
            state_dir,
        })
    }

    /// A provider is configured and the fallback is not switched off.
    pub fn active(&self) -> bool {
        !self.off && self.provider.is_some()
    }
}

/// `scheme://host[:port]` of a URL (lower-cased), e.g. the GitLab web origin
/// from `CI_API_V4_URL`: the only host the LLM's text may link to.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// What asking gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Consultation {
    /// A valid answer (see [`Opinion::taken`]).
    Answered(Opinion),
    /// No usable answer; the rules' answer stands. One sentence fragment.
    Unavailable(String),
}

impl Consultation {
    /// The field added to a `classify --format json` object: `llm` or
    /// `llm_unavailable`.
    pub fn json_field(&self) -> (&'static str, serde_json::Value) {
        match self {
            Consultation::Answered(o) => (
                "llm",
                serde_json::to_value(o).unwrap_or(serde_json::Value::Null),
            ),
            Consultation::Unavailable(r) => ("llm_unavailable", r.clone().into()),
        }
    }

    /// Lines for the terminal rendering of `classify` (indented, plain).
    pub fn text(&self) -> String {
        let mut out = String::new();
        match self {
            Consultation::Answered(o) if o.taken => {
                let _ = writeln!(out, "  LLM ({} {}): {}", o.provider, o.model, o.summary);
                let _ = writeln!(out, "  suggested fix (LLM): {}", o.suggested_fix);
            }
            Consultation::Answered(o) => {
                let _ = writeln!(
                    out,
                    "  LLM ({} {}) not used: {}",
                    o.provider,
                    o.model,
                    o.reason.as_deref().unwrap_or("")
                );
            }
            Consultation::Unavailable(r) => {
                let _ = writeln!(out, "  LLM unavailable: {r}; the rules' answer stands");
            }
        }
        out
    }
}

/// The fallback for one run: provider, budgets, redaction, validation.
pub struct Fallback {
    provider: Box<dyn Provider>,
    threshold: f64,
    budget: Budget,
    redactor: Redactor,
    /// Catalog `(id, title)`, for the prompt.
    categories: Vec<(String, String)>,
    /// Category ids an answer may give (`unknown` included).
    allowed: Vec<String>,
    gitlab_origin: Option<String>,
    /// Set after a failure that makes further calls pointless.
    broken: Option<String>,
    /// Requests sent so far.
    sent: u32,
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback")
            .field("provider", &self.provider.name())
            .field("model", &self.provider.model())
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl Fallback {
    /// The fallback of `cfg` over HTTP, or `None` when no provider is
    /// configured or it is switched off. `secrets` (RunnerIQ's GitLab token)
    /// are redacted by value, as is the LLM key.
    pub fn from_config(
        cfg: &LlmConfig,
        catalog: &Catalog,
        secrets: &[&str],
        gitlab_origin: Option<String>,
    ) -> Option<Fallback> {
        if !cfg.active() {
            return None;
        }
        let p = cfg.provider.as_ref()?;
        let provider = HttpProvider::new(HttpConfig {
            kind: p.kind,
            endpoint: p.endpoint.clone(),
            api_key: p.api_key.clone(),
            model: p.model.clone(),
            timeout: cfg.timeout,
        });
        let mut all: Vec<&str> = secrets.to_vec();
        if let Some(k) = &p.api_key {
            all.push(k.expose_secret());
        }
        Some(Fallback::with_provider(
            Box::new(provider),
            cfg,
            catalog,
            &all,
            gitlab_origin,
        ))
    }

    /// A fallback over any provider (tests inject one).
    pub fn with_provider(
        provider: Box<dyn Provider>,
        cfg: &LlmConfig,
        catalog: &Catalog,
        secrets: &[&str],
        gitlab_origin: Option<String>,
    ) -> Fallback {
        let categories: Vec<(String, String)> = catalog
            .categories
            .iter()
            .map(|c| (c.id.clone(), c.title.clone()))
            .collect();
        let mut allowed: Vec<String> = categories.iter().map(|(id, _)| id.clone()).collect();
        allowed.push("unknown".to_string());
        Fallback {
            provider,
            threshold: cfg.threshold,
            budget: Budget::new(
                cfg.max_tokens_run,
                cfg.max_tokens_day,
                cfg.state_dir.clone(),
            ),
            redactor: Redactor::new(secrets.iter().copied()),
            categories,
            allowed,
            gitlab_origin,
            broken: None,
            sent: 0,
        }
    }

    /// Would this verdict be sent? Unsure rules only; never GitLab's own
    /// `failure_reason` verdicts, never an empty log.
    pub fn wants(&self, c: &Classification) -> bool {
        c.confidence < self.threshold
            && matches!(c.decided_by, DecidedBy::Rules | DecidedBy::None)
            && c.log.bytes > 0
    }

    /// Prompts sent in this run.
    pub fn requests_sent(&self) -> u32 {
        self.sent
    }

    /// Warnings (the per-day budget's state file), each given once.
    pub fn take_warnings(&mut self) -> Vec<String> {
        self.budget.take_warnings()
    }

    /// The prompt that would be sent for `c` (redacted), for tests and docs.
    pub fn preview(&self, c: &Classification, ctx: &JobContext<'_>) -> prompt::Built {
        prompt::build(c, ctx, &self.categories, &self.redactor)
    }

    /// Asks for a second opinion when the rules are unsure. `None`: not asked
    /// (the rules were sure enough). A taken answer rewrites `c`: category,
    /// title, advice, confidence, `decided_by: llm`, and the lines the LLM
    /// cited first in the evidence.
    ///
    /// Every text of the result (the answer's summary and fix, why it was not
    /// taken, why there is no answer, which may quote the answer) is redacted
    /// like the prompt: the model may echo a secret it was given or guessed,
    /// and the result goes into notes and JSON.
    pub fn consult(
        &mut self,
        ctx: &JobContext<'_>,
        c: &mut Classification,
        catalog: &Catalog,
    ) -> Option<Consultation> {
        let got = self.ask(ctx, c, catalog)?;
        Some(match got {
            Consultation::Answered(mut o) => {
                o.reason = o.reason.map(|r| self.redactor.text(&r));
                Consultation::Answered(o)
            }
            Consultation::Unavailable(why) => Consultation::Unavailable(self.redactor.text(&why)),
        })
    }

    /// The LLM's prose made safe to show: redacted, neutralised
    /// ([`sanitize::untrusted_text`]), and redacted once more (removing markup
    /// may have joined the pieces of a secret).
    fn answer_text(&self, text: &str) -> String {
        let origin = self.gitlab_origin.as_deref();
        let clean = sanitize::untrusted_text(&self.redactor.text(text), origin);
        self.redactor.text(&clean)
    }

    fn ask(
        &mut self,
        ctx: &JobContext<'_>,
        c: &mut Classification,
        catalog: &Catalog,
    ) -> Option<Consultation> {
        if !self.wants(c) {
            return None;
        }
        if let Some(why) = &self.broken {
            return Some(Consultation::Unavailable(format!(
                "not asked, as an earlier request of this run failed ({why})"
            )));
        }
        let built = self.preview(c, ctx);
        let prompt_tokens = built.estimate();
        let reserve = prompt_tokens + u64::from(prompt::MAX_ANSWER_TOKENS);
        if let Err(why) = self.budget.check(reserve) {
            return Some(Consultation::Unavailable(why));
        }
        self.sent += 1;
        let answer = self.provider.complete(&Prompt {
            system: built.system.clone(),
            user: built.user.clone(),
            max_tokens: prompt::MAX_ANSWER_TOKENS,
        });
        let completion = match answer {
            Ok(a) => a,
            Err(e) => {
                if matches!(e, CallError::Timeout(_)) {
                    // It may have been processed (and billed) all the same.
                    self.budget.record(prompt_tokens);
                }
                let why = e.to_string();
                if e.is_fatal_for_run() {
                    self.broken = Some(why.clone());
                }
                return Some(Consultation::Unavailable(why));
            }
        };
        let used = completion.tokens.unwrap_or_else(|| {
            prompt_tokens + crate::llm::prompt::estimate_tokens(completion.text.chars().count())
        });
        self.budget.record(used);
        let a = match prompt::parse_answer(&completion.text, &self.allowed, &built.lines) {
            Ok(a) => a,
            Err(why) => return Some(Consultation::Unavailable(why)),
        };
        let summary = self.answer_text(&a.summary);
        let suggested_fix = self.answer_text(&a.suggested_fix);
        if summary.trim().is_empty() || suggested_fix.trim().is_empty() {
            return Some(Consultation::Unavailable(
                "the LLM's answer was invalid: its text was only markup".to_string(),
            ));
        }
        let reason = if a.category == "unknown" {
            Some("the LLM could not tell either (`unknown`)".to_string())
        } else if a.confidence < c.confidence {
            Some(format!(
                "the LLM was less sure ({:.2}) than the rules ({:.2})",
                a.confidence, c.confidence
            ))
        } else {
            None
        };
        let mut opinion = Opinion {
            provider: self.provider.name().to_string(),
            model: self.provider.model().to_string(),
            category: a.category.clone(),
            confidence: round3(a.confidence),
            summary,
            suggested_fix,
            evidence_lines: a.evidence_lines.clone(),
            taken: reason.is_none(),
            reason,
        };
        if opinion.taken {
            if let Some(idx) = catalog.category(&a.category) {
                take(c, catalog, idx, &a);
            } else {
                opinion.taken = false;
                opinion.reason = Some("its category is not in the catalog".to_string());
            }
        }
        Some(Consultation::Answered(opinion))
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The innermost section around `line`.
fn section_at(c: &Classification, line: u64) -> Option<String> {
    c.log
        .sections
        .iter()
        .filter(|s| s.start_line <= line && s.end_line.is_none_or(|e| line <= e))
        .max_by_key(|s| s.start_line)
        .map(|s| s.name.clone())
}

/// Rewrites `c` with the LLM's verdict.
fn take(c: &mut Classification, catalog: &Catalog, idx: usize, a: &prompt::Answer) {
    let cat = &catalog.categories[idx];
    // Every line we know the text of (all were candidates for the prompt).
    let mut known: BTreeMap<u64, String> = BTreeMap::new();
    for l in &c.tail {
        known.insert(l.line, l.text.clone());
    }
    for e in &c.evidence {
        for l in e.before.iter().chain(e.after.iter()) {
            known.insert(l.line, l.text.clone());
        }
        known.insert(e.line, e.text.clone());
    }
    let around = |from: u64, to: u64| -> Vec<ContextLine> {
        (from..=to)
            .filter_map(|n| {
                known.get(&n).map(|t| ContextLine {
                    line: n,
                    text: t.clone(),
                })
            })
            .collect()
    };
    let keep = c.evidence.len().max(a.evidence_lines.len());
    let mut evidence: Vec<Evidence> = Vec::new();
    for &n in &a.evidence_lines {
        let Some(text) = known.get(&n) else { continue };
        evidence.push(Evidence {
            line: n,
            text: text.clone(),
            rule: "llm".to_string(),
            category: Some(cat.id.clone()),
            score: round3(a.confidence),
            section: section_at(c, n),
            before: around(n.saturating_sub(2).max(1), n.saturating_sub(1)),
            after: around(n + 1, n + 2),
        });
    }
    // Then the rules' own evidence (not the bare last lines they fell back
    // on: those were never evidence of anything).
    for e in c.evidence.iter().filter(|e| e.rule != "tail") {
        if evidence.len() >= keep {
            break;
        }
        if !evidence.iter().any(|x| x.line == e.line) {
            evidence.push(e.clone());
        }
    }
    evidence.truncate(keep);
    c.category = cat.id.clone();
    c.title = cat.title.clone();
    c.advice = cat.advice.clone();
    c.transient = cat.transient;
    c.confidence = round3(a.confidence);
    c.decided_by = DecidedBy::Llm;
    c.evidence = evidence;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{ClassifyOptions, classify_reader};
    use std::sync::{Arc, Mutex};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn config_from_the_environment() {
        let c = LlmConfig::from_lookup(env(&[])).unwrap();
        assert!(c.provider.is_none() && !c.active());
        assert_eq!(c.threshold, DEFAULT_THRESHOLD);
        assert_eq!(c.timeout, Duration::from_secs(30));

        let c = LlmConfig::from_lookup(env(&[
            ("ANTHROPIC_API_KEY", "sk-ant-api03-secretsecretsecret"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        let p = c.provider.as_ref().unwrap();
        assert_eq!(p.kind, ProviderKind::Anthropic);
        assert_eq!(p.endpoint, "https://api.anthropic.com/v1/messages");
        assert_eq!(p.model, DEFAULT_ANTHROPIC_MODEL);
        assert_eq!(
            c.state_dir.as_deref(),
            Some(std::path::Path::new("/home/u/.cache/runneriq"))
        );
        assert!(!format!("{c:?}").contains("secretsecret"), "{c:?}");

        let c = LlmConfig::from_lookup(env(&[
            ("ANTHROPIC_API_KEY", "k"),
            ("ANTHROPIC_BASE_URL", "http://proxy:8080/v1/"),
        ]))
        .unwrap();
        assert_eq!(
            c.provider.unwrap().endpoint,
            "http://proxy:8080/v1/messages"
        );

        let c = LlmConfig::from_lookup(env(&[
            ("ANTHROPIC_API_KEY", "k"),
            ("RUNNERIQ_LLM_URL", "http://host:8000/v1/"),
            ("RUNNERIQ_LLM_MODEL", "qwen2.5-7b"),
            ("RUNNERIQ_LLM_THRESHOLD", "0.7"),
            ("RUNNERIQ_LLM_MAX_TOKENS_RUN", "5000"),
            ("RUNNERIQ_LLM_TIMEOUT_S", "2.5"),
            ("XDG_CACHE_HOME", "/c"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        let p = c.provider.as_ref().unwrap();
        assert_eq!(p.kind, ProviderKind::OpenAi);
        assert_eq!(p.endpoint, "http://host:8000/v1/chat/completions");
        assert!(p.api_key.is_none());
        assert_eq!(p.model, "qwen2.5-7b");
        assert_eq!((c.threshold, c.max_tokens_run), (0.7, 5000));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(
            c.state_dir.as_deref(),
            Some(std::path::Path::new("/c/runneriq"))
        );

        let c = LlmConfig::from_lookup(env(&[("ANTHROPIC_API_KEY", "k"), ("RUNNERIQ_LLM", "off")]))
            .unwrap();
        assert!(c.provider.is_some() && !c.active());

        for (k, v) in [
            ("RUNNERIQ_LLM", "maybe"),
            ("RUNNERIQ_LLM_THRESHOLD", "2"),
            ("RUNNERIQ_LLM_MAX_TOKENS_DAY", "lots"),
            ("RUNNERIQ_LLM_TIMEOUT_S", "0"),
            ("RUNNERIQ_LLM_URL", "ftp://user:hunter2@x"),
        ] {
            let e = LlmConfig::from_lookup(env(&[(k, v)])).unwrap_err();
            assert!(e.0.contains(k), "{e}");
            assert!(!e.0.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://GitLab.example.com/api/v4").as_deref(),
            Some("https://gitlab.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("ftp://x/y"), None);
    }

    /// A provider that answers from a script and records prompts.
    struct Scripted {
        answers: Mutex<Vec<Result<Completion, CallError>>>,
        prompts: Arc<Mutex<Vec<Prompt>>>,
    }

    impl Provider for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn model(&self) -> &str {
            "m1"
        }
        fn complete(&self, p: &Prompt) -> Result<Completion, CallError> {
            self.prompts.lock().unwrap().push(p.clone());
            self.answers.lock().unwrap().remove(0)
        }
    }

    fn fallback(
        answers: Vec<Result<Completion, CallError>>,
        cfg: &LlmConfig,
    ) -> (Fallback, Arc<Mutex<Vec<Prompt>>>) {
        let prompts = Arc::new(Mutex::new(Vec::new()));
        let p = Scripted {
            answers: Mutex::new(answers),
            prompts: Arc::clone(&prompts),
        };
        let cat = Catalog::builtin().unwrap();
        let f = Fallback::with_provider(
            Box::new(p),
            cfg,
            &cat,
            &["glpat-own-token-0001"],
            Some("https://gitlab.example.com".into()),
        );
        (f, prompts)
    }

    fn cfg() -> LlmConfig {
        let mut c = LlmConfig::from_lookup(env(&[])).unwrap();
        c.state_dir = None;
        c
    }

    fn ok(text: &str) -> Result<Completion, CallError> {
        Ok(Completion {
            text: text.into(),
            tokens: Some(1000),
        })
    }

    const LOG: &str = "setting up\nexport TOKEN=glpat-own-token-0001\nweird thing: frobnicator exploded at src/x.c:3\nERROR: Job failed: exit code 1\n";

    fn unsure() -> Classification {
        let cat = Catalog::builtin().unwrap();
        let opts = ClassifyOptions {
            tail_lines: TAIL_LINES,
            ..Default::default()
        };
        let c = classify_reader(LOG.as_bytes(), &cat, &opts).unwrap();
        assert!(c.confidence < 0.5, "{c:?}");
        c
    }

    #[test]
    fn a_valid_answer_is_taken_and_rewrites_the_verdict() {
        let cat = Catalog::builtin().unwrap();
        let (mut f, prompts) = fallback(
            vec![ok(
                r#"{"category":"runtime_crash","summary":"The frobnicator crashed @all <b>x</b>","evidence_lines":[3],"suggested_fix":"See https://evil.example/x","confidence":0.7}"#,
            )],
            &cfg(),
        );
        let mut c = unsure();
        let ctx = JobContext::default();
        let got = f.consult(&ctx, &mut c, &cat).unwrap();
        let Consultation::Answered(o) = got else {
            panic!("{got:?}")
        };
        assert!(o.taken, "{o:?}");
        assert_eq!(c.category, "runtime_crash");
        assert_eq!(c.decided_by, DecidedBy::Llm);
        assert_eq!(c.evidence[0].line, 3);
        assert_eq!(c.evidence[0].rule, "llm");
        assert!(!o.summary.contains("@all") && !o.summary.contains("<b>"));
        assert_eq!(o.suggested_fix, "See [link removed]");
        let sent = &prompts.lock().unwrap()[0];
        assert!(!sent.user.contains("glpat-own-token-0001"), "{}", sent.user);
    }

    #[test]
    fn answers_echoing_secrets_are_redacted() {
        let cat = Catalog::builtin().unwrap();
        let (mut f, _) = fallback(
            vec![
                // The own token by value, even split by markup that the
                // neutralising removes; a log secret by pattern.
                ok(
                    r#"{"category":"runtime_crash","summary":"It printed glpat-own-<b></b>token-0001 and AKIAIOSFODNN7EXAMPLE","evidence_lines":[3],"suggested_fix":"Rotate glpat-own-token-0001; mysql -uroot -phunter2secret","confidence":0.7}"#,
                ),
                // A refused answer's reason quotes its category.
                ok(
                    r#"{"category":"glpat-own-token-0001","summary":"x","evidence_lines":[3],"suggested_fix":"y","confidence":0.7}"#,
                ),
            ],
            &cfg(),
        );
        let ctx = JobContext::default();
        let Some(Consultation::Answered(o)) = f.consult(&ctx, &mut unsure(), &cat) else {
            panic!()
        };
        assert_eq!(
            o.summary,
            "It printed [REDACTED:token] and [REDACTED:aws-access-key-id]"
        );
        assert_eq!(
            o.suggested_fix,
            "Rotate [REDACTED:token]; mysql -uroot -p[REDACTED:secret]"
        );
        let Some(Consultation::Unavailable(why)) = f.consult(&ctx, &mut unsure(), &cat) else {
            panic!()
        };
        assert!(
            why.contains("\"[REDACTED:token]\" is not an allowed category"),
            "{why}"
        );
    }

    #[test]
    fn confident_rules_and_failure_reason_verdicts_are_not_sent() {
        let cat = Catalog::builtin().unwrap();
        let (mut f, prompts) = fallback(vec![], &cfg());
        let mut c = unsure();
        c.confidence = 0.9;
        c.decided_by = DecidedBy::Rules;
        assert!(f.consult(&JobContext::default(), &mut c, &cat).is_none());
        let mut c = unsure();
        c.decided_by = DecidedBy::FailureReason;
        assert!(f.consult(&JobContext::default(), &mut c, &cat).is_none());
        assert!(prompts.lock().unwrap().is_empty());
    }

    #[test]
    fn failures_leave_the_rules_answer_and_say_why() {
        let cat = Catalog::builtin().unwrap();
        let (mut f, prompts) = fallback(
            vec![
                ok("Sorry, I can't help with that."),
                ok(
                    r#"{"category":"unknown","summary":"No idea.","evidence_lines":[],"suggested_fix":"Read the log.","confidence":0.2}"#,
                ),
                Err(CallError::Timeout(Duration::from_secs(1))),
            ],
            &cfg(),
        );
        let ctx = JobContext::default();
        let before = unsure();
        let mut c = unsure();
        assert_eq!(
            f.consult(&ctx, &mut c, &cat),
            Some(Consultation::Unavailable(prompt::NOT_JSON.into()))
        );
        assert_eq!(c, before);
        let Some(Consultation::Answered(o)) = f.consult(&ctx, &mut c, &cat) else {
            panic!()
        };
        assert!(!o.taken && o.reason.as_deref().unwrap().contains("unknown"));
        assert_eq!(c, before);
        let Some(Consultation::Unavailable(why)) = f.consult(&ctx, &mut c, &cat) else {
            panic!()
        };
        assert!(why.contains("did not answer within 1 s"), "{why}");
        // After a timeout, later jobs are not sent.
        let Some(Consultation::Unavailable(why)) = f.consult(&ctx, &mut c, &cat) else {
            panic!()
        };
        assert!(why.contains("earlier request"), "{why}");
        assert_eq!(prompts.lock().unwrap().len(), 3);
        assert_eq!(c, before);
    }

    #[test]
    fn the_run_budget_stops_later_calls() {
        let cat = Catalog::builtin().unwrap();
        let mut config = cfg();
        let (f0, _) = fallback(vec![], &config);
        let need = f0.preview(&unsure(), &JobContext::default()).estimate()
            + u64::from(prompt::MAX_ANSWER_TOKENS);
        config.max_tokens_run = need + 10;
        let good = r#"{"category":"runtime_crash","summary":"Crash.","evidence_lines":[3],"suggested_fix":"Fix.","confidence":0.7}"#;
        let (mut f, prompts) = fallback(vec![ok(good), ok(good)], &config);
        let ctx = JobContext::default();
        assert!(matches!(
            f.consult(&ctx, &mut unsure(), &cat),
            Some(Consultation::Answered(_))
        ));
        let Some(Consultation::Unavailable(why)) = f.consult(&ctx, &mut unsure(), &cat) else {
            panic!()
        };
        assert!(why.contains("budget of this run"), "{why}");
        assert_eq!(prompts.lock().unwrap().len(), 1);
    }
}
