//! Command-line interface: every command and flag is defined here.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::classify::{self, Catalog, ClassifyOptions};
use crate::error::{self, input};

#[derive(Parser, Debug)]
#[command(
    name = "runneriq",
    version,
    about = "Explains failed GitLab CI jobs: what broke, why, and what to do",
    long_about = "Explains failed GitLab CI jobs: what broke, why, and what to do.\n\n\
Exit codes: 0 success, 1 runtime error (network, GitLab), 2 usage or input error.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Classify CI logs: category, confidence and the lines that prove it.
    Classify(ClassifyArgs),
    /// Check the token, project access, note permission and rules, and say what to fix.
    Doctor(DoctorArgs),
    /// Diagnose an embedded failed pipeline, offline: what `diagnose` would post.
    Demo(DemoArgs),
    /// Explain a failed pipeline in one note on its merge request (or commit),
    /// edited in place on every re-run.
    Diagnose(DiagnoseArgs),
    /// Which runner should take each waiting job, and why: priority,
    /// eligibility, score, capacity.
    Route(RouteArgs),
    /// RunnerIQ 6.x's one-shot `run`: fleet → pending jobs → priorities →
    /// routing (→ tag plan), i.e. `runneriq route` with the original's flags.
    #[command(long_about = RUN_ABOUT)]
    Run(RunArgs),
    /// Why one job got its priority and its runner: every factor, every runner.
    Explain(ExplainArgs),
    /// The runner fleet as fleet JSON (`fleet export`).
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// The repository config: `config migrate` turns RunnerIQ 6.x's
    /// runneriq.yaml into .runneriq.yml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The weekly report: runner performance, queue wait by priority, flaky
    /// jobs, failure trends, carbon; printed, or published as an issue.
    Report(ReportArgs),
    /// Save a window of history (what `report` reads) as a .json.gz file.
    Snapshot(SnapshotArgs),
    /// One check of the runner fleet's health for a scheduled pipeline:
    /// runners offline, stale or paused, jobs pending and why, queue-wait
    /// spikes, infrastructure failures; one fleet-health issue edited in
    /// place, Slack, webhook and PagerDuty alerts with cooldowns.
    Watch(WatchArgs),
    /// Replay the history under fifo, priority-aware and carbon-aware
    /// dispatch: queue wait by class, makespan, CO₂e, and the model's error.
    Simulate(SimulateArgs),
    /// Apply a tag plan written by `route --mode supervised --plan FILE`
    /// (dry run unless --execute).
    Apply(ApplyArgs),
    /// Remove every `runneriq:` tag from every runner (dry run unless --execute).
    ResetTags(ResetTagsArgs),
    /// Show the audit log: recommendations and tag changes.
    Audit(AuditArgs),
}

/// Where `route` and `explain` read jobs, runners and history.
#[derive(Args, Debug, Clone)]
pub struct RouteSources {
    /// Jobs to route: a JSON array of GitLab job objects (as `GET
    /// /projects/:id/jobs` returns them). Without it, the project's pending,
    /// created and running jobs are read from GitLab.
    #[arg(long, value_name = "FILE")]
    pub jobs: Option<PathBuf>,

    /// The fleet: a JSON array of runner objects (`GET /runners/:id`), each
    /// optionally with a `runneriq` object (concurrent, zone, power_watts,
    /// cost_per_hour, running). Without it, the project's runners are read
    /// from GitLab (Maintainer role).
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_FLEET")]
    pub fleet: Option<PathBuf>,

    /// Finished jobs (a jobs JSON array) for the runners' history. Default:
    /// the finished jobs among --jobs, or the project's last 300 from GitLab.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// Project id or path, for reading from GitLab [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID].
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Route the jobs of this pipeline instead of the project's waiting jobs.
    #[arg(long, value_name = "ID")]
    pub pipeline: Option<u64>,

    /// GitLab API base URL [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// The default branch (priority 100) [env: CI_DEFAULT_BRANCH].
    #[arg(long, value_name = "NAME")]
    pub default_branch: Option<String>,

    /// A snapshot (`runneriq snapshot`): its jobs, history and fleet, instead
    /// of the API (finished jobs are routed as if they were waiting).
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,

    /// Every job's timeout, for the runners' `maximum_timeout` (e.g. 1h).
    /// Default: the project's job timeout when reading from GitLab.
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    pub job_timeout: Option<u64>,

    /// The RunnerIQ config with `priority:` and `routing:` sections.
    /// Default: `.runneriq.yml` in $CI_PROJECT_DIR or the current directory.
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_CONFIG")]
    pub config: Option<PathBuf>,

    /// Let any job take a scarce runner's slot (a GPU, ARM or deploy runner
    /// that also has generic tags) even when a waiting job can only run
    /// there; by default those slots are kept for such jobs. Same as
    /// `routing: { reserve_scarce: false }` in `.runneriq.yml`.
    #[arg(long)]
    pub no_reserve_scarce: bool,
}

