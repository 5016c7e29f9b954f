//! `runneriq watch`: the fleet's health between weekly reports, as a
//! scheduled one-shot job. [`analysis`] is pure (problems, fingerprints,
//! cooldowns, the state kept in the fleet-health issue), [`source`] reads
//! GitLab, [`render`] writes the issue, Markdown, JSON and alert payloads,
//! [`command`] runs the stages.

pub mod analysis;
pub mod command;
pub mod render;
pub mod source;
