//! A fake GitLab API on loopback, for integration and end-to-end tests.
//!
//! Plain `std::net` HTTP/1.1: one accepting thread, one thread per connection, one
//! request per connection (`Connection: close`). It records every request, serves
//! registered JSON/list/text routes under `/api/v4`, injects faults, and lets tests
//! answer writes (POST/PUT/DELETE) dynamically. It is deliberately defensive: odd
//! input gets a 400, request sizes are bounded, and it never panics on what a client
//! sends.
//!
//! Route paths may be given relative to the API root (`/projects/1/jobs`) or in full
//! (`/api/v4/projects/1/jobs`); they are matched exactly against the raw
//! (still percent-encoded) request path, without the query string.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the fake mounts the API (as GitLab does).
pub const API_PREFIX: &str = "/api/v4";
const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Raw path as sent (percent-encoded, including `/api/v4`), without query.
    pub path: String,
    /// Raw query string (without `?`), empty if none.
    pub raw_query: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What `on_write` handlers receive.
pub type Request = RecordedRequest;

impl RecordedRequest {
    /// The path relative to the API root (`/projects/1/jobs`).
    pub fn api_path(&self) -> &str {
        self.path.strip_prefix(API_PREFIX).unwrap_or(&self.path)
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First query parameter with this (decoded) name.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (Null when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A scripted misbehaviour, consumed (in order) before the normal route answers.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and a GitLab-style JSON message.
    Status(u16),
    /// 429 with `Retry-After: <secs>` (and GitLab's RateLimit-* headers).
    RateLimited { retry_after_secs: u64 },
    /// 429 with only `RateLimit-Reset: <unix time now + secs>`.
    RateLimitReset { reset_in_secs: u64 },
    /// Read the request, then close the socket without answering.
    CloseConnection,
    /// Read the request, wait this long, then close without answering.
    Hang(Duration),
    /// Any response.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
}

/// How a list route paginates.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// Send `x-page`, `x-per-page`, `x-next-page`, `x-prev-page` (offset pagination).
    pub offset_headers: bool,
    /// Send `x-total` and `x-total-pages` (GitLab omits them above 10,000 records
    /// and on `/projects/:id/jobs`).
    pub total_headers: bool,
    /// Send a `Link` header with next/prev/first/last.
    pub link: bool,
    /// Origin (`http://host:port`) used in Link URLs instead of the fake's own,
    /// to test that a client refuses to follow links elsewhere.
    pub link_origin: Option<String>,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            offset_headers: true,
            total_headers: true,
            link: true,
            link_origin: None,
        }
    }
}

/// Answers a write: `(status, JSON body)`.
pub type WriteHandler = Box<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

enum Route {
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        content_type: &'static str,
        body: Arc<Vec<u8>>,
    },
    List {
        items: Vec<serde_json::Value>,
        options: ListOptions,
        /// Filter by `scope[]` against each item's `status` (jobs).
        scoped: bool,
    },
    /// A text body that never ends: `head`, then `chunk` every `every`.
    Dribble {
        head: Arc<Vec<u8>>,
        chunk: Arc<Vec<u8>>,
        every: Duration,
    },
}

