//! Error kinds the CLI maps to exit codes.
//!
//! Exit codes (stable, documented in the README):
//! - 0: success
//! - 1: runtime error (network, GitLab answered with an error, I/O while writing)
//! - 2: usage or input error (bad flag, missing or malformed file, invalid rules)

use std::fmt;

/// An error caused by what the user gave us (a file, a flag, a config value).
/// Anything in an error chain that is an `InputError` makes the exit code 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Shorthand for an input error as an `anyhow::Error`.
pub fn input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_INPUT: u8 = 2;

/// The exit code for an error: 2 when the user's input is at fault, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<InputError>()) {
        EXIT_INPUT
    } else {
        EXIT_RUNTIME
    }
}

/// One line: the outermost context followed by its causes, joined by ": ".
pub fn describe(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// A multi-line message (serde-saphyr renders YAML errors with a source
/// snippet over several lines) on one line, as the CLI prints errors.
pub fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn input_errors_exit_2_even_under_context() {
        let e: anyhow::Result<()> = Err(input("bad field"));
        let e = e.context("reading rules.yml").unwrap_err();
        assert_eq!(exit_code(&e), EXIT_INPUT);
        assert_eq!(describe(&e), "reading rules.yml: bad field");
    }

    #[test]
    fn other_errors_exit_1() {
        let e = anyhow::anyhow!("connection refused");
        assert_eq!(exit_code(&e), EXIT_RUNTIME);
    }
}
