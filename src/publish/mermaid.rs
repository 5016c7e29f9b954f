//! Mermaid charts as GitLab draws them: which kinds an instance can draw
//! (its bundled Mermaid, from its version), and the chart blocks themselves.
//!
//! GitLab draws a ```` ```mermaid ```` block with the Mermaid it bundles, in
//! a sandboxed iframe, with `theme: 'neutral'` and `securityLevel: 'strict'`
//! (`app/assets/javascripts/lib/mermaid_sandbox.js`). What that means here:
//!
//! - `xychart-beta` exists from Mermaid 10.6: on an older GitLab each such
//!   block is a "Syntax error" box. `pie` works on every GitLab.
//! - xychart starts its y-axis at the smallest value unless told: every bar
//!   chart declares `y-axis "…" 0 --> max`, or the smallest bar looks empty.
//! - The neutral theme fills bars `#EEE` and pie slices in greys at 70 %
//!   opacity: every chart carries an `%%{init}%%` directive with a palette
//!   (theme variables are not among the keys `securityLevel: 'strict'`
//!   protects, so GitLab honours them).
//! - xychart draws no legend: one series per chart, and categories (urgency
//!   classes, runners, days) as bars, never joined by lines.
//! - GitLab shows a "Display" button instead of a chart over 2,000
//!   characters, and for every chart after the page's drawn charts add up to
//!   more than 2,000 (`render_sandboxed_mermaid.js`): a chart here stays
//!   small, and the report's charts together too.
//!
//! `tests/render/mermaid-check.sh` checks all of this with the real Mermaid
//! versions GitLab ships, in Chromium.

use std::fmt::Write as _;

/// A block over this many characters is not drawn ("Display" button).
pub const GITLAB_MAX_CHARS: usize = 2000;
/// Bars per chart.
const MAX_BARS: usize = 12;
/// The plot's width in a GitLab note or issue on a laptop, and a category
/// label's width per character (Mermaid's default 14 px font), roughly.
const PLOT_WIDTH_PX: f64 = 560.0;
const LABEL_CHAR_PX: f64 = 7.0;
/// Pie slices under this share are merged into one when there are several:
/// side by side, their percentage labels overlap.
const SMALL_SLICE: f64 = 0.05;

/// The bars' colour: GitLab blue, readable on white and on the dark theme.
const BAR_COLOUR: &str = "#1f75cb";
/// Pie slices: distinct hues dark enough for white percentage labels.
const PIE_COLOURS: [&str; 8] = [
    "#1f75cb", "#c25e00", "#108548", "#a4308b", "#6b4fbb", "#8a6400", "#0b7d8d", "#5e6a7d",
];

/// Which charts a Markdown output draws (`--charts`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartMode {
    /// From the GitLab version: `xychart` on GitLab 16.9 and later, else `pie`.
    Auto,
    /// Bar charts (`xychart-beta`, Mermaid 10.6+) and pie charts.
    Xychart,
    /// Pie charts only (every GitLab draws them); the rest as tables.
    Pie,
    /// No chart: the tables only.
    Table,
}

impl ChartMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChartMode::Auto => "auto",
            ChartMode::Xychart => "xychart",
            ChartMode::Pie => "pie",
            ChartMode::Table => "table",
        }
    }

    /// Bar charts are drawn.
    pub fn bars(self) -> bool {
        matches!(self, ChartMode::Xychart | ChartMode::Auto)
    }

    /// Pie charts are drawn.
    pub fn pies(self) -> bool {
        !matches!(self, ChartMode::Table)
    }
}

/// GitLab releases and the Mermaid they bundle, as far as GitLab's own
/// changes say (sources in README, "Charts and GitLab versions"): from
/// `(major, minor)` on, until the next row.
pub const GITLAB_MERMAID: &[((u32, u32), &str)] = &[
    ((13, 0), "8.4.8"),
    ((13, 12), "8.9.2"),
    ((15, 0), "9.x (9.1.3 in 15.8)"),
    ((16, 0), "9.x or 10.x before 10.7"),
    ((16, 9), "10.7.0"),
    ((19, 0), "11.x"),
    ((19, 3), "11.13.0"),
    ((19, 4), "11.16.1"),
];

