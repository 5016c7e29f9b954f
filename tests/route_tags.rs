//! The tag bridge end to end: `route --mode …`, `apply`, `reset-tags` and
//! `audit`, the real binary against the fake GitLab.
//!
//! Runners are the fleet fixture (`tests/fixtures/fleet/fleet.json`, real
//! `GET /runners/:id` objects with a `runneriq` extension): GitLab's side
//! serves them without the extension and keeps their tags as PUTs change
//! them; the fleet file gives the zones. Jobs are `tests/fixtures/fleet/jobs.json`.
//! Carbon intensities of the online runners: SE-SE3 27, FR 56, then
//! gcp:europe-west1, DE, PL; 2 of 5 get `runneriq:green`: 105 and 101.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::fake_gitlab::{FakeGitLab, gitlab_tag_list};
use serde_json::{Value, json};

const TOKEN: &str = "glpat-route-tags-0001";
const PROJECT: &str = "42";
const NOW: u64 = 1_767_225_600;
const TTL: u64 = 6 * 3600;

fn read_json(rel: &str) -> Value {
    let raw = std::fs::read_to_string(common::fixture(rel)).unwrap();
    serde_json::from_str(&raw).unwrap()
}

fn jobs_file() -> String {
    common::fixture("fleet/jobs.json").display().to_string()
}

fn lease(t: u64) -> String {
    format!("runneriq:until:{t}")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|t| t.as_str().unwrap_or("").to_string())
        .collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The fake GitLab with stateful runners, and a working directory.
struct Gl {
    fake: FakeGitLab,
    runners: Arc<Mutex<BTreeMap<u64, Value>>>,
    /// Runner id → status its PUT answers instead of applying.
    refuse: Arc<Mutex<HashMap<u64, u16>>>,
    /// Store PUT tag lists as GitLab does (split on commas, stripped,
    /// blanks and duplicates dropped) instead of verbatim.
    gitlab_parsing: Arc<AtomicBool>,
    dir: PathBuf,
    fleet_file: PathBuf,
}

