//! The weekly report as Markdown (with Mermaid charts GitLab draws itself)
//! and as one self-contained HTML page (inline SVG, no script, no external
//! asset). Both render the same [`Report`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::metrics::{CostReport, ReportData};
use super::source::Span;
use crate::publish::format::ReportFormat;
use crate::publish::mermaid::{self, ChartMode};
use crate::publish::sanitize::{code_span, inline, link, text_link};

/// First line of a report issue: found again by it.
pub const MARKER_PREFIX: &str = "<!-- runneriq:report ";
/// The hidden state block a later week compares with.
pub const STATE_PREFIX: &str = "<!-- runneriq:report-state ";

/// The figures compared week over week (kept in the issue's state block).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub week: String,
    pub jobs: u32,
    pub failures: u32,
    pub infra_failures: u32,
    /// p95 queue wait per urgency class.
    pub wait_p95_s: BTreeMap<String, f64>,
    pub co2e_g: f64,
    pub flaky_jobs: u32,
}

impl Summary {
    pub fn of(week: &str, d: &ReportData) -> Summary {
        Summary {
            week: week.to_string(),
            jobs: d.jobs,
            failures: d
                .runners
                .iter()
                .map(|r| r.failures_infra + r.failures_script)
                .sum(),
            infra_failures: d.runners.iter().map(|r| r.failures_infra).sum(),
            wait_p95_s: d
                .queue_wait
                .iter()
                .map(|c| {
                    (
                        c.urgency.as_str().to_string(),
                        (c.p95_s * 10.0).round() / 10.0,
                    )
                })
                .collect(),
            co2e_g: d.carbon.total_co2e_g.round(),
            flaky_jobs: d.flaky.len() as u32,
        }
    }

    /// Reads the state block of an earlier report body: its last line, where
    /// RunnerIQ writes it, and nowhere else.
    pub fn from_body(body: &str) -> Option<Summary> {
        let last = body.lines().rev().find(|l| !l.trim().is_empty())?;
        let json = last.strip_prefix(STATE_PREFIX)?.strip_suffix("-->")?;
        serde_json::from_str(json.trim()).ok()
    }
}

/// Everything a report says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub project: String,
    /// ISO week of the window's last second, `2026-W48`.
    pub week: String,
    pub from: String,
    pub to: String,
    /// Embedded demo data, not a real project.
    pub demo: bool,
    /// Where the history came from, in words.
    pub source: String,
    pub summary: Summary,
    /// Last week's figures, when found.
    pub previous: Option<Summary>,
    pub previous_url: Option<String>,
    /// What the reader should know about the data (fallbacks, limits).
    pub notes: Vec<String>,
    /// Cleanest hour of the next 24 h per zone, from Electricity Maps.
    pub forecast: Vec<crate::fleet::carbon_live::Cleanest>,
    /// Tag-bridge activity in the window, from the audit file (`--audit`).
    pub tag_bridge: Option<TagBridge>,
    /// What priority-aware (and carbon-aware) routing would have changed
    /// this week, from `simulate`'s engine (needs a fleet file).
    pub routing_impact: Option<RoutingImpact>,
    pub data: ReportData,
    pub version: String,
    /// Which Mermaid charts the Markdown draws (never `Auto` here: the
    /// command decides it from the GitLab version or `--charts`).
    #[serde(skip)]
    pub charts: ChartMode,
}

/// The week replayed under the three policies, in brief.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutingImpact {
    pub jobs: usize,
    /// Policy → class → p95 queue wait (s).
    pub wait_p95_s: BTreeMap<String, BTreeMap<String, f64>>,
    /// Policy → CO₂e (g).
    pub co2e_g: BTreeMap<String, f64>,
    /// The fifo replay against what happened: median and p95 |difference| (s).
    pub fifo_error_s: Option<(f64, f64)>,
    /// Whether the policies' waits differ by more than the replay's error.
    pub policies_told_apart: Option<bool>,
    /// When they don't: that, in one sentence (instead of a table).
    pub indistinct: Option<crate::fleet::simulate::Sentence>,
    /// The replay's CO₂e against the measured one, in one sentence.
    pub co2e: Option<crate::fleet::simulate::Sentence>,
}

impl RoutingImpact {
    pub fn of(s: &crate::fleet::simulate::Simulation) -> RoutingImpact {
        RoutingImpact {
            jobs: s.jobs,
            wait_p95_s: s
                .policies
                .iter()
                .map(|(p, r)| {
                    (
                        p.as_str().to_string(),
                        r.queue_wait
                            .iter()
                            .map(|(c, w)| (c.clone(), w.p95))
                            .collect(),
                    )
                })
                .collect(),
            co2e_g: s
                .policies
                .iter()
                .map(|(p, r)| (p.as_str().to_string(), r.co2e_g))
                .collect(),
            fifo_error_s: s.fifo_error.as_ref().map(|e| (e.median_abs_s, e.p95_abs_s)),
            policies_told_apart: s.policies_told_apart,
            indistinct: crate::fleet::simulate::indistinct_sentence(s),
            co2e: crate::fleet::simulate::co2e_sentence(s),
        }
    }
}

/// What the tag bridge did in the window (from the audit log).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TagBridge {
    pub recommendations: u32,
    pub tag_changes: u32,
    pub applied: u32,
    pub failed: u32,
    /// Tag → (added, removed), applied changes only.
    pub by_tag: BTreeMap<String, (u32, u32)>,
}

impl TagBridge {
    /// Counts the audit entries (already limited to the window by the caller).
    pub fn of(entries: &[crate::fleet::audit::Entry], to: i64) -> TagBridge {
        let mut t = TagBridge::default();
        for e in entries.iter().filter(|e| e.at < to) {
            let v = &e.value;
            match v["kind"].as_str() {
                Some("recommendation") => t.recommendations += 1,
                Some("tag_change") => {
                    t.tag_changes += 1;
                    if v["applied"].as_bool() == Some(true) {
                        t.applied += 1;
                        let tag = v["tag"].as_str().unwrap_or("?").to_string();
                        let e = t.by_tag.entry(tag).or_default();
                        if v["action"] == "add" {
                            e.0 += 1;
                        } else {
                            e.1 += 1;
                        }
                    } else if v["error"].is_string() {
                        t.failed += 1;
                    }
                }
                _ => {}
            }
        }
        t
    }
}

/// `2026-W48` for a unix time.
pub fn iso_week(t: i64) -> String {
    let d =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (year, week, _) = d.to_iso_week_date();
    format!("{year}-W{week:02}")
}

/// `2026-11-16 00:00` (UTC).
pub fn day_time(t: i64) -> String {
    let d =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute()
    )
}