/// The first GitLab release known to bundle a Mermaid that draws
/// `xychart-beta` (Mermaid 10.7.0, gitlab-org/gitlab!143609, February 2024).
pub const XYCHART_SINCE: (u32, u32) = (16, 9);

/// `(major, minor)` of a GitLab version string (`19.4.0-ee`, `16.9.1`,
/// `19.5.0-pre`).
pub fn parse_gitlab_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The Mermaid a GitLab version bundles, in words.
pub fn mermaid_of(version: (u32, u32)) -> &'static str {
    GITLAB_MERMAID
        .iter()
        .rev()
        .find(|(since, _)| version >= *since)
        .map_or("8.x or older", |(_, m)| m)
}

/// The charts a GitLab of this version draws.
pub fn mode_for(version: (u32, u32)) -> ChartMode {
    if version >= XYCHART_SINCE {
        ChartMode::Xychart
    } else {
        ChartMode::Pie
    }
}

/// A number as a chart shows it: whole numbers without decimals.
pub fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The smallest "round" number at or above `max` (1, 1.5, 2, 2.5, 3, 4, 5,
/// 6, 8 times a power of ten): the top of a y-axis that starts at 0.
pub fn axis_top(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        let top = m * mag;
        if top >= max - 1e-9 {
            return top;
        }
    }
    10.0 * mag
}

/// A label Mermaid can't misread: letters, digits and `_-./: ` only, in
/// double quotes, at most 24 characters.
pub fn label(s: &str) -> String {
    format!("\"{}\"", clean(s, 24))
}

/// A chart title: the same characters as a label, at most 60.
fn title(s: &str) -> String {
    clean(s, 60)
}

