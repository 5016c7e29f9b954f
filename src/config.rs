//! The repository's config file, `.runneriq.yml`: how far back history
//! looks, which failures are noise, how much each kind of failure matters,
//! and where notifications go.
//!
//! Every section is optional and an empty file is the default config;
//! unknown keys are errors. The full schema, with the defaults:
//!
//! ```yaml
//! history:                  # earlier runs of the same job on the default branch
//!   enabled: true
//!   runs: 20                # 1..=100 runs of the same job looked at
//!   pages: 2                # 1..=10 pages of 100 jobs read
//!   traces: 3               # 0..=10 failed runs per job whose trace is fingerprinted
//!   max_requests: 20        # 1..=200 API requests for history and upstream, at most
//!   min_failures: 2         # 1..=100 same-fingerprint failures that make a job "known flaky"
//! upstream:                 # is the target branch failing the same way already?
//!   enabled: true
//! suppress:                 # failures that are noise; a rule needs one of
//!   - job: "docs:*"         # job, stage, branch, category, allow_failure,
//!     reason: docs builds are best effort   # and all it gives must match
//!   - stage: lint
//!     branch: "renovate/*"
//!   - category: network_transient
//!     allow_failure: true
//! severity:                 # the first matching rule sets the severity
//!   - job: "deploy:*"
//!     branch: main
//!     severity: critical    # low, medium, high or critical
//! notify:                   # each channel is off unless present
//!   slack: { min_severity: high, cooldown: 6h }   # URL from $RUNNERIQ_SLACK_WEBHOOK_URL
//!   webhook: { url_env: MY_HOOK_URL, min_severity: medium, cooldown: 30m }
//!   issues: { min_severity: high, labels: [runneriq, ci-failure], cooldown: 1d }
//! priority:                 # job priority (route, explain, simulate); each key
//!   branches:               # replaces its default; the default branch is 100
//!     - { glob: "hotfix/*", weight: 95 }
//!     - { glob: "feature/*", weight: 50 }
//!   other_branch: 40
//!   roles: { owner: 100, maintainer: 100, developer: 75, reporter: 50, guest: 25, unknown: 25 }
//!   job_types:              # first keyword found in "<name> <stage>" wins
//!     - { name: deploy, keywords: [deploy, production], weight: 100 }
//!     - { name: test, keywords: [test, spec], weight: 50 }
//!   other_type: 50
//!   manual_bonus: 10
//!   retry_bonus: 5
//!   allow_failure_penalty: 10
//!   experimental_refs: ["spike/*", "poc/*"]
//!   experimental_penalty: 20
//!   production_refs: [main, master, production]
//!   non_production_cap: 75
//!   bands: { critical: 90, high: 70, medium: 50 }
//!   sla: { low: 5m, medium: 2m, high: 1m }   # wait before one band up
//! routing:                  # runner scoring
//!   weights: { utilization: 0.30, tag_match: 0.15, headroom: 0.20, history: 0.35 }
//!   carbon: { critical: 0.05, high: 0.20, medium: 0.35, low: 0.50 }
//!   margin: 0.15            # top two within 15 %: a tie the LLM may break
//!   protected_refs: ["release/*"]   # for ref_protected runners, besides the default branch
//!   reserve_scarce: true    # keep a GPU/ARM/deploy runner's slots for the jobs only it can take
//!   trust:                  # the tag bridge in `--mode supervised` (off unless set):
//!     supervised_threshold: high   # changes for jobs below HIGH applied by the run, the rest planned
//! report:                   # the weekly report's detectors and runner score
//!   weights: { throughput: 0.25, speed: 0.30, reliability: 0.30, utilization: 0.15 }
//!   slow_factor: 2.0        # slower than 2× the fleet for the same job names
//!   underutilized: 0.20     # busy less than 20 % of its slots × window
//!   infra_failure_rate: 0.05
//!   bottleneck_utilization: 0.90
//!   bottleneck_wait_p95: 10m
//!   min_jobs: 5             # detectors ignore runners with fewer jobs
//! watch:                    # `runneriq watch`, the scheduled health check
//!   stale: 30m              # an online runner with no contact for this long is stale
//!   pending: 10m            # a job pending longer than this is a problem
//!   cooldown: 1h            # an open problem is alerted again at most once per cooldown
//!   window: 1h              # queue-wait p95 and infrastructure failures look this far back
//!   spike_factor: 2.0       # a class's p95 above 2× its usual level (the last report's) …
//!   spike_min: 2m           # … and above it by at least this much is a spike
//!   min_jobs: 5             # jobs of a class in the window before a spike is judged
//!   infra_failures: 3       # runner_system_failure / stuck_or_timeout_failure per runner
//!   paused: true            # list paused runners (severity low)
//!   max_details: 20         # GET /runners/:id per run, at most
//!   max_projects: 20        # group mode: projects whose jobs are read
//!   labels: [runneriq-watch]          # the fleet-health issue's labels; the first finds it
//!   report_label: runneriq-report     # where the weekly report (the usual queue wait) lives
//!   pagerduty: { min_severity: high, routing_key_env: RUNNERIQ_PAGERDUTY_ROUTING_KEY }
//! ```
//!
//! `job`, `stage` and `branch` are globs ([`Glob`]: `*` also crosses `/` and
//! `:`). Webhook URLs are secrets: the file names the environment variable
//! that holds one (a masked CI variable), never the URL; `url_env` defaults to
//! `RUNNERIQ_SLACK_WEBHOOK_URL` for Slack and `RUNNERIQ_WEBHOOK_URL` for the
//! webhook. A channel written without settings (`slack:` or `slack: {}`) is on
//! with its defaults: `min_severity: high`, `cooldown: 6h`. Durations are
//! `90s`, `30m`, `6h`, `1d`, `1h30m` or a bare number of seconds; `0` means no
//! cooldown. For issues, an open issue is rewritten at most once per
//! cooldown; a closed one is reopened as soon as its failure comes back.
//!
//! The YAML is read into a generic tree and checked by hand, so that every
//! error is one line naming the file, the key path and what was expected:
//! `.runneriq.yml: history.runs: expected an integer from 1 to 100, got "many"`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::input;
pub use crate::noise::rules::SuppressRule;
pub use crate::noise::severity::SeverityRule;
use crate::noise::{Glob, Severity};

/// Names looked for, in order, when no config path is given.
pub const FILE_NAMES: [&str; 2] = [".runneriq.yml", ".runneriq.yaml"];

/// Larger files are refused (a config is a few hundred bytes).
pub const MAX_SIZE: usize = 1 << 20;

pub const DEFAULT_SLACK_URL_ENV: &str = "RUNNERIQ_SLACK_WEBHOOK_URL";
pub const DEFAULT_WEBHOOK_URL_ENV: &str = "RUNNERIQ_WEBHOOK_URL";
/// Default notification cooldown: 6 hours.
pub const DEFAULT_COOLDOWN_S: u64 = 6 * 3600;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The file this came from; `None` for the built-in default.
    pub source: Option<PathBuf>,
    pub history: HistoryConfig,
    pub upstream: UpstreamConfig,
    pub suppress: Vec<SuppressRule>,
    pub severity: Vec<SeverityRule>,
    pub notify: NotifyConfig,
    /// Job priority (route, explain, simulate).
    pub priority: crate::fleet::priority::PriorityRules,
    /// Runner scoring (route, explain, simulate).
    pub routing: crate::fleet::route::RoutingRules,
    /// The weekly report's detector thresholds and score weights.
    pub report: crate::report::metrics::ReportRules,
    /// `runneriq watch`: thresholds, the issue's labels, PagerDuty.
    pub watch: WatchConfig,
}

/// Default PagerDuty routing-key variable.
pub const DEFAULT_PAGERDUTY_KEY_ENV: &str = "RUNNERIQ_PAGERDUTY_ROUTING_KEY";

