//! `runneriq watch` end to end against the fake GitLab, several runs with a
//! moving clock (`RUNNERIQ_NOW`): a runner goes offline (one alert), stays
//! offline (nothing within the cooldown), comes back (resolved, its issue
//! line cleared, the issue closed when all is clear); a job pending on tags
//! no online runner has (the cause named); PagerDuty trigger and resolve
//! received by a loopback server with the same dedup key; a 403 on the
//! runner list (one sentence naming the role and scope); `--dry-run` sends
//! and writes nothing; a garbage state and an impostor's issue; `--mock`
//! offline on the embedded demo fleet.
//!
//! The scenario writes what it saw to `target/watch-scenario/` (issue
//! bodies, PagerDuty payloads, request counts per run).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::fake_gitlab::FakeGitLab;
use serde_json::{Value, json};

const TOKEN: &str = "glpat-watch-secret-0001";
const ROUTING_KEY: &str = "R0UTING-KEY-watch-secret";
/// The runner token in GitLab's old `GET /runners/:id` payload: never shown.
const RUNNER_TOKEN: &str = "205086a8e3b9a2b818ffac9b89d102";
/// 2026-01-01T10:00:00Z.
const T0: i64 = 1_767_261_600;
const BOT: u64 = 77;
/// A runner description nobody should trust.
const HOSTILE: &str = "gpu-a @all /label ~x";

fn iso(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn fixture(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture(rel)).unwrap()).unwrap()
}

/// A `GET /projects/:id/runners` entry (shape of the docs' list example).
fn listed(id: u64, description: &str, online: bool) -> Value {
    json!({
        "active": true, "paused": false, "description": description, "id": id,
        "ip_address": format!("10.0.0.{id}"), "is_shared": false,
        "runner_type": "project_type", "name": "gitlab-runner",
        "online": online, "status": if online { "online" } else { "offline" },
    })
}

/// A `GET /runners/:id` answer: go-gitlab's fixture (with its `token`)
/// with this runner's fields.
fn detail(id: u64, description: &str, tags: &[&str], online: bool, contacted: i64) -> Value {
    let mut d = fixture("gitlab/api/runner.detail.go_gitlab.json");
    d["id"] = id.into();
    d["description"] = description.into();
    d["tag_list"] = json!(tags);
    d["online"] = online.into();
    d["status"] = if online { "online" } else { "offline" }.into();
    d["access_level"] = "not_protected".into();
    d["contacted_at"] = iso(contacted).into();
    d["projects"][0]["id"] = 1.into();
    d
}

/// A job shaped like GitLab's (the pending job of the Kitware capture).
fn job(id: u64, name: &str, status: &str, tags: &[&str], created: i64, queued: f64) -> Value {
    let jobs = fixture("gitlab/api/pipeline_jobs.kitware.json");
    let mut j = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["status"] == "pending")
        .unwrap()
        .clone();
    j["id"] = id.into();
    j["name"] = name.into();
    j["status"] = status.into();
    j["tag_list"] = json!(tags);
    j["ref"] = "main".into();
    j["pipeline"]["project_id"] = 1.into();
    j["pipeline"]["ref"] = "main".into();
    j["created_at"] = iso(created).into();
    j["queued_duration"] = json!(queued);
    j["web_url"] = format!("https://gitlab.example.com/g/p/-/jobs/{id}").into();
    j
}

/// The fake's issues, kept between runs as GitLab would.
type Issues = Arc<Mutex<Vec<Value>>>;