fn secs(s: f64) -> String {
    crate::fleet::duration_words(s)
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

fn grams(g: f64) -> String {
    crate::fleet::simulate::grams(g)
}

/// A table cell: plain text, shown as code or not (each rendering escapes).
enum Cell {
    Text(String),
    Code(String),
}

/// One table, rendered the same way in Markdown and in HTML.
struct Table {
    head: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
}

impl Table {
    fn md(&self) -> String {
        let mut o = format!("| {} |\n|", self.head.join(" | "));
        o.push_str(&"---|".repeat(self.head.len()));
        o.push('\n');
        for row in &self.rows {
            o.push('|');
            for c in row {
                let cell = match c {
                    Cell::Text(t) => inline(t),
                    Cell::Code(t) => code_span(t),
                };
                let _ = write!(o, " {cell} |");
            }
            o.push('\n');
        }
        o
    }

    fn html(&self) -> String {
        let mut o = String::from("<div class=\"scroll\"><table><tr>");
        for h in self.head {
            let _ = write!(o, "<th>{}</th>", esc(h));
        }
        o.push_str("</tr>");
        for row in &self.rows {
            o.push_str("<tr>");
            for c in row {
                match c {
                    Cell::Text(t) => {
                        let _ = write!(o, "<td>{}</td>", esc(t));
                    }
                    Cell::Code(t) => {
                        let _ = write!(o, "<td><code>{}</code></td>", esc(t));
                    }
                }
            }
            o.push_str("</tr>");
        }
        o.push_str("</table></div>");
        o
    }
}

fn runners_table(d: &ReportData) -> Table {
    Table {
        head: &[
            "Runner",
            "Jobs",
            "Busy",
            "p50",
            "p95",
            "Utilization",
            "Infra failures",
            "Script failures",
            "Score",
        ],
        rows: d
            .runners
            .iter()
            .map(|m| {
                vec![
                    Cell::Code(m.name.clone()),
                    Cell::Text(m.jobs.to_string()),
                    Cell::Text(secs(m.busy_s)),
                    Cell::Text(m.p50_duration_s.map_or("—".into(), secs)),
                    Cell::Text(m.p95_duration_s.map_or("—".into(), secs)),
                    Cell::Text(pct(m.utilization)),
                    Cell::Text(format!(
                        "{} ({})",
                        m.failures_infra,
                        pct(m.infra_failure_rate)
                    )),
                    Cell::Text(m.failures_script.to_string()),
                    Cell::Text(format!("{:.0}", m.score.total)),
                ]
            })
            .collect(),
    }
}

fn waits_table(d: &ReportData) -> Table {
    Table {
        head: &["Class", "Jobs", "p50", "p95", "Max"],
        rows: d
            .queue_wait
            .iter()
            .map(|c| {
                vec![
                    Cell::Text(c.urgency.as_str().to_string()),
                    Cell::Text(c.jobs.to_string()),
                    Cell::Text(secs(c.p50_s)),
                    Cell::Text(secs(c.p95_s)),
                    Cell::Text(secs(c.max_s)),
                ]
            })
            .collect(),
    }
}

fn carbon_table(d: &ReportData) -> Table {
    Table {
        head: &[
            "Runner",
            "Zone",
            "gCO₂e/kWh",
            "Energy",
            "CO₂e",
            "Intensity source",
        ],
        rows: d
            .carbon
            .runners
            .iter()
            .map(|rc| {
                vec![
                    Cell::Code(rc.name.clone()),
                    Cell::Code(rc.zone.clone()),
                    Cell::Text(format!("{:.0}", rc.g_per_kwh)),
                    Cell::Text(format!("{:.2} kWh", rc.energy_kwh)),
                    Cell::Text(grams(rc.co2e_g)),
                    Cell::Text(rc.source.clone()),
                ]
            })
            .collect(),
    }
}

/// An amount in the fleet file's unit (no currency is assumed).
fn money(x: f64) -> String {
    format!("{x:.2}")
}

fn hours(h: f64) -> String {
    format!("{h:.1} h")
}

fn cost_table(c: &CostReport) -> Table {
    Table {
        head: &[
            "Runner",
            "Cost per hour",
            "Slots",
            "Busy",
            "Busy cost",
            "Capacity",
            "Idle cost",
        ],
        rows: c
            .runners
            .iter()
            .map(|r| {
                vec![
                    Cell::Code(r.name.clone()),
                    Cell::Text(money(r.cost_per_hour)),
                    Cell::Text(r.slots.to_string()),
                    Cell::Text(hours(r.busy_h)),
                    Cell::Text(money(r.busy_cost)),
                    Cell::Text(hours(r.capacity_h)),
                    Cell::Text(money(r.idle_cost)),
                ]
            })
            .collect(),
    }
}

fn class_cost_table(c: &CostReport) -> Table {
    Table {
        head: &[
            "Class",
            "Jobs",
            "Busy",
            "Cost",
            "Jobs on runners without a cost",
        ],
        rows: c
            .by_class
            .iter()
            .map(|k| {
                vec![
                    Cell::Text(k.urgency.as_str().to_string()),
                    Cell::Text(k.jobs.to_string()),
                    Cell::Text(hours(k.busy_h)),
                    Cell::Text(money(k.cost)),
                    Cell::Text(k.jobs_without_cost.to_string()),
                ]
            })
            .collect(),
    }
}

/// The cost section's opening sentence.
fn cost_sentence(c: &CostReport) -> String {
    format!(
        "{} for busy time and {} for idle capacity this period, in the fleet file's unit (`cost_per_hour`, the whole runner per hour; no currency assumed).",
        money(c.busy_cost),
        money(c.idle_cost)
    )
}

const COST_DEFINITIONS: &str = "Capacity is slots × the period's hours (the utilization's denominator); a slot-hour costs the runner's cost per hour ÷ its slots; busy cost is the jobs' durations at that rate, idle cost the unused slot-hours at that rate, so the two add up to the runner's bill when it was up the whole period (an autoscaled runner that stops when idle costs less than its idle cost here).";

/// The week-over-week rows (label, this week, and last week with the change
/// when last week's figures are known), as plain text.
fn summary_rows(r: &Report) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let s = &r.summary;
    let prev = r.previous.as_ref();
    let count = |x: f64| format!("{x:.0}");
    let mut rows = Vec::new();
    let mut row = |name: String, now: f64, before: Option<f64>, fmt: &dyn Fn(f64) -> String| {
        let mut cells = vec![name, fmt(now)];
        if prev.is_some() {
            let b = before.unwrap_or(0.0);
            cells.push(fmt(b));
            cells.push(delta(now, b, fmt));
        }
        rows.push(cells);
    };
    row(
        "Jobs".into(),
        f64::from(s.jobs),
        prev.map(|p| f64::from(p.jobs)),
        &count,
    );
    row(
        "Failed jobs".into(),
        f64::from(s.failures),
        prev.map(|p| f64::from(p.failures)),
        &count,
    );
    row(
        "… of which infrastructure".into(),
        f64::from(s.infra_failures),
        prev.map(|p| f64::from(p.infra_failures)),
        &count,
    );
    row(
        "Flaky jobs".into(),
        f64::from(s.flaky_jobs),
        prev.map(|p| f64::from(p.flaky_jobs)),
        &count,
    );
    // Most urgent first (the state block keeps them in alphabetical order).
    for (class, v) in URGENCY_ORDER
        .iter()
        .filter_map(|c| s.wait_p95_s.get_key_value(*c))
    {
        row(
            format!("Queue wait p95, {class}"),
            *v,
            prev.map(|p| p.wait_p95_s.get(class).copied().unwrap_or(0.0)),
            &secs,
        );
    }
    row("CO₂e".into(), s.co2e_g, prev.map(|p| p.co2e_g), &grams);
    let head = if prev.is_some() {
        vec!["", "This week", "Last week", "Change"]
    } else {
        vec!["", "This week"]
    };
    (head, rows)
}

