//! `runneriq simulate` end to end: a small history computed by hand, the
//! JSON contract, byte-identical reruns, the demo history, bad inputs.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runneriq"));
    cmd.args(args).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.output().unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tmp(name: &str, v: &Value) -> String {
    let dir = std::env::temp_dir().join(format!("runneriq-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_string_lossy().into_owned()
}

/// Two one-slot runners (FR, DE) built from the fleet fixture's shape.
fn fleet() -> Value {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("fleet/fleet.json")).unwrap(),
    )
    .unwrap();
    let mut a = all[0].clone();
    let mut b = all[1].clone();
    for (r, zone) in [(&mut a, "FR"), (&mut b, "DE")] {
        r["tag_list"] = json!(["docker"]);
        r["runneriq"] = json!({"concurrent": 1, "zone": zone, "power_watts": 360});
    }
    json!([a, b])
}

/// Jobs of 100 s: LOW lints at t=0, 0, 20, 40 and HIGH deploys on main at
/// t=10, 30 (real job shapes from the fixtures).
fn jobs() -> Value {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("fleet/history.json")).unwrap(),
    )
    .unwrap();
    let t = all[0].clone();
    let mk = |id: u64, name: &str, stage: &str, git_ref: &str, at: u64, wait: f64| {
        let mut j = t.clone();
        j["id"] = id.into();
        j["name"] = name.into();
        j["stage"] = stage.into();
        j["ref"] = git_ref.into();
        j["status"] = "success".into();
        j["tag_list"] = json!(["docker"]);
        j["created_at"] = format!("2026-01-01T10:00:{at:02}.000Z").into();
        j["duration"] = json!(100.0);
        j["queued_duration"] = json!(wait);
        j["runner"] = Value::Null;
        j
    };
    json!([
        mk(1, "lint", "lint", "spike/a", 0, 0.0),
        mk(2, "lint", "lint", "spike/b", 0, 0.0),
        mk(3, "deploy", "deploy", "main", 10, 90.0),
        mk(4, "lint", "lint", "spike/c", 20, 80.0),
        mk(5, "deploy", "deploy", "main", 30, 170.0),
        mk(6, "lint", "lint", "spike/d", 40, 160.0),
    ])
}

#[test]
fn a_small_history_computed_by_hand() {
    let (j, f) = (tmp("jobs.json", &jobs()), tmp("fleet.json", &fleet()));
    let o = run(&[
        "simulate",
        "--jobs",
        &j,
        "--fleet",
        &f,
        "--format",
        "json",
        "--default-branch",
        "main",
    ]);
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["jobs"], 6);
    let w = |p: &str, c: &str, k: &str| v["policies"][p]["queue_wait"][c][k].as_f64().unwrap();
    // fifo: at t=100 both runners free; the oldest jobs go first:
    // deploy#3 waits 90, lint#4 80, then at t=200 deploy#5 170, lint#6 160.
    assert_eq!(
        (w("fifo", "HIGH", "max"), w("fifo", "HIGH", "p50")),
        (170.0, 90.0)
    );
    assert_eq!(w("fifo", "LOW", "max"), 160.0);
    // priority: both deploys first at t=100 (90 and 70), the lints after.
    assert_eq!(w("priority", "HIGH", "max"), 90.0);
    assert_eq!(w("priority", "LOW", "max"), 180.0);
    // carbon: lints wait for FR (the cleaner runner): deploy#3 takes DE at
    // once, the lints run one after the other on FR (the last waits 360 s).
    assert_eq!(w("carbon", "HIGH", "max"), 70.0);
    assert_eq!(w("carbon", "LOW", "max"), 360.0);
    assert_eq!(v["policies"]["fifo"]["makespan_s"], 300.0);
    assert_eq!(v["policies"]["carbon"]["makespan_s"], 500.0);
    assert!(v["policies"]["carbon"]["co2e_g"].as_f64() < v["policies"]["fifo"]["co2e_g"].as_f64());
    // The recorded queue times are fifo's: the replay error is 0.
    assert_eq!(v["fifo_error"]["median_abs_s"], 0.0);
    assert_eq!(v["fifo_error"]["p95_abs_s"], 0.0);
}

