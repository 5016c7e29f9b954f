//! The built-in rules' [`PatternFacts`](super::literals::PatternFacts),
//! computed ahead of time: `rules.prefilter` is generated from `rules.yml`
//! (a test fails, naming the command, when it is stale), so a run does not
//! parse every built-in pattern. A rule whose pattern no longer hashes to
//! the table's entry (a user's override, or a stale table) is parsed as usual.
//!
//! Format, one rule per line: `id<TAB>pattern hash<TAB>anchored (0|1)<TAB>`
//! then the literals in hex, comma-separated, or `-` when there are none.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::literals::{PatternFacts, pattern_facts};

/// The table (regenerate: `RUNNERIQ_UPDATE_PREFILTER=1 cargo test --lib prefilter_table`).
pub const TABLE: &str = include_str!("rules.prefilter");

/// FNV-1a 64 of the pattern's bytes.
pub fn pattern_hash(pattern: &str) -> u64 {
    pattern.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

static PARSED: LazyLock<HashMap<&'static str, (u64, PatternFacts)>> =
    LazyLock::new(|| TABLE.lines().filter_map(parse_line).collect());

fn parse_line(line: &'static str) -> Option<(&'static str, (u64, PatternFacts))> {
    let mut f = line.split('\t');
    let id = f.next()?;
    let hash = u64::from_str_radix(f.next()?, 16).ok()?;
    let anchored = f.next()? == "1";
    let lits = f.next()?;
    let set = if lits == "-" {
        None
    } else {
        Some(lits.split(',').map(unhex).collect::<Option<Vec<_>>>()?)
    };
    Some((id, (hash, (set, anchored))))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The facts of the built-in rule `id`, when its pattern is the table's.
pub fn lookup(id: &str, pattern: &str) -> Option<PatternFacts> {
    let (hash, facts) = PARSED.get(id)?;
    (*hash == pattern_hash(pattern)).then(|| facts.clone())
}

/// The table for `rules` (id, pattern), as the file holds it.
pub fn render<'a>(rules: impl Iterator<Item = (&'a str, &'a str)>) -> Result<String, String> {
    let mut out = String::new();
    for (id, pattern) in rules {
        let (set, anchored) = pattern_facts(pattern)?;
        let lits = match set {
            None => "-".to_string(),
            Some(set) => set
                .iter()
                .map(|l| l.iter().map(|b| format!("{b:02x}")).collect::<String>())
                .collect::<Vec<_>>()
                .join(","),
        };
        out.push_str(&format!(
            "{id}\t{:016x}\t{}\t{lits}\n",
            pattern_hash(pattern),
            u8::from(anchored)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_built_in_rules() {
        let catalog = crate::classify::Catalog::builtin().unwrap();
        let fresh = render(
            catalog
                .rules
                .iter()
                .map(|r| (r.id.as_str(), r.pattern.as_str())),
        )
        .unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../src/classify/rules.prefilter"
        );
        if std::env::var_os("RUNNERIQ_UPDATE_PREFILTER").is_some() {
            std::fs::write(path, &fresh).unwrap();
            return;
        }
        assert!(
            fresh == TABLE,
            "src/classify/rules.prefilter is stale (rules.yml changed): run \
             RUNNERIQ_UPDATE_PREFILTER=1 cargo test --lib prefilter_table"
        );
        // Every built-in rule is found in it.
        for r in &catalog.rules {
            assert!(lookup(&r.id, &r.pattern).is_some(), "{}", r.id);
        }
        assert!(lookup("rustc-error", "changed").is_none());
    }
}