/// `watch:`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    pub rules: crate::watch::analysis::WatchRules,
    /// The fleet-health issue's labels; the first finds it again.
    pub labels: Vec<String>,
    /// The weekly report issue's label (its figures are the usual level).
    pub report_label: String,
    /// Off unless present.
    pub pagerduty: Option<PagerDutyConfig>,
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            rules: crate::watch::analysis::WatchRules::default(),
            labels: vec!["runneriq-watch".to_string()],
            report_label: "runneriq-report".to_string(),
            pagerduty: None,
        }
    }
}

/// PagerDuty Events API v2 for `watch` problems at or above a severity.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutyConfig {
    /// The variable holding the integration's routing key (a secret).
    pub routing_key_env: String,
    pub min_severity: Severity,
}

impl Default for PagerDutyConfig {
    fn default() -> PagerDutyConfig {
        PagerDutyConfig {
            routing_key_env: DEFAULT_PAGERDUTY_KEY_ENV.to_string(),
            min_severity: Severity::High,
        }
    }
}

impl Config {
    /// What triage reads of the config: suppression and severity rules and
    /// the history's flakiness threshold.
    pub fn triage_rules(&self) -> crate::diagnose::triage::Rules<'_> {
        crate::diagnose::triage::Rules {
            suppress: &self.suppress,
            severity: &self.severity,
            min_failures: self.history.min_failures,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryConfig {
    pub enabled: bool,
    /// Runs of the same job on the default branch looked at (1..=100).
    pub runs: u32,
    /// Pages of 100 jobs read (1..=10).
    pub pages: u32,
    /// Failed runs per job whose trace is read for their fingerprint (0..=10).
    pub traces: u32,
    /// Hard cap on API requests of the whole history and upstream lookup (1..=200).
    pub max_requests: u32,
    /// Same-fingerprint failures that make a job "known flaky" (1..=100).
    pub min_failures: u32,
}

impl Default for HistoryConfig {
    fn default() -> HistoryConfig {
        HistoryConfig {
            enabled: true,
            runs: 20,
            pages: 2,
            traces: 3,
            max_requests: 20,
            min_failures: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    pub enabled: bool,
}

impl Default for UpstreamConfig {
    fn default() -> UpstreamConfig {
        UpstreamConfig { enabled: true }
    }
}

/// Where notifications go; every channel is off unless configured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifyConfig {
    pub slack: Option<Channel>,
    pub webhook: Option<Channel>,
    pub issues: Option<IssuesConfig>,
}

/// A webhook-like channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// The environment variable holding the URL (a secret, never in the repo).
    pub url_env: String,
    /// Failures below this are not sent.
    pub min_severity: Severity,
    /// Seconds before the same failure is sent again; 0: no cooldown.
    pub cooldown_s: u64,
}

impl Channel {
    /// Slack's defaults: `$RUNNERIQ_SLACK_WEBHOOK_URL`, high, 6h.
    pub fn slack() -> Channel {
        Channel {
            url_env: DEFAULT_SLACK_URL_ENV.to_string(),
            min_severity: Severity::High,
            cooldown_s: DEFAULT_COOLDOWN_S,
        }
    }

    /// The generic webhook's defaults: `$RUNNERIQ_WEBHOOK_URL`, high, 6h.
    pub fn webhook() -> Channel {
        Channel {
            url_env: DEFAULT_WEBHOOK_URL_ENV.to_string(),
            ..Channel::slack()
        }
    }
}

impl Default for Channel {
    /// Slack's defaults ([`Channel::slack`]).
    fn default() -> Channel {
        Channel::slack()
    }
}

/// GitLab issues for failures on important branches.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuesConfig {
    pub min_severity: Severity,
    pub labels: Vec<String>,
    /// Limits reopen-and-comment pings only; the issue body is always updated.
    pub cooldown_s: u64,
}

impl Default for IssuesConfig {
    fn default() -> IssuesConfig {
        IssuesConfig {
            min_severity: Severity::High,
            labels: vec!["runneriq".to_string()],
            cooldown_s: DEFAULT_COOLDOWN_S,
        }
    }
}

/// `90s`, `30m`, `6h`, `1d`, `1h30m` (units in any order, each a number) or
/// a bare number of seconds. `None` when malformed or too large.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    // Digits after the last unit (`1h30`) are ambiguous.
    if number.is_some() {
        return None;
    }
    Some(total)
}

impl Config {
    /// Parses and validates a config text; `origin` names it in errors and
    /// becomes [`Config::source`]. Empty text or `null` is the default.
    pub fn from_yaml(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let file = origin.display().to_string();
        if text.len() > MAX_SIZE {
            return Err(input(format!(
                "{file}: larger than 1 MiB, not a config file"
            )));
        }
        let tree: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                input(format!(
                    "{file}: {}",
                    crate::error::one_line(&e.to_string())
                ))
            })?
        };
        if let Some(top) = tree.as_object() {
            if top.contains_key("runneriq") {
                return Err(input(format!(
                    "{file}: this is a RunnerIQ 6.x config (its top-level key is `runneriq:`), \
                     not a .runneriq.yml: convert it with `runneriq config migrate {file}`, \
                     which writes .runneriq.yml and lists what has no equivalent"
                )));
            }
        }
        let cx = Cx { file: &file };
        let mut config = cx.config(&tree)?;
        config.source = Some(origin.to_path_buf());
        Ok(config)
    }

    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let name = path.display();
        let file = std::fs::File::open(path).map_err(|e| {
            input(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{name}: config file not found")
            } else {
                format!("{name}: cannot read: {e}")
            })
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_SIZE as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| input(format!("{name}: cannot read: {e}")))?;
        if bytes.len() > MAX_SIZE {
            return Err(input(format!(
                "{name}: larger than 1 MiB, not a config file"
            )));
        }
        let text =
            String::from_utf8(bytes).map_err(|_| input(format!("{name}: not UTF-8 text")))?;
        Config::from_yaml(&text, path)
    }

    /// [`Config::discover`] in a CI job: the project directory is
    /// `CI_PROJECT_DIR` when set.
    pub fn for_job(explicit: Option<&Path>) -> anyhow::Result<Config> {
        let dir = std::env::var_os("CI_PROJECT_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        Config::discover(explicit, dir.as_deref())
    }

    /// The config in effect: `explicit` (from `--config` or
    /// `RUNNERIQ_CONFIG`) must exist; else the first of [`FILE_NAMES`] in
    /// `project_dir` (`CI_PROJECT_DIR`) or, without one, the current
    /// directory; else the default config (source `None`).
    pub fn discover(explicit: Option<&Path>, project_dir: Option<&Path>) -> anyhow::Result<Config> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        for name in FILE_NAMES {
            let path = match project_dir {
                Some(dir) => dir.join(name),
                None => PathBuf::from(name),
            };
            if path.exists() {
                return Config::load(&path);
            }
        }
        Ok(Config::default())
    }
}