impl RouteSources {
    pub fn resolve(&self) -> crate::fleet::command::Sources {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        crate::fleet::command::Sources {
            jobs: self.jobs.clone(),
            fleet: self.fleet.clone(),
            history: self.history.clone(),
            project: self
                .project
                .clone()
                .or_else(|| crate::gitlab::project_from_env(|k| std::env::var(k).ok())),
            pipeline: self.pipeline,
            gitlab_url: self.gitlab_url.clone(),
            default_branch: self
                .default_branch
                .clone()
                .or_else(|| var("CI_DEFAULT_BRANCH")),
            config: self.config.clone(),
            job_timeout: self.job_timeout,
            snapshot: self.snapshot.clone(),
            no_reserve_scarce: self.no_reserve_scarce,
            embedded: None,
        }
    }
}

#[derive(Args, Debug)]
pub struct RouteArgs {
    #[command(flatten)]
    pub sources: RouteSources,

    /// Output format.
    #[arg(long, value_enum, default_value = "md", env = "RUNNERIQ_FORMAT")]
    pub format: crate::publish::format::NoteFormat,

    /// How far RunnerIQ may act: `advisory` recommends (tag changes are
    /// listed as "would change"), `supervised` writes a plan (--plan FILE)
    /// for `runneriq apply` (with a --supervised-threshold, changes below it
    /// are applied by the run with --execute), `autonomous` applies tag
    /// changes itself (with --execute; without it, a dry run).
    #[arg(long, value_enum, default_value = "advisory", env = "RUNNERIQ_MODE")]
    pub mode: crate::fleet::command::TrustMode,

    /// Supervised mode: tag changes whose waiting jobs are all below this
    /// priority class are applied by the run (with --execute; else a dry
    /// run), those affecting a job at or above it go to the --plan file for
    /// review. Default: `routing.trust.supervised_threshold` in
    /// .runneriq.yml, else none (every change goes to the plan).
    #[arg(long, value_name = "CLASS", value_parser = parse_class)]
    pub supervised_threshold: Option<crate::fleet::priority::Urgency>,

    /// Plan `runneriq:` tag changes (the tag bridge) in advisory mode too;
    /// supervised and autonomous always plan them.
    /// (`RUNNERIQ_TAGS`: empty, 0, false, no or off mean no.)
    #[arg(
        long,
        env = "RUNNERIQ_TAGS",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub tags: bool,

    /// Write the tag plan here (JSON, written whole or not at all), for a
    /// later `runneriq apply FILE`. Supervised and autonomous modes.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// Apply the tag changes to GitLab (`PUT /runners/:id`). Autonomous mode
    /// only; needs the live fleet (--project and a token).
    #[arg(long)]
    pub execute: bool,

    /// Share of the online runners with a known carbon intensity that get
    /// `runneriq:green` (rounded, at least one).
    #[arg(long, value_name = "SHARE", default_value_t = 0.34, value_parser = parse_share)]
    pub green_share: f64,

    /// Lease of the tags RunnerIQ writes (`runneriq:until:`), e.g. 6h, 90m.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_ttl)]
    pub tag_ttl: u64,

    /// Append recommendations and tag changes to this JSON Lines file.
    /// Default: `runneriq-audit.jsonl` in the current directory when
    /// --execute or --plan is used, else none.
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_AUDIT")]
    pub audit: Option<PathBuf>,
}

const RUN_ABOUT: &str = "RunnerIQ 6.x's one-shot command, kept for its users: reads the fleet \
and the pending jobs, scores their priorities and routes them (and, in supervised or autonomous \
mode, plans the runneriq: tag changes), exactly as `runneriq route` does, which it runs. The \
original's flags map onto route's: --dry-run is accepted (route writes nothing without \
--execute anyway), --mock routes an embedded demo fleet and jobs offline instead of GitLab's, \
--output json is --format json. 6.x's GITLAB_URL, GITLAB_TOKEN and GITLAB_PROJECT_ID are read \
after our own flags and variables. Not carried over: the polling loop (one run per call), \
--mode analyze-only (use --mode advisory).";

/// `runneriq run`: `route` under RunnerIQ 6.x's flag spellings.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub route: RouteArgs,

    /// 6.x's dry run: accepted, and the default anyway (nothing is written
    /// without --execute).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,

    /// Route an embedded demo fleet and its waiting jobs, offline (6.x's
    /// mock mode), as of the demo's time (2026-01-01 10:00 UTC).
    #[arg(
        long,
        conflicts_with_all = ["jobs", "fleet", "history", "project", "pipeline", "snapshot", "gitlab_url", "execute"]
    )]
    pub mock: bool,

    /// 6.x's spelling of --format (wins over it): md or json.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output: Option<crate::publish::format::NoteFormat>,
}

impl RunArgs {
    fn options(self) -> Result<crate::fleet::command::RouteOptions, crate::error::InputError> {
        let mock = self.mock;
        let output = self.output;
        if mock && self.route.mode == crate::fleet::command::TrustMode::Autonomous {
            return Err(crate::error::InputError(
                "--mock routes an embedded demo fleet that is not in GitLab, and --mode \
                 autonomous changes the live fleet's tags: use --mode advisory or supervised"
                    .into(),
            ));
        }
        let mut opts = self.route.options();
        if let Some(f) = output {
            opts.format = f;
        }
        if mock {
            opts.sources.project = None;
            opts.sources.embedded = Some(crate::fleet::command::Embedded {
                origin: crate::demo::ROUTE_ORIGIN,
                fleet: crate::demo::ROUTE_FLEET,
                jobs: crate::demo::ROUTE_JOBS,
                now: crate::demo::ROUTE_NOW,
            });
        }
        Ok(opts)
    }
}

