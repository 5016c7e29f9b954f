//! `runneriq run`, RunnerIQ 6.x's one-shot command: `route` under the
//! original's flag spellings (`--dry-run`, `--mock`, `--output json`).

mod common;

use std::process::{Command, Output};

use serde_json::Value;

/// `runneriq ARGS` in an empty environment: no GitLab, no clock override.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap()
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn mock_prints_a_routing_table_offline() {
    for args in [&["run", "--mock"][..], &["run", "--mock", "--dry-run"][..]] {
        let o = run(args);
        let (stdout, stderr) = out(&o);
        assert!(o.status.success(), "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.starts_with("### RunnerIQ route: 14 jobs, 7 runners"),
            "{stdout}"
        );
        assert!(stdout.contains("| Job | Priority | Runner |"), "{stdout}");
        assert!(
            stdout.contains("`deploy:production` (job 2001, `main`)"),
            "{stdout}"
        );
        assert!(stderr.contains("embedded demo fleet"), "{stderr}");
        assert!(stderr.contains("2026-01-01T10:00:00Z"), "{stderr}");
    }
}

/// `--output json` is `--format json`, and `--mock` is `route` on the
/// routing fixtures at the time they were made for.
#[test]
fn mock_output_json_is_route_on_the_fixtures() {
    let o = run(&["run", "--mock", "--output", "json"]);
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    let mock: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert!(!mock["assignments"].as_array().unwrap().is_empty());

    let fx = |n: &str| {
        common::fixture(&format!("fleet/{n}"))
            .to_string_lossy()
            .into_owned()
    };
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args([
            "route",
            "--format",
            "json",
            "--jobs",
            &fx("jobs.json"),
            "--fleet",
            &fx("fleet.json"),
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUNNERIQ_NOW", "1767261600")
        .output()
        .unwrap();
    assert!(o.status.success());
    let route: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(mock, route);
}

#[test]
fn the_embedded_demo_fleet_is_the_routing_fixtures() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (embedded, fixture) in [
        ("route-fleet.json", "fleet.json"),
        ("route-jobs.json", "jobs.json"),
    ] {
        let a = std::fs::read(format!("{root}/src/demo/data/{embedded}")).unwrap();
        let b = std::fs::read(common::fixture(&format!("fleet/{fixture}"))).unwrap();
        assert!(
            a == b,
            "src/demo/data/{embedded} differs from tests/fixtures/fleet/{fixture}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for (args, says) in [
        (&["run", "--mock", "--jobs", "jobs.json"][..], "--jobs"),
        (
            &["run", "--mock", "--mode", "autonomous"][..],
            "--mode autonomous",
        ),
        (&["run", "--dry-run", "--execute"][..], "--execute"),
        (&["run", "--mode", "analyze-only"][..], "analyze-only"),
    ] {
        let o = run(args);
        let (stdout, stderr) = out(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Without --mock it is route: no jobs, no project, one clear error.
    let o = run(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).1.contains("--project"), "{}", out(&o).1);
}

#[test]
fn help_says_it_is_the_6x_command_and_what_it_runs() {
    let (stdout, _) = out(&run(&["run", "--help"]));
    assert!(stdout.contains("RunnerIQ 6.x"), "{stdout}");
    assert!(stdout.contains("runneriq route"), "{stdout}");
    for flag in ["--dry-run", "--mock", "--output"] {
        assert!(stdout.contains(flag), "{flag}: {stdout}");
    }
}