struct World {
    gitlab: FakeGitLab,
    alerts: FakeGitLab,
    issues: Issues,
    config: PathBuf,
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runneriq-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn world(tag: &str) -> World {
    let gitlab = FakeGitLab::start();
    gitlab.require_token("PRIVATE-TOKEN", TOKEN);
    gitlab.route_json(
        "GET",
        "/user",
        200,
        json!({"id": BOT, "username": "project_1_bot_1"}).to_string(),
    );
    let issues: Issues = Arc::default();
    let store = Arc::clone(&issues);
    gitlab.on_write(
        "POST",
        "/projects/1/issues",
        Box::new(move |r| {
            let b = r.json();
            let mut s = store.lock().unwrap();
            let iid = 5 + s.len() as u64;
            let issue = json!({
                "id": 900 + iid, "iid": iid, "project_id": 1, "title": b["title"],
                "description": b["description"], "state": "opened",
                "labels": b["labels"].as_str().unwrap_or("").split(',').collect::<Vec<_>>(),
                "author": {"id": BOT, "username": "project_1_bot_1"},
                "web_url": format!("https://gitlab.example.com/g/p/-/issues/{iid}"),
            });
            s.push(issue.clone());
            (201, issue.to_string())
        }),
    );
    let store = Arc::clone(&issues);
    gitlab.on_write(
        "PUT",
        "/projects/1/issues/",
        Box::new(move |r| {
            let b = r.json();
            let iid: u64 = r.api_path().rsplit('/').next().unwrap().parse().unwrap();
            let mut s = store.lock().unwrap();
            let Some(i) = s.iter_mut().find(|i| i["iid"] == iid) else {
                return (404, json!({"message": "404 Not found"}).to_string());
            };
            if i["author"]["id"] != BOT {
                return (403, json!({"message": "403 Forbidden"}).to_string());
            }
            i["title"] = b["title"].clone();
            i["description"] = b["description"].clone();
            match b["state_event"].as_str() {
                Some("close") => i["state"] = "closed".into(),
                Some("reopen") => i["state"] = "opened".into(),
                _ => {}
            }
            (200, i.to_string())
        }),
    );
    let alerts = FakeGitLab::start();
    for path in ["/v2/enqueue", "/hooks/watch"] {
        alerts.on_write(
            "POST",
            path,
            Box::new(|r| {
                let b = r.json();
                (
                    202,
                    json!({"status": "success", "message": "Event processed", "dedup_key": b["dedup_key"]})
                        .to_string(),
                )
            }),
        );
    }
    let config = tmp(&format!("{tag}.runneriq.yml"));
    std::fs::write(
        &config,
        "notify:\n  webhook: { min_severity: medium }\nwatch:\n  pending: 10m\n  cooldown: 1h\n  \
         pagerduty: { min_severity: high }\n",
    )
    .unwrap();
    World {
        gitlab,
        alerts,
        issues,
        config,
    }
}

impl World {
    /// GitLab as of one run: runners (list and details) and jobs.
    fn serve(&self, now: i64, gpu_online: bool, jobs: Vec<Value>) {
        let g = &self.gitlab;
        g.route_list(
            "/projects/1/runners",
            json!([
                listed(11, "linux-a", true),
                listed(12, HOSTILE, gpu_online),
                listed(13, "linux-b", true),
            ]),
        );
        let gpu_contact = if gpu_online { now - 20 } else { T0 - 40 };
        for (id, d, tags, online, contact) in [
            (11, "linux-a", vec!["docker", "linux"], true, now - 10),
            (12, HOSTILE, vec!["gpu", "cuda"], gpu_online, gpu_contact),
            (13, "linux-b", vec!["docker", "linux"], true, now - 15),
        ] {
            g.route_json(
                "GET",
                &format!("/runners/{id}"),
                200,
                detail(id, d, &tags, online, contact).to_string(),
            );
        }
        g.route_jobs("/projects/1/jobs", Value::Array(jobs));
        g.route_list(
            "/projects/1/issues",
            Value::Array(self.issues.lock().unwrap().clone()),
        );
    }

    fn run(&self, now: i64, extra: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runneriq"));
        let config = self.config.display().to_string();
        cmd.args(["watch", "--project", "1", "--config", &config])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUNNERIQ_NOW", now.to_string())
            .env("RUNNERIQ_HTTP_MAX_ATTEMPTS", "2")
            .env("RUNNERIQ_HTTP_INITIAL_BACKOFF_MS", "5")
            .env("CI_API_V4_URL", self.gitlab.base_url())
            .env("RUNNERIQ_TOKEN", TOKEN)
            .env("CI_DEFAULT_BRANCH", "main")
            .env(
                "RUNNERIQ_PAGERDUTY_URL",
                format!("{}/v2/enqueue", self.alerts.base_url()),
            )
            .env("RUNNERIQ_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
            .env(
                "RUNNERIQ_WEBHOOK_URL",
                format!("{}/hooks/watch", self.alerts.base_url()),
            );
        cmd.output().unwrap()
    }

    fn pagerduty(&self) -> Vec<Value> {
        self.alerts
            .requests_to("POST", "/v2/enqueue")
            .iter()
            .map(|r| r.json())
            .collect()
    }

    fn webhooks(&self) -> Vec<Value> {
        self.alerts
            .requests_to("POST", "/hooks/watch")
            .iter()
            .map(|r| r.json())
            .collect()
    }

    fn writes(&self) -> Vec<String> {
        self.gitlab
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.api_path()))
            .collect()
    }

