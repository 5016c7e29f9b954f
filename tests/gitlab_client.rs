//! The GitLab client against the loopback fake: auth headers, pagination, retries,
//! rate limits, time budgets, streaming, and error messages that never leak the token.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::fake_gitlab::{FakeGitLab, Fault, ListOptions};
use runneriq::gitlab::models::{Job, Note};
use runneriq::gitlab::{ApiError, ApiErrorKind, Client, ClientConfig, Token, project_ref};
use serde_json::{Value, json};

const TOKEN: &str = "glpat-test";
const SECRET: &str = "glpat-SECRET123";

/// Fast retries so the suite stays quick.
fn config(fake: &FakeGitLab, token: Option<Token>) -> ClientConfig {
    let mut c = ClientConfig::new(fake.base_url());
    c.token = token;
    c.initial_backoff = Duration::from_millis(10);
    c.max_retry_wait = Duration::from_secs(3);
    c.deadline = Duration::from_secs(10);
    c.connect_timeout = Duration::from_secs(2);
    c.read_timeout = Duration::from_secs(5);
    c.max_attempts = 5;
    c
}

fn client(fake: &FakeGitLab) -> Client {
    Client::new(config(fake, Some(Token::Private(TOKEN.into())))).unwrap()
}

fn items(n: u64) -> Value {
    Value::Array(
        (1..=n)
            .map(|i| json!({"id": i, "name": format!("job{i}"), "status": "success"}))
            .collect(),
    )
}

#[test]
fn private_token_sent_as_private_token_header() {
    let fake = FakeGitLab::start();
    fake.require_token("PRIVATE-TOKEN", TOKEN);
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    let c = client(&fake);
    let v: Value = c.get_json("/projects/1", &[]).unwrap();
    assert_eq!(v["id"], 1);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.header("private-token"), Some(TOKEN));
    assert_eq!(r.header("job-token"), None);
    assert!(r.header("user-agent").unwrap().starts_with("runneriq/"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(r.api_path(), "/projects/1");
}

#[test]
fn job_token_sent_as_job_token_header() {
    let fake = FakeGitLab::start();
    fake.require_token("JOB-TOKEN", "job-secret");
    fake.route_json("GET", "/projects/1/pipelines/2/jobs", 200, "[]");
    let c = Client::new(config(&fake, Some(Token::Job("job-secret".into())))).unwrap();
    let jobs: Vec<Job> = c.get_all("/projects/1/pipelines/2/jobs", &[], 5).unwrap();
    assert!(jobs.is_empty());
    let r = &fake.requests()[0];
    assert_eq!(r.header("job-token"), Some("job-secret"));
    assert_eq!(r.header("private-token"), None);
}

#[test]
fn base_url_without_api_v4_and_encoded_project_path() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/group%2Fsub%2Fproject", 200, r#"{"id":9}"#);
    let mut cfg = config(&fake, None);
    cfg.base_url = format!("{}/", fake.origin());
    let c = Client::new(cfg).unwrap();
    assert_eq!(c.base_url(), fake.base_url());
    let path = format!("/projects/{}", project_ref("group/sub/project"));
    let v: Value = c.get_json(&path, &[]).unwrap();
    assert_eq!(v["id"], 9);
    assert_eq!(
        fake.requests()[0].path,
        "/api/v4/projects/group%2Fsub%2Fproject"
    );
}

