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
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,

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
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Classify(args) => run_classify(args),
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
    let opts = ClassifyOptions {
        max_evidence: usize::from(args.max_evidence),
        failure_reason: args.failure_reason.clone(),
    };
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(input("stdin (`-`) can be given only once"));
    }
    let mut failed = 0usize;
    for (i, file) in args.files.iter().enumerate() {
        let result = classify_one(file, &catalog, &opts);
        let c = match result {
            Ok(c) => c,
            Err(e) => {
                // Keep going: one unreadable file should not hide the others.
                out.flush().ok();
                eprintln!("runneriq: {}", error::describe(&e));
                failed += 1;
                continue;
            }
        };
        let display = if file == "-" {
            "<stdin>"
        } else {
            file.as_str()
        };
        match args.format {
            Format::Json => {
                let mut v = serde_json::to_value(&c)?;
                if let serde_json::Value::Object(m) = &mut v {
                    m.insert(
                        "file".into(),
                        serde_json::Value::String(display.to_string()),
                    );
                }
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            Format::Text => {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(classify::render::text(display, &c).as_bytes())?;
            }
            Format::Md => {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(classify::render::markdown(display, &c).as_bytes())?;
            }
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(e).context("writing output");
    }
    if failed > 0 {
        return Ok(ExitCode::from(error::EXIT_INPUT));
    }
    Ok(ExitCode::SUCCESS)
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
