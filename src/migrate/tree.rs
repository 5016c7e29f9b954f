//! A YAML document as an ordered tree with the line of every key and value.
//!
//! `serde_json::Value` sorts map keys; RunnerIQ 6.x's `branch_weights` is a
//! map whose order matters (the first matching glob wins), and an error
//! about a value should name its line. So the 6.x file is read into this.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A node and the line (1-based) it starts on; 0 when unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    /// Entries in the file's order.
    Map(Vec<Entry>),
}

/// One key of a map, with the line the key is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub line: u64,
    pub value: Node,
}

impl Node {
    fn bare(kind: Kind) -> Node {
        Node { line: 0, kind }
    }

    /// The entries of a map; `None` for anything else.
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The value written as YAML shows it, for messages: strings quoted (cut
    /// at 60 characters), containers by kind.
    pub fn shown(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing".to_string(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str(s) => {
                let cut: String = s.chars().take(60).collect();
                if cut.len() < s.len() {
                    format!("{:?}", cut + "…")
                } else {
                    format!("{s:?}")
                }
            }
            Kind::List(_) => "a list".to_string(),
            Kind::Map(_) => "a map".to_string(),
        }
    }

    /// A scalar as a map key (`1: x` has the key "1").
    fn key_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Null => Some("null".to_string()),
            _ => None,
        }
    }
}

/// Parses YAML text; the error is serde-saphyr's (with its position).
pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    if text.trim().is_empty() {
        return Ok(Node::bare(Kind::Null));
    }
    let s: Spanned<Node> = serde_saphyr::from_str(text)?;
    Ok(located(s))
}

fn located(s: Spanned<Node>) -> Node {
    let mut n = s.value;
    n.line = s.referenced.line();
    n
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::bare(Kind::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::bare(Kind::Int(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::bare(match i64::try_from(v) {
            Ok(i) => Kind::Int(i),
            Err(_) => Kind::Float(v as f64),
        }))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::bare(Kind::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::bare(Kind::Str(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::bare(Kind::Str(v)))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::bare(Kind::Null))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::bare(Kind::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(located(item));
        }
        Ok(Node::bare(Kind::List(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<Entry> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let line = key.referenced.line();
            let Some(text) = key.value.key_text() else {
                return Err(de::Error::custom(format!(
                    "line {line}: a map key must be a plain value, not {}",
                    key.value.shown()
                )));
            };
            let value = located(map.next_value::<Spanned<Node>>()?);
            if entries.iter().any(|e| e.key == text) {
                return Err(de::Error::custom(format!(
                    "line {line}: the key {text:?} appears twice in the same map"
                )));
            }
            entries.push(Entry {
                key: text,
                line,
                value,
            });
        }
        Ok(Node::bare(Kind::Map(entries)))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_order_and_lines() {
        let n = parse("a:\n  z: 1\n  b: [x, 2.5]\n  m: ~\nc: true\n").unwrap();
        let top = n.entries().unwrap();
        assert_eq!(top[0].key, "a");
        assert_eq!(top[0].line, 1);
        let a = top[0].value.entries().unwrap();
        let keys: Vec<(&str, u64)> = a.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(keys, vec![("z", 2), ("b", 3), ("m", 4)]);
        assert_eq!(a[0].value.kind, Kind::Int(1));
        assert_eq!(a[0].value.line, 2);
        let Kind::List(items) = &a[1].value.kind else {
            panic!("{:?}", a[1].value)
        };
        assert_eq!(items[1].kind, Kind::Float(2.5));
        assert_eq!(a[2].value.kind, Kind::Null);
        assert_eq!(top[1].value.kind, Kind::Bool(true));
        assert_eq!(top[1].line, 5);
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_errors_with_a_line() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("duplicate"), "{e}");
        let e = parse("a: [1,\n").unwrap_err().to_string();
        assert!(e.chars().any(|c| c.is_ascii_digit()), "{e}");
    }
}
