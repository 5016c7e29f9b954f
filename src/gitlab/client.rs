//! Blocking GitLab REST API v4 client: authentication, pagination, retries with
//! backoff and rate-limit handling, and a time budget per call.
//!
//! RunnerIQ is a one-shot CLI running inside a CI job, so the client is blocking and
//! conservative: it never sends the token anywhere but the configured GitLab origin
//! (ureq's redirect handling would forward custom headers such as `PRIVATE-TOKEN`, so
//! redirects are followed here, by hand), it never re-sends a POST/PUT/DELETE that
//! GitLab may already have processed (no duplicate notes), and every call has a total
//! time budget so a struggling GitLab cannot hang a pipeline.

use std::fmt;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::http::{HeaderMap, Response};
use ureq::{Agent, Body};

use super::error::{ApiError, ApiErrorKind, TokenKind, excerpt};
use crate::error::InputError;

/// Largest JSON body read into memory (job lists with 100 entries are ~0.5 MB; MR
/// diffs can be a few MB). Streams (`get_reader`) have no limit.
const MAX_JSON_BODY: u64 = 64 * 1024 * 1024;
/// How much of an error body is read to find GitLab's `message`.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Redirect hops followed for one GET.
const MAX_REDIRECTS: usize = 5;
/// GitLab's maximum page size.
const PER_PAGE: &str = "100";

/// A GitLab credential. The secret is never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub enum Token {
    /// Personal, project or group access token: sent as `PRIVATE-TOKEN`.
    Private(String),
    /// `CI_JOB_TOKEN`: sent as `JOB-TOKEN`. It cannot read other jobs' traces nor
    /// write notes or issues.
    Job(String),
}

impl Token {
    /// The token the CLI uses by default: `RUNNERIQ_TOKEN`, then `GITLAB_TOKEN`
    /// (both access tokens), then `CI_JOB_TOKEN`. Empty values are skipped so an
    /// unset masked CI variable (which expands to "") falls through.
    pub fn from_env() -> Option<Token> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// `from_env` over any variable source, so config code and tests need not touch
    /// the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Token> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        get("RUNNERIQ_TOKEN")
            .or_else(|| get("GITLAB_TOKEN"))
            .map(Token::Private)
            .or_else(|| get("CI_JOB_TOKEN").map(Token::Job))
    }

    /// The HTTP header GitLab expects for this kind of token.
    pub fn header_name(&self) -> &'static str {
        match self {
            Token::Private(_) => "PRIVATE-TOKEN",
            Token::Job(_) => "JOB-TOKEN",
        }
    }

    /// Which kind of credential this is, for error messages that say what to change.
    pub fn kind(&self) -> TokenKind {
        match self {
            Token::Private(_) => TokenKind::Private,
            Token::Job(_) => TokenKind::Job,
        }
    }

    /// The raw secret. Named loudly so every use is easy to audit (redaction of
    /// logs before they go to an LLM needs it; nothing should print it).
    pub fn expose_secret(&self) -> &str {
        match self {
            Token::Private(s) | Token::Job(s) => s,
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Private(_) => f.write_str("Token::Private(***)"),
            Token::Job(_) => f.write_str("Token::Job(***)"),
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Everything the client needs; built once from flags/env and validated by
/// [`Client::new`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// API root, e.g. `https://gitlab.example.com/api/v4`; `/api/v4` is appended
    /// when missing, a trailing slash is removed.
    pub base_url: String,
    /// `None` works for public projects only; GitLab answers 401/404 otherwise.
    pub token: Option<Token>,
    /// Budget for DNS + TCP + TLS of one request.
    pub connect_timeout: Duration,
    /// Budget for the response headers of one request, and for each socket read
    /// after that (so a slow but live trace stream is not cut off).
    pub read_timeout: Duration,
    /// HTTP attempts per logical call, retries included.
    pub max_attempts: u32,
    /// Total wall-clock budget of one logical call (one page, for paginated calls),
    /// retries and waits included; a pipeline job must not hang on GitLab.
    pub deadline: Duration,
    /// Cap on one sleep between attempts, whatever `Retry-After` says.
    pub max_retry_wait: Duration,
    /// First backoff sleep; doubled on each retry (with a little jitter).
    pub initial_backoff: Duration,
    /// Lets GitLab admins see which tool is calling (`runneriq/<version>`).
    pub user_agent: String,
    /// The whole run's end: no call, retries included, goes beyond it (a CI
    /// job must finish before its own timeout). `None`: only `deadline`.
    pub run_deadline: Option<Instant>,
    /// PEM files whose certificates replace the built-in (Mozilla) roots, for
    /// a GitLab behind a private CA: `SSL_CERT_FILE` (the image's bundle),
    /// `CI_SERVER_TLS_CA_FILE` (written by the runner when it has
    /// `tls-ca-file`) and `RUNNERIQ_CA_FILE`, all together.
    pub ca_files: Vec<std::path::PathBuf>,
}

impl ClientConfig {
    /// Defaults suited to a CI job: 10 s connect, 30 s read, 5 attempts, 120 s per
    /// call, waits capped at 60 s, backoff from 0.5 s.
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            token: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_attempts: 5,
            deadline: Duration::from_secs(120),
            max_retry_wait: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(500),
            user_agent: concat!("runneriq/", env!("CARGO_PKG_VERSION")).to_string(),
            run_deadline: None,
            ca_files: Vec::new(),
        }
    }

    /// The base URL from `--gitlab-url`, else `CI_API_V4_URL` (set in every GitLab
    /// CI job), else RunnerIQ 6.x's `GITLAB_URL` (the instance, `/api/v4` added
    /// when missing), and the token from [`Token::from_env`]. Missing URL is a
    /// usage error.
    pub fn from_env(url_flag: Option<String>) -> Result<Self, InputError> {
        Self::from_lookup(url_flag, |k| std::env::var(k).ok())
    }

    /// `from_env` over any variable source (for config layering and tests).
    pub fn from_lookup(
        url_flag: Option<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, InputError> {
        let url = url_flag
            .filter(|u| !u.trim().is_empty())
            .or_else(|| lookup("CI_API_V4_URL").filter(|u| !u.trim().is_empty()))
            .or_else(|| lookup("GITLAB_URL").filter(|u| !u.trim().is_empty()))
            .ok_or_else(|| {
                InputError(
                    "no GitLab URL: pass --gitlab-url https://gitlab.example.com or run inside \
                     a GitLab CI job (which sets CI_API_V4_URL); GITLAB_URL is read last"
                        .to_string(),
                )
            })?;
        let base = normalize_base_url(&url).map_err(InputError)?;
        let mut cfg = ClientConfig::new(base);
        cfg.token = Token::from_lookup(&lookup);
        cfg.ca_files = ["SSL_CERT_FILE", "CI_SERVER_TLS_CA_FILE", "RUNNERIQ_CA_FILE"]
            .iter()
            .filter_map(|k| lookup(k).filter(|v| !v.trim().is_empty()))
            .map(std::path::PathBuf::from)
            .collect();
        Ok(cfg)
    }
}

