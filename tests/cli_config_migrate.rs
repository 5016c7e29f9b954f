//! `runneriq config migrate`: RunnerIQ 6.x's `runneriq.yaml` (the fixture in
//! `tests/fixtures/runneriq-6`, see its NOTES.md) turned into `.runneriq.yml`
//! by the real binary, the report of what has no equivalent, the exit codes,
//! no overwriting without `--force`, and the migrated file loaded by `route`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture_6x() -> PathBuf {
    common::fixture("runneriq-6/runneriq.yaml")
}

/// A fresh working directory for one test.
fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runneriq-migrate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `runneriq ARGS` in `dir`, in an empty environment.
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUNNERIQ_NOW", "1767225600")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// The files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The weight `route --format json` gave `factor` in job `job`'s score.
fn factor_weight(route_json: &Value, job: u64, factor: &str) -> f64 {
    let a = route_json["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["job"] == job)
        .unwrap_or_else(|| panic!("job {job} in {route_json}"));
    a["score"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["factor"] == factor)
        .unwrap()["weight"]
        .as_f64()
        .unwrap()
}

fn route_json(dir: &Path, extra: &[&str]) -> Value {
    let jobs = common::fixture("fleet/jobs.json");
    let fleet = common::fixture("fleet/fleet.json");
    let mut args = vec![
        "route",
        "--format",
        "json",
        "--jobs",
        jobs.to_str().unwrap(),
        "--fleet",
        fleet.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(dir, &args);
    assert_exit(&o, 0);
    serde_json::from_str(&text(&o.stdout)).unwrap()
}

#[test]
fn the_6x_file_becomes_a_runneriq_yml_that_route_loads() {
    let dir = workdir("fixture");
    let input = fixture_6x();
    let o = run(&dir, &["config", "migrate", input.to_str().unwrap()]);
    assert_exit(&o, 0);
    assert_eq!(files(&dir), vec![".runneriq.yml"], "no temporary file left");
    let yaml = std::fs::read_to_string(dir.join(".runneriq.yml")).unwrap();
    for line in [
        "priority:\n",
        "    - { glob: \"main\", weight: 100 }\n    - { glob: \"hotfix/*\", weight: 95 }\n    - { glob: \"develop\", weight: 75 }\n    - { glob: \"feature/*\", weight: 50 }\n",
        "  other_branch: 40\n",
        "  roles: { maintainer: 100, developer: 75, guest: 25 }\n",
        "    - { name: \"lint\", keywords: [\"lint\", \"format\", \"style\", \"eslint\", \"rubocop\", \"flake8\"], weight: 40 }\n",
        "  manual_bonus: 10",
        "  non_production_cap: 75",
        "routing:\n",
        "  weights: { utilization: 0.4, tag_match: 0.2, headroom: 0.2, history: 0.2 }\n",
        "  margin: 0.15",
        "  trust:\n    supervised_threshold: high\n",
        "#   runneriq.assigner.decision_engine.daily_token_budget (line 38)\n",
    ] {
        assert!(yaml.contains(line), "{line:?} not in:\n{yaml}");
    }
    // The report, key by key, on stdout.
    let report = text(&o.stdout);
    assert!(report.starts_with("runneriq: "), "{report}");
    assert!(
        report.contains("→ .runneriq.yml: 8 settings carried over."),
        "{report}"
    );
    let elsewhere = report
        .split("Not in .runneriq.yml: a flag or a variable here:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{report}"));
    let keys: Vec<&str> = elsewhere
        .lines()
        .filter(|l| l.starts_with("- "))
        .map(|l| l.split(" (line").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            "- runneriq.assigner.decision_engine.mode = \"hybrid\"",
            "- runneriq.assigner.decision_engine.daily_token_budget = 50000",
            "- runneriq.assigner.trust_model.mode = \"supervised\"",
        ]
    );
    assert!(
        report.contains("set RUNNERIQ_LLM_MAX_TOKENS_DAY=50000"),
        "{report}"
    );
    assert!(
        report.contains("runneriq.assigner.scoring.weights (line 30): → routing.weights (capacity → headroom). Normalised differently"),
        "{report}"
    );
    assert!(!report.contains("No equivalent:"), "{report}");
    assert!(text(&o.stderr).is_empty(), "{}", text(&o.stderr));

    // `route` in that directory finds and uses it: utilization weighs 0.40
    // of the four weights (sum 1.0), and job 2001 (HIGH) gives carbon 20 %.
    let migrated = route_json(&dir, &[]);
    let default = route_json(&dir, &["--config", "/dev/null"]);
    assert!((factor_weight(&migrated, 2001, "utilization") - 0.40 * 0.80).abs() < 1e-9);
    assert!((factor_weight(&default, 2001, "utilization") - 0.30 * 0.80).abs() < 1e-9);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_existing_file_is_left_alone_without_force() {
    let dir = workdir("force");
    let input = fixture_6x();
    let input = input.to_str().unwrap();
    std::fs::write(dir.join(".runneriq.yml"), "history: { runs: 7 }\n").unwrap();
    let o = run(&dir, &["config", "migrate", input]);
    assert_exit(&o, 2);
    let err = text(&o.stderr);
    assert_eq!(
        err,
        "runneriq: .runneriq.yml: exists already, left as it is: pass --force to replace it, or -o FILE (-o - for stdout)\n"
    );
    assert!(o.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.join(".runneriq.yml")).unwrap(),
        "history: { runs: 7 }\n"
    );
    assert_eq!(files(&dir), vec![".runneriq.yml"], "no temporary file left");
    // -o names another file; --force replaces.
    let o = run(&dir, &["config", "migrate", input, "-o", "other.yml"]);
    assert_exit(&o, 0);
    let o = run(&dir, &["config", "migrate", input, "--force"]);
    assert_exit(&o, 0);
    let replaced = std::fs::read_to_string(dir.join(".runneriq.yml")).unwrap();
    assert_eq!(
        replaced,
        std::fs::read_to_string(dir.join("other.yml")).unwrap()
    );
    assert!(replaced.contains("supervised_threshold: high"));
    assert_eq!(files(&dir), vec![".runneriq.yml", "other.yml"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dash_writes_the_config_to_stdout_and_the_report_to_stderr() {
    let dir = workdir("stdout");
    let input = fixture_6x();
    let o = run(
        &dir,
        &["config", "migrate", input.to_str().unwrap(), "-o", "-"],
    );
    assert_exit(&o, 0);
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    let yaml = text(&o.stdout);
    assert!(yaml.starts_with("# .runneriq.yml migrated from "), "{yaml}");
    let report = text(&o.stderr);
    assert!(
        report.contains("→ stdout: 8 settings carried over."),
        "{report}"
    );
    // What went to stdout is a config `route` loads.
    std::fs::write(dir.join("from-stdout.yml"), &yaml).unwrap();
    let r = route_json(&dir, &["--config", "from-stdout.yml"]);
    assert!((factor_weight(&r, 2001, "utilization") - 0.32).abs() < 1e-9);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_keys_are_listed_key_by_key_and_modes_without_equivalent_say_why() {
    let dir = workdir("unknown");
    std::fs::write(
        dir.join("runneriq.yaml"),
        "runneriq:\n  analyzer:\n    priority:\n      retry_bonus: 5\n      sla_escalation:\n        low_to_medium: 300\n  assigner:\n    decision_engine:\n      mode: claude_only\n  monitor:\n    poll_interval: 30\n",
    )
    .unwrap();
    let o = run(
        &dir,
        &["config", "migrate", "runneriq.yaml", "-o", "out.yml"],
    );
    assert_exit(&o, 0);
    let report = text(&o.stdout);
    let unknown = report
        .split("Unknown (not in RunnerIQ 6.1.0's documented format):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{report}"));
    let keys: Vec<&str> = unknown
        .lines()
        .filter(|l| l.starts_with("- "))
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            "- runneriq.monitor (line 10)",
            "- runneriq.analyzer.priority.retry_bonus = 5 (line 4)",
            "- runneriq.analyzer.priority.sla_escalation (line 5)",
        ]
    );
    assert!(report.contains("`priority.retry_bonus`"), "{report}");
    assert!(report.contains("`priority.sla`"), "{report}");
    assert!(
        report.contains("the runner monitor is `runneriq watch`"),
        "{report}"
    );
    assert!(
        report.contains("No equivalent:\n- runneriq.assigner.decision_engine.mode = \"claude_only\" (line 9): no equivalent"),
        "{report}"
    );
    // Nothing carried over: the file says so and loads as the defaults.
    let yaml = std::fs::read_to_string(dir.join("out.yml")).unwrap();
    assert!(yaml.contains("every setting is the default"), "{yaml}");
    route_json(&dir, &["--config", "out.yml"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_one_error_naming_the_file_and_line_and_nothing_is_written() {
    let dir = workdir("bad");
    let cases: [(&str, &str, &str); 4] = [
        (
            "broken.yaml",
            "runneriq:\n  analyzer:\n    priority: {\n      manual_trigger_bonus: 10\n",
            "runneriq: broken.yaml: not valid YAML: ",
        ),
        (
            "value.yaml",
            "runneriq:\n  assigner:\n    decision_engine:\n      margin_threshold: 15%\n",
            "runneriq: value.yaml:4: runneriq.assigner.decision_engine.margin_threshold: expected a number from 0 to 1, got \"15%\"\n",
        ),
        (
            "ours.yaml",
            "routing:\n  margin: 0.2\n",
            "runneriq: ours.yaml: not a RunnerIQ 6.x config: it has no top-level `runneriq:` key (it looks like a .runneriq.yml already: nothing to migrate)\n",
        ),
        (
            "missing.yaml",
            "",
            "runneriq: missing.yaml: cannot read: no such file\n",
        ),
    ];
    for (name, content, want) in cases {
        if !content.is_empty() {
            std::fs::write(dir.join(name), content).unwrap();
        }
        let o = run(&dir, &["config", "migrate", name]);
        assert_exit(&o, 2);
        let err = text(&o.stderr);
        assert!(err.starts_with(want), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty());
        assert!(!dir.join(".runneriq.yml").exists(), "{name}");
    }
    // The YAML error says where.
    let o = run(&dir, &["config", "migrate", "broken.yaml"]);
    assert_eq!(
        text(&o.stderr),
        "runneriq: broken.yaml: not valid YAML: line 3 column 15: unclosed bracket '{'\n"
    );
    // A directory that does not exist: exit 1 (writing), nothing left.
    let input = fixture_6x();
    let o = run(
        &dir,
        &[
            "config",
            "migrate",
            input.to_str().unwrap(),
            "-o",
            "no/such/dir/x.yml",
        ],
    );
    assert_exit(&o, 1);
    assert!(text(&o.stderr).starts_with("runneriq: no/such/dir/x.yml: cannot write: "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn route_given_the_6x_file_names_the_migrate_command() {
    let dir = workdir("direct");
    let input = fixture_6x();
    let jobs = common::fixture("fleet/jobs.json");
    let fleet = common::fixture("fleet/fleet.json");
    let o = run(
        &dir,
        &[
            "route",
            "--config",
            input.to_str().unwrap(),
            "--jobs",
            jobs.to_str().unwrap(),
            "--fleet",
            fleet.to_str().unwrap(),
        ],
    );
    assert_exit(&o, 2);
    let name = input.display().to_string();
    assert_eq!(
        text(&o.stderr),
        format!(
            "runneriq: {name}: this is a RunnerIQ 6.x config (its top-level key is `runneriq:`), not a .runneriq.yml: convert it with `runneriq config migrate {name}`, which writes .runneriq.yml and lists what has no equivalent\n"
        )
    );
    assert!(o.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
