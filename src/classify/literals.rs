//! Required literals of a rule's pattern: a set of byte strings, at least one
//! of which occurs (ASCII case folded) in every line the pattern matches.
//!
//! The scanner searches a batch of lines for all rules' literals at once
//! (Aho-Corasick, ASCII case-insensitive) and runs a rule's regex only on the
//! lines where one of its literals occurs: most log lines contain none, and
//! the regexes, with their case-insensitive alternations and wildcards, are
//! what costs. This is the way grep tools find "inner literals"; a pattern
//! whose best literal is too short to be worth it (`^E\s{2,}\S`) is left to a
//! small automaton that runs on every line.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Strings kept while expanding alternations and classes.
const MAX_SET: usize = 64;
/// Shorter literals match too many lines to help.
pub const MIN_LITERAL: usize = 3;

/// A set of lowercase literal strings.
type Set = Vec<Vec<u8>>;

/// The literal set of `hir` worth prefiltering on, lowercased, or `None`
/// when the pattern has no required literal of at least [`MIN_LITERAL`] bytes.
pub fn required(hir: &Hir) -> Option<Set> {
    let set = req(hir)?;
    let min = set.iter().map(Vec::len).min()?;
    (min >= MIN_LITERAL).then_some(set)
}

/// How good a set is as a prefilter: one whose strings all have
/// [`MIN_LITERAL`] bytes first, then the one a line is least likely to hold
/// (see [`commonness`]): `.kt` beats `e: `, `. [l` beats ` http`.
fn better(a: &Set, b: &Set) -> bool {
    let (la, lb) = (min_len(a) >= MIN_LITERAL, min_len(b) >= MIN_LITERAL);
    if la != lb {
        return la;
    }
    commonness(a) < commonness(b)
}

/// Bytes of a literal the prefilter searches for (the rest is left to the
/// rule's regex): longer strings are no rarer in practice.
pub const SEARCHED: usize = 16;

/// How likely a stretch of text is to contain one of the set's strings (up to
/// [`SEARCHED`] bytes each), as if bytes were independent: the sum over the
/// strings of the product of their bytes' [`byte_frequency`].
fn commonness(s: &Set) -> f64 {
    s.iter()
        .map(|l| {
            l.iter()
                .take(SEARCHED)
                .map(|&b| byte_frequency(b))
                .product::<f64>()
        })
        .sum()
}

/// Rough frequency of a (lowercased) byte in English text and program
/// output: only the order matters much (spaces and `e` are everywhere, `[`,
/// `x` and non-ASCII bytes are rare), as in grep tools' rare-byte heuristics.
fn byte_frequency(b: u8) -> f64 {
    match b {
        b' ' => 0.12,
        b'e' => 0.07,
        b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 0.05,
        b'h' | b'l' | b'd' | b'c' | b'u' => 0.03,
        b'm' | b'p' | b'f' | b'g' | b'b' | b'y' | b'w' => 0.015,
        b'.' | b'/' | b'-' | b'_' | b':' => 0.015,
        b'0'..=b'9' => 0.01,
        b'v' | b'k' => 0.007,
        b'=' | b',' | b'(' | b')' | b'\'' | b'"' | b'\t' => 0.005,
        b'x' | b'j' | b'q' | b'z' => 0.002,
        0x80.. => 0.001,
        _ => 0.002,
    }
}

fn min_len(s: &Set) -> usize {
    s.iter().map(Vec::len).min().unwrap_or(0)
}

fn dedup(mut s: Set) -> Set {
    s.sort();
    s.dedup();
    s
}

/// The bytes a class matches, lowercased, when there are few.
fn class_bytes(c: &Class) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    match c {
        Class::Bytes(b) => {
            for r in b.ranges() {
                if usize::from(r.end() - r.start()) >= 8 {
                    return None;
                }
                for x in r.start()..=r.end() {
                    out.push(x.to_ascii_lowercase());
                }
            }
        }
        Class::Unicode(u) => {
            for r in u.ranges() {
                let (s, e) = (u32::from(r.start()), u32::from(r.end()));
                if e - s >= 8 || e > 0x7f {
                    return None;
                }
                for x in s..=e {
                    out.push((x as u8).to_ascii_lowercase());
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    (!out.is_empty() && out.len() <= 4).then_some(out)
}

/// The exact strings `hir` matches, when they are few (a literal, a small
/// class, an alternation of those, a fixed repetition); zero-width
/// assertions match the empty string.
fn exact(hir: &Hir) -> Option<Set> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(vec![Vec::new()]),
        HirKind::Literal(l) => Some(vec![l.0.to_ascii_lowercase()]),
        HirKind::Class(c) => Some(class_bytes(c)?.into_iter().map(|b| vec![b]).collect()),
        HirKind::Capture(c) => exact(&c.sub),
        HirKind::Repetition(r) if Some(r.min) == r.max && r.min <= 4 => {
            let one = exact(&r.sub)?;
            let mut out = vec![Vec::new()];
            for _ in 0..r.min {
                out = cross(&out, &one)?;
            }
            Some(out)
        }
        HirKind::Repetition(_) => None,
        HirKind::Concat(subs) => {
            let mut out = vec![Vec::new()];
            for s in subs {
                out = cross(&out, &exact(s)?)?;
            }
            Some(out)
        }
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for s in subs {
                out.extend(exact(s)?);
                if out.len() > MAX_SET {
                    return None;
                }
            }
            Some(dedup(out))
        }
    }
}