    fn issue(&self) -> Value {
        let s = self.issues.lock().unwrap();
        assert_eq!(s.len(), 1, "one fleet-health issue, never two: {s:?}");
        s[0].clone()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

/// The text outside code spans and fences: where GitLab reads mentions,
/// references and quick actions.
fn outside_code(body: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in body.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        out.extend(line.split('`').step_by(2));
        out.push('\n');
    }
    out
}

fn no_secrets(s: &str) {
    for secret in [TOKEN, ROUTING_KEY, RUNNER_TOKEN] {
        assert!(!s.contains(secret), "a secret leaked: {s}");
    }
}

fn save(name: &str, content: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/watch-scenario");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), content).unwrap();
}

#[test]
fn offline_alerts_once_stays_quiet_in_the_cooldown_and_resolves_with_the_same_dedup_key() {
    let w = world("scenario");
    let train = |status: &str, created: i64, queued: f64| {
        let mut j = job(
            500,
            "train:model",
            status,
            &["gpu", "cuda"],
            created,
            queued,
        );
        if status == "running" {
            j["runner"] = listed(12, HOSTILE, true);
            j["started_at"] = iso(created + queued as i64).into();
        }
        j
    };
    let busy = job(501, "build", "running", &["docker", "linux"], T0 - 300, 5.0);
    let mut log = String::new();
    let mut record = |run: usize, now: i64, v: &Value, w: &World| {
        let line = format!(
            "run {run} at {}: {} open, {} resolved, issue {}, deliveries {}, API requests {}\n",
            iso(now),
            v["problems"].as_array().unwrap().len(),
            v["resolved"].as_array().unwrap().len(),
            v["issue"],
            v["deliveries"].as_array().unwrap().len(),
            v["requests"]
        );
        eprint!("{line}");
        log.push_str(&line);
        if let Some(i) = w.issues.lock().unwrap().first() {
            save(
                &format!("issue-after-run-{run}.md"),
                i["description"].as_str().unwrap(),
            );
        }
    };

    // Run 1, 10:00: every runner online, the GPU job queued a minute ago.
    w.serve(
        T0,
        true,
        vec![train("pending", T0 - 60, 60.0), busy.clone()],
    );
    let o = w.run(T0, &["--format", "json"]);
    let v = ok(&o);
    record(1, T0, &v, &w);
    assert_eq!(v["problems"], json!([]));
    // The first run opens the issue (the job's only storage) and, all being
    // clear, closes it at once.
    assert_eq!(
        v["issue"],
        json!({"action": "created", "iid": 5, "closed": true})
    );
    assert_eq!(
        w.writes(),
        ["POST /projects/1/issues", "PUT /projects/1/issues/5"]
    );
    assert_eq!(w.issue()["state"], "closed");
    assert!(w.pagerduty().is_empty() && w.webhooks().is_empty());
    // Runners list, their details (first sight), one page of active and one
    // of finished jobs, /user, the two issue lookups and the two writes.
    assert_eq!(v["requests"]["runners"], 1);
    assert_eq!(v["requests"]["details"], 3);
    assert_eq!(v["requests"]["jobs"], 2);
    assert_eq!(v["requests"]["issues"], 5);
    assert_eq!(v["requests"]["total"], 11);

    // Run 2, 10:15: the GPU runner went offline; the GPU job has waited 16 min.
    let t = T0 + 900;
    w.serve(
        t,
        false,
        vec![train("pending", T0 - 60, 960.0), busy.clone()],
    );
    let o = w.run(t, &["--format", "json"]);
    let v = ok(&o);
    record(2, t, &v, &w);
    no_secrets(&text(&o.stdout));
    no_secrets(&text(&o.stderr));
    let kinds: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["runner_offline", "pending_no_runner"]);
    // Details only for what changed: the runner that went offline.
    assert_eq!(v["requests"]["details"], 1);
    assert_eq!(
        w.gitlab.requests_to("GET", "/runners/12").len(),
        2,
        "first sight, then the change"
    );
    assert_eq!(
        w.writes()[2..],
        ["PUT /projects/1/issues/5"],
        "reopened, not a second issue"
    );
    assert_eq!(w.issue()["state"], "opened");
    let pd = w.pagerduty();
    assert_eq!(pd.len(), 2, "one trigger per problem: {pd:#?}");
    assert!(pd.iter().all(|e| e["event_action"] == "trigger"));
    assert!(pd.iter().all(|e| e["routing_key"] == ROUTING_KEY));
    let offline = pd
        .iter()
        .find(|e| e["payload"]["class"] == "runner_offline")
        .unwrap();
    assert_eq!(offline["payload"]["severity"], "error");
    assert_eq!(offline["payload"]["component"], "runner 12");
    let pending = pd
        .iter()
        .find(|e| e["payload"]["class"] == "pending_no_runner")
        .unwrap();
    let summary = pending["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("tags cuda, gpu: no online runner has them; only gpu-a @all /label ~x (runner 12, offline) has them"),
        "{summary}"
    );
    let hooks = w.webhooks();
    assert_eq!(hooks.len(), 1, "one webhook document per run");
    assert_eq!(hooks[0]["event"], "runneriq.watch");
    assert_eq!(hooks[0]["problems"].as_array().unwrap().len(), 2);
    let body = w.issue()["description"].as_str().unwrap().to_string();
    assert!(body.starts_with("<!-- runneriq:watch -->\n"), "{body}");
    assert!(body.contains(
        "- **high** · Runner offline · `gpu-a @\u{200b}all /label ~x` (runner 12) is offline, last contact 15.7 min ago · since 2026-01-01 10:15 UTC"
    ), "{body}");
    assert!(body.contains("1 job pending up to 16.0 min on tags `cuda`, `gpu`: no online runner has them; only `gpu-a @\u{200b}all /label ~x` (runner 12, offline) has them"), "{body}");
    assert_eq!(w.issue()["title"], "RunnerIQ fleet health: 2 open problems");