impl Gl {
    /// The fixture's runners, with `tags` replacing some tag lists.
    fn start(name: &str, tags: &[(u64, Vec<String>)]) -> Gl {
        let fleet = read_json("fleet/fleet.json");
        let mut runners = BTreeMap::new();
        for r in fleet.as_array().unwrap() {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("runneriq");
            let id = r["id"].as_u64().unwrap();
            if let Some((_, t)) = tags.iter().find(|(i, _)| *i == id) {
                r["tag_list"] = json!(t);
            }
            runners.insert(id, r);
        }
        let fake = FakeGitLab::start();
        fake.require_token("PRIVATE-TOKEN", TOKEN);
        let list: Vec<Value> = runners
            .values()
            .map(|r| {
                json!({"id": r["id"], "description": r["description"], "status": r["status"],
                       "paused": r["paused"], "runner_type": r["runner_type"]})
            })
            .collect();
        fake.route_list(&format!("/projects/{PROJECT}/runners"), json!(list));
        let runners = Arc::new(Mutex::new(runners));
        let refuse: Arc<Mutex<HashMap<u64, u16>>> = Arc::default();
        let id_of = |path: &str| -> Option<u64> {
            path.strip_prefix("/api/v4/runners/")
                .and_then(|s| s.parse().ok())
        };
        let state = Arc::clone(&runners);
        fake.on_write(
            "GET",
            "/runners/",
            Box::new(move |req| {
                match id_of(&req.path).and_then(|id| state.lock().unwrap().get(&id).cloned()) {
                    Some(r) => (200, r.to_string()),
                    None => (404, r#"{"message":"404 Not found"}"#.into()),
                }
            }),
        );
        let state = Arc::clone(&runners);
        let refused = Arc::clone(&refuse);
        let gitlab_parsing: Arc<AtomicBool> = Arc::default();
        let parsing = Arc::clone(&gitlab_parsing);
        fake.on_write(
            "PUT",
            "/runners/",
            Box::new(move |req| {
                let Some(id) = id_of(&req.path) else {
                    return (404, r#"{"message":"404 Not found"}"#.into());
                };
                if let Some(status) = refused.lock().unwrap().get(&id) {
                    return (*status, format!(r#"{{"message":"{status} refused"}}"#));
                }
                let body = req.json();
                let mut all = state.lock().unwrap();
                match (all.get_mut(&id), body.get("tag_list")) {
                    (Some(r), Some(tags)) if tags.is_array() => {
                        r["tag_list"] = if parsing.load(Ordering::SeqCst) {
                            json!(gitlab_tag_list(tags).unwrap_or_default())
                        } else {
                            tags.clone()
                        };
                        (200, r.to_string())
                    }
                    (None, _) => (404, r#"{"message":"404 Not found"}"#.into()),
                    _ => (400, r#"{"error":"tag_list is missing"}"#.into()),
                }
            }),
        );
        let dir =
            std::env::temp_dir().join(format!("runneriq-route-tags-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The fleet file: zones, power, slots (its tags are stale on purpose).
        let fleet_file = dir.join("fleet.json");
        std::fs::write(&fleet_file, fleet.to_string()).unwrap();
        Gl {
            fake,
            runners,
            refuse,
            gitlab_parsing,
            dir,
            fleet_file,
        }
    }

    fn tags(&self, id: u64) -> Vec<String> {
        strings(&self.runners.lock().unwrap()[&id]["tag_list"])
    }

    /// From now on, PUT tag lists are stored the way GitLab stores them.
    fn parse_tags_like_gitlab(&self) {
        self.gitlab_parsing.store(true, Ordering::SeqCst);
    }

    /// Replaces runner `id`'s tags on GitLab's side (a change made elsewhere).
    fn set_tags(&self, id: u64, tags: &[String]) {
        self.runners.lock().unwrap().get_mut(&id).unwrap()["tag_list"] = json!(tags);
    }

    fn refuse(&self, id: u64, status: u16) {
        self.refuse.lock().unwrap().insert(id, status);
    }

    fn puts(&self) -> Vec<(u64, Vec<String>, String)> {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .map(|r| {
                let id = r
                    .api_path()
                    .trim_start_matches("/runners/")
                    .parse()
                    .unwrap();
                (id, strings(&r.json()["tag_list"]), r.body.clone())
            })
            .collect()
    }

    fn log(&self) -> String {
        self.fake
            .requests()
            .iter()
            .map(|r| {
                if r.method == "PUT" {
                    format!("{} {} {}\n", r.method, r.api_path(), r.body)
                } else {
                    format!("{} {}\n", r.method, r.api_path())
                }
            })
            .collect()
    }

    fn fleet(&self) -> String {
        self.fleet_file.display().to_string()
    }

    /// `runneriq ARGS` in the working directory, in a clean environment.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut vars: Vec<(String, String)> = vec![
            ("CI_API_V4_URL".into(), self.fake.base_url()),
            ("RUNNERIQ_TOKEN".into(), TOKEN.into()),
            ("RUNNERIQ_NOW".into(), NOW.to_string()),
            ("RUNNERIQ_HTTP_MAX_ATTEMPTS".into(), "3".into()),
            ("RUNNERIQ_HTTP_INITIAL_BACKOFF_MS".into(), "5".into()),
            ("RUNNERIQ_HTTP_MAX_RETRY_WAIT_MS".into(), "200".into()),
            ("RUNNERIQ_HTTP_DEADLINE_S".into(), "10".into()),
        ];
        for (k, v) in env {
            vars.retain(|(n, _)| n != k);
            if !v.is_empty() {
                vars.push(((*k).into(), (*v).into()));
            }
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runneriq"));
        cmd.args(args).current_dir(&self.dir).env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `route --mode autonomous --execute` on the live fleet with the file's zones.
    fn execute(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let fleet = self.fleet();
        let jobs = jobs_file();
        let mut args = vec![
            "route",
            "--mode",
            "autonomous",
            "--execute",
            "--project",
            PROJECT,
            "--fleet",
            &fleet,
            "--jobs",
            &jobs,
        ];
        args.extend_from_slice(extra);
        self.run(&args, env)
    }
}

impl Drop for Gl {
    fn drop(&mut self) {
        // Kept when the test failed, for a look at the plan and the audit log.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn v(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn execute_touches_only_runneriq_tags_and_sends_the_others_back_byte_for_byte() {
    let odd = v(&["docker", "Linux x86_64", "linux", "région-é", "  spaced  "]);
    let gl = Gl::start(
        "bytes",
        &[
            (101, odd.clone()),
            (
                102,
                v(&[
                    "runneriq:green",
                    "docker",
                    "Linux x86_64",
                    &lease(NOW + 5000),
                    "région-é",
                    "linux",
                ]),
            ),
        ],
    );
    let o = gl.execute(&[], &[]);
    eprintln!(
        "request log of `route --mode autonomous --execute`:\n{}",
        gl.log()
    );
    assert_exit(&o, 0);
    let until = lease(NOW + TTL);
    let puts = gl.puts();
    assert_eq!(puts.len(), 3, "{puts:?}");
    // Additions first (101, 105), then the removal (102).
    assert_eq!(
        puts.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![101, 105, 102]
    );
    let mut want101 = odd.clone();
    want101.extend(v(&["runneriq:green", &until]));
    assert_eq!(puts[0].1, want101);
    assert!(
        puts[0]
            .2
            .contains(r#""Linux x86_64","linux","région-é","  spaced  ""#),
        "{}",
        puts[0].2
    );
    assert_eq!(
        puts[1].1,
        v(&["deploy", "docker", "runneriq:green", &until])
    );
    assert_eq!(
        puts[2].1,
        v(&["docker", "Linux x86_64", "région-é", "linux"])
    );
    assert_eq!(gl.tags(101), want101);
    assert_eq!(
        gl.tags(102),
        v(&["docker", "Linux x86_64", "région-é", "linux"])
    );
    // Untouched runners got no PUT, and their tags are as they were.
    assert_eq!(gl.tags(103), v(&["docker", "large", "linux"]));
    let out = stdout(&o);
    assert!(out.contains("Tag changes (autonomous: applied)"), "{out}");
    // Running again changes nothing.
    gl.fake.clear_requests();
    assert_exit(&gl.execute(&[], &[]), 0);
    assert!(gl.puts().is_empty(), "{}", gl.log());
}

#[test]
fn a_403_and_a_500_leave_those_runners_unchanged_and_the_others_applied() {
    let gl = Gl::start(
        "refused",
        &[
            (
                102,
                v(&["docker", "linux", "runneriq:green", &lease(NOW + 5000)]),
            ),
            (
                103,
                v(&[
                    "docker",
                    "large",
                    "linux",
                    "runneriq:green",
                    &lease(NOW - 60),
                ]),
            ),
        ],
    );
    gl.refuse(102, 403);
    gl.refuse(103, 500);
    let o = gl.execute(&[], &[]);
    eprintln!("{}", gl.log());
    assert_exit(&o, 1);
    // Exactly one PUT each: a write is never retried, even after a 500.
    assert_eq!(gl.fake.requests_to("PUT", "/runners/103").len(), 1);
    assert_eq!(gl.fake.requests_to("PUT", "/runners/102").len(), 1);
    assert_eq!(
        gl.tags(102),
        v(&["docker", "linux", "runneriq:green", &lease(NOW + 5000)])
    );
    assert_eq!(
        gl.tags(103),
        v(&[
            "docker",
            "large",
            "linux",
            "runneriq:green",
            &lease(NOW - 60)
        ])
    );
    assert!(gl.tags(101).contains(&"runneriq:green".to_string()));
    assert!(gl.tags(105).contains(&"runneriq:green".to_string()));
    let err = stderr(&o);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("runneriq: error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{err}");
    assert!(
        errors[0].starts_with("runneriq: error: PUT /runners/102 answered 403: changing a runner's tags needs an administrator (instance runner)"),
        "{err}"
    );
    assert!(
        errors[1].starts_with("runneriq: error: PUT /runners/103 answered 500 and was not retried"),
        "{err}"
    );
    for e in errors {
        assert_eq!(e.matches(". ").count(), 0, "one sentence: {e}");
        assert!(!e.contains(TOKEN));
    }
}

#[test]
fn a_dry_run_sends_no_put() {
    let gl = Gl::start(
        "dry",
        &[(102, v(&["docker", "runneriq:green", &lease(NOW + 5000)]))],
    );
    let fleet = gl.fleet();
    let jobs = jobs_file();
    let base = ["--project", PROJECT, "--fleet", &fleet, "--jobs", &jobs];
    let o = gl.run(
        &[&["route", "--mode", "autonomous"], &base[..]].concat(),
        &[],
    );
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("would PUT `tag_list` `[\"docker\"]`"),
        "{}",
        stdout(&o)
    );
    assert!(!gl.fake.requests_to("GET", "/runners/102").is_empty());
    assert!(gl.puts().is_empty(), "{}", gl.log());
    // Advisory (the default) with --tags: listed, nothing read or written.
    gl.fake.clear_requests();
    let o = gl.run(
        &["route", "--tags", "--fleet", &fleet, "--jobs", &jobs],
        &[],
    );
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("would change: advisory mode"));
    assert!(gl.fake.requests().is_empty(), "{}", gl.log());
    // --execute outside autonomous mode is refused before anything happens.
    let o = gl.run(&[&["route", "--execute"], &base[..]].concat(), &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("needs --mode autonomous"),
        "{}",
        stderr(&o)
    );
    assert!(gl.puts().is_empty());
    assert!(!gl.dir.join("runneriq-audit.jsonl").exists());
}

#[test]
fn reset_tags_execute_removes_every_runneriq_tag_and_nothing_else() {
    let gl = Gl::start(
        "reset",
        &[
            (
                101,
                v(&["docker", "runneriq:green", "Linux x86_64", &lease(NOW + 60)]),
            ),
            (103, v(&["runneriq:canary", "large", &lease(NOW - 60)])),
            (107, v(&["runneriq:", "shell"])),
        ],
    );
    let o = gl.run(&["reset-tags", "--project", PROJECT], &[]);
    assert_exit(&o, 0);
    assert!(gl.puts().is_empty(), "a dry run sends no PUT");
    let o = gl.run(&["reset-tags", "--project", PROJECT, "--execute"], &[]);
    eprintln!("{}", gl.log());
    assert_exit(&o, 0);
    assert_eq!(gl.puts().len(), 3);
    assert_eq!(gl.tags(101), v(&["docker", "Linux x86_64"]));
    assert_eq!(gl.tags(103), v(&["large"]));
    assert_eq!(gl.tags(107), v(&["shell"]));
    assert_eq!(gl.tags(102), v(&["docker", "linux"]));
    assert!(stderr(&o).contains("jobs that require runneriq:green will wait"));
    // The default audit file records what was removed.
    let lines = audit_lines(&gl.dir.join("runneriq-audit.jsonl"));
    assert_eq!(lines.len(), 5);
    assert!(
        lines
            .iter()
            .all(|l| l["action"] == "remove" && l["applied"] == true)
    );
}

#[test]
fn an_expired_lease_loses_its_runneriq_tags_on_the_next_run() {
    // 102 and 103 both hold an unmanaged pool; 102's lease ends at NOW.
    let gl = Gl::start(
        "expiry",
        &[
            (102, v(&["docker", "runneriq:canary", "linux", &lease(NOW)])),
            (
                103,
                v(&["docker", "runneriq:canary", "large", &lease(NOW + 7200)]),
            ),
        ],
    );
    let earlier = (NOW - 3600).to_string();
    let o = gl.execute(&[], &[("RUNNERIQ_NOW", &earlier)]);
    assert_exit(&o, 0);
    assert_eq!(
        gl.tags(102),
        v(&["docker", "runneriq:canary", "linux", &lease(NOW)])
    );
    let o = gl.execute(&["--format", "json"], &[]);
    assert_exit(&o, 0);
    assert_eq!(gl.tags(102), v(&["docker", "linux"]));
    assert_eq!(
        gl.tags(103),
        v(&["docker", "runneriq:canary", "large", &lease(NOW + 7200)])
    );
    let out: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let change = out["tags"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["runner"] == 102)
        .unwrap();
    assert!(
        change["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("lease expired at {NOW}")),
        "{change}"
    );
}

#[test]
fn the_last_online_holder_of_green_keeps_it_when_it_is_no_longer_among_the_cleanest() {
    let held = v(&["docker", "linux", "runneriq:green", &lease(NOW + 5000)]);
    // a) No other runner can take the pool: every online zone is unknown.
    let gl = Gl::start("last-holder", &[(102, held.clone())]);
    let mut fleet = read_json("fleet/fleet.json");
    for r in fleet.as_array_mut().unwrap() {
        if r["status"] == "online" {
            r["runneriq"]["zone"] = if r["id"] == 102 {
                "Atlantis".into()
            } else {
                Value::Null
            };
        }
    }
    std::fs::write(&gl.fleet_file, fleet.to_string()).unwrap();
    let o = gl.execute(&[], &[]);
    assert_exit(&o, 0);
    assert!(gl.puts().is_empty(), "{}", gl.log());
    assert_eq!(gl.tags(102), held);
    let out = stdout(&o);
    assert!(
        out.contains("runneriq:green kept: the last online runner holding it"),
        "{out}"
    );
    // b) The cleanest runners are chosen but GitLab refuses them the tag:
    // the old holder keeps it (checked against GitLab's answers, not the plan).
    let gl = Gl::start("last-holder-apply", &[(102, held.clone())]);
    gl.refuse(101, 403);
    gl.refuse(105, 403);
    let o = gl.execute(&[], &[]);
    assert_exit(&o, 1);
    assert!(gl.fake.requests_to("PUT", "/runners/102").is_empty());
    assert_eq!(gl.tags(102), held);
    assert!(stdout(&o).contains("runneriq:green kept: no other online runner holds it now"));
}

#[test]
fn supervised_writes_a_plan_that_apply_puts_and_an_expired_plan_is_refused() {
    let gl = Gl::start("supervised", &[]);
    let fleet = gl.fleet();
    let jobs = jobs_file();
    let plan = supervised_plan(&gl);
    assert!(gl.fake.requests().is_empty(), "{}", gl.log());
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["mode"], "supervised");
    assert_eq!(plan["created_at"], NOW);
    assert_eq!(plan["changes"].as_array().unwrap().len(), 2);
    // Supervised without a plan file, --plan in advisory: input errors.
    assert_exit(
        &gl.run(
            &[
                "route",
                "--mode",
                "supervised",
                "--fleet",
                &fleet,
                "--jobs",
                &jobs,
            ],
            &[],
        ),
        2,
    );
    assert_exit(
        &gl.run(
            &[
                "route", "--plan", "x.json", "--fleet", &fleet, "--jobs", &jobs,
            ],
            &[],
        ),
        2,
    );
    // Applying a dry run sends nothing; with --execute, the PUTs.
    let later = (NOW + 600).to_string();
    let o = gl.run(&["apply", "p.json"], &[("RUNNERIQ_NOW", &later)]);
    assert_exit(&o, 0);
    assert!(gl.puts().is_empty());
    let o = gl.run(
        &["apply", "p.json", "--execute"],
        &[("RUNNERIQ_NOW", &later)],
    );
    assert_exit(&o, 0);
    let ids: Vec<u64> = gl.puts().iter().map(|p| p.0).collect();
    assert_eq!(ids, vec![101, 105]);
    assert_eq!(
        gl.tags(105),
        v(&["deploy", "docker", "runneriq:green", &lease(NOW + TTL)])
    );
    // Past its TTL the plan is refused.
    let expired = (NOW + TTL).to_string();
    let o = gl.run(
        &["apply", "p.json", "--execute"],
        &[("RUNNERIQ_NOW", &expired)],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("p.json: plan expired at 2026-01-01T06:00:00Z"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("route again"));
    assert_eq!(gl.puts().len(), 2);
    // A tampered plan names the path.
    std::fs::write(
        gl.dir.join("bad.json"),
        r#"{"version":1,"created_at":1,"mode":"x","changes":[{"runner":1,"runner_name":"a","add":["docker"],"reason":"","decided_by":"rules"}]}"#,
    )
    .unwrap();
    let o = gl.run(&["apply", "bad.json"], &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("bad.json: changes[0].add[0]: \"docker\" is not a runneriq: tag"));
}

#[test]
fn the_audit_log_has_a_line_per_recommendation_and_tag_change() {
    let gl = Gl::start(
        "audit",
        &[(102, v(&["docker", "runneriq:green", &lease(NOW + 5000)]))],
    );
    let o = gl.execute(&["--audit", "a.jsonl", "--format", "json"], &[]);
    assert_exit(&o, 0);
    let out: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let jobs = out["assignments"].as_array().unwrap().len();
    let lines = audit_lines(&gl.dir.join("a.jsonl"));
    let recs: Vec<&Value> = lines
        .iter()
        .filter(|l| l["kind"] == "recommendation")
        .collect();
    let changes: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "tag_change").collect();
    assert_eq!(recs.len(), jobs);
    // 101 and 105: green + lease each; 102: green + lease off.
    assert_eq!(changes.len(), 6, "{changes:#?}");
    for l in &lines {
        assert_eq!(l["time"], "2026-01-01T00:00:00Z");
        assert_eq!(l["mode"], "autonomous");
        assert!(l["decided_by"].is_string());
    }
    assert!(
        changes
            .iter()
            .all(|c| c["applied"] == true && c["error"].is_null())
    );
    assert!(
        recs.iter()
            .any(|r| r["runner"].is_null() && r["action"] == "none")
    );
    let r = recs.iter().find(|r| r["job"] == 2001).unwrap();
    assert!(r["priority"].is_u64() && r["urgency"].is_string() && r["reason"].is_string());
    // Two days earlier: left out by --since 1d.
    let old = (NOW - 2 * 86_400).to_string();
    let fleet = gl.fleet();
    let jobs_path = jobs_file();
    let o = gl.run(
        &[
            "route", "--tags", "--audit", "a.jsonl", "--fleet", &fleet, "--jobs", &jobs_path,
        ],
        &[("RUNNERIQ_NOW", &old)],
    );
    assert_exit(&o, 0);
    let o = gl.run(&["audit", "a.jsonl", "--since", "1d"], &[]);
    assert_exit(&o, 0);
    let table = stdout(&o);
    eprintln!("{table}");
    assert!(
        table.starts_with(&format!("### RunnerIQ audit: {} entries", lines.len())),
        "{table}"
    );
    assert!(
        table.contains("| add `runneriq:green` (applied) |"),
        "{table}"
    );
    assert!(!table.contains("2025-12-30"));
    // A broken line: reported with its number, the rest still shown.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(gl.dir.join("a.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"time\": \"2026-01-01T00:00:00Z\", \"kind\"\n").unwrap();
    let total = audit_lines_count(&gl.dir.join("a.jsonl"));
    let o = gl.run(&["audit", "a.jsonl", "--format", "json"], &[]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains(&format!("a.jsonl:{total}: not a JSON object")),
        "{}",
        stderr(&o)
    );
    let all: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(all.as_array().unwrap().len(), total - 1);
    // A missing file is an input error naming it.
    let o = gl.run(&["audit", "nope.jsonl"], &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("nope.jsonl"));
}

fn audit_lines_count(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

/// `route --mode supervised --plan p.json` at NOW: changes for 101 and 105
/// (green and a lease each).
fn supervised_plan(gl: &Gl) -> Value {
    let fleet = gl.fleet();
    let jobs = jobs_file();
    let o = gl.run(
        &[
            "route",
            "--mode",
            "supervised",
            "--plan",
            "p.json",
            "--fleet",
            &fleet,
            "--jobs",
            &jobs,
        ],
        &[],
    );
    assert_exit(&o, 0);
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(gl.dir.join("p.json")).unwrap()).unwrap();
    let ids: Vec<u64> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["runner"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![101, 105]);
    plan
}

#[test]
fn a_plan_tag_gitlab_would_not_store_as_one_runneriq_tag_is_refused_and_nothing_is_written() {
    let gl = Gl::start("plan-comma", &[]);
    // GitLab splits every `tag_list` entry on commas: the fake does too.
    gl.parse_tags_like_gitlab();
    let plan = supervised_plan(&gl);
    let audit = gl.dir.join("runneriq-audit.jsonl");
    let logged = audit_lines_count(&audit);
    let later = (NOW + 600).to_string();
    let at_later = [("RUNNERIQ_NOW", later.as_str())];
    let long = format!("runneriq:{}", "a".repeat(247));
    // (field, tag, what the error says about it)
    let cases: Vec<(&str, &str, &str)> = vec![
        ("add", "runneriq:x,production,gpu", "comma"),
        ("add", "runneriq:x, production", "comma"),
        ("remove", "runneriq:green,production", "comma"),
        ("add", "runneriq:x ", "whitespace"),
        ("add", "runneriq:\"q\"", "quote"),
        ("add", "runneriq:a\nb", "control character"),
        ("add", &long, "255"),
    ];
    for (n, (field, tag, why)) in cases.iter().enumerate() {
        let mut evil = plan.clone();
        // The second change (105): the first (101) is valid, so a partial
        // apply would show as a PUT to 101.
        evil["changes"][1][*field] = json!([tag]);
        let name = format!("evil{n}.json");
        std::fs::write(gl.dir.join(&name), evil.to_string()).unwrap();
        let o = gl.run(&["apply", &name, "--execute"], &at_later);
        eprintln!(
            "apply {name} ({field} {tag:?}):\nstderr: {}request log:\n{}runner 105 on GitLab: {:?}",
            stderr(&o),
            gl.log(),
            gl.tags(105)
        );
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(err.contains(&name), "names the file: {err}");
        assert!(err.contains("runner 105"), "names the runner: {err}");
        assert!(
            err.contains(&serde_json::to_string(tag).unwrap()),
            "names the tag: {err}"
        );
        assert!(err.contains(why), "says why ({why}): {err}");
        assert!(gl.puts().is_empty(), "nothing is written:\n{}", gl.log());
        // Nor logged: the route's lines only.
        assert_eq!(audit_lines_count(&audit), logged);
    }
    assert_eq!(gl.tags(101), v(&["docker", "linux"]));
    assert_eq!(gl.tags(105), v(&["deploy", "docker"]));
    // The untampered plan applies.
    let o = gl.run(&["apply", "p.json", "--execute"], &at_later);
    assert_exit(&o, 0);
    assert_eq!(
        gl.tags(105),
        v(&["deploy", "docker", "runneriq:green", &lease(NOW + TTL)])
    );
}

#[test]
fn a_runner_tag_gitlab_would_split_is_never_sent_back() {
    // GitLab can hold a tag with a comma (a quoted "ci, nightly"); sent back
    // in `tag_list`, it would come back as two tags.
    let gl = Gl::start(
        "own-comma",
        &[(101, v(&["docker", "ci, nightly", "linux"]))],
    );
    gl.parse_tags_like_gitlab();
    let o = gl.execute(&[], &[]);
    eprintln!("request log:\n{}", gl.log());
    assert_exit(&o, 1);
    assert!(gl.fake.requests_to("PUT", "/runners/101").is_empty());
    assert_eq!(gl.tags(101), v(&["docker", "ci, nightly", "linux"]));
    // The other runner of the pool still gets it.
    assert!(gl.tags(105).contains(&"runneriq:green".to_string()));
    let err = stderr(&o);
    assert!(
        err.contains("runneriq: error: runner 101")
            && err.contains("\"ci, nightly\"")
            && err.contains("comma"),
        "{err}"
    );
}

#[test]
fn reset_tags_reports_the_tags_its_audit_log_cannot_explain_and_keeps_them() {
    let gl = Gl::start("reset-review", &[]);
    // A run an hour ago greened 101 and 105, recording their tag lists.
    let earlier = (NOW - 3600).to_string();
    let o = gl.execute(&["--audit", "a.jsonl"], &[("RUNNERIQ_NOW", &earlier)]);
    assert_exit(&o, 0);
    let until = lease(NOW - 3600 + TTL);
    for l in audit_lines(&gl.dir.join("a.jsonl"))
        .iter()
        .filter(|l| l["kind"] == "tag_change" && l["runner"] == 101)
    {
        assert_eq!(strings(&l["before"]), v(&["docker", "linux"]), "{l}");
        assert_eq!(
            strings(&l["tag_list"]),
            v(&["docker", "linux", "runneriq:green", &until]),
            "{l}"
        );
    }
    // Since then: an `apply` before the fix wrote `runneriq:x,production,gpu`
    // to 101 and 103 (its audit lines as it wrote them, without tag lists),
    // GitLab split it, and someone added `nightly` to 105.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(gl.dir.join("a.jsonl"))
        .unwrap();
    for (id, name) in [(101, "fr-runner"), (103, "pl-runner")] {
        let line = json!({"time": "2025-12-31T23:30:00Z", "kind": "tag_change", "runner": id,
            "runner_name": name, "tag": "runneriq:x,production,gpu", "action": "add",
            "reason": "", "expires_at": null, "applied": true, "error": null,
            "decided_by": "rules", "mode": "supervised"});
        std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).unwrap();
    }
    drop(f);
    gl.set_tags(
        101,
        &v(&[
            "docker",
            "linux",
            "runneriq:green",
            &until,
            "runneriq:x",
            "production",
            "gpu",
        ]),
    );
    gl.set_tags(
        103,
        &v(&[
            "docker",
            "large",
            "linux",
            "runneriq:x",
            "production",
            "gpu",
        ]),
    );
    gl.set_tags(
        105,
        &v(&["deploy", "docker", "runneriq:green", &until, "nightly"]),
    );
    gl.fake.clear_requests();
    let o = gl.run(
        &[
            "reset-tags",
            "--project",
            PROJECT,
            "--execute",
            "--audit",
            "a.jsonl",
        ],
        &[],
    );
    eprintln!("stdout:\n{}\nstderr:\n{}", stdout(&o), stderr(&o));
    assert_exit(&o, 0);
    // Only runneriq: tags are removed; every other tag goes back untouched.
    assert_eq!(gl.tags(101), v(&["docker", "linux", "production", "gpu"]));
    assert_eq!(
        gl.tags(103),
        v(&["docker", "large", "linux", "production", "gpu"])
    );
    assert_eq!(gl.tags(105), v(&["deploy", "docker", "nightly"]));
    assert_eq!(gl.tags(104), v(&["cuda", "docker", "gpu"]));
    let out = stdout(&o);
    assert!(
        out.contains("not explained by RunnerIQ's audit log"),
        "{out}"
    );
    let review: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("not explained by RunnerIQ's audit log"))
        .collect();
    let line = |id: u64| {
        review
            .iter()
            .find(|l| l.contains(&format!("(id {id})")))
            .copied()
            .unwrap_or("")
    };
    assert!(
        line(101).contains("`production`")
            && line(101).contains("`gpu`")
            && line(101).contains("`runneriq:x,production,gpu`")
            && !line(101).contains("`docker`"),
        "{out}"
    );
    assert!(
        line(103).contains("`production`") && line(103).contains("`gpu`"),
        "{out}"
    );
    assert!(
        line(105).contains("`nightly`") && !line(105).contains("`deploy`"),
        "{out}"
    );
    // Never written to by RunnerIQ (104 has its own `gpu`): not reviewed.
    assert_eq!(line(104), "", "{out}");
    assert_eq!(line(102), "", "{out}");
    let err = stderr(&o);
    assert!(
        err.contains("runneriq: warning:") && err.contains("nightly"),
        "{err}"
    );
    // The audit log records them.
    let lines = audit_lines(&gl.dir.join("a.jsonl"));
    let mut reviewed: Vec<(u64, String)> = lines
        .iter()
        .filter(|l| l["kind"] == "tag_review")
        .map(|l| {
            (
                l["runner"].as_u64().unwrap(),
                l["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    reviewed.sort();
    assert_eq!(
        reviewed,
        vec![
            (101, "gpu".to_string()),
            (101, "production".to_string()),
            (103, "gpu".to_string()),
            (103, "production".to_string()),
            (105, "nightly".to_string()),
        ]
    );
    let o = gl.run(&["audit", "a.jsonl"], &[]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("review `nightly`"), "{}", stdout(&o));
    // Without an audit log (the default file does not exist), it says so.
    let o = gl.run(&["reset-tags", "--project", PROJECT], &[]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("no audit log"), "{}", stdout(&o));
}

/// The jobs fixture with `runneriq:green` required by `deploy:production`
/// (job 2001, HIGH: only `deploy-se` 105 has its other tags) and by
/// `test:unit 1/6` (job 2003, LOW: `docker-fr-1` 101 and the other docker
/// linux runners), written into the working directory.
fn green_jobs(gl: &Gl) -> String {
    let mut jobs = read_json("fleet/jobs.json");
    for j in jobs.as_array_mut().unwrap() {
        if j["id"] == 2001 || j["id"] == 2003 {
            j["tag_list"]
                .as_array_mut()
                .unwrap()
                .push(json!("runneriq:green"));
        }
    }
    let path = gl.dir.join("green-jobs.json");
    std::fs::write(&path, jobs.to_string()).unwrap();
    path.display().to_string()
}

/// `route --mode supervised --plan p.json` on the live fleet with the green jobs.
fn supervised(gl: &Gl, extra: &[&str]) -> Output {
    let fleet = gl.fleet();
    let jobs = green_jobs(gl);
    let mut args = vec![
        "route",
        "--mode",
        "supervised",
        "--plan",
        "p.json",
        "--project",
        PROJECT,
        "--fleet",
        &fleet,
        "--jobs",
        &jobs,
    ];
    args.extend_from_slice(extra);
    gl.run(&args, &[])
}

fn plan_runners(gl: &Gl) -> Vec<u64> {
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(gl.dir.join("p.json")).unwrap()).unwrap();
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["runner"].as_u64().unwrap())
        .collect()
}

#[test]
fn supervised_with_a_threshold_applies_changes_below_it_and_plans_the_rest_for_review() {
    let gl = Gl::start("threshold", &[]);
    let o = supervised(&gl, &["--supervised-threshold", "high", "--execute"]);
    eprintln!("{}\nrequest log:\n{}", stdout(&o), gl.log());
    assert_exit(&o, 0);
    // 101 greened for job 2003 (LOW) by the run; 105 (job 2001, HIGH) not.
    let until = lease(NOW + TTL);
    let puts = gl.puts();
    assert_eq!(
        puts.iter().map(|p| (p.0, p.1.clone())).collect::<Vec<_>>(),
        vec![(101, v(&["docker", "linux", "runneriq:green", &until]))]
    );
    assert_eq!(gl.tags(105), v(&["deploy", "docker"]));
    assert_eq!(plan_runners(&gl), vec![105]);
    let out = stdout(&o);
    assert!(
        out.contains(
            "### Tag changes applied without review (supervised: their jobs are below HIGH)"
        ),
        "{out}"
    );
    assert!(
        out.contains("without review: the 1 waiting job it affects is below the supervised threshold HIGH (the most urgent: test:unit 1/6, job 2003, LOW)"),
        "{out}"
    );
    assert!(
        out.contains("### Tag changes for review, at or above HIGH (planned: written to `p.json`"),
        "{out}"
    );
    assert!(
        out.contains("for review: it affects deploy:production (job 2001, HIGH), at or above the supervised threshold HIGH"),
        "{out}"
    );
    // The audit log: 101's tags applied, 105's planned, each with why.
    let lines = audit_lines(&gl.dir.join("runneriq-audit.jsonl"));
    let changes: Vec<(u64, String, bool, bool)> = lines
        .iter()
        .filter(|l| l["kind"] == "tag_change")
        .map(|l| {
            let reason = l["reason"].as_str().unwrap();
            (
                l["runner"].as_u64().unwrap(),
                l["tag"].as_str().unwrap().to_string(),
                l["applied"].as_bool().unwrap(),
                reason.contains("for review:"),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (101, "runneriq:green".to_string(), true, false),
            (101, until.clone(), true, false),
            (105, "runneriq:green".to_string(), false, true),
            (105, until.clone(), false, true),
        ]
    );
    assert!(lines.iter().all(|l| l["mode"] == "supervised"));
    // The reviewed plan is applied later by a person.
    let later = (NOW + 600).to_string();
    let o = gl.run(
        &["apply", "p.json", "--execute"],
        &[("RUNNERIQ_NOW", &later)],
    );
    assert_exit(&o, 0);
    assert_eq!(
        gl.puts().iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![101, 105]
    );
    assert_eq!(
        gl.tags(105),
        v(&["deploy", "docker", "runneriq:green", &until])
    );
}

#[test]
fn supervised_with_a_threshold_but_no_execute_is_a_dry_run_for_the_changes_below_it() {
    let gl = Gl::start("threshold-dry", &[]);
    let o = supervised(&gl, &["--supervised-threshold", "high", "--format", "json"]);
    assert_exit(&o, 0);
    assert!(gl.puts().is_empty(), "{}", gl.log());
    let out: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let t = &out["tags"];
    assert_eq!(t["mode"], "supervised");
    assert_eq!(t["supervised_threshold"], "HIGH");
    assert_eq!(t["status"], "planned");
    assert_eq!(t["direct_status"], "dry run");
    let ids = |k: &str| -> Vec<u64> {
        t[k].as_array()
            .unwrap()
            .iter()
            .map(|c| c["runner"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids("direct"), vec![101]);
    assert_eq!(ids("changes"), vec![105]);
    assert_eq!(ids("applied"), vec![101]);
    assert_eq!(t["applied"][0]["sent"], false);
    assert_eq!(plan_runners(&gl), vec![105]);
}

#[test]
fn the_threshold_comes_from_the_config_and_decides_what_waits_for_review() {
    // CRITICAL: job 2001 (HIGH) is below it, so both changes are applied.
    let gl = Gl::start("threshold-config", &[]);
    std::fs::write(
        gl.dir.join(".runneriq.yml"),
        "routing:\n  trust:\n    supervised_threshold: CRITICAL\n",
    )
    .unwrap();
    let o = supervised(&gl, &["--execute"]);
    assert_exit(&o, 0);
    assert_eq!(
        gl.puts().iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![101, 105]
    );
    assert!(plan_runners(&gl).is_empty());
    // The flag wins over the config: LOW sends both to review, nothing is PUT.
    let gl = Gl::start("threshold-flag", &[]);
    std::fs::write(
        gl.dir.join(".runneriq.yml"),
        "routing:\n  trust:\n    supervised_threshold: critical\n",
    )
    .unwrap();
    let o = supervised(&gl, &["--execute", "--supervised-threshold", "LOW"]);
    assert_exit(&o, 0);
    assert!(gl.puts().is_empty(), "{}", gl.log());
    assert_eq!(plan_runners(&gl), vec![101, 105]);
}

#[test]
fn execute_in_supervised_mode_needs_a_threshold_and_the_threshold_needs_supervised_mode() {
    let gl = Gl::start("threshold-usage", &[]);
    let jobs = green_jobs(&gl);
    let fleet = gl.fleet();
    // --execute without a threshold: as before, autonomous only.
    let o = supervised(&gl, &["--execute"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("needs --mode autonomous, or --mode supervised with a threshold"));
    // The threshold in another mode.
    let o = gl.run(
        &[
            "route",
            "--mode",
            "autonomous",
            "--supervised-threshold",
            "high",
            "--project",
            PROJECT,
            "--jobs",
            &jobs,
        ],
        &[],
    );
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("needs --mode supervised (the mode is autonomous)"));
    // Applying needs the live fleet.
    let o = gl.run(
        &[
            "route",
            "--mode",
            "supervised",
            "--plan",
            "p.json",
            "--supervised-threshold",
            "high",
            "--execute",
            "--fleet",
            &fleet,
            "--jobs",
            &jobs,
        ],
        &[],
    );
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--execute changes runners' tags and needs the live fleet"));
    // A class that is not one.
    let o = supervised(&gl, &["--supervised-threshold", "urgent"]);
    assert_exit(&o, 2);
    assert!(gl.puts().is_empty());
    assert!(!gl.dir.join("p.json").exists());
}