/// One page-bounded listing. `truncated` is true when GitLab had more pages than
/// the caller allowed, so reports can say "at least N".
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub truncated: bool,
    /// Pages fetched.
    pub pages: usize,
    /// `x-total` of the first page, when GitLab sends it (it does not for
    /// `/projects/:id/jobs` nor above 10,000 records).
    pub total: Option<u64>,
}

/// Blocking GitLab API client. Cheap to clone; clones share the connection pool
/// and the request counter, and it is `Send + Sync` for use across threads.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    agent: Agent,
    config: ClientConfig,
    base_origin: Origin,
    requests: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.config.base_url)
            .field("token", &self.inner.config.token)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Only GET may be re-sent after the server could have seen the request.
    fn replay_safe(self) -> bool {
        self == Method::Get
    }
}

struct Req<'a> {
    method: Method,
    /// Absolute URL (query pairs are added separately).
    url: String,
    query: Vec<(String, String)>,
    body: Option<&'a [u8]>,
    /// Path for error messages.
    endpoint: &'a str,
    stream: bool,
    /// Streams: the total time for reading the body.
    body_budget: Option<Duration>,
}

enum Reply {
    Buffered { headers: HeaderMap, body: Vec<u8> },
    Stream(Response<Body>),
}

/// A failed attempt and whether another attempt may follow (with GitLab's
/// requested wait, if it gave one).
struct Failure {
    error: ApiError,
    retry: Option<Option<Duration>>,
}

/// Certificates of every PEM file; a file that can't be read or holds no
/// certificate is an input error naming it (silently trusting nothing would
/// fail later with an obscure TLS error).
fn load_roots(
    files: &[std::path::PathBuf],
) -> Result<Vec<ureq::tls::Certificate<'static>>, InputError> {
    let mut roots = Vec::new();
    for f in files {
        let pem = crate::input::read_at_most(f, 16 << 20).map_err(|e| {
            InputError(format!(
                "{}: cannot read CA certificates: {}",
                f.display(),
                crate::input::io_reason(&e)
            ))
        })?;
        let before = roots.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                roots.push(c);
            }
        }
        if roots.len() == before {
            return Err(InputError(format!(
                "{}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)",
                f.display()
            )));
        }
    }
    Ok(roots)
}