fn clean(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || "_-./: ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// A bar chart (`xychart-beta`), y-axis from 0, one series, GitLab blue,
/// lying down when its labels would not fit under the bars; empty when there
/// is nothing to draw or it would pass GitLab's limit.
pub fn bar_chart(title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    let bars = &bars[..bars.len().min(MAX_BARS)];
    if bars.is_empty() {
        return String::new();
    }
    let labels: Vec<String> = bars.iter().map(|(l, _)| label(l)).collect();
    let values: Vec<String> = bars.iter().map(|(_, v)| number(v.max(0.0))).collect();
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    // xychart neither rotates nor wraps category labels: when they would
    // run into each other under the bars, the bars lie down and the labels
    // stack on the left.
    let widest = bars
        .iter()
        .map(|(l, _)| l.chars().count().min(24))
        .max()
        .unwrap_or(0);
    let horizontal = widest as f64 * LABEL_CHAR_PX > PLOT_WIDTH_PX / bars.len() as f64;
    let chart = format!(
        "```mermaid\n%%{{init: {{'themeVariables': {{'xyChart': {{'plotColorPalette': '{BAR_COLOUR}'}}}}}}}}%%\nxychart-beta{}\n    title \"{}\"\n    x-axis [{}]\n    y-axis {} 0 --> {}\n    bar [{}]\n```\n",
        if horizontal { " horizontal" } else { "" },
        self::title(title),
        labels.join(", "),
        label(unit),
        number(axis_top(max)),
        values.join(", ")
    );
    if chart.chars().count() > GITLAB_MAX_CHARS {
        return String::new();
    }
    chart
}

/// A pie chart: slices largest first, in distinct colours at full opacity,
/// the values in the legend; slices under 5 % merged into one ("3 other
/// runners") when there are several, so their labels can't overlap. Empty
/// when there is nothing to draw.
pub fn pie_chart(title: &str, parts: &[(String, f64)], noun: &str) -> String {
    let mut parts: Vec<(String, f64)> = parts
        .iter()
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .cloned()
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f64 = parts.iter().map(|p| p.1).sum();
    let small = parts.iter().filter(|p| p.1 / total < SMALL_SLICE).count();
    let keep = if small >= 2 {
        parts.len() - small
    } else {
        parts.len()
    }
    .min(PIE_COLOURS.len() - 1);
    if keep < parts.len() {
        let rest: f64 = parts[keep..].iter().map(|p| p.1).sum();
        let n = parts.len() - keep;
        parts.truncate(keep);
        parts.push((format!("{n} other {noun}"), rest));
    }
    let colours: Vec<String> = PIE_COLOURS
        .iter()
        .take(parts.len())
        .enumerate()
        .map(|(i, c)| format!("'pie{}': '{c}'", i + 1))
        .collect();
    let mut chart = format!(
        "```mermaid\n%%{{init: {{'themeVariables': {{{}, 'pieOpacity': '1', 'pieSectionTextColor': '#ffffff', 'pieStrokeColor': '#ffffff'}}}}}}%%\npie showData\n    title {}\n",
        colours.join(", "),
        self::title(title)
    );
    for (l, v) in &parts {
        let _ = writeln!(chart, "    {} : {}", label(l), number(v.round()));
    }
    chart.push_str("```\n");
    if chart.chars().count() > GITLAB_MAX_CHARS {
        return String::new();
    }
    chart
}

/// The charts a Markdown output draws: `--charts` when it is not `auto`,
/// else what the target GitLab's bundled Mermaid draws. Its version comes
/// from `CI_SERVER_VERSION` in a pipeline of that GitLab (no request), else
/// from `GET /version` (one request). A version that can't be read means
/// pie charts, which every GitLab draws (said on stderr, never an error);
/// with no GitLab to ask (a snapshot or the demo, offline), bar charts, as
/// current GitLab draws them.
pub fn resolve_charts(asked: ChartMode, gitlab_url: Option<&str>) -> ChartMode {
    if asked != ChartMode::Auto {
        return asked;
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    // Only the pipeline's own GitLab is described by CI_SERVER_VERSION.
    if gitlab_url.is_none() {
        if let Some(v) = env("CI_SERVER_VERSION") {
            return charts_for_version(&v, "CI_SERVER_VERSION");
        }
    }
    if gitlab_url.is_none() && crate::gitlab::url_from_env(env).is_none() {
        return ChartMode::Xychart;
    }
    let version = crate::gitlab::api_client(gitlab_url.map(str::to_string)).and_then(|c| {
        c.get_json::<serde_json::Value>("/version", &[])
            .map_err(|e| anyhow::anyhow!("{e}"))
    });
    match version {
        Ok(v) => match v["version"].as_str() {
            Some(v) => charts_for_version(v, "GET /version"),
            None => {
                eprintln!(
                    "runneriq: charts: GET /version gave no version; drawing pie charts and tables, which every GitLab draws (--charts xychart for bar charts)"
                );
                ChartMode::Pie
            }
        },
        Err(e) => {
            eprintln!(
                "runneriq: charts: could not read the GitLab version ({e}); drawing pie charts and tables, which every GitLab draws (--charts xychart for bar charts)"
            );
            ChartMode::Pie
        }
    }
}

fn charts_for_version(v: &str, from: &str) -> ChartMode {
    let Some(version) = parse_gitlab_version(v) else {
        eprintln!(
            "runneriq: charts: GitLab version {v:?} ({from}) not understood; drawing pie charts and tables, which every GitLab draws (--charts xychart for bar charts)"
        );
        return ChartMode::Pie;
    };
    let mode = mode_for(version);
    if mode == ChartMode::Pie {
        eprintln!(
            "runneriq: charts: GitLab {v} bundles Mermaid {}; bar charts (xychart-beta) need GitLab {}.{} or later: pie charts and tables instead (--charts to choose)",
            mermaid_of(version),
            XYCHART_SINCE.0,
            XYCHART_SINCE.1
        );
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decide_the_chart_kinds() {
        assert_eq!(parse_gitlab_version("19.4.0-ee"), Some((19, 4)));
        assert_eq!(parse_gitlab_version("16.9.1"), Some((16, 9)));
        assert_eq!(parse_gitlab_version("19.5.0-pre"), Some((19, 5)));
        assert_eq!(parse_gitlab_version("garbage"), None);
        assert_eq!(mode_for((16, 8)), ChartMode::Pie);
        assert_eq!(mode_for((16, 9)), ChartMode::Xychart);
        assert_eq!(mode_for((15, 11)), ChartMode::Pie);
        assert_eq!(mode_for((19, 4)), ChartMode::Xychart);
        assert_eq!(mermaid_of((15, 8)), "9.x (9.1.3 in 15.8)");
        assert_eq!(mermaid_of((16, 8)), "9.x or 10.x before 10.7");
        assert_eq!(mermaid_of((18, 7)), "10.7.0");
        assert_eq!(mermaid_of((19, 5)), "11.16.1");
        assert_eq!(mermaid_of((12, 0)), "8.x or older");
    }

    #[test]
    fn bars_start_at_zero_and_are_coloured() {
        assert_eq!(axis_top(245.2), 250.0);
        assert_eq!(axis_top(43.2), 50.0);
        assert_eq!(axis_top(15.0), 15.0);
        assert_eq!(axis_top(0.8), 0.8);
        assert_eq!(axis_top(0.0), 1.0);
        assert_eq!(number(8.0), "8");
        assert_eq!(number(36.74), "36.7");
        let c = bar_chart(
            "Queue wait p95 by class",
            "seconds",
            &[("HIGH".into(), 36.7), ("LOW".into(), 245.2)],
        );
        assert!(c.contains("\n    y-axis \"seconds\" 0 --> 250\n"), "{c}");
        assert!(c.contains("'plotColorPalette': '#1f75cb'"), "{c}");
        assert!(c.contains("    bar [36.7, 245.2]\n"), "{c}");
        assert!(!c.contains("line ["));
        assert!(c.contains("xychart-beta\n"), "short labels stand: {c}");
        assert!(bar_chart("t", "s", &[]).is_empty());
        // Nine labels of 15 characters can't stand side by side.
        let many: Vec<(String, f64)> = (0..9)
            .map(|i| (format!("MEDIUM priority{i}"), 1.0))
            .collect();
        assert!(bar_chart("t", "s", &many).contains("xychart-beta horizontal\n"));
        assert_eq!(label("a\"b]c{d}"), "\"a_b_c_d_\"");
    }

    #[test]
    fn small_slices_are_merged_and_slices_coloured() {
        let parts: Vec<(String, f64)> = [
            ("fr", 343.7),
            ("de", 5766.0),
            ("gcp", 69.8),
            ("pl", 7051.5),
            ("gpu", 181.4),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
        let c = pie_chart("CO₂e per runner in grams", &parts, "runners");
        assert!(c.contains("title CO₂e per runner in grams\n"), "{c}");
        // Largest first; fr (2.6 %), gpu (1.4 %) and gcp (0.5 %) are one slice.
        let slices: Vec<&str> = c.lines().filter(|l| l.contains(" : ")).collect();
        assert_eq!(
            slices,
            [
                "    \"pl\" : 7052",
                "    \"de\" : 5766",
                "    \"3 other runners\" : 595"
            ]
        );
        assert!(c.contains("'pie1': '#1f75cb', 'pie2': '#c25e00', 'pie3': '#108548'"));
        assert!(c.contains("'pieOpacity': '1'"));
        // One small slice alone stays itself.
        let c = pie_chart("t", &[("a".into(), 98.0), ("b".into(), 2.0)], "runners");
        assert!(c.contains("\"b\" : 2"), "{c}");
        assert!(pie_chart("t", &[("a".into(), 0.0)], "runners").is_empty());
    }
}