fn cross(a: &Set, b: &Set) -> Option<Set> {
    if a.len() * b.len() > MAX_SET {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    Some(dedup(out))
}

/// A set of strings one of which every match contains, or `None`.
fn req(hir: &Hir) -> Option<Set> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Class(_) | HirKind::Literal(_) => {
            exact(hir).filter(|s| min_len(s) > 0)
        }
        HirKind::Capture(c) => req(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => exact(hir)
            .filter(|s| min_len(s) > 0)
            .or_else(|| req(&r.sub)),
        HirKind::Repetition(_) => None,
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for s in subs {
                out.extend(req(s)?);
                if out.len() > MAX_SET {
                    return None;
                }
            }
            Some(dedup(out))
        }
        HirKind::Concat(subs) => {
            // Runs of children with exact strings join up (`error` + `: `);
            // any other child breaks a run but may require a literal itself.
            let mut best: Option<Set> = None;
            let consider = |s: Set, best: &mut Option<Set>| {
                if min_len(&s) > 0 && best.as_ref().is_none_or(|b| better(&s, b)) {
                    *best = Some(s);
                }
            };
            let mut run: Option<Set> = None;
            for s in subs {
                match exact(s) {
                    Some(e) => {
                        run = match run.take() {
                            None => Some(e),
                            Some(r) => match cross(&r, &e) {
                                Some(x) => Some(x),
                                None => {
                                    // Too many strings: keep what the run had,
                                    // start again from this child.
                                    consider(r, &mut best);
                                    Some(e)
                                }
                            },
                        };
                    }
                    None => {
                        if let Some(r) = run.take() {
                            consider(r, &mut best);
                        }
                        if let Some(x) = req(s) {
                            consider(x, &mut best);
                        }
                    }
                }
            }
            if let Some(r) = run.take() {
                consider(r, &mut best);
            }
            best
        }
    }
}

/// The matcher's syntax: bytes, ASCII classes (every rule is compiled with it).
pub(crate) fn syntax() -> regex_automata::util::syntax::Config {
    regex_automata::util::syntax::Config::new()
        .utf8(false)
        .unicode(false)
}

/// What the prefilter needs of a pattern: its required literals (see
/// [`required`]) and whether every match starts at the line's start.
pub(crate) type PatternFacts = (Option<Vec<Vec<u8>>>, bool);

/// Parses `pattern` with the matcher's syntax and reads its [`PatternFacts`].
pub(crate) fn pattern_facts(pattern: &str) -> Result<PatternFacts, String> {
    let hir =
        regex_automata::util::syntax::parse_with(pattern, &syntax()).map_err(|e| e.to_string())?;
    let start_anchored = hir
        .properties()
        .look_set_prefix()
        .contains(regex_syntax::hir::Look::Start);
    Ok((required(&hir), start_anchored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(pattern: &str) -> Option<Vec<String>> {
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .unicode(false)
            .build()
            .parse(pattern)
            .unwrap();
        required(&hir).map(|s| {
            s.into_iter()
                .map(|b| String::from_utf8(b).unwrap())
                .collect()
        })
    }

    #[test]
    fn literals_join_across_case_classes_and_anchors() {
        assert_eq!(lits("^error: \\S"), Some(vec!["error: ".into()]));
        assert_eq!(
            lits("(?i)^error: could not compile `"),
            Some(vec!["error: could not compile `".into()])
        );
        assert_eq!(
            lits(r"^\S+:\d+:\d+: (?:fatal )?error: "),
            Some(vec!["error: ".into()])
        );
        assert_eq!(
            lits("undefined reference to `|Undefined symbols for architecture"),
            Some(vec![
                "undefined reference to `".into(),
                "undefined symbols for architecture".into()
            ])
        );
        assert_eq!(lits(r"error TS\d{3,5}:"), Some(vec!["error ts".into()]));
    }

    #[test]
    fn patterns_without_a_useful_literal_have_none() {
        assert_eq!(lits(r"^E\s{2,}\S"), None);
        assert_eq!(lits(r"^\s{0,4}\d+\) (?:test )?\S"), None);
        assert_eq!(lits(r"(?:foo)?bar|x"), None);
        assert_eq!(lits(r".*"), None);
    }

    #[test]
    fn every_match_contains_one_of_the_literals() {
        // The literal set is necessary: a line without any of them cannot match.
        let cases = [
            (
                r"(?i)\bexpected:? .*\b(?:but (?:was|got|found)|got:?)\b",
                "Expected: 1 but was 2",
            ),
            (
                r"Tests run: \d+, Failures: (?:[1-9]\d*, Errors: \d+)",
                "Tests run: 5, Failures: 1, Errors: 0",
            ),
            (
                r"^(?:FAILED|ERROR) (?:\[[\d.]+m?s\] )?\S+::\S+",
                "FAILED tests/x.py::test_y",
            ),
        ];
        for (p, line) in cases {
            let set = lits(p).unwrap();
            let lower = line.to_ascii_lowercase();
            assert!(
                set.iter().any(|l| lower.contains(l.as_str())),
                "{p}: {set:?} not in {line}"
            );
        }
    }
}