fn parse_class(s: &str) -> Result<crate::fleet::priority::Urgency, String> {
    crate::fleet::priority::Urgency::ALL
        .into_iter()
        .find(|u| u.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("expected critical, high, medium or low, got {s:?}"))
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("expected a share above 0 and at most 1, got {s:?}")),
    }
}

/// A positive duration (`90m`, `2h`, `3600`) in seconds.
fn parse_seconds(s: &str) -> Result<u64, String> {
    crate::config::parse_duration(s)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("expected a duration such as 1h, 90m or 3600, got {s:?}"))
}

fn parse_ttl(s: &str) -> Result<u64, String> {
    match crate::config::parse_duration(s) {
        Some(v) if v >= 60 => Ok(v),
        Some(_) => Err("a lease shorter than a minute would expire before it is used".into()),
        None => Err(format!(
            "expected a duration such as 6h, 90m or 3600, got {s:?}"
        )),
    }
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The plan file (`route --mode supervised --plan FILE`).
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,

    /// Send the PUTs; without it, print what would be sent.
    #[arg(long)]
    pub execute: bool,

    /// GitLab API base URL [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Append the tag changes to this JSON Lines file. Default:
    /// `runneriq-audit.jsonl` in the current directory with --execute.
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_AUDIT")]
    pub audit: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "md", env = "RUNNERIQ_FORMAT")]
    pub format: crate::publish::format::NoteFormat,
}

#[derive(Args, Debug)]
pub struct ResetTagsArgs {
    /// Project id or path whose runners are reset [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID].
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Every runner of the instance (needs an administrator's token).
    #[arg(long, conflicts_with = "project")]
    pub all: bool,

    /// GitLab API base URL [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Send the PUTs; without it, print what would be sent.
    #[arg(long)]
    pub execute: bool,

    /// Append the tag changes to this JSON Lines file. Default:
    /// `runneriq-audit.jsonl` in the current directory with --execute.
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_AUDIT")]
    pub audit: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "md", env = "RUNNERIQ_FORMAT")]
    pub format: crate::publish::format::NoteFormat,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The audit log [env: RUNNERIQ_AUDIT; default: runneriq-audit.jsonl].
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Only entries this recent, e.g. 7d, 12h, 30m.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    /// Output format: a Markdown table, or the entries as a JSON array.
    #[arg(long, value_enum, default_value = "md", env = "RUNNERIQ_FORMAT")]
    pub format: crate::publish::format::NoteFormat,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The job to explain (its id).
    #[arg(value_name = "JOB_ID")]
    pub job: u64,

    #[command(flatten)]
    pub sources: RouteSources,

    /// Output format.
    #[arg(long, value_enum, default_value = "md", env = "RUNNERIQ_FORMAT")]
    pub format: crate::publish::format::NoteFormat,
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub sources: RouteSources,

    /// With --project: the window of history, ending now.
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub since: Option<String>,

    /// `carbon` policy: how long a LOW job may wait for the cleanest runner.
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = parse_seconds)]
    pub carbon_wait: u64,

    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: crate::publish::format::ReportFormat,

    /// Whether the Markdown draws its chart: `auto` and `xychart` draw a bar
    /// chart (`xychart-beta`, GitLab 16.9 and later) when the policies' waits
    /// differ by more than the replay's error; `pie` and `table` draw none.
    #[arg(long, value_enum, default_value = "auto", env = "RUNNERIQ_CHARTS")]
    pub charts: crate::publish::mermaid::ChartMode,
}

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// Write fleet JSON from GitLab: the project's runners (Maintainer), or
    /// with --all every runner of the instance (administrator).
    Export(FleetExportArgs),
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Write the .runneriq.yml equivalent of RunnerIQ 6.x's runneriq.yaml,
    /// and list, key by key, what has no equivalent and why.
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// RunnerIQ 6.x's config file (top-level key `runneriq:`).
    #[arg(value_name = "RUNNERIQ_YAML")]
    pub input: PathBuf,

    /// Where to write our config; `-` for stdout (the report then goes to
    /// stderr). Default: .runneriq.yml in the current directory.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Replace the output file if it exists (by default it is left alone and
    /// the command fails).
    #[arg(long)]
    pub force: bool,
}

impl MigrateArgs {
    fn options(self) -> crate::migrate::MigrateOptions {
        crate::migrate::MigrateOptions {
            input: self.input,
            output: self.output,
            force: self.force,
        }
    }
}

#[derive(Args, Debug)]
pub struct FleetExportArgs {
    /// Project id or path [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID].
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Every runner of the instance (needs an administrator's token).
    #[arg(long, conflicts_with = "project")]
    pub all: bool,

    /// GitLab API base URL [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Write here instead of stdout (written whole or not at all).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain text for a terminal.
    Text,
    /// Markdown, as in a merge request note.
    Md,
    /// One JSON object per input (JSON Lines).
    Json,
}

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Log files (plain or .gz); `-` reads stdin.
    #[arg(value_name = "FILE", required_unless_present_any = ["job", "print_rules"])]
    pub files: Vec<String>,

    /// Classify a job's log straight from GitLab, with the job's
    /// `failure_reason` (needs a token: RUNNERIQ_TOKEN or GITLAB_TOKEN).
    #[arg(long, value_name = "ID", conflicts_with = "files")]
    pub job: Option<u64>,

