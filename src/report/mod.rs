//! The weekly report (`runneriq report`): a window of a project's finished
//! jobs, streamed one at a time into [`metrics::Aggregator`] and reduced to
//! [`metrics::ReportData`] (per-runner metrics and composite scores, findings
//! with recommendations, queue waits, flaky jobs, failures per day, carbon).
//! `metrics` is pure: no I/O; memory grows with what is aggregated (a few numbers per
//! job), never with the job objects themselves.

pub use runneriq_core::report::{flaky_tests, metrics};

pub mod command;
pub mod render;
/// History from the API or a snapshot file.
pub mod source;
