//! RunnerIQ: explains failed GitLab CI pipelines and reports on the runner fleet.
//!
//! The binary (`src/main.rs`) is a thin shell over this library. Data flows one
//! way: sources (GitLab API, files) → analysis (pure functions) → outputs.
//! See ARCHITECTURE.md for the code map and the invariants each layer keeps.

pub mod classify;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod diagnose;
pub mod doctor;
pub mod error;
pub mod fleet;
pub mod gitlab;
pub mod http;
pub mod input;
pub mod llm;
pub mod migrate;
pub mod noise;
pub mod publish;
pub mod report;
pub mod text;
pub mod trace;
pub mod watch;