/// Urgency classes, most urgent first: every table and chart lists them so.
const URGENCY_ORDER: [&str; 4] = ["CRITICAL", "HIGH", "MEDIUM", "LOW"];

/// What the routing section replayed, and how far to trust it (plain text
/// but for the code span).
fn impact_intro(ri: &RoutingImpact) -> String {
    format!(
        "The week's {} jobs replayed on the fleet's slots (`runneriq simulate`) under fifo (what GitLab does), priority and carbon{}.",
        ri.jobs,
        match (ri.fifo_error_s, &ri.indistinct) {
            (Some((m, p)), None) => format!(
                "; the fifo replay differs from what happened by a median of {} and a p95 of {} per job, so read smaller differences with care",
                secs(m),
                secs(p)
            ),
            _ => String::new(),
        }
    )
}

/// The routing replay in brief: p95 queue wait by class and CO₂e per policy.
fn impact_table(ri: &RoutingImpact) -> Table {
    Table {
        head: &["Policy", "Queue wait p95 by class", "CO₂e"],
        rows: ["fifo", "priority", "carbon"]
            .iter()
            .filter_map(|p| ri.wait_p95_s.get(*p).map(|w| (*p, w)))
            .map(|(policy, waits)| {
                let classes: Vec<String> = URGENCY_ORDER
                    .iter()
                    .filter_map(|c| waits.get(*c).map(|w| format!("{c} {}", secs(*w))))
                    .collect();
                vec![
                    Cell::Text(policy.to_string()),
                    Cell::Text(classes.join(" · ")),
                    Cell::Text(grams(ri.co2e_g.get(policy).copied().unwrap_or(0.0))),
                ]
            })
            .collect(),
    }
}

fn tags_table(d: &ReportData) -> Table {
    Table {
        head: &["Tags", "Jobs", "p50", "p95", "Max"],
        rows: d
            .queue_wait_by_tags
            .iter()
            .map(|t| {
                vec![
                    Cell::Code(t.tags.clone()),
                    Cell::Text(t.jobs.to_string()),
                    Cell::Text(secs(t.p50_s)),
                    Cell::Text(secs(t.p95_s)),
                    Cell::Text(secs(t.max_s)),
                ]
            })
            .collect(),
    }
}

fn delta(now: f64, before: f64, fmt: impl Fn(f64) -> String) -> String {
    if before == 0.0 && now == 0.0 {
        return "=".into();
    }
    let d = now - before;
    let sign = if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "−"
    } else {
        "±"
    };
    if before > 0.0 {
        format!(
            "{sign}{} ({sign}{:.0} %)",
            fmt(d.abs()),
            d.abs() / before * 100.0
        )
    } else {
        format!("{sign}{}", fmt(d.abs()))
    }
}

