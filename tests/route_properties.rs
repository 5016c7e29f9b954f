//! Property tests of routing over random fleets and job sets: no runner is
//! given more jobs than its free slots, every placement passes GitLab's own
//! gate, the output is in priority order, a higher-priority job is never
//! left waiting while a lower one takes a runner it could have taken (unless
//! the lower one is scarce and scarce runners are kept), and no scarce job
//! waits while a job with other eligible runners holds a slot of its class.
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
            pipeline: Some(Box::new(PipelineRef { id: pipeline, ..PipelineRef::default() })),
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
                runner: Some(Box::new(RunnerSummary {
                    id: r.runner.id,
                    ..RunnerSummary::default()
                })),
                ..Job::default()
            });
        }
    }
    History::from_jobs(&done)
}

const NOW: i64 = 1_767_261_600 + 900; // 2026-01-01T10:15:00Z

/// Ids, inputs and routing of one generated case.
fn route_case(
    fleet: &mut [FleetRunner],
    jobs: &mut [Job],
    reserve_scarce: bool,
) -> (Inputs<'static>, RoutingRules, Vec<route::Assignment>) {
    for (i, r) in fleet.iter_mut().enumerate() {
        r.runner.id = 100 + i as u64;
        r.runner.description = Some(format!("r{i}"));
    }
    for (i, j) in jobs.iter_mut().enumerate() {
        j.id = 1 + i as u64;
    }
    let inputs = Inputs {
        default_branch: Some("main"),
        now: NOW,
        ..Inputs::default()
    };
    let routing = RoutingRules {
        reserve_scarce,
        ..RoutingRules::default()
    };
    let refs: Vec<&Job> = jobs.iter().collect();
    let pr = route::priorities(&refs, &inputs, &PriorityRules::default());
    let h = history(fleet);
    let out = route::assign(&refs, pr, fleet, &HashMap::new(), &h, &inputs, &routing);
    (inputs, routing, out)
}

/// A job's runner class: the runner ids that pass GitLab's gate for it.
fn class_of(
    j: &Job,
    fleet: &[FleetRunner],
    inputs: &Inputs<'_>,
    routing: &RoutingRules,
) -> Vec<u64> {
    let facts = route::facts_of(j, inputs, routing);
    fleet
        .iter()
        .filter(|r| route::gate(&facts, r).is_ok())
        .map(|r| r.runner.id)
        .collect()
}

fn strict_subset(a: &[u64], b: &[u64]) -> bool {
    a.len() < b.len() && a.iter().all(|x| b.contains(x))
}

/// A fleet with special runners: a few generic runners and one or two
/// runners that also carry a rare tag, jobs mostly generic, some needing the
/// rare tag (the shape of issue 16: one GPU runner among generic ones).
fn special_fleet() -> impl Strategy<Value = (Vec<FleetRunner>, Vec<Job>)> {
    (
        proptest::collection::vec(runner(), 1..6),
        proptest::collection::vec(
            (select(&["gpu", "arm64", "large"][..]), 1u32..4, 0u32..2),
            1..3,
        ),
        proptest::collection::vec(job(), 0..30),
        proptest::collection::vec(select(&["gpu", "arm64", "large"][..]), 0..6),
    )
        .prop_map(|(mut fleet, specials, mut jobs, needs)| {
            for r in &mut fleet {
                r.runner.tag_list = vec!["docker".into(), "linux".into()];
                r.runner.status = Some("online".into());
            }
            for (tag, slots, running) in specials {
                fleet.push(FleetRunner {
                    runner: Runner {
                        tag_list: vec!["docker".into(), "linux".into(), tag.to_string()],
                        status: Some("online".into()),
                        paused: Some(false),
                        run_untagged: Some(true),
                        access_level: Some("not_protected".into()),
                        ..Runner::default()
                    },
                    runneriq: RunnerExt {
                        concurrent: Some(slots),
                        running: Some(running),
                        zone: Some("SE-SE1".into()),
                        ..RunnerExt::default()
                    },
                });
            }
            for j in &mut jobs {
                j.tag_list = vec!["docker".into()];
            }
            for (n, tag) in needs.into_iter().enumerate() {
                let mut j = jobs.first().cloned().unwrap_or_default();
                j.name = format!("test:{tag} {n}");
                j.status = "pending".into();
                j.git_ref = "feature/a".into();
                j.tag_list = vec!["docker".into(), tag.to_string()];
                j.created_at = Some("2026-01-01T10:00:00Z".into());
                jobs.push(j);
            }
            (fleet, jobs)
        })
}

