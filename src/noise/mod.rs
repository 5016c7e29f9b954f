//! Telling noise from signal in failed jobs: globs for the repository's
//! rules, error fingerprints to recognise a failure seen before, and the
//! severity of a failure. All pure; the history lookups that feed them live
//! elsewhere.

pub mod fingerprint;
pub mod glob;
pub mod rules;
pub mod severity;

pub use fingerprint::{fingerprint, normalize};
pub use glob::Glob;
pub use severity::{Assessed, Facts, JobKind, Severity, assess, job_kind};