/// The report as Markdown for a GitLab issue (marker first, state last).
pub fn markdown(r: &Report) -> String {
    let d = &r.data;
    let mut o = String::new();
    let _ = writeln!(o, "{MARKER_PREFIX}week={} -->", r.week);
    let _ = writeln!(
        o,
        "## RunnerIQ weekly report — {}{}\n",
        r.week,
        if r.demo { " (demo data)" } else { "" }
    );
    if r.demo {
        o.push_str("> **Demo data**: an embedded history, not a real project.\n\n");
    }
    let _ = writeln!(
        o,
        "{} · {} → {} UTC · {} jobs in {} pipelines · source: {}{}\n",
        code_span(&r.project),
        r.from,
        r.to,
        d.jobs,
        d.pipelines,
        inline(&r.source),
        r.previous_url
            .as_deref()
            .map(|u| format!(" · {}", link("last week", Some(u))))
            .unwrap_or_default()
    );

    // Week over week.
    let (head, rows) = summary_rows(r);
    let cells: Vec<String> = head
        .iter()
        .map(|h| {
            if h.is_empty() {
                " ".into()
            } else {
                format!(" {h} ")
            }
        })
        .collect();
    let _ = writeln!(o, "|{}|", cells.join("|"));
    let _ = writeln!(o, "|{}", "---|".repeat(head.len()));
    for row in rows {
        let _ = writeln!(o, "| {} |", row.join(" | "));
    }
    o.push('\n');

    // Findings.
    o.push_str("### What to change\n\n");
    if d.findings.is_empty() {
        o.push_str("No detector fired this week.\n\n");
    }
    for line in finding_lines(d) {
        let _ = writeln!(o, "- {}", line.md());
    }
    if !d.findings.is_empty() {
        o.push('\n');
    }

    // Runners.
    o.push_str("### Runners\n\n");
    o.push_str(&runners_table(d).md());
    if let Some(w) = d.runners.first().map(|m| &m.score.weights) {
        let _ = writeln!(
            o,
            "\nScore: throughput {} · speed {} · reliability {} · utilization {} (best at 50–80 %).\n",
            pct(w.throughput),
            pct(w.speed),
            pct(w.reliability),
            pct(w.utilization)
        );
    } else {
        o.push('\n');
    }
    let busy: Vec<(String, f64)> = d
        .runners
        .iter()
        .map(|m| (m.name.clone(), m.busy_s / 3600.0))
        .collect();
    if r.charts.bars() {
        push_chart(
            &mut o,
            mermaid::bar_chart("Busy time per runner", "hours", &busy),
        );
    } else if r.charts.pies() {
        push_chart(
            &mut o,
            mermaid::pie_chart("Share of busy time per runner", &busy, "runners"),
        );
    }

    // Queue wait.
    o.push_str("### Queue wait by priority class\n\n");
    if d.queue_wait.is_empty() {
        o.push_str("No job with a queue time.\n\n");
    } else {
        o.push_str(&waits_table(d).md());
        o.push('\n');
        let bars: Vec<(String, f64)> = d
            .queue_wait
            .iter()
            .map(|c| (c.urgency.as_str().to_string(), c.p95_s))
            .collect();
        if r.charts.bars() {
            push_chart(
                &mut o,
                mermaid::bar_chart("Queue wait p95 by class", "seconds", &bars),
            );
        }
    }
    if !d.queue_wait_by_tags.is_empty() {
        o.push_str("<details>\n<summary>Queue wait by tag set</summary>\n\n");
        o.push_str(&tags_table(d).md());
        o.push_str("\n</details>\n\n");
    }

    // Flaky jobs.
    o.push_str("### Flaky jobs\n\n");
    if d.flaky.is_empty() {
        o.push_str("None: no job failed and then passed on the same commit.\n\n");
    } else {
        o.push_str("| Job | Times it failed, then passed on the same commit | Last failed attempt |\n|---|---|---|\n");
        for f in &d.flaky {
            // The link names what it opens: the job, then the branch it ran on.
            let _ = writeln!(
                o,
                "| {} | {} | {} on {} |",
                code_span(&f.name),
                f.occurrences,
                text_link(&format!("job #{}", f.last_job), f.last_web_url.as_deref()),
                code_span(&f.last_ref)
            );
        }
        o.push('\n');
    }

    // Flakiest tests, from the default branch's unit test reports.
    o.push_str(&flaky_tests_md(d));

    // Failures per day.
    o.push_str("### Failures by category per day\n\n");
    let mut cats: BTreeMap<&str, u32> = BTreeMap::new();
    for day in &d.failures_by_day {
        for (c, n) in &day.by_category {
            *cats.entry(c).or_default() += n;
        }
    }
    if cats.is_empty() {
        o.push_str("No failed job.\n\n");
    } else {
        let mut order: Vec<(&str, u32)> = cats.into_iter().collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        order.truncate(8);
        o.push_str("| Day |");
        for (c, _) in &order {
            let _ = write!(o, " {} |", code_span(c));
        }
        o.push_str(" Total |\n|---|");
        for _ in &order {
            o.push_str("---|");
        }
        o.push_str("---|\n");
        let mut totals = Vec::new();
        for day in &d.failures_by_day {
            let _ = write!(o, "| {} |", day.day);
            for (c, _) in &order {
                let _ = write!(o, " {} |", day.by_category.get(*c).copied().unwrap_or(0));
            }
            let total: u32 = day.by_category.values().sum();
            let _ = writeln!(o, " {total} |");
            totals.push((
                day.day.get(5..).unwrap_or(&day.day).to_string(),
                f64::from(total),
            ));
        }
        o.push('\n');
        if r.charts.bars() {
            push_chart(
                &mut o,
                mermaid::bar_chart("Failed jobs per day", "jobs", &totals),
            );
        }
    }

    // Carbon.
    let c = &d.carbon;
    o.push_str("### Carbon\n\n");
    if c.runners.is_empty() {
        o.push_str("No runner with a known zone and power: add `runneriq.zone` and `runneriq.power_watts` to the fleet file (`--fleet`).\n\n");
    } else {
        let _ = writeln!(
            o,
            "{} of energy, {} CO₂e{}.\n",
            format_args!("{:.2} kWh", c.total_kwh),
            grams(c.total_co2e_g),
            c.fleet_avg_g_per_kwh
                .map(|g| format!(", fleet average {g:.0} gCO₂e/kWh"))
                .unwrap_or_default()
        );
        o.push_str(&carbon_table(d).md());
        o.push('\n');
        let parts: Vec<(String, f64)> = c
            .runners
            .iter()
            .map(|x| (x.name.clone(), x.co2e_g))
            .collect();
        if r.charts.pies() {
            push_chart(
                &mut o,
                mermaid::pie_chart("CO₂e per runner in grams", &parts, "runners"),
            );
        }
        if !c.cleaner_alternatives.is_empty() {
            o.push_str(
                "Jobs that could have run on a cleaner runner that was eligible and idle:\n\n",
            );
            for a in &c.cleaner_alternatives {
                // "(job 500224)", never a bare `#500224`: GitLab would link
                // it to an unrelated issue.
                let _ = writeln!(
                    o,
                    "- {} (job {}): ran on {}, {} was free — {} less",
                    code_span(&a.name),
                    a.job_id,
                    code_span(&a.ran_on),
                    code_span(&a.could_run_on),
                    grams(a.saved_g)
                );
            }
            o.push('\n');
        }
    }
    if !c.unknown.is_empty() {
        let names: Vec<String> = c.unknown.iter().map(|n| code_span(n)).collect();
        let _ = writeln!(
            o,
            "Not counted (no zone or power in the fleet file): {}.\n",
            names.join(", ")
        );
    }
    if !r.forecast.is_empty() {
        o.push_str("Cleanest hour in the next 24 h (Electricity Maps forecast), for jobs that can wait:\n\n");
        for f in &r.forecast {
            let _ = writeln!(
                o,
                "- {}: {:.0} gCO₂e/kWh at {}",
                code_span(&f.zone),
                f.g_per_kwh,
                inline(&f.at)
            );
        }
        o.push('\n');
    }
    o.push_str("Carbon intensities: the Intensity source column says where each comes from — live values from Electricity Maps when `ELECTRICITY_MAPS_TOKEN` is set, else annual averages from the embedded tables (codecarbon's data: Ember via Our World in Data for countries, EPA eGRID 2023 for US states, provider figures for cloud regions, Nordic bidding zones 2025). Energy is the fleet file's power × busy time.\n\n");
    for n in &r.notes {
        let _ = writeln!(o, "- note: {}", inline(n));
    }
    if !r.notes.is_empty() {
        o.push('\n');
    }

    if let Some(c) = &d.cost {
        o.push_str("### Cost\n\n");
        let _ = writeln!(o, "{}\n", cost_sentence(c));
        if !c.runners.is_empty() {
            o.push_str(&cost_table(c).md());
            o.push('\n');
        }
        if !c.by_class.is_empty() {
            o.push_str(&class_cost_table(c).md());
            o.push('\n');
            let bars: Vec<(String, f64)> = c
                .by_class
                .iter()
                .map(|k| (k.urgency.as_str().to_string(), k.cost))
                .collect();
            if r.charts.bars() {
                push_chart(
                    &mut o,
                    mermaid::bar_chart("Cost by priority class", "cost", &bars),
                );
            }
        }
        if !c.unknown.is_empty() {
            let names: Vec<String> = c.unknown.iter().map(|n| code_span(n)).collect();
            let _ = writeln!(
                o,
                "Cost unknown (no `runneriq.cost_per_hour` in the fleet file, not counted as 0): {}.\n",
                names.join(", ")
            );
        }
        let _ = writeln!(o, "{COST_DEFINITIONS}\n");
    }

    if let Some(ri) = &r.routing_impact {
        o.push_str("### What priority routing would have changed this week\n\n");
        let _ = writeln!(o, "{}\n", impact_intro(ri));
        match &ri.indistinct {
            Some(sentence) => {
                let _ = writeln!(o, "{}\n", crate::fleet::render::sentence_markdown(sentence));
            }
            None => {
                o.push_str(&impact_table(ri).md());
                o.push('\n');
            }
        }
        if let Some(c) = &ri.co2e {
            let _ = writeln!(o, "{}\n", crate::fleet::render::sentence_markdown(c));
        }
    }
    if let Some(t) = &r.tag_bridge {
        o.push_str("### Tag bridge\n\n");
        let _ = writeln!(
            o,
            "{} routing recommendations, {} tag changes ({} applied, {} failed) this week.\n",
            t.recommendations, t.tag_changes, t.applied, t.failed
        );
        for (tag, (added, removed)) in t
            .by_tag
            .iter()
            .filter(|(tag, _)| !tag.starts_with("runneriq:until:"))
        {
            let _ = writeln!(
                o,
                "- {}: added {added} times, removed {removed} times",
                code_span(tag)
            );
        }
        if !t.by_tag.is_empty() {
            o.push('\n');
        }
    }
    let sk = &d.skipped;
    if sk.outside_window + sk.unfinished + sk.no_timestamps > 0 {
        let _ = writeln!(
            o,
            "Not counted: {} jobs outside the window, {} unfinished, {} without timestamps.\n",
            sk.outside_window, sk.unfinished, sk.no_timestamps
        );
    }
    let _ = writeln!(
        o,
        "---\n<sub>RunnerIQ v{} · updated in place every run of the week</sub>",
        r.version
    );
    let state = serde_json::to_string(&r.summary)
        .unwrap_or_default()
        .replace("--", "- -");
    let _ = writeln!(o, "{STATE_PREFIX}{state} -->");
    crate::publish::sanitize::guard(&o)
}

