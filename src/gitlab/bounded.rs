//! JSON lists with a ceiling. A lying or broken server (or a damaged file)
//! can send a small document that expands into gigabytes: a megabyte of `{}`
//! is 300,000 list elements, each becoming a struct of a kilobyte or more. A
//! capped list fails while it is being parsed, as soon as it holds one element
//! too many, so memory stays proportional to the cap whatever the input.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, Error, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Elements of a list nested in an API object (tags, labels, a discussion's
/// notes, ...): far beyond what GitLab allows (50 tags per runner, say).
pub const NESTED: usize = 1000;

/// Parses a JSON array of at most `max` elements.
pub struct CappedSeq<T> {
    pub max: usize,
    marker: PhantomData<T>,
}

impl<T> CappedSeq<T> {
    pub fn new(max: usize) -> Self {
        CappedSeq {
            max,
            marker: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for CappedSeq<T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for CappedSeq<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} elements", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        // Never trust a size hint for the allocation.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(1024));
        while let Some(item) = seq.next_element()? {
            if out.len() == self.max {
                return Err(A::Error::custom(format_args!(
                    "more than {} elements in a list (RunnerIQ reads at most {})",
                    self.max, self.max
                )));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// A `Vec` field of at most `N` elements: `#[serde(deserialize_with = "capped::<_, _, N>")]`.
pub fn capped<'de, D, T, const N: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    CappedSeq::new(N).deserialize(d)
}

/// A whole document that is a list of at most `N` elements, for
/// `serde_path_to_error` and other callers that need a `Deserialize` type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Capped<T, const N: usize>(pub Vec<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Capped<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CappedSeq::new(N).deserialize(d).map(Capped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_over_its_cap_fails_while_parsing() {
        let ok: Capped<u8, 3> = serde_json::from_str("[1, 2, 3]").unwrap();
        assert_eq!(ok.0, vec![1, 2, 3]);
        let e = serde_json::from_str::<Capped<u8, 3>>("[1, 2, 3, 4]").unwrap_err();
        assert!(e.to_string().contains("more than 3 elements"), "{e}");
        // The error comes at the 4th element: the rest is never parsed.
        let huge = format!("[1,2,3,4,{}", "x".repeat(1000));
        let e = serde_json::from_str::<Capped<u8, 3>>(&huge).unwrap_err();
        assert!(e.to_string().contains("more than 3 elements"), "{e}");
        let mut de = serde_json::Deserializer::from_str("[[], []]");
        let v: Vec<Vec<u8>> = CappedSeq::new(2).deserialize(&mut de).unwrap();
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn a_capped_field() {
        #[derive(Deserialize)]
        struct S {
            #[serde(deserialize_with = "capped::<_, _, 2>")]
            tags: Vec<String>,
        }
        let s: S = serde_json::from_str(r#"{"tags": ["a", "b"]}"#).unwrap();
        assert_eq!(s.tags, ["a", "b"]);
        assert!(serde_json::from_str::<S>(r#"{"tags": ["a", "b", "c"]}"#).is_err());
    }
}