    /// Project id or path of `--job` [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID].
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// GitLab API base URL, e.g. https://gitlab.example.com [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text", env = "RUNNERIQ_FORMAT")]
    pub format: Format,

    /// Extra rule files that extend or override the built-in catalog (repeatable).
    #[arg(
        long = "rules",
        value_name = "FILE",
        env = "RUNNERIQ_RULES",
        value_delimiter = ','
    )]
    pub rules: Vec<PathBuf>,

    /// Evidence lines to show per log.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub max_evidence: u16,

    /// GitLab's `failure_reason` for the job (e.g. `runner_system_failure`), when known.
    #[arg(long, value_name = "REASON")]
    pub failure_reason: Option<String>,

    /// Print the built-in rule catalog (YAML) and exit.
    #[arg(long, exclusive = true)]
    pub print_rules: bool,

    /// With --format json: every candidate line with its features and score
    /// (`ranked`), for training the line model (tests/eval/ranker.py).
    #[arg(long, hide = true)]
    pub dump_candidates: bool,

    /// LLM second opinion: `auto` asks the configured provider
    /// (ANTHROPIC_API_KEY or RUNNERIQ_LLM_URL) when the rules' confidence is
    /// below RUNNERIQ_LLM_THRESHOLD (default 0.5); `off` never asks.
    #[arg(long, value_enum, default_value = "auto")]
    pub llm: LlmMode,
}

/// Whether an LLM may be asked for a second opinion.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmMode {
    /// Only when a provider is configured and the rules are unsure.
    Auto,
    /// Never.
    Off,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// What to show: `diagnose` (the merge request note) or `report` (the
    /// weekly report of an embedded week of history).
    #[arg(value_enum, default_value = "diagnose")]
    pub what: DemoWhat,

    /// `md`: as it would be posted; `json`: the data it renders; `html`: the
    /// report's page (report only).
    #[arg(long, value_enum, default_value = "md")]
    pub format: crate::publish::format::ReportFormat,

    /// Directory with a `note.md.j2` that replaces the built-in template.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// `report`: which Mermaid charts the Markdown draws (`auto`: bar charts,
    /// as GitLab 16.9 and later draw them; see `runneriq report --help`).
    #[arg(long, value_enum, default_value = "auto", env = "RUNNERIQ_CHARTS")]
    pub charts: crate::publish::mermaid::ChartMode,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoWhat {
    Diagnose,
    Report,
}

/// Where `report` and `snapshot` read the history.
#[derive(Args, Debug, Clone)]
pub struct HistorySourceArgs {
    /// Project id or path [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID]; with --group, the project
    /// that holds the published issue.
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Every project of this group (subgroups included), read 4 at a time.
    #[arg(long, value_name = "ID|PATH")]
    pub group: Option<String>,

    /// GitLab API base URL [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// The window, ending now: 7d, 24h, 90m.
    #[arg(long, value_name = "DURATION", conflicts_with = "from")]
    pub since: Option<String>,

    /// The window's start: 2026-11-16 (UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,

    /// The window's end (default now).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,

    /// Fleet JSON (slots, zones and power for utilization and carbon).
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_FLEET")]
    pub fleet: Option<PathBuf>,

    /// Pages of 100 jobs read at most.
    #[arg(long, value_name = "N", default_value_t = crate::report::command::DEFAULT_MAX_PAGES)]
    pub max_pages: usize,

    /// Script-failure logs classified for the failure trends, at most.
    #[arg(long, value_name = "N", default_value_t = crate::report::command::DEFAULT_TRACES)]
    pub traces: usize,

    /// The default branch's pipelines whose unit test reports are read for
    /// the flakiest tests (the newest of the window; 1 request each, 2 when
    /// a test failed), at most; 0 reads none.
    #[arg(long, value_name = "N", default_value_t = crate::report::command::DEFAULT_TEST_REPORTS)]
    pub test_reports: usize,

    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,

    /// The default branch (priority) [env: CI_DEFAULT_BRANCH].
    #[arg(long, value_name = "NAME")]
    pub default_branch: Option<String>,

    /// The RunnerIQ config (`priority:` rules for the queue-wait classes).
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_CONFIG")]
    pub config: Option<PathBuf>,
}

