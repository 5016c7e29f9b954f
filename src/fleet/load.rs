//! Fleet and jobs files from disk (`--fleet`, `--jobs`, `--history`): read
//! with a size cap, then parsed by [`super::model`].

use std::path::Path;

use super::model::{FleetRunner, MAX_INPUT_BYTES, parse_fleet, parse_jobs};
use crate::error::input;
use crate::gitlab::models::Job;

fn read_limited(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    crate::input::read_at_most(path, MAX_INPUT_BYTES).map_err(|e| {
        input(format!(
            "{}: cannot read {what}: {}",
            path.display(),
            crate::input::io_reason(&e)
        ))
    })
}

/// Reads a fleet file.
pub fn load_fleet(path: &Path) -> anyhow::Result<Vec<FleetRunner>> {
    let bytes = read_limited(path, "the fleet file")?;
    parse_fleet(&bytes, &path.display().to_string())
}

/// Reads a jobs file.
pub fn load_jobs(path: &Path) -> anyhow::Result<Vec<Job>> {
    let bytes = read_limited(path, "the jobs file")?;
    parse_jobs(&bytes, &path.display().to_string())
}
