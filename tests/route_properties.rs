//! Property tests of routing over random fleets and job sets: no runner is
//! given more jobs than its free slots, every placement passes GitLab's own
//! gate, jobs are placed in priority order, and a higher-priority job is never
//! left waiting while a lower one takes a runner it could have taken.
//!
//! `PROPTEST_CASES=20000 cargo test --release --test route_properties` for a
//! long run.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use runneriq::fleet::model::{FleetRunner, RunnerExt};
use runneriq::fleet::priority::PriorityRules;
use runneriq::fleet::route::{self, Inputs, RoutingRules};
use runneriq::fleet::stats::History;
use runneriq::gitlab::models::{Job, PipelineRef, Runner, RunnerSummary};

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const TAGS: &[&str] = &["docker", "linux", "gpu", "large", "arm64", "deploy"];
const REFS: &[&str] = &["main", "feature/a", "hotfix/x", "spike/y", "develop"];
const ZONES: &[&str] = &[
    "FR",
    "DE",
    "PL",
    "SE-SE1",
    "US-CA",
    "gcp:europe-west1",
    "XX",
];
const STAGES: &[&str] = &["build", "test", "lint", "deploy", "review"];

fn tags() -> impl Strategy<Value = Vec<String>> {
    subsequence(TAGS, 0..=3).prop_map(|v| v.into_iter().map(str::to_string).collect())
}

prop_compose! {
    fn runner()(
        tag_list in tags(),
        status in select(&["online", "online", "online", "offline", "stale"][..]),
        paused in proptest::bool::weighted(0.1),
        run_untagged in proptest::bool::weighted(0.7),
        protected in proptest::bool::weighted(0.2),
        concurrent in 1u32..5,
        running in 0u32..4,
        zone in proptest::option::of(select(ZONES)),
    ) -> FleetRunner {
        FleetRunner {
            runner: Runner {
                tag_list,
                status: Some(status.to_string()),
                paused: Some(paused),
                run_untagged: Some(run_untagged),
                access_level: Some(if protected { "ref_protected" } else { "not_protected" }.to_string()),
                ..Runner::default()
            },
            runneriq: RunnerExt {
                concurrent: Some(concurrent),
                running: Some(running),
                zone: zone.map(str::to_string),
                ..RunnerExt::default()
            },
        }
    }
}

prop_compose! {
    fn job()(
        tag_list in tags(),
        git_ref in select(REFS),
        stage in select(STAGES),
        allow_failure in proptest::bool::weighted(0.2),
        age in 0i64..900,
        pipeline in 1u64..4,
    ) -> Job {
        Job {
            name: format!("{stage}-job"),
            stage: stage.to_string(),
            status: "pending".to_string(),
            git_ref: git_ref.to_string(),
            tag_list,
            allow_failure,
            created_at: Some(format!("2026-01-01T10:{:02}:{:02}Z", (900 - age) / 60, (900 - age) % 60)),
            pipeline: Some(PipelineRef { id: pipeline, ..PipelineRef::default() }),
            ..Job::default()
        }
    }
}

/// Some finished jobs so that history scores differ between runners.
fn history(fleet: &[FleetRunner]) -> History {
    let mut done = Vec::new();
    for (i, r) in fleet.iter().enumerate() {
        for stage in STAGES {
            done.push(Job {
                id: 1_000_000 + done.len() as u64,
                name: format!("{stage}-job"),
                status: if i % 5 == 0 { "failed" } else { "success" }.into(),
                failure_reason: (i % 5 == 0).then(|| "runner_system_failure".to_string()),
                duration: Some(60.0 + (i * 17 % 120) as f64),
                runner: Some(RunnerSummary {
                    id: r.runner.id,
                    ..RunnerSummary::default()
                }),
                ..Job::default()
            });
        }
    }
    History::from_jobs(&done)
}

const NOW: i64 = 1_767_261_600 + 900; // 2026-01-01T10:15:00Z

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn routing_keeps_slots_gates_and_priority_order(
        mut fleet in proptest::collection::vec(runner(), 0..25),
        mut jobs in proptest::collection::vec(job(), 0..80),
    ) {
        for (i, r) in fleet.iter_mut().enumerate() {
            r.runner.id = 100 + i as u64;
            r.runner.description = Some(format!("r{i}"));
        }
        for (i, j) in jobs.iter_mut().enumerate() {
            j.id = 1 + i as u64;
        }
        let inputs = Inputs { default_branch: Some("main"), now: NOW, ..Inputs::default() };
        let routing = RoutingRules::default();
        let refs: Vec<&Job> = jobs.iter().collect();
        let pr = route::priorities(&refs, &inputs, &PriorityRules::default());
        let h = history(&fleet);
        let out = route::assign(&refs, pr, &fleet, &HashMap::new(), &h, &inputs, &routing);
        prop_assert_eq!(out.len(), jobs.len(), "one entry per job");

        // No runner over its free slots.
        let mut placed: HashMap<u64, u32> = HashMap::new();
        for a in &out {
            if let Some(r) = a.runner {
                *placed.entry(r).or_default() += 1;
            }
        }
        for r in &fleet {
            let free = r.concurrent().saturating_sub(r.runneriq.running.unwrap_or(0));
            let n = placed.get(&r.runner.id).copied().unwrap_or(0);
            prop_assert!(n <= free, "runner {} got {} jobs for {} free slots", r.runner.id, n, free);
        }

        let by_id: HashMap<u64, &Job> = jobs.iter().map(|j| (j.id, j)).collect();
        let runner_of = |id: u64| fleet.iter().find(|r| r.runner.id == id).unwrap();
        for a in &out {
            let j = by_id[&a.job];
            let facts = route::facts_of(j, &inputs, &routing);
            // Every placement (and every queue) passes GitLab's gate.
            if let Some(r) = a.runner {
                prop_assert!(route::gate(&facts, runner_of(r)).is_ok(), "job {} on runner {}", a.job, r);
                let rr = runner_of(r);
                prop_assert!(j.tag_list.iter().all(|t| rr.runner.tag_list.contains(t)));
            }
            if let Some(q) = &a.queued {
                prop_assert!(route::gate(&facts, runner_of(q.runner)).is_ok());
            }
            // No runner: truly none eligible, and the reason says so.
            if a.runner.is_none() && a.queued.is_none() {
                prop_assert!(fleet.iter().all(|r| route::gate(&facts, r).is_err()));
                prop_assert!(a.reason.as_deref().is_some_and(|w| !w.is_empty()));
                prop_assert_eq!(&a.decided_by, "none");
            }
        }

        // Placement order is priority order.
        for w in out.windows(2) {
            prop_assert!(
                (w[0].urgency, w[0].priority) >= (w[1].urgency, w[1].priority),
                "job {} ({:?} {}) before job {} ({:?} {})",
                w[0].job, w[0].urgency, w[0].priority, w[1].job, w[1].urgency, w[1].priority
            );
        }
        // A job left waiting could not have taken any runner that a later
        // (lower-priority) job was placed on.
        for (ai, a) in out.iter().enumerate() {
            if a.runner.is_some() {
                continue;
            }
            let fa = route::facts_of(by_id[&a.job], &inputs, &routing);
            for b in &out[ai + 1..] {
                if let Some(r) = b.runner {
                    prop_assert!(
                        route::gate(&fa, runner_of(r)).is_err(),
                        "job {} waits while later job {} took runner {} it could run on",
                        a.job, b.job, r
                    );
                }
            }
        }
    }
}