/// A chart block and the blank line after it (nothing when it is empty).
fn push_chart(o: &mut String, chart: String) {
    if !chart.is_empty() {
        o.push_str(&chart);
        o.push('\n');
    }
}

/// Text for HTML: escaped, and a unit never broken from its number on a
/// narrow screen ("27 s", "13 %", "4.1 min").
/// `0.0588` → `5.9%`.
fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// What the flakiest-tests section says when it has no table, with the
/// branch and the CI keyword as `code` (Markdown) or as they are (HTML).
fn flaky_tests_none(d: &ReportData, code: impl Fn(&str) -> String) -> String {
    let branch = d
        .test_branch
        .as_deref()
        .map_or_else(|| "the default branch".to_string(), &code);
    if d.test_pipelines == 0 {
        format!(
            "No unit test report was read for the pipelines of {branch} in this window (jobs \
             publish them with {}).",
            code("artifacts: reports: junit:")
        )
    } else {
        format!(
            "None: no test failed now and then in the {} pipelines of {branch} whose unit test \
             reports were read.",
            d.test_pipelines
        )
    }
}

/// The flakiest tests of the window, as Markdown (a heading, then a table or
/// a sentence).
fn flaky_tests_md(d: &ReportData) -> String {
    let mut o = String::from("### Flakiest tests\n\n");
    if d.flaky_tests.is_empty() {
        let _ = write!(o, "{}\n\n", flaky_tests_none(d, code_span));
        return o;
    }
    let branch = d
        .test_branch
        .as_deref()
        .map_or_else(|| "the default branch".to_string(), code_span);
    let _ = write!(
        o,
        "Tests that failed now and then on {branch} and passed otherwise, by failure rate over \
         the window (from the unit test reports of {} of its pipelines):\n\n\
         | Test | Suite | Failed | Failure rate | Last failure |\n|---|---|---|---|---|\n",
        d.test_pipelines
    );
    for t in &d.flaky_tests {
        let _ = writeln!(
            o,
            "| {} | {} | {} of {} runs | {} | {} |",
            code_span(&t.name),
            code_span(&t.suite),
            t.failures,
            t.runs,
            percent(t.rate),
            text_link(
                &format!("pipeline #{}", t.last_pipeline),
                t.last_url.as_deref()
            )
        );
    }
    o.push('\n');
    o
}

fn esc(s: &str) -> String {
    static UNIT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let unit = UNIT.get_or_init(|| {
        regex::Regex::new(r"(\d) (%|(?:s|min|h|days|g|kg|kWh|jobs|slots?)\b)").expect("valid")
    });
    let escaped = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    unit.replace_all(&escaped, "$1\u{a0}$2").into_owned()
}

