//! Renderings of the fleet's analyses that are not the weekly report's:
//! `simulate`'s Markdown and its one-sentence findings. Analysis
//! (`simulate.rs`) returns data; sanitising and charts happen here.

use std::fmt::Write as _;

use super::duration_words;
use super::simulate::{
    CLASSES, Policy, Sentence, Simulation, co2e_sentence, grams, indistinct_sentence,
};
use crate::publish::mermaid::{self, ChartMode};
use crate::publish::sanitize::{code_span, inline};

/// A finding as Markdown: its lead in bold, its text made inline-safe.
pub fn sentence_markdown(s: &Sentence) -> String {
    format!("**{}** {}", s.lead, inline(&s.text))
}

/// The simulation as Markdown: how far to trust it; per policy the queue
/// wait by class (or, when the replay can't tell the policies apart, one
/// sentence saying so), makespan, energy and CO₂e; the differences with
/// `fifo`; a bar chart when the waits differ and `charts` draws bars.
pub fn simulate_markdown(s: &Simulation, charts: ChartMode) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### RunnerIQ simulate: {} jobs replayed under fifo, priority and carbon\n",
        s.jobs
    );
    match &s.fifo_error {
        Some(e) => {
            let _ = writeln!(
                o,
                "**How far to trust it:** the fifo replay differs from what really happened by a median of {} and a p95 of {} of queue wait per job ({} jobs compared).\n",
                duration_words(e.median_abs_s),
                duration_words(e.p95_abs_s),
                e.jobs
            );
        }
        None => o.push_str("**How far to trust it:** unknown — the input has no real queue times to compare with.\n\n"),
    }
    let mut waits = String::from(
        "| Policy | Class | Jobs | Wait p50 | Wait p95 | Wait max |\n|---|---|---|---|---|---|\n",
    );
    for (p, r) in &s.policies {
        for c in CLASSES {
            if let Some(w) = r.queue_wait.get(c) {
                let _ = writeln!(
                    waits,
                    "| {} | {c} | {} | {} | {} | {} |",
                    p.as_str(),
                    w.jobs,
                    duration_words(w.p50),
                    duration_words(w.p95),
                    duration_words(w.max)
                );
            }
        }
    }
    let indistinct = indistinct_sentence(s);
    match &indistinct {
        Some(sentence) => {
            let _ = writeln!(o, "{}\n", sentence_markdown(sentence));
            // The figures stay at hand, folded.
            let _ = writeln!(
                o,
                "<details>\n<summary>Replayed queue waits per policy and class</summary>\n\n{waits}\n</details>\n"
            );
        }
        None => {
            o.push_str(&waits);
            o.push('\n');
        }
    }
    if let Some(n) = s
        .policies
        .values()
        .find_map(|r| r.scarce_wait.as_ref().map(|w| w.jobs))
    {
        let names: Vec<String> = s.scarce_jobs.iter().map(|x| code_span(x)).collect();
        let _ = writeln!(
            o,
            "**Scarce runners:** {n} jobs ({}) could only run on a smaller runner class than other jobs'; {}\n",
            names.join(", "),
            if s.reserve_scarce {
                "under priority and carbon a freed slot of that class goes to them first (`--no-reserve-scarce` replays without)."
            } else {
                "their slots were not kept for them (`--no-reserve-scarce`)."
            }
        );
        o.push_str("| Policy | Scarce jobs' wait p50 | Wait p95 | Wait max |\n|---|---|---|---|\n");
        for (p, r) in &s.policies {
            if let Some(w) = &r.scarce_wait {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    p.as_str(),
                    duration_words(w.p50),
                    duration_words(w.p95),
                    duration_words(w.max)
                );
            }
        }
        o.push('\n');
    }
    o.push_str(
        "| Policy | Makespan | Energy | CO₂e | Jobs without energy data |\n|---|---|---|---|---|\n",
    );
    for (p, r) in &s.policies {
        let _ = writeln!(
            o,
            "| {} | {} | {:.2} kWh | {} | {} |",
            p.as_str(),
            duration_words(r.makespan_s),
            r.energy_kwh,
            grams(r.co2e_g),
            r.jobs_without_energy
        );
    }
    o.push('\n');
    if let Some(c) = co2e_sentence(s) {
        let _ = writeln!(o, "{}\n", sentence_markdown(&c));
    }
    if s.policies.values().any(|r| r.busy_cost.is_some()) {
        o.push_str("| Policy | Busy cost | Jobs on runners without a cost |\n|---|---|---|\n");
        for (p, r) in &s.policies {
            let _ = writeln!(
                o,
                "| {} | {:.2} | {} |",
                p.as_str(),
                r.busy_cost.unwrap_or(0.0),
                r.jobs_without_cost.unwrap_or(0)
            );
        }
        o.push('\n');
        let _ = writeln!(
            o,
            "Busy cost: the replayed busy time at each runner's `cost_per_hour` ÷ its slots, in the fleet file's unit (no currency assumed){}. A fleet that stays up costs the same under every policy; what a policy changes is which runner's rate the work is billed at.\n",
            s.observed_busy_cost
                .map(|c| format!("; what really happened to the same jobs: {c:.2}"))
                .unwrap_or_default()
        );
    }
    if let (None, Some(fifo)) = (&indistinct, s.policies.get(&Policy::Fifo)) {
        o.push_str("**Against fifo** (queue wait p95):\n\n");
        for (p, r) in s.policies.iter().filter(|(p, _)| **p != Policy::Fifo) {
            let mut parts = Vec::new();
            for c in CLASSES {
                if let (Some(a), Some(b)) = (r.queue_wait.get(c), fifo.queue_wait.get(c)) {
                    let d = a.p95 - b.p95;
                    let sign = if d < 0.0 { "−" } else { "+" };
                    parts.push(format!("{c} {sign}{}", duration_words(d.abs())));
                }
            }
            let _ = writeln!(o, "- {}: {}", p.as_str(), parts.join(", "));
        }
        o.push('\n');
        // One series per chart (xychart draws no legend): p95 wait per
        // class and policy as bars.
        if charts.bars() {
            let mut bars = Vec::new();
            for c in CLASSES {
                for (p, r) in &s.policies {
                    if let Some(w) = r.queue_wait.get(c) {
                        bars.push((format!("{c} {}", p.as_str()), w.p95));
                    }
                }
            }
            let chart = mermaid::bar_chart("Queue wait p95 by class and policy", "seconds", &bars);
            if !chart.is_empty() {
                o.push_str(&chart);
                o.push('\n');
            }
        }
    }
    if !s.unreplayable.is_empty() {
        o.push_str("**Not replayed:** ");
        let parts: Vec<String> = s
            .unreplayable
            .iter()
            .map(|(why, n)| format!("{n} ({})", inline(why)))
            .collect();
        o.push_str(&parts.join(", "));
        o.push_str(".\n\n");
    }
    o.push_str("**The model leaves out:**\n\n");
    for l in &s.limitations {
        let _ = writeln!(o, "- {}", inline(l));
    }
    o
}
