//! `runneriq config migrate runneriq.yaml`: RunnerIQ 6.x's config as our
//! `.runneriq.yml` (translation in [`v6`]), written whole or not at all,
//! never over an existing file without `--force`, and a report of what has
//! no equivalent, key by key.

pub mod tree;
pub mod v6;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use crate::error::input;
use crate::input::Existing;
use v6::{Fate, Migration};

/// The default output: the file `route`, `simulate` … read from the
/// current directory.
pub const DEFAULT_OUTPUT: &str = ".runneriq.yml";

/// `runneriq config migrate`.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The 6.x file.
    pub input: PathBuf,
    /// Where to write; `-` is stdout. Default [`DEFAULT_OUTPUT`].
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    pub force: bool,
}

/// The report: what was carried over with a difference, what lives in a
/// flag or a variable, what has no equivalent, what is unknown.
pub fn render_report(m: &Migration, from: &str, to: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "runneriq: {from} → {to}: {} setting{} carried over.",
        m.carried,
        if m.carried == 1 { "" } else { "s" }
    );
    let sections = [
        (Fate::Differs, "Carried over; what differs"),
        (
            Fate::Elsewhere,
            "Not in .runneriq.yml: a flag or a variable here",
        ),
        (Fate::NoEquivalent, "No equivalent"),
        (
            Fate::Unknown,
            "Unknown (not in RunnerIQ 6.1.0's documented format)",
        ),
    ];
    for (fate, title) in sections {
        let notes: Vec<_> = m.notes.iter().filter(|n| n.fate == fate).collect();
        if notes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}:");
        for n in notes {
            let value = if n.value == "a map" || n.value == "a list" {
                String::new()
            } else {
                format!(" = {}", n.value)
            };
            let _ = writeln!(out, "- {}{value} (line {}): {}", n.key, n.line, n.why);
        }
    }
    out
}

/// `runneriq config migrate FILE [-o FILE|-] [--force]`.
pub fn run_migrate(args: MigrateOptions) -> anyhow::Result<std::process::ExitCode> {
    let from = args.input.display().to_string();
    let bytes =
        crate::input::read_at_most(&args.input, crate::config::MAX_SIZE as u64).map_err(|e| {
            input(format!(
                "{from}: cannot read: {}",
                crate::input::io_reason(&e)
            ))
        })?;
    let text = String::from_utf8(bytes).map_err(|_| input(format!("{from}: not UTF-8 text")))?;
    let m = v6::migrate(&text, &from)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUTPUT));
    if output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        match lock
            .write_all(m.yaml.as_bytes())
            .and_then(|()| lock.flush())
        {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(e).context("writing output");
            }
            _ => {}
        }
        eprint!("{}", render_report(&m, &from, "stdout"));
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let to = output.display().to_string();
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    if !crate::input::write_new(&output, m.yaml.as_bytes(), existing)? {
        return Err(input(format!(
            "{to}: exists already, left as it is: pass --force to replace it, or -o FILE \
             (-o - for stdout)"
        )));
    }
    print!("{}", render_report(&m, &from, &to));
    Ok(std::process::ExitCode::SUCCESS)
}