/// The pages' style: readable on a phone (the viewport meta tag, tables
/// keep their rows on one line and scroll inside their box, charts scale
/// down, long words wrap).
const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45;overflow-wrap:anywhere}\
.scroll{overflow-x:auto;margin:.5em 0 1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;white-space:nowrap}th{background:#f3f0fa}\
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}svg{max-width:100%;height:auto}\
.demo{background:#fff3cd;padding:.5em 1em}";

/// A whole page: the head every HTML output shares, then `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}

/// A horizontal bar chart as inline SVG, scaled from 0, that shrinks with
/// the screen (a `viewBox`, no fixed width).
fn svg_bars(title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    const WIDTH: f64 = 460.0;
    const LABEL: f64 = 150.0;
    const BAR: f64 = 230.0;
    let bars = &bars[..bars.len().min(20)];
    if bars.is_empty() {
        return String::new();
    }
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    let h = 24 * bars.len() + 10;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {h}\" width=\"{WIDTH}\" height=\"{h}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 4 + i * 24;
        let w = (v.max(0.0) / max * BAR).max(1.0);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"#1f75cb\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"13\">{} {}</text>",
            y + 14,
            esc(&label.chars().take(20).collect::<String>()),
            LABEL + 5.0 + w,
            y + 14,
            mermaid::number(*v),
            esc(unit)
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

/// The report as one self-contained HTML page: the Markdown's content as
/// HTML tables, with inline SVG charts.
pub fn html(r: &Report) -> String {
    let d = &r.data;
    let mut b = String::new();
    let _ = write!(b, "<h1>RunnerIQ weekly report — {}</h1>", esc(&r.week));
    if r.demo {
        b.push_str("<p class=\"demo\"><strong>Demo data</strong>: an embedded history, not a real project.</p>");
    }
    let _ = write!(
        b,
        "<p><code>{}</code> · {} → {} UTC · {} jobs in {} pipelines · source: {}</p>",
        esc(&r.project),
        esc(&r.from),
        esc(&r.to),
        d.jobs,
        d.pipelines,
        esc(&r.source)
    );
    let (head, rows) = summary_rows(r);
    b.push_str("<div class=\"scroll\"><table><tr>");
    for h in head {
        let _ = write!(b, "<th>{}</th>", esc(h));
    }
    b.push_str("</tr>");
    for row in rows {
        b.push_str("<tr>");
        for c in row {
            let _ = write!(b, "<td>{}</td>", esc(&c));
        }
        b.push_str("</tr>");
    }
    b.push_str("</table></div>");
    b.push_str("<h2>What to change</h2><ul>");
    if d.findings.is_empty() {
        b.push_str("<li>No detector fired this week.</li>");
    }
    for line in finding_lines(d) {
        let _ = write!(b, "<li>{}</li>", line.html());
    }
    b.push_str("</ul><h2>Runners</h2>");
    b.push_str(&runners_table(d).html());
    let busy: Vec<(String, f64)> = d
        .runners
        .iter()
        .map(|m| (m.name.clone(), m.busy_s / 3600.0))
        .collect();
    b.push_str(&svg_bars("Busy time per runner", "h", &busy));
    b.push_str("<h2>Queue wait by priority class</h2>");
    b.push_str(&waits_table(d).html());
    let waits: Vec<(String, f64)> = d
        .queue_wait
        .iter()
        .map(|c| (c.urgency.as_str().to_string(), c.p95_s))
        .collect();
    b.push_str(&svg_bars("Queue wait p95 by class", "s", &waits));
    if !d.queue_wait_by_tags.is_empty() {
        b.push_str("<h3>Queue wait by tag set</h3>");
        b.push_str(&tags_table(d).html());
    }
    b.push_str(
        "<h2>Flaky jobs</h2><div class=\"scroll\"><table><tr><th>Job</th><th>Failed, then passed</th><th>Last failed attempt</th></tr>",
    );
    for f in &d.flaky {
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td>{}</td><td>job #{} on <code>{}</code></td></tr>",
            esc(&f.name),
            f.occurrences,
            f.last_job,
            esc(&f.last_ref)
        );
    }
    b.push_str("</table></div><h2>Flakiest tests</h2>");
    if d.flaky_tests.is_empty() {
        let _ = write!(b, "<p>{}</p>", esc(&flaky_tests_none(d, str::to_string)));
    } else {
        b.push_str(
            "<div class=\"scroll\"><table><tr><th>Test</th><th>Suite</th><th>Failed</th><th>Failure rate</th><th>Last failure</th></tr>",
        );
        for t in &d.flaky_tests {
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{} of {} runs</td><td>{}</td><td>pipeline {}</td></tr>",
                esc(&t.name),
                esc(&t.suite),
                t.failures,
                t.runs,
                percent(t.rate),
                t.last_pipeline
            );
        }
        b.push_str("</table></div>");
    }
    b.push_str("<h2>Failures per day</h2>");
    let per_day: Vec<(String, f64)> = d
        .failures_by_day
        .iter()
        .map(|x| {
            (
                x.day.clone(),
                f64::from(x.by_category.values().sum::<u32>()),
            )
        })
        .collect();
    b.push_str(&svg_bars("Failed jobs per day", "jobs", &per_day));
    b.push_str("<h2>Carbon</h2>");
    b.push_str(&carbon_table(d).html());
    let co2: Vec<(String, f64)> = d
        .carbon
        .runners
        .iter()
        .map(|x| (x.name.clone(), x.co2e_g))
        .collect();
    b.push_str(&svg_bars("CO₂e per runner", "g", &co2));
    if !d.carbon.cleaner_alternatives.is_empty() {
        b.push_str(
            "<p>Jobs that could have run on a cleaner runner that was eligible and idle:</p><ul>",
        );
        for a in &d.carbon.cleaner_alternatives {
            let _ = write!(
                b,
                "<li><code>{}</code> (job {}): ran on <code>{}</code>, <code>{}</code> was free — {} less</li>",
                esc(&a.name),
                a.job_id,
                esc(&a.ran_on),
                esc(&a.could_run_on),
                grams(a.saved_g)
            );
        }
        b.push_str("</ul>");
    }
    if let Some(c) = &d.cost {
        b.push_str("<h2>Cost</h2>");
        let _ = write!(b, "<p>{}</p>", esc(&cost_sentence(c).replace('`', "")));
        b.push_str(&cost_table(c).html());
        b.push_str(&class_cost_table(c).html());
        if !c.unknown.is_empty() {
            let _ = write!(
                b,
                "<p>Cost unknown (no <code>runneriq.cost_per_hour</code> in the fleet file, not counted as 0): {}.</p>",
                esc(&c.unknown.join(", "))
            );
        }
        let _ = write!(b, "<p>{}</p>", esc(COST_DEFINITIONS));
    }
    if let Some(ri) = &r.routing_impact {
        b.push_str("<h2>What priority routing would have changed this week</h2>");
        let _ = write!(
            b,
            "<p>{}</p>",
            esc(&impact_intro(ri)).replace("`runneriq simulate`", "<code>runneriq simulate</code>")
        );
        match &ri.indistinct {
            Some(sentence) => b.push_str(&sentence_html(sentence)),
            None => b.push_str(&impact_table(ri).html()),
        }
        if let Some(c) = &ri.co2e {
            b.push_str(&sentence_html(c));
        }
    }
    if let Some(t) = &r.tag_bridge {
        let _ = write!(
            b,
            "<h2>Tag bridge</h2><p>{} routing recommendations, {} tag changes ({} applied, {} failed) this week.</p>",
            t.recommendations, t.tag_changes, t.applied, t.failed
        );
    }
    for n in &r.notes {
        let _ = write!(b, "<p><small>Note: {}</small></p>", esc(n));
    }
    let _ = write!(b, "<p><small>RunnerIQ v{}</small></p>", esc(&r.version));
    page(&format!("RunnerIQ weekly report — {}", r.week), &b)
}