#[test]
fn a_page_that_lies_is_refused_while_it_is_parsed() {
    let fake = FakeGitLab::start();
    // More items than the per_page asked for.
    let mut too_many: Vec<Value> = (1..=101)
        .map(|i| json!({"id": i, "status": "failed"}))
        .collect();
    fake.route_json(
        "GET",
        "/projects/1/jobs",
        200,
        Value::Array(too_many.clone()).to_string(),
    );
    let c = client(&fake);
    let e = c
        .get_pages::<Job>("/projects/1/jobs", &[], 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("GET /projects/1/jobs"), "{e}");
    assert!(
        e.contains("page 1") && e.contains("more than 100 elements"),
        "{e}"
    );
    // Objects without what makes them jobs.
    too_many.truncate(3);
    too_many[1] = json!({});
    fake.route_json(
        "GET",
        "/projects/1/jobs",
        200,
        Value::Array(too_many).to_string(),
    );
    let e = c
        .get_pages::<Job>("/projects/1/jobs", &[], 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `id`"), "{e}");
}

#[test]
fn pagination_follows_x_next_page_over_250_items() {
    let fake = FakeGitLab::start();
    fake.route_list("/projects/1/jobs", items(250));
    let c = client(&fake);
    let page = c
        .get_pages::<Job>("/projects/1/jobs", &[("scope[]", "failed".to_string())], 10)
        .unwrap();
    assert_eq!(page.items.len(), 250);
    assert!(!page.truncated);
    assert_eq!(page.pages, 3);
    assert_eq!(page.total, Some(250));
    let ids: Vec<u64> = page.items.iter().map(|j| j.id).collect();
    assert_eq!(ids, (1..=250).collect::<Vec<_>>());
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.query_param("per_page"), Some("100"));
        assert_eq!(r.query_param("scope[]"), Some("failed"));
    }
    let pages: Vec<Option<&str>> = reqs.iter().map(|r| r.query_param("page")).collect();
    assert_eq!(pages, [None, Some("2"), Some("3")]);
}

#[test]
fn pagination_follows_link_when_no_x_next_page() {
    let fake = FakeGitLab::start();
    fake.route_list_with(
        "/projects/1/jobs",
        items(250),
        ListOptions {
            offset_headers: false,
            total_headers: false,
            link: true,
            link_origin: None,
        },
    );
    let c = client(&fake);
    let page = c.get_pages::<Job>("/projects/1/jobs", &[], 10).unwrap();
    assert_eq!(page.items.len(), 250);
    assert_eq!(page.total, None);
    assert!(!page.truncated);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].query_param("page"), Some("3"));
    assert_eq!(reqs[2].query_param("per_page"), Some("100"));
    // The token is sent on Link-followed pages too (same origin).
    assert!(
        reqs.iter()
            .all(|r| r.header("private-token") == Some(TOKEN))
    );
}

#[test]
fn link_to_another_origin_is_refused() {
    let fake = FakeGitLab::start();
    let other_port = FakeGitLab::start();
    for origin in [
        "http://evil.example".to_string(),
        "https://127.0.0.1".to_string(),
        other_port.origin(),
    ] {
        fake.clear_requests();
        fake.route_list_with(
            "/projects/1/jobs",
            items(150),
            ListOptions {
                offset_headers: false,
                total_headers: false,
                link: true,
                link_origin: Some(origin.clone()),
            },
        );
        let err = client(&fake)
            .get_pages::<Job>("/projects/1/jobs", &[], 10)
            .unwrap_err();
        assert_eq!(err.kind(), ApiErrorKind::UnsafeUrl, "{origin}: {err}");
        assert!(err.to_string().contains("another origin"), "{err}");
        assert!(!err.to_string().contains(TOKEN));
        assert_eq!(fake.requests().len(), 1);
    }
    assert!(other_port.requests().is_empty());
}

#[test]
fn max_pages_is_respected_and_reported() {
    let fake = FakeGitLab::start();
    fake.route_list("/projects/1/jobs", items(250));
    let c = client(&fake);
    let page = c.get_pages::<Job>("/projects/1/jobs", &[], 2).unwrap();
    assert_eq!(page.items.len(), 200);
    assert!(page.truncated);
    assert_eq!(fake.requests().len(), 2);
    let all: Vec<Job> = c.get_all("/projects/1/jobs", &[], 1).unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn caller_per_page_is_kept() {
    let fake = FakeGitLab::start();
    fake.route_list("/projects/1/pipelines", items(25));
    let c = client(&fake);
    let page = c
        .get_pages::<Value>("/projects/1/pipelines", &[("per_page", "10".into())], 10)
        .unwrap();
    assert_eq!(page.items.len(), 25);
    assert_eq!(page.pages, 3);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.query_param("per_page") == Some("10"))
    );
}

