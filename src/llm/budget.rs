//! Token budgets: per run (in memory) and per UTC day (a small JSON state
//! file, `llm-usage.json`, shared by the runs of one machine or cache).
//!
//! A call is made only when its estimate (prompt + the answer's cap) fits in
//! both budgets; what is then counted is the provider's reported usage, else
//! the estimate from characters (4 per token). When the state file cannot be
//! read or written the per-run budget still applies and a warning says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "llm-usage.json";
/// Days kept in the state file.
const KEEP_DAYS: usize = 14;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// UTC date (`2026-01-31`) → tokens used.
    #[serde(default)]
    days: BTreeMap<String, u64>,
}

/// Both budgets and what was spent.
#[derive(Debug)]
pub struct Budget {
    run_limit: u64,
    day_limit: u64,
    used_run: u64,
    state_file: Option<PathBuf>,
    /// Warnings not yet handed out, each given once.
    warnings: Vec<String>,
    warned_state: bool,
}

impl Budget {
    pub fn new(run_limit: u64, day_limit: u64, state_dir: Option<PathBuf>) -> Budget {
        Budget {
            run_limit,
            day_limit,
            used_run: 0,
            state_file: state_dir.map(|d| d.join(STATE_FILE)),
            warnings: Vec::new(),
            warned_state: false,
        }
    }

    /// Tokens spent in this run.
    pub fn used_run(&self) -> u64 {
        self.used_run
    }

    fn warn_state(&mut self, w: String) {
        if !self.warned_state {
            self.warned_state = true;
            self.warnings.push(w);
        }
    }

    /// Warnings gathered since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn read_state(&mut self) -> State {
        let Some(path) = self.state_file.clone() else {
            self.warn_state(
                "the per-day LLM token budget is not tracked: no state directory \
                 (set RUNNERIQ_STATE_DIR, XDG_CACHE_HOME or HOME); the per-run budget \
                 still is"
                    .to_string(),
            );
            return State::default();
        };
        match crate::input::read_at_most(&path, 1 << 20) {
            Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(s) => s,
                Err(_) => {
                    self.warn_state(format!(
                        "{}: not a RunnerIQ usage file; today's LLM usage starts from 0",
                        path.display()
                    ));
                    State::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => {
                self.warn_state(format!(
                    "{}: cannot read ({}); the per-day LLM budget is not enforced, the \
                     per-run budget still is",
                    path.display(),
                    crate::input::io_reason(&e)
                ));
                State::default()
            }
        }
    }

    /// May a call estimated at `tokens` be made? `Err` says why not.
    pub fn check(&mut self, tokens: u64) -> Result<(), String> {
        if self.used_run + tokens > self.run_limit {
            return Err(format!(
                "the LLM token budget of this run is exhausted ({} of {} tokens used, \
                 RUNNERIQ_LLM_MAX_TOKENS_RUN)",
                self.used_run, self.run_limit
            ));
        }
        let today = self
            .read_state()
            .days
            .get(&utc_date(SystemTime::now()))
            .copied();
        let today = today.unwrap_or(0);
        if today + tokens > self.day_limit {
            return Err(format!(
                "today's LLM token budget is exhausted ({today} of {} tokens used, \
                 RUNNERIQ_LLM_MAX_TOKENS_DAY)",
                self.day_limit
            ));
        }
        Ok(())
    }

    /// Counts `tokens` spent, in this run and in today's total on disk.
    pub fn record(&mut self, tokens: u64) {
        self.used_run += tokens;
        let Some(path) = self.state_file.clone() else {
            return;
        };
        let mut state = self.read_state();
        *state.days.entry(utc_date(SystemTime::now())).or_insert(0) += tokens;
        while state.days.len() > KEEP_DAYS {
            let Some(oldest) = state.days.keys().next().cloned() else {
                break;
            };
            state.days.remove(&oldest);
        }
        if let Err(e) = write_atomically(&path, &state) {
            self.warn_state(format!(
                "{}: cannot write ({e}); the per-day LLM budget is not enforced, the \
                 per-run budget still is",
                path.display()
            ));
        }
    }
}

fn write_atomically(path: &Path, state: &State) -> Result<(), String> {
    let dir = path.parent().ok_or("no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| crate::input::io_reason(&e))?;
    let tmp = dir.join(format!(".{STATE_FILE}.{}", std::process::id()));
    let body = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, body).map_err(|e| crate::input::io_reason(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        crate::input::io_reason(&e)
    })
}

/// `YYYY-MM-DD` of `t` in UTC. The inverse of days_from_civil (Howard
/// Hinnant's civil_from_days), as the GitLab client's HTTP-date parser.
pub fn utc_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates() {
        let at = |s: u64| utc_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01");
        assert_eq!(at(951_782_400), "2000-02-29");
        assert_eq!(at(1_767_225_600), "2026-01-01");
        assert_eq!(at(1_767_225_599), "2025-12-31");
    }

    #[test]
    fn run_budget_then_day_budget() {
        let dir = std::env::temp_dir().join(format!("riq-budget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut b = Budget::new(1000, 1500, Some(dir.clone()));
        assert!(b.check(900).is_ok());
        b.record(900);
        let e = b.check(200).unwrap_err();
        assert!(e.contains("this run") && e.contains("900 of 1000"), "{e}");
        // A second run on the same day shares the day's total.
        let mut b2 = Budget::new(1000, 1500, Some(dir.clone()));
        assert!(b2.check(500).is_ok());
        b2.record(500);
        let e = b2.check(200).unwrap_err();
        assert!(e.contains("today") && e.contains("1400 of 1500"), "{e}");
        assert!(b2.take_warnings().is_empty());
        let raw = std::fs::read_to_string(dir.join(STATE_FILE)).unwrap();
        assert!(raw.contains(&utc_date(SystemTime::now())), "{raw}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_state_file_warns_and_the_run_budget_holds() {
        // A path under a regular file cannot be created.
        let file = std::env::temp_dir().join(format!("riq-budget-file-{}", std::process::id()));
        std::fs::write(&file, "x").unwrap();
        let mut b = Budget::new(100, 1_000_000, Some(file.join("sub")));
        b.record(80);
        let w = b.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("per-run budget still is"), "{w:?}");
        assert!(b.check(30).is_err());
        b.record(1);
        assert!(b.take_warnings().is_empty(), "warned once");
        let _ = std::fs::remove_file(&file);
        let mut none = Budget::new(10, 10, None);
        assert!(none.take_warnings().is_empty(), "no warning before any use");
        assert!(none.check(5).is_ok());
        assert_eq!(none.take_warnings().len(), 1);
    }
}