    // Run 3, 10:30: still offline — within the cooldown, no alert again;
    // the issue is edited in place.
    let t = T0 + 1800;
    w.serve(
        t,
        false,
        vec![train("pending", T0 - 60, 1860.0), busy.clone()],
    );
    let v = ok(&w.run(t, &["--format", "json"]));
    record(3, t, &v, &w);
    assert_eq!(v["deliveries"], json!([]));
    assert_eq!(
        v["cooled"].as_array().unwrap().len(),
        4,
        "2 problems × 2 channels"
    );
    assert_eq!(w.pagerduty().len(), 2, "no repeat within the cooldown");
    assert_eq!(w.webhooks().len(), 1);
    // No runner changed; the two online ones are read again only because
    // their last known contact (10:00) reached `watch.stale` (30 min): did
    // they go quiet? The offline one is not read again.
    assert_eq!(v["requests"]["details"], 2);
    assert_eq!(w.gitlab.requests_to("GET", "/runners/12").len(), 2);
    assert_eq!(w.writes().len(), 4, "edited in place: {:?}", w.writes());
    let body = w.issue()["description"].as_str().unwrap().to_string();
    assert!(
        body.contains("since 2026-01-01 10:15 UTC"),
        "keeps its start: {body}"
    );
    assert!(body.contains("up to 31.0 min"), "{body}");
    let outside = outside_code(&body);
    assert!(!outside.contains("@all"), "{outside}");
    assert!(
        outside.lines().all(|l| !l.trim_start().starts_with('/')),
        "{outside}"
    );
    no_secrets(&body);
    save("issue-run-3-open.md", &body);

