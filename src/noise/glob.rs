//! Shell-style globs for job, stage and branch names in `.runneriq.yml`.
//!
//! Unlike path globs, `*` matches any run of characters including `/` and `:`
//! (`test:*` matches `test:unit 1/3`, `renovate/*` matches `renovate/a/b`).
//! `?` matches one character, `[abc]`, `[a-z]` and `[!a-z]` are classes, `\x`
//! matches `x` literally. Matching is on the whole string and case-sensitive.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*` (consecutive stars are one token)
    Star,
    /// `[...]`: inclusive ranges (a single char is `(c, c)`).
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether this token (not a star) accepts `c`.
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Char(t) => *t == c,
            Token::One => true,
            Token::Star => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled glob; see the module documentation for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`; the error says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::One),
                '\\' => match chars.next() {
                    Some((_, e)) => tokens.push(Token::Char(e)),
                    None => {
                        return Err("ends with a lone `\\` (write `\\\\` for a backslash)".into());
                    }
                },
                '[' => {
                    let mut negated = false;
                    if let Some(&(_, '!' | '^')) = chars.peek() {
                        negated = true;
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    let mut closed = false;
                    while let Some((_, c)) = chars.next() {
                        let lo = match c {
                            ']' if !first => {
                                closed = true;
                                break;
                            }
                            '\\' => match chars.next() {
                                Some((_, e)) => e,
                                None => break,
                            },
                            c => c,
                        };
                        first = false;
                        // A range `lo-hi`, unless the `-` is last in the class.
                        let mut hi = lo;
                        if let Some(&(_, '-')) = chars.peek() {
                            let mut ahead = chars.clone();
                            ahead.next();
                            match ahead.peek() {
                                Some(&(_, ']')) | None => {}
                                Some(_) => {
                                    chars.next();
                                    hi = match chars.next() {
                                        Some((_, '\\')) => match chars.next() {
                                            Some((_, e)) => e,
                                            None => break,
                                        },
                                        Some((_, h)) => h,
                                        None => break,
                                    };
                                    if hi < lo {
                                        return Err(format!(
                                            "range `{lo}-{hi}` at position {at} is backwards"
                                        ));
                                    }
                                }
                            }
                        }
                        ranges.push((lo, hi));
                    }
                    if !closed {
                        return Err(format!("unclosed `[` at position {at}"));
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => tokens.push(Token::Char(c)),
            }
        }
        Ok(Glob {
            pattern: pattern.to_string(),
            tokens,
        })
    }

    /// Whether the whole of `s` matches. Iterative: on a mismatch, the last
    /// `*` takes one more character and matching resumes after it.
    pub fn matches(&self, s: &str) -> bool {
        let tokens = &self.tokens;
        let (mut t, mut i) = (0usize, 0usize);
        // (token after the last star, byte offset in `s` where it resumes)
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next = s[i..].chars().next();
            match (tokens.get(t), next) {
                (Some(Token::Star), _) => {
                    t += 1;
                    backtrack = Some((t, i));
                    continue;
                }
                (Some(tok), Some(c)) if tok.accepts(c) => {
                    t += 1;
                    i += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last star swallow one more character.
            match backtrack {
                Some((bt, bi)) => match s[bi..].chars().next() {
                    Some(c) => {
                        let bi = bi + c.len_utf8();
                        backtrack = Some((bt, bi));
                        t = bt;
                        i = bi;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Glob, D::Error> {
        let s = String::deserialize(d)?;
        Glob::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid glob {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    #[test]
    fn star_crosses_slashes_and_colons() {
        assert!(m("test:*", "test:unit 1/3"));
        assert!(m("test:*", "test:"));
        assert!(!m("test:*", "tests:unit"));
        assert!(m("renovate/*", "renovate/a/b"));
        assert!(m("*docs*", "docs"));
        assert!(m("*docs*", "build:docs:html"));
        assert!(!m("*docs*", "doc"));
        assert!(m("*", ""));
        assert!(m("a**b", "ab"));
        assert!(m("*a*b*c", "xxaxxbxxbc"));
        assert!(!m("*a*b*c", "xxaxxbxxbcd"));
        assert!(m("deploy:*:prod", "deploy:eu:west:prod"));
    }

    #[test]
    fn question_mark_is_one_char() {
        assert!(m("job-?", "job-1"));
        assert!(m("job-?", "job-é"));
        assert!(!m("job-?", "job-"));
        assert!(!m("job-?", "job-12"));
        assert!(m("?*", "x"));
        assert!(!m("?*", ""));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("[abc]x", "bx"));
        assert!(!m("[abc]x", "dx"));
        assert!(m("v[0-9]", "v7"));
        assert!(!m("v[0-9]", "va"));
        assert!(m("[!a-z]*", "1abc"));
        assert!(!m("[!a-z]*", "abc"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[-a]", "-"));
        assert!(m("[\\]]", "]"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("\\[x\\]", "[x]"));
        assert!(m("a\\\\b", "a\\b"));
    }

    #[test]
    fn empty_pattern_matches_only_empty() {
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn case_sensitive_and_whole_string() {
        assert!(!m("main", "Main"));
        assert!(!m("main", "main2"));
        assert!(!m("main", "xmain"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(Glob::new("[abc").unwrap_err().contains("unclosed `[`"));
        assert!(Glob::new("x[!").unwrap_err().contains("unclosed `[`"));
        assert!(Glob::new("a\\").unwrap_err().contains("lone"));
        assert!(Glob::new("[z-a]").unwrap_err().contains("backwards"));
    }

    #[test]
    fn keeps_the_pattern_and_deserializes_from_a_string() {
        let g = Glob::new("docs:*").unwrap();
        assert_eq!(g.as_str(), "docs:*");
        assert_eq!(g.to_string(), "docs:*");
        let g: Glob = serde_json::from_str("\"a*\"").unwrap();
        assert!(g.matches("abc"));
        let e = serde_json::from_str::<Glob>("\"[a\"").unwrap_err();
        assert!(e.to_string().contains("invalid glob"), "{e}");
    }
}