fn sentence_html(s: &crate::fleet::simulate::Sentence) -> String {
    format!("<p><strong>{}</strong> {}</p>", esc(s.lead), esc(&s.text))
}

/// `runneriq simulate --format html`: the same content as the Markdown, as
/// one self-contained page (tables, an inline SVG chart when the policies'
/// waits differ beyond the replay's error).
pub fn simulation_html(s: &crate::fleet::simulate::Simulation) -> String {
    use crate::fleet::simulate::{self as sim, Policy};
    let mut b = format!(
        "<h1>RunnerIQ simulate: {} jobs replayed under fifo, priority and carbon</h1>",
        s.jobs
    );
    b.push_str(&match &s.fifo_error {
        Some(e) => format!(
            "<p><strong>How far to trust it:</strong> the fifo replay differs from what really happened by a median of {} and a p95 of {} of queue wait per job ({} jobs compared).</p>",
            secs(e.median_abs_s),
            secs(e.p95_abs_s),
            e.jobs
        ),
        None => "<p><strong>How far to trust it:</strong> unknown — the input has no real queue times to compare with.</p>".into(),
    });
    let waits = Table {
        head: &[
            "Policy", "Class", "Jobs", "Wait p50", "Wait p95", "Wait max",
        ],
        rows: s
            .policies
            .iter()
            .flat_map(|(p, r)| {
                URGENCY_ORDER.iter().filter_map(move |c| {
                    r.queue_wait.get(*c).map(|w| {
                        vec![
                            Cell::Text(p.as_str().into()),
                            Cell::Text((*c).into()),
                            Cell::Text(w.jobs.to_string()),
                            Cell::Text(secs(w.p50)),
                            Cell::Text(secs(w.p95)),
                            Cell::Text(secs(w.max)),
                        ]
                    })
                })
            })
            .collect(),
    };
    let indistinct = sim::indistinct_sentence(s);
    match &indistinct {
        Some(sentence) => {
            b.push_str(&sentence_html(sentence));
            let _ = write!(
                b,
                "<details><summary>Replayed queue waits per policy and class</summary>{}</details>",
                waits.html()
            );
        }
        None => b.push_str(&waits.html()),
    }
    let energy = Table {
        head: &[
            "Policy",
            "Makespan",
            "Energy",
            "CO₂e",
            "Jobs without energy data",
        ],
        rows: s
            .policies
            .iter()
            .map(|(p, r)| {
                vec![
                    Cell::Text(p.as_str().into()),
                    Cell::Text(secs(r.makespan_s)),
                    Cell::Text(format!("{:.2} kWh", r.energy_kwh)),
                    Cell::Text(grams(r.co2e_g)),
                    Cell::Text(r.jobs_without_energy.to_string()),
                ]
            })
            .collect(),
    };
    b.push_str(&energy.html());
    if let Some(c) = sim::co2e_sentence(s) {
        b.push_str(&sentence_html(&c));
    }
    if s.policies.values().any(|r| r.busy_cost.is_some()) {
        let cost = Table {
            head: &["Policy", "Busy cost", "Jobs on runners without a cost"],
            rows: s
                .policies
                .iter()
                .map(|(p, r)| {
                    vec![
                        Cell::Text(p.as_str().into()),
                        Cell::Text(money(r.busy_cost.unwrap_or(0.0))),
                        Cell::Text(r.jobs_without_cost.unwrap_or(0).to_string()),
                    ]
                })
                .collect(),
        };
        b.push_str(&cost.html());
        b.push_str("<p>Busy cost: the replayed busy time at each runner's cost per hour ÷ its slots, in the fleet file's unit (no currency assumed).</p>");
    }
    if let (None, Some(fifo)) = (&indistinct, s.policies.get(&Policy::Fifo)) {
        b.push_str("<p><strong>Against fifo</strong> (queue wait p95):</p><ul>");
        for (p, r) in s.policies.iter().filter(|(p, _)| **p != Policy::Fifo) {
            let parts: Vec<String> = URGENCY_ORDER
                .iter()
                .filter_map(|c| {
                    let (a, f) = (r.queue_wait.get(*c)?, fifo.queue_wait.get(*c)?);
                    let d = a.p95 - f.p95;
                    Some(format!(
                        "{c} {}{}",
                        if d < 0.0 { "−" } else { "+" },
                        secs(d.abs())
                    ))
                })
                .collect();
            let _ = write!(b, "<li>{}: {}</li>", p.as_str(), esc(&parts.join(", ")));
        }
        b.push_str("</ul>");
        let mut bars = Vec::new();
        for c in URGENCY_ORDER {
            for (p, r) in &s.policies {
                if let Some(w) = r.queue_wait.get(c) {
                    bars.push((format!("{c} {}", p.as_str()), w.p95));
                }
            }
        }
        b.push_str(&svg_bars("Queue wait p95 by class and policy", "s", &bars));
    }
    if !s.unreplayable.is_empty() {
        let parts: Vec<String> = s
            .unreplayable
            .iter()
            .map(|(why, n)| format!("{n} ({})", esc(why)))
            .collect();
        let _ = write!(
            b,
            "<p><strong>Not replayed:</strong> {}.</p>",
            parts.join(", ")
        );
    }
    b.push_str("<p><strong>The model leaves out:</strong></p><ul>");
    for l in &s.limitations {
        let _ = write!(b, "<li>{}</li>", esc(l));
    }
    b.push_str("</ul>");
    page("RunnerIQ simulate", &b)
}

/// One line of "What to change": a finding, or one kind of finding about
/// several runners merged ("Underutilized, 5 runners: …").
struct FindingLine {
    kind: &'static str,
    /// Each runner with its figure (the figure only when merged).
    runners: Vec<(String, String)>,
    /// What the figures are, when merged; else the finding's message.
    detail: String,
    advice: String,
}

impl FindingLine {
    fn md(&self) -> String {
        match self.runners.as_slice() {
            [(name, _)] => format!(
                "**{}** {}: {} — {}",
                self.kind,
                code_span(name),
                inline(&self.detail),
                inline(&self.advice)
            ),
            many => {
                let list: Vec<String> = many
                    .iter()
                    .map(|(n, fig)| format!("{} {}", code_span(n), inline(fig)))
                    .collect();
                format!(
                    "**{}**, {} runners ({}): {} — {}",
                    self.kind,
                    many.len(),
                    inline(&self.detail),
                    list.join(", "),
                    inline(&self.advice)
                )
            }
        }
    }

