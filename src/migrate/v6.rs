//! RunnerIQ 6.x's `runneriq.yaml` → our `.runneriq.yml`.
//!
//! The 6.x format is what RunnerIQ 6.1.0's documentation shows (its README:
//! "Priority Rules (Module 2)", "Decision Engine (Module 3)", "Tag-Aware
//! Routing"): everything under one top-level `runneriq:` key,
//!
//! ```yaml
//! runneriq:
//!   analyzer:
//!     priority: { branch_weights, user_role_weights, job_type_weights,
//!                 manual_trigger_bonus, non_production_cap }
//!   assigner:
//!     scoring: { weights: { utilization, tag_match, capacity, history } }
//!     decision_engine: { mode, margin_threshold, daily_token_budget }
//!     trust_model: { mode, supervised_threshold }
//! ```
//!
//! Each documented key is carried over where `.runneriq.yml` has a real
//! equivalent, with a note where the meaning differs; a setting that lives
//! in a flag or a variable here, or has no equivalent, is reported with the
//! reason; any other key is reported as unknown, never silently dropped.
//! Values are checked as our loader checks them: a bad one is one error
//! naming the file, the line and the key path (exit 2), and nothing is
//! written. Pure: text in, text and notes out.

use std::fmt::Write as _;

use serde::Serialize;

use super::tree::{self, Entry, Kind};
use crate::error::input;
use crate::fleet::priority::PriorityRules;
use crate::fleet::route::RoutingRules;

/// What happened to one 6.x key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Carried over; its meaning differs in a way worth knowing.
    Differs,
    /// Not a key of `.runneriq.yml`: a flag or a variable instead.
    Elsewhere,
    /// Nothing here does what it did.
    NoEquivalent,
    /// Not in RunnerIQ 6.1.0's documented format.
    Unknown,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// The 6.x key path (`runneriq.assigner.trust_model.mode`).
    pub key: String,
    pub line: u64,
    /// The value as written (scalars only; containers by kind).
    pub value: String,
    pub fate: Fate,
    /// Where it went, or why it went nowhere.
    pub why: String,
}

/// The migrated file and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    pub yaml: String,
    /// 6.x keys carried over into `yaml` (leaves, or whole weight maps).
    pub carried: usize,
    pub notes: Vec<Note>,
}

/// Keys of the documented 6.x format, for "unknown key" messages.
const ANALYZER_KEYS: &[&str] = &["priority"];
const PRIORITY_KEYS: &[&str] = &[
    "branch_weights",
    "user_role_weights",
    "job_type_weights",
    "manual_trigger_bonus",
    "non_production_cap",
];
const ASSIGNER_KEYS: &[&str] = &["scoring", "decision_engine", "trust_model"];
const SCORING_KEYS: &[&str] = &["weights"];
const WEIGHT_KEYS: &[&str] = &["utilization", "tag_match", "capacity", "history"];
const ENGINE_KEYS: &[&str] = &["mode", "margin_threshold", "daily_token_budget"];
const TRUST_KEYS: &[&str] = &["mode", "supervised_threshold"];
const ROLE_KEYS: &[&str] = &["owner", "maintainer", "developer", "reporter", "guest"];

/// Where to look for a key 6.1.0's documentation does not give, by a word
/// in its name (the value is not translated: its format is not on record).
const HINTS: &[(&str, &str)] = &[
    (
        "sla",
        "SLA escalation here is `priority.sla` (how long LOW, MEDIUM, HIGH wait before one \
         band up, once): set it by hand",
    ),
    (
        "escalat",
        "SLA escalation here is `priority.sla` (how long LOW, MEDIUM, HIGH wait before one \
         band up, once): set it by hand",
    ),
    (
        "retry",
        "the retry bonus here is `priority.retry_bonus`: set it by hand",
    ),
    (
        "allow_failure",
        "the allow_failure penalty here is `priority.allow_failure_penalty`: set it by hand",
    ),
    (
        "cost",
        "a runner's cost here is `runneriq.cost_per_hour` on that runner in the fleet JSON \
         (`--fleet`), not in .runneriq.yml",
    ),
    (
        "carbon",
        "carbon's share of the score by urgency is `routing.carbon`; live intensities come \
         from ELECTRICITY_MAPS_TOKEN, zones from `runneriq.zone` in the fleet JSON",
    ),
    (
        "poll",
        "there is no polling loop: run `runneriq watch` in a scheduled pipeline",
    ),
    (
        "monitor",
        "the runner monitor is `runneriq watch`: run it in a scheduled pipeline (no polling loop)",
    ),
    (
        "alert",
        "alerts here are `notify:` (Slack, webhook, issues) and `watch:` (PagerDuty)",
    ),
    (
        "suppress",
        "suppression rules here are `suppress:` (job, stage, branch, category, allow_failure)",
    ),
    ("flaky", "flaky detection here is `history:` (min_failures)"),
];