impl Client {
    /// Validates the base URL and builds the HTTP agent.
    pub fn new(mut config: ClientConfig) -> Result<Client, InputError> {
        config.base_url = normalize_base_url(&config.base_url).map_err(InputError)?;
        let base_origin = origin_of(&config.base_url)
            .ok_or_else(|| InputError(format!("invalid GitLab URL: {}", config.base_url)))?;
        let mut builder = Agent::config_builder();
        if !config.ca_files.is_empty() {
            let roots = load_roots(&config.ca_files)?;
            builder = builder.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                    .build(),
            );
        }
        let agent_config = builder
            .http_status_as_error(false)
            // Redirects are followed by hand so the token never leaves GitLab.
            .max_redirects(0)
            .user_agent(config.user_agent.as_str())
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.read_timeout))
            .timeout_per_write(Some(config.read_timeout))
            .build();
        let agent = Agent::new_with_config(agent_config);
        Ok(Client {
            inner: Arc::new(Inner {
                agent,
                config,
                base_origin,
                requests: AtomicU64::new(0),
            }),
        })
    }

    /// The normalized API root (ends with `/api/v4`, no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// The effective configuration (normalized base URL), e.g. to build web links.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// HTTP requests actually sent so far (retries and redirect hops included), to
    /// keep an eye on GitLab's per-user rate limit.
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// GET one JSON document, e.g. `/projects/123/pipelines/45`.
    pub fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let (_, body) = self.buffered(Method::Get, path, query, None)?;
        self.decode(Method::Get, path, &body)
    }

    /// GET every page of a list, at most `max_pages` pages of 100, dropping the
    /// truncation flag. Use [`Client::get_pages`] when "there was more" matters.
    pub fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        max_pages: usize,
    ) -> Result<Vec<T>, ApiError> {
        self.get_pages(path, query, max_pages).map(|p| p.items)
    }

    /// GET a list with offset pagination (`per_page=100` unless the caller set it),
    /// following `x-next-page`, or the `Link: rel="next"` URL when GitLab sends no
    /// `x-next-page` (keyset pagination). A Link to another origin is refused, as
    /// following it would send the token there. `max_pages` of 0 is treated as 1.
    /// The time budget applies to each page separately.
    pub fn get_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        max_pages: usize,
    ) -> Result<Page<T>, ApiError> {
        let mut items = Vec::new();
        let info = self.for_each_page(path, query, max_pages, |page: Vec<T>| {
            items.extend(page);
            true
        })?;
        Ok(Page {
            items,
            truncated: info.truncated,
            pages: info.pages,
            total: info.total,
        })
    }

    /// [`Client::get_pages`] one page at a time: `each` gets every page's
    /// items as they arrive and returns false to stop (e.g. past a time
    /// window), so a long listing never sits in memory whole. `truncated` is
    /// set when `max_pages` cut the listing, not when `each` stopped it.
    pub fn for_each_page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        max_pages: usize,
        mut each: impl FnMut(Vec<T>) -> bool,
    ) -> Result<Page<()>, ApiError> {
        let max_pages = max_pages.max(1);
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        if !q.iter().any(|(k, _)| k == "per_page") {
            q.push(("per_page".to_string(), PER_PAGE.to_string()));
        }
        // GitLab never sends more than `per_page` items: an answer with more
        // is refused while it is parsed, before it can fill the memory.
        let per_page: usize = q
            .iter()
            .find(|(k, _)| k == "per_page")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(100)
            .clamp(1, 100);
        let first_query = q.clone();
        let mut page: Page<()> = Page {
            items: Vec::new(),
            truncated: false,
            pages: 0,
            total: None,
        };
        let mut url = self.url_for(path);
        let mut seen: Vec<String> = Vec::new();
        loop {
            let req = Req {
                method: Method::Get,
                url: url.clone(),
                query: q.clone(),
                body: None,
                endpoint: path,
                stream: false,
                body_budget: None,
            };
            let Reply::Buffered { headers, body } = self.execute(&req)? else {
                return Err(self.error(ApiErrorKind::Decode, Method::Get, path, None));
            };
            let items: Vec<T> = self.decode_list(path, &body, per_page).map_err(|e| {
                let detail = e.detail.clone().unwrap_or_default();
                e.with_detail(Some(format!("page {}: {detail}", page.pages + 1)))
            })?;
            if page.pages == 0 {
                page.total = header_str(&headers, "x-total").and_then(|v| v.trim().parse().ok());
            }
            page.pages += 1;
            if !each(items) {
                return Ok(page);
            }

            let next = match header_str(&headers, "x-next-page") {
                Some(v) if v.trim().is_empty() => None,
                Some(v) => {
                    q = first_query.clone();
                    q.retain(|(k, _)| k != "page");
                    q.push(("page".to_string(), v.trim().to_string()));
                    Some(self.url_for(path))
                }
                None => match header_str(&headers, "link").and_then(|l| parse_link_next(&l)) {
                    None => None,
                    Some(link) => {
                        let abs = resolve_url(&self.inner.config.base_url, &link)
                            .filter(|u| origin_of(u).as_ref() == Some(&self.inner.base_origin));
                        let Some(abs) = abs else {
                            let shown = origin_label(&link);
                            return Err(self
                                .error(ApiErrorKind::UnsafeUrl, Method::Get, path, None)
                                .with_detail(self.clean(&format!(
                                    "the Link header's next page is on another origin ({shown}); \
                                     not sending the token there"
                                ))));
                        };
                        // The Link URL carries the whole query.
                        q.clear();
                        Some(abs)
                    }
                },
            };
            let Some(next) = next else {
                return Ok(page);
            };
            let key = format!("{next}?{q:?}");
            if page.pages >= max_pages || seen.contains(&key) {
                page.truncated = true;
                return Ok(page);
            }
            seen.push(key);
            url = next;
        }
    }

    /// GET a body as a stream, without buffering: job traces can be hundreds
    /// of MB. The time budget covers getting the response headers; reading
    /// the body is bounded by the per-read timeout and by `body_budget` in
    /// all (a trace that dribbles forever must not hang the job). The caller
    /// bounds the size.
    pub fn get_reader(
        &self,
        path: &str,
        body_budget: Option<Duration>,
    ) -> Result<Box<dyn Read + Send>, ApiError> {
        let req = Req {
            method: Method::Get,
            url: self.url_for(path),
            query: Vec::new(),
            body: None,
            endpoint: path,
            stream: true,
            body_budget,
        };
        match self.execute(&req)? {
            Reply::Stream(resp) => Ok(Box::new(resp.into_body().into_reader())),
            Reply::Buffered { body, .. } => Ok(Box::new(std::io::Cursor::new(body))),
        }
    }

    /// POST a JSON body. Retried only on 429 and connection failures, never after
    /// GitLab may have processed it.
    pub fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.send_json(Method::Post, path, body)
    }

    /// PUT a JSON body (e.g. edit a note in place). Same retry rules as POST.
    pub fn put_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.send_json(Method::Put, path, body)
    }

    /// DELETE a resource. Same retry rules as POST: a repeated DELETE would turn a
    /// success into a confusing 404.
    pub fn delete(&self, path: &str) -> Result<(), ApiError> {
        self.buffered(Method::Delete, path, &[], None).map(|_| ())
    }

    fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            self.error(ApiErrorKind::Decode, method, path, None)
                .with_detail(self.clean(&format!("could not encode the request body: {e}")))
        })?;
        let (_, resp) = self.buffered(method, path, &[], Some(&bytes))?;
        self.decode(method, path, &resp)
    }

    fn buffered(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<(HeaderMap, Vec<u8>), ApiError> {
        let req = Req {
            method,
            url: self.url_for(path),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            body,
            endpoint: path,
            stream: false,
            body_budget: None,
        };
        match self.execute(&req)? {
            Reply::Buffered { headers, body } => Ok((headers, body)),
            Reply::Stream(_) => Err(self.error(ApiErrorKind::Decode, method, path, None)),
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &[u8],
    ) -> Result<T, ApiError> {
        // 202/204 answers have no body; let `Option<T>`/`Value` callers see null.
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            body
        };
        serde_json::from_slice(body).map_err(|e| {
            self.error(ApiErrorKind::Decode, method, path, None)
                .with_detail(self.clean(&format!("JSON did not match the expected model: {e}")))
        })
    }

    /// A page: a JSON array of at most `max` items.
    fn decode_list<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
        max: usize,
    ) -> Result<Vec<T>, ApiError> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_slice(body);
        super::bounded::CappedSeq::new(max)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| {
                self.error(ApiErrorKind::Decode, Method::Get, path, None)
                    .with_detail(self.clean(&format!("JSON did not match the expected model: {e}")))
            })
    }

    fn url_for(&self, path: &str) -> String {
        let base = &self.inner.config.base_url;
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }

    fn token_kind(&self) -> Option<TokenKind> {
        self.inner.config.token.as_ref().map(Token::kind)
    }

    fn secret(&self) -> Option<&str> {
        self.inner.config.token.as_ref().map(Token::expose_secret)
    }

    /// Excerpt of network-provided text with the token scrubbed.
    fn clean(&self, text: &str) -> Option<String> {
        excerpt(text, self.secret())
    }

    fn error(
        &self,
        kind: ApiErrorKind,
        method: Method,
        path: &str,
        status: Option<u16>,
    ) -> ApiError {
        let mut e = ApiError::new(kind, method.as_str(), path).with_token(self.token_kind());
        if let Some(s) = status {
            e = e.with_status(s);
        }
        e
    }

    /// The retry loop around [`Client::attempt`].
    fn execute(&self, req: &Req<'_>) -> Result<Reply, ApiError> {
        let cfg = &self.inner.config;
        let start = Instant::now();
        // A configured "infinite" budget must not overflow Instant arithmetic.
        let mut deadline_at = start
            .checked_add(cfg.deadline)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        if let Some(run_end) = cfg.run_deadline {
            deadline_at = deadline_at.min(run_end);
        }
        let max_attempts = cfg.max_attempts.max(1);
        let mut attempt: u32 = 0;
        let mut last: Option<ApiError> = None;
        loop {
            if Instant::now() >= deadline_at {
                return Err(self.deadline_error(req, attempt, last.as_ref(), None));
            }
            attempt += 1;
            let failure = match self.attempt(req, deadline_at) {
                Ok(reply) => return Ok(reply),
                Err(f) => f,
            };
            let error = failure.error.with_attempts(attempt);
            let Some(hint) = failure.retry else {
                return Err(error);
            };
            if attempt >= max_attempts {
                return Err(error);
            }
            let wait = hint
                .unwrap_or_else(|| backoff(cfg.initial_backoff, attempt))
                .min(cfg.max_retry_wait);
            let remaining = deadline_at.saturating_duration_since(Instant::now());
            if wait >= remaining {
                let why = match hint {
                    Some(h) => format!(
                        "GitLab asked to wait {} s before retrying but only {} s of the budget \
                         remain",
                        h.as_secs_f64().ceil(),
                        remaining.as_secs()
                    ),
                    None => format!(
                        "no time left to retry after {}",
                        super::error::summary(&error)
                    ),
                };
                return Err(self.deadline_error(req, attempt, Some(&error), Some(why)));
            }
            std::thread::sleep(wait);
            last = Some(error);
        }
    }

    fn deadline_error(
        &self,
        req: &Req<'_>,
        attempts: u32,
        last: Option<&ApiError>,
        why: Option<String>,
    ) -> ApiError {
        let detail =
            why.or_else(|| last.map(|e| format!("last error: {}", super::error::summary(e))));
        let mut e = self
            .error(ApiErrorKind::Deadline, req.method, req.endpoint, None)
            .with_attempts(attempts)
            .with_budget(self.inner.config.deadline)
            .with_detail(detail);
        e.status = last.and_then(ApiError::status);
        e
    }

    /// One attempt: a request plus any same-method redirect hops.
    fn attempt(&self, req: &Req<'_>, deadline_at: Instant) -> Result<Reply, Failure> {
        let method = req.method;
        let mut url = req.url.clone();
        let mut query: &[(String, String)] = &req.query;
        for _ in 0..=MAX_REDIRECTS {
            let remaining = deadline_at.saturating_duration_since(Instant::now());
            // Redirects to another origin are refused below, so every URL
            // here is GitLab's: the check stays as a second line of defence.
            let send_token = origin_of(&url).as_ref() == Some(&self.inner.base_origin);
            let result = self.send_once(req, &url, query, send_token, remaining);
            let resp = match result {
                Ok(r) => r,
                Err(e) => return Err(self.transport_failure(req, &e, deadline_at)),
            };
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                if req.stream {
                    return Ok(Reply::Stream(resp));
                }
                let (parts, body) = resp.into_parts();
                return match body.into_with_config().limit(MAX_JSON_BODY).read_to_vec() {
                    Ok(bytes) => Ok(Reply::Buffered {
                        headers: parts.headers,
                        body: bytes,
                    }),
                    Err(ureq::Error::BodyExceedsLimit(_)) => Err(Failure {
                        error: self
                            .error(ApiErrorKind::Decode, method, req.endpoint, Some(status))
                            .with_detail(Some(format!(
                                "response body larger than {} MiB",
                                MAX_JSON_BODY / (1024 * 1024)
                            ))),
                        retry: None,
                    }),
                    Err(e) => Err(self.transport_failure(req, &e, deadline_at)),
                };
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) && method == Method::Get {
                let next =
                    header_str(resp.headers(), "location").and_then(|loc| resolve_url(&url, &loc));
                match next {
                    // An answer from another origin is not GitLab's: its
                    // content (an empty job list, a forged trace) must not be
                    // used, and it never gets the token.
                    Some(n) if origin_of(&n).as_ref() != Some(&self.inner.base_origin) => {
                        return Err(Failure {
                            error: self
                                .error(ApiErrorKind::UnsafeUrl, method, req.endpoint, Some(status))
                                .with_detail(self.clean(&format!(
                                    "GitLab redirected to another origin ({}); RunnerIQ only \
                                     reads answers from {} (the --gitlab-url or CI_API_V4_URL \
                                     origin): the redirect was refused",
                                    origin_label(&n),
                                    self.inner.base_origin.label()
                                ))),
                            retry: None,
                        });
                    }
                    Some(n) => {
                        url = n;
                        query = &[];
                        continue;
                    }
                    None => {
                        return Err(Failure {
                            error: self
                                .error(ApiErrorKind::UnsafeUrl, method, req.endpoint, Some(status))
                                .with_detail(Some(
                                    "redirect without a usable absolute Location".to_string(),
                                )),
                            retry: None,
                        });
                    }
                }
            }
            return Err(self.status_failure(req, resp));
        }
        Err(Failure {
            error: self
                .error(ApiErrorKind::Status, method, req.endpoint, None)
                .with_detail(Some(format!("more than {MAX_REDIRECTS} redirects"))),
            retry: None,
        })
    }

    fn send_once(
        &self,
        req: &Req<'_>,
        url: &str,
        query: &[(String, String)],
        send_token: bool,
        remaining: Duration,
    ) -> Result<Response<Body>, ureq::Error> {
        let cfg = &self.inner.config;
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let accept = if req.stream {
            "text/plain, */*"
        } else {
            "application/json"
        };
        let token = if send_token { cfg.token.as_ref() } else { None };
        let connect = cfg.connect_timeout.min(remaining);
        let headers_within = cfg.read_timeout.min(remaining);
        // A buffered call must finish within the budget; a stream only has to start.
        let whole_call = if req.stream { None } else { Some(remaining) };

        macro_rules! prepare {
            ($rb:expr) => {{
                let mut rb = $rb.header("accept", accept);
                if let Some(t) = token {
                    rb = rb.header(t.header_name(), t.expose_secret());
                }
                for (k, v) in query {
                    rb = rb.query(k, v);
                }
                rb.config()
                    .timeout_resolve(Some(connect))
                    .timeout_connect(Some(connect))
                    .timeout_recv_response(Some(headers_within))
                    .timeout_recv_body(req.body_budget)
                    .timeout_per_call(whole_call)
                    .build()
            }};
        }

        let agent = &self.inner.agent;
        match req.method {
            Method::Get => prepare!(agent.get(url)).call(),
            Method::Delete => prepare!(agent.delete(url)).call(),
            Method::Post => prepare!(agent.post(url))
                .content_type("application/json")
                .send(req.body.unwrap_or_default()),
            Method::Put => prepare!(agent.put(url))
                .content_type("application/json")
                .send(req.body.unwrap_or_default()),
        }
    }

    fn transport_failure(&self, req: &Req<'_>, e: &ureq::Error, deadline_at: Instant) -> Failure {
        let timed_out = matches!(e, ureq::Error::Timeout(_));
        let detail = self.clean(&e.to_string());
        if timed_out && Instant::now() + Duration::from_millis(50) >= deadline_at {
            return Failure {
                error: self
                    .error(ApiErrorKind::Deadline, req.method, req.endpoint, None)
                    .with_budget(self.inner.config.deadline)
                    .with_detail(self.clean(&format!("GitLab did not answer in time ({e})"))),
                retry: None,
            };
        }
        let retry = transport_retryable(req.method, e).then_some(None);
        Failure {
            error: self
                .error(ApiErrorKind::Transport, req.method, req.endpoint, None)
                .with_detail(detail),
            retry,
        }
    }

    fn status_failure(&self, req: &Req<'_>, resp: Response<Body>) -> Failure {
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let mut raw = Vec::new();
        // Best effort: the status alone is enough to report.
        let _ = body
            .into_reader()
            .take(MAX_ERROR_BODY)
            .read_to_end(&mut raw);
        let detail = gitlab_message(&String::from_utf8_lossy(&raw), self.secret())
            .filter(|m| !is_generic_status_text(m, status));
        let kind = match status {
            401 => ApiErrorKind::Unauthorized,
            403 => ApiErrorKind::Forbidden,
            404 => ApiErrorKind::NotFound,
            _ => ApiErrorKind::Status,
        };
        let retryable = match status {
            429 => true,
            500 | 502 | 503 | 504 => req.method.replay_safe(),
            _ => false,
        };
        let hint = if matches!(status, 429 | 503) {
            retry_hint(&parts.headers, SystemTime::now())
        } else {
            None
        };
        Failure {
            error: self
                .error(kind, req.method, req.endpoint, Some(status))
                .with_detail(detail),
            retry: retryable.then_some(hint),
        }
    }
}

