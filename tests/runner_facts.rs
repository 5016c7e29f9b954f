//! gitlab-runner's own failure facts, end to end: `runneriq classify --format
//! json` on runner 18.7 format traces (tests/fixtures/runner, written for
//! these tests with the runner's message formats; see the NOTICE there).

use std::process::Command;

use serde_json::Value;

/// One fixture: its category and first evidence line (number and text start).
struct Case {
    file: &'static str,
    category: &'static str,
    line: u64,
    text: &'static str,
    /// The failing step the verdict names.
    section: &'static str,
}

const CASES: &[Case] = &[
    Case {
        file: "shell_exit_status_1.log",
        category: "test_failure",
        line: 50,
        text: "Tests:       1 failed, 96 passed, 97 total",
        section: "step_script",
    },
    Case {
        file: "docker_exit_code_1.log",
        category: "test_failure",
        line: 44,
        text: "tests/test_refunds.py:27: AssertionError",
        section: "step_script",
    },
    Case {
        file: "docker_daemon_unreachable.log",
        category: "runner_system",
        line: 13,
        text: "ERROR: Job failed (system failure): getting docker info: Cannot connect to the Docker daemon",
        section: "prepare_executor",
    },
    Case {
        file: "docker_preparation_no_such_image.log",
        category: "docker_image",
        line: 25,
        text: "ERROR: Job failed (system failure): failed to pull image \"registry.example.com/acme/builder:2026.01\" with specified policies [never]: Error response from daemon: No such image",
        section: "prepare_executor",
    },
    Case {
        file: "docker_manifest_unknown.log",
        category: "docker_image",
        line: 12,
        text: "ERROR: Job failed: failed to pull image \"registry.example.com/acme/shop-ci:3.12-bookworm\"",
        section: "prepare_executor",
    },
    Case {
        file: "k8s_image_pull_backoff.log",
        category: "docker_image",
        line: 30,
        text: "ERROR: Job failed: prepare environment: waiting for pod running: pulling image",
        section: "prepare_script",
    },
    Case {
        file: "k8s_pod_start_timeout.log",
        category: "runner_system",
        line: 26,
        text: "ERROR: Job failed (system failure): prepare environment: waiting for pod running: timed out waiting for pod to start",
        section: "prepare_script",
    },
    Case {
        file: "job_timeout.log",
        category: "timeout",
        line: 38,
        text: "ERROR: Job failed: execution took longer than 1h0m0s seconds",
        section: "step_script",
    },
    Case {
        file: "artifacts_upload_413.log",
        category: "artifact_cache",
        line: 47,
        text: "ERROR: Uploading artifacts as \"archive\" to coordinator... 413 Request Entity Too Large",
        section: "upload_artifacts_on_success",
    },
    Case {
        file: "artifacts_upload_413_after_test_failure.log",
        category: "test_failure",
        line: 34,
        text: "tests/test_export.py:14: AssertionError",
        section: "step_script",
    },
    Case {
        file: "artifacts_download_404.log",
        category: "artifact_cache",
        line: 26,
        text: "ERROR: Downloading artifacts from coordinator... not found",
        section: "download_artifacts",
    },
    Case {
        file: "cache_404_then_test_failure.log",
        category: "test_failure",
        line: 53,
        text: "rspec ./spec/models/invoice_spec.rb:28",
        section: "step_script",
    },
    Case {
        file: "git_fatal_remote_ref.log",
        category: "git_checkout",
        line: 19,
        text: "fatal: couldn't find remote ref refs/pipelines/1874312",
        section: "get_sources",
    },
    Case {
        file: "git_fatal_unable_to_access_403.log",
        category: "git_checkout",
        line: 16,
        text: "fatal: unable to access 'https://gitlab.example.com/acme/payments.git/': The requested URL returned error: 403",
        section: "get_sources",
    },
    Case {
        file: "git_corrupt_object_no_rule.log",
        category: "git_checkout",
        line: 16,
        text: "fatal: loose object 3f9a1c2d",
        section: "get_sources",
    },
    Case {
        file: "after_script_test_output.log",
        category: "deploy_release",
        line: 28,
        text: "Error: INSTALLATION FAILED: context deadline exceeded",
        section: "step_script",
    },
];

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/runner/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn classify(paths: &[String]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .env("RUNNERIQ_LLM", "off")
        .args(["classify", "--format", "json"])
        .args(paths)
        .output()
        .expect("run runneriq");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn check(case: &Case, v: &Value, what: &str) {
    let name = format!("{} ({what})", case.file);
    assert_eq!(v["category"], case.category, "{name}: {v:#}");
    assert_eq!(v["decided_by"], "rules", "{name}");
    let first = &v["evidence"][0];
    assert_eq!(first["line"], case.line, "{name}: {:#}", v["evidence"]);
    let text = first["text"].as_str().unwrap_or_default();
    assert!(text.starts_with(case.text), "{name}: {text}");
    assert_eq!(v["section"], case.section, "{name}");
}

#[test]
fn runner_fixtures_get_their_verdicts() {
    let paths: Vec<String> = CASES.iter().map(|c| fixture(c.file)).collect();
    let out = classify(&paths);
    assert_eq!(out.len(), CASES.len());
    for (case, v) in CASES.iter().zip(&out) {
        assert!(v["file"].as_str().unwrap().ends_with(case.file));
        check(case, v, "as the runner wrote it");
        assert_eq!(v["log"]["output_limit_hit"], false);
    }
}

#[test]
fn every_fixture_is_in_the_table() {
    let dir = format!("{}/tests/fixtures/runner", env!("CARGO_MANIFEST_DIR"));
    let mut logs: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    logs.sort();
    let mut table: Vec<String> = CASES.iter().map(|c| c.file.to_string()).collect();
    table.sort();
    assert_eq!(logs, table);
}

/// Every fixture line carries the runner 18.7 prefix: a timestamp, a stream
/// (`00` runner, `01` job), `O`/`E`, and ` ` or `+` (continuation).
#[test]
fn fixtures_are_in_the_runners_format() {
    for case in CASES {
        let raw = std::fs::read(fixture(case.file)).unwrap();
        assert!(raw.ends_with(b"\n"), "{}", case.file);
        let mut continuations = 0;
        for line in raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let p = String::from_utf8_lossy(&line[..32.min(line.len())]).into_owned();
            let ok = p.len() == 32
                && p.starts_with("2026-01-01T")
                && p[26..].starts_with("Z ")
                && matches!(&p[28..30], "00" | "01")
                && matches!(&p[30..31], "O" | "E")
                && matches!(&p[31..32], " " | "+");
            assert!(ok, "{}: {p:?}", case.file);
            continuations += usize::from(&p[31..32] == "+");
        }
        assert!(
            continuations > 0,
            "{}: section markers end a line in \\r",
            case.file
        );
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("Running with gitlab-runner 18.7.0"),
            "{}",
            case.file
        );
        assert!(text.contains("\r\n"), "{}", case.file);
        assert!(
            text.contains("00O \x1b[31;1mERROR: Job failed"),
            "{}",
            case.file
        );
    }
}

/// The same lines without the timestamp prefix (as a runner with timestamps
/// off would write them, but for the split after a section marker) get the
/// same verdicts and line numbers.
#[test]
fn without_timestamps_the_verdicts_are_the_same() {
    let dir = std::env::temp_dir().join(format!("runneriq-runner-facts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for case in CASES {
        let raw = std::fs::read(fixture(case.file)).unwrap();
        let mut plain: Vec<u8> = Vec::with_capacity(raw.len());
        for line in raw.split_inclusive(|b| *b == b'\n') {
            plain.extend_from_slice(&line[32.min(line.len())..]);
        }
        let p = dir.join(case.file);
        std::fs::write(&p, plain).unwrap();
        paths.push(p.to_string_lossy().into_owned());
    }
    let out = classify(&paths);
    for (case, v) in CASES.iter().zip(&out) {
        check(case, v, "without timestamps");
    }
    std::fs::remove_dir_all(&dir).ok();
}
