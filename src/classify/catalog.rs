//! The rule catalog: an embedded default file plus user overrides, validated
//! once and compiled into one multi-pattern matcher.

use std::collections::HashMap;
use std::path::Path;

use std::sync::OnceLock;

use aho_corasick::automaton::Automaton;
use regex_automata::meta::Regex as MetaRegex;
use regex_automata::{Input, MatchKind};
use serde::Deserialize;

use super::literals::{pattern_facts, syntax};
use crate::error::input;

/// The built-in catalog, also the documentation of the format.
pub const DEFAULT_RULES: &str = include_str!("rules.yml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    categories: Vec<CategoryDef>,
    #[serde(default)]
    rules: Vec<RuleDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryDef {
    id: String,
    title: String,
    #[serde(default)]
    advice: String,
    #[serde(default)]
    transient: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    unless: Option<String>,
    #[serde(default)]
    prefer: Option<Prefer>,
    #[serde(default)]
    disabled: bool,
}

/// Which of several lines matching one rule counts most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    First,
    #[default]
    Last,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub id: String,
    pub title: String,
    pub advice: String,
    /// Retrying may help (network, runner, timeouts, rate limits).
    pub transient: bool,
}

#[derive(Debug)]
pub struct Rule {
    pub id: String,
    /// Index into [`Catalog::categories`]; `None` for evidence-only rules.
    pub category: Option<usize>,
    pub pattern: String,
    pub weight: f64,
    pub unless: Option<regex::bytes::Regex>,
    pub prefer: Prefer,
    /// The pattern alone, compiled on first use: most rules never see a
    /// line with their literal, so most never compile.
    matcher: OnceLock<Option<Matcher>>,
}

/// One rule's pattern as the scanner runs it: only "does this line match"
/// is asked, so a forward lazy DFA is all it needs (no reverse automaton, no
/// capture engines: a third of the cost of a full regex to build). Should
/// the DFA give up (its cache thrashing on a pathological line), a full
/// regex, built then, answers instead.
#[derive(Debug)]
pub(crate) struct Matcher {
    dfa: regex_automata::hybrid::dfa::DFA,
    pattern: String,
    fallback: OnceLock<Option<MetaRegex>>,
}

/// Lazy DFA cache of one rule's [`Matcher`] (one per rule and scanner).
pub(crate) type MatchCache = regex_automata::hybrid::dfa::Cache;

/// Lazy DFA cache of a rule's matcher.
const RULE_CACHE: usize = 1 << 20;

impl Matcher {
    fn new(pattern: &str) -> Result<Matcher, String> {
        let nfa = regex_automata::nfa::thompson::Compiler::new()
            .syntax(syntax())
            .configure(
                regex_automata::nfa::thompson::Config::new()
                    .utf8(false)
                    .which_captures(regex_automata::nfa::thompson::WhichCaptures::None),
            )
            .build(pattern)
            .map_err(|e| e.to_string())?;
        let dfa = regex_automata::hybrid::dfa::DFA::builder()
            .configure(
                regex_automata::hybrid::dfa::DFA::config()
                    .match_kind(MatchKind::LeftmostFirst)
                    .cache_capacity(RULE_CACHE),
            )
            .build_from_nfa(nfa)
            .map_err(|e| e.to_string())?;
        Ok(Matcher {
            dfa,
            pattern: pattern.to_string(),
            fallback: OnceLock::new(),
        })
    }

    fn is_match(&self, cache: &mut MatchCache, line: &[u8]) -> bool {
        let input = Input::new(line).earliest(true);
        match self.dfa.try_search_fwd(cache, &input) {
            Ok(m) => m.is_some(),
            Err(_) => self
                .fallback
                .get_or_init(|| {
                    compile(
                        &[self.pattern.as_str()],
                        MatchKind::LeftmostFirst,
                        false,
                        RULE_CACHE,
                    )
                    .ok()
                })
                .as_ref()
                .is_some_and(|m| m.is_match(Input::new(line))),
        }
    }
}

impl Rule {
    fn matcher(&self) -> Option<&Matcher> {
        self.matcher
            .get_or_init(|| Matcher::new(&self.pattern).ok())
            .as_ref()
    }