/// Connection-phase failures are safe to retry for any method (the request never
/// reached GitLab); anything later only for GET.
fn transport_retryable(method: Method, e: &ureq::Error) -> bool {
    let before_sending = match e {
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        ureq::Error::Timeout(t) => matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        _ => false,
    };
    if before_sending {
        return true;
    }
    method.replay_safe()
        && matches!(
            e,
            ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::Protocol(_)
        )
}

/// Exponential backoff: `initial * 2^(attempt-1)`, plus up to 25 % jitter so
/// parallel jobs hitting the same GitLab do not retry in lockstep.
fn backoff(initial: Duration, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let base = initial.saturating_mul(1u32 << exp);
    let extra = Duration::try_from_secs_f64(base.as_secs_f64() * 0.25 * jitter_fraction())
        .unwrap_or(Duration::ZERO);
    base.saturating_add(extra)
}

/// A number in [0, 1) without a RNG dependency: std's `RandomState` is seeded
/// randomly per process and per instance.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() % 10_000) as f64 / 10_000.0
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// How long GitLab asked us to wait: `Retry-After` (seconds or HTTP-date), else
/// `RateLimit-Reset`.
fn retry_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(v) = header_str(headers, "retry-after") {
        if let Some(d) = parse_retry_after(&v, now) {
            return Some(d);
        }
    }
    header_str(headers, "ratelimit-reset").and_then(|v| parse_ratelimit_reset(&v, now))
}

