//! The hot path, compiled as its own crate (`runneriq-scan`,
//! `crates/scan/Cargo.toml`) so the release profile can optimise it for speed
//! while the rest of the binary is optimised for size: reading and cleaning
//! traces (`trace`), the rule catalog and the one-pass classifier
//! (`classify`), and the error and file-reading helpers they share (`error`,
//! `input`). The main crate (`src/lib.rs`) re-exports these modules under the
//! same paths, so `crate::classify::…` reads the same everywhere.

pub mod classify;
pub mod error;
pub mod input;
pub mod trace;