impl HistorySourceArgs {
    pub fn resolve(&self, snapshots: Vec<PathBuf>) -> crate::report::command::HistoryArgs {
        crate::report::command::HistoryArgs {
            project: self.project.clone(),
            gitlab_url: self.gitlab_url.clone(),
            since: self.since.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            fleet: self.fleet.clone(),
            snapshots,
            max_pages: self.max_pages,
            traces: self.traces,
            test_reports: self.test_reports,
            quiet: self.quiet,
            default_branch: self.default_branch.clone().or_else(|| {
                std::env::var("CI_DEFAULT_BRANCH")
                    .ok()
                    .filter(|v| !v.is_empty())
            }),
            config: self.config.clone(),
            group: self.group.clone(),
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishTo {
    /// One issue per project per ISO week, created or updated in place.
    Issue,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub source: HistorySourceArgs,

    /// Read these snapshots (`runneriq snapshot`) instead of the API; several
    /// are merged.
    #[arg(long = "snapshot", value_name = "FILE")]
    pub snapshots: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: crate::publish::format::ReportFormat,

    /// Publish the report.
    #[arg(long, value_enum)]
    pub publish: Option<PublishTo>,

    /// With --publish: print the issue instead of writing it.
    #[arg(long, env = "RUNNERIQ_DRY_RUN", value_parser = clap::builder::FalseyValueParser::new())]
    pub dry_run: bool,

    /// Write the report here (whole or not at all) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The tag bridge's audit log (`route --audit`): its activity in the
    /// window is reported. A missing file is skipped.
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_AUDIT")]
    pub audit: Option<PathBuf>,

    /// Labels of the report issue; the first finds it again.
    #[arg(long, value_delimiter = ',', default_value = "runneriq-report")]
    pub labels: Vec<String>,

    /// Which Mermaid charts the Markdown draws: `auto` asks the GitLab its
    /// version (`CI_SERVER_VERSION` in its pipelines, else `GET /version`)
    /// and draws bar charts (`xychart-beta`) from GitLab 16.9 on, pie charts
    /// before; `xychart`, `pie` (pie charts, the rest as tables) and `table`
    /// (no chart) choose. See README, "Charts and GitLab versions".
    #[arg(long, value_enum, default_value = "auto", env = "RUNNERIQ_CHARTS")]
    pub charts: crate::publish::mermaid::ChartMode,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// GitLab API base URL [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// The project whose runners are watched and where the fleet-health
    /// issue lives [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID].
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Watch this group's runners (Maintainer of the group) and the pending
    /// jobs of its most active projects (`watch.max_projects`).
    #[arg(long, value_name = "ID|PATH", conflicts_with = "all_runners")]
    pub group: Option<String>,

    /// Watch every runner of the instance (an administrator's token).
    #[arg(long)]
    pub all_runners: bool,

    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: crate::publish::format::NoteFormat,

    /// Print what would be posted and sent; write and send nothing.
    #[arg(long, env = "RUNNERIQ_DRY_RUN", value_parser = clap::builder::FalseyValueParser::new())]
    pub dry_run: bool,

    /// Check an embedded demo fleet and its jobs offline (as of
    /// 2026-01-01 10:10 UTC): nothing is read from or written to GitLab.
    #[arg(long)]
    pub mock: bool,

    /// The config file [env: RUNNERIQ_CONFIG; default: .runneriq.yml in
    /// CI_PROJECT_DIR or the current directory].
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_CONFIG")]
    pub config: Option<PathBuf>,

    /// The default branch (priority classes, protected refs) [env:
    /// CI_DEFAULT_BRANCH; else read from the project].
    #[arg(long, value_name = "BRANCH")]
    pub default_branch: Option<String>,
}

impl WatchArgs {
    fn options(self) -> crate::watch::command::WatchOptions {
        crate::watch::command::WatchOptions {
            gitlab_url: self.gitlab_url,
            project: if self.mock { None } else { self.project },
            group: if self.mock { None } else { self.group },
            all_runners: self.all_runners && !self.mock,
            format: Some(self.format),
            dry_run: self.dry_run || self.mock,
            config: self.config,
            default_branch: self.default_branch,
            mock: self.mock.then_some(crate::watch::command::Mock {
                origin: crate::demo::ROUTE_ORIGIN,
                fleet: crate::demo::ROUTE_FLEET,
                jobs: crate::demo::ROUTE_JOBS,
                // The 10:00 queue of `run --mock`, ten minutes on.
                now: crate::demo::ROUTE_NOW + 600,
                default_branch: "main",
            }),
        }
    }
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub source: HistorySourceArgs,

    /// The snapshot file to write (`.json.gz`).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// GitLab API base URL [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Project id or path to check access to [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID].
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Rule files to validate along with the built-in catalog.
    #[arg(
        long = "rules",
        value_name = "FILE",
        env = "RUNNERIQ_RULES",
        value_delimiter = ','
    )]
    pub rules: Vec<PathBuf>,

    /// Output format: text or json.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// `runneriq diagnose`. Every input defaults to GitLab's predefined CI
/// variable named in its help, so inside a pipeline no flag is needed.
#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    /// GitLab API base URL, e.g. https://gitlab.example.com [env: CI_API_V4_URL, then GITLAB_URL].
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Project id or path [env: CI_PROJECT_ID, then GITLAB_PROJECT_ID].
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Pipeline id [env: CI_PIPELINE_ID].
    #[arg(long, value_name = "ID")]
    pub pipeline: Option<u64>,

    /// Merge request IID [env: CI_MERGE_REQUEST_IID, else this project's first
    /// entry of CI_OPEN_MERGE_REQUESTS, else the open MR of the commit].
    #[arg(long, value_name = "IID")]
    pub mr: Option<u64>,

    /// Commit SHA, for the commit's diff and discussion [env: CI_COMMIT_SHA].
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,

    /// A job to leave out: the diagnose job itself [env: CI_JOB_ID].
    #[arg(long, value_name = "ID")]
    pub exclude_job: Option<u64>,

    /// What stdout gets when not posting: the note (md) or its data (json;
    /// always printed, the summary then goes to stderr).
    #[arg(long, value_enum, default_value = "md")]
    pub format: crate::publish::format::NoteFormat,

    /// Print the note instead of posting it; no write request is sent.
    /// (`RUNNERIQ_DRY_RUN`: empty, 0, false, no or off mean no.)
    #[arg(
        long,
        env = "RUNNERIQ_DRY_RUN",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub dry_run: bool,

    /// Where the note goes.
    #[arg(long, value_enum, default_value = "auto", env = "RUNNERIQ_POST_TO")]
    pub post_to: crate::diagnose::PostTo,

    /// Extra rule files that extend or override the built-in catalog (repeatable).
    #[arg(
        long = "rules",
        value_name = "FILE",
        env = "RUNNERIQ_RULES",
        value_delimiter = ','
    )]
    pub rules: Vec<PathBuf>,

    /// Directory with a `note.md.j2` that replaces the built-in note template.
    #[arg(long, value_name = "DIR", env = "RUNNERIQ_TEMPLATES")]
    pub templates: Option<PathBuf>,

    /// The repository's RunnerIQ config (suppression, severity, history,
    /// notifications). Default: `.runneriq.yml` in $CI_PROJECT_DIR (else the
    /// current directory), when it exists.
    #[arg(long, value_name = "FILE", env = "RUNNERIQ_CONFIG")]
    pub config: Option<PathBuf>,

    /// Bytes read of each job log (16MiB, 4M, 512K, or bytes). A longer log
    /// is classified on its first part and the note says so.
    #[arg(
        long,
        value_name = "SIZE",
        env = "RUNNERIQ_TRACE_MAX_BYTES",
        default_value = "16MiB",
        value_parser = parse_size
    )]
    pub trace_max_bytes: u64,

    /// Time to read one job log (90s, 2m). A log still arriving after it is
    /// classified on what came and the note says so.
    #[arg(
        long,
        value_name = "DURATION",
        env = "RUNNERIQ_TRACE_TIMEOUT",
        default_value = "60s",
        value_parser = parse_duration_arg
    )]
    pub trace_timeout: std::time::Duration,

    /// The whole run's time budget (10m, 90s). Logs not read by then are
    /// listed as unread and the note is posted; the run also ends a minute
    /// before the CI job's own timeout (CI_JOB_TIMEOUT, CI_JOB_STARTED_AT).
    #[arg(
        long,
        value_name = "DURATION",
        env = "RUNNERIQ_MAX_RUN_TIME",
        default_value = "10m",
        value_parser = parse_duration_arg
    )]
    pub max_run_time: std::time::Duration,
}