/// `Retry-After: <seconds>` or `Retry-After: <IMF-fixdate>`; a date in the past
/// means "now". Unparsable values yield `None` (then the client's backoff applies).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// GitLab sends `RateLimit-Reset` as a Unix time; the IETF draft uses delta
/// seconds. Values that can only be timestamps (≥ 10^9) are read as such.
pub(crate) fn parse_ratelimit_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let n: u64 = value.trim().parse().ok()?;
    if n >= 1_000_000_000 {
        let at = UNIX_EPOCH.checked_add(Duration::from_secs(n))?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    } else {
        Some(Duration::from_secs(n))
    }
}

/// RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers
/// may generate. Hand-rolled because it is the one date this module needs and the
/// crate has no date dependency; the calendar maths is Hinnant's days_from_civil.
fn parse_http_date(v: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, month, year, hms, zone] = parts.as_slice() else {
        return None;
    };
    if *zone != "GMT" {
        return None;
    }
    let day: i64 = day.parse().ok()?;
    let month: i64 = match *month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = year.parse().ok()?;
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    if t.next().is_some()
        || !(1..=31).contains(&day)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&m)
        || !(0..=60).contains(&s)
        || year < 1970
    {
        return None;
    }
    // days_from_civil (Howard Hinnant), valid for the proleptic Gregorian calendar.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