#[test]
fn rate_limit_retry_after_is_honoured() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    fake.fail_next(
        "/projects/1",
        vec![Fault::RateLimited {
            retry_after_secs: 1,
        }],
    );
    let c = client(&fake);
    let t = Instant::now();
    let v: Value = c.get_json("/projects/1", &[]).unwrap();
    assert_eq!(v["id"], 1);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn rate_limit_reset_is_used_without_retry_after() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    fake.fail_next(
        "/projects/1",
        vec![Fault::RateLimitReset { reset_in_secs: 2 }],
    );
    let c = client(&fake);
    let t = Instant::now();
    let _: Value = c.get_json("/projects/1", &[]).unwrap();
    // Reset is a whole-second Unix time, so the wait is between 1 and 2 s.
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn retry_after_beyond_the_deadline_gives_up_at_once() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    fake.fail_next(
        "/projects/1",
        vec![Fault::RateLimited {
            retry_after_secs: 30,
        }],
    );
    let mut cfg = config(&fake, Some(Token::Private(TOKEN.into())));
    cfg.deadline = Duration::from_secs(5);
    cfg.max_retry_wait = Duration::from_secs(60);
    let c = Client::new(cfg).unwrap();
    let t = Instant::now();
    let err = c.get_json::<Value>("/projects/1", &[]).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(err.kind(), ApiErrorKind::Deadline);
    assert_eq!(err.status(), Some(429));
    let msg = err.to_string();
    assert!(msg.contains("asked to wait 30 s"), "{msg}");
    assert!(msg.starts_with("GET /projects/1: "), "{msg}");
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn server_error_twice_then_success() {
    let fake = FakeGitLab::start();
    fake.route_json(
        "GET",
        "/projects/1/pipelines/2",
        200,
        r#"{"id":2,"status":"failed"}"#,
    );
    fake.fail_next(
        "/projects/1/pipelines/2",
        vec![Fault::Status(500), Fault::Status(502)],
    );
    let c = client(&fake);
    let v: Value = c.get_json("/projects/1/pipelines/2", &[]).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(c.request_count(), 3);
}

#[test]
fn dropped_connection_is_retried_for_get() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    fake.fail_next("/projects/1", vec![Fault::CloseConnection]);
    let c = client(&fake);
    let v: Value = c.get_json("/projects/1", &[]).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn server_error_forever_gives_up_after_max_attempts() {
    let fake = FakeGitLab::start();
    fake.route_json(
        "GET",
        "/projects/1/pipelines",
        500,
        r#"{"message":"500 Internal Server Error"}"#,
    );
    let mut cfg = config(&fake, Some(Token::Private(TOKEN.into())));
    cfg.max_attempts = 3;
    let c = Client::new(cfg).unwrap();
    let err = c
        .get_json::<Value>("/projects/1/pipelines", &[("ref", "main".into())])
        .unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::Status);
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.attempts(), 3);
    let msg = err.to_string();
    assert!(
        msg.starts_with("GET /projects/1/pipelines: HTTP 500 after 3 attempts"),
        "{msg}"
    );
    assert!(!msg.contains("ref=main"), "{msg}");
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn post_is_not_retried_after_a_server_error() {
    let fake = FakeGitLab::start();
    let path = "/projects/1/merge_requests/2/notes";
    fake.on_write(
        "POST",
        path,
        Box::new(|_| (201, r#"{"id":1,"body":"x"}"#.to_string())),
    );
    fake.fail_next(path, vec![Fault::Status(500)]);
    let c = client(&fake);
    let err = c
        .post_json::<_, Note>(path, &json!({"body": "hello"}))
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.method(), "POST");
    assert_eq!(fake.requests_to("POST", path).len(), 1);
    assert_eq!(c.request_count(), 1);

    // Nor after the connection drops once the request was sent.
    fake.fail_next(path, vec![Fault::CloseConnection]);
    let err = c
        .post_json::<_, Note>(path, &json!({"body": "hello"}))
        .unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::Transport);
    assert_eq!(fake.requests_to("POST", path).len(), 2);
}