    /// True when the rule's pattern matches `line` (one line, no `\n`),
    /// with `cache` the rule's own (see [`Catalog::new_cache`]).
    pub(crate) fn is_match_in(&self, cache: &mut Option<MatchCache>, line: &[u8]) -> bool {
        let Some(m) = self.matcher() else {
            return false;
        };
        let cache = cache.get_or_insert_with(|| m.dfa.create_cache());
        m.is_match(cache, line)
    }

    /// True when the rule's pattern matches `line` (one line, no `\n`).
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.is_match_in(&mut None, line)
    }
}

/// A validated rule catalog and its prefilter.
#[derive(Debug)]
pub struct Catalog {
    pub categories: Vec<Category>,
    pub rules: Vec<Rule>,
    /// Every rule's required literals (see [`super::literals`]), ASCII case
    /// insensitive: a line with none of a rule's literals cannot match it.
    /// An NFA, quick to build, for small logs...
    literals_nfa: aho_corasick::nfa::contiguous::NFA,
    /// ...and a DFA, quicker to search but slower to build, made once this
    /// catalog has searched [`DFA_AFTER`] bytes (a big log, or many logs).
    literals_dfa: OnceLock<Option<aho_corasick::dfa::DFA>>,
    searched: std::sync::atomic::AtomicU64,
    literal_patterns: Vec<Vec<u8>>,
    /// Literal pattern id → the rules that require it (rules not anchored
    /// at the line's start).
    pub(crate) literal_rules: Vec<Vec<u32>>,
    /// Rules whose every match starts at the beginning of the line
    /// (`^E\s{2,}\S`, `^e: \S+\.kts?:`), with or without a literal...
    pub(crate) anchored: Vec<u32>,
    /// ...matched by one anchored walk of all their patterns at each line's
    /// start, every match reported (cheap: the lazy DFA dies on the first
    /// bytes of most lines, and the walk says exactly which rules match).
    pub(crate) anchored_union: Option<regex_automata::hybrid::dfa::DFA>,
    /// The other rules without a useful literal...
    pub(crate) always: Vec<u32>,
    /// ...found by this automaton of their patterns (multi-line, `^`/`$` at
    /// line ends) running over the whole batch.
    pub(crate) always_union: Option<MetaRegex>,
    /// Rule caches of finished scanners, for the next one (a lazy DFA's
    /// states, once built, serve every log after).
    cache_pool: std::sync::Mutex<Vec<Vec<Option<MatchCache>>>>,
}

/// Sets of rule caches kept for reuse (one per scanner running at once).
const CACHE_POOL: usize = 4;

/// Bytes searched with the literals' NFA before their DFA is built.
const DFA_AFTER: u64 = 1 << 20;

/// Lazy DFA cache of the automaton of the rules without literals.
const ALWAYS_CACHE: usize = 8 << 20;

/// One automaton of `patterns`, with the scanner's syntax: bytes, ASCII
/// classes, `^`/`$` at line ends when `multi_line`.
fn compile(
    patterns: &[&str],
    kind: MatchKind,
    multi_line: bool,
    cache: usize,
) -> Result<MetaRegex, Box<regex_automata::meta::BuildError>> {
    MetaRegex::builder()
        .syntax(syntax().multi_line(multi_line))
        .configure(
            MetaRegex::config()
                .utf8_empty(false)
                .match_kind(kind)
                .hybrid_cache_capacity(cache)
                // Only "does it match" is asked: no capture groups, and no
                // prefilter of its own where the catalog's literals already
                // picked the line (building one costs more than it saves).
                .which_captures(regex_automata::nfa::thompson::WhichCaptures::None)
                .auto_prefilter(multi_line),
        )
        .build_many(patterns)
        .map_err(Box::new)
}

/// The Aho-Corasick automata of the literals: ASCII case-insensitive,
/// reporting every match (a literal may contain another), no prefilter of
/// their own (hundreds of literals start with most bytes anyway).
fn literals_nfa(
    patterns: &[Vec<u8>],
) -> Result<aho_corasick::nfa::contiguous::NFA, aho_corasick::BuildError> {
    aho_corasick::nfa::contiguous::Builder::new()
        .ascii_case_insensitive(true)
        .match_kind(aho_corasick::MatchKind::Standard)
        .prefilter(false)
        .build(patterns)
}