#[test]
fn the_same_input_gives_byte_identical_output() {
    let snap = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/demo/data/week.json.gz");
    let s = snap.to_string_lossy().into_owned();
    for format in ["md", "json"] {
        let a = run(&["simulate", "--snapshot", &s, "--format", format]);
        let b = run(&["simulate", "--snapshot", &s, "--format", format]);
        ok(&a);
        assert_eq!(a.stdout, b.stdout, "{format}");
    }
    let o = run(&["simulate", "--snapshot", &s, "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["jobs"], 552);
    for p in ["fifo", "priority", "carbon"] {
        let qw = v["policies"][p]["queue_wait"].as_object().unwrap();
        assert!(!qw.is_empty());
        for stats in qw.values() {
            for k in ["p50", "p95", "max"] {
                assert!(stats[k].is_number(), "{p}: {k}");
            }
        }
        assert_eq!(v["policies"][p]["jobs"], 552);
    }
    let e = &v["fifo_error"];
    eprintln!(
        "demo fifo error: median {} s, p95 {} s over {} jobs",
        e["median_abs_s"], e["p95_abs_s"], e["jobs"]
    );
    assert!(e["jobs"].as_u64().unwrap() > 0);
    // The demo week's fleet is never full: every replayed wait is 0 s, the
    // policies differ by less than the replay's error. One sentence says so
    // instead of a table of zeros and a chart of them.
    assert_eq!(v["policies_told_apart"], false);
    assert_eq!(v["observed_wait"]["HIGH"]["p95"], 36.7);
    let md = String::from_utf8(run(&["simulate", "--snapshot", &s]).stdout).unwrap();
    assert!(md.contains("**How far to trust it:**"));
    assert!(md.contains("**The replay can't tell the policies apart:** their p95 queue waits differ by at most 65 s, less than the replay's own error (p95 3.1 min per job)"), "{md}");
    assert!(!md.contains("```mermaid"), "{md}");
    assert!(md.contains("<details>\n<summary>Replayed queue waits per policy and class</summary>"));
    // Its CO₂e beside what the jobs emitted where they ran (the report's
    // Carbon section: 13.41 kg).
    assert_eq!(v["observed_co2e_g"].as_f64().map(f64::round), Some(13412.0));
    assert!(md.contains("**CO₂e:** these jobs emitted 13.41 kg where they really ran"));
    assert!(md.contains("its fifo total (14.62 kg) is the baseline"));

    // HTML: a page like the report's, not the Markdown in <pre>.
    let html =
        String::from_utf8(run(&["simulate", "--snapshot", &s, "--format", "html"]).stdout).unwrap();
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(!html.contains("<pre>") && !html.contains("**") && !html.contains("```"));
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("<div class=\"scroll\"><table>"));
    assert!(html.contains("<strong>The replay can't tell the policies apart:</strong>"));
}

#[test]
fn when_the_policies_differ_the_chart_shows_them_one_bar_each() {
    // Two one-slot runners kept busy for an hour; the recorded queue times
    // are fifo's (tests/fixtures/fleet/make-fleet.py).
    let j = common::fixture("fleet/busy-jobs.json");
    let f = common::fixture("fleet/busy-fleet.json");
    let (j, f) = (j.to_string_lossy(), f.to_string_lossy());
    let base = [
        "simulate",
        "--jobs",
        &j,
        "--fleet",
        &f,
        "--default-branch",
        "main",
    ];
    let v: Value =
        serde_json::from_slice(&run(&[&base[..], &["--format", "json"]].concat()).stdout).unwrap();
    assert_eq!(v["fifo_error"]["p95_abs_s"], 0.0);
    assert_eq!(v["policies_told_apart"], true);
    let o = run(&base);
    ok(&o);
    let md = String::from_utf8(o.stdout).unwrap();
    assert!(
        md.contains("| priority | HIGH | 8 | 20 s | 60 s | 60 s |"),
        "{md}"
    );
    assert!(
        md.contains("- priority: HIGH −2.7 min, MEDIUM −80 s, LOW +4.0 min"),
        "{md}"
    );
    // One series (xychart draws no legend), bars not lines, from 0; nine
    // labels too wide to stand side by side, so the bars lie down.
    let chart = md
        .split("```mermaid\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert!(chart.contains("xychart-beta horizontal\n"), "{chart}");
    assert!(chart.contains("\"HIGH fifo\", \"HIGH priority\", \"HIGH carbon\", \"MEDIUM fifo\""));
    assert!(
        chart.contains("    y-axis \"seconds\" 0 --> 500\n"),
        "{chart}"
    );
    assert_eq!(chart.matches("bar [").count(), 1);
    assert!(!chart.contains("line ["));
    // --charts table: no chart, the tables stay.
    let md = String::from_utf8(run(&[&base[..], &["--charts", "table"]].concat()).stdout).unwrap();
    assert!(!md.contains("```mermaid") && md.contains("| priority | HIGH |"));
    // The HTML page draws it as inline SVG.
    let html = String::from_utf8(run(&[&base[..], &["--format", "html"]].concat()).stdout).unwrap();
    assert!(html.contains("<figcaption>Queue wait p95 by class and policy</figcaption><svg"));
}

#[test]
fn unreplayable_jobs_are_counted_and_bad_input_is_one_error() {
    let mut js = jobs();
    js[0]["tag_list"] = json!(["gpu"]);
    js[1]["created_at"] = Value::Null;
    let (j, f) = (tmp("jobs2.json", &js), tmp("fleet2.json", &fleet()));
    let o = run(&["simulate", "--jobs", &j, "--fleet", &f, "--format", "json"]);
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["jobs"], 4);
    assert_eq!(v["unreplayable"]["no eligible runner in the fleet"], 1);
    assert_eq!(v["unreplayable"]["missing timestamps"], 1);
    assert_eq!(v["unreplayable_jobs"].as_array().unwrap().len(), 2);

    let bad = tmp("bad-fleet.json", &json!([{"id": "seven"}]));
    let o = run(&["simulate", "--jobs", &j, "--fleet", &bad]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad-fleet.json: [0].id: invalid type"),
        "{err}"
    );
    let o = run(&["simulate", "--fleet", &f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no history"));
}

/// The GPU fixture's hour (tests/fixtures/fleet/make-fleet.py): one GPU
/// runner (2 slots) among generic runners (3 slots), a generic job on main
/// every 36 s and `test:gpu` on a feature branch every 5 min. Under
/// `priority` a freed GPU slot goes to the more urgent generic jobs and
/// `test:gpu` starves; with the GPU runner kept for it (the default), it
/// waits seconds.
#[test]
fn keeping_the_gpu_runner_shows_in_the_scarce_jobs_wait() {
    let fx = |n: &str| {
        common::fixture(&format!("fleet/{n}"))
            .to_string_lossy()
            .into_owned()
    };
    let (jobs, fleet) = (fx("gpu-history.json"), fx("gpu-fleet.json"));
    let sim = |extra: &[&str]| -> Value {
        let mut args = vec![
            "simulate", "--jobs", &jobs, "--fleet", &fleet, "--format", "json",
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        ok(&o);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let p95 = |v: &Value, p: &str| v["policies"][p]["scarce_wait"]["p95"].as_f64().unwrap();
    let kept = sim(&[]);
    assert_eq!(kept["reserve_scarce"], true);
    assert_eq!(kept["scarce_jobs"], json!(["test:gpu"]));
    assert_eq!(kept["policies"]["priority"]["scarce_wait"]["jobs"], 12);
    // The fifo replay is exact here (the fixture's queue times are fifo's).
    assert_eq!(kept["fifo_error"]["p95_abs_s"], 0.0);
    let plain = sim(&["--no-reserve-scarce"]);
    assert_eq!(plain["reserve_scarce"], false);
    // fifo is GitLab's and keeps nothing: the same either way.
    assert_eq!(p95(&kept, "fifo"), 304.0);
    assert_eq!(p95(&plain, "fifo"), 304.0);
    assert_eq!(p95(&kept, "priority"), 4.0);
    assert_eq!(p95(&plain, "priority"), 1960.0);
    assert_eq!(p95(&kept, "carbon"), 4.0);
    // What it costs the generic jobs (MEDIUM), shown beside it.
    let medium = |v: &Value| {
        v["policies"]["priority"]["queue_wait"]["MEDIUM"]["p95"]
            .as_f64()
            .unwrap()
    };
    assert_eq!((medium(&kept), medium(&plain)), (276.0, 144.0));

    let o = run(&["simulate", "--jobs", &jobs, "--fleet", &fleet]);
    ok(&o);
    let md = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        md.contains("**Scarce runners:** 12 jobs (`test:gpu`) could only run on a smaller runner class than other jobs'"),
        "{md}"
    );
    assert!(md.contains("| priority | 4 s | 4 s | 4 s |"), "{md}");
    assert!(
        common::markdown::bare_issue_references(&md).is_empty(),
        "{md}"
    );
}

#[test]
fn simulate_keeps_the_annual_tables_with_a_live_carbon_token_and_says_so() {
    let em = common::fake_gitlab::FakeGitLab::start();
    let (j, f) = (tmp("jobs.json", &jobs()), tmp("fleet.json", &fleet()));
    let args = ["simulate", "--jobs", &j, "--fleet", &f, "--format", "json"];
    let plain: Value = serde_json::from_slice(&run(&args).stdout).unwrap();
    let base = em.base_url();
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(args)
        .env_clear()
        .env("ELECTRICITY_MAPS_TOKEN", "em-secret-token")
        .env("ELECTRICITY_MAPS_URL", &base)
        .output()
        .unwrap();
    ok(&o);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Nothing asked, the same replay, and a limitation that says why.
    assert!(em.requests().is_empty());
    assert_eq!(v["policies"], plain["policies"]);
    let limits = v["limitations"].as_array().unwrap();
    assert!(
        limits.iter().any(|l| l.as_str().unwrap().starts_with(
            "ELECTRICITY_MAPS_TOKEN is set, but the replay keeps the tables' annual averages"
        )),
        "{v}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("em-secret-token"));
}

#[test]
fn busy_cost_is_shown_per_policy_in_markdown() {
    // Both runners at 0.36 an hour with one slot: the six jobs' 600 s of
    // work cost 600 / 3600 × 0.36 = 0.06 under every policy.
    let mut f = fleet();
    for r in f.as_array_mut().unwrap() {
        r["runneriq"]["cost_per_hour"] = json!(0.36);
    }
    let (j, f) = (tmp("jobs-cost.json", &jobs()), tmp("fleet-cost.json", &f));
    let args = [
        "simulate",
        "--jobs",
        &j,
        "--fleet",
        &f,
        "--default-branch",
        "main",
    ];
    let o = run(&args);
    ok(&o);
    let md = String::from_utf8(o.stdout).unwrap();
    assert!(
        md.contains("| Policy | Busy cost | Jobs on runners without a cost |"),
        "{md}"
    );
    for policy in ["fifo", "priority", "carbon"] {
        assert!(
            md.contains(&format!("| {policy} | 0.06 | 0 |")),
            "{policy}: {md}"
        );
    }
}