pub(crate) fn parse_link_next(header: &str) -> Option<String> {
    parse_links(header)
        .into_iter()
        .find(|(_, rels)| rels.iter().any(|r| r == "next"))
        .map(|(url, _)| url)
}

/// `<url>; rel="a b"; x=y, <url2>; rel=c` → `[(url, [a, b]), (url2, [c])]`.
fn parse_links(header: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else { break };
        let url = after[..end].trim().to_string();
        let tail = &after[end + 1..];
        let params_end = tail.find('<').unwrap_or(tail.len());
        let mut rels = Vec::new();
        for param in tail[..params_end].split(';') {
            let param = param.trim().trim_end_matches(',').trim();
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("rel") {
                    rels.extend(
                        v.trim()
                            .trim_matches('"')
                            .split_whitespace()
                            .map(str::to_ascii_lowercase),
                    );
                }
            }
        }
        out.push((url, rels));
        rest = &tail[params_end..];
    }
    out
}

/// Scheme, host and port: the unit of trust for sending the token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// `https://gitlab.example.com:8443`, for messages.
    fn label(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Parses the origin of an absolute http(s) URL. URLs with userinfo are rejected:
/// GitLab never sends them and they are a classic way to disguise a host.
fn origin_of(url: &str) -> Option<Origin> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let port = match &authority[close + 1..] {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        (&authority[..=close], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(Origin {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// `scheme://authority` of a URL for messages, never its path or query (which may
/// carry someone's parameters). Callers still pass it through `Client::clean`.
fn origin_label(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if origin_of(url).is_some() => {
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            format!("{scheme}://{authority}")
        }
        _ => "an unparsable URL".to_string(),
    }
}

/// Resolves an absolute, scheme-relative (`//host/x`) or absolute-path (`/x`)
/// reference against `base`. Other relative forms are not used by GitLab and yield
/// `None`.
fn resolve_url(base: &str, reference: &str) -> Option<String> {
    let r = reference.trim();
    let lower = r.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(r.to_string());
    }
    let (scheme, rest) = base.split_once("://")?;
    if let Some(tail) = r.strip_prefix("//") {
        return Some(format!("{scheme}://{tail}"));
    }
    if r.starts_with('/') {
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        return Some(format!("{scheme}://{authority}{r}"));
    }
    None
}

/// Accepts `https://host`, `https://host/`, `https://host/prefix/api/v4/` and
/// returns `https://host[/prefix]/api/v4`.
pub(crate) fn normalize_base_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err("the GitLab URL is empty".to_string());
    }
    if origin_of(trimmed).is_none() {
        return Err(format!(
            "invalid GitLab URL {trimmed:?}: expected http(s)://host[:port][/path], without \
             user:password@"
        ));
    }
    if trimmed.contains(['?', '#']) {
        return Err(format!(
            "invalid GitLab URL {trimmed:?}: it must not contain a query or fragment"
        ));
    }
    if trimmed.ends_with("/api/v4") {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}/api/v4"))
    }
}