fn literals_dfa(patterns: &[Vec<u8>]) -> Result<aho_corasick::dfa::DFA, aho_corasick::BuildError> {
    aho_corasick::dfa::Builder::new()
        .ascii_case_insensitive(true)
        .match_kind(aho_corasick::MatchKind::Standard)
        .prefilter(false)
        .build(patterns)
}

/// Appends `(end, literal)` for every literal occurrence in `hay` to `out`,
/// in the order of their ends: one pass, one table lookup per byte, a branch
/// taken only at matches.
///
/// A DFA walk is bound by the latency of each lookup (the next state depends
/// on the last), so two walks run interleaved, over the halves of `hay`
/// split after a `\n`: no literal holds a `\n`, so no match straddles the
/// split, and the second half starts from the start state. `second` is the
/// second half's buffer (cleared, then appended to `out`).
#[inline(never)]
fn scan<A: Automaton>(a: &A, hay: &[u8], out: &mut Vec<(u32, u32)>, second: &mut Vec<(u32, u32)>) {
    // Built for unanchored searches (the builders' default): never an error.
    let Ok(start) = a.start_state(aho_corasick::Anchored::No) else {
        return;
    };
    let found = |sid, end: usize, out: &mut Vec<(u32, u32)>| {
        for k in 0..a.match_len(sid) {
            out.push((end as u32, a.match_pattern(sid, k).as_u32()));
        }
    };
    let half = hay.len() / 2;
    let mid = memchr::memchr(b'\n', &hay[half..]).map_or(hay.len(), |i| half + i + 1);
    let (x, y) = hay.split_at(mid);
    second.clear();
    let (mut s1, mut s2) = (start, start);
    for (i, (&b1, &b2)) in x.iter().zip(y).enumerate() {
        s1 = a.next_state(aho_corasick::Anchored::No, s1, b1);
        s2 = a.next_state(aho_corasick::Anchored::No, s2, b2);
        if a.is_special(s1) && a.is_match(s1) {
            found(s1, i + 1, out);
        }
        if a.is_special(s2) && a.is_match(s2) {
            found(s2, mid + i + 1, second);
        }
    }
    let both = x.len().min(y.len());
    for (i, &b) in x.iter().enumerate().skip(both) {
        s1 = a.next_state(aho_corasick::Anchored::No, s1, b);
        if a.is_special(s1) && a.is_match(s1) {
            found(s1, i + 1, out);
        }
    }
    for (i, &b) in y.iter().enumerate().skip(both) {
        s2 = a.next_state(aho_corasick::Anchored::No, s2, b);
        if a.is_special(s2) && a.is_match(s2) {
            found(s2, mid + i + 1, second);
        }
    }
    out.append(second);
}

/// Where a catalog text came from, for error messages.
fn origin_name(origin: Option<&Path>) -> String {
    origin.map_or_else(|| "built-in rules".to_string(), |p| p.display().to_string())
}