#[test]
fn post_is_retried_on_429_and_writes_round_trip() {
    let fake = FakeGitLab::start();
    fake.require_token("PRIVATE-TOKEN", TOKEN);
    let path = "/projects/1/merge_requests/2/notes";
    fake.on_write(
        "POST",
        path,
        Box::new(|req| {
            let body = req.json()["body"].as_str().unwrap_or("").to_string();
            (
                201,
                json!({"id": 42, "body": body, "author": {"id": 7, "username": "bot"}}).to_string(),
            )
        }),
    );
    fake.on_write(
        "PUT",
        &format!("{path}/42"),
        Box::new(|req| {
            (
                200,
                json!({"id": 42, "body": req.json()["body"]}).to_string(),
            )
        }),
    );
    fake.on_write(
        "DELETE",
        &format!("{path}/42"),
        Box::new(|_| (204, String::new())),
    );
    fake.fail_next(
        path,
        vec![Fault::RateLimited {
            retry_after_secs: 0,
        }],
    );
    let c = client(&fake);

    let note: Note = c.post_json(path, &json!({"body": "first"})).unwrap();
    assert_eq!((note.id, note.body.as_str()), (42, "first"));
    assert_eq!(note.author.username, "bot");
    let posts = fake.requests_to("POST", path);
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].header("content-type"), Some("application/json"));
    assert_eq!(posts[1].json(), json!({"body": "first"}));

    let edited: Note = c
        .put_json(&format!("{path}/42"), &json!({"body": "second"}))
        .unwrap();
    assert_eq!(edited.body, "second");
    c.delete(&format!("{path}/42")).unwrap();
    assert_eq!(fake.requests_to("DELETE", &format!("{path}/42")).len(), 1);
    assert_eq!(c.request_count(), fake.requests().len() as u64);
}

#[test]
fn unauthorized_and_forbidden_explain_what_to_do() {
    let fake = FakeGitLab::start();
    fake.require_token("PRIVATE-TOKEN", "the-right-one");
    let c = Client::new(config(&fake, Some(Token::Private(SECRET.into())))).unwrap();
    let err = c.get_json::<Value>("/projects/1", &[]).unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::Unauthorized);
    assert_eq!(err.status(), Some(401));
    let msg = err.to_string();
    assert!(msg.contains("token was rejected"), "{msg}");
    assert!(msg.contains("RUNNERIQ_TOKEN"), "{msg}");
    assert!(!msg.contains(SECRET));
    assert_eq!(fake.requests().len(), 1, "401 is not retried");

    let fake = FakeGitLab::start();
    fake.route_json(
        "GET",
        "/projects/1/jobs/5/trace",
        403,
        r#"{"message":"403 Forbidden"}"#,
    );
    fake.route_json(
        "POST",
        "/projects/1/merge_requests/2/notes",
        403,
        r#"{"message":"403 Forbidden"}"#,
    );
    let c = Client::new(config(&fake, Some(Token::Private(SECRET.into())))).unwrap();
    let err = c
        .get_reader("/projects/1/jobs/5/trace", None)
        .err()
        .unwrap();
    assert_eq!(err.kind(), ApiErrorKind::Forbidden);
    let msg = err.to_string();
    assert!(msg.contains("read_api"), "{msg}");
    assert!(!msg.contains(SECRET));
    let err = c
        .post_json::<_, Value>("/projects/1/merge_requests/2/notes", &json!({"body": "x"}))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("403") && msg.contains(" api scope"), "{msg}");

    let c = Client::new(config(&fake, Some(Token::Job(SECRET.into())))).unwrap();
    let err = c
        .get_reader("/projects/1/jobs/5/trace", None)
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("CI_JOB_TOKEN"), "{msg}");
    assert!(msg.contains("RUNNERIQ_TOKEN"), "{msg}");
    assert!(!msg.contains(SECRET));
}

