//! Helpers shared by integration tests: `mod common;` in a test file.
#![allow(dead_code)]

pub mod fake_gitlab;
pub mod fake_llm;
pub mod markdown;

use std::path::PathBuf;

/// `tests/fixtures/<rel>` inside this crate (fixtures are copied in, so tests do not
/// depend on ../shared).
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}