const TOP_KEYS: &[&str] = &[
    "history", "upstream", "suppress", "severity", "notify", "priority", "routing", "report",
    "watch",
];
const WATCH_KEYS: &[&str] = &[
    "stale",
    "pending",
    "cooldown",
    "window",
    "spike_factor",
    "spike_min",
    "min_jobs",
    "infra_failures",
    "paused",
    "max_details",
    "max_projects",
    "labels",
    "report_label",
    "pagerduty",
];
const PAGERDUTY_KEYS: &[&str] = &["routing_key_env", "min_severity"];
const REPORT_KEYS: &[&str] = &[
    "weights",
    "slow_factor",
    "underutilized",
    "infra_failure_rate",
    "bottleneck_utilization",
    "bottleneck_wait_p95",
    "min_jobs",
];
const SCORE_KEYS: &[&str] = &["throughput", "speed", "reliability", "utilization"];
const PRIORITY_KEYS: &[&str] = &[
    "branches",
    "other_branch",
    "roles",
    "job_types",
    "other_type",
    "manual_bonus",
    "retry_bonus",
    "allow_failure_penalty",
    "experimental_refs",
    "experimental_penalty",
    "production_refs",
    "non_production_cap",
    "bands",
    "sla",
];
const BRANCH_KEYS: &[&str] = &["glob", "weight"];
const ROLE_KEYS: &[&str] = &[
    "owner",
    "maintainer",
    "developer",
    "reporter",
    "guest",
    "unknown",
];
const JOB_TYPE_KEYS: &[&str] = &["name", "keywords", "weight"];
const BAND_KEYS: &[&str] = &["critical", "high", "medium"];
const SLA_KEYS: &[&str] = &["low", "medium", "high"];
const ROUTING_KEYS: &[&str] = &[
    "weights",
    "carbon",
    "margin",
    "protected_refs",
    "reserve_scarce",
    "trust",
];
const TRUST_KEYS: &[&str] = &["supervised_threshold"];
const WEIGHT_KEYS: &[&str] = &["utilization", "tag_match", "headroom", "history"];
const URGENCY_KEYS: &[&str] = &["critical", "high", "medium", "low"];
const HISTORY_KEYS: &[&str] = &[
    "enabled",
    "runs",
    "pages",
    "traces",
    "max_requests",
    "min_failures",
];
const UPSTREAM_KEYS: &[&str] = &["enabled"];
const SUPPRESS_KEYS: &[&str] = &[
    "job",
    "stage",
    "branch",
    "category",
    "allow_failure",
    "reason",
];
const SEVERITY_KEYS: &[&str] = &["job", "stage", "branch", "category", "severity"];
const NOTIFY_KEYS: &[&str] = &["slack", "webhook", "issues"];
const CHANNEL_KEYS: &[&str] = &["url_env", "min_severity", "cooldown"];
const ISSUES_KEYS: &[&str] = &["min_severity", "labels", "cooldown"];

/// What a value is, for "got ..." in errors: strings quoted (cut at 60
/// characters), numbers and booleans as written, containers by kind.
fn got(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let cut: String = s.chars().take(60).collect();
            if cut.len() < s.len() {
                format!("{:?}", cut + "…")
            } else {
                format!("{s:?}")
            }
        }
        Value::Null => "nothing".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a map".to_string(),
    }
}

/// `a.b`, or `b` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The validation context: the file name for every message.
struct Cx<'a> {
    file: &'a str,
}

