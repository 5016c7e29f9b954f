//! The pure core, compiled as its own crate (`runneriq-core`,
//! `crates/core/Cargo.toml`) so the release profile can optimise it for speed
//! while the rest of the binary is optimised for size: the data model and the
//! analysis where time is spent — reading and cleaning traces (`trace`), the
//! rule catalog and the one-pass classifier (`classify`), noise primitives,
//! priorities, routing and the replay (`fleet`), the report's metrics — with
//! the error and file-reading helpers they share (`error`, `input`). The
//! library (`src/lib.rs`) re-exports these modules under the same paths, so
//! `crate::fleet::route::…` reads the same everywhere. Being another crate,
//! nothing here can import a command, a source or an output.

pub mod classify;
pub mod clock;
pub mod error;
pub mod input;
pub mod noise;
pub mod text;
pub mod trace;

/// The GitLab API's data (models only; the client lives in the library).
pub mod gitlab {
    pub mod bounded;
    pub mod models;
    pub mod test_report;
}

/// Priorities, the GitLab gate, runner scoring, assignment and the replay.
pub mod fleet {
    pub mod carbon;
    pub mod model;
    pub mod priority;
    pub mod route;
    pub mod simulate;
    pub mod stats;

    pub use crate::text::duration_words;
}

/// The weekly report's metrics.
pub mod report {
    pub mod flaky_tests;
    pub mod metrics;
}