#[derive(Default)]
struct State {
    routes: HashMap<(String, String), Arc<Route>>,
    faults: HashMap<String, VecDeque<Fault>>,
    writes: Vec<(String, String, Arc<WriteHandler>)>,
    requests: Vec<RecordedRequest>,
    token: Option<(String, String)>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the server for the others.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The fake server; it stops accepting when dropped.
pub struct FakeGitLab {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeGitLab {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start() -> FakeGitLab {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            addr,
        });
        let s = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let s2 = Arc::clone(&s);
                std::thread::spawn(move || serve_connection(stream, &s2));
            }
        });
        FakeGitLab {
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT/api/v4`
    pub fn base_url(&self) -> String {
        format!("{}{API_PREFIX}", self.origin())
    }

    /// `http://127.0.0.1:PORT` (what `--gitlab-url` would usually get).
    pub fn origin(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// From now on every request must carry `header: value`; others get 401.
    pub fn require_token(&self, header: &str, value: &str) {
        self.shared.lock().token = Some((header.to_ascii_lowercase(), value.to_string()));
    }

    /// A fixed JSON answer for `method path` (exact path, query ignored).
    pub fn route_json(&self, method: &str, path: &str, status: u16, body: impl Into<String>) {
        self.route_raw(method, path, status, Vec::new(), body.into().into_bytes());
    }

    /// `GET /version` answers as GitLab does (the shape of the example in
    /// GitLab's "Version API" docs), for this version string (`18.7.0-ee`).
    pub fn serve_version(&self, version: &str) {
        let body = serde_json::json!({
            "version": version,
            "revision": "4e963fe",
            "kas": {"enabled": true, "externalUrl": "grpc://gitlab.example.com:8150", "version": version.split('-').next()},
            "enterprise": version.ends_with("-ee"),
        });
        self.route_json("GET", "/version", 200, body.to_string());
    }

    /// A fixed answer with extra headers (e.g. `Location` for a redirect).
    pub fn route_raw(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) {
        self.insert(
            method,
            path,
            Route::Raw {
                status,
                headers,
                content_type: "application/json",
                body: Arc::new(body),
            },
        );
    }

    /// A paginated GET list honouring `page` and `per_page` (default 20, max 100),
    /// with GitLab's pagination headers and Link.
    pub fn route_list(&self, path: &str, items: serde_json::Value) {
        self.route_list_with(path, items, ListOptions::default());
    }

    /// `route_list` with control over which pagination headers are sent.
    pub fn route_list_with(&self, path: &str, items: serde_json::Value, options: ListOptions) {
        let items = match items {
            serde_json::Value::Array(a) => a,
            other => vec![other],
        };
        self.insert(
            "GET",
            path,
            Route::List {
                items,
                options,
                scoped: false,
            },
        );
    }

    /// A jobs list (`/projects/:id/jobs`) that honours `scope[]` as GitLab
    /// does: only the jobs whose `status` is one of the scopes asked for.
    pub fn route_jobs(&self, path: &str, items: serde_json::Value) {
        let items = match items {
            serde_json::Value::Array(a) => a,
            other => vec![other],
        };
        self.insert(
            "GET",
            path,
            Route::List {
                items,
                options: ListOptions::default(),
                scoped: true,
            },
        );
    }

    /// A plain-text GET body (e.g. a job trace).
    pub fn route_text(&self, path: &str, body: Vec<u8>) {
        self.insert(
            "GET",
            path,
            Route::Raw {
                status: 200,
                headers: Vec::new(),
                content_type: "text/plain; charset=utf-8",
                body: Arc::new(body),
            },
        );
    }

    /// A plain-text GET body that never ends (a trace streamed by a hostile or
    /// broken server): `head` at once, then `chunk` every `every`, until the
    /// client hangs up. No `Content-Length`: the body ends at the close.
    pub fn route_dribble(&self, path: &str, head: Vec<u8>, chunk: Vec<u8>, every: Duration) {
        self.insert(
            "GET",
            path,
            Route::Dribble {
                head: Arc::new(head),
                chunk: Arc::new(chunk),
                every,
            },
        );
    }

    /// Faults served (one per request, any method) before the route for `path`.
    pub fn fail_next(&self, path: &str, responses: Vec<Fault>) {
        self.shared
            .lock()
            .faults
            .entry(full_path(path))
            .or_default()
            .extend(responses);
    }

    /// Answers `method` requests whose path starts with `path_prefix` by calling
    /// `handler` (checked before fixed routes; later registrations win).
    pub fn on_write(&self, method: &str, path_prefix: &str, handler: WriteHandler) {
        self.shared.lock().writes.push((
            method.to_ascii_uppercase(),
            full_path(path_prefix),
            Arc::new(handler),
        ));
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Requests to `method path` (path relative to the API root or full).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        let p = full_path(path);
        self.requests()
            .into_iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == p)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    fn insert(&self, method: &str, path: &str, route: Route) {
        self.shared.lock().routes.insert(
            (method.to_ascii_uppercase(), full_path(path)),
            Arc::new(route),
        );
    }
}

impl Drop for FakeGitLab {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.shared.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// What GitLab stores for a `tag_list` parameter of `PUT /runners/:id`, as
/// far as a runner's tags go: the API coerces it with
/// `API::Validations::Types::CommaSeparatedToArray` (every array element, or
/// the string, split on `,` and each piece stripped), then
/// `Gitlab::Ci::Tags::TagList` drops blank names and duplicates. (GitLab's
/// parser also reads `"quoted, names"`; the fake does not.) `None` when the
/// value is neither an array nor a string.
pub fn gitlab_tag_list(value: &serde_json::Value) -> Option<Vec<String>> {
    let items: Vec<String> = match value {
        serde_json::Value::Array(a) => a
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        serde_json::Value::String(s) => vec![s.clone()],
        _ => return None,
    };
    let mut out: Vec<String> = Vec::new();
    for piece in items.iter().flat_map(|s| s.split(',')) {
        // Ruby's String#strip: ASCII whitespace and NUL.
        let t = piece.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0' || c == '\x0b');
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Some(out)
}

fn full_path(path: &str) -> String {
    let p = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    if p == API_PREFIX || p.starts_with(&format!("{API_PREFIX}/")) {
        p
    } else {
        format!("{API_PREFIX}{p}")
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    content_type: &'static str,
    body: Arc<Vec<u8>>,
}

impl Response {
    fn json(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: Arc::new(body.into().into_bytes()),
        }
    }

    fn message(status: u16) -> Response {
        let msg = format!("{status} {}", reason(status));
        Response::json(status, serde_json::json!({ "message": msg }).to_string())
    }
}

enum Action {
    Respond(Response),
    Close,
    Hang(Duration),
    Dribble {
        head: Arc<Vec<u8>>,
        chunk: Arc<Vec<u8>>,
        every: Duration,
    },
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let _ = stream.set_read_timeout(Some(SOCKET_TIMEOUT));
    let _ = stream.set_write_timeout(Some(SOCKET_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let action = match read_request(&mut reader, &mut writer) {
        Ok(Some(req)) => {
            let action = catch_unwind(AssertUnwindSafe(|| decide(&req, shared)))
                .unwrap_or_else(|_| Action::Respond(Response::message(500)));
            shared.lock().requests.push(req);
            action
        }
        Ok(None) => Action::Close,
        Err(status) => Action::Respond(Response::message(status)),
    };
    match action {
        Action::Respond(resp) => {
            let _ = write_response(&mut writer, &resp);
            let _ = writer.flush();
            let _ = writer.shutdown(Shutdown::Write);
            // Let the client read everything before the socket is dropped.
            drain_briefly(&mut reader);
        }
        Action::Close => {
            let _ = writer.shutdown(Shutdown::Both);
        }
        Action::Hang(d) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = writer.shutdown(Shutdown::Both);
        }
        Action::Dribble { head, chunk, every } => {
            let start = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                         Connection: close\r\n\r\n";
            if writer.write_all(start.as_bytes()).is_err() || writer.write_all(&head).is_err() {
                return;
            }
            // Until the client hangs up (a write fails) or the fake stops.
            while !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(every);
                if writer
                    .write_all(&chunk)
                    .and_then(|()| writer.flush())
                    .is_err()
                {
                    break;
                }
            }
            let _ = writer.shutdown(Shutdown::Both);
        }
    }
}

fn drain_briefly(reader: &mut BufReader<TcpStream>) {
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Parses one request. `Ok(None)`: the peer closed before sending anything.
/// `Err(status)`: malformed or too large.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> Result<Option<RecordedRequest>, u16> {
    let mut head_bytes = 0usize;
    let Some(request_line) = read_line(reader, &mut head_bytes)? else {
        return Ok(None);
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !version.starts_with("HTTP/1.") || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(400);
    }
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader, &mut head_bytes)? else {
            return Err(400);
        };
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(431);
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(400);
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let _ = writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let body =
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            read_chunked(reader)?
        } else if let Some(len) = get("content-length") {
            let len: usize = len.trim().parse().map_err(|_| 400u16)?;
            if len > MAX_BODY_BYTES {
                return Err(413);
            }
            let mut buf = vec![0u8; len];
            reader.read_exact(&mut buf).map_err(|_| 400u16)?;
            buf
        } else {
            Vec::new()
        };
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    Ok(Some(RecordedRequest {
        method: method.to_string(),
        path,
        query: parse_query(&raw_query),
        raw_query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

/// One CRLF- (or LF-) terminated line, bounded by the header budget.
fn read_line(reader: &mut BufReader<TcpStream>, used: &mut usize) -> Result<Option<String>, u16> {
    let mut buf = Vec::new();
    let budget = MAX_HEADER_BYTES.saturating_sub(*used) as u64 + 1;
    let n = reader
        .by_ref()
        .take(budget)
        .read_until(b'\n', &mut buf)
        .map_err(|_| 400u16)?;
    if n == 0 {
        return Ok(None);
    }
    *used += n;
    if *used > MAX_HEADER_BYTES || !buf.ends_with(b"\n") {
        return Err(431);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map(Some).map_err(|_| 400)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Result<Vec<u8>, u16> {
    let mut body = Vec::new();
    let mut used = 0usize;
    loop {
        let Some(size_line) = read_line(reader, &mut used)? else {
            return Err(400);
        };
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| 400u16)?;
        if size == 0 {
            // Trailers until the blank line.
            loop {
                match read_line(reader, &mut used)? {
                    Some(l) if !l.is_empty() => continue,
                    _ => return Ok(body),
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(413);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).map_err(|_| 400u16)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).map_err(|_| 400u16)?;
        if &crlf != b"\r\n" {
            return Err(400);
        }
    }
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hi = (bytes[i + 1] as char).to_digit(16).unwrap_or(0) as u8;
                let lo = (bytes[i + 2] as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hi * 16 + lo);
                i += 3;
                continue;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decide(req: &RecordedRequest, shared: &Shared) -> Action {
    let mut state = shared.lock();
    if let Some(q) = state.faults.get_mut(&req.path) {
        if let Some(fault) = q.pop_front() {
            return fault_action(fault);
        }
    }
    if let Some((name, value)) = &state.token {
        let ok = req.headers.iter().any(|(k, v)| k == name && v == value);
        if !ok {
            return Action::Respond(Response::message(401));
        }
    }
    let handler = state
        .writes
        .iter()
        .rev()
        .find(|(m, prefix, _)| *m == req.method && req.path.starts_with(prefix.as_str()))
        .map(|(_, _, h)| Arc::clone(h));
    if let Some(h) = handler {
        drop(state);
        let (status, body) = h(req);
        return Action::Respond(Response::json(status, body));
    }
    let route = state
        .routes
        .get(&(req.method.clone(), req.path.clone()))
        .cloned();
    drop(state);
    match route.as_deref() {
        Some(Route::Raw {
            status,
            headers,
            content_type,
            body,
        }) => Action::Respond(Response {
            status: *status,
            headers: headers.clone(),
            content_type,
            body: Arc::clone(body),
        }),
        Some(Route::List {
            items,
            options,
            scoped,
        }) => Action::Respond(list_page(req, items, options, *scoped, shared.addr)),
        Some(Route::Dribble { head, chunk, every }) => Action::Dribble {
            head: Arc::clone(head),
            chunk: Arc::clone(chunk),
            every: *every,
        },
        None => Action::Respond(Response::message(404)),
    }
}

fn fault_action(fault: Fault) -> Action {
    match fault {
        Fault::Status(s) => Action::Respond(Response::message(s)),
        Fault::RateLimited { retry_after_secs } => {
            let mut r = Response::json(429, r#"{"message":"429 Too Many Requests"}"#);
            let reset = unix_now() + retry_after_secs;
            r.headers = vec![
                ("Retry-After".into(), retry_after_secs.to_string()),
                ("RateLimit-Limit".into(), "2000".into()),
                ("RateLimit-Remaining".into(), "0".into()),
                ("RateLimit-Reset".into(), reset.to_string()),
            ];
            Action::Respond(r)
        }
        Fault::RateLimitReset { reset_in_secs } => {
            let mut r = Response::json(429, r#"{"message":"429 Too Many Requests"}"#);
            r.headers = vec![(
                "RateLimit-Reset".into(),
                (unix_now() + reset_in_secs).to_string(),
            )];
            Action::Respond(r)
        }
        Fault::CloseConnection => Action::Close,
        Fault::Hang(d) => Action::Hang(d),
        Fault::Respond {
            status,
            headers,
            body,
        } => {
            let mut r = Response::json(status, body);
            r.headers = headers;
            Action::Respond(r)
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn list_page(
    req: &RecordedRequest,
    items: &[serde_json::Value],
    options: &ListOptions,
    scoped: bool,
    addr: SocketAddr,
) -> Response {
    let per_page = req
        .query_param("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let page = req
        .query_param("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    // `scope[]=pending&scope[]=running` (jobs) or `scope=pending`: only items
    // whose `status` is one of them, as GitLab filters.
    let scopes: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "scope[]" || k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let filtered: Vec<serde_json::Value>;
    let items: &[serde_json::Value] = if !scoped || scopes.is_empty() {
        items
    } else {
        filtered = items
            .iter()
            .filter(|i| i["status"].as_str().is_some_and(|s| scopes.contains(&s)))
            .cloned()
            .collect();
        &filtered
    };
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = start.saturating_add(per_page).min(total);
    let body = serde_json::Value::Array(items[start..end].to_vec()).to_string();
    let next = (page < total_pages).then_some(page + 1);
    let prev = (page > 1).then(|| (page - 1).min(total_pages));

    let mut headers: Vec<(String, String)> = Vec::new();
    if options.offset_headers {
        headers.push(("x-page".into(), page.to_string()));
        headers.push(("x-per-page".into(), per_page.to_string()));
        headers.push((
            "x-next-page".into(),
            next.map(|n| n.to_string()).unwrap_or_default(),
        ));
        headers.push((
            "x-prev-page".into(),
            prev.map(|n| n.to_string()).unwrap_or_default(),
        ));
    }
    if options.total_headers {
        headers.push(("x-total".into(), total.to_string()));
        headers.push(("x-total-pages".into(), total_pages.to_string()));
    }
    if options.link {
        let origin = options
            .link_origin
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        // Keep the caller's other parameters, as GitLab does.
        let others: String = req
            .raw_query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("per_page="))
            .map(|p| format!("&{p}"))
            .collect();
        let url = |p: usize| format!("{origin}{}?page={p}&per_page={per_page}{others}", req.path);
        let mut links = Vec::new();
        if let Some(p) = prev {
            links.push(format!("<{}>; rel=\"prev\"", url(p)));
        }
        if let Some(n) = next {
            links.push(format!("<{}>; rel=\"next\"", url(n)));
        }
        links.push(format!("<{}>; rel=\"first\"", url(1)));
        links.push(format!("<{}>; rel=\"last\"", url(total_pages)));
        headers.push(("Link".into(), links.join(", ")));
    }
    Response {
        status: 200,
        headers,
        content_type: "application/json",
        body: Arc::new(body.into_bytes()),
    }
}

fn write_response(w: &mut TcpStream, resp: &Response) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    head.push_str(&format!("Content-Type: {}\r\n", resp.content_type));
    head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    head.push_str("Connection: close\r\n");
    for (k, v) in &resp.headers {
        // Header injection from test data would only confuse the test itself.
        let v = v.replace(['\r', '\n'], " ");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(&resp.body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