#[test]
fn not_found_says_the_token_may_not_see_it() {
    let fake = FakeGitLab::start();
    let c = client(&fake);
    let err = c.get_json::<Value>("/projects/404", &[]).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        err.to_string(),
        "GET /projects/404: 404 not found (or the token cannot see it)"
    );
    assert_eq!(fake.requests().len(), 1, "404 is not retried");
}

#[test]
fn decode_errors_name_the_endpoint_and_serde_message() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/1/jobs/5", 200, r#"{"id":"not-a-number"}"#);
    let c = client(&fake);
    let err = c.get_json::<Job>("/projects/1/jobs/5", &[]).unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::Decode);
    let msg = err.to_string();
    assert!(msg.starts_with("GET /projects/1/jobs/5: "), "{msg}");
    assert!(msg.contains("invalid type"), "{msg}");
}

/// Collects one error of every kind, each provoked with the distinctive token
/// `glpat-SECRET123` configured and, where the server can, echoed back.
fn one_error_of_each_kind() -> Vec<ApiError> {
    let fake = FakeGitLab::start();
    let echo = format!(r#"{{"message":"bad token {SECRET}"}}"#);
    fake.route_json("GET", "/unauthorized", 401, echo.clone());
    fake.route_json("GET", "/forbidden", 403, echo.clone());
    fake.route_json("GET", "/status", 422, echo.clone());
    fake.route_json("GET", "/decode", 200, format!(r#"{{"id":"{SECRET}"}}"#));
    fake.route_list_with(
        "/unsafe",
        items(150),
        ListOptions {
            offset_headers: false,
            total_headers: false,
            link: true,
            link_origin: Some(format!("http://{SECRET}.example")),
        },
    );
    fake.fail_next("/deadline", vec![Fault::Hang(Duration::from_secs(5)); 3]);

    let mut errors = Vec::new();
    for token in [Token::Private(SECRET.into()), Token::Job(SECRET.into())] {
        let mut cfg = config(&fake, Some(token));
        cfg.max_attempts = 2;
        let c = Client::new(cfg.clone()).unwrap();
        errors.push(c.get_json::<Value>("/unauthorized", &[]).unwrap_err());
        errors.push(c.get_json::<Value>("/forbidden", &[]).unwrap_err());
        errors.push(c.get_json::<Value>("/missing", &[]).unwrap_err());
        errors.push(c.get_json::<Value>("/status", &[]).unwrap_err());
        errors.push(c.get_json::<Job>("/decode", &[]).unwrap_err());
        errors.push(c.get_pages::<Value>("/unsafe", &[], 5).unwrap_err());
        let mut quick = cfg.clone();
        quick.deadline = Duration::from_millis(600);
        let q = Client::new(quick).unwrap();
        errors.push(q.get_json::<Value>("/deadline", &[]).unwrap_err());
    }
    // Transport: nothing listens on port 1 (a port just released could be
    // taken by another test's fake server in between; the fakes bind
    // ephemeral ports, never a privileged one).
    let mut cfg = ClientConfig::new("http://127.0.0.1:1".to_string());
    cfg.token = Some(Token::Private(SECRET.into()));
    cfg.max_attempts = 2;
    cfg.initial_backoff = Duration::from_millis(10);
    let c = Client::new(cfg).unwrap();
    errors.push(c.get_json::<Value>("/projects/1", &[]).unwrap_err());
    errors
}

#[test]
fn no_error_message_ever_contains_the_token() {
    let errors = one_error_of_each_kind();
    let kinds: Vec<ApiErrorKind> = errors.iter().map(ApiError::kind).collect();
    for k in [
        ApiErrorKind::Unauthorized,
        ApiErrorKind::Forbidden,
        ApiErrorKind::NotFound,
        ApiErrorKind::Status,
        ApiErrorKind::Transport,
        ApiErrorKind::Decode,
        ApiErrorKind::Deadline,
        ApiErrorKind::UnsafeUrl,
    ] {
        assert!(kinds.contains(&k), "no {k:?} error provoked: {kinds:?}");
    }
    for e in &errors {
        let shown = format!("{e} | {e:?}");
        assert!(
            !shown.to_lowercase().contains(&SECRET.to_lowercase()),
            "token leaked: {shown}"
        );
    }
    // The echoed message is kept, redacted.
    let status = errors
        .iter()
        .find(|e| e.kind() == ApiErrorKind::Status)
        .unwrap();
    assert!(status.to_string().contains("bad token ***"), "{status}");
    // The config and client print no secret either.
    let cfg = ClientConfig {
        token: Some(Token::Private(SECRET.into())),
        ..ClientConfig::new("http://127.0.0.1:1")
    };
    let c = Client::new(cfg.clone()).unwrap();
    assert!(!format!("{cfg:?} {c:?}").contains(SECRET));
}

#[test]
fn streams_a_50_mb_trace_without_a_size_cap() {
    const SIZE: usize = 50 * 1024 * 1024;
    let mut body = Vec::with_capacity(SIZE);
    let mut i: u32 = 0;
    while body.len() < SIZE {
        let line = format!("\x1b[0K{i:08} step_script output line\r\n");
        body.extend_from_slice(line.as_bytes());
        i += 1;
    }
    body.truncate(SIZE);
    let expected_sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    let fake = FakeGitLab::start();
    fake.route_text("/projects/1/jobs/5/trace", body);
    let c = client(&fake);
    let mut reader = c.get_reader("/projects/1/jobs/5/trace", None).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut n, mut sum) = (0usize, 0u64);
    loop {
        let got = reader.read(&mut buf).unwrap();
        if got == 0 {
            break;
        }
        n += got;
        sum += buf[..got].iter().map(|b| u64::from(*b)).sum::<u64>();
    }
    assert_eq!(n, SIZE);
    assert_eq!(sum, expected_sum);
}

#[test]
fn deadline_bounds_a_hanging_server() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    fake.fail_next("/projects/1", vec![Fault::Hang(Duration::from_secs(5)); 5]);
    let mut cfg = config(&fake, Some(Token::Private(TOKEN.into())));
    cfg.deadline = Duration::from_secs(1);
    cfg.read_timeout = Duration::from_secs(30);
    let c = Client::new(cfg).unwrap();
    let t = Instant::now();
    let err = c.get_json::<Value>("/projects/1", &[]).unwrap_err();
    let took = t.elapsed();
    assert_eq!(err.kind(), ApiErrorKind::Deadline, "{err}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(err.to_string().contains("time budget of 1 s"), "{err}");
}

#[test]
fn redirects_are_followed_on_the_same_origin_only() {
    let fake = FakeGitLab::start();
    let elsewhere = FakeGitLab::start();
    elsewhere.route_list("/projects/1/pipelines/2/jobs", json!([]));
    fake.route_raw(
        "GET",
        "/projects/1/pipelines/2/jobs",
        302,
        vec![(
            "Location".into(),
            format!("{}/projects/1/pipelines/2/jobs", elsewhere.base_url()),
        )],
        Vec::new(),
    );
    fake.route_raw(
        "GET",
        "/projects/1/jobs/6/trace",
        307,
        vec![(
            "Location".into(),
            "/api/v4/projects/1/jobs/6/trace_raw".into(),
        )],
        Vec::new(),
    );
    fake.route_text("/projects/1/jobs/6/trace_raw", b"same origin\n".to_vec());
    // The same host by another name is another origin too.
    let port = fake.addr().port();
    fake.route_raw(
        "GET",
        "/projects/1/jobs/7/trace",
        302,
        vec![(
            "Location".into(),
            format!("http://localhost:{port}/api/v4/projects/1/jobs/7/trace"),
        )],
        Vec::new(),
    );
    let c = client(&fake);

    // Another origin's answer (an empty list) is never used: an error, and
    // the other server is not even asked.
    let e = c
        .get_all::<Job>("/projects/1/pipelines/2/jobs", &[], 1)
        .unwrap_err();
    assert_eq!(e.kind(), ApiErrorKind::UnsafeUrl, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("redirected to another origin") && msg.contains(&elsewhere.origin()),
        "{msg}"
    );
    assert!(elsewhere.requests().is_empty());
    let e = c
        .get_reader("/projects/1/jobs/7/trace", None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&format!("another origin (http://localhost:{port})"))
            && e.contains("the redirect was refused")
            && !e.contains("401"),
        "{e}"
    );

    let mut s = String::new();
    c.get_reader("/projects/1/jobs/6/trace", None)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "same origin\n");
    let hop = fake.requests_to("GET", "/projects/1/jobs/6/trace_raw");
    assert_eq!(hop[0].header("private-token"), Some(TOKEN));
}