/// The new invariant: no job waits while a job whose runner class strictly
/// contains its class (a job with other eligible runners) holds a slot of
/// one of its runners.
fn no_scarce_job_waits_behind_a_flexible_one(
    fleet: &[FleetRunner],
    jobs: &[Job],
    inputs: &Inputs<'_>,
    routing: &RoutingRules,
    out: &[route::Assignment],
) -> Result<(), TestCaseError> {
    let class: HashMap<u64, Vec<u64>> = jobs
        .iter()
        .map(|j| (j.id, class_of(j, fleet, inputs, routing)))
        .collect();
    for a in out.iter().filter(|a| a.runner.is_none()) {
        let cj = &class[&a.job];
        if cj.is_empty() {
            continue;
        }
        for b in out {
            let Some(r) = b.runner else { continue };
            prop_assert!(
                !(cj.contains(&r) && strict_subset(cj, &class[&b.job])),
                "job {} (runners {:?}) waits while job {} (runners {:?}) holds runner {}",
                a.job,
                cj,
                b.job,
                class[&b.job],
                r
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    /// With scarce runners kept (the default) and without.
    #[test]
    fn routing_keeps_slots_gates_and_priority_order(
        mut fleet in proptest::collection::vec(runner(), 0..25),
        mut jobs in proptest::collection::vec(job(), 0..80),
        reserve_scarce in proptest::bool::ANY,
    ) {
        let (inputs, routing, out) = route_case(&mut fleet, &mut jobs, reserve_scarce);
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

        // The output is in priority order.
        for w in out.windows(2) {
            prop_assert!(
                (w[0].urgency, w[0].priority) >= (w[1].urgency, w[1].priority),
                "job {} ({:?} {}) before job {} ({:?} {})",
                w[0].job, w[0].urgency, w[0].priority, w[1].job, w[1].urgency, w[1].priority
            );
        }
        // A job left waiting could not have taken any runner that a later
        // (lower-priority) job was placed on — unless that job is scarce
        // (its runner class a strict subset of another waiting job's) and
        // scarce runners are kept.
        let class: HashMap<u64, Vec<u64>> =
            jobs.iter().map(|j| (j.id, class_of(j, &fleet, &inputs, &routing))).collect();
        let is_scarce = |id: u64| class.values().any(|c| strict_subset(&class[&id], c)) && !class[&id].is_empty();
        for (ai, a) in out.iter().enumerate() {
            if a.runner.is_some() {
                continue;
            }
            let fa = route::facts_of(by_id[&a.job], &inputs, &routing);
            for b in &out[ai + 1..] {
                if let Some(r) = b.runner {
                    if reserve_scarce && is_scarce(b.job) {
                        prop_assert!(b.scarce_class.is_some(), "job {} is scarce", b.job);
                        continue;
                    }
                    prop_assert!(
                        route::gate(&fa, runner_of(r)).is_err(),
                        "job {} waits while later job {} took runner {} it could run on",
                        a.job, b.job, r
                    );
                }
            }
        }
        if reserve_scarce {
            no_scarce_job_waits_behind_a_flexible_one(&fleet, &jobs, &inputs, &routing, &out)?;
        } else {
            prop_assert!(out.iter().all(|a| a.scarce_class.is_none() && a.kept.is_empty()));
        }
    }

    /// Scarce runners are kept: no job that only a smaller runner class can
    /// take waits while a job with other eligible runners holds a slot of
    /// that class. Random fleets (overlapping tags, offline, paused,
    /// protected runners) and fleets with one or two special runners among
    /// generic ones.
    #[test]
    fn no_job_waits_while_a_job_with_other_runners_holds_its_only_runners(
        mut fleet in proptest::collection::vec(runner(), 1..25),
        mut jobs in proptest::collection::vec(job(), 0..80),
        (mut special, mut special_jobs) in special_fleet(),
    ) {
        let (inputs, routing, out) = route_case(&mut fleet, &mut jobs, true);
        no_scarce_job_waits_behind_a_flexible_one(&fleet, &jobs, &inputs, &routing, &out)?;
        let (inputs, routing, out) = route_case(&mut special, &mut special_jobs, true);
        no_scarce_job_waits_behind_a_flexible_one(&special, &special_jobs, &inputs, &routing, &out)?;
    }
}

prop_compose! {
    fn finished_job()(
        tag_list in tags(),
        git_ref in select(REFS),
        stage in select(STAGES),
        arrival in 0i64..3600,
        duration in 1u32..900,
        wait in 0u32..300,
    ) -> Job {
        Job {
            name: format!("{stage}-job"),
            stage: stage.to_string(),
            status: "success".to_string(),
            git_ref: git_ref.to_string(),
            tag_list,
            created_at: Some(format!("2026-01-01T10:{:02}:{:02}Z", arrival / 60, arrival % 60)),
            duration: Some(f64::from(duration)),
            queued_duration: Some(f64::from(wait)),
            ..Job::default()
        }
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// The replay: every replayable job runs exactly once per policy, never
    /// before it arrives, on a runner that passes the gate, and no runner
    /// runs more jobs at any instant than it has slots.
    #[test]
    fn simulate_keeps_slots_and_runs_each_job_once(
        mut fleet in proptest::collection::vec(runner(), 1..8),
        mut jobs in proptest::collection::vec(finished_job(), 0..60),
    ) {
        use runneriq::fleet::simulate::{self, Options, Policy};
        for (i, r) in fleet.iter_mut().enumerate() {
            r.runner.id = 100 + i as u64;
            r.runneriq.running = None;
        }
        for (i, j) in jobs.iter_mut().enumerate() {
            j.id = 1 + i as u64;
        }
        let routing = RoutingRules::default();
        let opts = Options { default_branch: Some("main".into()), keep_schedules: true, ..Options::default() };
        let sim = simulate::simulate(&jobs, &fleet, &PriorityRules::default(), &routing, &opts);
        let unreplayed: usize = sim.unreplayable.values().sum();
        prop_assert_eq!(sim.jobs + unreplayed, jobs.len());
        let inputs = Inputs { default_branch: Some("main"), ..Inputs::default() };
        for policy in Policy::ALL {
            let sched = &sim.schedules[&policy];
            prop_assert_eq!(sched.len(), sim.jobs, "{:?}: each job once", policy);
            let mut ids: Vec<u64> = sched.iter().map(|p| p.job).collect();
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(ids.len(), sim.jobs);
            for p in sched {
                prop_assert!(p.start >= p.arrival && p.end >= p.start);
                let j = jobs.iter().find(|j| j.id == p.job).unwrap();
                let r = fleet.iter().find(|r| r.runner.id == p.runner).unwrap();
                prop_assert!(route::passes(&route::facts_of(j, &inputs, &routing), r));
            }
            // Sweep: at every start, the runner's running jobs fit its slots.
            for r in &fleet {
                let mine: Vec<_> = sched.iter().filter(|p| p.runner == r.runner.id).collect();
                for p in &mine {
                    let at = p.start;
                    let busy = mine.iter().filter(|q| q.start <= at && at < q.end).count();
                    prop_assert!(busy as u32 <= r.concurrent(), "{:?}: runner {} runs {} jobs", policy, r.runner.id, busy);
                }
            }
        }
    }

    /// With one slot that can take every job, priority-aware dispatch never
    /// makes any job of the most urgent class start later than fifo does
    /// (so neither its mean nor its p95 or max wait). With several slots this
    /// is not a theorem for non-preemptive dispatch (a long lower-class job
    /// can start just before an urgent one arrives in one schedule and not
    /// in the other); proptest finds such cases, the README says so.
    #[test]
    fn priority_never_makes_the_top_class_wait_longer_than_fifo(
        mut jobs in proptest::collection::vec(finished_job(), 1..60),
    ) {
        let (n_runners, slots) = (1usize, 1u32);
        use runneriq::fleet::simulate::{self, Options, Policy};
        let fleet: Vec<FleetRunner> = (0..n_runners)
            .map(|i| FleetRunner {
                runner: Runner {
                    id: 100 + i as u64,
                    status: Some("online".into()),
                    paused: Some(false),
                    run_untagged: Some(true),
                    tag_list: TAGS.iter().map(|t| t.to_string()).collect(),
                    ..Runner::default()
                },
                runneriq: RunnerExt { concurrent: Some(slots), ..RunnerExt::default() },
            })
            .collect();
        for (i, j) in jobs.iter_mut().enumerate() {
            j.id = 1 + i as u64;
        }
        let opts = Options { default_branch: Some("main".into()), keep_schedules: true, ..Options::default() };
        let rules = PriorityRules::default();
        let sim = simulate::simulate(&jobs, &fleet, &rules, &RoutingRules::default(), &opts);
        let top = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
            .into_iter()
            .find(|c| sim.policies[&Policy::Fifo].queue_wait.contains_key(*c));
        if let Some(top) = top {
            let f = &sim.policies[&Policy::Fifo].queue_wait[top];
            let p = &sim.policies[&Policy::Priority].queue_wait[top];
            prop_assert!(p.mean <= f.mean + 1e-6, "{top}: mean {} > fifo {}", p.mean, f.mean);
            prop_assert!(p.max <= f.max + 1e-6, "{top}: max {} > fifo {}", p.max, f.max);
            // Job by job.
            let start = |pol: Policy, id: u64| sim.schedules[&pol].iter().find(|x| x.job == id).unwrap().start;
            for x in sim.schedules[&Policy::Fifo].iter().filter(|x| x.urgency.as_str() == top) {
                prop_assert!(start(Policy::Priority, x.job) <= x.start + 1e-6, "job {}", x.job);
            }
        }
    }
}
