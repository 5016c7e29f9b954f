//! The rule catalog: an embedded default file plus user overrides, validated
//! once and compiled into one multi-pattern matcher.

use std::collections::HashMap;
use std::path::Path;

use regex_automata::meta::Regex as MetaRegex;
use serde::Deserialize;

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

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// Index into [`Catalog::categories`]; `None` for evidence-only rules.
    pub category: Option<usize>,
    pub pattern: String,
    pub weight: f64,
    pub unless: Option<regex::bytes::Regex>,
    pub prefer: Prefer,
}

/// A validated, compiled rule catalog.
#[derive(Debug)]
pub struct Catalog {
    pub categories: Vec<Category>,
    pub rules: Vec<Rule>,
    /// The rules' patterns in groups of [`GROUP_SIZE`], in rule order.
    pub(crate) groups: Vec<RuleGroup>,
    /// Every pattern in one leftmost-first automaton, multi-line (`^`/`$` at
    /// line ends): it runs over a batch of many lines at once and skips to
    /// the next line that may match, the way grep tools search; the groups
    /// then check that line alone.
    pub(crate) union: MetaRegex,
}

/// Rules per compiled group. One automaton for 150+ patterns has so many
/// states that the lazy DFA's cache thrashes and matching crawls; small
/// groups keep each automaton small and fast, at the cost of a few passes
/// over each line (lines are short).
pub(crate) const GROUP_SIZE: usize = 12;

/// Lazy DFA cache of the union automaton.
const UNION_CACHE: usize = 48 << 20;

/// A slice of the catalog's rules compiled twice.
#[derive(Debug)]
pub(crate) struct RuleGroup {
    /// Index of the group's first rule in [`Catalog::rules`].
    pub(crate) first: usize,
    /// Leftmost-first: "does any rule of the group match this line?", the
    /// cheap question most lines answer with no.
    pub(crate) any: MetaRegex,
    /// Overlapping (MatchKind::All): which rules of the group match.
    pub(crate) all: MetaRegex,
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
            // Validate each pattern alone, with the matcher's own syntax
            // (bytes, ASCII classes), so the error names the rule.
            MetaRegex::builder()
                .syntax(
                    regex_automata::util::syntax::Config::new()
                        .utf8(false)
                        .unicode(false),
                )
                .build(&pattern)
                .map_err(|e| {
                    at(
                        "pattern",
                        format!("invalid regex: {}", crate::error::one_line(&e.to_string())),
                    )
                })?;
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
        let build_with =
            |patterns: &[&str], kind: regex_automata::MatchKind, multi_line: bool, cache: usize| {
                MetaRegex::builder()
                    .syntax(
                        regex_automata::util::syntax::Config::new()
                            .utf8(false)
                            .unicode(false)
                            .multi_line(multi_line),
                    )
                    .configure(
                        MetaRegex::config()
                            .utf8_empty(false)
                            .match_kind(kind)
                            .hybrid_cache_capacity(cache),
                    )
                    .build_many(patterns)
                    .map_err(|e| {
                        input(format!(
                            "{last}: cannot compile the rule catalog: {}",
                            crate::error::one_line(&e.to_string())
                        ))
                    })
            };
        let build = |patterns: &[&str], kind| build_with(patterns, kind, false, 2 << 20);
        let all_patterns: Vec<&str> = rules.iter().map(|r| r.pattern.as_str()).collect();
        let union = build_with(
            &all_patterns,
            regex_automata::MatchKind::LeftmostFirst,
            true,
            UNION_CACHE,
        )?;
        let mut groups = Vec::new();
        for (g, chunk) in rules.chunks(GROUP_SIZE).enumerate() {
            let patterns: Vec<&str> = chunk.iter().map(|r| r.pattern.as_str()).collect();
            groups.push(RuleGroup {
                first: g * GROUP_SIZE,
                any: build(&patterns, regex_automata::MatchKind::LeftmostFirst)?,
                all: build(&patterns, regex_automata::MatchKind::All)?,
            });
        }
        Ok(Catalog {
            categories,
            rules,
            groups,
            union,
        })
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
