//! `runneriq demo`: the embedded pipeline, diagnosed offline.

use std::process::Command;

mod common;

use common::markdown::{assert_counts_add_up, bare_issue_references};

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
    // What a reader must see at a glance: one set of counts (six jobs
    // failed: build:linux and test:gpu are new, deps:mirror fails on main,
    // test:distributed is flaky and lint passed on retry, image:nightly may
    // fail), the same in the first line, the sentence and the headings.
    let first = md.lines().nth(2).unwrap();
    assert_eq!(
        first,
        "### 🔴 2 new failures · 1 already failing on `main` · 2 flaky · 1 allowed to fail"
    );
    assert!(md.contains("\n6 jobs failed; the 2 new ones: 1 compilation error in `torch/csrc/profiler/kineto_metadata.cpp` (your change), 1 runner or system failure (transient — retry).\n"), "{md}");
    assert_eq!(assert_counts_add_up(&md), 6);
    let groups: Vec<&str> = md.lines().filter(|l| l.starts_with("#### ")).collect();
    assert_eq!(
        groups,
        vec![
            "#### New failures (2)",
            "#### Already failing on `main` (1)",
            "#### Flaky (2)",
            "#### Allowed to fail (1)",
        ]
    );
    // The error itself, in words above the excerpt (code blocks do not wrap).
    assert!(md.contains("\n**The log says** (line 37): `/__w/pytorch/pytorch/torch/csrc/profiler/kineto_metadata.cpp:128:26: error: no matching function for call to ‘torch::autograd::profiler::"), "{md}");
    // The embedded history of main: deps:mirror fails there the same way,
    // test:distributed failed 3 of its last 10 runs with the same error. The
    // group's reason is said once, under its heading.
    assert!(md.contains("#### Already failing on `main` (1)\n\nNot caused by this merge request: this job fails the same way in [pipeline #4240]"), "{md}");
    assert_eq!(md.matches("Not caused by this merge request").count(), 1);
    assert!(
        md.contains(
            "Failed 3 of its last 10 runs on `main` (3 of the 3 logs read show this same error)"
        ),
        "{md}"
    );
    assert!(md.contains(
        "Points at a file you changed: `torch/csrc/profiler/kineto_metadata.cpp` (line 128)"
    ));
    assert!(md.contains("from GitLab's failure reason `runner_system_failure`"));
    assert!(
        md.contains("##### Passed on retry (1)\n\n- [`lint`]"),
        "{md}"
    );
    assert!(bare_issue_references(&md).is_empty(), "{md}");
}

/// GitLab turns a bare `#123` into a link to issue 123: no note, issue or
/// report RunnerIQ renders (every snapshot the tests compare against) may
/// hold one outside code and links.
#[test]
fn no_rendered_output_writes_a_bare_issue_reference() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let md = std::fs::read_to_string(&path).unwrap();
        let bad = bare_issue_references(&md);
        assert!(bad.is_empty(), "{}: {bad:#?}", path.display());
        checked += 1;
    }
    assert!(
        checked >= 7,
        "only {checked} snapshots found in {}",
        dir.display()
    );
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
    // New failures first (most severe first), then upstream, then flaky.
    assert_eq!(
        cats,
        vec![
            "compilation",
            "runner_system",
            "network_transient",
            "test_failure"
        ]
    );
    let noise: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["noise"].as_str().unwrap())
        .collect();
    assert_eq!(noise, vec!["new", "new", "upstream", "flaky"]);
    assert_eq!(v["counts"]["flaky"], 2);
    assert_eq!(v["counts"]["passed_on_retry"], 1);
    assert_eq!(v["counts"]["total"], 6);
    // The key line templates state above the excerpt, with its log line.
    let build = &v["failed"][0];
    assert_eq!(build["key_line_number"], 37);
    let key = build["key_line"].as_str().unwrap();
    assert!(
        key.starts_with("/__w/pytorch/pytorch/torch/csrc/profiler/kineto_metadata.cpp:128:26: error: no matching function")
            && key.ends_with('…')
            && key.chars().count() == 160,
        "{key}"
    );
}

/// `bare_issue_references` itself (tests/common/markdown.rs): what GitLab
/// links and what it leaves alone.
#[test]
fn the_bare_reference_scanner_sees_what_gitlab_sees() {
    let md = "ok [pipeline #12](https://x/-/pipelines/12) and `#13` and <code>#14</code>\n\
              ```text\n#15 in a fence\n```\n\
              <!-- runneriq:state {\"summary\":\"pipeline #16\"} -->\n\
              x&#35;17\n\
              job #20 here, project#21\n\
              `` a ` #22 `` [`x #23`](https://x) ";
    assert_eq!(bare_issue_references(md), vec!["job #20 here, project#21"]);
    assert_eq!(
        bare_issue_references("#7 first\n- #8\n(#9)"),
        vec!["#7 first", "- #8", "(#9)"]
    );
}

/// `assert_counts_add_up` itself: it fails on the disagreements the note had.
#[test]
fn the_counts_check_fails_when_counts_disagree() {
    let fails = |md: &'static str| std::panic::catch_unwind(|| assert_counts_add_up(md)).is_err();
    let good = "### 🔴 1 new failure · 1 flaky\n\n2 jobs failed; the new one: 1 test failure.\n\n\
                #### New failures (1)\n\n##### [`a`](https://x/-/jobs/1) · stage `t`\n\n\
                #### Flaky (1)\n\n- [`b`](https://x/-/jobs/2) · stage `t`\n";
    assert_eq!(assert_counts_add_up(good), 2);
    // The old note: the first line counted 4, the sentence 2.
    assert!(fails(
        "### 🔴 2 new failures · 2 flaky\n\n2 jobs failed: 1 a, 1 b; 1 passed on retry.\n"
    ));
    // A heading that says another number than the first line.
    assert!(fails(
        "### 🔴 1 new failure · 1 flaky\n\n2 jobs failed; the new one: 1 test failure.\n\n\
         #### New failures (1)\n\n##### [`a`](https://x/-/jobs/1) · stage `t`\n\n\
         #### Flaky (2)\n\n- [`b`](https://x/-/jobs/2) · stage `t`\n"
    ));
    // Groups out of their order.
    assert!(fails(
        "### 🔴 1 new failure · 1 flaky\n\n2 jobs failed; the new one: 1 test failure.\n\n\
         #### Flaky (1)\n\n- [`b`](https://x/-/jobs/2) · stage `t`\n\n\
         #### New failures (1)\n\n##### [`a`](https://x/-/jobs/1) · stage `t`\n"
    ));
    // Fewer jobs shown under a heading than it counts.
    assert!(fails(
        "### 🔴 2 new failures\n\n2 jobs failed: 2 test failure jobs.\n\n\
         #### New failures (2)\n\n##### [`a`](https://x/-/jobs/1) · stage `t`\n"
    ));
}