impl Cx<'_> {
    fn err(&self, path: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        if path.is_empty() {
            input(format!("{}: {msg}", self.file))
        } else {
            input(format!("{}: {path}: {msg}", self.file))
        }
    }

    /// A map with only `keys`; `None` for null (an absent section).
    fn map<'v>(
        &self,
        v: &'v Value,
        path: &str,
        keys: &[&str],
    ) -> anyhow::Result<Option<&'v Map<String, Value>>> {
        let map = match v {
            Value::Null => return Ok(None),
            Value::Object(m) => m,
            other => {
                return Err(self.err(
                    path,
                    format!(
                        "expected a map with keys {}, got {}",
                        keys.join(", "),
                        got(other)
                    ),
                ));
            }
        };
        if let Some(k) = map.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(self.err(
                path,
                format!("unknown key {k:?} (expected {})", keys.join(", ")),
            ));
        }
        Ok(Some(map))
    }

    fn bool(&self, v: &Value, path: &str) -> anyhow::Result<bool> {
        v.as_bool()
            .ok_or_else(|| self.err(path, format!("expected true or false, got {}", got(v))))
    }

    fn int(&self, v: &Value, path: &str, lo: u32, hi: u32) -> anyhow::Result<u32> {
        v.as_u64()
            .filter(|n| (u64::from(lo)..=u64::from(hi)).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                self.err(
                    path,
                    format!("expected an integer from {lo} to {hi}, got {}", got(v)),
                )
            })
    }

    fn string(&self, v: &Value, path: &str) -> anyhow::Result<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(path, format!("expected a string, got {}", got(v))))
    }

    fn glob(&self, v: &Value, path: &str) -> anyhow::Result<Glob> {
        let s = v.as_str().ok_or_else(|| {
            self.err(
                path,
                format!(
                    "expected a string (a glob like \"release/*\"), got {}",
                    got(v)
                ),
            )
        })?;
        Glob::new(s).map_err(|e| self.err(path, format!("invalid glob {s:?}: {e}")))
    }

    fn category(&self, v: &Value, path: &str) -> anyhow::Result<String> {
        let s = v.as_str().filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        s.map(str::to_string).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "expected a category id like network_transient, got {}",
                    got(v)
                ),
            )
        })
    }

    fn severity(&self, v: &Value, path: &str) -> anyhow::Result<Severity> {
        match v.as_str() {
            Some(s) => s.parse().map_err(|e: String| self.err(path, e)),
            None => Err(self.err(
                path,
                format!(
                    "expected one of low, medium, high, critical, got {}",
                    got(v)
                ),
            )),
        }
    }

    /// A priority class: critical, high, medium or low (any case).
    fn urgency(&self, v: &Value, path: &str) -> anyhow::Result<crate::fleet::priority::Urgency> {
        use crate::fleet::priority::Urgency;
        let u = v.as_str().and_then(|s| {
            Urgency::ALL
                .into_iter()
                .find(|u| u.as_str().eq_ignore_ascii_case(s.trim()))
        });
        u.ok_or_else(|| {
            self.err(
                path,
                format!(
                    "expected a priority class: critical, high, medium or low, got {}",
                    got(v)
                ),
            )
        })
    }

    fn duration(&self, v: &Value, path: &str) -> anyhow::Result<u64> {
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => parse_duration(s),
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.err(
                path,
                format!("expected a duration like 30m, 6h or 1d, got {}", got(v)),
            )
        })
    }

    fn config(&self, tree: &Value) -> anyhow::Result<Config> {
        let mut config = Config::default();
        let Some(top) = self.map(tree, "", TOP_KEYS)? else {
            return Ok(config);
        };
        if let Some(v) = field(top, "history") {
            config.history = self.history(v)?;
        }
        if let Some(v) = field(top, "upstream") {
            if let Some(m) = self.map(v, "upstream", UPSTREAM_KEYS)? {
                if let Some(v) = field(m, "enabled") {
                    config.upstream.enabled = self.bool(v, "upstream.enabled")?;
                }
            }
        }
        for (i, v) in self.list(top, "suppress")?.iter().enumerate() {
            config
                .suppress
                .push(self.suppress_rule(v, &format!("suppress[{i}]"))?);
        }
        for (i, v) in self.list(top, "severity")?.iter().enumerate() {
            config
                .severity
                .push(self.severity_rule(v, &format!("severity[{i}]"))?);
        }
        if let Some(v) = field(top, "notify") {
            config.notify = self.notify(v)?;
        }
        if let Some(v) = field(top, "priority") {
            self.priority(v, &mut config.priority)?;
        }
        if let Some(v) = field(top, "routing") {
            self.routing(v, &mut config.routing)?;
        }
        if let Some(v) = field(top, "report") {
            self.report(v, &mut config.report)?;
        }
        if let Some(v) = field(top, "watch") {
            config.watch = self.watch(v)?;
        }
        Ok(config)
    }

    /// `watch:` — thresholds, labels, PagerDuty.
    fn watch(&self, v: &Value) -> anyhow::Result<WatchConfig> {
        let mut w = WatchConfig::default();
        let Some(m) = self.map(v, "watch", WATCH_KEYS)? else {
            return Ok(w);
        };
        let r = &mut w.rules;
        let positive = |this: &Self, key: &str| -> anyhow::Result<Option<u64>> {
            let Some(v) = field(m, key) else {
                return Ok(None);
            };
            let path = join("watch", key);
            let s = this.duration(v, &path)?;
            if s == 0 {
                return Err(this.err(&path, "expected a duration above 0, like 30m"));
            }
            Ok(Some(s))
        };
        if let Some(s) = positive(self, "stale")? {
            r.stale_s = s;
        }
        if let Some(s) = positive(self, "pending")? {
            r.pending_s = s;
        }
        if let Some(v) = field(m, "cooldown") {
            r.cooldown_s = self.duration(v, "watch.cooldown")?;
        }
        if let Some(s) = positive(self, "window")? {
            r.window_s = s;
        }
        if let Some(v) = field(m, "spike_factor") {
            r.spike_factor = self.number(v, "watch.spike_factor", 1.0, 100.0)?;
        }
        if let Some(v) = field(m, "spike_min") {
            r.spike_min_s = self.duration(v, "watch.spike_min")?;
        }
        if let Some(v) = field(m, "min_jobs") {
            r.min_jobs = self.int(v, "watch.min_jobs", 1, 10_000)?;
        }
        if let Some(v) = field(m, "infra_failures") {
            r.infra_failures = self.int(v, "watch.infra_failures", 1, 1_000)?;
        }
        if let Some(v) = field(m, "paused") {
            r.paused = self.bool(v, "watch.paused")?;
        }
        if let Some(v) = field(m, "max_details") {
            r.max_details = self.int(v, "watch.max_details", 0, 500)?;
        }
        if let Some(v) = field(m, "max_projects") {
            r.max_projects = self.int(v, "watch.max_projects", 1, 100)?;
        }
        if let Some(v) = field(m, "labels") {
            w.labels = self.labels(v, "watch.labels")?;
            if w.labels.is_empty() {
                return Err(self.err("watch.labels", "expected at least one label"));
            }
        }
        if let Some(v) = field(m, "report_label") {
            let path = "watch.report_label";
            w.report_label = v
                .as_str()
                .filter(|s| !s.trim().is_empty() && !s.contains(',') && s.len() <= 255)
                .map(str::to_string)
                .ok_or_else(|| {
                    self.err(
                        path,
                        format!(
                            "expected a label name (no commas, at most 255 bytes), got {}",
                            got(v)
                        ),
                    )
                })?;
        }
        if let Some(v) = m.get("pagerduty") {
            let path = "watch.pagerduty";
            let mut pd = PagerDutyConfig::default();
            if let Some(pm) = self.map(v, path, PAGERDUTY_KEYS)? {
                if let Some(v) = field(pm, "routing_key_env") {
                    pd.routing_key_env = self.env_name(v, &join(path, "routing_key_env"))?;
                }
                if let Some(v) = field(pm, "min_severity") {
                    pd.min_severity = self.severity(v, &join(path, "min_severity"))?;
                }
            }
            w.pagerduty = Some(pd);
        }
        Ok(w)
    }

    /// `report:` — detector thresholds and composite-score weights.
    fn report(&self, v: &Value, r: &mut crate::report::metrics::ReportRules) -> anyhow::Result<()> {
        let Some(m) = self.map(v, "report", REPORT_KEYS)? else {
            return Ok(());
        };
        if let Some(v) = field(m, "weights") {
            if let Some(w) = self.map(v, "report.weights", SCORE_KEYS)? {
                let slots: [(&str, &mut f64); 4] = [
                    ("throughput", &mut r.weights.throughput),
                    ("speed", &mut r.weights.speed),
                    ("reliability", &mut r.weights.reliability),
                    ("utilization", &mut r.weights.utilization),
                ];
                for (key, slot) in slots {
                    if let Some(v) = field(w, key) {
                        *slot = self.number(v, &join("report.weights", key), 0.0, 1.0)?;
                    }
                }
            }
        }
        let ratios: [(&str, &mut f64, f64, f64); 4] = [
            ("slow_factor", &mut r.slow_factor, 1.0, 100.0),
            ("underutilized", &mut r.underutilized, 0.0, 1.0),
            ("infra_failure_rate", &mut r.infra_failure_rate, 0.0, 1.0),
            (
                "bottleneck_utilization",
                &mut r.bottleneck_utilization,
                0.0,
                10.0,
            ),
        ];
        for (key, slot, lo, hi) in ratios {
            if let Some(v) = field(m, key) {
                *slot = self.number(v, &join("report", key), lo, hi)?;
            }
        }
        if let Some(v) = field(m, "bottleneck_wait_p95") {
            r.bottleneck_wait_p95_s = self.duration(v, "report.bottleneck_wait_p95")? as f64;
        }
        if let Some(v) = field(m, "min_jobs") {
            r.min_jobs = self.int(v, "report.min_jobs", 0, 1_000_000)?;
        }
        Ok(())
    }

    fn number(&self, v: &Value, path: &str, lo: f64, hi: f64) -> anyhow::Result<f64> {
        v.as_f64()
            .filter(|n| n.is_finite() && (lo..=hi).contains(n))
            .ok_or_else(|| {
                self.err(
                    path,
                    format!("expected a number from {lo} to {hi}, got {}", got(v)),
                )
            })
    }

    fn signed(&self, v: &Value, path: &str, lo: i64, hi: i64) -> anyhow::Result<i32> {
        v.as_i64()
            .filter(|n| (lo..=hi).contains(n))
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                self.err(
                    path,
                    format!("expected an integer from {lo} to {hi}, got {}", got(v)),
                )
            })
    }

    fn globs(&self, v: &Value, path: &str) -> anyhow::Result<Vec<Glob>> {
        let Value::Array(items) = v else {
            return Err(self.err(path, format!("expected a list of globs, got {}", got(v))));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, g)| self.glob(g, &format!("{path}[{i}]")))
            .collect()
    }

    fn items<'v>(&self, v: &'v Value, path: &str, what: &str) -> anyhow::Result<&'v [Value]> {
        match v {
            Value::Array(items) => Ok(items),
            other => Err(self.err(
                path,
                format!("expected a list of {what}, got {}", got(other)),
            )),
        }
    }

    /// `priority:` — each key replaces the default it names.
    fn priority(
        &self,
        v: &Value,
        p: &mut crate::fleet::priority::PriorityRules,
    ) -> anyhow::Result<()> {
        let Some(m) = self.map(v, "priority", PRIORITY_KEYS)? else {
            return Ok(());
        };
        if let Some(v) = field(m, "branches") {
            let path = "priority.branches";
            p.branches = self
                .items(v, path, "{glob, weight} maps")?
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let ip = format!("{path}[{i}]");
                    let Some(b) = self.map(item, &ip, BRANCH_KEYS)? else {
                        return Err(self.err(&ip, "expected a map with keys glob, weight"));
                    };
                    let glob = field(b, "glob")
                        .ok_or_else(|| self.err(&ip, "missing key \"glob\""))
                        .and_then(|g| self.glob(g, &join(&ip, "glob")))?;
                    let weight = field(b, "weight")
                        .ok_or_else(|| self.err(&ip, "missing key \"weight\""))
                        .and_then(|w| self.int(w, &join(&ip, "weight"), 0, 100))?;
                    Ok((glob, weight))
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = field(m, "roles") {
            if let Some(r) = self.map(v, "priority.roles", ROLE_KEYS)? {
                let levels = [
                    ("owner", 0),
                    ("maintainer", 1),
                    ("developer", 2),
                    ("reporter", 3),
                    ("guest", 4),
                ];
                for (key, i) in levels {
                    if let Some(v) = field(r, key) {
                        p.roles[i].1 = self.int(v, &join("priority.roles", key), 0, 100)?;
                    }
                }
                if let Some(v) = field(r, "unknown") {
                    p.unknown_role = self.int(v, "priority.roles.unknown", 0, 100)?;
                }
            }
        }
        if let Some(v) = field(m, "job_types") {
            let path = "priority.job_types";
            p.job_types = self
                .items(v, path, "{name, keywords, weight} maps")?
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let ip = format!("{path}[{i}]");
                    let Some(t) = self.map(item, &ip, JOB_TYPE_KEYS)? else {
                        return Err(
                            self.err(&ip, "expected a map with keys name, keywords, weight")
                        );
                    };
                    let name = field(t, "name")
                        .ok_or_else(|| self.err(&ip, "missing key \"name\""))
                        .and_then(|n| self.category(n, &join(&ip, "name")))?;
                    let kp = join(&ip, "keywords");
                    let keywords = match field(t, "keywords") {
                        Some(k) => self
                            .items(k, &kp, "keywords")?
                            .iter()
                            .enumerate()
                            .map(|(j, k)| {
                                self.string(k, &format!("{kp}[{j}]"))
                                    .map(|s| s.to_lowercase())
                            })
                            .collect::<anyhow::Result<Vec<_>>>()?,
                        None => Vec::new(),
                    };
                    let weight = field(t, "weight")
                        .ok_or_else(|| self.err(&ip, "missing key \"weight\""))
                        .and_then(|w| self.int(w, &join(&ip, "weight"), 0, 100))?;
                    Ok(crate::fleet::priority::JobType {
                        name,
                        keywords,
                        weight,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
        }
        let ints: [(&str, &mut u32); 3] = [
            ("other_branch", &mut p.other_branch),
            ("other_type", &mut p.other_type),
            ("non_production_cap", &mut p.non_production_cap),
        ];
        for (key, slot) in ints {
            if let Some(v) = field(m, key) {
                *slot = self.int(v, &join("priority", key), 0, 100)?;
            }
        }
        let signed: [(&str, &mut i32); 4] = [
            ("manual_bonus", &mut p.manual_bonus),
            ("retry_bonus", &mut p.retry_bonus),
            ("allow_failure_penalty", &mut p.allow_failure_penalty),
            ("experimental_penalty", &mut p.experimental_penalty),
        ];
        for (key, slot) in signed {
            if let Some(v) = field(m, key) {
                *slot = self.signed(v, &join("priority", key), -100, 100)?;
            }
        }
        if let Some(v) = field(m, "experimental_refs") {
            p.experimental_refs = self.globs(v, "priority.experimental_refs")?;
        }
        if let Some(v) = field(m, "production_refs") {
            p.production_refs = self.globs(v, "priority.production_refs")?;
        }
        if let Some(v) = field(m, "bands") {
            if let Some(b) = self.map(v, "priority.bands", BAND_KEYS)? {
                for (i, key) in BAND_KEYS.iter().enumerate() {
                    if let Some(v) = field(b, key) {
                        p.bands[i] = self.int(v, &join("priority.bands", key), 0, 100)?;
                    }
                }
                if !(p.bands[0] >= p.bands[1] && p.bands[1] >= p.bands[2]) {
                    return Err(self.err("priority.bands", "expected critical ≥ high ≥ medium"));
                }
            }
        }
        if let Some(v) = field(m, "sla") {
            if let Some(b) = self.map(v, "priority.sla", SLA_KEYS)? {
                for (i, key) in SLA_KEYS.iter().enumerate() {
                    if let Some(v) = field(b, key) {
                        p.sla_s[i] = self.duration(v, &join("priority.sla", key))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `routing:` — weights, carbon share by urgency, tie margin, protected refs.
    fn routing(&self, v: &Value, r: &mut crate::fleet::route::RoutingRules) -> anyhow::Result<()> {
        let Some(m) = self.map(v, "routing", ROUTING_KEYS)? else {
            return Ok(());
        };
        if let Some(v) = field(m, "weights") {
            if let Some(w) = self.map(v, "routing.weights", WEIGHT_KEYS)? {
                let slots: [(&str, &mut f64); 4] = [
                    ("utilization", &mut r.weights.utilization),
                    ("tag_match", &mut r.weights.tag_match),
                    ("headroom", &mut r.weights.headroom),
                    ("history", &mut r.weights.history),
                ];
                for (key, slot) in slots {
                    if let Some(v) = field(w, key) {
                        *slot = self.number(v, &join("routing.weights", key), 0.0, 1.0)?;
                    }
                }
                let w = &r.weights;
                if w.utilization + w.tag_match + w.headroom + w.history <= 0.0 {
                    return Err(self.err("routing.weights", "expected at least one weight above 0"));
                }
            }
        }
        if let Some(v) = field(m, "carbon") {
            if let Some(c) = self.map(v, "routing.carbon", URGENCY_KEYS)? {
                for (i, key) in URGENCY_KEYS.iter().enumerate() {
                    if let Some(v) = field(c, key) {
                        r.carbon[i] = self.number(v, &join("routing.carbon", key), 0.0, 1.0)?;
                    }
                }
            }
        }
        if let Some(v) = field(m, "margin") {
            r.margin = self.number(v, "routing.margin", 0.0, 1.0)?;
        }
        if let Some(v) = field(m, "protected_refs") {
            r.protected_refs = self.globs(v, "routing.protected_refs")?;
        }
        if let Some(v) = field(m, "reserve_scarce") {
            r.reserve_scarce = self.bool(v, "routing.reserve_scarce")?;
        }
        if let Some(v) = field(m, "trust") {
            if let Some(t) = self.map(v, "routing.trust", TRUST_KEYS)? {
                if let Some(v) = field(t, "supervised_threshold") {
                    r.trust.supervised_threshold =
                        Some(self.urgency(v, "routing.trust.supervised_threshold")?);
                }
            }
        }
        Ok(())
    }

    /// The list under `key` (empty when absent).
    fn list<'v>(&self, m: &'v Map<String, Value>, key: &str) -> anyhow::Result<&'v [Value]> {
        match field(m, key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => {
                Err(self.err(key, format!("expected a list of rules, got {}", got(other))))
            }
        }
    }

    fn history(&self, v: &Value) -> anyhow::Result<HistoryConfig> {
        let mut h = HistoryConfig::default();
        let Some(m) = self.map(v, "history", HISTORY_KEYS)? else {
            return Ok(h);
        };
        if let Some(v) = field(m, "enabled") {
            h.enabled = self.bool(v, "history.enabled")?;
        }
        let ints: [(&str, &mut u32, u32, u32); 5] = [
            ("runs", &mut h.runs, 1, 100),
            ("pages", &mut h.pages, 1, 10),
            ("traces", &mut h.traces, 0, 10),
            ("max_requests", &mut h.max_requests, 1, 200),
            ("min_failures", &mut h.min_failures, 1, 100),
        ];
        for (key, slot, lo, hi) in ints {
            if let Some(v) = field(m, key) {
                *slot = self.int(v, &join("history", key), lo, hi)?;
            }
        }
        Ok(h)
    }

    /// `job`, `stage`, `branch`, `category`: the criteria both rule kinds share.
    fn criteria(&self, m: &Map<String, Value>, path: &str) -> anyhow::Result<Criteria4> {
        let glob = |key: &str| -> anyhow::Result<Option<Glob>> {
            field(m, key)
                .map(|v| self.glob(v, &join(path, key)))
                .transpose()
        };
        Ok((
            glob("job")?,
            glob("stage")?,
            glob("branch")?,
            field(m, "category")
                .map(|v| self.category(v, &join(path, "category")))
                .transpose()?,
        ))
    }

    fn suppress_rule(&self, v: &Value, path: &str) -> anyhow::Result<SuppressRule> {
        let Some(m) = self.map(v, path, SUPPRESS_KEYS)? else {
            return Err(self.err(path, NEEDS_A_CRITERION));
        };
        let (job, stage, branch, category) = self.criteria(m, path)?;
        let allow_failure = field(m, "allow_failure")
            .map(|v| self.bool(v, &join(path, "allow_failure")))
            .transpose()?;
        let reason = field(m, "reason")
            .map(|v| self.string(v, &join(path, "reason")))
            .transpose()?;
        let rule = SuppressRule {
            job,
            stage,
            branch,
            category,
            allow_failure,
            reason,
        };
        if rule.job.is_none()
            && rule.stage.is_none()
            && rule.branch.is_none()
            && rule.category.is_none()
            && rule.allow_failure.is_none()
        {
            return Err(self.err(path, NEEDS_A_CRITERION));
        }
        Ok(rule)
    }

    fn severity_rule(&self, v: &Value, path: &str) -> anyhow::Result<SeverityRule> {
        let Some(m) = self.map(v, path, SEVERITY_KEYS)? else {
            return Err(self.err(
                path,
                format!(
                    "expected a map with keys {}, got nothing",
                    SEVERITY_KEYS.join(", ")
                ),
            ));
        };
        let (job, stage, branch, category) = self.criteria(m, path)?;
        let severity = match field(m, "severity") {
            Some(v) => self.severity(v, &join(path, "severity"))?,
            None => {
                return Err(self.err(
                    path,
                    "missing key \"severity\" (one of low, medium, high, critical)",
                ));
            }
        };
        Ok(SeverityRule {
            job,
            stage,
            branch,
            category,
            severity,
        })
    }

    fn notify(&self, v: &Value) -> anyhow::Result<NotifyConfig> {
        let mut n = NotifyConfig::default();
        let Some(m) = self.map(v, "notify", NOTIFY_KEYS)? else {
            return Ok(n);
        };
        // A present key enables the channel, even with no settings.
        if let Some(v) = m.get("slack") {
            n.slack = Some(self.channel(v, "notify.slack", Channel::slack())?);
        }
        if let Some(v) = m.get("webhook") {
            n.webhook = Some(self.channel(v, "notify.webhook", Channel::webhook())?);
        }
        if let Some(v) = m.get("issues") {
            n.issues = Some(self.issues(v)?);
        }
        Ok(n)
    }

    fn channel(&self, v: &Value, path: &str, mut c: Channel) -> anyhow::Result<Channel> {
        let Some(m) = self.map(v, path, CHANNEL_KEYS)? else {
            return Ok(c);
        };
        if let Some(v) = field(m, "url_env") {
            c.url_env = self.env_name(v, &join(path, "url_env"))?;
        }
        if let Some(v) = field(m, "min_severity") {
            c.min_severity = self.severity(v, &join(path, "min_severity"))?;
        }
        if let Some(v) = field(m, "cooldown") {
            c.cooldown_s = self.duration(v, &join(path, "cooldown"))?;
        }
        Ok(c)
    }

    /// The name of an environment variable. A URL here is a leaked secret:
    /// the message says so without repeating it.
    fn env_name(&self, v: &Value, path: &str) -> anyhow::Result<String> {
        let expected = "expected the name of an environment variable like MY_WEBHOOK_URL";
        match v.as_str() {
            Some(s) if s.contains("://") => Err(self.err(
                path,
                format!(
                    "{expected}, got a URL (keep the URL in a masked CI variable and name the variable here)"
                ),
            )),
            Some(s) if is_env_name(s) => Ok(s.to_string()),
            _ => Err(self.err(path, format!("{expected}, got {}", got(v)))),
        }
    }

    fn issues(&self, v: &Value) -> anyhow::Result<IssuesConfig> {
        let mut issues = IssuesConfig::default();
        let path = "notify.issues";
        let Some(m) = self.map(v, path, ISSUES_KEYS)? else {
            return Ok(issues);
        };
        if let Some(v) = field(m, "min_severity") {
            issues.min_severity = self.severity(v, &join(path, "min_severity"))?;
        }
        if let Some(v) = field(m, "labels") {
            let path = join(path, "labels");
            let Value::Array(items) = v else {
                return Err(self.err(
                    &path,
                    format!("expected a list of label names, got {}", got(v)),
                ));
            };
            issues.labels = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str()
                        .filter(|s| !s.trim().is_empty() && !s.contains(',') && s.len() <= 255)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            self.err(
                                &format!("{path}[{i}]"),
                                format!(
                                    "expected a label name (no commas, at most 255 bytes), got {}",
                                    got(item)
                                ),
                            )
                        })
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = field(m, "cooldown") {
            issues.cooldown_s = self.duration(v, &join(path, "cooldown"))?;
        }
        Ok(issues)
    }
}

impl Cx<'_> {
    /// A list of label names.
    fn labels(&self, v: &Value, path: &str) -> anyhow::Result<Vec<String>> {
        let Value::Array(items) = v else {
            return Err(self.err(
                path,
                format!("expected a list of label names, got {}", got(v)),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .filter(|s| !s.trim().is_empty() && !s.contains(',') && s.len() <= 255)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        self.err(
                            &format!("{path}[{i}]"),
                            format!(
                                "expected a label name (no commas, at most 255 bytes), got {}",
                                got(item)
                            ),
                        )
                    })
            })
            .collect()
    }
}

const NEEDS_A_CRITERION: &str =
    "a rule needs at least one of job, stage, branch, category, allow_failure";

type Criteria4 = (Option<Glob>, Option<Glob>, Option<Glob>, Option<String>);

/// A key's value; null counts as absent.
fn field<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 255
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{EXIT_INPUT, describe, exit_code};

    const EXAMPLE: &str = r#"
history: { enabled: true, runs: 20, pages: 2, traces: 3, max_requests: 20, min_failures: 2 }
upstream: { enabled: true }
suppress:
  - job: "docs:*"
    reason: docs builds are best effort
  - stage: lint
    branch: "renovate/*"
  - category: network_transient
    allow_failure: true
severity:
  - job: "deploy:*"
    branch: main
    severity: critical
notify:
  slack: { min_severity: high, cooldown: 6h }          # URL from $RUNNERIQ_SLACK_WEBHOOK_URL
  webhook: { url_env: MY_HOOK_URL, min_severity: medium, cooldown: 30m }
  issues: { min_severity: high, labels: [runneriq, ci-failure], cooldown: 1d }
"#;

    fn parse(text: &str) -> anyhow::Result<Config> {
        Config::from_yaml(text, Path::new(".runneriq.yml"))
    }

    /// The one-line message of a config that must not load.
    fn error(text: &str) -> String {
        let e = parse(text).unwrap_err();
        assert_eq!(exit_code(&e), EXIT_INPUT);
        let msg = describe(&e);
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.starts_with(".runneriq.yml: "), "{msg}");
        msg
    }

    fn glob(p: &str) -> Option<Glob> {
        Some(Glob::new(p).unwrap())
    }

    #[test]
    fn the_documented_example_loads() {
        let c = parse(EXAMPLE).unwrap();
        let want = Config {
            source: Some(PathBuf::from(".runneriq.yml")),
            history: HistoryConfig::default(),
            upstream: UpstreamConfig { enabled: true },
            suppress: vec![
                SuppressRule {
                    job: glob("docs:*"),
                    reason: Some("docs builds are best effort".into()),
                    ..SuppressRule::default()
                },
                SuppressRule {
                    stage: glob("lint"),
                    branch: glob("renovate/*"),
                    ..SuppressRule::default()
                },
                SuppressRule {
                    category: Some("network_transient".into()),
                    allow_failure: Some(true),
                    ..SuppressRule::default()
                },
            ],
            severity: vec![SeverityRule {
                job: glob("deploy:*"),
                branch: glob("main"),
                severity: Severity::Critical,
                ..SeverityRule::default()
            }],
            notify: NotifyConfig {
                slack: Some(Channel::slack()),
                webhook: Some(Channel {
                    url_env: "MY_HOOK_URL".into(),
                    min_severity: Severity::Medium,
                    cooldown_s: 1800,
                }),
                issues: Some(IssuesConfig {
                    min_severity: Severity::High,
                    labels: vec!["runneriq".into(), "ci-failure".into()],
                    cooldown_s: 86_400,
                }),
            },
            ..Config::default()
        };
        assert_eq!(c, want);
    }

    #[test]
    fn the_module_doc_example_loads() {
        let doc = include_str!("config.rs");
        let yaml: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.strip_prefix("//! ").unwrap_or("")))
            .collect();
        assert!(yaml.contains("min_failures"));
        let c = parse(&yaml).unwrap();
        assert_eq!(c.suppress.len(), 3);
        assert_eq!(c.severity[0].severity, Severity::Critical);
        assert_eq!(c.history, HistoryConfig::default());
        // The priority and routing sections of the doc restate the defaults
        // they name, except the shortened lists.
        let d = crate::fleet::priority::PriorityRules::default();
        assert_eq!(c.priority.branches.len(), 2);
        assert_eq!(c.priority.job_types.len(), 2);
        assert_eq!(
            (c.priority.roles, c.priority.bands, c.priority.sla_s),
            (d.roles, d.bands, d.sla_s)
        );
        assert_eq!(
            c.routing.weights,
            crate::fleet::route::RoutingRules::default().weights
        );
        assert_eq!(c.routing.protected_refs.len(), 1);
    }

    #[test]
    fn report_thresholds_are_configurable() {
        let c =
            parse("report: { slow_factor: 3, bottleneck_wait_p95: 5m, weights: { speed: 0.5 } }")
                .unwrap();
        assert_eq!(c.report.slow_factor, 3.0);
        assert_eq!(c.report.bottleneck_wait_p95_s, 300.0);
        assert_eq!(c.report.weights.speed, 0.5);
        assert_eq!(c.report.min_jobs, 5);
        let e = parse("report: { underutilized: 20 }")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            ".runneriq.yml: report.underutilized: expected a number from 0 to 1, got 20"
        );
    }

    #[test]
    fn watch_thresholds_and_pagerduty_are_configurable() {
        let c = parse("").unwrap();
        assert_eq!(c.watch, WatchConfig::default());
        assert_eq!(c.watch.rules.pending_s, 600);
        assert_eq!(c.watch.pagerduty, None);
        let c = parse(
            "watch: { stale: 45m, pending: 5m, cooldown: 2h, spike_factor: 3, paused: false, \
             labels: [fleet, ops], pagerduty: { min_severity: critical } }",
        )
        .unwrap();
        assert_eq!(c.watch.rules.stale_s, 2700);
        assert_eq!(c.watch.rules.pending_s, 300);
        assert_eq!(c.watch.rules.cooldown_s, 7200);
        assert_eq!(c.watch.rules.spike_factor, 3.0);
        assert!(!c.watch.rules.paused);
        assert_eq!(c.watch.labels, ["fleet", "ops"]);
        assert_eq!(
            c.watch.pagerduty,
            Some(PagerDutyConfig {
                routing_key_env: DEFAULT_PAGERDUTY_KEY_ENV.into(),
                min_severity: Severity::Critical,
            })
        );
        // A bare `pagerduty:` is on with its defaults.
        let c = parse("watch:\n  pagerduty:\n").unwrap();
        assert_eq!(c.watch.pagerduty, Some(PagerDutyConfig::default()));
        for (text, want) in [
            (
                "watch: { pending: 0 }",
                ".runneriq.yml: watch.pending: expected a duration above 0, like 30m",
            ),
            (
                "watch: { stale: soon }",
                ".runneriq.yml: watch.stale: expected a duration like 30m, 6h or 1d, got \"soon\"",
            ),
            (
                "watch: { pagerduty: { routing_key_env: \"https://events.pagerduty.com/x\" } }",
                ".runneriq.yml: watch.pagerduty.routing_key_env: expected the name of an environment variable like MY_WEBHOOK_URL, got a URL (keep the URL in a masked CI variable and name the variable here)",
            ),
            (
                "watch: { labels: [] }",
                ".runneriq.yml: watch.labels: expected at least one label",
            ),
            (
                "watch: { pager: {} }",
                ".runneriq.yml: watch: unknown key \"pager\" (expected stale, pending, cooldown, window, spike_factor, spike_min, min_jobs, infra_failures, paused, max_details, max_projects, labels, report_label, pagerduty)",
            ),
        ] {
            assert_eq!(error(text), want, "{text}");
        }
    }

    #[test]
    fn the_supervised_threshold_is_a_priority_class_in_any_case() {
        use crate::fleet::priority::Urgency;
        assert_eq!(parse("").unwrap().routing.trust.supervised_threshold, None);
        for (text, want) in [
            ("high", Urgency::High),
            ("CRITICAL", Urgency::Critical),
            ("Low", Urgency::Low),
        ] {
            let c = parse(&format!(
                "routing: {{ trust: {{ supervised_threshold: {text} }} }}"
            ))
            .unwrap();
            assert_eq!(c.routing.trust.supervised_threshold, Some(want));
        }
    }

    #[test]
    fn a_runneriq_6_config_is_named_as_such_with_the_migrate_command() {
        let msg = error("runneriq:\n  analyzer:\n    priority: {}\n");
        assert_eq!(
            msg,
            ".runneriq.yml: this is a RunnerIQ 6.x config (its top-level key is `runneriq:`), not a .runneriq.yml: convert it with `runneriq config migrate .runneriq.yml`, which writes .runneriq.yml and lists what has no equivalent"
        );
    }

    #[test]
    fn priority_and_routing_errors_name_the_key() {
        for (text, want) in [
            (
                "priority: { branches: [{ glob: main, weight: 200 }] }",
                ".runneriq.yml: priority.branches[0].weight: expected an integer from 0 to 100, got 200",
            ),
            (
                "priority: { sla: { low: soon } }",
                ".runneriq.yml: priority.sla.low: expected a duration like 30m, 6h or 1d, got \"soon\"",
            ),
            (
                "priority: { bands: { critical: 50, high: 70 } }",
                ".runneriq.yml: priority.bands: expected critical ≥ high ≥ medium",
            ),
            (
                "routing: { carbon: { low: 2 } }",
                ".runneriq.yml: routing.carbon.low: expected a number from 0 to 1, got 2",
            ),
            (
                "routing: { weigths: {} }",
                ".runneriq.yml: routing: unknown key \"weigths\" (expected weights, carbon, margin, protected_refs, reserve_scarce, trust)",
            ),
            (
                "routing: { trust: { supervised_threshold: urgent } }",
                ".runneriq.yml: routing.trust.supervised_threshold: expected a priority class: critical, high, medium or low, got \"urgent\"",
            ),
            (
                "priority: { job_types: [{ name: deploy, weight: 100, keywords: deploy }] }",
                ".runneriq.yml: priority.job_types[0].keywords: expected a list of keywords, got \"deploy\"",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert_eq!(e, want, "{text}");
        }
    }

    #[test]
    fn empty_and_null_are_the_default() {
        for text in ["", "  \n", "# nothing yet\n", "null", "~", "---\n"] {
            let c = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(Config { source: None, ..c }, Config::default(), "{text:?}");
        }
        let c = parse("history:\nnotify: {}\n").unwrap();
        assert_eq!(c.history, HistoryConfig::default());
        assert_eq!(c.notify, NotifyConfig::default());
    }

    #[test]
    fn a_bare_channel_is_on_with_its_defaults() {
        let c = parse("notify:\n  slack:\n  webhook: {}\n  issues:\n").unwrap();
        assert_eq!(c.notify.slack, Some(Channel::slack()));
        assert_eq!(c.notify.webhook.unwrap().url_env, "RUNNERIQ_WEBHOOK_URL");
        assert_eq!(c.notify.issues, Some(IssuesConfig::default()));
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("90s", 90),
            ("30m", 1800),
            ("6h", 21_600),
            ("1d", 86_400),
            ("1h30m", 5400),
            ("0", 0),
            ("120", 120),
        ] {
            assert_eq!(parse_duration(text), Some(secs), "{text}");
        }
        for bad in [
            "",
            "soon",
            "1h30",
            "h",
            "1x",
            "-5m",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let c = parse("notify: { slack: { cooldown: 90 }, issues: { cooldown: 0 } }").unwrap();
        assert_eq!(c.notify.slack.unwrap().cooldown_s, 90);
        assert_eq!(c.notify.issues.unwrap().cooldown_s, 0);
    }

    #[test]
    fn errors_name_the_file_the_key_path_and_the_expectation() {
        let cases = [
            (
                "notify:\n  slack: { cooldown: soon }\n",
                r#".runneriq.yml: notify.slack.cooldown: expected a duration like 30m, 6h or 1d, got "soon""#,
            ),
            (
                "history:\n  runs: many\n",
                r#".runneriq.yml: history.runs: expected an integer from 1 to 100, got "many""#,
            ),
            (
                "suppress:\n  - job: a\n  - jobs: b\n",
                r#".runneriq.yml: suppress[1]: unknown key "jobs" (expected job, stage, branch, category, allow_failure, reason)"#,
            ),
            (
                "suppress:\n  - reason: why not\n",
                ".runneriq.yml: suppress[0]: a rule needs at least one of job, stage, branch, category, allow_failure",
            ),
            (
                "suppress:\n  - {}\n",
                ".runneriq.yml: suppress[0]: a rule needs at least one of job, stage, branch, category, allow_failure",
            ),
            (
                "severity:\n  - job: x\n    severity: urgent\n",
                r#".runneriq.yml: severity[0].severity: expected one of low, medium, high, critical, got "urgent""#,
            ),
            (
                "histroy: {}\n",
                r#".runneriq.yml: unknown key "histroy" (expected history, upstream, suppress, severity, notify, priority, routing, report, watch)"#,
            ),
            (
                "- history\n",
                ".runneriq.yml: expected a map with keys history, upstream, suppress, severity, notify, priority, routing, report, watch, got a list",
            ),
            (
                "history:\n  traces: -1\n",
                ".runneriq.yml: history.traces: expected an integer from 0 to 10, got -1",
            ),
            (
                "history:\n  max_requests: 201\n",
                ".runneriq.yml: history.max_requests: expected an integer from 1 to 200, got 201",
            ),
            (
                "notify:\n  issues: { cooldown: -30 }\n",
                ".runneriq.yml: notify.issues.cooldown: expected a duration like 30m, 6h or 1d, got -30",
            ),
            (
                "upstream: { enabled: yes please }\n",
                r#".runneriq.yml: upstream.enabled: expected true or false, got "yes please""#,
            ),
            (
                "suppress: { job: x }\n",
                ".runneriq.yml: suppress: expected a list of rules, got a map",
            ),
            (
                "severity:\n  - job: x\n",
                r#".runneriq.yml: severity[0]: missing key "severity" (one of low, medium, high, critical)"#,
            ),
            (
                "notify:\n  issues: { labels: runneriq }\n",
                ".runneriq.yml: notify.issues.labels: expected a list of label names, got \"runneriq\"",
            ),
            (
                "notify:\n  issues: { labels: [ok, 'a,b'] }\n",
                ".runneriq.yml: notify.issues.labels[1]: expected a label name (no commas, at most 255 bytes), got \"a,b\"",
            ),
            (
                "notify:\n  email: {}\n",
                r#".runneriq.yml: notify: unknown key "email" (expected slack, webhook, issues)"#,
            ),
            (
                "suppress:\n  - category: 'not a category'\n",
                r#".runneriq.yml: suppress[0].category: expected a category id like network_transient, got "not a category""#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(error(text), want, "{text}");
        }

        let msg = error("suppress:\n  - job: a\n  - stage: b\n  - job: '[abc'\n");
        assert!(
            msg.starts_with(r#".runneriq.yml: suppress[2].job: invalid glob "[abc": unclosed `[`"#),
            "{msg}"
        );
    }

    #[test]
    fn a_url_in_url_env_is_refused_without_repeating_it() {
        let msg = error(
            "notify:\n  slack: { url_env: 'https://hooks.slack.com/services/T0/B0/secret' }\n",
        );
        assert!(
            msg.contains("notify.slack.url_env") && msg.contains("got a URL"),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
        let msg = error("notify:\n  webhook: { url_env: 'my-hook' }\n");
        assert!(
            msg.contains(r#"notify.webhook.url_env: expected the name of an environment variable"#),
            "{msg}"
        );
        assert!(msg.ends_with(r#"got "my-hook""#), "{msg}");
    }

    #[test]
    fn yaml_syntax_errors_are_one_line_with_a_position() {
        let msg = error("history: { runs: 3\nsuppress: [\n");
        assert!(msg.chars().any(|c| c.is_ascii_digit()), "{msg}");
    }

    #[test]
    fn rules_match_when_every_given_criterion_holds() {
        let c = parse(EXAMPLE).unwrap();
        let [docs, lint, net] = &c.suppress[..] else {
            panic!()
        };
        assert!(docs.matches("docs:html", "test", None, None, false));
        assert!(!docs.matches("doc", "test", None, None, false));
        assert!(lint.matches("fmt", "lint", Some("renovate/serde-1.x"), None, false));
        assert!(!lint.matches("fmt", "lint", Some("main"), None, false));
        assert!(
            !lint.matches("fmt", "lint", None, None, false),
            "branch unknown"
        );
        assert!(net.matches("x", "y", None, Some("network_transient"), true));
        assert!(!net.matches("x", "y", None, Some("network_transient"), false));
        assert!(!net.matches("x", "y", None, None, true));

        let sev = &c.severity[0];
        assert!(sev.matches("deploy:prod", "deploy", Some("main"), None));
        assert!(!sev.matches("deploy:prod", "deploy", Some("main-2"), None));
        assert!(!sev.matches("deploy:prod", "deploy", None, None));
        assert!(SeverityRule::default().matches("a", "b", None, None));
    }

    #[test]
    fn load_reports_unreadable_files() {
        let dir = temp_dir("load");
        let big = dir.join("big.yml");
        std::fs::write(&big, vec![b'#'; MAX_SIZE + 1]).unwrap();
        let msg = describe(&Config::load(&big).unwrap_err());
        assert!(msg.contains("big.yml") && msg.contains("1 MiB"), "{msg}");

        let bin = dir.join("bin.yml");
        std::fs::write(&bin, b"history: \xff\n").unwrap();
        let msg = describe(&Config::load(&bin).unwrap_err());
        assert!(msg.contains("bin.yml") && msg.contains("UTF-8"), "{msg}");

        let msg = describe(&Config::load(&dir).unwrap_err());
        assert!(msg.contains("cannot read"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn discover_explicit_must_exist() {
        let missing = Path::new("/nonexistent/runneriq/config.yml");
        let e = Config::discover(Some(missing), None).unwrap_err();
        assert_eq!(exit_code(&e), EXIT_INPUT);
        let msg = describe(&e);
        assert!(
            msg.contains("/nonexistent/runneriq/config.yml") && msg.contains("not found"),
            "{msg}"
        );
    }

    #[test]
    fn discover_finds_the_file_in_the_project_dir() {
        let dir = temp_dir("discover");
        let c = Config::discover(None, Some(&dir)).unwrap();
        assert_eq!(c, Config::default());

        std::fs::write(dir.join(".runneriq.yaml"), "history: { runs: 7 }\n").unwrap();
        let c = Config::discover(None, Some(&dir)).unwrap();
        assert_eq!(c.history.runs, 7);
        assert_eq!(c.source, Some(dir.join(".runneriq.yaml")));

        std::fs::write(dir.join(".runneriq.yml"), "history: { runs: 5 }\n").unwrap();
        let c = Config::discover(None, Some(&dir)).unwrap();
        assert_eq!(c.history.runs, 5, ".yml comes first");
        assert_eq!(c.source, Some(dir.join(".runneriq.yml")));

        let explicit = dir.join(".runneriq.yaml");
        let c = Config::discover(Some(&explicit), Some(&dir)).unwrap();
        assert_eq!(c.history.runs, 7, "explicit wins");

        std::fs::write(dir.join(".runneriq.yml"), "history: { runs: 0 }\n").unwrap();
        let msg = describe(&Config::discover(None, Some(&dir)).unwrap_err());
        assert!(msg.contains(".runneriq.yml: history.runs"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "runneriq-config-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