/// `16MiB`, `4M`, `512K`, `1G` (binary units) or a number of bytes; at least 1 KiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 16MiB, 4M or 512K"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?} is not a size like 16MiB, 4M or 512K")),
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes < 1024 {
        return Err(format!("{text:?} is less than 1 KiB"));
    }
    Ok(bytes)
}

/// `90s`, `10m`, `1h30m` or seconds; more than 0.
pub fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    match crate::config::parse_duration(text) {
        Some(0) => Err(format!("{text:?} is zero")),
        Some(s) => Ok(std::time::Duration::from_secs(s)),
        None => Err(format!("{text:?} is not a duration like 90s, 10m or 1h30m")),
    }
}

fn run_doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let input = crate::doctor::DoctorInput {
        gitlab_url: args.gitlab_url,
        project: args.project,
        rules: args.rules,
    };
    let checks = crate::doctor::run(&input, |k| std::env::var(k).ok());
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&checks)? + "\n",
        _ => crate::doctor::render_text(&checks),
    };
    print!("{out}");
    let failed = checks
        .iter()
        .any(|c| c.status == crate::doctor::Status::Fail);
    Ok(if failed {
        ExitCode::from(error::EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    })
}

// Each command takes a plain option struct: the clap types stay here.

impl RouteArgs {
    fn options(self) -> crate::fleet::command::RouteOptions {
        crate::fleet::command::RouteOptions {
            sources: self.sources.resolve(),
            format: self.format,
            mode: self.mode,
            supervised_threshold: self.supervised_threshold,
            tags: self.tags,
            plan: self.plan,
            execute: self.execute,
            green_share: self.green_share,
            tag_ttl: self.tag_ttl,
            audit: self.audit,
        }
    }
}

impl ExplainArgs {
    fn options(self) -> crate::fleet::command::ExplainOptions {
        crate::fleet::command::ExplainOptions {
            job: self.job,
            sources: self.sources.resolve(),
            format: self.format,
        }
    }
}

impl SimulateArgs {
    fn options(self) -> crate::fleet::command::SimulateOptions {
        crate::fleet::command::SimulateOptions {
            sources: self.sources.resolve(),
            since: self.since,
            carbon_wait: self.carbon_wait,
            format: self.format,
            charts: self.charts,
        }
    }
}

impl FleetExportArgs {
    fn options(self) -> crate::fleet::command::ExportOptions {
        crate::fleet::command::ExportOptions {
            project: self.project,
            all: self.all,
            gitlab_url: self.gitlab_url,
            output: self.output,
        }
    }
}

impl ApplyArgs {
    fn options(self) -> crate::fleet::command::ApplyOptions {
        crate::fleet::command::ApplyOptions {
            plan: self.plan,
            execute: self.execute,
            gitlab_url: self.gitlab_url,
            audit: self.audit,
            format: self.format,
        }
    }
}

impl ResetTagsArgs {
    fn options(self) -> crate::fleet::command::ResetTagsOptions {
        crate::fleet::command::ResetTagsOptions {
            project: self.project,
            all: self.all,
            gitlab_url: self.gitlab_url,
            execute: self.execute,
            audit: self.audit,
            format: self.format,
        }
    }
}

