//! RunnerIQ: explains failed GitLab CI pipelines and reports on the runner fleet.
//!
//! The binary (`src/main.rs`) is a thin shell over this library. Data flows one
//! way: sources (GitLab API, files) → analysis (pure functions) → outputs.
//! See ARCHITECTURE.md for the code map and the invariants each layer keeps.

// The pure core (model and analysis: trace, classify, noise, fleet routing and
// replay, report metrics, API models) is its own crate, built for speed while
// this one is built for size (src/core.rs, ARCHITECTURE.md, "Crates"); its
// modules keep their paths here (`fleet`, `gitlab` and `report` re-export
// theirs). The classifier's renderer is an output and stays in this crate.
pub use runneriq_core::{clock, error, input, noise, text, trace};
pub mod classify {
    pub use runneriq_core::classify::*;
    pub mod render;
}
pub mod cli;
pub mod config;
pub mod demo;
pub mod diagnose;
pub mod doctor;
pub mod fleet;
pub mod gitlab;
pub mod http;
pub mod llm;
pub mod migrate;
pub mod publish;
pub mod report;
pub mod watch;
