//! `runneriq route` and `runneriq explain` end to end: the real binary on the
//! fleet fixtures (tests/fixtures/fleet, real API shapes, see make-fleet.py),
//! against the fake GitLab for `--project`, and against the fake LLM for the
//! tie-break.

mod common;

use std::process::{Command, Output};

use common::fake_gitlab::{FakeGitLab, Fault};
use common::fake_llm::{FakeLlm, Step};
use serde_json::{Value, json};

const NOW: &str = "1767261600";
const TOKEN: &str = "glpat-route-secret-0001";

fn fx(name: &str) -> String {
    common::fixture(&format!("fleet/{name}"))
        .to_string_lossy()
        .into_owned()
}

/// `runneriq ARGS` in a clean environment plus `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runneriq"));
    cmd.args(args).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("RUNNERIQ_NOW", NOW);
    cmd.env("RUNNERIQ_HTTP_MAX_ATTEMPTS", "2");
    cmd.env("RUNNERIQ_HTTP_INITIAL_BACKOFF_MS", "5");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn files() -> Vec<String> {
    vec![
        "--jobs".into(),
        fx("jobs.json"),
        "--fleet".into(),
        fx("fleet.json"),
        "--history".into(),
        fx("history.json"),
    ]
}

fn route(extra: &[&str], env: &[(&str, &str)]) -> Output {
    let f = files();
    let mut args: Vec<&str> = vec!["route"];
    args.extend(f.iter().map(String::as_str));
    args.extend_from_slice(extra);
    run(&args, env)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

fn assignments(o: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_str(&stdout(o)).unwrap();
    v["assignments"].as_array().unwrap().clone()
}

fn by_job(list: &[Value], id: u64) -> Value {
    list.iter().find(|a| a["job"] == id).cloned().unwrap()
}

#[test]
fn route_json_keeps_the_contract() {
    let o = route(&["--format", "json"], &[]);
    ok(&o);
    let list = assignments(&o);
    // One entry per waiting job (the running ones only hold slots).
    assert_eq!(list.len(), 14);
    for a in &list {
        let p = a["priority"].as_u64().unwrap();
        assert!(p <= 100);
        assert!(["CRITICAL", "HIGH", "MEDIUM", "LOW"].contains(&a["urgency"].as_str().unwrap()));
        assert!(
            ["rules", "llm", "only_candidate", "none"].contains(&a["decided_by"].as_str().unwrap())
        );
        if a["runner"].is_null() {
            assert!(!a["reason"].as_str().unwrap().is_empty(), "{a}");
        }
    }
    // The deploy on main goes to the protected deploy runner, its only candidate.
    let deploy = by_job(&list, 2001);
    assert_eq!(deploy["runner"], 105);
    assert_eq!(deploy["decided_by"], "only_candidate");
    assert_eq!(deploy["urgency"], "HIGH");
    // The same deploy from a feature branch: the protected runner refuses it.
    let review = by_job(&list, 2013);
    assert!(review["runner"].is_null());
    assert_eq!(review["decided_by"], "none");
    assert!(
        review["reason"]
            .as_str()
            .unwrap()
            .contains("1 runs protected refs only"),
        "{review}"
    );
    // GPU job: the only GPU runner is paused.
    let gpu = by_job(&list, 2010);
    assert_eq!(
        gpu["reason"],
        "no online runner has tags [cuda, gpu] (the runners that have them are paused or offline)"
    );
    // docker-fr-1 has 4 slots and 2 running jobs: it gets 2 more, no runner
    // gets more than its free slots, and the rest queue with a position.
    let on = |r: u64| list.iter().filter(|a| a["runner"] == r).count();
    assert_eq!(on(101), 2);
    assert_eq!(on(102), 3);
    assert_eq!(on(103), 1);
    let queued: Vec<u64> = list
        .iter()
        .filter_map(|a| a["queued"]["position"].as_u64())
        .collect();
    assert_eq!(queued, vec![1, 2, 3, 4]);
    // The lint waited 400 s: LOW escalated to MEDIUM (SLA 300 s).
    let lint = by_job(&list, 2009);
    assert_eq!(lint["urgency"], "MEDIUM");
    assert_eq!(lint["priority_breakdown"]["base_urgency"], "LOW");
    // Placement order is priority order.
    let rank = |u: &str| {
        ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
            .iter()
            .position(|x| *x == u)
            .unwrap()
    };
    for w in list.windows(2) {
        let a = (
            rank(w[0]["urgency"].as_str().unwrap()),
            w[0]["priority"].as_u64().unwrap(),
        );
        let b = (
            rank(w[1]["urgency"].as_str().unwrap()),
            w[1]["priority"].as_u64().unwrap(),
        );
        assert!(a >= b, "{} before {}", w[0]["job"], w[1]["job"]);
    }
}

#[test]
fn route_markdown_and_explain() {
    let o = route(&[], &[]);
    ok(&o);
    let md = stdout(&o);
    eprintln!("{md}");
    assert!(
        md.starts_with(
            "### RunnerIQ route: 14 jobs, 7 runners (5 online, 9 of their 13 slots free; \
             1 slot paused; 2 slots offline)\n"
        ),
        "{md}"
    );
    assert!(
        md.contains("| `deploy:production` (job 2001, `main`) | 75 HIGH | `deploy-se` |"),
        "{md}"
    );
    assert!(md.contains("**Queued** (every eligible runner is busy):"));
    // Job and runner ids are never a bare `#2001`: GitLab would link an issue.
    assert!(
        common::markdown::bare_issue_references(&md).is_empty(),
        "{md}"
    );

    let f = files();
    let mut args: Vec<&str> = vec!["explain", "2002"];
    args.extend(f.iter().map(String::as_str));
    let o = run(&args, &[]);
    ok(&o);
    let md = stdout(&o);
    eprintln!("{md}");
    assert!(md.starts_with("### Job 2002 `build:linux` on `main`: priority 67 (MEDIUM)"));
    for factor in [
        "| branch | +100 |",
        "| role | +25 | role unknown |",
        "| job_type | +75 |",
    ] {
        assert!(md.contains(factor), "{factor}\n{md}");
    }
    for factor in [
        "| utilization |",
        "| tag_match |",
        "| headroom |",
        "| history |",
        "| carbon |",
    ] {
        assert!(md.contains(factor), "{factor}");
    }
    // Every runner of the fleet, eligible or not and why.
    assert!(
        md.contains("| `gpu-us-1` (id 104) | 1 | no | paused |"),
        "{md}"
    );
    assert!(md.contains("| `docker-old` (id 106) | 2 | no | offline, not online |"));
    assert!(md.contains("| `deploy-se` (id 105) | 0 | no | lacks tags \\[linux\\] |"));
    assert_eq!(md.matches("(id 10").count(), 7);
    assert!(
        common::markdown::bare_issue_references(&md).is_empty(),
        "{md}"
    );

    // Waits read as days and hours, not "after waiting 2592090 s".
    let mut args: Vec<&str> = vec!["explain", "2002"];
    args.extend(f.iter().map(String::as_str));
    let month_later = (NOW.parse::<i64>().unwrap() + 30 * 86_400).to_string();
    let md = stdout(&run(&args, &[("RUNNERIQ_NOW", &month_later)]));
    assert!(
        md.contains("MEDIUM → HIGH after waiting 30 days (SLA 2.0 min)"),
        "{md}"
    );

    let mut args: Vec<&str> = vec!["explain", "2002", "--format", "json"];
    args.extend(f.iter().map(String::as_str));
    let v: Value = serde_json::from_str(&stdout(&run(&args, &[]))).unwrap();
    assert_eq!(v["runners"].as_array().unwrap().len(), 7);
    assert_eq!(v["assignment"]["job"], 2002);
    assert_eq!(
        v["assignment"]["score"]["factors"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    let mut args: Vec<&str> = vec!["explain", "1901"];
    args.extend(f.iter().map(String::as_str));
    let o = run(&args, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("job 1901 is not waiting for a runner"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_inputs_exit_2_naming_the_file_and_the_field() {
    let dir = std::env::temp_dir().join(format!("runneriq-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("fleet.json");
    std::fs::write(
        &bad,
        r#"[{"id": 1, "tag_list": ["docker"]}, {"id": 2, "runneriq": {"concurrent": "four"}}]"#,
    )
    .unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, b"\x1f\x8b\x08\x00\xff\xfe binary").unwrap();
    let bad_s = bad.to_string_lossy().into_owned();
    let garbage_s = garbage.to_string_lossy().into_owned();
    for (args, want) in [
        (
            vec!["route", "--jobs", &fx("jobs.json"), "--fleet", &bad_s],
            format!("{bad_s}: [1].runneriq.concurrent: invalid type: string \"four\""),
        ),
        (
            vec!["route", "--jobs", &garbage_s, "--fleet", &fx("fleet.json")],
            format!("{garbage_s}: "),
        ),
        (
            vec![
                "route",
                "--jobs",
                "/nonexistent/jobs.json",
                "--fleet",
                &fx("fleet.json"),
            ],
            "/nonexistent/jobs.json: cannot read the jobs file".to_string(),
        ),
        (
            vec!["route", "--fleet", &fx("fleet.json")],
            "no jobs to route: pass --jobs FILE".to_string(),
        ),
    ] {
        let o = run(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&want), "{args:?}:\n{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(stdout(&o).is_empty());
    }
    let cfg = dir.join(".runneriq.yml");
    std::fs::write(&cfg, "routing: { margin: 2 }\n").unwrap();
    let o = route(&["--config", &cfg.to_string_lossy()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("routing.margin: expected a number from 0 to 1, got 2"));
}

#[test]
fn an_llm_breaks_a_tie_and_an_invalid_answer_leaves_the_rules_choice() {
    let llm = FakeLlm::start();
    // build:linux (#2002): docker-fr-1 79.8 vs docker-de-1 69.8, a 12 % margin.
    llm.script(vec![Step::Text(
        r#"{"runner": 102, "reason": "docker-de-1 is faster for build:linux"}"#.into(),
    )]);
    llm.default_text(r#"{"runner": 999, "reason": "a runner that does not exist"}"#);
    let env = [
        ("ANTHROPIC_API_KEY", "sk-ant-fake-route-key"),
        ("ANTHROPIC_BASE_URL", &llm.origin()),
    ];
    // With scarce runners kept, build:large takes docker-pl-large's last
    // slot before build:linux is placed; the carbon factor is relative to
    // the candidates with a free slot, so docker-de-1 then scores lower and
    // there is no tie. The tie-break is tested on plain priority order.
    let o = route(&["--format", "json", "--no-reserve-scarce"], &env);
    ok(&o);
    let list = assignments(&o);
    let build = by_job(&list, 2002);
    assert_eq!(build["runner"], 102, "{build}");
    assert_eq!(build["decided_by"], "llm");
    assert_eq!(build["runner_up"]["runner"], 101);
    assert_eq!(
        build["llm"]["reason"],
        "docker-de-1 is faster for build:linux"
    );
    // Only ties are sent; the prompt carries both factor tables.
    let sent = llm.requests();
    assert!(!sent.is_empty());
    assert!(sent[0].user_message().contains("Runner id 101"));
    assert!(sent[0].user_message().contains("Runner id 102"));
    let ties = list
        .iter()
        .filter(|a| a["tie"] == true && a["runner"].is_number())
        .count();
    assert_eq!(sent.len(), ties, "one request per tie for a free slot");
    for a in list
        .iter()
        .filter(|a| a["job"] != 2002 && a["tie"] == true && a["runner"].is_number())
    {
        assert_eq!(a["decided_by"], "rules", "{a}");
        assert!(
            a["llm_unavailable"]
                .as_str()
                .unwrap()
                .contains("not one of the two candidates")
        );
    }
    // Without a provider: rules only, nothing sent.
    let o = route(&["--format", "json", "--no-reserve-scarce"], &[]);
    assert_eq!(by_job(&assignments(&o), 2002)["decided_by"], "rules");
}

/// The fake GitLab of a project: waiting jobs, runners (list + details),
/// members, finished jobs.
fn project_gitlab() -> FakeGitLab {
    let fake = FakeGitLab::start();
    fake.require_token("PRIVATE-TOKEN", TOKEN);
    let read = |n: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(fx(n)).unwrap()).unwrap()
    };
    let fleet = read("fleet.json");
    let jobs = read("jobs.json");
    fake.route_list("/projects/42/jobs", jobs);
    let list: Vec<Value> = fleet
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"id": r["id"], "description": r["description"], "status": r["status"], "paused": r["paused"], "is_shared": true, "name": r["name"], "online": r["online"], "runner_type": r["runner_type"]}))
        .collect();
    fake.route_list("/projects/42/runners", Value::Array(list));
    for r in fleet.as_array().unwrap() {
        let mut detail = r.clone();
        detail.as_object_mut().unwrap().remove("runneriq");
        fake.route_json(
            "GET",
            &format!("/runners/{}", r["id"]),
            200,
            detail.to_string(),
        );
    }
    fake.route_list(
        "/projects/42/members/all",
        json!([{"id": 7, "username": "user7", "access_level": 40}]),
    );
    fake.route_json(
        "GET",
        "/projects/42",
        200,
        json!({"id": 42, "default_branch": "main"}).to_string(),
    );
    fake
}

#[test]
fn route_reads_a_project_from_gitlab() {
    let fake = project_gitlab();
    let o = run(
        &["route", "--project", "42", "--format", "json"],
        &[
            ("CI_API_V4_URL", &fake.base_url()),
            ("RUNNERIQ_TOKEN", TOKEN),
        ],
    );
    ok(&o);
    let list = assignments(&o);
    // The members list makes user 7 a maintainer: role 100 instead of 25.
    let deploy = by_job(&list, 2001);
    assert_eq!(deploy["priority"], 100);
    assert_eq!(deploy["urgency"], "CRITICAL");
    // Runners come from GitLab without the runneriq extension: 1 slot each.
    assert!(list.iter().filter(|a| a["runner"] == 101).count() <= 1);
    let log: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.api_path()))
        .collect();
    eprintln!("{log:#?}");
    assert!(log.contains(&"GET /projects/42/runners".to_string()));
    assert!(log.contains(&"GET /runners/105".to_string()));
    assert!(
        !log.iter()
            .any(|l| l.starts_with("PUT") || l.starts_with("POST")),
        "route is read-only"
    );
    assert!(!stdout(&o).contains(TOKEN) && !stderr(&o).contains(TOKEN));
}

#[test]
fn without_the_maintainer_role_the_error_points_at_a_fleet_file() {
    let fake = project_gitlab();
    fake.fail_next("/projects/42/runners", vec![Fault::Status(403)]);
    let o = run(
        &["route", "--project", "42"],
        &[
            ("CI_API_V4_URL", &fake.base_url()),
            ("RUNNERIQ_TOKEN", TOKEN),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("reading the project's runners needs the Maintainer role"),
        "{err}"
    );
    assert!(err.contains("--fleet FILE"), "{err}");
    assert!(!err.contains(TOKEN));
}

#[test]
fn a_job_timeout_above_a_runners_maximum_keeps_it_off_that_runner() {
    // docs (#2012) is untagged: without a timeout it goes to shell-gcp-1,
    // whose maximum_timeout is 1 h.
    let o = route(&["--format", "json"], &[]);
    assert_eq!(by_job(&assignments(&o), 2012)["runner"], 107);
    let o = route(&["--format", "json", "--job-timeout", "2h"], &[]);
    ok(&o);
    assert_ne!(by_job(&assignments(&o), 2012)["runner"], 107);
    let f = files();
    let mut args: Vec<&str> = vec!["explain", "2012", "--job-timeout", "2h"];
    args.extend(f.iter().map(String::as_str));
    let md = stdout(&run(&args, &[]));
    assert!(
        md.contains(
            "| `shell-gcp-1` (id 107) | 2 | no | maximum timeout 3600 s is below the job\'s 7200 s |"
        ),
        "{md}"
    );
}

#[test]
fn route_reads_a_report_snapshot_instead_of_the_api() {
    let snap = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo/data/week.json.gz");
    let o = run(
        &[
            "route",
            "--snapshot",
            &snap.to_string_lossy(),
            "--format",
            "json",
        ],
        &[],
    );
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["assignments"].as_array().unwrap().len(), 552);
    assert_eq!(v["fleet"]["runners"], 5, "the snapshot's fleet");
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("as if it were waiting"))
    );
}