    // Run 4, 10:45: the runner is back and took the job — both resolved:
    // one resolve each, same dedup keys; the lines gone, the issue closed.
    let t = T0 + 2700;
    w.serve(
        t,
        true,
        vec![train("running", T0 - 60, 2000.0), busy.clone()],
    );
    let v = ok(&w.run(t, &["--format", "json"]));
    record(4, t, &v, &w);
    assert_eq!(v["problems"], json!([]));
    assert_eq!(v["resolved"].as_array().unwrap().len(), 2);
    let pd = w.pagerduty();
    assert_eq!(pd.len(), 4);
    let (triggers, resolves): (Vec<&Value>, Vec<&Value>) =
        pd.iter().partition(|e| e["event_action"] == "trigger");
    assert_eq!(resolves.len(), 2);
    let mut tk: Vec<&str> = triggers
        .iter()
        .map(|e| e["dedup_key"].as_str().unwrap())
        .collect();
    let mut rk: Vec<&str> = resolves
        .iter()
        .map(|e| e["dedup_key"].as_str().unwrap())
        .collect();
    tk.sort();
    rk.sort();
    assert_eq!(tk, rk, "resolve with the trigger's dedup key");
    assert!(resolves.iter().all(|e| e.get("payload").is_none()));
    let hooks = w.webhooks();
    assert_eq!(hooks.len(), 2);
    assert!(
        hooks[1]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["action"] == "resolve")
    );
    let issue = w.issue();
    assert_eq!(issue["state"], "closed");
    assert_eq!(issue["title"], "RunnerIQ fleet health: all clear");
    let body = issue["description"].as_str().unwrap();
    assert!(body.contains("## Fleet health: all clear"), "{body}");
    assert!(
        !body.contains("- **high**"),
        "the lines are cleared: {body}"
    );
    assert!(body.contains("Resolved since the last check:"), "{body}");
    save("issue-run-4-closed.md", body);
    let payloads: Vec<Value> = pd
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e["routing_key"] = "(secret, from $RUNNERIQ_PAGERDUTY_ROUTING_KEY)".into();
            e
        })
        .collect();
    save(
        "pagerduty-events.json",
        &serde_json::to_string_pretty(&payloads).unwrap(),
    );

    // Run 5, 11:00: all clear again; the closed issue is not rewritten.
    let t = T0 + 3600;
    w.serve(t, true, vec![busy.clone()]);
    let v = ok(&w.run(t, &["--format", "json"]));
    record(5, t, &v, &w);
    assert_eq!(v["issue"]["action"], "unchanged");
    assert_eq!(w.writes().len(), 5, "{:?}", w.writes());
    assert_eq!(w.pagerduty().len(), 4);
    save("requests-per-run.txt", &log);
}

#[test]
fn a_403_on_the_runner_list_is_one_sentence_naming_the_role_and_scope() {
    let w = world("forbidden");
    w.serve(T0, true, vec![]);
    w.gitlab.route_json(
        "GET",
        "/projects/1/runners",
        403,
        json!({"message": "403 Forbidden"}).to_string(),
    );
    let o = w.run(T0, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "runneriq: GET /projects/1/runners answered 403 Forbidden: listing a project's runners needs the Maintainer role in the project and a token with the read_api (or api) scope"
        ]
    );
    assert!(o.stdout.is_empty());
    assert!(w.writes().is_empty());
    assert!(w.pagerduty().is_empty());
}

