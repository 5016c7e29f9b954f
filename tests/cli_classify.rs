//! `runneriq classify` end to end: the real binary on real logs.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runneriq"));
    // A developer's ANTHROPIC_API_KEY / RUNNERIQ_LLM_URL must not turn these
    // tests into calls to a real LLM (tests/llm_fallback.rs covers it).
    c.env("RUNNERIQ_LLM", "off");
    c
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run runneriq")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("runneriq-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn compile_error_in_text() {
    let o = run(&["classify", &fixture("logs/pt-compile_error.log")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Compilation error (compilation)"), "{out}");
    assert!(
        out.contains("> 31 | /__w/pytorch/pytorch/torch/csrc/profiler/kineto_metadata.cpp:128:26: error: no matching function"),
        "{out}"
    );
}

#[test]
fn json_contract_fields() {
    let o = run(&[
        "classify",
        "--format",
        "json",
        &fixture("logs/pt-pytest_failure.log"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert!(
        v["file"]
            .as_str()
            .unwrap()
            .ends_with("pt-pytest_failure.log")
    );
    assert_eq!(v["category"], "test_failure");
    let conf = v["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&conf));
    let ev = v["evidence"].as_array().unwrap();
    assert!(!ev.is_empty() && ev.len() <= 5);
    assert_eq!(
        ev[0]["line"], 31,
        "the FAILED line of pytest's summary first: {ev:?}"
    );
    assert!(
        ev[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("FAILED [310.0221s] distributed/")
    );
    assert_eq!(v["decided_by"], "rules");
}

#[test]
fn several_files_give_one_json_line_each() {
    let o = run(&[
        "classify",
        "--format",
        "json",
        &fixture("logs/pt-docker_manifest_unknown.log"),
        &fixture("logs/pt-cuda_oom_class.log"),
        &fixture("logs/cd-guava_1947.log"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cats: Vec<String> = json(&o)
        .iter()
        .map(|v| v["category"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cats, vec!["docker_image", "oom_killed", "compilation"]);
}

#[test]
fn gitlab_trace_sections_and_failing_step() {
    // A real GitLab trace whose output lines were removed upstream: only the
    // markers and the runner's final error remain.
    let o = run(&[
        "classify",
        "--format",
        "json",
        &fixture("gitlab/traces/failed_sections_only_exit_status_1.log"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(v["category"], "unknown");
    assert_eq!(v["confidence"], 0.0);
    assert_eq!(v["section"], "build_script");
    let names: Vec<&str> = v["log"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"prepare_executor") && names.contains(&"after_script"),
        "{names:?}"
    );
}

/// A corpus log wrapped the way runner 18.7+ writes traces: sections and a
/// timestamp prefix on every line. Line numbers must be the raw file's.
#[test]
fn runner_timestamped_trace_keeps_raw_line_numbers() {
    let body = std::fs::read_to_string(fixture("logs/pt-compile_error.log")).unwrap();
    let mut trace = String::new();
    let mut n = 0u32;
    let mut line = |s: &str, stream: &str| {
        n += 1;
        trace.push_str(&format!(
            "2026-01-01T01:00:{:02}.{:06}Z {stream} {s}\n",
            n % 60,
            n
        ));
    };
    line("\x1b[0KRunning with gitlab-runner 18.7.0", "00O");
    line(
        "section_start:1767229200:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the \"docker\" executor\x1b[0;m",
        "00O",
    );
    line("section_end:1767229201:prepare_executor\r\x1b[0K", "00O");
    line(
        "section_start:1767229201:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m",
        "00O",
    );
    for l in body.lines() {
        line(l, "01E");
    }
    line("section_end:1767229500:step_script\r\x1b[0K", "00O");
    line(
        "section_start:1767229500:cleanup_file_variables\r\x1b[0K\x1b[0K\x1b[36;1mCleaning up project directory and file based variables\x1b[0;m",
        "00O",
    );
    line(
        "section_end:1767229501:cleanup_file_variables\r\x1b[0K",
        "00O",
    );
    line("\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m", "00O");
    let path = tmp("framed.log");
    std::fs::write(&path, &trace).unwrap();
    let o = run(&["classify", "--format", "json", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(v["category"], "compilation");
    assert_eq!(v["section"], "step_script");
    // Line 31 of the corpus log is line 35 of the framed trace (4 lines before it).
    assert_eq!(v["evidence"][0]["line"], 35);
    assert!(v["evidence"][0]["text"].as_str().unwrap().starts_with(
        "/__w/pytorch/pytorch/torch/csrc/profiler/kineto_metadata.cpp:128:26: error:"
    ));
    let step = v["log"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "step_script")
        .unwrap();
    assert_eq!(step["duration_s"], 299);
}

#[test]
fn gzip_and_stdin() {
    let raw = std::fs::read(fixture("logs/pt-docker_manifest_unknown.log")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    let gz = enc.finish().unwrap();
    let path = tmp("docker.log.gz");
    std::fs::write(&path, &gz).unwrap();
    let o = run(&["classify", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(json(&o)[0]["category"], "docker_image", "{}", stderr(&o));

    let mut child = bin()
        .args(["classify", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    let o = child.wait_with_output().unwrap();
    let v = &json(&o)[0];
    assert_eq!(v["category"], "docker_image");
    assert_eq!(v["file"], "<stdin>");
}

#[test]
fn missing_file_is_an_input_error_naming_it() {
    let o = run(&["classify", "/nonexistent/job.log"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "runneriq: /nonexistent/job.log: cannot open: no such file"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn one_missing_file_does_not_hide_the_others() {
    let o = run(&[
        "classify",
        "--format",
        "json",
        "/nonexistent/a.log",
        &fixture("logs/pt-cuda_oom_class.log"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o).len(), 1);
    assert!(stderr(&o).contains("/nonexistent/a.log"));
}

#[test]
fn empty_file_and_binary_garbage_give_unknown() {
    let empty = tmp("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let garbage = tmp("garbage.bin");
    let mut bytes = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes.push((x >> 16) as u8);
    }
    std::fs::write(&garbage, &bytes).unwrap();
    let o = run(&[
        "classify",
        "--format",
        "json",
        empty.to_str().unwrap(),
        garbage.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v[0]["category"], "unknown");
    assert_eq!(v[0]["evidence"].as_array().unwrap().len(), 0);
    assert_eq!(v[0]["log"]["lines"], 0);
    assert_eq!(v[1]["log"]["invalid_utf8"], true);
    // Whatever it decides, evidence text is valid JSON strings and bounded.
    for e in v[1]["evidence"].as_array().unwrap() {
        assert!(e["text"].as_str().unwrap().len() <= 4 * 512 + 3);
    }
}

#[test]
fn corrupt_gzip_is_an_input_error() {
    let path = tmp("corrupt.log.gz");
    std::fs::write(
        &path,
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef],
    )
    .unwrap();
    let o = run(&["classify", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("corrupt.log.gz: cannot read"),
        "{}",
        stderr(&o)
    );
}

/// A 2 GiB log that is one single line, streamed through stdin: it must not
/// be held in memory (the line buffer is bounded) and must not fail.
#[test]
fn two_gib_single_line_streams() {
    let mut child = bin()
        .args(["classify", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..2048 {
            if stdin.write_all(&chunk).is_err() {
                return false;
            }
        }
        stdin.write_all(b" error: the end\n").is_ok()
    });
    let o = child.wait_with_output().unwrap();
    assert!(writer.join().unwrap(), "the whole input was consumed");
    assert!(o.status.success());
    let v = &json(&o)[0];
    assert_eq!(v["log"]["lines"], 1);
    assert_eq!(v["log"]["long_lines"], 1);
    assert_eq!(v["log"]["bytes"].as_u64().unwrap(), (2u64 << 30) + 16);
}

#[test]
fn malformed_rules_file_names_file_rule_and_field() {
    let path = tmp("bad-rules.yml");
    std::fs::write(
        &path,
        "rules:\n  - id: my-rule\n    category: compilation\n    pattern: '([a-z'\n",
    )
    .unwrap();
    let o = run(&[
        "classify",
        "--rules",
        path.to_str().unwrap(),
        &fixture("logs/pt-cuda_oom_class.log"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad-rules.yml") && err.contains("`my-rule`") && err.contains("`pattern`"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn user_rules_extend_the_catalog() {
    let path = tmp("extra-rules.yml");
    std::fs::write(
        &path,
        "rules:\n  - id: out-of-order-words\n    category: lint_format\n    pattern: 'Words not in order'\n    weight: 0.95\n",
    )
    .unwrap();
    let log = tmp("order.log");
    std::fs::write(
        &log,
        "checking\n** (throw) \"Words not in order \\\"a\\\" and \\\"b\\\"\"\nerror\n",
    )
    .unwrap();
    let o = run(&[
        "classify",
        "--format",
        "json",
        "--rules",
        path.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json(&o)[0];
    assert_eq!(v["category"], "lint_format");
    assert_eq!(v["evidence"][0]["rule"], "out-of-order-words");
    assert_eq!(v["evidence"][0]["line"], 2);
}

#[test]
fn failure_reason_flag_decides_infrastructure_causes() {
    let o = run(&[
        "classify",
        "--format",
        "json",
        "--failure-reason",
        "runner_system_failure",
        &fixture("gitlab/traces/failed_sections_only_exit_status_1.log"),
    ]);
    let v = &json(&o)[0];
    assert_eq!(v["category"], "runner_system");
    assert_eq!(v["decided_by"], "failure_reason");
}

#[test]
fn help_lists_only_existing_commands() {
    let o = run(&["--help"]);
    let out = stdout(&o);
    assert!(out.contains("classify"));
    assert!(out.contains("diagnose"));
    assert!(out.contains("route") && out.contains("explain") && out.contains("report"));
    assert!(out.contains("simulate") && out.contains("snapshot"));
    let o = run(&["no-such-command"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_rules_file_that_never_ends_is_refused_at_its_cap() {
    let log = fixture("logs/pt-compile_error.log");
    let o = run(&["classify", "--rules", "/dev/zero", &log]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/dev/zero: cannot read rules file: larger than 4 MiB"),
        "{}",
        stderr(&o)
    );
}
