//! The CI/CD catalog components (component/templates/*.yml) against GitLab's
//! component rules and against the binary: every `$[[ inputs.x ]]` is
//! declared, every input has a valid type, and every `runneriq` command and
//! flag a script uses exists.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn templates() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("component/templates");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn help(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_runneriq"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?} --help failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn components_declare_their_inputs_and_use_real_flags() {
    let all = templates();
    assert!(all.iter().any(|(n, _)| n == "diagnose.yml"));
    assert!(all.iter().any(|(n, _)| n == "route.yml"));
    for (name, text) in &all {
        let (spec, jobs) = text
            .split_once("\n---\n")
            .unwrap_or_else(|| panic!("{name}: no `---` between spec and jobs"));
        let spec: Value = serde_saphyr::from_str(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        let _: Value = serde_saphyr::from_str(jobs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let inputs = spec["spec"]["inputs"].as_object().unwrap();
        for (k, v) in inputs {
            let t = v["type"].as_str().unwrap_or("string");
            assert!(
                ["string", "number", "boolean", "array"].contains(&t),
                "{name}: input {k} has type {t}"
            );
            assert!(
                v["description"].is_string(),
                "{name}: input {k} has no description"
            );
            if let (Some(opts), Some(d)) = (v["options"].as_array(), v.get("default")) {
                assert!(opts.contains(d), "{name}: default of {k} is not an option");
            }
        }
        // Every interpolation names a declared input.
        let mut used = BTreeSet::new();
        for part in jobs.split("$[[").skip(1) {
            let inner = part.split("]]").next().unwrap().trim();
            let input = inner
                .strip_prefix("inputs.")
                .unwrap_or_else(|| panic!("{name}: odd interpolation {inner}"));
            used.insert(input.to_string());
        }
        for u in &used {
            assert!(
                inputs.contains_key(u),
                "{name}: $[[ inputs.{u} ]] is not declared"
            );
        }
        // Every `runneriq CMD --flag` exists (a command may be folded over
        // the lines after it, up to the next list item or key).
        let lines: Vec<&str> = jobs.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(pos) = line.find("runneriq ") else {
                continue;
            };
            let Some(cmd) = line[pos + "runneriq ".len()..].split_whitespace().next() else {
                continue;
            };
            if cmd.is_empty() || !cmd.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                continue;
            }
            let h = help(&[cmd]);
            let mut text = line[pos..].to_string();
            for next in lines.iter().skip(i + 1).take(8) {
                let t = next.trim_start();
                if t.starts_with("- ")
                    || t.ends_with(':')
                    || t.contains("runneriq ")
                    || t.is_empty()
                {
                    break;
                }
                text.push(' ');
                text.push_str(t);
            }
            for w in text.split_whitespace() {
                let w = w.trim_matches(|c| c == '"' || c == '(' || c == ')' || c == '$');
                if let Some(flag) = w.strip_prefix("--").filter(|f| !f.is_empty()) {
                    let flag = flag.split('=').next().unwrap();
                    if flag.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                        assert!(
                            h.contains(&format!("--{flag}")),
                            "{name}: `runneriq {cmd} --{flag}` does not exist"
                        );
                    }
                }
            }
        }
    }
}