#[test]
fn a_dry_run_prints_what_it_would_send_and_writes_nothing() {
    let w = world("dry");
    w.serve(
        T0,
        false,
        vec![job(600, "train", "pending", &["gpu"], T0 - 1200, 1200.0)],
    );
    let o = w.run(T0, &["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("<!-- runneriq:watch -->"), "{out}");
    assert!(out.contains("- Issue: would be created (dry run)"), "{out}");
    assert!(out.contains("### Would send"), "{out}");
    assert!(
        out.contains("\"routing_key\": \"$RUNNERIQ_PAGERDUTY_ROUTING_KEY\""),
        "{out}"
    );
    assert!(out.contains("pagerduty trigger"), "{out}");
    no_secrets(&out);
    no_secrets(&text(&o.stderr));
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    assert!(w.pagerduty().is_empty() && w.webhooks().is_empty());
}

#[test]
fn a_garbage_state_is_an_empty_state_and_an_impostors_issue_is_left_alone() {
    let w = world("garbage");
    let ours = json!({
        "id": 905, "iid": 5, "project_id": 1, "title": "RunnerIQ fleet health: 1 open problem",
        "description": "<!-- runneriq:watch -->\nold\n<!-- runneriq:watch-state {\"problems\":{\"../../x\":{\"kind\":\"runner_offline\",\"since\":1,\"severity\":\"high\",\"sent\":{\"https://evil\":1}}}} -->",
        "state": "opened", "labels": ["runneriq-watch"],
        "author": {"id": BOT, "username": "project_1_bot_1"},
    });
    let impostor = json!({
        "id": 904, "iid": 4, "project_id": 1, "title": "RunnerIQ fleet health",
        "description": "<!-- runneriq:watch -->\n/close\n<!-- runneriq:watch-state {} -->",
        "state": "opened", "labels": ["runneriq-watch"],
        "author": {"id": 5, "username": "mallory"},
    });
    // Oldest first: the impostor's comes first and must not win.
    w.issues.lock().unwrap().extend([impostor, ours]);
    w.serve(T0, false, vec![]);
    let v = ok(&w.run(T0, &["--format", "json"]));
    assert_eq!(v["issue"]["action"], "updated");
    assert_eq!(w.writes(), ["PUT /projects/1/issues/5"]);
    // The garbage remembered nothing: the offline runner is new, alerted.
    assert_eq!(w.pagerduty().len(), 1);
    let i = w.issues.lock().unwrap()[1].clone();
    let body = i["description"].as_str().unwrap();
    assert!(
        !body.contains("../../x") && !body.contains("evil"),
        "{body}"
    );
}

#[test]
fn the_demo_fleet_is_watched_offline() {
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(["watch", "--mock", "--dry-run"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    save("watch-mock-dry-run.md", &out);
    assert!(
        out.contains("7 runners (5 online, 1 offline, 1 paused)"),
        "{out}"
    );
    assert!(
        out.contains("`docker-old` (runner 106) is offline"),
        "{out}"
    );
    assert!(
        out.contains("on tags `cuda`, `gpu`: no online runner has them; only `gpu-us-1` (runner 104, paused) has them"),
        "{out}"
    );
    assert!(out.contains("0 API requests"), "{out}");
    assert!(out.contains("- Issue: not posted (--mock"), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(["watch", "--mock", "--format", "json"])
        .env_clear()
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mock"], true);
    assert_eq!(v["requests"]["total"], 0);
    assert!(v["problems"].as_array().unwrap().len() >= 3);
}

#[test]
fn a_queue_wait_spike_is_judged_against_the_last_reports_figures() {
    let w = world("spike");
    let report = |author: Value, p95: f64| {
        json!({
            "id": 880, "iid": 2, "project_id": 1, "title": "RunnerIQ weekly report — 2025-W52",
            "description": format!(
                "<!-- runneriq:report week=2025-W52 -->\n# Weekly report\n\n<!-- runneriq:report-state {{\"week\":\"2025-W52\",\"jobs\":100,\"failures\":1,\"infra_failures\":0,\"wait_p95_s\":{{\"CRITICAL\":{p95},\"HIGH\":{p95},\"MEDIUM\":{p95},\"LOW\":{p95}}},\"co2e_g\":0.0,\"flaky_jobs\":0}} -->\n"
            ),
            "state": "opened", "labels": ["runneriq-report"], "author": author,
        })
    };
    // Somebody else's imitation with a high "usual" level is not read.
    w.issues.lock().unwrap().extend([
        report(json!({"id": 5, "username": "mallory"}), 100_000.0),
        report(json!({"id": BOT, "username": "project_1_bot_1"}), 30.0),
    ]);
    let finished: Vec<Value> = (0..6)
        .map(|i| {
            let started = T0 - 300 - i * 120;
            let mut j = job(
                700 + i as u64,
                "build",
                "success",
                &["docker"],
                started - 600,
                600.0,
            );
            j["started_at"] = iso(started).into();
            j["finished_at"] = iso(started + 60).into();
            j["duration"] = json!(60.0);
            j["runner"] = listed(11, "linux-a", true);
            j
        })
        .collect();
    w.serve(T0, true, finished);
    let v = ok(&w.run(T0, &["--format", "json"]));
    let spikes: Vec<&Value> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "queue_spike")
        .collect();
    assert_eq!(spikes.len(), 1, "{v:#}");
    assert_eq!(spikes[0]["p95_s"], 600.0);
    assert_eq!(spikes[0]["usual_p95_s"], 30.0);
    assert_eq!(spikes[0]["count"], 6);
    // Medium: the webhook (medium and up) has it, PagerDuty (high) not.
    assert!(w.pagerduty().is_empty());
    let hooks = w.webhooks();
    assert_eq!(hooks[0]["problems"][0]["kind"], "queue_spike");
    let body = w.issues.lock().unwrap()[2]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.contains("jobs waited 10.0 min at p95 in the last 60.0 min (6 jobs), against a usual 30 s (the last weekly report)"),
        "{body}"
    );
}

#[test]
fn an_alert_that_fails_fails_the_run_and_is_sent_on_the_next() {
    let w = world("failing");
    w.alerts.on_write(
        "POST",
        "/v2/enqueue",
        Box::new(|_| (500, json!({"status": "error"}).to_string())),
    );
    w.serve(T0, false, vec![]);
    let o = w.run(T0, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("runneriq: error: PagerDuty (routing key $RUNNERIQ_PAGERDUTY_ROUTING_KEY) answered HTTP 500"),
        "{err}"
    );
    no_secrets(&err);
    // The issue is written all the same, without the failed send.
    assert_eq!(w.writes(), ["POST /projects/1/issues"]);
    let body = w.issue()["description"].as_str().unwrap().to_string();
    assert!(!body.contains("\"pagerduty\":"), "{body}");
    assert_eq!(w.pagerduty().len(), 1);
    // PagerDuty is back: the trigger goes out on the next run.
    w.alerts.on_write(
        "POST",
        "/v2/enqueue",
        Box::new(|_| (202, json!({"status": "success"}).to_string())),
    );
    w.serve(T0 + 900, false, vec![]);
    ok(&w.run(T0 + 900, &["--format", "json"]));
    let pd = w.pagerduty();
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[1]["event_action"], "trigger");
    assert_eq!(pd[0]["dedup_key"], pd[1]["dedup_key"]);
    assert_eq!(w.webhooks().len(), 1, "the webhook had it the first time");
}

#[test]
fn group_and_instance_scopes_read_their_own_runner_lists() {
    let w = world("scopes");
    w.serve(T0, true, vec![]);
    w.gitlab.route_list(
        "/groups/7/runners",
        json!([listed(21, "group-runner", false)]),
    );
    w.gitlab.route_json(
        "GET",
        "/runners/21",
        200,
        detail(21, "group-runner", &["arm64"], false, T0 - 9000).to_string(),
    );
    w.gitlab
        .route_list("/groups/7/projects", json!([{"id": 1}, {"id": 2}]));
    w.gitlab.route_jobs(
        "/projects/2/jobs",
        json!([job(
            800,
            "build:arm",
            "pending",
            &["arm64"],
            T0 - 1800,
            1800.0
        )]),
    );
    let v = ok(&w.run(T0, &["--group", "7", "--format", "json", "--dry-run"]));
    assert!(
        w.gitlab
            .requests_to("GET", "/projects/1/runners")
            .is_empty()
    );
    assert_eq!(w.gitlab.requests_to("GET", "/groups/7/runners").len(), 1);
    // One page of active and one of finished jobs in each of the group's projects.
    assert_eq!(w.gitlab.requests_to("GET", "/projects/2/jobs").len(), 2);
    assert_eq!(w.gitlab.requests_to("GET", "/projects/1/jobs").len(), 2);
    assert_eq!(v["counts"]["projects"], 2);
    let kinds: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["runner_offline", "pending_no_runner"], "{v:#}");
    assert!(w.writes().is_empty());

    w.gitlab.route_json(
        "GET",
        "/runners/all",
        403,
        json!({"message": "403 Forbidden"}).to_string(),
    );
    let o = w.run(T0, &["--all-runners"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr).trim_end(),
        "runneriq: GET /runners/all answered 403 Forbidden: listing all runners (--all-runners) needs an administrator account and a token with the read_api (or api) scope"
    );
}