fn parse_file(text: &str, origin: Option<&Path>) -> anyhow::Result<CatalogFile> {
    serde_saphyr::from_str::<CatalogFile>(text).map_err(|e| {
        input(format!(
            "{}: {}",
            origin_name(origin),
            crate::error::one_line(&e.to_string())
        ))
    })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A rules file is YAML written by people: the built-in one is 40 KiB.
const MAX_RULES_FILE: u64 = 4 << 20;

impl Catalog {
    /// The built-in catalog.
    pub fn builtin() -> anyhow::Result<Catalog> {
        Catalog::build(&[(DEFAULT_RULES.to_string(), None)])
    }

    /// The built-in catalog extended and overridden by the user's files, in order.
    pub fn with_overrides(paths: &[&Path]) -> anyhow::Result<Catalog> {
        let mut texts = vec![(DEFAULT_RULES.to_string(), None)];
        for p in paths {
            let text = crate::input::read_at_most(p, MAX_RULES_FILE).map_err(|e| {
                input(format!(
                    "{}: cannot read rules file: {}",
                    p.display(),
                    crate::input::io_reason(&e)
                ))
            })?;
            let text = String::from_utf8(text)
                .map_err(|_| input(format!("{}: rules file is not UTF-8 text", p.display())))?;
            texts.push((text, Some(p.to_path_buf())));
        }
        let refs: Vec<(String, Option<&Path>)> = texts
            .iter()
            .map(|(t, p)| (t.clone(), p.as_deref()))
            .collect();
        Catalog::build(&refs)
    }

    fn build(files: &[(String, Option<&Path>)]) -> anyhow::Result<Catalog> {
        let mut categories: Vec<Category> = Vec::new();
        let mut merged: Vec<(RuleDef, String)> = Vec::new();
        for (text, origin) in files {
            let origin_s = origin_name(*origin);
            let file = parse_file(text, *origin)?;
            for c in file.categories {
                if !valid_id(&c.id) {
                    return Err(input(format!(
                        "{origin_s}: category {:?}: field `id` must be letters, digits, - or _",
                        c.id
                    )));
                }
                let cat = Category {
                    id: c.id,
                    title: c.title,
                    advice: c.advice,
                    transient: c.transient,
                };
                match categories.iter_mut().find(|x| x.id == cat.id) {
                    Some(existing) => *existing = cat,
                    None => categories.push(cat),
                }
            }
            for (i, r) in file.rules.into_iter().enumerate() {
                if !valid_id(&r.id) {
                    return Err(input(format!(
                        "{origin_s}: rules[{i}]: field `id`: {:?} must be 1-64 letters, digits, - or _",
                        r.id
                    )));
                }
                let pos = merged.iter().position(|(m, _)| m.id == r.id);
                if origin.is_none() && pos.is_some() {
                    return Err(input(format!(
                        "{origin_s}: rule `{}` is defined twice",
                        r.id
                    )));
                }
                match pos {
                    Some(p) if r.disabled => {
                        merged.remove(p);
                    }
                    Some(p) => {
                        // Override: fields not given keep the built-in values.
                        let (old, _) = &merged[p];
                        let new = RuleDef {
                            id: r.id,
                            category: r.category.or(old.category.clone()),
                            pattern: r.pattern.or(old.pattern.clone()),
                            weight: r.weight.or(old.weight),
                            unless: r.unless.or(old.unless.clone()),
                            prefer: r.prefer.or(old.prefer),
                            disabled: false,
                        };
                        merged[p] = (new, origin_s.clone());
                    }
                    None if r.disabled => {}
                    None => merged.push((r, origin_s.clone())),
                }
            }
        }
        let cat_index: HashMap<&str, usize> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect();
        let mut rules = Vec::with_capacity(merged.len());
        let mut required: Vec<(Option<Vec<Vec<u8>>>, bool)> = Vec::with_capacity(merged.len());
        for (r, origin_s) in &merged {
            let at = |field: &str, msg: String| {
                input(format!(
                    "{origin_s}: rule `{}`: field `{field}`: {msg}",
                    r.id
                ))
            };
            let pattern = r
                .pattern
                .clone()
                .ok_or_else(|| at("pattern", "missing (every rule needs a regex)".into()))?;
            if pattern.is_empty() {
                return Err(at("pattern", "must not be empty".into()));
            }
            let weight = r.weight.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&weight) || weight.is_nan() {
                return Err(at("weight", format!("{weight} is not between 0 and 1")));
            }
            let category = match &r.category {
                None => None,
                Some(c) => Some(*cat_index.get(c.as_str()).ok_or_else(|| {
                    at(
                        "category",
                        format!(
                            "unknown category {c:?} (known: {})",
                            categories
                                .iter()
                                .map(|c| c.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?),
            };
            // A user's pattern is checked now, with the matcher's own syntax
            // (bytes, ASCII classes), so the error names the rule; the
            // built-in ones are checked by the tests and compile on first
            // use, and their prefilter facts come from a table made at
            // build time (parsing 150 patterns is a quarter of a run on a
            // small log).
            let user_rule = origin_s.as_str() != "built-in rules";
            let matcher = OnceLock::new();
            let known = if user_rule {
                None
            } else {
                super::prefilter_table::lookup(&r.id, &pattern)
            };
            let facts = match known {
                Some(f) => f,
                None => {
                    let facts = pattern_facts(&pattern).map_err(|e| {
                        at(
                            "pattern",
                            format!("invalid regex: {}", crate::error::one_line(&e)),
                        )
                    })?;
                    if user_rule {
                        let m = Matcher::new(&pattern).map_err(|e| {
                            at(
                                "pattern",
                                format!("invalid regex: {}", crate::error::one_line(&e)),
                            )
                        })?;
                        let _ = matcher.set(Some(m));
                    }
                    facts
                }
            };
            required.push(facts);
            let unless = match &r.unless {
                None => None,
                Some(u) => Some(regex::bytes::Regex::new(u).map_err(|e| {
                    at(
                        "unless",
                        format!("invalid regex: {}", crate::error::one_line(&e.to_string())),
                    )
                })?),
            };
            rules.push(Rule {
                id: r.id.clone(),
                category,
                pattern,
                weight,
                unless,
                prefer: r.prefer.unwrap_or_default(),
                matcher,
            });
        }
        // The last file given: where a catalog-wide problem is most likely.
        let last = files
            .last()
            .map_or_else(|| "built-in rules".to_string(), |(_, o)| origin_name(*o));
        if rules.is_empty() {
            return Err(input(format!(
                "{last}: the rule catalog has no rules left (all disabled?)"
            )));
        }
        let compile_error = |e: &dyn std::fmt::Display| {
            input(format!(
                "{last}: cannot compile the rule catalog: {}",
                crate::error::one_line(&e.to_string())
            ))
        };
        // Literal → rules, and the rules that have none.
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut literal_rules: Vec<Vec<u32>> = Vec::new();
        let mut always: Vec<u32> = Vec::new();
        let mut anchored: Vec<u32> = Vec::new();
        for (i, (set, start_anchored)) in required.into_iter().enumerate() {
            let i = u32::try_from(i).map_err(|e| compile_error(&e))?;
            match set {
                None if start_anchored => anchored.push(i),
                None => always.push(i),
                Some(set) => {
                    // Any piece of a required literal is required too: a
                    // short prefix keeps the automaton small (it is built on
                    // every run) and still rare enough in log lines.
                    let mut set: Vec<Vec<u8>> = set
                        .into_iter()
                        .map(|mut l| {
                            l.truncate(super::literals::SEARCHED);
                            l
                        })
                        .collect();
                    set.sort();
                    set.dedup();
                    for lit in set {
                        match patterns.iter().position(|p| *p == lit) {
                            Some(at) => literal_rules[at].push(i),
                            None => {
                                patterns.push(lit);
                                literal_rules.push(vec![i]);
                            }
                        }
                    }
                }
            }
        }
        let literals_nfa = literals_nfa(&patterns).map_err(|e| compile_error(&e))?;
        literals_nfa
            .start_state(aho_corasick::Anchored::No)
            .map_err(|e| compile_error(&e))?;
        let union_of = |ids: &[u32], multi_line: bool| -> anyhow::Result<Option<MetaRegex>> {
            if ids.is_empty() {
                return Ok(None);
            }
            let ps: Vec<&str> = ids
                .iter()
                .map(|&i| rules[i as usize].pattern.as_str())
                .collect();
            compile(&ps, MatchKind::LeftmostFirst, multi_line, ALWAYS_CACHE)
                .map(Some)
                .map_err(|e| compile_error(&e))
        };
        let always_union = union_of(&always, true)?;
        let anchored_union = if anchored.is_empty() {
            None
        } else {
            let ps: Vec<&str> = anchored
                .iter()
                .map(|&i| rules[i as usize].pattern.as_str())
                .collect();
            Some(
                regex_automata::hybrid::dfa::DFA::builder()
                    .syntax(syntax())
                    .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
                    .configure(
                        regex_automata::hybrid::dfa::DFA::config()
                            .match_kind(MatchKind::All)
                            .cache_capacity(ALWAYS_CACHE),
                    )
                    .build_many(&ps)
                    .map_err(|e| compile_error(&e))?,
            )
        };
        Ok(Catalog {
            categories,
            rules,
            literals_nfa,
            literals_dfa: OnceLock::new(),
            searched: std::sync::atomic::AtomicU64::new(0),
            literal_patterns: patterns,
            literal_rules,
            anchored,
            anchored_union,
            always,
            always_union,
            cache_pool: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Appends `(end, literal)` for every literal occurrence in `hay` to
    /// `out` (see [`scan`]): with the NFA until the catalog has searched
    /// [`DFA_AFTER`] bytes, then with the DFA (its building pays for itself
    /// within about a megabyte of log).
    pub(crate) fn scan_literals(
        &self,
        hay: &[u8],
        out: &mut Vec<(u32, u32)>,
        second: &mut Vec<(u32, u32)>,
    ) {
        let before = self
            .searched
            .fetch_add(hay.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if before + (hay.len() as u64) >= DFA_AFTER {
            let dfa = self.literals_dfa.get_or_init(|| {
                literals_dfa(&self.literal_patterns)
                    .ok()
                    .filter(|d| d.start_state(aho_corasick::Anchored::No).is_ok())
            });
            if let Some(dfa) = dfa {
                return scan(dfa, hay, out, second);
            }
        }
        scan(&self.literals_nfa, hay, out, second);
    }

    /// A set of rule caches (one per rule): a finished scanner's, else new.
    pub(crate) fn take_caches(&self) -> Vec<Option<MatchCache>> {
        self.cache_pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| (0..self.rules.len()).map(|_| None).collect())
    }

    /// Gives a scanner's rule caches back for the next scanner.
    pub(crate) fn give_caches(&self, caches: Vec<Option<MatchCache>>) {
        if caches.len() == self.rules.len() {
            if let Ok(mut pool) = self.cache_pool.lock() {
                if pool.len() < CACHE_POOL {
                    pool.push(caches);
                }
            }
        }
    }

    pub fn category(&self, id: &str) -> Option<usize> {
        self.categories.iter().position(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{EXIT_INPUT, exit_code};

    fn build_with(extra: &str) -> anyhow::Result<Catalog> {
        Catalog::build(&[
            (DEFAULT_RULES.to_string(), None),
            (extra.to_string(), Some(Path::new("my-rules.yml"))),
        ])
    }

    #[test]
    fn builtin_catalog_loads_and_covers_the_categories() {
        let c = Catalog::builtin().unwrap();
        assert!(c.categories.len() >= 15, "{}", c.categories.len());
        for cat in 0..c.categories.len() {
            assert!(
                c.rules.iter().any(|r| r.category == Some(cat)),
                "category {} has no rule",
                c.categories[cat].id
            );
        }
    }

    #[test]
    fn override_replaces_disables_and_adds() {
        let base = Catalog::builtin().unwrap();
        let c = build_with(
            "rules:\n  - id: rustc-error\n    weight: 0.1\n  - id: segfault\n    disabled: true\n  - id: my-tool\n    category: test_failure\n    pattern: '^MYTOOL FAIL'\n",
        )
        .unwrap();
        let r = c.rules.iter().find(|r| r.id == "rustc-error").unwrap();
        assert_eq!(r.weight, 0.1);
        assert!(
            r.pattern.starts_with("^error"),
            "pattern kept from built-in"
        );
        assert!(!c.rules.iter().any(|r| r.id == "segfault"));
        assert!(c.rules.iter().any(|r| r.id == "my-tool"));
        assert_eq!(c.rules.len(), base.rules.len());
    }

    #[test]
    fn errors_name_file_rule_and_field() {
        let e = build_with(
            "rules:\n  - id: bad\n    category: compilation\n    pattern: '(unclosed'\n",
        )
        .unwrap_err();
        let msg = crate::error::describe(&e);
        assert!(
            msg.contains("my-rules.yml") && msg.contains("`bad`") && msg.contains("`pattern`"),
            "{msg}"
        );
        assert_eq!(exit_code(&e), EXIT_INPUT);

        let e = build_with("rules:\n  - id: w\n    pattern: x\n    weight: 3\n").unwrap_err();
        let msg = crate::error::describe(&e);
        assert!(msg.contains("`w`") && msg.contains("`weight`"), "{msg}");

        let e = build_with("rules:\n  - id: c\n    pattern: x\n    category: nope\n").unwrap_err();
        assert!(crate::error::describe(&e).contains("unknown category \"nope\""));

        let e = build_with("rules:\n  - id: n\n    category: compilation\n").unwrap_err();
        assert!(crate::error::describe(&e).contains("`pattern`: missing"));

        let e = build_with("rules:\n  - id: t\n    pattern: x\n    colour: red\n").unwrap_err();
        let msg = crate::error::describe(&e);
        assert!(
            msg.contains("my-rules.yml") && msg.contains("colour"),
            "{msg}"
        );

        let e = build_with("rules: [ {").unwrap_err();
        assert!(crate::error::describe(&e).contains("my-rules.yml"));
        assert!(!crate::error::describe(&e).contains('\n'));
    }
}