impl AuditArgs {
    fn options(self) -> crate::fleet::command::AuditOptions {
        crate::fleet::command::AuditOptions {
            file: self.file,
            since: self.since,
            format: self.format,
        }
    }
}

impl DiagnoseArgs {
    fn options(self) -> crate::diagnose::DiagnoseOptions {
        crate::diagnose::DiagnoseOptions {
            gitlab_url: self.gitlab_url,
            project: self.project,
            pipeline: self.pipeline,
            mr: self.mr,
            sha: self.sha,
            exclude_job: self.exclude_job,
            format: self.format,
            dry_run: self.dry_run,
            post_to: self.post_to,
            rules: self.rules,
            templates: self.templates,
            config: self.config,
            trace_max_bytes: self.trace_max_bytes,
            trace_timeout: self.trace_timeout,
            max_run_time: self.max_run_time,
        }
    }
}

/// CI templates often pass optional settings as possibly-empty variables
/// (`RUNNERIQ_RULES: "$[[ inputs.rules_file ]]"`); clap would reject an
/// empty value, so an empty RUNNERIQ_* variable counts as unset.
fn drop_empty_env() {
    let empty: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(k, v)| k.to_string_lossy().starts_with("RUNNERIQ_") && v.is_empty())
        .map(|(k, _)| k)
        .collect();
    for k in empty {
        // SAFETY: called first thing in `run`, before any thread is spawned,
        // so nothing else reads or writes the environment concurrently.
        unsafe { std::env::remove_var(k) };
    }
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    drop_empty_env();
    let cli = Cli::parse();
    match cli.command {
        Command::Classify(args) => run_classify(args),
        Command::Doctor(args) => run_doctor(args),
        Command::Demo(args) => match args.what {
            DemoWhat::Diagnose => {
                let format = match args.format {
                    crate::publish::format::ReportFormat::Md => {
                        crate::publish::format::NoteFormat::Md
                    }
                    crate::publish::format::ReportFormat::Json => {
                        crate::publish::format::NoteFormat::Json
                    }
                    crate::publish::format::ReportFormat::Html => {
                        return Err(input("--format html is for `runneriq demo report`"));
                    }
                };
                crate::demo::run(&crate::demo::DemoOptions {
                    format,
                    templates: args.templates,
                })
            }
            DemoWhat::Report => crate::demo::run_report(args.format, args.charts),
        },
        Command::Report(args) => {
            crate::report::command::run_report(crate::report::command::ReportOptions {
                history: args.source.resolve(args.snapshots),
                audit: args.audit,
                format: args.format,
                publish: args.publish.is_some(),
                dry_run: args.dry_run,
                output: args.output,
                labels: args.labels,
                charts: args.charts,
            })
        }
        Command::Simulate(args) => crate::fleet::command::run_simulate(args.options()),
        Command::Snapshot(args) => {
            crate::report::command::run_snapshot(&args.source.resolve(Vec::new()), &args.output)
        }
        Command::Diagnose(args) => crate::diagnose::run(args.options()),
        Command::Watch(args) => crate::watch::command::run(args.options()),
        Command::Route(args) => crate::fleet::command::run_route(args.options()),
        Command::Run(args) => crate::fleet::command::run_route(args.options()?),
        Command::Explain(args) => crate::fleet::command::run_explain(args.options()),
        Command::Fleet(FleetCommand::Export(args)) => {
            crate::fleet::command::run_export(args.options())
        }
        Command::Config(ConfigCommand::Migrate(args)) => {
            crate::migrate::run_migrate(args.options())
        }
        Command::Apply(args) => crate::fleet::command::run_apply(args.options()),
        Command::ResetTags(args) => crate::fleet::command::run_reset_tags(args.options()),
        Command::Audit(args) => crate::fleet::command::run_audit(args.options()),
    }
}

fn load_catalog(paths: &[PathBuf]) -> anyhow::Result<Catalog> {
    let refs: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    Catalog::with_overrides(&refs)
}

