//! Fleet intelligence: job priority, runner eligibility and scoring,
//! capacity-aware assignment, carbon intensity. The pure parts (carbon tables,
//! model, priority, route, simulate, stats) live in the core crate
//! (`src/core.rs`) and are re-exported here under their paths.

pub use runneriq_core::fleet::{carbon, duration_words, model, priority, route, simulate, stats};

pub mod audit;
pub mod carbon_live;
pub mod command;
pub mod export;
pub mod load;
pub mod render;
pub mod tags;
pub mod tiebreak;