    fn html(&self) -> String {
        match self.runners.as_slice() {
            [(name, _)] => format!(
                "<strong>{}</strong> <code>{}</code>: {} — {}",
                esc(self.kind),
                esc(name),
                esc(&self.detail),
                esc(&self.advice)
            ),
            many => {
                let list: Vec<String> = many
                    .iter()
                    .map(|(n, fig)| format!("<code>{}</code> {}", esc(n), esc(fig)))
                    .collect();
                format!(
                    "<strong>{}</strong>, {} runners ({}): {} — {}",
                    esc(self.kind),
                    many.len(),
                    esc(&self.detail),
                    list.join(", "),
                    esc(&self.advice)
                )
            }
        }
    }
}

/// "What to change", most impact first (the detectors' order), the same
/// finding about several runners merged into one line.
fn finding_lines(d: &ReportData) -> Vec<FindingLine> {
    use super::metrics::FindingKind::*;
    let mut lines: Vec<FindingLine> = Vec::new();
    let mut i = 0;
    while i < d.findings.len() {
        let kind = d.findings[i].kind;
        let group: Vec<&super::metrics::Finding> = d.findings[i..]
            .iter()
            .take_while(|f| f.kind == kind)
            .collect();
        i += group.len();
        if let [f] = group.as_slice() {
            lines.push(FindingLine {
                kind: kind_words(f),
                runners: vec![(f.name.clone(), String::new())],
                detail: f.message.clone(),
                advice: f.recommendation.clone(),
            });
            continue;
        }
        let figure = |f: &super::metrics::Finding| match f.kind {
            SlowRunner => format!("{:.1}×", f.value),
            Underutilized => share(f.value),
            InfraFailures => {
                let jobs = d
                    .runners
                    .iter()
                    .find(|r| r.id == f.runner)
                    .map_or(0, |r| r.failures_infra);
                format!(
                    "{} ({jobs} job{})",
                    share(f.value),
                    if jobs == 1 { "" } else { "s" }
                )
            }
            // A utilization (0..1) or a queue wait (seconds).
            Bottleneck if f.threshold <= 1.0 => format!("{} busy", share(f.value)),
            Bottleneck => format!("{} wait p95", secs(f.value)),
        };
        let (detail, advice) = match kind {
            SlowRunner => (
                "time for the same jobs against the fleet's",
                "check their executors' CPU and cache; move tags away until fixed",
            ),
            Underutilized => (
                "busy share of their capacity",
                "give them more projects' jobs (share their tags), lower their concurrent slots, or retire some",
            ),
            InfraFailures => (
                "jobs that failed for infrastructure reasons",
                "check the runner hosts (disk, network, container daemon) and their logs; pause a runner whose rate keeps rising",
            ),
            Bottleneck => (
                "busy share or queue wait",
                "add job slots (concurrent) or more runners with the same tags",
            ),
        };
        lines.push(FindingLine {
            kind: kind_words(group[0]),
            runners: group.iter().map(|f| (f.name.clone(), figure(f))).collect(),
            detail: detail.into(),
            advice: advice.into(),
        });
    }
    lines
}

/// 0..1 as a percentage, one decimal under 10 %.
fn share(x: f64) -> String {
    let p = x * 100.0;
    if p != 0.0 && p.abs() < 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// A finding's kind in words: "Slow runner", "Underutilized", ...
fn kind_words(f: &super::metrics::Finding) -> &'static str {
    use super::metrics::FindingKind::*;
    match f.kind {
        SlowRunner => "Slow runner",
        Underutilized => "Underutilized",
        InfraFailures => "Infrastructure failures",
        Bottleneck => "Bottleneck",
    }
}

/// What was read, aggregated.
pub struct Gathered {
    pub project: String,
    pub span: Span,
    pub data: ReportData,
    pub source: String,
    pub requests: u64,
    /// What the reader should know (live carbon fallbacks, ...).
    pub notes: Vec<String>,
    /// Cleanest hour of the next 24 h per zone (Electricity Maps).
    pub forecast: Vec<crate::fleet::carbon_live::Cleanest>,
    /// The week replayed under fifo / priority / carbon (with a fleet file).
    pub impact: Option<crate::fleet::simulate::Simulation>,
}

/// The report of `g`, with last week's figures when known.
pub fn report(
    g: &Gathered,
    demo: bool,
    previous: Option<Summary>,
    previous_url: Option<String>,
) -> Report {
    let week = iso_week(g.span.to - 1);
    Report {
        project: g.project.clone(),
        summary: Summary::of(&week, &g.data),
        week,
        from: day_time(g.span.from),
        to: day_time(g.span.to),
        demo,
        source: g.source.clone(),
        previous,
        previous_url,
        notes: g.notes.clone(),
        forecast: g.forecast.clone(),
        tag_bridge: None,
        routing_impact: g.impact.as_ref().map(RoutingImpact::of),
        data: g.data.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        charts: ChartMode::Xychart,
    }
}

/// The report in `f`.
pub fn render(r: &Report, f: ReportFormat) -> anyhow::Result<String> {
    Ok(match f {
        ReportFormat::Md => markdown(r),
        ReportFormat::Json => serde_json::to_string_pretty(r)? + "\n",
        ReportFormat::Html => html(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_labels_and_deltas() {
        assert_eq!(iso_week(1_764_028_799), "2025-W48"); // 2025-11-24T23:59:59Z
        // 2025-12-31T23:59:59Z, a Wednesday: ISO week 1 of 2026 (its Thursday is in 2026).
        assert_eq!(iso_week(1_767_225_599), "2026-W01");
        assert_eq!(delta(12.0, 10.0, |x| format!("{x:.0}")), "+2 (+20 %)");
        assert_eq!(delta(0.0, 0.0, |x| format!("{x:.0}")), "=");
    }

    #[test]
    fn html_keeps_units_with_their_numbers() {
        assert_eq!(
            esc("a median of 27 s, 13 % of <jobs>, 4.1 min, 3 slots, 5 sheep"),
            "a median of 27\u{a0}s, 13\u{a0}% of &lt;jobs&gt;, 4.1\u{a0}min, 3\u{a0}slots, 5 sheep"
        );
    }

    #[test]
    fn state_round_trips_through_a_body() {
        let s = Summary {
            week: "2026-W48".into(),
            jobs: 10,
            ..Summary::default()
        };
        let body = format!(
            "x\n{STATE_PREFIX}{} -->\n",
            serde_json::to_string(&s).unwrap()
        );
        assert_eq!(Summary::from_body(&body), Some(s));
        assert_eq!(Summary::from_body("nothing"), None);
    }
}