fn run_classify(args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.print_rules {
        out.write_all(classify::catalog::DEFAULT_RULES.as_bytes())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let catalog = load_catalog(&args.rules)?;
    let mut fallback = llm_fallback(&args, &catalog)?;
    let opts = ClassifyOptions {
        max_evidence: usize::from(args.max_evidence),
        failure_reason: args.failure_reason.clone(),
        tail_lines: if fallback.is_some() {
            crate::llm::TAIL_LINES
        } else {
            0
        },
        dump_candidates: args.dump_candidates,
    };
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(input("stdin (`-`) can be given only once"));
    }
    let sources: Vec<String> = match args.job {
        Some(job) => vec![format!("job:{job}")],
        None => args.files.clone(),
    };
    // Exit code of the first input that failed, if any.
    let mut failed: Option<u8> = None;
    for (i, file) in sources.iter().enumerate() {
        let result = match args.job {
            Some(job) => classify_job(&args, job, &catalog, &opts),
            None => classify_one(file, &catalog, &opts).map(|c| (c, None)),
        };
        let (mut c, job_meta) = match result {
            Ok(c) => c,
            Err(e) => {
                // Keep going: one unreadable file should not hide the others.
                out.flush().ok();
                eprintln!("runneriq: {}", error::describe(&e));
                failed.get_or_insert(error::exit_code(&e));
                continue;
            }
        };
        let display = if file == "-" {
            "<stdin>"
        } else {
            file.as_str()
        };
        let consultation = fallback.as_mut().and_then(|f| {
            // A local file is named by its file name only (no home directory).
            let file_name = std::path::Path::new(display)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(display);
            let ctx = crate::llm::JobContext {
                name: Some(job_meta.as_ref().map_or(file_name, |m| m.0.as_str())),
                stage: job_meta.as_ref().map(|m| m.1.as_str()),
                changed_files: &[],
            };
            f.consult(&ctx, &mut c, &catalog)
        });
        // The tail was asked for the LLM's prompt only.
        c.tail.clear();
        match args.format {
            Format::Json => {
                let mut v = serde_json::to_value(&c)?;
                if let serde_json::Value::Object(m) = &mut v {
                    m.insert(
                        "file".into(),
                        serde_json::Value::String(display.to_string()),
                    );
                    if let Some(cons) = &consultation {
                        let (k, val) = cons.json_field();
                        m.insert(k.into(), val);
                    }
                }
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            Format::Text => {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(classify::render::text(display, &c).as_bytes())?;
                if let Some(cons) = &consultation {
                    out.write_all(cons.text().as_bytes())?;
                }
            }
            Format::Md => {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(classify::render::markdown(display, &c).as_bytes())?;
                if let Some(cons) = &consultation {
                    out.write_all(cons.markdown().as_bytes())?;
                }
            }
        }
    }
    if let Some(f) = fallback.as_mut() {
        out.flush().ok();
        for w in f.take_warnings() {
            eprintln!("runneriq: warning: {w}");
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(e).context("writing output");
    }
    if let Some(code) = failed {
        return Ok(ExitCode::from(code));
    }
    Ok(ExitCode::SUCCESS)
}

/// The LLM fallback of `classify`, when `--llm auto` and a provider is
/// configured. Links in the LLM's text may only point into the GitLab of
/// `--gitlab-url`/`CI_API_V4_URL`; the GitLab token is redacted by value.
fn llm_fallback(
    args: &ClassifyArgs,
    catalog: &Catalog,
) -> anyhow::Result<Option<crate::llm::Fallback>> {
    if args.llm == LlmMode::Off {
        return Ok(None);
    }
    let cfg = crate::llm::LlmConfig::from_env()?;
    let origin = args
        .gitlab_url
        .clone()
        .or_else(|| crate::gitlab::url_from_env(|k| std::env::var(k).ok()))
        .or_else(|| std::env::var("CI_SERVER_URL").ok())
        .and_then(|u| crate::llm::origin_of(&u));
    let token = crate::gitlab::Token::from_env();
    let secrets: Vec<&str> = token.iter().map(|t| t.expose_secret()).collect();
    Ok(crate::llm::Fallback::from_config(
        &cfg, catalog, &secrets, origin,
    ))
}

/// The GitLab client for commands that read the API: URL from the flag or
/// `CI_API_V4_URL`, token from the environment.
pub fn gitlab_client(url_flag: Option<String>) -> anyhow::Result<crate::gitlab::Client> {
    // One place reads the client settings (URL, token, CA files, the
    // RUNNERIQ_HTTP_* knobs) for every command.
    crate::gitlab::api_client(url_flag)
}

/// Classifies one job's trace fetched from GitLab, streamed, with the job's
/// `failure_reason` (unless `--failure-reason` overrides it). Also returns
/// the job's name and stage.
fn classify_job(
    args: &ClassifyArgs,
    job: u64,
    catalog: &Catalog,
    opts: &ClassifyOptions,
) -> anyhow::Result<(classify::Classification, Option<(String, String)>)> {
    let project = args
        .project
        .clone()
        .or_else(|| crate::gitlab::project_from_env(|k| std::env::var(k).ok()))
        .ok_or_else(|| input("--job needs the project: pass --project ID or set CI_PROJECT_ID"))?;
    let client = gitlab_client(args.gitlab_url.clone())?;
    let base = format!(
        "/projects/{}/jobs/{job}",
        crate::gitlab::project_ref(&project)
    );
    let meta: crate::gitlab::models::Job = client.get_json(&base, &[])?;
    let mut opts = opts.clone();
    if opts.failure_reason.is_none() {
        opts.failure_reason = meta.failure_reason.clone();
    }
    let c = crate::diagnose::fetch::read_trace(
        &client,
        &format!("{base}/trace"),
        catalog,
        &opts,
        &crate::diagnose::fetch::TraceLimits::default(),
    )
    .map_err(|why| anyhow::anyhow!("the trace of job {job} ({}): {why}", meta.name))?;
    if let Some(why) = &c.log.incomplete {
        eprintln!("runneriq: warning: the trace of job {job}: {why}");
    }
    Ok((c, Some((meta.name, meta.stage))))
}

fn classify_one(
    file: &str,
    catalog: &Catalog,
    opts: &ClassifyOptions,
) -> anyhow::Result<classify::Classification> {
    let reader = crate::input::open_log(file)?;
    classify::classify_reader(reader, catalog, opts).map_err(|e| {
        input(format!(
            "{file}: cannot read: {}",
            crate::input::io_reason(&e)
        ))
    })
}