/// Percent-encodes a project path for use in a URL path segment
/// (`group/sub/project` → `group%2Fsub%2Fproject`), leaving numeric ids alone.
pub fn project_ref(id_or_path: &str) -> String {
    let s = id_or_path.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GitLab's error text: the `message` (string, or object of field errors) or the
/// `error`/`error_description` field of a JSON body; a short plain-text body as is;
/// nothing for HTML error pages from proxies.
fn gitlab_message(text: &str, secret: Option<&str>) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(t) {
        for key in ["message", "error", "error_description"] {
            match map.get(key) {
                Some(serde_json::Value::String(s)) => return excerpt(s, secret),
                Some(serde_json::Value::Null) | None => {}
                Some(other) => return excerpt(&other.to_string(), secret),
            }
        }
        return None;
    }
    if t.starts_with('<') {
        return None;
    }
    excerpt(t, secret)
}

/// `{"message":"404 Not Found"}` adds nothing to the status we already print.
fn is_generic_status_text(msg: &str, status: u16) -> bool {
    let generic = match status {
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        _ => return false,
    };
    msg.eq_ignore_ascii_case(generic)
}

#[cfg(test)]
mod tests {

    /// A self-signed CA made for this test (no private key kept).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBizCCATGgAwIBAgIUHfplhXRwPl0Aqg/fV+iokVMVug0wCgYIKoZIzj0EAwIw\nGzEZMBcGA1UEAwwQcnVubmVyaXEtdGVzdC1jYTAeFw0yNjExMjUyMTE3MzBaFw0z\nNjExMjIyMTE3MzBaMBsxGTAXBgNVBAMMEHJ1bm5lcmlxLXRlc3QtY2EwWTATBgcq\nhkjOPQIBBggqhkjOPQMBBwNCAAQ73TkOP5ssHAxq+MEARDtGwwrfnlcGB8JArsHA\n5Ofh7CvwvZLYQIqUkh8Rts6xU9w0EF+Y7DSKLB/jVQ5AtPy/o1MwUTAdBgNVHQ4E\nFgQU7tdQ4sysoh7jFi+LBZS5JxlBre4wHwYDVR0jBBgwFoAU7tdQ4sysoh7jFi+L\nBZS5JxlBre4wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiACM+LS\n9UgRgVtChLd5J443d193xSP+pDm5hNsUFOWnAQIhAJuZln2P07e/Be9QKKOKxIC/\nffoPRzgcrbPmhWqZk8n6\n-----END CERTIFICATE-----\n";

