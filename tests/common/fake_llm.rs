//! A fake LLM API on loopback speaking both shapes RunnerIQ uses: the
//! Anthropic Messages API (`POST .../v1/messages`) and OpenAI-compatible chat
//! completions (`POST .../chat/completions`). The shape of each answer follows
//! the request's path.
//!
//! Plain `std::net` HTTP/1.1 like the fake GitLab: one thread per connection,
//! one request per connection. It records every request and answers from a
//! script (in order), then with a default text. Scripted steps can be a model
//! text, any raw HTTP answer (429 with `Retry-After`, 500, ...) or a delay.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const MAX_BODY: usize = 4 * 1024 * 1024;

/// One request as received.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl LlmRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// Every text the request carries (system prompt and messages), joined.
    pub fn prompt(&self) -> String {
        let v = self.json();
        let mut parts: Vec<String> = Vec::new();
        if let Some(s) = v["system"].as_str() {
            parts.push(s.to_string());
        }
        for m in v["messages"].as_array().cloned().unwrap_or_default() {
            if let Some(s) = m["content"].as_str() {
                parts.push(s.to_string());
            }
        }
        parts.join("\n")
    }

    /// The user message alone.
    pub fn user_message(&self) -> String {
        self.json()["messages"]
            .as_array()
            .and_then(|ms| ms.iter().rev().find(|m| m["role"] == "user").cloned())
            .and_then(|m| m["content"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// The model says this, in the request's API shape.
    Text(String),
    /// Any HTTP answer.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait, then answer with the inner step (the client may be gone by then).
    Delay(Duration, Box<Step>),
}

impl Step {
    /// An error status with a provider-style JSON error body.
    pub fn status(status: u16) -> Step {
        Step::Raw {
            status,
            headers: Vec::new(),
            body: json!({"type": "error", "error": {"type": "api_error", "message": format!("fake {status}")}})
                .to_string(),
        }
    }

    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Step {
        Step::Raw {
            status: 429,
            headers: vec![("Retry-After".into(), secs.to_string())],
            body: json!({"error": {"message": "rate limited"}}).to_string(),
        }
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Step>,
    default_text: String,
    /// (input, output) tokens reported; `None`: no usage in answers.
    usage: Option<(u64, u64)>,
    requests: Vec<LlmRequest>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct FakeLlm {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeLlm {
    pub fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                default_text: "I am not sure.".into(),
                usage: Some((1000, 100)),
                ..State::default()
            }),
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
                std::thread::spawn(move || serve(stream, &s2));
            }
        });
        FakeLlm {
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT` (an `ANTHROPIC_BASE_URL`).
    pub fn origin(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (a `RUNNERIQ_LLM_URL`).
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.origin())
    }

    /// Answers used in order before the default.
    pub fn script(&self, steps: Vec<Step>) {
        self.shared.lock().script.extend(steps);
    }

    /// What the model says once the script is used up.
    pub fn default_text(&self, text: &str) {
        self.shared.lock().default_text = text.to_string();
    }

    /// Token usage reported in answers (`None`: none reported).
    pub fn usage(&self, usage: Option<(u64, u64)>) {
        self.shared.lock().usage = usage;
    }

    pub fn requests(&self) -> Vec<LlmRequest> {
        self.shared.lock().requests.clone()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.shared.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    let Some(req) = read_request(&mut reader) else {
        let _ = writer.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let step = {
        let mut st = shared.lock();
        st.requests.push(req.clone());
        st.script
            .pop_front()
            .unwrap_or_else(|| Step::Text(st.default_text.clone()))
    };
    let mut step = step;
    loop {
        match step {
            Step::Delay(d, inner) => {
                let until = Instant::now() + d;
                while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                step = *inner;
            }
            Step::Text(text) => {
                let usage = shared.lock().usage;
                let body = shaped(&req, &text, usage);
                let _ = respond(&mut writer, 200, &[], &body);
                break;
            }
            Step::Raw {
                status,
                headers,
                body,
            } => {
                let _ = respond(&mut writer, status, &headers, &body);
                break;
            }
        }
    }
    let _ = writer.flush();
    let _ = writer.shutdown(Shutdown::Write);
}

/// The model's text in the request's API shape.
fn shaped(req: &LlmRequest, text: &str, usage: Option<(u64, u64)>) -> String {
    let model = req.json()["model"].as_str().unwrap_or("fake").to_string();
    if req.path.ends_with("/chat/completions") {
        let mut v = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        });
        if let Some((i, o)) = usage {
            v["usage"] = json!({"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o});
        }
        v.to_string()
    } else {
        let mut v = json!({
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
        });
        if let Some((i, o)) = usage {
            v["usage"] = json!({"input_tokens": i, "output_tokens": o});
        }
        v.to_string()
    }
}

fn respond(
    w: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body.as_bytes())
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<LlmRequest> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        if headers.len() > 100 {
            return None;
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return None;
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(LlmRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