/// A file of `n` bytes: a JSON array of `{}` elements (small JSON that would
/// expand into gigabytes of default structs).
fn empty_objects(name: &str, n: usize) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("runneriq-{}-{name}", std::process::id()));
    let mut text = String::with_capacity(n + 4);
    text.push('[');
    while text.len() + 3 < n {
        text.push_str("{},");
    }
    text.push_str("{}]");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn files_of_empty_objects_are_refused_at_their_first_element() {
    // 10 MB of `{}`: 3.3 million jobs of defaults, once 6 GB of memory.
    let jobs = empty_objects("jobs-10mb.json", 10_000_000);
    let jobs_s = jobs.to_string_lossy().into_owned();
    let fleet = fx("fleet.json");
    let o = run(&["route", "--jobs", &jobs_s, "--fleet", &fleet], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{jobs_s}: [0]: missing field `id`")),
        "{err}"
    );
    // A fleet is read as JSON values first (to name bad fields in runner
    // objects), so a megabyte of `{}` hits the runner count cap, and one `{}`
    // the missing id.
    let runners = empty_objects("fleet-1mb.json", 1_000_000);
    let runners_s = runners.to_string_lossy().into_owned();
    let jobs_fx = fx("jobs.json");
    let o = run(&["route", "--jobs", &jobs_fx, "--fleet", &runners_s], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{runners_s}: more than 50000 elements")),
        "{}",
        stderr(&o)
    );
    let one = empty_objects("fleet-one.json", 2);
    let one_s = one.to_string_lossy().into_owned();
    let o = run(&["route", "--jobs", &jobs_fx, "--fleet", &one_s], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{one_s}: [0]: missing field `id`")),
        "{}",
        stderr(&o)
    );
    // Valid but too many: the count is capped while parsing.
    let many = std::env::temp_dir().join(format!("runneriq-{}-many.json", std::process::id()));
    let text: Vec<String> = (1..=50_001).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
    std::fs::write(&many, format!("[{}]", text.join(","))).unwrap();
    let many_s = many.to_string_lossy().into_owned();
    let o = run(&["route", "--jobs", &jobs_fx, "--fleet", &many_s], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than 50000 elements"),
        "{}",
        stderr(&o)
    );
    for p in [jobs, runners, one, many] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_device_that_never_ends_is_refused_at_the_size_cap() {
    let fleet = fx("fleet.json");
    let o = run(&["route", "--jobs", "/dev/zero", "--fleet", &fleet], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/dev/zero: cannot read the jobs file: larger than 512 MiB"),
        "{}",
        stderr(&o)
    );
}

/// `route` on the GPU fixture: one GPU runner (2 slots, cleanest grid, idle)
/// among generic runners, five generic jobs on main and `test:gpu` (job 103)
/// on a feature branch.
fn gpu(cmd: &str, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![cmd.into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    for (flag, file) in [
        ("--jobs", "gpu-jobs.json"),
        ("--fleet", "gpu-fleet.json"),
        ("--history", "gpu-history.json"),
    ] {
        args.push(flag.into());
        args.push(fx(file));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs, &[])
}

#[test]
fn the_gpu_runner_is_kept_for_the_job_only_it_can_take() {
    let on_gpu = |o: &Output| -> Vec<u64> {
        let mut v: Vec<u64> = assignments(o)
            .iter()
            .filter(|a| a["runner"] == 301)
            .map(|a| a["job"].as_u64().unwrap())
            .collect();
        v.sort_unstable();
        v
    };
    // Plain priority order: generic jobs take both GPU slots, test:gpu waits.
    let o = gpu("route", &["--format", "json", "--no-reserve-scarce"]);
    ok(&o);
    assert_eq!(on_gpu(&o), vec![101, 106]);
    let t = by_job(&assignments(&o), 103);
    assert_eq!(t["runner"], Value::Null);
    assert_eq!(t["queued"]["runner"], 301);
    assert!(t.get("scarce_class").is_none());
    // The same from `.runneriq.yml`.
    let dir = std::env::temp_dir().join(format!("runneriq-scarce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join(".runneriq.yml");
    std::fs::write(&cfg, "routing: { reserve_scarce: false }\n").unwrap();
    let o = gpu(
        "route",
        &["--format", "json", "--config", &cfg.to_string_lossy()],
    );
    ok(&o);
    assert_eq!(on_gpu(&o), vec![101, 106]);

    // Kept (the default): test:gpu gets a GPU slot, lint (the lowest of the
    // generic jobs) waits and says why.
    let o = gpu("route", &["--format", "json"]);
    ok(&o);
    assert_eq!(on_gpu(&o), vec![103, 106]);
    let list = assignments(&o);
    assert_eq!(by_job(&list, 103)["scarce_class"], json!([301]));
    let lint = by_job(&list, 105);
    assert_eq!(lint["runner"], Value::Null);
    assert_eq!(
        lint["kept"],
        json!([{"runner": 301, "runner_name": "gpu-se-1", "job": 103, "name": "test:gpu", "class_size": 1}])
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["fleet"],
        json!({"runners": 5, "online": 3, "slots": 5, "free_slots_before": 5, "paused_slots": 4,
               "offline_slots": 4, "placed": 5, "queued": 1, "unplaceable": 0})
    );

    let o = gpu("route", &[]);
    ok(&o);
    let md = stdout(&o);
    eprintln!("{md}");
    // Usable slots only; paused and offline capacity apart (it said "13 of
    // 13 slots free").
    assert!(
        md.starts_with(
            "### RunnerIQ route: 6 jobs, 5 runners (3 online, 5 of their 5 slots free; \
             4 slots paused; 4 slots offline)\n"
        ),
        "{md}"
    );
    assert!(md.contains("| `test:gpu` (job 103, `feature/cuda-kernels`) | 42 LOW | `gpu-se-1` |"));
    assert!(
        md.contains(
            "- `gpu-se-1` kept for `test:gpu` (job 103), which only this runner can take\n"
        )
    );
    assert!(
        common::markdown::bare_issue_references(&md).is_empty(),
        "{md}"
    );

    let o = gpu("explain", &["105"]);
    ok(&o);
    let md = stdout(&o);
    assert!(
        md.contains("| `gpu-se-1` (id 301) | 0 | yes | 55.3; no free slot: kept for `test:gpu` (job 103), which only this runner can take |"),
        "{md}"
    );
    assert!(
        common::markdown::bare_issue_references(&md).is_empty(),
        "{md}"
    );
    let o = gpu("explain", &["103"]);
    ok(&o);
    assert!(stdout(&o).contains("Scarce: only one runner of the fleet can take it"));
}

/// A fleet in one Electricity Maps zone (DE) and a cloud region, which is
/// not a zone: only DE is asked.
fn de_fleet() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("runneriq-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fleet-de.json");
    std::fs::write(
        &path,
        json!([
            {"id": 201, "description": "docker-de-1", "status": "online", "paused": false,
             "run_untagged": true, "tag_list": ["docker", "linux", "large", "deploy"],
             "runneriq": {"concurrent": 20, "zone": "DE", "power_watts": 350}},
            {"id": 202, "description": "shell-gcp-1", "status": "online", "paused": false,
             "run_untagged": true, "tag_list": [],
             "runneriq": {"concurrent": 2, "zone": "gcp:europe-west1"}}
        ])
        .to_string(),
    )
    .unwrap();
    path
}

/// A fake Electricity Maps: DE at 180 g now (2026-01-01T10:00Z), 108 g at
/// 14:00 UTC (40 % cleaner).
fn electricity_maps() -> FakeGitLab {
    let em = FakeGitLab::start();
    em.route_json(
        "GET",
        "/v3/carbon-intensity/latest",
        200,
        json!({"zone": "DE", "carbonIntensity": 180.0, "datetime": "2026-01-01T10:00:00.000Z"})
            .to_string(),
    );
    em.route_json(
        "GET",
        "/v3/carbon-intensity/forecast",
        200,
        json!({"zone": "DE", "forecast": [
            {"carbonIntensity": 170.0, "datetime": "2026-01-01T11:00:00.000Z"},
            {"carbonIntensity": 108.0, "datetime": "2026-01-01T14:00:00.000Z"},
            {"carbonIntensity": 150.0, "datetime": "2026-01-01T20:00:00.000Z"}
        ]})
        .to_string(),
    );
    em
}

#[test]
fn route_uses_live_carbon_and_tells_low_jobs_when_it_is_cleaner() {
    let em = electricity_maps();
    let base = em.base_url();
    let env = [
        ("ELECTRICITY_MAPS_TOKEN", "em-secret-token"),
        ("ELECTRICITY_MAPS_URL", base.as_str()),
    ];
    let fleet = de_fleet();
    let jobs = fx("jobs.json");
    let f = fleet.to_string_lossy().into_owned();
    let args = ["route", "--jobs", &jobs, "--fleet", &f];
    let o = run(&[&args[..], &["--format", "json"]].concat(), &env);
    ok(&o);
    let list = assignments(&o);
    // A unit test on a feature branch is LOW: it can wait until 14:00 UTC.
    let unit = by_job(&list, 2003);
    assert_eq!(unit["urgency"], "LOW");
    let c = &unit["cleaner_later"];
    assert_eq!(c["zone"], "DE");
    assert_eq!(c["now_g_per_kwh"], 180.0);
    assert_eq!(c["g_per_kwh"], 108.0);
    assert_eq!(c["at"], "2026-01-01T14:00:00.000Z");
    assert_eq!(c["in_s"], 4 * 3600);
    assert!((c["cleaner"].as_f64().unwrap() - 0.4).abs() < 1e-9);
    // The live value is what the carbon factor scored.
    let carbon = unit["score"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["factor"] == "carbon")
        .unwrap()
        .clone();
    assert_eq!(carbon["detail"], "180 gCO₂/kWh (DE)");
    // Other classes get no such advice (lint, LOW by its score, waited
    // long enough to be escalated to MEDIUM).
    for id in [2001, 2009, 2012] {
        let a = by_job(&list, id);
        assert_ne!(a["urgency"], "LOW");
        assert!(a.get("cleaner_later").is_none(), "{a}");
    }
    // Once per zone per run, the token in the header only.
    let asked = em.requests();
    assert_eq!(asked.len(), 2, "latest + forecast for DE");
    assert_eq!(asked[0].header("auth-token"), Some("em-secret-token"));
    assert_eq!(asked[0].query_param("zone"), Some("DE"));

    let o = run(&args, &env);
    ok(&o);
    let md = stdout(&o);
    assert!(
        md.contains(
            "- `test:unit 1/6` (job 2003) on `docker-de-1`: run after 14:00 UTC (in ~4 h), 40 % cleaner \
             (108 instead of 180 gCO₂e/kWh in `DE`)"
        ),
        "{md}"
    );
    assert!(!md.contains("em-secret-token") && !stderr(&o).contains("em-secret-token"));
    assert!(
        common::markdown::bare_issue_references(&md).is_empty(),
        "{md}"
    );

    // The API failing: the table's value, a warning, no advice, no abort.
    em.fail_next("/v3/carbon-intensity/latest", vec![Fault::Status(500)]);
    let o = run(&[&args[..], &["--format", "json"]].concat(), &env);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "Electricity Maps for zone DE: HTTP 500; the embedded table's annual average is used"),
        "{v}"
    );
    assert!(
        by_job(&assignments(&o), 2003)
            .get("cleaner_later")
            .is_none()
    );

    // Without a token nothing is asked.
    let n = em.requests().len();
    ok(&run(&args, &[]));
    assert_eq!(em.requests().len(), n);
}
