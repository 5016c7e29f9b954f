//! `runneriq demo`: the embedded pipeline, diagnosed offline.

use std::process::Command;

#[test]
fn demo_renders_the_embedded_pipeline_offline() {
    // No GitLab URL, no token: the demo must not need either.
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .arg("demo")
        .env_clear()
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = String::from_utf8(o.stdout).unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("demo data"));
    let expected_path = format!(
        "{}/tests/snapshots/demo_note.md",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("RUNNERIQ_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&expected_path, &md).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    assert_eq!(
        md, expected,
        "demo note differs from {expected_path} (RUNNERIQ_UPDATE_SNAPSHOTS=1 rewrites it)"
    );
    // What a reader must see at a glance.
    let first = md.lines().nth(2).unwrap();
    assert_eq!(first, "### 🔴 4 new failures · 1 flaky · 1 allowed to fail");
    assert!(md.contains("\n4 jobs failed: 1 compilation error in `torch/csrc/profiler/kineto_metadata.cpp` (your change)"), "{md}");
    assert!(md.contains(
        "Points at a file you changed: `torch/csrc/profiler/kineto_metadata.cpp` (line 128)"
    ));
    assert!(md.contains("from GitLab's failure reason `runner_system_failure`"));
    assert!(md.contains("**Passed on retry**"));
}

#[test]
fn demo_json_is_the_template_data() {
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(["demo", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cats: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        cats,
        vec![
            "compilation",
            "test_failure",
            "network_transient",
            "runner_system"
        ]
    );
}