/// Validation context: the file name for errors.
struct Cx<'a> {
    file: &'a str,
    notes: Vec<Note>,
    carried: usize,
}

fn join(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

impl Cx<'_> {
    fn err(&self, line: u64, path: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        if line > 0 {
            input(format!("{}:{line}: {path}: {msg}", self.file))
        } else {
            input(format!("{}: {path}: {msg}", self.file))
        }
    }

    fn note(&mut self, e: &Entry, path: &str, fate: Fate, why: impl Into<String>) {
        self.notes.push(Note {
            key: path.to_string(),
            line: e.line,
            value: e.value.shown(),
            fate,
            why: why.into(),
        });
    }

    /// Every key of `map` not in `known` is reported; `None` for null.
    fn map<'n>(
        &mut self,
        e: &'n Entry,
        path: &str,
        known: &[&str],
    ) -> anyhow::Result<Option<&'n [Entry]>> {
        let entries = match &e.value.kind {
            Kind::Null => return Ok(None),
            Kind::Map(m) => m.as_slice(),
            _ => {
                return Err(self.err(
                    e.line,
                    path,
                    format!(
                        "expected a map with keys {}, got {}",
                        known.join(", "),
                        e.value.shown()
                    ),
                ));
            }
        };
        for x in entries.iter().filter(|x| !known.contains(&x.key.as_str())) {
            self.unknown(x, &join(path, &x.key), known);
        }
        Ok(Some(entries))
    }

    fn unknown(&mut self, e: &Entry, path: &str, known: &[&str]) {
        let lower = e.key.to_ascii_lowercase();
        let hint = HINTS
            .iter()
            .find(|(word, _)| lower.contains(word))
            .map(|(_, h)| format!("; {h}"))
            .unwrap_or_default();
        let expected = if known.is_empty() {
            String::new()
        } else {
            format!(" (documented here: {})", known.join(", "))
        };
        self.note(
            e,
            path,
            Fate::Unknown,
            format!(
                "not in RunnerIQ 6.1.0's documented format{expected}, so not carried over{hint}"
            ),
        );
    }

    fn int(&self, e: &Entry, path: &str, lo: i64, hi: i64) -> anyhow::Result<i64> {
        match e.value.kind {
            Kind::Int(i) if (lo..=hi).contains(&i) => Ok(i),
            _ => Err(self.err(
                e.line,
                path,
                format!(
                    "expected an integer from {lo} to {hi}, got {}",
                    e.value.shown()
                ),
            )),
        }
    }

    fn number(&self, e: &Entry, path: &str, lo: f64, hi: f64) -> anyhow::Result<f64> {
        let v = match e.value.kind {
            Kind::Int(i) => Some(i as f64),
            Kind::Float(f) => Some(f),
            _ => None,
        };
        v.filter(|v| v.is_finite() && (lo..=hi).contains(v))
            .ok_or_else(|| {
                self.err(
                    e.line,
                    path,
                    format!(
                        "expected a number from {lo} to {hi}, got {}",
                        e.value.shown()
                    ),
                )
            })
    }

    fn word(&self, e: &Entry, path: &str, allowed: &[&str]) -> anyhow::Result<String> {
        match &e.value.kind {
            Kind::Str(s) if allowed.contains(&s.to_ascii_lowercase().as_str()) => {
                Ok(s.to_ascii_lowercase())
            }
            _ => Err(self.err(
                e.line,
                path,
                format!(
                    "expected one of {}, got {}",
                    allowed.join(", "),
                    e.value.shown()
                ),
            )),
        }
    }
}

fn find<'n>(entries: &'n [Entry], key: &str) -> Option<&'n Entry> {
    entries.iter().find(|e| e.key == key)
}

/// A YAML string: JSON's double-quoted form is valid YAML.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Whether `text` is a RunnerIQ 6.x config: a map whose keys include `runneriq`.
pub fn is_v6(text: &str) -> bool {
    tree::parse(text)
        .ok()
        .and_then(|n| n.entries().map(|e| find(e, "runneriq").is_some()))
        .unwrap_or(false)
}

