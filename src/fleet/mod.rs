//! Fleet intelligence: job priority, runner eligibility and scoring,
//! capacity-aware assignment, carbon intensity.

pub mod audit;
pub mod carbon;
pub mod carbon_live;
pub mod command;
pub mod export;
pub mod model;
pub mod priority;
pub mod route;
pub mod simulate;
pub mod stats;
pub mod tags;
pub mod tiebreak;

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it,
/// then a rename.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.runneriq-tmp"));
    let fail = |e: std::io::Error| {
        crate::error::input(format!(
            "{}: cannot write: {}",
            path.display(),
            crate::input::io_reason(&e)
        ))
    };
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}
