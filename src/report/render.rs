//! The weekly report as Markdown (with Mermaid charts GitLab draws itself)
//! and as one self-contained HTML page (inline SVG, no script, no external
//! asset). Both render the same [`Report`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::metrics::ReportData;
use crate::publish::sanitize::{code_span, inline, link};

/// First line of a report issue: found again by it.
pub const MARKER_PREFIX: &str = "<!-- runneriq:report ";
/// The hidden state block a later week compares with.
pub const STATE_PREFIX: &str = "<!-- runneriq:report-state ";
/// Mermaid shows a "Display" button instead of a chart past 2,000 characters.
const MAX_CHART: usize = 1900;
/// Bars per chart.
const MAX_BARS: usize = 12;

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
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

fn grams(g: f64) -> String {
    if g >= 1000.0 {
        format!("{:.2} kg", g / 1000.0)
    } else {
        format!("{g:.0} g")
    }
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
        let mut o = String::from("<table><tr>");
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
        o.push_str("</table>");
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
    for (class, v) in &s.wait_p95_s {
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

/// The routing replay in brief: p95 queue wait by class and CO₂e per policy.
fn impact_table(ri: &RoutingImpact) -> Table {
    Table {
        head: &["Policy", "Queue wait p95 by class", "CO₂e"],
        rows: ["fifo", "priority", "carbon"]
            .iter()
            .filter_map(|p| ri.wait_p95_s.get(*p).map(|w| (*p, w)))
            .map(|(policy, waits)| {
                let classes: Vec<String> = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
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

/// A label Mermaid can't misread: letters, digits and `_-./: ` only.
fn mermaid_label(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "_-./: ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    format!("\"{clean}\"")
}

/// A bar chart block (Mermaid `xychart-beta`), kept under GitLab's size limit.
fn bar_chart(title: &str, y: &str, bars: &[(String, f64)]) -> String {
    let bars = &bars[..bars.len().min(MAX_BARS)];
    if bars.is_empty() {
        return String::new();
    }
    let labels: Vec<String> = bars.iter().map(|(l, _)| mermaid_label(l)).collect();
    let values: Vec<String> = bars.iter().map(|(_, v)| format!("{v:.1}")).collect();
    let chart = format!(
        "```mermaid\nxychart-beta\n    title {}\n    x-axis [{}]\n    y-axis {}\n    bar [{}]\n```\n",
        mermaid_label(title),
        labels.join(", "),
        mermaid_label(y),
        values.join(", ")
    );
    if chart.len() > MAX_CHART {
        return String::new();
    }
    chart
}

/// A pie chart block.
fn pie_chart(title: &str, parts: &[(String, f64)]) -> String {
    let parts: Vec<&(String, f64)> = parts
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .take(MAX_BARS)
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    let mut chart = format!(
        "```mermaid\npie title {}\n",
        mermaid_label(title).trim_matches('"')
    );
    for (l, v) in parts {
        let _ = writeln!(chart, "    {} : {v:.1}", mermaid_label(l));
    }
    chart.push_str("```\n");
    if chart.len() > MAX_CHART {
        return String::new();
    }
    chart
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
    for f in &d.findings {
        let _ = writeln!(
            o,
            "- **{}** {}: {} — {}",
            f.kind_words(),
            code_span(&f.name),
            inline(&f.message),
            inline(&f.recommendation)
        );
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
    }
    let busy: Vec<(String, f64)> = d
        .runners
        .iter()
        .map(|m| (m.name.clone(), m.busy_s / 3600.0))
        .collect();
    o.push_str(&bar_chart("Busy time per runner", "hours", &busy));
    o.push('\n');

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
        o.push_str(&bar_chart("Queue wait p95 by class", "seconds", &bars));
        o.push('\n');
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
        o.push_str("| Job | Times it failed, then passed on the same commit | Last seen |\n|---|---|---|\n");
        for f in &d.flaky {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                code_span(&f.name),
                f.occurrences,
                link(&code_span(&f.last_ref), f.last_web_url.as_deref())
            );
        }
        o.push('\n');
    }

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
        o.push_str(&bar_chart("Failed jobs per day", "jobs", &totals));
        o.push('\n');
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
        o.push_str(&pie_chart("CO2e per runner in grams", &parts));
        o.push('\n');
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

    if let Some(ri) = &r.routing_impact {
        o.push_str("### What priority routing would have changed this week\n\n");
        let _ = writeln!(
            o,
            "The week's {} jobs replayed on the fleet's slots (`runneriq simulate`){}.\n",
            ri.jobs,
            ri.fifo_error_s
                .map(|(m, p)| format!(
                    "; the fifo replay differs from what happened by a median of {m:.0} s and a p95 of {p:.0} s per job, so read smaller differences with care"
                ))
                .unwrap_or_default()
        );
        o.push_str(&impact_table(ri).md());
        o.push('\n');
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart as inline SVG.
fn svg_bars(title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    let bars = &bars[..bars.len().min(20)];
    if bars.is_empty() {
        return String::new();
    }
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    let h = 24 * bars.len() + 30;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"{h}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 10 + i * 24;
        let w = (v / max * 380.0).max(1.0);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><rect x=\"170\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"#6b4fbb\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{v:.1} {}</text>",
            y + 14,
            esc(&label.chars().take(26).collect::<String>()),
            175.0 + w,
            y + 14,
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
    let _ = write!(
        b,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>RunnerIQ weekly report — {}</title><style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}th{{background:#f3f0fa}}figure{{margin:1em 0}}figcaption{{font-weight:600;margin-bottom:.3em}}.demo{{background:#fff3cd;padding:.5em 1em}}</style></head><body>",
        esc(&r.week)
    );
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
    b.push_str("<table><tr>");
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
    b.push_str("</table>");
    b.push_str("<h2>What to change</h2><ul>");
    if d.findings.is_empty() {
        b.push_str("<li>No detector fired this week.</li>");
    }
    for f in &d.findings {
        let _ = write!(
            b,
            "<li><strong>{}</strong> <code>{}</code>: {} — {}</li>",
            esc(f.kind_words()),
            esc(&f.name),
            esc(&f.message),
            esc(&f.recommendation)
        );
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
        "<h2>Flaky jobs</h2><table><tr><th>Job</th><th>Failed, then passed</th><th>Ref</th></tr>",
    );
    for f in &d.flaky {
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&f.name),
            f.occurrences,
            esc(&f.last_ref)
        );
    }
    b.push_str("</table><h2>Failures per day</h2>");
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
    if let Some(ri) = &r.routing_impact {
        b.push_str("<h2>What priority routing would have changed this week</h2>");
        if let Some((m, p)) = ri.fifo_error_s {
            let _ = write!(
                b,
                "<p>The fifo replay differs from what happened by a median of {m:.0} s and a p95 of {p:.0} s per job.</p>"
            );
        }
        b.push_str(&impact_table(ri).html());
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
    let _ = writeln!(
        b,
        "<p><small>RunnerIQ v{}</small></p></body></html>",
        esc(&r.version)
    );
    b
}

impl super::metrics::Finding {
    /// "slow runner", "underutilized", ...
    pub fn kind_words(&self) -> &'static str {
        use super::metrics::FindingKind::*;
        match self.kind {
            SlowRunner => "Slow runner",
            Underutilized => "Underutilized",
            InfraFailures => "Infrastructure failures",
            Bottleneck => "Bottleneck",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_labels_and_deltas() {
        assert_eq!(iso_week(1_764_028_799), "2025-W48"); // 2025-11-24T23:59:59Z
        // 2025-12-31T23:59:59Z, a Wednesday: ISO week 1 of 2026 (its Thursday is in 2026).
        assert_eq!(iso_week(1_767_225_599), "2026-W01");
        assert_eq!(mermaid_label("a\"b]c{d}"), "\"a_b_c_d_\"");
        assert_eq!(delta(12.0, 10.0, |x| format!("{x:.0}")), "+2 (+20 %)");
        assert_eq!(delta(0.0, 0.0, |x| format!("{x:.0}")), "=");
        let chart = bar_chart("t", "s", &[("x".into(), 1.0)]);
        assert!(chart.starts_with("```mermaid\nxychart-beta\n"));
        assert!(bar_chart("t", "s", &[]).is_empty());
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