/// Translates a 6.x config text; `file` names it in errors and in the
/// migrated file's header.
pub fn migrate(text: &str, file: &str) -> anyhow::Result<Migration> {
    let root = tree::parse(text).map_err(|e| {
        // serde-saphyr's first line says where and what (a source excerpt follows).
        let msg = e.to_string();
        let first = msg
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        input(format!(
            "{file}: not valid YAML: {}",
            first.strip_prefix("error: ").unwrap_or(first)
        ))
    })?;
    let Some(top) = root.entries() else {
        return Err(input(format!(
            "{file}: expected a RunnerIQ 6.x config (a map with the top-level key `runneriq:`), \
             got {}",
            root.shown()
        )));
    };
    let Some(rq) = find(top, "runneriq") else {
        return Err(input(format!(
            "{file}: not a RunnerIQ 6.x config: it has no top-level `runneriq:` key{}",
            if top
                .iter()
                .any(|e| ["priority", "routing", "history", "notify"].contains(&e.key.as_str()))
            {
                " (it looks like a .runneriq.yml already: nothing to migrate)"
            } else {
                ""
            }
        )));
    };
    let mut cx = Cx {
        file,
        notes: Vec::new(),
        carried: 0,
    };
    for e in top.iter().filter(|e| e.key != "runneriq") {
        cx.unknown(e, &e.key, &["runneriq"]);
    }
    let mut out = Out::default();
    if let Some(sections) = cx.map(rq, "runneriq", &["analyzer", "assigner"])? {
        if let Some(a) = find(sections, "analyzer") {
            if let Some(a) = cx.map(a, "runneriq.analyzer", ANALYZER_KEYS)? {
                if let Some(p) = find(a, "priority") {
                    priority(&mut cx, p, &mut out)?;
                }
            }
        }
        if let Some(a) = find(sections, "assigner") {
            if let Some(a) = cx.map(a, "runneriq.assigner", ASSIGNER_KEYS)? {
                assigner(&mut cx, a, &mut out)?;
            }
        }
    }
    let yaml = out.render(file, &cx.notes);
    // What we write must load: checked with the loader itself.
    crate::config::Config::from_yaml(&yaml, std::path::Path::new(".runneriq.yml")).map_err(
        |e| {
            input(format!(
                "{file}: the migrated config would not load ({}); nothing was written",
                crate::error::describe(&e)
            ))
        },
    )?;
    Ok(Migration {
        yaml,
        carried: cx.carried,
        notes: cx.notes,
    })
}

/// What the migrated file will hold, as YAML lines per section.
#[derive(Default)]
struct Out {
    priority: Vec<String>,
    routing: Vec<String>,
}

impl Out {
    fn render(&self, file: &str, notes: &[Note]) -> String {
        let mut y = String::new();
        let _ = writeln!(
            y,
            "# .runneriq.yml migrated from {} (RunnerIQ 6.x) by `runneriq config migrate`.",
            file.replace('\n', " ")
        );
        y.push_str("# The reference: README.md, \"Coming from RunnerIQ 6.x\".\n");
        if self.priority.is_empty() && self.routing.is_empty() {
            y.push_str("# Nothing in the 6.x file has a key here: every setting is the default.\n");
        }
        for (name, lines) in [("priority", &self.priority), ("routing", &self.routing)] {
            if lines.is_empty() {
                continue;
            }
            let _ = writeln!(y, "{name}:");
            for l in lines {
                let _ = writeln!(y, "  {l}");
            }
        }
        let left: Vec<&Note> = notes.iter().filter(|n| n.fate != Fate::Differs).collect();
        if !left.is_empty() {
            y.push_str(
                "\n# Not carried over from the 6.x file (see the migrate command's report):\n",
            );
            for n in left {
                let _ = writeln!(y, "#   {} (line {})", n.key, n.line);
            }
        }
        y
    }
}