    #[test]
    fn ca_files_from_env_replace_the_roots() {
        let dir = std::env::temp_dir().join(format!("runneriq-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, TEST_CA).unwrap();
        let cfg = ClientConfig::from_lookup(Some("https://gitlab.example.com".into()), |k| {
            (k == "CI_SERVER_TLS_CA_FILE").then(|| good.display().to_string())
        })
        .unwrap();
        assert_eq!(cfg.ca_files, vec![good.clone()]);
        assert!(Client::new(cfg).is_ok());
        assert_eq!(load_roots(&[good.clone(), good.clone()]).unwrap().len(), 2);

        let bad = dir.join("not-a-cert.pem");
        std::fs::write(&bad, "hello").unwrap();
        let e = load_roots(std::slice::from_ref(&bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not-a-cert.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = load_roots(&[dir.join("missing.pem")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.pem: cannot read CA certificates: no such file"),
            "{e}"
        );
    }

    use super::*;

    #[test]
    fn project_ref_encodes_paths_and_keeps_ids() {
        assert_eq!(project_ref("123"), "123");
        assert_eq!(project_ref("group/project"), "group%2Fproject");
        assert_eq!(project_ref("a/b.c/d-e_f"), "a%2Fb.c%2Fd-e_f");
        assert_eq!(project_ref("g/p q"), "g%2Fp%20q");
        assert_eq!(project_ref("12/3"), "12%2F3");
    }

    #[test]
    fn link_header_next_is_found() {
        let h = r#"<https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=1&per_page=3>; rel="prev", <https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3>; rel="next", <https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=1&per_page=3>; rel="first", <https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3>; rel="last""#;
        assert_eq!(
            parse_link_next(h).as_deref(),
            Some("https://gitlab.example.com/api/v4/projects/8/issues/8/notes?page=3&per_page=3")
        );
    }

    #[test]
    fn link_header_variants() {
        assert_eq!(parse_link_next(""), None);
        assert_eq!(parse_link_next(r#"<http://a/x>; rel="first""#), None);
        // Unquoted, multiple rels, extra params, odd spacing.
        assert_eq!(
            parse_link_next(r#"<http://a/1>;rel=first,<http://a/2> ; title="x"; rel="last next""#)
                .as_deref(),
            Some("http://a/2")
        );
        // Keyset pagination: only next.
        assert_eq!(
            parse_link_next(r#"<http://a/jobs?cursor=abc%3D&pagination=keyset>; rel="next""#)
                .as_deref(),
            Some("http://a/jobs?cursor=abc%3D&pagination=keyset")
        );
        // Garbage does not panic.
        assert_eq!(parse_link_next("<<<>>>;;;,,,rel"), None);
        assert_eq!(parse_link_next("<http://unterminated"), None);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        // 1994-11-06 08:49:37 UTC = 784111777.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        // In the past → now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now),
            None
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 PST", now),
            None
        );
    }

    #[test]
    fn http_date_known_values() {
        let t = |s| {
            parse_http_date(s)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        assert_eq!(t("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(t("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(t("Thu, 01 Jan 2026 01:00:00 GMT"), Some(1_767_229_200));
    }

    #[test]
    fn ratelimit_reset_unix_or_delta() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_ratelimit_reset("1700000030", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_ratelimit_reset("1600000000", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_ratelimit_reset("5", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_ratelimit_reset("x", now), None);
    }

    #[test]
    fn retry_hint_prefers_retry_after() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", "1700000010".parse().unwrap());
        assert_eq!(retry_hint(&h, now), Some(Duration::from_secs(10)));
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_hint(&h, now), Some(Duration::from_secs(3)));
        assert_eq!(retry_hint(&HeaderMap::new(), now), None);
    }

    #[test]
    fn base_url_normalization() {
        let n = |s| normalize_base_url(s);
        assert_eq!(
            n("https://gitlab.com").unwrap(),
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            n("https://gitlab.com/").unwrap(),
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            n("https://gitlab.com/api/v4/").unwrap(),
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            n("http://127.0.0.1:8080/gitlab").unwrap(),
            "http://127.0.0.1:8080/gitlab/api/v4"
        );
        assert!(n("").is_err());
        assert!(n("gitlab.com").is_err());
        assert!(n("ftp://gitlab.com").is_err());
        assert!(n("https://user:pw@gitlab.com").is_err());
        assert!(n("https://gitlab.com/?x=1").is_err());
    }

    #[test]
    fn origins_compare_scheme_host_port() {
        let o = |s| origin_of(s);
        assert_eq!(o("https://GitLab.com/x"), o("https://gitlab.com:443/y?z"));
        assert_ne!(o("http://gitlab.com/"), o("https://gitlab.com/"));
        assert_ne!(o("http://127.0.0.1:1/"), o("http://127.0.0.1:2/"));
        assert_eq!(o("http://[::1]:80/a"), o("http://[::1]/b"));
        assert_eq!(o("http://evil@gitlab.com/"), None);
        assert_eq!(o("http://:80/"), None);
        assert_eq!(o("mailto:x"), None);
    }

    #[test]
    fn resolve_references() {
        let base = "http://127.0.0.1:9/api/v4";
        assert_eq!(
            resolve_url(base, "/api/v4/x?page=2").as_deref(),
            Some("http://127.0.0.1:9/api/v4/x?page=2")
        );
        assert_eq!(
            resolve_url(base, "//other:1/x").as_deref(),
            Some("http://other:1/x")
        );
        assert_eq!(resolve_url(base, "x?page=2"), None);
    }

    #[test]
    fn token_from_lookup_order_and_empties() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let t = Token::from_lookup(env(&[("GITLAB_TOKEN", "b"), ("RUNNERIQ_TOKEN", "a")]));
        assert_eq!(t, Some(Token::Private("a".into())));
        let t = Token::from_lookup(env(&[("RUNNERIQ_TOKEN", ""), ("CI_JOB_TOKEN", "j")]));
        assert_eq!(t, Some(Token::Job("j".into())));
        assert_eq!(Token::from_lookup(env(&[("RUNNERIQ_TOKEN", "  ")])), None);
        let shown = format!(
            "{:?} {}",
            Token::Private("glpat-S".into()),
            Token::Job("jt".into())
        );
        assert_eq!(shown, "Token::Private(***) Token::Job(***)");
    }

    #[test]
    fn config_from_lookup() {
        let c = ClientConfig::from_lookup(None, |k| {
            (k == "CI_API_V4_URL").then(|| "https://gitlab.example.com/api/v4".to_string())
        })
        .unwrap();
        assert_eq!(c.base_url, "https://gitlab.example.com/api/v4");
        assert!(c.token.is_none());
        let c = ClientConfig::from_lookup(Some("http://h:1/".into()), |_| None).unwrap();
        assert_eq!(c.base_url, "http://h:1/api/v4");
        let e = ClientConfig::from_lookup(None, |_| None).unwrap_err();
        assert!(e.0.contains("--gitlab-url"));
    }

    #[test]
    fn gitlab_messages() {
        assert_eq!(
            gitlab_message(r#"{"message":"403 Forbidden"}"#, None).as_deref(),
            Some("403 Forbidden")
        );
        assert_eq!(
            gitlab_message(r#"{"message":{"note":["is too long"]}}"#, None).as_deref(),
            Some(r#"{"note":["is too long"]}"#)
        );
        assert_eq!(
            gitlab_message(r#"{"error":"insufficient_scope","scope":"api"}"#, None).as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(gitlab_message("<html>502</html>", None), None);
        assert_eq!(
            gitlab_message(r#"{"message":"bad token glpat-Z"}"#, Some("glpat-Z")).as_deref(),
            Some("bad token ***")
        );
    }

    #[test]
    fn backoff_grows_and_jitters_boundedly() {
        let b1 = backoff(Duration::from_millis(100), 1);
        let b3 = backoff(Duration::from_millis(100), 3);
        assert!(b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(125));
        assert!(b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(500));
        // Huge attempt numbers do not overflow.
        let _ = backoff(Duration::from_secs(1), u32::MAX);
    }

    #[test]
    fn client_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Client>();
    }
}
