//! The clock every command reads: one place, so tests can set it.

/// Seconds since 1970 (`RUNNERIQ_NOW` overrides it, for tests of cooldowns,
/// leases and report windows).
pub fn now() -> u64 {
    if let Some(n) = std::env::var("RUNNERIQ_NOW")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return n;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// [`now`] as a signed timestamp, for the fleet and report arithmetic.
pub fn now_i64() -> i64 {
    i64::try_from(now()).unwrap_or(i64::MAX)
}