fn priority(cx: &mut Cx<'_>, p: &Entry, out: &mut Out) -> anyhow::Result<()> {
    let path = "runneriq.analyzer.priority";
    let Some(p) = cx.map(p, path, PRIORITY_KEYS)? else {
        return Ok(());
    };
    let defaults = PriorityRules::default();
    if let Some(b) = find(p, "branch_weights") {
        let bp = join(path, "branch_weights");
        if let Some(entries) = cx.map(b, &bp, &[])? {
            // `cx.map` with no known keys reported every key as unknown:
            // they are globs here, so take those notes back.
            cx.notes.retain(|n| !n.key.starts_with(&format!("{bp}.")));
            let mut list: Vec<(String, i64)> = Vec::new();
            let mut other = None;
            for e in entries {
                let kp = join(&bp, &e.key);
                let w = cx.int(e, &kp, 0, 100)?;
                if e.key == "default" {
                    other = Some(w);
                    continue;
                }
                crate::noise::Glob::new(&e.key)
                    .map_err(|why| cx.err(e.line, &kp, format!("invalid glob: {why}")))?;
                list.push((e.key.clone(), w));
            }
            let missing: Vec<(String, i64)> = defaults
                .branches
                .iter()
                .filter(|(g, _)| !list.iter().any(|(k, _)| k == g.as_str()))
                .map(|(g, w)| (g.as_str().to_string(), i64::from(*w)))
                .collect();
            let added: Vec<String> = missing.iter().map(|(g, w)| format!("{g} {w}")).collect();
            list.extend(missing);
            out.priority.push(format!(
                "# from {bp}: the first matching glob wins, in this order"
            ));
            out.priority.push("branches:".to_string());
            for (g, w) in &list {
                out.priority
                    .push(format!("  - {{ glob: {}, weight: {w} }}", q(g)));
            }
            if let Some(w) = other {
                out.priority.push(format!("other_branch: {w}"));
            }
            cx.carried += 1;
            let mut why = "→ priority.branches (and `default` → priority.other_branch). Here a \
                           glob matches the whole ref name, case-sensitively; `*` also crosses \
                           `/` (`hotfix/*` matches `hotfix/a/b`), `?` is one character, \
                           `[a-z]` a class and `\\` escapes the next character; the first \
                           matching entry wins, in the file's order, and the default branch is \
                           always 100 whatever the list says"
                .to_string();
            if !added.is_empty() {
                let _ = write!(
                    why,
                    ". The list replaces RunnerIQ's whole default list, so RunnerIQ's defaults \
                     that the 6.x file does not name were added after its entries (6.1.0's \
                     documentation gives no weight for them): {}; delete them if your 6.x file meant to drop them",
                    added.join(", ")
                );
            }
            cx.note(b, &bp, Fate::Differs, why);
        }
    }
    if let Some(r) = find(p, "user_role_weights") {
        let rp = join(path, "user_role_weights");
        if let Some(entries) = cx.map(r, &rp, ROLE_KEYS)? {
            let mut parts = Vec::new();
            for e in entries
                .iter()
                .filter(|e| ROLE_KEYS.contains(&e.key.as_str()))
            {
                let w = cx.int(e, &join(&rp, &e.key), 0, 100)?;
                parts.push(format!("{}: {w}", e.key));
            }
            if !parts.is_empty() {
                out.priority.push(format!("# from {rp}"));
                out.priority
                    .push(format!("roles: {{ {} }}", parts.join(", ")));
                cx.carried += 1;
                cx.note(
                    r,
                    &rp,
                    Fate::Differs,
                    "→ priority.roles. The role is the job's user's access level in the project \
                     (members API); with --jobs files it is unknown (priority.roles.unknown, \
                     default 25). Roles the 6.x file does not name keep their defaults",
                );
            }
        }
    }
    if let Some(t) = find(p, "job_type_weights") {
        let tp = join(path, "job_type_weights");
        if let Some(entries) = cx.map(t, &tp, &[])? {
            cx.notes.retain(|n| !n.key.starts_with(&format!("{tp}.")));
            let mut types: Vec<(String, Vec<String>, i64)> = defaults
                .job_types
                .iter()
                .map(|t| (t.name.clone(), t.keywords.clone(), i64::from(t.weight)))
                .collect();
            let mut named = Vec::new();
            let mut other = None;
            for e in entries {
                let kp = join(&tp, &e.key);
                let w = cx.int(e, &kp, 0, 100)?;
                let name = e.key.to_ascii_lowercase();
                if name == "default" || name == "other" {
                    other = Some(w);
                    continue;
                }
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !ok {
                    return Err(cx.err(
                        e.line,
                        &kp,
                        "expected a job type name like deploy or security_scan (letters, \
                         digits, _ and -)",
                    ));
                }
                named.push(name.clone());
                match types.iter_mut().find(|t| t.0 == name) {
                    Some(t) => t.2 = w,
                    None => types.push((name.clone(), vec![name.clone()], w)),
                }
            }
            out.priority.push(format!(
                "# from {tp}: the first type with a keyword in \"<name> <stage>\" wins"
            ));
            out.priority.push("job_types:".to_string());
            for (name, kw, w) in &types {
                let kws: Vec<String> = kw.iter().map(|k| q(k)).collect();
                out.priority.push(format!(
                    "  - {{ name: {}, keywords: [{}], weight: {w} }}",
                    q(name),
                    kws.join(", ")
                ));
            }
            if let Some(w) = other {
                out.priority.push(format!("other_type: {w}"));
            }
            cx.carried += 1;
            let kept: Vec<String> = defaults
                .job_types
                .iter()
                .filter(|t| !named.contains(&t.name))
                .map(|t| format!("{} {}", t.name, t.weight))
                .collect();
            let new: Vec<&String> = named
                .iter()
                .filter(|n| !defaults.job_types.iter().any(|t| &t.name == *n))
                .collect();
            let mut why = "→ priority.job_types: a job's type is the first type (in the list's \
                           order) with a keyword in \"<name> <stage>\"; the keywords are \
                           RunnerIQ's (6.1.0's documentation does not list its own)"
                .to_string();
            if !kept.is_empty() {
                let _ = write!(
                    why,
                    "; types the 6.x file does not name keep their defaults: {}",
                    kept.join(", ")
                );
            }
            if !new.is_empty() {
                let _ = write!(
                    why,
                    "; types RunnerIQ does not know ({}) match their name as the one keyword",
                    new.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            cx.note(t, &tp, Fate::Differs, why);
        }
    }
    if let Some(e) = find(p, "manual_trigger_bonus") {
        let w = cx.int(e, &join(path, "manual_trigger_bonus"), -100, 100)?;
        out.priority.push(format!(
            "manual_bonus: {w}  # from {path}.manual_trigger_bonus"
        ));
        cx.carried += 1;
    }
    if let Some(e) = find(p, "non_production_cap") {
        let w = cx.int(e, &join(path, "non_production_cap"), 0, 100)?;
        out.priority.push(format!(
            "non_production_cap: {w}  # from {path}.non_production_cap"
        ));
        cx.carried += 1;
        cx.note(
            e,
            &join(path, "non_production_cap"),
            Fate::Differs,
            "→ priority.non_production_cap. Production refs (never capped) are the default \
             branch, Git tags and priority.production_refs (default main, master, production)",
        );
    }
    Ok(())
}

fn assigner(cx: &mut Cx<'_>, a: &[Entry], out: &mut Out) -> anyhow::Result<()> {
    let path = "runneriq.assigner";
    if let Some(s) = find(a, "scoring") {
        let sp = join(path, "scoring");
        if let Some(s) = cx.map(s, &sp, SCORING_KEYS)? {
            if let Some(w) = find(s, "weights") {
                let wp = join(&sp, "weights");
                if let Some(ws) = cx.map(w, &wp, WEIGHT_KEYS)? {
                    let mut parts = Vec::new();
                    let mut sum = 0.0;
                    for e in ws.iter().filter(|e| WEIGHT_KEYS.contains(&e.key.as_str())) {
                        let v = cx.number(e, &join(&wp, &e.key), 0.0, 1.0)?;
                        sum += v;
                        let ours = if e.key == "capacity" {
                            "headroom"
                        } else {
                            e.key.as_str()
                        };
                        parts.push(format!("{ours}: {v}"));
                    }
                    if !parts.is_empty() && sum <= 0.0 {
                        return Err(cx.err(w.line, &wp, "expected at least one weight above 0"));
                    }
                    if !parts.is_empty() {
                        out.routing
                            .push(format!("# from {wp} (capacity → headroom)"));
                        out.routing
                            .push(format!("weights: {{ {} }}", parts.join(", ")));
                        cx.carried += 1;
                        let d = RoutingRules::default();
                        cx.note(
                            w,
                            &wp,
                            Fate::Differs,
                            format!(
                                "→ routing.weights (capacity → headroom). Normalised \
                                 differently: here a fifth factor, carbon, takes a share that \
                                 depends on urgency (routing.carbon: CRITICAL {:.0} %, HIGH \
                                 {:.0} %, MEDIUM {:.0} %, LOW {:.0} %), and these four weights, \
                                 scaled to sum to 1, share the rest; so 0.40 is 40 % of what \
                                 carbon leaves, not of the score. Headroom here is a runner's \
                                 free slots relative to the candidate with the most, and \
                                 utilization its free share of its own slots. Weights the 6.x \
                                 file does not name keep their defaults",
                                d.carbon[0] * 100.0,
                                d.carbon[1] * 100.0,
                                d.carbon[2] * 100.0,
                                d.carbon[3] * 100.0
                            ),
                        );
                    }
                }
            }
        }
    }
    if let Some(d) = find(a, "decision_engine") {
        let dp = join(path, "decision_engine");
        if let Some(d) = cx.map(d, &dp, ENGINE_KEYS)? {
            if let Some(e) = find(d, "mode") {
                let kp = join(&dp, "mode");
                let mode = cx.word(e, &kp, &["hybrid", "rules_only", "claude_only"])?;
                let (fate, why) = match mode.as_str() {
                    "hybrid" => (
                        Fate::Elsewhere,
                        "no key needed: hybrid is how RunnerIQ works when an LLM is \
                         configured (ANTHROPIC_API_KEY, or RUNNERIQ_LLM_URL for an \
                         OpenAI-compatible server): the rules decide, the LLM breaks ties \
                         within routing.margin; without a provider, rules only",
                    ),
                    "rules_only" => (
                        Fate::Elsewhere,
                        "a variable here, not a key: set RUNNERIQ_LLM=off in the job's \
                         variables (or configure no LLM provider)",
                    ),
                    _ => (
                        Fate::NoEquivalent,
                        "no equivalent: the LLM is only asked to break ties (top two within \
                         routing.margin); the rules decide every other job. The closest is \
                         hybrid with routing.margin: 1.0 (every choice between two runners is \
                         a tie)",
                    ),
                };
                cx.note(e, &kp, fate, why);
            }
            if let Some(e) = find(d, "margin_threshold") {
                let v = cx.number(e, &join(&dp, "margin_threshold"), 0.0, 1.0)?;
                out.routing
                    .push(format!("margin: {v}  # from {dp}.margin_threshold"));
                cx.carried += 1;
                cx.note(
                    e,
                    &join(&dp, "margin_threshold"),
                    Fate::Differs,
                    "→ routing.margin. Here the margin is (best − runner-up) ÷ best score, and \
                     a tie goes to the LLM only when one is configured and the budgets allow",
                );
            }
            if let Some(e) = find(d, "daily_token_budget") {
                let kp = join(&dp, "daily_token_budget");
                let v = cx.int(e, &kp, 0, i64::MAX)?;
                let why = if v == 0 {
                    (
                        Fate::NoEquivalent,
                        "no equivalent: 0 meant unlimited in 6.x; here every budget is a \
                         number (RUNNERIQ_LLM_MAX_TOKENS_DAY, default 200000; 0 means no LLM \
                         call at all): set a large one"
                            .to_string(),
                    )
                } else {
                    (
                        Fate::Elsewhere,
                        format!(
                            "a variable here, not a key: set RUNNERIQ_LLM_MAX_TOKENS_DAY={v} in \
                             the job's variables. It is counted per UTC day in llm-usage.json in \
                             RUNNERIQ_STATE_DIR (keep that directory in the CI cache), and shared \
                             with diagnose's LLM fallback; RUNNERIQ_LLM_MAX_TOKENS_RUN caps one run"
                        ),
                    )
                };
                cx.note(e, &kp, why.0, why.1);
            }
        }
    }
    if let Some(t) = find(a, "trust_model") {
        let tp = join(path, "trust_model");
        if let Some(t) = cx.map(t, &tp, TRUST_KEYS)? {
            if let Some(e) = find(t, "mode") {
                let kp = join(&tp, "mode");
                let mode = cx.word(e, &kp, &["advisory", "supervised", "autonomous"])?;
                let why = match mode.as_str() {
                    "advisory" => "a flag here, not a key: advisory is the default (`--mode \
                                   advisory`): recommendations only, nothing is written"
                        .to_string(),
                    "supervised" => "a flag here, not a key: `runneriq route --mode supervised \
                                     --plan plan.json` (or RUNNERIQ_MODE=supervised), the plan \
                                     applied by `runneriq apply plan.json --execute` in a \
                                     `when: manual` job; with routing.trust.supervised_threshold, \
                                     changes for jobs below it are applied by the run itself \
                                     (with --execute). The pipeline that holds the token \
                                     chooses the mode, not a file in the repository"
                        .to_string(),
                    _ => "a flag here, not a key: `--mode autonomous --execute` (without \
                          --execute, a dry run). The pipeline that holds the token chooses the \
                          mode, not a file in the repository"
                        .to_string(),
                };
                cx.note(e, &kp, Fate::Elsewhere, why);
            }
            if let Some(e) = find(t, "supervised_threshold") {
                let kp = join(&tp, "supervised_threshold");
                let v = cx.word(e, &kp, &["critical", "high", "medium", "low"])?;
                out.routing.push(format!("# from {kp}"));
                out.routing.push("trust:".to_string());
                out.routing.push(format!("  supervised_threshold: {v}"));
                cx.carried += 1;
                cx.note(
                    e,
                    &kp,
                    Fate::Differs,
                    "→ routing.trust.supervised_threshold. What is applied here is a \
                     `runneriq:` runner tag change, not an assignment: in supervised mode a \
                     change whose waiting jobs (those requiring the tag) are all below the \
                     threshold is applied by the run (with --execute, else a dry run), one \
                     that affects a job at or above it goes to the --plan file for review",
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fleet::priority::Urgency;
    use std::path::Path;

    const DOC: &str = r#"
runneriq:
  analyzer:
    priority:
      branch_weights:
        main: 100
        "hotfix/*": 95
        develop: 75
        "feature/*": 50
        default: 40
      user_role_weights:
        maintainer: 100
        developer: 75
        guest: 25
      job_type_weights:
        deploy: 100
        build: 75
        test: 50
        lint: 40
      manual_trigger_bonus: 10
      non_production_cap: 75
  assigner:
    scoring:
      weights:
        utilization: 0.40
        tag_match: 0.20
        capacity: 0.20
        history: 0.20
    decision_engine:
      mode: hybrid
      margin_threshold: 0.15
      daily_token_budget: 50000
    trust_model:
      mode: advisory
      supervised_threshold: HIGH
"#;

    fn load(m: &Migration) -> Config {
        Config::from_yaml(&m.yaml, Path::new(".runneriq.yml")).unwrap()
    }

    #[test]
    fn the_documented_example_migrates_to_a_config_that_loads_with_its_values() {
        let m = migrate(DOC, "runneriq.yaml").unwrap();
        let c = load(&m);
        let b: Vec<(&str, u32)> = c
            .priority
            .branches
            .iter()
            .map(|(g, w)| (g.as_str(), *w))
            .collect();
        assert_eq!(
            &b[..4],
            &[
                ("main", 100),
                ("hotfix/*", 95),
                ("develop", 75),
                ("feature/*", 50)
            ]
        );
        // The defaults it does not name come after, in their order.
        assert_eq!(
            &b[4..],
            &[("master", 100), ("release/*", 85), ("bugfix/*", 60)]
        );
        assert_eq!(c.priority.other_branch, 40);
        assert_eq!(c.priority.roles[1], (40, 100));
        assert_eq!(c.priority.roles[4], (10, 25));
        assert_eq!(c.priority.manual_bonus, 10);
        assert_eq!(c.priority.non_production_cap, 75);
        let lint = c
            .priority
            .job_types
            .iter()
            .find(|t| t.name == "lint")
            .unwrap();
        assert_eq!(lint.weight, 40);
        assert!(lint.keywords.contains(&"eslint".to_string()));
        assert_eq!(c.routing.weights.utilization, 0.40);
        assert_eq!(c.routing.weights.headroom, 0.20);
        assert_eq!(c.routing.margin, 0.15);
        assert_eq!(c.routing.trust.supervised_threshold, Some(Urgency::High));
        assert_eq!(m.carried, 8);
        let fates: Vec<(&str, Fate)> = m
            .notes
            .iter()
            .filter(|n| n.fate != Fate::Differs)
            .map(|n| (n.key.as_str(), n.fate))
            .collect();
        assert_eq!(
            fates,
            vec![
                ("runneriq.assigner.decision_engine.mode", Fate::Elsewhere),
                (
                    "runneriq.assigner.decision_engine.daily_token_budget",
                    Fate::Elsewhere
                ),
                ("runneriq.assigner.trust_model.mode", Fate::Elsewhere),
            ]
        );
        let budget = &m
            .notes
            .iter()
            .find(|n| n.key.ends_with("daily_token_budget"))
            .unwrap();
        assert!(
            budget.why.contains("RUNNERIQ_LLM_MAX_TOKENS_DAY=50000"),
            "{}",
            budget.why
        );
        assert_eq!(budget.line, 32);
    }

    #[test]
    fn unknown_keys_are_reported_with_a_hint_and_never_dropped_silently() {
        let text = "runneriq:\n  analyzer:\n    priority:\n      retry_bonus: 5\n      sla_minutes: 5\n  monitor:\n    poll_interval: 30\nextra: 1\n";
        let m = migrate(text, "r.yaml").unwrap();
        let unknown: Vec<(&str, u64)> = m
            .notes
            .iter()
            .filter(|n| n.fate == Fate::Unknown)
            .map(|n| (n.key.as_str(), n.line))
            .collect();
        assert_eq!(
            unknown,
            vec![
                ("extra", 8),
                ("runneriq.monitor", 6),
                ("runneriq.analyzer.priority.retry_bonus", 4),
                ("runneriq.analyzer.priority.sla_minutes", 5),
            ]
        );
        let sla = m
            .notes
            .iter()
            .find(|n| n.key.ends_with("sla_minutes"))
            .unwrap();
        assert!(sla.why.contains("priority.sla"), "{}", sla.why);
        let retry = m
            .notes
            .iter()
            .find(|n| n.key.ends_with("retry_bonus"))
            .unwrap();
        assert!(retry.why.contains("priority.retry_bonus"), "{}", retry.why);
        assert_eq!(m.carried, 0);
        // Listed at the end of the file too.
        assert!(
            m.yaml.contains("#   runneriq.monitor (line 6)"),
            "{}",
            m.yaml
        );
        load(&m);
    }

    #[test]
    fn modes_without_an_equivalent_say_so() {
        let text = "runneriq:\n  assigner:\n    decision_engine: { mode: claude_only, daily_token_budget: 0 }\n    trust_model: { mode: Supervised }\n";
        let m = migrate(text, "r.yaml").unwrap();
        let f: Vec<Fate> = m.notes.iter().map(|n| n.fate).collect();
        assert_eq!(
            f,
            vec![Fate::NoEquivalent, Fate::NoEquivalent, Fate::Elsewhere]
        );
        assert!(m.notes[2].why.contains("--mode supervised"));
    }

    #[test]
    fn bad_values_are_one_error_naming_the_file_the_line_and_the_key() {
        let cases = [
            (
                "runneriq:\n  analyzer:\n    priority:\n      manual_trigger_bonus: ten\n",
                "r.yaml:4: runneriq.analyzer.priority.manual_trigger_bonus: expected an integer from -100 to 100, got \"ten\"",
            ),
            (
                "runneriq:\n  assigner:\n    trust_model:\n      supervised_threshold: URGENT\n",
                "r.yaml:4: runneriq.assigner.trust_model.supervised_threshold: expected one of critical, high, medium, low, got \"URGENT\"",
            ),
            (
                "runneriq:\n  assigner:\n    scoring:\n      weights: { utilization: 0, tag_match: 0 }\n",
                "r.yaml:4: runneriq.assigner.scoring.weights: expected at least one weight above 0",
            ),
            (
                "runneriq:\n  analyzer:\n    priority:\n      branch_weights:\n        \"release/[\": 80\n",
                "r.yaml:5: runneriq.analyzer.priority.branch_weights.release/[: invalid glob",
            ),
            (
                "runneriq: 3\n",
                "r.yaml:1: runneriq: expected a map with keys analyzer, assigner, got 3",
            ),
        ];
        for (text, want) in cases {
            let e = migrate(text, "r.yaml").unwrap_err();
            assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_INPUT);
            let msg = crate::error::describe(&e);
            assert!(msg.starts_with(want), "{msg}\nwanted: {want}");
        }
        let e = migrate("priority: {}\n", "r.yaml").unwrap_err();
        assert!(crate::error::describe(&e).contains("looks like a .runneriq.yml already"));
        let e = migrate("runneriq:\n  analyzer: [\n", "r.yaml").unwrap_err();
        let msg = crate::error::describe(&e);
        assert!(msg.starts_with("r.yaml: not valid YAML: "), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn strings_that_need_quoting_survive() {
        let text = "runneriq:\n  analyzer:\n    priority:\n      branch_weights:\n        \"a: \\\"b\\\" #c\": 70\n";
        let m = migrate(text, "r.yaml").unwrap();
        let c = load(&m);
        assert_eq!(c.priority.branches[0].0.as_str(), "a: \"b\" #c");
        assert!(is_v6(text));
        assert!(!is_v6("priority: {}\n"));
    }
}