#[test]
fn request_count_matches_what_the_server_saw() {
    let fake = FakeGitLab::start();
    fake.route_list("/projects/1/jobs", items(120));
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    fake.fail_next(
        "/projects/1",
        vec![Fault::Status(503), Fault::CloseConnection],
    );
    let c = client(&fake);
    let c2 = c.clone();
    let _: Vec<Job> = c.get_all("/projects/1/jobs", &[], 10).unwrap();
    let _: Value = c2.get_json("/projects/1", &[]).unwrap();
    let _ = c.get_json::<Value>("/nope", &[]);
    assert_eq!(c.request_count(), 2 + 3 + 1);
    assert_eq!(c.request_count(), fake.requests().len() as u64);
    assert_eq!(c2.request_count(), c.request_count());
}

#[test]
fn client_is_usable_from_several_threads() {
    let fake = FakeGitLab::start();
    fake.route_json("GET", "/projects/1", 200, r#"{"id":1}"#);
    let c = client(&fake);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                c.get_json::<Value>("/projects/1", &[])
                    .map(|v| v["id"].clone())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 1);
    }
    assert_eq!(c.request_count(), 4);
}

/// Raw HTTP against the fake: it must answer odd input with 4xx, accept chunked
/// bodies, and keep serving afterwards.
#[test]
fn fake_server_is_robust_to_odd_input() {
    use std::io::Write;
    use std::net::TcpStream;
    let fake = FakeGitLab::start();
    fake.on_write("POST", "/echo", Box::new(|r| (201, r.body.clone())));
    let send = |raw: &[u8]| -> String {
        let mut s = TcpStream::connect(fake.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(raw);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    assert!(send(b"GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400"));
    let mut huge = b"GET /api/v4/x HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    assert!(send(&huge).starts_with("HTTP/1.1 431"));
    let chunked = send(
        b"POST /api/v4/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\n{\"a\":\r\n3;ext=1\r\n 1}\r\n0\r\n\r\n",
    );
    assert!(chunked.starts_with("HTTP/1.1 201"), "{chunked}");
    assert!(chunked.ends_with("{\"a\": 1}"), "{chunked}");
    assert!(send(b"").is_empty());
    // Still serving.
    let err = client(&fake)
        .get_json::<Value>("/missing", &[])
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
}
